//! gitops-seal: keep Kubernetes Secrets in Git, sealed value by value with age.
//!
//! The crate is layered so that the architecture shows in the folders. From the bottom up:
//!
//! 1. [`core`] is pure: manifest splitting and parsing, the sealed format, the binding that ties
//!    a ciphertext to its key/name/namespace, sealing and unsealing, `.gitops-seal.yaml` rules,
//!    the plaintext judge. No file system, no environment, no async. Benchmarks, fuzz targets,
//!    property tests, the CLI, the controller and the sync loop all call it.
//! 2. [`ops`] runs whole-file operations (encrypt, decrypt, set, unset, rekey, verify, import,
//!    scan) over the core, still without I/O: bytes in, bytes out.
//! 3. [`adapters`] are the edges: files and atomic writes, identity files, config and rule
//!    discovery, Git (index, history, hooks folder, merge-file), the private editing file, the
//!    Kubernetes API, HTTP endpoints and leader election. They feed bytes to [`ops`].
//! 4. [`controller`] (the in-cluster controller) and [`sync`] (the GitOps reconcile loop) run on
//!    top, over the adapters. The controller can run the sync loop in its process, so
//!    `controller` may call `sync`; `sync` never calls `controller`.
//! 5. The binary's `cli` module, last: it only parses arguments, resolves them once into one
//!    settings value, calls the library and prints; it words the hints (flags, commands) that
//!    the library's errors deliberately leave out. The library never prints.
//!
//! A layer may import from the layers below it, never from one above: [`core`] from nothing in
//! the crate, [`ops`] from [`core`], [`adapters`] from [`ops`] and [`core`], [`sync`] from
//! everything below it, [`controller`] from everything below it and [`sync`], and `cli` from
//! all of the library. `tests/it/docs.rs::no_module_imports_from_a_layer_above_its_own` reads
//! every module's `crate::` paths and fails on an arrow upwards.
//!
//! Every label, annotation, ConfigMap name and key, field manager and finalizer the product
//! writes or reads is defined once, in [`core::names`].
//!
//! Errors are one type, [`Error`]: a located [`ErrorKind`] (file, document, object, key) whose
//! typed cause (an I/O, age or Git error) is its `source()`, and whose [`Error::reason`] is
//! stable. No secret value is ever part of one.
//!
//! ## Unsealing one SealedSecret in memory
//!
//! What a controller or a sync loop does with a SealedSecret it was handed: parse, unseal with
//! the identities it holds, and turn a failure into a status condition whose reason is
//! [`Error::reason`] (`KeyMissing`, `DecryptFailed`, `ScopeMismatch`, `InvalidSpec`, ...).
//! Nothing touches the file system; values come back in zeroizing buffers.
//!
//! ```
//! use gitops_seal::core::{yaml, Identity, SealedSecret};
//! use gitops_seal::ops::{self, SealSettings};
//!
//! let cluster = Identity::generate();
//! let settings = SealSettings {
//!     recipients: vec![cluster.to_recipient().unwrap()],
//!     ..SealSettings::default()
//! };
//! let manifest = "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {password: hunter2}\n";
//! let sealed_text = ops::encrypt(manifest.as_bytes(), &settings, None)?.unwrap();
//!
//! let doc = &yaml::split_documents(&sealed_text)[0];
//! let sealed = SealedSecret::parse(doc)?;
//! let secret = sealed.unseal(std::slice::from_ref(&cluster), None)?;
//! assert_eq!(&secret.data["password"][..], b"hunter2");
//!
//! // A key that is not a recipient: a typed error with a stable reason, and no value in it.
//! let stranger = Identity::generate();
//! let err = sealed.unseal(&[stranger], None).unwrap_err();
//! assert_eq!(err.reason(), "KeyMissing");
//! assert_eq!(err.location.object.as_deref(), Some("SealedSecret prod/db"));
//! # Ok::<(), gitops_seal::Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod adapters;
pub mod controller;
pub mod core;
pub mod ops;
pub mod sync;

pub use crate::core::error::{Error, ErrorKind, Location};
