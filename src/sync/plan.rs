//! Planning a sync from a commit: pure, no I/O. Every file under the synced path is parsed,
//! every object checked (kind, name, the sync label), every SealedSecret unsealed in memory,
//! before anything is sent; the plan says what to apply in which stage and what to prune.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{json, Value};

use crate::core::error::{Error, ErrorKind};
use crate::core::manifest::{self, DocKind};
use crate::core::secret::{self, PlainSecret};
use crate::core::yaml;
use crate::core::{Identity, SealedSecret};

/// The label every object a sync applies carries: its value is the sync's name.
pub const SYNC_LABEL: &str = "gitops-seal.dev/sync";
/// An annotation that keeps a live object from being pruned.
pub const PRUNE_ANNOTATION: &str = "gitops-seal.dev/prune";

/// One manifest file of the commit: its path under the repository root, and its bytes.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

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
        let text = std::str::from_utf8(&file.bytes)
            .map_err(|_| located(ErrorKind::NotUtf8 { offset: 0 }, &file.path, 1))?;
        let docs = yaml::split_documents(text);
        for (n, doc) in docs.iter().filter(|d| !d.is_empty).enumerate() {
            let document = n + 1;
            let kind = manifest::classify(doc).map_err(|e| located(e, &file.path, document))?;
            let planned = match kind {
                DocKind::Empty => continue,
                DocKind::SealedSecret => {
                    let sealed =
                        SealedSecret::parse(doc).map_err(|e| located(e, &file.path, document))?;
                    let plain = sealed
                        .unseal(identities, None)
                        .map_err(|e| located(e, &file.path, document))?;
                    let Some(namespace) = plain.namespace.clone() else {
                        return Err(located(
                            Error::from(ErrorKind::MissingField("metadata.namespace"))
                                .in_object(sealed.object_ref()),
                            &file.path,
                            document,
                        ));
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
                    let mut raw = yaml::parse_as_kubernetes(doc)
                        .map_err(|e| located(e, &file.path, document))?;
                    if secret::has_values(&raw) && !options.allow_plaintext_secrets {
                        let name = raw["metadata"]["name"].as_str().unwrap_or("?").to_string();
                        yaml::wipe(&mut raw);
                        return Err(located(
                            Error::from(ErrorKind::Invalid(
                                "a plaintext Secret with values in the synced tree (the repository already leaks it): seal it".into(),
                            ))
                            .in_object(format!("Secret {name}")),
                            &file.path,
                            document,
                        ));
                    }
                    manifest_object(raw, &file.path, document)?
                }
                DocKind::List => {
                    return Err(located(
                        ErrorKind::Invalid(
                            "kind: List is not synced: write its items as documents".into(),
                        ),
                        &file.path,
                        document,
                    ))
                }
                DocKind::Other => {
                    let raw = yaml::parse_as_kubernetes(doc)
                        .map_err(|e| located(e, &file.path, document))?;
                    manifest_object(raw, &file.path, document)?
                }
            };
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

/// What to prune: objects the last fully successful pass applied (`previous`) that this plan no
/// longer declares. Namespaces and CRDs only with `namespaces_and_crds` (deleting them deletes
/// what they hold).
pub fn to_prune(
    previous: &BTreeSet<ObjectRef>,
    plan: &Plan,
    namespaces_and_crds: bool,
) -> Vec<ObjectRef> {
    let now = plan.refs();
    previous
        .iter()
        .filter(|r| !now.contains(r))
        .filter(|r| namespaces_and_crds || !r.is_namespace_or_crd())
        .cloned()
        .collect()
}

/// The plan printed for `--dry-run`: one line per object, values never shown.
pub fn describe(plan: &Plan, placed: &dyn Fn(&ObjectRef) -> Option<bool>) -> String {
    let mut out = String::new();
    for o in &plan.objects {
        let scope = match placed(&o.target) {
            Some(true) => "namespaced",
            Some(false) => "cluster",
            None => "unknown kind",
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
