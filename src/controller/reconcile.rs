//! The reconcile: a plain async function over a [`Context`], as kube-rs's controller-rs does.
//! One SealedSecret in, its Secret applied (or left exactly as it was) and its status written.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use zeroize::Zeroize;

use super::decide;
use super::keys::Keys;
use super::render::{
    self, condition_reason, reason, DenyList, DesiredSecret, Outcome, ADOPT_ANNOTATION,
    DATA_HASH_ANNOTATION, OWNER_REFERENCE_ANNOTATION, RECREATE_ANNOTATION, ROLLOUT_ANNOTATION,
};
use super::{ReconcileError, Settings, FIELD_MANAGER};
use crate::adapters::kube::SealedSecret as SealedSecretResource;
use crate::adapters::kube::{describe_refusal, redact_api_error};
use crate::core::SealedSecret;

/// What every reconcile shares.
pub struct Context {
    pub client: kube::Client,
    pub keys: Arc<Keys>,
    pub deny: DenyList,
    pub recorder: Recorder,
    pub settings: Settings,
    /// Consecutive failures per object, for the backoff.
    pub failures: Mutex<HashMap<ObjectRef<SealedSecretResource>, u32>>,
    /// SealedSecrets that failed with KeyMissing: retried as soon as the keyring changes.
    pub waiting_for_key: Mutex<HashSet<ObjectRef<SealedSecretResource>>>,
    /// What `/metrics` reports.
    pub metrics: crate::adapters::http::Metrics,
    /// With leader election: whether this replica leads (only the leader writes).
    pub leader: Option<tokio::sync::watch::Receiver<bool>>,
    /// The keys being written with, shared with the key lifecycle.
    pub holds: Arc<super::lifecycle::Holds>,
}

/// Why one step stopped: a condition to report, or an API error to retry.
enum Stop {
    Failed(&'static str, String),
    Kube(kube::Error),
}

impl From<kube::Error> for Stop {
    fn from(e: kube::Error) -> Self {
        Stop::Kube(e)
    }
}

fn failed(reason: &'static str, message: impl Into<String>) -> Stop {
    Stop::Failed(reason, message.into())
}

fn annotation_is(obj: &impl Resource, key: &str, value: &str) -> bool {
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .is_some_and(|v| v == value)
}

/// Reconciles one SealedSecret.
pub async fn reconcile(
    obj: Arc<SealedSecretResource>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    if obj.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    if ctx.leader.as_ref().is_some_and(|l| !*l.borrow()) {
        // Not the leader: write nothing. Becoming leader reconciles everything again.
        return Ok(Action::await_change());
    }
    let started = std::time::Instant::now();
    let result = reconcile_inner(obj, &ctx).await;
    ctx.metrics.observe_reconcile(started.elapsed());
    match &result {
        Ok(_) => {}
        Err(ReconcileError::Failed { reason, .. }) => ctx.metrics.unseal_failed(reason),
        Err(e) => ctx.metrics.unseal_failed(e.metric_label()),
    }
    result
}

async fn reconcile_inner(
    obj: Arc<SealedSecretResource>,
    ctx: &Arc<Context>,
) -> Result<Action, ReconcileError> {
    let ctx = ctx.clone();
    let oref = ObjectRef::from_obj(&*obj);
    let keys_version = ctx.keys.version();
    let mut claim = None;
    let outcome = match apply_secret(&obj, &ctx).await {
        Ok(applied) => {
            claim = Some(applied.claim);
            if !applied.skipped.is_empty() {
                let event = Event {
                    type_: EventType::Warning,
                    reason: "RolloutSkipped".into(),
                    note: Some(render::truncate(&applied.skipped.join("; "), 1024).to_owned()),
                    action: "Rollout".into(),
                    secondary: None,
                };
                if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
                    tracing::warn!(sealedsecret = %oref, error = %e, "publishing an event failed");
                }
            }
            Outcome::Unsealed {
                keys: applied.keys,
                opened_with: applied.opened_with,
                notes: applied.notes,
            }
        }
        Err(Stop::Kube(e)) => return Err(ReconcileError::Kube(e)),
        Err(Stop::Failed(reason, message)) => Outcome::Failed { reason, message },
    };
    write_status(&obj, &ctx, &outcome).await?;
    drop(claim);
    match outcome {
        Outcome::Unsealed {
            keys, opened_with, ..
        } => {
            tracing::info!(sealedsecret = %oref, keys, opened_with = ?opened_with, "unsealed");
            ctx.metrics.unsealed();
            ctx.failures.lock().expect("failures").remove(&oref);
            ctx.waiting_for_key.lock().expect("waiting").remove(&oref);
            Ok(Action::await_change())
        }
        Outcome::Failed { reason, message } => {
            tracing::warn!(sealedsecret = %oref, reason, message = %message, "not unsealed");
            let keys_changed_meanwhile = {
                let mut waiting = ctx.waiting_for_key.lock().expect("waiting");
                if reason == render::reason::KEY_MISSING {
                    waiting.insert(oref.clone());
                } else {
                    waiting.remove(&oref);
                }
                reason == render::reason::KEY_MISSING && ctx.keys.version() != keys_version
            };
            let event = Event {
                type_: EventType::Warning,
                reason: reason.into(),
                note: Some(render::truncate(&message, 1024).to_owned()),
                action: "Unseal".into(),
                secondary: None,
            };
            if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
                tracing::warn!(sealedsecret = %oref, error = %e, "publishing an event failed");
            }
            if keys_changed_meanwhile {
                // A key arrived while this reconcile used the old keyring: the retry for
                // waiting objects may have run before this one was waiting.
                return Ok(Action::requeue(std::time::Duration::from_millis(1)));
            }
            Err(ReconcileError::Failed { reason, message })
        }
    }
}

