//! Parser and serializer: real-world bodies, tolerance, every error path.

use super::super::*;

/// Joins lines with CRLF, the last included: canonical SDP text.
pub(super) fn crlf(lines: &[&str]) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

fn parse_str(text: &str) -> Result<SessionDescription, SdpError> {
    parse(text.as_bytes())
}

/// Parses and checks the byte-identical round trip.
fn parse_lossless(lines: &[&str]) -> SessionDescription {
    let text = crlf(lines);
    let sd = match parse_str(&text) {
        Ok(sd) => sd,
        Err(e) => panic!("{e}\n{text}"),
    };
    assert_eq!(String::from_utf8(sd.to_bytes()).unwrap(), text);
    assert_eq!(sd.to_string(), text);
    assert_eq!(sd.validate(), Ok(()));
    sd
}

fn err(lines: &[&str]) -> SdpError {
    match parse_str(&crlf(lines)) {
        Ok(sd) => panic!("parsed: {sd:?}"),
        Err(e) => e,
    }
}

pub(super) const SIPP_UAC: &[&str] = &[
    "v=0",
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=audio 6000 RTP/AVP 0",
    "a=rtpmap:0 PCMU/8000",
];

pub(super) const RCS_GROUP_CHAT: &[&str] = &[
    "v=0",
    "o=- 3930412343 3930412343 IN IP4 192.0.2.10",
    "s=-",
    "c=IN IP4 192.0.2.10",
    "t=0 0",
    "m=message 20000 TCP/MSRP *",
    "a=path:msrp://192.0.2.10:20000/s1d8fk2;tcp",
    "a=accept-types:message/cpim application/im-iscomposing+xml",
    "a=accept-wrapped-types:*",
    "a=setup:active",
    "a=sendrecv",
];

pub(super) const BFCP: &[&str] = &[
    "v=0",
    "o=bob 2808844564 2808844564 IN IP4 198.51.100.1",
    "s=-",
    "c=IN IP4 198.51.100.1",
    "t=0 0",
    "m=application 50000 TCP/BFCP *",
    "a=setup:active",
    "a=connection:new",
    "a=floorctrl:c-only",
    "a=bfcpver:1",
];

pub(super) const MULTI: &[&str] = &[
    "v=0",
    "o=alice 2890844526 2890844527 IN IP4 203.0.113.5",
    "s=Team meeting",
    "i=weekly",
    "c=IN IP4 203.0.113.5",
    "b=AS:2048",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "a=x-unknown-session:keep me",
    "m=audio 49170 RTP/AVP 0 8 101",
    "b=AS:64",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=label:1",
    "a=sendrecv",
    "m=video 51372 RTP/AVP 99",
    "c=IN IP6 2001:db8::5",
    "a=rtpmap:99 H264/90000",
    "a=fmtp:99 profile-level-id=42e01f;packetization-mode=1",
    "a=label:2",
    "a=content:main",
    "a=recvonly",
    "m=message 2855 TCP/TLS/MSRP *",
    "a=path:msrps://203.0.113.5:2855/kjhd37s2s20w2a;tcp",
    "a=accept-types:message/cpim text/plain",
    "a=max-size:131072",
    "a=setup:actpass",
    "m=application 50000 TCP/BFCP *",
    "a=setup:active",
    "a=connection:new",
    "a=floorctrl:c-only s-only",
    "a=x-empty-value:",
    "a=x-flag",
];

#[test]
fn sipp_default_uac_offer() {
    let sd = parse_lossless(SIPP_UAC);
    assert_eq!(sd.version, 0);
    assert_eq!(sd.origin.username, "user1");
    assert_eq!(sd.origin.session_id, "53655765");
    assert_eq!(sd.origin.session_version, "2353687637");
    assert_eq!(
        (sd.origin.nettype.as_str(), sd.origin.addrtype.as_str()),
        ("IN", "IP4")
    );
    assert_eq!(sd.origin.address, "127.0.0.1");
    assert_eq!(sd.session_name, "-");
    let c = sd.connection.as_ref().unwrap();
    assert_eq!(c.ip(), Some("127.0.0.1".parse().unwrap()));
    assert_eq!(sd.times, vec![TimeDescription::unbounded()]);
    assert_eq!(sd.media.len(), 1);
    let m = &sd.media[0];
    assert_eq!(
        (m.media.as_str(), m.port, m.proto.as_str()),
        ("audio", 6000, "RTP/AVP")
    );
    assert_eq!(m.port_count, None);
    assert_eq!(m.formats, vec!["0"]);
    assert_eq!(m.attr_value(names::RTPMAP), Some("0 PCMU/8000"));
    assert_eq!(sd.media_direction(m), Direction::SendRecv);
    assert_eq!(sd.marked_direction(m), None);
    assert_eq!(sd.connections_for(m), sd.connection.as_slice());
}

