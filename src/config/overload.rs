//! `[overload]`.

use super::ConfigIssue;
use super::ProviderPolicy;
use serde::Deserialize;
use std::time::Duration;

/// `[overload]`: per-source request rates and the high-water marks of admission control.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OverloadConfig {
    /// SIP requests per second from one untrusted address (0: unlimited), and the burst.
    pub source_rate: u32,
    pub source_burst: u32,
    /// Addresses of the SIP core (besides `policy.trusted_hosts`), exempt from the untrusted
    /// limits and from the admission marks.
    pub trusted_sources: Vec<String>,
    /// Requests per second from each trusted address (0: exempt), and the burst.
    pub trusted_rate: u32,
    pub trusted_burst: u32,
    /// 503s per second a source over its rate gets; its other requests are dropped.
    pub reject_rate: u32,
    /// Untrusted addresses whose rates are tracked at once.
    pub max_sources: usize,
    /// New work from untrusted sources is refused (503) beyond this percentage of
    /// `sip.max_transactions`, of a shard queue (`sip.queue_depth`), of a session mailbox
    /// (`supervisor.mailbox_capacity`).
    pub transactions_high_pct: u8,
    pub queue_high_pct: u8,
    pub mailbox_high_pct: u8,
    /// New work (an out-of-dialog request) that waited longer than this in the focus's
    /// queues (a transaction shard's queue, a session's mailbox) is answered 503 instead of
    /// served, from any source, the trusted core included: its client has retransmitted or
    /// given up by then, and serving stale work is how an overloaded server collapses.
    /// Milliseconds; 0 turns it off.
    pub max_queue_delay_ms: u64,
}

impl Default for OverloadConfig {
    fn default() -> Self {
        OverloadConfig {
            source_rate: 100,
            source_burst: 200,
            trusted_sources: vec!["127.0.0.1".into(), "::1".into()],
            trusted_rate: 0,
            trusted_burst: 0,
            reject_rate: 5,
            max_sources: 65_536,
            transactions_high_pct: 80,
            queue_high_pct: 50,
            mailbox_high_pct: 50,
            max_queue_delay_ms: 2000,
        }
    }
}

impl OverloadConfig {
    /// The trusted core: `policy.trusted_hosts` and `overload.trusted_sources` (valid ones).
    pub fn trusted(&self, policy: &ProviderPolicy) -> std::collections::HashSet<std::net::IpAddr> {
        policy
            .trusted_hosts
            .iter()
            .chain(&self.trusted_sources)
            .filter_map(|h| h.parse().ok())
            .collect()
    }

    pub(super) fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        let mut bad = |key: String, message: &str| {
            issues.push(ConfigIssue {
                key,
                message: message.into(),
            })
        };
        if self.source_rate > 0 && self.source_burst == 0 {
            bad(
                "overload.source_burst".into(),
                "must be positive when source_rate is",
            );
        }
        if self.trusted_rate > 0 && self.trusted_burst == 0 {
            bad(
                "overload.trusted_burst".into(),
                "must be positive when trusted_rate is",
            );
        }
        for (i, h) in self.trusted_sources.iter().enumerate() {
            if h.parse::<std::net::IpAddr>().is_err() {
                bad(
                    format!("overload.trusted_sources[{i}]"),
                    "must be an IP address",
                );
            }
        }
        if self.reject_rate == 0 {
            bad("overload.reject_rate".into(), "must be positive");
        }
        if self.max_sources < 16 {
            bad("overload.max_sources".into(), "must be at least 16");
        }
        for (key, v) in [
            ("transactions_high_pct", self.transactions_high_pct),
            ("queue_high_pct", self.queue_high_pct),
            ("mailbox_high_pct", self.mailbox_high_pct),
        ] {
            if !(1..=100).contains(&v) {
                bad(format!("overload.{key}"), "must be between 1 and 100");
            }
        }
        if self.max_queue_delay_ms != 0 && self.max_queue_delay_ms < 100 {
            bad(
                "overload.max_queue_delay_ms".into(),
                "must be 0 (off) or at least 100",
            );
        }
    }

    /// [`OverloadConfig::max_queue_delay_ms`] as a duration (`None`: off).
    pub fn max_queue_delay(&self) -> Option<Duration> {
        (self.max_queue_delay_ms > 0).then(|| Duration::from_millis(self.max_queue_delay_ms))
    }
}
