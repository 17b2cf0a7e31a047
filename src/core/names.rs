//! Names shared by the controller and the sync loop: the labels and annotations that decide
//! what each may touch. One definition, so the two halves cannot drift apart.

/// On a Secret in the controller's namespace: it holds one of the controller's identities.
/// Neither a SealedSecret's template nor the sync loop may ever write or delete such a Secret.
pub const IDENTITY_LABEL: &str = "gitops-seal.dev/identity";
/// On an object that someone else created: `"true"` lets the controller (a Secret) or a sync
/// (any object) take it over. Without it, an existing object is never changed.
pub const ADOPT_ANNOTATION: &str = "gitops-seal.dev/adopt";

/// ConfigMap in the controller's namespace where it publishes its recipients (newest first),
/// and the data key that holds them; `recipient --fetch` reads it.
pub const RECIPIENTS_CONFIGMAP: &str = "gitops-seal-recipients";
pub const RECIPIENTS_KEY: &str = "recipients.txt";
/// On an identity Secret: `"true"` retires the key. The controller stops publishing its
/// recipient and keeps unsealing with it until nothing needs it.
pub const RETIRED_LABEL: &str = "gitops-seal.dev/retired";
/// The finalizer the controller keeps on every identity Secret whose key a live value needs:
/// `kubectl delete` of a key in use waits until its last user is resealed or removed.
pub const KEY_IN_USE_FINALIZER: &str = "gitops-seal.dev/key-in-use";
/// ConfigMap in the controller's namespace: which key each live SealedSecret (and the sync
/// loop) needs, as fingerprints and object names, never a value.
pub const KEY_USAGE_CONFIGMAP: &str = "gitops-seal-key-usage";
pub const KEY_USAGE_KEY: &str = "usage.yaml";
/// On a SealedSecret: workloads of its namespace to roll when its Secret's data changes
/// (`deployment/web, statefulset/db`), with `controller --rollout`.
pub const ROLLOUT_ANNOTATION: &str = "gitops-seal.dev/rollout";
/// On a managed Secret: SHA-256 of its data as the controller last rolled workloads for it.
/// Only readers of the Secret see it, and they can read the data anyway.
pub const DATA_HASH_ANNOTATION: &str = "gitops-seal.dev/data-hash";
/// On a workload's pod template: when the controller last rolled it for a Secret change (an
/// RFC 3339 time, nothing derived from the secret).
pub const RESTARTED_AT_ANNOTATION: &str = "gitops-seal.dev/restartedAt";
