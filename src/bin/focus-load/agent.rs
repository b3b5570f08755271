//! A small SIP user agent for load: one UDP socket (plus a TCP listener on the same port for
//! the large NOTIFYs the focus sends over TCP), client transactions with RFC 3261 retransmission
//! over UDP, and requests from the focus answered `200` after a handler has seen them.
//!
//! Many simulated users share one agent: they differ by From URI and Call-ID, and responses are
//! matched to their transaction by the Via branch.

use bytes::{Bytes, BytesMut};
use cpm_focus::sip::{
    parse, Framer, Framing, HeaderName, Message, MessageWriter, Method, NameAddr, ParseLimits,
    Request, Response,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// RFC 3261 T1 and T2 for our own retransmissions.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// Timer B/F: a transaction with no final response after this has failed.
const TX_TIMEOUT: Duration = Duration::from_secs(32);
/// How long an answered request is remembered so that its retransmissions are answered again
/// instead of being seen twice (Timer J of RFC 3261 §17.2.2: 64 x T1 over UDP).
const ANSWERED_FOR: Duration = Duration::from_secs(32);
/// Socket buffers large enough to absorb bursts at tens of thousands of datagrams a second.
const SOCKET_BUFFER: usize = 8 << 20;

/// Why a transaction failed.
#[derive(Debug, Clone)]
pub enum Fail {
    Status(u16),
    Timeout(&'static str),
    Io(String),
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Status(s) => write!(f, "status {s}"),
            Fail::Timeout(what) => write!(f, "{what} timed out"),
            Fail::Io(e) => write!(f, "socket: {e}"),
        }
    }
}

/// What the agent does with a request the focus sent: the handler sees it (with its arrival
/// time) and names the status to answer with.
pub trait OnRequest: Send + Sync + 'static {
    fn on_request(&self, req: &Request, at: Instant) -> u16;
}

/// Answers everything 200 and looks at nothing.
pub struct Accept;

impl OnRequest for Accept {
    fn on_request(&self, _req: &Request, _at: Instant) -> u16 {
        200
    }
}

/// One UDP socket speaking SIP to the focus for many users.
pub struct Agent {
    sock: Arc<UdpSocket>,
    pub local: SocketAddr,
    pub focus: SocketAddr,
    /// Waiting client transactions by Via branch.
    waiters: Mutex<HashMap<Box<str>, mpsc::UnboundedSender<Response>>>,
    next: AtomicU64,
    /// Requests from the focus that arrived (all transports), and datagrams that did not parse.
    pub requests_in: AtomicU64,
    pub garbage: AtomicU64,
    /// Retransmitted requests from the focus (answered again, not shown to the handler).
    pub retransmissions_in: AtomicU64,
}

/// The UDP server transactions' memory: requests answered in the last 32 to 64 s, by Via
/// branch and method, with the status they got. Two generations swapped every
/// [`ANSWERED_FOR`] keep it bounded without a timer per entry.
struct Answered {
    current: HashMap<Box<str>, u16>,
    previous: HashMap<Box<str>, u16>,
    since: Instant,
}

impl Answered {
    fn new() -> Self {
        Answered {
            current: HashMap::new(),
            previous: HashMap::new(),
            since: Instant::now(),
        }
    }

    fn key(req: &Request) -> Option<Box<str>> {
        Some(format!("{} {}", req.branch()?, req.method).into_boxed_str())
    }

    /// The status `key` was answered with, if it is a retransmission.
    fn get(&mut self, key: &str, now: Instant) -> Option<u16> {
        if now.duration_since(self.since) >= ANSWERED_FOR {
            self.previous = std::mem::take(&mut self.current);
            self.since = now;
        }
        self.current
            .get(key)
            .or_else(|| self.previous.get(key))
            .copied()
    }

    fn insert(&mut self, key: Box<str>, status: u16) {
        self.current.insert(key, status);
    }
}

