//! The GitOps reconcile loop (`gitops-seal sync`): each pass fetches the repository, plans the
//! commit (parse everything, unseal every SealedSecret in memory — nothing is sent before the
//! whole commit is known good), then applies in stages with a server dry run before each
//! stage, prunes from the inventory of the last successful pass, and records its status in a
//! ConfigMap. Kubernetes is reached only through `kube`; Git through libgit2, off the executor.

mod hold;
mod ownership;
pub mod plan;
mod status;

pub use hold::{HoldFn, HoldGuard, HoldKeys};

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, Preconditions,
};
use kube::discovery::{ApiResource, Discovery, Scope};
use kube::{Api, Client};
use serde_json::json;
use zeroize::Zeroizing;

use crate::adapters::gitsource::Auth;
use crate::core::error::Error;
use crate::core::yaml;
use crate::core::Identity;
use plan::{LiveMeta, ObjectRef, Ownership, Plan, PlanOptions, Planned};
use status::{annotations, read_status, write_status, Status};

use crate::core::names::SYNC_STATUS_PREFIX;
pub use crate::core::names::{
    KEYS_STATUS_KEY, RECONCILE_AT_ANNOTATION, SUSPEND_ANNOTATION,
    SYNC_FIELD_MANAGER as FIELD_MANAGER,
};

/// What one sync is: where to read, what to allow, where to keep its status.
#[derive(Debug, Clone)]
pub struct Settings {
    pub name: String,
    /// A URL libgit2 fetches (`file://`, a local path, ...).
    pub repo: String,
    /// Branch, tag or commit.
    pub reference: String,
    /// Folder of the repository to sync (`""` for the root).
    pub path: String,
    pub interval: Duration,
    /// Namespace of the status ConfigMap `gitops-seal-sync-NAME`.
    pub namespace: String,
    pub cache_dir: PathBuf,
    /// Accept a commit with no manifests (which prunes everything the last pass applied).
    pub allow_empty: bool,
    pub prune: bool,
    pub prune_namespaces_and_crds: bool,
    /// Where the commit may write; `None` for anywhere.
    pub allowed_namespaces: Option<Vec<String>>,
    pub allow_cluster_scoped: bool,
    pub plan: PlanOptions,
    /// Time to wait for a CRD of the commit to become Established.
    pub crd_timeout: Duration,
    /// A file holding a token for https remotes (read at every pass, so it can be rotated).
    pub token_file: Option<PathBuf>,
    /// ssh remotes: a private key file, and the known_hosts file that must list the server
    /// (both read at every pass).
    pub ssh_key_file: Option<PathBuf>,
    pub known_hosts_file: Option<PathBuf>,
    /// Run inside the controller: holds the keys a pass opened with (their fingerprints)
    /// before the pass writes anything they opened, as the controller holds a SealedSecret's.
    pub hold_keys: Option<HoldKeys>,
}

impl Settings {
    pub fn new(
        name: impl Into<String>,
        repo: impl Into<String>,
        namespace: impl Into<String>,
    ) -> Self {
        Settings {
            name: name.into(),
            repo: repo.into(),
            reference: "main".into(),
            path: String::new(),
            interval: Duration::from_secs(60),
            namespace: namespace.into(),
            cache_dir: std::env::temp_dir().join("gitops-seal-sync"),
            allow_empty: false,
            prune: true,
            prune_namespaces_and_crds: false,
            allowed_namespaces: None,
            allow_cluster_scoped: true,
            plan: PlanOptions::default(),
            crd_timeout: Duration::from_secs(60),
            token_file: None,
            ssh_key_file: None,
            known_hosts_file: None,
            hold_keys: None,
        }
    }

    pub fn status_configmap(&self) -> String {
        format!("{SYNC_STATUS_PREFIX}{}", self.name)
    }
}

