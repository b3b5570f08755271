//! Who may join, end to end: unknown conferences, membership (members-only), invitation
//! (invited-only), group and provider participant limits, media policy (IM-only), anonymity,
//! locked groups; and the roles listed members get in conference-info. Every refusal is
//! checked for its status, its exact Warning and its `focus_policy_rejections_total` count.

mod support;

use cpm_focus::conference_info::{EndpointStatus, JoiningMethod};
use cpm_focus::sip::{HeaderName, Response};
use support::{
    assert_refused, endpoint_state, follow, user, Call, Focus, Setup, Ua, AUDIO_OFFER, TEAM,
};

/// An INVITE to `uri` with `offer` and the extra header lines `extra`; its final response.
fn try_join(ua: &mut Ua, uri: &str, offer: &str, extra: &str) -> Response {
    let mut call = Call::new(uri);
    let b = ua.send_request(&mut call, "INVITE", extra, Some(("application/sdp", offer)));
    ua.expect_final(&b)
}

/// `focus_policy_rejections_total{reason=...}`.
fn rejections(focus: &Focus, reason: &str) -> Option<f64> {
    focus.metric(&format!(
        "focus_policy_rejections_total{{reason=\"{reason}\"}}"
    ))
}

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
        Some(0.0)
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

#[test]
fn members_only_refuses_non_members_with_403() {
    let focus = Focus::start(
        r#"
        [[groups]]
        uri = "sip:club@focus.example.com"
        join = "members-only"
        [[groups.members]]
        uri = "sip:alice@example.com"
        role = "host"
        [[groups.members]]
        uri = "sip:carol@example.com"
        "#,
    );
    let club = "sip:club@focus.example.com";
    let mut bob = Ua::udp(&focus, "bob");
    let r = try_join(&mut bob, club, AUDIO_OFFER, "");
    assert_refused(
        &r,
        403,
        "Forbidden",
        "399 focus.example.com \"Only members of this group may join\"",
    );
    assert_eq!(rejections(&focus, "not_member"), Some(1.0));
    // A second try is a second refusal.
    let r = try_join(&mut bob, club, AUDIO_OFFER, "");
    assert_eq!(r.status, 403);
    assert_eq!(rejections(&focus, "not_member"), Some(2.0));
    // Listed members join, whatever their role; the open team group still takes bob.
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(club);
    let mut carol = Ua::tcp(&focus, "carol");
    let (mut c, _) = carol.join(club);
    let (mut b, _) = bob.join(TEAM);
    assert_eq!(rejections(&focus, "not_member"), Some(2.0));
    assert_eq!(rejections(&focus, "not_invited"), Some(0.0));
    for (ua, call) in [
        (&mut alice, &mut a),
        (&mut carol, &mut c),
        (&mut bob, &mut b),
    ] {
        assert_eq!(ua.bye(call).status, 200);
    }
}

#[test]
fn invited_only_refuses_dial_ins_but_takes_whom_a_moderator_invites() {
    let focus = Focus::start(
        r#"
        [[groups]]
        uri = "sip:board@focus.example.com"
        join = "invited-only"
        [[groups.members]]
        uri = "sip:alice@example.com"
        role = "moderator"
        "#,
    );
    let board = "sip:board@focus.example.com";
    let mut bob = Ua::udp(&focus, "bob");
    let r = try_join(&mut bob, board, AUDIO_OFFER, "");
    assert_refused(
        &r,
        403,
        "Forbidden",
        "399 focus.example.com \"Only invited participants may join this group\"",
    );
    assert_eq!(rejections(&focus, "not_invited"), Some(1.0));
    // A listed member may still dial in, and invite bob: the focus calls him.
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(board);
    let b = alice.refer(&mut a, &format!("<sip:bob@{}>", bob.local), "");
    assert_eq!(alice.expect_final(&b).status, 202);
    let inv = bob.expect_invite();
    assert_eq!(
        inv.request().uri.to_string(),
        format!("sip:bob@{}", bob.local)
    );
    bob.ring(&inv);
    let (mut bc, _msrp) = bob.accept_chat(&inv);
    // Only those who may be in an invited-only group may watch it: alice may.
    let (_w, n) = alice.subscribe_to(board);
    let mut view = n.doc;
    follow(&mut alice, &mut view, |v| {
        endpoint_state(v, "sip:bob@127.0.0.1").is_some_and(|s| s.0 == EndpointStatus::Connected)
    });
    let bob_user = user(&view, "sip:bob@127.0.0.1").unwrap();
    assert_eq!(
        bob_user.endpoints[0].joining_method,
        Some(JoiningMethod::DialedOut)
    );
    assert_eq!(rejections(&focus, "not_invited"), Some(1.0));
    assert_eq!(bob.bye(&mut bc).status, 200);
    assert_eq!(alice.bye(&mut a).status, 200);
}

