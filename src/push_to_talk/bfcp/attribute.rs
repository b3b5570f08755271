//! BFCP attributes (RFC 8855 §5.2): a TLV of a 7-bit type, the M (mandatory) bit and an
//! 8-bit length in octets that counts the 2-octet header but not the zero padding to the next
//! 4-octet boundary. Grouped attributes (§5.2.14 to §5.2.18) open with a 16-bit id and nest
//! attributes; their length counts the nested attributes with their padding.
//!
//! Every variant keeps the M bit it arrived with, so a decoded message re-encodes to the same
//! bytes. RFC 8855 gives the bit meaning only for attributes a receiver does not know (it must
//! reject the message if the bit is set), so the constructors here leave it clear: an older
//! peer then ignores what it does not know instead of failing the whole message.
//!
//! Grouped attributes keep their nested attributes as a list, in order, including unknown
//! extension attributes; the codec checks structure, and the floor machine checks that a
//! request carries what its primitive's ABNF (§5.3) needs.

use super::codes::{ErrorCode, Primitive, Priority, RequestStatus};
use bytes::Bytes;
use std::fmt;

/// The UTF-8 text of ERROR-INFO, PARTICIPANT-PROVIDED-INFO, STATUS-INFO, USER-DISPLAY-NAME and
/// USER-URI. Kept as received (zero-copy, not validated): a display name in a stray charset
/// should not cost the whole FloorRequest.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Text(Bytes);

impl Text {
    pub fn new(bytes: Bytes) -> Text {
        Text(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// The text, when it is valid UTF-8 as the RFC requires.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Bytes::from(s))
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => write!(f, "{s:?}"),
            None => write!(f, "{:?}", self.0),
        }
    }
}

/// The Error Specific Details of an ERROR-CODE attribute (RFC 8855 §5.2.6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorDetails {
    /// For Error 4 (Unknown Mandatory Attribute): the 7-bit types the receiver did not know,
    /// one octet each (type, then a reserved bit).
    UnknownAttributes(Vec<u8>),
    /// For every other code: opaque octets (usually none).
    Other(Bytes),
}

impl ErrorDetails {
    /// No details: what every code but 4 carries.
    pub fn none() -> ErrorDetails {
        ErrorDetails::Other(Bytes::new())
    }
}

/// One attribute. See the module comment for the M bit and grouped attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Attribute {
    /// Whom a third-party floor request or query is for (§5.2.1).
    BeneficiaryId { mandatory: bool, id: u16 },
    /// A floor of the conference (§5.2.2).
    FloorId { mandatory: bool, id: u16 },
    /// A floor request, as numbered by the server (§5.2.3).
    FloorRequestId { mandatory: bool, id: u16 },
    /// §5.2.4 (3-bit value, 13 reserved bits sent as zero and ignored).
    Priority { mandatory: bool, priority: Priority },
    /// §5.2.5; the queue position is 0 unless the status is Accepted and the server tells.
    RequestStatus {
        mandatory: bool,
        status: RequestStatus,
        queue_position: u8,
    },
    /// §5.2.6.
    ErrorCode {
        mandatory: bool,
        code: ErrorCode,
        details: ErrorDetails,
    },
    /// §5.2.7: human-readable words on an Error.
    ErrorInfo { mandatory: bool, text: Text },
    /// §5.2.8: what a participant says about its floor request.
    ParticipantProvidedInfo { mandatory: bool, text: Text },
    /// §5.2.9: human-readable words on a request status.
    StatusInfo { mandatory: bool, text: Text },
    /// §5.2.10: 7-bit attribute types, one octet each (type, then a reserved bit).
    SupportedAttributes { mandatory: bool, kinds: Vec<u8> },
    /// §5.2.11: one octet per primitive.
    SupportedPrimitives {
        mandatory: bool,
        primitives: Vec<Primitive>,
    },
    /// §5.2.12.
    UserDisplayName { mandatory: bool, text: Text },
    /// §5.2.13.
    UserUri { mandatory: bool, text: Text },
    /// §5.2.14: `[USER-DISPLAY-NAME] [USER-URI] *[EXTENSION-ATTRIBUTE]`.
    BeneficiaryInformation {
        mandatory: bool,
        beneficiary_id: u16,
        attributes: Vec<Attribute>,
    },
    /// §5.2.15: `[OVERALL-REQUEST-STATUS] 1*(FLOOR-REQUEST-STATUS) [BENEFICIARY-INFORMATION]
    /// [REQUESTED-BY-INFORMATION] [PRIORITY] [PARTICIPANT-PROVIDED-INFO] *[EXTENSION-ATTRIBUTE]`.
    FloorRequestInformation {
        mandatory: bool,
        floor_request_id: u16,
        attributes: Vec<Attribute>,
    },
    /// §5.2.16: `[USER-DISPLAY-NAME] [USER-URI] *[EXTENSION-ATTRIBUTE]`.
    RequestedByInformation {
        mandatory: bool,
        requested_by_id: u16,
        attributes: Vec<Attribute>,
    },
    /// §5.2.17: `[REQUEST-STATUS] [STATUS-INFO] *[EXTENSION-ATTRIBUTE]`.
    FloorRequestStatus {
        mandatory: bool,
        floor_id: u16,
        attributes: Vec<Attribute>,
    },
    /// §5.2.18: `[REQUEST-STATUS] [STATUS-INFO] *[EXTENSION-ATTRIBUTE]`.
    OverallRequestStatus {
        mandatory: bool,
        floor_request_id: u16,
        attributes: Vec<Attribute>,
    },
    /// An attribute this codec does not know (an extension). Decoded only with the M bit
    /// clear: a set M bit fails the message with Error 4.
    Unknown {
        kind: u8,
        mandatory: bool,
        data: Bytes,
    },
}

