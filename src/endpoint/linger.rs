//! Completed server transactions that only absorb retransmissions until Timer J, I or L
//! (RFC 3261 §17.2, RFC 6026). They are the bulk of all transactions (at 3,000 calls/s about
//! 200,000 linger for 32 s), so they leave the main table for this compact store: per entry
//! only the key, the response to repeat (if any) and where it goes; no timer of their own.
//!
//! Entries sit in one-second buckets ordered by expiry: a bucket expires as a whole, and no
//! table ever grows large enough for a rehash to stall the shard.

use super::key::TsxKey;
use crate::transport::Target;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

/// Width of one bucket.
const GRANULARITY: Duration = Duration::from_secs(1);

/// What a lingering transaction does with a retransmitted request.
#[derive(Debug, Clone)]
pub struct Lingering {
    key: TsxKey,
    /// The final response to repeat (non-INVITE Completed); `None` absorbs silently.
    pub response: Option<Bytes>,
    pub target: Target,
    /// Its entry in the merged-request index (RFC 3261 §8.2.2.2), dropped with it.
    pub merge_key: Option<Box<str>>,
}

struct Bucket {
    /// Every entry expires by this instant.
    until: Instant,
    entries: HashMap<u64, Lingering, IdentityHash>,
}

/// The lingering transactions of one shard.
pub struct Linger {
    buckets: VecDeque<Bucket>,
    hasher: std::collections::hash_map::RandomState,
    len: usize,
}

impl Default for Linger {
    fn default() -> Self {
        Linger {
            buckets: VecDeque::new(),
            hasher: std::collections::hash_map::RandomState::new(),
            len: 0,
        }
    }
}

impl Linger {
    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Keeps `key` until `until`.
    pub fn insert(
        &mut self,
        key: TsxKey,
        response: Option<Bytes>,
        target: Target,
        merge_key: Option<Box<str>>,
        until: Instant,
    ) {
        let hash = self.hasher.hash_one(&key);
        let entry = Lingering {
            key,
            response,
            target,
            merge_key,
        };
        // The first bucket that expires at or after `until`, if it is not more than one
        // granularity late; else a new bucket there (almost always at the back).
        let i = self.buckets.partition_point(|b| b.until < until);
        let idx = match self.buckets.get(i) {
            Some(b) if b.until - until < GRANULARITY => i,
            _ => {
                self.buckets.insert(
                    i,
                    Bucket {
                        until: until + GRANULARITY,
                        entries: HashMap::with_hasher(IdentityHash),
                    },
                );
                i
            }
        };
        if self.buckets[idx].entries.insert(hash, entry).is_none() {
            self.len += 1;
        }
    }

    /// The lingering transaction with this key.
    pub fn get(&self, key: &TsxKey) -> Option<&Lingering> {
        if self.len == 0 {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        self.buckets
            .iter()
            .filter_map(|b| b.entries.get(&hash))
            .find(|e| e.key == *key)
    }

    /// Drops every bucket that expired by `now`, handing each expired entry's merge key to
    /// `forget`; returns how many entries went.
    pub fn expire(&mut self, now: Instant, mut forget: impl FnMut(Box<str>)) -> usize {
        let mut gone = 0;
        while self.buckets.front().is_some_and(|b| b.until <= now) {
            if let Some(b) = self.buckets.pop_front() {
                gone += b.entries.len();
                for (_, e) in b.entries {
                    if let Some(mk) = e.merge_key {
                        forget(mk);
                    }
                }
            }
        }
        self.len -= gone;
        gone
    }

    /// When the next bucket expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.buckets.front().map(|b| b.until)
    }
}

/// The keys are already hashes.
#[derive(Clone, Copy, Default)]
struct IdentityHash;

impl BuildHasher for IdentityHash {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

#[derive(Default)]
struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Protocol;

    fn target() -> Target {
        Target {
            protocol: Protocol::Udp,
            addr: "127.0.0.1:5060".parse().unwrap(),
            conn: None,
        }
    }

    #[test]
    fn entries_expire_by_bucket() {
        let mut l = Linger::default();
        let t0 = Instant::now();
        for i in 0..100u32 {
            let key: TsxKey = format!("k{i}").into();
            l.insert(
                key,
                Some(Bytes::from_static(b"x")),
                target(),
                None,
                t0 + Duration::from_millis(u64::from(i) * 100),
            );
        }
        // A shorter timer (Timer I) lands before the longer ones.
        l.insert(
            "early".into(),
            None,
            target(),
            None,
            t0 + Duration::from_millis(50),
        );
        assert_eq!(l.len(), 101);
        assert!(l.get(&"k5".into()).is_some_and(|e| e.response.is_some()));
        assert!(l.get(&"early".into()).is_some_and(|e| e.response.is_none()));
        assert!(l.get(&"missing".into()).is_none());
        // Nothing expires before its time; everything after it.
        l.expire(t0 + Duration::from_millis(40), |_| {});
        assert!(l.get(&"early".into()).is_some());
        l.expire(t0 + Duration::from_secs(12), |_| {});
        assert_eq!(l.len(), 0);
        assert!(l.get(&"k99".into()).is_none());
    }

    #[test]
    fn bucket_order_is_kept() {
        let mut l = Linger::default();
        let t0 = Instant::now();
        l.insert(
            "late".into(),
            None,
            target(),
            None,
            t0 + Duration::from_secs(32),
        );
        l.insert(
            "soon".into(),
            None,
            target(),
            None,
            t0 + Duration::from_secs(5),
        );
        l.expire(t0 + Duration::from_secs(7), |_| {});
        assert!(l.get(&"soon".into()).is_none());
        assert!(l.get(&"late".into()).is_some());
    }
}
