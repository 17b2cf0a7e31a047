//! Reading inputs and writing outputs: `-` for stdin, atomic in-place rewrites that keep the
//! file mode, and walking folders for manifests.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use zeroize::Zeroizing;

use crate::core::error::{Error, HardLinks};

/// Reads a file, or stdin for `-`, into a zeroizing buffer (inputs may hold plaintext).
pub fn read_input(path: &Path) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    if path == Path::new("-") {
        io::stdin().lock().read_to_end(&mut buf)?;
    } else {
        let mut f = fs::File::open(path)?;
        let len = f.metadata().map(|m| m.len() as usize).unwrap_or(0);
        // Reserve once: a reallocation would leave an unwiped copy behind.
        buf.reserve_exact(len + 1);
        f.read_to_end(&mut buf)?;
    }
    Ok(buf)
}

/// Replaces `path` with `contents` atomically: a temp file in the same folder, fsync, then
/// rename. The temp file gets the original's permissions before any byte is written, and is
/// removed if anything fails. For files gitops-seal keeps (hooks, `.gitattributes`); a
/// manifest rewritten in place goes through [`write_in_place`].
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = stage(path, contents, true)?;
    tmp.as_file().sync_all()?;
    tmp.persist(through_symlinks(path)?).map_err(|e| e.error)?;
    Ok(())
}

/// [`write_atomic`] for a manifest rewritten in place (`encrypt`/`import`/`rekey --in-place`,
/// `set`, `unset`, `edit`): a file with more than one hard link is refused unless `force`,
/// and nothing is written. The rename gives the path a new inode, so every other link would
/// keep the old content (a plaintext Secret). The error's inner error is [`HardLinks`], which
/// [`Error::io`] turns into [`crate::ErrorKind::HardLinked`].
pub fn write_in_place(path: &Path, contents: &[u8], force: bool) -> io::Result<()> {
    let tmp = stage(path, contents, force)?;
    tmp.as_file().sync_all()?;
    tmp.persist(through_symlinks(path)?).map_err(|e| e.error)?;
    Ok(())
}

/// Refuses, before any work, a file [`write_in_place`] would refuse (`edit` asks before it
/// opens the editor).
pub fn check_in_place(path: &Path, force: bool) -> Result<(), Error> {
    through_symlinks(path)
        .and_then(|target| single_link(&target, force))
        .map_err(|e| Error::io(path, e))
}

/// An error unless the file at `path` (symlinks resolved) has one link, or `force`. A file
/// that does not exist yet has none.
fn single_link(path: &Path, force: bool) -> io::Result<()> {
    if force {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = fs::metadata(path) {
            if meta.nlink() > 1 {
                return Err(io::Error::other(HardLinks(meta.nlink())));
            }
        }
    }
    Ok(())
}

/// The file a symlink points to: replacing the link itself would leave the old content (a
/// plaintext Secret, say) in its target.
fn through_symlinks(path: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path),
        _ => Ok(path.to_path_buf()),
    }
}

/// Writes and returns the temp file that will replace `path` (not yet synced); refused for a
/// file with more than one hard link unless `hard_links`.
fn stage(path: &Path, contents: &[u8], hard_links: bool) -> io::Result<tempfile::NamedTempFile> {
    let path = &through_symlinks(path)?;
    single_link(path, hard_links)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let perms = fs::metadata(path).map(|m| m.permissions()).ok();
    let mut tmp = tempfile::Builder::new()
        .prefix(".gitops-seal-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    if let Some(perms) = perms {
        tmp.as_file().set_permissions(perms)?;
    }
    tmp.write_all(contents)?;
    Ok(tmp)
}

type Staged = Result<(PathBuf, tempfile::NamedTempFile), (PathBuf, io::Error)>;

/// Atomic replacements of many files, all or nothing. [`StagedWrites::stage`] writes a file's
/// new contents to a temp file beside it on the calling thread (callers stage from the rayon
/// workers that compute the contents, so writing overlaps with sealing the next file).
/// [`StagedWrites::finish`] makes them durable and renames them all (on rayon's pool), or, if
/// any failed to stage (a full disk, a missing folder), replaces nothing. Each rename is
/// atomic; a rename that fails after others succeeded (an immutable file) leaves those
/// replaced, and the error names the file. Dropped without `finish`, it removes every temp
/// file. As [`write_in_place`], a file with more than one hard link fails to stage unless
/// [`StagedWrites::force`].
pub struct StagedWrites {
    staged: Mutex<Vec<Staged>>,
    hard_links: bool,
}

