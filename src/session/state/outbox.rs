//! Where every part of a session writes what it decided: effects for the actor to execute,
//! and the requests it sent whose answers it waits for. Parts take `&mut Outbox` rather
//! than the whole state, so each owns its data and still speaks through one queue.

use super::effects::Effect;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

pub(super) struct Outbox {
    pub(super) effects: VecDeque<Effect>,
    /// Requests sent and not yet answered, by token.
    pub(super) pending: HashMap<u64, Pending>,
    /// Participants, subscriptions, referrals and tokens share one counter.
    next_id: u64,
}

impl Outbox {
    pub(super) fn new() -> Outbox {
        Outbox {
            effects: VecDeque::new(),
            pending: HashMap::new(),
            next_id: 1,
        }
    }

    /// A fresh identifier (participant, subscription, referral or request token).
    pub(super) fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(super) fn push(&mut self, effect: Effect) {
        self.effects.push_back(effect);
    }
}

/// What an outstanding request of the session is, so its answer reaches its part.
#[derive(Clone)]
pub(super) enum Pending {
    Notify {
        sid: u64,
    },
    Bye,
    /// Our INVITE to a dialed-out participant.
    Invite {
        pid: u64,
    },
    /// A NOTIFY of a REFER's implicit subscription.
    ReferNotify {
        rid: u64,
    },
    /// A group message toward one recipient.
    Pager {
        report: Option<Arc<NegativeReport>>,
        recipient: String,
    },
    /// Our session refresh (RFC 4028) in a participant's dialog: re-INVITE or UPDATE with
    /// CSeq `cseq`, asking for `asked` seconds.
    Refresh {
        pid: u64,
        cseq: u32,
        invite: bool,
        asked: u32,
    },
    /// Our re-INVITE that resumes a participant's dialog after a restart.
    Resume {
        pid: u64,
        cseq: u32,
    },
}

/// What a failed delivery reports back to the sender (RFC 5438 negative-delivery).
pub(in crate::session) struct NegativeReport {
    pub imdn_id: String,
    /// Where the report goes: the sender's Contact, or its address of record.
    pub sender_target: crate::sip::Uri,
    pub sender: String,
}
