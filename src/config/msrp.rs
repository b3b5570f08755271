//! `[msrp]`.

use serde::Deserialize;

/// `[msrp]`: the MSRP switch for session-mode group chat.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MsrpConfig {
    pub enabled: bool,
    pub max_message_size: u64,
    pub max_chunk_size: usize,
    pub queue_depth: usize,
    pub delivery_timeout_s: u64,
    pub bind_timeout_s: u64,
    pub connection_grace_s: u64,
    pub max_connections: usize,
    /// Chunks per second one MSRP connection may send (0: unlimited); beyond, the focus
    /// reads it more slowly (TCP flow control holds the sender back).
    pub max_chunk_rate: u32,
    /// Bytes per second one MSRP connection may send (0: unlimited), enforced the same way.
    pub max_bytes_rate: u64,
}

impl Default for MsrpConfig {
    fn default() -> Self {
        MsrpConfig {
            enabled: true,
            max_message_size: 4 * 1024 * 1024,
            max_chunk_size: 256 * 1024,
            queue_depth: 1024,
            delivery_timeout_s: 30,
            bind_timeout_s: 30,
            connection_grace_s: 10,
            max_connections: 4096,
            max_chunk_rate: 200,
            max_bytes_rate: 2 * 1024 * 1024,
        }
    }
}
