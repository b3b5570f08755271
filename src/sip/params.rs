//! Header parameters (`;name=value` after a header value, RFC 3261 §7.3.1 / §25.1).

use super::uri::Param;

/// Why a header parameter list did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadParams;

/// Parses the text after the first `;` of a header value into parameters, allowing LWS around
/// `;` and `=` and quoted-string values (kept with their quotes).
pub fn parse_header_params(s: &str) -> Result<Vec<Param>, BadParams> {
    let mut out = Vec::new();
    for item in split_semis(s) {
        let item = item.trim();
        let (name, value) = match item.find('=') {
            Some(i) => (item[..i].trim(), Some(item[i + 1..].trim())),
            None => (item, None),
        };
        if name.is_empty() || !name.bytes().all(super::method::is_token_byte) {
            return Err(BadParams);
        }
        if let Some(v) = value {
            if v.is_empty() {
                return Err(BadParams);
            }
            if v.starts_with('"') {
                unquote(v).ok_or(BadParams)?;
            } else if !v
                .bytes()
                .all(|b| super::method::is_token_byte(b) || b":[]".contains(&b))
            {
                return Err(BadParams);
            }
        }
        out.push(Param {
            name: name.into(),
            value: value.map(Into::into),
        });
    }
    Ok(out)
}

/// Splits at `;` outside quoted strings.
pub(crate) fn split_semis(s: &str) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut pos = 0;
    let mut done = s.is_empty();
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut in_quotes = false;
        let mut escaped = false;
        while pos < bytes.len() {
            let b = bytes[pos];
            if in_quotes {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_quotes = false;
                }
            } else if b == b'"' {
                in_quotes = true;
            } else if b == b';' {
                break;
            }
            pos += 1;
        }
        let item = s.get(start..pos).unwrap_or("");
        if pos >= bytes.len() {
            done = true;
        } else {
            pos += 1;
            start = pos;
        }
        Some(item)
    })
}

/// Decodes a quoted-string (`"..."` with `\` quoted-pairs); `None` when it is not exactly one
/// well-formed quoted string.
pub fn unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => {
                return if chars.as_str().is_empty() {
                    Some(out)
                } else {
                    None
                };
            }
            c => out.push(c),
        }
    }
    None
}

/// Finds a parameter by name, case-insensitively.
pub fn find<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_with_lws_and_quotes() {
        let p = parse_header_params(" tag = 98asjd8 ; q = 0.33;flag; x=\"a;b\\\"c\"").unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].value.as_deref(), Some("98asjd8"));
        assert_eq!(p[2].value, None);
        assert_eq!(p[3].value.as_deref(), Some("\"a;b\\\"c\""));
        assert!(parse_header_params(";;").is_err());
        assert!(parse_header_params("a=").is_err());
        assert!(parse_header_params("a=\"open").is_err());
    }

    #[test]
    fn unquote_rules() {
        assert_eq!(
            unquote(r#""J Rosenberg \\\"""#).as_deref(),
            Some(r#"J Rosenberg \""#)
        );
        assert_eq!(unquote(r#""a" b"#), None);
        assert_eq!(unquote(r#""abc"#), None);
    }
}
