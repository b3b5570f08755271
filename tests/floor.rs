//! Floor control and talk bursts end to end (issue 6): participants join with audio (RTP on
//! real UDP ports) and BFCP (TCP), request, queue for, release and lose the floor, and the
//! focus forwards only the holder's RTP, one continuous stream per receiver.

mod support;

use cpm_focus::conference_info::{ConferenceInfo, MediaStatus};
use cpm_focus::push_to_talk::bfcp::{Attribute, ErrorCode, Primitive, RequestStatus};
use std::time::{Duration, Instant};
use support::talk::{
    error_code, fri_status, rtp_pair, sections, talk_focus, talk_offer, BfcpClient, Talker,
};
use support::{follow, user, Call, Focus, Ua, WAIT};

const TALK: &str = "sip:talk@focus.example.com";

/// The audio `<media>` of `name`'s endpoint: status and display text.
fn media(view: &ConferenceInfo, name: &str) -> Option<(MediaStatus, Option<String>)> {
    let u = user(view, &format!("sip:{name}@example.com"))?;
    let m = u.endpoints.first()?.media.first()?;
    Some((m.status?, m.display_text.clone()))
}

fn watch(focus: &Focus) -> (Ua, ConferenceInfo) {
    let mut sub = Ua::tcp(focus, "watcher");
    let (_call, first) = sub.subscribe_to(TALK);
    (sub, first.doc)
}

fn join(focus: &Focus, name: &str) -> (Ua, Talker) {
    let mut ua = Ua::udp(focus, name);
    let mut t = ua.join_talk(TALK);
    t.connect_bfcp();
    (ua, t)
}

