//! Virtual-time tests of the INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §7.2).

use std::time::Duration;

use super::{InviteClient, InviteClientState};
use crate::transaction::test_util::{drain, msg, run_until, Clock};
use crate::transaction::{Event, ResponseDisposition, Timer, TimerConfig, TransactionError};

use ResponseDisposition::{Absorb, PassToTu, PassToTuAndAck};

/// Timer A with default timers: T1 doubling without a cap, all before Timer B at 32 s.
const TIMER_A: [u64; 6] = [500, 1_500, 3_500, 7_500, 15_500, 31_500];

/// A UDP transaction whose INVITE went out at 0 ms (output drained).
fn udp(clock: &Clock) -> InviteClient {
    let mut tx = InviteClient::new(clock.at(0), TimerConfig::default(), false, msg::INVITE);
    drain(&mut tx, 0);
    tx
}

fn tcp(clock: &Clock) -> InviteClient {
    let mut tx = InviteClient::new(clock.at(0), TimerConfig::default(), true, msg::INVITE);
    drain(&mut tx, 0);
    tx
}

#[test]
fn new_sends_the_invite_once_and_arms_a_and_b() {
    let clock = Clock::new();
    let mut tx = InviteClient::new(clock.at(0), TimerConfig::default(), false, msg::INVITE);
    assert_eq!(drain(&mut tx, 0).messages(), [b"INVITE"]);
    assert_eq!(tx.state(), InviteClientState::Calling);
    assert_eq!(tx.timer(Timer::A), Some(clock.at(500)));
    assert_eq!(tx.timer(Timer::B), Some(clock.at(32_000)));
    assert_eq!(tx.final_status(), None);
}

#[test]
fn timer_a_doubles_without_cap_until_timer_b_times_out() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    let trace = run_until(&mut tx, &clock, 100_000);
    assert_eq!(trace.sent_at_of(b"INVITE"), TIMER_A);
    assert_eq!(trace.sent.len(), TIMER_A.len());
    assert_eq!(trace.events, [(32_000, Event::Timeout)]);
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn tcp_has_no_timer_a_but_timer_b_times_out() {
    let clock = Clock::new();
    let mut tx = tcp(&clock);
    assert_eq!(tx.timer(Timer::A), None);
    let trace = run_until(&mut tx, &clock, 100_000);
    assert!(trace.sent.is_empty());
    assert_eq!(trace.events, [(32_000, Event::Timeout)]);
    assert!(tx.is_terminated());
}

#[test]
fn provisional_stops_retransmissions_and_timer_b() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    assert_eq!(run_until(&mut tx, &clock, 1_000).sent_at(), [500]);
    assert_eq!(tx.on_response(clock.at(1_000), 180), PassToTu);
    assert_eq!(tx.state(), InviteClientState::Proceeding);
    assert_eq!(tx.poll_timeout(), None);
    // Further provisionals all reach the TU.
    assert_eq!(tx.on_response(clock.at(2_000), 183), PassToTu);
    assert_eq!(tx.on_response(clock.at(2_000), 180), PassToTu);
    // Ringing may last long past 64·T1: only the TU ends it.
    assert!(run_until(&mut tx, &clock, 600_000).is_empty());
    assert_eq!(tx.state(), InviteClientState::Proceeding);
}

#[test]
fn two_xx_in_calling_accepts_and_every_2xx_passes_until_timer_m() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    assert_eq!(tx.on_response(clock.at(100), 200), PassToTu);
    assert_eq!(tx.state(), InviteClientState::Accepted);
    assert_eq!(tx.final_status(), Some(200));
    assert_eq!(tx.timer(Timer::A), None);
    assert_eq!(tx.timer(Timer::B), None);
    assert_eq!(tx.timer(Timer::M), Some(clock.at(32_100)));

    // A retransmitted 2xx, or one from another fork, goes to the TU to be ACKed.
    assert_eq!(tx.on_response(clock.at(600), 200), PassToTu);
    assert_eq!(tx.on_response(clock.at(700), 202), PassToTu);
    assert_eq!(tx.on_response(clock.at(800), 180), Absorb);
    assert_eq!(tx.on_response(clock.at(900), 486), Absorb);
    assert_eq!(tx.final_status(), Some(200));
    // The 2xx's ACK is the TU's: the transaction sends nothing.
    let trace = run_until(&mut tx, &clock, 100_000);
    assert!(trace.is_empty(), "{trace:?}");
    assert!(tx.is_terminated());
    assert_eq!(tx.on_response(clock.at(40_000), 200), Absorb);
}

