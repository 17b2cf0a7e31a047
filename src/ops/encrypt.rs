use rayon::prelude::*;
use serde_json::Value;

use crate::core::binding::Scope;
use crate::core::error::{Error, ErrorKind, ResultExt};
use crate::core::keys::Recipient;
use crate::core::kubeyaml::Limits;
use crate::core::manifest::{self, DocKind};
use crate::core::rules::RuleMatch;
use crate::core::sealed::{self, SealedSecret};
use crate::core::secret::{self, PlainSecret, SCOPE_ANNOTATION};
use crate::core::yaml::{self, RawDocument};

/// How to seal the Secrets of one file.
#[derive(Debug, Clone, Default)]
pub struct SealSettings {
    /// Recipients for Secrets that have no previous sealing to follow.
    pub recipients: Vec<Recipient>,
    /// `--scope`: wins over the Secret's annotation.
    pub scope_override: Option<Scope>,
    /// The rule's scope, else strict.
    pub default_scope: Scope,
    /// `--namespace`, else the rule's `namespace:`: bound when a Secret has none.
    pub bind_namespace: Option<String>,
    /// When true (edit and set without -r/-R), a Secret that was sealed before keeps its
    /// recipient list and scope.
    pub follow_previous: bool,
    /// `require_pq` of the rule: classical recipients are refused (whether given, the rule's
    /// or a followed SealedSecret's).
    pub require_pq: bool,
}

/// What the caller says for every file of one invocation, before any rule: `-r`/`-R`,
/// `--scope` and `--namespace` on the command line. Rules fill in what it leaves open.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub recipients: Option<Vec<Recipient>>,
    pub scope: Option<Scope>,
    pub namespace: Option<String>,
}

impl Overrides {
    /// The namespace to bind when a manifest has none: the override, else the rule's.
    pub fn namespace(&self, rule: &RuleMatch) -> Option<String> {
        self.namespace.clone().or_else(|| rule.namespace.clone())
    }

    /// The recipients for new values: the override, else the rule's (none: sealing fails with
    /// [`ErrorKind::NoRecipients`] once there is something to seal).
    pub fn recipients(&self, rule: &RuleMatch) -> Option<Vec<Recipient>> {
        self.recipients.clone().or_else(|| rule.recipients.clone())
    }

    /// How to seal one file that `rule` governs. Sealed Secrets are followed (their recipients
    /// and scope kept) only when asked and no recipients were given.
    pub fn seal_settings(&self, rule: &RuleMatch, follow_previous: bool) -> SealSettings {
        SealSettings {
            recipients: self.recipients(rule).unwrap_or_default(),
            scope_override: self.scope,
            default_scope: rule.scope.unwrap_or_default(),
            bind_namespace: self.namespace(rule),
            follow_previous: follow_previous && self.recipients.is_none(),
            require_pq: rule.require_pq,
        }
    }
}

/// Earlier sealings of a file's Secrets (edit): values left unchanged keep their ciphertext.
#[derive(Default)]
pub struct Previous {
    pub entries: Vec<(SealedSecret, PlainSecret)>,
}

impl Previous {
    fn find(&self, s: &PlainSecret) -> Option<&(SealedSecret, PlainSecret)> {
        self.entries
            .iter()
            .find(|(sealed, _)| sealed.name == s.name && sealed.namespace == s.namespace)
    }
}

/// Seals every `v1 Secret` (also inside `kind: List`) that holds values. Other documents pass
/// through byte for byte. Returns `None` when nothing needed sealing.
pub fn encrypt(
    input: &[u8],
    settings: &SealSettings,
    previous: Option<&Previous>,
) -> Result<Option<String>, Error> {
    encrypt_report(input, settings, previous, &Limits::default()).map(|r| r.text)
}

/// What a rewriting command made of one file: the new text (`None`: nothing changed) and one
/// note per document it passed through without reading (not valid YAML, no `kind: Secret`).
#[derive(Debug, Default)]
pub struct Rewritten {
    pub text: Option<String>,
    pub notes: Vec<String>,
}

