//! The one harness for every Kubernetes test: a [`KubeEnv`] gives a test a real `kube::Client`
//! and a namespace of its own, on the project's in-memory test API server by default.
//!
//! # Running the suite against a real cluster
//!
//! ```text
//! GITOPS_SEAL_TEST_KUBECONFIG=$HOME/.kube/kind-config cargo test --test it kube::
//! ```
//!
//! With `GITOPS_SEAL_TEST_KUBECONFIG` naming a kubeconfig, the client is built from that file's
//! current context instead of a test API server. The identity in it must be allowed to create
//! and delete Namespaces, CustomResourceDefinitions (cluster-scoped; tests apply theirs and
//! leave them in place, so a second run reuses them), and to do everything in the namespaces the
//! tests create. Use a throwaway cluster (kind, k3d, minikube): each test creates a namespace
//! `t-<test>-<random>` and deletes it when it ends (also when it fails); a test killed
//! mid-run leaves its namespace behind (`kubectl get ns | grep '^t-'` finds them).
//!
//! Tests that need what only the test API server offers (fault injection) skip themselves on
//! a real cluster with [`require_fake!`]; tests that need what only a full control plane does
//! (garbage collection, namespace finalisation) skip themselves on the test API server with
//! [`require_control_plane!`]. Both print the reason, so a skipped test is never silent.
//!
//! Waiting: never sleep to synchronise. [`wait_for`] / [`wait_for_some`] poll a condition with
//! short intervals up to a bound and fail naming what was awaited; [`within`] bounds a single
//! future that could hang.
#![allow(dead_code)] // Shared by several test modules; not each uses every helper.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use kube_test_server::TestApiServer;

/// The environment variable naming a kubeconfig to run the Kubernetes tests against.
pub const KUBECONFIG_ENV: &str = "GITOPS_SEAL_TEST_KUBECONFIG";

/// The bound for anything a test waits on: generous for a real cluster, and nothing on the test
/// API server gets anywhere near it unless something is broken.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A test's Kubernetes environment: a client, a namespace of its own, and (by default) the test
/// API server behind them. Dropping it deletes the namespace (best effort).
pub struct KubeEnv {
    /// A client whose default namespace is [`Self::namespace`]. Built like production
    /// clients are (`kube::Config` defaults, so with kube's built-in retry of 429/503/504).
    pub client: Client,
    /// The namespace created for this test (`t-<test>-<random>`).
    pub namespace: String,
    server: Option<TestApiServer>,
    config: Config,
    cleaned: bool,
}