#[test]
fn rcs_group_chat_msrp_offer() {
    let sd = parse_lossless(RCS_GROUP_CHAT);
    let m = &sd.media[0];
    assert_eq!(
        (m.media.as_str(), m.proto.as_str()),
        ("message", "TCP/MSRP")
    );
    assert_eq!(m.formats, vec!["*"]);
    assert_eq!(
        m.path().collect::<Vec<_>>(),
        vec!["msrp://192.0.2.10:20000/s1d8fk2;tcp"]
    );
    assert_eq!(
        m.accept_types().collect::<Vec<_>>(),
        vec!["message/cpim", "application/im-iscomposing+xml"]
    );
    assert_eq!(
        m.attr_words(names::ACCEPT_WRAPPED_TYPES)
            .collect::<Vec<_>>(),
        vec!["*"]
    );
    assert_eq!(m.setup(), Some("active"));
    assert_eq!(m.direction(), Some(Direction::SendRecv));
    assert_eq!(sd.marked_direction(m), Some(Direction::SendRecv));
    assert_eq!(m.attr(names::SENDRECV), Some(&Attribute::flag("sendrecv")));
    assert!(!m.has_attr(names::LABEL));
    assert_eq!(m.label(), None);
}

#[test]
fn bfcp_offer() {
    let sd = parse_lossless(BFCP);
    let m = &sd.media[0];
    assert_eq!(
        (m.media.as_str(), m.port, m.proto.as_str()),
        ("application", 50000, "TCP/BFCP")
    );
    assert_eq!(m.floorctrl().collect::<Vec<_>>(), vec!["c-only"]);
    assert_eq!(m.setup(), Some("active"));
    assert_eq!(m.attr_value(names::CONNECTION), Some("new"));
    assert_eq!(m.attr_value(names::BFCPVER), Some("1"));
}

#[test]
fn audio_video_msrp_bfcp_offer() {
    let sd = parse_lossless(MULTI);
    assert_eq!(sd.information.as_deref(), Some("weekly"));
    assert_eq!(
        sd.bandwidths,
        vec![Bandwidth {
            bwtype: "AS".into(),
            bandwidth: 2048
        }]
    );
    assert_eq!(sd.attr_value("group"), Some("BUNDLE 0 1"));
    assert_eq!(sd.attrs("x-unknown-session").count(), 1);
    assert_eq!(sd.direction(), None);
    let kinds: Vec<_> = sd.media.iter().map(|m| m.media.as_str()).collect();
    assert_eq!(kinds, vec!["audio", "video", "message", "application"]);
    let audio = &sd.media[0];
    assert_eq!(audio.formats, vec!["0", "8", "101"]);
    assert_eq!(audio.attrs(names::RTPMAP).count(), 3);
    assert_eq!(audio.label(), Some("1"));
    let video = &sd.media[1];
    assert_eq!(video.connections[0].addrtype, "IP6");
    assert_eq!(sd.connections_for(video), video.connections.as_slice());
    assert_eq!(sd.media_direction(video), Direction::RecvOnly);
    let msrp = &sd.media[2];
    assert_eq!(msrp.proto, "TCP/TLS/MSRP");
    assert_eq!(sd.media_direction(msrp), Direction::SendRecv);
    let bfcp = &sd.media[3];
    assert_eq!(
        bfcp.floorctrl().collect::<Vec<_>>(),
        vec!["c-only", "s-only"]
    );
    // Unknown attributes stay, in order, with the flag / empty-value distinction.
    let tail: Vec<_> = bfcp.attributes.iter().rev().take(2).collect();
    assert_eq!(tail[0], &Attribute::flag("x-flag"));
    assert_eq!(tail[1], &Attribute::new("x-empty-value", ""));
}

