//! Crash recovery at start (issue 8): read the journal a previous focus process left, close in
//! the charging records what its death interrupted, and, when the restart comes within
//! `journal.recovery_window_s` of the crash, start its live groups again and have them
//! re-INVITE their participants (see `session::state::recover` for what a participant
//! experiences).
//!
//! Charging across a crash: for every journaled participant a `participant_leave`
//! (`failed`, `reason: crash`) and for every journaled session a `session_stop`
//! (`reason: crash`), all timed at the crash (the journal's last sign of life). A resumed
//! session then starts a new charging session (`session_start` with `recovered: true`) and
//! a `participant_join` for each participant that accepts. So every start has its stop,
//! whether or not the group is resumed.

use crate::charging::{self, ChargingHandle, Record};
use crate::config::Config;
use crate::recovery::journal::{self, Event, JournalError, JournalHandle, LiveSession};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// What recovery needs of the router: the supervisor implements it, so recovery does not
/// import the layer above it.
pub trait Resume {
    /// Sessions report their membership to `journal` from now on. Called once, before any
    /// session starts.
    fn set_journal(&self, journal: JournalHandle);
    /// Starts a session for each journaled one and hands it its participants to resume;
    /// returns the keys of the sessions started.
    fn recover(&self, sessions: Vec<LiveSession>) -> Vec<String>;
}

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Sessions (with participants) the journal held.
    pub journaled: usize,
    /// Sessions started again.
    pub resumed: usize,
    /// Participants those sessions re-INVITE.
    pub participants: usize,
    /// The crash was longer ago than the recovery window.
    pub too_late: bool,
}

/// Starts the journal writer (sessions report to it from now on) and resumes what the
/// previous process left, as described in the module doc. Call after the supervisor is
/// built and before the transports run.
pub fn start(
    config: &Config,
    supervisor: &dyn Resume,
    charging: &ChargingHandle,
) -> Result<(JournalHandle, Outcome), JournalError> {
    let c = &config.journal;
    if c.path.is_empty() {
        return Ok((JournalHandle::disabled(), Outcome::default()));
    }
    // Before reading: a second process on the same journal would otherwise close (in its
    // charging records) and resume the first one's live sessions.
    let lock = journal::JournalLock::acquire(Path::new(&c.path)).inspect_err(|e| {
        tracing::error!(path = %c.path, error = %e, "cannot take the journal's lock; not starting");
    })?;
    let read = match journal::read(Path::new(&c.path)) {
        Ok(j) => j,
        Err(e) => {
            // An unreadable journal must not keep the focus down: start afresh.
            metrics::counter!("focus_journal_errors_total", "op" => "read").increment(1);
            tracing::error!(path = %c.path, error = %e, "cannot read the journal; nothing is resumed");
            journal::Journal::default()
        }
    };
    if read.skipped > 0 {
        tracing::warn!(path = %c.path, skipped = read.skipped, "journal lines that did not parse were skipped (a write cut short by the crash?)");
    }
    let now = SystemTime::now();
    let crashed_at = read.last_alive.unwrap_or(now);
    let age = now.duration_since(crashed_at).unwrap_or_default();
    let sessions = read.live.sessions();
    let mut outcome = Outcome {
        journaled: sessions.len(),
        ..Outcome::default()
    };
    let trust = crate::policy::Trust::from_policy(&config.policy);
    for s in &sessions {
        close_interrupted(charging, &trust, s, crashed_at);
    }
    let within = c.recovery_window_s > 0 && age <= Duration::from_secs(c.recovery_window_s);
    let mut live = read.live;
    if within {
        live.retain(|s| !s.participants.is_empty());
    } else {
        live = journal::Live::default();
    }
    let handle = JournalHandle::start_locked(c, live, lock)?;
    supervisor.set_journal(handle.clone());
    if sessions.is_empty() {
        return Ok((handle, outcome));
    }
    if !within {
        outcome.too_late = true;
        tracing::warn!(
            sessions = sessions.len(),
            crashed_s_ago = age.as_secs(),
            window_s = c.recovery_window_s,
            "the journal is older than the recovery window: its sessions are not resumed"
        );
        return Ok((handle, outcome));
    }
    let started = supervisor.recover(sessions.clone());
    for s in &sessions {
        if started.contains(&s.key) {
            outcome.resumed += 1;
            outcome.participants += s.participants.len();
        } else {
            handle.record(&s.key, s.instance, Event::Close);
        }
    }
    tracing::info!(
        sessions = outcome.resumed,
        participants = outcome.participants,
        crashed_s_ago = age.as_secs(),
        "resuming the groups of the previous focus process"
    );
    Ok((handle, outcome))
}

/// The charging records that close a session the crash interrupted.
fn close_interrupted(
    charging: &ChargingHandle,
    trust: &crate::policy::Trust,
    s: &LiveSession,
    at: SystemTime,
) {
    let since = |ms: u64| {
        at.duration_since(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
            .unwrap_or_default()
    };
    for p in s.participants.values() {
        // Billed as while it was in: an unproven claim to its address's account.
        let source = p
            .peer
            .parse::<std::net::SocketAddr>()
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        let charged = trust.charged(&p.real, crate::policy::Proof::from_label(&p.proof), source);
        charging.record_at(
            at,
            Record::ParticipantLeave {
                conference: s.info.uri.clone(),
                participant: p.identity.clone(),
                identity: charged.subject,
                verified: charged.verified,
                disconnection_method: charging::DisconnectionMethod::Failed,
                duration_s: charging::whole_seconds(since(p.joined_ms)),
                reason: Some(charging::StopReason::Crash),
            },
        );
    }
    charging.record_at(
        at,
        Record::SessionStop {
            conference: s.info.uri.clone(),
            duration_s: charging::whole_seconds(since(s.info.started_ms)),
            participants_total: s.info.participants_total,
            reason: Some(charging::StopReason::Crash),
        },
    );
}
