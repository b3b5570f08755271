//! One line of the journal, as JSON: `{"ts":..,"key":..,"instance":..,"op":..,...}`.
//!
//! Lines name their session by conference key (the URI user) and by the session actor's
//! instance number: two actors of one conference may overlap for an instant (one retiring,
//! one starting on another arbiter), and a late line of the old one must not touch the new
//! one's state.

use serde::{Deserialize, Serialize};

/// A journal line: when, which session, what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Wall-clock milliseconds since the Unix epoch.
    pub ts: u64,
    /// The conference key (user part of the conference URI).
    pub key: String,
    /// The session actor's instance number in the process that wrote the line.
    pub instance: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// What happened to a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Event {
    /// The session has its first participant (replaces whatever the key had).
    Open { info: SessionInfo },
    /// A participant is in (joined, called in, or being resumed after a restart).
    Join {
        pid: u64,
        participant: Box<ParticipantRecord>,
    },
    /// A participant's dialog changed: the focus's CSeq, the remote target, our last SDP.
    Update {
        pid: u64,
        local_cseq: u32,
        remote_target: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sdp: Option<String>,
    },
    /// A participant is gone.
    Leave { pid: u64 },
    /// The session ended (its last participant left, or it was ended).
    Close,
}

/// What a session is, enough to start it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The conference URI.
    pub uri: String,
    /// `predefined`, `adhoc` or `restarted`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contribution_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Hosts an ad-hoc session was given at creation (its creator); pre-defined groups take
    /// their roles from the configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// When the session began (its charging session_start), wall-clock milliseconds.
    pub started_ms: u64,
    /// Distinct participants that joined so far (for the charging session_stop).
    #[serde(default)]
    pub participants_total: u32,
}

/// One participant and its dialog, as the focus keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantRecord {
    /// As the others see it (an anonymous alias when hidden).
    pub identity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// The real address of record.
    pub real: String,
    /// `host`, `moderator` or `participant`.
    pub role: String,
    /// How the focus knew `real` (`asserted`, `trusted-from`, `claimed`...); a record
    /// without it is an unproven claim.
    #[serde(default)]
    pub proof: String,
    #[serde(default)]
    pub hidden: bool,
    /// The focus called it (REFER, URI list) rather than it calling in.
    #[serde(default)]
    pub dialed_out: bool,
    /// When it joined, wall-clock milliseconds.
    pub joined_ms: u64,
    /// The session-wide count of participants after this one joined.
    #[serde(default)]
    pub participants_total: u32,
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// From/To values of the focus's requests in the dialog, without tags.
    pub local_addr: String,
    pub remote_addr: String,
    pub remote_target: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    /// `udp` or `tcp`: the transport the dialog came in on.
    pub transport: String,
    /// The address its requests came from.
    pub peer: String,
    /// The last SDP the focus sent in the dialog (the next offer keeps its `o=` and m-lines).
    pub sdp: String,
    /// The participant accepts UPDATE (session refreshes use it).
    #[serde(default)]
    pub peer_update: bool,
}
