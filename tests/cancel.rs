//! CANCEL (RFC 3261 §9): for a transaction that does not exist, racing its INVITE, and
//! each side of the race forced: a CANCEL that finds the join still pending (held at the
//! online credit check) ends it with 487, and one that comes after the 200 leaves the call up.

mod support;

use cpm_focus::conference_info::{DisconnectionMethod, EndpointStatus};
use cpm_focus::sip::Method;
use std::time::{Duration, Instant};
use support::{
    endpoint_state, follow, user, user_count, without_version, Call, Credit, CreditServer, Focus,
    Ua, Watcher, AUDIO_OFFER, TEAM, WAIT,
};

#[test]
fn cancel_for_an_unknown_transaction_is_481() {
    let focus = Focus::start("");
    for tcp in [false, true] {
        let mut ua = if tcp {
            Ua::tcp(&focus, "alice")
        } else {
            Ua::udp(&focus, "alice")
        };
        // A CANCEL whose branch matches no INVITE.
        let mut call = Call::new(TEAM);
        let b = ua.send_request(&mut call, "CANCEL", "", None);
        let r = ua.expect_final(&b);
        assert_eq!(
            (r.status, &*r.reason),
            (481, "Call/Transaction Does Not Exist"),
            "tcp={tcp}"
        );
        // The same, after its INVITE was answered and the transaction is over for CANCEL
        // purposes on the client side: still 200 (the server transaction lingers) or 481.
        let (call, _) = ua.join(TEAM);
        let b = ua.cancel(&call);
        let r = ua.expect_final_to(&b, Some(Method::Cancel));
        assert!(
            r.status == 200 || r.status == 481,
            "CANCEL after 200: {}",
            r.status
        );
        ua.assert_quiet(
            std::time::Duration::from_millis(100),
            "a CANCEL after the 200 must not end the call with a 487",
        );
    }
}

/// INVITE and CANCEL back to back, `rounds` times, each from a new agent. Either outcome is
/// fine, as long as it is consistent: 487 (and 200 to the CANCEL) and the participant never
/// stays in the roster; or 200 to the INVITE (and to the CANCEL), then ACK and BYE work.
fn race(tcp: bool, rounds: usize) {
    let focus = Focus::start("");
    let mut sub = Ua::udp(&focus, "watcher");
    let (_sub_call, first) = sub.subscribe_to(TEAM);
    let mut view = first.doc;
    let mut cancelled = Vec::new();
    let mut answered = Vec::new();
    for i in 0..rounds {
        let name = format!("racer{i}");
        let mut ua = if tcp {
            Ua::tcp(&focus, &name)
        } else {
            Ua::udp(&focus, &name)
        };
        let mut call = Call::new(TEAM);
        let b = ua.invite(&mut call, Some(AUDIO_OFFER));
        ua.cancel(&call);
        let to_cancel = ua.expect_final_to(&b, Some(Method::Cancel));
        assert_eq!(
            to_cancel.status, 200,
            "CANCEL of a live INVITE: {}",
            to_cancel.reason
        );
        let to_invite = ua.expect_final_to(&b, Some(Method::Invite));
        match to_invite.status {
            487 => {
                assert_eq!(&*to_invite.reason, "Request Terminated");
                cancelled.push(ua.aor());
                // The 487 was ACKed (by expect_final); nothing else may follow, no 200 above all.
                ua.assert_quiet(std::time::Duration::from_millis(50), "after the 487");
            }
            200 => {
                call.learn(&to_invite);
                ua.ack(&call);
                let bye = ua.bye(&mut call);
                assert_eq!(
                    bye.status, 200,
                    "BYE after a 200 that won the race: {}",
                    bye.reason
                );
                answered.push(ua.aor());
            }
            other => panic!("INVITE answered {other} {}", to_invite.reason),
        }
    }
    eprintln!(
        "tcp={tcp}: {} cancelled, {} answered",
        cancelled.len(),
        answered.len()
    );

    // A sentinel joins last. The roster must settle with the sentinel in it, every answered
    // racer departed and no cancelled one at all (a cancelled join may show up briefly and
    // be withdrawn: the focus learns of the CANCEL after the session answered).
    let mut sentinel = Ua::udp(&focus, "sentinel");
    let (mut sentinel_call, _) = sentinel.join(TEAM);
    follow(&mut sub, &mut view, |v| {
        user_count(v) == Some(1)
            && endpoint_state(v, &sentinel.aor()) == Some((EndpointStatus::Connected, None))
            && cancelled.iter().all(|a| user(v, a).is_none())
            && answered.iter().all(|a| {
                endpoint_state(v, a)
                    == Some((
                        EndpointStatus::Disconnected,
                        Some(DisconnectionMethod::Departed),
                    ))
            })
    });
    assert_eq!(focus.metric("focus_participants_active"), Some(1.0));
    assert_eq!(
        focus.metric("focus_sip_cancelled_total").unwrap_or(0.0),
        cancelled.len() as f64
    );
    // A fresh full document agrees.
    let mut fetcher = Ua::udp(&focus, "fetcher");
    let mut call = Call::new(TEAM);
    assert_eq!(fetcher.subscribe(&mut call, Some(0)).status, 200);
    let fresh = fetcher.expect_notify();
    assert_eq!(without_version(&fresh.doc), without_version(&view));
    assert_eq!(sentinel.bye(&mut sentinel_call).status, 200);
    assert_eq!(focus.metric("focus_participants_active"), Some(0.0));
}

