//! `[supervisor]`.

use serde::Deserialize;

/// `[supervisor]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorConfig {
    pub arbiters: usize,
    pub mailbox_capacity: usize,
    pub retry_after_s: u32,
    pub max_sessions: usize,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            arbiters: 0,
            mailbox_capacity: 1024,
            retry_after_s: 5,
            max_sessions: 10_000,
        }
    }
}
