//! The charging writer: one blocking thread (tokio's blocking pool) that turns records into
//! JSON lines on disk.
//!
//! It runs on a blocking thread rather than as an async task because everything it does is
//! file I/O, and an `fsync` can take tens of milliseconds: that must not stall a runtime
//! worker that serves SIP. Its loop: wait for a command (or a timer), drain whatever else is
//! queued (one batch), number and encode the records, append them with one write per file,
//! then sync per the policy. A record that cannot be written stays in a bounded backlog and
//! is retried with the next batch or the retry timer.

use super::backlog::Backlog;
use super::files::{FileSet, Op};
use super::handle::{ChargingHandle, Command, Counters};
use super::record::{Entry, Record};
use super::timestamp::Timestamp;
use super::ChargingError;
use crate::config::{Config, FsyncPolicy};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Most records taken from the channel before they are written and synced: under a flood,
/// the fsync policy still applies per batch.
const MAX_BATCH: usize = 4096;

/// A backlog left by a failed write is retried this long after the failure, even when no new
/// record arrives to trigger a batch.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// At most one warning per this interval while the file keeps failing (each failure is
/// counted regardless).
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// The writer's state. Constructed and run by [`ChargingWriter::start`].
pub struct ChargingWriter {
    /// `focus.instance_id`, in every record.
    instance: String,
    files: FileSet,
    /// Where the files are, for log lines.
    path: PathBuf,
    fsync: FsyncPolicy,
    fsync_interval: Duration,
    max_backlog: usize,
    /// Encoded records not yet (completely) in the file.
    backlog: Backlog,
    /// The `seq` of the next record.
    next_seq: u64,
    /// Data written since the last successful sync.
    unsynced: bool,
    last_sync: Instant,
    /// The last file operation failed: the backlog stops absorbing writes and is retried.
    failing: bool,
    last_failure: Instant,
    last_warning: Option<Instant>,
    counters: Arc<Counters>,
    /// Reused buffer for one write.
    scratch: Vec<u8>,
}

/// What the loop does after a batch.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

impl ChargingWriter {
    /// Starts the writer for `config.charging` (records carry `config.focus.instance_id`).
    ///
    /// Never fails for I/O reasons: a file that cannot be opened yet is logged, counted and
    /// retried, so a charging disk that mounts late does not keep the focus down. With an
    /// empty `path` the handle drops every record (counted) and the task ends at once.
    pub fn start(config: &Config) -> Result<(ChargingHandle, JoinHandle<()>), ChargingError> {
        let c = &config.charging;
        let issues = c.validate();
        if !issues.is_empty() {
            let text = issues.iter().map(|i| i.to_string()).collect::<Vec<_>>();
            return Err(ChargingError::Config(text.join("; ")));
        }
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| ChargingError::NoRuntime)?;
        let counters = Arc::new(Counters::default());
        if c.path.is_empty() {
            tracing::info!("offline charging disabled (charging.path is empty)");
            let handle = ChargingHandle::new(None, counters);
            return Ok((handle, runtime.spawn(async {})));
        }
        let path = PathBuf::from(&c.path);
        let now = Instant::now();
        let writer = ChargingWriter {
            instance: config.focus.instance_id.clone(),
            files: FileSet::new(path.clone(), c.max_file_bytes, c.keep_files),
            path,
            fsync: c.fsync,
            fsync_interval: Duration::from_millis(c.fsync_interval_ms),
            max_backlog: c.max_backlog,
            backlog: Backlog::default(),
            next_seq: 1,
            unsynced: false,
            last_sync: now,
            failing: false,
            last_failure: now,
            last_warning: None,
            counters: counters.clone(),
            scratch: Vec::new(),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let join = runtime.spawn_blocking(move || writer.run(rx));
        Ok((ChargingHandle::new(Some(tx), counters), join))
    }

