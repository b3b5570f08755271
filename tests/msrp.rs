//! Session-mode group chat end to end (RFC 4975, RFC 7701, CPIM RFC 3862): participants join
//! with an MSRP offer over SIP, open real TCP connections to the focus's MSRP switch, and
//! exchange messages; every test counts what each participant received.

mod support;

use bytes::Bytes;
use cpm_focus::conference_info::{DisconnectionMethod, EndpointStatus};
use cpm_focus::media::msrp::{ByteRange, Request, Response};
use cpm_focus::sip::Method;
use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use support::{
    cpim_text, endpoint_state, follow, metric, Call, Chat, Endpoint, Focus, MsrpClient, Received,
    Setup, Ua, TEAM, WAIT,
};

/// A participant: its SIP agent, its chat session, its MSRP connection.
struct Member {
    ua: Ua,
    chat: Chat,
    msrp: MsrpClient,
}

/// Joins `name` to the team chat, connects (active) and binds.
fn member(focus: &Focus, name: &str) -> Member {
    member_with(focus, Endpoint::new(name, Setup::Active))
}

/// Joins with a prepared end; an active one binds, a passive one is bound by the focus.
fn member_with(focus: &Focus, endpoint: Endpoint) -> Member {
    let mut ua = Ua::udp(focus, &endpoint.name.clone());
    let setup = endpoint.setup;
    let mut chat = ua.join_chat_with(TEAM, endpoint);
    let mut msrp = chat.connect();
    if setup == Setup::Active {
        msrp.bind();
    }
    Member { ua, chat, msrp }
}

/// A CPIM message from `from` to `to`, asking for IMDN negative-delivery under `imdn_id`.
fn cpim_with_imdn(from: &str, to: &str, text: &str, imdn_id: &str) -> Bytes {
    cpim_text(from, to, text)
        .with_imdn(imdn_id, Some("negative-delivery"))
        .to_bytes()
        .unwrap()
}

/// Sends `req` and asserts the response code.
fn send_expect(c: &mut MsrpClient, req: &Request, code: u16) -> Response {
    let tid = c.send(req);
    let r = c.expect_response(&tid);
    assert_eq!(r.code, code, "{}: {:?}", c.name, r);
    r
}

/// The BYE the focus sends in `call` (answered 200): its Reason header and arrival.
fn expect_bye(ua: &mut Ua, call: &Call, timeout: Duration) -> (String, Instant) {
    let bye = ua.expect_request(Method::Bye, timeout);
    let req = bye.request().unwrap();
    assert_eq!(req.call_id(), call.call_id, "BYE for another dialog");
    let reason = req
        .headers
        .get_by_name("Reason")
        .unwrap_or_default()
        .to_string();
    ua.respond(&bye, 200);
    (reason, bye.at)
}

/// A negative delivery notification (RFC 5438) the focus sent `sender` about `imdn_id`
/// toward `recipient`.
fn assert_failed_imdn(m: &Received, sender: &str, imdn_id: &str, recipient: &str) {
    assert_eq!(m.sender_uri(), TEAM, "an IMDN comes from the group");
    assert_eq!(m.to_uris(), vec![sender.to_string()]);
    assert_eq!(m.inner_type().as_deref(), Some("message/imdn+xml"));
    let cpim = m.cpim();
    assert!(
        cpim.content_headers.iter().any(
            |h| h.name.eq_ignore_ascii_case("Content-Disposition") && h.value == "notification"
        ),
        "{:?}",
        cpim.content_headers
    );
    assert!(
        cpim.imdn_message_id().is_some(),
        "IMDN without its own imdn.Message-ID"
    );
    let xml = m.text();
    assert!(
        xml.contains(&format!("<message-id>{imdn_id}</message-id>")),
        "{xml}"
    );
    assert!(
        xml.contains(&format!("<recipient-uri>{recipient}</recipient-uri>")),
        "{xml}"
    );
    assert!(xml.contains("<failed/>"), "{xml}");
}

