//! Bitnami Sealed Secrets (`bitnami.com/v1alpha1 SealedSecret`): the controller's RSA keys and
//! its per-value hybrid scheme (`HybridEncrypt` in their `pkg/crypto/crypto.go`).
//!
//! One value is base64 of: a 2-byte big-endian length N, N bytes of RSA-OAEP (SHA-256, MGF1
//! SHA-256) encrypting a 32-byte session key under a label — `namespace/name` (strict),
//! `namespace` (namespace-wide) or empty (cluster-wide) — then AES-256-GCM (zero 12-byte nonce,
//! no additional data) of the value under the session key, tag last.

use std::collections::BTreeMap;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Oaep, RsaPrivateKey};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::core::binding::Scope;
use crate::core::error::{Error, ErrorKind};
use crate::core::secret::{self, PlainSecret, RawMeta, SecretBytes, SecretText, SCOPE_ANNOTATION};
use crate::core::yaml::{self, RawDocument};

pub const API_VERSION: &str = "bitnami.com/v1alpha1";
pub const KIND: &str = "SealedSecret";
/// Their annotations' prefix: none of them is carried over.
pub const ANNOTATION_PREFIX: &str = "sealedsecrets.bitnami.com/";
pub const NAMESPACE_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/namespace-wide";
pub const CLUSTER_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/cluster-wide";
/// In `spec.template.metadata.annotations`: `"true"` makes a Secret without an ownerReference.
pub const SKIP_OWNER_REFERENCES_ANNOTATION: &str =
    "sealedsecrets.bitnami.com/skip-set-owner-references";
/// The label on the controller's key Secrets (`kubectl get secret -l ...` makes the backup).
pub const KEY_LABEL: &str = "sealedsecrets.bitnami.com/sealed-secrets-key";

/// Annotations dropped from what is carried over besides Bitnami's own: kubectl's copy of the
/// last applied object.
const DROPPED: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// True for a `bitnami.com/v1alpha1 SealedSecret`.
pub fn is_bitnami(api_version: Option<&str>, kind: Option<&str>) -> bool {
    api_version == Some(API_VERSION) && kind == Some(KIND)
}

/// One of the controller's RSA private keys. Its `Debug` shows the modulus size only.
pub struct ControllerKey(RsaPrivateKey);

impl std::fmt::Debug for ControllerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use rsa::traits::PublicKeyParts;
        write!(f, "ControllerKey(RSA-{})", self.0.size() * 8)
    }
}

impl ControllerKey {
    pub fn from_rsa(key: RsaPrivateKey) -> Self {
        ControllerKey(key)
    }
}

/// Reads the controller's keys from a key backup — a `kind: List` (or one Secret) of
/// `kubernetes.io/tls` Secrets whose `data."tls.key"` is base64 of a PEM key, as
/// `kubectl get secret -n kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml`
/// prints it — or from PEM text (`RSA PRIVATE KEY`, PKCS#1, or `PRIVATE KEY`, PKCS#8; other
/// blocks such as certificates are skipped). An error never quotes the text: a malformed PEM
/// block is named by its line (in a PEM file, the error's line; in a key backup, the line of
/// the decoded `tls.key` with the document and item).
pub fn parse_keys(text: &str) -> Result<Vec<ControllerKey>, Error> {
    if text.contains("-----BEGIN") {
        return pem_keys(text).map_err(|e| match e.line {
            Some(line) => Error::from(e.kind()).at_line(line),
            None => e.kind().into(),
        });
    }
    let mut keys = Vec::new();
    let docs = yaml::split_documents(text);
    for (n, doc) in docs.iter().filter(|d| !d.is_empty).enumerate() {
        let mut value = yaml::parse_core_schema(doc).map_err(|_| {
            ErrorKind::InvalidImportKey("neither PEM nor a YAML or JSON list of key Secrets".into())
        })?;
        let found = keys_in_manifest(&value);
        yaml::wipe(&mut value);
        keys.extend(found.map_err(|e| e.in_document(n + 1))?);
    }
    if keys.is_empty() {
        return Err(
            ErrorKind::InvalidImportKey("no Secret with data.\"tls.key\" in it".into()).into(),
        );
    }
    Ok(keys)
}