#[test]
fn the_provider_limit_bounds_every_group() {
    // The group allows 1000, the provider 2: the third participant gets 486.
    let focus = Focus::start("[policy]\nmax_participants_per_session = 2\n");
    let mut calls = Vec::new();
    for name in ["alice", "bob"] {
        let mut ua = Ua::udp(&focus, name);
        let (call, _) = ua.join(TEAM);
        calls.push((ua, call));
    }
    let mut carol = Ua::udp(&focus, "carol");
    let r = try_join(&mut carol, TEAM, AUDIO_OFFER, "");
    assert_refused(
        &r,
        486,
        "Busy Here",
        "399 focus.example.com \"The group is full\"",
    );
    assert_eq!(rejections(&focus, "full"), Some(1.0));
    // conference-info announces the effective limit.
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_w, n) = watcher.subscribe_to(TEAM);
    let d = n.doc.description.expect("conference-description");
    assert_eq!(d.maximum_user_count, Some(2));
    for (mut ua, mut call) in calls {
        assert_eq!(ua.bye(&mut call).status, 200);
    }
}

#[test]
fn an_im_only_group_refuses_an_audio_only_offer_with_488() {
    let focus = Focus::start(
        r#"
        [[groups]]
        uri = "sip:chat@focus.example.com"
        allowed_media = ["msrp"]
        allow_signalling_only = false

        [[groups]]
        uri = "sip:nomedia@focus.example.com"
        allowed_media = []
        allow_signalling_only = false
        "#,
    );
    let chat = "sip:chat@focus.example.com";
    let mut ua = Ua::udp(&focus, "carol");
    let r = try_join(&mut ua, chat, AUDIO_OFFER, "");
    let warning = "304 focus.example.com \"No media stream the group serves was offered\"";
    assert_refused(&r, 488, "Not Acceptable Here", warning);
    assert_eq!(rejections(&focus, "media"), Some(1.0));
    // The same group takes a chat offer: its MSRP stream is accepted.
    let mut joined = ua.join_chat(chat, Setup::Active);
    assert_ne!(joined.media.port, 0);
    // A group that serves no media refuses even the chat offer.
    let mut dave = Ua::udp(&focus, "dave");
    let offer = support::Endpoint::new("dave", Setup::Active).offer();
    let r = try_join(&mut dave, "sip:nomedia@focus.example.com", &offer, "");
    assert_refused(&r, 488, "Not Acceptable Here", warning);
    assert_eq!(rejections(&focus, "media"), Some(2.0));
    assert_eq!(ua.bye(&mut joined.call).status, 200);
}

#[test]
fn a_group_that_forbids_anonymity_refuses_privacy_with_403() {
    let focus = Focus::start(
        r#"
        [[groups]]
        uri = "sip:team@focus.example.com"
        allow_anonymous = false
        "#,
    );
    let mut ua = Ua::udp(&focus, "dave");
    let warning = "399 focus.example.com \"Anonymous participation is not allowed in this group\"";
    for (n, privacy) in ["Privacy: id\r\n", "Privacy: user;header\r\n"]
        .into_iter()
        .enumerate()
    {
        let r = try_join(&mut ua, TEAM, AUDIO_OFFER, privacy);
        assert_refused(&r, 403, "Forbidden", warning);
        assert_eq!(rejections(&focus, "anonymous"), Some((n + 1) as f64));
    }
    // Privacy: none asks for nothing: the participant joins under its own identity.
    ua.invite_headers = "Privacy: none\r\n".into();
    let (mut call, _) = ua.join(TEAM);
    assert_eq!(rejections(&focus, "anonymous"), Some(2.0));
    assert_eq!(ua.bye(&mut call).status, 200);
}

