//! `--leader-election`: one replica writes, through a coordination.k8s.io/v1 Lease.
//!
//! [`Leadership::start`] runs kube-lease-manager over Lease `gitops-seal-leader` in the
//! controller's namespace (holder: the pod name, else the host name) and exposes whether this
//! replica may write as a `tokio::sync::watch::Receiver<bool>`.
//!
//! kube-lease-manager alone keeps reporting "leader" while its renewals fail (it retries with
//! backoff and only notices the loss once a read succeeds). So the flag here is stricter: it is
//! `true` only while the manager says so *and* the Lease, as last seen through a watch, names
//! this replica with a renewal that is still valid for more than the safety margin. When
//! renewals (or the API server) fail, the flag turns `false` at
//! `renewTime + leaseDuration - safety_margin`, before any other replica may take the Lease
//! (at `renewTime + leaseDuration`). A reconcile that checks the flag before it writes
//! therefore never writes alongside another leader, as long as one reconcile's writes take less
//! than the margin and the clocks of the replicas agree to within it.

use std::time::{Duration, SystemTime};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use crate::core::names::{LEASE_FIELD_MANAGER, LEASE_NAME};

/// How the Lease is held.
#[derive(Debug, Clone)]
pub struct LeaderSettings {
    /// The namespace of the Lease (the controller's namespace).
    pub namespace: String,
    /// The Lease's name ([`LEASE_NAME`]).
    pub lease_name: String,
    /// The holder identity written into the Lease: unique per replica ([`holder_identity`]).
    pub identity: String,
    /// `leaseDuration`: how long a renewal is valid. Whole seconds.
    pub lease_duration: Duration,
    /// The leader renews this long before its Lease runs out. Whole seconds, less than
    /// `lease_duration`.
    pub renew_grace: Duration,
    /// The flag turns `false` this long before the Lease could run out when renewals fail;
    /// less than `renew_grace`, so a successful renewal always comes first.
    pub safety_margin: Duration,
}

impl LeaderSettings {
    /// A 15 s Lease renewed 5 s before it runs out, given up 2 s before (as client-go's
    /// defaults: a standby takes over within about 15 s of the leader's last renewal).
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> Self {
        LeaderSettings {
            namespace: namespace.into(),
            lease_name: LEASE_NAME.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_grace: Duration::from_secs(5),
            safety_margin: Duration::from_secs(2),
        }
    }

    fn check(&self) -> Result<(), LeaderError> {
        let whole = |d: Duration| d.subsec_nanos() == 0 && d.as_secs() > 0;
        if !whole(self.lease_duration) || !whole(self.renew_grace) {
            return Err(LeaderError::Settings(
                "the lease duration and the renew grace must be whole seconds".into(),
            ));
        }
        if self.renew_grace >= self.lease_duration {
            return Err(LeaderError::Settings(
                "the renew grace must be shorter than the lease duration".into(),
            ));
        }
        if self.safety_margin.is_zero() || self.safety_margin >= self.renew_grace {
            return Err(LeaderError::Settings(
                "the safety margin must be positive and shorter than the renew grace".into(),
            ));
        }
        if self.identity.is_empty() {
            return Err(LeaderError::Settings("the holder identity is empty".into()));
        }
        Ok(())
    }
}

/// Why leader election could not start.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election settings: {0}")]
    Settings(String),
    #[error("leader election (Lease): {0}")]
    Lease(#[from] LeaseManagerError),
}

/// The holder identity: the pod name when given (`$POD_NAME` from the downward API), else
/// the host name (a pod's host name is its name), else a random one.
pub fn holder_identity(pod_name: Option<&str>) -> String {
    if let Some(name) = pod_name.map(str::trim).filter(|n| !n.is_empty()) {
        return name.to_owned();
    }
    if let Some(host) = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
    {
        return host;
    }
    format!("gitops-seal-{}", std::process::id())
}

