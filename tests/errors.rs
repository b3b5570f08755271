//! Bad input: malformed requests, methods and extensions the focus does not serve, bodies it
//! does not take, stray responses, unframeable TCP streams. Every refusal must be addressed
//! correctly and leave the focus serving.

mod support;

use cpm_focus::sip::{HeaderName, Response};
use support::{Call, Focus, Origin, Ua, AUDIO_OFFER, TEAM, WAIT};

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, SUBSCRIBE, REFER, INFO, MESSAGE, UPDATE";

/// An OPTIONS with two Vias (the second as a proxy would leave it), in which `edit` then
/// replaces one piece of text.
fn options_text(ua: &Ua, call_id: &str, edit: (&str, &str)) -> String {
    let text = format!(
        "OPTIONS sip:team@focus.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {};branch=z9hG4bK-bad-{call_id}\r\n\
         Via: SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK-upstream;received=192.0.2.77\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@example.com>;tag=f1\r\n\
         To: <sip:team@focus.example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 7 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n",
        ua.local
    );
    assert!(text.contains(edit.0), "edit {:?} matches nothing", edit.0);
    text.replacen(edit.0, edit.1, 1)
}

/// The values of one header in a raw message, in order.
fn raw_headers(raw: &str, name: &str) -> Vec<String> {
    raw.split("\r\n\r\n")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .collect()
}

/// Sends `text` and returns the raw response, asserting it copies Via, From, Call-ID and CSeq
/// exactly and To with a tag added.
fn refused(ua: &mut Ua, text: &str, status: u16, reason: &str) {
    ua.send_raw(text);
    // The answer copies the fault (a bad CSeq, say), so it need not parse: read it raw.
    let raw = ua
        .recv_raw(WAIT)
        .unwrap_or_else(|| panic!("no answer to:\n{text}"));
    let answer = String::from_utf8(raw.to_vec()).expect("UTF-8 answer");
    let status_line = answer.lines().next().unwrap();
    assert_eq!(
        status_line,
        format!("SIP/2.0 {status} {reason}"),
        "for:\n{text}"
    );
    for name in ["Via", "From", "Call-ID", "CSeq"] {
        let mut sent = raw_headers(text, name);
        if name != "Via" {
            // A response carries one of each (the first, when the request had two).
            sent.truncate(1);
        }
        assert_eq!(
            raw_headers(&answer, name),
            sent,
            "{name} not copied exactly:\n{answer}"
        );
    }
    let sent_to = raw_headers(text, "To");
    let got_to = raw_headers(&answer, "To");
    assert_eq!(got_to.len(), 1);
    let tag = got_to[0]
        .strip_prefix(&format!("{};tag=", sent_to[0]))
        .unwrap_or_else(|| panic!("To not copied with a tag added: {got_to:?}"));
    assert!(!tag.is_empty());
}

/// An OPTIONS the focus must answer 200: proof it still serves.
fn still_serving(ua: &mut Ua) {
    let r = ua.options(TEAM);
    assert_eq!(r.status, 200, "{}", r.reason);
}

#[test]
fn malformed_requests_get_400_or_505_naming_the_fault() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "alice");
    ua.raw_ok = true;
    let cases = [
        (
            ("CSeq: 7 OPTIONS", "CSeq: seven OPTIONS"),
            400,
            "Malformed CSeq header",
        ),
        (
            ("CSeq: 7 OPTIONS", "CSeq: 7 INVITE"),
            400,
            "CSeq method does not match Request-Line",
        ),
        (
            ("From: \"Alice\" <", "From: \"Alice <"),
            400,
            "Malformed From header",
        ),
        (
            ("Max-Forwards: 70", "Max-Forwards: seventy"),
            400,
            "Malformed Max-Forwards header",
        ),
        (
            ("Max-Forwards: 70", "Call-ID: second-call-id"),
            400,
            "Multiple Call-ID headers",
        ),
        (
            ("focus.example.com SIP/2.0", "focus.example.com SIP/7.0"),
            505,
            "Version Not Supported",
        ),
        (
            ("Content-Length: 0", "Content-Length: 50"),
            400,
            "Content-Length larger than message",
        ),
    ];
    for (i, (edit, status, reason)) in cases.into_iter().enumerate() {
        let text = options_text(&ua, &format!("bad-{i}"), edit);
        refused(&mut ua, &text, status, reason);
    }
    assert_eq!(
        focus.metric("focus_sip_parse_errors_total{reason=\"rejected\"}"),
        Some(cases.len() as f64)
    );
    still_serving(&mut ua);
}

