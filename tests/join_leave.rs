//! Joining and leaving a group, and requests inside a participant's dialog: re-INVITE,
//! UPDATE, CSeq order, unknown dialogs.

mod support;

use cpm_focus::sip::{HeaderName, Response};
use support::{contact_of, Call, Focus, Ua, AUDIO_OFFER, AUDIO_VIDEO_OFFER, TEAM};

/// The SDP of a response, parsed.
fn sdp_of(resp: &Response) -> cpm_focus::sdp::SessionDescription {
    assert_eq!(
        resp.headers.get(HeaderName::ContentType),
        Some("application/sdp"),
        "{} {} has no SDP body",
        resp.status,
        resp.reason
    );
    cpm_focus::sdp::parse(&resp.body).unwrap_or_else(|e| {
        panic!(
            "SDP answer does not parse: {e}\n{}",
            String::from_utf8_lossy(&resp.body)
        )
    })
}

fn join_and_leave(tcp: bool) {
    let focus = Focus::start("");
    let mut ua = if tcp {
        Ua::tcp(&focus, "alice")
    } else {
        Ua::udp(&focus, "alice")
    };
    let mut call = Call::new(TEAM);
    let branch = ua.invite(&mut call, Some(AUDIO_OFFER));

    // 100 Trying first, without a To tag, then the 200.
    let trying = ua.expect_response(&branch);
    assert_eq!((trying.status, &*trying.reason), (100, "Trying"));
    assert_eq!(trying.to.tag(), None, "100 Trying must not carry a To tag");
    let ok = ua.expect_final(&branch);
    assert_eq!(ok.status, 200, "{}", ok.reason);
    assert!(
        ua.provisionals.is_empty(),
        "more provisionals: {:?}",
        ua.provisionals
    );
    let tag = ok.to.tag().expect("200 without To tag").to_string();
    assert!(tag.len() >= 8, "To tag {tag:?} is too short to be random");
    assert_eq!(ok.call_id(), call.call_id);
    assert_eq!(ok.from.tag(), Some(call.from_tag.as_str()));

    // Contact: the group URI at the focus's address, with isfocus (RFC 4579).
    let (contact, isfocus) = contact_of(&ok);
    let expected = if tcp {
        format!("sip:team@{};transport=tcp", focus.sip_tcp)
    } else {
        format!("sip:team@{}", focus.sip_udp)
    };
    assert_eq!(contact, expected);
    assert!(isfocus, "Contact lacks ;isfocus");

    // The answer declines the audio stream: same m= line, port 0.
    let sdp = sdp_of(&ok);
    assert_eq!(sdp.media.len(), 1);
    let m = &sdp.media[0];
    assert_eq!(
        (m.media.as_str(), m.port, m.proto.as_str()),
        ("audio", 0, "RTP/AVP")
    );
    assert_eq!(sdp.origin.address, "127.0.0.1");
    assert_ne!(
        sdp.origin.session_id, "53655765",
        "the focus copied the offer's o= line"
    );

    call.learn(&ok);
    ua.ack(&call);

    // Leave: BYE gets 200 with the dialog's tags.
    let bye = ua.bye(&mut call);
    assert_eq!(bye.status, 200, "{}", bye.reason);
    assert_eq!(bye.to.tag(), Some(tag.as_str()));
    assert_eq!(bye.cseq.seq, 2);

    // The dialog is gone: a second BYE finds nothing.
    let again = ua.bye(&mut call);
    assert_eq!(again.status, 481, "{}", again.reason);
}

#[test]
fn join_and_leave_over_udp() {
    join_and_leave(false);
}

#[test]
fn join_and_leave_over_tcp() {
    join_and_leave(true);
}