#[test]
fn one_talker_at_a_time_with_continuous_streams_per_receiver() {
    let focus = talk_focus("");
    let (mut sub, mut view) = watch(&focus);
    let (_a, mut alice) = join(&focus, "alice");
    let (_b, mut bob) = join(&focus, "bob");
    let (_c, carol) = join(&focus, "carol");

    // The answer: one codec, the participant's label, and an RFC 8856 server line.
    assert_eq!(alice.audio.formats, ["0"], "{}", alice.answer);
    assert!(alice.audio.has("rtpmap:0 PCMU/8000"), "{}", alice.answer);
    assert!(alice.audio.has("label:alice-audio"), "{}", alice.answer);
    let b = alice.bfcp_section.clone().expect("BFCP accepted");
    assert_eq!(
        (b.proto.as_str(), b.formats.as_slice()),
        ("TCP/BFCP", &["*".to_string()][..])
    );
    for line in [
        "floorctrl:s-only",
        "floorid:1 mstrm:alice-audio",
        "setup:passive",
        "connection:new",
        "bfcpver:1",
    ] {
        assert!(b.has(line), "{line} missing:\n{}", alice.answer);
    }
    assert_eq!(
        b.attr("confid"),
        Some(alice.conference_id.to_string().as_str())
    );
    assert_eq!(
        (bob.conference_id, carol.conference_id),
        (alice.conference_id, alice.conference_id)
    );
    let mut users = [alice.user_id, bob.user_id, carol.user_id];
    users.sort();
    assert!(users.windows(2).all(|w| w[0] != w[1]), "user ids {users:?}");
    assert_ne!(
        alice.focus_rtp, bob.focus_rtp,
        "a port pair per participant"
    );

    // Alice asks and gets the floor; her audio reaches Bob and Carol, not herself.
    let (a_req, status, _) = alice.request_floor();
    assert_eq!(status, RequestStatus::Granted);
    alice.send_rtp(5);
    let to_bob = bob.expect_rtp(5);
    let to_carol = carol.expect_rtp(5);
    alice.assert_no_rtp(Duration::from_millis(300), "her own audio came back");
    for (stream, who) in [(&to_bob, "bob"), (&to_carol, "carol")] {
        assert!(stream[0].header.marker, "{who}: a talk burst starts marked");
        for (k, p) in stream.iter().enumerate() {
            assert!(
                String::from_utf8_lossy(&p.payload).starts_with("alice "),
                "{who}: packet {k}"
            );
            assert_eq!(p.header.payload_type, 0);
            assert_eq!(p.header.ssrc, stream[0].header.ssrc, "{who}: one SSRC");
        }
        for w in stream.windows(2) {
            assert_eq!(w[1].header.sequence, w[0].header.sequence.wrapping_add(1));
            assert_eq!(
                w[1].header.timestamp.wrapping_sub(w[0].header.timestamp),
                160
            );
        }
    }
    assert_ne!(
        to_bob[0].header.ssrc, to_carol[0].header.ssrc,
        "an SSRC per receiver"
    );

    // Bob does not hold the floor: his RTP reaches nobody, and is counted dropped.
    let series = "focus_rtp_packets_dropped_total{reason=\"not_holder\"}";
    let before = focus.metric(series).unwrap_or(0.0);
    bob.send_rtp(3);
    focus.wait_metric(series, WAIT, |v| v >= before + 3.0);
    alice.assert_no_rtp(Duration::from_millis(200), "a non-holder was forwarded");
    carol.assert_no_rtp(Duration::from_millis(200), "a non-holder was forwarded");

    // Bob queues; conference-info shows who talks and who waits.
    let (b_req, status, position) = bob.request_floor();
    assert_eq!((status, position), (RequestStatus::Accepted, 1));
    follow(&mut sub, &mut view, |v| {
        media(v, "alice") == Some((MediaStatus::SendOnly, Some("floor granted".into())))
            && media(v, "bob")
                == Some((
                    MediaStatus::RecvOnly,
                    Some("floor requested, queue position 1".into()),
                ))
            && media(v, "carol") == Some((MediaStatus::RecvOnly, None))
    });

    // Alice releases: Bob is granted, and Carol's stream goes on without a jump.
    assert_eq!(alice.bfcp().release(a_req), RequestStatus::Released);
    bob.bfcp()
        .expect_status(b_req, RequestStatus::Granted, WAIT);
    bob.send_rtp(4);
    let to_alice = alice.expect_rtp(4);
    let carol2 = carol.expect_rtp(4);
    assert!(String::from_utf8_lossy(&carol2[0].payload).starts_with("bob "));
    let last = &to_carol[4].header;
    let first = &carol2[0].header;
    assert_eq!(first.ssrc, last.ssrc, "the same source across talkers");
    assert_eq!(
        first.sequence,
        last.sequence.wrapping_add(1),
        "no sequence jump"
    );
    let gap = first.timestamp.wrapping_sub(last.timestamp);
    assert!(
        (1..8000 * 60).contains(&gap),
        "the timestamp moves on by the silence: {gap}"
    );
    assert!(first.marker, "the new talk burst is marked");
    for w in carol2.windows(2) {
        assert_eq!(w[1].header.sequence, w[0].header.sequence.wrapping_add(1));
    }
    assert!(String::from_utf8_lossy(&to_alice[0].payload).starts_with("bob "));
    bob.assert_no_rtp(Duration::from_millis(200), "his own audio came back");
    follow(&mut sub, &mut view, |v| {
        media(v, "bob").is_some_and(|m| m.0 == MediaStatus::SendOnly)
            && media(v, "alice") == Some((MediaStatus::RecvOnly, None))
    });

    assert!(focus.metric("focus_floor_grants_total") >= Some(2.0));
    assert_eq!(
        focus.metric("focus_floor_requests_total{outcome=\"granted\"}"),
        Some(1.0)
    );
    assert_eq!(
        focus.metric("focus_floor_requests_total{outcome=\"queued\"}"),
        Some(1.0)
    );
    assert!(focus.metric("focus_rtp_packets_forwarded_total") >= Some(18.0));
    assert_eq!(
        focus.metric("focus_floor_talk_burst_seconds_count"),
        Some(1.0)
    );
}

