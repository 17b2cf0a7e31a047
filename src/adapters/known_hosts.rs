//! OpenSSH `known_hosts` matching for the sync loop's ssh remotes (pure: text and key bytes in,
//! a verdict out). The format is sshd(8)'s "SSH_KNOWN_HOSTS FILE FORMAT": per line, optional
//! marker, comma-separated host patterns (plain, `[host]:port`, `*`/`?` wildcards, `!` negation,
//! or one hashed `|1|salt|hmac` entry), key type, base64 key blob, optional comment.
//!
//! Only exact key matches are trusted: a host with no entry is refused (never trusted on first
//! use), and `@revoked` keys are refused even when another line lists them. `@cert-authority`
//! lines are not supported (host certificates are not offered by libssh2) and are skipped.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// What the known_hosts file says about a host's key.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An entry for the host holds exactly this key.
    Known,
    /// The host has entries, none of them this key (a changed key, or someone in between).
    Mismatch,
    /// The file has no entry for the host.
    Unknown,
    /// The key is marked `@revoked`.
    Revoked,
}

/// The name known_hosts uses for `host` on `port`: `host` on 22, `[host]:port` otherwise.
pub fn host_name(host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) if p != 22 => format!("[{host}]:{p}"),
        _ => host.to_string(),
    }
}

/// Checks `key` (the SSH wire-format public key blob the server presented) for `host` (as
/// [`host_name`] writes it) against the text of a known_hosts file.
pub fn check(known_hosts: &str, host: &str, key: &[u8]) -> Verdict {
    let mut host_has_entries = false;
    let mut known = false;
    for line in known_hosts.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(mut first) = fields.next() else {
            continue;
        };
        let mut marker = None;
        if first.starts_with('@') {
            marker = Some(first);
            let Some(next) = fields.next() else { continue };
            first = next;
        }
        let (Some(_key_type), Some(blob)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Ok(blob) = base64::engine::general_purpose::STANDARD.decode(blob) else {
            continue;
        };
        if !patterns_match(first, host) {
            continue;
        }
        match marker {
            Some("@revoked") if blob == key => return Verdict::Revoked,
            Some(_) => continue,
            None => {
                host_has_entries = true;
                known |= blob == key;
            }
        }
    }
    if known {
        Verdict::Known
    } else if host_has_entries {
        Verdict::Mismatch
    } else {
        Verdict::Unknown
    }
}

/// A comma-separated pattern list matches when some pattern matches and no negated one does.
fn patterns_match(list: &str, host: &str) -> bool {
    if let Some(hashed) = list.strip_prefix("|1|") {
        return hashed_matches(hashed, host);
    }
    let mut matched = false;
    for pattern in list.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard(negated, host) {
                return false;
            }
        } else if wildcard(pattern, host) {
            matched = true;
        }
    }
    matched
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, host))`, as `ssh-keygen -H` writes.
fn hashed_matches(hashed: &str, host: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some((salt, digest)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(digest)) = (b64.decode(salt), b64.decode(digest)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    // OpenSSH hashes the name in lower case (ssh(1) lowercases the host it connects to).
    mac.update(host.to_ascii_lowercase().as_bytes());
    mac.verify_slice(&digest).is_ok()
}

/// Case-insensitive glob with `*` and `?` (host names are case-insensitive).
fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Host and port of an ssh remote: `ssh://[user@]host[:port]/path` (the scheme in any case, as
/// libgit2 takes it) or scp-like `[user@]host:path`, `[user@][v6 address]:path`. `None` for
/// other URLs.
pub fn ssh_host(url: &str) -> Option<(String, Option<u16>)> {
    let scheme = ["ssh://", "git+ssh://", "ssh+git://"]
        .into_iter()
        .find(|p| {
            url.get(..p.len())
                .is_some_and(|u| u.eq_ignore_ascii_case(p))
        });
    if let Some(scheme) = scheme {
        let rest = &url[scheme.len()..];
        let authority = rest.split('/').next()?;
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return Some((host.to_string(), port));
        }
        return Some(match hostport.split_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()),
            None => (hostport.to_string(), None),
        });
    }
    if url.contains("://") {
        return None;
    }
    // scp-like, as libgit2 reads it (`git_net_url_parse_scp`): a user up to the first `@`
    // before any colon, then the host up to a colon; an IPv6 address in brackets; or the
    // whole `[user@host:port]` in brackets.
    let (bracket, rest) = match url.strip_prefix('[') {
        Some(r) if !is_ipv6(r) => (true, r),
        _ => (false, url),
    };
    let user_end = rest
        .find(['@', ':'])
        .filter(|&i| rest.as_bytes()[i] == b'@')
        .map_or(0, |i| i + 1);
    let hostpart = &rest[user_end..];
    // After the host: `:path`, or with the bracket `:port]:path`.
    let port_after = |after: &str| -> Option<Option<u16>> {
        let after = after.strip_prefix(':')?;
        if !bracket {
            return Some(None);
        }
        let (port, path) = after.split_once(']')?;
        path.strip_prefix(':')?;
        Some(Some(port.parse().ok()?))
    };
    if let Some(v6) = hostpart.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        return Some((host.to_string(), port_after(after)?));
    }
    let end = hostpart.find([':', ']'])?;
    let host = &hostpart[..end];
    if host.is_empty() || host.contains(['/', '[']) {
        return None;
    }
    let after = &hostpart[end..];
    let port = match after.strip_prefix(']') {
        // `[host]:path`
        Some(path) if bracket => {
            path.strip_prefix(':')?;
            None
        }
        Some(_) => return None,
        None => port_after(after)?,
    };
    Some((host.to_string(), port))
}

