//! The pre-commit hook's record of blobs the judge found clean, in `.git/gitops-seal/`, so a
//! commit re-judges only content it has not judged before.
//!
//! A blob id names its content, so a clean verdict for it holds until the judge changes: the
//! record is stamped with the judging binary (version, size, modification time and, on Unix,
//! device, inode and change time of the executable) and is void under any other. A verdict also depends on whether the file is read
//! as a manifest (`.yaml`, `.yml`, `.json`: an unparsable document fails closed), so that is
//! part of each entry. Only the hook writes entries, only for blobs it judged with neither a
//! finding nor a note; files skipped by `ignore:` are never judged, so never recorded.
//!
//! Fail-safe: a record that is missing, unreadable, oversized, stamped by another binary or
//! malformed anywhere is ignored whole (everything is judged again) and rewritten; a write
//! that fails is ignored (the hook's verdict does not depend on it). The record holds blob ids
//! only, never content.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

const HEADER: &str = "gitops-seal judged-clean 1";
/// Entries kept; the oldest are dropped beyond this.
const MAX_ENTRIES: usize = 100_000;
/// A larger file is not read.
const MAX_BYTES: u64 = 8 << 20;

/// Blob ids judged clean, with whether they were read as a manifest.
pub struct JudgedClean {
    path: PathBuf,
    stamp: String,
    order: Vec<(git2::Oid, bool)>,
    known: HashSet<(git2::Oid, bool)>,
    changed: bool,
}

impl JudgedClean {
    /// The record in `git_dir` for the running binary; empty when there is none usable.
    pub fn load(git_dir: &Path) -> Self {
        let path = git_dir.join("gitops-seal").join("judged-clean");
        let stamp = stamp();
        let mut record = JudgedClean {
            path,
            stamp,
            order: Vec::new(),
            known: HashSet::new(),
            changed: false,
        };
        if let Some(entries) = read(&record.path, &record.stamp) {
            record.known = entries.iter().copied().collect();
            record.order = entries;
        }
        record
    }

    /// Whether `blob`, read as a manifest or not, was judged clean by this binary.
    pub fn contains(&self, blob: git2::Oid, manifest: bool) -> bool {
        !self.stamp.is_empty() && self.known.contains(&(blob, manifest))
    }

    /// Records a clean verdict.
    pub fn record(&mut self, blob: git2::Oid, manifest: bool) {
        if self.known.insert((blob, manifest)) {
            self.order.push((blob, manifest));
            self.changed = true;
        }
    }

    /// Writes the record (atomically) if it changed. Without a stamp (the executable could not
    /// be identified) nothing is written.
    pub fn save(&self) -> std::io::Result<()> {
        if !self.changed || self.stamp.is_empty() {
            return Ok(());
        }
        let keep = &self.order[self.order.len().saturating_sub(MAX_ENTRIES)..];
        let mut text = format!("{HEADER}\nstamp {}\n", self.stamp);
        for (blob, manifest) in keep {
            text.push_str(&format!("{blob} {}\n", if *manifest { 'm' } else { 'o' }));
        }
        std::fs::create_dir_all(self.path.parent().unwrap_or(Path::new(".")))?;
        super::files::write_atomic(&self.path, text.as_bytes())
    }
}

/// Identifies the judging binary; empty when it cannot be (then nothing is trusted or saved).
fn stamp() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return String::new();
    };
    let Ok(meta) = std::fs::metadata(&exe) else {
        return String::new();
    };
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{}-{}{}",
        env!("CARGO_PKG_VERSION"),
        crate::core::judge::JUDGE_REVISION,
        meta.len(),
        modified,
        replaced(&meta)
    )
}

/// What changes whenever the executable file is replaced, even by one of the same size and
/// modification time (`cp -p`, `install -p`, a package whose files all carry one fixed mtime
/// as Nix's store does): its inode and change time, which no tool can set.
#[cfg(unix)]
fn replaced(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "-{}-{}-{}.{}",
        meta.dev(),
        meta.ino(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

#[cfg(not(unix))]
fn replaced(_: &std::fs::Metadata) -> String {
    String::new()
}

/// The entries of the record at `path` if it is whole, well-formed and stamped `stamp`.
fn read(path: &Path, stamp: &str) -> Option<Vec<(git2::Oid, bool)>> {
    if stamp.is_empty() || std::fs::metadata(path).ok()?.len() > MAX_BYTES {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.split_terminator('\n');
    if lines.next()? != HEADER || lines.next()?.strip_prefix("stamp ")? != stamp {
        return None;
    }
    let mut entries = Vec::new();
    for line in lines {
        let (id, class) = line.split_once(' ')?;
        if id.len() != 40 || !id.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let manifest = match class {
            "m" => true,
            "o" => false,
            _ => return None,
        };
        entries.push((git2::Oid::from_str(id).ok()?, manifest));
    }
    // A record cut short by a crash still ends in a newline if whole.
    (text.ends_with('\n')).then_some(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_voids_on_any_damage() {
        let dir = tempfile::tempdir().unwrap();
        let a = git2::Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
        let b = git2::Oid::from_str("89abcdef0123456789abcdef0123456789abcdef").unwrap();
        let mut record = JudgedClean::load(dir.path());
        assert!(!record.contains(a, true));
        record.record(a, true);
        record.record(b, false);
        record.save().unwrap();
        let again = JudgedClean::load(dir.path());
        assert!(again.contains(a, true));
        assert!(
            !again.contains(a, false),
            "the manifest reading is part of the entry"
        );
        assert!(again.contains(b, false));

        let file = dir.path().join("gitops-seal/judged-clean");
        let good = std::fs::read_to_string(&file).unwrap();
        for damaged in [
            good.replace("stamp ", "stamp other-"),
            good.replace(HEADER, "gitops-seal judged-clean 2"),
            format!("{good}zz\n"),
            format!("{good}{a} x\n"),
            good.trim_end().to_string(),
            String::new(),
        ] {
            std::fs::write(&file, &damaged).unwrap();
            let loaded = JudgedClean::load(dir.path());
            assert!(!loaded.contains(a, true), "{damaged:?}");
            assert!(!loaded.contains(b, false), "{damaged:?}");
        }
    }
}
