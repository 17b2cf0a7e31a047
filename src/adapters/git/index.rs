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

/// The length of the NUL-terminated path at `at` (before the entries' end).
fn path_length(b: &[u8], at: usize, end: usize) -> Result<usize, Unsupported> {
    b.get(at..end)
        .ok_or_else(|| bad("truncated entry"))?
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| bad("unterminated path"))
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
        read_entry(b, version, &mut at, end, &mut previous, &mut index)?;
    }
    read_extensions(b, at, end, &mut index)?;
    Ok(index)
}

/// Reads the entry at `at` (before `end`, the checksum) into `index` and moves `at` past it:
/// a stage-0 entry is added, any other stage marks the index conflicted. `previous` is the
/// previous entry's path, which version 4 compresses against.
fn read_entry(
    b: &[u8],
    version: u32,
    at: &mut usize,
    end: usize,
    previous: &mut Vec<u8>,
    index: &mut Index,
) -> Result<(), Unsupported> {
    let start = *at;
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
    *at = start + FIXED;
    if extended {
        if version < 3 {
            return Err(bad("extended flags in a version 2 index"));
        }
        let extra = be16(b, *at)?;
        // skip-worktree (0x4000) entries are still committed as recorded: nothing to do.
        intent_to_add = extra & 0x2000 != 0;
        *at += 2;
    }
    let path = entry_path(b, version, start, at, end, previous)?;
    // Git and libgit2 take the name's length from the flags when it is under 0xFFF, and
    // find the entry's end from it: a length that is not the name's would make them read
    // another name (and other entries) than the NUL-terminated one read here.
    if usize::from(flags & 0xFFF) != path.len().min(0xFFF) {
        return Err(bad("name length does not match the name"));
    }
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
    Ok(())
}

/// The path of the entry that began at `start`, read at `at` (moved past it and the entry's
/// padding). Version 4 compresses each path against the `previous` one (updated here); 2 and
/// 3 pad entries with 1 to 8 NULs to a multiple of 8 bytes.
fn entry_path<'a>(
    b: &'a [u8],
    version: u32,
    start: usize,
    at: &mut usize,
    end: usize,
    previous: &'a mut Vec<u8>,
) -> Result<&'a [u8], Unsupported> {
    if version == 4 {
        let strip = varint(b, at)?;
        let nul = path_length(b, *at, end)?;
        if strip > previous.len() {
            return Err(bad("bad path compression"));
        }
        previous.truncate(previous.len() - strip);
        previous.extend_from_slice(&b[*at..*at + nul]);
        *at += nul + 1;
        Ok(previous)
    } else {
        let nul = path_length(b, *at, end)?;
        let path = &b[*at..*at + nul];
        let len = *at + nul - start;
        *at = start + (len + 8) / 8 * 8;
        if *at > end {
            return Err(bad("truncated entry"));
        }
        Ok(path)
    }
}

/// The extensions, from `at` up to the trailing checksum at `end`: the cache-tree is read into
/// `index`, other optional extensions are skipped, a required one is refused.
fn read_extensions(
    b: &[u8],
    mut at: usize,
    end: usize,
    index: &mut Index,
) -> Result<(), Unsupported> {
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
            b"TREE" => {
                let longest = index.entries.iter().map(|e| e.path.len()).max();
                read_cache_tree(data, longest.unwrap_or(0), &mut index.trees)?
            }
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
    Ok(())
}

