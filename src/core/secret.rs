//! The plaintext `v1 Secret`: parsed from a manifest, produced by unsealing.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::error::{Error, ErrorKind};
use super::yaml;

/// The exact bytes of one value, wiped from memory when dropped.
pub type SecretBytes = Zeroizing<Vec<u8>>;

pub use super::names::SCOPE_ANNOTATION;

/// Annotations dropped when sealing: kubectl's copy of the last applied object holds every
/// value in plain text.
pub const DROPPED_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// A Secret with its values in memory. Its `Debug` shows the keys, never the values.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PlainSecret {
    pub name: String,
    /// As written in the manifest: absent stays absent (kustomize may set it later).
    pub namespace: Option<String>,
    pub secret_type: String,
    pub immutable: Option<bool>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Final values: `stringData` already merged over `data`.
    pub data: BTreeMap<String, SecretBytes>,
}

impl std::fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainSecret")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("secret_type", &self.secret_type)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl PlainSecret {
    /// `Secret ns/name` or `Secret name`, for error locations.
    pub fn object_ref(&self) -> String {
        object_ref("Secret", self.namespace.as_deref(), &self.name)
    }
}

pub fn object_ref(kind: &str, namespace: Option<&str>, name: &str) -> String {
    // Names come from the manifest: one with a control character (a line break) is shown
    // escaped, so that a message stays on one line.
    let shown = |s: &str| -> String {
        if s.chars().any(char::is_control) {
            format!("{s:?}")
        } else {
            s.to_string()
        }
    };
    match namespace {
        Some(ns) => format!("{kind} {}/{}", shown(ns), shown(name)),
        None => format!("{kind} {}", shown(name)),
    }
}