fn keys_in_manifest(value: &Value) -> Result<Vec<ControllerKey>, Error> {
    let (items, listed): (Vec<&Value>, bool) = match value.get("items").and_then(Value::as_array) {
        Some(items) => (items.iter().collect(), true),
        None => (vec![value], false),
    };
    let mut keys = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Some(b64) = item
            .get("data")
            .and_then(|d| d.get("tls.key"))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let located = |e: ErrorKind| {
            let e = Error::from(e).at_key("tls.key");
            if listed {
                e.in_object(format!("List item {}", i + 1))
            } else {
                e
            }
        };
        let compact: Zeroizing<Vec<u8>> =
            Zeroizing::new(b64.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
        let mut pem = Zeroizing::new(Vec::with_capacity(compact.len()));
        base64::engine::general_purpose::STANDARD
            .decode_vec(&compact[..], &mut pem)
            .map_err(|_| {
                located(ErrorKind::InvalidImportKey(
                    "data.\"tls.key\" is not base64".into(),
                ))
            })?;
        let pem = std::str::from_utf8(&pem).map_err(|_| {
            located(ErrorKind::InvalidImportKey(
                "data.\"tls.key\" is not PEM".into(),
            ))
        })?;
        keys.extend(pem_keys(pem).map_err(|e| {
            located(ErrorKind::InvalidImportKey(match e.line {
                Some(line) => format!("line {line} of its PEM text: {}", e.what),
                None => format!("its PEM text: {}", e.what),
            }))
        })?);
    }
    Ok(keys)
}

/// What is wrong with PEM text, and on which 1-based line: a fixed description, never a piece
/// of the text (a BEGIN line that lost a dash would otherwise run into the key itself).
#[derive(Debug)]
struct PemError {
    line: Option<usize>,
    what: &'static str,
}

impl PemError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidImportKey(self.what.to_string())
    }
}

/// The label of an encapsulation boundary line (`-----BEGIN LABEL-----`), when the line is
/// exactly one: RFC 7468's label characters (printable ASCII but `-`, and spaces).
fn boundary_label<'a>(line: &'a str, which: &str) -> Option<&'a str> {
    let label = line
        .strip_prefix("-----")?
        .strip_prefix(which)?
        .strip_prefix(' ')?
        .strip_suffix("-----")?;
    let valid = !label.is_empty()
        && label
            .bytes()
            .all(|b| b == b' ' || (b.is_ascii_graphic() && b != b'-'));
    valid.then_some(label)
}

/// The private keys among the PEM blocks of `text`, read line by line.
fn pem_keys(text: &str) -> Result<Vec<ControllerKey>, PemError> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut keys = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].contains("-----BEGIN") {
            i += 1;
            continue;
        }
        let at = |what| PemError {
            line: Some(i + 1),
            what,
        };
        let label = boundary_label(lines[i], "BEGIN")
            .ok_or_else(|| at("malformed PEM BEGIN line (expected -----BEGIN LABEL-----)"))?;
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].starts_with('-') || lines[j].contains("-----"))
            .ok_or_else(|| at("the PEM block that begins on this line has no END line"))?;
        if boundary_label(lines[end], "END") != Some(label) {
            return Err(PemError {
                line: Some(end + 1),
                what:
                    "malformed PEM END line (expected -----END LABEL----- matching its BEGIN line)",
            });
        }
        let mut pem = Zeroizing::new(String::with_capacity(text.len()));
        for line in &lines[i..=end] {
            pem.push_str(line);
            pem.push('\n');
        }
        match label {
            "RSA PRIVATE KEY" => keys.push(ControllerKey(
                RsaPrivateKey::from_pkcs1_pem(&pem)
                    .map_err(|_| at("an RSA PRIVATE KEY block does not parse"))?,
            )),
            "PRIVATE KEY" => keys
                .push(ControllerKey(RsaPrivateKey::from_pkcs8_pem(&pem).map_err(
                    |_| at("a PRIVATE KEY block is not an RSA key in PKCS#8"),
                )?)),
            "ENCRYPTED PRIVATE KEY" => return Err(at("the private key is passphrase-protected")),
            _ => {}
        }
        i = end + 1;
    }
    if keys.is_empty() {
        return Err(PemError {
            line: None,
            what: "no RSA PRIVATE KEY or PRIVATE KEY block",
        });
    }
    Ok(keys)
}

