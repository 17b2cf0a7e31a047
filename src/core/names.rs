//! Names shared by the controller and the sync loop: the labels and annotations that decide
//! what each may touch. One definition, so the two halves cannot drift apart.

/// On a Secret in the controller's namespace: it holds one of the controller's identities.
/// Neither a SealedSecret's template nor the sync loop may ever write or delete such a Secret.
pub const IDENTITY_LABEL: &str = "gitops-seal.dev/identity";
/// On an object that someone else created: `"true"` lets the controller (a Secret) or a sync
/// (any object) take it over. Without it, an existing object is never changed.
pub const ADOPT_ANNOTATION: &str = "gitops-seal.dev/adopt";
