//! The three non-apply patch formats kube-apiserver accepts, on plain `serde_json::Value`s:
//! JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.
//!
//! Pure functions: the caller picks the format from the Content-Type (a strategic merge patch
//! of a custom resource is 415 on a real server) and validates the result.

use serde_json::{Map, Value};

use crate::fields::{ListType, Schema};

/// The message of the 422 `Status` (reason `Invalid`, empty `details`) a real server answers
/// when a JSON patch cannot be applied, a failing `test` op included
/// (strategic-merge-and-json-patch.json).
pub const JSON_PATCH_REJECTED: &str =
    "the server rejected our request due to an error in our request";

/// Applies a JSON merge patch (RFC 7386): objects merge key by key, `null` deletes a key,
/// anything else (arrays included) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (k, v) in patch {
            if v.is_null() {
                map.shift_remove(k);
            } else {
                merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Applies a JSON patch (RFC 6902: add, remove, replace, move, copy, test) to a copy of `doc`.
///
/// Errors: [`JSON_PATCH_REJECTED`] when an operation fails (the server's 422 message; the
/// failing operation is not named), or, when `ops` is not a list, the decoding message the
/// server answers with 400 BadRequest.
pub fn json_patch(doc: &Value, ops: &Value) -> Result<Value, String> {
    let Value::Array(ops) = ops else {
        let what = match ops {
            Value::Object(_) => "object",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            _ => "null",
        };
        return Err(format!(
            "json: cannot unmarshal {what} into Go value of type jsonpatch.Patch"
        ));
    };
    let mut doc = doc.clone();
    for op in ops {
        apply_op(&mut doc, op).map_err(|_| JSON_PATCH_REJECTED.to_string())?;
    }
    Ok(doc)
}

/// Why one JSON patch operation failed (kept for debugging; the server does not say).
#[derive(Debug)]
struct OpError(#[allow(dead_code)] String);

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), OpError> {
    let kind = op
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| OpError("missing op".into()))?;
    let path = op
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| OpError("missing path".into()))?;
    let value = || {
        op.get("value")
            .cloned()
            .ok_or_else(|| OpError("missing value".into()))
    };
    let from = || {
        op.get("from")
            .and_then(Value::as_str)
            .ok_or_else(|| OpError("missing from".into()))
    };
    match kind {
        "add" => add(doc, &pointer(path)?, value()?),
        "remove" => remove(doc, &pointer(path)?).map(drop),
        "replace" => {
            let tokens = pointer(path)?;
            let slot = get_mut(doc, &tokens).ok_or_else(|| OpError("missing path".into()))?;
            *slot = value()?;
            Ok(())
        }
        "move" => {
            let taken = remove(doc, &pointer(from()?)?)?;
            add(doc, &pointer(path)?, taken)
        }
        "copy" => {
            let tokens = pointer(from()?)?;
            let copied = get_mut(doc, &tokens)
                .map(|v| v.clone())
                .ok_or_else(|| OpError("missing from".into()))?;
            add(doc, &pointer(path)?, copied)
        }
        "test" => {
            let tokens = pointer(path)?;
            match get_mut(doc, &tokens) {
                Some(v) if *v == value()? => Ok(()),
                _ => Err(OpError("test failed".into())),
            }
        }
        other => Err(OpError(format!("unexpected op {other}"))),
    }
}

fn pointer(path: &str) -> Result<Vec<String>, OpError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(OpError(format!("invalid pointer {path}")));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn get_mut<'v>(doc: &'v mut Value, tokens: &[String]) -> Option<&'v mut Value> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(items) => items.get_mut(array_index(t)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn array_index(t: &str) -> Option<usize> {
    if t.len() > 1 && t.starts_with('0') {
        return None;
    }
    t.parse().ok()
}

fn add(doc: &mut Value, tokens: &[String], value: Value) -> Result<(), OpError> {
    let Some((last, parents)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    let parent = get_mut(doc, parents).ok_or_else(|| OpError("missing parent".into()))?;
    match parent {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let i = if last == "-" {
                items.len()
            } else {
                array_index(last).ok_or_else(|| OpError("bad index".into()))?
            };
            if i > items.len() {
                return Err(OpError("index out of range".into()));
            }
            items.insert(i, value);
            Ok(())
        }
        _ => Err(OpError("parent is not a container".into())),
    }
}

