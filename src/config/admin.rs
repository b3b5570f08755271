//! `[admin]`.

use super::ConfigIssue;
use serde::Deserialize;
use std::fmt;

/// `[admin]`: the operator's HTTP API (`--admin-listen`).
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer token every request but `/health` and `/ready` must carry; empty: none asked
    /// (allowed on a loopback listener only). Reloadable.
    pub token: String,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Largest request (head and body), bytes.
    pub max_request_bytes: usize,
    /// How long a client may take to send its request, and a session to answer, ms.
    pub timeout_ms: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            token: String::new(),
            max_connections: 16,
            max_request_bytes: 16 * 1024,
            timeout_ms: 5000,
        }
    }
}

// Debug by hand: the token is a secret and configurations get logged.
impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("token", &token_digest(&self.token))
            .field("max_connections", &self.max_connections)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// A stand-in for a secret in Debug output that still differs when the secret does (the
/// reload compares sections by their Debug text).
pub(super) fn token_digest(token: &str) -> String {
    use std::hash::{Hash, Hasher};
    if token.is_empty() {
        return "none".into();
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut h);
    format!("set#{:04x}", h.finish() & 0xffff)
}

impl AdminConfig {
    /// Every problem of the `[admin]` section, each with its key.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: &str, message: &str| {
            issues.push(ConfigIssue {
                key: format!("admin.{key}"),
                message: message.into(),
            })
        };
        if !self.token.is_empty()
            && (self.token.len() < 16 || !self.token.bytes().all(|b| b.is_ascii_graphic()))
        {
            bad(
                "token",
                "must be at least 16 printable characters without spaces",
            );
        }
        if !(1..=1024).contains(&self.max_connections) {
            bad("max_connections", "must be between 1 and 1024");
        }
        if !(1024..=1024 * 1024).contains(&self.max_request_bytes) {
            bad("max_request_bytes", "must be between 1024 and 1048576");
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            bad("timeout_ms", "must be between 100 and 60000");
        }
        issues
    }
}
