//! A synchronous test user agent. Reader threads own the receive side of every socket and
//! answer NOTIFYs at once (so a subscriber never stalls the focus while the test drives other
//! agents); everything else goes through a channel to [`Ua::wait_for`], a receive with a
//! deadline.

use super::call::SentInvite;
use super::impair::{Impairment, Relay};
use super::{Focus, WAIT};
use bytes::{Bytes, BytesMut};
use cpm_focus::conference_info::{self, ConferenceInfo};
use cpm_focus::sip::{
    parse, Frame, Framer, Framing, HeaderName, Message, Method, ParseLimits, Request, Response,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// A TCP connection to `to` from loopback address `ip` (`127.0.0.x`, routed on lo).
pub fn tcp_connect_from(ip: &str, to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("TCP socket");
    let from: SocketAddr = format!("{ip}:0").parse().expect("an IPv4 address");
    s.bind(&from.into()).expect("binding a loopback alias");
    s.connect_timeout(&to.into(), WAIT).expect("TCP connect");
    s.into()
}

/// Where a message came from (and where an answer to it goes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    Udp(SocketAddr),
    /// One of the agent's TCP connections, by its number.
    Tcp(u64),
}

/// A message the agent received.
#[derive(Debug, Clone)]
pub struct Rx {
    pub msg: Message,
    pub raw: Bytes,
    pub origin: Origin,
    pub at: Instant,
}

impl Rx {
    pub fn response(&self) -> Option<&Response> {
        match &self.msg {
            Message::Response(r) => Some(r),
            Message::Request(_) => None,
        }
    }

    pub fn request(&self) -> Option<&Request> {
        match &self.msg {
            Message::Request(r) => Some(r),
            Message::Response(_) => None,
        }
    }

    /// The message as text (for assertion messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    fn summary(&self) -> String {
        self.text().lines().next().unwrap_or("").to_string()
    }
}

/// A NOTIFY the agent answered.
#[derive(Debug, Clone)]
pub struct Notify {
    pub request: Request,
    pub origin: Origin,
    pub at: Instant,
    /// The `Subscription-State` value.
    pub state: String,
    /// The conference-info body.
    pub doc: ConferenceInfo,
    /// The status the agent answered with.
    pub answered: u16,
}

impl Notify {
    /// True for `Subscription-State: terminated...`.
    pub fn is_terminated(&self) -> bool {
        self.state.starts_with("terminated")
    }
}

#[allow(clippy::large_enum_variant)] // test-only channel item; boxing buys nothing here
enum Event {
    Msg(Rx),
    Notify(Box<Notify>),
    /// A NOTIFY of a REFER's implicit subscription (`Event: refer`, `message/sipfrag`).
    Sipfrag(Rx),
    Closed(u64),
    Garbage(Bytes, String),
}

/// What the reader threads share with the agent.
struct Net {
    udp: Option<UdpSocket>,
    tcp: Mutex<HashMap<u64, TcpStream>>,
    next_conn: AtomicU64,
    /// Status NOTIFYs are answered with; 0 hands them to the test like any request.
    notify_status: AtomicU16,
    /// NOTIFYs answered (Call-ID, CSeq) with their status: retransmissions get the same.
    answered: Mutex<HashMap<(String, u32), u16>>,
    stop: AtomicBool,
    tx: Mutex<mpsc::Sender<Event>>,
    /// RFC 3261 agent behaviour for a lossy path (see [`Ua::udp_impaired`]); off by default,
    /// because other tests watch the focus's retransmissions themselves.
    lossy: AtomicBool,
    /// The agent's timer T1, in milliseconds (T2 is 8 x T1, timeouts 64 x T1, as in RFC 3261).
    t1_ms: AtomicU64,
    /// Client transactions being retransmitted (Timer A / Timer E), by branch.
    pending: Mutex<HashMap<String, Pending>>,
    /// Client transactions whose final response reached the test, by (branch, CSeq method):
    /// later copies are retransmissions.
    finals: Mutex<HashSet<(String, String)>>,
    /// The ACK sent for each INVITE, by (Call-ID, CSeq): sent again for every retransmitted
    /// final response (RFC 3261 §13.2.2.4 for a 2xx, §17.1.1.2 for the others).
    acks: Mutex<HashMap<(String, u32), Vec<u8>>>,
    /// Requests received (server transactions) by (Call-ID, CSeq, method), with the last answer
    /// once the test gave one: a retransmission gets it again and never reaches the test.
    served: Mutex<HashMap<RequestKey, Option<Vec<u8>>>>,
    /// Where ACKs go again (the path of the agent's requests).
    ack_to: Mutex<Option<Origin>>,
    /// Answer the focus's session refreshes (re-INVITE, UPDATE) at once with 200.
    auto_refresh: AtomicBool,
    /// The agent's Contact URI, for those answers.
    contact: Mutex<String>,
    lossy_stats: LossyStats,
}

