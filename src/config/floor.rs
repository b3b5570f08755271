//! `[floor]`.

use serde::Deserialize;

/// `[floor]`: the BFCP floor control server (RFC 8855) of talk-burst groups.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FloorControlConfig {
    /// BFCP over TCP listener, `IP:PORT`; empty: the SIP address with a port the OS picks
    /// (announced in SDP).
    pub listen: String,
    /// Longest talk burst before the floor is revoked, in seconds; 0 for no limit.
    pub max_talk_burst_s: u64,
    /// Requests waiting per floor; more are denied.
    pub max_queue: usize,
    /// Ongoing requests one participant may have per floor.
    pub max_requests_per_user: usize,
    /// Serve higher PRIORITY first (else strictly first come, first served).
    pub priority_ordering: bool,
    /// Requests wait for a chair (a host or moderator) to accept or grant them.
    pub moderated: bool,
    /// Most BFCP connections at once.
    pub max_connections: usize,
    /// A connection that names no existing conference this long after opening is closed,
    /// in seconds.
    pub bind_timeout_s: u64,
    /// Largest BFCP message accepted, in bytes.
    pub max_message_size: usize,
    /// Messages queued toward one connection; a client that falls this far behind is
    /// disconnected.
    pub write_queue: usize,
}

impl Default for FloorControlConfig {
    fn default() -> Self {
        FloorControlConfig {
            listen: String::new(),
            max_talk_burst_s: 30,
            max_queue: 16,
            max_requests_per_user: 1,
            priority_ordering: true,
            moderated: false,
            max_connections: 4096,
            bind_timeout_s: 30,
            max_message_size: 65536,
            write_queue: 256,
        }
    }
}
