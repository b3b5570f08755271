//! Virtual time for the transaction tests: a clock in milliseconds and a driver that runs a
//! machine's timers and records what it sent and raised, and when.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Event, InviteClient, InviteServer, NonInviteClient, NonInviteServer};

/// Instants as milliseconds after an arbitrary origin.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    pub(crate) fn at(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    pub(crate) fn ms(&self, t: Instant) -> u64 {
        u64::try_from(t.duration_since(self.origin).as_millis()).expect("test times fit u64")
    }
}

/// The driver-facing surface the four machines share.
pub(crate) trait Machine {
    fn poll_transmit(&mut self) -> Option<Bytes>;
    fn poll_event(&mut self) -> Option<Event>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    fn is_terminated(&self) -> bool;
}

macro_rules! impl_machine {
    ($($t:ty),*) => {$(
        impl Machine for $t {
            fn poll_transmit(&mut self) -> Option<Bytes> { <$t>::poll_transmit(self) }
            fn poll_event(&mut self) -> Option<Event> { <$t>::poll_event(self) }
            fn poll_timeout(&self) -> Option<Instant> { <$t>::poll_timeout(self) }
            fn handle_timeout(&mut self, now: Instant) { <$t>::handle_timeout(self, now) }
            fn is_terminated(&self) -> bool { <$t>::is_terminated(self) }
        }
    )*};
}
impl_machine!(InviteServer, NonInviteServer, InviteClient, NonInviteClient);

/// Everything a machine emitted, stamped with the virtual time (ms) it was drained at.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Trace {
    pub(crate) sent: Vec<(u64, Bytes)>,
    pub(crate) events: Vec<(u64, Event)>,
}

impl Trace {
    /// When something was sent.
    pub(crate) fn sent_at(&self) -> Vec<u64> {
        self.sent.iter().map(|(t, _)| *t).collect()
    }

    /// When `msg` was sent.
    pub(crate) fn sent_at_of(&self, msg: &[u8]) -> Vec<u64> {
        self.sent
            .iter()
            .filter(|(_, m)| m.as_ref() == msg)
            .map(|(t, _)| *t)
            .collect()
    }

    pub(crate) fn messages(&self) -> Vec<&[u8]> {
        self.sent.iter().map(|(_, m)| m.as_ref()).collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.sent.is_empty() && self.events.is_empty()
    }
}

/// Drains all pending output as if at `ms`.
pub(crate) fn drain<M: Machine>(m: &mut M, ms: u64) -> Trace {
    let mut trace = Trace::default();
    drain_into(m, ms, &mut trace);
    trace
}

fn drain_into<M: Machine>(m: &mut M, ms: u64, trace: &mut Trace) {
    while let Some(msg) = m.poll_transmit() {
        trace.sent.push((ms, msg));
    }
    while let Some(ev) = m.poll_event() {
        trace.events.push((ms, ev));
    }
}

/// Fires the machine's timers exactly when `poll_timeout` asks, up to and including `until`
/// ms, draining outputs after each firing.
pub(crate) fn run_until<M: Machine>(m: &mut M, clock: &Clock, until: u64) -> Trace {
    let mut trace = Trace::default();
    let end = clock.at(until);
    while let Some(t) = m.poll_timeout() {
        if t > end {
            break;
        }
        m.handle_timeout(t);
        drain_into(m, clock.ms(t), &mut trace);
    }
    trace
}

/// Canned payloads: the machines never look inside them.
pub(crate) mod msg {
    use bytes::Bytes;

    pub(crate) const INVITE: Bytes = Bytes::from_static(b"INVITE");
    pub(crate) const BYE: Bytes = Bytes::from_static(b"BYE");
    pub(crate) const ACK: Bytes = Bytes::from_static(b"ACK");
    pub(crate) const TRYING: Bytes = Bytes::from_static(b"100");
    pub(crate) const RINGING: Bytes = Bytes::from_static(b"180");
    pub(crate) const PROGRESS: Bytes = Bytes::from_static(b"183");
    pub(crate) const OK: Bytes = Bytes::from_static(b"200");
    pub(crate) const BUSY: Bytes = Bytes::from_static(b"486");
    pub(crate) const TERMINATED: Bytes = Bytes::from_static(b"487");
}
