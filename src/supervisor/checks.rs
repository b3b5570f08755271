//! The UAS request checks of RFC 3261 §8.2 that come before any conference logic: method,
//! URI scheme, Require, Content-Type and Content-Encoding, Accept. Pure functions; each refusal
//! names its status and the headers that explain it.

use crate::sip::{
    media_type, HeaderName, MessageWriter, Method, Refuse, Request, Scheme, Status, ACCEPT, ALLOW,
    CONFERENCE_INFO, CONTROL, SUPPORTED,
};

/// A request refused before routing: something in it the focus does not support (a
/// method, a URI scheme, an extension, a body type or encoding, an answer type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub status: Status,
    /// Headers that explain the refusal (`Allow`, `Unsupported`, `Accept`...).
    pub headers: Vec<(HeaderName, String)>,
}

impl Unsupported {
    fn new(status: Status) -> Unsupported {
        Unsupported {
            status,
            headers: Vec::new(),
        }
    }

    fn with(mut self, name: HeaderName, value: impl Into<String>) -> Unsupported {
        self.headers.push((name, value.into()));
        self
    }
}

impl Refuse for Unsupported {
    fn status(&self) -> Status {
        self.status
    }

    fn explain(&self, w: &mut MessageWriter) {
        for (name, value) in &self.headers {
            w.header(*name, value);
        }
    }

    fn label(&self) -> &'static str {
        match self.status {
            Status::METHOD_NOT_ALLOWED | Status::NOT_IMPLEMENTED => "method",
            Status::NOT_FOUND | Status::UNSUPPORTED_URI_SCHEME => "uri_scheme",
            Status::BAD_EXTENSION => "extension",
            Status::NOT_ACCEPTABLE => "accept",
            _ => "media_type",
        }
    }

    /// Only unsupported methods are counted (`focus_sip_unsupported_methods_total`): the
    /// other checks answer a client's mistake the client sees in the answer's headers.
    fn count(&self) {
        if self.label() == "method" {
            metrics::counter!("focus_sip_unsupported_methods_total").increment(1);
        }
    }
}

/// Runs every check in RFC 3261 §8.2 order; `None` means the request may be routed.
pub fn check(req: &Request) -> Option<Unsupported> {
    check_method(&req.method)
        .or_else(|| check_scheme(req))
        .or_else(|| check_require(req))
        .or_else(|| check_body(req))
        .or_else(|| check_accept(req))
}

fn check_method(m: &Method) -> Option<Unsupported> {
    match m {
        Method::Invite
        | Method::Ack
        | Method::Bye
        | Method::Cancel
        | Method::Options
        | Method::Subscribe
        | Method::Refer
        | Method::Info
        | Method::Message
        | Method::Update => None,
        // RFC 3261 §8.2.1: a method we do not know at all is 501, a known one we do not
        // serve 405 with Allow.
        Method::Extension(_) => {
            Some(Unsupported::new(Status::NOT_IMPLEMENTED).with(HeaderName::Allow, ALLOW))
        }
        _ => Some(Unsupported::new(Status::METHOD_NOT_ALLOWED).with(HeaderName::Allow, ALLOW)),
    }
}

fn check_scheme(req: &Request) -> Option<Unsupported> {
    match req.uri.scheme {
        Scheme::Sip | Scheme::Sips => None,
        // tel is understood, but never names a conference.
        Scheme::Tel => Some(Unsupported::new(Status::NOT_FOUND)),
        Scheme::Other(_) => Some(Unsupported::new(Status::UNSUPPORTED_URI_SCHEME)),
    }
}

fn check_require(req: &Request) -> Option<Unsupported> {
    // A UAS honours Require and ignores Proxy-Require (RFC 3261 §8.2.2.3). ACK and CANCEL
    // are never refused for it.
    if matches!(req.method, Method::Ack | Method::Cancel) {
        return None;
    }
    let unsupported: Vec<&str> = req
        .headers
        .values(HeaderName::Require)
        .filter(|tag| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(tag)))
        .collect();
    if unsupported.is_empty() {
        return None;
    }
    Some(
        Unsupported::new(Status::BAD_EXTENSION)
            .with(HeaderName::Unsupported, unsupported.join(", ")),
    )
}

