//! Virtual-time tests of the INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §7.1).

use std::time::Duration;

use super::{InviteServer, InviteServerState};
use crate::transaction::test_util::{drain, msg, run_until, Clock};
use crate::transaction::{Event, Timer, TimerConfig, TransactionError};

/// Timer G and the 2xx retransmissions with default timers: T1, 2·T1, 4·T1, then every T2,
/// all before 64·T1 = 32 s.
const CAPPED_BACKOFF: [u64; 10] = [
    500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
];

fn udp(clock: &Clock) -> InviteServer {
    InviteServer::new(clock.at(0), TimerConfig::default(), false)
}

fn tcp(clock: &Clock) -> InviteServer {
    InviteServer::new(clock.at(0), TimerConfig::default(), true)
}

/// A UDP transaction that sent `status` at 0 ms (output drained).
fn udp_after(clock: &Clock, status: u16) -> InviteServer {
    let mut tx = udp(clock);
    tx.send_response(clock.at(0), status, body(status)).unwrap();
    drain(&mut tx, 0);
    tx
}

fn body(status: u16) -> bytes::Bytes {
    match status {
        100 => msg::TRYING,
        180 => msg::RINGING,
        183 => msg::PROGRESS,
        200 => msg::OK,
        486 => msg::BUSY,
        487 => msg::TERMINATED,
        _ => bytes::Bytes::from(status.to_string()),
    }
}

#[test]
fn starts_in_proceeding_silent_and_without_timers() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    assert_eq!(tx.state(), InviteServerState::Proceeding);
    assert_eq!(tx.poll_timeout(), None);
    assert_eq!(tx.final_status(), None);
    assert!(!tx.is_terminated());
    assert!(drain(&mut tx, 0).is_empty());
}

#[test]
fn invite_retransmission_in_proceeding_resends_the_latest_provisional() {
    let clock = Clock::new();
    let mut tx = udp(&clock);

    // Nothing sent yet: the copy is simply absorbed.
    tx.on_retransmission(clock.at(50));
    assert!(drain(&mut tx, 50).is_empty());

    tx.send_response(clock.at(100), 100, msg::TRYING).unwrap();
    assert_eq!(drain(&mut tx, 100).messages(), [b"100"]);
    tx.on_retransmission(clock.at(200));
    assert_eq!(drain(&mut tx, 200).messages(), [b"100"]);

    tx.send_response(clock.at(300), 180, msg::RINGING).unwrap();
    tx.send_response(clock.at(300), 183, msg::PROGRESS).unwrap();
    assert_eq!(drain(&mut tx, 300).messages(), [b"180", b"183"]);
    tx.on_retransmission(clock.at(400));
    assert_eq!(drain(&mut tx, 400).messages(), [b"183"]);

    assert_eq!(tx.state(), InviteServerState::Proceeding);
    // Provisionals are not sent reliably by the transaction: no timer.
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn non_2xx_on_udp_runs_timer_g_capped_at_t2_and_timer_h_times_out() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    tx.send_response(clock.at(0), 486, msg::BUSY).unwrap();
    assert_eq!(drain(&mut tx, 0).messages(), [b"486"]);
    assert_eq!(tx.state(), InviteServerState::Completed);
    assert_eq!(tx.final_status(), Some(486));
    assert_eq!(tx.timer(Timer::G), Some(clock.at(500)));
    assert_eq!(tx.timer(Timer::H), Some(clock.at(32_000)));

    let trace = run_until(&mut tx, &clock, 100_000);
    assert_eq!(trace.sent_at_of(b"486"), CAPPED_BACKOFF);
    assert_eq!(trace.sent.len(), CAPPED_BACKOFF.len());
    assert_eq!(trace.events, [(32_000, Event::Timeout)]);
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_timeout(), None);
}

#[test]
fn invite_retransmission_in_completed_resends_the_final_and_keeps_timer_g() {
    let clock = Clock::new();
    let mut tx = udp_after(&clock, 486);
    tx.on_retransmission(clock.at(200));
    assert_eq!(drain(&mut tx, 200).messages(), [b"486"]);
    assert_eq!(tx.timer(Timer::G), Some(clock.at(500)));
    assert_eq!(tx.state(), InviteServerState::Completed);
}

