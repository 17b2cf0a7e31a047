//! Judging content for plaintext Secrets, semantically: the hook, `scan` and `verify` share
//! it. Nothing here holds a value: Secret documents are read for their name, namespace and
//! whether `data`/`stringData` have entries.

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::core::manifest::{self, DocKind};
use crate::core::secret::{self, SecretSummary};
use crate::core::yaml;

/// One plaintext Secret (or a document that may be one) in some content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlaintextFinding {
    /// 1-based document index.
    pub document: usize,
    /// `Secret ns/name`, `List item N (Secret ns/name)`, or `unparsable document`.
    pub object: String,
    /// The document is not valid YAML but its text declares `kind: Secret`.
    pub unparsable: bool,
}

impl std::fmt::Display for PlaintextFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.unparsable {
            write!(
                f,
                "document {}: not valid YAML, but it declares kind: Secret",
                self.document
            )
        } else {
            write!(f, "document {} ({})", self.document, self.object)
        }
    }
}

/// What a scan of one piece of content found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanReport {
    pub findings: Vec<PlaintextFinding>,
    /// One line per document skipped because it does not parse (a Helm template, say).
    pub skipped: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemHead {
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<ItemMeta>,
    data: Option<BTreeMap<String, IgnoredAny>>,
    string_data: Option<BTreeMap<String, IgnoredAny>>,
    /// A List inside a List: kubectl applies its items too.
    items: Option<Vec<ItemHead>>,
}

/// Plaintext Secrets among List items, nested Lists included (`List item 2.1: ...`).
fn list_findings(items: Vec<ItemHead>, prefix: &str, document: usize, out: &mut ScanReport) {
    for (i, item) in items.into_iter().enumerate() {
        let number = format!("{prefix}{}", i + 1);
        let kind = manifest::kind_of(item.api_version.as_deref(), item.kind.as_deref());
        if kind == DocKind::List {
            if let Some(inner) = item.items {
                list_findings(inner, &format!("{number}."), document, out);
            }
            continue;
        }
        let has_values = item.data.is_some_and(|m| !m.is_empty())
            || item.string_data.is_some_and(|m| !m.is_empty());
        if kind == DocKind::Secret && has_values {
            let (name, ns) = item
                .metadata
                .map(|m| (m.name, m.namespace))
                .unwrap_or_default();
            let object = secret::object_ref(
                "Secret",
                ns.as_deref(),
                name.as_deref().unwrap_or("<unnamed>"),
            );
            out.findings.push(PlaintextFinding {
                document,
                object: format!("List item {number}: {object}"),
                unparsable: false,
            });
        }
    }
}

#[derive(Deserialize)]
struct ItemMeta {
    name: Option<String>,
    namespace: Option<String>,
}

#[derive(Deserialize)]
struct ListOfHeads {
    items: Option<Vec<ItemHead>>,
}

/// True when a document's text says `kind: Secret` (YAML or JSON, either side quoted or not,
/// with a trailing comment or comma, or anywhere in one-line JSON). A line that is one quoted
/// string (`"kind: Secret",` in source code) does not count.
fn declares_secret(text: &str) -> bool {
    let is = |part: &str, word: &str| {
        let part = part.trim();
        part == word
            || part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) == Some(word)
            || part.strip_prefix('\'').and_then(|p| p.strip_suffix('\'')) == Some(word)
    };
    text.lines().any(|line| {
        let line = match line.find(" #") {
            Some(i) => &line[..i],
            None => line,
        };
        let line = line.trim().trim_end_matches(',');
        let as_pair = line
            .split_once(':')
            .is_some_and(|(k, v)| is(k, "kind") && is(v, "Secret"));
        as_pair || json_declares_secret(line)
    })
}

/// `"kind"`, optional spaces, `:`, optional spaces, `"Secret"`, anywhere in a line.
fn json_declares_secret(line: &str) -> bool {
    line.match_indices("\"kind\"").any(|(i, m)| {
        let rest = line[i + m.len()..].trim_start();
        rest.strip_prefix(':')
            .map(str::trim_start)
            .is_some_and(|r| r.starts_with("\"Secret\""))
    })
}