impl Attribute {
    /// The 7-bit type code.
    pub fn kind(&self) -> u8 {
        match self {
            Attribute::BeneficiaryId { .. } => 1,
            Attribute::FloorId { .. } => 2,
            Attribute::FloorRequestId { .. } => 3,
            Attribute::Priority { .. } => 4,
            Attribute::RequestStatus { .. } => 5,
            Attribute::ErrorCode { .. } => 6,
            Attribute::ErrorInfo { .. } => 7,
            Attribute::ParticipantProvidedInfo { .. } => 8,
            Attribute::StatusInfo { .. } => 9,
            Attribute::SupportedAttributes { .. } => 10,
            Attribute::SupportedPrimitives { .. } => 11,
            Attribute::UserDisplayName { .. } => 12,
            Attribute::UserUri { .. } => 13,
            Attribute::BeneficiaryInformation { .. } => 14,
            Attribute::FloorRequestInformation { .. } => 15,
            Attribute::RequestedByInformation { .. } => 16,
            Attribute::FloorRequestStatus { .. } => 17,
            Attribute::OverallRequestStatus { .. } => 18,
            Attribute::Unknown { kind, .. } => *kind,
        }
    }

    /// The M bit.
    pub fn mandatory(&self) -> bool {
        match self {
            Attribute::BeneficiaryId { mandatory, .. }
            | Attribute::FloorId { mandatory, .. }
            | Attribute::FloorRequestId { mandatory, .. }
            | Attribute::Priority { mandatory, .. }
            | Attribute::RequestStatus { mandatory, .. }
            | Attribute::ErrorCode { mandatory, .. }
            | Attribute::ErrorInfo { mandatory, .. }
            | Attribute::ParticipantProvidedInfo { mandatory, .. }
            | Attribute::StatusInfo { mandatory, .. }
            | Attribute::SupportedAttributes { mandatory, .. }
            | Attribute::SupportedPrimitives { mandatory, .. }
            | Attribute::UserDisplayName { mandatory, .. }
            | Attribute::UserUri { mandatory, .. }
            | Attribute::BeneficiaryInformation { mandatory, .. }
            | Attribute::FloorRequestInformation { mandatory, .. }
            | Attribute::RequestedByInformation { mandatory, .. }
            | Attribute::FloorRequestStatus { mandatory, .. }
            | Attribute::OverallRequestStatus { mandatory, .. }
            | Attribute::Unknown { mandatory, .. } => *mandatory,
        }
    }

    /// The nested attributes of a grouped attribute (empty for the others).
    pub fn nested(&self) -> &[Attribute] {
        match self {
            Attribute::BeneficiaryInformation { attributes, .. }
            | Attribute::FloorRequestInformation { attributes, .. }
            | Attribute::RequestedByInformation { attributes, .. }
            | Attribute::FloorRequestStatus { attributes, .. }
            | Attribute::OverallRequestStatus { attributes, .. } => attributes,
            _ => &[],
        }
    }

