//! Typed errors. Every error a user sees carries a [`Location`] (file, document, object, key)
//! and a [`ErrorKind`]; the kind has a stable [`ErrorKind::reason`] that becomes a status
//! condition reason or a metric label in the controller.
//!
//! No variant ever holds secret bytes: messages name places, never values.

use std::fmt;

/// Where a problem is. Each part is optional; `Display` prints the parts that are known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub file: Option<String>,
    /// 1-based line, in line-oriented files (a recipients file).
    pub line: Option<usize>,
    /// 1-based index of the document in its file (empty documents are not counted).
    pub document: Option<usize>,
    /// `Kind namespace/name` or `Kind name`.
    pub object: Option<String>,
    pub key: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            if !std::mem::take(&mut first) {
                f.write_str(": ")?;
            }
            Ok(())
        };
        if let Some(file) = &self.file {
            sep(f)?;
            f.write_str(file)?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
        } else if let Some(line) = self.line {
            sep(f)?;
            write!(f, "line {line}")?;
        }
        if let Some(doc) = self.document {
            sep(f)?;
            write!(f, "document {doc}")?;
            if let Some(object) = &self.object {
                write!(f, " ({object})")?;
            }
        } else if let Some(object) = &self.object {
            sep(f)?;
            f.write_str(object)?;
        }
        if let Some(key) = &self.key {
            sep(f)?;
            write!(f, "key {key:?}")?;
        }
        Ok(())
    }
}