#[test]
fn two_xx_in_proceeding_accepts() {
    let clock = Clock::new();
    let mut tx = tcp(&clock);
    assert_eq!(tx.on_response(clock.at(100), 100), PassToTu);
    assert_eq!(tx.on_response(clock.at(5_000), 200), PassToTu);
    assert_eq!(tx.state(), InviteClientState::Accepted);
    // Timer M is 64·T1 on reliable transports too.
    assert_eq!(tx.poll_timeout(), Some(clock.at(37_000)));
}

#[test]
fn non_2xx_in_calling_asks_for_an_ack_and_repeats_it_until_timer_d() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    assert_eq!(tx.on_response(clock.at(1_000), 486), PassToTuAndAck);
    assert!(PassToTuAndAck.needs_ack() && PassToTuAndAck.pass_to_tu());
    assert_eq!(tx.state(), InviteClientState::Completed);
    assert_eq!(tx.final_status(), Some(486));
    assert_eq!(tx.timer(Timer::A), None);
    assert_eq!(tx.timer(Timer::B), None);
    assert_eq!(tx.timer(Timer::D), Some(clock.at(33_000)));

    tx.send_ack(clock.at(1_000), msg::ACK).unwrap();
    assert_eq!(drain(&mut tx, 1_000).messages(), [b"ACK"]);

    // The server lost our ACK and retransmits its final: ACK again, keep it from the TU.
    assert_eq!(tx.on_response(clock.at(1_500), 486), Absorb);
    assert_eq!(drain(&mut tx, 1_500).messages(), [b"ACK"]);
    assert_eq!(tx.on_response(clock.at(2_500), 486), Absorb);
    assert_eq!(drain(&mut tx, 2_500).messages(), [b"ACK"]);
    // Anything else in Completed is absorbed without an ACK.
    assert_eq!(tx.on_response(clock.at(2_600), 180), Absorb);
    assert_eq!(tx.on_response(clock.at(2_600), 200), Absorb);
    assert!(drain(&mut tx, 2_600).is_empty());

    let trace = run_until(&mut tx, &clock, 100_000);
    assert!(trace.is_empty(), "{trace:?}");
    assert!(tx.is_terminated());
}

#[test]
fn non_2xx_in_proceeding_completes() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    assert_eq!(tx.on_response(clock.at(100), 180), PassToTu);
    assert_eq!(tx.on_response(clock.at(9_000), 487), PassToTuAndAck);
    assert_eq!(tx.state(), InviteClientState::Completed);
    assert_eq!(tx.poll_timeout(), Some(clock.at(41_000)));
    tx.send_ack(clock.at(9_000), msg::ACK).unwrap();
    assert_eq!(drain(&mut tx, 9_000).messages(), [b"ACK"]);
}

#[test]
fn retransmitted_final_before_the_ack_is_built_is_absorbed() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    assert_eq!(tx.on_response(clock.at(100), 603), PassToTuAndAck);
    assert_eq!(tx.on_response(clock.at(200), 603), Absorb);
    assert!(drain(&mut tx, 200).is_empty());
    tx.send_ack(clock.at(300), msg::ACK).unwrap();
    assert_eq!(drain(&mut tx, 300).messages(), [b"ACK"]);
}

#[test]
fn non_2xx_on_tcp_ends_as_soon_as_the_ack_is_sent() {
    let clock = Clock::new();
    let mut tx = tcp(&clock);
    assert_eq!(tx.on_response(clock.at(100), 486), PassToTuAndAck);
    assert_eq!(tx.state(), InviteClientState::Completed);
    assert_eq!(tx.poll_timeout(), None);
    tx.send_ack(clock.at(100), msg::ACK).unwrap();
    // Timer D is zero on a reliable transport; the ACK is still delivered.
    assert!(tx.is_terminated());
    assert_eq!(drain(&mut tx, 100).messages(), [b"ACK"]);
}

