//! The MSRP message parser (RFC 4975 §9, RFC 7701 §5): start line, header fields, body and
//! end-line of one frame cut by the [`Framer`](super::Framer).
//!
//! A fault in a request whose transaction id, To-Path and From-Path parsed becomes
//! [`ParseError::Reject`] (answer with [`Rejected::response`]); anything else is
//! [`ParseError::Close`]: MSRP cannot address a response without the paths, and a peer that
//! sends such messages is broken, so the connection is closed.

use super::framer::Frame;
use super::message::{
    ByteRange, Continuation, FailureReport, Header, Message, Method, Request, Response, Status,
};
use super::status;
use super::syntax::{find, is_ident, HeaderName};
use super::uri::{is_token_byte, MsrpUri};
use bytes::Bytes;
use std::fmt;

/// Parser limits (frame size is the framer's business).
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Maximum number of header fields, To-Path and From-Path included.
    pub max_headers: usize,
    /// Maximum number of URIs in To-Path or From-Path (relays make paths longer than one).
    pub max_path: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_headers: 64,
            max_path: 16,
        }
    }
}

/// What is wrong with a message; `Display` is the comment of the `400`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Not `MSRP SP tid SP (method / code [SP comment]) CRLF`.
    StartLine,
    /// A request method that is not `1*UPALPHA`.
    Method,
    /// A status code that is not three digits.
    StatusCode,
    /// The frame does not end with this transaction's end-line.
    EndLine,
    NotUtf8,
    HeaderLine,
    TooManyHeaders,
    /// To-Path and From-Path must be the first two header fields, in that order (§7.1).
    PathOrder,
    PathTooLong,
    Missing(HeaderName),
    Multiple(HeaderName),
    Malformed(HeaderName),
    /// A body without Content-Type (§7.1).
    MissingContentType,
    /// Responses carry no body (§9).
    ResponseBody,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::StartLine => f.write_str("Malformed start line"),
            Fault::Method => f.write_str("Malformed method"),
            Fault::StatusCode => f.write_str("Malformed status code"),
            Fault::EndLine => f.write_str("Malformed end-line"),
            Fault::NotUtf8 => f.write_str("Invalid UTF-8 in header"),
            Fault::HeaderLine => f.write_str("Malformed header line"),
            Fault::TooManyHeaders => f.write_str("Too many header fields"),
            Fault::PathOrder => f.write_str("To-Path and From-Path must come first"),
            Fault::PathTooLong => f.write_str("Path too long"),
            Fault::Missing(h) => write!(f, "Missing {} header", h.as_str()),
            Fault::Multiple(h) => write!(f, "Multiple {} headers", h.as_str()),
            Fault::Malformed(h) => write!(f, "Malformed {} header", h.as_str()),
            Fault::MissingContentType => f.write_str("Body without Content-Type"),
            Fault::ResponseBody => f.write_str("Response with a body"),
        }
    }
}

impl std::error::Error for Fault {}

impl Fault {
    /// The response code a rejected request gets: `424` for a bad nickname (RFC 7701 §5.2),
    /// `400` otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Fault::Missing(HeaderName::UseNickname) | Fault::Malformed(HeaderName::UseNickname) => {
                status::NICKNAME_USAGE_FAILED
            }
            _ => status::BAD_REQUEST,
        }
    }
}

/// A request that failed to parse but can still be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub fault: Fault,
    pub transaction_id: String,
    /// `Method::Other` holds a malformed method as written.
    pub method: Method,
    pub to_path: Vec<MsrpUri>,
    pub from_path: Vec<MsrpUri>,
    /// As parsed, when it was (decides whether to answer at all).
    pub failure_report: Option<FailureReport>,
}

impl Rejected {
    /// Whether RFC 4975 §7.2 lets the receiver answer (see [`Request::should_respond`]).
    pub fn should_respond(&self) -> bool {
        self.method != Method::Report && self.failure_report != Some(FailureReport::No)
    }

    /// The `400` (or `424`) with the fault as comment, addressed as §7.2 says.
    pub fn response(&self) -> Response {
        let code = self.fault.status();
        Response {
            transaction_id: self.transaction_id.clone(),
            code,
            comment: Some(self.fault.to_string()),
            to_path: super::message::response_to_path(&self.method, &self.from_path),
            from_path: self.to_path.first().cloned().into_iter().collect(),
            headers: Vec::new(),
        }
    }
}

