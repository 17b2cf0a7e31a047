//! The controller's HTTP endpoints on `--listen` (default `0.0.0.0:8080`):
//!
//! * `GET /healthz`: 200 while the process serves at all (the liveness probe).
//! * `GET /readyz`: 200 once the keys are loaded and the watches have synced, else 503 naming
//!   what is missing. Not tied to holding the leader Lease: a standby replica is ready too,
//!   or a rolling update would wait for a Lease the old pods hold.
//! * `GET /metrics`: the [`Metrics`], encoded by prometheus-client. A scraper that accepts
//!   `application/openmetrics-text` (Prometheus does) gets OpenMetrics as the crate writes it;
//!   anything else (curl, `promtool check metrics`, older scrapers) gets the classic Prometheus
//!   text format 0.0.4, derived from the same output ([`to_prometheus_text`]).
//! * `GET /v1/recipients`: the controller's public recipients, newest first, in age's
//!   recipients-file format (ready to save under `keys/`).
//!
//! Everything here is public information: no endpoint serves or logs a sealed or unsealed
//! value, and none changes state.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The default of `--listen`.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// The paths served (the Deployment's probes and the Service's scrape use them).
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const RECIPIENTS: &str = "/v1/recipients";

/// What the OpenMetrics text encoder writes.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text format.
pub const PROMETHEUS_TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Readiness, shared between the controller (which sets it) and `/readyz` (which reads it).
/// Cheap to clone; every clone is the same state.
#[derive(Clone, Debug, Default)]
pub struct Health {
    inner: Arc<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    keys_loaded: AtomicBool,
    watches_synced: AtomicBool,
}

impl Health {
    /// Not ready: neither keys loaded nor watches synced.
    pub fn new() -> Self {
        Self::default()
    }

    /// The controller holds at least one identity (after `load_or_generate`).
    pub fn set_keys_loaded(&self, loaded: bool) {
        self.inner.keys_loaded.store(loaded, Ordering::Release);
    }

    /// Every watch has listed once (the first `InitDone` of each).
    pub fn set_watches_synced(&self, synced: bool) {
        self.inner.watches_synced.store(synced, Ordering::Release);
    }

    pub fn keys_loaded(&self) -> bool {
        self.inner.keys_loaded.load(Ordering::Acquire)
    }

    pub fn watches_synced(&self) -> bool {
        self.inner.watches_synced.load(Ordering::Acquire)
    }

    /// Keys loaded and watches synced.
    pub fn is_ready(&self) -> bool {
        self.keys_loaded() && self.watches_synced()
    }
}

/// Where `/v1/recipients` reads the recipients from, newest first.
pub trait RecipientSource: Send + Sync + 'static {
    fn recipients(&self) -> Vec<String>;
}

/// A closure is a source: the controller passes
/// `move || keys.current().recipients.clone()`, so what it holds is what it publishes.
impl<F> RecipientSource for F
where
    F: Fn() -> Vec<String> + Send + Sync + 'static,
{
    fn recipients(&self) -> Vec<String> {
        self()
    }
}

/// A recipient list set by hand.
#[derive(Clone, Debug, Default)]
pub struct StaticRecipients(Arc<RwLock<Vec<String>>>);

impl StaticRecipients {
    pub fn new(recipients: Vec<String>) -> Self {
        StaticRecipients(Arc::new(RwLock::new(recipients)))
    }

    pub fn set(&self, recipients: Vec<String>) {
        *self.0.write().expect("recipients lock") = recipients;
    }
}

impl RecipientSource for StaticRecipients {
    fn recipients(&self) -> Vec<String> {
        self.0.read().expect("recipients lock").clone()
    }
}

