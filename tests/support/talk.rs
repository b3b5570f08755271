//! A synchronous talk-burst participant for floor-control tests: the SIP join offering audio
//! (RTP on a real UDP port pair) and a BFCP stream (RFC 8856), a BFCP client over TCP
//! (RFC 8855) and RTP send/receive helpers.
//!
//! [`Ua::join_talk`] returns a [`Talker`]: the dialog, the focus's answer with its audio port
//! and its `a=confid`/`a=userid`/`a=floorid`, and the participant's own RTP and RTCP sockets.
//! [`Talker::connect_bfcp`] opens the BFCP connection; a reader thread decodes what the focus
//! sends and hands it to the test through a channel, so waits are receives with deadlines.

use super::{Call, Focus, Ua, WAIT};
use bytes::BytesMut;
use cpm_focus::push_to_talk::bfcp::{
    encode, Attribute, ErrorCode, Message, Primitive, Priority, RequestStatus, StreamDecoder,
};
use cpm_focus::push_to_talk::rtp::RtpHeader;
use cpm_focus::sip::Response as SipResponse;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// An RTP/RTCP port pair bound on loopback (even port for RTP).
pub fn rtp_pair() -> (UdpSocket, UdpSocket) {
    rtp_pair_at(IpAddr::from([127, 0, 0, 1]))
}

/// [`rtp_pair`] on another loopback address (`127.0.0.x`, or `::1` for IPv6).
pub fn rtp_pair_at(ip: IpAddr) -> (UdpSocket, UdpSocket) {
    for _ in 0..200 {
        let Ok(rtp) = UdpSocket::bind((ip, 0)) else {
            continue;
        };
        let port = rtp.local_addr().unwrap().port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind((ip, port + 1)) {
            return (rtp, rtcp);
        }
    }
    panic!("no free even/odd UDP port pair");
}

/// A focus serving audio, with a talk group whose chair is `sip:chair@example.com`. Legs
/// are only reported silent after a minute unless `extra` sets `[rtp]` (a loaded machine must
/// not make a test's holder look gone).
pub fn talk_focus(extra: &str) -> Focus {
    let rtp = if extra.contains("[rtp]") {
        ""
    } else {
        "[rtp]\nsilence_timeout_s = 60\n"
    };
    Focus::start(&format!(
        r#"
[policy]
allowed_media = ["msrp", "audio"]
{rtp}
{extra}
[[groups]]
uri = "sip:talk@focus.example.com"
display_name = "Talk"
codecs = ["PCMU/8000"]
[[groups.members]]
uri = "sip:chair@example.com"
role = "moderator"
"#
    ))
}

/// An offer with audio on `rtp_port` (`payloads`: `m=` formats with their rtpmap lines) and,
/// when `bfcp` is set, a BFCP stream whose floor is tied to the audio's `a=label`.
pub fn talk_offer(rtp_port: u16, payloads: &[(u8, &str)], label: &str, bfcp: bool) -> String {
    talk_offer_at(
        IpAddr::from([127, 0, 0, 1]),
        rtp_port,
        payloads,
        label,
        bfcp,
    )
}

/// [`talk_offer`] announcing `ip` (`c=`, `IN IP6` for an IPv6 address) as where the
/// participant's media and BFCP are.
pub fn talk_offer_at(
    ip: IpAddr,
    rtp_port: u16,
    payloads: &[(u8, &str)],
    label: &str,
    bfcp: bool,
) -> String {
    let formats: Vec<String> = payloads.iter().map(|(pt, _)| pt.to_string()).collect();
    let family = if ip.is_ipv6() { "IP6" } else { "IP4" };
    let mut sdp = format!(
        "v=0\r\no=- 1 1 IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP {}\r\n",
        formats.join(" ")
    );
    for (pt, map) in payloads {
        sdp.push_str(&format!("a=rtpmap:{pt} {map}\r\n"));
    }
    sdp.push_str(&format!("a=label:{label}\r\n"));
    if bfcp {
        sdp.push_str(
            "m=application 9 TCP/BFCP *\r\na=floorctrl:c-only\r\na=setup:active\r\na=connection:new\r\na=bfcpver:1\r\n",
        );
    }
    sdp
}

