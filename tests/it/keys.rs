//! `gitops-seal keys usage` and `recipient --fingerprint` on real files: which of the given
//! keys opens each value, offline, before one of them is deleted.

use crate::harness::Sandbox;

fn secret(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: shop\nstringData:\n  password: {value}\n  user: app\n"
    )
}

#[test]
fn keys_usage_names_the_keys_that_open_each_value_and_the_values_none_opens() {
    let s = Sandbox::new();
    let old = s.new_identity("old.txt");
    let new = s.new_identity("new.txt");
    let stranger = s.new_identity("stranger.txt");
    let fp = |file: &str| {
        s.run(&["recipient", "-i", file, "--fingerprint"])
            .ok()
            .stdout
            .trim()
            .to_string()
    };
    let (old_fp, new_fp) = (fp("old.txt"), fp("new.txt"));
    assert!(old_fp.starts_with("pq:") && old_fp.len() == 19, "{old_fp}");
    assert_ne!(old_fp, new_fp);

    // a: the old key only; b: both; c (in a subfolder): a key not given.
    s.write("tree/a.yaml", secret("a", "one"));
    s.run(&["encrypt", "--in-place", "-r", &old, "tree/a.yaml"])
        .ok();
    s.write("tree/b.yaml", secret("b", "two"));
    s.run(&[
        "encrypt",
        "--in-place",
        "-r",
        &old,
        "-r",
        &new,
        "tree/b.yaml",
    ])
    .ok();
    s.write("tree/sub/c.yaml", secret("c", "three"));
    s.run(&["encrypt", "--in-place", "-r", &stranger, "tree/sub/c.yaml"])
        .ok();
    let before = s.snapshot();

    let r = s
        .run(&["keys", "usage", "-i", "old.txt", "-i", "new.txt", "tree"])
        .fails();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let line = |object: &str, key: &str| -> String {
        r.stdout
            .lines()
            .find(|l| l.contains(object) && l.contains(&format!("\"{key}\"")))
            .unwrap_or_else(|| panic!("no line for {object} {key}:\n{}", r.stdout))
            .to_string()
    };
    let a = line("SealedSecret shop/a", "password");
    assert!(a.contains("tree/a.yaml") && a.contains("document 1"), "{a}");
    assert!(
        a.contains(&format!("{old_fp} (old.txt)")) && !a.contains(&new_fp),
        "{a}"
    );
    let b = line("SealedSecret shop/b", "user");
    assert!(b.contains(&old_fp) && b.contains(&new_fp), "{b}");
    let c = line("SealedSecret shop/c", "password");
    assert!(c.contains("none of the given keys opens it"), "{c}");
    assert_eq!(r.stdout.lines().count(), 6, "{}", r.stdout);
    assert!(
        r.stderr.contains(&format!(
            "{old_fp} (old.txt): opens 4 of 6 value(s), 2 of them with no other given key"
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("2 value(s) that none of the given keys opens"),
        "{}",
        r.stderr
    );
    // Nothing opened is printed, nothing written.
    for value in ["one", "two", "three"] {
        assert!(!r.stdout.contains(&format!(": {value}")), "{}", r.stdout);
    }
    assert_eq!(s.snapshot(), before);

    // With the keys that stay, before deleting the old one: b is covered, a is not.
    let r = s
        .run(&["keys", "usage", "-i", "new.txt", "tree/b.yaml"])
        .ok();
    assert!(
        r.stderr
            .contains("ok: every one of 2 value(s) opens with a given key"),
        "{}",
        r.stderr
    );
    let r = s
        .run(&["keys", "usage", "-i", "new.txt", "tree/a.yaml"])
        .fails();
    assert_eq!(r.code, 1);

    // An identity is required; a bad one is named.
    let r = s.run(&["keys", "usage", "tree"]).fails();
    assert_eq!(r.code, 2, "{}", r.stderr);
    s.write("bad.txt", "not a key\n");
    let r = s.run(&["keys", "usage", "-i", "bad.txt", "tree"]).fails();
    assert!(r.stderr.contains("bad.txt"), "{}", r.stderr);
}

/// An OpenSSH key (made by the real `ssh-keygen`) has a recipient and a fingerprint like any
/// other: `recipient -i` prints its `.pub` key without the comment, and `keys usage` names it.
#[test]
fn an_ssh_key_has_a_recipient_and_a_fingerprint() {
    let s = Sandbox::new();
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f"])
        .arg(s.path("id_ed25519"))
        .output()
        .expect("ssh-keygen (openssh-client) runs");
    assert!(made.status.success(), "{made:?}");
    let public = std::fs::read_to_string(s.path("id_ed25519.pub")).unwrap();
    let public: Vec<&str> = public.split_whitespace().take(2).collect();
    let public = public.join(" ");

    let r = s.run(&["recipient", "-i", "id_ed25519"]).ok();
    assert_eq!(r.stdout.trim(), public);
    let fp = s
        .run(&["recipient", "-i", "id_ed25519", "--fingerprint"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(fp.starts_with("ssh:") && fp.len() == 20, "{fp}");

    s.write("a.yaml", secret("a", "one"));
    s.run(&["encrypt", "--in-place", "-r", &public, "a.yaml"])
        .ok();
    let r = s.run(&["keys", "usage", "-i", "id_ed25519", "a.yaml"]).ok();
    assert!(
        r.stdout.contains(&format!("{fp} (id_ed25519)")),
        "{}",
        r.stdout
    );
}