#[test]
fn sdp_answer_announces_the_focus_path_and_setup() {
    let focus = Focus::start("[msrp]\nmax_message_size = 123456\n");
    let msrp_addr = focus.msrp.expect("the focus serves MSRP");

    // An active participant: the focus is passive (RFC 6135), at its MSRP listener.
    let mut ua = Ua::udp(&focus, "alice");
    let mut alice = ua.join_chat(TEAM, Setup::Active);
    let m = &alice.media;
    assert_eq!(
        m.m_line,
        format!("m=message {} TCP/MSRP *", msrp_addr.port())
    );
    assert_eq!(m.attr("accept-types"), Some("message/cpim text/plain"));
    assert!(m.attr("accept-wrapped-types").is_some(), "{:?}", m.attrs);
    assert_eq!(m.attr("max-size"), Some("123456"));
    assert_eq!(m.attr("setup"), Some("passive"));
    let path = &alice.focus_path;
    assert_eq!(
        path.to_string().split('/').nth(2),
        Some(&*msrp_addr.to_string())
    );
    assert!(path.to_string().ends_with(";tcp"), "{path}");
    let sid = path.session_id.clone().expect("a=path without session id");
    assert!(sid.len() >= 10, "session id {sid:?} is guessable");
    let mut a = alice.connect();
    a.bind();

    // A second participant gets its own session id.
    let mut ub = Ua::udp(&focus, "bob");
    let mut bob = ub.join_chat(TEAM, Setup::Active);
    assert_ne!(bob.focus_path.session_id.as_deref(), Some(&*sid));
    assert_eq!(bob.focus_path.port, Some(msrp_addr.port()));
    let mut b = bob.connect();
    b.bind();

    // A passive participant: the focus answers active, connects to its listener and binds
    // with an empty SEND from its path to the participant's (RFC 4975 §5.4).
    let mut uc = Ua::udp(&focus, "carol");
    let mut carol = uc.join_chat(TEAM, Setup::Passive);
    assert_eq!(carol.media.attr("setup"), Some("active"));
    let mut c = carol.connect();
    let bind = c.next_chunk(WAIT).expect("no binding SEND from the focus");
    assert!(bind.body.is_empty(), "binding SEND with a body: {bind:?}");
    assert_eq!(bind.to_path, vec![carol.endpoint.path.clone()]);
    assert_eq!(bind.from_path, vec![carol.focus_path.clone()]);
    assert!(bind.message_id.is_some());

    // The focus-initiated connection carries messages both ways.
    assert_eq!(c.say("from the passive side").code, 200);
    for r in [&mut a, &mut b] {
        let m = r.expect_message();
        assert_eq!(m.text(), "from the passive side");
        assert_eq!(m.sender_uri(), "sip:carol@example.com");
    }
    assert_eq!(a.say("to the passive side").code, 200);
    assert_eq!(c.expect_message().text(), "to the passive side");
    assert_eq!(b.expect_message().text(), "to the passive side");
    assert_eq!(focus.metric("focus_msrp_members"), Some(3.0));
    assert_eq!(focus.metric("focus_msrp_connections_active"), Some(3.0));
}

#[test]
fn three_participants_get_each_message_once_with_the_senders_identity() {
    let focus = Focus::start("");
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");
    let mut carol = member(&focus, "carol");

    // Plain text: wrapped in CPIM by the focus, From the sender, To the group.
    assert_eq!(alice.msrp.say("hello from alice").code, 200);
    for r in [&mut bob, &mut carol] {
        let m = r.msrp.expect_message();
        assert_eq!(m.request.content_type.as_deref(), Some("message/cpim"));
        assert_eq!(m.sender_uri(), "sip:alice@example.com");
        assert_eq!(m.to_uris(), vec![TEAM.to_string()]);
        assert_eq!(m.inner_type().as_deref(), Some("text/plain"));
        assert_eq!(m.text(), "hello from alice");
        assert!(m.cpim().date_time().is_some(), "no DateTime");
        assert_eq!(m.request.to_path, vec![r.chat.endpoint.path.clone()]);
        assert_eq!(m.request.from_path, vec![r.chat.focus_path.clone()]);
    }

    // CPIM from bob claiming to be carol, to someone else: the focus vouches for bob.
    let spoof = cpim_text("sip:carol@example.com", TEAM, "I am carol, really")
        .to_bytes()
        .unwrap();
    let req = bob.msrp.request("message/cpim", spoof);
    send_expect(&mut bob.msrp, &req, 200);
    for r in [&mut alice, &mut carol] {
        let m = r.msrp.expect_message();
        assert_eq!(m.sender_uri(), "sip:bob@example.com", "CPIM From spoofed");
        assert_eq!(m.to_uris(), vec![TEAM.to_string()]);
        assert_eq!(m.text(), "I am carol, really");
    }

    // Interleaved senders: per-sender order, nothing twice, nothing back to the sender.
    const K: usize = 20;
    let mut tids: Vec<Vec<String>> = vec![Vec::new(); 3];
    for seq in 0..K {
        for (i, m) in [&mut alice, &mut bob, &mut carol].into_iter().enumerate() {
            let body = format!("{} {seq}", m.chat.name);
            let req = if seq % 2 == 0 {
                m.msrp.request("text/plain", body)
            } else {
                let cpim = cpim_text(&m.chat.aor, TEAM, &body).to_bytes().unwrap();
                m.msrp.request("message/cpim", cpim)
            };
            tids[i].push(m.msrp.send(&req));
        }
    }
    for (i, m) in [&mut alice, &mut bob, &mut carol].into_iter().enumerate() {
        for tid in &tids[i] {
            assert_eq!(m.msrp.expect_response(tid).code, 200);
        }
        let mut next: HashMap<String, usize> = HashMap::new();
        for _ in 0..2 * K {
            let got = m.msrp.expect_message();
            let text = got.text();
            let (name, seq) = text.split_once(' ').expect("name and sequence");
            assert_ne!(
                name, m.chat.name,
                "{}: got its own message back",
                m.chat.name
            );
            assert_eq!(got.sender_uri(), format!("sip:{name}@example.com"));
            let n = next.entry(name.to_string()).or_default();
            assert_eq!(
                seq.parse::<usize>().unwrap(),
                *n,
                "{}: out of order",
                m.chat.name
            );
            *n += 1;
        }
        assert_eq!(next.len(), 2);
        assert!(next.values().all(|&n| n == K), "{next:?}");
    }
    for m in [&mut alice, &mut bob, &mut carol] {
        m.msrp
            .assert_no_message(Duration::from_millis(300), "everything was received once");
    }
    // 3 binding SENDs, 2 + 3·K messages; each delivered to the two others.
    assert_eq!(
        focus.metric("focus_msrp_messages_received_total"),
        Some((3 + 2 + 3 * K) as f64)
    );
    focus.wait_metric("focus_msrp_messages_delivered_total", WAIT, |v| {
        v == (2 * (2 + 3 * K)) as f64
    });
}

