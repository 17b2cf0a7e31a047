//! Whole-file operations over the core: text in, text out, no I/O. Each returns the new text
//! (or `None` when nothing changed) or the first error, located by document, object and key;
//! callers add the file and write nothing on error.

mod decrypt;
mod edit;
mod encrypt;
pub mod exposure;
mod import;
mod key_usage;
mod merge;
mod scan;
mod textconv;
mod verify;

pub use decrypt::{decrypt, decrypt_report, rekey, rekey_report};
pub use edit::{
    check_resealed, check_rule_recipients, previous_sealings, same_set as same_recipients,
    sealed_names, set_value, unset_value, SetValue,
};
pub use encrypt::{encrypt, encrypt_report, Overrides, Previous, Rewritten, SealSettings};
pub use import::{
    import_sealed_secrets, import_sops, ImportReport, Imported, RewrittenDocument,
    SealedSecretsImport,
};
pub use key_usage::{key_usage, FileUse, ValueUse};
pub use merge::{merge_files, FileMerge, TextMerge};
pub use scan::{
    scan_content, scan_content_with, scan_file, scan_size, PlaintextFinding, ScanReport,
};
pub use textconv::textconv;
pub use verify::{verify, verify_report, Finding, Remedy, VerifyOptions};

use crate::core::error::{Error, ErrorKind};
use crate::core::kubeyaml::Limits;
use crate::core::yaml::{self, RawDocument};

/// Checks the input is non-empty UTF-8 and splits it into documents, within the default
/// [`Limits`].
pub fn documents(input: &[u8]) -> Result<(&str, Vec<RawDocument<'_>>), Error> {
    documents_within(input, &Limits::default())
}

/// [`documents`] within `limits`: a file over the size limit, or with more documents than
/// allowed, is refused before anything is split or parsed (time and memory stay bounded).
pub fn documents_within<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Result<(&'a str, Vec<RawDocument<'a>>), Error> {
    limits.check_size(input.len())?;
    // Every document but the first starts at a `---` line: counted without allocating.
    let markers = input
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"---"))
        .count();
    limits.check_documents(markers)?;
    if is_blank(input) {
        return Err(ErrorKind::Empty.into());
    }
    let text = std::str::from_utf8(input).map_err(|e| ErrorKind::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let docs = yaml::split_documents(text);
    Ok((text, docs))
}

/// Whether a file holds nothing at all: no bytes, or whitespace only. [`documents`] refuses such
/// a file ([`ErrorKind::Empty`]).
pub fn is_blank(input: &[u8]) -> bool {
    input.iter().all(|b| b.is_ascii_whitespace())
}

/// What a folder walk does with a file it reached: `Some(note)` when the file is passed over
/// rather than read, as kubectl passes over an empty file when it reads a folder (real
/// repositories hold them); `None` when it is read as usual. Every command that walks folders
/// (encrypt, decrypt, verify, rekey, import, scan) asks this. A file named on its own is not
/// asked about: empty, it stays an error.
pub fn skipped_in_walk(input: &[u8]) -> Option<String> {
    is_blank(input)
        .then(|| "empty file, skipped (kubectl skips empty files in a folder too)".to_string())
}

/// Numbers the non-empty documents 1, 2, ... as users count them.
pub(crate) fn numbered<'a>(
    docs: &'a [RawDocument<'a>],
) -> impl Iterator<Item = (usize, &'a RawDocument<'a>)> + 'a {
    let mut n = 0;
    docs.iter().map(move |d| {
        if !d.is_empty {
            n += 1;
        }
        (n.max(1), d)
    })
}

