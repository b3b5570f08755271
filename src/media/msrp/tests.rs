//! Tests of the MSRP codec: real-world messages, every parse fault, writing, chunking,
//! and properties (`tests/prop.rs`).

mod prop;

use super::*;
use bytes::{Bytes, BytesMut};

fn limits() -> ParseLimits {
    ParseLimits::default()
}

fn parse_str(s: &str) -> Result<Message, ParseError> {
    parse(Bytes::copy_from_slice(s.as_bytes()), &limits())
}

fn request(s: &str) -> Request {
    match parse_str(s) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn response(s: &str) -> Response {
    match parse_str(s) {
        Ok(Message::Response(r)) => r,
        other => panic!("not a response: {other:?}"),
    }
}

fn uri(s: &str) -> MsrpUri {
    MsrpUri::parse(s).unwrap()
}

/// RFC 4975 §4, Alice to Bob (the RFC declares 25 bytes for this 23-byte body).
const RFC_SEND: &str = "MSRP a786hjs2 SEND\r\n\
    To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n\
    From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
    Message-ID: 87652491\r\n\
    Byte-Range: 1-25/25\r\n\
    Content-Type: text/plain\r\n\
    \r\n\
    Hey Bob, are you there?\r\n\
    -------a786hjs2$\r\n";

/// RFC 4975 §4, Bob's answer.
const RFC_OK: &str = "MSRP a786hjs2 200 OK\r\n\
    To-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
    From-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n\
    -------a786hjs2$\r\n";

#[test]
fn rfc_4975_send_and_its_200() {
    let send = request(RFC_SEND);
    assert_eq!(send.transaction_id, "a786hjs2");
    assert_eq!(send.method, Method::Send);
    assert_eq!(
        send.to_path,
        vec![uri("msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp")]
    );
    assert_eq!(
        send.from_path,
        vec![uri("msrp://atlanta.example.com:7654/jshA7weztas;tcp")]
    );
    assert_eq!(send.message_id.as_deref(), Some("87652491"));
    assert_eq!(send.byte_range, Some(ByteRange::whole(25)));
    assert_eq!(send.content_type.as_deref(), Some("text/plain"));
    assert_eq!(&send.body[..], b"Hey Bob, are you there?");
    assert_eq!(send.continuation, Continuation::Complete);
    assert!(!send.success_report());
    assert_eq!(send.failure_report(), FailureReport::Yes);
    assert!(send.headers.is_empty());

    let ok = Response::for_request(&send, 200, None);
    assert_eq!(ok, response(RFC_OK));
    assert_eq!(ok.to_bytes().unwrap(), RFC_OK.as_bytes());

    // The writer reproduces the RFC text byte for byte.
    assert_eq!(send.to_bytes().unwrap(), RFC_SEND.as_bytes());
}

#[test]
fn body_is_a_slice_of_the_frame() {
    let frame = Bytes::copy_from_slice(RFC_SEND.as_bytes());
    let Ok(Message::Request(send)) = parse(frame.clone(), &limits()) else {
        panic!()
    };
    let range = frame.as_ptr_range();
    assert!(range.contains(&send.body.as_ptr()));
}

/// RFC 4975 §7.1.1-style chunked message with both reports requested, then its REPORT.
#[test]
fn chunked_send_and_success_report() {
    let first = request(
        "MSRP dkei38sd SEND\r\n\
         To-Path: msrp://alice.example.com:7777/iau39soe2843z;tcp\r\n\
         From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
         Message-ID: 12339sdqwer\r\n\
         Byte-Range: 1-16/26\r\n\
         Success-Report: yes\r\n\
         Failure-Report: no\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         abcdefghijklmnop\r\n\
         -------dkei38sd+\r\n",
    );
    assert_eq!(first.continuation, Continuation::More);
    assert!(first.success_report());
    assert_eq!(first.failure_report(), FailureReport::No);
    assert!(!first.should_respond(200) && !first.should_respond(400));
    let second = request(
        "MSRP dkei38ia SEND\r\n\
         To-Path: msrp://alice.example.com:7777/iau39soe2843z;tcp\r\n\
         From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
         Message-ID: 12339sdqwer\r\n\
         Byte-Range: 17-26/26\r\n\
         Success-Report: yes\r\n\
         Failure-Report: no\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         qrstuvwxyz\r\n\
         -------dkei38ia$\r\n",
    );
    let mut r = Reassembler::new(ReassemblyLimits::default());
    assert_eq!(r.accept(first.clone()), Ok(Reassembly::Partial));
    assert_eq!(r.received("12339sdqwer"), Some(range(1, 16, Some(26))));
    let Ok(Reassembly::Complete(whole)) = r.accept(second) else {
        panic!()
    };
    assert_eq!(&whole.body[..], b"abcdefghijklmnopqrstuvwxyz");
    assert!(r.is_empty());

    let mut report = Request::report(&whole, Status::ok(), whole.byte_range());
    report.transaction_id = "dkei38sd".into();
    let text = "MSRP dkei38sd REPORT\r\n\
        To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
        From-Path: msrp://alice.example.com:7777/iau39soe2843z;tcp\r\n\
        Message-ID: 12339sdqwer\r\n\
        Byte-Range: 1-26/26\r\n\
        Status: 000 200 OK\r\n\
        -------dkei38sd$\r\n";
    assert_eq!(report.to_bytes().unwrap(), text.as_bytes());
    let parsed = request(text);
    assert_eq!(parsed, report);
    assert!(!parsed.should_respond(200), "REPORTs are never answered");
}

fn range(start: u64, end: u64, total: Option<u64>) -> ByteRange {
    ByteRange {
        start,
        end: Some(end),
        total,
    }
}

/// A CPM/RCS group-chat message as clients send it to the Controlling Function.
const RCS_GROUP_SEND: &str = "MSRP Ps4vh5MdW1LTCL7s SEND\r\n\
    To-Path: msrp://10.0.0.5:20000/conf-s3ss10n;tcp\r\n\
    From-Path: msrp://[2001:db8:1::23]:41236/4Jh7Kn2Qz8;tcp\r\n\
    Message-ID: 5jrXqQmLQe6wNRgHh\r\n\
    Byte-Range: 1-323/323\r\n\
    Success-Report: no\r\n\
    Failure-Report: yes\r\n\
    Content-Type: message/cpim\r\n\
    \r\n\
    From: <sip:anonymous@anonymous.invalid>\r\n\
    To: <sip:anonymous@anonymous.invalid>\r\n\
    NS: imdn <urn:ietf:params:imdn>\r\n\
    imdn.Message-ID: Xu8dbqWSPkKLYaAKfQ2C\r\n\
    DateTime: 2026-11-26T10:04:05.123Z\r\n\
    imdn.Disposition-Notification: positive-delivery, display\r\n\
    \r\n\
    Content-Type: text/plain; charset=utf-8\r\n\
    Content-Length: 11\r\n\
    \r\n\
    Hello group\r\n\
    -------Ps4vh5MdW1LTCL7s$\r\n";

#[test]
fn rcs_group_chat_send_with_cpim() {
    let send = request(RCS_GROUP_SEND);
    assert_eq!(send.content_type.as_deref(), Some("message/cpim"));
    assert_eq!(send.body.len(), 323);
    assert_eq!(send.byte_range, Some(ByteRange::whole(323)));
    assert_eq!(send.from_path[0].host.to_string(), "[2001:db8:1::23]");
    assert_eq!(send.to_bytes().unwrap(), RCS_GROUP_SEND.as_bytes());
    let cpim = crate::media::cpim::Cpim::parse(send.body.clone(), &Default::default()).unwrap();
    assert_eq!(&cpim.body[..], b"Hello group");
    assert_eq!(cpim.imdn_message_id(), Some("Xu8dbqWSPkKLYaAKfQ2C"));
}

#[test]
fn responses_200_403_413_481() {
    let send = request(RCS_GROUP_SEND);
    for (code, text) in [
        (200, "OK"),
        (403, "Forbidden"),
        (413, "Stop Sending Message"),
        (481, "Session Does Not Exist"),
    ] {
        let resp = Response::for_request(&send, code, None);
        assert_eq!(resp.transaction_id, send.transaction_id);
        assert_eq!(resp.to_path, send.from_path);
        assert_eq!(resp.from_path, send.to_path);
        let bytes = resp.to_bytes().unwrap();
        let expected = format!(
            "MSRP Ps4vh5MdW1LTCL7s {code} {text}\r\n\
             To-Path: msrp://[2001:db8:1::23]:41236/4Jh7Kn2Qz8;tcp\r\n\
             From-Path: msrp://10.0.0.5:20000/conf-s3ss10n;tcp\r\n\
             -------Ps4vh5MdW1LTCL7s$\r\n"
        );
        assert_eq!(bytes, expected.as_bytes());
        let back = response(&expected);
        assert_eq!(back, resp);
        assert_eq!(back.is_success(), code == 200);
    }
    let custom = Response::for_request(&send, 403, Some("Not a member"));
    assert_eq!(custom.comment.as_deref(), Some("Not a member"));
    // A response without comment.
    let bare = response(
        "MSRP abcd 481\r\nTo-Path: msrp://h/a;tcp\r\nFrom-Path: msrp://h/b;tcp\r\n-------abcd$\r\n",
    );
    assert_eq!(bare.code, 481);
    assert_eq!(bare.comment, None);
}

#[test]
fn responses_follow_the_path_rules_through_relays() {
    // Received through a relay: the relay put itself first in From-Path (RFC 4976).
    let text = "MSRP r3l4yd SEND\r\n\
        To-Path: msrp://focus.example.com:2855/s1;tcp\r\n\
        From-Path: msrps://relay.example.net:2855/r9;tcp msrps://alice.example.com:1234/a1;tcp\r\n\
        Message-ID: m00001\r\n\
        -------r3l4yd$\r\n";
    let send = request(text);
    assert_eq!(send.from_path.len(), 2);
    let ok = Response::for_request(&send, 200, None);
    assert_eq!(
        ok.to_path,
        vec![uri("msrps://relay.example.net:2855/r9;tcp")]
    );
    let report = Request::report(&send, Status::new(413), ByteRange::whole(0));
    assert_eq!(report.to_path, send.from_path);
    assert_eq!(report.from_path, send.to_path);
    assert_eq!(
        report.status.as_ref().unwrap().to_string(),
        "000 413 Stop Sending Message"
    );
    // Other methods get the full path back.
    let mut other = send.clone();
    other.method = Method::Other("AUTH".into());
    assert_eq!(
        Response::for_request(&other, 501, None).to_path,
        send.from_path
    );
}

/// RFC 7701 §5: NICKNAME with Use-Nickname, answered 200 or 425.
#[test]
fn nickname() {
    let text = "MSRP dd93kswow NICKNAME\r\n\
        To-Path: msrp://switch.example.org:12763/jofofo3;tcp\r\n\
        From-Path: msrp://alice.example.com:7654/iau39soe2843z;tcp\r\n\
        Use-Nickname: \"Alice the \\\"Great\\\"\"\r\n\
        -------dd93kswow$\r\n";
    let req = request(text);
    assert_eq!(req.method, Method::Nickname);
    assert_eq!(req.use_nickname.as_deref(), Some("Alice the \"Great\""));
    assert_eq!(req.to_bytes().unwrap(), text.as_bytes());
    let taken = Response::for_request(&req, status::NICKNAME_IN_USE, None);
    assert_eq!(taken.to_path, req.from_path);
    let bytes = taken.to_bytes().unwrap();
    assert!(bytes.starts_with(b"MSRP dd93kswow 425 Nickname Reserved Or Already In Use\r\n"));

    // Missing or malformed nickname: 424.
    for value in [None, Some("Alice"), Some("\"\""), Some("\"a\\x\"")] {
        let mut t = String::from(
            "MSRP dd93kswow NICKNAME\r\nTo-Path: msrp://s/j;tcp\r\nFrom-Path: msrp://a/i;tcp\r\n",
        );
        if let Some(v) = value {
            t.push_str(&format!("Use-Nickname: {v}\r\n"));
        }
        t.push_str("-------dd93kswow$\r\n");
        let Err(ParseError::Reject(r)) = parse_str(&t) else {
            panic!("{t}")
        };
        assert_eq!(r.fault.status(), 424, "{value:?}");
        assert_eq!(r.response().code, 424);
    }
}

#[test]
fn empty_send_binds_the_connection() {
    let send = Request::send(
        vec![uri("msrp://bob.example.com:8888/9di4eae923wzd;tcp")],
        vec![uri("msrp://alice.example.com:7777/iau39soe2843z;tcp")],
        "text/plain",
        Bytes::new(),
    );
    let bytes = send.to_bytes().unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(text.contains("Byte-Range: 1-0/0\r\n"));
    assert!(!text.contains("Content-Type"));
    assert!(text.ends_with(&format!(
        "Byte-Range: 1-0/0\r\n-------{}$\r\n",
        send.transaction_id
    )));
    assert_eq!(request(text), send);
}

#[test]
fn unknown_headers_are_kept_in_order() {
    let text = "MSRP 4a5b6c AUTH\r\n\
        To-Path: msrps://relay.example.net:2855;tcp\r\n\
        From-Path: msrps://alice.example.com:9892/98cjs;tcp\r\n\
        Authorization: Digest username=\"alice\"\r\n\
        Expires: 900\r\n\
        X-b: 1\r\n\
        Content-ID: <c1@x>\r\n\
        Content-Type: text/plain\r\n\
        \r\n\
        x\r\n\
        -------4a5b6c$\r\n";
    let req = request(text);
    assert_eq!(req.method, Method::Other("AUTH".into()));
    let names: Vec<&str> = req.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["Authorization", "Expires", "X-b", "Content-ID"]);
    assert_eq!(req.header("expires"), Some("900"));
    assert_eq!(req.to_bytes().unwrap(), text.as_bytes());
}

