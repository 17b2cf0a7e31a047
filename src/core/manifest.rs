//! What a document is, judged from its `apiVersion` and `kind`.

use serde::Deserialize;

use super::error::ErrorKind;
use super::sealed;
use super::yaml::{self, RawDocument};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// Only comments, markers and blank lines.
    Empty,
    /// `v1 Secret`.
    Secret,
    /// `gitops-seal.dev/v1 SealedSecret`.
    SealedSecret,
    /// `v1 List` (or `SecretList`): items are judged one by one.
    List,
    /// Anything else: passed through byte for byte.
    Other,
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
}

/// The kind of a document from its `apiVersion` and `kind`, with the group/version parsed as
/// Kubernetes parses it (`/v1` is core `v1`, see [`super::kubeyaml::parse_group_version`]).
pub fn kind_of(api_version: Option<&str>, kind: Option<&str>) -> DocKind {
    use super::kubeyaml::is_core_v1;
    match (api_version, kind) {
        (Some(api), Some("Secret")) if is_core_v1(api) => DocKind::Secret,
        (Some(sealed::API_VERSION), Some(sealed::KIND)) => DocKind::SealedSecret,
        (Some(api), Some("List" | "SecretList")) if is_core_v1(api) => DocKind::List,
        _ => DocKind::Other,
    }
}

/// Classifies one document. A document that is not a mapping is `Other`; one that is not
/// valid YAML is an error.
pub fn classify(doc: &RawDocument<'_>) -> Result<DocKind, ErrorKind> {
    if doc.is_empty {
        return Ok(DocKind::Empty);
    }
    match yaml::parse::<Head>(doc) {
        Ok(h) => Ok(kind_of(h.api_version.as_deref(), h.kind.as_deref())),
        Err(e) => match yaml::parse::<serde::de::IgnoredAny>(doc) {
            Ok(_) => Ok(DocKind::Other),
            Err(_) => Err(e),
        },
    }
}

/// The part of a document before its content (its `---` line, leading comments and blank
/// lines): kept when the document itself is rewritten.
pub fn leading_trivia(text: &str) -> &str {
    // A byte-order mark opens the file and belongs to it, not to the content.
    let mut end = if text.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    for line in text[end..].split_inclusive('\n') {
        let t = line.trim();
        let is_marker = t == "---" || (t.starts_with("--- #"));
        if t.is_empty() || t.starts_with('#') || is_marker {
            end += line.len();
        } else {
            break;
        }
    }
    &text[..end]
}

/// The comments and blank lines at the end of a document, after its content: usually a
/// heading for the next document (`# the cache` before its `---`), kept when this document is
/// rewritten. Only comments at column 0 count: an indented `#` line may be the content of a
/// block scalar (a value), which must never be copied.
pub fn trailing_trivia(text: &str) -> &str {
    let mut start = text.len();
    for line in text.split_inclusive('\n').rev() {
        let trivia = line.trim().is_empty() || line.starts_with('#');
        if !trivia {
            break;
        }
        start -= line.len();
    }
    // Nothing but trivia: that is leading trivia, already kept.
    if start == text.len() || text[..start].trim().is_empty() {
        return "";
    }
    // A `#` line at column 0 can still be inside a quoted scalar ("a\n#b" written over two
    // lines): only lines the content does not need are trivia. Both reads hold plaintext.
    let read = |t: &str| {
        yaml::parse::<serde_json::Value>(&RawDocument {
            text: t,
            first_line: 1,
            is_empty: false,
        })
    };
    match (read(text), read(&text[..start])) {
        (Ok(mut whole), Ok(mut content)) => {
            let same = whole == content;
            yaml::wipe(&mut whole);
            yaml::wipe(&mut content);
            if same {
                &text[start..]
            } else {
                ""
            }
        }
        (whole, content) => {
            for mut v in [whole, content].into_iter().flatten() {
                yaml::wipe(&mut v);
            }
            ""
        }
    }
}

/// `new` with the line endings of `original`: a rewritten document in a CRLF file is CRLF too.
pub fn with_line_endings_of(original: &str, new: String) -> String {
    if original.contains("\r\n") && !new.contains('\r') {
        new.replace('\n', "\r\n")
    } else {
        new
    }
}

/// What follows the document's content: the output of a rewrite ends with a newline, and a
/// following `---` must still start its own line.
pub fn ensure_trailing_newline(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

/// One manifest file of a tree (a commit the sync loop reads): its path under the root, and its
/// bytes.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> RawDocument<'_> {
        RawDocument {
            text,
            first_line: 1,
            is_empty: false,
        }
    }

    #[test]
    fn trailing_comments_at_column_zero_are_trivia_and_indented_ones_are_not() {
        assert_eq!(
            trailing_trivia("kind: Secret\ndata: {}\n\n# the cache\n"),
            "\n# the cache\n"
        );
        assert_eq!(
            trailing_trivia("stringData:\n  k: |\n    line\n    # part of the value\n"),
            ""
        );
        assert_eq!(trailing_trivia("# only a comment\n"), "");
        // Inside a double-quoted scalar that spans lines: content, not a comment.
        assert_eq!(
            trailing_trivia("stringData:\n  cfg: \"user=app\n#password=hunter2\"\n"),
            ""
        );
    }

    #[test]
    fn classifies_by_api_version_and_kind() {
        assert_eq!(
            classify(&doc("apiVersion: v1\nkind: Secret\n")).unwrap(),
            DocKind::Secret
        );
        assert_eq!(
            classify(&doc("apiVersion: gitops-seal.dev/v1\nkind: SealedSecret\n")).unwrap(),
            DocKind::SealedSecret
        );
        assert_eq!(
            classify(&doc("apiVersion: v1\nkind: ConfigMap\n")).unwrap(),
            DocKind::Other
        );
        assert_eq!(classify(&doc("- a\n- b\n")).unwrap(), DocKind::Other);
        assert_eq!(
            classify(&doc("{\"apiVersion\":\"v1\",\"kind\":\"List\"}")).unwrap(),
            DocKind::List
        );
        assert!(classify(&doc("a: [1\n")).is_err());
    }

    #[test]
    fn trivia_is_the_marker_and_comments_before_content() {
        assert_eq!(
            leading_trivia("---\n# c\n\napiVersion: v1\n"),
            "---\n# c\n\n"
        );
        assert_eq!(leading_trivia("apiVersion: v1\n"), "");
    }
}