/// One `m=` section of an answer: its first line and attributes.
#[derive(Debug, Clone)]
pub struct Section {
    pub media: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
    pub attributes: Vec<String>,
}

impl Section {
    /// The value of `a=<name>:...` (first one).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find_map(|a| a.strip_prefix(name)?.strip_prefix(':'))
    }

    pub fn has(&self, line: &str) -> bool {
        self.attributes.iter().any(|a| a == line)
    }
}

/// The `m=` sections of an SDP body.
pub fn sections(sdp: &str) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for line in sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            let mut words = m.split_whitespace();
            out.push(Section {
                media: words.next().unwrap_or("").into(),
                port: words.next().and_then(|p| p.parse().ok()).unwrap_or(0),
                proto: words.next().unwrap_or("").into(),
                formats: words.map(str::to_string).collect(),
                attributes: Vec::new(),
            });
        } else if let (Some(a), Some(s)) = (line.strip_prefix("a="), out.last_mut()) {
            s.attributes.push(a.to_string());
        }
    }
    out
}

/// A received RTP packet: its header and payload.
#[derive(Debug, Clone)]
pub struct Rtp {
    pub header: RtpHeader,
    pub payload: Vec<u8>,
}

/// A participant in a talk-burst group.
pub struct Talker {
    pub name: String,
    /// The address its offer announced (its RTP and BFCP sockets are bound there).
    pub ip: IpAddr,
    pub call: Call,
    pub ok: SipResponse,
    pub answer: String,
    pub audio: Section,
    pub bfcp_section: Option<Section>,
    /// Its own sockets: RTP (the port in its offer) and RTCP (the next one).
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    /// The focus's end of its leg.
    pub focus_rtp: SocketAddr,
    pub bfcp_addr: Option<SocketAddr>,
    pub conference_id: u32,
    pub user_id: u16,
    pub floor_id: u16,
    pub bfcp: Option<BfcpClient>,
    ssrc: u32,
    seq: u16,
    ts: u32,
}

impl Ua {
    /// Joins `uri` offering PCMU audio and BFCP: INVITE, 200, ACK.
    pub fn join_talk(&mut self, uri: &str) -> Talker {
        self.join_talk_with(uri, &[(0, "PCMU/8000")], true)
    }

    /// [`Ua::join_talk`] with the given payloads, with or without BFCP. Media and BFCP are on
    /// the agent's own address ([`Ua::udp_from`] puts a participant on another one).
    pub fn join_talk_with(&mut self, uri: &str, payloads: &[(u8, &str)], bfcp: bool) -> Talker {
        let ip = self.local.ip();
        let (rtp, rtcp) = rtp_pair_at(ip);
        rtp.set_read_timeout(Some(WAIT)).unwrap();
        rtcp.set_read_timeout(Some(WAIT)).unwrap();
        let port = rtp.local_addr().unwrap().port();
        let label = format!("{}-audio", self.name);
        let offer = talk_offer_at(ip, port, payloads, &label, bfcp);
        let mut call = Call::new(uri);
        let b = self.invite(&mut call, Some(&offer));
        let ok = self.expect_final(&b);
        assert_eq!(
            ok.status, 200,
            "{}: talk INVITE refused: {} {}",
            self.name, ok.status, ok.reason
        );
        call.learn(&ok);
        self.ack(&call);
        let answer = String::from_utf8(ok.body.to_vec()).expect("SDP answer is text");
        // Where the focus's media is: the answer's (session-level) c= address.
        let focus_ip: IpAddr = answer
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 ").or(l.strip_prefix("c=IN IP6 ")))
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("no c= address in the answer:\n{answer}"));
        let all = sections(&answer);
        let audio = all
            .iter()
            .find(|s| s.media == "audio")
            .cloned()
            .unwrap_or_else(|| panic!("no m=audio in the answer:\n{answer}"));
        assert_ne!(audio.port, 0, "audio declined:\n{answer}");
        let bfcp_section = all
            .iter()
            .find(|s| s.media == "application" && s.port != 0)
            .cloned();
        let num = |s: &Section, name: &str| -> u64 {
            s.attr(name)
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or_else(|| panic!("no a={name} in the answer:\n{answer}"))
        };
        let (conference_id, user_id, floor_id, bfcp_addr) = match &bfcp_section {
            Some(s) => (
                num(s, "confid") as u32,
                num(s, "userid") as u16,
                num(s, "floorid") as u16,
                Some(SocketAddr::new(focus_ip, s.port)),
            ),
            None => (0, 0, 0, None),
        };
        Talker {
            name: self.name.clone(),
            ip,
            call,
            ok,
            focus_rtp: SocketAddr::new(focus_ip, audio.port),
            answer,
            audio,
            bfcp_section,
            rtp,
            rtcp,
            bfcp_addr,
            conference_id,
            user_id,
            floor_id,
            bfcp: None,
            ssrc: rand_u32(),
            seq: rand_u32() as u16,
            ts: rand_u32(),
        }
    }
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    t ^ std::process::id().rotate_left(16) ^ 0x9e37_79b9
}

