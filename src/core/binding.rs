//! The binding: which Secret a sealed value belongs to.
//!
//! The sealed plaintext of every value is one line of JSON (the binding) and a newline,
//! followed by the raw value bytes. Unsealing checks the binding against where the ciphertext
//! sits, so a ciphertext copied to another key, Secret or namespace than its scope allows is
//! refused with [`ErrorKind::ScopeMismatch`] instead of producing a wrong Secret.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::error::ErrorKind;

/// The version written into every binding; bump it only with a migration path.
pub const FORMAT_VERSION: u32 = 1;

/// How far a sealed value may travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Bound to namespace, name and key.
    #[default]
    Strict,
    /// Bound to namespace and key: the Secret may be renamed.
    Namespace,
    /// Bound to the key only: the Secret may be renamed and moved to any namespace.
    Cluster,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Strict => "strict",
            Scope::Namespace => "namespace",
            Scope::Cluster => "cluster",
        }
    }
    pub fn binds_namespace(self) -> bool {
        matches!(self, Scope::Strict | Scope::Namespace)
    }
    pub fn binds_name(self) -> bool {
        matches!(self, Scope::Strict)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ErrorKind;
    fn from_str(s: &str) -> Result<Self, ErrorKind> {
        match s {
            "strict" => Ok(Scope::Strict),
            "namespace" => Ok(Scope::Namespace),
            "cluster" => Ok(Scope::Cluster),
            other => Err(ErrorKind::UnknownScope(other.to_string())),
        }
    }
}

/// What one sealed value is bound to. Serialised as the first line of the sealed plaintext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// Format version (always [`FORMAT_VERSION`] today).
    #[serde(rename = "gitops-seal")]
    pub version: u32,
    pub scope: Scope,
    /// The Secret's `type`: a value sealed for an Opaque Secret cannot become a token.
    #[serde(rename = "type")]
    pub secret_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub key: String,
}

impl Binding {
    /// The binding for `key` of Secret `namespace/name` under `scope`. Fields the scope does
    /// not bind are left out; a scope that binds the namespace needs one.
    pub fn new(
        scope: Scope,
        secret_type: &str,
        namespace: Option<&str>,
        name: &str,
        key: &str,
    ) -> Result<Self, ErrorKind> {
        let namespace = if scope.binds_namespace() {
            Some(
                namespace
                    .filter(|ns| !ns.is_empty())
                    .ok_or(ErrorKind::MissingNamespace {
                        scope: scope.as_str(),
                    })?
                    .to_string(),
            )
        } else {
            None
        };
        Ok(Binding {
            version: FORMAT_VERSION,
            scope,
            secret_type: secret_type.to_string(),
            namespace,
            name: scope.binds_name().then(|| name.to_string()),
            key: key.to_string(),
        })
    }

    /// The header line, without its newline. JSON escapes every control character, so it is
    /// always exactly one line.
    pub fn header_line(&self) -> String {
        serde_json::to_string(self).expect("a binding always serialises")
    }

    /// Splits a sealed plaintext into its binding and the value bytes.
    pub fn split_plaintext(plaintext: &[u8]) -> Result<(Binding, &[u8]), ErrorKind> {
        let newline = plaintext
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(ErrorKind::MissingBinding)?;
        let binding: Binding =
            serde_json::from_slice(&plaintext[..newline]).map_err(|_| ErrorKind::MissingBinding)?;
        if binding.version != FORMAT_VERSION {
            return Err(ErrorKind::Invalid(format!(
                "value uses sealed format version {}, this gitops-seal reads version {FORMAT_VERSION}",
                binding.version
            )));
        }
        Ok((binding, &plaintext[newline + 1..]))
    }

    /// Checks that a value sealed with binding `self` may sit where `expected` says it sits.
    pub fn check(&self, expected: &Binding) -> Result<(), ErrorKind> {
        let scope = expected.scope.as_str();
        let mismatch = |field: &'static str, sealed: &str, found: &str| ErrorKind::ScopeMismatch {
            field,
            sealed: sealed.to_string(),
            found: found.to_string(),
            scope,
        };
        if self.scope != expected.scope {
            return Err(mismatch(
                "scope",
                self.scope.as_str(),
                expected.scope.as_str(),
            ));
        }
        if self.key != expected.key {
            return Err(mismatch("key", &self.key, &expected.key));
        }
        if self.namespace != expected.namespace {
            return Err(mismatch(
                "namespace",
                self.namespace.as_deref().unwrap_or(""),
                expected.namespace.as_deref().unwrap_or(""),
            ));
        }
        if self.name != expected.name {
            return Err(mismatch(
                "name",
                self.name.as_deref().unwrap_or(""),
                expected.name.as_deref().unwrap_or(""),
            ));
        }
        if self.secret_type != expected.secret_type {
            return Err(mismatch("type", &self.secret_type, &expected.secret_type));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_one_line_of_json_in_a_fixed_order() {
        let b = Binding::new(Scope::Strict, "Opaque", Some("prod"), "db", "password").unwrap();
        assert_eq!(
            b.header_line(),
            r#"{"gitops-seal":1,"scope":"strict","type":"Opaque","namespace":"prod","name":"db","key":"password"}"#
        );
        let c = Binding::new(Scope::Cluster, "a\nb", None, "db", "k").unwrap();
        assert_eq!(
            c.header_line(),
            r#"{"gitops-seal":1,"scope":"cluster","type":"a\nb","key":"k"}"#
        );
    }

    #[test]
    fn namespace_scope_leaves_out_the_name() {
        let b = Binding::new(Scope::Namespace, "Opaque", Some("ns"), "db", "k").unwrap();
        assert_eq!(b.name, None);
        assert_eq!(b.namespace.as_deref(), Some("ns"));
        assert!(Binding::new(Scope::Namespace, "Opaque", None, "db", "k").is_err());
    }
}
