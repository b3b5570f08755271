//! The `http://` URL a setting may hold (`charging.online_url`): its type lives with the
//! settings, so validating the file needs nothing of the component that uses the URL.

use std::fmt;
use thiserror::Error;

/// Why a URL was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("must start with http:// (https is not supported)")]
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

/// `http://host[:port][/path][?query]`, checked once so no request can carry a header
/// injection or an unparseable target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// For connecting: a name or an IP address (IPv6 without brackets).
    host: String,
    port: u16,
    /// For the `Host` header: host (IPv6 in brackets) and the port when given.
    authority: String,
    /// The request target, `/` at least.
    target: String,
}

impl HttpUrl {
    /// For connecting: a name or an IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// For the `Host` header.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The request target, `/` at least.
    pub fn target(&self) -> &str {
        &self.target
    }

    pub fn parse(text: &str) -> Result<HttpUrl, UrlError> {
        let rest = text
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &text[7..])
            .ok_or(UrlError::Scheme)?;
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
        let port = match port {
            "" => 80,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|&p| p != 0)
                .ok_or(UrlError::Port)?,
        };
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
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            target,
        })
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority, self.target)
    }
}
