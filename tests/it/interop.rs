//! Interoperability with Debian's age CLI, both ways: the documented escape hatch works.

use std::process::Command;

use base64::Engine;

use crate::harness::{ciphertext_line, run_command, Sandbox, MIXED};

#[test]
fn a_value_we_seal_opens_with_age_d_and_tail() {
    // Debian's age 1.1.1 opens classical values only.
    let s = Sandbox::x25519();
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
    let s = Sandbox::x25519();
    let mut y = Command::new("age-keygen");
    y.current_dir(s.dir.path()).args(["-y", "id.txt"]);
    let r = run_command(y, b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.trim(), s.recipient);
}

// Our own X25519 stanzas (src/core/x25519.rs) against Debian's age, for random keys.

mod x25519 {
    use std::process::Command;

    use base64::Engine;
    use proptest::prelude::*;

    use gitops_seal::core::binding::{Binding, Scope};
    use gitops_seal::core::keys::parse_identity_file;
    use gitops_seal::core::seal::{open_value, seal_value};
    use gitops_seal::core::x25519::TABLE_AFTER_USES;
    use gitops_seal::core::Identity;
    use gitops_seal::ErrorKind;

    use crate::harness::{run_command, Sandbox};

    fn bech32(hrp: &str, bytes: &[u8; 32]) -> String {
        age_core::primitives::bech32_encode(bech32::Hrp::parse_unchecked(hrp), bytes)
    }

    /// An identity file for the secret `bytes`, in age-keygen's layout, and its identity.
    fn identity(bytes: &[u8; 32]) -> (String, Identity) {
        let text = format!("{}\n", bech32("AGE-SECRET-KEY-", bytes).to_uppercase());
        let id = parse_identity_file(&text).unwrap().pop().unwrap();
        (text, id)
    }

    fn age(s: &Sandbox, args: &[&str]) -> crate::harness::Run {
        let mut c = Command::new("age");
        c.current_dir(s.dir.path()).args(args);
        run_command(c, b"")
    }

    fn binding() -> Binding {
        Binding::new(Scope::Strict, "Opaque", Some("prod"), "db", "password").unwrap()
    }

