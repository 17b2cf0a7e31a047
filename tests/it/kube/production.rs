//! The controller in production: its HTTP endpoints (and `promtool check metrics` on
//! `/metrics`), leader election with two replicas over one Lease, and
//! `gitops-seal recipient --fetch` through a kubeconfig.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use tokio::sync::watch;

use gitops_seal::adapters::http::{
    self as endpoints, Health, HttpState, Metrics, StaticRecipients,
};
use gitops_seal::adapters::leader::{LeaderSettings, Leadership, LEASE_NAME};

use super::harness::{kubeconfig_for, require_fake, wait_for, within, KubeEnv, PATIENCE};

// --- HTTP ---------------------------------------------------------------------------------

/// `(status, content type, body)` of `GET http://addr{path}`.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    get_accepting(addr, path, None).await
}

/// As [`get`], with an `Accept` header.
async fn get_accepting(
    addr: SocketAddr,
    path: &str,
    accept: Option<&str>,
) -> (u16, String, String) {
    let client: HttpClient<_, Empty<Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::get(format!("http://{addr}{path}"));
    if let Some(accept) = accept {
        req = req.header(hyper::header::ACCEPT, accept);
    }
    let req = req.body(Empty::new()).expect("a request");
    let resp = within("an HTTP GET", PATIENCE, client.request(req))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = resp.into_body().collect().await.expect("a body").to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).expect("UTF-8"),
    )
}

/// Runs `promtool check metrics` on `text`: `None` when promtool is not installed.
fn promtool_check(text: &str) -> Option<(bool, String)> {
    use std::io::Write;
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("running promtool: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feeding promtool");
    let out = child.wait_with_output().expect("promtool");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), report))
}

/// The endpoints on 127.0.0.1:0: health, readiness as the controller sets it, recipients, and
/// metrics that Prometheus's own linter accepts.
#[tokio::test]
async fn http_endpoints_serve_health_readiness_recipients_and_metrics() {
    let health = Health::new();
    let metrics = Metrics::new();
    let recipients = StaticRecipients::default();
    let state = HttpState::new(
        health.clone(),
        metrics.clone(),
        Arc::new(recipients.clone()),
    );
    let listener = endpoints::bind("127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(endpoints::serve(listener, state, async {
        let _ = stop_rx.await;
    }));

    let (status, _, body) = get(addr, endpoints::HEALTHZ).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    // Not ready until both the keys are loaded and the watches synced.
    let (status, _, body) = get(addr, endpoints::READYZ).await;
    assert_eq!(status, 503);
    assert!(
        body.contains("keys not loaded") && body.contains("watches not synced"),
        "{body}"
    );
    health.set_keys_loaded(true);
    let (status, _, body) = get(addr, endpoints::READYZ).await;
    assert_eq!(status, 503);
    assert!(
        !body.contains("keys not loaded") && body.contains("watches not synced"),
        "{body}"
    );
    health.set_watches_synced(true);
    assert_eq!(get(addr, endpoints::READYZ).await.0, 200);

    // Recipients: none yet is 503; then the list, newest first, as a recipients file.
    assert_eq!(get(addr, endpoints::RECIPIENTS).await.0, 503);
    let newest = new_recipient();
    let oldest = new_recipient();
    recipients.set(vec![newest.clone(), oldest.clone()]);
    let (status, content_type, body) = get(addr, endpoints::RECIPIENTS).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let listed: Vec<&str> = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(listed, [newest.as_str(), oldest.as_str()]);
    // It parses as a recipients file (what `-R keys/cluster.txt` reads).
    for line in &listed {
        line.parse::<gitops_seal::core::keys::Recipient>()
            .expect("a recipient");
    }

    // Metrics, after some of everything the controller records.
    metrics.unsealed();
    metrics.unseal_failed("KeyMissing");
    metrics.unseal_failed("DecryptFailed");
    metrics.unseal_failed("KeyMissing");
    metrics.set_keys(2);
    metrics.set_managed_secrets(3);
    metrics.set_leader(true);
    metrics.observe_reconcile(Duration::from_millis(4));
    metrics.observe_reconcile(Duration::from_millis(40));
    // Prometheus asks for OpenMetrics and gets it, as prometheus-client encodes it.
    let (status, content_type, openmetrics) = get_accepting(
        addr,
        endpoints::METRICS,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert_eq!(openmetrics.lines().last(), Some("# EOF"));
    assert!(openmetrics.contains("gitops_seal_unseal_errors_total{reason=\"KeyMissing\"} 2"));
    // Anything else gets the classic text format, which promtool lints.
    let (status, content_type, text) = get(addr, endpoints::METRICS).await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    for line in [
        "gitops_seal_unseal_total{result=\"success\"} 1",
        "gitops_seal_unseal_total{result=\"failure\"} 3",
        "gitops_seal_unseal_errors_total{reason=\"KeyMissing\"} 2",
        "gitops_seal_unseal_errors_total{reason=\"DecryptFailed\"} 1",
        "gitops_seal_keys 2",
        "gitops_seal_managed_secrets 3",
        "gitops_seal_leader 1",
        "gitops_seal_reconcile_duration_seconds_count 2",
        "# TYPE gitops_seal_reconcile_duration_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    match promtool_check(&text) {
        None => eprintln!(
            "SKIPPED promtool check metrics: promtool is not installed (Debian package prometheus)"
        ),
        Some((ok, report)) => assert!(ok, "promtool check metrics failed:\n{report}\n{text}"),
    }

    let _ = stop_tx.send(());
    within("the HTTP server to stop", PATIENCE, server)
        .await
        .expect("server task")
        .expect("server");
}

