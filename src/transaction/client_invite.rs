//! INVITE client transaction: RFC 3261 §17.1.1 with RFC 6026 §7.2.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::Timers;
use super::{
    Event, Events, ResponseDisposition, StatusClass, Timer, TimerConfig, TransactionError,
    Transmits,
};

#[cfg(test)]
mod tests;

super::plumbing::machine_plumbing!(InviteClient);

/// Timer D's floor on unreliable transports (RFC 3261 §17.1.1.2: "at least 32 seconds").
const TIMER_D_MIN: Duration = Duration::from_secs(32);

/// State of an [`InviteClient`] (RFC 3261 Figure 5 as redrawn by RFC 6026 Figure 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InviteClientState {
    /// The INVITE was sent and nothing has come back: retransmit (Timer A), give up (Timer B).
    Calling,
    /// A provisional arrived: no more retransmissions; the TU decides how long to wait.
    Proceeding,
    /// A 300-699 final arrived: its retransmissions are answered with our ACK until Timer D.
    Completed,
    /// A 2xx arrived (RFC 6026): every 2xx still passes to the TU, which ACKs it, until Timer M.
    Accepted,
    /// Done: the driver may drop the machine once its outputs are drained.
    Terminated,
}

/// The client side of an INVITE (the focus dialling out, or re-INVITEs). It exists to make the
/// INVITE survive UDP loss (Timer A), to tell the TU when nobody answers (Timer B), to ACK a
/// 300-699 final within the transaction and repeat that ACK for each retransmitted final
/// (Timer D), and, per RFC 6026, to keep matching 2xx responses after the first so that each
/// one, retransmitted or forked, reaches the TU to be ACKed (Timer M). It follows RFC 3261
/// §17.1.1 and RFC 6026 §7.2. The ACK for a non-2xx is built by the driver (the machine never
/// writes SIP) when [`InviteClient::on_response`] says so, and handed back with
/// [`InviteClient::send_ack`].
#[derive(Clone, Debug)]
pub struct InviteClient {
    state: InviteClientState,
    cfg: TimerConfig,
    /// UDP (false) needs retransmissions and lingering; TCP/TLS (true) does not.
    reliable: bool,
    /// The INVITE, for Timer A retransmissions; released once a response arrives.
    request: Option<Bytes>,
    /// The ACK for the non-2xx final, repeated for each retransmitted final in Completed.
    ack: Option<Bytes>,
    /// Status of the first final response received.
    final_status: Option<u16>,
    /// Current Timer A interval (doubles without a cap).
    retransmit_interval: Duration,
    timers: Timers,
    transmits: Transmits,
    events: Events,
}

