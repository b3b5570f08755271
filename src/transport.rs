//! SIP transports: thin drivers that read datagrams and streams, frame and parse them, and hand
//! the result to a [`Sink`] (the endpoint); and that write bytes to a [`Target`].
//!
//! Nothing here decides anything about SIP beyond framing; the endpoint owns transactions.

mod tcp;
mod udp;

pub use tcp::{TcpRegistry, TcpSettings};
pub use udp::UdpTransport;

use crate::sip::{Message, ParseError};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use thiserror::Error;

/// Transport protocol of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Udp,
    Tcp,
}

impl Protocol {
    /// Reliable transports need no retransmissions (RFC 3261 §17).
    pub fn is_reliable(self) -> bool {
        matches!(self, Protocol::Tcp)
    }

    /// The Via token.
    pub fn via_token(self) -> &'static str {
        match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
        }
    }

    /// Bounded metric label.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
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
}

/// The set of running transports.
#[derive(Clone)]
pub struct Transports {
    pub udp: Arc<UdpTransport>,
    pub tcp: Arc<TcpRegistry>,
}

impl Transports {
    /// Writes bytes to a target without waiting: UDP to the address; TCP on the target's
    /// connection when it is alive, else on any connection to that address.
    pub fn send(&self, target: &Target, data: Bytes) -> Result<(), SendError> {
        match target.protocol {
            Protocol::Udp => self.udp.send(target.addr, &data),
            Protocol::Tcp => self.tcp.send(target.conn, target.addr, data),
        }
    }

    /// The local address a protocol is bound to.
    pub fn local_addr(&self, protocol: Protocol) -> SocketAddr {
        match protocol {
            Protocol::Udp => self.udp.local_addr(),
            Protocol::Tcp => self.tcp.local_addr(),
        }
    }
}
