//! Planning a sync from a commit: pure, no I/O. Every file under the synced path is parsed,
//! every object checked (kind, name, the sync label), every SealedSecret unsealed in memory,
//! before anything is sent; the plan says what to apply in which stage and what to prune.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{json, Value};

use crate::core::deny::DenyList;
use crate::core::error::{Error, ErrorKind};
use crate::core::manifest::{self, DocKind};
use crate::core::names::IDENTITY_LABEL;
use crate::core::secret::{self, PlainSecret};
use crate::core::yaml;
use crate::core::{Identity, SealedSecret};

pub use crate::core::names::{PRUNE_ANNOTATION, SYNC_LABEL};

pub use super::ownership::{may_prune, ownership, to_prune, LiveMeta, Ownership};
pub use crate::core::manifest::SourceFile;

/// Which object: what the inventory keeps and pruning deletes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// The API group (empty for the core group).
    pub fn group(&self) -> &str {
        match self.api_version.split_once('/') {
            Some((g, _)) => g,
            None => "",
        }
    }

    /// Namespaces and CRDs are applied first and pruned only on request.
    pub fn is_namespace_or_crd(&self) -> bool {
        (self.group().is_empty() && self.kind == "Namespace")
            || (self.group() == "apiextensions.k8s.io" && self.kind == "CustomResourceDefinition")
    }

    /// One inventory line: `apiVersion kind namespace name` (`-` for no namespace).
    pub fn to_line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.api_version,
            self.kind,
            self.namespace.as_deref().unwrap_or("-"),
            self.name
        )
    }

    pub fn from_line(line: &str) -> Option<Self> {
        let mut parts = line.split_whitespace();
        let (a, k, n, name) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Some(ObjectRef {
            api_version: a.into(),
            kind: k.into(),
            namespace: (n != "-").then(|| n.to_string()),
            name: name.into(),
        })
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// What one planned object is: a manifest applied as written (plus the sync label), or a
/// Secret unsealed from a SealedSecret, whose values stay in zeroizing buffers until the
/// request is serialised.
pub enum Desired {
    Manifest(Value),
    Secret(PlainSecret),
}

impl fmt::Debug for Desired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Desired::Manifest(_) => f.write_str("Manifest"),
            Desired::Secret(s) => write!(f, "Secret({s:?})"),
        }
    }
}

/// One object of the plan and where it came from.
#[derive(Debug)]
pub struct Planned {
    pub target: ObjectRef,
    pub desired: Desired,
    pub file: String,
    pub document: usize,
    /// Set when it came from a SealedSecret: how many values were unsealed.
    pub unsealed_values: Option<usize>,
}

impl Planned {
    /// Stage 0: Namespaces and CRDs; stage 1: everything else.
    pub fn stage(&self) -> usize {
        usize::from(!self.target.is_namespace_or_crd())
    }

    /// The object to apply, with the sync label. For a Secret this holds the values (base64):
    /// build it just before sending and drop it right after (see [`wipe`](yaml::wipe)).
    pub fn to_apply(&self, sync_name: &str) -> Value {
        match &self.desired {
            Desired::Manifest(v) => {
                let mut v = v.clone();
                v["metadata"]["labels"][SYNC_LABEL] = json!(sync_name);
                v
            }
            Desired::Secret(s) => {
                let mut labels = secret::string_map(&s.labels);
                labels[SYNC_LABEL] = json!(sync_name);
                let mut meta = json!({"name": s.name, "namespace": s.namespace, "labels": labels});
                if !s.annotations.is_empty() {
                    meta["annotations"] = secret::string_map(&s.annotations);
                }
                let mut data = serde_json::Map::new();
                for (k, v) in &s.data {
                    use base64::Engine;
                    data.insert(
                        k.clone(),
                        json!(base64::engine::general_purpose::STANDARD.encode(&v[..])),
                    );
                }
                let mut out = json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta,
                    "type": s.secret_type, "data": data});
                if let Some(i) = s.immutable {
                    out["immutable"] = json!(i);
                }
                out
            }
        }
    }
}

/// What a pass would do, computed from the commit alone.
#[derive(Debug, Default)]
pub struct Plan {
    pub objects: Vec<Planned>,
    /// Positions, in the identities given to [`plan`], of the keys that opened the values
    /// (for each value, the first that opens it).
    pub opened_by: BTreeSet<usize>,
}