#[test]
fn lenient_where_it_costs_nothing() {
    // Lower-case header names, extra spaces, several spaces between path URIs, an empty
    // body written as a blank line directly followed by the end-line.
    let req = request(
        "MSRP abcd SEND\r\n\
         to-path:   msrp://h/a;tcp  \r\n\
         FROM-PATH: msrp://r/x;tcp   msrp://h/b;tcp\r\n\
         message-id: m123\r\n\
         content-type: text/plain\r\n\
         \r\n\
         -------abcd$\r\n",
    );
    assert_eq!(req.from_path.len(), 2);
    assert!(req.body.is_empty());
    assert_eq!(req.content_type.as_deref(), Some("text/plain"));
}

/// What a rejected request tells the caller.
fn rejected(text: &str) -> Rejected {
    match parse_str(text) {
        Err(ParseError::Reject(r)) => *r,
        other => panic!("not rejected: {other:?}\n{text}"),
    }
}

fn closed(text: &str) -> Fault {
    match parse_str(text) {
        Err(ParseError::Close(f)) => f,
        other => panic!("not closed: {other:?}\n{text}"),
    }
}

const PATHS: &str =
    "To-Path: msrp://s.example.com:1/s;tcp\r\nFrom-Path: msrp://a.example.com:2/a;tcp\r\n";

