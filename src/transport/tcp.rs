//! TCP: an accept loop, one reader and one writer task per connection, and a registry so that
//! responses and in-dialog requests go back on the connection they belong to.

use super::{ConnId, Protocol, SendError, Sink, Target};
use crate::sip::{parse, Frame, Framer, Framing, ParseLimits};
use bytes::{Bytes, BytesMut};
use dashmap::DashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// TCP limits.
#[derive(Debug, Clone, Copy)]
pub struct TcpSettings {
    pub max_message: usize,
    pub max_connections: usize,
    pub idle_timeout: Duration,
    /// Messages queued for writing on one connection before sends fail (bounded write queue).
    pub write_queue: usize,
    pub limits: ParseLimits,
}

struct Conn {
    tx: mpsc::Sender<Bytes>,
    peer: SocketAddr,
}

/// Live TCP connections.
pub struct TcpRegistry {
    conns: DashMap<ConnId, Conn>,
    /// Latest connection per peer address, for reuse when sending to an address.
    by_peer: DashMap<SocketAddr, ConnId>,
    next_id: AtomicU64,
    open: AtomicUsize,
    local: SocketAddr,
    settings: TcpSettings,
    listener: std::sync::Mutex<Option<TcpListener>>,
    sink: std::sync::OnceLock<Arc<dyn Sink>>,
    cancel: CancellationToken,
}

