use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::core::binding::Scope;
use crate::core::error::{Error, ResultExt};
use crate::core::keys::{Identity, Recipient};
use crate::core::manifest::{self, DocKind};
use crate::core::sealed::SealedSecret;
use crate::core::secret::{self, SCOPE_ANNOTATION};
use crate::core::yaml::{self, RawDocument};

/// Turns every SealedSecret back into a Secret for people holding a key. A scope other than
/// strict is shown as the `gitops-seal.dev/scope` annotation, so encrypting the output again
/// gives the same scope. `namespace` binds SealedSecrets whose manifest has none.
pub fn decrypt(
    input: &[u8],
    identities: &[Identity],
    namespace: Option<&str>,
) -> Result<Zeroizing<String>, Error> {
    let (text, docs) = super::documents(input)?;
    let numbered: Vec<_> = super::numbered(&docs).collect();
    let opened: Vec<Option<Zeroizing<String>>> = numbered
        .par_iter()
        .map(|(n, doc)| decrypt_document(doc, identities, namespace).in_document(*n))
        .collect::<Result<_, _>>()?;
    let extra: usize = opened.iter().flatten().map(|s| s.len()).sum();
    let mut out = Zeroizing::new(String::with_capacity(text.len() + extra));
    for (doc, new) in docs.iter().zip(opened) {
        match new {
            Some(new) => {
                out.push_str(manifest::leading_trivia(doc.text));
                out.push_str(&new);
            }
            None => out.push_str(doc.text),
        }
    }
    Ok(out)
}

fn decrypt_document(
    doc: &RawDocument<'_>,
    identities: &[Identity],
    namespace: Option<&str>,
) -> Result<Option<Zeroizing<String>>, Error> {
    if manifest::classify(doc)? != DocKind::SealedSecret {
        return Ok(None);
    }
    let sealed = SealedSecret::parse(doc)?;
    let mut plain = sealed.unseal(identities, namespace)?;
    if sealed.scope != Scope::Strict {
        plain
            .annotations
            .insert(SCOPE_ANNOTATION.into(), sealed.scope.as_str().into());
    }
    Ok(Some(secret::render_secret(&plain, yaml::is_json(doc.text))))
}

/// Re-seals every value of every SealedSecret to `recipients` (needs a key to open them).
/// Bindings, scope and template stay as they are.
pub fn rekey(
    input: &[u8],
    identities: &[Identity],
    recipients: &[Recipient],
    namespace: Option<&str>,
) -> Result<Option<String>, Error> {
    let (_, docs) = super::documents(input)?;
    let numbered: Vec<_> = super::numbered(&docs).collect();
    let rewritten: Vec<Option<String>> = numbered
        .par_iter()
        .map(|(n, doc)| {
            let run = || -> Result<Option<String>, Error> {
                if manifest::classify(doc)? != DocKind::SealedSecret {
                    return Ok(None);
                }
                let sealed = SealedSecret::parse(doc)?;
                let plain = sealed.unseal(identities, namespace)?;
                let mut resealed = SealedSecret::seal(
                    &plain,
                    recipients,
                    sealed.scope,
                    sealed.namespace.as_deref().or(namespace),
                    None,
                )?;
                resealed.labels = sealed.labels.clone();
                resealed.annotations = sealed.annotations.clone();
                Ok(Some(resealed.render(yaml::is_json(doc.text))))
            };
            run().in_document(*n)
        })
        .collect::<Result<_, _>>()?;
    if rewritten.iter().all(Option::is_none) {
        return Ok(None);
    }
    Ok(Some(super::reassemble(&docs, rewritten)))
}
