use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use gitops_seal::core::Scope;

/// Keep Kubernetes Secrets in Git, sealed value by value with age.
#[derive(Parser, Debug)]
#[command(name = "gitops-seal", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Bounds on the work one manifest file may cause (every command that reads manifests).
#[derive(Args, Debug, Clone, Copy)]
pub struct LimitArgs {
    /// Refuse manifest files larger than this many bytes.
    #[arg(long, global = true, value_name = "BYTES", default_value_t = gitops_seal::core::kubeyaml::DEFAULT_MAX_FILE_BYTES)]
    pub max_file_size: usize,
    /// Refuse manifest files with more documents than this.
    #[arg(long, global = true, value_name = "N", default_value_t = gitops_seal::core::kubeyaml::DEFAULT_MAX_DOCUMENTS)]
    pub max_documents: usize,
}

impl LimitArgs {
    pub fn limits(&self) -> gitops_seal::core::kubeyaml::Limits {
        gitops_seal::core::kubeyaml::Limits {
            max_file_bytes: self.max_file_size,
            max_documents: self.max_documents,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate an age identity (mode 0600, never overwrites) and print its public key.
    Keygen {
        /// Write the identity to FILE instead of standard output.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Make a classical X25519 identity (age1...) instead of a post-quantum one
        /// (age1pq1..., ML-KEM-768 + X25519), for a tool that cannot open post-quantum values.
        #[arg(long)]
        x25519: bool,
    },
    /// Print the public recipient of an identity, or with --fetch the cluster controller's.
    Recipient {
        #[command(flatten)]
        identity: IdentityArgs,
        #[command(flatten)]
        fetch: super::fetch::FetchArgs,
        /// Print each key's short public fingerprint (`pq:3f9a2c71d04e8b56`, as statuses,
        /// metrics and `keys usage` name keys) instead of its recipient.
        #[arg(long)]
        fingerprint: bool,
    },
    /// Keys and what needs them.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Seal every v1 Secret into a SealedSecret; other documents pass through untouched.
    Encrypt {
        /// Manifest files or folders; `-` reads standard input.
        #[arg(value_name = "FILE", default_value = "-")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        recipients: RecipientArgs,
        /// How far a sealed value may travel (default: the Secret's annotation
        /// gitops-seal.dev/scope, else the rule's scope, else strict).
        #[arg(long, value_enum)]
        scope: Option<ScopeArg>,
        #[command(flatten)]
        namespace: NamespaceArg,
        /// Rewrite each file in place (atomic; keeps the file mode).
        #[arg(long)]
        in_place: bool,
        /// With --in-place: write even to a file with more than one hard link (the other
        /// links keep the old content; without it such a file is refused).
        #[arg(long, requires = "in_place")]
        force: bool,
    },
    /// Move Bitnami SealedSecrets or SOPS-encrypted Secrets to gitops-seal SealedSecrets,
    /// offline; nothing is written unless every value of every file opens.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Turn SealedSecrets back into Secrets (needs an identity).
    Decrypt {
        #[arg(value_name = "FILE", default_value = "-")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        identity: IdentityArgs,
        #[command(flatten)]
        namespace: NamespaceArg,
    },
    /// Decrypt to a private temp file, run $EDITOR, and seal again.
    Edit {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        identity: IdentityArgs,
        #[command(flatten)]
        recipients: RecipientArgs,
        #[command(flatten)]
        namespace: NamespaceArg,
        /// Write in place even to a file with more than one hard link (the other links keep
        /// the old content; without it such a file is refused).
        #[arg(long)]
        force: bool,
    },
    /// Seal one value into an existing SealedSecret (public recipients only, no key needed).
    Set {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The SealedSecret: NAME or NAMESPACE/NAME.
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(value_name = "KEY")]
        key: String,
        /// Read the value from a file.
        #[arg(long, value_name = "PATH", conflicts_with = "from_literal")]
        from_file: Option<PathBuf>,
        /// The value itself (it lands in your shell history: prefer --from-file or stdin).
        #[arg(long, value_name = "VALUE")]
        from_literal: Option<String>,
        #[command(flatten)]
        recipients: RecipientArgs,
        #[command(flatten)]
        namespace: NamespaceArg,
        /// Write in place even to a file with more than one hard link (the other links keep
        /// the old content; without it such a file is refused).
        #[arg(long)]
        force: bool,
    },
    /// Remove one value from a SealedSecret.
    Unset {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[arg(value_name = "NAME")]
        name: String,
        #[arg(value_name = "KEY")]
        key: String,
        #[command(flatten)]
        namespace: NamespaceArg,
        /// Write in place even to a file with more than one hard link (the other links keep
        /// the old content; without it such a file is refused).
        #[arg(long)]
        force: bool,
    },
    /// Re-seal every value to a new recipient list, in place (needs an identity).
    Rekey {
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        identity: IdentityArgs,
        #[command(flatten)]
        recipients: RecipientArgs,
        #[command(flatten)]
        namespace: NamespaceArg,
        /// Write in place even to a file with more than one hard link (the other links keep
        /// the old content; without it such a file is refused).
        #[arg(long)]
        force: bool,
    },
    /// Git merge driver: merge SealedSecrets key by key (Git runs it as `%O %A %B %P`).
    MergeDriver {
        /// The common ancestor (%O).
        #[arg(value_name = "BASE", required_unless_present_any = ["install", "print"])]
        base: Option<PathBuf>,
        /// Our version (%A); the result is written here.
        #[arg(value_name = "OURS", required_unless_present_any = ["install", "print"])]
        ours: Option<PathBuf>,
        /// Their version (%B).
        #[arg(value_name = "THEIRS", required_unless_present_any = ["install", "print"])]
        theirs: Option<PathBuf>,
        /// The path in the repository (%P), for messages.
        #[arg(value_name = "PATH")]
        path: Option<String>,
        /// Conflict marker length (%L).
        #[arg(long, default_value_t = 7)]
        marker_size: usize,
        /// Write the git config entries and .gitattributes lines into this repository.
        #[arg(long, conflicts_with = "print")]
        install: bool,
        /// Print the git config commands and .gitattributes lines instead.
        #[arg(long)]
        print: bool,
    },
    /// The Git pre-commit hook that refuses staged plaintext Secrets.
    Hook {
        #[command(subcommand)]
        action: HookAction,
    },
    /// Find plaintext Secrets in a working tree, or in every commit reachable from any ref.
    Scan {
        /// The folder (or repository, with --history) to scan.
        #[arg(value_name = "PATH", default_value = ".")]
        path: PathBuf,
        /// Walk all of Git history instead of the working tree.
        #[arg(long)]
        history: bool,
        /// With --history: audit every sealed value ever committed for classical (not
        /// post-quantum) stanzas, and list the values to rotate ("harvest now, decrypt later").
        #[arg(long, requires = "history")]
        exposure: bool,
        /// With --exposure: open HEAD's and the classical versions to tell a rekey from a
        /// changed value (repeatable).
        #[arg(
            short = 'i',
            long = "identity",
            value_name = "FILE",
            requires = "exposure"
        )]
        identity: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Print a file for `git diff` with SealedSecret values opened (or shown as <sealed>).
    Textconv {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Exit non-zero on any plaintext Secret or malformed SealedSecret.
    Verify {
        /// Files or folders (default: the current folder).
        #[arg(value_name = "PATH", default_value = ".")]
        paths: Vec<PathBuf>,
        /// Every SealedSecret must list this recipient, with one stanza per listed recipient.
        #[arg(long = "recipient", value_name = "RECIPIENT")]
        recipient: Vec<String>,
        /// Also prove that every value opens with these identities.
        #[arg(short = 'i', long = "identity", value_name = "FILE")]
        identity: Vec<PathBuf>,
        /// Report every value with a classical (X25519, ssh) stanza, as `require_pq: true` in
        /// .gitops-seal.yaml does for the paths of its rules.
        #[arg(long)]
        require_pq: bool,
        #[command(flatten)]
        namespace: NamespaceArg,
    },
    /// Run the in-cluster controller: unseal SealedSecrets into Secrets.
    Controller(super::controller::ControllerArgs),
    /// Make the cluster match a Git repository: unseal SealedSecrets at sync, apply, prune.
    Sync(super::sync::SyncArgs),
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// For each sealed value under PATH, which of the given identities open it; values that
    /// none opens are listed, and make the exit status 1 (before deleting a key: run it with
    /// the keys that stay).
    Usage {
        /// An identity file to try (repeatable; at least one).
        #[arg(short = 'i', long = "identity", value_name = "FILE", required = true)]
        identity: Vec<PathBuf>,
        /// Files or folders (default: the current folder).
        #[arg(value_name = "PATH", default_value = ".")]
        paths: Vec<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImportSource {
    /// Bitnami SealedSecrets (bitnami.com/v1alpha1), opened with the controller's RSA keys; by
    /// default ours is written beside each (same file, next document).
    SealedSecrets {
        /// The controller's private keys (repeatable): the backup made with `kubectl get secret
        /// -n kube-system -l sealedsecrets.bitnami.com/sealed-secrets-key -o yaml`, or PEM files.
        #[arg(long = "key", value_name = "FILE", required = true)]
        key: Vec<PathBuf>,
        #[command(flatten)]
        common: ImportArgs,
        /// Remove the Bitnami documents instead of writing ours beside them.
        #[arg(long)]
        replace: bool,
    },
    /// SOPS files (YAML or JSON) whose data key is sealed for age, opened with an age identity;
    /// each SOPS file becomes its SealedSecrets.
    Sops {
        #[command(flatten)]
        identity: IdentityArgs,
        #[command(flatten)]
        common: ImportArgs,
    },
}

/// What both importers take.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Manifest files or folders; `-` reads standard input.
    #[arg(value_name = "FILE", default_value = "-")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub recipients: RecipientArgs,
    /// How far a sealed value may travel (default: the source's own scope where it has one,
    /// else the rule's scope, else strict).
    #[arg(long, value_enum)]
    pub scope: Option<ScopeArg>,
    #[command(flatten)]
    pub namespace: NamespaceArg,
    /// Rewrite each file in place (atomic; all files or none).
    #[arg(long)]
    pub in_place: bool,
    /// With --in-place: write even to a file with more than one hard link (the other links
    /// keep the old content; without it such a file is refused).
    #[arg(long, requires = "in_place")]
    pub force: bool,
    /// Print what would be imported (objects, keys, scopes; never a value) and write nothing.
    #[arg(long, conflicts_with = "in_place")]
    pub dry_run: bool,
}

#[derive(Subcommand, Debug)]
pub enum HookAction {
    /// Write the pre-commit hook (respects core.hooksPath).
    Install {
        /// Seal staged plaintext Secrets with the rule's recipients instead of refusing.
        #[arg(long)]
        fix: bool,
        /// Keep an existing foreign hook as pre-commit.local (run first) and install ours.
        #[arg(long)]
        force: bool,
    },
    /// Remove gitops-seal's hook (and restore a kept one).
    Uninstall,
    /// What the hook runs: check the index for plaintext Secrets.
    Run {
        #[arg(long)]
        fix: bool,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Args, Debug, Default)]
pub struct IdentityArgs {
    /// Identity file (repeatable); else $GITOPS_SEAL_IDENTITY, else
    /// ~/.config/gitops-seal/identity.txt.
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    pub identity: Vec<PathBuf>,
}

#[derive(Args, Debug, Default)]
pub struct RecipientArgs {
    /// Seal for this recipient (age1... or an SSH public key; repeatable).
    #[arg(short = 'r', long = "recipient", value_name = "RECIPIENT")]
    pub recipient: Vec<String>,
    /// Seal for the recipients in FILE (age's recipients-file format; repeatable).
    #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
    pub recipients_file: Vec<PathBuf>,
}

impl RecipientArgs {
    pub fn given(&self) -> bool {
        !self.recipient.is_empty() || !self.recipients_file.is_empty()
    }
}

#[derive(Args, Debug, Default)]
pub struct NamespaceArg {
    /// Namespace to bind when a Secret's manifest has none.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespace: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ScopeArg {
    Strict,
    Namespace,
    Cluster,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Strict => Scope::Strict,
            ScopeArg::Namespace => Scope::Namespace,
            ScopeArg::Cluster => Scope::Cluster,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;

    /// docs/OPERATIONS.md's rotation: every `gitops-seal` command line parses as written, and
    /// the labels, finalizer, ConfigMap and metrics it names are the ones the controller uses.
    #[test]
    fn the_rotation_steps_are_real() {
        use gitops_seal::core::names;
        let doc = include_str!("../../docs/OPERATIONS.md");
        let start = doc
            .find("## Rotate and retire keys")
            .expect("the rotation section");
        let section = &doc[start..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
        let mut seen = 0;
        for line in section.lines() {
            let Some(rest) = line.trim_start().strip_prefix("gitops-seal ") else {
                continue;
            };
            let command = rest.split(['>', '#']).next().unwrap_or_default();
            let args = std::iter::once("gitops-seal").chain(command.split_whitespace());
            if let Err(e) = Cli::try_parse_from(args) {
                panic!("docs/OPERATIONS.md: `{line}` does not parse: {e}");
            }
            seen += 1;
        }
        assert!(seen >= 4, "{seen} commands found");
        for name in [
            format!("{}=true", names::IDENTITY_LABEL),
            format!("{}=true", names::RETIRED_LABEL),
            format!("`{}: \"true\"`", names::RETIRED_LABEL),
            names::KEY_IN_USE_FINALIZER.to_string(),
            names::KEY_USAGE_CONFIGMAP.to_string(),
            names::KEY_USAGE_KEY.replace('.', "\\."),
            "gitops_seal_key_sealedsecrets".to_string(),
            "gitops_seal_key_in_use".to_string(),
            "status.openedWith".to_string(),
            "KeyInUse".to_string(),
            "KeyReleased".to_string(),
        ] {
            assert!(
                section.contains(&name),
                "the rotation section never names {name}"
            );
        }
        for step in ["# 1.", "# 2.", "# 3.", "# 4.", "# 5.", "# 6."] {
            assert!(section.contains(step), "the rotation lacks step {step}");
        }
        // The rollout section names what the controller reads and writes.
        for name in [
            names::ROLLOUT_ANNOTATION,
            names::DATA_HASH_ANNOTATION,
            names::RESTARTED_AT_ANNOTATION,
        ] {
            assert!(doc.contains(name), "docs/OPERATIONS.md never names {name}");
        }
    }

    /// Every `gitops-seal` command line of the migration guide parses as written (flags that
    /// exist, in combinations allowed), and the annotations it tells users to set are the ones
    /// the controller and the importer read.
    #[test]
    fn the_migration_guides_commands_and_annotations_are_real() {
        let doc = include_str!("../../docs/MIGRATING.md");
        let mut seen = 0;
        for line in doc.lines() {
            let Some(rest) = line.trim_start().strip_prefix("gitops-seal ") else {
                continue;
            };
            let command = rest.split(['>', '#']).next().unwrap_or_default();
            let args = std::iter::once("gitops-seal").chain(command.split_whitespace());
            if let Err(e) = Cli::try_parse_from(args) {
                panic!("docs/MIGRATING.md: `{line}` does not parse: {e}");
            }
            seen += 1;
        }
        assert!(seen >= 5, "{seen} commands found");
        use gitops_seal::controller::render::{ADOPT_ANNOTATION, OWNER_REFERENCE_ANNOTATION};
        use gitops_seal::core::import::bitnami;
        for name in [
            ADOPT_ANNOTATION,
            OWNER_REFERENCE_ANNOTATION,
            gitops_seal::core::secret::SCOPE_ANNOTATION,
            bitnami::NAMESPACE_WIDE_ANNOTATION,
            bitnami::CLUSTER_WIDE_ANNOTATION,
            bitnami::SKIP_OWNER_REFERENCES_ANNOTATION,
            bitnami::KEY_LABEL,
        ] {
            assert!(doc.contains(name), "docs/MIGRATING.md never names {name}");
        }
        let annotations = doc
            .split(|c: char| c.is_whitespace() || "`\"'(),:=|".contains(c))
            .filter(|w| w.starts_with("gitops-seal.dev/"));
        for a in annotations {
            assert!(
                [
                    ADOPT_ANNOTATION,
                    OWNER_REFERENCE_ANNOTATION,
                    gitops_seal::core::secret::SCOPE_ANNOTATION
                ]
                .contains(&a.trim_end_matches(['-', '.'])),
                "docs/MIGRATING.md names {a}, which nothing reads"
            );
        }
    }
}
