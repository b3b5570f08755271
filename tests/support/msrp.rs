//! A synchronous MSRP participant (RFC 4975) for group-chat tests, and the SIP join that sets
//! up its session with the focus.
//!
//! [`Ua::join_chat`] sends an INVITE whose SDP offers one `m=message ... TCP/MSRP *` stream
//! (`a=setup:active`: the participant connects; `passive`: it listens and the focus connects)
//! and returns a [`Chat`]: the dialog, the focus's SDP answer and its `a=path`.
//! [`Chat::connect`] opens the MSRP connection and gives an [`MsrpClient`].
//!
//! A reader thread owns the receive side of the connection: it frames with the focus's own
//! [`Framer`], answers every incoming SEND at once (200 by default; another status, or none,
//! with [`MsrpClient::set_answer`]) and hands everything to the test through a channel, so
//! waits are receives with deadlines. Chunked messages are put back together with the codec's
//! [`Reassembler`].

use super::{Call, Ua, WAIT};
use bytes::{Bytes, BytesMut};
use cpm_focus::media::cpim::{Addr, Cpim, CpimLimits};
use cpm_focus::media::msrp::{
    chunks, parse, ByteRange, Framer, Message, Method, MsrpUri, ParseLimits, Reassembler,
    Reassembly, ReassemblyLimits, Request, Response,
};
use cpm_focus::sip::Response as SipResponse;
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Who opens the MSRP connection (RFC 6135), as the participant's offer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// `a=setup:active`: the participant connects to the focus.
    Active,
    /// `a=setup:passive`: the participant listens; the focus connects and binds.
    Passive,
}

static SESSIONS: AtomicU64 = AtomicU64::new(1);

/// A fresh session id for a participant's `a=path`.
fn session_id(name: &str) -> String {
    format!(
        "{name}-{:x}-{}",
        std::process::id(),
        SESSIONS.fetch_add(1, Ordering::Relaxed)
    )
}

/// The participant's end before the connection exists: a bound socket (active) or a listener
/// (passive), whose port is the one in its `a=path`.
enum Local {
    Active(Socket),
    Passive(TcpListener),
}

/// What a participant offers: its MSRP URI and its side of the connection.
pub struct Endpoint {
    pub name: String,
    pub setup: Setup,
    /// The participant's URI (its `a=path`).
    pub path: MsrpUri,
    local: Option<Local>,
    /// SO_RCVBUF for the connection (a small one makes a participant that stops reading
    /// back up the focus quickly).
    recv_buffer: Option<usize>,
    /// MSRP over TLS: connect here (a [`super::Pki::relay`] to the focus's MSRP port).
    via: Option<SocketAddr>,
    /// `a=fingerprint` value to offer (RFC 8122), e.g. `sha-256 AB:...`.
    pub fingerprint: Option<String>,
}

impl Endpoint {
    /// A participant end on 127.0.0.1 with an ephemeral port.
    pub fn new(name: &str, setup: Setup) -> Endpoint {
        Endpoint::with_recv_buffer(name, setup, None)
    }

    /// [`Endpoint::new`] with the connection's receive buffer set to `recv_buffer` bytes.
    pub fn with_recv_buffer(name: &str, setup: Setup, recv_buffer: Option<usize>) -> Endpoint {
        Endpoint::build(name, setup, recv_buffer, IpAddr::from([127, 0, 0, 1]))
    }

    /// A participant end on loopback address `ip` (`::1`: an IPv6 path and `IN IP6` offer).
    pub fn at(name: &str, setup: Setup, ip: IpAddr) -> Endpoint {
        Endpoint::build(name, setup, None, ip)
    }

