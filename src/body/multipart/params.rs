//! MIME header values with parameters: `value *(";" name "=" (token / quoted-string))`, the
//! shape of Content-Type (RFC 2045 §5.1) and Content-Disposition (RFC 2183).
//!
//! Lenient where senders stray from the grammar without ambiguity: whitespace around `;` and
//! `=`, empty `;;` items, and unquoted values holding tspecials other than `;` (mailers write
//! `boundary=----=_Part_1`). Strict where two readers could disagree: a parameter given twice,
//! an unterminated quoted string, control characters.

use std::borrow::Cow;

/// A parsed header value; parameter values are unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParamValue<'a> {
    /// What precedes the first `;`, trimmed (`multipart/mixed`, `recipient-list`).
    pub(super) main: &'a str,
    /// Parameters in order; names as written (compare them case-insensitively).
    pub(super) params: Vec<(&'a str, Cow<'a, str>)>,
}

impl ParamValue<'_> {
    /// A parameter's value by name, case-insensitively.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

/// RFC 2045 `token`: printable ASCII except space and tspecials.
pub(super) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !br#"()<>@,;:\"/[]?="#.contains(&b)
}

pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Splits `type/subtype` (both tokens); `None` for anything else.
pub(super) fn media_type(main: &str) -> Option<(&str, &str)> {
    let (ty, sub) = main.split_once('/')?;
    (is_token(ty) && is_token(sub)).then_some((ty, sub))
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Parses a header value with parameters; `None` when it is malformed.
pub(super) fn parse(value: &str) -> Option<ParamValue<'_>> {
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return None;
    }
    let bytes = value.as_bytes();
    let semi = bytes.iter().position(|&b| b == b';').unwrap_or(bytes.len());
    let main = value[..semi].trim_matches([' ', '\t']);
    if main.is_empty() || main.bytes().any(|b| is_ws(b) || b == b'"') {
        return None;
    }
    let mut params: Vec<(&str, Cow<'_, str>)> = Vec::new();
    let mut i = semi;
    while i < bytes.len() {
        // At a `;`.
        i += 1;
        while i < bytes.len() && is_ws(bytes[i]) {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        if bytes[i] == b';' {
            continue;
        }
        let name_start = i;
        while i < bytes.len() && is_token_byte(bytes[i]) {
            i += 1;
        }
        let name = &value[name_start..i];
        if name.is_empty() {
            return None;
        }
        while i < bytes.len() && is_ws(bytes[i]) {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            return None;
        }
        i += 1;
        while i < bytes.len() && is_ws(bytes[i]) {
            i += 1;
        }
        let v = if bytes.get(i) == Some(&b'"') {
            let (v, next) = quoted(value, i)?;
            i = next;
            v
        } else {
            let start = i;
            while i < bytes.len() && !is_ws(bytes[i]) && bytes[i] != b';' && bytes[i] != b'"' {
                i += 1;
            }
            if start == i {
                return None;
            }
            Cow::Borrowed(&value[start..i])
        };
        while i < bytes.len() && is_ws(bytes[i]) {
            i += 1;
        }
        if i < bytes.len() && bytes[i] != b';' {
            return None;
        }
        if params.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return None;
        }
        params.push((name, v));
    }
    Some(ParamValue { main, params })
}

/// A quoted-string starting at `value[start] == '"'`: its unescaped text and the index after
/// the closing quote.
fn quoted(value: &str, start: usize) -> Option<(Cow<'_, str>, usize)> {
    let inner = &value[start + 1..];
    let mut owned: Option<String> = None;
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let text = match owned {
                    Some(s) => Cow::Owned(s),
                    None => Cow::Borrowed(&inner[..i]),
                };
                return Some((text, start + 1 + i + 1));
            }
            '\\' => {
                let (_, escaped) = chars.next()?;
                owned
                    .get_or_insert_with(|| inner[..i].to_owned())
                    .push(escaped);
            }
            c => {
                if let Some(s) = owned.as_mut() {
                    s.push(c);
                }
            }
        }
    }
    None
}

/// Writes a parameter value as a token when it is one, else as a quoted-string.
pub(super) fn push_value(out: &mut String, value: &str) {
    if is_token(value) {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let v = parse("multipart/mixed;boundary=\"boundary1\"").unwrap();
        assert_eq!(v.main, "multipart/mixed");
        assert_eq!(v.get("BOUNDARY"), Some("boundary1"));
        assert_eq!(media_type(v.main), Some(("multipart", "mixed")));

        let v =
            parse(" multipart/related ; type=\"application/rlmi+xml\" ;boundary=abc ;").unwrap();
        assert_eq!(v.main, "multipart/related");
        assert_eq!(v.get("type"), Some("application/rlmi+xml"));
        assert_eq!(v.get("boundary"), Some("abc"));

        // Unquoted tspecials other than `;`, as some mailers write them.
        let v = parse("multipart/mixed; boundary=----=_Part_0_1.2").unwrap();
        assert_eq!(v.get("boundary"), Some("----=_Part_0_1.2"));

        let v = parse("recipient-list-history; handling=optional").unwrap();
        assert_eq!(v.main, "recipient-list-history");
        assert_eq!(v.get("handling"), Some("optional"));

        let v = parse(r#"a/b; x="q\"uo\\te; d""#).unwrap();
        assert_eq!(v.get("x"), Some(r#"q"uo\te; d"#));
    }

    #[test]
    fn malformed_values() {
        for bad in [
            "",
            " ; x=1",
            "a/b; x",
            "a/b; x=",
            "a/b; x=\"open",
            "a/b; x=1 2",
            "a/b; x=1; X=2",
            "a/b; =1",
            "a b/c",
            "a/b; x=\"1\"2",
            "a/b\r\n; x=1",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(media_type("multipart"), None);
        assert_eq!(media_type("multi part/mixed"), None);
        assert_eq!(media_type("a/b/c"), None);
    }

    #[test]
    fn values_written_back() {
        for value in ["abc", "a b", "a\"b", "a\\b", "", "x=y", "é"] {
            let mut s = String::from("a/b;x=");
            push_value(&mut s, value);
            assert_eq!(parse(&s).unwrap().get("x"), Some(value), "{s}");
        }
    }
}
