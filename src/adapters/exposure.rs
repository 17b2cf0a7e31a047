//! Feeds Git history to [`crate::ops::exposure`]: every blob reachable from any ref, once, with
//! the commit (id and committer time) that first held it, oldest first; then HEAD's tree.

use std::collections::HashMap;

use crate::adapters::git::{self, Blob, HistoryReport, MissingObject};
use crate::core::error::Error;
use crate::ops::exposure::{CommitInfo, ExposureAudit};

/// What the walk read, and what it could not.
#[derive(Debug, Default)]
pub struct ExposureWalk {
    pub history: HistoryReport,
    /// Objects HEAD's tree names that this clone does not hold.
    pub missing_at_head: Vec<MissingObject>,
    /// Blobs over `max_len` bytes, not read (`commit path`, or `HEAD path`).
    pub too_large: Vec<String>,
}

/// Walks all history into `audit`, then HEAD's tree. Nothing is skipped: a sealed value under
/// a path `.gitops-seal.yaml` ignores was exposed all the same.
pub fn walk(
    repo: &git2::Repository,
    max_len: u64,
    audit: &mut ExposureAudit,
) -> Result<ExposureWalk, Error> {
    let mut out = ExposureWalk::default();
    let mut commits: HashMap<git2::Oid, CommitInfo> = HashMap::new();
    let too_large = &mut out.too_large;
    out.history = git::walk_history(repo, &|_| false, max_len, &mut |oid, path, blob| {
        let info = match commits.get(&oid) {
            Some(info) => info.clone(),
            None => {
                let commit = repo.find_commit(oid)?;
                let info = CommitInfo {
                    id: oid.to_string(),
                    time: commit.committer().when().seconds(),
                };
                commits.insert(oid, info.clone());
                info
            }
        };
        match blob {
            Blob::Content(content) => audit.add_file(&info, path, content),
            Blob::TooLarge(_) => too_large.push(format!("commit {}: {path}", &info.id[..12])),
        }
        Ok(())
    })?;
    let head = match repo.head().and_then(|h| h.peel_to_commit()) {
        Ok(commit) => commit,
        // An empty repository (unborn HEAD): nothing is at HEAD.
        Err(e)
            if e.code() == git2::ErrorCode::UnbornBranch
                || e.code() == git2::ErrorCode::NotFound =>
        {
            return Ok(out)
        }
        Err(e) => return Err(e.into()),
    };
    let at = Head {
        id: head.id(),
        max_len,
    };
    head_tree(repo, &at, "", head.tree_id(), audit, &mut out)?;
    Ok(out)
}

struct Head {
    id: git2::Oid,
    max_len: u64,
}

fn head_tree(
    repo: &git2::Repository,
    at: &Head,
    prefix: &str,
    id: git2::Oid,
    audit: &mut ExposureAudit,
    out: &mut ExposureWalk,
) -> Result<(), Error> {
    let missing = |path: &str, kind, id| MissingObject {
        commit: at.id,
        path: path.to_string(),
        kind,
        id,
    };
    let tree = match repo.find_tree(id) {
        Ok(tree) => tree,
        Err(e) if e.code() == git2::ErrorCode::NotFound => {
            let shown = if prefix.is_empty() { "/" } else { prefix };
            out.missing_at_head.push(missing(shown, "tree", id));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let odb = repo.odb()?;
    for entry in tree.iter() {
        let name = String::from_utf8_lossy(entry.name_bytes());
        let path = if prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{prefix}/{name}")
        };
        match entry.kind() {
            Some(git2::ObjectType::Tree) => head_tree(repo, at, &path, entry.id(), audit, out)?,
            Some(git2::ObjectType::Blob) => {
                let read = odb.read_header(entry.id()).and_then(|(size, _)| {
                    if size as u64 > at.max_len {
                        Ok(None)
                    } else {
                        repo.find_blob(entry.id()).map(Some)
                    }
                });
                match read {
                    Ok(Some(blob)) => audit.add_head_file(&path, blob.content()),
                    Ok(None) => out.too_large.push(format!("HEAD: {path}")),
                    Err(e) if e.code() == git2::ErrorCode::NotFound => {
                        out.missing_at_head.push(missing(&path, "blob", entry.id()))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            _ => {}
        }
    }
    Ok(())
}
