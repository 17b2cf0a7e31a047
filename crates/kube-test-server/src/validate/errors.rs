//! `field.Error` and the `Status` bodies kube-apiserver builds from them.

use serde_json::{json, Map, Value};

use super::Rejection;
use crate::registry::ResourceType;
use crate::selectors::go_quote;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ErrType {
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
pub(super) struct FieldError {
    ty: ErrType,
    field: String,
    value: String,
    detail: String,
}

impl FieldError {
    pub(super) fn new(
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
    pub(super) fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrType::Required, field, String::new(), detail)
    }
    pub(super) fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrType::Forbidden, field, String::new(), detail)
    }
    pub(super) fn invalid_str(
        field: impl Into<String>,
        value: &str,
        detail: impl Into<String>,
    ) -> Self {
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
pub(super) fn invalid(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> Rejection {
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

pub(super) fn bad_request(message: &str) -> Rejection {
    Rejection {
        status: 400,
        body: status(400, Some("BadRequest"), message, None),
    }
}

pub(super) fn internal(message: &str) -> Rejection {
    Rejection {
        status: 500,
        body: status(500, None, message, None),
    }
}

pub(super) fn finish(
    rt: &ResourceType,
    obj: &Value,
    errs: Vec<FieldError>,
) -> Result<(), Rejection> {
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

pub(super) fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

pub(super) fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}
