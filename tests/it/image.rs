//! The controller's image: deploy/Containerfile (the runtime assembled from this machine) agrees
//! with deploy/Dockerfile's final stage, and the image it builds runs the controller as
//! deploy/deployment.yaml does — read-only root filesystem, uid 65532, only the Deployment's
//! writable folders — against the standalone test API server (`kube-test-server`, started here).
//!
//! The build and run need podman, buildah and runc as root (`.ci/run` installs them): without
//! them the test is skipped with a message, except under `CI=true`, where that is a failure.
//! Podman runs here with storage driver vfs under a temporary folder (removed afterwards), the
//! cgroupfs manager, runc, host networking, and a containers.conf without default ulimits.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Config};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use gitops_seal::adapters::http::{HEALTHZ, METRICS, READYZ};
use gitops_seal::adapters::kube::{crd, SealedSecret, SealedSecretResourceSpec, CRD_NAME};
use gitops_seal::controller::keys::{IDENTITY_LABEL, RECIPIENTS_CONFIGMAP, RECIPIENTS_KEY};
use gitops_seal::core::keys::parse_recipients_file;
use gitops_seal::core::{self as core, PlainSecret, Scope};
use gitops_seal::sync::plan::SYNC_LABEL;

use crate::kube::harness::{install_crypto_provider, wait_for_some, within, PATIENCE};

fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// One stage's instructions: `(instruction, rest of the line)`, continuation lines joined.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let full = std::mem::take(&mut pending);
        let (word, rest) = full.split_once(' ').unwrap_or((&full, ""));
        out.push((word.to_ascii_uppercase(), rest.trim().to_owned()));
    }
    out
}

/// The final stage (after the last FROM) of a Dockerfile.
fn final_stage(path: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_file(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let all = instructions(&text);
    let last_from = all
        .iter()
        .rposition(|(w, _)| w == "FROM")
        .unwrap_or_else(|| panic!("{path} has no FROM"));
    all[last_from..].to_vec()
}

fn one<'a>(stage: &'a [(String, String)], word: &str) -> &'a str {
    let found: Vec<&str> = stage
        .iter()
        .filter(|(w, _)| w == word)
        .map(|(_, r)| r.as_str())
        .collect();
    assert_eq!(found.len(), 1, "one {word}: {found:?}");
    found[0]
}

/// Where each COPY of a stage writes (its last argument).
fn copy_destinations(stage: &[(String, String)]) -> BTreeSet<String> {
    stage
        .iter()
        .filter(|(w, _)| w == "COPY")
        .map(|(_, r)| r.split_whitespace().last().unwrap().to_owned())
        .collect()
}

/// deploy/Containerfile and deploy/Dockerfile's final stage: the same user, entrypoint, command
/// and exposed port, and the Containerfile copies to every path the Dockerfile copies to. What
/// it copies besides is what the Dockerfile's base (distroless) brings: the root's files (`/`)
/// and the user's home (`/home/`).
#[test]
fn containerfile_and_dockerfile_agree() {
    let published = final_stage("deploy/Dockerfile");
    let local = final_stage("deploy/Containerfile");
    for word in ["USER", "EXPOSE", "ENTRYPOINT", "CMD"] {
        assert_eq!(one(&published, word), one(&local, word), "{word}");
    }
    assert_eq!(one(&published, "USER"), "65532:65532");
    assert_eq!(one(&local, "FROM"), "scratch");
    let published_copies = copy_destinations(&published);
    let local_copies = copy_destinations(&local);
    assert!(
        published_copies.is_subset(&local_copies),
        "the Dockerfile copies to {published_copies:?}, the Containerfile to {local_copies:?}"
    );
    let extra: BTreeSet<&str> = local_copies
        .difference(&published_copies)
        .map(String::as_str)
        .collect();
    assert_eq!(extra, BTreeSet::from(["/", "/home/"]));
}

// --- building and running the image --------------------------------------------------------

/// podman, buildah and runc, as root; `None` (after saying why) when this machine lacks them
/// and this is not CI.
fn container_tools() -> Option<()> {
    let missing: Vec<&str> = ["podman", "buildah", "runc"]
        .into_iter()
        .filter(|tool| {
            Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| !s.success())
                .unwrap_or(true)
        })
        .collect();
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
    let why = if !missing.is_empty() {
        format!("{} not installed", missing.join(", "))
    } else if !root {
        "podman here runs as root (vfs storage, runc, cgroupfs)".to_owned()
    } else {
        return Some(());
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "the image test cannot run under CI: {why} (.ci/run installs podman, buildah, runc)"
        );
    }
    eprintln!("SKIPPED the image test: {why}");
    None
}

