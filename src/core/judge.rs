//! The one judge of "is this a plaintext Secret": the pre-commit hook, `scan`, `verify` and
//! `encrypt` (which checks that its output holds none) all ask it, and so does the sync loop's
//! plan (`sync::plan::plan`) for every file before anything of a commit is applied, unless
//! `sync --allow-plaintext-secrets` is given.
//!
//! It reads content as kubectl reads it ([`super::kubeyaml`]): kubectl's document separators,
//! JSON and NDJSON streams, YAML 1.1 line breaks (NEL, U+2028, U+2029) everywhere including
//! comments, duplicate and merge keys with go-yaml's precedence, escaped or `!!binary` keys and
//! values, `items` on any object (at any depth), and `apiVersion` as Kubernetes'
//! `ParseGroupVersion` splits it. Where it cannot decide (a document that does not parse but
//! says `kind: Secret`, or spells things with escapes or tags, a file over the limits), it
//! fails closed: a finding marked [`PlaintextFinding::unparsable`], whose message names the
//! document, for the caller to suggest sealing it or listing the path under `ignore:`.
//!
//! ```
//! use gitops_seal::core::judge;
//! use gitops_seal::core::kubeyaml::Limits;
//!
//! // A line separator ends a comment for kubectl: this ConfigMap is a Secret.
//! let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: db}\n# note\u{2028}kind: Secret\nstringData: {password: x}\n";
//! let report = judge::judge(text.as_bytes(), &Limits::default());
//! assert_eq!(report.findings[0].to_string(), "document 1 (Secret db)");
//! ```
//!
//! Nothing here keeps a value: objects are read for their kind, name, namespace and whether
//! `data`/`stringData` have entries, and every string read is wiped before it is dropped.

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::kubeyaml::{self, Limits};
use super::secret;
use super::yaml;

/// One plaintext Secret (or a document that may be one) in some content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlaintextFinding {
    /// 1-based document index.
    pub document: usize,
    /// `Secret ns/name`, `List item N: Secret ns/name`, or `unparsable document`.
    pub object: String,
    /// The judge could not read the document (or the file) and fails closed: it is not valid
    /// YAML but declares `kind: Secret`, or it is over a limit.
    pub unparsable: bool,
    /// Why it could not be read, for an `unparsable` finding.
    #[serde(skip)]
    pub detail: Option<String>,
}

impl std::fmt::Display for PlaintextFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.detail, self.unparsable) {
            (Some(detail), _) => write!(f, "document {}: {detail}", self.document),
            (None, true) => write!(
                f,
                "document {}: not valid YAML, but it declares kind: Secret",
                self.document
            ),
            (None, false) => write!(f, "document {} ({})", self.document, self.object),
        }
    }
}

/// What the judge found in one piece of content.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanReport {
    pub findings: Vec<PlaintextFinding>,
    /// One line per document skipped because it does not parse and does not declare a
    /// Secret (a Helm template, say).
    pub skipped: Vec<String>,
}

/// What kubectl makes of one object's `apiVersion` and `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// Core `v1` (also spelled `/v1`) `Secret`.
    Secret,
    /// `gitops-seal.dev/v1` `SealedSecret`.
    SealedSecret,
    Other,
}

/// The kind of one object as kubectl reads its `apiVersion` and `kind`.
pub fn object_kind(object: &Map<String, Value>) -> ObjectKind {
    let api = object.get("apiVersion").and_then(Value::as_str);
    let kind = object.get("kind").and_then(Value::as_str);
    match (api, kind) {
        (Some(api), Some("Secret")) if kubeyaml::is_core_v1(api) => ObjectKind::Secret,
        (Some(api), Some(super::sealed::KIND))
            if kubeyaml::is_group_version(api, "gitops-seal.dev", "v1") =>
        {
            ObjectKind::SealedSecret
        }
        _ => ObjectKind::Other,
    }
}

/// True when kubectl would create a Secret that holds values from this object.
pub fn is_plaintext_secret(object: &Map<String, Value>) -> bool {
    object_kind(object) == ObjectKind::Secret && secret::has_values(&Value::Object(object.clone()))
}

/// Judges manifest content of any extension: every plaintext Secret kubectl would create
/// from it, and every document it cannot decide about. Binary content passes.
pub fn judge(input: &[u8], limits: &Limits) -> ScanReport {
    judge_with(input, limits, true)
}

/// Bumped whenever a verdict of the judge can change, so that records of blobs judged clean
/// (the hook's cache) made by an older judge are void. (They are also void under any other
/// build of the binary.)
pub const JUDGE_REVISION: u32 = 1;

