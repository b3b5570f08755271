//! Refusals: every typed reason the focus refuses a request for implements [`Refuse`], and
//! [`refusal_response`] is the one place its answer is written (status line, Warning,
//! Retry-After, the headers that explain it) and counted, so a status, its phrase, its
//! Warning and its metric label cannot drift apart between the layers that refuse.

use super::{HeaderName, MessageWriter, Request, Status, WarnCode};
use bytes::Bytes;
use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;

/// A typed refusal of a request.
pub trait Refuse {
    /// The status it is answered with.
    fn status(&self) -> Status;

    /// The reason phrase: the standard one unless the refusal says what is wrong (a `400`).
    fn reason(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.status().reason())
    }

    /// The Warning (RFC 3261 §20.43) that tells the user why, if any.
    fn warning(&self) -> Option<(WarnCode, Cow<'_, str>)> {
        None
    }

    /// Whether the client is asked to try again later (`Retry-After`): shed load and
    /// fair-share refusals.
    fn retry_later(&self) -> bool {
        false
    }

    /// Adds the headers that say what would have been accepted (`Allow`, `Accept`, ...).
    fn explain(&self, _w: &mut MessageWriter) {}

    /// The bounded label it is counted under.
    fn label(&self) -> &'static str;

    /// Counts it in its metric (see the metric table), labelled with [`Refuse::label`].
    fn count(&self);
}

/// What a refusal's answer needs from whoever answers: the Warning's agent (the focus's
/// domain, or the host it advertises) and how long a client asked to retry later waits.
#[derive(Clone, Copy)]
pub struct Refuser<'a> {
    pub agent: &'a dyn fmt::Display,
    pub retry_after_s: u32,
}

/// Writes the answer to `req` for `refusal`, and counts it. `source` is where `req` came
/// from (for the Via's `received`/`rport`), `to_tag` the tag a dialog-less answer gets.
pub fn refusal_response<R: Refuse + ?Sized>(
    req: &Request,
    source: SocketAddr,
    to_tag: Option<&str>,
    by: Refuser<'_>,
    refusal: &R,
) -> (Status, Bytes) {
    refusal.count();
    let status = refusal.status();
    let mut w = MessageWriter::response_to(req, source, status, &refusal.reason(), to_tag);
    if let Some((code, text)) = refusal.warning() {
        // The Warning text is a quoted-string: a quote inside would end it early.
        let text = if text.contains('"') {
            Cow::Owned(text.replace('"', "'"))
        } else {
            text
        };
        w.header_fmt(
            HeaderName::Warning,
            format_args!("{code} {} \"{text}\"", by.agent),
        );
    }
    if refusal.retry_later() {
        w.header_fmt(HeaderName::RetryAfter, format_args!("{}", by.retry_after_s));
    }
    refusal.explain(&mut w);
    (status, w.finish_empty())
}

/// A request the focus cannot use: `400` with a reason phrase that says what is wrong (a
/// body part missing, a header malformed). Not counted: the client is told exactly what to
/// fix, and the parse-error counter already counts what the parser itself rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRequest(pub &'static str);

impl Refuse for BadRequest {
    fn status(&self) -> Status {
        Status::BAD_REQUEST
    }

    fn reason(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.0)
    }

    fn label(&self) -> &'static str {
        "bad_request"
    }

    fn count(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse, Framing, Message, ParseLimits};

    fn request() -> Request {
        let text = "INVITE sip:team@focus.example.com SIP/2.0\r\n\
            Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-r1\r\n\
            From: <sip:alice@example.com>;tag=a\r\nTo: <sip:team@focus.example.com>\r\n\
            Call-ID: r1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        match parse(
            Bytes::from(text),
            Framing::Datagram,
            &ParseLimits::default(),
        ) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    struct Quoted;

    impl Refuse for Quoted {
        fn status(&self) -> Status {
            Status::FORBIDDEN
        }
        fn warning(&self) -> Option<(WarnCode, Cow<'_, str>)> {
            Some((WarnCode::MISCELLANEOUS, Cow::Borrowed("Say \"please\"")))
        }
        fn explain(&self, w: &mut MessageWriter) {
            w.header(HeaderName::Allow, "INVITE");
        }
        fn label(&self) -> &'static str {
            "quoted"
        }
        fn count(&self) {}
    }

    fn answer(r: &dyn Refuse, retry: u32) -> (Status, String) {
        let by = Refuser {
            agent: &"focus.example.com",
            retry_after_s: retry,
        };
        let source = "192.0.2.9:5060".parse().unwrap();
        let (status, bytes) = refusal_response(&request(), source, Some("t1"), by, r);
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[test]
    fn the_responder_writes_status_warning_and_explaining_headers() {
        let (status, text) = answer(&Quoted, 7);
        assert_eq!(status, Status::FORBIDDEN);
        assert!(text.starts_with("SIP/2.0 403 Forbidden\r\n"), "{text}");
        // A quote in the text would end the quoted-string early.
        assert!(
            text.contains("\r\nWarning: 399 focus.example.com \"Say 'please'\"\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nAllow: INVITE\r\n"), "{text}");
        assert!(text.contains("To: <sip:team@focus.example.com>;tag=t1\r\n"));
        assert!(!text.contains("Retry-After"), "{text}");
    }

    #[test]
    fn a_bad_request_says_what_is_wrong_in_its_reason_phrase() {
        let (status, text) = answer(&BadRequest("Malformed Refer-To header"), 7);
        assert_eq!(status, 400);
        assert!(text.starts_with("SIP/2.0 400 Malformed Refer-To header\r\n"));
        assert!(!text.contains("Warning"), "{text}");
    }
}
