//! The SIP torture messages of RFC 4475 §3 and RFC 5118 §4, sent byte for byte to a running
//! focus over UDP (every message) and TCP (every message whose framing TCP can carry), each
//! checked against the reaction its RFC names:
//!
//! - valid messages are processed: a final response that is never `400` (here `404` for a
//!   Request-URI that names no conference, `405` for REGISTER, `481` for an in-dialog request
//!   of an unknown dialog, `501` for an unknown method);
//! - invalid ones get `400` (or the `505`, `416`, `420`, `415`, `406` the RFC names);
//! - responses and requests no response can be addressed to are dropped without an answer;
//! - every response copies Via, From, To (adding a tag), Call-ID and CSeq exactly;
//! - over TCP, a message whose framing cannot be recovered closes its own connection only, and
//!   a Content-Length larger than what came keeps the connection waiting until it idles out.
//!
//! The fixtures are in `tests/fixtures/torture/` (see its README for provenance); the table
//! [`CASES`] is the expectation for each.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use support::{metric, Focus, WAIT};

/// What the focus must do with one message.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Valid (RFC "parse"): processed normally; the final status is this one.
    Valid(u16),
    /// Invalid and refused with this status (400, or the more precise one the RFC names).
    Invalid(u16),
    /// Invalid, but the RFC lets a liberal receiver process it: this is what the focus does
    /// (400 or normal processing both pass the RFC; the table pins ours).
    Tolerated(u16),
    /// No response at all: a response matching no transaction, or a request without the
    /// headers a response is built from.
    Dropped,
}

/// How a message may travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carry {
    /// UDP and TCP alike.
    Both,
    /// Only a datagram gives it its meaning (trailing octets, a body running to the end of
    /// the datagram, headers ending at the end of the datagram); over TCP it is its own test.
    Datagram,
}

struct Case {
    file: &'static str,
    expect: Expect,
    carry: Carry,
}

const fn case(file: &'static str, expect: Expect, carry: Carry) -> Case {
    Case {
        file,
        expect,
        carry,
    }
}

use Carry::{Both, Datagram};
use Expect::{Dropped, Invalid, Tolerated, Valid};

