//! What changed between two versions of an object, as field sets.

use serde_json::{Map, Value};

use super::apply::item_element;
use super::{FieldSet, ListType, Path, PathElement, Schema};

/// What changed between two versions of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Comparison {
    pub(super) added: FieldSet,
    pub(super) modified: FieldSet,
    pub(super) removed: FieldSet,
}

pub(super) fn compare(old: &Value, new: &Value, schema: &Schema) -> Comparison {
    let mut c = Comparison::default();
    compare_at(Some(old), Some(new), &mut Vec::new(), "", schema, &mut c);
    c
}

fn compare_at(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut Path,
    spath: &str,
    schema: &Schema,
    c: &mut Comparison,
) {
    let atomic_map = !path.is_empty() && schema.is_atomic_map(spath);
    match (old, new) {
        (Some(Value::Object(_)) | None, Some(Value::Object(_)) | None)
            if !atomic_map && (old.is_some() || new.is_some()) =>
        {
            let empty = Map::new();
            let o = old.and_then(Value::as_object).unwrap_or(&empty);
            let n = new.and_then(Value::as_object).unwrap_or(&empty);
            let keys: Vec<&String> = o
                .keys()
                .chain(n.keys().filter(|k| !o.contains_key(*k)))
                .collect();
            for k in keys {
                path.push(PathElement::Field(k.clone()));
                let child_spath = format!("{spath}.{k}");
                compare_child(o.get(k), n.get(k), path, &child_spath, schema, c);
                path.pop();
            }
        }
        (Some(Value::Array(_)) | None, Some(Value::Array(_)) | None)
            if old.is_some() || new.is_some() =>
        {
            let lt = schema.list_type(spath);
            if lt == ListType::Atomic {
                if old.is_some() && new.is_some() && old != new {
                    c.modified.insert(path);
                }
                return;
            }
            let empty = Vec::new();
            let o = old.and_then(Value::as_array).unwrap_or(&empty);
            let n = new.and_then(Value::as_array).unwrap_or(&empty);
            let o_items: Vec<(PathElement, &Value)> = o
                .iter()
                .enumerate()
                .map(|(i, v)| (item_element(&lt, v, i), v))
                .collect();
            let n_items: Vec<(PathElement, &Value)> = n
                .iter()
                .enumerate()
                .map(|(i, v)| (item_element(&lt, v, i), v))
                .collect();
            let mut seen: Vec<&PathElement> = Vec::new();
            let item_spath = format!("{spath}[]");
            for (pe, _) in o_items.iter().chain(n_items.iter()) {
                if seen.contains(&pe) {
                    continue;
                }
                seen.push(pe);
                let ov = o_items.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
                let nv = n_items.iter().find(|(p, _)| p == pe).map(|(_, v)| *v);
                path.push(pe.clone());
                compare_child(ov, nv, path, &item_spath, schema, c);
                path.pop();
            }
        }
        (Some(o), Some(n)) if o != n => c.modified.insert(path),
        _ => {}
    }
}

fn compare_child(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut Path,
    spath: &str,
    schema: &Schema,
    c: &mut Comparison,
) {
    let kinds_differ = matches!((old, new), (Some(o), Some(n)) if !same_kind(o, n));
    if kinds_differ {
        c.modified.insert(path);
        return;
    }
    compare_at(old, new, path, spath, schema, c);
    match (old, new) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        _ => {}
    }
}

fn same_kind(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
    ) || (!a.is_object() && !a.is_array() && !b.is_object() && !b.is_array())
}
