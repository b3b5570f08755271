//! `[sip]`.

use serde::Deserialize;

/// `[sip]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    pub max_message_size: usize,
    pub max_headers: usize,
    /// Largest response sent as one UDP datagram: a response goes back over its request's
    /// transport (RFC 3261 §18.2.2), and a final one larger is replaced by `500`.
    pub max_datagram_size: usize,
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    pub max_transactions: usize,
    pub force_rport: bool,
    pub max_tcp_connections: usize,
    pub tcp_idle_timeout_s: u64,
    pub tcp_write_queue: usize,
    /// Open TCP (and TLS) connections from one untrusted address.
    pub max_tcp_connections_per_source: usize,
    /// Longest time from the first byte of a message to its last on a stream (slowloris).
    pub tcp_message_timeout_s: u64,
    /// Longest time one write may wait for a peer that does not read.
    pub tcp_write_timeout_s: u64,
    /// An inbound connection from an untrusted address that sends no byte this long is
    /// closed: a silent connection holds a slot for seconds, not `tcp_idle_timeout_s`.
    pub tcp_first_byte_timeout_ms: u64,
    /// Percent of `max_tcp_connections` only the trusted core may use: outsiders filling the
    /// rest never lock the core out (a percentage stays valid whatever the cap).
    pub tcp_trusted_reserve_pct: u8,
    /// When the untrusted share is full, a new connection closes the oldest untrusted one
    /// that never carried an admitted participant or member subscription (so members still
    /// get in); off: the new connection is refused.
    pub tcp_evict_unadmitted: bool,
    pub queue_depth: usize,
    pub outbound_proxy: String,
    pub advertise: String,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            max_message_size: 65535,
            max_headers: 256,
            max_datagram_size: 65_507,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            max_transactions: 1_000_000,
            force_rport: true,
            max_tcp_connections: 4096,
            tcp_idle_timeout_s: 600,
            tcp_write_queue: 1024,
            max_tcp_connections_per_source: 64,
            tcp_message_timeout_s: 10,
            tcp_write_timeout_s: 10,
            tcp_first_byte_timeout_ms: 5000,
            tcp_trusted_reserve_pct: 10,
            tcp_evict_unadmitted: true,
            queue_depth: 16_384,
            outbound_proxy: String::new(),
            advertise: String::new(),
        }
    }
}
