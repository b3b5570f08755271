//! RFC 4575 conference state: the `application/conference-info+xml` body of `Event: conference`
//! NOTIFYs.
//!
//! - [`model`]: the document as plain data (what the session layer builds).
//! - [`render`](render()): fast hand-written XML output, full or partial documents.
//! - [`parse`](parse()): bounded, namespace-aware parser (test UA, property tests).
//! - [`delta`](delta()) / [`apply`]: partial notifications and how a subscriber merges them;
//!   the per-subscription version rule is documented there.
//! - `datetime`, `escape`: the two small codecs the renderer needs (`xs:dateTime`, XML text).
//!
//! # Version rule
//!
//! The caller owns one `version` counter per subscription. The first NOTIFY of a subscription
//! carries a full document; every later NOTIFY (full or partial) carries the counter plus
//! exactly one. A subscriber seeing a gap or a decrease re-subscribes for full state ([`apply`]
//! returns [`ApplyError::VersionGap`]). Documents from [`delta()`] must get their `version` set
//! per subscription before rendering.

mod datetime;
mod delta;
mod escape;
pub mod model;
mod parse;
mod render;

#[cfg(test)]
mod tests;

pub use datetime::{format_rfc3339, parse_datetime, to_rfc3339};
pub use delta::{apply, delta, users_delta, ApplyError};
pub use model::{
    AvailableMedia, ConferenceDescription, ConferenceInfo, ConferenceState, DisconnectionMethod,
    DocState, ElemState, Endpoint, EndpointStatus, Execution, HostInfo, JoiningMethod, Media,
    MediaStatus, SipDialogInfo, UriEntry, User, Users, FOCUS_NAMESPACE, MIME_TYPE, NAMESPACE,
};
pub use parse::{parse, Limits, ParseError};
pub use render::{render, to_bytes, Unversioned};
