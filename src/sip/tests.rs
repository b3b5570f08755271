//! Parser tests: typical messages, RFC 4475-style faults, and round-trips of generated
//! messages through writer and parser.

use super::*;
use bytes::Bytes;
use proptest::prelude::*;

const INVITE: &str = "INVITE sip:team@focus.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-0;rport\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1\r\n\
To: <sip:team@focus.example.com>\r\n\
Call-ID: 1-1@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@127.0.0.1:5061>\r\n\
Max-Forwards: 70\r\n\
Subject: Performance Test\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 129\r\n\
\r\n\
v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

fn p(s: &str) -> Result<Message, ParseError> {
    parse(
        Bytes::copy_from_slice(s.as_bytes()),
        Framing::Datagram,
        &ParseLimits::default(),
    )
}

fn req(s: &str) -> Request {
    match p(s) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn rejected(s: &str) -> Box<Rejected> {
    match p(s) {
        Err(ParseError::Reject(r)) => r,
        other => panic!("not rejected: {other:?}"),
    }
}

#[test]
fn typical_invite() {
    let r = req(INVITE);
    assert_eq!(r.method, Method::Invite);
    assert_eq!(r.uri.user.as_deref(), Some("team"));
    assert_eq!(r.call_id(), "1-1@127.0.0.1");
    assert_eq!(
        r.cseq,
        CSeq {
            seq: 1,
            method: Method::Invite
        }
    );
    assert_eq!(r.from.tag(), Some("1"));
    assert_eq!(r.from.display.as_deref(), Some("Alice"));
    assert_eq!(r.to.tag(), None);
    assert_eq!(r.branch(), Some("z9hG4bK-1-0"));
    assert_eq!(r.max_forwards, Some(70));
    assert_eq!(r.body.len(), 129);
    assert!(r.body.starts_with(b"v=0"));
}

#[test]
fn folded_compact_and_spaced_headers() {
    let m = "INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n\
TO :\r\n sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n\
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n\
MaX-fOrWaRdS: 0068\r\n\
Call-ID: wsinv.ndaksdj@192.0.2.1\r\n\
Content-Length   : 0\r\n\
cseq: 0009\r\n  INVITE\r\n\
Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n\
s :\r\n\
NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n\
v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n  branch  =   z9hG4bK9ikj8  ,\r\n SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n z9hG4bK30239\r\n\
m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\r\n      newvalue ;\r\n  secondparam ; q = 0.33\r\n\
\r\n";
    let r = req(m);
    assert_eq!(r.to.tag(), Some("1918181833n"));
    assert_eq!(r.from.tag(), Some("98asjd8"));
    assert_eq!(r.max_forwards, Some(68));
    assert_eq!(r.cseq.seq, 9);
    assert_eq!(r.headers.values(HeaderName::Via).count(), 3);
    assert_eq!(r.headers.get(HeaderName::Subject), Some(""));
    assert_eq!(
        r.headers.get_by_name("newfangledheader"),
        Some("newfangled value continued newfangled value")
    );
    let contact = NameAddr::parse(r.headers.get(HeaderName::Contact).unwrap()).unwrap();
    assert_eq!(contact.param("q"), Some(Some("0.33")));
}

#[test]
fn unknown_method_parses() {
    let m = "!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n\
To: \"BEL:\\\x07 NUL:\\\0 DEL:\\\x7f\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\r\n\
From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\u{440}\u{430}\u{431}\";tag=_token~1'+`*%!-.\r\n\
Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n\
CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n\
Max-Forwards: 255\r\n\
extensionHeader-!.%*+_`'~:\u{feff}\u{5927}\u{505c}\u{96fb}\r\n\
Content-Length: 0\r\n\r\n";
    let r = req(m);
    assert!(matches!(r.method, Method::Extension(_)));
    assert_eq!(r.from.tag(), Some("_token~1'+`*%!-."));
}

#[test]
fn datagram_trailing_octets_discarded_and_short_body_rejected() {
    let m = "REGISTER sip:example.com SIP/2.0\r\nTo: sip:j.user@example.com\r\nFrom: sip:j.user@example.com;tag=43251j3j324\r\nMax-Forwards: 8\r\nI: dblreq.0ha0isndaksdj99sdfafnl3lk233412\r\nContact: sip:j.user@host.example.com\r\nCSeq: 8 REGISTER\r\nVia: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492\r\nContent-Length: 0\r\n\r\nINVITE sip:joe@example.com SIP/2.0\r\nt: sip:joe@example.com\r\n\r\n";
    let r = req(m);
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty());

    let m = "INVITE sip:user@example.com SIP/2.0\r\nMax-Forwards: 80\r\nTo: sip:j.user@example.com\r\nFrom: sip:caller@example.net;tag=93942939o2\r\nContact: <sip:caller@hungry.example.net>\r\nCall-ID: clerr.0ha0isndaksdjweiafasdk3\r\nCSeq: 8 INVITE\r\nVia: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523\r\nContent-Type: application/sdp\r\nContent-Length: 9999\r\n\r\nv=0\r\n";
    assert_eq!(rejected(m).fault, Fault::BodyTruncated);
}