/// A request of the focus by (Call-ID, CSeq number, method): its retransmissions share it.
type RequestKey = (String, u32, String);

/// A request of the agent waiting for its final response, retransmitted meanwhile.
struct Pending {
    text: Vec<u8>,
    to: Origin,
    invite: bool,
    interval: Duration,
    next: Instant,
    give_up: Instant,
}

/// What the agent's RFC 3261 behaviour did over the lossy path.
#[derive(Debug, Default)]
pub struct LossyStats {
    /// Requests the agent sent again (Timer A / Timer E).
    pub retransmitted: AtomicUsize,
    /// Final responses that came again and were absorbed.
    pub repeated_finals: AtomicUsize,
    /// ACKs sent again for a repeated final response to an INVITE.
    pub repeated_acks: AtomicUsize,
    /// Requests of the focus that came again and were answered again (or absorbed while the
    /// test had not answered yet).
    pub repeated_requests: AtomicUsize,
    /// Session refreshes of the focus answered automatically ([`Ua::answer_refreshes`]).
    pub refreshes: AtomicUsize,
}

impl Net {
    fn emit(&self, e: Event) {
        let _ = self.tx.lock().unwrap().send(e);
    }

    fn send(&self, to: Origin, bytes: &[u8]) {
        match to {
            Origin::Udp(addr) => {
                let udp = self.udp.as_ref().expect("agent has no UDP socket");
                udp.send_to(bytes, addr).expect("UDP send");
            }
            Origin::Tcp(id) => {
                let mut conns = self.tcp.lock().unwrap();
                let s = conns
                    .get_mut(&id)
                    .unwrap_or_else(|| panic!("TCP connection {id} is gone"));
                s.write_all(bytes).expect("TCP send");
            }
        }
    }

    fn add_conn(self: &Arc<Self>, stream: TcpStream) -> u64 {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let reader = stream.try_clone().expect("clone TCP stream");
        self.tcp.lock().unwrap().insert(id, stream);
        let net = self.clone();
        std::thread::spawn(move || net.tcp_reader(id, reader));
        id
    }