/// Every torture message and the focus's reaction.
const CASES: &[Case] = &[
    // RFC 4475 §3.1.1: valid messages.
    // A Short Tortuous INVITE: its To carries a tag, so it is a re-INVITE of an unknown dialog.
    case("3.1.1.1-wsinv.sip", Valid(481), Both),
    // Wide Range of Valid Characters: an unknown method.
    case("3.1.1.2-intmeth.sip", Valid(501), Both),
    // Valid Use of the % Escaping Mechanism: a Request-URI that names no conference.
    case("3.1.1.3-esc01.sip", Valid(404), Both),
    // Escaped Nulls in URIs: REGISTER is not served.
    case("3.1.1.4-escnull.sip", Valid(405), Both),
    // Use of % When It Is Not an Escape: `RE%47IST%45R` is an unknown method, not REGISTER.
    case("3.1.1.5-esc02.sip", Valid(501), Both),
    // No LWS between Display Name and <.
    case("3.1.1.6-lwsdisp.sip", Valid(404), Both),
    // Long Values in Header Fields (34 Vias, all copied back in order).
    case("3.1.1.7-longreq.sip", Valid(404), Both),
    // Extra Trailing Octets in a UDP Datagram: the REGISTER only.
    case("3.1.1.8-dblreq.sip", Valid(405), Datagram),
    // Semicolon-Separated Parameters in URI User Part.
    case("3.1.1.9-semiuri.sip", Valid(404), Both),
    // Varied and Unknown Transport Types: answered to the top Via (the source).
    case("3.1.1.10-transports.sip", Valid(404), Both),
    // Multipart MIME Message with binary octets.
    case("3.1.1.11-mpart01.sip", Valid(404), Both),
    // Unusual Reason Phrase / Empty Reason Phrase: responses to nothing we sent.
    case("3.1.1.12-unreason.sip", Dropped, Both),
    case("3.1.1.13-noreason.sip", Dropped, Both),
    // RFC 4475 §3.1.2: invalid messages.
    case("3.1.2.1-badinv01.sip", Invalid(400), Both),
    // Content Length Larger Than Message (over TCP: waits, see its own test).
    case("3.1.2.2-clerr.sip", Invalid(400), Datagram),
    // Negative Content-Length (over TCP: 400 and close, see its own test).
    case("3.1.2.3-ncl.sip", Invalid(400), Datagram),
    // Request Scalar Fields with Overlarge Values: CSeq 2^65.
    case("3.1.2.4-scalar02.sip", Invalid(400), Both),
    // Response Scalar Fields with Overlarge Values.
    case("3.1.2.5-scalarlg.sip", Dropped, Both),
    case("3.1.2.6-quotbal.sip", Invalid(400), Both),
    case("3.1.2.7-ltgtruri.sip", Invalid(400), Both),
    case("3.1.2.8-lwsruri.sip", Invalid(400), Both),
    case("3.1.2.9-lwsstart.sip", Invalid(400), Both),
    case("3.1.2.10-trws.sip", Invalid(400), Both),
    // Escaped Headers in SIP Request-URI: the escaped Route is never applied.
    case("3.1.2.11-escruri.sip", Invalid(400), Both),
    // Invalid Time Zone in Date Header Field: the focus does not read Date.
    case("3.1.2.12-baddate.sip", Tolerated(404), Both),
    // Failure to Enclose name-addr URI in <>: REGISTER is refused before Contact is read.
    case("3.1.2.13-regbadct.sip", Tolerated(405), Both),
    case("3.1.2.14-badaspec.sip", Invalid(400), Both),
    // Non-token Characters in Display Name; no empty line at the end: the datagram ends it.
    case("3.1.2.15-baddn.sip", Invalid(400), Datagram),
    case("3.1.2.16-badvers.sip", Invalid(505), Both),
    case("3.1.2.17-mismatch01.sip", Invalid(400), Both),
    case("3.1.2.18-mismatch02.sip", Invalid(400), Both),
    // Overlarge Response Code.
    case("3.1.2.19-bigcode.sip", Dropped, Both),
    // RFC 4475 §3.2: Missing Transaction Identifier (a bare magic cookie).
    case("3.2.1-badbranch.sip", Valid(404), Both),
    // RFC 4475 §3.3: application layer.
    // Missing Required Header Fields: no To, From or Call-ID to answer with.
    case("3.3.1-insuf.sip", Dropped, Both),
    case("3.3.2-unkscm.sip", Invalid(416), Both),
    case("3.3.3-novelsc.sip", Invalid(416), Both),
    // Unknown URI Schemes in Header Fields: parsed, then REGISTER is not served.
    case("3.3.4-unksm2.sip", Valid(405), Both),
    case("3.3.5-bext01.sip", Invalid(420), Both),
    case("3.3.6-invut.sip", Invalid(415), Both),
    case("3.3.7-regaut01.sip", Valid(405), Both),
    case("3.3.8-multi01.sip", Invalid(400), Both),
    // Multiple Content-Length Values (over TCP: 400 and close, see its own test).
    case("3.3.9-mcl01.sip", Invalid(400), Datagram),
    // 200 OK with Broadcast Via: never answered, never forwarded.
    case("3.3.10-bcast.sip", Dropped, Both),
    // Max-Forwards of Zero: the focus is the UAS, so it processes the request (no 483).
    case("3.3.11-zeromf.sip", Valid(404), Both),
    case("3.3.12-cparam01.sip", Valid(405), Both),
    case("3.3.13-cparam02.sip", Valid(405), Both),
    case("3.3.14-regescrt.sip", Valid(405), Both),
    // Unacceptable Accept Offering: 406, and no SDP in the answer.
    case("3.3.15-sdp01.sip", Invalid(406), Both),
    // RFC 4475 §3.4: INVITE with RFC 2543 Syntax; no Content-Length, so the body runs to the
    // end of the datagram.
    case("3.4.1-inv2543.sip", Tolerated(404), Datagram),
    // RFC 5118 §4: IPv6.
    case("rfc5118-4.1-ipv6-good.sip", Valid(405), Both),
    case("rfc5118-4.2-ipv6-bad.sip", Invalid(400), Both),
    case("rfc5118-4.3-port-ambiguous.sip", Valid(405), Both),
    case("rfc5118-4.4-port-unambiguous.sip", Valid(405), Both),
    // BYE with a To tag: a dialog the focus does not know.
    case(
        "rfc5118-4.5-via-received-param-with-delim.sip",
        Valid(481),
        Both,
    ),
    case(
        "rfc5118-4.5-via-received-param-no-delim.sip",
        Valid(404),
        Both,
    ),
    case("rfc5118-4.6-ipv6-in-sdp.sip", Valid(404), Both),
    case("rfc5118-4.7-mult-ip-in-header.sip", Valid(481), Both),
    case("rfc5118-4.8-mult-ip-in-sdp.sip", Valid(404), Both),
    case("rfc5118-4.9-ipv4-mapped-ipv6.sip", Valid(404), Both),
    // The RFC 3261 ABNF bug (`:::` before an embedded IPv4 address), accepted as RFC 5118
    // asks.
    case(
        "rfc5118-4.10-ipv6-bug-abnf-3-colons.sip",
        Tolerated(404),
        Both,
    ),
    case(
        "rfc5118-4.10-ipv6-correct-abnf-2-colons.sip",
        Valid(404),
        Both,
    ),
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/torture/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The header section of a message, unfolded (RFC 3261 §7.3.1: a line starting with
/// whitespace continues the previous one), with compact names expanded and names lower-cased.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Head {
    fn parse(raw: &[u8]) -> Head {
        let (head, body) = match find(raw, b"\r\n\r\n") {
            Some(i) => (&raw[..i], raw[i + 4..].to_vec()),
            None => (raw, Vec::new()),
        };
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let start = lines.next().unwrap_or("").to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = headers.last_mut() {
                    let t = v.trim_end().len();
                    v.truncate(t);
                    if !v.is_empty() {
                        v.push(' ');
                    }
                    v.push_str(line.trim_start());
                }
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            let name = match name.as_str() {
                "v" => "via",
                "f" => "from",
                "t" => "to",
                "i" => "call-id",
                "m" => "contact",
                "l" => "content-length",
                "c" => "content-type",
                other => other,
            }
            .to_string();
            headers.push((name, value.trim().to_string()));
        }
        Head {
            start,
            headers,
            body,
        }
    }

    fn first(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every comma-separated Via value, in order.
    fn vias(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "via")
            .flat_map(|(_, v)| split_commas(v))
            .collect()
    }

    fn status(&self) -> u16 {
        self.start
            .strip_prefix("SIP/2.0 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {:?}", self.start))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits at commas outside quoted strings and `<...>`, dropping empty elements.
fn split_commas(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut cur, mut quoted, mut angle, mut escaped) = (String::new(), false, false, false);
    for c in v.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A Via value reduced to what identifies it: protocol and sent-by without whitespace, and its
/// parameters (LWS around `;` and `=` dropped, empty ones skipped) except `received` and
/// `rport`, which a server adds.
fn via_identity(v: &str) -> (String, Vec<String>) {
    let mut parts = v.split(';');
    let head: String = parts
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let params = parts
        .map(|p| p.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let name = p.split('=').next().unwrap_or("").to_ascii_lowercase();
            name != "received" && name != "rport"
        })
        .collect();
    (head, params)
}

