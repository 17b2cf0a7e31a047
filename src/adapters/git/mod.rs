//! Git, as the hook, `scan`, the merge driver and `hook install` use it: one module per concern.
//!
//! * [`staged`]: which files the next commit records, found from the index (read directly with
//!   [`index`], else from the tree `git write-tree` makes, else through libgit2's diff).
//! * [`to_judge`]: those staged files less what the staged `.gitops-seal.yaml` ignores: what the
//!   pre-commit hook judges.
//! * [`restage`]: writing sealed content back to the index (and the working tree).
//! * [`history`]: every blob reachable from any ref, each read once, for `scan --history` and
//!   the exposure audit.
//! * [`head`]: the `.gitops-seal.yaml` of HEAD's tree, for a repository with no work tree.
//! * [`merge`]: Git's own text merge (`git merge-file`) and the merge driver's installation.
//!
//! This file holds what they share: the `git` command run with the environment this process
//! was given, and the process-wide libgit2 settings a local command takes. The hooks folder
//! and hook scripts are [`super::hooks`]. The read-only checkout that `sync` fetches is
//! [`super::gitsource`].

use std::process::Command;

pub mod head;
pub mod history;
pub mod index;
pub mod merge;
pub mod restage;
pub mod staged;
pub mod to_judge;

pub use head::{config_at_head, HeadConfig};
pub use history::{walk_history, Blob, HistoryReport, HistoryVisit, MissingObject};
pub use merge::{
    install_instructions, install_merge_driver, merge_file_in_place, merge_text, ATTRIBUTE_LINES,
    DRIVER_COMMAND, DRIVER_NAME,
};
pub use restage::{restage, seal_staged};
pub use staged::{staged_files, staged_files_by_diff, StagedFile};
pub use to_judge::staged_to_judge;

/// `SSL_CERT_FILE` as it was before [`without_tls_trust_store`], once that ran.
static CHILD_SSL_CERT_FILE: std::sync::OnceLock<Option<std::ffi::OsString>> =
    std::sync::OnceLock::new();

/// Points OpenSSL at an empty CA bundle for this process (libgit2 then skips loading the
/// system's, most of a local command's start), for commands that never open a connection
/// themselves. The `git` they run gets the variable as it was: Git may need it (a partial
/// clone fetches missing objects on demand). Call before any thread exists.
pub fn without_tls_trust_store() {
    #[cfg(unix)]
    {
        let _ = CHILD_SSL_CERT_FILE.set(std::env::var_os("SSL_CERT_FILE"));
        std::env::set_var("SSL_CERT_FILE", "/dev/null");
    }
}

/// `git`, with the environment this process was given.
fn git_command() -> Command {
    let mut c = Command::new("git");
    match CHILD_SSL_CERT_FILE.get() {
        Some(Some(original)) => {
            c.env("SSL_CERT_FILE", original);
        }
        Some(None) => {
            c.env_remove("SSL_CERT_FILE");
        }
        None => {}
    }
    c
}

/// Stops libgit2 from re-hashing every object it reads (a third of the hook's time in a
/// 10,000-file repository). The hook and `scan` only read objects to judge them; `git fsck`
/// is what checks a repository's integrity.
pub fn read_without_rehashing() {
    git2::opts::strict_hash_verification(false);
}
