//! Non-INVITE server transaction: RFC 3261 §17.2.2.

use std::time::Instant;

use bytes::Bytes;

use super::timer::Timers;
use super::{Event, Events, StatusClass, Timer, TimerConfig, TransactionError, Transmits};

#[cfg(test)]
mod tests;

super::plumbing::machine_plumbing!(NonInviteServer);

/// State of a [`NonInviteServer`] (RFC 3261 Figure 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NonInviteServerState {
    /// The request is with the TU and nothing has been sent yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// The final response was sent; request retransmissions get it again until Timer J.
    Completed,
    /// Done: the driver may drop the machine once its outputs are drained.
    Terminated,
}

/// The server side of any request but INVITE and ACK (BYE, REFER, SUBSCRIBE, NOTIFY,
/// MESSAGE, OPTIONS, ...). It exists so that the TU handles each request once although the
/// client retransmits it over UDP: copies are absorbed while the TU works, answered with the
/// latest response afterwards, and the transaction lingers for Timer J (64·T1 on UDP) to catch
/// late copies (RFC 3261 §17.2.2).
#[derive(Clone, Debug)]
pub struct NonInviteServer {
    state: NonInviteServerState,
    cfg: TimerConfig,
    /// UDP (false) needs lingering; TCP/TLS (true) does not.
    reliable: bool,
    /// Latest response sent (provisional or final): what a request retransmission gets.
    last_response: Option<Bytes>,
    /// Status of the final response: refuses a second one and answers `final_status()`.
    final_status: Option<u16>,
    timers: Timers,
    transmits: Transmits,
    events: Events,
}

impl NonInviteServer {
    /// Creates the transaction for a newly received request, in Trying. Nothing is sent and no
    /// timer runs until the TU responds (`now` is taken for symmetry with the other machines).
    pub fn new(_now: Instant, cfg: TimerConfig, reliable: bool) -> Self {
        Self {
            state: NonInviteServerState::Trying,
            cfg,
            reliable,
            last_response: None,
            final_status: None,
            timers: Timers::default(),
            transmits: Transmits::default(),
            events: Events::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> NonInviteServerState {
        self.state
    }

    /// Whether the transaction is over (drain outputs, then drop it).
    pub fn is_terminated(&self) -> bool {
        self.state == NonInviteServerState::Terminated
    }

    /// Status code of the final response the TU sent, if any.
    pub fn final_status(&self) -> Option<u16> {
        self.final_status
    }

    /// The deadline of one timer, if armed (for tracing and tests).
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    /// The request was received again. It is never passed to the TU; in Proceeding and
    /// Completed the latest response is sent again.
    pub fn on_retransmission(&mut self, _now: Instant) {
        if matches!(
            self.state,
            NonInviteServerState::Proceeding | NonInviteServerState::Completed
        ) {
            if let Some(msg) = self.last_response.clone() {
                self.transmits.push_if_room(msg);
            }
        }
    }

    /// The TU sends a response: a 1xx moves to (or stays in) Proceeding, a final (200-699)
    /// moves to Completed. Only one final response may be sent.
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
        self.last_response = Some(msg);
        if class == StatusClass::Provisional {
            self.state = NonInviteServerState::Proceeding;
            return Ok(());
        }
        self.state = NonInviteServerState::Completed;
        self.final_status = Some(status);
        if self.reliable {
            // Timer J is zero: a reliable transport delivers no request retransmissions.
            self.terminate();
        } else {
            self.timers.arm(Timer::J, now, self.cfg.t1_x64());
        }
        Ok(())
    }

    fn on_timer(&mut self, _now: Instant, timer: Timer) {
        if (self.state, timer) == (NonInviteServerState::Completed, Timer::J) {
            self.terminate();
        }
    }

    fn terminate(&mut self) {
        self.state = NonInviteServerState::Terminated;
        self.timers.clear();
        self.last_response = None;
    }
}