fn send_with(headers: &str, body: Option<&str>) -> String {
    let mut t = format!("MSRP t1d0 SEND\r\n{PATHS}{headers}");
    if let Some(b) = body {
        t.push_str(&format!("\r\n{b}\r\n"));
    }
    t.push_str("-------t1d0$\r\n");
    t
}

#[test]
fn every_fault_that_can_be_answered() {
    let cases: Vec<(String, Fault)> = vec![
        (send_with("", None), Fault::Missing(HeaderName::MessageId)),
        (
            send_with("Message-ID: m1\r\n", None),
            Fault::Malformed(HeaderName::MessageId),
        ),
        (
            send_with("Message-ID: m123\r\nMessage-ID: m124\r\n", None),
            Fault::Multiple(HeaderName::MessageId),
        ),
        (
            send_with("Message-ID: m123\r\nByte-Range: 0-1/1\r\n", None),
            Fault::Malformed(HeaderName::ByteRange),
        ),
        (
            send_with("Message-ID: m123\r\nSuccess-Report: maybe\r\n", None),
            Fault::Malformed(HeaderName::SuccessReport),
        ),
        (
            send_with("Message-ID: m123\r\nFailure-Report: always\r\n", None),
            Fault::Malformed(HeaderName::FailureReport),
        ),
        (
            send_with("Message-ID: m123\r\nStatus: 200 OK\r\n", None),
            Fault::Malformed(HeaderName::Status),
        ),
        (
            send_with("Message-ID: m123\r\nContent-Type: text\r\n", Some("x")),
            Fault::Malformed(HeaderName::ContentType),
        ),
        (
            send_with("Message-ID: m123\r\n", Some("body")),
            Fault::MissingContentType,
        ),
        (
            send_with("Message-ID: m123\r\nTo-Path: msrp://x/y;tcp\r\n", None),
            Fault::Multiple(HeaderName::ToPath),
        ),
        (
            send_with("Message-ID: m123\r\nno colon\r\n", None),
            Fault::HeaderLine,
        ),
        (
            send_with("Message-ID: m123\r\nBad Name: x\r\n", None),
            Fault::HeaderLine,
        ),
        (
            send_with("Message-ID: m123\r\nX: a\x01b\r\n", None),
            Fault::HeaderLine,
        ),
        (
            send_with("Message-ID: m123\r\nX: a\0b\r\n", None),
            Fault::HeaderLine,
        ),
        (
            format!("MSRP t1d0 REPORT\r\n{PATHS}Message-ID: m123\r\n-------t1d0$\r\n"),
            Fault::Missing(HeaderName::Status),
        ),
        (
            format!("MSRP t1d0 REPORT\r\n{PATHS}Status: 000 200 OK\r\n-------t1d0$\r\n"),
            Fault::Missing(HeaderName::MessageId),
        ),
        (
            format!("MSRP t1d0 send\r\n{PATHS}-------t1d0$\r\n"),
            Fault::Method,
        ),
        (
            "MSRP t1d0 SEND\r\nTo-Path: msrp://s/s;tcp\r\nX: y\r\nFrom-Path: msrp://a/a;tcp\r\nMessage-ID: m123\r\n-------t1d0$\r\n".into(),
            Fault::PathOrder,
        ),
        (
            "MSRP t1d0 SEND\r\nFrom-Path: msrp://a/a;tcp\r\nTo-Path: msrp://s/s;tcp\r\nMessage-ID: m123\r\n-------t1d0$\r\n".into(),
            Fault::PathOrder,
        ),
    ];
    for (text, fault) in cases {
        let r = rejected(&text);
        assert_eq!(r.fault, fault, "{text}");
        assert_eq!(r.transaction_id, "t1d0");
        let resp = r.response();
        assert_eq!(resp.code, 400);
        assert_eq!(resp.comment.as_deref(), Some(fault.to_string().as_str()));
        assert!(resp.to_bytes().is_ok());
    }
    // Non-UTF-8 header bytes.
    let mut bytes = format!("MSRP t1d0 SEND\r\n{PATHS}Message-ID: m123\r\nX: ").into_bytes();
    bytes.push(0xff);
    bytes.extend_from_slice(b"\r\n-------t1d0$\r\n");
    let Err(ParseError::Reject(r)) = parse(Bytes::from(bytes), &limits()) else {
        panic!()
    };
    assert_eq!(r.fault, Fault::NotUtf8);

    // Too many headers.
    let many = "X: y\r\n".repeat(70);
    let r = rejected(&send_with(&format!("Message-ID: m123\r\n{many}"), None));
    assert_eq!(r.fault, Fault::TooManyHeaders);
    // Path too long.
    let long = vec!["msrp://h/a;tcp"; 17].join(" ");
    let f = closed(&format!(
        "MSRP t1d0 SEND\r\nTo-Path: {long}\r\nFrom-Path: msrp://a/a;tcp\r\n-------t1d0$\r\n"
    ));
    assert_eq!(f, Fault::PathTooLong);
    // A REPORT is rejected but must not be answered; Failure-Report: no likewise.
    let r = rejected(&format!("MSRP t1d0 REPORT\r\n{PATHS}-------t1d0$\r\n"));
    assert!(!r.should_respond());
    let r = rejected(&send_with("Failure-Report: no\r\n", None));
    assert!(!r.should_respond());
}

