//! The edges: files, identities, configuration discovery.

pub mod config;
pub mod editor;
pub mod files;
pub mod git;
pub mod identity;
pub mod tree;
