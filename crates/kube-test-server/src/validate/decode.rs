//! Decoding: what the real server finds while decoding a written object into its typed form
//! (MicroTime values, `map[string]string` fields, typed apply of custom resources).

use serde_json::Value;

use super::errors::{bad_request, internal, invalid, name_of, str_at, ErrType, FieldError};
use super::gofmt::{go_json, go_type_name, go_value};
use super::schema::schema_types;
use super::{Op, Rejection};
use crate::registry::ResourceType;
use crate::selectors::go_quote;

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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testutil::{ev_rt, event, rt, sealed_secret_type};
    use super::*;

    #[test]
    fn a_yaml_1_1_boolean_in_configmap_data_does_not_decode() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "demo"}, "data": {"enabled": true}});
        let apply = check_decode(&rt("", "ConfigMap"), &obj, Op::Apply, None).unwrap_err();
        assert_eq!(apply.status, 500);
        assert!(apply.body["message"]
            .as_str()
            .unwrap()
            .contains(".data.enabled: expected string"));
        let create = check_decode(&rt("", "ConfigMap"), &obj, Op::Create, None).unwrap_err();
        assert_eq!(create.status, 400);
        assert_eq!(create.body["reason"], "BadRequest");
        let fine = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "s", "labels": {"a": "b"}}, "data": {"enabled": "true"}});
        assert!(check_decode(&rt("", "ConfigMap"), &fine, Op::Apply, None).is_ok());
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
}