/// Why a pass failed. Every message names the object, and the file and document it came from;
/// none carries a value.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("fetching {repo}")]
    Fetch {
        repo: String,
        #[source]
        source: Box<Error>,
    },
    #[error("planning commit {commit}")]
    Plan {
        commit: String,
        #[source]
        source: Box<Error>,
    },
    #[error("{file} (document {document}): {object}: {message}")]
    Refused {
        file: String,
        document: usize,
        object: String,
        message: String,
    },
    #[error("{file} (document {document}): {object}: the API server refused the dry run")]
    DryRun {
        file: String,
        document: usize,
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("{file} (document {document}): {object}: apply failed")]
    Apply {
        file: String,
        document: usize,
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "the synced path holds no manifests: refusing to prune everything the last pass applied"
    )]
    Empty,
    #[error("the Kubernetes API")]
    Kube(#[from] kube::Error),
    #[error("a blocking task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl SyncError {
    /// A short label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            SyncError::Fetch { .. } => "fetch",
            SyncError::Plan { .. } => "plan",
            SyncError::Refused { .. } => "refused",
            SyncError::DryRun { .. } => "dry_run",
            SyncError::Apply { .. } => "apply",
            SyncError::Empty => "empty",
            SyncError::Kube(_) => "kube",
            SyncError::Join(_) => "internal",
        }
    }
}

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub commit: String,
    pub applied: usize,
    pub pruned: usize,
    /// Prunes that failed (retried next pass).
    pub failed: usize,
    /// Public fingerprints of the keys that opened this commit's values (set once the commit
    /// is planned).
    pub keys: Option<BTreeSet<String>>,
}

/// Fetches and plans the commit: everything before the first request to the cluster.
pub async fn fetch_and_plan<I>(
    settings: &Settings,
    identities: Arc<I>,
) -> Result<(String, Plan), SyncError>
where
    I: ?Sized + AsRef<[Identity]> + Send + Sync + 'static,
{
    let (repo, reference, path, cache) = (
        settings.repo.clone(),
        settings.reference.clone(),
        settings.path.clone(),
        settings.cache_dir.clone(),
    );
    let files = (
        settings.token_file.clone(),
        settings.ssh_key_file.clone(),
        settings.known_hosts_file.clone(),
    );
    let checkout = tokio::task::spawn_blocking(move || {
        let read = |f: &Option<PathBuf>| -> Result<Option<Zeroizing<String>>, Error> {
            f.as_ref()
                .map(|f| {
                    std::fs::read_to_string(f)
                        .map(Zeroizing::new)
                        .map_err(|e| Error::io(f, e))
                })
                .transpose()
        };
        let auth = Auth {
            token: read(&files.0)?.map(|t| Zeroizing::new(t.trim().to_string())),
            ssh_key: read(&files.1)?,
            known_hosts: read(&files.2)?.map(|k| k.to_string()),
        };
        let (r, oid) = crate::adapters::gitsource::fetch(&repo, &reference, &cache, &auth)?;
        crate::adapters::gitsource::read(&r, oid, &path)
    })
    .await?
    .map_err(|source| SyncError::Fetch {
        repo: settings.repo.clone(),
        source: Box::new(source),
    })?;
    let options = settings.plan.clone();
    let commit = checkout.commit.clone();
    let plan = tokio::task::spawn_blocking(move || {
        plan::plan(&checkout.files, (*identities).as_ref(), &options)
    })
    .await?
    .map_err(|source| SyncError::Plan {
        commit: commit.clone(),
        source: Box::new(source),
    })?;
    if plan.objects.is_empty() && !settings.allow_empty {
        return Err(SyncError::Empty);
    }
    Ok((commit, plan))
}

fn refused(o: &Planned, message: impl Into<String>) -> SyncError {
    SyncError::Refused {
        file: o.file.clone(),
        document: o.document,
        object: o.target.to_string(),
        message: message.into(),
    }
}

fn gvk(r: &ObjectRef) -> GroupVersionKind {
    let (group, version) = match r.api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), r.api_version.clone()),
    };
    GroupVersionKind {
        group,
        version,
        kind: r.kind.clone(),
    }
}

