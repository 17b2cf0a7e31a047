//! The pre-commit hook (`hook install|uninstall|run`), `scan` of a tree or of all history, and
//! `textconv` for decrypted `git diff`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use gitops_seal::adapters::{config, files, git, identity};
use gitops_seal::core::rules::{Config, CONFIG_FILE_NAME};
use gitops_seal::ops::{self, SealSettings};

use super::commands::Rules;

fn open_repo(start: &Path) -> Result<git2::Repository> {
    git2::Repository::discover(start)
        .with_context(|| format!("{} is not inside a Git repository", start.display()))
}

fn hook_script(fix: bool) -> String {
    // The binary that installed the hook is the fallback when `gitops-seal` is not on the PATH
    // of whoever commits (a GUI client, say): a hook that cannot run must not silently pass.
    let fallback = std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(shell_quote))
        .unwrap_or_else(|| "gitops-seal".into());
    format!(
        "#!/bin/sh\n{marker}. Installed by `gitops-seal hook install`; remove it with `gitops-seal hook uninstall`.\n\
         # A hook that was here before is kept beside it with a .local suffix and runs first.\n\
         local_hook=\"$0.local\"\n\
         if [ -x \"$local_hook\" ]; then \"$local_hook\" \"$@\" || exit $?; fi\n\
         seal=gitops-seal\n\
         command -v \"$seal\" >/dev/null 2>&1 || seal={fallback}\n\
         exec \"$seal\" hook run{fix}\n",
        marker = git::HOOK_MARKER,
        fix = if fix { " --fix" } else { "" }
    )
}

fn is_ours(path: &Path) -> bool {
    fs::read_to_string(path).is_ok_and(|t| t.contains(git::HOOK_MARKER))
}

/// The hooks gitops-seal installs. `pre-merge-commit` too, so that a merge commit cannot bring
/// in a plaintext Secret committed elsewhere with `--no-verify`; it only ever refuses (sealing
/// in the middle of a merge would surprise more than help).
const HOOKS: [&str; 2] = ["pre-commit", "pre-merge-commit"];

pub fn install(fix: bool, force: bool) -> Result<i32> {
    let repo = open_repo(Path::new("."))?;
    let dir = git::hooks_dir(&repo)?;
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Every hook is checked before any is written.
    for name in HOOKS {
        let hook = dir.join(name);
        if hook.exists() && !is_ours(&hook) {
            if !force {
                bail!(
                    "{} already exists and is not gitops-seal's; rerun with --force to keep it as {name}.local and call it first",
                    hook.display()
                );
            }
            let local = dir.join(format!("{name}.local"));
            if local.exists() {
                bail!("{} already exists; move it away first", local.display());
            }
        }
    }
    for name in HOOKS {
        let hook = dir.join(name);
        if hook.exists() && !is_ours(&hook) {
            let local = dir.join(format!("{name}.local"));
            fs::rename(&hook, &local).with_context(|| format!("keeping {}", hook.display()))?;
            eprintln!("kept the existing hook as {}", local.display());
        }
        let script = hook_script(fix && name == "pre-commit");
        files::write_atomic(&hook, script.as_bytes())
            .with_context(|| format!("writing {}", hook.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&hook, fs::Permissions::from_mode(0o755))?;
        }
        eprintln!("installed {}", hook.display());
    }
    Ok(0)
}

pub fn uninstall() -> Result<i32> {
    let repo = open_repo(Path::new("."))?;
    let dir = git::hooks_dir(&repo)?;
    let mut removed = 0;
    for name in HOOKS {
        let hook = dir.join(name);
        if !is_ours(&hook) {
            continue;
        }
        fs::remove_file(&hook).with_context(|| format!("removing {}", hook.display()))?;
        removed += 1;
        let local = dir.join(format!("{name}.local"));
        if local.exists() {
            fs::rename(&local, &hook)
                .with_context(|| format!("restoring {} as {}", local.display(), hook.display()))?;
            eprintln!("removed gitops-seal's {name} hook and restored the previous one");
        } else {
            eprintln!("removed {}", hook.display());
        }
    }
    if removed == 0 {
        bail!(
            "no gitops-seal hook in {}; hooks that are not gitops-seal's are left alone",
            dir.display()
        );
    }
    Ok(0)
}

