//! Conference-info documents as the focus renders them for NOTIFY: a session with N
//! participants (joined through `SessionState::on_request` with real INVITEs), then the
//! document for the latest roster change, full (a new or refreshed subscriber) and partial
//! (everyone else), built from the session and rendered to XML.
//!
//! `cargo bench --bench conference_info`

use bytes::Bytes;
use cpm_focus::conference_info::{self as ci, ConferenceInfo};
use cpm_focus::session::{Effect, RequestCtx, SessionSettings, SessionState};
use cpm_focus::sip::{parse, Framing, Message, ParseLimits, Request};
use cpm_focus::transport::{Protocol, Target};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

const SIZES: [usize; 3] = [10, 100, 1000];

fn settings() -> Arc<SessionSettings> {
    Arc::new(SessionSettings::example())
}

/// The dial-in INVITE of participant `i`, with an audio offer.
fn invite(i: usize) -> Request {
    let sdp = format!(
        "v=0\r\no=user{i} 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        10_000 + 2 * i
    );
    let text = format!(
        "INVITE sip:team@focus.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-join-{i}\r\n\
         Max-Forwards: 70\r\n\
         From: \"User {i}\" <sip:user{i}@example.com>;tag=from-{i}\r\n\
         To: <sip:team@focus.example.com>\r\n\
         Call-ID: join-{i}@192.0.2.10\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:user{i}@192.0.2.10:5060>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    match parse(
        Bytes::from(text),
        Framing::Datagram,
        &ParseLimits::default(),
    ) {
        Ok(Message::Request(r)) => r,
        other => panic!("INVITE {i} does not parse: {other:?}"),
    }
}

/// A session with `n` participants; the last join is the roster change to render. Returns
/// the session and the roster change counter before that join (the partial document's base).
fn session(n: usize) -> (SessionState, u64) {
    let now = Instant::now();
    let mut s = SessionState::new(settings(), now, SystemTime::now());
    let source = Target {
        protocol: Protocol::Udp,
        addr: SocketAddr::from(([192, 0, 2, 10], 5060)),
        conn: None,
    };
    for i in 0..n {
        let ctx = RequestCtx {
            txn: i as u64 + 1,
            source,
            authenticated: None,
        };
        s.on_request(now, &invite(i), ctx);
        let mut accepted = false;
        while let Some(e) = s.poll_effect() {
            if let Effect::Respond { status, .. } = e {
                assert_eq!(status, 200, "join {i} refused");
                accepted = true;
            }
        }
        assert!(accepted, "join {i} got no response");
    }
    assert_eq!(s.participant_count(), n);
    // Each join is one roster change, so the counter is `n` and the last change is after
    // `n - 1`. Check that against the documents rather than trust it.
    let base = n as u64 - 1;
    let changed = |doc: &ConferenceInfo| doc.users.as_ref().map_or(0, |u| u.users.len());
    assert_eq!(
        changed(&s.partial_document(base)),
        1,
        "partial after {base}"
    );
    assert_eq!(
        changed(&s.partial_document(n as u64)),
        0,
        "partial after {n}"
    );
    assert_eq!(changed(&s.full_document()), n);
    (s, base)
}

fn render(doc: &ConferenceInfo) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    ci::render(doc, &mut out);
    out
}

fn documents(c: &mut Criterion) {
    let mut g = c.benchmark_group("conference_info");
    for n in SIZES {
        let (s, base) = session(n);
        let full_len = render(&s.full_document()).len();
        let partial_len = render(&s.partial_document(base)).len();
        eprintln!("{n} participants: full document {full_len} bytes, partial {partial_len} bytes");
        g.throughput(Throughput::Bytes(full_len as u64));
        g.bench_with_input(BenchmarkId::new("full", n), &s, |b, s| {
            b.iter(|| render(&black_box(s).full_document()))
        });
        g.throughput(Throughput::Bytes(partial_len as u64));
        g.bench_with_input(BenchmarkId::new("partial", n), &s, |b, s| {
            b.iter(|| render(&black_box(s).partial_document(black_box(base))))
        });
    }
    g.finish();
}

criterion_group!(benches, documents);
criterion_main!(benches);
