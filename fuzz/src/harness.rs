//! One function per fuzz target: each feeds arbitrary bytes to a decoder the way the focus
//! does with peer input, then checks what must hold for whatever the decoder accepted. A panic
//! (an `assert!` here, or one inside the focus) is a finding.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`) and, on stable, by
//! `tests/fuzz_corpus.rs`, which replays every file of `fuzz/corpus/<target>/` through the
//! function of the same name ([`TARGETS`]).

use bytes::{Bytes, BytesMut};
use cpm_focus::sip;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("sip_framer", sip_framer),
    ("sip_message", sip_message),
    ("sdp", sdp),
    ("msrp", msrp),
    ("bfcp", bfcp),
    ("conference_info", conference_info),
    ("resource_lists", resource_lists),
    ("cpim", cpim),
    ("multipart", multipart),
    ("rtp", rtp),
    ("digest", digest),
];

/// The first byte picks a chunk size (1..=256), so one input is also a segmentation.
fn chunking(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (usize::from(b) + 1, rest),
        None => (1, data),
    }
}

/// The SIP stream framer (TCP): what it cuts must not depend on how the bytes were
/// segmented, and every frame goes through the message parser.
pub fn sip_framer(data: &[u8]) {
    let (piece, stream) = chunking(data);
    for max in [65535usize, 512] {
        let whole = frames_sip(stream, stream.len().max(1), max);
        let pieces = frames_sip(stream, piece, max);
        assert_eq!(whole, pieces, "SIP framing depends on segmentation");
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Cut {
    Message(Bytes),
    Ping,
    Error(sip::FrameError),
}

fn frames_sip(stream: &[u8], piece: usize, max: usize) -> Vec<Cut> {
    let mut framer = sip::Framer::new(max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in stream.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match framer.decode(&mut buf) {
                Ok(Some(sip::Frame::Message(m))) => {
                    assert!(m.len() <= max, "frame over the maximum");
                    let _ = sip::parse(
                        m.clone(),
                        sip::Framing::Stream,
                        &sip::ParseLimits::default(),
                    );
                    out.push(Cut::Message(m));
                }
                Ok(Some(sip::Frame::Ping)) => out.push(Cut::Ping),
                Ok(None) => break,
                Err(e) => {
                    out.push(Cut::Error(e));
                    return out;
                }
            }
        }
    }
    out
}

/// The SIP message parser (a datagram, and the same bytes as one framed stream message), and
/// what the focus does next with a request: the RFC 3261 §8.2 checks, identity, a dialog, and
/// a response that must parse back.
pub fn sip_message(data: &[u8]) {
    let limits = sip::ParseLimits::default();
    for framing in [sip::Framing::Datagram, sip::Framing::Stream] {
        match sip::parse(Bytes::copy_from_slice(data), framing, &limits) {
            Ok(sip::Message::Request(req)) => request(&req),
            Ok(sip::Message::Response(resp)) => {
                for v in resp.headers.values(sip::HeaderName::Contact) {
                    let _ = sip::NameAddr::parse(v);
                }
            }
            Err(sip::ParseError::Reject(rejected)) => {
                let source = "192.0.2.1:5060".parse().unwrap();
                let bytes = sip::MessageWriter::reject(&rejected, source, "tag").finish_empty();
                assert!(bytes.starts_with(b"SIP/2.0 "));
            }
            Err(sip::ParseError::Drop(_)) => {}
        }
    }
}

fn request(req: &sip::Request) {
    use cpm_focus::sip::HeaderName as H;
    for name in [
        H::Contact,
        H::ReferTo,
        H::ReferredBy,
        H::PAssertedIdentity,
        H::Route,
        H::RecordRoute,
    ] {
        for v in req.headers.values(name) {
            if let Ok(a) = sip::NameAddr::parse(v) {
                let _ = a.uri.aor();
                let _ = a.uri.user_unescaped();
                let mut s = String::new();
                a.write_without_tag(&mut s);
                let back = sip::NameAddr::parse(&s)
                    .unwrap_or_else(|e| panic!("{s:?} written from {v:?} does not parse: {e}"));
                assert_eq!(back.uri, a.uri, "{s:?}");
            }
        }
    }
    for v in req.headers.values(H::Via) {
        let _ = sip::Via::parse_lenient(v);
    }
    let _ = cpm_focus::supervisor::checks::check(req);
    let source: std::net::SocketAddr = "192.0.2.1:5060".parse().unwrap();
    let trust = cpm_focus::policy::Trust {
        mode: cpm_focus::config::IdentityMode::Asserted,
        hosts: vec![source.ip()],
    };
    let who = trust.identify(req, source.ip(), None);
    let _ = who.as_sender(&req.from);
    let flow = cpm_focus::transport::Target {
        protocol: cpm_focus::transport::Protocol::Udp,
        addr: source,
        conn: None,
    };
    let _ = cpm_focus::dialog::Dialog::uas(req, "local-tag", flow);
    // Every response the focus writes to a request it accepted parses back, copying it.
    let bytes =
        sip::MessageWriter::response_to(req, source, 486, "Busy Here", Some("t1")).finish_empty();
    match sip::parse(
        bytes.clone(),
        sip::Framing::Stream,
        &sip::ParseLimits::default(),
    ) {
        Ok(sip::Message::Response(r)) => {
            assert_eq!(r.call_id(), req.call_id());
            assert_eq!(r.cseq, req.cseq);
            assert_eq!(r.via.branch(), req.via.branch());
        }
        other => panic!(
            "response does not parse back: {other:?}\n{}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

/// SDP (RFC 8866): what parses serializes to something that parses to the same, and the
/// focus's answer to it as an offer never panics.
pub fn sdp(data: &[u8]) {
    use cpm_focus::sdp;
    let Ok(parsed) = sdp::parse(data) else {
        return;
    };
    let text = parsed.to_bytes();
    let again = sdp::parse_with_limits(&text, &sdp::Limits::UNLIMITED).unwrap_or_else(|e| {
        panic!(
            "serialized SDP does not parse: {e}\n{}",
            String::from_utf8_lossy(&text)
        )
    });
    assert_eq!(again, parsed, "SDP round trip");
    let ctx = sdp::AnswerContext {
        username: "-".into(),
        session_id: 1,
        session_version: 1,
        origin_address: [192, 0, 2, 1].into(),
        connection_address: [192, 0, 2, 1].into(),
    };
    if let Ok(answer) = sdp::answer(&parsed, &sdp::DefaultDeclineAll, &ctx) {
        let _ = answer.sdp().to_bytes();
    }
    sdp_media_lines(&parsed);
}

/// What sessions read from offered media lines beyond the SDP model: the BFCP line
/// (RFC 8856) and the audio codec (payload type, rtpmap, fmtp).
fn sdp_media_lines(parsed: &cpm_focus::sdp::SessionDescription) {
    use cpm_focus::push_to_talk::rtp::{choose, Codec};
    use cpm_focus::push_to_talk::sdp as bfcp_sdp;
    let group = [
        Codec::parse("opus/48000/2").expect("codec"),
        Codec::parse("PCMA/8000").expect("codec"),
        Codec::parse("PCMU/8000").expect("codec"),
    ];
    for m in &parsed.media {
        if bfcp_sdp::can_serve(m) {
            let line = bfcp_sdp::ServerLine {
                port: 5070,
                conference_id: 1,
                user_id: 2,
                floor_id: 3,
                media_label: "audio",
            };
            let _ = bfcp_sdp::answer_line(m, &line);
        }
        if let Some(choice) = choose(&group, m) {
            assert!(
                choice.payload_type < 128,
                "payload type {}",
                choice.payload_type
            );
            assert!(
                m.formats
                    .iter()
                    .any(|f| f.parse::<u8>().ok() == Some(choice.payload_type)),
                "chosen payload type {} not offered",
                choice.payload_type
            );
        }
    }
}

/// MSRP (RFC 4975): framing independent of segmentation, every frame parsed, requests
/// reassembled, and what parses re-encodes.
pub fn msrp(data: &[u8]) {
    use cpm_focus::media::msrp;
    let (piece, stream) = chunking(data);
    let run = |piece: usize| {
        let mut framer = msrp::Framer::new(4096);
        let mut reassembler = msrp::Reassembler::new(msrp::ReassemblyLimits::default());
        let limits = msrp::ParseLimits::default();
        let mut buf = BytesMut::new();
        let mut cuts: Vec<Result<Bytes, msrp::FrameError>> = Vec::new();
        for chunk in stream.chunks(piece) {
            buf.extend_from_slice(chunk);
            loop {
                match framer.decode(&mut buf) {
                    Ok(Some(frame)) => {
                        cuts.push(Ok(frame.bytes.clone()));
                        match frame.parse(&limits) {
                            Ok(msrp::Message::Request(req)) => {
                                let mut out = BytesMut::new();
                                let _ = req.encode(&mut out);
                                let _ =
                                    msrp::Response::for_request(&req, 200, None).encode(&mut out);
                                let _ = reassembler.accept(req);
                            }
                            Ok(msrp::Message::Response(resp)) => {
                                let _ = resp.encode(&mut BytesMut::new());
                            }
                            Err(e) => {
                                let _ = e.fault();
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(msrp::FrameError::Oversized { head }) => {
                        let _ = msrp::parse_head(head.clone(), &limits);
                        cuts.push(Ok(head));
                    }
                    Err(e) => {
                        cuts.push(Err(e));
                        return cuts;
                    }
                }
            }
        }
        cuts
    };
    assert_eq!(
        run(stream.len().max(1)),
        run(piece),
        "MSRP framing depends on segmentation"
    );
}

/// BFCP (RFC 8855): datagrams, fragments and the stream decoder (the codec's own harness).
pub fn bfcp(data: &[u8]) {
    cpm_focus::push_to_talk::bfcp::fuzz_decode(data);
}

/// conference-info (RFC 4575): what parses renders to a document that parses to the same.
pub fn conference_info(data: &[u8]) {
    use cpm_focus::conference_info as ci;
    let Ok(doc) = ci::parse(data, &ci::Limits::default()) else {
        return;
    };
    let bytes = ci::to_bytes(&doc);
    let unlimited = ci::Limits {
        max_bytes: usize::MAX,
        max_depth: usize::MAX,
        max_elements: usize::MAX,
    };
    let again = ci::parse(&bytes, &unlimited).unwrap_or_else(|e| {
        panic!(
            "rendered conference-info does not parse: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(again, doc, "conference-info round trip");
}

/// resource-lists (RFC 4826, RFC 5364): the entries the focus would act on, deduplicated,
/// render to a list that parses to the same entries.
pub fn resource_lists(data: &[u8]) {
    use cpm_focus::body::resource_lists as rl;
    let limits = rl::ListLimits::default();
    let Ok(mut list) = rl::parse(data, &limits) else {
        return;
    };
    assert!(list.entries.len() <= limits.max_entries);
    list.dedup();
    let text = rl::render(&list.entries);
    let again = rl::parse(text.as_bytes(), &rl::ListLimits::default())
        .unwrap_or_else(|e| panic!("rendered list does not parse: {e}\n{text}"));
    assert_eq!(again.entries, list.entries, "resource-lists round trip");
    let _ = rl::render_history(&list.entries);
}

/// CPIM (RFC 3862): what parses encodes to a message that parses again.
pub fn cpim(data: &[u8]) {
    use cpm_focus::media::cpim;
    let limits = cpim::CpimLimits::default();
    let Ok(msg) = cpim::Cpim::parse(Bytes::copy_from_slice(data), &limits) else {
        return;
    };
    let _ = msg.imdn_message_id();
    let _ = msg.date_time();
    let _ = msg.private_recipients("sip:team@focus.example.com");
    if let Ok(bytes) = msg.to_bytes() {
        cpim::Cpim::parse(bytes.clone(), &limits).unwrap_or_else(|e| {
            panic!(
                "encoded CPIM does not parse: {e}\n{}",
                String::from_utf8_lossy(&bytes)
            )
        });
    }
}

/// multipart (RFC 2046): the first line is the Content-Type value, the rest the body; what
/// parses encodes to a body that parses to the same parts.
pub fn multipart(data: &[u8]) {
    use cpm_focus::body::multipart as mp;
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(content_type) = std::str::from_utf8(&data[..split]) else {
        return;
    };
    let body = Bytes::copy_from_slice(data.get(split + 1..).unwrap_or(&[]));
    let limits = mp::MultipartLimits::default();
    let Ok(parsed) = mp::parse(content_type.trim_end_matches('\r'), body, &limits) else {
        return;
    };
    let _ = parsed.find_by_disposition(mp::RECIPIENT_LIST);
    let _ = parsed.find_by_content_id("cid:list@example.com");
    if let Ok((ct, bytes)) = parsed.encode_with_new_boundary() {
        let again = mp::parse(&ct, bytes, &limits).expect("encoded multipart parses");
        assert_eq!(again.parts.len(), parsed.parts.len());
        for (a, b) in again.parts.iter().zip(&parsed.parts) {
            assert_eq!(a.body, b.body, "multipart round trip");
        }
    }
}

/// RTP (RFC 3550): the header parser, and the forwarder's in-place rewrite of what parses.
pub fn rtp(data: &[u8]) {
    use cpm_focus::push_to_talk::rtp;
    let Ok(header) = rtp::RtpHeader::parse(data) else {
        return;
    };
    assert!(header.payload_offset <= data.len());
    let mut packet = data.to_vec();
    rtp::rewrite(&mut packet, 7, 8, 9, !header.marker);
    let again = rtp::RtpHeader::parse(&packet).expect("a rewritten packet parses");
    assert_eq!(
        (again.sequence, again.timestamp, again.ssrc, again.marker),
        (7, 8, 9, !header.marker)
    );
    assert_eq!(again.payload_offset, header.payload_offset);
}

/// A SIP `Authorization` value (digest authentication): what parses has a nonce count and a
/// response of its algorithm's length, and checking it against any HA1 never panics.
pub fn digest(data: &[u8]) {
    use cpm_focus::auth::{digest_realm, DigestCredentials};
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let _ = digest_realm(value);
    let Ok(c) = DigestCredentials::parse(value) else {
        return;
    };
    assert!(c.nc > 0, "a nonce count of zero was accepted");
    assert_eq!(c.response.len(), c.algorithm.hex_len());
    let ha1 = c.algorithm.ha1(&c.username, &c.realm, "password");
    let _ = c.verify(&ha1, "INVITE");
}
