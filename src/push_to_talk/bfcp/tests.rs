//! Tests of the BFCP codec: byte-exact encodings computed by hand from RFC 8855 §5, every
//! decode error, stream framing, fragments, and properties (`tests/prop.rs`).

mod prop;

use super::*;
use bytes::{Bytes, BytesMut};

fn bytes_of(msg: &Message) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode(msg, &mut buf).unwrap();
    buf.to_vec()
}

fn stream_decode(data: &[u8]) -> Result<Option<Message>, DecodeError> {
    StreamDecoder::default().decode(&mut BytesMut::from(data))
}

fn header(version: u8, primitive: u8, payload_units: u16) -> Vec<u8> {
    let mut h = vec![version << 5, primitive];
    h.extend_from_slice(&payload_units.to_be_bytes());
    h.extend_from_slice(&[0, 0, 0, 1, 0, 7, 0, 2]); // conference 1, transaction 7, user 2
    h
}

/// FloorRequest over TCP: FLOOR-ID 3, PRIORITY High (3 bits at the top of 16).
const FLOOR_REQUEST: [u8; 20] = [
    0x20, 0x01, 0x00, 0x02, // Ver 1, R 0, F 0; FloorRequest; 2 units
    0x01, 0x02, 0x03, 0x04, // Conference ID
    0x00, 0x05, 0x00, 0x06, // Transaction ID 5, User ID 6
    0x04, 0x04, 0x00, 0x03, // FLOOR-ID (2 << 1), length 4, floor 3
    0x08, 0x04, 0x60, 0x00, // PRIORITY (4 << 1), length 4, Prio 3 << 5
];

fn floor_request() -> Message {
    Message::new(1, Primitive::FloorRequest, 0x0102_0304, 5, 6).with_attributes(vec![
        Attribute::floor_id(3),
        Attribute::priority(Priority::High),
    ])
}

/// FloorRequestStatus over UDP (Ver 2, R set): request 9 granted on floor 1.
const FLOOR_REQUEST_STATUS: [u8; 32] = [
    0x50, 0x04, 0x00, 0x05, // Ver 2, R 1; FloorRequestStatus; 5 units
    0x00, 0x00, 0x00, 0x01, // Conference ID 1
    0x00, 0x07, 0x00, 0x02, // Transaction ID 7, User ID 2
    0x1e, 0x14, 0x00, 0x09, // FLOOR-REQUEST-INFORMATION (15 << 1), 20 octets, request 9
    0x24, 0x08, 0x00, 0x09, //   OVERALL-REQUEST-STATUS (18 << 1), 8 octets, request 9
    0x0a, 0x04, 0x03, 0x00, //     REQUEST-STATUS (5 << 1): Granted, queue position 0
    0x22, 0x08, 0x00, 0x01, //   FLOOR-REQUEST-STATUS (17 << 1), 8 octets, floor 1
    0x0a, 0x04, 0x03, 0x00, //     REQUEST-STATUS: Granted
];

fn floor_request_status() -> Message {
    let granted = || vec![Attribute::request_status(RequestStatus::Granted, 0)];
    let mut m = Message::new(2, Primitive::FloorRequestStatus, 1, 7, 2).with_attributes(vec![
        Attribute::floor_request_information(
            9,
            vec![
                Attribute::overall_request_status(9, granted()),
                Attribute::floor_request_status(1, granted()),
            ],
        ),
    ]);
    m.responder = true;
    m
}

#[test]
fn floor_request_is_byte_exact() {
    assert_eq!(bytes_of(&floor_request()), FLOOR_REQUEST);
    assert_eq!(stream_decode(&FLOOR_REQUEST), Ok(Some(floor_request())));
}

#[test]
fn grouped_attributes_are_byte_exact() {
    assert_eq!(bytes_of(&floor_request_status()), FLOOR_REQUEST_STATUS);
    assert_eq!(
        decode_datagram(&FLOOR_REQUEST_STATUS),
        Ok(floor_request_status())
    );
}

