//! Git's index file, read directly for the pre-commit hook (Git's "index-format" document,
//! `Documentation/gitformat-index.txt`): the stage-0 entries and the cache-tree (`TREE`)
//! extension, which names, for every folder no change has touched since the last tree was
//! written, the tree object the folder would commit as.
//!
//! libgit2 reads the whole index and verifies its SHA-1 trailer on every open, and diffs HEAD
//! against the index tree by tree; Git itself skips the trailer check on ordinary reads and
//! uses the cache-tree to skip unchanged folders. This reader does what Git does. It refuses
//! (returns [`Unsupported`]) what it does not fully understand — a version other than 2–4, a
//! split index, a sparse index, any other required extension, a malformed file — and the
//! caller then falls back to libgit2. It never guesses.

use std::collections::HashMap;

/// An index this reader does not handle; the caller uses libgit2 instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// One stage-0 entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    /// Unix mode as Git records it: 0o100644, 0o100755, 0o120000 (symlink), 0o160000 (gitlink).
    pub mode: u32,
    pub oid: [u8; 20],
    /// `git add -N`: recorded in the index, not committed.
    pub intent_to_add: bool,
}

/// The parsed index: stage-0 entries in index (path) order, and the valid cache-tree nodes.
#[derive(Debug, Default)]
pub struct Index {
    pub entries: Vec<Entry>,
    /// Folder (relative, `""` for the root, no trailing slash) → the tree it would commit as,
    /// for every cache-tree node that is valid.
    pub trees: HashMap<Vec<u8>, [u8; 20]>,
    /// Whether some entry has a stage other than 0 (an unresolved merge).
    pub conflicted: bool,
}

impl Index {
    /// The stage-0 entry for `path`, by binary search (the index is sorted by path bytes).
    pub fn get(&self, path: &[u8]) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.path.as_slice().cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }
}

const HEADER: usize = 12;
const OID: usize = 20;
/// ctime, mtime (8 each), dev, ino, mode, uid, gid, size (4 each), oid, flags (2).
const FIXED: usize = 40 + OID + 2;

fn bad(what: impl Into<String>) -> Unsupported {
    Unsupported(what.into())
}

fn be32(b: &[u8], at: usize) -> Result<u32, Unsupported> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| bad("truncated"))
}

fn be16(b: &[u8], at: usize) -> Result<u16, Unsupported> {
    b.get(at..at + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| bad("truncated"))
}

/// Git's offset varint (`varint.c`), used by index version 4 for the bytes to strip from the
/// previous path.
fn varint(b: &[u8], at: &mut usize) -> Result<usize, Unsupported> {
    let mut c = *b.get(*at).ok_or_else(|| bad("truncated"))?;
    *at += 1;
    let mut value = (c & 0x7f) as usize;
    while c & 0x80 != 0 {
        value = value.checked_add(1).ok_or_else(|| bad("varint overflow"))?;
        if value > usize::MAX >> 7 {
            return Err(bad("varint overflow"));
        }
        c = *b.get(*at).ok_or_else(|| bad("truncated"))?;
        *at += 1;
        value = (value << 7) + (c & 0x7f) as usize;
    }
    Ok(value)
}

