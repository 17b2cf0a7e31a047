//! `gitops-seal sync`: the GitOps reconcile loop's command line (the loop itself is the
//! library's `sync` module).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use gitops_seal::adapters::identity;
use gitops_seal::adapters::kube as kube_adapter;
use gitops_seal::sync::{self, plan, Settings};

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Repository to sync: a local path or file:// URL.
    #[arg(long, value_name = "URL")]
    repo: String,
    /// Branch, tag or commit.
    #[arg(long = "ref", value_name = "REF", default_value = "main")]
    reference: String,
    /// Folder of the repository to sync (default: the root).
    #[arg(long, value_name = "DIR", default_value = "")]
    path: String,
    /// Name of this sync: the value of the gitops-seal.dev/sync label on what it applies.
    #[arg(long, value_name = "NAME")]
    name: String,
    /// Time between passes (e.g. 30s, 1m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    interval: Duration,
    /// Run one pass and exit: 0 on success, 1 on any failure.
    #[arg(long)]
    once: bool,
    /// Print the plan from Git alone (values redacted) and exit; no cluster needed.
    #[arg(long)]
    dry_run: bool,
    /// Identity file(s) that open the SealedSecrets (repeatable).
    #[arg(short, long = "identity", value_name = "FILE")]
    identity: Vec<PathBuf>,
    /// Namespace of the status ConfigMap gitops-seal-sync-NAME (default: the context's).
    #[arg(long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// A file holding a token for an https repository (sent as the password of user
    /// x-access-token; read at every pass).
    #[arg(long, value_name = "FILE")]
    git_token_file: Option<PathBuf>,
    /// A private key file for an ssh repository (no passphrase; read at every pass).
    #[arg(long, value_name = "FILE")]
    git_ssh_key: Option<PathBuf>,
    /// The known_hosts file that must list an ssh repository's host key (unknown hosts are
    /// refused; `ssh-keyscan HOST` prints candidate lines to check).
    #[arg(long, value_name = "FILE")]
    git_known_hosts: Option<PathBuf>,
    /// Where fetched repositories are cached.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Accept an empty path (which prunes everything the last pass applied).
    #[arg(long)]
    allow_empty: bool,
    /// Never delete anything.
    #[arg(long)]
    no_prune: bool,
    /// Also prune Namespaces and CRDs no longer in Git (deleting them deletes what they hold).
    #[arg(long)]
    prune_namespaces_and_crds: bool,
    /// The only namespaces this sync may write to (comma-separated).
    #[arg(long, value_name = "NS,...", value_delimiter = ',')]
    allowed_namespaces: Option<Vec<String>>,
    /// With --allowed-namespaces: also allow cluster-scoped objects.
    #[arg(long)]
    allow_cluster_scoped: bool,
    /// Accept plaintext Secrets with values in the synced tree.
    #[arg(long)]
    allow_plaintext_secrets: bool,
    /// Apply as this ServiceAccount (NAMESPACE/NAME, by impersonation), so its RBAC bounds what
    /// the repository can change.
    #[arg(long, value_name = "NS/NAME")]
    service_account: Option<String>,
    /// Kubeconfig file (default: in-cluster, else $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    #[command(flatten)]
    log: super::logging::LogArgs,
}

/// `NAMESPACE/NAME` of a ServiceAccount to impersonate.
pub(super) fn parse_service_account(flag: &str, value: &str) -> anyhow::Result<(String, String)> {
    match value.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        _ => anyhow::bail!("{flag} takes NAMESPACE/NAME, not {value:?}"),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    gitops_seal::controller::parse_duration(s)
}

fn settings(args: &SyncArgs, namespace: String) -> Settings {
    let mut s = Settings::new(args.name.clone(), args.repo.clone(), namespace);
    s.reference = args.reference.clone();
    s.path = args.path.clone();
    s.interval = args.interval;
    if let Some(dir) = &args.cache_dir {
        s.cache_dir = dir.clone();
    }
    s.allow_empty = args.allow_empty;
    s.token_file = args.git_token_file.clone();
    s.ssh_key_file = args.git_ssh_key.clone();
    s.known_hosts_file = args.git_known_hosts.clone();
    s.prune = !args.no_prune;
    s.prune_namespaces_and_crds = args.prune_namespaces_and_crds;
    s.allowed_namespaces = args.allowed_namespaces.clone();
    s.allow_cluster_scoped = args.allowed_namespaces.is_none() || args.allow_cluster_scoped;
    s.plan.allow_plaintext_secrets = args.allow_plaintext_secrets;
    s
}

pub fn run(args: SyncArgs) -> Result<i32> {
    let identities: std::sync::Arc<[gitops_seal::core::Identity]> =
        identity::load_identities(&args.identity, &mut |w| eprintln!("warning: {w}"))?.into();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if args.dry_run {
        let settings = settings(&args, String::new());
        return runtime.block_on(async move {
            let (commit, plan) = sync::fetch_and_plan(&settings, identities).await?;
            println!("commit {commit}");
            print!(
                "{}",
                plan::describe(&plan, &|r| plan::builtin_scope(&r.api_version, &r.kind))
            );
            Ok(0)
        });
    }
    kube_adapter::install_crypto_provider();
    super::logging::init_logging(args.log.log_format)?;
    let service_account = args
        .service_account
        .as_deref()
        .map(|sa| parse_service_account("--service-account", sa))
        .transpose()?;
    runtime.block_on(async move {
        let mut config = kube_adapter::config(args.kubeconfig.as_deref(), args.context.as_deref())
            .await
            .context("reading the Kubernetes client configuration")?;
        if let Some((ns, name)) = &service_account {
            kube_adapter::impersonate_service_account(&mut config, ns, name);
        }
        let client = kube::Client::try_from(config).context("connecting to the Kubernetes API")?;
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        let settings = settings(&args, namespace);
        if args.once {
            return match sync::pass(&client, &settings, identities.clone()).await {
                Ok(r) => {
                    tracing::info!(
                        sync = %settings.name, commit = %r.commit, applied = r.applied,
                        pruned = r.pruned, failed_prunes = r.failed, "sync pass"
                    );
                    Ok(0)
                }
                Err(e) => {
                    eprintln!("error: {}", sync::error_chain(&e));
                    Ok(1)
                }
            };
        }
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        sync::run(
            client,
            settings,
            move || identities.clone(),
            None,
            None,
            shutdown,
        )
        .await;
        Ok(0)
    })
}
