//! The SDP data model (RFC 8866 §5): one struct per line type, fields public.
//!
//! The model keeps everything a peer sent, in order, so the focus can answer from it and log
//! or forward it without loss. Fields whose exact text matters more than their numeric value
//! (the peer's `o=` numbers, `r=`/`z=` typed times, `c=` addresses with `/ttl`) stay text.

use std::net::IpAddr;

use super::attribute::{self, Attribute, Direction};
use super::error::ValidationError;
use super::syntax;

/// A whole session description: session-level fields, then the media descriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `v=`; always 0 (the only version defined).
    pub version: u32,
    /// `o=`: who made this description and which revision it is.
    pub origin: Origin,
    /// `s=`: free text, `-` when there is nothing to say.
    pub session_name: String,
    /// `i=` at session level.
    pub information: Option<String>,
    /// `u=`.
    pub uri: Option<String>,
    /// `e=` lines, in order.
    pub emails: Vec<String>,
    /// `p=` lines, in order.
    pub phones: Vec<String>,
    /// Session-level `c=`: applies to every media description without its own.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their `r=`/`z=`; at least one in valid SDP.
    pub times: Vec<TimeDescription>,
    /// Session-level `k=` (obsolete, kept for losslessness).
    pub key: Option<String>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// `m=` sections, in order (offer/answer matches streams by position).
    pub media: Vec<MediaDescription>,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `-` when the creator has no user name to give.
    pub username: String,
    /// Digits, kept as text: peers send values beyond `u64` or with leading zeros, and the
    /// focus never does arithmetic on a peer's numbers.
    pub session_id: String,
    /// Digits, kept as text for the same reason; the focus's own version lives in
    /// [`LocalSdpState`](super::LocalSdpState).
    pub session_version: String,
    /// `IN` in practice.
    pub nettype: String,
    /// `IP4` or `IP6` in practice.
    pub addrtype: String,
    /// Address or FQDN of the creator; an identifier, not where media goes.
    pub address: String,
}

impl Origin {
    /// The origin of SDP the focus generates.
    pub fn new(
        username: impl Into<String>,
        session_id: u64,
        version: u64,
        address: IpAddr,
    ) -> Self {
        Origin {
            username: username.into(),
            session_id: session_id.to_string(),
            session_version: version.to_string(),
            nettype: String::from("IN"),
            addrtype: String::from(addrtype_of(address)),
            address: address.to_string(),
        }
    }
}

/// `c=<nettype> <addrtype> <connection-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IN` in practice.
    pub nettype: String,
    /// `IP4` or `IP6` in practice.
    pub addrtype: String,
    /// The address as written, including any multicast `/ttl/count` suffix.
    pub address: String,
}

impl Connection {
    /// `c=IN IP4|IP6 <ip>`.
    pub fn from_ip(ip: IpAddr) -> Self {
        Connection {
            nettype: String::from("IN"),
            addrtype: String::from(addrtype_of(ip)),
            address: ip.to_string(),
        }
    }

    /// The address as an IP, when it is a literal without multicast suffix.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }
}

fn addrtype_of(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// `b=<bwtype>:<bandwidth>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// `AS`, `CT`, `TIAS`, ...
    pub bwtype: String,
    /// In kilobits per second for `AS`/`CT`; the unit depends on `bwtype`.
    pub bandwidth: u64,
}

/// `t=<start> <stop>` with its `r=` lines and optional `z=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeDescription {
    /// NTP seconds; 0 means "now / unbounded".
    pub start: u64,
    /// NTP seconds; 0 means unbounded.
    pub stop: u64,
    /// `r=` lines.
    pub repeats: Vec<Repeat>,
    /// The pairs of the `z=` line; empty when there is none.
    pub zone_adjustments: Vec<ZoneAdjustment>,
}

impl TimeDescription {
    /// `t=0 0`: the permanent session SIP uses.
    pub fn unbounded() -> Self {
        TimeDescription {
            start: 0,
            stop: 0,
            repeats: Vec::new(),
            zone_adjustments: Vec::new(),
        }
    }
}

/// `r=<interval> <active duration> <offsets...>`; typed times (`7d`, `3600`) kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeat {
    /// Repeat interval.
    pub interval: String,
    /// How long each repetition lasts.
    pub active_duration: String,
    /// Offsets from the start time; at least one.
    pub offsets: Vec<String>,
}

/// One `<adjustment time> <offset>` pair of a `z=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneAdjustment {
    /// NTP seconds at which the adjustment applies.
    pub time: u64,
    /// Typed time, optionally negative (`-1h`).
    pub offset: String,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, `message` (MSRP), `application` (BFCP), ...
    pub media: String,
    /// Transport port; 0 disables the stream (RFC 3264).
    pub port: u16,
    /// The `/<number of ports>` suffix, when present.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `TCP/MSRP`, `TCP/TLS/BFCP`, ...
    pub proto: String,
    /// `<fmt>` list: payload types for RTP, `*` for MSRP and BFCP; at least one.
    pub formats: Vec<String>,
    /// Media-level `i=`.
    pub information: Option<String>,
    /// Media-level `c=` lines (several only for multicast layering).
    pub connections: Vec<Connection>,
    /// Media-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// Media-level `k=` (obsolete, kept for losslessness).
    pub key: Option<String>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

