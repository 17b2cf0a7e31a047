//! Recipients (public) and identities (private), parsed from text. No file access here: the
//! adapters read files and hand their text in.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza};

use super::error::{Error, ErrorKind};
use super::x25519::{X25519Identity, X25519Recipient};

/// The stanza tag of age's hybrid post-quantum recipient (ML-KEM-768 + X25519).
pub const PQ_TAG: &str = "mlkem768x25519";

/// Someone a value is sealed for: an age hybrid post-quantum recipient (`age1pq1...`, ML-KEM-768
/// with X25519), a classical age X25519 recipient (clusters, people) or an SSH public key
/// (people). X25519 stanzas are sealed by [`X25519Recipient`]: age's stanzas, with the key
/// agreement through a table of the recipient's key once it has been used often.
#[derive(Clone)]
pub enum Recipient {
    Pq(age::pq::Recipient),
    X25519(X25519Recipient),
    // age 0.13 deprecates sealing for ssh keys (they are classical); people's existing ssh
    // keys in rules keep working, so the variant stays.
    #[allow(deprecated)]
    Ssh(age::ssh::Recipient),
}

impl Recipient {
    /// The age recipient to hand to the encryptor.
    pub fn as_age(&self) -> &dyn age::Recipient {
        match self {
            Recipient::Pq(r) => r,
            Recipient::X25519(r) => r,
            Recipient::Ssh(r) => r,
        }
    }

    /// Whether this recipient is post-quantum (safe against "harvest now, decrypt later").
    pub fn is_pq(&self) -> bool {
        matches!(self, Recipient::Pq(_))
    }

    /// A short public fingerprint: the kind, then the first 8 bytes of SHA-256 over the
    /// recipient string, in hex (`pq:3f9a2c71d04e8b56`). It names a key in statuses, metrics
    /// and logs without repeating a 1,900-character post-quantum recipient; it is derived from
    /// public text only.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(self.kind_name(), &self.to_string())
    }

    /// `pq`, `x25519` or `ssh`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Recipient::Pq(_) => "pq",
            Recipient::X25519(_) => "x25519",
            Recipient::Ssh(_) => "ssh",
        }
    }

    /// The stanza tag age writes for this recipient (used by `verify`).
    pub fn stanza_tag(&self) -> &'static str {
        match self {
            Recipient::Pq(_) => PQ_TAG,
            Recipient::X25519(_) => "X25519",
            Recipient::Ssh(r) => {
                if r.to_string().starts_with("ssh-rsa") {
                    "ssh-rsa"
                } else {
                    "ssh-ed25519"
                }
            }
        }
    }
}

impl fmt::Display for Recipient {
    /// The canonical form written into `spec.recipients` (SSH keys without their comment).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::Pq(r) => write!(f, "{r}"),
            Recipient::X25519(r) => write!(f, "{r}"),
            Recipient::Ssh(r) => write!(f, "{r}"),
        }
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

impl PartialEq for Recipient {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl FromStr for Recipient {
    type Err = ErrorKind;

