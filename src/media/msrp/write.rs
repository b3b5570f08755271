//! Writes MSRP requests and responses, and builds the responses and REPORTs a receiver
//! sends (RFC 4975 §7.1.2, §7.2).
//!
//! The writer refuses what would not parse back: a value with a line end, a path URI with a
//! space, a body that contains its own end-line. Fields are public, so these are checked
//! here rather than trusted.

use super::message::{response_to_path, ByteRange, Header, Method, Request, Response, Status};
use super::status::reason_phrase;
use super::syntax::{find, is_ident, HeaderName};
use super::uri::{is_token_byte, MsrpUri};
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt::Write as _;
use thiserror::Error;

/// Why a message cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WriteError {
    #[error("transaction id is not an ident")]
    TransactionId,
    #[error("Message-ID is not an ident")]
    MessageId,
    #[error("To-Path or From-Path is empty")]
    EmptyPath,
    #[error("a path URI cannot be written")]
    PathUri,
    #[error("invalid value in header {0}")]
    HeaderValue(String),
    #[error("a body needs a Content-Type")]
    MissingContentType,
    /// The body contains `-------<tid>`: send it again with a fresh transaction id.
    #[error("the body contains the end-line")]
    EndLineInBody,
    #[error("status code out of range")]
    Code,
}

impl Request {
    /// Appends the request to `out`. On error nothing is appended.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), WriteError> {
        let mut head = String::with_capacity(256);
        check_tid(&self.transaction_id)?;
        let method = self.method.as_str();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(WriteError::HeaderValue("method".into()));
        }
        let _ = write!(head, "MSRP {} {method}\r\n", self.transaction_id);
        write_paths(&mut head, &self.to_path, &self.from_path)?;
        if let Some(id) = &self.message_id {
            if !is_ident(id) {
                return Err(WriteError::MessageId);
            }
            let _ = write!(head, "Message-ID: {id}\r\n");
        }
        if let Some(r) = &self.byte_range {
            let _ = write!(head, "Byte-Range: {r}\r\n");
        }
        if let Some(yes) = self.success_report {
            let v = if yes { "yes" } else { "no" };
            let _ = write!(head, "Success-Report: {v}\r\n");
        }
        if let Some(f) = self.failure_report {
            let _ = write!(head, "Failure-Report: {}\r\n", f.as_str());
        }
        if let Some(s) = &self.status {
            check_status(s)?;
            let _ = write!(head, "Status: {s}\r\n");
        }
        if let Some(n) = &self.use_nickname {
            let _ = write!(head, "Use-Nickname: {}\r\n", quote(n)?);
        }
        write_headers(&mut head, &self.headers)?;
        let end_line = format!("-------{}", self.transaction_id);
        if !self.body.is_empty() {
            let ct = self
                .content_type
                .as_deref()
                .ok_or(WriteError::MissingContentType)?;
            check_value("Content-Type", ct)?;
            if ct.is_empty() {
                return Err(WriteError::MissingContentType);
            }
            if find(&self.body, end_line.as_bytes(), 0).is_some() {
                return Err(WriteError::EndLineInBody);
            }
            // The Content-Type is the last header field (RFC 4975 §7.1).
            let _ = write!(head, "Content-Type: {ct}\r\n\r\n");
        }
        out.reserve(head.len() + self.body.len() + end_line.len() + 5);
        out.put_slice(head.as_bytes());
        if !self.body.is_empty() {
            out.put_slice(&self.body);
            out.put_slice(b"\r\n");
        }
        out.put_slice(end_line.as_bytes());
        out.put_u8(self.continuation.as_byte());
        out.put_slice(b"\r\n");
        Ok(())
    }

    /// The request as bytes.
    pub fn to_bytes(&self) -> Result<Bytes, WriteError> {
        let mut out = BytesMut::new();
        self.encode(&mut out)?;
        Ok(out.freeze())
    }

    /// A REPORT about `send` (RFC 4975 §7.1.2): back along the SEND's From-Path, from the
    /// SEND's destination (the last To-Path URI), with its Message-ID, the range of bytes
    /// the report covers (`received`), and `status` ([`Status::ok`] for a success report).
    pub fn report(send: &Request, status: Status, received: ByteRange) -> Request {
        let mut r = Request::new(
            Method::Report,
            send.from_path.clone(),
            send.to_path.last().cloned().into_iter().collect(),
        );
        r.message_id = send.message_id.clone();
        r.byte_range = Some(received);
        r.status = Some(status);
        r
    }
}

