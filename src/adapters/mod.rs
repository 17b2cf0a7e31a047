//! The edges: files, identities, configuration and rule discovery, Git, the editor, the
//! Kubernetes API.

pub mod config;
pub mod editor;
pub mod exposure;
pub mod fetch;
pub mod files;
pub mod git;
pub mod gitsource;
pub mod hooks;
pub mod http;
pub mod identity;
pub mod judged;
pub mod known_hosts;
pub mod kube;
pub mod leader;
pub mod tree;
