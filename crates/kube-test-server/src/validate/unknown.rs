//! Unknown fields (`fieldValidation`) and pruning of custom resources.

use serde_json::{Map, Value};

use super::errors::bad_request;
use super::schema::join;
use super::Rejection;
use crate::registry::ResourceType;
use crate::selectors::go_quote;

/// Every `ObjectMeta` field (in struct order).
const OBJECT_META_FIELDS: &[&str] = crate::object::META_ORDER;

/// The unknown field paths of one object, with the kind and version the 400 message names.
/// Dereferences to the paths (`unknown.is_empty()`, `unknown[0]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnknownFields {
    pub kind: String,
    pub version: String,
    pub paths: Vec<String>,
}

impl std::ops::Deref for UnknownFields {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.paths
    }
}

/// Field paths of `obj` its kind does not declare: for built-in kinds the top-level, `metadata`
/// and (for Leases) `spec` fields; for custom resources what [`prune`] would drop.
pub fn unknown_fields(rt: &ResourceType, obj: &Value) -> UnknownFields {
    let mut out = UnknownFields {
        kind: rt.kind.clone(),
        version: rt.version.clone(),
        paths: Vec::new(),
    };
    let Some(m) = obj.as_object() else {
        return out;
    };
    if !rt.builtin {
        let mut copy = obj.clone();
        prune_collect(rt, &mut copy, &mut out.paths);
        return out;
    }
    let known = crate::registry::builtin_top_level_fields(&rt.group, &rt.kind);
    for k in m.keys() {
        if !["apiVersion", "kind", "metadata"].contains(&k.as_str()) && !known.contains(&k.as_str())
        {
            out.paths.push(k.clone());
        }
    }
    if let Some(meta) = m.get("metadata").and_then(Value::as_object) {
        for k in meta.keys() {
            if !OBJECT_META_FIELDS.contains(&k.as_str()) {
                out.paths.push(format!("metadata.{k}"));
            }
        }
    }
    if rt.group == "coordination.k8s.io" && rt.kind == "Lease" {
        if let Some(spec) = m.get("spec").and_then(Value::as_object) {
            for k in spec.keys() {
                if !LEASE_SPEC_FIELDS.contains(&k.as_str()) {
                    out.paths.push(format!("spec.{k}"));
                }
            }
        }
    }
    out
}

const LEASE_SPEC_FIELDS: &[&str] = &[
    "holderIdentity",
    "leaseDurationSeconds",
    "acquireTime",
    "renewTime",
    "leaseTransitions",
    "strategy",
    "preferredHolder",
];

/// The 400 `fieldValidation=Strict` answers when [`unknown_fields`] found any:
/// `<Kind> in version "<v>" cannot be handled as a <Kind>: strict decoding error: unknown field "…"[, …]`.
pub fn strict_rejection(unknown: &UnknownFields) -> Rejection {
    let list: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {}", go_quote(f)))
        .collect();
    bad_request(&format!(
        "{} in version {} cannot be handled as a {}: strict decoding error: {}",
        unknown.kind,
        go_quote(&unknown.version),
        unknown.kind,
        list.join(", ")
    ))
}

/// The `Warning` header values (one per field) the default `fieldValidation=Warn` answers with.
pub fn unknown_field_warnings(unknown: &[String]) -> Vec<String> {
    unknown
        .iter()
        .map(|f| {
            format!(
                "299 - {}",
                go_quote(&format!("unknown field {}", go_quote(f)))
            )
        })
        .collect()
}

/// Remove what a custom resource's structural schema does not declare (unless
/// `x-kubernetes-preserve-unknown-fields`), keep `apiVersion`/`kind`/`metadata` (metadata
/// reduced to ObjectMeta's fields), and drop `null`s of non-nullable fields without a default.
/// Built-in kinds are left alone.
pub fn prune(rt: &ResourceType, obj: &mut Value) {
    let mut sink = Vec::new();
    prune_collect(rt, obj, &mut sink);
}