#[test]
fn the_talk_burst_limit_revokes_and_the_queue_moves_on() {
    let focus = talk_focus("[floor]\nmax_talk_burst_s = 1\n");
    let (_a, mut alice) = join(&focus, "alice");
    let (_b, mut bob) = join(&focus, "bob");
    let (a_req, status, _) = alice.request_floor();
    assert_eq!(status, RequestStatus::Granted);
    let (b_req, status, _) = bob.request_floor();
    assert_eq!(status, RequestStatus::Accepted);
    let long = Duration::from_secs(10);
    let info = alice
        .bfcp()
        .expect_status(a_req, RequestStatus::Revoked, long);
    assert_eq!(info.as_deref(), Some("maximum talk-burst time reached"));
    bob.bfcp()
        .expect_status(b_req, RequestStatus::Granted, long);
    // Alice's audio no longer goes through; Bob's does.
    alice.send_rtp(2);
    bob.assert_no_rtp(Duration::from_millis(300), "a revoked talker was forwarded");
    bob.send_rtp(2);
    alice.expect_rtp(2);
    assert_eq!(
        focus.metric("focus_floor_revokes_total{reason=\"talk_burst\"}"),
        Some(1.0)
    );
}

#[test]
fn a_chair_revokes_and_a_muted_participant_cannot_talk() {
    let focus = talk_focus("");
    let (mut sub, mut view) = watch(&focus);
    let (_a, mut alice) = join(&focus, "alice");
    let (mut bob_ua, mut bob) = join(&focus, "bob");
    let (mut chair_ua, mut chair) = join(&focus, "chair");
    let (a_req, _, _) = alice.request_floor();
    let (b_req, status, _) = bob.request_floor();
    assert_eq!(status, RequestStatus::Accepted);

    // The chair looks at the floor: Alice holds it, Bob waits.
    let tid = chair
        .bfcp()
        .send(Primitive::FloorQuery, vec![Attribute::floor_id(1)]);
    let status = chair.bfcp().expect_response(tid);
    assert_eq!(status.primitive, Primitive::FloorStatus);
    let requests: Vec<_> = status
        .attributes
        .iter()
        .filter(|a| matches!(a, Attribute::FloorRequestInformation { .. }))
        .map(fri_status)
        .collect();
    assert_eq!(
        requests.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        vec![
            (a_req, RequestStatus::Granted),
            (b_req, RequestStatus::Accepted)
        ]
    );

    // Someone who is not a chair may not.
    let revoke = |id: u16| {
        vec![Attribute::floor_request_information(
            id,
            vec![Attribute::floor_request_status(
                1,
                vec![Attribute::request_status(RequestStatus::Revoked, 0)],
            )],
        )]
    };
    let tid = bob.bfcp().send(Primitive::ChairAction, revoke(a_req));
    let e = bob.bfcp().expect_response(tid);
    assert_eq!(error_code(&e), Some(ErrorCode::UnauthorizedOperation));

    // The chair revokes Alice: Bob talks.
    let tid = chair.bfcp().send(Primitive::ChairAction, revoke(a_req));
    assert_eq!(
        chair.bfcp().expect_response(tid).primitive,
        Primitive::ChairActionAck
    );
    let info = alice
        .bfcp()
        .expect_status(a_req, RequestStatus::Revoked, WAIT);
    assert_eq!(info.as_deref(), Some("revoked by a chair"));
    bob.bfcp()
        .expect_status(b_req, RequestStatus::Granted, WAIT);

    // The moderator mutes Bob through the focus: he loses the floor and is denied again.
    let body = r#"{"action":"mute","target":"sip:bob@example.com"}"#;
    let r = chair_ua.control(&mut chair.call, "INFO", body);
    assert_eq!(r.status, 200, "{}", r.reason);
    let info = bob
        .bfcp()
        .expect_status(b_req, RequestStatus::Revoked, WAIT);
    assert_eq!(info.as_deref(), Some("muted"));
    let (_, status, _) = bob.request_floor();
    assert_eq!(status, RequestStatus::Denied);
    follow(&mut sub, &mut view, |v| {
        let u = user(v, "sip:bob@example.com");
        u.is_some_and(|u| {
            u.endpoints[0].status == Some(cpm_focus::conference_info::EndpointStatus::MutedViaFocus)
        }) && media(v, "bob").is_some_and(|m| m.0 == MediaStatus::RecvOnly)
    });
    // Unmuted, he may ask again.
    let body = r#"{"action":"unmute","target":"sip:bob@example.com"}"#;
    assert_eq!(chair_ua.control(&mut chair.call, "INFO", body).status, 200);
    let (_, status, _) = bob.request_floor();
    assert_eq!(status, RequestStatus::Granted);
    assert_eq!(
        focus.metric("focus_floor_revokes_total{reason=\"chair\"}"),
        Some(1.0)
    );
    assert_eq!(
        focus.metric("focus_floor_revokes_total{reason=\"muted\"}"),
        Some(1.0)
    );
    assert_eq!(
        focus.metric("focus_floor_requests_total{outcome=\"denied\"}"),
        Some(1.0)
    );
    let _ = bob_ua.bye(&mut bob.call);
}