    fn build(name: &str, setup: Setup, recv_buffer: Option<usize>, ip: IpAddr) -> Endpoint {
        let (local, port) = match setup {
            Setup::Active => {
                let domain = if ip.is_ipv6() {
                    Domain::IPV6
                } else {
                    Domain::IPV4
                };
                let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP)).expect("TCP socket");
                if let Some(n) = recv_buffer {
                    s.set_recv_buffer_size(n).expect("SO_RCVBUF");
                }
                let any = SocketAddr::new(ip, 0);
                s.bind(&any.into()).expect("binding the MSRP socket");
                let port = s
                    .local_addr()
                    .unwrap()
                    .as_socket()
                    .expect("an IP socket")
                    .port();
                (Local::Active(s), port)
            }
            Setup::Passive => {
                let l = TcpListener::bind((ip, 0)).expect("MSRP listener");
                let port = l.local_addr().unwrap().port();
                (Local::Passive(l), port)
            }
        };
        // SocketAddr writes an IPv6 address in brackets, as the URI needs it.
        let path = MsrpUri::parse(&format!(
            "msrp://{}/{};tcp",
            SocketAddr::new(ip, port),
            session_id(name)
        ))
        .expect("our MSRP URI");
        Endpoint {
            name: name.to_string(),
            setup,
            path,
            local: Some(local),
            recv_buffer,
            via: None,
            fingerprint: None,
        }
    }

    /// An active participant end over TLS (`TCP/TLS/MSRP`, an `msrps:` path) whose
    /// connection goes through `relay`.
    pub fn tls(name: &str, relay: SocketAddr) -> Endpoint {
        let mut e = Endpoint::new(name, Setup::Active);
        e.path.scheme = cpm_focus::media::msrp::MsrpScheme::Msrps;
        e.via = Some(relay);
        e
    }

    /// The SDP offer: one MSRP stream, as a chat client sends it.
    pub fn offer(&self) -> String {
        let setup = match self.setup {
            Setup::Active => "active",
            Setup::Passive => "passive",
        };
        let ip = focus_addr(&self.path).ip();
        let family = if ip.is_ipv6() { "IP6" } else { "IP4" };
        let offer = format!(
            "v=0\r\n\
             o={name} 1 {version} IN {family} {ip}\r\n\
             s=-\r\n\
             c=IN {family} {ip}\r\n\
             t=0 0\r\n\
             m=message {port} {proto} *\r\n\
             a=accept-types:message/cpim text/plain\r\n\
             a=accept-wrapped-types:*\r\n\
             a=path:{path}\r\n\
             a=setup:{setup}\r\n",
            name = self.name,
            // Increasing across the ends a participant offers in one dialog (RFC 3264 §8).
            version = SESSIONS.fetch_add(1, Ordering::Relaxed),
            port = self.path.port.unwrap_or(0),
            proto = if self.path.is_secure() {
                "TCP/TLS/MSRP"
            } else {
                "TCP/MSRP"
            },
            path = self.path,
        );
        match &self.fingerprint {
            Some(fp) => format!("{offer}a=fingerprint:{fp}\r\n"),
            None => offer,
        }
    }
}

/// The MSRP media description of an SDP body, as `name -> value` attributes plus the m-line.
#[derive(Debug, Clone)]
pub struct MsrpMedia {
    /// `m=message <port> TCP/MSRP *`.
    pub m_line: String,
    pub port: u16,
    /// Every `a=` line of the MSRP media description, as (name, value).
    pub attrs: Vec<(String, String)>,
}

impl MsrpMedia {
    /// The first `m=message` description of `sdp`.
    pub fn find(sdp: &str) -> Option<MsrpMedia> {
        let mut lines = sdp.lines().skip_while(|l| !l.starts_with("m=message "));
        let m_line = lines.next()?.to_string();
        let port = m_line.split_whitespace().nth(1)?.parse().ok()?;
        let attrs = lines
            .take_while(|l| !l.starts_with("m="))
            .filter_map(|l| l.strip_prefix("a="))
            .map(|a| match a.split_once(':') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (a.to_string(), String::new()),
            })
            .collect();
        Some(MsrpMedia {
            m_line,
            port,
            attrs,
        })
    }

    /// The value of attribute `name` (the first one).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A participant that joined a chat: its dialog, the focus's answer, and its MSRP end.
