//! Git: the text merge Git itself would do (`git merge-file`), and installing the merge
//! driver's configuration through git2.

use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;

use std::collections::HashMap;

use crate::core::error::{Error, ErrorKind};
use crate::core::rules::{Config, CONFIG_FILE_NAME};
use crate::ops;

/// `SSL_CERT_FILE` as it was before [`without_tls_trust_store`], once that ran.
static CHILD_SSL_CERT_FILE: std::sync::OnceLock<Option<std::ffi::OsString>> =
    std::sync::OnceLock::new();

/// Points OpenSSL at an empty CA bundle for this process (libgit2 then skips loading the
/// system's, most of a local command's start), for commands that never open a connection
/// themselves. The `git` they run gets the variable as it was: Git may need it (a partial
/// clone fetches missing objects on demand). Call before any thread exists.
pub fn without_tls_trust_store() {
    #[cfg(unix)]
    {
        let _ = CHILD_SSL_CERT_FILE.set(std::env::var_os("SSL_CERT_FILE"));
        std::env::set_var("SSL_CERT_FILE", "/dev/null");
    }
}

/// `git`, with the environment this process was given.
fn git_command() -> Command {
    let mut c = Command::new("git");
    match CHILD_SSL_CERT_FILE.get() {
        Some(Some(original)) => {
            c.env("SSL_CERT_FILE", original);
        }
        Some(None) => {
            c.env_remove("SSL_CERT_FILE");
        }
        None => {}
    }
    c
}

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
        super::files::write_atomic(&path, text.as_bytes()).map_err(|e| Error::io(&path, e))?;
    }
    Ok(path)
}

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

/// The index read directly (see [`super::git_index`]); `None` when the reader does not
/// handle it, and the caller goes through libgit2.
fn read_index(repo: &git2::Repository) -> Option<super::git_index::Index> {
    let (path, from_env) = index_path(repo);
    match fs::read(&path) {
        Ok(bytes) => super::git_index::parse(&bytes).ok(),
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
    index: &super::git_index::Index,
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
enum IndexSource {
    Direct(super::git_index::Index),
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
    fn open(repo: &git2::Repository) -> Result<Self, git2::Error> {
        if let Some(index) = read_index(repo) {
            return Ok(IndexSource::Direct(index));
        }
        if let Some(tree) = write_tree(repo) {
            return Ok(IndexSource::Tree(tree));
        }
        Ok(IndexSource::Libgit2(repo.index()?))
    }

    fn blob_at(&self, repo: &git2::Repository, path: &str) -> Option<git2::Oid> {
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

    fn staged(&self, repo: &git2::Repository) -> Result<Vec<StagedFile>, git2::Error> {
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
fn is_missing(e: &git2::Error) -> bool {
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

/// Stops libgit2 from re-hashing every object it reads (a third of the hook's time in a
/// 10,000-file repository). The hook and `scan` only read objects to judge them; `git fsck`
/// is what checks a repository's integrity.
pub fn read_without_rehashing() {
    git2::opts::strict_hash_verification(false);
}

pub const HOOK_MARKER: &str = "# gitops-seal pre-commit hook";

/// The hooks folder: `core.hooksPath` (relative to the work tree) or `.git/hooks`.
pub fn hooks_dir(repo: &git2::Repository) -> Result<std::path::PathBuf, git2::Error> {
    let config = repo.config()?;
    if let Ok(p) = config.get_path("core.hooksPath") {
        if p.is_absolute() {
            return Ok(p);
        }
        let root = repo.workdir().unwrap_or_else(|| repo.path());
        return Ok(root.join(p));
    }
    // Linked worktrees share the main repository's hooks: git runs them from the common dir.
    Ok(repo.commondir().join("hooks"))
}

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
    if let Ok(current) = super::files::read_input(&file) {
        let write = |text: &str| {
            // Never through another hard link (the hook checks first and says how to proceed).
            super::files::write_in_place(&file, text.as_bytes(), false)
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
