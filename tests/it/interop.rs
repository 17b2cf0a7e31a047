//! Interoperability with Debian's age CLI, both ways: the documented escape hatch works.

use std::process::Command;

use base64::Engine;

use crate::harness::{ciphertext_line, run_command, Sandbox, MIXED};

#[test]
fn a_value_we_seal_opens_with_age_d_and_tail() {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let ct = ciphertext_line(&s.read("a.yaml"), "password").to_string();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(ct)
        .unwrap();
    s.write("value.age", bytes);
    // The exact command docs/FORMAT.md gives.
    let mut c = Command::new("sh");
    c.current_dir(s.dir.path())
        .arg("-c")
        .arg("age -d -i id.txt value.age | tail -n +2");
    let r = run_command(c, b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "hunter2");
    let mut header = Command::new("sh");
    header
        .current_dir(s.dir.path())
        .arg("-c")
        .arg("age -d -i id.txt value.age | head -n 1");
    assert_eq!(
        run_command(header, b"").stdout,
        "{\"gitops-seal\":1,\"scope\":\"strict\",\"type\":\"Opaque\",\"namespace\":\"prod\",\"name\":\"db\",\"key\":\"password\"}\n"
    );
}

#[test]
fn an_identity_from_age_keygen_decrypts_with_us() {
    let s = Sandbox::new();
    let mut keygen = Command::new("age-keygen");
    keygen.current_dir(s.dir.path()).args(["-o", "age-id.txt"]);
    let r = run_command(keygen, b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let public = r
        .stderr
        .trim()
        .strip_prefix("Public key: ")
        .unwrap()
        .to_string();
    s.write("a.yaml", MIXED);
    s.run(&["encrypt", "--in-place", "-r", &public, "a.yaml"])
        .ok();
    let back = s
        .run(&["decrypt", "-i", "age-id.txt", "a.yaml"])
        .ok()
        .stdout;
    assert!(back.contains("password: hunter2"));
    // And our recipient command agrees with age-keygen -y.
    assert_eq!(
        s.run(&["recipient", "-i", "age-id.txt"]).ok().stdout.trim(),
        public
    );
}

#[test]
fn our_identity_file_is_read_by_age_keygen() {
    let s = Sandbox::new();
    let mut y = Command::new("age-keygen");
    y.current_dir(s.dir.path()).args(["-y", "id.txt"]);
    let r = run_command(y, b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), s.recipient);
}
