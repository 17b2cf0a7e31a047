//! The GitOps reconcile loop against the test API server (or a real cluster, see the harness),
//! with real Git repositories made by the `git` CLI in a temporary folder.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use gitops_seal::core::Identity;
use gitops_seal::ops::{self, SealSettings};
use gitops_seal::sync::{self, plan::SYNC_LABEL, Settings, SyncError};

use super::harness::{random_suffix, within, KubeEnv, PATIENCE};

/// A Git repository in a temporary folder, committed to with the real `git` CLI.
pub(super) struct Repo {
    dir: tempfile::TempDir,
    pub(super) cache: tempfile::TempDir,
}

impl Repo {
    pub(super) fn new() -> Self {
        let r = Repo {
            dir: tempfile::tempdir().unwrap(),
            cache: tempfile::tempdir().unwrap(),
        };
        r.git(&["init", "-q", "-b", "main"]);
        r
    }

    pub(super) fn git(&self, args: &[&str]) {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub(super) fn write(&self, path: &str, text: &str) {
        let p = self.dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub(super) fn remove(&self, path: &str) {
        std::fs::remove_file(self.dir.path().join(path)).unwrap();
    }

    pub(super) fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
    }

    pub(super) fn settings(&self, name: &str, namespace: &str) -> Settings {
        let mut s = Settings::new(name, self.dir.path().to_str().unwrap(), namespace);
        s.cache_dir = self.cache.path().to_path_buf();
        s
    }

    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A bare clone at `to`, as a server would hold it.
    fn clone_bare(&self, to: &Path) {
        let out = Command::new("git")
            .args(["clone", "-q", "--bare"])
            .arg(self.path())
            .arg(to)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A sealed Secret manifest for `identity`'s recipient.
pub(super) fn sealed(identity: &Identity, ns: &str, name: &str, key: &str, value: &str) -> String {
    let settings = SealSettings {
        recipients: vec![identity.to_recipient().unwrap()],
        ..SealSettings::default()
    };
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {ns}}}\nstringData: {{{key}: {value}}}\n"
    );
    ops::encrypt(manifest.as_bytes(), &settings, None)
        .unwrap()
        .unwrap()
}

pub(super) fn configmap(ns: &str, name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {ns}}}\ndata: {{mode: \"{value}\"}}\n")
}

pub(super) async fn pass(
    env: &KubeEnv,
    settings: &Settings,
    id: &Arc<[Identity]>,
) -> Result<sync::PassReport, SyncError> {
    within(
        "a sync pass",
        PATIENCE,
        sync::pass(&env.client, settings, id.clone()),
    )
    .await
}

fn secret_value(s: &Secret, key: &str) -> Vec<u8> {
    s.data.as_ref().unwrap()[key].0.clone()
}

pub(super) async fn status(
    env: &KubeEnv,
    settings: &Settings,
) -> std::collections::BTreeMap<String, String> {
    let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), &settings.namespace);
    api.get(&settings.status_configmap())
        .await
        .unwrap()
        .data
        .unwrap()
}

/// A first sync applies everything with the sync label; a changed file is applied; a removed
/// file is pruned; a hand edit and a hand delete are corrected on the next pass of the same
/// commit; the status ConfigMap says which commit is live.
#[tokio::test]
async fn sync_applies_updates_prunes_and_corrects_drift() {
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    let id: Arc<[Identity]> = vec![Identity::generate()].into();
    let repo = Repo::new();
    repo.write("apps/settings.yaml", &configmap(&ns, "settings", "one"));
    repo.write("apps/extra.yaml", &configmap(&ns, "extra", "x"));
    repo.write(
        "apps/db.yaml",
        &sealed(&id[0], &ns, "db", "password", "hunter2"),
    );
    repo.write("README.md", "not a manifest\n");
    repo.commit("first");
    let settings = repo.settings("apps", &ns);

    let r = pass(&env, &settings, &id).await.unwrap();
    assert_eq!(r.applied, 3);
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    let cm = cms.get("settings").await.unwrap();
    assert_eq!(cm.data.unwrap()["mode"], "one");
    assert_eq!(cm.metadata.labels.unwrap()[SYNC_LABEL], "apps");
    let db = secrets.get("db").await.unwrap();
    assert_eq!(secret_value(&db, "password"), b"hunter2");
    assert_eq!(db.metadata.labels.unwrap()[SYNC_LABEL], "apps");
    let st = status(&env, &settings).await;
    assert_eq!(st["lastAppliedCommit"], r.commit);
    assert_eq!(st["lastError"], "");
    assert!(st["inventory"].contains(&format!("v1 Secret {ns} db")));
    // The key that opened db's values, by fingerprint: a controller running this loop counts
    // it as in use.
    assert_eq!(
        st[gitops_seal::sync::KEYS_STATUS_KEY],
        format!("{}\n", id[0].fingerprint().unwrap())
    );

    // A changed file and a removed one.
    repo.write("apps/settings.yaml", &configmap(&ns, "settings", "two"));
    repo.remove("apps/extra.yaml");
    repo.commit("second");
    let r2 = pass(&env, &settings, &id).await.unwrap();
    assert_eq!((r2.applied, r2.pruned), (2, 1));
    assert_eq!(
        cms.get("settings").await.unwrap().data.unwrap()["mode"],
        "two"
    );
    assert!(
        cms.get_opt("extra").await.unwrap().is_none(),
        "extra pruned"
    );

    // Drift: edited and deleted by hand, corrected with no new commit.
    cms.patch(
        "settings",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"mode": "hand"}})),
    )
    .await
    .unwrap();
    secrets
        .delete("db", &DeleteParams::default())
        .await
        .unwrap();
    pass(&env, &settings, &id).await.unwrap();
    assert_eq!(
        cms.get("settings").await.unwrap().data.unwrap()["mode"],
        "two"
    );
    assert_eq!(
        secret_value(&secrets.get("db").await.unwrap(), "password"),
        b"hunter2"
    );
    env.cleanup().await;
}

