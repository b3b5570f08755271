//! Fair shares (issue 14): capacity that members and the trusted core need cannot be taken
//! by others. One session's subscription slots keep room for members, one address holds a
//! bounded number of seats and RTP legs, one sender a bounded message rate. Pure bookkeeping:
//! the session decides with it and answers the refusal.

use super::TokenBucket;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a fair-share limit refused a request (the `reason` label of
/// `focus_fair_share_refusals_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareRefusal {
    /// A non-member's SUBSCRIBE beyond the outsiders' share of a session's subscriptions.
    OutsiderSubscriptions,
    /// A join beyond `policy.max_participants_per_source` from one address.
    ParticipantsPerSource,
    /// A join whose RTP leg would pass `rtp.max_legs_per_source` for its address.
    RtpLegsPerSource,
    /// A group message beyond its sender's `policy.pager_rate_per_sender`.
    SenderRate,
}

impl ShareRefusal {
    /// Every reason, for dashboards that want a zero before the first refusal.
    pub const ALL: [ShareRefusal; 4] = [
        ShareRefusal::OutsiderSubscriptions,
        ShareRefusal::ParticipantsPerSource,
        ShareRefusal::RtpLegsPerSource,
        ShareRefusal::SenderRate,
    ];

    /// The bounded metric label.
    pub fn label(self) -> &'static str {
        match self {
            ShareRefusal::OutsiderSubscriptions => "outsider_subscriptions",
            ShareRefusal::ParticipantsPerSource => "participants_per_source",
            ShareRefusal::RtpLegsPerSource => "rtp_legs_per_source",
            ShareRefusal::SenderRate => "sender_rate",
        }
    }

    /// The Warning text of the refusal.
    pub fn warning(self) -> &'static str {
        match self {
            ShareRefusal::OutsiderSubscriptions => {
                "Subscriptions for non-members of this conference are all taken"
            }
            ShareRefusal::ParticipantsPerSource => {
                "Too many participants from your address in this conference"
            }
            ShareRefusal::RtpLegsPerSource => "Too many audio legs from your address",
            ShareRefusal::SenderRate => "You are sending group messages too fast",
        }
    }

    /// Counts one refusal.
    pub fn count(self) {
        metrics::counter!("focus_fair_share_refusals_total", "reason" => self.label()).increment(1);
    }

    /// Exports every reason at zero (a rate over a series that does not exist yet is empty).
    pub fn init_metrics() {
        for r in ShareRefusal::ALL {
            metrics::counter!("focus_fair_share_refusals_total", "reason" => r.label())
                .increment(0);
        }
    }
}

/// A count per source address, shared by every session (RTP legs): at most `max` held at
/// once by one address; exempt (trusted) addresses are not counted. It outlives
/// configuration reloads, which only change `max`.
#[derive(Debug)]
pub struct SourceQuota {
    max: AtomicUsize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

/// One unit of a [`SourceQuota`]; given back on drop.
#[derive(Debug)]
pub struct QuotaPermit {
    quota: Arc<SourceQuota>,
    /// `None` for an exempt (trusted) address.
    ip: Option<IpAddr>,
}

impl Drop for QuotaPermit {
    fn drop(&mut self) {
        let Some(ip) = self.ip else { return };
        if let Ok(mut m) = self.quota.held.lock() {
            if let Some(n) = m.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&ip);
                }
            }
        }
    }
}

impl SourceQuota {
    pub fn new(max: usize) -> SourceQuota {
        SourceQuota {
            max: AtomicUsize::new(max),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// A new limit (configuration reload); units held beyond it stay until given back.
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// A unit for `ip`, or `None` when it holds `max` already; an `exempt` address always
    /// gets one and is not counted.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr, exempt: bool) -> Option<QuotaPermit> {
        if exempt {
            return Some(QuotaPermit {
                quota: self.clone(),
                ip: None,
            });
        }
        let mut m = self.held.lock().ok()?;
        let n = m.entry(ip).or_insert(0);
        if *n >= self.max.load(Ordering::Relaxed) {
            return None;
        }
        *n += 1;
        Some(QuotaPermit {
            quota: self.clone(),
            ip: Some(ip),
        })
    }

    /// Units `ip` holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        self.held
            .lock()
            .map_or(0, |m| m.get(&ip).copied().unwrap_or(0))
    }
}

/// The fair-share limits one session enforces.
#[derive(Debug, Clone)]
pub struct ShareSettings {
    /// Subscriptions non-members may hold in one session (the rest stays for members).
    pub outsider_subscriptions: usize,
    /// Participants one untrusted address may have in one session.
    pub participants_per_source: usize,
    /// Group messages per second one sender may send (0: unlimited), and its burst.
    pub sender_rate: f64,
    pub sender_burst: f64,
    /// The trusted core: exempt from the per-address limits (it fronts many users).
    pub trusted: Arc<HashSet<IpAddr>>,
    /// RTP legs per untrusted address, over all sessions.
    pub rtp_legs: Arc<SourceQuota>,
}