#[test]
fn every_fault_that_closes() {
    let cases: Vec<(String, Fault)> = vec![
        ("".into(), Fault::StartLine),
        ("MSRP t1d0 SEND".into(), Fault::StartLine),
        ("MSRP t1d0\r\n-------t1d0$\r\n".into(), Fault::StartLine),
        ("MSRP t1d SEND\r\n-------t1d$\r\n".into(), Fault::StartLine),
        (
            "msrp t1d0 SEND\r\n-------t1d0$\r\n".into(),
            Fault::StartLine,
        ),
        ("MSRP t1d0 SEND\r\n".into(), Fault::EndLine),
        (
            format!("MSRP t1d0 SEND\r\n{PATHS}Message-ID: m123\r\n-------t1d1$\r\n"),
            Fault::EndLine,
        ),
        (
            format!("MSRP t1d0 SEND\r\n{PATHS}Message-ID: m123\r\n-------t1d0!\r\n"),
            Fault::EndLine,
        ),
        (
            format!("MSRP t1d0 SEND\r\n{PATHS}Message-ID: m123\r\n------t1d0$\r\n"),
            Fault::EndLine,
        ),
        (
            format!("MSRP t1d0 SEND\r\n{PATHS}Message-ID: m123-------t1d0$\r\n"),
            Fault::EndLine,
        ),
        (
            "MSRP t1d0 SEND\r\nFrom-Path: msrp://a/a;tcp\r\nMessage-ID: m123\r\n-------t1d0$\r\n"
                .into(),
            Fault::PathOrder,
        ),
        (
            "MSRP t1d0 SEND\r\nTo-Path: msrp://a/a;tcp\r\nMessage-ID: m123\r\n-------t1d0$\r\n"
                .into(),
            Fault::PathOrder,
        ),
        (
            "MSRP t1d0 SEND\r\nTo-Path: msrp://a/a;tcp\r\n-------t1d0$\r\n".into(),
            Fault::Missing(HeaderName::FromPath),
        ),
        (
            "MSRP t1d0 SEND\r\n-------t1d0$\r\n".into(),
            Fault::Missing(HeaderName::ToPath),
        ),
        (
            "MSRP t1d0 SEND\r\nTo-Path: sip:a@b\r\nFrom-Path: msrp://a/a;tcp\r\n-------t1d0$\r\n"
                .into(),
            Fault::Malformed(HeaderName::ToPath),
        ),
        (
            "MSRP t1d0 SEND\r\nTo-Path: msrp://a/a;tcp\r\nFrom-Path: \r\n-------t1d0$\r\n".into(),
            Fault::Malformed(HeaderName::FromPath),
        ),
        // Responses are never answered.
        (
            format!("MSRP t1d0 20 OK\r\n{PATHS}-------t1d0$\r\n"),
            Fault::StatusCode,
        ),
        (
            format!("MSRP t1d0 2000 OK\r\n{PATHS}-------t1d0$\r\n"),
            Fault::StatusCode,
        ),
        (
            format!("MSRP t1d0 200 O\u{1}K\r\n{PATHS}-------t1d0$\r\n"),
            Fault::StatusCode,
        ),
        (
            format!(
                "MSRP t1d0 200 OK\r\n{PATHS}Content-Type: text/plain\r\n\r\nx\r\n-------t1d0$\r\n"
            ),
            Fault::ResponseBody,
        ),
        (
            "MSRP t1d0 200 OK\r\nFrom-Path: msrp://a/a;tcp\r\n-------t1d0$\r\n".into(),
            Fault::PathOrder,
        ),
        (
            "MSRP t1d0 200 OK\r\n-------t1d0$\r\n".into(),
            Fault::Missing(HeaderName::ToPath),
        ),
        (
            format!("MSRP t1d0 200 OK\r\n{PATHS}X\r\n-------t1d0$\r\n"),
            Fault::HeaderLine,
        ),
    ];
    for (text, fault) in cases {
        assert_eq!(closed(&text), fault, "{text:?}");
    }
}

