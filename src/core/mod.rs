//! The pure core: no I/O, no environment, no async.

pub mod binding;
pub mod deny;
pub mod duration;
pub mod error;
pub mod import;
pub mod judge;
pub mod keys;
pub mod kubeyaml;
pub mod manifest;
pub mod merge;
pub mod names;
pub mod rules;
pub mod seal;
pub mod sealed;
pub mod secret;
pub mod x25519;
pub mod yaml;

pub use binding::{Binding, Scope};
pub use keys::{Identity, Recipient};
pub use sealed::{SealedSecret, SealedSecretSpec, SealedSecretTemplate, TemplateMetadata};
pub use secret::{PlainSecret, SecretBytes};
