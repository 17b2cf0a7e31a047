//! Secrets: `type` immutable, `immutable`, data keys, and the rules of each built-in type.

use serde_json::Value;

use super::config_map::{config_key_errors, sorted_keys, IMMUTABLE_SET};
use super::errors::{str_at, ErrType, FieldError};

pub(super) fn validate_secret(obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testutil::{rt, secret};
    use super::super::{validate, Op};

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
}