pub struct Chat {
    pub name: String,
    /// The participant's SIP identity (From AOR): CPIM From of its messages.
    pub aor: String,
    pub call: Call,
    pub ok: SipResponse,
    /// The focus's SDP answer.
    pub answer: String,
    pub media: MsrpMedia,
    /// The focus's URI for this participant's session (its `a=path`).
    pub focus_path: MsrpUri,
    pub endpoint: Endpoint,
}

impl Chat {
    /// Opens the MSRP connection: connects to the focus's path (active), or accepts the
    /// focus's connection (passive). The session is not bound yet (see
    /// [`MsrpClient::bind`]); a passive participant gets the focus's binding SEND.
    pub fn connect(&mut self) -> MsrpClient {
        let focus_path = self.focus_path.clone();
        self.endpoint.connect(&focus_path)
    }
}

impl Endpoint {
    /// Opens the MSRP connection toward the focus's URI `focus_path`: connects (active) or
    /// accepts the focus's connection (passive). Used by [`Chat::connect`], and directly by a
    /// participant the focus called (its answer carries the endpoint's offer text).
    pub fn connect(&mut self, focus_path: &MsrpUri) -> MsrpClient {
        let local = self.local.take().expect("already connected");
        let stream = match local {
            Local::Active(socket) => {
                let to = self.via.unwrap_or_else(|| focus_addr(focus_path));
                socket
                    .connect_timeout(&to.into(), WAIT)
                    .unwrap_or_else(|e| panic!("{}: connecting to MSRP {to}: {e}", self.name));
                TcpStream::from(socket)
            }
            Local::Passive(listener) => {
                let (tx, rx) = mpsc::channel();
                std::thread::spawn(move || {
                    let _ = tx.send(listener.accept().map(|(s, _)| s));
                });
                let s = rx
                    .recv_timeout(WAIT)
                    .unwrap_or_else(|_| panic!("{}: the focus did not connect", self.name))
                    .expect("accepting the focus's MSRP connection");
                if let Some(n) = self.recv_buffer {
                    // Set after accept: good enough for a test that shrinks the window.
                    Socket::from(s.try_clone().unwrap())
                        .set_recv_buffer_size(n)
                        .expect("SO_RCVBUF");
                }
                s
            }
        };
        MsrpClient::start(&self.name, stream, self.path.clone(), focus_path.clone())
    }
}

/// The socket address an MSRP URI names (an IP literal in tests).
pub fn focus_addr(uri: &MsrpUri) -> SocketAddr {
    let host = uri.host.to_string();
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .unwrap_or_else(|_| panic!("MSRP URI {uri} does not name an IP address"));
    SocketAddr::new(ip, uri.port.expect("MSRP URI without port"))
}

impl Ua {
    /// Joins conference `uri` with an MSRP offer: INVITE, 200 (with an MSRP answer), ACK.
    pub fn join_chat(&mut self, uri: &str, setup: Setup) -> Chat {
        let endpoint = self.chat_end(setup);
        self.join_chat_with(uri, endpoint)
    }

    /// A chat end for this agent: on 127.0.0.1, or on the agent's own address when that is
    /// IPv6 (an IPv6 agent chats over IPv6).
    pub fn chat_end(&self, setup: Setup) -> Endpoint {
        match self.local.ip() {
            ip @ IpAddr::V6(_) => Endpoint::at(&self.name.clone(), setup, ip),
            IpAddr::V4(_) => Endpoint::new(&self.name.clone(), setup),
        }
    }

    /// [`Ua::join_chat`] with a prepared participant end.
    pub fn join_chat_with(&mut self, uri: &str, endpoint: Endpoint) -> Chat {
        let mut call = Call::new(uri);
        let ok = self.offer_chat(&mut call, &endpoint);
        self.chat_of(call, ok, endpoint)
    }

