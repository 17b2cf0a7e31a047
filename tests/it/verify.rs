use crate::harness::{ciphertext_line, Sandbox, MIXED};

#[test]
fn verify_finds_plaintext_and_passes_sealed_files() {
    let s = Sandbox::new();
    s.write("plain/a.yaml", MIXED);
    let r = s.run(&["verify", "plain"]).fails();
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        "plain/a.yaml: document 2 (Secret prod/db): plaintext Secret: seal it with `gitops-seal encrypt --in-place FILE`\n"
    );
    assert!(!r.stdout.contains("hunter2"));
    s.seal("sealed/a.yaml", MIXED);
    let ok = s
        .run(&[
            "verify",
            "-i",
            "id.txt",
            "--recipient",
            &s.recipient.clone(),
            "sealed",
        ])
        .ok();
    assert_eq!(ok.stderr, "ok: 1 file(s) verified\n");
}

#[test]
fn verify_recipient_checks_the_list_and_the_stanza_count() {
    let s = Sandbox::new();
    let other = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let r = s
        .run(&["verify", "--recipient", &other.recipient.clone(), "a.yaml"])
        .fails();
    assert!(r.stdout.contains(&format!(
        "recipient {} is not in spec.recipients",
        other.recipient
    )));
    // Claiming a recipient the values were not sealed for is caught by the stanza count.
    let claimed = s.read("a.yaml").replace(
        &format!("    - {}\n", s.recipient),
        &format!("    - {}\n    - {}\n", s.recipient, other.recipient),
    );
    s.write("b.yaml", claimed);
    let r = s
        .run(&["verify", "--recipient", &other.recipient.clone(), "b.yaml"])
        .fails();
    assert!(
        r.stdout.contains("b.yaml: document 2 (SealedSecret prod/db): key \"password\": value is sealed for 1 recipient(s), spec.recipients lists 2"),
        "{}",
        r.stdout
    );
}

#[test]
fn verify_with_an_identity_proves_every_value_opens() {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let sealed = s.read("a.yaml");
    let pw = ciphertext_line(&sealed, "password").to_string();
    let user = ciphertext_line(&sealed, "user").to_string();
    s.write("a.yaml", sealed.replace(&pw, &user));
    s.run(&["verify", "a.yaml"]).ok();
    let r = s.run(&["verify", "-i", "id.txt", "a.yaml"]).fails();
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        "a.yaml: document 2 (SealedSecret prod/db): key \"password\": value was sealed for key \"user\", not \"password\" (scope strict); a ciphertext cannot be moved\n"
    );
    assert_eq!(r.stderr, "1 problem(s) in 1 file(s)\n");
}

#[test]
fn verify_flags_a_secret_that_parses_but_cannot_be_read() {
    // `name: {{ .Release.Name }}` parses as YAML (a mapping) but is no Secret name: the
    // values beside it are still plaintext.
    let s = Sandbox::new();
    s.write(
        "t.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\nstringData:\n  password: hunter2\n",
    );
    let r = s.run(&["verify", "t.yaml"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("t.yaml: document 1"), "{}", r.stdout);
    assert!(!r.stdout.contains("hunter2"));
}
