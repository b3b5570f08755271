//! SDP (RFC 8866): a small lossless model, its parser and serializer, and the focus's
//! offer/answer logic (RFC 3264).
//!
//! We write our own because the SDP crates drop or reject the MSRP (`m=message ... TCP/MSRP`)
//! and BFCP (`m=application ... TCP/BFCP`) lines a CPM focus lives on.
//!
//! | file | concept |
//! |---|---|
//! | `model.rs` | [`SessionDescription`], [`MediaDescription`] and one struct per line type |
//! | `attribute.rs` | [`Attribute`] (name + raw value, in order), [`Direction`], [`names`] |
//! | `parse.rs` | [`parse`], [`parse_with_limits`], [`Limits`] |
//! | `serialize.rs` | `Display` and [`SessionDescription::to_bytes`] (CRLF lines) |
//! | `syntax.rs` | RFC 8866 §9 lexical rules shared by the parser and [`SessionDescription::validate`] |
//! | `error.rs` | [`SdpError`] (received text), [`ValidationError`] (model we built) |
//! | `answer.rs` | [`answer`], [`offer`], [`MediaPolicy`], [`OfferError`] |
//! | `local_state.rs` | [`LocalSdpState`]: per-dialog `o=` id and version |
//!
//! # Losslessness
//!
//! - **Model → text → model** is the identity for every model that passes
//!   [`SessionDescription::validate`] (all parsed models do). Property-tested.
//! - **Text → model → text** is byte-identical when the input (1) ends every line, the last
//!   included, with CRLF and has no blank lines at the end, (2) separates the fields of the
//!   structured lines `o= c= t= r= z= m=` by single spaces with none trailing, and (3) writes
//!   ports, port counts, `t=`/`z=` times and `b=` values without leading zeros. Other
//!   input is accepted where noted in [`parse`] and normalised on output in exactly those
//!   respects. Always kept byte for byte: free text (`s= i= u= e= p= k=`), `o=` fields (the
//!   sess-id and version too), `c=` addresses, `r=`/`z=` typed times, attribute names and
//!   values, and the order of all repeated lines, unknown attributes included.
//!
//! # Offer/answer status codes
//!
//! [`OfferError::status_code`]: 400 for an offer that breaks RFC 8866 (does not parse, or an
//! enabled stream without `c=`); 488 for a valid offer the focus cannot use (`c=` network
//! type other than `IN`, address type other than `IP4`/`IP6`); 500 when our own policy or
//! configuration produced an invalid answer.

mod answer;
mod attribute;
mod error;
mod local_state;
mod model;
mod parse;
mod serialize;
mod syntax;

#[cfg(test)]
mod tests;

pub use answer::{
    answer, answer_body, offer, Answer, AnswerContext, DefaultDeclineAll, MediaDecision,
    MediaPolicy, OfferError, PolicyFault,
};
pub use attribute::{names, Attribute, Direction};
pub use error::{SdpError, ValidationError};
pub use local_state::LocalSdpState;
pub use model::{
    Bandwidth, Connection, MediaDescription, Origin, Repeat, SessionDescription, TimeDescription,
    ZoneAdjustment,
};
pub use parse::{parse, parse_with_limits, Limits};