/// A tampered value, a malformed document and a commit whose dry run the server refuses each
/// apply nothing: the live objects keep the last good commit and the status names the failure.
#[tokio::test]
async fn bad_commits_apply_nothing() {
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    let id: Arc<[Identity]> = vec![Identity::generate()].into();
    let repo = Repo::new();
    repo.write("a.yaml", &configmap(&ns, "a", "good"));
    repo.write("db.yaml", &sealed(&id[0], &ns, "db", "password", "hunter2"));
    repo.commit("good");
    let settings = repo.settings("bad", &ns);
    let good = pass(&env, &settings, &id).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);

    // 1. A tampered value: the plan fails before anything is sent.
    repo.write("a.yaml", &configmap(&ns, "a", "changed"));
    let db = sealed(&id[0], &ns, "db", "password", "hunter2");
    let tampered = {
        let other = sealed(&id[0], &ns, "other", "password", "hunter2");
        let pick = |t: &str| {
            t.lines()
                .find(|l| l.trim_start().starts_with("password:"))
                .unwrap()
                .to_string()
        };
        db.replace(&pick(&db), &pick(&other))
    };
    repo.write("db.yaml", &tampered);
    repo.commit("tampered");
    let err = pass(&env, &settings, &id).await.unwrap_err();
    let text = sync::error_chain(&err);
    assert!(matches!(err, SyncError::Plan { .. }), "{text}");
    assert!(text.contains("db.yaml"), "{text}");
    assert!(
        text.contains("ScopeMismatch") || text.contains("password"),
        "{text}"
    );
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["mode"], "good");
    let st = status(&env, &settings).await;
    assert_eq!(st["lastAppliedCommit"], good.commit);
    assert!(st["lastError"].contains("db.yaml"), "{}", st["lastError"]);

    // 2. A malformed document.
    repo.write("db.yaml", &db);
    repo.write(
        "broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n",
    );
    repo.commit("malformed");
    let err = pass(&env, &settings, &id).await.unwrap_err();
    let text = sync::error_chain(&err);
    assert!(text.contains("broken.yaml"), "{text}");
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["mode"], "good");

    // 3. The server refuses the dry run (YAML 1.1 reads `yes` as a boolean, which a
    //    ConfigMap's data cannot hold): nothing of the stage is applied.
    repo.remove("broken.yaml");
    repo.write(
        "z.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: z, namespace: {ns}}}\ndata: {{enabled: yes}}\n"),
    );
    repo.commit("refused by the server");
    let err = pass(&env, &settings, &id).await.unwrap_err();
    let text = sync::error_chain(&err);
    assert!(matches!(err, SyncError::DryRun { .. }), "{text}");
    assert!(
        text.contains("z.yaml") && text.contains("ConfigMap"),
        "{text}"
    );
    assert_eq!(
        cms.get("a").await.unwrap().data.unwrap()["mode"],
        "good",
        "a.yaml was not applied"
    );
    assert!(cms.get_opt("z").await.unwrap().is_none());
    // No plaintext in the status.
    let st = status(&env, &settings).await;
    assert!(st.values().all(|v| !v.contains("hunter2")));
    env.cleanup().await;
}

