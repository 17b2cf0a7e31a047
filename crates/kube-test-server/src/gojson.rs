//! Go's `json.Unmarshal(b, &map[string]interface{}{})`, as kube-apiserver runs it on the value of
//! a `kubernetes.io/dockerconfigjson` or `kubernetes.io/dockercfg` Secret: `None` when it
//! succeeds, else the error text Go's `encoding/json` gives. Its scanner (`scanner.go`) names the
//! first bad byte (`invalid character 'X' after top-level value`): the real server puts that text
//! in its 422 although it redacts the value itself, which is why our callers must never copy the
//! server's message into what they report.

/// The error `json.Unmarshal` returns for `input` into a `map[string]interface{}`, or `None`.
pub fn unmarshal_object_error(input: &[u8]) -> Option<String> {
    let mut s = Scanner { b: input, i: 0 };
    let top = match s.value() {
        Ok(kind) => kind,
        Err(e) => return Some(e),
    };
    s.ws();
    if let Some(&c) = s.b.get(s.i) {
        return Some(format!(
            "invalid character {} after top-level value",
            quote_char(c)
        ));
    }
    match top {
        // `null` unmarshals into a map as a nil map, without an error.
        "object" | "null" => None,
        other => Some(format!(
            "json: cannot unmarshal {other} into Go value of type map[string]interface {{}}"
        )),
    }
}

/// Go's `quoteChar`: `'\''` for a quote, else `strconv.Quote` of the byte as a rune, with
/// single quotes.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".to_string(),
        b'"' => "'\"'".to_string(),
        0x20..=0x7e => format!("'{}'", c as char),
        b'\x07' => "'\\a'".into(),
        b'\x08' => "'\\b'".into(),
        b'\x0c' => "'\\f'".into(),
        b'\n' => "'\\n'".into(),
        b'\r' => "'\\r'".into(),
        b'\t' => "'\\t'".into(),
        b'\x0b' => "'\\v'".into(),
        0x00..=0x1f | 0x7f => format!("'\\x{c:02x}'"),
        // string(byte) in Go is the rune U+00XX: printable from U+00A1 on, U+00AD excepted.
        0x80..=0xa0 | 0xad => format!("'\\u{c:04x}'"),
        _ => format!("'{}'", char::from(c)),
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

const EOF: &str = "unexpected end of JSON input";

