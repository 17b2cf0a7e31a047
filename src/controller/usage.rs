//! Which key each live value needs, and what follows for the keys: pure decisions over what
//! the watches hold, unit-tested without a cluster. The I/O is in [`super::lifecycle`].
//!
//! A value is attributed to the first key, in the keyring's order (active keys newest first,
//! then retired ones, then those being deleted), that opens it; a SealedSecret's
//! `status.openedWith` lists its values' keys, and the sync loop records its own in its status
//! ConfigMap. A key is **in use** when a live SealedSecret's status or the sync loop's last pass
//! names it. For a retiring key this is exactly "no key that stays opens that value", found at
//! no extra cost: age tries the keys in that order anyway, and the first that opens is the one
//! recorded. An active key may be named while an older active key also opens the value (it is
//! tried first): that only keeps it a little longer, never releases a key too early.

use std::collections::{BTreeMap, BTreeSet};

use super::keys::{KeyInfo, KeyState};

/// What one live SealedSecret says about its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKeys {
    /// `namespace/name`.
    pub object: String,
    pub generation: Option<i64>,
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// `status.openedWith`.
    pub opened_with: Vec<String>,
}

/// What the sync loop inside the controller says about its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncKeys {
    /// No sync loop runs in this controller.
    NoSync,
    /// It runs but has recorded no pass yet (its status ConfigMap has no `keys`).
    NotYetRecorded,
    /// The fingerprints its last pass unsealed with.
    Recorded(BTreeSet<String>),
}

/// Which key each live value needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Fingerprint → the SealedSecrets (`namespace/name`) whose status names it.
    pub holders: BTreeMap<String, BTreeSet<String>>,
    /// Fingerprints the sync loop's last pass unsealed with.
    pub sync: BTreeSet<String>,
    /// Why a key may not be released yet, if so: an answer is only complete once every
    /// SealedSecret has been reconciled at its current generation and the sync loop (if any)
    /// has recorded a pass. Until then, finalizers are added but never removed.
    pub unsettled: Option<String>,
}

impl Usage {
    /// Live SealedSecrets whose values need `fingerprint`.
    pub fn count(&self, fingerprint: &str) -> usize {
        self.holders.get(fingerprint).map_or(0, BTreeSet::len)
    }

    /// Whether a live value (a SealedSecret's or the sync loop's) needs `fingerprint`.
    pub fn in_use(&self, fingerprint: &str) -> bool {
        self.count(fingerprint) > 0 || self.sync.contains(fingerprint)
    }
}

/// Works out [`Usage`] from the SealedSecrets the watches hold and the sync loop's record.
pub fn usage(
    objects: impl IntoIterator<Item = ObjectKeys>,
    sync: &SyncKeys,
    watches_synced: bool,
) -> Usage {
    let mut out = Usage::default();
    let mut pending: Vec<String> = Vec::new();
    for o in objects {
        if o.generation.is_some() && o.observed_generation != o.generation {
            pending.push(o.object.clone());
        }
        for f in o.opened_with {
            if crate::core::keys::is_fingerprint(&f) {
                out.holders.entry(f).or_default().insert(o.object.clone());
            }
        }
    }
    if let SyncKeys::Recorded(keys) = sync {
        out.sync = keys.clone();
    }
    out.unsettled = if !watches_synced {
        Some("the SealedSecret watches have not listed yet".into())
    } else if !pending.is_empty() {
        pending.sort();
        Some(format!(
            "{} SealedSecret(s) not reconciled at their current generation yet ({})",
            pending.len(),
            first_few(&pending)
        ))
    } else if *sync == SyncKeys::NotYetRecorded {
        Some("the sync loop has not recorded a pass yet".into())
    } else {
        None
    };
    out
}

/// The first five names, and how many more.
pub fn first_few(names: &[String]) -> String {
    let mut s = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        s.push_str(&format!(" and {} more", names.len() - 5));
    }
    s
}

/// What to do with the key-in-use finalizer on one identity Secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalizerAction {
    Add,
    Remove,
    Keep,
}

/// The finalizer on an identity Secret holding `fingerprints` (all its keys): kept while any
/// of them is in use, added when one is (never to a Secret being deleted: the API server
/// refuses new finalizers then), removed once none is and the answer is complete. A Secret
/// with a key whose fingerprint is unknown (its public half cannot be derived) is left as it is.
pub fn finalizer_action(
    fingerprints: &[Option<String>],
    has_finalizer: bool,
    deleting: bool,
    usage: &Usage,
) -> FinalizerAction {
    if fingerprints.is_empty() || fingerprints.iter().any(Option::is_none) {
        return FinalizerAction::Keep;
    }
    let in_use = fingerprints.iter().flatten().any(|f| usage.in_use(f));
    match (in_use, has_finalizer) {
        (true, false) if !deleting => FinalizerAction::Add,
        (false, true) if usage.unsettled.is_none() => FinalizerAction::Remove,
        _ => FinalizerAction::Keep,
    }
}

