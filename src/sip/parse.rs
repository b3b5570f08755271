//! The normalizer and message parser: start line, header lines (unfolded, compact names
//! expanded, whitespace before the colon dropped), the essential headers checked once, and the
//! body cut by Content-Length.
//!
//! A fault in a request that still names where a response should go becomes
//! [`ParseError::Reject`] (answered `400`/`505` with the fault as reason phrase); anything else
//! is [`ParseError::Drop`] (counted and dropped, as RFC 3261 §18.3 and RFC 4475 ask).

use super::header::{split_commas, HeaderName, Headers};
use super::message::{CSeq, Message, Request, Response};
use super::method::{is_token_byte, Method};
use super::name_addr::NameAddr;
use super::uri::Uri;
use super::via::Via;
use bytes::Bytes;
use std::fmt;

/// How the bytes were delimited by the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A UDP datagram: Content-Length may cut trailing octets; without it the body runs to the
    /// end of the datagram (RFC 3261 §18.3).
    Datagram,
    /// Exactly one message cut by the stream framer.
    Stream,
}

/// Parser limits (message size is the framer's and the transport's business).
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    /// Maximum number of header lines.
    pub max_headers: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits { max_headers: 256 }
    }
}

/// What is wrong with a message; `Display` is the reason phrase of the `400`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Empty,
    StartLine,
    StatusLine,
    /// A SIP version other than 2.0 (answered `505`).
    Version,
    RequestUri,
    UriHeaders,
    NotUtf8,
    HeaderLine,
    TooManyHeaders,
    Missing(HeaderName),
    Multiple(HeaderName),
    Malformed(HeaderName),
    CSeqMethod,
    BodyTruncated,
    /// Over a size limit (answered `513`, RFC 3261 §21.5.14).
    TooLarge,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Empty => f.write_str("Empty message"),
            Fault::StartLine => f.write_str("Malformed Request-Line"),
            Fault::StatusLine => f.write_str("Malformed Status-Line"),
            Fault::Version => f.write_str("Version Not Supported"),
            Fault::RequestUri => f.write_str("Malformed Request-URI"),
            Fault::UriHeaders => f.write_str("Headers not allowed in Request-URI"),
            Fault::NotUtf8 => f.write_str("Invalid UTF-8 in header"),
            Fault::HeaderLine => f.write_str("Malformed header line"),
            Fault::TooManyHeaders => f.write_str("Too many header lines"),
            Fault::Missing(h) => write!(f, "Missing {} header", h.as_str()),
            Fault::Multiple(h) => write!(f, "Multiple {} headers", h.as_str()),
            Fault::Malformed(h) => write!(f, "Malformed {} header", h.as_str()),
            Fault::CSeqMethod => f.write_str("CSeq method does not match Request-Line"),
            Fault::BodyTruncated => f.write_str("Content-Length larger than message"),
            Fault::TooLarge => f.write_str("Message Too Large"),
        }
    }
}

impl Fault {
    /// The status a rejected request gets.
    pub fn status(&self) -> u16 {
        match self {
            Fault::Version => 505,
            Fault::TooLarge => 513,
            _ => 400,
        }
    }

    /// The limit this fault hits, as the `reason` of `focus_sip_limit_refusals_total`; `None`
    /// for faults that are not about a limit.
    pub fn limit_label(&self) -> Option<&'static str> {
        match self {
            Fault::TooManyHeaders => Some("too_many_headers"),
            Fault::TooLarge => Some("too_large"),
            Fault::Missing(HeaderName::ContentLength) => Some("no_content_length"),
            _ => None,
        }
    }
}

/// A request that failed to parse but can still be answered.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub fault: Fault,
    /// The normalized headers, from which the response copies Via/From/To/Call-ID/CSeq.
    pub headers: Headers,
    /// Top Via, parsed leniently (enough to route the response).
    pub via: Via,
}

/// Parse failure.
#[derive(Debug, Clone)]
pub enum ParseError {
    /// Unanswerable (a response, or a request without the headers a response needs).
    Drop(Fault),
    /// Answer with `fault.status()` and the fault as reason phrase.
    Reject(Box<Rejected>),
}