/// A Namespace and its objects, and a CRD and an instance of it, in one commit: stage one
/// (Namespaces and CRDs) goes first and the CRD is Established before its instance is applied.
#[tokio::test]
async fn namespace_and_crd_with_their_objects_in_one_commit() {
    let env = KubeEnv::new().await;
    let id: Arc<[Identity]> = vec![Identity::generate()].into();
    let suffix = random_suffix();
    let new_ns = format!("sync-ns-{suffix}");
    let group = format!("g{suffix}.example.dev");
    let repo = Repo::new();
    repo.write(
        "crd.yaml",
        &format!(
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {{name: gadgets.{group}}}\nspec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: gadgets, singular: gadget, kind: Gadget}}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec: {{type: object, properties: {{size: {{type: integer}}}}}}\n"
        ),
    );
    repo.write(
        "objects.yaml",
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {new_ns}}}\n---\n{}---\napiVersion: {group}/v1\nkind: Gadget\nmetadata: {{name: g1, namespace: {new_ns}}}\nspec: {{size: 3}}\n",
            configmap(&new_ns, "inside", "v")
        ),
    );
    repo.commit("all at once");
    let settings = repo.settings("stages", &env.namespace);
    let r = pass(&env, &settings, &id).await.unwrap();
    assert_eq!(r.applied, 4);
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &new_ns);
    assert!(cms.get_opt("inside").await.unwrap().is_some());
    let ar = kube::discovery::ApiResource {
        group: group.clone(),
        version: "v1".into(),
        api_version: format!("{group}/v1"),
        kind: "Gadget".into(),
        plural: "gadgets".into(),
    };
    let gadgets: Api<kube::api::DynamicObject> =
        Api::namespaced_with(env.client.clone(), &new_ns, &ar);
    assert_eq!(gadgets.get("g1").await.unwrap().data["spec"]["size"], 3);
    env.cleanup().await;
}

/// Refusals: an empty path (it would prune everything), a write outside the allowed
/// namespaces, an object another sync owns, and an unreachable remote, which deletes nothing.
#[tokio::test]
async fn refusals_and_an_unreachable_remote() {
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    let id: Arc<[Identity]> = vec![Identity::generate()].into();
    let repo = Repo::new();
    repo.write("apps/a.yaml", &configmap(&ns, "a", "1"));
    repo.commit("one");
    let mut settings = repo.settings("guard", &ns);
    pass(&env, &settings, &id).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);

    // An empty path.
    settings.path = "nothing-here".into();
    let err = pass(&env, &settings, &id).await.unwrap_err();
    assert!(sync::error_chain(&err).contains("nothing-here"), "{err}");
    repo.write("empty/README.md", "no manifests\n");
    repo.commit("an empty folder");
    settings.path = "empty".into();
    let err = pass(&env, &settings, &id).await.unwrap_err();
    assert!(matches!(err, SyncError::Empty), "{err}");
    assert!(cms.get_opt("a").await.unwrap().is_some(), "nothing pruned");

    // Outside the allowed namespaces.
    settings.path = "apps".into();
    settings.allowed_namespaces = Some(vec!["somewhere-else".into()]);
    let err = pass(&env, &settings, &id).await.unwrap_err();
    let text = sync::error_chain(&err);
    assert!(text.contains("not one this sync may write to"), "{text}");
    settings.allowed_namespaces = None;

    // Another sync's object.
    let other = repo.settings("other", &ns);
    let err = pass(&env, &other, &id).await.unwrap_err();
    let text = sync::error_chain(&err);
    assert!(text.contains("belongs to sync \"guard\""), "{text}");

    // An unreachable remote deletes nothing.
    let mut gone = settings.clone();
    gone.repo = repo.path().join("no-such-repo").display().to_string();
    let err = pass(&env, &gone, &id).await.unwrap_err();
    assert!(matches!(err, SyncError::Fetch { .. }), "{err}");
    assert!(cms.get_opt("a").await.unwrap().is_some());
    env.cleanup().await;
}

