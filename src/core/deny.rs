//! The template deny list: labels and annotations no Secret made from a SealedSecret may carry.
//! The controller's own keys, and Secret-replication annotations, which would copy the unsealed
//! Secret to places its binding does not allow. The controller refuses them (InvalidSpec);
//! `decrypt` refuses them and `verify` reports them.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::core::error::{Error, ErrorKind};
use crate::core::sealed::SealedSecret;

/// Defined beside the error that carries it, so that `error` depends on nothing in the core.
pub use crate::core::error::Denied;

/// Template labels and annotations refused by default. The controller's `--template-deny GLOB`
/// adds to these.
pub const DEFAULT_TEMPLATE_DENY: &[&str] = &[
    "gitops-seal.dev/*",
    "reflector.v1.k8s.emberstack.com/*",
    "replicator.v1.mittwald.de/*",
    "kubed.appscode.com/sync",
];

/// The compiled deny list.
#[derive(Clone, Debug)]
pub struct DenyList {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Default for DenyList {
    /// [`DEFAULT_TEMPLATE_DENY`] alone.
    fn default() -> Self {
        DenyList::new(&[]).expect("the default deny list compiles")
    }
}

/// [`DEFAULT_TEMPLATE_DENY`], compiled once.
pub fn default_list() -> &'static DenyList {
    static LIST: std::sync::OnceLock<DenyList> = std::sync::OnceLock::new();
    LIST.get_or_init(DenyList::default)
}

impl DenyList {
    /// The default list plus `extra` globs (`*` matches `/` too: a key is one string).
    pub fn new(extra: &[String]) -> Result<Self, globset::Error> {
        let patterns: Vec<String> = DEFAULT_TEMPLATE_DENY
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().cloned())
            .collect();
        let mut b = GlobSetBuilder::new();
        for p in &patterns {
            b.add(Glob::new(p)?);
        }
        Ok(DenyList {
            set: b.build()?,
            patterns,
        })
    }

    /// The first denied key of the template: labels first, then annotations, each in key order.
    pub fn first_denied(&self, sealed: &SealedSecret) -> Option<Denied> {
        for (field, map) in [
            ("labels", &sealed.template.labels),
            ("annotations", &sealed.template.annotations),
        ] {
            for key in map.keys() {
                if let Some(&i) = self.set.matches(key).first() {
                    return Some(Denied {
                        field,
                        key: key.clone(),
                        pattern: self.patterns[i].clone(),
                    });
                }
            }
        }
        None
    }

    /// [`DenyList::first_denied`] as an error, located at the SealedSecret.
    pub fn refuse(&self, sealed: &SealedSecret) -> Result<(), Error> {
        match self.first_denied(sealed) {
            Some(denied) => {
                Err(Error::from(ErrorKind::DeniedTemplateKey(denied))
                    .in_object(sealed.object_ref()))
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_list_matches_whole_keys() {
        let deny = DenyList::default();
        let hit = |k: &str| {
            deny.set
                .matches(k)
                .first()
                .map(|&i| deny.patterns[i].clone())
        };
        assert_eq!(
            hit("gitops-seal.dev/scope").as_deref(),
            Some("gitops-seal.dev/*")
        );
        assert_eq!(
            hit("reflector.v1.k8s.emberstack.com/reflection-auto-enabled").as_deref(),
            Some("reflector.v1.k8s.emberstack.com/*")
        );
        assert_eq!(
            hit("kubed.appscode.com/sync").as_deref(),
            Some("kubed.appscode.com/sync")
        );
        assert_eq!(hit("kubed.appscode.com/other"), None);
        assert_eq!(hit("app.kubernetes.io/name"), None);
        assert_eq!(hit("x.gitops-seal.dev/y"), None);
    }
}