#[test]
fn faults_name_the_culprit() {
    let base = |extra: &str, cseq: &str| {
        format!(
            "OPTIONS sip:user@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:user@example.com>\r\nCall-ID: c1\r\nCSeq: {cseq}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    };
    assert_eq!(
        rejected(&base("", "36893488147419103232 OPTIONS")).fault,
        Fault::Malformed(HeaderName::CSeq)
    );
    assert_eq!(rejected(&base("", "8 INVITE")).fault, Fault::CSeqMethod);
    assert_eq!(
        rejected(&base("Call-ID: c2\r\n", "1 OPTIONS")).fault,
        Fault::Multiple(HeaderName::CallId)
    );
    assert_eq!(
        rejected(&base("Max-Forwards: abc\r\n", "1 OPTIONS")).fault,
        Fault::Malformed(HeaderName::MaxForwards)
    );
    assert_eq!(
        rejected(&base("Content-Length: 0\r\n", "1 OPTIONS")).fault,
        Fault::Multiple(HeaderName::ContentLength)
    );
    assert_eq!(
        rejected(&base("Bad Header\r\n", "1 OPTIONS")).fault,
        Fault::HeaderLine
    );
    let r = rejected(&base("", "1 OPTIONS").replace("SIP/2.0\r\n", "SIP/7.0\r\n"));
    assert_eq!(
        (r.fault.status(), r.fault.to_string().as_str()),
        (505, "Version Not Supported")
    );
    let r = rejected(
        &base("", "1 OPTIONS").replace("sip:user@example.com SIP", "<sip:user@example.com> SIP"),
    );
    assert_eq!(r.fault, Fault::RequestUri);
    let r = rejected(&base("", "1 OPTIONS").replace(
        "OPTIONS sip:user@example.com",
        "OPTIONS  sip:user@example.com",
    ));
    assert_eq!(r.fault, Fault::StartLine);
    let r = rejected(&base("", "1 OPTIONS").replace(
        "sip:user@example.com SIP",
        "sip:user@example.com?Route=%3Csip:x%3E SIP",
    ));
    assert_eq!(r.fault, Fault::UriHeaders);
    let r = rejected(
        &base("", "1 OPTIONS").replace("From: <sip:a@b>", "From: \"unterminated <sip:a@b>"),
    );
    assert_eq!(r.fault, Fault::Malformed(HeaderName::From));
    // Without a Call-ID a response would lack a mandatory header itself (RFC 3261 §8.2.6.2
    // copies it): such a request is dropped and counted, not answered.
    let no_callid = base("", "1 OPTIONS").replace("Call-ID: c1\r\n", "");
    assert!(matches!(
        p(&no_callid),
        Err(ParseError::Drop(Fault::Missing(HeaderName::CallId)))
    ));
}

#[test]
fn responses_and_bad_status_lines() {
    let m = "SIP/2.0 200 = 2**3 * 5**2 \u{43d}\u{43e}\r\nVia: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\r\nCall-ID: unreason.1234ksdfak3j2erwedfsASdf\r\nCSeq: 35 INVITE\r\nFrom: sip:user@example.com;tag=11141343\r\nTo: sip:user@example.edu;tag=2229\r\nContent-Length: 0\r\n\r\n";
    match p(m) {
        Ok(Message::Response(r)) => {
            assert_eq!(r.status, 200);
            assert_eq!(r.to.tag(), Some("2229"));
        }
        other => panic!("{other:?}"),
    }
    let big = m.replace("SIP/2.0 200 =", "SIP/2.0 4294967301 =");
    assert!(matches!(p(&big), Err(ParseError::Drop(Fault::StatusLine))));
    let empty_reason = m.replace("SIP/2.0 200 = 2**3 * 5**2 \u{43d}\u{43e}", "SIP/2.0 100 ");
    assert!(matches!(p(&empty_reason), Ok(Message::Response(_))));
}

#[test]
fn writer_response_copies_dialog_headers() {
    let r = req(INVITE);
    let src: std::net::SocketAddr = "127.0.0.1:5061".parse().unwrap();
    let mut w = MessageWriter::response_to(&r, src, 486, "Busy Here", Some("ftag"));
    w.header(HeaderName::RetryAfter, "5");
    let bytes = w.finish_empty();
    let back = match p(std::str::from_utf8(&bytes).unwrap()) {
        Ok(Message::Response(resp)) => resp,
        other => panic!("{other:?}"),
    };
    assert_eq!(back.status, 486);
    assert_eq!(back.to.tag(), Some("ftag"));
    assert_eq!(back.call_id(), r.call_id());
    assert_eq!(back.cseq, r.cseq);
    assert_eq!(back.via.branch(), r.via.branch());
    assert_eq!(back.headers.get(HeaderName::RetryAfter), Some("5"));
    // rport was asked for: filled with the source port.
    assert!(back
        .headers
        .get(HeaderName::Via)
        .unwrap()
        .contains("rport=5061"));
}

/// Fuzz finding (sip_message): a copied Via whose protocol and sent-by were separated by a
/// bare CR was written with the CR dropped (`SIP/2.0/TCPproxy.example.com`), and the
/// response no longer parsed.
#[test]
fn writer_keeps_words_apart_when_it_drops_a_bare_cr() {
    let with_cr = INVITE.replace(
        "From:",
        "Via: SIP/2.0/TCP\rproxy.example.com;branch=z9hG4bK-2\r\nFrom:",
    );
    let r = req(&with_cr);
    let src: std::net::SocketAddr = "127.0.0.1:5061".parse().unwrap();
    let bytes = MessageWriter::response_to(&r, src, 486, "Busy Here", Some("t")).finish_empty();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(
        text.contains("Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bK-2\r\n"),
        "{text}"
    );
    assert!(matches!(p(text), Ok(Message::Response(_))), "{text}");
}

/// RFC 3261 §12.1.1: a 2xx (or dialog-creating 1xx) carries the request's Record-Route in
/// order; a final refusal does not need it.
#[test]
fn writer_response_copies_record_route_into_dialog_responses() {
    let with_rr = INVITE.replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nRecord-Route: <sip:10.0.0.1;lr>\r\nRecord-Route: <sip:10.0.0.2;lr>\r\n",
    );
    let r = req(&with_rr);
    let src: std::net::SocketAddr = "127.0.0.1:5061".parse().unwrap();
    let ok = MessageWriter::response_to(&r, src, 200, "OK", Some("t")).finish_empty();
    let text = std::str::from_utf8(&ok).unwrap();
    let first = text
        .find("Record-Route: <sip:10.0.0.1;lr>")
        .expect("first RR");
    let second = text
        .find("Record-Route: <sip:10.0.0.2;lr>")
        .expect("second RR");
    assert!(first < second, "{text}");
    let busy = MessageWriter::response_to(&r, src, 486, "Busy Here", Some("t")).finish_empty();
    assert!(!std::str::from_utf8(&busy).unwrap().contains("Record-Route"));
}

#[test]
fn a_truncated_datagram_is_refused_or_read_as_the_headers_it_holds() {
    // A datagram cut once the Content-Length header has begun lacks part of the body it
    // announces (RFC 3261 §18.3): refused. Cut earlier, it is refused or (the parser is
    // lenient about the blank line of a datagram) read as the header lines it holds, with
    // no body: never a message made of half a header or of octets that are not there.
    let length_at = INVITE.find("Content-Length").unwrap();
    for cut in 0..INVITE.len() {
        match p(&INVITE[..cut]) {
            Err(_) => {}
            Ok(Message::Request(r)) => {
                assert!(cut < length_at, "cut after {cut} octets parsed");
                assert!(r.body.is_empty(), "cut after {cut} octets has a body");
                assert_eq!(r.headers.get(HeaderName::CallId), Some("1-1@127.0.0.1"));
            }
            Ok(other) => panic!("cut after {cut} octets parsed as {other:?}"),
        }
    }
    assert!(p(INVITE).is_ok());
}

fn token() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.!%*_+`'~-]{0,12}"
}

proptest! {
    /// Every request the writer produces parses back to the same parts.
    #[test]
    fn written_requests_parse_back(
        user in "[a-z][a-z0-9]{0,10}",
        host in "[a-z]{1,8}\\.example\\.com",
        port in proptest::option::of(1u16..),
        branch in token(),
        tag in token(),
        call_id in "[a-zA-Z0-9@.-]{1,30}",
        seq in 0u32..(1 << 31),
        display in proptest::option::of("[ -~]{0,20}"),
        body in proptest::collection::vec(any::<u8>(), 0..200),
        method in prop_oneof![Just(Method::Invite), Just(Method::Bye), Just(Method::Subscribe),
                              Just(Method::Notify), Just(Method::Message), Just(Method::Options)],
    ) {
        let uri = match port { Some(p) => format!("sip:{user}@{host}:{p}"), None => format!("sip:{user}@{host}") };
        let mut w = MessageWriter::request(&method, &uri);
        w.header_fmt(HeaderName::Via, format_args!("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{branch}"));
        let from = match &display {
            Some(d) => format!("\"{}\" <sip:a@b.example.com>;tag={tag}", d.replace('\\', "\\\\").replace('"', "\\\"")),
            None => format!("<sip:a@b.example.com>;tag={tag}"),
        };
        w.header(HeaderName::From, &from);
        w.header(HeaderName::To, &format!("<{uri}>"));
        w.header(HeaderName::CallId, &call_id);
        w.header_fmt(HeaderName::CSeq, format_args!("{seq} {method}"));
        w.header(HeaderName::MaxForwards, "70");
        let bytes = w.finish(Some("application/octet-stream"), &body);
        let parsed = parse(bytes, Framing::Stream, &ParseLimits::default());
        let r = match parsed { Ok(Message::Request(r)) => r, other => panic!("{other:?}") };
        prop_assert_eq!(&r.method, &method);
        prop_assert_eq!(r.uri.to_string(), uri.clone());
        prop_assert_eq!(r.uri.port, port);
        let expected_branch = format!("z9hG4bK{branch}");
        prop_assert_eq!(r.branch(), Some(expected_branch.as_str()));
        prop_assert_eq!(r.from.tag(), Some(tag.as_str()));
        let shown = display.map(|d| d.trim().to_string());
        prop_assert_eq!(r.from.display.as_deref().map(str::trim), shown.as_deref().filter(|_| true));
        prop_assert_eq!(r.call_id(), call_id.as_str());
        prop_assert_eq!(r.cseq, CSeq { seq, method });
        prop_assert_eq!(&r.body[..], &body[..]);
    }

    /// The parser and framer never panic, whatever the bytes.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse(Bytes::from(data.clone()), Framing::Datagram, &ParseLimits::default());
        // The framer never panics, and every frame it yields consumes what it yields: it
        // never invents octets nor loops on the same ones.
        let mut buf = bytes::BytesMut::from(&data[..]);
        let mut f = Framer::new(1024);
        let mut framed = 0;
        while let Ok(Some(frame)) = f.decode(&mut buf) {
            framed += match frame {
                Frame::Message(m) => m.len(),
                Frame::Ping => 4,
            };
            prop_assert!(framed + buf.len() <= data.len(), "{framed} framed, {} left", buf.len());
        }
    }

    /// Mutating one byte of a valid INVITE never panics the parser.
    #[test]
    fn mutated_invite_never_panics(pos in 0usize..INVITE.len(), byte in any::<u8>()) {
        let mut data = INVITE.as_bytes().to_vec();
        data[pos] = byte;
        // Whatever it makes of the bytes, a message it accepts carries the body it read.
        if let Ok(Message::Request(r)) =
            parse(Bytes::from(data.clone()), Framing::Datagram, &ParseLimits::default())
        {
            prop_assert!(r.body.len() <= data.len());
            prop_assert!(data.ends_with(&r.body), "the body is not the datagram's tail");
        }
    }
}

/// rsip as an oracle: for a message both parsers accept, they agree on the essentials.
#[test]
fn agrees_with_rsip_on_plain_messages() {
    use rsip::prelude::*;
    let ours = req(INVITE);
    let theirs = rsip::SipMessage::try_from(INVITE).expect("rsip parses a plain INVITE");
    let rsip::SipMessage::Request(theirs) = theirs else {
        panic!("rsip: not a request")
    };
    assert_eq!(theirs.method.to_string(), ours.method.to_string());
    assert_eq!(theirs.call_id_header().unwrap().value(), ours.call_id());
    let from = theirs.from_header().unwrap().typed().unwrap();
    assert_eq!(
        from.tag().map(|t| t.value().to_string()).as_deref(),
        ours.from.tag()
    );
    assert_eq!(
        theirs.cseq_header().unwrap().typed().unwrap().seq,
        ours.cseq.seq
    );
    assert_eq!(theirs.body.len(), ours.body.len());
}

/// Every RFC 4475 / RFC 5118 fixture at the parser: what parses, what is answered with its
/// fault (`400`/`505`) and what is dropped (the end-to-end reaction is `tests/torture.rs`).
#[test]
fn torture_fixtures_parse_as_their_rfcs_say() {
    #[derive(Debug, PartialEq)]
    enum Outcome {
        Request,
        Response,
        Reject(u16),
        Drop,
    }
    use Outcome::*;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torture");
    let reject = [
        "3.1.2.1-badinv01.sip",
        "3.1.2.2-clerr.sip",
        "3.1.2.3-ncl.sip",
        "3.1.2.4-scalar02.sip",
        "3.1.2.6-quotbal.sip",
        "3.1.2.7-ltgtruri.sip",
        "3.1.2.8-lwsruri.sip",
        "3.1.2.9-lwsstart.sip",
        "3.1.2.10-trws.sip",
        "3.1.2.11-escruri.sip",
        "3.1.2.14-badaspec.sip",
        "3.1.2.15-baddn.sip",
        "3.1.2.17-mismatch01.sip",
        "3.1.2.18-mismatch02.sip",
        "3.3.8-multi01.sip",
        "3.3.9-mcl01.sip",
        "rfc5118-4.2-ipv6-bad.sip",
    ];
    let responses = [
        "3.1.1.12-unreason.sip",
        "3.1.1.13-noreason.sip",
        "3.3.10-bcast.sip",
    ];
    let dropped = [
        "3.1.2.5-scalarlg.sip",
        "3.1.2.19-bigcode.sip",
        "3.3.1-insuf.sip",
    ];
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.ends_with(".sip") {
            continue;
        }
        seen += 1;
        let bytes = Bytes::from(std::fs::read(&path).unwrap());
        let got = match parse(bytes, Framing::Datagram, &ParseLimits::default()) {
            Ok(Message::Request(_)) => Request,
            Ok(Message::Response(_)) => Response,
            Err(ParseError::Reject(r)) => Reject(r.fault.status()),
            Err(ParseError::Drop(_)) => Drop,
        };
        let want = if name == "3.1.2.16-badvers.sip" {
            Reject(505)
        } else if reject.contains(&name.as_str()) {
            Reject(400)
        } else if responses.contains(&name.as_str()) {
            Response
        } else if dropped.contains(&name.as_str()) {
            Drop
        } else {
            Request
        };
        assert_eq!(got, want, "{name}");
    }
    assert_eq!(seen, 61);
}

/// Every host:port the focus writes goes through `Host::with_port`: an IPv6 reference comes
/// out in brackets (RFC 3261 §25.1, RFC 5118 §4.1) and reads back as the same address in a
/// URI and a Via; configuration may name IPv6 with or without brackets.
#[test]
fn host_port_brackets_ipv6_and_reads_back() {
    let v6 = Host::Ip("2001:db8::7".parse().unwrap());
    assert_eq!(v6.with_port(5060).to_string(), "[2001:db8::7]:5060");
    assert_eq!(
        Host::Ip([192, 0, 2, 1].into()).with_port(5060).to_string(),
        "192.0.2.1:5060"
    );
    assert_eq!(
        Host::Domain("focus.example.com".into())
            .with_port(5061)
            .to_string(),
        "focus.example.com:5061"
    );
    let uri = Uri::parse(&format!("sip:team@{}", v6.with_port(5060))).unwrap();
    assert_eq!((uri.host.as_ref(), uri.port), (Some(&v6), Some(5060)));
    let via = Via::parse(&format!(
        "SIP/2.0/UDP {};branch=z9hG4bKx",
        v6.with_port(5062)
    ))
    .unwrap();
    assert_eq!((via.host, via.port), (v6.clone(), Some(5062)));
    // The bug this replaces: a bare IPv6 address with a port is no URI at all.
    assert!(Uri::parse("sip:team@::1:5060").is_err());
    for text in ["::1", "[::1]"] {
        assert_eq!(
            Host::parse_config(text),
            Ok(Host::Ip(std::net::Ipv6Addr::LOCALHOST.into())),
            "{text}"
        );
    }
    assert!(Host::parse_config("::1:5060:x").is_err());
    assert_eq!(
        Host::parse_config("focus.example.com"),
        Ok(Host::Domain("focus.example.com".into()))
    );
}

/// Past `max_headers` the headers a response copies are still read, so the request is
/// answered `400 Too many header lines` rather than dropped (they came after the limit).
#[test]
fn too_many_headers_is_answerable_when_the_essentials_come_late() {
    let pad: String = (0..300).map(|i| format!("X-Pad-{i}: {i}\r\n")).collect();
    let text = format!(
        "OPTIONS sip:a@b SIP/2.0\r\n{pad}Via: SIP/2.0/UDP h;branch=z9hG4bK-1\r\n\
         From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: late\r\nCSeq: 1 OPTIONS\r\n\
         Via: SIP/2.0/UDP second;branch=z9hG4bK-2\r\nContent-Length: 0\r\n\r\n"
    );
    match parse(
        Bytes::from(text),
        Framing::Datagram,
        &ParseLimits::default(),
    ) {
        Err(ParseError::Reject(r)) => {
            assert_eq!(r.fault, Fault::TooManyHeaders);
            assert_eq!(r.headers.get(HeaderName::CallId), Some("late"));
            assert_eq!(r.via.branch(), Some("z9hG4bK-1"));
            // Only the first of each: at most five lines past the limit.
            assert_eq!(r.headers.len(), 256 + 5);
        }
        other => panic!("{other:?}"),
    }
}

/// What the transport could not take whole is refused with the transport's fault, over
/// what the parser found: a request names where to answer, a response or garbage does not.
#[test]
fn refuse_answers_requests_with_the_transport_fault() {
    let head = "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK-1\r\n\
                From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n\
                Content-Length: 99999\r\n\r\nxx";
    let limits = ParseLimits::default();
    match refuse(Bytes::from(head), Fault::TooLarge, &limits) {
        ParseError::Reject(r) => {
            assert_eq!(
                (r.fault.status(), r.fault.to_string()),
                (513, "Message Too Large".into())
            );
        }
        other => panic!("{other:?}"),
    }
    let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK-1\r\n\r\n";
    assert!(matches!(
        refuse(Bytes::from(resp), Fault::TooLarge, &limits),
        ParseError::Drop(Fault::TooLarge)
    ));
    assert!(matches!(
        refuse(
            Bytes::from_static(b"xxxxxxxx"),
            Fault::Missing(HeaderName::ContentLength),
            &limits
        ),
        ParseError::Drop(Fault::Missing(HeaderName::ContentLength))
    ));
}
