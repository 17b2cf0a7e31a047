//! What Git history has already exposed to "harvest now, decrypt later": for every sealed value
//! (object and key) ever committed, whether a version of it was sealed for a classical
//! recipient, and whether the value may still be that one.
//!
//! Pure: the caller hands in each file's bytes with the commit that first held them, oldest
//! first (as [`crate::adapters::git::walk_history`] walks), then the files at HEAD, and gets a
//! report. Stanza types are read from the age header text itself, so the audit does not depend
//! on which recipient types this build can seal or open.
//!
//! **Changed since the last classical version.** age is randomised: a value rekeyed with its
//! plaintext unchanged and a new value look alike without a private key. So without one the
//! answer is [`Changed::Unknown`], and the value needs rotation: the audit never guesses in the
//! reassuring direction. With an opener (identities), HEAD's version and every classical
//! version are opened and compared in constant time: [`Changed::Changed`] only when every HEAD
//! version differs from every classical one.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::core::keys::Identity;
use crate::core::manifest::{self, DocKind};
use crate::core::secret::SecretBytes;
use crate::core::{seal, yaml, SealedSecret};

/// The age stanza types known to be post-quantum. Every other type (`X25519`, `ssh-ed25519`,
/// `ssh-rsa`, `scrypt`, a plugin's, one this build has never heard of) counts as classical:
/// what is not known to resist a quantum computer is assumed not to.
pub const POST_QUANTUM_STANZA_TYPES: &[&str] = &["mlkem768x25519"];

/// The stanza types in an age v1 header (`-> TYPE args...` lines up to `--- MAC`), leaving out
/// age's random "grease" stanzas (type `...-grease`), which wrap no file key. `None` when the
/// bytes do not start an age v1 header or it does not end.
pub fn stanza_types(ciphertext: &[u8]) -> Option<Vec<String>> {
    let mut lines = ciphertext.split(|&b| b == b'\n');
    if lines.next()? != b"age-encryption.org/v1" {
        return None;
    }
    let mut types = Vec::new();
    for line in lines {
        if line.starts_with(b"--- ") {
            return Some(types);
        }
        if let Some(rest) = line.strip_prefix(b"-> ") {
            let tag = rest.split(|&b| b == b' ').next()?;
            let tag = std::str::from_utf8(tag).ok()?;
            if !tag.ends_with("-grease") {
                types.push(tag.to_string());
            }
        }
    }
    None
}

/// The classical stanza types among `types` (see [`POST_QUANTUM_STANZA_TYPES`]).
pub fn classical_types(types: &[String]) -> Vec<String> {
    types
        .iter()
        .filter(|t| !POST_QUANTUM_STANZA_TYPES.contains(&t.as_str()))
        .cloned()
        .collect()
}

/// How one sealed value was sealed: the classical stanza types in it (empty: post-quantum
/// only). A value whose header cannot be read counts as classical (`unreadable header`).
fn classical_in(ciphertext: &[u8]) -> Vec<String> {
    match stanza_types(ciphertext) {
        Some(types) if !types.is_empty() => classical_types(&types),
        Some(_) => vec!["no recipient stanza".to_string()],
        None => vec!["unreadable header".to_string()],
    }
}

/// A commit as the audit needs it: its id and committer time (seconds since the epoch, UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: String,
    pub time: i64,
}

/// Where a version of a value first appeared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    pub commit: String,
    /// The commit's committer date, UTC, RFC 3339.
    pub date: String,
    pub path: String,
}

/// A value: the object's namespace (if its manifest names one), name, and the key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ValueId {
    namespace: Option<String>,
    name: String,
    key: String,
}

#[derive(Default)]
struct History {
    /// Ciphertexts already met (each version is judged where it first appeared).
    seen: HashSet<Vec<u8>>,
    first_classical: Option<Origin>,
    last_classical: Option<Origin>,
    /// Every distinct classically sealed version, oldest first.
    classical: Vec<Vec<u8>>,
    types: BTreeSet<String>,
}

