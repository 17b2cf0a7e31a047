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

/// One value to seal into an existing SealedSecret: what [`set_value`] does.
#[derive(Debug, Clone, Copy)]
pub struct SetValue<'a> {
    /// The SealedSecret: `name` or `namespace/name`.
    pub target: &'a str,
    /// Picks among SealedSecrets of the same name, and binds when the manifest has none.
    pub namespace: Option<&'a str>,
    pub key: &'a str,
    pub value: &'a [u8],
    /// Recipients given on purpose (`-r`/`-R`): they must match the file's list unless this is
    /// the only value.
    pub recipients: Option<&'a [Recipient]>,
    /// The recipients of the matching `.gitops-seal.yaml` rule: without `recipients`, the
    /// file's list must agree with them.
    pub rule: Option<&'a [Recipient]>,
    /// `require_pq` of the matching rule: a classical recipient is refused.
    pub require_pq: bool,
}

/// Seals one value into an existing SealedSecret with public recipients only. Every other
/// value keeps its exact ciphertext.
pub fn set_value(input: &[u8], request: &SetValue<'_>) -> Result<String, Error> {
    let SetValue {
        target,
        namespace,
        key,
        value,
        recipients,
        rule,
        require_pq,
    } = *request;
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
    let source = if recipients.is_some() {
        "the recipient list"
    } else {
        "its spec.recipients"
    };
    crate::core::keys::check_kinds(&list, require_pq, source).map_err(located)?;
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

/// Before an edit: without recipients given on purpose, every SealedSecret of the file must
/// be sealed for the rule's recipients (when a rule applies), or a recipient slipped into the
/// file would receive every future value.
pub fn check_rule_recipients(previous: &Previous, rule: Option<&[Recipient]>) -> Result<(), Error> {
    let Some(rule) = rule else { return Ok(()) };
    for (sealed, _) in &previous.entries {
        let listed: Vec<Recipient> = sealed
            .recipients
            .iter()
            .filter_map(|r| r.parse().ok())
            .collect();
        if !same_set(rule, &listed) {
            return Err(Error::from(ErrorKind::RecipientsDifferFromRule {
                found: sealed.recipients.join(", "),
                expected: join(rule),
            })
            .in_object(sealed.object_ref()));
        }
    }
    Ok(())
}

/// After an edit, on the text about to be written: every Secret that was sealed must come out
/// sealed under the same name (`encrypt` seals only what is still a v1 Secret: one whose
/// apiVersion, kind or name the edit changed would be written in plaintext), and no plaintext
/// Secret may remain.
pub fn check_resealed(previous: &Previous, output: &[u8]) -> Result<(), Error> {
    let after = sealed_names(output).unwrap_or_default();
    let missing = previous
        .entries
        .iter()
        .map(|(s, _)| (s.namespace.as_deref(), s.name.as_str()))
        .find(|(ns, name)| !after.contains(&(ns.map(str::to_string), name.to_string())));
    if let Some((namespace, name)) = missing {
        return Err(ErrorKind::NoLongerSealed {
            object: secret::object_ref("Secret", namespace, name),
        }
        .into());
    }
    if !super::scan_content(output).findings.is_empty() {
        return Err(ErrorKind::StillPlaintext.into());
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{encrypt, SealSettings};

    const SECRET: &str =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: prod}\nstringData: {password: hunter2}\n";

    fn sealed_for(id: &Identity) -> String {
        let settings = SealSettings {
            recipients: vec![id.to_recipient().unwrap()],
            ..SealSettings::default()
        };
        encrypt(SECRET.as_bytes(), &settings, None)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn an_edit_keeps_to_the_rule_s_recipients() {
        let id = Identity::generate();
        let text = sealed_for(&id);
        let previous = previous_sealings(text.as_bytes(), std::slice::from_ref(&id), None).unwrap();
        let mine = [id.to_recipient().unwrap()];
        assert!(check_rule_recipients(&previous, None).is_ok());
        assert!(check_rule_recipients(&previous, Some(&mine)).is_ok());
        let other = [Identity::generate().to_recipient().unwrap()];
        let e = check_rule_recipients(&previous, Some(&other)).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::RecipientsDifferFromRule { .. }));
        assert_eq!(e.location.object.as_deref(), Some("SealedSecret prod/db"));
        assert_eq!(e.reason(), "KeyError");
    }

    #[test]
    fn an_edit_must_leave_every_sealed_secret_sealed_under_its_name() {
        let id = Identity::generate();
        let text = sealed_for(&id);
        let previous = previous_sealings(text.as_bytes(), std::slice::from_ref(&id), None).unwrap();
        assert!(check_resealed(&previous, text.as_bytes()).is_ok());
        let renamed = text.replace("name: db", "name: db2");
        let e = check_resealed(&previous, renamed.as_bytes()).unwrap_err();
        assert!(
            matches!(&e.kind, ErrorKind::NoLongerSealed { object } if object == "Secret prod/db")
        );
        let plaintext_too = format!("{text}---\n{}", SECRET.replace("name: db", "name: other"));
        let e = check_resealed(&previous, plaintext_too.as_bytes()).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::StillPlaintext));
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn set_value_seals_for_the_file_s_list_and_checks_the_rule() {
        let id = Identity::generate();
        let text = sealed_for(&id);
        let request = SetValue {
            target: "prod/db",
            namespace: None,
            key: "user",
            value: b"admin",
            recipients: None,
            rule: None,
            require_pq: false,
        };
        let out = set_value(text.as_bytes(), &request).unwrap();
        let previous = previous_sealings(out.as_bytes(), std::slice::from_ref(&id), None).unwrap();
        assert_eq!(&previous.entries[0].1.data["user"][..], b"admin");
        let other = [Identity::generate().to_recipient().unwrap()];
        let e = set_value(
            text.as_bytes(),
            &SetValue {
                rule: Some(&other),
                require_pq: false,
                ..request
            },
        )
        .unwrap_err();
        assert!(matches!(e.kind, ErrorKind::RecipientsDifferFromRule { .. }));
        assert_eq!(e.location.key.as_deref(), Some("user"));
        let e = set_value(
            text.as_bytes(),
            &SetValue {
                recipients: Some(&other),
                ..request
            },
        )
        .unwrap_err();
        assert!(matches!(e.kind, ErrorKind::RecipientsDifferFromFile));
    }
}