impl ShareSettings {
    /// Limits from the configuration, over the focus-wide RTP leg quota `rtp_legs`.
    pub fn from_config(config: &crate::config::Config, rtp_legs: Arc<SourceQuota>) -> Self {
        let max = config.subscriptions.max_per_session;
        let pct = usize::from(config.subscriptions.outsider_share_pct);
        ShareSettings {
            outsider_subscriptions: (max * pct / 100).max(1),
            participants_per_source: config.policy.max_participants_per_source as usize,
            sender_rate: f64::from(config.policy.pager_rate_per_sender),
            sender_burst: f64::from(config.policy.pager_burst_per_sender),
            trusted: Arc::new(config.overload.trusted(&config.policy)),
            rtp_legs,
        }
    }

    /// Whether `ip` is exempt from the per-address limits.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.contains(&ip)
    }
}

impl Default for ShareSettings {
    /// No limit to speak of (unit tests and benches that do not exercise fair shares).
    fn default() -> Self {
        ShareSettings {
            outsider_subscriptions: usize::MAX,
            participants_per_source: usize::MAX,
            sender_rate: 0.0,
            sender_burst: 1.0,
            trusted: Arc::default(),
            rtp_legs: Arc::new(SourceQuota::new(usize::MAX)),
        }
    }
}

/// A token bucket per group-message sender of one session. Buckets that refilled are
/// forgotten; until the last one has, the session stays (an ended session would forget a
/// flooder's debt).
#[derive(Debug, Default)]
pub struct SenderBuckets {
    buckets: HashMap<String, TokenBucket>,
    /// When every bucket is full again.
    rested_at: Option<Instant>,
}

impl SenderBuckets {
    /// Takes one message of `sender` at `now`: `Ok`, or `Err(seconds)` until it may send
    /// again (the Retry-After).
    pub fn take(&mut self, sender: &str, rate: f64, burst: f64, now: Instant) -> Result<(), u32> {
        if rate <= 0.0 {
            return Ok(());
        }
        let b = self
            .buckets
            .entry(sender.to_string())
            .or_insert_with(|| TokenBucket::new(rate, burst, now));
        let taken = b.take(now);
        // Full again at most burst/rate from now.
        let full = now + Duration::from_secs_f64(burst.max(1.0) / rate);
        self.rested_at = Some(self.rested_at.map_or(full, |r| r.max(full)));
        if taken {
            Ok(())
        } else {
            // One token comes back every 1/rate seconds.
            Err((1.0 / rate).ceil().max(1.0) as u32)
        }
    }

    /// When the buckets may be forgotten (the session's timer).
    pub fn rested_at(&self) -> Option<Instant> {
        self.rested_at
    }

    /// Forgets the buckets once all are full (at or after [`SenderBuckets::rested_at`]).
    pub fn expire(&mut self, now: Instant) {
        if self.rested_at.is_some_and(|r| r <= now) {
            self.buckets.clear();
            self.rested_at = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_bounds_untrusted_addresses_and_gives_back_on_drop() {
        let trusted: IpAddr = "127.0.0.1".parse().unwrap();
        let outsider: IpAddr = "127.0.0.66".parse().unwrap();
        let q = Arc::new(SourceQuota::new(2));
        let a = q.acquire(outsider, false).unwrap();
        let _b = q.acquire(outsider, false).unwrap();
        assert!(q.acquire(outsider, false).is_none());
        // The trusted core is not counted.
        let core: Vec<_> = (0..10).map(|_| q.acquire(trusted, true).unwrap()).collect();
        assert_eq!(q.held(trusted), 0);
        drop(a);
        assert_eq!(q.held(outsider), 1);
        assert!(q.acquire(outsider, false).is_some());
        drop(core);
    }

    #[test]
    fn a_sender_over_its_rate_waits_and_others_do_not() {
        let t0 = Instant::now();
        let mut b = SenderBuckets::default();
        for _ in 0..3 {
            assert!(b.take("sip:a@x", 1.0, 3.0, t0).is_ok());
        }
        assert_eq!(b.take("sip:a@x", 1.0, 3.0, t0), Err(1));
        assert!(b.take("sip:b@x", 1.0, 3.0, t0).is_ok());
        assert!(b
            .take("sip:a@x", 1.0, 3.0, t0 + Duration::from_secs(1))
            .is_ok());
        let rested = b.rested_at().unwrap();
        b.expire(rested - Duration::from_millis(1));
        assert!(b.rested_at().is_some());
        b.expire(rested);
        assert!(b.rested_at().is_none());
    }
}
