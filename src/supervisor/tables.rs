//! The routing tables: which session actor a conference URI or a dialog belongs to, the live
//! ad-hoc sessions by conversation, and the ended ones that may be restarted. Shared by the
//! supervisor and, through [`Routes`], the session actors.

use crate::dialog::DialogId;
use crate::session::{AdhocRecord, Routes, SessionEntry};
use dashmap::DashMap;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The routing tables, shared by the supervisor and the session actors.
#[derive(Default)]
pub struct Tables {
    pub(super) conferences: DashMap<Box<str>, SessionEntry>,
    pub(super) dialogs: DashMap<DialogId, SessionEntry>,
    /// Live ad-hoc sessions by Contribution-ID (or Conversation-ID): a creator's repeated
    /// INVITE to the factory joins instead of creating a second one.
    pub(super) adhoc_live: DashMap<String, Box<str>>,
    /// Ended ad-hoc sessions that may be restarted.
    pub(super) remembered: std::sync::Mutex<RestartStore>,
}

/// The session actors reach the tables through [`Routes`].
impl Routes for Tables {
    fn register_dialog(&self, id: DialogId, entry: SessionEntry) {
        Tables::register_dialog(self, id, entry);
    }
    fn unregister_dialog(&self, id: &DialogId, instance: u64) {
        Tables::unregister_dialog(self, id, instance);
    }
    fn retire(&self, key: &str, instance: u64) -> bool {
        Tables::retire(self, key, instance)
    }
    fn forget_session(&self, key: &str, instance: u64, dialogs: bool) {
        Tables::forget_session(self, key, instance, dialogs);
    }
    fn adhoc_ended(&self, record: AdhocRecord, user: &str) {
        Tables::adhoc_ended(self, record, user);
    }
}

/// Ended ad-hoc sessions by Contribution-ID, bounded in number and age.
#[derive(Default)]
pub(super) struct RestartStore {
    records: HashMap<String, (AdhocRecord, Instant)>,
    order: std::collections::VecDeque<String>,
    window: Duration,
    max: usize,
}

impl RestartStore {
    fn put(&mut self, record: AdhocRecord, now: Instant) {
        if self.max == 0 {
            return;
        }
        let key = record.key.clone();
        if self
            .records
            .insert(key.clone(), (record, now + self.window))
            .is_none()
        {
            self.order.push_back(key);
        }
        while self.records.len() > self.max {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.records.remove(&old);
        }
    }

    pub(super) fn take(&mut self, key: &str, now: Instant) -> Option<AdhocRecord> {
        let (record, until) = self.records.remove(key)?;
        self.order.retain(|k| k != key);
        (until > now).then_some(record)
    }
}

impl Tables {
    /// Routes the dialog's in-dialog requests to `entry`.
    pub fn register_dialog(&self, id: DialogId, entry: SessionEntry) {
        self.dialogs.insert(id, entry);
    }

    /// Stops routing the dialog (only if it still belongs to `instance`).
    pub fn unregister_dialog(&self, id: &DialogId, instance: u64) {
        self.dialogs.remove_if(id, |_, e| e.instance == instance);
    }

    /// Removes an idle session's conference entry if nothing is on its way to it; returns
    /// whether the session may stop. The check runs under the entry's write lock, and routing
    /// counts a message in flight under its read lock, so no message slips in between.
    pub fn retire(&self, key: &str, instance: u64) -> bool {
        if self
            .conferences
            .remove_if(key, |_, e| {
                e.instance == instance && e.in_flight.load(Ordering::SeqCst) == 0
            })
            .is_some()
        {
            return true;
        }
        // Already gone from the table (shutdown or replaced): nothing routes to it any more.
        self.conferences
            .get(key)
            .is_none_or(|e| e.instance != instance)
    }

    /// Forgets a stopped (or dead) session: its conference entry, and with `dialogs`, every
    /// dialog still pointing at it.
    pub fn forget_session(&self, key: &str, instance: u64, dialogs: bool) {
        self.conferences
            .remove_if(key, |_, e| e.instance == instance);
        if dialogs {
            self.dialogs.retain(|_, e| e.instance != instance);
        }
    }

    /// The routing entry of a dialog, if one is registered (benches, diagnostics).
    pub fn dialog(&self, id: &DialogId) -> Option<SessionEntry> {
        self.dialogs.get(id).map(|e| e.clone())
    }

    /// The routing entry of a conference's session, if one runs.
    pub fn session(&self, key: &str) -> Option<SessionEntry> {
        self.conferences.get(key).map(|e| e.clone())
    }

    /// Sets how long and how many ended ad-hoc sessions are remembered.
    pub fn set_restart_limits(&self, window: Duration, max: usize) {
        if let Ok(mut r) = self.remembered.lock() {
            r.window = window;
            r.max = max;
        }
    }

    /// An ad-hoc session started under a Contribution-ID.
    pub fn adhoc_started(&self, key: &str, user: &str) {
        self.adhoc_live.insert(key.to_string(), user.into());
    }

    /// An ad-hoc session ended: forget it as live, remember it for restart.
    pub fn adhoc_ended(&self, record: AdhocRecord, user: &str) {
        self.adhoc_live.remove_if(&record.key, |_, u| &**u == user);
        if let Ok(mut r) = self.remembered.lock() {
            r.put(record, Instant::now());
        }
    }

    /// Sessions in the table.
    pub fn session_count(&self) -> usize {
        self.conferences.len()
    }

    /// Dialogs in the table.
    pub fn dialog_count(&self) -> usize {
        self.dialogs.len()
    }
}
