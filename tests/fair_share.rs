//! Fair shares (issue 14 item 4), played by an attacker on the same network: outsiders from
//! 127.0.0.66 and other loopback addresses, nothing of theirs trusted, try to take the
//! capacity the trusted core (127.0.0.1) and members need: stream connections, subscription
//! slots, seats in an open group, RTP port pairs, the group-message queue. Each limit is set
//! small here so the attack is quick; each test checks both that the attacker is held to its
//! share (with the refusal counted) and that the others are still served.

mod support;

use cpm_focus::sip::{HeaderName, Response};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{tcp_connect_from, Call, Focus, Ua, TEAM, WAIT};

/// A configuration where the core at 127.0.0.1 is trusted (its P-Asserted-Identity
/// believed) and nothing else is, with `policy` lines added to `[policy]` and `rest` after.
fn with_core(policy: &str, rest: &str) -> String {
    format!(
        "[overload]\ntrusted_sources = [\"127.0.0.1\"]\n[policy]\ntrusted_hosts = [\"127.0.0.1\"]\n{policy}\n{rest}"
    )
}

/// Opens an idle outsider connection from `ip` that has sent one keep-alive (so it is past
/// the first-byte deadline) and was answered: it holds a counted slot.
fn idle_connection(ip: &str, focus: &Focus) -> TcpStream {
    let mut s = tcp_connect_from(ip, focus.sip_tcp);
    s.write_all(b"\r\n\r\n").unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).expect("the focus answers a keep-alive");
    assert!(
        n > 0,
        "{ip}: connection closed instead of answering a keep-alive"
    );
    s
}

/// True when the focus closes `s` within `timeout` (end of stream or reset).
fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn retry_after(r: &Response) -> u32 {
    r.headers
        .get(HeaderName::RetryAfter)
        .unwrap_or_else(|| panic!("{} {} without Retry-After", r.status, r.reason))
        .trim()
        .parse()
        .expect("Retry-After is seconds")
}

fn warning(r: &Response) -> &str {
    r.headers
        .get(HeaderName::Warning)
        .unwrap_or_else(|| panic!("{} {} without Warning", r.status, r.reason))
}

/// 16 of the 20 connections are the outsiders' share. Idle outsiders from four addresses
/// fill it; the trusted core still connects into its reserve without closing anyone, and a
/// member from yet another address still connects (closing the oldest idle outsider) and
/// joins. Once joined, its connection is never the one closed: sixteen more outsiders
/// later, it is still served.
#[test]
fn idle_outsiders_fill_their_share_and_the_core_and_members_still_connect() {
    let focus = Focus::start(&with_core(
        "",
        "[sip]
        max_tcp_connections = 20
        max_tcp_connections_per_source = 4
        tcp_trusted_reserve_pct = 20
        ",
    ));
    let mut outsiders = Vec::new();
    for host in 66..70 {
        for _ in 0..4 {
            outsiders.push(idle_connection(&format!("127.0.0.{host}"), &focus));
        }
    }
    focus.wait_metric(
        "focus_tcp_connections_active{transport=\"tcp\"}",
        WAIT,
        |v| v == 16.0,
    );
    assert_eq!(
        focus.metric("focus_tcp_connections_closed_total{reason=\"evicted\"}"),
        Some(0.0)
    );
    // The trusted core: into the reserve, nobody evicted.
    let mut core = Ua::tcp(&focus, "core");
    assert_eq!(core.options(TEAM).status, 200);
    assert_eq!(
        focus.metric("focus_tcp_connections_closed_total{reason=\"evicted\"}"),
        Some(0.0),
        "the core took a slot of the outsiders' share"
    );
    // A member from an untrusted address: the oldest idle outsider makes room.
    let mut member = Ua::tcp_from(&focus, "member", "127.0.0.80");
    let (mut call, _) = member.join(TEAM);
    assert!(
        closed_within(&mut outsiders[0], WAIT),
        "the oldest idle outsider was not evicted"
    );
    assert_eq!(
        focus.metric("focus_tcp_connections_closed_total{reason=\"evicted\"}"),
        Some(1.0)
    );
    // Sixteen more outsiders churn through the share; the member's connection stays.
    let mut more = Vec::new();
    for host in 90..94 {
        for _ in 0..4 {
            more.push(idle_connection(&format!("127.0.0.{host}"), &focus));
        }
    }
    focus.wait_metric(
        "focus_tcp_connections_closed_total{reason=\"evicted\"}",
        WAIT,
        |v| v >= 16.0,
    );
    // Evicted connections close as their tasks notice; the count settles within the cap.
    focus.wait_metric(
        "focus_tcp_connections_active{transport=\"tcp\"}",
        WAIT,
        |v| v <= 20.0,
    );
    assert_eq!(member.bye(&mut call).status, 200);
    assert_eq!(core.options(TEAM).status, 200);
}