/// Whether a file named `path` is read as a manifest (`kubectl apply -f DIR` reads `.yaml`,
/// `.yml` and `.json`): there, an unparsable document fails closed.
pub fn reads_as_manifest(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

/// [`judge`] for a file named `path`. `kubectl apply -f DIR` reads only `.yaml`, `.yml` and
/// `.json` files: in any other file (source code, prose) a document that does not parse is
/// not a manifest, so it cannot fail closed; a document that parses into a plaintext Secret is
/// still found.
pub fn judge_file(path: &str, input: &[u8], limits: &Limits) -> ScanReport {
    judge_with(input, limits, reads_as_manifest(path))
}

/// The verdict on content of `size` bytes without reading it, when its size alone settles it:
/// over the limit, it cannot be judged (a finding: the judge fails closed). Callers check this
/// before reading a file or blob, so a huge one is never read whole.
pub fn judge_size(size: u64, limits: &Limits) -> Option<ScanReport> {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    limits.check_size(size).err().map(|e| ScanReport {
        findings: vec![cannot_judge(0, &e.to_string())],
        ..ScanReport::default()
    })
}

fn judge_with(input: &[u8], limits: &Limits, manifest_file: bool) -> ScanReport {
    if let Some(report) = judge_size(input.len() as u64, limits) {
        return report;
    }
    let mut report = ScanReport::default();
    let text = Zeroizing::new(decode(input));
    // Every manifest is a mapping, and `:` cannot be escaped: without one there is nothing
    // to judge. (No shortcut on the word `kind`: JSON and YAML can escape its letters.)
    if !text.contains(':') {
        return report;
    }
    if kubeyaml::is_json_stream(&text) {
        if let Ok(values) = kubeyaml::read_json_stream(&text) {
            for (i, mut value) in values.into_iter().enumerate() {
                judge_value(&value, i + 1, &mut report);
                yaml::wipe(&mut value);
            }
            return report;
        }
        // kubectl falls back to YAML for what is not a JSON stream; so does the judge.
    }
    let chunks = match kubeyaml::kubectl_chunks(&text, limits) {
        Ok(chunks) => chunks,
        Err(e) => {
            report.findings.push(cannot_judge(0, &e.to_string()));
            return report;
        }
    };
    let mut n = 0;
    for chunk in chunks {
        let normalised = kubeyaml::yaml11_line_breaks(chunk.text);
        if is_trivia(&normalised) {
            continue;
        }
        n += 1;
        match kubeyaml::read_chunk(chunk.text) {
            Ok(values) => {
                for mut value in values {
                    judge_value(&value, n, &mut report);
                    yaml::wipe(&mut value);
                }
            }
            Err(_) if !manifest_file => {}
            Err(e) => {
                if declares_secret(&normalised) {
                    report.findings.push(PlaintextFinding {
                        document: n,
                        object: "unparsable document".into(),
                        unparsable: true,
                        detail: Some(format!(
                            "not valid YAML ({e}), but it declares kind: Secret"
                        )),
                    });
                } else if spelled_around(&normalised) {
                    report.findings.push(cannot_judge(
                        n,
                        &format!("not valid YAML ({e}), and it spells keys or values with escapes or tags, so whether it is a Secret cannot be told"),
                    ));
                } else if normalised.contains("kind") {
                    // Notes only for what looks like a manifest, not for every README.
                    report
                        .skipped
                        .push(format!("document {n} skipped (not valid YAML: {e})"));
                }
            }
        }
    }
    report
}

fn cannot_judge(document: usize, why: &str) -> PlaintextFinding {
    PlaintextFinding {
        document,
        object: "unparsable document".into(),
        unparsable: true,
        detail: Some(format!("cannot be judged: {why}")),
    }
}

fn judge_value(value: &Value, document: usize, report: &mut ScanReport) {
    for (path, object) in kubeyaml::objects(value) {
        if !is_plaintext_secret(object) {
            continue;
        }
        let meta = object.get("metadata");
        let field = |f: &str| meta.and_then(|m| m.get(f)).and_then(Value::as_str);
        let object_ref = secret::object_ref(
            "Secret",
            field("namespace"),
            field("name").unwrap_or("<unnamed>"),
        );
        report.findings.push(PlaintextFinding {
            document,
            object: if path.is_empty() {
                object_ref
            } else {
                format!("{path}: {object_ref}")
            },
            unparsable: false,
            detail: None,
        });
    }
}

/// Only comments, markers and blank lines (after YAML 1.1 line breaks).
fn is_trivia(text: &str) -> bool {
    text.trim_start_matches('\u{feff}').lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

/// Escapes (`\x..`, `\u....`) or `!!binary` tags: ways to spell `kind`, `Secret` or `items`
/// that no textual test sees.
fn spelled_around(text: &str) -> bool {
    text.contains("!!binary") || escaped_manifest_word(text)
}

/// True when a double-quoted scalar spells, with escapes, one of the words a Secret is made of
/// (`"\x6bind"`, `"Se\u0063ret"`): text a YAML reader decodes into a manifest, which no
/// ordinary source file (a `\u{0}` in Rust, a `\n` in a log format) does.
fn escaped_manifest_word(text: &str) -> bool {
    const WORDS: &[&str] = &[
        "kind",
        "Secret",
        "apiVersion",
        "v1",
        "data",
        "stringData",
        "items",
        "metadata",
        "List",
    ];
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                '\n' => break,
                _ => escaped = false,
            }
        }
        let Some(end) = end else {
            rest = after;
            continue;
        };
        let quoted = &after[..end];
        if quoted.contains('\\') {
            if let Some(decoded) = unescape(quoted) {
                if WORDS.contains(&decoded.trim()) {
                    return true;
                }
            }
        }
        rest = &after[end + 1..];
    }
    false
}

