//! `[tls]`.

use super::ConfigIssue;
use serde::Deserialize;

/// `[tls]`: SIP over TLS (`sips:`) and MSRP over TLS (`msrps:`). Off while `cert_file` is
/// empty.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain of the focus (leaf first).
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
    /// PEM certificates trusted when the focus connects out over TLS; empty: the focus
    /// opens no TLS connection of its own (it still answers over the ones it accepted).
    pub ca_file: String,
    /// Longest TLS handshake of an accepted connection.
    pub handshake_timeout_ms: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: String::new(),
            key_file: String::new(),
            ca_file: String::new(),
            handshake_timeout_ms: 5000,
        }
    }
}

impl TlsConfig {
    /// True when TLS is configured.
    pub fn enabled(&self) -> bool {
        !self.cert_file.is_empty()
    }

    pub(super) fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        let mut bad = |key: &str, message: &str| {
            issues.push(ConfigIssue {
                key: format!("tls.{key}"),
                message: message.into(),
            })
        };
        if self.cert_file.is_empty() != self.key_file.is_empty() {
            bad(
                if self.cert_file.is_empty() {
                    "cert_file"
                } else {
                    "key_file"
                },
                "cert_file and key_file go together",
            );
        }
        if !self.ca_file.is_empty() && !self.enabled() {
            bad("ca_file", "needs cert_file and key_file");
        }
        if !(100..=60_000).contains(&self.handshake_timeout_ms) {
            bad("handshake_timeout_ms", "must be between 100 and 60000");
        }
    }
}
