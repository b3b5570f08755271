//! Failure paths end to end over real sockets (issue 18 item 3), each seen from the
//! participant it happens to and from the others (roster NOTIFYs, metrics):
//! - a subscriber that stops answering NOTIFYs over UDP: the NOTIFY is retransmitted on
//!   Timer E's schedule, then (Timer F) the subscription ends, and nothing follows;
//! - a participant answering the focus's session refresh with 491 (the focus tries again
//!   later) or 422 (at once, with the interval the participant asks for): the call stays up;
//! - a reload whose file is missing or unreadable: refused and counted, the running
//!   configuration and every session stay;
//! - a participant over TCP that stops reading: the write times out, the connection is
//!   closed and the failed send is counted in `focus_transport_send_errors_total`.

mod support;

use cpm_focus::conference_info::{DisconnectionMethod, EndpointStatus};
use cpm_focus::sip::{HeaderName, Method};
use std::time::{Duration, Instant};
use support::{Focus, Rx, Ua, Watcher, TEAM, WAIT};

/// A generous guard against a hang only: none of these tests measures how fast the focus is.
const HANG_GUARD: Duration = Duration::from_secs(20);

#[test]
fn an_unanswered_notify_over_udp_is_retransmitted_then_ends_the_subscription() {
    const T1: Duration = Duration::from_millis(50);
    const T2: Duration = Duration::from_millis(400);
    // Timer F: 64·T1 = 3.2 s.
    let focus = Focus::start(&format!(
        "[sip]\nt1_ms = {}\nt2_ms = {}\n",
        T1.as_millis(),
        T2.as_millis()
    ));
    let mut others = Watcher::new(Ua::tcp(&focus, "others"), TEAM);
    let mut silent = Ua::udp(&focus, "silent");
    let (_sub, _first) = silent.subscribe_to(TEAM);
    focus.wait_metric("focus_subscriptions_active", WAIT, |v| v == 2.0);
    // From now on the subscriber's NOTIFYs reach the test unanswered.
    silent.set_notify_status(0);

    // Before the focus's NOTIFY: the anchor of Timer E's schedule.
    let changed = Instant::now();
    let mut alice = Ua::udp(&focus, "alice");
    let (mut alice_call, _) = alice.join(TEAM);
    others.until_status(&alice.aor(), EndpointStatus::Connected);

    // The NOTIFY and its copies: byte for byte the same, the k-th no sooner than Timer E
    // allows (T1, 2·T1, 4·T1... capped at T2, summed), counted from before it was first sent.
    let mut copies: Vec<Rx> = Vec::new();
    while copies.len() < 6 {
        let n = silent
            .wait_for(HANG_GUARD, |m| {
                m.request().is_some_and(|r| r.method == Method::Notify)
            })
            .expect("the NOTIFY was not retransmitted");
        copies.push(n);
    }
    let mut due = Duration::ZERO;
    let mut interval = T1;
    for (k, copy) in copies.iter().enumerate() {
        assert_eq!(copy.raw, copies[0].raw, "copy {k} differs from the NOTIFY");
        assert!(
            copy.at - changed >= due,
            "copy {k} came {:?} after the change, before Timer E's {due:?}",
            copy.at - changed
        );
        due += interval;
        interval = (interval * 2).min(T2);
    }

    // Timer F ends the transaction and the subscription with it (RFC 6665 §4.2.2); the
    // other subscriber stays.
    focus.wait_metric("focus_subscriptions_active", HANG_GUARD, |v| v == 1.0);
    assert!(
        Instant::now() - changed >= T1 * 64,
        "the subscription ended before Timer F"
    );
    // Copies already on their way are drained; after that nothing more comes: neither a
    // retransmission nor a NOTIFY about the next change.
    silent.drain(T2);
    assert_eq!(alice.bye(&mut alice_call).status, 200);
    others.until_gone(&alice.aor(), DisconnectionMethod::Departed);
    silent.assert_quiet(T2 * 2, "a NOTIFY after the subscription ended");
    assert_eq!(focus.metric("focus_subscriptions_active"), Some(1.0));
}

/// The next `method` request of the focus in dialog `call_id` with a CSeq above `after`
/// (over UDP the focus retransmits until answered: older copies are skipped).
fn next_in_dialog(ua: &mut Ua, method: Method, call_id: &str, after: u32) -> Rx {
    ua.wait_for(HANG_GUARD, |m| {
        m.request()
            .is_some_and(|r| r.method == method && r.call_id() == call_id && r.cseq.seq > after)
    })
    .unwrap_or_else(|| panic!("{}: no {method} in {call_id} after CSeq {after}", ua.name))
}

