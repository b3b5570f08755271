//! The live state a journal describes, and reading a journal back.

use super::record::{Event, Line, ParticipantRecord, SessionInfo};
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;
use std::time::SystemTime;

/// One live session: what it is and who is in it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSession {
    pub key: String,
    pub instance: u64,
    /// When the state was last touched (the ts of its last line), wall-clock milliseconds.
    pub last_ms: u64,
    pub info: SessionInfo,
    /// Participants by their pid in the writing process.
    pub participants: BTreeMap<u64, ParticipantRecord>,
}

/// Every live session, by conference key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    sessions: HashMap<String, LiveSession>,
}

impl Live {
    /// Applies one line. Lines of another instance than the key's current one are stale
    /// (an actor that retired while its successor started) and change nothing, except
    /// `Open`, which starts the key afresh.
    pub fn apply(&mut self, line: &Line) {
        if let Event::Open { info } = &line.event {
            self.sessions.insert(
                line.key.clone(),
                LiveSession {
                    key: line.key.clone(),
                    instance: line.instance,
                    last_ms: line.ts,
                    info: info.clone(),
                    participants: BTreeMap::new(),
                },
            );
            return;
        }
        let Some(s) = self.sessions.get_mut(&line.key) else {
            return;
        };
        if s.instance != line.instance {
            return;
        }
        s.last_ms = s.last_ms.max(line.ts);
        match &line.event {
            Event::Open { .. } => {}
            Event::Join { pid, participant } => {
                s.info.participants_total = s
                    .info
                    .participants_total
                    .max(participant.participants_total);
                s.participants.insert(*pid, (**participant).clone());
            }
            Event::Update {
                pid,
                local_cseq,
                remote_target,
                sdp,
            } => {
                if let Some(p) = s.participants.get_mut(pid) {
                    p.local_cseq = *local_cseq;
                    p.remote_target.clone_from(remote_target);
                    if let Some(sdp) = sdp {
                        p.sdp.clone_from(sdp);
                    }
                }
            }
            Event::Leave { pid } => {
                s.participants.remove(pid);
            }
            Event::Close => {
                self.sessions.remove(&line.key);
            }
        }
    }

    /// The lines that rebuild this state (a compacted journal), in a stable order.
    pub fn snapshot(&self) -> Vec<Line> {
        let mut keys: Vec<&String> = self.sessions.keys().collect();
        keys.sort();
        let mut lines = Vec::new();
        for k in keys {
            let s = &self.sessions[k];
            lines.push(Line {
                ts: s.last_ms,
                key: s.key.clone(),
                instance: s.instance,
                event: Event::Open {
                    info: s.info.clone(),
                },
            });
            for (pid, p) in &s.participants {
                lines.push(Line {
                    ts: s.last_ms,
                    key: s.key.clone(),
                    instance: s.instance,
                    event: Event::Join {
                        pid: *pid,
                        participant: Box::new(p.clone()),
                    },
                });
            }
        }
        lines
    }

    /// Sessions that have participants, sorted by key.
    pub fn sessions(&self) -> Vec<LiveSession> {
        let mut v: Vec<LiveSession> = self
            .sessions
            .values()
            .filter(|s| !s.participants.is_empty())
            .cloned()
            .collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// Keeps only the sessions `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&LiveSession) -> bool) {
        self.sessions.retain(|_, s| keep(s));
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True without live sessions.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Participants across every session.
    pub fn participant_count(&self) -> usize {
        self.sessions.values().map(|s| s.participants.len()).sum()
    }
}

/// A journal read back from disk.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    pub live: Live,
    /// When the focus that wrote it last showed life: the later of the file's modification
    /// time (the writer's heartbeat) and its last line. `None` for a missing file.
    pub last_alive: Option<SystemTime>,
    /// Lines read and applied.
    pub lines: usize,
    /// Lines that did not parse (a write cut short by the crash, or damage), skipped.
    pub skipped: usize,
}

/// Reads the journal at `path`; a missing file is an empty journal.
pub fn read(path: &Path) -> std::io::Result<Journal> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Journal::default()),
        Err(e) => return Err(e),
    };
    let modified = file.metadata().and_then(|m| m.modified()).ok();
    let mut journal = Journal::default();
    let mut last_ts = 0u64;
    for line in std::io::BufReader::new(file).split(b'\n') {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Line>(&line) {
            Ok(l) => {
                last_ts = last_ts.max(l.ts);
                journal.live.apply(&l);
                journal.lines += 1;
            }
            Err(_) => journal.skipped += 1,
        }
    }
    let from_lines =
        (last_ts > 0).then(|| SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(last_ts));
    journal.last_alive = match (modified, from_lines) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    Ok(journal)
}
