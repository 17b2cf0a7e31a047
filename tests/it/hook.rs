//! The pre-commit hook, `scan` and `textconv`, driven through the real `git` command in
//! temporary repositories.

use crate::harness::{git, git_env, Run, Sandbox};

const PLAIN: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\nstringData:\n  password: hunter2-plaintext\n";
const CONFIGMAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  mode: fast\n";

/// A repository with one commit and the hook installed (with `install_args`).
fn repo(install_args: &[&str]) -> Sandbox {
    let s = Sandbox::new();
    git(&s, &["init", "-q", "-b", "main"]).ok();
    s.write(".gitignore", "id.txt\n.config/\nrun/\n");
    git(&s, &["add", "-A"]).ok();
    git(&s, &["commit", "-qm", "init"]).ok();
    let mut args = vec!["hook", "install"];
    args.extend_from_slice(install_args);
    s.run(&args).ok();
    s
}

fn commit(s: &Sandbox, msg: &str) -> Run {
    git(s, &["commit", "-qm", msg])
}

fn head(s: &Sandbox) -> String {
    git(s, &["rev-parse", "HEAD"]).ok().stdout
}

/// The blob the last commit recorded for `path`.
fn committed(s: &Sandbox, path: &str) -> String {
    git(s, &["show", &format!("HEAD:{path}")]).ok().stdout
}

#[test]
fn a_staged_plaintext_secret_blocks_the_commit_and_says_how_to_fix_it() {
    let s = repo(&[]);
    s.write("deploy/app.yaml", format!("{CONFIGMAP}---\n{PLAIN}"));
    git(&s, &["add", "-A"]).ok();
    let before = head(&s);
    let c = commit(&s, "leak").fails();
    assert_eq!(head(&s), before, "the commit must not happen");
    assert!(
        c.stderr
            .contains("deploy/app.yaml: document 2 (Secret prod/db)"),
        "{}",
        c.stderr
    );
    assert!(
        c.stderr
            .contains("gitops-seal encrypt --in-place deploy/app.yaml && git add deploy/app.yaml"),
        "{}",
        c.stderr
    );
    assert!(
        !c.stderr.contains("hunter2"),
        "a value leaked: {}",
        c.stderr
    );
}

#[test]
fn sealed_files_ordinary_manifests_and_other_files_commit() {
    let s = repo(&[]);
    s.seal("sealed.yaml", PLAIN);
    s.write("cfg.yaml", CONFIGMAP);
    s.write("notes.md", "kind: Secret is a word in prose here\n");
    s.write("logo.bin", b"\x00\xff\xfe kind: Secret".as_slice());
    // A Secret without values (a service-account token placeholder) is not a leak.
    s.write(
        "token.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: t\ntype: kubernetes.io/service-account-token\n",
    );
    git(&s, &["add", "-A"]).ok();
    let before = head(&s);
    let c = commit(&s, "fine");
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert_ne!(head(&s), before);
    assert_eq!(c.stderr, "", "a clean commit prints nothing");
}

#[test]
fn the_hook_judges_the_index_not_the_working_tree() {
    // Plaintext staged, then sealed in the working tree without `git add`: still blocked.
    let s = repo(&[]);
    s.write("s.yaml", PLAIN);
    git(&s, &["add", "s.yaml"]).ok();
    s.run(&[
        "encrypt",
        "--in-place",
        "-r",
        &s.recipient.clone(),
        "s.yaml",
    ])
    .ok();
    let c = commit(&s, "staged plaintext").fails();
    assert!(c.stderr.contains("s.yaml: document 1 (Secret prod/db)"));

    // Sealed staged, plaintext in the working tree: the commit records the sealed blob.
    let s = repo(&[]);
    s.seal("s.yaml", PLAIN);
    git(&s, &["add", "s.yaml"]).ok();
    s.write("s.yaml", PLAIN);
    let c = commit(&s, "staged sealed");
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(committed(&s, "s.yaml").contains("kind: SealedSecret"));
}

#[test]
fn commit_all_is_judged_on_the_index_git_builds_for_it() {
    // `git commit -a` hands the hook a temporary index (GIT_INDEX_FILE): a tracked file made
    // plaintext in the working tree must be caught although .git/index still holds it sealed.
    let s = repo(&[]);
    s.seal("s.yaml", PLAIN);
    git(&s, &["add", "s.yaml"]).ok();
    commit(&s, "sealed").ok();
    s.write("s.yaml", PLAIN);
    let before = head(&s);
    let c = git(&s, &["commit", "-qam", "leak via -a"]).fails();
    assert!(c.stderr.contains("s.yaml: document 1 (Secret prod/db)"));
    assert_eq!(head(&s), before);
}

#[test]
fn json_lists_and_any_extension_are_checked() {
    let s = repo(&[]);
    s.write(
        "secret.json",
        r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "j"}, "data": {"k": "dg=="}}"#,
    );
    s.write(
        "list.txt",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: inner, namespace: ns}\n  stringData: {k: v}\n",
    );
    git(&s, &["add", "-A"]).ok();
    let c = commit(&s, "leaks").fails();
    assert!(
        c.stderr.contains("secret.json: document 1 (Secret j)"),
        "{}",
        c.stderr
    );
    assert!(
        c.stderr
            .contains("list.txt: document 1 (List item 2: Secret ns/inner)"),
        "{}",
        c.stderr
    );
}

#[test]
fn a_helm_template_is_noted_unless_it_declares_a_secret() {
    let s = repo(&[]);
    s.write(
        "chart/templates/cm.yaml",
        "{{- if .Values.on }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n{{- end }}\n",
    );
    git(&s, &["add", "-A"]).ok();
    let c = commit(&s, "template");
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c
        .stderr
        .contains("note: chart/templates/cm.yaml: document 1 skipped"));

    s.write(
        "chart/templates/secret.yaml",
        "{{- if .Values.on }}\napiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  k: {{ .Values.k }}\n{{- end }}\n",
    );
    git(&s, &["add", "-A"]).ok();
    let c = commit(&s, "template secret").fails();
    assert!(c
        .stderr
        .contains("chart/templates/secret.yaml: document 1: not valid YAML"));
    assert!(c.stderr.contains("ignore:"), "{}", c.stderr);

    // Ignored paths pass.
    s.write(".gitops-seal.yaml", "ignore: ['chart/**']\n");
    git(&s, &["add", "-A"]).ok();
    let c = commit(&s, "ignored");
    assert_eq!(c.code, 0, "{}", c.stderr);
}

#[test]
fn renames_of_a_plaintext_secret_are_blocked_and_of_a_sealed_one_pass() {
    let s = repo(&[]);
    s.write("old.yaml", PLAIN);
    s.seal("sealed-old.yaml", PLAIN);
    git(&s, &["add", "-A"]).ok();
    git(&s, &["commit", "-qm", "bypass", "--no-verify"]).ok();
    git(&s, &["mv", "old.yaml", "new.yaml"]).ok();
    git(&s, &["mv", "sealed-old.yaml", "sealed-new.yaml"]).ok();
    let c = commit(&s, "rename").fails();
    assert!(
        c.stderr.contains("new.yaml: document 1 (Secret prod/db)"),
        "{}",
        c.stderr
    );
    assert!(!c.stderr.contains("sealed-new.yaml"), "{}", c.stderr);
}

