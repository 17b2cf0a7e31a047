use crate::core::error::{Error, ErrorKind, ResultExt};
use crate::core::keys::{Identity, Recipient};
use crate::core::manifest::{self, DocKind};
use crate::core::seal;
use crate::core::sealed::SealedSecret;
use crate::core::secret;
use crate::core::yaml;

use super::encrypt::Previous;
use super::SealedList;

/// A SealedSecret found in a file: in document `index` (numbered `document` for messages),
/// either the document itself or item `list_item` (1-based) of a `kind: List`.
pub(crate) struct Found {
    index: usize,
    document: usize,
    list_item: Option<usize>,
    sealed: SealedSecret,
}

/// Every SealedSecret of a file, documents and List items, in order.
fn all_sealed(docs: &[yaml::RawDocument<'_>]) -> Result<Vec<Found>, Error> {
    let mut out = Vec::new();
    for (index, (n, doc)) in super::numbered(docs).enumerate() {
        match manifest::classify(doc).in_document(n)? {
            DocKind::SealedSecret => out.push(Found {
                index,
                document: n,
                list_item: None,
                sealed: SealedSecret::parse(doc).in_document(n)?,
            }),
            DocKind::List => {
                for (item, sealed) in SealedList::parse(doc).in_document(n)?.items {
                    out.push(Found {
                        index,
                        document: n,
                        list_item: Some(item),
                        sealed: sealed.in_document(n)?,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The (namespace, name) of every SealedSecret (documents and List items) a file holds.
pub fn sealed_names(
    input: &[u8],
) -> Result<std::collections::BTreeSet<(Option<String>, String)>, Error> {
    let (_, docs) = super::documents(input)?;
    Ok(all_sealed(&docs)?
        .into_iter()
        .map(|f| (f.sealed.namespace, f.sealed.name))
        .collect())
}

/// Finds the SealedSecret `target` (`name` or `namespace/name`), also inside a `kind: List`.
pub(crate) fn find_sealed(
    docs: &[yaml::RawDocument<'_>],
    target: &str,
    namespace: Option<&str>,
) -> Result<Found, Error> {
    let (ns, name) = match target.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (namespace, target),
    };
    let mut matching = all_sealed(docs)?
        .into_iter()
        .filter(|f| f.sealed.name == name && (ns.is_none() || f.sealed.namespace.as_deref() == ns));
    let found = matching
        .next()
        .ok_or_else(|| Error::from(ErrorKind::NoSuchObject(target.into())))?;
    if matching.next().is_some() {
        return Err(ErrorKind::AmbiguousObject(target.into()).into());
    }
    Ok(found)
}

impl Found {
    fn object(&self) -> String {
        match self.list_item {
            Some(item) => SealedList::object(item, Some(&self.sealed)),
            None => self.sealed.object_ref(),
        }
    }

    /// The file with this SealedSecret rewritten; every other byte as it was.
    fn write_back(&self, docs: &[yaml::RawDocument<'_>]) -> Result<String, Error> {
        let doc = &docs[self.index];
        let json = yaml::is_json(doc.text);
        let text = match self.list_item {
            None => self.sealed.render(json),
            Some(item) => {
                let mut list = SealedList::parse(doc).in_document(self.document)?;
                list.replace(item, self.sealed.to_value());
                list.render(json)
            }
        };
        let mut new = vec![None; docs.len()];
        new[self.index] = Some(text);
        Ok(super::reassemble(docs, new))
    }
}

/// Seals one value into an existing SealedSecret with public recipients only. Every other
/// value keeps its exact ciphertext.
///
/// `recipients`: `-r`/`-R` if given (then they must match the file's list unless this is the
/// only value), else the file's list, which must agree with `rule` when a rule applies.
#[allow(clippy::too_many_arguments)]
pub fn set_value(
    input: &[u8],
    target: &str,
    namespace: Option<&str>,
    key: &str,
    value: &[u8],
    recipients: Option<&[Recipient]>,
    rule: Option<&[Recipient]>,
) -> Result<String, Error> {
    let (_, docs) = super::documents(input)?;
    let mut found = find_sealed(&docs, target, namespace)?;
    let object = found.object();
    let n = found.document;
    let located = |e: ErrorKind| {
        Error::from(e)
            .in_document(n)
            .in_object(object.clone())
            .at_key(key)
    };
    let sealed = &mut found.sealed;
    if !secret::is_valid_key(key) {
        return Err(located(ErrorKind::InvalidKeyName));
    }
    let file_list: Vec<Recipient> = sealed
        .recipients
        .iter()
        .map(|r| r.parse())
        .collect::<Result<_, _>>()
        .map_err(located)?;
    let list = match recipients {
        Some(given) => {
            let others = sealed.encrypted_data.keys().any(|k| k != key);
            if others && !same_set(given, &file_list) {
                return Err(located(ErrorKind::RecipientsDifferFromFile));
            }
            given.to_vec()
        }
        None => {
            if let Some(rule) = rule {
                if !same_set(rule, &file_list) {
                    return Err(located(ErrorKind::RecipientsDifferFromRule {
                        found: join(&file_list),
                        expected: join(rule),
                    }));
                }
            }
            file_list
        }
    };
    let binding = sealed
        .binding_for(key, sealed.namespace.as_deref().or(namespace))
        .map_err(located)?;
    let ct = seal::seal_value(&list, &binding, value).map_err(located)?;
    sealed.recipients = list.iter().map(|r| r.to_string()).collect();
    sealed.encrypted_data.insert(key.to_string(), ct);
    found.write_back(&docs)
}

/// Removes one value; no key needed.
pub fn unset_value(
    input: &[u8],
    target: &str,
    namespace: Option<&str>,
    key: &str,
) -> Result<String, Error> {
    let (_, docs) = super::documents(input)?;
    let mut found = find_sealed(&docs, target, namespace)?;
    if found.sealed.encrypted_data.remove(key).is_none() {
        return Err(Error::from(ErrorKind::NoSuchKey)
            .in_document(found.document)
            .in_object(found.object())
            .at_key(key));
    }
    found.write_back(&docs)
}

/// Opens every SealedSecret of a file, for `edit` to keep unchanged ciphertexts.
pub fn previous_sealings(
    input: &[u8],
    identities: &[Identity],
    namespace: Option<&str>,
) -> Result<Previous, Error> {
    let (_, docs) = super::documents(input)?;
    let mut entries = Vec::new();
    for found in all_sealed(&docs)? {
        let plain = found
            .sealed
            .unseal(identities, namespace)
            .in_document(found.document)?;
        entries.push((found.sealed, plain));
    }
    Ok(Previous { entries })
}

pub fn same_set(a: &[Recipient], b: &[Recipient]) -> bool {
    let set = |l: &[Recipient]| {
        l.iter()
            .map(|r| r.to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    set(a) == set(b)
}

fn join(l: &[Recipient]) -> String {
    l.iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
