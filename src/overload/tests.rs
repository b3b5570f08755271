use super::*;
use crate::sip::Refuse;
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn limits(rate: f64, burst: f64) -> SourceLimits {
    SourceLimits {
        rate,
        burst,
        trusted_rate: 0.0,
        trusted_burst: 0.0,
        reject_rate: 2.0,
        max_sources: 64,
    }
}

#[test]
fn a_bucket_admits_its_burst_then_its_rate() {
    let t0 = Instant::now();
    let mut b = TokenBucket::new(10.0, 5.0, t0);
    assert!((0..5).all(|_| b.take(t0)));
    assert!(!b.take(t0));
    assert!(
        b.take(t0 + Duration::from_millis(100)),
        "one token per 100 ms"
    );
    assert!(!b.take(t0 + Duration::from_millis(100)));
    assert!(b.is_full(t0 + Duration::from_secs(1)));
    // A clock that steps back takes nothing and gives nothing.
    assert!(!b.take(t0));
}

#[test]
fn charging_a_bucket_returns_the_wait_that_keeps_the_rate() {
    let t0 = Instant::now();
    let mut b = TokenBucket::new(100.0, 100.0, t0);
    assert_eq!(b.charge(100.0, t0), Duration::ZERO);
    let wait = b.charge(50.0, t0);
    assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
    // Debt is bounded by one burst.
    let wait = b.charge(1e9, t0);
    assert!((wait.as_secs_f64() - 1.0).abs() < 1e-6, "{wait:?}");
    assert_eq!(
        TokenBucket::new(0.0, 0.0, t0).charge(1e9, t0),
        Duration::ZERO
    );
}

#[test]
fn a_flooding_source_is_rejected_then_dropped_while_others_pass() {
    let t0 = Instant::now();
    let l = SourceLimiter::new(limits(10.0, 3.0), &HashSet::new(), t0);
    let flood = ip("192.0.2.1");
    let verdicts: Vec<Verdict> = (0..10).map(|_| l.check(flood, t0)).collect();
    assert_eq!(&verdicts[..3], &[Verdict::Admit; 3]);
    assert_eq!(&verdicts[3..5], &[Verdict::Reject; 2], "reject_rate = 2");
    assert!(verdicts[5..].iter().all(|v| *v == Verdict::Drop));
    assert_eq!(l.check(ip("192.0.2.2"), t0), Verdict::Admit);
    // A second later the flooder has its rate again.
    assert_eq!(l.check(flood, t0 + Duration::from_secs(1)), Verdict::Admit);
}

#[test]
fn trusted_sources_are_exempt_or_limited_apart() {
    let t0 = Instant::now();
    let core = ip("10.0.0.5");
    let trusted: HashSet<IpAddr> = [core].into();
    let l = SourceLimiter::new(limits(1.0, 1.0), &trusted, t0);
    assert!((0..1000).all(|_| l.check(core, t0) == Verdict::Admit));
    let mut separate = limits(1.0, 1.0);
    separate.trusted_rate = 100.0;
    separate.trusted_burst = 100.0;
    let l = SourceLimiter::new(separate, &trusted, t0);
    assert_eq!(
        (0..150)
            .filter(|_| l.check(core, t0) == Verdict::Admit)
            .count(),
        100
    );
    assert_eq!(l.tracked(), 0, "trusted sources are not in the table");
}

#[test]
fn the_table_is_bounded_and_forgets_idle_sources() {
    let t0 = Instant::now();
    let l = SourceLimiter::new(limits(1.0, 1.0), &HashSet::new(), t0);
    // 64 slots in 16 shards: far more sources end in the shared overflow bucket.
    for i in 0..1000u32 {
        let _ = l.check(IpAddr::from(i.to_be_bytes()), t0);
    }
    assert!(l.tracked() <= 64, "{}", l.tracked());
    // Once their buckets refilled, the same number of new sources gets fresh entries.
    let later = t0 + Duration::from_secs(10);
    let fresh = (5000..5016u32)
        .filter(|i| l.check(IpAddr::from(i.to_be_bytes()), later) == Verdict::Admit)
        .count();
    assert_eq!(fresh, 16);
}

#[test]
fn admission_refuses_new_work_from_untrusted_sources_past_the_marks() {
    let core = ip("10.0.0.5");
    let a = Admission::new(
        [core].into(),
        AdmissionSettings {
            transactions_high: 100,
            queue_high_pct: 50,
            mailbox_high: 10,
            retry_after_s: 5,
        },
    );
    let other = ip("192.0.2.7");
    assert_eq!(a.refuse_new(other, 99, 49, 100), None);
    assert_eq!(
        a.refuse_new(other, 100, 0, 100).map(|s| s.label()),
        Some("transactions_high")
    );
    assert_eq!(
        a.refuse_new(other, 0, 50, 100).map(|s| s.label()),
        Some("queue_high")
    );
    assert_eq!(a.refuse_new(core, 1000, 100, 100), None);
    assert!(!a.mailbox_busy(other, 10));
    assert!(a.mailbox_busy(other, 11));
    assert!(!a.mailbox_busy(core, 1000));
}
