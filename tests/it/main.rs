//! Integration tests: one target, topic modules, a small harness that runs the built binary
//! on real files in a temporary folder.
//! They drive the binary through `sh`, `git`, editors and Unix permissions: Unix only.
#![cfg(unix)]

mod bad_input;
mod chart;
mod deploy;
mod docs;
mod edit_set;
mod exposure;
mod harness;
mod health;
mod hook;
mod hostile;
mod image;
mod import;
mod interop;
mod keys;
mod kube;
mod merge_driver;
mod pq;
mod properties;
mod roundtrip;
mod verify;
mod walk;
