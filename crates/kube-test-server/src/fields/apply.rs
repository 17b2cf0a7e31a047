//! Server-side apply: the applier's field set, the merge, conflicts and the new managedFields.

use serde_json::{Map, Value};

use super::compare::compare;
use super::conflict::aliased_conflict_paths;
use super::merge::{merge_values, remove_path};
use super::{
    sort_entries, Conflict, FieldSet, ListType, ManagedFieldsEntry, Operation, Path, PathElement,
    Schema,
};

/// The input of [`apply`].
#[derive(Clone, Copy, Debug)]
pub struct ApplyRequest<'a> {
    /// The current object, or `None` when the apply creates it.
    pub live: Option<&'a Value>,
    /// The current managedFields.
    pub managed: &'a [ManagedFieldsEntry],
    /// The applied configuration as sent (YAML already parsed into JSON).
    pub config: &'a Value,
    /// The field manager.
    pub manager: &'a str,
    /// `force=true`.
    pub force: bool,
    /// `Some("status")` for an apply to `/status`.
    pub subresource: Option<&'a str>,
    /// The apiVersion of the request (recorded in the entry).
    pub api_version: &'a str,
    /// The current time, RFC 3339 with seconds (`2026-11-23T11:31:32Z`).
    pub now: &'a str,
    /// The object's schema.
    pub schema: &'a Schema,
}

/// The result of a successful [`apply`].
#[derive(Clone, Debug, PartialEq)]
pub struct ApplyOutcome {
    /// The new object, without `metadata.managedFields` (the caller sets resourceVersion etc.).
    pub object: Value,
    /// The new managedFields, in the server's order.
    pub managed: Vec<ManagedFieldsEntry>,
    /// False when the object itself did not change (an identical re-apply: the server answers
    /// 200 without a write unless the managedFields changed).
    pub changed: bool,
}

/// Metadata the field manager never records as owned (the server's strip set).
const STRIPPED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
];

/// Server-set metadata an applied configuration cannot change.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

pub(super) fn strip_set() -> FieldSet {
    let mut s = FieldSet::new();
    s.insert(&[PathElement::Field("apiVersion".into())]);
    s.insert(&[PathElement::Field("kind".into())]);
    s.insert(&[PathElement::Field("metadata".into())]);
    for f in STRIPPED_METADATA {
        s.insert(&[
            PathElement::Field("metadata".into()),
            PathElement::Field((*f).into()),
        ]);
    }
    s
}