fn new_recipient() -> String {
    gitops_seal::core::Identity::generate()
        .to_recipient()
        .expect("an X25519 identity has a recipient")
        .to_string()
}

// --- Leader election ----------------------------------------------------------------------

/// 4 s Leases renewed 2 s before they run out; a replica whose renewals fail stops writing 1 s
/// before its Lease could run out.
fn leader_settings(namespace: &str, identity: &str) -> LeaderSettings {
    let mut s = LeaderSettings::new(namespace, identity);
    s.lease_duration = Duration::from_secs(4);
    s.renew_grace = Duration::from_secs(2);
    s.safety_margin = Duration::from_secs(1);
    s
}

async fn lease(leases: &Api<Lease>) -> Option<(String, SystemTime)> {
    let spec = leases.get(LEASE_NAME).await.ok()?.spec?;
    let renewed: SystemTime = spec.renew_time?.0.into();
    let duration = Duration::from_secs(spec.lease_duration_seconds? as u64);
    Some((spec.holder_identity?, renewed + duration))
}

/// Watches two replicas' flags for the whole test and records whether they were ever both
/// `true` at once (two writers).
fn overlap_monitor(mut a: watch::Receiver<bool>, mut b: watch::Receiver<bool>) -> Arc<AtomicBool> {
    let overlapped = Arc::new(AtomicBool::new(false));
    let flag = overlapped.clone();
    tokio::spawn(async move {
        loop {
            if *a.borrow_and_update() && *b.borrow_and_update() {
                flag.store(true, Ordering::SeqCst);
            }
            tokio::select! {
                r = a.changed() => if r.is_err() { break },
                r = b.changed() => if r.is_err() { break },
            }
        }
    });
    overlapped
}

async fn becomes(rx: &mut watch::Receiver<bool>, value: bool, what: &str) {
    within(what, PATIENCE, rx.wait_for(|v| *v == value))
        .await
        .map(|_| ())
        .unwrap_or_else(|_| panic!("{what}: the leadership task ended"));
}

/// Two replicas: one leads and the Lease names it, the other stands by; when the leader stops,
/// the standby takes over; never both at once.
#[tokio::test]
async fn one_replica_leads_and_the_other_takes_over_when_it_stops() {
    let env = KubeEnv::new().await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    let alpha = Leadership::start(env.client.clone(), leader_settings(&env.namespace, "alpha"))
        .await
        .expect("alpha joins");
    let mut alpha_rx = alpha.subscribe();
    becomes(&mut alpha_rx, true, "alpha to lead").await;
    assert_eq!(lease(&leases).await.map(|l| l.0).as_deref(), Some("alpha"));

    let beta = Leadership::start(env.client.clone(), leader_settings(&env.namespace, "beta"))
        .await
        .expect("beta joins");
    let mut beta_rx = beta.subscribe();
    let overlapped = overlap_monitor(alpha.subscribe(), beta.subscribe());
    // Across more than one Lease duration, alpha renews and beta stays out (a bounded
    // observation window: the assertion is that nothing happens in it).
    let took = tokio::time::timeout(Duration::from_secs(6), beta_rx.wait_for(|v| *v))
        .await
        .map(|r| r.map(|_| ()));
    assert!(took.is_err(), "beta must not lead while alpha renews");
    assert!(alpha.is_leader(), "alpha still leads after renewing");

    alpha.stop().await;
    assert!(!*alpha_rx.borrow(), "a stopped replica reports not leading");
    becomes(&mut beta_rx, true, "beta to take over").await;
    wait_for("the Lease to name beta", PATIENCE, || async {
        lease(&leases).await.map(|l| l.0).as_deref() == Some("beta")
    })
    .await;
    assert!(
        !overlapped.load(Ordering::SeqCst),
        "alpha and beta led at once"
    );

    beta.stop().await;
    env.cleanup().await;
}

