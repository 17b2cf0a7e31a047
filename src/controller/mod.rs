//! The in-cluster controller: holds the private keys and turns SealedSecrets into Secrets.
//!
//! [`run`] is the whole controller, callable in-process (the tests run it so) and from
//! `gitops-seal controller`. It loads or generates the identities ([`keys`]), watches them,
//! and runs a `kube::runtime::Controller` over SealedSecrets with the managed Secrets watched
//! metadata-only by label ([`reconcile`]); the pure decisions are in [`render`].

pub mod decide;
pub mod keys;
pub mod lifecycle;
pub mod reconcile;
pub mod render;
pub mod usage;

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
pub use crate::core::names::CONTROLLER_FIELD_MANAGER as FIELD_MANAGER;

/// SealedSecrets reconciled at once by default: enough to keep a remote API server's round
/// trips overlapped, few enough that a start with thousands to unseal stays small.
pub const DEFAULT_CONCURRENCY: u16 = 32;

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
    /// The kind of key generated (the first one, and each rotation): post-quantum by default.
    pub key_type: crate::core::keys::KeyKind,
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
    /// Where to serve /healthz, /readyz, /metrics and /v1/recipients (`None`: no HTTP).
    pub listen: Option<std::net::SocketAddr>,
    /// Take part in leader election through a coordination.k8s.io/v1 Lease; only the leader
    /// writes.
    pub leader_election: bool,
    /// The GitOps reconcile loop, run inside the controller with its identities (only the
    /// leader syncs).
    pub sync: Option<crate::sync::Settings>,
    /// The client the sync loop applies with when it is not the controller's own
    /// (`--sync-service-account`: impersonating that ServiceAccount, so its RBAC bounds what the
    /// repository can change).
    pub sync_client: Option<SyncClient>,
    /// SealedSecrets reconciled at once (0: no bound). Bounds the start-up peak of memory when
    /// thousands are reconciled together.
    pub concurrency: u16,
    /// `--rollout`: roll the workloads a SealedSecret's `gitops-seal.dev/rollout` annotation
    /// names when its Secret's data changes.
    pub rollout: bool,
    /// How often the key lifecycle (usage, finalizers) is recomputed without a change.
    pub lifecycle_every: Duration,
}

/// A Kubernetes client for the sync loop (see [`Settings::sync_client`]).
#[derive(Clone)]
pub struct SyncClient(pub kube::Client);

impl std::fmt::Debug for SyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncClient")
    }
}

