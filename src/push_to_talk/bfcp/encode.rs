//! Writes BFCP messages (RFC 8855 §5): lengths computed from what was written, padding
//! zeroed, nothing written when the message cannot be represented.

use super::attribute::{Attribute, ErrorDetails};
use super::message::Message;
use bytes::{BufMut, BytesMut};
use thiserror::Error;

/// A message the wire format cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// Over the 8-bit Length (255 octets; 252 for a grouped attribute with its nested ones).
    #[error("attribute type {kind} longer than its 8-bit length allows")]
    AttributeTooLong { kind: u8 },
    /// Over the 16-bit Payload Length (65535 units of 4 octets).
    #[error("payload of {octets} octets longer than the payload length field allows")]
    MessageTooLong { octets: usize },
    /// A 7-bit field (attribute type, supported or unknown type) given a value above 127.
    #[error("type {0} does not fit 7 bits")]
    TypeOutOfRange(u8),
    /// A 3-bit version above 7.
    #[error("version {0} does not fit 3 bits")]
    VersionOutOfRange(u8),
    /// A fragment that is not whole 4-octet units, is empty, or does not fit its total.
    #[error(
        "fragment of {octets} octets at offset {offset} does not fit a total of {total} units"
    )]
    BadFragment {
        octets: usize,
        offset: u16,
        total: u16,
    },
}

/// Appends `msg` to `buf`. On error `buf` is left as it was.
pub fn encode(msg: &Message, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let start = buf.len();
    let result = write_message(msg, buf, start);
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

fn write_message(msg: &Message, buf: &mut BytesMut, start: usize) -> Result<(), EncodeError> {
    if msg.version > 7 {
        return Err(EncodeError::VersionOutOfRange(msg.version));
    }
    let flags =
        msg.version << 5 | u8::from(msg.responder) << 4 | u8::from(msg.fragment.is_some()) << 3;
    buf.put_u8(flags);
    buf.put_u8(msg.primitive.code());
    buf.put_u16(0); // Payload Length, set below
    buf.put_u32(msg.conference_id);
    buf.put_u16(msg.transaction_id);
    buf.put_u16(msg.user_id);
    let units = match &msg.fragment {
        Some(f) => {
            let bad = || EncodeError::BadFragment {
                octets: f.data.len(),
                offset: f.offset,
                total: f.total,
            };
            let units = u16::try_from(f.data.len() / 4).map_err(|_| bad())?;
            let fits = u32::from(f.offset) + u32::from(units) <= u32::from(f.total);
            if f.data.len() % 4 != 0 || units == 0 || !fits {
                return Err(bad());
            }
            buf.put_u16(f.offset);
            buf.put_u16(units);
            buf.put_slice(&f.data);
            f.total
        }
        None => {
            let body = buf.len();
            for a in &msg.attributes {
                write_attribute(a, buf)?;
            }
            let octets = buf.len() - body;
            u16::try_from(octets / 4).map_err(|_| EncodeError::MessageTooLong { octets })?
        }
    };
    buf[start + 2..start + 4].copy_from_slice(&units.to_be_bytes());
    Ok(())
}

fn write_attribute(a: &Attribute, buf: &mut BytesMut) -> Result<(), EncodeError> {
    let start = buf.len();
    let kind = seven_bits(a.kind())?;
    buf.put_u8(kind << 1 | u8::from(a.mandatory()));
    buf.put_u8(0); // Length, set below
    match a {
        Attribute::BeneficiaryId { id, .. }
        | Attribute::FloorId { id, .. }
        | Attribute::FloorRequestId { id, .. } => buf.put_u16(*id),
        Attribute::Priority { priority, .. } => buf.put_u16(u16::from(priority.code()) << 13),
        Attribute::RequestStatus {
            status,
            queue_position,
            ..
        } => {
            buf.put_u8(status.code());
            buf.put_u8(*queue_position);
        }
        Attribute::ErrorCode { code, details, .. } => {
            buf.put_u8(code.code());
            match details {
                ErrorDetails::UnknownAttributes(kinds) => {
                    for &k in kinds {
                        buf.put_u8(seven_bits(k)? << 1);
                    }
                }
                ErrorDetails::Other(bytes) => buf.put_slice(bytes),
            }
        }
        Attribute::ErrorInfo { text, .. }
        | Attribute::ParticipantProvidedInfo { text, .. }
        | Attribute::StatusInfo { text, .. }
        | Attribute::UserDisplayName { text, .. }
        | Attribute::UserUri { text, .. } => buf.put_slice(text.as_bytes()),
        Attribute::SupportedAttributes { kinds, .. } => {
            for &k in kinds {
                buf.put_u8(seven_bits(k)? << 1);
            }
        }
        Attribute::SupportedPrimitives { primitives, .. } => {
            for p in primitives {
                buf.put_u8(p.code());
            }
        }
        Attribute::BeneficiaryInformation {
            beneficiary_id: id,
            attributes,
            ..
        }
        | Attribute::FloorRequestInformation {
            floor_request_id: id,
            attributes,
            ..
        }
        | Attribute::RequestedByInformation {
            requested_by_id: id,
            attributes,
            ..
        }
        | Attribute::FloorRequestStatus {
            floor_id: id,
            attributes,
            ..
        }
        | Attribute::OverallRequestStatus {
            floor_request_id: id,
            attributes,
            ..
        } => {
            buf.put_u16(*id);
            for nested in attributes {
                write_attribute(nested, buf)?;
            }
        }
        Attribute::Unknown { data, .. } => buf.put_slice(data),
    }
    let len = buf.len() - start;
    buf[start + 1] = u8::try_from(len).map_err(|_| EncodeError::AttributeTooLong { kind })?;
    buf.put_bytes(0, super::attribute::padded(len) - len);
    Ok(())
}

fn seven_bits(v: u8) -> Result<u8, EncodeError> {
    if v > 127 {
        Err(EncodeError::TypeOutOfRange(v))
    } else {
        Ok(v)
    }
}
