//! Where every part of a session writes what it decided: effects for the actor to execute,
//! and the requests it sent whose answers it waits for. Parts take `&mut Outbox` rather
//! than the whole state, so each owns its data and still speaks through one queue.

use super::{Effect, Pending};
use std::collections::{HashMap, VecDeque};

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
