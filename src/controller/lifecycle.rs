//! The keys' life after their birth: which live values need each key ([`super::usage`]), the
//! per-key metrics, the key-in-use finalizer on identity Secrets, the usage report (ConfigMap
//! `gitops-seal-key-usage`) and events naming what still holds a retiring key.
//!
//! Runs on every replica (the metrics); only the leader writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::keys::{KeyState, Keys};
use super::usage::{self, FinalizerAction, ObjectKeys, SyncKeys, Usage};
use super::FIELD_MANAGER;
use crate::adapters::http::{Health, KeyUse, Metrics};
use crate::adapters::kube::SealedSecret as SealedSecretResource;
use crate::core::names::{
    APP_MANAGED_BY_LABEL, APP_MANAGED_BY_VALUE, IDENTITY_LABEL, KEYS_STATUS_KEY,
    KEY_IN_USE_FINALIZER, KEY_USAGE_CONFIGMAP, KEY_USAGE_KEY,
};

/// What the lifecycle loop reads and writes.
pub struct Lifecycle {
    pub client: kube::Client,
    /// The controller's namespace (identity Secrets, the usage ConfigMap).
    pub namespace: String,
    pub keys: Arc<Keys>,
    /// The SealedSecrets the controller's watches hold (one store per watched scope).
    pub stores: Vec<Store<SealedSecretResource>>,
    /// Ticked by the watches on every change.
    pub changed: Arc<tokio::sync::Notify>,
    pub health: Health,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub leader: Option<tokio::sync::watch::Receiver<bool>>,
    /// The in-controller sync loop's status ConfigMap (namespace, name), if one runs.
    pub sync_status: Option<(String, String)>,
    pub holds: Arc<Holds>,
}

/// What `hold` and the loop in [`run`] share so that neither undoes the other: the keys a
/// write is about to use (claims), and the identity Secrets this process has released.
///
/// A claim lives while its [`Claim`] guard does (until the write's result, a status or the
/// sync's record, is written) and [`CLAIM_TAIL`] after, the time for the loop to see that
/// result. A claimed key's finalizer is never removed. The gate orders a claim and a removal:
/// either the claim comes first and the removal is skipped, or the removal comes first and
/// the claim sees the Secret released (the keyring may not show it yet) and holds it again.
#[derive(Default)]
pub struct Holds {
    gate: tokio::sync::Mutex<()>,
    state: std::sync::Mutex<HoldState>,
    /// Ticked when a claim ends: its result is written, the loop can look again.
    ended: tokio::sync::Notify,
}

#[derive(Default)]
struct HoldState {
    /// Fingerprint → live guards, and when its last guard's tail runs out.
    claims: BTreeMap<String, (usize, Option<Instant>)>,
    released: BTreeSet<String>,
}

/// How long a claim outlives its guard: the loop's watch and one computation.
pub const CLAIM_TAIL: Duration = Duration::from_secs(10);

impl Holds {
    fn claim(self: &Arc<Self>, fingerprints: &[String]) -> Claim {
        let mut state = self.state.lock().expect("holds");
        for f in fingerprints {
            state.claims.entry(f.clone()).or_insert((0, None)).0 += 1;
        }
        Claim {
            holds: self.clone(),
            fingerprints: fingerprints.to_vec(),
        }
    }

    /// Whether any of `fingerprints` is claimed at `now` (expired claims are forgotten).
    fn claimed(&self, fingerprints: &[Option<String>], now: Instant) -> bool {
        let mut state = self.state.lock().expect("holds");
        state
            .claims
            .retain(|_, (live, until)| *live > 0 || until.is_some_and(|u| u > now));
        fingerprints
            .iter()
            .flatten()
            .any(|f| state.claims.contains_key(f))
    }

    /// When the next claim's tail runs out, if any is running.
    fn next_expiry(&self) -> Option<Instant> {
        let state = self.state.lock().expect("holds");
        state
            .claims
            .values()
            .filter(|(live, _)| *live == 0)
            .filter_map(|(_, until)| *until)
            .min()
    }

    fn is_released(&self, secret: &str) -> bool {
        self.state.lock().expect("holds").released.contains(secret)
    }

    fn set_released(&self, secret: &str, released: bool) {
        let mut state = self.state.lock().expect("holds");
        if released {
            state.released.insert(secret.to_owned());
        } else {
            state.released.remove(secret);
        }
    }
}