/// `ignore:` for the hook: from the `.gitops-seal.yaml` nearest each staged file, as `scan`
/// and `verify` pick it, but read from the index (what the commit records) and only inside the
/// repository: an untracked config, or one above the work tree, cannot let a file through.
struct NearestIgnores<'r> {
    index: git2::Index,
    repo: &'r git2::Repository,
    /// Config folder (relative, "" for the root) -> its parsed config, if the index has one.
    configs: std::collections::HashMap<String, Option<Config>>,
}

impl<'r> NearestIgnores<'r> {
    fn new(repo: &'r git2::Repository) -> Result<Self> {
        Ok(NearestIgnores {
            index: repo.index()?,
            repo,
            configs: Default::default(),
        })
    }

    fn config_in(&mut self, dir: &str) -> Result<Option<&Config>> {
        if !self.configs.contains_key(dir) {
            let path = if dir.is_empty() {
                CONFIG_FILE_NAME.to_string()
            } else {
                format!("{dir}/{CONFIG_FILE_NAME}")
            };
            let config = match self.index.get_path(Path::new(&path), 0) {
                None => None,
                Some(entry) => {
                    let blob = self.repo.find_blob(entry.id)?;
                    let text = std::str::from_utf8(blob.content())
                        .with_context(|| format!("{path} (staged) is not UTF-8"))?;
                    Some(
                        Config::parse(text)
                            .map_err(|e| gitops_seal::Error::from(e).in_file(&path))?,
                    )
                }
            };
            self.configs.insert(dir.to_string(), config);
        }
        Ok(self.configs[dir].as_ref())
    }

    fn ignored(&mut self, path: &str) -> Result<bool> {
        let mut dir = path;
        loop {
            dir = dir.rsplit_once('/').map_or("", |(d, _)| d);
            if let Some(config) = self.config_in(dir)? {
                let rel = if dir.is_empty() {
                    path
                } else {
                    &path[dir.len() + 1..]
                };
                return Ok(config.is_ignored(rel));
            }
            if dir.is_empty() {
                return Ok(false);
            }
        }
    }
}

/// The root config's `ignore:` globs, if any.
fn root_config(workdir: &Path) -> Result<Config> {
    let path = workdir.join(CONFIG_FILE_NAME);
    if path.is_file() {
        Ok(config::load_config(&path)?.config)
    } else {
        Ok(Config::default())
    }
}

