//! Conference-event subscriptions (RFC 6665, RFC 4575): expiry, versions, and the rule that
//! decides when a subscriber gets its next NOTIFY (one in flight at a time, at most one per
//! minimum interval, changes in between coalesced and never lost).

use crate::dialog::Dialog;
use std::time::{Duration, Instant};

/// A NOTIFY on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    pub token: u64,
    /// Roster change counter the NOTIFY brings the subscriber up to.
    pub covers: u64,
}

/// One subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: u64,
    pub dialog: Dialog,
    /// The Event header value of the SUBSCRIBE (echoed in every NOTIFY, `id` param included).
    pub event: String,
    pub expires_at: Instant,
    /// `version` of the last NOTIFY sent; the next one carries `version + 1`.
    pub version: u32,
    /// Change counter the subscriber is known to have (its last NOTIFY was answered 2xx).
    pub acked: u64,
    /// Send the whole document next (first NOTIFY, refresh, or after a failed NOTIFY).
    pub needs_full: bool,
    /// Send a NOTIFY even without roster changes (refresh).
    pub forced: bool,
    pub in_flight: Option<InFlight>,
    /// Earliest time the next rate-limited NOTIFY may go.
    pub next_allowed: Instant,
    /// Held by a non-member: counts in the outsiders' share of the session's slots.
    pub outsider: bool,
    /// The subscriber's identity as the focus established it (an authenticated request in
    /// the dialog may come from another flow when it proves this identity).
    pub subscriber: String,
    /// The subscriber sees the participants' dialog identifiers (`<call-info>`): only a
    /// trusted-host subscriber, and only with `subscriptions.call_info_to_trusted`.
    pub dialog_ids: bool,
}

impl Subscription {
    /// A subscription whose first NOTIFY (full state) is due at once.
    pub fn new(id: u64, dialog: Dialog, event: String, expires_at: Instant, now: Instant) -> Self {
        Subscription {
            id,
            dialog,
            event,
            expires_at,
            version: 0,
            acked: 0,
            needs_full: true,
            forced: true,
            in_flight: None,
            next_allowed: now,
            outsider: false,
            subscriber: String::new(),
            dialog_ids: false,
        }
    }

    /// True when the subscriber lacks changes up to `seq` and nothing covering them is in
    /// flight.
    pub fn has_news(&self, seq: u64) -> bool {
        let known = self.in_flight.map_or(self.acked, |f| f.covers);
        self.forced || seq > known
    }

    /// The time a NOTIFY should go, if one is due at all: at the rate limit. The first
    /// NOTIFY goes at once (RFC 6665 §4.2.1: it follows the 200 immediately) because its
    /// `next_allowed` is the time it was asked for; a refresh's goes at once when the last
    /// NOTIFY is an interval old, else when the interval ends (refreshes in a loop would
    /// otherwise each get one); a retry after a failed NOTIFY waits like any other, or a
    /// subscriber answering errors gets a NOTIFY storm.
    pub fn due_at(&self, seq: u64, _now: Instant) -> Option<Instant> {
        if self.in_flight.is_some() || !self.has_news(seq) {
            return None;
        }
        Some(self.next_allowed)
    }

    /// Records that a NOTIFY covering `covers` was sent at `now`.
    pub fn sent(&mut self, token: u64, covers: u64, now: Instant, min_interval: Duration) {
        self.version = self.version.wrapping_add(1);
        self.in_flight = Some(InFlight { token, covers });
        self.forced = false;
        self.needs_full = false;
        self.next_allowed = now + min_interval;
    }

    /// The in-flight NOTIFY was answered 2xx.
    pub fn delivered(&mut self, token: u64) {
        if let Some(f) = self.in_flight.filter(|f| f.token == token) {
            self.acked = f.covers;
            self.in_flight = None;
        }
    }

    /// The in-flight NOTIFY failed without ending the subscription: the subscriber's view is
    /// unknown, so the next NOTIFY carries the whole document.
    pub fn undelivered(&mut self, token: u64) {
        if self.in_flight.is_some_and(|f| f.token == token) {
            self.in_flight = None;
            self.needs_full = true;
            self.forced = true;
        }
    }

    /// Seconds left, for `Subscription-State: active;expires=`.
    pub fn remaining(&self, now: Instant) -> u64 {
        self.expires_at.saturating_duration_since(now).as_secs()
    }
}