    /// A re-INVITE in `chat`'s dialog offering `endpoint` instead (the participant moved its
    /// MSRP end); `chat` takes the new answer.
    pub fn reinvite_chat(&mut self, chat: &mut Chat, endpoint: Endpoint) {
        let mut call = chat.call.clone();
        let ok = self.offer_chat(&mut call, &endpoint);
        *chat = self.chat_of(call, ok, endpoint);
    }

    /// INVITE with the endpoint's offer, 200, ACK.
    fn offer_chat(&mut self, call: &mut Call, endpoint: &Endpoint) -> SipResponse {
        let offer = endpoint.offer();
        let b = self.invite(call, Some(&offer));
        let ok = self.expect_final(&b);
        assert_eq!(
            ok.status, 200,
            "{}: chat INVITE refused: {} {}",
            self.name, ok.status, ok.reason
        );
        call.learn(&ok);
        self.ack(call);
        ok
    }

    fn chat_of(&mut self, call: Call, ok: SipResponse, endpoint: Endpoint) -> Chat {
        let answer = String::from_utf8(ok.body.to_vec()).expect("SDP answer is text");
        let media = MsrpMedia::find(&answer)
            .unwrap_or_else(|| panic!("{}: no m=message in the answer:\n{answer}", self.name));
        assert_ne!(media.port, 0, "MSRP stream declined:\n{answer}");
        let path = media
            .attr("path")
            .unwrap_or_else(|| panic!("no a=path in the answer:\n{answer}"));
        let focus_path = MsrpUri::parse(path).unwrap_or_else(|e| panic!("a=path {path}: {e}"));
        Chat {
            name: self.name.clone(),
            aor: self.aor(),
            call,
            ok,
            answer,
            media,
            focus_path,
            endpoint,
        }
    }
}

/// What the reader thread hands to the test.
enum Event {
    Request(Request),
    Response(Response),
    Closed,
    Garbage(String),
}

/// State the reader thread shares with the client.
struct Shared {
    /// Status incoming SENDs are answered with; 0 leaves them unanswered.
    answer: AtomicU16,
    /// While true the reader stops reading (a participant that cannot keep up).
    paused: Mutex<bool>,
    resumed: Condvar,
}

/// A message received whole (chunks put back together).
#[derive(Debug, Clone)]
pub struct Received {
    /// The SEND (header fields of its first chunk) with the whole body.
    pub request: Request,
    /// The body parsed as CPIM, when it is `message/cpim`.
    pub cpim: Option<Cpim>,
    pub at: Instant,
}

impl Received {
    /// The CPIM envelope (panics when the message is not `message/cpim`).
    pub fn cpim(&self) -> &Cpim {
        self.cpim.as_ref().unwrap_or_else(|| {
            panic!(
                "not message/cpim: {:?} {:?}",
                self.request.content_type,
                String::from_utf8_lossy(&self.request.body)
            )
        })
    }

    /// The CPIM From URI.
    pub fn sender_uri(&self) -> String {
        self.cpim()
            .from
            .as_ref()
            .map(|a| a.uri.clone())
            .expect("CPIM without From")
    }

    /// The CPIM To URIs.
    pub fn to_uris(&self) -> Vec<String> {
        self.cpim().to.iter().map(|a| a.uri.clone()).collect()
    }

    /// The content inside the CPIM envelope (or the body itself).
    pub fn content(&self) -> Bytes {
        match &self.cpim {
            Some(c) => c.body.clone(),
            None => self.request.body.clone(),
        }
    }

    /// The content as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.content()).into_owned()
    }

    /// The encapsulated Content-Type.
    pub fn inner_type(&self) -> Option<String> {
        self.cpim.as_ref().and_then(|c| c.content_type.clone())
    }
}