#[test]
fn invite_and_cancel_back_to_back_over_udp() {
    race(false, 20);
}

#[test]
fn invite_and_cancel_back_to_back_over_tcp() {
    race(true, 20);
}

/// A focus whose joins wait for `server`'s online credit check.
fn focus_with_credit(server: &CreditServer) -> Focus {
    Focus::start(&format!(
        "[charging]\nonline_url = \"{}\"\nonline_timeout_ms = 20000\n",
        server.url()
    ))
}

/// Waits until `server` has been asked `n` times.
fn expect_checks(server: &CreditServer, n: usize) {
    let deadline = Instant::now() + WAIT;
    while server.requests().len() < n {
        assert!(Instant::now() < deadline, "credit check {n} never arrived");
        // The server has no channel to the test: poll its list.
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The CANCEL side of the race, forced: the credit server holds the join, so the CANCEL
/// always finds the INVITE pending. It is answered 200, the INVITE 487, and when the held
/// check is granted afterwards nobody is admitted: the others never see the caller.
#[test]
fn a_cancel_that_finds_the_join_pending_ends_it_with_487() {
    for tcp in [false, true] {
        let server = CreditServer::start(Credit::Grant);
        let focus = focus_with_credit(&server);
        let mut watcher = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
        let mut sentinel = Ua::udp(&focus, "sentinel");
        let (mut sentinel_call, _) = sentinel.join(TEAM);
        watcher.until_status(&sentinel.aor(), EndpointStatus::Connected);
        let asked = server.requests().len();

        server.set(Credit::Stall);
        let mut ua = if tcp {
            Ua::tcp(&focus, "caller")
        } else {
            Ua::udp(&focus, "caller")
        };
        let mut call = Call::new(TEAM);
        let b = ua.invite(&mut call, Some(AUDIO_OFFER));
        expect_checks(&server, asked + 1);
        ua.cancel(&call);
        let to_cancel = ua.expect_final_to(&b, Some(Method::Cancel));
        assert_eq!(
            (to_cancel.status, &*to_cancel.reason),
            (200, "OK"),
            "tcp={tcp}"
        );
        let to_invite = ua.expect_final_to(&b, Some(Method::Invite));
        assert_eq!(
            (to_invite.status, &*to_invite.reason),
            (487, "Request Terminated"),
            "tcp={tcp}"
        );

        // The held check is granted now: the cancelled join must stay cancelled.
        server.set(Credit::Grant);
        focus.wait_metric(
            "focus_credit_checks_total{outcome=\"granted\"}",
            WAIT,
            |v| v >= (asked + 1) as f64,
        );
        // A change after it proves the watcher's view is past anything the grant caused.
        assert_eq!(sentinel.bye(&mut sentinel_call).status, 200, "tcp={tcp}");
        watcher.until_gone(&sentinel.aor(), DisconnectionMethod::Departed);
        assert_eq!(user(&watcher.view, &ua.aor()), None, "tcp={tcp}");
        watcher.assert_never_saw(&["caller@"]);
        ua.assert_quiet(Duration::from_millis(100), "after the 487 (no 200, no BYE)");
        assert_eq!(focus.metric("focus_participants_active"), Some(0.0));
        assert_eq!(focus.metric("focus_sip_cancelled_total"), Some(1.0));
    }
}

/// The other side, forced: the CANCEL comes after the 200 (before the ACK). It changes
/// nothing (RFC 3261 §9.2): no 487, the call is up, then ACK and BYE work and the others see
/// the caller join and depart.
#[test]
fn a_cancel_after_the_200_leaves_the_call_up() {
    for tcp in [false, true] {
        let focus = Focus::start("");
        let mut watcher = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
        let mut ua = if tcp {
            Ua::tcp(&focus, "caller")
        } else {
            Ua::udp(&focus, "caller")
        };
        let mut call = Call::new(TEAM);
        let b = ua.invite(&mut call, Some(AUDIO_OFFER));
        let ok = ua.expect_final_to(&b, Some(Method::Invite));
        assert_eq!(ok.status, 200, "tcp={tcp}: {}", ok.reason);
        call.learn(&ok);
        ua.cancel(&call);
        let to_cancel = ua.expect_final_to(&b, Some(Method::Cancel));
        assert_eq!(to_cancel.status, 200, "tcp={tcp}: {}", to_cancel.reason);
        ua.ack(&call);
        watcher.until_status(&ua.aor(), EndpointStatus::Connected);
        ua.assert_quiet(
            Duration::from_millis(100),
            "a CANCEL after the 200 must not end the call",
        );
        assert_eq!(focus.metric("focus_participants_active"), Some(1.0));
        assert_eq!(ua.bye(&mut call).status, 200, "tcp={tcp}");
        watcher.until_gone(&ua.aor(), DisconnectionMethod::Departed);
        assert_eq!(focus.metric("focus_participants_active"), Some(0.0));
        assert_eq!(
            focus.metric("focus_sip_cancelled_total").unwrap_or(0.0),
            0.0
        );
    }
}