#[test]
fn a_chunked_megabyte_is_relayed_in_chunks_and_reassembles_identical() {
    let focus = Focus::start("");
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");
    let mut carol = member(&focus, "carol");

    // 1 MiB of pseudo-random bytes, in CPIM (a file transfer), sent in 64 KiB chunks.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let payload: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let cpim = cpim_text(&alice.chat.aor, TEAM, "");
    let mut cpim = cpim;
    cpim.content_type = Some("application/octet-stream".into());
    cpim.body = Bytes::from(payload.clone());
    let body = cpim.to_bytes().unwrap();
    let mut req = alice.msrp.request("message/cpim", body.clone());
    req.success_report = Some(true);
    let tids = alice.msrp.send_chunked(&req, 64 * 1024);
    assert_eq!(tids.len(), body.len().div_ceil(64 * 1024));
    for tid in &tids {
        assert_eq!(alice.msrp.expect_response(tid).code, 200);
    }
    // One success REPORT, for the whole message as alice sent it.
    let report = alice.msrp.next_report(WAIT).expect("no REPORT");
    assert_eq!(report.message_id, req.message_id);
    assert_eq!(report.status.as_ref().map(|s| s.code), Some(200));
    assert_eq!(report.byte_range, Some(ByteRange::whole(body.len() as u64)));
    for r in [&mut bob, &mut carol] {
        let m = r
            .msrp
            .next_message(Duration::from_secs(20))
            .expect("no 1 MiB message");
        assert!(
            r.msrp.chunks_received >= tids.len(),
            "{}: relayed in {} chunks, sent in {}",
            r.chat.name,
            r.msrp.chunks_received,
            tids.len()
        );
        assert_eq!(m.sender_uri(), "sip:alice@example.com");
        assert_eq!(m.inner_type().as_deref(), Some("application/octet-stream"));
        assert!(m.content() == payload, "{}: content differs", r.chat.name);
    }
    alice
        .msrp
        .assert_no_message(Duration::from_millis(200), "nothing back to the sender");
    assert!(
        alice.msrp.next_report(Duration::ZERO).is_none(),
        "a second REPORT"
    );
    assert!(metric(&focus, "focus_msrp_bytes_relayed_total") >= body.len() as f64);
}

#[test]
fn a_private_message_reaches_only_the_named_participant() {
    let focus = Focus::start("");
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");
    let mut carol = member(&focus, "carol");

    let private = cpim_text(&alice.chat.aor, &bob.chat.aor, "just for bob")
        .to_bytes()
        .unwrap();
    let req = alice.msrp.request("message/cpim", private);
    send_expect(&mut alice.msrp, &req, 200);
    let m = bob.msrp.expect_message();
    assert_eq!(m.text(), "just for bob");
    assert_eq!(m.sender_uri(), "sip:alice@example.com");
    assert_eq!(m.to_uris(), vec!["sip:bob@example.com".to_string()]);
    // Then a group message: the first (and only) thing carol gets.
    assert_eq!(alice.msrp.say("for everyone").code, 200);
    assert_eq!(carol.msrp.expect_message().text(), "for everyone");
    assert_eq!(bob.msrp.expect_message().text(), "for everyone");
    for r in [&mut alice, &mut bob, &mut carol] {
        r.msrp
            .assert_no_message(Duration::from_millis(200), "private stays private");
    }

    // A group whose policy refuses private messages answers 428 (RFC 7701) and relays nothing.
    let focus = Focus::start(
        "[[groups]]\nuri = \"sip:team@focus.example.com\"\nallow_private_messages = false\n",
    );
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");
    let private = cpim_text(&alice.chat.aor, &bob.chat.aor, "just for bob")
        .to_bytes()
        .unwrap();
    let req = alice.msrp.request("message/cpim", private);
    send_expect(&mut alice.msrp, &req, 428);
    assert_eq!(alice.msrp.say("for everyone").code, 200);
    assert_eq!(bob.msrp.expect_message().text(), "for everyone");
}

#[test]
fn wrong_to_path_is_481_and_the_connection_stays_usable() {
    let focus = Focus::start("");
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");

    // Another session id at the focus's address.
    let mut wrong = alice.msrp.request("text/plain", "lost");
    wrong.to_path[0].session_id = Some("no-such-session".into());
    let r = send_expect(&mut alice.msrp, &wrong, 481);
    assert_eq!(r.to_path, vec![alice.chat.endpoint.path.clone()]);
    // The right session id at another port is not the focus's URI either.
    let mut wrong = alice.msrp.request("text/plain", "lost");
    wrong.to_path[0].port = Some(alice.chat.focus_path.port.unwrap().wrapping_add(1));
    send_expect(&mut alice.msrp, &wrong, 481);
    // An unbound connection naming no session of the focus's.
    let mut stray = alice.msrp.reconnect();
    let mut wrong = stray.request("text/plain", "lost");
    wrong.to_path[0].session_id = Some("no-such-session".into());
    send_expect(&mut stray, &wrong, 481);
    bob.msrp
        .assert_no_message(Duration::from_millis(200), "nothing relayed");
    assert_eq!(alice.msrp.say("still here").code, 200);
    assert_eq!(bob.msrp.expect_message().text(), "still here");
}