impl TcpRegistry {
    /// Binds the listener (the accept loop starts with [`TcpRegistry::run`]).
    pub fn bind(
        addr: SocketAddr,
        settings: TcpSettings,
        cancel: CancellationToken,
    ) -> std::io::Result<TcpRegistry> {
        let domain = socket2::Domain::for_address(addr);
        let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(1024)?;
        let listener = TcpListener::from_std(s.into())?;
        let local = listener.local_addr()?;
        Ok(TcpRegistry {
            conns: DashMap::new(),
            by_peer: DashMap::new(),
            next_id: AtomicU64::new(1),
            open: AtomicUsize::new(0),
            local,
            settings,
            listener: std::sync::Mutex::new(Some(listener)),
            sink: std::sync::OnceLock::new(),
            cancel,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Accepts connections until cancelled.
    pub async fn run(self: Arc<Self>, sink: Arc<dyn Sink>) {
        let _ = self.sink.set(sink);
        let listener = match self.listener.lock() {
            Ok(mut l) => l.take(),
            Err(_) => None,
        };
        let Some(listener) = listener else { return };
        loop {
            let accepted = tokio::select! {
                _ = self.cancel.cancelled() => return,
                r = listener.accept() => r,
            };
            let Ok((stream, peer)) = accepted else {
                // Out of descriptors and similar: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            if self.open.load(Ordering::Relaxed) >= self.settings.max_connections {
                metrics::counter!("focus_tcp_connections_refused_total").increment(1);
                drop(stream);
                continue;
            }
            self.clone().start(stream, peer);
        }
    }

    fn start(self: Arc<Self>, stream: TcpStream, peer: SocketAddr) -> ConnId {
        let _ = stream.set_nodelay(true);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.settings.write_queue);
        self.conns.insert(id, Conn { tx, peer });
        self.by_peer.insert(peer, id);
        self.open.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("focus_tcp_connections_active").increment(1.0);
        let (read, write) = stream.into_split();
        let cancel = self.cancel.child_token();
        tokio::spawn(write_loop(write, rx, cancel.clone()));
        let me = self.clone();
        tokio::spawn(async move {
            me.read_loop(read, id, peer).await;
            cancel.cancel();
            me.forget(id, peer);
        });
        id
    }

    fn forget(&self, id: ConnId, peer: SocketAddr) {
        if self.conns.remove(&id).is_some() {
            self.open.fetch_sub(1, Ordering::Relaxed);
            metrics::gauge!("focus_tcp_connections_active").decrement(1.0);
        }
        self.by_peer.remove_if(&peer, |_, v| *v == id);
    }

    async fn read_loop(
        &self,
        mut read: tokio::net::tcp::OwnedReadHalf,
        id: ConnId,
        peer: SocketAddr,
    ) {
        let Some(sink) = self.sink.get().cloned() else {
            return;
        };
        let source = Target {
            protocol: Protocol::Tcp,
            addr: peer,
            conn: Some(id),
        };
        let mut framer = Framer::new(self.settings.max_message);
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            let n = tokio::select! {
                _ = self.cancel.cancelled() => return,
                r = tokio::time::timeout(self.settings.idle_timeout, read.read_buf(&mut buf)) => match r {
                    Ok(Ok(0)) | Ok(Err(_)) => return,
                    Ok(Ok(n)) => n,
                    Err(_) => {
                        metrics::counter!("focus_tcp_idle_closed_total").increment(1);
                        return;
                    }
                },
            };
            metrics::counter!("focus_transport_bytes_received_total", "transport" => "tcp")
                .increment(n as u64);
            loop {
                match framer.decode(&mut buf) {
                    Ok(Some(Frame::Message(bytes))) => {
                        sink.on_message(
                            parse(bytes, Framing::Stream, &self.settings.limits),
                            source,
                        );
                    }
                    Ok(Some(Frame::Ping)) => {
                        // RFC 5626 §3.5.1 keep-alive: answer CRLFCRLF with CRLF.
                        let _ = self.send(Some(id), peer, Bytes::from_static(b"\r\n"));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // A bad Content-Length still leaves the headers readable: answer 400
                        // (RFC 4475 ncl, mcl01) before closing.
                        if e != crate::sip::FrameError::TooLarge {
                            let head = buf.split().freeze();
                            if let Err(err) = parse(head, Framing::Stream, &self.settings.limits) {
                                sink.on_message(Err(err), source);
                            }
                        }
                        sink.on_stream_error(source, e);
                        // Let the writer flush what the sink queued (e.g. a 400) before closing.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        return;
                    }
                }
            }
        }
    }

    /// Queues bytes on a connection: the given one when alive, else the latest to `addr`.
    pub fn send(
        &self,
        conn: Option<ConnId>,
        addr: SocketAddr,
        data: Bytes,
    ) -> Result<(), SendError> {
        let id = conn
            .filter(|c| self.conns.contains_key(c))
            .or_else(|| self.by_peer.get(&addr).map(|r| *r))
            .ok_or(SendError::Closed)?;
        let tx = self
            .conns
            .get(&id)
            .map(|c| c.tx.clone())
            .ok_or(SendError::Closed)?;
        tx.try_send(data).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    /// True when a connection to `addr` (or the given one) is open.
    pub fn has_route(&self, conn: Option<ConnId>, addr: SocketAddr) -> bool {
        conn.is_some_and(|c| self.conns.contains_key(&c)) || self.by_peer.contains_key(&addr)
    }

    /// Opens a connection to `addr` unless one is open; returns its id.
    pub async fn connect(self: &Arc<Self>, addr: SocketAddr) -> Result<ConnId, SendError> {
        if let Some(id) = self.by_peer.get(&addr).map(|r| *r) {
            return Ok(id);
        }
        if self.open.load(Ordering::Relaxed) >= self.settings.max_connections {
            return Err(SendError::Full);
        }
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .map_err(|_| SendError::Io)?
            .map_err(|_| SendError::Io)?;
        Ok(self.clone().start(stream, addr))
    }

    /// The peer address of a connection.
    pub fn peer_of(&self, conn: ConnId) -> Option<SocketAddr> {
        self.conns.get(&conn).map(|c| c.peer)
    }
}

async fn write_loop(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Bytes>,
    cancel: CancellationToken,
) {
    loop {
        let data = tokio::select! {
            _ = cancel.cancelled() => {
                // Flush what is queued, then close.
                while let Ok(d) = rx.try_recv() {
                    if write.write_all(&d).await.is_err() { break; }
                }
                let _ = write.shutdown().await;
                return;
            }
            d = rx.recv() => d,
        };
        let Some(data) = data else { return };
        if write.write_all(&data).await.is_err() {
            return;
        }
    }
}
