//! Stream transports (TCP, and TLS over TCP): an accept loop, one reader and one writer task
//! per connection, and a registry so that responses and in-dialog requests go back on the
//! connection they belong to.
//!
//! Every connection is bounded: a cap on connections in total and per source address, with a
//! reserve only the trusted core may use and eviction of unadmitted outsiders when their
//! share is full ([`ConnLimits`], shared by TCP and TLS), a deadline for the first byte of an
//! untrusted connection, a deadline for a whole message once its first byte arrived
//! (slowloris), an idle timeout, a bounded write queue and a deadline for each write (a peer
//! that stops reading is cut off).

use super::tls::TlsContext;
use super::{ConnId, Protocol, SendError, Sink, Target};
use crate::overload::Verdict;
use crate::sip::{
    parse, refuse, Fault, Frame, FrameError, Framer, Framing, HeaderName, ParseLimits,
};
use bytes::{Bytes, BytesMut};
use dashmap::DashMap;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Stream limits.
#[derive(Debug, Clone, Copy)]
pub struct TcpSettings {
    pub max_message: usize,
    pub idle_timeout: Duration,
    /// A message whose first byte arrived this long ago and is still incomplete closes its
    /// connection (a slowloris peer holds no slot for long).
    pub message_timeout: Duration,
    /// Messages queued for writing on one connection before sends fail (bounded write queue).
    pub write_queue: usize,
    /// A write that waits this long for the peer to read closes the connection.
    pub write_timeout: Duration,
    /// An inbound untrusted connection that sends nothing this long is closed.
    pub first_byte_timeout: Duration,
    pub limits: ParseLimits,
}

/// Connection counts across TCP and TLS: in total, per source address, and the untrusted
/// share. `trusted_reserve` slots of the total are only for the trusted core; when the
/// untrusted share is full a new connection may evict the oldest untrusted connection that
/// never carried an admitted participant or member subscription ("probation"), so idle
/// outsiders cannot lock members out either.
pub struct ConnLimits {
    max_total: usize,
    max_per_source: usize,
    /// Slots of `max_total` only trusted sources may take.
    trusted_reserve: usize,
    /// Make room by closing the oldest probation connection instead of refusing.
    evict: bool,
    /// Exempt from the per-source cap and the untrusted share (the SIP core concentrates
    /// many users).
    trusted: HashSet<IpAddr>,
    counts: Mutex<Counts>,
    total: AtomicUsize,
}

struct Counts {
    total: usize,
    untrusted: usize,
    per_source: HashMap<IpAddr, usize>,
    /// Untrusted inbound connections not (yet) carrying an admitted party, oldest first:
    /// the eviction candidates.
    probation: BTreeMap<u64, Arc<Slot>>,
    next: u64,
}

/// One counted connection.
struct Slot {
    seq: u64,
    ip: IpAddr,
    /// Inbound from an untrusted address: counts in the untrusted share.
    untrusted: bool,
    /// Cancelled to close the connection (eviction).
    cancel: CancellationToken,
    /// Still counted: cleared by the first release (drop or eviction), so a slot is given
    /// back exactly once.
    held: AtomicBool,
}

/// One connection slot; released on drop.
pub struct ConnPermit {
    limits: Arc<ConnLimits>,
    slot: Arc<Slot>,
}

impl ConnPermit {
    /// The token that closes this connection (cancelled when it is evicted).
    pub fn cancel_token(&self) -> CancellationToken {
        self.slot.cancel.clone()
    }

    /// Whether the connection is from an untrusted source (first-byte deadline applies).
    pub fn untrusted(&self) -> bool {
        self.slot.untrusted
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        if let Ok(mut c) = self.limits.counts.lock() {
            self.limits.release(&mut c, &self.slot);
        }
    }
}