#[test]
fn rfc8866_example_with_all_session_fields() {
    let sd = parse_lossless(&[
        "v=0",
        "o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1",
        "s=Call to John Smith",
        "i=SDP Offer #1",
        "u=http://www.jdoe.example.com/home.html",
        "e=Jane Doe <jane@jdoe.example.com>",
        "e=jdoe@example.com",
        "p=+1 617 555-6011",
        "c=IN IP4 198.51.100.1",
        "t=0 0",
        "m=audio 49170 RTP/AVP 0",
        "m=audio 49180 RTP/AVP 0",
        "m=video 51372 RTP/AVP 99",
        "c=IN IP6 2001:db8::2",
        "a=rtpmap:99 h263-1998/90000",
    ]);
    assert_eq!(
        sd.uri.as_deref(),
        Some("http://www.jdoe.example.com/home.html")
    );
    assert_eq!(sd.emails.len(), 2);
    assert_eq!(sd.phones, vec!["+1 617 555-6011"]);
}

#[test]
fn timing_repeat_zone_and_key() {
    let sd = parse_lossless(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s= ",
        "t=3034423619 3042462419",
        "r=604800 3600 0 90000",
        "r=7d 1h 0 25h",
        "z=2882844526 -1h 2898848070 0",
        "t=3042462419 0",
        "k=prompt",
        "a=recvonly",
        "m=audio 49230/2 RTP/AVP 96",
        "i=main audio",
        "c=IN IP4 233.252.0.1/127/2",
        "c=IN IP4 233.252.0.3/127",
        "b=AS:64",
        "b=TIAS:64000",
        "k=clear:secret",
        "a=rtpmap:96 L16/16000/2",
    ]);
    assert_eq!(sd.session_name, " ");
    assert_eq!(sd.times.len(), 2);
    let t = &sd.times[0];
    assert_eq!((t.start, t.stop), (3034423619, 3042462419));
    assert_eq!(t.repeats[1].interval, "7d");
    assert_eq!(t.repeats[1].offsets, vec!["0", "25h"]);
    assert_eq!(
        t.zone_adjustments[0],
        ZoneAdjustment {
            time: 2882844526,
            offset: "-1h".into()
        }
    );
    assert_eq!(sd.key.as_deref(), Some("prompt"));
    let m = &sd.media[0];
    assert_eq!(m.port_count, Some(2));
    assert_eq!(m.connections[0].address, "233.252.0.1/127/2");
    assert_eq!(m.connections[0].ip(), None);
    assert_eq!(m.key.as_deref(), Some("clear:secret"));
    assert_eq!(sd.media_direction(m), Direction::RecvOnly);
}

#[test]
fn zone_line_right_after_t_is_accepted() {
    parse_lossless(&[
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "z=2882844526 -1h",
    ]);
}