impl ParseError {
    /// The fault, whichever the outcome.
    pub fn fault(&self) -> &Fault {
        match self {
            ParseError::Drop(f) => f,
            ParseError::Reject(r) => &r.fault,
        }
    }
}

enum StartLine<'a> {
    Request {
        method: &'a str,
        uri: &'a str,
        version: &'a str,
    },
    Response {
        code: u16,
        reason: &'a str,
    },
}

/// Parses one message.
pub fn parse(buf: Bytes, framing: Framing, limits: &ParseLimits) -> Result<Message, ParseError> {
    let data = &buf[..];
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let start = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(ParseError::Drop(Fault::Empty))?;
    let (head_end, body_start) = find_head_end(data, start);
    let head = &data[start..head_end];

    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or(&[]);
    let first = std::str::from_utf8(first).map_err(|_| ParseError::Drop(Fault::NotUtf8))?;
    let start_line = parse_start_line(first);

    // Normalize header lines even when the start line is bad: a response can still be built
    // from Via/From/To/Call-ID/CSeq.
    let mut headers = Headers::with_capacity(head.len(), 24);
    let mut fault: Option<Fault> = None;
    // The line being assembled: borrowed from the buffer, owned only when folded lines are
    // joined (rare), so an ordinary header line costs no allocation.
    let mut current: Option<std::borrow::Cow<'_, str>> = None;
    let mut count = 0usize;
    let mut flush = |line: &str, headers: &mut Headers, fault: &mut Option<Fault>| {
        count += 1;
        if count > limits.max_headers {
            fault.get_or_insert(Fault::TooManyHeaders);
            // Past the limit only the first of each header a response copies is kept (five
            // at most), so the sender still gets its `400` instead of silence.
            if let Some((name, value)) = split_header_line(line) {
                let known = HeaderName::from_wire(name);
                if ANSWER_HEADERS.contains(&known) && headers.get(known).is_none() {
                    headers.push(name, value);
                }
            }
            return;
        }
        match split_header_line(line) {
            Some((name, value)) => headers.push(name, value),
            None => {
                fault.get_or_insert(Fault::HeaderLine);
            }
        }
    };
    for raw in lines {
        let text = match std::str::from_utf8(raw) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => {
                fault.get_or_insert(Fault::NotUtf8);
                String::from_utf8_lossy(raw)
            }
        };
        if text.starts_with([' ', '\t']) {
            // A folded continuation: RFC 3261 §7.3.1 makes it one SP.
            match current.as_mut() {
                Some(cur) => {
                    let cur = cur.to_mut();
                    let t = cur.trim_end().len();
                    cur.truncate(t);
                    cur.push(' ');
                    cur.push_str(text.trim_start());
                }
                None => {
                    fault.get_or_insert(Fault::HeaderLine);
                }
            }
            continue;
        }
        if let Some(done) = current.take() {
            flush(&done, &mut headers, &mut fault);
        }
        current = Some(text);
    }
    if let Some(done) = current.take() {
        flush(&done, &mut headers, &mut fault);
    }

    let start_line = match start_line {
        Ok(sl) => sl,
        Err(f) => {
            // Version and Request-Line faults of something that looks like a request.
            return Err(reject_or_drop(f, headers, !first.starts_with("SIP/")));
        }
    };

    // Body: Content-Length (one value, digits) decides, per framing.
    let available = data.len().saturating_sub(body_start);
    let body_len = match content_length(&headers) {
        Ok(Some(n)) => {
            if n > available {
                fault.get_or_insert(Fault::BodyTruncated);
                available
            } else {
                n
            }
        }
        Ok(None) => match framing {
            Framing::Datagram => available,
            Framing::Stream => 0,
        },
        Err(f) => {
            fault.get_or_insert(f);
            0
        }
    };
    let body = buf.slice(body_start..body_start + body_len);

    match start_line {
        StartLine::Response { code, reason } => {
            if let Some(f) = fault {
                return Err(ParseError::Drop(f));
            }
            let core = parse_core(&headers).map_err(ParseError::Drop)?;
            Ok(Message::Response(Response {
                status: code,
                reason: reason.into(),
                headers,
                body,
                via: core.via,
                from: core.from,
                to: core.to,
                cseq: core.cseq,
            }))
        }
        StartLine::Request {
            method,
            uri,
            version,
        } => {
            let result = (|| {
                if let Some(f) = fault {
                    return Err(f);
                }
                check_version(version)?;
                let method = Method::parse(method).ok_or(Fault::StartLine)?;
                let uri = Uri::parse(uri).map_err(|_| Fault::RequestUri)?;
                if !uri.headers.is_empty() {
                    return Err(Fault::UriHeaders);
                }
                let core = parse_core(&headers)?;
                // RFC 3261 §8.1.1.7: CSeq method matches the Request-Line (ACK and CANCEL too).
                if core.cseq.method != method {
                    return Err(Fault::CSeqMethod);
                }
                let max_forwards = match single(&headers, HeaderName::MaxForwards)? {
                    Some(v) => {
                        Some(parse_saturating(v).ok_or(Fault::Malformed(HeaderName::MaxForwards))?)
                    }
                    None => None,
                };
                Ok((method, uri, core, max_forwards))
            })();
            match result {
                Ok((method, uri, core, max_forwards)) => Ok(Message::Request(Request {
                    method,
                    uri,
                    headers,
                    body,
                    via: core.via,
                    from: core.from,
                    to: core.to,
                    cseq: core.cseq,
                    max_forwards,
                })),
                Err(f) => Err(reject_or_drop(f, headers, true)),
            }
        }
    }
}

