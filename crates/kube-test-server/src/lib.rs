//! An in-memory Kubernetes API server for gitops-seal's tests and benchmarks.
//!
//! It answers over plain HTTP on a loopback port, so the real `kube::Client` and
//! `kube::runtime` talk to it exactly as they talk to a cluster. Its behaviour is written from
//! the Kubernetes API documentation and from what a real kube-apiserver answered (the
//! transcripts under `tests/fixtures/kube-api-transcripts/`, replayed by the conformance test),
//! never from what gitops-seal's own code sends.
//!
//! What it serves: discovery (including aggregated discovery), create/get/list/update/delete,
//! merge, JSON and strategic merge patches, server-side apply with managedFields and conflicts,
//! `dryRun=All`, `fieldValidation`, list and watch with selectors, paging, bookmarks and 410
//! Expired, metadata-only (`PartialObjectMetadata`) lists and watches, namespaces, the status
//! subresource, CustomResourceDefinitions becoming Established, Leases and Events.
//!
//! The built-in kinds it serves ([`registry::builtins`]): Namespaces, ConfigMaps, Secrets,
//! ServiceAccounts, Services and core/v1 Events; events.k8s.io Events; Leases;
//! CustomResourceDefinitions; RBAC Roles, RoleBindings, ClusterRoles and ClusterRoleBindings; and
//! the apps/v1 workloads a rollout patches, Deployments, StatefulSets and DaemonSets (stored as
//! written: their specs are neither defaulted nor validated, `metadata.generation` follows the
//! spec, and there is no `scale` subresource).
//!
//! What it does not do: garbage collection and namespace finalisation (kube-controller-manager's
//! work, not the API server's: an owner's deletion leaves its dependents, a deleted Namespace
//! stays Terminating), admission webhooks, aggregated APIs, authentication and authorisation
//! (every request is admitted), protobuf, and conversion between CRD versions (served versions
//! share one stored form).
//!
//! Faults can be injected for robustness tests: see [`TestApiServer::fail_next`] and friends.
#![forbid(unsafe_code)]

pub mod convert;
pub mod discovery;
pub mod fields;
mod gojson;
mod http;
pub mod object;
pub mod patch;
pub mod registry;
mod request;
pub mod selectors;
pub mod status;
pub mod store;
pub mod validate;
mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use axum::http::Method;
use tokio::sync::{oneshot, watch as tokio_watch};

use crate::status::Failure;
use crate::store::State;

/// How many events the server keeps for watches to resume from (the real watch cache keeps
/// a window too; older resourceVersions get 410 Expired).
pub const DEFAULT_HISTORY: usize = 10_000;

struct FaultRule {
    path_prefix: String,
    method: Option<Method>,
    remaining: usize,
    code: u16,
    retry_after: Option<u64>,
}

struct DelayRule {
    path_prefix: String,
    remaining: usize,
    delay: Duration,
}

struct HoldRule {
    methods: Vec<Method>,
    path_prefix: String,
    arrived: oneshot::Sender<()>,
    release: oneshot::Receiver<()>,
}

/// A request held at the server's door by [`TestApiServer::hold_next`]: the test learns that it
/// arrived, does what must happen in between, then lets it through. Races made deterministic,
/// without a sleep.
pub struct Held {
    arrived: oneshot::Receiver<()>,
    release: oneshot::Sender<()>,
}

impl Held {
    /// Waits until the held request has arrived (and is waiting, not yet processed). `false`
    /// if the server went away first.
    pub async fn arrived(&mut self) -> bool {
        (&mut self.arrived).await.is_ok()
    }

    /// Lets the held request through.
    pub fn release(self) {
        let _ = self.release.send(());
    }
}

#[derive(Default)]
pub(crate) struct Faults {
    rules: Mutex<(Vec<FaultRule>, Vec<DelayRule>)>,
    holds: Mutex<Vec<HoldRule>>,
    /// Added before every response, in microseconds: a real API server's round trip.
    latency_us: std::sync::atomic::AtomicU64,
}

impl Faults {
    /// If a hold rule matches, says the request arrived and waits until it is released (or the
    /// test dropped its [`Held`]).
    pub(crate) async fn hold(&self, method: &Method, path: &str) {
        let rule = {
            let mut holds = self.holds.lock().expect("holds");
            let i = holds
                .iter()
                .position(|h| path.starts_with(&h.path_prefix) && h.methods.contains(method));
            i.map(|i| holds.remove(i))
        };
        if let Some(rule) = rule {
            let _ = rule.arrived.send(());
            let _ = rule.release.await;
        }
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The fault and delay the next request to `path` meets, consuming one of each rule.
    pub(crate) fn take(
        &self,
        method: &Method,
        path: &str,
    ) -> Option<(Option<Failure>, Option<Duration>)> {
        let mut g = self.rules.lock().expect("faults");
        let (rules, delays) = &mut *g;
        let mut failure = None;
        if let Some(r) = rules.iter_mut().find(|r| {
            r.remaining > 0
                && path.starts_with(&r.path_prefix)
                && r.method.as_ref().is_none_or(|m| m == method)
        }) {
            r.remaining -= 1;
            failure = Some(injected(r.code, r.retry_after));
        }
        rules.retain(|r| r.remaining > 0);
        let mut delay = None;
        if let Some(d) = delays
            .iter_mut()
            .find(|d| d.remaining > 0 && path.starts_with(&d.path_prefix))
        {
            d.remaining -= 1;
            delay = Some(d.delay);
        }
        delays.retain(|d| d.remaining > 0);
        (failure.is_some() || delay.is_some()).then_some((failure, delay))
    }
}

/// The Status kube-apiserver answers for each injectable code.
fn injected(code: u16, retry_after: Option<u64>) -> Failure {
    let (reason, message) = match code {
        429 => (
            "TooManyRequests",
            "Too many requests, please try again later.",
        ),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted",
        ),
        409 => ("Conflict", "injected conflict"),
        _ => ("InternalError", "Internal error occurred: injected fault"),
    };
    let mut f = Failure::status(code, reason, message, None);
    if let (429, Some(s)) | (503, Some(s)) = (code, retry_after) {
        f.body["details"] = serde_json::json!({"retryAfterSeconds": s});
    }
    f.retry_after = retry_after;
    f
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) faults: Faults,
    /// Bumped to close every open watch.
    pub(crate) watch_drops: tokio_watch::Sender<u64>,
    /// `Impersonate-User` headers seen, with the request they came on (`METHOD path`). There
    /// is no authorisation here: tests assert what a client asked to be, the real server
    /// enforces it.
    pub(crate) impersonations: Mutex<Vec<(String, String)>>,
    addr: SocketAddr,
}