#[test]
fn text_is_padded_and_grouped_length_counts_the_padding() {
    let msg = Message::new(1, Primitive::UserStatus, 1, 7, 2).with_attributes(vec![
        Attribute::beneficiary_information(
            7,
            vec![
                Attribute::user_display_name("Bob"),
                Attribute::user_uri("sip:b@x"),
            ],
        ),
    ]);
    let mut expected = header(1, 6, 6);
    expected.extend_from_slice(&[
        0x1c, 0x18, 0x00, 0x07, // BENEFICIARY-INFORMATION (14 << 1), 4 + 8 + 12 = 24 octets
        0x18, 0x05, b'B', b'o', b'b', 0, 0, 0, // USER-DISPLAY-NAME, 5 octets + 3 padding
        0x1a, 0x09, b's', b'i', b'p', b':', b'b', b'@', b'x', 0, 0, 0, // USER-URI, 9 + 3
    ]);
    assert_eq!(bytes_of(&msg), expected);
    assert_eq!(stream_decode(&expected), Ok(Some(msg)));
}

#[test]
fn error_with_unknown_attribute_details_is_byte_exact() {
    let msg = Message::new(1, Primitive::Error, 1, 7, 2).with_attributes(vec![
        Attribute::error_code(
            ErrorCode::UnknownMandatoryAttribute,
            ErrorDetails::UnknownAttributes(vec![48, 127]),
        ),
        Attribute::error_info("no"),
    ]);
    let mut expected = header(1, 13, 3);
    expected.extend_from_slice(&[
        0x0c, 0x05, 0x04, 0x60, 0xfe, 0, 0, 0, // ERROR-CODE 4, types 48 and 127 (<< 1)
        0x0e, 0x04, b'n', b'o', // ERROR-INFO "no", no padding needed
    ]);
    assert_eq!(bytes_of(&msg), expected);
    assert_eq!(stream_decode(&expected), Ok(Some(msg)));
}

#[test]
fn hello_ack_lists_are_byte_exact() {
    let msg = Message::new(1, Primitive::HelloAck, 1, 7, 2).with_attributes(vec![
        Attribute::supported_primitives(vec![
            Primitive::FloorRequest,
            Primitive::FloorRelease,
            Primitive::Hello,
        ]),
        Attribute::supported_attributes(vec![1, 2]),
    ]);
    let mut expected = header(1, 12, 3);
    expected.extend_from_slice(&[
        0x16, 0x05, 0x01, 0x02, 0x0b, 0, 0, 0, // SUPPORTED-PRIMITIVES
        0x14, 0x04, 0x02, 0x04, // SUPPORTED-ATTRIBUTES: 1 << 1, 2 << 1
    ]);
    assert_eq!(bytes_of(&msg), expected);
    assert_eq!(stream_decode(&expected), Ok(Some(msg)));
}

#[test]
fn m_bit_is_kept_and_unknown_optional_attributes_survive() {
    let mut bytes = header(1, 1, 3);
    bytes.extend_from_slice(&[
        0x05, 0x04, 0x00, 0x03, // FLOOR-ID with M set
        0x60, 0x06, 1, 2, 3, 4, 0, 0, // type 48, M clear, 4 octets of data
    ]);
    let msg = stream_decode(&bytes).unwrap().unwrap();
    assert_eq!(
        msg.attributes,
        vec![
            Attribute::FloorId {
                mandatory: true,
                id: 3
            },
            Attribute::Unknown {
                kind: 48,
                mandatory: false,
                data: Bytes::from_static(&[1, 2, 3, 4]),
            },
        ]
    );
    assert_eq!(bytes_of(&msg), bytes);
}

