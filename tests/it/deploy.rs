//! deploy/: what `kubectl apply -k deploy/` would install, rendered with `kubectl kustomize`
//! (skipped with a message where kubectl is not installed), parses and hangs together: names,
//! labels and selectors, the service account, the namespace, RBAC for what the controller
//! touches, and the Deployment's flags, port and probes against the binary and its HTTP paths.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use gitops_seal::adapters::fetch::RECIPIENTS_CONFIGMAP;
use gitops_seal::adapters::http::{DEFAULT_LISTEN, HEALTHZ, METRICS, READYZ};
use gitops_seal::adapters::leader::LEASE_NAME;

const NAMESPACE: &str = "gitops-seal";
/// The in-cluster sync loop's own ServiceAccount.
const SYNC_ACCOUNT: &str = "gitops-seal-sync";

fn render() -> Option<Vec<Value>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let out = match Command::new("kubectl").arg("kustomize").arg(&dir).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED deploy/ check: kubectl is not installed");
            return None;
        }
        Err(e) => panic!("running kubectl: {e}"),
    };
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/ failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("the rendered YAML parses");
    Some(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn str_of<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v:#}"))
}

fn key(obj: &Value) -> (String, String) {
    (
        str_of(obj, "/kind").to_owned(),
        str_of(obj, "/metadata/name").to_owned(),
    )
}

fn labels(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The rules of a (Cluster)Role that grant `verb` on `group/resource`, and their resourceNames
/// (empty: any name).
fn grants<'a>(role: &'a Value, group: &str, resource: &str, verb: &str) -> Vec<Vec<&'a str>> {
    let strings = |v: Option<&'a Value>| -> Vec<&'a str> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| {
            strings(r.get("apiGroups")).contains(&group)
                && strings(r.get("resources")).contains(&resource)
                && strings(r.get("verbs")).contains(&verb)
        })
        .map(|r| strings(r.get("resourceNames")))
        .collect()
}