/// What HEAD holds of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AtHead {
    /// Not in HEAD's tree (deleted, or only ever on another branch).
    Absent,
    /// Every version at HEAD is sealed for post-quantum recipients only.
    PqOnly,
    /// A version at HEAD has a classical stanza.
    Classical,
}

/// Whether the value at HEAD differs from every classically sealed version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Changed {
    /// Opened and compared: HEAD's plaintext is none of the classical ones.
    Changed,
    /// HEAD's plaintext is a classical one (opened and compared, or HEAD is classical itself).
    Unchanged,
    /// Cannot be known: no identity, one that does not open every version, or no HEAD version.
    Unknown,
    /// Never sealed classically: nothing to compare with.
    NotApplicable,
}

/// One value's verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ValueExposure {
    pub namespace: Option<String>,
    pub name: String,
    pub key: String,
    /// Whether any version was ever sealed with a classical stanza.
    pub classical: bool,
    /// The classical stanza types met, sorted.
    pub classical_stanza_types: Vec<String>,
    /// The commit that introduced the first classical version (oldest first, topologically).
    pub first_classical: Option<Origin>,
    /// The commit that introduced the last classical version.
    pub last_classical: Option<Origin>,
    pub at_head: AtHead,
    pub changed_since_classical: Changed,
    /// Why `changed_since_classical` is what it is, for people.
    pub why: &'static str,
    /// Classical, and not shown to have changed since: rotate (change) the value.
    pub needs_rotation: bool,
}

impl ValueExposure {
    /// `ns/name` or `name`.
    pub fn object(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// A SealedSecret document the audit could not read (its values were not judged).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unparsable {
    pub commit: Option<String>,
    pub path: String,
    pub document: usize,
    pub reason: &'static str,
}

/// The audit's result, values sorted by namespace, name and key.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ExposureReport {
    pub values: Vec<ValueExposure>,
    pub unparsable: Vec<Unparsable>,
}

impl ExposureReport {
    pub fn needing_rotation(&self) -> usize {
        self.values.iter().filter(|v| v.needs_rotation).count()
    }
    pub fn exposed(&self) -> usize {
        self.values.iter().filter(|v| v.classical).count()
    }
}

/// Opens a value for comparison; `None` when it cannot be opened.
pub type Opener<'a> = dyn Fn(&[u8]) -> Option<SecretBytes> + Sync + 'a;

/// An [`Opener`] over `identities` (the binding is not checked: only the value is compared).
pub fn identity_opener(identities: &[Identity]) -> impl Fn(&[u8]) -> Option<SecretBytes> + '_ {
    move |ct| seal::open_value(identities, ct).ok().map(|(_, v)| v)
}

/// Collects the sealed values of a history, then of HEAD, and judges them.
#[derive(Default)]
pub struct ExposureAudit {
    values: BTreeMap<ValueId, History>,
    head: BTreeMap<ValueId, Vec<Vec<u8>>>,
    unparsable: Vec<Unparsable>,
}

/// Each SealedSecret document in `content` (any file name, YAML or JSON), by position.
fn sealed_documents(
    content: &[u8],
    mut each: impl FnMut(usize, Result<SealedSecret, &'static str>),
) {
    let Ok(text) = std::str::from_utf8(content) else {
        return;
    };
    // Most blobs in a history are not SealedSecrets: do not parse them.
    if !text.contains("SealedSecret") {
        return;
    }
    for (n, doc) in yaml::split_documents(text).iter().enumerate() {
        match manifest::classify(doc) {
            Ok(DocKind::SealedSecret) => {
                each(n + 1, SealedSecret::parse(doc).map_err(|e| e.reason()))
            }
            _ => continue,
        }
    }
}

fn value_ids(sealed: &SealedSecret) -> impl Iterator<Item = (ValueId, &Vec<u8>)> + '_ {
    sealed.encrypted_data.iter().map(|(key, ct)| {
        (
            ValueId {
                namespace: sealed.namespace.clone(),
                name: sealed.name.clone(),
                key: key.clone(),
            },
            ct,
        )
    })
}