#[test]
fn every_code_point_round_trips() {
    for (i, p) in Primitive::ALL.iter().enumerate() {
        assert_eq!(p.code() as usize, i + 1);
        assert_eq!(Primitive::from_code(p.code()), *p);
    }
    assert_eq!(Primitive::GoodbyeAck.code(), 17);
    assert_eq!(Primitive::from_code(18), Primitive::Unknown(18));
    assert_eq!(Primitive::from_code(0), Primitive::Unknown(0));
    for (i, e) in ErrorCode::ALL.iter().enumerate() {
        assert_eq!(e.code() as usize, i + 1);
        assert_eq!(ErrorCode::from_code(e.code()), *e);
    }
    assert_eq!(ErrorCode::from_code(15), ErrorCode::Unknown(15));
    assert_eq!(ErrorCode::MaxFloorRequestsReached.code(), 8);
    for s in RequestStatus::ALL {
        assert_eq!(RequestStatus::from_code(s.code()), Some(s));
    }
    assert_eq!(RequestStatus::Revoked.code(), 7);
    assert_eq!(RequestStatus::from_code(8), None);
    assert!(Priority::Highest > Priority::Normal && Priority::Lowest < Priority::Low);
    assert_eq!(Priority::from_code(5), None);
    for t in AttributeType::ALL {
        assert_eq!(AttributeType::from_code(t.code()), Some(t));
    }
    assert_eq!(AttributeType::OverallRequestStatus.code(), 18);
}

// Every decode error.

#[test]
fn short_datagram_is_truncated_and_unanswerable() {
    let e = decode_datagram(&[0x40, 1, 0, 0, 0, 0, 0]).unwrap_err();
    assert_eq!(e, DecodeError::Truncated);
    assert_eq!(e.header(), None);
    assert_eq!(e.error_response(), None);
}

#[test]
fn wrong_version_is_error_12_in_our_version() {
    // Version 1 over UDP.
    let e = decode_datagram(&header(1, 11, 0)).unwrap_err();
    assert!(matches!(
        e,
        DecodeError::UnsupportedVersion { supported: 2, .. }
    ));
    assert_eq!(e.code(), ErrorCode::UnsupportedVersion);
    let r = e.error_response().unwrap();
    assert_eq!((r.version, r.responder), (2, true));
    assert_eq!((r.conference_id, r.transaction_id, r.user_id), (1, 7, 2));
    assert_eq!(r.primitive, Primitive::Error);
    // Version 2 and 3 over TCP: answer then close, and stay closed.
    for v in [2, 3] {
        let mut d = StreamDecoder::default();
        let mut buf = BytesMut::from(&header(v, 11, 0)[..]);
        let e = d.decode(&mut buf).unwrap_err();
        assert!(e.closes_stream());
        assert_eq!(e.error_response().unwrap().version, 1);
        assert_eq!(d.decode(&mut BytesMut::from(&FLOOR_REQUEST[..])), Err(e));
    }
}

#[test]
fn oversized_stream_message_closes_without_buffering() {
    let mut d = StreamDecoder::new(64);
    let mut buf = BytesMut::from(&header(1, 1, 100)[..]);
    let e = d.decode(&mut buf).unwrap_err();
    assert!(matches!(
        e,
        DecodeError::TooLarge {
            size: 412,
            max: 64,
            ..
        }
    ));
    assert!(e.closes_stream());
    assert_eq!(e.code(), ErrorCode::GenericError);
}

#[test]
fn datagram_length_mismatch_is_error_13() {
    let mut long = FLOOR_REQUEST_STATUS.to_vec();
    long.extend_from_slice(&[0, 0, 0, 0]);
    for bad in [&FLOOR_REQUEST_STATUS[..28], &long[..]] {
        let e = decode_datagram(bad).unwrap_err();
        assert!(matches!(e, DecodeError::IncorrectLength { .. }), "{e:?}");
        assert_eq!(e.code(), ErrorCode::IncorrectMessageLength);
        assert!(!e.closes_stream());
    }
}

#[test]
fn attribute_overrunning_the_payload_is_error_13() {
    let mut bytes = header(1, 1, 1);
    bytes.extend_from_slice(&[0x04, 0x08, 0x00, 0x03]); // FLOOR-ID claiming 8 octets
    let e = stream_decode(&bytes).unwrap_err();
    assert!(matches!(e, DecodeError::IncorrectLength { .. }));
}

