//! The journal writer: one thread that appends lines, syncs them per the fsync policy, keeps
//! the live state to compact the file with, and touches the file every second (heartbeat).
//!
//! A thread of its own (not a runtime worker): everything it does is file I/O, and an
//! `fsync` can take tens of milliseconds. Sessions hand it lines through an unbounded
//! channel for the same reason charging does (see `charging::handle`): lines come from
//! signalling events already admitted through bounded queues, so their rate is bounded by
//! signalling, and a session actor must never block on the disk.

use super::record::{Event, Line};
use super::replay::Live;
use super::JournalError;
use crate::config::{FsyncPolicy, JournalConfig};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;

/// How often the file's modification time is refreshed while the focus runs: after a crash
/// it tells, to within this much, when the focus died.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// Most lines taken from the channel before they are written and synced.
const MAX_BATCH: usize = 4096;

enum Command {
    Line(Line),
    /// Write and sync everything received so far, then answer.
    Flush(oneshot::Sender<()>),
    /// As `Flush`, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// Hands journal lines to the writer. Cheap to clone; never blocks.
#[derive(Debug, Clone, Default)]
pub struct JournalHandle {
    /// `None`: journaling is disabled.
    tx: Option<Sender<Command>>,
}

impl JournalHandle {
    /// A handle that writes nothing (no `journal.path`).
    pub fn disabled() -> JournalHandle {
        JournalHandle { tx: None }
    }

    /// Starts the writer for `config`, beginning with the state `live` (what is being
    /// recovered): the file is rewritten with just that state at once, so what a previous
    /// process left and nobody resumes is gone. A disabled journal (empty path) starts
    /// nothing. Takes the journal's lock ([`JournalLock`]); a caller that read the journal
    /// first takes it before reading and uses [`start_locked`](Self::start_locked).
    pub fn start(config: &JournalConfig, live: Live) -> Result<JournalHandle, JournalError> {
        if config.path.is_empty() {
            return Ok(JournalHandle::disabled());
        }
        let lock = JournalLock::acquire(Path::new(&config.path))?;
        JournalHandle::start_locked(config, live, lock)
    }

    /// [`start`](Self::start) under a lock already held; the writer keeps it until it stops.
    pub fn start_locked(
        config: &JournalConfig,
        live: Live,
        lock: JournalLock,
    ) -> Result<JournalHandle, JournalError> {
        if config.path.is_empty() {
            return Ok(JournalHandle::disabled());
        }
        let path = PathBuf::from(&config.path);
        let mut writer = Writer {
            path: path.clone(),
            file: None,
            size: 0,
            live,
            fsync: config.fsync,
            fsync_interval: Duration::from_millis(config.fsync_interval_ms),
            max_bytes: config.max_bytes,
            compact_at: config.max_bytes,
            unsynced: false,
            last_sync: Instant::now(),
            last_beat: Instant::now(),
            failing: false,
            _lock: lock,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::Io {
                path: config.path.clone(),
                source,
            })?;
        }
        writer.compact().map_err(|source| JournalError::Io {
            path: config.path.clone(),
            source,
        })?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| JournalError::Io {
                path: config.path.clone(),
                source,
            })?;
        Ok(JournalHandle { tx: Some(tx) })
    }

    /// Whether lines go to a file.
    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Journals `event` of session `key` (actor `instance`), stamped now. Never blocks.
    pub fn record(&self, key: &str, instance: u64, event: Event) {
        let Some(tx) = &self.tx else { return };
        let ts = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let line = Line {
            ts,
            key: key.to_string(),
            instance,
            event,
        };
        if tx.send(Command::Line(line)).is_err() {
            metrics::counter!("focus_journal_errors_total", "op" => "closed").increment(1);
        }
    }

    /// Returns once every line recorded before the call is written and synced.
    pub async fn flush(&self) {
        self.ask(Command::Flush).await
    }

    /// As [`flush`](Self::flush), then stops the writer (graceful shutdown).
    pub async fn shutdown(&self) {
        self.ask(Command::Shutdown).await
    }

    async fn ask(&self, command: impl FnOnce(oneshot::Sender<()>) -> Command) {
        let Some(tx) = &self.tx else { return };
        let (reply, answer) = oneshot::channel();
        if tx.send(command(reply)).is_ok() {
            let _ = answer.await;
        }
    }
}

struct Writer {
    path: PathBuf,
    /// Open for appending; `None` after a failure (the next batch compacts from `live`).
    file: Option<File>,
    /// Bytes in the file.
    size: u64,
    /// The state the file describes: what a compaction writes.
    live: Live,
    fsync: FsyncPolicy,
    fsync_interval: Duration,
    max_bytes: u64,
    /// Compact when the file grows past this: `max_bytes`, or twice the last compacted size
    /// when the live state alone is that large (so compaction never repeats back to back).
    compact_at: u64,
    unsynced: bool,
    last_sync: Instant,
    last_beat: Instant,
    /// The last file operation failed (warn once per streak).
    failing: bool,
    /// Held while the writer runs: no second process writes this journal.
    _lock: JournalLock,
}

/// An exclusive advisory lock (`flock`) on `<journal>.lock`, held for as long as this value
/// lives. Not on the journal itself: compaction renames a new file over it, and a lock
/// belongs to the old inode. Advisory is enough: the other party is another focus process,
/// which takes the same lock before it reads the journal; the kernel drops the lock when the
/// process dies, even by `kill -9`, so a crash never leaves it stale.
#[derive(Debug)]
pub struct JournalLock {
    _file: File,
}