    fn run(mut self, rx: Receiver<Command>) {
        self.next_seq = self.files.last_seq().map_or(1, |s| s.saturating_add(1));
        tracing::info!(path = %self.path.display(), next_seq = self.next_seq, "charging writer started");
        // Open at once, so a bad path shows in the log at start rather than at the first call.
        if let Err(e) = self.files.open(true) {
            self.fail(Op::Open, &e);
        }
        loop {
            let received = match self.wake_in() {
                Some(wait) => rx.recv_timeout(wait),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(first) => {
                    if self.batch(first, &rx) == Flow::Stop {
                        self.abandon();
                        self.refuse_the_rest(&rx);
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.on_timer(),
                Err(RecvTimeoutError::Disconnected) => {
                    // Every handle is gone: nobody can ask for shutdown, so do its work.
                    if let Err(e) = self.settle() {
                        tracing::error!(error = %e, "charging writer stopped with records unwritten");
                    }
                    self.abandon();
                    return;
                }
            }
        }
    }

    /// On exit: what the file still refused is lost; count it.
    fn abandon(&mut self) {
        for _ in 0..self.backlog.len() {
            self.counters.drop_record("closed");
        }
        self.backlog = Backlog::default();
        self.publish();
    }

    /// After shutdown: what other handles sent meanwhile is counted, not silently lost
    /// (bounded, so a handle that keeps sending cannot hold the shutdown up).
    fn refuse_the_rest(&self, rx: &Receiver<Command>) {
        for command in rx.try_iter().take(MAX_BATCH) {
            match command {
                Command::Record(..) => self.counters.drop_record("closed"),
                Command::Flush(reply) | Command::Shutdown(reply) => {
                    let _ = reply.send(Err(ChargingError::Stopped));
                }
            }
        }
    }

    /// Handles `first` and everything queued behind it (up to [`MAX_BATCH`] records).
    fn batch(&mut self, first: Command, rx: &Receiver<Command>) -> Flow {
        // Retry a failed backlog before taking more, so a file that became writable again
        // takes this batch instead of it being dropped against a full backlog.
        if self.failing && !self.backlog.is_empty() {
            self.write_backlog();
        }
        let mut waiters: Vec<oneshot::Sender<Result<(), ChargingError>>> = Vec::new();
        let mut stop = false;
        let mut records = 0;
        let mut next = Some(first);
        while let Some(command) = next {
            match command {
                Command::Record(ts, record) => {
                    self.enqueue(ts, record);
                    records += 1;
                }
                Command::Flush(reply) => waiters.push(reply),
                Command::Shutdown(reply) => {
                    waiters.push(reply);
                    stop = true;
                }
            }
            next = if records < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if waiters.is_empty() {
            self.write_backlog();
            self.sync_per_policy();
            self.publish();
        } else {
            let result = self.settle();
            for waiter in waiters {
                let _ = waiter.send(result.clone());
            }
        }
        if stop {
            tracing::info!(path = %self.path.display(), "charging writer stopped");
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    /// Numbers and encodes a record, or drops it when the backlog is full.
    fn enqueue(&mut self, ts: Timestamp, record: Record) {
        // A dropped record still uses its number: the gap tells the reader.
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        if self.backlog.len() >= self.max_backlog && !self.failing {
            self.write_backlog();
        }
        if self.backlog.len() >= self.max_backlog {
            self.counters.drop_record("backlog");
            self.warn("charging backlog full; dropping records", None);
            return;
        }
        let kind = record.type_name();
        let entry = Entry {
            seq,
            ts,
            instance: self.instance.clone(),
            record,
        };
        match serde_json::to_vec(&entry) {
            Ok(mut bytes) => {
                bytes.push(b'\n');
                self.backlog.push(kind, bytes);
            }
            Err(e) => {
                // Plain data cannot fail to encode; if it ever does, count it as lost.
                self.counters.drop_record("encode");
                crate::warn_limited!(error = %e, kind, "charging record not encodable");
            }
        }
    }

    /// Appends the backlog: one write per file, rotating before a line that would not fit.
    fn write_backlog(&mut self) {
        let durable = self.fsync != FsyncPolicy::Never;
        // A failed rotation is retried with the next batch; meanwhile lines go on into the
        // current file: a file over its size limit is better than a lost record.
        let mut may_rotate = true;
        while let Some(front_len) = self.backlog.front_len() {
            let mid_line = self.backlog.is_mid_line();
            if let Err(e) = self.files.open(!mid_line) {
                self.fail(Op::Open, &e);
                return;
            }
            if !mid_line && may_rotate && !self.files.is_empty() && !self.files.fits(front_len) {
                match self.files.rotate(durable) {
                    Ok(()) => {
                        if durable {
                            self.unsynced = false;
                        }
                    }
                    Err(e) => {
                        self.fail(Op::Rotate, &e);
                        may_rotate = false;
                    }
                }
                continue;
            }
            self.scratch.clear();
            let files = &self.files;
            self.backlog
                .gather(&mut self.scratch, |len| !may_rotate || files.fits(len));
            let (done, result) = self.files.append(&self.scratch);
            if done > 0 {
                self.unsynced = true;
            }
            let counters = &self.counters;
            self.backlog.complete(done, |kind| {
                counters.written.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("focus_charging_records_written_total", "type" => kind)
                    .increment(1);
            });
            if let Err(e) = result {
                self.fail(Op::Write, &e);
                self.files.close();
                return;
            }
        }
        if self.failing {
            tracing::info!(path = %self.path.display(), "charging file writable again");
        }
        self.failing = false;
    }

    fn sync_per_policy(&mut self) {
        let due = match self.fsync {
            FsyncPolicy::Always => true,
            FsyncPolicy::Interval => self.last_sync.elapsed() >= self.fsync_interval,
            FsyncPolicy::Never => false,
        };
        if due {
            let _ = self.sync_now();
        }
    }

    fn sync_now(&mut self) -> Result<(), ChargingError> {
        if !self.unsynced {
            return Ok(());
        }
        // A write error closed the file; what reached it is synced through a new descriptor.
        let result = self
            .files
            .open(!self.backlog.is_mid_line())
            .and_then(|()| self.files.sync());
        match result {
            Ok(()) => {
                self.unsynced = false;
                self.last_sync = Instant::now();
                Ok(())
            }
            Err(e) => {
                let kind = e.kind();
                self.fail(Op::Sync, &e);
                Err(ChargingError::Sync(kind))
            }
        }
    }

    /// Write and sync everything: for flush, shutdown and the last handle going away.
    fn settle(&mut self) -> Result<(), ChargingError> {
        self.write_backlog();
        let synced = self.sync_now();
        self.publish();
        if !self.backlog.is_empty() {
            return Err(ChargingError::Unwritten {
                records: self.backlog.len(),
            });
        }
        synced
    }

    /// How long the loop may wait for a command before a timer is due.
    fn wake_in(&self) -> Option<Duration> {
        let sync = (self.fsync == FsyncPolicy::Interval && self.unsynced)
            .then(|| self.fsync_interval.saturating_sub(self.last_sync.elapsed()));
        let retry = (!self.backlog.is_empty())
            .then(|| RETRY_INTERVAL.saturating_sub(self.last_failure.elapsed()));
        match (sync, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timer(&mut self) {
        if !self.backlog.is_empty() && self.last_failure.elapsed() >= RETRY_INTERVAL {
            self.write_backlog();
        }
        self.sync_per_policy();
        self.publish();
    }

    fn publish(&self) {
        let len = self.backlog.len();
        self.counters.backlog.store(len as u64, Ordering::Relaxed);
        metrics::gauge!("focus_charging_backlog").set(len as f64);
    }

    /// Counts a failed file operation and schedules the retry.
    fn fail(&mut self, op: Op, error: &std::io::Error) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("focus_charging_errors_total", "op" => op.label()).increment(1);
        self.failing = true;
        self.last_failure = Instant::now();
        self.warn("charging file operation failed", Some((op, error)));
    }

    /// Logs at most one warning per [`WARN_INTERVAL`]; the rest go to debug.
    fn warn(&mut self, message: &str, failure: Option<(Op, &std::io::Error)>) {
        let now = Instant::now();
        let loud = self
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= WARN_INTERVAL);
        let op = failure.map(|(op, _)| op.label()).unwrap_or("");
        let error = failure.map(|(_, e)| e.to_string()).unwrap_or_default();
        let path = self.path.display();
        let backlog = self.backlog.len();
        if loud {
            self.last_warning = Some(now);
            tracing::warn!(%path, op, %error, backlog, "{message}");
        } else {
            tracing::debug!(%path, op, %error, backlog, "{message}");
        }
    }
}
