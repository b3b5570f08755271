//! `[journal]`.

use super::charging::names_a_file;
use super::ConfigIssue;
use super::FsyncPolicy;
use serde::Deserialize;

/// `[journal]`: the membership journal that lets a restarted focus resume its live groups.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// The journal file; empty disables journaling (and crash recovery).
    pub path: String,
    pub fsync: FsyncPolicy,
    pub fsync_interval_ms: u64,
    /// A restart this long (at most) after the crash resumes the journaled groups, seconds.
    pub recovery_window_s: u64,
    /// The file is compacted (rewritten with only the live sessions) when it grows past this,
    /// bytes.
    pub max_bytes: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            path: String::new(),
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: 1000,
            recovery_window_s: 300,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

impl JournalConfig {
    /// Every problem of the `[journal]` section, each with its key.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: &str, message: &str| {
            issues.push(ConfigIssue {
                key: format!("journal.{key}"),
                message: message.into(),
            })
        };
        if !self.path.is_empty() && !names_a_file(&self.path) {
            bad("path", "must name a file");
        }
        if !(1..=60_000).contains(&self.fsync_interval_ms) {
            bad("fsync_interval_ms", "must be between 1 and 60000");
        }
        if self.recovery_window_s > 7 * 86_400 {
            bad("recovery_window_s", "must be at most 604800");
        }
        if self.max_bytes < 4096 {
            bad("max_bytes", "must be at least 4096");
        }
        issues
    }
}