/// podman and buildah with storage under a temporary folder; the image and container it made
/// are removed when it is dropped (and the folder with the temporary directory).
struct Podman {
    dir: tempfile::TempDir,
    image: String,
    container: String,
}

impl Podman {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(
            dir.path().join("containers.conf"),
            "[containers]\ndefault_ulimits = []\n",
        )
        .unwrap();
        let suffix = crate::kube::harness::random_suffix();
        Podman {
            image: format!("localhost/gitops-seal-test:{suffix}"),
            container: format!("gitops-seal-test-{suffix}"),
            dir,
        }
    }

    fn storage_args(&self) -> Vec<String> {
        let d = self.dir.path();
        vec![
            format!("--root={}", d.join("storage").display()),
            format!("--runroot={}", d.join("run").display()),
            "--storage-driver=vfs".to_owned(),
        ]
    }

    fn command(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .args(self.storage_args())
            .stdin(Stdio::null());
        if tool == "podman" {
            c.args(["--cgroup-manager=cgroupfs", "--runtime=runc"]);
        }
        c
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let out = self
            .command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn logs(&self) -> String {
        let out = self
            .command("podman")
            .args(["logs", &self.container])
            .output()
            .expect("podman logs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the container's log:\n{}", self.logs());
        }
        for args in [
            vec!["rm", "-f", "-t", "0", self.container.as_str()],
            vec!["rmi", "-f", self.image.as_str()],
        ] {
            let _ = self
                .command("podman")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `kube-test-server` as a process of its own, killed when dropped.
struct StandaloneServer {
    child: Child,
    url: String,
}

impl StandaloneServer {
    fn start(kubeconfig: &Path) -> Self {
        // Built next to gitops-seal (`cargo build -p kube-test-server`, as .ci/run does); built
        // here when it is not there yet.
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_gitops-seal"))
            .parent()
            .unwrap();
        let bin = bin_dir.join("kube-test-server");
        if !bin.exists() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args([
                    "build",
                    "-q",
                    "-p",
                    "kube-test-server",
                    "--bin",
                    "kube-test-server",
                ])
                .env("CARGO_TARGET_DIR", bin_dir.parent().unwrap())
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("cargo build -p kube-test-server");
            assert!(
                status.success() && bin.exists(),
                "building {}",
                bin.display()
            );
        }
        let mut child = Command::new(&bin)
            .args(["--listen", "127.0.0.1:0", "--kubeconfig"])
            .arg(kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kube-test-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("kube-test-server's first line");
        let url = line
            .split_whitespace()
            .skip_while(|w| *w != "serving")
            .nth(1)
            .unwrap_or_else(|| panic!("kube-test-server printed {line:?}"))
            .to_owned();
        StandaloneServer { child, url }
    }
}

impl Drop for StandaloneServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET http://127.0.0.1:{port}{path}` over HTTP/1.0: the status code and the body, or `None`
/// while nothing answers.
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let code = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b)?.to_owned();
    Some((code, body))
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

async fn create_namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    within(
        "create a namespace",
        PATIENCE,
        Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns),
    )
    .await
    .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
}

/// The Deployment's container and pod as deploy/deployment.yaml writes them.
fn deployment() -> Value {
    let text = std::fs::read_to_string(repo_file("deploy/deployment.yaml")).unwrap();
    serde_saphyr::from_str(&text).expect("deploy/deployment.yaml parses")
}