#[test]
fn a_request_without_call_id_is_dropped_unanswered() {
    // The parser drops what it cannot address a full response to (src/sip/parse.rs,
    // `reject_or_drop`): a request without Call-ID gets no answer at all.
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "bob");
    let text = options_text(&ua, "unused", ("Call-ID: unused\r\n", ""));
    ua.send_raw(&text);
    // The UDP reader answers (or drops) a datagram before it reads the next one, so the
    // first thing to come back after this OPTIONS is either the 400 or the OPTIONS' 200.
    let r = ua.options(TEAM);
    assert_eq!(r.status, 200);
    ua.assert_quiet(
        std::time::Duration::from_millis(200),
        "no answer to a request without Call-ID",
    );
    assert_eq!(
        focus.metric("focus_sip_parse_errors_total{reason=\"dropped\"}"),
        Some(1.0)
    );
}

#[test]
fn methods_extensions_and_bodies_the_focus_does_not_serve() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "carol");

    // Unknown method: 501 with Allow.
    let mut call = Call::new(TEAM);
    let b = ua.send_request(&mut call, "FROBNICATE", "", None);
    let r = ua.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (501, "Not Implemented"));
    assert_eq!(r.headers.get(HeaderName::Allow), Some(ALLOW));

    // A known method the focus does not serve: 405 with Allow.
    for method in ["REGISTER", "PUBLISH", "NOTIFY"] {
        let mut call = Call::new(TEAM);
        let b = ua.send_request(&mut call, method, "", None);
        let r = ua.expect_final(&b);
        assert_eq!(
            (r.status, &*r.reason),
            (405, "Method Not Allowed"),
            "{method}"
        );
        assert_eq!(r.headers.get(HeaderName::Allow), Some(ALLOW), "{method}");
    }

    // An extension the request requires: 420 naming it in Unsupported.
    let mut call = Call::new(TEAM);
    let b = ua.send_request(
        &mut call,
        "INVITE",
        "Require: foo\r\n",
        Some(("application/sdp", AUDIO_OFFER)),
    );
    let r = ua.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (420, "Bad Extension"));
    assert_eq!(r.headers.get(HeaderName::Unsupported), Some("foo"));

    // A body type the focus does not read: 415 with Accept.
    let mut call = Call::new(TEAM);
    let b = ua.send_request(&mut call, "INVITE", "", Some(("text/plain", "hello")));
    let r = ua.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (415, "Unsupported Media Type"));
    // SDP, or SDP beside a URI list of invitees (RFC 5366).
    assert_eq!(
        r.headers.get(HeaderName::Accept),
        Some("application/sdp, multipart/mixed")
    );

    // A client that cannot read SDP: 406 with what the focus would send.
    let mut call = Call::new(TEAM);
    let b = ua.send_request(
        &mut call,
        "INVITE",
        "Accept: text/html\r\n",
        Some(("application/sdp", AUDIO_OFFER)),
    );
    let r = ua.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (406, "Not Acceptable"));
    assert_eq!(r.headers.get(HeaderName::Accept), Some("application/sdp"));

    // A URI scheme that names no conference: 416.
    let mut call = Call::new("mailto:team@focus.example.com");
    let b = ua.send_request(&mut call, "OPTIONS", "", None);
    let r = ua.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (416, "Unsupported URI Scheme"));

    // None of these joined anyone.
    assert_eq!(
        focus.metric("focus_participants_active").unwrap_or(0.0),
        0.0
    );
    assert_eq!(
        focus.metric("focus_sip_unsupported_methods_total"),
        Some(4.0)
    );
    ua.assert_quiet(
        std::time::Duration::from_millis(300),
        "no retransmitted finals after the ACKs",
    );
    still_serving(&mut ua);
}