/// The API server refuses the leader's renewals (injected on the Lease path): it reports
/// not-leading before its last renewal runs out, while the Lease still names it.
#[tokio::test]
async fn a_leader_whose_renewals_fail_stops_before_its_lease_runs_out() {
    let env = KubeEnv::new().await;
    let server = require_fake!(env);
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    let alpha = Leadership::start(env.client.clone(), leader_settings(&env.namespace, "alpha"))
        .await
        .expect("alpha joins");
    let mut alpha_rx = alpha.subscribe();
    becomes(&mut alpha_rx, true, "alpha to lead").await;

    // Every write of the Lease fails from now on (reads and the watch keep working).
    let path = format!(
        "/apis/coordination.k8s.io/v1/namespaces/{}/leases/{LEASE_NAME}",
        env.namespace
    );
    server.fail_next_method(Some(hyper::Method::PATCH), &path, 1_000_000, 500, None);
    server.fail_next_method(Some(hyper::Method::PUT), &path, 1_000_000, 500, None);

    becomes(&mut alpha_rx, false, "alpha to stop leading").await;
    let stopped_at = SystemTime::now();
    let (holder, runs_out) = lease(&leases).await.expect("the Lease");
    assert_eq!(holder, "alpha", "nobody could write the Lease");
    assert!(
        stopped_at < runs_out,
        "alpha stopped at {stopped_at:?}, after its Lease ran out at {runs_out:?}"
    );

    alpha.stop().await;
    env.cleanup().await;
}

/// A `kube::Client` whose Lease writes fail while `cut` is set: one replica cut off from the
/// Lease (its renewals fail) while the other is not.
fn partitioned_client(env: &KubeEnv, cut: Arc<AtomicBool>) -> kube::Client {
    use tower::filter::FilterLayer;
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let layer = FilterLayer::new(
        move |req: hyper::Request<kube::client::Body>| -> Result<_, BoxError> {
            let lease_write =
                req.method() != hyper::Method::GET && req.uri().path().contains("/leases/");
            if lease_write && cut.load(Ordering::SeqCst) {
                return Err("injected: Lease write cut off".into());
            }
            Ok(req)
        },
    );
    kube::client::ClientBuilder::try_from(env.config().clone())
        .expect("client builder")
        .with_layer(&layer)
        .build()
}

/// The leader's renewals fail (only its own): it stops leading before its Lease runs out, the
/// other replica takes over after that, and the two never lead at once.
#[tokio::test]
async fn the_standby_takes_over_when_the_leaders_renewals_fail() {
    let env = KubeEnv::new().await;
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &env.namespace);
    let cut = Arc::new(AtomicBool::new(false));
    let alpha = Leadership::start(
        partitioned_client(&env, cut.clone()),
        leader_settings(&env.namespace, "alpha"),
    )
    .await
    .expect("alpha joins");
    let mut alpha_rx = alpha.subscribe();
    becomes(&mut alpha_rx, true, "alpha to lead").await;
    let beta = Leadership::start(env.client.clone(), leader_settings(&env.namespace, "beta"))
        .await
        .expect("beta joins");
    let mut beta_rx = beta.subscribe();
    let overlapped = overlap_monitor(alpha.subscribe(), beta.subscribe());

    cut.store(true, Ordering::SeqCst);
    becomes(&mut alpha_rx, false, "alpha to stop leading").await;
    let stopped_at = SystemTime::now();
    // Normally the Lease still names alpha here (beta may take it only once it has run out);
    // on a badly loaded machine beta may already hold it, and what matters then is the
    // overlap check below: alpha had stopped before beta started.
    let (holder, runs_out) = lease(&leases).await.expect("the Lease");
    if holder == "alpha" {
        assert!(
            stopped_at < runs_out,
            "alpha stopped at {stopped_at:?}, after its Lease ran out at {runs_out:?}"
        );
    }
    becomes(&mut beta_rx, true, "beta to take over").await;
    wait_for("the Lease to name beta", PATIENCE, || async {
        lease(&leases).await.map(|l| l.0).as_deref() == Some("beta")
    })
    .await;
    assert!(!alpha.is_leader(), "alpha, cut off, does not lead");
    assert!(
        !overlapped.load(Ordering::SeqCst),
        "alpha and beta led at once"
    );

    alpha.stop().await;
    beta.stop().await;
    env.cleanup().await;
}

// --- recipient --fetch --------------------------------------------------------------------

