//! Kubernetes tests: the real `kube::Client` and `kube::runtime` over HTTP against the
//! project's test API server (or, with `GITOPS_SEAL_TEST_KUBECONFIG`, a real cluster).

mod client;
mod conformance;
mod controller;
pub mod harness;
mod production;
mod rotation;
mod sync;
mod sync_entry_points;
mod sync_guards;
