//! A BFCP message: the COMMON-HEADER (RFC 8855 §5.1) and its attributes.
//!
//! ```text
//!  0                   1                   2                   3
//! | Ver |R|F| Res |  Primitive    |        Payload Length         |
//! |                         Conference ID                         |
//! |         Transaction ID        |            User ID            |
//! | Fragment Offset (if F is set) | Fragment Length (if F is set) |
//! ```
//!
//! Payload Length, Fragment Offset and Fragment Length count 4-octet units after the header.

use super::attribute::Attribute;
use super::codes::Primitive;
use bytes::Bytes;

/// Version 1: BFCP over TCP/TLS (RFC 4582 compatible).
pub const VERSION_RELIABLE: u8 = 1;
/// Version 2: BFCP over UDP/DTLS, with the R and F bits meaningful.
pub const VERSION_UNRELIABLE: u8 = 2;
/// The COMMON-HEADER without fragment fields.
pub const HEADER_LEN: usize = 12;
/// The COMMON-HEADER of a fragment.
pub const FRAGMENT_HEADER_LEN: usize = 16;

/// One piece of a message sent over UDP in several datagrams (RFC 8855 §5.1 and §6.2).
/// A message carrying one has no attributes: [`Reassembler`](super::Reassembler) joins the
/// pieces and parses the whole.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// The whole message's payload length (the header's Payload Length), in 4-octet units.
    pub total: u16,
    /// Where this piece starts in the payload (Fragment Offset), in 4-octet units.
    pub offset: u16,
    /// This piece: whole 4-octet units (Fragment Length is its length / 4).
    pub data: Bytes,
}

/// A decoded or to-be-encoded BFCP message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// 1 over TCP/TLS, 2 over UDP/DTLS.
    pub version: u8,
    /// R: this is the response of a transaction the other side opened. Meaningful over UDP
    /// only (over TCP the RFC says to clear it).
    pub responder: bool,
    /// Set (and F on the wire) when this datagram carries only a piece of the message.
    pub fragment: Option<Fragment>,
    pub primitive: Primitive,
    pub conference_id: u32,
    /// Matches a response to its request. 0 on server-initiated messages over TCP.
    pub transaction_id: u16,
    pub user_id: u16,
    pub attributes: Vec<Attribute>,
}

impl Message {
    /// A whole (unfragmented) message of `version`, without attributes, R clear.
    pub fn new(
        version: u8,
        primitive: Primitive,
        conference_id: u32,
        transaction_id: u16,
        user_id: u16,
    ) -> Message {
        Message {
            version,
            responder: false,
            fragment: None,
            primitive,
            conference_id,
            transaction_id,
            user_id,
            attributes: Vec::new(),
        }
    }

    pub fn with_attributes(mut self, attributes: Vec<Attribute>) -> Message {
        self.attributes = attributes;
        self
    }

    /// The header fields of this message.
    pub fn header(&self) -> Header {
        Header {
            version: self.version,
            responder: self.responder,
            fragmented: self.fragment.is_some(),
            primitive: self.primitive,
            payload_length: self.fragment.as_ref().map_or_else(
                || {
                    let octets: usize = self.attributes.iter().map(Attribute::encoded_len).sum();
                    u16::try_from(octets / 4).unwrap_or(u16::MAX)
                },
                |f| f.total,
            ),
            conference_id: self.conference_id,
            transaction_id: self.transaction_id,
            user_id: self.user_id,
        }
    }
}

/// The fixed part of a COMMON-HEADER as read: enough to address an Error response to a
/// message whose payload could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    pub version: u8,
    pub responder: bool,
    pub fragmented: bool,
    pub primitive: Primitive,
    /// In 4-octet units, header excluded.
    pub payload_length: u16,
    pub conference_id: u32,
    pub transaction_id: u16,
    pub user_id: u16,
}

impl Header {
    /// Reads the first 12 octets; `None` when fewer arrived.
    pub fn read(b: &[u8]) -> Option<Header> {
        let b: &[u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Header {
            version: b[0] >> 5,
            responder: b[0] & 0x10 != 0,
            fragmented: b[0] & 0x08 != 0,
            primitive: Primitive::from_code(b[1]),
            payload_length: u16::from_be_bytes([b[2], b[3]]),
            conference_id: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            transaction_id: u16::from_be_bytes([b[8], b[9]]),
            user_id: u16::from_be_bytes([b[10], b[11]]),
        })
    }

    /// Octets of the whole message: header plus payload (fragment fields not counted).
    pub fn message_len(&self) -> usize {
        HEADER_LEN + 4 * usize::from(self.payload_length)
    }
}
