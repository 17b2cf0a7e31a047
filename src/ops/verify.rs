use std::collections::BTreeSet;

use crate::core::error::{Error, Location};
use crate::core::keys::{Identity, Recipient};
use crate::core::manifest::{self, DocKind};
use crate::core::seal;
use crate::core::sealed::SealedSecret;

/// What `verify` checks beyond well-formedness.
#[derive(Default)]
pub struct VerifyOptions<'a> {
    /// `--recipient`: every SealedSecret must list these, with one stanza per listed recipient.
    pub recipients: &'a [Recipient],
    /// With identities, every value must open and its binding must hold.
    pub identities: &'a [Identity],
    pub namespace: Option<&'a str>,
    /// The recipients the matching `.gitops-seal.yaml` rule names, if any.
    pub rule: Option<&'a [Recipient]>,
    /// Bounds on the file: over them, it is one finding.
    pub limits: crate::core::kubeyaml::Limits,
    /// `--require-pq`, or `require_pq` of the rule: a value with any classical stanza (X25519,
    /// ssh) is a finding.
    pub require_pq: bool,
}

/// One problem `verify` found; never holds a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub location: Location,
    pub message: String,
    /// What fixes it, for the caller to word (the CLI names its command).
    pub remedy: Option<Remedy>,
}

/// What fixes a [`Finding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remedy {
    /// Seal the file (a plaintext Secret).
    Seal,
    /// Re-seal the values for the listed recipients.
    Rekey,
    /// Re-seal the values for post-quantum recipients only.
    RekeyPq,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl From<Error> for Finding {
    fn from(e: Error) -> Self {
        Finding {
            location: *e.location,
            message: e.kind.to_string(),
            remedy: None,
        }
    }
}

/// Checks one file. Returns the findings (empty when all is well); an unreadable file is a
/// finding too, so one bad file does not hide the others.
pub fn verify(input: &[u8], opts: &VerifyOptions<'_>) -> Vec<Finding> {
    verify_report(input, opts).0
}

/// [`verify`], with one note per document passed unread: one that does not parse and does not
/// declare `kind: Secret` (a Helm template) is no finding.
pub fn verify_report(input: &[u8], opts: &VerifyOptions<'_>) -> (Vec<Finding>, Vec<String>) {
    let mut notes = Vec::new();
    let docs = match super::documents_within(input, &opts.limits) {
        Ok((_, docs)) => docs,
        Err(e) => return (vec![e.into()], notes),
    };
    // A document that does not parse is reported below with the parser's error; one that
    // parses but is no readable Secret (a template's `name: {{ ... }}`) is a plaintext finding.
    let unparsable: std::collections::HashSet<usize> = super::numbered(&docs)
        .filter(|(_, doc)| manifest::classify(doc).is_err())
        .map(|(n, _)| n)
        .collect();
    let mut findings: Vec<Finding> = super::scan_content_with(input, &opts.limits)
        .findings
        .into_iter()
        .filter(|f| !(f.unparsable && unparsable.contains(&f.document)))
        .map(|f| match f.detail {
            Some(detail) => Finding {
                location: Location {
                    document: Some(f.document),
                    ..Location::default()
                },
                message: detail,
                remedy: None,
            },
            None => Finding {
                location: Location {
                    document: Some(f.document),
                    object: Some(f.object),
                    ..Location::default()
                },
                message: "plaintext Secret".into(),
                remedy: Some(Remedy::Seal),
            },
        })
        .collect();
    for (n, doc) in super::numbered(&docs) {
        match manifest::classify(doc) {
            Err(e) => match super::unreadable(n, e, doc) {
                Ok(note) => notes.push(note),
                Err(e) => findings.push(e.into()),
            },
            Ok(DocKind::SealedSecret) => match SealedSecret::parse(doc) {
                Err(e) => findings.push(e.in_document(n).into()),
                Ok(sealed) => check_sealed(&sealed, opts, &mut |object, key, message, remedy| {
                    findings.push(Finding {
                        location: Location {
                            file: None,
                            document: Some(n),
                            object: Some(object),
                            key: key.map(str::to_string),
                            ..Location::default()
                        },
                        message,
                        remedy,
                    })
                }),
            },
            Ok(DocKind::List) => match super::SealedList::parse(doc) {
                Err(e) => findings.push(e.in_document(n).into()),
                Ok(list) => {
                    for (item, sealed) in list.items {
                        match sealed {
                            Err(e) => findings.push(e.in_document(n).into()),
                            Ok(sealed) => {
                                let object = super::SealedList::object(item, Some(&sealed));
                                check_sealed(&sealed, opts, &mut |_, key, message, remedy| {
                                    findings.push(Finding {
                                        location: Location {
                                            file: None,
                                            document: Some(n),
                                            object: Some(object.clone()),
                                            key: key.map(str::to_string),
                                            ..Location::default()
                                        },
                                        message,
                                        remedy,
                                    })
                                })
                            }
                        }
                    }
                }
            },
            Ok(_) => {}
        }
    }
    findings.sort_by_key(|f| f.location.document);
    (findings, notes)
}

