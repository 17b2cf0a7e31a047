//! The Kubernetes edge: the `SealedSecret` custom resource (whose spec is the core's own
//! [`SealedSecretSpec`], so the format has one definition), its CRD, and client construction.
//!
//! With Bitnami's Sealed Secrets also installed, `kubectl get sealedsecrets` is ambiguous: use
//! `kubectl get sealedsecrets.gitops-seal.dev` or the short name `gsealed`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::SealedSecretSpec;

pub use crate::core::names::GROUP;
/// The CRD's name.
pub const CRD_NAME: &str = "sealedsecrets.gitops-seal.dev";

// The custom resource's spec is exactly the core's [`SealedSecretSpec`], flattened, so the
// wire form is the format's `spec`: kube's derive needs a struct of its own to hang the
// resource on, and this one adds no field.
/// The sealed values of one Secret and everything else of it (docs/FORMAT.md).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[schemars(transform = spec_required)]
#[kube(
    doc = "A Kubernetes Secret whose values are sealed with age, one age file per value.",
    group = "gitops-seal.dev",
    version = "v1",
    kind = "SealedSecret",
    plural = "sealedsecrets",
    singular = "sealedsecret",
    shortname = "gsealed",
    namespaced,
    status = "SealedSecretStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct SealedSecretResourceSpec {
    #[serde(flatten)]
    pub sealed: SealedSecretSpec,
}

/// The core's fields are optional in Rust (a missing one is reported naming it); the schema
/// requires them, so the API server refuses a SealedSecret without them.
fn spec_required(schema: &mut schemars::Schema) {
    schema.insert(
        "required".into(),
        serde_json::json!(["encryptedData", "recipients", "scope"]),
    );
}

/// `status` of a SealedSecret, as kstatus (Flux) and Argo CD health read it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SealedSecretStatus {
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The public fingerprints (`pq:3f9a2c71d04e8b56`) of the controller keys that opened
    /// this SealedSecret's values: for each value, the first key that opens it, active keys
    /// before retiring ones. Nothing but fingerprints: no value, no private key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opened_with: Vec<String>,
}

/// One status condition (the shape of `metav1.Condition`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase: Unsealed, KeyMissing, DecryptFailed, ScopeMismatch, SecretConflict,
    /// InvalidSpec, ImmutableChanged.
    pub reason: String,
    /// What happened, naming keys and objects, never a value.
    #[serde(default)]
    pub message: String,
    /// RFC 3339: when `status` last changed.
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The CustomResourceDefinition, as applied to a cluster.
pub fn crd() -> CustomResourceDefinition {
    SealedSecret::crd()
}

/// The CRD as the YAML committed under `deploy/crd.yaml` (block YAML with the core's writer,
/// fields in a fixed order). Regenerate with `gitops-seal controller --print-crd > deploy/crd.yaml`.
pub fn crd_yaml() -> String {
    let value = serde_json::to_value(crd()).expect("a CRD serialises to JSON");
    let mut out = String::from(
        "# Generated from the Rust types (src/adapters/kube.rs, src/core/sealed.rs) by\n\
         # `gitops-seal controller --print-crd > deploy/crd.yaml`; do not edit.\n",
    );
    out.push_str(&crate::core::yaml::to_yaml(&value));
    out
}

/// A client from kube's defaults: in cluster (service account) or the kubeconfig
/// (`$KUBECONFIG`, `~/.kube/config`), with an optional context.
pub async fn client(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<kube::Client, kube::Error> {
    kube::Client::try_from(config(kubeconfig, context).await?)
}

/// The client configuration [`client`] uses, for callers that change it first (impersonation).
pub async fn config(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<kube::Config, kube::Error> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig =
                kube::config::Kubeconfig::read_from(path).map_err(kube::Error::InferKubeconfig)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(kube::Error::InferKubeconfig)?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(kube::Error::InferKubeconfig)?,
        None => kube::Config::infer()
            .await
            .map_err(kube::Error::InferConfig)?,
    };
    Ok(config)
}

