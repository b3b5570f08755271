//! Graceful shutdown on SIGTERM: participants get a BYE, subscribers a final NOTIFY, new
//! sessions are refused while draining, and the process exits 0 once everyone answered.

mod support;

use cpm_focus::conference_info::{DisconnectionMethod, EndpointStatus};
use cpm_focus::sip::{HeaderName, Method};
use std::time::{Duration, Instant};
use support::{endpoint_state, user_count, Call, Focus, Ua, AUDIO_OFFER, TEAM, WAIT};

#[test]
fn sigterm_ends_sessions_and_exits_zero() {
    // A grace period far beyond the test's patience: the focus must exit because everyone
    // answered, not because the grace period ran out.
    let mut focus = Focus::start("[shutdown]\ngrace_s = 60\n");
    let mut alice = Ua::udp(&focus, "alice");
    let (call, _) = alice.join(TEAM);
    let mut sub = Ua::tcp(&focus, "sub");
    let (sub_call, first) = sub.subscribe_to(TEAM);
    assert_eq!(user_count(&first.doc), Some(1));

    focus.terminate();

    let bye = alice.expect_request(Method::Bye, WAIT);
    let req = bye.request().unwrap();
    assert_eq!(req.call_id(), call.call_id);
    assert_eq!(req.from.tag(), call.to_tag.as_deref());
    assert_eq!(req.to.tag(), Some(call.from_tag.as_str()));
    assert_eq!(req.uri.to_string(), alice.contact_uri());
    assert_eq!(
        req.headers.get_by_name("Reason"),
        Some("SIP;cause=200;text=\"conference ended\"")
    );

    // While the BYE is unanswered the focus drains: a new join is refused with Retry-After.
    let mut carol = Ua::udp(&focus, "carol");
    let mut c = Call::new(TEAM);
    let b = carol.invite(&mut c, Some(AUDIO_OFFER));
    let r = carol.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (503, "Service Unavailable"));
    assert_eq!(r.headers.get(HeaderName::RetryAfter), Some("5"));

    // The subscriber's last NOTIFY: terminated, full state, alice booted.
    let last = sub.expect_notify();
    assert_eq!(last.request.call_id(), sub_call.call_id);
    assert_eq!(last.state, "terminated;reason=noresource");
    assert_eq!(user_count(&last.doc), Some(0));
    assert_eq!(
        endpoint_state(&last.doc, &alice.aor()),
        Some((
            EndpointStatus::Disconnected,
            Some(DisconnectionMethod::Booted)
        ))
    );

    // Once the BYE is answered nothing is left to wait for: the process exits. WAIT only
    // guards against a hang, and it is far below the 60 s grace, so an exit within it is not
    // the grace running out.
    alice.respond(&bye, 200);
    let status = focus.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(sub.next_notify(Duration::from_millis(100)).is_none());
}

#[test]
fn sigterm_on_an_idle_focus_exits_zero_at_once() {
    // A grace far beyond the hang guard: an idle focus that waited for anything at all
    // would not exit within WAIT.
    let mut focus = Focus::start("[shutdown]\ngrace_s = 60\n");
    let mut ua = Ua::udp(&focus, "alice");
    assert_eq!(ua.options(TEAM).status, 200);
    focus.terminate();
    let status = focus.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "exit status {status}");
}

#[test]
fn sigterm_with_an_unresponsive_participant_exits_after_the_grace_period() {
    let mut focus = Focus::start("[shutdown]\ngrace_s = 1\n");
    let mut mute = Ua::udp(&focus, "mute");
    let (_call, _) = mute.join(TEAM);
    let mut bob = Ua::tcp(&focus, "bob");
    let (bob_call, _) = bob.join(TEAM);
    let t = Instant::now();
    focus.terminate();
    // Both get a BYE (bob's on his own connection); only bob answers.
    let bye = bob.expect_request(Method::Bye, WAIT);
    assert_eq!(bye.request().unwrap().call_id(), bob_call.call_id);
    assert_eq!(
        bye.origin, bob.primary,
        "the BYE must reuse the participant's connection"
    );
    bob.respond(&bye, 200);
    let first = mute.expect_request(Method::Bye, WAIT);
    // A SUBSCRIBE while draining is refused too.
    let mut late = Ua::udp(&focus, "late");
    let mut c = Call::new(TEAM);
    let r = late.subscribe(&mut c, None);
    assert_eq!(
        (r.status, r.headers.get(HeaderName::RetryAfter)),
        (503, Some("5"))
    );
    // Over UDP the unanswered BYE is retransmitted until the focus gives up at the grace time.
    let again = mute.expect_request(Method::Bye, WAIT);
    assert_eq!(again.raw, first.raw, "a retransmission repeats the BYE");
    // Not before the grace (measured from before the signal); after it only the hang
    // guard: a late exit on a loaded machine is no failure of the grace.
    let status = focus.wait_exit(WAIT);
    assert_eq!(status.code(), Some(0), "exit status {status}");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "exit after {took:?}, grace is 1 s"
    );
}

#[test]
fn sigterm_right_after_the_ready_line_is_graceful() {
    // The ready line promises the focus is up, signal handling included.
    for _ in 0..40 {
        let mut focus = Focus::start("");
        focus.terminate();
        let status = focus.wait_exit(WAIT);
        assert_eq!(status.code(), Some(0), "exit status {status}");
    }
}