/// [`encrypt`] within `limits`, with notes. Documents that do not parse pass through with a
/// note unless their text declares `kind: Secret` (an error). Last, the judge
/// ([`crate::core::judge`]) reads the result as kubectl would: a plaintext Secret left in it
/// (a YAML 1.1 line break in a comment, an escaped `items`, ...) is an error, so nothing that
/// `encrypt` passes can reach the cluster unsealed.
pub fn encrypt_report(
    input: &[u8],
    settings: &SealSettings,
    previous: Option<&Previous>,
    limits: &Limits,
) -> Result<Rewritten, Error> {
    let (_, docs) = super::documents_within(input, limits)?;
    let numbered: Vec<_> = super::numbered(&docs).collect();
    let results: Vec<(Option<String>, Option<String>)> = numbered
        .par_iter()
        .map(|(n, doc)| encrypt_document(*n, doc, settings, previous).in_document(*n))
        .collect::<Result<_, _>>()?;
    let (rewritten, notes): (Vec<Option<String>>, Vec<Option<String>>) =
        results.into_iter().unzip();
    let notes = notes.into_iter().flatten().collect();
    if rewritten.iter().all(Option::is_none) {
        super::check_output(input, limits)?;
        return Ok(Rewritten { text: None, notes });
    }
    let text = super::reassemble(&docs, rewritten);
    super::check_output(text.as_bytes(), limits)?;
    Ok(Rewritten {
        text: Some(text),
        notes,
    })
}

/// The new text of one document, or a note when it was passed through unread.
fn encrypt_document(
    n: usize,
    doc: &RawDocument<'_>,
    settings: &SealSettings,
    previous: Option<&Previous>,
) -> Result<(Option<String>, Option<String>), Error> {
    match manifest::classify(doc) {
        Ok(kind) => encrypt_known(kind, doc, settings, previous).map(|t| (t, None)),
        Err(e) => super::unreadable(n, e, doc).map(|note| (None, Some(note))),
    }
}

fn encrypt_known(
    kind: DocKind,
    doc: &RawDocument<'_>,
    settings: &SealSettings,
    previous: Option<&Previous>,
) -> Result<Option<String>, Error> {
    let json = yaml::is_json(doc.text);
    match kind {
        DocKind::Secret => {
            let summary = secret::summarize(doc)?;
            if !summary.has_values {
                return Ok(None);
            }
            let secret = secret::parse_secret(doc).in_object(&summary.object_ref())?;
            let sealed = seal_secret(&secret, settings, previous)?;
            Ok(Some(sealed.render(json)))
        }
        DocKind::List => encrypt_list(doc, settings, previous, json),
        _ => Ok(None),
    }
}

/// True when a List value holds, at any depth, a Secret with values.
fn holds_plaintext(list: &Value) -> bool {
    list.get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|item| {
            let kind = manifest::kind_of(
                item.get("apiVersion").and_then(Value::as_str),
                item.get("kind").and_then(Value::as_str),
            );
            (kind == DocKind::Secret && secret::has_values(item))
                || (kind == DocKind::List && holds_plaintext(item))
        })
}

pub(crate) fn seal_secret(
    secret: &PlainSecret,
    settings: &SealSettings,
    previous: Option<&Previous>,
) -> Result<SealedSecret, Error> {
    let object = secret.object_ref();
    // What Kubernetes would refuse is refused before anything is sealed.
    secret::check_names(
        &secret.name,
        secret
            .namespace
            .as_deref()
            .or(settings.bind_namespace.as_deref()),
    )
    .in_object(&object)?;
    let prev = previous.and_then(|p| p.find(secret));
    let follow = settings.follow_previous.then_some(prev).flatten();
    let annotated = secret
        .annotations
        .get(SCOPE_ANNOTATION)
        .map(|s| s.parse::<Scope>())
        .transpose()
        .in_object(&object)?;
    let scope = settings
        .scope_override
        .or(annotated)
        .or(follow.map(|(s, _)| s.scope))
        .unwrap_or(settings.default_scope);
    let recipients: Vec<Recipient> = match follow {
        Some((s, _)) => s
            .recipients
            .iter()
            .map(|r| r.parse())
            .collect::<Result<_, _>>()
            .in_object(&object)?,
        None => settings.recipients.clone(),
    };
    let list = if follow.is_some() {
        "its spec.recipients"
    } else {
        "the recipient list"
    };
    crate::core::keys::check_kinds(&recipients, settings.require_pq, list).in_object(&object)?;
    // The scope lives in spec.scope; the annotation that chose it is consumed.
    let mut secret = secret.clone();
    secret.annotations.remove(SCOPE_ANNOTATION);
    SealedSecret::seal(
        &secret,
        &recipients,
        scope,
        settings.bind_namespace.as_deref(),
        prev.map(|(sealed, plain)| sealed::Previous { sealed, plain }),
    )
}