/// Act as ServiceAccount `namespace/name` (what Flux's `serviceAccountName` does): every request
/// carries `Impersonate-User: system:serviceaccount:NAMESPACE:NAME`, so the API server applies
/// that account's RBAC.
pub fn impersonate_service_account(config: &mut kube::Config, namespace: &str, name: &str) {
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{namespace}:{name}"));
}

/// Installs rustls's ring provider for the process (the only provider in the tree). Call once
/// at start, before any client is built; a second call is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The API server's refusal of a Secret, without its free text. kube-apiserver redacts a
/// refused Secret's value (`Invalid value: "<secret contents redacted>"`) but not always the
/// detail after it: Go's JSON error for a `dockerconfigjson` value quotes one of its bytes
/// (`invalid character 'X' after top-level value`). What is kept: the HTTP code, the reason, and
/// each cause's field and reason (`data[.dockerconfigjson]: FieldValueInvalid`). Errors that are
/// not the server's answer pass through unchanged (they carry no part of a request body).
pub fn redact_api_error(e: kube::Error) -> kube::Error {
    let kube::Error::Api(mut status) = e else {
        return e;
    };
    status.message = describe_refusal(&status);
    if let Some(details) = status.details.as_mut() {
        for c in &mut details.causes {
            c.message.clear();
        }
    }
    kube::Error::Api(status)
}

/// A Secret's refusal for a condition, an Event or a log line: the reason and each cause's
/// field and reason, never the server's message (see [`redact_api_error`]).
pub fn describe_refusal(status: &kube::core::Status) -> String {
    let causes: Vec<String> = status
        .details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| match (c.field.is_empty(), c.reason.is_empty()) {
                    (false, false) => format!("{}: {}", c.field, c.reason),
                    (false, true) => c.field.clone(),
                    (true, _) => c.reason.clone(),
                })
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if causes.is_empty() {
        format!("the API server refused it ({})", status.reason)
    } else {
        format!(
            "the API server refused it ({}): {}",
            status.reason,
            causes.join(", ")
        )
    }
}

/// Added to every log filter, whatever `$RUST_LOG` says: kube's client logs a refused request's
/// whole Status at DEBUG (target `kube_client::client`), and kube-apiserver's text can quote a
/// byte of a Secret's value (see [`redact_api_error`]). Its HTTP spans
/// (`kube_client::client::builder`) stay available to a more specific directive.
pub const LOG_CAPS: &[&str] = &["kube_client::client=info"];

/// `filter` with [`LOG_CAPS`] added.
pub fn capped_log_filter(
    mut filter: tracing_subscriber::EnvFilter,
) -> tracing_subscriber::EnvFilter {
    for cap in LOG_CAPS {
        if let Ok(directive) = cap.parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;

    /// deploy/crd.yaml is what the types generate. When this fails, regenerate it:
    /// `cargo run -q -- controller --print-crd > deploy/crd.yaml`.
    #[test]
    fn committed_crd_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crd.yaml");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == crd_yaml(),
            "deploy/crd.yaml is stale: run `cargo run -q -- controller --print-crd > deploy/crd.yaml`"
        );
    }

    #[test]
    fn crd_names_and_columns() {
        let crd = crd();
        assert_eq!(crd.metadata.name.as_deref(), Some(CRD_NAME));
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.scope, "Namespaced");
        let short = crd.spec.names.short_names.clone().unwrap_or_default();
        assert_eq!(short, vec!["gsealed".to_string()]);
        assert!(!short.iter().any(|s| s == "ss" || s == "sealedsecret"));
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1");
        assert!(v
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some());
        let columns: Vec<&str> = v
            .additional_printer_columns
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(columns, ["Ready", "Reason", "Age"]);
    }

    #[test]
    fn the_resource_spec_is_the_core_spec_on_the_wire() {
        let doc = serde_json::json!({
            "scope": "strict",
            "recipients": ["age1x"],
            "encryptedData": {"k": "YQ=="},
            "template": {"type": "Opaque", "metadata": {"labels": {"a": "b"}}}
        });
        let resource: SealedSecretResourceSpec = serde_json::from_value(doc.clone()).unwrap();
        let core: SealedSecretSpec = serde_json::from_value(doc.clone()).unwrap();
        assert_eq!(resource.sealed, core);
        assert_eq!(serde_json::to_value(&resource).unwrap(), doc);
    }
}
