//! Floor control for push-to-talk voice groups: the focus is a BFCP floor control server
//! (RFC 8855, negotiated in SDP per RFC 8856).
//!
//! [`bfcp`] is the sans-IO codec; [`machine`] is the pure floor state machine of one
//! conference ([`FloorControl`]): decoded requests and time in, messages for users and floor
//! events for the media plane out. [`sdp`] answers BFCP streams (RFC 8856). [`server`] is the
//! TCP listener, a thin driver: it decodes, hands messages to the conference's session (which
//! runs the machine) and writes what comes back.

pub mod bfcp;
pub mod machine;
pub mod sdp;
pub mod server;

pub use machine::{
    Config, FloorConfig, FloorControl, FloorEvent, Output, RevokeReason, Transport, UserInfo,
};
pub use server::{Busy, Connection, FloorServer, FloorSink, ServerSettings};
