//! The decisions of one reconcile's writes, made without a cluster: whether the target Secret
//! may be written, which ownerReferences stay, what an apply's refusal means, which keys were
//! added by hand, whether to roll workloads. [`super::reconcile`] reads, asks here, and sends
//! what was decided.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::render::{self, reason, RolloutDecision};
use crate::core::names::{
    ADOPT_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, RECREATE_ANNOTATION,
};

/// What is known of the target Secret before anything is written (metadata only).
#[derive(Debug, Clone, Default)]
pub struct ExistingSecret<'a> {
    pub labels: Option<&'a BTreeMap<String, String>>,
    pub annotations: Option<&'a BTreeMap<String, String>>,
}

/// Whether, and as what, the controller may write the target Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Nothing there: it is created.
    Create,
    /// It carries the managed-by label.
    Managed,
    /// Someone else's, annotated for adoption.
    Adopt,
}

/// A condition to report instead of writing: its reason and message (names only).
pub type Refusal = (&'static str, String);

fn is(map: Option<&BTreeMap<String, String>>, key: &str, value: &str) -> bool {
    map.and_then(|m| m.get(key)).is_some_and(|v| v == value)
}

/// The target Secret is written only when it does not exist, is the controller's, or is
/// annotated for adoption; anything else is SecretConflict.
pub fn target(
    existing: Option<&ExistingSecret<'_>>,
    namespace: &str,
    name: &str,
) -> Result<Target, Refusal> {
    let Some(s) = existing else {
        return Ok(Target::Create);
    };
    if is(s.labels, MANAGED_BY_LABEL, MANAGED_BY_VALUE) {
        return Ok(Target::Managed);
    }
    if is(s.annotations, ADOPT_ANNOTATION, "true") {
        return Ok(Target::Adopt);
    }
    Err((
        reason::SECRET_CONFLICT,
        format!(
            "Secret {namespace}/{name} exists and is not managed by gitops-seal; annotate it \
             {ADOPT_ANNOTATION}: \"true\" to have it taken over"
        ),
    ))
}

/// When another controller's ownerReference is on the Secret (adoption, or a SealedSecret
/// recreated under the same name), the references to keep: only one may say `controller: true`.
/// `None` when there is nothing to remove.
pub fn owner_references_to_keep(
    existing: &[OwnerReference],
    owner: &OwnerReference,
) -> Option<Vec<OwnerReference>> {
    let foreign = |r: &OwnerReference| r.controller == Some(true) && r.uid != owner.uid;
    existing
        .iter()
        .any(foreign)
        .then(|| existing.iter().filter(|r| !foreign(r)).cloned().collect())
}

/// What a refused apply (a 422) means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyRefusal {
    /// The Secret was deleted and made again since it was read: not ours to write; retried as
    /// an API error.
    ReplacedMeanwhile,
    /// Immutable (or its type changed), and the SealedSecret asks for a recreate: delete the
    /// Secret read (by its uid) and create it again.
    Recreate,
    /// Report this condition.
    Report(&'static str, String),
}

/// Whether one of the refusal's causes names `field`.
pub fn cause_is(status: &kube::core::Status, field: &str) -> bool {
    status
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.field == field))
}

/// kube-apiserver's refusal of a change to an immutable Secret's data or to any Secret's type
/// (422 Invalid, `field is immutable`, on `data`, `immutable` or `type`).
pub fn is_immutable_refusal(status: &kube::core::Status) -> bool {
    status.details.as_ref().is_some_and(|d| {
        d.causes.iter().any(|c| {
            matches!(c.field.as_str(), "data" | "immutable" | "type")
                && c.message.contains("field is immutable")
        })
    })
}