#[test]
fn reinvite_keeps_the_session_id_and_bumps_the_version_only_on_change() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "bob");
    let (mut call, ok) = ua.join(TEAM);
    let first = sdp_of(&ok);
    let tag = call.to_tag.clone().unwrap();

    // The same offer again (a session refresh): the same answer, the same version.
    let b = ua.invite(&mut call, Some(AUDIO_OFFER));
    let same = ua.expect_final(&b);
    assert_eq!(same.status, 200, "{}", same.reason);
    assert_eq!(
        same.to.tag(),
        Some(tag.as_str()),
        "re-INVITE answered outside the dialog"
    );
    let same_sdp = sdp_of(&same);
    assert_eq!(same_sdp.origin.session_id, first.origin.session_id);
    assert_eq!(
        same_sdp.origin.session_version,
        first.origin.session_version
    );
    ua.ack(&call);

    // A changed offer (video added): both streams declined, version + 1.
    let b = ua.invite(&mut call, Some(AUDIO_VIDEO_OFFER));
    let changed = ua.expect_final(&b);
    assert_eq!(changed.status, 200, "{}", changed.reason);
    let changed_sdp = sdp_of(&changed);
    assert_eq!(changed_sdp.origin.session_id, first.origin.session_id);
    let v0: u64 = first.origin.session_version.parse().unwrap();
    let v1: u64 = changed_sdp.origin.session_version.parse().unwrap();
    assert_eq!(
        v1,
        v0 + 1,
        "changed answer must increment the version by one"
    );
    let media: Vec<(&str, u16)> = changed_sdp
        .media
        .iter()
        .map(|m| (m.media.as_str(), m.port))
        .collect();
    assert_eq!(media, vec![("audio", 0), ("video", 0)]);
    ua.ack(&call);

    // The dialog still works.
    assert_eq!(ua.bye(&mut call).status, 200);
}

#[test]
fn update_without_body_is_accepted() {
    let focus = Focus::start("");
    let mut ua = Ua::tcp(&focus, "carol");
    let (mut call, _) = ua.join(TEAM);
    let b = ua.send_request(&mut call, "UPDATE", "", None);
    let r = ua.expect_final(&b);
    assert_eq!(r.status, 200, "{}", r.reason);
    assert!(r.body.is_empty(), "UPDATE without offer got a body");
    assert_eq!(r.to.tag(), call.to_tag.as_deref());
    let (contact, isfocus) = contact_of(&r);
    assert!(isfocus && contact.starts_with("sip:team@"), "{contact}");
    assert_eq!(ua.bye(&mut call).status, 200);
}

#[test]
fn cseq_going_backwards_is_refused_with_500() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "dave");
    let (mut call, _) = ua.join(TEAM);
    call.cseq = 9;
    let b = ua.send_request(&mut call, "UPDATE", "", None);
    assert_eq!(ua.expect_final(&b).status, 200);
    call.cseq = 4;
    let b = ua.send_request(&mut call, "UPDATE", "", None);
    let r = ua.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (500, "CSeq out of order"));
    // The refused request did not move the dialog's CSeq: 11 is still fine.
    call.cseq = 10;
    assert_eq!(ua.bye(&mut call).status, 200);
}

#[test]
fn requests_for_unknown_dialogs_get_481() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "erin");
    // A To tag the focus never gave out.
    let mut call = Call::new(TEAM);
    call.to_tag = Some("no-such-dialog".into());
    for method in ["BYE", "UPDATE", "INVITE"] {
        let body = (method == "INVITE").then_some(("application/sdp", AUDIO_OFFER));
        let b = ua.send_request(&mut call, method, "", body);
        let r = ua.expect_final(&b);
        assert_eq!(r.status, 481, "{method}: {} {}", r.status, r.reason);
    }
    // A BYE without To tag is outside any dialog.
    let mut call = Call::new(TEAM);
    let b = ua.send_request(&mut call, "BYE", "", None);
    let r = ua.expect_final(&b);
    assert_eq!(
        (r.status, &*r.reason),
        (481, "Call/Transaction Does Not Exist")
    );
    // A real dialog with a wrong Call-ID is unknown too.
    let (call, _) = ua.join(TEAM);
    let mut wrong = call.clone();
    wrong.call_id = "other-call-id@127.0.0.1".into();
    let b = ua.send_request(&mut wrong, "BYE", "", None);
    assert_eq!(ua.expect_final(&b).status, 481);
}