/// Server-side apply: merges `config` into `live`, updates ownership, or reports conflicts.
pub fn apply(req: &ApplyRequest) -> Result<ApplyOutcome, Vec<Conflict>> {
    let schema = req.schema;
    let subresource = req.subresource.map(str::to_string);
    let live_obj = req
        .live
        .map(without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let config = effective_config(req.config, schema, req.subresource);

    // The applier's new set.
    let mut new_set = FieldSet::new();
    apply_field_set(&config, &mut Vec::new(), "", schema, &mut new_set);
    let new_set = new_set.difference(&strip_set());

    let me = ManagedFieldsEntry {
        manager: req.manager.to_string(),
        operation: Operation::Apply,
        api_version: req.api_version.to_string(),
        time: None,
        subresource: subresource.clone(),
        fields: FieldSet::new(),
    };
    let previous = req.managed.iter().find(|e| e.same_identity(&me));
    let others: Vec<&ManagedFieldsEntry> = req
        .managed
        .iter()
        .filter(|e| !e.same_identity(&me))
        .collect();

    // Merge, then remove what the applier owned before, no longer applies and nobody else owns.
    let mut merged = merge_values(Some(&live_obj), &config, "", schema);
    if let Some(prev) = previous {
        let mut owned = new_set.clone();
        for o in &others {
            owned = owned.union(&o.fields);
        }
        let mut stale: Vec<Path> = prev
            .fields
            .paths()
            .into_iter()
            .filter(|p| !owned.contains(p) && !owned.has_descendant(p))
            .collect();
        stale.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in stale {
            remove_path(&mut merged, &p);
        }
    }

    let cmp = compare(&live_obj, &merged, schema);
    let changed_set = cmp.modified.union(&cmp.added);

    let mut conflicts = Vec::new();
    let mut others_sorted = others.clone();
    others_sorted.sort_by_key(|e| e.identifier());
    for o in &others_sorted {
        let clash = o.fields.intersection(&changed_set);
        if clash.is_empty() {
            continue;
        }
        for field in aliased_conflict_paths(&clash) {
            conflicts.push(Conflict {
                manager: o.manager.clone(),
                operation: o.operation,
                api_version: o.api_version.clone(),
                field,
                subresource: o.subresource.clone(),
            });
        }
    }
    if !req.force && !conflicts.is_empty() {
        return Err(conflicts);
    }

    let changed = merged != live_obj;
    let mut managed: Vec<ManagedFieldsEntry> = Vec::new();
    for e in req.managed {
        if e.same_identity(&me) {
            continue;
        }
        let mut e = e.clone();
        e.fields = e.fields.difference(&changed_set).difference(&cmp.removed);
        if !e.fields.is_empty() {
            managed.push(e);
        }
    }
    if !new_set.is_empty() {
        let time = if changed {
            Some(req.now.to_string())
        } else {
            previous.and_then(|p| p.time.clone())
        };
        managed.push(ManagedFieldsEntry {
            time,
            fields: new_set,
            ..me
        });
    }
    sort_entries(&mut managed);
    Ok(ApplyOutcome {
        object: merged,
        managed,
        changed,
    })
}

/// The applied configuration the field manager works with: server-set metadata removed, and
/// with a status subresource only `status` (through `/status`) or everything but `status`.
fn effective_config(config: &Value, schema: &Schema, subresource: Option<&str>) -> Value {
    let mut config = config.clone();
    if let Some(Value::Object(meta)) = config.get_mut("metadata") {
        for f in SERVER_METADATA {
            meta.shift_remove(*f);
        }
    }
    if let Value::Object(obj) = &mut config {
        if subresource == Some("status") {
            let keep: Vec<String> = obj
                .keys()
                .filter(|k| matches!(k.as_str(), "apiVersion" | "kind" | "status"))
                .cloned()
                .collect();
            let identity = obj.get("metadata").map(|m| {
                let mut out = Map::new();
                for k in ["name", "namespace"] {
                    if let Some(v) = m.get(k) {
                        out.insert(k.to_string(), v.clone());
                    }
                }
                Value::Object(out)
            });
            obj.retain(|k, _| keep.contains(k));
            if let Some(meta) = identity {
                obj.insert("metadata".to_string(), meta);
            }
        } else if schema.status_subresource {
            obj.shift_remove("status");
        }
    }
    config
}

pub(super) fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::Object(meta)) = v.get_mut("metadata") {
        meta.shift_remove("managedFields");
    }
    v
}

/// The fields an applied configuration sets (structured-merge-diff's `ToFieldSet`).
fn apply_field_set(v: &Value, path: &mut Path, spath: &str, schema: &Schema, out: &mut FieldSet) {
    match v {
        Value::Object(m) => {
            if !path.is_empty() && schema.is_atomic_map(spath) {
                out.insert(path);
                return;
            }
            let undeclared = schema.keys_undeclared(spath);
            for (k, child) in m {
                path.push(PathElement::Field(k.clone()));
                let child_spath = format!("{spath}.{k}");
                apply_field_set(child, path, &child_spath, schema, out);
                let empty_map = matches!(child, Value::Object(c) if c.is_empty());
                if child.is_null() || empty_map || undeclared {
                    out.insert(path);
                }
                path.pop();
            }
        }
        Value::Array(items) => match schema.list_type(spath) {
            ListType::Atomic => out.insert(path),
            lt => {
                let item_spath = format!("{spath}[]");
                for (i, item) in items.iter().enumerate() {
                    path.push(item_element(&lt, item, i));
                    apply_field_set(item, path, &item_spath, schema, out);
                    out.insert(path);
                    path.pop();
                }
            }
        },
        _ => out.insert(path),
    }
}

