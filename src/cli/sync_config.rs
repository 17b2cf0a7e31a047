//! The sync loop's configuration, defined once for both entry points: `gitops-seal sync` takes
//! [`SyncOptions`] as they are (`--repo`, `--allowed-namespaces`, ...) and `gitops-seal
//! controller` takes the very same struct through [`ControllerSyncOptions`], which renames
//! every option to its `--sync-` name (`--sync-repo`, `--sync-allowed-namespaces`, ...) when
//! clap builds the command. One struct, one help text, one default per option, and one function
//! that turns it into [`Settings`] ([`SyncOptions::settings`]), so the loop in the cluster
//! and the loop on the command line cannot drift apart.
//!
//! Why not two derived structs: clap's derive has no prefix for flattened arguments, and two
//! hand-written copies (or a macro stamping out two) would still give two types to convert.
//! Renaming the built `Arg`s keeps their ids, so the derived `FromArgMatches` reads the
//! controller's matches into the same struct.
//!
//! The options of one invocation that only `sync` has are [`SYNC_ONLY`]; a test walks both
//! commands and fails when any other option exists in one and not the other.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{ArgMatches, Args, Command, FromArgMatches};

use gitops_seal::sync::Settings;

/// The prefix of the loop's options in `gitops-seal controller`.
pub const CONTROLLER_PREFIX: &str = "sync-";

/// Options of `gitops-seal sync` that the controller has no `--sync-` twin of, and why. They
/// belong to one invocation, or the controller has its own (unprefixed) option for the same.
#[cfg_attr(not(test), allow(dead_code))] // Read by the test that compares the two commands.
pub const SYNC_ONLY: &[(&str, &str)] = &[
    (
        "once",
        "one pass and exit: the controller runs until stopped",
    ),
    ("dry-run", "print the plan and exit: no cluster, no loop"),
    (
        "identity",
        "-i, the keys that open the SealedSecrets: the controller unseals with its own",
    ),
    ("kubeconfig", "the controller's --kubeconfig serves both"),
    ("context", "the controller's --context serves both"),
    (
        "namespace",
        "where the status ConfigMap goes: the controller's own --namespace",
    ),
    ("log-format", "the controller's --log-format serves both"),
];

