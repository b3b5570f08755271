//! The `http[s]://` URL a setting may hold (`charging.online_url`): its type lives with the
//! settings, so validating the file needs nothing of the component that uses the URL.

use std::fmt;
use thiserror::Error;

/// Why a URL was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("must start with http:// or https://")]
    Scheme,
    #[error("must name a host")]
    Host,
    #[error("invalid port")]
    Port,
    #[error("user information is not supported")]
    UserInfo,
    #[error("path must be visible ASCII")]
    Path,
}

/// `http[s]://host[:port][/path][?query]`, checked once so no request can carry a header
/// injection or an unparseable target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    https: bool,
    /// For the `Host` header: host (IPv6 in brackets) and the port when given.
    authority: String,
    /// The request target, `/` at least.
    target: String,
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<HttpUrl, UrlError> {
        let scheme = |prefix: &str| {
            text.get(..prefix.len())
                .filter(|s| s.eq_ignore_ascii_case(prefix))
                .map(|_| &text[prefix.len()..])
        };
        let (https, rest) = match (scheme("http://"), scheme("https://")) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(UrlError::Scheme),
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let close = v6.find(']').ok_or(UrlError::Host)?;
            let host = &v6[..close];
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(UrlError::Host);
            }
            (host, &v6[close + 1..])
        } else {
            match authority.find(':') {
                Some(colon) => (&authority[..colon], &authority[colon..]),
                None => (authority, ""),
            }
        };
        if !port.is_empty() {
            port.strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|&p| p != 0)
                .ok_or(UrlError::Port)?;
        }
        let host_ok = !host.is_empty()
            && (host.contains(':')
                || host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
        if !host_ok {
            return Err(UrlError::Host);
        }
        if !target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UrlError::Path);
        }
        let target = if target.starts_with('/') {
            target.to_string()
        } else {
            format!("/{target}")
        };
        Ok(HttpUrl {
            https,
            authority: authority.to_string(),
            target,
        })
    }
}

impl HttpUrl {
    /// Whether the server is reached over TLS.
    pub fn is_https(&self) -> bool {
        self.https
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority, self.target)
    }
}
