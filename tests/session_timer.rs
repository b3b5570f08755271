//! Session timers (RFC 4028) end to end: the focus negotiates the session interval and the
//! refresher in its 2xx, refuses too-small intervals with 422, keeps participants that
//! refresh, hangs up (and announces) those that stop, and refreshes itself by re-INVITE or
//! UPDATE when it is the refresher. Short timers come from the test configuration.

mod support;

use cpm_focus::conference_info::{DisconnectionMethod, EndpointStatus};
use cpm_focus::sip::{HeaderName, Method, Response};
use std::time::{Duration, Instant};
use support::{endpoint_state, follow, Call, Focus, Rx, Ua, AUDIO_OFFER, TEAM, WAIT};

/// min_se 2 s so that tests can use intervals of a few seconds.
const TIMERS: &str = "[session_timer]\nexpires_s = 30\nmin_se_s = 2\n";

fn header(r: &Response, name: HeaderName) -> Option<String> {
    r.headers.get(name).map(str::to_string)
}

/// The next `method` request of the focus in dialog `call_id` with a CSeq above `after`
/// (over UDP the focus retransmits until answered: older copies are skipped).
fn next_in_dialog(ua: &mut Ua, method: Method, call_id: &str, after: u32) -> Rx {
    ua.wait_for(Duration::from_secs(10), |m| {
        m.request()
            .is_some_and(|r| r.method == method && r.call_id() == call_id && r.cseq.seq > after)
    })
    .unwrap_or_else(|| panic!("{}: no {method} in {call_id} after CSeq {after}", ua.name))
}

/// The BYE in `call`, answered 200, waiting up to 10 s.
fn bye_in(ua: &mut Ua, call: &Call) -> Rx {
    let bye = ua
        .wait_for(Duration::from_secs(10), |m| {
            m.request()
                .is_some_and(|r| r.method == Method::Bye && r.call_id() == call.call_id)
        })
        .unwrap_or_else(|| panic!("{}: no BYE in {}", ua.name, call.call_id));
    ua.respond(&bye, 200);
    bye
}

/// INVITE to the team with `headers` (each ending in CRLF); the final response.
fn invite(ua: &mut Ua, call: &mut Call, headers: &str) -> Response {
    ua.invite_headers = headers.to_string();
    let b = ua.invite(call, Some(AUDIO_OFFER));
    let r = ua.expect_final(&b);
    if r.status == 200 {
        call.learn(&r);
        ua.ack(call);
    }
    r
}

#[test]
fn a_too_small_interval_is_422_and_the_retry_gets_the_negotiated_values() {
    let focus = Focus::start("[session_timer]\nexpires_s = 600\nmin_se_s = 120\n");
    let mut alice = Ua::udp(&focus, "alice");
    let mut call = Call::new(TEAM);
    let r = invite(
        &mut alice,
        &mut call,
        "Supported: timer\r\nSession-Expires: 100\r\n",
    );
    assert_eq!(r.status, 422, "{} {}", r.status, r.reason);
    assert_eq!(&*r.reason, "Session Interval Too Small");
    assert_eq!(header(&r, HeaderName::MinSe).as_deref(), Some("120"));
    assert_eq!(
        focus.metric("focus_session_timer_rejections_total"),
        Some(1.0)
    );
    // RFC 4028 §7.4: the retry takes the Min-SE (a new transaction in the same call).
    let r = invite(
        &mut alice,
        &mut call,
        "Supported: timer\r\nSession-Expires: 120\r\nMin-SE: 120\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        header(&r, HeaderName::SessionExpires).as_deref(),
        Some("120;refresher=uac"),
        "a participant that supports timers refreshes"
    );
    assert_eq!(header(&r, HeaderName::Require).as_deref(), Some("timer"));
    assert!(r.headers.has_token(HeaderName::Supported, "timer"));

    // A longer interval is shortened to the focus's expires; the asked refresher is kept.
    let mut bob = Ua::udp(&focus, "bob");
    let r = invite(
        &mut bob,
        &mut Call::new(TEAM),
        "Supported: timer\r\nSession-Expires: 3600;refresher=uas\r\n",
    );
    assert_eq!(
        header(&r, HeaderName::SessionExpires).as_deref(),
        Some("600;refresher=uas")
    );
    // Without timer support the focus refreshes, and requires nothing.
    let mut carol = Ua::udp(&focus, "carol");
    let r = invite(&mut carol, &mut Call::new(TEAM), "");
    assert_eq!(
        header(&r, HeaderName::SessionExpires).as_deref(),
        Some("600;refresher=uas")
    );
    assert_eq!(header(&r, HeaderName::Require), None);
}