#[test]
fn no_media_is_legal() {
    let sd = parse_lossless(&["v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "t=0 0"]);
    assert!(sd.media.is_empty());
    assert_eq!(sd.connection, None);
}

#[test]
fn free_text_and_attribute_values_are_kept_verbatim() {
    let sd = parse_lossless(&[
        "v=0",
        "o=- 0001 00 IN IP4 host.example.com",
        "s=  spaced  name\t",
        "i=",
        "t=0 0",
        "a=tool: with  spaces :and colons ",
        "a=x-utf8:grüße",
        "m=message 9 TCP/MSRP *",
    ]);
    assert_eq!(sd.origin.session_id, "0001");
    assert_eq!(sd.session_name, "  spaced  name\t");
    assert_eq!(sd.information.as_deref(), Some(""));
    assert_eq!(sd.attr_value("tool"), Some(" with  spaces :and colons "));
    assert_eq!(sd.attr_value("x-utf8"), Some("grüße"));
}

#[test]
fn lf_only_and_missing_final_line_end_are_accepted() {
    let canonical = crlf(SIPP_UAC);
    let expected = parse_str(&canonical).unwrap();
    let lf = SIPP_UAC.join("\n");
    assert_eq!(parse_str(&lf).unwrap(), expected);
    assert_eq!(parse_str(&(lf.clone() + "\n")).unwrap(), expected);
    assert_eq!(parse_str(&SIPP_UAC.join("\r\n")).unwrap(), expected);
    // Mixed line ends, trailing blank lines, a final CR without LF.
    let mixed = format!(
        "{}\r\n{}\n\r\n\n",
        SIPP_UAC[..3].join("\n"),
        SIPP_UAC[3..].join("\r\n")
    );
    assert_eq!(parse_str(&mixed).unwrap(), expected);
    assert_eq!(
        parse_str(&(SIPP_UAC.join("\r\n") + "\r")).unwrap(),
        expected
    );
    // Output is always canonical CRLF.
    assert_eq!(parse_str(&lf).unwrap().to_string(), canonical);
}

#[test]
fn extra_spaces_in_structured_lines_are_normalised() {
    let sd = parse_str(&crlf(&[
        "v=0",
        "o=user1  53655765 2353687637 IN IP4 127.0.0.1 ",
        "s=-",
        "c=IN  IP4 127.0.0.1",
        "t=0  0",
        "m=audio  6000 RTP/AVP  0 ",
    ]))
    .unwrap();
    assert_eq!(sd.media[0].formats, vec!["0"]);
    assert_eq!(sd.to_string(), crlf(&SIPP_UAC[..6]));
}

#[test]
fn limits_are_configurable() {
    let text = crlf(MULTI);
    let lines = MULTI.len();
    let exact = Limits {
        max_lines: lines,
        max_media: 4,
    };
    assert!(parse_with_limits(text.as_bytes(), &exact).is_ok());
    assert_eq!(
        parse_with_limits(
            text.as_bytes(),
            &Limits {
                max_lines: lines - 1,
                ..exact
            }
        ),
        Err(SdpError::TooManyLines {
            line: lines,
            limit: lines - 1
        })
    );
    assert_eq!(
        parse_with_limits(
            text.as_bytes(),
            &Limits {
                max_media: 3,
                ..exact
            }
        ),
        Err(SdpError::TooManyMedia { line: 30, limit: 3 })
    );
    assert_eq!(
        Limits::default(),
        Limits {
            max_lines: 1024,
            max_media: 64
        }
    );
}

#[test]
fn default_limits_reject_huge_bodies() {
    let mut lines: Vec<String> = SIPP_UAC.iter().map(|s| s.to_string()).collect();
    lines.extend((0..1100).map(|i| format!("a=x:{i}")));
    let text = lines.join("\r\n");
    let e = parse_str(&text).unwrap_err();
    assert_eq!(
        e,
        SdpError::TooManyLines {
            line: 1025,
            limit: 1024
        }
    );
    assert_eq!(e.to_string(), "line 1025: more than 1024 lines");

    let mut lines: Vec<&str> = SIPP_UAC[..5].to_vec();
    lines.extend(std::iter::repeat_n("m=audio 0 RTP/AVP 0", 65));
    assert_eq!(
        err(&lines),
        SdpError::TooManyMedia {
            line: 70,
            limit: 64
        }
    );
}

// ---- error paths -------------------------------------------------------------------------

#[test]
fn missing_required_lines() {
    let e = parse(b"").unwrap_err();
    assert_eq!(e.to_string(), "line 1: missing v=");
    assert_eq!(
        parse(b"\r\n\r\n").unwrap_err(),
        SdpError::Missing {
            line: 1,
            field: 'v'
        }
    );
    assert_eq!(
        err(&SIPP_UAC[1..]),
        SdpError::Missing {
            line: 1,
            field: 'v'
        }
    );

    let e = err(&["v=0", "s=-", "t=0 0"]);
    assert_eq!(e.to_string(), "line 2: missing o=");
    assert_eq!(e.line(), 2);
    assert_eq!(err(&["v=0"]).to_string(), "line 2: missing o=");
    assert_eq!(
        err(&["v=0", SIPP_UAC[1], "t=0 0"]).to_string(),
        "line 3: missing s="
    );
    assert_eq!(err(&SIPP_UAC[..2]).to_string(), "line 3: missing s=");

    // t= missing at the end, before a=/k=, and before the first m=.
    assert_eq!(err(&SIPP_UAC[..4]).to_string(), "line 5: missing t=");
    assert_eq!(
        err(&[SIPP_UAC[0], SIPP_UAC[1], SIPP_UAC[2], "a=sendrecv"]).to_string(),
        "line 4: missing t="
    );
    assert_eq!(
        err(&[SIPP_UAC[0], SIPP_UAC[1], SIPP_UAC[2], "k=prompt"]).to_string(),
        "line 4: missing t="
    );
    let no_t = [
        SIPP_UAC[0],
        SIPP_UAC[1],
        SIPP_UAC[2],
        SIPP_UAC[3],
        SIPP_UAC[5],
    ];
    assert_eq!(
        err(&no_t),
        SdpError::Missing {
            line: 5,
            field: 't'
        }
    );
}

#[test]
fn version_must_be_zero() {
    let mut lines = SIPP_UAC.to_vec();
    lines[0] = "v=1";
    assert_eq!(
        err(&lines).to_string(),
        "line 1: invalid v= line: version must be 0"
    );
    lines[0] = "v= 0";
    assert!(matches!(
        err(&lines),
        SdpError::InvalidField {
            line: 1,
            field: 'v',
            ..
        }
    ));
}

#[test]
fn not_utf8() {
    let mut body = crlf(SIPP_UAC).into_bytes();
    let at = body.windows(2).position(|w| w == b"s=").unwrap() + 2;
    body[at] = 0xFF;
    let e = parse(&body).unwrap_err();
    assert_eq!(e, SdpError::NotUtf8 { line: 3 });
    assert_eq!(e.to_string(), "line 3: not valid UTF-8");
    assert_eq!(parse(&[0xC3]).unwrap_err(), SdpError::NotUtf8 { line: 1 });
}

#[test]
fn malformed_lines() {
    let with_line = |line: &'static str| {
        let mut lines = SIPP_UAC.to_vec();
        lines.insert(5, line);
        err(&lines)
    };
    for bad in ["foo", "a", "=x", "A=x", "a =x", "1=x", "é=x", " a=x"] {
        assert_eq!(with_line(bad), SdpError::Malformed { line: 6 }, "{bad:?}");
    }
    assert_eq!(
        with_line("a").to_string(),
        "line 6: not a <type>=<value> line"
    );
    assert_eq!(
        with_line("x=1"),
        SdpError::UnknownType {
            line: 6,
            field: 'x'
        }
    );
    assert_eq!(with_line("x=1").to_string(), "line 6: unknown line type x=");
    assert_eq!(with_line("a=x\0y"), SdpError::ControlChar { line: 6 });
    assert_eq!(
        with_line("a=x\ry").to_string(),
        "line 6: forbidden control character"
    );
    assert_eq!(with_line(""), SdpError::EmptyLine { line: 6 });
    assert_eq!(with_line("").to_string(), "line 6: empty line");
}

#[test]
fn session_order_is_enforced() {
    let head = &SIPP_UAC[..3];
    let body = |tail: &[&'static str]| {
        let mut lines = head.to_vec();
        lines.extend_from_slice(tail);
        err(&lines)
    };
    let e = body(&["t=0 0", "c=IN IP4 127.0.0.1"]);
    assert_eq!(
        e,
        SdpError::OutOfOrder {
            line: 5,
            field: 'c'
        }
    );
    assert_eq!(e.to_string(), "line 5: c= out of order");
    assert_eq!(
        body(&["c=IN IP4 127.0.0.1", "i=x", "t=0 0"]),
        SdpError::OutOfOrder {
            line: 5,
            field: 'i'
        }
    );
    assert_eq!(
        body(&["e=a@example.com", "u=http://x", "t=0 0"]),
        SdpError::OutOfOrder {
            line: 5,
            field: 'u'
        }
    );
    assert_eq!(
        body(&["b=AS:1", "c=IN IP4 127.0.0.1", "t=0 0"]),
        SdpError::OutOfOrder {
            line: 5,
            field: 'c'
        }
    );
    assert_eq!(
        body(&["r=1 1 0", "t=0 0"]),
        SdpError::OutOfOrder {
            line: 4,
            field: 'r'
        }
    );
    assert_eq!(
        body(&["z=1 0", "t=0 0"]),
        SdpError::OutOfOrder {
            line: 4,
            field: 'z'
        }
    );
    assert_eq!(
        body(&["t=0 0", "z=1 0", "r=1 1 0"]),
        SdpError::OutOfOrder {
            line: 6,
            field: 'r'
        }
    );
    assert_eq!(
        body(&["t=0 0", "a=x", "t=0 0"]),
        SdpError::OutOfOrder {
            line: 6,
            field: 't'
        }
    );
    assert_eq!(
        body(&["t=0 0", "a=x", "r=1 1 0"]),
        SdpError::OutOfOrder {
            line: 6,
            field: 'r'
        }
    );
    assert_eq!(
        body(&["t=0 0", "k=x", "z=1 0"]),
        SdpError::OutOfOrder {
            line: 6,
            field: 'z'
        }
    );
    assert_eq!(
        body(&["t=0 0", "a=x", "k=x"]),
        SdpError::OutOfOrder {
            line: 6,
            field: 'k'
        }
    );
}

#[test]
fn session_duplicates_are_rejected() {
    let head = &SIPP_UAC[..3];
    let body = |tail: &[&'static str]| {
        let mut lines = head.to_vec();
        lines.extend_from_slice(tail);
        err(&lines)
    };
    let e = body(&["c=IN IP4 127.0.0.1", "c=IN IP4 127.0.0.2", "t=0 0"]);
    assert_eq!(
        e,
        SdpError::Duplicate {
            line: 5,
            field: 'c'
        }
    );
    assert_eq!(e.to_string(), "line 5: duplicate c=");
    assert_eq!(
        body(&["i=a", "i=b", "t=0 0"]),
        SdpError::Duplicate {
            line: 5,
            field: 'i'
        }
    );
    assert_eq!(
        body(&["u=a", "u=b", "t=0 0"]),
        SdpError::Duplicate {
            line: 5,
            field: 'u'
        }
    );
    assert_eq!(
        body(&["t=0 0", "k=a", "k=b"]),
        SdpError::Duplicate {
            line: 6,
            field: 'k'
        }
    );
    assert_eq!(
        body(&["t=0 0", "z=1 0", "z=2 0"]),
        SdpError::Duplicate {
            line: 6,
            field: 'z'
        }
    );
    assert_eq!(
        body(&["s=again", "t=0 0"]),
        SdpError::Duplicate {
            line: 4,
            field: 's'
        }
    );
    assert_eq!(
        body(&["t=0 0", "v=0"]),
        SdpError::Duplicate {
            line: 5,
            field: 'v'
        }
    );
    assert_eq!(
        body(&["t=0 0", "o=- 1 1 IN IP4 1.2.3.4"]),
        SdpError::Duplicate {
            line: 5,
            field: 'o'
        }
    );
}

#[test]
fn media_order_and_placement_are_enforced() {
    let body = |tail: &[&'static str]| {
        let mut lines = SIPP_UAC[..6].to_vec();
        lines.extend_from_slice(tail);
        err(&lines)
    };
    let e = body(&["a=x", "c=IN IP4 127.0.0.1"]);
    assert_eq!(
        e,
        SdpError::OutOfOrder {
            line: 8,
            field: 'c'
        }
    );
    assert_eq!(
        body(&["b=AS:1", "i=x"]),
        SdpError::OutOfOrder {
            line: 8,
            field: 'i'
        }
    );
    assert_eq!(
        body(&["k=x", "b=AS:1"]),
        SdpError::OutOfOrder {
            line: 8,
            field: 'b'
        }
    );
    assert_eq!(
        body(&["a=x", "k=x"]),
        SdpError::OutOfOrder {
            line: 8,
            field: 'k'
        }
    );
    assert_eq!(
        body(&["i=a", "i=b"]),
        SdpError::Duplicate {
            line: 8,
            field: 'i'
        }
    );
    assert_eq!(
        body(&["k=a", "k=b"]),
        SdpError::Duplicate {
            line: 8,
            field: 'k'
        }
    );
    for (line, field) in [
        ("t=0 0", 't'),
        ("v=0", 'v'),
        ("o=- 1 1 IN IP4 1.2.3.4", 'o'),
        ("s=-", 's'),
        ("u=x", 'u'),
        ("e=x", 'e'),
        ("p=x", 'p'),
        ("r=1 1 0", 'r'),
        ("z=1 0", 'z'),
    ] {
        assert_eq!(
            body(&[line]),
            SdpError::NotInMedia { line: 7, field },
            "{line}"
        );
    }
    assert_eq!(
        body(&["t=0 0"]).to_string(),
        "line 7: t= not allowed in a media description"
    );
    // Order restarts with every m= section; several c= and b= are fine.
    let mut ok = SIPP_UAC.to_vec();
    ok.extend_from_slice(&[
        "m=video 0 RTP/AVP 31",
        "i=v",
        "c=IN IP4 192.0.2.1",
        "c=IN IP4 192.0.2.2",
        "b=AS:1",
        "b=CT:2",
        "k=x",
        "a=y",
    ]);
    parse_lossless(&ok);
}

#[test]
fn invalid_fields() {
    let replace = |index: usize, line: &'static str| {
        let mut lines = SIPP_UAC.to_vec();
        lines[index] = line;
        err(&lines)
    };
    let invalid = |e: SdpError| match e {
        SdpError::InvalidField { line, field, .. } => (line, field),
        other => panic!("{other:?}"),
    };
    let e = replace(1, "o=user1 53655765 2353687637 IN IP4");
    assert_eq!(e.to_string(), "line 2: invalid o= line: expected 6 fields");
    assert_eq!(
        invalid(replace(1, "o=user1 1 2 IN IP4 127.0.0.1 extra")),
        (2, 'o')
    );
    assert_eq!(
        invalid(replace(1, "o=user1 x1 2 IN IP4 127.0.0.1")),
        (2, 'o')
    );
    assert_eq!(
        invalid(replace(1, "o=user1 1 +2 IN IP4 127.0.0.1")),
        (2, 'o')
    );
    assert_eq!(
        invalid(replace(1, "o=user1 1 2 I,N IP4 127.0.0.1")),
        (2, 'o')
    );
    assert_eq!(
        invalid(replace(1, "o=us\ter1 1 2 IN IP4 127.0.0.1")),
        (2, 'o')
    );
    assert_eq!(invalid(replace(3, "c=IN IP4")), (4, 'c'));
    assert_eq!(invalid(replace(3, "c=IN IP4 1.2.3.4 x")), (4, 'c'));
    assert_eq!(invalid(replace(3, "c=I/N IP4 1.2.3.4")), (4, 'c'));
    assert_eq!(invalid(replace(4, "t=0")), (5, 't'));
    assert_eq!(invalid(replace(4, "t=0 0 0")), (5, 't'));
    assert_eq!(invalid(replace(4, "t=+1 0")), (5, 't'));
    assert_eq!(invalid(replace(4, "t=99999999999999999999999 0")), (5, 't'));
    assert_eq!(
        replace(5, "m=audio 70000 RTP/AVP 0").to_string(),
        "line 6: invalid m= line: port must be a number below 65536"
    );
    assert_eq!(invalid(replace(5, "m=audio 6000")), (6, 'm'));
    assert_eq!(invalid(replace(5, "m=audio 6000 RTP/AVP")), (6, 'm'));
    assert_eq!(invalid(replace(5, "m=audio -1 RTP/AVP 0")), (6, 'm'));
    assert_eq!(invalid(replace(5, "m=audio 6000/ RTP/AVP 0")), (6, 'm'));
    assert_eq!(invalid(replace(5, "m=audio 6000/x RTP/AVP 0")), (6, 'm'));
    assert_eq!(invalid(replace(5, "m=audio 6000 RTP//AVP 0")), (6, 'm'));
    assert_eq!(invalid(replace(5, "m=audio 6000 RTP/AVP/ 0")), (6, 'm'));
    assert_eq!(invalid(replace(5, "m=au:dio 6000 RTP/AVP 0")), (6, 'm'));
    assert_eq!(invalid(replace(5, "m=audio 6000 RTP/AVP 0,8")), (6, 'm'));
    assert_eq!(
        replace(6, "a=:x").to_string(),
        "line 7: invalid a= line: attribute name must be a token"
    );
    assert_eq!(invalid(replace(6, "a=")), (7, 'a'));
    assert_eq!(invalid(replace(6, "a=two words")), (7, 'a'));
    assert_eq!(invalid(replace(6, "a=rtp map:0 PCMU/8000")), (7, 'a'));

    let with_b = |b: &'static str| {
        let mut lines = SIPP_UAC.to_vec();
        lines.insert(4, b);
        invalid(err(&lines))
    };
    assert_eq!(with_b("b=AS"), (5, 'b'));
    assert_eq!(with_b("b=AS:"), (5, 'b'));
    assert_eq!(with_b("b=AS:x"), (5, 'b'));
    assert_eq!(with_b("b=:64"), (5, 'b'));

    let with_time = |extra: &'static str| {
        let mut lines = SIPP_UAC.to_vec();
        lines.insert(5, extra);
        invalid(err(&lines))
    };
    assert_eq!(with_time("r=7d 1h"), (6, 'r'));
    assert_eq!(with_time("r=7x 1h 0"), (6, 'r'));
    assert_eq!(with_time("r=7d 1h -1"), (6, 'r'));
    assert_eq!(with_time("z="), (6, 'z'));
    assert_eq!(with_time("z=1"), (6, 'z'));
    assert_eq!(with_time("z=1 -1h 2"), (6, 'z'));
    assert_eq!(with_time("z=x 1h"), (6, 'z'));
    assert_eq!(with_time("z=1 --1h"), (6, 'z'));
}

