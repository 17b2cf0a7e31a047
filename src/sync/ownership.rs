//! Whose an object is: the pure decision of whether a sync may change or prune what the
//! cluster holds under a name (its label, its field manager's apply, the inventory, the adopt
//! annotation), unit-tested in [`super::plan`].

use std::collections::{BTreeMap, BTreeSet};

use super::plan::{ObjectRef, Plan};
use crate::core::names::{ADOPT_ANNOTATION, IDENTITY_LABEL, PRUNE_ANNOTATION, SYNC_LABEL};

/// What the cluster holds under one object's name: all that ownership is decided on (read from
/// one metadata-only list per kind and namespace, not a request per object).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveMeta {
    pub uid: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Whether `managedFields` holds an `Apply` entry of the sync's field manager: the trace
    /// of an apply by a sync, which a label put on by hand does not leave.
    pub applied_by_sync: bool,
}

impl LiveMeta {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// What a sync may do with one object of its plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Nothing by that name: it is created.
    Create,
    /// This sync created it: it is changed, with its uid as a precondition.
    Ours { uid: Option<String> },
    /// Someone else's, annotated `gitops-seal.dev/adopt: "true"`: taken over, with its uid as a
    /// precondition.
    Adopt { uid: Option<String> },
    /// Not this sync's to change; why, and what would make it so.
    Foreign(String),
}

impl Ownership {
    /// The uid the write must carry (`metadata.uid` in the apply: another object by the same
    /// name, made in between, is refused by the API server).
    pub fn uid(&self) -> Option<&str> {
        match self {
            Ownership::Ours { uid } | Ownership::Adopt { uid } => uid.as_deref(),
            _ => None,
        }
    }
}

/// Who owns `target`, given what the cluster holds under its name. A sync changes an existing
/// object only when it created it, which takes all three of: this sync's label, an `Apply` by
/// the sync's field manager in `managedFields`, and the object in this sync's inventory (the
/// status ConfigMap's). When the status ConfigMap is gone (`inventory_lost`), the first two
/// suffice, so a sync recovers its own objects; a label alone never does. Anything else needs
/// the adopt annotation. A Secret holding a controller identity is never anyone's to change.
pub fn ownership(
    target: &ObjectRef,
    live: Option<&LiveMeta>,
    sync: &str,
    inventory: &BTreeSet<ObjectRef>,
    inventory_lost: bool,
) -> Ownership {
    let Some(live) = live else {
        return Ownership::Create;
    };
    if target.group().is_empty()
        && target.kind == "Secret"
        && live.labels.contains_key(IDENTITY_LABEL)
    {
        return Ownership::Foreign(format!(
            "it holds a controller identity (label {IDENTITY_LABEL}): no sync changes it"
        ));
    }
    match live.label(SYNC_LABEL) {
        Some(other) if other != sync => {
            return Ownership::Foreign(format!(
                "it belongs to sync {other:?}; sync {sync:?} will not take it over"
            ))
        }
        Some(_) if live.applied_by_sync && (inventory_lost || inventory.contains(target)) => {
            return Ownership::Ours {
                uid: live.uid.clone(),
            }
        }
        _ => {}
    }
    if live.annotations.get(ADOPT_ANNOTATION).map(String::as_str) == Some("true") {
        return Ownership::Adopt {
            uid: live.uid.clone(),
        };
    }
    Ownership::Foreign(format!(
        "it exists and sync {sync:?} did not create it; annotate it {ADOPT_ANNOTATION}: \"true\" \
         to let this sync take it over"
    ))
}

/// Whether a prune may delete `live` (an object of the inventory this commit dropped): only
/// what this sync created (its label and its field manager's `Apply`, as for [`ownership`]),
/// never a controller identity, never one annotated `gitops-seal.dev/prune: "false"`. The
/// reason it is kept otherwise.
pub fn may_prune(target: &ObjectRef, live: &LiveMeta, sync: &str) -> Result<(), &'static str> {
    if target.group().is_empty()
        && target.kind == "Secret"
        && live.labels.contains_key(IDENTITY_LABEL)
    {
        return Err("it holds a controller identity");
    }
    if live.label(SYNC_LABEL) != Some(sync) {
        return Err("it does not carry this sync's label");
    }
    if !live.applied_by_sync {
        return Err("no apply of the sync's field manager is recorded on it");
    }
    if live.annotations.get(PRUNE_ANNOTATION).map(String::as_str) == Some("false") {
        return Err("it is annotated gitops-seal.dev/prune: \"false\"");
    }
    Ok(())
}

/// What to prune: objects the last fully successful pass applied (`previous`) that this plan no
/// longer declares. Namespaces and CRDs only with `namespaces_and_crds` (deleting them deletes
/// what they hold).
pub fn to_prune(
    previous: &BTreeSet<ObjectRef>,
    plan: &Plan,
    namespaces_and_crds: bool,
) -> Vec<ObjectRef> {
    let now = plan.refs();
    previous
        .iter()
        .filter(|r| !now.contains(r))
        .filter(|r| namespaces_and_crds || !r.is_namespace_or_crd())
        .cloned()
        .collect()
}