#[test]
fn messages_above_the_maximum_are_413() {
    let focus = Focus::start("[msrp]\nmax_message_size = 2000\nmax_chunk_size = 1024\n");
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");

    // A chunk larger than the largest frame (1024 bytes).
    let big = alice.msrp.request("text/plain", "x".repeat(1500));
    send_expect(&mut alice.msrp, &big, 413);
    // A chunked message that declares more than max_message_size.
    let mut msg = alice.msrp.request("text/plain", "y".repeat(2001));
    let first = cpm_focus::media::msrp::chunks(&msg, 500).next().unwrap();
    send_expect(&mut alice.msrp, &first, 413);
    // A chunked message of unknown size (Byte-Range total `*`) that grows past it.
    msg.message_id = Some("growing".into());
    let mut codes = Vec::new();
    for mut chunk in cpm_focus::media::msrp::chunks(&msg, 500) {
        chunk.byte_range = chunk.byte_range.map(|r| ByteRange { total: None, ..r });
        let tid = alice.msrp.send(&chunk);
        codes.push(alice.msrp.expect_response(&tid).code);
    }
    assert_eq!(codes[..4], [200, 200, 200, 200], "{codes:?}");
    assert_eq!(
        codes[4], 413,
        "{codes:?}: the 2001st byte passes max_message_size"
    );
    // A message at the maximum, chunked, goes through; the connection is still fine.
    let ok = alice.msrp.request("text/plain", "z".repeat(1900));
    for c in cpm_focus::media::msrp::chunks(&ok, 500) {
        send_expect(&mut alice.msrp, &c, 200);
    }
    // Bob got the growing message's first 2000 bytes as they came, then its end as aborted
    // (`#`), and the 1900-byte one whole; never the oversized ones.
    let m = bob.msrp.expect_message();
    assert_eq!(m.text(), "z".repeat(1900));
    assert_eq!(bob.msrp.aborted.len(), 1, "{:?}", bob.msrp.aborted);
    bob.msrp
        .assert_no_message(Duration::from_millis(200), "nothing else relayed");
    assert!(
        metric(
            &focus,
            "focus_msrp_delivery_failures_total{reason=\"too_large\"}"
        ) >= 3.0
    );
}

#[test]
fn success_report_yes_gets_a_report_for_the_whole_message() {
    let focus = Focus::start("");
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");

    let mut req = alice.msrp.request("text/plain", "please confirm");
    req.success_report = Some(true);
    send_expect(&mut alice.msrp, &req, 200);
    let report = alice.msrp.next_report(WAIT).expect("no REPORT");
    assert_eq!(report.message_id, req.message_id);
    assert_eq!(
        report.status.as_ref().map(|s| (s.namespace, s.code)),
        Some((0, 200))
    );
    assert_eq!(report.byte_range, Some(ByteRange::whole(14)));
    assert_eq!(report.to_path, vec![alice.chat.endpoint.path.clone()]);
    assert_eq!(report.from_path, vec![alice.chat.focus_path.clone()]);
    assert_eq!(bob.msrp.expect_message().text(), "please confirm");

    // Without it (absent means no), no REPORT.
    assert_eq!(alice.msrp.say("no report").code, 200);
    assert_eq!(bob.msrp.expect_message().text(), "no report");
    assert!(alice.msrp.next_report(Duration::from_millis(200)).is_none());

    // Chunked with an unknown total: the REPORT covers the bytes alice sent, 1-30.
    let mut req = alice.msrp.request("text/plain", "0123456789".repeat(3));
    req.success_report = Some(true);
    for mut c in cpm_focus::media::msrp::chunks(&req, 10) {
        c.byte_range = c.byte_range.map(|r| ByteRange { total: None, ..r });
        send_expect(&mut alice.msrp, &c, 200);
    }
    let report = alice.msrp.next_report(WAIT).expect("no REPORT");
    assert_eq!(report.message_id, req.message_id);
    let range = report.byte_range.expect("REPORT without Byte-Range");
    assert_eq!((range.start, range.end), (1, Some(30)), "{range}");
    assert!(matches!(range.total, None | Some(30)), "{range}");
    assert_eq!(bob.msrp.expect_message().text(), "0123456789".repeat(3));
}

#[test]
fn failed_deliveries_are_counted_and_reported_with_a_negative_imdn() {
    let focus = Focus::start("[msrp]\ndelivery_timeout_s = 1\n");
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");
    let mut carol = member(&focus, "carol");

    // Bob answers 500: alice, who asked for negative-delivery, hears about bob only.
    bob.msrp.set_answer(500);
    let body = cpim_with_imdn(&alice.chat.aor, TEAM, "does bob get this?", "imdn-500");
    let req = alice.msrp.request("message/cpim", body);
    send_expect(&mut alice.msrp, &req, 200);
    assert_eq!(bob.msrp.expect_message().text(), "does bob get this?");
    assert_eq!(carol.msrp.expect_message().text(), "does bob get this?");
    let imdn = alice.msrp.expect_message();
    assert_failed_imdn(&imdn, &alice.chat.aor, "imdn-500", &bob.chat.aor);
    alice
        .msrp
        .assert_no_message(Duration::from_millis(300), "one IMDN: carol got it");
    assert_eq!(
        focus.metric("focus_msrp_delivery_failures_total{reason=\"error_response\"}"),
        Some(1.0)
    );

    // Without negative-delivery in the CPIM, the failure is counted but not reported.
    assert_eq!(alice.msrp.say("plain, no IMDN asked").code, 200);
    assert_eq!(bob.msrp.expect_message().text(), "plain, no IMDN asked");
    assert_eq!(carol.msrp.expect_message().text(), "plain, no IMDN asked");
    focus.wait_metric(
        "focus_msrp_delivery_failures_total{reason=\"error_response\"}",
        WAIT,
        |v| v == 2.0,
    );
    alice
        .msrp
        .assert_no_message(Duration::from_millis(300), "no IMDN was asked for");

    // Bob stops answering: after delivery_timeout_s the delivery times out (RFC 4975 408).
    bob.msrp.set_answer(0);
    let body = cpim_with_imdn(&alice.chat.aor, TEAM, "anyone there?", "imdn-timeout");
    let req = alice.msrp.request("message/cpim", body);
    let sent = Instant::now();
    send_expect(&mut alice.msrp, &req, 200);
    assert_eq!(bob.msrp.expect_message().text(), "anyone there?");
    assert_eq!(carol.msrp.expect_message().text(), "anyone there?");
    let imdn = alice.msrp.expect_message();
    assert!(
        sent.elapsed() >= Duration::from_millis(950),
        "timed out early"
    );
    assert_failed_imdn(&imdn, &alice.chat.aor, "imdn-timeout", &bob.chat.aor);
    assert_eq!(
        focus.metric("focus_msrp_delivery_failures_total{reason=\"timeout\"}"),
        Some(1.0)
    );
    // Carol answered everything: delivered 3 times.
    focus.wait_metric("focus_msrp_messages_delivered_total", WAIT, |v| v == 3.0);
}