/// Install the rustls ring provider, once per process (kube's rustls stack needs one, and
/// both the test API server's clients and a real cluster's TLS go through it).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means some other code installed one first: fine, there is one.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl KubeEnv {
    /// A fresh environment for the calling test; the namespace is named after the test.
    pub async fn new() -> Self {
        Self::named(&current_test()).await
    }

    /// As [`Self::new`], naming the namespace after `label` (any string; it is sanitised).
    pub async fn named(label: &str) -> Self {
        install_crypto_provider();
        let namespace = unique_namespace(label);
        let (server, mut config) = match std::env::var_os(KUBECONFIG_ENV) {
            Some(path) if !path.is_empty() => {
                let kubeconfig = Kubeconfig::read_from(&path).unwrap_or_else(|e| {
                    panic!(
                        "{KUBECONFIG_ENV}={}: cannot read kubeconfig: {e}",
                        path.to_string_lossy()
                    )
                });
                let config = within(
                    "building a client config from the kubeconfig",
                    PATIENCE,
                    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()),
                )
                .await
                .unwrap_or_else(|e| panic!("{KUBECONFIG_ENV}: unusable kubeconfig: {e}"));
                (None, config)
            }
            _ => {
                let server = TestApiServer::start()
                    .await
                    .expect("start the test API server");
                let url = server.url().parse().expect("the server's URL is a URI");
                (Some(server), Config::new(url))
            }
        };
        config.default_namespace = namespace.clone();
        let client = Client::try_from(config.clone()).expect("build a kube client");

        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.clone()),
                labels: Some([("gitops-seal.dev/test".to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        within(
            "creating the test namespace",
            PATIENCE,
            namespaces.create(&PostParams::default(), &ns),
        )
        .await
        .unwrap_or_else(|e| panic!("create namespace {namespace}: {e}"));

        KubeEnv {
            client,
            namespace,
            server,
            config,
            cleaned: false,
        }
    }

    /// The test API server, or `None` on a real cluster.
    pub fn server(&self) -> Option<&TestApiServer> {
        self.server.as_ref()
    }

    /// Whether this environment is a real cluster (`GITOPS_SEAL_TEST_KUBECONFIG`).
    pub fn is_real_cluster(&self) -> bool {
        self.server.is_none()
    }

    /// The configuration [`Self::client`] was built from (default namespace = the test's).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Another client for the same server and namespace, with kube's built-in retry of
    /// 429/503/504 switched off, so every answer of the server reaches the caller as it is.
    pub fn client_without_retries(&self) -> Client {
        let mut config = self.config.clone();
        config.default_retry = false;
        Client::try_from(config).expect("build a kube client")
    }

    /// The test API server; on a real cluster, prints that the test is skipped because of
    /// `reason` and returns `None`. See [`require_fake!`].
    pub fn fake_or_skip(&self, reason: &str) -> Option<&TestApiServer> {
        if self.server.is_none() {
            eprintln!("SKIPPED {} on a real cluster: {reason}", current_test());
        }
        self.server.as_ref()
    }

    /// `true` on a real cluster; on the test API server, prints that the test is skipped
    /// because it needs `what` and returns `false`. See [`require_control_plane!`].
    pub fn control_plane_or_skip(&self, what: &str) -> bool {
        if self.server.is_some() {
            eprintln!(
                "SKIPPED {} on the test API server: it needs {what}, which is \
                 kube-controller-manager's work and not done by the test API server",
                current_test()
            );
        }
        self.server.is_none()
    }

    /// Delete the namespace now and wait for the deletion to be accepted (a real cluster or the
    /// test API server may leave it Terminating for a while; the test API server, which does no
    /// namespace finalisation, leaves it Terminating for good). Then drop the environment.
    pub async fn cleanup(mut self) {
        self.delete_namespace().await;
    }

    /// As [`Self::cleanup`], keeping the environment (and the test API server) alive, so the
    /// namespace's deletion can be looked at. Dropping the environment later deletes nothing more.
    pub async fn delete_namespace(&mut self) {
        self.cleaned = true;
        self.release_key_finalizers().await;
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        match within(
            "deleting the test namespace",
            PATIENCE,
            namespaces.delete(&self.namespace, &DeleteParams::default()),
        )
        .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => panic!("delete namespace {}: {e}", self.namespace),
        }
    }
}

impl KubeEnv {
    /// Removes the controller's key-in-use finalizer from the namespace's identity Secrets (a
    /// stopped controller no longer releases them), so that on a real cluster the namespace
    /// can go.
    pub async fn release_key_finalizers(&self) {
        use k8s_openapi::api::core::v1::Secret;
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let Ok(list) = secrets
            .list_metadata(&kube::api::ListParams::default())
            .await
        else {
            return;
        };
        for s in list.items {
            let Some(finalizers) = s.metadata.finalizers.clone() else {
                continue;
            };
            let kept: Vec<&String> = finalizers
                .iter()
                .filter(|f| f.as_str() != gitops_seal::core::names::KEY_IN_USE_FINALIZER)
                .collect();
            if kept.len() != finalizers.len() {
                let patch = serde_json::json!({"metadata": {"finalizers": kept}});
                let _ = secrets
                    .patch_metadata(
                        &s.metadata.name.unwrap_or_default(),
                        &kube::api::PatchParams::default(),
                        &kube::api::Patch::Merge(&patch),
                    )
                    .await;
            }
        }
    }
}

impl Drop for KubeEnv {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let namespace = self.namespace.clone();
        if self.server.is_some() {
            // The test API server runs on this test's runtime and goes away with this value;
            // a deletion is only a courtesy here, so it is fired and not awaited.
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                let client = self.client.clone();
                handle.spawn(async move {
                    let _ = Api::<Namespace>::all(client)
                        .delete(&namespace, &DeleteParams::default())
                        .await;
                });
            }
            return;
        }
        // A real cluster outlives the test: delete the namespace from a runtime of our own (the
        // test's runtime may be the one blocked in this drop, and the client's worker lives on
        // it), bounded so a broken cluster cannot hang the suite.
        let config = self.config.clone();
        let worker = std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return eprintln!("cleanup of namespace {namespace}: no runtime: {e}"),
            };
            rt.block_on(async move {
                let Ok(client) = Client::try_from(config) else {
                    return eprintln!("cleanup of namespace {namespace}: cannot build a client");
                };
                let namespaces = Api::<Namespace>::all(client);
                let params = DeleteParams::default();
                match tokio::time::timeout(PATIENCE, namespaces.delete(&namespace, &params)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(kube::Error::Api(s))) if s.code == 404 => {}
                    Ok(Err(e)) => eprintln!("cleanup of namespace {namespace} failed: {e}"),
                    Err(_) => eprintln!("cleanup of namespace {namespace} timed out"),
                }
            });
        });
        let _ = worker.join();
    }
}

