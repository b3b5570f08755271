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
        panic!("SDP answer does not parse: {e}\n{}", String::from_utf8_lossy(&resp.body))
    })
}

fn join_and_leave(tcp: bool) {
    let focus = Focus::start("");
    let mut ua = if tcp { Ua::tcp(&focus, "alice") } else { Ua::udp(&focus, "alice") };
    let mut call = Call::new(TEAM);
    let branch = ua.invite(&mut call, Some(AUDIO_OFFER));

    // 100 Trying first, without a To tag, then the 200.
    let trying = ua.expect_response(&branch);
    assert_eq!((trying.status, &*trying.reason), (100, "Trying"));
    assert_eq!(trying.to.tag(), None, "100 Trying must not carry a To tag");
    let ok = ua.expect_final(&branch);
    assert_eq!(ok.status, 200, "{}", ok.reason);
    assert!(ua.provisionals.is_empty(), "more provisionals: {:?}", ua.provisionals);
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
    assert_eq!((m.media.as_str(), m.port, m.proto.as_str()), ("audio", 0, "RTP/AVP"));
    assert_eq!(sdp.origin.address, "127.0.0.1");
    assert_ne!(sdp.origin.session_id, "53655765", "the focus copied the offer's o= line");

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
    assert_eq!(same.to.tag(), Some(tag.as_str()), "re-INVITE answered outside the dialog");
    let same_sdp = sdp_of(&same);
    assert_eq!(same_sdp.origin.session_id, first.origin.session_id);
    assert_eq!(same_sdp.origin.session_version, first.origin.session_version);
    ua.ack(&call);

    // A changed offer (video added): both streams declined, version + 1.
    let b = ua.invite(&mut call, Some(AUDIO_VIDEO_OFFER));
    let changed = ua.expect_final(&b);
    assert_eq!(changed.status, 200, "{}", changed.reason);
    let changed_sdp = sdp_of(&changed);
    assert_eq!(changed_sdp.origin.session_id, first.origin.session_id);
    let v0: u64 = first.origin.session_version.parse().unwrap();
    let v1: u64 = changed_sdp.origin.session_version.parse().unwrap();
    assert_eq!(v1, v0 + 1, "changed answer must increment the version by one");
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
    assert_eq!((r.status, &*r.reason), (481, "Call/Transaction Does Not Exist"));
    // A real dialog with a wrong Call-ID is unknown too.
    let (call, _) = ua.join(TEAM);
    let mut wrong = call.clone();
    wrong.call_id = "other-call-id@127.0.0.1".into();
    let b = ua.send_request(&mut wrong, "BYE", "", None);
    assert_eq!(ua.expect_final(&b).status, 481);
}
