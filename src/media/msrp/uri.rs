//! MSRP URIs (RFC 4975 §6, §9): `msrp[s]://[userinfo@]host[:port][/session-id];transport[;p]`.
//!
//! They name the hops of To-Path and From-Path and the session a connection is bound to, so
//! equality is the RFC 4975 §6.1 comparison, not text equality: the switch matches a SEND's
//! To-Path against its own `a=path` URI with `==`.

use crate::sip::Host;
use std::fmt;
use std::hash::{Hash, Hasher};
use thiserror::Error;

/// Why an MSRP URI did not parse; the text becomes part of a `400` comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum UriError {
    #[error("not an msrp or msrps URI")]
    Scheme,
    #[error("invalid userinfo")]
    UserInfo,
    #[error("invalid host")]
    Host,
    #[error("invalid port")]
    Port,
    #[error("invalid session-id")]
    SessionId,
    #[error("missing transport")]
    MissingTransport,
    #[error("invalid transport")]
    Transport,
    #[error("invalid URI parameter")]
    Param,
}

/// `msrp` or `msrps` (TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MsrpScheme {
    Msrp,
    Msrps,
}

impl MsrpScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            MsrpScheme::Msrp => "msrp",
            MsrpScheme::Msrps => "msrps",
        }
    }
}

/// One MSRP URI. Fields keep the case they were written in (so `Display` gives the text
/// back); `==` and `Hash` follow RFC 4975 §6.1.
#[derive(Debug, Clone)]
pub struct MsrpUri {
    pub scheme: MsrpScheme,
    /// Still escaped; ignored by comparison (§6.1).
    pub userinfo: Option<String>,
    pub host: Host,
    /// MSRP has no default port in comparisons: an explicit port never equals an absent one.
    pub port: Option<u16>,
    /// Case-sensitive: it is the random part that makes the URI unguessable (§14.1).
    pub session_id: Option<String>,
    /// `tcp` in practice; compared case-insensitively.
    pub transport: String,
    /// Extension parameters `name[=value]`, in order; ignored by comparison.
    pub params: Vec<(String, Option<String>)>,
}

impl MsrpUri {
    /// A `msrp://host:port/session-id;tcp` URI, the form the focus puts in `a=path`.
    pub fn new(scheme: MsrpScheme, host: Host, port: u16, session_id: impl Into<String>) -> Self {
        MsrpUri {
            scheme,
            userinfo: None,
            host,
            port: Some(port),
            session_id: Some(session_id.into()),
            transport: "tcp".to_owned(),
            params: Vec::new(),
        }
    }

    /// Parses one URI.
    pub fn parse(s: &str) -> Result<MsrpUri, UriError> {
        let sep = s.find("://").ok_or(UriError::Scheme)?;
        let scheme = match &s[..sep] {
            x if x.eq_ignore_ascii_case("msrp") => MsrpScheme::Msrp,
            x if x.eq_ignore_ascii_case("msrps") => MsrpScheme::Msrps,
            _ => return Err(UriError::Scheme),
        };
        let rest = &s[sep + 3..];
        // The authority ends at the session-id or at the transport.
        let auth_end = rest.find(['/', ';']).ok_or(UriError::MissingTransport)?;
        let (authority, rest) = rest.split_at(auth_end);
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => {
                let user = &authority[..at];
                if user.is_empty() || !user.bytes().all(is_userinfo_byte) {
                    return Err(UriError::UserInfo);
                }
                (Some(user.to_owned()), &authority[at + 1..])
            }
            None => (None, authority),
        };
        let (host_text, port_text) = split_host_port(hostport)?;
        let host = Host::parse(host_text).map_err(|_| UriError::Host)?;
        let port = match port_text {
            None => None,
            Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse::<u16>().map_err(|_| UriError::Port)?)
            }
            Some(_) => return Err(UriError::Port),
        };
        let (session_id, rest) = match rest.strip_prefix('/') {
            Some(r) => {
                let end = r.find(';').ok_or(UriError::MissingTransport)?;
                let id = &r[..end];
                if id.is_empty() || !id.bytes().all(is_session_byte) {
                    return Err(UriError::SessionId);
                }
                (Some(id.to_owned()), &r[end..])
            }
            None => (None, rest),
        };
        let rest = rest.strip_prefix(';').ok_or(UriError::MissingTransport)?;
        let mut parts = rest.split(';');
        let transport = parts.next().unwrap_or("");
        if transport.is_empty() || !transport.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(UriError::Transport);
        }
        let mut params = Vec::new();
        for p in parts {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            let token = |t: &str| !t.is_empty() && t.bytes().all(is_token_byte);
            if !token(name) || value.is_some_and(|v| !token(v)) {
                return Err(UriError::Param);
            }
            params.push((name.to_owned(), value.map(str::to_owned)));
        }
        Ok(MsrpUri {
            scheme,
            userinfo,
            host,
            port,
            session_id,
            transport: transport.to_owned(),
            params,
        })
    }

    /// Whether `Display` gives text that parses back to this URI: fields are public, and the
    /// writer must not put a space or a line end into a path header.
    pub fn is_writable(&self) -> bool {
        let host_ok = match &self.host {
            Host::Domain(d) => Host::parse(d).is_ok_and(|h| h == self.host),
            Host::Ip(_) => true,
        };
        let token = |t: &str| !t.is_empty() && t.bytes().all(is_token_byte);
        host_ok
            && self
                .userinfo
                .as_deref()
                .is_none_or(|u| !u.is_empty() && u.bytes().all(is_userinfo_byte))
            && self
                .session_id
                .as_deref()
                .is_none_or(|s| !s.is_empty() && s.bytes().all(is_session_byte))
            && !self.transport.is_empty()
            && self.transport.bytes().all(|b| b.is_ascii_alphanumeric())
            && self
                .params
                .iter()
                .all(|(n, v)| token(n) && v.as_deref().is_none_or(token))
    }

    /// True for `msrps` (TLS) URIs.
    pub fn is_secure(&self) -> bool {
        self.scheme == MsrpScheme::Msrps
    }
}

