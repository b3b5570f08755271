//! The hot paths the other benches do not cover, each on the focus's own types:
//!
//! - `routing`: the supervisor's tables: a dialog lookup and a conference lookup among many,
//!   and a dialog's register/unregister (every join and leave does both).
//! - `roster`: one roster change in a session of N participants with 10 subscribers (and
//!   with none): a join (INVITE) and a leave (BYE) of a new participant each time through
//!   `SessionState`, with the partial NOTIFY each subscriber gets (rendered) and its 200 fed
//!   back, and the departed participant's retention ended by the timer.
//! - `msrp/frame`: one SEND written, then framed and parsed as the switch reads it.
//! - `pager/fanout`: one group MESSAGE to a session of N participants: the 202 and one
//!   relayed MESSAGE per recipient, their 200s fed back.
//!
//! `cargo bench --bench hot_paths`

use actix::dev::channel::channel;
use actix::Addr;
use bytes::{Bytes, BytesMut};
use cpm_focus::dialog::DialogId;
use cpm_focus::media::msrp::{self, Framer, MsrpUri};
use cpm_focus::session::{Effect, RequestCtx, SessionActor, SessionSettings, SessionState};
use cpm_focus::sip::{parse, Framing, Message, ParseLimits, Request, Response};
use cpm_focus::supervisor::{SessionEntry, Tables};
use cpm_focus::transport::{Protocol, Target};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

fn settings() -> Arc<SessionSettings> {
    let base = SessionSettings::example();
    Arc::new(SessionSettings {
        policy: cpm_focus::policy::GroupPolicy {
            max_participants: 100_000,
            ..base.policy.clone()
        },
        departed_retention: Duration::ZERO,
        pager_rate: 10_000_000,
        pager_queue: 10_000_000,
        ..base
    })
}

fn request(text: String) -> Request {
    match parse(
        Bytes::from(text),
        Framing::Datagram,
        &ParseLimits::default(),
    ) {
        Ok(Message::Request(r)) => r,
        other => panic!("request does not parse: {other:?}"),
    }
}

fn ok_response() -> Response {
    let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-x\r\n\
                From: <sip:team@focus.example.com>;tag=f\r\nTo: <sip:u@example.com>;tag=t\r\n\
                Call-ID: x@192.0.2.1\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n";
    match parse(
        Bytes::from_static(text.as_bytes()),
        Framing::Datagram,
        &ParseLimits::default(),
    ) {
        Ok(Message::Response(r)) => r,
        other => panic!("response does not parse: {other:?}"),
    }
}

const SOURCE: Target = Target {
    protocol: Protocol::Udp,
    addr: SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10)),
        5060,
    ),
    conn: None,
};

