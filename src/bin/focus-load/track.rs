//! Delivery bookkeeping for fan-out scenarios: every message carries a marker with its index;
//! receivers record each delivery once, so losses and duplicates can be counted exactly.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The marker written into each message body: `#LM` and 16 hex digits of the message index.
pub fn marker(idx: u64) -> String {
    format!("#LM{idx:016x}")
}

/// The message index in a body, if it carries a marker.
pub fn find_marker(body: &[u8]) -> Option<u64> {
    let at = body.windows(3).position(|w| w == b"#LM")?;
    let hex = body.get(at + 3..at + 19)?;
    u64::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
}

/// A body of at least `size` bytes with the marker of message `idx` first.
pub fn body(idx: u64, size: usize) -> Vec<u8> {
    let mut b = marker(idx).into_bytes();
    b.push(b' ');
    while b.len() < size {
        b.push(b'x');
    }
    b
}

struct Slot {
    /// Nanoseconds after `t0` the message was sent, plus one (0: not sent).
    sent: AtomicU64,
    expected: AtomicU32,
    got: AtomicU32,
    /// Nanoseconds after `t0` of the latest delivery.
    last: AtomicU64,
}

/// Deliveries of up to `capacity` messages to up to `receivers` receivers.
pub struct Tracker {
    t0: Instant,
    slots: Vec<Slot>,
    /// One bit per (receiver, message): seen already.
    seen: Vec<Mutex<Vec<u64>>>,
    pub duplicates: AtomicU64,
    /// Deliveries naming a message never sent (or no marker at all).
    pub unknown: AtomicU64,
    pub deliveries: AtomicU64,
}

/// What the tracker found once sending stopped.
#[derive(Debug, Default)]
pub struct Outcome {
    pub sent: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub unknown: u64,
    /// Send to last delivery, microseconds, for messages delivered to everyone.
    pub last_delivery_us: Vec<u32>,
}

impl Tracker {
    pub fn new(capacity: usize, receivers: usize) -> Tracker {
        Tracker {
            t0: Instant::now(),
            slots: (0..capacity)
                .map(|_| Slot {
                    sent: AtomicU64::new(0),
                    expected: AtomicU32::new(0),
                    got: AtomicU32::new(0),
                    last: AtomicU64::new(0),
                })
                .collect(),
            seen: (0..receivers).map(|_| Mutex::new(Vec::new())).collect(),
            duplicates: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            deliveries: AtomicU64::new(0),
        }
    }

    fn ns(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.t0).as_nanos() as u64 + 1
    }

    /// Message `idx` is about to be sent and should reach `expected` receivers.
    pub fn sending(&self, idx: u64, expected: u32) {
        if let Some(s) = self.slots.get(idx as usize) {
            s.expected.store(expected, Ordering::Relaxed);
            s.sent.store(self.ns(Instant::now()), Ordering::Release);
        }
    }

    /// Receiver `receiver` got a message whose body is `body` at `at`.
    pub fn delivered(&self, receiver: usize, body: &[u8], at: Instant) {
        let Some(idx) = find_marker(body) else {
            self.unknown.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (Some(slot), Some(seen)) = (self.slots.get(idx as usize), self.seen.get(receiver))
        else {
            self.unknown.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if slot.sent.load(Ordering::Acquire) == 0 {
            self.unknown.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let fresh = match seen.lock() {
            Ok(mut bits) => {
                let (word, bit) = ((idx / 64) as usize, idx % 64);
                if bits.len() <= word {
                    bits.resize(word + 1, 0);
                }
                let fresh = bits[word] & (1 << bit) == 0;
                bits[word] |= 1 << bit;
                fresh
            }
            Err(_) => true,
        };
        if !fresh {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.deliveries.fetch_add(1, Ordering::Relaxed);
        slot.got.fetch_add(1, Ordering::Relaxed);
        slot.last.fetch_max(self.ns(at), Ordering::Relaxed);
    }

    /// True when every message sent so far reached all its receivers.
    pub fn complete(&self, sent: u64) -> bool {
        self.slots.iter().take(sent as usize).all(|s| {
            s.sent.load(Ordering::Acquire) == 0
                || s.got.load(Ordering::Relaxed) >= s.expected.load(Ordering::Relaxed)
        })
    }

    pub fn outcome(&self, sent: u64) -> Outcome {
        let mut o = Outcome {
            duplicates: self.duplicates.load(Ordering::Relaxed),
            unknown: self.unknown.load(Ordering::Relaxed),
            ..Outcome::default()
        };
        for s in self.slots.iter().take(sent as usize) {
            let at = s.sent.load(Ordering::Acquire);
            if at == 0 {
                continue;
            }
            o.sent += 1;
            let expected = u64::from(s.expected.load(Ordering::Relaxed));
            let got = u64::from(s.got.load(Ordering::Relaxed));
            o.expected += expected;
            o.delivered += got;
            o.lost += expected.saturating_sub(got);
            if got >= expected && expected > 0 {
                let last = s.last.load(Ordering::Relaxed);
                o.last_delivery_us
                    .push((last.saturating_sub(at) / 1000).min(u64::from(u32::MAX)) as u32);
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_duplicates_count() {
        let b = body(42, 64);
        assert_eq!(b.len(), 64);
        assert_eq!(find_marker(&b), Some(42));
        let t = Tracker::new(100, 2);
        t.sending(42, 2);
        t.delivered(0, &b, Instant::now());
        t.delivered(0, &b, Instant::now());
        assert!(!t.complete(100));
        t.delivered(1, &b, Instant::now());
        assert!(t.complete(100));
        let o = t.outcome(100);
        assert_eq!((o.sent, o.delivered, o.lost, o.duplicates), (1, 2, 0, 1));
    }
}