#[test]
fn fix_seals_the_staged_content_and_the_working_tree_then_commits() {
    let s = repo(&["--fix"]);
    let rule = format!(
        "rules:\n  - path: 'deploy/**'\n    recipients: ['{}']\n",
        s.recipient
    );
    s.write(".gitops-seal.yaml", rule);
    s.write("deploy/app.yaml", format!("{CONFIGMAP}---\n{PLAIN}"));
    git(&s, &["add", "-A"]).ok();
    let c = commit(&s, "fixed");
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c.stderr.contains("sealed deploy/app.yaml"), "{}", c.stderr);
    let recorded = committed(&s, "deploy/app.yaml");
    assert!(
        recorded.starts_with(CONFIGMAP),
        "non-Secrets kept: {recorded}"
    );
    assert!(recorded.contains("kind: SealedSecret") && !recorded.contains("hunter2"));
    assert_eq!(
        s.read("deploy/app.yaml"),
        recorded,
        "working tree sealed too"
    );
    assert_eq!(git(&s, &["status", "--porcelain"]).ok().stdout, "");
    let opened = s
        .run(&["decrypt", "-i", "id.txt", "deploy/app.yaml"])
        .ok()
        .stdout;
    assert!(opened.contains("password: hunter2-plaintext"), "{opened}");
}

#[test]
fn fix_without_a_rule_refuses_and_names_the_file() {
    let s = repo(&["--fix"]);
    s.write("app.yaml", PLAIN);
    git(&s, &["add", "-A"]).ok();
    let before = head(&s);
    let c = commit(&s, "no rule").fails();
    assert!(c.stderr.contains("app.yaml: no rule"), "{}", c.stderr);
    assert_eq!(head(&s), before);
    assert_eq!(s.read("app.yaml"), PLAIN, "nothing written");
}

#[test]
fn a_foreign_hook_is_kept_called_and_restored() {
    let s = Sandbox::new();
    git(&s, &["init", "-q", "-b", "main"]).ok();
    let foreign = "#!/bin/sh\necho foreign-ran >> foreign.log\n";
    let hook = s.write(".git/hooks/pre-commit", foreign);
    set_executable(&hook);

    let r = s.run(&["hook", "install"]).fails();
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert_eq!(s.read(".git/hooks/pre-commit"), foreign);

    s.run(&["hook", "install", "--force"]).ok();
    assert_eq!(s.read(".git/hooks/pre-commit.local"), foreign);
    s.write(".gitignore", "id.txt\nforeign.log\n.config/\nrun/\n");
    s.write("a.txt", "a\n");
    git(&s, &["add", "-A"]).ok();
    commit(&s, "first").ok();
    assert_eq!(s.read("foreign.log"), "foreign-ran\n");
    s.write("s.yaml", PLAIN);
    git(&s, &["add", "-A"]).ok();
    commit(&s, "leak").fails();

    s.run(&["hook", "uninstall"]).ok();
    assert_eq!(s.read(".git/hooks/pre-commit"), foreign);
    assert!(!s.path(".git/hooks/pre-commit.local").exists());
    // Uninstall leaves a hook that is not ours alone.
    s.run(&["hook", "uninstall"]).fails();
    assert_eq!(s.read(".git/hooks/pre-commit"), foreign);
}

#[test]
fn install_follows_core_hooks_path() {
    let s = Sandbox::new();
    git(&s, &["init", "-q", "-b", "main"]).ok();
    git(&s, &["config", "core.hooksPath", ".githooks"]).ok();
    s.run(&["hook", "install"]).ok();
    assert!(s.path(".githooks/pre-commit").exists());
    assert!(!s.path(".git/hooks/pre-commit").exists());
    s.write(".gitignore", "id.txt\n.config/\nrun/\n");
    s.write("s.yaml", PLAIN);
    git(&s, &["add", "-A"]).ok();
    let c = commit(&s, "leak").fails();
    assert!(c.stderr.contains("s.yaml: document 1 (Secret prod/db)"));
}

#[test]
fn history_scan_finds_a_secret_committed_and_later_deleted() {
    let s = repo(&[]);
    s.write("leak.yaml", PLAIN);
    git(&s, &["add", "-A"]).ok();
    git(&s, &["commit", "-qm", "oops", "--no-verify"]).ok();
    let leaked_in = head(&s).trim().to_string();
    git(&s, &["rm", "-q", "leak.yaml"]).ok();
    commit(&s, "remove").ok();
    // On a side branch only, too.
    git(&s, &["checkout", "-qb", "side"]).ok();
    s.write("side/other.json", r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"o","namespace":"x"},"stringData":{"k":"v"}}"#);
    git(&s, &["add", "-A"]).ok();
    git(&s, &["commit", "-qm", "side", "--no-verify"]).ok();
    let side = head(&s).trim().to_string();
    git(&s, &["checkout", "-q", "main"]).ok();

    let tree = s.run(&["scan"]);
    assert_eq!(tree.code, 0, "the working tree is clean: {}", tree.stdout);

    let h = s.run(&["scan", "--history"]);
    assert_eq!(h.code, 1, "{}", h.stderr);
    assert!(
        h.stdout.contains(&format!(
            "commit {}: leak.yaml: document 1 (Secret prod/db)",
            &leaked_in[..12]
        )),
        "{}",
        h.stdout
    );
    assert!(h
        .stdout
        .contains(&format!("commit {}: side/other.json", &side[..12])));
    assert!(!h.stdout.contains("hunter2"));

    let j = s.run(&["scan", "--history", "--format", "json"]);
    assert_eq!(j.code, 1);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    let leak = v
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "leak.yaml")
        .unwrap();
    assert_eq!(leak["commit"], leaked_in.as_str());
    assert_eq!(leak["object"], "Secret prod/db");
    assert_eq!(leak["document"], 1);
}