/// Joins documents back into a stream: rewritten ones keep their leading `---`, comments and
/// byte-order mark, and the line endings (CRLF) of the document they replace; the others are
/// copied byte for byte. The result is allocated once at its exact size, so a caller that
/// wraps it in a zeroizing buffer (decrypt) leaves no unwiped copy behind.
pub(crate) fn reassemble<S: AsRef<str>>(docs: &[RawDocument<'_>], new: Vec<Option<S>>) -> String {
    use crate::core::manifest;
    let crlf = |doc: &RawDocument<'_>, new: &str| doc.text.contains("\r\n") && !new.contains('\r');
    let size: usize = docs
        .iter()
        .zip(&new)
        .map(|(doc, new)| match new {
            Some(new) => {
                let new = new.as_ref();
                let extra = if crlf(doc, new) {
                    new.bytes().filter(|&b| b == b'\n').count()
                } else {
                    0
                };
                yaml11_safe(manifest::leading_trivia(doc.text)).len()
                    + new.len()
                    + extra
                    + yaml11_safe(manifest::trailing_trivia(doc.text)).len()
            }
            None => doc.text.len(),
        })
        .sum();
    let mut out = String::with_capacity(size);
    for (doc, new) in docs.iter().zip(&new) {
        match new {
            Some(new) => {
                let new = new.as_ref();
                out.push_str(&yaml11_safe(manifest::leading_trivia(doc.text)));
                if crlf(doc, new) {
                    for piece in new.split_inclusive('\n') {
                        match piece.strip_suffix('\n') {
                            Some(line) => {
                                out.push_str(line);
                                out.push_str("\r\n");
                            }
                            None => out.push_str(piece),
                        }
                    }
                } else {
                    out.push_str(new);
                }
                out.push_str(&yaml11_safe(manifest::trailing_trivia(doc.text)));
            }
            None => out.push_str(doc.text),
        }
    }
    debug_assert_eq!(out.len(), size, "sized exactly");
    out
}

/// Comments copied next to a rewritten document, made to read the same to kubectl: a NEL,
/// U+2028 or U+2029 would end the comment for a YAML 1.1 reader and turn the rest of the line
/// into content (`# reviewed<U+2028>metadata: {namespace: kube-system}`), so each is written
/// as its escape, as text.
pub(crate) fn yaml11_safe(trivia: &str) -> std::borrow::Cow<'_, str> {
    if !trivia.contains(crate::core::kubeyaml::is_yaml11_break) {
        return trivia.into();
    }
    let mut out = String::with_capacity(trivia.len() + 8);
    for c in trivia.chars() {
        if crate::core::kubeyaml::is_yaml11_break(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.into()
}

pub(crate) use crate::core::yaml::wipe;

/// A document our reader cannot parse: passed through with a one-line note, unless its text
/// declares `kind: Secret` (then it is an error and nothing is written).
pub(crate) fn unreadable(n: usize, e: ErrorKind, doc: &RawDocument<'_>) -> Result<String, Error> {
    let text = crate::core::kubeyaml::yaml11_line_breaks(doc.text);
    if crate::core::judge::declares_secret(&text) {
        return Err(Error::from(e).in_document(n));
    }
    Ok(format!("document {n} passed through unchanged ({e})"))
}

/// The judge's last word on what a command writes: kubectl must read no plaintext Secret in
/// it that the command meant to seal (encrypt, rekey). Fails closed on what it cannot judge.
pub(crate) fn check_output(text: &[u8], limits: &Limits) -> Result<(), Error> {
    // Sealing makes a file larger, never longer in documents.
    let limits = Limits {
        max_file_bytes: usize::MAX,
        ..*limits
    };
    let report = crate::core::judge::judge(text, &limits);
    match report.findings.into_iter().next() {
        None => Ok(()),
        Some(f) => {
            let message = match &f.detail {
                Some(detail) => format!("kubectl may read a plaintext Secret here: {detail}"),
                None => "kubectl reads this as a plaintext Secret (through YAML 1.1 line breaks, escapes, merge keys or lists), which this command cannot seal; nothing was written".to_string(),
            };
            let mut e =
                Error::from(ErrorKind::PlaintextForKubectl(message)).in_document(f.document.max(1));
            if !f.unparsable {
                e = e.in_object(f.object);
            }
            Err(e)
        }
    }
}

/// A `kind: List` document parsed whole, with its SealedSecret items: what `encrypt` made of
/// the Secrets in it. Each item is parsed on its own, so one bad item is an error for that
/// item (numbered from 1, as `List item N`).
pub(crate) struct SealedList {
    pub list: serde_json::Value,
    pub items: Vec<(usize, Result<crate::core::SealedSecret, Error>)>,
}

impl SealedList {
    pub fn parse(doc: &RawDocument<'_>) -> Result<Self, Error> {
        use crate::core::manifest::{self, DocKind};
        let list = yaml::parse_list(doc)?;
        let mut items = Vec::new();
        let entries = list.get("items").and_then(serde_json::Value::as_array);
        for (i, item) in entries.into_iter().flatten().enumerate() {
            let kind = manifest::kind_of(
                item.get("apiVersion").and_then(serde_json::Value::as_str),
                item.get("kind").and_then(serde_json::Value::as_str),
            );
            if kind != DocKind::SealedSecret {
                continue;
            }
            let parsed = yaml::reparse_item(item, doc.first_line, crate::core::SealedSecret::parse)
                .map_err(|e| e.in_object(Self::object(i + 1, None)));
            items.push((i + 1, parsed));
        }
        Ok(SealedList { list, items })
    }

    /// `List item N` or `List item N: SealedSecret ns/name`.
    pub fn object(item: usize, sealed: Option<&crate::core::SealedSecret>) -> String {
        match sealed {
            Some(s) => format!("List item {item}: {}", s.object_ref()),
            None => format!("List item {item}"),
        }
    }

    /// Replaces item `n` (1-based).
    pub fn replace(&mut self, n: usize, value: serde_json::Value) {
        if let Some(slot) = self
            .list
            .get_mut("items")
            .and_then(serde_json::Value::as_array_mut)
            .and_then(|a| a.get_mut(n - 1))
        {
            *slot = value;
        }
    }

    /// The whole list, in the document's own syntax.
    pub fn render(&self, json: bool) -> String {
        if json {
            yaml::to_json(&self.list)
        } else {
            yaml::to_yaml(&self.list)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reassemble_keeps_bom_comments_and_crlf_and_sizes_exactly() {
        let text = "\u{feff}# head\r\napiVersion: v1\r\nkind: Secret\r\n---\nkind: ConfigMap\n";
        let docs = yaml::split_documents(text);
        assert_eq!(docs.len(), 2);
        let out = reassemble(&docs, vec![Some("kind: SealedSecret\nspec: {}\n"), None]);
        assert_eq!(
            out,
            "\u{feff}# head\r\nkind: SealedSecret\r\nspec: {}\r\n---\nkind: ConfigMap\n"
        );
        assert_eq!(out.capacity(), out.len());
    }

    #[test]
    fn copied_comments_read_the_same_to_a_yaml_1_1_reader() {
        let text = "apiVersion: v1\nkind: Secret\n# reviewed\u{2028}metadata: {namespace: kube-system}\n---\n# x\u{85}y\nkind: ConfigMap\n";
        let docs = yaml::split_documents(text);
        let out = reassemble(&docs, vec![Some("kind: Secret\n"), None]);
        assert_eq!(
            out,
            "kind: Secret\n# reviewed\\u2028metadata: {namespace: kube-system}\n---\n# x\u{85}y\nkind: ConfigMap\n"
        );
        assert_eq!(out.capacity(), out.len());
    }
}
