//! Virtual-time tests of the non-INVITE server transaction (RFC 3261 §17.2.2).

use std::time::Duration;

use super::{NonInviteServer, NonInviteServerState};
use crate::transaction::test_util::{drain, msg, run_until, Clock};
use crate::transaction::{Event, Timer, TimerConfig, TransactionError};

fn udp(clock: &Clock) -> NonInviteServer {
    NonInviteServer::new(clock.at(0), TimerConfig::default(), false)
}

fn tcp(clock: &Clock) -> NonInviteServer {
    NonInviteServer::new(clock.at(0), TimerConfig::default(), true)
}

#[test]
fn trying_absorbs_request_retransmissions_silently() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    assert_eq!(tx.state(), NonInviteServerState::Trying);
    assert_eq!(tx.poll_timeout(), None);
    tx.on_retransmission(clock.at(500));
    tx.on_retransmission(clock.at(1_500));
    assert!(drain(&mut tx, 1_500).is_empty());
    assert_eq!(tx.state(), NonInviteServerState::Trying);
}

#[test]
fn provisional_moves_to_proceeding_and_answers_retransmissions() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    tx.send_response(clock.at(100), 100, msg::TRYING).unwrap();
    assert_eq!(drain(&mut tx, 100).messages(), [b"100"]);
    assert_eq!(tx.state(), NonInviteServerState::Proceeding);
    tx.on_retransmission(clock.at(500));
    assert_eq!(drain(&mut tx, 500).messages(), [b"100"]);

    tx.send_response(clock.at(600), 183, msg::PROGRESS).unwrap();
    assert_eq!(drain(&mut tx, 600).messages(), [b"183"]);
    assert_eq!(tx.state(), NonInviteServerState::Proceeding);
    tx.on_retransmission(clock.at(700));
    assert_eq!(drain(&mut tx, 700).messages(), [b"183"]);
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn final_from_trying_on_udp_answers_retransmissions_until_timer_j() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    tx.send_response(clock.at(0), 200, msg::OK).unwrap();
    assert_eq!(drain(&mut tx, 0).messages(), [b"200"]);
    assert_eq!(tx.state(), NonInviteServerState::Completed);
    assert_eq!(tx.final_status(), Some(200));
    assert_eq!(tx.timer(Timer::J), Some(clock.at(32_000)));

    tx.on_retransmission(clock.at(500));
    tx.on_retransmission(clock.at(31_999));
    assert_eq!(drain(&mut tx, 500).messages(), [b"200", b"200"]);

    // A response is never retransmitted on a timer by a non-INVITE server.
    let trace = run_until(&mut tx, &clock, 100_000);
    assert!(trace.is_empty(), "{trace:?}");
    assert!(tx.is_terminated());
}

#[test]
fn final_from_proceeding_completes() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    tx.send_response(clock.at(0), 100, msg::TRYING).unwrap();
    tx.send_response(clock.at(1_000), 486, msg::BUSY).unwrap();
    assert_eq!(drain(&mut tx, 1_000).messages(), [b"100", b"486"]);
    assert_eq!(tx.state(), NonInviteServerState::Completed);
    assert_eq!(tx.poll_timeout(), Some(clock.at(33_000)));
    tx.on_retransmission(clock.at(2_000));
    assert_eq!(drain(&mut tx, 2_000).messages(), [b"486"]);
}

#[test]
fn final_on_tcp_terminates_at_once_but_is_still_sent() {
    let clock = Clock::new();
    let mut tx = tcp(&clock);
    tx.send_response(clock.at(0), 200, msg::OK).unwrap();
    // Timer J is zero on a reliable transport.
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_timeout(), None);
    assert_eq!(tx.final_status(), Some(200));
    assert_eq!(drain(&mut tx, 0).messages(), [b"200"]);
    tx.on_retransmission(clock.at(10));
    assert!(drain(&mut tx, 10).is_empty());
}

#[test]
fn provisional_on_tcp_keeps_proceeding() {
    let clock = Clock::new();
    let mut tx = tcp(&clock);
    tx.send_response(clock.at(0), 100, msg::TRYING).unwrap();
    assert_eq!(tx.state(), NonInviteServerState::Proceeding);
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn second_final_and_late_provisional_are_refused_and_change_nothing() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    tx.send_response(clock.at(0), 202, msg::OK).unwrap();
    drain(&mut tx, 0);
    assert_eq!(
        tx.send_response(clock.at(10), 200, msg::OK),
        Err(TransactionError::FinalAlreadySent {
            sent: 202,
            attempted: 200
        })
    );
    assert_eq!(
        tx.send_response(clock.at(10), 100, msg::TRYING),
        Err(TransactionError::FinalAlreadySent {
            sent: 202,
            attempted: 100
        })
    );
    assert!(drain(&mut tx, 10).is_empty());
    assert_eq!(tx.state(), NonInviteServerState::Completed);
    assert_eq!(tx.timer(Timer::J), Some(clock.at(32_000)));
}

#[test]
fn invalid_status_codes_are_refused() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    for status in [0, 99, 700] {
        assert_eq!(
            tx.send_response(clock.at(0), status, msg::OK),
            Err(TransactionError::InvalidStatus(status))
        );
    }
    assert!(drain(&mut tx, 0).is_empty());
    assert_eq!(tx.state(), NonInviteServerState::Trying);
}

#[test]
fn responses_after_termination_are_refused() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    tx.send_response(clock.at(0), 200, msg::OK).unwrap();
    run_until(&mut tx, &clock, 100_000);
    drain(&mut tx, 0);
    assert!(tx.is_terminated());
    assert_eq!(
        tx.send_response(clock.at(40_000), 200, msg::OK),
        Err(TransactionError::Terminated)
    );
    tx.on_retransmission(clock.at(40_000));
    tx.on_transport_error();
    assert!(drain(&mut tx, 40_000).is_empty());
}

#[test]
fn transport_error_terminates_every_live_state() {
    let clock = Clock::new();
    for provisional_then_final in [&[][..], &[100][..], &[100, 200][..]] {
        let mut tx = udp(&clock);
        for &status in provisional_then_final {
            tx.send_response(clock.at(0), status, msg::OK).unwrap();
        }
        drain(&mut tx, 0);
        tx.on_transport_error();
        tx.on_transport_error();
        let trace = drain(&mut tx, 0);
        assert_eq!(trace.events, [(0, Event::TransportError)]);
        assert!(tx.is_terminated());
        assert_eq!(tx.poll_timeout(), None);
    }
}

#[test]
fn timer_j_follows_t1() {
    let clock = Clock::new();
    let cfg = TimerConfig {
        t1: Duration::from_millis(100),
        ..TimerConfig::default()
    };
    let mut tx = NonInviteServer::new(clock.at(0), cfg, false);
    tx.send_response(clock.at(0), 200, msg::OK).unwrap();
    assert_eq!(tx.poll_timeout(), Some(clock.at(6_400)));
}