/// One participant's MSRP connection.
pub struct MsrpClient {
    pub name: String,
    /// Our URI: From-Path of what we send.
    pub local: MsrpUri,
    /// The focus's URI for our session: To-Path of what we send.
    pub focus: MsrpUri,
    writer: Arc<Mutex<TcpStream>>,
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Event>,
    sends: VecDeque<Request>,
    reports: VecDeque<Request>,
    other_requests: VecDeque<Request>,
    responses: VecDeque<Response>,
    reassembler: Reassembler,
    /// Empty SENDs received (the focus's binding SEND when it connected to us).
    pub empty_sends: Vec<Request>,
    /// SEND chunks received so far.
    pub chunks_received: usize,
    /// Messages the focus aborted (a `#` chunk): what had arrived of each.
    pub aborted: Vec<Option<ByteRange>>,
    closed: bool,
}

impl MsrpClient {
    fn start(name: &str, stream: TcpStream, local: MsrpUri, focus: MsrpUri) -> MsrpClient {
        stream.set_nodelay(true).unwrap();
        let writer = Arc::new(Mutex::new(stream.try_clone().expect("clone MSRP stream")));
        let shared = Arc::new(Shared {
            answer: AtomicU16::new(200),
            paused: Mutex::new(false),
            resumed: Condvar::new(),
        });
        let (tx, rx) = mpsc::channel();
        let (w, s) = (writer.clone(), shared.clone());
        std::thread::spawn(move || reader(stream, w, s, tx));
        MsrpClient {
            name: name.to_string(),
            local,
            focus,
            writer,
            shared,
            rx,
            sends: VecDeque::new(),
            reports: VecDeque::new(),
            other_requests: VecDeque::new(),
            responses: VecDeque::new(),
            reassembler: Reassembler::new(ReassemblyLimits {
                max_message: 64 * 1024 * 1024,
                max_chunks: 1 << 16,
                max_partial: 1024,
            }),
            empty_sends: Vec::new(),
            chunks_received: 0,
            aborted: Vec::new(),
            closed: false,
        }
    }

    /// A new connection to the focus for the same session (same URIs): a participant that
    /// reconnects after its connection dropped. Not bound until it sends.
    pub fn reconnect(&self) -> MsrpClient {
        let to = focus_addr(&self.focus);
        let stream = TcpStream::connect_timeout(&to, WAIT)
            .unwrap_or_else(|e| panic!("{}: reconnecting to MSRP {to}: {e}", self.name));
        MsrpClient::start(&self.name, stream, self.local.clone(), self.focus.clone())
    }

    /// Answer incoming SENDs with `status` from now on; 0 leaves them unanswered.
    pub fn set_answer(&self, status: u16) {
        self.shared.answer.store(status, Ordering::Relaxed);
    }

    /// Stops reading from the connection (the focus's writes back up), until [`resume`].
    ///
    /// [`resume`]: MsrpClient::resume
    pub fn pause(&self) {
        *self.shared.paused.lock().unwrap() = true;
    }

    pub fn resume(&self) {
        *self.shared.paused.lock().unwrap() = false;
        self.shared.resumed.notify_all();
    }

    /// Closes the TCP connection (both directions), as a participant that drops off.
    pub fn close(&self) {
        let _ = self.writer.lock().unwrap().shutdown(Shutdown::Both);
    }

    /// A SEND to the focus in our session, with fresh ids and the whole body in one chunk.
    pub fn request(&self, content_type: &str, body: impl Into<Bytes>) -> Request {
        Request::send(
            vec![self.focus.clone()],
            vec![self.local.clone()],
            content_type,
            body.into(),
        )
    }