impl Plan {
    pub fn refs(&self) -> BTreeSet<ObjectRef> {
        self.objects.iter().map(|o| o.target.clone()).collect()
    }

    pub fn stage(&self, n: usize) -> impl Iterator<Item = &Planned> {
        self.objects.iter().filter(move |o| o.stage() == n)
    }
}

/// How a plan treats what it finds.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Accept plaintext Secrets with values in the tree (the repository already leaks them).
    pub allow_plaintext_secrets: bool,
    /// The template deny list every SealedSecret is checked against, as the controller checks
    /// it (the default list, plus the controller's `--template-deny` inside the controller).
    pub deny: DenyList,
    /// A namespace the commit may not write to at all (inside the controller: its own, which
    /// holds its identities and its recipients ConfigMap).
    pub protected_namespace: Option<String>,
}

/// Refuses what no commit may declare, whatever the sync's other settings: an object in the
/// protected namespace (or that Namespace itself), and a Secret carrying the identity label.
fn check_target(
    planned: &Planned,
    labels: Option<&Value>,
    options: &PlanOptions,
) -> Result<(), Error> {
    let t = &planned.target;
    if let Some(protected) = &options.protected_namespace {
        let inside = t.namespace.as_deref() == Some(protected.as_str())
            || (t.group().is_empty() && t.kind == "Namespace" && t.name == *protected);
        if inside {
            return Err(located(
                Error::from(ErrorKind::Invalid(format!(
                    "namespace {protected} is the controller's own (its keys live there): a sync never writes to it"
                )))
                .in_object(t.to_string()),
                &planned.file,
                planned.document,
            ));
        }
    }
    let is_secret = t.group().is_empty() && t.kind == "Secret";
    if is_secret && labels.is_some_and(|l| l.get(IDENTITY_LABEL).is_some()) {
        return Err(located(
            Error::from(ErrorKind::Invalid(format!(
                "a Secret labelled {IDENTITY_LABEL} would be loaded as a controller key: a sync never writes one"
            )))
            .in_object(t.to_string()),
            &planned.file,
            planned.document,
        ));
    }
    Ok(())
}

fn located(e: impl Into<Error>, file: &str, document: usize) -> Error {
    let mut e: Error = e.into();
    if e.location.file.is_none() {
        e.location.file = Some(file.into());
    }
    if e.location.document.is_none() {
        e.location.document = Some(document);
    }
    e
}

/// Plans a pass: parse every file, check every object, unseal every SealedSecret with
/// `identities`. Any failure fails the whole plan (nothing of the commit is applied), and the
/// error names the file, document, object and key.
pub fn plan(
    files: &[SourceFile],
    identities: &[Identity],
    options: &PlanOptions,
) -> Result<Plan, Error> {
    let mut plan = Plan::default();
    let mut seen: BTreeMap<ObjectRef, (String, usize)> = BTreeMap::new();
    for file in files {
        check_file(file, options)?;
        let text = std::str::from_utf8(&file.bytes)
            .map_err(|_| located(ErrorKind::NotUtf8 { offset: 0 }, &file.path, 1))?;
        let docs = yaml::split_documents(text);
        for (n, doc) in docs.iter().filter(|d| !d.is_empty).enumerate() {
            let document = n + 1;
            let Some(planned) = plan_document(doc, file, document, identities, options, &mut plan)?
            else {
                continue;
            };
            let labels = match &planned.desired {
                Desired::Manifest(v) => v["metadata"].get("labels").cloned(),
                Desired::Secret(s) => Some(secret::string_map(&s.labels)),
            };
            check_target(&planned, labels.as_ref(), options)?;
            if let Some((f, d)) = seen.insert(
                planned.target.clone(),
                (planned.file.clone(), planned.document),
            ) {
                return Err(located(
                    ErrorKind::Invalid(format!(
                        "{} is also declared in {f} (document {d})",
                        planned.target
                    )),
                    &file.path,
                    document,
                ));
            }
            plan.objects.push(planned);
        }
    }
    Ok(plan)
}