impl Talker {
    /// Opens the BFCP connection and says Hello (expects HelloAck).
    pub fn connect_bfcp(&mut self) -> &mut BfcpClient {
        let addr = self.bfcp_addr.expect("no BFCP stream in the answer");
        let mut c = BfcpClient::connect_from(self.ip, addr, self.conference_id, self.user_id);
        let hello = c.send(Primitive::Hello, vec![]);
        let ack = c.expect_response(hello);
        assert_eq!(ack.primitive, Primitive::HelloAck, "{ack:?}");
        self.bfcp = Some(c);
        self.bfcp.as_mut().unwrap()
    }

    pub fn bfcp(&mut self) -> &mut BfcpClient {
        self.bfcp.as_mut().expect("BFCP not connected")
    }

    /// Asks for the floor; returns the FLOOR-REQUEST-ID and the status answered.
    pub fn request_floor(&mut self) -> (u16, RequestStatus, u8) {
        let floor = self.floor_id;
        self.bfcp().request(floor)
    }

    /// Sends `n` RTP packets (PCMU, 20 ms apart in timestamps) to the focus; their payloads
    /// are `"<name> <k>"`.
    pub fn send_rtp(&mut self, n: usize) {
        self.send_rtp_pt(n, 0);
    }

    pub fn send_rtp_pt(&mut self, n: usize, pt: u8) {
        let from = self.rtp.try_clone().unwrap();
        self.send_rtp_via(&from, n, pt);
    }

    /// [`Talker::send_rtp_pt`] from another socket of the participant (a new source port,
    /// as a NAT or a client that sends from another port would show).
    pub fn send_rtp_via(&mut self, from: &UdpSocket, n: usize, pt: u8) {
        for _ in 0..n {
            let mut p = vec![0x80, pt];
            p.extend_from_slice(&self.seq.to_be_bytes());
            p.extend_from_slice(&self.ts.to_be_bytes());
            p.extend_from_slice(&self.ssrc.to_be_bytes());
            p.extend_from_slice(format!("{} {}", self.name, self.seq).as_bytes());
            from.send_to(&p, self.focus_rtp).unwrap();
            self.seq = self.seq.wrapping_add(1);
            self.ts = self.ts.wrapping_add(160);
        }
    }

    /// An RTCP receiver report (keeps the leg alive).
    pub fn send_rtcp(&self) {
        let mut p = vec![0x80, 201, 0, 1];
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        let to = SocketAddr::new(self.focus_rtp.ip(), self.focus_rtp.port() + 1);
        self.rtcp.send_to(&p, to).unwrap();
    }