#[test]
fn framer_then_parser_byte_by_byte() {
    let stream = format!("{RFC_SEND}{RFC_OK}{RCS_GROUP_SEND}");
    let mut framer = Framer::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in stream.bytes() {
        buf.extend_from_slice(&[b]);
        while let Some(frame) = framer.decode(&mut buf).unwrap() {
            got.push(frame.parse(&limits()).unwrap());
        }
    }
    assert_eq!(
        got,
        vec![
            parse_str(RFC_SEND).unwrap(),
            parse_str(RFC_OK).unwrap(),
            parse_str(RCS_GROUP_SEND).unwrap()
        ]
    );
    assert_eq!(got[2].transaction_id(), "Ps4vh5MdW1LTCL7s");
}

#[test]
fn oversized_chunk_is_answered_413() {
    let mut framer = Framer::new(300);
    let mut buf = BytesMut::from(format!("{RCS_GROUP_SEND}{RFC_OK}").as_bytes());
    let Err(FrameError::Oversized { head }) = framer.decode(&mut buf) else {
        panic!()
    };
    let Ok(Message::Request(req)) = parse_head(head, &limits()) else {
        panic!()
    };
    assert_eq!(req.message_id.as_deref(), Some("5jrXqQmLQe6wNRgHh"));
    assert_eq!(req.content_type.as_deref(), Some("message/cpim"));
    assert_eq!(req.continuation, Continuation::More);
    assert!(req.should_respond(413));
    let resp = Response::for_request(&req, status::STOP_SENDING, None);
    assert_eq!(resp.code, 413);
    assert_eq!(resp.to_path, req.from_path);
    // The connection goes on with the next message.
    let next = framer.decode(&mut buf).unwrap().unwrap();
    assert_eq!(next.parse(&limits()), parse_str(RFC_OK));
    // A head that is not MSRP.
    assert_eq!(
        parse_head(Bytes::from_static(b"GET / HTTP/1.1\r\n"), &limits()),
        Err(ParseError::Close(Fault::StartLine))
    );
}

