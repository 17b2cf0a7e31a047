//! Reading inputs and writing outputs: `-` for stdin, atomic in-place rewrites that keep the
//! file mode, and walking folders for manifests.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

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
/// removed if anything fails.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
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
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// True for names the folder walk picks up as manifests.
pub fn is_manifest_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Expands folders into the manifest files under them (sorted, hidden entries skipped);
/// files are kept as given.
pub fn expand_paths(paths: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p != Path::new("-") && fs::metadata(p)?.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = e.path();
        let ty = e.file_type()?;
        if ty.is_dir() {
            walk(&path, out)?;
        } else if ty.is_file() && is_manifest_name(&path) {
            out.push(path);
        }
    }
    Ok(())
}
