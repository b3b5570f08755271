//! Configuration reload, shared by `SIGHUP` and the admin API: re-read the file the focus
//! started with, validate it whole, and either refuse it (the error is returned and logged,
//! the running configuration stays) or apply what can change at run time without dropping
//! a session: `[[groups]]`, `[policy]`, `[subscriptions]`, the admin token and the users of
//! `auth.credentials` (the file is re-read). Everything else (listeners, limits sized at
//! start, charging, the focus's identity, the `[auth]` settings) is reported as needing a
//! restart and keeps its running value.

use crate::config::{Config, ConfigError};
use crate::supervisor::Supervisor;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use thiserror::Error;

/// What asked for the reload (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `SIGHUP` (e.g. `systemctl reload`).
    Signal,
    /// `POST /v1/reload`.
    Admin,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "sighup",
            Trigger::Admin => "admin",
        }
    }
}

/// Why a reload was refused; the running configuration is unchanged.
#[derive(Debug, Error)]
pub enum ReloadError {
    #[error("the focus runs on its embedded configuration: there is no file to reload")]
    NoFile,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("admin.token: {0}")]
    Admin(&'static str),
    /// The new certificate or key could not be loaded; the running one stays.
    #[error(transparent)]
    Tls(#[from] crate::transport::TlsError),
}

impl ReloadError {
    /// The configuration problems, each with its key (empty when not a validation error).
    pub fn issues(&self) -> Vec<crate::config::ConfigIssue> {
        match self {
            ReloadError::Config(ConfigError::Invalid(issues)) => issues.clone(),
            ReloadError::Admin(m) => vec![crate::config::ConfigIssue {
                key: "admin.token".into(),
                message: (*m).into(),
            }],
            ReloadError::Tls(e) => vec![crate::config::ConfigIssue {
                key: "tls".into(),
                message: e.to_string(),
            }],
            _ => Vec::new(),
        }
    }
}

/// What a reload changed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReloadReport {
    /// Group URIs now configured that were not.
    pub groups_added: Vec<String>,
    /// Group URIs no longer configured (their live sessions end when empty).
    pub groups_removed: Vec<String>,
    /// Group URIs whose settings changed.
    pub groups_changed: Vec<String>,
    /// `[policy]` changed.
    pub policy_changed: bool,
    /// `[subscriptions]` changed.
    pub subscriptions_changed: bool,
    /// Live sessions told their new settings.
    pub sessions_updated: usize,
    /// Live sessions of removed groups.
    pub sessions_retiring: usize,
    /// Sections that changed in the file but take effect only after a restart.
    pub restart_required: Vec<String>,
    /// The TLS certificate and key were read again (new handshakes present them; open
    /// connections keep theirs).
    pub tls_reloaded: bool,
}

/// Where the admin API keeps its bearer token (reloadable).
pub trait TokenStore: Send + Sync {
    /// Takes a new token; refuses (with the reason) one the listener cannot run with.
    fn check(&self, token: &str) -> Result<(), &'static str>;
    fn replace(&self, token: &str);
}

/// Reloads the configuration of a running focus.
pub struct Reloader {
    path: Option<PathBuf>,
    /// The running configuration (as applied, not as last read).
    current: Mutex<Config>,
    supervisor: Arc<Supervisor>,
    token: Option<Arc<dyn TokenStore>>,
    tls: Option<Arc<crate::transport::tls::CertStore>>,
}

impl Reloader {
    /// `path` is the file given with `--config` (none: embedded, nothing to reload).
    pub fn new(
        path: Option<PathBuf>,
        running: Config,
        supervisor: Arc<Supervisor>,
        token: Option<Arc<dyn TokenStore>>,
    ) -> Reloader {
        // The running configuration is a good one: alerts on a refused reload start clear.
        metrics::gauge!("focus_config_last_reload_successful").set(1.0);
        Reloader {
            path,
            current: Mutex::new(running),
            supervisor,
            token,
            tls: None,
        }
    }

    /// Reloads the TLS certificate too (the store the listeners resolve it from).
    pub fn with_tls(mut self, tls: Option<Arc<crate::transport::tls::CertStore>>) -> Reloader {
        self.tls = tls;
        self
    }

    /// Re-reads and applies the file; counted and logged either way.
    pub fn reload(&self, trigger: Trigger, who: &str) -> Result<ReloadReport, ReloadError> {
        let outcome = self.try_reload();
        let label = if outcome.is_ok() {
            "applied"
        } else {
            "refused"
        };
        metrics::counter!("focus_config_reloads_total", "trigger" => trigger.as_str(), "outcome" => label)
            .increment(1);
        metrics::gauge!("focus_config_last_reload_successful").set(if outcome.is_ok() {
            1.0
        } else {
            0.0
        });
        match &outcome {
            Ok(r) => tracing::info!(
                trigger = trigger.as_str(), %who,
                added = ?r.groups_added, removed = ?r.groups_removed, changed = ?r.groups_changed,
                policy_changed = r.policy_changed, sessions_updated = r.sessions_updated,
                restart_required = ?r.restart_required, tls_reloaded = r.tls_reloaded,
                "configuration reloaded"
            ),
            Err(e) => tracing::error!(
                trigger = trigger.as_str(), %who, error = %e,
                "configuration reload refused; the running configuration stays"
            ),
        }
        outcome
    }

