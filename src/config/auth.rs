//! `[auth]`: SIP digest authentication for deployments without an IMS core (see
//! `crate::auth` and `docs/security.md`).

use super::{ConfigIssue, FocusConfig};
use crate::auth::{Algorithm, Credentials};
use serde::Deserialize;
use std::time::Duration;

/// Which new requests must prove their sender with digest authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum AuthMode {
    /// None: identities come from the SIP core (or are taken as written, per policy).
    #[default]
    #[serde(rename = "off")]
    Off,
    /// Requests to members-only and invited-only groups (join, subscribe, refer, message)
    /// from sources outside `policy.trusted_hosts`.
    #[serde(rename = "members_only", alias = "members-only")]
    MembersOnly,
    /// Every new request from a source outside `policy.trusted_hosts`.
    #[serde(rename = "untrusted")]
    Untrusted,
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// The digest realm; empty: `focus.domain`.
    pub realm: String,
    /// The credentials file (`user:realm:ha1_md5[:ha1_sha256]` lines); required unless off.
    pub credentials: String,
    /// How long a nonce may be used, seconds; older ones get `stale=true`.
    pub nonce_ttl_s: u64,
    /// Most nonces held at once (the oldest are forgotten first).
    pub max_nonces: usize,
    /// Challenges offered, in this order.
    pub algorithms: Vec<Algorithm>,
    /// Failed attempts one source address may make per window before it is refused (403).
    pub max_failures: u32,
    pub failure_window_s: u64,
    /// Most source addresses whose failures are counted at once.
    pub max_failure_sources: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Off,
            realm: String::new(),
            credentials: String::new(),
            nonce_ttl_s: 300,
            max_nonces: 100_000,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            max_failures: 10,
            failure_window_s: 300,
            max_failure_sources: 10_000,
        }
    }
}

impl AuthConfig {
    /// The realm in force.
    pub fn realm(&self, focus: &FocusConfig) -> String {
        if self.realm.is_empty() {
            focus.domain.clone()
        } else {
            self.realm.clone()
        }
    }

    /// The authenticator's settings.
    pub fn settings(&self, focus: &FocusConfig) -> crate::auth::AuthSettings {
        crate::auth::AuthSettings {
            realm: self.realm(focus),
            algorithms: self.algorithms.clone(),
            nonce_ttl: Duration::from_secs(self.nonce_ttl_s),
            max_nonces: self.max_nonces,
            max_failures: self.max_failures,
            failure_window: Duration::from_secs(self.failure_window_s),
            max_failure_sources: self.max_failure_sources,
            domain: focus.domain.clone(),
        }
    }

    /// The credentials file, read and checked against the realm and algorithms: every user
    /// of the realm needs a hash for every algorithm offered (a challenge the focus cannot
    /// verify would lock that user out).
    pub fn load_credentials(&self, focus: &FocusConfig) -> Result<Credentials, String> {
        let c = Credentials::load(std::path::Path::new(&self.credentials))
            .map_err(|e| e.to_string())?;
        let realm = self.realm(focus);
        let (users, lacking) = c.realm_users(&realm, &self.algorithms);
        if users == 0 {
            return Err(format!("{}: no user of realm {realm:?}", self.credentials));
        }
        if let Some(user) = lacking.first() {
            return Err(format!(
                "{}: user {user:?} lacks a hash for one of auth.algorithms",
                self.credentials
            ));
        }
        Ok(c)
    }

