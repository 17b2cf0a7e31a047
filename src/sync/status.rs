//! The sync's record in its status ConfigMap `gitops-seal-sync-NAME`: what the last pass
//! applied (the inventory pruning works from), when, with which keys, and the annotations
//! that suspend the loop or ask for a pass.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use super::plan::ObjectRef;
use super::{PassReport, Settings, FIELD_MANAGER};
use crate::core::names::{
    APP_MANAGED_BY_LABEL, APP_MANAGED_BY_VALUE, KEYS_STATUS_KEY, RECONCILE_AT_ANNOTATION,
    SUSPEND_ANNOTATION,
};

/// The previous pass's record, read from the status ConfigMap.
#[derive(Debug, Default)]
pub(super) struct Status {
    pub(super) inventory: BTreeSet<ObjectRef>,
    /// `lastAppliedCommit` and `lastAppliedTime`, kept through failed passes (an apply that
    /// left them out would remove them).
    pub(super) last_applied: Option<(String, String)>,
    /// `keys`, kept through passes that fail before a plan.
    pub(super) keys: Option<String>,
    /// The status ConfigMap does not exist (a first pass, or a lost record): objects carrying
    /// this sync's label and its field manager's apply count as its own (see
    /// [`plan::ownership`]).
    pub(super) lost: bool,
}

pub(super) async fn read_status(
    client: &Client,
    settings: &Settings,
) -> Result<Status, kube::Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &settings.namespace);
    let found = api.get_opt(&settings.status_configmap()).await?;
    let lost = found.is_none();
    let mut data = found.and_then(|c| c.data).unwrap_or_default();
    let inventory = data
        .remove("inventory")
        .map(|text| text.lines().filter_map(ObjectRef::from_line).collect())
        .unwrap_or_default();
    let last_applied = data
        .remove("lastAppliedCommit")
        .zip(data.remove("lastAppliedTime"));
    Ok(Status {
        inventory,
        last_applied,
        keys: data.remove(KEYS_STATUS_KEY),
        lost,
    })
}

pub(super) async fn write_status(
    client: &Client,
    settings: &Settings,
    report: &PassReport,
    inventory: &BTreeSet<ObjectRef>,
    error: Option<String>,
    status: &Status,
) -> Result<(), kube::Error> {
    let last_applied = status.last_applied.as_ref();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &settings.namespace);
    let now = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let inventory: String = inventory.iter().map(|r| r.to_line() + "\n").collect();
    let mut data = json!({
        "lastAttemptedCommit": report.commit,
        "lastAttemptTime": now,
        "lastError": error.unwrap_or_default(),
        "applied": report.applied.to_string(),
        "pruned": report.pruned.to_string(),
        "failed": report.failed.to_string(),
        "inventory": inventory,
    });
    // The keys this commit needs; a pass that failed before its plan keeps the last record.
    let keys = match &report.keys {
        Some(k) => Some(k.iter().map(|f| format!("{f}\n")).collect::<String>()),
        None => status.keys.clone(),
    };
    if let Some(k) = keys {
        data[KEYS_STATUS_KEY] = json!(k);
    }
    let (commit, time) = match (&data["lastError"], last_applied) {
        (e, _) if e == "" => (report.commit.clone(), now.clone()),
        (_, Some((c, t))) => (c.clone(), t.clone()),
        (_, None) => (String::new(), String::new()),
    };
    if !commit.is_empty() {
        data["lastAppliedCommit"] = json!(commit);
        data["lastAppliedTime"] = json!(time);
    }
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": settings.status_configmap(), "namespace": settings.namespace,
            "labels": {APP_MANAGED_BY_LABEL: APP_MANAGED_BY_VALUE}},
        "data": data,
    });
    api.patch(
        &settings.status_configmap(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await?;
    Ok(())
}

/// `(suspended, reconcile-at)` from the status ConfigMap (absent: not suspended).
pub(super) async fn annotations(client: &Client, settings: &Settings) -> (bool, Option<String>) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &settings.namespace);
    let Ok(Some(cm)) = api.get_opt(&settings.status_configmap()).await else {
        return (false, None);
    };
    let a = cm.metadata.annotations.unwrap_or_default();
    (
        a.get(SUSPEND_ANNOTATION).is_some_and(|v| v == "true"),
        a.get(RECONCILE_AT_ANNOTATION).cloned(),
    )
}
