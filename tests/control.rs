//! Conference control end to end (RFC 4579, RFC 3515, RFC 4488, RFC 5368): REFER to the
//! conference URI makes the focus call a user (its own INVITE, progress reported by
//! `message/sipfrag` NOTIFYs and by the conference package) or hang up on one (`method=BYE`);
//! only hosts and moderators may. Moderation by INFO or MESSAGE with the control body: lock,
//! unlock, mute (enforced on MSRP), unmute, end.

mod support;

use cpm_focus::body::multipart::{Multipart, Part};
use cpm_focus::body::resource_lists::{self, Entry};
use cpm_focus::conference_info::{DisconnectionMethod, EndpointStatus, JoiningMethod};
use cpm_focus::sip::{HeaderName, Method, NameAddr};
use std::time::Duration;
use support::{
    assert_refused, endpoint_state, metric, sipfrag, subscription_state, uri_of, user, Call,
    ChatMember, Endpoint, Focus, Setup, Ua, Watcher, CONTROL, TEAM, WAIT,
};

/// alice and bob moderate the team group; carol is a listed participant.
const MODERATED: &str = r#"
[[groups]]
uri = "sip:team@focus.example.com"
[[groups.members]]
uri = "sip:alice@example.com"
role = "moderator"
[[groups.members]]
uri = "sip:bob@example.com"
role = "host"
[[groups.members]]
uri = "sip:carol@example.com"
role = "participant"
"#;

/// A window in which something must not happen.
const QUIET: Duration = Duration::from_millis(400);

/// The URI at which the focus reaches a test agent directly.
fn at(ua: &Ua) -> String {
    format!("sip:{}@{}", ua.name, ua.local)
}

/// The identity the focus gives an agent it called at [`at`].
fn called(ua: &Ua) -> String {
    format!("sip:{}@127.0.0.1", ua.name)
}

#[test]
fn refer_over_udp_makes_the_focus_call_the_target_and_report_progress() {
    let focus = Focus::start(MODERATED);
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    let mut chat = alice.join_chat(TEAM, Setup::Active);
    let mut alice_msrp = chat.connect();
    alice_msrp.bind();
    let mut dan = Ua::udp(&focus, "dan");

    // REFER to the conference URI, outside any dialog.
    let mut refer = Call::new(TEAM);
    let b = alice.refer(&mut refer, &format!("<{}>", at(&dan)), "");
    let accepted = alice.expect_final(&b);
    assert_eq!((accepted.status, &*accepted.reason), (202, "Accepted"));
    let focus_tag = accepted.to.tag().expect("202 creates a dialog").to_string();
    assert!(support::contact_of(&accepted).1, "Contact without ;isfocus");

    // The implicit subscription: 100 Trying first, inside the REFER's dialog.
    let n = alice.expect_sipfrag();
    assert_eq!(sipfrag(&n, "refer"), "SIP/2.0 100 Trying");
    let req = n.request().unwrap();
    assert_eq!(req.call_id(), refer.call_id);
    assert_eq!(req.from.tag(), Some(focus_tag.as_str()));
    assert_eq!(req.to.tag(), Some(refer.from_tag.as_str()));
    assert_eq!(subscription_state(&n), "active;expires=60");

    // The focus's INVITE: its own request, from the group, naming the referrer.
    let inv = dan.expect_invite();
    let r = inv.request();
    assert_eq!(r.uri.to_string(), at(&dan));
    assert_eq!(uri_of(inv.header(HeaderName::From).unwrap()), TEAM);
    assert_eq!(r.from.display.as_deref(), Some("Team"));
    assert!(r.from.tag().is_some(), "From without tag");
    assert_eq!(uri_of(inv.header(HeaderName::To).unwrap()), at(&dan));
    assert_eq!(r.to.tag(), None);
    let contact = NameAddr::parse(inv.header(HeaderName::Contact).unwrap()).unwrap();
    assert!(contact.param("isfocus").is_some(), "{contact:?}");
    assert_eq!(
        inv.header(HeaderName::ReferredBy),
        Some("<sip:alice@example.com>")
    );
    assert_eq!(inv.header(HeaderName::ContentType), Some("application/sdp"));
    let m = support::MsrpMedia::find(&inv.offer).unwrap();
    assert!(m.m_line.ends_with(" TCP/MSRP *"), "{}", m.m_line);
    assert_eq!(m.attr("setup"), Some("passive"), "{}", inv.offer);
    assert_ne!(
        r.call_id(),
        refer.call_id,
        "the INVITE is a call of its own"
    );

    // The roster: dialing-out, then alerting, then connected; dialed-out, referred by alice.
    let dan_id = called(&dan);
    w.until_status(&dan_id, EndpointStatus::DialingOut);
    let u = user(&w.view, &dan_id).unwrap();
    assert_eq!(u.roles, vec!["participant".to_string()]);
    let e = &u.endpoints[0];
    assert_eq!(e.entity, at(&dan));
    assert_eq!(e.joining_method, Some(JoiningMethod::DialedOut));
    assert_eq!(
        e.referred.as_ref().and_then(|r| r.by.as_deref()),
        Some("sip:alice@example.com")
    );
    dan.ring(&inv);
    let n = alice.expect_sipfrag();
    assert_eq!(sipfrag(&n, "refer"), "SIP/2.0 180 Ringing");
    assert_eq!(subscription_state(&n), "active;expires=60");
    w.until_status(&dan_id, EndpointStatus::Alerting);
    let (mut dan_call, mut dan_msrp) = dan.accept_chat(&inv);
    let n = alice.expect_sipfrag();
    assert_eq!(sipfrag(&n, "refer"), "SIP/2.0 200 OK");
    assert_eq!(subscription_state(&n), "terminated;reason=noresource");
    w.until_status(&dan_id, EndpointStatus::Connected);
    assert_eq!(w.view.conference_state.unwrap().user_count, Some(2));
    assert!(
        alice.next_sipfrag(QUIET).is_none(),
        "NOTIFY after the final one"
    );

    // dan is in the chat both ways.
    assert_eq!(dan_msrp.say("hello from dan").code, 200);
    let got = alice_msrp.expect_message();
    assert_eq!(
        (got.sender_uri(), got.text()),
        (dan_id.clone(), "hello from dan".into())
    );
    assert_eq!(alice_msrp.say("welcome").code, 200);
    let got = dan_msrp.expect_message();
    assert_eq!(got.sender_uri(), "sip:alice@example.com");
    assert_eq!(
        metric(&focus, "focus_dialouts_total{outcome=\"answered\"}"),
        1.0
    );
    // dan leaves by himself: a departure like any other.
    assert_eq!(dan.bye(&mut dan_call).status, 200);
    w.until(|v| {
        endpoint_state(v, &dan_id)
            == Some((
                EndpointStatus::Disconnected,
                Some(DisconnectionMethod::Departed),
            ))
    });
    assert_eq!(alice.bye(&mut chat.call).status, 200);
}

