//! `scan --history --exposure`: which sealed values Git history exposed to classical
//! recipients, and which of them to rotate. The walk is the library's
//! ([`gitops_seal::adapters::exposure`]), the verdicts too ([`gitops_seal::ops::exposure`]);
//! this prints them. No value is ever opened for printing: only compared.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use gitops_seal::adapters::{exposure, git, identity};
use gitops_seal::core::kubeyaml::Limits;
use gitops_seal::ops::exposure::{ExposureAudit, ExposureReport, ValueExposure};

#[derive(serde::Serialize, Clone, Copy)]
struct Summary {
    commits: usize,
    values: usize,
    classical: usize,
    needs_rotation: usize,
    /// False when objects were missing or too large to read: "nothing exposed" is not claimed.
    complete: bool,
}

#[derive(serde::Serialize)]
struct Json<'a> {
    values: &'a [ValueExposure],
    summary: Summary,
    missing: Vec<String>,
    too_large: &'a [String],
    unparsable: &'a [gitops_seal::ops::exposure::Unparsable],
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

fn line(v: &ValueExposure) -> String {
    let span = match (&v.first_classical, &v.last_classical) {
        (Some(first), Some(last)) if first.commit == last.commit => {
            format!("commit {} ({})", short(&first.commit), first.date)
        }
        (Some(first), Some(last)) => format!(
            "commits {} ({}) to {} ({})",
            short(&first.commit),
            first.date,
            short(&last.commit),
            last.date
        ),
        _ => String::new(),
    };
    let changed = serde_json::to_value(v.changed_since_classical).unwrap_or_default();
    let at_head = serde_json::to_value(v.at_head).unwrap_or_default();
    format!(
        "{} {}: rotate: sealed classically ({}) in {span}; at HEAD: {}; changed since: {} ({})",
        v.object(),
        v.key,
        v.classical_stanza_types.join(", "),
        at_head.as_str().unwrap_or_default(),
        changed.as_str().unwrap_or_default(),
        v.why
    )
}

pub fn run(path: &Path, identity_files: &[PathBuf], json: bool) -> Result<i32> {
    git::read_without_rehashing();
    let repo = super::hook::open_repo(path)?;
    // Only `-i`: a default identity must not silently change what the audit claims.
    let identities = if identity_files.is_empty() {
        Vec::new()
    } else {
        identity::load_identities(identity_files, &mut super::settings::warn)?
    };
    let mut audit = ExposureAudit::default();
    let max_len = Limits::default().max_file_bytes as u64;
    let walk = exposure::walk(&repo, max_len, &mut audit)?;
    let opener = gitops_seal::ops::exposure::identity_opener(&identities);
    let report: ExposureReport = if identities.is_empty() {
        audit.finish(None)
    } else {
        audit.finish(Some(&opener))
    };
    let mut missing: Vec<&git::MissingObject> = Vec::new();
    for m in walk.history.missing.iter().chain(&walk.missing_at_head) {
        if !missing.iter().any(|seen| seen.id == m.id) {
            missing.push(m);
        }
    }
    let complete = missing.is_empty() && walk.too_large.is_empty();
    let summary = Summary {
        commits: walk.history.commits,
        values: report.values.len(),
        classical: report.exposed(),
        needs_rotation: report.needing_rotation(),
        complete,
    };
    let mut stdout = std::io::stdout().lock();
    if json {
        let out = Json {
            values: &report.values,
            missing: missing.iter().map(|m| m.to_string()).collect(),
            too_large: &walk.too_large,
            unparsable: &report.unparsable,
            summary,
        };
        serde_json::to_writer_pretty(&mut stdout, &out)?;
        writeln!(stdout)?;
    } else {
        for v in report.values.iter().filter(|v| v.needs_rotation) {
            writeln!(stdout, "{}", line(v))?;
        }
        writeln!(
            stdout,
            "{} of {} sealed value(s) need rotation; {} were sealed classically at some point; {} commit(s) read{}",
            summary.needs_rotation,
            summary.values,
            summary.classical,
            summary.commits,
            if complete { "" } else { "; incomplete" }
        )?;
        for u in &report.unparsable {
            let at = match &u.commit {
                Some(c) => format!("commit {}", short(c)),
                None => "HEAD".into(),
            };
            eprintln!(
                "note: {at}: {}: document {}: not read as a SealedSecret ({})",
                u.path, u.document, u.reason
            );
        }
    }
    if !complete {
        for m in &missing {
            eprintln!("missing: {m}");
        }
        for t in &walk.too_large {
            eprintln!("too large to read: {t}");
        }
        eprintln!(
            "audit incomplete: {} object(s) could not be read, so values in them were not judged; \
             fetch them (`git fetch --refetch --no-filter` for a partial clone, \
             `git fetch --unshallow` for a shallow one) and run it again",
            missing.len() + walk.too_large.len()
        );
    }
    Ok(match (summary.needs_rotation, complete) {
        (n, _) if n > 0 => 1,
        (_, false) => 2,
        _ => 0,
    })
}