#[test]
fn messages_in_flight_to_a_participant_who_leaves_are_reported_failed() {
    let focus = Focus::start("");
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");

    bob.msrp.set_answer(0);
    let body = cpim_with_imdn(&alice.chat.aor, TEAM, "bye before answering", "imdn-left");
    let req = alice.msrp.request("message/cpim", body);
    send_expect(&mut alice.msrp, &req, 200);
    assert_eq!(bob.msrp.expect_message().text(), "bye before answering");
    assert_eq!(bob.ua.bye(&mut bob.chat.call).status, 200);
    let imdn = alice.msrp.expect_message();
    assert_failed_imdn(&imdn, &alice.chat.aor, "imdn-left", &bob.chat.aor);
    assert_eq!(
        focus.metric("focus_msrp_delivery_failures_total{reason=\"left\"}"),
        Some(1.0)
    );
}

#[test]
fn a_message_to_a_participant_whose_connection_is_down_is_reported_failed() {
    let focus = Focus::start("[msrp]\nconnection_grace_s = 30\n");
    let mut alice = member(&focus, "alice");
    let bob = member(&focus, "bob");
    let mut carol = member(&focus, "carol");

    bob.msrp.close();
    focus.wait_metric("focus_msrp_connections_active", WAIT, |v| v == 2.0);
    let body = cpim_with_imdn(&alice.chat.aor, TEAM, "bob is away", "imdn-away");
    let req = alice.msrp.request("message/cpim", body);
    send_expect(&mut alice.msrp, &req, 200);
    assert_eq!(carol.msrp.expect_message().text(), "bob is away");
    let imdn = alice.msrp.expect_message();
    assert_failed_imdn(&imdn, &alice.chat.aor, "imdn-away", &bob.chat.aor);
    assert_eq!(
        focus.metric("focus_msrp_delivery_failures_total{reason=\"not_connected\"}"),
        Some(1.0)
    );
    // Back within the grace time, bob gets what is sent from then on.
    let mut again = bob.msrp.reconnect();
    again.bind();
    assert_eq!(alice.msrp.say("welcome back").code, 200);
    assert_eq!(again.expect_message().text(), "welcome back");
    assert_eq!(carol.msrp.expect_message().text(), "welcome back");
}

#[test]
fn a_dropped_connection_removes_the_participant_after_the_grace_time() {
    let focus = Focus::start("[msrp]\nconnection_grace_s = 1\n");
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_sub, first) = watcher.subscribe_to(TEAM);
    let mut view = first.doc;
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");
    let bob_entity = bob.chat.aor.clone();
    follow(&mut watcher, &mut view, |v| {
        endpoint_state(v, &bob_entity).is_some_and(|(s, _)| s == EndpointStatus::Connected)
    });

    let dropped = Instant::now();
    bob.msrp.close();
    let (reason, at) = expect_bye(&mut bob.ua, &bob.chat.call, Duration::from_secs(10));
    assert_eq!(reason, "SIP;cause=408;text=\"MSRP connection lost\"");
    assert!(
        at.duration_since(dropped) >= Duration::from_millis(950),
        "BYE {:?} after the drop, before the 1 s grace",
        at.duration_since(dropped)
    );
    follow(&mut watcher, &mut view, |v| {
        endpoint_state(v, &bob_entity)
            == Some((
                EndpointStatus::Disconnected,
                Some(DisconnectionMethod::Failed),
            ))
    });
    assert_eq!(
        focus.metric("focus_msrp_participants_lost_total"),
        Some(1.0)
    );
    focus.wait_metric("focus_msrp_members", WAIT, |v| v == 1.0);
    // Alice stays and still chats.
    assert_eq!(alice.msrp.say("still here").code, 200);
    alice
        .ua
        .assert_quiet(Duration::from_millis(200), "alice keeps her session");
}

