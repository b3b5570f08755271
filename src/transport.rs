//! SIP transports: thin drivers that read datagrams and streams, frame and parse them, and hand
//! the result to a [`Sink`] (the endpoint); and that write bytes to a [`Target`].
//!
//! Nothing here decides anything about SIP beyond framing; the endpoint owns transactions.

mod local;
mod tcp;
pub mod tls;
mod udp;

pub use local::{Face, PerFamily};
pub use tcp::{
    bind_listener, init_metrics as init_stream_metrics, CloseWatch, ConnLimits, ConnPermit,
    TcpRegistry, TcpSettings,
};
pub use tls::{TlsContext, TlsError};
pub use udp::UdpTransport;

use crate::sip::{Message, ParseError};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use thiserror::Error;

/// The largest UDP payload over IPv4 (65,535 less the IP and UDP headers): a message
/// larger than this cannot leave as one datagram.
pub const MAX_DATAGRAM: usize = 65_507;

/// Transport protocol of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Udp,
    Tcp,
    /// TLS over TCP (`sips:`, `transport=tls`).
    Tls,
}

impl Protocol {
    /// Reliable transports need no retransmissions (RFC 3261 §17).
    pub fn is_reliable(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Tls)
    }

    /// The Via token.
    pub fn via_token(self) -> &'static str {
        match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
            Protocol::Tls => "TLS",
        }
    }

    /// Bounded metric label.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
        }
    }
}

/// Identifies one TCP connection.
pub type ConnId = u64;

/// Where a message came from, which is also where its responses go back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    pub protocol: Protocol,
    pub addr: SocketAddr,
    /// The connection it arrived on (stream transports).
    pub conn: Option<ConnId>,
}

/// Why bytes could not be handed to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SendError {
    #[error("connection closed")]
    Closed,
    #[error("send queue full")]
    Full,
    #[error("socket error")]
    Io,
    #[error("message too large for the transport")]
    TooLarge,
}

/// Receives what the transports read.
pub trait Sink: Send + Sync + 'static {
    /// A parsed message, or the reason it did not parse.
    fn on_message(&self, message: Result<Message, ParseError>, source: Target);
    /// A stream became unusable (unframeable bytes); the connection is being closed.
    fn on_stream_error(&self, _source: Target, _error: crate::sip::FrameError) {}
    /// Whether to read a message from `source` at all (flood control before parsing):
    /// `Reject` parses it only to answer [`Sink::on_shed`], `Drop` skips it.
    fn admit(&self, _source: &Target, _data: &[u8]) -> crate::overload::Verdict {
        crate::overload::Verdict::Admit
    }
    /// A message refused to shed load (`reason` is the metric label): a request other than
    /// ACK is answered `503` with `Retry-After`, statelessly.
    fn on_shed(
        &self,
        _message: Result<Message, ParseError>,
        _source: Target,
        _reason: &'static str,
    ) {
    }
}

/// True when `addrs` hold both IPv4 and IPv6 addresses (IPv6 sockets are then IPv6-only).
pub fn both_families(addrs: &[SocketAddr]) -> bool {
    addrs.iter().any(SocketAddr::is_ipv4) && addrs.iter().any(SocketAddr::is_ipv6)
}

/// Of bound addresses `locals`, the index of the first of `peer`'s family (IPv4-mapped
/// counts as IPv4), else 0.
pub fn index_for(locals: &[SocketAddr], peer: std::net::IpAddr) -> usize {
    let v6 = peer.to_canonical().is_ipv6();
    locals.iter().position(|l| l.is_ipv6() == v6).unwrap_or(0)
}

/// The set of running transports.
#[derive(Clone)]
pub struct Transports {
    pub udp: Arc<UdpTransport>,
    pub tcp: Arc<TcpRegistry>,
    /// SIP over TLS, when `[tls]` is configured.
    pub tls: Option<Arc<TcpRegistry>>,
}

impl Transports {
    /// Writes bytes to a target without waiting: UDP to the address; TCP on the target's
    /// connection when it is alive, else on any connection to that address.
    pub fn send(&self, target: &Target, data: Bytes) -> Result<(), SendError> {
        match target.protocol {
            Protocol::Udp => self.udp.send(target.addr, &data),
            Protocol::Tcp => self.tcp.send(target.conn, target.addr, data),
            Protocol::Tls => match &self.tls {
                Some(tls) => tls.send(target.conn, target.addr, data),
                None => Err(SendError::Closed),
            },
        }
    }

    /// The local address a protocol is bound to.
    pub fn local_addr(&self, protocol: Protocol) -> SocketAddr {
        match protocol {
            Protocol::Udp => self.udp.local_addr(),
            Protocol::Tcp => self.tcp.local_addr(),
            Protocol::Tls => self
                .tls
                .as_ref()
                .map_or_else(|| self.tcp.local_addr(), |t| t.local_addr()),
        }
    }

    /// A request that came from `source` was admitted (a participant joined, a member
    /// subscribed): its connection, if any, is never evicted to make room for others.
    pub fn admit(&self, source: &Target) {
        if let (Some(conn), Some(reg)) = (source.conn, self.stream(source.protocol)) {
            reg.admit(conn);
        }
    }

    /// The local address of `protocol` that reaches `peer` (its family's, else the primary).
    pub fn local_addr_for(&self, protocol: Protocol, peer: std::net::IpAddr) -> SocketAddr {
        match protocol {
            Protocol::Udp => self.udp.local_addr_for(peer),
            Protocol::Tcp => self.tcp.local_addr_for(peer),
            Protocol::Tls => self
                .tls
                .as_ref()
                .map_or_else(|| self.tcp.local_addr_for(peer), |t| t.local_addr_for(peer)),
        }
    }

    /// Tells `watch` (once) when the connection of `source` closes (see
    /// [`TcpRegistry::watch`]); a datagram source has no connection, and the watch is
    /// dropped. A connection already closed calls `watch` at once.
    pub fn watch_close(&self, source: &Target, key: u64, watch: CloseWatch) {
        let (Some(conn), Some(reg)) = (source.conn, self.stream(source.protocol)) else {
            return;
        };
        if let Err(watch) = reg.watch(conn, key, watch) {
            watch(*source);
        }
    }

    /// The stream registry of a reliable protocol.
    pub fn stream(&self, protocol: Protocol) -> Option<&Arc<TcpRegistry>> {
        match protocol {
            Protocol::Udp => None,
            Protocol::Tcp => Some(&self.tcp),
            Protocol::Tls => self.tls.as_ref(),
        }
    }
}
