//! `metadata.managedFields` entries: parsing, serialising, identity and order.

use serde_json::{Map, Value};

use super::{go_json, FieldSet};

/// The operation of a managedFields entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write: create, update, merge/JSON/strategic patch.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// The field manager (`fieldManager` query parameter or derived from the User-Agent).
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The apiVersion the fields were written in.
    pub api_version: String,
    /// When the manager last changed the object (RFC 3339, seconds). `None` for an applier
    /// whose apply changed nothing yet: the server then writes no `time` at all.
    pub time: Option<String>,
    /// `Some("status")` for writes through `/status`.
    pub subresource: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    /// Parses one element of the `managedFields` array.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| "managedFields entry must be an object".to_string())?;
        let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        let operation = match s("operation").as_deref() {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => return Err(format!("invalid managedFields operation {other:?}")),
        };
        let fields = match obj.get("fieldsV1") {
            Some(f) => FieldSet::from_fields_v1(f)?,
            None => FieldSet::new(),
        };
        Ok(ManagedFieldsEntry {
            manager: s("manager").unwrap_or_default(),
            operation,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource").filter(|x| !x.is_empty()),
            fields,
        })
    }

    /// Serialises the entry with the keys in the order a built-in (typed) kind shows them:
    /// manager, operation, apiVersion, time, fieldsType, fieldsV1, subresource.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), Value::String(self.manager.clone()));
        m.insert("operation".into(), self.operation.as_str().into());
        m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::String(t.clone()));
        }
        m.insert("fieldsType".into(), "FieldsV1".into());
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(sub) = &self.subresource {
            m.insert("subresource".into(), Value::String(sub.clone()));
        }
        Value::Object(m)
    }

    /// Serialises the entry with sorted keys, as custom resources (stored unstructured) show
    /// them: apiVersion, fieldsType, fieldsV1, manager, operation, subresource, time.
    pub fn to_json_sorted(&self) -> Value {
        let typed = self.to_json();
        let mut entries: Vec<(String, Value)> = match typed {
            Value::Object(m) => m.into_iter().collect(),
            _ => Vec::new(),
        };
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Value::Object(entries.into_iter().collect())
    }

    /// The manager identity the server keys entries by: manager, operation, subresource, and
    /// for Update entries also apiVersion (JSON, as the server builds it).
    pub(super) fn identifier(&self) -> String {
        manager_identifier(
            &self.manager,
            self.operation,
            &self.api_version,
            self.subresource.as_deref(),
        )
    }

    pub(super) fn same_identity(&self, other: &ManagedFieldsEntry) -> bool {
        self.identifier() == other.identifier()
    }
}

pub(super) fn manager_identifier(
    manager: &str,
    operation: Operation,
    api_version: &str,
    subresource: Option<&str>,
) -> String {
    let mut s = format!(
        "{{\"manager\":{},\"operation\":\"{}\"",
        go_json(&Value::String(manager.to_string())),
        operation.as_str()
    );
    if operation == Operation::Update && !api_version.is_empty() {
        s.push_str(&format!(
            ",\"apiVersion\":{}",
            go_json(&Value::String(api_version.to_string()))
        ));
    }
    if let Some(sub) = subresource {
        s.push_str(&format!(
            ",\"subresource\":{}",
            go_json(&Value::String(sub.to_string()))
        ));
    }
    s.push('}');
    s
}

/// Parses a `metadata.managedFields` array (absent or `null` is empty).
pub fn parse_managed_fields(v: Option<&Value>) -> Result<Vec<ManagedFieldsEntry>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(ManagedFieldsEntry::from_json).collect(),
        Some(_) => Err("managedFields must be a list".to_string()),
    }
}

/// Serialises entries as a `metadata.managedFields` array; `sorted_keys` for custom resources
/// (see [`ManagedFieldsEntry::to_json_sorted`]).
pub fn managed_fields_to_json(entries: &[ManagedFieldsEntry], sorted_keys: bool) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                if sorted_keys {
                    e.to_json_sorted()
                } else {
                    e.to_json()
                }
            })
            .collect(),
    )
}

/// Sorts entries as the server does: Apply before Update, then by time in seconds (no time
/// first), then manager, apiVersion, subresource.
pub fn sort_entries(entries: &mut [ManagedFieldsEntry]) {
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| time_seconds(&p.time).cmp(&time_seconds(&q.time)))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| {
                p.subresource
                    .as_deref()
                    .unwrap_or("")
                    .cmp(q.subresource.as_deref().unwrap_or(""))
            })
    });
}

fn time_seconds(t: &Option<String>) -> i64 {
    t.as_deref()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .map(|ts| ts.as_second())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{LATER, NOW};
    use super::*;

    #[test]
    fn entry_key_order_typed_and_unstructured() {
        let typed = r#"{"manager":"kube-apiserver","operation":"Update","apiVersion":"apiextensions.k8s.io/v1","time":"2026-11-30T16:08:23Z","fieldsType":"FieldsV1","fieldsV1":{"f:status":{"f:acceptedNames":{"f:kind":{}}}},"subresource":"status"}"#;
        let e = ManagedFieldsEntry::from_json(&serde_json::from_str(typed).unwrap()).unwrap();
        assert_eq!(serde_json::to_string(&e.to_json()).unwrap(), typed);
        // A custom resource's entry (status-ssa.json step 3): sorted keys.
        let sorted = r#"{"apiVersion":"gitops-seal.dev/v1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{"f:observedGeneration":{}}},"manager":"gitops-seal","operation":"Apply","subresource":"status","time":"2026-11-30T16:08:26Z"}"#;
        let e = ManagedFieldsEntry::from_json(&serde_json::from_str(sorted).unwrap()).unwrap();
        assert_eq!(serde_json::to_string(&e.to_json_sorted()).unwrap(), sorted);
        // An applier that changed nothing has no time (ssa-secret.json step 4).
        let no_time = r#"{"manager":"kubectl-edit","operation":"Apply","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:password":{}}}}"#;
        let e = ManagedFieldsEntry::from_json(&serde_json::from_str(no_time).unwrap()).unwrap();
        assert_eq!(e.time, None);
        assert_eq!(serde_json::to_string(&e.to_json()).unwrap(), no_time);
    }

    #[test]
    fn sort_puts_apply_first_then_time_then_manager() {
        let e = |m: &str, op: Operation, t: Option<&str>| ManagedFieldsEntry {
            manager: m.into(),
            operation: op,
            api_version: "v1".into(),
            time: t.map(str::to_string),
            subresource: None,
            fields: FieldSet::new(),
        };
        let mut v = vec![
            e("a", Operation::Update, Some(NOW)),
            e("z", Operation::Apply, Some(NOW)),
            e("b", Operation::Apply, Some(LATER)),
            e("y", Operation::Apply, None),
        ];
        sort_entries(&mut v);
        let names: Vec<&str> = v.iter().map(|e| e.manager.as_str()).collect();
        assert_eq!(names, ["y", "z", "b", "a"]);
    }
}
