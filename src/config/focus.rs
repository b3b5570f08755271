//! `[focus]`.

use serde::Deserialize;

/// `[focus]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FocusConfig {
    pub domain: String,
    pub display_name: String,
    pub instance_id: String,
    /// User part of the conference factory URI (RFC 4579): INVITE creates ad-hoc sessions.
    pub factory_user: String,
    /// User part of the URI-list service for group MESSAGE (RFC 5365 exploder).
    pub list_service_user: String,
    /// How long an ended ad-hoc session can be restarted by its Contribution-ID, seconds.
    pub restart_window_s: u64,
    /// Most ended ad-hoc sessions remembered for restart.
    pub max_remembered: usize,
    /// How log lines are written to stderr (`--log-format` overrides it).
    pub log_format: LogFormat,
}

/// The form of the log on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines (coloured only when stderr is a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl Default for FocusConfig {
    fn default() -> Self {
        FocusConfig {
            domain: "focus.example.com".into(),
            display_name: "cpm-focus".into(),
            instance_id: "focus-1".into(),
            factory_user: "conf-factory".into(),
            list_service_user: "list-service".into(),
            restart_window_s: 86_400,
            max_remembered: 10_000,
            log_format: LogFormat::Text,
        }
    }
}