impl Scanner<'_> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn next(&mut self) -> Result<u8, String> {
        let c = *self.b.get(self.i).ok_or_else(|| EOF.to_string())?;
        self.i += 1;
        Ok(c)
    }

    fn err(c: u8, context: &str) -> String {
        format!("invalid character {} {context}", quote_char(c))
    }

    /// One value; returns its kind as Go's UnmarshalTypeError names it.
    fn value(&mut self) -> Result<&'static str, String> {
        self.ws();
        let c = self.next()?;
        match c {
            b'{' => self.object().map(|_| "object"),
            b'[' => self.array().map(|_| "array"),
            b'"' => self.string().map(|_| "string"),
            b'-' | b'0'..=b'9' => self.number(c).map(|_| "number"),
            b't' => self.literal("true").map(|_| "bool"),
            b'f' => self.literal("false").map(|_| "bool"),
            b'n' => self.literal("null").map(|_| "null"),
            _ => Err(Self::err(c, "looking for beginning of value")),
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), String> {
        for expected in word.bytes().skip(1) {
            let c = self.next()?;
            if c != expected {
                return Err(Self::err(
                    c,
                    &format!("in literal {word} (expecting '{}')", expected as char),
                ));
            }
        }
        Ok(())
    }

    fn object(&mut self) -> Result<(), String> {
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let c = self.next()?;
            if c != b'"' {
                return Err(Self::err(c, "looking for beginning of object key string"));
            }
            self.string()?;
            self.ws();
            let c = self.next()?;
            if c != b':' {
                return Err(Self::err(c, "after object key"));
            }
            self.value()?;
            self.ws();
            match self.next()? {
                b',' => continue,
                b'}' => return Ok(()),
                c => return Err(Self::err(c, "after object key:value pair")),
            }
        }
    }

    fn array(&mut self) -> Result<(), String> {
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value()?;
            self.ws();
            match self.next()? {
                b',' => continue,
                b']' => return Ok(()),
                c => return Err(Self::err(c, "after array element")),
            }
        }
    }

    fn string(&mut self) -> Result<(), String> {
        loop {
            match self.next()? {
                b'"' => return Ok(()),
                b'\\' => match self.next()? {
                    b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => {}
                    b'u' => {
                        for _ in 0..4 {
                            let c = self.next()?;
                            if !c.is_ascii_hexdigit() {
                                return Err(Self::err(c, "in \\u hexadecimal character escape"));
                            }
                        }
                    }
                    c => return Err(Self::err(c, "in string escape code")),
                },
                c if c < 0x20 => return Err(Self::err(c, "in string literal")),
                _ => {}
            }
        }
    }

    fn digits(&mut self) {
        while matches!(self.b.get(self.i), Some(b'0'..=b'9')) {
            self.i += 1;
        }
    }

    fn number(&mut self, first: u8) -> Result<(), String> {
        let mut c = first;
        if c == b'-' {
            c = self.next()?;
            if !c.is_ascii_digit() {
                return Err(Self::err(c, "in numeric literal"));
            }
        }
        if c != b'0' {
            self.digits();
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            let c = self.next()?;
            if !c.is_ascii_digit() {
                return Err(Self::err(c, "after decimal point in numeric literal"));
            }
            self.digits();
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            let mut c = self.next()?;
            if c == b'+' || c == b'-' {
                c = self.next()?;
            }
            if !c.is_ascii_digit() {
                return Err(Self::err(c, "in exponent of numeric literal"));
            }
            self.digits();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::unmarshal_object_error as e;

    /// The texts Go 1.19's encoding/json gives (the transcript's three, and the scanner's other
    /// states).
    #[test]
    fn go_error_texts() {
        let cases: &[(&str, Option<&str>)] = &[
            (r#"{"auths":{}}"#, None),
            ("null", None),
            (" { } ", None),
            (
                r#"{"auths":{}}Xsecret-tail"#,
                Some("invalid character 'X' after top-level value"),
            ),
            (
                "not json at all",
                Some("invalid character 'o' in literal null (expecting 'u')"),
            ),
            (
                r#"{"a":1} trailing"#,
                Some("invalid character 't' after top-level value"),
            ),
            ("", Some("unexpected end of JSON input")),
            ("{", Some("unexpected end of JSON input")),
            (
                "x",
                Some("invalid character 'x' looking for beginning of value"),
            ),
            (
                "{1:2}",
                Some("invalid character '1' looking for beginning of object key string"),
            ),
            (r#"{"a" 1}"#, Some("invalid character '1' after object key")),
            (
                r#"{"a":1 2}"#,
                Some("invalid character '2' after object key:value pair"),
            ),
            (
                r#"[1 2]"#,
                Some("invalid character '2' after array element"),
            ),
            (
                r#""\q""#,
                Some("invalid character 'q' in string escape code"),
            ),
            (
                "\"a\nb\"",
                Some("invalid character '\\n' in string literal"),
            ),
            ("-x", Some("invalid character 'x' in numeric literal")),
            (
                "1.x",
                Some("invalid character 'x' after decimal point in numeric literal"),
            ),
            (
                "1ex",
                Some("invalid character 'x' in exponent of numeric literal"),
            ),
            ("01", Some("invalid character '1' after top-level value")),
            (
                "[1]",
                Some("json: cannot unmarshal array into Go value of type map[string]interface {}"),
            ),
            (
                "\"s\"",
                Some("json: cannot unmarshal string into Go value of type map[string]interface {}"),
            ),
            (
                "'",
                Some("invalid character '\\'' looking for beginning of value"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(e(input.as_bytes()).as_deref(), *want, "{input:?}");
        }
    }
}
