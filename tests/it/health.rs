//! How Argo CD and Flux read a SealedSecret's health, checked on the test objects of
//! deploy/argocd/resource_customizations/gitops-seal.dev/SealedSecret/ (argo-cd's layout:
//! health.lua, health_test.yaml, testdata/).
//!
//! - Argo CD: every case of health_test.yaml runs health.lua with Debian's `lua5.1` (Argo CD
//!   runs health checks with gopher-lua, Lua 5.1 semantics), the object given as Argo CD gives
//!   it: a global `obj`, a table made from the object's JSON (objects and arrays as tables,
//!   arrays from index 1, numbers as numbers, null as nil). `.ci/run` installs lua5.1
//!   (`$GITOPS_SEAL_LUA`); elsewhere the test skips with a message where it is missing.
//! - docs/OPERATIONS.md's argocd-cm snippet is health.lua, byte for byte.
//! - Flux: kstatus's rules, written down below, on the same objects.
//! - The test objects are what the controller writes: their status parses as our status type,
//!   and there is a Degraded case for every failure reason.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use gitops_seal::adapters::kube::SealedSecretStatus;
use gitops_seal::controller::render::{ready_condition, reason, Outcome};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/argocd/resource_customizations/gitops-seal.dev/SealedSecret")
}

/// health_test.yaml's cases: (object, expected status, expected message, input path).
fn cases() -> Vec<(Value, String, String, String)> {
    let text = std::fs::read_to_string(dir().join("health_test.yaml")).expect("health_test.yaml");
    let tests: Value = serde_saphyr::from_str(&text).expect("health_test.yaml parses");
    let cases: Vec<_> = tests["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .map(|t| {
            let input = t["inputPath"].as_str().expect("inputPath").to_owned();
            let text = std::fs::read_to_string(dir().join(&input)).expect(&input);
            let obj: Value = serde_saphyr::from_str(&text).expect(&input);
            (
                obj,
                t["healthStatus"]["status"]
                    .as_str()
                    .expect("status")
                    .to_owned(),
                t["healthStatus"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                input,
            )
        })
        .collect();
    // Every file of testdata/ is a case.
    let files: BTreeSet<String> = std::fs::read_dir(dir().join("testdata"))
        .unwrap()
        .map(|e| format!("testdata/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    let used: BTreeSet<String> = cases.iter().map(|c| c.3.clone()).collect();
    assert_eq!(
        files, used,
        "testdata/ and health_test.yaml list the same files"
    );
    cases
}

/// A Lua 5.1 expression for a JSON value, as Argo CD hands objects to health scripts.
fn lua(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for b in s.bytes() {
                match b {
                    b'"' | b'\\' => {
                        out.push('\\');
                        out.push(b as char);
                    }
                    0x20..=0x7e => out.push(b as char),
                    // Everything else (newlines, UTF-8 bytes) as a decimal escape.
                    _ => out.push_str(&format!("\\{b:03}")),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("[{}] = {}", lua(&Value::String(k.clone())), lua(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs health.lua on `obj` with lua5.1: (status, message).
fn argocd_health(lua_bin: &Path, obj: &Value) -> (String, String) {
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("run.lua");
    let harness = format!(
        "obj = {}\nlocal health = assert(loadfile({}))\nlocal hs = health()\nio.write(tostring(hs.status), \"\\n\", tostring(hs.message))\n",
        lua(obj),
        lua(&Value::String(
            dir().join("health.lua").to_string_lossy().into_owned()
        )),
    );
    std::fs::write(&script, harness).unwrap();
    let out = Command::new(lua_bin).arg(&script).output().expect("lua5.1");
    assert!(
        out.status.success(),
        "health.lua failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (status, message) = text.split_once('\n').expect("status and message");
    (status.to_owned(), message.to_owned())
}

#[test]
fn argocd_health_lua_passes_every_health_test_case() {
    let Some(lua_bin) = crate::chart::tool(
        "GITOPS_SEAL_LUA",
        "lua5.1",
        &["-v"],
        "the Argo CD health check",
    ) else {
        return;
    };
    let cases = cases();
    for (obj, status, message, input) in &cases {
        let got = argocd_health(&lua_bin, obj);
        assert_eq!(
            (got.0.as_str(), got.1.as_str()),
            (status.as_str(), message.as_str()),
            "{input}"
        );
    }
    let statuses: BTreeSet<&str> = cases.iter().map(|c| c.1.as_str()).collect();
    assert_eq!(
        statuses,
        BTreeSet::from(["Degraded", "Healthy", "Progressing"])
    );
}

/// The test objects are what the controller writes: each status parses as
/// [`SealedSecretStatus`], the Healthy message is the controller's own, and every failure
/// reason has a Degraded case.
#[test]
fn health_testdata_covers_every_status_the_controller_writes() {
    let mut degraded = BTreeSet::new();
    for (obj, status, _, input) in cases() {
        if obj.get("status").is_some() {
            let parsed: SealedSecretStatus =
                serde_json::from_value(obj["status"].clone()).expect(&input);
            assert_eq!(parsed.conditions.len(), 1, "{input}");
            let c = &parsed.conditions[0];
            if status == "Degraded" {
                degraded.insert(c.reason.clone());
                assert_eq!(c.status, "False", "{input}");
            }
            if status == "Healthy" {
                let ours = ready_condition(
                    &Outcome::Unsealed {
                        keys: 1,
                        opened_with: Vec::new(),
                        notes: Vec::new(),
                    },
                    parsed.observed_generation,
                    None,
                    &c.last_transition_time,
                );
                assert_eq!(c, &ours, "{input}");
            }
        }
    }
    let reasons: BTreeSet<String> = [
        reason::KEY_MISSING,
        reason::DECRYPT_FAILED,
        reason::SCOPE_MISMATCH,
        reason::SECRET_CONFLICT,
        reason::INVALID_SPEC,
        reason::IMMUTABLE_CHANGED,
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(degraded, reasons);
}

/// docs/OPERATIONS.md's argocd-cm snippet is health.lua, byte for byte.
#[test]
fn operations_argocd_snippet_is_health_lua() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/OPERATIONS.md"))
            .unwrap();
    let key = "resource.customizations.health.gitops-seal.dev_SealedSecret: |\n";
    let start = doc.find(key).expect("the argocd-cm snippet") + key.len();
    let snippet: String = doc[start..]
        .lines()
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let file = std::fs::read_to_string(dir().join("health.lua")).unwrap();
    assert_eq!(snippet.trim_end(), file.trim_end());
}

/// kstatus's status for a resource, as Flux computes health (kustomize-controller's `wait` and
/// `healthChecks`). For a custom resource kstatus has no kind-specific rule, so only the generic
/// rules apply, in this order (sigs.k8s.io/cli-utils, pkg/kstatus/status/status.go `Compute`
/// and generic.go `checkGenericProperties`, `checkGeneration`:
/// https://github.com/kubernetes-sigs/cli-utils/blob/master/pkg/kstatus/status/generic.go):
///
/// 1. `metadata.deletionTimestamp` set: Terminating;
/// 2. `metadata.generation` and `status.observedGeneration` both present and different:
///    InProgress (LatestGenerationNotObserved);
/// 3. a condition `Reconciling` with status True: InProgress; `Stalled` True: Failed;
/// 4. otherwise: Current ("Resource is current").
///
/// kstatus does not read a `Ready` condition: Ready=False alone is Current to it.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum KStatus {
    Terminating,
    InProgress,
    Failed,
    Current,
}

fn kstatus(obj: &Value) -> KStatus {
    if obj
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
    {
        return KStatus::Terminating;
    }
    if let (Some(generation), Some(observed)) = (
        obj.pointer("/metadata/generation").and_then(Value::as_i64),
        obj.pointer("/status/observedGeneration")
            .and_then(Value::as_i64),
    ) {
        if generation != observed {
            return KStatus::InProgress;
        }
    }
    for c in obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match (c["type"].as_str(), c["status"].as_str()) {
            (Some("Reconciling"), Some("True")) => return KStatus::InProgress,
            (Some("Stalled"), Some("True")) => return KStatus::Failed,
            _ => {}
        }
    }
    KStatus::Current
}

/// What Flux's kstatus makes of each state (docs/OPERATIONS.md, "Flux and Argo CD", says the
/// same): an observedGeneration behind is InProgress and an unsealed one Current, but with no
/// status yet, or Ready=False, kstatus says Current too, since it reads neither Ready nor the
/// absence of a status. Flux's `wait` therefore does not hold back on a SealedSecret that fails
/// to unseal; the docs give the `healthCheckExprs` that make Flux read Ready.
#[test]
fn kstatus_rules_on_each_status_state() {
    let mut seen = BTreeSet::new();
    for (obj, argocd, _, input) in cases() {
        let expected = match input.as_str() {
            "testdata/progressing_generation_behind.yaml" => KStatus::InProgress,
            _ => KStatus::Current,
        };
        assert_eq!(kstatus(&obj), expected, "{input} (Argo CD: {argocd})");
        seen.insert(format!("{expected:?}"));
        // Deleting it: Terminating, whatever the status.
        let mut deleting = obj.clone();
        deleting["metadata"]["deletionTimestamp"] = "2025-01-02T00:00:00Z".into();
        assert_eq!(kstatus(&deleting), KStatus::Terminating, "{input}");
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    // The rules kstatus would apply were the controller to add kstatus's own conditions.
    let mut stalled: Value = serde_json::json!({
        "metadata": {"generation": 1},
        "status": {"observedGeneration": 1, "conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "Stalled", "status": "True"}
        ]}
    });
    assert_eq!(kstatus(&stalled), KStatus::Failed);
    stalled["status"]["conditions"][1]["type"] = "Reconciling".into();
    assert_eq!(kstatus(&stalled), KStatus::InProgress);
}