#[test]
fn a_dropped_connection_or_a_leave_revokes_the_floor() {
    let focus = talk_focus("");
    let (mut sub, mut view) = watch(&focus);
    let (_a, mut alice) = join(&focus, "alice");
    let (mut bob_ua, mut bob) = join(&focus, "bob");
    let (_c, mut carol) = join(&focus, "carol");
    assert_eq!(focus.metric("focus_rtp_legs"), Some(3.0));
    let (a_req, _, _) = alice.request_floor();
    let (b_req, _, _) = bob.request_floor();
    let (c_req, _, _) = carol.request_floor();

    // Alice's BFCP connection drops: revoked, Bob is granted; she shows inactive.
    alice.bfcp.take().unwrap().drop_connection();
    bob.bfcp()
        .expect_status(b_req, RequestStatus::Granted, WAIT);
    follow(&mut sub, &mut view, |v| {
        media(v, "alice")
            == Some((
                MediaStatus::Inactive,
                Some("floor control connection lost".into()),
            ))
            && media(v, "bob").is_some_and(|m| m.0 == MediaStatus::SendOnly)
    });
    assert_eq!(
        focus.metric("focus_floor_revokes_total{reason=\"connection_lost\"}"),
        Some(1.0)
    );
    let _ = a_req;
    // A new connection brings her back as a listener.
    alice.connect_bfcp();
    follow(&mut sub, &mut view, |v| {
        media(v, "alice") == Some((MediaStatus::RecvOnly, None))
    });

    // Bob (holding) leaves: Carol is granted, his leg and floor state are gone.
    assert_eq!(bob_ua.bye(&mut bob.call).status, 200);
    carol
        .bfcp()
        .expect_status(c_req, RequestStatus::Granted, WAIT);
    assert!(bob.bfcp().wait_closed(WAIT), "his BFCP connection closed");
    focus.wait_metric("focus_rtp_legs", WAIT, |v| v == 2.0);
    carol.send_rtp(2);
    alice.expect_rtp(2);
    assert_eq!(
        focus.metric("focus_floor_revokes_total{reason=\"left\"}"),
        Some(1.0)
    );
}

