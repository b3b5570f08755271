//! Framing as an attacker or an unlucky network meets it (issue 18): a stream message without
//! Content-Length, more header lines than the limit, messages over the size limit, pipelined
//! requests on one connection, and a response that no UDP datagram can carry. Each is answered
//! as RFC 3261 says, counted, and never left to silence.

mod support;

use cpm_focus::sip::{HeaderName, Method};
use std::time::Duration;
use support::{Call, Focus, Origin, Ua, AUDIO_OFFER, TEAM, WAIT};

/// An OPTIONS to the group from `ua` with `extra` header lines before Call-ID and CSeq, and
/// `cl` as its Content-Length line (or none).
fn options_text(ua: &Ua, call_id: &str, branch: &str, extra: &str, cl: Option<&str>) -> String {
    let transport = if matches!(ua.primary, Origin::Tcp(_)) {
        "TCP"
    } else {
        "UDP"
    };
    let cl = cl.map(|v| format!("{v}\r\n")).unwrap_or_default();
    format!(
        "OPTIONS sip:team@focus.example.com SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {};branch={branch};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:mallory@example.com>;tag=m1\r\n\
         To: <sip:team@focus.example.com>\r\n\
         {extra}\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         {cl}\r\n",
        ua.local
    )
}

fn limit_refusals(focus: &Focus, reason: &str) -> f64 {
    focus
        .metric(&format!(
            "focus_sip_limit_refusals_total{{reason=\"{reason}\"}}"
        ))
        .unwrap_or(0.0)
}

/// RFC 3261 §18.3: over a stream, a message without Content-Length cannot be delimited. It
/// was taken as bodiless, so its body was read as the next request (smuggling one past any
/// proxy that framed it differently); now it is answered `400` naming the missing header and
/// its connection is closed, and nothing after it is read.
#[test]
fn a_tcp_request_without_content_length_gets_400_and_its_connection_closes() {
    let focus = Focus::start("");
    let mut attacker = Ua::tcp_from(&focus, "mallory", "127.0.0.66");
    let text = options_text(&attacker, "nocl@127.0.0.66", "z9hG4bK-nocl", "", None);
    let smuggled = options_text(
        &attacker,
        "smuggled@127.0.0.66",
        "z9hG4bK-smuggled",
        "",
        Some("Content-Length: 0"),
    );
    attacker.send_raw(&format!("{text}{smuggled}"));
    let r = attacker.expect_final("z9hG4bK-nocl");
    assert_eq!(
        (r.status, &*r.reason),
        (400, "Missing Content-Length header")
    );
    assert_eq!(r.call_id(), "nocl@127.0.0.66");
    assert!(
        attacker.wait_closed(attacker.primary, WAIT),
        "the connection stayed open after a message without Content-Length"
    );
    let after = attacker.drain(Duration::from_millis(300));
    assert!(
        after.iter().all(|m| m
            .response()
            .is_none_or(|r| r.call_id() != "smuggled@127.0.0.66")),
        "the bytes after the unframed message were read as a request"
    );
    assert_eq!(limit_refusals(&focus, "no_content_length"), 1.0);
    // Over UDP the datagram delimits the message: no Content-Length is fine (RFC 3261 §18.3).
    let mut udp = Ua::udp(&focus, "ulrich");
    let text = options_text(&udp, "nocl-udp@127.0.0.1", "z9hG4bK-nocl-udp", "", None);
    udp.send_raw(&text);
    assert_eq!(udp.expect_final("z9hG4bK-nocl-udp").status, 200);
    // Other connections are untouched.
    let mut fresh = Ua::tcp(&focus, "trudy");
    assert_eq!(fresh.options(TEAM).status, 200);
}

