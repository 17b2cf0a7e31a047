//! History walks: every blob reachable from any ref, each read once and attributed to the first
//! commit holding it, with what this clone does not hold (a partial clone) listed rather than
//! fatal. `scan --history` and the exposure audit read history through it.

use crate::core::error::Error;

/// What [`walk_history`] calls for each blob: `(commit, path, content)`.
pub type HistoryVisit<'a> = dyn FnMut(git2::Oid, &str, Blob<'_>) -> Result<(), Error> + 'a;

/// A blob as [`walk_history`] hands it over: its content, or only its size when that is over
/// the walk's limit (so a huge blob is never inflated whole).
pub enum Blob<'a> {
    Content(&'a [u8]),
    TooLarge(u64),
}

/// An object a tree names that this repository does not hold (a partial or blobless clone, a
/// mirror with large files left out): where it was first met, so the scan can go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingObject {
    pub commit: git2::Oid,
    pub path: String,
    /// `blob` or `tree`.
    pub kind: &'static str,
    pub id: git2::Oid,
}

impl std::fmt::Display for MissingObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let commit = self.commit.to_string();
        write!(
            f,
            "commit {}: {}: {} {} is missing from this clone",
            &commit[..12],
            self.path,
            self.kind,
            self.id
        )
    }
}

/// What [`walk_history`] walked.
#[derive(Debug, Default)]
pub struct HistoryReport {
    pub commits: usize,
    /// Objects that could not be read, each once, at the first commit and path naming it.
    pub missing: Vec<MissingObject>,
}

/// Whether `e` says an object is not in the object database.
pub(super) fn is_missing(e: &git2::Error) -> bool {
    e.code() == git2::ErrorCode::NotFound
}

/// Calls `visit(commit, path, content)` once for every blob reachable from any ref, attributing
/// each blob to the first commit (oldest first) whose tree holds it, at a path `skip` does not
/// exclude. Trees already walked whole are skipped, so each blob and tree is read once; a tree
/// in which `skip` left something out is walked again where it appears at another path.
/// Paths that are not UTF-8 are shown lossily rather than skipped. A blob or tree the
/// repository does not hold is listed in the report, and the walk goes on. A blob over
/// `max_len` bytes is handed over by its size alone, never inflated.
pub fn walk_history(
    repo: &git2::Repository,
    skip: &dyn Fn(&str) -> bool,
    max_len: u64,
    visit: &mut HistoryVisit<'_>,
) -> Result<HistoryReport, Error> {
    let odb = repo.odb()?;
    let mut walk = repo.revwalk()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
    for reference in repo.references()? {
        if let Ok(commit) = reference?.peel_to_commit() {
            walk.push(commit.id())?;
        }
    }
    if let Ok(head) = repo.head().and_then(|h| h.peel_to_commit()) {
        walk.push(head.id())?;
    }
    let mut seen = Seen::default();
    let mut report = HistoryReport::default();
    for oid in walk {
        let commit = repo.find_commit(oid?)?;
        report.commits += 1;
        let mut walker = TreeWalk {
            repo,
            odb: &odb,
            max_len,
            commit: commit.id(),
            skip,
            visit: &mut *visit,
            seen: &mut seen,
            missing: &mut report.missing,
        };
        walker.tree("", commit.tree_id())?;
    }
    Ok(report)
}

#[derive(Default)]
struct Seen {
    /// Trees whose every blob was visited (none skipped).
    trees: std::collections::HashSet<git2::Oid>,
    /// Trees walked at a path where something was skipped: at that same path, walking them
    /// again would skip the same and find nothing new.
    partial: std::collections::HashSet<(git2::Oid, String)>,
    blobs: std::collections::HashSet<git2::Oid>,
}

struct TreeWalk<'w, 'v, 'r> {
    repo: &'r git2::Repository,
    odb: &'w git2::Odb<'r>,
    max_len: u64,
    commit: git2::Oid,
    skip: &'w dyn Fn(&str) -> bool,
    visit: &'w mut HistoryVisit<'v>,
    seen: &'w mut Seen,
    missing: &'w mut Vec<MissingObject>,
}

impl TreeWalk<'_, '_, '_> {
    fn note_missing(&mut self, path: &str, kind: &'static str, id: git2::Oid) {
        self.missing.push(MissingObject {
            commit: self.commit,
            path: path.to_string(),
            kind,
            id,
        });
    }

    /// Walks one tree; returns whether every blob under it was visited (or seen before).
    fn tree(&mut self, prefix: &str, tree_id: git2::Oid) -> Result<bool, Error> {
        if self.seen.trees.contains(&tree_id) {
            return Ok(true);
        }
        if self.seen.partial.contains(&(tree_id, prefix.to_string())) {
            return Ok(false);
        }
        let tree = match self.repo.find_tree(tree_id) {
            Ok(tree) => tree,
            Err(e) if is_missing(&e) => {
                // Reported once: wherever else it appears, it is just as missing.
                self.seen.trees.insert(tree_id);
                let shown = if prefix.is_empty() { "/" } else { prefix };
                self.note_missing(shown, "tree", tree_id);
                return Ok(true);
            }
            Err(e) => return Err(e.into()),
        };
        let mut complete = true;
        for entry in tree.iter() {
            let name = String::from_utf8_lossy(entry.name_bytes());
            let path = if prefix.is_empty() {
                name.into_owned()
            } else {
                format!("{prefix}/{name}")
            };
            match entry.kind() {
                Some(git2::ObjectType::Tree) => {
                    complete &= self.tree(&path, entry.id())?;
                }
                // Symlinks too: the target text is in history like any file's content.
                Some(git2::ObjectType::Blob) => {
                    if (self.skip)(&path) {
                        complete = false;
                    } else if self.seen.blobs.insert(entry.id()) {
                        let size = self.odb.read_header(entry.id()).map(|(size, _)| size);
                        match size.and_then(|size| {
                            if size as u64 > self.max_len {
                                return Ok(Err(size as u64));
                            }
                            self.repo.find_blob(entry.id()).map(Ok)
                        }) {
                            Ok(Ok(blob)) => {
                                (self.visit)(self.commit, &path, Blob::Content(blob.content()))?
                            }
                            Ok(Err(size)) => {
                                (self.visit)(self.commit, &path, Blob::TooLarge(size))?
                            }
                            Err(e) if is_missing(&e) => {
                                self.note_missing(&path, "blob", entry.id())
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
                _ => {}
            }
        }
        if complete {
            self.seen.trees.insert(tree_id);
        } else {
            self.seen.partial.insert((tree_id, prefix.to_string()));
        }
        Ok(complete)
    }
}
