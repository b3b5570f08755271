//! `[charging]`.

use super::admin::token_digest;
use super::ConfigIssue;
use super::HttpUrl;
use serde::Deserialize;
use std::fmt;

/// When the charging writer forces records to disk (`fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsyncPolicy {
    /// After every batch: nothing acknowledged is lost in a power cut, at a sync per batch.
    Always,
    /// At most `fsync_interval_ms` after a write: a power cut loses at most that much.
    Interval,
    /// Left to the operating system (flush and shutdown still sync).
    Never,
}

/// What the focus does when the credit-control server cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnUnavailable {
    /// Admit the session or message (the records still let it be charged later).
    Allow,
    /// Refuse it (503): nothing is served that could not be authorized.
    Deny,
}

/// With online charging on, what becomes of a chargeable request (a join, a group message)
/// whose sender's identity does not count (`charging.unverified`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnverifiedCharging {
    /// Challenged (`401`) when `[auth]` can prove it, else refused `403`: nobody's credit is
    /// spent on a claim.
    #[default]
    Refuse,
    /// Checked against the account of its source address (`source:192.0.2.7`).
    Source,
}

/// `[charging]`: offline charging records and the online credit check.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChargingConfig {
    /// The JSON-lines file records are appended to; empty disables offline charging.
    pub path: String,
    /// The file is rotated before a record would make it larger than this, in bytes.
    pub max_file_bytes: u64,
    /// Rotated files kept (`path.1` is the newest).
    pub keep_files: usize,
    pub fsync: FsyncPolicy,
    pub fsync_interval_ms: u64,
    /// Records held in memory while the file cannot be written; more are dropped (counted).
    pub max_backlog: usize,
    /// Credit-control endpoint (`http://` or `https://host:port/path`); empty disables
    /// online charging.
    pub online_url: String,
    pub online_timeout_ms: u64,
    pub on_unavailable: OnUnavailable,
    /// A chargeable request from an identity that does not count: proven or refused, or
    /// charged to its source address.
    pub unverified: UnverifiedCharging,
    /// PEM roots trusted for an `https` credit server, besides `tls.ca_file`.
    pub online_ca_file: String,
    /// How long an idle connection to the credit server is kept for the next check, ms;
    /// 0: a connection per check.
    pub online_idle_timeout_ms: u64,
    /// Credit checks in flight at once (and idle connections kept); more are refused `503`.
    pub online_max_pending: usize,
    /// `Authorization: Bearer` token for the credit server, inline or (better) read from a
    /// file at start.
    pub online_token: String,
    pub online_token_file: String,
    /// Basic authentication (RFC 7617) for the credit server: user, and the password inline
    /// or from a file.
    pub online_user: String,
    pub online_password: String,
    pub online_password_file: String,
}

// Debug by hand: the token and password are secrets and configurations get logged.
impl fmt::Debug for ChargingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChargingConfig")
            .field("path", &self.path)
            .field("max_file_bytes", &self.max_file_bytes)
            .field("keep_files", &self.keep_files)
            .field("fsync", &self.fsync)
            .field("fsync_interval_ms", &self.fsync_interval_ms)
            .field("max_backlog", &self.max_backlog)
            .field("online_url", &self.online_url)
            .field("online_timeout_ms", &self.online_timeout_ms)
            .field("on_unavailable", &self.on_unavailable)
            .field("unverified", &self.unverified)
            .field("online_ca_file", &self.online_ca_file)
            .field("online_idle_timeout_ms", &self.online_idle_timeout_ms)
            .field("online_max_pending", &self.online_max_pending)
            .field("online_token", &token_digest(&self.online_token))
            .field("online_token_file", &self.online_token_file)
            .field("online_user", &self.online_user)
            .field("online_password", &token_digest(&self.online_password))
            .field("online_password_file", &self.online_password_file)
            .finish()
    }
}

