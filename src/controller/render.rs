//! The pure part of the reconcile: the Secret to apply (from a [`PlainSecret`], its template
//! and its owner), the template deny list, the condition vocabulary and the Ready condition.
//! No Kubernetes calls here; unit-tested without a cluster.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde::ser::{Serialize, SerializeMap, Serializer};
use zeroize::Zeroizing;

use crate::adapters::kube::Condition;
use crate::core::PlainSecret;
use crate::Error;

pub use crate::core::names::{
    ADOPT_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_REFERENCE_ANNOTATION,
    RECREATE_ANNOTATION,
};

/// The condition type.
pub const READY: &str = "Ready";

pub use crate::core::names::{DATA_HASH_ANNOTATION, RESTARTED_AT_ANNOTATION, ROLLOUT_ANNOTATION};

/// Condition reasons (one vocabulary for conditions, events and metric labels).
pub mod reason {
    pub const UNSEALED: &str = "Unsealed";
    pub const KEY_MISSING: &str = "KeyMissing";
    pub const DECRYPT_FAILED: &str = "DecryptFailed";
    pub const SCOPE_MISMATCH: &str = "ScopeMismatch";
    pub const SECRET_CONFLICT: &str = "SecretConflict";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const IMMUTABLE_CHANGED: &str = "ImmutableChanged";
}

/// The template deny list is the core's (one definition for the controller, `decrypt` and
/// `verify`).
pub use crate::core::deny::{DenyList, DEFAULT_TEMPLATE_DENY};

/// The condition reason for a core error: `NoMatchingIdentity` (none of our identities is a
/// recipient) is KeyMissing; the core's DecryptFailed and ScopeMismatch pass through; anything
/// else the core refuses in a SealedSecret is InvalidSpec.
pub fn condition_reason(e: &Error) -> &'static str {
    // One vocabulary: what unsealing can fail with is the library's own reason. Reasons that
    // only file operations produce (KeyError for a malformed recipient in the spec, say) are
    // a malformed SealedSecret from the cluster's point of view.
    match e.reason() {
        r @ (reason::KEY_MISSING
        | reason::DECRYPT_FAILED
        | reason::SCOPE_MISMATCH
        | reason::INVALID_SPEC) => r,
        _ => reason::INVALID_SPEC,
    }
}

/// The outcome of one reconcile, as the Ready condition shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Unsealed {
        keys: usize,
        /// Fingerprints of the controller keys that opened the values.
        opened_with: Vec<String>,
        /// What the rollout could not do (a workload missing, in another namespace), named.
        notes: Vec<String>,
    },
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// `status.openedWith` after `outcome`: the keys that opened the values, or, when this
/// generation could not be unsealed, the previous list (the Secret still holds what those keys
/// opened, so they stay in use until a generation unseals).
pub fn opened_with(outcome: &Outcome, previous: &[String]) -> Vec<String> {
    match outcome {
        Outcome::Unsealed { opened_with, .. } => opened_with.clone(),
        Outcome::Failed { .. } => previous
            .iter()
            .filter(|f| crate::core::keys::is_fingerprint(f))
            .cloned()
            .collect(),
    }
}

/// The Ready condition for `outcome`; `lastTransitionTime` stays that of `previous` when the
/// status (True/False) does not change.
pub fn ready_condition(
    outcome: &Outcome,
    generation: Option<i64>,
    previous: Option<&Condition>,
    now: &str,
) -> Condition {
    let (status, reason, message) = match outcome {
        Outcome::Unsealed { keys, notes, .. } => {
            let mut message = format!(
                "unsealed {keys} key{} into the Secret",
                if *keys == 1 { "" } else { "s" }
            );
            if !notes.is_empty() {
                message.push_str("; rollout: ");
                message.push_str(&notes.join("; "));
            }
            ("True", reason::UNSEALED, message)
        }
        Outcome::Failed { reason, message } => ("False", *reason, message.clone()),
    };
    let last_transition_time = match previous {
        Some(p) if p.status == status && !p.last_transition_time.is_empty() => {
            p.last_transition_time.clone()
        }
        _ => now.to_string(),
    };
    Condition {
        type_: READY.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time,
        observed_generation: generation,
    }
}