impl ExposureAudit {
    /// Records the sealed values in a file first met in `commit`. Call in walk order (a
    /// commit after its parents).
    pub fn add_file(&mut self, commit: &CommitInfo, path: &str, content: &[u8]) {
        let (values, unparsable) = (&mut self.values, &mut self.unparsable);
        sealed_documents(content, |document, sealed| match sealed {
            Ok(sealed) => {
                for (id, ct) in value_ids(&sealed) {
                    let history = values.entry(id).or_default();
                    if !history.seen.insert(ct.clone()) {
                        continue;
                    }
                    let classical = classical_in(ct);
                    if classical.is_empty() {
                        continue;
                    }
                    let origin = Origin {
                        commit: commit.id.clone(),
                        date: rfc3339(commit.time),
                        path: path.to_string(),
                    };
                    history
                        .first_classical
                        .get_or_insert_with(|| origin.clone());
                    history.last_classical = Some(origin);
                    history.types.extend(classical);
                    history.classical.push(ct.clone());
                }
            }
            Err(reason) => unparsable.push(Unparsable {
                commit: Some(commit.id.clone()),
                path: path.to_string(),
                document,
                reason,
            }),
        });
    }

    /// Records the sealed values in a file of HEAD's tree.
    pub fn add_head_file(&mut self, path: &str, content: &[u8]) {
        let (head, unparsable) = (&mut self.head, &mut self.unparsable);
        sealed_documents(content, |document, sealed| match sealed {
            Ok(sealed) => {
                for (id, ct) in value_ids(&sealed) {
                    head.entry(id).or_default().push(ct.clone());
                }
            }
            Err(reason) => unparsable.push(Unparsable {
                commit: None,
                path: path.to_string(),
                document,
                reason,
            }),
        });
    }

    /// Judges every value. With `opener`, a post-quantum-only HEAD value is opened and compared
    /// with every classical version; without it, whether it changed is unknown.
    pub fn finish(self, opener: Option<&Opener<'_>>) -> ExposureReport {
        let ExposureAudit {
            values,
            mut head,
            unparsable,
        } = self;
        let mut out = Vec::with_capacity(values.len());
        for (id, history) in values {
            let at_head_cts = head.remove(&id).unwrap_or_default();
            out.push(judge(id, history, &at_head_cts, opener));
        }
        ExposureReport {
            values: out,
            unparsable,
        }
    }
}

fn judge(
    id: ValueId,
    history: History,
    head: &[Vec<u8>],
    opener: Option<&Opener<'_>>,
) -> ValueExposure {
    let classical = !history.classical.is_empty();
    let at_head = if head.is_empty() {
        AtHead::Absent
    } else if head.iter().any(|ct| !classical_in(ct).is_empty()) {
        AtHead::Classical
    } else {
        AtHead::PqOnly
    };
    let (changed, why) = if !classical {
        (Changed::NotApplicable, "never sealed classically")
    } else {
        match at_head {
            AtHead::Classical => (Changed::Unchanged, "HEAD's version is classically sealed"),
            AtHead::Absent => (
                Changed::Unknown,
                "not at HEAD: the value may still be in use elsewhere",
            ),
            AtHead::PqOnly => match opener {
                None => (
                    Changed::Unknown,
                    "without an identity a rekey and a new value look alike",
                ),
                Some(open) => compare(head, &history.classical, open),
            },
        }
    };
    ValueExposure {
        namespace: id.namespace,
        name: id.name,
        key: id.key,
        classical,
        classical_stanza_types: history.types.into_iter().collect(),
        first_classical: history.first_classical,
        last_classical: history.last_classical,
        at_head,
        changed_since_classical: changed,
        why,
        needs_rotation: classical && changed != Changed::Changed,
    }
}

