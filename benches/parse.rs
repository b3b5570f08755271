//! Parsing cost per message: SIP over UDP (one datagram) and over TCP (framer, then parser),
//! and the SDP offer/answer the focus runs for every join.
//!
//! `cargo bench --bench parse`

use bytes::{Bytes, BytesMut};
use cpm_focus::sdp::{self, AnswerContext, DefaultDeclineAll};
use cpm_focus::sip::{parse, Frame, Framer, Framing, Message, ParseLimits};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

/// The SDP offer of a typical audio join (what SIPp's uac sends, with an rtpmap).
const OFFER: &str = "v=0\r\n\
o=alice 53655765 2353687637 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0 8\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=sendrecv\r\n";

/// A typical dial-in INVITE with that offer (about 650 bytes).
fn invite() -> Vec<u8> {
    let head = format!(
        "INVITE sip:team@focus.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---77ba8f4c1e2d;rport\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@example.com>;tag=9fxced76sl\r\n\
         To: <sip:team@focus.example.com>\r\n\
         Call-ID: 3848276298220188511@192.0.2.10\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n\
         Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE\r\n\
         Supported: replaces, timer\r\n\
         User-Agent: bench-ua/1.0\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n",
        OFFER.len()
    );
    [head.as_bytes(), OFFER.as_bytes()].concat()
}

const BYE: &[u8] = b"BYE sip:team@192.0.2.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-524287-1---a1b2c3d4e5f6;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=9fxced76sl\r\n\
To: <sip:team@focus.example.com>;tag=5e1f0c2a9b7d4e31\r\n\
Call-ID: 3848276298220188511@192.0.2.10\r\n\
CSeq: 2 BYE\r\n\
User-Agent: bench-ua/1.0\r\n\
Content-Length: 0\r\n\r\n";

fn sip(c: &mut Criterion) {
    let invite = Bytes::from(invite());
    let limits = ParseLimits::default();
    assert!(
        (620..=680).contains(&invite.len()),
        "INVITE is {} bytes",
        invite.len()
    );
    assert!(matches!(
        parse(invite.clone(), Framing::Datagram, &limits),
        Ok(Message::Request(_))
    ));

    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Bytes(invite.len() as u64));
    g.bench_function("invite_datagram", |b| {
        b.iter(|| parse(black_box(invite.clone()), Framing::Datagram, &limits))
    });
    // Stream: the framer cuts the message out of the read buffer (no copy), then the parser
    // runs with Stream framing. Filling the buffer (the socket read) is setup, not measured.
    g.bench_function("invite_stream_framer_and_parse", |b| {
        let mut framer = Framer::new(65535);
        b.iter_batched_ref(
            || BytesMut::from(&invite[..]),
            |buf| match framer.decode(black_box(buf)) {
                Ok(Some(Frame::Message(m))) => parse(m, Framing::Stream, &limits),
                other => panic!("framer: {other:?}"),
            },
            BatchSize::SmallInput,
        )
    });
    let bye = Bytes::from_static(BYE);
    assert!(matches!(
        parse(bye.clone(), Framing::Datagram, &limits),
        Ok(Message::Request(_))
    ));
    g.throughput(Throughput::Bytes(bye.len() as u64));
    g.bench_function("bye_datagram", |b| {
        b.iter(|| parse(black_box(bye.clone()), Framing::Datagram, &limits))
    });
    g.finish();
}

fn sdp_offer_answer(c: &mut Criterion) {
    let ctx = AnswerContext {
        username: "-".into(),
        session_id: 7_263_541,
        session_version: 1,
        origin_address: "192.0.2.1".parse().unwrap(),
        connection_address: "192.0.2.1".parse().unwrap(),
    };
    let offer = sdp::parse(OFFER.as_bytes()).expect("offer parses");
    let answer = sdp::answer(&offer, &DefaultDeclineAll, &ctx).expect("offer answers");
    assert!(answer.is_signalling_only());
    let text = String::from_utf8(answer.sdp().to_bytes()).unwrap();
    assert!(text.contains("m=audio 0 RTP/AVP"), "{text}");

    let mut g = c.benchmark_group("sdp");
    g.bench_function("parse_offer", |b| {
        b.iter(|| sdp::parse(black_box(OFFER.as_bytes())))
    });
    g.bench_function("answer_decline_all", |b| {
        b.iter(|| sdp::answer(black_box(&offer), &DefaultDeclineAll, &ctx))
    });
    // What a join costs in SDP: parse the offer, answer it, write the answer.
    g.bench_function("parse_answer_serialize", |b| {
        b.iter(|| {
            let offer = sdp::parse(black_box(OFFER.as_bytes())).unwrap();
            sdp::answer(&offer, &DefaultDeclineAll, &ctx)
                .unwrap()
                .sdp()
                .to_bytes()
        })
    });
    g.finish();
}

criterion_group!(benches, sip, sdp_offer_answer);
criterion_main!(benches);
