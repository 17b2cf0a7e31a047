//! The `.gitops-seal.yaml` at the root of HEAD's tree, for `scan --history` in a repository
//! with no work tree (bare) or whose work tree does not hold it (`--no-checkout`).

use super::history::{is_missing, MissingObject};
use crate::core::error::{Error, ErrorKind};
use crate::core::rules::{Config, CONFIG_FILE_NAME};

/// The `.gitops-seal.yaml` at the root of HEAD's tree, for a repository without a work tree
/// (bare) or whose work tree does not hold it (a clone made with `--no-checkout`).
#[derive(Debug)]
pub enum HeadConfig {
    /// No HEAD yet, or HEAD's tree has no config.
    Absent,
    Found(Config),
    /// HEAD's tree names a config this clone does not hold.
    Missing(MissingObject),
}

pub fn config_at_head(repo: &git2::Repository) -> Result<HeadConfig, Error> {
    let Ok(commit) = repo.head().and_then(|h| h.peel_to_commit()) else {
        return Ok(HeadConfig::Absent);
    };
    let tree = commit.tree()?;
    let Some(entry) = tree.get_name(CONFIG_FILE_NAME) else {
        return Ok(HeadConfig::Absent);
    };
    let shown = format!("{CONFIG_FILE_NAME} (HEAD)");
    let blob = match repo.find_blob(entry.id()) {
        Ok(blob) => blob,
        Err(e) if is_missing(&e) => {
            return Ok(HeadConfig::Missing(MissingObject {
                commit: commit.id(),
                path: CONFIG_FILE_NAME.to_string(),
                kind: "blob",
                id: entry.id(),
            }))
        }
        Err(e) => return Err(Error::from(e).in_file(shown)),
    };
    let text = std::str::from_utf8(blob.content()).map_err(|e| {
        Error::from(ErrorKind::NotUtf8 {
            offset: e.valid_up_to(),
        })
        .in_file(shown.clone())
    })?;
    Ok(HeadConfig::Found(
        Config::parse(text).map_err(|e| Error::from(e).in_file(shown))?,
    ))
}