/// More header lines than `sip.max_headers` (256): the essentials came after the limit, so
/// the request was dropped unanswered. Now it is answered `400 Too many header lines` and
/// counted, over UDP and over TCP (whose connection stays usable: the message was framed).
#[test]
fn more_header_lines_than_the_limit_get_400_and_are_counted() {
    let focus = Focus::start("");
    let padding: String = (0..300).map(|i| format!("X-Pad-{i}: {i}\r\n")).collect();
    let mut udp = Ua::udp_from(&focus, "mallory", "127.0.0.66");
    let text = options_text(
        &udp,
        "hdrs-udp@127.0.0.66",
        "z9hG4bK-hdrs-udp",
        &padding,
        None,
    );
    udp.send_raw(&text);
    let r = udp.expect_final("z9hG4bK-hdrs-udp");
    assert_eq!((r.status, &*r.reason), (400, "Too many header lines"));
    assert_eq!(r.call_id(), "hdrs-udp@127.0.0.66");

    let mut tcp = Ua::tcp_from(&focus, "mallet", "127.0.0.67");
    let text = options_text(
        &tcp,
        "hdrs-tcp@127.0.0.67",
        "z9hG4bK-hdrs-tcp",
        &padding,
        Some("Content-Length: 0"),
    );
    tcp.send_raw(&text);
    let r = tcp.expect_final("z9hG4bK-hdrs-tcp");
    assert_eq!((r.status, &*r.reason), (400, "Too many header lines"));
    assert_eq!(tcp.options(TEAM).status, 200, "the connection still serves");
    assert_eq!(limit_refusals(&focus, "too_many_headers"), 2.0);
    // Exactly at the limit is accepted (256 lines, the padding included).
    let at_limit: String = (0..249).map(|i| format!("X-Pad-{i}: {i}\r\n")).collect();
    let text = options_text(
        &tcp,
        "hdrs-ok@127.0.0.67",
        "z9hG4bK-hdrs-ok",
        &at_limit,
        Some("Content-Length: 0"),
    );
    assert_eq!(text.matches("\r\n").count() - 2, 256, "header lines");
    tcp.send_raw(&text);
    assert_eq!(tcp.expect_final("z9hG4bK-hdrs-ok").status, 200);
    assert_eq!(limit_refusals(&focus, "too_many_headers"), 2.0);
}

/// A message over `sip.max_message_size` was dropped silently over UDP: now `513 Message Too
/// Large` (RFC 3261 §21.5.14) over UDP and TCP alike, counted, and over TCP the connection is
/// closed (the rest of the oversized body cannot be skipped safely).
#[test]
fn a_message_over_the_size_limit_gets_513() {
    let focus = Focus::start("[sip]\nmax_message_size = 2048\n");
    let body = "x".repeat(3000);
    let mut udp = Ua::udp_from(&focus, "mallory", "127.0.0.66");
    let mut text = options_text(
        &udp,
        "big-udp@127.0.0.66",
        "z9hG4bK-big-udp",
        "",
        Some(&format!(
            "Content-Type: text/plain\r\nContent-Length: {}",
            body.len()
        )),
    );
    text.push_str(&body);
    udp.send_raw(&text);
    let r = udp.expect_final("z9hG4bK-big-udp");
    assert_eq!((r.status, &*r.reason), (513, "Message Too Large"));

    let mut tcp = Ua::tcp_from(&focus, "mallet", "127.0.0.67");
    let mut text = options_text(
        &tcp,
        "big-tcp@127.0.0.67",
        "z9hG4bK-big-tcp",
        "",
        Some(&format!(
            "Content-Type: text/plain\r\nContent-Length: {}",
            body.len()
        )),
    );
    text.push_str(&body);
    tcp.send_raw(&text);
    let r = tcp.expect_final("z9hG4bK-big-tcp");
    assert_eq!((r.status, &*r.reason), (513, "Message Too Large"));
    assert!(
        tcp.wait_closed(tcp.primary, WAIT),
        "the connection stayed open after an oversized message"
    );
    assert_eq!(limit_refusals(&focus, "too_large"), 2.0);
    assert_eq!(
        udp.options(TEAM).status,
        200,
        "a message under the limit still passes"
    );
}