#[test]
fn a_participant_that_refreshes_stays_and_one_that_stops_is_hung_up_and_announced() {
    let focus = Focus::start(TIMERS);
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_sub, first) = watcher.subscribe_to(TEAM);
    let mut view = first.doc;
    let mut alice = Ua::udp(&focus, "alice");
    let mut call = Call::new(TEAM);
    // A 12 s interval refreshed by alice: the focus hangs up 12 - 12/3 = 8 s after the last
    // refresh (refreshes 2 s apart leave 6 s to spare on a loaded machine).
    let se = "Supported: timer\r\nSession-Expires: 12;refresher=uac\r\n";
    let r = invite(&mut alice, &mut call, se);
    assert_eq!(r.status, 200);
    assert_eq!(
        header(&r, HeaderName::SessionExpires).as_deref(),
        Some("12;refresher=uac")
    );
    let aor = alice.aor();
    follow(&mut watcher, &mut view, |v| {
        endpoint_state(v, &aor).is_some_and(|(s, _)| s == EndpointStatus::Connected)
    });
    // Three refreshes, 2 s apart (UPDATE, re-INVITE, UPDATE), and no BYE.
    for (i, method) in ["UPDATE", "INVITE", "UPDATE"].into_iter().enumerate() {
        alice.assert_quiet(Duration::from_secs(2), "a participant that refreshes stays");
        let b = if method == "INVITE" {
            alice.invite(&mut call, Some(AUDIO_OFFER))
        } else {
            alice.send_request(&mut call, method, se, None)
        };
        let r = alice.expect_final(&b);
        assert_eq!(r.status, 200, "refresh {i} ({method})");
        assert_eq!(
            header(&r, HeaderName::SessionExpires).as_deref(),
            Some("12;refresher=uac")
        );
        if method == "INVITE" {
            alice.ack(&call);
        }
    }
    assert_eq!(
        focus.metric("focus_session_timer_refreshes_total{by=\"participant\"}"),
        Some(3.0)
    );
    // Alice stops refreshing: BYE 8 s after the last refresh.
    let stopped = Instant::now();
    let bye = bye_in(&mut alice, &call);
    let after = bye.at.duration_since(stopped);
    assert!(
        after >= Duration::from_millis(7000),
        "BYE only {after:?} after the last refresh"
    );
    assert_eq!(
        bye.request().unwrap().headers.get(HeaderName::Reason),
        Some("SIP;cause=408;text=\"session timer expired\"")
    );
    follow(&mut watcher, &mut view, |v| {
        endpoint_state(v, &aor)
            == Some((
                EndpointStatus::Disconnected,
                Some(DisconnectionMethod::Failed),
            ))
    });
    assert_eq!(focus.metric("focus_session_timer_expired_total"), Some(1.0));
    assert_eq!(focus.metric("focus_participants_active"), Some(0.0));
}

#[test]
fn the_focus_refreshes_by_reinvite_or_update_and_hangs_up_when_unanswered() {
    let focus = Focus::start("[session_timer]\nexpires_s = 6\nmin_se_s = 2\n");
    // Alice does not support timers and does not allow UPDATE: re-INVITE every 3 s.
    let mut alice = Ua::udp(&focus, "alice");
    let mut a_call = Call::new(TEAM);
    let r = invite(&mut alice, &mut a_call, "");
    assert_eq!(
        header(&r, HeaderName::SessionExpires).as_deref(),
        Some("6;refresher=uas")
    );
    // Bob allows UPDATE: UPDATE every 3 s.
    let mut bob = Ua::udp(&focus, "bob");
    let mut b_call = Call::new(TEAM);
    let r = invite(
        &mut bob,
        &mut b_call,
        "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE\r\n",
    );
    assert_eq!(r.status, 200);

    let (mut a_cseq, mut b_cseq) = (0, 0);
    for round in 0..2 {
        let reinvite = next_in_dialog(&mut alice, Method::Invite, &a_call.call_id, a_cseq);
        let req = reinvite.request().unwrap().clone();
        a_cseq = req.cseq.seq;
        assert_eq!(req.call_id(), a_call.call_id, "in alice's dialog");
        assert_eq!(req.to.tag(), Some(a_call.from_tag.as_str()));
        assert_eq!(
            req.headers.get(HeaderName::SessionExpires),
            Some("6;refresher=uac")
        );
        assert_eq!(
            req.headers.get(HeaderName::ContentType),
            Some("application/sdp"),
            "a refresh re-INVITE offers the unchanged SDP"
        );
        let contact = alice.contact_header();
        alice.answer(
            &reinvite,
            200,
            None,
            &contact,
            Some(("application/sdp", AUDIO_OFFER)),
        );
        let ack = alice.expect_request(Method::Ack, WAIT);
        assert_eq!(
            ack.request().unwrap().cseq.seq,
            req.cseq.seq,
            "round {round}"
        );

        let update = next_in_dialog(&mut bob, Method::Update, &b_call.call_id, b_cseq);
        let req = update.request().unwrap();
        b_cseq = req.cseq.seq;
        assert!(req.body.is_empty());
        assert_eq!(
            req.headers.get(HeaderName::SessionExpires),
            Some("6;refresher=uac")
        );
        bob.respond(&update, 200);
    }
    focus.wait_metric(
        "focus_session_timer_refreshes_total{by=\"focus\"}",
        WAIT,
        |v| v >= 4.0,
    );
    // Bob's dialog is gone on his side: 481 to the refresh, and the focus hangs up.
    let update = next_in_dialog(&mut bob, Method::Update, &b_call.call_id, b_cseq);
    bob.respond(&update, 481);
    let bye = bye_in(&mut bob, &b_call);
    assert_eq!(
        bye.request().unwrap().headers.get(HeaderName::Reason),
        Some("SIP;cause=408;text=\"session refresh failed\"")
    );
    // Alice vanishes (answers nothing): the session ends at the end of its interval.
    let reinvite = next_in_dialog(&mut alice, Method::Invite, &a_call.call_id, a_cseq);
    let sent = reinvite.at;
    let bye = alice
        .wait_for(Duration::from_secs(10), |m| {
            m.request().is_some_and(|r| r.method == Method::Bye)
        })
        .expect("a BYE once the unanswered refresh's interval ran out");
    assert!(
        bye.at.duration_since(sent) >= Duration::from_millis(2500),
        "BYE {:?} after the unanswered refresh",
        bye.at.duration_since(sent)
    );
    focus.wait_metric("focus_participants_active", WAIT, |v| v == 0.0);
    assert_eq!(focus.metric("focus_session_timer_expired_total"), Some(2.0));
}
