//! The edges: files, identities, configuration and rule discovery, Git, the editor.

pub mod config;
pub mod editor;
pub mod files;
pub mod git;
pub mod identity;
pub mod tree;