/// An SDP answer declining the focus's one offered stream (MSRP).
const DECLINING_ANSWER: &str =
    "v=0\r\no=alice 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 0 TCP/MSRP *\r\n";

#[test]
fn delayed_offer_join_needs_the_answer_in_the_ack() {
    let focus = Focus::start("");
    // With the answer in the ACK the participant stays.
    let mut ua = Ua::udp(&focus, "frank");
    let mut call = Call::new(TEAM);
    let b = ua.invite(&mut call, None);
    let ok = ua.expect_final(&b);
    assert_eq!(ok.status, 200, "{}", ok.reason);
    let offer = sdp_of(&ok);
    // The focus offers what it serves: one MSRP stream, passive (the answerer connects).
    assert_eq!(offer.media.len(), 1, "{offer:?}");
    assert_eq!(
        (offer.media[0].media.as_str(), offer.media[0].proto.as_str()),
        ("message", "TCP/MSRP")
    );
    assert_eq!(offer.media[0].setup(), Some("passive"));
    call.learn(&ok);
    ua.ack_with(&call, Some(DECLINING_ANSWER));
    // A re-INVITE while nothing is pending works, so the offer/answer round completed.
    let b = ua.invite(&mut call, Some(AUDIO_OFFER));
    assert_eq!(ua.expect_final(&b).status, 200);
    ua.ack(&call);
    assert_eq!(focus.metric("focus_participants_active"), Some(1.0));

    // Without it, the focus ends the session (RFC 3261 §13.2.2.4).
    let mut bad = Ua::tcp(&focus, "grace");
    let mut bad_call = Call::new(TEAM);
    let b = bad.invite(&mut bad_call, None);
    let ok = bad.expect_final(&b);
    assert_eq!(ok.status, 200);
    bad_call.learn(&ok);
    bad.ack(&bad_call);
    let bye = bad.expect_request(cpm_focus::sip::Method::Bye, support::WAIT);
    let req = bye.request().unwrap();
    assert_eq!(req.call_id(), bad_call.call_id);
    assert_eq!(
        req.headers.get_by_name("Reason"),
        Some("SIP;cause=488;text=\"no valid SDP answer in ACK\"")
    );
    bad.respond(&bye, 200);
    assert_eq!(ua.bye(&mut call).status, 200);
    assert_eq!(focus.metric("focus_participants_active"), Some(0.0));
}

#[test]
fn reinvite_without_offer_while_an_offer_is_pending_gets_491() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "heidi");
    let (mut call, _) = ua.join(TEAM);
    // A re-INVITE without SDP: the focus offers in its 200 and waits for the ACK's answer.
    let b = ua.invite(&mut call, None);
    let ok = ua.expect_final(&b);
    assert_eq!(ok.status, 200);
    assert!(
        !ok.body.is_empty(),
        "a 200 to an offerless re-INVITE must carry an offer"
    );
    // An UPDATE with an offer before that ACK collides with the pending offer.
    let b = ua.send_request(
        &mut call,
        "UPDATE",
        "",
        Some(("application/sdp", AUDIO_OFFER)),
    );
    let r = ua.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (491, "Request Pending"));
    ua.ack_with(&call, Some(DECLINING_ANSWER));
    // Now the UPDATE's offer gets an answer.
    let b = ua.send_request(
        &mut call,
        "UPDATE",
        "",
        Some(("application/sdp", AUDIO_OFFER)),
    );
    let r = ua.expect_final(&b);
    assert_eq!(r.status, 200, "{}", r.reason);
    let answer = sdp_of(&r);
    assert_eq!(answer.media.len(), 1);
    assert_eq!(answer.media[0].port, 0);
    assert_eq!(ua.bye(&mut call).status, 200);
}

