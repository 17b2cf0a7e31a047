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
    /// The kind of key generated, the first and at each --key-rotation: pq (hybrid
    /// post-quantum, ML-KEM-768 + X25519, age1pq1...) or x25519 (classical, age1...).
    /// Existing keys of either kind keep opening what was sealed for them.
    #[arg(long, value_name = "TYPE", default_value = "pq", value_parser = ["pq", "x25519"])]
    key_type: String,
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
    /// SealedSecrets reconciled at once (0: no bound).
    #[arg(long, value_name = "N", default_value_t = controller::DEFAULT_CONCURRENCY)]
    concurrency: u16,
    /// Roll the workloads a SealedSecret names in its gitops-seal.dev/rollout annotation
    /// (`deployment/web, statefulset/db`, same namespace) when its Secret's data changes. Needs
    /// patch on deployments, statefulsets and daemonsets (the chart's rollout.enabled).
    #[arg(long)]
    rollout: bool,
    /// The GitOps reconcile loop, as `gitops-seal sync` runs it but with the controller's keys
    /// (only the leader syncs): every option of `sync` that shapes a pass, under its --sync-
    /// name.
    #[command(flatten, next_help_heading = "Sync loop (as `gitops-seal sync`)")]
    pub sync: super::sync_config::ControllerSyncOptions,
    #[command(flatten)]
    log: super::logging::LogArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    gitops_seal::core::duration::parse_duration(s)
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
    settings.key_type = args.key_type.parse().map_err(anyhow::Error::msg)?;
    settings.template_deny = args.template_deny;
    settings.instance = std::env::var("POD_NAME").ok().filter(|n| !n.is_empty());
    settings.listen = Some(args.listen);
    args.sync.0.trust_repositories()?;
    settings.sync = args.sync.0.settings(settings.namespace.clone())?;
    settings.leader_election = args.leader_election;
    settings.concurrency = args.concurrency;
    settings.rollout = args.rollout;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let client = kube_adapter::client(args.kubeconfig.as_deref(), args.context.as_deref())
            .await
            .context("connecting to the Kubernetes API")?;
        if settings.sync.is_some() {
            let config = kube_adapter::config(args.kubeconfig.as_deref(), args.context.as_deref())
                .await
                .context("reading the Kubernetes client configuration")?;
            settings.sync_client = Some(controller::SyncClient(args.sync.0.loop_client(
                config,
                &settings.namespace,
                "the controller's own account",
                "--sync-service-account",
            )?));
        }
        let shutdown = super::sync_config::shutdown_signal();
        controller::run(client, settings, shutdown).await?;
        Ok(0)
    })
}