/// Parses an index file. The trailing checksum is not verified (Git does not either, outside
/// `git fsck`).
pub fn parse(b: &[u8]) -> Result<Index, Unsupported> {
    if b.len() < HEADER + OID || &b[..4] != b"DIRC" {
        return Err(bad("not an index file"));
    }
    let version = be32(b, 4)?;
    if !(2..=4).contains(&version) {
        return Err(bad(format!("index version {version}")));
    }
    let count = be32(b, 8)? as usize;
    let end = b.len() - OID;
    let mut at = HEADER;
    let mut index = Index {
        entries: Vec::with_capacity(count.min(end / FIXED)),
        ..Index::default()
    };
    let mut previous: Vec<u8> = Vec::new();
    for _ in 0..count {
        let start = at;
        if start + FIXED > end {
            return Err(bad("truncated entry"));
        }
        let mode = be32(b, start + 24)?;
        let mut oid = [0u8; OID];
        oid.copy_from_slice(&b[start + 40..start + 40 + OID]);
        let flags = be16(b, start + 60)?;
        let stage = (flags >> 12) & 0x3;
        let extended = flags & 0x4000 != 0;
        let mut intent_to_add = false;
        at = start + FIXED;
        if extended {
            if version < 3 {
                return Err(bad("extended flags in a version 2 index"));
            }
            let extra = be16(b, at)?;
            // skip-worktree (0x4000) entries are still committed as recorded: nothing to do.
            intent_to_add = extra & 0x2000 != 0;
            at += 2;
        }
        // Version 4 compresses each path against the previous one; 2 and 3 pad entries with
        // 1 to 8 NULs to a multiple of 8 bytes.
        let path: &[u8] = if version == 4 {
            let strip = varint(b, &mut at)?;
            let nul = b[at..end]
                .iter()
                .position(|&c| c == 0)
                .ok_or_else(|| bad("unterminated path"))?;
            if strip > previous.len() {
                return Err(bad("bad path compression"));
            }
            previous.truncate(previous.len() - strip);
            previous.extend_from_slice(&b[at..at + nul]);
            at += nul + 1;
            &previous
        } else {
            let nul = b[at..end]
                .iter()
                .position(|&c| c == 0)
                .ok_or_else(|| bad("unterminated path"))?;
            let path = &b[at..at + nul];
            let len = at + nul - start;
            at = start + (len + 8) / 8 * 8;
            if at > end {
                return Err(bad("truncated entry"));
            }
            path
        };
        if mode & 0o170000 == 0o040000 {
            return Err(bad("sparse index (folder entries)"));
        }
        if path.is_empty() {
            return Err(bad("empty path"));
        }
        if stage == 0 {
            // Paths must be strictly increasing, or a binary search would miss them.
            if index
                .entries
                .last()
                .is_some_and(|e| e.path.as_slice() >= path)
            {
                return Err(bad("entries out of order"));
            }
            index.entries.push(Entry {
                path: path.to_vec(),
                mode,
                oid,
                intent_to_add,
            });
        } else {
            index.conflicted = true;
        }
    }
    // Extensions, up to the trailing checksum.
    while at < end {
        if at + 8 > end {
            return Err(bad("truncated extension"));
        }
        let signature = &b[at..at + 4];
        let size = be32(b, at + 4)? as usize;
        let data = b
            .get(at + 8..at + 8 + size)
            .filter(|_| at + 8 + size <= end)
            .ok_or_else(|| bad("truncated extension"))?;
        match signature {
            b"TREE" => read_cache_tree(data, &mut index.trees)?,
            // Optional extensions start with an upper-case letter; the rest (split index
            // `link`, sparse index `sdir`, ...) change what the entries mean.
            s if s[0].is_ascii_uppercase() => {}
            s => {
                return Err(bad(format!(
                    "required extension {:?}",
                    String::from_utf8_lossy(s)
                )))
            }
        }
        at += 8 + size;
    }
    Ok(index)
}

