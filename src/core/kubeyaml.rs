//! Reading a manifest file as kubectl reads it, for judging (never for rewriting: what we
//! rewrite keeps its bytes through [`super::yaml`]).
//!
//! kubectl (`kubectl apply -f`, `create -f`, `annotate --local -f`) reads a file in three
//! steps, and each differs from a YAML 1.2 reader:
//!
//! 1. **Splitting** ([`kubectl_chunks`]): a stream that starts with `{` is a JSON stream
//!    (NDJSON or concatenated objects); anything else is cut into documents at lines (split on
//!    `\n` only) that start with `---` and continue with nothing but white space or a
//!    `# comment` (`---#x` is a separator, `--- foo` an error).
//! 2. **Reading a document** ([`read_chunk`]): go-yaml reads YAML 1.1, where U+0085 (NEL),
//!    U+2028 and U+2029 are line breaks *everywhere*, comments included, so
//!    `# note<U+2028>kind: Secret` declares a Secret. Duplicate keys do not fail: the last one
//!    wins, and a merge key (`<<: *base`) sets its keys where it stands, so a later key beats
//!    it and it beats an earlier one. `!!binary` scalars are decoded (a key or a kind may be
//!    spelled in base64). Only a chunk's first document is read, as go-yaml's `Unmarshal`
//!    reads it: `# x<U+2028>---` or `...` inside a chunk hides what follows from kubectl.
//! 3. **Typing an object** ([`parse_group_version`], [`objects`]): an object with an `items`
//!    key (exactly that word, however it was quoted or escaped) is a list whose items are
//!    applied, at any depth, whatever its own kind; `apiVersion` is split as Kubernetes'
//!    `ParseGroupVersion` splits it, so `/v1` is core `v1`.
//!
//! Work is bounded ([`Limits`]): file size and documents per file, nodes per document (alias
//! expansion included) and nesting depth.
//!
//! The judge ([`super::judge`]) builds on this; the sync loop reads what it applies with the
//! same functions, so what the hook passes is what the cluster gets.

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

use super::error::ErrorKind;

/// Default for [`Limits::max_file_bytes`]: 64 MiB (etcd refuses objects over 1.5 MiB; a file
/// of many objects rarely passes a few MiB).
pub const DEFAULT_MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// Default for [`Limits::max_documents`]: 10,000 documents (separators included) per file.
pub const DEFAULT_MAX_DOCUMENTS: usize = 10_000;
/// Nodes one document may hold once aliases are expanded (an alias bomb stops here).
pub const MAX_NODES: usize = 1_000_000;
/// Nesting depth of one document.
pub const MAX_DEPTH: usize = 256;

/// Bounds on the work one file may cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes per file.
    pub max_file_bytes: usize,
    /// Documents per file, counting every part between separators (empty ones too).
    pub max_documents: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_documents: DEFAULT_MAX_DOCUMENTS,
        }
    }
}

impl Limits {
    /// Refuses a file over [`Limits::max_file_bytes`].
    pub fn check_size(&self, size: usize) -> Result<(), ErrorKind> {
        if size > self.max_file_bytes {
            return Err(ErrorKind::FileTooLarge {
                size,
                limit: self.max_file_bytes,
            });
        }
        Ok(())
    }

    /// Refuses the `count`-th document when it is one too many.
    pub fn check_documents(&self, count: usize) -> Result<(), ErrorKind> {
        if count > self.max_documents {
            return Err(ErrorKind::TooManyDocuments {
                limit: self.max_documents,
            });
        }
        Ok(())
    }
}

/// One document as kubectl's splitter cuts it: a slice of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    pub text: &'a str,
    /// 1-based line of the file where `text` starts.
    pub first_line: usize,
}

/// True when kubectl reads `text` as a JSON stream: its first non-blank byte is `{`.
pub fn is_json_stream(text: &str) -> bool {
    text.trim_start_matches([' ', '\t', '\r', '\n'])
        .starts_with('{')
}

/// Cuts a YAML stream where kubectl's splitter cuts it. Lines are split on `\n` only (a NEL
/// or U+2028 is a line break to the YAML reader, not to the splitter). A line starting with
/// `---` followed by anything but white space or a comment is an error to kubectl; here it
/// starts the next document, as YAML reads it, so nothing behind it goes unseen.
pub fn kubectl_chunks<'a>(text: &'a str, limits: &Limits) -> Result<Vec<Chunk<'a>>, ErrorKind> {
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut start_line = 1;
    let mut offset = 0;
    let push = |chunks: &mut Vec<Chunk<'a>>, from: usize, to: usize, line: usize| {
        if to > from {
            limits.check_documents(chunks.len() + 1)?;
            chunks.push(Chunk {
                text: &text[from..to],
                first_line: line,
            });
        }
        Ok::<(), ErrorKind>(())
    };
    for (line_no, line) in (1..).zip(text.split_inclusive('\n')) {
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            let separator_only = rest.is_empty() || rest.starts_with('#');
            push(&mut chunks, start, offset, start_line)?;
            if separator_only {
                start = offset + line.len();
                start_line = line_no + 1;
            } else {
                start = offset;
                start_line = line_no;
            }
        }
        offset += line.len();
    }
    push(&mut chunks, start, text.len(), start_line)?;
    Ok(chunks)
}