/// Asserts that `resp` copies the request's Via (the top one gaining `received`), From, To
/// (with a tag added when it had none), Call-ID and CSeq exactly.
fn assert_copied(what: &str, req: &Head, resp: &Head) {
    for name in ["from", "call-id", "cseq"] {
        assert_eq!(
            resp.first(name),
            req.first(name),
            "{what}: {name} not copied exactly"
        );
        assert_eq!(
            resp.headers.iter().filter(|(n, _)| n == name).count(),
            1,
            "{what}: one {name} in the response"
        );
    }
    let sent_to = req.first("to").expect("request To");
    let got_to = resp.first("to").expect("response To");
    if got_to != sent_to {
        let tag = got_to
            .strip_prefix(sent_to)
            .and_then(|rest| rest.strip_prefix(";tag="))
            .unwrap_or_else(|| panic!("{what}: To {got_to:?} is not {sent_to:?} plus a tag"));
        assert!(!tag.is_empty(), "{what}: empty To tag");
    }
    let (sent, got) = (req.vias(), resp.vias());
    assert_eq!(got.len(), sent.len(), "{what}: Via count\n{got:#?}");
    assert_eq!(
        via_identity(&got[0]),
        via_identity(&sent[0]),
        "{what}: top Via"
    );
    assert!(
        got[0].contains(";received=127.0.0.1"),
        "{what}: top Via without received: {}",
        got[0]
    );
    assert_eq!(got[1..], sent[1..], "{what}: lower Vias not copied exactly");
}

