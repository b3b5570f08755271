//! Per-source rate limits and global admission marks.

use super::{Shed, TokenBucket};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// What to do with a request from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within its rate: handle it.
    Admit,
    /// Over its rate: answer `503` with `Retry-After` (statelessly).
    Reject,
    /// Over its rate and over its budget of `503`s: drop it unread (an answer to every flood
    /// packet would make the focus an amplifier).
    Drop,
}

/// The per-source limits (`[overload]`).
#[derive(Debug, Clone)]
pub struct SourceLimits {
    /// Requests per second from one untrusted address (0: unlimited), and its burst.
    pub rate: f64,
    pub burst: f64,
    /// The same for each trusted core address (0: exempt).
    pub trusted_rate: f64,
    pub trusted_burst: f64,
    /// `503`s per second one limited source gets before its requests are dropped silently.
    pub reject_rate: f64,
    /// Untrusted addresses tracked at once; beyond, new addresses share one bucket.
    pub max_sources: usize,
}

struct Entry {
    requests: TokenBucket,
    answers: TokenBucket,
}

impl Entry {
    fn new(rate: f64, burst: f64, reject_rate: f64, now: Instant) -> Entry {
        Entry {
            requests: TokenBucket::new(rate, burst, now),
            answers: TokenBucket::new(reject_rate.max(0.001), reject_rate.max(1.0), now),
        }
    }

    fn verdict(&mut self, now: Instant) -> Verdict {
        if self.requests.take(now) {
            Verdict::Admit
        } else if self.answers.take(now) {
            Verdict::Reject
        } else {
            Verdict::Drop
        }
    }
}

const SHARDS: usize = 16;

/// A token bucket per source address. Trusted addresses have their own buckets (or none);
/// the others share a bounded, sharded table whose idle entries are forgotten.
pub struct SourceLimiter {
    limits: SourceLimits,
    trusted: HashMap<IpAddr, Mutex<Entry>>,
    shards: Vec<Mutex<HashMap<IpAddr, Entry>>>,
    /// Sources that found the table full share this bucket (a spoofed-address flood ends
    /// here, competing only with itself and newcomers, never with known sources).
    overflow: Mutex<Entry>,
}

impl SourceLimiter {
    pub fn new(limits: SourceLimits, trusted: &HashSet<IpAddr>, now: Instant) -> SourceLimiter {
        let trusted = trusted
            .iter()
            .map(|ip| {
                let e = Entry::new(
                    limits.trusted_rate,
                    limits.trusted_burst,
                    limits.reject_rate,
                    now,
                );
                (*ip, Mutex::new(e))
            })
            .collect();
        let overflow = Mutex::new(Entry::new(
            limits.rate,
            limits.burst,
            limits.reject_rate,
            now,
        ));
        SourceLimiter {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            limits,
            trusted,
            overflow,
        }
    }

    /// The verdict on one request from `ip` at `now`.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Verdict {
        if let Some(e) = self.trusted.get(&ip) {
            return match e.lock() {
                Ok(mut e) => e.verdict(now),
                Err(_) => Verdict::Admit,
            };
        }
        if self.limits.rate <= 0.0 {
            return Verdict::Admit;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        ip.hash(&mut h);
        let shard = &self.shards[(h.finish() as usize) % SHARDS];
        let Ok(mut map) = shard.lock() else {
            return Verdict::Admit;
        };
        if let Some(e) = map.get_mut(&ip) {
            return e.verdict(now);
        }
        let cap = (self.limits.max_sources / SHARDS).max(1);
        if map.len() >= cap {
            // Forget sources whose buckets refilled: they hold no state worth keeping.
            map.retain(|_, e| !(e.requests.is_full(now) && e.answers.is_full(now)));
        }
        if map.len() >= cap {
            drop(map);
            return match self.overflow.lock() {
                Ok(mut e) => e.verdict(now),
                Err(_) => Verdict::Admit,
            };
        }
        let mut e = Entry::new(
            self.limits.rate,
            self.limits.burst,
            self.limits.reject_rate,
            now,
        );
        let v = e.verdict(now);
        map.insert(ip, e);
        v
    }

    /// Untrusted sources tracked now.
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }
}

/// High-water marks of the global admission control.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionSettings {
    /// Transactions alive beyond which new work from untrusted sources is refused.
    pub transactions_high: usize,
    /// Percent of a transaction shard's queue beyond which the same holds.
    pub queue_high_pct: u8,
    /// Requests waiting in one session's mailbox beyond which the same holds.
    pub mailbox_high: usize,
    /// Retry-After of these 503s, seconds.
    pub retry_after_s: u32,
}

/// Global admission: who is trusted, and where the marks are.
pub struct Admission {
    trusted: HashSet<IpAddr>,
    pub settings: AdmissionSettings,
}

impl Admission {
    pub fn new(trusted: HashSet<IpAddr>, settings: AdmissionSettings) -> Admission {
        Admission { trusted, settings }
    }

    /// True for an address of the trusted SIP core.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.contains(&ip)
    }

    /// The trusted addresses.
    pub fn trusted(&self) -> &HashSet<IpAddr> {
        &self.trusted
    }

    /// Why new work from `source` must be refused now, if it must: transactions or the shard
    /// queue past their marks.
    pub fn refuse_new(
        &self,
        source: IpAddr,
        transactions: usize,
        queued: usize,
        queue_capacity: usize,
    ) -> Option<Shed> {
        if self.is_trusted(source) {
            return None;
        }
        if transactions >= self.settings.transactions_high {
            return Some(Shed::TransactionsHigh);
        }
        if queue_capacity > 0
            && queued * 100 >= queue_capacity * usize::from(self.settings.queue_high_pct)
        {
            return Some(Shed::QueueHigh);
        }
        None
    }

    /// True when a session with `waiting` requests in its mailbox must refuse new work from
    /// `source` (its in-dialog requests still get the rest of the mailbox).
    pub fn mailbox_busy(&self, source: IpAddr, waiting: usize) -> bool {
        !self.is_trusted(source) && waiting > self.settings.mailbox_high
    }
}