/// What refuses a whole file: a kustomization (kustomize is not run), and (unless allowed) a
/// plaintext Secret with values, or a document the hook's judge cannot decide about, read as
/// kubectl reads (YAML 1.1 line breaks, escaped keys, JSON streams).
fn check_file(file: &SourceFile, options: &PlanOptions) -> Result<(), Error> {
    let base = file.path.rsplit('/').next().unwrap_or(&file.path);
    if matches!(
        base,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    ) {
        return Err(located(
            ErrorKind::Invalid(
                "a folder with a kustomization.yaml is not synced as plain manifests (kustomize is not run): render it, or exclude it with ignore:"
                    .into(),
            ),
            &file.path,
            1,
        ));
    }
    if options.allow_plaintext_secrets {
        return Ok(());
    }
    let report = crate::core::judge::judge(&file.bytes, &crate::core::kubeyaml::Limits::default());
    match report.findings.first() {
        None => Ok(()),
        Some(f) => {
            let message = if f.unparsable {
                format!("cannot be read as kubectl reads it: {f}")
            } else {
                "a plaintext Secret with values in the synced tree (the repository already leaks it): seal it".to_string()
            };
            Err(located(
                Error::from(ErrorKind::Invalid(message)).in_object(f.object.clone()),
                &file.path,
                f.document.max(1),
            ))
        }
    }
}

/// One document as an object to apply (`None`: an empty one); a SealedSecret is checked
/// against the deny list and unsealed, and the keys that opened it join the plan's.
fn plan_document(
    doc: &yaml::RawDocument<'_>,
    file: &SourceFile,
    document: usize,
    identities: &[Identity],
    options: &PlanOptions,
    plan: &mut Plan,
) -> Result<Option<Planned>, Error> {
    let at = |e: Error| located(e, &file.path, document);
    let kind = manifest::classify(doc).map_err(|e| at(e.into()))?;
    let planned = match kind {
        DocKind::Empty => return Ok(None),
        DocKind::SealedSecret => {
            let sealed = SealedSecret::parse(doc).map_err(at)?;
            // What the controller refuses (its own labels, replication annotations), a sync
            // refuses too, before anything is unsealed.
            options.deny.refuse(&sealed).map_err(at)?;
            let (plain, used) = sealed.unseal_attributed(identities, None).map_err(at)?;
            plan.opened_by.extend(used);
            let Some(namespace) = plain.namespace.clone() else {
                return Err(at(Error::from(ErrorKind::MissingField(
                    "metadata.namespace",
                ))
                .in_object(sealed.object_ref())));
            };
            let values = plain.data.len();
            Planned {
                target: ObjectRef {
                    api_version: "v1".into(),
                    kind: "Secret".into(),
                    namespace: Some(namespace),
                    name: plain.name.clone(),
                },
                desired: Desired::Secret(plain),
                file: file.path.clone(),
                document,
                unsealed_values: Some(values),
            }
        }
        DocKind::Secret => {
            let mut raw = yaml::parse_as_kubernetes(doc).map_err(|e| at(e.into()))?;
            if secret::has_values(&raw) && !options.allow_plaintext_secrets {
                let name = raw["metadata"]["name"].as_str().unwrap_or("?").to_string();
                yaml::wipe(&mut raw);
                return Err(at(Error::from(ErrorKind::Invalid(
                    "a plaintext Secret with values in the synced tree (the repository already leaks it): seal it".into(),
                ))
                .in_object(format!("Secret {name}"))));
            }
            manifest_object(raw, &file.path, document)?
        }
        DocKind::List => {
            return Err(at(ErrorKind::Invalid(
                "kind: List is not synced: write its items as documents".into(),
            )
            .into()))
        }
        DocKind::Other => {
            let raw = yaml::parse_as_kubernetes(doc).map_err(|e| at(e.into()))?;
            manifest_object(raw, &file.path, document)?
        }
    };
    Ok(Some(planned))
}

fn manifest_object(raw: Value, file: &str, document: usize) -> Result<Planned, Error> {
    let field = |v: &Value, f: &'static str| -> Result<String, Error> {
        v.as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| located(ErrorKind::MissingField(f), file, document))
    };
    let api_version = field(&raw["apiVersion"], "apiVersion")?;
    let kind = field(&raw["kind"], "kind")?;
    let name = field(&raw["metadata"]["name"], "metadata.name")?;
    let namespace = raw["metadata"]["namespace"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if raw["metadata"].get("generateName").is_some() {
        return Err(located(
            ErrorKind::Invalid(
                "metadata.generateName cannot be synced (each pass would create another object)"
                    .into(),
            ),
            file,
            document,
        ));
    }
    Ok(Planned {
        target: ObjectRef {
            api_version,
            kind,
            namespace,
            name,
        },
        desired: Desired::Manifest(raw),
        file: file.into(),
        document,
        unsealed_values: None,
    })
}

