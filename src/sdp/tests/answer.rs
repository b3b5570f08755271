//! Offer/answer: decline-all answers, policies, RFC 3264 checks, errors, re-offer versioning.

use std::cell::Cell;

use super::super::*;
use super::parse::{crlf, BFCP, MULTI, RCS_GROUP_CHAT, SIPP_UAC};

fn ctx() -> AnswerContext {
    AnswerContext {
        username: "-".into(),
        session_id: 42,
        session_version: 1,
        origin_address: "192.0.2.1".parse().unwrap(),
        connection_address: "192.0.2.1".parse().unwrap(),
    }
}

fn offer_of(lines: &[&str]) -> SessionDescription {
    parse(crlf(lines).as_bytes()).unwrap()
}

fn text(sdp: &SessionDescription) -> String {
    String::from_utf8(sdp.to_bytes()).unwrap()
}

/// The focus's session level as it appears in every answer made with [`ctx`].
const FOCUS_HEAD: &[&str] = &[
    "v=0",
    "o=- 42 1 IN IP4 192.0.2.1",
    "s=-",
    "c=IN IP4 192.0.2.1",
    "t=0 0",
];

fn focus_sdp(media: &[&str]) -> String {
    let mut lines = FOCUS_HEAD.to_vec();
    lines.extend_from_slice(media);
    crlf(&lines)
}

/// Accepts MSRP with a fixed focus line, declines the rest.
fn msrp_policy(_: usize, offered: &MediaDescription, _: &SessionDescription) -> MediaDecision {
    if offered.media != "message" {
        return MediaDecision::Decline;
    }
    MediaDecision::Accept(
        MediaDescription::new("message", 7394, offered.proto.as_str(), ["*"])
            .with_attribute(Attribute::new(
                names::PATH,
                "msrp://192.0.2.1:7394/focus1;tcp",
            ))
            .with_attribute(Attribute::new(names::ACCEPT_TYPES, "message/cpim"))
            .with_attribute(Attribute::new(names::SETUP, "passive")),
    )
}

/// Accepts every enabled stream with `line` built from the offered one.
fn accept_with(
    build: impl Fn(&MediaDescription) -> MediaDescription,
) -> impl Fn(usize, &MediaDescription, &SessionDescription) -> MediaDecision {
    move |_, offered, _| MediaDecision::Accept(build(offered))
}

fn same_line(offered: &MediaDescription) -> MediaDescription {
    MediaDescription::new(
        offered.media.as_str(),
        9,
        offered.proto.as_str(),
        offered.formats.iter().cloned(),
    )
}

// ---- decline-all ---------------------------------------------------------------------------

#[test]
fn decline_all_answer_to_sipp_offer() {
    let answer = answer(&offer_of(SIPP_UAC), &DefaultDeclineAll, &ctx()).unwrap();
    assert_eq!(text(answer.sdp()), focus_sdp(&["m=audio 0 RTP/AVP 0"]));
    assert_eq!(answer.accepted_count(), 0);
    assert!(answer.is_signalling_only());
    assert!(!answer.is_accepted(0));
}

#[test]
fn decline_all_answer_to_multi_stream_offer() {
    let answer = answer_body(crlf(MULTI).as_bytes(), &DefaultDeclineAll, &ctx()).unwrap();
    assert_eq!(
        text(answer.sdp()),
        focus_sdp(&[
            "m=audio 0 RTP/AVP 0 8 101",
            "m=video 0 RTP/AVP 99",
            "m=message 0 TCP/TLS/MSRP *",
            "m=application 0 TCP/BFCP *",
        ])
    );
    assert_eq!(answer.accepted_count(), 0);
    // The answer is itself valid SDP that parses back.
    assert_eq!(&parse(&answer.sdp().to_bytes()).unwrap(), answer.sdp());
}

#[test]
fn decline_all_answers_to_msrp_and_bfcp_offers() {
    let a = answer(&offer_of(RCS_GROUP_CHAT), &DefaultDeclineAll, &ctx()).unwrap();
    assert_eq!(text(a.sdp()), focus_sdp(&["m=message 0 TCP/MSRP *"]));
    let a = answer(&offer_of(BFCP), &DefaultDeclineAll, &ctx()).unwrap();
    assert_eq!(text(a.sdp()), focus_sdp(&["m=application 0 TCP/BFCP *"]));
}

