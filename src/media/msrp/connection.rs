//! MSRP connections: the listener (the focus is passive by default, RFC 6135), outbound
//! connections when a participant's SDP asks the focus to be active, and the per-connection
//! reader and writer tasks that feed the [`Switch`].
//!
//! A connection may carry several sessions (RFC 4975 §7: connection reuse); each SEND's
//! To-Path names the session it belongs to, and the first SEND for a session binds it.

use super::switch::{Link, MediaEvent, Member, Outgoing, Switch};
use super::{
    parse, parse_head, Frame, FrameError, Framer, Message, Method, ParseError, ParseLimits,
    Request, Response,
};
use crate::overload::TokenBucket;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Accepts MSRP connections until cancelled.
pub async fn listen(switch: Arc<Switch>, listener: TcpListener, cancel: CancellationToken) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if open.load(Ordering::Relaxed) >= switch.settings().max_connections {
            metrics::counter!("focus_msrp_connections_refused_total").increment(1);
            continue;
        }
        let switch = switch.clone();
        let open = open.clone();
        let cancel = cancel.clone();
        open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            accept(switch, stream, peer, cancel).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// TLS byte 0 is a handshake record (22); MSRP starts with the letters `MSRP`.
const TLS_HANDSHAKE: u8 = 0x16;

/// Serves an accepted connection: MSRP over TLS when its first byte starts a TLS handshake
/// and TLS is configured, plain MSRP otherwise.
async fn accept(
    switch: Arc<Switch>,
    stream: TcpStream,
    peer: SocketAddr,
    cancel: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let Some(tls) = switch.edge().tls.clone() else {
        let (read, write) = stream.into_split();
        return run(switch, read, write, false, None, None, cancel).await;
    };
    let mut first = [0u8; 1];
    let bind_timeout = switch.settings().bind_timeout;
    let peeked = tokio::select! {
        _ = cancel.cancelled() => return,
        r = tokio::time::timeout(bind_timeout, stream.peek(&mut first)) => r,
    };
    match peeked {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {
            match tokio::time::timeout(tls.handshake_timeout, tls.msrp_acceptor.accept(stream))
                .await
            {
                Ok(Ok(s)) => {
                    metrics::counter!("focus_tls_handshakes_total", "service" => "msrp", "outcome" => "ok").increment(1);
                    let cert = s
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| Arc::from(c.as_ref()));
                    let (read, write) = tokio::io::split(s);
                    run(switch, read, write, true, cert, None, cancel).await;
                }
                failed => {
                    metrics::counter!("focus_tls_handshakes_total", "service" => "msrp", "outcome" => "failed").increment(1);
                    let reason = match &failed {
                        Ok(Err(e)) => crate::transport::tls::failure_reason(e),
                        _ => "timeout",
                    };
                    crate::transport::tls::count_failure(
                        crate::transport::tls::Role::Server,
                        "msrp",
                        reason,
                    );
                    tracing::debug!(%peer, reason, "MSRP TLS handshake failed");
                }
            }
        }
        Ok(Ok(n)) if n > 0 => {
            let (read, write) = stream.into_split();
            run(switch, read, write, false, None, None, cancel).await;
        }
        // Closed, failed, or silent past the bind timeout: nothing to serve.
        _ => {}
    }
}

