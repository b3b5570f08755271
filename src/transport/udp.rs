//! UDP: one socket, one receive loop that parses in place.

use super::{Protocol, SendError, Sink, Target};
use crate::overload::Verdict;
use crate::sip::{parse, Framing, ParseLimits};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// A bound UDP socket.
pub struct UdpTransport {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
}

impl UdpTransport {
    /// Binds the socket with large buffers (bursts of datagrams must not be dropped by the
    /// kernel while a worker is busy).
    pub fn bind(addr: SocketAddr) -> std::io::Result<UdpTransport> {
        let domain = socket2::Domain::for_address(addr);
        let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        let _ = s.set_recv_buffer_size(8 << 20);
        let _ = s.set_send_buffer_size(8 << 20);
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        let socket = UdpSocket::from_std(s.into())?;
        let local = socket.local_addr()?;
        Ok(UdpTransport {
            socket: Arc::new(socket),
            local,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends one datagram without waiting. A full kernel buffer counts as a loss, which UDP
    /// retransmission (RFC 3261 §17) recovers.
    pub fn send(&self, to: SocketAddr, data: &[u8]) -> Result<(), SendError> {
        if data.len() > 65_507 {
            return Err(SendError::TooLarge);
        }
        match self.socket.try_send_to(data, to) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                metrics::counter!("focus_transport_send_errors_total", "transport" => "udp", "reason" => "full").increment(1);
                Err(SendError::Full)
            }
            Err(_) => {
                metrics::counter!("focus_transport_send_errors_total", "transport" => "udp", "reason" => "io").increment(1);
                Err(SendError::Io)
            }
        }
    }

    /// Receives until cancelled, handing each parsed datagram to the sink.
    pub async fn run(
        self: Arc<Self>,
        sink: Arc<dyn Sink>,
        max_message: usize,
        limits: ParseLimits,
        cancel: CancellationToken,
    ) {
        let mut buf = vec![0u8; 65_536];
        loop {
            let received = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.socket.recv_from(&mut buf) => r,
            };
            let (n, from) = match received {
                Ok(x) => x,
                // ICMP port unreachable surfaces as an error on some systems: keep reading.
                Err(_) => continue,
            };
            metrics::counter!("focus_transport_bytes_received_total", "transport" => "udp")
                .increment(n as u64);
            if n > max_message {
                metrics::counter!("focus_sip_parse_errors_total", "reason" => "too_large")
                    .increment(1);
                continue;
            }
            let source = Target {
                protocol: Protocol::Udp,
                addr: from,
                conn: None,
            };
            // Flood control before any parsing: a source over its rate costs one lookup.
            let verdict = sink.admit(&source, &buf[..n]);
            if verdict == Verdict::Drop {
                continue;
            }
            // Copy out exactly the datagram: a body kept by a session must not pin 64 KiB.
            let data = Bytes::copy_from_slice(&buf[..n]);
            let parsed = parse(data, Framing::Datagram, &limits);
            match verdict {
                Verdict::Reject => sink.on_shed(parsed, source, "source_rate"),
                _ => sink.on_message(parsed, source),
            }
        }
    }
}
