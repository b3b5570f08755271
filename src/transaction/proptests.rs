//! Property tests: random inputs and waits fed to each machine, checking what a driver relies
//! on. No panic; no timer left due after `handle_timeout` (none is lost by going backwards);
//! a waiting state always has a timer to end it; a refused TU input changes nothing; Terminated
//! is final and silent; terminal events come once, and only with termination; a final response
//! reaches the TU once.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;

use super::test_util::{msg, Clock, Machine};
use super::{
    Event, InviteClient, InviteClientState, InviteServer, InviteServerState, NonInviteClient,
    NonInviteClientState, NonInviteServer, NonInviteServerState, Timer, TimerConfig,
};

#[derive(Clone, Debug)]
enum Step<O> {
    /// Let this many milliseconds pass, firing timers as the driver would.
    Wait(u64),
    Input(O),
}

/// What one input did, as far as the invariants care.
#[derive(Debug, Default)]
struct Applied {
    /// The machine refused the input (an error, or a junk status code absorbed): nothing may
    /// change.
    refused: bool,
    /// A message handed to the machine, which it may transmit from now on.
    handed: Option<Bytes>,
    /// A response was passed to the TU.
    passed: bool,
    /// A final response that must reach the TU only once was passed.
    final_passed: bool,
    /// The driver was asked to build an ACK.
    ack_requested: bool,
}

/// Everything observable about a machine's state, compared around refused inputs.
type Snapshot<S> = (S, Vec<Option<Instant>>, Option<u16>);

trait Model: Machine + Sized {
    type Op: Clone + Debug + 'static;
    type State: Copy + Debug + PartialEq;

    fn build(now: Instant, cfg: TimerConfig, reliable: bool) -> Self;
    /// Messages the machine may send before any input (the request, for clients).
    fn initial_messages() -> Vec<Bytes>;
    fn op() -> BoxedStrategy<Self::Op>;
    fn apply(&mut self, now: Instant, op: &Self::Op) -> Applied;
    fn snapshot(&self) -> Snapshot<Self::State>;
    /// Whether the state can only be left through a timer, so one must be armed.
    fn must_have_timer(&self, reliable: bool) -> bool;
}

fn timers(deadline: impl Fn(Timer) -> Option<Instant>) -> Vec<Option<Instant>> {
    Timer::ALL.iter().map(|t| deadline(*t)).collect()
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(100u16),
        Just(180),
        Just(183),
        Just(200),
        Just(202),
        Just(302),
        Just(486),
        Just(487),
        Just(603),
        0u16..1000,
    ]
}

fn payload(status: u16) -> Bytes {
    Bytes::from(status.to_string())
}

#[derive(Clone, Debug)]
enum ServerInviteOp {
    Retransmission,
    Respond(u16),
    Ack,
    Ack2xx,
    TransportError,
}

impl Model for InviteServer {
    type Op = ServerInviteOp;
    type State = InviteServerState;

    fn build(now: Instant, cfg: TimerConfig, reliable: bool) -> Self {
        InviteServer::new(now, cfg, reliable)
    }

    fn initial_messages() -> Vec<Bytes> {
        Vec::new()
    }

    fn op() -> BoxedStrategy<Self::Op> {
        prop_oneof![
            Just(ServerInviteOp::Retransmission),
            status().prop_map(ServerInviteOp::Respond),
            Just(ServerInviteOp::Ack),
            Just(ServerInviteOp::Ack2xx),
            Just(ServerInviteOp::TransportError),
        ]
        .boxed()
    }

    fn apply(&mut self, now: Instant, op: &Self::Op) -> Applied {
        match op {
            ServerInviteOp::Retransmission => self.on_retransmission(now),
            ServerInviteOp::Respond(status) => {
                let refused = self.send_response(now, *status, payload(*status)).is_err();
                return Applied {
                    refused,
                    handed: Some(payload(*status)),
                    ..Applied::default()
                };
            }
            ServerInviteOp::Ack => self.on_ack(now),
            ServerInviteOp::Ack2xx => self.on_ack_2xx(now),
            ServerInviteOp::TransportError => self.on_transport_error(),
        }
        Applied::default()
    }

