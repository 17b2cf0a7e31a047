//! What the pre-commit hook judges: the staged files (see [`super::staged`]) less those the
//! `ignore:` of the nearest *staged* `.gitops-seal.yaml` skips.

use std::collections::HashMap;

use super::staged::{IndexSource, StagedFile};
use crate::core::error::{Error, ErrorKind};
use crate::core::rules::{Config, CONFIG_FILE_NAME};

/// `ignore:` for the hook: from the `.gitops-seal.yaml` nearest each staged file, as `scan`
/// and `verify` pick it, but read from the index (what the commit records) and only inside the
/// repository: an untracked config, or one above the work tree, cannot let a file through.
struct StagedIgnores<'r> {
    index: &'r IndexSource,
    repo: &'r git2::Repository,
    /// Config folder (relative, "" for the root) -> its parsed config, if the index has one.
    configs: HashMap<String, Option<Config>>,
}

impl<'r> StagedIgnores<'r> {
    fn config_in(&mut self, dir: &str) -> Result<Option<&Config>, Error> {
        if !self.configs.contains_key(dir) {
            let path = if dir.is_empty() {
                CONFIG_FILE_NAME.to_string()
            } else {
                format!("{dir}/{CONFIG_FILE_NAME}")
            };
            let config = match self.index.blob_at(self.repo, &path) {
                None => None,
                Some(id) => {
                    let blob = self.repo.find_blob(id)?;
                    let text = std::str::from_utf8(blob.content()).map_err(|e| {
                        Error::from(ErrorKind::NotUtf8 {
                            offset: e.valid_up_to(),
                        })
                        .in_file(format!("{path} (staged)"))
                    })?;
                    Some(Config::parse(text).map_err(|e| Error::from(e).in_file(&path))?)
                }
            };
            self.configs.insert(dir.to_string(), config);
        }
        Ok(self.configs[dir].as_ref())
    }

    /// Whether the `ignore:` of the config nearest `path` (in the index) skips it.
    fn ignored(&mut self, path: &str) -> Result<bool, Error> {
        let mut dir = path;
        loop {
            dir = dir.rsplit_once('/').map_or("", |(d, _)| d);
            if let Some(config) = self.config_in(dir)? {
                let rel = if dir.is_empty() {
                    path
                } else {
                    &path[dir.len() + 1..]
                };
                return Ok(config.is_ignored(rel));
            }
            if dir.is_empty() {
                return Ok(false);
            }
        }
    }
}

/// The files staged for the next commit (see [`staged_files`]) that the nearest staged
/// config's `ignore:` does not skip: what the hook judges.
pub fn staged_to_judge(repo: &git2::Repository) -> Result<Vec<StagedFile>, Error> {
    let index = IndexSource::open(repo)?;
    let staged = index.staged(repo)?;
    let mut ignores = StagedIgnores {
        index: &index,
        repo,
        configs: Default::default(),
    };
    let mut out = Vec::with_capacity(staged.len());
    for file in staged {
        if !ignores.ignored(&file.path)? {
            out.push(file);
        }
    }
    Ok(out)
}