pub(super) fn item_element(lt: &ListType, item: &Value, index: usize) -> PathElement {
    match lt {
        ListType::Map(keys) => {
            let mut fields: Vec<(String, Value)> = Vec::new();
            for k in keys {
                match item.get(k) {
                    Some(v) => fields.push((k.clone(), v.clone())),
                    None => return PathElement::Index(index),
                }
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            PathElement::Key(fields)
        }
        ListType::Set => PathElement::Value(item.clone()),
        ListType::Atomic => PathElement::Index(index),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testutil::{cr_req, fields_of, req, sealed_secret_schema, LATER, NOW};
    use super::super::{conflict_status, managed_fields_to_json, update};
    use super::*;

    /// server-side-apply.json, every step.
    #[test]
    fn configmap_apply_conflict_force_and_removal() {
        let schema = Schema::for_builtin();
        let cfg1 = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c1", "labels": {"owner": "one"}}, "data": {"a": "1", "b": "2"}});
        let out = apply(&req(None, &[], &cfg1, "gitops-seal", false, &schema)).unwrap();
        assert_eq!(out.object["data"], json!({"a": "1", "b": "2"}));
        assert_eq!(
            managed_fields_to_json(&out.managed, false),
            json!([{"manager": "gitops-seal", "operation": "Apply", "apiVersion": "v1",
                "time": NOW, "fieldsType": "FieldsV1", "fieldsV1": {
                "f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:owner": {}}}}}])
        );
        let live = out.object;
        let managed = out.managed;

        let cfg2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"},
            "data": {"a": "changed"}});
        let conflicts = apply(&req(
            Some(&live),
            &managed,
            &cfg2,
            "someone-else",
            false,
            &schema,
        ))
        .unwrap_err();
        assert_eq!(
            conflict_status(&conflicts),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Apply failed with 1 conflict: conflict with \"gitops-seal\": .data.a",
                "reason": "Conflict", "details": {"causes": [{"reason": "FieldManagerConflict",
                "message": "conflict with \"gitops-seal\"", "field": ".data.a"}]}, "code": 409})
        );
        assert_eq!(
            serde_json::to_string(&conflict_status(&conflicts)).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Apply failed with 1 conflict: conflict with \"gitops-seal\": .data.a","reason":"Conflict","details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal\"","field":".data.a"}]},"code":409}"#
        );

        let out = apply(&req(
            Some(&live),
            &managed,
            &cfg2,
            "someone-else",
            true,
            &schema,
        ))
        .unwrap();
        assert_eq!(out.object["data"], json!({"a": "changed", "b": "2"}));
        assert_eq!(out.object["metadata"]["labels"], json!({"owner": "one"}));
        assert_eq!(
            out.managed
                .iter()
                .map(|e| e.manager.as_str())
                .collect::<Vec<_>>(),
            ["gitops-seal", "someone-else"]
        );
        assert_eq!(
            fields_of(&out.managed, "gitops-seal"),
            json!({"f:data": {"f:b": {}}, "f:metadata": {"f:labels": {"f:owner": {}}}})
        );
        assert_eq!(
            fields_of(&out.managed, "someone-else"),
            json!({"f:data": {"f:a": {}}})
        );

        // gitops-seal takes `a` back: someone-else is left with nothing and disappears.
        let out = apply(&req(
            Some(&out.object),
            &out.managed,
            &cfg1,
            "gitops-seal",
            true,
            &schema,
        ))
        .unwrap();
        assert_eq!(out.object["data"], json!({"a": "1", "b": "2"}));
        assert_eq!(out.managed.len(), 1);

        // Re-applying without `b` removes it from the object and from the entry.
        let cfg3 = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c1", "labels": {"owner": "one"}}, "data": {"a": "1"}});
        let out = apply(&req(
            Some(&out.object),
            &out.managed,
            &cfg3,
            "gitops-seal",
            true,
            &schema,
        ))
        .unwrap();
        assert_eq!(out.object["data"], json!({"a": "1"}));
        assert_eq!(
            fields_of(&out.managed, "gitops-seal"),
            json!({"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:owner": {}}}})
        );
    }

    /// ssa-secret.json steps 0-4.
    #[test]
    fn secret_apply_owner_reference_and_shared_ownership() {
        let schema = Schema::for_builtin();
        let owner = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret", "name": "db",
            "uid": "f0776645-4798-40c2-af4b-4e1f2b01151d", "controller": true, "blockOwnerDeletion": true});
        let cfg = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db",
            "namespace": "transcripts2", "labels": {"app.kubernetes.io/managed-by": "gitops-seal", "tier": "db"},
            "annotations": {"gitops-seal.dev/source": "prod/db"}, "ownerReferences": [owner]},
            "type": "Opaque", "data": {"password": "czNjcjN0", "username": "YWRtaW4="}});
        let out = apply(&req(None, &[], &cfg, "gitops-seal", true, &schema)).unwrap();
        let recorded = r#"{"f:data":{"f:password":{},"f:username":{}},"f:metadata":{"f:annotations":{"f:gitops-seal.dev/source":{}},"f:labels":{"f:app.kubernetes.io/managed-by":{},"f:tier":{}},"f:ownerReferences":{"k:{\"uid\":\"f0776645-4798-40c2-af4b-4e1f2b01151d\"}":{}}},"f:type":{}}"#;
        assert_eq!(
            serde_json::to_string(&fields_of(&out.managed, "gitops-seal")).unwrap(),
            recorded
        );

        // Dropping `username` removes it.
        let mut cfg1 = cfg.clone();
        cfg1["data"] = json!({"password": "czNjcjN0"});
        let out = apply(&req(
            Some(&out.object),
            &out.managed,
            &cfg1,
            "gitops-seal",
            true,
            &schema,
        ))
        .unwrap();
        assert_eq!(out.object["data"], json!({"password": "czNjcjN0"}));
        assert_eq!(out.object["metadata"]["ownerReferences"], json!([owner]));
        let (live, managed) = (out.object, out.managed);

        // Another manager with a different value: conflict.
        let other = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "data": {"password": "b3RoZXI="}});
        let c = apply(&req(
            Some(&live),
            &managed,
            &other,
            "kubectl-edit",
            false,
            &schema,
        ))
        .unwrap_err();
        assert_eq!(
            conflict_status(&c)["message"],
            "Apply failed with 1 conflict: conflict with \"gitops-seal\": .data.password"
        );

        // The same value: shared, no write, the new entry has no time and sorts first.
        let same = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "data": {"password": "czNjcjN0"}});
        let mut r = req(Some(&live), &managed, &same, "kubectl-edit", false, &schema);
        r.now = LATER;
        let out = apply(&r).unwrap();
        assert!(!out.changed);
        assert_eq!(out.object, live);
        assert_eq!(
            serde_json::to_string(&managed_fields_to_json(&out.managed, false)).unwrap(),
            format!(
                r#"[{{"manager":"kubectl-edit","operation":"Apply","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{{"f:data":{{"f:password":{{}}}}}}}},{{"manager":"gitops-seal","operation":"Apply","apiVersion":"v1","time":"{NOW}","fieldsType":"FieldsV1","fieldsV1":{}}}]"#,
                recorded.replace(r#","f:username":{}"#, "")
            )
        );
    }

    /// lease-ssa.json steps 0-4: causes in path order, shared equal values.
    #[test]
    fn lease_takeover_by_apply() {
        let schema = Schema::for_builtin_kind("Lease");
        let lease = |holder: &str, t: &str, transitions: i64| {
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": "gitops-seal-leader", "namespace": "transcripts2"},
                "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "acquireTime": t,
                    "renewTime": t, "leaseTransitions": transitions}})
        };
        let a = lease("pod-a", "2026-11-30T16:08:55.273910Z", 0);
        let mut r = req(None, &[], &a, "gitops-seal-pod-a", false, &schema);
        r.api_version = "coordination.k8s.io/v1";
        let out = apply(&r).unwrap();
        let b = lease("pod-b", "2026-11-30T16:09:25.292179Z", 1);
        let mut r = req(
            Some(&out.object),
            &out.managed,
            &b,
            "gitops-seal-pod-b",
            false,
            &schema,
        );
        r.api_version = "coordination.k8s.io/v1";
        let conflicts = apply(&r).unwrap_err();
        assert_eq!(
            serde_json::to_string(&conflict_status(&conflicts)).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Apply failed with 4 conflicts: conflicts with \"gitops-seal-pod-a\":\n- .spec.acquireTime\n- .spec.holderIdentity\n- .spec.leaseTransitions\n- .spec.renewTime","reason":"Conflict","details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal-pod-a\"","field":".spec.acquireTime"},{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal-pod-a\"","field":".spec.holderIdentity"},{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal-pod-a\"","field":".spec.leaseTransitions"},{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal-pod-a\"","field":".spec.renewTime"}]},"code":409}"#
        );
        r.force = true;
        let out = apply(&r).unwrap();
        assert_eq!(out.object["spec"], b["spec"]);
        assert_eq!(
            fields_of(&out.managed, "gitops-seal-pod-a"),
            json!({"f:spec": {"f:leaseDurationSeconds": {}}})
        );
        assert_eq!(
            fields_of(&out.managed, "gitops-seal-pod-b"),
            json!({"f:spec": {"f:acquireTime": {}, "f:holderIdentity": {}, "f:leaseDurationSeconds": {},
                "f:leaseTransitions": {}, "f:renewTime": {}}})
        );
    }

    /// status-ssa.json steps 2-11.
    #[test]
    fn status_subresource_apply_conditions_and_aliased_conflict_paths() {
        let schema = sealed_secret_schema();
        let spec = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "transcripts2"},
            "spec": {"scope": "strict", "recipients": ["age1qqqq"], "encryptedData": {"password": "c2VhbGVk"},
                "template": {"type": "Opaque", "metadata": {"labels": {"tier": "db"}}}}});
        let out = apply(&cr_req(
            None,
            &[],
            &spec,
            "gitops-seal-sync",
            true,
            false,
            &schema,
        ))
        .unwrap();
        assert_eq!(
            fields_of(&out.managed, "gitops-seal-sync"),
            json!({"f:spec": {"f:encryptedData": {"f:password": {}}, "f:recipients": {}, "f:scope": {},
                "f:template": {"f:metadata": {".": {}, "f:labels": {".": {}, "f:tier": {}}}, "f:type": {}}}})
        );

        let ready = |gen: i64, status: &str, reason: &str| {
            json!({"type": "Ready", "status": status, "reason": reason, "message": "Secret db unsealed",
                "observedGeneration": gen, "lastTransitionTime": "2026-11-23T00:00:00Z"})
        };
        // A spec in a status apply is dropped.
        let st = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "transcripts2"},
            "status": {"observedGeneration": 1, "conditions": [ready(1, "True", "Unsealed")]},
            "spec": {"scope": "cluster"}});
        let out = apply(&cr_req(
            Some(&out.object),
            &out.managed,
            &st,
            "gitops-seal",
            true,
            true,
            &schema,
        ))
        .unwrap();
        assert_eq!(out.object["spec"]["scope"], "strict");
        assert_eq!(
            serde_json::to_string(&managed_fields_to_json(&out.managed, true)[0]).unwrap(),
            format!(
                r#"{{"apiVersion":"gitops-seal.dev/v1","fieldsType":"FieldsV1","fieldsV1":{{"f:status":{{"f:conditions":{{"k:{{\"type\":\"Ready\"}}":{{".":{{}},"f:lastTransitionTime":{{}},"f:message":{{}},"f:observedGeneration":{{}},"f:reason":{{}},"f:status":{{}},"f:type":{{}}}}}},"f:observedGeneration":{{}}}}}},"manager":"gitops-seal","operation":"Apply","subresource":"status","time":"{NOW}"}}"#
            )
        );

        // A status in a main-resource apply is dropped too.
        let mut spec_with_status = spec.clone();
        spec_with_status["status"] = json!({"observedGeneration": 9});
        let again = apply(&cr_req(
            Some(&out.object),
            &out.managed,
            &spec_with_status,
            "gitops-seal-sync",
            true,
            false,
            &schema,
        ))
        .unwrap();
        assert!(!again.changed);
        assert_eq!(again.object["status"]["observedGeneration"], 1);

        // A second manager owns a second condition.
        let synced = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "transcripts2"},
            "status": {"conditions": [{"type": "Synced", "status": "True", "reason": "Applied",
                "message": "", "lastTransitionTime": "2026-11-23T00:00:00Z"}]}});
        let out = apply(&cr_req(
            Some(&out.object),
            &out.managed,
            &synced,
            "other-ctl",
            false,
            true,
            &schema,
        ))
        .unwrap();
        let types: Vec<&Value> = out.object["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["type"])
            .collect();
        assert_eq!(types, [&json!("Ready"), &json!("Synced")]);

        // gitops-seal stops applying observedGeneration: removed from the object.
        let st2 = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "transcripts2"},
            "status": {"conditions": [ready(1, "True", "Unsealed")]}});
        let out = apply(&cr_req(
            Some(&out.object),
            &out.managed,
            &st2,
            "gitops-seal",
            true,
            true,
            &schema,
        ))
        .unwrap();
        assert!(out.object["status"].get("observedGeneration").is_none());
        assert_eq!(
            out.object["status"]["conditions"].as_array().unwrap().len(),
            2
        );

        // other-ctl contests status and reason of Ready: both causes read `.status` (step 11).
        let contest = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret",
            "metadata": {"name": "db", "namespace": "transcripts2"},
            "status": {"conditions": [ready(1, "False", "DecryptFailed")]}});
        let c = apply(&cr_req(
            Some(&out.object),
            &out.managed,
            &contest,
            "other-ctl",
            false,
            true,
            &schema,
        ))
        .unwrap_err();
        assert_eq!(
            serde_json::to_string(&conflict_status(&c)).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Apply failed with 2 conflicts: conflicts with \"gitops-seal\" with subresource \"status\":\n- .status.conditions[type=\"Ready\"].status\n- .status.conditions[type=\"Ready\"].status","reason":"Conflict","details":{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal\" with subresource \"status\"","field":".status.conditions[type=\"Ready\"].status"},{"reason":"FieldManagerConflict","message":"conflict with \"gitops-seal\" with subresource \"status\"","field":".status.conditions[type=\"Ready\"].status"}]},"code":409}"#
        );
    }

    #[test]
    fn apply_over_update_owner_conflicts_and_force_takes_over() {
        let schema = Schema::for_builtin();
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"k": "1", "j": "2"}});
        let managed = update(
            None,
            &obj,
            vec![],
            "Python-urllib",
            None,
            "v1",
            NOW,
            &schema,
        );
        let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"k": "9"}});
        let c = apply(&req(Some(&obj), &managed, &cfg, "ctl", false, &schema)).unwrap_err();
        assert_eq!(c[0].field, ".data.k");
        assert_eq!(c[0].operation, Operation::Update);
        let out = apply(&req(Some(&obj), &managed, &cfg, "ctl", true, &schema)).unwrap();
        assert_eq!(out.object["data"], json!({"k": "9", "j": "2"}));
        assert_eq!(
            fields_of(&out.managed, "Python-urllib"),
            json!({"f:data": {".": {}, "f:j": {}}})
        );
        assert_eq!(
            out.managed[0].manager, "ctl",
            "Apply entries sort before Update entries"
        );
    }

    #[test]
    fn bare_apply_owns_nothing() {
        let schema = Schema::for_builtin_kind("Namespace");
        let cfg = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bare-ns"}});
        let out = apply(&req(None, &[], &cfg, "gitops-seal", true, &schema)).unwrap();
        assert!(out.managed.is_empty());
    }
}
