//! The in-cluster controller: holds the private keys and turns SealedSecrets into Secrets.
//!
//! [`run`] is the whole controller, callable in-process (the tests run it so) and from
//! `gitops-seal controller`. It loads or generates the identities ([`keys`]), watches them,
//! and runs a `kube::runtime::Controller` over SealedSecrets with the managed Secrets watched
//! metadata-only by label ([`reconcile`]); the pure decisions are in [`render`].

pub mod keys;
pub mod reconcile;
pub mod render;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{predicates, watcher, Controller, Predicate, WatchStreamExt};
use kube::{Api, ResourceExt};

use crate::adapters::kube::SealedSecret as SealedSecretResource;
use reconcile::Context;
use render::{DenyList, MANAGED_BY_LABEL, MANAGED_BY_VALUE};

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "gitops-seal";

/// What `gitops-seal controller` takes.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the identity Secrets and the recipients ConfigMap live.
    pub namespace: String,
    /// SealedSecrets watched: empty means all namespaces.
    pub watch_namespaces: Vec<String>,
    /// Generate an identity when there is none.
    pub generate: bool,
    /// Add a new identity when the newest is this old.
    pub key_rotation: Option<Duration>,
    /// Globs added to the default template deny list.
    pub template_deny: Vec<String>,
    /// Backoff after a failure: doubled per consecutive failure, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// A SecretConflict is retried at least this often (adoption is an annotation on a Secret
    /// the controller does not watch).
    pub conflict_retry: Duration,
    /// The reporting instance in Events (the pod name in cluster).
    pub instance: Option<String>,
}

impl Settings {
    pub fn new(namespace: impl Into<String>) -> Self {
        Settings {
            namespace: namespace.into(),
            watch_namespaces: Vec::new(),
            generate: true,
            key_rotation: None,
            template_deny: Vec::new(),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            conflict_retry: Duration::from_secs(5),
            instance: None,
        }
    }
}

/// Why the controller could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("no identity in namespace {namespace}: {detail}")]
    NoIdentity { namespace: String, detail: String },
    #[error("invalid --template-deny pattern: {0}")]
    Deny(#[from] globset::Error),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// Why one reconcile did not end Ready. Each carries a metric label.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// Reported as a condition and an event; the message names keys and objects only.
    #[error("{reason}: {message}")]
    Failed {
        reason: &'static str,
        message: String,
    },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

impl ReconcileError {
    /// A stable label for metrics: the condition reason, or `KubeError`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::Failed { reason, .. } => reason,
            ReconcileError::Kube(_) => "KubeError",
        }
    }
}

/// Parses a duration such as `90s`, `15m`, `12h`, `30d` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => return Err(format!("{text:?}: unknown unit {c:?} (use s, m, h or d)")),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{text:?}: a number must come before {c:?}"))?;
        number.clear();
        total += Duration::from_secs(n.saturating_mul(unit));
    }
    if !number.is_empty() {
        return Err(format!(
            "{text:?}: the last number has no unit (s, m, h or d)"
        ));
    }
    if total.is_zero() {
        return Err(format!("{text:?}: the duration must be positive"));
    }
    Ok(total)
}

