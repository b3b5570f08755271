//! `name-addr` / `addr-spec` values: From, To, Contact, Route, Record-Route, Refer-To,
//! P-Asserted-Identity (RFC 3261 §20.10, §25.1).

use super::params::{self, parse_header_params};
use super::uri::{Param, Uri};
use thiserror::Error;

/// Why an address did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddrError {
    #[error("unterminated quoted string")]
    Quote,
    #[error("invalid display name")]
    DisplayName,
    #[error("unterminated <")]
    Angle,
    #[error("invalid URI")]
    Uri,
    #[error("invalid parameters")]
    Params,
}

/// A parsed address with its header parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, unquoted.
    pub display: Option<Box<str>>,
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `isfocus`, ...), not URI parameters.
    pub params: Vec<Param>,
}

impl NameAddr {
    /// Parses `[display-name] <uri> *(;param)` or `addr-spec *(;param)`.
    pub fn parse(s: &str) -> Result<NameAddr, AddrError> {
        let s = s.trim();
        let (display, uri_text, rest) = if let Some(after_quote) = s.strip_prefix('"') {
            let end = closing_quote(after_quote).ok_or(AddrError::Quote)?;
            let quoted = &s[..end + 2];
            let display = params::unquote(quoted).ok_or(AddrError::Quote)?;
            let rest = s[end + 2..].trim_start();
            let inner = rest.strip_prefix('<').ok_or(AddrError::Angle)?;
            let close = inner.find('>').ok_or(AddrError::Angle)?;
            (Some(display), &inner[..close], &inner[close + 1..])
        } else if let Some(open) = s.find('<') {
            let name = s[..open].trim();
            let valid = name
                .bytes()
                .all(|b| super::method::is_token_byte(b) || b == b' ' || b == b'\t');
            if !valid {
                return Err(AddrError::DisplayName);
            }
            let inner = &s[open + 1..];
            let close = inner.find('>').ok_or(AddrError::Angle)?;
            let display = (!name.is_empty()).then(|| name.to_string());
            (display, &inner[..close], &inner[close + 1..])
        } else {
            // addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10).
            match s.find(';') {
                Some(i) => (None, s[..i].trim_end(), &s[i..]),
                None => (None, s, ""),
            }
        };
        let uri = Uri::parse(uri_text).map_err(|_| AddrError::Uri)?;
        let rest = rest.trim();
        let params = if rest.is_empty() {
            Vec::new()
        } else {
            let p = rest.strip_prefix(';').ok_or(AddrError::Params)?;
            // `SEMI` must be followed by a parameter (RFC 3261 §20.39); a lone trailing `;`
            // accepted here made a To whose response copy (`;;tag=`) no parser reads back.
            if p.trim().is_empty() {
                return Err(AddrError::Params);
            }
            parse_header_params(p).map_err(|_| AddrError::Params)?
        };
        Ok(NameAddr {
            display: display.map(Into::into),
            uri,
            params,
        })
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// A header parameter by name; `Some(None)` for a flag parameter.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        params::find(&self.params, name).map(|p| p.value.as_deref())
    }
}

impl NameAddr {
    /// Writes the address as a header value in name-addr form, leaving out `tag` (dialogs
    /// add their own) and re-quoting the display name.
    pub fn write_without_tag(&self, out: &mut String) {
        if let Some(d) = &self.display {
            out.push('"');
            for c in d.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                if !c.is_control() || c == '\t' {
                    out.push(c);
                }
            }
            out.push_str("\" ");
        }
        out.push('<');
        out.push_str(self.uri.as_str());
        out.push('>');
        for p in self
            .params
            .iter()
            .filter(|p| !p.name.eq_ignore_ascii_case("tag"))
        {
            out.push(';');
            out.push_str(&p.name);
            if let Some(v) = &p.value {
                out.push('=');
                out.push_str(v);
            }
        }
    }
}

/// Index of the closing quote of a quoted-string body, honouring `\` quoted-pairs.
fn closing_quote(body: &str) -> Option<usize> {
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torture_forms() {
        let a = NameAddr::parse(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(a.display.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(a.tag(), Some("98asjd8"));

        let a =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(a.uri.as_str(), "sip:vivekg@chair-dnrc.example.com");
        assert_eq!(a.tag(), Some("1918181833n"));

        let a = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(a.display.as_deref(), Some("caller"));

        let a = NameAddr::parse("\"BEL:\\\x07 NUL:\\\0 DEL:\\\x7f\" <sip:x@example.com>").unwrap();
        assert_eq!(a.display.as_deref(), Some("BEL:\x07 NUL:\0 DEL:\x7f"));

        let a = NameAddr::parse("<sip:conf@focus.example.com>;isfocus").unwrap();
        assert_eq!(a.param("isfocus"), Some(None));

        let a = NameAddr::parse("<mailto:x@y>;tag=1").unwrap();
        assert!(!a.uri.is_sip());
    }

    /// Fuzz finding (sip_message): `To: sip:user@example.co;` was accepted, and the
    /// response's `To: sip:user@example.co;;tag=t1` then did not parse.
    #[test]
    fn a_trailing_semicolon_without_a_parameter_is_malformed() {
        for bad in [
            "sip:user@example.com;",
            "sip:user@example.com ; ",
            "<sip:user@example.com>;",
            "\"A\" <sip:a@b>;tag=1;",
        ] {
            assert_eq!(
                NameAddr::parse(bad).unwrap_err(),
                AddrError::Params,
                "{bad:?}"
            );
        }
        assert!(NameAddr::parse("sip:user@example.com;tag=1").is_ok());
    }

    #[test]
    fn written_without_tag_parses_back() {
        let a = NameAddr::parse(r#""A \"q\"" <sip:a@b;transport=tcp>;tag=1;x=y"#).unwrap();
        let mut s = String::new();
        a.write_without_tag(&mut s);
        assert_eq!(s, r#""A \"q\"" <sip:a@b;transport=tcp>;x=y"#);
        let b = NameAddr::parse(&s).unwrap();
        assert_eq!(b.tag(), None);
        assert_eq!((b.display, b.uri), (a.display, a.uri));
    }

    #[test]
    fn malformed_addresses() {
        for bad in [
            r#""Mr J. User <sip:j.user@example.com>"#,
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "< sip:t.watson@example.org >",
            "\"Joe\" <sip:joe@example.org>;;;;",
            "<sip:x@y",
            "\"a\" sip:x@y",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
    }
}