    fn snapshot(&self) -> Snapshot<Self::State> {
        (self.state(), timers(|t| self.timer(t)), self.final_status())
    }

    fn must_have_timer(&self, _reliable: bool) -> bool {
        matches!(
            self.state(),
            InviteServerState::Completed
                | InviteServerState::Confirmed
                | InviteServerState::Accepted
        )
    }
}

#[derive(Clone, Debug)]
enum ServerOp {
    Retransmission,
    Respond(u16),
    TransportError,
}

impl Model for NonInviteServer {
    type Op = ServerOp;
    type State = NonInviteServerState;

    fn build(now: Instant, cfg: TimerConfig, reliable: bool) -> Self {
        NonInviteServer::new(now, cfg, reliable)
    }

    fn initial_messages() -> Vec<Bytes> {
        Vec::new()
    }

    fn op() -> BoxedStrategy<Self::Op> {
        prop_oneof![
            Just(ServerOp::Retransmission),
            status().prop_map(ServerOp::Respond),
            Just(ServerOp::TransportError),
        ]
        .boxed()
    }

    fn apply(&mut self, now: Instant, op: &Self::Op) -> Applied {
        match op {
            ServerOp::Retransmission => self.on_retransmission(now),
            ServerOp::Respond(status) => {
                let refused = self.send_response(now, *status, payload(*status)).is_err();
                return Applied {
                    refused,
                    handed: Some(payload(*status)),
                    ..Applied::default()
                };
            }
            ServerOp::TransportError => self.on_transport_error(),
        }
        Applied::default()
    }

    fn snapshot(&self) -> Snapshot<Self::State> {
        (self.state(), timers(|t| self.timer(t)), self.final_status())
    }

    fn must_have_timer(&self, _reliable: bool) -> bool {
        self.state() == NonInviteServerState::Completed
    }
}

#[derive(Clone, Debug)]
enum ClientInviteOp {
    Response(u16),
    SendAck,
    TransportError,
}

impl Model for InviteClient {
    type Op = ClientInviteOp;
    type State = InviteClientState;

    fn build(now: Instant, cfg: TimerConfig, reliable: bool) -> Self {
        InviteClient::new(now, cfg, reliable, msg::INVITE)
    }

    fn initial_messages() -> Vec<Bytes> {
        vec![msg::INVITE]
    }

    fn op() -> BoxedStrategy<Self::Op> {
        prop_oneof![
            status().prop_map(ClientInviteOp::Response),
            Just(ClientInviteOp::SendAck),
            Just(ClientInviteOp::TransportError),
        ]
        .boxed()
    }

    fn apply(&mut self, now: Instant, op: &Self::Op) -> Applied {
        match op {
            ClientInviteOp::Response(status) => {
                let d = self.on_response(now, *status);
                Applied {
                    // Junk status codes are absorbed and must change nothing.
                    refused: !(100..=699).contains(status),
                    passed: d.pass_to_tu(),
                    // Every 2xx passes (RFC 6026); a non-2xx final only once.
                    final_passed: d.pass_to_tu() && *status >= 300,
                    ack_requested: d.needs_ack(),
                    ..Applied::default()
                }
            }
            ClientInviteOp::SendAck => Applied {
                refused: self.send_ack(now, msg::ACK).is_err(),
                handed: Some(msg::ACK),
                ..Applied::default()
            },
            ClientInviteOp::TransportError => {
                self.on_transport_error();
                Applied::default()
            }
        }
    }

    fn snapshot(&self) -> Snapshot<Self::State> {
        (self.state(), timers(|t| self.timer(t)), self.final_status())
    }

