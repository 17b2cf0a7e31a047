//! Integration tests: one target, topic modules, a small harness that runs the built binary
//! on real files in a temporary folder.

mod bad_input;
mod edit_set;
mod harness;
mod hook;
mod interop;
mod merge_driver;
mod properties;
mod roundtrip;
mod verify;
