use std::os::unix::fs::PermissionsExt;

use crate::harness::{ciphertext_line, Sandbox, MIXED};

#[test]
fn encrypt_seals_secrets_and_copies_everything_else_byte_for_byte() {
    let s = Sandbox::new();
    s.write("app.yaml", MIXED);
    let out = s
        .run(&["encrypt", "-r", &s.recipient, "app.yaml"])
        .ok()
        .stdout;
    let config_doc = MIXED.split("---\n").next().unwrap();
    assert!(out.starts_with(config_doc), "{out}");
    assert!(out.contains(
        "kind: SealedSecret\nmetadata:\n  name: db\n  namespace: prod\nspec:\n  scope: strict\n"
    ));
    assert!(out.contains(
        "  template:\n    type: Opaque\n    metadata:\n      labels:\n        app: db\n"
    ));
    for plaintext in ["hunter2", "aHVudGVyMg==", "admin", "last-applied"] {
        assert!(!out.contains(plaintext), "{plaintext} leaked into {out}");
    }
    s.write("sealed.yaml", &out);
    let back = s
        .run(&["decrypt", "-i", "id.txt", "sealed.yaml"])
        .ok()
        .stdout;
    assert!(back.starts_with(config_doc));
    // stringData wins over data on the same key, as in Kubernetes.
    assert!(
        back.contains("stringData:\n  password: hunter2\n  user: admin\n"),
        "{back}"
    );
}

#[test]
fn encrypting_a_sealed_file_again_changes_nothing() {
    let s = Sandbox::new();
    s.seal("app.yaml", MIXED);
    let once = s.read("app.yaml");
    let r = s
        .run(&["encrypt", "--in-place", "-r", &s.recipient, "app.yaml"])
        .ok();
    assert_eq!(s.read("app.yaml"), once);
    assert_eq!(r.stderr, "sealed 0 file(s); 1 had nothing to seal\n");
}

#[test]
fn binary_values_round_trip_byte_for_byte() {
    use base64::Engine;
    let s = Sandbox::new();
    let bytes: Vec<u8> = (0..=255u8).chain([0, 0, b'\n', 0xff]).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    s.seal(
        "bin.yaml",
        &format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: b, namespace: ns}}\ndata:\n  blob: {b64}\n"),
    );
    let back = s.run(&["decrypt", "-i", "id.txt", "bin.yaml"]).ok().stdout;
    assert!(back.contains(&format!("data:\n  blob: {b64}\n")), "{back}");
}

#[test]
fn json_manifests_stay_json() {
    let s = Sandbox::new();
    s.seal(
        "s.json",
        r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"t","namespace":"n"},"stringData":{"token":"abc"}}"#,
    );
    let sealed: serde_json::Value = serde_json::from_str(&s.read("s.json")).unwrap();
    assert_eq!(sealed["kind"], "SealedSecret");
    assert!(sealed["spec"]["encryptedData"]["token"].is_string());
    let back = s.run(&["decrypt", "-i", "id.txt", "s.json"]).ok().stdout;
    let back: serde_json::Value = serde_json::from_str(&back).unwrap();
    assert_eq!(back["stringData"]["token"], "abc");
}

#[test]
fn secrets_inside_a_list_are_sealed_in_place() {
    let s = Sandbox::new();
    s.seal(
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: c}\n    data: {a: b}\n  - apiVersion: v1\n    kind: Secret\n    metadata: {name: s, namespace: n}\n    stringData: {k: listvalue}\n",
    );
    let sealed = s.read("list.yaml");
    assert!(!sealed.contains("listvalue"));
    assert!(sealed.contains("kind: List"));
    assert!(
        sealed.contains("- apiVersion: v1\n    kind: ConfigMap"),
        "{sealed}"
    );
    assert!(sealed.contains("kind: SealedSecret"));
    // The sealed list verifies clean: no plaintext Secret is left in it.
    s.run(&["verify", "list.yaml"]).ok();
    // And opens again, item by item, the ConfigMap untouched.
    let opened = s.run(&["decrypt", "-i", "id.txt", "list.yaml"]).ok().stdout;
    assert!(opened.contains("kind: List"), "{opened}");
    assert!(opened.contains("k: listvalue"), "{opened}");
    assert!(!opened.contains("SealedSecret"), "{opened}");
    assert!(opened.contains("kind: ConfigMap"), "{opened}");
    // Without the key, the error names the list item.
    let other = Sandbox::new();
    std::fs::copy(s.path("list.yaml"), other.path("list.yaml")).unwrap();
    let r = other.run(&["decrypt", "-i", "id.txt", "list.yaml"]).fails();
    assert!(r.error_line().contains("document 1"), "{}", r.stderr);
    assert!(r.error_line().contains("SealedSecret n/s"), "{}", r.stderr);
}