#[test]
fn a_refresh_answered_491_or_422_is_tried_again_and_the_call_stays_up() {
    // The focus refreshes (UPDATE, allowed by bob) every half interval of 6 s: a retry
    // after a 491 (GLARE_RETRY, 2.1 s) still comes before the interval runs out.
    let focus = Focus::start("[session_timer]\nexpires_s = 6\nmin_se_s = 2\n");
    let mut others = Watcher::new(Ua::udp(&focus, "others"), TEAM);
    let mut bob = Ua::udp(&focus, "bob");
    bob.invite_headers = "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE\r\n".into();
    let (mut call, ok) = bob.join(TEAM);
    // The focus (the UAS) is the refresher.
    assert_eq!(
        ok.headers.get(HeaderName::SessionExpires),
        Some("6;refresher=uas")
    );
    others.until_status(&bob.aor(), EndpointStatus::Connected);

    // 491: a glare on bob's side. The focus tries again later (RFC 3261 §14.1), not at once.
    let first = next_in_dialog(&mut bob, Method::Update, &call.call_id, 0);
    let cseq = first.request().unwrap().cseq.seq;
    let refused = Instant::now();
    bob.respond(&first, 491);
    let again = next_in_dialog(&mut bob, Method::Update, &call.call_id, cseq);
    assert!(
        again.at - refused >= cpm_focus::session_timer::GLARE_RETRY,
        "retried {:?} after the 491",
        again.at - refused
    );
    let cseq = again.request().unwrap().cseq.seq;
    bob.respond(&again, 422);
    // A 422 without Min-SE gives nothing to retry with, but the peer is alive: the next
    // refresh comes on schedule. With Min-SE the focus retries at once, asking for it.
    let next = next_in_dialog(&mut bob, Method::Update, &call.call_id, cseq);
    let cseq = next.request().unwrap().cseq.seq;
    let contact = bob.contact_header();
    bob.answer(&next, 422, None, &format!("Min-SE: 8\r\n{contact}"), None);
    let retry = next_in_dialog(&mut bob, Method::Update, &call.call_id, cseq);
    assert_eq!(
        retry
            .request()
            .unwrap()
            .headers
            .get(HeaderName::SessionExpires),
        Some("8;refresher=uac"),
        "the retry after 422 asks for the participant's Min-SE"
    );
    bob.respond(&retry, 200);

    // Bob is still in the call: no BYE, the others still see him, and his BYE ends it.
    let bye = bob.wait_for(Duration::from_millis(300), |m| {
        m.request().is_some_and(|r| r.method == Method::Bye)
    });
    assert!(bye.is_none(), "the focus hung up after the retried refresh");
    assert_eq!(
        support::endpoint_state(&others.view, &bob.aor()),
        Some((EndpointStatus::Connected, None))
    );
    assert!(focus.metric("focus_session_timer_refreshes_total{by=\"focus\"}") >= Some(1.0));
    assert_eq!(
        focus
            .metric("focus_session_timer_expired_total")
            .unwrap_or(0.0),
        0.0
    );
    assert_eq!(bob.bye(&mut call).status, 200);
    others.until_gone(&bob.aor(), DisconnectionMethod::Departed);
}

