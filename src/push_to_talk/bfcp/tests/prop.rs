//! Properties: every generated message encodes and decodes back to itself (stream, datagram,
//! and fragmented datagrams in any order); arbitrary bytes never panic the decoders.

use super::super::*;
use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn text() -> impl Strategy<Value = Text> {
    prop_oneof![
        "[ -~\u{e9}\u{4e2d}]{0,6}".prop_map(Text::from),
        bytes(20).prop_map(Text::new),
    ]
}

fn primitive() -> impl Strategy<Value = Primitive> {
    prop_oneof![
        4 => (1u8..=17).prop_map(Primitive::from_code),
        1 => prop_oneof![Just(0u8), 18u8..=255].prop_map(Primitive::Unknown),
    ]
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        4 => (1u8..=14).prop_map(ErrorCode::from_code),
        1 => prop_oneof![Just(0u8), 15u8..=255].prop_map(ErrorCode::Unknown),
    ]
}

/// Kinds the codec keeps as `Unknown` (not assigned by RFC 8855).
fn unknown_kind() -> impl Strategy<Value = u8> {
    prop_oneof![Just(0u8), 19u8..=127]
}

fn leaf() -> impl Strategy<Value = Attribute> {
    let m = any::<bool>;
    prop_oneof![
        (m(), any::<u16>()).prop_map(|(mandatory, id)| Attribute::BeneficiaryId { mandatory, id }),
        (m(), any::<u16>()).prop_map(|(mandatory, id)| Attribute::FloorId { mandatory, id }),
        (m(), any::<u16>()).prop_map(|(mandatory, id)| Attribute::FloorRequestId { mandatory, id }),
        (m(), 0u8..5).prop_map(|(mandatory, p)| Attribute::Priority {
            mandatory,
            priority: Priority::from_code(p).unwrap(),
        }),
        (m(), 1u8..=7, any::<u8>()).prop_map(|(mandatory, s, queue_position)| {
            Attribute::RequestStatus {
                mandatory,
                status: RequestStatus::from_code(s).unwrap(),
                queue_position,
            }
        }),
        (m(), error_code(), vec(0u8..128, 0..5), bytes(8)).prop_map(
            |(mandatory, code, kinds, other)| Attribute::ErrorCode {
                mandatory,
                code,
                details: if code == ErrorCode::UnknownMandatoryAttribute {
                    ErrorDetails::UnknownAttributes(kinds)
                } else {
                    ErrorDetails::Other(other)
                },
            }
        ),
        (m(), text()).prop_map(|(mandatory, text)| Attribute::ErrorInfo { mandatory, text }),
        (m(), text())
            .prop_map(|(mandatory, text)| Attribute::ParticipantProvidedInfo { mandatory, text }),
        (m(), text()).prop_map(|(mandatory, text)| Attribute::StatusInfo { mandatory, text }),
        (m(), text()).prop_map(|(mandatory, text)| Attribute::UserDisplayName { mandatory, text }),
        (m(), text()).prop_map(|(mandatory, text)| Attribute::UserUri { mandatory, text }),
        (m(), vec(0u8..128, 0..8))
            .prop_map(|(mandatory, kinds)| Attribute::SupportedAttributes { mandatory, kinds }),
        (m(), vec(primitive(), 0..8)).prop_map(|(mandatory, primitives)| {
            Attribute::SupportedPrimitives {
                mandatory,
                primitives,
            }
        }),
        (unknown_kind(), bytes(20)).prop_map(|(kind, data)| Attribute::Unknown {
            kind,
            mandatory: false,
            data,
        }),
    ]
}

fn grouped(inner: impl Strategy<Value = Attribute>) -> impl Strategy<Value = Attribute> {
    let parts = (any::<bool>(), any::<u16>(), vec(inner, 0..3));
    (0u8..5, parts).prop_map(|(which, (mandatory, id, attributes))| match which {
        0 => Attribute::BeneficiaryInformation {
            mandatory,
            beneficiary_id: id,
            attributes,
        },
        1 => Attribute::FloorRequestInformation {
            mandatory,
            floor_request_id: id,
            attributes,
        },
        2 => Attribute::RequestedByInformation {
            mandatory,
            requested_by_id: id,
            attributes,
        },
        3 => Attribute::FloorRequestStatus {
            mandatory,
            floor_id: id,
            attributes,
        },
        _ => Attribute::OverallRequestStatus {
            mandatory,
            floor_request_id: id,
            attributes,
        },
    })
}