/// The recipients-file text `/v1/recipients` serves and ConfigMap `gitops-seal-recipients`
/// holds: a comment line, then each recipient (newest first) after a comment with its
/// fingerprint. Comments are part of age's recipients-file format, so the text stays a
/// recipients file (`recipient --fetch > keys/cluster.pub`).
pub fn recipients_text(recipients: &[String]) -> String {
    let mut text =
        String::from("# gitops-seal controller: seal for these recipients (newest first)\n");
    for r in recipients {
        if let Ok(parsed) = r.parse::<crate::core::Recipient>() {
            text.push_str("# fingerprint: ");
            text.push_str(&parsed.fingerprint());
            text.push('\n');
        }
        text.push_str(r);
        text.push('\n');
    }
    text
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabel {
    key: String,
    state: &'static str,
}

/// One key's figures for [`Metrics::set_key_usage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUse {
    /// The key's public fingerprint.
    pub fingerprint: String,
    /// `active`, `retired` or `deleting`.
    pub state: &'static str,
    /// Live SealedSecrets whose values need it.
    pub sealed_secrets: usize,
    /// Whether a live value (a SealedSecret's or the sync loop's) needs it.
    pub in_use: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: &'static str,
}

/// The `result` label of `gitops_seal_unseal_total`.
pub const RESULT_SUCCESS: &str = "success";
pub const RESULT_FAILURE: &str = "failure";