/// Replaces the YAML 1.1 line breaks YAML 1.2 reads as content (NEL, LS, PS) with `\n`.
pub fn yaml11_line_breaks(text: &str) -> std::borrow::Cow<'_, str> {
    // ASCII text (nearly all manifests) has none; `is_ascii` is a fast word-wise scan.
    if !text.is_ascii() && text.contains(is_yaml11_break) {
        text.replace(is_yaml11_break, "\n").into()
    } else {
        text.into()
    }
}

/// U+0085, U+2028 or U+2029: line breaks to a YAML 1.1 reader (kubectl's), content to us.
pub fn is_yaml11_break(c: char) -> bool {
    matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Reads one chunk as go-yaml (YAML 1.1) reads it into JSON: its first document (the only one
/// kubectl reads), as a JSON value; none for an empty chunk. Errors are short and never quote
/// the input.
pub fn read_chunk(text: &str) -> Result<Vec<Value>, String> {
    let text = yaml11_line_breaks(text);
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = Reader {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        nodes: 0,
    };
    let mut docs = Vec::new();
    loop {
        match reader.next()? {
            Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(..) => {
                reader.anchors.clear();
                let first = reader.next()?;
                if matches!(first, Event::DocumentEnd) {
                    docs.push(Value::Null);
                    continue;
                }
                let (value, _) = reader.node(first, 0)?;
                docs.push(value);
                // go-yaml's Unmarshal reads the first document of what the splitter hands it
                // (a `...` or a `---` after a U+2028 starts one it never reads).
                break;
            }
            _ => return Err("unexpected YAML event".into()),
        }
    }
    Ok(docs)
}

/// Reads a JSON stream (NDJSON or concatenated objects) as kubectl does.
pub fn read_json_stream(text: &str) -> Result<Vec<Value>, String> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map(|v| v.map_err(|e| format!("invalid JSON at line {}", e.line())))
        .collect()
}

struct Reader<'a> {
    parser: Parser<'a, granit_parser::StrInput<'a>>,
    /// Anchored values and their size in nodes.
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Result<Event<'a>, String> {
        loop {
            match self.parser.next_event() {
                None => return Ok(Event::StreamEnd),
                // The parser's own words may quote the input (a value): only the line.
                Some(Err(e)) => return Err(format!("invalid YAML at line {}", e.marker().line())),
                Some(Ok((Event::Comment(..) | Event::Anchor(..), _))) => continue,
                Some(Ok((event, _))) => return Ok(event),
            }
        }
    }

    fn count(&mut self, n: usize) -> Result<(), String> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(format!(
                "more than {MAX_NODES} nodes once aliases are expanded"
            ));
        }
        Ok(())
    }

    /// One node and its size in nodes.
    fn node(&mut self, event: Event<'a>, depth: usize) -> Result<(Value, usize), String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let before = self.nodes;
        let (value, anchor) = match event {
            Event::Alias(id) => {
                let (value, size) = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| "alias to an unknown anchor".to_string())?;
                self.count(size)?;
                return Ok((value, size));
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1)?;
                (scalar(&text, style, tag.as_deref())?, anchor)
            }
            Event::SequenceStart(_, anchor, _) => {
                self.count(1)?;
                let mut items = Vec::new();
                loop {
                    let e = self.next()?;
                    if matches!(e, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(e, depth + 1)?.0);
                }
                (Value::Array(items), anchor)
            }
            Event::MappingStart(_, anchor, _) => {
                self.count(1)?;
                let mut map = Map::new();
                loop {
                    let e = self.next()?;
                    if matches!(e, Event::MappingEnd) {
                        break;
                    }
                    let merge = is_merge_key(&e);
                    let (key, _) = self.node(e, depth + 1)?;
                    let value_event = self.next()?;
                    let (value, _) = self.node(value_event, depth + 1)?;
                    if merge {
                        merge_into(&mut map, value)?;
                    } else {
                        map.insert(key_string(key)?, value);
                    }
                }
                (Value::Object(map), anchor)
            }
            _ => return Err("unexpected YAML event".into()),
        };
        let size = self.nodes - before;
        if anchor != 0 {
            self.anchors.insert(anchor, (value.clone(), size));
        }
        Ok((value, size))
    }
}

