//! `/metrics`: after traffic that exercises each one, every metric `src/metrics.rs` describes
//! is served, with the values that traffic implies.

mod support;

use cpm_focus::sip::Method;
use std::net::TcpStream;
use std::time::Duration;
use support::{Call, Focus, Origin, Ua, AUDIO_OFFER, TEAM, WAIT};

/// Metrics this test cannot provoke from outside, and where they are covered instead.
const NOT_PROVOKED_HERE: &[(&str, &str)] = &[
    (
        "focus_sip_loops_detected_total",
        "needs a merged or looped request: asserted in tests/amplification.rs",
    ),
    (
        "focus_sip_cancelled_total",
        "CANCEL races have no fixed outcome: asserted in tests/cancel.rs",
    ),
    (
        "focus_session_panics_total",
        "needs a session actor to panic: asserted in tests/panic.rs",
    ),
    (
        "focus_sip_abandoned_total",
        "needs a session to drop a request unanswered: asserted in tests/panic.rs",
    ),
    (
        "focus_transport_send_errors_total",
        "needs a full socket buffer",
    ),
    (
        "focus_dialog_rejections_total",
        "needs a forged in-dialog request (exact counts here would shift): asserted in tests/dialogs.rs",
    ),
    (
        "focus_auth_challenges_total",
        "needs [auth] configured: asserted in tests/auth.rs",
    ),
    (
        "focus_auth_failures_total",
        "needs [auth] configured: asserted in tests/auth.rs",
    ),
    (
        "focus_auth_success_total",
        "needs [auth] configured: asserted in tests/auth.rs",
    ),
    (
        "focus_dialouts_total",
        "needs a REFER or URI list with a callee: asserted in tests/adhoc.rs",
    ),
    (
        "focus_cpim_forged_from_total",
        "needs a forged CPIM From: asserted in tests/anonymity.rs",
    ),
    (
        "focus_group_messages_total",
        "needs group messages: asserted in tests/adhoc.rs",
    ),
    (
        "focus_group_message_deliveries_total",
        "needs group messages: asserted in tests/adhoc.rs",
    ),
    (
        "focus_moderation_actions_total",
        "needs a moderator: asserted in tests/control.rs and tests/access.rs",
    ),
    (
        "focus_charging_records_written_total",
        "needs a charging file: asserted in tests/charging.rs",
    ),
    (
        "focus_charging_errors_total",
        "needs a failing charging file: asserted in tests/charging.rs",
    ),
    (
        "focus_charging_backlog",
        "needs a charging file: asserted in tests/charging.rs",
    ),
    (
        "focus_tcp_connections_closed_total",
        "needs a slowloris peer: asserted in tests/overload.rs",
    ),
    (
        "focus_flood_dropped_total",
        "needs a flooding source: asserted in tests/overload.rs",
    ),
    (
        "focus_tls_handshakes_total",
        "needs [tls] and certificates: asserted in tests/tls.rs",
    ),
    (
        "focus_tls_handshake_failures_total",
        "needs [tls] and a peer with a wrong certificate: asserted in tests/tls.rs",
    ),
    (
        "focus_admin_requests_total",
        "needs admin API requests: asserted in tests/admin.rs",
    ),
    (
        "focus_config_reloads_total",
        "needs a configuration reload: asserted in tests/reload.rs and tests/admin.rs",
    ),
    (
        "focus_credit_checks_total",
        "needs an online charging server: asserted in tests/charging.rs",
    ),
    (
        "focus_credit_check_duration_seconds",
        "needs an online charging server: asserted in tests/charging.rs",
    ),
    (
        "focus_session_timer_rejections_total",
        "needs a too-small Session-Expires: asserted in tests/session_timer.rs",
    ),
    (
        "focus_session_timer_refreshes_total",
        "needs short session timers: asserted in tests/session_timer.rs",
    ),
    (
        "focus_session_timer_expired_total",
        "needs short session timers: asserted in tests/session_timer.rs",
    ),
    (
        "focus_journal_lines_total",
        "needs a journal file: asserted in tests/recovery.rs",
    ),
    (
        "focus_journal_errors_total",
        "needs a failing journal file: asserted in tests/recovery.rs",
    ),
    (
        "focus_journal_compactions_total",
        "needs a journal file: asserted in tests/recovery.rs",
    ),
    (
        "focus_recovered_sessions_total",
        "needs a crash and a restart: asserted in tests/recovery.rs",
    ),
    (
        "focus_recovered_participants_total",
        "needs a crash and a restart: asserted in tests/recovery.rs",
    ),
];