    fn tcp_reader(&self, id: u64, mut stream: TcpStream) {
        let mut framer = Framer::new(1 << 20);
        let mut buf = BytesMut::with_capacity(8192);
        let mut chunk = [0u8; 16384];
        loop {
            let n = match stream.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    self.emit(Event::Closed(id));
                    return;
                }
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            loop {
                match framer.decode(&mut buf) {
                    Ok(Some(Frame::Message(bytes))) => self.handle(bytes, Origin::Tcp(id)),
                    Ok(Some(Frame::Ping)) => {}
                    Ok(None) => break,
                    Err(e) => {
                        self.emit(Event::Garbage(
                            buf.split().freeze(),
                            format!("unframeable: {e}"),
                        ));
                        return;
                    }
                }
            }
        }
    }

    fn udp_reader(&self, socket: UdpSocket) {
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = vec![0u8; 65536];
        while !self.stop.load(Ordering::Relaxed) {
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                self.handle(Bytes::copy_from_slice(&buf[..n]), Origin::Udp(from));
            }
        }
    }

    fn handle(&self, raw: Bytes, origin: Origin) {
        let at = Instant::now();
        let framing = match origin {
            Origin::Udp(_) => Framing::Datagram,
            Origin::Tcp(_) => Framing::Stream,
        };
        let msg = match parse(raw.clone(), framing, &ParseLimits::default()) {
            Ok(m) => m,
            Err(e) => {
                let fault = e.fault().to_string();
                self.emit(Event::Garbage(raw, fault));
                return;
            }
        };
        if self.lossy.load(Ordering::Relaxed) && self.absorb(&msg, origin) {
            return;
        }
        if let Message::Request(req) = &msg {
            let status = self.notify_status.load(Ordering::Relaxed);
            if req.method == Method::Notify && status != 0 {
                self.answer_notify(req, raw, origin, at, status);
                return;
            }
        }
        self.emit(Event::Msg(Rx {
            msg,
            raw,
            origin,
            at,
        }));
    }

    /// Lossy-path agent behaviour for a received message; true when it is a retransmission
    /// dealt with here (the test never sees it).
    fn absorb(&self, msg: &Message, origin: Origin) -> bool {
        match msg {
            Message::Response(r) => self.absorb_response(r),
            Message::Request(req) => {
                let auto_notify =
                    req.method == Method::Notify && self.notify_status.load(Ordering::Relaxed) != 0;
                if req.method == Method::Ack {
                    // Our 2xx to this INVITE arrived: stop sending it again.
                    let key = two_xx_key(req.call_id(), req.cseq.seq);
                    self.pending.lock().unwrap().remove(&key);
                    return false;
                }
                // NOTIFYs answered automatically have their own memory of answers.
                if auto_notify {
                    return false;
                }
                let key = (
                    req.call_id().to_string(),
                    req.cseq.seq,
                    req.method.to_string(),
                );
                let mut served = self.served.lock().unwrap();
                match served.get(&key) {
                    None => {
                        served.insert(key, None);
                        drop(served);
                        self.answer_refresh(req, origin)
                    }
                    Some(answer) => {
                        let answer = answer.clone();
                        drop(served);
                        self.lossy_stats
                            .repeated_requests
                            .fetch_add(1, Ordering::Relaxed);
                        if let Some(a) = answer {
                            self.send(origin, &a);
                        }
                        true
                    }
                }
            }
        }
    }

    /// A session refresh of the focus (an UPDATE, or a re-INVITE: an INVITE inside a
    /// dialog) answered 200 at once when the test asked for it; true when answered.
    fn answer_refresh(&self, req: &Request, origin: Origin) -> bool {
        let refresh = match req.method {
            Method::Update => true,
            Method::Invite => req.to.tag().is_some(),
            _ => false,
        };
        if !refresh || !self.auto_refresh.load(Ordering::Relaxed) {
            return false;
        }
        let contact = format!("Contact: <{}>\r\n", self.contact.lock().unwrap());
        let mut text = response_text(req, 200, "OK", None, &contact);
        if req.method == Method::Invite {
            let head = text
                .strip_suffix("Content-Length: 0\r\n\r\n")
                .unwrap_or(&text);
            let sdp = super::AUDIO_OFFER;
            text = format!(
                "{head}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                sdp.len()
            );
        }
        self.lossy_stats.refreshes.fetch_add(1, Ordering::Relaxed);
        self.reply(req, origin, text.as_bytes());
        true
    }

    fn absorb_response(&self, r: &Response) -> bool {
        let branch = r.branch().unwrap_or("").to_string();
        {
            let mut pending = self.pending.lock().unwrap();
            if let Some(p) = pending.get_mut(&branch) {
                if p.invite || r.status >= 200 {
                    pending.remove(&branch);
                } else {
                    // RFC 3261 §17.1.2.2: after a provisional, retransmit every T2.
                    p.interval = self.t1() * 8;
                }
            }
        }
        if r.status < 200 {
            return false;
        }
        let first = self
            .finals
            .lock()
            .unwrap()
            .insert((branch, r.cseq.method.to_string()));
        if first {
            return false;
        }
        self.lossy_stats
            .repeated_finals
            .fetch_add(1, Ordering::Relaxed);
        if r.cseq.method == Method::Invite {
            let ack = self
                .acks
                .lock()
                .unwrap()
                .get(&(r.call_id().to_string(), r.cseq.seq))
                .cloned();
            if let Some(ack) = ack {
                self.lossy_stats
                    .repeated_acks
                    .fetch_add(1, Ordering::Relaxed);
                self.send_any(&ack);
            }
        }
        true
    }

    fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms.load(Ordering::Relaxed))
    }

    /// Sends to the focus over the path requests take (the first pending one's, or UDP to
    /// the address the ACK was recorded for).
    fn send_any(&self, bytes: &[u8]) {
        let to = *self.ack_to.lock().unwrap();
        if let Some(to) = to {
            self.send(to, bytes);
        }
    }

    /// Starts retransmitting request `text` of transaction `branch` until its final
    /// response (any response for an INVITE), as RFC 3261 Timers A/B and E/F say; a 2xx we
    /// sent is kept here the same way (doubling up to T2) until its ACK.
    fn track(&self, branch: &str, text: &[u8], to: Origin, invite: bool) {
        if text.starts_with(b"SIP/2.0 ") {
            // A response: not a path for ACKs.
        } else {
            *self.ack_to.lock().unwrap() = Some(to);
        }
        let t1 = self.t1();
        let now = Instant::now();
        self.pending.lock().unwrap().insert(
            branch.to_string(),
            Pending {
                text: text.to_vec(),
                to,
                invite,
                interval: t1,
                next: now + t1,
                give_up: now + t1 * 64,
            },
        );
    }

    /// Remembers the ACK of an INVITE, for repeated final responses.
    fn record_ack(&self, call_id: &str, cseq: u32, text: &[u8]) {
        self.acks
            .lock()
            .unwrap()
            .insert((call_id.to_string(), cseq), text.to_vec());
    }

    /// Sends an answer to a request of the focus and remembers it for its retransmissions.
    fn reply(&self, req: &Request, origin: Origin, bytes: &[u8]) {
        if self.lossy.load(Ordering::Relaxed) {
            let key = (
                req.call_id().to_string(),
                req.cseq.seq,
                req.method.to_string(),
            );
            self.served
                .lock()
                .unwrap()
                .insert(key, Some(bytes.to_vec()));
            // RFC 3261 §13.3.1.4: a 2xx to an INVITE goes again until the ACK comes.
            if req.method == Method::Invite && bytes.starts_with(b"SIP/2.0 2") {
                let key = two_xx_key(req.call_id(), req.cseq.seq);
                self.track(&key, bytes, origin, false);
            }
        }
        self.send(origin, bytes);
    }

    /// The retransmission timers of the agent's client transactions.
    fn retransmitter(&self) {
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let t2 = self.t1() * 8;
            let mut due = Vec::new();
            self.pending.lock().unwrap().retain(|_, p| {
                if now >= p.give_up {
                    return false;
                }
                if now >= p.next {
                    due.push((p.to, p.text.clone()));
                    p.interval = if p.invite {
                        p.interval * 2
                    } else {
                        (p.interval * 2).min(t2)
                    };
                    p.next = now + p.interval;
                }
                true
            });
            for (to, text) in due {
                self.lossy_stats
                    .retransmitted
                    .fetch_add(1, Ordering::Relaxed);
                self.send(to, &text);
            }
            // A timer wheel with a 5 ms tick: far finer than T1.
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn answer_notify(&self, req: &Request, raw: Bytes, origin: Origin, at: Instant, status: u16) {
        let key = (req.call_id().to_string(), req.cseq.seq);
        let (status, first) = {
            let mut answered = self.answered.lock().unwrap();
            match answered.get(&key) {
                Some(s) => (*s, false),
                None => {
                    answered.insert(key, status);
                    (status, true)
                }
            }
        };
        let reason = cpm_focus::sip::reason_phrase(status);
        let answer = response_text(req, status, reason, None, "");
        if !first {
            self.send(origin, answer.as_bytes());
            return;
        }
        // Queue the NOTIFY before answering it: the answer lets the focus send the next one,
        // possibly on another connection (and reader thread), which must queue behind this.
        self.queue_notify(req, raw, origin, at, status);
        self.send(origin, answer.as_bytes());
    }

    fn queue_notify(&self, req: &Request, raw: Bytes, origin: Origin, at: Instant, status: u16) {
        if is_refer_event(req) {
            self.emit(Event::Sipfrag(Rx {
                msg: Message::Request(req.clone()),
                raw,
                origin,
                at,
            }));
            return;
        }
        let state = req
            .headers
            .get(HeaderName::SubscriptionState)
            .unwrap_or("")
            .to_string();
        match conference_info::parse(&req.body, &conference_info::Limits::default()) {
            Ok(doc) => self.emit(Event::Notify(Box::new(Notify {
                request: req.clone(),
                origin,
                at,
                state,
                doc,
                answered: status,
            }))),
            Err(e) => self.emit(Event::Garbage(raw, format!("NOTIFY body: {e}"))),
        }
    }
}