/// Skip the calling test (return from it, printing why) unless it runs on the test API server;
/// evaluates to `&TestApiServer`. For tests that inject faults.
///
/// ```ignore
/// let server = require_fake!(env);
/// ```
macro_rules! require_fake {
    ($env:expr) => {
        $crate::kube::harness::require_fake!($env, "fault injection needs the test API server")
    };
    ($env:expr, $reason:expr) => {
        match $env.fake_or_skip($reason) {
            Some(server) => server,
            None => return,
        }
    };
}
pub(crate) use require_fake;

/// Skip the calling test (return from it, printing why) on the test API server, which does
/// no garbage collection (ownerReferences are stored but never acted on) and no namespace
/// finalisation (a deleted Namespace stays Terminating with its contents).
#[allow(unused_macros)] // For the controller's and the sync loop's tests.
macro_rules! require_control_plane {
    ($env:expr) => {
        $crate::kube::harness::require_control_plane!(
            $env,
            "garbage collection / namespace finalisation"
        )
    };
    ($env:expr, $what:expr) => {
        if !$env.control_plane_or_skip($what) {
            return;
        }
    };
}
#[allow(unused_imports)] // For the controller's and the sync loop's tests.
pub(crate) use require_control_plane;

/// Await `fut`, failing the test with `what` if it takes longer than `timeout`.
pub async fn within<T>(what: &str, timeout: Duration, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(timeout, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {timeout:?}: {what}"),
    }
}

/// Poll `condition` (short intervals, each attempt itself bounded) until it holds, failing the
/// test with `what` after `timeout`.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_for_some(what, timeout, || {
        let fut = condition();
        async move { fut.await.then_some(()) }
    })
    .await
}

/// Poll `probe` until it yields `Some`, and return that; fail the test with `what` after
/// `timeout`.
pub async fn wait_for_some<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut interval = Duration::from_millis(10);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        if let Ok(Some(v)) = tokio::time::timeout(left, probe()).await {
            return v;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(interval.min(left)).await;
        interval = (interval * 2).min(Duration::from_millis(200));
    }
}

/// The running test's name (libtest names each test's thread after it).
pub fn current_test() -> String {
    std::thread::current().name().unwrap_or("test").to_owned()
}

/// `t-<label>-<random>`: a valid, unique namespace name (DNS label, at most 63 characters).
pub fn unique_namespace(label: &str) -> String {
    let label = label.rsplit("::").next().unwrap_or(label);
    let mut clean: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    clean.truncate(40);
    let clean = clean.trim_matches('-');
    let clean = if clean.is_empty() { "test" } else { clean };
    format!("t-{clean}-{}", random_suffix())
}

/// Eight base-36 characters, different for every call in this process and across processes.
pub fn random_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    let mut n = h.finish();
    (0..8)
        .map(|_| {
            let c = b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize] as char;
            n /= 36;
            c
        })
        .collect()
}

/// A kubeconfig file for `env`: the test API server's, written into `dir`, or the real
/// cluster's (`GITOPS_SEAL_TEST_KUBECONFIG`), for tests that run the binary.
pub fn kubeconfig_for(env: &KubeEnv, dir: &std::path::Path) -> std::path::PathBuf {
    match env.server() {
        Some(server) => {
            let path = dir.join("kubeconfig");
            server.write_kubeconfig(&path).expect("write kubeconfig");
            path
        }
        None => std::path::PathBuf::from(
            std::env::var_os(KUBECONFIG_ENV).expect("the real cluster's kubeconfig"),
        ),
    }
}

/// Applies the SealedSecret CRD (generated from the types) and waits until it is Established.
pub async fn install_crd(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PatchParams};
    use kube::runtime::wait::{await_condition, conditions};
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = gitops_seal::adapters::kube::CRD_NAME;
    within(
        "applying the SealedSecret CRD",
        PATIENCE,
        crds.patch(
            name,
            &PatchParams::apply("gitops-seal-tests").force(),
            &Patch::Apply(&gitops_seal::adapters::kube::crd()),
        ),
    )
    .await
    .expect("apply the CRD");
    within(
        "the CRD to become Established",
        PATIENCE,
        await_condition(crds, name, conditions::is_crd_established()),
    )
    .await
    .expect("watch the CRD");
}