/// The binary: `--dry-run` prints the plan from Git alone with no value; `--once` exits 0 on a
/// good pass and 1 on a failed one.
// Multi-threaded: the binary's requests are served by the in-process test API server while
// this test blocks waiting for the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_dry_run_and_once() {
    let env = KubeEnv::new().await;
    let Some(server) = env.server() else {
        eprintln!("SKIPPED cli_dry_run_and_once: needs the test API server's kubeconfig");
        return;
    };
    let ns = env.namespace.clone();
    let dir = tempfile::tempdir().unwrap();
    let identity = Identity::generate();
    let id_path = dir.path().join("id.txt");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&id_path)
            .unwrap();
        std::io::Write::write_all(
            &mut f,
            identity
                .to_identity_file("2026-01-01T00:00:00Z")
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
    }
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let repo = Repo::new();
    repo.write(
        "db.yaml",
        &sealed(&identity, &ns, "db", "password", "hunter2"),
    );
    repo.commit("one");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_gitops-seal"))
            .args([
                "sync",
                "--repo",
                repo.path().to_str().unwrap(),
                "--name",
                "cli",
                "-i",
            ])
            .arg(&id_path)
            .arg("--cache-dir")
            .arg(repo.cache.path())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--namespace", &ns])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&["--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(&format!("Secret {ns}/db")), "{stdout}");
    assert!(
        stdout.contains("1 value(s) unsealed (redacted)"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));

    let (code, _, stderr) = run(&["--once"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("hunter2"));

    repo.write("broken.yaml", "kind: [\n");
    repo.commit("broken");
    let (code, _, stderr) = run(&["--once"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("broken.yaml"), "{stderr}");
    env.cleanup().await;
}

/// `--service-account NS/NAME`: every request of the pass carries the impersonation header (the
/// test API server has no RBAC; enforcing it is the real server's job).
#[tokio::test]
async fn applies_as_the_service_account_by_impersonation() {
    let env = KubeEnv::new().await;
    let Some(server) = env.server() else {
        eprintln!("SKIPPED applies_as_the_service_account_by_impersonation: needs the test API server's request log (and RBAC for the account on a real cluster)");
        return;
    };
    let ns = env.namespace.clone();
    let repo = Repo::new();
    repo.write("a.yaml", &configmap(&ns, "a", "1"));
    repo.commit("one");
    let mut config = env.config().clone();
    gitops_seal::adapters::kube::impersonate_service_account(&mut config, &ns, "deployer");
    let client = kube::Client::try_from(config).unwrap();
    let id: Arc<[Identity]> = Vec::new().into();
    within(
        "a sync pass",
        PATIENCE,
        sync::pass(&client, &repo.settings("as-sa", &ns), id),
    )
    .await
    .unwrap();
    let user = format!("system:serviceaccount:{ns}:deployer");
    let seen = server.impersonations();
    assert!(
        seen.iter().any(|(req, u)| req.starts_with("PATCH ")
            && req.ends_with("/configmaps/a")
            && *u == user),
        "{seen:?}"
    );
    assert!(seen.iter().all(|(_, u)| *u == user), "{seen:?}");
    env.cleanup().await;
}

/// The loop inside the controller (`--sync-repo`): it unseals with the controller's own keys,
/// with leader election only the leader syncs, and with `--sync-service-account` it applies as
/// that ServiceAccount while the controller's own requests stay its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_runs_the_loop_with_its_own_keys() {
    use gitops_seal::controller::{self, Settings as ControllerSettings};
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    super::harness::install_crd(&env.client).await;
    // The controller's keys live in `ns`; the loop may not write there, so the repository's
    // objects go to a namespace of their own.
    let (namespaces, apps) = apps_namespace(&env).await;
    let repo = Repo::new();
    repo.write("a.yaml", &configmap(&apps, "a", "1"));
    repo.commit("without secrets yet");
    let mut settings = ControllerSettings::new(ns.clone());
    settings.watch_namespaces = vec![ns.clone()];
    settings.leader_election = true;
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    settings.listen = Some(listen);
    let mut sync_settings = repo.settings("in-controller", &ns);
    sync_settings.interval = std::time::Duration::from_secs(1);
    settings.sync = Some(sync_settings);
    // Impersonation needs RBAC for the account on a real cluster: only against the test server.
    if env.server().is_some() {
        let mut config = env.config().clone();
        gitops_seal::adapters::kube::impersonate_service_account(&mut config, &ns, "deployer");
        settings.sync_client = Some(controller::SyncClient(
            kube::Client::try_from(config).unwrap(),
        ));
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let client = env.client.clone();
    let task = tokio::spawn(async move {
        controller::run(client, settings, async {
            let _ = stop_rx.await;
        })
        .await
    });

    // The controller's recipient, from its ConfigMap; a SealedSecret for it lands in Git.
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let recipients =
        super::harness::wait_for_some("the recipients ConfigMap", PATIENCE, || async {
            let cm = cms.get_opt("gitops-seal-recipients").await.ok()??;
            let text = cm.data?.remove("recipients.txt")?;
            gitops_seal::core::keys::parse_recipients_file(&text).ok()
        })
        .await;
    let settings = SealSettings {
        recipients,
        ..SealSettings::default()
    };
    // A commit that writes in the controller's own namespace is refused whole.
    let seal = |ns: &str| {
        let manifest = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {ns}}}\nstringData: {{password: hunter2}}\n"
        );
        ops::encrypt(manifest.as_bytes(), &settings, None)
            .unwrap()
            .unwrap()
    };
    repo.write("db.yaml", &seal(&ns));
    repo.commit("a sealed Secret in the controller's namespace");
    let status_cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    super::harness::wait_for("the refusal in the sync's status", PATIENCE, || async {
        status_cms
            .get_opt("gitops-seal-sync-in-controller")
            .await
            .ok()
            .flatten()
            .and_then(|c| c.data)
            .is_some_and(|d| {
                d.get("lastError")
                    .is_some_and(|e| e.contains("controller's own"))
            })
    })
    .await;
    let own: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    assert!(own.get_opt("db").await.unwrap().is_none());

    // One ordered watch over every namespace's Secrets: the loop's key is held (its finalizer
    // on the identity Secret) before the Secret it opened is written.
    let held = |s: &Secret| {
        s.finalizers()
            .iter()
            .any(|f| f == gitops_seal::core::names::KEY_IN_USE_FINALIZER)
    };
    let is = |s: &Secret, namespace: &str, name: &str| {
        s.namespace().as_deref() == Some(namespace) && s.name_any() == name
    };
    let mut events = kube::runtime::watcher::watcher(
        Api::<Secret>::all(env.client.clone()),
        kube::runtime::watcher::Config::default(),
    )
    .boxed();
    let mut key_held = false;
    super::harness::within("the Secrets' initial list", PATIENCE, async {
        loop {
            match events.next().await {
                Some(Ok(kube::runtime::watcher::Event::InitApply(s)))
                    if is(&s, &ns, "gitops-seal-identity") =>
                {
                    key_held = held(&s);
                }
                Some(Ok(kube::runtime::watcher::Event::InitDone)) => break,
                Some(_) => {}
                None => panic!("the watch ended"),
            }
        }
    })
    .await;

    repo.write("db.yaml", &seal(&apps));
    repo.commit("a sealed Secret");

    super::harness::within("the synced Secret on the watch", PATIENCE, async {
        loop {
            match events.next().await {
                Some(Ok(
                    kube::runtime::watcher::Event::Apply(s)
                    | kube::runtime::watcher::Event::InitApply(s),
                )) => {
                    if is(&s, &ns, "gitops-seal-identity") {
                        key_held = held(&s);
                    } else if is(&s, &apps, "db") {
                        break;
                    }
                }
                Some(_) => {}
                None => panic!("the watch ended"),
            }
        }
    })
    .await;
    assert!(key_held, "the loop wrote db before its key was held");
    drop(events);

    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &apps);
    let db = super::harness::wait_for_some("the synced Secret", PATIENCE, || async {
        secrets.get_opt("db").await.ok()?
    })
    .await;
    assert_eq!(secret_value(&db, "password"), b"hunter2");
    assert_eq!(db.metadata.labels.unwrap()[SYNC_LABEL], "in-controller");
    if let Some(server) = env.server() {
        let user = format!("system:serviceaccount:{ns}:deployer");
        let seen = server.impersonations();
        for applied in ["/configmaps/a", "/secrets/db"] {
            assert!(
                seen.iter().any(|(req, u)| req.starts_with("PATCH ")
                    && req.ends_with(applied)
                    && *u == user),
                "{applied} applied as {user}: {seen:?}"
            );
        }
        assert!(
            !seen
                .iter()
                .any(|(req, _)| req.contains("sealedsecrets") || req.contains("leases")),
            "the controller's own requests are not impersonated: {seen:?}"
        );
    }
    // The controller's key opened db for the loop: it is in use, and its Secret held.
    let key_secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    super::harness::wait_for("the loop's key held by its finalizer", PATIENCE, || async {
        key_secrets
            .get_metadata_opt("gitops-seal-identity")
            .await
            .ok()
            .flatten()
            .and_then(|s| s.metadata.finalizers)
            .is_some_and(|f| {
                f.iter()
                    .any(|f| f == gitops_seal::core::names::KEY_IN_USE_FINALIZER)
            })
    })
    .await;
    super::harness::wait_for("the loop's key in use on /metrics", PATIENCE, || async {
        metrics(listen).await.is_some_and(|m| {
            m.lines()
                .any(|l| l.starts_with("gitops_seal_key_in_use{key=\"pq:") && l.ends_with("} 1"))
        })
    })
    .await;
    // The key lifecycle saw the key in use only once the pass had recorded it; the hold taken
    // before the writes kept it from letting the key go in between (it would say so).
    let released = key_released(&env, "gitops-seal-identity").await;
    assert!(released.is_empty(), "the key was let go: {released:?}");
    // The pass is in the controller's metrics.
    super::harness::wait_for("the sync metrics", PATIENCE, || async {
        metrics(listen).await.is_some_and(|m| {
            m.contains("gitops_seal_sync_objects{action=\"applied\"} 2")
                && m.contains("gitops_seal_sync_duration_seconds_count")
                && !m.contains("gitops_seal_sync_last_success_timestamp_seconds 0\n")
        })
    })
    .await;
    let _ = stop_tx.send(());
    within("the controller to stop", PATIENCE, task)
        .await
        .unwrap()
        .unwrap();
    let _ = namespaces.delete(&apps, &DeleteParams::default()).await;
    env.cleanup().await;
}