#[test]
fn a_silent_holder_loses_the_floor() {
    let focus = talk_focus("[rtp]\nsilence_timeout_s = 1\n");
    let (mut sub, mut view) = watch(&focus);
    let (_a, mut alice) = join(&focus, "alice");
    let (_b, mut bob) = join(&focus, "bob");
    let (a_req, _, _) = alice.request_floor();
    alice.send_rtp(1);
    bob.expect_rtp(1);
    let (b_req, _, _) = bob.request_floor();
    // Bob keeps his leg alive with RTCP; Alice's device goes quiet.
    let deadline = Instant::now() + Duration::from_secs(15);
    let info = loop {
        assert!(
            Instant::now() < deadline,
            "the silent holder kept the floor"
        );
        bob.send_rtcp();
        let got = alice.bfcp().wait_for(Duration::from_millis(300), |m| {
            m.primitive == Primitive::FloorRequestStatus && m.transaction_id == 0
        });
        if let Some(m) = got {
            let (id, status, _, info) = support::talk::request_status(&m);
            if id == a_req && status == RequestStatus::Revoked {
                break info;
            }
        }
    };
    assert_eq!(info.as_deref(), Some("no media from the holder"));
    bob.bfcp()
        .expect_status(b_req, RequestStatus::Granted, WAIT);
    follow(&mut sub, &mut view, |v| {
        media(v, "alice") == Some((MediaStatus::Inactive, Some("no RTP or RTCP".into())))
    });
    assert_eq!(
        focus.metric("focus_floor_revokes_total{reason=\"silent\"}"),
        Some(1.0)
    );
    assert!(focus.metric("focus_rtp_silent_total") >= Some(1.0));
    assert!(focus.metric("focus_rtcp_packets_received_total") >= Some(1.0));
}

#[test]
fn codecs_are_negotiated_without_transcoding() {
    let focus = talk_focus(
        r#"
[[groups]]
uri = "sip:strict@focus.example.com"
codecs = ["PCMA/8000"]
allow_signalling_only = false
"#,
    );
    // The talk group forwards PCMU only: an offer of PCMA and PCMU gets PCMU.
    let mut ua = Ua::udp(&focus, "dora");
    let t = ua.join_talk_with(TALK, &[(8, "PCMA/8000"), (0, "PCMU/8000")], true);
    assert_eq!(t.audio.formats, ["0"], "{}", t.answer);
    // A dynamic payload type keeps its number.
    let mut ua = Ua::udp(&focus, "eve");
    let t = ua.join_talk_with(TALK, &[(96, "pcmu/8000")], false);
    assert_eq!(t.audio.formats, ["96"]);
    assert!(t.audio.has("rtpmap:96 PCMU/8000"), "{}", t.answer);
    assert!(t.bfcp_section.is_none(), "no BFCP offered, none answered");
    // No common codec: the audio (and its floor) is declined with port 0...
    let (rtp, _rtcp) = rtp_pair();
    let offer = talk_offer(
        rtp.local_addr().unwrap().port(),
        &[(18, "G729/8000")],
        "a",
        true,
    );
    let mut ua = Ua::udp(&focus, "fred");
    let mut call = Call::new(TALK);
    let b = ua.invite(&mut call, Some(&offer));
    let ok = ua.expect_final(&b);
    assert_eq!(
        ok.status, 200,
        "signalling-only is allowed in the talk group"
    );
    let answer = String::from_utf8(ok.body.to_vec()).unwrap();
    let s = sections(&answer);
    assert_eq!(
        s.iter()
            .map(|m| (m.media.as_str(), m.port))
            .collect::<Vec<_>>(),
        vec![("audio", 0), ("application", 0)],
        "{answer}"
    );
    call.learn(&ok);
    ua.ack(&call);
    // ...and refused 488 where signalling-only is not allowed.
    let mut call = Call::new("sip:strict@focus.example.com");
    let b = ua.invite(&mut call, Some(&offer));
    assert_eq!(ua.expect_final(&b).status, 488);
}