/// Connects to a member that asked the focus to be active (`a=setup:passive` in its offer)
/// and binds the connection with an empty SEND (RFC 4975 §5.4).
pub fn connect_out(switch: Arc<Switch>, member: Arc<Member>, cancel: CancellationToken) {
    let rt = switch.runtime().clone();
    rt.spawn(async move {
        let Some(first) = member.peer_path.first() else {
            return;
        };
        let port = first.port.unwrap_or(2855);
        let addr = match &first.host {
            crate::sip::Host::Ip(ip) => Some(SocketAddr::new(*ip, port)),
            crate::sip::Host::Domain(d) => tokio::net::lookup_host((d.as_ref(), port))
                .await
                .ok()
                .and_then(|mut a| a.next()),
        };
        let stream = match addr {
            Some(a) => tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(a))
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        };
        let Some(s) = stream else {
            member.notify(MediaEvent::Lost);
            return;
        };
        let _ = s.set_nodelay(true);
        if !first.is_secure() {
            let (read, write) = s.into_split();
            return run(switch, read, write, false, None, Some(member), cancel).await;
        }
        // msrps: TLS, with the certificate checked against the fingerprint the member
        // offered (RFC 8122), or else against tls.ca_file and the path's host.
        let tls = switch.edge().tls.clone();
        let connector = match &member.fingerprint {
            Some(fp) => crate::transport::tls::pinned_connector(fp).ok(),
            None => tls.as_ref().and_then(|t| t.connector.clone()),
        };
        let name = crate::transport::TlsContext::server_name(&first.host.to_string());
        let (Some(tls), Some(connector), Some(name)) = (tls, connector, name) else {
            member.notify(MediaEvent::Lost);
            return;
        };
        match tokio::time::timeout(tls.handshake_timeout, connector.connect(name, s)).await {
            Ok(Ok(s)) => {
                let cert = s
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| Arc::from(c.as_ref()));
                let (read, write) = tokio::io::split(s);
                run(switch, read, write, true, cert, Some(member), cancel).await;
            }
            failed => {
                metrics::counter!("focus_tls_handshakes_total", "service" => "msrp", "outcome" => "failed").increment(1);
                let reason = match &failed {
                    Ok(Err(e)) => crate::transport::tls::failure_reason(e),
                    _ => "timeout",
                };
                crate::transport::tls::count_failure(crate::transport::tls::Role::Client, "msrp", reason);
                crate::warn_limited!(reason, "outbound MSRP TLS handshake failed");
                member.notify(MediaEvent::Lost);
            }
        }
    });
}

