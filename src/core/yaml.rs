//! YAML plumbing: textual splitting of streams (so documents we do not rewrite pass through
//! byte for byte), bounded parsing, and a small deterministic emitter for what we write.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ErrorKind;

/// Kubernetes objects are at most ~1.5 MiB (etcd's request limit); anything far larger is
/// refused before parsing so time and memory stay bounded.
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;

/// One document of a stream, as a slice of the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawDocument<'a> {
    /// The document's text including its leading `---` line, if any.
    pub text: &'a str,
    /// 1-based line of the file where `text` starts.
    pub first_line: usize,
    /// True when the document holds nothing but markers, comments and blank lines.
    pub is_empty: bool,
}

/// Splits a YAML stream at `---` lines. Concatenating the `text` of every part gives back the
/// input exactly. JSON needs no special case: it never has a line that is only `---`.
pub fn split_documents(input: &str) -> Vec<RawDocument<'_>> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    for (line_no, line) in (1..).zip(input.split_inclusive('\n')) {
        if is_document_marker(line) && offset > start {
            docs.push(make_doc(&input[start..offset], start_line));
            start = offset;
            start_line = line_no;
        }
        offset += line.len();
    }
    if offset > start || docs.is_empty() {
        docs.push(make_doc(&input[start..], start_line));
    }
    docs
}

fn is_document_marker(line: &str) -> bool {
    let line = line.trim_end_matches(['\n', '\r']);
    line == "---" || line.starts_with("--- ") || line.starts_with("---\t")
}

fn make_doc(text: &str, first_line: usize) -> RawDocument<'_> {
    let is_empty = text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..." || l.starts_with("--- #")
    });
    RawDocument {
        text,
        first_line,
        is_empty,
    }
}

/// True when the document is JSON rather than block YAML, so output keeps its syntax.
pub fn is_json(text: &str) -> bool {
    // Past a byte-order mark, comments and a `---` marker (which may carry the content).
    for line in text.trim_start_matches('\u{feff}').lines() {
        let t = line.trim();
        let t = t.strip_prefix("---").map(str::trim_start).unwrap_or(t);
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        return t.starts_with('{') || t.starts_with('[');
    }
    false
}

/// Parses one document with bounded size, alias expansion and nesting. Errors carry the line
/// in the file (not in the document) and never a snippet of the input, which could hold a
/// secret.
pub fn parse<T: DeserializeOwned>(doc: &RawDocument<'_>) -> Result<T, ErrorKind> {
    parse_with(doc, serde_saphyr::Options::default())
}