/// Every metric name the focus describes.
fn described() -> Vec<String> {
    cpm_focus::metrics::METRICS
        .iter()
        .map(|(name, _, _)| name.to_string())
        .collect()
}

#[test]
fn every_described_metric_is_served_after_traffic() {
    let mut focus = Focus::start(
        r#"
        [sip]
        t1_ms = 50
        t2_ms = 400
        max_tcp_connections = 3
        tcp_idle_timeout_s = 1
        [supervisor]
        max_sessions = 1
        [[groups]]
        uri = "sip:team@focus.example.com"
        max_participants = 2
        [[groups]]
        uri = "sip:other@focus.example.com"
        "#,
    );

    // A caller that never ACKs: 200 retransmissions, then an ACK timeout and a BYE (64·T1).
    let mut lazy = Ua::udp(&focus, "lazy");
    let mut lazy_call = Call::new(TEAM);
    let b = lazy.invite(&mut lazy_call, Some(AUDIO_OFFER));
    assert_eq!(lazy.expect_final(&b).status, 200);

    // A join, a retransmitted OPTIONS, a subscription that sees the leave.
    let mut alice = Ua::udp(&focus, "alice");
    let (mut call, _) = alice.join(TEAM);
    let mut probe = Call::new(TEAM);
    let b = alice.send_request(&mut probe, "OPTIONS", "", None);
    assert_eq!(alice.expect_final(&b).status, 200);
    alice.retransmit(&b);
    assert_eq!(alice.expect_final(&b).status, 200);
    let mut sub = Ua::tcp(&focus, "sub");
    let (_sub_call, _) = sub.subscribe_to(TEAM);
    // The group is full (lazy and alice): policy refusal.
    let mut bob = Ua::udp(&focus, "bob");
    let mut bob_call = Call::new(TEAM);
    let b = bob.invite(&mut bob_call, Some(AUDIO_OFFER));
    assert_eq!(bob.expect_final(&b).status, 486);
    assert_eq!(alice.bye(&mut call).status, 200);
    assert!(sub.expect_notify().doc.version >= 2);

    // Refusals: a malformed request, garbage, a stray response, an unsupported method,
    // a second session beyond max_sessions.
    alice.raw_ok = true;
    alice.send_raw(&format!(
        "OPTIONS sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-m1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:team@focus.example.com>\r\nCall-ID: m1\r\nCSeq: x OPTIONS\r\nContent-Length: 0\r\n\r\n",
        alice.local
    ));
    assert!(alice
        .recv_raw(WAIT)
        .is_some_and(|r| r.starts_with(b"SIP/2.0 400 ")));
    alice.send_raw("garbage\r\n\r\n");
    alice.send_raw(&format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-stray\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n",
        focus.sip_udp
    ));
    let mut c = Call::new(TEAM);
    let b = alice.send_request(&mut c, "REGISTER", "", None);
    assert_eq!(alice.expect_final(&b).status, 405);
    let mut c = Call::new("sip:other@focus.example.com");
    let b = alice.invite(&mut c, Some(AUDIO_OFFER));
    let r = alice.expect_final(&b);
    assert_eq!(
        r.status, 503,
        "a second session beyond max_sessions = 1: {}",
        r.reason
    );

    // TCP: a third connection at max_tcp_connections = 3 (sub, one more, this one) is open;
    // a fourth is refused.
    let extra = TcpStream::connect(focus.sip_tcp).unwrap();
    let mut third = Ua::tcp(&focus, "third");
    assert_eq!(third.options(TEAM).status, 200);
    let mut refused = Ua::tcp(&focus, "refused");
    assert!(
        refused.wait_closed(refused.primary, WAIT),
        "a connection beyond the limit stayed open"
    );
    assert_eq!(
        focus.metric("focus_tcp_connections_refused_total{reason=\"limit\"}"),
        Some(1.0)
    );
    // Idle connections close after 1 s.
    assert!(
        third.wait_closed(third.primary, WAIT),
        "an idle connection stayed open"
    );
    drop(extra);

    // The subscriber's connection dies; the next NOTIFY cannot be delivered.
    assert!(matches!(sub.primary, Origin::Tcp(_)));
    drop(sub);
    let (mut call, _) = alice.join(TEAM);
    focus.wait_metric(
        "focus_sip_requests_failed_total{reason=\"unroutable\"}",
        WAIT,
        |v| v == 1.0,
    );
    focus.wait_metric("focus_subscriptions_active", WAIT, |v| v == 0.0);
    assert_eq!(alice.bye(&mut call).status, 200);

    // The lazy caller's session ends with a BYE after 64·T1 = 3.2 s.
    let bye = lazy.expect_request(Method::Bye, Duration::from_secs(10));
    lazy.respond(&bye, 200);
    focus.wait_metric("focus_sip_ack_timeouts_total", WAIT, |v| v == 1.0);

    let text = focus.metrics();
    let value = |series: &str| support::metric_in(&text, series);
    // Exact values the traffic implies.
    assert_eq!(
        value("focus_sip_requests_received_total{method=\"INVITE\"}"),
        Some(5.0)
    );
    assert_eq!(
        value("focus_sip_requests_received_total{method=\"BYE\"}"),
        Some(2.0)
    );
    assert_eq!(
        value("focus_sip_requests_received_total{method=\"SUBSCRIBE\"}"),
        Some(1.0)
    );
    assert_eq!(value("focus_sip_retransmissions_received_total"), Some(1.0));
    assert_eq!(
        value("focus_sip_requests_sent_total{method=\"BYE\"}"),
        Some(1.0)
    );
    assert!(value("focus_sip_requests_sent_total{method=\"NOTIFY\"}") >= Some(2.0));
    // 200s: INVITE ×3, OPTIONS ×2, SUBSCRIBE, BYE ×2 (retransmissions are not counted).
    assert_eq!(
        value("focus_sip_responses_sent_total{class=\"2xx\"}"),
        Some(8.0)
    );
    // 4xx: 400, 405, 486; 5xx: 503.
    assert_eq!(
        value("focus_sip_responses_sent_total{class=\"4xx\"}"),
        Some(3.0)
    );
    assert_eq!(
        value("focus_sip_responses_sent_total{class=\"5xx\"}"),
        Some(1.0)
    );
    assert_eq!(
        value("focus_policy_rejections_total{reason=\"full\"}"),
        Some(1.0)
    );
    assert_eq!(
        value("focus_sip_responses_sent_total{class=\"1xx\"}"),
        Some(5.0)
    );
    assert_eq!(
        value("focus_sip_parse_errors_total{reason=\"rejected\"}"),
        Some(1.0)
    );
    assert_eq!(
        value("focus_sip_parse_errors_total{reason=\"dropped\"}"),
        Some(1.0)
    );
    assert_eq!(value("focus_sip_stray_responses_total"), Some(1.0));
    assert_eq!(value("focus_sip_unsupported_methods_total"), Some(1.0));
    assert_eq!(
        value("focus_overload_rejections_total{reason=\"sessions\"}"),
        Some(1.0)
    );
    assert_eq!(value("focus_participants_active"), Some(0.0));
    assert_eq!(value("focus_sessions_active"), Some(0.0));
    assert_eq!(
        value("focus_sessions_started_total{kind=\"predefined\"}"),
        Some(1.0)
    );
    assert!(value("focus_tcp_idle_closed_total") >= Some(1.0));
    assert!(value("focus_transport_bytes_received_total{transport=\"udp\"}") > Some(1000.0));
    assert!(value("focus_transport_bytes_received_total{transport=\"tcp\"}") > Some(100.0));
    // The latency histogram: buckets per method, +Inf equal to the count.
    let inf = value("focus_request_duration_seconds_bucket{method=\"INVITE\",le=\"+Inf\"}");
    assert_eq!(
        inf,
        value("focus_request_duration_seconds_count{method=\"INVITE\"}")
    );
    assert_eq!(inf, Some(5.0));
    assert!(text.contains("focus_request_duration_seconds_bucket{method=\"INVITE\",le=\"0.001\"}"));

    // Every described metric is served, except the few this traffic cannot provoke.
    for name in described() {
        // MSRP metrics need group-chat traffic: tests/msrp.rs serves and asserts every
        // focus_msrp_* one (every_msrp_metric_is_served_with_the_values_traffic_implies).
        // Talk-burst metrics need audio and BFCP: tests/floor.rs serves and asserts every
        // focus_floor_*, focus_bfcp_*, focus_rtp_* and focus_rtcp_* one
        // (every_talk_burst_metric_is_served).
        let talk = ["focus_floor_", "focus_bfcp_", "focus_rtp_", "focus_rtcp_"];
        if NOT_PROVOKED_HERE.iter().any(|(n, _)| *n == name)
            || name.starts_with("focus_msrp_")
            || talk.iter().any(|p| name.starts_with(p))
        {
            continue;
        }
        assert!(
            text.lines()
                .any(|l| l.starts_with(&name) && !l.starts_with('#')),
            "{name} is not served:\n{text}"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP"
        );
    }
    for (name, _) in NOT_PROVOKED_HERE {
        assert!(
            described().iter().any(|n| n == name),
            "{name} is no longer described"
        );
    }

    focus.terminate();
    assert_eq!(focus.wait_exit(WAIT).code(), Some(0));
}
