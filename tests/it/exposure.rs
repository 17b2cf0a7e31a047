//! `scan --history --exposure`: the audit of classically sealed values in Git history, on real
//! repositories built with the real `git`.

use base64::Engine;

use crate::harness::{ciphertext_line, git, git_env, Sandbox};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

fn secret(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: prod\nstringData:\n  password: {value}\n")
}

/// A value sealed to a post-quantum (`age1pq1…`) recipient, made by hand per the C2SP age
/// spec: `-> mlkem768x25519 <base64 of the 1120-byte encapsulation>`, a 32-byte wrapped file
/// key as its body, the MAC line, a payload. It stands in until this build seals to such
/// recipients: the audit reads only the header's stanza lines, and nothing here can open it.
fn pq_value(fill: u8) -> String {
    let mut v = b"age-encryption.org/v1\n-> mlkem768x25519 ".to_vec();
    v.extend(B64.encode([fill; 1120]).as_bytes());
    v.push(b'\n');
    v.extend(B64.encode([fill; 32]).as_bytes());
    v.extend(b"\n--- ");
    v.extend(B64.encode([fill; 32]).as_bytes());
    v.push(b'\n');
    v.extend([fill; 48]);
    base64::engine::general_purpose::STANDARD.encode(v)
}

/// (The sandboxes here seal for an X25519 identity: `Sandbox::x25519`.) Takes a value sealed
/// with our code at `file` and puts a hand-made PQ value in place of
/// its ciphertext: a "rekey" to post-quantum.
fn repin_pq(s: &Sandbox, file: &str, fill: u8) {
    let text = s.read(file);
    let old = ciphertext_line(&text, "password").to_string();
    s.write(file, text.replace(&old, &pq_value(fill)));
}

/// Commits everything with a fixed committer date.
fn commit_at(s: &Sandbox, msg: &str, date: &str) -> String {
    git(s, &["add", "-A"]).ok();
    git_env(
        s,
        &["commit", "-qm", msg],
        &[("GIT_COMMITTER_DATE", date), ("GIT_AUTHOR_DATE", date)],
    )
    .ok();
    git(s, &["rev-parse", "HEAD"])
        .ok()
        .stdout
        .trim()
        .to_string()
}

fn value<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

/// Every case of the issue in one history: rekeyed without change, changed, PQ from the start,
/// classical at HEAD, deleted, and on a side branch only.
#[test]
fn the_exposure_audit_judges_each_value_of_a_real_history() {
    let s = Sandbox::x25519();
    git(&s, &["init", "-q", "-b", "main"]).ok();
    s.write(".gitignore", "id.txt\nother.txt\n.config/\nrun/\n");
    for name in ["rekeyed", "changed", "classical", "gone", "pq"] {
        s.seal(
            &format!("{name}.yaml"),
            &secret(name, &format!("{name}-v1")),
        );
    }
    repin_pq(&s, "pq.yaml", 1);
    let first = commit_at(&s, "classical values", "2020-01-02T03:04:05Z");

    // A rekey keeps the plaintext; "changed" gets a new value, sealed PQ-only. Both look alike.
    repin_pq(&s, "rekeyed.yaml", 2);
    s.seal("changed.yaml", &secret("changed", "changed-v2"));
    let last_classical_of_changed = commit_at(&s, "changed, classical", "2021-01-01T00:00:00Z");
    repin_pq(&s, "changed.yaml", 3);
    git(&s, &["rm", "-q", "gone.yaml"]).ok();
    commit_at(&s, "post-quantum", "2022-01-01T00:00:00Z");

    git(&s, &["checkout", "-qb", "side"]).ok();
    s.seal("side.yaml", &secret("side", "side-v1"));
    let side = commit_at(&s, "side", "2023-01-01T00:00:00Z");
    git(&s, &["checkout", "-q", "main"]).ok();

    let t = s.run(&["scan", "--history", "--exposure"]);
    assert_eq!(t.code, 1, "{}{}", t.stdout, t.stderr);
    let lines: Vec<&str> = t.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{}", t.stdout);
    for name in ["rekeyed", "changed", "classical", "gone", "side"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("prod/{name} password: rotate: "))),
            "{name}: {}",
            t.stdout
        );
    }
    assert!(!t.stdout.contains("prod/pq"), "{}", t.stdout);
    let rekeyed = lines
        .iter()
        .find(|l| l.starts_with("prod/rekeyed"))
        .unwrap();
    assert_eq!(
        *rekeyed,
        format!(
            "prod/rekeyed password: rotate: sealed classically (X25519) in commit {} \
             (2020-01-02T03:04:05Z); at HEAD: pq-only; changed since: unknown (without an \
             identity a rekey and a new value look alike)",
            &first[..12]
        )
    );
    let changed = lines
        .iter()
        .find(|l| l.starts_with("prod/changed"))
        .unwrap();
    assert!(
        changed.contains(&format!(
            "in commits {} (2020-01-02T03:04:05Z) to {} (2021-01-01T00:00:00Z)",
            &first[..12],
            &last_classical_of_changed[..12]
        )),
        "{changed}"
    );
    assert_eq!(
        lines[5],
        "5 of 6 sealed value(s) need rotation; 5 were sealed classically at some point; \
         4 commit(s) read"
    );
    for v in ["-v1", "-v2"] {
        assert!(
            !t.stdout.contains(v) && !t.stderr.contains(v),
            "a value was printed"
        );
    }

    let j = s.run(&["scan", "--history", "--exposure", "--format", "json"]);
    assert_eq!(j.code, 1, "{}", j.stderr);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["values"].as_array().unwrap().len(), 6);
    let r = value(&v, "rekeyed");
    assert_eq!(r["namespace"], "prod");
    assert_eq!(r["key"], "password");
    assert_eq!(r["classical"], true);
    assert_eq!(r["classical_stanza_types"], serde_json::json!(["X25519"]));
    assert_eq!(r["first_classical"]["commit"], first.as_str());
    assert_eq!(r["first_classical"]["date"], "2020-01-02T03:04:05Z");
    assert_eq!(r["first_classical"]["path"], "rekeyed.yaml");
    assert_eq!(r["last_classical"], r["first_classical"]);
    assert_eq!(r["at_head"], "pq-only");
    assert_eq!(r["changed_since_classical"], "unknown");
    assert_eq!(r["needs_rotation"], true);
    let c = value(&v, "changed");
    assert_eq!(
        c["last_classical"]["commit"],
        last_classical_of_changed.as_str()
    );
    let pq = value(&v, "pq");
    assert_eq!(pq["classical"], false);
    assert_eq!(pq["first_classical"], serde_json::Value::Null);
    assert_eq!(pq["at_head"], "pq-only");
    assert_eq!(pq["changed_since_classical"], "not-applicable");
    assert_eq!(pq["needs_rotation"], false);
    assert_eq!(value(&v, "classical")["at_head"], "classical");
    assert_eq!(
        value(&v, "classical")["changed_since_classical"],
        "unchanged"
    );
    assert_eq!(value(&v, "gone")["at_head"], "absent");
    assert_eq!(value(&v, "gone")["needs_rotation"], true);
    assert_eq!(
        value(&v, "side")["first_classical"]["commit"],
        side.as_str()
    );
    assert_eq!(value(&v, "side")["at_head"], "absent");
    assert_eq!(
        v["summary"],
        serde_json::json!({"commits": 4, "values": 6, "classical": 5, "needs_rotation": 5, "complete": true})
    );
    assert_eq!(v["missing"], serde_json::json!([]));

    // With the identity: the classical versions open, the hand-made PQ ones cannot, so the
    // rekey still cannot be told from a change, and says why.
    let i = s.run(&[
        "scan",
        "--history",
        "--exposure",
        "-i",
        "id.txt",
        "--format",
        "json",
    ]);
    assert_eq!(i.code, 1, "{}", i.stderr);
    let v: serde_json::Value = serde_json::from_str(&i.stdout).unwrap();
    assert_eq!(value(&v, "rekeyed")["changed_since_classical"], "unknown");
    assert_eq!(
        value(&v, "rekeyed")["why"],
        "the identities given do not open HEAD's version"
    );
}