    /// The next RTP packet from the focus within `timeout`.
    pub fn recv_rtp(&self, timeout: Duration) -> Option<Rtp> {
        self.rtp.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 2048];
        let n = self.rtp.recv(&mut buf).ok()?;
        let header = RtpHeader::parse(&buf[..n]).expect("the focus forwards RTP");
        Some(Rtp {
            payload: buf[header.payload_offset..n].to_vec(),
            header,
        })
    }

    /// `n` packets, each within [`WAIT`].
    pub fn expect_rtp(&self, n: usize) -> Vec<Rtp> {
        (0..n)
            .map(|i| {
                self.recv_rtp(WAIT)
                    .unwrap_or_else(|| panic!("{}: RTP packet {i} of {n} never came", self.name))
            })
            .collect()
    }

    /// Nothing arrives on the RTP port for `window`.
    pub fn assert_no_rtp(&self, window: Duration, what: &str) {
        if let Some(p) = self.recv_rtp(window) {
            panic!(
                "{}: {what}: got {:?}",
                self.name,
                String::from_utf8_lossy(&p.payload)
            );
        }
    }
}

/// A BFCP client over TCP.
pub struct BfcpClient {
    stream: TcpStream,
    rx: mpsc::Receiver<Option<Message>>,
    stash: VecDeque<Message>,
    closed: bool,
    pub conference_id: u32,
    pub user_id: u16,
    tid: u16,
}

impl BfcpClient {
    pub fn connect(addr: SocketAddr, conference_id: u32, user_id: u16) -> BfcpClient {
        BfcpClient::connect_from(IpAddr::from([127, 0, 0, 1]), addr, conference_id, user_id)
    }

