//! Floor control for push-to-talk voice groups: the focus is a BFCP floor control server
//! (RFC 8855, negotiated in SDP per RFC 8856).
//!
//! [`bfcp`] is the sans-IO codec; [`machine`] is the pure floor state machine of one
//! conference ([`FloorControl`]): decoded requests and time in, messages for users and floor
//! events for the media plane out. A driver owns the sockets and the clock: it decodes,
//! calls the machine, encodes what comes out, and forwards media only from floor holders.

pub mod bfcp;
pub mod machine;

pub use machine::{
    Config, FloorConfig, FloorControl, FloorEvent, Output, RevokeReason, Transport, UserInfo,
};