/// A dialog established by a 2xx: what in-dialog requests need.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    /// Our From value with its tag.
    pub from: String,
    /// The remote To value with its tag.
    pub to: String,
    /// The focus's Contact URI.
    pub target: String,
    pub cseq: u32,
}

impl Agent {
    /// Binds UDP (and, with `tcp`, a TCP listener on the same port) on `ip` and starts the
    /// readers.
    pub async fn bind(
        ip: std::net::IpAddr,
        focus: SocketAddr,
        tcp: bool,
        handler: Arc<dyn OnRequest>,
    ) -> std::io::Result<Arc<Agent>> {
        let mut last_err = None;
        for _ in 0..50 {
            let udp = socket2::Socket::new(
                socket2::Domain::for_address(focus),
                socket2::Type::DGRAM,
                Some(socket2::Protocol::UDP),
            )?;
            let _ = udp.set_recv_buffer_size(SOCKET_BUFFER);
            let _ = udp.set_send_buffer_size(SOCKET_BUFFER);
            udp.set_nonblocking(true)?;
            if let Err(e) = udp.bind(&SocketAddr::new(ip, 0).into()) {
                last_err = Some(e);
                continue;
            }
            let local = udp
                .local_addr()?
                .as_socket()
                .ok_or_else(|| std::io::Error::other("not an IP socket"))?;
            let listener = if tcp {
                match TcpListener::bind(local).await {
                    Ok(l) => Some(l),
                    Err(e) => {
                        last_err = Some(e);
                        continue;
                    }
                }
            } else {
                None
            };
            let sock = Arc::new(UdpSocket::from_std(udp.into())?);
            let agent = Arc::new(Agent {
                sock,
                local,
                focus,
                waiters: Mutex::new(HashMap::new()),
                next: AtomicU64::new(1),
                requests_in: AtomicU64::new(0),
                garbage: AtomicU64::new(0),
                retransmissions_in: AtomicU64::new(0),
            });
            tokio::spawn(agent.clone().udp_reader(handler.clone()));
            if let Some(l) = listener {
                tokio::spawn(agent.clone().tcp_acceptor(l, handler));
            }
            return Ok(agent);
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("no free port")))
    }

    /// A number unique within this agent (tags, Call-IDs, branches).
    pub fn unique(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    fn branch(&self) -> String {
        format!("z9hG4bK{:x}.{:x}", self.local.port(), self.unique())
    }

    async fn udp_reader(self: Arc<Self>, handler: Arc<dyn OnRequest>) {
        let limits = ParseLimits::default();
        let mut buf = BytesMut::with_capacity(1 << 20);
        let mut answered = Answered::new();
        loop {
            buf.reserve(65536);
            let (n, from) = match self.sock.recv_buf_from(&mut buf).await {
                Ok(x) => x,
                // ICMP port unreachable from an earlier send shows up here on Linux: go on.
                Err(_) => continue,
            };
            let datagram = buf.split_to(n).freeze();
            let at = Instant::now();
            match parse(datagram, Framing::Datagram, &limits) {
                Ok(Message::Response(r)) => self.deliver(r),
                Ok(Message::Request(r)) => {
                    // A retransmission (our answer was late or lost) is answered again, as a
                    // UAS's server transaction would, and not delivered twice.
                    let key = if r.method == Method::Ack {
                        None
                    } else {
                        Answered::key(&r)
                    };
                    if let Some(status) = key.as_deref().and_then(|k| answered.get(k, at)) {
                        self.retransmissions_in.fetch_add(1, Ordering::Relaxed);
                        let _ = self.sock.send_to(&answer(&r, from, status), from).await;
                        continue;
                    }
                    self.requests_in.fetch_add(1, Ordering::Relaxed);
                    let status = handler.on_request(&r, at);
                    if r.method != Method::Ack {
                        if let Some(k) = key {
                            answered.insert(k, status);
                        }
                        let resp = answer(&r, from, status);
                        let _ = self.sock.send_to(&resp, from).await;
                    }
                }
                Err(_) => {
                    self.garbage.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    async fn tcp_acceptor(self: Arc<Self>, listener: TcpListener, handler: Arc<dyn OnRequest>) {
        loop {
            let Ok((stream, from)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(self.clone().tcp_conn(stream, from, handler.clone()));
        }
    }

    async fn tcp_conn(
        self: Arc<Self>,
        mut stream: TcpStream,
        from: SocketAddr,
        handler: Arc<dyn OnRequest>,
    ) {
        let limits = ParseLimits::default();
        let mut framer = Framer::new(16 << 20);
        let mut buf = BytesMut::with_capacity(1 << 16);
        loop {
            loop {
                let frame = match framer.decode(&mut buf) {
                    Ok(Some(cpm_focus::sip::Frame::Message(m))) => m,
                    Ok(Some(cpm_focus::sip::Frame::Ping)) => continue,
                    Ok(None) => break,
                    Err(_) => {
                        self.garbage.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                };
                let at = Instant::now();
                match parse(frame, Framing::Stream, &limits) {
                    Ok(Message::Response(r)) => self.deliver(r),
                    Ok(Message::Request(r)) => {
                        self.requests_in.fetch_add(1, Ordering::Relaxed);
                        let status = handler.on_request(&r, at);
                        if r.method != Method::Ack {
                            let resp = answer(&r, from, status);
                            if stream.write_all(&resp).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(_) => {
                        self.garbage.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            buf.reserve(65536);
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    fn deliver(&self, r: Response) {
        let Some(branch) = r.branch() else { return };
        let tx = self
            .waiters
            .lock()
            .ok()
            .and_then(|w| w.get(branch).cloned());
        if let Some(tx) = tx {
            let _ = tx.send(r);
        }
    }

    /// Sends a datagram to the focus.
    pub async fn send(&self, bytes: &[u8]) -> Result<(), Fail> {
        self.sock
            .send_to(bytes, self.focus)
            .await
            .map(|_| ())
            .map_err(|e| Fail::Io(e.to_string()))
    }

    /// Runs a client transaction: sends `msg` (whose Via branch is `branch`), retransmits over
    /// UDP until a response (INVITE: until a provisional), and returns the final response.
    pub async fn transact(&self, branch: &str, msg: Bytes, invite: bool) -> Result<Response, Fail> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        if let Ok(mut w) = self.waiters.lock() {
            w.insert(branch.into(), tx);
        }
        let result = self.run_transaction(&msg, invite, &mut rx).await;
        if let Ok(mut w) = self.waiters.lock() {
            w.remove(branch);
        }
        result
    }

    async fn run_transaction(
        &self,
        msg: &Bytes,
        invite: bool,
        rx: &mut mpsc::UnboundedReceiver<Response>,
    ) -> Result<Response, Fail> {
        let deadline = tokio::time::Instant::now() + TX_TIMEOUT;
        let mut interval = T1;
        let mut retransmit = true;
        self.send(msg).await?;
        loop {
            let wake = if retransmit {
                (tokio::time::Instant::now() + interval).min(deadline)
            } else {
                deadline
            };
            match tokio::time::timeout_at(wake, rx.recv()).await {
                Ok(Some(r)) if r.status >= 200 => return Ok(r),
                Ok(Some(_)) => {
                    // A provisional: the INVITE server stopped needing retransmissions; a
                    // non-INVITE one still wants them, at T2.
                    if invite {
                        retransmit = false;
                    } else {
                        interval = T2;
                    }
                }
                Ok(None) => return Err(Fail::Io("transaction channel closed".into())),
                Err(_) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(Fail::Timeout("transaction"));
                    }
                    self.send(msg).await?;
                    interval = if invite {
                        interval * 2
                    } else {
                        (interval * 2).min(T2)
                    };
                }
            }
        }
    }

    /// Writes a request outside any dialog. Returns its branch and bytes.
    #[allow(clippy::too_many_arguments)]
    fn out_of_dialog(
        &self,
        method: &Method,
        ruri: &str,
        from_user: &str,
        from_tag: &str,
        call_id: &str,
        cseq: u32,
        extra: &[(HeaderName, &str)],
        body: Option<(&str, &[u8])>,
    ) -> (String, Bytes) {
        let branch = self.branch();
        let mut w = MessageWriter::request(method, ruri);
        w.header_fmt(
            HeaderName::Via,
            format_args!("SIP/2.0/UDP {};branch={branch};rport", self.local),
        );
        w.header_fmt(
            HeaderName::From,
            format_args!("<sip:{from_user}@load.example>;tag={from_tag}"),
        );
        w.header_fmt(HeaderName::To, format_args!("<{ruri}>"));
        w.header(HeaderName::CallId, call_id);
        w.header_fmt(HeaderName::CSeq, format_args!("{cseq} {}", method.as_str()));
        w.header_fmt(
            HeaderName::Contact,
            format_args!("<sip:{from_user}@{}>", self.local),
        );
        w.header(HeaderName::MaxForwards, "70");
        for (name, value) in extra {
            w.header(*name, value);
        }
        let bytes = match body {
            Some((ct, b)) => w.finish(Some(ct), b),
            None => w.finish_empty(),
        };
        (branch, bytes)
    }

    /// Writes a request inside `dialog` with CSeq `cseq`.
    fn in_dialog(
        &self,
        method: &Method,
        d: &Dialog,
        cseq: u32,
        extra: &[(HeaderName, &str)],
    ) -> (String, Bytes) {
        let branch = self.branch();
        let mut w = MessageWriter::request(method, &d.target);
        w.header_fmt(
            HeaderName::Via,
            format_args!("SIP/2.0/UDP {};branch={branch};rport", self.local),
        );
        w.header(HeaderName::From, &d.from);
        w.header(HeaderName::To, &d.to);
        w.header(HeaderName::CallId, &d.call_id);
        w.header_fmt(HeaderName::CSeq, format_args!("{cseq} {}", method.as_str()));
        w.header(HeaderName::MaxForwards, "70");
        for (name, value) in extra {
            w.header(*name, value);
        }
        (branch, w.finish_empty())
    }

    /// INVITE `ruri` as `user` with an SDP offer; ACKs the final response. On 2xx returns the
    /// dialog, the answer body and the time to the final response.
    pub async fn invite(
        &self,
        ruri: &str,
        user: &str,
        sdp: &str,
    ) -> Result<(Dialog, Response, Duration), Fail> {
        let n = self.unique();
        let call_id = format!("{n:x}-{}@load", self.local.port());
        let tag = format!("t{n:x}");
        let (branch, msg) = self.out_of_dialog(
            &Method::Invite,
            ruri,
            user,
            &tag,
            &call_id,
            1,
            &[],
            Some(("application/sdp", sdp.as_bytes())),
        );
        let t0 = Instant::now();
        let resp = self.transact(&branch, msg.clone(), true).await?;
        let took = t0.elapsed();
        if !(200..300).contains(&resp.status) {
            // RFC 3261 §17.1.1.3: the ACK of a non-2xx reuses the INVITE's branch.
            let to = resp.headers.get(HeaderName::To).unwrap_or("");
            let ack = format!(
                "ACK {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nFrom: <sip:{user}@load.example>;tag={tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                self.local
            );
            let _ = self.send(ack.as_bytes()).await;
            return Err(Fail::Status(resp.status));
        }
        let target = resp
            .headers
            .get(HeaderName::Contact)
            .and_then(|c| NameAddr::parse(c).ok())
            .map(|a| a.uri.to_string())
            .unwrap_or_else(|| ruri.to_string());
        let d = Dialog {
            call_id,
            from: format!("<sip:{user}@load.example>;tag={tag}"),
            to: resp.headers.get(HeaderName::To).unwrap_or("").to_string(),
            target,
            cseq: 1,
        };
        let (_, ack) = self.in_dialog(&Method::Ack, &d, 1, &[]);
        self.send(&ack).await?;
        Ok((d, resp, took))
    }

    /// BYE in `dialog`; the time to its 2xx.
    pub async fn bye(&self, d: &mut Dialog) -> Result<Duration, Fail> {
        d.cseq += 1;
        let (branch, msg) = self.in_dialog(&Method::Bye, d, d.cseq, &[]);
        let t0 = Instant::now();
        let resp = self.transact(&branch, msg, false).await?;
        if (200..300).contains(&resp.status) {
            Ok(t0.elapsed())
        } else {
            Err(Fail::Status(resp.status))
        }
    }

    /// SUBSCRIBE to the conference package of `ruri` as `user`: the dialog (from the 2xx).
    pub async fn subscribe(&self, ruri: &str, user: &str, expires: u32) -> Result<Dialog, Fail> {
        let n = self.unique();
        let call_id = format!("s{n:x}-{}@load", self.local.port());
        let tag = format!("t{n:x}");
        let exp = expires.to_string();
        let (branch, msg) = self.out_of_dialog(
            &Method::Subscribe,
            ruri,
            user,
            &tag,
            &call_id,
            1,
            &[
                (HeaderName::Event, "conference"),
                (HeaderName::Expires, &exp),
                (HeaderName::Accept, "application/conference-info+xml"),
            ],
            None,
        );
        let resp = self.transact(&branch, msg, false).await?;
        if !(200..300).contains(&resp.status) {
            return Err(Fail::Status(resp.status));
        }
        Ok(Dialog {
            call_id,
            from: format!("<sip:{user}@load.example>;tag={tag}"),
            to: resp.headers.get(HeaderName::To).unwrap_or("").to_string(),
            target: resp
                .headers
                .get(HeaderName::Contact)
                .and_then(|c| NameAddr::parse(c).ok())
                .map(|a| a.uri.to_string())
                .unwrap_or_else(|| ruri.to_string()),
            cseq: 1,
        })
    }

    /// Ends a subscription (SUBSCRIBE with Expires: 0 in its dialog).
    pub async fn unsubscribe(&self, d: &mut Dialog) -> Result<(), Fail> {
        d.cseq += 1;
        let (branch, msg) = self.in_dialog(
            &Method::Subscribe,
            d,
            d.cseq,
            &[
                (HeaderName::Event, "conference"),
                (HeaderName::Expires, "0"),
            ],
        );
        let resp = self.transact(&branch, msg, false).await?;
        if (200..300).contains(&resp.status) {
            Ok(())
        } else {
            Err(Fail::Status(resp.status))
        }
    }

    /// A pager-mode MESSAGE to `ruri` from `user`: the final status and the time to it.
    pub async fn message(
        &self,
        ruri: &str,
        user: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<(u16, Duration), Fail> {
        let n = self.unique();
        let call_id = format!("m{n:x}-{}@load", self.local.port());
        let tag = format!("t{n:x}");
        let (branch, msg) = self.out_of_dialog(
            &Method::Message,
            ruri,
            user,
            &tag,
            &call_id,
            1,
            &[],
            Some((content_type, body)),
        );
        let t0 = Instant::now();
        let resp = self.transact(&branch, msg, false).await?;
        Ok((resp.status, t0.elapsed()))
    }
}

/// The response to a request from the focus.
fn answer(req: &Request, from: SocketAddr, status: u16) -> Bytes {
    let reason = if status == 200 { "OK" } else { "Error" };
    MessageWriter::response_to(req, from, status, reason, Some("load")).finish_empty()
}