impl Default for ChargingConfig {
    fn default() -> Self {
        ChargingConfig {
            path: String::new(),
            max_file_bytes: 64 * 1024 * 1024,
            keep_files: 10,
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: 1000,
            max_backlog: 100_000,
            online_url: String::new(),
            online_timeout_ms: 1000,
            on_unavailable: OnUnavailable::Allow,
            unverified: UnverifiedCharging::Refuse,
            online_ca_file: String::new(),
            online_idle_timeout_ms: 60_000,
            online_max_pending: 256,
            online_token: String::new(),
            online_token_file: String::new(),
            online_user: String::new(),
            online_password: String::new(),
            online_password_file: String::new(),
        }
    }
}

/// True when `path` names a file, not a directory: "dir/" would be opened as a file name by
/// `Path` (which drops the slash).
pub(super) fn names_a_file(path: &str) -> bool {
    !path.ends_with('/') && std::path::Path::new(path).file_name().is_some()
}

impl ChargingConfig {
    /// Every problem of the `[charging]` section, each with its key (the charging writer
    /// checks the same when started on its own).
    pub fn validate(&self) -> Vec<ConfigIssue> {
        self.validate_with_roots(None)
    }

    /// [`ChargingConfig::validate`], and with `tls_ca_file` (the `[tls]` roots) known, that an
    /// `https` credit server has roots to be verified against.
    pub fn validate_with_roots(&self, tls_ca_file: Option<&str>) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: &str, message: &str| {
            issues.push(ConfigIssue {
                key: format!("charging.{key}"),
                message: message.into(),
            })
        };
        if !self.path.is_empty() && !names_a_file(&self.path) {
            bad("path", "must name a file");
        }
        if self.max_file_bytes < 1024 {
            bad("max_file_bytes", "must be at least 1024");
        }
        if !(1..=1000).contains(&self.keep_files) {
            bad("keep_files", "must be between 1 and 1000");
        }
        if !(1..=60_000).contains(&self.fsync_interval_ms) {
            bad("fsync_interval_ms", "must be between 1 and 60000");
        }
        if self.max_backlog == 0 {
            bad("max_backlog", "must be positive");
        }
        if !self.online_url.is_empty() {
            match HttpUrl::parse(&self.online_url) {
                Err(e) => bad("online_url", &e.to_string()),
                Ok(url)
                    if url.is_https()
                        && self.online_ca_file.is_empty()
                        && tls_ca_file.is_some_and(str::is_empty) =>
                {
                    bad(
                        "online_url",
                        "https needs roots to verify the server: set charging.online_ca_file or tls.ca_file",
                    )
                }
                Ok(_) => {}
            }
        }
        if !(1..=30_000).contains(&self.online_timeout_ms) {
            bad("online_timeout_ms", "must be between 1 and 30000");
        }
        if self.online_idle_timeout_ms > 3_600_000 {
            bad("online_idle_timeout_ms", "must be at most 3600000");
        }
        if !(1..=65_536).contains(&self.online_max_pending) {
            bad("online_max_pending", "must be between 1 and 65536");
        }
        if !self.online_token.is_empty() && !self.online_token_file.is_empty() {
            bad(
                "online_token",
                "set online_token or online_token_file, not both",
            );
        }
        if !self.online_token.bytes().all(|b| b.is_ascii_graphic()) {
            bad(
                "online_token",
                "must be printable characters without spaces",
            );
        }
        if !self.online_password.is_empty() && !self.online_password_file.is_empty() {
            bad(
                "online_password",
                "set online_password or online_password_file, not both",
            );
        }
        let token = !self.online_token.is_empty() || !self.online_token_file.is_empty();
        let password = !self.online_password.is_empty() || !self.online_password_file.is_empty();
        if self.online_user.contains(':') || self.online_user.chars().any(char::is_control) {
            bad(
                "online_user",
                "must not contain a colon or control characters (RFC 7617)",
            );
        }
        if self.online_user.is_empty() == password {
            let key = if password {
                "online_user"
            } else {
                "online_password"
            };
            if password || !self.online_user.is_empty() {
                bad(
                    key,
                    "basic authentication needs both online_user and a password",
                );
            }
        }
        if token && !self.online_user.is_empty() {
            bad(
                "online_user",
                "choose a bearer token or basic authentication, not both",
            );
        }
        issues
    }
}