impl SessionDescription {
    /// A description with `v=0`, the given `o=` and `s=`, `t=0 0` and nothing else.
    pub fn new(origin: Origin, session_name: impl Into<String>) -> Self {
        SessionDescription {
            version: 0,
            origin,
            session_name: session_name.into(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            times: vec![TimeDescription::unbounded()],
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }

    /// The first session-level attribute called `name`.
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        attribute::first(&self.attributes, name)
    }

    /// The value of the first session-level attribute called `name` (`None` for a flag).
    pub fn attr_value(&self, name: &str) -> Option<&str> {
        self.attr(name).and_then(|a| a.value.as_deref())
    }

    /// Every session-level attribute called `name`, in order.
    pub fn attrs<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> + 'a {
        self.attributes.iter().filter(move |a| a.name == name)
    }

    /// Whether a session-level attribute called `name` is present.
    pub fn has_attr(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        Direction::find(&self.attributes)
    }

    /// The direction a stream is marked with, at media level or else session level
    /// (RFC 3264 §5.1); `None` when unmarked, which means sendrecv.
    pub fn marked_direction(&self, media: &MediaDescription) -> Option<Direction> {
        media.direction().or_else(|| self.direction())
    }

    /// The effective direction of a stream: marked, or sendrecv by default.
    pub fn media_direction(&self, media: &MediaDescription) -> Direction {
        self.marked_direction(media).unwrap_or(Direction::SendRecv)
    }

    /// The `c=` lines that apply to a stream: its own, or else the session's.
    pub fn connections_for<'a>(&'a self, media: &'a MediaDescription) -> &'a [Connection] {
        if media.connections.is_empty() {
            self.connection.as_slice()
        } else {
            &media.connections
        }
    }

    /// Checks that this model serializes to SDP which [`parse`](super::parse) turns back
    /// into an equal model: no field holds a separator, CR/LF or NUL, every list that must be
    /// non-empty is. Parsed models always pass; models built in code should be checked
    /// before they are sent.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let fail = |field, reason| {
            Err(ValidationError {
                media: None,
                field,
                reason,
            })
        };
        if self.version != 0 {
            return fail('v', "version must be 0");
        }
        let o = &self.origin;
        if !syntax::is_non_ws(&o.username) {
            return fail('o', "username must be a non-whitespace string");
        }
        if !syntax::is_digits(&o.session_id) || !syntax::is_digits(&o.session_version) {
            return fail('o', "session id and version must be digits");
        }
        if !syntax::is_token(&o.nettype) || !syntax::is_token(&o.addrtype) {
            return fail('o', "nettype and addrtype must be tokens");
        }
        if !syntax::is_non_ws(&o.address) {
            return fail('o', "address must be a non-whitespace string");
        }
        if !syntax::is_text(&self.session_name) {
            return fail('s', "text holds CR, LF or NUL");
        }
        check_opt_text(None, 'i', self.information.as_deref())?;
        check_opt_text(None, 'u', self.uri.as_deref())?;
        for e in &self.emails {
            check_opt_text(None, 'e', Some(e))?;
        }
        for p in &self.phones {
            check_opt_text(None, 'p', Some(p))?;
        }
        if let Some(c) = &self.connection {
            check_connection(None, c)?;
        }
        check_bandwidths(None, &self.bandwidths)?;
        if self.times.is_empty() {
            return fail('t', "at least one t= line is required");
        }
        for t in &self.times {
            check_time(t)?;
        }
        check_opt_text(None, 'k', self.key.as_deref())?;
        check_attributes(None, &self.attributes)?;
        for (i, m) in self.media.iter().enumerate() {
            m.validate_at(i)?;
        }
        Ok(())
    }
}

impl MediaDescription {
    /// `m=<media> <port> <proto> <formats...>` with nothing else.
    pub fn new<F, S>(
        media: impl Into<String>,
        port: u16,
        proto: impl Into<String>,
        formats: F,
    ) -> Self
    where
        F: IntoIterator<Item = S>,
        S: Into<String>,
    {
        MediaDescription {
            media: media.into(),
            port,
            port_count: None,
            proto: proto.into(),
            formats: formats.into_iter().map(Into::into).collect(),
            information: None,
            connections: Vec::new(),
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        }
    }

    /// Builder: appends an attribute.
    pub fn with_attribute(mut self, attribute: Attribute) -> Self {
        self.attributes.push(attribute);
        self
    }

    /// Builder: appends a media-level `c=`.
    pub fn with_connection(mut self, connection: Connection) -> Self {
        self.connections.push(connection);
        self
    }

    /// Port 0: the stream is offered disabled or was rejected (RFC 3264 §5.1, §6).
    pub fn is_disabled(&self) -> bool {
        self.port == 0
    }