#[test]
fn a_participant_that_never_binds_is_removed_after_the_bind_timeout() {
    let focus = Focus::start("[msrp]\nbind_timeout_s = 1\n");
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_sub, first) = watcher.subscribe_to(TEAM);
    let mut view = first.doc;
    let mut alice = member(&focus, "alice");
    let mut ua = Ua::udp(&focus, "mute");
    let started = Instant::now();
    let chat = ua.join_chat(TEAM, Setup::Active);
    let (reason, at) = expect_bye(&mut ua, &chat.call, Duration::from_secs(10));
    assert_eq!(reason, "SIP;cause=408;text=\"MSRP connection lost\"");
    assert!(
        at.duration_since(started) >= Duration::from_millis(800),
        "BYE after {:?}, before the 1 s bind timeout",
        at.duration_since(started)
    );
    follow(&mut watcher, &mut view, |v| {
        endpoint_state(v, "sip:mute@example.com")
            == Some((
                EndpointStatus::Disconnected,
                Some(DisconnectionMethod::Failed),
            ))
    });
    assert_eq!(
        focus.metric("focus_msrp_participants_lost_total"),
        Some(1.0)
    );
    // The bound participant stays.
    alice
        .ua
        .assert_quiet(Duration::from_millis(200), "alice is bound");
    assert_eq!(alice.msrp.say("still here").code, 200);
}

#[test]
fn a_connection_that_binds_no_session_is_closed_after_the_bind_timeout() {
    let focus = Focus::start("[msrp]\nbind_timeout_s = 1\nmax_connections = 2\n");
    let mut alice = member(&focus, "alice");
    // A connection that never names a session would hold one of the two connections for
    // good, and the next participant could not connect at all.
    let opened = Instant::now();
    let mut idle = alice.msrp.reconnect();
    assert!(
        idle.wait_closed(Duration::from_secs(10)),
        "an idle unbound connection stays open"
    );
    assert!(
        opened.elapsed() >= Duration::from_millis(950),
        "closed before the bind timeout"
    );
    focus.wait_metric("focus_msrp_connections_active", WAIT, |v| v == 1.0);
    let mut bob = member(&focus, "bob");
    assert_eq!(bob.msrp.say("I got in").code, 200);
    assert_eq!(alice.msrp.expect_message().text(), "I got in");
}

#[test]
fn a_participant_that_rebinds_within_the_grace_time_stays() {
    let focus = Focus::start("[msrp]\nconnection_grace_s = 2\n");
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");

    bob.msrp.close();
    assert!(bob.msrp.wait_closed(WAIT));
    let mut again = bob.msrp.reconnect();
    // The focus may not have seen the old connection close yet (506: still bound).
    let deadline = Instant::now() + WAIT;
    loop {
        let req = again.request("", Bytes::new());
        let tid = again.send(&req);
        let code = again.expect_response(&tid).code;
        if code == 200 {
            break;
        }
        assert_eq!(code, 506, "rebinding SEND");
        assert!(Instant::now() < deadline, "still 506 after {WAIT:?}");
    }
    bob.msrp = again;
    // Well past the grace time: no BYE, and messages flow both ways on the new connection.
    bob.ua
        .assert_quiet(Duration::from_secs(3), "bob rebound within the grace time");
    assert_eq!(alice.msrp.say("welcome back").code, 200);
    assert_eq!(bob.msrp.expect_message().text(), "welcome back");
    assert_eq!(bob.msrp.say("thanks").code, 200);
    assert_eq!(alice.msrp.expect_message().text(), "thanks");
    assert_eq!(
        focus.metric("focus_msrp_participants_lost_total"),
        Some(0.0)
    );
    assert_eq!(focus.metric("focus_msrp_members"), Some(2.0));
}

#[test]
fn bye_closes_the_participants_msrp_connection() {
    let focus = Focus::start("");
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");
    let mut carol = member(&focus, "carol");
    assert_eq!(focus.metric("focus_msrp_members"), Some(3.0));

    assert_eq!(bob.ua.bye(&mut bob.chat.call).status, 200);
    assert!(
        bob.msrp.wait_closed(WAIT),
        "bob's MSRP connection stays open after BYE"
    );
    focus.wait_metric("focus_msrp_members", WAIT, |v| v == 2.0);
    focus.wait_metric("focus_msrp_connections_active", WAIT, |v| v == 2.0);
    assert_eq!(alice.msrp.say("bob left").code, 200);
    assert_eq!(carol.msrp.expect_message().text(), "bob left");
    assert_eq!(carol.msrp.say("so he did").code, 200);
    assert_eq!(alice.msrp.expect_message().text(), "so he did");
    assert!(bob.msrp.next_message(Duration::from_millis(200)).is_none());
    // Bob's old session is gone: a SEND on a new connection is 481.
    let mut stale = bob.msrp.reconnect();
    let req = stale.request("text/plain", "am I in?");
    send_expect(&mut stale, &req, 481);
    focus.wait_metric("focus_msrp_messages_delivered_total", WAIT, |v| v == 2.0);
}

#[test]
fn a_reinvite_that_moves_the_msrp_end_rebinds_it() {
    let focus = Focus::start("");
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");
    let old_path = bob.chat.focus_path.clone();

    // Bob moves to a new port and session (a new device address, say).
    bob.ua
        .reinvite_chat(&mut bob.chat, Endpoint::new("bob", Setup::Active));
    assert_eq!(bob.chat.media.attr("setup"), Some("passive"));
    // The focus's end stays the same for the dialog.
    assert_eq!(bob.chat.focus_path, old_path);
    assert!(
        bob.msrp.wait_closed(WAIT),
        "the focus keeps the connection of bob's old MSRP end"
    );
    let mut moved = bob.chat.connect();
    moved.bind();
    assert_eq!(alice.msrp.say("found you").code, 200);
    let m = moved.expect_message();
    assert_eq!(m.text(), "found you");
    assert_eq!(m.request.to_path, vec![bob.chat.endpoint.path.clone()]);
    assert_eq!(moved.say("new place").code, 200);
    assert_eq!(alice.msrp.expect_message().text(), "new place");
    assert_eq!(focus.metric("focus_msrp_members"), Some(2.0));
}

