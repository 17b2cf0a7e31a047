//! Every bad input of DESIGN.md: a one-line error naming file, document, object and key,
//! a non-zero exit, and nothing written.

use crate::harness::{ciphertext_line, Sandbox, MIXED};

/// Runs `encrypt --in-place` on `text` and returns the error line, after checking that no
/// file in the sandbox changed and no temp file was left.
#[track_caller]
fn encrypt_error(s: &Sandbox, name: &str, text: &[u8]) -> String {
    s.write(name, text);
    let before = s.snapshot();
    let r = s
        .run(&["encrypt", "--in-place", "-r", &s.recipient.clone(), name])
        .fails();
    assert_eq!(s.snapshot(), before, "a failed encrypt wrote something");
    r.error_line().to_string()
}

#[track_caller]
fn decrypt_error(s: &Sandbox, name: &str, text: &str) -> String {
    s.write(name, text);
    let r = s.run(&["decrypt", "-i", "id.txt", name]).fails();
    assert!(r.stdout.is_empty(), "decrypt printed {}", r.stdout);
    r.error_line().to_string()
}

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\n";

#[test]
fn malformed_yaml() {
    let s = Sandbox::new();
    let e = encrypt_error(
        &s,
        "bad.yaml",
        b"apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: Secret\ndata: [unclosed\n",
    );
    assert_eq!(
        e,
        "error: bad.yaml: document 2: invalid YAML at line 6: unclosed bracket '['"
    );
}