    /// Writes a request (or response) as it is.
    pub fn write(&self, bytes: &[u8]) {
        self.writer
            .lock()
            .unwrap()
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("{}: MSRP write: {e}", self.name));
    }

    /// Sends `req` in one piece; returns its transaction id.
    pub fn send(&self, req: &Request) -> String {
        let bytes = req.to_bytes().expect("encoding a SEND");
        self.write(&bytes);
        req.transaction_id.clone()
    }

    /// Sends `req` in chunks of at most `size` body bytes; returns the transaction ids.
    pub fn send_chunked(&self, req: &Request, size: usize) -> Vec<String> {
        chunks(req, size).map(|c| self.send(&c)).collect()
    }

    /// Sends a text/plain message and waits for its response.
    pub fn say(&mut self, text: &str) -> Response {
        let req = self.request("text/plain", Bytes::copy_from_slice(text.as_bytes()));
        let tid = self.send(&req);
        self.expect_response(&tid)
    }

    /// Binds the connection to our session with an empty SEND (RFC 4975 §5.4); asserts 200.
    pub fn bind(&mut self) {
        let req = self.request("", Bytes::new());
        let tid = self.send(&req);
        let r = self.expect_response(&tid);
        assert_eq!(r.code, 200, "{}: binding SEND answered {r:?}", self.name);
    }

    fn pump(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(Event::Request(r)) => match r.method {
                Method::Send => self.sends.push_back(r),
                Method::Report => self.reports.push_back(r),
                _ => self.other_requests.push_back(r),
            },
            Ok(Event::Response(r)) => self.responses.push_back(r),
            Ok(Event::Closed) => self.closed = true,
            Ok(Event::Garbage(why)) => panic!("{}: the focus sent garbage: {why}", self.name),
            Err(_) => return false,
        }
        true
    }

    /// The response to transaction `tid`, waiting at most `timeout`.
    pub fn wait_response(&mut self, tid: &str, timeout: Duration) -> Option<Response> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.responses.iter().position(|r| r.transaction_id == tid) {
                return self.responses.remove(i);
            }
            if !self.pump(deadline) {
                return None;
            }
        }
    }

    /// The response to transaction `tid` (within [`WAIT`]).
    pub fn expect_response(&mut self, tid: &str) -> Response {
        self.wait_response(tid, WAIT).unwrap_or_else(|| {
            panic!(
                "{}: no response to {tid} within {WAIT:?} (closed: {})",
                self.name, self.closed
            )
        })
    }

    /// Responses received and not taken by [`MsrpClient::wait_response`].
    pub fn take_responses(&mut self) -> Vec<Response> {
        while self.pump(Instant::now()) {}
        self.responses.drain(..).collect()
    }

    /// The next whole message (empty binding SENDs are set aside in
    /// [`MsrpClient::empty_sends`]), waiting at most `timeout`.
    pub fn next_message(&mut self, timeout: Duration) -> Option<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(chunk) = self.sends.pop_front() {
                self.chunks_received += 1;
                if chunk.body.is_empty() && chunk.byte_range().total == Some(0) {
                    self.empty_sends.push(chunk);
                    continue;
                }
                match self.reassembler.accept(chunk) {
                    Ok(Reassembly::Partial) => {}
                    Ok(Reassembly::Complete(r)) => return Some(received(*r)),
                    Ok(Reassembly::Aborted { received }) => self.aborted.push(received),
                    Err(e) => panic!("{}: chunks do not reassemble: {e}", self.name),
                }
            }
            if !self.pump(deadline) {
                return None;
            }
        }
    }

    /// The next whole message (within [`WAIT`]).
    pub fn expect_message(&mut self) -> Received {
        self.next_message(WAIT)
            .unwrap_or_else(|| panic!("{}: no message within {WAIT:?}", self.name))
    }

    /// Asserts that no message arrives within `window`.
    pub fn assert_no_message(&mut self, window: Duration, what: &str) {
        if let Some(m) = self.next_message(window) {
            panic!(
                "{}: expected no message ({what}), got {:?}: {}",
                self.name,
                m.cpim.as_ref().and_then(|c| c.from.clone()),
                m.text()
            );
        }
    }

    /// The next REPORT, waiting at most `timeout`.
    pub fn next_report(&mut self, timeout: Duration) -> Option<Request> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.reports.pop_front() {
                return Some(r);
            }
            if !self.pump(deadline) {
                return None;
            }
        }
    }

    /// The next request that is neither SEND nor REPORT.
    pub fn next_other_request(&mut self, timeout: Duration) -> Option<Request> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.other_requests.pop_front() {
                return Some(r);
            }
            if !self.pump(deadline) {
                return None;
            }
        }
    }

    /// The next SEND chunk as received (no reassembly), waiting at most `timeout`.
    pub fn next_chunk(&mut self, timeout: Duration) -> Option<Request> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.sends.pop_front() {
                self.chunks_received += 1;
                return Some(r);
            }
            if !self.pump(deadline) {
                return None;
            }
        }
    }

    /// True once the focus closed the connection, waiting at most `timeout`. What arrived
    /// before the close stays queued.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed {
            if !self.pump(deadline) {
                return false;
            }
        }
        true
    }
}

