use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use zeroize::Zeroizing;

use gitops_seal::adapters::{files, identity};
use gitops_seal::core::keys::{Identity, Recipient};
use gitops_seal::core::kubeyaml::Limits;
use gitops_seal::ops::{self, VerifyOptions};
use gitops_seal::Error;

use super::args::{Cli, Command, Format, HookAction, ImportSource, KeysCommand};
use super::settings::Settings;

pub fn run(cli: Cli) -> Result<i32> {
    let mut settings = Settings::from_command(&cli.command)?;
    let settings = &mut settings;
    let limits = &cli.limits.limits();
    match cli.command {
        Command::Keygen { output, x25519 } => keygen(output.as_deref(), x25519),
        Command::Recipient {
            fetch, fingerprint, ..
        } if fetch.fetch => super::fetch::run(&fetch, fingerprint),
        Command::Recipient { fingerprint, .. } => recipient(settings, fingerprint),
        Command::Keys(KeysCommand::Usage { identity, paths }) => {
            key_usage(&identity, &paths, settings, limits)
        }
        Command::Encrypt {
            files,
            in_place,
            force,
            ..
        } => encrypt(&files, settings, in_place, force, limits),
        Command::Import { source } => import(&source, settings, limits),
        Command::Decrypt { files, .. } => decrypt(&files, settings, limits),
        Command::Edit { file, force, .. } => super::edit::edit(&file, force, settings),
        Command::Set {
            file,
            name,
            key,
            from_file,
            from_literal,
            force,
            ..
        } => set(&file, &name, &key, from_file, from_literal, force, settings),
        Command::Unset {
            file,
            name,
            key,
            force,
            ..
        } => unset(&file, &name, &key, force, settings),
        Command::Rekey { files, force, .. } => rekey(&files, force, settings, limits),
        Command::MergeDriver {
            base,
            ours,
            theirs,
            path,
            marker_size,
            install,
            print,
        } => {
            if print {
                print!("{}", gitops_seal::adapters::git::install_instructions());
                return Ok(0);
            }
            if install {
                let attrs = gitops_seal::adapters::git::install_merge_driver(Path::new("."))
                    .context("installing the merge driver")?;
                eprintln!(
                    "installed: git config merge.gitops-seal.driver, and {}",
                    attrs.display()
                );
                return Ok(0);
            }
            let (base, ours, theirs) = (base.unwrap(), ours.unwrap(), theirs.unwrap());
            merge_driver(&base, &ours, &theirs, path.as_deref(), marker_size)
        }
        Command::Hook { action } => match action {
            HookAction::Install { fix, force } => super::hook::install(fix, force),
            HookAction::Uninstall => super::hook::uninstall(),
            HookAction::Run { fix } => super::hook::run(fix, settings),
        },
        Command::Scan {
            path,
            history,
            exposure,
            identity,
            format,
        } => {
            if exposure {
                super::exposure::run(&path, &identity, format == Format::Json)
            } else {
                super::hook::scan(&path, history, format == Format::Json)
            }
        }
        Command::Textconv { file } => super::hook::textconv(&file),
        Command::Verify {
            paths,
            recipient,
            identity,
            require_pq,
            ..
        } => verify(&paths, &recipient, &identity, require_pq, settings, limits),
        Command::Controller(args) => super::controller::run(args),
        Command::Sync(args) => super::sync::run(args),
    }
}

/// A file's new text: staged for the in-place write (nothing to print), or to print; a file
/// with nothing new is printed as it was, or left alone in place.
fn stage_or_print(
    staged: Option<&files::StagedWrites>,
    path: &Path,
    text: Option<String>,
    input: &[u8],
) -> Option<String> {
    match (staged, text) {
        (Some(staged), Some(out)) => {
            staged.stage(
                path.to_path_buf(),
                zeroize::Zeroizing::new(out.into_bytes()),
            );
            None
        }
        (_, Some(out)) => Some(out),
        (Some(_), None) => None,
        (None, None) => Some(String::from_utf8_lossy(input).into_owned()),
    }
}

fn display(p: &Path) -> String {
    if p == Path::new("-") {
        "<stdin>".into()
    } else {
        p.display().to_string()
    }
}

