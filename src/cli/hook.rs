//! The pre-commit hook (`hook install|uninstall|run`), `scan` of a tree or of all history, and
//! `textconv` for decrypted `git diff`.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

use gitops_seal::adapters::hooks::{self, HookChange};
use gitops_seal::adapters::judged::JudgedClean;
use gitops_seal::adapters::{config, files, git, identity, tree};
use gitops_seal::core::judge;
use gitops_seal::core::kubeyaml::Limits;
use gitops_seal::core::rules::CONFIG_FILE_NAME;
use gitops_seal::ops;

use super::settings::Settings;

pub(super) fn open_repo(start: &Path) -> Result<git2::Repository> {
    git2::Repository::discover(start)
        .with_context(|| format!("{} is not inside a Git repository", start.display()))
}

pub fn install(fix: bool, force: bool) -> Result<i32> {
    let repo = open_repo(Path::new("."))?;
    // The binary that installs the hook is its fallback when `gitops-seal` is not on the PATH.
    let fallback = std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(shell_quote))
        .unwrap_or_else(|| "gitops-seal".into());
    for change in hooks::install(&repo, fix, force, &fallback)? {
        match change {
            HookChange::Kept(local) => {
                eprintln!("kept the existing hook as {}", local.display())
            }
            HookChange::Installed(hook) => eprintln!("installed {}", hook.display()),
            HookChange::Removed(_) | HookChange::Restored(_) => {}
        }
    }
    Ok(0)
}

pub fn uninstall() -> Result<i32> {
    let repo = open_repo(Path::new("."))?;
    for change in hooks::uninstall(&repo)? {
        match change {
            HookChange::Restored(name) => {
                eprintln!("removed gitops-seal's {name} hook and restored the previous one")
            }
            HookChange::Removed(hook) => eprintln!("removed {}", hook.display()),
            HookChange::Kept(_) | HookChange::Installed(_) => {}
        }
    }
    Ok(0)
}

pub fn run(fix: bool, settings: &mut Settings) -> Result<i32> {
    // From the environment: `git commit -a` and `git commit PATH` hand the hook a temporary
    // index in GIT_INDEX_FILE, and that index, not .git/index, is what gets committed.
    git::read_without_rehashing();
    let repo = git2::Repository::open_from_env()
        .context("`gitops-seal hook run` must run inside a Git repository")?;
    let workdir = repo
        .workdir()
        .context("a bare repository has nothing to commit")?
        .to_path_buf();
    let mut stderr = std::io::stderr().lock();
    let blocked = judge_staged(&repo, &mut stderr)?;
    if blocked.is_empty() {
        return Ok(0);
    }
    let only_paths = commits_only_paths();
    if fix && only_paths {
        writeln!(
            stderr,
            "gitops-seal: not sealing during `git commit PATH...`; seal first, or commit with `git add` and plain `git commit`"
        )?;
    }
    if fix && !only_paths && blocked.iter().all(|(_, f)| f.iter().all(|f| !f.unparsable)) {
        seal_blocked(&repo, &workdir, &blocked, settings, &mut stderr)?;
        return Ok(0);
    }
    refuse_blocked(&blocked, &mut stderr)?;
    Ok(1)
}

/// Staged paths and the findings that block their commit.
type Blocked = Vec<(String, Vec<ops::PlaintextFinding>)>;

/// Step 1: judges every staged blob not already judged clean, noting on `stderr` what was
/// skipped in manifests, and returns the paths with findings.
fn judge_staged(repo: &git2::Repository, stderr: &mut impl Write) -> Result<Blocked> {
    let mut blocked: Blocked = Vec::new();
    // Blobs this binary already judged clean are not judged again (see adapters::judged).
    let mut clean = JudgedClean::load(repo.path());
    for staged in git::staged_to_judge(repo)? {
        let path = staged.path.as_str();
        let manifest = judge::reads_as_manifest(path);
        if clean.contains(staged.blob, manifest) {
            continue;
        }
        // The size first: a blob too large to judge is a finding without being inflated.
        let (size, _) = repo.odb()?.read_header(staged.blob)?;
        let report = match ops::scan_size(size as u64) {
            Some(too_large) => too_large,
            None => ops::scan_file(path, repo.find_blob(staged.blob)?.content()),
        };
        // Notes (a document skipped as not YAML) only where YAML is expected: source code
        // and prose that mention `kind` are no news.
        if files::is_manifest_name(Path::new(path)) {
            for note in &report.skipped {
                writeln!(stderr, "gitops-seal: note: {path}: {note}")?;
            }
        }
        if !report.findings.is_empty() {
            blocked.push((path.to_string(), report.findings));
        } else if report.skipped.is_empty() {
            clean.record(staged.blob, manifest);
        }
    }
    // The record only saves work: failing to write it changes no verdict.
    let _ = clean.save();
    Ok(blocked)
}