/// A string from a manifest that may be a secret: wiped on drop, and type errors never quote it.
pub struct SecretText(pub Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = SecretText;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretText, E> {
                Ok(SecretText(Zeroizing::new(v.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SecretText, E> {
                Ok(SecretText(Zeroizing::new(v)))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<SecretText, E> {
                Ok(SecretText(Zeroizing::new(String::new())))
            }
            // Other scalars: refuse without echoing the value.
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretText, E> {
                Err(E::custom("a value is not a string (quote it)"))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretText, E> {
                Err(E::custom("a value is not a string (quote it)"))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretText, E> {
                Err(E::custom("a value is not a string (quote it)"))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretText, E> {
                Err(E::custom("a value is not a string (quote it)"))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSecret {
    metadata: Option<RawMeta>,
    #[serde(rename = "type")]
    secret_type: Option<String>,
    immutable: Option<bool>,
    data: Option<BTreeMap<String, SecretText>>,
    string_data: Option<BTreeMap<String, SecretText>>,
}

/// True for the keys Kubernetes accepts in a Secret: `[-._a-zA-Z0-9]+`, at most 253 bytes.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// A DNS-1123 label (a namespace): lowercase letters, digits and `-`, starting and ending
/// with a letter or digit, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS-1123 subdomain (a Secret's name): DNS-1123 labels joined with `.`, at most 253
/// characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty() && l.len() <= 253 && {
                let b = l.as_bytes();
                b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                    && b[0] != b'-'
                    && b[b.len() - 1] != b'-'
            }
        })
}

/// Refuses a name or namespace Kubernetes would refuse for a Secret: the name must be a
/// DNS-1123 subdomain, the namespace a DNS-1123 label. (A namespace such as `prod/db` would
/// otherwise read as a strict binding's `namespace/name`.)
pub fn check_names(name: &str, namespace: Option<&str>) -> Result<(), ErrorKind> {
    if !is_dns1123_subdomain(name) {
        return Err(ErrorKind::InvalidObjectName {
            field: "metadata.name",
            rule: "a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit, at most 253 characters",
        });
    }
    if let Some(ns) = namespace {
        if !is_dns1123_label(ns) {
            return Err(ErrorKind::InvalidObjectName {
                field: "metadata.namespace",
                rule: "a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters",
            });
        }
    }
    Ok(())
}

/// A Secret's name, namespace and whether it holds values, read without holding any value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSummary {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub has_values: bool,
}

impl SecretSummary {
    pub fn object_ref(&self) -> String {
        object_ref(
            "Secret",
            self.namespace.as_deref(),
            self.name.as_deref().unwrap_or("<unnamed>"),
        )
    }
}

pub fn summarize(doc: &yaml::RawDocument<'_>) -> Result<SecretSummary, ErrorKind> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Meta {
        name: Option<String>,
        namespace: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Fields {
        metadata: Option<Meta>,
        data: Option<BTreeMap<String, serde::de::IgnoredAny>>,
        string_data: Option<BTreeMap<String, serde::de::IgnoredAny>>,
    }
    let f: Fields = yaml::parse(doc)?;
    let (name, namespace) = f
        .metadata
        .map(|m| (m.name, m.namespace))
        .unwrap_or_default();
    Ok(SecretSummary {
        name,
        namespace,
        has_values: f.data.is_some_and(|m| !m.is_empty())
            || f.string_data.is_some_and(|m| !m.is_empty()),
    })
}

/// Whether a Secret manifest holds values at all (a service-account-token placeholder does not).
pub fn has_values(raw: &Value) -> bool {
    ["data", "stringData"].iter().any(|f| match raw.get(f) {
        Some(Value::Object(m)) => !m.is_empty(),
        _ => false,
    })
}

/// Parses a `v1 Secret` document. The error's key is set when one value is at fault.
pub fn parse_secret(doc: &yaml::RawDocument<'_>) -> Result<PlainSecret, Error> {
    let raw: RawSecret = yaml::parse(doc)?;
    from_raw(raw)
}

fn from_raw(raw: RawSecret) -> Result<PlainSecret, Error> {
    let at = |key: &str, kind: ErrorKind| Error::from(kind).at_key(key);
    let meta = raw.metadata.unwrap_or_default();
    let name = meta
        .name
        .filter(|n| !n.is_empty())
        .ok_or(ErrorKind::MissingField("metadata.name"))?;
    let mut data = BTreeMap::new();
    for (key, SecretText(text)) in raw.data.unwrap_or_default() {
        if !is_valid_key(&key) {
            return Err(at(&key, ErrorKind::InvalidKeyName));
        }
        let compact: Zeroizing<Vec<u8>> =
            Zeroizing::new(text.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
        let mut bytes = Zeroizing::new(Vec::with_capacity(compact.len()));
        base64::engine::general_purpose::STANDARD
            .decode_vec(&compact[..], &mut bytes)
            .map_err(|_| at(&key, ErrorKind::InvalidBase64))?;
        data.insert(key, bytes);
    }
    // stringData wins over data on the same key, as in Kubernetes.
    for (key, SecretText(text)) in raw.string_data.unwrap_or_default() {
        if !is_valid_key(&key) {
            return Err(at(&key, ErrorKind::InvalidKeyName));
        }
        let mut text = text;
        let bytes = Zeroizing::new(std::mem::take(&mut *text).into_bytes());
        data.insert(key, bytes);
    }
    let mut annotations = meta.annotations.unwrap_or_default();
    for dropped in DROPPED_ANNOTATIONS {
        annotations.remove(*dropped);
    }
    Ok(PlainSecret {
        name,
        namespace: meta.namespace.filter(|ns| !ns.is_empty()),
        secret_type: raw
            .secret_type
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "Opaque".to_string()),
        immutable: raw.immutable,
        labels: meta.labels.unwrap_or_default(),
        annotations,
        data,
    })
}

/// Writes a Secret manifest for people to read: UTF-8 values as `stringData`, others as
/// base64 `data`. The text holds plaintext, so it goes into a zeroizing buffer sized up front.
pub fn render_secret(secret: &PlainSecret, json: bool) -> Zeroizing<String> {
    let mut head = Map::new();
    head.insert("apiVersion".into(), "v1".into());
    head.insert("kind".into(), "Secret".into());
    head.insert(
        "metadata".into(),
        metadata_value(
            &secret.name,
            secret.namespace.as_deref(),
            &secret.labels,
            &secret.annotations,
        ),
    );
    head.insert("type".into(), secret.secret_type.clone().into());
    if let Some(immutable) = secret.immutable {
        head.insert("immutable".into(), immutable.into());
    }
    // Sized once: growing would leave unwiped copies. The worst cases are base64 (4/3), JSON
    // escapes (6 bytes for a control character) and a literal block of short lines (each
    // line indented by 4), so 6x plus the key covers every value.
    let size: usize = secret
        .data
        .iter()
        .map(|(k, v)| v.len() * 6 + k.len() + 64)
        .sum::<usize>()
        + 1024;
    let mut out = Zeroizing::new(String::with_capacity(size));
    if json {
        // Plaintext values only ever pass through `out`.
        let head_text = yaml::to_json(&Value::Object(head));
        let head_text = head_text
            .trim_end()
            .strip_suffix('}')
            .unwrap_or(&head_text)
            .trim_end();
        out.push_str(head_text);
        let (text, binary): (Vec<_>, Vec<_>) = secret.data.iter().partition(|(_, v)| is_text(v));
        for (field, entries) in [("stringData", &text), ("data", &binary)] {
            if entries.is_empty() {
                continue;
            }
            out.push_str(",\n  \"");
            out.push_str(field);
            out.push_str("\": {");
            for (i, (k, v)) in entries.iter().enumerate() {
                out.push_str(if i == 0 { "\n    " } else { ",\n    " });
                out.push_str(&serde_json::to_string(k).expect("string"));
                out.push_str(": ");
                if field == "data" {
                    out.push('"');
                    base64::engine::general_purpose::STANDARD.encode_string(&v[..], &mut out);
                    out.push('"');
                } else {
                    json_string_into(&mut out, std::str::from_utf8(v).expect("partitioned"));
                }
            }
            out.push_str("\n  }");
        }
        out.push_str("\n}\n");
        return out;
    }
    out.push_str(&yaml::to_yaml(&Value::Object(head)));
    let (text, binary): (Vec<_>, Vec<_>) = secret.data.iter().partition(|(_, v)| is_text(v));
    if !binary.is_empty() {
        out.push_str("data:\n");
        for (k, v) in binary {
            out.push_str("  ");
            yaml::write_str_scalar(&mut out, k, 2);
            out.push_str(": ");
            base64::engine::general_purpose::STANDARD.encode_string(&v[..], &mut out);
            out.push('\n');
        }
    }
    if !text.is_empty() {
        out.push_str("stringData:\n");
        for (k, v) in text {
            out.push_str("  ");
            yaml::write_str_scalar(&mut out, k, 2);
            out.push_str(": ");
            yaml::write_str_scalar(&mut out, std::str::from_utf8(v).expect("partitioned"), 4);
            out.push('\n');
        }
    }
    out
}

/// Values shown as `stringData`: UTF-8 without control characters other than tab and line
/// breaks. Everything else is shown as base64 `data`.
fn is_text(v: &[u8]) -> bool {
    std::str::from_utf8(v).is_ok_and(|s| {
        // YAML's printable set: no control characters but tab and line breaks, and not
        // U+FFFE/U+FFFF, which a YAML reader refuses.
        !s.chars().any(|c| {
            (c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
                || matches!(c, '\u{FFFE}' | '\u{FFFF}')
        })
    })
}

fn json_string_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `{name, namespace?, labels?, annotations?}` with empty maps left out.
pub fn metadata_value(
    name: &str,
    namespace: Option<&str>,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), name.into());
    if let Some(ns) = namespace {
        m.insert("namespace".into(), ns.into());
    }
    if !labels.is_empty() {
        m.insert("labels".into(), string_map(labels));
    }
    if !annotations.is_empty() {
        m.insert("annotations".into(), string_map(annotations));
    }
    Value::Object(m)
}

pub fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_as_kubernetes_reads_them() {
        for ok in ["db", "a.b-c", "0x", &"a".repeat(253)] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        for bad in [
            "",
            "Db",
            "a/b",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a_b",
            &"a".repeat(254),
        ] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
        for ok in ["prod", "a-1", &"a".repeat(63)] {
            assert!(is_dns1123_label(ok), "{ok}");
        }
        for bad in ["", "prod/db", "a.b", "-a", "a-", "Prod", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
        assert!(check_names("db", Some("prod")).is_ok());
        assert!(check_names("db", None).is_ok());
        assert!(matches!(
            check_names("db", Some("prod/db")),
            Err(ErrorKind::InvalidObjectName {
                field: "metadata.namespace",
                ..
            })
        ));
    }

    #[test]
    fn debug_output_never_shows_a_value() {
        let mut secret = PlainSecret {
            name: "db".into(),
            ..PlainSecret::default()
        };
        secret
            .data
            .insert("password".into(), Zeroizing::new(b"hunter2".to_vec()));
        let shown = format!("{secret:?}");
        assert!(
            shown.contains("password") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn object_names_stay_on_one_line() {
        assert_eq!(object_ref("Secret", Some("ns"), "db"), "Secret ns/db");
        assert_eq!(
            object_ref("Secret", None, "db\nok: all good"),
            "Secret \"db\\nok: all good\""
        );
    }

    #[test]
    fn characters_yaml_refuses_make_a_value_binary() {
        assert!(is_text("tab\there\nline".as_bytes()));
        assert!(!is_text("a\u{FFFE}b".as_bytes()));
        assert!(!is_text("a\u{1b}b".as_bytes()));
    }
}
