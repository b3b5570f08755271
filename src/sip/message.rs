//! The facade types the rest of the focus sees: a parsed request or response with its
//! essential headers checked and parsed once.

use super::header::{HeaderName, Headers};
use super::method::Method;
use super::name_addr::NameAddr;
use super::uri::Uri;
use super::via::Via;
use bytes::Bytes;

/// `CSeq` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

/// A SIP request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Bytes,
    /// Top Via, parsed.
    pub via: Via,
    pub from: NameAddr,
    pub to: NameAddr,
    pub cseq: CSeq,
    pub max_forwards: Option<u32>,
}

impl Request {
    /// The Call-ID (checked present and single at parse time).
    pub fn call_id(&self) -> &str {
        self.headers.get(HeaderName::CallId).unwrap_or("")
    }

    /// The transaction branch of the top Via.
    pub fn branch(&self) -> Option<&str> {
        self.via.branch()
    }

    /// The body's Content-Type (media type without parameters, lower-cased comparisons are
    /// the caller's), or `None` when there is no body.
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get(HeaderName::ContentType)
    }
}

/// A SIP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub reason: Box<str>,
    pub headers: Headers,
    pub body: Bytes,
    pub via: Via,
    pub from: NameAddr,
    pub to: NameAddr,
    pub cseq: CSeq,
}

impl Response {
    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        self.headers.get(HeaderName::CallId).unwrap_or("")
    }

    /// The transaction branch of the top Via.
    pub fn branch(&self) -> Option<&str> {
        self.via.branch()
    }
}

/// A request or a response.
#[derive(Debug, Clone)]
pub enum Message {
    Request(Request),
    Response(Response),
}
