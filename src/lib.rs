//! gitops-seal: keep Kubernetes Secrets in Git, sealed value by value with age.
//!
//! The crate is layered so that the architecture shows in the folders:
//!
//! * [`core`] is pure: manifest splitting and parsing, the sealed format, the binding that ties
//!   a ciphertext to its key/name/namespace, sealing and unsealing, and `.gitops-seal.yaml`
//!   rules. No file system, no environment, no async. Benchmarks, fuzz targets, property tests,
//!   the CLI and (later) the controller all call it.
//! * [`ops`] runs whole-file operations (encrypt, decrypt, set, unset, rekey, verify) over the
//!   core, still without I/O: bytes in, bytes out.
//! * [`adapters`] are the edges: files and atomic writes, identity files, config discovery.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod core;
pub mod ops;

pub use crate::core::error::{Error, ErrorKind, Location};
