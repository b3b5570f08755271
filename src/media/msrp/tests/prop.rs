//! Properties: generated messages round-trip through writer, framer and parser; arbitrary
//! bytes never panic; chunking then reassembly (in any order) gives the body back.

use super::super::*;
use crate::sip::Host;
use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn ident() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9.+%=-]{3,31}"
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!%*_+`'~.-]{1,10}"
}

/// Header text as the parser keeps it: printable, no surrounding whitespace.
fn text() -> impl Strategy<Value = String> {
    "[!-~\u{e9}\u{4e2d}]([ -~\u{e9}]{0,20}[!-~\u{e9}])?"
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        "[a-zA-Z][a-zA-Z0-9-]{0,10}(\\.[a-zA-Z0-9-]{1,10}){0,3}"
            .prop_map(|d| Host::Domain(d.into())),
        any::<u32>().prop_map(|a| Host::Ip(IpAddr::V4(Ipv4Addr::from(a)))),
        any::<u128>().prop_map(|a| Host::Ip(IpAddr::V6(Ipv6Addr::from(a)))),
    ]
}

fn uri() -> impl Strategy<Value = MsrpUri> {
    (
        prop_oneof![Just(MsrpScheme::Msrp), Just(MsrpScheme::Msrps)],
        option::of("[A-Za-z0-9._~!$&'()*+,=:%-]{1,10}"),
        host(),
        option::of(any::<u16>()),
        option::of("[A-Za-z0-9._~+=/-]{1,20}"),
        prop_oneof![Just("tcp".to_owned()), "[a-zA-Z0-9]{1,5}"],
        vec((token(), option::of(token())), 0..3),
    )
        .prop_map(
            |(scheme, userinfo, host, port, session_id, transport, params)| MsrpUri {
                scheme,
                userinfo,
                host,
                port,
                session_id,
                transport,
                params,
            },
        )
}

fn path() -> impl Strategy<Value = Vec<MsrpUri>> {
    vec(uri(), 1..4)
}

fn headers() -> impl Strategy<Value = Vec<Header>> {
    vec(
        (
            token().prop_filter("not a typed header", |n| {
                !HeaderName::ALL
                    .iter()
                    .any(|h| h.as_str().eq_ignore_ascii_case(n))
            }),
            prop_oneof![Just(String::new()), text()],
        )
            .prop_map(|(n, v)| Header::new(n, v)),
        0..4,
    )
}

fn byte_range() -> impl Strategy<Value = ByteRange> {
    (
        1u64..10_000,
        0u64..10_000,
        0u64..100,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(start, len, extra, end_known, total_known)| {
            let end = start + len - 1;
            ByteRange {
                start,
                end: end_known.then_some(end),
                total: total_known.then_some(end + extra),
            }
        })
}

fn status() -> impl Strategy<Value = Status> {
    (0u16..1000, 0u16..1000, option::of(text())).prop_map(|(namespace, code, comment)| Status {
        namespace,
        code,
        comment,
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Send),
        Just(Method::Report),
        Just(Method::Nickname),
        "[A-Z]{1,10}"
            .prop_filter("extension method", |m| Method::parse(m)
                == Some(Method::Other(m.clone())))
            .prop_map(Method::Other),
    ]
}

prop_compose! {
    fn request()(
        (tid, method, to_path, from_path) in (ident(), method(), path(), path()),
        (message_id, byte_range, success_report, failure_report) in (
            option::of(ident()),
            option::of(byte_range()),
            option::of(any::<bool>()),
            option::of(prop_oneof![
                Just(FailureReport::Yes),
                Just(FailureReport::No),
                Just(FailureReport::Partial)
            ]),
        ),
        (status, use_nickname, headers) in (
            option::of(status()),
            option::of("[ -~\u{e9}]{1,16}"),
            headers(),
        ),
        (content_type, body, continuation) in (
            "[a-z]{1,8}/[a-z0-9.+-]{1,12}(;[a-z]{1,5}=[a-z0-9]{1,5})?",
            vec(any::<u8>(), 0..300),
            prop_oneof![
                Just(Continuation::Complete),
                Just(Continuation::More),
                Just(Continuation::Aborted)
            ],
        ),
        fallback_id in ident(),
        fallback_status in status(),
        fallback_nick in "[ -~]{1,8}",
    ) -> Request {
        let mut r = Request {
            transaction_id: tid,
            method,
            to_path,
            from_path,
            message_id,
            byte_range,
            success_report,
            failure_report,
            status,
            content_type: (!body.is_empty()).then_some(content_type),
            use_nickname,
            headers,
            body: Bytes::from(body),
            continuation,
        };
        // What each method must carry to parse (RFC 4975 §7.1, RFC 7701 §5.1).
        match r.method {
            Method::Send => {
                r.message_id.get_or_insert(fallback_id);
            }
            Method::Report => {
                r.message_id.get_or_insert(fallback_id);
                r.status.get_or_insert(fallback_status);
            }
            Method::Nickname => {
                r.use_nickname.get_or_insert(fallback_nick);
            }
            Method::Other(_) => {}
        }
        r
    }
}

prop_compose! {
    fn response()(
        transaction_id in ident(),
        code in 0u16..1000,
        comment in option::of(text()),
        to_path in path(),
        from_path in path(),
        headers in headers(),
    ) -> Response {
        Response { transaction_id, code, comment, to_path, from_path, headers }
    }
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        request().prop_map(Message::Request),
        response().prop_map(Message::Response),
    ]
}

fn encode(m: &Message) -> Result<Bytes, WriteError> {
    match m {
        Message::Request(r) => r.to_bytes(),
        Message::Response(r) => r.to_bytes(),
    }
}

/// Field-by-field text equality of URIs (`==` is the looser §6.1 comparison).
fn same_text(a: &Message, b: &Message) -> bool {
    let paths = |m: &Message| -> Vec<String> {
        let (to, from) = match m {
            Message::Request(r) => (&r.to_path, &r.from_path),
            Message::Response(r) => (&r.to_path, &r.from_path),
        };
        to.iter().chain(from).map(ToString::to_string).collect()
    };
    paths(a) == paths(b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_messages_round_trip(m in message()) {
        let bytes = encode(&m);
        prop_assume!(bytes != Err(WriteError::EndLineInBody));
        let bytes = bytes.unwrap();
        // The framer cuts exactly this message out of a stream.
        let mut buf = BytesMut::from(&bytes[..]);
        buf.extend_from_slice(b"MSRP ");
        let frame = Framer::new(bytes.len()).decode(&mut buf).unwrap().unwrap();
        prop_assert_eq!(&frame.bytes, &bytes);
        prop_assert_eq!(&buf[..], b"MSRP ");
        let back = frame.parse(&ParseLimits::default()).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert!(same_text(&back, &m));
        prop_assert_eq!(encode(&back).unwrap(), bytes);
    }

    #[test]
    fn streams_frame_the_same_whatever_the_reads(
        ms in vec(message(), 1..5),
        cuts in vec(1usize..200, 1..40),
    ) {
        let mut wire = Vec::new();
        let mut frames = Vec::new();
        for m in &ms {
            let Ok(b) = encode(m) else { continue };
            wire.extend_from_slice(&b);
            frames.push(b);
        }
        let mut framer = Framer::new(64 * 1024);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < wire.len() {
            let n = cuts[i % cuts.len()].min(wire.len() - at);
            buf.extend_from_slice(&wire[at..at + n]);
            at += n;
            i += 1;
            while let Some(f) = framer.decode(&mut buf).unwrap() {
                got.push(f.bytes);
            }
        }
        prop_assert_eq!(got, frames);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        data in vec(any::<u8>(), 0..600),
        cuts in vec(1usize..64, 1..10),
        max_frame in 16usize..512,
    ) {
        let limits = ParseLimits::default();
        let _ = parse(Bytes::from(data.clone()), &limits);
        let _ = parse_head(Bytes::from(data.clone()), &limits);
        let mut framer = Framer::new(max_frame);
        let mut buf = BytesMut::new();
        let mut at = 0;
        let mut i = 0;
        'feed: while at < data.len() {
            let n = cuts[i % cuts.len()].min(data.len() - at);
            buf.extend_from_slice(&data[at..at + n]);
            at += n;
            i += 1;
            loop {
                match framer.decode(&mut buf) {
                    Ok(Some(f)) => {
                        let _ = f.parse(&limits);
                    }
                    Ok(None) => break,
                    Err(FrameError::Oversized { head }) => {
                        let _ = parse_head(head, &limits);
                    }
                    // The connection would be closed.
                    Err(_) => break 'feed,
                }
            }
            // Memory stays bounded by the frame limit plus one read.
            prop_assert!(buf.len() <= max_frame + 64);
        }
    }

    #[test]
    fn mutated_messages_never_panic(
        m in message(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let Ok(bytes) = encode(&m) else { return Ok(()) };
        let mut data = bytes.to_vec();
        for (at, byte, op) in edits {
            if data.is_empty() {
                break;
            }
            let i = at.index(data.len());
            match op {
                0 => data[i] = byte,
                1 => data.insert(i, byte),
                _ => {
                    data.remove(i);
                }
            }
        }
        let limits = ParseLimits::default();
        if let Ok(parsed) = parse(Bytes::from(data.clone()), &limits) {
            // Whatever parses, and can be written, parses back to itself.
            if let Ok(again) = encode(&parsed) {
                prop_assert_eq!(parse(again, &limits), Ok(parsed));
            }
        }
        let mut framer = Framer::new(1024);
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(f)) = framer.decode(&mut buf) {
            let _ = f.parse(&limits);
        }
    }

    #[test]
    fn requests_with_a_bad_header_can_be_answered(m in request(), junk in "[ -9;-~]{0,30}") {
        let Ok(bytes) = m.to_bytes() else { return Ok(()) };
        // After the start line, To-Path and From-Path: a line without a colon.
        let Some(at) = bytes
            .windows(2)
            .enumerate()
            .filter(|(_, w)| *w == b"\r\n")
            .map(|(i, _)| i + 2)
            .nth(2)
        else {
            return Err(TestCaseError::fail("no From-Path line"));
        };
        let mut data = bytes[..at].to_vec();
        data.extend_from_slice(format!("x{junk}\r\n").as_bytes());
        data.extend_from_slice(&bytes[at..]);
        match parse(Bytes::from(data), &ParseLimits::default()) {
            Err(ParseError::Reject(r)) => {
                prop_assert_eq!(r.fault, Fault::HeaderLine);
                prop_assert_eq!(&r.transaction_id, &m.transaction_id);
                let resp = r.response();
                prop_assert_eq!(&resp.to_path, &Response::for_request(&m, 400, None).to_path);
                prop_assert_eq!(resp.code, 400);
                prop_assert!(resp.to_bytes().is_ok());
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn chunks_reassemble_in_any_order(
        (body, chunk, order) in (vec(any::<u8>(), 0..5000), 1usize..700)
            .prop_flat_map(|(body, chunk)| {
                let n = body.len().div_ceil(chunk).max(1);
                (Just(body), Just(chunk), Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
            }),
        via_wire in any::<bool>(),
    ) {
        let message = Request::send(
            vec![MsrpUri::parse("msrp://focus.example.com:2855/s1;tcp").unwrap()],
            vec![MsrpUri::parse("msrp://alice.example.com:1234/a1;tcp").unwrap()],
            "text/plain",
            Bytes::from(body.clone()),
        );
        let parts: Vec<Request> = chunks(&message, chunk).collect();
        prop_assert_eq!(parts.len(), order.len());
        prop_assert!(parts.iter().all(|p| p.body.len() <= chunk));
        let mut r = Reassembler::new(ReassemblyLimits {
            max_message: 8192,
            max_chunks: 8192,
            max_partial: 1,
        });
        for (k, &i) in order.iter().enumerate() {
            let part = if via_wire {
                let bytes = parts[i].to_bytes().unwrap();
                match parse(bytes, &ParseLimits::default()).unwrap() {
                    Message::Request(r) => r,
                    Message::Response(_) => unreachable!(),
                }
            } else {
                parts[i].clone()
            };
            let out = r.accept(part).unwrap();
            if k + 1 < order.len() {
                prop_assert_eq!(out, Reassembly::Partial);
            } else {
                let Reassembly::Complete(m) = out else {
                    return Err(TestCaseError::fail("not complete"));
                };
                prop_assert_eq!(&m.body[..], &body[..]);
                prop_assert_eq!(m.byte_range, Some(ByteRange::whole(body.len() as u64)));
                prop_assert_eq!(m.message_id, message.message_id.clone());
            }
        }
        prop_assert!(r.is_empty());
    }
}
