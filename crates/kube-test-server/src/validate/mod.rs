//! Object validation as kube-apiserver does it, with its exact messages and `Status` bodies.
//!
//! Pure functions over `serde_json::Value`; the HTTP layer calls them in this order:
//!
//! 1. [`check_namespace`]: a body namespace differing from the path's is 400 (ssa-secret.json).
//! 2. [`check_decode`]: what the real server finds while *decoding* into the typed object —
//!    MicroTime values without exactly 6 fraction digits (Event `eventTime`, Lease times): 400 on
//!    create/update, 422 `patch: Invalid value` under patches, 500 under apply (events-v1.json,
//!    strategic-merge-and-json-patch.json, lease-ssa.json); for custom resources under apply, a
//!    value of the wrong type is the 500 "failed to create typed patch object" (status-ssa.json).
//! 3. [`unknown_fields`] then [`strict_rejection`] (with `fieldValidation=Strict`) or
//!    [`unknown_field_warnings`] (the `Warning` header values) (owner-references-and-validation.json).
//! 4. [`prune`] for custom resources (fields the structural schema does not declare).
//! 5. [`validate`] (main resource) or [`validate_status`] (`/status` writes) on the object about to be
//!    stored, with the stored object as `old` for updates and patches: 422 `Invalid` `Status`.
//!
//! One file per concern: `errors` (`field.Error` and `Status` bodies), `meta` (ObjectMeta),
//! `secret`, `config_map`, `event` and `lease` (the kinds with rules of their own), `decode`
//! (step 2), `schema` (OpenAPI v3 validation of custom resources), `unknown` (steps 3 and 4)
//! and `gofmt` (values as Go prints them).

mod config_map;
mod decode;
mod errors;
mod event;
mod gofmt;
mod lease;
mod meta;
mod schema;
mod secret;
#[cfg(test)]
mod testutil;
mod unknown;

use serde_json::Value;

use crate::registry::ResourceType;

pub use decode::check_decode;
pub use errors::uid_changed;
pub use unknown::{prune, strict_rejection, unknown_field_warnings, unknown_fields, UnknownFields};

use config_map::validate_config_map;
use errors::{bad_request, finish};
use event::validate_event;
use lease::validate_lease;
use meta::validate_object_meta;
use schema::validate_schema;
use secret::validate_secret;

/// A refusal: the HTTP status and the full `Status` body.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub status: u16,
    pub body: Value,
}

/// The kind of write being validated (the verb and, for PATCH, the patch type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    MergePatch,
    JsonPatch,
    StrategicPatch,
    Apply,
}

impl Op {
    fn is_update(self) -> bool {
        !matches!(self, Op::Create)
    }
}

/// The 400 a body whose `metadata.namespace` differs from the request path's gets.
pub fn check_namespace(path_namespace: &str, obj: &Value) -> Result<(), Rejection> {
    match obj["metadata"]["namespace"].as_str() {
        Some(ns) if !ns.is_empty() && ns != path_namespace => Err(bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

/// Validate an object written to the main resource. `old` is the stored object for updates and
/// patches (`None` on create); `op` picks create or update rules.
pub fn validate(
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
    op: Op,
) -> Result<(), Rejection> {
    let old = if op.is_update() { old } else { None };
    let mut errs = Vec::new();
    let core_event = rt.group.is_empty() && rt.kind == "Event";
    if !core_event {
        validate_object_meta(rt, obj, &mut errs);
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Secret") => validate_secret(obj, old, &mut errs),
        ("", "ConfigMap") => validate_config_map(obj, old, &mut errs),
        ("events.k8s.io", "Event") | ("", "Event") => validate_event(rt, obj, old, &mut errs),
        ("coordination.k8s.io", "Lease") => validate_lease(obj, &mut errs),
        _ => {}
    }
    if !rt.builtin {
        if let Some(schema) = &rt.openapi_schema {
            let mut body = obj.clone();
            if let Some(m) = body.as_object_mut() {
                m.remove("metadata");
                m.remove("apiVersion");
                m.remove("kind");
            }
            let mut schema = schema.clone();
            if let Some(p) = schema.get_mut("properties").and_then(Value::as_object_mut) {
                p.remove("metadata");
                p.remove("apiVersion");
                p.remove("kind");
            }
            validate_schema(&schema, &body, "", &mut errs);
        }
    }
    finish(rt, obj, errs)
}

/// Validate a write to `/status`: for custom resources the status is checked against the schema's
/// `status` property with paths relative to it (`conditions[0].status`, no `status.` prefix, as
/// status-ssa.json records).
pub fn validate_status(
    rt: &ResourceType,
    obj: &Value,
    old: Option<&Value>,
    op: Op,
) -> Result<(), Rejection> {
    let _ = (old, op);
    let mut errs = Vec::new();
    if !rt.builtin {
        if let Some(schema) = rt
            .openapi_schema
            .as_ref()
            .map(|s| &s["properties"]["status"])
        {
            if schema.is_object() {
                if let Some(st) = obj.get("status") {
                    validate_schema(schema, st, "", &mut errs);
                }
            }
        }
    }
    finish(rt, obj, errs)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// ssa-secret.json step 18: body namespace differing from the path is 400.
    #[test]
    fn namespace_mismatch_as_recorded() {
        let obj = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "other"}});
        assert_eq!(
            check_namespace("transcripts2", &obj).unwrap_err(),
            Rejection {
                status: 400,
                body: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": "the namespace of the provided object does not match the namespace sent on the request",
                  "reason": "BadRequest", "code": 400})
            }
        );
        assert!(check_namespace("transcripts2", &json!({"metadata": {"name": "db"}})).is_ok());
        assert!(check_namespace(
            "transcripts2",
            &json!({"metadata": {"namespace": "transcripts2"}})
        )
        .is_ok());
    }
}