/// The backoff: `retry_base` doubled per consecutive failure up to `retry_max`; a conflict
/// (waiting for an adopt annotation, which no watch of ours sees) at most `conflict_retry`.
pub fn error_policy(
    obj: Arc<SealedSecretResource>,
    err: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    let oref = ObjectRef::from_obj(&*obj);
    let n = {
        let mut failures = ctx.failures.lock().expect("failures");
        let n = failures.entry(oref.clone()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    };
    let s = &ctx.settings;
    let mut delay = s
        .retry_base
        .saturating_mul(1u32 << (n - 1).min(16))
        .min(s.retry_max);
    if err.metric_label() == reason::SECRET_CONFLICT {
        delay = delay.min(s.conflict_retry);
    }
    if let ReconcileError::Kube(e) = err {
        tracing::warn!(sealedsecret = %oref, error = %e, retry_in = ?delay, "reconcile failed");
    }
    Action::requeue(delay)
}

/// What one apply did.
struct Applied {
    /// Data keys written.
    keys: usize,
    /// Fingerprints of the controller keys that opened the values.
    opened_with: Vec<String>,
    /// For the Ready condition: what is wrong with the rollout annotation (every reconcile),
    /// or, when this reconcile rolled, everything the rollout could not do.
    notes: Vec<String>,
    /// What this reconcile's rollout could not do (an event).
    skipped: Vec<String>,
    /// The keys stay claimed until the status naming them is written.
    claim: super::lifecycle::Claim,
}

/// Everything up to and including the apply (and the rollout it calls for): read, ask
/// [`decide`], send.
async fn apply_secret(obj: &SealedSecretResource, ctx: &Context) -> Result<Applied, Stop> {
    let name = obj.name_any();
    let namespace = obj
        .namespace()
        .ok_or_else(|| failed(reason::INVALID_SPEC, "a SealedSecret must be namespaced"))?;
    let sealed = SealedSecret::from_spec(
        name.clone(),
        Some(namespace.clone()),
        obj.labels().clone(),
        obj.annotations().clone(),
        obj.spec.sealed.clone(),
    )
    .map_err(|e| failed(condition_reason(&e), e.to_string()))?;
    ctx.deny
        .refuse(&sealed)
        .map_err(|e| failed(condition_reason(&e), e.to_string()))?;

    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let existing = secrets.get_metadata_opt(&name).await?;
    let target = decide::target(
        existing
            .as_ref()
            .map(|e| decide::ExistingSecret {
                labels: e.metadata.labels.as_ref(),
                annotations: e.metadata.annotations.as_ref(),
            })
            .as_ref(),
        &namespace,
        &name,
    )
    .map_err(|(reason, message)| failed(reason, message))?;
    let (plain, opened_with) = unseal(sealed, ctx, &namespace).await?;
    let claim = hold(ctx, &opened_with).await?;

    let owner = if annotation_is(obj, OWNER_REFERENCE_ANNOTATION, "false") {
        None
    } else {
        obj.controller_owner_ref(&())
    };
    // What was read before unsealing, carried into every write: a Secret changed, deleted or
    // made in between is never overwritten.
    let mut seen: Option<(String, String)> = existing.as_ref().map(|e| {
        (
            e.metadata.uid.clone().unwrap_or_default(),
            e.metadata.resource_version.clone().unwrap_or_default(),
        )
    });
    if let (Some(existing), Some(owner)) = (&existing, &owner) {
        let refs = existing
            .metadata
            .owner_references
            .as_deref()
            .unwrap_or_default();
        if let Some(kept) = decide::owner_references_to_keep(refs, owner) {
            seen = Some(drop_owner_references(&secrets, existing, kept).await?);
        }
    }
    if target == decide::Target::Adopt {
        tracing::info!(secret = %format!("{namespace}/{name}"), "adopting the Secret");
    }

    let keys: Vec<String> = plain.data.keys().cloned().collect();
    let current_hash = render::data_hash(&plain);
    let rollout_value = obj
        .annotations()
        .get(ROLLOUT_ANNOTATION)
        .map(String::as_str);
    let plan = decide::rollout_plan(
        rollout_value,
        ctx.settings.rollout,
        existing
            .as_ref()
            .and_then(|e| e.annotations().get(DATA_HASH_ANNOTATION))
            .map(String::as_str),
        &current_hash,
    );
    let mut skipped: Vec<String> = plan.note.into_iter().collect();
    let mut desired = DesiredSecret::new(&name, &namespace, &plain, owner);
    desired.data_hash = Some(plan.decision.write.clone());
    let recreate = annotation_is(obj, RECREATE_ANNOTATION, "true");
    let applied = apply(&secrets, &mut desired, seen, recreate).await;
    drop(desired);
    drop(plain);
    remove_hand_added_keys(&secrets, &name, applied?, &keys).await?;

    let rollout_value = rollout_value.filter(|v| !v.trim().is_empty());
    if plan.decision.roll {
        let value = rollout_value.unwrap_or_default();
        skipped.extend(roll_workloads(ctx, &namespace, &name, value, false).await?);
        // Rolled: the hash becomes the data's, so the next reconcile (or a restart) does not
        // roll again.
        let patch = json!({"metadata": {"annotations": {DATA_HASH_ANNOTATION: current_hash}}});
        secrets
            .patch_metadata(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(redact_api_error)?;
    }
    // The condition says what is wrong with the rollout every time, not only when data changes:
    // the annotation's own mistakes, and (with --rollout) workloads that are not there, found
    // by a dry-run patch (the one verb the controller holds on workloads).
    let notes = match (rollout_value, plan.decision.roll) {
        (_, true) => skipped.clone(),
        (Some(v), false) if ctx.settings.rollout => {
            roll_workloads(ctx, &namespace, &name, v, true).await?
        }
        (Some(v), false) => render::parse_rollout(v).1,
        (None, false) => Vec::new(),
    };
    Ok(Applied {
        keys: keys.len(),
        opened_with,
        notes,
        skipped,
        claim,
    })
}

/// Holds the keys that opened the values before anything they opened is written, and claims
/// them until the status is (docs/OPERATIONS.md, rotation).
async fn hold(ctx: &Context, opened_with: &[String]) -> Result<super::lifecycle::Claim, Stop> {
    let keyring = ctx.keys.current();
    let claim = super::lifecycle::hold(
        &ctx.client,
        &ctx.settings.namespace,
        &ctx.holds,
        &keyring.keys,
        opened_with,
    )
    .await?;
    Ok(claim)
}

/// Unseals with the keyring, off the async executor (CPU work); the values and the
/// fingerprints of the keys that opened them.
async fn unseal(
    sealed: SealedSecret,
    ctx: &Context,
    namespace: &str,
) -> Result<(crate::core::PlainSecret, Vec<String>), Stop> {
    let keyring = ctx.keys.current();
    if keyring.identities.is_empty() {
        return Err(failed(
            reason::KEY_MISSING,
            format!("{}: the controller holds no identity", sealed.object_ref()),
        ));
    }
    let ns = namespace.to_owned();
    tokio::task::spawn_blocking(move || {
        sealed
            .unseal_attributed(&keyring.identities, Some(&ns))
            .map(|(plain, used)| (plain, keyring.fingerprints(&used)))
    })
    .await
    .map_err(|_| failed(reason::DECRYPT_FAILED, "the unsealing task failed"))?
    .map_err(|e| failed(condition_reason(&e), e.to_string()))
}

/// Removes another controller's ownerReference (with the uid and resourceVersion read); the
/// uid and resourceVersion after.
async fn drop_owner_references(
    secrets: &Api<Secret>,
    existing: &kube::core::PartialObjectMeta<Secret>,
    kept: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
) -> Result<(String, String), Stop> {
    let patch = json!({"metadata": {
        "uid": existing.metadata.uid,
        "resourceVersion": existing.metadata.resource_version,
        "ownerReferences": kept,
    }});
    let patched = secrets
        .patch_metadata(
            &existing.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(redact_api_error)?;
    Ok((
        patched.metadata.uid.unwrap_or_default(),
        patched.metadata.resource_version.unwrap_or_default(),
    ))
}

/// Creates (when nothing was there) and applies the Secret, carrying what was read; on an
/// immutable refusal with a recreate asked for, deletes the Secret read and does it again. At
/// most: create, apply, delete, create, apply.
async fn apply(
    secrets: &Api<Secret>,
    desired: &mut DesiredSecret<'_>,
    mut seen: Option<(String, String)>,
    recreate: bool,
) -> Result<Secret, Stop> {
    let (name, namespace) = (desired.name.to_owned(), desired.namespace.to_owned());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut recreated = false;
    loop {
        let Some(precondition) = seen.take() else {
            seen = Some(create(secrets, desired, &namespace).await?);
            continue;
        };
        desired.precondition = Some(precondition.clone());
        let s = match secrets
            .patch(&name, &params, &Patch::Apply(&*desired))
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 422 => s,
            other => return other.map_err(|e| redact_api_error(e).into()),
        };
        let describe = describe_refusal(&s);
        match decide::apply_refusal(&s, recreate, recreated, &namespace, &name, &describe) {
            // Deleted and made again by someone else since it was read: not ours to write.
            decide::ApplyRefusal::ReplacedMeanwhile => {
                return Err(Stop::Kube(redact_api_error(kube::Error::Api(s))))
            }
            decide::ApplyRefusal::Report(reason, message) => return Err(failed(reason, message)),
            decide::ApplyRefusal::Recreate => {
                let dp = DeleteParams {
                    preconditions: Some(Preconditions {
                        uid: Some(precondition.0.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match secrets.delete(&name, &dp).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => return Err(redact_api_error(e).into()),
                }
                tracing::info!(secret = %format!("{namespace}/{name}"), "deleted to recreate");
                recreated = true;
            }
        }
    }
}

/// Removes keys another field manager added (a hand edit), with the resourceVersion applied.
async fn remove_hand_added_keys(
    secrets: &Api<Secret>,
    name: &str,
    mut applied: Secret,
    ours: &[String],
) -> Result<(), Stop> {
    let extra = decide::hand_added_keys(applied.data.iter().flat_map(|d| d.keys()), ours);
    let rv = applied.metadata.resource_version.clone();
    let namespace = applied.metadata.namespace.clone().unwrap_or_default();
    wipe(&mut applied);
    drop(applied);
    if extra.is_empty() {
        return Ok(());
    }
    let data: serde_json::Map<String, serde_json::Value> = extra
        .iter()
        .map(|k| (k.clone(), serde_json::Value::Null))
        .collect();
    let patch = json!({"metadata": {"resourceVersion": rv}, "data": data});
    let mut patched = secrets
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(redact_api_error)?;
    wipe(&mut patched);
    tracing::info!(secret = %format!("{namespace}/{name}"), removed = ?extra, "removed keys added by hand");
    Ok(())
}

/// Sets the restart annotation on each workload the rollout annotation names (with `dry_run`,
/// only asks the API server whether it could); what cannot be rolled (missing, refused by RBAC,
/// another namespace, malformed) comes back as notes.
async fn roll_workloads(
    ctx: &Context,
    namespace: &str,
    secret: &str,
    value: &str,
    dry_run: bool,
) -> Result<Vec<String>, Stop> {
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
    use render::WorkloadKind;
    let (workloads, mut notes) = render::parse_rollout(value);
    let now = Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let patch = render::rollout_patch(&now);
    let params = PatchParams {
        dry_run,
        ..PatchParams::default()
    };
    for (kind, workload) in workloads {
        let c = ctx.client.clone();
        let result = match kind {
            WorkloadKind::Deployment => Api::<Deployment>::namespaced(c, namespace)
                .patch_metadata(&workload, &params, &Patch::Merge(&patch))
                .await
                .map(drop),
            WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(c, namespace)
                .patch_metadata(&workload, &params, &Patch::Merge(&patch))
                .await
                .map(drop),
            WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(c, namespace)
                .patch_metadata(&workload, &params, &Patch::Merge(&patch))
                .await
                .map(drop),
        };
        let what = format!("{}/{workload}", kind.as_str());
        match result {
            Ok(()) if dry_run => {}
            Ok(()) => {
                tracing::info!(secret = %format!("{namespace}/{secret}"), workload = %what, "rolled for a Secret change");
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                notes.push(format!("{what} not found in namespace {namespace}"));
            }
            Err(kube::Error::Api(s)) if s.code == 403 => notes.push(format!(
                "{what}: not allowed to patch it (the controller's RBAC grants patch on workloads only with --rollout)"
            )),
            Err(e) => return Err(redact_api_error(e).into()),
        }
    }
    Ok(notes)
}

fn wipe(secret: &mut Secret) {
    if let Some(data) = secret.data.as_mut() {
        for v in data.values_mut() {
            v.0.zeroize();
        }
    }
}

/// Creates the Secret when nothing existed at the read (a POST: a Secret someone else made in
/// the meantime is a 409, reported as SecretConflict, never overwritten). Its uid and
/// resourceVersion, for the apply that follows.
async fn create(
    secrets: &Api<Secret>,
    desired: &DesiredSecret<'_>,
    namespace: &str,
) -> Result<(String, String), Stop> {
    let params = PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_owned()),
    };
    let mut body = desired.create_body();
    let result = secrets.create(&params, &body).await;
    wipe(&mut body);
    let name = desired.name;
    match result {
        Ok(mut created) => {
            wipe(&mut created);
            Ok((
                created.metadata.uid.clone().unwrap_or_default(),
                created
                    .metadata
                    .resource_version
                    .clone()
                    .unwrap_or_default(),
            ))
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Err(failed(
            reason::SECRET_CONFLICT,
            format!(
                "Secret {namespace}/{name} was created by someone else while this SealedSecret \
                 was unsealed; it is not managed by gitops-seal: annotate it {ADOPT_ANNOTATION}: \
                 \"true\" to have it taken over"
            ),
        )),
        Err(kube::Error::Api(s)) if s.code == 422 => Err(failed(
            reason::INVALID_SPEC,
            format!("Secret {namespace}/{name}: {}", describe_refusal(&s)),
        )),
        Err(e) => Err(redact_api_error(e).into()),
    }
}

/// Writes `status` with server-side apply on the status subresource.
async fn write_status(
    obj: &SealedSecretResource,
    ctx: &Context,
    outcome: &Outcome,
) -> Result<(), ReconcileError> {
    let generation = obj.meta().generation;
    let previous = obj
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == render::READY));
    let condition =
        render::ready_condition(outcome, generation, previous, &Timestamp::now().to_string());
    let previous_keys = obj
        .status
        .as_ref()
        .map(|s| s.opened_with.clone())
        .unwrap_or_default();
    let opened_with = render::opened_with(outcome, &previous_keys);
    let unchanged = obj.status.as_ref().is_some_and(|s| {
        s.observed_generation == generation
            && s.conditions.len() == 1
            && previous == Some(&condition)
            && s.opened_with == opened_with
    });
    if unchanged {
        return Ok(());
    }
    let api: Api<SealedSecretResource> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "gitops-seal.dev/v1",
        "kind": "SealedSecret",
        "status": {
            "observedGeneration": generation,
            "conditions": [condition],
            "openedWith": opened_with,
        },
    });
    api.patch_status(
        &obj.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}
