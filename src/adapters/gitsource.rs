//! The sync loop's Git edge: fetch a remote incrementally into a cache, resolve a ref to a
//! commit, and read the manifests under a path of that commit, honouring the commit's own
//! `.gitops-seal.yaml` `ignore:`. Blocking (libgit2): callers run it off the async executor.

use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};

use zeroize::Zeroizing;

use super::known_hosts::{self, Verdict};
use crate::core::error::{Error, ErrorKind};
use crate::core::manifest::SourceFile;
use crate::core::rules::Config;

/// What one fetch resolved: the commit, and the manifests under the synced path.
#[derive(Debug)]
pub struct Checkout {
    pub commit: String,
    pub files: Vec<SourceFile>,
}

fn git(e: git2::Error) -> Error {
    Error::from(ErrorKind::Git(e))
}

/// The cache folder for one remote: a bare repository named after the URL.
fn cache_for(cache_dir: &Path, url: &str) -> PathBuf {
    let safe: String = url
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    cache_dir.join(safe)
}

/// How to authenticate to a remote. Secrets are read by the caller (at every pass, so they
/// can be rotated) and handed in zeroizing buffers.
#[derive(Default)]
pub struct Auth {
    /// https: sent as the password of user `x-access-token` when the server asks.
    pub token: Option<Zeroizing<String>>,
    /// ssh: a private key (OpenSSH or PEM, without a passphrase).
    pub ssh_key: Option<Zeroizing<String>>,
    /// ssh: the text of a known_hosts file; a host it does not list is refused.
    pub known_hosts: Option<String>,
}

/// Fetches `url` into `cache_dir` (incremental after the first time) and resolves `reference`:
/// a branch, a tag, or a commit id.
///
/// Over https, the token is sent when the server asks for credentials (HTTP Basic with user
/// `x-access-token`, as GitHub, GitLab and Gitea take tokens). Over ssh, the server's host key
/// must be listed for it in the known_hosts text (unknown, changed and revoked keys are
/// refused before any credential is offered), then the key authenticates the URL's user (`git`
/// when the URL names none). A refused credential is an error, not a retry loop.
pub fn fetch(
    url: &str,
    reference: &str,
    cache_dir: &Path,
    auth: &Auth,
) -> Result<(Repository, Oid), Error> {
    let ssh = known_hosts::ssh_host(url);
    if ssh.is_some() && auth.known_hosts.is_none() {
        return Err(Error::from(ErrorKind::Invalid(
            "an ssh remote needs a known_hosts file (--git-known-hosts): unknown hosts are \
             refused"
                .into(),
        )));
    }
    let repo = open_cache(cache_dir, url)?;
    {
        let mut remote = origin(&repo, url)?;
        let mut callbacks = git2::RemoteCallbacks::new();
        offer_credentials(&mut callbacks, auth);
        // libgit2 replaces the callback's error with its own "invalid or unknown remote ssh
        // hostkey": keep ours to report why.
        let refusal = std::rc::Rc::new(std::cell::RefCell::new(None::<String>));
        {
            let refusal = refusal.clone();
            let known = auth.known_hosts.as_deref();
            // Installed for every URL: libgit2 also speaks ssh to URLs we may not read as ssh
            // (any URL with a colon that names no other transport), and would then check only
            // ~/.ssh/known_hosts. Certificates of https servers are left to libgit2's checks.
            callbacks.certificate_check(move |cert, connected| {
                let Some(hostkey) = cert.as_hostkey() else {
                    return Ok(git2::CertificateCheckStatus::CertificatePassthrough);
                };
                let Some(why) =
                    host_key_refusal(url, ssh.as_ref(), known, hostkey.hostkey(), connected)
                else {
                    return Ok(git2::CertificateCheckStatus::CertificateOk);
                };
                let e = git2::Error::from_str(&why);
                *refusal.borrow_mut() = Some(why);
                Err(e)
            });
        }
        let mut options = git2::FetchOptions::new();
        options.remote_callbacks(callbacks);
        remote
            .fetch(
                &[
                    "+refs/heads/*:refs/remotes/origin/*",
                    "+refs/tags/*:refs/tags/*",
                ],
                Some(&mut options),
                None,
            )
            .map_err(|e| match refusal.borrow_mut().take() {
                Some(why) => Error::from(ErrorKind::Invalid(why)),
                None => git(e),
            })?;
    }
    let oid = resolve(&repo, reference)?;
    Ok((repo, oid))
}

