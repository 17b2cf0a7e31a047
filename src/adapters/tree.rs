//! The files `scan` reads in a working tree.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::config;
use super::files::Input;
use crate::core::error::Error;

/// The files under `root` that `scan` reads: in name order, symlinks not followed, `.git`,
/// the nearest config's `ignore:` globs and (inside a repository) what Git ignores left out —
/// files Git ignores cannot reach a commit by accident, so a plaintext Secret kept out of Git
/// on purpose is not a finding. Files Git tracks anyway (`git add -f`) are kept. `root` itself,
/// when it is a file, is named rather than walked.
pub fn files_to_scan(root: &Path) -> Result<Vec<Input>, Error> {
    let root = fs::canonicalize(root).map_err(|e| Error::io(root, e))?;
    let mut walk = TreeWalk {
        config: config::find_config(&root)
            .map(|p| config::load_config(&p))
            .transpose()?,
        repo: git2::Repository::discover(&root)
            .ok()
            .filter(|r| r.workdir().is_some()),
        tracked: BTreeSet::new(),
    };
    if let Some(repo) = &walk.repo {
        walk.tracked = repo
            .index()?
            .iter()
            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
            .collect();
    }
    let mut files = Vec::new();
    walk.collect(&root, &mut files)?;
    Ok(files
        .into_iter()
        .map(|path| Input {
            walked: path != root,
            path,
        })
        .collect())
}

/// The files `scan` reads under a folder: in name order, symlinks not followed, `.git`, the
/// config's `ignore:` globs and (inside a repository) what Git ignores left out.
struct TreeWalk {
    config: Option<config::LoadedConfig>,
    repo: Option<git2::Repository>,
    /// The paths the index holds, relative to the work tree.
    tracked: BTreeSet<String>,
}

impl TreeWalk {
    fn skipped(&self, path: &Path) -> bool {
        if path.file_name().is_some_and(|n| n == ".git") {
            return true;
        }
        if let Some(c) = &self.config {
            if c.config
                .is_ignored(&config::relative_slash_path(&c.dir, path))
            {
                return true;
            }
        }
        let Some(repo) = &self.repo else { return false };
        let workdir = repo.workdir().unwrap_or(Path::new("/"));
        let Some(rel) = path
            .strip_prefix(workdir)
            .ok()
            .filter(|rel| !rel.as_os_str().is_empty())
        else {
            return false;
        };
        // Ignored, unless Git tracks it anyway (`git add -f`), or something under it.
        repo.is_path_ignored(rel).unwrap_or(false) && !self.tracks(rel)
    }

    fn tracks(&self, rel: &Path) -> bool {
        let rel = rel.to_string_lossy();
        let dir = format!("{rel}/");
        self.tracked.contains(rel.as_ref())
            || self
                .tracked
                .range(dir.clone()..)
                .next()
                .is_some_and(|p| p.starts_with(&dir))
    }

    fn collect(&self, path: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
        let io = |e| Error::io(path, e);
        let meta = fs::symlink_metadata(path).map_err(io)?;
        if meta.is_file() {
            out.push(path.to_path_buf());
        } else if meta.is_dir() {
            let mut entries: Vec<PathBuf> = fs::read_dir(path)
                .map_err(io)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(io)?;
            entries.sort();
            for entry in entries {
                if !self.skipped(&entry) {
                    self.collect(&entry, out)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_ignored_config_ignored_and_dot_git_are_left_out_but_forced_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = git2::Repository::init(root).unwrap();
        fs::write(root.join(".gitignore"), "secret/\n").unwrap();
        fs::write(root.join(".gitops-seal.yaml"), "ignore: [\"charts/**\"]\n").unwrap();
        for f in [
            "a.yaml",
            "secret/s.yaml",
            "secret/forced.yaml",
            "charts/c/t.yaml",
            "b/x.txt",
        ] {
            fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            fs::write(root.join(f), "x").unwrap();
        }
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("secret/forced.yaml")).unwrap();
        index.write().unwrap();
        let root = fs::canonicalize(root).unwrap();
        let found: Vec<String> = files_to_scan(&root)
            .unwrap()
            .iter()
            .map(|f| config::relative_slash_path(&root, &f.path))
            .collect();
        assert_eq!(
            found,
            [
                ".gitignore",
                ".gitops-seal.yaml",
                "a.yaml",
                "b/x.txt",
                "secret/forced.yaml"
            ]
        );
    }
}
