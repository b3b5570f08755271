//! Chunking (RFC 4975 §5.1, §7.1.1): splitting a large message into SEND chunks, and
//! putting received chunks back together.
//!
//! The switch forwards whole messages (it wraps each in CPIM for the other participants), so
//! it reassembles what a sender chunked. Every piece of state a peer can grow is bounded:
//! the size of one message, the chunks of one message, the messages in progress.

use super::message::{ByteRange, Continuation, Request};
use super::syntax::new_transaction_id;
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

/// The chunks of `message` (a SEND with its whole body): bodies of at most `max_chunk` bytes
/// (zero-copy slices), `Byte-Range: start-end/total`, `+` on all but the last (`$`), a fresh
/// transaction id each. An empty body gives one empty chunk (`1-0/0`).
pub fn chunks(message: &Request, max_chunk: usize) -> Chunks<'_> {
    Chunks {
        message,
        max_chunk: max_chunk.max(1),
        offset: 0,
        done: false,
    }
}

/// Iterator returned by [`chunks`].
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    message: &'a Request,
    max_chunk: usize,
    /// Bytes of the body already handed out.
    offset: usize,
    done: bool,
}

impl Iterator for Chunks<'_> {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        if self.done {
            return None;
        }
        let body = &self.message.body;
        let end = body.len().min(self.offset + self.max_chunk);
        let last = end == body.len();
        let mut chunk = self.message.clone();
        chunk.transaction_id = new_transaction_id();
        chunk.body = body.slice(self.offset..end);
        chunk.byte_range = Some(ByteRange {
            start: self.offset as u64 + 1,
            end: Some(end as u64),
            total: Some(body.len() as u64),
        });
        chunk.continuation = if last {
            Continuation::Complete
        } else {
            Continuation::More
        };
        self.offset = end;
        self.done = last;
        Some(chunk)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = if self.done {
            0
        } else {
            (self.message.body.len() - self.offset)
                .div_ceil(self.max_chunk)
                .max(1)
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for Chunks<'_> {}

/// Bounds of a [`Reassembler`].
#[derive(Debug, Clone, Copy)]
pub struct ReassemblyLimits {
    /// Largest message accepted (declared total or bytes seen); above it, `413`.
    pub max_message: u64,
    /// Most chunks buffered for one message (tiny chunks would cost more in bookkeeping
    /// than in bytes).
    pub max_chunks: usize,
    /// Most messages in progress at once.
    pub max_partial: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        ReassemblyLimits {
            max_message: 4 * 1024 * 1024,
            max_chunks: 4096,
            max_partial: 16,
        }
    }
}

/// Why a chunk was refused; the message's state is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReassemblyError {
    /// Answer `400`.
    #[error("chunk without Message-ID")]
    MissingMessageId,
    /// Answer `413` (stop sending this message).
    #[error("message larger than the maximum")]
    TooLarge,
    /// Answer `413`: too many small chunks.
    #[error("too many chunks for one message")]
    TooManyChunks,
    /// Answer `413`: no room for another message in progress.
    #[error("too many messages in progress")]
    TooManyMessages,
    /// Answer `400`: a total, or the last byte, that contradicts earlier chunks.
    #[error("chunk inconsistent with earlier chunks")]
    Inconsistent,
}

impl ReassemblyError {
    /// The response code for the chunk.
    pub fn status(&self) -> u16 {
        match self {
            ReassemblyError::MissingMessageId | ReassemblyError::Inconsistent => {
                super::status::BAD_REQUEST
            }
            _ => super::status::STOP_SENDING,
        }
    }
}

/// What accepting a chunk led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reassembly {
    /// More chunks are needed.
    Partial,
    /// The whole message: the header fields of its first chunk, the whole body,
    /// `Byte-Range: 1-N/N` and flag `$`.
    Complete(Box<Request>),
    /// The sender aborted the message (`#`); `received` is what had arrived (for a REPORT).
    Aborted { received: Option<ByteRange> },
}

/// One message in progress.
#[derive(Debug)]
struct Partial {
    /// Header fields for the result (body empty): those of the chunk starting at byte 1 once
    /// it arrived, of the first chunk seen until then.
    template: Request,
    /// Chunk bodies by first byte position (1-based); overlaps are allowed (resent ranges).
    pieces: BTreeMap<u64, Bytes>,
    buffered: u64,
    total: Option<u64>,
    /// The last byte of the message, known once the `$` chunk arrived.
    last: Option<u64>,
}

impl Partial {
    /// The first contiguous run of bytes: (start, end), 1-based inclusive.
    fn first_run(&self) -> Option<(u64, u64)> {
        let mut iter = self.pieces.iter();
        let (&start, first) = iter.next()?;
        let mut end = start + first.len() as u64 - 1;
        for (&s, b) in iter {
            if s > end + 1 {
                break;
            }
            end = end.max(s + b.len() as u64 - 1);
        }
        Some((start, end))
    }

    fn received(&self) -> Option<ByteRange> {
        self.first_run().map(|(start, end)| ByteRange {
            start,
            end: Some(end),
            total: self.total,
        })
    }

