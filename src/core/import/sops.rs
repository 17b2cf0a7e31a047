//! SOPS files sealed for age: the data key, the values and the MAC, as getsops/sops writes them
//! (`aes/cipher.go`, `sops.go`, `stores/`).
//!
//! * The 32-byte data key is an armored age file under `sops.age[].enc`.
//! * A value is `ENC[AES256_GCM,data:B64,iv:B64,tag:B64,type:T]`: AES-256-GCM with a 32-byte
//!   IV, whose additional data is the value's path — the mapping keys from the root joined with
//!   `:`, then `:` (`data:password:`; sequence items share their key's path).
//! * Which values are encrypted is decided by the file's rule (`unencrypted_suffix`, default
//!   `_unencrypted`; `encrypted_suffix`; `unencrypted_regex`; `encrypted_regex`): a path
//!   component that matches decides.
//! * `sops.mac` is `ENC[...]` (additional data: `lastmodified` as RFC 3339) of the upper-case hex
//!   SHA-512 over every value's plaintext in document order (strings as they are, integers in
//!   decimal, floats in shortest decimal, booleans as `True`/`False`; nulls and comments are not
//!   hashed), or with `mac_only_encrypted` over the encrypted ones only, after a fixed prefix.
//!
//! A multi-document YAML file carries the same `sops` block in every document, and one MAC
//! covers the values of all of them.

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, KeyInit};
use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use crate::core::error::{Error, ErrorKind};
use crate::core::keys::Identity;
use crate::core::yaml;

/// AES-256-GCM with SOPS's 32-byte IVs.
type SopsGcm = AesGcm<Aes256, U32>;

/// The key every SOPS document keeps its metadata under.
pub const METADATA_KEY: &str = "sops";

/// `sha256("sops")`: the SHA-512 MAC starts with these bytes when `mac_only_encrypted` is set.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Key types SOPS can seal a data key for, besides age (`sops.<field>`).
const OTHER_KEY_TYPES: &[(&str, &str)] = &[
    ("kms", "AWS KMS"),
    ("gcp_kms", "GCP KMS"),
    ("azure_kv", "Azure Key Vault"),
    ("hc_vault", "HashiCorp Vault"),
    ("hckms", "HuaweiCloud KMS"),
    ("pgp", "PGP"),
];

/// Which values a file encrypts.
#[derive(Debug)]
enum Rule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(regex::Regex),
    EncryptedRegex(regex::Regex),
}

impl Rule {
    /// `shouldBeEncrypted` in sops.go, for values (not comments).
    fn encrypts(&self, path: &[String]) -> bool {
        match self {
            Rule::UnencryptedSuffix(s) => !path.iter().any(|p| p.ends_with(s.as_str())),
            Rule::EncryptedSuffix(s) => path.iter().any(|p| p.ends_with(s.as_str())),
            Rule::UnencryptedRegex(r) => !path.iter().any(|p| r.is_match(p)),
            Rule::EncryptedRegex(r) => path.iter().any(|p| r.is_match(p)),
        }
    }
}

/// The `sops` block of a file, as far as opening it needs.
#[derive(Debug)]
pub struct Metadata {
    /// Armored age files, each holding the data key.
    age: Vec<String>,
    /// The other key types the data key is sealed for (for the error when there is no age).
    others: Vec<&'static str>,
    lastmodified: String,
    mac: String,
    rule: Rule,
    mac_only_encrypted: bool,
}

/// True when a document (parsed) carries SOPS metadata.
/// Any of `mac`, `lastmodified` and `version` marks it (a file whose MAC was cut out is still a
/// SOPS file, refused for it, not passed through as if it held nothing to import).
pub fn has_metadata(doc: &Value) -> bool {
    doc.get(METADATA_KEY)
        .and_then(Value::as_object)
        .is_some_and(|m| {
            ["mac", "lastmodified", "version"]
                .iter()
                .any(|k| m.contains_key(*k))
        })
}

