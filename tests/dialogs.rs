//! Dialogs bound to their parties (issue 14, items 1 and 5), end to end over real sockets.
//! The attacker plays from 127.0.0.66 (nothing trusted) and knows its victim's Call-ID and
//! tags: a BYE with another From tag is no request of the dialog (481); a BYE, re-INVITE or
//! SUBSCRIBE with the right tags from another flow is refused (403 with a Warning); the victim
//! stays, its media where it was, and its own flow still works. Ordinary subscribers never see
//! dialog identifiers. A participant may leave by REFER `method=BYE` naming itself; a join from
//! another focus (`;isfocus`) follows `policy.cascade`.

mod support;

use cpm_focus::conference_info::{DisconnectionMethod, EndpointStatus};
use cpm_focus::push_to_talk::bfcp::RequestStatus;
use cpm_focus::sip::{HeaderName, Method, Response};
use std::net::UdpSocket;
use std::time::Duration;
use support::talk::talk_offer;
use support::{endpoint_state, follow, user, Call, Focus, Ua, AUDIO_OFFER, TEAM, WAIT};

const TALK: &str = "sip:talk@focus.example.com";
/// The attacker's address: on loopback, but not the participants' and not trusted.
const ATTACKER: &str = "127.0.0.66";
/// Nothing trusted: the participants on 127.0.0.1 are ordinary agents, not a SIP core (a
/// trusted host's dialogs are not bound to a flow, and the embedded configuration trusts
/// loopback).
const NOTHING_TRUSTED: &str = "[policy]\ntrusted_hosts = []\n";

/// The Warning of a request refused for coming on another flow.
const OFF_FLOW: &str =
    "399 focus.example.com \"Requests in this dialog must come on the flow that set it up\"";

/// A focus serving audio with floor control in the open group `talk`.
fn talk_focus() -> Focus {
    Focus::start(
        r#"
[policy]
allowed_media = ["msrp", "audio"]
trusted_hosts = []
[rtp]
silence_timeout_s = 60
[[groups]]
uri = "sip:talk@focus.example.com"
codecs = ["PCMU/8000"]
"#,
    )
}

fn rejections(focus: &Focus, reason: &str) -> f64 {
    focus
        .metric(&format!(
            "focus_dialog_rejections_total{{reason=\"{reason}\"}}"
        ))
        .unwrap_or(0.0)
}

fn assert_off_flow(r: &Response) {
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.headers.get(HeaderName::Warning), Some(OFF_FLOW), "{r:?}");
}

/// The victim's dialog as the attacker writes it: the right Call-ID and tags, a CSeq far
/// ahead (a forged request must not be refused merely for its CSeq).
fn forged(victim: &Call) -> Call {
    let mut c = victim.clone();
    c.cseq += 100;
    c
}

#[test]
fn a_victims_dialog_cannot_be_ended_or_moved_by_anyone_else() {
    let focus = talk_focus();
    let mut ua = Ua::udp(&focus, "alice");
    let mut alice = ua.join_talk(TALK);
    alice.connect_bfcp();
    let mut ub = Ua::udp(&focus, "bob");
    let mut bob = ub.join_talk(TALK);
    bob.connect_bfcp();
    // The attacker calls itself alice (From is anyone's to write) and knows her dialog.
    let mut mallory = Ua::udp_from(&focus, "alice", ATTACKER);

    // Another From tag: not her dialog at all.
    let mut wrong = forged(&alice.call);
    wrong.from_tag = "mallory".into();
    let r = mallory.bye(&mut wrong);
    assert_eq!(r.status, 481, "{r:?}");
    // The right tags, from another address: refused.
    let r = mallory.bye(&mut forged(&alice.call));
    assert_off_flow(&r);
    // A re-INVITE moving her audio to the attacker's port: refused.
    let stolen = UdpSocket::bind((ATTACKER, 0)).unwrap();
    let offer = talk_offer(
        stolen.local_addr().unwrap().port(),
        &[(0, "PCMU/8000")],
        "alice-audio",
        true,
    )
    .replace("127.0.0.1", ATTACKER);
    let mut reinvite = forged(&alice.call);
    let b = mallory.invite(&mut reinvite, Some(&offer));
    let r = mallory.expect_final(&b);
    mallory.ack_non_2xx(&b, &r);
    assert_off_flow(&r);
    focus.wait_metric(
        "focus_dialog_rejections_total{reason=\"remote_tag\"}",
        WAIT,
        |v| v >= 1.0,
    );
    focus.wait_metric(
        "focus_dialog_rejections_total{reason=\"flow\"}",
        WAIT,
        |v| v >= 2.0,
    );

    // Her media is where it was: Bob's talk burst reaches her, not the attacker.
    let (_, status, _) = bob.request_floor();
    assert_eq!(status, RequestStatus::Granted);
    bob.send_rtp(5);
    let got = alice.expect_rtp(5);
    assert!(String::from_utf8_lossy(&got[0].payload).starts_with("bob "));
    stolen
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    assert!(
        stolen.recv(&mut buf).is_err(),
        "the attacker received the conference"
    );

    // Her own flow still works: a re-INVITE, then her BYE (481 had she been removed).
    let b = ua.invite(
        &mut alice.call,
        Some(&talk_offer(
            alice.rtp.local_addr().unwrap().port(),
            &[(0, "PCMU/8000")],
            "alice-audio",
            true,
        )),
    );
    let ok = ua.expect_final(&b);
    assert_eq!(ok.status, 200, "{ok:?}");
    ua.ack(&alice.call);
    assert_eq!(ua.bye(&mut alice.call).status, 200);
    assert_eq!(ub.bye(&mut bob.call).status, 200);
}

