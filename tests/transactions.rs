//! Transaction-layer behaviour over UDP: the 2xx to INVITE retransmitted until its ACK,
//! retransmitted INVITEs absorbed, and the BYE that ends a session whose ACK never came.

mod support;

use cpm_focus::conference_info::{DisconnectionMethod, EndpointStatus};
use cpm_focus::sip::Method;
use std::time::{Duration, Instant};
use support::{endpoint_state, follow, user_count, Call, Focus, Ua, AUDIO_OFFER, TEAM, WAIT};

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[test]
fn lost_2xx_is_retransmitted_at_t1_doubling_until_the_ack() {
    const T1: u64 = 150;
    let focus = Focus::start(&format!("[sip]\nt1_ms = {T1}\n"));
    let t1 = Duration::from_millis(T1);
    let mut ua = Ua::udp(&focus, "alice");
    let mut call = Call::new(TEAM);
    let sent = Instant::now();
    let b = ua.invite(&mut call, Some(AUDIO_OFFER));
    assert_eq!(ua.expect_response(&b).status, 100);
    let ok = ua
        .wait_for(WAIT, |m| m.response().is_some_and(|r| r.status == 200))
        .expect("no 200");
    // Do not ACK: the focus must think the 200 was lost.
    let mut copies = Vec::new();
    for _ in 0..2 {
        let again = ua
            .wait_for(WAIT, |m| m.response().is_some_and(|r| r.status == 200))
            .expect("the 200 was not retransmitted");
        assert_eq!(
            again.raw, ok.raw,
            "a retransmission must repeat the 200 byte for byte"
        );
        copies.push(again.at - sent);
    }
    // Copies after T1, then 2·T1 more (RFC 3261 §13.3.1.4): at T1 and 3·T1 after the 200 was
    // sent. Measured from our INVITE's send time, which comes before the 200's: a late read
    // of the first 200 cannot shrink a gap, and timers never fire early (both processes read
    // the same monotonic clock), so each copy comes no sooner. A loaded machine makes them
    // late, which is no failure: the wait for each is only guarded against a hang. 3·T1 also
    // tells doubling from a fixed interval (2·T1).
    for (i, at) in copies.iter().enumerate() {
        let expected = t1 * (2u32.pow(i as u32 + 1) - 1);
        assert!(
            *at >= expected,
            "copy {i} came {} ms after the INVITE, before the {} ms the timer allows (all: {:?})",
            ms(*at),
            ms(expected),
            copies.iter().map(|g| ms(*g)).collect::<Vec<_>>()
        );
    }
    call.learn(ok.response().unwrap());
    ua.ack(&call);
    // The next copy was due 4·T1 after the last; after the ACK none comes.
    ua.assert_quiet(t1 * 6, "no 200 after the ACK");
    assert_eq!(ua.bye(&mut call).status, 200);
}

#[test]
fn retransmitted_invite_gets_the_same_200_and_joins_once() {
    // T1 long enough that no timer retransmission can be mistaken for the answer to ours.
    let focus = Focus::start("[sip]\nt1_ms = 3000\nt2_ms = 4000\n");
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_sub, first) = watcher.subscribe_to(TEAM);
    let mut view = first.doc;
    let mut ua = Ua::udp(&focus, "bob");
    let mut call = Call::new(TEAM);
    let b = ua.invite(&mut call, Some(AUDIO_OFFER));
    assert_eq!(ua.expect_response(&b).status, 100);
    let ok = ua
        .wait_for(WAIT, |m| m.response().is_some_and(|r| r.status == 200))
        .expect("no 200");
    ua.retransmit(&b);
    let again = ua
        .wait_for(Duration::from_millis(2500), |m| {
            m.response().is_some_and(|r| r.status == 200)
        })
        .expect("the retransmitted INVITE got no 200");
    assert_eq!(
        again.raw, ok.raw,
        "the INVITE copy must get the same 200 (same To tag)"
    );
    assert_eq!(
        focus.metric("focus_sip_retransmissions_received_total"),
        Some(1.0)
    );
    call.learn(ok.response().unwrap());
    ua.ack(&call);
    // After the ACK a late copy of the INVITE is absorbed silently.
    ua.retransmit(&b);
    ua.assert_quiet(
        Duration::from_millis(300),
        "a stale INVITE copy after the ACK",
    );

    // One participant, one endpoint.
    let n = watcher.expect_notify();
    cpm_focus::conference_info::apply(&mut view, &n.doc).unwrap();
    assert_eq!(user_count(&view), Some(1));
    assert_eq!(
        endpoint_state(&view, &ua.aor()),
        Some((EndpointStatus::Connected, None))
    );
    assert_eq!(focus.metric("focus_participants_active"), Some(1.0));
    assert!(
        watcher.next_notify(Duration::from_millis(300)).is_none(),
        "a second join was notified"
    );
    assert_eq!(ua.bye(&mut call).status, 200);
    assert_eq!(focus.metric("focus_participants_active"), Some(0.0));
}

