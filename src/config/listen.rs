//! `[listen]`: the addresses the focus listens on, so a unit file or a container holds no
//! network set-up. The command-line flags (`--sip-listen` ...) override them.

use super::ConfigIssue;
use serde::Deserialize;
use std::net::SocketAddr;

/// `[listen]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// SIP over UDP and TCP.
    pub sip: String,
    /// SIP over TLS; empty: the SIP address with port 5061 (port 0 when the SIP port is 0).
    pub sips: String,
    /// MSRP; empty: the SIP address with port 2855.
    pub msrp: String,
    /// Prometheus `/metrics`.
    pub metrics: String,
    /// The admin API.
    pub admin: String,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            sip: "127.0.0.1:5060".into(),
            sips: String::new(),
            msrp: String::new(),
            metrics: "127.0.0.1:9464".into(),
            admin: "127.0.0.1:8090".into(),
        }
    }
}

/// An address of `[listen]`: `None` when empty (derived from the SIP address) or invalid
/// (validation reports it).
fn addr(value: &str) -> Option<SocketAddr> {
    value.parse().ok()
}

impl ListenConfig {
    pub fn sip_addr(&self) -> Option<SocketAddr> {
        addr(&self.sip)
    }

    pub fn sips_addr(&self) -> Option<SocketAddr> {
        addr(&self.sips)
    }

    pub fn msrp_addr(&self) -> Option<SocketAddr> {
        addr(&self.msrp)
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        addr(&self.metrics)
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        addr(&self.admin)
    }

    /// Every problem of the `[listen]` section, each with its key.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        for (key, value, required) in [
            ("sip", &self.sip, true),
            ("sips", &self.sips, false),
            ("msrp", &self.msrp, false),
            ("metrics", &self.metrics, true),
            ("admin", &self.admin, true),
        ] {
            if value.is_empty() && !required {
                continue;
            }
            if addr(value).is_none() {
                issues.push(ConfigIssue {
                    key: format!("listen.{key}"),
                    message: "must be IP:PORT (e.g. 0.0.0.0:5060 or [::]:5060)".into(),
                });
            }
        }
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_bad_ones_are_named() {
        let d = ListenConfig::default();
        assert!(d.validate().is_empty());
        assert_eq!(d.sip_addr(), Some("127.0.0.1:5060".parse().unwrap()));
        assert_eq!(d.sips_addr(), None);
        let bad = ListenConfig {
            sip: "localhost:5060".into(),
            msrp: "1.2.3.4".into(),
            admin: String::new(),
            ..ListenConfig::default()
        };
        let keys: Vec<String> = bad.validate().into_iter().map(|i| i.key).collect();
        assert_eq!(keys, ["listen.sip", "listen.msrp", "listen.admin"]);
    }
}