#[test]
fn bad_floor_control_input_gets_bfcp_errors() {
    let focus = talk_focus("");
    let (_a, mut alice) = join(&focus, "alice");
    let addr = alice.bfcp_addr.unwrap();
    // An unknown conference: Error 1, closed.
    let mut c = BfcpClient::connect(addr, alice.conference_id.wrapping_add(1), alice.user_id);
    let tid = c.send(Primitive::Hello, vec![]);
    let e = c.expect_response(tid);
    assert_eq!(error_code(&e), Some(ErrorCode::ConferenceDoesNotExist));
    assert!(c.wait_closed(WAIT));
    // A user the conference does not know: Error 2, closed.
    // (User ids are random: take one that is not Alice's.)
    let stranger = if alice.user_id == 999 { 998 } else { 999 };
    let mut c = BfcpClient::connect(addr, alice.conference_id, stranger);
    let tid = c.send(Primitive::Hello, vec![]);
    let e = c.expect_response(tid);
    assert_eq!(error_code(&e), Some(ErrorCode::UserDoesNotExist));
    assert!(c.wait_closed(WAIT));
    // On a good connection: an unknown floor (Error 6), a release of nothing (Error 7), an
    // unknown mandatory attribute (Error 4): answered, the connection stays.
    let bfcp = alice.bfcp();
    let tid = bfcp.send(Primitive::FloorRequest, vec![Attribute::floor_id(9)]);
    assert_eq!(
        error_code(&bfcp.expect_response(tid)),
        Some(ErrorCode::InvalidFloorId)
    );
    let tid = bfcp.send(
        Primitive::FloorRelease,
        vec![Attribute::floor_request_id(77)],
    );
    assert_eq!(
        error_code(&bfcp.expect_response(tid)),
        Some(ErrorCode::FloorRequestIdDoesNotExist)
    );
    let mut raw = vec![0x20, 0x01, 0x00, 0x01];
    raw.extend_from_slice(&alice.conference_id.to_be_bytes());
    raw.extend_from_slice(&[0x00, 0x42]);
    raw.extend_from_slice(&alice.user_id.to_be_bytes());
    raw.extend_from_slice(&[0xff, 0x04, 0x00, 0x00]);
    let bfcp = alice.bfcp();
    bfcp.write(&raw);
    let e = bfcp.expect_response(0x42);
    assert_eq!(error_code(&e), Some(ErrorCode::UnknownMandatoryAttribute));
    let (_, status, _) = alice.request_floor();
    assert_eq!(status, RequestStatus::Granted, "the connection still works");
    assert_eq!(
        focus.metric("focus_bfcp_rejected_total{reason=\"unknown_conference\"}"),
        Some(1.0)
    );
    assert_eq!(
        focus.metric("focus_bfcp_rejected_total{reason=\"unknown_user\"}"),
        Some(1.0)
    );
    assert_eq!(
        focus.metric("focus_bfcp_rejected_total{reason=\"malformed\"}"),
        Some(1.0)
    );
    assert_eq!(
        focus.metric("focus_floor_requests_total{outcome=\"error\"}"),
        Some(1.0)
    );
}

/// Four consecutive free UDP ports starting at an even one (two RTP pairs), below both the
/// default RTP range of other test focuses (20000-29999) and the OS's ephemeral ports, so
/// nobody else takes them between this check and the focus binding them.
fn free_range() -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
    for i in 0..500u64 {
        let base = 10_000
            + ((seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(i * 7919))
                % 4_990) as u16
                * 2;
        let all: Vec<_> = (0..4)
            .map(|k| std::net::UdpSocket::bind(("127.0.0.1", base + k)))
            .collect();
        if all.iter().all(|s| s.is_ok()) {
            return base;
        }
    }
    panic!("no four free consecutive ports");
}