fn prune_collect(rt: &ResourceType, obj: &mut Value, out: &mut Vec<String>) {
    if rt.builtin {
        return;
    }
    let Some(schema) = &rt.openapi_schema else {
        return;
    };
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
        let unknown: Vec<String> = meta
            .keys()
            .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown {
            meta.remove(&k);
            out.push(format!("metadata.{k}"));
        }
    }
    prune_object(schema, m, "", true, out);
}

fn prune_value(schema: &Value, v: &mut Value, path: &str, out: &mut Vec<String>) {
    let embedded = schema["x-kubernetes-embedded-resource"].as_bool() == Some(true);
    match v {
        Value::Object(m) => prune_object(schema, m, path, embedded, out),
        Value::Array(a) if schema["items"].is_object() => {
            for (i, item) in a.iter_mut().enumerate() {
                prune_value(&schema["items"], item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn prune_object(
    schema: &Value,
    m: &mut Map<String, Value>,
    path: &str,
    root_like: bool,
    out: &mut Vec<String>,
) {
    let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
    let props = schema["properties"].as_object();
    let additional = &schema["additionalProperties"];
    let keys: Vec<String> = m.keys().cloned().collect();
    for k in keys {
        if root_like && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        let child = join(path, &k);
        let sub = props
            .and_then(|p| p.get(&k))
            .or_else(|| additional.is_object().then_some(additional));
        match sub {
            Some(ps) => {
                let drop_null = m[&k].is_null()
                    && ps["nullable"].as_bool() != Some(true)
                    && ps.get("default").is_none();
                if drop_null {
                    m.remove(&k);
                } else if let Some(v) = m.get_mut(&k) {
                    prune_value(ps, v, &child, out);
                }
            }
            None if preserve || additional.as_bool() == Some(true) => {}
            None => {
                m.remove(&k);
                out.push(child);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testutil::{rt, sealed_secret_type};
    use super::*;

    /// owner-references-and-validation.json steps 3 and 4: Strict is 400, else a Warning header.
    #[test]
    fn unknown_fields_as_recorded() {
        let s = rt("", "Secret");
        let obj = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "strict"}, "bogus": 1});
        let unknown = unknown_fields(&s, &obj);
        assert_eq!(unknown.paths, ["bogus"]);
        let err = strict_rejection(&unknown);
        assert_eq!(
            err,
            Rejection {
                status: 400,
                body: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": "Secret in version \"v1\" cannot be handled as a Secret: strict decoding error: unknown field \"bogus\"",
                  "reason": "BadRequest", "code": 400})
            }
        );
        assert_eq!(
            unknown_field_warnings(&unknown),
            ["299 - \"unknown field \\\"bogus\\\"\""]
        );
        let good = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a", "labels": {}}, "data": {}, "stringData": {}, "type": "Opaque", "immutable": true});
        assert!(unknown_fields(&s, &good).is_empty());
        let lease = rt("coordination.k8s.io", "Lease");
        let l = json!({"metadata": {"name": "l", "extra": 1}, "spec": {"holderIdentity": "a", "holder": "b"}});
        assert_eq!(
            unknown_fields(&lease, &l).paths,
            ["metadata.extra", "spec.holder"]
        );
    }

    #[test]
    fn pruning_custom_resources() {
        let t = sealed_secret_type();
        let mut obj = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret",
          "metadata": {"name": "x", "bogusMeta": 1}, "spec": {"size": 1, "extra": 2, "free": {"any": {"thing": 1}},
          "tags": {"a": "b"}, "list": [{"x": 1, "y": 2}], "name": null}, "top": true});
        assert_eq!(
            unknown_fields(&t, &obj).paths,
            ["metadata.bogusMeta", "spec.extra", "spec.list[0].y", "top"]
        );
        prune(&t, &mut obj);
        assert_eq!(
            obj,
            json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret", "metadata": {"name": "x"},
              "spec": {"size": 1, "free": {"any": {"thing": 1}}, "tags": {"a": "b"}, "list": [{"x": 1}]}})
        );
        // built-in kinds are not pruned
        let mut s = json!({"metadata": {"name": "a"}, "bogus": 1});
        prune(&rt("", "Secret"), &mut s);
        assert_eq!(s["bogus"], 1);
    }
}
