//! INVITE server transaction: RFC 3261 §17.2.1 with RFC 6026 §7.1, plus the UAS core's 2xx
//! retransmission (RFC 3261 §13.3.1.4).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::Timers;
use super::{Event, Events, StatusClass, Timer, TimerConfig, TransactionError, Transmits};

#[cfg(test)]
mod tests;

super::plumbing::machine_plumbing!(InviteServer);

/// State of an [`InviteServer`] (RFC 3261 Figure 7 as redrawn by RFC 6026 Figure 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InviteServerState {
    /// The INVITE is with the TU; provisional responses go out as the TU sends them.
    Proceeding,
    /// A 300-699 final was sent; it is retransmitted until the ACK (Timers G, H).
    Completed,
    /// The ACK for the non-2xx arrived; its retransmissions are absorbed (Timer I).
    Confirmed,
    /// A 2xx was sent (RFC 6026); it is retransmitted until its ACK, and stray INVITE and ACK
    /// copies are absorbed until Timer L.
    Accepted,
    /// Done: the driver may drop the machine once its outputs are drained.
    Terminated,
}

/// The server side of an INVITE. It exists so that a lost response or ACK over UDP costs a
/// retransmission instead of a failed call, and so that INVITE retransmissions never reach the
/// TU twice: it re-sends the latest provisional while the TU decides, retransmits a 300-699
/// final until the ACK arrives (RFC 3261 §17.2.1), and, because RFC 6026 keeps the transaction
/// alive after a 2xx in the Accepted state, it also carries the UAS core's job of
/// retransmitting the 2xx until its ACK or Timer L (RFC 3261 §13.3.1.4, RFC 6026 §7.1). The
/// 100 (Trying) is the TU's to send through [`InviteServer::send_response`], as this machine
/// builds no messages.
#[derive(Clone, Debug)]
pub struct InviteServer {
    state: InviteServerState,
    cfg: TimerConfig,
    /// UDP (false) needs retransmissions and lingering; TCP/TLS (true) does not.
    reliable: bool,
    /// Latest provisional response: what an INVITE retransmission gets in Proceeding.
    last_provisional: Option<Bytes>,
    /// The final response as sent, for retransmissions; released on termination.
    final_response: Option<Bytes>,
    /// Status of the final response: refuses a second final and answers `final_status()`.
    final_status: Option<u16>,
    /// Current interval of Timer G or of the 2xx retransmission timer.
    retransmit_interval: Duration,
    /// The ACK for our 2xx arrived: retransmissions stop and later ACKs are duplicates.
    ack_received: bool,
    timers: Timers,
    transmits: Transmits,
    events: Events,
}