impl Metadata {
    /// Reads the `sops` block of a document.
    pub fn parse(doc: &Value) -> Result<Self, ErrorKind> {
        let unsupported = |m: &str| ErrorKind::SopsUnsupported(m.to_string());
        let m = doc
            .get(METADATA_KEY)
            .and_then(Value::as_object)
            .ok_or_else(|| unsupported("sops metadata is missing or not a mapping"))?;
        let text = |k: &str| m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let groups = m.get("key_groups").and_then(Value::as_array);
        let source: &Map<String, Value> = match groups.map(Vec::as_slice) {
            None | Some([]) => m,
            Some([one]) => one
                .as_object()
                .ok_or_else(|| unsupported("sops.key_groups holds a non-mapping"))?,
            Some(_) => {
                return Err(unsupported(
                    "the data key is split over several key groups (Shamir), which gitops-seal does not open",
                ))
            }
        };
        let age: Vec<String> = source
            .get("age")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|k| k.get("enc").and_then(Value::as_str).map(str::to_string))
            .collect();
        let others = OTHER_KEY_TYPES
            .iter()
            .filter(|(k, _)| {
                source
                    .get(*k)
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
            })
            .map(|(_, name)| *name)
            .collect();
        for comment_rule in ["unencrypted_comment_regex", "encrypted_comment_regex"] {
            if text(comment_rule).is_some() {
                return Err(ErrorKind::SopsUnsupported(format!(
                    "sops.{comment_rule} is not supported (which values it encrypts depends on comments)"
                )));
            }
        }
        let regex = |k: &str, r: &str| {
            regex::Regex::new(r)
                .map_err(|_| ErrorKind::SopsUnsupported(format!("sops.{k} does not compile")))
        };
        let mut rules = Vec::new();
        if let Some(s) = text("unencrypted_suffix") {
            rules.push(Rule::UnencryptedSuffix(s.into()));
        }
        if let Some(s) = text("encrypted_suffix") {
            rules.push(Rule::EncryptedSuffix(s.into()));
        }
        if let Some(r) = text("unencrypted_regex") {
            rules.push(Rule::UnencryptedRegex(regex("unencrypted_regex", r)?));
        }
        if let Some(r) = text("encrypted_regex") {
            rules.push(Rule::EncryptedRegex(regex("encrypted_regex", r)?));
        }
        if rules.len() > 1 {
            return Err(unsupported(
                "more than one of unencrypted_suffix, encrypted_suffix, unencrypted_regex and encrypted_regex",
            ));
        }
        let rule = rules
            .pop()
            .unwrap_or_else(|| Rule::UnencryptedSuffix("_unencrypted".into()));
        Ok(Metadata {
            age,
            others,
            lastmodified: text("lastmodified")
                .ok_or(ErrorKind::MissingField("sops.lastmodified"))?
                .to_string(),
            mac: text("mac")
                .ok_or(ErrorKind::MissingField("sops.mac"))?
                .to_string(),
            rule,
            mac_only_encrypted: m
                .get("mac_only_encrypted")
                .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true")),
        })
    }

    /// Opens the data key with the first age stanza one of `identities` opens.
    pub fn data_key(&self, identities: &[Identity]) -> Result<Zeroizing<Vec<u8>>, ErrorKind> {
        use std::io::Read;
        if self.age.is_empty() {
            return Err(ErrorKind::SopsUnsupportedKeyGroup {
                found: if self.others.is_empty() {
                    "no key type at all".into()
                } else {
                    self.others.join(", ")
                },
            });
        }
        let mut last = ErrorKind::NoMatchingIdentity;
        for armored in &self.age {
            let reader = age::armor::ArmoredReader::new(armored.as_bytes());
            let decryptor = match age::Decryptor::new_buffered(reader) {
                Ok(d) => d,
                Err(e) => {
                    last = crate::core::seal::not_age("invalid SOPS data key", Some(e));
                    continue;
                }
            };
            let mut r = match decryptor.decrypt(identities.iter().map(|i| i as &dyn age::Identity))
            {
                Ok(r) => r,
                Err(age::DecryptError::NoMatchingKeys) => continue,
                Err(_) => {
                    last = ErrorKind::Corrupt;
                    continue;
                }
            };
            let mut key = Zeroizing::new(Vec::with_capacity(64));
            if r.read_to_end(&mut key).is_err() {
                last = ErrorKind::Corrupt;
                continue;
            }
            if key.len() != 32 {
                return Err(ErrorKind::SopsUnsupported(
                    "the SOPS data key is not 32 bytes".into(),
                ));
            }
            return Ok(key);
        }
        Err(last)
    }

    /// The additional data of the MAC: `lastmodified` as Go's `time.RFC3339` prints it back
    /// (fractional seconds dropped, a zero offset written `Z`).
    fn mac_additional_data(&self) -> String {
        let t = &self.lastmodified;
        let mut out = match (t.find('.'), t.find('T')) {
            (Some(dot), Some(tee)) if dot > tee => {
                let digits = t[dot + 1..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(t.len(), |i| dot + 1 + i);
                format!("{}{}", &t[..dot], &t[digits..])
            }
            _ => t.clone(),
        };
        for zero in ["+00:00", "-00:00"] {
            if let Some(stem) = out.strip_suffix(zero) {
                out = format!("{stem}Z");
            }
        }
        out
    }
}