pub fn run(fix: bool) -> Result<i32> {
    // From the environment: `git commit -a` and `git commit PATH` hand the hook a temporary
    // index in GIT_INDEX_FILE, and that index, not .git/index, is what gets committed.
    git::read_without_rehashing();
    let repo = git2::Repository::open_from_env()
        .context("`gitops-seal hook run` must run inside a Git repository")?;
    let workdir = repo
        .workdir()
        .context("a bare repository has nothing to commit")?
        .to_path_buf();
    let mut ignores = NearestIgnores::new(&repo)?;
    let mut blocked: Vec<(String, Vec<ops::PlaintextFinding>)> = Vec::new();
    let mut stderr = std::io::stderr().lock();
    for staged in git::staged_files(&repo)? {
        if ignores.ignored(&staged.path)? {
            continue;
        }
        let blob = repo.find_blob(staged.blob)?;
        let report = ops::scan_content(blob.content());
        // Notes (a document skipped as not YAML) only where YAML is expected: source code
        // and prose that mention `kind` are no news.
        if files::is_manifest_name(Path::new(&staged.path)) {
            for note in &report.skipped {
                writeln!(stderr, "gitops-seal: note: {}: {note}", staged.path)?;
            }
        }
        if !report.findings.is_empty() {
            blocked.push((staged.path, report.findings));
        }
    }
    if blocked.is_empty() {
        return Ok(0);
    }
    // `git commit PATH...` commits from a temporary index while .git/index.lock is updated
    // too: sealing only the one the hook sees would leave the plaintext staged. Refuse then.
    let only_paths = std::env::var_os("GIT_INDEX_FILE").is_some_and(|f| {
        Path::new(&f)
            .file_name()
            .is_some_and(|n| n != "index" && n != "index.lock")
    });
    if fix && only_paths {
        writeln!(
            stderr,
            "gitops-seal: not sealing during `git commit PATH...`; seal first, or commit with `git add` and plain `git commit`"
        )?;
    }
    if fix && !only_paths && blocked.iter().all(|(_, f)| f.iter().all(|f| !f.unparsable)) {
        for (path, _) in &blocked {
            seal_staged(&repo, &workdir, path)?;
            writeln!(
                stderr,
                "gitops-seal: sealed {path} in the index and the working tree"
            )?;
        }
        return Ok(0);
    }
    writeln!(
        stderr,
        "gitops-seal: commit refused: plaintext Secret staged"
    )?;
    let mut fixable = Vec::new();
    let mut templates = Vec::new();
    for (path, findings) in &blocked {
        for f in findings {
            writeln!(stderr, "  {path}: {f}")?;
        }
        if findings.iter().any(|f| f.unparsable) {
            templates.push(path.as_str());
        } else {
            fixable.push(shell_quote(path));
        }
    }
    if !fixable.is_empty() {
        let list = fixable.join(" ");
        writeln!(
            stderr,
            "Seal and stage again:\n  gitops-seal encrypt --in-place {list} && git add {list}"
        )?;
    }
    if !templates.is_empty() {
        writeln!(
            stderr,
            "Documents that are not valid YAML but declare kind: Secret ({}): seal the Secret, or add the path to `ignore:` in {CONFIG_FILE_NAME} if it is a template",
            templates.join(", ")
        )?;
    }
    Ok(1)
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Seals the staged content of `path` with its rule's recipients, updates the index, and
/// seals the working-tree file too when it holds plaintext.
fn seal_staged(repo: &git2::Repository, workdir: &Path, path: &str) -> Result<()> {
    let file = workdir.join(path);
    let info = Rules::default().for_file(&file)?;
    let Some(recipients) = info.recipients.clone() else {
        bail!("{path}: no rule in {CONFIG_FILE_NAME} matches this path, so --fix has no recipients; seal it with `gitops-seal encrypt -R KEYS --in-place {path}`");
    };
    let settings = SealSettings {
        recipients,
        scope_override: None,
        default_scope: info.scope.unwrap_or_default(),
        bind_namespace: info.namespace.clone(),
        follow_previous: false,
    };
    let entry = repo
        .index()?
        .get_path(Path::new(path), 0)
        .context("the file left the index")?;
    let staged = zeroize::Zeroizing::new(repo.find_blob(entry.id)?.content().to_vec());
    let sealed = ops::encrypt(&staged, &settings, None)
        .map_err(|e| e.in_file(path))?
        .context("nothing to seal")?;
    // Working tree first: if it fails, the index (what gets committed) is untouched.
    if let Ok(current) = files::read_input(&file) {
        if current[..] == staged[..] {
            files::write_atomic(&file, sealed.as_bytes())?;
        } else if !ops::scan_content(&current).findings.is_empty() {
            if let Some(worktree) =
                ops::encrypt(&current, &settings, None).map_err(|e| e.in_file(path))?
            {
                files::write_atomic(&file, worktree.as_bytes())?;
            }
        }
    }
    git::restage(repo, path, sealed.as_bytes())?;
    Ok(())
}

#[derive(serde::Serialize)]
struct Finding<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<String>,
    path: &'a str,
    document: usize,
    object: &'a str,
}

