//! `gitops-seal sync`: the GitOps reconcile loop's command line (the loop itself is the
//! library's `sync` module). The options that shape a pass are [`SyncOptions`], shared with
//! `gitops-seal controller --sync-*`; the ones here belong to one invocation
//! ([`super::sync_config::SYNC_ONLY`]).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use gitops_seal::adapters::identity;
use gitops_seal::adapters::kube as kube_adapter;
use gitops_seal::sync::{self, plan};

use super::sync_config::SyncOptions;

#[derive(Args, Debug)]
pub struct SyncArgs {
    #[command(flatten)]
    pub options: SyncOptions,
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
    /// Kubeconfig file (default: in-cluster, else $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    #[command(flatten)]
    log: super::logging::LogArgs,
}

pub fn run(args: SyncArgs) -> Result<i32> {
    args.options.trust_repositories()?;
    let identities: std::sync::Arc<[gitops_seal::core::Identity]> =
        identity::load_identities(&args.identity, &mut |w| eprintln!("warning: {w}"))?.into();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if args.dry_run {
        let settings = args
            .options
            .settings(String::new())?
            .context("sync needs --repo")?;
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
    runtime.block_on(async move {
        let config = kube_adapter::config(args.kubeconfig.as_deref(), args.context.as_deref())
            .await
            .context("reading the Kubernetes client configuration")?;
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let settings = args
            .options
            .settings(namespace.clone())?
            .context("sync needs --repo")?;
        let client = args.options.loop_client(
            config,
            &namespace,
            "the kubeconfig's user",
            "--service-account",
        )?;
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
        sync::run(
            client,
            settings,
            move || identities.clone(),
            None,
            None,
            super::sync_config::shutdown_signal(),
        )
        .await;
        Ok(0)
    })
}
