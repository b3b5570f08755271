//! Push-to-talk voice groups, all of it in one folder: the focus is a BFCP floor control
//! server (RFC 8855, negotiated in SDP per RFC 8856) and forwards the floor holder's RTP to
//! everyone else.
//!
//! - [`bfcp`]: the sans-IO BFCP codec
//! - [`floor`]: the pure floor state machine of one conference ([`FloorControl`]): decoded
//!   requests and time in, messages for users and floor events for the media plane out
//! - [`sdp`]: answers BFCP streams (RFC 8856)
//! - [`server`]: the BFCP TCP listener, a thin driver: it decodes, hands messages to the
//!   conference's session (which runs the machine) and writes what comes back
//! - [`rtp`]: the RTP plane (port pairs, legs, forwarding, its settings [`rtp::RtpSettings`])
//! - [`talk_burst`]: a group session's talk bursts as pure state (the floor machine and the
//!   participants' RTP legs), and the planes a session is given ([`talk_burst::TalkPlanes`])
//!
//! The session's own glue stays where Rust privacy puts it: `session/state/push_to_talk.rs`
//! (the `SessionState` methods that feed [`talk_burst::Talk`]) and
//! `session/actor/push_to_talk.rs` (the actor's driver of the planes). The `[rtp]` and
//! `[floor]` sections of the configuration (and a group's `talk` mode) are data in `config/`.

pub mod bfcp;
pub mod floor;
pub mod rtp;
pub mod sdp;
pub mod server;
pub mod talk_burst;

pub use floor::{
    Config, FloorConfig, FloorControl, FloorEvent, Output, RevokeReason, Transport, UserInfo,
};
pub use server::{Busy, Connection, FloorServer, FloorSink, ServerSettings};
