//! `import`: Bitnami SealedSecrets and SOPS-encrypted Secrets become gitops-seal SealedSecrets,
//! sealed as `encrypt` seals (the same recipients, scope resolution and binding). Bytes in,
//! text out; the first error, located by document, object and key, and nothing else.

use serde_json::Value;

use crate::core::binding::Scope;
use crate::core::deny;
use crate::core::error::{Error, ErrorKind, ResultExt};
use crate::core::import::bitnami::{self, BitnamiSealedSecret, ControllerKey};
use crate::core::import::sops;
use crate::core::keys::Identity;
use crate::core::kubeyaml::Limits;
use crate::core::manifest::{self, DocKind};
use crate::core::names::OWNER_REFERENCE_ANNOTATION;
use crate::core::sealed::SealedSecret;
use crate::core::secret;
use crate::core::yaml::{self, RawDocument};

use super::encrypt::{seal_secret, SealSettings};

/// One object imported: where it was, what it became. No values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// 1-based document of the file.
    pub document: usize,
    /// `List item N`, when the object was an item of a `kind: List`.
    pub item: Option<usize>,
    /// The object read (`bitnami.com SealedSecret ns/name`, `Secret ns/name`).
    pub from: String,
    /// The SealedSecret written (`SealedSecret ns/name`).
    pub to: String,
    /// The scope the source was sealed for (Bitnami's names), when it had one.
    pub from_scope: Option<&'static str>,
    pub scope: Scope,
    pub recipients: usize,
    /// The keys sealed, sorted.
    pub keys: Vec<String>,
    /// True when the source document was replaced, false when ours was written beside it.
    pub replaced: bool,
}

/// A document or List item rewritten without an object imported from it: a SOPS Secret with
/// no values and nothing encrypted (its `sops` block goes), or, with `replace`, a Bitnami
/// SealedSecret imported earlier (removed). No values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrittenDocument {
    pub document: usize,
    pub item: Option<usize>,
    pub object: String,
    /// What happens to it, in words.
    pub what: &'static str,
}

/// What `import` made of one file: the new text (`None`: nothing to import), the objects it
/// imported, and one note per document it passed through unread.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub text: Option<String>,
    pub objects: Vec<Imported>,
    /// Documents (or List items) rewritten with nothing imported into them.
    pub rewritten: Vec<RewrittenDocument>,
    pub notes: Vec<String>,
}

/// How to import Bitnami SealedSecrets.
pub struct SealedSecretsImport<'a> {
    /// The controller's private keys.
    pub keys: &'a [ControllerKey],
    /// How to seal (recipients, scope, namespace), as `encrypt` has it for the file.
    pub settings: &'a SealSettings,
    /// Remove the Bitnami documents (default: ours is written beside each, so both exist while
    /// the cluster moves over).
    pub replace: bool,
}

/// Imports every `bitnami.com/v1alpha1 SealedSecret` of a file (also inside `kind: List`).
/// Every value of every object must open, or nothing is returned but the error. Other
/// documents pass through byte for byte.
pub fn import_sealed_secrets(
    input: &[u8],
    opts: &SealedSecretsImport<'_>,
    limits: &Limits,
) -> Result<ImportReport, Error> {
    let (_, docs) = super::documents_within(input, limits)?;
    let done = imported_already(&docs);
    let mut rewritten = Vec::with_capacity(docs.len());
    let mut report = ImportReport::default();
    for (n, doc) in super::numbered(&docs) {
        let new = match manifest::classify(doc) {
            Ok(DocKind::List) => import_list(n, doc, opts, &done, &mut report).in_document(n)?,
            Ok(DocKind::Other) if is_bitnami_doc(doc) => {
                import_document(n, doc, opts, &done, &mut report).in_document(n)?
            }
            Ok(_) => None,
            Err(e) => {
                report.notes.push(super::unreadable(n, e, doc)?);
                None
            }
        };
        rewritten.push(new);
    }
    if rewritten.iter().any(Option::is_some) {
        report.text = Some(super::reassemble(&docs, rewritten));
    }
    Ok(report)
}

/// What `replace` does to a Bitnami SealedSecret whose gitops-seal counterpart is in the file.
const ALREADY_IMPORTED: &str = "imported before; removed";

/// `(namespace, name)` of an object.
type Name = (Option<String>, String);

fn name_of(v: &Value) -> Option<Name> {
    let meta = v.get("metadata")?;
    let name = meta.get("name")?.as_str()?.to_string();
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    Some((namespace, name))
}