impl Shared {
    pub(crate) fn address(&self) -> String {
        self.addr.to_string()
    }
}

/// A running test API server. Dropping it stops it.
pub struct TestApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestApiServer {
    /// Start on a free loopback port, on the current Tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().expect("address"), DEFAULT_HISTORY).await
    }

    /// Start on `addr`, keeping `history` events for watches to resume from.
    pub async fn start_on(addr: SocketAddr, history: usize) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (drops, _) = tokio_watch::channel(0u64);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(history)),
            faults: Faults::default(),
            watch_drops: drops,
            impersonations: Mutex::new(Vec::new()),
            addr,
        });
        let app = axum::Router::new()
            .fallback(http::handle)
            .with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        // TCP_NODELAY on every connection, as Go's net/http (and so kube-apiserver) sets it:
        // without it, Nagle's algorithm meets the client's delayed ACK and some responses wait
        // 40 ms, which a real API server never adds.
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(TestApiServer {
            shared,
            addr,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig for this server (context `kube-test-server`, namespace `default`).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-test-server\n  cluster:\n    server: {url}\nusers:\n- name: kube-test-server\n  user:\n    token: kube-test-server\ncontexts:\n- name: kube-test-server\n  context:\n    cluster: kube-test-server\n    user: kube-test-server\n    namespace: default\ncurrent-context: kube-test-server\n",
            url = self.url()
        )
    }

    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// The next `n` requests whose path starts with `path_prefix` (any method) answer `code`
    /// (500, 429, 503, ...) with the Status kube-apiserver writes for it; `retry_after` adds
    /// a `Retry-After` header (429/503).
    pub fn fail_next(&self, path_prefix: &str, n: usize, code: u16, retry_after: Option<u64>) {
        self.fail_next_method(None, path_prefix, n, code, retry_after);
    }

    /// As [`Self::fail_next`], for one method only (say, only PATCH: writes fail, reads work).
    pub fn fail_next_method(
        &self,
        method: Option<Method>,
        path_prefix: &str,
        n: usize,
        code: u16,
        retry_after: Option<u64>,
    ) {
        self.shared
            .faults
            .rules
            .lock()
            .expect("faults")
            .0
            .push(FaultRule {
                path_prefix: path_prefix.to_string(),
                method,
                remaining: n,
                code,
                retry_after,
            });
    }

    /// Delay the next `n` responses to paths starting with `path_prefix`.
    /// Delays every request by `latency` from now on, as the round trip to a real API server
    /// (TLS, admission, etcd) would: for benchmarks of what many sequential requests cost.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.faults.latency_us.store(
            u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    pub fn delay_next(&self, path_prefix: &str, n: usize, delay: Duration) {
        self.shared
            .faults
            .rules
            .lock()
            .expect("faults")
            .1
            .push(DelayRule {
                path_prefix: path_prefix.to_string(),
                remaining: n,
                delay,
            });
    }

    /// Holds the next request with one of `methods` to a path starting with `path_prefix`
    /// before the server looks at it, until the returned [`Held`] releases it (or is dropped).
    pub fn hold_next(&self, methods: &[Method], path_prefix: &str) -> Held {
        let (arrived_tx, arrived_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        self.shared
            .faults
            .holds
            .lock()
            .expect("holds")
            .push(HoldRule {
                methods: methods.to_vec(),
                path_prefix: path_prefix.to_string(),
                arrived: arrived_tx,
                release: release_rx,
            });
        Held {
            arrived: arrived_rx,
            release: release_tx,
        }
    }

    /// Close every open watch (clients resume from their last resourceVersion).
    pub fn drop_watches(&self) {
        self.shared.watch_drops.send_modify(|n| *n += 1);
    }

    /// Forget the event history and close every watch: resuming from any earlier
    /// resourceVersion is 410 Expired, so clients must list again.
    pub fn expire_watches(&self) {
        self.shared.state.lock().expect("state").compact();
        self.drop_watches();
    }

    /// What a restart of the API server looks like to clients: every watch closed, the state
    /// kept (etcd outlives the API server).
    pub fn restart(&self) {
        self.drop_watches();
    }

    /// Every `Impersonate-User` header received so far, as (`METHOD path`, user).
    pub fn impersonations(&self) -> Vec<(String, String)> {
        self.shared
            .impersonations
            .lock()
            .expect("impersonations")
            .clone()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.state.lock().expect("state").rv
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.drop_watches();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
