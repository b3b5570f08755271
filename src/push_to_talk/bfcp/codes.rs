//! The code points of the IANA BFCP registries (RFC 8855, IANA Considerations): primitives,
//! attribute types, request statuses and error codes, plus the PRIORITY values of §5.2.4.
//!
//! Unknown primitives and error codes are values, not decode failures: the floor machine
//! answers an unknown primitive with Error 3, and a client must survive a newer server's
//! error code. Request statuses and priorities have no room for news (the machine could not
//! act on them), so the decoder rejects unassigned ones.

use std::fmt;

/// The message kind (RFC 8855 §5.1, table 1). Numbering is RFC 8855's: some pre-RFC
/// implementations used 15 for an `ErrorAck` and shifted the later ones by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Primitive {
    FloorRequest,
    FloorRelease,
    FloorRequestQuery,
    FloorRequestStatus,
    UserQuery,
    UserStatus,
    FloorQuery,
    FloorStatus,
    ChairAction,
    ChairActionAck,
    Hello,
    HelloAck,
    Error,
    FloorRequestStatusAck,
    FloorStatusAck,
    Goodbye,
    GoodbyeAck,
    /// A value outside 1..=17. Never one of those: `from_code` maps them to their names.
    Unknown(u8),
}

impl Primitive {
    /// Every assigned primitive, in code order (index + 1 is the code).
    pub const ALL: [Primitive; 17] = [
        Primitive::FloorRequest,
        Primitive::FloorRelease,
        Primitive::FloorRequestQuery,
        Primitive::FloorRequestStatus,
        Primitive::UserQuery,
        Primitive::UserStatus,
        Primitive::FloorQuery,
        Primitive::FloorStatus,
        Primitive::ChairAction,
        Primitive::ChairActionAck,
        Primitive::Hello,
        Primitive::HelloAck,
        Primitive::Error,
        Primitive::FloorRequestStatusAck,
        Primitive::FloorStatusAck,
        Primitive::Goodbye,
        Primitive::GoodbyeAck,
    ];

    pub fn code(self) -> u8 {
        match self {
            Primitive::Unknown(c) => c,
            known => Primitive::ALL
                .iter()
                .position(|&p| p == known)
                .map_or(0, |i| i as u8 + 1),
        }
    }

    pub fn from_code(code: u8) -> Primitive {
        match code {
            1..=17 => Primitive::ALL[usize::from(code) - 1],
            other => Primitive::Unknown(other),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Primitive::FloorRequest => "FloorRequest",
            Primitive::FloorRelease => "FloorRelease",
            Primitive::FloorRequestQuery => "FloorRequestQuery",
            Primitive::FloorRequestStatus => "FloorRequestStatus",
            Primitive::UserQuery => "UserQuery",
            Primitive::UserStatus => "UserStatus",
            Primitive::FloorQuery => "FloorQuery",
            Primitive::FloorStatus => "FloorStatus",
            Primitive::ChairAction => "ChairAction",
            Primitive::ChairActionAck => "ChairActionAck",
            Primitive::Hello => "Hello",
            Primitive::HelloAck => "HelloAck",
            Primitive::Error => "Error",
            Primitive::FloorRequestStatusAck => "FloorRequestStatusAck",
            Primitive::FloorStatusAck => "FloorStatusAck",
            Primitive::Goodbye => "Goodbye",
            Primitive::GoodbyeAck => "GoodbyeAck",
            Primitive::Unknown(_) => "Unknown",
        }
    }
}

impl fmt::Display for Primitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Primitive::Unknown(c) => write!(f, "Unknown({c})"),
            p => f.write_str(p.name()),
        }
    }
}

/// Attribute types (RFC 8855 §5.2, table 2): what HelloAck lists in SUPPORTED-ATTRIBUTES and
/// what an unknown-mandatory-attribute Error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttributeType {
    BeneficiaryId = 1,
    FloorId = 2,
    FloorRequestId = 3,
    Priority = 4,
    RequestStatus = 5,
    ErrorCode = 6,
    ErrorInfo = 7,
    ParticipantProvidedInfo = 8,
    StatusInfo = 9,
    SupportedAttributes = 10,
    SupportedPrimitives = 11,
    UserDisplayName = 12,
    UserUri = 13,
    BeneficiaryInformation = 14,
    FloorRequestInformation = 15,
    RequestedByInformation = 16,
    FloorRequestStatus = 17,
    OverallRequestStatus = 18,
}