/// The controller's metrics. Cheap to clone; every clone counts into the same registry.
///
/// | metric | type | what |
/// |---|---|---|
/// | `gitops_seal_unseal_total{result}` | counter | reconciles that ended unsealed (`success`) or not (`failure`) |
/// | `gitops_seal_unseal_errors_total{reason}` | counter | failures by condition reason (KeyMissing, DecryptFailed, ...) or `KubeError` |
/// | `gitops_seal_keys` | gauge | identities the controller holds |
/// | `gitops_seal_reconcile_duration_seconds` | histogram | time per reconcile |
/// | `gitops_seal_managed_secrets` | gauge | Secrets carrying the managed-by label |
/// | `gitops_seal_leader` | gauge | 1 while this replica holds the leader Lease (or runs without leader election) |
/// | `gitops_seal_sync_last_success_timestamp_seconds` | gauge | when the sync loop last applied a commit fully |
/// | `gitops_seal_sync_duration_seconds` | histogram | time per sync pass, from fetch to the last apply or prune |
/// | `gitops_seal_sync_objects{action}` | gauge | objects the last pass `applied`, `pruned`, or `failed` to prune |
/// | `gitops_seal_key_sealedsecrets{key,state}` | gauge | live SealedSecrets whose values need each key held (by fingerprint; state `active`, `retired`, `deleting`) |
/// | `gitops_seal_key_in_use{key,state}` | gauge | 1 while a live value (a SealedSecret's or the sync loop's) needs the key |
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    unseal: Family<ResultLabel, Counter>,
    errors: Family<ReasonLabel, Counter>,
    keys: Gauge,
    reconcile_duration: Histogram,
    managed_secrets: Gauge,
    leader: Gauge,
    sync_last_success: Gauge,
    sync_duration: Histogram,
    sync_objects: Family<ActionLabel, Gauge>,
    key_sealedsecrets: Family<KeyLabel, Gauge>,
    key_in_use: Family<KeyLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("gitops_seal");
        let unseal = Family::<ResultLabel, Counter>::default();
        let errors = Family::<ReasonLabel, Counter>::default();
        let keys = Gauge::default();
        // 1 ms to ~16 s: an unseal is milliseconds of CPU, an API round trip tens of them.
        let reconcile_duration = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15),
        );
        let managed_secrets = Gauge::default();
        let leader = Gauge::default();
        registry.register(
            "unseal",
            "SealedSecret reconciles by result (success: the Secret is applied and Ready=True)",
            unseal.clone(),
        );
        registry.register(
            "unseal_errors",
            "Failed SealedSecret reconciles by reason (the Ready condition's reason, or KubeError)",
            errors.clone(),
        );
        registry.register("keys", "Identities the controller holds", keys.clone());
        registry.register_with_unit(
            "reconcile_duration",
            "Time taken by one SealedSecret reconcile",
            Unit::Seconds,
            reconcile_duration.clone(),
        );
        registry.register(
            "managed_secrets",
            "Secrets managed by the controller (label gitops-seal.dev/managed-by=controller)",
            managed_secrets.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica may write (holds the leader Lease, or runs without leader election)",
            leader.clone(),
        );
        let sync_last_success = Gauge::default();
        // 10 ms to ~5 min: a pass is a fetch, a plan and a few hundred round trips.
        let sync_duration = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.01, 2.0, 15),
        );
        let sync_objects = Family::<ActionLabel, Gauge>::default();
        registry.register_with_unit(
            "sync_last_success_timestamp",
            "When the sync loop last applied a commit fully (Unix time)",
            Unit::Seconds,
            sync_last_success.clone(),
        );
        registry.register_with_unit(
            "sync_duration",
            "Time taken by one sync pass",
            Unit::Seconds,
            sync_duration.clone(),
        );
        registry.register(
            "sync_objects",
            "Objects the last sync pass applied, pruned, or failed to prune",
            sync_objects.clone(),
        );
        let key_sealedsecrets = Family::<KeyLabel, Gauge>::default();
        let key_in_use = Family::<KeyLabel, Gauge>::default();
        registry.register(
            "key_sealedsecrets",
            "Live SealedSecrets whose values need each key the controller holds (by fingerprint)",
            key_sealedsecrets.clone(),
        );
        registry.register(
            "key_in_use",
            "1 while a live value (a SealedSecret's or the sync loop's) needs the key",
            key_in_use.clone(),
        );
        // Both results exist from the start, so a rate over them is defined before the first
        // failure.
        for result in [RESULT_SUCCESS, RESULT_FAILURE] {
            let _ = unseal.get_or_create(&ResultLabel { result });
        }
        Metrics {
            registry: Arc::new(registry),
            unseal,
            errors,
            keys,
            reconcile_duration,
            managed_secrets,
            leader,
            sync_last_success,
            sync_duration,
            sync_objects,
            key_sealedsecrets,
            key_in_use,
        }
    }

    /// The per-key figures, replacing the previous set (a key no longer held disappears).
    pub fn set_key_usage(&self, keys: &[KeyUse]) {
        self.key_sealedsecrets.clear();
        self.key_in_use.clear();
        for k in keys {
            let label = KeyLabel {
                key: k.fingerprint.clone(),
                state: k.state,
            };
            self.key_sealedsecrets
                .get_or_create(&label)
                .set(i64::try_from(k.sealed_secrets).unwrap_or(i64::MAX));
            self.key_in_use
                .get_or_create(&label)
                .set(i64::from(k.in_use));
        }
    }

    /// One sync pass ended: how long it took, and on success what it did.
    pub fn sync_pass(&self, took: Duration, done: Option<(usize, usize, usize)>) {
        self.sync_duration.observe(took.as_secs_f64());
        if let Some((applied, pruned, failed)) = done {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            self.sync_last_success
                .set(i64::try_from(now).unwrap_or(i64::MAX));
            for (action, n) in [("applied", applied), ("pruned", pruned), ("failed", failed)] {
                self.sync_objects
                    .get_or_create(&ActionLabel { action })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
    }

    /// A reconcile ended Ready=True (reason Unsealed).
    pub fn unsealed(&self) {
        self.unseal
            .get_or_create(&ResultLabel {
                result: RESULT_SUCCESS,
            })
            .inc();
    }

    /// A reconcile failed; `reason` is the condition reason (or `ReconcileError::metric_label`).
    pub fn unseal_failed(&self, reason: &str) {
        self.unseal
            .get_or_create(&ResultLabel {
                result: RESULT_FAILURE,
            })
            .inc();
        self.errors
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// How long one reconcile took.
    pub fn observe_reconcile(&self, took: Duration) {
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// The number of identities held (after every keyring change).
    pub fn set_keys(&self, n: usize) {
        self.keys.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The number of managed Secrets (from the managed-Secrets watch).
    pub fn set_managed_secrets(&self, n: usize) {
        self.managed_secrets
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Whether this replica may write.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The OpenMetrics text exposition (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// The classic Prometheus text format 0.0.4 ([`to_prometheus_text`] of [`Self::encode`]).
    pub fn encode_prometheus_text(&self) -> String {
        to_prometheus_text(&self.encode())
    }
}

/// The Prometheus text format 0.0.4 of an OpenMetrics exposition with counters, gauges and
/// histograms (what [`Metrics`] registers). The samples are the same; the formats differ in
/// metadata only: OpenMetrics names a counter family without its `_total` suffix and has
/// `# UNIT` and `# EOF` lines, which 0.0.4 does not know.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// What the endpoints read.
#[derive(Clone)]
pub struct HttpState {
    pub health: Health,
    pub metrics: Metrics,
    pub recipients: Arc<dyn RecipientSource>,
}

impl HttpState {
    pub fn new(health: Health, metrics: Metrics, recipients: Arc<dyn RecipientSource>) -> Self {
        HttpState {
            health,
            metrics,
            recipients,
        }
    }
}

/// The routes, for [`serve`] or for embedding in another server.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route(HEALTHZ, get(healthz))
        .route(READYZ, get(readyz))
        .route(METRICS, get(metrics))
        .route(RECIPIENTS, get(recipients))
        .with_state(state)
}

/// Binds `addr` (`--listen`). Port 0 picks a free port: see `local_addr()` of the result.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves the endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".into())
}

async fn readyz(State(state): State<HttpState>) -> Response {
    let health = &state.health;
    if health.is_ready() {
        return text(StatusCode::OK, "ok\n".into());
    }
    let mut missing = Vec::new();
    if !health.keys_loaded() {
        missing.push("keys not loaded");
    }
    if !health.watches_synced() {
        missing.push("watches not synced");
    }
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: {}\n", missing.join(", ")),
    )
}

async fn metrics(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (content_type, body) = if openmetrics {
        (OPENMETRICS_CONTENT_TYPE, state.metrics.encode())
    } else {
        (
            PROMETHEUS_TEXT_CONTENT_TYPE,
            state.metrics.encode_prometheus_text(),
        )
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn recipients(State(state): State<HttpState>) -> Response {
    let list = state.recipients.recipients();
    if list.is_empty() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "no recipients yet: the controller has not loaded its keys\n".into(),
        );
    }
    text(StatusCode::OK, recipients_text(&list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_keys_and_watches() {
        let h = Health::new();
        assert!(!h.is_ready());
        h.set_keys_loaded(true);
        assert!(!h.is_ready());
        let clone = h.clone();
        clone.set_watches_synced(true);
        assert!(h.is_ready(), "clones share one state");
        h.set_keys_loaded(false);
        assert!(!clone.is_ready());
    }

    #[test]
    fn metric_names_and_values() {
        let m = Metrics::new();
        m.unsealed();
        m.unsealed();
        m.unseal_failed("KeyMissing");
        m.set_keys(2);
        m.set_managed_secrets(7);
        m.set_leader(true);
        m.observe_reconcile(Duration::from_millis(3));
        let text = m.encode();
        for line in [
            "# TYPE gitops_seal_unseal counter",
            "gitops_seal_unseal_total{result=\"success\"} 2",
            "gitops_seal_unseal_total{result=\"failure\"} 1",
            "gitops_seal_unseal_errors_total{reason=\"KeyMissing\"} 1",
            "gitops_seal_keys 2",
            "gitops_seal_managed_secrets 7",
            "gitops_seal_leader 1",
            "# TYPE gitops_seal_reconcile_duration_seconds histogram",
            "# UNIT gitops_seal_reconcile_duration_seconds seconds",
            "gitops_seal_reconcile_duration_seconds_count 1",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn the_classic_text_format_names_counters_with_total() {
        let m = Metrics::new();
        m.unseal_failed("DecryptFailed");
        m.observe_reconcile(Duration::from_millis(1));
        let text = m.encode_prometheus_text();
        for line in [
            "# TYPE gitops_seal_unseal_total counter",
            "# TYPE gitops_seal_unseal_errors_total counter",
            "gitops_seal_unseal_errors_total{reason=\"DecryptFailed\"} 1",
            "# TYPE gitops_seal_keys gauge",
            "# TYPE gitops_seal_reconcile_duration_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(text
            .lines()
            .any(|l| l.starts_with("# HELP gitops_seal_unseal_total ")));
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        // HELP texts escape differently in the two formats; ours need no escaping.
        for help in m.encode().lines().filter(|l| l.starts_with("# HELP ")) {
            assert!(!help.contains('"') && !help.contains('\\'), "{help}");
        }
    }

    #[test]
    fn recipients_file_lists_newest_first() {
        let text = recipients_text(&["age1new".into(), "age1old".into()]);
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines, ["age1new", "age1old"]);
    }
}
