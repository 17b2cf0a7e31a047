//! Label and field selectors of list and watch requests, parsed and matched as kube-apiserver
//! does (k8s.io/apimachinery `labels.Parse` and `fields.ParseSelector`, and the field labels each
//! kind's registry supports).
//!
//! A parse error is the text kube-apiserver puts in a 400 `BadRequest` `Status`;
//! [`bad_request`] builds that body.

use serde_json::{json, Map, Value};

use crate::registry::ResourceType;

/// The 400 `BadRequest` `Status` a list or watch with an unparseable selector gets.
pub fn bad_request(message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "BadRequest",
        "code": 400
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelOp {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: LabelOp,
    /// Sorted and deduplicated, as `sets.String` keeps them.
    pub values: Vec<String>,
}

/// A parsed label selector: every requirement must hold. Empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Identifier(String),
    DoesNotExist,
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    GreaterThan,
    LessThan,
    OpenPar,
    ClosedPar,
    Comma,
    End,
    Error(String),
}

impl Tok {
    fn literal(&self) -> String {
        match self {
            Tok::Identifier(s) | Tok::Error(s) => s.clone(),
            Tok::DoesNotExist => "!".into(),
            Tok::Equals => "=".into(),
            Tok::DoubleEquals => "==".into(),
            Tok::NotEquals => "!=".into(),
            Tok::In => "in".into(),
            Tok::NotIn => "notin".into(),
            Tok::GreaterThan => ">".into(),
            Tok::LessThan => "<".into(),
            Tok::OpenPar => "(".into(),
            Tok::ClosedPar => ")".into(),
            Tok::Comma => ",".into(),
            Tok::End => "".into(),
        }
    }
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

/// The lexer of `labels.Parse`.
fn lex(input: &str) -> Vec<Tok> {
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while i < chars.len() && is_whitespace(chars[i]) {
            i += 1;
        }
        if i >= chars.len() {
            out.push(Tok::End);
            return out;
        }
        let c = chars[i];
        if is_special(c) {
            let start = i;
            while i < chars.len() && is_special(chars[i]) {
                let candidate: String = chars[start..=i].iter().collect();
                if !matches!(
                    candidate.as_str(),
                    "!" | "!=" | "=" | "==" | "(" | ")" | "," | ">" | "<"
                ) {
                    break;
                }
                i += 1;
            }
            let lit: String = chars[start..i].iter().collect();
            out.push(match lit.as_str() {
                "!" => Tok::DoesNotExist,
                "!=" => Tok::NotEquals,
                "=" => Tok::Equals,
                "==" => Tok::DoubleEquals,
                "(" => Tok::OpenPar,
                ")" => Tok::ClosedPar,
                "," => Tok::Comma,
                ">" => Tok::GreaterThan,
                "<" => Tok::LessThan,
                _ => Tok::Error(lit),
            });
        } else {
            let start = i;
            while i < chars.len() && !is_whitespace(chars[i]) && !is_special(chars[i]) {
                i += 1;
            }
            let lit: String = chars[start..i].iter().collect();
            out.push(match lit.as_str() {
                "in" => Tok::In,
                "notin" => Tok::NotIn,
                _ => Tok::Identifier(lit),
            });
        }
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

/// In the `Values` context keywords are identifiers again (`app in (in)`).
fn as_value(t: Tok) -> Tok {
    match t {
        Tok::In | Tok::NotIn => Tok::Identifier(t.literal()),
        other => other,
    }
}

impl Parser {
    fn peek(&self, values: bool) -> Tok {
        let t = self.toks.get(self.pos).cloned().unwrap_or(Tok::End);
        if values {
            as_value(t)
        } else {
            t
        }
    }
    fn next(&mut self, values: bool) -> Tok {
        let t = self.peek(values);
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }
}

const BINARY_OPERATORS: &str = "in, !=, notin, =, ==, >, <";

/// `labels.Parse`: the selector, or the error text kube-apiserver answers with (400).
pub fn parse(selector: &str) -> Result<LabelSelector, String> {
    LabelSelector::parse(selector)
}

impl LabelSelector {
    pub fn parse(selector: &str) -> Result<LabelSelector, String> {
        let mut p = Parser {
            toks: lex(selector),
            pos: 0,
        };
        let mut requirements = Vec::new();
        loop {
            match p.peek(true) {
                Tok::Identifier(_) | Tok::DoesNotExist => {
                    let r = parse_requirement(&mut p)
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    match p.next(true) {
                        Tok::End => break,
                        Tok::Comma => {
                            let t = p.peek(true);
                            if !matches!(t, Tok::Identifier(_) | Tok::DoesNotExist) {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                ));
                            }
                        }
                        t => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            ))
                        }
                    }
                }
                Tok::End => break,
                t => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    ))
                }
            }
        }
        // labels.Parse sorts the requirements by key
        requirements.sort_by(|a: &Requirement, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.requirements.iter().all(|r| {
            let v = get(&r.key);
            match r.op {
                LabelOp::Equals | LabelOp::In => v.is_some_and(|v| r.values.iter().any(|x| x == v)),
                LabelOp::NotEquals | LabelOp::NotIn => {
                    v.is_none_or(|v| !r.values.iter().any(|x| x == v))
                }
                LabelOp::Exists => v.is_some(),
                LabelOp::DoesNotExist => v.is_none(),
                LabelOp::GreaterThan | LabelOp::LessThan => {
                    let (Some(v), Some(want)) = (v, r.values.first()) else {
                        return false;
                    };
                    let (Ok(have), Ok(want)) = (v.parse::<i64>(), want.parse::<i64>()) else {
                        return false;
                    };
                    if r.op == LabelOp::GreaterThan {
                        have > want
                    } else {
                        have < want
                    }
                }
            }
        })
    }
}