/// The `TREE` extension: nodes in pre-order, each `path NUL entry_count SP subtrees LF` and,
/// when `entry_count` is not -1 (invalidated), the tree's object id.
fn read_cache_tree(data: &[u8], out: &mut HashMap<Vec<u8>, [u8; 20]>) -> Result<(), Unsupported> {
    let mut at = 0;
    // (folder path, subtrees still to read under it)
    let mut stack: Vec<(Vec<u8>, usize)> = Vec::new();
    while at < data.len() {
        let nul = data[at..]
            .iter()
            .position(|&c| c == 0)
            .ok_or_else(|| bad("bad cache-tree"))?;
        let name = &data[at..at + nul];
        at += nul + 1;
        let lf = data[at..]
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(|| bad("bad cache-tree"))?;
        let header = std::str::from_utf8(&data[at..at + lf]).map_err(|_| bad("bad cache-tree"))?;
        at += lf + 1;
        let (entries, subtrees) = header
            .split_once(' ')
            .ok_or_else(|| bad("bad cache-tree"))?;
        let entries: i64 = entries.parse().map_err(|_| bad("bad cache-tree"))?;
        let subtrees: usize = subtrees.parse().map_err(|_| bad("bad cache-tree"))?;
        let path = match stack.last_mut() {
            None => {
                if !name.is_empty() {
                    return Err(bad("bad cache-tree root"));
                }
                Vec::new()
            }
            Some((parent, left)) => {
                if *left == 0 || name.is_empty() {
                    return Err(bad("bad cache-tree"));
                }
                *left -= 1;
                let mut p = parent.clone();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(name);
                p
            }
        };
        if entries >= 0 {
            let oid = data
                .get(at..at + OID)
                .ok_or_else(|| bad("bad cache-tree"))?;
            let mut id = [0u8; OID];
            id.copy_from_slice(oid);
            out.insert(path.clone(), id);
            at += OID;
        } else if entries != -1 {
            return Err(bad("bad cache-tree"));
        }
        stack.push((path, subtrees));
        while stack.last().is_some_and(|(_, left)| *left == 0) {
            stack.pop();
        }
        if stack.is_empty() && at < data.len() {
            return Err(bad("bad cache-tree: more than one root"));
        }
    }
    if !stack.is_empty() {
        return Err(bad("bad cache-tree: truncated"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-2 index with the given (path, mode, oid byte) entries and extensions.
    fn index(
        version: u32,
        entries: &[(&str, u32, u8)],
        extensions: &[(&[u8; 4], Vec<u8>)],
    ) -> Vec<u8> {
        let mut b = b"DIRC".to_vec();
        b.extend_from_slice(&version.to_be_bytes());
        b.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        let mut previous = String::new();
        for (path, mode, oid) in entries {
            let start = b.len();
            b.extend_from_slice(&[0; 24]);
            b.extend_from_slice(&mode.to_be_bytes());
            b.extend_from_slice(&[0; 12]);
            b.extend_from_slice(&[*oid; 20]);
            b.extend_from_slice(&(path.len() as u16).to_be_bytes());
            if version == 4 {
                let common = previous
                    .bytes()
                    .zip(path.bytes())
                    .take_while(|(a, b)| a == b)
                    .count();
                let strip = previous.len() - common;
                assert!(strip < 128);
                b.push(strip as u8);
                b.extend_from_slice(&path.as_bytes()[common..]);
                b.push(0);
            } else {
                b.extend_from_slice(path.as_bytes());
                let len = b.len() - start;
                b.resize(start + (len + 8) / 8 * 8, 0);
            }
            previous = path.to_string();
        }
        for (sig, data) in extensions {
            b.extend_from_slice(*sig);
            b.extend_from_slice(&(data.len() as u32).to_be_bytes());
            b.extend_from_slice(data);
        }
        b.extend_from_slice(&[0; 20]);
        b
    }

    #[test]
    fn reads_entries_of_versions_2_and_4() {
        let entries = [
            ("a/b.yaml", 0o100644, 1),
            ("a/c.yaml", 0o100755, 2),
            ("d", 0o120000, 3),
        ];
        for version in [2, 4] {
            let parsed = parse(&index(version, &entries, &[])).unwrap();
            assert_eq!(parsed.entries.len(), 3, "version {version}");
            assert_eq!(parsed.entries[1].path, b"a/c.yaml");
            assert_eq!(parsed.entries[1].mode, 0o100755);
            assert_eq!(parsed.entries[2].oid, [3; 20]);
            assert_eq!(parsed.get(b"a/b.yaml").unwrap().oid, [1; 20]);
            assert!(parsed.get(b"a/x").is_none());
        }
    }

    #[test]
    fn reads_the_cache_tree_and_skips_invalid_nodes() {
        let mut tree = b"\x003 1\n".to_vec();
        tree.extend_from_slice(&[7; 20]);
        tree.extend_from_slice(b"a\x00-1 1\n");
        tree.extend_from_slice(b"b\x001 0\n");
        tree.extend_from_slice(&[9; 20]);
        let parsed = parse(&index(2, &[("a/b/c", 0o100644, 1)], &[(b"TREE", tree)])).unwrap();
        assert_eq!(parsed.trees.get(b"".as_slice()), Some(&[7; 20]));
        assert_eq!(parsed.trees.get(b"a".as_slice()), None);
        assert_eq!(parsed.trees.get(b"a/b".as_slice()), Some(&[9; 20]));
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        let e = [("a", 0o100644, 1)];
        assert!(parse(&index(2, &e, &[(b"link", vec![0; 20])])).is_err());
        assert!(parse(&index(2, &e, &[(b"sdir", vec![])])).is_err());
        assert!(parse(&index(5, &e, &[])).is_err());
        assert!(parse(&index(2, &[("a", 0o040000, 1)], &[])).is_err());
        assert!(parse(&index(2, &[("b", 0o100644, 1), ("a", 0o100644, 1)], &[])).is_err());
        let whole = index(2, &e, &[]);
        for cut in [0, 4, 11, 12, 30, whole.len() - 21] {
            assert!(parse(&whole[..cut]).is_err(), "cut at {cut}");
        }
        assert!(parse(&index(2, &e, &[(b"TREE", b"\x00x y\n".to_vec())])).is_err());
        // Optional extensions are skipped.
        assert!(parse(&index(2, &e, &[(b"UNTR", vec![1, 2, 3])])).is_ok());
    }
}
