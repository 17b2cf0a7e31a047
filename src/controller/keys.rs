//! The controller's keys: identity Secrets labelled `gitops-seal.dev/identity: "true"` in its
//! namespace (type Opaque, data key `identity.txt` in age's identity-file format), generated
//! once when there is none, rotated on request, watched, and published as recipients (newest
//! first) in ConfigMap `gitops-seal-recipients`.
//!
//! New keys are post-quantum (`--key-type pq`, the default) unless `--key-type x25519` says
//! otherwise. Every identity held opens values, whatever its kind; but once the controller holds
//! a post-quantum key, only post-quantum recipients are published, so a repository that seals
//! for what `recipient --fetch` prints never mixes kinds (docs/OPERATIONS.md, migration).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, ResourceExt};
use tokio::sync::watch;
use zeroize::{Zeroize, Zeroizing};

use super::{ControllerError, FIELD_MANAGER};
use crate::core::keys::{parse_identity_file, KeyKind};
use crate::core::Identity;

/// The first identity Secret's name is deterministic, so that two controllers starting at once
/// create the same object and exactly one create succeeds.
pub use crate::core::names::{
    IDENTITY_KEY, IDENTITY_LABEL, INITIAL_IDENTITY_NAME, KEY_IN_USE_FINALIZER,
    RECIPIENTS_CONFIGMAP, RECIPIENTS_KEY, RECIPIENT_ANNOTATION, RETIRED_LABEL,
};

fn identity_selector() -> String {
    format!("{IDENTITY_LABEL}=true")
}

/// Where a key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyState {
    /// Published and unsealing.
    Active,
    /// Labelled `gitops-seal.dev/retired: "true"`: unsealing, no longer published.
    Retired,
    /// Deleted (a deletion timestamp, held by the key-in-use finalizer): unsealing what still
    /// needs it, no longer published.
    Deleting,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Deleting => "deleting",
        }
    }

    /// Retired or being deleted: on its way out.
    pub fn is_retiring(self) -> bool {
        self != KeyState::Active
    }
}

/// One identity held: which Secret holds it, its public fingerprint and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub secret: String,
    /// `None` only for a key whose public half cannot be derived.
    pub fingerprint: Option<String>,
    /// What it would publish: `None` for an SSH key (never published).
    pub recipient: Option<String>,
    pub state: KeyState,
    /// Whether its identity Secret carries the key-in-use finalizer (as last seen).
    pub held: bool,
}

/// The identities the controller holds and their public recipients.
///
/// `identities` is in attribution order: active keys newest first, then retiring ones (newest
/// first). A value is attributed to the first key in that order that opens it, so a key on its
/// way out is named only by values that no remaining key opens (docs/OPERATIONS.md).
#[derive(Default)]
pub struct Keyring {
    pub identities: Vec<Identity>,
    /// Parallel to `identities`.
    pub keys: Vec<KeyInfo>,
    /// Published: the active keys' recipients, newest first.
    pub recipients: Vec<String>,
    /// Identity Secrets whose `identity.txt` could not be read (named, never quoted).
    pub unreadable: Vec<String>,
}

