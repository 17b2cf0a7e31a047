//! Ownership after writes other than apply (create, update, patches).

use serde_json::{Map, Value};

use super::apply::{strip_set, without_managed_fields};
use super::compare::compare;
use super::{sort_entries, FieldSet, ManagedFieldsEntry, Operation, Schema};

/// Ownership after a create, update or patch by `manager`.
///
/// `old` is the stored object (`None` for a create), `new` the object as it will be stored
/// (after defaulting and the caller's own changes; `managedFields` in either is ignored).
/// The manager's Update entry gains what the write added or changed, every entry loses what
/// the write removed, other entries lose what it changed; empty entries disappear; the
/// manager's time moves only when it gained fields.
#[allow(clippy::too_many_arguments)]
pub fn update(
    old: Option<&Value>,
    new: &Value,
    managed: Vec<ManagedFieldsEntry>,
    manager: &str,
    subresource: Option<&str>,
    api_version: &str,
    now: &str,
    schema: &Schema,
) -> Vec<ManagedFieldsEntry> {
    let old_obj = match old {
        Some(o) => without_managed_fields(o),
        None => empty_object(schema),
    };
    let new_obj = without_managed_fields(new);
    let cmp = compare(&old_obj, &new_obj, schema);
    let changed = cmp.modified.union(&cmp.added);
    let gained = changed.difference(&strip_set());

    let me = ManagedFieldsEntry {
        manager: manager.to_string(),
        operation: Operation::Update,
        api_version: api_version.to_string(),
        time: Some(now.to_string()),
        subresource: subresource.map(str::to_string),
        fields: FieldSet::new(),
    };
    let mut out: Vec<ManagedFieldsEntry> = Vec::new();
    let mut mine: Option<ManagedFieldsEntry> = None;
    for mut e in managed {
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
        if e.same_identity(&me) {
            match &mut mine {
                Some(m) => m.fields = m.fields.union(&e.fields),
                None => mine = Some(e),
            }
        } else if !e.fields.is_empty() {
            out.push(e);
        }
    }
    if !gained.is_empty() {
        let fields = match &mine {
            Some(m) => m.fields.union(&gained),
            None => gained,
        };
        mine = Some(ManagedFieldsEntry { fields, ..me });
    }
    if let Some(m) = mine.filter(|m| !m.fields.is_empty()) {
        out.push(m);
    }
    sort_entries(&mut out);
    out
}

