//! The Git merge driver's file-level logic: documents are matched by kind, namespace and
//! name; SealedSecrets merge key by key ([`crate::core::merge`]); other documents merge as
//! text through the caller's text merge (Git's own). Anything the driver cannot judge is
//! handed back whole to the text merge, so nothing is ever lost.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

use crate::core::error::Error;
use crate::core::manifest::{self, DocKind};
use crate::core::merge;
use crate::core::sealed::SealedSecret;
use crate::core::yaml::{self, RawDocument};

/// What the driver made of three versions of a file.
#[derive(Debug)]
pub enum FileMerge {
    /// Merged by documents. `conflicts` lists one line per conflict (no values).
    Merged {
        text: String,
        conflicts: Vec<String>,
        /// Some value must be sealed again for the merged recipients (see
        /// [`Conflict::reseal`](crate::core::merge::Conflict::reseal)).
        reseal: bool,
    },
    /// Not something to merge by documents: merge the whole file as text.
    WholeFileText,
}

/// A text merge: `(base, ours, theirs) -> (merged text, had conflicts)`.
pub type TextMerge<'a> = dyn FnMut(&str, &str, &str) -> Result<(String, bool), Error> + 'a;

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<HeadMeta>,
}

#[derive(Deserialize)]
struct HeadMeta {
    name: Option<String>,
    namespace: Option<String>,
}

type Identity = (String, String, String);

struct Doc<'a> {
    raw: RawDocument<'a>,
    id: Option<Identity>,
    sealed: bool,
}

/// Splits a file into documents keyed by (kind, namespace, name). `None` when a document has
/// no identity or one repeats: the file is then merged as text.
fn parse_file(input: &[u8]) -> Option<Vec<Doc<'_>>> {
    if input.iter().all(|b| b.is_ascii_whitespace()) {
        return Some(Vec::new());
    }
    let text = std::str::from_utf8(input).ok()?;
    let mut seen = std::collections::HashSet::new();
    let mut docs = Vec::new();
    for raw in yaml::split_documents(text) {
        if raw.is_empty {
            docs.push(Doc {
                raw,
                id: None,
                sealed: false,
            });
            continue;
        }
        let head: Head = yaml::parse(&raw).ok()?;
        let meta = head.metadata?;
        let id = (
            head.kind.clone()?,
            meta.namespace.unwrap_or_default(),
            meta.name?,
        );
        if !seen.insert(id.clone()) {
            return None;
        }
        let sealed = manifest::kind_of(head.api_version.as_deref(), head.kind.as_deref())
            == DocKind::SealedSecret;
        docs.push(Doc {
            raw,
            id: Some(id),
            sealed,
        });
    }
    Some(docs)
}

fn describe(id: &Identity) -> String {
    if id.1.is_empty() {
        format!("{} {}", id.0, id.2)
    } else {
        format!("{} {}/{}", id.0, id.1, id.2)
    }
}

fn markers(out: &mut String, ours: &str, theirs: &str, size: usize) {
    let (lt, eq, gt) = ("<".repeat(size), "=".repeat(size), ">".repeat(size));
    out.push_str(&format!("{lt} ours\n"));
    out.push_str(ours);
    manifest::ensure_trailing_newline(out);
    out.push_str(&format!("{eq}\n"));
    out.push_str(theirs);
    manifest::ensure_trailing_newline(out);
    out.push_str(&format!("{gt} theirs\n"));
}

fn body(doc: &RawDocument<'_>) -> String {
    doc.text[manifest::leading_trivia(doc.text).len()..].to_string()
}