#[test]
fn ack_on_udp_confirms_stops_timer_g_and_timer_i_terminates_after_t4() {
    let clock = Clock::new();
    let mut tx = udp_after(&clock, 486);
    assert_eq!(run_until(&mut tx, &clock, 2_000).sent_at(), [500, 1_500]);

    tx.on_ack(clock.at(2_000));
    assert_eq!(tx.state(), InviteServerState::Confirmed);
    assert_eq!(tx.timer(Timer::G), None);
    assert_eq!(tx.timer(Timer::H), None);
    assert_eq!(tx.poll_timeout(), Some(clock.at(7_000)));

    let trace = run_until(&mut tx, &clock, 100_000);
    assert!(trace.is_empty(), "{trace:?}");
    assert!(tx.is_terminated());
}

#[test]
fn confirmed_absorbs_ack_and_invite_retransmissions() {
    let clock = Clock::new();
    let mut tx = udp_after(&clock, 486);
    tx.on_ack(clock.at(1_000));
    tx.on_ack(clock.at(2_000));
    tx.on_retransmission(clock.at(2_000));
    tx.on_ack_2xx(clock.at(2_000));
    assert!(drain(&mut tx, 2_000).is_empty());
    assert_eq!(tx.state(), InviteServerState::Confirmed);
    assert_eq!(tx.timer(Timer::I), Some(clock.at(6_000)));
}

#[test]
fn non_2xx_on_tcp_is_not_retransmitted_and_ack_terminates_at_once() {
    let clock = Clock::new();
    let mut tx = tcp(&clock);
    tx.send_response(clock.at(0), 486, msg::BUSY).unwrap();
    assert_eq!(drain(&mut tx, 0).messages(), [b"486"]);
    assert_eq!(tx.timer(Timer::G), None);
    assert_eq!(tx.poll_timeout(), Some(clock.at(32_000)));

    // Timer I is zero on a reliable transport.
    tx.on_ack(clock.at(1_000));
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_timeout(), None);
    assert!(drain(&mut tx, 1_000).is_empty());
}

#[test]
fn non_2xx_on_tcp_still_times_out_on_timer_h() {
    let clock = Clock::new();
    let mut tx = tcp(&clock);
    tx.send_response(clock.at(0), 603, body(603)).unwrap();
    drain(&mut tx, 0);
    let trace = run_until(&mut tx, &clock, 100_000);
    assert!(trace.sent.is_empty());
    assert_eq!(trace.events, [(32_000, Event::Timeout)]);
    assert!(tx.is_terminated());
}

#[test]
fn two_xx_on_udp_is_retransmitted_until_timer_l_which_reports_the_missing_ack() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    tx.send_response(clock.at(0), 200, msg::OK).unwrap();
    assert_eq!(drain(&mut tx, 0).messages(), [b"200"]);
    assert_eq!(tx.state(), InviteServerState::Accepted);
    assert_eq!(tx.final_status(), Some(200));
    assert_eq!(tx.timer(Timer::Retransmit2xx), Some(clock.at(500)));
    assert_eq!(tx.timer(Timer::L), Some(clock.at(32_000)));

    let trace = run_until(&mut tx, &clock, 100_000);
    assert_eq!(trace.sent_at_of(b"200"), CAPPED_BACKOFF);
    assert_eq!(trace.sent.len(), CAPPED_BACKOFF.len());
    assert_eq!(trace.events, [(32_000, Event::AckTimeout)]);
    assert!(tx.is_terminated());
}

