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
pub fn private_editor(editor: &str) -> String {
    let program = editor.split_whitespace().next().unwrap_or("");
    let name = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if matches!(name, "vim" | "nvim" | "gvim" | "mvim" | "vimdiff") {
        format!("{editor} -i NONE -n")
    } else {
        editor.to_string()
    }
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
