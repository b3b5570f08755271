//! Why a message could not be decoded, and what the floor control server answers.
//!
//! Each variant maps to one BFCP Error code (RFC 8855 §13). Once the 12-octet COMMON-HEADER
//! is read the error keeps it, so the Error response can be addressed (conference, transaction,
//! user). [`DecodeError::closes_stream`] says when a TCP stream cannot be framed any further.

use super::attribute::{Attribute, ErrorDetails};
use super::codes::{ErrorCode, Primitive};
use super::message::{Header, Message, VERSION_UNRELIABLE};
use thiserror::Error;

/// A fault inside a payload whose length was right: Error 10 (Unable to Parse Message).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Fault {
    /// An attribute's Length is below the minimum for its type or the wrong fixed size.
    #[error("attribute type {kind} has an invalid length {len}")]
    AttributeLength { kind: u8, len: u8 },
    /// A nested attribute runs past the end of its grouped attribute.
    #[error("attribute type {kind} overruns its grouped attribute")]
    Overrun { kind: u8 },
    /// A value the RFC does not assign (request status, priority).
    #[error("attribute type {kind} has an unassigned value {value}")]
    BadValue { kind: u8, value: u8 },
    /// The F bit on a stream, where messages are never fragmented.
    #[error("fragment received over a stream")]
    FragmentOverStream,
}

/// A message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// A datagram shorter than the COMMON-HEADER: nobody to answer, drop it.
    #[error("shorter than the 12-octet common header")]
    Truncated,
    /// Error 12. `supported` is the version this transport speaks (the Error goes out in it).
    /// On a stream the layout of what follows is unknown: answer, then close.
    #[error("unsupported version {} (this transport speaks {supported})", header.version)]
    UnsupportedVersion { header: Header, supported: u8 },
    /// A message over the stream decoder's (or reassembler's) limit. On a stream it is not
    /// buffered, so the stream is lost: answer Error 14 (Generic Error: no code fits
    /// better), then close.
    #[error("message of {size} octets exceeds the {max}-octet limit")]
    TooLarge {
        header: Header,
        size: usize,
        max: usize,
    },
    /// Error 13: the Payload Length disagrees with the datagram or with the attributes.
    #[error("payload length does not match the message")]
    IncorrectLength { header: Header },
    /// Error 4, naming every unknown attribute type that had the M bit set.
    #[error("unknown mandatory attribute types {kinds:?}")]
    UnknownMandatoryAttribute { header: Header, kinds: Vec<u8> },
    /// Error 10.
    #[error("unable to parse: {fault}")]
    Unparsable { header: Header, fault: Fault },
}

impl DecodeError {
    /// The header, when it was read: then an Error response can be addressed.
    pub fn header(&self) -> Option<&Header> {
        match self {
            DecodeError::Truncated => None,
            DecodeError::UnsupportedVersion { header, .. }
            | DecodeError::TooLarge { header, .. }
            | DecodeError::IncorrectLength { header }
            | DecodeError::UnknownMandatoryAttribute { header, .. }
            | DecodeError::Unparsable { header, .. } => Some(header),
        }
    }

    /// The BFCP Error code that answers this.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::Truncated | DecodeError::IncorrectLength { .. } => {
                ErrorCode::IncorrectMessageLength
            }
            DecodeError::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            DecodeError::TooLarge { .. } => ErrorCode::GenericError,
            DecodeError::UnknownMandatoryAttribute { .. } => ErrorCode::UnknownMandatoryAttribute,
            DecodeError::Unparsable { .. } => ErrorCode::UnableToParseMessage,
        }
    }

    /// On a stream: nothing after this can be framed, close the connection (after sending
    /// [`error_response`](Self::error_response)). The stream decoder keeps failing.
    pub fn closes_stream(&self) -> bool {
        matches!(
            self,
            DecodeError::UnsupportedVersion { .. } | DecodeError::TooLarge { .. }
        )
    }

    /// The Error message a floor control server sends back, when it can be addressed
    /// (RFC 8855 §13). An error about an Error is never answered, so peers cannot loop.
    pub fn error_response(&self) -> Option<Message> {
        let header = self.header()?;
        if header.primitive == Primitive::Error {
            return None;
        }
        let version = match self {
            DecodeError::UnsupportedVersion { supported, .. } => *supported,
            _ => header.version,
        };
        let details = match self {
            DecodeError::UnknownMandatoryAttribute { kinds, .. } => {
                ErrorDetails::UnknownAttributes(kinds.clone())
            }
            _ => ErrorDetails::none(),
        };
        let mut response = Message::new(
            version,
            Primitive::Error,
            header.conference_id,
            header.transaction_id,
            header.user_id,
        )
        .with_attributes(vec![
            Attribute::error_code(self.code(), details),
            Attribute::error_info(self.to_string()),
        ]);
        response.responder = version == VERSION_UNRELIABLE;
        Some(response)
    }
}