/// Merges three versions of a manifest file.
pub fn merge_files(
    base: &[u8],
    ours: &[u8],
    theirs: &[u8],
    marker_size: usize,
    text_merge: &mut TextMerge<'_>,
) -> Result<FileMerge, Error> {
    let (Some(b), Some(o), Some(t)) = (parse_file(base), parse_file(ours), parse_file(theirs))
    else {
        return Ok(FileMerge::WholeFileText);
    };
    if ![&b, &o, &t]
        .iter()
        .any(|docs| docs.iter().any(|d| d.sealed))
    {
        return Ok(FileMerge::WholeFileText);
    }
    let index = |docs: &[Doc<'_>]| -> BTreeMap<Identity, usize> {
        docs.iter()
            .enumerate()
            .filter_map(|(i, d)| d.id.clone().map(|id| (id, i)))
            .collect()
    };
    let (bi, oi, ti) = (index(&b), index(&o), index(&t));
    let mut out = String::new();
    let mut conflicts = Vec::new();
    let mut reseal = false;
    let emit = |out: &mut String, text: &str| {
        if !out.is_empty() {
            manifest::ensure_trailing_newline(out);
            if !text.trim_start().starts_with("---") {
                out.push_str("---\n");
            }
        }
        out.push_str(text);
    };
    for doc in &o {
        let Some(id) = &doc.id else {
            emit(&mut out, doc.raw.text);
            continue;
        };
        let base_doc = bi.get(id).map(|&i| &b[i]);
        let their_doc = ti.get(id).map(|&i| &t[i]);
        match (base_doc, their_doc) {
            // Deleted on their side.
            (Some(bd), None) => {
                if bd.raw.text != doc.raw.text {
                    conflicts.push(format!(
                        "{}: changed on our side, deleted on theirs",
                        describe(id)
                    ));
                    let mut s = manifest::leading_trivia(doc.raw.text).to_string();
                    markers(&mut s, &body(&doc.raw), "", marker_size);
                    emit(&mut out, &s);
                }
            }
            (bd, Some(td)) => {
                let merged = merge_document(
                    id,
                    bd,
                    doc,
                    td,
                    marker_size,
                    text_merge,
                    &mut conflicts,
                    &mut reseal,
                )?;
                emit(&mut out, &merged);
            }
            (None, None) => emit(&mut out, doc.raw.text),
        }
    }
    // Documents only their side has: added there, or deleted on ours.
    for doc in &t {
        let Some(id) = &doc.id else { continue };
        if oi.contains_key(id) {
            continue;
        }
        match bi.get(id).map(|&i| &b[i]) {
            None => emit(&mut out, doc.raw.text),
            Some(bd) if bd.raw.text == doc.raw.text => {}
            Some(_) => {
                conflicts.push(format!(
                    "{}: deleted on our side, changed on theirs",
                    describe(id)
                ));
                let mut s = String::new();
                markers(&mut s, "", &body(&doc.raw), marker_size);
                emit(&mut out, &s);
            }
        }
    }
    manifest::ensure_trailing_newline(&mut out);
    Ok(FileMerge::Merged {
        reseal,
        text: out,
        conflicts,
    })
}

