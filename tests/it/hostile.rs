//! Hostile manifests and real repositories (issue 15): every command reads a file as kubectl
//! reads it, and the judge is checked against kubectl itself.

use std::process::Command;

use gitops_seal::core::judge;
use gitops_seal::core::kubeyaml::{self, Limits};

use crate::harness::{git, Sandbox};

const SECRET_BODY: &str =
    "metadata: {name: db, namespace: prod}\nstringData: {password: hunter2}\n";

/// The hostile cases of the issue: each is a plaintext Secret to kubectl.
fn hostile_cases() -> Vec<(&'static str, String)> {
    vec![
        (
            "ls-in-comment.yaml",
            format!("apiVersion: v1\nkind: ConfigMap\n{SECRET_BODY}# note\u{2028}kind: Secret\n"),
        ),
        (
            "ps-in-comment.yaml",
            format!("apiVersion: v1\nkind: ConfigMap\n{SECRET_BODY}# note\u{2029}kind: Secret\n"),
        ),
        (
            "nel-in-comment.yaml",
            format!("apiVersion: v1\nkind: ConfigMap\n{SECRET_BODY}# note\u{85}kind: Secret\n"),
        ),
        (
            "escaped-items.yaml",
            "apiVersion: v1\nkind: ConfigMapList\n\"\\x69tems\":\n- {apiVersion: v1, kind: Secret, metadata: {name: db, namespace: prod}, stringData: {password: hunter2}}\n".into(),
        ),
        (
            "slash-v1.yaml",
            format!("apiVersion: /v1\nkind: Secret\n{SECRET_BODY}"),
        ),
        (
            "ndjson.json",
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\"}}\n{\"apiVersion\":\"v1\",\"kind\":\"\\u0053ecret\",\"metadata\":{\"name\":\"db\",\"namespace\":\"prod\"},\"stringData\":{\"password\":\"hunter2\"}}\n".into(),
        ),
    ]
}

#[test]
fn hostile_secrets_are_caught_by_scan_verify_encrypt_and_the_hook() {
    let s = Sandbox::new();
    git(&s, &["init", "-q", "-b", "main"]).ok();
    s.write(".gitignore", "id.txt\n");
    s.run(&["hook", "install"]).ok();
    for (name, text) in hostile_cases() {
        s.write(name, &text);
        let scan = s.run(&["scan", name]).fails();
        assert!(scan.stdout.contains("Secret prod/db)"), "{name}: {scan:?}");
        let verify = s.run(&["verify", name]).fails();
        assert!(
            verify.stdout.contains("Secret prod/db): plaintext Secret"),
            "{name}: {verify:?}"
        );
        git(&s, &["add", name]).ok();
        let commit = git(&s, &["commit", "-qm", name]).fails();
        assert!(
            commit
                .stderr
                .contains("commit refused: plaintext Secret staged"),
            "{name}: {commit:?}"
        );
        git(&s, &["rm", "-q", "--cached", name]).ok();
    }
    // The ones encrypt cannot seal (it reads YAML 1.2) are refused, nothing written.
    for name in ["ls-in-comment.yaml", "escaped-items.yaml"] {
        let before = s.read(name);
        let r = s
            .run(&["encrypt", "--in-place", "-r", &s.recipient, name])
            .fails();
        assert_eq!(r.error_line(), format!("error: {name}: document 1 ({}): kubectl reads this as a plaintext Secret (through YAML 1.1 line breaks, escapes, merge keys or lists), which this command cannot seal; nothing was written", if name == "escaped-items.yaml" { "List item 1: Secret prod/db" } else { "Secret prod/db" }));
        assert_eq!(s.read(name), before);
    }
    // `/v1` is core v1: sealed like `v1`.
    s.run(&["encrypt", "--in-place", "-r", &s.recipient, "slash-v1.yaml"])
        .ok();
    assert!(s.read("slash-v1.yaml").contains("kind: SealedSecret"));
    s.run(&["verify", "slash-v1.yaml"]).ok();
}

#[test]
fn decrypt_escapes_a_copied_comment_that_kubectl_would_read_as_content() {
    let s = Sandbox::new();
    s.write(
        "s.yaml",
        format!("apiVersion: v1\nkind: Secret\n{SECRET_BODY}"),
    );
    let sealed = s
        .run(&["encrypt", "-r", &s.recipient, "s.yaml"])
        .ok()
        .stdout;
    s.write(
        "sealed.yaml",
        format!("{sealed}# reviewed\u{2028}metadata: {{name: db, namespace: kube-system}}\n"),
    );
    let out = s
        .run(&["decrypt", "-i", "id.txt", "sealed.yaml"])
        .ok()
        .stdout;
    assert!(
        out.ends_with("# reviewed\\u2028metadata: {name: db, namespace: kube-system}\n"),
        "{out}"
    );
    assert!(!out.contains('\u{2028}'));
    let report = judge::judge(out.as_bytes(), &Limits::default());
    assert_eq!(report.findings[0].object, "Secret prod/db");
}

