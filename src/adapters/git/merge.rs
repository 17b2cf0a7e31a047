//! Git's own three-way text merge (`git merge-file`), for what the merge driver cannot merge
//! value by value, and installing the merge driver (its `git config` entries and the
//! `.gitattributes` lines).

use std::fs;
use std::io;
use std::path::Path;

use super::git_command;
use crate::core::error::{Error, ErrorKind};

/// Git's own three-way text merge of three texts. Returns the merged text and whether it
/// holds conflict markers.
pub fn merge_text(
    base: &str,
    ours: &str,
    theirs: &str,
    marker_size: usize,
) -> Result<(String, bool), Error> {
    let dir = tempfile::tempdir()?;
    let (b, o, t) = (
        dir.path().join("base"),
        dir.path().join("ours"),
        dir.path().join("theirs"),
    );
    fs::write(&b, base)?;
    fs::write(&o, ours)?;
    fs::write(&t, theirs)?;
    let out = git_command()
        .arg("merge-file")
        .arg("-p")
        .arg(format!("--marker-size={marker_size}"))
        .args(["-L", "ours", "-L", "base", "-L", "theirs"])
        .arg(&o)
        .arg(&b)
        .arg(&t)
        .output()?;
    // Exit status: 0 clean, the number of conflicts (>0), or negative (>127) on error.
    match out.status.code() {
        Some(0) => Ok((String::from_utf8_lossy(&out.stdout).into_owned(), false)),
        Some(n) if (1..=127).contains(&n) => {
            Ok((String::from_utf8_lossy(&out.stdout).into_owned(), true))
        }
        _ => Err(io::Error::other(format!(
            "git merge-file failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .into()),
    }
}

/// Git's text merge of whole files, in place on `ours`, as Git would do without a driver.
/// Returns whether conflicts remain.
pub fn merge_file_in_place(
    ours: &Path,
    base: &Path,
    theirs: &Path,
    marker_size: usize,
) -> Result<bool, Error> {
    let status = git_command()
        .arg("merge-file")
        .arg(format!("--marker-size={marker_size}"))
        .args(["-L", "ours", "-L", "base", "-L", "theirs"])
        .arg(ours)
        .arg(base)
        .arg(theirs)
        .status()?;
    match status.code() {
        Some(0) => Ok(false),
        Some(n) if (1..=127).contains(&n) => Ok(true),
        _ => Err(io::Error::other("git merge-file failed").into()),
    }
}

pub const DRIVER_NAME: &str = "gitops-seal";
pub const DRIVER_COMMAND: &str = "gitops-seal merge-driver --marker-size=%L %O %A %B %P";
pub const ATTRIBUTE_LINES: [&str; 3] = [
    "*.yaml merge=gitops-seal",
    "*.yml merge=gitops-seal",
    "*.json merge=gitops-seal",
];

/// What `--print` shows.
pub fn install_instructions() -> String {
    let mut s = String::from("# Run in the repository:\n");
    s.push_str(&format!(
        "git config merge.{DRIVER_NAME}.name \"gitops-seal SealedSecret merge\"\n"
    ));
    s.push_str(&format!(
        "git config merge.{DRIVER_NAME}.driver \"{DRIVER_COMMAND}\"\n"
    ));
    s.push_str("# and add to .gitattributes:\n");
    for l in ATTRIBUTE_LINES {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// Writes the driver's `git config` entries (repository-local) and the `.gitattributes`
/// lines at the work tree's root, leaving lines already there alone.
pub fn install_merge_driver(start: &Path) -> Result<std::path::PathBuf, Error> {
    let repo = git2::Repository::discover(start)?;
    let mut config = repo.config()?.open_level(git2::ConfigLevel::Local)?;
    config.set_str(
        &format!("merge.{DRIVER_NAME}.name"),
        "gitops-seal SealedSecret merge",
    )?;
    config.set_str(&format!("merge.{DRIVER_NAME}.driver"), DRIVER_COMMAND)?;
    let root = repo.workdir().ok_or_else(|| {
        Error::from(ErrorKind::Invalid(
            "a bare repository has no .gitattributes".into(),
        ))
    })?;
    let path = root.join(".gitattributes");
    let existing = fs::read_to_string(&path).unwrap_or_default();
    let mut text = existing.clone();
    for line in ATTRIBUTE_LINES {
        if !existing.lines().any(|l| l.trim() == line) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(line);
            text.push('\n');
        }
    }
    if text != existing {
        crate::adapters::files::write_atomic(&path, text.as_bytes())
            .map_err(|e| Error::io(&path, e))?;
    }
    Ok(path)
}
