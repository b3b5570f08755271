//! Properties: every valid model round-trips; the parser never panics, and whatever it accepts
//! is a valid model that round-trips too.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::super::*;
use super::parse::{crlf, BFCP, MULTI, RCS_GROUP_CHAT, SIPP_UAC};

// ---- generators of valid models ------------------------------------------------------------

fn token() -> impl Strategy<Value = String> {
    r"[!#$%&'*+.0-9A-Z^_`a-z{|}~-]{1,10}"
}

fn non_ws() -> impl Strategy<Value = String> {
    r"[!-~\x{80}-\x{10FFFF}]{1,12}"
}

fn text() -> impl Strategy<Value = String> {
    r"[^\x00\r\n]{0,16}"
}

fn typed_time() -> impl Strategy<Value = String> {
    r"[0-9]{1,5}[dhms]?"
}

fn proto() -> impl Strategy<Value = String> {
    vec(token(), 1..4).prop_map(|parts| parts.join("/"))
}

fn attribute() -> impl Strategy<Value = Attribute> {
    (token(), option::of(text())).prop_map(|(name, value)| Attribute { name, value })
}

fn connection() -> impl Strategy<Value = Connection> {
    (token(), token(), non_ws()).prop_map(|(nettype, addrtype, address)| Connection {
        nettype,
        addrtype,
        address,
    })
}

fn bandwidth() -> impl Strategy<Value = Bandwidth> {
    (token(), any::<u64>()).prop_map(|(bwtype, bandwidth)| Bandwidth { bwtype, bandwidth })
}

fn time_description() -> impl Strategy<Value = TimeDescription> {
    let repeat = (typed_time(), typed_time(), vec(typed_time(), 1..3)).prop_map(
        |(interval, active_duration, offsets)| Repeat {
            interval,
            active_duration,
            offsets,
        },
    );
    let zone = (any::<u64>(), r"-?[0-9]{1,5}[dhms]?")
        .prop_map(|(time, offset)| ZoneAdjustment { time, offset });
    (
        any::<u64>(),
        any::<u64>(),
        vec(repeat, 0..2),
        vec(zone, 0..3),
    )
        .prop_map(|(start, stop, repeats, zone_adjustments)| TimeDescription {
            start,
            stop,
            repeats,
            zone_adjustments,
        })
}

fn media_description() -> impl Strategy<Value = MediaDescription> {
    (
        token(),
        any::<u16>(),
        option::of(any::<u16>()),
        proto(),
        vec(token(), 1..5),
        option::of(text()),
        vec(connection(), 0..3),
        vec(bandwidth(), 0..3),
        option::of(text()),
        vec(attribute(), 0..6),
    )
        .prop_map(
            |(
                media,
                port,
                port_count,
                proto,
                formats,
                information,
                connections,
                bandwidths,
                key,
                attributes,
            )| {
                MediaDescription {
                    media,
                    port,
                    port_count,
                    proto,
                    formats,
                    information,
                    connections,
                    bandwidths,
                    key,
                    attributes,
                }
            },
        )
}

fn origin() -> impl Strategy<Value = Origin> {
    (
        non_ws(),
        r"[0-9]{1,24}",
        r"[0-9]{1,24}",
        token(),
        token(),
        non_ws(),
    )
        .prop_map(
            |(username, session_id, session_version, nettype, addrtype, address)| Origin {
                username,
                session_id,
                session_version,
                nettype,
                addrtype,
                address,
            },
        )
}

fn session_description() -> impl Strategy<Value = SessionDescription> {
    let head = (
        origin(),
        text(),
        option::of(text()),
        option::of(text()),
        vec(text(), 0..3),
        vec(text(), 0..3),
        option::of(connection()),
    );
    let tail = (
        vec(bandwidth(), 0..3),
        vec(time_description(), 1..3),
        option::of(text()),
        vec(attribute(), 0..6),
        vec(media_description(), 0..5),
    );
    (head, tail).prop_map(
        |(
            (origin, session_name, information, uri, emails, phones, connection),
            (bandwidths, times, key, attributes, media),
        )| SessionDescription {
            version: 0,
            origin,
            session_name,
            information,
            uri,
            emails,
            phones,
            connection,
            bandwidths,
            times,
            key,
            attributes,
            media,
        },
    )
}

// ---- mutations -----------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Mutation {
    DeleteByte(usize),
    InsertByte(usize, u8),
    ReplaceByte(usize, u8),
    Truncate(usize),
    DropLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
}