/// Text for judging: kubectl reads UTF-16 files with a byte-order mark (what Windows
/// PowerShell writes) and YAML with stray non-UTF-8 bytes in comments, so those are decoded
/// rather than passed as binary. Binary content decodes to noise that parses as nothing.
fn decode(input: &[u8]) -> String {
    let utf16 = |bytes: &[u8], from: fn([u8; 2]) -> u16| {
        let units: Vec<u16> = bytes.chunks_exact(2).map(|c| from([c[0], c[1]])).collect();
        String::from_utf16_lossy(&units)
    };
    match input {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes),
        // Git's own test for binary: a NUL in the first 8,000 bytes.
        _ if input.iter().take(8000).any(|&b| b == 0) => String::new(),
        _ => String::from_utf8_lossy(input).into_owned(),
    }
}

/// Finds plaintext Secrets (with values) in manifest content of any extension. Content that
/// is not UTF-8 or mentions no `kind` is not a manifest and is passed.
pub fn scan_content(input: &[u8]) -> ScanReport {
    let mut report = ScanReport::default();
    let text = Zeroizing::new(decode(input));
    // Every manifest is a mapping, and `:` cannot be escaped: without one there is nothing
    // to judge. (No shortcut on the word `kind`: JSON and YAML can escape its letters.)
    if !text.contains(':') {
        return report;
    }
    let docs = yaml::split_documents(&text);
    for (n, doc) in super::numbered(&docs) {
        match manifest::classify(doc) {
            Err(e) => {
                if declares_secret(doc.text) {
                    report.findings.push(PlaintextFinding {
                        document: n,
                        object: "unparsable document".into(),
                        unparsable: true,
                    });
                } else if doc.text.contains("kind") {
                    // Notes only for what looks like a manifest, not for every README.
                    report.skipped.push(format!("document {n} skipped ({e})"));
                }
            }
            Ok(DocKind::Secret) => match secret::summarize(doc) {
                Ok(SecretSummary {
                    has_values: false, ..
                }) => {}
                Ok(s) => report.findings.push(PlaintextFinding {
                    document: n,
                    object: s.object_ref(),
                    unparsable: false,
                }),
                Err(_) => report.findings.push(PlaintextFinding {
                    document: n,
                    object: "unparsable document".into(),
                    unparsable: true,
                }),
            },
            Ok(DocKind::List) => {
                let items = yaml::parse::<ListOfHeads>(doc).ok().and_then(|l| l.items);
                list_findings(items.unwrap_or_default(), "", n, &mut report);
            }
            Ok(_) => {
                // kubectl flattens anything with `items` (a ConfigMapList, a custom list).
                if doc.text.contains("items") {
                    let items = yaml::parse::<ListOfHeads>(doc).ok().and_then(|l| l.items);
                    list_findings(items.unwrap_or_default(), "", n, &mut report);
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_documents_semantically() {
        let r = scan_content(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\nstringData: {k: v}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: token}\ntype: kubernetes.io/service-account-token\n");
        assert_eq!(
            r.findings,
            vec![PlaintextFinding {
                document: 2,
                object: "Secret n/s".into(),
                unparsable: false
            }]
        );
    }

    #[test]
    fn a_template_is_skipped_unless_it_declares_a_secret() {
        let cm = scan_content(
            b"{{- if .Values.enabled }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n{{- end }}\n",
        );
        assert!(cm.findings.is_empty());
        assert_eq!(cm.skipped.len(), 1);
        let s = scan_content(b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\nstringData:\n  k: {{ .Values.k }}\n");
        assert!(s.findings[0].unparsable);
    }

    #[test]
    fn templates_declare_secrets_however_the_line_is_written() {
        for line in [
            "kind: Secret",
            "kind: Secret # db creds",
            "\"kind\": Secret",
            "  \"kind\": \"Secret\",",
            "kind: 'Secret'",
            "{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"data\": {{ .Values.d }}}",
        ] {
            assert!(declares_secret(line), "{line}");
        }
        for line in [
            "kind: SecretStore",
            "kind: ConfigMap # Secret",
            "# kind: Secret",
            "            \"kind: Secret\",",
        ] {
            assert!(!declares_secret(line), "{line}");
        }
    }

    #[test]
    fn sealed_and_binary_content_pass() {
        assert!(scan_content(b"\xff\xfe kind").findings.is_empty());
        assert!(scan_content(
            b"apiVersion: gitops-seal.dev/v1\nkind: SealedSecret\nmetadata: {name: x}\n"
        )
        .findings
        .is_empty());
    }
}