impl InviteClient {
    /// Creates the transaction and queues the INVITE's first transmission. Timer B always
    /// runs; Timer A only on unreliable transports.
    pub fn new(now: Instant, cfg: TimerConfig, reliable: bool, request: Bytes) -> Self {
        let mut timers = Timers::default();
        timers.arm(Timer::B, now, cfg.t1_x64());
        if !reliable {
            timers.arm(Timer::A, now, cfg.t1);
        }
        let mut transmits = Transmits::default();
        transmits.push(request.clone());
        Self {
            state: InviteClientState::Calling,
            cfg,
            reliable,
            request: Some(request),
            ack: None,
            final_status: None,
            retransmit_interval: cfg.t1,
            timers,
            transmits,
            events: Events::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> InviteClientState {
        self.state
    }

    /// Whether the transaction is over (drain outputs, then drop it).
    pub fn is_terminated(&self) -> bool {
        self.state == InviteClientState::Terminated
    }

    /// Status code of the first final response received, if any.
    pub fn final_status(&self) -> Option<u16> {
        self.final_status
    }

    /// The deadline of one timer, if armed (for tracing and tests).
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    /// A response matching this transaction arrived with `status`. The answer says whether
    /// the TU must see it and whether the driver must now build and
    /// [send](InviteClient::send_ack) the ACK. A status outside 100..=699 is absorbed.
    pub fn on_response(&mut self, now: Instant, status: u16) -> ResponseDisposition {
        let Ok(class) = StatusClass::of(status) else {
            // Not a response class: junk from the network, kept from the TU.
            return ResponseDisposition::Absorb;
        };
        match (self.state, class) {
            (InviteClientState::Calling, StatusClass::Provisional) => {
                // The server has the INVITE: stop retransmitting. Timer B only guards Calling;
                // how long to ring is the TU's call (it CANCELs).
                self.stop_calling();
                self.state = InviteClientState::Proceeding;
                ResponseDisposition::PassToTu
            }
            (InviteClientState::Proceeding, StatusClass::Provisional) => {
                ResponseDisposition::PassToTu
            }
            (InviteClientState::Calling | InviteClientState::Proceeding, StatusClass::Success) => {
                self.stop_calling();
                self.state = InviteClientState::Accepted;
                self.final_status = Some(status);
                self.timers.arm(Timer::M, now, self.cfg.t1_x64());
                ResponseDisposition::PassToTu
            }
            (
                InviteClientState::Calling | InviteClientState::Proceeding,
                StatusClass::NonSuccess,
            ) => {
                self.stop_calling();
                self.state = InviteClientState::Completed;
                self.final_status = Some(status);
                // On a reliable transport Timer D is zero: the transaction ends as soon as the
                // ACK is handed over (see `send_ack`).
                if !self.reliable {
                    self.timers
                        .arm(Timer::D, now, TIMER_D_MIN.max(self.cfg.t1_x64()));
                }
                ResponseDisposition::PassToTuAndAck
            }
            (InviteClientState::Completed, StatusClass::NonSuccess) => {
                // The server did not get our ACK: repeat it (if the driver has built it yet).
                if let Some(ack) = self.ack.clone() {
                    self.transmits.push_if_room(ack);
                }
                ResponseDisposition::Absorb
            }
            // Each 2xx (a retransmission or another fork's) needs the TU's ACK.
            (InviteClientState::Accepted, StatusClass::Success) => ResponseDisposition::PassToTu,
            _ => ResponseDisposition::Absorb,
        }
    }

    /// Transmits the ACK the driver built for the 300-699 final, and keeps it for
    /// retransmitted finals. Valid once, in Completed.
    pub fn send_ack(&mut self, _now: Instant, ack: Bytes) -> Result<(), TransactionError> {
        match self.state {
            InviteClientState::Terminated => Err(TransactionError::Terminated),
            InviteClientState::Completed if self.ack.is_some() => {
                Err(TransactionError::AckAlreadySent)
            }
            InviteClientState::Completed => {
                self.transmits.push(ack.clone());
                if self.reliable {
                    // Timer D is zero: no final retransmissions will come to absorb.
                    self.terminate();
                } else {
                    self.ack = Some(ack);
                }
                Ok(())
            }
            _ => Err(TransactionError::AckNotExpected),
        }
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match (self.state, timer) {
            (InviteClientState::Calling, Timer::A) => {
                if let Some(request) = self.request.clone() {
                    self.transmits.push_if_room(request);
                }
                self.retransmit_interval = self.cfg.backoff(self.retransmit_interval, false);
                self.timers.arm(Timer::A, now, self.retransmit_interval);
            }
            (InviteClientState::Calling, Timer::B) => {
                self.terminate();
                self.events.push(Event::Timeout);
            }
            (InviteClientState::Completed, Timer::D) | (InviteClientState::Accepted, Timer::M) => {
                self.terminate()
            }
            _ => {}
        }
    }

    fn stop_calling(&mut self) {
        self.timers.cancel(Timer::A);
        self.timers.cancel(Timer::B);
        self.request = None;
    }

    fn terminate(&mut self) {
        self.state = InviteClientState::Terminated;
        self.timers.clear();
        self.request = None;
        self.ack = None;
    }
}