async fn discover(client: &Client) -> Result<Discovery, kube::Error> {
    match Discovery::new(client.clone()).run_aggregated().await {
        Ok(d) => Ok(d),
        Err(_) => Discovery::new(client.clone()).run().await,
    }
}

fn api_for(
    client: &Client,
    ar: &ApiResource,
    scope: &Scope,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    match (scope, ns) {
        (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, ar),
        _ => Api::all_with(client.clone(), ar),
    }
}

/// Resolves where each object of a stage goes and checks it may go there.
fn place(
    discovery: &Discovery,
    settings: &Settings,
    o: &Planned,
) -> Result<(ApiResource, Scope), SyncError> {
    let (ar, caps) = discovery.resolve_gvk(&gvk(&o.target)).ok_or_else(|| {
        refused(
            o,
            format!(
                "the API server does not serve {} {} (a CRD this commit does not define?)",
                o.target.api_version, o.target.kind
            ),
        )
    })?;
    match (&caps.scope, &o.target.namespace) {
        (Scope::Namespaced, None) => {
            return Err(refused(
                o,
                "metadata.namespace is missing (it is namespaced)",
            ))
        }
        (Scope::Cluster, Some(_)) => {
            return Err(refused(
                o,
                "metadata.namespace is set on a cluster-scoped kind",
            ))
        }
        _ => {}
    }
    if let Some(allowed) = &settings.allowed_namespaces {
        match &o.target.namespace {
            Some(ns) if !allowed.iter().any(|a| a == ns) => {
                return Err(refused(
                    o,
                    format!(
                        "namespace {ns} is not one this sync may write to ({})",
                        allowed.join(", ")
                    ),
                ))
            }
            None if !settings.allow_cluster_scoped => {
                return Err(refused(
                    o,
                    "cluster-scoped objects are not allowed for this sync",
                ))
            }
            _ => {}
        }
    }
    Ok((ar, caps.scope))
}

/// Requests of one kind (ownership reads, dry runs, applies) a stage has in flight at once:
/// sequential round trips to a real API server (1-5 ms each) would make a pass of 1,000
/// objects take seconds.
pub const STAGE_CONCURRENCY: usize = 16;

/// Runs `op` on every item with at most `limit` in flight. Once one fails, no new one starts,
/// but those in flight are awaited, so what they did is known. The results of those that ran,
/// in item order.
async fn bounded<'a, T, R, E, Fut>(
    items: &'a [T],
    limit: usize,
    op: impl Fn(&'a T) -> Fut,
) -> Vec<(usize, Result<R, E>)>
where
    Fut: std::future::Future<Output = Result<R, E>> + 'a,
{
    use futures::stream::{FuturesUnordered, StreamExt};
    let mut running = FuturesUnordered::new();
    let mut next = 0;
    let mut failed = false;
    let mut done = Vec::with_capacity(items.len());
    loop {
        while !failed && next < items.len() && running.len() < limit.max(1) {
            let i = next;
            let fut = op(&items[i]);
            running.push(async move { (i, fut.await) });
            next += 1;
        }
        match running.next().await {
            Some((i, result)) => {
                failed |= result.is_err();
                done.push((i, result));
            }
            None => break,
        }
    }
    done.sort_by_key(|(i, _)| *i);
    done
}

/// One object of the plan, placed: the API it goes to, and who owns it.
struct Placed<'a> {
    o: &'a Planned,
    api: Api<DynamicObject>,
    ownership: Ownership,
}

/// What the cluster holds under one name, from a metadata list (see [`LiveMeta`]).
fn live_meta(m: &ObjectMeta) -> LiveMeta {
    LiveMeta {
        uid: m.uid.clone(),
        labels: m.labels.clone().unwrap_or_default(),
        annotations: m.annotations.clone().unwrap_or_default(),
        applied_by_sync: m.managed_fields.iter().flatten().any(|f| {
            f.manager.as_deref() == Some(FIELD_MANAGER)
                && f.operation.as_deref() == Some("Apply")
                && f.subresource.as_deref().unwrap_or_default().is_empty()
        }),
    }
}