/// Open file descriptors of a process (Linux).
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_participant_that_cannot_keep_up_is_disconnected_and_the_others_go_on() {
    let focus = Focus::start("[msrp]\nqueue_depth = 4\n");
    let mut alice = member(&focus, "alice");
    let mut carol = member(&focus, "carol");
    // (After a first /metrics request, so that whatever that opens for good is counted.)
    assert_eq!(focus.metric("focus_msrp_members"), Some(2.0));
    let fds_before = open_fds(focus.pid());
    let mut slow = member_with(
        &focus,
        Endpoint::with_recv_buffer("slow", Setup::Active, Some(4096)),
    );
    slow.msrp.pause();

    // Alice sends 64 KiB messages, each one once carol has it, until the focus gives up on
    // slow (its socket buffers and its queue of 4 fill up). A message's fan-out is done when
    // alice has its 200, so the stall shows in the metric by then: no message goes out
    // between the stall and slow's removal, and each one sent so far was for slow too.
    let chunk = "s".repeat(60 * 1024);
    let stalled = "focus_msrp_delivery_failures_total{reason=\"stalled\"}";
    let mut sent = 0;
    while metric(&focus, stalled) == 0.0 {
        assert!(sent < 400, "slow not cut off after {sent} messages");
        let text = format!("{sent} {chunk}");
        assert_eq!(alice.msrp.say(&text).code, 200);
        let got = carol.msrp.expect_message();
        assert_eq!(got.text(), text, "carol fell behind");
        sent += 1;
    }
    let bye = slow.ua.expect_request(Method::Bye, WAIT);
    let req = bye.request().unwrap();
    assert_eq!(
        req.headers.get_by_name("Reason"),
        Some("SIP;cause=503;text=\"MSRP receive queue overflow\"")
    );
    slow.ua.respond(&bye, 200);
    focus.wait_metric("focus_msrp_members", WAIT, |v| v == 2.0);
    // Every message slow did not answer failed once: the one that found its queue full
    // (stalled), the rest queued or in its socket buffers (left with it).
    assert_eq!(
        focus.metric("focus_msrp_delivery_failures_total{reason=\"stalled\"}"),
        Some(1.0)
    );
    let failed = |focus: &Focus| -> Vec<f64> {
        ["stalled", "left", "not_connected"]
            .iter()
            .map(|r| {
                metric(
                    focus,
                    &format!("focus_msrp_delivery_failures_total{{reason=\"{r}\"}}"),
                )
            })
            .collect()
    };
    // Counted as the session removes slow: wait for it.
    let deadline = Instant::now() + WAIT;
    while failed(&focus).iter().sum::<f64>() < sent as f64 && Instant::now() < deadline {
        // Counters have no change notification: poll them.
        std::thread::sleep(Duration::from_millis(20));
    }
    let by_reason = failed(&focus);
    assert_eq!(
        by_reason.iter().sum::<f64>(),
        sent as f64,
        "failed deliveries to slow (stalled, left, not_connected) for {sent} messages: {by_reason:?}"
    );
    // The others go on.
    for i in 0..5 {
        let text = format!("after {i}");
        assert_eq!(alice.msrp.say(&text).code, 200);
        assert_eq!(carol.msrp.expect_message().text(), text);
    }
    assert_eq!(carol.msrp.say("carol too").code, 200);
    assert_eq!(alice.msrp.expect_message().text(), "carol too");
    // The focus lets go of slow's connection even though slow never reads again.
    let deadline = Instant::now() + WAIT;
    while open_fds(focus.pid()) > fds_before {
        assert!(
            Instant::now() < deadline,
            "the focus still holds slow's connection: {} fds, {fds_before} before it joined",
            open_fds(focus.pid())
        );
        // The fd table has no change notification: poll it.
        std::thread::sleep(Duration::from_millis(50));
    }
    slow.msrp.resume();
    assert!(slow.msrp.wait_closed(WAIT));
}