#[test]
fn a_locked_group_refuses_newcomers_until_a_moderator_unlocks_it() {
    let focus = Focus::start(
        r#"
        [[groups]]
        uri = "sip:team@focus.example.com"
        locked = true
        [[groups.members]]
        uri = "sip:alice@127.0.0.1"
        role = "host"
        [[groups.members]]
        uri = "sip:carol@example.com"
        role = "moderator"
        "#,
    );
    let warning = "399 focus.example.com \"The group is locked\"";
    let mut bob = Ua::udp(&focus, "bob");
    assert_refused(
        &try_join(&mut bob, TEAM, AUDIO_OFFER, ""),
        403,
        "Forbidden",
        warning,
    );
    assert_eq!(rejections(&focus, "locked"), Some(1.0));
    // The lock keeps newcomers out, not the group's hosts and moderators.
    let mut carol = Ua::udp(&focus, "carol");
    let (mut c, _) = carol.join(TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    // Her address of record is the one the focus reaches her at (no proxy in the test).
    alice.domain = "127.0.0.1".into();
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_w, n) = watcher.subscribe_to(TEAM);
    assert_eq!(n.doc.conference_state.unwrap().locked, Some(true));
    // A host may also have the focus call her (REFER from outside the session), and unlock.
    let mut r = Call::new(TEAM);
    let b = alice.refer(&mut r, &format!("<sip:alice@{}>", alice.local), "");
    assert_eq!(alice.expect_final(&b).status, 202);
    let inv = alice.expect_invite();
    let (mut a, _msrp) = alice.accept_chat(&inv);
    for frag in ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"] {
        assert_eq!(support::sipfrag(&alice.expect_sipfrag(), "refer"), frag);
    }
    let ok = alice.control(&mut a, "INFO", r#"{"action":"unlock"}"#);
    assert_eq!(ok.status, 200);
    let mut view = n.doc;
    follow(&mut watcher, &mut view, |v| {
        v.conference_state.and_then(|s| s.locked) == Some(false)
    });
    let (mut b, _) = bob.join(TEAM);
    assert_eq!(rejections(&focus, "locked"), Some(1.0));
    // In the dialog the focus opened toward her, the host may refer too.
    let mut dan = Ua::udp(&focus, "dan");
    let b2 = alice.refer(&mut a, &format!("<sip:dan@{}>", dan.local), "");
    assert_eq!(alice.expect_final(&b2).status, 202);
    let event = format!("refer;id={}", a.cseq);
    assert_eq!(
        support::sipfrag(&alice.expect_sipfrag(), &event),
        "SIP/2.0 100 Trying"
    );
    let inv = dan.expect_invite();
    dan.refuse_invite(&inv, 486);
    let n = alice.expect_sipfrag();
    assert_eq!(n.request().unwrap().call_id(), a.call_id);
    assert_eq!(support::sipfrag(&n, &event), "SIP/2.0 486 Busy Here");
    assert_eq!(bob.bye(&mut b).status, 200);
    assert_eq!(carol.bye(&mut c).status, 200);
    assert_eq!(alice.bye(&mut a).status, 200);
}

#[test]
fn listed_members_appear_with_their_roles() {
    let focus = Focus::start(
        r#"
        [[groups]]
        uri = "sip:team@focus.example.com"
        [[groups.members]]
        uri = "sip:alice@example.com"
        role = "host"
        [[groups.members]]
        uri = "sip:bob@example.com"
        role = "moderator"
        [[groups.members]]
        uri = "sip:carol@example.com"
        role = "participant"
        "#,
    );
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_w, n) = watcher.subscribe_to(TEAM);
    let mut view = n.doc;
    let mut calls = Vec::new();
    for name in ["alice", "bob", "carol", "dave"] {
        let mut ua = Ua::udp(&focus, name);
        let (call, _) = ua.join(TEAM);
        calls.push((ua, call));
    }
    follow(&mut watcher, &mut view, |v| {
        v.conference_state.and_then(|s| s.user_count) == Some(4)
    });
    for (entity, role) in [
        ("sip:alice@example.com", "host"),
        ("sip:bob@example.com", "moderator"),
        ("sip:carol@example.com", "participant"),
        // Not listed: a participant.
        ("sip:dave@example.com", "participant"),
    ] {
        let u = user(&view, entity).unwrap_or_else(|| panic!("{entity} missing: {view:#?}"));
        assert_eq!(u.roles, vec![role.to_string()], "{entity}");
    }
    // The roles are what the focus enforces: the moderator may lock, the participant not.
    let (bob, bc) = &mut calls[1];
    assert_eq!(bob.control(bc, "INFO", r#"{"action":"lock"}"#).status, 200);
    let (carol, cc) = &mut calls[2];
    assert_eq!(
        carol.control(cc, "INFO", r#"{"action":"unlock"}"#).status,
        403
    );
    for (mut ua, mut call) in calls {
        assert_eq!(ua.bye(&mut call).status, 200);
    }
}

#[test]
fn the_provider_media_policy_bounds_every_group() {
    // The provider serves no media at all: the team group (no list of its own) follows.
    let focus = Focus::start(
        r#"
        [policy]
        allowed_media = []
        [[groups]]
        uri = "sip:team@focus.example.com"
        allow_signalling_only = false
        "#,
    );
    let mut ua = Ua::udp(&focus, "carol");
    let offer = support::Endpoint::new("carol", Setup::Active).offer();
    let r = try_join(&mut ua, TEAM, &offer, "");
    assert_refused(
        &r,
        488,
        "Not Acceptable Here",
        "304 focus.example.com \"No media stream the group serves was offered\"",
    );
    assert_eq!(rejections(&focus, "media"), Some(1.0));
}