/// Everything of one kind in one namespace (or cluster-wide), metadata only, by name.
async fn list_live(api: &Api<DynamicObject>) -> Result<BTreeMap<String, LiveMeta>, kube::Error> {
    let mut out = BTreeMap::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list_metadata(&params).await?;
        for item in &page.items {
            if let Some(name) = &item.metadata.name {
                out.insert(name.clone(), live_meta(&item.metadata));
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

/// Places every object and decides who owns it, with one metadata-only list per kind and
/// namespace (not a request per object). Refuses the first object that is not this sync's to
/// write (see [`plan::ownership`]).
async fn check<'a>(
    client: &Client,
    discovery: &Discovery,
    settings: &Settings,
    status: &Status,
    objects: &[&'a Planned],
) -> Result<Vec<Placed<'a>>, SyncError> {
    let mut groups: BTreeMap<(String, String, Option<String>), Api<DynamicObject>> =
        BTreeMap::new();
    let mut keyed = Vec::with_capacity(objects.len());
    for o in objects {
        let (ar, scope) = place(discovery, settings, o)?;
        let ns = match scope {
            Scope::Namespaced => o.target.namespace.clone(),
            Scope::Cluster => None,
        };
        let key = (ar.api_version.clone(), ar.plural.clone(), ns.clone());
        groups
            .entry(key.clone())
            .or_insert_with(|| api_for(client, &ar, &scope, ns.as_deref()));
        keyed.push((*o, key, api_for(client, &ar, &scope, ns.as_deref())));
    }
    let groups: Vec<_> = groups.into_iter().collect();
    let lists = bounded(&groups, STAGE_CONCURRENCY, |(_, api)| list_live(api)).await;
    let mut live = BTreeMap::new();
    for (i, result) in lists {
        live.insert(groups[i].0.clone(), result?);
    }
    let mut placed = Vec::with_capacity(keyed.len());
    let mut recovered = 0usize;
    for (o, key, api) in keyed {
        let found = live.get(&key).and_then(|l| l.get(&o.target.name));
        let ownership = plan::ownership(
            &o.target,
            found,
            &settings.name,
            &status.inventory,
            status.lost,
        );
        if let Ownership::Foreign(why) = ownership {
            return Err(refused(o, why));
        }
        if matches!(ownership, Ownership::Ours { .. }) && !status.inventory.contains(&o.target) {
            recovered += 1;
        }
        placed.push(Placed { o, api, ownership });
    }
    if recovered > 0 {
        tracing::warn!(
            sync = %settings.name, objects = recovered,
            "the status ConfigMap {} is gone: objects carrying this sync's label and applied by \
             its field manager are taken as its own again",
            settings.status_configmap()
        );
    }
    Ok(placed)
}

/// The apply body: the object with the sync label, and the uid checked, so that an object
/// deleted and made again by someone else in between is refused rather than taken over.
fn body(p: &Placed<'_>, sync: &str) -> serde_json::Value {
    let mut body = p.o.to_apply(sync);
    if let Some(uid) = p.ownership.uid() {
        body["metadata"]["uid"] = json!(uid);
    }
    body
}

/// A Secret's refusal is reported by field and reason only (see
/// [`redact_api_error`](crate::adapters::kube::redact_api_error)).
fn reported(o: &Planned, e: kube::Error) -> kube::Error {
    if o.target.group().is_empty() && o.target.kind == "Secret" {
        crate::adapters::kube::redact_api_error(e)
    } else {
        e
    }
}

/// Server dry runs (`dry_run`) or applies of `placed`, [`STAGE_CONCURRENCY`] in flight;
/// `applied` collects what was applied, including what was in flight when another apply
/// failed. The failure reported is the first in the plan's order.
async fn send(
    settings: &Settings,
    placed: &[Placed<'_>],
    dry_run: bool,
    applied: &mut BTreeSet<ObjectRef>,
) -> Result<(), SyncError> {
    let results = bounded(placed, STAGE_CONCURRENCY, |p| async move {
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = dry_run;
        let mut body = body(p, &settings.name);
        let result = p
            .api
            .patch(&p.o.target.name, &params, &Patch::Apply(&body))
            .await;
        yaml::wipe(&mut body);
        result.map(|mut obj| {
            if let Some(d) = obj.data.as_object_mut() {
                d.values_mut().for_each(yaml::wipe);
            }
        })
    })
    .await;
    let mut first_failure = None;
    for (i, result) in results {
        let o = placed[i].o;
        match result {
            Ok(()) if !dry_run => {
                applied.insert(o.target.clone());
            }
            Ok(()) => {}
            Err(source) if first_failure.is_none() => {
                let (file, document, object) = (o.file.clone(), o.document, o.target.to_string());
                let source = reported(o, source);
                first_failure = Some(if dry_run {
                    SyncError::DryRun {
                        file,
                        document,
                        object,
                        source,
                    }
                } else {
                    SyncError::Apply {
                        file,
                        document,
                        object,
                        source,
                    }
                });
            }
            Err(_) => {}
        }
    }
    first_failure.map_or(Ok(()), Err)
}

/// One pass: fetch, plan, apply in stages, prune, record. On failure the status records the
/// error; objects applied before it still join the inventory (they can be pruned later).
pub async fn pass<I>(
    client: &Client,
    settings: &Settings,
    identities: Arc<I>,
) -> Result<PassReport, SyncError>
where
    I: ?Sized + AsRef<[Identity]> + Send + Sync + 'static,
{
    let status = read_status(client, settings).await?;
    let mut report = PassReport::default();
    let mut applied = BTreeSet::new();
    // Kept until the record naming the keys is written.
    let mut held: Option<HoldGuard> = None;
    let result = run_pass(
        client,
        settings,
        identities,
        &status,
        &mut report,
        &mut applied,
        &mut held,
    )
    .await;
    let (inventory, error) = match &result {
        Ok(kept) => (kept.clone(), None),
        Err(e) => {
            let mut inv = status.inventory.clone();
            inv.extend(applied.iter().cloned());
            (inv, Some(error_chain(e)))
        }
    };
    write_status(client, settings, &report, &inventory, error, &status).await?;
    drop(held);
    result.map(|_| report)
}

/// An error and its causes on one line, for the status ConfigMap and logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

async fn run_pass<I>(
    client: &Client,
    settings: &Settings,
    identities: Arc<I>,
    status: &Status,
    report: &mut PassReport,
    applied: &mut BTreeSet<ObjectRef>,
    hold_guard: &mut Option<HoldGuard>,
) -> Result<BTreeSet<ObjectRef>, SyncError>
where
    I: ?Sized + AsRef<[Identity]> + Send + Sync + 'static,
{
    let (commit, plan) = fetch_and_plan(settings, identities.clone()).await?;
    report.commit = commit;
    let held = (*identities).as_ref();
    report.keys = Some(
        plan.opened_by
            .iter()
            .filter_map(|&i| held.get(i).and_then(Identity::fingerprint))
            .collect(),
    );
    let mut discovery = discover(client).await?;

    // Everything that can be checked and dry-run before the first write is: all but the objects
    // of a kind this commit's CRDs bring and those in a Namespace this commit creates (neither
    // exists yet, so the API server cannot judge them). A commit refused there applies nothing.
    let first: Vec<&Planned> = plan.stage(0).collect();
    let first = check(client, &discovery, settings, status, &first).await?;
    let new_namespaces: BTreeSet<&str> = first
        .iter()
        .filter(|p| p.ownership == Ownership::Create && p.o.target.kind == "Namespace")
        .map(|p| p.o.target.name.as_str())
        .collect();
    let brings_crds = first
        .iter()
        .any(|p| p.o.target.kind == "CustomResourceDefinition");
    let (now, later): (Vec<&Planned>, Vec<&Planned>) = plan.stage(1).partition(|o| {
        let known = discovery.resolve_gvk(&gvk(&o.target)).is_some();
        let in_new_namespace = o
            .target
            .namespace
            .as_deref()
            .is_some_and(|ns| new_namespaces.contains(ns));
        (known || !brings_crds) && !in_new_namespace
    });
    let now = check(client, &discovery, settings, status, &now).await?;
    send(settings, &first, true, applied).await?;
    send(settings, &now, true, applied).await?;

    // The keys are held before anything they opened is written.
    if let (Some(hold), Some(keys)) = (&settings.hold_keys, &report.keys) {
        *hold_guard = Some((hold.0)(keys.iter().cloned().collect()).await?);
    }

    // Stage 1: Namespaces and CRDs; wait until the CRDs are Established.
    send(settings, &first, false, applied).await?;
    let crds: Vec<&Planned> = first
        .iter()
        .map(|p| p.o)
        .filter(|o| o.target.kind == "CustomResourceDefinition")
        .collect();
    if !crds.is_empty() {
        let api: Api<CustomResourceDefinition> = Api::all(client.clone());
        for o in &crds {
            let established = kube::runtime::wait::await_condition(
                api.clone(),
                &o.target.name,
                kube::runtime::conditions::is_crd_established(),
            );
            if tokio::time::timeout(settings.crd_timeout, established)
                .await
                .is_err()
            {
                return Err(refused(o, "the CRD did not become Established in time"));
            }
        }
        discovery = discover(client).await?;
    }

    // Stage 2: everything else; what could not be judged before stage 1 is checked and
    // dry-run now, before any of stage 2 is written.
    let later = check(client, &discovery, settings, status, &later).await?;
    send(settings, &later, true, applied).await?;
    let mut second = now;
    second.extend(later);
    send(settings, &second, false, applied).await?;
    report.applied = applied.len();

    // Prune what the last successful pass applied and this commit no longer declares.
    let mut kept: BTreeSet<ObjectRef> = plan.refs();
    if settings.prune {
        for r in plan::to_prune(&status.inventory, &plan, settings.prune_namespaces_and_crds) {
            match prune_one(client, &discovery, settings, &r).await {
                Ok(true) => report.pruned += 1,
                Ok(false) => {}
                Err(_) => {
                    report.failed += 1;
                    kept.insert(r);
                }
            }
        }
    } else {
        kept.extend(status.inventory.iter().cloned());
    }
    if !settings.prune_namespaces_and_crds {
        // Namespaces and CRDs no longer declared stay on record until pruned on request.
        kept.extend(
            status
                .inventory
                .iter()
                .filter(|r| r.is_namespace_or_crd() && settings.prune)
                .cloned(),
        );
    }
    Ok(kept)
}

/// Deletes one object of the old inventory if this sync created it and it does not opt out
/// ([`plan::may_prune`]), with its uid as a precondition (an object made again by someone else
/// under the same name in between is left alone); `Ok(false)` when nothing was deleted.
async fn prune_one(
    client: &Client,
    discovery: &Discovery,
    settings: &Settings,
    r: &ObjectRef,
) -> Result<bool, kube::Error> {
    if settings.plan.protected_namespace.is_some()
        && r.namespace == settings.plan.protected_namespace
    {
        return Ok(false);
    }
    let Some((ar, caps)) = discovery.resolve_gvk(&gvk(r)) else {
        return Ok(false);
    };
    let api = api_for(client, &ar, &caps.scope, r.namespace.as_deref());
    let Some(live) = api.get_metadata_opt(&r.name).await? else {
        return Ok(false);
    };
    let live = live_meta(&live.metadata);
    if let Err(why) = plan::may_prune(r, &live, &settings.name) {
        tracing::info!(sync = %settings.name, object = %r, why, "not pruned");
        return Ok(false);
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: live.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&r.name, &params).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            tracing::info!(sync = %settings.name, object = %r, "not pruned: replaced by another object of the same name");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The loop: a pass at once, then every `interval`; a failed pass backs off (5 s doubling, up
/// to the interval) and keeps the last good state. With `leader`, only while it says this
/// replica leads. The status ConfigMap's annotations suspend the loop
/// ([`SUSPEND_ANNOTATION`]) or ask for a pass now ([`RECONCILE_AT_ANNOTATION`]), as Flux
/// users expect. Ends when `shutdown` does.
pub async fn run<I, F>(
    client: Client,
    settings: Settings,
    identities: F,
    mut leader: Option<tokio::sync::watch::Receiver<bool>>,
    metrics: Option<crate::adapters::http::Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) where
    I: ?Sized + AsRef<[Identity]> + Send + Sync + 'static,
    F: Fn() -> Arc<I> + Send + Sync,
{
    tokio::pin!(shutdown);
    let tick = settings.interval.min(Duration::from_secs(5));
    let mut due = tokio::time::Instant::now();
    let mut backoff = Duration::from_secs(5);
    let mut handled_request: Option<String> = None;
    loop {
        if let Some(rx) = leader.as_mut() {
            while !*rx.borrow_and_update() {
                tokio::select! {
                    changed = rx.changed() => if changed.is_err() { return },
                    _ = &mut shutdown => return,
                }
                due = tokio::time::Instant::now();
            }
        }
        let (suspended, requested) = annotations(&client, &settings).await;
        let asked = requested.is_some() && requested != handled_request;
        if !suspended && (asked || tokio::time::Instant::now() >= due) {
            handled_request = requested;
            let started = std::time::Instant::now();
            let result = pass(&client, &settings, identities()).await;
            if let Some(m) = &metrics {
                let done = result
                    .as_ref()
                    .ok()
                    .map(|r| (r.applied, r.pruned, r.failed));
                m.sync_pass(started.elapsed(), done);
            }
            match result {
                Ok(r) => {
                    tracing::info!(
                        sync = %settings.name, commit = %r.commit, applied = r.applied,
                        pruned = r.pruned, failed_prunes = r.failed,
                        seconds = started.elapsed().as_secs_f64(), "sync pass"
                    );
                    backoff = Duration::from_secs(5);
                    due = tokio::time::Instant::now() + settings.interval;
                }
                Err(e) => {
                    tracing::warn!(
                        sync = %settings.name, reason = e.metric_label(),
                        error = %error_chain(&e), "sync pass failed"
                    );
                    due = tokio::time::Instant::now() + backoff.min(settings.interval);
                    backoff = (backoff * 2).min(settings.interval);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = &mut shutdown => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bounded;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// At most `limit` in flight; results in item order; after a failure nothing new starts,
    /// and what was in flight finishes.
    #[tokio::test]
    async fn bounded_keeps_its_limit_and_stops_starting_after_a_failure() {
        let items: Vec<usize> = (0..40).collect();
        let (in_flight, most, started) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        let run = |fail_at: Option<usize>| {
            let (in_flight, most, started) = (&in_flight, &most, &started);
            bounded(&items, 4, move |&i| async move {
                started.fetch_add(1, Ordering::SeqCst);
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                // Later items finish first, so completion order differs from item order.
                for _ in 0..(40 - i) % 5 {
                    tokio::task::yield_now().await;
                }
                in_flight.fetch_sub(1, Ordering::SeqCst);
                if Some(i) == fail_at {
                    Err(i)
                } else {
                    Ok(i)
                }
            })
        };
        let all = run(None).await;
        assert_eq!(
            all.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            items,
            "every item, in order"
        );
        assert!(all.iter().all(|(i, r)| r == &Ok(*i)));
        assert_eq!(most.load(Ordering::SeqCst), 4);

        started.store(0, Ordering::SeqCst);
        let some = run(Some(10)).await;
        let ran = started.load(Ordering::SeqCst);
        assert_eq!(some.len(), ran, "everything started was awaited");
        assert!(
            ran < items.len() && ran <= 10 + 4,
            "nothing new after the failure: {ran}"
        );
        assert!(some.iter().any(|(i, r)| *i == 10 && r.is_err()));
        assert!(some.windows(2).all(|w| w[0].0 < w[1].0), "in item order");
        assert_eq!(in_flight.load(Ordering::SeqCst), 0);
    }
}
