//! `gitops-seal keys usage`: for each sealed value in a file, which of the given identities
//! open it, offline: the answer to "may I delete this key?" before a cluster is asked.

use crate::core::error::{Error, Location};
use crate::core::kubeyaml::Limits;
use crate::core::manifest::{self, DocKind};
use crate::core::seal;
use crate::core::{Identity, SealedSecret};

/// One sealed value and the identities (positions in the list given) that open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueUse {
    /// Document, object and key (the file is the caller's).
    pub location: Location,
    /// Every identity that opens it, in the order given; empty when none does.
    pub opened_by: Vec<usize>,
}

/// What one file holds: its values, and what could not be read (located errors; the rest of
/// the file is still reported).
#[derive(Debug, Default)]
pub struct FileUse {
    pub values: Vec<ValueUse>,
    pub errors: Vec<Error>,
    /// Documents passed unread (a Helm template that does not parse).
    pub notes: Vec<String>,
}

/// Tries every identity on every sealed value of `input` (SealedSecrets and `kind: List`
/// documents of them). Only whether a value opens is asked: its plaintext is wiped at once.
pub fn key_usage(input: &[u8], identities: &[Identity], limits: &Limits) -> FileUse {
    let mut out = FileUse::default();
    let docs = match super::documents_within(input, limits) {
        Ok((_, docs)) => docs,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    for (n, doc) in super::numbered(&docs) {
        match manifest::classify(doc) {
            Err(e) => match super::unreadable(n, e, doc) {
                Ok(note) => out.notes.push(note),
                Err(e) => out.errors.push(e),
            },
            Ok(DocKind::SealedSecret) => match SealedSecret::parse(doc) {
                Ok(sealed) => values(&sealed, n, sealed.object_ref(), identities, &mut out),
                Err(e) => out.errors.push(e.in_document(n)),
            },
            Ok(DocKind::List) => match super::SealedList::parse(doc) {
                Err(e) => out.errors.push(e.in_document(n)),
                Ok(list) => {
                    for (item, sealed) in list.items {
                        match sealed {
                            Ok(sealed) => {
                                let object = super::SealedList::object(item, Some(&sealed));
                                values(&sealed, n, object, identities, &mut out);
                            }
                            Err(e) => out.errors.push(e.in_document(n)),
                        }
                    }
                }
            },
            Ok(_) => {}
        }
    }
    out
}

fn values(
    sealed: &SealedSecret,
    document: usize,
    object: String,
    identities: &[Identity],
    out: &mut FileUse,
) {
    for (key, ct) in &sealed.encrypted_data {
        let opened_by = identities
            .iter()
            .enumerate()
            .filter(|(_, id)| seal::open_value(std::slice::from_ref(*id), ct).is_ok())
            .map(|(i, _)| i)
            .collect();
        out.values.push(ValueUse {
            location: Location {
                document: Some(document),
                object: Some(object.clone()),
                key: Some(key.clone()),
                ..Location::default()
            },
            opened_by,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::binding::Scope;
    use crate::core::sealed::SealedSecret;
    use crate::core::PlainSecret;

    fn sealed_for(ids: &[&Identity], name: &str) -> String {
        let recipients: Vec<_> = ids.iter().map(|i| i.to_recipient().unwrap()).collect();
        let plain = PlainSecret {
            name: name.into(),
            namespace: Some("ns".into()),
            secret_type: "Opaque".into(),
            immutable: None,
            labels: Default::default(),
            annotations: Default::default(),
            data: [("k".to_string(), zeroize::Zeroizing::new(b"v".to_vec()))].into(),
        };
        SealedSecret::seal(&plain, &recipients, Scope::Strict, None, None)
            .unwrap()
            .render(false)
    }

    #[test]
    fn every_identity_that_opens_a_value_is_named_and_none_is_empty() {
        let (old, new, other) = (
            Identity::generate_x25519(),
            Identity::generate_x25519(),
            Identity::generate_x25519(),
        );
        let text = format!(
            "{}---\n{}---\n{}",
            sealed_for(&[&old], "a"),
            sealed_for(&[&old, &new], "b"),
            sealed_for(&[&other], "c")
        );
        let ids = [old, new];
        let r = key_usage(text.as_bytes(), &ids, &Limits::default());
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let got: Vec<(String, Vec<usize>)> = r
            .values
            .iter()
            .map(|v| (v.location.object.clone().unwrap(), v.opened_by.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("SealedSecret ns/a".to_string(), vec![0]),
                ("SealedSecret ns/b".to_string(), vec![0, 1]),
                ("SealedSecret ns/c".to_string(), vec![]),
            ]
        );
        assert_eq!(r.values[2].location.document, Some(3));
    }
}