fn read(p: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    Ok(files::read_input(p).map_err(|e| Error::io(p, e))?)
}

/// Reads a manifest, refusing a file over the size limit before reading it.
fn read_manifest(p: &Path, limits: &Limits) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let too_large = |e: gitops_seal::ErrorKind| -> anyhow::Error {
        anyhow::anyhow!(
            "{} (raise the limit with --max-file-size)",
            Error::from(e).in_file(display(p))
        )
    };
    if p != Path::new("-") {
        if let Ok(meta) = std::fs::metadata(p) {
            let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
            limits.check_size(size).map_err(too_large)?;
        }
    }
    let input = read(p)?;
    limits.check_size(input.len()).map_err(too_large)?;
    Ok(input)
}

/// Reads a file a command was given; `None` for an empty file a folder walk reached, which is
/// passed over with a note, as kubectl passes it over. A file named on the command line is read
/// whatever it holds (empty, the library refuses it).
fn read_walked(input: &files::Input, limits: &Limits) -> Result<Option<Zeroizing<Vec<u8>>>> {
    let bytes = read_manifest(&input.path, limits)?;
    if input.walked {
        if let Some(note) = ops::skipped_in_walk(&bytes) {
            print_notes(&input.path, &[note]);
            return Ok(None);
        }
    }
    Ok(Some(bytes))
}

/// The files named and under the folders named, less those a folder walk reaches that the
/// nearest `.gitops-seal.yaml` lists under `ignore:` (a file named on the command line is
/// always read).
fn walked_files(inputs: &[PathBuf], settings: &mut Settings) -> Result<Vec<files::Input>> {
    let paths = files::expand_paths(inputs)?;
    let mut out = Vec::with_capacity(paths.len());
    let mut skipped = 0usize;
    for p in paths {
        if p.walked && !inputs.contains(&p.path) && settings.file(&p.path)?.rule.ignored {
            skipped += 1;
            continue;
        }
        out.push(p);
    }
    if skipped > 0 {
        eprintln!(
            "note: {skipped} file(s) in the folders named are listed under ignore: in .gitops-seal.yaml and were skipped (name a file to read it anyway)"
        );
    }
    Ok(out)
}

fn print_notes(p: &Path, notes: &[String]) {
    for note in notes {
        eprintln!("note: {}: {note}", display(p));
    }
}

fn encrypt(
    inputs: &[PathBuf],
    settings: &mut Settings,
    in_place: bool,
    force: bool,
    limits: &Limits,
) -> Result<i32> {
    let paths = walked_files(inputs, settings)?;
    if in_place && paths.iter().any(|p| p.path == Path::new("-")) {
        bail!("--in-place needs files, not standard input");
    }
    let mut jobs = Vec::with_capacity(paths.len());
    for p in &paths {
        let file = settings.file(&p.path)?;
        jobs.push((p, settings.seal_settings(&file, false)));
    }
    let staged = in_place.then(|| files::StagedWrites::new(jobs.len()).force(force));
    let results: Vec<Result<Option<String>>> = jobs
        .par_iter()
        .map(|(file, settings)| {
            let p = &file.path;
            let Some(input) = read_walked(file, limits)? else {
                return Ok(None);
            };
            let report = ops::encrypt_report(&input, settings, None, limits)
                .map_err(|e| e.in_file(display(p)))?;
            print_notes(p, &report.notes);
            Ok(stage_or_print(staged.as_ref(), p, report.text, &input))
        })
        .collect();
    // All or nothing: any error means no file is replaced (dropping `staged` removes its
    // temp files).
    let outputs: Vec<Option<String>> = results.into_iter().collect::<Result<_>>()?;
    if let Some(staged) = staged {
        let changed = staged.finish().map_err(|(p, e)| Error::io(&p, e))?;
        eprintln!(
            "sealed {changed} file(s); {} had nothing to seal",
            outputs.len() - changed
        );
    } else {
        print_files(outputs.iter().flatten().map(String::as_str))?;
    }
    Ok(0)
}

/// What opens the sources of an import.
enum Opener {
    SealedSecrets(Vec<gitops_seal::core::import::bitnami::ControllerKey>),
    Sops(Vec<Identity>),
}