/// Whether this is `git commit PATH...`: it commits from a temporary index while
/// .git/index.lock is updated too, so sealing only the one the hook sees would leave the
/// plaintext staged. `--fix` refuses then.
fn commits_only_paths() -> bool {
    std::env::var_os("GIT_INDEX_FILE").is_some_and(|f| {
        Path::new(&f)
            .file_name()
            .is_some_and(|n| n != "index" && n != "index.lock")
    })
}

/// Step 2 with `--fix`: seals every blocked file in the index and the working tree, after
/// checking that each can be sealed in place and has recipients.
fn seal_blocked(
    repo: &git2::Repository,
    workdir: &Path,
    blocked: &Blocked,
    settings: &mut Settings,
    stderr: &mut impl Write,
) -> Result<()> {
    // Sealing the working tree in place renames a new file over the path: another hard
    // link would keep the plaintext. Checked for every file before any is sealed.
    for (path, _) in blocked {
        if gitops_seal::adapters::files::check_in_place(&workdir.join(path), false).is_err() {
            bail!("{path}: the file has more than one hard link, so sealing it in place would leave the plaintext in the others; nothing sealed. Give it a file of its own first (cp {path} {path}.tmp && mv {path}.tmp {path}), then git add it and commit again");
        }
    }
    for (path, _) in blocked {
        let file = settings.file(&workdir.join(path))?;
        if file.recipients.is_none() {
            bail!("{path}: no rule in {CONFIG_FILE_NAME} matches this path, so --fix has no recipients; seal it with `gitops-seal encrypt -R KEYS --in-place {path}`");
        }
        git::seal_staged(repo, path, &settings.seal_settings(&file, false))?;
        writeln!(
            stderr,
            "gitops-seal: sealed {path} in the index and the working tree"
        )?;
    }
    Ok(())
}

