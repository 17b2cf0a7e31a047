//! The sync loop through the binary's two entry points, `gitops-seal sync` and `gitops-seal
//! controller --sync-*`: the guards a pass has on the command line hold inside the controller,
//! deploy/'s Deployment applies as its own ServiceAccount, and both stop on SIGTERM.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{DeleteParams, PostParams};
use kube::Api;

use gitops_seal::core::Identity;
use gitops_seal::sync::plan::SYNC_LABEL;

use super::harness::{install_crd, kubeconfig_for, within, KubeEnv, PATIENCE};
use super::sync::{configmap, Repo};

/// The binary, running until [`Running::stop`], its standard error going to a file.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(args: &[String], envs: &[(&str, String)], log: PathBuf) -> Self {
        let mut c = Command::new(env!("CARGO_BIN_EXE_gitops-seal"));
        c.args(args)
            .env_remove("KUBECONFIG")
            .env_remove("POD_NAMESPACE")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("the log file"));
        for (k, v) in envs {
            c.env(k, v);
        }
        Running {
            child: c.spawn().expect("run gitops-seal"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM (what the kubelet sends), then the exit code: `None` when the signal killed
    /// the process instead of stopping it.
    async fn stop(mut self) -> (Option<i32>, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let status = within(
            "gitops-seal to stop on SIGTERM",
            PATIENCE,
            tokio::task::spawn_blocking(move || {
                let status = self.child.wait().expect("wait");
                (status, self)
            }),
        )
        .await
        .expect("the blocking task");
        (status.0.code(), status.1.log())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that failed before `stop`: leave no process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status ConfigMap's `lastError`, once a pass has written it.
async fn last_error(env: &KubeEnv, name: &str) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let cm = api
        .get_opt(&format!("gitops-seal-sync-{name}"))
        .await
        .ok()??;
    cm.data?.remove("lastError")
}

/// A namespace for the synced objects (the loop may not write in the controller's own, which
/// holds its keys); delete it with [`drop_namespace`].
async fn apps_namespace(env: &KubeEnv) -> String {
    let name = format!("t-apps-{}", super::harness::random_suffix());
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    name
}

async fn drop_namespace(env: &KubeEnv, name: &str) {
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let _ = namespaces.delete(name, &DeleteParams::default()).await;
}

/// `controller --sync-allowed-namespaces NS`: a commit with an object in another namespace is
/// refused whole, before anything is sent (the object in NS is not applied either), and the
/// status says why. Without `--sync-service-account` the controller warns at start that the
/// loop writes with its own rights. SIGTERM stops it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_cluster_loop_refuses_objects_outside_its_allowed_namespaces() {
    let env = KubeEnv::new().await;
    install_crd(&env.client).await;
    let ns = env.namespace.clone();
    let apps = apps_namespace(&env).await;
    let elsewhere = format!("{apps}-elsewhere");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_for(&env, dir.path());
    let repo = Repo::new();
    repo.write("a.yaml", &configmap(&apps, "a", "1"));
    repo.write("b.yaml", &configmap(&elsewhere, "b", "1"));
    repo.commit("one namespace too many");
    let args: Vec<String> = [
        "controller",
        "--namespace",
        &ns,
        "--watch-namespace",
        &ns,
        "--listen=127.0.0.1:0",
        "--sync-repo",
        repo.path().to_str().unwrap(),
        "--sync-name=guarded",
        "--sync-interval=1s",
        "--sync-allowed-namespaces",
        &apps,
        "--sync-cache-dir",
        repo.cache.path().to_str().unwrap(),
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let controller = Running::start(&args, &[], dir.path().join("stderr"));
    let error = super::harness::wait_for_some("the refused pass's status", PATIENCE, || async {
        last_error(&env, "guarded").await.filter(|e| !e.is_empty())
    })
    .await;
    assert!(
        error.contains(&format!("ConfigMap {elsewhere}/b"))
            && error.contains(&format!(
                "namespace {elsewhere} is not one this sync may write to ({apps})"
            )),
        "{error}"
    );
    let configmaps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &apps);
    assert!(
        configmaps.get_opt("a").await.unwrap().is_none(),
        "nothing of the refused commit is applied"
    );
    let (code, log) = controller.stop().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("the sync loop writes with the rights of the controller's own account"),
        "{log}"
    );
    drop_namespace(&env, &apps).await;
    env.cleanup().await;
}

