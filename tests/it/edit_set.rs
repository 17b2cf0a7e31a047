//! `edit`, `set`, `unset` and `rekey`: values left alone keep their exact ciphertext.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{ciphertext_line, Sandbox, MIXED};

#[test]
fn edit_changes_one_value_and_keeps_every_other_ciphertext() {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let before = s.read("a.yaml");
    std::fs::create_dir_all(s.path("run")).unwrap();
    // The "editor" records the temp file's and folder's modes, then changes one value.
    s.write(
        "editor.sh",
        "#!/bin/sh\nstat -c %a \"$1\" > \"$HOME/file-mode\"\nstat -c %a \"$(dirname \"$1\")\" > \"$HOME/dir-mode\"\nsed -i 's/password: hunter2/password: changed/' \"$1\"\n",
    );
    std::fs::set_permissions(s.path("editor.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let editor = s.path("editor.sh").display().to_string();
    let r = super::harness::run_command(
        {
            let mut c = s.command(&["edit", "-i", "id.txt", "a.yaml"]);
            c.env("EDITOR", &editor);
            c
        },
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.read("file-mode").trim(), "600");
    assert_eq!(s.read("dir-mode").trim(), "700");
    let after = s.read("a.yaml");
    assert_eq!(
        ciphertext_line(&after, "user"),
        ciphertext_line(&before, "user")
    );
    assert_ne!(
        ciphertext_line(&after, "password"),
        ciphertext_line(&before, "password")
    );
    let changed: Vec<_> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "only the edited value's line changes");
    let back = s.run(&["decrypt", "-i", "id.txt", "a.yaml"]).ok().stdout;
    assert!(back.contains("password: changed"));
    // The private temp folder is gone.
    assert_eq!(std::fs::read_dir(s.path("run")).unwrap().count(), 0);
}

#[test]
fn a_failing_editor_changes_nothing_and_leaves_no_temp_file() {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    std::fs::create_dir_all(s.path("run")).unwrap();
    let before = s.snapshot();
    let r = super::harness::run_command(
        {
            let mut c = s.command(&["edit", "-i", "id.txt", "a.yaml"]);
            c.env("EDITOR", "sed -i s/hunter2/leaked/ \"$1\"; false");
            c
        },
        b"",
    );
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("a.yaml is unchanged"), "{}", r.stderr);
    assert_eq!(s.snapshot(), before);
    assert_eq!(std::fs::read_dir(s.path("run")).unwrap().count(), 0);
}

/// Runs `edit` on a sealed MIXED file with `editor` (a shell snippet on "$1") and checks that
/// it failed, changed nothing and left no temp file. Returns stderr.
fn edit_refused(editor: &str) -> String {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    std::fs::create_dir_all(s.path("run")).unwrap();
    let before = s.snapshot();
    let r = super::harness::run_command(
        {
            let mut c = s.command(&["edit", "-i", "id.txt", "a.yaml"]);
            c.env("EDITOR", editor);
            c
        },
        b"",
    );
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert_eq!(s.snapshot(), before, "nothing written");
    assert_eq!(std::fs::read_dir(s.path("run")).unwrap().count(), 0);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    r.stderr
}

#[test]
fn an_edit_that_unmakes_a_secret_is_refused_rather_than_written_in_plaintext() {
    // With apiVersion changed, the document is no longer a v1 Secret: sealing would skip it.
    let e = edit_refused("sed -i 's/^apiVersion: v1$/apiVersion: v1beta1/' \"$1\"");
    assert!(e.contains("would be written in plaintext"), "{e}");
    let e = edit_refused("sed -i 's/^kind: Secret$/kind: Secrets/' \"$1\"");
    assert!(e.contains("nothing written"), "{e}");
    // The same, with a new Secret added so that the count of Secrets stays the same.
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let before = s.snapshot();
    let me = s.recipient.clone();
    let r = super::harness::run_command(
        {
            let mut c = s.command(&["edit", "-i", "id.txt", "-r", &me, "a.yaml"]);
            c.env(
                "EDITOR",
                "sed -i 's/^kind: Secret$/kind: Secrets/' \"$1\"; printf -- '---\\napiVersion: v1\\nkind: Secret\\nmetadata: {name: b, namespace: prod}\\nstringData: {x: added}\\n' >> \"$1\" #",
            );
            c
        },
        b"",
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("Secret prod/db is no longer a sealed Secret"),
        "{}",
        r.stderr
    );
    assert_eq!(s.snapshot(), before, "nothing written");
}

