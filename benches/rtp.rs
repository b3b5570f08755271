//! The RTP forwarding path of a talk-burst group of 10: one packet from the floor holder
//! forwarded to the 9 other legs.
//!
//! - `rtp/rewrite_9`: the per-packet work without sockets (header parse, each receiver's
//!   sequence/timestamp/SSRC mapping, copy and rewrite).
//! - `rtp/forward_10_legs`: `RtpMember::on_packet`, the plane's real path: holder check,
//!   flood control, codec check, and 9 `sendto` calls on loopback sockets.
//! - `rtp/drop_not_holder`: the cost of refusing a non-holder's packet.
//!
//! `cargo bench --bench rtp`

use cpm_focus::push_to_talk::rtp::{
    rewrite, Latching, LegCodec, LegSpec, OutStream, RtpEvent, RtpEvents, RtpHeader, RtpPlane,
    RtpPorts, RtpSettings,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct NoEvents;

impl RtpEvents for NoEvents {
    fn on_rtp_event(&self, _pid: u64, _event: RtpEvent) {}
}

/// A 20 ms PCMU packet (160 bytes of payload).
fn packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend(std::iter::repeat_n(0xd5u8, 160));
    p
}

fn rewrite_9(c: &mut Criterion) {
    let mut streams: Vec<OutStream> = (0..9)
        .map(|i| OutStream::new(i, 8000, i as u16 * 100, i * 1000))
        .collect();
    let mut scratch = Vec::with_capacity(2048);
    let mut seq = 0u16;
    let now = Instant::now();
    let mut g = c.benchmark_group("rtp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rewrite_9", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let p = packet(seq);
            let h = RtpHeader::parse(black_box(&p)).unwrap();
            for s in streams.iter_mut() {
                let (sq, ts, marker) = s.map(&h, p.len() - h.payload_offset, now);
                scratch.clear();
                scratch.extend_from_slice(&p);
                rewrite(&mut scratch, sq, ts, s.ssrc, marker);
                black_box(&scratch);
            }
        })
    });
    g.finish();
}

fn forward(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let plane = Arc::new(RtpPlane::new(RtpSettings {
        bind: "127.0.0.1".parse().unwrap(),
        also_bind: Vec::new(),
        port_min: 41000,
        port_max: 59999,
        silence_timeout: Duration::from_secs(3600),
        max_packet_rate: u32::MAX,
        latching: Latching::Signalled,
    }));
    let group = plane.group();
    // Every receiver's packets go to one sink, drained by a thread as a client would.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = sink.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while sink.recv(&mut buf).is_ok() {}
    });
    let members: Vec<_> = (1..=10u64)
        .map(|pid| {
            let port = plane
                .reserve([127, 0, 0, 1].into())
                .expect("a free port pair");
            plane
                .add(
                    &group,
                    LegSpec {
                        pid,
                        port,
                        expected: Some(to),
                        codec: LegCodec {
                            index: 0,
                            payload_type: 0,
                            clock_rate: 8000,
                        },
                    },
                    Arc::new(NoEvents),
                )
                .expect("a leg")
        })
        .collect();
    group.set_holder(1);
    let mut scratch = Vec::with_capacity(2048);
    let mut seq = 0u16;
    let mut g = c.benchmark_group("rtp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("forward_10_legs", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let p = packet(seq);
            black_box(members[0].on_packet(&p, Instant::now(), &mut scratch))
        })
    });
    g.bench_function("drop_not_holder", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let p = packet(seq);
            black_box(members[1].on_packet(&p, Instant::now(), &mut scratch))
        })
    });
    g.finish();
}

criterion_group!(benches, rewrite_9, forward);
criterion_main!(benches);