#[test]
fn stray_responses_and_garbage_get_no_reply() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "dave");
    let call_id = "stray-1@127.0.0.1";
    let stray = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {}:{};branch=z9hG4bK-never-sent\r\nFrom: <sip:team@focus.example.com>;tag=x\r\nTo: <sip:dave@example.com>;tag=y\r\nCall-ID: {call_id}\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n",
        focus.sip_udp.ip(),
        focus.sip_udp.port()
    );
    ua.send_raw(&stray);
    ua.send_raw("\u{1}\u{2} this is not SIP at all\r\n\r\n");
    // Same Call-ID, so the probe goes through the same transaction shard after the stray.
    let mut probe = Call::new(TEAM);
    probe.call_id = call_id.into();
    let b = ua.send_request(&mut probe, "OPTIONS", "", None);
    let first = ua.recv(WAIT).expect("no answer to the probe");
    let r: &Response = first.response().expect("a response");
    assert_eq!(
        (r.branch(), r.status),
        (Some(b.as_str()), 200),
        "{}",
        first.text()
    );
    ua.assert_quiet(
        std::time::Duration::from_millis(200),
        "nothing answers a stray response",
    );
    assert_eq!(focus.metric("focus_sip_stray_responses_total"), Some(1.0));
    assert_eq!(
        focus.metric("focus_sip_parse_errors_total{reason=\"dropped\"}"),
        Some(1.0)
    );
}

#[test]
fn unframeable_tcp_stream_gets_400_and_is_closed_alone() {
    let focus = Focus::start("");
    let mut good = Ua::tcp(&focus, "erin");
    still_serving(&mut good);
    let mut bad = Ua::tcp(&focus, "frank");
    let text = format!(
        "OPTIONS sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/TCP {};branch=z9hG4bK-ncl\r\nMax-Forwards: 70\r\nFrom: <sip:frank@example.com>;tag=f\r\nTo: <sip:team@focus.example.com>\r\nCall-ID: ncl@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: -5\r\n\r\n",
        bad.local
    );
    bad.send_raw(&text);
    let rx = bad
        .recv(WAIT)
        .expect("no answer to a negative Content-Length");
    let r = rx.response().expect("a response");
    assert_eq!(
        (r.status, &*r.reason),
        (400, "Malformed Content-Length header")
    );
    assert_eq!(r.call_id(), "ncl@127.0.0.1");
    assert!(
        bad.wait_closed(bad.primary, WAIT),
        "the focus kept the unframeable connection open"
    );
    assert!(matches!(bad.primary, Origin::Tcp(_)));
    // The other connection, open all along, still works; so does a new one.
    still_serving(&mut good);
    let mut fresh = Ua::tcp(&focus, "grace");
    still_serving(&mut fresh);
    assert_eq!(
        focus.metric("focus_sip_parse_errors_total{reason=\"unframeable\"}"),
        Some(1.0)
    );
}

#[test]
fn dialog_creating_requests_need_a_contact() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "heidi");
    for (method, extra, body) in [
        ("INVITE", "", Some(("application/sdp", AUDIO_OFFER))),
        ("SUBSCRIBE", "Event: conference\r\n", None),
    ] {
        let mut call = Call::new(TEAM);
        call.cseq += 1;
        let b = format!("z9hG4bK-e2e-nocontact-{method}");
        let text = ua.request_text(method, &call, call.cseq, &b, extra, body);
        let text = text.replace(&format!("Contact: <{}>\r\n", ua.contact_uri()), "");
        assert!(!text.contains("Contact:"));
        ua.send_raw(&text);
        let r = ua.expect_final(&b);
        assert_eq!(
            (r.status, &*r.reason),
            (400, "Missing or invalid Contact header"),
            "{method}"
        );
    }
    assert_eq!(
        focus.metric("focus_participants_active").unwrap_or(0.0),
        0.0
    );
    assert_eq!(
        focus.metric("focus_subscriptions_active").unwrap_or(0.0),
        0.0
    );
    still_serving(&mut ua);
}

#[test]
fn compressed_bodies_are_refused_with_415() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "ivan");
    let mut call = Call::new(TEAM);
    let b = ua.send_request(
        &mut call,
        "INVITE",
        "Content-Encoding: gzip\r\n",
        Some(("application/sdp", AUDIO_OFFER)),
    );
    let r = ua.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (415, "Unsupported Media Type"));
    assert_eq!(r.headers.get(HeaderName::Accept), Some("application/sdp"));
    assert_eq!(r.headers.get(HeaderName::AcceptEncoding), Some("identity"));
    still_serving(&mut ua);
}