#[test]
fn unknown_mandatory_attributes_are_all_named() {
    let mut bytes = header(1, 1, 5);
    bytes.extend_from_slice(&[
        0x04, 0x04, 0x00, 0x03, // FLOOR-ID
        0x61, 0x02, 0x00, 0x00, // type 48, M set, empty
        0x1e, 0x08, 0x00, 0x09, // FLOOR-REQUEST-INFORMATION nesting
        0x63, 0x02, 0x00, 0x00, //   type 49, M set
        0x62, 0x02, 0x00, 0x00, // type 49, M clear: ignored
    ]);
    let e = stream_decode(&bytes).unwrap_err();
    assert_eq!(
        e,
        DecodeError::UnknownMandatoryAttribute {
            header: Header::read(&bytes).unwrap(),
            kinds: vec![48, 49],
        }
    );
    let r = e.error_response().unwrap();
    assert_eq!(
        r.attributes[0],
        Attribute::error_code(
            ErrorCode::UnknownMandatoryAttribute,
            ErrorDetails::UnknownAttributes(vec![48, 49])
        )
    );
}

#[test]
fn malformed_attributes_are_error_10() {
    let cases: [(&[u8], Fault); 7] = [
        (
            &[0x04, 0x06, 0, 3, 0, 0, 0, 0],
            Fault::AttributeLength { kind: 2, len: 6 },
        ),
        (
            &[0x04, 0x01, 0, 0],
            Fault::AttributeLength { kind: 2, len: 1 },
        ),
        (
            &[0x0a, 0x04, 0x00, 0x00],
            Fault::BadValue { kind: 5, value: 0 },
        ),
        (
            &[0x0a, 0x04, 0x08, 0x00],
            Fault::BadValue { kind: 5, value: 8 },
        ),
        (
            &[0x08, 0x04, 0xa0, 0x00],
            Fault::BadValue { kind: 4, value: 5 },
        ),
        (
            &[0x0c, 0x02, 0x00, 0x00],
            Fault::AttributeLength { kind: 6, len: 2 },
        ),
        // A grouped attribute whose nested FLOOR-ID runs past its end.
        (
            &[0x22, 0x06, 0x00, 0x01, 0x04, 0x04, 0, 0],
            Fault::AttributeLength { kind: 17, len: 6 },
        ),
    ];
    for (payload, fault) in cases {
        let mut bytes = header(1, 1, (payload.len() / 4) as u16);
        bytes.extend_from_slice(payload);
        let e = stream_decode(&bytes).unwrap_err();
        assert_eq!(
            e,
            DecodeError::Unparsable {
                header: Header::read(&bytes).unwrap(),
                fault
            }
        );
        assert_eq!(e.code(), ErrorCode::UnableToParseMessage);
    }
    let mut bytes = header(1, 15, 2);
    bytes.extend_from_slice(&[0x22, 0x04, 0x00, 0x01, 0x04, 0x04, 0, 0]);
    // The grouped header says 4 octets, so the FLOOR-ID after it is a sibling: fine.
    assert!(stream_decode(&bytes).is_ok());
    let mut bytes = header(1, 15, 2);
    bytes.extend_from_slice(&[0x22, 0x08, 0x00, 0x01, 0x04, 0x08, 0, 0]);
    assert!(matches!(
        stream_decode(&bytes),
        Err(DecodeError::Unparsable {
            fault: Fault::Overrun { kind: 2 },
            ..
        })
    ));
}

#[test]
fn fragment_over_a_stream_is_error_10_and_consumed() {
    let mut bytes = header(1, 11, 0);
    bytes[0] |= 0x08;
    bytes.extend_from_slice(&FLOOR_REQUEST);
    let mut d = StreamDecoder::default();
    let mut buf = BytesMut::from(&bytes[..]);
    let e = d.decode(&mut buf).unwrap_err();
    assert!(matches!(
        e,
        DecodeError::Unparsable {
            fault: Fault::FragmentOverStream,
            ..
        }
    ));
    assert!(!e.closes_stream());
    assert_eq!(d.decode(&mut buf), Ok(Some(floor_request())));
}

#[test]
fn errors_about_errors_are_not_answered() {
    let mut bytes = header(1, 13, 1);
    bytes.extend_from_slice(&[0x04, 0x09, 0, 0]);
    let e = stream_decode(&bytes).unwrap_err();
    assert!(e.header().is_some());
    assert_eq!(e.error_response(), None);
}

// Stream framing.