/// The headers a response to a refused request copies (RFC 3261 §8.2.6.2).
const ANSWER_HEADERS: [HeaderName; 5] = [
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
];

/// Refuses a message the transport could not take whole (too large, or unframeable on a
/// stream) for `fault`: parses what arrived of it (`head`, already cut to a bounded size) only
/// to learn where an answer goes. A request that names it is [`ParseError::Reject`]ed with
/// `fault`; anything else is dropped.
pub fn refuse(head: Bytes, fault: Fault, limits: &ParseLimits) -> ParseError {
    match parse(head, Framing::Datagram, limits) {
        Ok(Message::Request(req)) => ParseError::Reject(Box::new(Rejected {
            fault,
            headers: req.headers,
            via: req.via,
        })),
        Err(ParseError::Reject(mut rejected)) => {
            rejected.fault = fault;
            ParseError::Reject(rejected)
        }
        Ok(Message::Response(_)) | Err(ParseError::Drop(_)) => ParseError::Drop(fault),
    }
}

/// Decides whether a faulty request can be answered: it needs a usable top Via and the
/// From, To, Call-ID and CSeq a response copies.
fn reject_or_drop(fault: Fault, headers: Headers, is_request: bool) -> ParseError {
    if !is_request {
        return ParseError::Drop(fault);
    }
    let via = headers
        .values(HeaderName::Via)
        .next()
        .and_then(|v| Via::parse_lenient(v).ok());
    let complete = [
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ]
    .iter()
    .all(|h| headers.get(*h).is_some());
    match via {
        Some(via) if complete => ParseError::Reject(Box::new(Rejected {
            fault,
            headers,
            via,
        })),
        _ => ParseError::Drop(fault),
    }
}

/// Finds the end of the header section: returns (end of last header line, body start).
fn find_head_end(data: &[u8], from: usize) -> (usize, usize) {
    let mut i = from;
    while i < data.len() {
        if data[i] == b'\n' {
            let next = data.get(i + 1).copied();
            if next == Some(b'\n') {
                return (i, i + 2);
            }
            if next == Some(b'\r') && data.get(i + 2) == Some(&b'\n') {
                return (i, i + 3);
            }
        }
        i += 1;
    }
    // No empty line: the headers run to the end (RFC 4475 §3.1.2.15 archive form).
    (data.len(), data.len())
}

fn parse_start_line(line: &str) -> Result<StartLine<'_>, Fault> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let (version, rest) = rest.split_once(' ').ok_or(Fault::StatusLine)?;
        if version != "2.0" {
            return Err(Fault::Version);
        }
        let (code, reason) = match rest.split_once(' ') {
            Some((c, r)) => (c, r),
            None => (rest, ""),
        };
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Fault::StatusLine);
        }
        let code: u16 = code.parse().map_err(|_| Fault::StatusLine)?;
        if !(100..=699).contains(&code) {
            return Err(Fault::StatusLine);
        }
        return Ok(StartLine::Response { code, reason });
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Fault::StartLine);
    };
    if method.is_empty() || uri.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(Fault::StartLine);
    }
    check_version(version)?;
    Ok(StartLine::Request {
        method,
        uri,
        version,
    })
}

