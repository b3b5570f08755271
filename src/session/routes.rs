//! What a session actor needs of the routing tables. The supervisor owns the tables and
//! implements [`Routes`]; the session names only this trait, so it never imports the layer
//! that starts it.

use super::{AdhocRecord, SessionActor};
use crate::dialog::DialogId;
use actix::Addr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// A routing entry: the actor's address, its instance id and its in-flight counter.
#[derive(Clone)]
pub struct SessionEntry {
    pub addr: Addr<SessionActor>,
    pub instance: u64,
    pub in_flight: Arc<AtomicUsize>,
}

/// The routing tables as a session actor uses them.
pub trait Routes: Send + Sync + 'static {
    /// Routes the dialog's in-dialog requests to `entry`.
    fn register_dialog(&self, id: DialogId, entry: SessionEntry);
    /// Stops routing the dialog (only if it still belongs to `instance`).
    fn unregister_dialog(&self, id: &DialogId, instance: u64);
    /// Removes an idle session's entry if nothing is on its way to it; whether it may stop.
    fn retire(&self, key: &str, instance: u64) -> bool;
    /// Forgets a stopped (or dead) session, with `dialogs` also every dialog pointing at it.
    fn forget_session(&self, key: &str, instance: u64, dialogs: bool);
    /// An ad-hoc session ended: forget it as live, remember it for restart.
    fn adhoc_ended(&self, record: AdhocRecord, user: &str);
}