#[test]
fn one_megabyte_message_in_chunks() {
    let body: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let body = Bytes::from(body);
    let message = Request::send(
        vec![uri("msrp://focus.example.com:2855/s1;tcp")],
        vec![uri("msrp://alice.example.com:1234/a1;tcp")],
        "application/octet-stream",
        body.clone(),
    );
    let parts: Vec<Request> = chunks(&message, 2048).collect();
    assert_eq!(parts.len(), 512);
    assert_eq!(chunks(&message, 2048).len(), 512);
    assert!(parts[..511]
        .iter()
        .all(|c| c.continuation == Continuation::More));
    assert_eq!(parts[511].continuation, Continuation::Complete);
    assert_eq!(parts[1].byte_range, Some(range(2049, 4096, Some(1048576))));
    // Chunk bodies are slices of the original body.
    assert_eq!(parts[3].body.as_ptr(), body[3 * 2048..].as_ptr());

    // Over the wire: one stream, framed, parsed, reassembled.
    let mut wire = BytesMut::new();
    for c in &parts {
        c.encode(&mut wire).unwrap();
    }
    let mut framer = Framer::new(4096);
    let mut reassembler = Reassembler::new(ReassemblyLimits::default());
    let mut done = None;
    while let Some(frame) = framer.decode(&mut wire).unwrap() {
        let Ok(Message::Request(chunk)) = frame.parse(&limits()) else {
            panic!()
        };
        if let Reassembly::Complete(m) = reassembler.accept(chunk).unwrap() {
            done = Some(m);
        }
    }
    let done = done.unwrap();
    assert_eq!(done.body, body);
    assert_eq!(done.message_id, message.message_id);
    assert_eq!(done.byte_range, Some(ByteRange::whole(1048576)));
    assert_eq!(done.content_type, message.content_type);
}

