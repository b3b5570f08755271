//! Non-INVITE client transaction: RFC 3261 §17.1.2.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::Timers;
use super::{Event, Events, ResponseDisposition, StatusClass, Timer, TimerConfig, Transmits};

#[cfg(test)]
mod tests;

super::plumbing::machine_plumbing!(NonInviteClient);

/// State of a [`NonInviteClient`] (RFC 3261 Figure 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NonInviteClientState {
    /// The request was sent and nothing has come back: retransmit (Timer E), give up (Timer F).
    Trying,
    /// A provisional arrived: retransmissions slow to every T2, Timer F still runs.
    Proceeding,
    /// The final arrived: its retransmissions are absorbed until Timer K.
    Completed,
    /// Done: the driver may drop the machine once its outputs are drained.
    Terminated,
}

/// The client side of any request but INVITE and ACK (the focus's BYE, NOTIFY, REFER,
/// MESSAGE, ...). It exists to make the request survive UDP loss (Timer E, backing off to
/// T2), to tell the TU when no final response comes within 64·T1 (Timer F), and to pass
/// exactly one final response up while absorbing its retransmissions for T4 (Timer K). It
/// follows RFC 3261 §17.1.2.
#[derive(Clone, Debug)]
pub struct NonInviteClient {
    state: NonInviteClientState,
    cfg: TimerConfig,
    /// UDP (false) needs retransmissions and lingering; TCP/TLS (true) does not.
    reliable: bool,
    /// The request, for Timer E retransmissions; released once the final arrives.
    request: Option<Bytes>,
    /// Status of the final response received.
    final_status: Option<u16>,
    /// Current Timer E interval (doubles up to T2).
    retransmit_interval: Duration,
    timers: Timers,
    transmits: Transmits,
    events: Events,
}

impl NonInviteClient {
    /// Creates the transaction and queues the request's first transmission. Timer F always
    /// runs; Timer E only on unreliable transports.
    pub fn new(now: Instant, cfg: TimerConfig, reliable: bool, request: Bytes) -> Self {
        let mut timers = Timers::default();
        timers.arm(Timer::F, now, cfg.t1_x64());
        if !reliable {
            timers.arm(Timer::E, now, cfg.t1);
        }
        let mut transmits = Transmits::default();
        transmits.push(request.clone());
        Self {
            state: NonInviteClientState::Trying,
            cfg,
            reliable,
            request: Some(request),
            final_status: None,
            retransmit_interval: cfg.t1,
            timers,
            transmits,
            events: Events::default(),
        }
    }

    /// The current state.
    pub fn state(&self) -> NonInviteClientState {
        self.state
    }

    /// Whether the transaction is over (drain outputs, then drop it).
    pub fn is_terminated(&self) -> bool {
        self.state == NonInviteClientState::Terminated
    }

    /// Status code of the final response received, if any.
    pub fn final_status(&self) -> Option<u16> {
        self.final_status
    }

    /// The deadline of one timer, if armed (for tracing and tests).
    pub fn timer(&self, timer: Timer) -> Option<Instant> {
        self.timers.get(timer)
    }

    /// A response matching this transaction arrived with `status`. Provisionals pass while
    /// no final has arrived; the final passes once; anything later is absorbed, as is a status
    /// outside 100..=699.
    pub fn on_response(&mut self, now: Instant, status: u16) -> ResponseDisposition {
        let Ok(class) = StatusClass::of(status) else {
            // Not a response class: junk from the network, kept from the TU.
            return ResponseDisposition::Absorb;
        };
        if !matches!(
            self.state,
            NonInviteClientState::Trying | NonInviteClientState::Proceeding
        ) {
            return ResponseDisposition::Absorb;
        }
        if class == StatusClass::Provisional {
            self.state = NonInviteClientState::Proceeding;
            return ResponseDisposition::PassToTu;
        }
        self.state = NonInviteClientState::Completed;
        self.final_status = Some(status);
        self.timers.cancel(Timer::E);
        self.timers.cancel(Timer::F);
        self.request = None;
        if self.reliable {
            // Timer K is zero: a reliable transport delivers no response retransmissions.
            self.terminate();
        } else {
            self.timers.arm(Timer::K, now, self.cfg.t4);
        }
        ResponseDisposition::PassToTu
    }

    fn on_timer(&mut self, now: Instant, timer: Timer) {
        match (self.state, timer) {
            (NonInviteClientState::Trying | NonInviteClientState::Proceeding, Timer::E) => {
                if let Some(request) = self.request.clone() {
                    self.transmits.push_if_room(request);
                }
                // Once the server has answered provisionally it has the request: fall back to
                // a slow T2 keep-alive instead of continuing the backoff.
                self.retransmit_interval = if self.state == NonInviteClientState::Proceeding {
                    self.cfg.t2
                } else {
                    self.cfg.backoff(self.retransmit_interval, true)
                };
                self.timers.arm(Timer::E, now, self.retransmit_interval);
            }
            (NonInviteClientState::Trying | NonInviteClientState::Proceeding, Timer::F) => {
                self.terminate();
                self.events.push(Event::Timeout);
            }
            (NonInviteClientState::Completed, Timer::K) => self.terminate(),
            _ => {}
        }
    }

    fn terminate(&mut self) {
        self.state = NonInviteClientState::Terminated;
        self.timers.clear();
        self.request = None;
    }
}