#[test]
fn kustomize_renders_a_consistent_installation() {
    let Some(docs) = render() else { return };
    let by_key: BTreeMap<(String, String), &Value> = docs.iter().map(|d| (key(d), d)).collect();
    assert_eq!(
        by_key.len(),
        docs.len(),
        "two objects share a kind and name"
    );
    let get = |kind: &str, name: &str| -> &Value {
        by_key
            .get(&(kind.to_owned(), name.to_owned()))
            .copied()
            .unwrap_or_else(|| panic!("deploy/ renders no {kind} {name}"))
    };

    // The CRD is the committed, generated deploy/crd.yaml.
    let crd = get("CustomResourceDefinition", "sealedsecrets.gitops-seal.dev");
    assert_eq!(str_of(crd, "/spec/group"), "gitops-seal.dev");
    get("Namespace", NAMESPACE);

    // Every namespaced object is in the controller's namespace.
    let cluster_scoped = [
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
    ];
    for d in &docs {
        let (kind, name) = key(d);
        if cluster_scoped.contains(&kind.as_str()) {
            assert!(d.pointer("/metadata/namespace").is_none(), "{kind} {name}");
        } else {
            assert_eq!(str_of(d, "/metadata/namespace"), NAMESPACE, "{kind} {name}");
        }
    }

    // Bindings point at roles and service accounts that exist.
    for d in &docs {
        let (kind, name) = key(d);
        if kind != "RoleBinding" && kind != "ClusterRoleBinding" {
            continue;
        }
        let role_kind = str_of(d, "/roleRef/kind");
        let role = get(role_kind, str_of(d, "/roleRef/name"));
        if role_kind == "Role" {
            assert_eq!(
                str_of(role, "/metadata/namespace"),
                str_of(d, "/metadata/namespace"),
                "{kind} {name} binds a Role of another namespace"
            );
        }
        for s in d["subjects"].as_array().expect("subjects") {
            assert_eq!(str_of(s, "/kind"), "ServiceAccount", "{kind} {name}");
            get("ServiceAccount", str_of(s, "/name"));
            assert_eq!(str_of(s, "/namespace"), NAMESPACE, "{kind} {name}");
        }
    }

    // The Deployment.
    let deployment = get("Deployment", "gitops-seal");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"];
    let pod_labels = labels(pod.pointer("/metadata/labels"));
    let selector = labels(deployment.pointer("/spec/selector/matchLabels"));
    assert!(
        selects(&selector, &pod_labels),
        "{selector:?} / {pod_labels:?}"
    );
    let account = str_of(pod, "/spec/serviceAccountName");
    get("ServiceAccount", account);
    let bound: Vec<&str> = docs
        .iter()
        .filter(|d| {
            d["subjects"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["name"] == account))
        })
        .map(|d| str_of(d, "/roleRef/name"))
        .collect();
    assert!(
        [
            "gitops-seal-controller",
            "gitops-seal-secrets",
            "gitops-seal"
        ]
        .iter()
        .all(|r| bound.contains(r)),
        "the controller's account is bound to {bound:?}"
    );
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    let containers = pod["spec"]["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                c["resources"][kind][resource].is_string(),
                "resources.{kind}.{resource}"
            );
        }
    }
    let env: BTreeMap<&str, &str> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            (
                str_of(e, "/name"),
                str_of(e, "/valueFrom/fieldRef/fieldPath"),
            )
        })
        .collect();
    assert_eq!(env.get("POD_NAMESPACE"), Some(&"metadata.namespace"));
    assert_eq!(env.get("POD_NAME"), Some(&"metadata.name"));

    // Port, probes and flags match the controller's HTTP server and command line.
    let default_port: u16 = DEFAULT_LISTEN.rsplit(':').next().unwrap().parse().unwrap();
    let port = &c["ports"][0];
    let port_name = str_of(port, "/name");
    assert_eq!(port["containerPort"], default_port);
    assert_eq!(str_of(c, "/livenessProbe/httpGet/path"), HEALTHZ);
    assert_eq!(str_of(c, "/readinessProbe/httpGet/path"), READYZ);
    assert_eq!(str_of(c, "/livenessProbe/httpGet/port"), port_name);
    assert_eq!(str_of(c, "/readinessProbe/httpGet/port"), port_name);
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("a string"))
        .collect();
    assert_eq!(args[0], "controller");
    assert!(args.contains(&"--leader-election"), "{args:?}");
    let listen = args
        .iter()
        .find_map(|a| a.strip_prefix("--listen="))
        .expect("--listen=ADDR");
    assert!(
        listen.ends_with(&format!(":{}", port["containerPort"])),
        "--listen {listen} and the container port differ"
    );
    let help = Command::new(env!("CARGO_BIN_EXE_gitops-seal"))
        .args(["controller", "--help"])
        .output()
        .expect("gitops-seal controller --help");
    let help = String::from_utf8_lossy(&help.stdout);
    for arg in &args[1..] {
        let flag = arg.split('=').next().unwrap();
        assert!(
            help.contains(flag),
            "deploy/deployment.yaml passes {flag}, which `gitops-seal controller` does not take"
        );
    }

    // The sync loop applies as its own ServiceAccount, by default: the Deployment names it, the
    // controller's account may impersonate exactly that one (and nothing else), and deploy/
    // grants it nothing (sync-rbac-example.yaml shows what to grant, in one namespace).
    let sync_account = args
        .iter()
        .find_map(|a| a.strip_prefix("--sync-service-account="))
        .expect("deploy/deployment.yaml passes --sync-service-account=NAME");
    let sync_account = sync_account
        .strip_prefix(&format!("{NAMESPACE}/"))
        .unwrap_or(sync_account);
    assert_eq!(sync_account, SYNC_ACCOUNT);
    get("ServiceAccount", SYNC_ACCOUNT);
    let controller_roles: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            d["subjects"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["name"] == account))
        })
        .map(|d| get(str_of(d, "/roleRef/kind"), str_of(d, "/roleRef/name")))
        .collect();
    let impersonations: Vec<(Vec<&str>, Vec<&str>)> = controller_roles
        .iter()
        .flat_map(|role| role["rules"].as_array().expect("rules"))
        .filter(|r| {
            r["verbs"]
                .as_array()
                .is_some_and(|v| v.iter().any(|v| v == "impersonate" || v == "*"))
        })
        .map(|r| {
            let strings = |k: &str| -> Vec<&str> {
                r[k].as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default()
            };
            (strings("resources"), strings("resourceNames"))
        })
        .collect();
    assert_eq!(
        impersonations,
        [(vec!["serviceaccounts"], vec![SYNC_ACCOUNT])],
        "the controller may impersonate the sync's ServiceAccount and no one else"
    );
    assert!(
        docs.iter().all(|d| d["subjects"]
            .as_array()
            .is_none_or(|s| s.iter().all(|s| s["name"] != SYNC_ACCOUNT))),
        "deploy/ grants the sync's account nothing by default"
    );

    // The metrics Service selects the pods and targets the named port.
    let service = get("Service", "gitops-seal-metrics");
    let service_selector = labels(service.pointer("/spec/selector"));
    assert!(
        selects(&service_selector, &pod_labels),
        "{service_selector:?}"
    );
    assert_eq!(str_of(service, "/spec/ports/0/targetPort"), port_name);
    assert_eq!(
        str_of(service, "/metadata/annotations/prometheus.io~1path"),
        METRICS
    );

    // RBAC: what the controller touches, and no more than that where names can say it.
    let controller = get("ClusterRole", "gitops-seal-controller");
    for verb in ["get", "list", "watch"] {
        assert!(!grants(controller, "gitops-seal.dev", "sealedsecrets", verb).is_empty());
    }
    assert!(
        grants(controller, "gitops-seal.dev", "sealedsecrets", "patch").is_empty(),
        "the spec is never written"
    );
    assert!(!grants(
        controller,
        "gitops-seal.dev",
        "sealedsecrets/status",
        "patch"
    )
    .is_empty());
    assert!(!grants(controller, "events.k8s.io", "events", "create").is_empty());
    assert!(
        grants(controller, "", "secrets", "get").is_empty(),
        "Secrets are in their own role"
    );
    let secrets = get("ClusterRole", "gitops-seal-secrets");
    for verb in ["get", "list", "watch", "create", "patch", "delete"] {
        assert!(
            !grants(secrets, "", "secrets", verb).is_empty(),
            "secrets {verb}"
        );
    }
    assert_eq!(
        secrets["rules"].as_array().unwrap().len(),
        1,
        "only Secrets"
    );
    let own = get("Role", "gitops-seal");
    assert!(
        !grants(own, "", "secrets", "create").is_empty(),
        "generating the identity"
    );
    assert_eq!(
        grants(own, "coordination.k8s.io", "leases", "patch"),
        [vec![LEASE_NAME]]
    );
    assert_eq!(
        grants(own, "coordination.k8s.io", "leases", "watch"),
        [vec![LEASE_NAME]]
    );
    assert_eq!(
        grants(own, "", "configmaps", "patch"),
        [
            vec![RECIPIENTS_CONFIGMAP],
            vec![gitops_seal::core::names::KEY_USAGE_CONFIGMAP]
        ]
    );
    // The key-in-use finalizer on identity Secrets, also when the ClusterRoles are bound in
    // watched namespaces only.
    assert!(
        !grants(own, "", "secrets", "patch").is_empty(),
        "the key-in-use finalizer"
    );
    assert!(!grants(own, "events.k8s.io", "events", "create").is_empty());
    // Rollouts are off by default: no right on workloads anywhere.
    for d in docs
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
    {
        for resource in ["deployments", "statefulsets", "daemonsets"] {
            assert!(
                grants(d, "apps", resource, "patch").is_empty(),
                "{:?} grants patch on {resource}",
                key(d)
            );
        }
    }
    // `recipient --fetch`: get on the one ConfigMap, and nothing else.
    let reader = get("Role", "gitops-seal-recipients-reader");
    let rules = reader["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["verbs"], serde_json::json!(["get"]));
    assert_eq!(
        grants(reader, "", "configmaps", "get"),
        [vec![RECIPIENTS_CONFIGMAP]]
    );
}