/// Step 2 otherwise: tells on `stderr` why the commit is refused, every finding, and what to
/// do about each kind of blocked path.
fn refuse_blocked(blocked: &Blocked, stderr: &mut impl Write) -> Result<()> {
    // Findings on content the judge could not read through (too large, too many documents,
    // unreadable) are not Secrets it saw: they are worded apart.
    let unjudged = |f: &ops::PlaintextFinding| {
        f.detail
            .as_deref()
            .is_some_and(|d| d.starts_with("cannot be judged"))
    };
    let headline = if blocked.iter().all(|(_, f)| f.iter().all(unjudged)) {
        "gitops-seal: commit refused: staged content cannot be judged"
    } else {
        "gitops-seal: commit refused: plaintext Secret staged"
    };
    writeln!(stderr, "{headline}")?;
    let mut fixable = Vec::new();
    let mut templates = Vec::new();
    let mut unjudgeable = Vec::new();
    for (path, findings) in blocked {
        for f in findings {
            writeln!(stderr, "  {path}: {f}")?;
        }
        if findings.iter().any(unjudged) {
            unjudgeable.push(path.as_str());
        } else if findings.iter().any(|f| f.unparsable) {
            templates.push(path.as_str());
        } else {
            fixable.push(shell_quote(path));
        }
    }
    if !unjudgeable.is_empty() {
        writeln!(
            stderr,
            "Content that cannot be judged ({}): keep it out of the commit, or add the path to `ignore:` in {CONFIG_FILE_NAME} if it holds no Secret",
            unjudgeable.join(", ")
        )?;
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
    Ok(())
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

#[derive(serde::Serialize)]
struct Finding<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<String>,
    path: &'a str,
    document: usize,
    object: &'a str,
}

/// A file that cannot be read cannot be judged: a finding, not a silent pass.
fn unreadable(e: &std::io::Error) -> ops::ScanReport {
    ops::ScanReport {
        findings: vec![ops::PlaintextFinding {
            document: 0,
            object: "unreadable file".into(),
            unparsable: true,
            detail: Some(format!("cannot be judged: {e}")),
        }],
        ..Default::default()
    }
}

/// What a scan found, and what it could not read.
#[derive(Default)]
struct Scanned {
    found: Vec<(Option<String>, String, ops::PlaintextFinding)>,
    notes: Vec<String>,
    missing: Vec<git::MissingObject>,
}

pub fn scan(path: &Path, history: bool, json: bool) -> Result<i32> {
    let scanned = if history {
        scan_history(path)?
    } else {
        scan_tree(path)?
    };
    report_scan(&scanned, json)
}

/// Every blob reachable from every ref, judged once.
fn scan_history(path: &Path) -> Result<Scanned> {
    let mut scanned = Scanned::default();
    git::read_without_rehashing();
    let repo = open_repo(path)?;
    // The work tree's config; without one checked out (a bare repository, a clone made
    // with --no-checkout), HEAD's.
    let config = match repo.workdir() {
        Some(dir) if dir.join(CONFIG_FILE_NAME).is_file() => config::root_config(dir)?,
        _ => match git::config_at_head(&repo)? {
            git::HeadConfig::Found(config) => config,
            git::HeadConfig::Absent => Default::default(),
            // Without it nothing is ignored: the scan reads more, never less.
            git::HeadConfig::Missing(m) => {
                scanned.missing.push(m);
                Default::default()
            }
        },
    };
    let skip = |p: &str| config.is_ignored(p);
    let max_len = Limits::default().max_file_bytes as u64;
    let found = &mut scanned.found;
    let report = git::walk_history(&repo, &skip, max_len, &mut |commit, p, blob| {
        let report = match blob {
            git::Blob::Content(content) => ops::scan_file(p, content),
            git::Blob::TooLarge(size) => ops::scan_size(size).unwrap_or_default(),
        };
        for f in report.findings {
            found.push((Some(commit.to_string()), p.to_string(), f));
        }
        Ok(())
    })?;
    scanned
        .notes
        .push(format!("scanned {} commit(s)", report.commits));
    for m in report.missing {
        if !scanned.missing.iter().any(|seen| seen.id == m.id) {
            scanned.missing.push(m);
        }
    }
    Ok(scanned)
}

/// The files under `path` as they are on disk.
fn scan_tree(path: &Path) -> Result<Scanned> {
    let mut scanned = Scanned::default();
    let files = tree::files_to_scan(path)?;
    let cwd = std::env::current_dir()?;
    let count = files.len();
    for file in files {
        let p = file.path;
        let shown = config::relative_slash_path(&cwd, &p);
        // The size first: a file too large to judge is a finding without being read.
        let report = match fs::metadata(&p).map(|m| ops::scan_size(m.len())) {
            Ok(Some(too_large)) => too_large,
            Ok(None) => match files::read_input(&p) {
                // An empty manifest in a folder: passed over with a note, as every walk
                // passes it over (it holds nothing to judge either way).
                Ok(bytes) if file.walked && files::is_manifest_name(&p) => {
                    match ops::skipped_in_walk(&bytes) {
                        Some(note) => {
                            scanned.notes.push(format!("note: {shown}: {note}"));
                            continue;
                        }
                        None => ops::scan_file(&shown, &bytes),
                    }
                }
                Ok(bytes) => ops::scan_file(&shown, &bytes),
                // Gone since the folder was listed.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => unreadable(&e),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => unreadable(&e),
        };
        if files::is_manifest_name(&p) {
            for s in report.skipped {
                scanned.notes.push(format!("note: {shown}: {s}"));
            }
        }
        for f in report.findings {
            scanned.found.push((None, shown.clone(), f));
        }
    }
    scanned.notes.push(format!("scanned {count} file(s)"));
    Ok(scanned)
}

/// Prints the findings (as JSON when asked) and returns the exit code.
fn report_scan(scanned: &Scanned, json: bool) -> Result<i32> {
    let Scanned {
        found,
        notes,
        missing,
    } = scanned;
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
        for (c, p, f) in found {
            match c {
                Some(c) => writeln!(stdout, "commit {}: {p}: {f}", &c[..12])?,
                None => writeln!(stdout, "{p}: {f}")?,
            }
        }
        for n in notes {
            eprintln!("{n}");
        }
    }
    if !missing.is_empty() {
        for m in missing {
            eprintln!("missing: {m}");
        }
        eprintln!(
            "scan incomplete: {} object(s) are missing from this clone and were not scanned; \
             fetch them (`git fetch --refetch --no-filter` for a partial clone, \
             `git fetch --unshallow` for a shallow one, `git lfs fetch --all` for large files) \
             and scan again",
            missing.len()
        );
    }
    // 1: plaintext found; 2: nothing found, but not everything could be read.
    Ok(match (found.is_empty(), missing.is_empty()) {
        (false, _) => 1,
        (true, false) => 2,
        (true, true) => 0,
    })
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
