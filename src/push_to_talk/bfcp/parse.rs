//! Reads the attributes of a payload (RFC 8855 §5.2) and whole datagrams (§6.2).
//!
//! Structure is checked here (lengths, padding positions, assigned values); what each
//! primitive must carry (§5.3) is the floor machine's business. Unknown attributes with the M
//! bit set are all collected before the message is refused, so Error 4 names every one.

use super::attribute::{Attribute, ErrorDetails, Text};
use super::codes::{AttributeType, ErrorCode, Primitive, Priority, RequestStatus};
use super::error::{DecodeError, Fault};
use super::message::{
    Fragment, Header, Message, FRAGMENT_HEADER_LEN, HEADER_LEN, VERSION_UNRELIABLE,
};
use bytes::Bytes;

/// Decodes one UDP datagram (version 2). A fragment comes back with [`Message::fragment`]
/// set and no attributes; hand it to a [`Reassembler`](super::Reassembler).
pub fn decode_datagram(data: &[u8]) -> Result<Message, DecodeError> {
    decode_datagram_bytes(Bytes::copy_from_slice(data))
}

/// [`decode_datagram`] without the copy, for a datagram already in a `Bytes`.
pub fn decode_datagram_bytes(data: Bytes) -> Result<Message, DecodeError> {
    let header = Header::read(&data).ok_or(DecodeError::Truncated)?;
    if header.version != VERSION_UNRELIABLE {
        return Err(DecodeError::UnsupportedVersion {
            header,
            supported: VERSION_UNRELIABLE,
        });
    }
    if !header.fragmented {
        if data.len() != header.message_len() {
            return Err(DecodeError::IncorrectLength { header });
        }
        let attributes = parse_payload(&header, data.slice(HEADER_LEN..))?;
        return Ok(message(header, None, attributes));
    }
    let (Some(offset), Some(units)) = (be16(&data, 12), be16(&data, 14)) else {
        return Err(DecodeError::IncorrectLength { header });
    };
    let len = 4 * usize::from(units);
    let fits = u32::from(offset) + u32::from(units) <= u32::from(header.payload_length);
    if data.len() != FRAGMENT_HEADER_LEN + len || !fits || units == 0 {
        return Err(DecodeError::IncorrectLength { header });
    }
    let fragment = Fragment {
        total: header.payload_length,
        offset,
        data: data.slice(FRAGMENT_HEADER_LEN..),
    };
    Ok(message(header, Some(fragment), Vec::new()))
}

pub(super) fn message(
    header: Header,
    fragment: Option<Fragment>,
    attributes: Vec<Attribute>,
) -> Message {
    Message {
        version: header.version,
        responder: header.responder,
        fragment,
        primitive: header.primitive,
        conference_id: header.conference_id,
        transaction_id: header.transaction_id,
        user_id: header.user_id,
        attributes,
    }
}

/// Parses a whole payload (exactly Payload Length × 4 octets).
pub(super) fn parse_payload(
    header: &Header,
    payload: Bytes,
) -> Result<Vec<Attribute>, DecodeError> {
    let mut unknown = Vec::new();
    let attributes = parse_list(&payload, &mut unknown).map_err(|bad| match bad {
        Bad::Overrun { .. } => DecodeError::IncorrectLength { header: *header },
        Bad::Fault(fault) => DecodeError::Unparsable {
            header: *header,
            fault,
        },
    })?;
    if !unknown.is_empty() {
        return Err(DecodeError::UnknownMandatoryAttribute {
            header: *header,
            kinds: unknown,
        });
    }
    Ok(attributes)
}

enum Bad {
    /// An attribute (or its padding) runs past the end of its container: the payload's
    /// (Error 13) or a grouped attribute's (Error 10).
    Overrun {
        kind: u8,
    },
    Fault(Fault),
}

fn parse_list(data: &Bytes, unknown: &mut Vec<u8>) -> Result<Vec<Attribute>, Bad> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let first = data[at];
        let kind = first >> 1;
        let mandatory = first & 1 == 1;
        let Some(&len) = data.get(at + 1) else {
            return Err(Bad::Overrun { kind });
        };
        let len_usize = usize::from(len);
        if len_usize < 2 {
            return Err(Bad::Fault(Fault::AttributeLength { kind, len }));
        }
        let end = at + super::attribute::padded(len_usize);
        if end > data.len() {
            return Err(Bad::Overrun { kind });
        }
        let body = data.slice(at + 2..at + len_usize);
        if let Some(a) = parse_one(kind, mandatory, len, body, unknown)? {
            out.push(a);
        }
        at = end;
    }
    Ok(out)
}

