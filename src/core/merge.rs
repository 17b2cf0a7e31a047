//! Three-way merge of one SealedSecret, key by key and field by field. No private key is
//! involved: ciphertexts are compared as bytes.
//!
//! A merged value must still be sealed for the merged recipient list, scope, type and place:
//! each value carries (inside its age file) the binding and stanzas of the side it came from,
//! so a value taken from a side whose recipients, scope, type, name or namespace differ from
//! the merged object's is a conflict. The merge never claims recipients a value was not
//! sealed for.

use std::collections::{BTreeMap, BTreeSet};

use super::sealed::{SealedSecret, Template};

/// One thing that could not be merged safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The `encryptedData` key at fault, when one is.
    pub key: Option<String>,
    pub reason: String,
    /// Both sides hold a different value under `key`: a conflict of that line alone.
    pub value_clash: bool,
    /// The value must be sealed again for the merged recipients (a rekey on one branch met a
    /// new value on the other): the front end says how.
    pub reseal: bool,
}

/// The merged object and what could not be merged. When `conflicts` is non-empty the merged
/// object holds ours' side of every conflicting field.
#[derive(Debug, Clone)]
pub struct Merged {
    pub sealed: SealedSecret,
    pub conflicts: Vec<Conflict>,
}

/// Three-way pick of one field: `None` when both sides changed it differently.
fn pick<T: PartialEq + Clone>(
    base: Option<&T>,
    ours: Option<&T>,
    theirs: Option<&T>,
) -> Result<Option<T>, ()> {
    if ours == theirs || theirs == base {
        Ok(ours.cloned())
    } else if ours == base {
        Ok(theirs.cloned())
    } else {
        Err(())
    }
}

