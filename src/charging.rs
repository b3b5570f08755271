//! Charging: offline records (CDRs) written durably, and the online credit check.
//!
//! Offline:
//! - [`record`]: the schema of one line, [`Record`] in an [`Entry`]; [`SCHEMA_DOC`] describes
//!   it for operators.
//! - `timestamp`: the `ts` field (RFC 3339 UTC, milliseconds).
//! - [`ChargingHandle`] (`handle`): what sessions hold; `record()` never blocks.
//! - [`ChargingWriter`] (`writer`): the thread that numbers, encodes, appends, rotates and
//!   syncs; `backlog`: records waiting for the file; `files`: the rotating file set on disk.
//!
//! Online:
//! - [`CreditControl`] (`credit`): the seam, with [`NoCredit`] and the [`CreditGate`] sessions
//!   use (402 when denied).
//! - [`HttpCreditControl`] (`credit_http`): the check as a JSON POST, over `http`, a minimal
//!   HTTP/1.1 client.
//!
//! Nothing here decides *when* to charge: the session layer reports events and asks for
//! credit; this module makes the records durable and the answers typed.

mod backlog;
mod credit;
mod credit_http;
pub(crate) use credit_http::base64;
mod files;
mod handle;
mod http;
pub mod record;
mod timestamp;
mod writer;

#[cfg(test)]
mod tests;

pub use credit::{
    BoxFuture, CreditControl, CreditDecision, CreditGate, CreditKind, CreditRequest, NoCredit,
};
pub use credit_http::HttpCreditControl;
pub use handle::{ChargingHandle, ChargingStats};
pub use http::{HttpUrl, UrlError};
pub use record::{
    DisconnectionMethod, Entry, JoiningMethod, MessageMode, Record, SessionKind, StopReason,
    SCHEMA_DOC,
};
pub use timestamp::{whole_seconds, Timestamp};
pub use writer::ChargingWriter;

use thiserror::Error;

/// Why charging could not start, or why records are not (yet) durable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChargingError {
    #[error("invalid charging configuration: {0}")]
    Config(String),
    #[error("the charging writer needs a tokio runtime")]
    NoRuntime,
    #[error("invalid credit-control URL: {0}")]
    Url(String),
    #[error("credit-control client: {0}")]
    CreditClient(String),
    #[error("{records} charging record(s) could not be written yet (kept in memory)")]
    Unwritten { records: usize },
    #[error("charging file sync failed: {0}")]
    Sync(std::io::ErrorKind),
    #[error("the charging writer has stopped")]
    Stopped,
}