fn import(source: &ImportSource, settings: &mut Settings, limits: &Limits) -> Result<i32> {
    let (common, replace) = match source {
        ImportSource::SealedSecrets {
            common, replace, ..
        } => (common, *replace),
        ImportSource::Sops { common, .. } => (common, true),
    };
    let paths = walked_files(&common.files, settings)?;
    if common.in_place && paths.iter().any(|p| p.path == Path::new("-")) {
        bail!("--in-place needs files, not standard input");
    }
    let opener = match source {
        ImportSource::SealedSecrets { key, .. } => Opener::SealedSecrets(
            identity::read_sealed_secrets_keys(key, &mut super::settings::warn)?,
        ),
        ImportSource::Sops { .. } => Opener::Sops(settings.identities()?),
    };
    let mut jobs = Vec::with_capacity(paths.len());
    for p in &paths {
        let file = settings.file(&p.path)?;
        jobs.push((p, settings.seal_settings(&file, false)));
    }
    let staged = common
        .in_place
        .then(|| files::StagedWrites::new(jobs.len()).force(common.force));
    type Done = (
        Option<String>,
        Vec<ops::Imported>,
        Vec<ops::RewrittenDocument>,
    );
    let results: Vec<Result<Done>> = jobs
        .par_iter()
        .map(|(file, seal)| {
            let p = &file.path;
            let Some(input) = read_walked(file, limits)? else {
                return Ok((None, Vec::new(), Vec::new()));
            };
            let report = match &opener {
                Opener::SealedSecrets(keys) => {
                    let opts = ops::SealedSecretsImport {
                        keys,
                        settings: seal,
                        replace,
                    };
                    ops::import_sealed_secrets(&input, &opts, limits)
                }
                Opener::Sops(identities) => ops::import_sops(&input, identities, seal, limits),
            }
            .map_err(|e| e.in_file(display(p)))?;
            print_notes(p, &report.notes);
            let out = stage_or_print(staged.as_ref(), p, report.text, &input);
            Ok((out, report.objects, report.rewritten))
        })
        .collect();
    // All or nothing: any error means no file is replaced (dropping `staged` removes its
    // temp files).
    let outputs: Vec<Done> = results.into_iter().collect::<Result<_>>()?;
    let objects: usize = outputs.iter().map(|(_, o, _)| o.len()).sum();
    let rewritten: usize = outputs.iter().map(|(_, _, r)| r.len()).sum();
    let touched = outputs
        .iter()
        .filter(|(_, o, r)| !o.is_empty() || !r.is_empty())
        .count();
    // Documents rewritten with nothing imported (a SOPS Secret without values loses its sops
    // block; with --replace, a Bitnami object imported before goes).
    let also = if rewritten > 0 {
        format!(" ({rewritten} other document(s) rewritten)")
    } else {
        String::new()
    };
    if common.dry_run {
        let mut stdout = std::io::stdout().lock();
        for ((file, _), (_, imported, plain)) in jobs.iter().zip(&outputs) {
            let p = &file.path;
            for o in imported {
                writeln!(stdout, "{}", describe_import(p, o))?;
            }
            for r in plain {
                let at = match r.item {
                    Some(i) => format!("document {}, List item {i}", r.document),
                    None => format!("document {}", r.document),
                };
                writeln!(stdout, "{}: {at}: {}: {}", display(p), r.object, r.what)?;
            }
        }
        eprintln!("dry run: {objects} object(s) in {touched} file(s) would be imported{also}; nothing was written");
        return Ok(0);
    }
    if let Some(staged) = staged {
        staged.finish().map_err(|(p, e)| Error::io(&p, e))?;
        eprintln!("imported {objects} object(s) in {touched} file(s){also}");
    } else {
        print_files(outputs.iter().filter_map(|(o, _, _)| o.as_deref()))?;
    }
    Ok(0)
}