#[test]
fn an_identity_given_as_a_recipient_is_never_echoed() {
    let s = Sandbox::new();
    s.write(
        "s.yaml",
        format!("apiVersion: v1\nkind: Secret\n{SECRET_BODY}"),
    );
    let key = s
        .read("id.txt")
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    let r = s.run(&["encrypt", "-R", "id.txt", "s.yaml"]).fails();
    assert_eq!(
        r.error_line(),
        "error: id.txt:3: this is an identity, not a recipient (its private key is not shown)"
    );
    let r = s.run(&["encrypt", "-r", &key, "s.yaml"]).fails();
    assert_eq!(
        r.error_line(),
        "error: this is an identity, not a recipient (its private key is not shown)"
    );
    s.write(
        "pem.txt",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    );
    let r = s.run(&["encrypt", "-R", "pem.txt", "s.yaml"]).fails();
    assert_eq!(
        r.error_line(),
        "error: pem.txt:1: this is an identity, not a recipient (its private key is not shown)"
    );
    assert!(!r.stderr.contains("b3BlbnNzaC1rZXkt"));
}

#[test]
fn folder_walks_honour_ignore_and_pass_unparsable_documents_with_a_note() {
    let s = Sandbox::new();
    s.write(
        "repo/.gitops-seal.yaml",
        format!(
            "ignore: [\"**/templates/**\"]\nrules:\n  - path: \"**\"\n    recipients: [\"{}\"]\n",
            s.recipient
        ),
    );
    let template = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\nstringData:\n  k: {{ .Values.k }}\n";
    s.write("repo/chart/templates/secret.yaml", template);
    let helmish = "apiVersion: v1\nkind: ConfigMap\ndata:\n  k: [{{ .Values.k }}\n";
    s.write("repo/plain/cm.yaml", helmish);
    s.write(
        "repo/plain/s.yaml",
        format!("apiVersion: v1\nkind: Secret\n{SECRET_BODY}"),
    );
    let r = s
        .command(&["encrypt", "--in-place", "."])
        .current_dir(s.path("repo"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    assert_eq!(
        stderr,
        "note: 1 file(s) in the folders named are listed under ignore: in .gitops-seal.yaml and were skipped (name a file to read it anyway)\nnote: ./plain/cm.yaml: document 1 passed through unchanged (invalid YAML at line 4: unclosed bracket '[')\nsealed 1 file(s); 1 had nothing to seal\n"
    );
    assert_eq!(s.read("repo/chart/templates/secret.yaml"), template);
    assert_eq!(s.read("repo/plain/cm.yaml"), helmish);
    assert!(s.read("repo/plain/s.yaml").contains("kind: SealedSecret"));
    for args in [&["verify", "."][..], &["scan", "."]] {
        let r = s
            .command(args)
            .current_dir(s.path("repo"))
            .output()
            .unwrap();
        assert!(
            r.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&r.stdout)
        );
    }
    // A template that declares a Secret outside `ignore:`: an error, nothing written.
    s.write("repo/plain/t.yaml", template);
    s.write(
        "repo/plain/s2.yaml",
        format!("apiVersion: v1\nkind: Secret\n{SECRET_BODY}"),
    );
    let r = s
        .command(&["encrypt", "--in-place", "."])
        .current_dir(s.path("repo"))
        .output()
        .unwrap();
    assert!(!r.status.success());
    assert_eq!(
        String::from_utf8_lossy(&r.stderr),
        "note: 1 file(s) in the folders named are listed under ignore: in .gitops-seal.yaml and were skipped (name a file to read it anyway)\nnote: ./plain/cm.yaml: document 1 passed through unchanged (invalid YAML at line 4: unclosed bracket '[')\nerror: ./plain/t.yaml: document 1: invalid YAML at line 4: expected string scalar\n"
    );
    assert!(s.read("repo/plain/s2.yaml").contains("kind: Secret\n"));
}

#[test]
fn too_many_documents_are_refused_with_a_clear_error() {
    let s = Sandbox::new();
    s.write("many.yaml", "a: 1\n---\n".repeat(10_001));
    let r = s.run(&["verify", "many.yaml"]).fails();
    assert_eq!(
        r.stdout,
        "many.yaml: more than 10000 documents in one file\n"
    );
    let r = s.run(&["encrypt", "-r", &s.recipient, "many.yaml"]).fails();
    assert_eq!(
        r.error_line(),
        "error: many.yaml: more than 10000 documents in one file"
    );
    s.run(&["verify", "--max-documents", "20000", "many.yaml"])
        .ok();
    let r = s.run(&["scan", "many.yaml"]).fails();
    assert_eq!(
        r.stdout,
        "many.yaml: document 0: cannot be judged: more than 10000 documents in one file\n"
    );
}

/// What kubectl creates from a file: the plaintext Secrets among the objects
/// `kubectl annotate --local -f FILE k=v -o json` prints (none when it refuses the file).
fn kubectl_plaintext_secrets(path: &std::path::Path) -> Option<usize> {
    let out = Command::new("kubectl")
        .args(["annotate", "--local", "-f"])
        .arg(path)
        .args(["k=v", "-o", "json"])
        .output()
        .expect("kubectl runs");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let mut count = 0;
    for v in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
        let v = v.unwrap();
        let objects: Vec<&serde_json::Value> = match v.get("items").and_then(|i| i.as_array()) {
            Some(items) if v["kind"] == "List" => items.iter().collect(),
            _ => vec![&v],
        };
        for o in objects {
            // kubectl prints `apiVersion: /v1` as it was: normalised as the API server does.
            if o.as_object().is_some_and(judge::is_plaintext_secret) {
                count += 1;
            }
        }
    }
    Some(count)
}