/// The done-when of issue 3: 100 participants, each sending K messages at once; every
/// participant gets exactly the 99·K messages of the others, in per-sender order.
#[test]
fn hundred_participants_each_get_every_other_message_once_in_order() {
    const N: usize = 100;
    const K: usize = 10;
    let focus = Focus::start("");
    let mut uas = Vec::with_capacity(N);
    let mut clients = Vec::with_capacity(N);
    let joining = Instant::now();
    for i in 0..N {
        let m = member(&focus, &format!("p{i:03}"));
        uas.push((m.ua, m.chat));
        clients.push(m.msrp);
    }
    let joined = joining.elapsed();
    assert_eq!(focus.metric("focus_msrp_members"), Some(N as f64));

    let start = Arc::new(Barrier::new(N + 1));
    let done = Arc::new(Barrier::new(N + 1));
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let (start, done) = (start.clone(), done.clone());
            std::thread::spawn(move || {
                let me = format!("sip:p{i:03}@example.com");
                start.wait();
                let mut tids = Vec::with_capacity(K);
                for seq in 0..K {
                    let body = format!("{i} {seq}");
                    let req = if seq % 2 == 0 {
                        c.request("text/plain", body)
                    } else {
                        let cpim = cpim_text(&me, TEAM, &body).to_bytes().unwrap();
                        c.request("message/cpim", cpim)
                    };
                    tids.push(c.send(&req));
                }
                let mut next = vec![0usize; N];
                let deadline = Instant::now() + Duration::from_secs(60);
                for _ in 0..(N - 1) * K {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let m = c
                        .next_message(left)
                        .unwrap_or_else(|| panic!("p{i:03}: messages missing, got {next:?}"));
                    let text = m.text();
                    let (from, seq) = text.split_once(' ').expect("sender and sequence");
                    let (from, seq): (usize, usize) = (from.parse().unwrap(), seq.parse().unwrap());
                    assert_ne!(from, i, "p{i:03} got its own message");
                    assert_eq!(m.sender_uri(), format!("sip:p{from:03}@example.com"));
                    assert_eq!(m.to_uris(), vec![TEAM.to_string()]);
                    assert_eq!(
                        seq, next[from],
                        "p{i:03}: from p{from:03} out of order or twice"
                    );
                    next[from] += 1;
                }
                for tid in &tids {
                    let r = c.wait_response(tid, Duration::from_secs(30));
                    assert_eq!(r.map(|r| r.code), Some(200), "p{i:03}: SEND {tid}");
                }
                let finished = Instant::now();
                // Once everyone has everything, nothing more comes (no duplicate of a last
                // message either).
                done.wait();
                c.assert_no_message(Duration::from_millis(300), "all were received once");
                (next, finished)
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    done.wait();
    let mut last = t0;
    for t in threads {
        let (next, finished) = t.join().expect("a participant failed");
        assert_eq!(next.iter().sum::<usize>(), (N - 1) * K);
        last = last.max(finished);
    }
    let wall = last.duration_since(t0);
    let deliveries = N * (N - 1) * K;
    focus.wait_metric("focus_msrp_messages_delivered_total", WAIT, |v| {
        v == deliveries as f64
    });
    assert_eq!(
        focus.metric("focus_msrp_messages_received_total"),
        Some((N + N * K) as f64)
    );
    assert_eq!(
        focus.metric("focus_msrp_delivery_failures_total{reason=\"stalled\"}"),
        Some(0.0)
    );
    eprintln!(
        "{N} participants (joined in {joined:?}), {} messages, {deliveries} deliveries in {wall:?}: {:.0} deliveries/s",
        N * K,
        deliveries as f64 / wall.as_secs_f64()
    );
    drop(uas);
}

#[test]
fn every_msrp_metric_is_served_with_the_values_traffic_implies() {
    // max_chunk_rate = 2: alice's third chunk in a second is read late (throttled).
    let focus =
        Focus::start("[msrp]\nmax_connections = 3\nbind_timeout_s = 1\nmax_chunk_rate = 2\n");
    let mut alice = member(&focus, "alice");
    let mut bob = member(&focus, "bob");
    assert_eq!(focus.metric("focus_msrp_members"), Some(2.0));
    assert_eq!(focus.metric("focus_msrp_connections_active"), Some(2.0));
    assert_eq!(
        focus.metric("focus_msrp_messages_received_total"),
        Some(2.0)
    );

    assert_eq!(alice.msrp.say("hello").code, 200);
    assert_eq!(bob.msrp.expect_message().text(), "hello");
    focus.wait_metric("focus_msrp_messages_delivered_total", WAIT, |v| v == 1.0);
    assert_eq!(
        focus.metric("focus_msrp_messages_received_total"),
        Some(3.0)
    );
    assert_eq!(focus.metric("focus_msrp_bytes_relayed_total"), Some(5.0));
    assert_eq!(
        focus.metric("focus_msrp_fanout_duration_seconds_count"),
        Some(1.0)
    );

    // A third connection is taken, a fourth refused (closed at once). (The third, which
    // binds nothing, would be closed after bind_timeout_s: it was accepted first.)
    let third = alice.msrp.reconnect();
    let mut fourth = alice.msrp.reconnect();
    assert!(
        fourth.wait_closed(WAIT),
        "a connection above max_connections stays open"
    );
    assert_eq!(
        focus.metric("focus_msrp_connections_refused_total"),
        Some(1.0)
    );
    drop(third);
    focus.wait_metric("focus_msrp_connections_active", WAIT, |v| v == 2.0);

    // A failed delivery, and a participant that never binds.
    bob.msrp.set_answer(500);
    assert_eq!(alice.msrp.say("fail").code, 200);
    focus.wait_metric(
        "focus_msrp_delivery_failures_total{reason=\"error_response\"}",
        WAIT,
        |v| v == 1.0,
    );
    let mut ua = Ua::udp(&focus, "mute");
    let chat = ua.join_chat(TEAM, Setup::Active);
    expect_bye(&mut ua, &chat.call, Duration::from_secs(10));
    focus.wait_metric("focus_msrp_participants_lost_total", WAIT, |v| v == 1.0);
    focus.wait_metric("focus_msrp_members", WAIT, |v| v == 2.0);

    // Every focus_msrp_* metric src/metrics.rs describes is served, with its HELP.
    let text = focus.metrics();
    let names: Vec<&str> = cpm_focus::metrics::METRICS
        .iter()
        .map(|(n, _, _)| *n)
        .filter(|n| n.starts_with("focus_msrp_"))
        .collect();
    assert!(names.len() >= 9, "{names:?}");
    for name in names {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && !l.starts_with('#')),
            "{name} is not served:\n{text}"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP"
        );
    }
}