/// Reads a 422 on the apply: a replaced Secret, a recreate (once, and only when annotated), or a
/// condition naming the refused fields (`describe` is the refusal in words, without values).
pub fn apply_refusal(
    status: &kube::core::Status,
    recreate_annotated: bool,
    already_recreated: bool,
    namespace: &str,
    name: &str,
    describe: &str,
) -> ApplyRefusal {
    if cause_is(status, "metadata.uid") {
        return ApplyRefusal::ReplacedMeanwhile;
    }
    if is_immutable_refusal(status) && !already_recreated {
        if recreate_annotated {
            return ApplyRefusal::Recreate;
        }
        return ApplyRefusal::Report(
            reason::IMMUTABLE_CHANGED,
            format!(
                "Secret {namespace}/{name} is immutable or has another type, and {describe}; \
                 annotate the SealedSecret {RECREATE_ANNOTATION}: \"true\" to delete and \
                 create it"
            ),
        );
    }
    ApplyRefusal::Report(
        reason::INVALID_SPEC,
        format!("Secret {namespace}/{name}: {describe}"),
    )
}

/// Keys another field manager added to the Secret (a hand edit): not ours to keep, since data
/// holds exactly the SealedSecret's keys.
pub fn hand_added_keys<'a>(
    applied: impl IntoIterator<Item = &'a String>,
    ours: &[String],
) -> Vec<String> {
    applied
        .into_iter()
        .filter(|k| !ours.contains(k))
        .cloned()
        .collect()
}

/// The rollout for one apply: what to write as the data hash and whether to roll, and a note
/// when the data changed but the controller runs without `--rollout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutPlan {
    pub decision: RolloutDecision,
    pub note: Option<String>,
}

