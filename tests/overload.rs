//! Overload and flood control, end to end: a flooding source gets a few 503s and then
//! silence while other sources join; the trusted core is exempt; new work is refused past the
//! transaction mark while established dialogs go on; TCP connections are capped per source;
//! a slowloris connection is closed at the message deadline and an idle one at the idle
//! timeout.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use support::{Focus, Ua, TEAM, WAIT};

fn options_text(from: SocketAddr, n: usize) -> String {
    format!(
        "OPTIONS sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-fl{n}\r\nFrom: <sip:flood@example.com>;tag=f{n}\r\nTo: <sip:team@focus.example.com>\r\nCall-ID: flood-{n}@{from}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// An INVITE that will never be ACKed: its transaction stays alive, retransmitting the 200.
fn invite_text(from: SocketAddr, n: usize) -> String {
    let sdp = support::AUDIO_OFFER;
    format!(
        "INVITE sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-in{n}\r\nFrom: <sip:lazy{n}@example.com>;tag=i{n}\r\nTo: <sip:team@focus.example.com>\r\nCall-ID: lazy-{n}@{from}\r\nCSeq: 1 INVITE\r\nContact: <sip:lazy{n}@{from}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// How long a flood's answers may take before the test calls it a hang (a guard only: the
/// flood ends on an event, never on a window of wall time).
const FLOOD_GUARD: Duration = Duration::from_secs(20);

/// Sends `count` OPTIONS from a socket on `ip` and collects the status codes of what comes
/// back until `done` holds for them; also how long that took from the first send.
fn flood(
    focus: &Focus,
    ip: &str,
    count: usize,
    done: impl FnMut(&[u16]) -> bool,
) -> (Vec<u16>, Duration) {
    flood_with(focus, ip, count, options_text, done)
}

/// [`flood`] with the request `text` makes.
fn flood_with(
    focus: &Focus,
    ip: &str,
    count: usize,
    text: fn(SocketAddr, usize) -> String,
    mut done: impl FnMut(&[u16]) -> bool,
) -> (Vec<u16>, Duration) {
    let s = UdpSocket::bind((ip, 0)).expect("binding a loopback alias");
    let me = s.local_addr().unwrap();
    let started = Instant::now();
    for n in 0..count {
        s.send_to(text(me, n).as_bytes(), focus.sip_udp).unwrap();
    }
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut statuses = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&statuses) {
        assert!(
            started.elapsed() < FLOOD_GUARD,
            "the flood's answers never completed: {statuses:?}"
        );
        if let Ok(n) = s.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            let status = text
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            if status == 503 {
                assert!(text.contains("Retry-After: "), "503 without Retry-After");
            }
            statuses.push(status);
        }
    }
    (statuses, started.elapsed())
}

#[test]
fn a_flooding_source_gets_503_then_silence_while_others_join() {
    let focus = Focus::start(
        r#"
        [overload]
        source_rate = 5
        source_burst = 5
        reject_rate = 2
        trusted_sources = ["127.0.0.4"]
        "#,
    );
    // 127.0.0.2 floods: its burst is answered, two more get 503, the rest nothing. The flood
    // is over when every datagram is accounted for: answered, or counted as dropped.
    const DROPPED: &str = "focus_flood_dropped_total{transport=\"udp\"}";
    let (got, took) = flood(&focus, "127.0.0.2", 200, |got| {
        got.len() + focus.metric(DROPPED).unwrap_or(0.0) as usize >= 200
    });
    let ok = got.iter().filter(|s| **s == 200).count();
    let shed = got.iter().filter(|s| **s == 503).count();
    // Tokens refill while the flood lasts (5 a second for requests, 2 for refusals): the
    // bounds grow with the time it took, so a slow machine is no failure.
    let refill = |rate: f64| (rate * took.as_secs_f64()).ceil() as usize;
    assert!(
        (5..=5 + refill(5.0)).contains(&ok),
        "{ok} answered 200 in {took:?}: {got:?}"
    );
    assert!(
        (2..=2 + refill(2.0)).contains(&shed),
        "{shed} answered 503 in {took:?}: {got:?}"
    );
    assert_eq!(ok + shed, got.len(), "{got:?}");
    let dropped = focus.metric(DROPPED).unwrap();
    assert_eq!(dropped as usize + got.len(), 200);
    assert!(focus.metric("focus_overload_rejections_total{reason=\"source_rate\"}") >= Some(2.0));

    // Meanwhile another source joins and leaves, and the trusted core is never limited.
    let mut alice = Ua::udp(&focus, "alice");
    let (mut call, ok) = alice.join(TEAM);
    assert_eq!(ok.status, 200);
    let (core, _) = flood(&focus, "127.0.0.4", 100, |got| got.len() >= 100);
    assert_eq!(
        core.iter().filter(|s| **s == 200).count(),
        100,
        "the trusted core was limited: {core:?}"
    );
    assert_eq!(alice.bye(&mut call).status, 200);
}

#[test]
fn new_work_is_refused_past_the_transaction_mark_while_dialogs_go_on() {
    // An INVITE whose 200 is never ACKed keeps its transaction alive for 64·T1 (12.8 s).
    let focus = Focus::start(
        r#"
        [sip]
        t1_ms = 200
        max_transactions = 40
        [overload]
        transactions_high_pct = 50
        source_rate = 0
        trusted_sources = ["127.0.0.9"]
        "#,
    );
    // Bob (an untrusted source) is in a session before the load.
    let mut bob = Ua::udp_from(&focus, "bob", "127.0.0.5");
    let (mut call, ok) = bob.join(TEAM);
    assert_eq!(ok.status, 200);
    // Untrusted new work fills the transactions to the mark (20), then gets 503.
    let (got, _) = flood_with(&focus, "127.0.0.2", 30, invite_text, |got| {
        got.contains(&503)
    });
    assert!(got.contains(&503), "no 503 past the mark: {got:?}");
    let refused = focus.wait_metric(
        "focus_overload_rejections_total{reason=\"transactions_high\"}",
        WAIT,
        |v| v >= 1.0,
    );
    assert!(refused <= 11.0, "{refused}");
    let mut c = support::Call::new(TEAM);
    let b = bob.invite(&mut c, Some(support::AUDIO_OFFER));
    assert_eq!(bob.expect_final(&b).status, 503, "a new call past the mark");
    // The trusted core still gets in, up to the hard limit.
    let (core, _) = flood(&focus, "127.0.0.9", 5, |got| got.len() >= 5);
    assert_eq!(core, vec![200; 5], "trusted core refused: {core:?}");
    // Bob's established dialog goes on: his BYE is in-dialog work.
    assert_eq!(bob.bye(&mut call).status, 200);
}

/// True when the focus closes `s` within `timeout` (a read returns end of stream or an
/// error).
fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + timeout;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return Instant::now() < deadline,
        }
    }
}