/// Drives one connection until it closes; `secure` when it is TLS (only `msrps:` sessions
/// bind to it, and `msrp:` ones only to plain connections).
async fn run<R, W>(
    switch: Arc<Switch>,
    mut read: R,
    write: W,
    secure: bool,
    peer_cert: Option<Arc<[u8]>>,
    outbound: Option<Arc<Member>>,
    cancel: CancellationToken,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let settings = *switch.settings();
    let edge = switch.edge();
    let now = Instant::now();
    // Flood control per connection: a participant over its rate is read more slowly.
    let mut chunks = TokenBucket::new(
        f64::from(edge.chunk_rate),
        f64::from(edge.chunk_rate.max(1)),
        now,
    );
    let mut bytes_budget = TokenBucket::new(
        edge.bytes_rate as f64,
        (edge.bytes_rate as f64).max(settings.max_frame as f64),
        now,
    );
    let (tx, rx) = mpsc::channel::<Outgoing>(settings.queue_depth.max(1));
    let conn = switch.next_conn_id();
    let link = Link {
        conn,
        tx: tx.clone(),
        peer_cert,
    };
    let closing = cancel.child_token();
    tokio::spawn(write_loop(write, rx, closing.clone()));
    metrics::gauge!("focus_msrp_connections_active").increment(1.0);

    let mut bound: Vec<Arc<Member>> = Vec::new();
    if let Some(m) = outbound {
        if switch.bind(&m, &link).is_ok() {
            bound.push(m.clone());
            let bind = Request::send(
                m.peer_path.clone(),
                vec![m.our_uri.clone()],
                "",
                Bytes::new(),
            );
            if let Ok(b) = bind.to_bytes() {
                let _ = tx.try_send(Outgoing::from(b));
            }
        }
    }
    let limits = ParseLimits::default();
    let mut framer = Framer::new(settings.max_frame);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let opened = Instant::now();
    let mut ever_bound = !bound.is_empty();
    'conn: loop {
        let n = tokio::select! {
            _ = closing.cancelled() => break,
            _ = tick.tick() => {
                let now = Instant::now();
                let had = !bound.is_empty();
                bound.retain(|m| m.link().is_some_and(|l| l.conn == conn));
                if had && bound.is_empty() {
                    // Every session on it ended (BYE) or moved: close the connection.
                    break;
                }
                ever_bound |= had;
                if !ever_bound && now.duration_since(opened) >= settings.bind_timeout {
                    // It never named a session of ours: it must not hold a connection slot.
                    break;
                }
                for m in &bound {
                    switch.sweep(m, now);
                }
                continue;
            }
            r = read.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
        };
        let _ = n;
        loop {
            let frame = match framer.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(FrameError::Oversized { head }) => {
                    // Answer 413 (RFC 4975 §7.3.1 "stop sending") and go on with the next.
                    if let Ok(Message::Request(req)) = parse_head(head, &limits) {
                        metrics::counter!("focus_msrp_delivery_failures_total", "reason" => "too_large").increment(1);
                        send_back(
                            &tx,
                            Response::for_request(&req, 413, Some("Chunk too large")),
                        );
                    }
                    continue;
                }
                Err(_) => break 'conn,
            };
            let wait = chunks
                .charge(1.0, Instant::now())
                .max(bytes_budget.charge(frame.bytes.len() as f64, Instant::now()));
            match handle(&switch, frame, &link, &mut bound, &limits, secure) {
                Step::Next => {}
                Step::Close => break 'conn,
                Step::Wait(req) => {
                    // Reading pauses (TCP holds the rest) until the session is installed or
                    // given up, so requests keep their order.
                    let session = target_session(&req).unwrap_or_default().to_string();
                    let member = tokio::select! {
                        _ = closing.cancelled() => break 'conn,
                        m = switch.wait_member(&session) => m,
                    };
                    match member.filter(|m| accepts(m, &req, secure)) {
                        Some(m) => on_request(&switch, m, *req, &link, &mut bound),
                        None => session_not_found(&tx, &req),
                    }
                }
            }
            if !wait.is_zero() {
                metrics::counter!("focus_msrp_throttled_total").increment(1);
                tokio::select! {
                    _ = closing.cancelled() => break 'conn,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    closing.cancel();
    switch.connection_lost(conn, &bound);
    metrics::gauge!("focus_msrp_connections_active").decrement(1.0);
}

/// What the reader does after a frame.
enum Step {
    Next,
    Close,
    /// A request for a session the focus has offered but not installed yet (its answer is
    /// still on the way through the session actor): wait for it, then handle the request.
    Wait(Box<Request>),
}

/// Handles one frame.
fn handle(
    switch: &Arc<Switch>,
    frame: Frame,
    link: &Link,
    bound: &mut Vec<Arc<Member>>,
    limits: &ParseLimits,
    secure: bool,
) -> Step {
    let msg = match parse(frame.bytes, limits) {
        Ok(m) => m,
        Err(ParseError::Reject(r)) => {
            if r.should_respond() {
                send_back(&link.tx, r.response());
            }
            return Step::Next;
        }
        Err(ParseError::Close(_)) => return Step::Close,
    };
    match msg {
        Message::Request(req) => match member_for(switch, &req, secure) {
            Some(member) => on_request(switch, member, req, link, bound),
            None if target_session(&req).is_some_and(|s| switch.is_expected(s)) => {
                return Step::Wait(Box::new(req))
            }
            None => session_not_found(&link.tx, &req),
        },
        Message::Response(resp) => {
            // A response's To-Path is our URI toward the member that answered (§7.2).
            let member = resp
                .to_path
                .first()
                .and_then(|u| u.session_id.as_deref().and_then(|s| switch.member(s)));
            if let Some(m) = member {
                switch.on_response(&m, &resp);
            }
        }
    }
    Step::Next
}

/// The session id a request names: the last To-Path hop is us.
fn target_session(req: &Request) -> Option<&str> {
    req.to_path.last().and_then(|u| u.session_id.as_deref())
}

/// The member a request is for, if installed.
fn member_for(switch: &Switch, req: &Request, secure: bool) -> Option<Arc<Member>> {
    target_session(req)
        .and_then(|s| switch.member(s))
        .filter(|m| accepts(m, req, secure))
}

/// Whether a request really names this member: the last To-Path hop is exactly its URI, and
/// (RFC 4975 §14) an msrps session only over TLS, an msrp one only without.
fn accepts(member: &Member, req: &Request, secure: bool) -> bool {
    req.to_path.last() == Some(&member.our_uri) && member.our_uri.is_secure() == secure
}

/// RFC 4975 §7.3.1: not a session of ours.
fn session_not_found(tx: &mpsc::Sender<Outgoing>, req: &Request) {
    if req.should_respond(481) {
        send_back(
            tx,
            Response::for_request(req, 481, Some("Session not found")),
        );
    }
}

/// A request for one of our sessions: it binds the connection, then goes to the switch.
fn on_request(
    switch: &Arc<Switch>,
    member: Arc<Member>,
    req: Request,
    link: &Link,
    bound: &mut Vec<Arc<Member>>,
) {
    // RFC 4572 / RFC 8122: a member that offered a fingerprint binds only a TLS connection
    // whose certificate has it.
    if let Some(fp) = member
        .fingerprint
        .as_ref()
        .filter(|_| member.our_uri.is_secure())
    {
        if !link.peer_cert.as_deref().is_some_and(|c| fp.matches(c)) {
            crate::transport::tls::count_failure(
                crate::transport::tls::Role::Server,
                "msrp",
                "fingerprint_mismatch",
            );
            if req.should_respond(403) {
                send_back(
                    &link.tx,
                    Response::for_request(&req, 403, Some("Certificate fingerprint mismatch")),
                );
            }
            return;
        }
    }
    match switch.bind(&member, link) {
        Ok(_) => {
            if !bound
                .iter()
                .any(|m| std::ptr::eq(m.as_ref(), member.as_ref()))
            {
                bound.push(member.clone());
            }
        }
        Err(_) => {
            if req.should_respond(506) {
                send_back(
                    &link.tx,
                    Response::for_request(&req, 506, Some("Session already bound")),
                );
            }
            return;
        }
    }
    match req.method {
        Method::Send => {
            for b in switch.on_send(&member, req, Instant::now()) {
                let _ = link.tx.try_send(Outgoing::from(b));
            }
        }
        Method::Report => {}
        Method::Nickname => {
            let code = switch.on_nickname(&member, &req);
            send_back(&link.tx, Response::for_request(&req, code, None));
        }
        Method::Other(_) => {
            if req.should_respond(501) {
                send_back(&link.tx, Response::for_request(&req, 501, None));
            }
        }
    }
}

fn send_back(tx: &mpsc::Sender<Outgoing>, resp: Response) {
    if let Ok(b) = resp.to_bytes() {
        let _ = tx.try_send(Outgoing::from(b));
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    write: W,
    mut rx: mpsc::Receiver<Outgoing>,
    closing: CancellationToken,
) {
    let mut w = BufWriter::with_capacity(64 * 1024, write);
    loop {
        let item = tokio::select! {
            _ = closing.cancelled() => break,
            i = rx.recv() => i,
        };
        let Some(mut out) = item else { break };
        loop {
            // A peer that stopped reading blocks the write: closing must still end it, or
            // the connection would stay open for as long as that peer does.
            let written = tokio::select! {
                _ = closing.cancelled() => return,
                r = write_out(&mut w, &out) => r,
            };
            if written.is_err() {
                closing.cancel();
                return;
            }
            // Batch what is already queued into one flush.
            match rx.try_recv() {
                Ok(next) => out = next,
                Err(_) => break,
            }
        }
        let flushed = tokio::select! {
            _ = closing.cancelled() => return,
            r = w.flush() => r,
        };
        if flushed.is_err() {
            closing.cancel();
            return;
        }
    }
    // Bounded for the same reason.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = w.flush().await;
        let _ = w.shutdown().await;
    })
    .await;
}

async fn write_out<W: AsyncWrite + Unpin>(
    w: &mut BufWriter<W>,
    out: &Outgoing,
) -> std::io::Result<()> {
    w.write_all(&out.head).await?;
    w.write_all(&out.prefix).await?;
    w.write_all(&out.body).await?;
    w.write_all(&out.tail).await
}
