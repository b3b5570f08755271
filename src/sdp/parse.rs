//! SDP text → [`SessionDescription`]: strict on structure, tolerant of line ends.
//!
//! Accepted: CRLF or bare LF line ends (mixed too), a missing final line end, trailing blank
//! lines, and runs of spaces between the fields of structured lines (`o= c= t= r= z= m=`).
//! Rejected: anything RFC 8866 §5 and §9 forbid in structure (order, required and singleton
//! lines, unknown line types, `type=value` shape) or in field syntax, non-UTF-8 bodies, NUL
//! and bare CR. Not checked here: that every stream has a `c=` (RFC 8866 §5.7); that is
//! offer/answer business ([`answer`](super::answer())), since disabled streams do not need one.
//!
//! Never panics: every index is guarded, every number goes through a checked parse.

use super::attribute::Attribute;
use super::error::SdpError;
use super::model::{
    Bandwidth, Connection, MediaDescription, Origin, Repeat, SessionDescription, TimeDescription,
    ZoneAdjustment,
};
use super::syntax;

/// Bounds on work per body. The body size itself is bounded by the SIP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most lines accepted, blank trailing lines excluded.
    pub max_lines: usize,
    /// Most `m=` sections accepted.
    pub max_media: usize,
}

impl Limits {
    /// Default line cap: far above any real offer (a 4-stream WebRTC offer is ~150 lines).
    pub const DEFAULT_MAX_LINES: usize = 1024;
    /// Default `m=` cap: audio+video+MSRP+BFCP and then some.
    pub const DEFAULT_MAX_MEDIA: usize = 64;
    /// No limits: for checking SDP we generated ourselves.
    pub const UNLIMITED: Limits = Limits {
        max_lines: usize::MAX,
        max_media: usize::MAX,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_lines: Self::DEFAULT_MAX_LINES,
            max_media: Self::DEFAULT_MAX_MEDIA,
        }
    }
}

/// Parses an SDP body with [`Limits::default`].
pub fn parse(input: &[u8]) -> Result<SessionDescription, SdpError> {
    parse_with_limits(input, &Limits::default())
}

/// Parses an SDP body.
pub fn parse_with_limits(input: &[u8], limits: &Limits) -> Result<SessionDescription, SdpError> {
    let text = std::str::from_utf8(input).map_err(|e| SdpError::NotUtf8 {
        line: 1 + count_newlines(input.get(..e.valid_up_to()).unwrap_or(&[])),
    })?;
    let mut lines = Lines::new(strip_trailing_line_ends(text), limits.max_lines);

    let version = lines.expect('v')?;
    if version.value != "0" {
        return Err(version.invalid("version must be 0"));
    }
    let origin = parse_origin(&lines.expect('o')?)?;
    let session_name = lines.expect('s')?.value.to_owned();
    let mut sd = SessionDescription {
        version: 0,
        origin,
        session_name,
        information: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: None,
        bandwidths: Vec::new(),
        times: Vec::new(),
        key: None,
        attributes: Vec::new(),
        media: Vec::new(),
    };

    let mut session = SessionOrder::default();
    let mut media_order = MediaOrder::default();
    while let Some(line) = lines.next_line()? {
        if sd.media.is_empty() && line.kind != 'm' {
            session_line(&mut sd, &mut session, &line)?;
            continue;
        }
        if line.kind == 'm' {
            if sd.times.is_empty() {
                return Err(SdpError::Missing {
                    line: line.number,
                    field: 't',
                });
            }
            if sd.media.len() >= limits.max_media {
                return Err(SdpError::TooManyMedia {
                    line: line.number,
                    limit: limits.max_media,
                });
            }
            sd.media.push(parse_media(&line)?);
            media_order = MediaOrder::default();
            continue;
        }
        if let Some(media) = sd.media.last_mut() {
            media_line(media, &mut media_order, &line)?;
        }
    }
    if sd.times.is_empty() {
        return Err(SdpError::Missing {
            line: lines.number + 1,
            field: 't',
        });
    }
    Ok(sd)
}

fn count_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Drops trailing `\r\n` / `\n` runs (some stacks append a blank line), but not a lone CR
/// that belongs to the last line's value.
fn strip_trailing_line_ends(mut text: &str) -> &str {
    loop {
        if let Some(t) = text.strip_suffix("\r\n") {
            text = t;
        } else if let Some(t) = text.strip_suffix('\n') {
            text = t;
        } else {
            return text;
        }
    }
}

/// One `<type>=<value>` line and where it was.
struct Line<'a> {
    number: usize,
    kind: char,
    value: &'a str,
}