/// Where [`check_sealed`] sends a problem: `(object, key, message, remedy)`.
type Report<'a> = dyn FnMut(String, Option<&str>, String, Option<Remedy>) + 'a;

fn check_sealed(sealed: &SealedSecret, opts: &VerifyOptions<'_>, report: &mut Report<'_>) {
    let object = sealed.object_ref();
    if let Some(denied) = crate::core::deny::default_list().first_denied(sealed) {
        report(object.clone(), None, denied.to_string(), None);
    }
    let listed: BTreeSet<&str> = sealed.recipients.iter().map(String::as_str).collect();
    for r in opts.recipients {
        if !listed.contains(r.to_string().as_str()) {
            report(
                object.clone(),
                None,
                format!("recipient {r} is not in spec.recipients"),
                None,
            );
        }
    }
    if let Some(rule) = opts.rule {
        let expected: BTreeSet<String> = rule.iter().map(|r| r.to_string()).collect();
        let found: BTreeSet<String> = listed.iter().map(|s| s.to_string()).collect();
        if expected != found {
            report(
                object.clone(),
                None,
                format!(
                    "spec.recipients differ from the rule for this path in .gitops-seal.yaml (missing: [{}], extra: [{}])",
                    expected.difference(&found).cloned().collect::<Vec<_>>().join(", "),
                    found.difference(&expected).cloned().collect::<Vec<_>>().join(", "),
                ),
                Some(Remedy::Rekey),
            );
        }
    }
    let expected_tags: Vec<&str> = {
        let mut t: Vec<&str> = sealed
            .recipients
            .iter()
            .filter_map(|r| r.parse::<Recipient>().ok())
            .map(|r| r.stanza_tag())
            .collect();
        t.sort_unstable();
        t
    };
    for (key, ct) in &sealed.encrypted_data {
        match seal::stanza_tags(ct) {
            Err(e) => report(object.clone(), Some(key), e.to_string(), None),
            Ok(mut tags) => {
                let classical: BTreeSet<&str> = tags
                    .iter()
                    .map(String::as_str)
                    .filter(|t| *t != crate::core::keys::PQ_TAG)
                    .collect();
                if opts.require_pq && !classical.is_empty() {
                    report(
                        object.clone(),
                        Some(key),
                        format!(
                            "value has classical stanza(s) ({}), and post-quantum is required: whoever holds a copy can open it once a large quantum computer exists",
                            classical.into_iter().collect::<Vec<_>>().join(", ")
                        ),
                        Some(Remedy::RekeyPq),
                    );
                }
                tags.sort_unstable();
                if tags != expected_tags {
                    report(
                        object.clone(),
                        Some(key),
                        format!(
                            "value is sealed for {} recipient(s), spec.recipients lists {}: it was sealed for another list",
                            tags.len(),
                            expected_tags.len()
                        ),
                        Some(Remedy::Rekey),
                    );
                }
            }
        }
    }
    if !opts.identities.is_empty() {
        if let Err(e) = sealed.unseal(opts.identities, opts.namespace) {
            let f: Finding = e.into();
            report(object, f.location.key.as_deref(), f.message, None);
        }
    }
}