impl Keyring {
    /// The fingerprints of the keys at `indices` (positions in `identities`), as a
    /// SealedSecret's status lists them: sorted, without keys of unknown fingerprint.
    pub fn fingerprints(&self, indices: &std::collections::BTreeSet<usize>) -> Vec<String> {
        let mut out: Vec<String> = indices
            .iter()
            .filter_map(|&i| self.keys.get(i).and_then(|k| k.fingerprint.clone()))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

impl AsRef<[Identity]> for Keyring {
    fn as_ref(&self) -> &[Identity] {
        &self.identities
    }
}

/// One identity Secret's key text, in a zeroizing buffer, and its state.
struct KeyText {
    created: Option<Timestamp>,
    state: KeyState,
    held: bool,
    text: Zeroizing<String>,
}

/// The current keyring, swapped whole on every change; `changes` ticks after each swap.
pub struct Keys {
    current: RwLock<Arc<Keyring>>,
    changes: watch::Sender<u64>,
}

impl Keys {
    pub fn new() -> Arc<Self> {
        Arc::new(Keys {
            current: RwLock::new(Arc::new(Keyring::default())),
            changes: watch::channel(0).0,
        })
    }

    pub fn current(&self) -> Arc<Keyring> {
        self.current.read().expect("keyring lock").clone()
    }

    /// Bumped on every keyring change.
    pub fn version(&self) -> u64 {
        *self.changes.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn set(&self, keyring: Keyring) {
        *self.current.write().expect("keyring lock") = Arc::new(keyring);
        self.changes.send_modify(|n| *n += 1);
    }
}

/// Takes the key text out of an identity Secret and wipes the Secret's data.
fn take_key(secret: &mut Secret) -> Option<KeyText> {
    let created = secret.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let state = if secret.metadata.deletion_timestamp.is_some() {
        KeyState::Deleting
    } else if secret.labels().get(RETIRED_LABEL).map(String::as_str) == Some("true") {
        KeyState::Retired
    } else {
        KeyState::Active
    };
    let held = secret
        .finalizers()
        .iter()
        .any(|f| f == KEY_IN_USE_FINALIZER);
    let mut data = secret.data.take()?;
    let text = data.get_mut(IDENTITY_KEY).map(|v| {
        let bytes = std::mem::take(&mut v.0);
        match String::from_utf8(bytes) {
            Ok(s) => Zeroizing::new(s),
            Err(e) => {
                let mut b = e.into_bytes();
                b.zeroize();
                Zeroizing::new(String::new())
            }
        }
    });
    for v in data.values_mut() {
        v.0.zeroize();
    }
    text.map(|text| KeyText {
        created,
        state,
        held,
        text,
    })
}

/// Parses every key text into the keyring, in attribution order: active keys first, then
/// retired ones, then those being deleted; newest first within each (by creation time, then
/// name).
fn build_keyring(texts: &BTreeMap<String, KeyText>) -> Keyring {
    let mut order: Vec<(&String, &KeyText)> = texts.iter().collect();
    order.sort_by(|a, b| {
        a.1.state
            .cmp(&b.1.state)
            .then_with(|| b.1.created.cmp(&a.1.created))
            .then_with(|| b.0.cmp(a.0))
    });
    let mut keyring = Keyring::default();
    for (name, key) in order {
        match parse_identity_file(&key.text) {
            Ok(ids) => {
                for id in ids {
                    // An SSH key the controller holds opens what was sealed for it, but is
                    // not offered for new sealing: age 0.13 deprecates sealing for ssh keys.
                    let recipient = id
                        .to_recipient()
                        .filter(|r| r.kind_name() != "ssh")
                        .map(|r| r.to_string());
                    if let (Some(r), KeyState::Active) = (&recipient, key.state) {
                        if !keyring.recipients.contains(r) {
                            keyring.recipients.push(r.clone());
                        }
                    }
                    keyring.keys.push(KeyInfo {
                        secret: name.clone(),
                        fingerprint: id.fingerprint(),
                        recipient,
                        state: key.state,
                        held: key.held,
                    });
                    keyring.identities.push(id);
                }
            }
            Err(e) => {
                tracing::warn!(secret = %name, error = %e, "identity Secret is not readable");
                keyring.unreadable.push(name.clone());
            }
        }
    }
    // Sealing for a post-quantum and a classical key at once is only as strong as the
    // classical one (and refused): with any active post-quantum key, publish only those. The
    // classical identities still open what was sealed for them.
    if keyring
        .identities
        .iter()
        .zip(&keyring.keys)
        .any(|(id, k)| id.is_pq() && k.state == KeyState::Active)
    {
        keyring.recipients.retain(|r| r.starts_with("age1pq1"));
    }
    keyring
}

/// The identity Secret for a new key.
fn identity_secret(name: &str, namespace: &str, kind: KeyKind) -> (Secret, String) {
    let identity = Identity::generate_kind(kind);
    let recipient = identity
        .to_recipient()
        .expect("a generated identity has a recipient")
        .to_string();
    let created = Timestamp::now().to_string();
    let text = identity
        .to_identity_file(&created)
        .expect("a generated identity has an identity file");
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some([(IDENTITY_LABEL.to_owned(), "true".to_owned())].into()),
            annotations: Some([(RECIPIENT_ANNOTATION.to_owned(), recipient.clone())].into()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(
            [(
                IDENTITY_KEY.to_owned(),
                ByteString(text.as_bytes().to_vec()),
            )]
            .into(),
        ),
        ..Secret::default()
    };
    (secret, recipient)
}

fn wipe(secret: &mut Secret) {
    if let Some(data) = secret.data.as_mut() {
        for v in data.values_mut() {
            v.0.zeroize();
        }
    }
}

/// Creates identity Secret `name`; `Ok(false)` when it exists already (another controller won).
async fn create_identity(
    api: &Api<Secret>,
    name: &str,
    namespace: &str,
    kind: KeyKind,
) -> Result<bool, kube::Error> {
    let (mut secret, recipient) = identity_secret(name, namespace, kind);
    let result = api.create(&PostParams::default(), &secret).await;
    wipe(&mut secret);
    match result {
        Ok(mut created) => {
            wipe(&mut created);
            let kind = match kind {
                KeyKind::Pq => "pq",
                KeyKind::X25519 => "x25519",
            };
            tracing::info!(secret = name, %recipient, kind, "generated a new identity");
            Ok(true)
        }
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

async fn list_keys(api: &Api<Secret>) -> Result<BTreeMap<String, KeyText>, kube::Error> {
    let list = api
        .list(&ListParams::default().labels(&identity_selector()))
        .await?;
    let mut texts = BTreeMap::new();
    for mut s in list.items {
        let name = s.name_any();
        if let Some(k) = take_key(&mut s) {
            texts.insert(name, k);
        }
    }
    Ok(texts)
}

/// Loads the identity Secrets; with none and `generate` (the kind of key to make), creates
/// exactly one (a deterministic name and create: 409 means another controller made it, so
/// list again).
pub async fn load_or_generate(
    api: &Api<Secret>,
    namespace: &str,
    generate: Option<KeyKind>,
    keys: &Keys,
) -> Result<(), ControllerError> {
    for _ in 0..5 {
        let texts = list_keys(api).await?;
        if !texts.is_empty() {
            let keyring = build_keyring(&texts);
            if keyring.identities.is_empty() {
                return Err(ControllerError::NoIdentity {
                    namespace: namespace.to_owned(),
                    detail: format!(
                        "identity Secrets {} hold no readable {IDENTITY_KEY}",
                        keyring.unreadable.join(", ")
                    ),
                });
            }
            keys.set(keyring);
            return Ok(());
        }
        let Some(kind) = generate else {
            return Err(ControllerError::NoIdentity {
                namespace: namespace.to_owned(),
                detail: format!(
                    "no Secret labelled {IDENTITY_LABEL}=true with data key {IDENTITY_KEY} \
                     (generation is off)"
                ),
            });
        };
        create_identity(api, INITIAL_IDENTITY_NAME, namespace, kind).await?;
    }
    Err(ControllerError::NoIdentity {
        namespace: namespace.to_owned(),
        detail: "the generated identity Secret did not show up in a list".into(),
    })
}

/// Publishes the recipients, newest first, in ConfigMap `gitops-seal-recipients`.
pub async fn publish_recipients(
    api: &Api<ConfigMap>,
    keyring: &Keyring,
) -> Result<(), kube::Error> {
    let text = crate::adapters::http::recipients_text(&keyring.recipients);
    let cm = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": RECIPIENTS_CONFIGMAP},
        "data": {RECIPIENTS_KEY: text},
    });
    api.patch(
        RECIPIENTS_CONFIGMAP,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&cm),
    )
    .await?;
    Ok(())
}

/// Watches the identity Secrets: every change rebuilds the keyring and republishes the
/// recipients. Runs until dropped.
pub async fn watch_identities(secrets: Api<Secret>, configmaps: Api<ConfigMap>, keys: Arc<Keys>) {
    let config = watcher::Config::default().labels(&identity_selector());
    let mut stream = watcher::watcher(secrets, config).default_backoff().boxed();
    let mut texts: BTreeMap<String, KeyText> = BTreeMap::new();
    let mut fresh: Option<BTreeMap<String, KeyText>> = None;
    while let Some(event) = stream.next().await {
        let changed = match event {
            Ok(Event::Init) => {
                fresh = Some(BTreeMap::new());
                false
            }
            Ok(Event::InitApply(mut s)) => {
                if let (Some(f), Some(k)) = (fresh.as_mut(), take_key(&mut s)) {
                    f.insert(s.name_any(), k);
                }
                false
            }
            Ok(Event::InitDone) => {
                if let Some(f) = fresh.take() {
                    texts = f;
                }
                true
            }
            Ok(Event::Apply(mut s)) => {
                let name = s.name_any();
                match take_key(&mut s) {
                    Some(k) => texts.insert(name, k),
                    None => texts.remove(&name),
                };
                true
            }
            Ok(Event::Delete(mut s)) => {
                wipe(&mut s);
                texts.remove(&s.name_any());
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "identity watch failed; retrying");
                false
            }
        };
        if changed {
            let keyring = build_keyring(&texts);
            tracing::info!(
                identities = keyring.identities.len(),
                recipients = ?keyring.recipients,
                "keyring updated"
            );
            if let Err(e) = publish_recipients(&configmaps, &keyring).await {
                tracing::warn!(error = %e, "publishing the recipients failed");
            }
            keys.set(keyring);
        }
    }
}

/// With `--key-rotation`: adds a new identity of `kind` when the newest is older than `every`.
/// The name is derived from the rotation period, so replicas rotating at once create one Secret.
pub async fn rotate_keys(api: Api<Secret>, namespace: String, every: Duration, kind: KeyKind) {
    let check = every.clamp(Duration::from_millis(100), Duration::from_secs(60));
    let mut ticker = tokio::time::interval(check);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let newest = match api
            .list_metadata(&ListParams::default().labels(&identity_selector()))
            .await
        {
            Ok(list) => list
                .items
                .iter()
                .filter_map(|m| m.metadata.creation_timestamp.as_ref().map(|t| t.0))
                .max(),
            Err(e) => {
                tracing::warn!(error = %e, "key rotation: listing identities failed");
                continue;
            }
        };
        let now = Timestamp::now();
        let due = newest.is_none_or(|t| {
            now.duration_since(t)
                .try_into()
                .is_ok_and(|age: Duration| age >= every)
        });
        if !due {
            continue;
        }
        let period = now.as_second().max(0) as u128 / every.as_secs().max(1) as u128;
        let name = format!("{INITIAL_IDENTITY_NAME}-{period}");
        if let Err(e) = create_identity(&api, &name, &namespace, kind).await {
            tracing::warn!(error = %e, "key rotation: creating an identity failed");
        }
    }
}