    fn must_have_timer(&self, reliable: bool) -> bool {
        match self.state() {
            InviteClientState::Calling | InviteClientState::Accepted => true,
            InviteClientState::Completed => !reliable,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
enum ClientOp {
    Response(u16),
    TransportError,
}

impl Model for NonInviteClient {
    type Op = ClientOp;
    type State = NonInviteClientState;

    fn build(now: Instant, cfg: TimerConfig, reliable: bool) -> Self {
        NonInviteClient::new(now, cfg, reliable, msg::BYE)
    }

    fn initial_messages() -> Vec<Bytes> {
        vec![msg::BYE]
    }

    fn op() -> BoxedStrategy<Self::Op> {
        prop_oneof![
            status().prop_map(ClientOp::Response),
            Just(ClientOp::TransportError),
        ]
        .boxed()
    }

    fn apply(&mut self, now: Instant, op: &Self::Op) -> Applied {
        match op {
            ClientOp::Response(status) => {
                let d = self.on_response(now, *status);
                Applied {
                    refused: !(100..=699).contains(status),
                    passed: d.pass_to_tu(),
                    final_passed: d.pass_to_tu() && *status >= 200,
                    ack_requested: d.needs_ack(),
                    ..Applied::default()
                }
            }
            ClientOp::TransportError => {
                self.on_transport_error();
                Applied::default()
            }
        }
    }

    fn snapshot(&self) -> Snapshot<Self::State> {
        (self.state(), timers(|t| self.timer(t)), self.final_status())
    }

    fn must_have_timer(&self, _reliable: bool) -> bool {
        !self.is_terminated()
    }
}

/// What the checker has seen so far.
#[derive(Debug, Default)]
struct Seen {
    terminated: bool,
    terminal_events: u32,
    acks_received: u32,
    finals_passed: u32,
    acks_requested: u32,
    final_status: Option<u16>,
}

/// Drains the machine and checks the invariants that hold after any call. Returns how many
/// messages and events came out.
fn observe<M: Model>(
    m: &mut M,
    known: &[Bytes],
    seen: &mut Seen,
) -> Result<(usize, usize), TestCaseError> {
    let mut sent = 0;
    while let Some(b) = m.poll_transmit() {
        prop_assert!(known.contains(&b), "sent {b:?}, never handed over");
        sent += 1;
    }
    let mut events = 0;
    while let Some(ev) = m.poll_event() {
        events += 1;
        if ev == Event::AckReceived {
            seen.acks_received += 1;
            prop_assert!(seen.acks_received <= 1, "AckReceived twice");
        } else {
            seen.terminal_events += 1;
            prop_assert!(seen.terminal_events <= 1, "second terminal event {ev:?}");
            prop_assert!(m.is_terminated(), "{ev:?} without termination");
        }
    }
    if seen.terminated {
        prop_assert!(m.is_terminated(), "left Terminated");
        prop_assert_eq!(sent, 0, "sent after termination");
        prop_assert_eq!(events, 0, "event after termination");
    }
    if m.is_terminated() {
        prop_assert_eq!(m.poll_timeout(), None, "timer armed in Terminated");
    }
    let final_status = m.snapshot().2;
    if seen.final_status.is_some() {
        prop_assert_eq!(final_status, seen.final_status, "final status changed");
    }
    seen.final_status = final_status;
    seen.terminated = m.is_terminated();
    Ok((sent, events))
}

/// Runs `steps` against a fresh machine. With `exact_timers` the driver fires each timer at
/// its deadline (and the timer values must be non-zero); otherwise it calls `handle_timeout`
/// once per wait, which is all a degenerate configuration allows.
fn check<M: Model>(
    cfg: TimerConfig,
    reliable: bool,
    steps: &[Step<M::Op>],
    exact_timers: bool,
) -> Result<(), TestCaseError> {
    let clock = Clock::new();
    let mut now = clock.at(0);
    let mut m = M::build(now, cfg, reliable);
    let mut known = M::initial_messages();
    let mut seen = Seen::default();
    observe(&mut m, &known, &mut seen)?;

    for step in steps {
        match step {
            Step::Wait(ms) => {
                let end = now + Duration::from_millis(*ms);
                if exact_timers {
                    while let Some(t) = m.poll_timeout() {
                        if t > end {
                            break;
                        }
                        prop_assert!(t >= now, "deadline {t:?} before {now:?}: a timer was lost");
                        now = t;
                        m.handle_timeout(t);
                        observe(&mut m, &known, &mut seen)?;
                        prop_assert!(
                            m.poll_timeout().is_none_or(|next| next > t),
                            "a timer still due after handle_timeout"
                        );
                    }
                } else {
                    m.handle_timeout(end);
                    observe(&mut m, &known, &mut seen)?;
                }
                now = end;
            }
            Step::Input(op) => {
                let was_terminated = m.is_terminated();
                let before = m.snapshot();
                let applied = m.apply(now, op);
                if let Some(b) = applied.handed.clone() {
                    known.push(b);
                }
                let (sent, events) = observe(&mut m, &known, &mut seen)?;
                if applied.refused {
                    prop_assert_eq!(m.snapshot(), before, "refused {:?} changed state", op);
                    prop_assert_eq!((sent, events), (0, 0), "refused {:?} had output", op);
                }
                if was_terminated {
                    prop_assert!(!applied.passed, "{op:?} passed to the TU after termination");
                }
                seen.finals_passed += u32::from(applied.final_passed);
                seen.acks_requested += u32::from(applied.ack_requested);
                prop_assert!(seen.finals_passed <= 1, "a final reached the TU twice");
                prop_assert!(seen.acks_requested <= 1, "ACK requested twice");
            }
        }
        if exact_timers {
            prop_assert!(
                m.poll_timeout().is_none_or(|t| t > now),
                "a deadline at or before now was left unfired"
            );
            if !m.is_terminated() && m.must_have_timer(reliable) {
                prop_assert!(
                    m.poll_timeout().is_some(),
                    "{:?} waits on a timer but none is armed",
                    m.snapshot().0
                );
            }
        }
    }
    Ok(())
}

fn steps<M: Model>() -> impl Strategy<Value = Vec<Step<M::Op>>> {
    prop::collection::vec(
        prop_oneof![
            (0u64..5_000).prop_map(Step::Wait),
            M::op().prop_map(Step::Input),
        ],
        0..80,
    )
}

/// Default timers, or small random positive ones (including T2 < T1).
fn positive_cfg() -> impl Strategy<Value = TimerConfig> {
    let ms = |max: u64| (10u64..max).prop_map(Duration::from_millis);
    prop_oneof![
        Just(TimerConfig::default()),
        (ms(2_000), ms(8_000), ms(10_000)).prop_map(|(t1, t2, t4)| TimerConfig { t1, t2, t4 }),
    ]
}

/// Zero, tiny and overflowing timer values: nothing may panic or loop.
fn degenerate_cfg() -> impl Strategy<Value = TimerConfig> {
    let d = || {
        prop_oneof![
            Just(Duration::ZERO),
            Just(Duration::from_nanos(1)),
            Just(Duration::from_millis(1)),
            Just(Duration::MAX),
        ]
    };
    (d(), d(), d()).prop_map(|(t1, t2, t4)| TimerConfig { t1, t2, t4 })
}

proptest! {
    // Failures print their minimal input; no regression files are written into the tree.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn invite_server_invariants(
        cfg in positive_cfg(), reliable in any::<bool>(), steps in steps::<InviteServer>()
    ) {
        check::<InviteServer>(cfg, reliable, &steps, true)?;
    }

    #[test]
    fn non_invite_server_invariants(
        cfg in positive_cfg(), reliable in any::<bool>(), steps in steps::<NonInviteServer>()
    ) {
        check::<NonInviteServer>(cfg, reliable, &steps, true)?;
    }

    #[test]
    fn invite_client_invariants(
        cfg in positive_cfg(), reliable in any::<bool>(), steps in steps::<InviteClient>()
    ) {
        check::<InviteClient>(cfg, reliable, &steps, true)?;
    }

    #[test]
    fn non_invite_client_invariants(
        cfg in positive_cfg(), reliable in any::<bool>(), steps in steps::<NonInviteClient>()
    ) {
        check::<NonInviteClient>(cfg, reliable, &steps, true)?;
    }

    #[test]
    fn degenerate_timer_values_never_panic_or_hang(
        cfg in degenerate_cfg(),
        reliable in any::<bool>(),
        is in steps::<InviteServer>(),
        nis in steps::<NonInviteServer>(),
        ic in steps::<InviteClient>(),
        nic in steps::<NonInviteClient>(),
    ) {
        check::<InviteServer>(cfg, reliable, &is, false)?;
        check::<NonInviteServer>(cfg, reliable, &nis, false)?;
        check::<InviteClient>(cfg, reliable, &ic, false)?;
        check::<NonInviteClient>(cfg, reliable, &nic, false)?;
    }
}