#[test]
fn a_json_list_round_trips() {
    let s = Sandbox::new();
    s.seal(
        "list.json",
        r#"{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "j", "namespace": "n"}, "data": {"k": "aGk="}}]}"#,
    );
    let opened = s.run(&["decrypt", "-i", "id.txt", "list.json"]).ok().stdout;
    let v: serde_json::Value = serde_json::from_str(&opened).unwrap();
    let item = &v["items"][0];
    assert_eq!(item["kind"], "Secret");
    assert_eq!(item["stringData"]["k"], "hi");
}

#[test]
fn a_secret_without_values_is_left_as_it_is() {
    let s = Sandbox::new();
    let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: sa-token\n  annotations: {kubernetes.io/service-account.name: default}\ntype: kubernetes.io/service-account-token\n";
    s.write("t.yaml", text);
    s.run(&["encrypt", "--in-place", "-r", &s.recipient, "t.yaml"])
        .ok();
    assert_eq!(s.read("t.yaml"), text);
}

#[test]
fn in_place_keeps_the_file_mode() {
    let s = Sandbox::new();
    let p = s.write("app.yaml", MIXED);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    s.run(&["encrypt", "--in-place", "-r", &s.recipient, "app.yaml"])
        .ok();
    let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    assert!(s.read("app.yaml").contains("SealedSecret"));
}

#[test]
fn a_secret_without_namespace_is_bound_to_dash_n_and_keeps_no_namespace() {
    let s = Sandbox::new();
    let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: smtp}\nstringData: {pw: x}\n";
    s.write("k.yaml", text);
    let r = s.run(&["encrypt", "-r", &s.recipient, "k.yaml"]).fails();
    assert_eq!(
        r.error_line(),
        "error: k.yaml: document 1 (Secret smtp): no namespace to bind to scope strict: set metadata.namespace, pass --namespace/-n, or add `namespace:` to the matching rule in .gitops-seal.yaml"
    );
    s.run(&[
        "encrypt",
        "--in-place",
        "-n",
        "mail",
        "-r",
        &s.recipient,
        "k.yaml",
    ])
    .ok();
    let sealed = s.read("k.yaml");
    assert!(
        sealed.contains("metadata:\n  name: smtp\nspec:"),
        "{sealed}"
    );
    s.run(&["decrypt", "-i", "id.txt", "-n", "mail", "k.yaml"])
        .ok();
    let wrong = s
        .run(&["decrypt", "-i", "id.txt", "-n", "other", "k.yaml"])
        .fails();
    assert_eq!(
        wrong.error_line(),
        "error: k.yaml: document 1 (SealedSecret smtp): key \"pw\": value was sealed for namespace \"mail\", not \"other\" (scope strict); a ciphertext cannot be moved"
    );
}

#[test]
fn stdin_and_stdout_with_a_dash() {
    let s = Sandbox::new();
    let sealed = s
        .run_stdin(&["encrypt", "-r", &s.recipient, "-"], MIXED.as_bytes())
        .ok()
        .stdout;
    let back = s
        .run_stdin(&["decrypt", "-i", "id.txt", "-"], sealed.as_bytes())
        .ok()
        .stdout;
    assert!(back.contains("password: hunter2"));
}

#[test]
fn rules_of_the_nearest_config_choose_recipients_scope_and_namespace() {
    let s = Sandbox::new();
    let other = Sandbox::new();
    s.write(
        "repo/keys/team/a.pub",
        format!("# team member\n{}\n", s.recipient),
    );
    s.write("repo/keys/team/b.pub", format!("{}\n", other.recipient));
    s.write(
        "repo/.gitops-seal.yaml",
        "rules:\n  - path: \"clusters/prod/**\"\n    recipients: [\"keys/team/*.pub\"]\n    scope: namespace\n    namespace: prod\n",
    );
    s.write(
        "repo/clusters/prod/app/s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: v}\n",
    );
    s.run(&["encrypt", "--in-place", "repo/clusters/prod/app/s.yaml"])
        .ok();
    let sealed = s.read("repo/clusters/prod/app/s.yaml");
    assert!(sealed.contains("scope: namespace"));
    assert!(sealed.contains(&s.recipient) && sealed.contains(&other.recipient));
    // The rule's namespace binds it: decrypt finds it through the same rule.
    s.run(&["decrypt", "-i", "id.txt", "repo/clusters/prod/app/s.yaml"])
        .ok();
    // A path no rule matches has no recipients.
    s.write(
        "repo/other/s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: x}\nstringData: {k: v}\n",
    );
    let r = s.run(&["encrypt", "repo/other/s.yaml"]).fails();
    assert_eq!(
        r.error_line(),
        "error: repo/other/s.yaml: document 1 (Secret x/s): no recipients: pass -r/-R, or add a rule matching this path to .gitops-seal.yaml"
    );
}