#[test]
fn refer_inside_a_moderators_dialog_notifies_inside_that_dialog() {
    let focus = Focus::start(MODERATED);
    // Over TCP this time: the NOTIFYs come back on alice's connection.
    let mut alice = Ua::tcp(&focus, "alice");
    let (mut call, _) = alice.join(TEAM);
    let mut dan = Ua::udp(&focus, "dan");
    let b = alice.refer(&mut call, &format!("<{}>", at(&dan)), "");
    let cseq = call.cseq;
    let r = alice.expect_final(&b);
    assert_eq!(r.status, 202);
    assert_eq!(
        r.to.tag(),
        call.to_tag.as_deref(),
        "202 in the INVITE dialog"
    );
    let event = format!("refer;id={cseq}");
    let mut frags = Vec::new();
    let mut last_cseq = 0;
    let mut check = |alice: &mut Ua, frags: &mut Vec<String>| {
        let n = alice.expect_sipfrag();
        let req = n.request().unwrap();
        assert_eq!(
            req.call_id(),
            call.call_id,
            "NOTIFY outside the INVITE dialog"
        );
        assert_eq!(req.from.tag(), call.to_tag.as_deref());
        assert_eq!(req.to.tag(), Some(call.from_tag.as_str()));
        assert!(req.cseq.seq > last_cseq, "CSeq must grow in the dialog");
        last_cseq = req.cseq.seq;
        frags.push(sipfrag(&n, &event));
        subscription_state(&n)
    };
    assert_eq!(check(&mut alice, &mut frags), "active;expires=60");
    let inv = dan.expect_invite();
    dan.ring(&inv);
    assert_eq!(check(&mut alice, &mut frags), "active;expires=60");
    let (mut dan_call, _msrp) = dan.accept_chat(&inv);
    assert_eq!(
        check(&mut alice, &mut frags),
        "terminated;reason=noresource"
    );
    assert_eq!(
        frags,
        [
            "SIP/2.0 100 Trying",
            "SIP/2.0 180 Ringing",
            "SIP/2.0 200 OK"
        ]
    );
    // The INVITE dialog goes on.
    assert_eq!(alice.options(TEAM).status, 200);
    assert_eq!(dan.bye(&mut dan_call).status, 200);
    assert_eq!(alice.bye(&mut call).status, 200);
}

#[test]
fn a_busy_target_is_reported_486_and_disconnected_busy() {
    let focus = Focus::start(MODERATED);
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    let (mut call, _) = alice.join(TEAM);
    let mut dan = Ua::udp(&focus, "dan");
    let mut refer = Call::new(TEAM);
    let b = alice.refer(&mut refer, &format!("<{}>", at(&dan)), "");
    assert_eq!(alice.expect_final(&b).status, 202);
    assert_eq!(
        sipfrag(&alice.expect_sipfrag(), "refer"),
        "SIP/2.0 100 Trying"
    );
    let inv = dan.expect_invite();
    // The transaction ACKs the 486 (same branch).
    dan.refuse_invite(&inv, 486);
    let n = alice.expect_sipfrag();
    assert_eq!(sipfrag(&n, "refer"), "SIP/2.0 486 Busy Here");
    assert_eq!(subscription_state(&n), "terminated;reason=noresource");
    let dan_id = called(&dan);
    w.until(|v| {
        endpoint_state(v, &dan_id)
            == Some((
                EndpointStatus::Disconnected,
                Some(DisconnectionMethod::Busy),
            ))
    });
    let e = &user(&w.view, &dan_id).unwrap().endpoints[0];
    assert_eq!(
        e.disconnection_info
            .as_ref()
            .and_then(|i| i.reason.as_deref()),
        Some("486 Busy Here")
    );
    assert_eq!(
        metric(&focus, "focus_dialouts_total{outcome=\"busy\"}"),
        1.0
    );
    // A decline (603) counts as busy too; a 404 is a failure.
    for (status, method, frag) in [
        (603, DisconnectionMethod::Busy, "SIP/2.0 603 Decline"),
        (404, DisconnectionMethod::Failed, "SIP/2.0 404 Not Found"),
    ] {
        let mut other = Ua::udp(&focus, &format!("u{status}"));
        let mut refer = Call::new(TEAM);
        let b = alice.refer(&mut refer, &format!("<{}>", at(&other)), "");
        assert_eq!(alice.expect_final(&b).status, 202);
        assert_eq!(
            sipfrag(&alice.expect_sipfrag(), "refer"),
            "SIP/2.0 100 Trying"
        );
        let inv = other.expect_invite();
        other.refuse_invite(&inv, status);
        assert_eq!(sipfrag(&alice.expect_sipfrag(), "refer"), frag);
        let id = called(&other);
        w.until(|v| endpoint_state(v, &id) == Some((EndpointStatus::Disconnected, Some(method))));
    }
    assert_eq!(
        metric(&focus, "focus_dialouts_total{outcome=\"busy\"}"),
        2.0
    );
    assert_eq!(
        metric(&focus, "focus_dialouts_total{outcome=\"failed\"}"),
        1.0
    );
    assert_eq!(alice.bye(&mut call).status, 200);
}