/// One piece of comments around a document (`part` picks it), merged: a side that changed
/// it wins; both changed, Git's text merge decides (with markers on a conflict).
fn merge_trivia(
    part: fn(&str) -> &str,
    (base, ours, theirs): (Option<&Doc<'_>>, &Doc<'_>, &Doc<'_>),
    text_merge: &mut TextMerge<'_>,
    on_conflict: &mut dyn FnMut(),
) -> Result<String, Error> {
    let b = base.map_or("", |d| part(d.raw.text));
    let (o, t) = (part(ours.raw.text), part(theirs.raw.text));
    if o == t || t == b {
        return Ok(o.to_string());
    }
    if o == b {
        return Ok(t.to_string());
    }
    let (text, conflicted) = text_merge(b, o, t)?;
    if conflicted {
        on_conflict();
    }
    Ok(text)
}

#[allow(clippy::too_many_arguments)] // the document, its sides, and where to report
fn merge_document(
    id: &Identity,
    base: Option<&Doc<'_>>,
    ours: &Doc<'_>,
    theirs: &Doc<'_>,
    marker_size: usize,
    text_merge: &mut TextMerge<'_>,
    conflicts: &mut Vec<String>,
    reseal: &mut bool,
) -> Result<String, Error> {
    let base_text = base.map_or("", |d| d.raw.text);
    if ours.raw.text == theirs.raw.text || theirs.raw.text == base_text {
        return Ok(ours.raw.text.to_string());
    }
    if ours.raw.text == base_text {
        return Ok(theirs.raw.text.to_string());
    }
    let parsed = (
        base.filter(|d| d.sealed)
            .and_then(|d| SealedSecret::parse(&d.raw).ok()),
        ours.sealed
            .then(|| SealedSecret::parse(&ours.raw).ok())
            .flatten(),
        theirs
            .sealed
            .then(|| SealedSecret::parse(&theirs.raw).ok())
            .flatten(),
    );
    let (Some(bs), Some(os), Some(ts)) = parsed else {
        let (text, conflicted) = text_merge(base_text, ours.raw.text, theirs.raw.text)?;
        if conflicted {
            conflicts.push(format!("{}: conflicting text changes", describe(id)));
        }
        return Ok(text);
    };
    let merged = merge::merge(&bs, &os, &ts);
    let json = yaml::is_json(ours.raw.text);
    // Comments around the document merge as text of their own.
    let leading = merge_trivia(
        manifest::leading_trivia,
        (base, ours, theirs),
        text_merge,
        &mut || conflicts.push(format!("{}: comments changed on both sides", describe(id))),
    )?;
    let trailing = merge_trivia(
        manifest::trailing_trivia,
        (base, ours, theirs),
        text_merge,
        &mut || conflicts.push(format!("{}: comments changed on both sides", describe(id))),
    )?;
    let rendered = |sealed: &SealedSecret, json: bool| {
        manifest::with_line_endings_of(ours.raw.text, sealed.render(json))
    };
    let mut out = leading;
    if merged.conflicts.is_empty() {
        out.push_str(&rendered(&merged.sealed, json));
        out.push_str(&trailing);
        return Ok(out);
    }
    for c in &merged.conflicts {
        *reseal |= c.reseal;
        conflicts.push(match &c.key {
            Some(k) => format!("{}: key {k:?}: {}", describe(id), c.reason),
            None => format!("{}: {}", describe(id), c.reason),
        });
    }
    let only_values = merged.conflicts.iter().all(|c| c.value_clash);
    if only_values && !json {
        // Markers around just the conflicting keys' lines.
        let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
        let mut text = merged.sealed.render(false);
        for c in &merged.conflicts {
            let k = c.key.as_ref().expect("value conflicts have keys");
            let mut key = String::new();
            yaml::write_str_scalar(&mut key, k, 4);
            let ours_line = format!("    {key}: {}\n", b64(&os.encrypted_data[k]));
            let theirs_line = format!("    {key}: {}\n", b64(&ts.encrypted_data[k]));
            let mut block = String::new();
            markers(&mut block, &ours_line, &theirs_line, marker_size);
            text = text.replacen(&ours_line, &block, 1);
        }
        out.push_str(&manifest::with_line_endings_of(ours.raw.text, text));
        out.push_str(&trailing);
    } else {
        markers(&mut out, &body(&ours.raw), &body(&theirs.raw), marker_size);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::binding::Scope;
    use crate::core::error::ErrorKind;
    use crate::core::sealed::Template;

    fn sealed(data: &[(&str, &str)]) -> String {
        SealedSecret {
            name: "db".into(),
            namespace: Some("prod".into()),
            labels: Default::default(),
            annotations: Default::default(),
            scope: Scope::Strict,
            recipients: vec![recipient().into()],
            encrypted_data: data
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            template: Template {
                secret_type: "Opaque".into(),
                ..Template::default()
            },
        }
        .render(false)
    }

    /// One fixed, valid recipient (parse checks the list; values are never opened here).
    fn recipient() -> &'static str {
        static R: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        R.get_or_init(|| {
            crate::core::Identity::generate()
                .to_recipient()
                .unwrap()
                .to_string()
        })
    }

    const CONFIG: &str =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: \"1\"}\n";

    /// A text merge that must not be called.
    fn no_text_merge(_: &str, _: &str, _: &str) -> Result<(String, bool), Error> {
        panic!("the text merge was called")
    }

    fn b64(v: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(v)
    }

    #[test]
    fn files_without_a_sealed_secret_or_without_identities_merge_as_text() {
        let c = CONFIG.as_bytes();
        assert!(matches!(
            merge_files(c, c, c, 7, &mut no_text_merge).unwrap(),
            FileMerge::WholeFileText
        ));
        let nameless = format!(
            "{}---\nkind: ConfigMap\ndata: {{}}\n",
            sealed(&[("a", "A")])
        );
        let n = nameless.as_bytes();
        assert!(matches!(
            merge_files(n, n, n, 7, &mut no_text_merge).unwrap(),
            FileMerge::WholeFileText
        ));
        assert!(matches!(
            merge_files(b"\xff", n, n, 7, &mut no_text_merge).unwrap(),
            FileMerge::WholeFileText
        ));
    }

    #[test]
    fn sealed_secrets_merge_key_by_key_and_other_documents_pass() {
        let base = format!("{CONFIG}---\n{}", sealed(&[("a", "A"), ("b", "B")]));
        let ours = format!("{CONFIG}---\n{}", sealed(&[("a", "A2"), ("b", "B")]));
        let theirs = format!("{CONFIG}---\n{}", sealed(&[("a", "A"), ("b", "B2")]));
        let FileMerge::Merged {
            text, conflicts, ..
        } = merge_files(
            base.as_bytes(),
            ours.as_bytes(),
            theirs.as_bytes(),
            7,
            &mut no_text_merge,
        )
        .unwrap()
        else {
            panic!("not merged by documents")
        };
        assert_eq!(conflicts, Vec::<String>::new());
        assert_eq!(
            text,
            format!("{CONFIG}---\n{}", sealed(&[("a", "A2"), ("b", "B2")]))
        );
    }

    #[test]
    fn a_value_clash_gets_markers_around_its_line_only() {
        let base = sealed(&[("a", "A"), ("b", "B")]);
        let ours = sealed(&[("a", "ours"), ("b", "B")]);
        let theirs = sealed(&[("a", "theirs"), ("b", "B")]);
        let FileMerge::Merged {
            text, conflicts, ..
        } = merge_files(
            base.as_bytes(),
            ours.as_bytes(),
            theirs.as_bytes(),
            3,
            &mut no_text_merge,
        )
        .unwrap()
        else {
            panic!("not merged by documents")
        };
        assert_eq!(
            conflicts,
            ["SealedSecret prod/db: key \"a\": changed differently on both sides"]
        );
        let block = format!(
            "<<< ours\n    a: {}\n===\n    a: {}\n>>> theirs\n    b: {}\n",
            b64("ours"),
            b64("theirs"),
            b64("B")
        );
        assert!(text.contains(&block), "{text}");
    }

    #[test]
    fn a_document_changed_on_one_side_and_deleted_on_the_other_conflicts() {
        let secret = sealed(&[("a", "A")]);
        let base = format!("{CONFIG}---\n{secret}");
        let ours = format!("{CONFIG}---\n{}", sealed(&[("a", "A2")]));
        let theirs = CONFIG.to_string();
        let FileMerge::Merged {
            text, conflicts, ..
        } = merge_files(
            base.as_bytes(),
            ours.as_bytes(),
            theirs.as_bytes(),
            7,
            &mut no_text_merge,
        )
        .unwrap()
        else {
            panic!("not merged by documents")
        };
        assert_eq!(
            conflicts,
            ["SealedSecret prod/db: changed on our side, deleted on theirs"]
        );
        assert!(text.contains("<<<<<<< ours\n") && text.ends_with("=======\n>>>>>>> theirs\n"));
    }

    #[test]
    fn other_documents_changed_on_both_sides_go_through_the_text_merge_and_its_errors_too() {
        let secret = sealed(&[("a", "A")]);
        let doc = |v: &str| format!("{}---\n{secret}", CONFIG.replace("\"1\"", v));
        let (base, ours, theirs) = (doc("\"1\""), doc("\"2\""), doc("\"3\""));
        let mut calls = 0;
        let mut conflicted = |b: &str, o: &str, t: &str| {
            calls += 1;
            assert!(b.contains("\"1\"") && o.contains("\"2\"") && t.contains("\"3\""));
            Ok(("MERGED\n".to_string(), true))
        };
        let FileMerge::Merged {
            text, conflicts, ..
        } = merge_files(
            base.as_bytes(),
            ours.as_bytes(),
            theirs.as_bytes(),
            7,
            &mut conflicted,
        )
        .unwrap()
        else {
            panic!("not merged by documents")
        };
        assert_eq!(calls, 1);
        assert_eq!(conflicts, ["ConfigMap cfg: conflicting text changes"]);
        assert!(text.starts_with("MERGED\n---\n"), "{text}");
        let mut failing = |_: &str, _: &str, _: &str| -> Result<(String, bool), Error> {
            Err(std::io::Error::other("git is missing").into())
        };
        let e = merge_files(
            base.as_bytes(),
            ours.as_bytes(),
            theirs.as_bytes(),
            7,
            &mut failing,
        )
        .unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Io(_)));
    }
}
