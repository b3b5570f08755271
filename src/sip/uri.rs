//! URIs: SIP/SIPS (RFC 3261 §19.1, RFC 5118 IPv6 references), `tel` (RFC 3966) and any other
//! absolute URI kept opaque.
//!
//! Our own grammar, not rsip's: rsip 0.4 rejects IPv6 references and `tel:` URIs and splits
//! user parts that carry `;` at the wrong place (measured), and a focus must get all three right.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

/// Why a URI did not parse; the text becomes part of a `400` reason phrase.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UriError {
    #[error("missing scheme")]
    MissingScheme,
    #[error("invalid scheme")]
    BadScheme,
    #[error("invalid host")]
    BadHost,
    #[error("invalid port")]
    BadPort,
    #[error("invalid user part")]
    BadUser,
    #[error("invalid parameter")]
    BadParam,
    #[error("invalid character")]
    BadChar,
}

/// URI scheme.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    /// Any other absolute-URI scheme (answered `416` where a SIP URI is needed).
    Other(Box<str>),
}

impl Scheme {
    fn as_str(&self) -> &str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(s) => s,
        }
    }
}

/// The host part of a SIP URI or Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name as written (compare with [`Host::matches`], case-insensitively).
    Domain(Box<str>),
    Ip(IpAddr),
}

impl Host {
    /// Parses `hostname`, `IPv4address` or `[IPv6reference]`.
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError::BadHost)?;
            return inner
                .parse::<Ipv6Addr>()
                .ok()
                .or_else(|| ipv6_with_abnf_bug(inner))
                .map(|a| Host::Ip(IpAddr::V6(a)))
                .ok_or(UriError::BadHost);
        }
        if s.is_empty() {
            return Err(UriError::BadHost);
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return s
                .parse::<Ipv4Addr>()
                .map(|a| Host::Ip(IpAddr::V4(a)))
                .map_err(|_| UriError::BadHost);
        }
        let ok = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !ok || s.starts_with('.') || s.starts_with('-') {
            return Err(UriError::BadHost);
        }
        Ok(Host::Domain(s.into()))
    }

    /// True when both name the same host (domains compare case-insensitively).
    pub fn matches(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            (Host::Ip(a), Host::Ip(b)) => a == b,
            _ => false,
        }
    }

    /// The IP address when the host is a literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ip(ip) => Some(*ip),
            Host::Domain(_) => None,
        }
    }

    /// Parses a host as an operator writes it in configuration or on the command line: what
    /// [`Host::parse`] takes, and also a bare IPv6 address (`::1`), which only a URI needs
    /// in brackets.
    pub fn parse_config(s: &str) -> Result<Host, UriError> {
        match s.parse::<Ipv6Addr>() {
            Ok(a) => Ok(Host::Ip(IpAddr::V6(a))),
            Err(_) => Host::parse(s),
        }
    }

    /// `host:port` as every URI, Via sent-by and MSRP path the focus writes needs it: an
    /// IPv6 literal in brackets (RFC 3261 §25.1, RFC 5118 §4.1). The one place the focus
    /// writes a host with a port.
    pub fn with_port(&self, port: u16) -> HostPort<'_> {
        HostPort {
            host: self,
            port: Some(port),
        }
    }
}

/// A host with an optional port, written as a URI or Via writes it (see [`Host::with_port`]).
#[derive(Debug, Clone, Copy)]
pub struct HostPort<'a> {
    pub host: &'a Host,
    pub port: Option<u16>,
}

impl fmt::Display for HostPort<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => write!(f, "{}", self.host),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// A `name[=value]` parameter (URI or header parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: Box<str>,
    pub value: Option<Box<str>>,
}

/// A parsed URI; `Display` gives back the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Scheme,
    /// User part (SIP) or the subscriber number (tel), still escaped.
    pub user: Option<Box<str>>,
    pub password: Option<Box<str>>,
    /// Present for SIP and SIPS URIs.
    pub host: Option<Host>,
    pub port: Option<u16>,
    pub params: Vec<Param>,
    pub headers: Vec<Param>,
    raw: Box<str>,
}