    /// Every problem of `[auth]`, each with its key. Reads the credentials file when set.
    pub fn validate(&self, focus: &FocusConfig) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: &str, message: String| {
            issues.push(ConfigIssue {
                key: format!("auth.{key}"),
                message,
            })
        };
        let realm = self.realm(focus);
        if realm.is_empty()
            || realm
                .chars()
                .any(|c| c == '"' || c == '\\' || c == ':' || c.is_control())
        {
            bad(
                "realm",
                "must be non-empty, without '\"', '\\', ':' or control characters".into(),
            );
        }
        if !(1..=86_400).contains(&self.nonce_ttl_s) {
            bad("nonce_ttl_s", "must be between 1 and 86400".into());
        }
        if !(1..=10_000_000).contains(&self.max_nonces) {
            bad("max_nonces", "must be between 1 and 10000000".into());
        }
        if self.algorithms.is_empty() {
            bad(
                "algorithms",
                "must name at least one of \"sha-256\", \"md5\"".into(),
            );
        } else if self.algorithms.len() == 2 && self.algorithms[0] == self.algorithms[1] {
            bad("algorithms", "lists an algorithm twice".into());
        }
        if self.max_failures == 0 {
            bad("max_failures", "must be positive".into());
        }
        if !(1..=86_400).contains(&self.failure_window_s) {
            bad("failure_window_s", "must be between 1 and 86400".into());
        }
        if !(1..=10_000_000).contains(&self.max_failure_sources) {
            bad(
                "max_failure_sources",
                "must be between 1 and 10000000".into(),
            );
        }
        if self.credentials.is_empty() {
            if self.mode != AuthMode::Off {
                bad(
                    "credentials",
                    "required when auth.mode is not \"off\"".into(),
                );
            }
        } else if let Err(e) = self.load_credentials(focus) {
            bad("credentials", e);
        }
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};
    use super::*;

    fn issues(text: &str) -> Vec<String> {
        match Config::from_toml(text) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid(issues)) => issues.iter().map(|i| i.to_string()).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn off_by_default_with_sha256_first() {
        let c = Config::embedded().unwrap();
        let d = AuthConfig::default();
        assert_eq!(c.auth.mode, AuthMode::Off);
        assert_eq!(c.auth.algorithms, [Algorithm::Sha256, Algorithm::Md5]);
        assert_eq!(c.auth.algorithms, d.algorithms);
        assert_eq!(c.auth.realm, d.realm);
        assert_eq!(c.auth.credentials, d.credentials);
        assert_eq!(c.auth.nonce_ttl_s, d.nonce_ttl_s);
        assert_eq!(c.auth.max_nonces, d.max_nonces);
        assert_eq!(c.auth.max_failures, d.max_failures);
        assert_eq!(c.auth.failure_window_s, d.failure_window_s);
        assert_eq!(c.auth.max_failure_sources, d.max_failure_sources);
        assert_eq!(c.auth.realm(&c.focus), "focus.example.com");
    }

    #[test]
    fn a_mode_needs_a_readable_file_with_every_hash() {
        let dir = std::env::temp_dir().join(format!("cpm-auth-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let both = dir.join("both");
        std::fs::write(
            &both,
            crate::auth::credentials_line("alice", "focus.example.com", "pw"),
        )
        .unwrap();
        let md5 = dir.join("md5");
        std::fs::write(
            &md5,
            format!(
                "alice:focus.example.com:{}\n",
                Algorithm::Md5.ha1("alice", "focus.example.com", "pw")
            ),
        )
        .unwrap();
        let missing = dir.join("missing");
        let cfg = |mode: &str, path: &std::path::Path, extra: &str| {
            format!(
                "[auth]\nmode = \"{mode}\"\ncredentials = \"{}\"\n{extra}",
                path.display()
            )
        };
        assert!(issues(&cfg("members_only", &both, "")).is_empty());
        assert!(issues(&cfg("members-only", &both, "")).is_empty());
        assert!(issues(&cfg("untrusted", &md5, "algorithms = [\"md5\"]")).is_empty());
        let e = issues(&cfg("untrusted", &md5, ""));
        assert!(
            e[0].starts_with("auth.credentials: ") && e[0].contains("lacks"),
            "{e:?}"
        );
        let e = issues(&cfg("untrusted", &missing, ""));
        assert!(e[0].starts_with("auth.credentials: cannot read"), "{e:?}");
        let e = issues(&cfg("untrusted", &both, "realm = \"other\""));
        assert!(e[0].contains("no user of realm \"other\""), "{e:?}");
        let e = issues("[auth]\nmode = \"untrusted\"\n");
        assert_eq!(
            e,
            ["auth.credentials: required when auth.mode is not \"off\""]
        );
        let e = issues(
            "[auth]\nrealm = \"a\\\"b\"\nnonce_ttl_s = 0\nmax_nonces = 0\nalgorithms = []\n\
             max_failures = 0\nfailure_window_s = 0\nmax_failure_sources = 0\n",
        );
        let keys: Vec<&str> = e.iter().map(|i| i.split(':').next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "auth.realm",
                "auth.nonce_ttl_s",
                "auth.max_nonces",
                "auth.algorithms",
                "auth.max_failures",
                "auth.failure_window_s",
                "auth.max_failure_sources"
            ]
        );
        assert!(Config::from_toml("[auth]\nmode = \"sometimes\"\n").is_err());
        assert!(Config::from_toml("[auth]\nalgorithms = [\"sha-512\"]\n").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