#[test]
fn malformed_sdp_offer_is_400_with_a_warning() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "ivan");
    let mut call = Call::new(TEAM);
    let b = ua.invite(&mut call, Some("this is not SDP\r\n"));
    let r = ua.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (400, "Malformed SDP"));
    let warning = r.headers.get(HeaderName::Warning).expect("no Warning");
    assert!(warning.starts_with("399 focus.example.com \""), "{warning}");
    // Inside a dialog too, and the dialog survives it.
    let (mut call, _) = ua.join(TEAM);
    let b = ua.invite(&mut call, Some("v=0\r\n"));
    let r = ua.expect_final(&b);
    assert_eq!(r.status, 400, "{}", r.reason);
    assert_eq!(ua.bye(&mut call).status, 200);
    assert_eq!(focus.metric("focus_participants_active"), Some(0.0));
}

#[test]
fn two_devices_of_one_identity_and_a_session_that_restarts() {
    let focus = Focus::start("");
    let mut phone = Ua::udp(&focus, "judy");
    let mut laptop = Ua::tcp(&focus, "judy");
    let (mut c1, _) = phone.join(TEAM);
    let (mut c2, _) = laptop.join(TEAM);
    let mut sub = Ua::udp(&focus, "sub");
    let (mut sub_call, first) = sub.subscribe_to(TEAM);
    // One user with two endpoints (one per dialog).
    let users = first.doc.users.as_ref().unwrap();
    assert_eq!(users.users.len(), 1);
    assert_eq!(users.users[0].entity, "sip:judy@example.com");
    assert_eq!(users.users[0].endpoints.len(), 2);
    assert_eq!(support::user_count(&first.doc), Some(1));
    assert_eq!(phone.bye(&mut c1).status, 200);
    assert_eq!(laptop.bye(&mut c2).status, 200);
    // Unsubscribe: the session is empty and stops; the next join starts a new one.
    assert_eq!(sub.subscribe(&mut sub_call, Some(0)).status, 200);
    while !sub.expect_notify().is_terminated() {}
    focus.wait_metric("focus_session_actors", support::WAIT, |v| v == 0.0);
    let (mut c3, _) = phone.join(TEAM);
    assert_eq!(
        focus.metric("focus_sessions_started_total{kind=\"predefined\"}"),
        Some(2.0)
    );
    // The new session starts from an empty roster.
    let (_, fresh) = sub.subscribe_to(TEAM);
    assert_eq!(
        support::user_entities(&fresh.doc),
        vec!["sip:judy@example.com".to_string()]
    );
    assert_eq!(
        fresh.doc.users.as_ref().unwrap().users[0].endpoints.len(),
        1
    );
    assert_eq!(phone.bye(&mut c3).status, 200);
}

#[test]
fn a_target_refresh_moves_where_the_focus_sends_its_bye() {
    let mut focus = Focus::start("[shutdown]\ngrace_s = 30\n");
    let mut old = Ua::udp(&focus, "kate");
    let mut new = Ua::udp(&focus, "kate");
    let (mut call, _) = old.join(TEAM);
    // UPDATE from the old socket with the new socket's Contact (the device moved).
    call.cseq += 1;
    let b = "z9hG4bK-e2e-refresh";
    let text = old
        .request_text("UPDATE", &call, call.cseq, b, "", None)
        .replace(&old.contact_uri(), &new.contact_uri());
    old.send_raw(&text);
    assert_eq!(old.expect_final(b).status, 200);
    // The focus's BYE (at shutdown) goes to the new target, in the same dialog.
    focus.terminate();
    let bye = new.expect_request(cpm_focus::sip::Method::Bye, support::WAIT);
    let req = bye.request().unwrap();
    assert_eq!(req.uri.to_string(), new.contact_uri());
    assert_eq!(req.call_id(), call.call_id);
    new.respond(&bye, 200);
    assert_eq!(focus.wait_exit(support::WAIT).code(), Some(0));
    old.assert_quiet(
        std::time::Duration::from_millis(100),
        "nothing for the old target",
    );
}
