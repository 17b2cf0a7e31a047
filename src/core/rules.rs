//! `.gitops-seal.yaml`: which recipients, scope and namespace apply to which paths, and which
//! paths the hook and scan skip. Parsing and matching only; the adapters find the file and
//! read the recipient files it names.

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::Deserialize;

use super::binding::Scope;
use super::error::ErrorKind;
use super::yaml::{self, RawDocument};

pub const CONFIG_FILE_NAME: &str = ".gitops-seal.yaml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    ignore: Vec<String>,
    /// Every rule seals for post-quantum recipients only (a rule may say otherwise).
    #[serde(default)]
    require_pq: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    path: String,
    #[serde(default)]
    recipients: Vec<String>,
    scope: Option<String>,
    namespace: Option<String>,
    require_pq: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub path: String,
    /// Entries as written: `age1...`/`ssh-...` strings, files, or globs of files, relative to
    /// the config file's folder.
    pub recipients: Vec<String>,
    pub scope: Option<Scope>,
    pub namespace: Option<String>,
    /// `require_pq:` of the rule, else the config's: classical recipients are refused for
    /// new values and `verify` reports values with a classical stanza.
    pub require_pq: bool,
    matcher: GlobMatcher,
}

/// What the rules say about one file, its recipient entries resolved to recipients.
#[derive(Debug, Clone, Default)]
pub struct RuleMatch {
    /// The matching rule's recipients; `None` when no rule matches.
    pub recipients: Option<Vec<super::keys::Recipient>>,
    pub scope: Option<Scope>,
    pub namespace: Option<String>,
    /// The path is under one of the config's `ignore:` globs.
    pub ignored: bool,
    /// The matching rule (or the config) says `require_pq: true`.
    pub require_pq: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub rules: Vec<Rule>,
    ignore: Vec<GlobMatcher>,
    /// The global `require_pq:` (what a path no rule matches gets).
    pub require_pq: bool,
}

fn glob(pattern: &str) -> Result<GlobMatcher, ErrorKind> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g: Glob| g.compile_matcher())
        .map_err(|source| ErrorKind::InvalidGlob {
            pattern: pattern.to_string(),
            source,
        })
}

impl Config {
    pub fn parse(text: &str) -> Result<Self, ErrorKind> {
        let doc = RawDocument {
            text,
            first_line: 1,
            is_empty: false,
        };
        let raw: RawConfig = yaml::parse(&doc)?;
        let mut rules = Vec::new();
        for r in raw.rules {
            rules.push(Rule {
                matcher: glob(&r.path)?,
                scope: r.scope.as_deref().map(str::parse).transpose()?,
                path: r.path,
                recipients: r.recipients,
                namespace: r.namespace,
                require_pq: r.require_pq.unwrap_or(raw.require_pq),
            });
        }
        let ignore = raw
            .ignore
            .iter()
            .map(|g| glob(g))
            .collect::<Result<_, _>>()?;
        Ok(Config {
            rules,
            ignore,
            require_pq: raw.require_pq,
        })
    }

    /// The first rule whose glob matches `path` (relative to the config's folder, `/`-separated).
    pub fn rule_for(&self, path: &str) -> Option<&Rule> {
        self.rule_index_for(path).map(|i| &self.rules[i])
    }

    pub fn rule_index_for(&self, path: &str) -> Option<usize> {
        self.rules.iter().position(|r| r.matcher.is_match(path))
    }

    pub fn is_ignored(&self, path: &str) -> bool {
        self.ignore.iter().any(|g| g.is_match(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_wins() {
        let c = Config::parse(
            "rules:\n  - path: \"clusters/prod/**\"\n    recipients: [keys/prod.pub]\n    scope: namespace\n  - path: \"**\"\n    recipients: [keys/dev.pub]\n    namespace: dev\nignore: [\"charts/**\"]\n",
        )
        .unwrap();
        let prod = c.rule_for("clusters/prod/db.yaml").unwrap();
        assert_eq!(prod.recipients, ["keys/prod.pub"]);
        assert_eq!(prod.scope, Some(Scope::Namespace));
        let dev = c.rule_for("apps/x.yaml").unwrap();
        assert_eq!(dev.namespace.as_deref(), Some("dev"));
        assert!(c.is_ignored("charts/a/templates/s.yaml"));
        assert!(!c.is_ignored("apps/x.yaml"));
    }

    #[test]
    fn require_pq_is_global_and_per_rule() {
        let c = Config::parse(
            "require_pq: true\nrules:\n  - path: \"legacy/**\"\n    recipients: [a]\n    require_pq: false\n  - path: \"**\"\n    recipients: [b]\n",
        )
        .unwrap();
        assert!(c.require_pq);
        assert!(!c.rule_for("legacy/x.yaml").unwrap().require_pq);
        assert!(c.rule_for("apps/x.yaml").unwrap().require_pq);
        let c = Config::parse("rules:\n  - path: a\n    require_pq: true\n  - path: b\n").unwrap();
        assert!(c.rule_for("a").unwrap().require_pq);
        assert!(!c.rule_for("b").unwrap().require_pq);
        assert!(!c.require_pq);
    }

    #[test]
    fn unknown_scope_and_fields_are_errors() {
        assert!(Config::parse("rules:\n  - path: a\n    scope: wide\n").is_err());
        assert!(Config::parse("rulez: []\n").is_err());
    }
}