/// One line of `import --dry-run`: names, keys and scopes, never a value.
fn describe_import(p: &Path, o: &ops::Imported) -> String {
    let at = match o.item {
        Some(i) => format!("document {}, List item {i}", o.document),
        None => format!("document {}", o.document),
    };
    let from_scope = o.from_scope.map(|s| format!(" ({s})")).unwrap_or_default();
    let placed = if o.replaced {
        "replacing it"
    } else {
        "written beside it"
    };
    format!(
        "{}: {at}: {}{from_scope} -> {}: scope {}, {} recipient(s), keys {}; {placed}",
        display(p),
        o.from,
        o.to,
        o.scope,
        o.recipients,
        o.keys.join(", ")
    )
}

/// Prints several files' output as one YAML stream on stdout.
fn print_files<'a>(outputs: impl Iterator<Item = &'a str>) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let mut previous: Option<&str> = None;
    for out in outputs {
        if let Some(previous) = previous {
            stdout.write_all(separator(previous, out))?;
        }
        stdout.write_all(out.as_bytes())?;
        previous = Some(out);
    }
    stdout.flush()?;
    Ok(())
}

/// What goes between two files' output on stdout: a newline if the first lacked one, then
/// a `---` marker unless the second starts with its own.
fn separator(previous: &str, next: &str) -> &'static [u8] {
    let newline = !previous.is_empty() && !previous.ends_with('\n');
    match (newline, next.starts_with("---")) {
        (false, false) => b"---\n",
        (true, false) => b"\n---\n",
        (false, true) => b"",
        (true, true) => b"\n",
    }
}

fn decrypt(inputs: &[PathBuf], settings: &mut Settings, limits: &Limits) -> Result<i32> {
    let paths = walked_files(inputs, settings)?;
    let identities = settings.identities()?;
    let mut jobs = Vec::with_capacity(paths.len());
    for p in &paths {
        jobs.push((p, settings.file(&p.path)?.namespace));
    }
    let outputs: Vec<Option<Zeroizing<String>>> = jobs
        .par_iter()
        .map(|(file, namespace)| {
            let p = &file.path;
            let Some(input) = read_walked(file, limits)? else {
                return Ok(None);
            };
            let (text, notes) =
                ops::decrypt_report(&input, &identities, namespace.as_deref(), limits)
                    .map_err(|e| e.in_file(display(p)))?;
            print_notes(p, &notes);
            Ok(Some(text))
        })
        .collect::<Result<_>>()?;
    print_files(outputs.iter().flatten().map(|o| o.as_str()))?;
    Ok(0)
}

fn set(
    file: &Path,
    name: &str,
    key: &str,
    from_file: Option<PathBuf>,
    from_literal: Option<String>,
    force: bool,
    settings: &mut Settings,
) -> Result<i32> {
    let value = match (from_file, from_literal) {
        (Some(p), _) => read(&p)?,
        (None, Some(v)) => zeroize::Zeroizing::new(v.into_bytes()),
        (None, None) => read(Path::new("-"))?,
    };
    let resolved = settings.file(file)?;
    let input = read(file)?;
    let request = ops::SetValue {
        target: name,
        namespace: resolved.namespace.as_deref(),
        key,
        value: &value,
        recipients: settings.explicit_recipients(),
        rule: resolved.rule.recipients.as_deref(),
        require_pq: resolved.rule.require_pq,
    };
    let out = ops::set_value(&input, &request).map_err(|e| e.in_file(display(file)))?;
    files::write_in_place(file, out.as_bytes(), force).map_err(|e| Error::io(file, e))?;
    Ok(0)
}

fn unset(file: &Path, name: &str, key: &str, force: bool, settings: &Settings) -> Result<i32> {
    let input = read(file)?;
    let out = ops::unset_value(&input, name, settings.namespace(), key)
        .map_err(|e| e.in_file(display(file)))?;
    files::write_in_place(file, out.as_bytes(), force).map_err(|e| Error::io(file, e))?;
    Ok(0)
}