/// A pass that writes for a while with a key nothing needed before: the key lifecycle,
/// woken by the hold on the key, reads the last record (which does not name it) while the pass
/// still writes. The claim the pass holds until its record is written keeps the key from
/// being let go in between (which would be a `KeyReleased` event and a key open to deletion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_pass_keeps_its_new_key_held_until_it_is_recorded() {
    use gitops_seal::controller::{self, Settings as ControllerSettings};
    use gitops_seal::core::names::{KEYS_STATUS_KEY, KEY_IN_USE_FINALIZER};
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    super::harness::install_crd(&env.client).await;
    let (namespaces, apps) = apps_namespace(&env).await;
    let repo = Repo::new();
    repo.write("a.yaml", &configmap(&apps, "a", "1"));
    repo.commit("no secrets yet");
    let mut settings = ControllerSettings::new(ns.clone());
    settings.watch_namespaces = vec![ns.clone()];
    let mut sync_settings = repo.settings("long", &ns);
    sync_settings.interval = std::time::Duration::from_secs(1);
    settings.sync = Some(sync_settings);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let client = env.client.clone();
    let task = tokio::spawn(async move {
        controller::run(client, settings, async {
            let _ = stop_rx.await;
        })
        .await
    });

    // The first pass records that it needed no key: the usage is settled, and names none.
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    super::harness::wait_for("the first pass's record", PATIENCE, || async {
        cms.get_opt("gitops-seal-sync-long")
            .await
            .ok()
            .flatten()
            .and_then(|c| c.data)
            .is_some_and(|d| d.contains_key(KEYS_STATUS_KEY))
    })
    .await;
    let recipients =
        super::harness::wait_for_some("the recipients ConfigMap", PATIENCE, || async {
            let cm = cms.get_opt("gitops-seal-recipients").await.ok()??;
            let text = cm.data?.remove("recipients.txt")?;
            gitops_seal::core::keys::parse_recipients_file(&text).ok()
        })
        .await;
    let seal = SealSettings {
        recipients,
        ..SealSettings::default()
    };
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: {apps}}}\nstringData: {{password: hunter2}}\n"
    );
    repo.write(
        "db.yaml",
        &ops::encrypt(manifest.as_bytes(), &seal, None)
            .unwrap()
            .unwrap(),
    );
    // Enough objects that the pass writes well past the lifecycle's next look.
    for i in 0..150 {
        repo.write(
            &format!("many/c{i}.yaml"),
            &configmap(&apps, &format!("c{i}"), "1"),
        );
    }
    repo.commit("a sealed Secret and many objects");

    let held = |s: &Secret| s.finalizers().iter().any(|f| f == KEY_IN_USE_FINALIZER);
    let identities: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    super::harness::wait_for("the pass to record its key", PATIENCE, || async {
        cms.get_opt("gitops-seal-sync-long")
            .await
            .ok()
            .flatten()
            .and_then(|c| c.data)
            .and_then(|mut d| d.remove(KEYS_STATUS_KEY))
            .is_some_and(|k| k.contains("pq:"))
    })
    .await;
    // Then the lifecycle has looked at least once with the record in hand.
    super::harness::wait_for("the key reported in use", PATIENCE, || async {
        cms.get_opt(gitops_seal::core::names::KEY_USAGE_CONFIGMAP)
            .await
            .ok()
            .flatten()
            .and_then(|c| c.data)
            .and_then(|mut d| d.remove(gitops_seal::core::names::KEY_USAGE_KEY))
            .is_some_and(|u| u.contains("sync: true"))
    })
    .await;
    let key = identities.get("gitops-seal-identity").await.unwrap();
    assert!(held(&key), "the key is held");
    let released = key_released(&env, "gitops-seal-identity").await;
    assert!(
        released.is_empty(),
        "the key was let go mid-pass: {released:?}"
    );

    let _ = stop_tx.send(());
    within("the controller to stop", PATIENCE, task)
        .await
        .unwrap()
        .unwrap();
    let _ = namespaces.delete(&apps, &DeleteParams::default()).await;
    env.cleanup().await;
}