fn check_version(version: &str) -> Result<(), Fault> {
    match version.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("SIP/") => {
            if &version[4..] == "2.0" {
                Ok(())
            } else {
                Err(Fault::Version)
            }
        }
        _ => Err(Fault::StartLine),
    }
}

/// `name HCOLON value`: whitespace before the colon is allowed (RFC 3261 §7.3.1).
fn split_header_line(line: &str) -> Option<(&str, &str)> {
    let colon = line.find(':')?;
    let name = line[..colon].trim_end_matches([' ', '\t']);
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return None;
    }
    Some((name, line[colon + 1..].trim()))
}

struct Core {
    via: Via,
    from: NameAddr,
    to: NameAddr,
    cseq: CSeq,
}

fn single(headers: &Headers, name: HeaderName) -> Result<Option<&str>, Fault> {
    let mut it = headers.get_all(name);
    let first = it.next();
    if it.next().is_some() {
        return Err(Fault::Multiple(name));
    }
    Ok(first)
}

fn required(headers: &Headers, name: HeaderName) -> Result<&str, Fault> {
    single(headers, name)?.ok_or(Fault::Missing(name))
}

fn parse_core(headers: &Headers) -> Result<Core, Fault> {
    let top = headers
        .values(HeaderName::Via)
        .next()
        .ok_or(Fault::Missing(HeaderName::Via))?;
    let via = Via::parse(top).map_err(|_| Fault::Malformed(HeaderName::Via))?;
    // Every other Via value must parse too, or responses would carry garbage back.
    for v in headers.values(HeaderName::Via).skip(1) {
        Via::parse(v).map_err(|_| Fault::Malformed(HeaderName::Via))?;
    }
    let from = NameAddr::parse(required(headers, HeaderName::From)?)
        .map_err(|_| Fault::Malformed(HeaderName::From))?;
    let to = NameAddr::parse(required(headers, HeaderName::To)?)
        .map_err(|_| Fault::Malformed(HeaderName::To))?;
    let call_id = required(headers, HeaderName::CallId)?;
    if call_id.is_empty() || call_id.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(Fault::Malformed(HeaderName::CallId));
    }
    let cseq = parse_cseq(required(headers, HeaderName::CSeq)?)?;
    Ok(Core {
        via,
        from,
        to,
        cseq,
    })
}

/// `CSeq: 1*DIGIT LWS Method`, the number below 2^31 (RFC 3261 §8.1.1.5).
pub fn parse_cseq(v: &str) -> Result<CSeq, Fault> {
    let bad = Fault::Malformed(HeaderName::CSeq);
    let mut it = v.split_whitespace();
    let (Some(num), Some(method), None) = (it.next(), it.next(), it.next()) else {
        return Err(bad);
    };
    if num.is_empty() || num.len() > 10 || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let seq: u64 = num.parse().map_err(|_| bad.clone())?;
    if seq >= 1 << 31 {
        return Err(bad);
    }
    let method = Method::parse(method).ok_or(bad)?;
    Ok(CSeq {
        seq: seq as u32,
        method,
    })
}

/// Parses a decimal number, saturating at `u32::MAX` (overlarge Expires, Max-Forwards).
pub fn parse_saturating(v: &str) -> Option<u32> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: u32 = 0;
    for b in v.bytes() {
        n = n.saturating_mul(10).saturating_add(u32::from(b - b'0'));
    }
    Some(n)
}

fn content_length(headers: &Headers) -> Result<Option<usize>, Fault> {
    let bad = Fault::Malformed(HeaderName::ContentLength);
    match single(headers, HeaderName::ContentLength)? {
        None => Ok(None),
        Some(v) => {
            let mut it = split_commas(v);
            let (Some(v), None) = (it.next(), it.next()) else {
                return Err(Fault::Multiple(HeaderName::ContentLength));
            };
            if v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) || v.is_empty() {
                return Err(bad);
            }
            v.parse().map(Some).map_err(|_| bad)
        }
    }
}