impl Line<'_> {
    fn invalid(&self, reason: &'static str) -> SdpError {
        SdpError::InvalidField {
            line: self.number,
            field: self.kind,
            reason,
        }
    }
}

/// Splits the body into checked lines, counting them against the limit.
struct Lines<'a> {
    rest: Option<&'a str>,
    number: usize,
    max_lines: usize,
}

impl<'a> Lines<'a> {
    fn new(body: &'a str, max_lines: usize) -> Self {
        Lines {
            rest: if body.is_empty() { None } else { Some(body) },
            number: 0,
            max_lines,
        }
    }

    fn next_line(&mut self) -> Result<Option<Line<'a>>, SdpError> {
        let Some(rest) = self.rest else {
            return Ok(None);
        };
        let (raw, tail) = match rest.split_once('\n') {
            Some((raw, tail)) => (raw, Some(tail)),
            None => (rest, None),
        };
        self.rest = tail;
        self.number += 1;
        let number = self.number;
        if number > self.max_lines {
            return Err(SdpError::TooManyLines {
                line: number,
                limit: self.max_lines,
            });
        }
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let bytes = raw.as_bytes();
        let (Some(&kind), Some(&b'=')) = (bytes.first(), bytes.get(1)) else {
            return Err(if raw.is_empty() {
                SdpError::EmptyLine { line: number }
            } else {
                SdpError::Malformed { line: number }
            });
        };
        if !kind.is_ascii_lowercase() {
            return Err(SdpError::Malformed { line: number });
        }
        let kind = char::from(kind);
        if !"vosiuepcbtrzkam".contains(kind) {
            return Err(SdpError::UnknownType {
                line: number,
                field: kind,
            });
        }
        // Both leading bytes are ASCII, so index 2 is a char boundary.
        let value = raw.get(2..).unwrap_or("");
        if value.bytes().any(|b| b == 0 || b == b'\r') {
            return Err(SdpError::ControlChar { line: number });
        }
        Ok(Some(Line {
            number,
            kind,
            value,
        }))
    }

    /// The next line, which must be of type `kind` (the fixed `v= o= s=` opening).
    fn expect(&mut self, kind: char) -> Result<Line<'a>, SdpError> {
        match self.next_line()? {
            Some(line) if line.kind == kind => Ok(line),
            Some(line) => Err(SdpError::Missing {
                line: line.number,
                field: kind,
            }),
            None => Err(SdpError::Missing {
                line: self.number + 1,
                field: kind,
            }),
        }
    }
}

/// Position reached in the session section, after `v= o= s=`.
#[derive(Default)]
struct SessionOrder {
    /// Rank of the last line type seen (see [`session_rank`]).
    rank: u8,
    /// Where we are inside the current time description.
    time: TimeStep,
}

#[derive(Default, PartialEq, Eq)]
enum TimeStep {
    #[default]
    None,
    AfterT,
    AfterR,
    AfterZ,
}

/// RFC 8866 §5 session order: `i u e p c b (t r z) k a`. `v o s` are done before.
fn session_rank(kind: char) -> u8 {
    match kind {
        'i' => 3,
        'u' => 4,
        'e' => 5,
        'p' => 6,
        'c' => 7,
        'b' => 8,
        't' | 'r' | 'z' => 9,
        'k' => 10,
        'a' => 11,
        // v, o, s: already consumed, so seeing them again is a duplicate.
        _ => 0,
    }
}

const TIME_RANK: u8 = 9;