/// Parse failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Answer with [`Rejected::response`] (when [`Rejected::should_respond`]).
    Reject(Box<Rejected>),
    /// Unanswerable: close the connection.
    Close(Fault),
}

impl ParseError {
    /// The fault, whichever the outcome.
    pub fn fault(&self) -> Fault {
        match self {
            ParseError::Reject(r) => r.fault,
            ParseError::Close(f) => *f,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fault().fmt(f)
    }
}

impl std::error::Error for ParseError {}

impl Frame {
    /// Parses this frame.
    pub fn parse(self, limits: &ParseLimits) -> Result<Message, ParseError> {
        parse(self.bytes, limits)
    }
}

/// Parses one complete message (start line through end-line).
pub fn parse(frame: Bytes, limits: &ParseLimits) -> Result<Message, ParseError> {
    let data = &frame[..];
    let (start, eol) = start_line(data)?;
    let tid = start.tid;
    // `CRLF "-------" tid flag CRLF` closes the frame.
    let end_len = 2 + 7 + tid.len() + 3;
    let end_crlf = data
        .len()
        .checked_sub(end_len)
        .filter(|&at| at >= eol)
        .ok_or(ParseError::Close(Fault::EndLine))?;
    let end_line = &data[end_crlf..];
    let flag = end_line[end_len - 3];
    let continuation = Continuation::from_byte(flag);
    if !end_line.starts_with(b"\r\n-------")
        || &end_line[9..9 + tid.len()] != tid.as_bytes()
        || !end_line.ends_with(b"\r\n")
    {
        return Err(ParseError::Close(Fault::EndLine));
    }
    let continuation = continuation.ok_or(ParseError::Close(Fault::EndLine))?;
    // The first blank line before the end-line ends the header section.
    let (headers_end, body) = match find(&data[..end_crlf + 2], b"\r\n\r\n", eol) {
        Some(blank) => {
            let body_start = blank + 4;
            let body = if body_start <= end_crlf {
                frame.slice(body_start..end_crlf)
            } else {
                // `CRLF CRLF` then at once the end-line: an empty body.
                Bytes::new()
            };
            (blank, Some(body))
        }
        None => (end_crlf, None),
    };
    build(start, &data[eol..headers_end], body, continuation, limits)
}

/// Parses the start line and header fields of an oversized message
/// ([`FrameError::Oversized`](super::FrameError::Oversized)), so it can be answered `413`. The
/// result has an empty body and [`Continuation::More`]: the rest was never read.
pub fn parse_head(head: Bytes, limits: &ParseLimits) -> Result<Message, ParseError> {
    let data = &head[..];
    let (start, eol) = start_line(data)?;
    let end = if data.ends_with(b"\r\n") && data.len() >= eol + 2 {
        data.len() - 2
    } else {
        data.len()
    };
    build(
        start,
        &data[eol..end.max(eol)],
        None,
        Continuation::More,
        limits,
    )
}

enum Kind<'a> {
    Request(&'a str),
    Response(&'a str, Option<&'a str>),
}

struct StartLine<'a> {
    tid: &'a str,
    kind: Kind<'a>,
}

/// Splits the start line; returns it and the index of its CRLF.
fn start_line(data: &[u8]) -> Result<(StartLine<'_>, usize), ParseError> {
    let close = ParseError::Close(Fault::StartLine);
    let eol = find(data, b"\r\n", 0).ok_or(close.clone())?;
    let line = std::str::from_utf8(&data[..eol]).map_err(|_| close.clone())?;
    let rest = line.strip_prefix("MSRP ").ok_or(close.clone())?;
    let (tid, rest) = rest.split_once(' ').ok_or(close.clone())?;
    if !is_ident(tid) {
        return Err(close);
    }
    let (word, comment) = match rest.split_once(' ') {
        Some((w, c)) => (w, Some(c)),
        None => (rest, None),
    };
    let kind = if !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit()) {
        if word.len() != 3 || comment.is_some_and(|c| c.bytes().any(|b| b < b' ' && b != b'\t')) {
            return Err(ParseError::Close(Fault::StatusCode));
        }
        Kind::Response(word, comment)
    } else {
        // The method token is the rest of the line.
        Kind::Request(rest)
    };
    Ok((StartLine { tid, kind }, eol))
}

/// Accumulates header fields.
#[derive(Default)]
struct Fields {
    to_path: Option<Vec<MsrpUri>>,
    from_path: Option<Vec<MsrpUri>>,
    message_id: Option<String>,
    byte_range: Option<ByteRange>,
    success_report: Option<bool>,
    failure_report: Option<FailureReport>,
    status: Option<Status>,
    content_type: Option<String>,
    use_nickname: Option<String>,
    headers: Vec<Header>,
}