#[test]
fn offer_without_media_gets_answer_without_media() {
    let a = answer(&offer_of(&SIPP_UAC[..5]), &DefaultDeclineAll, &ctx()).unwrap();
    assert_eq!(text(a.sdp()), focus_sdp(&[]));
    assert!(a.is_signalling_only());
}

#[test]
fn answer_copies_the_offered_timing_and_uses_ip6_context() {
    let mut lines = SIPP_UAC.to_vec();
    lines[4] = "t=3034423619 3042462419";
    let ctx = AnswerContext {
        username: "focus".into(),
        origin_address: "2001:db8::1".parse().unwrap(),
        connection_address: "2001:db8::2".parse().unwrap(),
        ..ctx()
    };
    let a = answer(&offer_of(&lines), &DefaultDeclineAll, &ctx).unwrap();
    assert_eq!(
        text(a.sdp()),
        crlf(&[
            "v=0",
            "o=focus 42 1 IN IP6 2001:db8::1",
            "s=-",
            "c=IN IP6 2001:db8::2",
            "t=3034423619 3042462419",
            "m=audio 0 RTP/AVP 0",
        ])
    );
}

// ---- policies ------------------------------------------------------------------------------

#[test]
fn accepted_msrp_stream_gets_the_mirrored_direction() {
    let a = answer(&offer_of(RCS_GROUP_CHAT), &msrp_policy, &ctx()).unwrap();
    assert_eq!(
        text(a.sdp()),
        focus_sdp(&[
            "m=message 7394 TCP/MSRP *",
            "a=path:msrp://192.0.2.1:7394/focus1;tcp",
            "a=accept-types:message/cpim",
            "a=setup:passive",
            "a=sendrecv",
        ])
    );
    assert_eq!(a.accepted_count(), 1);
    assert!(a.is_accepted(0));
    assert!(!a.is_signalling_only());
}

#[test]
fn mixed_decisions_keep_order_and_count() {
    let a = answer(&offer_of(MULTI), &msrp_policy, &ctx()).unwrap();
    let ports: Vec<_> = a
        .sdp()
        .media
        .iter()
        .map(|m| (m.media.as_str(), m.port))
        .collect();
    assert_eq!(
        ports,
        vec![
            ("audio", 0),
            ("video", 0),
            ("message", 7394),
            ("application", 0)
        ]
    );
    assert_eq!(a.accepted_count(), 1);
    assert_eq!(
        (0..5).map(|i| a.is_accepted(i)).collect::<Vec<_>>(),
        vec![false, false, true, false, false]
    );
    // The MSRP stream was offered unmarked (no media or session direction): none is added.
    assert_eq!(a.sdp().media[2].direction(), None);
}

#[test]
fn streams_offered_with_port_zero_are_declined_without_asking() {
    let mut lines = SIPP_UAC.to_vec();
    lines.push("m=video 0 RTP/AVP 31");
    lines.push("a=sendonly");
    let asked = Cell::new(Vec::new());
    let policy = |index: usize, offered: &MediaDescription, _: &SessionDescription| {
        let mut v = asked.take();
        v.push(index);
        asked.set(v);
        MediaDecision::Accept(same_line(offered))
    };
    let a = answer(&offer_of(&lines), &policy, &ctx()).unwrap();
    assert_eq!(asked.take(), vec![0]);
    assert_eq!(
        text(a.sdp()),
        focus_sdp(&["m=audio 9 RTP/AVP 0", "m=video 0 RTP/AVP 31"])
    );
    assert_eq!(a.accepted_count(), 1);
}

#[test]
fn directions_are_mirrored() {
    let cases = [
        (Some("a=sendonly"), None, Some(Direction::RecvOnly)),
        (Some("a=recvonly"), None, Some(Direction::SendOnly)),
        (Some("a=inactive"), None, Some(Direction::Inactive)),
        (Some("a=sendrecv"), None, Some(Direction::SendRecv)),
        (None, Some("a=sendonly"), Some(Direction::RecvOnly)),
        (
            Some("a=recvonly"),
            Some("a=sendonly"),
            Some(Direction::SendOnly),
        ),
        (None, None, None),
    ];
    for (media_attr, session_attr, expected) in cases {
        let mut lines = SIPP_UAC[..5].to_vec();
        lines.extend(session_attr);
        lines.push(SIPP_UAC[5]);
        lines.extend(media_attr);
        let a = answer(&offer_of(&lines), &accept_with(same_line), &ctx()).unwrap();
        let m = &a.sdp().media[0];
        assert_eq!(m.direction(), expected, "{media_attr:?} {session_attr:?}");
        assert_eq!(a.sdp().direction(), None);
    }
}