/// Keeps keys claimed (see [`Holds`]) until dropped, and [`CLAIM_TAIL`] after.
pub struct Claim {
    holds: Arc<Holds>,
    fingerprints: Vec<String>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let until = Instant::now() + CLAIM_TAIL;
        let mut state = self.holds.state.lock().expect("holds");
        for f in &self.fingerprints {
            if let Some((live, tail)) = state.claims.get_mut(f) {
                *live = live.saturating_sub(1);
                *tail = Some(until);
            }
        }
        drop(state);
        self.holds.ended.notify_one();
    }
}

/// Works the key lifecycle until dropped: after every change of the SealedSecrets or the
/// keyring (and at least every `every`), recompute the usage, then (leader only) the
/// finalizers, the report and the events.
pub async fn run(lc: Lifecycle, every: Duration) {
    let mut keyring_changes = lc.keys.subscribe();
    let mut written_report = String::new();
    let mut reported: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    loop {
        // A claim whose tail runs out may let a key go: look again then.
        let wake = lc.holds.next_expiry().map_or(every, |at| {
            at.saturating_duration_since(Instant::now()).min(every)
        });
        tokio::select! {
            _ = lc.changed.notified() => {}
            _ = lc.holds.ended.notified() => {}
            r = keyring_changes.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(wake) => {}
        }
        // Let a burst of watch events (a relist, a rekey of many) land before computing.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let usage = compute(&lc).await;
        let keyring = lc.keys.current();
        let report = usage::report(&keyring.keys, &usage);
        lc.metrics.set_key_usage(
            &report
                .iter()
                .map(|r| KeyUse {
                    fingerprint: r.fingerprint.clone(),
                    state: r.state,
                    sealed_secrets: r.sealed_secrets,
                    in_use: r.sealed_secrets > 0 || r.sync,
                })
                .collect::<Vec<_>>(),
        );
        if lc.leader.as_ref().is_some_and(|l| !*l.borrow()) {
            continue;
        }
        if let Err(e) = finalizers(&lc, &usage).await {
            tracing::warn!(error = %e, "updating the key-in-use finalizers failed; retrying");
        }
        let text = report_text(&report, &usage);
        if text != written_report {
            match write_report(&lc, &text).await {
                Ok(()) => written_report = text,
                Err(e) => tracing::warn!(error = %e, "writing the key usage report failed"),
            }
        }
        announce(&lc, &report, &mut reported).await;
    }
}

/// The usage from the stores and the sync loop's record.
async fn compute(lc: &Lifecycle) -> Usage {
    let objects: Vec<ObjectKeys> = lc
        .stores
        .iter()
        .flat_map(|s| s.state())
        .map(|o| ObjectKeys {
            object: format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()),
            generation: o.meta().generation,
            observed_generation: o.status.as_ref().and_then(|s| s.observed_generation),
            opened_with: o
                .status
                .as_ref()
                .map(|s| s.opened_with.clone())
                .unwrap_or_default(),
        })
        .collect();
    let sync = match &lc.sync_status {
        None => SyncKeys::NoSync,
        Some((ns, name)) => sync_keys(&lc.client, ns, name).await,
    };
    usage::usage(objects, &sync, lc.health.watches_synced())
}

/// The fingerprints the sync loop recorded (an unreadable record counts as not recorded, so
/// nothing is released on it).
async fn sync_keys(client: &kube::Client, namespace: &str, name: &str) -> SyncKeys {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(cm)) => match cm.data.and_then(|mut d| d.remove(KEYS_STATUS_KEY)) {
            Some(text) => SyncKeys::Recorded(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
            None => SyncKeys::NotYetRecorded,
        },
        Ok(None) => SyncKeys::NotYetRecorded,
        Err(e) => {
            tracing::warn!(error = %e, "reading the sync loop's status failed");
            SyncKeys::NotYetRecorded
        }
    }
}