/// The identity Secrets to put the finalizer on before a Secret opened with `opened_with` is
/// written: those holding one of the keys that have not been seen with it yet, or that this
/// process has `released` since (the keyring may not show that yet); sorted, each once. A
/// Secret being deleted is left out: the API server refuses new finalizers then, and the
/// deletion came before any use.
pub fn secrets_to_hold(
    keys: &[KeyInfo],
    opened_with: &[String],
    released: impl Fn(&str) -> bool,
) -> Vec<String> {
    keys.iter()
        .filter(|k| (!k.held || released(&k.secret)) && k.state != KeyState::Deleting)
        .filter(|k| {
            k.fingerprint
                .as_ref()
                .is_some_and(|f| opened_with.contains(f))
        })
        .map(|k| k.secret.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// One key's line in the usage report (ConfigMap `gitops-seal-key-usage`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyReport {
    pub fingerprint: String,
    pub secret: String,
    pub state: &'static str,
    /// Live SealedSecrets that need it.
    pub sealed_secrets: usize,
    /// Whether the sync loop's last pass unsealed with it.
    pub sync: bool,
    /// For a retiring key: which SealedSecrets still hold it (reseal or remove them to let it
    /// go), sorted, at most [`MAX_LISTED`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub still_needed_by: Vec<String>,
}

/// SealedSecrets listed per retiring key in the report (the count is always whole).
pub const MAX_LISTED: usize = 100;

/// The report for every key held, in keyring order.
pub fn report(keys: &[KeyInfo], usage: &Usage) -> Vec<KeyReport> {
    let mut seen = BTreeSet::new();
    keys.iter()
        .filter_map(|k| {
            let fp = k.fingerprint.clone()?;
            if !seen.insert(fp.clone()) {
                return None;
            }
            let still_needed_by = if k.state.is_retiring() {
                usage
                    .holders
                    .get(&fp)
                    .map(|h| h.iter().take(MAX_LISTED).cloned().collect())
                    .unwrap_or_default()
            } else {
                Vec::new()
            };
            Some(KeyReport {
                sealed_secrets: usage.count(&fp),
                sync: usage.sync.contains(&fp),
                fingerprint: fp,
                secret: k.secret.clone(),
                state: k.state.as_str(),
                still_needed_by,
            })
        })
        .collect()
}

/// The fingerprints of retiring keys: when this set changes, every SealedSecret is reconciled
/// again so that values another key also opens move to it.
pub fn retiring(keys: &[KeyInfo]) -> BTreeSet<String> {
    keys.iter()
        .filter(|k| k.state != KeyState::Active)
        .filter_map(|k| k.fingerprint.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "pq:aaaaaaaaaaaaaaaa";
    const B: &str = "pq:bbbbbbbbbbbbbbbb";
    const C: &str = "pq:cccccccccccccccc";
    const D: &str = "x25519:dddddddddddddddd";

    fn obj(name: &str, generation: i64, observed: Option<i64>, keys: &[&str]) -> ObjectKeys {
        ObjectKeys {
            object: format!("ns/{name}"),
            generation: Some(generation),
            observed_generation: observed,
            opened_with: keys.iter().map(|k| k.to_string()).collect(),
        }
    }

    fn key(fp: &str, secret: &str, state: KeyState) -> KeyInfo {
        KeyInfo {
            secret: secret.into(),
            fingerprint: Some(fp.into()),
            recipient: None,
            state,
            held: false,
        }
    }

    #[test]
    fn the_keys_a_write_needs_are_held_first_once_each() {
        let mut held = key(B, "b", KeyState::Active);
        held.held = true;
        let keys = [
            key(A, "a", KeyState::Active),
            // Two keys in one Secret: held once.
            key(C, "a", KeyState::Retired),
            held,
            key(D, "d", KeyState::Deleting),
            key("x25519:0000000000000000", "e", KeyState::Active),
        ];
        let owned = |fps: &[&str]| fps.iter().map(|f| f.to_string()).collect::<Vec<_>>();
        let none = |_: &str| false;
        assert_eq!(secrets_to_hold(&keys, &owned(&[A, C]), none), ["a"]);
        // Already held, or being deleted: nothing to do.
        assert!(secrets_to_hold(&keys, &owned(&[B, D]), none).is_empty());
        assert!(secrets_to_hold(&keys, &[], none).is_empty());
        // Held as the keyring last saw it, but released since by this process: held again.
        assert_eq!(secrets_to_hold(&keys, &owned(&[B]), |s| s == "b"), ["b"]);
        // A key with no fingerprint is never named.
        let mut ssh = key(A, "s", KeyState::Active);
        ssh.fingerprint = None;
        assert!(secrets_to_hold(&[ssh], &owned(&[A]), none).is_empty());
    }

    #[test]
    fn holders_are_counted_per_key_and_junk_is_ignored() {
        let u = usage(
            [
                obj("a", 1, Some(1), &[A]),
                obj("b", 2, Some(2), &[A, B]),
                obj("c", 1, Some(1), &["not a fingerprint", "pq:ZZZZ"]),
            ],
            &SyncKeys::NoSync,
            true,
        );
        assert_eq!((u.count(A), u.count(B)), (2, 1));
        assert_eq!(u.holders.len(), 2);
        assert!(u.unsettled.is_none());
        assert!(!u.in_use("pq:cccccccccccccccc"));
    }

    #[test]
    fn the_answer_is_unsettled_until_everything_was_reconciled_and_the_sync_recorded() {
        let done = || obj("a", 1, Some(1), &[A]);
        assert!(usage([done()], &SyncKeys::NoSync, false)
            .unsettled
            .is_some());
        let u = usage([done(), obj("new", 1, None, &[])], &SyncKeys::NoSync, true);
        assert!(u.unsettled.as_deref().unwrap().contains("ns/new"), "{u:?}");
        // A spec change (rekey) not reconciled yet: its old status does not count as complete.
        let u = usage([obj("rekeyed", 3, Some(2), &[A])], &SyncKeys::NoSync, true);
        assert!(u.unsettled.is_some());
        assert!(u.in_use(A), "the old status still holds its key");
        let u = usage([done()], &SyncKeys::NotYetRecorded, true);
        assert!(u.unsettled.as_deref().unwrap().contains("sync"));
        let u = usage([done()], &SyncKeys::Recorded([B.to_string()].into()), true);
        assert!(u.unsettled.is_none());
        assert!(u.in_use(B) && u.count(B) == 0, "the sync's use counts");
    }

    #[test]
    fn finalizers_are_added_when_in_use_and_removed_only_when_settled() {
        let used = usage([obj("a", 1, Some(1), &[A])], &SyncKeys::NoSync, true);
        let a = [Some(A.to_string())];
        let b = [Some(B.to_string())];
        assert_eq!(
            finalizer_action(&a, false, false, &used),
            FinalizerAction::Add
        );
        assert_eq!(
            finalizer_action(&a, true, false, &used),
            FinalizerAction::Keep
        );
        // Being deleted with the finalizer: kept while in use.
        assert_eq!(
            finalizer_action(&a, true, true, &used),
            FinalizerAction::Keep
        );
        // Being deleted without it: the API server refuses a new finalizer; nothing to do.
        assert_eq!(
            finalizer_action(&a, false, true, &used),
            FinalizerAction::Keep
        );
        assert_eq!(
            finalizer_action(&b, true, true, &used),
            FinalizerAction::Remove
        );
        assert_eq!(
            finalizer_action(&b, false, false, &used),
            FinalizerAction::Keep
        );
        let unsettled = usage([obj("a", 2, Some(1), &[A])], &SyncKeys::NoSync, true);
        assert_eq!(
            finalizer_action(&b, true, true, &unsettled),
            FinalizerAction::Keep,
            "never released on an incomplete answer"
        );
        // A Secret with a key of unknown fingerprint, or none readable: left alone.
        assert_eq!(
            finalizer_action(&[None], true, true, &used),
            FinalizerAction::Keep
        );
        assert_eq!(
            finalizer_action(&[], true, true, &used),
            FinalizerAction::Keep
        );
        // One key of a Secret in use holds the whole Secret.
        let both = [Some(A.to_string()), Some(B.to_string())];
        assert_eq!(
            finalizer_action(&both, true, false, &used),
            FinalizerAction::Keep
        );
    }

    #[test]
    fn the_report_lists_holders_of_retiring_keys_only() {
        let u = usage(
            [obj("a", 1, Some(1), &[A]), obj("b", 1, Some(1), &[B])],
            &SyncKeys::Recorded([A.to_string()].into()),
            true,
        );
        let r = report(
            &[
                key(B, "new", KeyState::Active),
                key(A, "old", KeyState::Deleting),
            ],
            &u,
        );
        assert_eq!(r[0].still_needed_by, Vec::<String>::new());
        assert_eq!((r[0].sealed_secrets, r[0].sync), (1, false));
        assert_eq!(r[1].still_needed_by, ["ns/a"]);
        assert_eq!((r[1].state, r[1].sync), ("deleting", true));
        assert_eq!(
            retiring(&[
                key(B, "new", KeyState::Active),
                key(A, "old", KeyState::Retired)
            ]),
            [A.to_string()].into()
        );
    }
}
