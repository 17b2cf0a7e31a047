//! The files the next commit records: the index compared with HEAD. Read from the index
//! directly with its cache-tree, as Git does (see [`super::index`]); from the tree
//! `git write-tree` makes of an index that reader does not handle; without Git, through
//! libgit2's diff. Reads the index, never the working tree.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;

use super::git_command;
use super::index::Index;

/// A file the next commit would record: added, copied, modified or renamed in the index.
#[derive(Debug, Clone)]
pub struct StagedFile {
    pub path: String,
    pub blob: git2::Oid,
}

fn head_tree(repo: &git2::Repository) -> Result<Option<git2::Tree<'_>>, git2::Error> {
    match repo.head() {
        Ok(head) => Ok(Some(head.peel_to_tree()?)),
        Err(e)
            if e.code() == git2::ErrorCode::UnbornBranch
                || e.code() == git2::ErrorCode::NotFound =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The files staged for the next commit, compared with HEAD (everything, before the first
/// commit), through libgit2's tree-to-index diff. Reads the index, never the working tree.
pub fn staged_files_by_diff(repo: &git2::Repository) -> Result<Vec<StagedFile>, git2::Error> {
    let head_tree = head_tree(repo)?;
    let index = repo.index()?;
    let mut opts = git2::DiffOptions::new();
    opts.include_typechange(true);
    let diff = repo.diff_tree_to_index(head_tree.as_ref(), Some(&index), Some(&mut opts))?;
    let mut out = Vec::new();
    collect_staged(&diff, b"", &mut out);
    Ok(out)
}

/// The regular files `diff` adds, modifies, copies, renames or type-changes, their paths under
/// `folder` (`""`: the root).
fn collect_staged(diff: &git2::Diff<'_>, folder: &[u8], out: &mut Vec<StagedFile>) {
    for delta in diff.deltas() {
        use git2::Delta::*;
        if !matches!(
            delta.status(),
            Added | Modified | Copied | Renamed | Typechange
        ) {
            continue;
        }
        let file = delta.new_file();
        // Files and symlinks, whose blob (the target text) is judged as a file's is: sync
        // never reads a symlink, but the text is in Git all the same. Not submodules.
        if !matches!(
            file.mode(),
            git2::FileMode::Blob | git2::FileMode::BlobExecutable | git2::FileMode::Link
        ) {
            continue;
        }
        if let Some(path) = file.path_bytes() {
            let mut full = folder.to_vec();
            if !full.is_empty() {
                full.push(b'/');
            }
            full.extend_from_slice(path);
            // A name that is not UTF-8 is still judged, and shown lossily.
            out.push(StagedFile {
                path: String::from_utf8_lossy(&full).into_owned(),
                blob: file.id(),
            });
        }
    }
}

/// The index the next commit is made from: `$GIT_INDEX_FILE` when Git sets it for the hook
/// (`git commit -a`, `git commit PATH`), relative to the current folder as libgit2 takes it;
/// else the repository's own.
/// Whether it is Git's temporary one.
fn index_path(repo: &git2::Repository) -> (std::path::PathBuf, bool) {
    match std::env::var_os("GIT_INDEX_FILE") {
        Some(f) if !f.is_empty() => (std::path::PathBuf::from(f), true),
        _ => (repo.path().join("index"), false),
    }
}

/// The index read directly (see [`super::index`]); `None` when the reader does not
/// handle it, and the caller goes through libgit2.
fn read_index(repo: &git2::Repository) -> Option<Index> {
    let (path, from_env) = index_path(repo);
    match fs::read(&path) {
        Ok(bytes) => super::index::parse(&bytes).ok(),
        // No index yet in a new repository: nothing is staged. (An index Git names that is
        // not there is not taken for an empty one.)
        Err(e) if e.kind() == io::ErrorKind::NotFound && !from_env => Some(Default::default()),
        Err(_) => None,
    }
}

const REGULAR: u32 = 0o100644;
const EXECUTABLE: u32 = 0o100755;
/// A symlink: its blob is the target text, judged as a file's content is.
const SYMLINK: u32 = 0o120000;

/// The staged files from a directly read index, as `git commit` builds its tree from it: a
/// folder with a valid cache-tree node whose tree object is present is committed as that tree
/// (Git's `cache_tree_update` takes such a node as it is, whatever the entries under it say),
/// so its files are those the tree holds and HEAD's tree there does not; when that tree is
/// HEAD's, nothing under it changed and it is not read at all. Elsewhere an entry is staged
/// when HEAD does not hold it with the same blob and mode.
fn staged_from_index(
    repo: &git2::Repository,
    index: &Index,
) -> Result<Vec<StagedFile>, git2::Error> {
    let head = head_tree(repo)?;
    let odb = repo.odb()?;
    // Folder -> whether the cache-tree settles it (its files, if any, are already listed).
    let mut settled: HashMap<&[u8], bool> = HashMap::new();
    let mut out = Vec::new();
    // The last folder found settled: the index is sorted, so the entries under it follow.
    let mut skipping: Option<&[u8]> = None;
    'entries: for entry in &index.entries {
        let path = entry.path.as_slice();
        if skipping
            .is_some_and(|f| path.len() > f.len() && path[f.len()] == b'/' && path.starts_with(f))
        {
            continue;
        }
        // Folders from the root down: the first one the cache-tree settles decides.
        let folders = std::iter::once(0).chain(
            path.iter()
                .enumerate()
                .filter(|(_, &c)| c == b'/')
                .map(|(i, _)| i),
        );
        for end in folders {
            let folder = &path[..end];
            let done = match settled.get(folder) {
                Some(&done) => done,
                None => {
                    let done = match index.trees.get(folder) {
                        Some(tree) => {
                            let tree = git2::Oid::from_bytes(tree)?;
                            let at_head = head.as_ref().and_then(|h| head_subtree(h, folder));
                            if at_head == Some(tree) {
                                true
                            } else if odb.exists(tree) {
                                let old = at_head.map(|id| repo.find_tree(id)).transpose()?;
                                let new = repo.find_tree(tree)?;
                                let mut opts = git2::DiffOptions::new();
                                opts.include_typechange(true);
                                let diff = repo.diff_tree_to_tree(
                                    old.as_ref(),
                                    Some(&new),
                                    Some(&mut opts),
                                )?;
                                collect_staged(&diff, folder, &mut out);
                                true
                            } else {
                                // Git writes this folder anew from the entries.
                                false
                            }
                        }
                        None => false,
                    };
                    settled.insert(folder, done);
                    done
                }
            };
            if done {
                skipping = Some(folder);
                continue 'entries;
            }
        }
        if entry.intent_to_add
            || !(entry.mode == REGULAR || entry.mode == EXECUTABLE || entry.mode == SYMLINK)
        {
            continue;
        }
        let oid = git2::Oid::from_bytes(&entry.oid)?;
        if let Some(head) = &head {
            let recorded = byte_path(path).and_then(|p| head.get_path(p).ok());
            if recorded.is_some_and(|r| r.id() == oid && r.filemode() as u32 == entry.mode) {
                continue;
            }
        }
        out.push(StagedFile {
            path: String::from_utf8_lossy(&entry.path).into_owned(),
            blob: oid,
        });
    }
    Ok(out)
}

/// The id of HEAD's tree at `folder` (`""`: the root).
fn head_subtree(head: &git2::Tree<'_>, folder: &[u8]) -> Option<git2::Oid> {
    if folder.is_empty() {
        return Some(head.id());
    }
    let entry = head.get_path(byte_path(folder)?).ok()?;
    (entry.kind() == Some(git2::ObjectType::Tree)).then(|| entry.id())
}

/// A path of the index as a `Path` for libgit2: any bytes on Unix, UTF-8 elsewhere.
fn byte_path(path: &[u8]) -> Option<&Path> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Some(Path::new(std::ffi::OsStr::from_bytes(path)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(path).ok().map(Path::new)
    }
}

/// Where staged content is looked up: the directly read index; else the tree `git write-tree`
/// makes of the index; else libgit2's index.
pub(super) enum IndexSource {
    Direct(Index),
    /// The tree `git commit` would record, written by Git itself (`git write-tree` builds it
    /// with the same cache-tree update as `git commit`), for an index the direct reader does
    /// not handle: a split index, a sparse index, a version it does not know.
    Tree(git2::Oid),
    Libgit2(git2::Index),
}

/// `git write-tree` of the index Git names for the hook (`$GIT_INDEX_FILE`, inherited like the
/// current folder), or `None` when Git cannot make it (then neither could `git commit`).
fn write_tree(repo: &git2::Repository) -> Option<git2::Oid> {
    let out = git_command()
        .arg("write-tree")
        .env("GIT_DIR", repo.path())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let id = git2::Oid::from_str(std::str::from_utf8(&out.stdout).ok()?.trim()).ok()?;
    // Git wrote it into this repository's objects: read it from there.
    repo.find_tree(id).ok().map(|t| t.id())
}

impl IndexSource {
    pub(super) fn open(repo: &git2::Repository) -> Result<Self, git2::Error> {
        if let Some(index) = read_index(repo) {
            return Ok(IndexSource::Direct(index));
        }
        if let Some(tree) = write_tree(repo) {
            return Ok(IndexSource::Tree(tree));
        }
        Ok(IndexSource::Libgit2(repo.index()?))
    }

    pub(super) fn blob_at(&self, repo: &git2::Repository, path: &str) -> Option<git2::Oid> {
        match self {
            IndexSource::Direct(index) => index
                .get(path.as_bytes())
                .and_then(|e| git2::Oid::from_bytes(&e.oid).ok()),
            IndexSource::Tree(tree) => repo
                .find_tree(*tree)
                .ok()?
                .get_path(Path::new(path))
                .ok()
                .filter(|e| e.kind() == Some(git2::ObjectType::Blob))
                .map(|e| e.id()),
            IndexSource::Libgit2(index) => index.get_path(Path::new(path), 0).map(|e| e.id),
        }
    }

    pub(super) fn staged(&self, repo: &git2::Repository) -> Result<Vec<StagedFile>, git2::Error> {
        match self {
            IndexSource::Direct(index) => staged_from_index(repo, index),
            IndexSource::Tree(tree) => {
                let head = head_tree(repo)?;
                let tree = repo.find_tree(*tree)?;
                let mut opts = git2::DiffOptions::new();
                opts.include_typechange(true);
                let diff = repo.diff_tree_to_tree(head.as_ref(), Some(&tree), Some(&mut opts))?;
                let mut out = Vec::new();
                collect_staged(&diff, b"", &mut out);
                Ok(out)
            }
            IndexSource::Libgit2(_) => staged_files_by_diff(repo),
        }
    }
}

/// The files staged for the next commit, compared with HEAD (everything, before the first
/// commit). Reads the index, never the working tree: directly, using its cache-tree as Git
/// does; when the index uses what the direct reader does not handle (a split or sparse index,
/// a newer version), from the tree `git write-tree` makes of it; without Git, through
/// libgit2's diff. They give the same files (tested).
pub fn staged_files(repo: &git2::Repository) -> Result<Vec<StagedFile>, git2::Error> {
    IndexSource::open(repo)?.staged(repo)
}