impl InviteServer {
    /// Creates the transaction for a newly received INVITE, in Proceeding. Nothing is sent:
    /// the TU answers (with 100 Trying first if it will take more than 200 ms).
    pub fn new(_now: Instant, cfg: TimerConfig, reliable: bool) -> Self {
        Self {
            state: InviteServerState::Proceeding,
            cfg,
            reliable,
            last_provisional: None,
            final_response: None,
            final_status: None,
            retransmit_interval: cfg.t1,
            ack_received: false,
            timers: Timers::default(),
            transmits: Transmits::default(),
            events: Events::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> InviteServerState {
        self.state
    }

    /// Whether the transaction is over (drain outputs, then drop it).
    pub fn is_terminated(&self) -> bool {
        self.state == InviteServerState::Terminated
    }

    /// Status code of the final response the TU sent, if any.
    pub fn final_status(&self) -> Option<u16> {
        self.final_status
    }

    /// The deadline of one timer, if armed (for tracing and tests).
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    /// The INVITE was received again. It is never passed to the TU. Proceeding answers it with
    /// the latest provisional (if any), Completed with the final, Accepted with the 2xx once
    /// (until the ACK arrives); other states absorb it.
    pub fn on_retransmission(&mut self, _now: Instant) {
        let again = match self.state {
            InviteServerState::Proceeding => self.last_provisional.clone(),
            InviteServerState::Completed => self.final_response.clone(),
            // Before the ACK the copy may mean our 2xx was lost: answer it once. After the ACK
            // the peer has the 2xx, so the copy is stale.
            InviteServerState::Accepted if !self.ack_received => self.final_response.clone(),
            _ => None,
        };
        if let Some(msg) = again {
            self.transmits.push_if_room(msg);
        }
    }

    /// The TU sends a response. A 1xx keeps the transaction in Proceeding; a 2xx moves it to
    /// Accepted; a 300-699 moves it to Completed. Only one final response may be sent.
    pub fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        msg: Bytes,
    ) -> Result<(), TransactionError> {
        let class = StatusClass::of(status)?;
        if self.is_terminated() {
            return Err(TransactionError::Terminated);
        }
        if let Some(sent) = self.final_status {
            return Err(TransactionError::FinalAlreadySent {
                sent,
                attempted: status,
            });
        }
        self.transmits.push(msg.clone());
        match class {
            StatusClass::Provisional => self.last_provisional = Some(msg),
            StatusClass::Success => {
                self.enter_final(status, msg, InviteServerState::Accepted);
                self.timers.arm(Timer::L, now, self.cfg.t1_x64());
                if !self.reliable {
                    self.timers
                        .arm(Timer::Retransmit2xx, now, self.retransmit_interval);
                }
            }
            StatusClass::NonSuccess => {
                self.enter_final(status, msg, InviteServerState::Completed);
                self.timers.arm(Timer::H, now, self.cfg.t1_x64());
                if !self.reliable {
                    self.timers.arm(Timer::G, now, self.retransmit_interval);
                }
            }
        }
        Ok(())
    }

    /// An ACK on this transaction's branch arrived: the ACK for our 300-699 final.
    pub fn on_ack(&mut self, now: Instant) {
        if self.state != InviteServerState::Completed {
            // In any other state it is a retransmission or a stray; either way, absorbed.
            return;
        }
        self.timers.cancel(Timer::G);
        self.timers.cancel(Timer::H);
        self.state = InviteServerState::Confirmed;
        self.final_response = None;
        if self.reliable {
            // Timer I is zero: no ACK retransmissions to absorb on a reliable transport.
            self.terminate();
        } else {
            self.timers.arm(Timer::I, now, self.cfg.t4);
        }
    }

    /// The driver matched an ACK for our 2xx (a transaction of its own, with another branch)
    /// to this transaction. The first one stops the 2xx retransmissions and raises
    /// [`Event::AckReceived`]; copies are absorbed.
    pub fn on_ack_2xx(&mut self, _now: Instant) {
        if self.state != InviteServerState::Accepted || self.ack_received {
            return;
        }
        self.ack_received = true;
        self.timers.cancel(Timer::Retransmit2xx);
        self.events.push(Event::AckReceived);
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match (self.state, timer) {
            (InviteServerState::Completed, Timer::G)
            | (InviteServerState::Accepted, Timer::Retransmit2xx) => {
                if let Some(msg) = self.final_response.clone() {
                    self.transmits.push_if_room(msg);
                }
                self.retransmit_interval = self.cfg.backoff(self.retransmit_interval, true);
                self.timers.arm(timer, now, self.retransmit_interval);
            }
            (InviteServerState::Completed, Timer::H) => {
                self.terminate();
                self.events.push(Event::Timeout);
            }
            (InviteServerState::Confirmed, Timer::I) => self.terminate(),
            (InviteServerState::Accepted, Timer::L) => {
                let acked = self.ack_received;
                self.terminate();
                if !acked {
                    self.events.push(Event::AckTimeout);
                }
            }
            _ => {}
        }
    }

    fn enter_final(&mut self, status: u16, msg: Bytes, state: InviteServerState) {
        self.state = state;
        self.final_status = Some(status);
        self.final_response = Some(msg);
        self.last_provisional = None;
    }

    fn terminate(&mut self) {
        self.state = InviteServerState::Terminated;
        self.timers.clear();
        self.last_provisional = None;
        self.final_response = None;
    }
}
