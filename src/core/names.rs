//! Every name the product writes or reads in a cluster or a manifest: labels, annotations,
//! ConfigMaps and their keys, field managers, finalizers. One definition, so the CLI, the
//! controller and the sync loop cannot drift apart; the modules that use them re-export what
//! their users need.

// --- On Secrets and SealedSecrets -------------------------------------------------------------

/// The API group of SealedSecrets (`gitops-seal.dev/v1`).
pub const GROUP: &str = "gitops-seal.dev";
/// On a Secret (or its SealedSecret): how far its sealed values may travel (`strict`,
/// `namespace`, `cluster`).
pub const SCOPE_ANNOTATION: &str = "gitops-seal.dev/scope";
/// The label every Secret the controller writes carries, with [`MANAGED_BY_VALUE`]. Secrets are
/// mapped back to their SealedSecret by this label and their name.
pub const MANAGED_BY_LABEL: &str = "gitops-seal.dev/managed-by";
pub const MANAGED_BY_VALUE: &str = "controller";
/// On an object that someone else created: `"true"` lets the controller (a Secret) or a sync
/// (any object) take it over. Without it, an existing object is never changed.
pub const ADOPT_ANNOTATION: &str = "gitops-seal.dev/adopt";
/// On a SealedSecret: `"true"` deletes and creates an immutable Secret (or one whose type
/// changed) instead of reporting ImmutableChanged.
pub const RECREATE_ANNOTATION: &str = "gitops-seal.dev/recreate";
/// On a SealedSecret: `"false"` leaves the Secret without an ownerReference.
pub const OWNER_REFERENCE_ANNOTATION: &str = "gitops-seal.dev/owner-reference";
/// On a SealedSecret: workloads of its namespace to roll when its Secret's data changes
/// (`deployment/web, statefulset/db`), with `controller --rollout`.
pub const ROLLOUT_ANNOTATION: &str = "gitops-seal.dev/rollout";
/// On a managed Secret: SHA-256 of its data as the controller last rolled workloads for it.
/// Only readers of the Secret see it, and they can read the data anyway.
pub const DATA_HASH_ANNOTATION: &str = "gitops-seal.dev/data-hash";
/// On a workload's pod template: when the controller last rolled it for a Secret change (an
/// RFC 3339 time, nothing derived from the secret).
pub const RESTARTED_AT_ANNOTATION: &str = "gitops-seal.dev/restartedAt";

// --- The controller's keys --------------------------------------------------------------------

/// On a Secret in the controller's namespace: it holds one of the controller's identities.
/// Neither a SealedSecret's template nor the sync loop may ever write or delete such a Secret.
pub const IDENTITY_LABEL: &str = "gitops-seal.dev/identity";
/// The data key of an identity Secret: an age identity file.
pub const IDENTITY_KEY: &str = "identity.txt";
/// The name of the first identity Secret (and the prefix of rotated ones).
pub const INITIAL_IDENTITY_NAME: &str = "gitops-seal-identity";
/// On an identity Secret: its public recipient, for people (not read by the controller).
pub const RECIPIENT_ANNOTATION: &str = "gitops-seal.dev/recipient";
/// On an identity Secret: `"true"` retires the key. The controller stops publishing its
/// recipient and keeps unsealing with it until nothing needs it.
pub const RETIRED_LABEL: &str = "gitops-seal.dev/retired";
/// The finalizer the controller keeps on every identity Secret whose key a live value needs:
/// `kubectl delete` of a key in use waits until its last user is resealed or removed.
pub const KEY_IN_USE_FINALIZER: &str = "gitops-seal.dev/key-in-use";
/// ConfigMap in the controller's namespace where it publishes its recipients (newest first),
/// and the data key that holds them; `recipient --fetch` reads it.
pub const RECIPIENTS_CONFIGMAP: &str = "gitops-seal-recipients";
pub const RECIPIENTS_KEY: &str = "recipients.txt";
/// ConfigMap in the controller's namespace: which key each live SealedSecret (and the sync
/// loop) needs, as fingerprints and object names, never a value.
pub const KEY_USAGE_CONFIGMAP: &str = "gitops-seal-key-usage";
pub const KEY_USAGE_KEY: &str = "usage.yaml";
/// The namespace deploy/ installs the controller in.
pub const DEFAULT_NAMESPACE: &str = "gitops-seal";
/// The Lease the controller's replicas elect a leader with.
pub const LEASE_NAME: &str = "gitops-seal-leader";

// --- The sync loop ----------------------------------------------------------------------------

/// The label every object a sync applies carries: its value is the sync's name.
pub const SYNC_LABEL: &str = "gitops-seal.dev/sync";
/// An annotation that keeps a live object from being pruned.
pub const PRUNE_ANNOTATION: &str = "gitops-seal.dev/prune";
/// On the status ConfigMap: `"true"` suspends the loop.
pub const SUSPEND_ANNOTATION: &str = "gitops-seal.dev/suspend";
/// On the status ConfigMap: any new value (a time) asks for a pass now.
pub const RECONCILE_AT_ANNOTATION: &str = "gitops-seal.dev/reconcile-at";
/// The status ConfigMap of sync `name` is this prefix and the name.
pub const SYNC_STATUS_PREFIX: &str = "gitops-seal-sync-";
/// The data key of the status ConfigMap that lists the fingerprints of the keys the last
/// planned commit's values needed, one a line: a controller running this loop counts them as
/// in use.
pub const KEYS_STATUS_KEY: &str = "keys";

// --- Field managers and common labels ---------------------------------------------------------

/// The field manager of every write the controller makes.
pub const CONTROLLER_FIELD_MANAGER: &str = "gitops-seal";
/// The field manager of every apply a sync makes.
pub const SYNC_FIELD_MANAGER: &str = "gitops-seal-sync";
/// The field manager of the leader election Lease.
pub const LEASE_FIELD_MANAGER: &str = "gitops-seal-leader-election";
/// The standard label on the ConfigMaps the product writes for itself (statuses, reports).
pub const APP_MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const APP_MANAGED_BY_VALUE: &str = "gitops-seal";