/// What went wrong. Variants that wrap a failure of another library keep it, typed, as their
/// [`std::error::Error::source`]: an [`std::io::Error`], one of age's errors, a [`git2::Error`].
/// Messages describe the problem only; what to type about it is the caller's (the CLI's) to say.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("file is empty")]
    Empty,
    #[error("not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("document is {size} bytes, over the limit of {limit} bytes (Kubernetes objects are at most 1.5 MiB)")]
    TooLarge { size: usize, limit: usize },
    #[error("file is {size} bytes, over the limit of {limit} bytes")]
    FileTooLarge { size: usize, limit: usize },
    #[error("more than {limit} documents in one file")]
    TooManyDocuments { limit: usize },
    /// kubectl would read a plaintext Secret here (or this cannot be judged and may be one).
    #[error("{0}")]
    PlaintextForKubectl(String),
    /// A private key (age identity or PEM block) where a recipient belongs. The key is never
    /// part of the message.
    #[error("this is an identity, not a recipient (its private key is not shown)")]
    IdentityAsRecipient,
    #[error("invalid YAML at line {line}: {message}")]
    Yaml { line: usize, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("invalid glob {pattern:?}: {}", .source.kind())]
    InvalidGlob {
        pattern: String,
        source: globset::Error,
    },
    #[error("missing field {0}")]
    MissingField(&'static str),
    #[error("data value is not valid base64")]
    InvalidBase64,
    #[error("encryptedData value is not valid base64")]
    InvalidCiphertextBase64,
    #[error("invalid key name (Secret keys are made of letters, digits, '-', '_' and '.')")]
    InvalidKeyName,
    #[error("unknown scope {0:?} (expected strict, namespace or cluster)")]
    UnknownScope(String),
    /// A name or namespace Kubernetes would refuse (the object's location names it).
    #[error("{field} is not a valid Kubernetes name (it must be {rule})")]
    InvalidObjectName {
        field: &'static str,
        rule: &'static str,
    },
    #[error("no namespace to bind to scope {scope}")]
    MissingNamespace { scope: &'static str },
    #[error("no recipients")]
    NoRecipients,
    /// Post-quantum (`age1pq1...`) and classical recipients in one list: a value sealed for
    /// both is only as strong as the classical key. `list` names the list (a rule, a file,
    /// `-r/-R`); `classical` the classical recipients in it (public keys only).
    #[error("{list} mixes post-quantum (age1pq1...) and classical recipients; a value sealed for both is only as strong as the classical one. Classical: {}", .classical.join(", "))]
    MixedRecipients {
        list: String,
        classical: Vec<String>,
    },
    /// `require_pq` is set, and the recipients of `list` include classical ones.
    #[error("{list} has classical recipients, and require_pq allows only post-quantum (age1pq1...) ones. Classical: {}", .classical.join(", "))]
    PqRequired {
        list: String,
        classical: Vec<String>,
    },
    #[error("invalid recipient {recipient:?}: {reason}")]
    InvalidRecipient { recipient: String, reason: String },
    #[error("invalid identity: {0}")]
    InvalidIdentity(String),
    /// A Kubernetes manifest where an identity file was expected.
    #[error("invalid identity: this is a Kubernetes manifest, not an identity")]
    ManifestAsIdentity,
    /// No identity given and none at the default place (`default`, when there is one).
    #[error("no identity")]
    NoIdentity { default: Option<String> },
    #[error("already exists")]
    IdentityExists,
    #[error("not an age-encrypted value ({detail})")]
    NotAge {
        detail: &'static str,
        #[source]
        source: Option<age::DecryptError>,
    },
    #[error("ciphertext is corrupt or truncated (the age payload failed authentication)")]
    Corrupt,
    #[error("none of the identities can open this value (it was sealed for other recipients)")]
    NoMatchingIdentity,
    #[error("value carries no gitops-seal binding (was it sealed with plain age?)")]
    MissingBinding,
    #[error("value was sealed for {field} {sealed:?}, not {found:?} (scope {scope}); a ciphertext cannot be moved")]
    ScopeMismatch {
        field: &'static str,
        sealed: String,
        found: String,
        scope: &'static str,
    },
    #[error("no such SealedSecret {0:?} in this file")]
    NoSuchObject(String),
    /// A template label or annotation the deny list refuses (the controller's own keys, a
    /// Secret-replication annotation).
    #[error("{0}")]
    DeniedTemplateKey(Denied),
    #[error("{0:?} matches more than one SealedSecret in this file")]
    AmbiguousObject(String),
    #[error("no such key in encryptedData")]
    NoSuchKey,
    #[error(
        "recipients {found} differ from the rule for this path in .gitops-seal.yaml ({expected})"
    )]
    RecipientsDifferFromRule { found: String, expected: String },
    /// A new recipient list for one value of a SealedSecret whose other values keep the old.
    #[error("the other values are sealed for the file's recipient list")]
    RecipientsDifferFromFile,
    /// After an edit, a Secret that was sealed is no longer a v1 Secret of the same name.
    #[error("{object} is no longer a sealed Secret after the edit (its apiVersion, kind or name changed): it would be written in plaintext")]
    NoLongerSealed { object: String },
    /// After an edit, the file would still hold a plaintext Secret.
    #[error("the edited file would still hold a plaintext Secret")]
    StillPlaintext,
    #[error("sealing failed")]
    Seal(#[source] age::EncryptError),
    /// import: none of the Sealed Secrets controller keys opens a value for the label its scope
    /// gives (another controller's key, or a value moved to another name or namespace).
    #[error("none of the sealed-secrets keys opens this value (scope {scope}: sealed for another controller key, name or namespace)")]
    ImportKeyMismatch { scope: &'static str },
    /// import: a value opened with a key but its AES-GCM payload failed authentication.
    #[error("value is corrupt or tampered ({0})")]
    ImportTampered(&'static str),
    /// import: a key file holds no usable RSA private key.
    #[error("invalid sealed-secrets key: {0}")]
    InvalidImportKey(String),
    /// import: a Bitnami SealedSecret field gitops-seal cannot carry over.
    #[error("{0}")]
    ImportUnsupported(String),
    /// import: a SOPS-encrypted document that is not a `v1 Secret` (only Secrets are imported,
    /// and nothing is written in plaintext).
    #[error("this SOPS-encrypted {object} is not a v1 Secret; only Secrets are imported (nothing is written in plaintext)")]
    ImportNotSecret { object: String },
    /// import: the SOPS file's MAC does not match its values (tampered, or edited without sops).
    #[error("SOPS MAC mismatch: the file's values were changed after it was encrypted")]
    SopsMacMismatch,
    /// import: the SOPS data key is sealed only for key types other than age.
    #[error(
        "the SOPS data key is not sealed for any age recipient (it is sealed for {found} only)"
    )]
    SopsUnsupportedKeyGroup { found: String },
    /// import: a label or annotation value that sops encrypted; a SealedSecret's template
    /// carries labels and annotations in clear, so it is not imported (the key is the
    /// location's).
    #[error("sops encrypted this {field} value, and a SealedSecret carries {field}s in clear")]
    SopsEncryptedMetadata { field: &'static str },
    /// import: a Secret in which sops encrypted something (`path`, keys joined with `.`) but
    /// which has no `data`/`stringData` value to seal: writing it would write plaintext.
    #[error("sops encrypted {path} but the Secret has no data or stringData values to seal; it would be written in plaintext")]
    SopsNothingToSeal { path: String },
    /// import: a SOPS file's structure or options gitops-seal does not handle.
    #[error("{0}")]
    SopsUnsupported(String),
    /// An in-place write to a file with more than one hard link: the rename would give this
    /// path new content and leave the old (a plaintext Secret, say) in every other link.
    #[error("the file has {links} hard links: replacing it would leave its old content in the other {}", .links - 1)]
    HardLinked { links: u64 },
    /// A file-system or process failure, worded as the OS words it (the cause is kept).
    #[error("{}", io_message(.0))]
    Io(#[source] std::io::Error),
    #[error("{}", .0.message())]
    Git(#[source] git2::Error),
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

impl ErrorKind {
    /// A stable, CamelCase reason: a status-condition reason and a metric label. Every variant
    /// is named here, so a new one has to choose its reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ErrorKind::ScopeMismatch { .. } => "ScopeMismatch",
            // None of the identities held is a recipient of the value (or none is held).
            ErrorKind::NoMatchingIdentity | ErrorKind::ImportKeyMismatch { .. } => "KeyMissing",
            ErrorKind::NotAge { .. }
            | ErrorKind::Corrupt
            | ErrorKind::MissingBinding
            | ErrorKind::InvalidCiphertextBase64
            | ErrorKind::ImportTampered(_)
            | ErrorKind::SopsMacMismatch => "DecryptFailed",
            ErrorKind::NoRecipients
            | ErrorKind::MixedRecipients { .. }
            | ErrorKind::PqRequired { .. }
            | ErrorKind::InvalidRecipient { .. }
            | ErrorKind::InvalidIdentity(_)
            | ErrorKind::ManifestAsIdentity
            | ErrorKind::IdentityAsRecipient
            | ErrorKind::NoIdentity { .. }
            | ErrorKind::RecipientsDifferFromRule { .. }
            | ErrorKind::InvalidImportKey(_)
            | ErrorKind::SopsUnsupportedKeyGroup { .. } => "KeyError",
            ErrorKind::Seal(_) => "SealFailed",
            ErrorKind::Io(_)
            | ErrorKind::IdentityExists
            | ErrorKind::Git(_)
            | ErrorKind::HardLinked { .. } => "IoError",
            // The file or document itself: not text, not YAML, too large, empty.
            ErrorKind::Empty
            | ErrorKind::NotUtf8 { .. }
            | ErrorKind::TooLarge { .. }
            | ErrorKind::FileTooLarge { .. }
            | ErrorKind::TooManyDocuments { .. }
            | ErrorKind::PlaintextForKubectl(_)
            | ErrorKind::Yaml { .. }
            | ErrorKind::InvalidGlob { .. }
            | ErrorKind::NoSuchObject(_)
            | ErrorKind::AmbiguousObject(_)
            | ErrorKind::NoSuchKey
            | ErrorKind::RecipientsDifferFromFile
            | ErrorKind::NoLongerSealed { .. }
            | ErrorKind::StillPlaintext
            | ErrorKind::ImportNotSecret { .. }
            | ErrorKind::SopsNothingToSeal { .. }
            | ErrorKind::SopsUnsupported(_) => "InvalidManifest",
            // One object's fields: what a SealedSecret's status shows as InvalidSpec.
            ErrorKind::Invalid(_)
            | ErrorKind::MissingField(_)
            | ErrorKind::InvalidBase64
            | ErrorKind::InvalidKeyName
            | ErrorKind::DeniedTemplateKey(_)
            | ErrorKind::SopsEncryptedMetadata { .. }
            | ErrorKind::InvalidObjectName { .. }
            | ErrorKind::UnknownScope(_)
            | ErrorKind::MissingNamespace { .. }
            | ErrorKind::ImportUnsupported(_) => "InvalidSpec",
        }
    }
}

impl From<std::io::Error> for ErrorKind {
    fn from(e: std::io::Error) -> Self {
        ErrorKind::Io(e)
    }
}

impl From<git2::Error> for ErrorKind {
    fn from(e: git2::Error) -> Self {
        ErrorKind::Git(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        ErrorKind::Io(e).into()
    }
}

impl From<git2::Error> for Error {
    fn from(e: git2::Error) -> Self {
        ErrorKind::Git(e).into()
    }
}

/// Why an in-place write was refused, carried inside an [`std::io::Error`] from the write
/// itself to [`Error::io`]: the file has this many hard links.
#[derive(Debug)]
pub struct HardLinks(pub u64);

impl fmt::Display for HardLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the file has {} hard links", self.0)
    }
}

impl std::error::Error for HardLinks {}

/// An [`ErrorKind`] at a [`Location`]. Its [`source`](std::error::Error::source) is the kind's
/// typed cause, if it has one, so a printed chain reaches the OS, age or Git error beneath.
#[derive(Debug)]
pub struct Error {
    /// Boxed: errors travel through every `Result` of the crate, and most carry no location.
    pub location: Box<Location>,
    pub kind: ErrorKind,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self.location == Location::default() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.location, self.kind)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error {
            location: Box::default(),
            kind,
        }
    }
}