/// The scope a Bitnami SealedSecret's annotations give (their controller reads the object's
/// own `metadata.annotations`), in gitops-seal's terms.
pub fn scope_of(annotations: &BTreeMap<String, String>) -> Scope {
    let on = |k: &str| annotations.get(k).map(String::as_str) == Some("true");
    if on(CLUSTER_WIDE_ANNOTATION) {
        Scope::Cluster
    } else if on(NAMESPACE_WIDE_ANNOTATION) {
        Scope::Namespace
    } else {
        Scope::Strict
    }
}

/// The RSA-OAEP label of a scope (`EncryptionLabel` in their code).
pub fn label(scope: Scope, namespace: &str, name: &str) -> String {
    match scope {
        Scope::Cluster => String::new(),
        Scope::Namespace => namespace.to_string(),
        Scope::Strict => format!("{namespace}/{name}"),
    }
}

/// Opens one value (already base64-decoded) with the first key whose RSA-OAEP opens it under
/// `label`. A value no key opens is [`ErrorKind::ImportKeyMismatch`]; one whose session key
/// opens but whose AES-GCM payload fails is [`ErrorKind::ImportTampered`].
pub fn hybrid_decrypt(
    keys: &[ControllerKey],
    ciphertext: &[u8],
    label: &str,
    scope: Scope,
) -> Result<SecretBytes, ErrorKind> {
    let (len, rest) = ciphertext
        .split_first_chunk::<2>()
        .ok_or(ErrorKind::ImportTampered(
            "too short for a Sealed Secrets value",
        ))?;
    let rsa_len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < rsa_len {
        return Err(ErrorKind::ImportTampered(
            "its length prefix runs past the end of the value",
        ));
    }
    let (rsa_ct, aes_ct) = rest.split_at(rsa_len);
    for key in keys {
        // Without blinding: decryption runs offline, on the user's machine, with no oracle.
        let Ok(session) = key
            .0
            .decrypt(Oaep::new_with_label::<Sha256, _>(label), rsa_ct)
        else {
            continue;
        };
        let session = Zeroizing::new(session);
        let cipher = Aes256Gcm::new_from_slice(&session)
            .map_err(|_| ErrorKind::ImportTampered("the session key is not 32 bytes"))?;
        let mut buf = Zeroizing::new(Vec::with_capacity(aes_ct.len()));
        buf.extend_from_slice(aes_ct);
        cipher
            .decrypt_in_place(Nonce::from_slice(&[0u8; 12]), b"", &mut *buf)
            .map_err(|_| ErrorKind::ImportTampered("AES-GCM authentication failed"))?;
        return Ok(buf);
    }
    Err(ErrorKind::ImportKeyMismatch {
        scope: scope.as_str(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBitnami {
    metadata: Option<RawMeta>,
    spec: Option<RawSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpec {
    encrypted_data: Option<BTreeMap<String, String>>,
    template: Option<RawTemplate>,
    /// The deprecated whole-Secret format.
    data: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RawTemplate {
    metadata: Option<RawMeta>,
    #[serde(rename = "type")]
    secret_type: Option<String>,
    immutable: Option<bool>,
    data: Option<BTreeMap<String, SecretText>>,
}

/// A Bitnami SealedSecret as read: its own metadata, its scope, its values (still sealed) and
/// its template. Its `Debug` shows no template data.
pub struct BitnamiSealedSecret {
    pub name: String,
    pub namespace: Option<String>,
    /// The object's own labels and annotations (where its scope annotations live).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub scope: Scope,
    /// Key to the sealed bytes.
    pub encrypted_data: BTreeMap<String, Vec<u8>>,
    pub secret_type: String,
    pub immutable: Option<bool>,
    pub template_labels: BTreeMap<String, String>,
    pub template_annotations: BTreeMap<String, String>,
    /// `spec.template.data`: plain values (Go templates over the opened values).
    template_data: BTreeMap<String, Zeroizing<String>>,
}

impl std::fmt::Debug for BitnamiSealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BitnamiSealedSecret")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("scope", &self.scope)
            .field("keys", &self.encrypted_data.keys().collect::<Vec<_>>())
            .field(
                "template_keys",
                &self.template_data.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl BitnamiSealedSecret {
    /// `SealedSecret ns/name` (Bitnami's), for error locations.
    pub fn object_ref(&self) -> String {
        secret::object_ref(
            "bitnami.com SealedSecret",
            self.namespace.as_deref(),
            &self.name,
        )
    }

    /// Parses one document already known to be a Bitnami SealedSecret.
    pub fn parse(doc: &RawDocument<'_>) -> Result<Self, Error> {
        let raw: RawBitnami = yaml::parse(doc)?;
        Self::from_raw(raw)
    }

    /// Parses a List item already known to be a Bitnami SealedSecret.
    pub fn from_value(value: &Value) -> Result<Self, Error> {
        yaml::reparse_item(value, 1, Self::parse)
    }

    fn from_raw(raw: RawBitnami) -> Result<Self, Error> {
        let meta = raw.metadata.unwrap_or_default();
        let name = meta
            .name
            .filter(|n| !n.is_empty())
            .ok_or(ErrorKind::MissingField("metadata.name"))?;
        let namespace = meta.namespace.filter(|n| !n.is_empty());
        let object = secret::object_ref("bitnami.com SealedSecret", namespace.as_deref(), &name);
        let located = |e: ErrorKind| Error::from(e).in_object(object.clone());
        let spec = raw
            .spec
            .ok_or_else(|| located(ErrorKind::MissingField("spec")))?;
        let encrypted = spec.encrypted_data.unwrap_or_default();
        if spec.data.is_some() && encrypted.is_empty() {
            return Err(located(ErrorKind::ImportUnsupported(
                "spec.data is Sealed Secrets' deprecated whole-Secret format; reseal it with a current kubeseal first".into(),
            )));
        }
        let mut encrypted_data = BTreeMap::new();
        for (key, b64) in encrypted {
            if !secret::is_valid_key(&key) {
                return Err(located(ErrorKind::InvalidKeyName).at_key(key));
            }
            let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| located(ErrorKind::InvalidCiphertextBase64).at_key(&key))?;
            encrypted_data.insert(key, bytes);
        }
        let annotations = meta.annotations.unwrap_or_default();
        let template = spec.template;
        let (tmeta, secret_type, immutable, data) = match template {
            Some(t) => (
                t.metadata.unwrap_or_default(),
                t.secret_type,
                t.immutable,
                t.data,
            ),
            None => (RawMeta::default(), None, None, None),
        };
        let mut template_data = BTreeMap::new();
        for (key, SecretText(text)) in data.unwrap_or_default() {
            if !secret::is_valid_key(&key) {
                return Err(located(ErrorKind::InvalidKeyName).at_key(key));
            }
            template_data.insert(key, text);
        }
        Ok(BitnamiSealedSecret {
            name,
            namespace,
            labels: meta.labels.unwrap_or_default(),
            scope: scope_of(&annotations),
            annotations,
            encrypted_data,
            secret_type: secret_type
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "Opaque".into()),
            immutable,
            template_labels: tmeta.labels.unwrap_or_default(),
            template_annotations: tmeta.annotations.unwrap_or_default(),
            template_data,
        })
    }

    /// True when the Secret is made without an ownerReference
    /// (`skip-set-owner-references: "true"` in the template, where their controller reads it).
    pub fn skips_owner_references(&self) -> bool {
        self.template_annotations
            .get(SKIP_OWNER_REFERENCES_ANNOTATION)
            .map(String::as_str)
            == Some("true")
    }

    /// True when the object's annotations chose a scope (namespace-wide or cluster-wide).
    pub fn scope_annotated(&self) -> bool {
        self.scope != Scope::Strict
    }

    /// Opens every value. `namespace` is where the object lives when its manifest has none
    /// (the label of strict and namespace-wide values holds it). The Secret carries the
    /// template's type, immutability, labels and annotations (Bitnami's own annotations
    /// dropped), and a non-strict scope as the `gitops-seal.dev/scope` annotation, so that
    /// sealing it again keeps the scope unless told otherwise. Literal `spec.template.data`
    /// values (no `{{`) are carried over as values; a Go template is refused, naming its key.
    pub fn open(
        &self,
        keys: &[ControllerKey],
        namespace: Option<&str>,
    ) -> Result<PlainSecret, Error> {
        let object = self.object_ref();
        let located = |e: ErrorKind| Error::from(e).in_object(object.clone());
        let bound_namespace = self.namespace.as_deref().or(namespace);
        // Before any value is opened: a namespace `prod/db` would read a strict label as a
        // namespace-wide one, and Kubernetes refuses such names anyway.
        secret::check_names(&self.name, bound_namespace).map_err(located)?;
        let label = match (self.scope, bound_namespace) {
            (Scope::Cluster, _) => String::new(),
            (scope, Some(ns)) => label(scope, ns, &self.name),
            (scope, None) => {
                return Err(located(ErrorKind::MissingNamespace {
                    scope: scope.as_str(),
                }))
            }
        };
        let mut data = BTreeMap::new();
        for (key, ct) in &self.encrypted_data {
            let value =
                hybrid_decrypt(keys, ct, &label, self.scope).map_err(|e| located(e).at_key(key))?;
            data.insert(key.clone(), value);
        }
        for (key, text) in &self.template_data {
            if text.contains("{{") {
                return Err(located(ErrorKind::ImportUnsupported(
                    "spec.template.data holds a Go template, which gitops-seal does not evaluate; render it into a plain value and seal that".into(),
                ))
                .at_key(key));
            }
            if data.contains_key(key) {
                return Err(located(ErrorKind::ImportUnsupported(
                    "the key is in both spec.encryptedData and spec.template.data".into(),
                ))
                .at_key(key));
            }
            data.insert(key.clone(), Zeroizing::new(text.as_bytes().to_vec()));
        }
        let mut annotations = carried(&self.template_annotations);
        annotations.remove(SCOPE_ANNOTATION);
        if self.scope_annotated() {
            annotations.insert(SCOPE_ANNOTATION.into(), self.scope.as_str().into());
        }
        Ok(PlainSecret {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            secret_type: self.secret_type.clone(),
            immutable: self.immutable,
            labels: self.template_labels.clone(),
            annotations,
            data,
        })
    }

    /// The object's own labels and annotations to carry to the gitops-seal SealedSecret:
    /// Bitnami's annotations and kubectl's last-applied copy dropped.
    pub fn carried_metadata(&self) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        (self.labels.clone(), carried(&self.annotations))
    }
}

/// Annotations without Bitnami's own and kubectl's last-applied copy.
fn carried(annotations: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    annotations
        .iter()
        .filter(|(k, _)| !k.starts_with(ANNOTATION_PREFIX) && !DROPPED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::Aead;
    use rsa::RsaPublicKey;

    /// Bitnami's HybridEncrypt, written from their description, for round trips here (the
    /// integration tests use vectors made by an independent implementation).
    fn seal(key: &RsaPrivateKey, value: &[u8], label: &str) -> Vec<u8> {
        let session = [7u8; 32];
        let public = RsaPublicKey::from(key);
        let mut rng = rand_free::Counter(0);
        let rsa_ct = public
            .encrypt(&mut rng, Oaep::new_with_label::<Sha256, _>(label), &session)
            .unwrap();
        let aes = Aes256Gcm::new_from_slice(&session)
            .unwrap()
            .encrypt(Nonce::from_slice(&[0u8; 12]), value)
            .unwrap();
        let mut out = (rsa_ct.len() as u16).to_be_bytes().to_vec();
        out.extend(rsa_ct);
        out.extend(aes);
        out
    }

    /// A deterministic RNG for the tests' OAEP seeds (not for anything real).
    mod rand_free {
        pub struct Counter(pub u64);
        impl rsa::rand_core::RngCore for Counter {
            fn next_u32(&mut self) -> u32 {
                self.next_u64() as u32
            }
            fn next_u64(&mut self) -> u64 {
                self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
                self.0
            }
            fn fill_bytes(&mut self, dest: &mut [u8]) {
                for b in dest {
                    *b = (self.next_u64() >> 33) as u8;
                }
            }
            fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
                self.fill_bytes(dest);
                Ok(())
            }
        }
        impl rsa::rand_core::CryptoRng for Counter {}
    }

    fn key() -> RsaPrivateKey {
        static KEY: std::sync::OnceLock<RsaPrivateKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::new(&mut rand_free::Counter(42), 1024).unwrap())
            .clone()
    }

    #[test]
    fn a_value_opens_under_its_label_only() {
        let k = key();
        let ct = seal(&k, b"\x00bin\xff", "prod/db");
        let keys = [ControllerKey(k)];
        let v = hybrid_decrypt(&keys, &ct, "prod/db", Scope::Strict).unwrap();
        assert_eq!(&v[..], b"\x00bin\xff");
        let e = hybrid_decrypt(&keys, &ct, "prod/other", Scope::Strict).unwrap_err();
        assert!(matches!(e, ErrorKind::ImportKeyMismatch { .. }), "{e}");
        assert!(!e.to_string().contains("bin"));
    }

    #[test]
    fn a_flipped_payload_bit_is_tampering_and_a_short_value_is_refused() {
        let k = key();
        let mut ct = seal(&k, b"hunter2", "");
        let last = ct.len() - 1;
        ct[last] ^= 1;
        let e = hybrid_decrypt(&[ControllerKey(k)], &ct, "", Scope::Cluster).unwrap_err();
        assert!(matches!(e, ErrorKind::ImportTampered(_)), "{e}");
        assert!(matches!(
            hybrid_decrypt(&[], &[0, 9, 1], "", Scope::Cluster),
            Err(ErrorKind::ImportTampered(_))
        ));
    }

    #[test]
    fn labels_follow_their_scope() {
        assert_eq!(label(Scope::Strict, "ns", "a"), "ns/a");
        assert_eq!(label(Scope::Namespace, "ns", "a"), "ns");
        assert_eq!(label(Scope::Cluster, "ns", "a"), "");
        let mut a = BTreeMap::new();
        assert_eq!(scope_of(&a), Scope::Strict);
        a.insert(NAMESPACE_WIDE_ANNOTATION.to_string(), "true".to_string());
        assert_eq!(scope_of(&a), Scope::Namespace);
        a.insert(CLUSTER_WIDE_ANNOTATION.to_string(), "true".to_string());
        assert_eq!(scope_of(&a), Scope::Cluster);
    }

    #[test]
    fn keys_come_from_pem_and_from_a_key_backup_and_debug_shows_no_key() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let k = key();
        let pem = k.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let keys = parse_keys(&format!("junk\n{}", &*pem)).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(format!("{:?}", keys[0]), "ControllerKey(RSA-1024)");
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem.as_bytes());
        let backup = format!(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  type: kubernetes.io/tls\n  data:\n    tls.crt: eA==\n    tls.key: {b64}\n"
        );
        assert_eq!(parse_keys(&backup).unwrap().len(), 1);
        assert!(matches!(
            parse_keys("apiVersion: v1\nkind: List\nitems: []\n").map_err(|e| e.kind),
            Err(ErrorKind::InvalidImportKey(_))
        ));
        let e = parse_keys(
            "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0\n-----END RSA PRIVATE KEY-----\n",
        )
        .unwrap_err();
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
    }

    #[test]
    fn a_begin_line_that_lost_a_dash_is_named_by_its_line_and_never_quoted() {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let pem = key().to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let broken = format!(
            "# backup\n{}",
            pem.replacen(
                "-----BEGIN RSA PRIVATE KEY-----",
                "-----BEGIN RSA PRIVATE KEY----",
                1
            )
        );
        let e = parse_keys(&broken).unwrap_err();
        assert_eq!(e.location.line, Some(2));
        assert_eq!(
            e.to_string(),
            "line 2: invalid sealed-secrets key: malformed PEM BEGIN line (expected -----BEGIN LABEL-----)"
        );
        // The END line that lost a dash, and one missing altogether.
        let e = parse_keys(&pem.replacen(
            "-----END RSA PRIVATE KEY-----",
            "----END RSA PRIVATE KEY-----",
            1,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("malformed PEM END line"), "{e}");
        let e = parse_keys(&pem.replacen("-----END RSA PRIVATE KEY-----", "", 1)).unwrap_err();
        assert_eq!(e.location.line, Some(1), "{e}");
        // Through a key backup: the document, the item, the key and the PEM's line.
        let b64 = base64::engine::general_purpose::STANDARD.encode(broken.as_bytes());
        let backup = format!(
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  data:\n    tls.key: {b64}\n"
        );
        let e = parse_keys(&backup).unwrap_err();
        assert_eq!(
            e.to_string(),
            "document 1 (List item 1): key \"tls.key\": invalid sealed-secrets key: line 2 of its PEM text: malformed PEM BEGIN line (expected -----BEGIN LABEL-----)"
        );
        for text in [&broken, &backup] {
            let message = parse_keys(text).unwrap_err().to_string();
            for line in &body {
                assert!(!message.contains(&line[..16]), "{message}");
            }
        }
    }

    #[test]
    fn templates_are_refused_and_literals_carried() {
        let k = key();
        let ct = base64::engine::general_purpose::STANDARD.encode(seal(&k, b"pw", "prod/db"));
        let doc = |data: &str| {
            format!("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {{name: db, namespace: prod}}\nspec:\n  encryptedData: {{password: {ct}}}\n  template:\n    metadata:\n      annotations: {{sealedsecrets.bitnami.com/managed: \"true\", team: a}}\n    data: {data}\n")
        };
        let keys = [ControllerKey(k)];
        let text = doc("{url: \"postgres://db\"}");
        let s = BitnamiSealedSecret::parse(&yaml::split_documents(&text)[0]).unwrap();
        let plain = s.open(&keys, None).unwrap();
        assert_eq!(&plain.data["password"][..], b"pw");
        assert_eq!(&plain.data["url"][..], b"postgres://db");
        assert_eq!(
            plain.annotations.keys().collect::<Vec<_>>(),
            ["team"],
            "Bitnami's annotations are dropped"
        );
        let text = doc("{url: \"postgres://{{ index . \\\"password\\\" }}@db\"}");
        let s = BitnamiSealedSecret::parse(&yaml::split_documents(&text)[0]).unwrap();
        let e = s.open(&keys, None).unwrap_err();
        assert_eq!(e.location.key.as_deref(), Some("url"));
        assert_eq!(e.reason(), "InvalidSpec");
    }

    fn parsed(text: &str) -> Result<BitnamiSealedSecret, Error> {
        BitnamiSealedSecret::parse(&yaml::split_documents(text)[0])
    }

    #[test]
    fn the_secret_takes_the_objects_name_and_namespace_not_the_templates() {
        // Their controller sets the Secret's name and namespace from the SealedSecret, and the
        // label binds those: a template naming something else changes nothing.
        let k = key();
        let ct = base64::engine::general_purpose::STANDARD.encode(seal(&k, b"pw", "prod/db"));
        let s = parsed(&format!(
            "apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {{name: db, namespace: prod}}\nspec:\n  encryptedData: {{password: {ct}}}\n  template:\n    metadata: {{name: other, namespace: elsewhere, labels: {{a: b}}}}\n"
        ))
        .unwrap();
        let plain = s.open(&[ControllerKey(k)], None).unwrap();
        assert_eq!(
            (plain.name.as_str(), plain.namespace.as_deref()),
            ("db", Some("prod"))
        );
        assert_eq!(plain.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(&plain.data["password"][..], b"pw");
    }

    #[test]
    fn an_empty_value_is_sealed_empty_and_an_empty_string_is_refused() {
        let k = key();
        let empty = base64::engine::general_purpose::STANDARD.encode(seal(&k, b"", "prod/db"));
        let doc = |v: &str| {
            format!("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {{name: db, namespace: prod}}\nspec:\n  encryptedData: {{a: \"{v}\"}}\n")
        };
        let keys = [ControllerKey(k)];
        let plain = parsed(&doc(&empty)).unwrap().open(&keys, None).unwrap();
        assert!(plain.data["a"].is_empty());
        let e = parsed(&doc("")).unwrap().open(&keys, None).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::ImportTampered(_)), "{e}");
        assert_eq!(e.location.key.as_deref(), Some("a"));
        // No encryptedData at all: an empty Secret, as their controller makes it.
        let none = parsed("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: db, namespace: prod}\nspec: {encryptedData: {}}\n").unwrap();
        assert!(none.open(&keys, None).unwrap().data.is_empty());
    }

    #[test]
    fn bad_base64_and_the_deprecated_format_are_located_errors() {
        let e = parsed("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: db, namespace: prod}\nspec: {encryptedData: {pw: \"not*base64\"}}\n").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::InvalidCiphertextBase64), "{e}");
        assert_eq!(e.location.key.as_deref(), Some("pw"));
        assert_eq!(
            e.location.object.as_deref(),
            Some("bitnami.com SealedSecret prod/db")
        );
        let e = parsed("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: db, namespace: prod}\nspec: {data: AAAA}\n").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::ImportUnsupported(_)), "{e}");
        // Beside encryptedData their controller ignores spec.data, and so does the import.
        let k = key();
        let ct = base64::engine::general_purpose::STANDARD.encode(seal(&k, b"pw", "prod/db"));
        let s = parsed(&format!("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {{name: db, namespace: prod}}\nspec: {{data: AAAA, encryptedData: {{pw: {ct}}}}}\n")).unwrap();
        assert_eq!(s.open(&[ControllerKey(k)], None).unwrap().data.len(), 1);
    }

    #[test]
    fn malformed_values_are_errors_not_panics() {
        let k = key();
        let keys = [ControllerKey(k.clone())];
        let good = seal(&k, b"hunter2", "");
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0],
            vec![0, 0],
            vec![0xff, 0xff, 1, 2, 3],
            // RSA part of the wrong size for the key, whole or cut short.
            [&[0u8, 4][..], &[1, 2, 3, 4], &[0; 16]].concat(),
            good[..good.len() - 20].to_vec(),
            good[..130].to_vec(),
            // Nothing after the RSA part: no room for the GCM tag.
            good[..2 + 128].to_vec(),
        ];
        for ct in cases {
            let e = hybrid_decrypt(&keys, &ct, "", Scope::Cluster).unwrap_err();
            assert!(
                matches!(
                    e,
                    ErrorKind::ImportTampered(_) | ErrorKind::ImportKeyMismatch { .. }
                ),
                "{e}"
            );
            assert!(!e.to_string().contains("hunter2"));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn random_bytes_as_a_value_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            prefix in proptest::option::of(0u16..300),
        ) {
            let keys = [ControllerKey(key())];
            let mut ct = bytes;
            if let Some(p) = prefix {
                ct.splice(0..ct.len().min(2), p.to_be_bytes());
            }
            let _ = hybrid_decrypt(&keys, &ct, "ns/name", Scope::Strict);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&ct);
            let text = format!("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {{name: a, namespace: b}}\nspec: {{encryptedData: {{k: \"{b64}\"}}}}\n");
            if let Ok(s) = parsed(&text) {
                proptest::prop_assert!(s.open(&keys, None).is_err());
            }
        }
    }
}