/// The corpus: the issue's cases, then combinations of spellings, tags, anchors, merge keys,
/// separators, byte-order marks and line breaks.
fn corpus() -> Vec<String> {
    let mut out: Vec<String> = hostile_cases().into_iter().map(|(_, t)| t).collect();
    let api_versions = [
        "v1",
        "/v1",
        "\"v1\"",
        "!!str v1",
        "core/v1",
        "'/v1'",
        "\"\\x2fv1\"",
    ];
    let kinds = [
        "Secret",
        "\"\\x53ecret\"",
        "!!binary U2VjcmV0",
        "secret",
        "'Secret'",
        "!!str Secret",
    ];
    for api in api_versions {
        for kind in kinds {
            out.push(format!("apiVersion: {api}\nkind: {kind}\n{SECRET_BODY}"));
        }
    }
    let breaks = ["\n", "\u{85}", "\u{2028}", "\u{2029}", "\r\n"];
    let seps = ["---", "---#x", "--- # c", "---\t", "--- ", "..."];
    for brk in breaks {
        for sep in seps {
            out.push(format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n# a{brk}{sep}\napiVersion: v1\nkind: Secret\n{SECRET_BODY}"
            ));
            out.push(format!(
                "\u{feff}apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n{sep}\n\u{feff}apiVersion: v1\nkind: Secret\n{SECRET_BODY}"
            ));
        }
        out.push(format!(
            "apiVersion: v1\nkind: ConfigMap\n{SECRET_BODY}# x{brk}kind: Secret\n"
        ));
    }
    for items in [
        "items",
        "\"items\"",
        "'items'",
        "\"\\x69tems\"",
        "Items",
        "\"\\u0069tems\"",
        "!!binary aXRlbXM=",
    ] {
        for list_kind in ["List", "ConfigMapList", "Secret"] {
            out.push(format!(
                "apiVersion: v1\nkind: {list_kind}\n{items}:\n- apiVersion: v1\n  kind: Secret\n  metadata: {{name: db, namespace: prod}}\n  stringData: {{password: x}}\n"
            ));
        }
    }
    for (first, second) in [("ConfigMap", "Secret"), ("Secret", "ConfigMap")] {
        out.push(format!(
            "apiVersion: v1\nkind: {first}\nkind: {second}\n{SECRET_BODY}"
        ));
        out.push(format!(
            "b: &b {{kind: {first}}}\napiVersion: v1\n<<: *b\nkind: {second}\n{SECRET_BODY}"
        ));
        out.push(format!(
            "b: &b {{kind: {first}}}\napiVersion: v1\nkind: {second}\n<<: *b\n{SECRET_BODY}"
        ));
        out.push(format!(
            "a: &a {{kind: {first}}}\nb: &b {{kind: {second}}}\napiVersion: v1\n<<: [*a, *b]\n{SECRET_BODY}"
        ));
        out.push(format!(
            "apiVersion: v1\n\"<<\": {{kind: {first}}}\nkind: {second}\n{SECRET_BODY}"
        ));
    }
    out.push("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"db\",\"namespace\":\"prod\"},\"stringData\":{\"password\":\"x\"}}{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"b\"},\"data\":{\"k\":\"eA==\"}}".into());
    out.push("[{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"db\"},\"stringData\":{\"password\":\"x\"}}]".into());
    out.push(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {}\nstringData: ~\n".into(),
    );
    out.push("apiVersion: v1\nkind: Secret\nmetadata: &m {name: db}\nstringData: &d {password: x}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: two}\nstringData: {k: v}\n".into());
    out
}