#[test]
fn ack_for_the_2xx_stops_retransmissions_and_is_reported_once() {
    let clock = Clock::new();
    let mut tx = udp_after(&clock, 200);
    assert_eq!(run_until(&mut tx, &clock, 2_000).sent_at(), [500, 1_500]);

    tx.on_ack_2xx(clock.at(2_000));
    let trace = drain(&mut tx, 2_000);
    assert_eq!(trace.events, [(2_000, Event::AckReceived)]);
    assert_eq!(tx.timer(Timer::Retransmit2xx), None);
    assert_eq!(tx.state(), InviteServerState::Accepted);

    // A retransmitted ACK (the UAC re-ACKs each 2xx it sees) is absorbed.
    tx.on_ack_2xx(clock.at(2_500));
    assert!(drain(&mut tx, 2_500).is_empty());

    // Accepted lingers until Timer L, quietly.
    assert_eq!(tx.poll_timeout(), Some(clock.at(32_000)));
    let trace = run_until(&mut tx, &clock, 100_000);
    assert!(trace.is_empty(), "{trace:?}");
    assert!(tx.is_terminated());
}

#[test]
fn invite_retransmission_in_accepted_resends_the_2xx_once_until_acked() {
    let clock = Clock::new();
    let mut tx = udp_after(&clock, 200);
    tx.on_retransmission(clock.at(100));
    assert_eq!(drain(&mut tx, 100).messages(), [b"200"]);
    // The timer-driven schedule is not disturbed.
    assert_eq!(tx.timer(Timer::Retransmit2xx), Some(clock.at(500)));
    assert_eq!(run_until(&mut tx, &clock, 600).sent_at(), [500]);

    tx.on_ack_2xx(clock.at(600));
    drain(&mut tx, 600);
    tx.on_retransmission(clock.at(700));
    assert!(drain(&mut tx, 700).is_empty());
    assert_eq!(tx.state(), InviteServerState::Accepted);
}

#[test]
fn two_xx_on_tcp_is_not_retransmitted_but_timer_l_reports_a_missing_ack() {
    let clock = Clock::new();
    let mut tx = tcp(&clock);
    tx.send_response(clock.at(0), 200, msg::OK).unwrap();
    assert_eq!(drain(&mut tx, 0).messages(), [b"200"]);
    assert_eq!(tx.timer(Timer::Retransmit2xx), None);
    let trace = run_until(&mut tx, &clock, 100_000);
    assert!(trace.sent.is_empty());
    assert_eq!(trace.events, [(32_000, Event::AckTimeout)]);
    assert!(tx.is_terminated());
}

#[test]
fn two_xx_on_tcp_with_ack_ends_quietly_on_timer_l() {
    let clock = Clock::new();
    let mut tx = tcp(&clock);
    tx.send_response(clock.at(0), 200, msg::OK).unwrap();
    drain(&mut tx, 0);
    tx.on_ack_2xx(clock.at(100));
    tx.on_ack_2xx(clock.at(200));
    assert_eq!(drain(&mut tx, 200).events, [(200, Event::AckReceived)]);
    let trace = run_until(&mut tx, &clock, 100_000);
    assert!(trace.is_empty(), "{trace:?}");
    assert!(tx.is_terminated());
}

#[test]
fn acks_that_do_not_fit_the_state_are_absorbed() {
    let clock = Clock::new();

    let mut proceeding = udp(&clock);
    proceeding.on_ack(clock.at(10));
    proceeding.on_ack_2xx(clock.at(10));
    assert!(drain(&mut proceeding, 10).is_empty());
    assert_eq!(proceeding.state(), InviteServerState::Proceeding);

    // A same-branch ACK cannot acknowledge a 2xx.
    let mut accepted = udp_after(&clock, 200);
    accepted.on_ack(clock.at(10));
    assert!(drain(&mut accepted, 10).is_empty());
    assert_eq!(accepted.state(), InviteServerState::Accepted);
    assert_eq!(accepted.timer(Timer::Retransmit2xx), Some(clock.at(500)));

    // An ACK for a 2xx cannot acknowledge our 486.
    let mut completed = udp_after(&clock, 486);
    completed.on_ack_2xx(clock.at(10));
    assert!(drain(&mut completed, 10).is_empty());
    assert_eq!(completed.state(), InviteServerState::Completed);
    assert_eq!(completed.timer(Timer::G), Some(clock.at(500)));
}