impl Uri {
    /// Parses an absolute URI.
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.bytes()
            .any(|b| b <= b' ' || b == 0x7f || b == b'<' || b == b'>' || b == b'"')
        {
            return Err(UriError::BadChar);
        }
        let colon = s.find(':').ok_or(UriError::MissingScheme)?;
        let (scheme_text, rest) = (&s[..colon], &s[colon + 1..]);
        let mut chars = scheme_text.bytes();
        let first_ok = chars.next().is_some_and(|b| b.is_ascii_alphabetic());
        if !first_ok
            || !chars.all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        {
            return Err(UriError::BadScheme);
        }
        let scheme = if scheme_text.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_text.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme_text.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            Scheme::Other(scheme_text.to_ascii_lowercase().into())
        };
        let mut uri = Uri {
            scheme,
            user: None,
            password: None,
            host: None,
            port: None,
            params: Vec::new(),
            headers: Vec::new(),
            raw: s.into(),
        };
        match uri.scheme {
            Scheme::Sip | Scheme::Sips => parse_sip_rest(rest, &mut uri)?,
            Scheme::Tel => {
                let (number, params) = match rest.find(';') {
                    Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                    None => (rest, None),
                };
                if number.is_empty() {
                    return Err(UriError::BadUser);
                }
                uri.user = Some(number.into());
                if let Some(p) = params {
                    uri.params = parse_params(p, ';')?;
                }
            }
            Scheme::Other(_) => {
                if rest.is_empty() {
                    return Err(UriError::BadScheme);
                }
            }
        }
        Ok(uri)
    }

    /// True for `sip:` and `sips:` URIs.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// The user part with `%HH` escapes decoded (RFC 3261 §19.1.4 compares it so).
    pub fn user_unescaped(&self) -> Option<Cow<'_, str>> {
        self.user.as_deref().map(unescape)
    }

    /// A URI parameter's value by name (case-insensitive); `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_deref())
    }

    /// The address-of-record form `scheme:user@host` without port, parameters or headers, with
    /// the user unescaped and the host lower-cased: the key the focus compares identities by.
    pub fn aor(&self) -> String {
        let mut out = String::with_capacity(self.raw.len());
        out.push_str(self.scheme.as_str());
        out.push(':');
        match (&self.scheme, &self.host) {
            (Scheme::Sip | Scheme::Sips, Some(host)) => {
                if let Some(u) = self.user_unescaped() {
                    out.push_str(&u);
                    out.push('@');
                }
                match host {
                    Host::Domain(d) => out.push_str(&d.to_ascii_lowercase()),
                    other => out.push_str(&other.to_string()),
                }
            }
            (Scheme::Tel, _) => out.push_str(self.user.as_deref().unwrap_or("")),
            _ => {
                let rest = self.raw.split_once(':').map(|x| x.1).unwrap_or("");
                out.push_str(rest);
            }
        }
        out
    }

    /// The text this URI was parsed from.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// RFC 5118 §4.10: the IPv6reference ABNF of RFC 3261 lets a `::` be followed by the `:` of
/// an embedded IPv4 address (`2001:db8:::192.0.2.1`), and implementations built from it send
/// that; RFC 5118 asks receivers to accept both forms, so `:::` before a dotted quad reads
/// as `::`.
fn ipv6_with_abnf_bug(s: &str) -> Option<Ipv6Addr> {
    let (head, tail) = s.split_once(":::")?;
    if !tail.contains('.') || tail.contains(':') {
        return None;
    }
    format!("{head}::{tail}").parse().ok()
}

fn parse_sip_rest(rest: &str, uri: &mut Uri) -> Result<(), UriError> {
    // userinfo may contain ';', '?', '/' and ':' (RFC 3261 user-unreserved), but never '@',
    // while params and headers never contain a raw '@': the last '@' ends the userinfo.
    let (userinfo, hostpart) = match rest.rfind('@') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    if let Some(ui) = userinfo {
        let (user, password) = match ui.find(':') {
            Some(i) => (&ui[..i], Some(&ui[i + 1..])),
            None => (ui, None),
        };
        if user.is_empty() || !user.bytes().all(is_user_byte) {
            return Err(UriError::BadUser);
        }
        if let Some(p) = password {
            if !p.bytes().all(is_user_byte) {
                return Err(UriError::BadUser);
            }
            uri.password = Some(p.into());
        }
        uri.user = Some(user.into());
    }
    let (before_headers, headers) = match hostpart.find('?') {
        Some(i) => (&hostpart[..i], Some(&hostpart[i + 1..])),
        None => (hostpart, None),
    };
    let (hostport, params) = match before_headers.find(';') {
        Some(i) => (&before_headers[..i], Some(&before_headers[i + 1..])),
        None => (before_headers, None),
    };
    let (host, port) = split_host_port(hostport)?;
    uri.host = Some(host);
    uri.port = port;
    if let Some(p) = params {
        uri.params = parse_params(p, ';')?;
    }
    if let Some(h) = headers {
        uri.headers = parse_params(h, '&')?;
    }
    Ok(())
}