/// YAML double-quoted escapes (a subset enough to spell words); `None` when malformed.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let hex = |n: usize, chars: &mut std::str::Chars<'_>| -> Option<char> {
            let h: String = chars.by_ref().take(n).collect();
            char::from_u32(u32::from_str_radix(&h, 16).ok()?)
        };
        match chars.next()? {
            'x' => out.push(hex(2, &mut chars)?),
            'u' => out.push(hex(4, &mut chars)?),
            'U' => out.push(hex(8, &mut chars)?),
            'N' => out.push('\u{85}'),
            '_' => out.push('\u{a0}'),
            'L' => out.push('\u{2028}'),
            'P' => out.push('\u{2029}'),
            'n' => out.push('\n'),
            't' => out.push('\t'),
            other => out.push(other),
        }
    }
    Some(out)
}

/// True when a document's text says `kind: Secret` (YAML or JSON, either side quoted or not,
/// with a trailing comment or comma, or anywhere in one-line JSON). A line that is one quoted
/// string (`"kind: Secret",` in source code) does not count.
pub fn declares_secret(text: &str) -> bool {
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

#[cfg(test)]
mod escape_tests {
    use super::*;

    #[test]
    fn source_code_with_escapes_is_not_a_manifest() {
        let rust = "fn main() {\n    let z = \"\\u{0}\";\n    let j = json!({\"kind\": \"x\"});\n    println!(\"a\\nb\");\n}\n";
        let r = judge(rust.as_bytes(), &Limits::default());
        assert!(r.findings.is_empty(), "{:?}", r.findings);
    }

    #[test]
    fn unparsable_source_files_do_not_fail_closed_but_manifests_do() {
        // Not valid YAML, and it says kind: Secret.
        let text = "kind: Secret\nmetadata: {name: [\n";
        assert!(judge_file("src/a.rs", text.as_bytes(), &Limits::default())
            .findings
            .is_empty());
        assert!(
            !judge_file("deploy/a.yaml", text.as_bytes(), &Limits::default())
                .findings
                .is_empty()
        );
        // A parseable plaintext Secret is found whatever the file is called.
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\n";
        assert_eq!(
            judge_file("notes.txt", secret.as_bytes(), &Limits::default())
                .findings
                .len(),
            1
        );
    }

    #[test]
    fn a_key_spelled_with_escapes_is_still_judged_closed() {
        assert!(escaped_manifest_word("\"\\x6bind\": Secret"));
        assert!(escaped_manifest_word("kind: \"Se\\u0063ret\""));
        assert!(!escaped_manifest_word("\"a\\nb\" \"\\u{0}\""));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<String> {
        judge(text.as_bytes(), &Limits::default())
            .findings
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn judges_documents_semantically() {
        let r = judge(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\nstringData: {k: v}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: token}\ntype: kubernetes.io/service-account-token\n", &Limits::default());
        assert_eq!(
            r.findings,
            vec![PlaintextFinding {
                document: 2,
                object: "Secret n/s".into(),
                unparsable: false,
                detail: None,
            }]
        );
    }

    #[test]
    fn the_hostile_cases_of_issue_15_are_secrets() {
        let secret = "metadata: {name: s}\nstringData: {k: v}\n";
        for brk in ['\u{85}', '\u{2028}', '\u{2029}'] {
            assert_eq!(
                found(&format!(
                    "apiVersion: v1\nkind: ConfigMap\n{secret}# note{brk}kind: Secret\n"
                )),
                ["document 1 (Secret s)"]
            );
        }
        assert_eq!(
            found("apiVersion: v1\nkind: ConfigMapList\n\"\\x69tems\":\n- {apiVersion: v1, kind: Secret, metadata: {name: s}, stringData: {k: v}}\n"),
            ["document 1 (List item 1: Secret s)"]
        );
        assert_eq!(
            found(&format!("apiVersion: /v1\nkind: Secret\n{secret}")),
            ["document 1 (Secret s)"]
        );
        assert_eq!(
            found(&format!(
                "apiVersion: v1\nkind: Secret\ntype: a\ntype: b\n{secret}"
            )),
            ["document 1 (Secret s)"]
        );
        assert_eq!(
            found(&format!(
                "b: &b {{kind: Secret}}\napiVersion: v1\n<<: *b\n{secret}"
            )),
            ["document 1 (Secret s)"]
        );
        assert_eq!(
            found(&format!(
                "apiVersion: v1\nkind: !!binary U2VjcmV0\n{secret}"
            )),
            ["document 1 (Secret s)"]
        );
        assert_eq!(
            found("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\"}\n{\"apiVersion\":\"v1\",\"kind\":\"\\u0053ecret\",\"metadata\":{\"name\":\"s\"},\"stringData\":{\"k\":\"v\"}}\n"),
            ["document 2 (Secret s)"]
        );
        assert_eq!(
            found(&format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\n---#x\napiVersion: v1\nkind: Secret\n{secret}")),
            ["document 2 (Secret s)"]
        );
    }

    #[test]
    fn what_kubectl_does_not_create_passes() {
        let secret = "metadata: {name: s}\nstringData: {k: v}\n";
        for text in [
            format!("apiVersion: v1\nkind: ConfigMap\n{secret}"),
            format!("apiVersion: core/v1\nkind: Secret\n{secret}"),
            format!("apiVersion: v1\nkind: secret\n{secret}"),
            format!("b: &b {{kind: ConfigMap}}\napiVersion: v1\nkind: Secret\n<<: *b\n{secret}"),
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: ~\n".to_string(),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nItems:\n- {{apiVersion: v1, kind: Secret, {}}}\n",
                "stringData: {k: v}"
            ),
        ] {
            assert_eq!(found(&text), Vec::<String>::new(), "{text}");
        }
    }

    #[test]
    fn a_template_is_skipped_unless_it_declares_a_secret() {
        let cm = judge(
            b"{{- if .Values.enabled }}\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n{{- end }}\n",
            &Limits::default(),
        );
        assert!(cm.findings.is_empty());
        assert_eq!(cm.skipped.len(), 1);
        let s = judge(b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}\nstringData:\n  k: {{ .Values.k }}\n", &Limits::default());
        assert!(s.findings[0].unparsable);
        // Declared through a line separator in a comment: still declared.
        let s = judge(
            "# x\u{2028}kind: Secret\nname: {{ .Release.Name }}\n".as_bytes(),
            &Limits::default(),
        );
        assert!(s.findings[0].unparsable);
        // Escaped so no textual test sees it: cannot be told, fails closed.
        let s = judge(
            b"\"kind\": \"\\u0053ecret\"\nname: {{ .Release.Name }}\n",
            &Limits::default(),
        );
        assert!(s.findings[0].unparsable, "{s:?}");
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
    fn over_the_limits_fails_closed() {
        let limits = Limits {
            max_file_bytes: 100,
            max_documents: 3,
        };
        let r = judge(&[b'a'; 101], &limits);
        assert_eq!(
            r.findings[0].to_string(),
            "document 0: cannot be judged: file is 101 bytes, over the limit of 100 bytes"
        );
        let r = judge("a: 1\n---\n".repeat(4).as_bytes(), &limits);
        assert_eq!(
            r.findings[0].to_string(),
            "document 0: cannot be judged: more than 3 documents in one file"
        );
    }

    #[test]
    fn sealed_and_binary_content_pass() {
        assert!(judge(b"\xff\xfe kind", &Limits::default())
            .findings
            .is_empty());
        assert!(judge(
            b"apiVersion: gitops-seal.dev/v1\nkind: SealedSecret\nmetadata: {name: x}\n",
            &Limits::default()
        )
        .findings
        .is_empty());
    }
}