pub fn scan(path: &Path, history: bool, json: bool) -> Result<i32> {
    let mut found: Vec<(Option<String>, String, ops::PlaintextFinding)> = Vec::new();
    let mut notes = Vec::new();
    if history {
        git::read_without_rehashing();
        let repo = open_repo(path)?;
        let config = repo
            .workdir()
            .map(root_config)
            .transpose()?
            .unwrap_or_default();
        let skip = |p: &str| config.is_ignored(p);
        let commits = git::walk_history(&repo, &skip, &mut |commit, p, blob| {
            let blob = repo.find_blob(blob)?;
            for f in ops::scan_content(blob.content()).findings {
                found.push((Some(commit.to_string()), p.to_string(), f));
            }
            Ok(())
        })?;
        notes.push(format!("scanned {commits} commit(s)"));
    } else {
        let root = fs::canonicalize(path).with_context(|| format!("reading {}", path.display()))?;
        let mut walk = TreeWalk {
            config: config::find_config(&root)
                .map(|p| config::load_config(&p))
                .transpose()?,
            // Files Git ignores cannot reach a commit by accident: a plaintext Secret kept
            // out of Git on purpose is not a finding.
            repo: None,
            tracked: Default::default(),
            cwd: std::env::current_dir()?,
        };
        walk.repo = git2::Repository::discover(&root)
            .ok()
            .filter(|r| r.workdir().is_some());
        if let Some(repo) = &walk.repo {
            walk.tracked = repo
                .index()?
                .iter()
                .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                .collect();
        }
        let mut files = Vec::new();
        walk.collect(&root, &mut files)?;
        let count = files.len();
        for p in files {
            let Ok(bytes) = files::read_input(&p) else {
                continue;
            };
            let shown = config::relative_slash_path(&walk.cwd, &p);
            let report = ops::scan_content(&bytes);
            if files::is_manifest_name(&p) {
                for s in report.skipped {
                    notes.push(format!("note: {shown}: {s}"));
                }
            }
            for f in report.findings {
                found.push((None, shown.clone(), f));
            }
        }
        notes.push(format!("scanned {count} file(s)"));
    }
    let mut stdout = std::io::stdout().lock();
    if json {
        let list: Vec<Finding<'_>> = found
            .iter()
            .map(|(c, p, f)| Finding {
                commit: c.clone(),
                path: p,
                document: f.document,
                object: &f.object,
            })
            .collect();
        serde_json::to_writer_pretty(&mut stdout, &list)?;
        writeln!(stdout)?;
    } else {
        for (c, p, f) in &found {
            match c {
                Some(c) => writeln!(stdout, "commit {}: {p}: {f}", &c[..12])?,
                None => writeln!(stdout, "{p}: {f}")?,
            }
        }
        for n in &notes {
            eprintln!("{n}");
        }
    }
    Ok(i32::from(!found.is_empty()))
}

/// The files `scan` reads under a folder: in name order, symlinks not followed, `.git`, the
/// config's `ignore:` globs and (inside a repository) what Git ignores left out.
struct TreeWalk {
    config: Option<config::LoadedConfig>,
    repo: Option<git2::Repository>,
    /// The paths the index holds, relative to the work tree.
    tracked: std::collections::BTreeSet<String>,
    cwd: PathBuf,
}

impl TreeWalk {
    fn skipped(&self, path: &Path) -> bool {
        if path.file_name().is_some_and(|n| n == ".git") {
            return true;
        }
        if let Some(c) = &self.config {
            if c.config
                .is_ignored(&config::relative_slash_path(&c.dir, path))
            {
                return true;
            }
        }
        let Some(repo) = &self.repo else { return false };
        let workdir = repo.workdir().unwrap_or(Path::new("/"));
        let Some(rel) = path
            .strip_prefix(workdir)
            .ok()
            .filter(|rel| !rel.as_os_str().is_empty())
        else {
            return false;
        };
        // Ignored, unless Git tracks it anyway (`git add -f`), or something under it.
        repo.is_path_ignored(rel).unwrap_or(false) && !self.tracks(rel)
    }

    fn tracks(&self, rel: &Path) -> bool {
        let rel = rel.to_string_lossy();
        let dir = format!("{rel}/");
        self.tracked.contains(rel.as_ref())
            || self
                .tracked
                .range(dir.clone()..)
                .next()
                .is_some_and(|p| p.starts_with(&dir))
    }

    fn collect(&self, path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let meta =
            fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if meta.is_file() {
            out.push(path.to_path_buf());
        } else if meta.is_dir() {
            let mut entries: Vec<PathBuf> = fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            entries.sort();
            for entry in entries {
                if !self.skipped(&entry) {
                    self.collect(&entry, out)?;
                }
            }
        }
        Ok(())
    }
}

/// Prints a file for `git diff`: SealedSecrets opened when an identity is at hand, otherwise
/// shown with `<sealed>` values. Never fails on content: `git diff` must still work.
pub fn textconv(file: &Path) -> Result<i32> {
    let input = files::read_input(file).map_err(|e| gitops_seal::Error::io(file, e))?;
    let identities = identity::load_identities(&[], &mut |_| {}).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&ops::textconv(&input, &identities))?;
    stdout.flush()?;
    Ok(0)
}