#[test]
fn tcp_connections_are_capped_per_source() {
    let focus = Focus::start(
        r#"
        [sip]
        max_tcp_connections_per_source = 2
        [overload]
        trusted_sources = []
        # The trusted core is policy.trusted_hosts too: loopback must be neither here.
        [policy]
        trusted_hosts = []
        "#,
    );
    let mut a = Ua::tcp(&focus, "a");
    let mut b = Ua::tcp(&focus, "b");
    assert_eq!(a.options(TEAM).status, 200);
    assert_eq!(b.options(TEAM).status, 200);
    let mut third = TcpStream::connect(focus.sip_tcp).unwrap();
    assert!(
        closed_within(&mut third, WAIT),
        "a third connection from one source stayed open"
    );
    assert_eq!(
        focus.metric("focus_tcp_connections_refused_total{reason=\"per_source\"}"),
        Some(1.0)
    );
    // Another source is not affected.
    let other = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    other
        .bind(&"127.0.0.3:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    other.connect(&focus.sip_tcp.into()).unwrap();
    let mut other: TcpStream = other.into();
    let me = other.local_addr().unwrap();
    other
        .write_all(options_text(me, 1).replace("UDP", "TCP").as_bytes())
        .unwrap();
    other.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 64];
    let n = other.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"SIP/2.0 200"), "{:?}", &buf[..n]);
    // A slot freed is a slot again.
    drop(a);
    focus.wait_metric(
        "focus_tcp_connections_active{transport=\"tcp\"}",
        WAIT,
        |v| v == 2.0,
    );
    let mut again = Ua::tcp(&focus, "again");
    assert_eq!(again.options(TEAM).status, 200);
    assert_eq!(b.options(TEAM).status, 200);
}

#[test]
fn a_slowloris_connection_is_closed_at_the_message_deadline_and_an_idle_one_at_its_timeout() {
    let focus = Focus::start(
        r#"
        [sip]
        tcp_message_timeout_s = 1
        tcp_idle_timeout_s = 2
        "#,
    );
    // A message trickled a few bytes at a time never completes: closed after 1 s, although
    // bytes keep coming (the idle timer alone would never fire).
    let mut slow = TcpStream::connect(focus.sip_tcp).unwrap();
    let me = slow.local_addr().unwrap();
    let text = options_text(me, 7).replace("UDP", "TCP");
    let started = Instant::now();
    let mut closed = false;
    for chunk in text.as_bytes().chunks(4) {
        if slow.write_all(chunk).is_err() {
            closed = true;
            break;
        }
        // The trickle is the scenario itself, not a synchronisation.
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    assert!(
        closed || closed_within(&mut slow, WAIT),
        "a slowloris connection stayed open"
    );
    focus.wait_metric(
        "focus_tcp_connections_closed_total{reason=\"message_timeout\"}",
        WAIT,
        |v| v == 1.0,
    );
    // Whole messages are served, and a connection quiet past the idle timeout is closed.
    let mut ua = Ua::tcp(&focus, "quiet");
    assert_eq!(ua.options(TEAM).status, 200);
    assert!(
        ua.wait_closed(ua.primary, Duration::from_secs(10)),
        "an idle connection stayed open"
    );
    assert!(focus.metric("focus_tcp_idle_closed_total") >= Some(1.0));
}