impl AttributeType {
    pub const ALL: [AttributeType; 18] = [
        AttributeType::BeneficiaryId,
        AttributeType::FloorId,
        AttributeType::FloorRequestId,
        AttributeType::Priority,
        AttributeType::RequestStatus,
        AttributeType::ErrorCode,
        AttributeType::ErrorInfo,
        AttributeType::ParticipantProvidedInfo,
        AttributeType::StatusInfo,
        AttributeType::SupportedAttributes,
        AttributeType::SupportedPrimitives,
        AttributeType::UserDisplayName,
        AttributeType::UserUri,
        AttributeType::BeneficiaryInformation,
        AttributeType::FloorRequestInformation,
        AttributeType::RequestedByInformation,
        AttributeType::FloorRequestStatus,
        AttributeType::OverallRequestStatus,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<AttributeType> {
        match code {
            1..=18 => Some(AttributeType::ALL[usize::from(code) - 1]),
            _ => None,
        }
    }
}

/// The state of a floor request (RFC 8855 §5.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestStatus {
    /// Received, waiting for a chair's decision.
    Pending = 1,
    /// Accepted and queued for the floor.
    Accepted = 2,
    /// The beneficiary holds the floor.
    Granted = 3,
    /// Refused (by a chair or by policy); final.
    Denied = 4,
    /// Withdrawn before it was granted; final.
    Cancelled = 5,
    /// Given back after it was granted; final.
    Released = 6,
    /// Taken away after it was granted; final.
    Revoked = 7,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 7] = [
        RequestStatus::Pending,
        RequestStatus::Accepted,
        RequestStatus::Granted,
        RequestStatus::Denied,
        RequestStatus::Cancelled,
        RequestStatus::Released,
        RequestStatus::Revoked,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<RequestStatus> {
        match code {
            1..=7 => Some(RequestStatus::ALL[usize::from(code) - 1]),
            _ => None,
        }
    }

    /// Whether the request is over once it has this status.
    pub fn is_final(self) -> bool {
        self.code() >= RequestStatus::Denied.code()
    }
}

/// The PRIORITY of a floor request (RFC 8855 §5.2.4, a 3-bit field). Ordered: a greater value
/// goes ahead in a priority queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Priority {
    Lowest = 0,
    Low = 1,
    #[default]
    Normal = 2,
    High = 3,
    Highest = 4,
}

impl Priority {
    pub const ALL: [Priority; 5] = [
        Priority::Lowest,
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Highest,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// `None` for 5..=7, which the RFC leaves unassigned.
    pub fn from_code(code: u8) -> Option<Priority> {
        Priority::ALL.get(usize::from(code)).copied()
    }
}

/// The Error Code of an ERROR-CODE attribute (RFC 8855 §5.2.6, §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    ConferenceDoesNotExist,
    UserDoesNotExist,
    UnknownPrimitive,
    /// The Error Specific Details name the unknown types ([`ErrorDetails::UnknownAttributes`](super::ErrorDetails)).
    UnknownMandatoryAttribute,
    UnauthorizedOperation,
    InvalidFloorId,
    FloorRequestIdDoesNotExist,
    /// "You have Already Reached the Maximum Number of Ongoing Floor Requests for This Floor".
    MaxFloorRequestsReached,
    UseTls,
    UnableToParseMessage,
    UseDtls,
    UnsupportedVersion,
    IncorrectMessageLength,
    GenericError,
    /// A code outside 1..=14 (never one of those).
    Unknown(u8),
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::ConferenceDoesNotExist,
        ErrorCode::UserDoesNotExist,
        ErrorCode::UnknownPrimitive,
        ErrorCode::UnknownMandatoryAttribute,
        ErrorCode::UnauthorizedOperation,
        ErrorCode::InvalidFloorId,
        ErrorCode::FloorRequestIdDoesNotExist,
        ErrorCode::MaxFloorRequestsReached,
        ErrorCode::UseTls,
        ErrorCode::UnableToParseMessage,
        ErrorCode::UseDtls,
        ErrorCode::UnsupportedVersion,
        ErrorCode::IncorrectMessageLength,
        ErrorCode::GenericError,
    ];

    pub fn code(self) -> u8 {
        match self {
            ErrorCode::Unknown(c) => c,
            known => ErrorCode::ALL
                .iter()
                .position(|&e| e == known)
                .map_or(0, |i| i as u8 + 1),
        }
    }

    pub fn from_code(code: u8) -> ErrorCode {
        match code {
            1..=14 => ErrorCode::ALL[usize::from(code) - 1],
            other => ErrorCode::Unknown(other),
        }
    }

    /// The meaning the RFC gives the code, used as the default ERROR-INFO text.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorCode::ConferenceDoesNotExist => "Conference does not Exist",
            ErrorCode::UserDoesNotExist => "User does not Exist",
            ErrorCode::UnknownPrimitive => "Unknown Primitive",
            ErrorCode::UnknownMandatoryAttribute => "Unknown Mandatory Attribute",
            ErrorCode::UnauthorizedOperation => "Unauthorized Operation",
            ErrorCode::InvalidFloorId => "Invalid Floor ID",
            ErrorCode::FloorRequestIdDoesNotExist => "Floor Request ID Does Not Exist",
            ErrorCode::MaxFloorRequestsReached => {
                "You have Already Reached the Maximum Number of Ongoing Floor Requests for This Floor"
            }
            ErrorCode::UseTls => "Use TLS",
            ErrorCode::UnableToParseMessage => "Unable to Parse Message",
            ErrorCode::UseDtls => "Use DTLS",
            ErrorCode::UnsupportedVersion => "Unsupported Version",
            ErrorCode::IncorrectMessageLength => "Incorrect Message Length",
            ErrorCode::GenericError => "Generic Error",
            ErrorCode::Unknown(_) => "Unknown Error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.reason())
    }
}