/// Puts the key-in-use finalizer on the identity Secrets of the keys that opened a value,
/// before the Secret holding that value is written, and claims the keys (see [`Holds`]) until
/// the returned guard is dropped: keep it until the write's result (a status, the sync's
/// record) is written. The loop in [`run`] would add the finalizer too, but only once that
/// result shows: a `kubectl delete` in between would not be held.
pub async fn hold(
    client: &kube::Client,
    namespace: &str,
    holds: &Arc<Holds>,
    keys: &[super::keys::KeyInfo],
    opened_with: &[String],
) -> Result<Claim, kube::Error> {
    let (claim, to_hold) = {
        let _gate = holds.gate.lock().await;
        let claim = holds.claim(opened_with);
        (
            claim,
            usage::secrets_to_hold(keys, opened_with, |s| holds.is_released(s)),
        )
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for name in to_hold {
        match hold_one(&api, &name).await {
            Ok(()) => holds.set_released(&name, false),
            // Without the RBAC to hold keys, holding helps nothing and refusing would leave
            // every value unsealed: said, and the write goes on.
            Err(kube::Error::Api(s)) if s.code == 403 => {
                tracing::warn!(secret = %name, "the controller may not put the key-in-use finalizer on the identity Secret (patch on secrets in its namespace): the key is not held");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(claim)
}

/// The finalizer on one identity Secret, unless it has it, is being deleted or is gone; a
/// conflict (the Secret changed since it was read) reads it again, up to three times.
async fn hold_one(api: &Api<Secret>, name: &str) -> Result<(), kube::Error> {
    for attempt in 1.. {
        let Some(secret) = api.get_metadata_opt(name).await? else {
            return Ok(());
        };
        let mut list = secret.metadata.finalizers.clone().unwrap_or_default();
        if secret.metadata.deletion_timestamp.is_some()
            || list.iter().any(|f| f == KEY_IN_USE_FINALIZER)
        {
            return Ok(());
        }
        list.push(KEY_IN_USE_FINALIZER.to_owned());
        let patch = json!({"metadata": {
            "resourceVersion": secret.metadata.resource_version,
            "finalizers": list,
        }});
        match api
            .patch_metadata(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(secret = %name, "a value is about to be written with the key: finalizer added");
                return Ok(());
            }
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < 3 => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Adds or removes the key-in-use finalizer on each identity Secret (a merge patch carrying
/// the resourceVersion read, so another writer's change in between is never overwritten).
async fn finalizers(lc: &Lifecycle, usage: &Usage) -> Result<(), kube::Error> {
    let api: Api<Secret> = Api::namespaced(lc.client.clone(), &lc.namespace);
    let list = api
        .list_metadata(&ListParams::default().labels(&format!("{IDENTITY_LABEL}=true")))
        .await?;
    let keyring = lc.keys.current();
    for secret in list.items {
        let name = secret.name_any();
        let fingerprints: Vec<Option<String>> = keyring
            .keys
            .iter()
            .filter(|k| k.secret == name)
            .map(|k| k.fingerprint.clone())
            .collect();
        let mut list = secret.metadata.finalizers.clone().unwrap_or_default();
        let has = list.iter().any(|f| f == KEY_IN_USE_FINALIZER);
        let deleting = secret.metadata.deletion_timestamp.is_some();
        let action = usage::finalizer_action(&fingerprints, has, deleting, usage);
        match action {
            FinalizerAction::Keep => continue,
            FinalizerAction::Add => list.push(KEY_IN_USE_FINALIZER.to_owned()),
            FinalizerAction::Remove => list.retain(|f| f != KEY_IN_USE_FINALIZER),
        }
        // A removal never passes a claim: both under the gate (see `Holds`).
        let _gate = if action == FinalizerAction::Remove {
            let gate = lc.holds.gate.lock().await;
            if lc.holds.claimed(&fingerprints, Instant::now()) {
                continue;
            }
            Some(gate)
        } else {
            None
        };
        let patch = json!({"metadata": {
            "resourceVersion": secret.metadata.resource_version,
            "finalizers": list,
        }});
        match api
            .patch_metadata(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => lc
                .holds
                .set_released(&name, action == FinalizerAction::Remove),
            // Changed or gone since the list: the next round reads it again.
            Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => continue,
            Err(e) => return Err(e),
        }
        drop(_gate);
        let fps: Vec<&str> = fingerprints.iter().flatten().map(String::as_str).collect();
        if action == FinalizerAction::Remove {
            tracing::info!(secret = %name, keys = ?fps, deleting, "no live value needs the key: finalizer removed");
            let note = if deleting {
                format!(
                    "no live value needs key {}: it is released and goes",
                    fps.join(", ")
                )
            } else {
                format!("no live value needs key {} any more", fps.join(", "))
            };
            publish(
                lc,
                &secret.object_ref(&()),
                EventType::Normal,
                "KeyReleased",
                note,
            )
            .await;
        } else {
            tracing::info!(secret = %name, keys = ?fps, "a live value needs the key: finalizer added");
        }
    }
    Ok(())
}

/// The report as ConfigMap data: YAML, one entry per key, newest active first.
fn report_text(report: &[usage::KeyReport], usage: &Usage) -> String {
    let value = json!({
        "keys": report,
        "complete": usage.unsettled.is_none(),
        "incompleteBecause": usage.unsettled.clone().unwrap_or_default(),
    });
    crate::core::yaml::to_yaml(&value)
}

async fn write_report(lc: &Lifecycle, text: &str) -> Result<(), kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(lc.client.clone(), &lc.namespace);
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": KEY_USAGE_CONFIGMAP,
            "labels": {APP_MANAGED_BY_LABEL: APP_MANAGED_BY_VALUE}},
        "data": {KEY_USAGE_KEY: text},
    });
    api.patch(
        KEY_USAGE_CONFIGMAP,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await?;
    Ok(())
}

/// An event on each retiring key's identity Secret when what still holds it changes.
async fn announce(
    lc: &Lifecycle,
    report: &[usage::KeyReport],
    reported: &mut BTreeMap<String, BTreeSet<String>>,
) {
    let keyring = lc.keys.current();
    let mut now: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in report
        .iter()
        .filter(|r| r.state != KeyState::Active.as_str())
    {
        let holders: BTreeSet<String> = r.still_needed_by.iter().cloned().collect();
        if reported.get(&r.fingerprint) != Some(&holders) && (!holders.is_empty() || r.sync) {
            let mut note = format!(
                "key {} is {} and still needed by {} SealedSecret(s)",
                r.fingerprint, r.state, r.sealed_secrets
            );
            if !holders.is_empty() {
                let list: Vec<String> = holders.iter().cloned().collect();
                note.push_str(&format!(" ({})", usage::first_few(&list)));
            }
            if r.sync {
                note.push_str(" and by the sync loop's last pass");
            }
            note.push_str(": reseal them with `gitops-seal rekey` (or remove them) to let it go");
            if let Some(k) = keyring
                .keys
                .iter()
                .find(|k| k.fingerprint.as_deref() == Some(&r.fingerprint))
            {
                let oref = k8s_openapi::api::core::v1::ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Secret".into()),
                    name: Some(k.secret.clone()),
                    namespace: Some(lc.namespace.clone()),
                    ..Default::default()
                };
                tracing::info!(key = %r.fingerprint, state = r.state, holders = r.sealed_secrets, sync = r.sync, "a retiring key is still in use");
                publish(lc, &oref, EventType::Normal, "KeyInUse", note).await;
            }
        }
        now.insert(r.fingerprint.clone(), holders);
    }
    *reported = now;
}

async fn publish(
    lc: &Lifecycle,
    oref: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(super::render::truncate(&note, 1024).to_owned()),
        action: "KeyLifecycle".into(),
        secondary: None,
    };
    if let Err(e) = lc.recorder.publish(&event, oref).await {
        tracing::warn!(error = %e, "publishing an event failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_claim_lasts_while_a_guard_does_and_its_tail_after() {
        let holds = Arc::new(Holds::default());
        let (a, b) = ("pq:aaaaaaaaaaaaaaaa".to_string(), "pq:bbbbbbbbbbbbbbbb");
        let of_a = [Some(a.clone())];
        let first = holds.claim(std::slice::from_ref(&a));
        let second = holds.claim(std::slice::from_ref(&a));
        assert!(holds.claimed(&of_a, Instant::now()));
        // A Secret holding other keys (or a key of unknown fingerprint) is not claimed.
        assert!(!holds.claimed(&[Some(b.into()), None], Instant::now()));
        assert_eq!(holds.next_expiry(), None, "no tail while a guard lives");
        drop(first);
        assert_eq!(holds.next_expiry(), None, "the second guard still lives");
        drop(second);
        let until = holds.next_expiry().expect("the tail");
        assert!(until > Instant::now() + CLAIM_TAIL - Duration::from_secs(1));
        assert!(holds.claimed(&of_a, until - Duration::from_millis(1)));
        assert!(!holds.claimed(&of_a, until));
        // Expired claims are forgotten.
        assert_eq!(holds.next_expiry(), None);
    }

    #[test]
    fn a_released_secret_is_remembered_until_held_again() {
        let holds = Holds::default();
        assert!(!holds.is_released("key-a"));
        holds.set_released("key-a", true);
        assert!(holds.is_released("key-a"));
        holds.set_released("key-a", false);
        assert!(!holds.is_released("key-a"));
    }
}
