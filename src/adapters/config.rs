//! Finding the nearest `.gitops-seal.yaml` and turning a rule's recipient entries (strings,
//! files, globs of files) into recipients.

use std::fs;
use std::path::{Path, PathBuf};

use globset::GlobBuilder;

use crate::core::error::{Error, ErrorKind};
use crate::core::keys::{self, Recipient};
use crate::core::rules::{Config, Rule, CONFIG_FILE_NAME};

/// A parsed config and the folder its paths are relative to.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub config: Config,
}

/// The nearest `.gitops-seal.yaml` in `start` or a parent folder.
pub fn find_config(start: &Path) -> Option<PathBuf> {
    let start = fs::canonicalize(start).ok()?;
    start
        .ancestors()
        .map(|d| d.join(CONFIG_FILE_NAME))
        .find(|p| p.is_file())
}

pub fn load_config(path: &Path) -> Result<LoadedConfig, Error> {
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let config =
        Config::parse(&text).map_err(|e| Error::from(e).in_file(path.display().to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    Ok(LoadedConfig {
        path: path.to_path_buf(),
        dir,
        config,
    })
}

/// The config governing `file` (the nearest one above it) and `file`'s path relative to its
/// folder. For stdin, the current folder is used.
pub fn config_for(file: &Path) -> Result<Option<(LoadedConfig, String)>, Error> {
    let abs = if file == Path::new("-") {
        std::env::current_dir()
            .map_err(|e| Error::io(Path::new("."), e))?
            .join("-")
    } else {
        fs::canonicalize(file).map_err(|e| Error::io(file, e))?
    };
    let Some(config_path) = find_config(abs.parent().unwrap_or(Path::new("/"))) else {
        return Ok(None);
    };
    let loaded = load_config(&config_path)?;
    let rel = relative_slash_path(&loaded.dir, &abs);
    Ok(Some((loaded, rel)))
}

pub fn relative_slash_path(dir: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(dir).unwrap_or(file);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Resolves a rule's recipient entries relative to the config folder.
pub fn rule_recipients(loaded: &LoadedConfig, rule: &Rule) -> Result<Vec<Recipient>, Error> {
    let in_config = |e: ErrorKind| Error::from(e).in_file(loaded.path.display().to_string());
    let mut out = Vec::new();
    for entry in &rule.recipients {
        if entry.starts_with("age1") || entry.starts_with("ssh-") {
            out.push(entry.parse().map_err(in_config)?);
        } else if entry.contains(['*', '?', '[', '{']) {
            let files = glob_files(&loaded.dir, entry).map_err(in_config)?;
            if files.is_empty() {
                return Err(in_config(ErrorKind::Invalid(format!(
                    "recipients glob {entry:?} matches no file"
                ))));
            }
            for f in files {
                out.extend(read_recipients_file(&f)?);
            }
        } else {
            out.extend(read_recipients_file(&loaded.dir.join(entry))?);
        }
    }
    if out.is_empty() {
        return Err(in_config(ErrorKind::NoRecipients));
    }
    Ok(keys::dedup_recipients(out))
}

/// Reads a recipients file in age's format; errors name the file and line.
pub fn read_recipients_file(path: &Path) -> Result<Vec<Recipient>, Error> {
    let text = if path == Path::new("-") {
        let bytes = super::files::read_input(path).map_err(|e| Error::io(path, e))?;
        String::from_utf8(bytes.to_vec()).unwrap_or_default()
    } else {
        fs::read_to_string(path).map_err(|e| Error::io(path, e))?
    };
    keys::parse_recipients_file(&text).map_err(|e| e.in_file(path.display().to_string()))
}

/// Files under `dir` whose relative path matches `pattern`, sorted. Only the folder before
/// the first glob character is walked.
fn glob_files(dir: &Path, pattern: &str) -> Result<Vec<PathBuf>, ErrorKind> {
    // Relative paths are compared without a leading `./`, so the pattern must not have one.
    let pattern = pattern.trim_start_matches("./");
    let matcher = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|source| ErrorKind::InvalidGlob {
            pattern: pattern.to_string(),
            source,
        })?
        .compile_matcher();
    let fixed: PathBuf = Path::new(pattern)
        .components()
        .take_while(|c| {
            !c.as_os_str()
                .to_string_lossy()
                .contains(['*', '?', '[', '{'])
        })
        .collect();
    let mut out = Vec::new();
    let mut stack = vec![dir.join(&fixed)];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if matcher.is_match(relative_slash_path(dir, &p)) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