/// One `ENC[...]` value opened: its bytes and its type (`str`, `int`, `float`, `bool`, ...).
fn decrypt_value(
    key: &[u8],
    value: &str,
    additional: &str,
) -> Result<(Zeroizing<Vec<u8>>, String), ErrorKind> {
    let bad = || ErrorKind::ImportTampered("not a SOPS ENC[AES256_GCM,...] value");
    let inner = value
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|v| v.strip_suffix(']'))
        .ok_or_else(bad)?;
    let (mut data, mut iv, mut tag, mut ty) = (None, None, None, None);
    for part in inner.split(',') {
        let (k, v) = part.split_once(':').ok_or_else(bad)?;
        match k {
            "data" => data = Some(v),
            "iv" => iv = Some(v),
            "tag" => tag = Some(v),
            "type" => ty = Some(v),
            _ => return Err(bad()),
        }
    }
    let b64 = |s: Option<&str>| -> Result<Vec<u8>, ErrorKind> {
        base64::engine::general_purpose::STANDARD
            .decode(s.ok_or_else(bad)?)
            .map_err(|_| bad())
    };
    let (iv, tag) = (b64(iv)?, b64(tag)?);
    if iv.len() != 32 || tag.len() != 16 {
        return Err(ErrorKind::SopsUnsupported(
            "a value's IV is not 32 bytes or its tag not 16".into(),
        ));
    }
    let mut buf = Zeroizing::new(b64(data)?);
    let cipher = SopsGcm::new_from_slice(key).map_err(|_| bad())?;
    cipher
        .decrypt_in_place_detached(
            aes_gcm::aead::generic_array::GenericArray::from_slice(&iv),
            additional.as_bytes(),
            &mut buf[..],
            aes_gcm::aead::generic_array::GenericArray::from_slice(&tag),
        )
        .map_err(|_| {
            ErrorKind::ImportTampered(
                "AES-GCM authentication failed: the value was changed or moved to another key",
            )
        })?;
    Ok((buf, ty.ok_or_else(bad)?.to_string()))
}

/// What SOPS hashes for an unencrypted value (`ToBytes` in sops.go), or `None` for a null.
fn plain_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Bool(true) => Some(b"True".to_vec()),
        Value::Bool(false) => Some(b"False".to_vec()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string().into_bytes(),
            (_, Some(u), _) => u.to_string().into_bytes(),
            // Go's FormatFloat(f, 'f', -1, 64): the shortest decimal, no exponent.
            (_, _, Some(f)) => format!("{f}").into_bytes(),
            _ => n.to_string().into_bytes(),
        }),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// The typed value of a decrypted plaintext.
fn typed(bytes: &[u8], ty: &str) -> Result<Value, ErrorKind> {
    let text = || {
        std::str::from_utf8(bytes)
            .map_err(|_| ErrorKind::SopsUnsupported("a decrypted value is not UTF-8".into()))
    };
    Ok(match ty {
        "str" | "time" => Value::String(text()?.to_string()),
        "int" => text()?
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| ErrorKind::SopsUnsupported("an int value does not parse".into()))?,
        "float" => text()?
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| ErrorKind::SopsUnsupported("a float value does not parse".into()))?,
        // Go's strconv.ParseBool, as sops reads it back: anything else is an error there.
        "bool" => match text()? {
            "True" | "true" | "TRUE" | "1" | "t" | "T" => Value::Bool(true),
            "False" | "false" | "FALSE" | "0" | "f" | "F" => Value::Bool(false),
            _ => {
                return Err(ErrorKind::SopsUnsupported(
                    "a bool value does not parse".into(),
                ))
            }
        },
        other => {
            return Err(ErrorKind::SopsUnsupported(format!(
                "values of type {other:?} are not supported"
            )))
        }
    })
}

