//! The membership journal: what a restarted focus needs to resume its live groups after a
//! crash (issue 8, crash recovery).
//!
//! Sessions report, as they happen, that they opened, that a participant joined (with its
//! dialog: Call-ID, tags, remote target, route set, CSeq, our last SDP), that a dialog changed
//! (target refresh, session refresh) and that a participant left or the session closed. The
//! writer appends each as one JSON line and keeps the live state in memory, so it can compact
//! the file to just that state whenever it grows past `journal.max_bytes`: append-only and
//! bounded. A heartbeat keeps the file's modification time fresh while the focus runs, so
//! after a crash the file says when the focus died.
//!
//! - [`record`]: the line schema ([`Line`], [`Event`], [`SessionInfo`], [`ParticipantRecord`])
//! - [`replay`]: applies lines to the live state ([`Live`]) and reads a journal back
//! - [`writer`]: the thread that appends, syncs, compacts and beats ([`JournalHandle`])
//!
//! What is done with a journal read at start (charging records for the interrupted part,
//! re-INVITEs to the participants) is the server's and the sessions' business.

pub mod record;
pub mod replay;
mod writer;

#[cfg(test)]
mod tests;

pub use record::{Event, Line, ParticipantRecord, SessionInfo};
pub use replay::{read, Journal, Live, LiveSession};
pub use writer::{JournalHandle, JournalLock};

use thiserror::Error;

/// Why the journal could not be started.
#[derive(Debug, Error)]
pub enum JournalError {
    #[error("cannot write journal {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Another process holds the journal: starting would resume (and then close) its live
    /// sessions under its feet.
    #[error("journal {path} is in use by another focus process (lock file {lock} is held); refusing to start")]
    Locked { path: String, lock: String },
}
