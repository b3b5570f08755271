//! Charging: offline records (CDRs) written durably, and the online credit check.
//!
//! Offline:
//! - [`record`]: the schema of one line, [`Record`] in an [`Entry`]; [`SCHEMA_DOC`] describes
//!   it for operators.
//! - `timestamp`: the `ts` field (RFC 3339 UTC, milliseconds).
//!
//! Online:
//! - [`CreditControl`] (`credit`): the seam, with [`NoCredit`] and the [`CreditGate`] sessions
//!   use (402 when denied).
//! - [`HttpCreditControl`] (`credit_http`): the check as a JSON POST, over `http`, a minimal
//!   HTTP/1.1 client.
//!
//! Nothing here decides *when* to charge: the session layer asks for credit; this module
//! makes the answers typed.

mod credit;
mod credit_http;
mod http;
pub mod record;
mod timestamp;

#[cfg(test)]
mod credit_tests;
#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod record_tests;

pub use credit::{
    BoxFuture, CreditControl, CreditDecision, CreditGate, CreditKind, CreditRequest, NoCredit,
};
pub use credit_http::HttpCreditControl;
pub use http::{HttpUrl, UrlError};
pub use record::{
    DisconnectionMethod, Entry, JoiningMethod, MessageMode, Record, SessionKind, SCHEMA_DOC,
};
pub use timestamp::{whole_seconds, Timestamp};

use thiserror::Error;

/// Why charging could not start.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChargingError {
    #[error("invalid credit-control URL: {0}")]
    Url(String),
}
