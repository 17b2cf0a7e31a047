//! The command line: argument parsing and the thin glue from arguments to the library.
//! `main` calls `run`, prints the error chain once, and treats a broken pipe as success.

mod args;
mod commands;
mod controller;
mod edit;
mod exposure;
mod fetch;
mod hook;
mod logging;
mod settings;
mod sync;
mod sync_config;

use std::io::Write;

use clap::Parser;

pub use args::Cli;

/// Exit codes: 0 success, 1 `verify` found problems, 2 an error.
pub fn main() -> i32 {
    let cli = Cli::parse();
    // libgit2, built with OpenSSL for the sync loop's https remotes, loads the whole CA bundle
    // when it starts (three quarters of the pre-commit hook's instructions). The commands that
    // only read the local repository never open a connection: they skip it. Before any thread.
    use args::Command as C;
    if matches!(
        cli.command,
        C::Hook { .. } | C::Scan { .. } | C::Textconv { .. } | C::MergeDriver { .. }
    ) {
        gitops_seal::adapters::git::without_tls_trust_store();
    }
    match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return 0;
            }
            let mut stderr = std::io::stderr().lock();
            let mut previous = String::new();
            for (i, cause) in e.chain().enumerate() {
                // Some errors both show their cause and return it as `source()` (age's
                // `EncryptError::Io`, say): say each thing once.
                let text = cause.to_string();
                if i > 0 && text == previous {
                    continue;
                }
                previous = text;
                let prefix = if i == 0 { "error: " } else { "  caused by: " };
                let hint = cause
                    .downcast_ref::<gitops_seal::Error>()
                    .and_then(hint)
                    .unwrap_or_default();
                let _ = writeln!(stderr, "{prefix}{cause}{hint}");
            }
            2
        }
    }
}

/// What to type about a library error: the library names the problem, the command line says
/// which flag or command helps. Appended to the error's own line.
fn hint(e: &gitops_seal::Error) -> Option<String> {
    use gitops_seal::ErrorKind as K;
    Some(match &e.kind {
        K::MissingNamespace { .. } => ": set metadata.namespace, pass --namespace/-n, or add `namespace:` to the matching rule in .gitops-seal.yaml".into(),
        K::MixedRecipients { .. } | K::PqRequired { .. } => ". Nothing sealed. Replace each classical recipient with a post-quantum one: a person runs `gitops-seal keygen` and gives you the age1pq1... line it prints; a cluster's comes from `gitops-seal recipient --fetch` once its controller has a post-quantum key".into(),
        K::NoRecipients => ": pass -r/-R, or add a rule matching this path to .gitops-seal.yaml".into(),
        K::ManifestAsIdentity => " (-i is the identity, as in age; to rewrite a file in place use --in-place)".into(),
        K::NoIdentity { default } => format!(
            ": pass -i FILE, set ${}, or create {} with `gitops-seal keygen -o`",
            gitops_seal::adapters::identity::IDENTITY_ENV,
            default.as_deref().unwrap_or("~/.config/gitops-seal/identity.txt")
        ),
        K::IdentityExists => "; keygen never overwrites an identity".into(),
        K::AmbiguousObject(_) => "; pass --namespace/-n".into(),
        K::RecipientsDifferFromRule { .. } => "; pass -r/-R to seal to a new list on purpose".into(),
        K::RecipientsDifferFromFile => "; run `gitops-seal rekey` with the new recipients first".into(),
        K::NoLongerSealed { .. } => "; nothing written. To rename or delete a Secret, use `decrypt` and `encrypt`, or delete its SealedSecret document.".into(),
        K::StillPlaintext => "; nothing written".into(),
        K::ImportKeyMismatch { .. } => "; pass every key of the controller's backup with --key (it keeps its old keys after a rotation); nothing written".into(),
        K::HardLinked { .. } => {
            let file = e.location.file.as_deref().unwrap_or("FILE");
            format!("; nothing written. Pass --force to write anyway (the other links keep the old content), or first give this path a file of its own: cp {file} {file}.tmp && mv {file}.tmp {file}")
        }
        K::ImportTampered(_) | K::SopsMacMismatch | K::SopsNothingToSeal { .. } => "; nothing written".into(),
        K::SopsEncryptedMetadata { .. } => "; nothing written. Decrypt it with sops, move the label or annotation out of the encrypted part (see docs/MIGRATING.md) and import again".into(),
        K::SopsUnsupportedKeyGroup { .. } => ": gitops-seal opens the data key with age only; add an age recipient with `sops updatekeys` first; nothing written".into(),
        _ => return None,
    })
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