fn check_body(req: &Request) -> Option<Unsupported> {
    if let Some(enc) = req.headers.get(HeaderName::ContentEncoding) {
        if crate::sip::split_commas(enc).any(|e| !e.eq_ignore_ascii_case("identity")) {
            return Some(
                Unsupported::new(Status::UNSUPPORTED_MEDIA_TYPE)
                    .with(HeaderName::Accept, ACCEPT)
                    .with(HeaderName::AcceptEncoding, "identity"),
            );
        }
    }
    if req.body.is_empty() || matches!(req.method, Method::Ack | Method::Cancel | Method::Bye) {
        return None;
    }
    let ct = req.headers.get(HeaderName::ContentType).map(media_type);
    // A body without a type is malformed for us: we cannot know what it is.
    let Some(t) = ct else {
        return Some(
            Unsupported::new(Status::UNSUPPORTED_MEDIA_TYPE).with(HeaderName::Accept, ACCEPT),
        );
    };
    let accepted: &str = match req.method {
        // RFC 5366: the SDP beside a URI list of invitees.
        Method::Invite => "application/sdp, multipart/mixed",
        Method::Update => ACCEPT,
        // RFC 5368: a URI list of targets.
        Method::Refer => "multipart/mixed",
        Method::Info => CONTROL,
        // Group messages carry any content; the session decides.
        Method::Message => return None,
        _ => "",
    };
    if accepted.split(", ").any(|a| t.eq_ignore_ascii_case(a)) {
        None
    } else {
        let accept = if accepted.is_empty() {
            ACCEPT
        } else {
            accepted
        };
        Some(Unsupported::new(Status::UNSUPPORTED_MEDIA_TYPE).with(HeaderName::Accept, accept))
    }
}

fn accepts(req: &Request, wanted: &str) -> bool {
    let mut any = false;
    for v in req.headers.values(HeaderName::Accept) {
        any = true;
        let t = media_type(v);
        if t == "*/*" || t.eq_ignore_ascii_case(wanted) {
            return true;
        }
        if let (Some((a, "*")), Some((b, _))) = (t.split_once('/'), wanted.split_once('/')) {
            if a.eq_ignore_ascii_case(b) {
                return true;
            }
        }
    }
    // No Accept header means the default for the method (RFC 3261 §20.1).
    !any
}

fn check_accept(req: &Request) -> Option<Unsupported> {
    let wanted = match req.method {
        Method::Invite | Method::Update => "application/sdp",
        Method::Subscribe => CONFERENCE_INFO,
        _ => return None,
    };
    if req.headers.count(HeaderName::Accept) > 0 && !accepts(req, wanted) {
        return Some(Unsupported::new(Status::NOT_ACCEPTABLE).with(HeaderName::Accept, wanted));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse, Framing, Message, ParseLimits};
    use bytes::Bytes;

    fn req(method: &str, uri: &str, extra: &str, body: &str) -> Request {
        let text = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match parse(
            Bytes::from(text),
            Framing::Datagram,
            &ParseLimits::default(),
        ) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_refusal() {
        let sip = "sip:team@focus.example.com";
        assert_eq!(check(&req("INVITE", sip, "", "")), None);
        assert_eq!(check(&req("FOO", sip, "", "")).unwrap().status, 501);
        assert_eq!(check(&req("REFER", sip, "", "")), None);
        let r = check(&req("INFO", sip, "Content-Type: text/plain\r\n", "x")).unwrap();
        assert_eq!((r.status.code(), r.headers[0].1.as_str()), (415, CONTROL));
        let r = check(&req("REGISTER", sip, "", "")).unwrap();
        assert_eq!((r.status.code(), r.headers[0].1.as_str()), (405, ALLOW));
        assert_eq!(
            check(&req("OPTIONS", "soap.beep://x:1", "", ""))
                .unwrap()
                .status,
            416
        );
        assert_eq!(
            check(&req("OPTIONS", "tel:+123", "", "")).unwrap().status,
            404
        );
        let r = check(&req(
            "OPTIONS",
            sip,
            "Require: nothingSupportsThis, nothingSupportsThisEither\r\nProxy-Require: foo\r\n",
            "",
        ))
        .unwrap();
        assert_eq!(r.status, 420);
        assert_eq!(
            r.headers[0].1,
            "nothingSupportsThis, nothingSupportsThisEither"
        );
        let r = check(&req(
            "INVITE",
            sip,
            "Content-Type: application/unknownformat\r\n",
            "xyz",
        ))
        .unwrap();
        assert_eq!(
            (r.status.code(), r.headers[0].1.as_str()),
            (415, "application/sdp, multipart/mixed")
        );
        assert_eq!(
            check(&req(
                "INVITE",
                sip,
                "Content-Type: application/sdp\r\n",
                "v=0"
            )),
            None
        );
        assert_eq!(
            check(&req("INVITE", sip, "Accept: text/nobodyKnowsThis\r\n", ""))
                .unwrap()
                .status,
            406
        );
        assert_eq!(
            check(&req("INVITE", sip, "Accept: application/*\r\n", "")),
            None
        );
        assert_eq!(
            check(&req(
                "SUBSCRIBE",
                sip,
                "Accept: application/conference-info+xml\r\n",
                ""
            )),
            None
        );
        assert_eq!(
            check(&req(
                "SUBSCRIBE",
                sip,
                "Accept: application/pidf+xml\r\n",
                ""
            ))
            .unwrap()
            .status,
            406
        );
        assert_eq!(
            check(&req(
                "INVITE",
                sip,
                "Content-Encoding: gzip\r\nContent-Type: application/sdp\r\n",
                "v=0"
            ))
            .unwrap()
            .status,
            415
        );
        // ACK and CANCEL are never refused for Require.
        assert_eq!(check(&req("ACK", sip, "Require: foo\r\n", "")), None);
    }
}
