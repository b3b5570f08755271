//! Writes outgoing messages straight into one buffer: no intermediate message tree, one
//! allocation per message.

use super::header::{HeaderName, Headers};
use super::message::Request;
use super::method::Method;
use super::parse::Rejected;
use super::status::Status;
use super::via::Via;
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt::Write as _;
use std::net::SocketAddr;

/// A message being written: start line and headers so far.
#[derive(Debug)]
pub struct MessageWriter {
    buf: BytesMut,
}

impl MessageWriter {
    /// Starts a request: `METHOD uri SIP/2.0`.
    pub fn request(method: &Method, uri: &str) -> MessageWriter {
        let mut buf = BytesMut::with_capacity(512 + uri.len());
        buf.put_slice(method.as_str().as_bytes());
        buf.put_u8(b' ');
        buf.put_slice(uri.as_bytes());
        buf.put_slice(b" SIP/2.0\r\n");
        MessageWriter { buf }
    }

    /// Starts the part of a request after its Via (the endpoint writes the start line and the
    /// Via once it has chosen the transport).
    pub fn headers_only() -> MessageWriter {
        MessageWriter {
            buf: BytesMut::with_capacity(512),
        }
    }

    /// Starts a response: `SIP/2.0 code reason`. Reason phrases that came from elsewhere are
    /// stripped of line ends so they cannot inject headers.
    pub fn response(status: Status, reason: &str) -> MessageWriter {
        let mut buf = BytesMut::with_capacity(512);
        let _ = write!(Fmt(&mut buf), "SIP/2.0 {status} ");
        for c in reason.chars().filter(|c| !c.is_control()) {
            let mut tmp = [0u8; 4];
            buf.put_slice(c.encode_utf8(&mut tmp).as_bytes());
        }
        buf.put_slice(b"\r\n");
        MessageWriter { buf }
    }

    /// Starts a response to `req`, copying Via (top one with `received`/`rport`), From, To
    /// (adding `to_tag` when the To has none and the response is not a 100), Call-ID and CSeq.
    pub fn response_to(
        req: &Request,
        source: SocketAddr,
        status: impl Into<Status>,
        reason: &str,
        to_tag: Option<&str>,
    ) -> MessageWriter {
        let status = status.into();
        let mut w = MessageWriter::response(status, reason);
        w.copy_dialog_headers(
            &req.headers,
            &req.via,
            source,
            status,
            to_tag,
            req.to.tag().is_some(),
        );
        // RFC 3261 §12.1.1: a response that may establish a dialog carries the request's
        // Record-Route, so the caller's route set keeps in-dialog requests on the proxies
        // (a balancer in front of several foci) that asked to stay in the path.
        if status.is_success() || (status.is_provisional() && status != Status::TRYING) {
            for rr in req.headers.values(HeaderName::RecordRoute) {
                w.header(HeaderName::RecordRoute, rr);
            }
        }
        w
    }

    /// Starts the response to a request that failed to parse (its fault as reason phrase).
    pub fn reject(rejected: &Rejected, source: SocketAddr, to_tag: &str) -> MessageWriter {
        let status = rejected.fault.status();
        let reason = rejected.fault.to_string();
        let mut w = MessageWriter::response(status, &reason);
        let has_tag = rejected
            .headers
            .get(HeaderName::To)
            .and_then(|t| super::name_addr::NameAddr::parse(t).ok())
            .is_some_and(|t| t.tag().is_some());
        w.copy_dialog_headers(
            &rejected.headers,
            &rejected.via,
            source,
            status,
            Some(to_tag),
            has_tag,
        );
        w
    }

    fn copy_dialog_headers(
        &mut self,
        headers: &Headers,
        top: &Via,
        source: SocketAddr,
        status: Status,
        to_tag: Option<&str>,
        to_has_tag: bool,
    ) {
        for (i, via) in headers.values(HeaderName::Via).enumerate() {
            if i == 0 && top.needs_received(source) {
                self.buf.put_slice(b"Via: ");
                let _ = top.write_received(&mut Fmt(&mut self.buf), source);
                self.buf.put_slice(b"\r\n");
            } else {
                self.header(HeaderName::Via, via);
            }
        }
        for name in [
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            let value = headers.get(name).unwrap_or("");
            self.buf.put_slice(name.as_str().as_bytes());
            self.buf.put_slice(b": ");
            self.buf.put_slice(value.as_bytes());
            if name == HeaderName::To && !to_has_tag && status != Status::TRYING {
                if let Some(tag) = to_tag {
                    self.buf.put_slice(b";tag=");
                    self.buf.put_slice(tag.as_bytes());
                }
            }
            self.buf.put_slice(b"\r\n");
        }
    }

    /// Adds a header line (a known name: extension headers go through
    /// [`MessageWriter::header_named`]).
    pub fn header(&mut self, name: HeaderName, value: &str) -> &mut Self {
        debug_assert!(name != HeaderName::Other, "HeaderName::Other has no text");
        self.header_named(name.as_str(), value)
    }

    /// Adds a header line with a name of the caller's (extension headers).
    pub fn header_named(&mut self, name: &str, value: &str) -> &mut Self {
        self.buf.put_slice(name.as_bytes());
        self.buf.put_slice(b": ");
        // Values never carry line ends: a CR or LF here would split the message. Each becomes
        // a space rather than nothing, so the words it separated (a copied Via's protocol and
        // sent-by, which our parser splits at any whitespace) stay apart and parse back.
        if value.bytes().any(|b| b == b'\r' || b == b'\n') {
            for c in value.chars() {
                let c = if c == '\r' || c == '\n' { ' ' } else { c };
                let mut tmp = [0u8; 4];
                self.buf.put_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        } else {
            self.buf.put_slice(value.as_bytes());
        }
        self.buf.put_slice(b"\r\n");
        self
    }

    /// Adds a header whose value is formatted.
    pub fn header_fmt(&mut self, name: HeaderName, value: std::fmt::Arguments<'_>) -> &mut Self {
        debug_assert!(name != HeaderName::Other, "HeaderName::Other has no text");
        self.buf.put_slice(name.as_str().as_bytes());
        self.buf.put_slice(b": ");
        let _ = Fmt(&mut self.buf).write_fmt(value);
        self.buf.put_slice(b"\r\n");
        self
    }

    /// Ends the headers with Content-Type (when there is a body) and Content-Length, then the
    /// body.
    pub fn finish(mut self, content_type: Option<&str>, body: &[u8]) -> Bytes {
        if let Some(ct) = content_type.filter(|_| !body.is_empty()) {
            self.header(HeaderName::ContentType, ct);
        }
        let _ = write!(Fmt(&mut self.buf), "Content-Length: {}\r\n\r\n", body.len());
        self.buf.put_slice(body);
        self.buf.freeze()
    }

    /// Ends a message without a body.
    pub fn finish_empty(self) -> Bytes {
        self.finish(None, &[])
    }
}

/// `fmt::Write` over `BytesMut`.
struct Fmt<'a>(&'a mut BytesMut);

impl std::fmt::Write for Fmt<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}