/// Re-reads an item of a parsed `kind: List` through a document parser, so that the parser's
/// own checks and messages apply to it as to a document of its own: the item is written out as
/// JSON (which every parser here reads as YAML) and `parse` is handed that text as a document
/// starting at `first_line`. The text is wiped afterwards: an item may hold plaintext values.
pub fn reparse_item<T>(
    item: &Value,
    first_line: usize,
    parse: impl FnOnce(&RawDocument<'_>) -> T,
) -> T {
    let text = zeroize::Zeroizing::new(serde_json::to_string(item).expect("values serialise"));
    parse(&RawDocument {
        text: &text,
        first_line,
        is_empty: false,
    })
}

/// Parses a `kind: List` document, which is re-emitted whole, into an untyped value.
///
/// Its Secret and SealedSecret items are read with YAML 1.2's core schema only, so that
/// nothing a typed read keeps as text changes on the way: `n`, `yes` and `0640` stay strings
/// (YAML 1.1 would make a namespace `n` the boolean false). Every other item is read as
/// Kubernetes reads YAML (1.1: `0640` is octal 416, `yes` is true), so that re-emitting it
/// keeps what the API server would have seen.
pub fn parse_list(doc: &RawDocument<'_>) -> Result<serde_json::Value, ErrorKind> {
    let mut as_kubernetes = serde_saphyr::Options::default();
    as_kubernetes.legacy_octal_numbers = true;
    let mut list: serde_json::Value = parse_with(doc, as_kubernetes)?;
    let mut core = serde_saphyr::Options::default();
    core.strict_booleans = true;
    core.leading_zero_numbers_as_strings = true;
    core.underscored_numbers_as_strings = true;
    let mut textual: serde_json::Value = parse_with(doc, core)?;
    let pairs = list
        .get_mut("items")
        .and_then(serde_json::Value::as_array_mut)
        .zip(
            textual
                .get_mut("items")
                .and_then(serde_json::Value::as_array_mut),
        );
    if let Some((items, textual_items)) = pairs {
        for (item, textual_item) in items.iter_mut().zip(textual_items.iter_mut()) {
            let kind = textual_item.get("kind").and_then(serde_json::Value::as_str);
            if matches!(kind, Some("Secret" | "SealedSecret")) {
                wipe(item);
                *item = std::mem::take(textual_item);
            }
        }
    }
    // Both reads held any plaintext the list has.
    wipe(&mut textual);
    Ok(list)
}

/// Parses one document into an untyped value as Kubernetes reads YAML (1.1 scalars: `0640` is
/// octal 416, `yes` is true), for objects that are applied as they are.
pub fn parse_as_kubernetes(doc: &RawDocument<'_>) -> Result<serde_json::Value, ErrorKind> {
    let mut as_kubernetes = serde_saphyr::Options::default();
    as_kubernetes.legacy_octal_numbers = true;
    parse_with(doc, as_kubernetes)
}

/// Parses one document into an untyped value with YAML 1.2's core schema, as Go's yaml.v3
/// reads it into `interface{}` (what SOPS hashes): only `true`/`false` are booleans, so `yes`
/// and `on` stay strings.
pub fn parse_core_schema(doc: &RawDocument<'_>) -> Result<serde_json::Value, ErrorKind> {
    let mut core = serde_saphyr::Options::default();
    core.strict_booleans = true;
    parse_with(doc, core)
}

/// Overwrites every string of a JSON value (it held plaintext) before it is dropped.
pub fn wipe(v: &mut serde_json::Value) {
    use zeroize::Zeroize;
    match v {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(wipe),
        serde_json::Value::Object(m) => m.values_mut().for_each(wipe),
        _ => {}
    }
}

fn parse_with<T: DeserializeOwned>(
    doc: &RawDocument<'_>,
    mut options: serde_saphyr::Options,
) -> Result<T, ErrorKind> {
    if doc.text.len() > MAX_DOCUMENT_BYTES {
        return Err(ErrorKind::TooLarge {
            size: doc.text.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    options.alias_limits.max_total_replayed_events = 100_000;
    options.alias_limits.max_replay_stack_depth = 32;
    serde_saphyr::from_str_with_options(doc.text, options)
        .map_err(|e| yaml_error(&e, doc.first_line))
}

fn yaml_error(e: &serde_saphyr::Error, first_line: usize) -> ErrorKind {
    let bare = e.without_snippet();
    let line = bare
        .location()
        .map(|l| l.line() as usize)
        .filter(|&l| l > 0)
        .map(|l| l + first_line - 1)
        .unwrap_or(first_line);
    let text = bare.to_string();
    let first = text.lines().next().unwrap_or("").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // Drop the parser's own "line N column M: " (relative to the document) for ours.
    let message = match first.strip_prefix("line ") {
        Some(rest) => match rest.find(": ") {
            Some(i) => &rest[i + 2..],
            None => first,
        },
        None => first,
    };
    let message = message.split(" at line ").next().unwrap_or(message);
    let message = message
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(message);
    ErrorKind::Yaml {
        line,
        message: without_quoted_input(message),
    }
}

/// The parser quotes pieces of the input in its messages (`` non-finite float `1e999` ``);
/// in a Secret that piece may be a value, so it is left out. Field and variant names (an
/// unknown field, a wrong enum) are structure, not values, and stay.
fn without_quoted_input(message: &str) -> String {
    if message.contains("field") || message.contains("variant") {
        return message.to_string();
    }
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '`' {
            if !quoted {
                out.push_str("(value hidden)");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// Emits `value` as block YAML with two-space indentation. Strings that YAML could read as
/// anything but the same string are double-quoted; multi-line strings become literal blocks.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => emit_map(&mut out, map, 0),
        other => {
            emit_inline(&mut out, other, 0);
            out.push('\n');
        }
    }
    out
}

fn emit_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    for (k, v) in map {
        push_indent(out, indent);
        write_key(out, k);
        out.push(':');
        emit_value_after_key(out, v, indent);
    }
}

fn emit_value_after_key(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit_seq(out, a, indent + 2);
        }
        other => {
            out.push(' ');
            emit_inline(out, other, indent + 2);
            out.push('\n');
        }
    }
}

fn emit_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        push_indent(out, indent);
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => {
                // First entry on the dash line, the rest aligned under it.
                let mut first = true;
                for (k, v) in m {
                    if !first {
                        push_indent(out, indent + 2);
                    }
                    first = false;
                    write_key(out, k);
                    out.push(':');
                    emit_value_after_key(out, v, indent + 2);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                emit_seq(out, a, indent + 2);
            }
            other => {
                emit_inline(out, other, indent + 2);
                out.push('\n');
            }
        }
    }
}