#[test]
fn alias_bomb_is_refused_quickly() {
    let s = Sandbox::new();
    let mut bomb = String::from("apiVersion: v1\nkind: Secret\nmetadata: {name: b}\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let e = encrypt_error(&s, "bomb.yaml", bomb.as_bytes());
    assert!(
        e.starts_with("error: bomb.yaml: document 1: invalid YAML at line "),
        "{e}"
    );
    assert!(e.contains("alias"), "{e}");
}

#[test]
fn a_100_mib_document_is_refused_before_parsing() {
    let s = Sandbox::new();
    let mut big = String::from(SECRET);
    big.push_str("stringData:\n  k: \"");
    big.push_str(&"x".repeat(100 * 1024 * 1024));
    big.push_str("\"\n");
    // Over the file limit (64 MiB by default): refused before it is read.
    let e = encrypt_error(&s, "big.yaml", big.as_bytes());
    assert_eq!(
        e,
        format!("error: big.yaml: file is {} bytes, over the limit of 67108864 bytes (raise the limit with --max-file-size)", big.len())
    );
    // Under it but over the document limit: refused before parsing.
    let mut ten = String::from(SECRET);
    ten.push_str("stringData:\n  k: \"");
    ten.push_str(&"x".repeat(10 * 1024 * 1024));
    ten.push_str("\"\n");
    let e = encrypt_error(&s, "ten.yaml", ten.as_bytes());
    assert_eq!(
        e,
        format!("error: ten.yaml: document 1: document is {} bytes, over the limit of 8388608 bytes (Kubernetes objects are at most 1.5 MiB)", ten.len())
    );
}

#[test]
fn invalid_base64_names_the_key_and_not_the_value() {
    let s = Sandbox::new();
    let e = encrypt_error(
        &s,
        "b.yaml",
        format!("{SECRET}data:\n  ok: aGk=\n  password: not*base64!\n").as_bytes(),
    );
    assert_eq!(
        e,
        "error: b.yaml: document 1 (Secret prod/db): key \"password\": data value is not valid base64"
    );
}

#[test]
fn duplicate_keys() {
    let s = Sandbox::new();
    let e = encrypt_error(
        &s,
        "d.yaml",
        format!("{SECRET}stringData:\n  password: a\n  password: b\n").as_bytes(),
    );
    assert_eq!(
        e,
        "error: d.yaml: document 1: invalid YAML at line 6: duplicate mapping key: password"
    );
}

#[test]
fn a_non_string_value_is_refused_without_echoing_it() {
    let s = Sandbox::new();
    let e = encrypt_error(
        &s,
        "n.yaml",
        format!("{SECRET}stringData:\n  pin: 987654\n").as_bytes(),
    );
    assert!(!e.contains("987654"), "{e}");
    assert!(
        e.starts_with("error: n.yaml: document 1 (Secret prod/db): invalid YAML at line"),
        "{e}"
    );
    assert!(e.contains("not a string (quote it)"), "{e}");
}

#[test]
fn invalid_key_name() {
    let s = Sandbox::new();
    let e = encrypt_error(
        &s,
        "k.yaml",
        format!("{SECRET}stringData:\n  \"bad key\": v\n").as_bytes(),
    );
    assert_eq!(e, "error: k.yaml: document 1 (Secret prod/db): key \"bad key\": invalid key name (Secret keys are made of letters, digits, '-', '_' and '.')");
}

#[test]
fn empty_file() {
    let s = Sandbox::new();
    assert_eq!(
        encrypt_error(&s, "e.yaml", b""),
        "error: e.yaml: file is empty"
    );
    assert_eq!(
        encrypt_error(&s, "w.yaml", b"\n  \n"),
        "error: w.yaml: file is empty"
    );
}

#[test]
fn a_file_that_is_not_utf8() {
    let s = Sandbox::new();
    let e = encrypt_error(
        &s,
        "l1.yaml",
        b"apiVersion: v1\nkind: ConfigMap\ndata: {a: \xe9t\xe9}\n",
    );
    assert_eq!(
        e,
        "error: l1.yaml: not UTF-8 text (invalid byte at offset 41)"
    );
}

#[test]
fn unknown_scope() {
    let s = Sandbox::new();
    let e = encrypt_error(
        &s,
        "u.yaml",
        b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: u\n  namespace: n\n  annotations: {gitops-seal.dev/scope: galaxy}\nstringData: {k: v}\n",
    );
    assert_eq!(e, "error: u.yaml: document 1 (Secret n/u): unknown scope \"galaxy\" (expected strict, namespace or cluster)");
}

#[test]
fn an_unknown_scope_flag_is_a_usage_error() {
    let s = Sandbox::new();
    s.write("a.yaml", MIXED);
    let r = s
        .run(&[
            "encrypt",
            "--scope",
            "galaxy",
            "-r",
            &s.recipient.clone(),
            "a.yaml",
        ])
        .fails();
    assert!(
        r.stderr.contains("invalid value 'galaxy' for '--scope"),
        "{}",
        r.stderr
    );
}

#[test]
fn one_bad_file_among_many_writes_none_of_them() {
    let s = Sandbox::new();
    s.write("a.yaml", MIXED);
    s.write("b.yaml", format!("{SECRET}data:\n  k: '***'\n"));
    let before = s.snapshot();
    let r = s
        .run(&[
            "encrypt",
            "--in-place",
            "-r",
            &s.recipient.clone(),
            "a.yaml",
            "b.yaml",
        ])
        .fails();
    assert_eq!(
        r.error_line(),
        "error: b.yaml: document 1 (Secret prod/db): key \"k\": data value is not valid base64"
    );
    assert_eq!(s.snapshot(), before);
}

#[test]
fn a_sealed_secret_with_a_missing_field() {
    let s = Sandbox::new();
    s.seal("m.yaml", MIXED);
    let sealed = s.read("m.yaml");
    let without_scope = sealed.replace("  scope: strict\n", "");
    assert_eq!(
        decrypt_error(&s, "m2.yaml", &without_scope),
        "error: m2.yaml: document 2 (SealedSecret prod/db): missing field spec.scope"
    );
    let without_recipients = sealed.replace("  recipients:\n", "  oldRecipients:\n");
    let e = decrypt_error(&s, "m3.yaml", &without_recipients);
    assert!(
        e.starts_with("error: m3.yaml: document 2: invalid YAML at line"),
        "{e}"
    );
    assert!(e.contains("oldRecipients"), "{e}");
}

#[test]
fn a_value_that_is_not_age() {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let sealed = s.read("a.yaml");
    let ct = ciphertext_line(&sealed, "password").to_string();
    let text = sealed.replace(&ct, "aGVsbG8gd29ybGQ=");
    assert_eq!(
        decrypt_error(&s, "n.yaml", &text),
        "error: n.yaml: document 2 (SealedSecret prod/db): key \"password\": not an age-encrypted value (unknown format)"
    );
}

#[test]
fn truncated_and_bit_flipped_ciphertexts() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let sealed = s.read("a.yaml");
    let ct = ciphertext_line(&sealed, "password").to_string();
    let bytes = b64.decode(&ct).unwrap();
    let truncated = b64.encode(&bytes[..bytes.len() - 5]);
    assert_eq!(
        decrypt_error(&s, "t.yaml", &sealed.replace(&ct, &truncated)),
        "error: t.yaml: document 2 (SealedSecret prod/db): key \"password\": ciphertext is corrupt or truncated (the age payload failed authentication)"
    );
    let mut flipped = bytes.clone();
    let last = flipped.len() - 3;
    flipped[last] ^= 0x01;
    assert_eq!(
        decrypt_error(&s, "f.yaml", &sealed.replace(&ct, &b64.encode(&flipped))),
        "error: f.yaml: document 2 (SealedSecret prod/db): key \"password\": ciphertext is corrupt or truncated (the age payload failed authentication)"
    );
    let bad_b64 = sealed.replace(&ct, "abc$");
    assert_eq!(
        decrypt_error(&s, "b.yaml", &bad_b64),
        "error: b.yaml: document 2 (SealedSecret prod/db): key \"password\": encryptedData value is not valid base64"
    );
}

