//! UDP: one socket, one receive loop that parses in place.

use super::{Protocol, SendError, Sink, Target};
use crate::overload::Verdict;
use crate::sip::{parse, refuse, Fault, Framing, ParseLimits};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// The bound UDP sockets: one per listen address (IPv4, IPv6 or both).
pub struct UdpTransport {
    sockets: Vec<Arc<UdpSocket>>,
    /// Bound addresses, in the order given (the first is the primary).
    locals: Vec<SocketAddr>,
}

impl UdpTransport {
    /// Binds one socket on `addr`.
    pub fn bind(addr: SocketAddr) -> std::io::Result<UdpTransport> {
        Self::bind_all(&[addr]).map_err(|(_, e)| e)
    }

    /// Binds one socket per address, each with large buffers (bursts of datagrams must not be
    /// dropped by the kernel while a worker is busy). With both families listed, IPv6 sockets
    /// are IPv6-only, so `[::]` and `0.0.0.0` can share a port.
    /// `Err` names the address that could not be bound.
    pub fn bind_all(addrs: &[SocketAddr]) -> Result<UdpTransport, (SocketAddr, std::io::Error)> {
        let both = super::both_families(addrs);
        let mut sockets = Vec::with_capacity(addrs.len());
        let mut locals = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let (socket, local) = bind_one(*addr, both).map_err(|e| (*addr, e))?;
            locals.push(local);
            sockets.push(Arc::new(socket));
        }
        if sockets.is_empty() {
            let none = std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address");
            return Err((SocketAddr::from(([0, 0, 0, 0], 0)), none));
        }
        Ok(UdpTransport { sockets, locals })
    }

    /// The primary (first) bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.locals[0]
    }

    /// Every bound address.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.locals
    }

    /// The bound address that reaches `peer` (its family's, else the primary).
    pub fn local_addr_for(&self, peer: std::net::IpAddr) -> SocketAddr {
        self.locals[super::index_for(&self.locals, peer)]
    }

    /// The socket that reaches `to`: the first of its family, else the primary.
    fn socket_for(&self, to: SocketAddr) -> &UdpSocket {
        let i = super::index_for(&self.locals, to.ip());
        &self.sockets[i]
    }

    /// Sends one datagram without waiting. A full kernel buffer counts as a loss, which UDP
    /// retransmission (RFC 3261 §17) recovers.
    pub fn send(&self, to: SocketAddr, data: &[u8]) -> Result<(), SendError> {
        if data.len() > super::MAX_DATAGRAM {
            return Err(SendError::TooLarge);
        }
        match self.socket_for(to).try_send_to(data, to) {
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

    /// Receives on every socket until cancelled, handing each parsed datagram to the sink.
    pub async fn run(
        self: Arc<Self>,
        sink: Arc<dyn Sink>,
        max_message: usize,
        limits: ParseLimits,
        cancel: CancellationToken,
    ) {
        for socket in self.sockets.iter().skip(1) {
            tokio::spawn(receive(
                socket.clone(),
                sink.clone(),
                max_message,
                limits,
                cancel.clone(),
            ));
        }
        receive(self.sockets[0].clone(), sink, max_message, limits, cancel).await;
    }
}

fn bind_one(addr: SocketAddr, only_v6: bool) -> std::io::Result<(UdpSocket, SocketAddr)> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if only_v6 && addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(8 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    let socket = UdpSocket::from_std(s.into())?;
    let local = socket.local_addr()?;
    Ok((socket, local))
}

/// One socket's receive loop.
async fn receive(
    socket: Arc<UdpSocket>,
    sink: Arc<dyn Sink>,
    max_message: usize,
    limits: ParseLimits,
    cancel: CancellationToken,
) {
    {
        let mut buf = vec![0u8; 65_536];
        loop {
            let received = tokio::select! {
                _ = cancel.cancelled() => return,
                r = socket.recv_from(&mut buf) => r,
            };
            let (n, from) = match received {
                Ok(x) => x,
                // ICMP port unreachable surfaces as an error on some systems: keep reading.
                Err(_) => continue,
            };
            metrics::counter!("focus_transport_bytes_received_total", "transport" => "udp")
                .increment(n as u64);
            let source = Target {
                protocol: Protocol::Udp,
                addr: from,
                conn: None,
            };
            // Flood control before any parsing: a source over its rate costs one lookup.
            let verdict = sink.admit(&source, &buf[..n]);
            if n > max_message {
                metrics::counter!("focus_sip_parse_errors_total", "reason" => "too_large")
                    .increment(1);
                // Answered `513` (RFC 3261 §21.5.14) when what fits of it names where to, so
                // the sender learns why instead of retransmitting into silence.
                if verdict == Verdict::Admit {
                    let head = Bytes::copy_from_slice(&buf[..max_message]);
                    sink.on_message(Err(refuse(head, Fault::TooLarge, &limits)), source);
                }
                continue;
            }
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