impl JournalLock {
    /// Locks the journal at `path` (creating its directory and the lock file), or
    /// [`JournalError::Locked`] at once when another process holds it.
    pub fn acquire(path: &Path) -> Result<JournalLock, JournalError> {
        let name = path.display().to_string();
        let io = |source| JournalError::Io {
            path: name.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let lock_path = lock_path(path);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(JournalLock { _file: file }),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(JournalError::Locked {
                path: name.clone(),
                lock: lock_path.display().to_string(),
            }),
            Err(e) => Err(io(e.into())),
        }
    }
}

/// The lock file of the journal at `path`.
pub fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

impl Writer {
    fn run(mut self, rx: Receiver<Command>) {
        loop {
            let wait = self.next_wakeup(Instant::now());
            let first = match rx.recv_timeout(wait) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => {
                    self.sync();
                    return;
                }
            };
            if let Some(first) = first {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(c) => batch.push(c),
                        Err(_) => break,
                    }
                }
                if !self.process(batch) {
                    return;
                }
            }
            self.tick(Instant::now());
        }
    }

    /// When the loop must wake without a command: the heartbeat, or an interval sync.
    fn next_wakeup(&self, now: Instant) -> Duration {
        let beat = (self.last_beat + HEARTBEAT).saturating_duration_since(now);
        if self.unsynced && self.fsync == FsyncPolicy::Interval {
            beat.min((self.last_sync + self.fsync_interval).saturating_duration_since(now))
        } else {
            beat
        }
    }

    /// Writes a batch; returns false after a shutdown command.
    fn process(&mut self, batch: Vec<Command>) -> bool {
        let mut buf = Vec::with_capacity(batch.len() * 256);
        let mut replies = Vec::new();
        let mut ops = Vec::with_capacity(batch.len());
        let mut stop = false;
        for c in batch {
            match c {
                Command::Line(line) => {
                    self.live.apply(&line);
                    match serde_json::to_writer(&mut buf, &line) {
                        Ok(()) => buf.push(b'\n'),
                        Err(_) => {
                            metrics::counter!("focus_journal_errors_total", "op" => "encode")
                                .increment(1);
                            continue;
                        }
                    }
                    ops.push(op_name(&line.event));
                }
                Command::Flush(r) => replies.push(r),
                Command::Shutdown(r) => {
                    replies.push(r);
                    stop = true;
                }
            }
        }
        if !buf.is_empty() && self.append(&buf) {
            // Counted once in the file: a test may kill the process as soon as it sees them.
            for op in ops {
                metrics::counter!("focus_journal_lines_total", "op" => op).increment(1);
            }
        }
        if self.file.is_some() && self.size > self.compact_at {
            if let Err(e) = self.compact() {
                self.failed("compact", &e);
            }
        }
        if self.fsync == FsyncPolicy::Always || !replies.is_empty() {
            self.sync();
        }
        for r in replies {
            let _ = r.send(());
        }
        !stop
    }

    /// Appends a batch; returns whether it is in the file.
    fn append(&mut self, buf: &[u8]) -> bool {
        // A file lost to an earlier failure is rebuilt from the live state, which already
        // includes this batch.
        if self.file.is_none() {
            return match self.compact() {
                Ok(()) => true,
                Err(e) => {
                    self.failed("compact", &e);
                    false
                }
            };
        }
        let result = match &mut self.file {
            Some(f) => f.write_all(buf),
            None => return false,
        };
        match result {
            Ok(()) => {
                self.size += buf.len() as u64;
                self.unsynced = true;
                self.failing = false;
                true
            }
            Err(e) => {
                self.failed("write", &e);
                self.file = None;
                false
            }
        }
    }

    /// Rewrites the file with the live state only: write a temporary file, sync it, rename
    /// it over the journal, sync the directory, and append to the new file from then on.
    fn compact(&mut self) -> std::io::Result<()> {
        let tmp = tmp_path(&self.path);
        let mut buf = Vec::new();
        for line in self.live.snapshot() {
            serde_json::to_writer(&mut buf, &line).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename is durable once the directory is synced (not possible everywhere).
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let file = OpenOptions::new().append(true).open(&self.path)?;
        self.file = Some(file);
        self.size = buf.len() as u64;
        self.compact_at = self.max_bytes.max(self.size.saturating_mul(2));
        self.unsynced = false;
        self.last_sync = Instant::now();
        self.failing = false;
        metrics::counter!("focus_journal_compactions_total").increment(1);
        Ok(())
    }

    fn sync(&mut self) {
        if !self.unsynced {
            return;
        }
        let Some(f) = &self.file else { return };
        match f.sync_data() {
            Ok(()) => {
                self.unsynced = false;
                self.last_sync = Instant::now();
            }
            Err(e) => self.failed("sync", &e),
        }
    }

    /// Interval syncs and the heartbeat.
    fn tick(&mut self, now: Instant) {
        if self.unsynced
            && self.fsync == FsyncPolicy::Interval
            && now >= self.last_sync + self.fsync_interval
        {
            self.sync();
        }
        if now >= self.last_beat + HEARTBEAT {
            self.last_beat = now;
            if let Some(f) = &self.file {
                if let Err(e) = f.set_modified(SystemTime::now()) {
                    self.failed("heartbeat", &e);
                }
            } else if let Err(e) = self.compact() {
                self.failed("compact", &e);
            }
        }
    }

    fn failed(&mut self, op: &'static str, e: &std::io::Error) {
        metrics::counter!("focus_journal_errors_total", "op" => op).increment(1);
        if !self.failing {
            tracing::warn!(path = %self.path.display(), op, error = %e, "journal write failed; retrying every second");
        }
        self.failing = true;
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

fn op_name(e: &Event) -> &'static str {
    match e {
        Event::Open { .. } => "open",
        Event::Join { .. } => "join",
        Event::Update { .. } => "update",
        Event::Leave { .. } => "leave",
        Event::Close => "close",
    }
}