/// SHA-256 over the Secret's data (each key and value, length-prefixed, in key order), in hex:
/// what tells a change of the values from a rekey, which changes every ciphertext and no value.
/// It is kept on the Secret only, whose readers can read the data anyway; nothing derived from
/// it is written anywhere else.
pub fn data_hash(secret: &PlainSecret) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (k, v) in &secret.data {
        h.update((k.len() as u64).to_be_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_be_bytes());
        h.update(&v[..]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What the apply writes as the data hash, and whether to roll the workloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutDecision {
    /// The annotation written with the Secret: the previous hash while a roll is pending (it
    /// becomes `current` once the workloads are patched, so a controller that stops in between
    /// rolls them on its next reconcile), else `current`.
    pub write: String,
    pub roll: bool,
}

/// Rolls only when the Secret existed with a hash and its data changed: not when it is
/// created, not when only metadata changed or a rekey left the values as they were, not at a
/// start or restart (the hash on the Secret is the one rolled for), and not for a Secret that
/// predates the hash (nothing to compare with: the hash is recorded).
pub fn rollout_decision(
    previous: Option<&str>,
    current: &str,
    wants_rollout: bool,
) -> RolloutDecision {
    match previous {
        Some(p) if p != current && wants_rollout => RolloutDecision {
            write: p.to_owned(),
            roll: true,
        },
        _ => RolloutDecision {
            write: current.to_owned(),
            roll: false,
        },
    }
}

/// A workload kind the rollout annotation may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
        }
    }
}

/// Parses `gitops-seal.dev/rollout: deployment/web, statefulset/db`: the workloads to roll and
/// what was refused (another namespace, an unknown kind, a malformed name), named for the
/// condition message and an event.
pub fn parse_rollout(value: &str) -> (Vec<(WorkloadKind, String)>, Vec<String>) {
    let mut ok = Vec::new();
    let mut refused = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parts: Vec<&str> = entry.split('/').collect();
        let (kind, name) = match parts[..] {
            [kind, name] => (kind, name),
            [_, _, _] => {
                refused.push(format!(
                    "{entry}: workloads in another namespace are not rolled (same namespace only: kind/name)"
                ));
                continue;
            }
            _ => {
                refused.push(format!("{entry}: not kind/name"));
                continue;
            }
        };
        let kind = match kind.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => WorkloadKind::Deployment,
            "statefulset" | "statefulsets" | "sts" => WorkloadKind::StatefulSet,
            "daemonset" | "daemonsets" | "ds" => WorkloadKind::DaemonSet,
            _ => {
                refused.push(format!(
                    "{entry}: unknown kind {kind:?} (deployment, statefulset or daemonset)"
                ));
                continue;
            }
        };
        if !crate::core::secret::is_dns1123_subdomain(name) {
            refused.push(format!("{entry}: {name:?} is not a valid name"));
            continue;
        }
        if !ok.contains(&(kind, name.to_owned())) {
            ok.push((kind, name.to_owned()));
        }
    }
    (ok, refused)
}

/// The merge patch that rolls a workload: a pod template annotation holding when (as
/// `kubectl rollout restart` does with its own annotation). Nothing derived from the secret.
pub fn rollout_patch(now: &str) -> serde_json::Value {
    serde_json::json!({"spec": {"template": {"metadata": {"annotations": {
        RESTARTED_AT_ANNOTATION: now
    }}}}})
}

/// The Secret to server-side apply: name, namespace, the template's type, immutability, labels
/// (plus the managed-by label) and annotations, the owner, and `data` (never `stringData`).
/// It borrows the values; each is base64-encoded into a zeroizing buffer only while it is
/// serialised into the request.
pub struct DesiredSecret<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub secret: &'a PlainSecret,
    pub owner: Option<OwnerReference>,
    /// The uid and resourceVersion read before unsealing, carried into the apply: a Secret
    /// changed or made again in between is refused (409 Conflict, 422 on the uid) rather than
    /// overwritten.
    pub precondition: Option<(String, String)>,
    /// The `gitops-seal.dev/data-hash` annotation to write ([`rollout_decision`]).
    pub data_hash: Option<String>,
}

impl<'a> DesiredSecret<'a> {
    pub fn new(
        name: &'a str,
        namespace: &'a str,
        secret: &'a PlainSecret,
        owner: Option<OwnerReference>,
    ) -> Self {
        DesiredSecret {
            name,
            namespace,
            secret,
            owner,
            precondition: None,
            data_hash: None,
        }
    }

    fn annotations(&self) -> BTreeMap<&str, &str> {
        let mut annotations: BTreeMap<&str, &str> = self
            .secret
            .annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(h) = &self.data_hash {
            annotations.insert(DATA_HASH_ANNOTATION, h);
        }
        annotations
    }

