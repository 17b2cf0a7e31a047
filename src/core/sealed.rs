//! The `SealedSecret` object: a Secret whose values are age files and whose other fields stay
//! readable for review. This is the one type the CLI, the hook, the merge driver and the
//! controller share; [`SealedSecret::unseal`] is the controller's whole use of the core.

use std::collections::BTreeMap;

use base64::Engine;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::binding::{Binding, Scope};
use super::error::{Error, ErrorKind};
use super::keys::{Identity, Recipient};
use super::seal;
use super::secret::{self, PlainSecret, RawMeta};
use super::yaml;

pub const API_VERSION: &str = "gitops-seal.dev/v1";
pub const KIND: &str = "SealedSecret";

/// Everything of the Secret but its values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pub secret_type: String,
    pub immutable: Option<bool>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub name: String,
    /// As written: absent stays absent, and the binding is checked at unseal.
    pub namespace: Option<String>,
    /// The SealedSecret object's own labels and annotations (not copied to the Secret).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub scope: Scope,
    /// Canonical recipient strings every value is sealed for.
    pub recipients: Vec<String>,
    /// Key to binary age file.
    pub encrypted_data: BTreeMap<String, Vec<u8>>,
    pub template: Template,
}

/// A previous sealing of the same Secret whose ciphertexts may be kept when nothing changed.
pub struct Previous<'a> {
    pub sealed: &'a SealedSecret,
    pub plain: &'a PlainSecret,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSealed {
    metadata: Option<RawMeta>,
    spec: Option<SealedSecretSpec>,
}

/// `spec` of a SealedSecret as written: the one definition of the format's fields, read by
/// [`SealedSecret::parse`] and served as the custom resource's spec by the controller (whose
/// CRD schema is derived from it). Fields are optional here so that a missing one is reported
/// by [`SealedSecret::from_spec`] naming the field; the schema still marks them required.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SealedSecretSpec {
    /// `strict`, `namespace` or `cluster`: what every value is bound to.
    #[schemars(required)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Canonical recipient strings every value is sealed for.
    #[schemars(required)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<String>>,
    /// Key to base64 (standard alphabet, padded) of one binary age file.
    #[schemars(required)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_data: Option<BTreeMap<String, String>>,
    /// Everything of the Secret but its values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<SealedSecretTemplate>,
}

/// `spec.template`: the Secret's type, immutability, labels and annotations.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedSecretTemplate {
    /// The Secret's type (`Opaque` when absent); bound into every value.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
}

