//! `[session_timer]`.

use serde::Deserialize;

/// `[session_timer]`: RFC 4028 session timers on participants' dialogs.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionTimerConfig {
    /// Ask for and grant session timers (`Supported: timer`); false leaves dialogs untimed.
    pub enabled: bool,
    /// The session interval the focus asks for and the longest it grants, seconds.
    pub expires_s: u32,
    /// The shortest session interval accepted (422 with Min-SE below it), seconds.
    pub min_se_s: u32,
}

impl Default for SessionTimerConfig {
    fn default() -> Self {
        SessionTimerConfig {
            enabled: true,
            expires_s: 1800,
            min_se_s: 90,
        }
    }
}

impl SessionTimerConfig {
    /// The settings sessions negotiate with.
    pub fn settings(&self) -> crate::session_timer::TimerSettings {
        crate::session_timer::TimerSettings {
            enabled: self.enabled,
            expires: self.expires_s,
            min_se: self.min_se_s,
        }
    }
}
