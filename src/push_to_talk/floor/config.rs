//! What the caller decides for one conference's floor control: the floors (from SDP, RFC 8856
//! `a=floorid:<id> mstrm:<label>`), the transport, and the policy knobs of a PTT group.

use crate::push_to_talk::bfcp::{VERSION_RELIABLE, VERSION_UNRELIABLE};
use std::time::Duration;

/// How the conference's BFCP connections run (RFC 8856 `TCP/BFCP` or `UDP/BFCP` and their TLS
/// forms). It fixes the version of what the server sends, the R bit, and the Transaction ID of
/// server-initiated messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// TCP or TLS: version 1, R clear, server-initiated messages carry Transaction ID 0.
    #[default]
    Reliable,
    /// UDP or DTLS: version 2, R set on responses, server-initiated messages carry a fresh
    /// non-zero Transaction ID (the client acknowledges it). Retransmission until that
    /// acknowledgement is the transport driver's job, not this machine's.
    Unreliable,
}

impl Transport {
    pub fn version(self) -> u8 {
        match self {
            Transport::Reliable => VERSION_RELIABLE,
            Transport::Unreliable => VERSION_UNRELIABLE,
        }
    }
}

/// One floor, tied to the media stream it controls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloorConfig {
    pub id: u16,
    /// The SDP `a=label` of the media stream (`mstrm:` in RFC 8856 `a=floorid`), so the media
    /// plane knows whose audio to forward.
    pub media_label: String,
}

impl FloorConfig {
    pub fn new(id: u16, media_label: impl Into<String>) -> FloorConfig {
        FloorConfig {
            id,
            media_label: media_label.into(),
        }
    }
}

/// The floor control policy of one conference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The `a=confid` given to clients; messages naming another conference get Error 1.
    pub conference_id: u32,
    pub transport: Transport,
    pub floors: Vec<FloorConfig>,
    /// Longest a holder keeps a floor before it is Revoked (PoC "talk burst too long");
    /// `None` for no limit.
    pub max_talk_burst: Option<Duration>,
    /// Ongoing requests one beneficiary may have for one floor (Error 8 beyond).
    pub max_requests_per_floor: usize,
    /// Requests waiting (queued or pending a chair) per floor; a request beyond is Denied
    /// with STATUS-INFO "queue full". `None` for no limit.
    pub max_queue: Option<usize>,
    /// Order the queue by PRIORITY (higher first, FIFO within a priority) instead of pure FIFO.
    pub priority_ordering: bool,
    /// Requests from non-chairs wait as Pending until a chair accepts or grants them.
    pub moderated: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            conference_id: 0,
            transport: Transport::Reliable,
            floors: Vec::new(),
            max_talk_burst: None,
            max_requests_per_floor: 1,
            max_queue: None,
            priority_ordering: true,
            moderated: false,
        }
    }
}

/// A participant known to floor control (`a=userid` from SDP), with what the server tells
/// others about it in BENEFICIARY-INFORMATION.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// A chair (moderator) may grant, deny and revoke with ChairAction, release others'
    /// requests, and request the floor for someone else.
    pub chair: bool,
    pub display_name: Option<String>,
    pub uri: Option<String>,
}
