//! Post-quantum keys (age's mlkem768x25519): PQ by default, never a silent mix of PQ and
//! classical recipients, `require_pq`, and `verify --require-pq`.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{run_command, Sandbox, MIXED};

const RULE_PATH: &str = "**";

fn config(s: &Sandbox, text: &str) {
    s.write(".gitops-seal.yaml", text);
}

#[test]
fn keygen_makes_a_pq_identity_by_default_and_x25519_on_request() {
    let s = Sandbox::new();
    let id = s.read("id.txt");
    assert!(id.contains("\nAGE-SECRET-KEY-PQ-1"), "{id}");
    let mode = std::fs::metadata(s.path("id.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(s.recipient.starts_with("age1pq1"), "{}", s.recipient);
    // One line, however long (about 1,960 characters).
    assert!(!s.recipient.contains('\n') && s.recipient.len() > 1900);
    assert!(id.contains(&format!("# public key: {}\n", s.recipient)));

    let c = Sandbox::x25519();
    assert!(c.read("id.txt").contains("\nAGE-SECRET-KEY-1"));
    assert!(c.recipient.starts_with("age1") && !c.recipient.starts_with("age1pq1"));
    assert_eq!(c.recipient.len(), 62);
}

#[test]
fn a_pq_value_round_trips_through_every_command() {
    let s = Sandbox::new();
    s.seal("a.yaml", MIXED);
    let sealed = s.read("a.yaml");
    assert!(sealed.contains(&format!("- {}\n", s.recipient)), "{sealed}");
    let back = s.run(&["decrypt", "-i", "id.txt", "a.yaml"]).ok().stdout;
    assert!(back.contains("password: hunter2"), "{back}");
    s.run(&["set", "a.yaml", "prod/db", "token", "--from-literal", "t0k"])
        .ok();
    s.run(&["verify", "--require-pq", "-i", "id.txt", "a.yaml"])
        .ok();
    // Rekey for another PQ key: the new one opens, the old one no longer does.
    let other = s.new_identity("other.txt");
    s.run(&["rekey", "-i", "id.txt", "-r", &other, "a.yaml"])
        .ok();
    let back = s.run(&["decrypt", "-i", "other.txt", "a.yaml"]).ok().stdout;
    assert!(back.contains("token: t0k"), "{back}");
    s.run(&["decrypt", "-i", "id.txt", "a.yaml"]).fails();
    assert_eq!(
        s.run(&["recipient", "-i", "other.txt"]).ok().stdout.trim(),
        other
    );
}

#[test]
fn a_rule_mixing_pq_and_classical_recipients_is_refused_with_the_remedy() {
    let s = Sandbox::new();
    let classical = s.run(&["keygen", "--x25519", "-o", "c.txt"]).ok();
    let classical = classical
        .stderr
        .trim()
        .strip_prefix("Public key: ")
        .unwrap()
        .to_string();
    config(
        &s,
        &format!(
            "rules:\n  - path: \"{RULE_PATH}\"\n    recipients: [{}, {classical}]\n",
            s.recipient
        ),
    );
    s.write("a.yaml", MIXED);
    let r = s.run(&["encrypt", "--in-place", "a.yaml"]).fails();
    let line = r.error_line();
    assert!(line.contains(".gitops-seal.yaml"), "{line}");
    assert!(
        line.contains(&format!("rule \"{RULE_PATH}\" mixes post-quantum")),
        "{line}"
    );
    assert!(line.contains(&format!("Classical: {classical}")), "{line}");
    assert!(line.contains("`gitops-seal keygen`"), "{line}");
    assert!(
        !line.contains(&s.recipient),
        "the PQ recipient is not listed as classical"
    );
    // Nothing was written.
    assert_eq!(s.read("a.yaml"), MIXED);
}

#[test]
fn a_recipients_file_or_flags_mixing_kinds_are_refused() {
    let s = Sandbox::new();
    let ssh = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN";
    s.write(
        "team.pub",
        format!("# team\n{}\n{ssh} alice\n", s.recipient),
    );
    s.write("a.yaml", MIXED);
    let r = s.run(&["encrypt", "-R", "team.pub", "a.yaml"]).fails();
    let line = r.error_line();
    assert!(
        line.starts_with("error: team.pub: this recipients file mixes"),
        "{line}"
    );
    assert!(line.contains(&format!("Classical: {ssh}")), "{line}");
    let r = s
        .run(&["encrypt", "-r", &s.recipient, "-r", ssh, "a.yaml"])
        .fails();
    assert!(
        r.error_line().contains("the recipients of -r/-R mixes"),
        "{}",
        r.stderr
    );
}

#[test]
fn x25519_and_ssh_rules_without_require_pq_keep_working() {
    let s = Sandbox::x25519();
    config(
        &s,
        &format!(
            "rules:\n  - path: \"**\"\n    recipients: [{}]\n",
            s.recipient
        ),
    );
    s.write("a.yaml", MIXED);
    s.run(&["encrypt", "--in-place", "a.yaml"]).ok();
    assert!(s.read("a.yaml").contains(&format!("- {}\n", s.recipient)));
    s.run(&["set", "a.yaml", "prod/db", "k", "--from-literal", "v"])
        .ok();
    s.run(&["verify", "-i", "id.txt", "a.yaml"]).ok();
    s.run(&["rekey", "-i", "id.txt", "a.yaml"]).ok();
}

#[test]
fn require_pq_refuses_classical_recipients_in_encrypt_set_edit_and_rekey() {
    let s = Sandbox::x25519();
    s.seal("a.yaml", MIXED);
    let before = s.read("a.yaml");
    // The global setting, then the same per rule.
    for text in [
        format!(
            "require_pq: true\nrules:\n  - path: \"**\"\n    recipients: [{}]\n",
            s.recipient
        ),
        format!(
            "rules:\n  - path: \"**\"\n    recipients: [{}]\n    require_pq: true\n",
            s.recipient
        ),
    ] {
        config(&s, &text);
        s.write("b.yaml", MIXED);
        let r = s.run(&["encrypt", "--in-place", "b.yaml"]).fails();
        let line = r.error_line();
        assert!(
            line.contains("require_pq allows only post-quantum"),
            "{line}"
        );
        assert!(
            line.contains(&format!("Classical: {}", s.recipient)),
            "{line}"
        );
        assert!(line.contains("`gitops-seal keygen`"), "{line}");
        assert_eq!(s.read("b.yaml"), MIXED);

        let r = s
            .run(&["set", "a.yaml", "prod/db", "k", "--from-literal", "v"])
            .fails();
        assert!(r.error_line().contains("require_pq"), "{}", r.stderr);
        let r = s.run(&["rekey", "-i", "id.txt", "a.yaml"]).fails();
        assert!(r.error_line().contains("require_pq"), "{}", r.stderr);
        let mut c = s.command(&["edit", "-i", "id.txt", "a.yaml"]);
        c.env("EDITOR", "sed -i s/hunter2/changed/");
        let r = run_command(c, b"");
        assert_ne!(r.code, 0);
        assert!(r.stderr.contains("require_pq"), "{}", r.stderr);
        assert_eq!(s.read("a.yaml"), before);
        // verify reports each classical value, with what to do.
        let r = s.run(&["verify", "a.yaml"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert_eq!(
            r.stdout
                .matches("value has classical stanza(s) (X25519)")
                .count(),
            2,
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("change the value"), "{}", r.stdout);
    }
    // A PQ recipient given with -r passes the policy: encrypt, then rekey the classical file.
    let pq = s.new_identity("pq.txt");
    s.write("b.yaml", MIXED);
    s.run(&["encrypt", "--in-place", "-r", &pq, "b.yaml"]).ok();
    s.run(&["rekey", "-i", "id.txt", "-r", &pq, "a.yaml"]).ok();
    // The rule still names the classical key; verify with the policy alone.
    config(&s, "require_pq: true\n");
    s.run(&["verify", "-i", "pq.txt", "a.yaml", "b.yaml"]).ok();
}

#[test]
fn verify_require_pq_reports_every_value_with_a_classical_stanza() {
    let s = Sandbox::x25519();
    s.seal("a.yaml", MIXED);
    s.run(&["verify", "a.yaml"]).ok();
    let r = s.run(&["verify", "--require-pq", "a.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    for key in ["password", "user"] {
        assert!(
            lines.iter().any(|l| l.contains(&format!(
                "key \"{key}\": value has classical stanza(s) (X25519)"
            ))),
            "{}",
            r.stdout
        );
    }
    let p = Sandbox::new();
    p.seal("a.yaml", MIXED);
    p.run(&["verify", "--require-pq", "a.yaml"]).ok();
}

/// The C2SP CCTV age vectors for mlkem768x25519 (tests/vectors/cctv-age/): each opens, or
/// fails, as `expect` says, with our identities (parsed as any identity file is).
#[test]
fn cctv_hybrid_vectors_open_or_fail_as_expected() {
    use sha2::{Digest, Sha256};
    use std::io::Read;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/cctv-age");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("hybrid") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let split = bytes.windows(2).position(|w| w == b"\n\n").unwrap();
        let header = std::str::from_utf8(&bytes[..split]).unwrap();
        let file = &bytes[split + 2..];
        let field = |k: &'static str| {
            header
                .lines()
                .filter_map(move |l| l.strip_prefix(k).and_then(|r| r.strip_prefix(": ")))
        };
        let expect = field("expect").next().unwrap();
        let identities = field("identity").collect::<Vec<_>>().join("\n");
        let ids = gitops_seal::core::keys::parse_identity_file(&identities).unwrap();
        let outcome = match age::Decryptor::new_buffered(file) {
            Err(_) => "header failure".to_string(),
            Ok(d) => match d.decrypt(ids.iter().map(|i| i as &dyn age::Identity)) {
                Err(age::DecryptError::NoMatchingKeys) => "no match".into(),
                Err(age::DecryptError::InvalidHeader) => "header failure".into(),
                Err(age::DecryptError::InvalidMac) => "HMAC failure".into(),
                Err(e) => format!("other: {e:?}"),
                Ok(mut r) => {
                    let mut out = Vec::new();
                    match r.read_to_end(&mut out) {
                        Ok(_) => {
                            let want = field("payload").next().unwrap();
                            let got: String = Sha256::digest(&out)
                                .iter()
                                .map(|b| format!("{b:02x}"))
                                .collect();
                            assert_eq!(got, want, "{name}: payload");
                            "success".into()
                        }
                        Err(_) => "payload failure".into(),
                    }
                }
            },
        };
        assert_eq!(outcome, expect, "{name}");
        seen += 1;
    }
    assert_eq!(seen, 17, "vectors in {}", dir.display());
}