#[test]
fn a_ciphertext_moved_to_another_key_or_secret_is_refused() {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let sealed = s.read("a.yaml");
    let pw = ciphertext_line(&sealed, "password").to_string();
    let user = ciphertext_line(&sealed, "user").to_string();
    let swapped = sealed
        .replace(&user, "SWAP")
        .replace(&pw, &user)
        .replace("SWAP", &pw);
    assert_eq!(
        decrypt_error(&s, "swap.yaml", &swapped),
        "error: swap.yaml: document 2 (SealedSecret prod/db): key \"password\": value was sealed for key \"user\", not \"password\" (scope strict); a ciphertext cannot be moved"
    );
    let renamed = sealed.replace("name: db", "name: other");
    assert_eq!(
        decrypt_error(&s, "ren.yaml", &renamed),
        "error: ren.yaml: document 2 (SealedSecret prod/other): key \"password\": value was sealed for name \"db\", not \"other\" (scope strict); a ciphertext cannot be moved"
    );
    let retyped = sealed.replace("type: Opaque", "type: kubernetes.io/service-account-token");
    assert_eq!(
        decrypt_error(&s, "type.yaml", &retyped),
        "error: type.yaml: document 2 (SealedSecret prod/db): key \"password\": value was sealed for type \"Opaque\", not \"kubernetes.io/service-account-token\" (scope strict); a ciphertext cannot be moved"
    );
    let widened = sealed.replace("scope: strict", "scope: cluster");
    assert_eq!(
        decrypt_error(&s, "wide.yaml", &widened),
        "error: wide.yaml: document 2 (SealedSecret prod/db): key \"password\": value was sealed for scope \"strict\", not \"cluster\" (scope cluster); a ciphertext cannot be moved"
    );
}

#[test]
fn the_wrong_identity() {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    s.run(&["keygen", "-o", "other.txt"]).ok();
    let r = s.run(&["decrypt", "-i", "other.txt", "a.yaml"]).fails();
    assert_eq!(
        r.error_line(),
        "error: a.yaml: document 2 (SealedSecret prod/db): key \"password\": none of the identities can open this value (it was sealed for other recipients)"
    );
}