/// Bytes that matter to SDP syntax, plus any byte at all.
fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(vec![
            b'\r', b'\n', b' ', b'=', b':', b'/', b'0', b'9', b'm', b'a', b't', b'z', 0, 0xFF, 0xC3
        ]),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteByte),
        (any::<usize>(), interesting_byte()).prop_map(|(at, b)| Mutation::InsertByte(at, b)),
        (any::<usize>(), interesting_byte()).prop_map(|(at, b)| Mutation::ReplaceByte(at, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::DropLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let len = bytes.len();
    let at = |i: usize| if len == 0 { 0 } else { i % len };
    match *mutation {
        Mutation::DeleteByte(i) if len > 0 => {
            bytes.remove(at(i));
        }
        Mutation::InsertByte(i, b) => bytes.insert(i % (len + 1), b),
        Mutation::ReplaceByte(i, b) if len > 0 => bytes[at(i)] = b,
        Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
        Mutation::DropLine(i) | Mutation::DuplicateLine(i) | Mutation::SwapLines(i, _) => {
            let mut lines: Vec<Vec<u8>> =
                bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
            let n = lines.len();
            match *mutation {
                Mutation::DropLine(_) => {
                    lines.remove(i % n);
                }
                Mutation::DuplicateLine(_) => {
                    let line = lines[i % n].clone();
                    lines.insert(i % n, line);
                }
                Mutation::SwapLines(_, j) => lines.swap(i % n, j % n),
                _ => {}
            }
            *bytes = lines.join(&b'\n');
        }
        _ => {}
    }
}

fn fixture() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![SIPP_UAC, RCS_GROUP_CHAT, BFCP, MULTI])
        .prop_map(|lines| crlf(lines).into_bytes())
}

/// Whatever the parser accepts must be a valid model that round-trips.
fn check_accepted(input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(sd) = parse(input) {
        prop_assert_eq!(sd.validate(), Ok(()));
        prop_assert_eq!(parse(&sd.to_bytes()), Ok(sd));
    }
    Ok(())
}

// ---- line soup: plausible lines in random order ---------------------------------------------

fn soup_line() -> impl Strategy<Value = String> {
    let kind = prop::sample::select(vec![
        'v', 'o', 's', 'i', 'u', 'e', 'p', 'c', 'b', 't', 'r', 'z', 'k', 'a', 'm', 'x', 'V',
    ]);
    let word = prop::sample::select(vec![
        "0",
        "1",
        "7d",
        "-1h",
        "IN",
        "IP4",
        "IP6",
        "127.0.0.1",
        "audio",
        "message",
        "RTP/AVP",
        "TCP/MSRP",
        "*",
        "AS:64",
        "sendonly",
        "rtpmap:0",
        "PCMU/8000",
        "-",
        "",
    ]);
    (kind, vec(word, 0..7)).prop_map(|(kind, words)| format!("{kind}={}", words.join(" ")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_models_round_trip(sd in session_description()) {
        prop_assert_eq!(sd.validate(), Ok(()));
        let bytes = sd.to_bytes();
        let parsed = parse(&bytes);
        prop_assert_eq!(parsed.as_ref(), Ok(&sd));
        // Text → model → text is then byte-identical too.
        prop_assert_eq!(parsed.map(|p| p.to_bytes()), Ok(bytes));
    }

    #[test]
    fn lf_only_text_parses_to_the_same_model(sd in session_description()) {
        let lf = sd.to_string().replace("\r\n", "\n");
        prop_assert_eq!(parse(lf.trim_end_matches('\n').as_bytes()), Ok(sd));
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..2048)) {
        check_accepted(&bytes)?;
    }

    #[test]
    fn parser_never_panics_on_mutated_sdp(
        seed in prop_oneof![session_description().prop_map(|sd| sd.to_bytes()), fixture()],
        mutations in vec(mutation(), 1..6),
    ) {
        let mut bytes = seed;
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_accepted(&bytes)?;
    }

    #[test]
    fn parser_never_panics_on_line_soup(
        head in prop::sample::select(vec![0usize, 3, 5]),
        lines in vec(soup_line(), 0..40),
    ) {
        let mut all: Vec<String> = SIPP_UAC[..head].iter().map(|s| s.to_string()).collect();
        all.extend(lines);
        check_accepted(all.join("\r\n").as_bytes())?;
    }

    #[test]
    fn decline_all_answers_any_answerable_offer(sd in session_description()) {
        let ctx = AnswerContext {
            username: "-".into(),
            session_id: 1,
            session_version: 1,
            origin_address: "192.0.2.1".parse().unwrap(),
            connection_address: "192.0.2.1".parse().unwrap(),
        };
        match answer(&sd, &DefaultDeclineAll, &ctx) {
            Ok(a) => {
                prop_assert_eq!(a.sdp().media.len(), sd.media.len());
                prop_assert_eq!(a.accepted_count(), 0);
                for (offered, answered) in sd.media.iter().zip(&a.sdp().media) {
                    prop_assert_eq!(&answered.media, &offered.media);
                    prop_assert_eq!(&answered.proto, &offered.proto);
                    prop_assert_eq!(&answered.formats, &offered.formats);
                    prop_assert_eq!(answered.port, 0);
                }
                prop_assert_eq!(&a.sdp().times, &sd.times);
                prop_assert_eq!(parse(&a.sdp().to_bytes()), Ok(a.into_sdp()));
            }
            // Random c= lines are rarely IN IP4/IP6: only those errors are allowed.
            Err(e) => prop_assert!(matches!(e.status_code().code(), 400 | 488), "{}", e),
        }
    }
}