#[test]
fn an_explicit_compatible_direction_is_kept() {
    let mut lines = SIPP_UAC.to_vec();
    lines.push("a=sendonly");
    let inactive = accept_with(|o| same_line(o).with_attribute(Direction::Inactive.to_attribute()));
    let a = answer(&offer_of(&lines), &inactive, &ctx()).unwrap();
    assert_eq!(
        a.sdp().media[0].attributes,
        vec![Attribute::flag("inactive")]
    );
}

#[test]
fn incompatible_directions_are_policy_faults() {
    let cases = [
        ("a=sendonly", Direction::SendOnly),
        ("a=sendonly", Direction::SendRecv),
        ("a=recvonly", Direction::RecvOnly),
        ("a=inactive", Direction::SendRecv),
        ("a=inactive", Direction::RecvOnly),
    ];
    for (offered, answered) in cases {
        let mut lines = SIPP_UAC.to_vec();
        lines.push(offered);
        let policy = accept_with(move |o| same_line(o).with_attribute(answered.to_attribute()));
        let e = answer(&offer_of(&lines), &policy, &ctx()).unwrap_err();
        assert!(
            matches!(e, OfferError::Policy { index: 0, fault: PolicyFault::Direction { answered: a, .. } } if a == answered),
            "{e:?}"
        );
        assert_eq!(e.status_code(), 500);
    }
    assert!(Direction::SendRecv.allows_answer(Direction::Inactive));
    assert!(Direction::RecvOnly.allows_answer(Direction::SendOnly));
}

#[test]
fn other_policy_faults() {
    let offer = offer_of(RCS_GROUP_CHAT);
    let fault = |build: fn(&MediaDescription) -> MediaDescription| match answer(
        &offer,
        &accept_with(build),
        &ctx(),
    )
    .unwrap_err()
    {
        OfferError::Policy { index: 0, fault } => fault,
        other => panic!("{other:?}"),
    };
    let f = fault(|_| MediaDescription::new("audio", 9, "TCP/MSRP", ["*"]));
    assert_eq!(
        f,
        PolicyFault::MediaTypeChanged {
            offered: "message".into(),
            answered: "audio".into()
        }
    );
    assert_eq!(
        OfferError::Policy { index: 0, fault: f }.to_string(),
        "media 0: policy answer breaks RFC 3264: media type \"audio\" differs from offered \"message\""
    );
    assert!(matches!(
        fault(|_| MediaDescription::new("message", 9, "TCP/TLS/MSRP", ["*"])),
        PolicyFault::ProtoChanged { .. }
    ));
    assert_eq!(
        fault(|_| MediaDescription::new("message", 0, "TCP/MSRP", ["*"])),
        PolicyFault::ZeroPort
    );
    // Case differences are not faults.
    assert!(answer(
        &offer,
        &accept_with(|_| MediaDescription::new("message", 9, "tcp/msrp", ["*"])),
        &ctx()
    )
    .is_ok());
}

#[test]
fn unserializable_policy_lines_and_context_are_caught() {
    let offer = offer_of(RCS_GROUP_CHAT);
    let injected = accept_with(|_| {
        MediaDescription::new("message", 9, "TCP/MSRP", ["*"])
            .with_attribute(Attribute::new("path", "msrp://x\r\nm=audio 1 RTP/AVP 0"))
    });
    let e = answer(&offer, &injected, &ctx()).unwrap_err();
    assert!(
        matches!(&e, OfferError::InvalidAnswer(v) if v.media == Some(0) && v.field == 'a'),
        "{e:?}"
    );
    assert_eq!(e.status_code(), 500);
    let no_formats =
        accept_with(|_| MediaDescription::new("message", 9, "TCP/MSRP", Vec::<String>::new()));
    assert!(matches!(
        answer(&offer, &no_formats, &ctx()),
        Err(OfferError::InvalidAnswer(_))
    ));

    let bad_ctx = AnswerContext {
        username: "focus one".into(),
        ..ctx()
    };
    let e = answer(&offer, &DefaultDeclineAll, &bad_ctx).unwrap_err();
    assert_eq!(
        e.to_string(),
        "built an invalid answer: session: o=: username must be a non-whitespace string"
    );
}

// ---- offers the focus cannot answer --------------------------------------------------------

