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

use serde_json::{json, Map, Value};

use crate::registry::ResourceType;
use crate::selectors::{
    dns1123_subdomain_errors, go_quote, label_value_errors, qualified_name_errors,
};

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

// ---------------------------------------------------------------------------------------------
// field.Error

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrType {
    Required,
    Invalid,
    TypeInvalid,
    Forbidden,
    NotSupported,
    TooLong,
}

impl ErrType {
    fn text(self) -> &'static str {
        match self {
            ErrType::Required => "Required value",
            ErrType::Invalid | ErrType::TypeInvalid => "Invalid value",
            ErrType::Forbidden => "Forbidden",
            ErrType::NotSupported => "Unsupported value",
            ErrType::TooLong => "Too long",
        }
    }
    fn reason(self) -> &'static str {
        match self {
            ErrType::Required => "FieldValueRequired",
            ErrType::Invalid => "FieldValueInvalid",
            ErrType::TypeInvalid => "FieldValueTypeInvalid",
            ErrType::Forbidden => "FieldValueForbidden",
            ErrType::NotSupported => "FieldValueNotSupported",
            ErrType::TooLong => "FieldValueTooLong",
        }
    }
}

/// One `field.Error`; `value` is already rendered as Go prints the bad value.
#[derive(Clone, Debug)]
struct FieldError {
    ty: ErrType,
    field: String,
    value: String,
    detail: String,
}