pub fn rollout_plan(
    annotation: Option<&str>,
    rollout_enabled: bool,
    previous_hash: Option<&str>,
    current_hash: &str,
) -> RolloutPlan {
    let named = annotation.is_some_and(|v| !v.trim().is_empty());
    let decision = render::rollout_decision(previous_hash, current_hash, rollout_enabled && named);
    let changed = previous_hash.is_some_and(|p| p != current_hash);
    let note = (named && !rollout_enabled && changed)
        .then(|| "the data changed, but the controller runs without --rollout".to_owned());
    RolloutPlan { decision, note }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn refusal(causes: &[(&str, &str)]) -> Status {
        let causes: Vec<serde_json::Value> = causes
            .iter()
            .map(|(field, message)| {
                serde_json::json!({"reason": "FieldValueInvalid", "message": message, "field": field})
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "status": "Failure", "message": "Secret \"db\" is invalid", "reason": "Invalid",
            "code": 422, "details": {"name": "db", "kind": "Secret", "causes": causes},
        }))
        .unwrap()
    }

    #[test]
    fn immutable_refusals_are_recognised_by_their_causes() {
        assert!(is_immutable_refusal(&refusal(&[(
            "data",
            "Forbidden: field is immutable when `immutable` is set"
        )])));
        assert!(is_immutable_refusal(&refusal(&[(
            "type",
            "Invalid value: \"kubernetes.io/tls\": field is immutable"
        )])));
        // Another uid is "field is immutable" too, but on metadata.uid: a replaced Secret, not
        // one to delete and create.
        let uid = refusal(&[("metadata.uid", "Invalid value: \"x\": field is immutable")]);
        assert!(!is_immutable_refusal(&uid));
        assert!(cause_is(&uid, "metadata.uid"));
        assert!(!is_immutable_refusal(&refusal(&[(
            "metadata.labels",
            "Invalid value"
        )])));
    }

    #[test]
    fn only_absent_managed_or_adoptable_secrets_are_written() {
        let managed: BTreeMap<String, String> =
            [(MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string())].into();
        let adopt: BTreeMap<String, String> =
            [(ADOPT_ANNOTATION.to_string(), "true".to_string())].into();
        let other: BTreeMap<String, String> =
            [(MANAGED_BY_LABEL.to_string(), "someone".to_string())].into();
        assert_eq!(target(None, "ns", "s"), Ok(Target::Create));
        let m = ExistingSecret {
            labels: Some(&managed),
            annotations: None,
        };
        assert_eq!(target(Some(&m), "ns", "s"), Ok(Target::Managed));
        let a = ExistingSecret {
            labels: Some(&other),
            annotations: Some(&adopt),
        };
        assert_eq!(target(Some(&a), "ns", "s"), Ok(Target::Adopt));
        let (reason, message) = target(Some(&ExistingSecret::default()), "ns", "s").unwrap_err();
        assert_eq!(reason, "SecretConflict");
        assert!(message.contains("ns/s") && message.contains(ADOPT_ANNOTATION));
        // The label with another value, or the annotation with another value, is not enough.
        let not_true: BTreeMap<String, String> =
            [(ADOPT_ANNOTATION.to_string(), "yes".to_string())].into();
        let n = ExistingSecret {
            labels: Some(&other),
            annotations: Some(&not_true),
        };
        assert!(target(Some(&n), "ns", "s").is_err());
    }

    fn owner(uid: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: "gitops-seal.dev/v1".into(),
            kind: "SealedSecret".into(),
            name: "s".into(),
            uid: uid.into(),
            controller: Some(controller),
            block_owner_deletion: None,
        }
    }

    #[test]
    fn another_controllers_reference_goes_and_the_rest_stays() {
        let ours = owner("ours", true);
        assert_eq!(
            owner_references_to_keep(std::slice::from_ref(&ours), &ours),
            None
        );
        assert_eq!(
            owner_references_to_keep(&[owner("x", false)], &ours),
            None,
            "a non-controller reference is no conflict"
        );
        let kept = owner_references_to_keep(
            &[owner("old", true), owner("x", false), ours.clone()],
            &ours,
        )
        .unwrap();
        assert_eq!(kept, [owner("x", false), ours]);
    }

    #[test]
    fn a_refused_apply_is_a_recreate_only_once_and_only_when_asked() {
        let immutable = refusal(&[(
            "data",
            "Forbidden: field is immutable when `immutable` is set",
        )]);
        let r = |annotated, done| apply_refusal(&immutable, annotated, done, "ns", "s", "why");
        assert_eq!(r(true, false), ApplyRefusal::Recreate);
        assert!(
            matches!(r(false, false), ApplyRefusal::Report("ImmutableChanged", m) if m.contains(RECREATE_ANNOTATION))
        );
        assert!(matches!(
            r(true, true),
            ApplyRefusal::Report("InvalidSpec", _)
        ));
        let uid = refusal(&[("metadata.uid", "Invalid value: \"x\": field is immutable")]);
        assert_eq!(
            apply_refusal(&uid, true, false, "ns", "s", "why"),
            ApplyRefusal::ReplacedMeanwhile
        );
        let other = refusal(&[("data[k]", "Invalid value")]);
        assert_eq!(
            apply_refusal(&other, true, false, "ns", "s", "why"),
            ApplyRefusal::Report("InvalidSpec", "Secret ns/s: why".into())
        );
    }

    #[test]
    fn hand_added_keys_are_those_not_in_the_sealed_secret() {
        let applied = ["a".to_string(), "b".to_string(), "c".to_string()];
        let ours = ["a".to_string(), "c".to_string()];
        assert_eq!(hand_added_keys(&applied, &ours), ["b"]);
        assert!(hand_added_keys(&ours, &ours).is_empty());
    }

    #[test]
    fn a_rollout_is_planned_only_with_an_annotation_and_the_flag() {
        let p = rollout_plan(Some("deployment/web"), true, Some("old"), "new");
        assert!(p.decision.roll && p.note.is_none());
        let p = rollout_plan(Some("deployment/web"), false, Some("old"), "new");
        assert!(!p.decision.roll);
        assert!(p.note.unwrap().contains("without --rollout"));
        let p = rollout_plan(Some("  "), true, Some("old"), "new");
        assert!(!p.decision.roll && p.note.is_none() && p.decision.write == "new");
        let p = rollout_plan(None, false, Some("new"), "new");
        assert!(!p.decision.roll && p.note.is_none());
    }
}
