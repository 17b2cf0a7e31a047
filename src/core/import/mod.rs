//! Reading what other tools sealed, to move it to gitops-seal: Bitnami Sealed Secrets
//! ([`bitnami`]) and SOPS files sealed for age ([`sops`]). Pure: keys and documents in, plaintext
//! Secrets in zeroizing buffers out. Sealing them again is [`crate::ops`]'s work.

pub mod bitnami;
pub mod sops;