impl Settings {
    pub fn new(namespace: impl Into<String>) -> Self {
        Settings {
            namespace: namespace.into(),
            watch_namespaces: Vec::new(),
            generate: true,
            key_rotation: None,
            key_type: crate::core::keys::KeyKind::Pq,
            template_deny: Vec::new(),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            conflict_retry: Duration::from_secs(5),
            instance: None,
            listen: None,
            leader_election: false,
            sync: None,
            sync_client: None,
            concurrency: DEFAULT_CONCURRENCY,
            rollout: false,
            lifecycle_every: Duration::from_secs(30),
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
    #[error("cannot listen on {0}")]
    Listen(std::net::SocketAddr, #[source] std::io::Error),
    #[error("leader election")]
    Leader(#[from] crate::adapters::leader::LeaderError),
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

pub use crate::core::duration::parse_duration;

/// A task the controller runs until it stops.
type Work = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs the controller until `shutdown` completes (or an error stops it before it starts):
/// HTTP first (so /readyz can say what is missing), then the keys, leader election, and the
/// tasks of each concern ([`key_work`], [`sync_work`], [`controller_work`]).
pub async fn run(
    client: kube::Client,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ControllerError> {
    let deny = DenyList::new(&settings.template_deny)?;
    let health = crate::adapters::http::Health::new();
    let metrics = crate::adapters::http::Metrics::new();
    let keys = keys::Keys::new();
    tokio::pin!(shutdown);
    let http_stop = start_http(&settings, &health, &metrics, &keys).await?;
    tokio::select! {
        r = load_keys(&client, &settings, &keys) => r?,
        _ = &mut shutdown => return Ok(()),
    }
    health.set_keys_loaded(true);
    metrics.set_keys(keys.current().identities.len());
    let leadership = start_leadership(&client, &settings).await?;
    let leader = leadership.as_ref().map(|l| l.subscribe());
    tracing::info!(
        namespace = %settings.namespace,
        recipients = ?keys.current().recipients,
        "keys loaded"
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        keys: keys.clone(),
        deny,
        recorder: recorder(&client, &settings),
        settings: settings.clone(),
        failures: Mutex::new(HashMap::new()),
        waiting_for_key: Mutex::new(HashSet::new()),
        metrics: metrics.clone(),
        leader: leader.clone(),
        holds: Arc::default(),
    });
    let mut work = key_work(&client, &settings, &keys, &metrics);
    work.extend(leader_metric_work(leader.clone(), &metrics));
    work.extend(sync_work(&client, &settings, &ctx));
    work.extend(controller_work(&ctx, &health));
    tokio::select! {
        _ = futures::future::join_all(work) => {}
        _ = shutdown => {}
    }
    if let Some(l) = leadership {
        l.stop().await;
    }
    let _ = http_stop.send(());
    tracing::info!("controller stopped");
    Ok(())
}

/// The Events reporter: this controller, and the pod it runs in.
fn recorder(client: &kube::Client, settings: &Settings) -> Recorder {
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: settings.instance.clone(),
    };
    Recorder::new(client.clone(), reporter)
}

/// Serves /healthz, /readyz, /metrics and /v1/recipients (with `--listen`) until the returned
/// sender fires.
async fn start_http(
    settings: &Settings,
    health: &crate::adapters::http::Health,
    metrics: &crate::adapters::http::Metrics,
    keys: &Arc<keys::Keys>,
) -> Result<tokio::sync::oneshot::Sender<()>, ControllerError> {
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(addr) = settings.listen {
        let listener = crate::adapters::http::bind(addr)
            .await
            .map_err(|e| ControllerError::Listen(addr, e))?;
        let keys_for_http = keys.clone();
        let state = crate::adapters::http::HttpState::new(
            health.clone(),
            metrics.clone(),
            Arc::new(move || keys_for_http.current().recipients.clone()),
        );
        tokio::spawn(async move {
            let stopped = async {
                let _ = http_stopped.await;
            };
            if let Err(e) = crate::adapters::http::serve(listener, state, stopped).await {
                tracing::error!(error = %e, "the HTTP server stopped");
            }
        });
    }
    Ok(http_stop)
}

/// Loads the identities (generating the first one if asked) and publishes the recipients.
async fn load_keys(
    client: &kube::Client,
    settings: &Settings,
    keys: &keys::Keys,
) -> Result<(), ControllerError> {
    let identity_secrets: Api<Secret> = Api::namespaced(client.clone(), &settings.namespace);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &settings.namespace);
    keys::load_or_generate(
        &identity_secrets,
        &settings.namespace,
        settings.generate.then_some(settings.key_type),
        keys,
    )
    .await?;
    keys::publish_recipients(&configmaps, &keys.current()).await?;
    Ok(())
}

/// With `--leader-election`: takes part in the Lease (only the leader writes).
async fn start_leadership(
    client: &kube::Client,
    settings: &Settings,
) -> Result<Option<crate::adapters::leader::Leadership>, ControllerError> {
    if !settings.leader_election {
        return Ok(None);
    }
    let holder = crate::adapters::leader::holder_identity(settings.instance.as_deref());
    let lease = crate::adapters::leader::LeaderSettings::new(settings.namespace.clone(), holder);
    Ok(Some(
        crate::adapters::leader::Leadership::start(client.clone(), lease).await?,
    ))
}

/// The keys: the identity watch (republishing the recipients), `--key-rotation`, and the keys
/// metric.
fn key_work(
    client: &kube::Client,
    settings: &Settings,
    keys: &Arc<keys::Keys>,
    metrics: &crate::adapters::http::Metrics,
) -> Vec<Work> {
    let identity_secrets: Api<Secret> = Api::namespaced(client.clone(), &settings.namespace);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &settings.namespace);
    let mut work: Vec<Work> = vec![Box::pin(keys::watch_identities(
        identity_secrets.clone(),
        configmaps,
        keys.clone(),
    ))];
    if let Some(every) = settings.key_rotation {
        work.push(Box::pin(keys::rotate_keys(
            identity_secrets,
            settings.namespace.clone(),
            every,
            settings.key_type,
        )));
    }
    let (keys, metrics) = (keys.clone(), metrics.clone());
    work.push(Box::pin(async move {
        let mut rx = keys.subscribe();
        while rx.changed().await.is_ok() {
            metrics.set_keys(keys.current().identities.len());
        }
    }));
    work
}

/// The leader metric, following the Lease.
fn leader_metric_work(
    leader: Option<tokio::sync::watch::Receiver<bool>>,
    metrics: &crate::adapters::http::Metrics,
) -> Option<Work> {
    let mut rx = leader?;
    let metrics = metrics.clone();
    Some(Box::pin(async move {
        loop {
            metrics.set_leader(*rx.borrow_and_update());
            if rx.changed().await.is_err() {
                break;
            }
        }
    }))
}

/// The GitOps loop inside the controller (`--sync-repo`), with its keys, its deny list and
/// its own client.
fn sync_work(client: &kube::Client, settings: &Settings, ctx: &Arc<Context>) -> Option<Work> {
    let mut sync_settings = settings.sync.clone()?;
    // The loop refuses what this controller would (its deny list, --template-deny
    // included), and writes nothing in the namespace that holds its keys.
    sync_settings.plan.deny = ctx.deny.clone();
    sync_settings.plan.protected_namespace = Some(settings.namespace.clone());
    // The keys a pass opened with are held before it writes, as a SealedSecret's are.
    let hold_ctx = ctx.clone();
    sync_settings.hold_keys = Some(crate::sync::HoldKeys(Arc::new(move |fingerprints| {
        let ctx = hold_ctx.clone();
        Box::pin(async move {
            let claim = lifecycle::hold(
                &ctx.client,
                &ctx.settings.namespace,
                &ctx.holds,
                &ctx.keys.current().keys,
                &fingerprints,
            )
            .await?;
            Ok(Box::new(claim) as crate::sync::HoldGuard)
        })
    })));
    let keys = ctx.keys.clone();
    let sync_client = settings
        .sync_client
        .clone()
        .map_or_else(|| client.clone(), |c| c.0);
    Some(Box::pin(crate::sync::run(
        sync_client,
        sync_settings,
        move || keys.current(),
        ctx.leader.clone(),
        Some(ctx.metrics.clone()),
        std::future::pending(),
    )))
}

/// One `kube::runtime::Controller` per watched scope, and the key lifecycle over what their
/// watches hold.
fn controller_work(ctx: &Arc<Context>, health: &crate::adapters::http::Health) -> Vec<Work> {
    let settings = &ctx.settings;
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
    let synced = Arc::new(std::sync::atomic::AtomicUsize::new(scopes.len()));
    let changed = Arc::new(tokio::sync::Notify::new());
    let mut stores = Vec::new();
    let mut work: Vec<Work> = Vec::new();
    for scope in scopes {
        let (reader, writer) = reflector::store();
        stores.push(reader.clone());
        work.push(Box::pin(controller(
            ctx.client.clone(),
            scope,
            ctx.clone(),
            (reader, writer),
            Watched {
                health: health.clone(),
                unsynced: synced.clone(),
                changed: changed.clone(),
            },
            settings.concurrency,
        )));
    }
    work.push(Box::pin(lifecycle::run(
        lifecycle::Lifecycle {
            client: ctx.client.clone(),
            namespace: settings.namespace.clone(),
            keys: ctx.keys.clone(),
            stores,
            changed,
            health: health.clone(),
            metrics: ctx.metrics.clone(),
            recorder: recorder(&ctx.client, settings),
            leader: ctx.leader.clone(),
            sync_status: settings
                .sync
                .as_ref()
                .map(|s| (s.namespace.clone(), s.status_configmap())),
            holds: ctx.holds.clone(),
        },
        settings.lifecycle_every,
    )));
    work
}

/// What the SealedSecret watches report to: readiness once every scope has listed, and the
/// key lifecycle on every change.
struct Watched {
    health: crate::adapters::http::Health,
    unsynced: Arc<std::sync::atomic::AtomicUsize>,
    changed: Arc<tokio::sync::Notify>,
}

/// One `kube::runtime::Controller` over the SealedSecrets of `namespace` (or all).
async fn controller(
    client: kube::Client,
    namespace: Option<String>,
    ctx: Arc<Context>,
    (reader, writer): (
        reflector::Store<SealedSecretResource>,
        reflector::store::Writer<SealedSecretResource>,
    ),
    watched: Watched,
    concurrency: u16,
) {
    let Watched {
        health,
        unsynced,
        changed,
    } = watched;
    let (sealed_api, secrets_api): (Api<SealedSecretResource>, Api<PartialObjectMeta<Secret>>) =
        match &namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
    // Spec changes (generation), annotation changes (recreate, owner-reference) and new
    // objects trigger; our own status writes do not.
    // Ready once every scope's SealedSecret watch has listed (its first InitDone).
    let mut listed = false;
    let sealed_watch = watcher(sealed_api, watcher::Config::default())
        .default_backoff()
        .inspect(move |event| {
            if matches!(event, Ok(watcher::Event::InitDone)) && !listed {
                listed = true;
                if unsynced.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                    health.set_watches_synced(true);
                }
            }
            if matches!(
                event,
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone)
            ) {
                changed.notify_one();
            }
        });
    let sealed = reflector::reflector(writer, sealed_watch)
        .applied_objects()
        .predicate_filter(
            predicates::generation.combine(predicates::annotations),
            Default::default(),
        )
        .filter_map(|r| futures::future::ready(logged(r, "SealedSecrets")));
    let (managed, relisted_rx) = managed_secrets(secrets_api, ctx.metrics.clone());
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
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .reconcile_on(retries)
        .reconcile_all_on(relisted_rx)
        .reconcile_all_on(retiring_changes(ctx.keys.clone()))
        .reconcile_all_on(match ctx.leader.clone() {
            Some(rx) => crate::adapters::leader::acquisitions(rx).boxed(),
            None => futures::stream::pending().boxed(),
        })
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
}