/// The key under which a 2xx we sent to INVITE (`call_id`, `cseq`) is retransmitted.
fn two_xx_key(call_id: &str, cseq: u32) -> String {
    format!("2xx {call_id} {cseq}")
}

/// True for a NOTIFY of the `refer` event package (RFC 3515), with or without `;id=`.
fn is_refer_event(req: &Request) -> bool {
    req.headers
        .get(HeaderName::Event)
        .and_then(|e| e.split(';').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("refer"))
}

/// A response to `req` that copies Via (all), From, To (adding `to_tag` when it has none),
/// Call-ID and CSeq; `extra` is inserted before Content-Length.
pub fn response_text(
    req: &Request,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &str,
) -> String {
    let mut s = format!("SIP/2.0 {status} {reason}\r\n");
    for v in req.headers.get_all(HeaderName::Via) {
        s.push_str(&format!("Via: {v}\r\n"));
    }
    let h = |n: HeaderName| req.headers.get(n).unwrap_or("").to_string();
    s.push_str(&format!("From: {}\r\n", h(HeaderName::From)));
    let mut to = h(HeaderName::To);
    if let (None, Some(tag)) = (req.to.tag(), to_tag) {
        to.push_str(&format!(";tag={tag}"));
    }
    s.push_str(&format!("To: {to}\r\n"));
    s.push_str(&format!("Call-ID: {}\r\n", h(HeaderName::CallId)));
    s.push_str(&format!("CSeq: {}\r\n", h(HeaderName::CSeq)));
    s.push_str(extra);
    s.push_str("Content-Length: 0\r\n\r\n");
    s
}

