//! Rate limits for repetitive log lines. A line written once per packet, connection or
//! request (a refused RTP leg, a failed TLS handshake, a refused admin request) turns a flood
//! into a log flood: 2,534 identical WARN lines in one (issue 18). Each such call site gets
//! its own [`Limiter`]: the first `focus.log_repeat_burst` lines of an interval of
//! `focus.log_repeat_interval_s` are written, the rest are counted, and the first line of the
//! next interval is preceded by one "suppressed K similar" line naming the call site. The
//! metrics still count every event; the log only keeps its shape.
//!
//! [`warn_limited!`](crate::warn_limited) is the call-site form: a `tracing::warn!` behind a
//! limiter of its own.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines per interval (`focus.log_repeat_burst`); 0: no limit.
static BURST: AtomicU32 = AtomicU32::new(10);
/// The interval, milliseconds (`focus.log_repeat_interval_s`).
static INTERVAL_MS: AtomicU64 = AtomicU64::new(60_000);

/// Sets the limits every call site shares (at start, from the configuration).
pub fn configure(burst: u32, interval: Duration) {
    BURST.store(burst, Ordering::Relaxed);
    INTERVAL_MS.store(
        u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

/// One call site's window.
#[derive(Debug, Default)]
struct Window {
    start: Option<Instant>,
    written: u32,
    suppressed: u64,
}

/// The limiter of one repetitive log line.
#[derive(Debug)]
pub struct Limiter {
    window: Mutex<Window>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new()
    }
}

impl Limiter {
    pub const fn new() -> Limiter {
        Limiter {
            window: Mutex::new(Window {
                start: None,
                written: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether the line happening at `now` is written under the shared limits: `Some(k)`
    /// writes it, after a "suppressed k similar" line when `k > 0`; `None` counts it.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let burst = BURST.load(Ordering::Relaxed);
        let interval = Duration::from_millis(INTERVAL_MS.load(Ordering::Relaxed));
        self.admit_with(now, burst, interval)
    }

    /// [`Limiter::admit`] under explicit limits.
    pub fn admit_with(&self, now: Instant, burst: u32, interval: Duration) -> Option<u64> {
        if burst == 0 {
            return Some(0);
        }
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = w
            .start
            .is_none_or(|s| now.saturating_duration_since(s) >= interval);
        if fresh {
            let suppressed = std::mem::take(&mut w.suppressed);
            w.start = Some(now);
            w.written = 1;
            return Some(suppressed);
        }
        if w.written < burst {
            w.written += 1;
            return Some(0);
        }
        w.suppressed += 1;
        None
    }
}

/// `tracing::warn!` behind a [`Limiter`] of its own call site (see the module doc).
#[macro_export]
macro_rules! warn_limited {
    ($($arg:tt)+) => {{
        static LIMIT: $crate::log_limit::Limiter = $crate::log_limit::Limiter::new();
        if let Some(suppressed) = LIMIT.admit(::std::time::Instant::now()) {
            if suppressed > 0 {
                ::tracing::warn!(
                    suppressed,
                    site = concat!(file!(), ":", line!()),
                    "suppressed {suppressed} similar log lines (focus.log_repeat_burst per focus.log_repeat_interval_s)"
                );
            }
            ::tracing::warn!($($arg)+);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_lines_of_an_interval_pass_then_one_count_of_the_rest() {
        let l = Limiter::new();
        let t0 = Instant::now();
        let s = Duration::from_secs(10);
        let passed: Vec<Option<u64>> = (0..10)
            .map(|i| l.admit_with(t0 + Duration::from_millis(i), 3, s))
            .collect();
        assert_eq!(passed[..3], [Some(0), Some(0), Some(0)]);
        assert!(passed[3..].iter().all(Option::is_none), "{passed:?}");
        // The next interval's first line brings the count of the seven held back.
        assert_eq!(l.admit_with(t0 + s, 3, s), Some(7));
        assert_eq!(l.admit_with(t0 + s, 3, s), Some(0));
        // A quiet interval: nothing was held back.
        assert_eq!(l.admit_with(t0 + s * 3, 3, s), Some(0));
    }

    #[test]
    fn a_burst_of_zero_limits_nothing() {
        let l = Limiter::new();
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(l.admit_with(t0, 0, Duration::from_secs(1)), Some(0));
        }
    }
}
