//! Folder walks pass over empty files, as kubectl does when it reads a folder: every command
//! that walks (encrypt, decrypt, verify, rekey, import, scan, keys usage) exits as it would without them,
//! says on stderr which file it passed over, and still processes the real files beside them.
//! A file named on the command line that is empty stays an error.

use crate::harness::Sandbox;

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\nstringData:\n  password: hunter2\n";

/// `tree/` with an empty `.yaml`, a whitespace-only `.json` (one folder down) and `db.yaml`, a
/// plaintext Secret unless `sealed`.
fn tree(s: &Sandbox, sealed: bool) {
    s.write("tree/empty.yaml", "");
    s.write("tree/sub/empty.json", "\n  \n");
    if sealed {
        s.seal("tree/db.yaml", SECRET);
    } else {
        s.write("tree/db.yaml", SECRET);
    }
}

/// Both empty files named in a note of their own, passed over.
#[track_caller]
fn assert_notes(stderr: &str) {
    for f in ["tree/empty.yaml", "tree/sub/empty.json"] {
        assert!(
            stderr.contains(&format!("note: {f}: empty file, skipped")),
            "no note for {f}: {stderr}"
        );
    }
    assert!(!stderr.contains("file is empty"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn encrypt_in_place_seals_the_tree_and_passes_over_empty_files() {
    let s = Sandbox::new();
    tree(&s, false);
    let recipient = s.recipient.clone();
    let r = s
        .run(&["encrypt", "--in-place", "-r", &recipient, "tree"])
        .ok();
    assert_notes(&r.stderr);
    assert!(
        r.stderr.contains("sealed 1 file(s)"),
        "the real file is sealed: {}",
        r.stderr
    );
    let db = s.read("tree/db.yaml");
    assert!(
        db.contains("kind: SealedSecret") && !db.contains("hunter2"),
        "{db}"
    );
    // The empty files are left as they were.
    assert_eq!(s.read("tree/empty.yaml"), "");
    assert_eq!(s.read("tree/sub/empty.json"), "\n  \n");

    // To standard output too: the sealed Secret, nothing for the empty files.
    let s = Sandbox::new();
    tree(&s, false);
    let r = s.run(&["encrypt", "-r", &recipient, "tree"]).ok();
    assert_notes(&r.stderr);
    assert!(r.stdout.contains("kind: SealedSecret"), "{}", r.stdout);
    assert!(!r.stdout.contains("hunter2"));
}

#[test]
fn an_empty_file_named_on_its_own_is_still_an_error() {
    let s = Sandbox::new();
    tree(&s, false);
    let recipient = s.recipient.clone();
    for f in ["tree/empty.yaml", "tree/sub/empty.json"] {
        let r = s
            .run(&["encrypt", "--in-place", "-r", &recipient, f])
            .fails();
        assert_eq!(r.code, 2);
        assert_eq!(r.error_line(), format!("error: {f}: file is empty"));
    }
    // Named beside a folder: the named one is an error, and nothing is written.
    let before = s.snapshot();
    let r = s
        .run(&[
            "encrypt",
            "--in-place",
            "-r",
            &recipient,
            "tree",
            "tree/empty.yaml",
        ])
        .fails();
    assert!(
        r.stderr.contains("tree/empty.yaml: file is empty"),
        "{}",
        r.stderr
    );
    assert_eq!(s.snapshot(), before);
}

#[test]
fn decrypt_opens_the_tree_and_passes_over_empty_files() {
    let s = Sandbox::new();
    tree(&s, true);
    let r = s.run(&["decrypt", "-i", "id.txt", "tree"]).ok();
    assert_notes(&r.stderr);
    assert!(r.stdout.contains("kind: Secret"), "{}", r.stdout);
    // One file's output, with no separator for the files passed over.
    assert!(!r.stdout.contains("---"), "{}", r.stdout);
}

#[test]
fn keys_usage_reads_the_tree_and_passes_over_empty_files() {
    let s = Sandbox::new();
    tree(&s, true);
    let r = s.run(&["keys", "usage", "-i", "id.txt", "tree"]).ok();
    assert_notes(&r.stderr);
    assert!(r.stdout.contains("tree/db.yaml"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("ok: every one of 1 value(s) opens with a given key"),
        "{}",
        r.stderr
    );
}

#[test]
fn verify_checks_the_tree_and_passes_over_empty_files() {
    let s = Sandbox::new();
    tree(&s, true);
    let r = s.run(&["verify", "tree"]).ok();
    assert_notes(&r.stderr);
    assert!(r.stderr.contains("ok: 1 file(s) verified"), "{}", r.stderr);

    // The real file is read: in plaintext, it is the one finding.
    let s = Sandbox::new();
    tree(&s, false);
    let r = s.run(&["verify", "tree"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_notes(&r.stderr);
    assert_eq!(
        r.stdout,
        "tree/db.yaml: document 1 (Secret prod/db): plaintext Secret: seal it with `gitops-seal encrypt --in-place FILE`\n"
    );
}

#[test]
fn rekey_rekeys_the_tree_and_passes_over_empty_files() {
    let s = Sandbox::new();
    tree(&s, true);
    let new = s.new_identity("new.txt");
    let r = s.run(&["rekey", "-i", "id.txt", "-r", &new, "tree"]).ok();
    assert_notes(&r.stderr);
    assert!(r.stderr.contains("rekeyed 1 file(s)"), "{}", r.stderr);
    let opened = s.run(&["decrypt", "-i", "new.txt", "tree/db.yaml"]).ok();
    assert!(opened.stdout.contains("kind: Secret"), "{}", opened.stdout);
    assert_eq!(s.read("tree/empty.yaml"), "");
}

#[test]
fn scan_reads_the_tree_and_passes_over_empty_files() {
    let s = Sandbox::new();
    tree(&s, true);
    let r = s.run(&["scan", "tree"]).ok();
    assert_notes(&r.stderr);
    assert_eq!(r.stdout, "");

    // The real file is read: in plaintext, it is the one finding.
    let s = Sandbox::new();
    tree(&s, false);
    let r = s.run(&["scan", "tree"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_notes(&r.stderr);
    assert!(
        r.stdout
            .starts_with("tree/db.yaml: document 1 (Secret prod/db)"),
        "{}",
        r.stdout
    );
}

#[test]
fn import_imports_the_tree_and_passes_over_empty_files() {
    let s = Sandbox::new();
    tree(&s, true);
    let vectors = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/bitnami");
    for f in ["app.yaml", "keys-backup.yaml"] {
        let to = if f == "app.yaml" { "tree/app.yaml" } else { f };
        s.write(to, std::fs::read(format!("{vectors}/{f}")).unwrap());
    }
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            s.path("keys-backup.yaml"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let recipient = s.recipient.clone();
    let r = s
        .run(&[
            "import",
            "sealed-secrets",
            "--key",
            "keys-backup.yaml",
            "-r",
            &recipient,
            "--in-place",
            "tree",
        ])
        .ok();
    assert_notes(&r.stderr);
    assert!(
        r.stderr.contains("imported 2 object(s) in 1 file(s)"),
        "{}",
        r.stderr
    );
    let app = s.read("tree/app.yaml");
    assert_eq!(
        app.matches("apiVersion: gitops-seal.dev/v1").count(),
        2,
        "{app}"
    );
}