#[test]
fn transport_error_terminates_every_live_state_and_is_reported_once() {
    let clock = Clock::new();
    let setups: [fn(&Clock) -> InviteServer; 4] = [
        udp,
        |c| udp_after(c, 486),
        |c| {
            let mut tx = udp_after(c, 486);
            tx.on_ack(c.at(0));
            tx
        },
        |c| udp_after(c, 200),
    ];
    for setup in setups {
        let mut tx = setup(&clock);
        let before = tx.state();
        tx.on_transport_error();
        tx.on_transport_error();
        let trace = drain(&mut tx, 0);
        assert_eq!(
            trace.events,
            [(0, Event::TransportError)],
            "from {before:?}"
        );
        assert!(trace.sent.is_empty());
        assert!(tx.is_terminated());
        assert_eq!(tx.poll_timeout(), None);
    }
}

#[test]
fn second_final_is_refused_and_changes_nothing() {
    let clock = Clock::new();
    let mut tx = udp_after(&clock, 486);
    assert_eq!(
        tx.send_response(clock.at(100), 500, body(500)),
        Err(TransactionError::FinalAlreadySent {
            sent: 486,
            attempted: 500
        })
    );
    assert_eq!(
        tx.send_response(clock.at(100), 200, msg::OK),
        Err(TransactionError::FinalAlreadySent {
            sent: 486,
            attempted: 200
        })
    );
    assert_eq!(
        tx.send_response(clock.at(100), 180, msg::RINGING),
        Err(TransactionError::FinalAlreadySent {
            sent: 486,
            attempted: 180
        })
    );
    assert!(drain(&mut tx, 100).is_empty());
    assert_eq!(tx.state(), InviteServerState::Completed);
    assert_eq!(tx.final_status(), Some(486));
    assert_eq!(tx.timer(Timer::G), Some(clock.at(500)));
    assert_eq!(tx.timer(Timer::H), Some(clock.at(32_000)));
}

#[test]
fn cancel_race_487_after_2xx_is_refused_and_the_2xx_runs_on() {
    let clock = Clock::new();
    let mut tx = udp_after(&clock, 200);
    // CANCEL arrived after the TU answered: the TU tries to end the INVITE with 487.
    assert_eq!(
        tx.send_response(clock.at(100), 487, msg::TERMINATED),
        Err(TransactionError::FinalAlreadySent {
            sent: 200,
            attempted: 487
        })
    );
    assert!(drain(&mut tx, 100).is_empty());
    assert_eq!(tx.state(), InviteServerState::Accepted);
    assert_eq!(tx.final_status(), Some(200));
    assert_eq!(tx.timer(Timer::Retransmit2xx), Some(clock.at(500)));
    assert_eq!(tx.timer(Timer::L), Some(clock.at(32_000)));
    assert_eq!(
        run_until(&mut tx, &clock, 100_000).sent_at_of(b"200"),
        CAPPED_BACKOFF
    );
}

#[test]
fn cancel_race_487_in_proceeding_completes_and_runs_timers_g_and_h() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    tx.send_response(clock.at(0), 180, msg::RINGING).unwrap();
    drain(&mut tx, 0);
    tx.send_response(clock.at(1_000), 487, msg::TERMINATED)
        .unwrap();
    assert_eq!(drain(&mut tx, 1_000).messages(), [b"487"]);
    assert_eq!(tx.state(), InviteServerState::Completed);

    let trace = run_until(&mut tx, &clock, 100_000);
    let expected: Vec<u64> = CAPPED_BACKOFF.iter().map(|t| t + 1_000).collect();
    assert_eq!(trace.sent_at_of(b"487"), expected);
    assert_eq!(trace.sent.len(), expected.len());
    assert_eq!(trace.events, [(33_000, Event::Timeout)]);
}

#[test]
fn cancel_race_487_then_ack_confirms() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    tx.send_response(clock.at(0), 487, msg::TERMINATED).unwrap();
    drain(&mut tx, 0);
    tx.on_ack(clock.at(300));
    assert_eq!(tx.state(), InviteServerState::Confirmed);
    assert!(run_until(&mut tx, &clock, 100_000).is_empty());
    assert!(tx.is_terminated());
}

