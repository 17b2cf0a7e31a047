//! Helpers on objects as JSON values: metadata access, canonical key order, timestamps.

use serde_json::{Map, Value};

/// RFC 3339 with second precision, as `metav1.Time` is written.
pub fn now_time() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The object's `metadata` map, created when missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let o = obj.as_object_mut().expect("object");
    let m = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut().expect("metadata object")
}

pub fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(key)?.as_str()
}

pub fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.get("labels")?.as_object()
}

/// The order kube-apiserver writes `ObjectMeta` in (Go struct order).
pub const META_ORDER: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Put `kind`, `apiVersion` and `metadata` first and metadata in struct order, as a built-in
/// type's JSON comes out of kube-apiserver.
pub fn canonical_builtin(obj: Value) -> Value {
    let Value::Object(mut o) = obj else {
        return obj;
    };
    let mut out = Map::new();
    for k in ["kind", "apiVersion"] {
        if let Some(v) = o.shift_remove(k) {
            out.insert(k.into(), v);
        }
    }
    if let Some(Value::Object(mut m)) = o.shift_remove("metadata") {
        let mut meta = Map::new();
        for k in META_ORDER {
            if let Some(v) = m.shift_remove(*k) {
                meta.insert((*k).into(), v);
            }
        }
        meta.extend(m);
        out.insert("metadata".into(), Value::Object(meta));
    }
    out.extend(o);
    Value::Object(out)
}

/// Custom resources are unstructured: Go writes their maps with keys sorted.
pub fn sorted(v: Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut entries: Vec<(String, Value)> = o.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The object without `metadata.managedFields` times: what decides whether a write changed
/// anything (an identical re-apply is not a write).
pub fn without_volatile(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(mf) = v
        .get_mut("metadata")
        .and_then(|m| m.get_mut("managedFields"))
        .and_then(Value::as_array_mut)
    {
        for e in mf {
            if let Some(e) = e.as_object_mut() {
                e.shift_remove("time");
            }
        }
    }
    v
}

/// Everything but `metadata` and `status`: what moves `metadata.generation`.
pub fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(o) = v.as_object_mut() {
        o.shift_remove("metadata");
        o.shift_remove("status");
        o.shift_remove("kind");
        o.shift_remove("apiVersion");
    }
    v
}

/// A name from `generateName`: the prefix and five characters, as the real generator does.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let suffix: String = bytes[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// Standard base64, for `stringData` folded into `data`.
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Standard base64 decoding (padding optional); `None` for anything else.
pub fn base64_decode(input: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s = input.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= val(*c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_recorded_values() {
        // create-get-conflict.json: stringData {t: text, k: wins} became these.
        assert_eq!(base64(b"text"), "dGV4dA==");
        assert_eq!(base64(b"wins"), "d2lucw==");
        assert_eq!(base64(b"value"), "dmFsdWU=");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn builtin_order_puts_kind_and_metadata_first() {
        let v = serde_json::json!({"data": {}, "metadata": {"uid": "u", "name": "n"}, "apiVersion": "v1", "kind": "Secret"});
        let s = serde_json::to_string(&canonical_builtin(v)).unwrap();
        assert_eq!(
            s,
            r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"n","uid":"u"},"data":{}}"#
        );
    }
}