/// The bare cache repository for `url` under `cache_dir`, created the first time.
fn open_cache(cache_dir: &Path, url: &str) -> Result<Repository, Error> {
    let path = cache_for(cache_dir, url);
    std::fs::create_dir_all(&path)
        .map_err(|e| Error::from(ErrorKind::Io(e)).in_file(path.display().to_string()))?;
    match Repository::open_bare(&path) {
        Ok(r) => Ok(r),
        Err(_) => Repository::init_bare(&path).map_err(git),
    }
}

/// The cache's `origin` remote, (re)pointed at `url`.
fn origin<'r>(repo: &'r Repository, url: &str) -> Result<git2::Remote<'r>, Error> {
    match repo.find_remote("origin") {
        Ok(r) if r.url().ok() == Some(url) => Ok(r),
        _ => {
            let _ = repo.remote_delete("origin");
            repo.remote("origin", url).map_err(git)
        }
    }
}

/// Answers the server's credential requests from `auth`: an ssh key, the URL's user, or the
/// token. Each is offered once: a refused credential is an error, not a retry loop.
fn offer_credentials<'a>(callbacks: &mut git2::RemoteCallbacks<'a>, auth: &'a Auth) {
    // What was offered already: libgit2 asks again when the server refuses it.
    let mut offered: Option<&str> = None;
    callbacks.credentials(move |_url, user, allowed| {
        if let Some(what) = offered {
            return Err(git2::Error::from_str(&format!(
                "the server refused the {what}"
            )));
        }
        if allowed.contains(git2::CredentialType::SSH_KEY) {
            let Some(key) = &auth.ssh_key else {
                return Err(git2::Error::from_str(
                    "the ssh server asks for a key and none was given (--git-ssh-key)",
                ));
            };
            offered = Some("ssh key");
            return git2::Cred::ssh_key_from_memory(user.unwrap_or("git"), None, key, None);
        }
        if allowed.contains(git2::CredentialType::USERNAME) {
            return git2::Cred::username(user.unwrap_or("git"));
        }
        match &auth.token {
            Some(token) if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) => {
                offered = Some("token");
                git2::Cred::userpass_plaintext("x-access-token", token)
            }
            _ => Err(git2::Error::from_str(
                "the server asks for credentials and no token was given",
            )),
        }
    });
}

/// Why the ssh host key `key` presented by `connected` is refused for `url` (`ssh`: its host
/// and port when read as an ssh URL; `known`: the known_hosts text), or `None` when the
/// known_hosts text lists it for that host.
fn host_key_refusal(
    url: &str,
    ssh: Option<&(String, Option<u16>)>,
    known: Option<&str>,
    key: Option<&[u8]>,
    connected: &str,
) -> Option<String> {
    Some(match (ssh, known) {
        (Some((host, port)), Some(known)) => {
            let name = known_hosts::host_name(host, *port);
            match key {
                // The host libgit2 connected to must be the one checked.
                _ if !known_hosts::same_host(host, connected) => format!(
                    "{url} names host {host}, but the connection is to \
                     {connected}: refused"
                ),
                None => format!("{name} did not present an ssh host key"),
                Some(key) => match known_hosts::check(known, &name, key) {
                    Verdict::Known => return None,
                    Verdict::Unknown => format!(
                        "host {name} is not in the known_hosts file: refused (add \
                         its key, e.g. from `ssh-keyscan`, after checking it)"
                    ),
                    Verdict::Mismatch => format!(
                        "host {name} presented a key the known_hosts file does not \
                         list for it: refused (the key changed, or someone is in \
                         between)"
                    ),
                    Verdict::Revoked => format!(
                        "host {name} presented a key marked @revoked in the \
                         known_hosts file"
                    ),
                },
            }
        }
        _ => format!(
            "{url} is reached over ssh (host {connected}) but was not read as an \
             ssh URL, so its host key cannot be checked: refused (write it as \
             ssh://[user@]host[:port]/path)"
        ),
    })
}

fn resolve(repo: &Repository, reference: &str) -> Result<Oid, Error> {
    for name in [
        format!("refs/remotes/origin/{reference}"),
        format!("refs/tags/{reference}"),
    ] {
        if let Ok(r) = repo.find_reference(&name) {
            return r.peel_to_commit().map(|c| c.id()).map_err(git);
        }
    }
    if let Ok(oid) = Oid::from_str(reference) {
        if let Ok(c) = repo.find_commit(oid) {
            return Ok(c.id());
        }
    }
    Err(Error::from(ErrorKind::Invalid(format!(
        "no branch, tag or commit {reference:?} in the repository"
    ))))
}