/// libgit2's test for `[` starting an IPv6 address: hex digits and colons up to `]`, with at
/// least two colons.
fn is_ipv6(after_bracket: &str) -> bool {
    let Some((inside, _)) = after_bracket.split_once(']') else {
        return false;
    };
    inside.bytes().all(|c| c == b':' || c.is_ascii_hexdigit())
        && inside.bytes().filter(|&c| c == b':').count() > 1
}

/// Whether `connected` (the host libgit2 reports connecting to, an IPv6 address possibly in
/// brackets) is `host`.
pub fn same_host(host: &str, connected: &str) -> bool {
    let bare = |h: &str| {
        h.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(h)
            .to_ascii_lowercase()
    };
    bare(host) == bare(connected)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const KEY_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIHQfeDvOpG+MgP4AIgf9BgRU5Whdc3zBxHCR6FBb9IQa";

    fn blob(b64: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    }

    #[test]
    fn plain_entries_match_by_host_and_exact_key() {
        let file = format!("# comment\ngithub.com,140.82.121.4 ssh-ed25519 {KEY_A}\n");
        assert_eq!(check(&file, "github.com", &blob(KEY_A)), Verdict::Known);
        assert_eq!(check(&file, "GitHub.com", &blob(KEY_A)), Verdict::Known);
        assert_eq!(check(&file, "140.82.121.4", &blob(KEY_A)), Verdict::Known);
        assert_eq!(check(&file, "github.com", &blob(KEY_B)), Verdict::Mismatch);
        assert_eq!(check(&file, "gitlab.com", &blob(KEY_A)), Verdict::Unknown);
        assert_eq!(check("", "github.com", &blob(KEY_A)), Verdict::Unknown);
    }

    #[test]
    fn ports_other_than_22_use_brackets() {
        assert_eq!(host_name("git.example", Some(22)), "git.example");
        assert_eq!(host_name("git.example", None), "git.example");
        assert_eq!(host_name("127.0.0.1", Some(2222)), "[127.0.0.1]:2222");
        let file = format!("[127.0.0.1]:2222 ssh-ed25519 {KEY_A}\n");
        assert_eq!(
            check(&file, "[127.0.0.1]:2222", &blob(KEY_A)),
            Verdict::Known
        );
        assert_eq!(check(&file, "127.0.0.1", &blob(KEY_A)), Verdict::Unknown);
    }

    #[test]
    fn hashed_entries_as_ssh_keygen_writes_them() {
        // `ssh-keygen -H` of "github.com" with salt 0x00..0x13, digest computed with HMAC-SHA1.
        let salt: Vec<u8> = (0u8..20).collect();
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"github.com");
        let digest = mac.finalize().into_bytes();
        let b64 = base64::engine::general_purpose::STANDARD;
        let file = format!(
            "|1|{}|{} ssh-ed25519 {KEY_A}\n",
            b64.encode(&salt),
            b64.encode(digest)
        );
        assert_eq!(check(&file, "github.com", &blob(KEY_A)), Verdict::Known);
        assert_eq!(check(&file, "gitlab.com", &blob(KEY_A)), Verdict::Unknown);
    }

    #[test]
    fn wildcards_negation_and_markers() {
        let file = format!(
            "*.example.com,!evil.example.com ssh-ed25519 {KEY_A}\n\
             @revoked * ssh-ed25519 {KEY_B}\n\
             @cert-authority *.example.com ssh-ed25519 {KEY_B}\n"
        );
        assert_eq!(
            check(&file, "git.example.com", &blob(KEY_A)),
            Verdict::Known
        );
        assert_eq!(
            check(&file, "evil.example.com", &blob(KEY_A)),
            Verdict::Unknown
        );
        assert_eq!(
            check(&file, "git.example.com", &blob(KEY_B)),
            Verdict::Revoked
        );
        assert!(wildcard("git?.example.*", "git1.example.org"));
        assert!(!wildcard("git?.example.*", "git12.example.org"));
    }

    #[test]
    fn ssh_urls_name_their_host_and_port() {
        assert_eq!(
            ssh_host("ssh://git@127.0.0.1:2222/srv/repo.git"),
            Some(("127.0.0.1".into(), Some(2222)))
        );
        assert_eq!(
            ssh_host("ssh://git.example/repo.git"),
            Some(("git.example".into(), None))
        );
        assert_eq!(
            ssh_host("ssh://git@[::1]:2222/repo.git"),
            Some(("::1".into(), Some(2222)))
        );
        assert_eq!(
            ssh_host("git@github.com:org/repo.git"),
            Some(("github.com".into(), None))
        );
        assert_eq!(ssh_host("https://github.com/org/repo.git"), None);
        assert_eq!(ssh_host("file:///srv/repo.git"), None);
        assert_eq!(ssh_host("/srv/repo.git"), None);
        assert_eq!(ssh_host("./dir:with/colon"), None);
    }

    /// What OpenSSH does with a line whose only pattern is negated (no match: a negation only
    /// excludes), a hashed name written for the lower-case host, and a host the URL spells in
    /// capitals.
    #[test]
    fn negation_alone_matches_nothing_and_hashes_ignore_case() {
        let file = format!("!evil.example ssh-ed25519 {KEY_A}\n");
        assert_eq!(check(&file, "good.example", &blob(KEY_A)), Verdict::Unknown);
        assert_eq!(check(&file, "evil.example", &blob(KEY_A)), Verdict::Unknown);

        let salt = [7u8; 20];
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"github.com");
        let b64 = base64::engine::general_purpose::STANDARD;
        let file = format!(
            "|1|{}|{} ssh-ed25519 {KEY_A}\n",
            b64.encode(salt),
            b64.encode(mac.finalize().into_bytes())
        );
        assert_eq!(check(&file, "GitHub.com", &blob(KEY_A)), Verdict::Known);
        assert_eq!(check(&file, "GitHub.com", &blob(KEY_B)), Verdict::Mismatch);

        // A port is part of the name: an entry for port 22 says nothing of 2222.
        let file = format!("git.example ssh-ed25519 {KEY_A}\n");
        assert_eq!(
            check(&file, &host_name("git.example", Some(2222)), &blob(KEY_A)),
            Verdict::Unknown
        );
        assert_eq!(
            check(&file, &host_name("git.example", Some(22)), &blob(KEY_A)),
            Verdict::Known
        );
    }

    /// URLs libgit2 reaches over ssh: the scheme in any case, scp-like IPv6 addresses. A URL
    /// read differently from libgit2 is caught by comparing hosts ([`same_host`]).
    #[test]
    fn ssh_urls_libgit2_takes_as_ssh_are_read_as_ssh() {
        assert_eq!(
            ssh_host("SSH://git@git.example:2222/repo.git"),
            Some(("git.example".into(), Some(2222)))
        );
        assert_eq!(
            ssh_host("Git+Ssh://git.example/repo.git"),
            Some(("git.example".into(), None))
        );
        assert_eq!(
            ssh_host("ssh://git.example:22/repo.git"),
            Some(("git.example".into(), Some(22)))
        );
        assert_eq!(ssh_host("[::1]:repo.git"), Some(("::1".into(), None)));
        assert_eq!(
            ssh_host("git@[fe80::1]:org/repo.git"),
            Some(("fe80::1".into(), None))
        );
        assert_eq!(
            ssh_host("[git@git.example:2222]:repo"),
            Some(("git.example".into(), Some(2222)))
        );
        assert_eq!(
            ssh_host("[git.example]:repo"),
            Some(("git.example".into(), None))
        );
        // libgit2 takes the user up to the first `@`: the host is then "b@host", not "host".
        assert_eq!(ssh_host("a@b@host:repo"), Some(("b@host".into(), None)));
        // No panic on a multi-byte character where the scheme would end; scp-like then.
        assert_eq!(ssh_host("ssh:/é/x"), Some(("ssh".into(), None)));
        assert!(same_host("::1", "[::1]"));
        assert!(same_host("Git.Example", "git.example"));
        assert!(!same_host("git.example", "evil.example"));
    }
}
