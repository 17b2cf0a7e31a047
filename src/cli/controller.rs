//! `gitops-seal controller`: the in-cluster controller's command line (the controller itself
//! is the library's `controller::run`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use gitops_seal::adapters::kube as kube_adapter;
use gitops_seal::controller::{self, Settings};

#[derive(Args, Debug)]
pub struct ControllerArgs {
    /// Namespace of the identity Secrets and the recipients ConfigMap (default: $POD_NAMESPACE).
    #[arg(long, value_name = "NAMESPACE")]
    namespace: Option<String>,
    /// Watch SealedSecrets in this namespace only (repeatable; default: all namespaces).
    #[arg(long = "watch-namespace", value_name = "NAMESPACE")]
    watch_namespace: Vec<String>,
    /// Never generate an identity: fail when there is none.
    #[arg(long)]
    no_generate: bool,
    /// Add a new identity when the newest is this old (e.g. 720h, 30d; default: off).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    key_rotation: Option<Duration>,
    /// Also refuse templates carrying labels or annotations matching GLOB (repeatable; added
    /// to the defaults: gitops-seal.dev/*, reflector.v1.k8s.emberstack.com/*,
    /// replicator.v1.mittwald.de/*, kubed.appscode.com/sync).
    #[arg(long = "template-deny", value_name = "GLOB")]
    template_deny: Vec<String>,
    /// Kubeconfig file (default: in-cluster, else $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Print the CustomResourceDefinition (deploy/crd.yaml) and exit.
    #[arg(long)]
    print_crd: bool,
    /// Serve /healthz, /readyz, /metrics and /v1/recipients on this address.
    #[arg(long, value_name = "ADDR", default_value = gitops_seal::adapters::http::DEFAULT_LISTEN)]
    listen: std::net::SocketAddr,
    /// Take part in leader election (a coordination.k8s.io/v1 Lease): only the leader writes,
    /// so several replicas can run.
    #[arg(long)]
    leader_election: bool,
    /// Also run the GitOps reconcile loop on this repository (as `gitops-seal sync`, with the
    /// controller's keys; only the leader syncs).
    #[arg(long, value_name = "URL")]
    sync_repo: Option<String>,
    /// Branch, tag or commit to sync.
    #[arg(
        long,
        value_name = "REF",
        default_value = "main",
        requires = "sync_repo"
    )]
    sync_ref: String,
    /// Folder of the repository to sync (default: the root).
    #[arg(long, value_name = "DIR", default_value = "", requires = "sync_repo")]
    sync_path: String,
    /// Name of the sync (the gitops-seal.dev/sync label; status in ConfigMap
    /// gitops-seal-sync-NAME in --namespace).
    #[arg(long, value_name = "NAME", requires = "sync_repo")]
    sync_name: Option<String>,
    /// Time between sync passes.
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration, requires = "sync_repo")]
    sync_interval: Duration,
    /// A file holding a token for an https sync repository (a mounted Secret).
    #[arg(long, value_name = "FILE", requires = "sync_repo")]
    sync_git_token_file: Option<PathBuf>,
    /// A private key file for an ssh sync repository (a mounted Secret; no passphrase).
    #[arg(long, value_name = "FILE", requires = "sync_repo")]
    sync_git_ssh_key: Option<PathBuf>,
    /// The known_hosts file that must list the ssh sync repository's host (a mounted
    /// ConfigMap; unknown hosts are refused).
    #[arg(long, value_name = "FILE", requires = "sync_repo")]
    sync_git_known_hosts: Option<PathBuf>,
    /// SealedSecrets reconciled at once (0: no bound).
    #[arg(long, value_name = "N", default_value_t = controller::DEFAULT_CONCURRENCY)]
    concurrency: u16,
    /// Apply the sync loop's objects as this ServiceAccount (NAMESPACE/NAME, by impersonation;
    /// the controller's account needs `impersonate` on it), so its RBAC bounds what the
    /// repository can change.
    #[arg(long, value_name = "NS/NAME", requires = "sync_repo")]
    sync_service_account: Option<String>,
    /// Where fetched repositories are cached (a writable volume in cluster).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/tmp/gitops-seal-sync",
        requires = "sync_repo"
    )]
    sync_cache_dir: PathBuf,
    #[command(flatten)]
    log: super::logging::LogArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    controller::parse_duration(s)
}

pub fn run(args: ControllerArgs) -> Result<i32> {
    if args.print_crd {
        print!("{}", kube_adapter::crd_yaml());
        return Ok(0);
    }
    kube_adapter::install_crypto_provider();
    super::logging::init_logging(args.log.log_format)?;
    let namespace = args
        .namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .filter(|n| !n.is_empty())
        .context(
            "no namespace for the controller's keys: pass --namespace or set $POD_NAMESPACE",
        )?;
    let mut settings = Settings::new(namespace);
    settings.watch_namespaces = args.watch_namespace;
    settings.generate = !args.no_generate;
    settings.key_rotation = args.key_rotation;
    settings.template_deny = args.template_deny;
    settings.instance = std::env::var("POD_NAME").ok().filter(|n| !n.is_empty());
    settings.listen = Some(args.listen);
    if let Some(repo) = &args.sync_repo {
        let name = args
            .sync_name
            .clone()
            .context("--sync-repo needs --sync-name (the sync's label value)")?;
        let mut sync =
            gitops_seal::sync::Settings::new(name, repo.clone(), settings.namespace.clone());
        sync.reference = args.sync_ref.clone();
        sync.path = args.sync_path.clone();
        sync.interval = args.sync_interval;
        sync.cache_dir = args.sync_cache_dir.clone();
        sync.token_file = args.sync_git_token_file.clone();
        sync.ssh_key_file = args.sync_git_ssh_key.clone();
        sync.known_hosts_file = args.sync_git_known_hosts.clone();
        settings.sync = Some(sync);
    }
    settings.leader_election = args.leader_election;
    settings.concurrency = args.concurrency;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let sync_service_account = args
        .sync_service_account
        .as_deref()
        .map(|sa| super::sync::parse_service_account("--sync-service-account", sa))
        .transpose()?;
    runtime.block_on(async move {
        let client = kube_adapter::client(args.kubeconfig.as_deref(), args.context.as_deref())
            .await
            .context("connecting to the Kubernetes API")?;
        if let Some((ns, name)) = &sync_service_account {
            let mut config =
                kube_adapter::config(args.kubeconfig.as_deref(), args.context.as_deref())
                    .await
                    .context("reading the Kubernetes client configuration")?;
            kube_adapter::impersonate_service_account(&mut config, ns, name);
            settings.sync_client = Some(controller::SyncClient(
                kube::Client::try_from(config).context("connecting to the Kubernetes API")?,
            ));
        }
        let shutdown = async {
            // SIGINT, or SIGTERM (what the kubelet sends).
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        };
        controller::run(client, settings, shutdown).await?;
        Ok(0)
    })
}
