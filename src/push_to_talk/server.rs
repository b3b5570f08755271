//! The BFCP listener (RFC 8855 over TCP, §6.1): a thin driver around the codec. It accepts
//! connections, frames messages with [`StreamDecoder`], binds each connection to the
//! conference and user its first message names, and hands every message to that conference's
//! session through a [`FloorSink`]. Whatever the session sends back goes through the
//! connection's bounded write queue ([`Connection::send`]).
//!
//! A first message naming no running conference is answered with Error 1 (Conference does not
//! exist) and the connection is closed; the session itself answers Error 2 for a user it does
//! not know (and closes). Undecodable input is answered with the Error the codec names; input
//! that cannot be framed any further closes the connection after that answer.

use super::bfcp::{
    encode, Attribute, ErrorCode, ErrorDetails, Message, Primitive, StreamDecoder, VERSION_RELIABLE,
};
use bytes::BytesMut;
use dashmap::DashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Limits of the listener (the `[floor]` section).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub max_connections: usize,
    /// A connection that binds no conference this long after opening is closed.
    pub bind_timeout: Duration,
    pub max_message: usize,
    /// Messages queued toward one connection.
    pub write_queue: usize,
}

/// The session could not take a message now (its mailbox is full or it is gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Where a conference's floor control runs: its session.
pub trait FloorSink: Send + Sync + 'static {
    /// A message that arrived on `conn`, bound to `user`.
    fn message(&self, conn: &Connection, user: u16, message: Message) -> Result<(), Busy>;
    /// `conn` (bound to `user`) closed.
    fn closed(&self, conn: &Connection, user: u16);
}

/// One BFCP connection, as a session holds it: send to it, or close it. Cheap to clone.
#[derive(Clone)]
pub struct Connection {
    id: u64,
    peer: SocketAddr,
    tx: mpsc::Sender<Message>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .finish()
    }
}

impl Connection {
    /// Unique within the listener.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Queues `message`; a connection whose queue is full is closed (a client that cannot
    /// keep up must not make the session buffer without bound). Returns whether it was queued.
    pub fn send(&self, message: Message) -> bool {
        match self.tx.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("focus_bfcp_rejected_total", "reason" => "write_queue")
                    .increment(1);
                self.close();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Closes the connection once what is queued has been written.
    pub fn close(&self) {
        self.cancel.cancel();
    }
}

/// The listener and the directory of conferences it serves.
pub struct FloorServer {
    settings: ServerSettings,
    local: SocketAddr,
    directory: DashMap<u32, Arc<dyn FloorSink>>,
    active: AtomicUsize,
    next_connection: AtomicU64,
}

impl FloorServer {
    /// Binds the listener (inside the I/O runtime).
    pub fn bind(
        addr: SocketAddr,
        settings: ServerSettings,
    ) -> std::io::Result<(Arc<FloorServer>, TcpListener)> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let local = listener.local_addr()?;
        let server = Arc::new(FloorServer {
            settings,
            local,
            directory: DashMap::new(),
            active: AtomicUsize::new(0),
            next_connection: AtomicU64::new(1),
        });
        Ok((server, listener))
    }

    /// Binds another listener on `ip` with this server's port (a focus on IPv4 and IPv6: the
    /// answers announce one port). IPv6-only, so it shares the port with an IPv4 listener.
    pub fn bind_also(&self, ip: std::net::IpAddr) -> std::io::Result<TcpListener> {
        crate::transport::bind_listener(SocketAddr::new(ip, self.local.port()), true)
    }

    /// Where the listener is bound (its port goes into SDP answers).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Registers a conference's session under a fresh, random, non-zero Conference ID (hard to
    /// guess, so a stranger cannot easily speak for a conference it is not in).
    pub fn register(&self, sink: Arc<dyn FloorSink>) -> u32 {
        loop {
            let id: u32 = rand::random();
            if id == 0 {
                continue;
            }
            if let dashmap::Entry::Vacant(e) = self.directory.entry(id) {
                e.insert(sink);
                return id;
            }
        }
    }

    /// Forgets a conference (its session ended).
    pub fn unregister(&self, conference_id: u32) {
        self.directory.remove(&conference_id);
    }

    /// Conferences registered.
    pub fn conferences(&self) -> usize {
        self.directory.len()
    }

    fn sink(&self, conference_id: u32) -> Option<Arc<dyn FloorSink>> {
        self.directory
            .get(&conference_id)
            .map(|e| e.value().clone())
    }

