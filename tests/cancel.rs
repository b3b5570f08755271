//! CANCEL (RFC 3261 §9): for a transaction that does not exist, and racing its INVITE.

mod support;

use cpm_focus::conference_info::{DisconnectionMethod, EndpointStatus};
use cpm_focus::sip::Method;
use support::{
    endpoint_state, follow, user, user_count, without_version, Call, Focus, Ua, AUDIO_OFFER, TEAM,
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