    fn from_str(s: &str) -> Result<Self, ErrorKind> {
        let s = s.trim();
        if is_private_key(s) {
            return Err(ErrorKind::IdentityAsRecipient);
        }
        let invalid = |reason: &str| ErrorKind::InvalidRecipient {
            recipient: s.to_string(),
            reason: reason.to_string(),
        };
        if s.starts_with("age1pq1") {
            return age::pq::Recipient::from_str(s)
                .map(Recipient::Pq)
                .map_err(|e| invalid(&format!("not a valid age post-quantum recipient ({e})")));
        }
        if s.starts_with("ssh-") {
            #[allow(deprecated)] // Existing ssh recipients keep working (see Recipient::Ssh).
            return age::ssh::Recipient::from_str(s)
                .map(Recipient::Ssh)
                .map_err(|e| match e {
                    age::ssh::ParseRecipientKeyError::Unsupported(kind) => invalid(&format!(
                        "unsupported SSH key type {kind} (use ssh-ed25519 or ssh-rsa)"
                    )),
                    _ => invalid("not a valid SSH public key"),
                });
        }
        if s.starts_with("age1") {
            // Bech32's separator is the last '1': a later one means the HRP names a plugin.
            if s.rfind('1') != Some(3) {
                return Err(invalid(
                    "age plugin recipients are not supported; use a post-quantum (age1pq1...), X25519 (age1...) or SSH recipient",
                ));
            }
            #[allow(deprecated)] // Existing X25519 keys keep working (see X25519Recipient).
            let r = age::x25519::Recipient::from_str(s)
                .map(X25519Recipient::new)
                .map_err(|_| invalid("not a valid age X25519 recipient"))?;
            if r.is_low_order() {
                return Err(invalid(
                    "a low-order point: every secret shared with it is zero, so nothing sealed for it would be secret",
                ));
            }
            return Ok(Recipient::X25519(r));
        }
        Err(invalid(
            "expected an age1... recipient or an ssh-ed25519/ssh-rsa public key",
        ))
    }
}

/// True when `text` holds a private key: an age identity (`AGE-SECRET-KEY-1...`, any case,
/// or a plugin's `AGE-PLUGIN-...`) or a PEM private key block. Such text is never echoed.
pub fn is_private_key(text: &str) -> bool {
    let upper = text.trim_start().to_ascii_uppercase();
    upper.starts_with("AGE-SECRET-KEY-")
        || upper.starts_with("AGE-PLUGIN-")
        || upper.contains("AGE-SECRET-KEY-1")
        || upper.contains("PRIVATE KEY")
}

/// Parses recipients in age's recipients-file format: one per line, `#` comments, blank lines.
/// Errors name the 1-based line.
pub fn parse_recipients_file(text: &str) -> Result<Vec<Recipient>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // A PEM body line would be echoed as an "invalid recipient": refuse the block at its
        // header instead.
        if line.starts_with("-----BEGIN") && line.contains("PRIVATE KEY") {
            return Err(Error::from(ErrorKind::IdentityAsRecipient).at_line(i + 1));
        }
        out.push(
            line.parse()
                .map_err(|e: ErrorKind| Error::from(e).at_line(i + 1))?,
        );
    }
    Ok(out)
}

/// The classical (not post-quantum) recipients of `list`, as written in `spec.recipients`.
pub fn classical(list: &[Recipient]) -> Vec<String> {
    list.iter()
        .filter(|r| !r.is_pq())
        .map(|r| r.to_string())
        .collect()
}

/// Refuses a list that mixes post-quantum and classical recipients (a value sealed for both is
/// only as strong as the classical key), and, with `require_pq`, any classical recipient.
/// `list` names where the recipients come from (a rule, a file, `-r/-R`).
pub fn check_kinds(
    recipients: &[Recipient],
    require_pq: bool,
    list: &str,
) -> Result<(), ErrorKind> {
    let classical = classical(recipients);
    if classical.is_empty() {
        return Ok(());
    }
    if require_pq {
        return Err(ErrorKind::PqRequired {
            list: list.to_string(),
            classical,
        });
    }
    if recipients.iter().any(Recipient::is_pq) {
        return Err(ErrorKind::MixedRecipients {
            list: list.to_string(),
            classical,
        });
    }
    Ok(())
}

/// Drops duplicates, keeping the first occurrence's position.
pub fn dedup_recipients(list: Vec<Recipient>) -> Vec<Recipient> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter()
        .filter(|r| seen.insert(r.to_string()))
        .collect()
}

/// The kind of key `keygen` and the controller generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyKind {
    /// Hybrid post-quantum, ML-KEM-768 + X25519 (`age1pq1...`).
    #[default]
    Pq,
    /// Classical X25519 (`age1...`).
    X25519,
}