/// A namespace of its own for the repository's objects (the loop inside the controller may not
/// write in the controller's namespace), and the API to delete it with.
async fn apps_namespace(env: &KubeEnv) -> (Api<k8s_openapi::api::core::v1::Namespace>, String) {
    let apps = format!("t-apps-{}", random_suffix());
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    namespaces
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": apps}})).unwrap(),
        )
        .await
        .unwrap();
    (namespaces, apps)
}

/// The notes of the `KeyReleased` events about identity Secret `secret`.
async fn key_released(env: &KubeEnv, secret: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &env.namespace);
    events
        .list(&kube::api::ListParams::default().fields(&format!("regarding.name={secret}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("KeyReleased"))
        .map(|e| e.note.unwrap_or_default())
        .collect()
}

/// The controller's `/metrics` text.
async fn metrics(addr: std::net::SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.ok()?;
    Some(String::from_utf8_lossy(&raw).into_owned())
}

/// A loopback HTTP server in front of `git http-backend` (Git's own smart-HTTP server, as CGI)
/// that admits only HTTP Basic with user `x-access-token` and the given token.
async fn serve_git_over_http(root: std::path::PathBuf, token: &str) -> std::net::SocketAddr {
    use base64::Engine;

    let exec_path = String::from_utf8(
        Command::new("git")
            .arg("--exec-path")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_string();
    let backend = Path::new(&exec_path).join("git-http-backend");
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"))
    );
    let state = Arc::new(Cgi {
        root,
        backend,
        expected,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            axum::Router::new().fallback(git_cgi).with_state(state),
        )
        .await
        .unwrap();
    });
    addr
}

/// https-style remotes with a token: the token from `--git-token-file` opens the repository
/// behind `git http-backend`; a wrong token is a fetch error that changes nothing. (Plain HTTP
/// on loopback: TLS is libgit2's and OpenSSL's, the credential exchange is what is tested.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_behind_http_with_a_token() {
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    let repo = Repo::new();
    repo.write("a.yaml", &configmap(&ns, "a", "over-http"));
    repo.commit("one");
    let served = tempfile::tempdir().unwrap();
    repo.clone_bare(&served.path().join("apps.git"));
    let addr = serve_git_over_http(served.path().to_path_buf(), "s3cret-token").await;
    let token_file = served.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();

    let mut settings = repo.settings("over-http", &ns);
    settings.repo = format!("http://{addr}/apps.git");
    settings.token_file = Some(token_file.clone());
    let id: Arc<[Identity]> = Vec::new().into();
    pass(&env, &settings, &id).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    assert_eq!(
        cms.get("a").await.unwrap().data.unwrap()["mode"],
        "over-http"
    );

    // A wrong token, and none: a fetch error naming the repository; nothing deleted.
    std::fs::write(&token_file, "wrong\n").unwrap();
    let mut fresh = settings.clone();
    fresh.cache_dir = tempfile::tempdir().unwrap().keep();
    let err = pass(&env, &fresh, &id).await.unwrap_err();
    let text = sync::error_chain(&err);
    assert!(matches!(err, SyncError::Fetch { .. }), "{text}");
    assert!(text.contains("refused the token"), "{text}");
    assert!(!text.contains("wrong"), "the token is never echoed: {text}");
    fresh.token_file = None;
    let err = pass(&env, &fresh, &id).await.unwrap_err();
    assert!(
        sync::error_chain(&err).contains("no token was given"),
        "{err}"
    );
    assert!(cms.get_opt("a").await.unwrap().is_some());
    env.cleanup().await;
}