#[test]
fn display_of_a_media_description_and_attribute() {
    let m = MediaDescription::new("message", 7394, "TCP/MSRP", ["*"])
        .with_connection(Connection::from_ip("2001:db8::7".parse().unwrap()))
        .with_attribute(Attribute::new(names::ACCEPT_TYPES, "message/cpim"))
        .with_attribute(Attribute::flag("x"));
    assert_eq!(
        m.to_string(),
        "m=message 7394 TCP/MSRP *\r\nc=IN IP6 2001:db8::7\r\na=accept-types:message/cpim\r\na=x\r\n"
    );
    assert_eq!(Attribute::new("a", "").to_string(), "a:");
    assert_eq!(Attribute::flag("a").words().count(), 0);
}

#[test]
fn validate_catches_unserializable_models() {
    let origin = Origin::new("-", 1, 1, "192.0.2.1".parse().unwrap());
    let good = SessionDescription::new(origin, "-");
    assert_eq!(good.validate(), Ok(()));
    let check = |f: &dyn Fn(&mut SessionDescription)| {
        let mut sd = good.clone();
        f(&mut sd);
        sd.validate().unwrap_err()
    };
    let e = check(&|sd| sd.origin.username = "a b".into());
    assert_eq!((e.media, e.field), (None, 'o'));
    assert_eq!(
        e.to_string(),
        "session: o=: username must be a non-whitespace string"
    );
    assert_eq!(check(&|sd| sd.version = 1).field, 'v');
    assert_eq!(check(&|sd| sd.origin.session_id = "x".into()).field, 'o');
    assert_eq!(check(&|sd| sd.origin.nettype = "I N".into()).field, 'o');
    assert_eq!(check(&|sd| sd.origin.address = String::new()).field, 'o');
    assert_eq!(check(&|sd| sd.session_name = "a\r\nm=x".into()).field, 's');
    assert_eq!(check(&|sd| sd.information = Some("\n".into())).field, 'i');
    assert_eq!(check(&|sd| sd.uri = Some("\0".into())).field, 'u');
    assert_eq!(check(&|sd| sd.emails.push("\r".into())).field, 'e');
    assert_eq!(check(&|sd| sd.phones.push("\r".into())).field, 'p');
    assert_eq!(check(&|sd| sd.key = Some("\r".into())).field, 'k');
    assert_eq!(
        check(&|sd| sd.connection = Some(Connection {
            nettype: "IN".into(),
            addrtype: "IP4".into(),
            address: "a b".into()
        }))
        .field,
        'c'
    );
    assert_eq!(
        check(&|sd| sd.bandwidths.push(Bandwidth {
            bwtype: "A:S".into(),
            bandwidth: 1
        }))
        .field,
        'b'
    );
    assert_eq!(check(&|sd| sd.times.clear()).field, 't');
    let repeat = Repeat {
        interval: "1".into(),
        active_duration: "1".into(),
        offsets: vec![],
    };
    assert_eq!(
        check(&|sd| sd.times[0].repeats.push(repeat.clone())).field,
        'r'
    );
    let zone = ZoneAdjustment {
        time: 1,
        offset: "1y".into(),
    };
    assert_eq!(
        check(&|sd| sd.times[0].zone_adjustments.push(zone.clone())).field,
        'z'
    );
    assert_eq!(
        check(&|sd| sd.attributes.push(Attribute::new("a:b", "c"))).field,
        'a'
    );
    assert_eq!(
        check(&|sd| sd.attributes.push(Attribute::new("ab", "c\r\n"))).field,
        'a'
    );

    let media = |f: &dyn Fn(&mut MediaDescription)| {
        let mut m = MediaDescription::new("audio", 1, "RTP/AVP", ["0"]);
        f(&mut m);
        check(&|sd| {
            sd.media = vec![
                MediaDescription::new("audio", 0, "RTP/AVP", ["0"]),
                m.clone(),
            ]
        })
    };
    let e = media(&|m| m.formats.clear());
    assert_eq!((e.media, e.field), (Some(1), 'm'));
    assert_eq!(
        e.to_string(),
        "media 1: m=: at least one format is required"
    );
    assert_eq!(media(&|m| m.formats.push("a b".into())).field, 'm');
    assert_eq!(media(&|m| m.media = "au dio".into()).field, 'm');
    assert_eq!(media(&|m| m.proto = "RTP/".into()).field, 'm');
    assert_eq!(media(&|m| m.information = Some("\n".into())).field, 'i');
    assert_eq!(media(&|m| m.key = Some("\n".into())).field, 'k');
    let bad_c = Connection {
        nettype: "IN".into(),
        addrtype: "IP 4".into(),
        address: "x".into(),
    };
    assert_eq!(media(&|m| m.connections.push(bad_c.clone())).field, 'c');
    assert_eq!(
        media(&|m| m.bandwidths.push(Bandwidth {
            bwtype: String::new(),
            bandwidth: 1
        }))
        .field,
        'b'
    );
    assert_eq!(
        media(&|m| m.attributes.push(Attribute::flag(""))).field,
        'a'
    );
}