#[test]
fn malformed_offer_is_400() {
    let e = answer_body(b"hello", &DefaultDeclineAll, &ctx()).unwrap_err();
    assert_eq!(e, OfferError::Malformed(SdpError::Malformed { line: 1 }));
    assert_eq!(
        e.to_string(),
        "offer does not parse: line 1: not a <type>=<value> line"
    );
    let e = answer_body(b"s=-\r\n", &DefaultDeclineAll, &ctx()).unwrap_err();
    assert_eq!(
        e,
        OfferError::Malformed(SdpError::Missing {
            line: 1,
            field: 'v'
        })
    );
    assert_eq!(e.status_code(), 400);

    let mut offer = offer_of(SIPP_UAC);
    offer.media[0].formats.clear();
    let e = answer(&offer, &DefaultDeclineAll, &ctx()).unwrap_err();
    assert!(matches!(
        e,
        OfferError::InvalidOffer(ValidationError {
            media: Some(0),
            field: 'm',
            ..
        })
    ));
    assert_eq!(e.status_code(), 400);
}

#[test]
fn missing_connection_is_400_unless_the_stream_is_disabled() {
    let mut lines = SIPP_UAC.to_vec();
    lines.remove(3);
    let e = answer(&offer_of(&lines), &DefaultDeclineAll, &ctx()).unwrap_err();
    assert_eq!(e, OfferError::MissingConnection { index: 0 });
    assert_eq!(
        e.to_string(),
        "media 0: no c= line at media or session level"
    );
    assert_eq!(e.status_code(), 400);

    lines[4] = "m=audio 0 RTP/AVP 0";
    assert!(answer(&offer_of(&lines), &DefaultDeclineAll, &ctx()).is_ok());

    lines[4] = "m=audio 6000 RTP/AVP 0";
    lines.insert(5, "c=in ip4 198.51.100.7");
    assert!(answer(&offer_of(&lines), &DefaultDeclineAll, &ctx()).is_ok());
}

#[test]
fn unusable_address_types_are_488() {
    let with_c = |c: &'static str| {
        let mut lines = SIPP_UAC.to_vec();
        lines[3] = c;
        answer(&offer_of(&lines), &DefaultDeclineAll, &ctx()).unwrap_err()
    };
    let e = with_c("c=IN IP5 127.0.0.1");
    assert_eq!(
        e,
        OfferError::UnsupportedAddrType {
            index: 0,
            addrtype: "IP5".into()
        }
    );
    assert_eq!(e.to_string(), "media 0: unsupported address type \"IP5\"");
    assert_eq!(e.status_code(), 488);
    let e = with_c("c=ATM NSAP 47.0005.80.ffe100.0000.f21a.2000.1234.5678.9abc.00");
    assert!(matches!(&e, OfferError::UnsupportedNetType { index: 0, nettype } if nettype == "ATM"));
    assert_eq!(e.status_code(), 488);

    // A media-level c= overrides an unusable session-level one.
    let mut lines = SIPP_UAC.to_vec();
    lines[3] = "c=IN IP5 x";
    lines.insert(6, "c=IN IP4 127.0.0.1");
    assert!(answer(&offer_of(&lines), &DefaultDeclineAll, &ctx()).is_ok());
}

// ---- delayed offer -------------------------------------------------------------------------

#[test]
fn delayed_offer_without_media() {
    let sdp = offer(Vec::new(), &ctx()).unwrap();
    assert_eq!(text(&sdp), focus_sdp(&[]));
    assert_eq!(parse(&sdp.to_bytes()).unwrap(), sdp);
}

#[test]
fn delayed_offer_with_caller_lines() {
    let msrp = MediaDescription::new("message", 7394, "TCP/MSRP", ["*"])
        .with_attribute(Attribute::new(names::PATH, "msrp://192.0.2.1:7394/f2;tcp"))
        .with_attribute(Attribute::new(names::ACCEPT_TYPES, "message/cpim"))
        .with_attribute(Attribute::new(names::SETUP, "actpass"));
    let sdp = offer(vec![msrp], &ctx()).unwrap();
    assert_eq!(
        text(&sdp),
        focus_sdp(&[
            "m=message 7394 TCP/MSRP *",
            "a=path:msrp://192.0.2.1:7394/f2;tcp",
            "a=accept-types:message/cpim",
            "a=setup:actpass",
        ])
    );
    let bad = MediaDescription::new("message", 7394, "TCP/MSRP", Vec::<String>::new());
    let e = offer(vec![bad], &ctx()).unwrap_err();
    assert_eq!((e.media, e.field), (Some(0), 'm'));
}