    fn labels(&self) -> BTreeMap<&str, &str> {
        let mut labels: BTreeMap<&str, &str> = self
            .secret
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        labels.insert(MANAGED_BY_LABEL, MANAGED_BY_VALUE);
        labels
    }
}

impl DesiredSecret<'_> {
    /// The body of the create that comes before the first apply (a POST, the one write that
    /// fails when something exists under the name): type, data and the managed-by label, which
    /// the type's rules and the controller's watch need. Everything else comes with the apply
    /// that follows, so that the apply's field manager owns it and can drop it later (data keys
    /// dropped later are removed as hand-added keys are). Wipe its data once sent.
    pub fn create_body(&self) -> k8s_openapi::api::core::v1::Secret {
        use k8s_openapi::ByteString;
        k8s_openapi::api::core::v1::Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(self.name.to_owned()),
                namespace: Some(self.namespace.to_owned()),
                labels: Some([(MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned())].into()),
                ..Default::default()
            },
            type_: Some(self.secret.secret_type.clone()),
            data: Some(
                self.secret
                    .data
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }
    }
}

impl std::fmt::Debug for DesiredSecret<'_> {
    /// Names and keys, never a value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredSecret")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("keys", &self.secret.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

struct Metadata<'a, 'b>(&'b DesiredSecret<'a>);

impl Serialize for Metadata<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", d.name)?;
        m.serialize_entry("namespace", d.namespace)?;
        if let Some((uid, rv)) = &d.precondition {
            m.serialize_entry("uid", uid)?;
            m.serialize_entry("resourceVersion", rv)?;
        }
        m.serialize_entry("labels", &d.labels())?;
        let annotations = d.annotations();
        if !annotations.is_empty() {
            m.serialize_entry("annotations", &annotations)?;
        }
        if let Some(owner) = &d.owner {
            m.serialize_entry("ownerReferences", std::slice::from_ref(owner))?;
        }
        m.end()
    }
}

struct Data<'a>(&'a PlainSecret);

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.data.len()))?;
        for (k, v) in &self.0.data {
            let mut b64 = Zeroizing::new(String::with_capacity(v.len().div_ceil(3) * 4));
            base64::engine::general_purpose::STANDARD.encode_string(&v[..], &mut b64);
            m.serialize_entry(k, b64.as_str())?;
        }
        m.end()
    }
}

impl Serialize for DesiredSecret<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("apiVersion", "v1")?;
        m.serialize_entry("kind", "Secret")?;
        m.serialize_entry("metadata", &Metadata(self))?;
        m.serialize_entry("type", &self.secret.secret_type)?;
        if let Some(immutable) = self.secret.immutable {
            m.serialize_entry("immutable", &immutable)?;
        }
        m.serialize_entry("data", &Data(self.secret))?;
        m.end()
    }
}