/// The `TREE` extension: nodes in pre-order, each `path NUL entry_count SP subtrees LF` and,
/// when `entry_count` is not -1 (invalidated), the tree's object id.
///
/// Read as Git reads it (`cache-tree.c`, `read_one`): a node's name is one path component
/// (Git looks children up by component, so a name with a `/` would never be used: refused
/// here), and when a folder appears twice the later node is the one Git keeps, valid or not.
/// A folder longer than the longest entry path holds no entry, so is not kept; the path being
/// built is one buffer, so a deep chain of nodes costs its length, not its length squared.
fn read_cache_tree(
    data: &[u8],
    longest: usize,
    out: &mut HashMap<Vec<u8>, [u8; 20]>,
) -> Result<(), Unsupported> {
    let mut at = 0;
    // The current node's folder path; the stack holds, for each open node, the length of its
    // path in this buffer and the subtrees still to read under it.
    let mut path: Vec<u8> = Vec::new();
    let mut stack: Vec<(usize, usize)> = Vec::new();
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
        match stack.last_mut() {
            None => {
                if !name.is_empty() {
                    return Err(bad("bad cache-tree root"));
                }
                path.clear();
            }
            Some((parent, left)) => {
                if *left == 0 || name.is_empty() || name.contains(&b'/') {
                    return Err(bad("bad cache-tree"));
                }
                *left -= 1;
                path.truncate(*parent);
                if !path.is_empty() {
                    path.push(b'/');
                }
                path.extend_from_slice(name);
            }
        }
        if entries >= 0 {
            let oid = data
                .get(at..at + OID)
                .ok_or_else(|| bad("bad cache-tree"))?;
            let mut id = [0u8; OID];
            id.copy_from_slice(oid);
            if path.len() <= longest {
                out.insert(path.clone(), id);
            }
            at += OID;
        } else if entries == -1 {
            out.remove(path.as_slice());
        } else {
            return Err(bad("bad cache-tree"));
        }
        stack.push((path.len(), subtrees));
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
            b.extend_from_slice(&(path.len().min(0xFFF) as u16).to_be_bytes());
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

    /// An entry whose fixed part ends right at the checksum, with the extended-flags bit set:
    /// the reader must stop with an error, not slice past the end and panic.
    #[test]
    fn an_entry_cut_after_its_flags_is_an_error_not_a_panic() {
        for version in [3u32, 4] {
            let mut b = b"DIRC".to_vec();
            b.extend_from_slice(&version.to_be_bytes());
            b.extend_from_slice(&1u32.to_be_bytes());
            b.extend_from_slice(&[0; 24]);
            b.extend_from_slice(&0o100644u32.to_be_bytes());
            b.extend_from_slice(&[0; 12]);
            b.extend_from_slice(&[1; 20]);
            b.extend_from_slice(&0x4001u16.to_be_bytes());
            // The checksum: bytes the entry must not be read from.
            b.extend_from_slice(&[b'a'; 20]);
            assert!(parse(&b).is_err(), "version {version}");
            // And cut anywhere inside the entry.
            for cut in HEADER + 1..b.len() {
                let mut short = b[..cut].to_vec();
                short.extend_from_slice(&[b'a'; 20]);
                let _ = parse(&short);
            }
        }
    }

    /// A cache-tree node for a folder, as Git writes it.
    fn node(name: &str, entries: i64, subtrees: usize, oid: Option<u8>) -> Vec<u8> {
        let mut b = format!("{name}\0{entries} {subtrees}\n").into_bytes();
        if let Some(o) = oid {
            b.extend_from_slice(&[o; 20]);
        }
        b
    }

    /// Git keeps the later of two nodes for one folder (`read_one` replaces the child it finds
    /// by name): a valid node followed by an invalidated one for the same folder is invalid.
    /// A name with a slash is never looked up by Git, so it cannot stand for a folder here.
    #[test]
    fn the_cache_tree_is_read_as_git_reads_it() {
        let e = [("a/b", 0o100644, 1)];
        let mut tree = node("", -1, 2, None);
        tree.extend(node("a", 1, 0, Some(7)));
        tree.extend(node("a", -1, 0, None));
        let parsed = parse(&index(2, &e, &[(b"TREE", tree)])).unwrap();
        assert_eq!(parsed.trees.get(b"a".as_slice()), None);

        let mut tree = node("", -1, 1, None);
        tree.extend(node("a/b", 1, 0, Some(7)));
        assert!(parse(&index(2, &[("a/b/c", 0o100644, 1)], &[(b"TREE", tree)])).is_err());

        // A chain of folders deeper than any entry: read in linear time, none kept.
        let depth = 20_000;
        let mut tree = Vec::new();
        for i in 0..depth {
            let name = if i == 0 { "" } else { "d" };
            tree.extend(node(name, 0, usize::from(i + 1 < depth), Some(3)));
        }
        let parsed = parse(&index(2, &e, &[(b"TREE", tree)])).unwrap();
        assert!(
            parsed.trees.keys().all(|k| k.len() <= 3),
            "{}",
            parsed.trees.len()
        );
    }

    /// A name-length field that is not the name's length: Git would read the entry otherwise.
    #[test]
    fn a_name_length_other_than_the_names_is_refused() {
        for version in [2, 4] {
            let good = index(version, &[("ab", 0o100644, 1)], &[]);
            assert!(parse(&good).is_ok());
            let mut bad = good.clone();
            // The flags: after the 40 bytes of stat data and mode, and the 20-byte id.
            bad[HEADER + 60..HEADER + 62].copy_from_slice(&1u16.to_be_bytes());
            assert!(parse(&bad).is_err(), "version {version}");
        }
        let long = "x".repeat(0x1100);
        let mut b = index(2, &[(&long, 0o100644, 1)], &[]);
        assert_eq!(parse(&b).unwrap().entries[0].path.len(), 0x1100);
        b[HEADER + 60..HEADER + 62].copy_from_slice(&0xFFEu16.to_be_bytes());
        assert!(parse(&b).is_err());
    }
}