#[test]
fn over_tcp_a_dialog_is_bound_to_its_connection() {
    let focus = Focus::start(NOTHING_TRUSTED);
    let mut carol = Ua::tcp(&focus, "carol");
    let (mut call, _) = carol.join(TEAM);
    // The same address, another connection.
    let mut other = Ua::tcp(&focus, "carol");
    let r = other.bye(&mut forged(&call));
    assert_off_flow(&r);
    assert_eq!(rejections(&focus, "flow"), 1.0);
    assert_eq!(carol.bye(&mut call).status, 200);
}

#[test]
fn a_subscription_is_bound_to_its_flow_too() {
    let focus = Focus::start(NOTHING_TRUSTED);
    let mut watcher = Ua::udp(&focus, "watcher");
    let (sub, first) = watcher.subscribe_to(TEAM);
    let mut view = first.doc;
    let mut mallory = Ua::udp_from(&focus, "watcher", ATTACKER);
    // Ending the subscription, or moving it to the attacker (its Contact is a target refresh).
    let r = mallory.subscribe(&mut forged(&sub), Some(0));
    assert_off_flow(&r);
    let r = mallory.subscribe(&mut forged(&sub), Some(600));
    assert_off_flow(&r);
    // The watcher still hears about a join.
    let mut ua = Ua::udp(&focus, "dave");
    let (mut call, _) = ua.join(TEAM);
    follow(&mut watcher, &mut view, |v| {
        user(v, "sip:dave@example.com").is_some()
    });
    mallory.assert_quiet(Duration::from_millis(300), "no NOTIFY for the attacker");
    assert_eq!(ua.bye(&mut call).status, 200);
}

#[test]
fn ordinary_subscribers_get_the_roster_without_dialog_identifiers() {
    let focus = Focus::start(NOTHING_TRUSTED);
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_sub, n) = watcher.subscribe_to(TEAM);
    let body = String::from_utf8_lossy(&n.request.body).into_owned();
    for secret in [a.call_id.as_str(), a.from_tag.as_str(), "call-info"] {
        assert!(!body.contains(secret), "{secret} in\n{body}");
    }
    // Everything else is there.
    let u = user(&n.doc, "sip:alice@example.com").expect("alice in the roster");
    let e = &u.endpoints[0];
    assert_eq!(e.entity, alice.contact_uri());
    assert_eq!(e.status, Some(EndpointStatus::Connected));
    assert!(e.joining_method.is_some() && e.joining_info.is_some());
    assert!(e.call_info.is_none());
    assert_eq!(n.doc.conference_state.and_then(|s| s.user_count), Some(1));
    assert_eq!(alice.bye(&mut a).status, 200);
}

#[test]
fn trusted_core_subscribers_may_get_dialog_identifiers_when_configured() {
    let focus = Focus::start(
        r#"
[policy]
trusted_hosts = ["127.0.0.1"]
[subscriptions]
call_info_to_trusted = true
"#,
    );
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let mut core = Ua::udp(&focus, "core");
    let (_sub, n) = core.subscribe_to(TEAM);
    let u = user(&n.doc, "sip:alice@example.com").expect("alice in the roster");
    let d = u.endpoints[0].call_info.as_ref().expect("call-info");
    assert_eq!(
        (d.call_id.as_str(), d.from_tag.as_str()),
        (a.call_id.as_str(), a.from_tag.as_str())
    );
    // From anywhere else, still nothing.
    let mut outsider = Ua::udp_from(&focus, "outsider", ATTACKER);
    let (_sub, n) = outsider.subscribe_to(TEAM);
    let u = user(&n.doc, "sip:alice@example.com").expect("alice in the roster");
    assert!(u.endpoints[0].call_info.is_none());
    assert_eq!(alice.bye(&mut a).status, 200);
}

