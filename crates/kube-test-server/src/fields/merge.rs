//! Merging an applied configuration into the live object, and removing fields by path.

use serde_json::{Map, Value};

use super::apply::item_element;
use super::{ListType, PathElement, Schema};

/// Merges an applied value into a live one: maps by key, list-maps by key and sets by value
/// (in structured-merge-diff's order), anything else replaced. `null` in the configuration
/// removes the field.
pub(super) fn merge_values(
    lhs: Option<&Value>,
    rhs: &Value,
    spath: &str,
    schema: &Schema,
) -> Value {
    match (lhs, rhs) {
        (Some(Value::Object(l)), Value::Object(r)) if !schema.is_atomic_map(spath) => {
            let mut out = Map::new();
            for (k, lv) in l {
                match r.get(k) {
                    Some(Value::Null) => {}
                    Some(rv) => {
                        out.insert(
                            k.clone(),
                            merge_values(Some(lv), rv, &format!("{spath}.{k}"), schema),
                        );
                    }
                    None => {
                        out.insert(k.clone(), lv.clone());
                    }
                }
            }
            for (k, rv) in r {
                if !l.contains_key(k) && !rv.is_null() {
                    out.insert(
                        k.clone(),
                        merge_values(None, rv, &format!("{spath}.{k}"), schema),
                    );
                }
            }
            Value::Object(out)
        }
        (None, Value::Object(r)) | (Some(_), Value::Object(r)) => {
            if schema.is_atomic_map(spath) {
                return rhs.clone();
            }
            let mut out = Map::new();
            for (k, rv) in r {
                if !rv.is_null() {
                    out.insert(
                        k.clone(),
                        merge_values(None, rv, &format!("{spath}.{k}"), schema),
                    );
                }
            }
            Value::Object(out)
        }
        (Some(Value::Array(l)), Value::Array(r)) => match schema.list_type(spath) {
            ListType::Atomic => rhs.clone(),
            lt => Value::Array(merge_lists(l, r, &lt, &format!("{spath}[]"), schema)),
        },
        _ => rhs.clone(),
    }
}

/// structured-merge-diff's associative list merge (`visitListItems`): shared items keep the
/// configuration's order, live-only items stay where they are.
fn merge_lists(
    l: &[Value],
    r: &[Value],
    lt: &ListType,
    item_spath: &str,
    schema: &Schema,
) -> Vec<Value> {
    let l_pes: Vec<PathElement> = l
        .iter()
        .enumerate()
        .map(|(i, v)| item_element(lt, v, i))
        .collect();
    let r_pes: Vec<PathElement> = r
        .iter()
        .enumerate()
        .map(|(i, v)| item_element(lt, v, i))
        .collect();
    let find = |pes: &[PathElement], pe: &PathElement| pes.iter().position(|p| p == pe);
    let shared: Vec<&PathElement> = r_pes
        .iter()
        .filter(|pe| find(&l_pes, pe).is_some())
        .collect();
    let mut shared_i = 0usize;
    let mut next_shared = shared.first().copied();
    let mut merged_rhs: Vec<PathElement> = Vec::new();
    let merge_item = |li: Option<usize>, ri: usize| -> Value {
        match lt {
            ListType::Set => r[ri].clone(),
            _ => merge_values(li.map(|i| &l[i]), &r[ri], item_spath, schema),
        }
    };
    let mut out = Vec::new();
    let (mut li, mut ri) = (0usize, 0usize);
    while li < l.len() || ri < r.len() {
        if li < l.len() && ri < r.len() {
            let pe = &l_pes[li];
            if *pe == r_pes[ri] {
                merged_rhs.push(pe.clone());
                out.push(merge_item(find(&l_pes, pe), ri));
                li += 1;
                ri += 1;
                shared_i += 1;
                next_shared = shared.get(shared_i).copied();
                continue;
            }
            if find(&r_pes, pe).is_some() && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < l.len() {
            let pe = &l_pes[li];
            if find(&r_pes, pe).is_none() {
                out.push(l[li].clone());
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < r.len() {
            let pe = r_pes[ri].clone();
            let first_r = find(&r_pes, &pe).unwrap_or(ri);
            if !merged_rhs.contains(&pe) {
                out.push(merge_item(find(&l_pes, &pe), first_r));
            }
            merged_rhs.push(pe.clone());
            ri += 1;
            if next_shared.is_some_and(|n| *n == pe) {
                shared_i += 1;
                next_shared = shared.get(shared_i).copied();
            }
        }
    }
    out
}

/// Removes the value at `path` from `obj` (a no-op when absent).
pub(super) fn remove_path(obj: &mut Value, path: &[PathElement]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for pe in parents {
        let next = match child_mut(cur, pe) {
            Some(n) => n,
            None => return,
        };
        cur = next;
    }
    match (cur, last) {
        (Value::Object(m), PathElement::Field(name)) => {
            m.shift_remove(name);
        }
        (Value::Array(items), pe) => {
            if let Some(i) = items
                .iter()
                .enumerate()
                .position(|(i, it)| item_matches(it, i, pe))
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

fn child_mut<'v>(v: &'v mut Value, pe: &PathElement) -> Option<&'v mut Value> {
    match (v, pe) {
        (Value::Object(m), PathElement::Field(name)) => m.get_mut(name),
        (Value::Array(items), pe) => items
            .iter_mut()
            .enumerate()
            .find(|(i, it)| item_matches(it, *i, pe))
            .map(|(_, it)| it),
        _ => None,
    }
}

fn item_matches(item: &Value, index: usize, pe: &PathElement) -> bool {
    match pe {
        PathElement::Key(fields) => fields.iter().all(|(k, v)| item.get(k) == Some(v)),
        PathElement::Value(v) => item == v,
        PathElement::Index(i) => *i == index,
        PathElement::Field(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn list_map_merge_keeps_live_only_items_and_config_order() {
        let schema =
            Schema::with_lists(vec![(".items".into(), ListType::Map(vec!["name".into()]))]);
        let live = json!({"items": [{"name": "a", "v": 1}, {"name": "b", "v": 2}]});
        let merged = merge_values(
            Some(&live),
            &json!({"items": [{"name": "c"}, {"name": "a", "v": 5}]}),
            "",
            &schema,
        );
        assert_eq!(
            merged["items"],
            json!([{"name": "c"}, {"name": "a", "v": 5}, {"name": "b", "v": 2}])
        );
        let atomic = merge_values(Some(&json!({"l": [1, 2]})), &json!({"l": [3]}), "", &schema);
        assert_eq!(atomic["l"], json!([3]));
    }
}