fn encrypt_list(
    doc: &RawDocument<'_>,
    settings: &SealSettings,
    previous: Option<&Previous>,
    json: bool,
) -> Result<Option<String>, Error> {
    let mut list = yaml::parse_list(doc)?;
    match seal_list_items(&mut list, doc, settings, previous) {
        Ok(true) => Ok(Some(if json {
            yaml::to_json(&list)
        } else {
            yaml::to_yaml(&list)
        })),
        Ok(false) => Ok(None),
        Err(e) => {
            // Items not reached yet still hold plaintext.
            super::wipe(&mut list);
            Err(e)
        }
    }
}

/// Seals the Secret items of a parsed List in place; true when one was sealed.
fn seal_list_items(
    list: &mut Value,
    doc: &RawDocument<'_>,
    settings: &SealSettings,
    previous: Option<&Previous>,
) -> Result<bool, Error> {
    let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) else {
        return Ok(false);
    };
    let mut changed = false;
    for (i, item) in items.iter_mut().enumerate() {
        let kind = manifest::kind_of(
            item.get("apiVersion").and_then(Value::as_str),
            item.get("kind").and_then(Value::as_str),
        );
        if kind == DocKind::List && holds_plaintext(item) {
            // kubectl applies a List inside a List; sealing one is not supported, and passing
            // it through would leave its Secrets in plaintext.
            return Err(Error::from(ErrorKind::Invalid(
                "a kind: List inside a List holds a Secret; flatten the lists".into(),
            ))
            .in_object(format!("List item {}", i + 1)));
        }
        if kind != DocKind::Secret || !secret::has_values(item) {
            continue;
        }
        // Re-read the item through the Secret parser so its checks and messages apply.
        let parsed = yaml::reparse_item(item, doc.first_line, secret::parse_secret)
            .in_object(&format!("List item {}", i + 1));
        super::wipe(item);
        let sealed = seal_secret(&parsed?, settings, previous)?;
        *item = sealed.to_value();
        changed = true;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::keys::Identity;

    fn recipient() -> Recipient {
        Identity::generate().to_recipient().unwrap()
    }

    #[test]
    fn overrides_win_over_the_rule_and_the_rule_fills_the_rest() {
        let (given, ruled) = (recipient(), recipient());
        let rule = RuleMatch {
            recipients: Some(vec![ruled.clone()]),
            scope: Some(Scope::Namespace),
            namespace: Some("dev".into()),
            ignored: false,
            require_pq: false,
        };
        let none = Overrides::default();
        let s = none.seal_settings(&rule, true);
        assert_eq!(s.recipients, [ruled]);
        assert_eq!(s.default_scope, Scope::Namespace);
        assert_eq!(s.scope_override, None);
        assert_eq!(s.bind_namespace.as_deref(), Some("dev"));
        assert!(s.follow_previous);

        let all = Overrides {
            recipients: Some(vec![given.clone()]),
            scope: Some(Scope::Cluster),
            namespace: Some("prod".into()),
        };
        let s = all.seal_settings(&rule, true);
        assert_eq!(s.recipients, [given]);
        assert_eq!(s.scope_override, Some(Scope::Cluster));
        assert_eq!(s.default_scope, Scope::Namespace);
        assert_eq!(s.bind_namespace.as_deref(), Some("prod"));
        assert!(
            !s.follow_previous,
            "given recipients are not followed away from"
        );
        assert!(!none.seal_settings(&rule, false).follow_previous);
    }

    #[test]
    fn without_a_rule_the_defaults_hold() {
        let s = Overrides::default().seal_settings(&RuleMatch::default(), false);
        assert!(s.recipients.is_empty());
        assert_eq!(s.default_scope, Scope::Strict);
        assert_eq!(s.bind_namespace, None);
    }
}
