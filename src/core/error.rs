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

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("file is empty")]
    Empty,
    #[error("not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("document is {size} bytes, over the limit of {limit} bytes (Kubernetes objects are at most 1.5 MiB)")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid YAML at line {line}: {message}")]
    Yaml { line: usize, message: String },
    #[error("{0}")]
    Invalid(String),
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
    #[error("no namespace to bind to scope {scope}: set metadata.namespace, pass --namespace/-n, or add `namespace:` to the matching rule in .gitops-seal.yaml")]
    MissingNamespace { scope: &'static str },
    #[error("no recipients: pass -r/-R, or add a rule matching this path to .gitops-seal.yaml")]
    NoRecipients,
    #[error("invalid recipient {recipient:?}: {reason}")]
    InvalidRecipient { recipient: String, reason: String },
    #[error("invalid identity: {0}")]
    InvalidIdentity(String),
    #[error("not an age-encrypted value ({0})")]
    NotAge(String),
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
    #[error("{0:?} matches more than one SealedSecret in this file; pass --namespace/-n")]
    AmbiguousObject(String),
    #[error("no such key in encryptedData")]
    NoSuchKey,
    #[error("recipients {found} differ from the rule for this path in .gitops-seal.yaml ({expected}); pass -r/-R to seal to a new list on purpose")]
    RecipientsDifferFromRule { found: String, expected: String },
    #[error("sealing failed: {0}")]
    Seal(String),
    #[error("{0}")]
    Io(String),
}

impl ErrorKind {
    /// A stable, CamelCase reason: a status-condition reason and a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            ErrorKind::ScopeMismatch { .. } => "ScopeMismatch",
            ErrorKind::NotAge(_)
            | ErrorKind::Corrupt
            | ErrorKind::NoMatchingIdentity
            | ErrorKind::MissingBinding
            | ErrorKind::InvalidCiphertextBase64 => "DecryptFailed",
            ErrorKind::NoRecipients
            | ErrorKind::InvalidRecipient { .. }
            | ErrorKind::InvalidIdentity(_)
            | ErrorKind::RecipientsDifferFromRule { .. } => "KeyError",
            ErrorKind::Seal(_) => "SealFailed",
            ErrorKind::Io(_) => "IoError",
            _ => "InvalidManifest",
        }
    }
}

/// An [`ErrorKind`] at a [`Location`].
#[derive(Debug, Clone, PartialEq, Eq)]
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

impl std::error::Error for Error {}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error {
            location: Box::default(),
            kind,
        }
    }
}

impl Error {
    /// An I/O error on `path`, with the OS's wording.
    pub fn io(path: &std::path::Path, e: &std::io::Error) -> Self {
        let message = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        Error::from(ErrorKind::Io(message)).in_file(path.display().to_string())
    }

    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }
    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.location.file.get_or_insert_with(|| file.into());
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
