//! Charging: offline records (CDRs) written durably, and the online credit check.
//!
//! Offline:
//! - [`record`]: the schema of one line, [`Record`] in an [`Entry`]; [`SCHEMA_DOC`] describes
//!   it for operators.
//! - `timestamp`: the `ts` field (RFC 3339 UTC, milliseconds).

pub mod record;
mod timestamp;

#[cfg(test)]
mod record_tests;

pub use record::{
    DisconnectionMethod, Entry, JoiningMethod, MessageMode, Record, SessionKind, SCHEMA_DOC,
};
pub use timestamp::{whole_seconds, Timestamp};
