//! OpenAPI v3 schema validation of custom resources.

use serde_json::{Map, Value};

use super::errors::{ErrType, FieldError};
use super::gofmt::{go_bad_value, go_float, go_value};
use crate::selectors::go_quote;

pub(super) fn schema_types(schema: &Value) -> Option<&str> {
    schema["type"].as_str()
}

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

pub(super) fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Validates `v` against an OpenAPI v3 `schema`, as kube-openapi does for custom resources;
/// `path` is the field path of `v` (dotted, `[i]` for list items).
pub(super) fn validate_schema(schema: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
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
    check_enum(schema, v, path, errs);
    if let Some(n) = v.as_f64() {
        check_number(schema, v, n, path, errs);
    }
    if let Some(text) = v.as_str() {
        check_string(schema, text, path, errs);
    }
    if let Some(a) = v.as_array() {
        check_array(schema, v, a, path, errs);
    }
    if let Some(m) = v.as_object() {
        check_object(schema, m, path, errs);
    }
}

/// `enum`.
fn check_enum(schema: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
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
}

/// `minimum`, `maximum` and their `exclusive` flags.
fn check_number(schema: &Value, v: &Value, n: f64, path: &str, errs: &mut Vec<FieldError>) {
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

/// `minLength` and `maxLength` (in characters).
fn check_string(schema: &Value, text: &str, path: &str, errs: &mut Vec<FieldError>) {
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

/// `minItems`, `maxItems`, then each item against `items`.
fn check_array(schema: &Value, v: &Value, a: &[Value], path: &str, errs: &mut Vec<FieldError>) {
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

/// `required`, then each property against `properties` or `additionalProperties`.
fn check_object(schema: &Value, m: &Map<String, Value>, path: &str, errs: &mut Vec<FieldError>) {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testutil::sealed_secret_type;
    use super::super::{validate, validate_status, Op};
    use crate::registry::from_crd;

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
}