#[test]
fn ack_misuse_is_refused_and_changes_nothing() {
    let clock = Clock::new();

    let mut calling = udp(&clock);
    assert_eq!(
        calling.send_ack(clock.at(10), msg::ACK),
        Err(TransactionError::AckNotExpected)
    );
    assert!(drain(&mut calling, 10).is_empty());
    assert_eq!(calling.state(), InviteClientState::Calling);
    assert_eq!(calling.timer(Timer::A), Some(clock.at(500)));

    let mut proceeding = udp(&clock);
    let _ = proceeding.on_response(clock.at(10), 180);
    assert_eq!(
        proceeding.send_ack(clock.at(10), msg::ACK),
        Err(TransactionError::AckNotExpected)
    );
    assert_eq!(proceeding.state(), InviteClientState::Proceeding);

    // The ACK for a 2xx belongs to the TU, not to the transaction.
    let mut accepted = udp(&clock);
    let _ = accepted.on_response(clock.at(10), 200);
    assert_eq!(
        accepted.send_ack(clock.at(10), msg::ACK),
        Err(TransactionError::AckNotExpected)
    );
    assert!(drain(&mut accepted, 10).is_empty());
    assert_eq!(accepted.state(), InviteClientState::Accepted);

    let mut completed = udp(&clock);
    let _ = completed.on_response(clock.at(10), 486);
    completed.send_ack(clock.at(10), msg::ACK).unwrap();
    drain(&mut completed, 10);
    assert_eq!(
        completed.send_ack(clock.at(20), msg::ACK),
        Err(TransactionError::AckAlreadySent)
    );
    assert!(drain(&mut completed, 20).is_empty());
    assert_eq!(completed.timer(Timer::D), Some(clock.at(32_010)));

    let mut terminated = tcp(&clock);
    let _ = terminated.on_response(clock.at(10), 486);
    terminated.send_ack(clock.at(10), msg::ACK).unwrap();
    drain(&mut terminated, 10);
    assert_eq!(
        terminated.send_ack(clock.at(20), msg::ACK),
        Err(TransactionError::Terminated)
    );
    assert!(drain(&mut terminated, 20).is_empty());
}

#[test]
fn invalid_status_is_absorbed_and_changes_nothing() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    for status in [0, 99, 700, 999] {
        assert_eq!(tx.on_response(clock.at(10), status), Absorb);
    }
    assert!(drain(&mut tx, 10).is_empty());
    assert_eq!(tx.state(), InviteClientState::Calling);
    assert_eq!(tx.timer(Timer::A), Some(clock.at(500)));
    assert_eq!(tx.timer(Timer::B), Some(clock.at(32_000)));
}

#[test]
fn responses_after_termination_are_absorbed() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    run_until(&mut tx, &clock, 100_000);
    assert!(tx.is_terminated());
    for status in [100, 180, 200, 486] {
        assert_eq!(tx.on_response(clock.at(40_000), status), Absorb);
    }
    tx.on_transport_error();
    tx.handle_timeout(clock.at(1_000_000));
    assert!(drain(&mut tx, 40_000).is_empty());
    assert_eq!(tx.final_status(), None);
}

#[test]
fn transport_error_terminates_calling_and_completed() {
    let clock = Clock::new();

    let mut calling = udp(&clock);
    calling.on_transport_error();
    calling.on_transport_error();
    assert_eq!(drain(&mut calling, 0).events, [(0, Event::TransportError)]);
    assert!(calling.is_terminated());
    assert_eq!(calling.poll_timeout(), None);

    let mut completed = udp(&clock);
    let _ = completed.on_response(clock.at(10), 486);
    completed.send_ack(clock.at(10), msg::ACK).unwrap();
    drain(&mut completed, 10);
    completed.on_transport_error();
    assert_eq!(
        drain(&mut completed, 10).events,
        [(10, Event::TransportError)]
    );
    assert!(completed.is_terminated());
    assert_eq!(completed.on_response(clock.at(20), 486), Absorb);
    assert!(drain(&mut completed, 20).is_empty());
}

#[test]
fn timer_d_grows_with_64_t1_beyond_32_s() {
    let clock = Clock::new();
    let cfg = TimerConfig {
        t1: Duration::from_secs(1),
        ..TimerConfig::default()
    };
    let mut tx = InviteClient::new(clock.at(0), cfg, false, msg::INVITE);
    assert_eq!(tx.timer(Timer::B), Some(clock.at(64_000)));
    let _ = tx.on_response(clock.at(0), 486);
    assert_eq!(tx.timer(Timer::D), Some(clock.at(64_000)));

    let short = TimerConfig {
        t1: Duration::from_millis(100),
        ..TimerConfig::default()
    };
    let mut tx = InviteClient::new(clock.at(0), short, false, msg::INVITE);
    let _ = tx.on_response(clock.at(0), 486);
    assert_eq!(tx.timer(Timer::D), Some(clock.at(32_000)));
}

#[test]
fn late_timer_a_sends_one_retransmission_and_rearms_from_now() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    tx.handle_timeout(clock.at(4_000));
    assert_eq!(drain(&mut tx, 4_000).messages(), [b"INVITE"]);
    assert_eq!(tx.timer(Timer::A), Some(clock.at(5_000)));
}