fn rekey(inputs: &[PathBuf], force: bool, settings: &mut Settings, limits: &Limits) -> Result<i32> {
    let paths = walked_files(inputs, settings)?;
    let identities = settings.identities()?;
    let mut jobs = Vec::with_capacity(paths.len());
    for p in &paths {
        jobs.push((p, settings.file(&p.path)?));
    }
    let staged = files::StagedWrites::new(paths.len()).force(force);
    let results: Vec<Result<()>> = jobs
        .par_iter()
        .map(|(input, file)| {
            let p = &input.path;
            let Some(list) = &file.recipients else {
                return Err(Error::from(gitops_seal::ErrorKind::NoRecipients)
                    .in_file(display(p))
                    .into());
            };
            gitops_seal::core::keys::check_kinds(list, file.rule.require_pq, "the recipient list")
                .map_err(|e| Error::from(e).in_file(display(p)))?;
            let Some(input) = read_walked(input, limits)? else {
                return Ok(());
            };
            let report =
                ops::rekey_report(&input, &identities, list, file.namespace.as_deref(), limits)
                    .map_err(|e| e.in_file(display(p)))?;
            print_notes(p, &report.notes);
            if let Some(out) = report.text {
                staged.stage(p.to_path_buf(), zeroize::Zeroizing::new(out.into_bytes()));
            }
            Ok(())
        })
        .collect();
    // All or nothing, and the first file's error in the order given: dropping `staged`
    // removes its temp files.
    results.into_iter().collect::<Result<()>>()?;
    let changed = staged.finish().map_err(|(p, e)| Error::io(&p, e))?;
    eprintln!("rekeyed {changed} file(s)");
    Ok(0)
}

fn verify(
    inputs: &[PathBuf],
    recipients: &[String],
    identity_files: &[PathBuf],
    require_pq: bool,
    settings: &mut Settings,
    limits: &Limits,
) -> Result<i32> {
    let paths = files::expand_paths(inputs)?;
    let recipients: Vec<Recipient> = recipients
        .iter()
        .map(|r| r.parse().map_err(Error::from))
        .collect::<std::result::Result<_, _>>()?;
    let identities = if identity_files.is_empty() {
        Vec::new()
    } else {
        identity::load_identities(identity_files, &mut super::settings::warn)?
    };
    let mut findings = 0;
    let mut checked = 0;
    for input in &paths {
        let p = &input.path;
        let file = settings.file(p)?;
        if file.rule.ignored {
            continue;
        }
        let Some(input) = read_walked(input, limits)? else {
            continue;
        };
        let opts = VerifyOptions {
            recipients: &recipients,
            identities: &identities,
            namespace: file.namespace.as_deref(),
            rule: file.rule.recipients.as_deref(),
            limits: *limits,
            require_pq: require_pq || file.rule.require_pq,
        };
        checked += 1;
        let (found, notes) = ops::verify_report(&input, &opts);
        print_notes(p, &notes);
        for mut f in found {
            f.location.file = Some(display(p));
            let remedy = match f.remedy {
                Some(ops::Remedy::Seal) => ": seal it with `gitops-seal encrypt --in-place FILE`",
                Some(ops::Remedy::Rekey) => "; run `gitops-seal rekey`",
                Some(ops::Remedy::RekeyPq) => "; rekey it for post-quantum recipients only (a person's from `gitops-seal keygen`, a cluster's from `gitops-seal recipient --fetch`), and change the value: its old ciphertext stays in Git history",
                _ => "",
            };
            println!("{f}{remedy}");
            findings += 1;
        }
    }
    if findings > 0 {
        eprintln!("{findings} problem(s) in {checked} file(s)");
        Ok(1)
    } else {
        eprintln!("ok: {checked} file(s) verified");
        Ok(0)
    }
}

fn keygen(output: Option<&Path>, x25519: bool) -> Result<i32> {
    let id = if x25519 {
        Identity::generate_x25519()
    } else {
        Identity::generate()
    };
    let text = id
        .to_identity_file(&rfc3339_now())
        .expect("generated identities are age identities");
    let public = id.to_recipient().expect("age identities have a recipient");
    match output {
        Some(p) => {
            identity::write_new_identity(p, &text)?;
            eprintln!("Public key: {public}");
        }
        None => {
            eprintln!("Public key: {public}");
            std::io::stdout().lock().write_all(text.as_bytes())?;
        }
    }
    Ok(0)
}

fn recipient(settings: &Settings, fingerprint: bool) -> Result<i32> {
    for id in settings.identities()? {
        match id.to_recipient() {
            Some(r) if fingerprint => println!("{}", r.fingerprint()),
            Some(r) => println!("{r}"),
            None => {
                bail!("this identity's public key cannot be derived from it: use its .pub file")
            }
        }
    }
    Ok(0)
}

