//! The session's dialogs by local tag, and who owns each. Registering a dialog here is also
//! the one place that tells the actor to route its in-dialog requests to this session.

use super::effects::Effect;
use super::outbox::Outbox;
use crate::dialog::DialogId;
use std::collections::HashMap;

/// What a dialog of this session belongs to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Owner {
    Participant(u64),
    Subscription(u64),
    /// The implicit subscription of an out-of-dialog REFER (RFC 3515).
    Referral(u64),
}

#[derive(Default)]
pub(super) struct Dialogs {
    by_tag: HashMap<Box<str>, Owner>,
}

impl Dialogs {
    /// The owner of the dialog whose local tag is `tag`.
    pub(super) fn owner(&self, tag: &str) -> Option<Owner> {
        self.by_tag.get(tag).copied()
    }

    /// Takes dialog `id` for `owner`; its requests are routed here from now on.
    pub(super) fn register(&mut self, id: &DialogId, owner: Owner, out: &mut Outbox) {
        self.by_tag.insert(id.local_tag.clone(), owner);
        out.push(Effect::RegisterDialog(id.clone()));
    }

    /// Forgets dialog `id`; its requests are no longer routed here.
    pub(super) fn unregister(&mut self, id: &DialogId, out: &mut Outbox) {
        self.by_tag.remove(&id.local_tag);
        out.push(Effect::UnregisterDialog(id.clone()));
    }
}