/// An OPTIONS to the focus's group: its `200` proves the focus serves, and arriving first
/// proves nothing answered what was sent before it on the same path.
fn probe(call_id: &str, branch: &str, local: SocketAddr, transport: &str) -> Vec<u8> {
    format!(
        "OPTIONS sip:team@focus.example.com SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {local};branch=z9hG4bK-probe-{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:prober@example.com>;tag=probe\r\n\
         To: <sip:team@focus.example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 424242 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn assert_probe_answer(what: &str, raw: &[u8], call_id: &str) {
    let h = Head::parse(raw);
    assert_eq!(
        (h.status(), h.first("cseq"), h.first("call-id")),
        (200, Some("424242 OPTIONS"), Some(call_id)),
        "{what}: the first answer is not the probe's:\n{}",
        String::from_utf8_lossy(raw)
    );
}

/// The Call-ID a probe shares with a dropped message, so both go through the same transaction
/// shard in order (a message without Call-ID gets a fresh one).
fn probe_call_id(msg: &Head, file: &str) -> String {
    msg.first("call-id")
        .map(str::to_string)
        .unwrap_or_else(|| format!("probe-{file}"))
}

/// Message exchanges over UDP from one socket per Call-ID: the finals the focus retransmits
/// until an ACK that never comes must not mix with later answers.
struct Udp {
    socket: UdpSocket,
    focus: SocketAddr,
}

impl Udp {
    fn new(focus: &Focus) -> Udp {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        Udp {
            socket,
            focus: focus.sip_udp,
        }
    }

    fn send(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.focus).unwrap();
    }

    fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.socket.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = vec![0u8; 65536];
        match self.socket.recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }

    /// The next final response whose CSeq is `cseq` (provisionals, and finals of earlier
    /// requests repeated on this socket, are skipped).
    fn final_answer(&self, what: &str, cseq: Option<&str>) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let raw = self
                .recv(left.max(Duration::from_millis(1)))
                .unwrap_or_else(|| panic!("{what}: no final response within {WAIT:?}"));
            let h = Head::parse(&raw);
            if h.status() >= 200 && (cseq.is_none() || h.first("cseq") == cseq) {
                return raw;
            }
        }
    }

    /// Asserts that nothing with CSeq `cseq` arrives within `window`.
    fn assert_no_answer(&self, what: &str, cseq: Option<&str>, window: Duration) {
        let deadline = Instant::now() + window;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let Some(raw) = self.recv(left) else { return };
            let h = Head::parse(&raw);
            assert!(
                cseq.is_some() && h.first("cseq") != cseq,
                "{what}: answered\n{}",
                String::from_utf8_lossy(&raw)
            );
        }
    }

    fn local(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }
}

/// One TCP connection to the focus with a small Content-Length reader.
struct Tcp {
    stream: TcpStream,
    buf: Vec<u8>,
}

