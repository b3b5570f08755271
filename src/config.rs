//! Typed configuration: every limit of the focus is a named setting here, with the default
//! that `config/focus.toml` (compiled into the binary) documents line by line.

use crate::sip::{Host, Scheme, Uri};
use serde::Deserialize;
use std::fmt;
use thiserror::Error;

/// The embedded default configuration file.
pub const DEFAULT_TOML: &str = include_str!("../config/focus.toml");

/// One problem in a configuration, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Syntax(String),
    #[error("{} error(s):\n{}", .0.len(), .0.iter().map(|i| format!("  {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigIssue>),
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub focus: FocusConfig,
    pub sip: SipConfig,
    pub supervisor: SupervisorConfig,
    pub subscriptions: SubscriptionConfig,
    pub shutdown: ShutdownConfig,
    pub msrp: MsrpConfig,
    pub rtp: RtpConfig,
    pub floor: FloorControlConfig,
    pub policy: ProviderPolicy,
    pub charging: ChargingConfig,
    pub xml: XmlConfig,
    pub overload: OverloadConfig,
    pub tls: TlsConfig,
    pub admin: AdminConfig,
    pub session_timer: SessionTimerConfig,
    pub journal: JournalConfig,
    pub listen: ListenConfig,
    pub auth: AuthConfig,
    pub xdms: XdmsConfig,
    pub groups: Vec<GroupConfig>,
}