#[test]
fn an_unanswered_call_is_cancelled_after_the_ring_timeout() {
    let focus = Focus::start(&format!("{MODERATED}\n[policy]\ndial_out_timeout_s = 1\n"));
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    let (mut call, _) = alice.join(TEAM);
    let mut dan = Ua::udp(&focus, "dan");
    let mut refer = Call::new(TEAM);
    let b = alice.refer(&mut refer, &format!("<{}>", at(&dan)), "");
    assert_eq!(alice.expect_final(&b).status, 202);
    assert_eq!(
        sipfrag(&alice.expect_sipfrag(), "refer"),
        "SIP/2.0 100 Trying"
    );
    let inv = dan.expect_invite();
    dan.ring(&inv);
    assert_eq!(
        sipfrag(&alice.expect_sipfrag(), "refer"),
        "SIP/2.0 180 Ringing"
    );
    // dan never answers: about a second later the focus CANCELs.
    let cancel = dan.expect_request(Method::Cancel, WAIT);
    let waited = cancel.at - inv.rx.at;
    assert!(
        waited >= Duration::from_millis(900),
        "CANCEL after {waited:?}"
    );
    let c = cancel.request().unwrap();
    let i = inv.request();
    assert_eq!(c.uri.to_string(), i.uri.to_string());
    assert_eq!(c.call_id(), i.call_id());
    assert_eq!(c.branch(), i.branch(), "CANCEL shares the INVITE's branch");
    assert_eq!((c.cseq.seq, &c.cseq.method), (i.cseq.seq, &Method::Cancel));
    assert_eq!(c.to.tag(), None, "CANCEL repeats the INVITE's To");
    dan.respond(&cancel, 200);
    // Then the INVITE ends with 487, which the focus ACKs.
    dan.refuse_invite(&inv, 487);
    let n = alice.expect_sipfrag();
    assert_eq!(sipfrag(&n, "refer"), "SIP/2.0 487 Request Terminated");
    assert_eq!(subscription_state(&n), "terminated;reason=noresource");
    let dan_id = called(&dan);
    w.until(|v| {
        endpoint_state(v, &dan_id)
            == Some((
                EndpointStatus::Disconnected,
                Some(DisconnectionMethod::Failed),
            ))
    });
    assert_eq!(w.view.conference_state.unwrap().user_count, Some(1));
    assert_eq!(alice.bye(&mut call).status, 200);
}

#[test]
fn only_hosts_and_moderators_may_refer() {
    let focus = Focus::start(MODERATED);
    let mut carol = Ua::udp(&focus, "carol");
    let (mut call, _) = carol.join(TEAM);
    let mut dan = Ua::udp(&focus, "dan");
    let mut eve = Ua::udp(&focus, "eve");
    let add = "399 focus.example.com \"You may not add participants\"";
    let remove = "399 focus.example.com \"You may not remove participants\"";
    // A listed participant, inside its dialog and outside.
    let b = carol.refer(&mut call, &format!("<{}>", at(&dan)), "");
    assert_refused(&carol.expect_final(&b), 403, "Forbidden", add);
    let mut r = Call::new(TEAM);
    let b = carol.refer(&mut r, &format!("<{}>", at(&dan)), "");
    assert_refused(&carol.expect_final(&b), 403, "Forbidden", add);
    // Someone neither in the session nor in the group.
    let mut r = Call::new(TEAM);
    let b = eve.refer(&mut r, &format!("<{}>", at(&dan)), "");
    assert_refused(&eve.expect_final(&b), 403, "Forbidden", add);
    let mut r = Call::new(TEAM);
    let b = eve.refer(&mut r, "<sip:carol@example.com;method=BYE>", "");
    assert_refused(&eve.expect_final(&b), 403, "Forbidden", remove);
    // Removing someone else (removing herself is a leave, RFC 4579 §5.5: tests/dialogs.rs).
    let b = carol.refer(&mut call, "<sip:eve@example.com;method=BYE>", "");
    assert_refused(&carol.expect_final(&b), 403, "Forbidden", remove);
    assert_eq!(
        metric(
            &focus,
            "focus_policy_rejections_total{reason=\"not_authorized\"}"
        ),
        5.0
    );
    // Nobody was called, nobody removed, nobody told anything.
    dan.assert_quiet(QUIET, "no INVITE for a refused REFER");
    assert!(carol.next_sipfrag(Duration::ZERO).is_none());
    assert!(eve.next_sipfrag(Duration::ZERO).is_none());
    assert_eq!(
        metric(&focus, "focus_dialouts_total{outcome=\"started\"}"),
        0.0
    );
    assert_eq!(carol.bye(&mut call).status, 200);
}