impl ConnLimits {
    pub fn new(max_total: usize, max_per_source: usize, trusted: HashSet<IpAddr>) -> ConnLimits {
        ConnLimits {
            max_total,
            max_per_source,
            trusted_reserve: 0,
            evict: false,
            trusted,
            counts: Mutex::new(Counts {
                total: 0,
                untrusted: 0,
                per_source: HashMap::new(),
                probation: BTreeMap::new(),
                next: 0,
            }),
            total: AtomicUsize::new(0),
        }
    }

    /// Keeps `reserve` slots for the trusted core, and lets new connections evict idle
    /// probation connections (`evict`) when their share is full.
    pub fn with_shares(mut self, reserve: usize, evict: bool) -> ConnLimits {
        self.trusted_reserve = reserve.min(self.max_total.saturating_sub(1));
        self.evict = evict;
        self
    }

    fn release(&self, c: &mut Counts, slot: &Slot) {
        if !slot.held.swap(false, Ordering::SeqCst) {
            return;
        }
        c.total = c.total.saturating_sub(1);
        self.total.store(c.total, Ordering::SeqCst);
        if slot.untrusted {
            c.untrusted = c.untrusted.saturating_sub(1);
        }
        c.probation.remove(&slot.seq);
        if let Some(n) = c.per_source.get_mut(&slot.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_source.remove(&slot.ip);
            }
        }
    }

    /// Closes the oldest probation connection to make room; false when there is none.
    fn evict_one(&self, c: &mut Counts) -> bool {
        if !self.evict {
            return false;
        }
        let Some((_, victim)) = c.probation.pop_first() else {
            return false;
        };
        self.release(c, &victim);
        victim.cancel.cancel();
        metrics::counter!("focus_tcp_connections_closed_total", "reason" => "evicted").increment(1);
        tracing::debug!(peer = %victim.ip, "evicted an unadmitted connection to make room");
        true
    }

    /// A slot for a connection with `ip`, or the reason (metric label) there is none.
    /// Outbound connections (`outbound`) count in the total but not per source nor in the
    /// untrusted share. `parent` is the transport's token (the slot's token is its child).
    pub fn acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        outbound: bool,
        parent: &CancellationToken,
    ) -> Result<ConnPermit, &'static str> {
        let untrusted = !outbound && !self.trusted.contains(&ip);
        let Ok(mut c) = self.counts.lock() else {
            return Err("limit");
        };
        if untrusted {
            if c.per_source.get(&ip).copied().unwrap_or(0) >= self.max_per_source {
                return Err("per_source");
            }
            let share = self.max_total - self.trusted_reserve;
            if c.untrusted >= share && !self.evict_one(&mut c) {
                return Err("untrusted_share");
            }
        }
        if c.total >= self.max_total && !self.evict_one(&mut c) {
            return Err("limit");
        }
        c.total += 1;
        self.total.store(c.total, Ordering::SeqCst);
        if untrusted {
            c.untrusted += 1;
        }
        *c.per_source.entry(ip).or_insert(0) += 1;
        c.next += 1;
        let slot = Arc::new(Slot {
            seq: c.next,
            ip,
            untrusted,
            cancel: parent.child_token(),
            held: AtomicBool::new(true),
        });
        if untrusted {
            c.probation.insert(slot.seq, slot.clone());
        }
        Ok(ConnPermit {
            limits: self.clone(),
            slot,
        })
    }

    /// The connection carries an admitted participant or member subscription: it is never
    /// evicted to make room.
    fn admit(&self, slot: &Slot) {
        if let Ok(mut c) = self.counts.lock() {
            c.probation.remove(&slot.seq);
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }
}

/// Exports the refusal and closing reasons of stream connections at zero, so dashboards
/// show a rate before the first event.
pub fn init_metrics() {
    for reason in ["limit", "per_source", "untrusted_share"] {
        metrics::counter!("focus_tcp_connections_refused_total", "reason" => reason).increment(0);
    }
    for reason in [
        "message_timeout",
        "write_timeout",
        "first_byte_timeout",
        "evicted",
    ] {
        metrics::counter!("focus_tcp_connections_closed_total", "reason" => reason).increment(0);
    }
}