#[test]
fn stream_byte_by_byte() {
    let mut all = FLOOR_REQUEST.to_vec();
    all.extend_from_slice(&bytes_of(&Message::new(1, Primitive::Hello, 9, 1, 2)));
    let mut d = StreamDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for b in all {
        buf.extend_from_slice(&[b]);
        while let Some(m) = d.decode(&mut buf).unwrap() {
            out.push(m);
        }
    }
    assert_eq!(
        out,
        vec![floor_request(), Message::new(1, Primitive::Hello, 9, 1, 2)]
    );
    assert!(buf.is_empty());
}

#[test]
fn two_messages_in_one_read() {
    let mut all = FLOOR_REQUEST.to_vec();
    all.extend_from_slice(&FLOOR_REQUEST);
    all.extend_from_slice(&FLOOR_REQUEST[..5]);
    let mut d = StreamDecoder::default();
    let mut buf = BytesMut::from(&all[..]);
    assert_eq!(d.decode(&mut buf), Ok(Some(floor_request())));
    assert_eq!(d.decode(&mut buf), Ok(Some(floor_request())));
    assert_eq!(d.decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), 5);
}

// Encoding limits and fragments.

#[test]
fn encoder_refuses_what_the_wire_cannot_carry() {
    let mut buf = BytesMut::from(&b"keep"[..]);
    let long = Message::new(1, Primitive::Error, 1, 1, 1)
        .with_attributes(vec![Attribute::error_info("x".repeat(254))]);
    assert_eq!(
        encode(&long, &mut buf),
        Err(EncodeError::AttributeTooLong { kind: 7 })
    );
    assert_eq!(&buf[..], b"keep");
    let ok = Message::new(1, Primitive::Error, 1, 1, 1)
        .with_attributes(vec![Attribute::error_info("x".repeat(253))]);
    assert!(encode(&ok, &mut buf).is_ok());
    let nested =
        Attribute::beneficiary_information(1, vec![Attribute::user_display_name("y".repeat(246))]);
    assert_eq!(nested.encoded_len(), 4 + 248);
    let fits = Message::new(1, Primitive::UserStatus, 1, 1, 1).with_attributes(vec![nested]);
    assert!(encode(&fits, &mut BytesMut::new()).is_ok());
    let too_big =
        Attribute::beneficiary_information(1, vec![Attribute::user_display_name("y".repeat(250))]);
    let msg = Message::new(1, Primitive::UserStatus, 1, 1, 1).with_attributes(vec![too_big]);
    assert_eq!(
        encode(&msg, &mut BytesMut::new()),
        Err(EncodeError::AttributeTooLong { kind: 14 })
    );
    let mut bad = Message::new(8, Primitive::Hello, 1, 1, 1);
    assert_eq!(
        encode(&bad, &mut BytesMut::new()),
        Err(EncodeError::VersionOutOfRange(8))
    );
    bad.version = 1;
    bad.attributes = vec![Attribute::Unknown {
        kind: 200,
        mandatory: false,
        data: Bytes::new(),
    }];
    assert_eq!(
        encode(&bad, &mut BytesMut::new()),
        Err(EncodeError::TypeOutOfRange(200))
    );
}

fn big_user_status() -> Message {
    let mut m = Message::new(2, Primitive::UserStatus, 1, 7, 2).with_attributes(
        (0..20)
            .map(|i| {
                Attribute::floor_request_information(
                    i,
                    vec![
                        Attribute::floor_request_status(1, vec![]),
                        Attribute::participant_provided_info(format!("request number {i}")),
                    ],
                )
            })
            .collect(),
    );
    m.responder = true;
    m
}

