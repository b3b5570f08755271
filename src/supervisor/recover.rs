//! The supervisor's part of crash recovery: start again, on their old conference URIs, the
//! sessions a crashed focus journaled, and hand each its participants to resume.

use super::*;
use crate::recovery::journal::{JournalHandle, LiveSession};
use crate::recovery::Resume;

impl Resume for Supervisor {
    fn set_journal(&self, journal: JournalHandle) {
        let _ = self.journal.set(journal);
    }

    /// Starts a session for each journaled one (same conference URI; ad-hoc ones keep their
    /// Subject, Contribution-ID and creator's host role) and hands it its participants to
    /// resume. Returns the keys of the sessions started; the others (a group no longer
    /// configured, no room left) are not resumed.
    fn recover(&self, sessions: Vec<LiveSession>) -> Vec<String> {
        let mut started = Vec::new();
        for live in sessions {
            let key = live.key.clone();
            if self.tables.conferences.contains_key(key.as_str()) {
                continue;
            }
            if self.tables.conferences.len() >= self.settings.max_sessions {
                tracing::warn!(conference = %live.info.uri, "no room to resume the session (max_sessions)");
                continue;
            }
            let Some(settings) = self.recovered_settings(&live) else {
                tracing::warn!(conference = %live.info.uri, kind = %live.info.kind, "the journaled group is not configured any more; not resumed");
                continue;
            };
            let adhoc = settings.kind != crate::session::SessionKind::Predefined;
            let entry = self.start_session(&key, settings, "recovered");
            self.tables
                .conferences
                .insert(key.as_str().into(), entry.clone());
            if adhoc {
                let conversation = live
                    .info
                    .contribution_id
                    .as_deref()
                    .or(live.info.conversation_id.as_deref());
                if let Some(k) = conversation {
                    self.tables.adhoc_started(k, &key);
                }
            }
            tracing::info!(conference = %live.info.uri, participants = live.participants.len(), "resuming the session");
            // The first message in its mailbox: nothing can reach it before (transports start
            // after recovery).
            entry.addr.do_send(SessionInput::Recover(Box::new(live)));
            metrics::counter!("focus_recovered_sessions_total").increment(1);
            started.push(key);
        }
        started
    }
}

impl Supervisor {
    /// The settings a journaled session runs with again.
    fn recovered_settings(&self, live: &LiveSession) -> Option<Arc<SessionSettings>> {
        let info = &live.info;
        let catalog = self.catalog();
        if info.kind == crate::session::SessionKind::Predefined.as_str() {
            let group = catalog.groups.get(&live.key)?;
            return (group.settings.conference_uri == info.uri).then(|| group.settings.clone());
        }
        let uri = crate::sip::Uri::parse(&info.uri).ok()?;
        let user = uri.user.as_deref()?.to_string();
        let mut s = catalog.template.settings(
            &info.uri,
            &user,
            crate::policy::GroupPolicy::adhoc(&catalog.adhoc.provider),
        );
        s.kind = if info.kind == crate::session::SessionKind::Restarted.as_str() {
            crate::session::SessionKind::Restarted
        } else {
            crate::session::SessionKind::Adhoc
        };
        s.subject = info.subject.clone().unwrap_or_default();
        s.restart_ids = Some((
            info.subject.clone(),
            info.contribution_id.clone(),
            info.conversation_id.clone(),
        ));
        for h in &info.hosts {
            s.policy
                .members
                .insert(h.clone(), crate::config::Role::Host);
        }
        Some(Arc::new(s))
    }
}
