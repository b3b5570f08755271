//! The Via header (RFC 3261 §20.42, §18.2.1; RFC 3581 `rport`).

use super::params::parse_header_params;
use super::uri::{split_host_port, Host, Param};
use std::fmt;
use thiserror::Error;

/// RFC 3261 branch magic cookie: branches that start with it are globally unique.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// Why a Via value did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ViaError {
    #[error("invalid sent-protocol")]
    Protocol,
    #[error("invalid sent-by")]
    SentBy,
    #[error("invalid parameters")]
    Params,
}

/// The transport named in a Via.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ViaTransport {
    Udp,
    Tcp,
    Tls,
    Sctp,
    Ws,
    Wss,
    Other(Box<str>),
}

impl ViaTransport {
    fn parse(s: &str) -> ViaTransport {
        match s.to_ascii_uppercase().as_str() {
            "UDP" => ViaTransport::Udp,
            "TCP" => ViaTransport::Tcp,
            "TLS" => ViaTransport::Tls,
            "SCTP" => ViaTransport::Sctp,
            "WS" => ViaTransport::Ws,
            "WSS" => ViaTransport::Wss,
            _ => ViaTransport::Other(s.into()),
        }
    }

    /// Wire token.
    pub fn as_str(&self) -> &str {
        match self {
            ViaTransport::Udp => "UDP",
            ViaTransport::Tcp => "TCP",
            ViaTransport::Tls => "TLS",
            ViaTransport::Sctp => "SCTP",
            ViaTransport::Ws => "WS",
            ViaTransport::Wss => "WSS",
            ViaTransport::Other(s) => s,
        }
    }
}

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub transport: ViaTransport,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Vec<Param>,
    /// A SIP version other than `2.0`, which only [`Via::parse_lenient`] lets through: the
    /// `505` to such a request copies its Via as it came.
    pub other_version: Option<Box<str>>,
}

impl Via {
    /// Parses one Via value (`SIP / 2.0 / UDP host:port;params`, LWS allowed around `/`).
    pub fn parse(s: &str) -> Result<Via, ViaError> {
        let (via, params) = Self::parse_head(s, false)?;
        let params = match params {
            Some(p) => parse_header_params(p).map_err(|_| ViaError::Params)?,
            None => Vec::new(),
        };
        Ok(Via { params, ..via })
    }

    /// Parses protocol and sent-by only, skipping malformed parameters and accepting any SIP
    /// version: enough to address a `400` to a request whose Via parameters are broken, or a
    /// `505` to one of another SIP version (RFC 4475 §3.1.2.16).
    pub fn parse_lenient(s: &str) -> Result<Via, ViaError> {
        let (via, params) = Self::parse_head(s, true)?;
        let params = params
            .map(|p| {
                super::params::split_semis(p)
                    .filter_map(|item| parse_header_params(item).ok())
                    .flatten()
                    .collect()
            })
            .unwrap_or_default();
        Ok(Via { params, ..via })
    }