/// Runs the binary off the async runtime (the test API server answers on it meanwhile).
async fn run_binary(args: Vec<String>, envs: Vec<(&'static str, String)>) -> (i32, String, String) {
    let out = within(
        "gitops-seal to finish",
        PATIENCE,
        tokio::task::spawn_blocking(move || {
            let mut c = Command::new(env!("CARGO_BIN_EXE_gitops-seal"));
            c.args(&args).env_remove("KUBECONFIG");
            for (k, v) in envs {
                c.env(k, v);
            }
            c.output().expect("run gitops-seal")
        }),
    )
    .await
    .expect("the blocking task");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `recipient --fetch` prints ConfigMap gitops-seal-recipients as it is, through a kubeconfig
/// file (and through $KUBECONFIG, with a named context).
#[tokio::test]
async fn recipient_fetch_prints_the_clusters_recipients() {
    let env = KubeEnv::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = kubeconfig_for(&env, dir.path());
    let recipient = new_recipient();
    let text = format!(
        "# gitops-seal controller: seal for these recipients (newest first)\n{recipient}\n"
    );
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("gitops-seal-recipients".into()),
            ..ObjectMeta::default()
        },
        data: Some([("recipients.txt".to_owned(), text.clone())].into()),
        ..ConfigMap::default()
    };
    let configmaps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    within(
        "create the ConfigMap",
        PATIENCE,
        configmaps.create(&PostParams::default(), &cm),
    )
    .await
    .expect("create the recipients ConfigMap");

    let (code, stdout, stderr) = run_binary(
        vec![
            "recipient".into(),
            "--fetch".into(),
            "--namespace".into(),
            env.namespace.clone(),
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
        ],
        vec![],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, text);
    // What it prints is a recipients file the CLI seals with.
    let keys = gitops_seal::core::keys::parse_recipients_file(&stdout).expect("a recipients file");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].to_string(), recipient);

    if env.server().is_some() {
        let (code, stdout, stderr) = run_binary(
            vec![
                "recipient".into(),
                "--fetch".into(),
                "-n".into(),
                env.namespace.clone(),
                "--context".into(),
                "kube-test-server".into(),
            ],
            vec![("KUBECONFIG", kubeconfig.display().to_string())],
        )
        .await;
        assert_eq!((code, stdout.as_str()), (0, text.as_str()), "{stderr}");
    }
    env.cleanup().await;
}

/// The errors name what is missing: the kubeconfig, the ConfigMap (with its namespace), the
/// permission.
#[tokio::test]
async fn recipient_fetch_errors_name_what_is_missing() {
    let env = KubeEnv::new().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = kubeconfig_for(&env, dir.path());
    let fetch = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec!["recipient".into(), "--fetch".into()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };

    // No ConfigMap in the namespace.
    let (code, stdout, stderr) = run_binary(
        fetch(&[
            "-n",
            &env.namespace,
            "--kubeconfig",
            &kubeconfig.display().to_string(),
        ]),
        vec![],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("gitops-seal-recipients") && stderr.contains(&env.namespace),
        "the error names the ConfigMap and the namespace: {stderr}"
    );
    assert!(stderr.contains("not found"), "{stderr}");

    // No kubeconfig at all: $KUBECONFIG unset and an empty $HOME.
    let home = tempfile::tempdir().expect("home");
    let (code, _, stderr) = run_binary(
        fetch(&[]),
        vec![("HOME", home.path().display().to_string())],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no kubeconfig"), "{stderr}");
    assert!(stderr.contains(".kube/config"), "{stderr}");
    // A --kubeconfig that does not exist is named.
    let missing = dir.path().join("nope");
    let (code, _, stderr) = run_binary(
        fetch(&["--kubeconfig", &missing.display().to_string()]),
        vec![],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("no kubeconfig") && stderr.contains("nope"),
        "{stderr}"
    );

    // 403 (what a user without the Role gets; injected, as the test API server admits all).
    if let Some(server) = env.server() {
        let path = format!(
            "/api/v1/namespaces/{}/configmaps/gitops-seal-recipients",
            env.namespace
        );
        server.fail_next(&path, 1, 403, None);
        let (code, _, stderr) = run_binary(
            fetch(&[
                "-n",
                &env.namespace,
                "--kubeconfig",
                &kubeconfig.display().to_string(),
            ]),
            vec![],
        )
        .await;
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("not allowed to get ConfigMap gitops-seal-recipients"),
            "{stderr}"
        );
        assert!(
            stderr.contains("gitops-seal-recipients-reader"),
            "the hint names the Role: {stderr}"
        );
    }
    env.cleanup().await;
}