#[test]
fn a_hang_up_while_editing_wipes_the_plaintext_and_changes_nothing() {
    // The editor (run by `sh -c`, whose parent is gitops-seal) hangs up on gitops-seal and
    // then exits 0 with a change: the change is dropped, and the temp file is gone.
    let e = edit_refused("sed -i s/hunter2/changed/ \"$1\"; kill -HUP $PPID #");
    assert!(e.contains("interrupted; a.yaml is unchanged"), "{e}");
}

#[test]
fn set_seals_one_value_with_public_keys_only() {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let before = s.read("a.yaml");
    // No identity anywhere: set needs none.
    s.run_stdin(&["set", "a.yaml", "db", "api-key"], b"from-stdin")
        .ok();
    let after = s.read("a.yaml");
    assert_eq!(
        ciphertext_line(&after, "password"),
        ciphertext_line(&before, "password")
    );
    assert_eq!(
        ciphertext_line(&after, "user"),
        ciphertext_line(&before, "user")
    );
    let added: Vec<_> = after
        .lines()
        .filter(|l| !before.lines().any(|b| b == *l))
        .collect();
    assert_eq!(added.len(), 1);
    assert!(added[0].starts_with("    api-key: "));
    s.write("value.bin", b"\x00\x01binary");
    s.run(&[
        "set",
        "a.yaml",
        "prod/db",
        "blob",
        "--from-file",
        "value.bin",
    ])
    .ok();
    s.run(&["set", "a.yaml", "db", "user", "--from-literal", "root"])
        .ok();
    let back = s.run(&["decrypt", "-i", "id.txt", "a.yaml"]).ok().stdout;
    assert!(back.contains("api-key: from-stdin"));
    assert!(back.contains("user: root"));
    assert!(back.contains("blob: AAFiaW5hcnk="), "{back}");
}

#[test]
fn set_refuses_when_the_file_recipients_differ_from_the_rule() {
    let s = Sandbox::new();
    let intruder = Sandbox::new();
    s.write("keys/team.pub", format!("{}\n", s.recipient));
    s.write(
        ".gitops-seal.yaml",
        "rules:\n  - path: \"**\"\n    recipients: [keys/team.pub]\n",
    );
    s.seal("a.yaml", MIXED);
    // A pull request slips an extra recipient into the file.
    let sneaky = s.read("a.yaml").replace(
        &format!("    - {}\n", s.recipient),
        &format!("    - {}\n    - {}\n", s.recipient, intruder.recipient),
    );
    s.write("a.yaml", &sneaky);
    let r = s.run_stdin(&["set", "a.yaml", "db", "new"], b"v").fails();
    assert!(
        r.error_line().starts_with(
            "error: a.yaml: document 2 (SealedSecret prod/db): key \"new\": recipients "
        ),
        "{}",
        r.stderr
    );
    assert!(r.error_line().contains("differ from the rule"));
    assert_eq!(s.read("a.yaml"), sneaky);
    let v = s.run(&["verify", "a.yaml"]).fails();
    assert!(
        v.stdout.contains("spec.recipients differ from the rule"),
        "{}",
        v.stdout
    );
}

#[test]
fn unset_removes_one_value() {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let before = s.read("a.yaml");
    s.run(&["unset", "a.yaml", "db", "user"]).ok();
    let after = s.read("a.yaml");
    assert!(!after.contains("    user: "));
    assert_eq!(
        ciphertext_line(&after, "password"),
        ciphertext_line(&before, "password")
    );
    let r = s.run(&["unset", "a.yaml", "db", "user"]).fails();
    assert_eq!(r.error_line(), "error: a.yaml: document 2 (SealedSecret prod/db): key \"user\": no such key in encryptedData");
    let r = s.run(&["unset", "a.yaml", "nope", "user"]).fails();
    assert_eq!(
        r.error_line(),
        "error: a.yaml: no such SealedSecret \"nope\" in this file"
    );
}

