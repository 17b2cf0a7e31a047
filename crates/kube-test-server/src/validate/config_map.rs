//! ConfigMaps, and the config key rule and `immutable` Secrets share.

use serde_json::Value;

use super::errors::FieldError;

pub(super) const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

/// `validation.IsConfigMapKey`.
pub(super) fn config_key_errors(key: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if key.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        errs.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string());
    }
    if key == "." {
        errs.push("must not be '.'".to_string());
    } else if key == ".." {
        errs.push("must not be '..'".to_string());
    } else if key.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

pub(super) fn sorted_keys(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

pub(super) fn validate_config_map(obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    if let Some(old) = old {
        if old["immutable"].as_bool() == Some(true) {
            if obj["immutable"].as_bool() != Some(true) {
                errs.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
            }
            if obj.get("data") != old.get("data") {
                errs.push(FieldError::forbidden("data", IMMUTABLE_SET));
            }
            if obj.get("binaryData") != old.get("binaryData") {
                errs.push(FieldError::forbidden("binaryData", IMMUTABLE_SET));
            }
        }
    }
    let data = sorted_keys(&obj["data"]);
    for k in &data {
        for m in config_key_errors(k) {
            errs.push(FieldError::invalid_str(format!("data[{k}]"), k, m));
        }
    }
    for k in sorted_keys(&obj["binaryData"]) {
        for m in config_key_errors(&k) {
            errs.push(FieldError::invalid_str(format!("binaryData[{k}]"), &k, m));
        }
        if data.contains(&k) {
            errs.push(FieldError::invalid_str(
                format!("binaryData[{k}]"),
                &k,
                "duplicate of key present in data",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testutil::rt;
    use super::super::{validate, Op};

    #[test]
    fn config_keys_and_config_map_immutable() {
        let cm = rt("", "ConfigMap");
        let obj = json!({"metadata": {"name": "c"}, "data": {"bad key": "x"}});
        let err = validate(&cm, &obj, None, Op::Create).unwrap_err();
        assert_eq!(
            err.body["message"],
            "ConfigMap \"c\" is invalid: data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
        );
        let s = rt("", "Secret");
        let obj = json!({"metadata": {"name": "s"}, "stringData": {"..x": "y"}});
        let err = validate(&s, &obj, None, Op::Create).unwrap_err();
        assert_eq!(
            err.body["message"],
            "Secret \"s\" is invalid: data[..x]: Invalid value: \"..x\": must not start with '..'"
        );
        let old = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "1"}});
        let new = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"a": "2"}});
        let err = validate(&cm, &new, Some(&old), Op::Update).unwrap_err();
        assert_eq!(err.body["details"]["causes"][0]["field"], "data");
        assert_eq!(
            err.body["details"]["causes"][0]["message"],
            "Forbidden: field is immutable when `immutable` is set"
        );
    }
}