/// The key paths of one document whose values sops had encrypted (`["metadata", "labels",
/// "tier"]`), in document order: where decrypted bytes now are.
pub type EncryptedPaths = Vec<Vec<String>>;

/// Opens every encrypted value of `docs` (the non-empty documents of one file, in order, their
/// `sops` key already removed) in place, and checks the file's MAC. Returns, per document, the
/// paths of the values it opened. On any error every string of `docs` is wiped (some may
/// already hold plaintext). Where one value is at fault the error names its document (1-based
/// position in `docs`) and its key path (`data:password`).
pub fn decrypt_documents(
    docs: &mut [Value],
    meta: &Metadata,
    key: &[u8],
) -> Result<Vec<EncryptedPaths>, Error> {
    let mut hash = Sha512::new();
    if meta.mac_only_encrypted {
        hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    let mut result = Ok(());
    let mut opened = Vec::with_capacity(docs.len());
    for (i, doc) in docs.iter_mut().enumerate() {
        let mut path = Vec::new();
        let mut paths = Vec::new();
        if let Err(e) = walk(doc, &mut path, meta, key, &mut hash, &mut paths) {
            result = Err(e.in_document(i + 1));
            break;
        }
        opened.push(paths);
    }
    if result.is_ok() {
        let computed: String = hash.finalize().iter().map(|b| format!("{b:02X}")).collect();
        result = match decrypt_value(key, &meta.mac, &meta.mac_additional_data()) {
            Ok((mac, _)) if mac[..] == *computed.as_bytes() => Ok(()),
            _ => Err(ErrorKind::SopsMacMismatch.into()),
        };
    }
    if result.is_err() {
        docs.iter_mut().for_each(yaml::wipe);
    }
    result.map(|()| opened)
}

fn walk(
    v: &mut Value,
    path: &mut Vec<String>,
    meta: &Metadata,
    key: &[u8],
    hash: &mut Sha512,
    opened: &mut EncryptedPaths,
) -> Result<(), Error> {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                path.push(k.clone());
                let r = walk(child, path, meta, key, hash, opened);
                path.pop();
                r?;
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|item| walk(item, path, meta, key, hash, opened)),
        Value::Null => Ok(()),
        leaf => {
            let at = |e: ErrorKind| Error::from(e).at_key(path.join(":"));
            let encrypted = meta.rule.encrypts(path);
            if encrypted {
                let Value::String(s) = leaf else {
                    return Err(at(ErrorKind::SopsUnsupported(
                        "a value the file's rule encrypts is not encrypted".into(),
                    )));
                };
                // SOPS leaves empty strings as they are.
                if !s.is_empty() {
                    let additional = format!("{}:", path.join(":"));
                    let (bytes, ty) = decrypt_value(key, s, &additional).map_err(at)?;
                    hash.update(&bytes[..]);
                    let new = typed(&bytes, &ty).map_err(at)?;
                    zeroize::Zeroize::zeroize(s);
                    *leaf = new;
                    opened.push(path.clone());
                }
            } else if !meta.mac_only_encrypted {
                if let Some(bytes) = plain_bytes(leaf) {
                    hash.update(&bytes);
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::Aead;

    fn enc(key: &[u8], plain: &str, additional: &str, ty: &str) -> String {
        let iv = [3u8; 32];
        let cipher = SopsGcm::new_from_slice(key).unwrap();
        let out = cipher
            .encrypt(
                aes_gcm::aead::generic_array::GenericArray::from_slice(&iv),
                aes_gcm::aead::Payload {
                    msg: plain.as_bytes(),
                    aad: additional.as_bytes(),
                },
            )
            .unwrap();
        let (data, tag) = out.split_at(out.len() - 16);
        let b = |x: &[u8]| base64::engine::general_purpose::STANDARD.encode(x);
        format!(
            "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{ty}]",
            b(data),
            b(&iv),
            b(tag)
        )
    }

    fn meta(key: &[u8], mac_of: &[&str], rule: Rule) -> Metadata {
        let mut h = Sha512::new();
        for v in mac_of {
            h.update(v.as_bytes());
        }
        let hex: String = h.finalize().iter().map(|b| format!("{b:02X}")).collect();
        Metadata {
            age: vec![],
            others: vec!["PGP"],
            lastmodified: "2024-01-02T03:04:05.123Z".into(),
            mac: enc(key, &hex, "2024-01-02T03:04:05Z", "str"),
            rule,
            mac_only_encrypted: false,
        }
    }

    #[test]
    fn values_open_under_their_path_and_the_mac_covers_every_value() {
        let key = [9u8; 32];
        let pw = enc(&key, "hunter2", "data:password:", "str");
        let mut docs = vec![serde_json::json!({
            "kind": "Secret",
            "metadata": {"name": "db", "replicas": 3, "on": true},
            "data": {"password": pw},
        })];
        let m = meta(
            &key,
            &["Secret", "db", "3", "True", "hunter2"],
            Rule::EncryptedRegex(regex::Regex::new("^data$").unwrap()),
        );
        decrypt_documents(&mut docs, &m, &key).unwrap();
        assert_eq!(docs[0]["data"]["password"], "hunter2");
        // Moved to another key: the path is the additional data.
        let mut moved = vec![serde_json::json!({"data": {"other": pw}})];
        let e = decrypt_documents(&mut moved, &m, &key).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::ImportTampered(_)), "{e}");
        assert_eq!(e.location.document, Some(1));
        assert_eq!(e.location.key.as_deref(), Some("data:other"));
        // A changed plaintext value fails the MAC.
        let mut edited = vec![serde_json::json!({
            "kind": "Secret",
            "metadata": {"name": "other", "replicas": 3, "on": true},
            "data": {"password": enc(&key, "hunter2", "data:password:", "str")},
        })];
        let e = decrypt_documents(&mut edited, &m, &key).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::SopsMacMismatch));
        assert_eq!(edited[0]["data"]["password"], "", "wiped on failure");
    }

    #[test]
    fn the_default_rule_leaves_unencrypted_suffixes() {
        let r = Rule::UnencryptedSuffix("_unencrypted".into());
        assert!(r.encrypts(&["data".into(), "a".into()]));
        assert!(!r.encrypts(&["x_unencrypted".into(), "a".into()]));
    }

    #[test]
    fn only_other_key_types_is_a_clear_error() {
        let key = [1u8; 32];
        let m = meta(&key, &[], Rule::UnencryptedSuffix("_unencrypted".into()));
        let e = m.data_key(&[]).unwrap_err();
        assert!(e.to_string().contains("PGP"), "{e}");
        assert_eq!(e.reason(), "KeyError");
    }

    #[test]
    fn lastmodified_loses_its_fraction_as_go_formats_it() {
        let key = [1u8; 32];
        let mut m = meta(&key, &[], Rule::UnencryptedSuffix("x".into()));
        assert_eq!(m.mac_additional_data(), "2024-01-02T03:04:05Z");
        m.lastmodified = "2024-01-02T03:04:05.5+00:00".into();
        assert_eq!(m.mac_additional_data(), "2024-01-02T03:04:05Z");
        m.lastmodified = "2024-01-02T03:04:05+02:00".into();
        assert_eq!(m.mac_additional_data(), "2024-01-02T03:04:05+02:00");
    }

    #[test]
    fn a_bool_that_go_would_not_parse_is_refused() {
        assert_eq!(typed(b"False", "bool").unwrap(), Value::Bool(false));
        assert_eq!(typed(b"True", "bool").unwrap(), Value::Bool(true));
        assert!(typed(b"yes", "bool").is_err());
    }

    #[test]
    fn metadata_without_its_mac_still_marks_a_sops_file() {
        let doc = serde_json::json!({"sops": {"lastmodified": "2024-01-02T03:04:05Z", "age": []}});
        assert!(has_metadata(&doc));
        let e = Metadata::parse(&doc).unwrap_err();
        assert!(matches!(e, ErrorKind::MissingField("sops.mac")), "{e}");
        assert!(!has_metadata(&serde_json::json!({"sops": "a string"})));
        assert!(!has_metadata(&serde_json::json!({"kind": "ConfigMap"})));
    }
}