/// Splits `host[:port]`, where host may be an `[IPv6]` reference.
pub(crate) fn split_host_port(s: &str) -> Result<(Host, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']').ok_or(UriError::BadHost)?;
        let (h, rest) = s.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if rest.is_empty() => (h, None),
            None => return Err(UriError::BadHost),
        }
    } else {
        match s.find(':') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        }
    };
    let host = Host::parse(host)?;
    let port = match port {
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(UriError::BadPort);
            }
            Some(p.parse::<u16>().map_err(|_| UriError::BadPort)?)
        }
        None => None,
    };
    Ok((host, port))
}

fn parse_params(s: &str, sep: char) -> Result<Vec<Param>, UriError> {
    let mut out = Vec::new();
    for item in s.split(sep) {
        let (name, value) = match item.find('=') {
            Some(i) => (&item[..i], Some(&item[i + 1..])),
            None => (item, None),
        };
        if name.is_empty() || !name.bytes().all(is_param_byte) {
            return Err(UriError::BadParam);
        }
        if let Some(v) = value {
            if !v.bytes().all(is_param_byte) {
                return Err(UriError::BadParam);
            }
        }
        out.push(Param {
            name: name.into(),
            value: value.map(Into::into),
        });
    }
    Ok(out)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

fn is_user_byte(b: u8) -> bool {
    is_unreserved(b) || b == b'%' || b"&=+$,;?/".contains(&b) || b >= 0x80
}

fn is_param_byte(b: u8) -> bool {
    is_unreserved(b) || b == b'%' || b"[]/:&+$".contains(&b) || b >= 0x80
}

/// Decodes `%HH` escapes; malformed escapes stay as written, and bytes that do not form UTF-8
/// are replaced, so no input can make comparison fail or panic.
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uris_of_every_shape() {
        let u = Uri::parse("sip:team@focus.example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("team"));
        assert_eq!(u.host, Some(Host::Domain("focus.example.com".into())));
        assert_eq!(u.aor(), "sip:team@focus.example.com");

        let u = Uri::parse("sip:[2001:db8::10]:5070").unwrap();
        assert_eq!(u.host, Some(Host::Ip("2001:db8::10".parse().unwrap())));
        assert_eq!(u.port, Some(5070));

        // RFC 5118 4.3: the whole bracketed text is the address, no port.
        let u = Uri::parse("sip:user@[2001:db8::10:5070]").unwrap();
        assert_eq!(u.port, None);

        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(u.host, Some(Host::Domain("example.com".into())));

        let u = Uri::parse("sip:%61lice@ATLANTA.com;transport=TCP").unwrap();
        assert_eq!(u.aor(), "sip:alice@atlanta.com");
        assert_eq!(u.param("TRANSPORT"), Some(Some("TCP")));

        let u = Uri::parse("sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(u.user_unescaped().as_deref(), Some("sips:user@example.com"));

        let odd = "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com";
        let u = Uri::parse(odd).unwrap();
        assert_eq!(u.host, Some(Host::Domain("example.com".into())));
        assert_eq!(u.to_string(), odd);

        // RFC 5118 §4.10: both the correct form and the one the RFC 3261 ABNF bug produces.
        for text in [
            "sip:user@[2001:db8::192.0.2.1]",
            "sip:user@[2001:db8:::192.0.2.1]",
        ] {
            let u = Uri::parse(text).unwrap();
            assert_eq!(
                u.host,
                Some(Host::Ip("2001:db8::c000:201".parse().unwrap()))
            );
        }

        let u = Uri::parse("sip:user@example.com?Route=%3Csip:example.com%3E").unwrap();
        assert_eq!(u.headers.len(), 1);
    }

    #[test]
    fn tel_and_other_schemes() {
        let u = Uri::parse("tel:+1-212-555-1212;phone-context=x").unwrap();
        assert_eq!(u.scheme, Scheme::Tel);
        assert_eq!(u.user.as_deref(), Some("+1-212-555-1212"));
        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.scheme, Scheme::Other("soap.beep".into()));
        assert!(!u.is_sip());
    }

    #[test]
    fn bad_uris() {
        for bad in [
            "<sip:user@example.com>",
            "sip:user@example.com; lr",
            "sip:user@2001:db8::10",
            "sip:",
            "sip:user@",
            "sip:user@host:99999",
            "sip:user@host;;",
            "nocolon",
            "sip:user@[2001:db8:::10]",
            "sip:user@[2001:db8:::1:192.0.2.1]",
            "1sip:x@y",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unescape_is_total() {
        assert_eq!(unescape("a%41"), "aA");
        assert_eq!(unescape("%"), "%");
        assert_eq!(unescape("%4"), "%4");
        assert_eq!(unescape("%zz"), "%zz");
        assert_eq!(unescape("%00"), "\0");
        assert_eq!(unescape("%ff"), "\u{fffd}");
    }
}