/// Told once, with the connection's [`Target`], when a watched connection closes.
pub type CloseWatch = Box<dyn FnOnce(Target) + Send + Sync>;

struct Conn {
    tx: mpsc::Sender<Bytes>,
    peer: SocketAddr,
    /// Its slot in [`ConnLimits`] (admitted connections leave probation).
    slot: Arc<Slot>,
    /// Who must learn that the connection closed (sessions with dialogs bound to it), by
    /// watcher key: one entry per watcher however often it asks, so the map stays bounded.
    watchers: Mutex<HashMap<u64, CloseWatch>>,
}

/// Live connections of one stream transport (TCP or TLS).
pub struct TcpRegistry {
    protocol: Protocol,
    conns: DashMap<ConnId, Conn>,
    /// Latest connection per peer address, for reuse when sending to an address.
    by_peer: DashMap<SocketAddr, ConnId>,
    next_id: Arc<AtomicU64>,
    open: AtomicUsize,
    slots: Arc<ConnLimits>,
    /// Bound listen addresses, in the order given (the first is the primary).
    locals: Vec<SocketAddr>,
    settings: TcpSettings,
    /// TLS: the acceptor, and the connector when the focus may connect out.
    tls: Option<TlsContext>,
    listeners: Mutex<Vec<TcpListener>>,
    sink: std::sync::OnceLock<Arc<dyn Sink>>,
    cancel: CancellationToken,
}

/// A listening TCP socket on `addr` (inside the I/O runtime); IPv6-only when `only_v6` (so
/// `[::]` and `0.0.0.0` can share a port).
pub fn bind_listener(addr: SocketAddr, only_v6: bool) -> std::io::Result<TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    if only_v6 && addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

impl TcpRegistry {
    /// Binds the TCP listener (the accept loop starts with [`TcpRegistry::run`]).
    pub fn bind(
        addr: SocketAddr,
        settings: TcpSettings,
        slots: Arc<ConnLimits>,
        cancel: CancellationToken,
    ) -> std::io::Result<TcpRegistry> {
        Self::bind_as(Protocol::Tcp, None, &[addr], settings, slots, cancel).map_err(|(_, e)| e)
    }

    /// Binds one TCP listener per address (IPv4, IPv6 or both); `Err` names the address
    /// that could not be bound.
    pub fn bind_all(
        addrs: &[SocketAddr],
        settings: TcpSettings,
        slots: Arc<ConnLimits>,
        cancel: CancellationToken,
    ) -> Result<TcpRegistry, (SocketAddr, std::io::Error)> {
        Self::bind_as(Protocol::Tcp, None, addrs, settings, slots, cancel)
    }

    /// Binds a TLS listener: connections are TLS from their first byte (port 5061).
    pub fn bind_tls(
        addrs: &[SocketAddr],
        tls: TlsContext,
        settings: TcpSettings,
        slots: Arc<ConnLimits>,
        cancel: CancellationToken,
    ) -> Result<TcpRegistry, (SocketAddr, std::io::Error)> {
        Self::bind_as(Protocol::Tls, Some(tls), addrs, settings, slots, cancel)
    }