fn empty_object(schema: &Schema) -> Value {
    let mut m = Map::new();
    m.insert("metadata".to_string(), Value::Object(Map::new()));
    for p in &schema.present_when_empty {
        if let Some(name) = p.strip_prefix('.') {
            if !name.contains('.') {
                m.insert(name.to_string(), Value::Object(Map::new()));
            }
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testutil::{fields_of, req, LATER, NOW};
    use super::super::{apply, managed_fields_to_json, ApplyRequest, PathElement};
    use super::*;

    /// create-get-conflict.json step 2 and patch-update-optimistic.json steps 1 and 3.
    #[test]
    fn update_marks_created_maps_and_follows_label_changes() {
        let schema = Schema::for_builtin_kind("Secret");
        let created = json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s1",
            "namespace": "transcripts", "labels": {"app": "a"}},
            "data": {"k": "d2lucw==", "t": "dGV4dA=="}, "type": "Opaque"});
        let managed = update(
            None,
            &created,
            vec![],
            "Python-urllib",
            None,
            "v1",
            NOW,
            &schema,
        );
        assert_eq!(
            serde_json::to_string(&managed_fields_to_json(&managed, false)).unwrap(),
            format!(
                r#"[{{"manager":"Python-urllib","operation":"Update","apiVersion":"v1","time":"{NOW}","fieldsType":"FieldsV1","fieldsV1":{{"f:data":{{".":{{}},"f:k":{{}},"f:t":{{}}}},"f:metadata":{{"f:labels":{{".":{{}},"f:app":{{}}}}}},"f:type":{{}}}}}}]"#
            )
        );
        let mut labelled = created.clone();
        labelled["metadata"]["labels"]["extra"] = json!("x");
        labelled["metadata"]["resourceVersion"] = json!("199");
        let managed = update(
            Some(&created),
            &labelled,
            managed,
            "Python-urllib",
            None,
            "v1",
            LATER,
            &schema,
        );
        assert_eq!(managed.len(), 1);
        assert_eq!(
            fields_of(&managed, "Python-urllib"),
            json!({"f:data": {".": {}, "f:k": {}, "f:t": {}},
                "f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:extra": {}}}, "f:type": {}})
        );
        assert_eq!(managed[0].time.as_deref(), Some(LATER));
        let managed = update(
            Some(&labelled),
            &created,
            managed,
            "Python-urllib",
            None,
            "v1",
            LATER,
            &schema,
        );
        assert_eq!(
            fields_of(&managed, "Python-urllib"),
            json!({"f:data": {".": {}, "f:k": {}, "f:t": {}},
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:type": {}})
        );
    }

    #[test]
    fn update_without_change_keeps_time() {
        let schema = Schema::for_builtin();
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let managed = update(None, &obj, vec![], "m", None, "v1", NOW, &schema);
        let mut bumped = obj.clone();
        bumped["metadata"]["resourceVersion"] = json!("7");
        let managed = update(
            Some(&obj),
            &bumped,
            managed,
            "m",
            None,
            "v1",
            LATER,
            &schema,
        );
        assert_eq!(managed[0].time.as_deref(), Some(NOW));
    }

    /// strategic-merge-and-json-patch.json steps 1-3 (Lease renew and takeover by Update).
    #[test]
    fn update_takes_changed_fields_from_other_managers() {
        let schema = Schema::for_builtin_kind("Lease");
        let v1 = json!({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
            "metadata": {"name": "gitops-seal", "namespace": "transcripts5"},
            "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15,
                "acquireTime": "2026-11-30T16:35:33.810946Z", "renewTime": "2026-11-30T16:35:33.811011Z",
                "leaseTransitions": 0}});
        let av = "coordination.k8s.io/v1";
        let managed = update(None, &v1, vec![], "Python-urllib", None, av, NOW, &schema);
        assert_eq!(
            fields_of(&managed, "Python-urllib"),
            json!({"f:spec": {"f:acquireTime": {}, "f:holderIdentity": {}, "f:leaseDurationSeconds": {},
                "f:leaseTransitions": {}, "f:renewTime": {}}}),
            "spec exists in an empty Lease: no \".\""
        );
        let mut v2 = v1.clone();
        v2["spec"]["renewTime"] = json!("2026-11-30T16:35:34.819706Z");
        let managed = update(Some(&v1), &v2, managed, "pod-a", None, av, NOW, &schema);
        assert_eq!(
            managed
                .iter()
                .map(|e| e.manager.as_str())
                .collect::<Vec<_>>(),
            ["Python-urllib", "pod-a"]
        );
        assert_eq!(
            fields_of(&managed, "pod-a"),
            json!({"f:spec": {"f:renewTime": {}}})
        );
        assert_eq!(
            fields_of(&managed, "Python-urllib"),
            json!({"f:spec": {"f:acquireTime": {}, "f:holderIdentity": {}, "f:leaseDurationSeconds": {},
                "f:leaseTransitions": {}}})
        );
        let mut v3 = v2.clone();
        v3["spec"]["holderIdentity"] = json!("pod-b");
        v3["spec"]["renewTime"] = json!("2026-11-30T16:35:35.829818Z");
        let managed = update(
            Some(&v2),
            &v3,
            managed,
            "Python-urllib",
            None,
            av,
            NOW,
            &schema,
        );
        assert_eq!(managed.len(), 1, "pod-a lost its only field");
        assert!(managed[0].fields.contains(&[
            PathElement::Field("spec".into()),
            PathElement::Field("renewTime".into())
        ]));
    }

    /// crd-status-subresource.json steps 3-6.
    #[test]
    fn custom_resource_updates_and_status_apply() {
        let schema = Schema::with_lists(vec![]).with_status_subresource(true);
        let av = "example.dev/v1";
        let created = json!({"apiVersion": av, "kind": "Widget", "metadata": {"name": "w",
            "namespace": "transcripts"}, "spec": {"size": 1}});
        let managed = update(
            None,
            &created,
            vec![],
            "Python-urllib",
            None,
            av,
            NOW,
            &schema,
        );
        assert_eq!(
            serde_json::to_string(&managed_fields_to_json(&managed, true)).unwrap(),
            format!(
                r#"[{{"apiVersion":"example.dev/v1","fieldsType":"FieldsV1","fieldsV1":{{"f:spec":{{".":{{}},"f:size":{{}}}}}},"manager":"Python-urllib","operation":"Update","time":"{NOW}"}}]"#
            )
        );
        let mut with_status = created.clone();
        with_status["status"] = json!({"observedGeneration": 1, "conditions": [{"type": "Ready"}]});
        let managed = update(
            Some(&created),
            &with_status,
            managed,
            "Python-urllib",
            Some("status"),
            av,
            NOW,
            &schema,
        );
        assert_eq!(managed.len(), 2, "the status writer is another entry");
        assert_eq!(
            managed[1].fields.to_fields_v1(),
            json!({"f:status": {".": {}, "f:conditions": {}, "f:observedGeneration": {}}})
        );
        let cfg = json!({"apiVersion": av, "kind": "Widget", "metadata": {"name": "w"},
            "status": {"observedGeneration": 2}});
        let out = apply(&ApplyRequest {
            subresource: Some("status"),
            api_version: av,
            ..req(Some(&with_status), &managed, &cfg, "ctl", true, &schema)
        })
        .unwrap();
        assert_eq!(
            managed_fields_to_json(&out.managed, true)
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["fieldsV1"].clone())
                .collect::<Vec<_>>(),
            [
                json!({"f:status": {"f:observedGeneration": {}}}),
                json!({"f:spec": {".": {}, "f:size": {}}}),
                json!({"f:status": {".": {}, "f:conditions": {}}}),
            ]
        );
    }
}
