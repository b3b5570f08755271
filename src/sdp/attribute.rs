//! `a=` lines: kept as name and raw value, in order, unknown ones included.
//!
//! The focus must pass through and reason about attributes from many extensions (MSRP, BFCP,
//! RTP, ICE...). A typed enum per attribute would drop or reject what it does not know, so an
//! attribute is just a name and an optional value, and the lookups below are generic.

/// One `a=` line: `a=<name>` (a flag) or `a=<name>:<value>`.
///
/// `value` is kept byte for byte (spaces included); `Some("")` is `a=name:` and differs from
/// the flag `a=name`. Names compare case-sensitively, as written by RFC 8866.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The attribute name (an RFC 8866 token).
    pub name: String,
    /// Everything after the first `:`, or `None` for a property (flag) attribute.
    pub value: Option<String>,
}

impl Attribute {
    /// `a=<name>:<value>`.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// `a=<name>`, a property attribute such as `a=sendrecv`.
    pub fn flag(name: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: None,
        }
    }

    /// The value split on ASCII whitespace: the list form used by `a=path`, `a=accept-types`,
    /// `a=floorctrl` and many others. Empty for a flag.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.value.as_deref().unwrap_or("").split_ascii_whitespace()
    }
}

/// Attribute names the focus looks up, so call sites do not spell them twice.
pub mod names {
    /// RFC 3264 direction attributes (RFC 8866 §6.7).
    pub const SENDRECV: &str = "sendrecv";
    /// See [`SENDRECV`].
    pub const SENDONLY: &str = "sendonly";
    /// See [`SENDRECV`].
    pub const RECVONLY: &str = "recvonly";
    /// See [`SENDRECV`].
    pub const INACTIVE: &str = "inactive";
    /// RFC 4574 media label (BFCP `a=floorid ... mstrm:` refers to it).
    pub const LABEL: &str = "label";
    /// RFC 4145 TCP setup role: active, passive, actpass, holdconn.
    pub const SETUP: &str = "setup";
    /// RFC 4145 connection reuse: new, existing.
    pub const CONNECTION: &str = "connection";
    /// RFC 4975 MSRP URIs of the path to the peer, space separated.
    pub const PATH: &str = "path";
    /// RFC 4975 MSRP media types the endpoint accepts.
    pub const ACCEPT_TYPES: &str = "accept-types";
    /// RFC 4975 media types accepted only inside a wrapper such as message/cpim.
    pub const ACCEPT_WRAPPED_TYPES: &str = "accept-wrapped-types";
    /// RFC 4975 largest message the endpoint takes.
    pub const MAX_SIZE: &str = "max-size";
    /// RFC 8856 BFCP floor control roles: c-only, s-only, c-s.
    pub const FLOORCTRL: &str = "floorctrl";
    /// RFC 8856 BFCP conference id.
    pub const CONFID: &str = "confid";
    /// RFC 8856 BFCP user id.
    pub const USERID: &str = "userid";
    /// RFC 8856 BFCP floor id and the media streams it controls.
    pub const FLOORID: &str = "floorid";
    /// RFC 8856 BFCP versions.
    pub const BFCPVER: &str = "bfcpver";
    /// RFC 8866 §6.6 RTP payload type mapping.
    pub const RTPMAP: &str = "rtpmap";
    /// RFC 8866 §6.15 format parameters.
    pub const FMTP: &str = "fmtp";
}

/// RFC 3264 stream direction, from `a=sendrecv|sendonly|recvonly|inactive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Both ways; the default when no direction attribute is present.
    SendRecv,
    /// The describing side only sends.
    SendOnly,
    /// The describing side only receives.
    RecvOnly,
    /// Neither side sends.
    Inactive,
}

impl Direction {
    /// The attribute name for this direction.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => names::SENDRECV,
            Direction::SendOnly => names::SENDONLY,
            Direction::RecvOnly => names::RECVONLY,
            Direction::Inactive => names::INACTIVE,
        }
    }

    /// The direction named by a flag attribute, if it is one.
    pub fn from_attribute(attr: &Attribute) -> Option<Direction> {
        if attr.value.is_some() {
            return None;
        }
        match attr.name.as_str() {
            names::SENDRECV => Some(Direction::SendRecv),
            names::SENDONLY => Some(Direction::SendOnly),
            names::RECVONLY => Some(Direction::RecvOnly),
            names::INACTIVE => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The first direction attribute of a list, if any.
    pub fn find(attrs: &[Attribute]) -> Option<Direction> {
        attrs.iter().find_map(Direction::from_attribute)
    }

    /// The answerer's view of a stream the offerer describes with `self` (RFC 3264 §6.1):
    /// what one side sends the other receives.
    pub fn mirror(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Whether an answer may mark a stream `answer` when the offer marked it `self`
    /// (RFC 3264 §6.1: sendonly → recvonly/inactive, recvonly → sendonly/inactive,
    /// inactive → inactive, sendrecv → anything).
    pub fn allows_answer(self, answer: Direction) -> bool {
        match self {
            Direction::SendRecv => true,
            Direction::Inactive => answer == Direction::Inactive,
            offered => answer == offered.mirror() || answer == Direction::Inactive,
        }
    }

    /// The flag attribute for this direction.
    pub fn to_attribute(self) -> Attribute {
        Attribute::flag(self.as_str())
    }
}

/// Generic lookups shared by the session level and media descriptions.
pub(crate) fn first<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.name == name)
}