#[test]
fn reassembly_out_of_order_abort_and_limits() {
    let base = Request::send(
        vec![uri("msrp://f/s;tcp")],
        vec![uri("msrp://a/a;tcp")],
        "text/plain",
        Bytes::from_static(b"0123456789"),
    );
    let parts: Vec<Request> = chunks(&base, 3).collect();
    assert_eq!(parts.len(), 4);

    // Reverse order.
    let mut r = Reassembler::new(ReassemblyLimits::default());
    for p in parts[1..].iter().rev() {
        assert_eq!(r.accept(p.clone()), Ok(Reassembly::Partial));
    }
    assert_eq!(
        r.received(base.message_id.as_deref().unwrap()),
        Some(range(4, 10, Some(10)))
    );
    let Ok(Reassembly::Complete(m)) = r.accept(parts[0].clone()) else {
        panic!()
    };
    assert_eq!(m.body, base.body);

    // A resent overlapping range (the sender restarted after an interruption).
    let mut r = Reassembler::new(ReassemblyLimits::default());
    let mut interrupted = parts[0].clone();
    interrupted.body = Bytes::from_static(b"01234");
    interrupted.byte_range = Some(ByteRange {
        start: 1,
        end: None,
        total: Some(10),
    });
    assert_eq!(r.accept(interrupted), Ok(Reassembly::Partial));
    let mut rest = parts[3].clone();
    rest.body = Bytes::from_static(b"3456789");
    rest.byte_range = Some(range(4, 10, Some(10)));
    let Ok(Reassembly::Complete(m)) = r.accept(rest) else {
        panic!()
    };
    assert_eq!(m.body, base.body);

    // Aborted: what arrived is reported.
    let mut r = Reassembler::new(ReassemblyLimits::default());
    r.accept(parts[0].clone()).unwrap();
    let mut abort = parts[1].clone();
    abort.continuation = Continuation::Aborted;
    assert_eq!(
        r.accept(abort),
        Ok(Reassembly::Aborted {
            received: Some(range(1, 6, Some(10)))
        })
    );
    assert!(r.is_empty());
    let mut abort = parts[0].clone();
    abort.continuation = Continuation::Aborted;
    assert_eq!(
        r.accept(abort),
        Ok(Reassembly::Aborted {
            received: Some(range(1, 3, Some(10)))
        })
    );

    // Too large: declared, and by bytes seen.
    let small = ReassemblyLimits {
        max_message: 8,
        max_chunks: 3,
        max_partial: 1,
    };
    let mut r = Reassembler::new(small);
    assert_eq!(r.accept(parts[0].clone()), Err(ReassemblyError::TooLarge));
    assert_eq!(ReassemblyError::TooLarge.status(), 413);
    let mut unknown_total = parts[1].clone();
    unknown_total.byte_range = Some(range(4, 6, None));
    assert_eq!(r.accept(unknown_total.clone()), Ok(Reassembly::Partial));
    let mut beyond = unknown_total.clone();
    beyond.byte_range = Some(ByteRange {
        start: 8,
        end: None,
        total: None,
    });
    assert_eq!(r.accept(beyond), Err(ReassemblyError::TooLarge));
    assert!(r.is_empty(), "state dropped on error");

    // Too many messages in progress, too many chunks.
    let mut r = Reassembler::new(ReassemblyLimits {
        max_message: 100,
        max_chunks: 3,
        max_partial: 1,
    });
    assert_eq!(r.accept(parts[1].clone()), Ok(Reassembly::Partial));
    let mut other = parts[1].clone();
    other.message_id = Some("otherm".into());
    assert_eq!(r.accept(other), Err(ReassemblyError::TooManyMessages));
    let many: Vec<Request> = chunks(&base, 1).collect();
    let mut r = Reassembler::new(ReassemblyLimits {
        max_message: 100,
        max_chunks: 3,
        max_partial: 1,
    });
    for c in &many[1..4] {
        assert_eq!(r.accept(c.clone()), Ok(Reassembly::Partial));
    }
    assert_eq!(
        r.accept(many[4].clone()),
        Err(ReassemblyError::TooManyChunks)
    );

    // Inconsistent totals and last bytes; no Message-ID.
    let mut r = Reassembler::new(ReassemblyLimits::default());
    r.accept(parts[1].clone()).unwrap();
    let mut bad = parts[2].clone();
    bad.byte_range = Some(range(7, 9, Some(11)));
    assert_eq!(r.accept(bad), Err(ReassemblyError::Inconsistent));
    let mut r = Reassembler::new(ReassemblyLimits::default());
    r.accept(parts[3].clone()).unwrap();
    let mut past_end = parts[2].clone();
    past_end.byte_range = Some(range(11, 13, None));
    past_end.body = Bytes::from_static(b"abc");
    assert_eq!(r.accept(past_end), Err(ReassemblyError::Inconsistent));
    let mut over = parts[0].clone();
    over.byte_range = Some(range(9, 11, Some(10)));
    assert_eq!(r.accept(over), Err(ReassemblyError::Inconsistent));
    let mut anon = parts[0].clone();
    anon.message_id = None;
    assert_eq!(r.accept(anon), Err(ReassemblyError::MissingMessageId));
    assert_eq!(ReassemblyError::MissingMessageId.status(), 400);
    // remove() forgets a message.
    let mut r = Reassembler::new(ReassemblyLimits::default());
    r.accept(parts[1].clone()).unwrap();
    assert_eq!(r.len(), 1);
    assert!(r.remove(base.message_id.as_deref().unwrap()));
    assert!(!r.remove("nothing"));
}

