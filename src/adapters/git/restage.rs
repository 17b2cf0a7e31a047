//! Writing to the index: staged content replaced, and a staged plaintext Secret sealed in the
//! index and in the working tree (the hook's `--fix`).

use std::path::Path;

use crate::core::error::{Error, ErrorKind};
use crate::ops;

/// Replaces the staged content of `path` with `content` and writes the index.
pub fn restage(repo: &git2::Repository, path: &str, content: &[u8]) -> Result<(), Error> {
    let blob = repo.blob(content)?;
    let mut index = repo.index()?;
    let mut entry = index.get_path(Path::new(path), 0).ok_or_else(|| {
        git2::Error::new(
            git2::ErrorCode::NotFound,
            git2::ErrorClass::Index,
            format!("{path} is not in the index"),
        )
    })?;
    entry.id = blob;
    entry.file_size = u32::try_from(content.len()).unwrap_or(u32::MAX);
    index.add(&entry)?;
    Ok(index.write()?)
}

/// Seals the staged content of `path` with `settings`, updates the index, and seals the
/// working-tree file too when it holds plaintext. The working tree goes first: if it fails,
/// the index (what gets committed) is untouched.
pub fn seal_staged(
    repo: &git2::Repository,
    path: &str,
    settings: &ops::SealSettings,
) -> Result<(), Error> {
    let workdir = repo.workdir().ok_or_else(|| {
        Error::from(ErrorKind::Invalid(
            "a bare repository has no work tree".into(),
        ))
    })?;
    let file = workdir.join(path);
    let entry = repo.index()?.get_path(Path::new(path), 0).ok_or_else(|| {
        git2::Error::new(
            git2::ErrorCode::NotFound,
            git2::ErrorClass::Index,
            format!("{path} left the index"),
        )
    })?;
    let staged = zeroize::Zeroizing::new(repo.find_blob(entry.id)?.content().to_vec());
    let sealed = ops::encrypt(&staged, settings, None)
        .map_err(|e| e.in_file(path))?
        .ok_or_else(|| Error::from(ErrorKind::Invalid("nothing to seal".into())).in_file(path))?;
    if let Ok(current) = crate::adapters::files::read_input(&file) {
        let write = |text: &str| {
            // Never through another hard link (the hook checks first and says how to proceed).
            crate::adapters::files::write_in_place(&file, text.as_bytes(), false)
                .map_err(|e| Error::io(&file, e))
        };
        if current[..] == staged[..] {
            write(&sealed)?;
        } else if !ops::scan_content(&current).findings.is_empty() {
            if let Some(worktree) =
                ops::encrypt(&current, settings, None).map_err(|e| e.in_file(path))?
            {
                write(&worktree)?;
            }
        }
    }
    restage(repo, path, sealed.as_bytes())?;
    Ok(())
}
