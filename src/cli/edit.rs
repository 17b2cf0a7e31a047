//! `edit`: decrypt, let the user edit privately, check, seal again. The private file and the
//! editor are the adapter's ([`gitops_seal::adapters::editor`]); the rules an edit must keep
//! are the library's ([`ops::check_rule_recipients`], [`ops::check_resealed`]).

use std::path::Path;

use anyhow::{bail, Result};
use zeroize::Zeroizing;

use gitops_seal::adapters::editor::{self, Edited};
use gitops_seal::adapters::files;
use gitops_seal::ops;
use gitops_seal::Error;

use super::settings::Settings;

pub fn edit(file: &Path, force: bool, settings: &mut Settings) -> Result<i32> {
    let shown = file.display().to_string();
    // Before the editor opens: an edit that could not be written would be lost.
    files::check_in_place(file, force)?;
    let identities = settings.identities()?;
    let resolved = settings.file(file)?;
    let namespace = resolved.namespace.as_deref();
    let input = files::read_input(file).map_err(|e| Error::io(file, e))?;
    let previous =
        ops::previous_sealings(&input, &identities, namespace).map_err(|e| e.in_file(&shown))?;
    if settings.explicit_recipients().is_none() {
        ops::check_rule_recipients(&previous, resolved.rule.recipients.as_deref())
            .map_err(|e| e.in_file(&shown))?;
    }
    let plain = ops::decrypt(&input, &identities, namespace).map_err(|e| e.in_file(&shown))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secret.yaml".into());
    let edited = match editor::edit_privately(&name, plain.as_bytes())? {
        Edited::Interrupted => bail!("interrupted; {shown} is unchanged"),
        Edited::Failed(status) => bail!("the editor exited with {status}; {shown} is unchanged"),
        Edited::Saved(edited) => edited,
    };
    if edited[..] == plain.as_bytes()[..] {
        eprintln!("no changes; {shown} is unchanged");
        return Ok(0);
    }
    let seal = settings.seal_settings(&resolved, true);
    let sealed = ops::encrypt(&edited, &seal, Some(&previous))
        .map_err(|e| e.in_file(format!("{shown} (edited)")))?;
    let sealed: Zeroizing<String> =
        Zeroizing::new(sealed.unwrap_or_else(|| String::from_utf8_lossy(&edited).into_owned()));
    ops::check_resealed(&previous, sealed.as_bytes()).map_err(|e| e.in_file(&shown))?;
    files::write_in_place(file, sealed.as_bytes(), force).map_err(|e| Error::io(file, e))?;
    eprintln!("sealed {shown}");
    Ok(0)
}