#[test]
fn refer_bye_naming_oneself_is_a_leave() {
    let focus = Focus::start(NOTHING_TRUSTED);
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_sub, first) = watcher.subscribe_to(TEAM);
    let mut view = first.doc;
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let mut bob = Ua::udp(&focus, "bob");
    let (mut b, _) = bob.join(TEAM);
    // Removing another still takes the right to remove.
    let br = bob.refer(&mut b, "<sip:alice@example.com;method=BYE>", "");
    assert_eq!(bob.expect_final(&br).status, 403);
    // Naming herself: accepted, the outcome reported, then the focus's BYE.
    let br = alice.refer(&mut a, "<sip:alice@example.com;method=BYE>", "");
    assert_eq!(alice.expect_final(&br).status, 202);
    let trying = alice.expect_sipfrag();
    assert!(
        trying.text().contains("SIP/2.0 100 Trying"),
        "{}",
        trying.text()
    );
    let n = alice.expect_sipfrag();
    assert!(n.text().contains("SIP/2.0 200 OK"), "{}", n.text());
    assert!(n.text().contains("terminated"), "{}", n.text());
    let bye = alice.expect_request(Method::Bye, WAIT);
    assert_eq!(bye.request().unwrap().call_id(), a.call_id);
    alice.respond(&bye, 200);
    // The others are told she left (not that she was thrown out).
    follow(&mut watcher, &mut view, |v| {
        endpoint_state(v, "sip:alice@example.com")
            .is_some_and(|s| s.0 == EndpointStatus::Disconnected)
    });
    assert_eq!(
        endpoint_state(&view, "sip:alice@example.com"),
        Some((
            EndpointStatus::Disconnected,
            Some(DisconnectionMethod::Departed)
        ))
    );
    assert_eq!(alice.bye(&mut a).status, 481, "her dialog is over");
    assert_eq!(bob.bye(&mut b).status, 200);
}

/// Joins `uri` with a Contact claiming `;isfocus`; returns the final response (ACKed).
fn join_as_focus(ua: &mut Ua, call: &mut Call) -> Response {
    call.cseq += 1;
    let b = format!("z9hG4bK-isfocus-{}", call.from_tag);
    let text = ua
        .request_text(
            "INVITE",
            call,
            call.cseq,
            &b,
            "",
            Some(("application/sdp", AUDIO_OFFER)),
        )
        .replacen(
            &format!("Contact: <{}>", ua.contact_uri()),
            &format!("Contact: <{}>;isfocus", ua.contact_uri()),
            1,
        );
    assert!(text.contains(">;isfocus\r\n"));
    ua.send_raw(&text);
    call.last_invite = Some((b.clone(), call.cseq));
    let r = ua.expect_final(&b);
    if r.status == 200 {
        call.learn(&r);
        ua.ack(call);
    } else {
        let ack = format!(
            "ACK {} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={b};rport\r\nMax-Forwards: 70\r\nFrom: \"{}\" <{}>;tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
            call.ruri,
            ua.local,
            ua.display,
            ua.aor(),
            call.from_tag,
            r.headers.get(HeaderName::To).unwrap_or(""),
            call.call_id,
            call.cseq
        );
        ua.send_raw(&ack);
    }
    r
}

#[test]
fn a_join_from_another_focus_is_refused_unless_cascading_is_configured() {
    let focus = Focus::start(NOTHING_TRUSTED);
    let mut other = Ua::udp(&focus, "conf");
    let r = join_as_focus(&mut other, &mut Call::new(TEAM));
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        r.headers.get(HeaderName::Warning),
        Some("399 focus.example.com \"Cascaded conferences are not accepted here\"")
    );
    focus.wait_metric(
        "focus_policy_rejections_total{reason=\"cascade\"}",
        WAIT,
        |v| v == 1.0,
    );

    let focus = Focus::start("[policy]\ncascade = \"accept\"\n");
    let mut other = Ua::udp(&focus, "conf");
    let mut call = Call::new(TEAM);
    let r = join_as_focus(&mut other, &mut call);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(other.bye(&mut call).status, 200);
}

#[test]
fn a_dialed_out_participant_is_held_to_its_address() {
    // alice, the host, comes through her own trusted proxy (127.0.0.2), so her REFER counts;
    // dan, whom the focus calls on 127.0.0.1, is an ordinary agent.
    let focus = Focus::start(
        r#"
[policy]
trusted_hosts = ["127.0.0.2"]
[[groups]]
uri = "sip:team@focus.example.com"
[[groups.members]]
uri = "sip:alice@example.com"
role = "host"
"#,
    );
    let mut alice = Ua::udp_from(&focus, "alice", "127.0.0.2");
    let (mut a, _) = alice.join(TEAM);
    let mut dan = Ua::udp(&focus, "dan");
    let b = alice.refer(
        &mut a,
        &format!("<sip:dan@{}>", dan.local),
        "Refer-Sub: false\r\n",
    );
    assert_eq!(alice.expect_final(&b).status, 200);
    let inv = dan.expect_invite();
    let (mut dc, _msrp) = dan.accept_chat(&inv);
    let mut mallory = Ua::udp_from(&focus, "dan", ATTACKER);
    assert_off_flow(&mallory.bye(&mut forged(&dc)));
    assert_eq!(dan.bye(&mut dc).status, 200, "his own address still works");
    assert_eq!(alice.bye(&mut a).status, 200);
}