#[test]
fn keygen_writes_0600_and_never_overwrites() {
    let s = Sandbox::new();
    let r = s.run(&["keygen", "-o", "new.txt"]).ok();
    assert!(r.stderr.starts_with("Public key: age1"), "{}", r.stderr);
    let mode = std::fs::metadata(s.path("new.txt"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let before = s.read("new.txt");
    let again = s.run(&["keygen", "-o", "new.txt"]).fails();
    assert_eq!(
        again.error_line(),
        "error: new.txt: already exists; keygen never overwrites an identity"
    );
    assert_eq!(s.read("new.txt"), before);
}

#[test]
fn scope_cluster_lets_a_value_move_and_decrypt_shows_the_scope() {
    let s = Sandbox::new();
    s.seal("a.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\n  namespace: one\n  annotations: {gitops-seal.dev/scope: cluster}\nstringData: {k: moved}\n");
    let moved = s
        .read("a.yaml")
        .replace("name: a\n  namespace: one", "name: b\n  namespace: two");
    s.write("b.yaml", moved);
    let back = s.run(&["decrypt", "-i", "id.txt", "b.yaml"]).ok().stdout;
    assert!(back.contains("gitops-seal.dev/scope: cluster"));
    assert!(back.contains("k: moved"));
    let _ = ciphertext_line(&s.read("a.yaml"), "k");
}

#[test]
fn list_items_keep_their_meaning_when_the_list_is_re_emitted() {
    // Re-emitting a List goes through an untyped model. Secret items keep the text a typed
    // read sees (`n` stays a namespace, not `false`); other items keep what Kubernetes reads
    // (YAML 1.1: `0640` is 416, `yes` is true).
    let s = Sandbox::new();
    s.seal(
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: d}\n  spec:\n    template:\n      spec:\n        hostNetwork: yes\n        volumes: [{name: s, secret: {secretName: s, defaultMode: 0640}}]\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s, namespace: n, labels: {tier: off}}\n  stringData: {k: v}\n",
    );
    let sealed = s.read("list.yaml");
    assert!(sealed.contains("namespace: \"n\""), "{sealed}");
    assert!(sealed.contains("defaultMode: 416"), "{sealed}");
    assert!(sealed.contains("hostNetwork: true"), "{sealed}");
    let opened = s.run(&["decrypt", "-i", "id.txt", "list.yaml"]).ok().stdout;
    assert!(opened.contains("namespace: \"n\""), "{opened}");
    assert!(opened.contains("tier: \"off\""), "{opened}");
    assert!(opened.contains("defaultMode: 416"), "{opened}");
}

#[test]
fn the_identity_variable_takes_a_path_a_key_or_a_whole_identity_file() {
    let s = Sandbox::new();
    s.seal("a.yaml", crate::harness::MIXED);
    let file = s.read("id.txt");
    let key = file
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    for value in [s.path("id.txt").display().to_string(), key.clone(), file] {
        let out = s
            .command(&["decrypt", "a.yaml"])
            .env("GITOPS_SEAL_IDENTITY", &value)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A mangled key is reported without being echoed.
    let mangled = format!("# mine\n{}x\n", key);
    let out = s
        .command(&["decrypt", "a.yaml"])
        .env("GITOPS_SEAL_IDENTITY", &mangled)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains(&key[20..]), "the key leaked: {err}");
    assert!(err.contains("$GITOPS_SEAL_IDENTITY"), "{err}");
    // A key in a form not recognised (base64 of the file, say) is not echoed either.
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(s.read("id.txt"));
    let out = s
        .command(&["decrypt", "a.yaml"])
        .env("GITOPS_SEAL_IDENTITY", &encoded)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!err.contains(&encoded[..20]), "the value was echoed: {err}");
}

#[test]
fn several_files_on_stdout_stay_separate_documents() {
    let s = Sandbox::new();
    // No newline at the end of the first file.
    s.write(
        "a.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}",
    );
    s.write(
        "b.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: b, namespace: n}\nstringData: {k: v}\n",
    );
    let out = s
        .run(&["encrypt", "-r", &s.recipient.clone(), "a.yaml", "b.yaml"])
        .ok()
        .stdout;
    assert!(out.contains("data: {k: v}\n---\n"), "{out}");
}

