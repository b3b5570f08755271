//! Shedding load: the one overload refusal. Wherever work is admitted (the guard before
//! parsing, a shard, the supervisor, a session) and found over a limit, it is refused with a
//! [`Shed`] naming why, and answered through the one responder (`sip::refusal_response`):
//! `503` with `Retry-After`, counted by reason. Fair-share refusals
//! ([`ShareRefusal`]) are decided here too, so `503` is chosen in this file only.

use super::ShareRefusal;
use crate::sip::{Refuse, Status, WarnCode};
use std::borrow::Cow;

/// Why new work was shed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// A source over its request rate (the guard, before parsing).
    SourceRate,
    /// The hard cap of transactions at once.
    Transactions,
    /// Transactions past their high-water mark (untrusted new work only).
    TransactionsHigh,
    /// A shard's queue is full.
    ShardQueue,
    /// A shard's queue past its high-water mark (untrusted new work only).
    QueueHigh,
    /// New work that waited in a queue longer than `overload.max_queue_delay_ms`.
    QueueDelay,
    /// A session's mailbox is full.
    Mailbox,
    /// A session's mailbox past its high-water mark (untrusted new work only).
    MailboxHigh,
    /// `supervisor.max_sessions` sessions run already.
    Sessions,
    /// A conference's subscriptions are all taken.
    Subscriptions,
    /// A group's pager queue is full.
    PagerQueue,
    /// The focus or the session is shutting down.
    Draining,
    /// Accepted work its session never answered (it stopped or panicked first).
    Abandoned,
}

impl Shed {
    /// The status every shed request gets.
    pub const STATUS: Status = Status::SERVICE_UNAVAILABLE;
}

impl Refuse for Shed {
    fn status(&self) -> Status {
        Shed::STATUS
    }

    fn warning(&self) -> Option<(WarnCode, Cow<'_, str>)> {
        match self {
            Shed::Subscriptions => Some((
                WarnCode::MISCELLANEOUS,
                Cow::Borrowed("Too many subscriptions to this conference"),
            )),
            _ => None,
        }
    }

    fn retry_later(&self) -> bool {
        true
    }

    fn label(&self) -> &'static str {
        match self {
            Shed::SourceRate => "source_rate",
            Shed::Transactions => "transactions",
            Shed::TransactionsHigh => "transactions_high",
            Shed::ShardQueue => "shard_queue",
            Shed::QueueHigh => "queue_high",
            Shed::QueueDelay => "queue_delay",
            Shed::Mailbox => "mailbox",
            Shed::MailboxHigh => "mailbox_high",
            Shed::Sessions => "sessions",
            Shed::Subscriptions => "subscriptions",
            Shed::PagerQueue => "pager_queue",
            Shed::Draining => "draining",
            Shed::Abandoned => "abandoned",
        }
    }

    fn count(&self) {
        match self {
            Shed::Abandoned => metrics::counter!("focus_sip_abandoned_total").increment(1),
            _ => metrics::counter!("focus_overload_rejections_total", "reason" => self.label())
                .increment(1),
        }
    }
}

impl Refuse for ShareRefusal {
    /// A seat is refused busy (the group is not full, this address's share is); the rest
    /// are load refused like any other.
    fn status(&self) -> Status {
        match self {
            ShareRefusal::ParticipantsPerSource => Status::BUSY_HERE,
            _ => Shed::STATUS,
        }
    }

    fn warning(&self) -> Option<(WarnCode, Cow<'_, str>)> {
        Some((
            WarnCode::MISCELLANEOUS,
            Cow::Borrowed(ShareRefusal::warning(*self)),
        ))
    }

    fn retry_later(&self) -> bool {
        true
    }

    fn label(&self) -> &'static str {
        ShareRefusal::label(*self)
    }

    fn count(&self) {
        ShareRefusal::count(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Shed; 13] = [
        Shed::SourceRate,
        Shed::Transactions,
        Shed::TransactionsHigh,
        Shed::ShardQueue,
        Shed::QueueHigh,
        Shed::QueueDelay,
        Shed::Mailbox,
        Shed::MailboxHigh,
        Shed::Sessions,
        Shed::Subscriptions,
        Shed::PagerQueue,
        Shed::Draining,
        Shed::Abandoned,
    ];

    #[test]
    fn every_shed_is_a_503_to_retry_later_with_a_label_of_the_metric_table() {
        let table = crate::metrics::LABELS
            .iter()
            .find(|(name, _, _)| *name == "focus_overload_rejections_total")
            .map(|(_, _, labels)| *labels)
            .unwrap();
        for s in ALL {
            assert_eq!(s.status(), Status::SERVICE_UNAVAILABLE, "{s:?}");
            assert_eq!(s.status().reason(), "Service Unavailable");
            assert!(s.retry_later(), "{s:?}");
            // Abandoned work has its own counter; the guard's source_rate is not pre-set.
            if !matches!(s, Shed::Abandoned | Shed::SourceRate) {
                assert!(table.contains(&s.label()), "{s:?} not in the metric table");
            }
        }
    }

    #[test]
    fn fair_shares_are_busy_for_a_seat_and_shed_otherwise() {
        for r in ShareRefusal::ALL {
            let want = match r {
                ShareRefusal::ParticipantsPerSource => Status::BUSY_HERE,
                _ => Status::SERVICE_UNAVAILABLE,
            };
            assert_eq!(Refuse::status(&r), want, "{r:?}");
            assert!(r.retry_later() && Refuse::warning(&r).is_some(), "{r:?}");
        }
    }
}