#[test]
fn rekey_reseals_for_a_new_list_and_the_old_key_stops_working() {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let new = s.new_identity("new.txt");
    s.run(&["rekey", "-i", "id.txt", "-r", &new, "a.yaml"]).ok();
    let after = s.read("a.yaml");
    assert!(after.contains(&new) && !after.contains(&s.recipient));
    assert!(s
        .run(&["decrypt", "-i", "new.txt", "a.yaml"])
        .ok()
        .stdout
        .contains("password: hunter2"));
    s.run(&["decrypt", "-i", "id.txt", "a.yaml"]).fails();
    s.run(&["verify", "--recipient", &new, "a.yaml"]).ok();
}

#[test]
fn rekey_and_verify_reach_sealed_secrets_inside_a_list() {
    let s = Sandbox::new();
    s.seal(
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s, namespace: ns}\n  stringData: {k: in-a-list}\n",
    );
    let new = s.new_identity("new.txt");
    // Before the rekey, verify names the list item whose recipients lack the new key.
    let r = s.run(&["verify", "--recipient", &new, "list.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("document 1 (List item 1: SealedSecret ns/s)"),
        "{}",
        r.stdout
    );
    s.run(&["rekey", "-i", "id.txt", "-r", &new, "list.yaml"])
        .ok();
    let after = s.read("list.yaml");
    assert!(
        after.contains(&new) && !after.contains(&s.recipient),
        "{after}"
    );
    assert!(s
        .run(&["decrypt", "-i", "new.txt", "list.yaml"])
        .ok()
        .stdout
        .contains("k: in-a-list"));
    s.run(&["decrypt", "-i", "id.txt", "list.yaml"]).fails();
    let v = s.run(&["verify", "--recipient", &new, "-i", "new.txt", "list.yaml"]);
    assert_eq!(v.code, 0, "{}", v.stdout);
}

#[test]
fn set_unset_and_edit_reach_sealed_secrets_inside_a_list() {
    let s = Sandbox::new();
    s.seal(
        "list.yaml",
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s, namespace: ns}\n  stringData: {a: alpha, b: beta}\n",
    );
    let line = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("{key}: YWdl")))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_string()
    };
    let before = s.read("list.yaml");
    s.run(&["set", "list.yaml", "ns/s", "b", "--from-literal", "beta-2"])
        .ok();
    let after_set = s.read("list.yaml");
    assert_eq!(
        line(&after_set, "a"),
        line(&before, "a"),
        "a kept its ciphertext"
    );
    assert_ne!(line(&after_set, "b"), line(&before, "b"));

    let r = super::harness::run_command(
        {
            let mut c = s.command(&["edit", "-i", "id.txt", "list.yaml"]);
            c.env("EDITOR", "sed -i s/beta-2/beta-3/");
            c
        },
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let after_edit = s.read("list.yaml");
    assert_eq!(
        line(&after_edit, "a"),
        line(&before, "a"),
        "edit kept a's ciphertext"
    );

    s.run(&["unset", "list.yaml", "s", "a", "-n", "ns"]).ok();
    let opened = s.run(&["decrypt", "-i", "id.txt", "list.yaml"]).ok().stdout;
    assert!(
        opened.contains("b: beta-3") && !opened.contains("alpha"),
        "{opened}"
    );
    assert!(opened.contains("kind: ConfigMap"), "{opened}");
}