impl StagedWrites {
    /// Room for `files` staged writes.
    pub fn new(files: usize) -> Self {
        StagedWrites {
            staged: Mutex::new(Vec::with_capacity(files)),
            hard_links: false,
        }
    }

    /// With `force`, files with more than one hard link are written too.
    pub fn force(mut self, force: bool) -> Self {
        self.hard_links = force;
        self
    }

    /// Writes `contents` to a temp file beside `path` (through symlinks). A failure is kept
    /// and reported by [`StagedWrites::finish`].
    pub fn stage(&self, path: PathBuf, contents: Zeroizing<Vec<u8>>) {
        let staged = match through_symlinks(&path)
            .and_then(|target| Ok((stage(&target, &contents, self.hard_links)?, target)))
        {
            Ok((tmp, target)) => Ok((target, tmp)),
            Err(e) => Err((path, e)),
        };
        drop(contents);
        self.staged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(staged);
    }

    /// Renames every staged file into place; returns how many. If any failed to stage, the
    /// first failure is returned and no file is replaced.
    pub fn finish(self) -> Result<usize, (PathBuf, io::Error)> {
        let staged: Vec<(PathBuf, tempfile::NamedTempFile)> = self
            .staged
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .collect::<Result<_, _>>()?;
        sync_all(&staged)?;
        staged
            .par_iter()
            .map(|(path, tmp)| fs::rename(tmp.path(), path).map_err(|e| (path.clone(), e)))
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Result<(), _>>()?;
        let count = staged.len();
        for (_, tmp) in staged {
            // Renamed: nothing is left for the temp file's destructor to remove.
            let _ = tmp.keep();
        }
        Ok(count)
    }
}

/// Every new content must be on disk before the first rename. For a batch, one syncfs per
/// file system does that at once, where an fsync per file would commit the journal once per
/// file; for a few files, fsync does not flush unrelated data.
#[cfg(unix)]
fn sync_all(staged: &[(PathBuf, tempfile::NamedTempFile)]) -> Result<(), (PathBuf, io::Error)> {
    const BATCH: usize = 8;
    let mut synced = std::collections::HashSet::new();
    for (path, tmp) in staged {
        let file = tmp.as_file();
        if staged.len() <= BATCH {
            file.sync_all().map_err(|e| (path.clone(), e))?;
            continue;
        }
        let meta = file.metadata().map_err(|e| (path.clone(), e))?;
        if synced.insert(std::os::unix::fs::MetadataExt::dev(&meta)) {
            rustix::fs::syncfs(file).map_err(|e| (path.clone(), e.into()))?;
        }
    }
    Ok(())
}

/// Without syncfs: one fsync per file.
#[cfg(not(unix))]
fn sync_all(staged: &[(PathBuf, tempfile::NamedTempFile)]) -> Result<(), (PathBuf, io::Error)> {
    for (path, tmp) in staged {
        tmp.as_file().sync_all().map_err(|e| (path.clone(), e))?;
    }
    Ok(())
}

/// True for names the folder walk picks up as manifests.
pub fn is_manifest_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// A file a command reads: named on the command line, or reached by walking a folder named
/// there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub path: PathBuf,
    /// Reached by a folder walk rather than named: an empty one is passed over with a note
    /// (see [`crate::ops::skipped_in_walk`]), as kubectl passes it over.
    pub walked: bool,
}

impl Input {
    /// A file named on the command line.
    pub fn named(path: impl Into<PathBuf>) -> Self {
        Input {
            path: path.into(),
            walked: false,
        }
    }
}