#[test]
fn scan_of_a_tree_reports_files_and_exit_codes() {
    let s = Sandbox::new();
    s.write("a/plain.yaml", PLAIN);
    s.seal("a/sealed.yaml", PLAIN);
    s.write("b/cm.yaml", CONFIGMAP);
    let r = s.run(&["scan"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "a/plain.yaml: document 1 (Secret prod/db)\n");
    let r = s.run(&["scan", "b"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let r = s.run(&["scan", "missing"]);
    assert_eq!(r.code, 2, "an error is not a finding: {}", r.stderr);
}

#[test]
fn textconv_opens_values_with_a_key_and_hides_them_without() {
    let s = Sandbox::new();
    s.seal("s.yaml", &format!("{CONFIGMAP}---\n{PLAIN}"));
    let opened = s
        .command(&["textconv", "s.yaml"])
        .env("GITOPS_SEAL_IDENTITY", s.path("id.txt"))
        .output()
        .unwrap();
    let opened = String::from_utf8(opened.stdout).unwrap();
    assert!(opened.starts_with(CONFIGMAP), "{opened}");
    assert!(opened.contains("password: hunter2-plaintext"), "{opened}");

    let hidden = s.run(&["textconv", "s.yaml"]).ok().stdout;
    assert!(hidden.contains("password: \"<sealed>\""), "{hidden}");
    assert!(!hidden.contains("hunter2"));
}

#[test]
fn git_diff_shows_the_changed_value_through_textconv() {
    let s = Sandbox::new();
    git(&s, &["init", "-q", "-b", "main"]).ok();
    s.write(".gitattributes", "*.yaml diff=gitops-seal\n");
    git(
        &s,
        &[
            "config",
            "diff.gitops-seal.textconv",
            "gitops-seal textconv",
        ],
    )
    .ok();
    s.write(".gitignore", "id.txt\n.config/\nrun/\n");
    s.seal("s.yaml", PLAIN);
    git(&s, &["add", "-A"]).ok();
    git(&s, &["commit", "-qm", "sealed"]).ok();
    s.run(&[
        "set",
        "s.yaml",
        "db",
        "password",
        "--from-literal",
        "rotated-value",
    ])
    .ok();
    let id = s.path("id.txt");
    let d = git_env(
        &s,
        &["diff"],
        &[("GITOPS_SEAL_IDENTITY", id.to_str().unwrap())],
    )
    .ok();
    assert!(
        d.stdout.contains("-  password: hunter2-plaintext"),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout.contains("+  password: rotated-value"),
        "{}",
        d.stdout
    );
    // Without a key the diff still works and shows no value.
    let d = git(&s, &["diff"]).ok();
    assert!(!d.stdout.contains("hunter2") && !d.stdout.contains("rotated"));
}

fn set_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_hook_still_blocks_when_gitops_seal_is_not_on_path() {
    // A GUI client's PATH, without the binary: the hook falls back to the binary that
    // installed it rather than failing open.
    let s = repo(&[]);
    s.write("s.yaml", PLAIN);
    git(&s, &["add", "-A"]).ok();
    let git_dir = std::process::Command::new("sh")
        .args(["-c", "dirname \"$(command -v git)\""])
        .output()
        .unwrap();
    let path = format!(
        "{}:/usr/bin:/bin",
        String::from_utf8(git_dir.stdout).unwrap().trim()
    );
    let c = git_env(&s, &["commit", "-qm", "leak"], &[("PATH", &path)]).fails();
    assert!(
        c.stderr.contains("s.yaml: document 1 (Secret prod/db)"),
        "{}",
        c.stderr
    );
}

#[test]
fn scan_leaves_out_what_git_ignores_and_does_not_follow_symlinks() {
    let s = Sandbox::new();
    git(&s, &["init", "-q", "-b", "main"]).ok();
    s.write(".gitignore", "local/\n");
    s.write("local/dev-secret.yaml", PLAIN);
    s.write("deploy/leak.yaml", PLAIN);
    std::os::unix::fs::symlink(s.path("deploy"), s.path("deploy/loop")).unwrap();
    let r = s.run(&["scan"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stdout, "deploy/leak.yaml: document 1 (Secret prod/db)\n");
}

#[test]
fn textconv_opens_sealed_secrets_inside_a_list() {
    let s = Sandbox::new();
    s.seal(
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s, namespace: ns}\n  stringData: {k: listed-value}\n",
    );
    let opened = s
        .command(&["textconv", "list.yaml"])
        .env("GITOPS_SEAL_IDENTITY", s.path("id.txt"))
        .output()
        .unwrap();
    let opened = String::from_utf8(opened.stdout).unwrap();
    assert!(opened.contains("k: listed-value"), "{opened}");
    let hidden = s.run(&["textconv", "list.yaml"]).ok().stdout;
    assert!(hidden.contains("k: \"<sealed>\""), "{hidden}");
    assert!(
        !hidden.contains("listed-value") && !hidden.contains("YWdl"),
        "{hidden}"
    );
}

#[test]
fn a_merge_commit_cannot_bring_in_a_plaintext_secret() {
    // Committed on a branch without the hook (--no-verify), then merged: the merge commit is
    // refused by the pre-merge-commit hook.
    let s = repo(&["--fix"]);
    assert!(s.path(".git/hooks/pre-merge-commit").exists());
    git(&s, &["checkout", "-qb", "side"]).ok();
    s.write("leak.yaml", PLAIN);
    git(&s, &["add", "-A"]).ok();
    git(&s, &["commit", "-qm", "leak", "--no-verify"]).ok();
    git(&s, &["checkout", "-q", "main"]).ok();
    s.write("other.txt", "diverge\n");
    git(&s, &["add", "-A"]).ok();
    commit(&s, "diverge").ok();
    let before = head(&s);
    let m = git(&s, &["merge", "--no-edit", "side"]).fails();
    assert!(
        m.stderr.contains("leak.yaml: document 1 (Secret prod/db)"),
        "{}",
        m.stderr
    );
    assert_eq!(head(&s), before, "no merge commit");
    // Refusing, not sealing: --fix applies to ordinary commits only.
    assert_eq!(s.read("leak.yaml"), PLAIN);
    s.run(&["hook", "uninstall"]).ok();
    assert!(!s.path(".git/hooks/pre-merge-commit").exists());
    assert!(!s.path(".git/hooks/pre-commit").exists());
}

#[test]
fn a_hook_installed_from_a_linked_worktree_guards_it() {
    // Git runs hooks from the common .git/hooks, not .git/worktrees/NAME/hooks.
    let s = Sandbox::new();
    git(&s, &["init", "-q", "-b", "main"]).ok();
    s.write(".gitignore", "id.txt\n.config/\nrun/\nwt/\n");
    git(&s, &["add", "-A"]).ok();
    git(&s, &["commit", "-qm", "init"]).ok();
    git(&s, &["worktree", "add", "-q", "wt", "-b", "wt"]).ok();
    let mut install = s.command(&["hook", "install"]);
    install.current_dir(s.path("wt"));
    let r = crate::harness::run_command(install, b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    s.write("wt/leak.yaml", PLAIN);
    git(&s, &["-C", "wt", "add", "leak.yaml"]).ok();
    let c = git(&s, &["-C", "wt", "commit", "-qm", "leak"]).fails();
    assert!(
        c.stderr.contains("leak.yaml: document 1 (Secret prod/db)"),
        "{}",
        c.stderr
    );
}

#[test]
fn fix_does_not_seal_a_commit_of_named_paths_but_refuses_it() {
    let s = repo(&["--fix"]);
    s.write(
        ".gitops-seal.yaml",
        format!(
            "rules:\n  - path: '**'\n    recipients: ['{}']\n",
            s.recipient
        ),
    );
    git(&s, &["add", ".gitops-seal.yaml"]).ok();
    commit(&s, "config").ok();
    s.write("b.yaml", PLAIN);
    git(&s, &["add", "b.yaml"]).ok();
    let before = head(&s);
    let c = git(&s, &["commit", "-qm", "b", "--", "b.yaml"]).fails();
    assert!(
        c.stderr.contains("not sealing during `git commit PATH...`"),
        "{}",
        c.stderr
    );
    assert_eq!(head(&s), before);
}

#[test]
fn history_scan_finds_a_secret_first_committed_under_an_ignored_path_then_moved() {
    let s = repo(&[]);
    s.write(".gitops-seal.yaml", "ignore: ['examples/**']\n");
    s.write("examples/db.yaml", PLAIN);
    git(&s, &["add", "-A"]).ok();
    commit(&s, "example").ok();
    git(&s, &["mv", "examples", "prod"]).ok();
    git(&s, &["commit", "-qm", "promote", "--no-verify"]).ok();
    let h = s.run(&["scan", "--history"]);
    assert_eq!(h.code, 1, "{}{}", h.stdout, h.stderr);
    assert!(
        h.stdout.contains(": prod/db.yaml: document 1"),
        "{}",
        h.stdout
    );
    assert!(!h.stdout.contains("examples/db.yaml"), "{}", h.stdout);
}

#[test]
fn tracked_files_are_scanned_even_when_git_ignores_their_name() {
    let s = Sandbox::new();
    git(&s, &["init", "-q", "-b", "main"]).ok();
    s.write(".gitignore", "secret.yaml\n");
    s.write("secret.yaml", PLAIN);
    git(&s, &["add", "-f", "secret.yaml"]).ok();
    let r = s.run(&["scan"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.contains("secret.yaml: document 1"), "{}", r.stdout);
}

#[test]
fn file_names_that_are_not_utf8_are_judged_too() {
    use std::os::unix::ffi::OsStrExt;
    let s = repo(&[]);
    let name = std::ffi::OsStr::from_bytes(b"sec\xffret.yaml");
    std::fs::write(s.dir.path().join(name), PLAIN).unwrap();
    git(&s, &["add", "-A"]).ok();
    let c = commit(&s, "odd name").fails();
    assert!(
        c.stderr.contains("ret.yaml: document 1 (Secret prod/db)"),
        "{}",
        c.stderr
    );
    git(&s, &["commit", "-qm", "odd name", "--no-verify"]).ok();
    let h = s.run(&["scan", "--history"]);
    assert_eq!(h.code, 1, "{}{}", h.stdout, h.stderr);
}

#[test]
fn the_hook_reads_ignore_from_the_nearest_config_as_scan_does() {
    let s = repo(&[]);
    s.write("charts/.gitops-seal.yaml", "ignore: ['app/templates/**']\n");
    s.write(
        "charts/app/templates/secret.yaml",
        "{{- if .Values.on }}\napiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  k: {{ .Values.k }}\n{{- end }}\n",
    );
    git(&s, &["add", "-A"]).ok();
    let c = commit(&s, "chart");
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert_eq!(s.run(&["scan", "charts"]).code, 0);
}

#[test]
fn an_untracked_config_cannot_let_a_plaintext_secret_through() {
    let s = repo(&[]);
    s.write("sub/.gitops-seal.yaml", "ignore: ['**']\n");
    s.write("sub/s.yaml", PLAIN);
    git(&s, &["add", "sub/s.yaml"]).ok();
    let c = commit(&s, "leak").fails();
    assert!(
        c.stderr.contains("sub/s.yaml: document 1 (Secret prod/db)"),
        "{}",
        c.stderr
    );
}

#[test]
fn secrets_in_utf16_latin1_escaped_or_custom_list_files_are_found() {
    let s = Sandbox::new();
    // UTF-16LE with a byte-order mark, as Windows PowerShell's `>` writes it.
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in PLAIN.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    s.write("ps.yaml", utf16);
    // A Latin-1 byte in a comment.
    let mut latin1 = b"# caf\xe9\n".to_vec();
    latin1.extend_from_slice(PLAIN.as_bytes());
    s.write("latin1.yaml", latin1);
    // `kind` spelled with a JSON escape.
    s.write(
        "escaped.json",
        r#"{"apiVersion": "v1", "\u006bind": "Secret", "metadata": {"name": "e"}, "stringData": {"k": "v"}}"#,
    );
    // Any object with items is a list to kubectl.
    s.write(
        "custom.yaml",
        "apiVersion: example.com/v1\nkind: Anything\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: c}\n  stringData: {k: v}\n",
    );
    // Prose with colons is not a manifest, and gets no note.
    s.write("notes.md", "Note: this is prose.\nAnother: line: here\n");
    let r = s.run(&["scan"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    for expected in [
        "ps.yaml: document 1 (Secret prod/db)",
        "latin1.yaml: document 1 (Secret prod/db)",
        "escaped.json: document 1 (Secret e)",
        "custom.yaml: document 1 (List item 1: Secret c)",
    ] {
        assert!(r.stdout.contains(expected), "{expected} in {}", r.stdout);
    }
    assert!(!r.stderr.contains("notes.md"), "{}", r.stderr);
}

/// `git rev-parse REV` in `dir` (relative to the sandbox).
fn rev(s: &Sandbox, dir: &str, spec: &str) -> String {
    git(s, &["-C", dir, "rev-parse", spec])
        .ok()
        .stdout
        .trim()
        .to_string()
}

#[test]
fn history_scan_of_a_partial_clone_names_each_missing_object_and_says_how_to_complete() {
    let s = repo(&[]);
    s.write(".gitops-seal.yaml", "ignore: [\"charts/**\"]\n");
    s.write(
        "charts/app/templates/secret.yaml",
        PLAIN.replace("name: db", "name: tpl"),
    );
    s.write("leak.yaml", PLAIN);
    git(&s, &["add", "-A"]).ok();
    git(&s, &["commit", "-qm", "leak", "--no-verify"]).ok();
    let leaked_in = rev(&s, ".", "HEAD");
    git(&s, &["rm", "-q", "leak.yaml"]).ok();
    commit(&s, "remove").ok();
    let last = rev(&s, ".", "HEAD");
    git(&s, &["config", "uploadpack.allowfilter", "true"]).ok();
    let source = format!("file://{}", s.dir.path().display());
    git(
        &s,
        &[
            "-c",
            "protocol.file.allow=always",
            "clone",
            "-q",
            "--filter=blob:none",
            "--no-checkout",
            &source,
            "part",
        ],
    )
    .ok();

    // Blobless, nothing checked out: no blob is here, not even the config.
    let h = s.run(&["scan", "--history", "part"]);
    assert_eq!(h.code, 2, "{}", h.stderr);
    assert_eq!(h.stdout, "");
    let missing = |commit: &str, path: &str| {
        format!(
            "missing: commit {}: {path}: blob {} is missing from this clone",
            &commit[..12],
            rev(&s, "part", &format!("{commit}:{path}"))
        )
    };
    let init = rev(&s, ".", "HEAD~2");
    assert_eq!(
        h.stderr.lines().collect::<Vec<_>>(),
        [
            "scanned 3 commit(s)".to_string(),
            // The config is read from HEAD's tree, and is missing there first.
            missing(&last, ".gitops-seal.yaml"),
            missing(&init, ".gitignore"),
            missing(&leaked_in, "charts/app/templates/secret.yaml"),
            missing(&leaked_in, "leak.yaml"),
            "scan incomplete: 4 object(s) are missing from this clone and were not scanned; \
             fetch them (`git fetch --refetch --no-filter` for a partial clone, \
             `git fetch --unshallow` for a shallow one, `git lfs fetch --all` for large files) \
             and scan again"
                .to_string(),
        ]
    );

    // What the line says completes it; the config comes from HEAD (nothing is checked out).
    git(
        &s,
        &[
            "-C",
            "part",
            "-c",
            "protocol.file.allow=always",
            "fetch",
            "-q",
            "--refetch",
            "--no-filter",
            "origin",
        ],
    )
    .ok();
    let h = s.run(&["scan", "--history", "part"]);
    assert_eq!(h.code, 1, "{}", h.stderr);
    assert_eq!(
        h.stdout,
        format!(
            "commit {}: leak.yaml: document 1 (Secret prod/db)\n",
            &leaked_in[..12]
        )
    );
    assert_eq!(h.stderr, "scanned 3 commit(s)\n");

    // A bare clone reads `.gitops-seal.yaml` from HEAD's tree too: charts/ stays ignored.
    git(&s, &["clone", "-q", "--bare", &source, "bare.git"]).ok();
    let b = s.run(&["scan", "--history", "bare.git"]);
    assert_eq!(b.code, 1, "{}", b.stderr);
    assert_eq!(b.stdout, h.stdout);
    assert_eq!(b.stderr, "scanned 3 commit(s)\n");
}

/// What `git diff --cached` lists as added, modified or type-changed regular files, as
/// (path, blob) — Git's own answer to "what does the next commit change".
fn git_staged(s: &Sandbox) -> std::collections::BTreeSet<(String, String)> {
    let raw = git(
        s,
        &[
            "diff",
            "--cached",
            "--raw",
            "-z",
            "--no-renames",
            "--no-abbrev",
        ],
    )
    .ok()
    .stdout;
    let mut out = std::collections::BTreeSet::new();
    let mut fields = raw.split('\0');
    while let Some(meta) = fields.next() {
        if meta.is_empty() {
            break;
        }
        let path = fields.next().unwrap();
        let parts: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
        let (mode, blob, status) = (parts[1], parts[3], parts[4]);
        if matches!(status, "A" | "M" | "T") && matches!(mode, "100644" | "100755" | "120000") {
            out.insert((path.to_string(), blob.to_string()));
        }
    }
    out
}

fn library_staged(
    list: Vec<gitops_seal::adapters::git::StagedFile>,
) -> std::collections::BTreeSet<(String, String)> {
    list.into_iter()
        .map(|f| (f.path, f.blob.to_string()))
        .collect()
}

/// The hook's direct index reader (cache-tree and all) against libgit2's diff and against
/// `git diff --cached`, after every step of random work in real repositories: adds, edits,
/// removals, renames, mode and type changes, `git add -N`, resets, `write-tree`, commits, and
/// index versions 2, 3 and 4. (A split index is read by neither: the hook then judges the tree
/// `git write-tree` makes, see `split_and_sparse_indexes_are_judged_from_the_tree_git_writes`.)
#[test]
fn the_direct_index_reader_sees_what_git_and_libgit2_see() {
    use gitops_seal::adapters::git as adapter;
    const EMPTY_BLOB: &str = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";
    // Steps at which the index had valid cache-tree nodes below the root.
    let mut with_cache_tree = 0;
    for seed in 1..=6u64 {
        let s = Sandbox::new();
        git(&s, &["init", "-q", "-b", "main"]).ok();
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut log = Vec::new();
        for step in 0..60 {
            let dir = ["", "a/", "a/b/", "c/", "a/b/d/"][next(5) as usize];
            let path = format!("{dir}f{}.yaml", next(6));
            let op = next(16);
            log.push(format!("{op} {path}"));
            let file = s.path(&path);
            // Without following a symlink (they point nowhere).
            let present = std::fs::symlink_metadata(&file).is_ok();
            match op {
                0..=4 => {
                    if file.is_dir() || file.is_symlink() {
                        continue;
                    }
                    s.write(&path, format!("v: {step}\n"));
                    git(&s, &["add", &path]).ok();
                }
                5 => {
                    git(&s, &["add", "-A"]).ok();
                }
                6 => {
                    let _ = git(&s, &["rm", "-q", "--cached", "-r", &path]);
                }
                7 => {
                    let to = format!("{dir}moved{step}.yaml");
                    let _ = git(&s, &["mv", &path, &to]);
                }
                8 => {
                    if file.is_file() {
                        let _ = git(&s, &["update-index", "--chmod=+x", &path]);
                    }
                }
                9 => {
                    if !present {
                        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                        std::os::unix::fs::symlink("elsewhere", &file).unwrap();
                        git(&s, &["add", &path]).ok();
                    } else if file.is_symlink() {
                        std::fs::remove_file(&file).unwrap();
                        s.write(&path, "was a link\n");
                        git(&s, &["add", &path]).ok();
                    }
                }
                10 => {
                    let _ = git(
                        &s,
                        &["commit", "-qm", &format!("step {step}"), "--no-verify"],
                    );
                }
                11 => {
                    let version = ["2", "3", "4"][next(3) as usize];
                    git(&s, &["update-index", "--index-version", version]).ok();
                }
                12 => {
                    // Fills the cache-tree without committing.
                    let _ = git(&s, &["write-tree"]);
                }
                13 => {
                    if !present {
                        s.write(&path, "intent\n");
                        git(&s, &["add", "-N", &path]).ok();
                    }
                }
                14 => {
                    let _ = git(&s, &["reset", "-q"]);
                }
                _ => {
                    if file.is_file() {
                        std::fs::remove_file(&file).unwrap();
                        git(&s, &["add", "-A"]).ok();
                    }
                }
            }
            // The direct reader must read every index here itself (not hand it to libgit2).
            if let Ok(bytes) = std::fs::read(s.path(".git/index")) {
                let index = gitops_seal::adapters::git::index::parse(&bytes)
                    .unwrap_or_else(|e| panic!("seed {seed}, after {log:?}: {e:?}"));
                with_cache_tree += usize::from(index.trees.len() > 1);
            }
            let repo = git2::Repository::open(s.path("")).unwrap();
            let without_empty = |set: std::collections::BTreeSet<(String, String)>| {
                set.into_iter()
                    .filter(|(_, b)| b != EMPTY_BLOB)
                    .collect::<std::collections::BTreeSet<_>>()
            };
            let fail = |e: git2::Error| -> ! { panic!("seed {seed}, after {log:?}: {e}") };
            let direct = without_empty(library_staged(
                adapter::staged_files(&repo).unwrap_or_else(|e| fail(e)),
            ));
            let diffed = without_empty(library_staged(
                adapter::staged_files_by_diff(&repo).unwrap_or_else(|e| fail(e)),
            ));
            let by_git = without_empty(git_staged(&s));
            assert_eq!(direct, by_git, "seed {seed}, after {log:?}");
            assert_eq!(diffed, by_git, "seed {seed}, after {log:?}");
        }
    }
    assert!(
        with_cache_tree > 20,
        "the cache-tree was exercised {with_cache_tree} times"
    );
}

/// The record of blobs judged clean saves work and never lets plaintext through: after a clean
/// commit its blobs are recorded and a blocked blob is not; a record stamped by another build,
/// or damaged, is ignored whole; a blob judged clean outside a manifest is judged again when
/// staged as one; an ignored file is never recorded.
#[test]
fn the_clean_record_never_lets_plaintext_through() {
    let s = repo(&[]);
    let record = s.path(".git/gitops-seal/judged-clean");
    s.write("cfg.yaml", CONFIGMAP);
    git(&s, &["add", "-A"]).ok();
    commit(&s, "clean").ok();
    let cfg_blob = git(&s, &["rev-parse", "HEAD:cfg.yaml"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(text.contains(&format!("{cfg_blob} m")), "{text}");

    s.write("leak.yaml", PLAIN);
    git(&s, &["add", "leak.yaml"]).ok();
    let leak_blob = git(&s, &["rev-parse", ":leak.yaml"])
        .ok()
        .stdout
        .trim()
        .to_string();
    commit(&s, "leak").fails();
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(
        !text.contains(&leak_blob),
        "a blocked blob is never recorded"
    );

    // Forged entries for the plaintext blob under another stamp, or in a damaged record.
    let mut lines: Vec<&str> = text.lines().collect();
    let stamp = lines[1].to_string();
    let forged_stamp = text.replace(&stamp, "stamp 0.0.0-1-1-1") + &format!("{leak_blob} m\n");
    let damaged = format!("{text}{leak_blob} m\nnot a line\n");
    lines.truncate(2);
    for forged in [forged_stamp, damaged] {
        std::fs::write(&record, &forged).unwrap();
        let c = commit(&s, "leak").fails();
        assert!(
            c.stderr.contains("leak.yaml: document 1 (Secret prod/db)"),
            "{}",
            c.stderr
        );
    }
    git(&s, &["rm", "-q", "--cached", "leak.yaml"]).ok();

    // Clean as prose is not clean as a manifest: an unparsable document that declares a
    // Secret passes in notes.txt and is refused in notes.yaml.
    let broken = "kind: Secret\nstringData: {password: [unclosed\n";
    s.write("notes.txt", broken);
    git(&s, &["add", "notes.txt"]).ok();
    commit(&s, "prose").ok();
    s.write("notes.yaml", broken);
    git(&s, &["add", "notes.yaml"]).ok();
    let c = commit(&s, "as a manifest").fails();
    assert!(c.stderr.contains("notes.yaml"), "{}", c.stderr);
    git(&s, &["rm", "-q", "--cached", "notes.yaml"]).ok();

    // Ignored files are not judged, so not recorded.
    s.write(".gitops-seal.yaml", "ignore:\n  - skipped/**\n");
    s.write(
        "skipped/x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: skipped}\n",
    );
    git(&s, &["add", ".gitops-seal.yaml", "skipped/x.yaml"]).ok();
    commit(&s, "ignored").ok();
    let skipped = git(&s, &["rev-parse", "HEAD:skipped/x.yaml"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(!std::fs::read_to_string(&record).unwrap().contains(&skipped));
}

/// Content over the size limit (64 MiB) cannot be judged: a finding in `scan`, in the hook and
/// in `scan --history` alike, decided from the size alone (a sparse file here; the judge never
/// reads it whole).
#[test]
fn content_too_large_to_judge_blocks_everywhere() {
    let s = repo(&[]);
    let big = std::fs::File::create(s.path("big.yaml")).unwrap();
    big.set_len(65 << 20).unwrap();
    drop(big);
    let r = s.run(&["scan", "big.yaml"]).fails();
    assert!(
        r.stdout
            .starts_with("big.yaml: document 0: cannot be judged: "),
        "{r:?}"
    );
    git(&s, &["add", "big.yaml"]).ok();
    let c = commit(&s, "big").fails();
    assert!(
        c.stderr
            .contains("big.yaml: document 0: cannot be judged: "),
        "{}",
        c.stderr
    );
    git(&s, &["commit", "-qm", "big", "--no-verify"]).ok();
    let r = s.run(&["scan", "--history", "."]).fails();
    assert!(
        r.stdout
            .contains("big.yaml: document 0: cannot be judged: "),
        "{r:?}"
    );
}

fn blob_id(s: &Sandbox, spec: &str) -> git2::Oid {
    git2::Oid::from_str(git(s, &["rev-parse", spec]).ok().stdout.trim()).unwrap()
}

/// `git commit` writes its tree from the index's cache-tree wherever a node is valid (Git's
/// `cache_tree_update` takes such a node as it is), whatever the entries under it say. A
/// cache-tree left valid after an entry changed (by a tool that writes the index without
/// invalidating it, or by hand) commits the tree it names: here one holding a plaintext Secret
/// while the entry is back to HEAD's clean blob. The hook must judge what Git commits.
#[test]
fn a_stale_cache_tree_is_judged_as_git_commits_it() {
    let s = repo(&[]);
    s.write("deploy/app.yaml", CONFIGMAP);
    git(&s, &["add", "-A"]).ok();
    commit(&s, "clean").ok();
    let clean = blob_id(&s, "HEAD:deploy/app.yaml");
    s.write("deploy/app.yaml", PLAIN);
    git(&s, &["add", "deploy/app.yaml"]).ok();
    let plain = blob_id(&s, ":deploy/app.yaml");
    // The cache-tree now names, for deploy/ and the root, trees holding the plaintext.
    git(&s, &["write-tree"]).ok();
    let index = s.path(".git/index");
    let bytes = std::fs::read(&index).unwrap();
    let at: Vec<usize> = bytes
        .windows(20)
        .enumerate()
        .filter(|(_, w)| *w == plain.as_bytes())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "the entry's blob id, once");
    let mut patched = bytes;
    patched[at[0]..at[0] + 20].copy_from_slice(clean.as_bytes());
    std::fs::write(&index, &patched).unwrap();
    assert_eq!(
        blob_id(&s, ":deploy/app.yaml"),
        clean,
        "the entry is HEAD's again"
    );
    // Something else to commit (which invalidates the root's node, not deploy/'s).
    s.write("other.yaml", CONFIGMAP);
    git(&s, &["add", "other.yaml"]).ok();
    let listed: Vec<_> = git_staged(&s).into_iter().map(|(p, _)| p).collect();
    assert_eq!(listed, ["other.yaml"], "git diff --cached does not show it");
    let stale = std::fs::read(&index).unwrap();

    let before = head(&s);
    let c = commit(&s, "stale cache-tree").fails();
    assert!(
        c.stderr
            .contains("deploy/app.yaml: document 1 (Secret prod/db)"),
        "{}",
        c.stderr
    );
    assert_eq!(head(&s), before);
    // What Git commits from that index: the plaintext, from the cache-tree.
    std::fs::write(&index, &stale).unwrap();
    git(&s, &["commit", "-qm", "unchecked", "--no-verify"]).ok();
    assert!(committed(&s, "deploy/app.yaml").contains("hunter2-plaintext"));
}

/// `git reset --soft` moves HEAD back and leaves the index, cache-tree and all, as it was: the
/// cache-tree is valid and names the newer tree. What it holds beyond HEAD is staged.
#[test]
fn after_reset_soft_the_valid_cache_tree_is_compared_with_the_new_head() {
    let s = repo(&[]);
    s.write("deploy/cfg.yaml", CONFIGMAP);
    git(&s, &["add", "-A"]).ok();
    commit(&s, "clean").ok();
    s.write("deploy/app.yaml", PLAIN);
    git(&s, &["add", "-A"]).ok();
    git(&s, &["commit", "-qm", "leak", "--no-verify"]).ok();
    git(&s, &["reset", "-q", "--soft", "HEAD~1"]).ok();
    let before = head(&s);
    let c = commit(&s, "again").fails();
    assert!(
        c.stderr
            .contains("deploy/app.yaml: document 1 (Secret prod/db)"),
        "{}",
        c.stderr
    );
    assert_eq!(head(&s), before);
}

/// Every way of making a commit that hands the hook another index, or an index in another
/// shape, judges what the commit records: `-a`, `PATH`, `--include` and `--only` run from a
/// subfolder; a linked worktree; index version 4 with `index.skipHash` (`feature.manyFiles`);
/// an entry named by bytes Git allows (a newline) or longer than the 12-bit name length
/// (0xFFF); non-cone sparse-checkout (skip-worktree entries). The refusal must be the judge's
/// (the Secret is named), not an error, and the same forms with clean content must commit.
#[test]
fn every_form_of_commit_is_judged_on_the_index_it_records() {
    #[track_caller]
    fn refused(s: &Sandbox, args: &[&str], shown: &str) {
        let before = head(s);
        let c = git(s, args).fails();
        assert!(
            c.stderr
                .contains(&format!("{shown}: document 1 (Secret prod/db)")),
            "{args:?}: {}",
            c.stderr
        );
        assert_eq!(head(s), before, "{args:?}");
    }
    let s = repo(&[]);
    s.write("deploy/app.yaml", CONFIGMAP);
    s.write("deploy/other.yaml", CONFIGMAP);
    git(&s, &["add", "-A"]).ok();
    commit(&s, "clean").ok();
    s.write("deploy/app.yaml", PLAIN);
    for form in [
        &["-C", "deploy", "commit", "-qam", "all"][..],
        &["-C", "deploy", "commit", "-qm", "path", "app.yaml"],
        &[
            "-C", "deploy", "commit", "-qm", "only", "--only", "app.yaml",
        ],
        &[
            "-C",
            "deploy",
            "commit",
            "-qm",
            "include",
            "--include",
            "app.yaml",
        ],
    ] {
        refused(&s, form, "deploy/app.yaml");
    }
    // Clean content through the same forms commits.
    s.write("deploy/app.yaml", CONFIGMAP.replace("fast", "slow"));
    git(
        &s,
        &["-C", "deploy", "commit", "-qm", "clean path", "app.yaml"],
    )
    .ok();

    // Index version 4 with no checksum, as feature.manyFiles writes it.
    git(&s, &["config", "feature.manyFiles", "true"]).ok();
    git(&s, &["update-index", "--index-version", "4"]).ok();
    s.write("deploy/app.yaml", PLAIN);
    git(&s, &["add", "deploy/app.yaml"]).ok();
    let index = std::fs::read(s.path(".git/index")).unwrap();
    assert_eq!(&index[4..8], &4u32.to_be_bytes());
    assert_eq!(&index[index.len() - 20..], &[0; 20], "index.skipHash");
    refused(&s, &["commit", "-qm", "v4"], "deploy/app.yaml");
    git(&s, &["reset", "-q"]).ok();

    // A linked worktree: its own index, under .git/worktrees/NAME.
    git(&s, &["worktree", "add", "-q", "wt", "-b", "wt"]).ok();
    s.write("wt/deploy/app.yaml", PLAIN);
    refused(
        &s,
        &["-C", "wt/deploy", "commit", "-qam", "wt all"],
        "deploy/app.yaml",
    );
    refused(
        &s,
        &["-C", "wt", "commit", "-qm", "wt path", "deploy/app.yaml"],
        "deploy/app.yaml",
    );
    git(&s, &["-C", "wt", "add", "deploy/app.yaml"]).ok();
    refused(
        &s,
        &["-C", "wt", "commit", "-qm", "wt staged"],
        "deploy/app.yaml",
    );
    git(&s, &["-C", "wt", "checkout", "-q", "--", "."]).ok();
    git(&s, &["-C", "wt", "reset", "-q", "--hard"]).ok();

    // A name with a newline, and one past the 12-bit name length, staged without a file.
    s.write("run/blob", PLAIN);
    let blob = git(&s, &["hash-object", "-w", "run/blob"]).ok().stdout;
    let long = format!("{}/s.yaml", vec!["d".repeat(200); 21].join("/"));
    assert!(long.len() > 0xFFF);
    for name in ["a\nb.yaml", long.as_str()] {
        git(
            &s,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{},{name}", blob.trim()),
            ],
        )
        .ok();
        let c = commit(&s, "odd name").fails();
        assert!(
            c.stderr.contains("document 1 (Secret prod/db)"),
            "{}",
            c.stderr
        );
        git(&s, &["rm", "-q", "--cached", name]).ok();
    }

    // Non-cone sparse-checkout: deploy/other.yaml is skip-worktree; a plaintext staged for
    // it without a file in the working tree is still committed, so still judged.
    git(
        &s,
        &[
            "sparse-checkout",
            "set",
            "--no-cone",
            "/*",
            "!/deploy/other.yaml",
        ],
    )
    .ok();
    git(
        &s,
        &[
            "update-index",
            "--cacheinfo",
            &format!("100644,{},deploy/other.yaml", blob.trim()),
        ],
    )
    .ok();
    refused(&s, &["commit", "-qm", "sparse"], "deploy/other.yaml");
}

/// The clean record is void once the judging executable is replaced, even by a file of the same
/// size and modification time (`cp -p`, or a package manager that gives every file one fixed
/// mtime): a rebuilt judge must not inherit the old one's verdicts. Replacing a file changes its
/// inode and change time, which no tool sets; a `chmod` changes the change time alone and
/// stands in for it here (the binary's size and mtime stay as they are).
#[test]
fn the_clean_record_is_void_when_the_executable_changes_but_size_and_mtime_do_not() {
    let s = repo(&[]);
    s.write("cfg.yaml", CONFIGMAP);
    git(&s, &["add", "cfg.yaml"]).ok();
    let stamp = || {
        s.run(&["hook", "run"]).ok();
        let record = s.read(".git/gitops-seal/judged-clean");
        record.lines().nth(1).unwrap().to_string()
    };
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_gitops-seal"));
    let before = std::fs::metadata(exe).unwrap();
    let first = stamp();
    std::fs::set_permissions(exe, before.permissions()).unwrap();
    let second = stamp();
    let after = std::fs::metadata(exe).unwrap();
    assert_eq!(
        (before.len(), before.modified().unwrap()),
        (after.len(), after.modified().unwrap())
    );
    assert_ne!(first, second, "the record outlived a change of its judge");
}

/// Before the first commit there is no HEAD to compare with: a cache-tree filled by
/// `git write-tree` names the whole tree the commit records, and all of it is judged; with the
/// index deleted, nothing is staged and nothing is refused.
#[test]
fn the_first_commit_and_a_deleted_index_are_judged_as_git_commits_them() {
    let s = Sandbox::new();
    git(&s, &["init", "-q", "-b", "main"]).ok();
    s.write(".gitignore", "id.txt\n.config/\nrun/\n");
    s.run(&["hook", "install"]).ok();
    s.write("deploy/app.yaml", PLAIN);
    git(&s, &["add", "-A"]).ok();
    git(&s, &["write-tree"]).ok();
    let c = commit(&s, "first").fails();
    assert!(
        c.stderr
            .contains("deploy/app.yaml: document 1 (Secret prod/db)"),
        "{}",
        c.stderr
    );
    git(&s, &["rm", "-q", "--cached", "deploy/app.yaml"]).ok();
    commit(&s, "first").ok();
    std::fs::remove_file(s.path(".git/index")).unwrap();
    let c = git(&s, &["commit", "-qm", "everything deleted"]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    let tree = git(&s, &["ls-tree", "-r", "HEAD"]).ok().stdout;
    assert_eq!(tree, "", "the commit recorded the empty index");
}

/// A split index (`core.splitIndex`) and a sparse index (cone sparse-checkout with
/// `--sparse-index`) are read by neither the direct reader nor libgit2: the hook judges the
/// tree `git write-tree` makes of them, which is the tree `git commit` records. A plaintext
/// Secret is refused by the judge (not by an error), and clean content commits.
#[test]
fn split_and_sparse_indexes_are_judged_from_the_tree_git_writes() {
    #[track_caller]
    fn refused(s: &Sandbox) {
        let before = head(s);
        let c = commit(s, "leak").fails();
        assert!(
            c.stderr
                .contains("deploy/app.yaml: document 1 (Secret prod/db)"),
            "{}",
            c.stderr
        );
        assert_eq!(head(s), before);
    }
    let s = repo(&[]);
    s.write("deploy/cfg.yaml", CONFIGMAP);
    s.write("other/cfg.yaml", CONFIGMAP);
    git(&s, &["add", "-A"]).ok();
    commit(&s, "clean").ok();

    git(&s, &["config", "core.splitIndex", "true"]).ok();
    s.write("deploy/app.yaml", PLAIN);
    git(&s, &["add", "deploy/app.yaml"]).ok();
    let index = std::fs::read(s.path(".git/index")).unwrap();
    assert!(index.windows(4).any(|w| w == b"link"), "a split index");
    refused(&s);
    let c = git(&s, &["commit", "-qam", "leak via -a"]).fails();
    assert!(
        c.stderr.contains("deploy/app.yaml: document 1"),
        "{}",
        c.stderr
    );
    git(&s, &["rm", "-q", "--cached", "deploy/app.yaml"]).ok();
    s.write("deploy/more.yaml", CONFIGMAP.replace("cfg", "more"));
    git(&s, &["add", "deploy/more.yaml"]).ok();
    commit(&s, "clean, split").ok();
    git(&s, &["config", "core.splitIndex", "false"]).ok();
    git(&s, &["update-index", "--no-split-index"]).ok();

    git(
        &s,
        &[
            "sparse-checkout",
            "set",
            "--cone",
            "--sparse-index",
            "deploy",
        ],
    )
    .ok();
    let index = std::fs::read(s.path(".git/index")).unwrap();
    assert!(index.windows(4).any(|w| w == b"sdir"), "a sparse index");
    git(&s, &["add", "deploy/app.yaml"]).ok();
    refused(&s);
    git(&s, &["rm", "-q", "--cached", "deploy/app.yaml"]).ok();
    s.write("deploy/last.yaml", CONFIGMAP.replace("cfg", "last"));
    git(&s, &["add", "deploy/last.yaml"]).ok();
    commit(&s, "clean, sparse").ok();
    assert!(committed(&s, "other/cfg.yaml").contains("ConfigMap"));
}

/// A symlink's blob is its target text, and Git keeps that text for ever: the hook and
/// `scan --history` judge it as they judge a file's content (sync never reads symlinks, see
/// `kube::sync_guards::sync_skips_symlinks`). A target text that is a plaintext Secret is
/// refused; an ordinary symlink commits.
#[test]
fn a_symlink_whose_target_text_is_a_plaintext_secret_is_judged() {
    let s = repo(&[]);
    std::os::unix::fs::symlink(PLAIN, s.path("leak.yaml")).unwrap();
    git(&s, &["add", "-A"]).ok();
    let before = head(&s);
    let c = commit(&s, "leak through a symlink").fails();
    assert_eq!(head(&s), before, "the commit must not happen");
    assert!(
        c.stderr.contains("leak.yaml: document 1 (Secret prod/db)"),
        "{}",
        c.stderr
    );
    assert!(!c.stderr.contains("hunter2"), "{}", c.stderr);

    // Committed past the hook: the history scan finds it.
    git(&s, &["commit", "-qm", "oops", "--no-verify"]).ok();
    let h = s.run(&["scan", "--history"]);
    assert_eq!(h.code, 1, "{}", h.stderr);
    assert!(
        h.stdout.contains("leak.yaml: document 1 (Secret prod/db)"),
        "{}",
        h.stdout
    );

    // An ordinary symlink is fine.
    git(&s, &["rm", "-q", "leak.yaml"]).ok();
    std::os::unix::fs::symlink("cfg.yaml", s.path("link.yaml")).unwrap();
    s.write("cfg.yaml", CONFIGMAP);
    git(&s, &["add", "-A"]).ok();
    assert_eq!(commit(&s, "a link").code, 0);
}

/// `hook run --fix` seals the working-tree file in place, which would leave the plaintext in
/// another hard link: it refuses, says how to proceed, and seals nothing.
#[test]
fn fix_refuses_a_hard_linked_file_and_seals_nothing() {
    let s = repo(&["--fix"]);
    let rule = format!(
        "rules:\n  - path: 'deploy/**'\n    recipients: ['{}']\n",
        s.recipient
    );
    s.write(".gitops-seal.yaml", rule);
    s.write("deploy/app.yaml", PLAIN);
    // A backup beside it (run/ is ignored by Git), sharing the inode.
    std::fs::create_dir_all(s.path("run")).unwrap();
    std::fs::hard_link(s.path("deploy/app.yaml"), s.path("run/app-backup.yaml")).unwrap();
    git(&s, &["add", "deploy", ".gitops-seal.yaml"]).ok();
    let before = head(&s);
    let c = commit(&s, "fix through a hard link").fails();
    assert_eq!(head(&s), before);
    assert!(
        c.stderr.contains("deploy/app.yaml") && c.stderr.contains("hard link"),
        "{}",
        c.stderr
    );
    assert_eq!(s.read("deploy/app.yaml"), PLAIN, "nothing sealed");
    assert_eq!(s.read("run/app-backup.yaml"), PLAIN);
    // The staged content is still the plaintext: nothing was sealed in the index either.
    assert_eq!(git(&s, &["show", ":deploy/app.yaml"]).ok().stdout, PLAIN);
}