fn parse_requirement(p: &mut Parser) -> Result<Requirement, String> {
    let mut op = None;
    let mut tok = p.next(true);
    if tok == Tok::DoesNotExist {
        op = Some(LabelOp::DoesNotExist);
        tok = p.next(true);
    }
    let Tok::Identifier(key) = tok else {
        return Err(format!("found '{}', expected: identifier", tok.literal()));
    };
    let key_errs = qualified_name_errors(&key);
    if !key_errs.is_empty() {
        return Err(format!(
            "<nil>: Invalid value: {}: {}",
            go_quote(&key),
            key_errs.join("; ")
        ));
    }
    if matches!(p.peek(true), Tok::End | Tok::Comma) {
        let op = op.unwrap_or(LabelOp::Exists);
        return Ok(Requirement {
            key,
            op,
            values: Vec::new(),
        });
    }
    if op == Some(LabelOp::DoesNotExist) {
        // `!key` followed by an operator: the binary operator is parsed and wins (as in Go).
    }
    let op_tok = p.next(false);
    let op = match op_tok {
        Tok::In => LabelOp::In,
        Tok::Equals | Tok::DoubleEquals => LabelOp::Equals,
        Tok::NotEquals => LabelOp::NotEquals,
        Tok::NotIn => LabelOp::NotIn,
        Tok::GreaterThan => LabelOp::GreaterThan,
        Tok::LessThan => LabelOp::LessThan,
        t => {
            return Err(format!(
                "found '{}', expected: {BINARY_OPERATORS}",
                t.literal()
            ))
        }
    };
    let mut values = match op {
        LabelOp::In | LabelOp::NotIn => parse_values(p)?,
        _ => parse_exact_value(p)?,
    };
    values.sort();
    values.dedup();
    // NewRequirement's checks on the values
    let mut errs = Vec::new();
    match op {
        LabelOp::In | LabelOp::NotIn if values.is_empty() => errs.push(
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
                .to_string(),
        ),
        LabelOp::GreaterThan | LabelOp::LessThan => {
            if values.len() != 1 {
                errs.push(format!(
                    "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                    go_string_slice(&values)
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(format!(
                        "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                        go_quote(v)
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, v) in values.iter().enumerate() {
        let msgs = label_value_errors(v);
        if !msgs.is_empty() {
            errs.push(format!(
                "values[{i}][{key}]: Invalid value: {}: {}",
                go_quote(v),
                msgs.join("; ")
            ));
        }
    }
    match errs.len() {
        0 => Ok(Requirement { key, op, values }),
        1 => Err(errs.remove(0)),
        _ => Err(format!("[{}]", errs.join(", "))),
    }
}

fn parse_values(p: &mut Parser) -> Result<Vec<String>, String> {
    let t = p.next(true);
    if t != Tok::OpenPar {
        return Err(format!("found '{}' expected: '('", t.literal()));
    }
    let look = p.peek(true);
    match look {
        Tok::Identifier(_) | Tok::Comma => {
            let s = parse_identifiers_list(p)?;
            if p.next(true) != Tok::ClosedPar {
                return Err(format!("found '{}', expected: ')'", look.literal()));
            }
            Ok(s)
        }
        Tok::ClosedPar => {
            p.next(true);
            Ok(vec![String::new()])
        }
        t => Err(format!(
            "found '{}', expected: ',', ')' or identifier",
            t.literal()
        )),
    }
}

fn parse_identifiers_list(p: &mut Parser) -> Result<Vec<String>, String> {
    let mut s: Vec<String> = Vec::new();
    loop {
        match p.next(true) {
            Tok::Identifier(lit) => {
                s.push(lit);
                match p.peek(true) {
                    Tok::Comma => continue,
                    Tok::ClosedPar => return Ok(s),
                    t => return Err(format!("found '{}', expected: ',' or ')'", t.literal())),
                }
            }
            Tok::Comma => {
                if s.is_empty() {
                    s.push(String::new());
                }
                match p.peek(true) {
                    Tok::ClosedPar => {
                        s.push(String::new());
                        return Ok(s);
                    }
                    Tok::Comma => {
                        p.next(true);
                        s.push(String::new());
                    }
                    _ => {}
                }
            }
            t => {
                return Err(format!(
                    "found '{}', expected: ',', or identifier",
                    t.literal()
                ))
            }
        }
    }
}

fn parse_exact_value(p: &mut Parser) -> Result<Vec<String>, String> {
    if matches!(p.peek(true), Tok::End | Tok::Comma) {
        return Ok(vec![String::new()]);
    }
    match p.next(true) {
        Tok::Identifier(lit) => Ok(vec![lit]),
        t => Err(format!("found '{}', expected: identifier", t.literal())),
    }
}

/// Go's `%q` of a string (ASCII printable kept, `"` and `\` escaped).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn go_string_slice(v: &[String]) -> String {
    format!(
        "[]string{{{}}}",
        v.iter().map(|s| go_quote(s)).collect::<Vec<_>>().join(", ")
    )
}

const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `validation.IsDNS1123Subdomain` messages.
pub(crate) fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    let ok = !s.is_empty()
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
                && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        });
    if !ok {
        errs.push("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string());
    }
    errs
}

/// `validation.IsQualifiedName` messages (label keys, annotation keys, `reportingController`).
pub(crate) fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in dns1123_subdomain_errors(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            name
        }
        _ => {
            errs.push(format!("a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        errs.push(format!("name part {QUALIFIED_NAME_MSG}"));
    }
    errs
}

/// `validation.IsValidLabelValue` messages.
pub(crate) fn label_value_errors(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !v.is_empty() && !is_qualified_name_part(v) {
        errs.push("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string());
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Field selectors

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    /// `true` for `=`/`==`, `false` for `!=`.
    pub equals: bool,
    pub value: String,
}

/// A parsed field selector: every term must hold. Empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub terms: Vec<FieldTerm>,
}

/// The field labels a kind supports beyond `metadata.name` and `metadata.namespace`, as
/// kube-apiserver registers them (core/v1 conversion functions; events.k8s.io's own set).
fn supported_fields(rt: &ResourceType) -> &'static [&'static str] {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Secret") => &["type"],
        ("", "Namespace") => &["status.phase"],
        ("", "Event") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "Event") => &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        _ => &[],
    }
}

/// Split on commas not escaped by a backslash (`fields.splitTerms`).
fn split_terms(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.is_empty() {
        return out;
    }
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// The first `!=`, `==` or `=` not escaped (`fields.splitTerm`).
fn split_term(term: &str) -> Option<(String, &'static str, String)> {
    let b = term.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((term[..i].to_string(), op, term[i + op.len()..].to_string()));
            }
        }
        i += 1;
    }
    None
}