impl FromStr for KeyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pq" => Ok(KeyKind::Pq),
            "x25519" => Ok(KeyKind::X25519),
            _ => Err(format!("unknown key type {s:?} (expected pq or x25519)")),
        }
    }
}

/// A private key that can open values: an age post-quantum or X25519 identity, or an
/// unencrypted SSH key.
pub struct Identity {
    key: IdentityKey,
    /// Among the stanzas of this identity's type, the position that opened the last value.
    /// Values sealed together list recipients in the same order, and trying a stanza meant
    /// for someone else costs a full scalar multiplication, so this one is tried first.
    stanza_hint: AtomicUsize,
}

enum IdentityKey {
    /// age's hybrid post-quantum identity (`AGE-SECRET-KEY-PQ-1...`).
    Pq(age::pq::Identity),
    /// age's X25519 identity, keeping its public key rather than deriving it per stanza.
    X25519(X25519Identity),
    Ssh(age::ssh::Identity),
}

impl Identity {
    fn new(key: IdentityKey) -> Self {
        Identity {
            key,
            stanza_hint: AtomicUsize::new(0),
        }
    }

    fn as_age(&self) -> &dyn age::Identity {
        match &self.key {
            IdentityKey::Pq(i) => i,
            IdentityKey::X25519(i) => i,
            IdentityKey::Ssh(i) => i,
        }
    }

    /// The tags of the stanzas this identity can open.
    fn opens(&self, tag: &str) -> bool {
        match &self.key {
            IdentityKey::Pq(_) => tag == PQ_TAG,
            IdentityKey::X25519(_) => tag == "X25519",
            IdentityKey::Ssh(_) => tag == "ssh-ed25519" || tag == "ssh-rsa",
        }
    }

    /// The public recipient, where it can be derived.
    pub fn to_recipient(&self) -> Option<Recipient> {
        match &self.key {
            IdentityKey::Pq(i) => Some(Recipient::Pq(i.to_public())),
            IdentityKey::X25519(i) => Some(Recipient::X25519(X25519Recipient::new(
                i.as_age().to_public(),
            ))),
            // The public key an OpenSSH private key file carries.
            #[allow(deprecated)] // Existing ssh keys keep working (see Recipient::Ssh).
            IdentityKey::Ssh(i) => age::ssh::Recipient::try_from(i.clone())
                .ok()
                .map(Recipient::Ssh),
        }
    }

    /// Generates a new hybrid post-quantum identity (ML-KEM-768 + X25519), the default kind.
    pub fn generate() -> Self {
        Identity::new(IdentityKey::Pq(age::pq::Identity::generate()))
    }

    /// Generates a new classical X25519 identity (`keygen --x25519`, `--key-type x25519`).
    pub fn generate_x25519() -> Self {
        // age 0.13 deprecates generating classical keys; this is kept for who asks for one
        // explicitly (a tool that cannot open post-quantum values yet).
        #[allow(deprecated)]
        let id = age::x25519::Identity::generate();
        Identity::new(IdentityKey::X25519(X25519Identity::new(id)))
    }

    /// Generates an identity of `kind`.
    pub fn generate_kind(kind: KeyKind) -> Self {
        match kind {
            KeyKind::Pq => Identity::generate(),
            KeyKind::X25519 => Identity::generate_x25519(),
        }
    }

    /// The public fingerprint of this identity's recipient ([`Recipient::fingerprint`]): the
    /// same as its `.pub` file's (for an SSH key, without the comment).
    pub fn fingerprint(&self) -> Option<String> {
        self.to_recipient().map(|r| r.fingerprint())
    }

    /// Whether this identity is post-quantum.
    pub fn is_pq(&self) -> bool {
        matches!(self.key, IdentityKey::Pq(_))
    }