/// What one sync is and what a pass may do: the options shared by `gitops-seal sync` and, under
/// their `--sync-` names, `gitops-seal controller`.
#[derive(Args, Debug, Clone)]
pub struct SyncOptions {
    /// Repository to sync: a local path; a file:// URL; an https:// URL (a private one with
    /// --git-token-file); or an ssh remote, ssh://git@host/repo.git or git@host:repo.git (with
    /// --git-ssh-key and --git-known-hosts).
    #[arg(long, value_name = "URL", required = true)]
    pub repo: Option<String>,
    /// Branch, tag or commit.
    #[arg(long = "ref", value_name = "REF", default_value = "main")]
    pub reference: String,
    /// Folder of the repository to sync (default: the root).
    #[arg(long, value_name = "DIR", default_value = "")]
    pub path: String,
    /// Name of this sync: the value of the gitops-seal.dev/sync label on what it applies, and
    /// of its status ConfigMap gitops-seal-sync-NAME.
    #[arg(long, value_name = "NAME", required = true)]
    pub name: Option<String>,
    /// Time between passes (e.g. 30s, 1m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub interval: Duration,
    /// A file holding a token for an https repository (sent as the password of user
    /// x-access-token; read at every pass, so a mounted Secret can be rotated).
    #[arg(long, value_name = "FILE")]
    pub git_token_file: Option<PathBuf>,
    /// A private key file for an ssh repository (no passphrase; read at every pass).
    #[arg(long, value_name = "FILE")]
    pub git_ssh_key: Option<PathBuf>,
    /// The known_hosts file that must list an ssh repository's host key (unknown hosts are
    /// refused; `ssh-keyscan HOST` prints candidate lines to check).
    #[arg(long, value_name = "FILE")]
    pub git_known_hosts: Option<PathBuf>,
    /// Where fetched repositories are cached ($TMPDIR/gitops-seal-sync by default; in a
    /// cluster, a writable volume).
    #[arg(long, value_name = "DIR", default_value_os_t = default_cache_dir())]
    pub cache_dir: PathBuf,
    /// Accept an empty path (which prunes everything the last pass applied).
    #[arg(long)]
    pub allow_empty: bool,
    /// Never delete anything.
    #[arg(long)]
    pub no_prune: bool,
    /// Also prune Namespaces and CRDs no longer in Git (deleting them deletes what they hold).
    #[arg(long)]
    pub prune_namespaces_and_crds: bool,
    /// The only namespaces this sync may write to (comma-separated; default: any). A commit
    /// with an object elsewhere is refused whole.
    #[arg(long, value_name = "NS,...", value_delimiter = ',')]
    pub allowed_namespaces: Option<Vec<String>>,
    /// With --allowed-namespaces: also allow cluster-scoped objects.
    #[arg(long)]
    pub allow_cluster_scoped: bool,
    /// Accept plaintext Secrets with values in the synced tree.
    #[arg(long)]
    pub allow_plaintext_secrets: bool,
    /// Apply as this ServiceAccount, by impersonation, so that its RBAC bounds what the
    /// repository can change: NAMESPACE/NAME, or NAME in the namespace of the status ConfigMap.
    /// The account that runs the loop needs `impersonate` on it. Without it the loop writes
    /// with that account's own rights (and says so at start).
    #[arg(long, value_name = "[NS/]NAME")]
    pub service_account: Option<String>,
    /// A local repository (path or file:// path) to read although another user owns it, such
    /// as a volume a git-sync sidecar writes (repeatable). Git's safe.directory, for that path
    /// only: libgit2 refuses a repository owned by another uid.
    #[arg(long, value_name = "PATH")]
    pub trust_repository: Vec<PathBuf>,
}

/// The cache folder by default: the library's (`$TMPDIR/gitops-seal-sync`, `/tmp/...` where
/// `TMPDIR` is unset, as in the container image).
fn default_cache_dir() -> PathBuf {
    Settings::new("", "", "").cache_dir
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    gitops_seal::core::duration::parse_duration(s)
}

impl SyncOptions {
    /// The one translation of the options into [`Settings`], for both entry points:
    /// `None` when no repository is given (the controller without `--sync-repo`). `namespace`
    /// holds the status ConfigMap.
    pub fn settings(&self, namespace: String) -> Result<Option<Settings>> {
        let Some(repo) = &self.repo else {
            return Ok(None);
        };
        let name = self
            .name
            .clone()
            .context("a sync needs a name (the gitops-seal.dev/sync label's value)")?;
        let mut s = Settings::new(name, repo.clone(), namespace);
        s.reference = self.reference.clone();
        s.path = self.path.clone();
        s.interval = self.interval;
        s.cache_dir = self.cache_dir.clone();
        s.token_file = self.git_token_file.clone();
        s.ssh_key_file = self.git_ssh_key.clone();
        s.known_hosts_file = self.git_known_hosts.clone();
        s.allow_empty = self.allow_empty;
        s.prune = !self.no_prune;
        s.prune_namespaces_and_crds = self.prune_namespaces_and_crds;
        s.allowed_namespaces = self.allowed_namespaces.clone();
        s.allow_cluster_scoped = self.allowed_namespaces.is_none() || self.allow_cluster_scoped;
        s.plan.allow_plaintext_secrets = self.allow_plaintext_secrets;
        Ok(Some(s))
    }

    /// Trusts `--trust-repository` paths (before libgit2 starts and before any thread: it
    /// sets `$XDG_CONFIG_HOME` to a folder in the cache).
    pub fn trust_repositories(&self) -> Result<()> {
        gitops_seal::adapters::gitsource::trust_repositories(
            &self.cache_dir.join("git-config-home"),
            &self.trust_repository,
        )?;
        Ok(())
    }

