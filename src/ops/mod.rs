//! Whole-file operations over the core: text in, text out, no I/O. Each returns the new text
//! (or `None` when nothing changed) or the first error, located by document, object and key;
//! callers add the file and write nothing on error.

mod decrypt;
mod edit;
mod encrypt;
mod merge;
mod scan;
mod verify;

pub use decrypt::{decrypt, rekey};
pub use edit::{
    find_sealed, previous_sealings, same_set as same_recipients, set_value, unset_value,
};
pub use encrypt::{encrypt, Previous, SealSettings};
pub use merge::{merge_files, FileMerge, TextMerge};
pub use scan::{scan_content, PlaintextFinding, ScanReport};
pub use verify::{verify, Finding, VerifyOptions};

use crate::core::error::{Error, ErrorKind};
use crate::core::yaml::{self, RawDocument};

/// Checks the input is non-empty UTF-8 and splits it into documents.
pub fn documents(input: &[u8]) -> Result<(&str, Vec<RawDocument<'_>>), Error> {
    if input.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ErrorKind::Empty.into());
    }
    let text = std::str::from_utf8(input).map_err(|e| ErrorKind::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let docs = yaml::split_documents(text);
    Ok((text, docs))
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

/// Joins documents back into a stream: rewritten ones keep their leading `---` and comments,
/// the others are copied byte for byte.
pub(crate) fn reassemble<S: AsRef<str>>(docs: &[RawDocument<'_>], new: Vec<Option<S>>) -> String {
    let extra: usize = new.iter().flatten().map(|s| s.as_ref().len()).sum();
    let mut out = String::with_capacity(docs.iter().map(|d| d.text.len()).sum::<usize>() + extra);
    for (doc, new) in docs.iter().zip(new) {
        match new {
            Some(new) => {
                out.push_str(crate::core::manifest::leading_trivia(doc.text));
                out.push_str(new.as_ref());
            }
            None => out.push_str(doc.text),
        }
    }
    out
}
