//! The Git merge driver, driven through the real `git` command in temporary repositories.

use crate::harness::{git, Sandbox};

const BASE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: prod\ndata:\n  one: \"1\"\n  two: \"2\"\n  three: \"3\"\n  four: \"4\"\n  five: \"5\"\n  six: \"6\"\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\nstringData:\n  a: alpha\n  b: beta\n  c: gamma\n";

/// A repository with the driver installed and a sealed `s.yaml` committed on `main`, and a
/// branch `other` at the same commit.
fn repo() -> Sandbox {
    repo_with(BASE, |sealed| sealed)
}

/// [`repo`] with `plain` sealed, then passed through `adjust` before the first commit.
fn repo_with(plain: &str, adjust: impl FnOnce(String) -> String) -> Sandbox {
    let s = Sandbox::new();
    git(&s, &["init", "-q", "-b", "main"]).ok();
    s.run(&["merge-driver", "--install"]).ok();
    s.write(".gitignore", "id.txt\n*.txt\n.config/\nrun/\n");
    s.seal("s.yaml", plain);
    s.write("s.yaml", adjust(s.read("s.yaml")));
    git(&s, &["add", "-A"]).ok();
    git(&s, &["commit", "-qm", "base"]).ok();
    git(&s, &["branch", "other"]).ok();
    s
}

fn commit_all(s: &Sandbox, msg: &str) {
    git(s, &["commit", "-qam", msg]).ok();
}

fn set(s: &Sandbox, key: &str, value: &str) {
    s.run(&["set", "s.yaml", "db", key, "--from-literal", value])
        .ok();
}

fn opened(s: &Sandbox) -> String {
    s.run(&["decrypt", "-i", "id.txt", "s.yaml"]).ok().stdout
}

#[test]
fn adjacent_keys_changed_on_two_branches_merge_and_unseal() {
    let s = repo();
    set(&s, "a", "alpha-2");
    commit_all(&s, "change a");
    git(&s, &["checkout", "-q", "other"]).ok();
    set(&s, "b", "beta-2");
    commit_all(&s, "change b");
    git(&s, &["checkout", "-q", "main"]).ok();
    let m = git(&s, &["merge", "-q", "--no-edit", "other"]);
    assert_eq!(m.code, 0, "{}{}", m.stdout, m.stderr);
    let text = opened(&s);
    assert!(
        text.contains("a: alpha-2") && text.contains("b: beta-2") && text.contains("c: gamma"),
        "{text}"
    );
    assert!(!s.read("s.yaml").contains("<<<<<<<"));
}

#[test]
fn without_the_driver_the_same_merge_conflicts() {
    let s = repo();
    std::fs::remove_file(s.path(".gitattributes")).unwrap();
    commit_all(&s, "no driver");
    git(&s, &["branch", "-f", "other"]).ok();
    set(&s, "a", "alpha-2");
    commit_all(&s, "change a");
    git(&s, &["checkout", "-q", "other"]).ok();
    set(&s, "b", "beta-2");
    commit_all(&s, "change b");
    git(&s, &["checkout", "-q", "main"]).ok();
    // A content conflict in s.yaml, not any failure: exit 1, the file unmerged in the index,
    // and Git's markers around the adjacent sealed lines.
    let m = git(&s, &["merge", "-q", "--no-edit", "other"]);
    assert_eq!(m.code, 1, "{}{}", m.stdout, m.stderr);
    let unmerged = git(&s, &["diff", "--name-only", "--diff-filter=U"]).ok();
    assert_eq!(unmerged.stdout, "s.yaml\n");
    let text = s.read("s.yaml");
    assert!(
        text.contains("<<<<<<< HEAD\n")
            && text.contains("\n=======\n")
            && text.contains(">>>>>>> other\n"),
        "{text}"
    );
}

#[test]
fn the_same_key_changed_on_both_sides_conflicts_on_that_key_only() {
    let s = repo();
    set(&s, "a", "mine");
    commit_all(&s, "a mine");
    git(&s, &["checkout", "-q", "other"]).ok();
    set(&s, "a", "theirs");
    set(&s, "c", "gamma-2");
    commit_all(&s, "a theirs");
    git(&s, &["checkout", "-q", "main"]).ok();
    let m = git(&s, &["merge", "-q", "--no-edit", "other"]);
    assert_ne!(m.code, 0);
    assert!(
        m.stderr.contains(
            "s.yaml: conflict: SealedSecret prod/db: key \"a\": changed differently on both sides"
        ),
        "{}",
        m.stderr
    );
    let text = s.read("s.yaml");
    let block = text
        .split("<<<<<<< ours\n")
        .nth(1)
        .unwrap()
        .split(">>>>>>> theirs\n")
        .next()
        .unwrap();
    assert_eq!(
        block.lines().count(),
        3,
        "markers wrap the key's lines only: {block}"
    );
    assert!(block.starts_with("    a: ") && block.contains("=======\n    a: "));
    assert_eq!(text.matches("<<<<<<<").count(), 1);
}