    fn parse_head(s: &str, any_version: bool) -> Result<(Via, Option<&str>), ViaError> {
        let mut rest = s.trim_start();
        let mut parts = [""; 3];
        for (i, part) in parts.iter_mut().enumerate() {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)))
                .unwrap_or(rest.len());
            if end == 0 {
                return Err(ViaError::Protocol);
            }
            *part = &rest[..end];
            rest = rest[end..].trim_start();
            if i < 2 {
                rest = rest
                    .strip_prefix('/')
                    .ok_or(ViaError::Protocol)?
                    .trim_start();
            }
        }
        if !parts[0].eq_ignore_ascii_case("SIP") || (parts[1] != "2.0" && !any_version) {
            return Err(ViaError::Protocol);
        }
        let other_version = (parts[1] != "2.0").then(|| parts[1].into());
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        // sent-by = host [ COLON port ], where COLON may carry LWS.
        let sent_by: String = sent_by.split_whitespace().collect();
        let (host, port) = split_host_port(&sent_by).map_err(|_| ViaError::SentBy)?;
        Ok((
            Via {
                transport: ViaTransport::parse(parts[2]),
                host,
                port,
                params: Vec::new(),
                other_version,
            },
            params,
        ))
    }

    fn param(&self, name: &str) -> Option<Option<&str>> {
        super::params::find(&self.params, name).map(|p| p.value.as_deref())
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// True when the branch carries the RFC 3261 magic cookie and something after it, so it can
    /// identify a transaction by itself (RFC 4475 §3.2.1: a bare cookie does not).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch()
            .is_some_and(|b| b.len() > MAGIC_COOKIE.len() && b.starts_with(MAGIC_COOKIE))
    }

    /// True when the client asked for `rport` (RFC 3581).
    pub fn wants_rport(&self) -> bool {
        self.param("rport").is_some()
    }

    /// Writes this Via with `received`/`rport` set as RFC 3261 §18.2.1 and RFC 3581 require of
    /// a server that received it from `source`.
    pub fn write_received(
        &self,
        out: &mut impl fmt::Write,
        source: std::net::SocketAddr,
    ) -> fmt::Result {
        let version = self.other_version.as_deref().unwrap_or("2.0");
        write!(
            out,
            "SIP/{version}/{} {}",
            self.transport.as_str(),
            self.host
        )?;
        if let Some(p) = self.port {
            write!(out, ":{p}")?;
        }
        for p in &self.params {
            if p.name.eq_ignore_ascii_case("received") {
                continue;
            }
            if p.name.eq_ignore_ascii_case("rport") {
                write!(out, ";rport={}", source.port())?;
                continue;
            }
            write!(out, ";{}", p.name)?;
            if let Some(v) = &p.value {
                write!(out, "={v}")?;
            }
        }
        // RFC 3261 grammar: received carries a bare IPv6address, without brackets.
        write!(out, ";received={}", source.ip())?;
        Ok(())
    }

    /// True when the source address differs from sent-by or `rport` was asked for, so the
    /// response's top Via must be rewritten.
    pub fn needs_received(&self, source: std::net::SocketAddr) -> bool {
        self.wants_rport() || self.host.ip() != Some(source.ip())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torture_vias() {
        let v = Via::parse("SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, ViaTransport::Udp);
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert!(!v.has_rfc3261_branch());

        let v =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(v.transport, ViaTransport::Tcp);
        assert!(v.has_rfc3261_branch());

        let v =
            Via::parse("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3")
                .unwrap();
        assert_eq!(v.port, None);
        let v =
            Via::parse("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3")
                .unwrap();
        assert!(v.has_rfc3261_branch());

        let v = Via::parse("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK").unwrap();
        assert!(!v.has_rfc3261_branch());

        let v = Via::parse("SIP/2.0/TLS-SCTP a.example.com:5061 ;branch=z9hG4bKx;rport").unwrap();
        assert_eq!(v.transport, ViaTransport::Other("TLS-SCTP".into()));
        assert!(v.wants_rport());
    }

    #[test]
    fn bad_vias() {
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse_lenient("SIP/2.0/UDP 192.0.2.15;;").is_ok());
        assert!(Via::parse("SIP/3.0/UDP a").is_err());
        // A 505 must still reach a client of another SIP version, with its Via as it came.
        let v = Via::parse_lenient("SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw").unwrap();
        let mut s = String::new();
        v.write_received(&mut s, "127.0.0.1:40000".parse().unwrap())
            .unwrap();
        assert_eq!(
            s,
            "SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw;received=127.0.0.1"
        );
        assert!(Via::parse("SIP/2.0 a").is_err());
        assert!(Via::parse("").is_err());
        assert!(Via::parse("SIP/2.0/UDP").is_err());
    }

    #[test]
    fn received_and_rport_written() {
        let v = Via::parse("SIP/2.0/UDP client.example.com:5070;branch=z9hG4bK1;rport").unwrap();
        let mut s = String::new();
        v.write_received(&mut s, "127.0.0.1:40000".parse().unwrap())
            .unwrap();
        assert_eq!(
            s,
            "SIP/2.0/UDP client.example.com:5070;branch=z9hG4bK1;rport=40000;received=127.0.0.1"
        );
    }
}