fn session_line(
    sd: &mut SessionDescription,
    order: &mut SessionOrder,
    line: &Line<'_>,
) -> Result<(), SdpError> {
    let (number, kind) = (line.number, line.kind);
    let rank = session_rank(kind);
    if rank == 0 {
        return Err(SdpError::Duplicate {
            line: number,
            field: kind,
        });
    }
    match kind {
        'r' | 'z' => {
            // r= and z= belong to the time description just opened by t=; z= closes it.
            if order.rank != TIME_RANK {
                return Err(SdpError::OutOfOrder {
                    line: number,
                    field: kind,
                });
            }
            if order.time == TimeStep::AfterZ {
                return Err(if kind == 'z' {
                    SdpError::Duplicate {
                        line: number,
                        field: kind,
                    }
                } else {
                    SdpError::OutOfOrder {
                        line: number,
                        field: kind,
                    }
                });
            }
        }
        _ => {
            if rank < order.rank {
                return Err(SdpError::OutOfOrder {
                    line: number,
                    field: kind,
                });
            }
            if rank == order.rank && matches!(kind, 'i' | 'u' | 'c' | 'k') {
                return Err(SdpError::Duplicate {
                    line: number,
                    field: kind,
                });
            }
            if rank > TIME_RANK && sd.times.is_empty() {
                return Err(SdpError::Missing {
                    line: number,
                    field: 't',
                });
            }
        }
    }
    order.rank = rank;
    let value = line.value;
    match kind {
        'i' => sd.information = Some(value.to_owned()),
        'u' => sd.uri = Some(value.to_owned()),
        'e' => sd.emails.push(value.to_owned()),
        'p' => sd.phones.push(value.to_owned()),
        'c' => sd.connection = Some(parse_connection(line)?),
        'b' => sd.bandwidths.push(parse_bandwidth(line)?),
        't' => {
            sd.times.push(parse_timing(line)?);
            order.time = TimeStep::AfterT;
        }
        'r' => {
            let repeat = parse_repeat(line)?;
            if let Some(t) = sd.times.last_mut() {
                t.repeats.push(repeat);
            }
            order.time = TimeStep::AfterR;
        }
        'z' => {
            let zones = parse_zones(line)?;
            if let Some(t) = sd.times.last_mut() {
                t.zone_adjustments = zones;
            }
            order.time = TimeStep::AfterZ;
        }
        'k' => sd.key = Some(value.to_owned()),
        _ => sd.attributes.push(parse_attribute(line)?),
    }
    Ok(())
}

/// Position reached in the current media section: `m i c b k a`.
#[derive(Default)]
struct MediaOrder {
    rank: u8,
}

fn media_line(
    m: &mut MediaDescription,
    order: &mut MediaOrder,
    line: &Line<'_>,
) -> Result<(), SdpError> {
    let (number, kind) = (line.number, line.kind);
    let rank = match kind {
        'i' => 1,
        'c' => 2,
        'b' => 3,
        'k' => 4,
        'a' => 5,
        _ => {
            return Err(SdpError::NotInMedia {
                line: number,
                field: kind,
            })
        }
    };
    if rank < order.rank {
        return Err(SdpError::OutOfOrder {
            line: number,
            field: kind,
        });
    }
    if rank == order.rank && matches!(kind, 'i' | 'k') {
        return Err(SdpError::Duplicate {
            line: number,
            field: kind,
        });
    }
    order.rank = rank;
    match kind {
        'i' => m.information = Some(line.value.to_owned()),
        'c' => m.connections.push(parse_connection(line)?),
        'b' => m.bandwidths.push(parse_bandwidth(line)?),
        'k' => m.key = Some(line.value.to_owned()),
        _ => m.attributes.push(parse_attribute(line)?),
    }
    Ok(())
}

/// Space-separated fields; runs of spaces and trailing spaces are tolerated.
fn fields<'a>(value: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    value.split(' ').filter(|f| !f.is_empty())
}

/// Exactly `N` space-separated fields.
fn exact_fields<'a, const N: usize>(
    line: &Line<'a>,
    reason: &'static str,
) -> Result<[&'a str; N], SdpError> {
    let mut out = [""; N];
    let mut it = fields(line.value);
    for slot in &mut out {
        *slot = it.next().ok_or_else(|| line.invalid(reason))?;
    }
    if it.next().is_some() {
        return Err(line.invalid(reason));
    }
    Ok(out)
}

fn parse_origin(line: &Line<'_>) -> Result<Origin, SdpError> {
    let [username, id, version, nettype, addrtype, address] =
        exact_fields(line, "expected 6 fields")?;
    if !syntax::is_non_ws(username) || !syntax::is_non_ws(address) {
        return Err(line.invalid("control character in username or address"));
    }
    if !syntax::is_digits(id) || !syntax::is_digits(version) {
        return Err(line.invalid("session id and version must be digits"));
    }
    if !syntax::is_token(nettype) || !syntax::is_token(addrtype) {
        return Err(line.invalid("nettype and addrtype must be tokens"));
    }
    Ok(Origin {
        username: username.to_owned(),
        session_id: id.to_owned(),
        session_version: version.to_owned(),
        nettype: nettype.to_owned(),
        addrtype: addrtype.to_owned(),
        address: address.to_owned(),
    })
}

fn parse_connection(line: &Line<'_>) -> Result<Connection, SdpError> {
    let [nettype, addrtype, address] = exact_fields(line, "expected 3 fields")?;
    if !syntax::is_token(nettype) || !syntax::is_token(addrtype) || !syntax::is_non_ws(address) {
        return Err(line.invalid("expected <nettype> <addrtype> <address>"));
    }
    Ok(Connection {
        nettype: nettype.to_owned(),
        addrtype: addrtype.to_owned(),
        address: address.to_owned(),
    })
}