fn build(
    start: StartLine<'_>,
    head: &[u8],
    body: Option<Bytes>,
    continuation: Continuation,
    limits: &ParseLimits,
) -> Result<Message, ParseError> {
    let mut fields = Fields::default();
    // The first fault wins; parsing goes on so that a `400` can still be addressed.
    let mut fault: Option<Fault> = None;
    // `head` starts with the CRLF that ends the start line.
    let mut rest = head.strip_prefix(b"\r\n").unwrap_or(&[]);
    let mut index = 0;
    while !rest.is_empty() {
        if index >= limits.max_headers {
            fault.get_or_insert(Fault::TooManyHeaders);
            break;
        }
        let (line, next) = match find(rest, b"\r\n", 0) {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None => (rest, &[][..]),
        };
        if let Err(f) = header_line(line, index, &mut fields, limits) {
            fault.get_or_insert(f);
        }
        rest = next;
        index += 1;
    }
    let tid = start.tid.to_owned();
    match start.kind {
        Kind::Response(code, comment) => {
            let fault = fault
                .or(body.is_some().then_some(Fault::ResponseBody))
                .or(paths_missing(&fields));
            if let Some(f) = fault {
                return Err(ParseError::Close(f));
            }
            Ok(Message::Response(Response {
                transaction_id: tid,
                code: code
                    .parse()
                    .map_err(|_| ParseError::Close(Fault::StatusCode))?,
                comment: comment.filter(|c| !c.is_empty()).map(str::to_owned),
                to_path: fields.to_path.unwrap_or_default(),
                from_path: fields.from_path.unwrap_or_default(),
                headers: fields.headers,
            }))
        }
        Kind::Request(word) => {
            let method = Method::parse(word);
            let body = body.unwrap_or_default();
            // Without both paths nothing can be answered: say why in those terms.
            let unaddressable = fault.or_else(|| paths_missing(&fields));
            let fault = match &method {
                None => Some(Fault::Method),
                Some(m) => fault.or_else(|| request_fault(m, &fields, &body)),
            };
            let (Some(to_path), Some(from_path)) = (fields.to_path, fields.from_path) else {
                return Err(ParseError::Close(
                    unaddressable.unwrap_or(Fault::Missing(HeaderName::ToPath)),
                ));
            };
            let method = method.unwrap_or_else(|| Method::Other(word.to_owned()));
            if let Some(fault) = fault {
                return Err(ParseError::Reject(Box::new(Rejected {
                    fault,
                    transaction_id: tid,
                    method,
                    to_path,
                    from_path,
                    failure_report: fields.failure_report,
                })));
            }
            Ok(Message::Request(Request {
                transaction_id: tid,
                method,
                to_path,
                from_path,
                message_id: fields.message_id,
                byte_range: fields.byte_range,
                success_report: fields.success_report,
                failure_report: fields.failure_report,
                status: fields.status,
                content_type: fields.content_type,
                use_nickname: fields.use_nickname,
                headers: fields.headers,
                body,
                continuation,
            }))
        }
    }
}

fn paths_missing(fields: &Fields) -> Option<Fault> {
    if fields.to_path.is_none() {
        Some(Fault::Missing(HeaderName::ToPath))
    } else if fields.from_path.is_none() {
        Some(Fault::Missing(HeaderName::FromPath))
    } else {
        None
    }
}

/// Method-specific requirements (RFC 4975 §7.1.1, §7.1.2; RFC 7701 §5.1).
fn request_fault(method: &Method, fields: &Fields, body: &Bytes) -> Option<Fault> {
    if !body.is_empty() && fields.content_type.is_none() {
        return Some(Fault::MissingContentType);
    }
    let missing = |present: bool, h: HeaderName| (!present).then_some(Fault::Missing(h));
    match method {
        Method::Send => missing(fields.message_id.is_some(), HeaderName::MessageId),
        Method::Report => missing(fields.message_id.is_some(), HeaderName::MessageId)
            .or_else(|| missing(fields.status.is_some(), HeaderName::Status)),
        Method::Nickname => missing(fields.use_nickname.is_some(), HeaderName::UseNickname),
        Method::Other(_) => None,
    }
}

