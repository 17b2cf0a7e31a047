//! Identity files: finding them (`-i`, `$GITOPS_SEAL_IDENTITY`, the config folder), reading
//! them with a warning when others can read them, and writing new ones with mode 0600.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::core::error::{Error, ErrorKind};
use crate::core::keys::{self, Identity};

pub const IDENTITY_ENV: &str = "GITOPS_SEAL_IDENTITY";

/// `$XDG_CONFIG_HOME/gitops-seal/identity.txt`, else `~/.config/gitops-seal/identity.txt`.
pub fn default_identity_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("gitops-seal").join("identity.txt"))
}

/// Loads identities from `-i` files; else `$GITOPS_SEAL_IDENTITY` (a path, or the key itself);
/// else the default path. `warn` receives one line per file others can read.
pub fn load_identities(
    explicit: &[PathBuf],
    warn: &mut dyn FnMut(String),
) -> Result<Vec<Identity>, Error> {
    if !explicit.is_empty() {
        let mut out = Vec::new();
        for p in explicit {
            out.extend(read_identity_file(p, warn)?);
        }
        return Ok(out);
    }
    if let Some(v) = std::env::var_os(IDENTITY_ENV).filter(|v| !v.is_empty()) {
        let s = v.to_string_lossy();
        // Key text (a bare key, a whole identity file with its comments, an SSH key) is parsed
        // as such; only a single line with no key in it is a path. Key text must never be
        // taken for a path: the "no such file" error would print it.
        let key_text = s.contains('\n')
            || s.contains("-----BEGIN")
            || s.as_bytes()
                .windows("AGE-SECRET-KEY-".len())
                .any(|w| w.eq_ignore_ascii_case(b"AGE-SECRET-KEY-"));
        if key_text {
            let text = zeroize::Zeroizing::new(s.into_owned());
            return keys::parse_identity_file(&text)
                .map_err(|e| Error::from(e).in_file(format!("${IDENTITY_ENV}")));
        }
        // A path, then. If it is not one, the value is not shown: it may be a key in a form
        // not recognised above (base64 of a key file, a key without its prefix).
        let path = Path::new(&v);
        if !path.exists() {
            return Err(ErrorKind::InvalidIdentity(format!(
                "${IDENTITY_ENV} is neither an existing file nor an age identity"
            ))
            .into());
        }
        return read_identity_file(path, warn);
    }
    match default_identity_path() {
        Some(p) if p.exists() => read_identity_file(&p, warn),
        _ => Err(ErrorKind::NoIdentity {
            default: default_identity_path().map(|p| p.display().to_string()),
        }
        .into()),
    }
}

pub fn read_identity_file(
    path: &Path,
    warn: &mut dyn FnMut(String),
) -> Result<Vec<Identity>, Error> {
    let bytes = super::files::read_input(path).map_err(|e| Error::io(path, e))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Error::from(ErrorKind::InvalidIdentity("not a text file".into()))
            .in_file(path.display().to_string())
    })?;
    let ids = keys::parse_identity_file(text)
        .map_err(|e| Error::from(e).in_file(path.display().to_string()))?;
    // Only a real identity is worth a permissions warning.
    if path != Path::new("-") {
        check_private(path, "identity file", warn);
    }
    Ok(ids)
}

#[cfg(unix)]
fn check_private(path: &Path, what: &str, warn: &mut dyn FnMut(String)) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warn(format!(
                "{what} {} can be read by others (mode {mode:04o}); run: chmod 600 {}",
                path.display(),
                path.display()
            ));
        }
    }
}

#[cfg(not(unix))]
fn check_private(_: &Path, _: &str, _: &mut dyn FnMut(String)) {}

/// Writes a new identity file with mode 0600. Never overwrites.
pub fn write_new_identity(path: &Path, text: &str) -> Result<(), Error> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::from(ErrorKind::IdentityExists).in_file(path.display().to_string())
        } else {
            Error::io(path, e)
        }
    })?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(path, e))
}

/// Reads the Sealed Secrets controller's private keys (for `import sealed-secrets`) from each
/// file: a key backup (`kubectl get secret -l sealedsecrets.bitnami.com/sealed-secrets-key
/// -o yaml`) or PEM. `warn` receives one line per file others can read.
pub fn read_sealed_secrets_keys(
    paths: &[PathBuf],
    warn: &mut dyn FnMut(String),
) -> Result<Vec<crate::core::import::bitnami::ControllerKey>, Error> {
    let mut out = Vec::new();
    for path in paths {
        let bytes = super::files::read_input(path).map_err(|e| Error::io(path, e))?;
        let in_file = |e: ErrorKind| Error::from(e).in_file(path.display().to_string());
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| in_file(ErrorKind::InvalidImportKey("not a text file".into())))?;
        out.extend(
            crate::core::import::bitnami::parse_keys(text)
                .map_err(|e| e.in_file(path.display().to_string()))?,
        );
        if path != Path::new("-") {
            check_private(path, "key file", warn);
        }
    }
    Ok(out)
}
