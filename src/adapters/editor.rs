//! Editing plaintext in a private place: a 0600 file inside a 0700 folder (RAM-backed when
//! the system has one), the user's editor started on it, the file overwritten and removed
//! whatever happens (editor failure, abort, error, or panic in between) by the guard's `Drop`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use zeroize::Zeroizing;

use crate::core::error::Error;

/// A 0700 folder holding the plaintext file; wiped and removed on drop.
struct PrivateTemp {
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl PrivateTemp {
    fn create(name: &str, contents: &[u8]) -> Result<Self, Error> {
        // Prefer a RAM-backed runtime folder, so plaintext never reaches a disk.
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("gitops-seal-edit-")
            .tempdir_in(&base)
            .map_err(|e| Error::io(&base, e))?;
        let file = dir.path().join(name);
        write_private(dir.path(), &file, contents).map_err(|e| Error::io(&file, e))?;
        Ok(PrivateTemp { dir, file })
    }
}

#[cfg(unix)]
fn write_private(dir: &Path, file: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(_dir: &Path, file: &Path, contents: &[u8]) -> std::io::Result<()> {
    fs::write(file, contents)
}

impl Drop for PrivateTemp {
    fn drop(&mut self) {
        // Overwrite before unlinking: the editor may have left the file at any size.
        if let Ok(meta) = fs::metadata(&self.file) {
            if let Ok(mut f) = fs::OpenOptions::new().write(true).open(&self.file) {
                let zeros = vec![0u8; meta.len() as usize];
                let _ = f.write_all(&zeros);
                let _ = f.sync_all();
            }
        }
        // Editors leave swap and backup files beside it; the whole folder goes.
        let _ = fs::remove_dir_all(self.dir.path());
    }
}

/// Vim and Neovim keep registers and history in ~/.viminfo or shada and write swap files
/// beside the file: an old value would outlive the edit there. Started without either.
///
/// The editor's program (its first word) is found as the shell would find it, through `PATH`,
/// and then through symlinks: `vi`, `/usr/bin/vi`, `editor` or a link of one's own are vim on
/// most systems, and are recognised by the name of the file they resolve to, or by the name
/// given. A wrapper this cannot see through (`env vim`, a shell function or alias, a script
/// under another name) is not recognised; the README's `edit` section says how to make those
/// safe.
pub fn private_editor(editor: &str) -> String {
    let program = editor.split_whitespace().next().unwrap_or("");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let given = Path::new(program).file_name().and_then(|n| n.to_str());
    let resolved = resolve_program(program, &path).and_then(|p| fs::canonicalize(p).ok());
    let resolved_name = resolved
        .as_deref()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str());
    // The resolved file decides when there is one (`vi` may be busybox, which takes no `-i`);
    // a name that resolves to nothing is judged by itself.
    let vi = match resolved_name {
        Some(name) => is_vi_family(name),
        None => given.is_some_and(is_vi_family),
    };
    if vi {
        format!("{editor} -i NONE -n")
    } else {
        editor.to_string()
    }
}

/// The vi family by program name: `vi`, `vim*` (`vim.basic`, `vim.tiny`, `vimdiff`), `view`,
/// `ex`, `rvim`, `rview`, `nvim*`, and the GUI `gvim`/`gview`/`mvim`/`evim`.
pub fn is_vi_family(name: &str) -> bool {
    matches!(
        name,
        "vi" | "view" | "ex" | "rvim" | "rview" | "gvim" | "gview" | "mvim" | "evim"
    ) || name.starts_with("vim")
        || name.starts_with("nvim")
}

/// Where the shell would find `program`: as given when it holds a `/`, else the first
/// executable file of that name in `path`'s folders.
fn resolve_program(program: &str, path: &std::ffi::OsStr) -> Option<std::path::PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        return Some(Path::new(program).to_path_buf());
    }
    std::env::split_paths(path)
        .map(|dir| {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".").to_path_buf()
            } else {
                dir
            };
            dir.join(program)
        })
        .find(|candidate| is_executable_file(candidate))
}

#[cfg(unix)]
fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable_file(p: &Path) -> bool {
    p.is_file()
}

/// `$VISUAL`, else `$EDITOR`, else `vi` (blank values skipped).
pub fn editor() -> String {
    let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    var("VISUAL")
        .or_else(|| var("EDITOR"))
        .unwrap_or_else(|| "vi".into())
}

/// How an edit ended.
pub enum Edited {
    /// The edited bytes (possibly unchanged).
    Saved(Zeroizing<Vec<u8>>),
    /// The editor exited with a failure.
    Failed(ExitStatus),
    /// A hang-up or termination arrived while the editor ran.
    Interrupted,
}