/// Where a well-known built-in kind lives (`Some(true)`: namespaced), for a plan printed with
/// no cluster to ask; `None` for anything else (custom resources above all).
pub fn builtin_scope(api_version: &str, kind: &str) -> Option<bool> {
    const CLUSTER: &[(&str, &str)] = &[
        ("v1", "Namespace"),
        ("v1", "Node"),
        ("v1", "PersistentVolume"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("storage.k8s.io/v1", "StorageClass"),
        ("scheduling.k8s.io/v1", "PriorityClass"),
        ("networking.k8s.io/v1", "IngressClass"),
        (
            "admissionregistration.k8s.io/v1",
            "ValidatingWebhookConfiguration",
        ),
        (
            "admissionregistration.k8s.io/v1",
            "MutatingWebhookConfiguration",
        ),
    ];
    const NAMESPACED: &[(&str, &str)] = &[
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("v1", "Pod"),
        ("v1", "PersistentVolumeClaim"),
        ("v1", "LimitRange"),
        ("v1", "ResourceQuota"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("apps/v1", "ReplicaSet"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("networking.k8s.io/v1", "Ingress"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("policy/v1", "PodDisruptionBudget"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("coordination.k8s.io/v1", "Lease"),
    ];
    let key = (api_version, kind);
    if CLUSTER.contains(&key) {
        Some(false)
    } else if NAMESPACED.contains(&key) {
        Some(true)
    } else {
        None
    }
}

/// The plan printed for `--dry-run`: one line per object, values never shown.
pub fn describe(plan: &Plan, placed: &dyn Fn(&ObjectRef) -> Option<bool>) -> String {
    let mut out = String::new();
    for o in &plan.objects {
        let scope = match placed(&o.target) {
            Some(true) => "namespaced",
            Some(false) => "cluster",
            None => "kind unknown here",
        };
        let values = match o.unsealed_values {
            Some(n) => format!(", {n} value(s) unsealed (redacted)"),
            None => String::new(),
        };
        out.push_str(&format!(
            "stage {} apply {} ({}, {scope}){values}  [{}#{}]\n",
            o.stage() + 1,
            o.target,
            o.target.api_version,
            o.file,
            o.document
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::names::ADOPT_ANNOTATION;

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    fn sealed_for(id: &Identity, ns: &str, name: &str) -> String {
        let settings = crate::ops::SealSettings {
            recipients: vec![id.to_recipient().unwrap()],
            ..Default::default()
        };
        let m = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {ns}}}\nstringData: {{k: hunter2}}\n"
        );
        crate::ops::encrypt(m.as_bytes(), &settings, None)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn a_commit_plans_in_stages_with_unsealed_secrets_and_labels() {
        let id = Identity::generate();
        let files = vec![
            file("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\ndata: {mode: '0640'}\n"),
            file("db.yaml", &sealed_for(&id, "shop", "db")),
        ];
        let plan = plan(&files, std::slice::from_ref(&id), &PlanOptions::default()).unwrap();
        let stages: Vec<(usize, String)> = plan
            .objects
            .iter()
            .map(|o| (o.stage(), o.target.to_string()))
            .collect();
        assert_eq!(
            stages,
            [
                (0, "Namespace shop".to_string()),
                (1, "ConfigMap shop/c".to_string()),
                (1, "Secret shop/db".to_string())
            ]
        );
        // The comment-only document is not counted: the ConfigMap is document 2.
        assert_eq!(plan.objects[1].document, 2);
        let secret = plan.objects[2].to_apply("apps");
        assert_eq!(secret["metadata"]["labels"][SYNC_LABEL], "apps");
        assert_eq!(secret["data"]["k"], "aHVudGVyMg==");
        assert!(secret.get("stringData").is_none());
        assert!(!format!("{:?}", plan.objects[2]).contains("hunter2"));
    }

    #[test]
    fn what_a_commit_cannot_hold() {
        let id = Identity::generate();
        let cases = [
            ("k/kustomization.yaml", "resources: [a.yaml]\n", "kustomization.yaml"),
            ("p.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: p, namespace: x}\nstringData: {a: b}\n", "plaintext Secret"),
            ("n.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: x}\n", "metadata.name"),
            ("g.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-, name: a}\n", "generateName"),
            ("l.yaml", "apiVersion: v1\nkind: List\nitems: []\n", "kind: List"),
        ];
        for (path, text, needle) in cases {
            let err = plan(
                &[file(path, text)],
                std::slice::from_ref(&id),
                &PlanOptions::default(),
            )
            .unwrap_err();
            let msg = format!("{err} {:?}", err.location);
            assert!(msg.contains(needle), "{path}: {msg}");
            assert_eq!(err.location.file.as_deref(), Some(path));
        }
        // The same object twice.
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n";
        let err = plan(
            &[file("a.yaml", cm), file("b.yaml", cm)],
            &[],
            &PlanOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("also declared in a.yaml"), "{err}");
        // A plaintext Secret is accepted only on request.
        let options = PlanOptions {
            allow_plaintext_secrets: true,
            ..PlanOptions::default()
        };
        let p =
            "apiVersion: v1\nkind: Secret\nmetadata: {name: p, namespace: x}\nstringData: {a: b}\n";
        assert!(plan(&[file("p.yaml", p)], &[], &options).is_ok());
        // A sealed value nobody here can open.
        let stranger = Identity::generate();
        let err = plan(
            &[file("s.yaml", &sealed_for(&stranger, "x", "s"))],
            std::slice::from_ref(&id),
            &PlanOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "KeyMissing");
        assert_eq!(err.location.document, Some(1));
    }

    #[test]
    fn a_plaintext_secret_only_kubectl_sees_fails_the_plan() {
        // A U+2028 in a comment is a line break to kubectl: this declares a Secret.
        let hostile = "apiVersion: v1\n# note\u{2028}kind: Secret\nmetadata: {name: s, namespace: x}\nstringData: {a: b}\n";
        let err = plan(&[file("h.yaml", hostile)], &[], &PlanOptions::default()).unwrap_err();
        assert!(err.to_string().contains("plaintext Secret"), "{err}");
        assert_eq!(err.location.file.as_deref(), Some("h.yaml"));
    }

    #[test]
    fn pruning_takes_what_the_commit_dropped_but_namespaces_and_crds_only_on_request() {
        let r = |line: &str| ObjectRef::from_line(line).unwrap();
        let previous: BTreeSet<ObjectRef> = [
            r("v1 ConfigMap x kept"),
            r("v1 ConfigMap x dropped"),
            r("v1 Namespace - old"),
            r("apiextensions.k8s.io/v1 CustomResourceDefinition - a.b.c"),
        ]
        .into_iter()
        .collect();
        let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept, namespace: x}\n";
        let plan = plan(&[file("a.yaml", cm)], &[], &PlanOptions::default()).unwrap();
        let names = |v: Vec<ObjectRef>| v.into_iter().map(|r| r.to_line()).collect::<Vec<_>>();
        assert_eq!(
            names(to_prune(&previous, &plan, false)),
            ["v1 ConfigMap x dropped"]
        );
        assert_eq!(to_prune(&previous, &plan, true).len(), 3);
        assert_eq!(r("v1 Namespace - old").to_line(), "v1 Namespace - old");
        assert!(ObjectRef::from_line("too few").is_none());
    }

    #[test]
    fn well_known_kinds_are_placed_without_a_cluster() {
        assert_eq!(builtin_scope("v1", "Secret"), Some(true));
        assert_eq!(builtin_scope("v1", "Namespace"), Some(false));
        assert_eq!(builtin_scope("example.dev/v1", "Widget"), None);
    }

    fn live(labels: &[(&str, &str)], annotations: &[(&str, &str)], applied: bool) -> LiveMeta {
        let map = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        LiveMeta {
            uid: Some("u1".into()),
            labels: map(labels),
            annotations: map(annotations),
            applied_by_sync: applied,
        }
    }

    #[test]
    fn ownership_takes_label_apply_and_inventory_or_the_adopt_annotation() {
        let cm = ObjectRef::from_line("v1 ConfigMap x c").unwrap();
        let secret = ObjectRef::from_line("v1 Secret x s").unwrap();
        let inv: BTreeSet<ObjectRef> = [cm.clone(), secret.clone()].into_iter().collect();
        let none = BTreeSet::new();
        let ours = live(&[(SYNC_LABEL, "apps")], &[], true);
        let own = |t: &ObjectRef, l: Option<&LiveMeta>, inv: &BTreeSet<ObjectRef>, lost: bool| {
            ownership(t, l, "apps", inv, lost)
        };
        assert_eq!(own(&cm, None, &none, false), Ownership::Create);
        assert_eq!(
            own(&cm, Some(&ours), &inv, false),
            Ownership::Ours {
                uid: Some("u1".into())
            }
        );
        assert_eq!(own(&cm, Some(&ours), &inv, false).uid(), Some("u1"));
        // Each of the three missing: not ours.
        assert!(matches!(
            own(&cm, Some(&ours), &none, false),
            Ownership::Foreign(_)
        ));
        let label_only = live(&[(SYNC_LABEL, "apps")], &[], false);
        assert!(matches!(
            own(&cm, Some(&label_only), &inv, false),
            Ownership::Foreign(_)
        ));
        assert!(matches!(
            own(&cm, Some(&label_only), &inv, true),
            Ownership::Foreign(_)
        ));
        let unlabelled = live(&[], &[], true);
        assert!(matches!(
            own(&cm, Some(&unlabelled), &inv, false),
            Ownership::Foreign(_)
        ));
        // A lost inventory: label and apply suffice.
        assert!(matches!(
            own(&cm, Some(&ours), &none, true),
            Ownership::Ours { .. }
        ));
        // Another sync's: never, adopt or not.
        let other = live(
            &[(SYNC_LABEL, "other")],
            &[(ADOPT_ANNOTATION, "true")],
            true,
        );
        let Ownership::Foreign(why) = own(&cm, Some(&other), &inv, false) else {
            panic!("another sync's object");
        };
        assert!(why.contains("\"other\""), "{why}");
        // Consent.
        let adopt = live(&[], &[(ADOPT_ANNOTATION, "true")], false);
        assert_eq!(
            own(&cm, Some(&adopt), &none, false),
            Ownership::Adopt {
                uid: Some("u1".into())
            }
        );
        // A controller identity: never, whatever it carries.
        let identity = live(
            &[(IDENTITY_LABEL, "true"), (SYNC_LABEL, "apps")],
            &[(ADOPT_ANNOTATION, "true")],
            true,
        );
        assert!(matches!(
            own(&secret, Some(&identity), &inv, true),
            Ownership::Foreign(_)
        ));
    }

    #[test]
    fn a_prune_takes_only_what_the_sync_applied() {
        let cm = ObjectRef::from_line("v1 ConfigMap x c").unwrap();
        let secret = ObjectRef::from_line("v1 Secret x s").unwrap();
        assert!(may_prune(&cm, &live(&[(SYNC_LABEL, "apps")], &[], true), "apps").is_ok());
        assert!(may_prune(&cm, &live(&[(SYNC_LABEL, "apps")], &[], false), "apps").is_err());
        assert!(may_prune(&cm, &live(&[(SYNC_LABEL, "b")], &[], true), "apps").is_err());
        assert!(may_prune(
            &cm,
            &live(
                &[(SYNC_LABEL, "apps")],
                &[(PRUNE_ANNOTATION, "false")],
                true
            ),
            "apps"
        )
        .is_err());
        assert!(may_prune(
            &secret,
            &live(&[(SYNC_LABEL, "apps"), (IDENTITY_LABEL, "true")], &[], true),
            "apps"
        )
        .is_err());
    }

    #[test]
    fn the_deny_list_and_the_protected_namespace_refuse_the_commit() {
        let id = Identity::generate();
        let plain = PlainSecret {
            name: "s".into(),
            namespace: Some("x".into()),
            secret_type: "Opaque".into(),
            labels: [(IDENTITY_LABEL.to_string(), "true".to_string())].into(),
            data: [("k".to_string(), zeroize::Zeroizing::new(b"v".to_vec()))].into(),
            ..PlainSecret::default()
        };
        let sealed = SealedSecret::seal(
            &plain,
            &[id.to_recipient().unwrap()],
            crate::core::Scope::Strict,
            None,
            None,
        )
        .unwrap();
        let text = serde_json::to_string(&sealed.to_value()).unwrap();
        let err = plan(
            &[file("s.yaml", &text)],
            std::slice::from_ref(&id),
            &PlanOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.reason(), "InvalidSpec", "{err}");
        assert_eq!(err.location.file.as_deref(), Some("s.yaml"));

        let options = PlanOptions {
            protected_namespace: Some("keys".into()),
            ..PlanOptions::default()
        };
        for text in [
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: keys}\n",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: keys}\n",
        ] {
            let err = plan(&[file("p.yaml", text)], &[], &options).unwrap_err();
            assert!(err.to_string().contains("controller's own"), "{err}");
        }
        let elsewhere = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: apps}\n";
        assert!(plan(&[file("p.yaml", elsewhere)], &[], &options).is_ok());
    }
}