#[test]
fn without_an_ack_the_focus_gives_up_after_64_t1_and_sends_bye() {
    // 64·T1 = 3.2 s.
    let focus = Focus::start("[sip]\nt1_ms = 50\nt2_ms = 400\n");
    let mut watcher = Ua::tcp(&focus, "watcher");
    let (_sub, first) = watcher.subscribe_to(TEAM);
    let mut view = first.doc;
    let mut ua = Ua::udp(&focus, "carol");
    let mut call = Call::new(TEAM);
    // Before the focus's 200, so Timer H (64·T1 from the 200) cannot look early.
    let sent = Instant::now();
    let b = ua.invite(&mut call, Some(AUDIO_OFFER));
    let ok = ua.expect_final(&b);
    assert_eq!(ok.status, 200);
    call.learn(&ok);
    let tag = call.to_tag.clone().unwrap();

    // A generous guard against a hang only: late is no failure on a loaded machine.
    let bye = ua.expect_request(Method::Bye, Duration::from_secs(20));
    let waited = bye.at - sent;
    assert!(
        waited >= Duration::from_millis(3200),
        "BYE {} ms after the INVITE, before 64·T1 = 3200 ms",
        ms(waited)
    );
    let req = bye.request().unwrap();
    // In the dialog, to the Contact the INVITE gave.
    assert_eq!(req.uri.to_string(), ua.contact_uri());
    assert_eq!(req.call_id(), call.call_id);
    assert_eq!(req.from.tag(), Some(tag.as_str()));
    assert_eq!(req.to.tag(), Some(call.from_tag.as_str()));
    assert_eq!(req.cseq.method, Method::Bye);
    assert_eq!(
        req.headers.get_by_name("Reason"),
        Some("SIP;cause=408;text=\"no ACK\"")
    );
    ua.respond(&bye, 200);
    // Every 200 before the BYE was a retransmission of the same one.
    let others = ua.drain(Duration::from_millis(200));
    assert!(
        others.iter().all(|m| m
            .response()
            .is_some_and(|r| r.status == 200 && r.to.tag() == Some(tag.as_str()))),
        "unexpected: {:?}",
        others.iter().map(|m| m.text()).collect::<Vec<_>>()
    );
    assert_eq!(focus.metric("focus_sip_ack_timeouts_total"), Some(1.0));
    assert_eq!(focus.metric("focus_participants_active"), Some(0.0));

    // The roster shows the participant failed.
    let entity = ua.aor();
    follow(&mut watcher, &mut view, |v| {
        endpoint_state(v, &entity).map(|s| s.0) == Some(EndpointStatus::Disconnected)
    });
    assert_eq!(
        endpoint_state(&view, &entity),
        Some((
            EndpointStatus::Disconnected,
            Some(DisconnectionMethod::Failed)
        ))
    );
    assert_eq!(user_count(&view), Some(0));
}

#[test]
fn a_request_arriving_again_by_another_path_is_482() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "dave");
    let mut call = Call::new(TEAM);
    let first = ua.send_request(&mut call, "OPTIONS", "", None);
    assert_eq!(ua.expect_final(&first).status, 200);
    // Same From tag, Call-ID and CSeq, another branch: a merged request (RFC 3261 §8.2.2.2).
    let other = "z9hG4bK-e2e-merged";
    ua.send_raw(&ua.request_text("OPTIONS", &call, call.cseq, other, "", None));
    let r = ua.expect_final(other);
    assert_eq!((r.status, &*r.reason), (482, "Loop Detected"));
    // The original's retransmission still gets its 200.
    ua.retransmit(&first);
    assert_eq!(ua.expect_final(&first).status, 200);
}

#[test]
fn a_bye_before_the_ack_stops_the_2xx_retransmissions() {
    const T1: u64 = 100;
    let focus = Focus::start(&format!("[sip]\nt1_ms = {T1}\n"));
    let mut ua = Ua::udp(&focus, "erin");
    let mut call = Call::new(TEAM);
    let b = ua.invite(&mut call, Some(AUDIO_OFFER));
    let ok = ua.expect_final(&b);
    assert_eq!(ok.status, 200);
    call.learn(&ok);
    // The ACK is "lost"; the BYE proves the 200 arrived.
    let bye = ua.send_request(&mut call, "BYE", "", None);
    assert_eq!(ua.expect_final_to(&bye, Some(Method::Bye)).status, 200);
    let stopped = Instant::now();
    // Without the BYE standing in for the ACK, copies would come at T1, 3·T1, 7·T1. (A copy
    // sent before the BYE arrived may still be on its way: ignore what came right away.)
    let late: Vec<String> = ua
        .drain(Duration::from_millis(T1 * 10))
        .into_iter()
        .filter(|m| m.at > stopped + Duration::from_millis(T1 / 2))
        .map(|m| m.text())
        .collect();
    assert!(
        late.is_empty(),
        "200 retransmissions after the BYE: {late:?}"
    );
    assert_eq!(focus.metric("focus_sip_ack_timeouts_total"), Some(0.0));
    assert_eq!(focus.metric("focus_participants_active"), Some(0.0));
}