fn emit_inline(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_str_scalar(out, s, indent),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// Writes a mapping key: plain when unambiguous, else double-quoted (a block scalar cannot be
/// a key).
fn write_key(out: &mut String, k: &str) {
    if is_plain_safe(k) {
        out.push_str(k);
    } else {
        write_double_quoted(out, k);
    }
}

/// Writes a string scalar: plain when unambiguous, a literal block for multi-line text, else
/// double-quoted (JSON string syntax is valid YAML double-quoted syntax).
pub fn write_str_scalar(out: &mut String, s: &str, indent: usize) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else if can_be_literal_block(s) {
        write_literal_block(out, s, indent);
    } else {
        write_double_quoted(out, s);
    }
}

fn write_double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20
                || c == '\u{7f}'
                || c == '\u{85}'
                || c == '\u{2028}'
                || c == '\u{2029}'
                || c == '\u{feff}' =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether `s` can be written as a plain scalar that YAML 1.1 and 1.2 readers both read back
/// as this string. One pass over the bytes: this runs on every value written, ciphertexts
/// included.
fn is_plain_safe(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == b'/' || first == b'_') {
        return false;
    }
    let mut previous = 0u8;
    for &c in bytes {
        let allowed = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'.' | b'_' | b'/' | b'-' | b'=' | b'+' | b'@' | b':' | b',' | b' '
            );
        // ": " starts a mapping value and ", " separates flow items (" #", a comment, cannot
        // occur: '#' is not allowed at all).
        if !allowed || (c == b' ' && matches!(previous, b':' | b',')) {
            return false;
        }
        previous = c;
    }
    if matches!(previous, b' ' | b':') {
        return false;
    }
    // YAML 1.1 readers (Kubernetes' own) treat these as booleans or null.
    ![
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf",
    ]
    .iter()
    .any(|word| s.eq_ignore_ascii_case(word))
}

fn can_be_literal_block(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\t', '\n'])
        && s.chars()
            .all(|c| c == '\n' || c == '\t' || (!c.is_control() && c != '\u{feff}' && c != '\u{2028}' && c != '\u{2029}' && c != '\u{85}'))
        // A line that is only spaces before the end is read back without them.
        && !s.split('\n').any(|l| !l.is_empty() && l.trim_matches(' ').is_empty())
}

fn write_literal_block(out: &mut String, s: &str, indent: usize) {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    out.push('|');
    match trailing {
        0 => out.push('-'),
        1 => {}
        _ => out.push('+'),
    }
    // Under `|+` the extra trailing newlines are the empty lines at the end of the body.
    let body = if trailing == 0 { s } else { &s[..s.len() - 1] };
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            push_indent(out, indent);
            out.push_str(line);
        }
    }
}