    /// The ServiceAccount to apply as: `(namespace, name)`, a bare NAME in `namespace`.
    pub fn service_account(&self, namespace: &str) -> Result<Option<(String, String)>> {
        self.service_account
            .as_deref()
            .map(|sa| parse_service_account(sa, namespace))
            .transpose()
    }

    /// The client the loop applies with, from the configuration of the account that runs it
    /// (`whose`, for the log: "the controller's own account", "the kubeconfig's user"):
    /// impersonating the service account when one is given (`flag`, for the log), else that
    /// account itself, with a warning at start that the repository gets its rights.
    pub fn loop_client(
        &self,
        mut config: kube::Config,
        namespace: &str,
        whose: &str,
        flag: &str,
    ) -> Result<kube::Client> {
        match self.service_account(namespace)? {
            Some((ns, name)) => {
                gitops_seal::adapters::kube::impersonate_service_account(&mut config, &ns, &name);
                tracing::info!(
                    service_account = %format!("{ns}/{name}"),
                    "the sync loop applies as this ServiceAccount (impersonation)"
                );
            }
            None => tracing::warn!(
                "no service account to impersonate: the sync loop writes with the rights of {whose}, so the repository can change whatever that account can; pass {flag} (docs/OPERATIONS.md)"
            ),
        }
        kube::Client::try_from(config).context("connecting to the Kubernetes API")
    }
}

/// `NAMESPACE/NAME` of a ServiceAccount, or `NAME` in `namespace`.
fn parse_service_account(value: &str, namespace: &str) -> Result<(String, String)> {
    let (ns, name) = value.split_once('/').unwrap_or((namespace, value));
    if ns.is_empty() || name.is_empty() || name.contains('/') {
        anyhow::bail!("the sync's service account is NAMESPACE/NAME or NAME, not {value:?}");
    }
    Ok((ns.to_string(), name.to_string()))
}

/// [`SyncOptions`] under their `--sync-` names, for `gitops-seal controller`. There the loop
/// is optional: nothing is required, `--sync-repo` and `--sync-name` go together, and every
/// other option needs `--sync-repo`, except `--sync-service-account`, which deploy/ passes
/// always so that adding `--sync-repo` never starts a loop with the controller's own rights.
#[derive(Debug, Clone)]
pub struct ControllerSyncOptions(pub SyncOptions);

impl FromArgMatches for ControllerSyncOptions {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        SyncOptions::from_arg_matches(matches).map(ControllerSyncOptions)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }
}

impl Args for ControllerSyncOptions {
    fn group_id() -> Option<clap::Id> {
        SyncOptions::group_id()
    }

    fn augment_args(cmd: Command) -> Command {
        prefixed(SyncOptions::augment_args(cmd))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        prefixed(SyncOptions::augment_args_for_update(cmd))
    }
}

/// Renames the [`SyncOptions`] of `cmd` to their `--sync-` names (in their help too), and
/// makes them optional as described on [`ControllerSyncOptions`].
fn prefixed(mut cmd: Command) -> Command {
    let own = SyncOptions::augment_args(Command::new("sync-options"));
    let longs: Vec<String> = own
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    for arg in own.get_arguments() {
        let id = arg.get_id().as_str().to_owned();
        cmd = cmd.mut_arg(&id, |a| {
            let long = format!("{CONTROLLER_PREFIX}{}", a.get_long().unwrap_or(&id));
            let help = a.get_help().map(|h| prefix_flags(&h.to_string(), &longs));
            let a = match help {
                Some(help) => a.long(long).help(help),
                None => a.long(long),
            };
            match id.as_str() {
                "repo" => a.required(false).requires("name"),
                "name" => a.required(false).requires("repo"),
                "service_account" => a,
                _ => a.requires("repo"),
            }
        });
    }
    cmd
}

