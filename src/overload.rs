//! Overload and flood control at the edge, before any queue can grow.
//!
//! - [`TokenBucket`]: the pure rate limiter every limit here is built from.
//! - [`SourceLimiter`]: a token bucket per source IP address for SIP requests, with the SIP
//!   core's addresses exempt or limited separately; a flooding source gets a few `503`s with
//!   `Retry-After` per second and the rest of its requests are dropped unparsed.
//! - [`Admission`]: global admission control. New dialogs and subscriptions from untrusted
//!   sources are answered `503` once transactions, a shard queue or a session mailbox pass
//!   their high-water marks, so the room above the marks stays for established sessions
//!   (in-dialog requests) and the trusted core.
//! - `endpoint::Guard` (beside the endpoint it feeds) applies both to what the transports
//!   read; this module stays a pure leaf.
//! - [`ShareSettings`]: fair shares inside sessions: outsiders' share of subscriptions, seats
//!   and RTP legs per address ([`SourceQuota`]), group messages per sender
//!   ([`SenderBuckets`]); the stream transports keep a reserve of connections for the core.
//!
//! - [`Shed`]: the one overload refusal (`503` with `Retry-After`), by reason; fair-share
//!   refusals take their status from it too.
//!
//! Everything decides on `(source, now)` with no I/O of its own; the transports call it.

mod bucket;
mod limiter;
mod share;
mod shed;

pub use bucket::TokenBucket;
pub use limiter::{Admission, AdmissionSettings, SourceLimiter, SourceLimits, Verdict};
pub use share::{QuotaPermit, SenderBuckets, ShareRefusal, ShareSettings, SourceQuota};
pub use shed::Shed;

#[cfg(test)]
mod tests;