/// deploy/Containerfile's image, built from the test build of the binary, run as
/// deploy/deployment.yaml runs it: `--read-only` (and no writable /tmp of podman's own),
/// `--user` the pod's runAsUser:runAsGroup, the Deployment's arguments and environment, and only
/// its writable folders (its emptyDir mounts), each a folder of this test's. The kubeconfig (for
/// the standalone test API server) and a git repository (owned by the container's user, files
/// git-sync would write) are mounted read-only. The controller generates its key, publishes
/// its recipient, unseals a SealedSecret, answers its probes and /metrics, applies a ConfigMap
/// from the repository into another namespace through `--sync-repo file://...` with its cache
/// in the writable /tmp, and exits 0 on `podman stop` (SIGTERM). What it wrote is only that
/// cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_the_controller_read_only_as_deployed() {
    if container_tools().is_none() {
        return;
    }
    let podman = Podman::new();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();

    // The image, from the binary this test run built.
    let context = work.join("context");
    let out = Command::new(repo_file("deploy/stage-local-image.sh"))
        .arg(env!("CARGO_BIN_EXE_gitops-seal"))
        .arg(&context)
        .output()
        .expect("deploy/stage-local-image.sh");
    assert!(
        out.status.success(),
        "staging: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let containerfile = repo_file("deploy/Containerfile");
    podman.run(
        "buildah",
        &[
            "bud",
            "-q",
            "--isolation=chroot",
            "-f",
            containerfile.to_str().unwrap(),
            "-t",
            &podman.image,
            context.to_str().unwrap(),
        ],
    );
    // The built image's configuration is the Dockerfile's.
    let inspect = podman.run("podman", &["image", "inspect", &podman.image]);
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let config = &inspect[0]["Config"];
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["Entrypoint"], json!(["/usr/local/bin/gitops-seal"]));
    assert_eq!(config["Cmd"], json!(["controller"]));
    assert!(config["ExposedPorts"].get("8080/tcp").is_some(), "{config}");
    // No shell in it.
    let shell = podman
        .command("podman")
        .args(["run", "--rm", "--network=host", "--entrypoint=/bin/sh"])
        .arg(&podman.image)
        .args(["-c", "true"])
        .output()
        .unwrap();
    assert!(!shell.status.success(), "the image has a shell");

    // The standalone test API server, and what the cluster admin would have installed.
    let kubeconfig = work.join("kubeconfig");
    let server = StandaloneServer::start(&kubeconfig);
    chmod(&kubeconfig, 0o644);
    install_crypto_provider();
    let client = Client::try_from(Config::new(server.url.parse().unwrap())).unwrap();
    let ns = "gitops-seal";
    let apps = "apps";
    create_namespace(&client, ns).await;
    create_namespace(&client, apps).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    within(
        "the SealedSecret CRD",
        PATIENCE,
        crds.patch(
            CRD_NAME,
            &PatchParams::apply("tests").force(),
            &Patch::Apply(crd()),
        ),
    )
    .await
    .unwrap();

    // The repository, as a git-sync sidecar would leave it for the controller's user.
    let repo = work.join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(
        repo.join("app.yaml"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: from-git, namespace: {apps}}}\ndata: {{mode: image}}\n"),
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "one"]);

    // The Deployment: its user, arguments, environment and writable folders.
    let deployment = deployment();
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let user = format!(
        "{}:{}",
        pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    // The repository belongs to another uid, as a git-sync sidecar's volume does: the loop
    // reads it because it is trusted by path (`--sync-trust-repository`), as Git's
    // safe.directory does.
    let status = Command::new("chown")
        .args(["-R", "4242:4242"])
        .arg(&repo)
        .status()
        .unwrap();
    assert!(status.success());
    assert_ne!(user, "4242:4242");
    let volumes: BTreeMap<&str, &Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    let mut writable = BTreeMap::new();
    for mount in container["volumeMounts"].as_array().unwrap() {
        let name = mount["name"].as_str().unwrap();
        assert!(
            volumes[name].get("emptyDir").is_some(),
            "volume {name}: the test knows emptyDir volumes only"
        );
        assert_ne!(mount["readOnly"], true, "volume {name}");
        let host = work.join(format!("volume-{name}"));
        std::fs::create_dir(&host).unwrap();
        chmod(&host, 0o777); // as the kubelet makes an emptyDir
        writable.insert(mount["mountPath"].as_str().unwrap().to_owned(), host);
    }
    let tmp = writable
        .get("/tmp")
        .expect("deploy/deployment.yaml mounts a writable /tmp (the sync cache's default)")
        .clone();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .filter(|a| !a.starts_with("--listen"))
        .collect();
    args.extend([
        format!("--listen=127.0.0.1:{port}"),
        "--kubeconfig=/etc/gitops-seal/kubeconfig".to_owned(),
        "--sync-repo=file:///srv/repo".to_owned(),
        "--sync-trust-repository=/srv/repo".to_owned(),
        "--sync-name=image".to_owned(),
        "--sync-interval=1s".to_owned(),
    ]);
    let mut run: Vec<String> = [
        "run",
        "-d",
        "--name",
        &podman.container,
        "--read-only",
        "--read-only-tmpfs=false",
        "--user",
        &user,
        "--network=host",
    ]
    .map(String::from)
    .to_vec();
    for e in container["env"].as_array().unwrap() {
        let value = match e["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap() {
            "metadata.namespace" => ns,
            "metadata.name" => "gitops-seal-0",
            other => panic!("deploy/deployment.yaml reads {other}: give the test a value"),
        };
        run.push(format!("--env={}={value}", e["name"].as_str().unwrap()));
    }
    run.push(format!(
        "--volume={}:/etc/gitops-seal/kubeconfig:ro",
        kubeconfig.display()
    ));
    run.push(format!("--volume={}:/srv/repo:ro", repo.display()));
    for (path, host) in &writable {
        run.push(format!("--volume={}:{path}:rw", host.display()));
    }
    run.push(podman.image.clone());
    run.extend(args);
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    podman.run("podman", &run);

    // Its key, and the recipient it publishes.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let identity = ListParams::default().labels(&format!("{IDENTITY_LABEL}=true"));
    wait_for_some("the generated identity Secret", PATIENCE, || async {
        let list = secrets.list(&identity).await.ok()?;
        (list.items.len() == 1).then_some(())
    })
    .await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let recipients = wait_for_some("the recipients ConfigMap", PATIENCE, || async {
        let cm = configmaps.get_opt(RECIPIENTS_CONFIGMAP).await.ok()??;
        parse_recipients_file(cm.data?.get(RECIPIENTS_KEY)?).ok()
    })
    .await;

    // A SealedSecret sealed for it becomes a Secret.
    let plain = PlainSecret {
        name: "db".into(),
        namespace: Some(apps.into()),
        secret_type: "Opaque".into(),
        immutable: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        data: [(
            "password".to_owned(),
            Zeroizing::new(b"from-the-image".to_vec()),
        )]
        .into(),
    };
    let sealed = core::SealedSecret::seal(&plain, &recipients, Scope::Strict, None, None).unwrap();
    let spec: SealedSecretResourceSpec =
        serde_json::from_value(sealed.to_value()["spec"].clone()).unwrap();
    let sealed_api: Api<SealedSecret> = Api::namespaced(client.clone(), apps);
    within(
        "create the SealedSecret",
        PATIENCE,
        sealed_api.create(&PostParams::default(), &SealedSecret::new("db", spec)),
    )
    .await
    .unwrap();
    let app_secrets: Api<Secret> = Api::namespaced(client.clone(), apps);
    let unsealed = wait_for_some("the unsealed Secret", PATIENCE, || async {
        app_secrets.get_opt("db").await.ok()?
    })
    .await;
    assert_eq!(
        unsealed.data.unwrap()["password"].0,
        b"from-the-image",
        "{}",
        podman.logs()
    );

    // The sync loop applied the repository's ConfigMap into the other namespace.
    let app_configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), apps);
    let synced = wait_for_some("the synced ConfigMap", PATIENCE, || async {
        app_configmaps.get_opt("from-git").await.ok()?
    })
    .await;
    assert_eq!(synced.metadata.labels.unwrap()[SYNC_LABEL], "image");
    assert_eq!(synced.data.unwrap()["mode"], "image");

    // Its probes and metrics, on its port.
    for path in [HEALTHZ, READYZ] {
        wait_for_some(&format!("200 from {path}"), PATIENCE, || async {
            (http_get(port, path).await?.0 == 200).then_some(())
        })
        .await;
    }
    let (code, metrics) = http_get(port, METRICS)
        .await
        .expect("an answer on /metrics");
    assert_eq!(code, 200);
    assert!(metrics.contains("gitops_seal_"), "{metrics}");

    // SIGTERM (podman stop, as the kubelet stops a pod): a clean exit 0.
    podman.run("podman", &["stop", "--time=30", &podman.container]);
    let state = podman.run(
        "podman",
        &["inspect", "--format={{.State.ExitCode}}", &podman.container],
    );
    let logs = podman.logs();
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "0", "{logs}");
    assert!(logs.contains("controller stopped"), "{logs}");

    // What it wrote: the sync loop's cache in /tmp, and nothing else in any writable folder.
    let mut written: Vec<String> = Vec::new();
    for (path, host) in &writable {
        for entry in std::fs::read_dir(host).unwrap() {
            written.push(format!(
                "{path}/{}",
                entry.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    assert_eq!(written, ["/tmp/gitops-seal-sync"], "{logs}");
    assert!(tmp.join("gitops-seal-sync/file____srv_repo/HEAD").exists());
    drop(server);
}
