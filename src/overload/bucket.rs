//! The token bucket: `rate` tokens per second up to `burst`, one token per event.

use std::time::{Duration, Instant};

/// A token bucket fed with time. A bucket with a rate of zero is unlimited.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        let burst = burst.max(1.0);
        TokenBucket {
            tokens: burst,
            last: now,
            rate,
            burst,
        }
    }

    /// True when the bucket has no limit.
    pub fn is_unlimited(&self) -> bool {
        self.rate <= 0.0
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }

    /// Takes `n` tokens when there are that many; false (and nothing taken) otherwise.
    pub fn take_n(&mut self, n: f64, now: Instant) -> bool {
        if self.is_unlimited() {
            return true;
        }
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes one token.
    pub fn take(&mut self, now: Instant) -> bool {
        self.take_n(1.0, now)
    }

    /// Takes `n` tokens whatever the balance (it may go negative, down to one burst of
    /// debt) and returns how long until the balance is back at zero: the wait that keeps a
    /// stream at the rate (traffic shaping rather than policing).
    pub fn charge(&mut self, n: f64, now: Instant) -> Duration {
        if self.is_unlimited() {
            return Duration::ZERO;
        }
        self.refill(now);
        self.tokens = (self.tokens - n).max(-self.burst);
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// True when the bucket has been idle long enough to be full again (its state carries no
    /// information and may be forgotten).
    pub fn is_full(&self, now: Instant) -> bool {
        self.is_unlimited()
            || self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * self.rate
                >= self.burst
    }
}