    /// Octets on the wire, padding included.
    pub fn encoded_len(&self) -> usize {
        let unpadded = match self {
            Attribute::BeneficiaryId { .. }
            | Attribute::FloorId { .. }
            | Attribute::FloorRequestId { .. }
            | Attribute::Priority { .. }
            | Attribute::RequestStatus { .. } => 4,
            Attribute::ErrorCode { details, .. } => {
                3 + match details {
                    ErrorDetails::UnknownAttributes(kinds) => kinds.len(),
                    ErrorDetails::Other(b) => b.len(),
                }
            }
            Attribute::ErrorInfo { text, .. }
            | Attribute::ParticipantProvidedInfo { text, .. }
            | Attribute::StatusInfo { text, .. }
            | Attribute::UserDisplayName { text, .. }
            | Attribute::UserUri { text, .. } => 2 + text.len(),
            Attribute::SupportedAttributes { kinds, .. } => 2 + kinds.len(),
            Attribute::SupportedPrimitives { primitives, .. } => 2 + primitives.len(),
            Attribute::Unknown { data, .. } => 2 + data.len(),
            grouped => {
                4 + grouped
                    .nested()
                    .iter()
                    .map(Attribute::encoded_len)
                    .sum::<usize>()
            }
        };
        padded(unpadded)
    }

    // Constructors, M bit clear (see the module comment).

    pub fn beneficiary_id(id: u16) -> Attribute {
        Attribute::BeneficiaryId {
            mandatory: false,
            id,
        }
    }

    pub fn floor_id(id: u16) -> Attribute {
        Attribute::FloorId {
            mandatory: false,
            id,
        }
    }

    pub fn floor_request_id(id: u16) -> Attribute {
        Attribute::FloorRequestId {
            mandatory: false,
            id,
        }
    }

    pub fn priority(priority: Priority) -> Attribute {
        Attribute::Priority {
            mandatory: false,
            priority,
        }
    }

    pub fn request_status(status: RequestStatus, queue_position: u8) -> Attribute {
        Attribute::RequestStatus {
            mandatory: false,
            status,
            queue_position,
        }
    }

    pub fn error_code(code: ErrorCode, details: ErrorDetails) -> Attribute {
        Attribute::ErrorCode {
            mandatory: false,
            code,
            details,
        }
    }

    pub fn error_info(text: impl Into<Text>) -> Attribute {
        Attribute::ErrorInfo {
            mandatory: false,
            text: text.into(),
        }
    }

    pub fn participant_provided_info(text: impl Into<Text>) -> Attribute {
        Attribute::ParticipantProvidedInfo {
            mandatory: false,
            text: text.into(),
        }
    }

    pub fn status_info(text: impl Into<Text>) -> Attribute {
        Attribute::StatusInfo {
            mandatory: false,
            text: text.into(),
        }
    }

    pub fn supported_attributes(kinds: Vec<u8>) -> Attribute {
        Attribute::SupportedAttributes {
            mandatory: false,
            kinds,
        }
    }

    pub fn supported_primitives(primitives: Vec<Primitive>) -> Attribute {
        Attribute::SupportedPrimitives {
            mandatory: false,
            primitives,
        }
    }

    pub fn user_display_name(text: impl Into<Text>) -> Attribute {
        Attribute::UserDisplayName {
            mandatory: false,
            text: text.into(),
        }
    }

    pub fn user_uri(text: impl Into<Text>) -> Attribute {
        Attribute::UserUri {
            mandatory: false,
            text: text.into(),
        }
    }

    pub fn beneficiary_information(beneficiary_id: u16, attributes: Vec<Attribute>) -> Attribute {
        Attribute::BeneficiaryInformation {
            mandatory: false,
            beneficiary_id,
            attributes,
        }
    }

    pub fn floor_request_information(
        floor_request_id: u16,
        attributes: Vec<Attribute>,
    ) -> Attribute {
        Attribute::FloorRequestInformation {
            mandatory: false,
            floor_request_id,
            attributes,
        }
    }

    pub fn requested_by_information(requested_by_id: u16, attributes: Vec<Attribute>) -> Attribute {
        Attribute::RequestedByInformation {
            mandatory: false,
            requested_by_id,
            attributes,
        }
    }

    pub fn floor_request_status(floor_id: u16, attributes: Vec<Attribute>) -> Attribute {
        Attribute::FloorRequestStatus {
            mandatory: false,
            floor_id,
            attributes,
        }
    }

    pub fn overall_request_status(floor_request_id: u16, attributes: Vec<Attribute>) -> Attribute {
        Attribute::OverallRequestStatus {
            mandatory: false,
            floor_request_id,
            attributes,
        }
    }
}

/// `n` rounded up to a multiple of 4.
pub(crate) fn padded(n: usize) -> usize {
    n.div_ceil(4) * 4
}