/// `<<` written plain and untagged, or tagged `!!merge`: go-yaml's merge key.
fn is_merge_key(e: &Event<'_>) -> bool {
    match e {
        Event::Scalar(text, style, _, tag) => match tag {
            None => *style == ScalarStyle::Plain && text == "<<",
            Some(tag) => tag.suffix() == "merge" && is_core_tag(tag),
        },
        _ => false,
    }
}

fn is_core_tag(tag: &granit_parser::Tag) -> bool {
    tag.handle() == "tag:yaml.org,2002:" || tag.original_handle() == "!!"
}

/// A merge sets the merged keys where it stands (later keys win over it); in a sequence of
/// mappings the earlier ones win.
fn merge_into(map: &mut Map<String, Value>, value: Value) -> Result<(), String> {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                map.insert(k, v);
            }
            Ok(())
        }
        Value::Array(items) => {
            for item in items.into_iter().rev() {
                match item {
                    Value::Object(_) => merge_into(map, item)?,
                    _ => return Err("a merge key's sequence holds a non-mapping".into()),
                }
            }
            Ok(())
        }
        _ => Err("a merge key's value is not a mapping".into()),
    }
}

/// JSON object keys as sigs.k8s.io/yaml makes them: strings stay, scalars are printed.
fn key_string(key: Value) -> Result<String, String> {
    match key {
        Value::String(s) => Ok(s),
        Value::Null => Ok("null".into()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err("a mapping key is not a scalar".into()),
    }
}

/// A scalar's value. Only what judging needs is typed: null (so `data: ~` holds nothing),
/// `!!binary` decoded, everything else a string.
fn scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&granit_parser::Tag>,
) -> Result<Value, String> {
    if let Some(tag) = tag {
        if is_core_tag(tag) && tag.suffix() == "binary" {
            use base64::Engine;
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| "a !!binary scalar is not valid base64".to_string())?;
            return Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        }
        if is_core_tag(tag) && tag.suffix() == "null" {
            return Ok(Value::Null);
        }
        return Ok(Value::String(text.to_string()));
    }
    if style == ScalarStyle::Plain && matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Ok(Value::Null);
    }
    Ok(Value::String(text.to_string()))
}

/// Kubernetes' `schema.ParseGroupVersion`: `""` and `"/"` are the empty group version; no
/// slash is the core group (`v1`); one slash splits group from version (`/v1` is core `v1`,
/// `apps/v1`); more slashes are an error (`None`).
pub fn parse_group_version(gv: &str) -> Option<(&str, &str)> {
    if gv.is_empty() || gv == "/" {
        return Some(("", ""));
    }
    match gv.matches('/').count() {
        0 => Some(("", gv)),
        1 => gv.split_once('/'),
        _ => None,
    }
}

/// True when `api_version` names core `v1` as Kubernetes parses it (`v1` or `/v1`).
pub fn is_core_v1(api_version: &str) -> bool {
    parse_group_version(api_version) == Some(("", "v1"))
}

/// True when `api_version` is `group/version` as Kubernetes parses it.
pub fn is_group_version(api_version: &str, group: &str, version: &str) -> bool {
    parse_group_version(api_version) == Some((group, version))
}

/// One object kubectl would act on, with where it sits: `""` for a document's own object,
/// `List item 2.1` inside lists.
#[derive(Debug, Clone, Copy)]
pub struct Object<'v> {
    pub path: &'v str,
    pub map: &'v Map<String, Value>,
}

/// The objects kubectl acts on in one document's value: an object with an `items` key is a
/// list (whatever its kind) whose items count, at any depth. The list object itself is also
/// returned, so a judge may err on the side of seeing it.
pub fn objects(value: &Value) -> Vec<(String, &Map<String, Value>)> {
    let mut out = Vec::new();
    collect(value, String::new(), &mut out);
    out
}

