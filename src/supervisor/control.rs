//! Operator access to live sessions for the admin API: find a session by its key or
//! conference URI and hand it a command through its mailbox, like any SIP request (a full
//! mailbox refuses rather than queues).

use super::{Delivery, SessionEntry, Supervisor};
use crate::session::{AdminCommand, AdminRefusal, SessionInput, SessionView};
use std::sync::atomic::Ordering;
use thiserror::Error;
use tokio::sync::oneshot;

/// Why an admin command did not reach a session.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AdminError {
    #[error("no such session")]
    NoSession,
    #[error("the session is busy, try again")]
    Busy,
}

/// The answer a session will give.
pub type AdminAnswer = oneshot::Receiver<Result<SessionView, AdminRefusal>>;

impl Supervisor {
    /// The keys (conference URI user parts) of the sessions running now.
    pub fn session_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .tables
            .conferences
            .iter()
            .map(|e| e.key().to_string())
            .collect();
        keys.sort();
        keys
    }

    /// The session key named by `id`: a key as listed, or a conference URI.
    pub fn session_key(&self, id: &str) -> String {
        match crate::sip::Uri::parse(id) {
            Ok(uri) if uri.is_sip() => uri
                .user_unescaped()
                .map(|u| u.into_owned())
                .unwrap_or_default(),
            _ => id.to_string(),
        }
    }

    /// Hands `command` to the session `key`; the receiver yields its answer (a session that
    /// ends first drops the sender).
    pub fn admin_command(
        &self,
        key: &str,
        command: AdminCommand,
    ) -> Result<AdminAnswer, AdminError> {
        let entry: SessionEntry = self
            .tables
            .conferences
            .get(key)
            .map(|e| {
                e.in_flight.fetch_add(1, Ordering::SeqCst);
                e.clone()
            })
            .ok_or(AdminError::NoSession)?;
        let (tx, rx) = oneshot::channel();
        // Counted in flight like a request (the actor counts it down when it handles it), so
        // the session cannot retire with the command in its mailbox.
        match Self::deliver(&entry, SessionInput::Admin(command, tx)) {
            Delivery::Sent => Ok(rx),
            Delivery::Full(_) => Err(AdminError::Busy),
            Delivery::Closed(_) => Err(AdminError::NoSession),
        }
    }
}