#[test]
fn the_judge_reads_as_kubectl_reads() {
    let version = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .expect("kubectl is installed (.ci/run installs kubernetes-client where it is absent)");
    eprintln!(
        "differential reference: {}",
        String::from_utf8_lossy(&version.stdout)
            .lines()
            .next()
            .unwrap_or("")
    );
    let dir = tempfile::tempdir().unwrap();
    let mut disagreements = Vec::new();
    let cases = corpus();
    for (i, text) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.yaml"));
        std::fs::write(&path, text).unwrap();
        let kubectl = kubectl_plaintext_secrets(&path);
        let report = judge::judge(text.as_bytes(), &Limits::default());
        let ours = report.findings.iter().filter(|f| !f.unparsable).count();
        let fails_closed = report.findings.iter().any(|f| f.unparsable);
        let agree = match kubectl {
            // kubectl creates them: each must be found, or the document blocked unjudged.
            Some(n) if n > 0 => ours == n || (fails_closed && ours <= n),
            // kubectl creates none: no plaintext finding (failing closed is allowed).
            Some(_) => ours == 0,
            // kubectl refuses the file: whatever we say errs on the safe side.
            None => true,
        };
        if !agree {
            disagreements.push(format!(
                "case {i} {text:?}: kubectl {kubectl:?}, judge {:?}",
                report.findings
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
    // The normalisation kubectl leaves to the server (it prints `/v1` as it was).
    assert!(kubeyaml::is_core_v1("/v1"));
}

/// A Secret whose template carries a key of the template deny list: the controller's own label
/// and a Secret-replication annotation.
const DENIED: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n  labels:\n    app: pg\n  annotations:\n    reflector.v1.k8s.emberstack.com/reflection-allowed: \"true\"\nstringData:\n  password: hunter2\n";

#[test]
fn decrypt_refuses_a_template_the_controller_would_refuse_and_writes_nothing() {
    let s = Sandbox::new();
    s.seal(
        "db.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---\n{DENIED}"),
    );
    let before = s.snapshot();
    let d = s.run(&["decrypt", "-i", "id.txt", "db.yaml"]).fails();
    assert_eq!(d.code, 2);
    assert_eq!(d.stdout, "", "nothing is written");
    assert_eq!(
        d.error_line(),
        "error: db.yaml: document 2 (SealedSecret prod/db): spec.template.metadata.annotations \
         carries \"reflector.v1.k8s.emberstack.com/reflection-allowed\", refused by the template \
         deny list (\"reflector.v1.k8s.emberstack.com/*\")"
    );
    assert_eq!(s.snapshot(), before);
    assert!(!d.stderr.contains("hunter2"));
}

#[test]
fn verify_reports_a_denied_template_key_as_a_finding() {
    let s = Sandbox::new();
    s.seal(
        "own.yaml",
        &DENIED
            .replace(
                "    reflector.v1.k8s.emberstack.com/reflection-allowed: \"true\"\n",
                "    kubed.appscode.com/sync: \"app=x\"\n",
            )
            .replace(
                "    app: pg\n",
                "    gitops-seal.dev/managed-by: controller\n",
            ),
    );
    s.seal(
        "fine.yaml",
        &DENIED.replace("reflector.v1.k8s.emberstack.com/", "example.com/"),
    );
    let v = s.run(&["verify", "own.yaml", "fine.yaml"]).fails();
    assert_eq!(v.code, 1);
    assert_eq!(
        v.stdout.lines().collect::<Vec<_>>(),
        ["own.yaml: document 1 (SealedSecret prod/db): spec.template.metadata.labels carries \
          \"gitops-seal.dev/managed-by\", refused by the template deny list (\"gitops-seal.dev/*\")"],
        "{}",
        v.stderr
    );
}