#[test]
fn a_reload_of_a_missing_or_unreadable_file_is_refused_and_changes_nothing() {
    let focus = Focus::start("");
    let mut others = Watcher::new(Ua::udp(&focus, "others"), TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    let (mut alice_call, _) = alice.join(TEAM);
    others.until_status(&alice.aor(), EndpointStatus::Connected);
    let path = focus.config_path().to_path_buf();
    let good = std::fs::read(&path).unwrap();
    let refused = "focus_config_reloads_total{trigger=\"sighup\",outcome=\"refused\"}";

    // Missing; a directory in its place (unreadable even for root); not UTF-8.
    type Damage<'a> = Box<dyn Fn() + 'a>;
    let cases: [(&str, Damage); 3] = [
        ("missing", Box::new(|| std::fs::remove_file(&path).unwrap())),
        (
            "a directory",
            Box::new(|| {
                std::fs::remove_file(&path).unwrap();
                std::fs::create_dir(&path).unwrap();
            }),
        ),
        (
            "not UTF-8",
            Box::new(|| std::fs::write(&path, b"[sip]\nudp = \"\xff\xfe\"\n").unwrap()),
        ),
    ];
    for (i, (what, damage)) in cases.iter().enumerate() {
        damage();
        focus.hangup();
        focus.wait_metric(refused, WAIT, |v| v == (i + 1) as f64);
        assert_eq!(
            focus.metric("focus_config_last_reload_successful"),
            Some(0.0),
            "{what}"
        );
        // The running configuration and sessions stay: alice is still in, bob joins.
        let mut bob = Ua::udp(&focus, &format!("bob{i}"));
        let (mut bob_call, ok) = bob.join(TEAM);
        assert_eq!(ok.status, 200, "{what}");
        others.until_status(&bob.aor(), EndpointStatus::Connected);
        assert_eq!(bob.bye(&mut bob_call).status, 200, "{what}");
        others.until_gone(&bob.aor(), DisconnectionMethod::Departed);
        assert_eq!(
            support::endpoint_state(&others.view, &alice.aor()),
            Some((EndpointStatus::Connected, None)),
            "{what}"
        );
        // Put the file back for the next case.
        if path.is_dir() {
            std::fs::remove_dir(&path).unwrap();
        }
        std::fs::write(&path, &good).unwrap();
    }
    assert!(focus.log().contains("configuration reload refused"));
    // The restored file reloads again.
    focus.hangup();
    focus.wait_metric(
        "focus_config_reloads_total{trigger=\"sighup\",outcome=\"applied\"}",
        WAIT,
        |v| v == 1.0,
    );
    assert_eq!(
        focus.metric("focus_config_last_reload_successful"),
        Some(1.0)
    );
    assert_eq!(alice.bye(&mut alice_call).status, 200);
    others.until_gone(&alice.aor(), DisconnectionMethod::Departed);
}

#[test]
fn a_member_that_stops_reading_over_tcp_is_cut_off_by_the_write_timeout() {
    use std::io::Read;
    const MESSAGES: usize = 200;
    // A member on TCP that accepts the focus's connection and never reads: a tiny receive
    // buffer, so the focus's writes stall once its own send buffer is full.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener.set_recv_buffer_size(4096).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(4).unwrap();
    let listener: std::net::TcpListener = listener.into();
    let stuck_at = listener.local_addr().unwrap();
    let others = support::Sink::start("other");
    let focus = Focus::start(&format!(
        "[sip]\nt1_ms = 50\ntcp_write_timeout_s = 1\n[policy]\npager_rate_per_sender = 0\n\
         [[groups]]\nuri = \"sip:club@focus.example.com\"\n\
         [[groups.members]]\nuri = \"sip:alice@example.com\"\n\
         [[groups.members]]\nuri = \"{}\"\n\
         [[groups.members]]\nuri = \"sip:stuck@{stuck_at};transport=tcp\"\n",
        others.uri()
    ));
    let mut alice = Ua::udp(&focus, "alice");
    let body = "x".repeat(30_000);
    for _ in 0..MESSAGES {
        let mut call = support::Call::new("sip:club@focus.example.com");
        let b = alice.send_request(&mut call, "MESSAGE", "", Some(("text/plain", &body)));
        assert_eq!(alice.expect_final(&b).status, 202);
    }
    let (first, _) = listener.accept().unwrap();

    // The stuck member: its connection is closed once a write waited past the timeout, and
    // the failed send is counted.
    focus.wait_metric(
        "focus_tcp_connections_closed_total{reason=\"write_timeout\"}",
        HANG_GUARD,
        |v| v >= 1.0,
    );
    focus.wait_metric(
        "focus_transport_send_errors_total{transport=\"tcp\",reason=\"timeout\"}",
        HANG_GUARD,
        |v| v >= 1.0,
    );
    // The focus may call the member again on a new connection for later deliveries (a
    // slow machine lets the timeout fire while alice is still sending), so the stalled one
    // is any connection it opened: one of them must be closed by the focus.
    listener.set_nonblocking(true).unwrap();
    let mut conns = vec![first];
    let mut buf = vec![0u8; 1 << 16];
    let deadline = Instant::now() + HANG_GUARD;
    'closed: loop {
        while let Ok((c, _)) = listener.accept() {
            conns.push(c);
        }
        for c in &mut conns {
            c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            loop {
                match c.read(&mut buf) {
                    Ok(0) => break 'closed,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break 'closed,
                    Err(_) => break,
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the focus never closed the stuck member's connection ({} opened)",
            conns.len()
        );
    }
    // Its deliveries are reported failed; the other member got every message regardless.
    focus.wait_metric(
        "focus_group_message_deliveries_total{outcome=\"failed\"}",
        HANG_GUARD,
        |v| v >= 1.0,
    );
    let got = others.wait_deliveries(MESSAGES, HANG_GUARD);
    assert_eq!(got.len(), MESSAGES);
    assert!(got.iter().all(|d| d.body() == body));
}

#[test]
fn a_participant_whose_tcp_connection_is_lost_is_removed_and_announced() {
    // The focus refreshes every 2 s (half of 4): the latest moment it learns of the loss is
    // its next request in the dialog, which has no connection to go on.
    let focus = Focus::start("[session_timer]\nexpires_s = 4\nmin_se_s = 2\n");
    let mut others = Watcher::new(Ua::udp(&focus, "others"), TEAM);
    let (lost_aor, _lost_call) = {
        let mut lost = Ua::tcp(&focus, "lost");
        let (call, _) = lost.join(TEAM);
        others.until_status(&lost.aor(), EndpointStatus::Connected);
        (lost.aor(), call)
        // The agent, its socket and reader go: the connection is lost mid-dialog.
    };
    others.until(|v| {
        matches!(
            support::endpoint_state(v, &lost_aor),
            Some((EndpointStatus::Disconnected, Some(_)))
        )
    });
    assert_ne!(
        support::endpoint_state(&others.view, &lost_aor),
        Some((
            EndpointStatus::Disconnected,
            Some(DisconnectionMethod::Departed)
        )),
        "a lost connection is no BYE"
    );
    focus.wait_metric("focus_participants_active", WAIT, |v| v == 0.0);
    // The subscriber stays subscribed.
    assert_eq!(focus.metric("focus_subscriptions_active"), Some(1.0));
}
