//! `gitops-seal recipient --fetch`: the controller's public recipients, read from ConfigMap
//! `gitops-seal-recipients` (key `recipients.txt`) through the user's kubeconfig.
//!
//! A plain `get` of one ConfigMap with the user's own credentials: no service proxy (which
//! needs `services/proxy` and a reachable pod, and is what breaks `kubeseal --fetch-cert` for
//! many users), no in-cluster configuration. Who may fetch is who may `get` that one ConfigMap
//! (deploy/ ships a Role granting exactly that).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::Api;

pub use crate::core::names::{DEFAULT_NAMESPACE, RECIPIENTS_CONFIGMAP, RECIPIENTS_KEY};

/// Why the recipients could not be fetched. Messages name the kubeconfig, namespace and
/// ConfigMap; the command line adds what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no kubeconfig: {detail}")]
    NoKubeconfig { detail: String },
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] KubeconfigError),
    #[error("ConfigMap {name} not found in namespace {namespace}")]
    NotFound { namespace: String, name: String },
    #[error("not allowed to get ConfigMap {name} in namespace {namespace}: {message}")]
    Forbidden {
        namespace: String,
        name: String,
        message: String,
    },
    #[error("ConfigMap {name} in namespace {namespace} lists no recipient under key {key}")]
    NoRecipients {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// The kubeconfig files kube would read: `explicit`, else each of `$KUBECONFIG`, else
/// `~/.kube/config`; an error naming them when none exists.
fn kubeconfig_paths(explicit: Option<&Path>) -> Result<Vec<PathBuf>, FetchError> {
    if let Some(path) = explicit {
        if !path.is_file() {
            return Err(FetchError::NoKubeconfig {
                detail: format!("{} does not exist", path.display()),
            });
        }
        return Ok(vec![path.to_path_buf()]);
    }
    if let Some(list) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let paths: Vec<PathBuf> = std::env::split_paths(&list).collect();
        if !paths.iter().any(|p| p.is_file()) {
            return Err(FetchError::NoKubeconfig {
                detail: format!(
                    "$KUBECONFIG names {} and none of it exists",
                    list.to_string_lossy()
                ),
            });
        }
        return Ok(paths.into_iter().filter(|p| p.is_file()).collect());
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    let default = home.map(|h| PathBuf::from(h).join(".kube").join("config"));
    match default {
        Some(path) if path.is_file() => Ok(vec![path]),
        Some(path) => Err(FetchError::NoKubeconfig {
            detail: format!(
                "$KUBECONFIG is not set and {} does not exist",
                path.display()
            ),
        }),
        None => Err(FetchError::NoKubeconfig {
            detail: "$KUBECONFIG and $HOME are not set".into(),
        }),
    }
}

/// A client from the user's kubeconfig (never the in-cluster service account): `kubeconfig`,
/// else `$KUBECONFIG`, else `~/.kube/config`; `context`, else the current context.
pub async fn kubeconfig_client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Client, FetchError> {
    let mut merged: Option<Kubeconfig> = None;
    for path in kubeconfig_paths(kubeconfig)? {
        let next = Kubeconfig::read_from(&path)?;
        merged = Some(match merged {
            None => next,
            Some(m) => m.merge(next)?,
        });
    }
    let merged = merged.ok_or_else(|| FetchError::NoKubeconfig {
        detail: "no kubeconfig file found".into(),
    })?;
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(merged, &options).await?;
    Ok(kube::Client::try_from(config)?)
}

/// The text of `recipients.txt` in ConfigMap `gitops-seal-recipients` of `namespace`, as the
/// controller wrote it (a comment line, then one recipient a line, newest first).
pub async fn fetch_recipients(
    client: &kube::Client,
    namespace: &str,
) -> Result<String, FetchError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = match api.get(RECIPIENTS_CONFIGMAP).await {
        Ok(cm) => cm,
        Err(kube::Error::Api(status)) if status.code == 404 => {
            return Err(FetchError::NotFound {
                namespace: namespace.into(),
                name: RECIPIENTS_CONFIGMAP.into(),
            })
        }
        Err(kube::Error::Api(status)) if status.code == 403 => {
            return Err(FetchError::Forbidden {
                namespace: namespace.into(),
                name: RECIPIENTS_CONFIGMAP.into(),
                message: status.message.clone(),
            })
        }
        Err(e) => return Err(e.into()),
    };
    let text = cm
        .data
        .and_then(|mut d| d.remove(RECIPIENTS_KEY))
        .filter(|t| {
            t.lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        });
    text.ok_or_else(|| FetchError::NoRecipients {
        namespace: namespace.into(),
        name: RECIPIENTS_CONFIGMAP.into(),
        key: RECIPIENTS_KEY.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_explicit_kubeconfig_is_named() {
        let err = kubeconfig_paths(Some(Path::new("/nonexistent/kubeconfig"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/kubeconfig"), "{err}");
        assert!(matches!(err, FetchError::NoKubeconfig { .. }));
    }
}
