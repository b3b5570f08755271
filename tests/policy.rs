//! Who may join: unknown conferences, full groups, signalling-only participants.

mod support;

use cpm_focus::sip::HeaderName;
use support::{Call, Focus, Ua, AUDIO_OFFER, TEAM};

#[test]
fn invite_to_an_unknown_conference_is_404() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "alice");
    for uri in [
        "sip:nosuchgroup@focus.example.com",
        "sip:team@elsewhere.example.org",
    ] {
        let mut call = Call::new(uri);
        let b = ua.invite(&mut call, Some(AUDIO_OFFER));
        let r = ua.expect_final(&b);
        assert_eq!((r.status, &*r.reason), (404, "Not Found"), "{uri}");
    }
    // Nothing was started for them.
    assert_eq!(
        focus.metric("focus_sessions_started_total{kind=\"predefined\"}"),
        None
    );
    // SUBSCRIBE to an unknown conference is 404 as well.
    let mut call = Call::new("sip:nosuchgroup@focus.example.com");
    assert_eq!(ua.subscribe(&mut call, None).status, 404);
}

#[test]
fn a_full_group_refuses_with_486_and_a_warning() {
    let focus = Focus::start(
        r#"
        [[groups]]
        uri = "sip:team@focus.example.com"
        max_participants = 1
        "#,
    );
    let mut first = Ua::udp(&focus, "alice");
    let (mut call, _) = first.join(TEAM);
    let mut second = Ua::tcp(&focus, "bob");
    let mut call2 = Call::new(TEAM);
    let b = second.invite(&mut call2, Some(AUDIO_OFFER));
    let r = second.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (486, "Busy Here"));
    assert_eq!(
        r.headers.get(HeaderName::Warning),
        Some("399 focus.example.com \"The group is full\"")
    );
    assert_eq!(
        focus.metric("focus_policy_rejections_total{reason=\"full\"}"),
        Some(1.0)
    );
    // Once the first leaves, there is room again.
    assert_eq!(first.bye(&mut call).status, 200);
    let (mut call2, _) = second.join(TEAM);
    assert_eq!(second.bye(&mut call2).status, 200);
}

#[test]
fn signalling_only_participants_get_488_when_the_group_forbids_them() {
    let focus = Focus::start(
        r#"
        [[groups]]
        uri = "sip:team@focus.example.com"
        allow_signalling_only = false

        [[groups]]
        uri = "sip:open@focus.example.com"
        "#,
    );
    let mut ua = Ua::udp(&focus, "carol");
    let mut call = Call::new(TEAM);
    let b = ua.invite(&mut call, Some(AUDIO_OFFER));
    let r = ua.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (488, "Not Acceptable Here"));
    assert_eq!(
        r.headers.get(HeaderName::Warning),
        Some("304 focus.example.com \"No media stream the group serves was offered\"")
    );
    assert_eq!(
        focus.metric("focus_policy_rejections_total{reason=\"media\"}"),
        Some(1.0)
    );
    // The second group (default policy) takes the same offer.
    let (mut call, _) = ua.join("sip:open@focus.example.com");
    assert_eq!(ua.bye(&mut call).status, 200);
}

#[test]
fn subscriptions_beyond_the_per_session_limit_get_503() {
    let focus = Focus::start("[subscriptions]\nmax_per_session = 1\n");
    let mut first = Ua::udp(&focus, "alice");
    let (_c, _) = first.subscribe_to(TEAM);
    let mut second = Ua::udp(&focus, "bob");
    let mut call = Call::new(TEAM);
    let r = second.subscribe(&mut call, None);
    assert_eq!((r.status, &*r.reason), (503, "Service Unavailable"));
    assert_eq!(r.headers.get(HeaderName::RetryAfter), Some("5"));
    assert_eq!(
        r.headers.get(HeaderName::Warning),
        Some("399 focus.example.com \"Too many subscriptions to this conference\"")
    );
    assert_eq!(
        focus.metric("focus_overload_rejections_total{reason=\"subscriptions\"}"),
        Some(1.0)
    );
}