/// Managed Secrets, metadata only (`Api<PartialObjectMeta<_>>` lists and watches with
/// `as=PartialObjectMetadata`), by label; mapped back by name (so one without an
/// ownerReference is restored too). A relist of this watch (after a 410, say) cannot tell what
/// was deleted while it was away, so each relist ticks the second stream: every SealedSecret is
/// reconciled.
fn managed_secrets(
    secrets_api: Api<PartialObjectMeta<Secret>>,
    metrics: crate::adapters::http::Metrics,
) -> (
    impl futures::Stream<Item = Result<PartialObjectMeta<Secret>, watcher::Error>> + Send,
    futures::channel::mpsc::UnboundedReceiver<()>,
) {
    let (relisted_tx, relisted_rx) = futures::channel::mpsc::unbounded::<()>();
    let mut managed_names: HashSet<(String, String)> = HashSet::new();
    let managed = watcher(
        secrets_api,
        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")),
    )
    .default_backoff()
    .filter_map(move |event| {
        match &event {
            Ok(watcher::Event::Init) => managed_names.clear(),
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                managed_names.insert((o.namespace().unwrap_or_default(), o.name_any()));
            }
            Ok(watcher::Event::Delete(o)) => {
                managed_names.remove(&(o.namespace().unwrap_or_default(), o.name_any()));
            }
            _ => {}
        }
        metrics.set_managed_secrets(managed_names.len());
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
    (managed, relisted_rx)
}

/// Ticks when the set of retiring keys (retired, or being deleted) changes: every
/// SealedSecret is reconciled again, so that values another key also opens are attributed to
/// it and the retiring key's use shrinks to what truly needs it.
fn retiring_changes(keys: Arc<keys::Keys>) -> impl futures::Stream<Item = ()> + Send {
    let first = usage::retiring(&keys.current().keys);
    futures::stream::unfold(
        (keys.subscribe(), keys, first),
        |(mut rx, keys, mut last)| async move {
            loop {
                rx.changed().await.ok()?;
                let now = usage::retiring(&keys.current().keys);
                if now != last {
                    last = now;
                    return Some(((), (rx, keys, last)));
                }
            }
        },
    )
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