/// The gitops-seal SealedSecrets a file already holds (an earlier import): their Bitnami
/// counterparts are not imported again, and `--replace` just removes those.
fn imported_already(docs: &[RawDocument<'_>]) -> std::collections::HashSet<Name> {
    let mut out = std::collections::HashSet::new();
    for doc in docs {
        match manifest::classify(doc) {
            Ok(DocKind::SealedSecret) => {
                if let Some(n) = yaml::parse::<Value>(doc).ok().as_ref().and_then(name_of) {
                    out.insert(n);
                }
            }
            Ok(DocKind::List) => {
                if let Ok(list) = yaml::parse_list(doc) {
                    let items = list.get("items").and_then(Value::as_array);
                    for item in items.into_iter().flatten() {
                        let kind = manifest::kind_of(
                            item.get("apiVersion").and_then(Value::as_str),
                            item.get("kind").and_then(Value::as_str),
                        );
                        if kind == DocKind::SealedSecret {
                            out.extend(name_of(item));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn is_bitnami_doc(doc: &RawDocument<'_>) -> bool {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "apiVersion")]
        api_version: Option<String>,
        kind: Option<String>,
    }
    yaml::parse::<Head>(doc)
        .is_ok_and(|h| bitnami::is_bitnami(h.api_version.as_deref(), h.kind.as_deref()))
}

fn is_bitnami_value(v: &Value) -> bool {
    bitnami::is_bitnami(
        v.get("apiVersion").and_then(Value::as_str),
        v.get("kind").and_then(Value::as_str),
    )
}

/// Opens one Bitnami SealedSecret and seals it for gitops-seal.
fn convert(b: &BitnamiSealedSecret, opts: &SealedSecretsImport<'_>) -> Result<SealedSecret, Error> {
    let plain = b.open(opts.keys, opts.settings.bind_namespace.as_deref())?;
    let mut sealed = seal_secret(&plain, opts.settings, None)?;
    drop(plain);
    let (labels, mut annotations) = b.carried_metadata();
    if b.skips_owner_references() {
        annotations.insert(OWNER_REFERENCE_ANNOTATION.into(), "false".into());
    }
    sealed.labels = labels;
    sealed.annotations = annotations;
    // A Secret the controller would refuse to make is refused now, before the move starts.
    deny::default_list().refuse(&sealed)?;
    Ok(sealed)
}

fn record(
    document: usize,
    item: Option<usize>,
    b: &BitnamiSealedSecret,
    sealed: &SealedSecret,
    replaced: bool,
) -> Imported {
    let from_scope = match b.scope {
        Scope::Strict => "strict",
        Scope::Namespace => "namespace-wide",
        Scope::Cluster => "cluster-wide",
    };
    Imported {
        document,
        item,
        from: b.object_ref(),
        to: sealed.object_ref(),
        from_scope: Some(from_scope),
        scope: sealed.scope,
        recipients: sealed.recipients.len(),
        keys: sealed.encrypted_data.keys().cloned().collect(),
        replaced,
    }
}

/// The new text of a document holding one Bitnami SealedSecret: ours alone (`replace`), or the
/// Bitnami one unchanged followed by ours. A JSON document cannot be followed by a `---`
/// document (kubectl reads a file that starts with `{` as JSON only), so there both become the
/// items of a `v1 List`. One whose gitops-seal counterpart is in the file already is left as it
/// is, or with `replace` removed.
fn import_document(
    n: usize,
    doc: &RawDocument<'_>,
    opts: &SealedSecretsImport<'_>,
    done: &std::collections::HashSet<Name>,
    report: &mut ImportReport,
) -> Result<Option<String>, Error> {
    let b = BitnamiSealedSecret::parse(doc)?;
    if done.contains(&(b.namespace.clone(), b.name.clone())) {
        if opts.replace {
            report.rewritten.push(RewrittenDocument {
                document: n,
                item: None,
                object: b.object_ref(),
                what: ALREADY_IMPORTED,
            });
        }
        return Ok(opts.replace.then(String::new));
    }
    let sealed = convert(&b, opts).in_object(&b.object_ref())?;
    report
        .objects
        .push(record(n, None, &b, &sealed, opts.replace));
    let json = yaml::is_json(doc.text);
    if opts.replace {
        return Ok(Some(sealed.render(json)));
    }
    if json {
        let original = yaml::parse_as_kubernetes(doc)?;
        let list = serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [original, sealed.to_value()],
        });
        return Ok(Some(yaml::to_json(&list)));
    }
    let lead = manifest::leading_trivia(doc.text).len();
    let trail = manifest::trailing_trivia(doc.text).len();
    let mut out = doc.text[lead..doc.text.len() - trail].to_string();
    manifest::ensure_trailing_newline(&mut out);
    out.push_str("---\n");
    out.push_str(&sealed.render(false));
    Ok(Some(out))
}

/// A `kind: List`: each Bitnami item is followed by ours (or replaced by it); the list is
/// re-emitted whole, as `encrypt` re-emits lists.
fn import_list(
    n: usize,
    doc: &RawDocument<'_>,
    opts: &SealedSecretsImport<'_>,
    done: &std::collections::HashSet<Name>,
    report: &mut ImportReport,
) -> Result<Option<String>, Error> {
    let mut list = yaml::parse_list(doc)?;
    let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) else {
        return Ok(None);
    };
    let pending = |v: &Value| is_bitnami_value(v) && name_of(v).is_none_or(|n| !done.contains(&n));
    let removable = |v: &Value| is_bitnami_value(v) && !pending(v);
    let work = items.iter().any(pending) || (opts.replace && items.iter().any(removable));
    if !work {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(items.len() * 2);
    for (i, item) in std::mem::take(items).into_iter().enumerate() {
        if removable(&item) {
            if opts.replace {
                let object = name_of(&item).map_or_else(
                    || "bitnami.com SealedSecret".to_string(),
                    |(ns, name)| {
                        secret::object_ref("bitnami.com SealedSecret", ns.as_deref(), &name)
                    },
                );
                report.rewritten.push(RewrittenDocument {
                    document: n,
                    item: Some(i + 1),
                    object,
                    what: ALREADY_IMPORTED,
                });
            } else {
                out.push(item);
            }
            continue;
        }
        if !is_bitnami_value(&item) {
            out.push(item);
            continue;
        }
        let at = format!("List item {}", i + 1);
        let b = BitnamiSealedSecret::from_value(&item).in_object(&at)?;
        let sealed = convert(&b, opts).in_object(&format!("{at}: {}", b.object_ref()))?;
        report
            .objects
            .push(record(n, Some(i + 1), &b, &sealed, opts.replace));
        if !opts.replace {
            out.push(item);
        }
        out.push(sealed.to_value());
    }
    *items = out;
    let json = yaml::is_json(doc.text);
    Ok(Some(if json {
        yaml::to_json(&list)
    } else {
        yaml::to_yaml(&list)
    }))
}

/// Parsed documents that held plaintext: every string is wiped when they go.
struct Wiped(Vec<Value>);

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(yaml::wipe);
    }
}

/// `Kind ns/name` of a parsed document.
fn object_of(v: &Value) -> String {
    let meta = v.get("metadata");
    let get = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("object");
    secret::object_ref(kind, get("namespace"), get("name").unwrap_or("<unnamed>"))
}

/// Imports a SOPS file sealed for age: its data key opened with `identities`, every value
/// opened and the file's MAC checked before anything is used, and every document — each must
/// be a `v1 Secret` — sealed as `encrypt` seals. The SOPS file's MAC covers all of it, so ours
/// replaces it whole. A file without SOPS metadata has nothing to import (`text: None`).
pub fn import_sops(
    input: &[u8],
    identities: &[Identity],
    settings: &SealSettings,
    limits: &Limits,
) -> Result<ImportReport, Error> {
    let (text, docs) = super::documents_within(input, limits)?;
    let numbered: Vec<(usize, &RawDocument<'_>)> = super::numbered(&docs)
        .filter(|(_, d)| !d.is_empty)
        .collect();
    let Some(mut values) = parse_sops_documents(text, &numbered)? else {
        return Ok(ImportReport::default());
    };
    let (first_n, first) = numbered[0];
    let meta = sops::Metadata::parse(&values.0[0]).in_document(first_n)?;
    check_one_sops_block(&numbered, &values.0)?;
    for v in values.0.iter_mut() {
        if let Some(m) = v.as_object_mut() {
            m.shift_remove(sops::METADATA_KEY);
        }
    }
    let key = meta.data_key(identities)?;
    // Empty documents are not numbered, so the n-th parsed document is document n.
    let opened = sops::decrypt_documents(&mut values.0, &meta, &key)?;
    drop(key);
    let json = yaml::is_json(first.text);
    let mut out = String::new();
    let mut report = ImportReport::default();
    for (((n, _), value), opened) in numbered.iter().zip(values.0.iter()).zip(&opened) {
        import_sops_document(*n, value, opened, json, settings, &mut out, &mut report)?;
    }
    // The judge's last word, as for encrypt: kubectl must read no plaintext Secret in it.
    super::check_output(out.as_bytes(), limits)?;
    report.text = Some(out);
    Ok(report)
}

/// Step 1: the non-empty documents, parsed, when the first carries SOPS metadata; `None`
/// (nothing to import) when it does not — an error then if a later document does.
fn parse_sops_documents(
    text: &str,
    numbered: &[(usize, &RawDocument<'_>)],
) -> Result<Option<Wiped>, Error> {
    let Some((first_n, first)) = numbered.first() else {
        return Ok(None);
    };
    let mut values = Wiped(Vec::with_capacity(numbered.len()));
    match yaml::parse_core_schema(first) {
        Ok(v) if sops::has_metadata(&v) => values.0.push(v),
        Ok(_) | Err(_) => {
            if text.contains("\nsops:") || text.contains("\"sops\"") {
                for (n, doc) in &numbered[1..] {
                    if yaml::parse_core_schema(doc).is_ok_and(|v| sops::has_metadata(&v)) {
                        return Err(Error::from(ErrorKind::SopsUnsupported(format!(
                            "document {n} carries SOPS metadata but document {first_n} does not"
                        ))));
                    }
                }
            }
            return Ok(None);
        }
    }
    for (n, doc) in &numbered[1..] {
        values.0.push(yaml::parse_core_schema(doc).in_document(*n)?);
    }
    Ok(Some(values))
}

/// Step 2: sops writes one block into every document of a file: another block (files joined
/// with `---`) or none (a document added by hand) is named here, not reported as tampering.
/// The first document's MAC is the one checked (as sops reads the file); the rest of the
/// block must be the same.
fn check_one_sops_block(
    numbered: &[(usize, &RawDocument<'_>)],
    values: &[Value],
) -> Result<(), Error> {
    let first_n = numbered[0].0;
    let without_mac = |v: &Value| {
        let mut block = v.get(sops::METADATA_KEY).cloned();
        if let Some(m) = block.as_mut().and_then(Value::as_object_mut) {
            m.shift_remove("mac");
        }
        block
    };
    let block = without_mac(&values[0]);
    for ((n, _), v) in numbered.iter().zip(values).skip(1) {
        if without_mac(v) != block {
            return Err(Error::from(ErrorKind::SopsUnsupported(format!(
                "document {n} does not carry the SOPS metadata of document {first_n}: each SOPS file is one sops encryption (split joined files first)"
            )))
            .in_document(*n));
        }
    }
    Ok(())
}

/// Step 3, for one opened document `n` (`opened`: the paths sops had encrypted in it): it must
/// be a Secret with no encrypted label or annotation; it is sealed, or written as it is when
/// it holds no values, onto `out`, and recorded in `report`.
fn import_sops_document(
    n: usize,
    value: &Value,
    opened: &[Vec<String>],
    json: bool,
    settings: &SealSettings,
    out: &mut String,
    report: &mut ImportReport,
) -> Result<(), Error> {
    let object = object_of(value);
    let kind = manifest::kind_of(
        value.get("apiVersion").and_then(Value::as_str),
        value.get("kind").and_then(Value::as_str),
    );
    if kind != DocKind::Secret {
        return Err(Error::from(ErrorKind::ImportNotSecret {
            object: object.clone(),
        })
        .in_document(n));
    }
    refuse_encrypted_metadata(n, &object, opened)?;
    if !out.is_empty() {
        out.push_str("---\n");
    }
    if !secret::has_values(value) {
        // Nothing to seal: written as it is only when sops encrypted nothing in it (a
        // service-account-token placeholder), else it would be written in plaintext.
        if let Some(path) = opened.first() {
            return Err(Error::from(ErrorKind::SopsNothingToSeal {
                path: path.join("."),
            })
            .in_object(object)
            .in_document(n));
        }
        report.rewritten.push(RewrittenDocument {
            document: n,
            item: None,
            object,
            what: "no values to seal; rewritten without its sops metadata",
        });
        out.push_str(&if json {
            yaml::to_json(value)
        } else {
            yaml::to_yaml(value)
        });
        return Ok(());
    }
    let plain = yaml::reparse_item(value, 1, secret::parse_secret)
        .in_object(&object)
        .in_document(n)?;
    let sealed = seal_secret(&plain, settings, None).in_document(n)?;
    drop(plain);
    out.push_str(&sealed.render(json));
    report.objects.push(Imported {
        document: n,
        item: None,
        from: object,
        to: sealed.object_ref(),
        from_scope: None,
        scope: sealed.scope,
        recipients: sealed.recipients.len(),
        keys: sealed.encrypted_data.keys().cloned().collect(),
        replaced: true,
    });
    Ok(())
}

/// Labels and annotations are carried in clear: one that sops encrypted (among the `opened`
/// paths of document `n`) is refused.
fn refuse_encrypted_metadata(n: usize, object: &str, opened: &[Vec<String>]) -> Result<(), Error> {
    for path in opened {
        if let [meta, field, key, ..] = &path[..] {
            if meta == "metadata" && (field == "labels" || field == "annotations") {
                let field = if field == "labels" {
                    "label"
                } else {
                    "annotation"
                };
                return Err(Error::from(ErrorKind::SopsEncryptedMetadata { field })
                    .at_key(key)
                    .in_object(object)
                    .in_document(n));
            }
        }
    }
    Ok(())
}