    /// What we seal opens with `age -d`, before the recipient's table is built (the ladder)
    /// and after (the table); what `age -r` seals opens with our identity; a wrong key fails
    /// with both.
    #[test]
    fn stanzas_interoperate_with_the_age_cli_for_random_keys() {
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 6,
            ..ProptestConfig::default()
        });
        runner
            .run(
                &(any::<[u8; 32]>(), any::<[u8; 32]>()),
                |(secret, other)| {
                    let clamp = |mut b: [u8; 32]| {
                        b[0] &= 248;
                        b[31] = (b[31] & 127) | 64;
                        b
                    };
                    prop_assume!(clamp(secret) != clamp(other));
                    let s = Sandbox::new();
                    let (text, id) = identity(&secret);
                    let (wrong_text, wrong) = identity(&other);
                    s.write("mine.txt", &text);
                    s.write("wrong.txt", &wrong_text);
                    let recipient = id.to_recipient().unwrap();
                    let b = binding();
                    let sealed: Vec<Vec<u8>> = (0..TABLE_AFTER_USES + 2)
                        .map(|i| {
                            let v = format!("value-{i}");
                            seal_value(std::slice::from_ref(&recipient), &b, v.as_bytes()).unwrap()
                        })
                        .collect();
                    for (i, ct) in [
                        (0, &sealed[0]),
                        (sealed.len() - 1, &sealed[sealed.len() - 1]),
                    ] {
                        s.write("v.age", ct);
                        let opened = age(&s, &["-d", "-i", "mine.txt", "v.age"]);
                        prop_assert_eq!(opened.code, 0, "{}", opened.stderr);
                        prop_assert_eq!(opened.stdout, format!("{}\nvalue-{i}", b.header_line()));
                        prop_assert_ne!(age(&s, &["-d", "-i", "wrong.txt", "v.age"]).code, 0);
                        prop_assert!(matches!(
                            open_value(std::slice::from_ref(&wrong), ct),
                            Err(ErrorKind::NoMatchingIdentity)
                        ));
                    }
                    s.write("plain", format!("{}\nfrom age", b.header_line()));
                    let r = age(&s, &["-r", &recipient.to_string(), "-o", "a.age", "plain"]);
                    prop_assert_eq!(r.code, 0, "{}", r.stderr);
                    let ct = std::fs::read(s.path("a.age")).unwrap();
                    let (_, value) = open_value(std::slice::from_ref(&id), &ct).unwrap();
                    prop_assert_eq!(&value[..], b"from age");
                    prop_assert!(matches!(
                        open_value(std::slice::from_ref(&wrong), &ct),
                        Err(ErrorKind::NoMatchingIdentity)
                    ));
                    Ok(())
                },
            )
            .unwrap();
    }

    /// An age file whose X25519 stanza is altered: age and we both refuse it, whatever the
    /// alteration (a share on the twist, a low-order share, a non-canonical or padded share,
    /// an extra argument, a short body); unaltered, both open it.
    #[test]
    fn altered_stanzas_fail_with_age_and_with_us() {
        let s = Sandbox::new();
        let (text, id) = identity(&[7; 32]);
        s.write("mine.txt", &text);
        let recipient = id.to_recipient().unwrap().to_string();
        s.write("plain", format!("{}\nv", binding().header_line()));
        assert_eq!(age(&s, &["-r", &recipient, "-o", "a.age", "plain"]).code, 0);
        let file = std::fs::read(s.path("a.age")).unwrap();
        let text = String::from_utf8_lossy(&file).into_owned();
        let line = text.lines().find(|l| l.starts_with("-> X25519 ")).unwrap();
        let share = line.strip_prefix("-> X25519 ").unwrap().to_string();
        let body = text
            .lines()
            .skip_while(|l| !l.starts_with("-> X25519 "))
            .nth(1)
            .unwrap()
            .to_string();
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        // A point of the twist (no Edwards form): it opens nothing.
        let on_twist = (2u8..)
            .map(|i| curve25519_dalek::MontgomeryPoint([i; 32]))
            .find(|u| u.to_edwards(0).is_none())
            .unwrap();
        let twist = b64.encode(on_twist.0);
        let zero = b64.encode([0u8; 32]);
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let idx = alphabet.find(share.chars().last().unwrap()).unwrap();
        let noncanonical = format!("{}{}", &share[..42], &alphabet[idx ^ 1..=idx ^ 1]);
        let alter = |from: &str, to: &str| text.replacen(from, to, 1).into_bytes();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("twist share", alter(&share, &twist)),
            ("low-order share", alter(&share, &zero)),
            ("non-canonical share", alter(&share, &noncanonical)),
            ("padded share", alter(&share, &format!("{share}="))),
            ("extra argument", alter(&share, &format!("{share} x"))),
            ("short body", alter(&body, &body[..body.len() - 2])),
        ];
        s.write("v.age", &file);
        assert_eq!(age(&s, &["-d", "-i", "mine.txt", "v.age"]).code, 0);
        assert!(open_value(std::slice::from_ref(&id), &file).is_ok());
        for (what, bytes) in cases {
            assert_ne!(bytes, file, "{what}: not altered");
            s.write("v.age", &bytes);
            let r = age(&s, &["-d", "-i", "mine.txt", "v.age"]);
            assert_ne!(r.code, 0, "{what}: age opened it");
            assert!(
                open_value(std::slice::from_ref(&id), &bytes).is_err(),
                "{what}: we opened it"
            );
        }
    }

    /// A low-order recipient key: age refuses it, and so do we (age's crate would panic).
    #[test]
    fn a_low_order_recipient_is_refused_like_age_does() {
        let s = Sandbox::new();
        let zero = bech32("age", &[0; 32]);
        s.write("plain", "x");
        assert_ne!(age(&s, &["-r", &zero, "-o", "a.age", "plain"]).code, 0);
        s.write("a.yaml", crate::harness::MIXED);
        let r = s.run(&["encrypt", "-r", &zero, "a.yaml"]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        // Refused where the recipient is read, before anything is sealed, and said once.
        assert_eq!(r.stderr.matches("low-order").count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains("invalid recipient"), "{}", r.stderr);
    }
}

// typage (npm `age-encryption` 0.3.1, tests/typage/), an implementation of age's hybrid
// post-quantum recipient type that this project did not write, both ways. `.ci/run` installs
// it (`npm ci --prefix tests/typage`); a missing install fails, never skips.

mod typage {
    use std::path::Path;
    use std::process::Command;

    use base64::Engine;

    use gitops_seal::core::binding::{Binding, Scope};
    use gitops_seal::core::keys::parse_identity_file;
    use gitops_seal::core::seal::open_value;

