//! `edit`: decrypt to a private temp file, run the editor, seal again. The temp file is 0600
//! inside a 0700 folder, and is overwritten and removed whatever happens (editor failure,
//! abort, error, or panic in between) by the guard's `Drop`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use zeroize::Zeroizing;

use gitops_seal::adapters::files;
use gitops_seal::ops::{self, SealSettings};
use gitops_seal::Error;

use super::args::{IdentityArgs, NamespaceArg, RecipientArgs};
use super::commands::{explicit_recipients, load_identities, Rules};

/// A 0700 folder holding the plaintext file; wiped and removed on drop.
struct PrivateTemp {
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl PrivateTemp {
    fn create(name: &str, contents: &[u8]) -> Result<Self> {
        // Prefer a RAM-backed runtime folder, so plaintext never reaches a disk.
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("gitops-seal-edit-")
            .tempdir_in(base)
            .context("creating the private temp folder")?;
        let file = dir.path().join(name);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&file)?;
            f.write_all(contents)?;
            f.sync_all()?;
        }
        #[cfg(not(unix))]
        fs::write(&file, contents)?;
        Ok(PrivateTemp { dir, file })
    }
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
fn private_editor(editor: &str) -> String {
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

fn editor() -> String {
    std::env::var("VISUAL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".into())
}

pub fn edit(
    file: &Path,
    ids: &IdentityArgs,
    recipients: &RecipientArgs,
    ns: &NamespaceArg,
) -> Result<i32> {
    let shown = file.display().to_string();
    let identities = load_identities(ids)?;
    let explicit = explicit_recipients(recipients)?;
    let info = Rules::default().for_file(file)?;
    let namespace = ns.namespace.clone().or(info.namespace.clone());
    let input = files::read_input(file).map_err(|e| Error::io(file, e))?;
    let previous = ops::previous_sealings(&input, &identities, namespace.as_deref())
        .map_err(|e| e.in_file(&shown))?;
    // A recipient slipped into the file must not receive every future value.
    if explicit.is_none() {
        if let Some(rule) = &info.recipients {
            for (sealed, _) in &previous.entries {
                let listed: Vec<_> = sealed
                    .recipients
                    .iter()
                    .filter_map(|r| r.parse().ok())
                    .collect();
                if !ops::same_recipients(rule, &listed) {
                    return Err(
                        Error::from(gitops_seal::ErrorKind::RecipientsDifferFromRule {
                            found: sealed.recipients.join(", "),
                            expected: rule
                                .iter()
                                .map(|r| r.to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                        })
                        .in_file(&shown)
                        .in_object(sealed.object_ref())
                        .into(),
                    );
                }
            }
        }
    }
    let plain =
        ops::decrypt(&input, &identities, namespace.as_deref()).map_err(|e| e.in_file(&shown))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secret.yaml".into());
    // A signal's default action would kill this process before the guard below wipes the
    // plaintext file. A hang-up or termination is noted and honoured once the editor exits.
    let interrupted = Arc::new(AtomicBool::new(false));
    // Ctrl-C inside vim is an everyday key, not a wish to abort: like git, ignore it here
    // (the editor, in the same process group, gets it and decides).
    let keyboard = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGQUIT] {
        signal_hook::flag::register(signal, Arc::clone(&keyboard))
            .context("preparing for signals")?;
    }
    for signal in [SIGHUP, SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&interrupted))
            .context("preparing for signals")?;
    }
    let temp = PrivateTemp::create(&name, plain.as_bytes())?;
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{} \"$1\"", private_editor(&editor())))
        .arg("sh")
        .arg(&temp.file)
        .status()
        .context("starting the editor")?;
    if interrupted.load(Ordering::SeqCst) {
        bail!("interrupted; {shown} is unchanged");
    }
    if !status.success() {
        bail!("the editor exited with {status}; {shown} is unchanged");
    }
    let edited = files::read_input(&temp.file).context("reading the edited file")?;
    drop(temp);
    if edited[..] == plain.as_bytes()[..] {
        eprintln!("no changes; {shown} is unchanged");
        return Ok(0);
    }
    let settings = SealSettings {
        recipients: explicit
            .clone()
            .or(info.recipients.clone())
            .unwrap_or_default(),
        scope_override: None,
        default_scope: info.scope.unwrap_or_default(),
        bind_namespace: namespace,
        follow_previous: explicit.is_none(),
    };
    let sealed = ops::encrypt(&edited, &settings, Some(&previous))
        .map_err(|e| e.in_file(format!("{shown} (edited)")))?;
    let sealed: Zeroizing<String> =
        Zeroizing::new(sealed.unwrap_or_else(|| String::from_utf8_lossy(&edited).into_owned()));
    // `encrypt` seals what is a v1 Secret. A Secret whose apiVersion, kind or name the edit
    // changed is not one any more and would be written back in plaintext: every Secret that
    // was sealed must come out sealed, under the same name.
    let after = ops::sealed_names(sealed.as_bytes()).unwrap_or_default();
    let missing = previous
        .entries
        .iter()
        .map(|(s, _)| (s.namespace.clone(), s.name.clone()))
        .find(|id| !after.contains(id));
    if let Some((namespace, name)) = missing {
        let object = gitops_seal::core::secret::object_ref("Secret", namespace.as_deref(), &name);
        bail!(
            "{shown}: {object} is no longer a sealed Secret after the edit (its apiVersion, kind or name changed): it would be written in plaintext; nothing written. To rename or delete a Secret, use `decrypt` and `encrypt`, or delete its SealedSecret document."
        );
    }
    if !ops::scan_content(sealed.as_bytes()).findings.is_empty() {
        bail!("{shown}: the edited file would still hold a plaintext Secret; nothing written");
    }
    files::write_atomic(file, sealed.as_bytes()).map_err(|e| Error::io(file, e))?;
    eprintln!("sealed {shown}");
    Ok(0)
}
