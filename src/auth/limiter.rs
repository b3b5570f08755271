//! Failed authentications per source address, in fixed windows: a source with
//! `max_failures` failures in the current window is refused outright until the window ends,
//! so a password cannot be guessed at wire speed. The table is bounded; when full, the
//! source whose window started first is forgotten.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    failures: u32,
}

/// Failure counts by source.
#[derive(Debug)]
pub struct FailureLimiter {
    sources: HashMap<IpAddr, Window>,
    /// Window starts in order (an entry is current only if the map holds the same start).
    order: VecDeque<(IpAddr, Instant)>,
    max_failures: u32,
    window: Duration,
    max_sources: usize,
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration, max_sources: usize) -> FailureLimiter {
        FailureLimiter {
            sources: HashMap::new(),
            order: VecDeque::new(),
            max_failures: max_failures.max(1),
            window,
            max_sources: max_sources.max(1),
        }
    }

    /// True when `source` used up its failures in the current window.
    pub fn blocked(&self, source: IpAddr, now: Instant) -> bool {
        self.sources.get(&source).is_some_and(|w| {
            now.saturating_duration_since(w.start) < self.window && w.failures >= self.max_failures
        })
    }

    /// Counts one failure of `source`.
    pub fn record(&mut self, source: IpAddr, now: Instant) {
        if let Some(w) = self.sources.get_mut(&source) {
            if now.saturating_duration_since(w.start) < self.window {
                w.failures = w.failures.saturating_add(1);
                return;
            }
        }
        self.sources.insert(
            source,
            Window {
                start: now,
                failures: 1,
            },
        );
        self.order.push_back((source, now));
        while self.sources.len() > self.max_sources || self.order.len() > 2 * self.max_sources {
            let Some((ip, start)) = self.order.pop_front() else {
                break;
            };
            if self.sources.get(&ip).is_some_and(|w| w.start == start) {
                self.sources.remove(&ip);
            }
        }
    }

    /// Sources tracked.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    /// True when no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn a_source_is_blocked_after_its_failures_until_the_window_ends() {
        let t0 = Instant::now();
        let mut l = FailureLimiter::new(3, Duration::from_secs(60), 10);
        for _ in 0..2 {
            l.record(ip(66), t0);
        }
        assert!(!l.blocked(ip(66), t0));
        l.record(ip(66), t0);
        assert!(l.blocked(ip(66), t0 + Duration::from_secs(59)));
        assert!(!l.blocked(ip(1), t0), "other sources are not affected");
        assert!(!l.blocked(ip(66), t0 + Duration::from_secs(60)));
        // A new window starts from one.
        l.record(ip(66), t0 + Duration::from_secs(61));
        assert!(!l.blocked(ip(66), t0 + Duration::from_secs(61)));
    }

    #[test]
    fn the_table_is_bounded() {
        let t0 = Instant::now();
        let mut l = FailureLimiter::new(1, Duration::from_secs(60), 4);
        for n in 0..100 {
            l.record(ip(n), t0);
        }
        assert_eq!(l.len(), 4);
        assert!(l.blocked(ip(99), t0));
        assert!(!l.blocked(ip(0), t0), "the oldest was forgotten");
    }
}