// ---- re-offers -----------------------------------------------------------------------------

#[test]
fn version_increments_only_when_the_answer_changes() {
    let mut state = LocalSdpState::new(1000, 5);
    let first_offer = offer_of(SIPP_UAC);
    let a1 = state
        .answer(&first_offer, &DefaultDeclineAll, &ctx())
        .unwrap();
    assert_eq!(a1.sdp().origin.session_id, "1000");
    assert_eq!(a1.sdp().origin.session_version, "5");
    assert_eq!(state.version(), 5);

    // Session refresh: same offer, same answer, same version, byte for byte.
    let a2 = state
        .answer(&first_offer, &DefaultDeclineAll, &ctx())
        .unwrap();
    assert_eq!(a2.sdp().to_bytes(), a1.sdp().to_bytes());

    // The peer adds MSRP: the answer changes, so does the version; the id stays.
    let mut lines = SIPP_UAC.to_vec();
    lines.extend_from_slice(&RCS_GROUP_CHAT[5..]);
    let second_offer = offer_of(&lines);
    let a3 = state.answer(&second_offer, &msrp_policy, &ctx()).unwrap();
    assert_eq!(a3.sdp().origin.session_id, "1000");
    assert_eq!(a3.sdp().origin.session_version, "6");
    assert_eq!(a3.accepted_count(), 1);
    let a4 = state.answer(&second_offer, &msrp_policy, &ctx()).unwrap();
    assert_eq!(a4.sdp().origin.session_version, "6");
    assert_eq!(state.last_sent(), Some(a4.sdp()));

    // A different answer to the same offer (policy changed) also counts.
    let a5 = state
        .answer(&second_offer, &DefaultDeclineAll, &ctx())
        .unwrap();
    assert_eq!(a5.sdp().origin.session_version, "7");

    // A delayed offer in the same dialog follows the same numbering.
    let o = state.offer(Vec::new(), &ctx()).unwrap();
    assert_eq!(
        (
            o.origin.session_id.as_str(),
            o.origin.session_version.as_str()
        ),
        ("1000", "8")
    );
    let o = state.offer(Vec::new(), &ctx()).unwrap();
    assert_eq!(o.origin.session_version, "8");
}

#[test]
fn failed_answers_leave_the_state_alone() {
    let mut state = LocalSdpState::new(7, 1);
    let good = state
        .answer(&offer_of(SIPP_UAC), &DefaultDeclineAll, &ctx())
        .unwrap();
    let mut lines = SIPP_UAC.to_vec();
    lines.remove(3);
    assert!(state
        .answer(&offer_of(&lines), &DefaultDeclineAll, &ctx())
        .is_err());
    let bad = MediaDescription::new("audio", 1, "RTP/AVP", Vec::<String>::new());
    assert!(state.offer(vec![bad], &ctx()).is_err());
    assert_eq!(state.version(), 1);
    assert_eq!(state.last_sent(), Some(good.sdp()));
}

#[test]
fn stamp_overwrites_origin_numbers_and_detects_changes() {
    let mut state = LocalSdpState::new(9, 3);
    let mut sdp = offer(Vec::new(), &ctx()).unwrap();
    assert!(!state.stamp(&mut sdp));
    assert_eq!(
        (
            sdp.origin.session_id.as_str(),
            sdp.origin.session_version.as_str()
        ),
        ("9", "3")
    );
    let mut same = offer(
        Vec::new(),
        &AnswerContext {
            session_id: 1,
            session_version: 77,
            ..ctx()
        },
    )
    .unwrap();
    assert!(!state.stamp(&mut same));
    assert_eq!(same, sdp);
    let mut moved = offer(
        Vec::new(),
        &AnswerContext {
            connection_address: "192.0.2.9".parse().unwrap(),
            ..ctx()
        },
    )
    .unwrap();
    assert!(state.stamp(&mut moved));
    assert_eq!(moved.origin.session_version, "4");
}

#[test]
fn random_state() {
    let a = LocalSdpState::random();
    let b = LocalSdpState::random();
    assert!((1..1u64 << 62).contains(&a.session_id()));
    assert_eq!(a.version(), 1);
    assert_ne!(a.session_id(), b.session_id());
    assert_eq!(a.last_sent(), None);
}
