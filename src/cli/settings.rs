//! One settings value per invocation (as ripgrep turns its flags into `HiArgs`): the flags
//! shared by several commands are resolved here once — `-r`/`-R` parsed and read, `--scope`,
//! `-n`, the identity files — and each file's rules are looked up through one cache. Commands
//! ask this value; none of them re-derives a fallback.

use std::path::{Path, PathBuf};

use anyhow::Result;

use gitops_seal::adapters::{config, identity};
use gitops_seal::core::keys::{self, Identity, Recipient};
use gitops_seal::core::rules::RuleMatch;
use gitops_seal::core::Scope;
use gitops_seal::ops::{Overrides, SealSettings};
use gitops_seal::{Error, ErrorKind};

use super::args::{Command, IdentityArgs, ImportSource, NamespaceArg, RecipientArgs};

pub struct Settings {
    overrides: Overrides,
    identity_files: Vec<PathBuf>,
    rules: config::Rules,
}

/// What one file is handled with: its rule, and what follows from it and the flags.
pub struct FileSettings {
    pub rule: RuleMatch,
    /// `-n`, else the rule's `namespace:`.
    pub namespace: Option<String>,
    /// `-r`/`-R`, else the rule's recipients.
    pub recipients: Option<Vec<Recipient>>,
}

impl Settings {
    /// Resolves the shared flags of `command`.
    pub fn from_command(command: &Command) -> Result<Self> {
        let none = (None, None, None, None);
        let (recipients, scope, namespace, identity): (
            Option<&RecipientArgs>,
            Option<Scope>,
            Option<&NamespaceArg>,
            Option<&IdentityArgs>,
        ) = match command {
            Command::Encrypt {
                recipients,
                scope,
                namespace,
                ..
            } => (
                Some(recipients),
                scope.map(Into::into),
                Some(namespace),
                None,
            ),
            Command::Decrypt {
                identity,
                namespace,
                ..
            } => (None, None, Some(namespace), Some(identity)),
            Command::Edit {
                identity,
                recipients,
                namespace,
                ..
            }
            | Command::Rekey {
                identity,
                recipients,
                namespace,
                ..
            } => (Some(recipients), None, Some(namespace), Some(identity)),
            Command::Set {
                recipients,
                namespace,
                ..
            } => (Some(recipients), None, Some(namespace), None),
            Command::Unset { namespace, .. } | Command::Verify { namespace, .. } => {
                (None, None, Some(namespace), None)
            }
            Command::Recipient { identity, .. } => (None, None, None, Some(identity)),
            Command::Import { source } => {
                let (common, identity) = match source {
                    ImportSource::SealedSecrets { common, .. } => (common, None),
                    ImportSource::Sops { identity, common } => (common, Some(identity)),
                };
                (
                    Some(&common.recipients),
                    common.scope.map(Into::into),
                    Some(&common.namespace),
                    identity,
                )
            }
            _ => none,
        };
        Ok(Settings {
            overrides: Overrides {
                recipients: recipients.map(explicit_recipients).transpose()?.flatten(),
                scope,
                namespace: namespace.and_then(|n| n.namespace.clone()),
            },
            identity_files: identity.map(|i| i.identity.clone()).unwrap_or_default(),
            rules: config::Rules::default(),
        })
    }

    /// `-r`/`-R`, when given.
    pub fn explicit_recipients(&self) -> Option<&[Recipient]> {
        self.overrides.recipients.as_deref()
    }

    /// `-n`, when given.
    pub fn namespace(&self) -> Option<&str> {
        self.overrides.namespace.as_deref()
    }

    /// The identities of `-i`, else `$GITOPS_SEAL_IDENTITY`, else the default file.
    pub fn identities(&self) -> Result<Vec<Identity>> {
        Ok(identity::load_identities(&self.identity_files, &mut warn)?)
    }

    /// The rule for `file` and what the flags make of it.
    pub fn file(&mut self, file: &Path) -> Result<FileSettings> {
        let rule = self.rules.for_file(file)?;
        Ok(FileSettings {
            namespace: self.overrides.namespace(&rule),
            recipients: self.overrides.recipients(&rule),
            rule,
        })
    }

    /// How to seal `file`; `follow_previous` for edit (kept only without `-r`/`-R`).
    pub fn seal_settings(&self, file: &FileSettings, follow_previous: bool) -> SealSettings {
        self.overrides.seal_settings(&file.rule, follow_previous)
    }
}

pub fn warn(line: String) {
    eprintln!("warning: {line}");
}

/// `-r`/`-R` recipients, or `None` when neither was given.
fn explicit_recipients(args: &RecipientArgs) -> Result<Option<Vec<Recipient>>> {
    if !args.given() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for r in &args.recipient {
        out.push(r.parse::<Recipient>().map_err(Error::from)?);
    }
    for f in &args.recipients_file {
        out.extend(config::read_recipients_file(f)?);
    }
    if out.is_empty() {
        return Err(Error::from(ErrorKind::NoRecipients).into());
    }
    let out = keys::dedup_recipients(out);
    keys::check_kinds(&out, false, "the recipients of -r/-R").map_err(Error::from)?;
    Ok(Some(out))
}
