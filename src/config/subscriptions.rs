//! `[subscriptions]`.

use serde::Deserialize;

/// `[subscriptions]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionConfig {
    pub min_expires_s: u32,
    pub default_expires_s: u32,
    pub max_expires_s: u32,
    pub max_per_session: usize,
    pub min_notify_interval_ms: u64,
    pub departed_retention_s: u64,
    /// Percent of `max_per_session` that subscribers who are neither participants nor listed
    /// members may hold, so the host and members can always subscribe.
    pub outsider_share_pct: u8,
    /// Subscribers from `policy.trusted_hosts` see the participants' dialog identifiers
    /// (`<call-info>`); nobody else ever does (they are what an in-dialog request needs).
    pub call_info_to_trusted: bool,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        SubscriptionConfig {
            min_expires_s: 60,
            default_expires_s: 3600,
            max_expires_s: 86_400,
            max_per_session: 1000,
            min_notify_interval_ms: 1000,
            departed_retention_s: 30,
            outsider_share_pct: 50,
            call_info_to_trusted: false,
        }
    }
}