#[test]
fn refer_with_method_bye_removes_the_participant() {
    let focus = Focus::start(MODERATED);
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let mut carol = Ua::tcp(&focus, "carol");
    let (c, _) = carol.join(TEAM);
    w.until(|v| v.conference_state.and_then(|s| s.user_count) == Some(2));

    let mut refer = Call::new(TEAM);
    let b = alice.refer(&mut refer, "<sip:carol@example.com;method=BYE>", "");
    assert_eq!(alice.expect_final(&b).status, 202);
    assert_eq!(
        sipfrag(&alice.expect_sipfrag(), "refer"),
        "SIP/2.0 100 Trying"
    );
    let bye = carol.expect_bye(&c);
    assert_eq!(bye.to.tag(), Some(c.from_tag.as_str()));
    assert_eq!(
        bye.headers.get_by_name("Reason"),
        Some("SIP;cause=200;text=\"removed by sip:alice@example.com\"")
    );
    let n = alice.expect_sipfrag();
    assert_eq!(sipfrag(&n, "refer"), "SIP/2.0 200 OK");
    assert_eq!(subscription_state(&n), "terminated;reason=noresource");
    w.until(|v| {
        endpoint_state(v, "sip:carol@example.com")
            == Some((
                EndpointStatus::Disconnected,
                Some(DisconnectionMethod::Booted),
            ))
    });
    let e = &user(&w.view, "sip:carol@example.com").unwrap().endpoints[0];
    assert_eq!(
        e.disconnection_info
            .as_ref()
            .and_then(|i| i.reason.as_deref()),
        Some("removed by sip:alice@example.com")
    );
    // carol's dialog is gone.
    let mut gone = c.clone();
    assert_eq!(carol.bye(&mut gone).status, 481);

    // Nobody by that name: the sipfrag says 481.
    let mut refer = Call::new(TEAM);
    let b = alice.refer(&mut refer, "<sip:nobody@example.com;method=BYE>", "");
    assert_eq!(alice.expect_final(&b).status, 202);
    assert_eq!(
        sipfrag(&alice.expect_sipfrag(), "refer"),
        "SIP/2.0 100 Trying"
    );
    let n = alice.expect_sipfrag();
    assert_eq!(
        sipfrag(&n, "refer"),
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    );
    assert_eq!(subscription_state(&n), "terminated;reason=noresource");
    assert_eq!(alice.bye(&mut a).status, 200);
}

#[test]
fn refer_sub_false_gets_200_and_no_notify() {
    let focus = Focus::start(MODERATED);
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let mut dan = Ua::udp(&focus, "dan");
    let mut refer = Call::new(TEAM);
    let b = alice.refer(
        &mut refer,
        &format!("<{}>", at(&dan)),
        "Refer-Sub: false\r\nSupported: norefersub\r\n",
    );
    let r = alice.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (200, "OK"));
    assert_eq!(r.headers.get(HeaderName::ReferSub), Some("false"));
    let inv = dan.expect_invite();
    dan.ring(&inv);
    let (mut dc, _msrp) = dan.accept_chat(&inv);
    // The conference package reports the outcome; the referrer gets no NOTIFY.
    w.until_status(&called(&dan), EndpointStatus::Connected);
    assert!(
        alice.next_sipfrag(QUIET).is_none(),
        "a refer NOTIFY despite Refer-Sub: false"
    );
    alice.assert_quiet(Duration::ZERO, "nothing else either");
    // The same in the moderator's dialog.
    let mut erin = Ua::udp(&focus, "erin");
    let b = alice.refer(&mut a, &format!("<{}>", at(&erin)), "Refer-Sub: false\r\n");
    let r = alice.expect_final(&b);
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get(HeaderName::ReferSub), Some("false"));
    let inv = erin.expect_invite();
    erin.refuse_invite(&inv, 486);
    w.until(|v| {
        endpoint_state(v, &called(&erin)).is_some_and(|s| s.0 == EndpointStatus::Disconnected)
    });
    assert!(alice.next_sipfrag(QUIET).is_none());
    assert_eq!(dan.bye(&mut dc).status, 200);
    assert_eq!(alice.bye(&mut a).status, 200);
}

/// A RFC 5368 body: a multipart/mixed with the URI list under Content-ID `cid`.
fn uri_list_body(cid: &str, uris: &[String]) -> (String, String) {
    let entries: Vec<Entry> = uris.iter().map(|u| Entry::new(u.clone())).collect();
    let xml = resource_lists::render(&entries);
    let body = Multipart::mixed(vec![Part::new(resource_lists::MIME_TYPE, xml)
        .with_disposition("recipient-list")
        .with_content_id(cid)]);
    let (ct, bytes) = body.encode_with_new_boundary().expect("encoding the list");
    (ct, String::from_utf8(bytes.to_vec()).unwrap())
}

