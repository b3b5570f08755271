//! Fragmentation of messages too large for one UDP datagram (RFC 8855 §5.1, §6.2): each piece
//! repeats the COMMON-HEADER with F set, the whole Payload Length, and its own Fragment Offset
//! and Fragment Length (4-octet units).
//!
//! Reassembly is bounded (messages in progress, octets per message) and evicts the oldest
//! partial message instead of growing; it keeps no clock, so a driver that wants partial
//! messages to expire calls [`Reassembler::clear`] on its own timer.

use super::encode::{encode, EncodeError};
use super::error::DecodeError;
use super::message::{Fragment, Header, Message, FRAGMENT_HEADER_LEN, HEADER_LEN};
use super::parse::{message, parse_payload};
use bytes::{Bytes, BytesMut};
use std::collections::BTreeMap;

/// Encodes `msg` into datagrams of at most `max_datagram` octets: one when it fits, else
/// fragments. `max_datagram` below 20 (a fragment header and one unit) is raised to 20.
pub fn encode_datagrams(msg: &Message, max_datagram: usize) -> Result<Vec<Bytes>, EncodeError> {
    let mut whole = BytesMut::new();
    encode(msg, &mut whole)?;
    if whole.len() <= max_datagram || msg.fragment.is_some() {
        return Ok(vec![whole.freeze()]);
    }
    let whole = whole.freeze();
    let payload = whole.slice(HEADER_LEN..);
    let total = u16::try_from(payload.len() / 4).map_err(|_| EncodeError::MessageTooLong {
        octets: payload.len(),
    })?;
    let piece = (max_datagram.max(FRAGMENT_HEADER_LEN + 4) - FRAGMENT_HEADER_LEN) / 4 * 4;
    let mut out = Vec::new();
    for (i, chunk) in payload.chunks(piece).enumerate() {
        let offset = (i * piece / 4) as u16;
        let start = i * piece;
        let fragment = Fragment {
            total,
            offset,
            data: payload.slice(start..start + chunk.len()),
        };
        let mut buf = BytesMut::with_capacity(FRAGMENT_HEADER_LEN + chunk.len());
        let piece_msg = Message {
            fragment: Some(fragment),
            attributes: Vec::new(),
            ..msg.clone()
        };
        encode(&piece_msg, &mut buf)?;
        out.push(buf.freeze());
    }
    Ok(out)
}

/// Which message a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    conference_id: u32,
    transaction_id: u16,
    user_id: u16,
    primitive: u8,
    responder: bool,
}

#[derive(Debug, Clone)]
struct Partial {
    /// Arrival order of the first piece, for eviction.
    age: u64,
    total: u16,
    pieces: BTreeMap<u16, Bytes>,
}

/// Joins fragments back into messages.
#[derive(Debug, Clone)]
pub struct Reassembler {
    /// Partial messages kept at once; the oldest goes when a new one would exceed this.
    max_pending: usize,
    /// Largest payload accepted, in octets.
    max_message: usize,
    pending: BTreeMap<Key, Partial>,
    next_age: u64,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(16, super::DEFAULT_MAX_MESSAGE)
    }
}

impl Reassembler {
    pub fn new(max_pending: usize, max_message: usize) -> Reassembler {
        Reassembler {
            max_pending: max_pending.max(1),
            max_message,
            pending: BTreeMap::new(),
            next_age: 0,
        }
    }

    /// Takes a decoded datagram: a whole message comes straight back, a fragment is kept
    /// until its message is complete, then that message is parsed and returned.
    pub fn push(&mut self, msg: Message) -> Result<Option<Message>, DecodeError> {
        let Some(fragment) = msg.fragment.clone() else {
            return Ok(Some(msg));
        };
        let header = Header {
            version: msg.version,
            responder: msg.responder,
            fragmented: false,
            primitive: msg.primitive,
            payload_length: fragment.total,
            conference_id: msg.conference_id,
            transaction_id: msg.transaction_id,
            user_id: msg.user_id,
        };
        // Fragments from `decode_datagram` fit their total; one built by hand may not.
        let end = 4 * usize::from(fragment.offset) + fragment.data.len();
        let size = 4 * usize::from(fragment.total);
        if fragment.data.len() % 4 != 0 || fragment.data.is_empty() || end > size {
            return Err(DecodeError::IncorrectLength { header });
        }
        if size > self.max_message {
            return Err(DecodeError::TooLarge {
                header,
                size: HEADER_LEN + size,
                max: self.max_message,
            });
        }
        let key = Key {
            conference_id: msg.conference_id,
            transaction_id: msg.transaction_id,
            user_id: msg.user_id,
            primitive: msg.primitive.code(),
            responder: msg.responder,
        };
        if !self.pending.contains_key(&key) && self.pending.len() >= self.max_pending {
            let oldest = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.age)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.pending.remove(&oldest);
            }
        }
        let age = self.next_age;
        let partial = self.pending.entry(key).or_insert_with(|| Partial {
            age,
            total: fragment.total,
            pieces: BTreeMap::new(),
        });
        self.next_age += 1;
        if partial.total != fragment.total {
            self.pending.remove(&key);
            return Err(DecodeError::IncorrectLength { header });
        }
        partial
            .pieces
            .entry(fragment.offset)
            .or_insert(fragment.data);
        let Some(payload) = assemble(partial) else {
            return Ok(None);
        };
        self.pending.remove(&key);
        let attributes = parse_payload(&header, payload)?;
        Ok(Some(message(header, None, attributes)))
    }

    /// Drops every partial message.
    pub fn clear(&mut self) {
        self.pending.clear();
    }

    /// Partial messages held.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// The payload, once the pieces cover it from 0 to the total with no gap.
fn assemble(partial: &Partial) -> Option<Bytes> {
    let total = 4 * usize::from(partial.total);
    let mut covered = 0;
    for (&offset, data) in &partial.pieces {
        let start = 4 * usize::from(offset);
        if start > covered {
            return None;
        }
        covered = covered.max(start + data.len());
    }
    if covered < total {
        return None;
    }
    let mut out = vec![0u8; total];
    for (&offset, data) in &partial.pieces {
        let start = (4 * usize::from(offset)).min(total);
        let end = (start + data.len()).min(total);
        out[start..end].copy_from_slice(&data[..end - start]);
    }
    Some(Bytes::from(out))
}
