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

mod attribute;
mod error;
mod model;
mod parse;
mod serialize;
mod syntax;

#[cfg(test)]
mod tests;

pub use attribute::{names, Attribute, Direction};
pub use error::{SdpError, ValidationError};
pub use model::{
    Bandwidth, Connection, MediaDescription, Origin, Repeat, SessionDescription, TimeDescription,
    ZoneAdjustment,
};
pub use parse::{parse, parse_with_limits, Limits};