/// deploy/deployment.yaml's arguments and environment, plus only what a sync needs
/// (`--sync-repo`, `--sync-name`) and what the test needs (the kubeconfig, a free port, a
/// cache): the loop applies as ServiceAccount gitops-seal-sync of the controller's namespace,
/// by impersonation, and the controller's own requests stay its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_in_cluster_loop_applies_as_its_own_service_account() {
    let env = KubeEnv::new().await;
    let server = super::harness::require_fake!(
        env,
        "the impersonated user is read from the test API server's request log"
    );
    install_crd(&env.client).await;
    let ns = env.namespace.clone();
    let apps = apps_namespace(&env).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_for(&env, dir.path());
    let repo = Repo::new();
    repo.write("a.yaml", &configmap(&apps, "a", "1"));
    repo.commit("one");

    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/deployment.yaml"),
    )
    .unwrap();
    let deployment: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let mut args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .filter(|a| !a.starts_with("--listen="))
        .collect();
    assert!(
        args.iter().any(|a| a.starts_with("--sync-service-account")),
        "{args:?}"
    );
    args.extend(
        [
            "--listen=127.0.0.1:0",
            "--watch-namespace",
            &ns,
            "--sync-repo",
            repo.path().to_str().unwrap(),
            "--sync-name=deployed",
            "--sync-interval=1s",
            "--sync-cache-dir",
            repo.cache.path().to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ]
        .map(String::from),
    );
    // The Deployment's environment: the namespace and the pod's name from the downward API.
    let mut envs = Vec::new();
    for e in container["env"].as_array().unwrap() {
        let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap() {
            "metadata.namespace" => ns.clone(),
            "metadata.name" => "gitops-seal-0".to_owned(),
            other => panic!("deploy/deployment.yaml reads {other}: give the test a value"),
        };
        envs.push((e["name"].as_str().unwrap(), value));
    }
    let controller = Running::start(&args, &envs, dir.path().join("stderr"));
    let configmaps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &apps);
    let a = super::harness::wait_for_some("the synced ConfigMap", PATIENCE, || async {
        configmaps.get_opt("a").await.ok()?
    })
    .await;
    assert_eq!(a.metadata.labels.unwrap()[SYNC_LABEL], "deployed");
    let user = format!("system:serviceaccount:{ns}:gitops-seal-sync");
    let seen = server.impersonations();
    assert!(
        seen.iter().any(|(req, u)| req.starts_with("PATCH ")
            && req.ends_with("/configmaps/a")
            && *u == user),
        "ConfigMap a applied as {user}: {seen:?}"
    );
    assert!(seen.iter().all(|(_, u)| *u == user), "{seen:?}");
    assert!(
        !seen
            .iter()
            .any(|(req, _)| req.contains("sealedsecrets") || req.contains("leases")),
        "the controller's own requests are not impersonated: {seen:?}"
    );
    let (code, log) = controller.stop().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("writes with the rights of"), "{log}");
    drop_namespace(&env, &apps).await;
    env.cleanup().await;
}

/// `gitops-seal sync` (the loop, not `--once`) stops cleanly on SIGTERM, as the controller
/// does: exit 0, not killed by the signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_stops_on_sigterm() {
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_for(&env, dir.path());
    let id_path = dir.path().join("id.txt");
    std::fs::write(
        &id_path,
        Identity::generate()
            .to_identity_file("2026-01-01T00:00:00Z")
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&id_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let repo = Repo::new();
    repo.write("a.yaml", &configmap(&ns, "a", "1"));
    repo.commit("one");
    let args: Vec<String> = [
        "sync",
        "--repo",
        repo.path().to_str().unwrap(),
        "--name=standalone",
        "--interval=1h",
        "-i",
        id_path.to_str().unwrap(),
        "--cache-dir",
        repo.cache.path().to_str().unwrap(),
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--namespace",
        &ns,
    ]
    .map(String::from)
    .to_vec();
    let sync = Running::start(&args, &[], dir.path().join("stderr"));
    super::harness::wait_for("the first pass's status", PATIENCE, || async {
        last_error(&env, "standalone").await.is_some()
    })
    .await;
    let (code, log) = sync.stop().await;
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("shutting down"), "{log}");
    env.cleanup().await;
}

/// A repository another user owns (a volume a git-sync sidecar writes): libgit2 refuses it, and
/// `--trust-repository PATH` trusts that path and no other, as Git's `safe.directory` does.
/// Through `sync --dry-run` (Git alone); the controller takes the same option as
/// `--sync-trust-repository` (the options are one set), and the image test runs it in the
/// container.
#[test]
fn a_repository_another_user_owns_is_read_only_when_trusted() {
    // Only root can give a folder to another uid.
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!(
            "SKIPPED a_repository_another_user_owns_is_read_only_when_trusted: needs root to chown"
        );
        return;
    }
    let repo = Repo::new();
    repo.write("a.yaml", &configmap("apps", "a", "1"));
    repo.commit("one");
    let other = Repo::new();
    other.write("b.yaml", &configmap("apps", "b", "1"));
    other.commit("one");
    for r in [&repo, &other] {
        let status = Command::new("chown")
            .args(["-R", "4242:4242"])
            .arg(r.path())
            .status()
            .expect("chown");
        assert!(status.success());
    }
    let keys = tempfile::tempdir().unwrap();
    let id = keys.path().join("id.txt");
    let keygen = Command::new(env!("CARGO_BIN_EXE_gitops-seal"))
        .arg("keygen")
        .arg("-o")
        .arg(&id)
        .output()
        .expect("keygen");
    assert!(keygen.status.success());
    let run = |target: &Repo, trust: &[&Path]| {
        let cache = tempfile::tempdir().unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_gitops-seal"));
        c.args(["sync", "--dry-run", "--name", "t", "-i"])
            .arg(&id)
            .arg("--repo")
            .arg(target.path())
            .arg("--cache-dir")
            .arg(cache.path())
            .env_remove("XDG_CONFIG_HOME");
        for t in trust {
            c.arg("--trust-repository").arg(t);
        }
        c.output().expect("gitops-seal sync")
    };
    let refused = run(&repo, &[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("not owned by current user"), "{stderr}");

    let trusted = run(&repo, &[repo.path()]);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("ConfigMap apps/a"));

    // Trusting one path trusts no other.
    let elsewhere = run(&other, &[repo.path()]);
    assert!(!elsewhere.status.success());
}