fn parse_bandwidth(line: &Line<'_>) -> Result<Bandwidth, SdpError> {
    let (bwtype, value) = line
        .value
        .split_once(':')
        .ok_or_else(|| line.invalid("expected <bwtype>:<bandwidth>"))?;
    if !syntax::is_token(bwtype) {
        return Err(line.invalid("bandwidth type must be a token"));
    }
    let bandwidth =
        syntax::decimal(value).ok_or_else(|| line.invalid("bandwidth must be a decimal number"))?;
    Ok(Bandwidth {
        bwtype: bwtype.to_owned(),
        bandwidth,
    })
}

fn parse_timing(line: &Line<'_>) -> Result<TimeDescription, SdpError> {
    let [start, stop] = exact_fields(line, "expected <start> <stop>")?;
    let number =
        |s| syntax::decimal(s).ok_or_else(|| line.invalid("times must be decimal numbers"));
    Ok(TimeDescription {
        start: number(start)?,
        stop: number(stop)?,
        repeats: Vec::new(),
        zone_adjustments: Vec::new(),
    })
}

fn parse_repeat(line: &Line<'_>) -> Result<Repeat, SdpError> {
    let reason = "expected <interval> <duration> <offsets>, typed times";
    let mut it = fields(line.value);
    let (Some(interval), Some(active_duration)) = (it.next(), it.next()) else {
        return Err(line.invalid(reason));
    };
    let offsets: Vec<String> = it.map(str::to_owned).collect();
    let all_typed = syntax::is_typed_time(interval)
        && syntax::is_typed_time(active_duration)
        && offsets.iter().all(|o| syntax::is_typed_time(o));
    if offsets.is_empty() || !all_typed {
        return Err(line.invalid(reason));
    }
    Ok(Repeat {
        interval: interval.to_owned(),
        active_duration: active_duration.to_owned(),
        offsets,
    })
}

fn parse_zones(line: &Line<'_>) -> Result<Vec<ZoneAdjustment>, SdpError> {
    let reason = "expected pairs of <time> <offset>";
    let mut zones = Vec::new();
    let mut it = fields(line.value);
    while let Some(time) = it.next() {
        let offset = it.next().ok_or_else(|| line.invalid(reason))?;
        let time = syntax::decimal(time).ok_or_else(|| line.invalid(reason))?;
        if !syntax::is_zone_offset(offset) {
            return Err(line.invalid(reason));
        }
        zones.push(ZoneAdjustment {
            time,
            offset: offset.to_owned(),
        });
    }
    if zones.is_empty() {
        return Err(line.invalid(reason));
    }
    Ok(zones)
}

fn parse_attribute(line: &Line<'_>) -> Result<Attribute, SdpError> {
    let (name, value) = match line.value.split_once(':') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (line.value, None),
    };
    if !syntax::is_token(name) {
        return Err(line.invalid("attribute name must be a token"));
    }
    Ok(Attribute {
        name: name.to_owned(),
        value,
    })
}

fn parse_media(line: &Line<'_>) -> Result<MediaDescription, SdpError> {
    let mut it = fields(line.value);
    let (Some(media), Some(port), Some(proto)) = (it.next(), it.next(), it.next()) else {
        return Err(line.invalid("expected <media> <port> <proto> <fmt>..."));
    };
    if !syntax::is_token(media) {
        return Err(line.invalid("media type must be a token"));
    }
    let (port, port_count) = match port.split_once('/') {
        Some((port, count)) => (port, Some(count)),
        None => (port, None),
    };
    let port =
        syntax::decimal(port).ok_or_else(|| line.invalid("port must be a number below 65536"))?;
    let port_count = match port_count {
        Some(count) => Some(
            syntax::decimal(count)
                .ok_or_else(|| line.invalid("port count must be a number below 65536"))?,
        ),
        None => None,
    };
    if !syntax::is_proto(proto) {
        return Err(line.invalid("proto must be tokens separated by /"));
    }
    let formats: Vec<String> = it.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err(line.invalid("at least one format is required"));
    }
    if !formats.iter().all(|f| syntax::is_token(f)) {
        return Err(line.invalid("formats must be tokens"));
    }
    Ok(MediaDescription {
        media: media.to_owned(),
        port,
        port_count,
        proto: proto.to_owned(),
        formats,
        information: None,
        connections: Vec::new(),
        bandwidths: Vec::new(),
        key: None,
        attributes: Vec::new(),
    })
}
