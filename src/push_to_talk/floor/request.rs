//! A live floor request and the order of the queue.

use crate::push_to_talk::bfcp::{Priority, RequestStatus, Text};
use std::cmp::Reverse;
use std::time::Instant;

/// A floor request that is not over: Pending, Accepted (queued) or Granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Request {
    pub id: u16,
    /// Who sent the FloorRequest (a chair, for a third-party request).
    pub requester: u16,
    /// Who would talk.
    pub beneficiary: u16,
    /// All must be granted together, in the order requested.
    pub floors: Vec<u16>,
    pub priority: Priority,
    /// PARTICIPANT-PROVIDED-INFO, echoed to whoever sees the request.
    pub info: Option<Text>,
    pub status: RequestStatus,
    /// Arrival order: FIFO within a priority.
    pub seq: u64,
    /// When a Granted request is revoked for talking too long.
    pub deadline: Option<Instant>,
}

impl Request {
    /// Sorts the queue: higher priority first (when priorities count), then arrival.
    pub fn queue_key(&self, by_priority: bool) -> (Reverse<Priority>, u64) {
        let p = if by_priority {
            self.priority
        } else {
            Priority::Normal
        };
        (Reverse(p), self.seq)
    }
}

/// What a client was last told about a request; a change means a new FloorRequestStatus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub status: RequestStatus,
    /// Queue position per floor (0 unless Accepted).
    pub positions: Vec<u8>,
    pub beneficiary: u16,
}
