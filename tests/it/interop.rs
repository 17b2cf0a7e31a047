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
    // The exact command docs/FORMAT.md gives, with pipefail so that the exit code is age's
    // as well as tail's.
    let mut c = Command::new("bash");
    c.current_dir(s.dir.path())
        .arg("-c")
        .arg("set -o pipefail; age -d -i id.txt value.age | tail -n +2");
    let r = run_command(c, b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "hunter2");
    // And a pipeline whose age fails is a failure: the check above would see it.
    let mut wrong = Command::new("bash");
    wrong
        .current_dir(s.dir.path())
        .arg("-c")
        .arg("set -o pipefail; age -d -i value.age value.age | tail -n +2");
    assert_ne!(run_command(wrong, b"").code, 0);
    // age alone opens it (its exit code, not a pipeline's), and the first line is the binding.
    let mut age = Command::new("age");
    age.current_dir(s.dir.path())
        .args(["-d", "-i", "id.txt", "value.age"]);
    let opened = run_command(age, b"");
    assert_eq!(opened.code, 0, "{}", opened.stderr);
    assert_eq!(
        opened.stdout.split_inclusive('\n').next().unwrap(),
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
