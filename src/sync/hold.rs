//! What the sync loop, run inside the controller, calls to hold the keys a pass opened with
//! before it writes ([`super::Settings::hold_keys`]): the controller's key lifecycle, given
//! from above so that this layer does not import the controller.

use std::sync::Arc;

/// Holds the keys named by their fingerprints (see [`super::Settings::hold_keys`]); the guard it
/// returns is kept until the pass's record is written.
pub type HoldFn = dyn Fn(Vec<String>) -> futures::future::BoxFuture<'static, Result<HoldGuard, kube::Error>>
    + Send
    + Sync;

/// Whatever the holder needs kept alive while a pass writes with the keys it held.
pub type HoldGuard = Box<dyn std::any::Any + Send + Sync>;

/// What holds the keys a pass needs before it writes (see [`super::Settings::hold_keys`]).
#[derive(Clone)]
pub struct HoldKeys(pub Arc<HoldFn>);

impl std::fmt::Debug for HoldKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HoldKeys(..)")
    }
}