/// Opens every HEAD and classical version and compares their plaintexts in constant time.
fn compare(head: &[Vec<u8>], classical: &[Vec<u8>], open: &Opener<'_>) -> (Changed, &'static str) {
    let Some(now) = head.iter().map(|ct| open(ct)).collect::<Option<Vec<_>>>() else {
        return (
            Changed::Unknown,
            "the identities given do not open HEAD's version",
        );
    };
    let mut unopened = false;
    for ct in classical {
        match open(ct) {
            Some(old) => {
                if now.iter().any(|v| same_bytes(v, &old)) {
                    return (
                        Changed::Unchanged,
                        "HEAD's value is the same as a classical version's",
                    );
                }
            }
            None => unopened = true,
        }
    }
    if unopened {
        (
            Changed::Unknown,
            "the identities given do not open every classical version",
        )
    } else {
        (
            Changed::Changed,
            "HEAD's value differs from every classical version",
        )
    }
}

/// Equality whose time does not depend on where two values of one length differ. (Lengths are
/// not secret here: an age file shows its value's length.)
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// `seconds` since the epoch as an RFC 3339 UTC date (`2024-05-01T12:00:00Z`).
pub fn rfc3339(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;
    use crate::ops::{self, SealSettings};

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

    fn commit(n: u8, time: i64) -> CommitInfo {
        CommitInfo {
            id: format!("{n:040}"),
            time,
        }
    }

    /// A SealedSecret prod/db with `password` sealed by our code for `to` (X25519).
    fn sealed(to: &Identity, password: &str) -> String {
        let settings = SealSettings {
            recipients: vec![to.to_recipient().unwrap()],
            ..SealSettings::default()
        };
        let manifest = format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db, namespace: prod}}\nstringData: {{password: {password}}}\n");
        ops::encrypt(manifest.as_bytes(), &settings, None)
            .unwrap()
            .unwrap()
    }

    /// A post-quantum age header made by hand per the C2SP age spec (`-> mlkem768x25519
    /// <base64 of the 1120-byte encapsulation>`, a 32-byte wrapped file key as the body, then
    /// the MAC line and a payload). It stands in for a value sealed to an `age1pq1…` recipient
    /// until this build seals those: the audit reads only the stanza lines. `fill` makes each
    /// one distinct, as age's randomness would.
    fn pq_value(fill: u8) -> Vec<u8> {
        let mut v = b"age-encryption.org/v1\n-> mlkem768x25519 ".to_vec();
        v.extend(B64.encode([fill; 1120]).as_bytes());
        v.push(b'\n');
        v.extend(B64.encode([fill; 32]).as_bytes());
        v.extend(b"\n--- ");
        v.extend(B64.encode([fill; 32]).as_bytes());
        v.push(b'\n');
        v.extend([fill; 48]);
        v
    }

    /// `text` with `password`'s ciphertext replaced by `ct`.
    fn with_value(text: &str, ct: &[u8]) -> String {
        let doc = &yaml::split_documents(text)[0];
        let mut s = SealedSecret::parse(doc).unwrap();
        s.encrypted_data.insert("password".into(), ct.to_vec());
        s.render(false)
    }

    fn ciphertext(text: &str) -> Vec<u8> {
        let doc = &yaml::split_documents(text)[0];
        SealedSecret::parse(doc).unwrap().encrypted_data["password"].clone()
    }

    /// A fake opener for hand-made values: maps each ciphertext to a plaintext.
    fn table(pairs: Vec<(Vec<u8>, &'static str)>) -> impl Fn(&[u8]) -> Option<SecretBytes> + Sync {
        move |ct| {
            pairs
                .iter()
                .find(|(c, _)| c == ct)
                .map(|(_, p)| zeroize::Zeroizing::new(p.as_bytes().to_vec()))
        }
    }

    #[test]
    fn stanza_types_are_read_from_the_header_text_grease_left_out() {
        let me = Identity::generate_x25519();
        let ct = ciphertext(&sealed(&me, "v"));
        assert_eq!(stanza_types(&ct).unwrap(), vec!["X25519".to_string()]);
        assert!(classical_in(&ct) == vec!["X25519".to_string()]);
        assert_eq!(stanza_types(&pq_value(1)).unwrap(), vec!["mlkem768x25519"]);
        assert!(classical_in(&pq_value(1)).is_empty());
        let mixed = b"age-encryption.org/v1\n-> mlkem768x25519 AAAA\nAAAA\n-> x-grease a\nAA\n-> ssh-ed25519 k AAAA\nAAAA\n-> piv-p256 q\nAA\n--- AAAA\n";
        assert_eq!(classical_in(mixed), vec!["ssh-ed25519", "piv-p256"]);
        assert_eq!(classical_in(b"not age"), vec!["unreadable header"]);
        assert_eq!(
            classical_in(b"age-encryption.org/v1\n-> X25519 a\n"),
            vec!["unreadable header"]
        );
    }

    #[test]
    fn a_classical_value_rekeyed_to_pq_needs_rotation_and_unchanged_with_identities() {
        let me = Identity::generate_x25519();
        let v1 = sealed(&me, "s3cret");
        let pq = pq_value(7);
        let build = || {
            let mut a = ExposureAudit::default();
            a.add_file(&commit(1, 0), "db.yaml", v1.as_bytes());
            a.add_file(
                &commit(2, 86_400),
                "db.yaml",
                with_value(&v1, &pq).as_bytes(),
            );
            a.add_head_file("db.yaml", with_value(&v1, &pq).as_bytes());
            a
        };
        let r = build().finish(None);
        let v = &r.values[0];
        assert_eq!(
            (v.object(), v.key.as_str()),
            ("prod/db".to_string(), "password")
        );
        assert!(v.classical && v.needs_rotation);
        assert_eq!(v.at_head, AtHead::PqOnly);
        assert_eq!(v.changed_since_classical, Changed::Unknown);
        let first = v.first_classical.as_ref().unwrap();
        assert_eq!(first.commit, commit(1, 0).id);
        assert_eq!(first.date, "1970-01-01T00:00:00Z");
        assert_eq!(v.last_classical, v.first_classical);
        assert_eq!(v.classical_stanza_types, vec!["X25519"]);

        // The real classical value opens with the identity; the hand-made one by table.
        let real = identity_opener(std::slice::from_ref(&me));
        let pq_plain = pq.clone();
        let open = move |ct: &[u8]| {
            if ct == pq_plain {
                Some(zeroize::Zeroizing::new(b"s3cret".to_vec()))
            } else {
                real(ct)
            }
        };
        let r = build().finish(Some(&open));
        assert_eq!(r.values[0].changed_since_classical, Changed::Unchanged);
        assert!(r.values[0].needs_rotation);
        assert_eq!(r.needing_rotation(), 1);
    }

    #[test]
    fn a_value_changed_after_its_last_classical_version_needs_no_rotation_when_shown() {
        let me = Identity::generate_x25519();
        let v1 = sealed(&me, "old-one");
        let v2 = sealed(&me, "old-two");
        let pq = pq_value(3);
        let build = || {
            let mut a = ExposureAudit::default();
            a.add_file(&commit(1, 100), "db.yaml", v1.as_bytes());
            a.add_file(&commit(2, 200), "db.yaml", v2.as_bytes());
            a.add_file(&commit(3, 300), "db.yaml", with_value(&v1, &pq).as_bytes());
            a.add_head_file("db.yaml", with_value(&v1, &pq).as_bytes());
            a
        };
        let r = build().finish(None);
        let v = &r.values[0];
        assert_eq!(v.first_classical.as_ref().unwrap().commit, commit(1, 0).id);
        assert_eq!(v.last_classical.as_ref().unwrap().commit, commit(2, 0).id);
        assert_eq!(
            v.last_classical.as_ref().unwrap().date,
            "1970-01-01T00:03:20Z"
        );
        assert!(
            v.needs_rotation,
            "unknown without an identity: conservative"
        );

        let real = identity_opener(std::slice::from_ref(&me));
        let pq_plain = pq.clone();
        let open = move |ct: &[u8]| {
            if ct == pq_plain {
                Some(zeroize::Zeroizing::new(b"brand-new".to_vec()))
            } else {
                real(ct)
            }
        };
        let r = build().finish(Some(&open));
        assert_eq!(r.values[0].changed_since_classical, Changed::Changed);
        assert!(!r.values[0].needs_rotation);

        // Back to the first classical value (not the last): still unchanged.
        let real = identity_opener(std::slice::from_ref(&me));
        let pq_plain = pq.clone();
        let open = move |ct: &[u8]| {
            if ct == pq_plain {
                Some(zeroize::Zeroizing::new(b"old-one".to_vec()))
            } else {
                real(ct)
            }
        };
        let r = build().finish(Some(&open));
        assert_eq!(r.values[0].changed_since_classical, Changed::Unchanged);

        // An identity that opens HEAD but not the classical versions cannot tell.
        let open = table(vec![(pq.clone(), "brand-new")]);
        let r = build().finish(Some(&open));
        assert_eq!(r.values[0].changed_since_classical, Changed::Unknown);
        assert!(r.values[0].needs_rotation);
    }

    #[test]
    fn pq_only_values_are_fine_and_absent_or_classical_heads_need_rotation() {
        let me = Identity::generate_x25519();
        let v1 = sealed(&me, "x");
        let pq = with_value(&v1, &pq_value(1));
        let mut a = ExposureAudit::default();
        a.add_file(
            &commit(1, 0),
            "pq.yaml",
            pq.replace("name: db", "name: pq").as_bytes(),
        );
        a.add_file(
            &commit(1, 0),
            "gone.yaml",
            v1.replace("name: db", "name: gone").as_bytes(),
        );
        a.add_file(&commit(2, 0), "db.yaml", v1.as_bytes());
        a.add_head_file("pq.yaml", pq.replace("name: db", "name: pq").as_bytes());
        a.add_head_file("db.yaml", v1.as_bytes());
        let open = identity_opener(std::slice::from_ref(&me));
        let r = a.finish(Some(&open));
        let by = |name: &str| r.values.iter().find(|v| v.name == name).unwrap();
        assert!(!by("pq").classical && !by("pq").needs_rotation);
        assert_eq!(by("pq").changed_since_classical, Changed::NotApplicable);
        assert_eq!(by("pq").at_head, AtHead::PqOnly);
        assert_eq!(by("gone").at_head, AtHead::Absent);
        assert!(by("gone").needs_rotation);
        assert_eq!(by("db").at_head, AtHead::Classical);
        assert_eq!(by("db").changed_since_classical, Changed::Unchanged);
        assert!(by("db").needs_rotation);
        assert_eq!((r.exposed(), r.needing_rotation()), (2, 2));
    }

    #[test]
    fn a_ciphertext_met_again_in_a_later_blob_is_not_a_new_version() {
        let me = Identity::generate_x25519();
        let v1 = sealed(&me, "x");
        let mut a = ExposureAudit::default();
        a.add_file(&commit(1, 0), "db.yaml", v1.as_bytes());
        // The same value in another file (a later commit touched another key).
        a.add_file(
            &commit(2, 0),
            "moved.yaml",
            format!("# moved\n{v1}").as_bytes(),
        );
        let r = a.finish(None);
        assert_eq!(
            r.values[0].last_classical.as_ref().unwrap().commit,
            commit(1, 0).id
        );
    }

    #[test]
    fn unparsable_sealed_secrets_are_listed() {
        let mut a = ExposureAudit::default();
        a.add_file(
            &commit(1, 0),
            "bad.yaml",
            b"apiVersion: gitops-seal.dev/v1\nkind: SealedSecret\nmetadata: {name: x}\n",
        );
        let r = a.finish(None);
        assert!(r.values.is_empty());
        assert_eq!(r.unparsable.len(), 1);
        assert_eq!(r.unparsable[0].reason, "InvalidSpec");
    }

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn same_bytes_compares_whole_values() {
        assert!(same_bytes(b"abc", b"abc"));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"ab"));
    }
}