/// Requests pipelined on one connection. RFC 3261 matches a response to its request by the
/// Via branch (§17.1.3), not by position as HTTP/1.1 pipelining does, so responses of
/// independent transactions (different Call-IDs) may come in any order; what must hold is
/// that every request is answered exactly once, and that the requests of one dialog are
/// processed in arrival order (their CSeqs rise, RFC 3261 §12.2.2: one processed after a
/// higher one would get `500`), so their responses come back in that order.
#[test]
fn pipelined_requests_on_one_connection_are_answered_once_and_in_dialog_order() {
    let focus = Focus::start("");
    let mut ua = Ua::tcp(&focus, "pipa");
    let (mut call, _) = ua.join(TEAM);
    // 40 in-dialog OPTIONS (rising CSeqs) and 40 independent ones, all in one write.
    let mut stream = String::new();
    let mut info_branches = Vec::new();
    let mut options_branches = Vec::new();
    for i in 0..40 {
        call.cseq += 1;
        let b = format!("z9hG4bK-pipe-dlg-{i}");
        stream.push_str(&ua.request_text("OPTIONS", &call, call.cseq, &b, "", None));
        info_branches.push(b);
        let other = Call::new(TEAM);
        let b = format!("z9hG4bK-pipe-opt-{i}");
        stream.push_str(&ua.request_text("OPTIONS", &other, 1, &b, "", None));
        options_branches.push(b);
    }
    ua.send_raw(&stream);
    let mut info_order = Vec::new();
    let mut options_seen = Vec::new();
    while info_order.len() + options_seen.len() < 80 {
        let rx = ua
            .wait_for(WAIT, |m| m.response().is_some_and(|r| r.status >= 200))
            .unwrap_or_else(|| {
                panic!(
                    "only {} of 80 pipelined requests answered",
                    info_order.len() + options_seen.len()
                )
            });
        let r = rx.response().unwrap();
        assert_eq!(
            (r.cseq.method.clone(), r.status),
            (Method::Options, 200),
            "{}",
            rx.text()
        );
        let b = r.branch().unwrap_or("").to_string();
        if b.starts_with("z9hG4bK-pipe-dlg-") {
            info_order.push(b);
        } else {
            options_seen.push(b);
        }
    }
    assert_eq!(
        info_order, info_branches,
        "in-dialog responses out of order"
    );
    options_seen.sort();
    let mut want = options_branches.clone();
    want.sort();
    assert_eq!(options_seen, want, "each OPTIONS answered exactly once");
    ua.assert_quiet(Duration::from_millis(200), "no duplicate answers");
    assert_eq!(ua.bye(&mut call).status, 200);
}

/// An INVITE whose `200` cannot fit a UDP datagram (RFC 3261 §18.2.2: the response goes back
/// over UDP; `sip.max_datagram_size` is the largest the focus sends, 65,507 bytes by default,
/// all an IPv4 datagram carries; the request's Record-Route is copied into the `200`). It got
/// `100 Trying` and then nothing, the `200` retransmitted into the void until Timer H. Now the
/// request gets `500 Response Too Large`, counted, and the participant the `200` would have
/// admitted is withdrawn: nothing stays behind.
#[test]
fn an_invite_whose_200_does_not_fit_a_datagram_gets_500_and_leaves_nothing() {
    let focus = Focus::start("[sip]\nmax_datagram_size = 4000\n");
    let mut ua = Ua::udp(&focus, "bigrr");
    // A Record-Route of about 3,500 bytes: the INVITE fits in 4,000 bytes, the 200 (that
    // copies it and adds an SDP answer and the focus's headers) does not.
    let hops: Vec<String> = (0..62)
        .map(|i| format!("<sip:proxy{i:04}.example.net;lr;x=padpadpadpadpad>"))
        .collect();
    ua.invite_headers = format!("Record-Route: {}\r\n", hops.join(","));
    let mut call = Call::new(TEAM);
    let sent = ua
        .request_text(
            "INVITE",
            &call,
            1,
            &support::branch(),
            &ua.invite_headers,
            Some(("application/sdp", AUDIO_OFFER)),
        )
        .len();
    assert!(
        (3_400..3_800).contains(&sent),
        "the INVITE is {sent} bytes: it must fit the limit"
    );
    let b = ua.invite(&mut call, Some(AUDIO_OFFER));
    let r = ua.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (500, "Response Too Large"));
    assert!(r.headers.get(HeaderName::RecordRoute).is_none());
    assert_eq!(limit_refusals(&focus, "response_too_large"), 1.0);
    focus.wait_metric("focus_participants_active", WAIT, |v| v == 0.0);
    focus.wait_metric("focus_transactions_active", WAIT, |v| v == 0.0);
    // The same agent without the oversized route joins normally.
    ua.invite_headers.clear();
    let (mut call, ok) = ua.join(TEAM);
    assert_eq!(ok.status, 200);
    assert_eq!(ua.bye(&mut call).status, 200);
}