impl Error {
    /// An I/O error on `path`; the error itself is kept as the cause. An in-place write
    /// refused for [`HardLinks`] becomes [`ErrorKind::HardLinked`].
    pub fn io(path: &std::path::Path, e: std::io::Error) -> Self {
        let kind = match e.get_ref().and_then(|i| i.downcast_ref::<HardLinks>()) {
            Some(HardLinks(links)) => ErrorKind::HardLinked { links: *links },
            None => ErrorKind::Io(e),
        };
        Error::from(kind).in_file(path.display().to_string())
    }

    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.location.file.get_or_insert_with(|| file.into());
        self
    }
    pub fn at_line(mut self, line: usize) -> Self {
        self.location.line.get_or_insert(line);
        self
    }
    pub fn in_document(mut self, document: usize) -> Self {
        self.location.document.get_or_insert(document);
        self
    }
    pub fn in_object(mut self, object: impl Into<String>) -> Self {
        self.location.object.get_or_insert_with(|| object.into());
        self
    }
    pub fn at_key(mut self, key: impl Into<String>) -> Self {
        self.location.key.get_or_insert_with(|| key.into());
        self
    }
}

/// Adds location context to results.
pub trait ResultExt<T> {
    fn in_document(self, document: usize) -> Result<T, Error>;
    fn in_object(self, object: &str) -> Result<T, Error>;
    fn at_key(self, key: &str) -> Result<T, Error>;
}

