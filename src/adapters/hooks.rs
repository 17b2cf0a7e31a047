//! Installing and removing gitops-seal's Git hooks, and finding the hooks folder. A hook that
//! was there before is kept beside ours with a `.local` suffix and run first; removing ours puts
//! it back. Nothing is printed here: the caller reports the [`HookChange`]s.

use std::fs;
use std::path::{Path, PathBuf};

use crate::core::error::{Error, ErrorKind};

/// The hooks gitops-seal installs. `pre-merge-commit` too, so that a merge commit cannot bring
/// in a plaintext Secret committed elsewhere with `--no-verify`; it only ever refuses (sealing
/// in the middle of a merge would surprise more than help).
pub const HOOKS: [&str; 2] = ["pre-commit", "pre-merge-commit"];

/// The line that marks a hook script as ours.
pub const HOOK_MARKER: &str = "# gitops-seal pre-commit hook";

/// The hooks folder: `core.hooksPath` (relative to the work tree) or `.git/hooks`.
pub fn hooks_dir(repo: &git2::Repository) -> Result<std::path::PathBuf, git2::Error> {
    let config = repo.config()?;
    if let Ok(p) = config.get_path("core.hooksPath") {
        if p.is_absolute() {
            return Ok(p);
        }
        let root = repo.workdir().unwrap_or_else(|| repo.path());
        return Ok(root.join(p));
    }
    // Linked worktrees share the main repository's hooks: git runs them from the common dir.
    Ok(repo.commondir().join("hooks"))
}

/// One thing [`install`] or [`uninstall`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookChange {
    /// A hook that was not ours, now kept at this path and run first.
    Kept(PathBuf),
    Installed(PathBuf),
    Removed(PathBuf),
    /// Ours removed, and the one kept beside it put back (its name).
    Restored(String),
}

/// The script of a hook: runs a kept `.local` hook first, then `gitops-seal hook run`, through
/// `fallback` (the binary that installed it, shell-quoted) when `gitops-seal` is not on the
/// PATH of whoever commits (a GUI client, say): a hook that cannot run must not silently pass.
pub fn script(fix: bool, fallback: &str) -> String {
    format!(
        "#!/bin/sh\n{HOOK_MARKER}. Installed by `gitops-seal hook install`; remove it with `gitops-seal hook uninstall`.\n\
         # A hook that was here before is kept beside it with a .local suffix and runs first.\n\
         local_hook=\"$0.local\"\n\
         if [ -x \"$local_hook\" ]; then \"$local_hook\" \"$@\" || exit $?; fi\n\
         seal=gitops-seal\n\
         command -v \"$seal\" >/dev/null 2>&1 || seal={fallback}\n\
         exec \"$seal\" hook run{fix}\n",
        fix = if fix { " --fix" } else { "" }
    )
}

fn is_ours(path: &Path) -> bool {
    fs::read_to_string(path).is_ok_and(|t| t.contains(HOOK_MARKER))
}

fn conflict(message: String) -> Error {
    Error::from(ErrorKind::Invalid(message))
}

/// Installs the hooks (`--fix` on pre-commit only). Every hook is checked before any is
/// written: a hook that is not ours is refused unless `force`, which keeps it as `NAME.local`.
pub fn install(
    repo: &git2::Repository,
    fix: bool,
    force: bool,
    fallback: &str,
) -> Result<Vec<HookChange>, Error> {
    let dir = hooks_dir(repo)?;
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    for name in HOOKS {
        let hook = dir.join(name);
        if hook.exists() && !is_ours(&hook) {
            if !force {
                return Err(conflict(format!(
                    "{} already exists and is not gitops-seal's; rerun with --force to keep it as {name}.local and call it first",
                    hook.display()
                )));
            }
            let local = dir.join(format!("{name}.local"));
            if local.exists() {
                return Err(conflict(format!(
                    "{} already exists; move it away first",
                    local.display()
                )));
            }
        }
    }
    let mut changes = Vec::new();
    for name in HOOKS {
        let hook = dir.join(name);
        if hook.exists() && !is_ours(&hook) {
            let local = dir.join(format!("{name}.local"));
            fs::rename(&hook, &local).map_err(|e| Error::io(&hook, e))?;
            changes.push(HookChange::Kept(local));
        }
        let text = script(fix && name == "pre-commit", fallback);
        super::files::write_atomic(&hook, text.as_bytes()).map_err(|e| Error::io(&hook, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&hook, fs::Permissions::from_mode(0o755))
                .map_err(|e| Error::io(&hook, e))?;
        }
        changes.push(HookChange::Installed(hook));
    }
    Ok(changes)
}

/// Removes our hooks and puts back the ones kept beside them. Hooks that are not ours are left
/// alone; finding none of ours is an error.
pub fn uninstall(repo: &git2::Repository) -> Result<Vec<HookChange>, Error> {
    let dir = hooks_dir(repo)?;
    let mut changes = Vec::new();
    for name in HOOKS {
        let hook = dir.join(name);
        if !is_ours(&hook) {
            continue;
        }
        fs::remove_file(&hook).map_err(|e| Error::io(&hook, e))?;
        let local = dir.join(format!("{name}.local"));
        if local.exists() {
            fs::rename(&local, &hook).map_err(|e| Error::io(&local, e))?;
            changes.push(HookChange::Restored(name.to_string()));
        } else {
            changes.push(HookChange::Removed(hook));
        }
    }
    if changes.is_empty() {
        return Err(conflict(format!(
            "no gitops-seal hook in {}; hooks that are not gitops-seal's are left alone",
            dir.display()
        )));
    }
    Ok(changes)
}