/// Splits `host[:port]`, where host may be an `[IPv6]` reference.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), UriError> {
    if s.starts_with('[') {
        let close = s.find(']').ok_or(UriError::Host)?;
        let after = &s[close + 1..];
        return match after.strip_prefix(':') {
            Some(p) => Ok((&s[..=close], Some(p))),
            None if after.is_empty() => Ok((s, None)),
            None => Err(UriError::Host),
        };
    }
    Ok(match s.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    })
}

/// RFC 3986 `userinfo` (unreserved / pct-encoded / sub-delims / ":") without `;`, which
/// would be taken for the start of the transport.
fn is_userinfo_byte(b: u8) -> bool {
    is_unreserved(b) || b"%!$&'()*+,=:".contains(&b)
}

/// RFC 4975 `session-id = 1*( unreserved / "+" / "=" / "/" )`.
fn is_session_byte(b: u8) -> bool {
    is_unreserved(b) || b == b'+' || b == b'=' || b == b'/'
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

/// RFC 4975 / RFC 3261 `token`.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

impl fmt::Display for MsrpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        if let Some(u) = &self.userinfo {
            write!(f, "{u}@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(s) = &self.session_id {
            write!(f, "/{s}")?;
        }
        write!(f, ";{}", self.transport)?;
        for (name, value) in &self.params {
            match value {
                Some(v) => write!(f, ";{name}={v}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for MsrpUri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MsrpUri::parse(s)
    }
}

/// RFC 4975 §6.1: scheme, host and transport case-insensitive; port exact (absent only equals
/// absent); session-id case-sensitive; userinfo and other parameters not compared.
impl PartialEq for MsrpUri {
    fn eq(&self, other: &Self) -> bool {
        self.scheme == other.scheme
            && self.host.matches(&other.host)
            && self.port == other.port
            && self.session_id == other.session_id
            && self.transport.eq_ignore_ascii_case(&other.transport)
    }
}

impl Eq for MsrpUri {}

impl Hash for MsrpUri {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.scheme.hash(state);
        match &self.host {
            Host::Domain(d) => {
                0u8.hash(state);
                for b in d.bytes() {
                    b.to_ascii_lowercase().hash(state);
                }
            }
            Host::Ip(ip) => {
                1u8.hash(state);
                ip.hash(state);
            }
        }
        self.port.hash(state);
        self.session_id.hash(state);
        self.transport.to_ascii_lowercase().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn uri(s: &str) -> MsrpUri {
        MsrpUri::parse(s).unwrap()
    }

    #[test]
    fn parses_the_rfc_4975_forms() {
        let u = uri("msrp://atlanta.example.com:7654/jshA7weztas;tcp");
        assert_eq!(u.scheme, MsrpScheme::Msrp);
        assert_eq!(u.host, Host::Domain("atlanta.example.com".into()));
        assert_eq!(u.port, Some(7654));
        assert_eq!(u.session_id.as_deref(), Some("jshA7weztas"));
        assert_eq!(u.transport, "tcp");
        assert_eq!(
            u.to_string(),
            "msrp://atlanta.example.com:7654/jshA7weztas;tcp"
        );

        let u = uri("msrps://bob@relay.example.net:2855;tcp;ttl=5;x");
        assert!(u.is_secure());
        assert_eq!(u.userinfo.as_deref(), Some("bob"));
        assert_eq!(u.session_id, None);
        assert_eq!(
            u.params,
            vec![("ttl".into(), Some("5".into())), ("x".into(), None)]
        );
        assert_eq!(
            u.to_string(),
            "msrps://bob@relay.example.net:2855;tcp;ttl=5;x"
        );

        let u = uri("msrp://[2001:db8::1]:8888/s1d=+/x;tcp");
        assert_eq!(u.host, Host::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(u.to_string(), "msrp://[2001:db8::1]:8888/s1d=+/x;tcp");
        let u = uri("msrp://[::1]/abc;tcp");
        assert_eq!(u.port, None);
        assert_eq!(
            uri("msrp://192.0.2.1:1/a;TCP").to_string(),
            "msrp://192.0.2.1:1/a;TCP"
        );
    }

    #[test]
    fn rejects_what_is_not_an_msrp_uri() {
        for (s, e) in [
            ("sip:alice@example.com", UriError::Scheme),
            ("http://example.com/a;tcp", UriError::Scheme),
            ("msrp://example.com:12/abc", UriError::MissingTransport),
            ("msrp://example.com:12", UriError::MissingTransport),
            ("msrp://example.com:12/abc;", UriError::Transport),
            ("msrp://example.com:12/abc;t-c", UriError::Transport),
            ("msrp://example.com:x/abc;tcp", UriError::Port),
            ("msrp://example.com:/abc;tcp", UriError::Port),
            ("msrp://example.com:70000/abc;tcp", UriError::Port),
            ("msrp://exa mple.com/abc;tcp", UriError::Host),
            ("msrp://[2001:db8::1/abc;tcp", UriError::Host),
            ("msrp://[2001:db8::1]x/abc;tcp", UriError::Host),
            ("msrp://[zz::1]/abc;tcp", UriError::Host),
            ("msrp:///abc;tcp", UriError::Host),
            ("msrp://a@/abc;tcp", UriError::Host),
            ("msrp://@h/abc;tcp", UriError::UserInfo),
            ("msrp://h/a%20;tcp", UriError::SessionId),
            ("msrp://h/a b;tcp", UriError::SessionId),
            ("msrp://h/;tcp", UriError::SessionId),
            ("msrp://h/a;tcp;=x", UriError::Param),
            ("msrp://h/a;tcp;a=", UriError::Param),
        ] {
            assert_eq!(MsrpUri::parse(s).map(|u| u.to_string()), Err(e), "{s}");
        }
    }

    #[test]
    fn compares_per_rfc_4975_section_6_1() {
        let a = uri("msrp://Atlanta.Example.com:7654/jshA7weztas;tcp");
        assert_eq!(a, uri("MSRP://atlanta.example.COM:7654/jshA7weztas;TCP"));
        assert_eq!(
            a,
            uri("msrp://carol@atlanta.example.com:7654/jshA7weztas;tcp;x=y")
        );
        assert_ne!(a, uri("msrp://atlanta.example.com:7654/JSHA7WEZTAS;tcp"));
        assert_ne!(a, uri("msrp://atlanta.example.com/jshA7weztas;tcp"));
        assert_ne!(a, uri("msrp://atlanta.example.com:7655/jshA7weztas;tcp"));
        assert_ne!(a, uri("msrps://atlanta.example.com:7654/jshA7weztas;tcp"));
        assert_ne!(a, uri("msrp://atlanta.example.com:7654/jshA7weztas;sctp"));
        assert_ne!(a, uri("msrp://atlanta.example.com:7654;tcp"));
        assert_eq!(
            uri("msrp://[2001:DB8:0::1]:1/a;tcp"),
            uri("msrp://[2001:db8::1]:1/a;tcp")
        );
        let set: HashSet<MsrpUri> = [
            a.clone(),
            uri("msrp://ATLANTA.example.com:7654/jshA7weztas;Tcp"),
        ]
        .into_iter()
        .collect();
        assert_eq!(set.len(), 1);
    }
}