impl<T, E: Into<Error>> ResultExt<T> for Result<T, E> {
    fn in_document(self, document: usize) -> Result<T, Error> {
        self.map_err(|e| e.into().in_document(document))
    }
    fn in_object(self, object: &str) -> Result<T, Error> {
        self.map_err(|e| e.into().in_object(object))
    }
    fn at_key(self, key: &str) -> Result<T, Error> {
        self.map_err(|e| e.into().at_key(key))
    }
}

/// A label or annotation key of a template that the deny list (`core::deny`) refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// `labels` or `annotations`.
    pub field: &'static str,
    pub key: String,
    /// The glob it matched.
    pub pattern: String,
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "spec.template.metadata.{} carries {:?}, refused by the template deny list ({:?})",
            self.field, self.key, self.pattern
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn an_io_error_keeps_its_cause_typed() {
        let e = Error::io(
            std::path::Path::new("a.yaml"),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert_eq!(e.to_string(), "a.yaml: no such file or directory");
        assert_eq!(e.reason(), "IoError");
        let cause = e.source().expect("a cause");
        assert_eq!(
            cause.downcast_ref::<std::io::Error>().map(|io| io.kind()),
            Some(std::io::ErrorKind::NotFound)
        );
    }

    #[test]
    fn git_and_age_causes_are_kept() {
        let git: Error = git2::Error::from_str("boom").into();
        assert!(git
            .source()
            .unwrap()
            .downcast_ref::<git2::Error>()
            .is_some());
        assert_eq!(git.reason(), "IoError");
        let seal = Error::from(ErrorKind::Seal(age::EncryptError::MissingRecipients));
        assert!(seal
            .source()
            .unwrap()
            .downcast_ref::<age::EncryptError>()
            .is_some());
        assert_eq!(seal.reason(), "SealFailed");
        let not_age = Error::from(ErrorKind::NotAge {
            detail: "invalid header",
            source: Some(age::DecryptError::InvalidHeader),
        });
        assert_eq!(
            not_age.to_string(),
            "not an age-encrypted value (invalid header)"
        );
        assert!(not_age
            .source()
            .unwrap()
            .downcast_ref::<age::DecryptError>()
            .is_some());
        assert_eq!(not_age.reason(), "DecryptFailed");
    }

    #[test]
    fn errors_without_a_cause_have_no_source() {
        assert!(Error::from(ErrorKind::NoSuchKey).source().is_none());
        assert!(Error::from(ErrorKind::Corrupt).source().is_none());
    }

    #[test]
    fn a_line_follows_its_file() {
        let e = Error::from(ErrorKind::NoRecipients)
            .at_line(3)
            .in_file("keys.txt");
        assert_eq!(e.to_string(), "keys.txt:3: no recipients");
        let e = Error::from(ErrorKind::NoRecipients).at_line(3);
        assert_eq!(e.to_string(), "line 3: no recipients");
    }

    #[test]
    fn messages_carry_no_command_line_wording() {
        let kinds = [
            ErrorKind::MissingNamespace { scope: "strict" },
            ErrorKind::NoRecipients,
            ErrorKind::ManifestAsIdentity,
            ErrorKind::NoIdentity { default: None },
            ErrorKind::IdentityExists,
            ErrorKind::AmbiguousObject("db".into()),
            ErrorKind::RecipientsDifferFromRule {
                found: "a".into(),
                expected: "b".into(),
            },
            ErrorKind::RecipientsDifferFromFile,
            ErrorKind::NoLongerSealed {
                object: "Secret a".into(),
            },
            ErrorKind::StillPlaintext,
            ErrorKind::ImportKeyMismatch { scope: "strict" },
            ErrorKind::ImportTampered("AES-GCM authentication failed"),
            ErrorKind::ImportNotSecret {
                object: "ConfigMap a".into(),
            },
            ErrorKind::SopsMacMismatch,
            ErrorKind::SopsUnsupportedKeyGroup {
                found: "pgp".into(),
            },
        ];
        for kind in kinds {
            let text = kind.to_string();
            for flag in ["--", " -r", " -n", " -i", "gitops-seal ", "keygen", "rekey"] {
                assert!(!text.contains(flag), "{text:?} holds {flag:?}");
            }
        }
    }
}