#[test]
fn two_xx_after_non_2xx_and_provisional_after_2xx_are_refused() {
    let clock = Clock::new();
    let mut tx = udp_after(&clock, 200);
    assert_eq!(
        tx.send_response(clock.at(10), 180, msg::RINGING),
        Err(TransactionError::FinalAlreadySent {
            sent: 200,
            attempted: 180
        })
    );
    assert_eq!(
        tx.send_response(clock.at(10), 200, msg::OK),
        Err(TransactionError::FinalAlreadySent {
            sent: 200,
            attempted: 200
        })
    );
    assert!(drain(&mut tx, 10).is_empty());
    assert_eq!(tx.state(), InviteServerState::Accepted);
}

#[test]
fn invalid_status_codes_are_refused_and_change_nothing() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    for status in [0, 99, 700, 999, u16::MAX] {
        assert_eq!(
            tx.send_response(clock.at(0), status, msg::OK),
            Err(TransactionError::InvalidStatus(status))
        );
    }
    assert!(drain(&mut tx, 0).is_empty());
    assert_eq!(tx.state(), InviteServerState::Proceeding);
    assert_eq!(tx.final_status(), None);
}

#[test]
fn responses_after_termination_are_refused() {
    let clock = Clock::new();
    let mut tx = udp(&clock);
    tx.on_transport_error();
    drain(&mut tx, 0);
    assert_eq!(
        tx.send_response(clock.at(10), 200, msg::OK),
        Err(TransactionError::Terminated)
    );
    assert_eq!(
        tx.send_response(clock.at(10), 180, msg::RINGING),
        Err(TransactionError::Terminated)
    );
    assert!(drain(&mut tx, 10).is_empty());
    assert_eq!(tx.final_status(), None);
}

#[test]
fn terminated_transaction_ignores_all_network_input() {
    let clock = Clock::new();
    let mut tx = udp_after(&clock, 486);
    run_until(&mut tx, &clock, 100_000);
    assert!(tx.is_terminated());
    tx.on_retransmission(clock.at(40_000));
    tx.on_ack(clock.at(40_000));
    tx.on_ack_2xx(clock.at(40_000));
    tx.handle_timeout(clock.at(1_000_000));
    tx.on_transport_error();
    assert!(drain(&mut tx, 40_000).is_empty());
    assert!(tx.is_terminated());
    assert_eq!(tx.poll_timeout(), None);
    assert_eq!(tx.final_status(), Some(486));
}

#[test]
fn custom_timer_config_scales_g_h_and_i() {
    let clock = Clock::new();
    let cfg = TimerConfig {
        t1: Duration::from_millis(100),
        t2: Duration::from_millis(400),
        t4: Duration::from_millis(1_000),
    };
    let mut tx = InviteServer::new(clock.at(0), cfg, false);
    tx.send_response(clock.at(0), 486, msg::BUSY).unwrap();
    drain(&mut tx, 0);
    assert_eq!(tx.timer(Timer::H), Some(clock.at(6_400)));
    assert_eq!(
        run_until(&mut tx, &clock, 2_000).sent_at(),
        [100, 300, 700, 1_100, 1_500, 1_900]
    );
    tx.on_ack(clock.at(2_000));
    assert_eq!(tx.poll_timeout(), Some(clock.at(3_000)));
}

#[test]
fn late_timer_sends_one_retransmission_and_rearms_from_now() {
    let clock = Clock::new();
    let mut tx = udp_after(&clock, 486);
    // The driver oversleeps past three Timer G deadlines: no burst of copies.
    tx.handle_timeout(clock.at(5_000));
    assert_eq!(drain(&mut tx, 5_000).messages(), [b"486"]);
    assert_eq!(tx.timer(Timer::G), Some(clock.at(6_000)));
    assert_eq!(tx.timer(Timer::H), Some(clock.at(32_000)));
}

#[test]
fn early_handle_timeout_fires_nothing() {
    let clock = Clock::new();
    let mut tx = udp_after(&clock, 200);
    tx.handle_timeout(clock.at(499));
    assert!(drain(&mut tx, 499).is_empty());
    assert_eq!(tx.poll_timeout(), Some(clock.at(500)));
}