fn remove(doc: &mut Value, tokens: &[String]) -> Result<Value, OpError> {
    let (last, parents) = tokens
        .split_last()
        .ok_or_else(|| OpError("cannot remove the root".into()))?;
    let parent = get_mut(doc, parents).ok_or_else(|| OpError("missing parent".into()))?;
    match parent {
        Value::Object(m) => m
            .shift_remove(last)
            .ok_or_else(|| OpError("missing key".into())),
        Value::Array(items) => {
            let i = array_index(last).ok_or_else(|| OpError("bad index".into()))?;
            if i >= items.len() {
                return Err(OpError("index out of range".into()));
            }
            Ok(items.remove(i))
        }
        _ => Err(OpError("parent is not a container".into())),
    }
}

/// Applies a strategic merge patch: maps merge key by key, `null` deletes a key, lists the
/// schema declares as maps merge item by item on their first key (the patch merge key), sets
/// merge by value, other lists are replaced. Directives: `$patch: replace` and
/// `$patch: delete` in maps and in list-map items, `$retainKeys`,
/// `$deleteFromPrimitiveList/<field>`; `$setElementOrder/<field>` is accepted and ignored.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value, schema: &Schema) {
    smp_value(target, patch, "", schema);
}

fn smp_value(target: &mut Value, patch: &Value, spath: &str, schema: &Schema) {
    match patch {
        Value::Object(p) => {
            match p.get("$patch").and_then(Value::as_str) {
                Some("replace") => {
                    *target = clean(patch);
                    return;
                }
                Some("delete") => {
                    *target = Value::Object(Map::new());
                    return;
                }
                _ => {}
            }
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let Value::Object(t) = target else {
                return;
            };
            if let Some(Value::Array(keep)) = p.get("$retainKeys") {
                let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
                t.retain(|k, _| keep.contains(&k.as_str()));
            }
            for (k, v) in p {
                if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(items)), Value::Array(gone)) = (t.get_mut(field), v) {
                        items.retain(|i| !gone.contains(i));
                    }
                    continue;
                }
                if k.starts_with('$') {
                    continue;
                }
                let deletes =
                    v.is_null() || v.get("$patch").and_then(Value::as_str) == Some("delete");
                if deletes {
                    t.shift_remove(k);
                    continue;
                }
                let child_spath = format!("{spath}.{k}");
                match t.get_mut(k) {
                    Some(existing) => smp_value(existing, v, &child_spath, schema),
                    None => {
                        let mut fresh = Value::Null;
                        smp_value(&mut fresh, v, &child_spath, schema);
                        t.insert(k.clone(), fresh);
                    }
                }
            }
        }
        Value::Array(items) => match (schema_list_type(schema, spath), &mut *target) {
            (ListType::Map(keys), Value::Array(existing)) if !keys.is_empty() => {
                smp_list_map(existing, items, &keys[0], spath, schema)
            }
            (ListType::Set, Value::Array(existing)) => {
                for item in items {
                    if !existing.contains(item) {
                        existing.push(item.clone());
                    }
                }
            }
            _ => *target = clean(patch),
        },
        _ => *target = patch.clone(),
    }
}

fn smp_list_map(
    existing: &mut Vec<Value>,
    items: &[Value],
    key: &str,
    spath: &str,
    schema: &Schema,
) {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *existing = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .map(clean)
            .collect();
        return;
    }
    let item_spath = format!("{spath}[]");
    for item in items {
        let id = item.get(key);
        let pos = id.and_then(|id| existing.iter().position(|e| e.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => smp_value(&mut existing[i], item, &item_spath, schema),
            (None, false) => existing.push(clean(item)),
        }
    }
}

fn schema_list_type(schema: &Schema, spath: &str) -> ListType {
    schema.list_type_of(spath)
}