/// `spec.template.metadata`: labels and annotations of the Secret.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct TemplateMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl SealedSecret {
    /// `SealedSecret ns/name`, for error locations.
    pub fn object_ref(&self) -> String {
        secret::object_ref(KIND, self.namespace.as_deref(), &self.name)
    }

    /// Parses a SealedSecret document (already known to be one by its kind).
    pub fn parse(doc: &yaml::RawDocument<'_>) -> Result<Self, Error> {
        let raw: RawSealed = yaml::parse(doc)?;
        let meta = raw.metadata.unwrap_or_default();
        let name = meta
            .name
            .filter(|n| !n.is_empty())
            .ok_or(ErrorKind::MissingField("metadata.name"))?;
        let namespace = meta.namespace.filter(|n| !n.is_empty());
        let object = secret::object_ref(KIND, namespace.as_deref(), &name);
        let spec = raw
            .spec
            .ok_or_else(|| Error::from(ErrorKind::MissingField("spec")).in_object(object))?;
        Self::from_spec(
            name,
            namespace,
            meta.labels.unwrap_or_default(),
            meta.annotations.unwrap_or_default(),
            spec,
        )
    }

    /// A SealedSecret from its metadata and an already deserialised `spec` (the controller
    /// hands in its custom resource's fields: no text round trip). Checks what
    /// [`SealedSecret::parse`] checks.
    pub fn from_spec(
        name: String,
        namespace: Option<String>,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        spec: SealedSecretSpec,
    ) -> Result<Self, Error> {
        let object = secret::object_ref(KIND, namespace.as_deref(), &name);
        let located = |e: ErrorKind| Error::from(e).in_object(object.clone());
        let scope: Scope = spec
            .scope
            .ok_or_else(|| located(ErrorKind::MissingField("spec.scope")))?
            .parse()
            .map_err(located)?;
        let recipients = spec
            .recipients
            .ok_or_else(|| located(ErrorKind::MissingField("spec.recipients")))?;
        if recipients.is_empty() {
            return Err(located(ErrorKind::Invalid(
                "spec.recipients is empty".into(),
            )));
        }
        for r in &recipients {
            r.parse::<Recipient>().map_err(located)?;
        }
        let mut encrypted_data = BTreeMap::new();
        for (key, b64) in spec
            .encrypted_data
            .ok_or_else(|| located(ErrorKind::MissingField("spec.encryptedData")))?
        {
            if !secret::is_valid_key(&key) {
                return Err(located(ErrorKind::InvalidKeyName).at_key(key));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| located(ErrorKind::InvalidCiphertextBase64).at_key(&key))?;
            encrypted_data.insert(key, bytes);
        }
        let template = match spec.template {
            Some(t) => {
                let m = t.metadata.unwrap_or_default();
                Template {
                    secret_type: t
                        .secret_type
                        .filter(|t| !t.is_empty())
                        .unwrap_or_else(|| "Opaque".into()),
                    immutable: t.immutable,
                    labels: m.labels.unwrap_or_default(),
                    annotations: m.annotations.unwrap_or_default(),
                }
            }
            None => Template {
                secret_type: "Opaque".into(),
                ..Template::default()
            },
        };
        // The scope is spec.scope, bound into every value. An annotation in the template is
        // not bound: decrypt and edit would read it back as the scope to seal for, widening
        // a strict value to cluster scope without any key.
        if template.annotations.contains_key(secret::SCOPE_ANNOTATION) {
            return Err(located(ErrorKind::Invalid(format!(
                "spec.template carries the annotation {}; the scope is spec.scope",
                secret::SCOPE_ANNOTATION
            ))));
        }
        Ok(SealedSecret {
            name,
            namespace,
            labels,
            annotations,
            scope,
            recipients,
            encrypted_data,
            template,
        })
    }

    /// The binding a value under `key` must carry when the object lives in `namespace`.
    pub fn binding_for(&self, key: &str, namespace: Option<&str>) -> Result<Binding, ErrorKind> {
        Binding::new(
            self.scope,
            &self.template.secret_type,
            namespace,
            &self.name,
            key,
        )
    }

    /// Seals every value of `secret`. `bind_namespace` is used when the Secret has none.
    /// With `previous`, a value whose plaintext, binding and recipients are unchanged keeps
    /// its exact ciphertext, so `git diff` shows only real changes.
    pub fn seal(
        secret: &PlainSecret,
        recipients: &[Recipient],
        scope: Scope,
        bind_namespace: Option<&str>,
        previous: Option<Previous<'_>>,
    ) -> Result<Self, Error> {
        let object = secret.object_ref();
        if recipients.is_empty() {
            return Err(Error::from(ErrorKind::NoRecipients).in_object(object));
        }
        let namespace = secret.namespace.as_deref().or(bind_namespace);
        let recipient_strings: Vec<String> = recipients.iter().map(|r| r.to_string()).collect();
        let mut template = Template {
            secret_type: secret.secret_type.clone(),
            immutable: secret.immutable,
            labels: secret.labels.clone(),
            annotations: secret.annotations.clone(),
        };
        template
            .annotations
            .retain(|k, _| !secret::DROPPED_ANNOTATIONS.contains(&k.as_str()));
        let mut sealed = SealedSecret {
            name: secret.name.clone(),
            namespace: secret.namespace.clone(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            scope,
            recipients: recipient_strings,
            encrypted_data: BTreeMap::new(),
            template,
        };
        let reusable = previous.filter(|p| {
            p.sealed.scope == sealed.scope
                && p.sealed.recipients == sealed.recipients
                && p.sealed.template.secret_type == sealed.template.secret_type
                && p.sealed.name == sealed.name
                && p.sealed.namespace.as_deref().or(bind_namespace) == namespace
        });
        let results: Vec<Result<(String, Vec<u8>), Error>> = secret
            .data
            .par_iter()
            .map(|(key, value)| {
                if let Some(p) = &reusable {
                    if let (Some(old), Some(ct)) =
                        (p.plain.data.get(key), p.sealed.encrypted_data.get(key))
                    {
                        if old[..] == value[..] {
                            return Ok((key.clone(), ct.clone()));
                        }
                    }
                }
                let binding = sealed
                    .binding_for(key, namespace)
                    .map_err(|e| Error::from(e).in_object(object.clone()))?;
                let ct = seal::seal_value(recipients, &binding, value)
                    .map_err(|e| Error::from(e).in_object(object.clone()).at_key(key))?;
                Ok((key.clone(), ct))
            })
            .collect();
        for r in results {
            let (k, ct) = r?;
            sealed.encrypted_data.insert(k, ct);
        }
        Ok(sealed)
    }

    /// Unseals every value, checking each binding. `namespace` is where the object lives when
    /// its manifest does not say (the controller always knows; the CLI takes `-n`).
    pub fn unseal(
        &self,
        identities: &[Identity],
        namespace: Option<&str>,
    ) -> Result<PlainSecret, Error> {
        self.unseal_attributed(identities, namespace)
            .map(|(plain, _)| plain)
    }

    /// As [`SealedSecret::unseal`], with the positions in `identities` of the keys that opened
    /// the values (for each value, the first identity in that order that opens it).
    pub fn unseal_attributed(
        &self,
        identities: &[Identity],
        namespace: Option<&str>,
    ) -> Result<(PlainSecret, std::collections::BTreeSet<usize>), Error> {
        let namespace = self.namespace.as_deref().or(namespace);
        let object = self.object_ref();
        let results: Vec<Result<(String, usize, secret::SecretBytes), Error>> = self
            .encrypted_data
            .par_iter()
            .map(|(key, ct)| {
                let located = |e: ErrorKind| Error::from(e).in_object(object.clone()).at_key(key);
                let expected = self.binding_for(key, namespace).map_err(located)?;
                let (index, value) =
                    seal::unseal_value_attributed(identities, &expected, ct).map_err(located)?;
                Ok((key.clone(), index, value))
            })
            .collect();
        let mut data = BTreeMap::new();
        let mut opened_by = std::collections::BTreeSet::new();
        for r in results {
            let (k, index, v) = r?;
            opened_by.insert(index);
            data.insert(k, v);
        }
        let plain = PlainSecret {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            secret_type: self.template.secret_type.clone(),
            immutable: self.template.immutable,
            labels: self.template.labels.clone(),
            annotations: self.template.annotations.clone(),
            data,
        };
        Ok((plain, opened_by))
    }

    /// The object as a JSON value, fields in a fixed order.
    pub fn to_value(&self) -> Value {
        let mut spec = Map::new();
        spec.insert("scope".into(), self.scope.as_str().into());
        spec.insert(
            "recipients".into(),
            Value::Array(self.recipients.iter().map(|r| r.clone().into()).collect()),
        );
        spec.insert(
            "encryptedData".into(),
            Value::Object(
                self.encrypted_data
                    .iter()
                    .map(|(k, ct)| {
                        (
                            k.clone(),
                            base64::engine::general_purpose::STANDARD.encode(ct).into(),
                        )
                    })
                    .collect(),
            ),
        );
        let mut template = Map::new();
        template.insert("type".into(), self.template.secret_type.clone().into());
        if let Some(immutable) = self.template.immutable {
            template.insert("immutable".into(), immutable.into());
        }
        if !self.template.labels.is_empty() || !self.template.annotations.is_empty() {
            let mut m = Map::new();
            if !self.template.labels.is_empty() {
                m.insert("labels".into(), secret::string_map(&self.template.labels));
            }
            if !self.template.annotations.is_empty() {
                m.insert(
                    "annotations".into(),
                    secret::string_map(&self.template.annotations),
                );
            }
            template.insert("metadata".into(), Value::Object(m));
        }
        spec.insert("template".into(), Value::Object(template));
        let mut root = Map::new();
        root.insert("apiVersion".into(), API_VERSION.into());
        root.insert("kind".into(), KIND.into());
        root.insert(
            "metadata".into(),
            secret::metadata_value(
                &self.name,
                self.namespace.as_deref(),
                &self.labels,
                &self.annotations,
            ),
        );
        root.insert("spec".into(), Value::Object(spec));
        Value::Object(root)
    }

    /// The manifest text: block YAML, or pretty JSON when the input was JSON.
    pub fn render(&self, json: bool) -> String {
        if json {
            yaml::to_json(&self.to_value())
        } else {
            yaml::to_yaml(&self.to_value())
        }
    }
}