/// A test user agent: `name@example.com`, on UDP or on one TCP connection to the focus.
pub struct Ua {
    pub name: String,
    /// The display name in From (the name unless a test sets another).
    pub display: String,
    /// The host part of the agent's address of record (`example.com`; `127.0.0.1` makes the
    /// AOR the one the focus sees when it calls the agent at its own address).
    pub domain: String,
    /// Header lines (each ending in CRLF) every INVITE of the agent carries: `Privacy`,
    /// `P-Asserted-Identity`.
    pub invite_headers: String,
    net: Arc<Net>,
    rx: mpsc::Receiver<Event>,
    /// Where requests to the focus go.
    pub primary: Origin,
    /// The address written into Via and Contact.
    pub local: SocketAddr,
    pub tcp: bool,
    /// The connection is TLS (through a [`super::Pki::relay`]): Via says TLS, Contact sips:.
    pub tls: bool,
    pub focus_udp: SocketAddr,
    pub focus_tcp: SocketAddr,
    /// Received and not yet consumed.
    stash: VecDeque<Rx>,
    notifies: VecDeque<Notify>,
    /// Refer NOTIFYs (answered like the others), in arrival order.
    sipfrags: VecDeque<Rx>,
    closed: HashSet<u64>,
    /// Messages that did not parse, kept when [`Ua::raw_ok`] is set.
    garbage: VecDeque<Bytes>,
    /// Accept unparseable messages (see [`Ua::recv_raw`]) instead of failing the test.
    pub raw_ok: bool,
    listener: Option<SocketAddr>,
    /// Provisional responses skipped by [`Ua::expect_final`], in arrival order.
    pub provisionals: Vec<Response>,
    /// INVITEs sent, by branch (to ACK a non-2xx, CANCEL or retransmit them).
    pub(super) invites: HashMap<String, SentInvite>,
    /// Every request sent, by branch, as text (for retransmissions).
    pub(super) sent: HashMap<String, String>,
    /// The impairment relay the agent talks through (see [`Ua::udp_impaired`]).
    pub relay: Option<Relay>,
}

impl Ua {
    fn new(name: &str, focus: &Focus, udp: Option<UdpSocket>) -> (Ua, Arc<Net>) {
        let (tx, rx) = mpsc::channel();
        let net = Arc::new(Net {
            udp,
            tcp: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            notify_status: AtomicU16::new(200),
            answered: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
            tx: Mutex::new(tx),
            lossy: AtomicBool::new(false),
            t1_ms: AtomicU64::new(500),
            pending: Mutex::new(HashMap::new()),
            finals: Mutex::new(HashSet::new()),
            acks: Mutex::new(HashMap::new()),
            ack_to: Mutex::new(None),
            auto_refresh: AtomicBool::new(false),
            contact: Mutex::new(String::new()),
            served: Mutex::new(HashMap::new()),
            lossy_stats: LossyStats::default(),
        });
        let ua = Ua {
            name: name.to_string(),
            display: name.to_string(),
            domain: "example.com".into(),
            invite_headers: String::new(),
            net: net.clone(),
            rx,
            primary: Origin::Udp(focus.sip_udp),
            local: "127.0.0.1:0".parse().unwrap(),
            tcp: false,
            tls: false,
            focus_udp: focus.sip_udp,
            focus_tcp: focus.sip_tcp,
            stash: VecDeque::new(),
            notifies: VecDeque::new(),
            sipfrags: VecDeque::new(),
            closed: HashSet::new(),
            garbage: VecDeque::new(),
            raw_ok: false,
            listener: None,
            provisionals: Vec::new(),
            invites: HashMap::new(),
            sent: HashMap::new(),
            relay: None,
        };
        (ua, net)
    }

    /// An agent on UDP. It also listens on TCP on the same port, as SIP agents do: the focus
    /// sends requests larger than 1300 bytes (a NOTIFY with a big roster) over TCP.
    pub fn udp(focus: &Focus, name: &str) -> Ua {
        Ua::udp_at(focus, name, IpAddr::from([127, 0, 0, 1]))
    }