/// `keys usage`: which of the given identities open each value under `inputs`.
fn key_usage(
    identity_files: &[PathBuf],
    inputs: &[PathBuf],
    settings: &mut Settings,
    limits: &Limits,
) -> Result<i32> {
    // Each identity named by its file (and its place there, when a file holds several) and
    // its fingerprint.
    let mut identities = Vec::new();
    let mut names = Vec::new();
    for f in identity_files {
        let ids = identity::read_identity_file(f, &mut super::settings::warn)?;
        let several = ids.len() > 1;
        for (k, id) in ids.into_iter().enumerate() {
            let place = if several {
                format!("{}#{}", display(f), k + 1)
            } else {
                display(f)
            };
            names.push(match id.fingerprint() {
                Some(fp) => format!("{fp} ({place})"),
                None => place,
            });
            identities.push(id);
        }
    }
    let paths = files::expand_paths(inputs)?;
    let (mut values, mut unopened, mut errors) = (0usize, 0usize, 0usize);
    let mut opens = vec![0usize; identities.len()];
    let mut only = vec![0usize; identities.len()];
    for input in &paths {
        let p = &input.path;
        let file = settings.file(p)?;
        if file.rule.ignored {
            continue;
        }
        let Some(input) = read_walked(input, limits)? else {
            continue;
        };
        let found = ops::key_usage(&input, &identities, limits);
        print_notes(p, &found.notes);
        for e in found.errors {
            eprintln!("gitops-seal: {}", e.in_file(display(p)));
            errors += 1;
        }
        for mut v in found.values {
            v.location.file = Some(display(p));
            values += 1;
            for &i in &v.opened_by {
                opens[i] += 1;
            }
            if let [i] = v.opened_by[..] {
                only[i] += 1;
            }
            if v.opened_by.is_empty() {
                unopened += 1;
                println!("{}: none of the given keys opens it", v.location);
            } else {
                let by: Vec<&str> = v.opened_by.iter().map(|&i| names[i].as_str()).collect();
                println!("{}: {}", v.location, by.join(", "));
            }
        }
    }
    for (i, name) in names.iter().enumerate() {
        eprintln!(
            "{name}: opens {} of {values} value(s), {} of them with no other given key",
            opens[i], only[i]
        );
    }
    if unopened > 0 || errors > 0 {
        eprintln!("{unopened} value(s) that none of the given keys opens, {errors} unreadable document(s)");
        Ok(1)
    } else {
        eprintln!("ok: every one of {values} value(s) opens with a given key");
        Ok(0)
    }
}

/// UTC now as `YYYY-MM-DDTHH:MM:SSZ` (age-keygen's `# created:` line).
fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    gitops_seal::ops::exposure::rfc3339(secs)
}

fn merge_driver(
    base: &Path,
    ours: &Path,
    theirs: &Path,
    path: Option<&str>,
    marker_size: usize,
) -> Result<i32> {
    use gitops_seal::adapters::git;
    let shown = path.map_or_else(|| display(ours), str::to_string);
    let (b, o, t) = (read(base)?, read(ours)?, read(theirs)?);
    let mut text_merge = |b: &str, o: &str, t: &str| git::merge_text(b, o, t, marker_size);
    let conflicted = match ops::merge_files(&b, &o, &t, marker_size, &mut text_merge)? {
        ops::FileMerge::WholeFileText => git::merge_file_in_place(ours, base, theirs, marker_size)?,
        ops::FileMerge::Merged {
            text,
            conflicts,
            reseal,
        } => {
            files::write_atomic(ours, text.as_bytes()).map_err(|e| Error::io(ours, e))?;
            for c in &conflicts {
                eprintln!("gitops-seal merge-driver: {shown}: conflict: {c}");
            }
            if reseal {
                eprintln!("gitops-seal merge-driver: {shown}: hint: take one side, then run `gitops-seal rekey` and `gitops-seal set` again");
            }
            !conflicts.is_empty()
        }
    };
    Ok(i32::from(conflicted))
}
