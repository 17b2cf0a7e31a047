//! `ObjectMeta`: names by kind, labels, annotations, owner references.

use serde_json::Value;

use super::errors::{str_at, ErrType, FieldError};
use crate::registry::ResourceType;
use crate::selectors::{
    dns1123_subdomain_errors, go_quote, label_value_errors, qualified_name_errors,
};

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

pub(super) fn validate_object_meta(rt: &ResourceType, obj: &Value, errs: &mut Vec<FieldError>) {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testutil::{rt, secret};
    use super::super::{validate, Op};

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
}
