//! [`ChargingHandle`]: how the rest of the focus hands records to the writer.
//!
//! The channel is unbounded on purpose. Records come from signalling events (a join, a leave,
//! a MESSAGE), each already admitted through bounded queues (transaction shards, session
//! mailboxes), so their rate is bounded by signalling capacity; a bounded channel would make
//! `record` either block a session actor or drop a charging record while the writer is fine.
//! Memory stays bounded because the writer drains the channel continuously into its own
//! backlog, which *is* bounded (`max_backlog`) and counts what it cannot keep.

use super::record::Record;
use super::timestamp::Timestamp;
use super::ChargingError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use tokio::sync::oneshot;

/// What the handle sends to the writer.
pub(crate) enum Command {
    Record(Timestamp, Record),
    /// Write and sync everything received so far, then answer.
    Flush(oneshot::Sender<Result<(), ChargingError>>),
    /// As `Flush`, then stop.
    Shutdown(oneshot::Sender<Result<(), ChargingError>>),
}

/// Counters shared by the handles and the writer (metrics are write-only; tests and health
/// checks read these).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) written: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) backlog: AtomicU64,
}

impl Counters {
    /// Counts a record that will never be written.
    pub(crate) fn drop_record(&self, reason: &'static str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("focus_charging_records_dropped_total", "reason" => reason).increment(1);
    }
}

/// A snapshot of the writer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChargingStats {
    /// Records on disk (written; synced per the fsync policy).
    pub written: u64,
    /// Records that will never be written: charging disabled, backlog full, writer stopped.
    pub dropped: u64,
    /// Failed file operations (open, write, rotate, sync).
    pub errors: u64,
    /// Records waiting in memory for the file.
    pub backlog: u64,
}

/// Hands records to the charging writer. Cheap to clone; usable from any thread.
#[derive(Debug, Clone)]
pub struct ChargingHandle {
    /// `None`: offline charging is disabled (records are counted and dropped).
    tx: Option<Sender<Command>>,
    counters: Arc<Counters>,
}

impl ChargingHandle {
    pub(crate) fn new(tx: Option<Sender<Command>>, counters: Arc<Counters>) -> ChargingHandle {
        ChargingHandle { tx, counters }
    }

    /// A handle that drops (and counts) every record: offline charging is off.
    pub fn disabled() -> ChargingHandle {
        ChargingHandle::new(None, Arc::default())
    }

    /// Whether records go to a file.
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Records an event that happens now. Never blocks.
    pub fn record(&self, record: Record) {
        self.record_at(Timestamp::now(), record);
    }

    /// Records an event with the time it happened (a pure state machine knows its `now`).
    pub fn record_at(&self, ts: impl Into<Timestamp>, record: Record) {
        let Some(tx) = &self.tx else {
            self.counters.drop_record("disabled");
            return;
        };
        if tx.send(Command::Record(ts.into(), record)).is_err() {
            self.counters.drop_record("closed");
        }
    }

    /// Returns once every record recorded before the call (by any handle) is written and
    /// synced, or says how many are still only in memory.
    pub async fn flush(&self) -> Result<(), ChargingError> {
        self.ask(Command::Flush).await
    }

    /// As [`flush`](Self::flush), then stops the writer: the last step of a graceful shutdown.
    /// Records recorded afterwards are counted as dropped; so are records the file still
    /// refuses at this point (the error says how many).
    pub async fn shutdown(&self) -> Result<(), ChargingError> {
        self.ask(Command::Shutdown).await
    }

    /// The writer's counters.
    pub fn stats(&self) -> ChargingStats {
        let c = &self.counters;
        ChargingStats {
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            backlog: c.backlog.load(Ordering::Relaxed),
        }
    }

    async fn ask(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), ChargingError>>) -> Command,
    ) -> Result<(), ChargingError> {
        let Some(tx) = &self.tx else {
            return Ok(());
        };
        let (reply, answer) = oneshot::channel();
        tx.send(command(reply))
            .map_err(|_| ChargingError::Stopped)?;
        answer.await.map_err(|_| ChargingError::Stopped)?
    }
}