#[test]
fn large_datagram_messages_fragment_and_reassemble_in_any_order() {
    let msg = big_user_status();
    let pieces = encode_datagrams(&msg, 100).unwrap();
    assert!(pieces.len() > 3);
    assert!(pieces.iter().all(|p| p.len() <= 100));
    let first = decode_datagram(&pieces[0]).unwrap();
    let f = first.fragment.as_ref().unwrap();
    assert_eq!((f.offset, f.data.len()), (0, 84));
    assert_eq!(pieces[0][0], 0x58, "Ver 2, R and F set");
    let mut r = Reassembler::default();
    let mut order: Vec<_> = pieces.iter().rev().collect();
    order.push(&pieces[1]); // a duplicate after completion starts a new partial
    let mut out = Vec::new();
    for p in order {
        if let Some(m) = r.push(decode_datagram(p).unwrap()).unwrap() {
            out.push(m);
        }
    }
    assert_eq!(out, vec![msg.clone()]);
    assert_eq!(r.pending(), 1);
    r.clear();
    // A message that fits goes out whole.
    assert_eq!(
        encode_datagrams(&msg, 2000).unwrap(),
        vec![Bytes::from(bytes_of(&msg))]
    );
}

#[test]
fn reassembly_is_bounded() {
    let mut r = Reassembler::new(2, 1000);
    for tid in 1..=3u16 {
        let mut m = big_user_status();
        m.transaction_id = tid;
        let first = encode_datagrams(&m, 100).unwrap().remove(0);
        assert_eq!(r.push(decode_datagram(&first).unwrap()), Ok(None));
        assert!(r.pending() <= 2);
    }
    let mut tiny = Reassembler::new(2, 100);
    let first = encode_datagrams(&big_user_status(), 100).unwrap().remove(0);
    assert!(matches!(
        tiny.push(decode_datagram(&first).unwrap()),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn hand_built_fragments_that_do_not_fit_are_refused() {
    let mut m = Message::new(2, Primitive::Hello, 1, 1, 1);
    for (offset, data) in [(1u16, &[0u8; 8][..]), (0, &[0u8; 3][..]), (0, &[][..])] {
        m.fragment = Some(Fragment {
            total: 2,
            offset,
            data: Bytes::copy_from_slice(data),
        });
        assert!(matches!(
            Reassembler::default().push(m.clone()),
            Err(DecodeError::IncorrectLength { .. })
        ));
    }
}

#[test]
fn bad_fragment_headers_are_error_13() {
    let mut frag = header(2, 6, 2);
    frag[0] |= 0x08;
    // Fragment fields cut off.
    assert!(matches!(
        decode_datagram(&frag),
        Err(DecodeError::IncorrectLength { .. })
    ));
    // Offset 1 + length 2 beyond a total of 2.
    frag.extend_from_slice(&[0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(
        decode_datagram(&frag),
        Err(DecodeError::IncorrectLength { .. })
    ));
}

#[test]
fn fuzz_entry_point_survives_samples() {
    // What the fuzz target does with each sample, and what it must find: a valid message
    // re-encodes to its bytes; FloorRequest (version 1, a stream message) comes out of a
    // stream the same whether read at once or in 3-octet pieces; FloorRequestStatus
    // (version 2) decodes as a datagram; the garbage is refused.
    let status = decode_datagram(&FLOOR_REQUEST_STATUS).unwrap();
    for (bytes, msg) in [
        (&FLOOR_REQUEST[..], floor_request()),
        (&FLOOR_REQUEST_STATUS[..], status),
    ] {
        fuzz_decode(bytes);
        let mut out = BytesMut::new();
        encode(&msg, &mut out).unwrap();
        assert_eq!(&out[..], bytes);
    }
    for piece in [FLOOR_REQUEST.len(), 3] {
        let mut decoder = StreamDecoder::new(4096);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in FLOOR_REQUEST.chunks(piece) {
            buf.extend_from_slice(chunk);
            while let Some(m) = decoder.decode(&mut buf).unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, [floor_request()], "in {piece}-octet pieces");
    }
    for garbage in [&[][..], &[0xff; 40][..]] {
        fuzz_decode(garbage);
        assert!(decode_datagram(garbage).is_err());
    }
    let whole = big_user_status();
    let mut reassembler = Reassembler::new(4, 4096);
    let mut rebuilt = None;
    for p in encode_datagrams(&whole, 64).unwrap() {
        fuzz_decode(&p);
        if let Some(m) = reassembler.push(decode_datagram(&p).unwrap()).unwrap() {
            assert!(rebuilt.is_none(), "reassembled twice");
            rebuilt = Some(m);
        }
    }
    assert_eq!(rebuilt, Some(whole));
}