/// Emits `value` as JSON with two-space indentation and a final newline.
pub fn to_json(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("values always serialise");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The former, char-by-char definition of [`is_plain_safe`], kept as its specification.
    fn plain_safe_reference(s: &str) -> bool {
        let Some(first) = s.chars().next() else {
            return false;
        };
        if !(first.is_ascii_alphabetic() || first == '/' || first == '_') {
            return false;
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-=+@:, ".contains(c))
        {
            return false;
        }
        if s.ends_with([' ', ':']) || s.contains(": ") || s.contains(" #") || s.contains(", ") {
            return false;
        }
        !matches!(
            s.to_ascii_lowercase().as_str(),
            "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "nan" | "inf"
        )
    }

    #[test]
    fn plain_safety_matches_its_specification() {
        let words = [
            "", "a", "Yes", "NULL", "inf", "infinity", "a: b", "a:b", "a, b", "a,b", "a #b", "a ",
            "a:", "_x", "/p", "9a", "é", "aé", "x=y+z@h", "-a", "a\tb", "a\nb", "YWdl+/=",
        ];
        for w in words {
            assert_eq!(is_plain_safe(w), plain_safe_reference(w), "{w:?}");
        }
        // Every string of up to 3 characters over an alphabet that covers each rule.
        let alphabet = [
            'a', 'N', '9', '/', '_', ':', ',', ' ', '#', '=', '.', '\u{e9}', '-',
        ];
        let mut cases = vec![String::new()];
        for _ in 0..3 {
            let mut next = Vec::new();
            for c in &cases {
                for a in alphabet {
                    next.push(format!("{c}{a}"));
                }
            }
            cases.extend(next.iter().cloned());
            cases = cases
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
        }
        for c in &cases {
            assert_eq!(is_plain_safe(c), plain_safe_reference(c), "{c:?}");
        }
    }

    #[test]
    fn keys_with_line_breaks_are_quoted() {
        let v: Value = serde_json::json!({"a\nb": "x", "ok": {"c\nd": 1}});
        let text = to_yaml(&v);
        let back: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(back, v, "{text}");
    }

    #[test]
    fn json_is_recognised_past_a_marker_comments_and_a_bom() {
        assert!(is_json("{\"kind\": \"Secret\"}"));
        assert!(is_json("---\n# note\n{\"kind\": \"Secret\"}"));
        assert!(is_json("--- {\"kind\": \"Secret\"}"));
        assert!(is_json("\u{feff}{\"kind\": \"Secret\"}"));
        assert!(!is_json("---\nkind: Secret\n"));
    }

    #[test]
    fn split_keeps_every_byte() {
        let input = "# head\na: 1\n---\nb: 2 # c\n--- \n\n---\nc: |\n  ---x\n";
        let docs = split_documents(input);
        let joined: String = docs.iter().map(|d| d.text).collect();
        assert_eq!(joined, input);
        assert_eq!(docs.len(), 4);
        assert_eq!(docs[1].first_line, 3);
        assert!(docs[2].is_empty);
        assert!(!docs[3].is_empty);
    }

    #[test]
    fn strings_round_trip_through_the_emitter() {
        for s in [
            "plain",
            "yes",
            "No",
            "0777",
            "1.0",
            "",
            " lead",
            "trail ",
            "a: b",
            "#x",
            "-x",
            "line\n",
            "two\nlines",
            "keep\n\n",
            "tab\there",
            "multi\n  indented\nlast\n",
            "ctl\u{1}x",
            "quote\"s",
            "back\\slash",
            "ünïcode",
            "a\r\nb",
            "\n",
            "x\n \ny",
        ] {
            let mut m = serde_json::Map::new();
            m.insert("k".into(), Value::String(s.into()));
            let yaml = to_yaml(&Value::Object(m));
            #[derive(serde::Deserialize)]
            struct K {
                k: String,
            }
            let back: K =
                serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{s:?}: {yaml}: {e}"));
            assert_eq!(back.k, s, "emitted as {yaml:?}");
        }
    }
}