/// Parses one header line into `fields`; `index` is its position (0 = first).
fn header_line(
    raw: &[u8],
    index: usize,
    fields: &mut Fields,
    limits: &ParseLimits,
) -> Result<(), Fault> {
    let line = std::str::from_utf8(raw).map_err(|_| Fault::NotUtf8)?;
    let (name, value) = line.split_once(':').ok_or(Fault::HeaderLine)?;
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(Fault::HeaderLine);
    }
    let value = value.trim_matches([' ', '\t']);
    if value.bytes().any(|b| b < b' ' && b != b'\t' || b == 0x7f) {
        return Err(Fault::HeaderLine);
    }
    let known = HeaderName::lookup(name);
    let position_ok = match (index, known) {
        (0, Some(HeaderName::ToPath)) | (1, Some(HeaderName::FromPath)) => true,
        (0 | 1, _) | (_, Some(HeaderName::ToPath | HeaderName::FromPath)) => false,
        _ => true,
    };
    let Some(known) = known else {
        fields.headers.push(Header::new(name, value));
        return if position_ok {
            Ok(())
        } else {
            Err(Fault::PathOrder)
        };
    };
    let malformed = Fault::Malformed(known);
    let multiple = Fault::Multiple(known);
    fn set<T>(slot: &mut Option<T>, v: T, multiple: Fault) -> Result<(), Fault> {
        if slot.is_some() {
            return Err(multiple);
        }
        *slot = Some(v);
        Ok(())
    }
    match known {
        HeaderName::ToPath | HeaderName::FromPath => {
            let path = parse_path(value, limits).map_err(|f| f.unwrap_or(malformed))?;
            let slot = if known == HeaderName::ToPath {
                &mut fields.to_path
            } else {
                &mut fields.from_path
            };
            set(slot, path, multiple)?;
        }
        HeaderName::MessageId => {
            let id = is_ident(value).then(|| value.to_owned()).ok_or(malformed)?;
            set(&mut fields.message_id, id, multiple)?;
        }
        HeaderName::ByteRange => {
            let r = ByteRange::parse(value).ok_or(malformed)?;
            set(&mut fields.byte_range, r, multiple)?;
        }
        HeaderName::SuccessReport => {
            let v = match value {
                "yes" => true,
                "no" => false,
                _ => return Err(malformed),
            };
            set(&mut fields.success_report, v, multiple)?;
        }
        HeaderName::FailureReport => {
            let v = FailureReport::parse(value).ok_or(malformed)?;
            set(&mut fields.failure_report, v, multiple)?;
        }
        HeaderName::Status => {
            let v = Status::parse(value).ok_or(malformed)?;
            set(&mut fields.status, v, multiple)?;
        }
        HeaderName::ContentType => {
            if !is_media_type(value) {
                return Err(malformed);
            }
            set(&mut fields.content_type, value.to_owned(), multiple)?;
        }
        HeaderName::UseNickname => {
            let v = unquote(value).filter(|n| !n.is_empty()).ok_or(malformed)?;
            set(&mut fields.use_nickname, v, multiple)?;
        }
    }
    if position_ok {
        Ok(())
    } else {
        Err(Fault::PathOrder)
    }
}

/// `MSRP-URI *( SP MSRP-URI )`; `Err(None)` is a malformed URI.
fn parse_path(value: &str, limits: &ParseLimits) -> Result<Vec<MsrpUri>, Option<Fault>> {
    let mut path = Vec::new();
    for part in value.split([' ', '\t']).filter(|p| !p.is_empty()) {
        if path.len() == limits.max_path {
            return Err(Some(Fault::PathTooLong));
        }
        path.push(MsrpUri::parse(part).map_err(|_| None)?);
    }
    if path.is_empty() {
        return Err(None);
    }
    Ok(path)
}

/// `type "/" subtype *( ";" gen-param )`, checked loosely: the switch compares the type
/// against accept-types, it does not interpret parameters.
fn is_media_type(v: &str) -> bool {
    let essence = v.split(';').next().unwrap_or("").trim();
    match essence.split_once('/') {
        Some((t, s)) => {
            !t.is_empty()
                && !s.is_empty()
                && t.bytes().all(is_token_byte)
                && s.bytes().all(is_token_byte)
        }
        None => false,
    }
}

/// Unquotes an RFC 4975 `quoted-string` (`\"` and `\\` escapes).
pub(crate) fn unquote(v: &str) -> Option<String> {
    let inner = v.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                e @ ('\\' | '"') => out.push(e),
                _ => return None,
            },
            '"' => return None,
            c if c != '\t' && (c < ' ' || c == '\x7f') => return None,
            c => out.push(c),
        }
    }
    Some(out)
}