struct Cgi {
    root: std::path::PathBuf,
    backend: std::path::PathBuf,
    expected: String,
}

/// One request through `git http-backend` (CGI), if it carries the expected credentials.
async fn git_cgi(
    axum::extract::State(cgi): axum::extract::State<Arc<Cgi>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::body::Body;
    use axum::http::{HeaderValue, StatusCode};
    use axum::response::Response;
    let (root, backend, expected) = (cgi.root.clone(), cgi.backend.clone(), cgi.expected.clone());
    let (parts, request_body) = req.into_parts();
    let authorised = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str());
    if !authorised {
        let mut r = Response::new(Body::from("credentials required\n"));
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"git\""),
        );
        return r;
    }
    let method = parts.method.to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, encoding) = (header("content-type"), header("content-encoding"));
    let body = axum::body::to_bytes(request_body, usize::MAX)
        .await
        .unwrap();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(backend)
            .env("GIT_PROJECT_ROOT", root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("REQUEST_METHOD", method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("CONTENT_TYPE", content_type)
            .env("HTTP_CONTENT_ENCODING", encoding)
            .env("REMOTE_USER", "x-access-token")
            .env("REMOTE_ADDR", "127.0.0.1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&body).unwrap();
        child.wait_with_output().unwrap().stdout
    })
    .await
    .unwrap();
    // CGI: headers, a blank line, the body.
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
        .expect("CGI headers");
    let head = String::from_utf8_lossy(&out[..split.0]).into_owned();
    let mut r = Response::new(Body::from(out[split.0 + split.1..].to_vec()));
    for line in head.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            let code: u16 = v.split(' ').next().unwrap().parse().unwrap();
            *r.status_mut() = StatusCode::from_u16(code).unwrap();
        } else if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.trim().as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(name, value);
        }
    }
    r
}

/// A loopback `sshd` (Debian's openssh-server) with a host key and one authorised client key,
/// serving the repositories of the current user; killed on drop.
struct Sshd {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
    /// The account it serves (the current user's).
    user: String,
}

