//! `gitops-seal recipient --fetch`: print the cluster controller's recipients (ConfigMap
//! `gitops-seal-recipients`) read through the user's kubeconfig, ready to save under `keys/`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use gitops_seal::adapters::fetch::{self, FetchError};

#[derive(Args, Debug, Default)]
pub struct FetchArgs {
    /// Print the recipients of the controller in the cluster (ConfigMap gitops-seal-recipients,
    /// read with your kubeconfig) instead of an identity's.
    #[arg(long, conflicts_with = "identity")]
    pub fetch: bool,
    /// The controller's namespace (with --fetch; default gitops-seal).
    #[arg(short = 'n', long, value_name = "NS", requires = "fetch")]
    pub namespace: Option<String>,
    /// Kubeconfig context (with --fetch; default: the current context).
    #[arg(long, value_name = "NAME", requires = "fetch")]
    pub context: Option<String>,
    /// Kubeconfig file (with --fetch; default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE", requires = "fetch")]
    pub kubeconfig: Option<PathBuf>,
}

/// Fetches and prints the recipients file (or, with `fingerprint`, each recipient's
/// fingerprint).
pub fn run(args: &FetchArgs, fingerprint: bool) -> Result<i32> {
    gitops_seal::adapters::kube::install_crypto_provider();
    let namespace = args
        .namespace
        .as_deref()
        .unwrap_or(fetch::DEFAULT_NAMESPACE);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let text = runtime
        .block_on(async {
            let client =
                fetch::kubeconfig_client(args.kubeconfig.as_deref(), args.context.as_deref())
                    .await?;
            fetch::fetch_recipients(&client, namespace).await
        })
        .map_err(|e| {
            let hint = hint(&e);
            anyhow::Error::new(e).context(format!("fetching the recipients{hint}"))
        })?;
    if fingerprint {
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let r: gitops_seal::core::Recipient = line
                .parse()
                .map_err(|e| anyhow::anyhow!("the published recipients: {e}"))?;
            println!("{}", r.fingerprint());
        }
    } else {
        print!("{text}");
    }
    Ok(0)
}

/// What to do about it, appended to the top line.
fn hint(e: &FetchError) -> String {
    match e {
        FetchError::NoKubeconfig { .. } => {
            " (pass --kubeconfig FILE, set $KUBECONFIG, or create ~/.kube/config)".into()
        }
        FetchError::NotFound { .. } => {
            " (is the controller installed and running there? pass --namespace/-n with its namespace)".into()
        }
        FetchError::Forbidden { namespace, .. } => format!(
            " (ask an administrator to bind Role gitops-seal-recipients-reader in namespace {namespace} to you: docs/OPERATIONS.md)"
        ),
        FetchError::NoRecipients { .. } => " (the controller has not published its keys yet)".into(),
        _ => String::new(),
    }
}