#[test]
fn empty_chunks() {
    let base = Request::send(
        vec![uri("msrp://f/s;tcp")],
        vec![uri("msrp://a/a;tcp")],
        "text/plain",
        Bytes::new(),
    );
    let parts: Vec<Request> = chunks(&base, 0).collect();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].byte_range, Some(ByteRange::whole(0)));
    let mut r = Reassembler::new(ReassemblyLimits::default());
    assert!(matches!(r.accept(parts[0].clone()), Ok(Reassembly::Complete(m)) if m.body.is_empty()));
    // A message that ends with an empty `$` chunk.
    let full = Request::send(
        vec![uri("msrp://f/s;tcp")],
        vec![uri("msrp://a/a;tcp")],
        "text/plain",
        Bytes::from_static(b"abc"),
    );
    let mut first = full.clone();
    first.continuation = Continuation::More;
    first.byte_range = Some(range(1, 3, None));
    assert_eq!(r.accept(first), Ok(Reassembly::Partial));
    let mut last = full.clone();
    last.body = Bytes::new();
    last.byte_range = Some(range(4, 3, Some(3)));
    let Ok(Reassembly::Complete(m)) = r.accept(last) else {
        panic!()
    };
    assert_eq!(&m.body[..], b"abc");
}

#[test]
fn writer_refuses_what_would_not_parse_back() {
    let ok = Request::send(
        vec![uri("msrp://f/s;tcp")],
        vec![uri("msrp://a/a;tcp")],
        "text/plain",
        Bytes::from_static(b"hi"),
    );
    assert!(ok.to_bytes().is_ok());
    let mut out = BytesMut::new();
    let cases: Vec<(Request, WriteError)> = vec![
        (
            Request {
                transaction_id: "ab".into(),
                ..ok.clone()
            },
            WriteError::TransactionId,
        ),
        (
            Request {
                message_id: Some("a b c d".into()),
                ..ok.clone()
            },
            WriteError::MessageId,
        ),
        (
            Request {
                to_path: vec![],
                ..ok.clone()
            },
            WriteError::EmptyPath,
        ),
        (
            Request {
                content_type: None,
                ..ok.clone()
            },
            WriteError::MissingContentType,
        ),
        (
            Request {
                content_type: Some("text/plain\r\nX: y".into()),
                ..ok.clone()
            },
            WriteError::HeaderValue("Content-Type".into()),
        ),
        (
            Request {
                body: Bytes::from(format!("a\r\n-------{}$\r\n", ok.transaction_id)),
                ..ok.clone()
            },
            WriteError::EndLineInBody,
        ),
        (
            Request {
                headers: vec![Header::new("X", "a\nb")],
                ..ok.clone()
            },
            WriteError::HeaderValue("X".into()),
        ),
        (
            Request {
                headers: vec![Header::new("Message-ID", "abcd")],
                ..ok.clone()
            },
            WriteError::HeaderValue("Message-ID".into()),
        ),
        (
            Request {
                use_nickname: Some("a\rb".into()),
                ..ok.clone()
            },
            WriteError::HeaderValue("Use-Nickname".into()),
        ),
        (
            Request {
                status: Some(Status {
                    namespace: 0,
                    code: 1000,
                    comment: None,
                }),
                ..ok.clone()
            },
            WriteError::Code,
        ),
        (
            Request {
                method: Method::Other("se nd".into()),
                ..ok.clone()
            },
            WriteError::HeaderValue("method".into()),
        ),
    ];
    for (req, err) in cases {
        assert_eq!(req.encode(&mut out), Err(err));
        assert!(out.is_empty(), "nothing written on error");
    }
    let mut bad_uri = uri("msrp://f/s;tcp");
    bad_uri.session_id = Some("a b".into());
    let req = Request {
        to_path: vec![bad_uri],
        ..ok.clone()
    };
    assert_eq!(req.to_bytes(), Err(WriteError::PathUri));
    let mut resp = Response::for_request(&ok, 200, None);
    resp.code = 1000;
    assert_eq!(resp.to_bytes(), Err(WriteError::Code));
    resp.code = 200;
    resp.comment = Some("a\r\nb".into());
    assert_eq!(
        resp.to_bytes(),
        Err(WriteError::HeaderValue("comment".into()))
    );
}

#[test]
fn fresh_ids() {
    let a = new_transaction_id();
    let b = new_transaction_id();
    assert_ne!(a, b);
    assert!(is_ident(&a) && is_ident(&new_message_id()));
    assert_eq!(a.len(), 16);
}
