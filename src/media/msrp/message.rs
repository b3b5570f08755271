//! The MSRP message model (RFC 4975 §7, §9; RFC 7701 §5 for NICKNAME): requests, responses
//! and the typed header fields a switch acts on. Everything else is kept, in order, as
//! [`Header`] so a relay or a later extension loses nothing.

use super::syntax::{new_message_id, new_transaction_id};
use super::uri::MsrpUri;
use bytes::Bytes;
use std::fmt;

/// Request methods. Unknown ones are kept (`other-method = 1*UPALPHA`) so the switch can
/// answer them `501` instead of dropping the connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Send,
    Report,
    /// RFC 7701 §5.1.
    Nickname,
    Other(String),
}

impl Method {
    /// Parses `1*UPALPHA` (methods are case-sensitive upper case).
    pub fn parse(s: &str) -> Option<Method> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_uppercase()) {
            return None;
        }
        Some(match s {
            "SEND" => Method::Send,
            "REPORT" => Method::Report,
            "NICKNAME" => Method::Nickname,
            other => Method::Other(other.to_owned()),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Send => "SEND",
            Method::Report => "REPORT",
            Method::Nickname => "NICKNAME",
            Method::Other(m) => m,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `Byte-Range: start-end/total` (RFC 4975 §7.1.1); `None` stands for `*` (unknown, e.g. a
/// chunk that may be interrupted, or a message whose length the sender does not know yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// 1-based position of the chunk's first byte in the whole message.
    pub start: u64,
    pub end: Option<u64>,
    pub total: Option<u64>,
}

impl ByteRange {
    /// `1-*/*`, the value of an absent Byte-Range (RFC 4975 §7.1.1).
    pub const DEFAULT: ByteRange = ByteRange {
        start: 1,
        end: None,
        total: None,
    };

    /// The range of a whole message of `len` bytes sent in one chunk (`1-len/len`; an empty
    /// message is `1-0/0`).
    pub fn whole(len: u64) -> ByteRange {
        ByteRange {
            start: 1,
            end: Some(len),
            total: Some(len),
        }
    }

    /// Parses `1*DIGIT "-" (1*DIGIT / "*") "/" (1*DIGIT / "*")` and checks that it is
    /// coherent: start ≥ 1, end ≥ start − 1 (an empty chunk), end ≤ total.
    pub fn parse(s: &str) -> Option<ByteRange> {
        let (start, rest) = s.split_once('-')?;
        let (end, total) = rest.split_once('/')?;
        let num = |t: &str| -> Option<Option<u64>> {
            if t == "*" {
                Some(None)
            } else if !t.is_empty() && t.len() <= 19 && t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse().ok().map(Some)
            } else {
                None
            }
        };
        let r = ByteRange {
            start: num(start)??,
            end: num(end)?,
            total: num(total)?,
        };
        r.is_coherent().then_some(r)
    }

    fn is_coherent(&self) -> bool {
        self.start >= 1
            && self.end.is_none_or(|e| e >= self.start - 1)
            && match (self.end, self.total) {
                (Some(e), Some(t)) => e <= t,
                (None, Some(t)) => self.start <= t.saturating_add(1),
                _ => true,
            }
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.start)?;
        match self.end {
            Some(e) => write!(f, "{e}/")?,
            None => f.write_str("*/")?,
        }
        match self.total {
            Some(t) => write!(f, "{t}"),
            None => f.write_str("*"),
        }
    }
}

/// `Failure-Report` (RFC 4975 §7.1.4): whether the sender wants failure REPORTs and
/// transaction responses. Absent means `Yes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReport {
    Yes,
    No,
    /// Failures only: no `200` response, but negative responses and failure REPORTs.
    Partial,
}

impl FailureReport {
    pub fn parse(s: &str) -> Option<FailureReport> {
        match s {
            "yes" => Some(FailureReport::Yes),
            "no" => Some(FailureReport::No),
            "partial" => Some(FailureReport::Partial),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureReport::Yes => "yes",
            FailureReport::No => "no",
            FailureReport::Partial => "partial",
        }
    }
}

/// `Status: namespace code [comment]` of a REPORT (RFC 4975 §7.1.2); namespace `000` holds
/// the response codes of RFC 4975 and its extensions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Status {
    /// Three digits (0..=999).
    pub namespace: u16,
    /// Three digits (0..=999).
    pub code: u16,
    pub comment: Option<String>,
}

impl Status {
    /// `000 <code> <reason phrase>`.
    pub fn new(code: u16) -> Status {
        Status {
            namespace: 0,
            code,
            comment: Some(super::status::reason_phrase(code).to_owned()),
        }
    }