    /// [`Ua::udp`] on loopback address `ip` (`::1` for IPv6), talking to the focus's
    /// address of that family.
    pub fn udp_at(focus: &Focus, name: &str, ip: IpAddr) -> Ua {
        let (udp, listener) = (0..50)
            .find_map(|_| {
                let udp = UdpSocket::bind((ip, 0)).ok()?;
                let port = udp.local_addr().ok()?.port();
                let l = TcpListener::bind((ip, port)).ok()?;
                Some((udp, l))
            })
            .unwrap_or_else(|| panic!("no UDP port with a free TCP twin on {ip}"));
        let local = udp.local_addr().unwrap();
        let reader = udp.try_clone().unwrap();
        let (mut ua, net) = Ua::new(name, focus, Some(udp));
        if ip != IpAddr::from([127, 0, 0, 1]) {
            ua.focus_udp = focus.addr_of("sip_udp", ip);
            ua.focus_tcp = focus.addr_of("sip_tcp", ip);
            ua.primary = Origin::Udp(ua.focus_udp);
        }
        ua.local = local;
        ua.listener = Some(local);
        let n = net.clone();
        std::thread::spawn(move || n.udp_reader(reader));
        let n = net.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if n.stop.load(Ordering::Relaxed) {
                    return;
                }
                if let Ok(s) = stream {
                    n.add_conn(s);
                }
            }
        });
        ua
    }

    /// An agent on UDP behind an impairment [`Relay`] seeded with `seed`, behaving as an
    /// RFC 3261 agent must on a lossy path: it retransmits its requests (Timers A and E, with
    /// timer T1 `t1`), sends the ACK again for every repeated final response to its INVITE,
    /// answers a repeated request of the focus with the same answer, and hands the test each
    /// message once.
    pub fn udp_impaired(
        focus: &Focus,
        name: &str,
        impairment: Impairment,
        seed: u64,
        t1: Duration,
    ) -> Ua {
        let mut ua = Ua::udp(focus, name);
        let relay = Relay::start(ua.local, focus.sip_udp, impairment, seed);
        ua.primary = Origin::Udp(relay.agent_side);
        ua.local = relay.focus_side;
        ua.relay = Some(relay);
        ua.net.t1_ms.store(t1.as_millis() as u64, Ordering::Relaxed);
        ua.net.lossy.store(true, Ordering::Relaxed);
        let net = ua.net.clone();
        std::thread::spawn(move || net.retransmitter());
        ua
    }

    /// Answer the focus's session refreshes (re-INVITE and UPDATE inside a dialog) with 200
    /// at once, from the reader thread: a test busy with other agents cannot hold them up
    /// (counted in [`LossyStats::refreshes`]).
    pub fn answer_refreshes(&self) {
        *self.net.contact.lock().unwrap() = self.contact_uri();
        self.net.auto_refresh.store(true, Ordering::Relaxed);
    }

    /// What the agent's lossy-path behaviour did so far (see [`Ua::udp_impaired`]).
    pub fn lossy_stats(&self) -> &LossyStats {
        &self.net.lossy_stats
    }

    /// The agent's relay (panics for an agent without one).
    pub fn relay(&self) -> &Relay {
        self.relay.as_ref().expect("an agent behind a relay")
    }

    /// Client transactions (and 2xx answers awaiting their ACK) the agent is still
    /// retransmitting.
    pub fn retransmitting(&self) -> usize {
        self.net.pending.lock().unwrap().len()
    }

    /// Sends request `text` of a new client transaction `branch` to the focus; on a lossy path
    /// it is retransmitted until answered.
    pub(super) fn send_new(&self, branch: &str, text: &str, invite: bool) {
        if self.net.lossy.load(Ordering::Relaxed) {
            self.net
                .track(branch, text.as_bytes(), self.primary, invite);
        }
        self.send_raw(text);
    }

    /// Sends the ACK of INVITE (`call_id`, `cseq`), remembered for repeated finals.
    pub(super) fn send_ack(&self, call_id: &str, cseq: u32, text: &str) {
        self.net.record_ack(call_id, cseq, text.as_bytes());
        self.send_raw(text);
    }

    /// An agent on one TCP connection to the focus (which reuses it for its requests).
    pub fn tcp(focus: &Focus, name: &str) -> Ua {
        Ua::tcp_at(focus, name, IpAddr::from([127, 0, 0, 1]))
    }

    /// [`Ua::tcp`] from loopback address `ip` to the focus's address of that family.
    pub fn tcp_at(focus: &Focus, name: &str, ip: IpAddr) -> Ua {
        let to = if ip == IpAddr::from([127, 0, 0, 1]) {
            focus.sip_tcp
        } else {
            focus.addr_of("sip_tcp", ip)
        };
        let stream = TcpStream::connect_timeout(&to, WAIT).expect("TCP connect");
        stream.set_nodelay(true).unwrap();
        let local = stream.local_addr().unwrap();
        let (mut ua, net) = Ua::new(name, focus, None);
        if ip != IpAddr::from([127, 0, 0, 1]) {
            ua.focus_udp = focus.addr_of("sip_udp", ip);
            ua.focus_tcp = to;
        }
        let id = net.add_conn(stream);
        ua.primary = Origin::Tcp(id);
        ua.local = local;
        ua.tcp = true;
        ua
    }

    /// An agent on one TCP connection to the focus from another loopback address
    /// (`127.0.0.x`): a source of its own for the focus's per-source and trust decisions.
    pub fn tcp_from(focus: &Focus, name: &str, ip: &str) -> Ua {
        let stream = tcp_connect_from(ip, focus.sip_tcp);
        stream.set_nodelay(true).unwrap();
        let local = stream.local_addr().unwrap();
        let (mut ua, net) = Ua::new(name, focus, None);
        let id = net.add_conn(stream);
        ua.primary = Origin::Tcp(id);
        ua.local = local;
        ua.tcp = true;
        ua
    }

    /// An agent on one TLS connection to the focus: a plain connection to `relay` (a
    /// [`super::Pki::relay`] to the focus's TLS port), which carries it over TLS.
    pub fn tls(focus: &Focus, name: &str, relay: SocketAddr) -> Ua {
        let stream = TcpStream::connect_timeout(&relay, WAIT).expect("relay connect");
        stream.set_nodelay(true).unwrap();
        let local = stream.local_addr().unwrap();
        let (mut ua, net) = Ua::new(name, focus, None);
        let id = net.add_conn(stream);
        ua.primary = Origin::Tcp(id);
        ua.local = local;
        ua.tcp = true;
        ua.tls = true;
        ua
    }

    /// An agent on UDP from another loopback address (`127.0.0.x`): a source of its own for
    /// the focus's per-source limits.
    pub fn udp_from(focus: &Focus, name: &str, ip: &str) -> Ua {
        let udp = UdpSocket::bind((ip, 0)).expect("binding a loopback alias");
        let local = udp.local_addr().unwrap();
        let reader = udp.try_clone().unwrap();
        let (mut ua, net) = Ua::new(name, focus, Some(udp));
        ua.local = local;
        let n = net.clone();
        std::thread::spawn(move || n.udp_reader(reader));
        ua
    }

    /// Answer NOTIFYs with `status` from now on; 0 hands them to the test as requests.
    pub fn set_notify_status(&self, status: u16) {
        self.net.notify_status.store(status, Ordering::Relaxed);
    }

    /// Sends text to the focus on the primary transport.
    pub fn send_raw(&self, text: &str) {
        self.net.send(self.primary, text.as_bytes());
    }

    /// Answers request `rx` with `bytes` (remembered for its retransmissions).
    pub(super) fn reply_raw(&self, rx: &Rx, bytes: &[u8]) {
        let req = rx.request().expect("an answer to a request");
        self.net.reply(req, rx.origin, bytes);
    }

    /// Sends bytes to where `origin` names.
    pub fn send_to(&self, origin: Origin, bytes: &[u8]) {
        self.net.send(origin, bytes);
    }

    fn pump(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(Event::Msg(m)) => self.stash.push_back(m),
            Ok(Event::Notify(n)) => self.notifies.push_back(*n),
            Ok(Event::Sipfrag(m)) => self.sipfrags.push_back(m),
            Ok(Event::Closed(id)) => {
                self.closed.insert(id);
            }
            Ok(Event::Garbage(raw, _)) if self.raw_ok => self.garbage.push_back(raw),
            Ok(Event::Garbage(raw, why)) => panic!(
                "{}: the focus sent something unusable ({why}):\n{}",
                self.name,
                String::from_utf8_lossy(&raw)
            ),
            Err(_) => return false,
        }
        true
    }

    /// The first received message (in arrival order) that `pred` accepts, waiting at most
    /// `timeout`; the others stay queued.
    pub fn wait_for(&mut self, timeout: Duration, mut pred: impl FnMut(&Rx) -> bool) -> Option<Rx> {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            if let Some(i) = self.stash.iter().skip(checked).position(&mut pred) {
                return self.stash.remove(checked + i);
            }
            checked = self.stash.len();
            if !self.pump(deadline) {
                return None;
            }
        }
    }

    /// The next message as bytes, whether it parses or not (set [`Ua::raw_ok`] first).
    pub fn recv_raw(&mut self, timeout: Duration) -> Option<Bytes> {
        assert!(self.raw_ok, "recv_raw needs raw_ok");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.stash.pop_front() {
                return Some(m.raw);
            }
            if let Some(g) = self.garbage.pop_front() {
                return Some(g);
            }
            if !self.pump(deadline) {
                return None;
            }
        }
    }

    /// The next message (not a NOTIFY being auto-answered).
    pub fn recv(&mut self, timeout: Duration) -> Option<Rx> {
        self.wait_for(timeout, |_| true)
    }

    /// Everything that arrives within `window` (NOTIFYs go to their own queue).
    pub fn drain(&mut self, window: Duration) -> Vec<Rx> {
        let deadline = Instant::now() + window;
        while self.pump(deadline) {}
        self.stash.drain(..).collect()
    }

    /// Asserts that nothing but auto-answered NOTIFYs arrives within `window`.
    pub fn assert_quiet(&mut self, window: Duration, what: &str) {
        let got = self.drain(window);
        assert!(
            got.is_empty(),
            "{}: expected nothing ({what}), got:\n{}",
            self.name,
            got.iter()
                .map(Rx::text)
                .collect::<Vec<_>>()
                .join("\n----\n")
        );
    }

    fn describe_stash(&self) -> String {
        if self.stash.is_empty() {
            return "nothing".into();
        }
        self.stash
            .iter()
            .map(Rx::summary)
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The next response on transaction `branch` (provisional or final).
    pub fn expect_response(&mut self, branch: &str) -> Response {
        self.expect_response_to(branch, None)
    }

    /// The next response on transaction `branch` whose CSeq names `method` (a CANCEL shares
    /// its INVITE's branch), or any method.
    pub fn expect_response_to(&mut self, branch: &str, method: Option<Method>) -> Response {
        let got = self.wait_for(WAIT, |m| {
            m.response().is_some_and(|r| {
                r.branch() == Some(branch) && method.as_ref().is_none_or(|x| *x == r.cseq.method)
            })
        });
        match got {
            Some(m) => m.response().cloned().unwrap(),
            None => panic!(
                "{}: no response on {branch} within {WAIT:?}; queued: {}",
                self.name,
                self.describe_stash()
            ),
        }
    }

    /// The final response on transaction `branch`; provisionals before it are kept in
    /// [`Ua::provisionals`]. A non-2xx final to an INVITE is ACKed, as the client
    /// transaction would.
    pub fn expect_final(&mut self, branch: &str) -> Response {
        self.expect_final_to(branch, None)
    }

    /// [`Ua::expect_final`] for the response to `method` only.
    pub fn expect_final_to(&mut self, branch: &str, method: Option<Method>) -> Response {
        loop {
            let r = self.expect_response_to(branch, method.clone());
            if r.status < 200 {
                self.provisionals.push(r);
                continue;
            }
            if r.cseq.method == Method::Invite && r.status >= 300 {
                self.ack_non_2xx(branch, &r);
            }
            return r;
        }
    }

    /// The next request with `method`.
    pub fn expect_request(&mut self, method: Method, timeout: Duration) -> Rx {
        let got = self.wait_for(timeout, |m| m.request().is_some_and(|r| r.method == method));
        got.unwrap_or_else(|| {
            panic!(
                "{}: no {method} within {timeout:?}; queued: {}",
                self.name,
                self.describe_stash()
            )
        })
    }

    /// Answers a request the agent received.
    pub fn respond(&self, rx: &Rx, status: u16) {
        let req = rx.request().expect("respond to a request");
        let text = response_text(req, status, cpm_focus::sip::reason_phrase(status), None, "");
        self.net.reply(req, rx.origin, text.as_bytes());
    }

    /// The next NOTIFY answered (in arrival order).
    pub fn next_notify(&mut self, timeout: Duration) -> Option<Notify> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(n) = self.notifies.pop_front() {
                return Some(n);
            }
            if !self.pump(deadline) {
                return None;
            }
        }
    }

    /// Like [`Ua::next_notify`], panicking when none comes within [`WAIT`].
    pub fn expect_notify(&mut self) -> Notify {
        self.next_notify(WAIT)
            .unwrap_or_else(|| panic!("{}: no NOTIFY within {WAIT:?}", self.name))
    }

    /// The next refer NOTIFY answered (in arrival order), waiting at most `timeout`.
    pub fn next_sipfrag(&mut self, timeout: Duration) -> Option<Rx> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(n) = self.sipfrags.pop_front() {
                return Some(n);
            }
            if !self.pump(deadline) {
                return None;
            }
        }
    }

    /// Like [`Ua::next_sipfrag`], panicking when none comes within [`WAIT`].
    pub fn expect_sipfrag(&mut self) -> Rx {
        self.next_sipfrag(WAIT)
            .unwrap_or_else(|| panic!("{}: no refer NOTIFY within {WAIT:?}", self.name))
    }

    /// True once the focus closed TCP connection `origin`, waiting at most `timeout`.
    pub fn wait_closed(&mut self, origin: Origin, timeout: Duration) -> bool {
        let Origin::Tcp(id) = origin else {
            panic!("not a TCP origin")
        };
        let deadline = Instant::now() + timeout;
        loop {
            if self.closed.contains(&id) {
                return true;
            }
            if !self.pump(deadline) {
                return false;
            }
        }
    }
}

impl Drop for Ua {
    fn drop(&mut self) {
        self.net.stop.store(true, Ordering::Relaxed);
        for s in self.net.tcp.lock().unwrap().values() {
            let _ = s.shutdown(Shutdown::Both);
        }
        // Wake the accept loop so it sees `stop`.
        if let Some(l) = self.listener {
            let _ = TcpStream::connect_timeout(&l, Duration::from_millis(200));
        }
    }
}