/// Writes `contents` to a private file called `name`, runs the user's editor on it, and reads
/// it back; the file is wiped before this returns.
pub fn edit_privately(name: &str, contents: &[u8]) -> Result<Edited, Error> {
    let signals = Signals::catch()?;
    let temp = PrivateTemp::create(name, contents)?;
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{} \"$1\"", private_editor(&editor())))
        .arg("sh")
        .arg(&temp.file)
        .status()
        .map_err(|e| Error::io(Path::new("sh"), e))?;
    if signals.interrupted() {
        return Ok(Edited::Interrupted);
    }
    if !status.success() {
        return Ok(Edited::Failed(status));
    }
    let edited = super::files::read_input(&temp.file).map_err(|e| Error::io(&temp.file, e))?;
    Ok(Edited::Saved(edited))
}

/// A signal's default action would kill this process before the guard wipes the plaintext
/// file. A hang-up or termination is noted and honoured once the editor exits; Ctrl-C inside
/// vim is an everyday key, not a wish to abort: like git, it is ignored here (the editor, in
/// the same process group, gets it and decides).
struct Signals {
    #[cfg(unix)]
    interrupted: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Signals {
    #[cfg(unix)]
    fn catch() -> Result<Self, Error> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let interrupted = Arc::new(AtomicBool::new(false));
        let keyboard = Arc::new(AtomicBool::new(false));
        let register = |signal, flag: &Arc<AtomicBool>| {
            signal_hook::flag::register(signal, Arc::clone(flag))
                .map(drop)
                .map_err(Error::from)
        };
        for signal in [SIGINT, SIGQUIT] {
            register(signal, &keyboard)?;
        }
        for signal in [SIGHUP, SIGTERM] {
            register(signal, &interrupted)?;
        }
        Ok(Signals { interrupted })
    }

    #[cfg(not(unix))]
    fn catch() -> Result<Self, Error> {
        Ok(Signals {})
    }

    fn interrupted(&self) -> bool {
        #[cfg(unix)]
        {
            self.interrupted.load(std::sync::atomic::Ordering::SeqCst)
        }
        #[cfg(not(unix))]
        {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vi_family_is_known_by_name() {
        for name in [
            "vi",
            "vim",
            "vim.basic",
            "vim.tiny",
            "vimdiff",
            "view",
            "ex",
            "rvim",
            "rview",
            "nvim",
            "nvim-qt",
            "gvim",
            "mvim",
        ] {
            assert!(is_vi_family(name), "{name}");
        }
        for name in [
            "nano", "emacs", "code", "busybox", "editor", "vis", "exo", "env", "",
        ] {
            assert!(!is_vi_family(name), "{name}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn programs_are_found_through_path_and_symlinks() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("vim.basic");
        fs::write(&real, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o755)).unwrap();
        symlink(&real, dir.path().join("myedit")).unwrap();
        let plain = dir.path().join("notexec");
        fs::write(&plain, "").unwrap();
        let path = std::env::join_paths(["/nonexistent".as_ref(), dir.path()]).unwrap();
        let found = resolve_program("myedit", &path).unwrap();
        assert_eq!(found, dir.path().join("myedit"));
        assert_eq!(
            fs::canonicalize(found).unwrap().file_name().unwrap(),
            "vim.basic"
        );
        assert_eq!(resolve_program("notexec", &path), None);
        assert_eq!(
            resolve_program("/x/vim", &path).as_deref(),
            Some(Path::new("/x/vim"))
        );
        let link = dir.path().join("myedit").display().to_string();
        assert_eq!(private_editor(&link), format!("{link} -i NONE -n"));
    }

    #[test]
    fn vim_and_neovim_start_without_history_or_swap_files() {
        assert_eq!(private_editor("vim"), "vim -i NONE -n");
        assert_eq!(
            private_editor("/usr/bin/nvim -p"),
            "/usr/bin/nvim -p -i NONE -n"
        );
        assert_eq!(private_editor("nano"), "nano");
        assert_eq!(private_editor("code --wait"), "code --wait");
    }

    #[test]
    fn the_private_file_is_wiped_and_its_folder_removed() {
        let temp = PrivateTemp::create("s.yaml", b"password: hunter2\n").unwrap();
        let (dir, file) = (temp.dir.path().to_path_buf(), temp.file.clone());
        assert_eq!(fs::read(&file).unwrap(), b"password: hunter2\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&file), 0o600);
        }
        fs::write(dir.join("s.yaml.swp"), b"left by an editor").unwrap();
        drop(temp);
        assert!(!dir.exists());
    }
}
