//! Finding the nearest `.gitops-seal.yaml` and turning a rule's recipient entries (strings,
//! files, globs of files) into recipients.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use globset::GlobBuilder;

use crate::core::error::{Error, ErrorKind};
use crate::core::keys::{self, Recipient};
use crate::core::rules::{Config, Rule, RuleMatch, CONFIG_FILE_NAME};

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

/// Rule discovery for many files: each folder's nearest config is found and loaded once,
/// and each rule's recipient entries are resolved once.
#[derive(Default)]
pub struct Rules {
    configs: HashMap<PathBuf, Option<LoadedConfig>>,
    resolved: HashMap<(PathBuf, usize), Vec<Recipient>>,
}

impl Rules {
    /// What the nearest `.gitops-seal.yaml` above `file` says about it. For stdin (`-`), the
    /// current folder stands for the file's.
    pub fn for_file(&mut self, file: &Path) -> Result<RuleMatch, Error> {
        let abs = if file == Path::new("-") {
            std::env::current_dir()
                .map_err(|e| Error::io(Path::new("."), e))?
                .join("-")
        } else {
            fs::canonicalize(file).map_err(|e| Error::io(file, e))?
        };
        let dir = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
        if !self.configs.contains_key(&dir) {
            let loaded = match find_config(&dir) {
                Some(p) => Some(load_config(&p)?),
                None => None,
            };
            self.configs.insert(dir.clone(), loaded);
        }
        let Some(loaded) = &self.configs[&dir] else {
            return Ok(RuleMatch::default());
        };
        let rel = relative_slash_path(&loaded.dir, &abs);
        let ignored = loaded.config.is_ignored(&rel);
        let Some(index) = loaded.config.rule_index_for(&rel) else {
            return Ok(RuleMatch {
                ignored,
                require_pq: loaded.config.require_pq,
                ..RuleMatch::default()
            });
        };
        let rule = &loaded.config.rules[index];
        let key = (loaded.path.clone(), index);
        if !self.resolved.contains_key(&key) {
            let recipients = rule_recipients(loaded, rule)?;
            self.resolved.insert(key.clone(), recipients);
        }
        Ok(RuleMatch {
            recipients: Some(self.resolved[&key].clone()),
            scope: rule.scope,
            namespace: rule.namespace.clone(),
            ignored,
            require_pq: rule.require_pq,
        })
    }
}

/// The config at the root of a work tree, or an empty one (what `scan --history` honours).
pub fn root_config(workdir: &Path) -> Result<Config, Error> {
    let path = workdir.join(CONFIG_FILE_NAME);
    if path.is_file() {
        Ok(load_config(&path)?.config)
    } else {
        Ok(Config::default())
    }
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
        if keys::is_private_key(entry) {
            return Err(in_config(ErrorKind::IdentityAsRecipient));
        }
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
    let out = keys::dedup_recipients(out);
    keys::check_kinds(&out, false, &format!("rule {:?}", rule.path)).map_err(in_config)?;
    Ok(out)
}

/// Reads a recipients file in age's format; errors name the file and line.
pub fn read_recipients_file(path: &Path) -> Result<Vec<Recipient>, Error> {
    let text = if path == Path::new("-") {
        let bytes = super::files::read_input(path).map_err(|e| Error::io(path, e))?;
        String::from_utf8(bytes.to_vec()).unwrap_or_default()
    } else {
        fs::read_to_string(path).map_err(|e| Error::io(path, e))?
    };
    let in_file = |e: Error| e.in_file(path.display().to_string());
    let list = keys::parse_recipients_file(&text).map_err(in_file)?;
    keys::check_kinds(&list, false, "this recipients file").map_err(|e| in_file(Error::from(e)))?;
    Ok(list)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::binding::Scope;
    use crate::core::keys::Identity;

    fn recipient() -> String {
        Identity::generate().to_recipient().unwrap().to_string()
    }

    #[test]
    fn the_nearest_config_governs_and_rules_match_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (prod, dev, nested) = (recipient(), recipient(), recipient());
        fs::create_dir_all(root.join("keys")).unwrap();
        fs::write(root.join("keys/prod.pub"), format!("# prod\n{prod}\n")).unwrap();
        fs::write(
            root.join(CONFIG_FILE_NAME),
            format!(
                "rules:\n  - path: \"clusters/prod/**\"\n    recipients: [\"keys/*.pub\"]\n    scope: namespace\n  - path: \"**\"\n    recipients: [\"{dev}\"]\n    namespace: dev\nignore: [\"charts/**\"]\n"
            ),
        )
        .unwrap();
        fs::create_dir_all(root.join("clusters/prod")).unwrap();
        fs::create_dir_all(root.join("charts/x")).unwrap();
        fs::create_dir_all(root.join("team/sub")).unwrap();
        fs::write(
            root.join("team/.gitops-seal.yaml"),
            format!("rules:\n  - path: \"sub/*.yaml\"\n    recipients: [\"{nested}\"]\n"),
        )
        .unwrap();
        for f in [
            "clusters/prod/db.yaml",
            "charts/x/s.yaml",
            "a.yaml",
            "team/sub/s.yaml",
            "team/t.yaml",
        ] {
            fs::write(root.join(f), "").unwrap();
        }
        let mut rules = Rules::default();
        let m = rules.for_file(&root.join("clusters/prod/db.yaml")).unwrap();
        let names = |m: &RuleMatch| -> Vec<String> {
            m.recipients
                .iter()
                .flatten()
                .map(|r| r.to_string())
                .collect()
        };
        assert_eq!(names(&m), [prod]);
        assert_eq!(m.scope, Some(Scope::Namespace));
        assert_eq!(m.namespace, None);
        assert!(!m.ignored);
        let m = rules.for_file(&root.join("a.yaml")).unwrap();
        assert_eq!(names(&m), [dev]);
        assert_eq!(m.namespace.as_deref(), Some("dev"));
        assert!(
            rules
                .for_file(&root.join("charts/x/s.yaml"))
                .unwrap()
                .ignored
        );
        // A nearer config replaces the root one entirely.
        let m = rules.for_file(&root.join("team/sub/s.yaml")).unwrap();
        assert_eq!(names(&m), [nested]);
        let m = rules.for_file(&root.join("team/t.yaml")).unwrap();
        assert!(m.recipients.is_none() && !m.ignored);
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let e = Rules::default().for_file(&missing).unwrap_err();
        assert_eq!(e.reason(), "IoError");
        assert_eq!(
            e.location.file.as_deref(),
            Some(missing.display().to_string().as_str())
        );
    }

    #[test]
    fn a_bad_recipients_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.txt");
        fs::write(&f, format!("# ok\n{}\nage1plugin1xyz\n", recipient())).unwrap();
        let e = read_recipients_file(&f).unwrap_err();
        assert_eq!(
            e.location.file.as_deref(),
            Some(f.display().to_string().as_str())
        );
        assert_eq!(e.location.line, Some(3));
        assert_eq!(e.reason(), "KeyError");
    }

    #[test]
    fn a_glob_that_matches_nothing_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(CONFIG_FILE_NAME),
            "rules:\n  - path: \"**\"\n    recipients: [\"keys/*.pub\"]\n",
        )
        .unwrap();
        fs::write(dir.path().join("a.yaml"), "").unwrap();
        let e = Rules::default()
            .for_file(&dir.path().join("a.yaml"))
            .unwrap_err();
        assert!(e.to_string().contains("matches no file"), "{e}");
    }
}