fn collect<'v>(value: &'v Value, path: String, out: &mut Vec<(String, &'v Map<String, Value>)>) {
    let Value::Object(map) = value else { return };
    if let Some(Value::Array(items)) = map.get("items") {
        for (i, item) in items.iter().enumerate() {
            let inner = if path.is_empty() {
                format!("List item {}", i + 1)
            } else {
                format!("{path}.{}", i + 1)
            };
            collect(item, inner, out);
        }
    }
    out.push((path, map));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_versions_parse_as_kubernetes_parses_them() {
        // k8s.io/apimachinery/pkg/runtime/schema: ParseGroupVersion.
        assert_eq!(parse_group_version(""), Some(("", "")));
        assert_eq!(parse_group_version("/"), Some(("", "")));
        assert_eq!(parse_group_version("v1"), Some(("", "v1")));
        assert_eq!(parse_group_version("/v1"), Some(("", "v1")));
        assert_eq!(parse_group_version("apps/v1"), Some(("apps", "v1")));
        assert_eq!(parse_group_version("apps/"), Some(("apps", "")));
        assert_eq!(parse_group_version("a/b/c"), None);
        assert_eq!(parse_group_version("//v1"), None);
        assert!(is_core_v1("v1") && is_core_v1("/v1"));
        assert!(!is_core_v1("core/v1") && !is_core_v1("v1/") && !is_core_v1(" v1"));
        assert!(is_group_version(
            "gitops-seal.dev/v1",
            "gitops-seal.dev",
            "v1"
        ));
    }

    #[test]
    fn the_splitter_cuts_where_kubectl_cuts() {
        let t = "a: 1\n---\nb: 2\n---#c\nc: 3\n--- # d\n---\n--- x: 4\n----\ny: 5\n";
        let texts: Vec<&str> = kubectl_chunks(t, &Limits::default())
            .unwrap()
            .iter()
            .map(|c| c.text)
            .collect();
        assert_eq!(
            texts,
            ["a: 1\n", "b: 2\n", "c: 3\n", "--- x: 4\n", "----\ny: 5\n"]
        );
        let many = "x: 1\n---\n".repeat(11);
        let limits = Limits {
            max_documents: 10,
            ..Limits::default()
        };
        assert!(matches!(
            kubectl_chunks(&many, &limits),
            Err(ErrorKind::TooManyDocuments { limit: 10 })
        ));
        // Separators alone make no documents.
        assert!(kubectl_chunks(&"---\n".repeat(100), &limits)
            .unwrap()
            .is_empty());
    }

    fn one(text: &str) -> Value {
        let mut docs = read_chunk(text).unwrap();
        assert_eq!(docs.len(), 1, "{text:?}");
        docs.remove(0)
    }

    #[test]
    fn yaml_1_1_line_breaks_end_comments() {
        for brk in ['\u{85}', '\u{2028}', '\u{2029}'] {
            let v = one(&format!("kind: ConfigMap\n# note{brk}kind: Secret\n"));
            assert_eq!(v["kind"], "Secret");
        }
    }

    #[test]
    fn duplicate_and_merge_keys_follow_document_order() {
        assert_eq!(one("kind: ConfigMap\nkind: Secret\n")["kind"], "Secret");
        let v = one("b: &b {kind: ConfigMap}\nkind: Secret\n<<: *b\n");
        assert_eq!(v["kind"], "ConfigMap");
        let v = one("b: &b {kind: Secret}\n<<: *b\nkind: ConfigMap\n");
        assert_eq!(v["kind"], "ConfigMap");
        let v = one("a: &a {kind: A}\nb: &b {kind: B}\n<<: [*a, *b]\n");
        assert_eq!(v["kind"], "A");
        // Quoted, it is an ordinary key.
        assert_eq!(one("\"<<\": {kind: Secret}\n")["<<"]["kind"], "Secret");
    }

    #[test]
    fn escapes_tags_and_binary_are_read() {
        assert!(one("\"\\x69tems\": []\n").get("items").is_some());
        assert_eq!(one("kind: !!binary U2VjcmV0\n")["kind"], "Secret");
        assert_eq!(one("!!binary a2luZA==: Secret\n")["kind"], "Secret");
        assert_eq!(one("kind: !!str Secret\n")["kind"], "Secret");
        assert_eq!(one("\u{feff}kind: \"\\u0053ecret\"\n")["kind"], "Secret");
        assert_eq!(one("data: ~\n")["data"], Value::Null);
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_bounded() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        assert!(read_chunk(&bomb).unwrap_err().contains("aliases"));
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        assert!(read_chunk(&deep).is_err());
    }

    #[test]
    fn lists_are_flattened_by_their_items_key() {
        let v = one("kind: ConfigMapList\nitems:\n- {kind: Secret}\n- items: [{kind: Secret}]\n");
        let paths: Vec<String> = objects(&v).into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["List item 1", "List item 2.1", "List item 2", ""]);
    }

    #[test]
    fn json_streams_are_read_object_by_object() {
        let t = "{\"kind\":\"ConfigMap\"}\n{\"kind\":\"\\u0053ecret\"}\n";
        assert!(is_json_stream(t));
        let v = read_json_stream(t).unwrap();
        assert_eq!(v[1]["kind"], "Secret");
    }
}