    fn bind_as(
        protocol: Protocol,
        tls: Option<TlsContext>,
        addrs: &[SocketAddr],
        settings: TcpSettings,
        slots: Arc<ConnLimits>,
        cancel: CancellationToken,
    ) -> Result<TcpRegistry, (SocketAddr, std::io::Error)> {
        let both = super::both_families(addrs);
        let mut listeners = Vec::with_capacity(addrs.len());
        let mut locals = Vec::with_capacity(addrs.len());
        for addr in addrs {
            let listener = bind_listener(*addr, both)
                .and_then(|l| Ok((l.local_addr()?, l)))
                .map_err(|e| (*addr, e))?;
            locals.push(listener.0);
            listeners.push(listener.1);
        }
        if listeners.is_empty() {
            let none = std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address");
            return Err((SocketAddr::from(([0, 0, 0, 0], 0)), none));
        }
        Ok(TcpRegistry {
            protocol,
            conns: DashMap::new(),
            by_peer: DashMap::new(),
            next_id: Arc::new(AtomicU64::new(1)),
            open: AtomicUsize::new(0),
            slots,
            locals,
            settings,
            tls,
            listeners: Mutex::new(listeners),
            sink: std::sync::OnceLock::new(),
            cancel,
        })
    }

    /// Shares connection ids with another registry (TCP and TLS), so a [`Target`]'s
    /// connection id is unique whatever its transport.
    pub fn share_ids(&mut self, other: &TcpRegistry) {
        self.next_id = other.next_id.clone();
    }

    /// The primary (first) listen address.
    pub fn local_addr(&self) -> SocketAddr {
        self.locals[0]
    }