/// A patch value as stored: directives and `null` keys removed.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(clean).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (mut target, patch, want) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, want, "patch {patch}");
        }
    }

    /// patch-update-optimistic.json step 3: `null` deletes a label, the rest stays in order.
    #[test]
    fn merge_patch_null_keeps_key_order() {
        let mut s = json!({"metadata": {"labels": {"app": "a", "extra": "x", "z": "1"}}});
        merge_patch(&mut s, &json!({"metadata": {"labels": {"extra": null}}}));
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"metadata":{"labels":{"app":"a","z":"1"}}}"#
        );
    }

    /// strategic-merge-and-json-patch.json steps 5 and 6.
    #[test]
    fn json_patch_test_op_passes_and_fails() {
        let lease = json!({"spec": {"holderIdentity": "pod-b", "leaseDurationSeconds": 15}});
        let ok = json_patch(
            &lease,
            &json!([{"op": "test", "path": "/spec/holderIdentity", "value": "pod-b"},
                {"op": "replace", "path": "/spec/holderIdentity", "value": "pod-c"}]),
        )
        .unwrap();
        assert_eq!(ok["spec"]["holderIdentity"], "pod-c");
        let err = json_patch(
            &ok,
            &json!([{"op": "test", "path": "/spec/holderIdentity", "value": "pod-a"},
                {"op": "replace", "path": "/spec/holderIdentity", "value": "pod-d"}]),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "the server rejected our request due to an error in our request"
        );
    }

    #[test]
    fn json_patch_operations() {
        let doc = json!({"a": {"b": [1, 2]}, "k/x": 1, "t~": 2});
        let out = json_patch(
            &doc,
            &json!([
                {"op": "add", "path": "/a/b/1", "value": 9},
                {"op": "add", "path": "/a/b/-", "value": 3},
                {"op": "remove", "path": "/k~1x"},
                {"op": "replace", "path": "/t~0", "value": 5},
                {"op": "copy", "from": "/a/b", "path": "/c"},
                {"op": "move", "from": "/c/0", "path": "/first"},
                {"op": "test", "path": "/a/b", "value": [1, 9, 2, 3]}
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"a": {"b": [1, 9, 2, 3]}, "t~": 5, "c": [9, 2, 3], "first": 1})
        );
        assert_eq!(doc["k/x"], 1, "the input is not modified");
        for bad in [
            json!([{"op": "remove", "path": "/missing"}]),
            json!([{"op": "replace", "path": "/missing", "value": 1}]),
            json!([{"op": "add", "path": "/no/parent", "value": 1}]),
            json!([{"op": "add", "path": "/a/b/7", "value": 1}]),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"op": "add", "path": "/a"}]),
        ] {
            assert_eq!(
                json_patch(&doc, &bad).unwrap_err(),
                JSON_PATCH_REJECTED,
                "{bad}"
            );
        }
        assert_eq!(
            json_patch(&doc, &json!({"op": "add"})).unwrap_err(),
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
    }

    /// strategic-merge-and-json-patch.json step 8.
    #[test]
    fn strategic_patch_secret_null_deletes_key() {
        let mut secret = json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "smp"},
            "data": {"a": "YQ==", "b": "Yg=="}, "type": "Opaque"});
        strategic_merge_patch(
            &mut secret,
            &json!({"data": {"b": null, "c": "Yw=="}, "metadata": {"labels": {"x": "1"}}}),
            &Schema::for_builtin(),
        );
        assert_eq!(secret["data"], json!({"a": "YQ==", "c": "Yw=="}));
        assert_eq!(secret["metadata"]["labels"], json!({"x": "1"}));
        assert_eq!(secret["type"], "Opaque");
    }

    #[test]
    fn strategic_patch_lists_by_schema() {
        let schema = Schema::with_lists(vec![(
            ".status.conditions".into(),
            ListType::Map(vec!["type".into()]),
        )]);
        let mut obj = json!({
            "metadata": {"finalizers": ["a"], "ownerReferences": [{"uid": "1", "name": "x"}]},
            "spec": {"args": ["x", "y"]},
            "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Old", "status": "True"}]}
        });
        strategic_merge_patch(
            &mut obj,
            &json!({
                "metadata": {"finalizers": ["b", "a"], "ownerReferences": [{"uid": "1", "name": "y"}, {"uid": "2"}]},
                "spec": {"args": ["z"]},
                "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Old", "$patch": "delete"}]}
            }),
            &schema,
        );
        assert_eq!(obj["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(
            obj["metadata"]["ownerReferences"],
            json!([{"uid": "1", "name": "y"}, {"uid": "2"}])
        );
        assert_eq!(
            obj["spec"]["args"],
            json!(["z"]),
            "lists not in the schema are replaced"
        );
        assert_eq!(
            obj["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}])
        );
    }

    #[test]
    fn strategic_patch_directives() {
        let schema = Schema::for_builtin();
        let mut obj = json!({"spec": {"a": 1, "b": 2}, "keep": {"x": 1, "y": 2}, "gone": {"z": 1},
            "metadata": {"finalizers": ["a", "b", "c"]}});
        strategic_merge_patch(
            &mut obj,
            &json!({
                "spec": {"$patch": "replace", "c": 3},
                "keep": {"$retainKeys": ["x", "w"], "w": 4},
                "gone": {"$patch": "delete"},
                "metadata": {"$deleteFromPrimitiveList/finalizers": ["b"], "$setElementOrder/finalizers": ["a", "c"]}
            }),
            &schema,
        );
        assert_eq!(
            obj,
            json!({"spec": {"c": 3}, "keep": {"x": 1, "w": 4}, "metadata": {"finalizers": ["a", "c"]}})
        );
    }
}