impl Drop for MsrpClient {
    fn drop(&mut self) {
        self.resume();
        self.close();
    }
}

fn received(request: Request) -> Received {
    let is_cpim = request
        .content_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("message/cpim"));
    let cpim = is_cpim.then(|| {
        Cpim::parse(
            request.body.clone(),
            &CpimLimits {
                max_headers: 64,
                max_size: 64 * 1024 * 1024,
            },
        )
        .unwrap_or_else(|e| {
            panic!(
                "CPIM from the focus does not parse ({e}):\n{}",
                String::from_utf8_lossy(&request.body)
            )
        })
    });
    Received {
        request,
        cpim,
        at: Instant::now(),
    }
}

/// The reader thread: frames, answers SENDs, hands everything over.
fn reader(
    mut stream: TcpStream,
    writer: Arc<Mutex<TcpStream>>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Event>,
) {
    let mut framer = Framer::new(16 * 1024 * 1024);
    let limits = ParseLimits::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let wait_resumed = || {
        let mut paused = shared.paused.lock().unwrap();
        while *paused {
            paused = shared.resumed.wait(paused).unwrap();
        }
    };
    loop {
        wait_resumed();
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Event::Closed);
                return;
            }
            Ok(n) => n,
        };
        // A read already blocked when the client paused: hold what it got, unanswered.
        wait_resumed();
        buf.extend_from_slice(&chunk[..n]);
        loop {
            let frame = match framer.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Event::Garbage(format!(
                        "unframeable ({e}): {:?}",
                        String::from_utf8_lossy(&buf[..buf.len().min(400)])
                    )));
                    return;
                }
            };
            let msg = match parse(frame.bytes.clone(), &limits) {
                Ok(m) => m,
                Err(e) => {
                    let _ = tx.send(Event::Garbage(format!(
                        "unparseable ({:?}): {}",
                        e.fault(),
                        String::from_utf8_lossy(&frame.bytes)
                    )));
                    return;
                }
            };
            let event = match msg {
                Message::Request(req) => {
                    let code = shared.answer.load(Ordering::Relaxed);
                    if req.method == Method::Send && code != 0 && req.should_respond(code) {
                        let resp = Response::for_request(&req, code, None);
                        let bytes = resp.to_bytes().expect("encoding a response");
                        // A write error means the connection is going: the read side sees it.
                        let _ = writer.lock().unwrap().write_all(&bytes);
                    }
                    Event::Request(req)
                }
                Message::Response(r) => Event::Response(r),
            };
            if tx.send(event).is_err() {
                return;
            }
        }
    }
}

/// A `message/cpim` body from `from` to `to` carrying `text` (text/plain).
pub fn cpim_text(from: &str, to: &str, text: &str) -> Cpim {
    Cpim::new(
        Addr::new(from),
        Addr::new(to),
        "text/plain",
        Bytes::copy_from_slice(text.as_bytes()),
        SystemTime::now(),
    )
}

/// A chat member: SIP agent, dialog, bound MSRP connection.
pub struct ChatMember {
    pub ua: Ua,
    pub call: Call,
    pub msrp: MsrpClient,
}

impl ChatMember {
    /// `ua` joins the chat `uri` (active setup), connects and binds.
    pub fn join(mut ua: Ua, uri: &str) -> ChatMember {
        let mut chat = ua.join_chat(uri, Setup::Active);
        let mut msrp = chat.connect();
        msrp.bind();
        ChatMember {
            ua,
            call: chat.call,
            msrp,
        }
    }
}
