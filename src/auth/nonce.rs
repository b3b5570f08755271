//! Nonces: 128 random bits each, kept with the instant they were issued and the nonce counts
//! already used with them. Only a nonce in the store, younger than its time to live, is
//! fresh; a nonce count is accepted once (RFC 7616 §5.4's replay defence). The store is
//! bounded: the oldest nonces go first, and a client holding one simply gets `stale=true`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Nonce counts remembered below the highest one seen: requests sent in parallel under one
/// nonce may arrive out of order.
const NC_WINDOW: u32 = 64;

/// What a nonce and nonce count are worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Issued here, not expired, and this nonce count is new: now used.
    Fresh,
    /// Expired, evicted, or never issued here: the client should retry with a new one.
    Stale,
    /// This nonce count was already used with this nonce (or is too far below the highest).
    Replay,
}

#[derive(Debug)]
struct Entry {
    issued: Instant,
    /// Highest nonce count accepted.
    max_nc: u32,
    /// Bit `d` set: `max_nc - d` was accepted.
    seen: u64,
}

/// Issued nonces, bounded in number and age.
#[derive(Debug)]
pub struct NonceStore {
    entries: HashMap<Box<str>, Entry>,
    /// Issue order, for expiry and eviction.
    order: VecDeque<Box<str>>,
    ttl: Duration,
    max: usize,
}

impl NonceStore {
    /// A store whose nonces live `ttl`, holding at most `max` (at least one).
    pub fn new(ttl: Duration, max: usize) -> NonceStore {
        NonceStore {
            entries: HashMap::new(),
            order: VecDeque::new(),
            ttl,
            max: max.max(1),
        }
    }

    /// Nonces held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no nonce is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A new nonce from 16 random bytes (the caller's CSPRNG), as 32 hex digits.
    pub fn issue(&mut self, now: Instant, random: [u8; 16]) -> String {
        self.prune(now);
        while self.entries.len() >= self.max {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&old);
        }
        let nonce: String = random.iter().map(|b| format!("{b:02x}")).collect();
        self.entries.insert(
            nonce.as_str().into(),
            Entry {
                issued: now,
                max_nc: 0,
                seen: 0,
            },
        );
        self.order.push_back(nonce.as_str().into());
        nonce
    }

    /// Uses `nc` with `nonce` (call only once the response proved the password: a guess
    /// must not burn a client's nonce counts).
    pub fn consume(&mut self, nonce: &str, nc: u32, now: Instant) -> NonceCheck {
        let Some(e) = self.entries.get_mut(nonce) else {
            return NonceCheck::Stale;
        };
        if now.saturating_duration_since(e.issued) >= self.ttl {
            return NonceCheck::Stale;
        }
        if nc > e.max_nc {
            let shift = nc - e.max_nc;
            e.seen = if shift >= NC_WINDOW {
                0
            } else {
                e.seen << shift
            } | 1;
            e.max_nc = nc;
            return NonceCheck::Fresh;
        }
        let d = e.max_nc - nc;
        if d >= NC_WINDOW || e.seen & (1 << d) != 0 {
            return NonceCheck::Replay;
        }
        e.seen |= 1 << d;
        NonceCheck::Fresh
    }

    /// Drops expired nonces from the front of the issue order.
    fn prune(&mut self, now: Instant) {
        while let Some(front) = self.order.front() {
            let expired = self
                .entries
                .get(front)
                .is_none_or(|e| now.saturating_duration_since(e.issued) >= self.ttl);
            if !expired {
                break;
            }
            if let Some(old) = self.order.pop_front() {
                self.entries.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (NonceStore, Instant) {
        (NonceStore::new(Duration::from_secs(30), 3), Instant::now())
    }

    #[test]
    fn a_nonce_is_hex_and_each_count_is_used_once() {
        let (mut s, t0) = store();
        let n = s.issue(t0, [0xab; 16]);
        assert_eq!(n, "ab".repeat(16));
        assert_eq!(s.consume(&n, 1, t0), NonceCheck::Fresh);
        assert_eq!(s.consume(&n, 1, t0), NonceCheck::Replay);
        assert_eq!(s.consume(&n, 2, t0), NonceCheck::Fresh);
        assert_eq!(s.consume(&n, 2, t0), NonceCheck::Replay);
    }

    #[test]
    fn counts_may_arrive_out_of_order_within_the_window() {
        let (mut s, t0) = store();
        let n = s.issue(t0, [1; 16]);
        assert_eq!(s.consume(&n, 5, t0), NonceCheck::Fresh);
        assert_eq!(s.consume(&n, 3, t0), NonceCheck::Fresh);
        assert_eq!(s.consume(&n, 3, t0), NonceCheck::Replay);
        assert_eq!(s.consume(&n, 4, t0), NonceCheck::Fresh);
        assert_eq!(s.consume(&n, 5, t0), NonceCheck::Replay);
        assert_eq!(s.consume(&n, 100, t0), NonceCheck::Fresh);
        // 100 - 36 = 64: out of the window, so no longer provably unused.
        assert_eq!(s.consume(&n, 36, t0), NonceCheck::Replay);
        assert_eq!(s.consume(&n, 37, t0), NonceCheck::Fresh);
    }

    #[test]
    fn an_expired_or_unknown_nonce_is_stale() {
        let (mut s, t0) = store();
        let n = s.issue(t0, [2; 16]);
        assert_eq!(
            s.consume(&n, 1, t0 + Duration::from_secs(30)),
            NonceCheck::Stale
        );
        assert_eq!(s.consume("00", 1, t0), NonceCheck::Stale);
        // Issuing after expiry prunes it.
        s.issue(t0 + Duration::from_secs(31), [3; 16]);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn the_store_is_bounded_and_evicts_the_oldest() {
        let (mut s, t0) = store();
        let first = s.issue(t0, [1; 16]);
        for i in 2..=10u8 {
            s.issue(t0, [i; 16]);
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.consume(&first, 1, t0), NonceCheck::Stale);
        let last = "0a".repeat(16);
        assert_eq!(s.consume(&last, 1, t0), NonceCheck::Fresh);
    }
}