fn unescape(v: &str) -> Result<String, String> {
    if !v.contains(['\\', '=', ',']) {
        return Ok(v.to_string());
    }
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{e}"
                    ))
                }
                None => {
                    return Err("invalid field selector: invalid escape sequence: \\".to_string())
                }
            },
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

impl FieldSelector {
    /// `fields.ParseSelector` then the kind's field label check; errors are the 400 message.
    pub fn parse(selector: &str, rt: &ResourceType) -> Result<FieldSelector, String> {
        let mut parts = split_terms(selector);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(&part) else {
                return Err(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                ));
            };
            let value = unescape(&rhs)?;
            terms.push(FieldTerm {
                field: lhs,
                equals: op != "!=",
                value,
            });
        }
        for t in &terms {
            let ok = t.field == "metadata.name"
                || t.field == "metadata.namespace"
                || supported_fields(rt).contains(&t.field.as_str());
            if !ok {
                return Err(format!("field label not supported: {}", t.field));
            }
        }
        Ok(FieldSelector { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let have = field_value(obj, &t.field);
            (have == t.value) == t.equals
        })
    }
}

/// The value of a field label for an object, as its kind's `GetAttrs`/field set gives it
/// (missing fields are the empty string).
fn field_value(obj: &Value, field: &str) -> String {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match field {
        // core/v1 Event: `source` is source.component
        "source" if obj.get("source").is_some_and(Value::is_object) => {
            s(&obj["source"]["component"])
        }
        // core/v1 Event stores reportingController under reportingComponent
        "reportingComponent" => s(&obj["reportingComponent"]),
        _ => {
            let mut cur = obj;
            for seg in field.split('.') {
                cur = cur.get(seg).unwrap_or(&Value::Null);
            }
            s(cur)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::builtins;

    fn rt(group: &str, kind: &str) -> ResourceType {
        builtins()
            .into_iter()
            .find(|t| t.group == group && t.kind == kind)
            .unwrap()
    }

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// list-watch.json: `app=a` selects s1 ({app: a}).
    #[test]
    fn equality() {
        let s = parse("app=a").unwrap();
        assert!(s.matches(Some(&labels(json!({"app": "a"})))));
        assert!(!s.matches(Some(&labels(json!({"app": "b"})))));
        assert!(!s.matches(None));
        let s = parse("app==a").unwrap();
        assert!(s.matches(Some(&labels(json!({"app": "a", "x": "y"})))));
        let s = parse("app!=a").unwrap();
        assert!(!s.matches(Some(&labels(json!({"app": "a"})))));
        assert!(s.matches(Some(&labels(json!({"app": "b"})))));
        assert!(s.matches(None), "!= matches objects without the key");
    }

    /// list-watch.json: `app in (a,b),!missing` selects {app: a}.
    #[test]
    fn set_based() {
        let s = parse("app in (a,b),!missing").unwrap();
        assert_eq!(s.requirements.len(), 2);
        assert!(s.matches(Some(&labels(json!({"app": "a"})))));
        assert!(s.matches(Some(&labels(json!({"app": "b"})))));
        assert!(!s.matches(Some(&labels(json!({"app": "a", "missing": "x"})))));
        assert!(!s.matches(Some(&labels(json!({"app": "c"})))));
        let s = parse("app notin (a, b)").unwrap();
        assert!(s.matches(Some(&labels(json!({"app": "c"})))));
        assert!(s.matches(None));
        assert!(!s.matches(Some(&labels(json!({"app": "a"})))));
        let s = parse("app").unwrap();
        assert!(s.matches(Some(&labels(json!({"app": ""})))));
        assert!(!s.matches(None));
        let s = parse("app.kubernetes.io/managed-by=gitops-seal").unwrap();
        assert!(s.matches(Some(&labels(
            json!({"app.kubernetes.io/managed-by": "gitops-seal"})
        ))));
        assert!(parse("").unwrap().matches(None));
        let s = parse("x>5").unwrap();
        assert!(s.matches(Some(&labels(json!({"x": "7"})))));
        assert!(!s.matches(Some(&labels(json!({"x": "3"})))));
    }

    /// list-watch.json: `app=` (empty value) selects nothing when no label is empty.
    #[test]
    fn empty_value() {
        let s = parse("app=").unwrap();
        assert_eq!(s.requirements[0].values, vec![String::new()]);
        assert!(!s.matches(Some(&labels(json!({"app": "a"})))));
        assert!(s.matches(Some(&labels(json!({"app": ""})))));
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            parse("app in a").unwrap_err(),
            "unable to parse requirement: found 'a' expected: '('"
        );
        assert_eq!(
            parse("app,").unwrap_err(),
            "found '', expected: identifier after ','"
        );
        assert_eq!(
            parse("=a").unwrap_err(),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            parse("a b").unwrap_err(),
            "unable to parse requirement: found 'b', expected: in, !=, notin, =, ==, >, <"
        );
        assert_eq!(
            parse("a in (b c)").unwrap_err(),
            "unable to parse requirement: found 'c', expected: ',' or ')'"
        );
        assert!(parse("Bad_Key!=x").is_ok());
        let e = parse("app=a b").unwrap_err();
        assert_eq!(e, "found 'b', expected: ',' or 'end of string'");
        let e = parse("app=-bad-").unwrap_err();
        assert!(
            e.starts_with("unable to parse requirement: values[0][app]: Invalid value: \"-bad-\": a valid label must be"),
            "{e}"
        );
        assert_eq!(
            bad_request("x"),
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "x", "reason": "BadRequest", "code": 400})
        );
    }

    #[test]
    fn invalid_key() {
        let e = parse("-bad=x").unwrap_err();
        assert_eq!(
            e,
            format!("unable to parse requirement: <nil>: Invalid value: \"-bad\": name part {QUALIFIED_NAME_MSG}")
        );
    }

    /// events-v1.json: `regarding.name=db` on events.k8s.io Events.
    #[test]
    fn events_v1_field_selector() {
        let ev = rt("events.k8s.io", "Event");
        let s = FieldSelector::parse("regarding.name=db", &ev).unwrap();
        let e = json!({"metadata": {"name": "db.1", "namespace": "t"}, "regarding": {"kind": "SealedSecret", "name": "db"},
            "reportingController": "gitops-seal", "reason": "DecryptFailed", "type": "Warning"});
        assert!(s.matches(&e));
        assert!(!s.matches(&json!({"regarding": {"name": "other"}})));
        let s = FieldSelector::parse(
            "reportingController=gitops-seal,type=Warning,reason!=X,regarding.kind==SealedSecret",
            &ev,
        )
        .unwrap();
        assert!(s.matches(&e));
        assert_eq!(
            FieldSelector::parse("involvedObject.name=db", &ev).unwrap_err(),
            "field label not supported: involvedObject.name"
        );
    }

    #[test]
    fn core_event_and_secret_field_selectors() {
        let ev = rt("", "Event");
        let e = json!({"metadata": {"name": "x", "namespace": "t"}, "involvedObject": {"kind": "Pod", "name": "p", "uid": "u"},
            "source": {"component": "kubelet"}, "reason": "Started", "type": "Normal", "reportingComponent": "rc"});
        for sel in [
            "involvedObject.kind=Pod,involvedObject.name=p",
            "involvedObject.uid=u",
            "source=kubelet",
            "reason=Started,type=Normal",
            "reportingComponent=rc",
            "metadata.namespace=t,metadata.name=x",
        ] {
            assert!(FieldSelector::parse(sel, &ev).unwrap().matches(&e), "{sel}");
        }
        assert_eq!(
            FieldSelector::parse("regarding.name=p", &ev).unwrap_err(),
            "field label not supported: regarding.name"
        );
        let secret = rt("", "Secret");
        let s = FieldSelector::parse("type=kubernetes.io/tls", &secret).unwrap();
        assert!(s.matches(&json!({"type": "kubernetes.io/tls"})));
        assert!(!s.matches(&json!({"type": "Opaque"})));
        let s = FieldSelector::parse("metadata.name!=a", &secret).unwrap();
        assert!(s.matches(&json!({"metadata": {"name": "b"}})));
        assert_eq!(
            FieldSelector::parse("data.k=v", &secret).unwrap_err(),
            "field label not supported: data.k"
        );
        let cm = rt("", "ConfigMap");
        assert_eq!(
            FieldSelector::parse("type=x", &cm).unwrap_err(),
            "field label not supported: type"
        );
        // cluster-scoped: metadata.namespace is the empty string
        let ns = rt("", "Namespace");
        assert!(FieldSelector::parse("metadata.namespace=", &ns)
            .unwrap()
            .matches(&json!({"metadata": {"name": "a"}})));
        assert!(FieldSelector::parse("status.phase=Active", &ns)
            .unwrap()
            .matches(&json!({"status": {"phase": "Active"}})));
    }

    #[test]
    fn field_selector_syntax() {
        let secret = rt("", "Secret");
        assert_eq!(
            FieldSelector::parse("metadata.name", &secret).unwrap_err(),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        assert_eq!(
            FieldSelector::parse("metadata.name=a=b", &secret).unwrap_err(),
            "invalid field selector: unescaped character in value: 61"
        );
        let s = FieldSelector::parse("metadata.name=a\\=b", &secret).unwrap();
        assert!(s.matches(&json!({"metadata": {"name": "a=b"}})));
        assert!(FieldSelector::parse("", &secret).unwrap().is_empty());
        // sorted before the label check: the first unsupported in sorted order is named
        assert_eq!(
            FieldSelector::parse("zz=1,aa=2", &secret).unwrap_err(),
            "field label not supported: aa"
        );
    }
}