impl Sshd {
    fn start() -> Sshd {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "the ssh test needs Debian's openssh-server (.ci/run installs it)"
        );
        // sshd refuses to start as root without its privilege separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().unwrap();
        for (name, kind) in [
            ("host", "ed25519"),
            ("client", "ed25519"),
            ("stranger", "rsa"),
        ] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-N", "", "-t", kind, "-C", name, "-f"])
                .arg(dir.path().join(name))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::copy(
            dir.path().join("client.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("sshd_config"),
            format!(
                "ListenAddress 127.0.0.1:{port}\nHostKey {d}/host\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\nAllowUsers {user}\n"
            ),
        )
        .unwrap();
        let mut child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(dir.path().join("sshd_config"))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Ready when it says it listens (bounded wait on that line, not a sleep).
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("Server listening") => break,
                Ok(line) => seen.push(line),
                Err(_) => panic!("sshd did not start: {seen:?}"),
            }
        }
        Sshd {
            child,
            dir,
            port,
            user,
        }
    }

    fn file(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// A known_hosts line for this server under `[127.0.0.1]:PORT`, with the given key file's
    /// public half.
    fn known_hosts_line(&self, key: &str) -> String {
        let public = std::fs::read_to_string(self.file(&format!("{key}.pub"))).unwrap();
        let mut fields = public.split_whitespace();
        let (kind, blob) = (fields.next().unwrap(), fields.next().unwrap());
        format!("[127.0.0.1]:{} {kind} {blob}\n", self.port)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// ssh remotes: the key from `--git-ssh-key` opens the repository behind a real `sshd` whose
/// host key the known_hosts file lists (plain or hashed by `ssh-keygen -H`). An unknown host, a
/// changed host key, no known_hosts file and a key the server does not accept are each a fetch
/// error that applies and deletes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_over_ssh_with_a_key_and_known_hosts() {
    let env = KubeEnv::new().await;
    let ns = env.namespace.clone();
    let repo = Repo::new();
    repo.write("a.yaml", &configmap(&ns, "a", "over-ssh"));
    repo.commit("one");
    let sshd = Sshd::start();
    let bare = sshd.file("apps.git");
    repo.clone_bare(&bare);
    let known = sshd.file("known_hosts");
    std::fs::write(&known, sshd.known_hosts_line("host")).unwrap();

    let mut settings = repo.settings("over-ssh", &ns);
    settings.repo = format!(
        "ssh://{}@127.0.0.1:{}{}",
        sshd.user,
        sshd.port,
        bare.display()
    );
    settings.ssh_key_file = Some(sshd.file("client"));
    settings.known_hosts_file = Some(known.clone());
    let id: Arc<[Identity]> = Vec::new().into();
    pass(&env, &settings, &id).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    assert_eq!(
        cms.get("a").await.unwrap().data.unwrap()["mode"],
        "over-ssh"
    );

    // Hashed known_hosts, as `ssh-keygen -H` rewrites the file.
    let hashed = Command::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(&known)
        .output()
        .unwrap();
    assert!(
        hashed.status.success(),
        "{}",
        String::from_utf8_lossy(&hashed.stderr)
    );
    assert!(std::fs::read_to_string(&known).unwrap().starts_with("|1|"));
    let mut fresh = settings.clone();
    fresh.cache_dir = tempfile::tempdir().unwrap().keep();
    pass(&env, &fresh, &id).await.unwrap();
    // Other forms libgit2 reaches over ssh, checked against the same file: the scheme in
    // capitals, and scp-like with the port inside the brackets.
    for url in [
        format!(
            "SSH://{}@127.0.0.1:{}{}",
            sshd.user,
            sshd.port,
            bare.display()
        ),
        format!("[{}@127.0.0.1:{}]:{}", sshd.user, sshd.port, bare.display()),
    ] {
        let mut other = settings.clone();
        other.repo = url.clone();
        other.cache_dir = tempfile::tempdir().unwrap().keep();
        if let Err(e) = pass(&env, &other, &id).await {
            panic!("{url}: {}", sync::error_chain(&e));
        }
    }

    let refused = |settings: &Settings| {
        let mut s = settings.clone();
        s.cache_dir = tempfile::tempdir().unwrap().keep();
        s
    };
    // A host key the file does not list for this host.
    std::fs::write(&known, sshd.known_hosts_line("stranger")).unwrap();
    let err = pass(&env, &refused(&settings), &id).await.unwrap_err();
    let text = sync::error_chain(&err);
    assert!(matches!(err, SyncError::Fetch { .. }), "{text}");
    assert!(text.contains("does not list for it"), "{text}");
    // The same through the scheme in capitals: our check, not only ~/.ssh/known_hosts.
    let mut upper = refused(&settings);
    upper.repo = settings.repo.replacen("ssh://", "SSH://", 1);
    let err = pass(&env, &upper, &id).await.unwrap_err();
    let text = sync::error_chain(&err);
    assert!(text.contains("does not list for it"), "{text}");
    // A host the file does not know.
    std::fs::write(&known, "# nothing here\n").unwrap();
    let err = pass(&env, &refused(&settings), &id).await.unwrap_err();
    let text = sync::error_chain(&err);
    assert!(
        text.contains(&format!(
            "[127.0.0.1]:{} is not in the known_hosts file",
            sshd.port
        )),
        "{text}"
    );
    // No known_hosts file at all: refused before connecting.
    let mut none = refused(&settings);
    none.known_hosts_file = None;
    let err = pass(&env, &none, &id).await.unwrap_err();
    assert!(
        sync::error_chain(&err).contains("needs a known_hosts file"),
        "{err}"
    );
    // A key the server does not accept; the key is never echoed.
    std::fs::write(&known, sshd.known_hosts_line("host")).unwrap();
    let mut stranger = refused(&settings);
    stranger.ssh_key_file = Some(sshd.file("stranger"));
    let err = pass(&env, &stranger, &id).await.unwrap_err();
    let text = sync::error_chain(&err);
    assert!(text.contains("refused the ssh key"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");

    assert!(cms.get_opt("a").await.unwrap().is_some(), "nothing deleted");
    env.cleanup().await;
}