    /// The message once bytes 1..=last all arrived.
    fn assemble(&mut self) -> Option<Request> {
        let target = self.last.or(self.total)?;
        let covered = match self.first_run() {
            Some((1, end)) => end,
            _ => 0,
        };
        if covered < target {
            return None;
        }
        let mut body = BytesMut::with_capacity(usize::try_from(target).ok()?);
        for (&s, b) in &self.pieces {
            let written = body.len() as u64;
            if written >= target {
                break;
            }
            // Skip what an overlapping earlier piece already wrote; cut at the last byte.
            let from = usize::try_from((written + 1).checked_sub(s)?).ok()?;
            let to = usize::try_from((target + 1 - s).min(b.len() as u64)).ok()?;
            if from < to {
                body.extend_from_slice(&b[from..to]);
            }
        }
        let mut message = std::mem::replace(
            &mut self.template,
            Request::new(super::message::Method::Send, Vec::new(), Vec::new()),
        );
        message.body = body.freeze();
        message.byte_range = Some(ByteRange::whole(target));
        message.continuation = Continuation::Complete;
        Some(message)
    }
}

/// Reassembles chunked SENDs, keyed by Message-ID, in or out of order.
#[derive(Debug)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    partial: HashMap<String, Partial>,
}

impl Reassembler {
    pub fn new(limits: ReassemblyLimits) -> Reassembler {
        Reassembler {
            limits,
            partial: HashMap::new(),
        }
    }

    /// Takes one chunk. The body length is what counts: a Byte-Range end that disagrees with
    /// it is ignored (RFC 4975's own first example declares 25 bytes for a 23-byte body), and
    /// `*` ends are the norm for interruptible chunks.
    pub fn accept(&mut self, chunk: Request) -> Result<Reassembly, ReassemblyError> {
        let id = chunk
            .message_id
            .clone()
            .ok_or(ReassemblyError::MissingMessageId)?;
        let result = self.accept_inner(&id, chunk);
        if !matches!(result, Ok(Reassembly::Partial)) {
            self.partial.remove(&id);
        }
        result
    }

    fn accept_inner(&mut self, id: &str, chunk: Request) -> Result<Reassembly, ReassemblyError> {
        let range = chunk.byte_range();
        let len = chunk.body.len() as u64;
        let start = range.start;
        if start == 0 {
            return Err(ReassemblyError::Inconsistent);
        }
        // Last byte of this chunk (start - 1 for an empty chunk).
        let end = start.checked_add(len).ok_or(ReassemblyError::TooLarge)? - 1;
        let max = self.limits.max_message;
        if range.total.is_some_and(|t| t > max) || end > max {
            return Err(ReassemblyError::TooLarge);
        }
        if range.total.is_some_and(|t| end > t) {
            return Err(ReassemblyError::Inconsistent);
        }
        let whole_range = |start: u64| (len > 0).then_some((start, end));
        if !self.partial.contains_key(id) {
            // The common case: a message in one chunk, passed on without a copy.
            match chunk.continuation {
                Continuation::Complete if start == 1 => {
                    return Ok(Reassembly::Complete(Box::new(chunk)))
                }
                Continuation::Aborted => {
                    let received = whole_range(start).map(|(s, e)| ByteRange {
                        start: s,
                        end: Some(e),
                        total: range.total,
                    });
                    return Ok(Reassembly::Aborted { received });
                }
                _ => {}
            }
            if self.partial.len() >= self.limits.max_partial {
                return Err(ReassemblyError::TooManyMessages);
            }
        }
        let limits = self.limits;
        let entry = self
            .partial
            .entry(id.to_owned())
            .or_insert_with(|| Partial {
                template: Request {
                    body: Bytes::new(),
                    ..chunk.clone()
                },
                pieces: BTreeMap::new(),
                buffered: 0,
                total: None,
                last: None,
            });
        match (entry.total, range.total) {
            (Some(a), Some(b)) if a != b => return Err(ReassemblyError::Inconsistent),
            (None, Some(b)) => entry.total = Some(b),
            _ => {}
        }
        let continuation = chunk.continuation;
        if start == 1 {
            entry.template = Request {
                body: Bytes::new(),
                ..chunk.clone()
            };
        }
        if len > 0 {
            let previous = entry.pieces.insert(start, chunk.body);
            entry.buffered = entry.buffered + len - previous.map_or(0, |p| p.len() as u64);
            if entry.buffered > max {
                return Err(ReassemblyError::TooLarge);
            }
            if entry.pieces.len() > limits.max_chunks {
                return Err(ReassemblyError::TooManyChunks);
            }
        }
        match continuation {
            Continuation::Aborted => {
                return Ok(Reassembly::Aborted {
                    received: entry.received(),
                });
            }
            Continuation::Complete => match entry.last {
                Some(l) if l != end => return Err(ReassemblyError::Inconsistent),
                _ => entry.last = Some(end),
            },
            Continuation::More => {}
        }
        if entry
            .last
            .is_some_and(|l| entry.pieces.range(l + 1..).next().is_some())
        {
            return Err(ReassemblyError::Inconsistent);
        }
        Ok(match entry.assemble() {
            Some(message) => Reassembly::Complete(Box::new(message)),
            None => Reassembly::Partial,
        })
    }

    /// What arrived so far of a message in progress (its first contiguous run of bytes), for
    /// a REPORT.
    pub fn received(&self, message_id: &str) -> Option<ByteRange> {
        self.partial.get(message_id)?.received()
    }

    /// Forgets a message in progress (its sender left, or it timed out).
    pub fn remove(&mut self, message_id: &str) -> bool {
        self.partial.remove(message_id).is_some()
    }

    /// Messages in progress.
    pub fn len(&self) -> usize {
        self.partial.len()
    }

    pub fn is_empty(&self) -> bool {
        self.partial.is_empty()
    }
}