#[test]
fn a_key_added_on_one_side_and_another_removed_on_the_other() {
    let s = repo();
    set(&s, "d", "delta");
    commit_all(&s, "add d");
    git(&s, &["checkout", "-q", "other"]).ok();
    s.run(&["unset", "s.yaml", "db", "c"]).ok();
    commit_all(&s, "remove c");
    git(&s, &["checkout", "-q", "main"]).ok();
    let m = git(&s, &["merge", "-q", "--no-edit", "other"]);
    assert_eq!(m.code, 0, "{}", m.stderr);
    let text = opened(&s);
    assert!(
        text.contains("d: delta") && !text.contains("c: gamma") && text.contains("a: alpha"),
        "{text}"
    );
}

#[test]
fn a_rekey_against_a_new_value_is_refused_with_the_rekey_hint() {
    let s = repo();
    let new = s.new_identity("new.txt");
    let me = s.recipient.clone();
    s.run(&["rekey", "-i", "id.txt", "-r", &me, "-r", &new, "s.yaml"])
        .ok();
    commit_all(&s, "rekey");
    git(&s, &["checkout", "-q", "other"]).ok();
    set(&s, "e", "epsilon");
    commit_all(&s, "add e");
    git(&s, &["checkout", "-q", "main"]).ok();
    let m = git(&s, &["merge", "-q", "--no-edit", "other"]);
    assert_ne!(m.code, 0);
    assert!(
        m.stderr
            .contains("key \"e\": this value was sealed for a different recipient list"),
        "{}",
        m.stderr
    );
    assert!(
        m.stderr.contains(
            "hint: take one side, then run `gitops-seal rekey` and `gitops-seal set` again"
        ),
        "{}",
        m.stderr
    );
    // No clean SealedSecret claims recipients the new value was not sealed for.
    let text = s.read("s.yaml");
    assert!(text.contains("<<<<<<< ours"));
}

#[test]
fn a_non_secret_document_changed_in_two_places_merges_as_git_would() {
    let s = repo();
    let base = s.read("s.yaml");
    s.write("s.yaml", base.replace("one: \"1\"", "one: \"uno\""));
    commit_all(&s, "one");
    git(&s, &["checkout", "-q", "other"]).ok();
    s.write("s.yaml", base.replace("six: \"6\"", "six: \"seis\""));
    commit_all(&s, "six");
    git(&s, &["checkout", "-q", "main"]).ok();
    let m = git(&s, &["merge", "-q", "--no-edit", "other"]);
    assert_eq!(m.code, 0, "{}", m.stderr);
    let text = s.read("s.yaml");
    assert!(text.contains("one: \"uno\"") && text.contains("six: \"seis\""));
    assert_eq!(text.replace("uno", "1").replace("seis", "6"), base);
}

#[test]
fn an_unparsable_file_falls_back_to_a_text_merge_with_markers() {
    let s = repo();
    let helm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  x: \"{{ .Values.x }}\"\n";
    s.write("t.yaml", helm);
    git(&s, &["add", "t.yaml"]).ok();
    commit_all(&s, "template");
    git(&s, &["branch", "-f", "other"]).ok();
    s.write("t.yaml", helm.replace(".Values.x", ".Values.mine"));
    commit_all(&s, "mine");
    git(&s, &["checkout", "-q", "other"]).ok();
    s.write("t.yaml", helm.replace(".Values.x", ".Values.theirs"));
    commit_all(&s, "theirs");
    git(&s, &["checkout", "-q", "main"]).ok();
    let m = git(&s, &["merge", "-q", "--no-edit", "other"]);
    assert_ne!(m.code, 0);
    let text = s.read("t.yaml");
    assert!(
        text.contains("<<<<<<< ours\n")
            && text.contains(".Values.mine")
            && text.contains(".Values.theirs"),
        "{text}"
    );
}