    /// [`BfcpClient::connect`] from a socket bound to `local` (a `127.0.0.x` alias).
    pub fn connect_from(
        local: IpAddr,
        addr: SocketAddr,
        conference_id: u32,
        user_id: u16,
    ) -> BfcpClient {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .expect("TCP socket");
        socket
            .bind(&SocketAddr::new(local, 0).into())
            .expect("binding the BFCP client");
        socket
            .connect_timeout(&addr.into(), WAIT)
            .expect("BFCP connect");
        let stream: TcpStream = socket.into();
        stream.set_nodelay(true).unwrap();
        let mut reader = stream.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut decoder = StreamDecoder::default();
            let mut buf = BytesMut::new();
            let mut chunk = [0u8; 4096];
            loop {
                loop {
                    match decoder.decode(&mut buf) {
                        Ok(Some(m)) => {
                            if tx.send(Some(m)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => panic!("the focus sent undecodable BFCP: {e}"),
                    }
                }
                match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(None);
                        return;
                    }
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
        BfcpClient {
            stream,
            rx,
            stash: VecDeque::new(),
            closed: false,
            conference_id,
            user_id,
            tid: 0,
        }
    }

    /// Writes raw bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Sends a message of this user; returns its Transaction ID.
    pub fn send(&mut self, primitive: Primitive, attributes: Vec<Attribute>) -> u16 {
        self.tid = self.tid.wrapping_add(1).max(1);
        let msg = Message::new(1, primitive, self.conference_id, self.tid, self.user_id)
            .with_attributes(attributes);
        self.send_message(&msg);
        self.tid
    }

    pub fn send_message(&mut self, msg: &Message) {
        let mut buf = BytesMut::new();
        encode(msg, &mut buf).unwrap();
        self.write(&buf);
    }

    /// The next message matching `pred` within `timeout` (others are kept for later).
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Message) -> bool,
    ) -> Option<Message> {
        if let Some(i) = self.stash.iter().position(&mut pred) {
            return self.stash.remove(i);
        }
        let deadline = Instant::now() + timeout;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Some(m)) if pred(&m) => return Some(m),
                Ok(Some(m)) => self.stash.push_back(m),
                Ok(None) => self.closed = true,
                Err(_) => return None,
            }
        }
        None
    }

    /// The response to transaction `tid`.
    pub fn expect_response(&mut self, tid: u16) -> Message {
        self.wait_for(WAIT, |m| m.transaction_id == tid)
            .unwrap_or_else(|| panic!("user {}: no response to transaction {tid}", self.user_id))
    }

    /// Requests `floor`: (FLOOR-REQUEST-ID, status, queue position) of the response.
    pub fn request(&mut self, floor: u16) -> (u16, RequestStatus, u8) {
        self.request_with(floor, Priority::Normal)
    }

    pub fn request_with(&mut self, floor: u16, priority: Priority) -> (u16, RequestStatus, u8) {
        let tid = self.send(
            Primitive::FloorRequest,
            vec![Attribute::floor_id(floor), Attribute::priority(priority)],
        );
        let r = self.expect_response(tid);
        let (id, status, pos, _) = request_status(&r);
        (id, status, pos)
    }

    /// Releases request `id`; returns the status answered.
    pub fn release(&mut self, id: u16) -> RequestStatus {
        let tid = self.send(
            Primitive::FloorRelease,
            vec![Attribute::floor_request_id(id)],
        );
        request_status(&self.expect_response(tid)).1
    }

    /// Waits for a server-initiated FloorRequestStatus about request `id` with `status`
    /// (skipping others about it); returns its STATUS-INFO.
    pub fn expect_status(
        &mut self,
        id: u16,
        status: RequestStatus,
        timeout: Duration,
    ) -> Option<String> {
        let m = self
            .wait_for(timeout, |m| {
                m.primitive == Primitive::FloorRequestStatus
                    && m.transaction_id == 0
                    && request_status(m).0 == id
                    && request_status(m).1 == status
            })
            .unwrap_or_else(|| {
                panic!(
                    "user {}: request {id} never became {status:?} (stash: {:?})",
                    self.user_id, self.stash
                )
            });
        request_status(&m).3
    }

    /// Whether the focus closed the connection within `timeout`.
    pub fn wait_closed(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Some(m)) => self.stash.push_back(m),
                Ok(None) => self.closed = true,
                Err(_) => return false,
            }
        }
        true
    }

    /// Drops the connection (as a crashed client would).
    pub fn drop_connection(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// (FLOOR-REQUEST-ID, overall status, queue position, STATUS-INFO) of a FloorRequestStatus.
pub fn request_status(msg: &Message) -> (u16, RequestStatus, u8, Option<String>) {
    assert_eq!(msg.primitive, Primitive::FloorRequestStatus, "{msg:?}");
    fri_status(&msg.attributes[0])
}

/// The same, of one FLOOR-REQUEST-INFORMATION.
pub fn fri_status(fri: &Attribute) -> (u16, RequestStatus, u8, Option<String>) {
    let Attribute::FloorRequestInformation {
        floor_request_id,
        attributes,
        ..
    } = fri
    else {
        panic!("not a FLOOR-REQUEST-INFORMATION: {fri:?}");
    };
    let ors = attributes
        .iter()
        .find(|a| matches!(a, Attribute::OverallRequestStatus { .. }))
        .expect("OVERALL-REQUEST-STATUS");
    let mut status = None;
    let mut info = None;
    for a in ors.nested() {
        match a {
            Attribute::RequestStatus {
                status: s,
                queue_position,
                ..
            } => status = Some((*s, *queue_position)),
            Attribute::StatusInfo { text, .. } => info = text.as_str().map(str::to_string),
            _ => {}
        }
    }
    let (s, pos) = status.expect("REQUEST-STATUS");
    (*floor_request_id, s, pos, info)
}

/// The BENEFICIARY-ID of a FLOOR-REQUEST-INFORMATION.
pub fn beneficiary(fri: &Attribute) -> Option<u16> {
    fri.nested().iter().find_map(|a| match a {
        Attribute::BeneficiaryInformation { beneficiary_id, .. } => Some(*beneficiary_id),
        _ => None,
    })
}

/// The ERROR-CODE of an Error message.
pub fn error_code(msg: &Message) -> Option<ErrorCode> {
    msg.attributes.iter().find_map(|a| match a {
        Attribute::ErrorCode { code, .. } => Some(*code),
        _ => None,
    })
}