/// Expands folders into the manifest files under them (sorted, hidden entries skipped);
/// files are kept as given. An error names the path it is about.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<Input>, Error> {
    let mut out = Vec::new();
    for p in paths {
        if p != Path::new("-") && fs::metadata(p).map_err(|e| Error::io(p, e))?.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found)?;
            out.extend(found.into_iter().map(|path| Input { path, walked: true }));
        } else {
            out.push(Input::named(p.clone()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let io = |e| Error::io(dir, e);
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = e.path();
        let ty = e.file_type().map_err(|e| Error::io(&path, e))?;
        if ty.is_dir() {
            walk(&path, out)?;
        } else if ty.is_file() && is_manifest_name(&path) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn bytes(s: &str) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(s.as_bytes().to_vec())
    }

    #[test]
    fn staged_writes_replace_every_file_and_keep_modes() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.yaml");
        fs::write(&a, "old a").unwrap();
        fs::write(&b, "old b").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&a, fs::Permissions::from_mode(0o640)).unwrap();
        }
        let w = StagedWrites::new(2);
        w.stage(a.clone(), bytes("new a"));
        w.stage(b.clone(), bytes("new b"));
        assert_eq!(w.finish().unwrap(), 2);
        assert_eq!(fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(fs::read_to_string(&b).unwrap(), "new b");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&a).unwrap().permissions().mode() & 0o777,
                0o640
            );
        }
        assert_eq!(names(dir.path()), ["a.yaml", "b.yaml"], "no temp file left");
    }

    #[test]
    fn one_failure_replaces_nothing_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        fs::write(&a, "old a").unwrap();
        let w = StagedWrites::new(2);
        w.stage(a.clone(), bytes("new a"));
        let missing = dir.path().join("gone/b.yaml");
        w.stage(missing.clone(), bytes("new b"));
        let (path, _) = w.finish().unwrap_err();
        assert_eq!(path, missing);
        assert_eq!(fs::read_to_string(&a).unwrap(), "old a");
        assert_eq!(names(dir.path()), ["a.yaml"]);
    }

    #[test]
    fn a_batch_staged_from_many_threads_is_renamed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..40)
            .map(|i| {
                let p = dir.path().join(format!("f{i:02}.yaml"));
                fs::write(&p, "old").unwrap();
                p
            })
            .collect();
        let w = StagedWrites::new(paths.len());
        paths
            .par_iter()
            .for_each(|p| w.stage(p.clone(), bytes(&format!("new {}", p.display()))));
        assert_eq!(w.finish().unwrap(), 40);
        for p in &paths {
            assert_eq!(
                fs::read_to_string(p).unwrap(),
                format!("new {}", p.display())
            );
        }
        assert_eq!(names(dir.path()).len(), 40, "no temp file left");
    }

    #[test]
    fn one_failure_in_a_batch_replaces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..20)
            .map(|i| {
                let p = dir.path().join(format!("f{i:02}.yaml"));
                fs::write(&p, "old").unwrap();
                p
            })
            .collect();
        let w = StagedWrites::new(paths.len() + 1);
        paths
            .par_iter()
            .for_each(|p| w.stage(p.clone(), bytes("new")));
        let missing = dir.path().join("gone/x.yaml");
        w.stage(missing.clone(), bytes("new"));
        assert_eq!(w.finish().unwrap_err().0, missing);
        for p in &paths {
            assert_eq!(fs::read_to_string(p).unwrap(), "old");
        }
        assert_eq!(names(dir.path()).len(), 20, "no temp file left");
    }

    #[cfg(unix)]
    #[test]
    fn a_file_with_another_hard_link_is_refused_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a.yaml"),
            dir.path().join("b.yaml"),
            dir.path().join("c.yaml"),
        );
        fs::write(&a, "old a").unwrap();
        fs::hard_link(&a, &b).unwrap();
        fs::write(&c, "old c").unwrap();
        let e = write_in_place(&a, b"new", false).unwrap_err();
        let e = Error::io(&a, e);
        assert!(
            matches!(e.kind, crate::ErrorKind::HardLinked { links: 2 }),
            "{e}"
        );
        let w = StagedWrites::new(2);
        w.stage(c.clone(), bytes("new c"));
        w.stage(b.clone(), bytes("new b"));
        let (path, e) = w.finish().unwrap_err();
        assert_eq!(path, b);
        assert_eq!(Error::io(&path, e).reason(), "IoError");
        assert_eq!(fs::read_to_string(&a).unwrap(), "old a");
        assert_eq!(fs::read_to_string(&c).unwrap(), "old c");
        assert_eq!(names(dir.path()), ["a.yaml", "b.yaml", "c.yaml"]);
        write_in_place(&a, b"new", true).unwrap();
        assert_eq!(fs::read_to_string(&a).unwrap(), "new");
        assert_eq!(fs::read_to_string(&b).unwrap(), "old a");
    }

    #[test]
    fn dropping_unfinished_writes_replaces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        fs::write(&a, "old a").unwrap();
        let w = StagedWrites::new(1);
        w.stage(a.clone(), bytes("new a"));
        drop(w);
        assert_eq!(fs::read_to_string(&a).unwrap(), "old a");
        assert_eq!(names(dir.path()), ["a.yaml"]);
    }
}