#[test]
fn in_place_through_a_symlink_seals_the_target_and_keeps_the_link() {
    let s = Sandbox::new();
    s.write(
        "shared/s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\nstringData: {k: linked-value}\n",
    );
    std::fs::create_dir_all(s.path("app")).unwrap();
    std::os::unix::fs::symlink("../shared/s.yaml", s.path("app/s.yaml")).unwrap();
    s.run(&[
        "encrypt",
        "--in-place",
        "-r",
        &s.recipient.clone(),
        "app/s.yaml",
    ])
    .ok();
    let link = std::fs::symlink_metadata(s.path("app/s.yaml")).unwrap();
    assert!(link.file_type().is_symlink(), "the link is kept");
    let target = s.read("shared/s.yaml");
    assert!(target.contains("kind: SealedSecret") && !target.contains("linked-value"));
}

#[test]
fn recipient_globs_may_start_with_dot_slash() {
    let s = Sandbox::new();
    s.write("keys/team/me.pub", format!("{}\n", s.recipient));
    s.write(
        ".gitops-seal.yaml",
        "rules:\n  - path: '**'\n    recipients: ['./keys/team/*.pub']\n",
    );
    s.write(
        "s.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\nstringData: {k: v}\n",
    );
    s.run(&["encrypt", "--in-place", "s.yaml"]).ok();
    assert!(s.read("s.yaml").contains(&s.recipient));
}

#[test]
fn a_heading_comment_before_the_next_document_survives_sealing() {
    let s = Sandbox::new();
    let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\nstringData:\n  conf: |\n    a=1\n    # hidden-in-value\n\n# the cache\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
    s.seal("f.yaml", text);
    let sealed = s.read("f.yaml");
    assert!(
        sealed.contains("\n# the cache\n---\napiVersion: v1\nkind: ConfigMap\n"),
        "{sealed}"
    );
    assert!(!sealed.contains("hidden-in-value"), "{sealed}");
    let opened = s.run(&["decrypt", "-i", "id.txt", "f.yaml"]).ok().stdout;
    assert!(opened.contains("# the cache\n---\n"), "{opened}");
    assert!(opened.contains("# hidden-in-value"), "{opened}");
}

#[test]
fn a_quoted_value_whose_last_line_starts_with_a_hash_is_never_copied_out() {
    let s = Sandbox::new();
    s.write(
        "leak.json",
        "{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"db\", \"namespace\": \"ns\"}, \"stringData\": {\"cfg\": \"user=app\n#password=hunter2\"}}\n",
    );
    s.run(&[
        "encrypt",
        "--in-place",
        "-r",
        &s.recipient.clone(),
        "leak.json",
    ])
    .ok();
    let sealed = s.read("leak.json");
    assert!(!sealed.contains("hunter2"), "{sealed}");
    s.write(
        "leak.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: ns}\nstringData:\n  password: \"hunter2\n#TOPSECRET-TAIL\"\n",
    );
    s.run(&[
        "encrypt",
        "--in-place",
        "-r",
        &s.recipient.clone(),
        "leak.yaml",
    ])
    .ok();
    assert!(!s.read("leak.yaml").contains("TOPSECRET"));
}

#[test]
fn decrypt_keeps_crlf_line_endings_and_a_bom_like_encrypt() {
    let s = Sandbox::new();
    let plain = format!("\u{feff}{}", MIXED.replace('\n', "\r\n"));
    s.write("a.yaml", &plain);
    s.run(&[
        "encrypt",
        "--in-place",
        "-r",
        &s.recipient.clone(),
        "a.yaml",
    ])
    .ok();
    let sealed = s.read("a.yaml");
    assert!(sealed.starts_with('\u{feff}'), "{sealed:?}");
    assert!(!sealed.replace("\r\n", "").contains('\n'), "{sealed:?}");
    let back = s.run(&["decrypt", "-i", "id.txt", "a.yaml"]).ok().stdout;
    assert!(back.starts_with('\u{feff}'), "the BOM is kept: {back:?}");
    assert!(
        !back.replace("\r\n", "").contains('\n'),
        "every line ends in CRLF: {back:?}"
    );
    assert!(back.contains("password: hunter2\r\n"), "{back:?}");
    // What decrypt gives back seals again to the same file, byte for byte in its layout.
    s.write("b.yaml", &back);
    s.run(&[
        "encrypt",
        "--in-place",
        "-r",
        &s.recipient.clone(),
        "b.yaml",
    ])
    .ok();
    let again = s.read("b.yaml");
    assert_eq!(again.lines().count(), sealed.lines().count());
    assert!(!again.replace("\r\n", "").contains('\n'));
}