/// `text` with every `--LONG` of `longs` written `--sync-LONG`.
fn prefix_flags(text: &str, longs: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("--") {
        out.push_str(&rest[..at + 2]);
        rest = &rest[at + 2..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        if longs.iter().any(|l| *l == rest[..end]) {
            out.push_str(CONTROLLER_PREFIX);
        }
    }
    out.push_str(rest);
    out
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (what the kubelet, systemd and `docker stop` send):
/// how both loops are stopped. The handlers are installed when this is called (inside the
/// runtime), not when the future is first polled, so a signal that comes while the first pass
/// runs stops the process cleanly instead of killing it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Some(mut term), Some(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::cli::Cli;

    /// A subcommand's options by long name: (default values, value names, help).
    fn options(name: &str) -> BTreeMap<String, (Vec<String>, Vec<String>, String)> {
        let cli = Cli::command();
        let sub = cli.find_subcommand(name).expect(name).clone();
        let globals: Vec<String> = cli
            .get_arguments()
            .filter(|a| a.is_global_set())
            .filter_map(|a| a.get_long().map(str::to_owned))
            .collect();
        let mut sub = sub;
        sub.build();
        sub.get_arguments()
            .filter_map(|a| Some((a.get_long()?.to_owned(), a)))
            .filter(|(l, _)| !["help", "version"].contains(&l.as_str()) && !globals.contains(l))
            .map(|(l, a)| {
                let defaults = a
                    .get_default_values()
                    .iter()
                    .map(|d| d.to_string_lossy().into_owned())
                    .collect();
                let names = a
                    .get_value_names()
                    .unwrap_or_default()
                    .iter()
                    .map(|n| n.to_string())
                    .collect();
                let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
                (l, (defaults, names, help))
            })
            .collect()
    }

    /// Both entry points take the same options that shape what a pass may do, the controller's
    /// under their `--sync-` names, with the same defaults, value names and help: an option
    /// added to one and not the other fails here unless it is listed in [`SYNC_ONLY`] (which
    /// must name options that exist).
    #[test]
    fn sync_and_controller_take_the_same_loop_options() {
        let sync = options("sync");
        let controller = options("controller");
        for (exempt, why) in SYNC_ONLY {
            assert!(
                sync.contains_key(*exempt),
                "SYNC_ONLY lists --{exempt} ({why}), which `sync` does not take"
            );
        }
        let shared: BTreeMap<&String, _> = sync
            .iter()
            .filter(|(l, _)| !SYNC_ONLY.iter().any(|(e, _)| e == l))
            .collect();
        let prefixed: BTreeMap<String, _> = controller
            .iter()
            .filter_map(|(l, v)| Some((l.strip_prefix(CONTROLLER_PREFIX)?.to_owned(), v)))
            .collect();
        let only_sync: Vec<_> = shared
            .keys()
            .filter(|l| !prefixed.contains_key(**l))
            .collect();
        let only_controller: Vec<_> = prefixed
            .keys()
            .filter(|l| !shared.contains_key(l))
            .collect();
        assert!(
            only_sync.is_empty() && only_controller.is_empty(),
            "`sync` alone takes {only_sync:?} and `controller` alone takes --sync-{only_controller:?}: add them to both (SyncOptions) or, for an option of one invocation, to SYNC_ONLY"
        );
        for (long, (defaults, names, help)) in &shared {
            let (c_defaults, c_names, c_help) = prefixed[*long];
            assert_eq!(defaults, c_defaults, "default of --{long}");
            assert_eq!(names, c_names, "value name of --{long}");
            let longs: Vec<String> = shared.keys().map(|l| l.to_string()).collect();
            assert_eq!(&prefix_flags(help, &longs), c_help, "help of --{long}");
        }
        // What the issue named, so that the list above cannot shrink unnoticed.
        for long in [
            "repo",
            "ref",
            "path",
            "name",
            "interval",
            "git-token-file",
            "git-ssh-key",
            "git-known-hosts",
            "cache-dir",
            "allowed-namespaces",
            "allow-cluster-scoped",
            "no-prune",
            "prune-namespaces-and-crds",
            "allow-empty",
            "allow-plaintext-secrets",
            "service-account",
        ] {
            assert!(shared.contains_key(&long.to_string()), "--{long}");
        }
        assert!(controller["sync-allow-cluster-scoped"]
            .2
            .contains("--sync-allowed-namespaces"));
    }

    /// Every `--sync-*` option the README, docs/OPERATIONS.md and deploy/ name is one
    /// `gitops-seal controller` takes.
    #[test]
    fn the_documented_sync_options_exist() {
        let controller = options("controller");
        for (file, text) in [
            ("README.md", include_str!("../../README.md")),
            (
                "docs/OPERATIONS.md",
                include_str!("../../docs/OPERATIONS.md"),
            ),
            (
                "deploy/deployment.yaml",
                include_str!("../../deploy/deployment.yaml"),
            ),
            (
                "deploy/sync-rbac-example.yaml",
                include_str!("../../deploy/sync-rbac-example.yaml"),
            ),
        ] {
            let mut seen = 0;
            for (at, _) in text.match_indices("--sync-") {
                let rest = &text[at + 2..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                    .unwrap_or(rest.len());
                let long = rest[..end].trim_end_matches('-');
                if long == "sync" {
                    continue; // "the `--sync-` names"
                }
                assert!(
                    controller.contains_key(long),
                    "{file} names --{long}, which `gitops-seal controller` does not take"
                );
                seen += 1;
            }
            assert!(seen > 0, "{file} names no --sync- option");
        }
    }

    /// The same command line gives the same settings through either entry point.
    #[test]
    fn both_entry_points_build_the_same_settings() {
        let common = [
            "repo=https://git.example/r.git",
            "name=apps",
            "ref=v1",
            "path=clusters/prod",
            "interval=5m",
            "git-token-file=/run/token",
            "cache-dir=/var/cache/s",
            "allowed-namespaces=a,b",
            "allow-cluster-scoped",
            "no-prune",
            "allow-empty",
            "allow-plaintext-secrets",
            "service-account=ops/deployer",
        ];
        let sync = Cli::try_parse_from(
            ["gitops-seal", "sync"]
                .into_iter()
                .map(String::from)
                .chain(common.iter().map(|o| format!("--{o}"))),
        )
        .unwrap();
        let controller = Cli::try_parse_from(
            ["gitops-seal", "controller"]
                .into_iter()
                .map(String::from)
                .chain(common.iter().map(|o| format!("--sync-{o}"))),
        )
        .unwrap();
        let (crate::cli::args::Command::Sync(s), crate::cli::args::Command::Controller(c)) =
            (sync.command, controller.command)
        else {
            panic!("subcommands")
        };
        let a = s.options.settings("ns".into()).unwrap().unwrap();
        let b = c.sync.0.settings("ns".into()).unwrap().unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.allowed_namespaces, Some(vec!["a".into(), "b".into()]));
        assert!(!a.prune && a.allow_empty && a.plan.allow_plaintext_secrets);
        assert_eq!(
            s.options.service_account("ns").unwrap(),
            c.sync.0.service_account("ns").unwrap()
        );
    }

    /// The defaults are one set: the controller without `--sync-repo` runs no loop, and a
    /// bare `--sync-service-account NAME` (what deploy/ passes) parses without a repository
    /// and names the account in the controller's namespace.
    #[test]
    fn the_controller_runs_no_loop_without_a_repository() {
        let cli = Cli::try_parse_from([
            "gitops-seal",
            "controller",
            "--sync-service-account=gitops-seal-sync",
        ])
        .unwrap();
        let crate::cli::args::Command::Controller(c) = cli.command else {
            panic!()
        };
        assert!(c.sync.0.settings("ns".into()).unwrap().is_none());
        assert_eq!(
            c.sync.0.service_account("gitops-seal").unwrap(),
            Some(("gitops-seal".into(), "gitops-seal-sync".into()))
        );
        for needs_repo in [
            &["--sync-allowed-namespaces=a"][..],
            &["--sync-name=x"],
            &["--sync-repo=/r"],
        ] {
            let args = ["gitops-seal", "controller"].iter().chain(needs_repo);
            assert!(Cli::try_parse_from(args).is_err(), "{needs_repo:?}");
        }
        assert!(parse_service_account("a/b/c", "ns").is_err());
        assert!(parse_service_account("/b", "ns").is_err());
    }
}