/// Truncates `message` to at most `max` bytes at a character boundary (Event notes are at
/// most 1 kB).
pub fn truncate(message: &str, max: usize) -> &str {
    if message.len() <= max {
        return message;
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::error::ErrorKind;
    use crate::core::{Identity, SealedSecret, SealedSecretSpec};
    use serde_json::json;

    fn plain() -> PlainSecret {
        let mut s = PlainSecret {
            name: "db".into(),
            namespace: Some("prod".into()),
            secret_type: "kubernetes.io/basic-auth".into(),
            immutable: Some(true),
            labels: [("app".to_string(), "pg".to_string())].into(),
            annotations: [("note".to_string(), "hello".to_string())].into(),
            ..PlainSecret::default()
        };
        s.data
            .insert("password".into(), Zeroizing::new(b"hunter2".to_vec()));
        s.data
            .insert("bin".into(), Zeroizing::new(vec![0u8, 255, 10]));
        s
    }

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "gitops-seal.dev/v1".into(),
            kind: "SealedSecret".into(),
            name: "db".into(),
            uid: "u-1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    #[test]
    fn desired_secret_has_data_type_labels_annotations_and_owner() {
        let p = plain();
        let v = serde_json::to_value(DesiredSecret::new("db", "prod", &p, Some(owner()))).unwrap();
        assert_eq!(
            v,
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "db",
                    "namespace": "prod",
                    "labels": {"app": "pg", "gitops-seal.dev/managed-by": "controller"},
                    "annotations": {"note": "hello"},
                    "ownerReferences": [{
                        "apiVersion": "gitops-seal.dev/v1",
                        "kind": "SealedSecret",
                        "name": "db",
                        "uid": "u-1",
                        "controller": true,
                        "blockOwnerDeletion": true
                    }]
                },
                "type": "kubernetes.io/basic-auth",
                "immutable": true,
                "data": {"bin": "AP8K", "password": "aHVudGVyMg=="}
            })
        );
        assert!(v.get("stringData").is_none());
    }

    #[test]
    fn desired_secret_without_owner_or_annotations() {
        let mut p = plain();
        p.annotations.clear();
        p.immutable = None;
        let v = serde_json::to_value(DesiredSecret::new("db", "prod", &p, None)).unwrap();
        assert!(v["metadata"].get("ownerReferences").is_none());
        assert!(v["metadata"].get("annotations").is_none());
        assert!(v.get("immutable").is_none());
    }

    fn sealed_with(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> SealedSecret {
        let id = Identity::generate();
        let spec: SealedSecretSpec = serde_json::from_value(json!({
            "scope": "strict",
            "recipients": [id.to_recipient().unwrap().to_string()],
            "encryptedData": {},
            "template": {"type": "Opaque", "metadata": {
                "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
                "annotations": annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            }}
        }))
        .unwrap();
        SealedSecret::from_spec(
            "db".into(),
            Some("prod".into()),
            BTreeMap::new(),
            BTreeMap::new(),
            spec,
        )
        .unwrap()
    }

    #[test]
    fn deny_list_refuses_own_keys_and_replication_annotations() {
        let deny = DenyList::new(&["example.com/copy-*".to_string()]).unwrap();
        assert!(deny
            .refuse(&sealed_with(&[("app", "x")], &[("note", "y")]))
            .is_ok());
        for (labels, annotations, hit) in [
            (
                vec![("gitops-seal.dev/managed-by", "controller")],
                vec![],
                "gitops-seal.dev/managed-by",
            ),
            (
                vec![],
                vec![("reflector.v1.k8s.emberstack.com/reflection-allowed", "true")],
                "reflector.v1.k8s.emberstack.com",
            ),
            (
                vec![],
                vec![("replicator.v1.mittwald.de/replicate-to", "*")],
                "replicator",
            ),
            (vec![], vec![("kubed.appscode.com/sync", "")], "kubed"),
            (
                vec![],
                vec![("example.com/copy-everywhere", "1")],
                "example.com",
            ),
        ] {
            let err = deny
                .refuse(&sealed_with(&labels, &annotations))
                .unwrap_err();
            assert_eq!(condition_reason(&err), reason::INVALID_SPEC);
            let err = err.to_string();
            assert!(err.contains(hit), "{err}");
            assert!(err.contains("SealedSecret prod/db"), "{err}");
        }
    }

    #[test]
    fn reasons_map_the_core_vocabulary() {
        let e = |k: ErrorKind| Error::from(k);
        assert_eq!(
            condition_reason(&e(ErrorKind::NoMatchingIdentity)),
            "KeyMissing"
        );
        assert_eq!(condition_reason(&e(ErrorKind::Corrupt)), "DecryptFailed");
        assert_eq!(
            condition_reason(&e(ErrorKind::NotAge {
                detail: "x",
                source: None
            })),
            "DecryptFailed"
        );
        assert_eq!(
            condition_reason(&e(ErrorKind::ScopeMismatch {
                field: "namespace",
                sealed: "a".into(),
                found: "b".into(),
                scope: "strict"
            })),
            "ScopeMismatch"
        );
        assert_eq!(
            condition_reason(&e(ErrorKind::UnknownScope("x".into()))),
            "InvalidSpec"
        );
        assert_eq!(
            condition_reason(&e(ErrorKind::MissingField("spec.scope"))),
            "InvalidSpec"
        );
    }

    fn plain_of(values: &[(&str, &[u8])]) -> PlainSecret {
        PlainSecret {
            name: "s".into(),
            namespace: Some("ns".into()),
            secret_type: "Opaque".into(),
            immutable: None,
            labels: Default::default(),
            annotations: Default::default(),
            data: values
                .iter()
                .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_vec())))
                .collect(),
        }
    }

    #[test]
    fn the_data_hash_changes_with_the_values_only() {
        let a = data_hash(&plain_of(&[("k", b"v")]));
        assert_eq!(a.len(), 64);
        let mut relabelled = plain_of(&[("k", b"v")]);
        relabelled.labels.insert("tier".into(), "db".into());
        relabelled.secret_type = "kubernetes.io/basic-auth".into();
        assert_eq!(data_hash(&relabelled), a, "metadata is not data");
        assert_ne!(data_hash(&plain_of(&[("k", b"w")])), a);
        assert_ne!(data_hash(&plain_of(&[("j", b"v")])), a);
        // Length-prefixed: moving bytes between key and value is a change.
        assert_ne!(
            data_hash(&plain_of(&[("ab", b"c")])),
            data_hash(&plain_of(&[("a", b"bc")]))
        );
    }

    #[test]
    fn workloads_roll_only_when_an_existing_secrets_data_changed() {
        let roll = |previous: Option<&str>, wants| rollout_decision(previous, "new", wants);
        assert_eq!(
            roll(Some("old"), true),
            RolloutDecision {
                write: "old".into(),
                roll: true
            },
            "the old hash stays until the workloads are patched"
        );
        for (previous, wants) in [
            (None, true),
            (Some("new"), true),
            (Some("old"), false),
            (None, false),
        ] {
            assert_eq!(
                roll(previous, wants),
                RolloutDecision {
                    write: "new".into(),
                    roll: false
                },
                "{previous:?} {wants}"
            );
        }
    }

    #[test]
    fn the_rollout_annotation_names_same_namespace_workloads() {
        let (ok, refused) = parse_rollout(
            " deployment/web, StatefulSet/db,ds/agent, deploy/web, other/deployment/x, job/j, deployment/Bad_Name, web, ",
        );
        assert_eq!(
            ok,
            [
                (WorkloadKind::Deployment, "web".to_string()),
                (WorkloadKind::StatefulSet, "db".to_string()),
                (WorkloadKind::DaemonSet, "agent".to_string()),
            ]
        );
        assert_eq!(refused.len(), 4, "{refused:?}");
        assert!(refused[0].contains("another namespace"), "{refused:?}");
        assert!(refused[1].contains("unknown kind"), "{refused:?}");
        assert!(refused[2].contains("not a valid name"), "{refused:?}");
        assert!(refused[3].contains("not kind/name"), "{refused:?}");
        let patch = rollout_patch("2026-12-07T05:00:00Z").to_string();
        assert_eq!(
            patch,
            r#"{"spec":{"template":{"metadata":{"annotations":{"gitops-seal.dev/restartedAt":"2026-12-07T05:00:00Z"}}}}}"#
        );
    }

    #[test]
    fn a_failed_generation_keeps_the_previous_keys_in_use() {
        let failed = Outcome::Failed {
            reason: reason::KEY_MISSING,
            message: "m".into(),
        };
        let previous = vec!["pq:0123456789abcdef".to_string(), "forged value".into()];
        assert_eq!(opened_with(&failed, &previous), ["pq:0123456789abcdef"]);
        let ok = Outcome::Unsealed {
            keys: 1,
            opened_with: vec!["x25519:0123456789abcdef".into()],
            notes: vec!["deployment/x not found in namespace ns".into()],
        };
        assert_eq!(opened_with(&ok, &previous), ["x25519:0123456789abcdef"]);
        let c = ready_condition(&ok, Some(1), None, "t");
        assert_eq!(
            c.message,
            "unsealed 1 key into the Secret; rollout: deployment/x not found in namespace ns"
        );
    }

    #[test]
    fn ready_condition_keeps_transition_time_while_status_holds() {
        let ok = Outcome::Unsealed {
            keys: 2,
            opened_with: vec!["pq:0123456789abcdef".into()],
            notes: Vec::new(),
        };
        let first = ready_condition(&ok, Some(1), None, "t1");
        assert_eq!(
            (
                first.status.as_str(),
                first.reason.as_str(),
                first.last_transition_time.as_str()
            ),
            ("True", "Unsealed", "t1")
        );
        assert_eq!(first.observed_generation, Some(1));
        let again = ready_condition(&ok, Some(2), Some(&first), "t2");
        assert_eq!(again.last_transition_time, "t1");
        let failed = Outcome::Failed {
            reason: reason::KEY_MISSING,
            message: "m".into(),
        };
        let f = ready_condition(&failed, Some(2), Some(&again), "t3");
        assert_eq!(
            (
                f.status.as_str(),
                f.reason.as_str(),
                f.message.as_str(),
                f.last_transition_time.as_str()
            ),
            ("False", "KeyMissing", "m", "t3")
        );
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