    /// The identity file text, in age-keygen's layout.
    pub fn to_identity_file(&self, created: &str) -> Option<zeroize::Zeroizing<String>> {
        match &self.key {
            IdentityKey::Pq(i) => Some(zeroize::Zeroizing::new(format!(
                "# created: {created}\n# public key: {}\n{}\n",
                i.to_public(),
                i.to_string().expose_secret()
            ))),
            IdentityKey::X25519(i) => Some(zeroize::Zeroizing::new(format!(
                "# created: {created}\n# public key: {}\n{}\n",
                i.as_age().to_public(),
                i.as_age().to_string().expose_secret()
            ))),
            IdentityKey::Ssh(_) => None,
        }
    }
}

impl age::Identity for Identity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        self.as_age().unwrap_stanza(stanza)
    }

    /// As age's own, but a stanza at the hinted position that opens is taken first. Anything
    /// else (no hint, a stanza for someone else, a malformed one) falls back to age's order,
    /// so the outcome is always the one age would give.
    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, age::DecryptError>> {
        let mine: Vec<&Stanza> = stanzas.iter().filter(|s| self.opens(&s.tag)).collect();
        let hint = self.stanza_hint.load(Ordering::Relaxed);
        let mut hinted_error = None;
        match mine.get(hint).and_then(|s| self.unwrap_stanza(s)) {
            Some(Ok(key)) => return Some(Ok(key)),
            Some(Err(e)) => hinted_error = Some(e),
            None => {}
        }
        for (k, stanza) in mine.iter().enumerate() {
            if k == hint {
                // Tried above; in age's order its error, if any, is the answer here.
                if let Some(e) = hinted_error.take() {
                    return Some(Err(e));
                }
                continue;
            }
            if let Some(result) = self.unwrap_stanza(stanza) {
                if result.is_ok() {
                    self.stanza_hint.store(k, Ordering::Relaxed);
                }
                return Some(result);
            }
        }
        None
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        match &self.key {
            IdentityKey::Pq(i) => {
                let r = i.to_public().to_string();
                write!(f, "Identity(PQ {}...{})", &r[..16], &r[r.len() - 8..])
            }
            IdentityKey::X25519(i) => write!(f, "Identity(X25519 {})", i.as_age().to_public()),
            IdentityKey::Ssh(_) => f.write_str("Identity(ssh)"),
        }
    }
}