#[test]
fn ctrl_c_inside_the_editor_does_not_abort_the_edit() {
    // Vim users press Ctrl-C all the time; the terminal sends SIGINT to the whole group.
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let r = super::harness::run_command(
        {
            let mut c = s.command(&["edit", "-i", "id.txt", "a.yaml"]);
            c.env(
                "EDITOR",
                "sed -i s/hunter2/changed-after-ctrl-c/ \"$1\"; kill -INT $PPID #",
            );
            c
        },
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let opened = s.run(&["decrypt", "-i", "id.txt", "a.yaml"]).ok().stdout;
    assert!(opened.contains("changed-after-ctrl-c"), "{opened}");
}

#[test]
fn vim_is_started_without_viminfo_or_swap_files() {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    // A stand-in named vim that records its arguments and changes nothing.
    let vim = s.write("bin/vim", "#!/bin/sh\necho \"$@\" > \"$HOME/vim-args\"\n");
    std::fs::set_permissions(&vim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let r = super::harness::run_command(
        {
            let mut c = s.command(&["edit", "-i", "id.txt", "a.yaml"]);
            c.env("EDITOR", vim.display().to_string());
            c
        },
        b"",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let args = s.read("vim-args");
    assert!(args.contains("-i NONE -n"), "{args}");
}

/// Every command that writes a manifest in place, run on `a.yaml` (a plaintext Secret for
/// `encrypt`, a Bitnami file for `import sealed-secrets`, sealed for the rest).
fn in_place_commands(s: &Sandbox) -> Vec<(&'static str, Vec<String>, Option<&'static str>)> {
    let r = s.recipient.clone();
    let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        (
            "encrypt",
            v(&["encrypt", "--in-place", "-r", &r, "a.yaml"]),
            None,
        ),
        (
            "rekey",
            v(&["rekey", "-i", "id.txt", "-r", &r, "a.yaml"]),
            None,
        ),
        (
            "set",
            v(&["set", "a.yaml", "prod/db", "token", "--from-literal", "x"]),
            None,
        ),
        ("unset", v(&["unset", "a.yaml", "prod/db", "user"]), None),
        (
            "edit",
            v(&["edit", "-i", "id.txt", "a.yaml"]),
            Some("sed -i s/hunter2/changed/"),
        ),
    ]
}

#[test]
fn an_in_place_write_to_a_file_with_another_hard_link_is_refused_unless_forced() {
    for force in [false, true] {
        let base = Sandbox::new();
        for (what, args, editor) in in_place_commands(&base) {
            let s = Sandbox::new();
            if what == "encrypt" {
                s.write("a.yaml", MIXED);
            } else {
                s.seal("a.yaml", MIXED);
            }
            // A snapshot as `cp -al` makes it: the same inode under another name.
            std::fs::create_dir_all(s.path("snap")).unwrap();
            std::fs::hard_link(s.path("a.yaml"), s.path("snap/a.yaml")).unwrap();
            let before = s.snapshot();
            let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
            let args_recipient;
            if args.contains(&"-r") {
                // The sandbox's own recipient, not the base's.
                args_recipient = s.recipient.clone();
                let i = args.iter().position(|a| *a == "-r").unwrap();
                args[i + 1] = &args_recipient;
            }
            if force {
                args.push("--force");
            }
            let mut c = s.command(&args);
            if let Some(editor) = editor {
                c.env("EDITOR", editor);
            }
            let r = super::harness::run_command(c, b"");
            if force {
                assert_eq!(r.code, 0, "{what}: {}", r.stderr);
                assert_ne!(s.read("a.yaml"), s.read("snap/a.yaml"), "{what}");
                continue;
            }
            assert_eq!(r.code, 2, "{what}: {}", r.stdout);
            assert_eq!(
                r.error_line(),
                "error: a.yaml: the file has 2 hard links: replacing it would leave its old content in the other 1; nothing written. Pass --force to write anyway (the other links keep the old content), or first give this path a file of its own: cp a.yaml a.yaml.tmp && mv a.yaml.tmp a.yaml",
                "{what}"
            );
            assert_eq!(s.snapshot(), before, "{what}: nothing written");
        }
    }
}

#[test]
fn import_in_place_refuses_a_hard_linked_file_and_writes_no_file() {
    let s = Sandbox::new();
    s.write(
        "a.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {password: hunter2}\n",
    );
    let sops = std::process::Command::new("sops")
        .current_dir(s.dir.path())
        .env("HOME", s.dir.path())
        .args([
            "--encrypt",
            "--age",
            &s.recipient,
            "--encrypted-regex",
            "^(data|stringData)$",
            "--in-place",
            "a.yaml",
        ])
        .status()
        .unwrap();
    assert!(sops.success());
    s.write("b.yaml", s.read("a.yaml"));
    std::fs::hard_link(s.path("b.yaml"), s.path("b-link.yaml")).unwrap();
    let before = s.snapshot();
    let recipient = s.recipient.clone();
    let r = s
        .run(&[
            "import",
            "sops",
            "-i",
            "id.txt",
            "-r",
            &recipient,
            "--in-place",
            "a.yaml",
            "b.yaml",
        ])
        .fails();
    assert!(r.error_line().starts_with("error: "), "{}", r.stderr);
    assert!(
        r.stderr.contains("b.yaml: the file has 2 hard links"),
        "{}",
        r.stderr
    );
    assert_eq!(
        s.snapshot(),
        before,
        "all or nothing: a.yaml is not written either"
    );
    s.run(&[
        "import",
        "sops",
        "-i",
        "id.txt",
        "-r",
        &recipient,
        "--in-place",
        "--force",
        "a.yaml",
        "b.yaml",
    ])
    .ok();
    assert!(s.read("b-link.yaml").contains("sops:"));
    assert!(!s.read("b.yaml").contains("sops:"));
}

/// Runs `command` (a shell command line) under a pseudo-terminal made by util-linux `script`,
/// typing `keys` into it, with the sandbox as HOME and no $EDITOR/$VISUAL unless `env` sets
/// them.
fn under_a_pty(
    s: &Sandbox,
    command: &str,
    env: &[(&str, String)],
    keys: &[u8],
) -> super::harness::Run {
    std::fs::create_dir_all(s.path("run")).unwrap();
    let mut c = std::process::Command::new("script");
    c.args(["-qec", command, "/dev/null"])
        .current_dir(s.dir.path())
        .env("HOME", s.dir.path())
        .env("XDG_CONFIG_HOME", s.path(".config"))
        .env("XDG_RUNTIME_DIR", s.path("run"))
        .env("TERM", "xterm")
        .env_remove("GITOPS_SEAL_IDENTITY")
        .env_remove("VISUAL")
        .env_remove("EDITOR")
        .env_remove("VIMINIT")
        .env_remove("MYVIMRC");
    for (k, v) in env {
        c.env(k, v);
    }
    super::harness::run_command(c, keys)
}

/// Keys that make vim remember the old value: a search for it, a yank of its line, a
/// substitution; then write and quit.
const VIM_KEYS: &[u8] = b"/hunter2\ryy:s/hunter2/changed-in-vim/\r:wq!\r";

#[test]
fn every_vim_the_editor_resolves_to_keeps_the_old_value_out_of_viminfo() {
    assert!(
        std::path::Path::new("/usr/bin/vim").exists(),
        "Debian's vim is needed (`apt-get install vim`; .ci/run installs it)"
    );
    // The control: the real vim, run directly, does write the old value to ~/.viminfo with
    // these keys, so its absence below means something.
    let s = Sandbox::new();
    s.write("plain.txt", "password: hunter2\n");
    let r = under_a_pty(&s, "vi plain.txt", &[], VIM_KEYS);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(s.read("plain.txt"), "password: changed-in-vim\n");
    assert!(s.read(".viminfo").contains("hunter2"));

    let bin = env!("CARGO_BIN_EXE_gitops-seal");
    // (what $EDITOR is, or none: the tool runs `vi`)
    let cases: &[Option<&str>] = &[
        None,
        Some("/usr/bin/vi"),
        Some("vim.basic"),
        Some("view"),
        Some("myedit"),
    ];
    for editor in cases {
        let s = Sandbox::new();
        s.seal("a.yaml", MIXED);
        // A link of one's own, found through PATH: resolved to vim.basic.
        std::fs::create_dir_all(s.path("bin")).unwrap();
        std::os::unix::fs::symlink("/usr/bin/vim", s.path("bin/myedit")).unwrap();
        let mut env = vec![(
            "PATH",
            format!(
                "{}:{}",
                s.path("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )];
        if let Some(e) = editor {
            env.push(("EDITOR", e.to_string()));
        }
        let r = under_a_pty(&s, &format!("{bin} edit -i id.txt a.yaml"), &env, VIM_KEYS);
        assert_eq!(r.code, 0, "{editor:?}: {r:?}");
        let opened = s.run(&["decrypt", "-i", "id.txt", "a.yaml"]).ok().stdout;
        assert!(
            opened.contains("password: changed-in-vim"),
            "{editor:?}: {opened}"
        );
        for (path, bytes) in s.snapshot() {
            assert!(
                !String::from_utf8_lossy(&bytes).contains("hunter2"),
                "{editor:?}: the old value is in {}",
                path.display()
            );
        }
        assert!(!s.path(".viminfo").exists(), "{editor:?}");
    }
}