#[test]
fn an_identity_readable_by_others_warns() {
    use std::os::unix::fs::PermissionsExt;
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    std::fs::set_permissions(s.path("id.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = s.run(&["decrypt", "-i", "id.txt", "a.yaml"]).ok();
    assert_eq!(
        r.stderr,
        "warning: identity file id.txt can be read by others (mode 0644); run: chmod 600 id.txt\n"
    );
}

#[test]
fn a_manifest_given_as_identity_points_to_in_place() {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let r = s.run(&["decrypt", "-i", "a.yaml", "a.yaml"]).fails();
    assert_eq!(
        r.error_line(),
        "error: a.yaml: invalid identity: this is a Kubernetes manifest, not an identity (-i is the identity, as in age; to rewrite a file in place use --in-place)"
    );
}

#[test]
fn plugin_recipients_name_the_line() {
    let s = Sandbox::new();
    s.write(
        "r.txt",
        "# team\nage1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t\n",
    );
    s.write("a.yaml", MIXED);
    let r = s.run(&["encrypt", "-R", "r.txt", "a.yaml"]).fails();
    assert_eq!(
        r.error_line(),
        "error: r.txt:2: invalid recipient \"age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t\": age plugin recipients are not supported; use a post-quantum (age1pq1...), X25519 (age1...) or SSH recipient"
    );
}

#[test]
fn errors_never_carry_plaintext() {
    let s = Sandbox::new();
    // A YAML error inside a Secret must not quote the line it is on.
    let e = encrypt_error(
        &s,
        "p.yaml",
        format!("{SECRET}stringData:\n  password: \"sup3rs3cret\n").as_bytes(),
    );
    assert!(!e.contains("sup3rs3cret"), "{e}");
}

#[test]
fn a_scope_annotation_smuggled_into_the_template_is_refused() {
    // Not bound, it would widen a strict value to cluster scope at the next edit.
    let s = Sandbox::new();
    s.seal(
        "s.yaml",
        &format!("{SECRET}stringData: {{password: hunter2}}\n"),
    );
    let sealed = s.read("s.yaml");
    let widened = sealed.replace(
        "  template:\n    type: Opaque\n",
        "  template:\n    type: Opaque\n    metadata:\n      annotations:\n        gitops-seal.dev/scope: cluster\n",
    );
    assert_ne!(widened, sealed);
    s.write("s.yaml", &widened);
    let e = decrypt_error(&s, "s.yaml", &widened);
    assert_eq!(
        e,
        "error: s.yaml: document 1 (SealedSecret prod/db): spec.template carries the annotation gitops-seal.dev/scope; the scope is spec.scope"
    );
    let v = s.run(&["verify", "-i", "id.txt", "s.yaml"]);
    assert_eq!(v.code, 1, "{}{}", v.stdout, v.stderr);
}

#[test]
fn parser_messages_never_quote_a_value() {
    let s = Sandbox::new();
    for value in ["1e999", ".inf", "-.inf", ".nan"] {
        let e = encrypt_error(
            &s,
            "v.yaml",
            format!("{SECRET}stringData:\n  pw: {value}\n").as_bytes(),
        );
        assert!(e.starts_with("error: v.yaml: document 1"), "{e}");
        assert!(!e.contains(value), "{e}");
    }
}

#[test]
fn a_secret_in_a_list_inside_a_list_is_refused_and_found() {
    let s = Sandbox::new();
    let nested = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  - apiVersion: v1\n    kind: Secret\n    metadata: {name: inner, namespace: ns}\n    stringData: {k: NESTEDPLAIN}\n";
    let e = encrypt_error(&s, "n.yaml", nested.as_bytes());
    assert_eq!(
        e,
        "error: n.yaml: document 1 (List item 1): a kind: List inside a List holds a Secret; flatten the lists"
    );
    let r = s.run(&["scan", "n.yaml"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        "n.yaml: document 1 (List item 1.1: Secret ns/inner)\n"
    );
}

#[test]
fn a_missing_file_prints_the_error_and_its_os_cause() {
    let s = Sandbox::new();
    let r = s.run(&["decrypt", "-i", "id.txt", "missing.yaml"]).fails();
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: missing.yaml: no such file or directory\n  caused by: No such file or directory (os error 2)\n"
    );
}

#[test]
fn encrypt_and_decrypt_refuse_names_kubernetes_would_refuse() {
    let s = Sandbox::new();
    let secret = |name: &str, ns: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: \"{name}\", namespace: \"{ns}\"}}\nstringData: {{password: hunter2}}\n")
    };
    assert_eq!(
        encrypt_error(&s, "a.yaml", secret("db", "prod/db").as_bytes()),
        "error: a.yaml: document 2 (Secret prod/db/db): metadata.namespace is not a valid Kubernetes name (it must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)"
    );
    assert_eq!(
        encrypt_error(&s, "b.yaml", secret("Db_1", "prod").as_bytes()),
        "error: b.yaml: document 2 (Secret prod/Db_1): metadata.name is not a valid Kubernetes name (it must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit, at most 253 characters)"
    );
    let long = "a".repeat(64);
    assert!(encrypt_error(&s, "c.yaml", secret("db", &long).as_bytes())
        .contains("metadata.namespace is not a valid Kubernetes name"));
    // A cluster-wide value binds no namespace: moved into namespace "prod/db" it would open.
    s.seal_with(&["--scope", "cluster"], "d.yaml", &secret("db", "prod"));
    let moved = s
        .read("d.yaml")
        .replace("namespace: prod", "namespace: prod/db");
    assert_ne!(moved, s.read("d.yaml"));
    s.write("d.yaml", moved);
    let r = s.run(&["decrypt", "-i", "id.txt", "d.yaml"]).fails();
    assert_eq!(
        r.error_line(),
        "error: d.yaml: document 2 (SealedSecret prod/db/db): metadata.namespace is not a valid Kubernetes name (it must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)"
    );
    assert!(!r.stdout.contains("hunter2"));
}
