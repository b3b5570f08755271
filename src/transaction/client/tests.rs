//! Virtual-time tests of the non-INVITE client transaction (RFC 3261 §17.1.2).

use super::{NonInviteClient, NonInviteClientState};
use crate::transaction::test_util::{drain, msg, run_until, Clock};
use crate::transaction::{Event, ResponseDisposition, Timer, TimerConfig};

use ResponseDisposition::{Absorb, PassToTu};

/// Timer E in Trying with default timers: T1 doubling, capped at T2, before Timer F at 32 s.
const TIMER_E: [u64; 10] = [
    500, 1_500, 3_500, 7_500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500,
];

/// A UDP transaction whose BYE went out at 0 ms (output drained).
fn udp(clock: &Clock) -> NonInviteClient {
    let mut tx = NonInviteClient::new(clock.at(0), TimerConfig::default(), false, msg::BYE);
    drain(&mut tx, 0);
    tx
}

fn tcp(clock: &Clock) -> NonInviteClient {
    let mut tx = NonInviteClient::new(clock.at(0), TimerConfig::default(), true, msg::BYE);
    drain(&mut tx, 0);
    tx
}

#[test]
fn new_sends_the_request_once_and_arms_e_and_f() {
    let clock = Clock::new();
    let mut tx = NonInviteClient::new(clock.at(0), TimerConfig::default(), false, msg::BYE);
    assert_eq!(drain(&mut tx, 0).messages(), [b"BYE"]);
    assert_eq!(tx.state(), NonInviteClientState::Trying);
    assert_eq!(tx.timer(Timer::E), Some(clock.at(500)));
    assert_eq!(tx.timer(Timer::F), Some(clock.at(32_000)));
}

#[test]
fn timer_e_backs_off_to_t2_until_timer_f_times_out() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    let trace = run_until(&mut tx, &clock, 100_000);
    assert_eq!(trace.sent_at_of(b"BYE"), TIMER_E);
    assert_eq!(trace.sent.len(), TIMER_E.len());
    assert_eq!(trace.events, [(32_000, Event::Timeout)]);
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn proceeding_retransmits_every_t2_and_timer_f_still_runs() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    assert_eq!(run_until(&mut tx, &clock, 600).sent_at(), [500]);
    assert_eq!(tx.on_response(clock.at(600), 100), PassToTu);
    assert_eq!(tx.state(), NonInviteClientState::Proceeding);
    // The pending Timer E keeps its deadline; after it fires it is reset to T2.
    assert_eq!(tx.timer(Timer::E), Some(clock.at(1_500)));
    let trace = run_until(&mut tx, &clock, 100_000);
    assert_eq!(
        trace.sent_at_of(b"BYE"),
        [1_500, 5_500, 9_500, 13_500, 17_500, 21_500, 25_500, 29_500]
    );
    assert_eq!(trace.events, [(32_000, Event::Timeout)]);
    assert!(tx.is_terminated());
}

#[test]
fn provisionals_pass_in_trying_and_proceeding() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    assert_eq!(tx.on_response(clock.at(100), 100), PassToTu);
    assert_eq!(tx.on_response(clock.at(200), 180), PassToTu);
    assert_eq!(tx.state(), NonInviteClientState::Proceeding);
}

#[test]
fn final_in_trying_passes_once_and_timer_k_absorbs_retransmissions() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    assert_eq!(tx.on_response(clock.at(1_000), 200), PassToTu);
    assert_eq!(tx.state(), NonInviteClientState::Completed);
    assert_eq!(tx.final_status(), Some(200));
    assert_eq!(tx.timer(Timer::E), None);
    assert_eq!(tx.timer(Timer::F), None);
    assert_eq!(tx.timer(Timer::K), Some(clock.at(6_000)));

    assert_eq!(tx.on_response(clock.at(1_500), 200), Absorb);
    assert_eq!(tx.on_response(clock.at(1_500), 180), Absorb);
    assert_eq!(tx.on_response(clock.at(1_500), 481), Absorb);
    assert_eq!(tx.final_status(), Some(200));

    let trace = run_until(&mut tx, &clock, 100_000);
    assert!(trace.is_empty(), "{trace:?}");
    assert!(tx.is_terminated());
}

#[test]
fn final_in_proceeding_passes_once() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    let _ = tx.on_response(clock.at(100), 100);
    assert_eq!(tx.on_response(clock.at(2_000), 481), PassToTu);
    assert_eq!(tx.state(), NonInviteClientState::Completed);
    assert_eq!(tx.poll_timeout(), Some(clock.at(7_000)));
    assert_eq!(tx.on_response(clock.at(2_100), 481), Absorb);
}

#[test]
fn tcp_has_no_timer_e_and_the_final_terminates_at_once() {
    let clock = Clock::new();
    let mut tx = tcp(&clock);
    assert_eq!(tx.timer(Timer::E), None);
    assert_eq!(tx.poll_timeout(), Some(clock.at(32_000)));
    assert_eq!(tx.on_response(clock.at(100), 200), PassToTu);
    // Timer K is zero on a reliable transport.
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_timeout(), None);
    assert_eq!(tx.on_response(clock.at(200), 200), Absorb);
}

#[test]
fn tcp_timer_f_times_out_without_retransmissions() {
    let clock = Clock::new();
    let mut tx = tcp(&clock);
    let trace = run_until(&mut tx, &clock, 100_000);
    assert!(trace.sent.is_empty());
    assert_eq!(trace.events, [(32_000, Event::Timeout)]);
}

#[test]
fn responses_after_termination_are_absorbed() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    run_until(&mut tx, &clock, 100_000);
    for status in [100, 200, 503] {
        assert_eq!(tx.on_response(clock.at(40_000), status), Absorb);
    }
    tx.handle_timeout(clock.at(1_000_000));
    tx.on_transport_error();
    assert!(drain(&mut tx, 40_000).is_empty());
    assert_eq!(tx.final_status(), None);
}

#[test]
fn transport_error_terminates_every_live_state() {
    let clock = Clock::new();
    for before in [&[][..], &[100][..], &[100, 200][..]] {
        let mut tx = udp(&clock);
        for &status in before {
            let _ = tx.on_response(clock.at(0), status);
        }
        tx.on_transport_error();
        tx.on_transport_error();
        assert_eq!(drain(&mut tx, 0).events, [(0, Event::TransportError)]);
        assert!(tx.is_terminated());
        assert_eq!(tx.poll_timeout(), None);
    }
}

#[test]
fn invalid_status_is_absorbed_and_changes_nothing() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    assert_eq!(tx.on_response(clock.at(10), 42), Absorb);
    assert_eq!(tx.on_response(clock.at(10), 700), Absorb);
    assert!(drain(&mut tx, 10).is_empty());
    assert_eq!(tx.state(), NonInviteClientState::Trying);
    assert_eq!(tx.timer(Timer::E), Some(clock.at(500)));
}
