use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::core::binding::Scope;
use crate::core::deny;
use serde_json::Value;

use crate::core::error::{Error, ErrorKind, ResultExt};
use crate::core::keys::{Identity, Recipient};
use crate::core::kubeyaml::Limits;
use crate::core::manifest::{self, DocKind};
use crate::core::sealed::SealedSecret;
use crate::core::secret::{self, PlainSecret, SCOPE_ANNOTATION};
use crate::core::yaml::{self, RawDocument};

use super::SealedList;

/// Turns every SealedSecret back into a Secret for people holding a key. A scope other than
/// strict is shown as the `gitops-seal.dev/scope` annotation, so encrypting the output again
/// gives the same scope. `namespace` binds SealedSecrets whose manifest has none.
pub fn decrypt(
    input: &[u8],
    identities: &[Identity],
    namespace: Option<&str>,
) -> Result<Zeroizing<String>, Error> {
    decrypt_report(input, identities, namespace, &Limits::default()).map(|(text, _)| text)
}

/// [`decrypt`] within `limits`, with one note per document passed through unread (not valid
/// YAML, no `kind: Secret`; one that declares it is an error).
pub fn decrypt_report(
    input: &[u8],
    identities: &[Identity],
    namespace: Option<&str>,
    limits: &Limits,
) -> Result<(Zeroizing<String>, Vec<String>), Error> {
    let (_, docs) = super::documents_within(input, limits)?;
    let numbered: Vec<_> = super::numbered(&docs).collect();
    let results: Vec<(Option<Zeroizing<String>>, Option<String>)> = numbered
        .par_iter()
        .map(|(n, doc)| match manifest::classify(doc) {
            Ok(kind) => decrypt_document(kind, doc, identities, namespace)
                .in_document(*n)
                .map(|t| (t, None)),
            Err(e) => super::unreadable(*n, e, doc).map(|note| (None, Some(note))),
        })
        .collect::<Result<_, _>>()?;
    let (opened, notes): (Vec<_>, Vec<_>) = results.into_iter().unzip();
    // Sized exactly: no reallocation leaves an unwiped copy of a value behind.
    Ok((
        Zeroizing::new(super::reassemble(&docs, opened)),
        notes.into_iter().flatten().collect(),
    ))
}

fn decrypt_document(
    kind: DocKind,
    doc: &RawDocument<'_>,
    identities: &[Identity],
    namespace: Option<&str>,
) -> Result<Option<Zeroizing<String>>, Error> {
    match kind {
        DocKind::SealedSecret => {
            let plain = open(&SealedSecret::parse(doc)?, identities, namespace)?;
            Ok(Some(secret::render_secret(&plain, yaml::is_json(doc.text))))
        }
        DocKind::List => decrypt_list(doc, identities, namespace),
        _ => Ok(None),
    }
}

fn open(
    sealed: &SealedSecret,
    identities: &[Identity],
    namespace: Option<&str>,
) -> Result<PlainSecret, Error> {
    // A Secret the controller would refuse to make is not made here either, nor one the API
    // server would refuse.
    crate::core::secret::check_names(&sealed.name, sealed.namespace.as_deref().or(namespace))
        .map_err(|e| Error::from(e).in_object(sealed.object_ref()))?;
    deny::default_list().refuse(sealed)?;
    let mut plain = sealed.unseal(identities, namespace)?;
    // The bound scope, and only it, is shown (SealedSecret::parse refuses another).
    plain.annotations.remove(SCOPE_ANNOTATION);
    if sealed.scope != Scope::Strict {
        plain
            .annotations
            .insert(SCOPE_ANNOTATION.into(), sealed.scope.as_str().into());
    }
    Ok(plain)
}

/// Opens the SealedSecret items of a `kind: List` (what `encrypt` made of its Secrets). The
/// list is re-emitted whole, as `encrypt` emits it.
fn decrypt_list(
    doc: &RawDocument<'_>,
    identities: &[Identity],
    namespace: Option<&str>,
) -> Result<Option<Zeroizing<String>>, Error> {
    let mut list = SealedList::parse(doc)?;
    if list.items.is_empty() {
        return Ok(None);
    }
    let items = std::mem::take(&mut list.items);
    let mut failure = None;
    for (n, sealed) in items {
        let opened = sealed
            .and_then(|sealed| open(&sealed, identities, namespace))
            .map(|plain| secret::render_secret(&plain, true))
            .and_then(|json| {
                serde_json::from_str::<Value>(&json)
                    .map_err(|e| ErrorKind::Invalid(e.to_string()).into())
            });
        match opened {
            Ok(value) => list.replace(n, value),
            Err(e) => {
                failure = Some(e.in_object(SealedList::object(n, None)));
                break;
            }
        }
    }
    let out = match failure {
        Some(e) => Err(e),
        None => Ok(Some(Zeroizing::new(list.render(yaml::is_json(doc.text))))),
    };
    // Opened values sit in plain JSON strings: overwrite them before they are dropped.
    super::wipe(&mut list.list);
    out
}

/// Re-seals every value of every SealedSecret to `recipients` (needs a key to open them).
/// Bindings, scope and template stay as they are.
pub fn rekey(
    input: &[u8],
    identities: &[Identity],
    recipients: &[Recipient],
    namespace: Option<&str>,
) -> Result<Option<String>, Error> {
    rekey_report(input, identities, recipients, namespace, &Limits::default()).map(|r| r.text)
}

/// [`rekey`] within `limits`, with one note per document passed through unread.
pub fn rekey_report(
    input: &[u8],
    identities: &[Identity],
    recipients: &[Recipient],
    namespace: Option<&str>,
    limits: &Limits,
) -> Result<super::Rewritten, Error> {
    let (_, docs) = super::documents_within(input, limits)?;
    let numbered: Vec<_> = super::numbered(&docs).collect();
    let notes = std::sync::Mutex::new(Vec::new());
    let rewritten: Vec<Option<String>> = numbered
        .par_iter()
        .map(|(n, doc)| {
            let reseal = |sealed: &SealedSecret| -> Result<SealedSecret, Error> {
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
                Ok(resealed)
            };
            let run = || -> Result<Option<String>, Error> {
                let json = yaml::is_json(doc.text);
                let kind = match manifest::classify(doc) {
                    Ok(kind) => kind,
                    Err(e) => {
                        let note = super::unreadable(*n, e, doc)?;
                        notes.lock().expect("not poisoned").push((*n, note));
                        return Ok(None);
                    }
                };
                match kind {
                    DocKind::SealedSecret => {
                        Ok(Some(reseal(&SealedSecret::parse(doc)?)?.render(json)))
                    }
                    DocKind::List => {
                        let mut list = SealedList::parse(doc)?;
                        if list.items.is_empty() {
                            return Ok(None);
                        }
                        for (n, sealed) in std::mem::take(&mut list.items) {
                            let resealed = sealed
                                .and_then(|s| reseal(&s))
                                .map_err(|e| e.in_object(SealedList::object(n, None)))?;
                            list.replace(n, resealed.to_value());
                        }
                        Ok(Some(list.render(json)))
                    }
                    _ => Ok(None),
                }
            };
            run().in_document(*n)
        })
        .collect::<Result<_, _>>()?;
    let mut notes = notes.into_inner().expect("not poisoned");
    notes.sort();
    let notes = notes.into_iter().map(|(_, note)| note).collect();
    if rewritten.iter().all(Option::is_none) {
        return Ok(super::Rewritten { text: None, notes });
    }
    Ok(super::Rewritten {
        text: Some(super::reassemble(&docs, rewritten)),
        notes,
    })
}