/// deploy/sync-rbac-example.yaml (not installed by the kustomization): Roles and RoleBindings
/// only, each binding the sync's ServiceAccount, the status ConfigMap's get/patch limited to its
/// name, and no impersonation or wildcard anywhere.
/// deploy/rollout-rbac.yaml, applied beside `--rollout`: patch on the three workload kinds,
/// nothing else, for the controller's account.
#[test]
fn the_rollout_rbac_grants_patch_on_workloads_only() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rollout-rbac.yaml"),
    )
    .unwrap();
    let docs: Vec<Value> = text
        .split("\n---\n")
        .map(|d| serde_saphyr::from_str(d).expect("a YAML document"))
        .collect();
    let role = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
    assert_eq!(
        role["rules"],
        serde_json::json!([{"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": ["patch"]}])
    );
    let binding = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRoleBinding")
        .unwrap();
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(binding["subjects"][0]["name"], "gitops-seal");
    assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
}

#[test]
fn the_sync_rbac_example_grants_one_namespace_to_the_sync_account() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/sync-rbac-example.yaml");
    let text = std::fs::read_to_string(path).expect("deploy/sync-rbac-example.yaml");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("it parses");
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    let mut namespaces = std::collections::BTreeSet::new();
    for d in &docs {
        let (kind, name) = key(d);
        assert!(
            ["Role", "RoleBinding"].contains(&kind.as_str()),
            "{kind} {name}"
        );
        namespaces.insert(str_of(d, "/metadata/namespace").to_owned());
        if kind == "RoleBinding" {
            assert_eq!(str_of(d, "/roleRef/kind"), "Role");
            let subjects = d["subjects"].as_array().expect("subjects");
            assert_eq!(subjects.len(), 1);
            assert_eq!(str_of(&subjects[0], "/name"), SYNC_ACCOUNT);
            assert_eq!(str_of(&subjects[0], "/namespace"), NAMESPACE);
        } else {
            for rule in d["rules"].as_array().expect("rules") {
                let text = rule.to_string();
                assert!(
                    !text.contains('*') && !text.contains("impersonate"),
                    "{text}"
                );
            }
        }
    }
    assert_eq!(
        namespaces.len(),
        2,
        "the controller's and one other: {namespaces:?}"
    );
    let status = docs
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["namespace"] == NAMESPACE)
        .expect("the status ConfigMap's Role");
    for verb in ["get", "patch"] {
        assert_eq!(
            grants(status, "", "configmaps", verb),
            [vec!["gitops-seal-sync-apps"]]
        );
    }
    assert!(
        text.contains("--sync-allowed-namespaces=apps") && text.contains("--sync-name=apps"),
        "the example's flags match its namespace and status ConfigMap"
    );
}

/// The Dockerfile builds the one binary for a non-root distroless image with CA certificates,
/// and says that it was not built here (tests/it/image.rs builds and runs deploy/Containerfile).
#[test]
fn dockerfile_is_multi_stage_non_root_distroless() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Dockerfile");
    let text = std::fs::read_to_string(path).expect("deploy/Dockerfile");
    let from: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(from.len(), 2, "{from:?}");
    assert!(
        from[1].contains("distroless") && from[1].contains("nonroot"),
        "{}",
        from[1]
    );
    assert!(text.contains("--bin gitops-seal"));
    assert!(text.lines().any(|l| l.starts_with("USER 65532")));
    assert!(text.contains("has not been built here") && text.contains("deploy/Containerfile"));
}