    fn try_reload(&self) -> Result<ReloadReport, ReloadError> {
        let path = self.path.as_ref().ok_or(ReloadError::NoFile)?;
        let file = Config::load(path)?;
        // One reload at a time: the lock spans the swap.
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let applied = merge(&current, &file);
        // The file is valid alone; with the running identity (domain) it must be too.
        let issues = applied.validate();
        if !issues.is_empty() {
            return Err(ConfigError::Invalid(issues).into());
        }
        if let Some(store) = &self.token {
            store
                .check(&applied.admin.token)
                .map_err(ReloadError::Admin)?;
        }
        // Certificates are renewed in place (the same paths, new contents) or moved: either
        // way they are read again, and a pair that does not load refuses the whole reload.
        let tls_reloaded = match &self.tls {
            Some(certs) if applied.tls.enabled() => {
                certs.reload(&applied.tls)?;
                true
            }
            _ => false,
        };
        let mut report = diff(&current, &applied);
        report.tls_reloaded = tls_reloaded;
        report.restart_required = restart_required(&applied, &file);
        let change = self.supervisor.reconfigure(&applied);
        report.sessions_updated = change.sessions_updated;
        report.sessions_retiring = change.sessions_retiring;
        if let Some(store) = &self.token {
            store.replace(&applied.admin.token);
        }
        crate::policy::Trust::from_policy(&applied.policy).warn_if_lab_mode();
        *current = applied;
        Ok(report)
    }
}

/// The running configuration with the reloadable sections of `file`.
pub fn merge(running: &Config, file: &Config) -> Config {
    let mut c = running.clone();
    c.groups = file.groups.clone();
    c.policy = file.policy.clone();
    c.subscriptions = file.subscriptions.clone();
    c.admin.token = file.admin.token.clone();
    // A running TLS takes a new certificate and key (turning TLS on or off needs a restart:
    // the listeners are bound at start).
    if running.tls.enabled() && file.tls.enabled() {
        c.tls.cert_file = file.tls.cert_file.clone();
        c.tls.key_file = file.tls.key_file.clone();
    }
    c
}

/// What changed between two configurations' reloadable sections.
pub fn diff(old: &Config, new: &Config) -> ReloadReport {
    // Sections compare by their Debug text: every config type derives Debug, so sections
    // other branches add compare too, without each needing PartialEq.
    let same =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
    let mut r = ReloadReport::default();
    for g in &new.groups {
        match old.groups.iter().find(|o| o.uri == g.uri) {
            None => r.groups_added.push(g.uri.clone()),
            Some(o) if !same(o, g) => r.groups_changed.push(g.uri.clone()),
            Some(_) => {}
        }
    }
    for o in &old.groups {
        if !new.groups.iter().any(|g| g.uri == o.uri) {
            r.groups_removed.push(o.uri.clone());
        }
    }
    r.policy_changed = !same(&old.policy, &new.policy);
    r.subscriptions_changed = !same(&old.subscriptions, &new.subscriptions);
    r
}

/// The sections of `file` that differ from what runs (`applied`) and need a restart.
pub fn restart_required(applied: &Config, file: &Config) -> Vec<String> {
    let same =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
    let sections: [(&str, &dyn std::fmt::Debug, &dyn std::fmt::Debug); 17] = [
        ("focus", &applied.focus, &file.focus),
        ("sip", &applied.sip, &file.sip),
        ("supervisor", &applied.supervisor, &file.supervisor),
        ("shutdown", &applied.shutdown, &file.shutdown),
        ("msrp", &applied.msrp, &file.msrp),
        ("charging", &applied.charging, &file.charging),
        ("overload", &applied.overload, &file.overload),
        ("tls", &applied.tls, &file.tls),
        ("rtp", &applied.rtp, &file.rtp),
        ("floor", &applied.floor, &file.floor),
        ("admin", &applied.admin, &file.admin),
        ("session_timer", &applied.session_timer, &file.session_timer),
        ("journal", &applied.journal, &file.journal),
        ("xml", &applied.xml, &file.xml),
        ("xdms", &applied.xdms, &file.xdms),
        // The credentials file is re-read on every reload; the settings need a restart.
        ("auth", &applied.auth, &file.auth),
        // Whole-file check last: catches sections this list does not name yet.
        ("other", applied, file),
    ];
    let mut out: Vec<String> = sections
        .iter()
        .filter(|(_, a, b)| !same(*a, *b))
        .map(|(name, _, _)| name.to_string())
        .collect();
    if out.len() > 1 {
        out.retain(|s| s != "other");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::from_toml(extra).unwrap()
    }

    #[test]
    fn only_reloadable_sections_are_taken_and_the_rest_is_reported() {
        let running =
            config("[sip]\nt1_ms = 500\n[[groups]]\nuri = \"sip:team@focus.example.com\"\n");
        let file = config(
            "[sip]\nt1_ms = 250\n[policy]\nmax_list_size = 5\n[[groups]]\nuri = \"sip:new@focus.example.com\"\n",
        );
        let applied = merge(&running, &file);
        assert_eq!(applied.sip.t1_ms, 500, "sip.* needs a restart");
        assert_eq!(applied.policy.max_list_size, 5);
        let r = diff(&running, &applied);
        assert_eq!(r.groups_added, ["sip:new@focus.example.com"]);
        assert_eq!(r.groups_removed, ["sip:team@focus.example.com"]);
        assert!(r.policy_changed);
        assert!(!r.subscriptions_changed);
        assert_eq!(restart_required(&applied, &file), ["sip"]);
    }

    #[test]
    fn a_changed_group_is_reported_as_changed() {
        let running = config("[[groups]]\nuri = \"sip:team@focus.example.com\"\n");
        let file =
            config("[[groups]]\nuri = \"sip:team@focus.example.com\"\nmax_participants = 3\n");
        let r = diff(&running, &merge(&running, &file));
        assert_eq!(r.groups_changed, ["sip:team@focus.example.com"]);
        assert!(r.groups_added.is_empty() && r.groups_removed.is_empty());
        assert!(restart_required(&merge(&running, &file), &file).is_empty());
    }
}