    /// `000 200 OK`, the status of a success report.
    pub fn ok() -> Status {
        Status::new(200)
    }

    /// Parses `3DIGIT SP 3DIGIT [SP comment]`.
    pub fn parse(s: &str) -> Option<Status> {
        let three = |t: &str| -> Option<u16> {
            (t.len() == 3 && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse().ok())
                .flatten()
        };
        let (ns, rest) = s.split_once(' ')?;
        let (code, comment) = match rest.split_once(' ') {
            Some((c, text)) => (c, Some(text)),
            None => (rest, None),
        };
        Some(Status {
            namespace: three(ns)?,
            code: three(code)?,
            comment: comment.filter(|c| !c.is_empty()).map(str::to_owned),
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.namespace, self.code)?;
        match &self.comment {
            Some(c) => write!(f, " {c}"),
            None => Ok(()),
        }
    }
}

/// The continuation flag of the end-line (RFC 4975 §7.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Continuation {
    /// `$`: the last (or only) chunk of the message.
    Complete,
    /// `+`: more chunks follow.
    More,
    /// `#`: the sender abandoned the message.
    Aborted,
}

impl Continuation {
    pub fn from_byte(b: u8) -> Option<Continuation> {
        match b {
            b'$' => Some(Continuation::Complete),
            b'+' => Some(Continuation::More),
            b'#' => Some(Continuation::Aborted),
            _ => None,
        }
    }

    pub fn as_byte(self) -> u8 {
        match self {
            Continuation::Complete => b'$',
            Continuation::More => b'+',
            Continuation::Aborted => b'#',
        }
    }
}

/// A header field the model has no field for (extension or MIME header), kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    pub name: String,
    pub value: String,
}

impl Header {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// An MSRP request (one chunk of a message, for SEND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Matches the response and ends the message (`-------<tid><flag>`).
    pub transaction_id: String,
    pub method: Method,
    /// Hops still to visit, nearest first; the last is the destination.
    pub to_path: Vec<MsrpUri>,
    /// Hops back to the sender, nearest first; the last is the sender.
    pub from_path: Vec<MsrpUri>,
    /// Ties the chunks of one message together and REPORTs to the message.
    pub message_id: Option<String>,
    pub byte_range: Option<ByteRange>,
    pub success_report: Option<bool>,
    pub failure_report: Option<FailureReport>,
    /// REPORT only.
    pub status: Option<Status>,
    /// Required when the body is not empty.
    pub content_type: Option<String>,
    /// RFC 7701 `Use-Nickname`, unquoted (NICKNAME requests).
    pub use_nickname: Option<String>,
    /// Other header fields, in the order received.
    pub headers: Vec<Header>,
    /// The chunk's content: a slice of the received frame, never a copy.
    pub body: Bytes,
    pub continuation: Continuation,
}

impl Request {
    /// A request with a fresh transaction id and no optional header field.
    pub fn new(method: Method, to_path: Vec<MsrpUri>, from_path: Vec<MsrpUri>) -> Request {
        Request {
            transaction_id: new_transaction_id(),
            method,
            to_path,
            from_path,
            message_id: None,
            byte_range: None,
            success_report: None,
            failure_report: None,
            status: None,
            content_type: None,
            use_nickname: None,
            headers: Vec::new(),
            body: Bytes::new(),
            continuation: Continuation::Complete,
        }
    }

    /// A complete one-chunk SEND with fresh transaction and message ids and
    /// `Byte-Range: 1-len/len`. An empty `body` gives the empty SEND that binds a connection
    /// (RFC 4975 §5.4); it carries no Content-Type.
    pub fn send(
        to_path: Vec<MsrpUri>,
        from_path: Vec<MsrpUri>,
        content_type: impl Into<String>,
        body: Bytes,
    ) -> Request {
        let mut r = Request::new(Method::Send, to_path, from_path);
        r.message_id = Some(new_message_id());
        r.byte_range = Some(ByteRange::whole(body.len() as u64));
        if !body.is_empty() {
            r.content_type = Some(content_type.into());
        }
        r.body = body;
        r
    }

    /// Whether the sender asked for a success REPORT (absent means no).
    pub fn success_report(&self) -> bool {
        self.success_report.unwrap_or(false)
    }

    /// Whether the sender wants failure REPORTs and responses (absent means yes).
    pub fn failure_report(&self) -> FailureReport {
        self.failure_report.unwrap_or(FailureReport::Yes)
    }

    /// The chunk's position in its message (absent means `1-*/*`).
    pub fn byte_range(&self) -> ByteRange {
        self.byte_range.unwrap_or(ByteRange::DEFAULT)
    }