impl Response {
    /// The response to `request` (RFC 4975 §7.2): same transaction id; To-Path is the previous
    /// hop (the first From-Path URI) for SEND, the whole From-Path for other methods; From-Path
    /// is the responder, the URI the request was addressed to (the first To-Path URI).
    /// `comment` defaults to the usual phrase for `code`.
    pub fn for_request(request: &Request, code: u16, comment: Option<&str>) -> Response {
        Response {
            transaction_id: request.transaction_id.clone(),
            code,
            comment: Some(comment.unwrap_or(reason_phrase(code)).to_owned()),
            to_path: response_to_path(&request.method, &request.from_path),
            from_path: request.to_path.first().cloned().into_iter().collect(),
            headers: Vec::new(),
        }
    }

    /// Appends the response to `out`. On error nothing is appended.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), WriteError> {
        check_tid(&self.transaction_id)?;
        if self.code > 999 {
            return Err(WriteError::Code);
        }
        let mut head = String::with_capacity(160);
        let _ = write!(head, "MSRP {} {:03}", self.transaction_id, self.code);
        if let Some(c) = self.comment.as_deref().filter(|c| !c.is_empty()) {
            check_value("comment", c)?;
            let _ = write!(head, " {c}");
        }
        head.push_str("\r\n");
        write_paths(&mut head, &self.to_path, &self.from_path)?;
        write_headers(&mut head, &self.headers)?;
        let _ = write!(head, "-------{}$\r\n", self.transaction_id);
        out.put_slice(head.as_bytes());
        Ok(())
    }

    /// The response as bytes.
    pub fn to_bytes(&self) -> Result<Bytes, WriteError> {
        let mut out = BytesMut::new();
        self.encode(&mut out)?;
        Ok(out.freeze())
    }
}

fn check_tid(tid: &str) -> Result<(), WriteError> {
    if is_ident(tid) {
        Ok(())
    } else {
        Err(WriteError::TransactionId)
    }
}

fn check_status(s: &Status) -> Result<(), WriteError> {
    if s.namespace > 999 || s.code > 999 {
        return Err(WriteError::Code);
    }
    match &s.comment {
        Some(c) => check_value("Status", c),
        None => Ok(()),
    }
}

/// To-Path then From-Path, first (RFC 4975 §7.1 MUST).
fn write_paths(head: &mut String, to: &[MsrpUri], from: &[MsrpUri]) -> Result<(), WriteError> {
    for (name, path) in [("To-Path", to), ("From-Path", from)] {
        if path.is_empty() {
            return Err(WriteError::EmptyPath);
        }
        head.push_str(name);
        head.push(':');
        for uri in path {
            if !uri.is_writable() {
                return Err(WriteError::PathUri);
            }
            let _ = write!(head, " {uri}");
        }
        head.push_str("\r\n");
    }
    Ok(())
}

/// Extension headers; names that the parser would take for a typed field are refused, so
/// what is written parses back to the same message.
fn write_headers(head: &mut String, headers: &[Header]) -> Result<(), WriteError> {
    for h in headers {
        let reserved = HeaderName::ALL
            .iter()
            .any(|k| k.as_str().eq_ignore_ascii_case(&h.name));
        if h.name.is_empty() || !h.name.bytes().all(is_token_byte) || reserved {
            return Err(WriteError::HeaderValue(h.name.clone()));
        }
        check_value(&h.name, &h.value)?;
        let _ = write!(head, "{}: {}\r\n", h.name, h.value);
    }
    Ok(())
}

/// `utf8text` without surrounding whitespace (the parser trims it).
fn check_value(name: &str, v: &str) -> Result<(), WriteError> {
    let bad = v.chars().any(|c| (c < ' ' && c != '\t') || c == '\x7f')
        || v.starts_with([' ', '\t'])
        || v.ends_with([' ', '\t']);
    if bad {
        Err(WriteError::HeaderValue(name.to_owned()))
    } else {
        Ok(())
    }
}

/// `quoted-string` for Use-Nickname.
fn quote(n: &str) -> Result<String, WriteError> {
    if n.is_empty() || n.chars().any(|c| (c < ' ' && c != '\t') || c == '\x7f') {
        return Err(WriteError::HeaderValue("Use-Nickname".into()));
    }
    let mut out = String::with_capacity(n.len() + 2);
    out.push('"');
    for c in n.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}