/// `kind:` and 16 hex digits of SHA-256 over `public`.
fn fingerprint_of(kind: &str, public: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(public.as_bytes());
    let mut out = String::with_capacity(kind.len() + 17);
    out.push_str(kind);
    out.push(':');
    for b in &digest[..8] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Whether `text` has the shape of a key fingerprint (`pq:`/`x25519:`/`ssh:` and 16 hex
/// digits), as statuses and metrics carry them.
pub fn is_fingerprint(text: &str) -> bool {
    text.split_once(':').is_some_and(|(kind, hex)| {
        matches!(kind, "pq" | "x25519" | "ssh")
            && hex.len() == 16
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Parses an identity file: age's format (`AGE-SECRET-KEY-1...` lines, `#` comments) or an
/// unencrypted OpenSSH private key.
pub fn parse_identity_file(text: &str) -> Result<Vec<Identity>, ErrorKind> {
    let trimmed = text.trim_start();
    if trimmed.starts_with("-----BEGIN") {
        let identity = age::ssh::Identity::from_buffer(text.as_bytes(), None)
            .map_err(|_| ErrorKind::InvalidIdentity("not a readable SSH private key".into()))?;
        return match identity {
            age::ssh::Identity::Unencrypted(_) => {
                Ok(vec![Identity::new(IdentityKey::Ssh(identity))])
            }
            age::ssh::Identity::Encrypted(_) => Err(ErrorKind::InvalidIdentity(
                "passphrase-protected SSH keys are not supported; use an age identity".into(),
            )),
            age::ssh::Identity::Unsupported(_) => Err(ErrorKind::InvalidIdentity(
                "unsupported SSH key type (use ed25519 or rsa)".into(),
            )),
        };
    }
    if looks_like_manifest(text) {
        return Err(ErrorKind::ManifestAsIdentity);
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("AGE-PLUGIN-") {
            return Err(ErrorKind::InvalidIdentity(format!(
                "line {}: age plugin identities are not supported",
                i + 1
            )));
        }
        let not_identity =
            |_| ErrorKind::InvalidIdentity(format!("line {} is not an age identity", i + 1));
        if line.starts_with("AGE-SECRET-KEY-PQ-1") {
            let id = age::pq::Identity::from_str(line).map_err(not_identity)?;
            out.push(Identity::new(IdentityKey::Pq(id)));
            continue;
        }
        let id = age::x25519::Identity::from_str(line).map_err(not_identity)?;
        out.push(Identity::new(IdentityKey::X25519(X25519Identity::new(id))));
    }
    if out.is_empty() {
        return Err(ErrorKind::InvalidIdentity("no identity in the file".into()));
    }
    Ok(out)
}

fn looks_like_manifest(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start_matches(['"', ' ', '{']);
        l.starts_with("apiVersion") || l.starts_with("kind:") || l.starts_with("kind\"")
    })
}

#[cfg(test)]
mod fingerprint_tests {
    use super::*;

    const TEST_SSH_ED25519: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACAlhG7dPlmZ+1TYs+QnmF0kaQ4JvXWbWi+xBEIyGV608wAAAIjnnws8558L
PAAAAAtzc2gtZWQyNTUxOQAAACAlhG7dPlmZ+1TYs+QnmF0kaQ4JvXWbWi+xBEIyGV608w
AAAEAiZkk/DfRuag6FPmM6SKbG6mYeQIP7Ur4vrhEo25Y+iiWEbt0+WZn7VNiz5CeYXSRp
Dgm9dZtaL7EEQjIZXrTzAAAAAAECAwQF
-----END OPENSSH PRIVATE KEY-----
";

    #[test]
    fn fingerprints_are_short_public_and_stable() {
        let id = Identity::generate();
        let r = id.to_recipient().unwrap();
        let f = r.fingerprint();
        assert!(f.starts_with("pq:") && f.len() == 19, "{f}");
        assert!(is_fingerprint(&f));
        assert_eq!(id.fingerprint().as_deref(), Some(f.as_str()));
        // From the recipient string alone: whoever holds only the public key gets the same.
        let parsed: Recipient = r.to_string().parse().unwrap();
        assert_eq!(parsed.fingerprint(), f);
        let x = Identity::generate_x25519();
        assert!(x.fingerprint().unwrap().starts_with("x25519:"));
        assert_ne!(x.fingerprint().unwrap(), f);
        // An OpenSSH key (a throwaway made for this test by `ssh-keygen -t ed25519`): its
        // recipient is the public key of its .pub file, and so is its fingerprint.
        let ssh = parse_identity_file(TEST_SSH_ED25519).unwrap().remove(0);
        let public =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICWEbt0+WZn7VNiz5CeYXSRpDgm9dZtaL7EEQjIZXrTz";
        assert_eq!(ssh.to_recipient().unwrap().to_string(), public);
        let from_pub: Recipient = format!("{public} alice@host").parse().unwrap();
        assert_eq!(ssh.fingerprint().unwrap(), from_pub.fingerprint());
        assert!(ssh.fingerprint().unwrap().starts_with("ssh:"));
        // A known vector: SHA-256 of the recipient string.
        let known: Recipient = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
            .parse()
            .unwrap();
        // sha256("age1ql3z...mcac8p") starts cf7e568231315068 (Python's hashlib).
        assert_eq!(known.fingerprint(), "x25519:cf7e568231315068");
        for bad in [
            "pq:0123",
            "rsa:0123456789abcdef",
            "pq:0123456789ABCDEF",
            "x25519",
        ] {
            assert!(!is_fingerprint(bad), "{bad}");
        }
    }
}
