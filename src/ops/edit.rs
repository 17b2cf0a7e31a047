use crate::core::error::{Error, ErrorKind, ResultExt};
use crate::core::keys::{Identity, Recipient};
use crate::core::manifest::{self, DocKind};
use crate::core::seal;
use crate::core::sealed::SealedSecret;
use crate::core::secret;
use crate::core::yaml;

use super::encrypt::Previous;

/// Finds the SealedSecret `target` (`name` or `namespace/name`) and returns the index of its
/// document in `docs` and the parsed object.
pub fn find_sealed(
    docs: &[yaml::RawDocument<'_>],
    target: &str,
    namespace: Option<&str>,
) -> Result<(usize, usize, SealedSecret), Error> {
    let (ns, name) = match target.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (namespace, target),
    };
    let mut found = None;
    for (i, (n, doc)) in super::numbered(docs).enumerate() {
        if manifest::classify(doc).in_document(n)? != DocKind::SealedSecret {
            continue;
        }
        let sealed = SealedSecret::parse(doc).in_document(n)?;
        if sealed.name == name && (ns.is_none() || sealed.namespace.as_deref() == ns) {
            if found.is_some() {
                return Err(ErrorKind::AmbiguousObject(target.into()).into());
            }
            found = Some((i, n, sealed));
        }
    }
    found.ok_or_else(|| ErrorKind::NoSuchObject(target.into()).into())
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
    let (index, n, mut sealed) = find_sealed(&docs, target, namespace)?;
    let object = sealed.object_ref();
    let located = |e: ErrorKind| {
        Error::from(e)
            .in_document(n)
            .in_object(object.clone())
            .at_key(key)
    };
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
                return Err(located(ErrorKind::Invalid(
                    "the other values are sealed for the file's recipient list; run `gitops-seal rekey` with the new recipients first".into(),
                )));
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
    Ok(replace_document(&docs, index, &sealed))
}

/// Removes one value; no key needed.
pub fn unset_value(
    input: &[u8],
    target: &str,
    namespace: Option<&str>,
    key: &str,
) -> Result<String, Error> {
    let (_, docs) = super::documents(input)?;
    let (index, n, mut sealed) = find_sealed(&docs, target, namespace)?;
    if sealed.encrypted_data.remove(key).is_none() {
        return Err(Error::from(ErrorKind::NoSuchKey)
            .in_document(n)
            .in_object(sealed.object_ref())
            .at_key(key));
    }
    Ok(replace_document(&docs, index, &sealed))
}

/// Opens every SealedSecret of a file, for `edit` to keep unchanged ciphertexts.
pub fn previous_sealings(
    input: &[u8],
    identities: &[Identity],
    namespace: Option<&str>,
) -> Result<Previous, Error> {
    let (_, docs) = super::documents(input)?;
    let mut entries = Vec::new();
    for (n, doc) in super::numbered(&docs) {
        if manifest::classify(doc).in_document(n)? != DocKind::SealedSecret {
            continue;
        }
        let sealed = SealedSecret::parse(doc).in_document(n)?;
        let plain = sealed.unseal(identities, namespace).in_document(n)?;
        entries.push((sealed, plain));
    }
    Ok(Previous { entries })
}

fn replace_document(docs: &[yaml::RawDocument<'_>], index: usize, sealed: &SealedSecret) -> String {
    let mut new = vec![None; docs.len()];
    new[index] = Some(sealed.render(yaml::is_json(docs[index].text)));
    super::reassemble(docs, new)
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
