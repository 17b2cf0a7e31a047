//! `Status` bodies as kube-apiserver writes them, and the plain-text 404 of an unknown path.

use serde_json::{json, Map, Value};

use crate::registry::ResourceType;

/// An answer that is not the object asked for: status code, body, content type.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: u16,
    pub body: Value,
    /// `Some` for the few answers that are not JSON (the mux's `404 page not found`).
    pub text: Option<&'static str>,
    pub retry_after: Option<u64>,
}

impl Failure {
    pub fn status(
        code: u16,
        reason: &str,
        message: impl Into<String>,
        details: Option<Value>,
    ) -> Self {
        let mut body = Map::new();
        body.insert("kind".into(), json!("Status"));
        body.insert("apiVersion".into(), json!("v1"));
        body.insert("metadata".into(), json!({}));
        body.insert("status".into(), json!("Failure"));
        body.insert("message".into(), json!(message.into()));
        if !reason.is_empty() {
            body.insert("reason".into(), json!(reason));
        }
        if let Some(d) = details {
            body.insert("details".into(), d);
        }
        body.insert("code".into(), json!(code));
        Failure {
            code,
            body: Value::Object(body),
            text: None,
            retry_after: None,
        }
    }

    /// What the API server's mux answers for a path no installed API serves.
    pub fn page_not_found() -> Self {
        Failure {
            code: 404,
            body: Value::Null,
            text: Some("404 page not found\n"),
            retry_after: None,
        }
    }

    pub fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::status(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", rt.qualified_plural()),
            Some(details(rt, name)),
        )
    }

    pub fn namespace_not_found(ns: &str) -> Self {
        Self::status(
            404,
            "NotFound",
            format!("namespaces \"{ns}\" not found"),
            Some(json!({"name": ns, "kind": "namespaces"})),
        )
    }

    pub fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::status(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", rt.qualified_plural()),
            Some(details(rt, name)),
        )
    }

    /// Optimistic concurrency: the resourceVersion sent is not the stored one.
    pub fn conflict(rt: &ResourceType, name: &str) -> Self {
        Self::status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                rt.qualified_plural()
            ),
            Some(details(rt, name)),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::status(400, "BadRequest", message, None)
    }

    pub fn method_not_allowed() -> Self {
        Self::status(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            Some(json!({})),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        let mut f = Self::status(500, "", message, None);
        if let Some(o) = f.body.as_object_mut() {
            o.remove("reason");
        }
        f
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::status(410, "Expired", message, None)
    }
}

/// `details` naming one object: name, group (omitted for the core group), plural.
pub fn details(rt: &ResourceType, name: &str) -> Value {
    let mut d = Map::new();
    d.insert("name".into(), json!(name));
    if !rt.group.is_empty() {
        d.insert("group".into(), json!(rt.group));
    }
    d.insert("kind".into(), json!(rt.plural));
    Value::Object(d)
}

/// The Status a successful delete answers for most kinds.
pub fn deleted(plural: &str, group: &str, name: &str, uid: &str) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), json!(name));
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    details.insert("kind".into(), json!(plural));
    details.insert("uid".into(), json!(uid));
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": Value::Object(details),
    })
}