    /// Every listen address.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.locals
    }

    /// The listen address of `peer`'s family, else the primary.
    pub fn local_addr_for(&self, peer: std::net::IpAddr) -> SocketAddr {
        self.locals[super::index_for(&self.locals, peer)]
    }

    /// Connections of this transport open now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Accepts connections on every listener until cancelled.
    pub async fn run(self: Arc<Self>, sink: Arc<dyn Sink>) {
        let _ = self.sink.set(sink);
        let mut listeners = match self.listeners.lock() {
            Ok(mut l) => std::mem::take(&mut *l),
            Err(_) => Vec::new(),
        };
        let Some(first) = listeners.pop() else { return };
        for listener in listeners {
            tokio::spawn(self.clone().accept_loop(listener));
        }
        self.accept_loop(first).await;
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
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
            let permit = match self.slots.acquire(peer.ip(), false, &self.cancel) {
                Ok(p) => p,
                Err(reason) => {
                    metrics::counter!("focus_tcp_connections_refused_total", "reason" => reason)
                        .increment(1);
                    drop(stream);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            match &self.tls {
                None => {
                    let (read, write) = stream.into_split();
                    self.clone().start(read, write, peer, permit);
                }
                Some(tls) => {
                    let me = self.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let evicted = permit.cancel_token();
                        let shake = tokio::select! {
                            _ = evicted.cancelled() => return,
                            r = tokio::time::timeout(
                                tls.handshake_timeout,
                                tls.acceptor.accept(stream),
                            ) => r,
                        };
                        match shake {
                            Ok(Ok(s)) => {
                                metrics::counter!("focus_tls_handshakes_total", "service" => "sip", "outcome" => "ok").increment(1);
                                let (read, write) = tokio::io::split(s);
                                me.start(read, write, peer, permit);
                            }
                            failed => {
                                metrics::counter!("focus_tls_handshakes_total", "service" => "sip", "outcome" => "failed").increment(1);
                                let reason = match &failed {
                                    Ok(Err(e)) => super::tls::failure_reason(e),
                                    _ => "timeout",
                                };
                                super::tls::count_failure(super::tls::Role::Server, "sip", reason);
                                tracing::debug!(%peer, reason, "SIP TLS handshake failed");
                            }
                        }
                    });
                }
            }
        }
    }

    fn start<R, W>(
        self: Arc<Self>,
        read: R,
        write: W,
        peer: SocketAddr,
        permit: ConnPermit,
    ) -> ConnId
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.settings.write_queue);
        self.conns.insert(
            id,
            Conn {
                tx,
                peer,
                slot: permit.slot.clone(),
                watchers: Mutex::new(HashMap::new()),
            },
        );
        self.by_peer.insert(peer, id);
        self.open.fetch_add(1, Ordering::Relaxed);
        let label = self.protocol.label();
        metrics::gauge!("focus_tcp_connections_active", "transport" => label).increment(1.0);
        let cancel = permit.cancel_token();
        let first_byte = permit
            .untrusted()
            .then_some(self.settings.first_byte_timeout);
        tokio::spawn(write_loop(
            write,
            rx,
            cancel.clone(),
            self.settings.write_timeout,
        ));
        let me = self.clone();
        tokio::spawn(async move {
            me.read_loop(read, id, peer, first_byte, &cancel).await;
            cancel.cancel();
            me.forget(id, peer);
            drop(permit);
        });
        id
    }

    fn forget(&self, id: ConnId, peer: SocketAddr) {
        self.by_peer.remove_if(&peer, |_, v| *v == id);
        if let Some((_, conn)) = self.conns.remove(&id) {
            self.open.fetch_sub(1, Ordering::Relaxed);
            metrics::gauge!("focus_tcp_connections_active", "transport" => self.protocol.label())
                .decrement(1.0);
            let target = Target {
                protocol: self.protocol,
                addr: peer,
                conn: Some(id),
            };
            let watchers = conn
                .watchers
                .into_inner()
                .map(|w| w.into_values().collect())
                .unwrap_or_else(|_| Vec::new());
            for watch in watchers {
                watch(target);
            }
        }
    }

    /// Tells `watch` (once) when connection `conn` closes; `key` names the watcher, and a
    /// second watch with the same key replaces the first. A connection already closed gives
    /// `watch` back, for the caller to act on at once.
    pub fn watch(&self, conn: ConnId, key: u64, watch: CloseWatch) -> Result<(), CloseWatch> {
        let Some(c) = self.conns.get(&conn) else {
            return Err(watch);
        };
        let locked = c.watchers.lock();
        match locked {
            Ok(mut w) => {
                w.insert(key, watch);
                Ok(())
            }
            Err(_) => Err(watch),
        }
    }

    async fn read_loop<R: AsyncRead + Unpin>(
        &self,
        mut read: R,
        id: ConnId,
        peer: SocketAddr,
        first_byte: Option<Duration>,
        cancel: &CancellationToken,
    ) {
        let Some(sink) = self.sink.get().cloned() else {
            return;
        };
        let source = Target {
            protocol: self.protocol,
            addr: peer,
            conn: Some(id),
        };
        let label = self.protocol.label();
        let mut framer = Framer::new(self.settings.max_message);
        let mut buf = BytesMut::with_capacity(4096);
        // When the first byte of the message still incomplete in `buf` arrived.
        let mut partial_since: Option<Instant> = None;
        // Until the first byte: a silent connection holds its slot only this long.
        let mut silent_until = first_byte.map(|d| Instant::now() + d);
        loop {
            let mut wait = match partial_since {
                Some(t) => self
                    .settings
                    .message_timeout
                    .saturating_sub(t.elapsed())
                    .min(self.settings.idle_timeout),
                None => self.settings.idle_timeout,
            };
            if let Some(until) = silent_until {
                wait = wait.min(until.saturating_duration_since(Instant::now()));
            }
            let n = tokio::select! {
                _ = cancel.cancelled() => return,
                r = tokio::time::timeout(wait, read.read_buf(&mut buf)) => match r {
                    Ok(Ok(0)) | Ok(Err(_)) => return,
                    Ok(Ok(n)) => n,
                    Err(_) => {
                        if silent_until.is_some() {
                            metrics::counter!("focus_tcp_connections_closed_total", "reason" => "first_byte_timeout").increment(1);
                            tracing::debug!(%peer, "closing a connection that sent nothing");
                        } else if partial_since.is_some_and(|t| t.elapsed() >= self.settings.message_timeout) {
                            metrics::counter!("focus_tcp_connections_closed_total", "reason" => "message_timeout").increment(1);
                            tracing::debug!(%peer, "closing a connection whose message never completed");
                        } else {
                            metrics::counter!("focus_tcp_idle_closed_total").increment(1);
                        }
                        return;
                    }
                },
            };
            silent_until = None;
            metrics::counter!("focus_transport_bytes_received_total", "transport" => label)
                .increment(n as u64);
            loop {
                match framer.decode(&mut buf) {
                    Ok(Some(Frame::Message(bytes))) => match sink.admit(&source, &bytes) {
                        Verdict::Admit => sink.on_message(
                            parse(bytes, Framing::Stream, &self.settings.limits),
                            source,
                        ),
                        Verdict::Reject => sink.on_shed(
                            parse(bytes, Framing::Stream, &self.settings.limits),
                            source,
                            "source_rate",
                        ),
                        Verdict::Drop => {}
                    },
                    Ok(Some(Frame::Ping)) => {
                        // RFC 5626 §3.5.1 keep-alive: answer CRLFCRLF with CRLF.
                        let _ = self.send(Some(id), peer, Bytes::from_static(b"\r\n"));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // The headers are still readable: answer before closing (a bad
                        // Content-Length 400, RFC 4475 ncl and mcl01; none at all 400, RFC 3261
                        // §18.3; too large 513), never silently.
                        let limits = &self.settings.limits;
                        let head = buf.split_to(buf.len().min(self.settings.max_message));
                        let head = head.freeze();
                        let refusal = match e {
                            FrameError::TooLarge => Some(refuse(head, Fault::TooLarge, limits)),
                            FrameError::MissingContentLength => Some(refuse(
                                head,
                                Fault::Missing(HeaderName::ContentLength),
                                limits,
                            )),
                            FrameError::BadContentLength | FrameError::MultipleContentLength => {
                                parse(head, Framing::Stream, limits).err()
                            }
                        };
                        buf.clear();
                        if let Some(refusal) = refusal {
                            sink.on_message(Err(refusal), source);
                        }
                        sink.on_stream_error(source, e);
                        // Let the writer flush what the sink queued (e.g. a 400) before closing.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        return;
                    }
                }
            }
            // Keep-alive line ends between messages do not start a message.
            let pending = buf.iter().any(|b| *b != b'\r' && *b != b'\n');
            partial_since = match (pending, partial_since) {
                (false, _) => None,
                (true, Some(t)) => Some(t),
                (true, None) => Some(Instant::now()),
            };
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

    /// Opens a connection to `addr` unless one is open; returns its id. Over TLS, `host`
    /// is the name the peer's certificate must carry.
    pub async fn connect(
        self: &Arc<Self>,
        addr: SocketAddr,
        host: &str,
    ) -> Result<ConnId, SendError> {
        if let Some(id) = self.by_peer.get(&addr).map(|r| *r) {
            return Ok(id);
        }
        let connector = match &self.tls {
            None => None,
            Some(tls) => Some((
                tls.connector.clone().ok_or(SendError::Io)?,
                TlsContext::server_name(host).ok_or(SendError::Io)?,
                tls.handshake_timeout,
            )),
        };
        let permit = self
            .slots
            .acquire(addr.ip(), true, &self.cancel)
            .map_err(|_| SendError::Full)?;
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .map_err(|_| SendError::Io)?
            .map_err(|_| SendError::Io)?;
        let _ = stream.set_nodelay(true);
        match connector {
            None => {
                let (read, write) = stream.into_split();
                Ok(self.clone().start(read, write, addr, permit))
            }
            Some((connector, name, timeout)) => {
                // The peer's chain and name are verified (tls.ca_file); a failure is counted
                // and the request fails: never a downgrade.
                let s = match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
                    Ok(Ok(s)) => s,
                    failed => {
                        let reason = match &failed {
                            Ok(Err(e)) => super::tls::failure_reason(e),
                            _ => "timeout",
                        };
                        metrics::counter!("focus_tls_handshakes_total", "service" => "sip", "outcome" => "failed").increment(1);
                        super::tls::count_failure(super::tls::Role::Client, "sip", reason);
                        tracing::warn!(%addr, %host, reason, "outbound SIP TLS handshake failed");
                        return Err(SendError::Io);
                    }
                };
                metrics::counter!("focus_tls_handshakes_total", "service" => "sip", "outcome" => "ok").increment(1);
                let (read, write) = tokio::io::split(s);
                Ok(self.clone().start(read, write, addr, permit))
            }
        }
    }

    /// A request on `conn` was admitted (a participant joined, a member subscribed): the
    /// connection leaves probation and is never evicted to make room for others.
    pub fn admit(&self, conn: ConnId) {
        if let Some(c) = self.conns.get(&conn) {
            self.slots.admit(&c.slot);
        }
    }

    /// The peer address of a connection.
    pub fn peer_of(&self, conn: ConnId) -> Option<SocketAddr> {
        self.conns.get(&conn).map(|c| c.peer)
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    mut rx: mpsc::Receiver<Bytes>,
    cancel: CancellationToken,
    write_timeout: Duration,
) {
    loop {
        let data = tokio::select! {
            _ = cancel.cancelled() => {
                // Flush what is queued (each write bounded), then close.
                while let Ok(d) = rx.try_recv() {
                    let written = async {
                        write.write_all(&d).await?;
                        write.flush().await
                    };
                    match tokio::time::timeout(write_timeout, written).await {
                        Ok(Ok(())) => {}
                        _ => break,
                    }
                }
                let _ = tokio::time::timeout(write_timeout, write.shutdown()).await;
                return;
            }
            d = rx.recv() => d,
        };
        let Some(data) = data else { return };
        // TLS holds records until flushed; for plain TCP the flush is free.
        let written = async {
            write.write_all(&data).await?;
            write.flush().await
        };
        match tokio::time::timeout(write_timeout, written).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                cancel.cancel();
                return;
            }
            Err(_) => {
                // The peer stopped reading: its queue would only grow. Close the connection.
                metrics::counter!("focus_tcp_connections_closed_total", "reason" => "write_timeout")
                    .increment(1);
                cancel.cancel();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Outsiders fill their share; the core takes the reserve; a newcomer evicts the oldest
    /// unadmitted outsider, never an admitted one; without eviction it is refused.
    #[test]
    fn the_reserve_and_eviction_keep_room_for_the_core_and_members() {
        let core = ip("127.0.0.1");
        let root = CancellationToken::new();
        let limits = Arc::new(ConnLimits::new(4, 8, [core].into()).with_shares(1, true));
        let a = limits.acquire(ip("127.0.0.66"), false, &root).unwrap();
        let b = limits.acquire(ip("127.0.0.66"), false, &root).unwrap();
        let c = limits.acquire(ip("127.0.0.67"), false, &root).unwrap();
        limits.admit(&a.slot);
        let _core = limits.acquire(core, false, &root).unwrap();
        assert_eq!(limits.open(), 4);
        // The share (3) is full: the oldest unadmitted (b, since a was admitted) goes.
        let d = limits.acquire(ip("127.0.0.68"), false, &root).unwrap();
        assert!(b.cancel_token().is_cancelled());
        assert!(!a.cancel_token().is_cancelled());
        assert_eq!(limits.open(), 4);
        drop(b);
        assert_eq!(limits.open(), 4, "an evicted slot is released once");
        // The core at the total cap evicts too; a and d's peers are what is left.
        let _core2 = limits.acquire(core, false, &root).unwrap();
        assert!(c.cancel_token().is_cancelled());
        drop((c, d));
        let strict = Arc::new(ConnLimits::new(2, 8, HashSet::new()).with_shares(1, false));
        let _x = strict.acquire(ip("127.0.0.66"), false, &root).unwrap();
        assert_eq!(
            strict.acquire(ip("127.0.0.67"), false, &root).err(),
            Some("untrusted_share")
        );
    }
}