impl Config {
    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let issues = config.validate();
        if issues.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(issues))
        }
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text)
    }

    /// The embedded default.
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::from_toml(DEFAULT_TOML)
    }

    /// Every problem, each with its key; empty when the configuration is usable.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: String, message: &str| {
            issues.push(ConfigIssue {
                key,
                message: message.into(),
            })
        };
        let domain = Host::parse(&self.focus.domain);
        for (key, user) in [
            ("focus.factory_user", &self.focus.factory_user),
            ("focus.list_service_user", &self.focus.list_service_user),
        ] {
            if user.is_empty()
                || !user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                bad(
                    key.into(),
                    "must be a non-empty token of letters, digits, '-', '_', '.'",
                );
            }
        }
        if !self
            .focus
            .instance_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || self.focus.instance_id.is_empty()
        {
            bad(
                "focus.instance_id".into(),
                "must be letters, digits and '-'",
            );
        }
        if domain.is_err() {
            bad("focus.domain".into(), "must be a host name or IP address");
        }
        let s = &self.sip;
        if !(1024..=16 * 1024 * 1024).contains(&s.max_message_size) {
            bad(
                "sip.max_message_size".into(),
                "must be between 1024 and 16777216",
            );
        }
        if !(16..=4096).contains(&s.max_headers) {
            bad("sip.max_headers".into(), "must be between 16 and 4096");
        }
        if !(1300..=65_507).contains(&s.max_datagram_size) {
            bad(
                "sip.max_datagram_size".into(),
                "must be between 1300 and 65507",
            );
        }
        if s.t1_ms == 0 || s.t1_ms > 60_000 {
            bad("sip.t1_ms".into(), "must be between 1 and 60000");
        }
        if s.t2_ms < s.t1_ms {
            bad("sip.t2_ms".into(), "must not be smaller than t1_ms");
        }
        if s.t4_ms == 0 {
            bad("sip.t4_ms".into(), "must be positive");
        }
        if s.max_transactions == 0 {
            bad("sip.max_transactions".into(), "must be positive");
        }
        if s.max_tcp_connections == 0 {
            bad("sip.max_tcp_connections".into(), "must be positive");
        }
        if s.tcp_idle_timeout_s == 0 {
            bad("sip.tcp_idle_timeout_s".into(), "must be positive");
        }
        if s.tcp_write_queue == 0 {
            bad("sip.tcp_write_queue".into(), "must be positive");
        }
        if s.max_tcp_connections_per_source == 0 {
            bad(
                "sip.max_tcp_connections_per_source".into(),
                "must be positive",
            );
        }
        if !(1..=3600).contains(&s.tcp_message_timeout_s) {
            bad(
                "sip.tcp_message_timeout_s".into(),
                "must be between 1 and 3600",
            );
        }
        if !(1..=3600).contains(&s.tcp_write_timeout_s) {
            bad(
                "sip.tcp_write_timeout_s".into(),
                "must be between 1 and 3600",
            );
        }
        if !(100..=60_000).contains(&s.tcp_first_byte_timeout_ms) {
            bad(
                "sip.tcp_first_byte_timeout_ms".into(),
                "must be between 100 and 60000",
            );
        }
        if s.tcp_trusted_reserve_pct > 90 {
            bad(
                "sip.tcp_trusted_reserve_pct".into(),
                "must be between 0 and 90",
            );
        }
        if s.queue_depth < 16 {
            bad("sip.queue_depth".into(), "must be at least 16");
        }
        let advertised: Vec<&str> = s.advertise.split(',').map(str::trim).collect();
        if !s.advertise.is_empty()
            && advertised
                .iter()
                .any(|h| h.is_empty() || Host::parse_config(h).is_err())
        {
            bad(
                "sip.advertise".into(),
                "must be host names or IP addresses separated by commas",
            );
        }
        if !s.outbound_proxy.is_empty()
            && crate::sip::Uri::parse(&format!("sip:{}", s.outbound_proxy)).is_err()
        {
            let message = if s.outbound_proxy.parse::<std::net::Ipv6Addr>().is_ok() {
                "must be host or host:port (an IPv6 address in brackets: [2001:db8::1]:5060)"
            } else {
                "must be host or host:port"
            };
            bad("sip.outbound_proxy".into(), message);
        }
        let sv = &self.supervisor;
        if sv.mailbox_capacity == 0 {
            bad("supervisor.mailbox_capacity".into(), "must be positive");
        }
        if sv.max_sessions == 0 {
            bad("supervisor.max_sessions".into(), "must be positive");
        }
        if sv.arbiters > 256 {
            bad("supervisor.arbiters".into(), "must be at most 256");
        }
        let sub = &self.subscriptions;
        if sub.min_expires_s > sub.max_expires_s {
            bad(
                "subscriptions.min_expires_s".into(),
                "must not exceed max_expires_s",
            );
        }
        if sub.default_expires_s < sub.min_expires_s || sub.default_expires_s > sub.max_expires_s {
            bad(
                "subscriptions.default_expires_s".into(),
                "must lie between min_expires_s and max_expires_s",
            );
        }
        if sub.max_per_session == 0 {
            bad("subscriptions.max_per_session".into(), "must be positive");
        }
        if !(1..=100).contains(&sub.outsider_share_pct) {
            bad(
                "subscriptions.outsider_share_pct".into(),
                "must be between 1 and 100",
            );
        }
        let m = &self.msrp;
        if m.max_message_size == 0 {
            bad("msrp.max_message_size".into(), "must be positive");
        }
        if !(1024..=16 * 1024 * 1024).contains(&m.max_chunk_size) {
            bad(
                "msrp.max_chunk_size".into(),
                "must be between 1024 and 16777216",
            );
        }
        if m.queue_depth == 0 {
            bad("msrp.queue_depth".into(), "must be positive");
        }
        if m.delivery_timeout_s == 0 {
            bad("msrp.delivery_timeout_s".into(), "must be positive");
        }
        if m.bind_timeout_s == 0 {
            bad("msrp.bind_timeout_s".into(), "must be positive");
        }
        if m.max_connections == 0 {
            bad("msrp.max_connections".into(), "must be positive");
        }
        let p = &self.policy;
        if p.max_participants_per_session == 0 {
            bad(
                "policy.max_participants_per_session".into(),
                "must be positive",
            );
        }
        for (i, h) in p.trusted_hosts.iter().enumerate() {
            if h.parse::<std::net::IpAddr>().is_err() {
                bad(
                    format!("policy.trusted_hosts[{i}]"),
                    "must be an IP address",
                );
            }
        }
        if p.pager_rate == 0 {
            bad("policy.pager_rate".into(), "must be positive");
        }
        if p.pager_queue == 0 {
            bad("policy.pager_queue".into(), "must be positive");
        }
        if p.max_participants_per_source == 0 {
            bad(
                "policy.max_participants_per_source".into(),
                "must be positive",
            );
        }
        if p.pager_rate_per_sender > 0 && p.pager_burst_per_sender == 0 {
            bad(
                "policy.pager_burst_per_sender".into(),
                "must be positive when pager_rate_per_sender is",
            );
        }
        if p.adhoc == AdhocRule::Domains && p.adhoc_domains.is_empty() {
            bad(
                "policy.adhoc_domains".into(),
                "adhoc = \"domains\" needs domains",
            );
        }
        if self.shutdown.grace_s > 300 {
            bad("shutdown.grace_s".into(), "must be at most 300");
        }
        let mut seen = std::collections::HashSet::new();
        for (i, g) in self.groups.iter().enumerate() {
            let key = |field: &str| format!("groups[{i}].{field}");
            match Uri::parse(&g.uri) {
                Ok(u) if u.scheme == Scheme::Sip || u.scheme == Scheme::Sips => {
                    let host_ok = match (&u.host, &domain) {
                        (Some(h), Ok(d)) => h.matches(d),
                        _ => false,
                    };
                    if !host_ok {
                        bad(key("uri"), "host must be the focus domain");
                    }
                    match u.user_unescaped() {
                        None => bad(key("uri"), "must have a user part"),
                        Some(user) => {
                            if !seen.insert(user.into_owned()) {
                                bad(key("uri"), "duplicate group");
                            }
                        }
                    }
                }
                _ => bad(key("uri"), "must be a sip: or sips: URI"),
            }
            if g.max_participants == 0 {
                bad(key("max_participants"), "must be positive");
            }
            if let Some(media) = &g.allowed_media {
                if media.iter().any(|m| !self.policy.allowed_media.contains(m)) {
                    bad(
                        key("allowed_media"),
                        "must be a subset of policy.allowed_media",
                    );
                }
            }
            for (j, m) in g.members.iter().enumerate() {
                match Uri::parse(&m.uri) {
                    Ok(u) if u.is_sip() || u.scheme == Scheme::Tel => {}
                    _ => bad(
                        format!("groups[{i}].members[{j}].uri"),
                        "must be a sip:, sips: or tel: URI",
                    ),
                }
            }
            if g.join == JoinRule::MembersOnly && g.members.is_empty() {
                bad(key("members"), "a members-only group needs members");
            }
        }
        let st = &self.session_timer;
        if st.min_se_s == 0 {
            bad("session_timer.min_se_s".into(), "must be positive");
        }
        if st.expires_s < st.min_se_s {
            bad(
                "session_timer.expires_s".into(),
                "must not be smaller than min_se_s",
            );
        }
        issues.extend(self.charging.validate_with_roots(Some(&self.tls.ca_file)));
        issues.extend(self.xml.validate());
        self.overload.validate(&mut issues);
        self.tls.validate(&mut issues);
        issues.extend(rtp::validate(self));
        issues.extend(self.admin.validate());
        issues.extend(self.journal.validate());
        issues.extend(self.listen.validate());
        issues.extend(self.auth.validate(&self.focus));
        issues.extend(self.xdms.validate());
        issues
    }

    /// Number of arbiters to run: the configured number, or one per core.
    pub fn arbiter_count(&self) -> usize {
        if self.supervisor.arbiters > 0 {
            self.supervisor.arbiters
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

mod admin;
mod auth;
mod charging;
mod codec;
mod floor;
mod focus;
mod groups;
mod journal;
mod listen;
mod msrp;
mod overload;
mod policy;
mod rtp;
mod session_timer;
mod shutdown;
mod sip;
mod subscriptions;
mod supervisor;
mod tls;
mod url;
mod xdms;
mod xml;

pub use admin::AdminConfig;
pub use auth::{AuthConfig, AuthMode};
pub use charging::{ChargingConfig, FsyncPolicy, OnUnavailable, UnverifiedCharging};
pub use codec::{Codec, CodecError, MAX_CODECS};
pub use floor::FloorControlConfig;
pub use focus::{FocusConfig, LogFormat};
pub use groups::GroupConfig;
pub use journal::JournalConfig;
pub use listen::ListenConfig;
pub use msrp::MsrpConfig;
pub use overload::OverloadConfig;
pub use policy::{
    AdhocRule, Authority, CascadeRule, IdentityMode, JoinRule, MediaKind, MemberConfig,
    ProviderPolicy, Role,
};
pub use rtp::{Latching, RtpConfig};
pub use session_timer::SessionTimerConfig;
pub use shutdown::ShutdownConfig;
pub use sip::SipConfig;
pub use subscriptions::SubscriptionConfig;
pub use supervisor::SupervisorConfig;
pub use tls::TlsConfig;
pub use url::{HttpUrl, UrlError};
pub use xdms::XdmsConfig;
pub use xml::XmlConfig;

#[cfg(test)]
mod tests;