#[test]
fn multiple_refer_adds_and_removes_several_targets() {
    let focus = Focus::start(MODERATED);
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let mut carol = Ua::udp(&focus, "carol");
    let (c, _) = carol.join(TEAM);
    let mut dan = Ua::udp(&focus, "dan");
    let mut erin = Ua::udp(&focus, "erin");
    let targets = [
        at(&dan),
        at(&erin),
        "sip:carol@example.com;method=BYE".to_string(),
    ];
    let (ct, body) = uri_list_body("targets@example.com", &targets);

    // Without Require: multiple-refer the request is refused.
    let mut refer = Call::new(TEAM);
    let b = alice.send_request(
        &mut refer,
        "REFER",
        "Refer-To: <cid:targets@example.com>\r\n",
        Some((&ct, &body)),
    );
    let r = alice.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (421, "Extension Required"));
    assert_eq!(r.headers.get(HeaderName::Require), Some("multiple-refer"));
    dan.assert_quiet(QUIET, "no INVITE after a 421");

    let mut refer = Call::new(TEAM);
    let b = alice.send_request(
        &mut refer,
        "REFER",
        "Refer-To: <cid:targets@example.com>\r\nRequire: multiple-refer\r\nRefer-Sub: false\r\n",
        Some((&ct, &body)),
    );
    let r = alice.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (202, "Accepted"));
    let dan_inv = dan.expect_invite();
    let erin_inv = erin.expect_invite();
    for inv in [&dan_inv, &erin_inv] {
        assert_eq!(
            inv.header(HeaderName::ReferredBy),
            Some("<sip:alice@example.com>")
        );
    }
    let bye = carol.expect_bye(&c);
    assert!(
        bye.headers
            .get_by_name("Reason")
            .is_some_and(|r| r.contains("removed by sip:alice@example.com")),
        "{bye:?}"
    );
    dan.ring(&dan_inv);
    let (mut dc, _dm) = dan.accept_chat(&dan_inv);
    erin.refuse_invite(&erin_inv, 486);
    w.until(|v| {
        endpoint_state(v, &called(&dan)).is_some_and(|s| s.0 == EndpointStatus::Connected)
            && endpoint_state(v, &called(&erin))
                == Some((
                    EndpointStatus::Disconnected,
                    Some(DisconnectionMethod::Busy),
                ))
            && endpoint_state(v, "sip:carol@example.com")
                == Some((
                    EndpointStatus::Disconnected,
                    Some(DisconnectionMethod::Booted),
                ))
    });
    for id in [called(&dan), called(&erin)] {
        let e = &user(&w.view, &id).unwrap().endpoints[0];
        assert_eq!(e.joining_method, Some(JoiningMethod::DialedOut));
    }
    assert!(
        alice.next_sipfrag(QUIET).is_none(),
        "no implicit subscription for a multiple REFER"
    );
    // A plain participant may not send one either.
    let mut frank = Ua::udp(&focus, "frank");
    let mut refer = Call::new(TEAM);
    let b = frank.send_request(
        &mut refer,
        "REFER",
        "Refer-To: <cid:targets@example.com>\r\nRequire: multiple-refer\r\n",
        Some((&ct, &body)),
    );
    assert_refused(
        &frank.expect_final(&b),
        403,
        "Forbidden",
        "399 focus.example.com \"You may not add participants\"",
    );
    assert_eq!(dan.bye(&mut dc).status, 200);
    assert_eq!(alice.bye(&mut a).status, 200);
}