    /// Accepts connections until cancelled.
    pub async fn run(self: Arc<Self>, listener: TcpListener, cancel: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => return,
                a = listener.accept() => a,
            };
            let Ok((stream, peer)) = accepted else {
                continue;
            };
            if self.active.load(Ordering::SeqCst) >= self.settings.max_connections {
                metrics::counter!("focus_bfcp_connections_refused_total").increment(1);
                drop(stream);
                continue;
            }
            self.active.fetch_add(1, Ordering::SeqCst);
            metrics::gauge!("focus_bfcp_connections_active").increment(1.0);
            let server = self.clone();
            let cancel = cancel.child_token();
            tokio::spawn(async move {
                server.serve(stream, peer, cancel).await;
                server.active.fetch_sub(1, Ordering::SeqCst);
                metrics::gauge!("focus_bfcp_connections_active").decrement(1.0);
            });
        }
    }

    async fn serve(&self, stream: TcpStream, peer: SocketAddr, cancel: CancellationToken) {
        let _ = stream.set_nodelay(true);
        let (mut reader, writer) = stream.into_split();
        let (tx, rx) = mpsc::channel(self.settings.write_queue);
        let conn = Connection {
            id: self.next_connection.fetch_add(1, Ordering::Relaxed),
            peer,
            tx,
            cancel: cancel.clone(),
        };
        let write_task = tokio::spawn(write_loop(writer, rx, cancel.clone()));
        let mut decoder = StreamDecoder::new(self.settings.max_message);
        let mut buf = BytesMut::with_capacity(4096);
        let mut bound: Option<(Arc<dyn FloorSink>, u16)> = None;
        let unbound_deadline = tokio::time::Instant::now() + self.settings.bind_timeout;
        'read: loop {
            let read = tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep_until(unbound_deadline), if bound.is_none() => {
                    metrics::counter!("focus_bfcp_rejected_total", "reason" => "bind_timeout")
                        .increment(1);
                    break;
                }
                r = reader.read_buf(&mut buf) => r,
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            loop {
                match decoder.decode(&mut buf) {
                    Ok(None) => break,
                    Ok(Some(msg)) => {
                        metrics::counter!("focus_bfcp_messages_received_total").increment(1);
                        if bound.is_none() {
                            let Some(sink) = self.sink(msg.conference_id) else {
                                metrics::counter!(
                                    "focus_bfcp_rejected_total",
                                    "reason" => "unknown_conference"
                                )
                                .increment(1);
                                if msg.primitive != Primitive::Error {
                                    conn.send(error(
                                        &msg,
                                        ErrorCode::ConferenceDoesNotExist,
                                        "no such conference",
                                    ));
                                }
                                break 'read;
                            };
                            bound = Some((sink, msg.user_id));
                        }
                        let Some((sink, user)) = &bound else {
                            break 'read;
                        };
                        let reply = (msg.primitive != Primitive::Error).then(|| {
                            error(&msg, ErrorCode::GenericError, "the conference is busy")
                        });
                        if sink.message(&conn, *user, msg).is_err() {
                            metrics::counter!("focus_bfcp_rejected_total", "reason" => "busy")
                                .increment(1);
                            if let Some(r) = reply {
                                conn.send(r);
                            }
                        }
                    }
                    Err(e) => {
                        metrics::counter!("focus_bfcp_rejected_total", "reason" => "malformed")
                            .increment(1);
                        if let Some(r) = e.error_response() {
                            conn.send(r);
                        }
                        if e.closes_stream() {
                            break 'read;
                        }
                    }
                }
            }
        }
        if let Some((sink, user)) = &bound {
            sink.closed(&conn, *user);
        }
        conn.close();
        let _ = write_task.await;
    }
}

/// An Error answering `msg`, in its transaction.
fn error(msg: &Message, code: ErrorCode, info: &str) -> Message {
    Message::new(
        VERSION_RELIABLE,
        Primitive::Error,
        msg.conference_id,
        msg.transaction_id,
        msg.user_id,
    )
    .with_attributes(vec![
        Attribute::error_code(code, ErrorDetails::none()),
        Attribute::error_info(info),
    ])
}

/// Writes queued messages; once the connection is closed, flushes what is queued and shuts
/// the write side.
async fn write_loop(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<Message>,
    cancel: CancellationToken,
) {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let msg = tokio::select! {
            biased;
            m = rx.recv() => match m {
                Some(m) => m,
                None => break,
            },
            _ = cancel.cancelled() => {
                buf.clear();
                while let Ok(m) = rx.try_recv() {
                    let _ = encode(&m, &mut buf);
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), writer.write_all(&buf)).await;
                break;
            }
        };
        buf.clear();
        if encode(&msg, &mut buf).is_err() {
            crate::warn_limited!(
                primitive = msg.primitive.name(),
                "BFCP message not encodable"
            );
            continue;
        }
        // A peer that stops reading must not hold this task once the connection is closed.
        let written = tokio::select! {
            biased;
            r = writer.write_all(&buf) => r.is_ok(),
            _ = cancel.cancelled() => false,
        };
        if !written {
            cancel.cancel();
            break;
        }
        metrics::counter!("focus_bfcp_messages_sent_total").increment(1);
    }
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests;