#[test]
fn every_talk_burst_metric_is_served() {
    let base = free_range();
    let focus = talk_focus(&format!(
        "[rtp]\nport_min = {base}\nport_max = {}\nsilence_timeout_s = 1\n[floor]\nmax_connections = 2\n",
        base + 3
    ));
    let mut a_ua = Ua::udp(&focus, "alice");
    let mut alice = a_ua.join_talk(TALK);
    let mut b_ua = Ua::udp(&focus, "bob");
    let mut bob = b_ua.join_talk(TALK);
    assert_eq!(focus.metric("focus_rtp_legs"), Some(2.0));
    // The range is used up: the next audio stream is declined.
    let mut c_ua = Ua::udp(&focus, "carol");
    let mut call = Call::new(TALK);
    let (rtp, _rtcp) = rtp_pair();
    let offer = talk_offer(
        rtp.local_addr().unwrap().port(),
        &[(0, "PCMU/8000")],
        "c",
        true,
    );
    let b = c_ua.invite(&mut call, Some(&offer));
    let ok = c_ua.expect_final(&b);
    assert_eq!(ok.status, 200);
    let answer = String::from_utf8(ok.body.to_vec()).unwrap();
    assert_eq!(sections(&answer)[0].port, 0, "{answer}");
    call.learn(&ok);
    c_ua.ack(&call);
    assert_eq!(focus.metric("focus_rtp_ports_exhausted_total"), Some(1.0));

    // An unknown conference, then two connections (the limit), and a third refused.
    let unknown = alice.conference_id.wrapping_add(1);
    let mut stray = BfcpClient::connect(alice.bfcp_addr.unwrap(), unknown, 1);
    let tid = stray.send(Primitive::Hello, vec![]);
    stray.expect_response(tid);
    assert!(stray.wait_closed(WAIT));
    focus.wait_metric("focus_bfcp_connections_active", WAIT, |v| v == 0.0);
    alice.connect_bfcp();
    bob.connect_bfcp();
    let mut third = BfcpClient::connect(alice.bfcp_addr.unwrap(), 1, 1);
    assert!(
        third.wait_closed(WAIT),
        "a connection beyond the limit stayed"
    );
    focus.wait_metric("focus_bfcp_connections_refused_total", WAIT, |v| v == 1.0);

    // A talk burst, a non-holder, and a silent holder.
    let (a_req, _, _) = alice.request_floor();
    alice.send_rtp(3);
    bob.expect_rtp(3);
    let (b_req, _, _) = bob.request_floor();
    bob.send_rtp(1);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(
            Instant::now() < deadline,
            "the silent holder kept the floor"
        );
        bob.send_rtcp();
        if bob
            .bfcp()
            .wait_for(Duration::from_millis(300), |m| {
                m.primitive == Primitive::FloorRequestStatus
                    && m.transaction_id == 0
                    && support::talk::request_status(m).0 == b_req
                    && support::talk::request_status(m).1 == RequestStatus::Granted
            })
            .is_some()
        {
            break;
        }
    }
    let _ = a_req;

    let text = focus.metrics();
    let value = |s: &str| support::metric_in(&text, s);
    assert_eq!(value("focus_floor_grants_total"), Some(2.0));
    assert_eq!(
        value("focus_floor_revokes_total{reason=\"silent\"}"),
        Some(1.0)
    );
    assert_eq!(value("focus_floor_talk_burst_seconds_count"), Some(1.0));
    assert_eq!(value("focus_rtp_packets_forwarded_total"), Some(3.0));
    assert_eq!(value("focus_rtp_forward_seconds_count"), Some(1.0 * 3.0));
    assert!(value("focus_rtp_forward_seconds_bucket{le=\"0.01\"}") >= Some(3.0));
    assert!(value("focus_rtp_packets_dropped_total{reason=\"not_holder\"}") >= Some(1.0));
    assert!(value("focus_bfcp_messages_received_total") >= Some(4.0));
    assert!(value("focus_bfcp_messages_sent_total") >= Some(4.0));
    assert_eq!(
        value("focus_bfcp_rejected_total{reason=\"unknown_conference\"}"),
        Some(1.0)
    );
    // Every talk-burst metric src/metrics.rs describes is served, with its HELP.
    let names: Vec<&str> = cpm_focus::metrics::METRICS
        .iter()
        .map(|(n, _, _)| *n)
        .filter(|n| {
            ["focus_floor_", "focus_bfcp_", "focus_rtp_", "focus_rtcp_"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .collect();
    assert!(names.len() >= 16, "{names:?}");
    for name in names {
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && !l.starts_with('#')),
            "{name} is not served:\n{text}"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP"
        );
    }
}