enum Got {
    Message(Vec<u8>),
    Closed,
    Nothing,
}

impl Tcp {
    fn connect(focus: &Focus) -> Tcp {
        let stream = TcpStream::connect_timeout(&focus.sip_tcp, WAIT).expect("TCP connect");
        stream.set_nodelay(true).unwrap();
        Tcp {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    fn cut(&mut self) -> Option<Vec<u8>> {
        let end = find(&self.buf, b"\r\n\r\n")?;
        let head = Head::parse(&self.buf[..end + 4]);
        let len: usize = head
            .first("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let total = end + 4 + len;
        (self.buf.len() >= total).then(|| self.buf.drain(..total).collect())
    }

    fn read(&mut self, timeout: Duration) -> Got {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.cut() {
                return Got::Message(m);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Got::Nothing;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Got::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Got::Nothing
                }
                Err(_) => return Got::Closed,
            }
        }
    }

    fn final_answer(&mut self, what: &str) -> Vec<u8> {
        loop {
            match self.read(WAIT) {
                Got::Message(m) if Head::parse(&m).status() < 200 => continue,
                Got::Message(m) => return m,
                Got::Closed => panic!("{what}: connection closed without a final response"),
                Got::Nothing => panic!("{what}: no final response within {WAIT:?}"),
            }
        }
    }

    fn local(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }
}

/// Checks one final response against its case.
fn check_answer(what: &str, expect: Expect, sent: &Head, raw: &[u8]) {
    let answer = Head::parse(raw);
    let status = answer.status();
    let want = match expect {
        Valid(s) => {
            assert_ne!(status, 400, "{what}: a valid message refused");
            s
        }
        Invalid(s) | Tolerated(s) => {
            assert!(
                !(200..300).contains(&status),
                "{what}: an invalid message accepted"
            );
            s
        }
        Dropped => panic!("{what}: answered, though it must be dropped"),
    };
    assert_eq!(
        status,
        want,
        "{what}: answered\n{}",
        String::from_utf8_lossy(raw)
    );
    assert_copied(what, sent, &answer);
    let file = what.split(' ').next().unwrap_or("");
    match file {
        "3.1.1.2-intmeth.sip" | "3.1.1.5-esc02.sip" => {
            assert!(answer.first("allow").is_some(), "{what}: 501 without Allow")
        }
        "3.3.5-bext01.sip" => assert_eq!(
            answer.first("unsupported"),
            Some("nothingSupportsThis, nothingSupportsThisEither"),
            "{what}: Unsupported must name the Require tags (never Proxy-Require's)"
        ),
        "3.3.6-invut.sip" => assert!(
            answer
                .first("accept")
                .is_some_and(|a| a.contains("application/sdp")),
            "{what}: 415 without Accept"
        ),
        "3.3.15-sdp01.sip" => {
            assert_eq!(answer.first("accept"), Some("application/sdp"));
            assert!(
                answer.body.is_empty() && answer.first("content-type").is_none(),
                "{what}: a body the client said it cannot read"
            );
        }
        _ => {}
    }
}

/// Nothing the torture messages did created a participant, a session or a subscription.
fn assert_no_state(focus: &Focus) {
    for series in [
        "focus_participants_active",
        "focus_sessions_active",
        "focus_subscriptions_active",
    ] {
        assert_eq!(metric(focus, series), 0.0, "{series}");
    }
}

#[test]
fn every_torture_message_over_udp_gets_the_reaction_its_rfc_names() {
    // RFC 5118's messages share Call-ID, CSeq, branch and sent-by: to the transaction layer
    // (RFC 3261 §17.2.3) a second one is a retransmission of the first, answered by repeating
    // the first answer. Each message whose Call-ID and CSeq an earlier one used goes to a focus
    // that has not seen them.
    let mut foci: Vec<(Focus, HashSet<(String, String)>)> = Vec::new();
    let mut sockets: HashMap<(usize, String), Udp> = HashMap::new();
    for c in CASES {
        let what = format!("{} over UDP", c.file);
        let bytes = fixture(c.file);
        let sent = Head::parse(&bytes);
        let call_id = probe_call_id(&sent, c.file);
        let id = (
            call_id.clone(),
            sent.first("cseq").unwrap_or("").to_string(),
        );
        let n = match foci.iter().position(|(_, seen)| !seen.contains(&id)) {
            Some(n) => n,
            None => {
                foci.push((Focus::start(""), HashSet::new()));
                foci.len() - 1
            }
        };
        foci[n].1.insert(id);
        let focus = &foci[n].0;
        let udp = sockets
            .entry((n, call_id.clone()))
            .or_insert_with(|| Udp::new(focus));
        udp.send(&bytes);
        match c.expect {
            Dropped => {
                udp.send(&probe(&call_id, c.file, udp.local(), "UDP"));
                let first = udp.final_answer(&what, None);
                assert_probe_answer(&what, &first, &call_id);
                udp.assert_no_answer(&what, sent.first("cseq"), Duration::from_millis(200));
            }
            expect => {
                let raw = udp.final_answer(&what, sent.first("cseq"));
                check_answer(&what, expect, &sent, &raw);
            }
        }
        if c.file == "3.1.1.8-dblreq.sip" {
            // The INVITE in the trailing octets is discarded: the next answer with its Call-ID
            // is the probe's (the probe goes through the same shard, after it).
            let call_id = "dblreq.0ha0isnda977644900765@192.0.2.15";
            udp.send(&probe(call_id, c.file, udp.local(), "UDP"));
            let first = loop {
                let raw = udp.final_answer(&what, None);
                if Head::parse(&raw).first("call-id") == Some(call_id) {
                    break raw;
                }
            };
            assert_probe_answer(&what, &first, call_id);
        }
    }
    assert!(foci.len() <= 4, "{} foci", foci.len());
    let focus = &foci[0].0;
    // Three responses matched nothing (unreason, noreason, bcast); scalarlg, bigcode and
    // insuf did not even parse into something answerable.
    assert_eq!(metric(focus, "focus_sip_stray_responses_total"), 3.0);
    assert_eq!(
        metric(focus, "focus_sip_parse_errors_total{reason=\"dropped\"}"),
        3.0
    );
    for (f, _) in &foci {
        assert_no_state(f);
    }
    let udp = Udp::new(focus);
    udp.send(&probe("after-all", "udp-after", udp.local(), "UDP"));
    assert_probe_answer(
        "after the torture",
        &udp.final_answer("probe", None),
        "after-all",
    );
}

#[test]
fn every_stream_torture_message_over_tcp_gets_the_same_reaction() {
    let focus = Focus::start("");
    let mut cases = 0;
    for c in CASES.iter().filter(|c| c.carry == Both) {
        cases += 1;
        let what = format!("{} over TCP", c.file);
        let bytes = fixture(c.file);
        let sent = Head::parse(&bytes);
        let mut tcp = Tcp::connect(&focus);
        tcp.send(&bytes);
        if let Dropped = c.expect {
            // A dropped message leaves the connection usable.
            let call_id = probe_call_id(&sent, c.file);
            let local = tcp.local();
            tcp.send(&probe(&call_id, c.file, local, "TCP"));
            assert_probe_answer(&what, &tcp.final_answer(&what), &call_id);
        } else {
            let raw = tcp.final_answer(&what);
            check_answer(&what, c.expect, &sent, &raw);
        }
    }
    assert!(cases > 50, "only {cases} cases over TCP");
    assert_eq!(metric(&focus, "focus_sip_stray_responses_total"), 3.0);
    assert_eq!(
        metric(
            &focus,
            "focus_sip_parse_errors_total{reason=\"unframeable\"}"
        ),
        0.0,
        "no stream torture message is unframeable"
    );
    assert_no_state(&focus);
}

#[test]
fn over_tcp_an_unframeable_message_closes_its_connection_only() {
    // A short idle timeout, so the connection left waiting by clerr closes within the test.
    let focus = Focus::start("[sip]\ntcp_idle_timeout_s = 2\n");
    let mut steady = Tcp::connect(&focus);
    let local = steady.local();
    steady.send(&probe("steady-1", "steady-1", local, "TCP"));
    assert_probe_answer("steady", &steady.final_answer("steady"), "steady-1");

    // Content Length Larger Than Message: the focus waits for the rest of the body and never
    // takes the partial message as complete.
    let mut clerr = Tcp::connect(&focus);
    clerr.send(&fixture("3.1.2.2-clerr.sip"));

    // Negative Content-Length and Multiple Content-Length Values: the headers still name
    // where to answer, so 400, then the connection is closed (the next message's start
    // cannot be found).
    for (file, reason) in [
        (
            "3.1.2.3-ncl.sip",
            "SIP/2.0 400 Malformed Content-Length header",
        ),
        (
            "3.3.9-mcl01.sip",
            "SIP/2.0 400 Multiple Content-Length headers",
        ),
    ] {
        let what = format!("{file} over TCP");
        let bytes = fixture(file);
        let mut tcp = Tcp::connect(&focus);
        tcp.send(&bytes);
        let raw = tcp.final_answer(&what);
        let answer = Head::parse(&raw);
        assert_eq!(answer.start, reason, "{what}");
        assert_copied(&what, &Head::parse(&bytes), &answer);
        assert!(
            matches!(tcp.read(WAIT), Got::Closed),
            "{what}: connection kept open"
        );
    }

    // The connection open all along still works, while clerr's still waits.
    steady.send(&probe("steady-2", "steady-2", local, "TCP"));
    assert_probe_answer("steady", &steady.final_answer("steady"), "steady-2");
    match clerr.read(Duration::from_secs(20)) {
        Got::Closed => {}
        Got::Message(m) => panic!(
            "clerr over TCP was answered:\n{}",
            String::from_utf8_lossy(&m)
        ),
        Got::Nothing => panic!("clerr's connection never timed out"),
    }
    assert_eq!(metric(&focus, "focus_tcp_idle_closed_total"), 1.0);
    assert_eq!(
        metric(
            &focus,
            "focus_sip_parse_errors_total{reason=\"unframeable\"}"
        ),
        2.0
    );
    let mut fresh = Tcp::connect(&focus);
    let local = fresh.local();
    fresh.send(&probe("fresh", "fresh", local, "TCP"));
    assert_probe_answer("fresh", &fresh.final_answer("fresh"), "fresh");
    assert_no_state(&focus);
}

#[test]
fn the_fixtures_are_byte_exact() {
    // Line ends and every other byte are part of what these messages test: a checkout that
    // converted CRLF to LF, or an editor that touched one, would test something else
    // (`.gitattributes` keeps them binary). Each file's SHA-256 must be the one committed in
    // `SHA256SUMS`, and every case is listed there.
    use sha2::{Digest, Sha256};
    let sums = String::from_utf8(fixture("SHA256SUMS")).unwrap();
    let listed: Vec<(&str, &str)> = sums
        .lines()
        .map(|l| {
            let mut parts = l.split_whitespace();
            match (parts.next(), parts.next(), parts.next()) {
                (Some(sum), Some(file), None) => (file, sum),
                _ => panic!("SHA256SUMS: a line that is not `<sum>  <file>`: {l:?}"),
            }
        })
        .collect();
    assert_eq!(listed.len(), CASES.len());
    for c in CASES {
        let Some((_, sum)) = listed.iter().find(|(file, _)| *file == c.file) else {
            panic!("{} not in SHA256SUMS", c.file);
        };
        let bytes = fixture(c.file);
        let actual: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(&actual, sum, "{}: its bytes changed", c.file);
        let head = &bytes[..find(&bytes, b"\r\n\r\n").unwrap_or(bytes.len())];
        let bare_lf = head
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'));
        assert!(!bare_lf, "{}: a header line does not end in CRLF", c.file);
    }
}
