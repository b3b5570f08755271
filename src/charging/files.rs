//! The charging file set on disk: `PATH` (being written), `PATH.1` (the newest full one) ...
//! `PATH.<keep>`. Plain blocking `std::fs`: only the writer's own thread calls it.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// How much of a file's end is read to find the last `seq` (records are far smaller).
const TAIL_BYTES: u64 = 64 * 1024;

/// Which file operation failed: the `op` label of `focus_charging_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Open,
    Write,
    Rotate,
    Sync,
}

impl Op {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Write => "write",
            Op::Rotate => "rotate",
            Op::Sync => "sync",
        }
    }
}

/// The current file and its rotation rule.
#[derive(Debug)]
pub(crate) struct FileSet {
    path: PathBuf,
    /// Rotate before a line that would make the current file larger than this.
    max_file_bytes: u64,
    /// Rotated files kept (`PATH.1` ..= `PATH.<keep_files>`).
    keep_files: usize,
    /// Open in append mode; `None` until opened or after an error (reopened on retry).
    file: Option<File>,
    /// Bytes in the current file, as far as we know: decides rotation.
    size: u64,
}

impl FileSet {
    pub(crate) fn new(path: PathBuf, max_file_bytes: u64, keep_files: usize) -> FileSet {
        FileSet {
            path,
            max_file_bytes,
            keep_files,
            file: None,
            size: 0,
        }
    }

    /// Whether the current file holds nothing yet: the first line always goes in, so an
    /// oversized record is written alone rather than rotated forever.
    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Whether `len` more bytes keep the current file within `max_file_bytes`.
    pub(crate) fn fits(&self, len: usize) -> bool {
        self.size.saturating_add(len as u64) <= self.max_file_bytes
    }

    /// Opens the current file if needed, creating its directory. When `repair` is set and the
    /// file does not end with a newline (a write cut short by a crash), one is appended so the
    /// next record starts its own line: the torn line stays visibly torn instead of corrupting
    /// ours.
    pub(crate) fn open(&mut self, repair: bool) -> io::Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)?;
        let mut size = file.metadata()?.len();
        if repair && size > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                size += 1;
            }
        }
        self.size = size;
        self.file = Some(file);
        Ok(())
    }

    /// Appends `buf` and returns how many bytes reached the file, also on error (so the
    /// caller can resume a line instead of writing it twice).
    pub(crate) fn append(&mut self, buf: &[u8]) -> (usize, io::Result<()>) {
        let Some(file) = self.file.as_mut() else {
            return (0, Err(io::Error::other("charging file not open")));
        };
        let mut done = 0;
        while done < buf.len() {
            match file.write(&buf[done..]) {
                Ok(0) => {
                    self.size += done as u64;
                    return (done, Err(io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.size += done as u64;
                    return (done, Err(e));
                }
            }
        }
        self.size += done as u64;
        (done, Ok(()))
    }

    /// Forgets the open file (after an error): the next [`open`](Self::open) starts afresh.
    pub(crate) fn close(&mut self) {
        self.file = None;
    }

    /// Makes what was written durable (`fdatasync`).
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        match &self.file {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }

    /// `PATH` becomes `PATH.1`, `PATH.1` becomes `PATH.2` ..., the oldest beyond `keep_files`
    /// is deleted. With `durable`, the old file is synced first and the directory after, so a
    /// crash cannot leave a rotated file shorter than what was acknowledged.
    pub(crate) fn rotate(&mut self, durable: bool) -> io::Result<()> {
        if durable {
            self.sync()?;
        }
        self.file = None;
        remove_if_present(&numbered(&self.path, self.keep_files))?;
        for n in (1..self.keep_files).rev() {
            rename_if_present(&numbered(&self.path, n), &numbered(&self.path, n + 1))?;
        }
        std::fs::rename(&self.path, numbered(&self.path, 1))?;
        self.size = 0;
        if durable {
            sync_dir(&self.path)?;
        }
        Ok(())
    }

    /// The `seq` of the last complete record in the file set (the current file, or the newest
    /// rotated one when the current file is empty or missing).
    pub(crate) fn last_seq(&self) -> Option<u64> {
        last_seq_in(&self.path).or_else(|| last_seq_in(&numbered(&self.path, 1)))
    }
}

/// `PATH.<n>`.
pub(crate) fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Syncs the directory holding `path`, which makes renames in it durable (Linux).
fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// The last parseable `seq` among the complete lines at the end of `path`.
fn last_seq_in(path: &Path) -> Option<u64> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut tail).ok()?;
    // Only newline-terminated lines are complete; the first one may be cut by `start`.
    let complete = match tail.iter().rposition(|&b| b == b'\n') {
        Some(end) => &tail[..end],
        None => return None,
    };
    complete
        .split(|&b| b == b'\n')
        .rev()
        .filter_map(|line| serde_json::from_slice::<SeqOnly>(line).ok())
        .map(|s| s.seq)
        .next()
}

/// The one field a restarted writer needs from an old line.
#[derive(serde::Deserialize)]
struct SeqOnly {
    seq: u64,
}
