//! RFC 3261 timer names and values, and the fixed table of deadlines each machine keeps.

use std::time::{Duration, Instant};

/// The base intervals every transaction timer derives from (RFC 3261 §17.1.1.1, Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    /// Round-trip estimate: the first retransmission interval; 64·T1 bounds every transaction.
    pub t1: Duration,
    /// Cap on retransmission intervals for non-INVITE requests and INVITE responses.
    pub t2: Duration,
    /// How long a message may linger in the network: how long stray retransmissions are absorbed.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// The values `[sip]` sets.
    pub fn from_config(sip: &crate::config::SipConfig) -> TimerConfig {
        TimerConfig {
            t1: Duration::from_millis(sip.t1_ms),
            t2: Duration::from_millis(sip.t2_ms),
            t4: Duration::from_millis(sip.t4_ms),
        }
    }

    /// 64·T1: Timers B, F, H, J (unreliable), L and M.
    pub(crate) fn t1_x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }

    /// The next retransmission interval: doubled, and capped at T2 unless `capped` is false
    /// (only Timer A grows without a cap).
    pub(crate) fn backoff(&self, interval: Duration, capped: bool) -> Duration {
        let doubled = interval.saturating_mul(2);
        if capped {
            doubled.min(self.t2)
        } else {
            doubled
        }
    }
}

/// The transaction timers, named after their letters in RFC 3261 §17 and RFC 6026.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE client, Calling: retransmit the INVITE (unreliable transports only).
    A,
    /// INVITE client, Calling: give up waiting for any response (64·T1).
    B,
    /// INVITE client, Completed: absorb retransmitted non-2xx finals (≥ 32 s, 0 if reliable).
    D,
    /// Non-INVITE client: retransmit the request (unreliable transports only).
    E,
    /// Non-INVITE client: give up waiting for a final response (64·T1).
    F,
    /// INVITE server, Completed: retransmit the non-2xx final (unreliable transports only).
    G,
    /// INVITE server, Completed: give up waiting for the ACK (64·T1).
    H,
    /// INVITE server, Confirmed: absorb retransmitted ACKs (T4, 0 if reliable).
    I,
    /// Non-INVITE server, Completed: absorb retransmitted requests (64·T1, 0 if reliable).
    J,
    /// Non-INVITE client, Completed: absorb retransmitted finals (T4, 0 if reliable).
    K,
    /// INVITE server, Accepted (RFC 6026): how long 2xx retransmissions and their ACK may arrive.
    L,
    /// INVITE client, Accepted (RFC 6026): how long retransmitted or forked 2xx may arrive.
    M,
    /// INVITE server, Accepted: retransmit the 2xx until the ACK (RFC 3261 §13.3.1.4, UAS core;
    /// the RFC gives this timer no letter).
    Retransmit2xx,
}

/// Number of [`Timer`] variants: the size of the deadline table.
const TIMER_COUNT: usize = 13;

impl Timer {
    /// Every timer, in table order; ties between equal deadlines fire in this order.
    pub(crate) const ALL: [Timer; TIMER_COUNT] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
        Timer::Retransmit2xx,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Deadlines of the armed timers. A fixed table (no allocation); a machine only ever touches
/// the few slots its section of the RFC names.
#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    deadlines: [Option<Instant>; TIMER_COUNT],
}

impl Timers {
    /// Arms `timer` to fire `after` from `now`, replacing any earlier deadline. A deadline
    /// beyond what `Instant` can represent means the timer never fires.
    pub(crate) fn arm(&mut self, timer: Timer, now: Instant, after: Duration) {
        if let Some(slot) = self.deadlines.get_mut(timer.index()) {
            *slot = now.checked_add(after);
        }
    }

    pub(crate) fn cancel(&mut self, timer: Timer) {
        if let Some(slot) = self.deadlines.get_mut(timer.index()) {
            *slot = None;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.deadlines = [None; TIMER_COUNT];
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines.get(timer.index()).copied().flatten()
    }

    pub(crate) fn earliest(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the earliest timer due at `now` that has not fired yet in this
    /// `handle_timeout` call (`fired` is a bitmask over the table). Firing each timer at most
    /// once per call keeps a late or zero-interval timer from looping.
    pub(crate) fn pop_due(&mut self, now: Instant, fired: &mut u16) -> Option<Timer> {
        let mut best: Option<(Instant, Timer)> = None;
        for (timer, deadline) in Timer::ALL.iter().zip(self.deadlines.iter()) {
            let Some(deadline) = *deadline else { continue };
            if deadline > now || *fired & (1 << timer.index()) != 0 {
                continue;
            }
            if best.is_none_or(|(at, _)| deadline < at) {
                best = Some((deadline, *timer));
            }
        }
        let (_, timer) = best?;
        *fired |= 1 << timer.index();
        self.cancel(timer);
        Some(timer)
    }
}