/// Leaves, groups of leaves, and groups of those: small enough that every group fits its
/// 8-bit length (3 × (4 + 3 × 24) + 4 < 252).
fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        3 => leaf(),
        2 => grouped(leaf()),
        1 => grouped(prop_oneof![leaf(), grouped(leaf())]),
    ]
}

fn message(version: u8) -> impl Strategy<Value = Message> {
    (
        any::<bool>(),
        primitive(),
        any::<u32>(),
        any::<u16>(),
        any::<u16>(),
        vec(attribute(), 0..6),
    )
        .prop_map(
            move |(responder, primitive, conference_id, transaction_id, user_id, attributes)| {
                Message {
                    version,
                    responder,
                    fragment: None,
                    primitive,
                    conference_id,
                    transaction_id,
                    user_id,
                    attributes,
                }
            },
        )
}

fn encoded(m: &Message) -> Bytes {
    let mut buf = BytesMut::new();
    encode(m, &mut buf).unwrap();
    buf.freeze()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn stream_messages_round_trip(m in message(1), split in any::<prop::sample::Index>()) {
        let bytes = encoded(&m);
        prop_assert_eq!(bytes.len() % 4, 0);
        prop_assert_eq!(m.header().message_len(), bytes.len());
        // Cut anywhere: the first part is never enough on its own, the rest completes it.
        let cut = split.index(bytes.len());
        let mut d = StreamDecoder::default();
        let mut buf = BytesMut::from(&bytes[..cut]);
        prop_assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&bytes[cut..]);
        buf.extend_from_slice(&bytes);
        prop_assert_eq!(d.decode(&mut buf), Ok(Some(m.clone())));
        prop_assert_eq!(d.decode(&mut buf), Ok(Some(m)));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn datagram_messages_round_trip(m in message(2)) {
        let bytes = encoded(&m);
        prop_assert_eq!(decode_datagram(&bytes), Ok(m.clone()));
        prop_assert_eq!(encoded(&decode_datagram(&bytes).unwrap()), bytes);
    }

    #[test]
    fn fragmented_messages_reassemble(
        m in message(2),
        mtu in 20usize..200,
        order in any::<prop::sample::Index>(),
    ) {
        let mut pieces = encode_datagrams(&m, mtu).unwrap();
        prop_assert!(pieces.len() == 1 || pieces.iter().all(|p| p.len() <= mtu.max(20)));
        let len = pieces.len();
        pieces.rotate_left(order.index(len));
        let mut r = Reassembler::default();
        let mut out = Vec::new();
        for p in &pieces {
            if let Some(whole) = r.push(decode_datagram(p).unwrap()).unwrap() {
                out.push(whole);
            }
        }
        prop_assert_eq!(out, vec![m]);
        prop_assert_eq!(r.pending(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..300)) {
        fuzz_decode(&data);
    }

    /// Plausible headers with random payloads reach deep into the attribute parser.
    #[test]
    fn random_payloads_never_panic(
        version in 1u8..=2,
        primitive in any::<u8>(),
        payload in vec(any::<u8>(), 0..40).prop_map(|mut p| { p.truncate(p.len() / 4 * 4); p }),
        fragmented in any::<bool>(),
    ) {
        let mut data = vec![version << 5 | u8::from(fragmented) << 3, primitive];
        data.extend_from_slice(&((payload.len() / 4) as u16).to_be_bytes());
        data.extend_from_slice(&[0, 0, 0, 1, 0, 1, 0, 1]);
        data.extend_from_slice(&payload);
        fuzz_decode(&data);
        if let Ok(m) = decode_datagram(&data) {
            prop_assert_eq!(decode_datagram(&encoded(&m)), Ok(m));
        }
    }
}