/// Runs the controller until `shutdown` completes (or an error stops it before it starts).
pub async fn run(
    client: kube::Client,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ControllerError> {
    let deny = DenyList::new(&settings.template_deny)?;
    let identity_secrets: Api<Secret> = Api::namespaced(client.clone(), &settings.namespace);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &settings.namespace);
    let keys = keys::Keys::new();

    let startup = async {
        keys::load_or_generate(
            &identity_secrets,
            &settings.namespace,
            settings.generate,
            &keys,
        )
        .await?;
        keys::publish_recipients(&configmaps, &keys.current()).await?;
        Ok::<_, ControllerError>(())
    };
    tokio::pin!(shutdown);
    tokio::select! {
        r = startup => r?,
        _ = &mut shutdown => return Ok(()),
    }
    tracing::info!(
        namespace = %settings.namespace,
        recipients = ?keys.current().recipients,
        "keys loaded"
    );

    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: settings.instance.clone(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        keys: keys.clone(),
        deny,
        recorder: Recorder::new(client.clone(), reporter),
        settings: settings.clone(),
        failures: Mutex::new(HashMap::new()),
        waiting_for_key: Mutex::new(HashSet::new()),
    });

    let mut work: Vec<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> = Vec::new();
    work.push(Box::pin(keys::watch_identities(
        identity_secrets.clone(),
        configmaps,
        keys.clone(),
    )));
    if let Some(every) = settings.key_rotation {
        work.push(Box::pin(keys::rotate_keys(
            identity_secrets,
            settings.namespace.clone(),
            every,
        )));
    }
    let scopes: Vec<Option<String>> = if settings.watch_namespaces.is_empty() {
        vec![None]
    } else {
        settings
            .watch_namespaces
            .iter()
            .cloned()
            .map(Some)
            .collect()
    };
    for scope in scopes {
        work.push(Box::pin(controller(client.clone(), scope, ctx.clone())));
    }
    tokio::select! {
        _ = futures::future::join_all(work) => {}
        _ = shutdown => {}
    }
    tracing::info!("controller stopped");
    Ok(())
}

/// One `kube::runtime::Controller` over the SealedSecrets of `namespace` (or all).
async fn controller(client: kube::Client, namespace: Option<String>, ctx: Arc<Context>) {
    let (sealed_api, secrets_api): (Api<SealedSecretResource>, Api<PartialObjectMeta<Secret>>) =
        match &namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
    let (reader, writer) = reflector::store();
    // Spec changes (generation), annotation changes (recreate, owner-reference) and new
    // objects trigger; our own status writes do not.
    let sealed = reflector::reflector(
        writer,
        watcher(sealed_api, watcher::Config::default()).default_backoff(),
    )
    .applied_objects()
    .predicate_filter(
        predicates::generation.combine(predicates::annotations),
        Default::default(),
    )
    .filter_map(|r| futures::future::ready(logged(r, "SealedSecrets")));
    // Managed Secrets, metadata only (`Api<PartialObjectMeta<_>>` lists and watches with
    // `as=PartialObjectMetadata`), by label; mapped back by name (so one without an
    // ownerReference is restored too). A relist of this watch (after a 410, say) cannot tell
    // what was deleted while it was away, so it reconciles every SealedSecret.
    let (relisted_tx, relisted_rx) = futures::channel::mpsc::unbounded::<()>();
    let managed = watcher(
        secrets_api,
        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")),
    )
    .default_backoff()
    .filter_map(move |event| {
        let out = match event {
            Ok(
                watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o),
            ) => Some(Ok(o)),
            Ok(watcher::Event::InitDone) => {
                let _ = relisted_tx.unbounded_send(());
                None
            }
            Ok(watcher::Event::Init) => None,
            Err(e) => logged(Err(e), "managed Secrets"),
        };
        futures::future::ready(out)
    });
    // A keyring change retries what waited for a key.
    let retries = futures::stream::unfold(
        (ctx.keys.subscribe(), ctx.clone()),
        |(mut rx, ctx)| async move {
            rx.changed().await.ok()?;
            let refs: Vec<ObjectRef<SealedSecretResource>> = ctx
                .waiting_for_key
                .lock()
                .expect("waiting")
                .drain()
                .collect();
            Some((refs, (rx, ctx)))
        },
    )
    .flat_map(futures::stream::iter);
    Controller::for_stream(sealed, reader)
        .watches_stream(managed, |meta| {
            let ns = meta.namespace()?;
            Some(ObjectRef::new(&meta.name_any()).within(&ns))
        })
        .reconcile_on(retries)
        .reconcile_all_on(relisted_rx)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}

/// A watch error, logged and dropped: the watch streams back off and retry on their own
/// (`default_backoff`), and an error reaching the `Controller` would pause every trigger
/// a second time.
fn logged<T>(r: Result<T, watcher::Error>, what: &str) -> Option<Result<T, watcher::Error>> {
    match r {
        Ok(o) => Some(Ok(o)),
        Err(e) => {
            tracing::warn!(error = %e, "watch of {what} failed; retrying");
            None
        }
    }
}