/// One attribute's value (`body`: after the 2-octet header, before the padding). `None` for
/// an unknown mandatory attribute, which is only recorded.
fn parse_one(
    kind: u8,
    mandatory: bool,
    len: u8,
    body: Bytes,
    unknown: &mut Vec<u8>,
) -> Result<Option<Attribute>, Bad> {
    let Some(known) = AttributeType::from_code(kind) else {
        if mandatory {
            unknown.push(kind);
            return Ok(None);
        }
        return Ok(Some(Attribute::Unknown {
            kind,
            mandatory,
            data: body,
        }));
    };
    let bad_len = || Bad::Fault(Fault::AttributeLength { kind, len });
    let fixed =
        || -> Result<[u8; 2], Bad> { <[u8; 2]>::try_from(&body[..]).map_err(|_| bad_len()) };
    let text = || Text::new(body.clone());
    let grouped = |unknown: &mut Vec<u8>| -> Result<(u16, Vec<Attribute>), Bad> {
        if body.len() < 2 || len % 4 != 0 {
            return Err(bad_len());
        }
        let id = u16::from_be_bytes([body[0], body[1]]);
        let nested = parse_list(&body.slice(2..), unknown).map_err(|bad| match bad {
            Bad::Overrun { kind } => Bad::Fault(Fault::Overrun { kind }),
            fault => fault,
        })?;
        Ok((id, nested))
    };
    let attribute = match known {
        AttributeType::BeneficiaryId => Attribute::BeneficiaryId {
            mandatory,
            id: u16::from_be_bytes(fixed()?),
        },
        AttributeType::FloorId => Attribute::FloorId {
            mandatory,
            id: u16::from_be_bytes(fixed()?),
        },
        AttributeType::FloorRequestId => Attribute::FloorRequestId {
            mandatory,
            id: u16::from_be_bytes(fixed()?),
        },
        AttributeType::Priority => {
            let value = fixed()?[0] >> 5;
            let priority =
                Priority::from_code(value).ok_or(Bad::Fault(Fault::BadValue { kind, value }))?;
            Attribute::Priority {
                mandatory,
                priority,
            }
        }
        AttributeType::RequestStatus => {
            let [value, queue_position] = fixed()?;
            let status = RequestStatus::from_code(value)
                .ok_or(Bad::Fault(Fault::BadValue { kind, value }))?;
            Attribute::RequestStatus {
                mandatory,
                status,
                queue_position,
            }
        }
        AttributeType::ErrorCode => {
            let (&code, details) = body.split_first().ok_or_else(bad_len)?;
            let code = ErrorCode::from_code(code);
            let details = if code == ErrorCode::UnknownMandatoryAttribute {
                ErrorDetails::UnknownAttributes(details.iter().map(|b| b >> 1).collect())
            } else {
                ErrorDetails::Other(body.slice(1..))
            };
            Attribute::ErrorCode {
                mandatory,
                code,
                details,
            }
        }
        AttributeType::ErrorInfo => Attribute::ErrorInfo {
            mandatory,
            text: text(),
        },
        AttributeType::ParticipantProvidedInfo => Attribute::ParticipantProvidedInfo {
            mandatory,
            text: text(),
        },
        AttributeType::StatusInfo => Attribute::StatusInfo {
            mandatory,
            text: text(),
        },
        AttributeType::UserDisplayName => Attribute::UserDisplayName {
            mandatory,
            text: text(),
        },
        AttributeType::UserUri => Attribute::UserUri {
            mandatory,
            text: text(),
        },
        AttributeType::SupportedAttributes => Attribute::SupportedAttributes {
            mandatory,
            kinds: body.iter().map(|b| b >> 1).collect(),
        },
        AttributeType::SupportedPrimitives => Attribute::SupportedPrimitives {
            mandatory,
            primitives: body.iter().map(|&b| Primitive::from_code(b)).collect(),
        },
        AttributeType::BeneficiaryInformation => {
            let (beneficiary_id, attributes) = grouped(unknown)?;
            Attribute::BeneficiaryInformation {
                mandatory,
                beneficiary_id,
                attributes,
            }
        }
        AttributeType::FloorRequestInformation => {
            let (floor_request_id, attributes) = grouped(unknown)?;
            Attribute::FloorRequestInformation {
                mandatory,
                floor_request_id,
                attributes,
            }
        }
        AttributeType::RequestedByInformation => {
            let (requested_by_id, attributes) = grouped(unknown)?;
            Attribute::RequestedByInformation {
                mandatory,
                requested_by_id,
                attributes,
            }
        }
        AttributeType::FloorRequestStatus => {
            let (floor_id, attributes) = grouped(unknown)?;
            Attribute::FloorRequestStatus {
                mandatory,
                floor_id,
                attributes,
            }
        }
        AttributeType::OverallRequestStatus => {
            let (floor_request_id, attributes) = grouped(unknown)?;
            Attribute::OverallRequestStatus {
                mandatory,
                floor_request_id,
                attributes,
            }
        }
    };
    Ok(Some(attribute))
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}