    /// The first attribute called `name`.
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        attribute::first(&self.attributes, name)
    }

    /// The value of the first attribute called `name` (`None` for a flag or when absent).
    pub fn attr_value(&self, name: &str) -> Option<&str> {
        self.attr(name).and_then(|a| a.value.as_deref())
    }

    /// Every attribute called `name`, in order (`a=rtpmap`, `a=floorid`, ...).
    pub fn attrs<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> + 'a {
        self.attributes.iter().filter(move |a| a.name == name)
    }

    /// Whether an attribute called `name` is present.
    pub fn has_attr(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    /// The whitespace-separated words of the first attribute called `name`; empty when absent.
    pub fn attr_words<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.attr(name).into_iter().flat_map(Attribute::words)
    }

    /// The media-level direction attribute, if any (see
    /// [`SessionDescription::media_direction`] for the effective one).
    pub fn direction(&self) -> Option<Direction> {
        Direction::find(&self.attributes)
    }

    /// `a=label` (RFC 4574).
    pub fn label(&self) -> Option<&str> {
        self.attr_value(attribute::names::LABEL)
    }

    /// `a=setup` (RFC 4145): active, passive, actpass or holdconn.
    pub fn setup(&self) -> Option<&str> {
        self.attr_value(attribute::names::SETUP)
    }

    /// The URIs of `a=path` (RFC 4975), first hop first.
    pub fn path(&self) -> impl Iterator<Item = &str> {
        self.attr_words(attribute::names::PATH)
    }

    /// The media types of `a=accept-types` (RFC 4975).
    pub fn accept_types(&self) -> impl Iterator<Item = &str> {
        self.attr_words(attribute::names::ACCEPT_TYPES)
    }

    /// The roles of `a=floorctrl` (RFC 8856).
    pub fn floorctrl(&self) -> impl Iterator<Item = &str> {
        self.attr_words(attribute::names::FLOORCTRL)
    }

    /// [`SessionDescription::validate`] for one media description, as media `index`.
    pub(crate) fn validate_at(&self, index: usize) -> Result<(), ValidationError> {
        let at = Some(index);
        let fail = |reason| {
            Err(ValidationError {
                media: at,
                field: 'm',
                reason,
            })
        };
        if !syntax::is_token(&self.media) {
            return fail("media type must be a token");
        }
        if !syntax::is_proto(&self.proto) {
            return fail("proto must be tokens separated by /");
        }
        if self.formats.is_empty() {
            return fail("at least one format is required");
        }
        if !self.formats.iter().all(|f| syntax::is_token(f)) {
            return fail("formats must be tokens");
        }
        check_opt_text(at, 'i', self.information.as_deref())?;
        for c in &self.connections {
            check_connection(at, c)?;
        }
        check_bandwidths(at, &self.bandwidths)?;
        check_opt_text(at, 'k', self.key.as_deref())?;
        check_attributes(at, &self.attributes)
    }
}

fn check_opt_text(
    media: Option<usize>,
    field: char,
    text: Option<&str>,
) -> Result<(), ValidationError> {
    match text {
        Some(t) if !syntax::is_text(t) => Err(ValidationError {
            media,
            field,
            reason: "text holds CR, LF or NUL",
        }),
        _ => Ok(()),
    }
}

fn check_connection(media: Option<usize>, c: &Connection) -> Result<(), ValidationError> {
    if syntax::is_token(&c.nettype)
        && syntax::is_token(&c.addrtype)
        && syntax::is_non_ws(&c.address)
    {
        Ok(())
    } else {
        Err(ValidationError {
            media,
            field: 'c',
            reason: "nettype/addrtype must be tokens, address a non-whitespace string",
        })
    }
}

fn check_bandwidths(media: Option<usize>, bws: &[Bandwidth]) -> Result<(), ValidationError> {
    if bws.iter().all(|b| syntax::is_token(&b.bwtype)) {
        Ok(())
    } else {
        Err(ValidationError {
            media,
            field: 'b',
            reason: "bandwidth type must be a token",
        })
    }
}

fn check_time(t: &TimeDescription) -> Result<(), ValidationError> {
    let fail = |field, reason| {
        Err(ValidationError {
            media: None,
            field,
            reason,
        })
    };
    for r in &t.repeats {
        let all_typed = syntax::is_typed_time(&r.interval)
            && syntax::is_typed_time(&r.active_duration)
            && r.offsets.iter().all(|o| syntax::is_typed_time(o));
        if r.offsets.is_empty() || !all_typed {
            return fail('r', "needs interval, duration and offsets, all typed times");
        }
    }
    if !t
        .zone_adjustments
        .iter()
        .all(|z| syntax::is_zone_offset(&z.offset))
    {
        return fail('z', "offsets must be typed times, optionally negative");
    }
    Ok(())
}

fn check_attributes(media: Option<usize>, attrs: &[Attribute]) -> Result<(), ValidationError> {
    for a in attrs {
        let reason = if !syntax::is_token(&a.name) {
            "attribute name must be a token"
        } else if !a.value.as_deref().is_none_or(syntax::is_text) {
            "attribute value holds CR, LF or NUL"
        } else {
            continue;
        };
        return Err(ValidationError {
            media,
            field: 'a',
            reason,
        });
    }
    Ok(())
}