/// Reads every `.yaml`, `.yml` and `.json` file under `path` (repository-relative, `""` or `.`
/// for the root) of `commit`, skipping what the commit's root `.gitops-seal.yaml` ignores.
pub fn read(repo: &Repository, commit: Oid, path: &str) -> Result<Checkout, Error> {
    let commit_obj = repo.find_commit(commit).map_err(git)?;
    let root = commit_obj.tree().map_err(git)?;
    let config = match root.get_path(Path::new(".gitops-seal.yaml")) {
        Ok(entry) => {
            let blob = entry
                .to_object(repo)
                .and_then(|o| o.peel_to_blob())
                .map_err(git)?;
            let text = std::str::from_utf8(blob.content()).map_err(|_| {
                Error::from(ErrorKind::NotUtf8 { offset: 0 }).in_file(".gitops-seal.yaml")
            })?;
            Some(Config::parse(text).map_err(|e| Error::from(e).in_file(".gitops-seal.yaml"))?)
        }
        Err(_) => None,
    };
    let prefix = path.trim_matches('/').trim_start_matches("./");
    let prefix = if prefix == "." { "" } else { prefix };
    let tree = if prefix.is_empty() {
        root
    } else {
        let entry = root.get_path(Path::new(prefix)).map_err(|_| {
            Error::from(ErrorKind::Invalid(format!(
                "path {prefix:?} does not exist in commit {commit}"
            )))
        })?;
        if entry.kind() != Some(ObjectType::Tree) {
            return Err(Error::from(ErrorKind::Invalid(format!(
                "path {prefix:?} is not a folder in commit {commit}"
            ))));
        }
        entry
            .to_object(repo)
            .and_then(|o| o.peel_to_tree())
            .map_err(git)?
    };
    let mut files = Vec::new();
    let mut failure = None;
    let walked = tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        // Regular files only: a symlink (mode 120000) is skipped, as kubectl skips it in a
        // checkout (its blob is the link's target text, not a manifest).
        if entry.kind() != Some(ObjectType::Blob)
            || entry.filemode() == i32::from(git2::FileMode::Link)
        {
            return TreeWalkResult::Ok;
        }
        let Ok(name) = entry.name() else {
            return TreeWalkResult::Ok;
        };
        let rel = if prefix.is_empty() {
            format!("{dir}{name}")
        } else {
            format!("{prefix}/{dir}{name}")
        };
        let manifest = [".yaml", ".yml", ".json"]
            .iter()
            .any(|ext| name.ends_with(ext))
            || name == "Kustomization";
        if !manifest || rel == ".gitops-seal.yaml" {
            return TreeWalkResult::Ok;
        }
        if config.as_ref().is_some_and(|c| c.is_ignored(&rel)) {
            return TreeWalkResult::Ok;
        }
        match entry.to_object(repo).and_then(|o| o.peel_to_blob()) {
            Ok(blob) => files.push(SourceFile {
                path: rel,
                bytes: blob.content().to_vec(),
            }),
            Err(e) => {
                failure = Some(git(e));
                return TreeWalkResult::Abort;
            }
        }
        TreeWalkResult::Ok
    });
    if let Some(e) = failure {
        return Err(e);
    }
    walked.map_err(git)?;
    Ok(Checkout {
        commit: commit.to_string(),
        files,
    })
}

/// Trusts the repositories at `paths` although another user owns them (a volume a git-sync
/// sidecar writes, say), as Git's `safe.directory` does, and no other: libgit2 refuses a
/// repository owned by another uid, and reads `safe.directory` from the user's global
/// configuration. This writes `DIR/git/config` with one `safe.directory` line per path under
/// `config_home` (a folder of the process's own, such as the sync cache) and points
/// `$XDG_CONFIG_HOME` at it. Call it before libgit2 starts (it reads the variable once), and
/// before any thread does: the process's environment changes.
pub fn trust_repositories(config_home: &Path, paths: &[PathBuf]) -> Result<(), Error> {
    if paths.is_empty() {
        return Ok(());
    }
    let dir = config_home.join("git");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut text = String::from("# Written by gitops-seal for --trust-repository\n[safe]\n");
    for p in paths {
        let shown = p.to_str().ok_or_else(|| {
            Error::from(ErrorKind::Invalid(format!(
                "--trust-repository {}: not a UTF-8 path",
                p.display()
            )))
        })?;
        if shown.contains(['\n', '"', '\\']) {
            return Err(Error::from(ErrorKind::Invalid(format!(
                "--trust-repository {shown:?}: a path with a newline, quote or backslash cannot be written to a Git configuration"
            ))));
        }
        text.push_str(&format!("\tdirectory = {shown}\n"));
    }
    let file = dir.join("config");
    super::files::write_atomic(&file, text.as_bytes()).map_err(|e| Error::io(&file, e))?;
    std::env::set_var("XDG_CONFIG_HOME", config_home);
    Ok(())
}