fn invite(i: u64) -> Request {
    let sdp = "v=0\r\no=u 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
               m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    request(format!(
        "INVITE sip:team@focus.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-j{i}\r\nMax-Forwards: 70\r\n\
         From: \"User {i}\" <sip:user{i}@example.com>;tag=f{i}\r\n\
         To: <sip:team@focus.example.com>\r\nCall-ID: j{i}@192.0.2.10\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:user{i}@192.0.2.10:5060>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    ))
}

fn bye(i: u64, to_tag: &str) -> Request {
    request(format!(
        "BYE sip:team@192.0.2.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-b{i}\r\nMax-Forwards: 70\r\n\
         From: \"User {i}\" <sip:user{i}@example.com>;tag=f{i}\r\n\
         To: <sip:team@focus.example.com>;tag={to_tag}\r\nCall-ID: j{i}@192.0.2.10\r\n\
         CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn subscribe(i: u64) -> Request {
    request(format!(
        "SUBSCRIBE sip:team@focus.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-s{i}\r\nMax-Forwards: 70\r\n\
         From: <sip:watcher{i}@example.com>;tag=w{i}\r\nTo: <sip:team@focus.example.com>\r\n\
         Call-ID: s{i}@192.0.2.10\r\nCSeq: 1 SUBSCRIBE\r\nEvent: conference\r\nExpires: 3600\r\n\
         Contact: <sip:watcher{i}@192.0.2.10:5060>\r\nContent-Length: 0\r\n\r\n"
    ))
}

fn message(i: u64) -> Request {
    let body = "Hello, group! This is a message of typical length.";
    request(format!(
        "MESSAGE sip:team@focus.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-m{i}\r\nMax-Forwards: 70\r\n\
         From: <sip:sender@example.com>;tag=m{i}\r\nTo: <sip:team@focus.example.com>\r\n\
         Call-ID: m{i}@192.0.2.20\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// Feeds a request and drains its effects, answering every request the session sends with
/// 200. Returns the dialog of a 2xx to INVITE, and how many requests were sent.
fn feed(
    s: &mut SessionState,
    now: Instant,
    req: &Request,
    txn: u64,
    ok: &Response,
) -> (Option<DialogId>, usize) {
    s.on_request(
        now,
        req,
        RequestCtx {
            txn,
            source: SOURCE,
            authenticated: None,
        },
    );
    let mut dialog = None;
    let mut sent = 0;
    while let Some(e) = s.poll_effect() {
        match e {
            Effect::Respond { ack, .. } => dialog = dialog.or(ack),
            Effect::Send { token, .. } => {
                sent += 1;
                s.on_response(now, token, ok);
            }
            _ => {}
        }
    }
    (dialog, sent)
}

/// A session of `n` participants and `subs` subscribers.
fn session(n: u64, subs: u64, ok: &Response) -> SessionState {
    let now = Instant::now();
    let mut s = SessionState::new(settings(), now, SystemTime::now());
    for i in 0..subs {
        feed(&mut s, now, &subscribe(i), 1_000_000 + i, ok);
    }
    for i in 0..n {
        let (d, _) = feed(&mut s, now, &invite(i), i + 1, ok);
        assert!(d.is_some(), "join {i} refused");
    }
    assert_eq!(s.participant_count() as u64, n);
    s
}

fn routing(c: &mut Criterion) {
    let mut g = c.benchmark_group("routing");
    for n in [1_000u64, 100_000] {
        let tables = Tables::default();
        let (tx, _rx) = channel::<SessionActor>(16);
        let entry = SessionEntry {
            addr: Addr::new(tx),
            instance: 1,
            in_flight: Arc::new(AtomicUsize::new(0)),
        };
        let ids: Vec<DialogId> = (0..n)
            .map(|i| DialogId {
                call_id: format!("{i:x}-4077@192.0.2.10").into(),
                local_tag: format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).into(),
            })
            .collect();
        for id in &ids {
            tables.register_dialog(id.clone(), entry.clone());
        }
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("dialog_lookup", n), |b| {
            b.iter(|| {
                i = (i + 7919) % ids.len();
                // As the supervisor does it: a key built from the request's text, then looked up.
                let id = DialogId {
                    call_id: black_box(&*ids[i].call_id).into(),
                    local_tag: black_box(&*ids[i].local_tag).into(),
                };
                black_box(tables.dialog(&id).is_some())
            })
        });
        g.bench_function(BenchmarkId::new("dialog_register_unregister", n), |b| {
            b.iter(|| {
                let id = DialogId {
                    call_id: "new-call@192.0.2.10".into(),
                    local_tag: "0123456789abcdef".into(),
                };
                tables.register_dialog(id.clone(), entry.clone());
                tables.unregister_dialog(black_box(&id), 1);
            })
        });
    }
    g.finish();
}

fn roster(c: &mut Criterion) {
    let ok = ok_response();
    let mut g = c.benchmark_group("roster");
    for (n, subs) in [(10u64, 10u64), (100, 10), (1000, 10), (100, 0)] {
        let mut s = session(n, subs, &ok);
        let mut next = 10_000_000u64;
        let name = format!("join_leave_{subs}_subscribers");
        g.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    next += 1;
                    let inv = invite(next);
                    let now = Instant::now();
                    let t0 = Instant::now();
                    let (d, _) = feed(&mut s, now, &inv, next, &ok);
                    spent += t0.elapsed();
                    let tag = d.map(|d| d.local_tag).expect("join accepted");
                    let by = bye(next, &tag);
                    let t0 = Instant::now();
                    feed(&mut s, now, &by, next + 1, &ok);
                    // The departed participant's retention (zero here) ends on the timer, as
                    // the actor drives it; without it the roster would grow every iteration.
                    if s.poll_timeout(now).is_some_and(|t| t <= now) {
                        s.handle_timeout(now);
                        while s.poll_effect().is_some() {}
                    }
                    spent += t0.elapsed();
                }
                spent
            })
        });
    }
    g.finish();
}

fn msrp_frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("msrp/frame");
    let to = MsrpUri::parse("msrp://192.0.2.1:2855/focus-session;tcp").unwrap();
    let from = MsrpUri::parse("msrp://192.0.2.10:40000/participant;tcp").unwrap();
    let limits = msrp::ParseLimits::default();
    for size in [100usize, 4096] {
        let req = msrp::Request::send(
            vec![to.clone()],
            vec![from.clone()],
            "text/plain",
            Bytes::from(vec![b'x'; size]),
        );
        let wire = req.to_bytes().unwrap();
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function(BenchmarkId::new("encode", size), |b| {
            let mut out = BytesMut::with_capacity(8192);
            b.iter(|| {
                out.clear();
                black_box(&req).encode(&mut out).unwrap();
                black_box(out.len())
            })
        });
        g.bench_function(BenchmarkId::new("decode", size), |b| {
            let mut framer = Framer::new(1 << 20);
            b.iter(|| {
                let mut buf = BytesMut::from(&wire[..]);
                let frame = framer.decode(&mut buf).unwrap().unwrap();
                black_box(msrp::parse(frame.bytes, &limits).unwrap())
            })
        });
    }
    g.finish();
}

fn pager(c: &mut Criterion) {
    let ok = ok_response();
    let mut g = c.benchmark_group("pager/fanout");
    for n in [10u64, 100] {
        let mut s = session(n, 0, &ok);
        let mut i = 0u64;
        g.throughput(Throughput::Elements(n));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    i += 1;
                    let m = message(i);
                    let t0 = Instant::now();
                    let (_, sent) = feed(&mut s, Instant::now(), &m, 20_000_000 + i, &ok);
                    spent += t0.elapsed();
                    assert_eq!(sent as u64, n);
                }
                spent
            })
        });
    }
    g.finish();
}

criterion_group!(benches, routing, roster, msrp_frame, pager);
criterion_main!(benches);
