//! Group-session behaviour in virtual time, without actix or sockets.

use super::*;

#[test]
fn new_session_is_idle() {
    let settings = Arc::new(SessionSettings {
        conference_uri: "sip:team@focus.example.com".into(),
        display_name: "Team".into(),
        subject: String::new(),
        max_participants: 2,
        allow_signalling_only: true,
        contact_udp: "<sip:team@127.0.0.1:5060>;isfocus".into(),
        contact_tcp: "<sip:team@127.0.0.1:5060;transport=tcp>;isfocus".into(),
        warn_agent: "focus.example.com".into(),
        sdp_address: "127.0.0.1".parse().unwrap(),
        focus_display: "cpm-focus".into(),
        min_expires: 60,
        default_expires: 3600,
        max_expires: 7200,
        max_subscriptions: 10,
        min_notify_interval: Duration::from_millis(0),
        departed_retention: Duration::from_secs(30),
        retry_after_s: 5,
    });
    let s = SessionState::new(settings, Instant::now(), SystemTime::now());
    assert!(s.is_idle());
}