/// A replica's part in leader election. Dropping it (or [`Self::stop`]) gives the Lease up.
pub struct Leadership {
    rx: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Leadership {
    /// Joins the election (creating the Lease when there is none) and keeps taking part in the
    /// background until stopped. Fails only when the Lease cannot be read or created at all.
    pub async fn start(
        client: kube::Client,
        settings: LeaderSettings,
    ) -> Result<Self, LeaderError> {
        settings.check()?;
        let manager = LeaseManagerBuilder::new(client.clone(), &settings.lease_name)
            .with_namespace(&settings.namespace)
            .with_identity(&settings.identity)
            .with_duration(settings.lease_duration.as_secs())
            .with_grace(settings.renew_grace.as_secs())
            .with_field_manager(LEASE_FIELD_MANAGER)
            .build()
            .await?;
        let leases: Api<Lease> = Api::namespaced(client, &settings.namespace);
        let (tx, rx) = watch::channel(false);
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(hold(manager, leases, settings, tx, stop_rx));
        Ok(Leadership {
            rx,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }

    /// `true` while this replica may write. Changes are seen with `changed()`/`wait_for()`.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }

    /// Whether this replica may write now.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// Stops taking part: the flag turns `false` first, then the Lease is released (so a
    /// standby takes over at once rather than after the Lease runs out).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // The background task sees the closed channel, reports false and releases the Lease.
        self.stop.take();
    }
}

/// Ticks when `leader` is `true` at first, then after every change that leaves it `true` (a
/// loss and regain between two polls is one change): for `Controller::reconcile_all_on`, so a
/// replica that takes over reconciles everything it held back while standing by.
pub fn acquisitions(leader: watch::Receiver<bool>) -> impl futures::Stream<Item = ()> + Send {
    futures::stream::unfold((leader, true), |(mut rx, first)| async move {
        if first && *rx.borrow_and_update() {
            return Some(((), (rx, false)));
        }
        loop {
            rx.changed().await.ok()?;
            if *rx.borrow_and_update() {
                return Some(((), (rx, false)));
            }
        }
    })
}

/// Until when the Lease, as seen, lets `identity` write: its renewal plus the duration, less
/// the margin. `None` when someone else holds it or it carries no renewal.
fn valid_until(lease: &Lease, identity: &str, margin: Duration) -> Option<SystemTime> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed: SystemTime = spec.renew_time.as_ref()?.0.into();
    let duration = Duration::from_secs(u64::try_from(spec.lease_duration_seconds?).ok()?);
    (renewed + duration).checked_sub(margin)
}

/// The background task: combines the manager's view with the Lease's renewals, publishes the
/// flag, and on stop reports `false` before releasing the Lease.
async fn hold(
    manager: LeaseManager,
    leases: Api<Lease>,
    settings: LeaderSettings,
    tx: watch::Sender<bool>,
    mut stop: oneshot::Receiver<()>,
) {
    let (mut manager_rx, manager_task) = manager.watch().await;
    let config =
        watcher::Config::default().fields(&format!("metadata.name={}", settings.lease_name));
    let mut lease_events = watcher::watcher(leases, config).default_backoff().boxed();
    let mut until: Option<SystemTime> = None;
    let mut manager_alive = true;
    let mut watch_alive = true;
    loop {
        let now = SystemTime::now();
        let leads = manager_alive && *manager_rx.borrow() && until.is_some_and(|t| now < t);
        let changed = tx.send_if_modified(|v| std::mem::replace(v, leads) != leads);
        if changed {
            if leads {
                tracing::info!(lease = %settings.lease_name, identity = %settings.identity, "leading: this replica writes");
            } else {
                tracing::warn!(lease = %settings.lease_name, identity = %settings.identity, "not leading: this replica stops writing");
            }
        }
        // Wake when the renewal seen last runs out, to report the loss in time.
        let expires_in = until.and_then(|t| t.duration_since(now).ok());
        tokio::select! {
            _ = &mut stop => break,
            r = manager_rx.changed(), if manager_alive => {
                if r.is_err() {
                    tracing::error!("leader election stopped unexpectedly; this replica stops writing");
                    manager_alive = false;
                }
            }
            event = lease_events.next(), if watch_alive => match event {
                Some(Ok(Event::Apply(lease) | Event::InitApply(lease))) => {
                    until = valid_until(&lease, &settings.identity, settings.safety_margin);
                }
                Some(Ok(Event::Delete(_))) => until = None,
                Some(Ok(Event::Init | Event::InitDone)) => {}
                Some(Err(e)) => tracing::warn!(error = %e, "watch of the leader Lease failed; retrying"),
                None => {
                    watch_alive = false;
                    until = None;
                }
            },
            _ = tokio::time::sleep(expires_in.unwrap_or_default()), if expires_in.is_some() => {}
        }
    }
    tx.send_replace(false);
    // Dropping the receiver makes the manager release the Lease and end.
    drop(manager_rx);
    match tokio::time::timeout(settings.lease_duration, manager_task).await {
        Ok(Ok(Ok(_))) => tracing::info!(lease = %settings.lease_name, "leader Lease released"),
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %e, "could not release the leader Lease; it runs out on its own")
        }
        Ok(Err(_)) | Err(_) => {
            tracing::warn!("could not release the leader Lease; it runs out on its own")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: &str, renewed: SystemTime, seconds: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(renewed.try_into().unwrap())),
                lease_duration_seconds: Some(seconds),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn validity_ends_a_margin_before_the_lease() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let l = lease("pod-a", t, 15);
        assert_eq!(
            valid_until(&l, "pod-a", Duration::from_secs(2)),
            Some(t + Duration::from_secs(13))
        );
        assert_eq!(valid_until(&l, "pod-b", Duration::from_secs(2)), None);
        assert_eq!(
            valid_until(&Lease::default(), "pod-a", Duration::ZERO),
            None
        );
    }

    #[test]
    fn settings_are_checked() {
        let ok = LeaderSettings::new("ns", "me");
        assert!(ok.check().is_ok());
        let mut s = ok.clone();
        s.safety_margin = s.renew_grace;
        assert!(s.check().is_err());
        let mut s = ok.clone();
        s.renew_grace = s.lease_duration;
        assert!(s.check().is_err());
        let mut s = ok.clone();
        s.lease_duration = Duration::from_millis(1500);
        assert!(s.check().is_err());
        let mut s = ok;
        s.identity.clear();
        assert!(s.check().is_err());
    }

    #[tokio::test]
    async fn acquisitions_tick_on_each_rise_to_leader() {
        let (tx, rx) = watch::channel(true);
        let mut ticks = Box::pin(acquisitions(rx));
        assert_eq!(ticks.next().await, Some(()), "already leading");
        tx.send_replace(false);
        tx.send_replace(true);
        assert_eq!(ticks.next().await, Some(()), "leading again");
        tx.send_replace(false);
        drop(tx);
        assert_eq!(ticks.next().await, None, "ends with the flag");
    }

    #[test]
    fn identity_prefers_the_pod_name() {
        assert_eq!(holder_identity(Some("pod-7")), "pod-7");
        assert!(!holder_identity(None).is_empty());
        assert!(!holder_identity(Some("  ")).is_empty());
    }
}
