//! `[shutdown]`.

use serde::Deserialize;

/// `[shutdown]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    pub grace_s: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { grace_s: 5 }
    }
}