/// A connection that sends nothing is closed within the first-byte deadline, long before
/// the idle timeout; one that spoke stays open past it.
#[test]
fn silent_connections_are_closed_within_the_first_byte_deadline() {
    let focus = Focus::start(&with_core(
        "",
        "[sip]
        tcp_first_byte_timeout_ms = 500
        tcp_idle_timeout_s = 600
        ",
    ));
    let started = Instant::now();
    let mut silent = tcp_connect_from("127.0.0.66", focus.sip_tcp);
    let mut spoke = idle_connection("127.0.0.67", &focus);
    assert!(
        closed_within(&mut silent, WAIT),
        "a silent connection stayed open"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "closed after {took:?}, before the deadline"
    );
    assert_eq!(
        focus.metric("focus_tcp_connections_closed_total{reason=\"first_byte_timeout\"}"),
        Some(1.0)
    );
    assert!(
        !closed_within(&mut spoke, Duration::from_millis(1500)),
        "a connection that spoke was closed by the first-byte deadline"
    );
}

/// SUBSCRIBE with a P-Asserted-Identity (believed from the trusted core).
fn subscribe_as(ua: &mut Ua, aor: &str) -> Response {
    let mut call = Call::new(TEAM);
    let extra = format!(
        "Event: conference\r\nAccept: application/conference-info+xml\r\nP-Asserted-Identity: <{aor}>\r\n"
    );
    let b = ua.send_request(&mut call, "SUBSCRIBE", &extra, None);
    ua.expect_final(&b)
}

/// Four subscription slots, half of them for outsiders: outsiders from 127.0.0.66 get two,
/// the third is refused 503 with Retry-After and counted; the group's host, through the
/// trusted core, still subscribes.
#[test]
fn outsiders_hold_their_share_of_subscriptions_and_the_host_still_subscribes() {
    let focus = Focus::start(&with_core(
        "",
        r#"[subscriptions]
        max_per_session = 4
        outsider_share_pct = 50
        [[groups]]
        uri = "sip:team@focus.example.com"
        [[groups.members]]
        uri = "sip:boss@example.com"
        role = "host"
        "#,
    ));
    let mut outsiders: Vec<Ua> = (0..3)
        .map(|i| Ua::udp_from(&focus, &format!("evil{i}"), "127.0.0.66"))
        .collect();
    for o in outsiders.iter_mut().take(2) {
        let mut call = Call::new(TEAM);
        assert_eq!(o.subscribe(&mut call, None).status, 200);
    }
    let mut call = Call::new(TEAM);
    let r = outsiders[2].subscribe(&mut call, None);
    assert_eq!(r.status, 503, "{} {}", r.status, r.reason);
    assert!(retry_after(&r) >= 1);
    assert!(warning(&r).contains("non-members"), "{}", warning(&r));
    assert_eq!(
        focus.metric("focus_fair_share_refusals_total{reason=\"outsider_subscriptions\"}"),
        Some(1.0)
    );
    let mut core = Ua::udp(&focus, "proxy");
    let r = subscribe_as(&mut core, "sip:boss@example.com");
    assert_eq!(r.status, 200, "the host: {} {}", r.status, r.reason);
}