impl FieldError {
    fn new(
        ty: ErrType,
        field: impl Into<String>,
        value: String,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            ty,
            field: field.into(),
            value,
            detail: detail.into(),
        }
    }
    fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrType::Required, field, String::new(), detail)
    }
    fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrType::Forbidden, field, String::new(), detail)
    }
    fn invalid_str(field: impl Into<String>, value: &str, detail: impl Into<String>) -> Self {
        Self::new(ErrType::Invalid, field, go_quote(value), detail)
    }
    /// `ErrorBody()`: the cause message.
    fn body(&self) -> String {
        let mut s = match self.ty {
            ErrType::Required | ErrType::Forbidden | ErrType::TooLong => self.ty.text().to_string(),
            _ => format!("{}: {}", self.ty.text(), self.value),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
    fn message(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }
}

fn status(code: u16, reason: Option<&str>, message: &str, details: Option<Value>) -> Value {
    let mut m = Map::new();
    m.insert("kind".into(), json!("Status"));
    m.insert("apiVersion".into(), json!("v1"));
    m.insert("metadata".into(), json!({}));
    m.insert("status".into(), json!("Failure"));
    m.insert("message".into(), json!(message));
    if let Some(r) = reason {
        m.insert("reason".into(), json!(r));
    }
    if let Some(d) = details {
        m.insert("details".into(), d);
    }
    m.insert("code".into(), json!(code));
    Value::Object(m)
}

/// An update whose `metadata.uid` is not the stored object's: kube-apiserver checks it twice
/// (`validateCommonFields`, then the kind's own update validation), so the 422 lists the cause
/// twice under one message. An apply carrying the uid it read is refused this way when the
/// object was deleted and made again in between.
pub fn uid_changed(rt: &ResourceType, name: &str, uid: &str) -> Rejection {
    let e = FieldError::invalid_str("metadata.uid", uid, "field is immutable");
    invalid(&rt.group, &rt.kind, name, &[e.clone(), e])
}

/// `errors.NewInvalid`: 422 with one cause per error; the message aggregates them (deduplicated,
/// bracketed when more than one).
fn invalid(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> Rejection {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let mut msgs: Vec<String> = Vec::new();
    for e in errs {
        let m = e.message();
        if !msgs.contains(&m) {
            msgs.push(m);
        }
    }
    let message = match msgs.len() {
        0 => format!("{qualified} {} is invalid", go_quote(name)),
        1 => format!("{qualified} {} is invalid: {}", go_quote(name), msgs[0]),
        _ => format!(
            "{qualified} {} is invalid: [{}]",
            go_quote(name),
            msgs.join(", ")
        ),
    };
    let causes: Vec<Value> = errs
        .iter()
        .map(|e| json!({"reason": e.ty.reason(), "message": e.body(), "field": e.field}))
        .collect();
    let mut details = Map::new();
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    if !kind.is_empty() {
        details.insert("kind".into(), json!(kind));
    }
    details.insert("causes".into(), Value::Array(causes));
    Rejection {
        status: 422,
        body: status(422, Some("Invalid"), &message, Some(Value::Object(details))),
    }
}

fn bad_request(message: &str) -> Rejection {
    Rejection {
        status: 400,
        body: status(400, Some("BadRequest"), message, None),
    }
}

fn internal(message: &str) -> Rejection {
    Rejection {
        status: 500,
        body: status(500, None, message, None),
    }
}

fn finish(rt: &ResourceType, obj: &Value, errs: Vec<FieldError>) -> Result<(), Rejection> {
    if errs.is_empty() {
        Ok(())
    } else {
        // events.k8s.io Events are validated as the internal core Event: no group (events-v1.json)
        let group = if rt.group == "events.k8s.io" {
            ""
        } else {
            rt.group.as_str()
        };
        Err(invalid(group, &rt.kind, name_of(obj), &errs))
    }
}

fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Entry points

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

// ---------------------------------------------------------------------------------------------
// ObjectMeta

fn dns1123_label_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if !ok {
        errs.push("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".to_string());
    }
    errs
}

fn dns1035_label_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if !ok {
        errs.push("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string());
    }
    errs
}

fn path_segment_errors(s: &str) -> Vec<String> {
    if s == "." || s == ".." {
        return vec![format!("may not be '{s}'")];
    }
    let mut errs = Vec::new();
    for bad in ["/", "%"] {
        if s.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// The name rule of a kind; `prefix` is a `generateName` (a trailing `-` is allowed).
fn name_errors(rt: &ResourceType, name: &str, prefix: bool) -> Vec<String> {
    let masked;
    let name = if prefix && name.ends_with('-') {
        masked = format!("{}a", &name[..name.len() - 1]);
        masked.as_str()
    } else {
        name
    };
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => dns1123_label_errors(name),
        ("", "Service") => dns1035_label_errors(name),
        ("rbac.authorization.k8s.io", _) => path_segment_errors(name),
        _ => dns1123_subdomain_errors(name),
    }
}

fn validate_object_meta(rt: &ResourceType, obj: &Value, errs: &mut Vec<FieldError>) {
    let meta = &obj["metadata"];
    let generate = str_at(meta, "generateName");
    if !generate.is_empty() {
        for m in name_errors(rt, generate, true) {
            errs.push(FieldError::invalid_str(
                "metadata.generateName",
                generate,
                m,
            ));
        }
    }
    let name = str_at(meta, "name");
    if name.is_empty() {
        if generate.is_empty() {
            errs.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        for m in name_errors(rt, name, false) {
            errs.push(FieldError::invalid_str("metadata.name", name, m));
        }
    }
    if let Some(labels) = meta["labels"].as_object() {
        for (k, v) in labels {
            for m in qualified_name_errors(k) {
                errs.push(FieldError::invalid_str("metadata.labels", k, m));
            }
            for m in label_value_errors(v.as_str().unwrap_or_default()) {
                errs.push(FieldError::invalid_str(
                    "metadata.labels",
                    v.as_str().unwrap_or_default(),
                    m,
                ));
            }
        }
    }
    if let Some(ann) = meta["annotations"].as_object() {
        for k in ann.keys() {
            for m in qualified_name_errors(&k.to_lowercase()) {
                errs.push(FieldError::invalid_str("metadata.annotations", k, m));
            }
        }
    }
    if let Some(refs) = meta["ownerReferences"].as_array() {
        validate_owner_references(refs, errs);
    }
}

/// Go's `%#v` of a `[]v1.OwnerReference` (pointer fields print as addresses; these are made up).
fn go_owner_references(refs: &[Value]) -> String {
    let ptr = |v: &Value, addr: u64| match v.as_bool() {
        Some(_) => format!("(*bool)(0x{addr:x})"),
        None => "(*bool)(nil)".to_string(),
    };
    let items: Vec<String> = refs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let base = 0x00c0_005a_4e00_u64 + (i as u64) * 0x1a;
            format!(
                "v1.OwnerReference{{APIVersion:{}, Kind:{}, Name:{}, UID:{}, Controller:{}, BlockOwnerDeletion:{}}}",
                go_quote(str_at(r, "apiVersion")),
                go_quote(str_at(r, "kind")),
                go_quote(str_at(r, "name")),
                go_quote(str_at(r, "uid")),
                ptr(&r["controller"], base),
                ptr(&r["blockOwnerDeletion"], base + 1),
            )
        })
        .collect();
    format!("[]v1.OwnerReference{{{}}}", items.join(", "))
}

fn validate_owner_references(refs: &[Value], errs: &mut Vec<FieldError>) {
    let path = "metadata.ownerReferences";
    let mut first_controller: Option<String> = None;
    for r in refs {
        let api_version = str_at(r, "apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or_default();
        if version.is_empty() {
            errs.push(FieldError::invalid_str(
                format!("{path}.apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        for (key, what) in [("kind", "kind"), ("name", "name"), ("uid", "uid")] {
            if str_at(r, key).is_empty() {
                errs.push(FieldError::invalid_str(
                    format!("{path}.{key}"),
                    "",
                    format!("{what} must not be empty"),
                ));
            }
        }
        if r["controller"].as_bool() == Some(true) {
            let current = format!("{}/{}", str_at(r, "kind"), str_at(r, "name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::new(
                    ErrType::Invalid,
                    path,
                    go_owner_references(refs),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"),
                )),
                None => first_controller = Some(current),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets and ConfigMaps

const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

/// `validation.IsConfigMapKey`.
fn config_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if key.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        errs.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string());
    }
    if key == "." {
        errs.push("must not be '.'".to_string());
    } else if key == ".." {
        errs.push("must not be '..'".to_string());
    } else if key.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

fn sorted_keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

fn validate_secret(obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    if let Some(old) = old {
        let (new_type, old_type) = (str_at(obj, "type"), str_at(old, "type"));
        if !old_type.is_empty() && new_type != old_type {
            errs.push(FieldError::invalid_str(
                "type",
                new_type,
                "field is immutable",
            ));
        }
        if old["immutable"].as_bool() == Some(true) {
            if obj["immutable"].as_bool() != Some(true) {
                errs.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
            }
            if obj.get("data") != old.get("data") {
                errs.push(FieldError::forbidden("data", IMMUTABLE_SET));
            }
        }
    }
    // stringData is merged into data before validation: both name data keys
    let mut keys = sorted_keys(&obj["data"]);
    for k in sorted_keys(&obj["stringData"]) {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.sort();
    for k in &keys {
        for m in config_key_errors(k) {
            errs.push(FieldError::invalid_str(format!("data[{k}]"), k, m));
        }
    }
    let has = |k: &str| keys.iter().any(|x| x == k);
    let required = |k: &str| FieldError::required(format!("data[{k}]"), "");
    match str_at(obj, "type") {
        "kubernetes.io/service-account-token"
            if str_at(
                &obj["metadata"]["annotations"],
                "kubernetes.io/service-account.name",
            )
            .is_empty() =>
        {
            errs.push(FieldError::required(
                "metadata.annotations[kubernetes.io/service-account.name]",
                "",
            ));
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let key = if t == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            if !has(key) {
                errs.push(required(key));
            } else {
                // stringData wins over data; the value must unmarshal into a JSON object, and
                // Go's error (which can quote a byte of the value) becomes the detail, with the
                // value itself redacted.
                let bytes = match obj["stringData"][key].as_str() {
                    Some(s) => Some(s.as_bytes().to_vec()),
                    None => obj["data"][key]
                        .as_str()
                        .and_then(crate::object::base64_decode),
                };
                if let Some(e) = bytes.and_then(|b| crate::gojson::unmarshal_object_error(&b)) {
                    errs.push(FieldError::new(
                        ErrType::Invalid,
                        format!("data[{key}]"),
                        "\"<secret contents redacted>\"".into(),
                        e,
                    ));
                }
            }
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(required("username"));
            errs.push(required("password"));
        }
        "kubernetes.io/ssh-auth"
            if obj["data"]["ssh-privatekey"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
                && obj["stringData"]["ssh-privatekey"]
                    .as_str()
                    .unwrap_or_default()
                    .is_empty() =>
        {
            errs.push(required("ssh-privatekey"))
        }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                errs.push(required("tls.crt"));
            }
            if !has("tls.key") {
                errs.push(required("tls.key"));
            }
        }
        _ => {}
    }
}

fn validate_config_map(obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    if let Some(old) = old {
        if old["immutable"].as_bool() == Some(true) {
            if obj["immutable"].as_bool() != Some(true) {
                errs.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
            }
            if obj.get("data") != old.get("data") {
                errs.push(FieldError::forbidden("data", IMMUTABLE_SET));
            }
            if obj.get("binaryData") != old.get("binaryData") {
                errs.push(FieldError::forbidden("binaryData", IMMUTABLE_SET));
            }
        }
    }
    let data = sorted_keys(&obj["data"]);
    for k in &data {
        for m in config_key_errors(k) {
            errs.push(FieldError::invalid_str(format!("data[{k}]"), k, m));
        }
    }
    for k in sorted_keys(&obj["binaryData"]) {
        for m in config_key_errors(&k) {
            errs.push(FieldError::invalid_str(format!("binaryData[{k}]"), &k, m));
        }
        if data.contains(&k) {
            errs.push(FieldError::invalid_str(
                format!("binaryData[{k}]"),
                &k,
                "duplicate of key present in data",
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events

/// An Event seen through the internal (core) field names, whichever API it was written through.
struct CoreEvent<'a> {
    namespace: &'a str,
    involved: &'a Value,
    reason: &'a Value,
    message: &'a Value,
    source: &'a Value,
    first: &'a Value,
    last: &'a Value,
    count: &'a Value,
    event_type: &'a Value,
    event_time: &'a Value,
    series: &'a Value,
    action: &'a Value,
    reporting_controller: &'a Value,
    reporting_instance: &'a Value,
}

impl<'a> CoreEvent<'a> {
    fn of(v1: bool, e: &'a Value) -> Self {
        let f = |core: &str, events: &str| if v1 { &e[core] } else { &e[events] };
        CoreEvent {
            namespace: e["metadata"]["namespace"].as_str().unwrap_or_default(),
            involved: f("involvedObject", "regarding"),
            reason: &e["reason"],
            message: f("message", "note"),
            source: f("source", "deprecatedSource"),
            first: f("firstTimestamp", "deprecatedFirstTimestamp"),
            last: f("lastTimestamp", "deprecatedLastTimestamp"),
            count: f("count", "deprecatedCount"),
            event_type: &e["type"],
            event_time: &e["eventTime"],
            series: &e["series"],
            action: &e["action"],
            reporting_controller: f("reportingComponent", "reportingController"),
            reporting_instance: &e["reportingInstance"],
        }
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn is_zero_time(v: &Value) -> bool {
    s(v).is_empty()
}

/// Go's `%#v` of a core.ObjectReference.
fn go_object_reference(v: &Value) -> String {
    format!(
        "core.ObjectReference{{Kind:{}, Namespace:{}, Name:{}, UID:{}, APIVersion:{}, ResourceVersion:{}, FieldPath:{}}}",
        go_quote(str_at(v, "kind")),
        go_quote(str_at(v, "namespace")),
        go_quote(str_at(v, "name")),
        go_quote(str_at(v, "uid")),
        go_quote(str_at(v, "apiVersion")),
        go_quote(str_at(v, "resourceVersion")),
        go_quote(str_at(v, "fieldPath")),
    )
}

/// Go's `String()` of a metav1.Time / MicroTime (`2006-01-02 15:04:05.999999999 -0700 MST`).
fn go_time_string(v: &Value) -> String {
    let t = s(v);
    if t.is_empty() {
        return "0001-01-01 00:00:00 +0000 UTC".into();
    }
    let t = t.trim_end_matches('Z');
    let (date, time) = t.split_once('T').unwrap_or((t, ""));
    let time = if time.contains('.') {
        time.trim_end_matches('0').trim_end_matches('.')
    } else {
        time
    };
    format!("{date} {time} +0000 UTC")
}

fn validate_event(rt: &ResourceType, obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let v1 = rt.group.is_empty();
    let e = CoreEvent::of(v1, obj);
    legacy_validate_event(v1, &e, errs);
    if v1 {
        return;
    }
    match old {
        None => {
            validate_v1_event_series(&e, errs);
            if is_zero_time(e.event_time) {
                errs.push(FieldError::required("eventTime", ""));
            }
            let ty = s(e.event_type);
            if ty != "Normal" && ty != "Warning" {
                errs.push(FieldError::invalid_str(
                    "type",
                    "",
                    format!("has invalid value: {ty}"),
                ));
            }
            if !is_zero_time(e.first) {
                errs.push(FieldError::invalid_str(
                    "firstTimestamp",
                    "",
                    "needs to be unset",
                ));
            }
            if !is_zero_time(e.last) {
                errs.push(FieldError::invalid_str(
                    "lastTimestamp",
                    "",
                    "needs to be unset",
                ));
            }
            if e.count.as_i64().unwrap_or(0) != 0 {
                errs.push(FieldError::invalid_str("count", "", "needs to be unset"));
            }
            if !str_at(e.source, "component").is_empty() || !str_at(e.source, "host").is_empty() {
                errs.push(FieldError::invalid_str("source", "", "needs to be unset"));
            }
        }
        Some(old) => {
            let o = CoreEvent::of(v1, old);
            let norm = |v: &Value| if v.is_null() { Value::Null } else { v.clone() };
            if norm(e.series) != norm(o.series) {
                validate_v1_event_series(&e, errs);
            }
            let immutable = |errs: &mut Vec<FieldError>,
                             path: &str,
                             new: &Value,
                             old: &Value,
                             shown: String| {
                let empty = |v: &Value| v.is_null() || v.as_object().is_some_and(Map::is_empty);
                if !(new == old || empty(new) && empty(old)) {
                    errs.push(FieldError::new(
                        ErrType::Invalid,
                        path,
                        shown,
                        "field is immutable",
                    ));
                }
            };
            let q = |v: &Value| go_quote(s(v));
            immutable(
                errs,
                "involvedObject",
                e.involved,
                o.involved,
                go_object_reference(e.involved),
            );
            immutable(errs, "reason", e.reason, o.reason, q(e.reason));
            immutable(errs, "message", e.message, o.message, q(e.message));
            immutable(
                errs,
                "source",
                e.source,
                o.source,
                format!(
                    "core.EventSource{{Component:{}, Host:{}}}",
                    go_quote(str_at(e.source, "component")),
                    go_quote(str_at(e.source, "host"))
                ),
            );
            immutable(
                errs,
                "firstTimestamp",
                e.first,
                o.first,
                go_time_string(e.first),
            );
            immutable(
                errs,
                "lastTimestamp",
                e.last,
                o.last,
                go_time_string(e.last),
            );
            let count = |v: &Value| json!(v.as_i64().unwrap_or(0));
            immutable(
                errs,
                "count",
                &count(e.count),
                &count(o.count),
                e.count.as_i64().unwrap_or(0).to_string(),
            );
            immutable(errs, "reason", e.reason, o.reason, q(e.reason));
            immutable(errs, "type", e.event_type, o.event_type, q(e.event_type));
            if s(e.event_time) != s(o.event_time) {
                errs.push(FieldError::new(
                    ErrType::Invalid,
                    "eventTime",
                    go_time_string(e.event_time),
                    "field is immutable",
                ));
            }
        }
    }
}

fn validate_v1_event_series(e: &CoreEvent, errs: &mut Vec<FieldError>) {
    if e.series.is_object() {
        if e.series["count"].as_i64().unwrap_or(0) < 2 {
            errs.push(FieldError::invalid_str(
                "series.count",
                "",
                "should be at least 2",
            ));
        }
        if is_zero_time(&e.series["lastObservedTime"]) {
            errs.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
}

fn legacy_validate_event(v1: bool, e: &CoreEvent, errs: &mut Vec<FieldError>) {
    let involved_ns = str_at(e.involved, "namespace");
    let mismatch = |errs: &mut Vec<FieldError>| {
        errs.push(FieldError::invalid_str(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        ))
    };
    if is_zero_time(e.event_time) {
        if involved_ns.is_empty() {
            if !e.namespace.is_empty() && e.namespace != "default" {
                mismatch(errs);
            }
        } else if e.namespace != involved_ns {
            mismatch(errs);
        }
    } else {
        if involved_ns.is_empty() && e.namespace != "default" && e.namespace != "kube-system" {
            mismatch(errs);
        }
        let rc_field = if v1 { "source" } else { "reportingController" };
        let rc = s(e.reporting_controller);
        if rc.is_empty() {
            errs.push(FieldError::required(rc_field, ""));
        }
        for m in qualified_name_errors(rc) {
            errs.push(FieldError::invalid_str(rc_field, rc, m));
        }
        let ri = s(e.reporting_instance);
        if ri.is_empty() {
            errs.push(FieldError::required("reportingInstance", ""));
        }
        if ri.len() > 128 {
            errs.push(FieldError::invalid_str(
                "reportingInstance",
                "",
                "can have at most 128 characters",
            ));
        }
        let action = s(e.action);
        if action.is_empty() {
            errs.push(FieldError::required("action", ""));
        }
        if action.len() > 128 {
            errs.push(FieldError::invalid_str(
                "action",
                "",
                "can have at most 128 characters",
            ));
        }
    }
    if s(e.reason).len() > 128 {
        errs.push(FieldError::invalid_str(
            "reason",
            "",
            "can have at most 128 characters",
        ));
    }
    if s(e.message).len() > 1024 {
        errs.push(FieldError::invalid_str(
            "message",
            "",
            "can have at most 1024 characters",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Leases

fn validate_lease(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = &obj["spec"];
    if let Some(d) = spec["leaseDurationSeconds"].as_i64() {
        if d <= 0 {
            errs.push(FieldError::new(
                ErrType::Invalid,
                "spec.leaseDurationSeconds",
                d.to_string(),
                "must be greater than 0",
            ));
        }
    }
    if let Some(t) = spec["leaseTransitions"].as_i64() {
        if t < 0 {
            errs.push(FieldError::new(
                ErrType::Invalid,
                "spec.leaseTransitions",
                t.to_string(),
                "must be greater than or equal to 0",
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding: MicroTime and typed apply

const MICRO_LAYOUT: &str = "2006-01-02T15:04:05.000000Z07:00";

/// Go's `time.Parse(RFC3339Micro, s)` error text, or `None` when `s` parses.
fn parse_micro_time(value: &str) -> Option<String> {
    let bad = |rest: &str, elem: &str| {
        Some(format!(
            "parsing time {} as {}: cannot parse {} as {}",
            go_quote(value),
            go_quote(MICRO_LAYOUT),
            go_quote(rest),
            go_quote(elem)
        ))
    };
    let range = |what: &str| {
        Some(format!(
            "parsing time {}: {what} out of range",
            go_quote(value)
        ))
    };
    let digits =
        |r: &str, n: usize| r.len() >= n && r.as_bytes()[..n].iter().all(u8::is_ascii_digit);
    let mut rest = value;
    let mut nums = [0u32; 6];
    // (element, width, literal after)
    let elems: [(&str, usize, &str); 6] = [
        ("2006", 4, "-"),
        ("01", 2, "-"),
        ("02", 2, "T"),
        ("15", 0, ":"),
        ("04", 2, ":"),
        ("05", 2, ""),
    ];
    for (i, (elem, width, lit)) in elems.iter().enumerate() {
        let n = if *width == 0 {
            // stdHour: one or two digits
            if !digits(rest, 1) {
                return bad(rest, elem);
            }
            if digits(rest, 2) {
                2
            } else {
                1
            }
        } else {
            if !digits(rest, *width) {
                return bad(rest, elem);
            }
            *width
        };
        nums[i] = rest[..n].parse().unwrap_or(0);
        rest = &rest[n..];
        let range_err = match i {
            1 if !(1..=12).contains(&nums[1]) => Some("month"),
            3 if nums[3] >= 24 => Some("hour"),
            4 if nums[4] >= 60 => Some("minute"),
            5 if nums[5] >= 60 => Some("second"),
            _ => None,
        };
        if let Some(what) = range_err {
            return range(what);
        }
        if !lit.is_empty() {
            match rest.strip_prefix(lit) {
                Some(r) => rest = r,
                None => return bad(rest, lit),
            }
        }
    }
    // .000000
    if rest.len() < 7
        || !(rest.starts_with('.') || rest.starts_with(','))
        || !rest.as_bytes()[1..7].iter().all(u8::is_ascii_digit)
    {
        return bad(rest, ".000000");
    }
    rest = &rest[7..];
    // Z07:00
    if let Some(r) = rest.strip_prefix('Z') {
        rest = r;
    } else {
        let b = rest.as_bytes();
        if b.len() < 6
            || b[3] != b':'
            || !(b[0] == b'+' || b[0] == b'-')
            || !digits(&rest[1..], 2)
            || !digits(&rest[4..], 2)
        {
            return bad(rest, "Z07:00");
        }
        rest = &rest[6..];
    }
    if !rest.is_empty() {
        return Some(format!(
            "parsing time {}: extra text: {}",
            go_quote(value),
            go_quote(rest)
        ));
    }
    let (year, month, day) = (nums[0], nums[1], nums[2]);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day < 1 || day > days {
        return range("day");
    }
    None
}

/// The MicroTime fields of a kind (dot paths).
fn micro_time_fields(rt: &ResourceType) -> &'static [&'static str] {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("events.k8s.io", "Event") | ("", "Event") => &["eventTime", "series.lastObservedTime"],
        ("coordination.k8s.io", "Lease") => &["spec.acquireTime", "spec.renewTime"],
        _ => &[],
    }
}

fn lookup<'a>(v: &'a Value, dotted: &str) -> &'a Value {
    dotted
        .split('.')
        .fold(v, |cur, seg| cur.get(seg).unwrap_or(&Value::Null))
}

fn gvk_string(rt: &ResourceType) -> String {
    format!("{}/{}, Kind={}", rt.group, rt.version, rt.kind)
}

fn object_gvknn(rt: &ResourceType, obj: &Value) -> String {
    format!(
        "{}/{}; {}",
        str_at(&obj["metadata"], "namespace"),
        name_of(obj),
        gvk_string(rt)
    )
}

/// The errors the real server meets while decoding the written object into its typed form.
///
/// `obj` is the object as written (create/update/apply body, or the patched object); `patch` is the
/// patch body for `StrategicPatch` (its Go `%+v` is the 422's bad value). Outcomes as recorded:
/// create/update 400 `<Kind> in version "<v>" cannot be handled as a <Kind>: <parse error>`;
/// strategic merge patch 422 ` "" is invalid: patch: Invalid value: "map[…]": <parse error>`;
/// merge and JSON patch the same 422 with the patched object's JSON as the value; apply 500
/// `failed to convert new object (<ns>/<name>; <gvk>) to proper version: unable to convert
/// unstructured object to <gvk>: <parse error>`. For custom resources under apply, a value whose
/// type the schema contradicts is the 500 `failed to create typed patch object (…): .path: expected …`.
pub fn check_decode(
    rt: &ResourceType,
    obj: &Value,
    op: Op,
    patch: Option<&Value>,
) -> Result<(), Rejection> {
    if op == Op::Apply && !rt.builtin {
        if let Some(schema) = &rt.openapi_schema {
            let mut errs = Vec::new();
            typed_errors(schema, obj, "", &mut errs);
            if !errs.is_empty() {
                let joined = if errs.len() == 1 {
                    errs.remove(0)
                } else {
                    format!("errors:\n  {}", errs.join("\n  "))
                };
                return Err(internal(&format!(
                    "failed to create typed patch object ({}): {joined}",
                    object_gvknn(rt, obj)
                )));
            }
        }
    }
    if rt.builtin {
        string_maps(rt, obj, op)?;
    }
    for field in micro_time_fields(rt) {
        let Some(v) = lookup(obj, field).as_str() else {
            continue;
        };
        let Some(err) = parse_micro_time(v) else {
            continue;
        };
        return Err(match op {
            Op::Create | Op::Update => bad_request(&format!(
                "{} in version {} cannot be handled as a {}: {err}",
                rt.kind,
                go_quote(&rt.version),
                rt.kind
            )),
            Op::Apply => internal(&format!(
                "failed to convert new object ({}) to proper version: unable to convert unstructured object to {}: {err}",
                object_gvknn(rt, obj),
                gvk_string(rt)
            )),
            Op::StrategicPatch | Op::MergePatch | Op::JsonPatch => {
                let shown = match (op, patch) {
                    (Op::StrategicPatch, Some(p)) => go_value(p),
                    _ => go_json(obj),
                };
                invalid(
                    "",
                    "",
                    "",
                    &[FieldError::new(ErrType::Invalid, "patch", go_quote(&shown), err)],
                )
            }
        });
    }
    Ok(())
}

/// Go's `%v` of a decoded JSON value (`map[k:v]`, `[a b]`, floats as `%v` prints float64).
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{k}:{}", go_value(&m[*k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// `%v` of a float64: shortest digits, exponent form below 1e-4 and from 1e+06.
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let e = format!("{f:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// Go's `json.Marshal` of a map: keys sorted, compact, `<`, `>`, `&` escaped.
fn go_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v)
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn schema_types(schema: &Value) -> Option<&str> {
    schema["type"].as_str()
}

/// structured-merge-diff's type errors for an apply body (paths with a leading dot).
/// Built-in `map[string]string` (and Secret `map[string][]byte`) fields hold strings only:
/// YAML 1.1's `yes` or an unquoted number there does not decode into the typed object. Under
/// apply that is the 500 typed-patch error; elsewhere the 400 decode error.
fn string_maps(rt: &ResourceType, obj: &Value, op: Op) -> Result<(), Rejection> {
    let mut fields: Vec<(&str, &str)> = vec![("metadata", "labels"), ("metadata", "annotations")];
    match rt.kind.as_str() {
        "ConfigMap" => fields.push(("", "data")),
        "Secret" => {
            fields.push(("", "data"));
            fields.push(("", "stringData"));
        }
        _ => {}
    }
    for (parent, field) in fields {
        let map = if parent.is_empty() {
            obj.get(field)
        } else {
            obj.get(parent).and_then(|p| p.get(field))
        };
        let Some(map) = map.and_then(Value::as_object) else {
            continue;
        };
        for (k, v) in map {
            if v.is_string() || v.is_null() {
                continue;
            }
            let path = if parent.is_empty() {
                format!(".{field}.{k}")
            } else {
                format!(".{parent}.{field}.{k}")
            };
            return Err(if op == Op::Apply {
                internal(&format!(
                    "failed to create typed patch object ({}): {path}: expected string, got {}",
                    object_gvknn(rt, obj),
                    go_json(v)
                ))
            } else {
                let go = match v {
                    Value::Bool(_) => "bool",
                    Value::Number(_) => "number",
                    Value::Array(_) => "array",
                    _ => "object",
                };
                let owner = if parent.is_empty() {
                    rt.kind.clone()
                } else {
                    "ObjectMeta".to_string()
                };
                bad_request(&format!(
                    "{kind} in version \"{version}\" cannot be handled as a {kind}: json: cannot unmarshal {go} into Go struct field {owner}.{field} of type string",
                    kind = rt.kind,
                    version = rt.version,
                ))
            });
        }
    }
    Ok(())
}

fn typed_errors(schema: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
    if v.is_null() || schema["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        return;
    }
    match schema_types(schema) {
        Some("integer") | Some("number") if !v.is_number() => errs.push(format!(
            "{path}: expected numeric (int or float), got {}",
            go_type_name(v)
        )),
        Some("string") if !v.is_string() => {
            errs.push(format!("{path}: expected string, got {}", go_json(v)))
        }
        Some("boolean") if !v.is_boolean() => {
            errs.push(format!("{path}: expected boolean, got {}", go_json(v)))
        }
        Some("object") if !v.is_object() => {
            errs.push(format!("{path}: expected map, got {}", go_json(v)))
        }
        Some("array") if !v.is_array() => {
            errs.push(format!("{path}: expected list, got {}", go_json(v)))
        }
        _ => {
            if let Some(m) = v.as_object() {
                for (k, sub) in m {
                    if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                        continue;
                    }
                    let child = format!("{path}.{k}");
                    if let Some(ps) = schema["properties"].get(k) {
                        typed_errors(ps, sub, &child, errs);
                    } else if schema["additionalProperties"].is_object() {
                        typed_errors(&schema["additionalProperties"], sub, &child, errs);
                    }
                }
            } else if let Some(a) = v.as_array() {
                let items = &schema["items"];
                if items.is_object() {
                    for (i, item) in a.iter().enumerate() {
                        let key = list_item_key(schema, item).unwrap_or_else(|| format!("[{i}]"));
                        typed_errors(items, item, &format!("{path}{key}"), errs);
                    }
                }
            }
        }
    }
}

/// `[type="Ready"]` for an item of a map-type list (how structured-merge-diff names it).
fn list_item_key(schema: &Value, item: &Value) -> Option<String> {
    if schema["x-kubernetes-list-type"].as_str() != Some("map") {
        return None;
    }
    let keys = schema["x-kubernetes-list-map-keys"].as_array()?;
    let parts: Vec<String> = keys
        .iter()
        .filter_map(Value::as_str)
        .map(|k| {
            format!(
                "{k}={}",
                item.get(k).map(|v| v.to_string()).unwrap_or_default()
            )
        })
        .collect();
    Some(format!("[{}]", parts.join(",")))
}

// ---------------------------------------------------------------------------------------------
// OpenAPI v3 schema validation (custom resources)

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(want: &str, v: &Value) -> bool {
    match (want, v) {
        ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => {
            !n.is_f64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        (w, v) => w == json_type(v),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Go's `%v` of a bad value as kube-openapi hands it over (strings quoted).
fn go_bad_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Number(n) if n.is_f64() => go_float(n.as_f64().unwrap_or(0.0)),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => go_value(other),
    }
}

fn validate_schema(schema: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if v.is_null() {
        return;
    }
    let int_or_string = schema["x-kubernetes-int-or-string"].as_bool() == Some(true);
    if let Some(want) = schema_types(schema) {
        if !int_or_string && !type_ok(want, v) {
            let got = json_type(v);
            errs.push(FieldError::new(
                ErrType::TypeInvalid,
                path,
                go_quote(got),
                format!("{path} in body must be of type {want}: {}", go_quote(got)),
            ));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(v) {
            let values: Vec<String> = allowed
                .iter()
                .map(|a| {
                    go_quote(
                        &a.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| a.to_string()),
                    )
                })
                .collect();
            errs.push(FieldError::new(
                ErrType::NotSupported,
                path,
                go_bad_value(v),
                format!("supported values: {}", values.join(", ")),
            ));
        }
    }
    if let Some(n) = v.as_f64() {
        let shown = go_bad_value(v);
        if let Some(min) = schema["minimum"].as_f64() {
            let excl = schema["exclusiveMinimum"].as_bool() == Some(true);
            if n < min || (excl && n == min) {
                let cmp = if excl {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                errs.push(FieldError::new(
                    ErrType::Invalid,
                    path,
                    shown.clone(),
                    format!("{path} in body should be {cmp} {}", go_float(min)),
                ));
            }
        }
        if let Some(max) = schema["maximum"].as_f64() {
            let excl = schema["exclusiveMaximum"].as_bool() == Some(true);
            if n > max || (excl && n == max) {
                let cmp = if excl {
                    "less than"
                } else {
                    "less than or equal to"
                };
                errs.push(FieldError::new(
                    ErrType::Invalid,
                    path,
                    shown,
                    format!("{path} in body should be {cmp} {}", go_float(max)),
                ));
            }
        }
    }
    if let Some(text) = v.as_str() {
        let len = text.chars().count() as u64;
        if let Some(min) = schema["minLength"].as_u64() {
            if len < min {
                errs.push(FieldError::new(
                    ErrType::Invalid,
                    path,
                    go_quote(text),
                    format!("{path} in body should be at least {min} chars long"),
                ));
            }
        }
        if let Some(max) = schema["maxLength"].as_u64() {
            if len > max {
                errs.push(FieldError::new(
                    ErrType::TooLong,
                    path,
                    go_quote(text),
                    format!("may not be longer than {max}"),
                ));
            }
        }
    }
    if let Some(a) = v.as_array() {
        if let Some(min) = schema["minItems"].as_u64() {
            if (a.len() as u64) < min {
                errs.push(FieldError::new(
                    ErrType::Invalid,
                    path,
                    go_value(v),
                    format!("{path} in body should have at least {min} items"),
                ));
            }
        }
        if let Some(max) = schema["maxItems"].as_u64() {
            if (a.len() as u64) > max {
                errs.push(FieldError::new(
                    ErrType::Invalid,
                    path,
                    go_value(v),
                    format!("{path} in body should have at most {max} items"),
                ));
            }
        }
        if schema["items"].is_object() {
            for (i, item) in a.iter().enumerate() {
                validate_schema(&schema["items"], item, &format!("{path}[{i}]"), errs);
            }
        }
    }
    if let Some(m) = v.as_object() {
        if let Some(req) = schema["required"].as_array() {
            for r in req.iter().filter_map(Value::as_str) {
                if m.get(r).is_none_or(Value::is_null) {
                    errs.push(FieldError::required(join(path, r), ""));
                }
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (k, ps) in props {
                if let Some(sub) = m.get(k) {
                    validate_schema(ps, sub, &join(path, k), errs);
                }
            }
        }
        if schema["additionalProperties"].is_object() {
            for (k, sub) in m {
                validate_schema(&schema["additionalProperties"], sub, &join(path, k), errs);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Unknown fields and pruning

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
mod string_map_tests {
    use super::*;

    fn configmap() -> ResourceType {
        crate::registry::builtins()
            .into_iter()
            .find(|t| t.kind == "ConfigMap")
            .unwrap()
    }

    #[test]
    fn a_yaml_1_1_boolean_in_configmap_data_does_not_decode() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "demo"}, "data": {"enabled": true}});
        let apply = check_decode(&configmap(), &obj, Op::Apply, None).unwrap_err();
        assert_eq!(apply.status, 500);
        assert!(apply.body["message"]
            .as_str()
            .unwrap()
            .contains(".data.enabled: expected string"));
        let create = check_decode(&configmap(), &obj, Op::Create, None).unwrap_err();
        assert_eq!(create.status, 400);
        assert_eq!(create.body["reason"], "BadRequest");
        let fine = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "s", "labels": {"a": "b"}}, "data": {"enabled": "true"}});
        assert!(check_decode(&configmap(), &fine, Op::Apply, None).is_ok());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{builtins, from_crd};

    fn rt(group: &str, kind: &str) -> ResourceType {
        builtins()
            .into_iter()
            .find(|t| t.group == group && t.kind == kind)
            .unwrap()
    }

    fn sealed_secret_type() -> ResourceType {
        from_crd(&json!({"spec": {"group": "gitops-seal.dev", "scope": "Namespaced",
            "names": {"plural": "sealedsecrets", "singular": "sealedsecret", "kind": "SealedSecret"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
              "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                    "name": {"type": "string", "minLength": 3, "maxLength": 5},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                    "list": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}}
                }, "required": ["size"]},
                "status": {"type": "object", "properties": {
                    "observedGeneration": {"type": "integer"},
                    "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["type"],
                      "items": {"type": "object", "required": ["type", "status"], "properties": {
                        "type": {"type": "string"},
                        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                        "reason": {"type": "string"}, "message": {"type": "string"},
                        "observedGeneration": {"type": "integer"},
                        "lastTransitionTime": {"type": "string", "format": "date-time"}}}}}}
              }}}}]}}))
        .remove(0)
    }

    fn secret(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "t"}, "type": "Opaque", "data": {"k": "MQ=="}})
    }

    /// owner-references-and-validation.json step 2: `Bad_Name` is 422 with the recorded message.
    #[test]
    fn invalid_secret_name_as_recorded() {
        let err = validate(&rt("", "Secret"), &secret("Bad_Name"), None, Op::Create).unwrap_err();
        assert_eq!(err.status, 422);
        assert_eq!(
            err.body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": "Secret \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
              "reason": "Invalid", "details": {"name": "Bad_Name", "kind": "Secret", "causes": [{"reason": "FieldValueInvalid",
              "message": "Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
              "field": "metadata.name"}]}, "code": 422})
        );
        let keys: Vec<&String> = err.body.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "kind",
                "apiVersion",
                "metadata",
                "status",
                "message",
                "reason",
                "details",
                "code"
            ]
        );
        assert!(validate(&rt("", "Secret"), &secret("ok.name-1"), None, Op::Create).is_ok());
    }

    #[test]
    fn namespace_names_are_labels_and_generate_name() {
        let ns = rt("", "Namespace");
        let err =
            validate(&ns, &json!({"metadata": {"name": "a.b"}}), None, Op::Create).unwrap_err();
        assert_eq!(
            err.body["message"],
            "Namespace \"a.b\" is invalid: metadata.name: Invalid value: \"a.b\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        );
        // events-v1.json step 7: generateName "gitops-seal-" is fine (trailing dash allowed)
        let ev = rt("", "ConfigMap");
        assert!(validate(
            &ev,
            &json!({"metadata": {"generateName": "gitops-seal-"}}),
            None,
            Op::Create
        )
        .is_ok());
        let err = validate(
            &ev,
            &json!({"metadata": {"generateName": "Bad-"}}),
            None,
            Op::Create,
        )
        .unwrap_err();
        assert_eq!(
            err.body["details"]["causes"][0]["field"],
            "metadata.generateName"
        );
        let err = validate(&ev, &json!({"metadata": {}}), None, Op::Create).unwrap_err();
        assert_eq!(
            err.body["message"],
            "ConfigMap \"\" is invalid: metadata.name: Required value: name or generateName is required"
        );
        let err = validate(
            &ev,
            &json!({"metadata": {"name": "x", "labels": {"a": "-b"}}}),
            None,
            Op::Create,
        )
        .unwrap_err();
        assert_eq!(err.body["details"]["causes"][0]["field"], "metadata.labels");
    }

    /// owner-references-and-validation.json step 1: two controller references.
    #[test]
    fn two_controllers_as_recorded() {
        let obj = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "owned2", "namespace": "t", "ownerReferences": [
            {"apiVersion": "example.dev/v1", "kind": "Widget", "name": "w", "uid": "2e1f9588-681d-4e27-b1ce-f4ed25a98c5b", "controller": true},
            {"apiVersion": "example.dev/v1", "kind": "Widget", "name": "w2", "uid": "00000000-0000-0000-0000-000000000002", "controller": true}]}});
        let err = validate(&rt("", "Secret"), &obj, None, Op::Create).unwrap_err();
        assert_eq!(err.status, 422);
        let msg = err.body["message"].as_str().unwrap();
        let re_addr = |s: &str| {
            let mut out = String::new();
            let mut rest = s;
            while let Some(i) = rest.find("(*bool)(0x") {
                out.push_str(&rest[..i + 10]);
                rest = &rest[i + 10..];
                let end = rest.find(')').unwrap();
                out.push_str("ADDR");
                rest = &rest[end..];
            }
            out.push_str(rest);
            out
        };
        let recorded = "Secret \"owned2\" is invalid: metadata.ownerReferences: Invalid value: []v1.OwnerReference{v1.OwnerReference{APIVersion:\"example.dev/v1\", Kind:\"Widget\", Name:\"w\", UID:\"2e1f9588-681d-4e27-b1ce-f4ed25a98c5b\", Controller:(*bool)(0x16edd9ec75a6), BlockOwnerDeletion:(*bool)(nil)}, v1.OwnerReference{APIVersion:\"example.dev/v1\", Kind:\"Widget\", Name:\"w2\", UID:\"00000000-0000-0000-0000-000000000002\", Controller:(*bool)(0x16edd9ec75c0), BlockOwnerDeletion:(*bool)(nil)}}: Only one reference can have Controller set to true. Found \"true\" in references for Widget/w and Widget/w2";
        assert_eq!(re_addr(msg), re_addr(recorded));
        let cause = &err.body["details"]["causes"][0];
        assert_eq!(cause["reason"], "FieldValueInvalid");
        assert_eq!(cause["field"], "metadata.ownerReferences");
        assert_eq!(err.body["details"]["kind"], "Secret");
        assert_eq!(err.body["details"]["name"], "owned2");
        assert!(err.body["details"].get("group").is_none());
    }

    /// ssa-secret.json steps 5 and 6: `type` is immutable; a TLS type also wants its keys.
    #[test]
    fn secret_type_immutable_as_recorded() {
        let s = rt("", "Secret");
        let old = secret("db");
        let mut new = old.clone();
        new["type"] = json!("gitops-seal.dev/custom");
        let err = validate(&s, &new, Some(&old), Op::Apply).unwrap_err();
        assert_eq!(
            err.body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": "Secret \"db\" is invalid: type: Invalid value: \"gitops-seal.dev/custom\": field is immutable",
              "reason": "Invalid", "details": {"name": "db", "kind": "Secret", "causes": [{"reason": "FieldValueInvalid",
              "message": "Invalid value: \"gitops-seal.dev/custom\": field is immutable", "field": "type"}]}, "code": 422})
        );
        new["type"] = json!("kubernetes.io/tls");
        let err = validate(&s, &new, Some(&old), Op::Apply).unwrap_err();
        assert_eq!(
            err.body["message"],
            "Secret \"db\" is invalid: [type: Invalid value: \"kubernetes.io/tls\": field is immutable, data[tls.crt]: Required value, data[tls.key]: Required value]"
        );
        assert_eq!(
            err.body["details"]["causes"],
            json!([{"reason": "FieldValueInvalid", "message": "Invalid value: \"kubernetes.io/tls\": field is immutable", "field": "type"},
              {"reason": "FieldValueRequired", "message": "Required value", "field": "data[tls.crt]"},
              {"reason": "FieldValueRequired", "message": "Required value", "field": "data[tls.key]"}])
        );
        // on create, the type is free
        assert!(validate(&s, &new, None, Op::Create).is_err()); // (tls keys still required)
        let mut custom = secret("c");
        custom["type"] = json!("gitops-seal.dev/custom");
        assert!(validate(&s, &custom, None, Op::Create).is_ok());
    }

    /// ssa-secret.json steps 9–12: `immutable: true` freezes data and itself.
    #[test]
    fn secret_immutable_as_recorded() {
        let s = rt("", "Secret");
        let mut old = secret("frozen");
        old["immutable"] = json!(true);
        let forbidden = |field: &str| {
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": format!("Secret \"frozen\" is invalid: {field}: Forbidden: field is immutable when `immutable` is set"),
              "reason": "Invalid", "details": {"name": "frozen", "kind": "Secret", "causes": [{"reason": "FieldValueForbidden",
              "message": "Forbidden: field is immutable when `immutable` is set", "field": field}]}, "code": 422})
        };
        let mut changed = old.clone();
        changed["data"] = json!({"k": "Mg=="});
        assert_eq!(
            validate(&s, &changed, Some(&old), Op::Apply)
                .unwrap_err()
                .body,
            forbidden("data")
        );
        changed["data"] = json!({"k": "MQ==", "extra": "Mw=="});
        assert_eq!(
            validate(&s, &changed, Some(&old), Op::Apply)
                .unwrap_err()
                .body,
            forbidden("data")
        );
        let mut thawed = old.clone();
        thawed["immutable"] = json!(false);
        assert_eq!(
            validate(&s, &thawed, Some(&old), Op::Apply)
                .unwrap_err()
                .body,
            forbidden("immutable")
        );
        thawed.as_object_mut().unwrap().remove("immutable");
        assert_eq!(
            validate(&s, &thawed, Some(&old), Op::Apply)
                .unwrap_err()
                .body,
            forbidden("immutable")
        );
        // unchanged: fine; and a mutable secret may become immutable with new data
        assert!(validate(&s, &old, Some(&old), Op::Apply).is_ok());
        let plain = secret("frozen");
        assert!(validate(&s, &changed, Some(&plain), Op::Apply).is_ok());
    }

    #[test]
    fn config_keys_and_config_map_immutable() {
        let cm = rt("", "ConfigMap");
        let obj = json!({"metadata": {"name": "c"}, "data": {"bad key": "x"}});
        let err = validate(&cm, &obj, None, Op::Create).unwrap_err();
        assert_eq!(
            err.body["message"],
            "ConfigMap \"c\" is invalid: data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
        );
        let s = rt("", "Secret");
        let obj = json!({"metadata": {"name": "s"}, "stringData": {"..x": "y"}});
        let err = validate(&s, &obj, None, Op::Create).unwrap_err();
        assert_eq!(
            err.body["message"],
            "Secret \"s\" is invalid: data[..x]: Invalid value: \"..x\": must not start with '..'"
        );
        let old = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}});
        let new = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "2"}});
        let err = validate(&cm, &new, Some(&old), Op::Update).unwrap_err();
        assert_eq!(err.body["details"]["causes"][0]["field"], "data");
        assert_eq!(
            err.body["details"]["causes"][0]["message"],
            "Forbidden: field is immutable when `immutable` is set"
        );
    }

    fn event() -> Value {
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "db.18ecde72953663ff", "namespace": "transcripts2"},
          "eventTime": "2026-11-30T16:08:55.124917Z", "reportingController": "gitops-seal", "reportingInstance": "gitops-seal-6d4b9-x2x7q",
          "action": "Unseal", "reason": "DecryptFailed", "type": "Warning", "note": "no identity opens value password of SealedSecret db",
          "regarding": {"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret", "name": "db", "namespace": "transcripts2", "uid": "f0776645-4798-40c2-af4b-4e1f2b01151d"}})
    }

    fn ev_rt() -> ResourceType {
        rt("events.k8s.io", "Event")
    }

    /// events-v1.json steps 0–2, 5: the Recorder's event and its series patches are accepted.
    #[test]
    fn event_v1_accepted() {
        let e = event();
        assert!(validate(&ev_rt(), &e, None, Op::Create).is_ok());
        let mut s2 = e.clone();
        s2["series"] = json!({"count": 2, "lastObservedTime": "2026-11-30T16:08:56.143904Z"});
        assert!(validate(&ev_rt(), &s2, Some(&e), Op::MergePatch).is_ok());
        let mut s4 = s2.clone();
        s4["series"]["count"] = json!(4);
        assert!(validate(&ev_rt(), &s4, Some(&s2), Op::MergePatch).is_ok());
        assert!(check_decode(&ev_rt(), &s4, Op::MergePatch, None).is_ok());
    }

    /// events-v1.json step 3: changing `note` is 422 on field `message`.
    #[test]
    fn event_note_immutable_as_recorded() {
        let old = event();
        let mut new = old.clone();
        new["note"] = json!("a different note");
        let err = validate(&ev_rt(), &new, Some(&old), Op::MergePatch).unwrap_err();
        assert_eq!(
            err.body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": "Event \"db.18ecde72953663ff\" is invalid: message: Invalid value: \"a different note\": field is immutable",
              "reason": "Invalid", "details": {"name": "db.18ecde72953663ff", "kind": "Event", "causes": [{"reason": "FieldValueInvalid",
              "message": "Invalid value: \"a different note\": field is immutable", "field": "message"}]}, "code": 422})
        );
    }

    /// events-v1.json steps 4 and 8: series count below 2; series without lastObservedTime.
    #[test]
    fn event_series_as_recorded() {
        let mut old = event();
        old["series"] = json!({"count": 3, "lastObservedTime": "2026-11-30T16:08:57.154105Z"});
        let mut new = old.clone();
        new["series"] = json!({"count": 1, "lastObservedTime": "2026-11-30T16:08:58.178810Z"});
        let err = validate(&ev_rt(), &new, Some(&old), Op::MergePatch).unwrap_err();
        assert_eq!(
            err.body["message"],
            "Event \"db.18ecde72953663ff\" is invalid: series.count: Invalid value: \"\": should be at least 2"
        );
        assert_eq!(
            err.body["details"]["causes"],
            json!([{"reason": "FieldValueInvalid", "message": "Invalid value: \"\": should be at least 2", "field": "series.count"}])
        );
        let old = event();
        let mut new = old.clone();
        new["series"] = json!({"count": 2});
        let err = validate(&ev_rt(), &new, Some(&old), Op::MergePatch).unwrap_err();
        assert_eq!(
            err.body["message"],
            "Event \"db.18ecde72953663ff\" is invalid: series.lastObservedTime: Required value"
        );
        assert_eq!(
            err.body["details"]["causes"],
            json!([{"reason": "FieldValueRequired", "message": "Required value", "field": "series.lastObservedTime"}])
        );
    }

    /// events-v1.json steps 10 and 11: missing eventTime; missing reportingController and action.
    #[test]
    fn event_create_required_as_recorded() {
        let mut e = event();
        e["metadata"]["name"] = json!("db.18ecde72953663ffc");
        e.as_object_mut().unwrap().remove("eventTime");
        let err = validate(&ev_rt(), &e, None, Op::Create).unwrap_err();
        assert_eq!(
            err.body["message"],
            "Event \"db.18ecde72953663ffc\" is invalid: eventTime: Required value"
        );
        let mut e = event();
        e["metadata"]["name"] = json!("db.18ecde72953663ffd");
        e.as_object_mut().unwrap().remove("reportingController");
        e.as_object_mut().unwrap().remove("action");
        let err = validate(&ev_rt(), &e, None, Op::Create).unwrap_err();
        assert_eq!(
            err.body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Event \"db.18ecde72953663ffd\" is invalid: [reportingController: Required value, reportingController: Invalid value: \"\": name part must be non-empty, reportingController: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), action: Required value]", "reason": "Invalid", "details": {"name": "db.18ecde72953663ffd", "kind": "Event", "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "reportingController"}, {"reason": "FieldValueInvalid", "message": "Invalid value: \"\": name part must be non-empty", "field": "reportingController"}, {"reason": "FieldValueInvalid", "message": "Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')", "field": "reportingController"}, {"reason": "FieldValueRequired", "message": "Required value", "field": "action"}]}, "code": 422})
        );
    }

    /// events-v1.json step 9: eventTime without 6 fraction digits is a 400 decode error.
    #[test]
    fn event_time_decode_as_recorded() {
        let mut e = event();
        e["eventTime"] = json!("2026-11-23T10:00:00Z");
        let err = check_decode(&ev_rt(), &e, Op::Create, None).unwrap_err();
        assert_eq!(
            err,
            Rejection {
                status: 400,
                body: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": "Event in version \"v1\" cannot be handled as a Event: parsing time \"2026-11-23T10:00:00Z\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"Z\" as \".000000\"",
                  "reason": "BadRequest", "code": 400})
            }
        );
    }

    /// lease-ssa.json steps 7 and 8: a bad time under apply is a 500.
    #[test]
    fn lease_time_under_apply_as_recorded() {
        let lease = rt("coordination.k8s.io", "Lease");
        let mut l = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "gitops-seal-leader", "namespace": "transcripts2"},
            "spec": {"holderIdentity": "pod-b", "leaseDurationSeconds": 15, "acquireTime": "2026-11-30T16:09:25.292179Z", "renewTime": "2026-11-23T10:00:00Z", "leaseTransitions": 1}});
        let err = check_decode(&lease, &l, Op::Apply, None).unwrap_err();
        assert_eq!(
            err.body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": "failed to convert new object (transcripts2/gitops-seal-leader; coordination.k8s.io/v1, Kind=Lease) to proper version: unable to convert unstructured object to coordination.k8s.io/v1, Kind=Lease: parsing time \"2026-11-23T10:00:00Z\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"Z\" as \".000000\"",
              "code": 500})
        );
        assert_eq!(err.status, 500);
        l["spec"]["renewTime"] = json!("not-a-time");
        let err = check_decode(&lease, &l, Op::Apply, None).unwrap_err();
        assert!(err.body["message"].as_str().unwrap().ends_with(
            "parsing time \"not-a-time\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"not-a-time\" as \"2006\""
        ));
        l["spec"]["renewTime"] = json!("2026-11-30T16:09:25.292179Z");
        assert!(check_decode(&lease, &l, Op::Apply, None).is_ok());
    }

    /// strategic-merge-and-json-patch.json step 4: a bad time under strategic merge patch is 422.
    #[test]
    fn lease_time_under_strategic_patch_as_recorded() {
        let lease = rt("coordination.k8s.io", "Lease");
        let patch = json!({"spec": {"renewTime": "not-a-time"}});
        let obj = json!({"metadata": {"name": "gitops-seal", "namespace": "transcripts5"}, "spec": {"holderIdentity": "pod-a", "renewTime": "not-a-time"}});
        let err = check_decode(&lease, &obj, Op::StrategicPatch, Some(&patch)).unwrap_err();
        assert_eq!(
            err,
            Rejection {
                status: 422,
                body: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": " \"\" is invalid: patch: Invalid value: \"map[spec:map[renewTime:not-a-time]]\": parsing time \"not-a-time\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"not-a-time\" as \"2006\"",
                  "reason": "Invalid", "details": {"causes": [{"reason": "FieldValueInvalid",
                  "message": "Invalid value: \"map[spec:map[renewTime:not-a-time]]\": parsing time \"not-a-time\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"not-a-time\" as \"2006\"",
                  "field": "patch"}]}, "code": 422})
            }
        );
    }

    #[test]
    fn micro_time_parsing() {
        assert_eq!(parse_micro_time("2026-11-30T16:08:55.124917Z"), None);
        assert_eq!(parse_micro_time("2026-11-30T16:08:55.124917+02:00"), None);
        let e = parse_micro_time("2026-11-30T16:08:55.123Z").unwrap();
        assert!(e.ends_with("cannot parse \".123Z\" as \".000000\""), "{e}");
        let e = parse_micro_time("2026-13-30T16:08:55.123456Z").unwrap();
        assert_eq!(
            e,
            "parsing time \"2026-13-30T16:08:55.123456Z\": month out of range"
        );
        let e = parse_micro_time("2026-11-30 16:08:55.123456Z").unwrap();
        assert!(
            e.ends_with("cannot parse \" 16:08:55.123456Z\" as \"T\""),
            "{e}"
        );
        let e = parse_micro_time("2026-02-30T16:08:55.123456Z").unwrap();
        assert!(e.ends_with(": day out of range"), "{e}");
        assert_eq!(
            go_value(&json!({"b": [1, 2.5, null], "a": {"x": true, "n": 1000000}})),
            "map[a:map[n:1e+06 x:true] b:[1 2.5 <nil>]]"
        );
    }

    /// crd-status-subresource.json step 7: a string for an integer is 422 with the full path.
    #[test]
    fn custom_resource_type_error_as_recorded() {
        let widget = from_crd(&json!({"spec": {"group": "example.dev", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
              "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}}))
        .remove(0);
        let obj = json!({"apiVersion": "example.dev/v1", "kind": "Widget", "metadata": {"name": "bad"}, "spec": {"size": "big"}});
        let err = validate(&widget, &obj, None, Op::Create).unwrap_err();
        assert_eq!(
            err.body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": "Widget.example.dev \"bad\" is invalid: spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"",
              "reason": "Invalid", "details": {"name": "bad", "group": "example.dev", "kind": "Widget", "causes": [{"reason": "FieldValueTypeInvalid",
              "message": "Invalid value: \"string\": spec.size in body must be of type integer: \"string\"", "field": "spec.size"}]}, "code": 422})
        );
    }

    /// status-ssa.json steps 13 and 14: enum and type errors in /status lack the `status.` prefix.
    #[test]
    fn status_paths_lack_prefix_as_recorded() {
        let t = sealed_secret_type();
        let obj = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret", "metadata": {"name": "db", "namespace": "transcripts2"},
          "spec": {"size": 1}, "status": {"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "Yes", "reason": "Unsealed",
          "message": "Secret db unsealed", "observedGeneration": 2, "lastTransitionTime": "2026-11-23T00:00:00Z"}]}});
        let err = validate_status(&t, &obj, Some(&obj), Op::Apply).unwrap_err();
        assert_eq!(
            err.body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": "SealedSecret.gitops-seal.dev \"db\" is invalid: conditions[0].status: Unsupported value: \"Yes\": supported values: \"True\", \"False\", \"Unknown\"",
              "reason": "Invalid", "details": {"name": "db", "group": "gitops-seal.dev", "kind": "SealedSecret", "causes": [{"reason": "FieldValueNotSupported",
              "message": "Unsupported value: \"Yes\": supported values: \"True\", \"False\", \"Unknown\"", "field": "conditions[0].status"}]}, "code": 422})
        );
        let obj = json!({"metadata": {"name": "db"}, "status": {"observedGeneration": "two"}});
        let err = validate_status(&t, &obj, None, Op::MergePatch).unwrap_err();
        assert_eq!(
            err.body["message"],
            "SealedSecret.gitops-seal.dev \"db\" is invalid: observedGeneration: Invalid value: \"string\": observedGeneration in body must be of type integer: \"string\""
        );
        assert_eq!(
            err.body["details"]["causes"][0]["reason"],
            "FieldValueTypeInvalid"
        );
        assert_eq!(
            err.body["details"]["causes"][0]["field"],
            "observedGeneration"
        );
    }

    /// status-ssa.json step 12: a wrong type in an apply is the 500 typed-patch error.
    #[test]
    fn typed_apply_error_as_recorded() {
        let t = sealed_secret_type();
        let obj = json!({"apiVersion": "gitops-seal.dev/v1", "kind": "SealedSecret", "metadata": {"name": "db", "namespace": "transcripts2"},
          "status": {"observedGeneration": "two", "conditions": [{"type": "Ready", "status": "True", "reason": "Unsealed",
          "message": "Secret db unsealed", "observedGeneration": 2, "lastTransitionTime": "2026-11-23T00:00:00Z"}]}});
        let err = check_decode(&t, &obj, Op::Apply, None).unwrap_err();
        assert_eq!(
            err,
            Rejection {
                status: 500,
                body: json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": "failed to create typed patch object (transcripts2/db; gitops-seal.dev/v1, Kind=SealedSecret): .status.observedGeneration: expected numeric (int or float), got string",
                  "code": 500})
            }
        );
        assert!(check_decode(&t, &obj, Op::MergePatch, None).is_ok());
    }

    #[test]
    fn schema_rules() {
        let t = sealed_secret_type();
        let base = json!({"metadata": {"name": "x"}, "spec": {"size": 5}});
        assert!(validate(&t, &base, None, Op::Create).is_ok());
        let err = validate(
            &t,
            &json!({"metadata": {"name": "x"}, "spec": {}}),
            None,
            Op::Create,
        )
        .unwrap_err();
        assert_eq!(
            err.body["message"],
            "SealedSecret.gitops-seal.dev \"x\" is invalid: spec.size: Required value"
        );
        let err = validate(
            &t,
            &json!({"metadata": {"name": "x"}, "spec": {"size": 0}}),
            None,
            Op::Create,
        )
        .unwrap_err();
        assert_eq!(
            err.body["message"],
            "SealedSecret.gitops-seal.dev \"x\" is invalid: spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
        );
        let err = validate(
            &t,
            &json!({"metadata": {"name": "x"}, "spec": {"size": 11}}),
            None,
            Op::Create,
        )
        .unwrap_err();
        assert!(err.body["message"]
            .as_str()
            .unwrap()
            .ends_with("spec.size in body should be less than or equal to 10"));
        let err = validate(
            &t,
            &json!({"metadata": {"name": "x"}, "spec": {"size": 2, "name": "ab"}}),
            None,
            Op::Create,
        )
        .unwrap_err();
        assert!(err.body["message"].as_str().unwrap().ends_with(
            "spec.name: Invalid value: \"ab\": spec.name in body should be at least 3 chars long"
        ));
        let err = validate(
            &t,
            &json!({"metadata": {"name": "x"}, "spec": {"size": 2, "name": "abcdef"}}),
            None,
            Op::Create,
        )
        .unwrap_err();
        assert_eq!(
            err.body["details"]["causes"][0],
            json!({"reason": "FieldValueTooLong", "message": "Too long: may not be longer than 5", "field": "spec.name"})
        );
        let err = validate(&t, &json!({"metadata": {"name": "x"}, "spec": {"size": 2, "mode": "c", "tags": {"a": 1}, "list": [{"x": "y"}]}}), None, Op::Create).unwrap_err();
        let fields: Vec<&str> = err.body["details"]["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["spec.mode", "spec.tags.a", "spec.list[0].x"]);
        // integral floats are integers for the schema
        assert!(validate(
            &t,
            &json!({"metadata": {"name": "x"}, "spec": {"size": 2.0}}),
            None,
            Op::Create
        )
        .is_ok());
    }

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

    #[test]
    fn lease_spec_rules() {
        let lease = rt("coordination.k8s.io", "Lease");
        let l = json!({"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}});
        let err = validate(&lease, &l, None, Op::Create).unwrap_err();
        assert_eq!(
            err.body["message"],
            "Lease.coordination.k8s.io \"l\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
        );
        assert_eq!(err.body["details"]["group"], "coordination.k8s.io");
    }
}
