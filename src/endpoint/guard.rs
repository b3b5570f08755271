//! The sink in front of the endpoint: per-source limits before parsing, admission marks
//! after. The decisions are `overload`'s (pure); this is where they meet the endpoint and
//! the transports.

use super::Endpoint;
use crate::overload::{Admission, Shed, SourceLimiter, Verdict};
use crate::sip::{Message, Method, ParseError};
use crate::transport::{Sink, Target};
use std::sync::Arc;
use std::time::Instant;

/// Applies [`SourceLimiter`] and [`Admission`] to what the transports read, then hands the
/// rest to the endpoint.
pub struct Guard {
    endpoint: Endpoint,
    limiter: SourceLimiter,
    admission: Arc<Admission>,
}

impl Guard {
    pub fn new(endpoint: Endpoint, limiter: SourceLimiter, admission: Arc<Admission>) -> Guard {
        Guard {
            endpoint,
            limiter,
            admission,
        }
    }

    /// Untrusted sources whose rate is tracked now.
    pub fn tracked_sources(&self) -> usize {
        self.limiter.tracked()
    }
}

/// A request that starts new work (a dialog, a subscription, a page): out of dialog and not
/// an ACK or CANCEL, which belong to work already admitted.
fn is_new_work(message: &Message) -> bool {
    match message {
        Message::Request(r) => {
            r.to.tag().is_none() && !matches!(r.method, Method::Ack | Method::Cancel)
        }
        Message::Response(_) => false,
    }
}

impl Sink for Guard {
    fn admit(&self, source: &Target, data: &[u8]) -> Verdict {
        // Responses answer requests the focus sent (bounded by what it sends); a stray one is
        // cheap to drop later. Only requests count against a source's rate.
        if data.starts_with(b"SIP/") {
            return Verdict::Admit;
        }
        let verdict = self.limiter.check(source.addr.ip(), Instant::now());
        if verdict == Verdict::Drop {
            metrics::counter!("focus_flood_dropped_total", "transport" => source.protocol.label())
                .increment(1);
        }
        verdict
    }

    fn on_message(&self, message: Result<Message, ParseError>, source: Target) {
        if let Ok(msg) = &message {
            if is_new_work(msg) {
                let call_id = match msg {
                    Message::Request(r) => r.call_id(),
                    Message::Response(r) => r.call_id(),
                };
                let (queued, capacity) = self.endpoint.shard_backlog(call_id);
                if let Some(why) = self.admission.refuse_new(
                    source.addr.ip(),
                    self.endpoint.active_transactions(),
                    queued,
                    capacity,
                ) {
                    self.on_shed(message, source, why);
                    return;
                }
            }
        }
        self.endpoint.on_message(message, source);
    }

    fn on_shed(&self, message: Result<Message, ParseError>, source: Target, why: Shed) {
        self.endpoint.on_shed(message, source, why);
    }

    fn on_stream_error(&self, source: Target, error: crate::sip::FrameError) {
        self.endpoint.on_stream_error(source, error);
    }
}