    /// Whether a transaction response with this code should be sent (RFC 4975 §7.2):
    /// Failure-Report `no` wants none, `partial` only failures, and REPORTs are never
    /// answered (§7.1.2).
    pub fn should_respond(&self, code: u16) -> bool {
        self.method != Method::Report
            && match self.failure_report() {
                FailureReport::Yes => true,
                FailureReport::Partial => !(200..300).contains(&code),
                FailureReport::No => false,
            }
    }

    /// The first other header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
}

/// An MSRP transaction response. Responses carry no body (RFC 4975 §9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub transaction_id: String,
    /// Three digits (0..=999).
    pub code: u16,
    pub comment: Option<String>,
    pub to_path: Vec<MsrpUri>,
    pub from_path: Vec<MsrpUri>,
    /// Other header fields, in order.
    pub headers: Vec<Header>,
}

impl Response {
    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The first other header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
}

fn find<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// A parsed MSRP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    pub fn transaction_id(&self) -> &str {
        match self {
            Message::Request(r) => &r.transaction_id,
            Message::Response(r) => &r.transaction_id,
        }
    }
}

/// RFC 4975 §7.2: responses to SEND go back one hop only; others take the full path back.
pub(crate) fn response_to_path(method: &Method, from_path: &[MsrpUri]) -> Vec<MsrpUri> {
    match method {
        Method::Send => from_path.first().cloned().into_iter().collect(),
        _ => from_path.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::syntax::is_ident;
    use super::*;

    #[test]
    fn byte_ranges() {
        let r = |s: &str| ByteRange::parse(s);
        assert_eq!(r("1-25/25"), Some(ByteRange::whole(25)));
        assert_eq!(r("1-0/0"), Some(ByteRange::whole(0)));
        assert_eq!(r("1-*/*"), Some(ByteRange::DEFAULT));
        let mid = ByteRange {
            start: 138,
            end: None,
            total: Some(148),
        };
        assert_eq!(r("138-*/148"), Some(mid));
        assert_eq!(mid.to_string(), "138-*/148");
        assert_eq!(ByteRange::DEFAULT.to_string(), "1-*/*");
        for bad in [
            "0-1/1",
            "1-2/1",
            "5-3/9",
            "1-2",
            "1/2",
            "-1-2/3",
            "a-2/3",
            "1-2/x",
            "1-2/3 ",
            " 1-2/3",
            "1--2/3",
            "",
            "1-*/-1",
            "99999999999999999999-*/*",
            "10-*/5",
        ] {
            assert_eq!(r(bad), None, "{bad}");
        }
    }

    #[test]
    fn status_header() {
        let s = Status::parse("000 200 OK").unwrap();
        assert_eq!(s, Status::ok());
        assert_eq!(s.to_string(), "000 200 OK");
        let s = Status::parse("000 413").unwrap();
        assert_eq!(s.comment, None);
        assert_eq!(s.to_string(), "000 413");
        assert_eq!(
            Status::parse("000 481 No session: gone")
                .unwrap()
                .comment
                .as_deref(),
            Some("No session: gone")
        );
        for bad in [
            "", "000", "00 200", "000 20", "000 2000", "abc 200", "000  200",
        ] {
            assert_eq!(Status::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn methods_and_defaults() {
        assert_eq!(Method::parse("SEND"), Some(Method::Send));
        assert_eq!(Method::parse("NICKNAME"), Some(Method::Nickname));
        assert_eq!(Method::parse("AUTH"), Some(Method::Other("AUTH".into())));
        assert_eq!(Method::parse("send"), None);
        assert_eq!(Method::parse("SE-ND"), None);
        let r = Request::new(Method::Send, vec![], vec![]);
        assert!(!r.success_report());
        assert_eq!(r.failure_report(), FailureReport::Yes);
        assert_eq!(r.byte_range(), ByteRange::DEFAULT);
        assert!(r.should_respond(200));
        let mut p = r.clone();
        p.failure_report = Some(FailureReport::Partial);
        assert!(!p.should_respond(200) && p.should_respond(413));
        p.failure_report = Some(FailureReport::No);
        assert!(!p.should_respond(481));
        p.failure_report = None;
        p.method = Method::Report;
        assert!(!p.should_respond(400));
        assert!(is_ident(&r.transaction_id));
        for (flag, c) in [
            (b'$', Continuation::Complete),
            (b'+', Continuation::More),
            (b'#', Continuation::Aborted),
        ] {
            assert_eq!(Continuation::from_byte(flag), Some(c));
            assert_eq!(c.as_byte(), flag);
        }
        assert_eq!(Continuation::from_byte(b'!'), None);
    }
}