#[test]
fn install_and_print_name_the_same_configuration() {
    let s = repo();
    let printed = s.run(&["merge-driver", "--print"]).ok().stdout;
    assert!(printed.contains("git config merge.gitops-seal.driver \"gitops-seal merge-driver --marker-size=%L %O %A %B %P\""));
    let configured = git(&s, &["config", "merge.gitops-seal.driver"]).ok().stdout;
    assert_eq!(
        configured,
        "gitops-seal merge-driver --marker-size=%L %O %A %B %P\n"
    );
    let attributes = s.read(".gitattributes");
    assert_eq!(
        attributes,
        "*.yaml merge=gitops-seal\n*.yml merge=gitops-seal\n*.json merge=gitops-seal\n"
    );
    for line in attributes.lines() {
        assert!(printed.contains(line));
    }
    // Installing twice adds nothing.
    s.run(&["merge-driver", "--install"]).ok();
    assert_eq!(s.read(".gitattributes"), attributes);
}

#[test]
fn a_rekey_is_caught_even_when_another_key_also_clashes() {
    // Ours: rekey to two recipients, then change a. Theirs: change a and add d (sealed for the
    // old list). The clash on a must not hide that d cannot be opened by the merged list.
    let s = repo();
    let new = s.new_identity("new.txt");
    let me = s.recipient.clone();
    s.run(&["rekey", "-i", "id.txt", "-r", &me, "-r", &new, "s.yaml"])
        .ok();
    set(&s, "a", "alpha-ours");
    commit_all(&s, "rekey and a");
    git(&s, &["checkout", "-q", "other"]).ok();
    set(&s, "a", "alpha-theirs");
    set(&s, "d", "delta");
    commit_all(&s, "a and d");
    git(&s, &["checkout", "-q", "main"]).ok();
    let m = git(&s, &["merge", "-q", "--no-edit", "other"]);
    assert_ne!(m.code, 0);
    assert!(
        m.stderr
            .contains("key \"d\": this value was sealed for a different recipient list"),
        "{}",
        m.stderr
    );
    // Whole-document markers: no side of the file is a valid SealedSecret that lies.
    let text = s.read("s.yaml");
    assert!(
        text.contains("<<<<<<<") && text.contains(">>>>>>>"),
        "{text}"
    );
}

#[test]
fn comments_around_a_merged_sealed_secret_and_crlf_are_kept() {
    let plain = "# owner: team-db\napiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\nstringData:\n  a: alpha\n  b: beta\n\n# next: cache config\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cache\ndata:\n  size: \"1\"\n";
    let s = repo_with(plain, |sealed| sealed.replace('\n', "\r\n"));
    set(&s, "a", "alpha-2");
    commit_all(&s, "a");
    git(&s, &["checkout", "-q", "other"]).ok();
    set(&s, "b", "beta-2");
    let theirs = s
        .read("s.yaml")
        .replace("# owner: team-db", "# owner: team-payments");
    s.write("s.yaml", &theirs);
    commit_all(&s, "b and owner");
    git(&s, &["checkout", "-q", "main"]).ok();
    let m = git(&s, &["merge", "-q", "--no-edit", "other"]);
    assert_eq!(m.code, 0, "{}", m.stderr);
    let text = s.read("s.yaml");
    assert!(text.starts_with("# owner: team-payments\r\n"), "{text:?}");
    assert!(
        text.contains("\r\n# next: cache config\r\n---\r\n"),
        "{text:?}"
    );
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "mixed line endings: {text:?}"
    );
    let opened = opened(&s);
    assert!(
        opened.contains("alpha-2") && opened.contains("beta-2"),
        "{opened}"
    );
}

#[test]
fn a_comment_changed_differently_on_both_sides_is_a_conflict() {
    let s = repo_with(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\nstringData:\n  a: alpha\n  b: beta\n\n# next: cache config\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cache\n",
        |sealed| sealed,
    );
    let ours = s
        .read("s.yaml")
        .replace("# next: cache config", "# next: cache (ours)");
    s.write("s.yaml", &ours);
    set(&s, "a", "alpha-2");
    commit_all(&s, "ours");
    git(&s, &["checkout", "-q", "other"]).ok();
    let theirs = s
        .read("s.yaml")
        .replace("# next: cache config", "# next: cache (theirs)");
    s.write("s.yaml", &theirs);
    set(&s, "b", "beta-2");
    commit_all(&s, "theirs");
    git(&s, &["checkout", "-q", "main"]).ok();
    let m = git(&s, &["merge", "-q", "--no-edit", "other"]);
    assert_ne!(m.code, 0, "{}", m.stderr);
    assert!(
        m.stderr.contains("comments changed on both sides"),
        "{}",
        m.stderr
    );
    let text = s.read("s.yaml");
    assert!(
        text.contains("# next: cache (ours)") && text.contains("# next: cache (theirs)"),
        "{text}"
    );
}