#[test]
fn a_history_sealed_post_quantum_only_exits_zero_and_errors_exit_two() {
    let s = Sandbox::x25519();
    git(&s, &["init", "-q", "-b", "main"]).ok();
    s.write(".gitignore", "id.txt\n.config/\nrun/\n");
    s.seal("pq.yaml", &secret("pq", "pq-v1"));
    repin_pq(&s, "pq.yaml", 1);
    commit_at(&s, "pq", "2024-05-01T12:00:00Z");
    let t = s.run(&["scan", "--history", "--exposure"]);
    assert_eq!(t.code, 0, "{}{}", t.stdout, t.stderr);
    assert_eq!(
        t.stdout,
        "0 of 1 sealed value(s) need rotation; 0 were sealed classically at some point; \
         1 commit(s) read\n"
    );
    // --exposure needs --history; -i needs --exposure; an unreadable identity is an error.
    assert_eq!(s.run(&["scan", "--exposure"]).code, 2);
    assert_eq!(s.run(&["scan", "--history", "-i", "id.txt"]).code, 2);
    assert_eq!(
        s.run(&["scan", "--history", "--exposure", "-i", "nope.txt"])
            .code,
        2
    );
}

/// A blobless clone holds no sealed value: the audit names what is missing and ends
/// "incomplete" (exit 2), never "nothing to rotate".
#[test]
fn the_exposure_audit_of_a_partial_clone_ends_incomplete() {
    let s = Sandbox::x25519();
    git(&s, &["init", "-q", "-b", "main"]).ok();
    s.write(".gitignore", "id.txt\n.config/\nrun/\npart/\n");
    s.seal("pq.yaml", &secret("pq", "pq-v1"));
    repin_pq(&s, "pq.yaml", 1);
    let only = commit_at(&s, "pq", "2024-05-01T12:00:00Z");
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
    let full = s.run(&["scan", "--history", "--exposure"]);
    assert_eq!(full.code, 0, "{}{}", full.stdout, full.stderr);

    let t = s.run(&["scan", "--history", "--exposure", "part"]);
    assert_eq!(t.code, 2, "{}{}", t.stdout, t.stderr);
    assert_eq!(
        t.stdout,
        "0 of 0 sealed value(s) need rotation; 0 were sealed classically at some point; \
         1 commit(s) read; incomplete\n"
    );
    assert!(
        t.stderr
            .contains(&format!("missing: commit {}: pq.yaml: blob ", &only[..12])),
        "{}",
        t.stderr
    );
    assert!(
        t.stderr
            .contains("audit incomplete: 2 object(s) could not be read"),
        "{}",
        t.stderr
    );

    let j = s.run(&[
        "scan",
        "--history",
        "--exposure",
        "--format",
        "json",
        "part",
    ]);
    assert_eq!(j.code, 2);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["summary"]["complete"], false);
    assert_eq!(v["missing"].as_array().unwrap().len(), 2);
}