/// One untrusted address gets three seats in an open talk group (the fourth join is 486
/// with a Warning and Retry-After) and four RTP legs over all groups (the fifth is 503); a
/// trusted member and a participant from another address still join.
#[test]
fn one_address_cannot_fill_a_group_nor_the_port_pool() {
    let focus = Focus::start(&with_core(
        r#"allowed_media = ["msrp", "audio"]
        max_participants_per_source = 3"#,
        r#"[rtp]
        max_legs_per_source = 4
        [[groups]]
        uri = "sip:talk@focus.example.com"
        max_participants = 8
        [[groups]]
        uri = "sip:talk2@focus.example.com"
        max_participants = 8
        "#,
    ));
    let talk = "sip:talk@focus.example.com";
    let talk2 = "sip:talk2@focus.example.com";
    let mut evil: Vec<Ua> = (0..6)
        .map(|i| Ua::udp_from(&focus, &format!("evil{i}"), "127.0.0.66"))
        .collect();
    for (i, ua) in evil.iter_mut().enumerate().take(3) {
        assert_eq!(ua.try_join(talk).1.status, 200, "evil{i}");
    }
    let r = evil[3].try_join(talk).1;
    assert_eq!(r.status, 486, "{} {}", r.status, r.reason);
    assert!(warning(&r).contains("your address"), "{}", warning(&r));
    assert!(retry_after(&r) >= 1);
    assert_eq!(
        focus.metric("focus_fair_share_refusals_total{reason=\"participants_per_source\"}"),
        Some(1.0)
    );
    // The same address in another group: one more leg, then the port pool is closed to it.
    assert_eq!(evil[4].try_join(talk2).1.status, 200);
    let r = evil[5].try_join(talk2).1;
    assert_eq!(r.status, 503, "{} {}", r.status, r.reason);
    assert!(retry_after(&r) >= 1);
    assert_eq!(
        focus.metric("focus_fair_share_refusals_total{reason=\"rtp_legs_per_source\"}"),
        Some(1.0)
    );
    // A member through the trusted core, and a participant from another address, join.
    let mut member = Ua::udp(&focus, "member");
    let (mut call, _) = member.join(talk);
    let mut other = Ua::udp_from(&focus, "other", "127.0.0.67");
    let (mut other_call, _) = other.join(talk2);
    assert_eq!(member.bye(&mut call).status, 200);
    assert_eq!(other.bye(&mut other_call).status, 200);
}

/// A group MESSAGE from `ua` to `uri`; the final response.
fn message(ua: &mut Ua, uri: &str, n: usize) -> Response {
    let mut call = Call::new(uri);
    let text = format!("flood {n}");
    let b = ua.send_request(&mut call, "MESSAGE", "", Some(("text/plain", &text)));
    ua.expect_final(&b)
}

/// A member floods group MESSAGEs: past its burst of five (at two a second) they are
/// refused 503 with Retry-After, counted; another sender is not held back, and the member
/// may send again once its Retry-After has passed.
#[test]
fn a_members_message_flood_is_limited_with_retry_after() {
    let focus = Focus::start(&with_core(
        "pager_rate_per_sender = 2\npager_burst_per_sender = 5",
        r#"[[groups]]
        uri = "sip:team@focus.example.com"
        [[groups.members]]
        uri = "sip:flooder@example.com"
        "#,
    ));
    let mut flooder = Ua::udp_from(&focus, "flooder", "127.0.0.66");
    let started = Instant::now();
    let mut accepted = 0;
    let mut refused = Vec::new();
    for n in 0..30 {
        let r = message(&mut flooder, TEAM, n);
        match r.status {
            202 => accepted += 1,
            503 => refused.push(r),
            s => panic!("MESSAGE {n}: {s} {}", r.reason),
        }
    }
    // The burst, plus what the rate refilled while the flood lasted.
    let allowed = 5 + (started.elapsed().as_secs_f64() * 2.0).ceil() as usize;
    assert!(
        accepted <= allowed,
        "{accepted} of 30 accepted, at most {allowed} allowed"
    );
    assert!(!refused.is_empty(), "nothing refused");
    let wait = retry_after(&refused[0]);
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    assert!(warning(&refused[0]).contains("too fast"));
    assert_eq!(
        focus.metric("focus_fair_share_refusals_total{reason=\"sender_rate\"}"),
        Some(refused.len() as f64)
    );
    // Another sender is served during the flood.
    let mut other = Ua::udp_from(&focus, "other", "127.0.0.67");
    assert_eq!(message(&mut other, TEAM, 0).status, 202);
    // After its Retry-After, the flooder may send again.
    std::thread::sleep(Duration::from_secs(u64::from(wait)));
    assert_eq!(message(&mut flooder, TEAM, 99).status, 202);
}