    use crate::harness::{ciphertext_line, run_command, Run, Sandbox, MIXED};

    fn typage(s: &Sandbox, args: &[&str], stdin: &[u8]) -> Run {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/typage");
        assert!(
            dir.join("node_modules/age-encryption/package.json")
                .is_file(),
            "typage is not installed: run `npm ci --prefix tests/typage` (.ci/run does)"
        );
        let mut c = Command::new("node");
        c.current_dir(s.dir.path())
            .arg(dir.join("age.mjs"))
            .args(args);
        run_command(c, stdin)
    }

    fn binding() -> Binding {
        Binding::new(Scope::Strict, "Opaque", Some("prod"), "db", "password").unwrap()
    }

    fn b64() -> base64::engine::GeneralPurpose {
        base64::engine::general_purpose::STANDARD
    }

    #[test]
    fn typage_opens_a_value_we_sealed_for_a_pq_recipient() {
        let s = Sandbox::new();
        assert!(s.recipient.starts_with("age1pq1"));
        s.seal("a.yaml", MIXED);
        let ct = b64()
            .decode(ciphertext_line(&s.read("a.yaml"), "password"))
            .unwrap();
        assert!(String::from_utf8_lossy(&ct).contains("\n-> mlkem768x25519 "));
        let r = typage(&s, &["decrypt", "id.txt"], &ct);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.stdout, format!("{}\nhunter2", binding().header_line()));
        // Another PQ identity does not open it.
        s.new_identity("other.txt");
        assert_ne!(typage(&s, &["decrypt", "other.txt"], &ct).code, 0);
    }

    #[test]
    fn we_open_a_value_typage_sealed_for_our_pq_identity() {
        let s = Sandbox::new();
        s.seal("a.yaml", MIXED);
        let sealed = s.read("a.yaml");
        let plain = format!("{}\nfrom typage", binding().header_line());
        // The age file is binary: typage writes it to a file through the shell.
        let mut c = Command::new("sh");
        c.current_dir(s.dir.path()).arg("-c").arg(format!(
            "node {} encrypt \"$1\" > v.age",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/typage/age.mjs")
                .display()
        ));
        c.arg("sh").arg(&s.recipient);
        let r = run_command(c, plain.as_bytes());
        assert_eq!(r.code, 0, "{}", r.stderr);
        let ct = std::fs::read(s.path("v.age")).unwrap();
        assert!(String::from_utf8_lossy(&ct).contains("\n-> mlkem768x25519 "));
        let ids = parse_identity_file(&s.read("id.txt")).unwrap();
        let (_, value) = open_value(&ids, &ct).unwrap();
        assert_eq!(&value[..], b"from typage");
        // Through the CLI: typage's value in place of ours in the SealedSecret.
        let ours = ciphertext_line(&sealed, "password");
        s.write("a.yaml", sealed.replace(ours, &b64().encode(&ct)));
        let out = s.run(&["decrypt", "-i", "id.txt", "a.yaml"]).ok().stdout;
        assert!(out.contains("password: from typage"), "{out}");
        // A stranger's identity does not open it.
        s.new_identity("other.txt");
        s.run(&["decrypt", "-i", "other.txt", "a.yaml"]).fails();
    }

    #[test]
    fn an_identity_typage_generated_works_with_us_both_ways() {
        let s = Sandbox::new();
        let r = typage(&s, &["keygen"], b"");
        assert_eq!(r.code, 0, "{}", r.stderr);
        s.write("tp.txt", &r.stdout);
        std::fs::set_permissions(
            s.path("tp.txt"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let public = r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .unwrap()
            .to_string();
        assert_eq!(
            s.run(&["recipient", "-i", "tp.txt"]).ok().stdout.trim(),
            public
        );
        s.write("a.yaml", MIXED);
        s.run(&["encrypt", "--in-place", "-r", &public, "a.yaml"])
            .ok();
        let ct = b64()
            .decode(ciphertext_line(&s.read("a.yaml"), "password"))
            .unwrap();
        let opened = typage(&s, &["decrypt", "tp.txt"], &ct);
        assert_eq!(opened.code, 0, "{}", opened.stderr);
        assert!(opened.stdout.ends_with("\nhunter2"));
        let out = s.run(&["decrypt", "-i", "tp.txt", "a.yaml"]).ok().stdout;
        assert!(out.contains("password: hunter2"), "{out}");
    }
}