fn merge_map(
    field: &str,
    base: &BTreeMap<String, String>,
    ours: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
    conflicts: &mut Vec<Conflict>,
) -> BTreeMap<String, String> {
    let keys: BTreeSet<&String> = base
        .keys()
        .chain(ours.keys())
        .chain(theirs.keys())
        .collect();
    let mut out = BTreeMap::new();
    for k in keys {
        match pick(base.get(k), ours.get(k), theirs.get(k)) {
            Ok(Some(v)) => {
                out.insert(k.clone(), v);
            }
            Ok(None) => {}
            Err(()) => {
                conflicts.push(Conflict {
                    key: None,
                    reason: format!("{field} {k:?} changed differently on both sides"),
                    value_clash: false,
                    reseal: false,
                });
                if let Some(v) = ours.get(k) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    out
}

fn field<T: PartialEq + Clone>(
    name: &str,
    base: &T,
    ours: &T,
    theirs: &T,
    conflicts: &mut Vec<Conflict>,
) -> T {
    match pick(Some(base), Some(ours), Some(theirs)) {
        Ok(v) => v.expect("all present"),
        Err(()) => {
            conflicts.push(Conflict {
                key: None,
                reason: format!("{name} changed differently on both sides"),
                value_clash: false,
                reseal: false,
            });
            ours.clone()
        }
    }
}

/// Merges `ours` and `theirs` against their common ancestor `base`.
pub fn merge(base: &SealedSecret, ours: &SealedSecret, theirs: &SealedSecret) -> Merged {
    let mut conflicts = Vec::new();
    let (mut merged, recipients_set) = merge_metadata(base, ours, theirs, &mut conflicts);
    merged.encrypted_data = merge_values(base, ours, theirs, &mut conflicts);
    check_values_sealed_for(&merged, &recipients_set, base, ours, theirs, &mut conflicts);
    Merged {
        sealed: merged,
        conflicts,
    }
}

/// The recipients of one side, as a set: their order is not what the sides agree on.
fn recipient_set(s: &SealedSecret) -> BTreeSet<String> {
    s.recipients.iter().cloned().collect()
}

/// Step 1: every field but `encryptedData` (left empty), merged field by field, and the merged
/// recipient set.
fn merge_metadata(
    base: &SealedSecret,
    ours: &SealedSecret,
    theirs: &SealedSecret,
    conflicts: &mut Vec<Conflict>,
) -> (SealedSecret, BTreeSet<String>) {
    let set = recipient_set;
    let recipients_set = field(
        "spec.recipients",
        &set(base),
        &set(ours),
        &set(theirs),
        conflicts,
    );
    // Keep the order of the side whose set won.
    let recipients = [ours, theirs, base]
        .into_iter()
        .find(|s| set(s) == recipients_set)
        .map(|s| s.recipients.clone())
        .unwrap_or_default();
    let scope = field(
        "spec.scope",
        &base.scope,
        &ours.scope,
        &theirs.scope,
        conflicts,
    );
    let name = field(
        "metadata.name",
        &base.name,
        &ours.name,
        &theirs.name,
        conflicts,
    );
    let namespace = field(
        "metadata.namespace",
        &base.namespace,
        &ours.namespace,
        &theirs.namespace,
        conflicts,
    );
    let template = merge_template(&base.template, &ours.template, &theirs.template, conflicts);
    let labels = merge_map(
        "label",
        &base.labels,
        &ours.labels,
        &theirs.labels,
        conflicts,
    );
    let annotations = merge_map(
        "annotation",
        &base.annotations,
        &ours.annotations,
        &theirs.annotations,
        conflicts,
    );
    let merged = SealedSecret {
        name,
        namespace,
        labels,
        annotations,
        scope,
        recipients,
        encrypted_data: BTreeMap::new(),
        template,
    };
    (merged, recipients_set)
}

/// `spec.template`, merged field by field.
fn merge_template(
    base: &Template,
    ours: &Template,
    theirs: &Template,
    conflicts: &mut Vec<Conflict>,
) -> Template {
    Template {
        secret_type: field(
            "spec.template.type",
            &base.secret_type,
            &ours.secret_type,
            &theirs.secret_type,
            conflicts,
        ),
        immutable: field(
            "spec.template.immutable",
            &base.immutable,
            &ours.immutable,
            &theirs.immutable,
            conflicts,
        ),
        labels: merge_map(
            "template label",
            &base.labels,
            &ours.labels,
            &theirs.labels,
            conflicts,
        ),
        annotations: merge_map(
            "template annotation",
            &base.annotations,
            &ours.annotations,
            &theirs.annotations,
            conflicts,
        ),
    }
}

/// Step 2: `encryptedData`, key by key, ciphertexts compared as bytes. A key changed on both
/// sides keeps ours' value (if any) and is a conflict.
fn merge_values(
    base: &SealedSecret,
    ours: &SealedSecret,
    theirs: &SealedSecret,
    conflicts: &mut Vec<Conflict>,
) -> BTreeMap<String, Vec<u8>> {
    let mut merged = BTreeMap::new();
    let keys: BTreeSet<&String> = base
        .encrypted_data
        .keys()
        .chain(ours.encrypted_data.keys())
        .chain(theirs.encrypted_data.keys())
        .collect();
    for k in keys {
        let (b, o, t) = (
            base.encrypted_data.get(k),
            ours.encrypted_data.get(k),
            theirs.encrypted_data.get(k),
        );
        match pick(b, o, t) {
            Ok(Some(v)) => {
                merged.insert(k.clone(), v);
            }
            Ok(None) => {}
            Err(()) => {
                conflicts.push(Conflict {
                    key: Some(k.clone()),
                    reason: match (o, t) {
                        (Some(_), Some(_)) => "changed differently on both sides".into(),
                        (None, _) => "removed on our side, changed on theirs".into(),
                        (_, None) => "changed on our side, removed on theirs".into(),
                    },
                    value_clash: o.is_some() && t.is_some(),
                    reseal: false,
                });
                if let Some(v) = o {
                    merged.insert(k.clone(), v.clone());
                }
            }
        }
    }
    merged
}

/// Step 3: each value that can end up in the result must have been sealed by a side that agrees with the merged object on everything the
/// ciphertext carries: recipients, scope, type, name and namespace. Checked even when other
/// keys conflict: resolving those must not leave behind a value the listed recipients cannot
/// open. For a key whose values clash, either side's value may be the one kept, so both are
/// checked. Each value that fails is a conflict to reseal.
fn check_values_sealed_for(
    merged: &SealedSecret,
    recipients_set: &BTreeSet<String>,
    base: &SealedSecret,
    ours: &SealedSecret,
    theirs: &SealedSecret,
    conflicts: &mut Vec<Conflict>,
) {
    let agrees = |s: &SealedSecret| {
        recipient_set(s) == *recipients_set
            && s.scope == merged.scope
            && s.template.secret_type == merged.template.secret_type
            && s.name == merged.name
            && s.namespace == merged.namespace
    };
    let clashing: BTreeSet<String> = conflicts
        .iter()
        .filter(|c| c.value_clash)
        .filter_map(|c| c.key.clone())
        .collect();
    let candidates = merged.encrypted_data.iter().chain(
        clashing
            .iter()
            .filter_map(|k| theirs.encrypted_data.get_key_value(k)),
    );
    let mut disagreeing = BTreeSet::new();
    for (k, v) in candidates {
        let sealed_by_an_agreeing_side = [base, ours, theirs]
            .into_iter()
            .filter(|s| s.encrypted_data.get(k) == Some(v))
            .any(agrees);
        if !sealed_by_an_agreeing_side {
            disagreeing.insert(k.clone());
        }
    }
    for k in disagreeing {
        conflicts.push(Conflict {
            key: Some(k),
            reason: "this value was sealed for a different recipient list, scope or binding than the merged SealedSecret (a rekey on one branch, a new value on the other); take one side, then rekey and set the value again".into(),
            value_clash: false,
            reseal: true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::binding::Scope;

    /// A SealedSecret with fake ciphertexts: the merge compares bytes, never opens them.
    fn sealed(recipients: &[&str], data: &[(&str, &str)]) -> SealedSecret {
        SealedSecret {
            name: "db".into(),
            namespace: Some("prod".into()),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            scope: Scope::Strict,
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            encrypted_data: data
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            template: Template {
                secret_type: "Opaque".into(),
                ..Template::default()
            },
        }
    }

    fn data(s: &SealedSecret) -> Vec<(&str, &str)> {
        s.encrypted_data
            .iter()
            .map(|(k, v)| (k.as_str(), std::str::from_utf8(v).unwrap()))
            .collect()
    }

    #[test]
    fn different_keys_changed_on_each_side_merge_cleanly() {
        let base = sealed(&["r1"], &[("a", "A"), ("b", "B"), ("c", "C")]);
        let ours = sealed(&["r1"], &[("a", "A2"), ("b", "B"), ("c", "C")]);
        let theirs = sealed(&["r1"], &[("a", "A"), ("b", "B2"), ("c", "C"), ("d", "D")]);
        let m = merge(&base, &ours, &theirs);
        assert_eq!(m.conflicts, []);
        assert_eq!(
            data(&m.sealed),
            [("a", "A2"), ("b", "B2"), ("c", "C"), ("d", "D")]
        );
    }

    #[test]
    fn the_same_key_changed_differently_is_a_value_clash_keeping_ours() {
        let base = sealed(&["r1"], &[("a", "A")]);
        let ours = sealed(&["r1"], &[("a", "ours")]);
        let theirs = sealed(&["r1"], &[("a", "theirs")]);
        let m = merge(&base, &ours, &theirs);
        assert_eq!(
            m.conflicts,
            [Conflict {
                key: Some("a".into()),
                reason: "changed differently on both sides".into(),
                value_clash: true,
                reseal: false,
            }]
        );
        assert_eq!(data(&m.sealed), [("a", "ours")]);
    }

    #[test]
    fn a_key_removed_on_one_side_and_changed_on_the_other_conflicts() {
        let base = sealed(&["r1"], &[("a", "A"), ("b", "B")]);
        let ours = sealed(&["r1"], &[("b", "B")]);
        let theirs = sealed(&["r1"], &[("a", "A2"), ("b", "B")]);
        let m = merge(&base, &ours, &theirs);
        assert_eq!(m.conflicts.len(), 1);
        assert_eq!(m.conflicts[0].key.as_deref(), Some("a"));
        assert_eq!(
            m.conflicts[0].reason,
            "removed on our side, changed on theirs"
        );
        assert!(!m.conflicts[0].value_clash);
        let m = merge(&base, &theirs, &ours);
        assert_eq!(
            m.conflicts[0].reason,
            "changed on our side, removed on theirs"
        );
        // Removed on one side, untouched on the other: removed.
        let m = merge(&base, &ours, &base);
        assert_eq!(m.conflicts, []);
        assert_eq!(data(&m.sealed), [("b", "B")]);
    }

    #[test]
    fn a_value_sealed_for_the_old_recipients_next_to_a_rekey_is_refused() {
        let base = sealed(&["r1"], &[("a", "A")]);
        // Ours rekeyed every value for r1 and r2; theirs added a value for r1 only.
        let ours = sealed(&["r1", "r2"], &[("a", "A-rekeyed")]);
        let theirs = sealed(&["r1"], &[("a", "A"), ("new", "N")]);
        let m = merge(&base, &ours, &theirs);
        assert_eq!(m.sealed.recipients, ["r1", "r2"]);
        assert_eq!(m.conflicts.len(), 1, "{:?}", m.conflicts);
        assert_eq!(m.conflicts[0].key.as_deref(), Some("new"));
        assert!(m.conflicts[0].reason.contains("different recipient list"));
        assert!(!m.conflicts[0].value_clash);
    }

    #[test]
    fn the_recipient_order_of_the_winning_side_is_kept() {
        let base = sealed(&["r1", "r2"], &[("a", "A")]);
        let ours = sealed(&["r2", "r1"], &[("a", "A")]);
        let m = merge(&base, &ours, &base);
        assert_eq!(m.conflicts, []);
        assert_eq!(m.sealed.recipients, ["r2", "r1"]);
    }

    #[test]
    fn fields_and_labels_changed_differently_conflict_and_keep_ours() {
        let base = sealed(&["r1"], &[("a", "A")]);
        let mut ours = base.clone();
        let mut theirs = base.clone();
        ours.labels.insert("team".into(), "x".into());
        theirs.labels.insert("team".into(), "y".into());
        ours.template.immutable = Some(true);
        theirs.template.immutable = Some(false);
        let m = merge(&base, &ours, &theirs);
        let reasons: Vec<&str> = m.conflicts.iter().map(|c| c.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "spec.template.immutable changed differently on both sides",
                "label \"team\" changed differently on both sides",
            ]
        );
        assert!(m
            .conflicts
            .iter()
            .all(|c| c.key.is_none() && !c.value_clash));
        assert_eq!(m.sealed.labels["team"], "x");
        assert_eq!(m.sealed.template.immutable, Some(true));
        // One side's label change alone is taken.
        let m = merge(&base, &base, &theirs);
        assert_eq!(m.sealed.labels["team"], "y");
    }
}