#[test]
fn a_moderator_locks_and_unlocks_the_group() {
    let focus = Focus::start(MODERATED);
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    assert_eq!(w.view.conference_state.unwrap().locked, Some(false));
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let r = alice.control(&mut a, "INFO", r#"{"action":"lock"}"#);
    assert_eq!((r.status, &*r.reason), (200, "OK"));
    w.until(|v| v.conference_state.and_then(|s| s.locked) == Some(true));
    // Nobody new gets in, not even a listed participant...
    for name in ["dan", "carol"] {
        let mut ua = Ua::udp(&focus, name);
        let mut call = Call::new(TEAM);
        let b = ua.invite(&mut call, Some(support::AUDIO_OFFER));
        assert_refused(
            &ua.expect_final(&b),
            403,
            "Forbidden",
            "399 focus.example.com \"The group is locked\"",
        );
    }
    assert_eq!(
        metric(&focus, "focus_policy_rejections_total{reason=\"locked\"}"),
        2.0
    );
    // ...but the group's hosts and moderators do.
    let mut bob = Ua::udp(&focus, "bob");
    let (mut b, _) = bob.join(TEAM);
    assert_eq!(bob.bye(&mut b).status, 200);
    // Unlock, this time by MESSAGE.
    let r = alice.control(&mut a, "MESSAGE", r#"{"action":"unlock"}"#);
    assert_eq!(r.status, 200);
    w.until(|v| v.conference_state.and_then(|s| s.locked) == Some(false));
    let mut dan = Ua::udp(&focus, "dan");
    let (mut d, _) = dan.join(TEAM);
    assert_eq!(
        metric(&focus, "focus_moderation_actions_total{action=\"lock\"}"),
        1.0
    );
    assert_eq!(dan.bye(&mut d).status, 200);
    assert_eq!(alice.bye(&mut a).status, 200);
}

#[test]
fn a_muted_participant_is_refused_on_msrp_until_unmuted() {
    let focus = Focus::start(MODERATED);
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut alice = ChatMember::join(Ua::udp(&focus, "alice"), TEAM);
    let mut carol = ChatMember::join(Ua::udp(&focus, "carol"), TEAM);
    let mut dan = ChatMember::join(Ua::udp(&focus, "dan"), TEAM);
    let carol_id = "sip:carol@example.com";
    let r = alice.ua.control(
        &mut alice.call,
        "INFO",
        r#"{"action":"mute","target":"sip:carol@example.com"}"#,
    );
    assert_eq!(r.status, 200);
    w.until_status(carol_id, EndpointStatus::MutedViaFocus);
    // carol is still in (muted is present): user-count unchanged.
    assert_eq!(w.view.conference_state.unwrap().user_count, Some(3));
    let r = carol.msrp.say("can anyone hear me?");
    assert_eq!(r.code, 403, "{r:?}");
    alice
        .msrp
        .assert_no_message(QUIET, "a muted participant's message");
    dan.msrp
        .assert_no_message(Duration::ZERO, "a muted participant's message");
    // The others still talk, and carol still hears them.
    assert_eq!(dan.msrp.say("dan here").code, 200);
    assert_eq!(alice.msrp.expect_message().text(), "dan here");
    assert_eq!(carol.msrp.expect_message().text(), "dan here");
    assert_eq!(
        metric(
            &focus,
            "focus_msrp_delivery_failures_total{reason=\"muted\"}"
        ),
        1.0
    );
    // Unmute (by MESSAGE, naming carol in angle brackets).
    let r = alice.ua.control(
        &mut alice.call,
        "MESSAGE",
        r#"{"action":"unmute","target":"<sip:carol@example.com>"}"#,
    );
    assert_eq!(r.status, 200);
    w.until_status(carol_id, EndpointStatus::Connected);
    assert_eq!(carol.msrp.say("back").code, 200);
    let got = alice.msrp.expect_message();
    assert_eq!(
        (got.sender_uri(), got.text()),
        (carol_id.into(), "back".into())
    );
    assert_eq!(dan.msrp.expect_message().text(), "back");
    for m in [&mut alice, &mut carol, &mut dan] {
        assert_eq!(m.ua.bye(&mut m.call).status, 200);
    }
}

#[test]
fn a_muted_participant_stays_muted_after_a_reinvite() {
    let focus = Focus::start(MODERATED);
    let mut alice = ChatMember::join(Ua::udp(&focus, "alice"), TEAM);
    let mut carol_ua = Ua::udp(&focus, "carol");
    let mut carol = carol_ua.join_chat(TEAM, Setup::Active);
    let mut carol_msrp = carol.connect();
    carol_msrp.bind();
    let r = alice.ua.control(
        &mut alice.call,
        "INFO",
        r#"{"action":"mute","target":"sip:carol@example.com"}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(carol_msrp.say("muted?").code, 403);
    // carol moves her MSRP end (re-INVITE with a new path): still muted.
    drop(carol_msrp);
    carol_ua.reinvite_chat(&mut carol, Endpoint::new("carol", Setup::Active));
    let mut carol_msrp = carol.connect();
    carol_msrp.bind();
    let r = carol_msrp.say("and now?");
    assert_eq!(r.code, 403, "a re-INVITE lifted the mute: {r:?}");
    alice
        .msrp
        .assert_no_message(QUIET, "a muted participant's message");
    assert_eq!(carol_ua.bye(&mut carol.call).status, 200);
    assert_eq!(alice.ua.bye(&mut alice.call).status, 200);
}

#[test]
fn a_moderator_ends_the_session_for_everyone() {
    let focus = Focus::start(MODERATED);
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let mut carol = Ua::tcp(&focus, "carol");
    let (c, _) = carol.join(TEAM);
    let mut dan = Ua::udp(&focus, "dan");
    let (d, _) = dan.join(TEAM);
    // One more being called when the session ends: the focus gives up on it (CANCEL).
    let mut erin = Ua::udp(&focus, "erin");
    let mut refer = Call::new(TEAM);
    let b = alice.refer(
        &mut refer,
        &format!("<{}>", at(&erin)),
        "Refer-Sub: false\r\n",
    );
    assert_eq!(alice.expect_final(&b).status, 200);
    let inv = erin.expect_invite();
    erin.ring(&inv);
    w.until_status(&called(&erin), EndpointStatus::Alerting);

    let r = alice.control(&mut a, "INFO", r#"{"action":"end"}"#);
    assert_eq!(r.status, 200);
    let reason = "SIP;cause=200;text=\"conference ended by sip:alice@example.com\"";
    for (ua, call) in [(&mut carol, &c), (&mut dan, &d), (&mut alice, &a)] {
        let bye = ua.expect_bye(call);
        assert_eq!(
            bye.headers.get_by_name("Reason"),
            Some(reason),
            "{}",
            ua.name
        );
    }
    let cancel = erin.expect_request(Method::Cancel, WAIT);
    erin.respond(&cancel, 200);
    erin.refuse_invite(&inv, 487);
    w.until(|v| {
        [
            "sip:alice@example.com",
            "sip:carol@example.com",
            "sip:dan@example.com",
        ]
        .iter()
        .all(|id| {
            endpoint_state(v, id)
                == Some((
                    EndpointStatus::Disconnected,
                    Some(DisconnectionMethod::Booted),
                ))
        }) && endpoint_state(v, &called(&erin)).is_some_and(|s| s.0 == EndpointStatus::Disconnected)
    });
    let state = w.view.conference_state.unwrap();
    assert_eq!((state.user_count, state.active), (Some(0), Some(false)));
    // Everyone's dialog is gone.
    assert_eq!(alice.bye(&mut a).status, 481);
}

#[test]
fn control_requests_are_checked() {
    let focus = Focus::start(MODERATED);
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let mut carol = Ua::udp(&focus, "carol");
    let (mut c, _) = carol.join(TEAM);
    // A plain participant may not moderate: 403 and a Warning.
    for body in [
        r#"{"action":"lock"}"#,
        r#"{"action":"end"}"#,
        r#"{"action":"mute","target":"sip:alice@example.com"}"#,
    ] {
        for method in ["INFO", "MESSAGE"] {
            assert_refused(
                &carol.control(&mut c, method, body),
                403,
                "Forbidden",
                "399 focus.example.com \"You may not moderate this group\"",
            );
        }
    }
    assert_eq!(
        metric(
            &focus,
            "focus_policy_rejections_total{reason=\"not_authorized\"}"
        ),
        6.0
    );
    // Malformed requests from a moderator.
    for body in [
        "{not json",
        r#"{"action":"lock","extra":1}"#,
        r#"{"target":"sip:carol@example.com"}"#,
    ] {
        let r = alice.control(&mut a, "INFO", body);
        assert_eq!(
            (r.status, &*r.reason),
            (400, "Malformed control request"),
            "{body}"
        );
    }
    let r = alice.control(&mut a, "INFO", r#"{"action":"dance"}"#);
    assert_eq!((r.status, &*r.reason), (400, "Unknown control action"));
    let r = alice.control(&mut a, "INFO", r#"{"action":"mute"}"#);
    assert_eq!(
        (r.status, &*r.reason),
        (400, "Control action needs a target")
    );
    let r = alice.control(
        &mut a,
        "INFO",
        r#"{"action":"mute","target":"sip:nobody@example.com"}"#,
    );
    assert_eq!((r.status, &*r.reason), (404, "No such participant"));
    // Another body type: 415 with the one accepted.
    for method in ["INFO", "MESSAGE"] {
        let b = alice.send_request(&mut a, method, "", Some(("text/plain", "lock")));
        let r = alice.expect_final(&b);
        assert_eq!(r.status, 415, "{method}");
        assert_eq!(r.headers.get(HeaderName::Accept), Some(CONTROL), "{method}");
    }
    // None of it changed anything: carol can still talk, nobody is locked out.
    let mut dan = Ua::udp(&focus, "dan");
    let (mut d, _) = dan.join(TEAM);
    assert_eq!(dan.bye(&mut d).status, 200);
    assert_eq!(carol.bye(&mut c).status, 200);
    assert_eq!(alice.bye(&mut a).status, 200);
}

#[test]
fn a_refer_the_group_policy_refuses_is_reported_in_the_sipfrag() {
    let focus = Focus::start(&format!(
        "{MODERATED}\n[[groups]]\nuri = \"{TEAM}\"\nmax_participants = 1\n\n[policy]\nmax_list_size = 2\n"
    ));
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let mut dan = Ua::udp(&focus, "dan");
    // The group is full: the focus does not call dan, and says why.
    let b = alice.refer(&mut a, &format!("<{}>", at(&dan)), "");
    assert_eq!(alice.expect_final(&b).status, 202);
    let event = format!("refer;id={}", a.cseq);
    assert_eq!(
        sipfrag(&alice.expect_sipfrag(), &event),
        "SIP/2.0 100 Trying"
    );
    let n = alice.expect_sipfrag();
    assert_eq!(sipfrag(&n, &event), "SIP/2.0 486 Busy Here");
    assert_eq!(subscription_state(&n), "terminated;reason=noresource");
    dan.assert_quiet(QUIET, "no INVITE into a full group");
    assert_eq!(
        metric(&focus, "focus_policy_rejections_total{reason=\"full\"}"),
        1.0
    );
    // A list longer than the provider allows is refused whole.
    let targets: Vec<String> = ["x", "y", "z"]
        .iter()
        .map(|u| format!("sip:{u}@127.0.0.1:9"))
        .collect();
    let (ct, body) = uri_list_body("many@example.com", &targets);
    let b = alice.send_request(
        &mut a,
        "REFER",
        "Refer-To: <cid:many@example.com>\r\nRequire: multiple-refer\r\n",
        Some((&ct, &body)),
    );
    assert_refused(
        &alice.expect_final(&b),
        403,
        "Forbidden",
        "399 focus.example.com \"At most 2 targets per request\"",
    );
    assert_eq!(
        metric(
            &focus,
            "focus_policy_rejections_total{reason=\"list_too_long\"}"
        ),
        1.0
    );
    assert_eq!(alice.bye(&mut a).status, 200);
}

#[test]
fn who_may_add_and_remove_follows_the_group_policy() {
    // Any listed member may add; only hosts may remove.
    let focus = Focus::start(&format!(
        "{MODERATED}\n[[groups]]\nuri = \"{TEAM}\"\nadd = \"members\"\nremove = \"hosts\"\n"
    ));
    let mut carol = Ua::udp(&focus, "carol");
    let (mut c, _) = carol.join(TEAM);
    let mut frank = Ua::udp(&focus, "frank");
    let (mut f, _) = frank.join(TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let mut dan = Ua::udp(&focus, "dan");
    // frank is in the session but not listed: he may not add.
    let b = frank.refer(&mut f, &format!("<{}>", at(&dan)), "Refer-Sub: false\r\n");
    assert_refused(
        &frank.expect_final(&b),
        403,
        "Forbidden",
        "399 focus.example.com \"You may not add participants\"",
    );
    // carol is a listed participant: she may.
    let b = carol.refer(&mut c, &format!("<{}>", at(&dan)), "Refer-Sub: false\r\n");
    assert_eq!(carol.expect_final(&b).status, 200);
    let inv = dan.expect_invite();
    assert_eq!(
        inv.header(HeaderName::ReferredBy),
        Some("<sip:carol@example.com>")
    );
    dan.refuse_invite(&inv, 486);
    // alice moderates, but removing is for hosts.
    let b = alice.refer(&mut a, "<sip:frank@example.com;method=BYE>", "");
    assert_refused(
        &alice.expect_final(&b),
        403,
        "Forbidden",
        "399 focus.example.com \"You may not remove participants\"",
    );
    // bob is a host: he may remove, from outside the session too.
    let mut bob = Ua::udp(&focus, "bob");
    let mut refer = Call::new(TEAM);
    let b = bob.refer(&mut refer, "<sip:frank@example.com;method=BYE>", "");
    assert_eq!(bob.expect_final(&b).status, 202);
    frank.expect_bye(&f);
    assert_eq!(
        sipfrag(&bob.expect_sipfrag(), "refer"),
        "SIP/2.0 100 Trying"
    );
    assert_eq!(sipfrag(&bob.expect_sipfrag(), "refer"), "SIP/2.0 200 OK");
    assert_eq!(
        metric(
            &focus,
            "focus_policy_rejections_total{reason=\"not_authorized\"}"
        ),
        2.0
    );
    assert_eq!(carol.bye(&mut c).status, 200);
    assert_eq!(alice.bye(&mut a).status, 200);
}

#[test]
fn a_target_named_with_transport_tcp_is_called_over_tcp() {
    let focus = Focus::start(MODERATED);
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    // dan listens on TCP on the port of his UDP socket.
    let mut dan = Ua::udp(&focus, "dan");
    let target = format!("sip:dan@{};transport=tcp", dan.local);
    let b = alice.refer(&mut a, &format!("<{target}>"), "Refer-Sub: false\r\n");
    assert_eq!(alice.expect_final(&b).status, 200);
    let inv = dan.expect_invite();
    assert!(
        matches!(inv.rx.origin, support::Origin::Tcp(_)),
        "INVITE came over {:?}",
        inv.rx.origin
    );
    let r = inv.request();
    assert_eq!(r.uri.to_string(), target);
    let via = r.headers.get(HeaderName::Via).unwrap_or("");
    assert!(via.starts_with("SIP/2.0/TCP "), "Via {via}");
    let contact = inv.header(HeaderName::Contact).unwrap();
    assert!(contact.contains("transport=tcp"), "Contact {contact}");
    dan.ring(&inv);
    let (mut dc, _msrp) = dan.accept_chat(&inv);
    w.until_status(&called(&dan), EndpointStatus::Connected);
    assert_eq!(dan.bye(&mut dc).status, 200);
    assert_eq!(alice.bye(&mut a).status, 200);
}

#[test]
fn a_call_answered_after_the_focus_cancelled_it_is_hung_up() {
    let focus = Focus::start(MODERATED);
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let mut dan = Ua::udp(&focus, "dan");
    let mut add = Call::new(TEAM);
    let b = alice.refer(&mut add, &format!("<{}>", at(&dan)), "");
    assert_eq!(alice.expect_final(&b).status, 202);
    let inv = dan.expect_invite();
    dan.ring(&inv);
    w.until_status(&called(&dan), EndpointStatus::Alerting);
    // alice changes her mind while dan's phone rings: the focus CANCELs...
    let mut remove = Call::new(TEAM);
    let b = alice.refer(
        &mut remove,
        &format!("<{};method=BYE>", called(&dan)),
        "Refer-Sub: false\r\n",
    );
    assert_eq!(alice.expect_final(&b).status, 200);
    let cancel = dan.expect_request(Method::Cancel, WAIT);
    // ...but dan had already picked up: his 200 crosses the CANCEL.
    let end = Endpoint::new("dan", Setup::Active);
    let (dc, _ack) = dan.accept(&inv, &end);
    dan.respond(&cancel, 200);
    // The focus does not keep a call it cancelled: it ends it at once.
    let bye = dan.expect_bye(&dc);
    assert!(bye.headers.get_by_name("Reason").is_some(), "{bye:?}");
    w.until(|v| {
        endpoint_state(v, &called(&dan))
            == Some((
                EndpointStatus::Disconnected,
                Some(DisconnectionMethod::Failed),
            ))
    });
    assert_eq!(w.view.conference_state.unwrap().user_count, Some(1));
    let frags: Vec<String> = std::iter::from_fn(|| alice.next_sipfrag(QUIET))
        .map(|n| sipfrag(&n, "refer"))
        .collect();
    assert_eq!(
        frags,
        [
            "SIP/2.0 100 Trying",
            "SIP/2.0 180 Ringing",
            "SIP/2.0 487 Request Terminated"
        ],
        "the referrer must not be told the call succeeded"
    );
    assert_eq!(alice.bye(&mut a).status, 200);
}

#[test]
fn a_conference_refuses_to_join_itself() {
    let focus = Focus::start(MODERATED);
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut alice = ChatMember::join(Ua::udp(&focus, "alice"), TEAM);
    let mut carol = ChatMember::join(Ua::udp(&focus, "carol"), TEAM);
    // A REFER naming the conference's own address: the focus would call itself in, and
    // every chat message would then go round forever. It is refused before any INVITE.
    let own = format!("sip:team@{}", focus.sip_udp);
    let b = alice.ua.refer(&mut alice.call, &format!("<{own}>"), "");
    assert_refused(
        &alice.ua.expect_final(&b),
        482,
        "Loop Detected",
        "399 focus.example.com \"A request cannot make the focus send to itself\"",
    );
    assert!(
        alice.ua.next_sipfrag(QUIET).is_none(),
        "no implicit subscription"
    );
    assert_eq!(
        metric(&focus, "focus_sip_requests_sent_total{method=\"INVITE\"}"),
        0.0
    );
    assert!(user(&w.view, TEAM).is_none(), "{:#?}", w.view);
    assert_eq!(
        metric(&focus, "focus_policy_rejections_total{reason=\"loop\"}"),
        1.0
    );
    // Chat goes on, each message once.
    assert_eq!(alice.msrp.say("still here").code, 200);
    assert_eq!(carol.msrp.expect_message().text(), "still here");
    carol
        .msrp
        .assert_no_message(QUIET, "a message delivered twice");
    alice.msrp.assert_no_message(Duration::ZERO, "an echo");
    w.until(|v| v.conference_state.and_then(|s| s.user_count) == Some(2));
    for m in [&mut alice, &mut carol] {
        assert_eq!(m.ua.bye(&mut m.call).status, 200);
    }
}
