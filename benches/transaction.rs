//! One server transaction's whole life in virtual time (no sockets, no clock): what the
//! endpoint's shards pay per request for the RFC 3261 §17 machines, timers included.
//!
//! The transaction key (`src/endpoint/key.rs`) is not benchmarked: the module is private to
//! the endpoint (only the `TsxKey` alias is exported), so a bench cannot call it.
//!
//! `cargo bench --bench transaction`

use bytes::Bytes;
use cpm_focus::transaction::{Event, InviteServer, NonInviteServer, TimerConfig};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Stand-ins for encoded responses: the machines treat messages as opaque bytes.
const RESPONSE_100: &[u8] = &[b'1'; 300];
const RESPONSE_200: &[u8] = &[b'2'; 600];

fn non_invite_server(c: &mut Criterion) {
    let cfg = TimerConfig::default();
    let t0 = Instant::now();
    let ok = Bytes::from_static(RESPONSE_200);
    // UDP: a retransmission while the TU works, the 200, a late copy answered from the
    // Completed state, then Timer J (64*T1) ends it.
    c.bench_function("transaction/non_invite_server_udp", |b| {
        b.iter(|| {
            let mut t = NonInviteServer::new(t0, cfg, false);
            t.on_retransmission(t0 + Duration::from_millis(500));
            t.send_response(t0 + Duration::from_millis(600), 200, ok.clone())
                .unwrap();
            let mut sent = 0;
            while let Some(m) = t.poll_transmit() {
                sent += black_box(m).len();
            }
            t.on_retransmission(t0 + Duration::from_millis(1000));
            while let Some(m) = t.poll_transmit() {
                sent += black_box(m).len();
            }
            let j = t.poll_timeout().expect("Timer J armed");
            t.handle_timeout(j);
            assert!(t.is_terminated());
            sent
        })
    });
}

fn invite_server(c: &mut Criterion) {
    let cfg = TimerConfig::default();
    let t0 = Instant::now();
    let trying = Bytes::from_static(RESPONSE_100);
    let ok = Bytes::from_static(RESPONSE_200);
    // UDP: 100, 200 (arms the 2xx retransmission and Timer L), the ACK for the 2xx, then
    // Timer L (64*T1) ends it.
    c.bench_function("transaction/invite_server_udp_2xx", |b| {
        b.iter(|| {
            let mut t = InviteServer::new(t0, cfg, false);
            t.send_response(t0, 100, trying.clone()).unwrap();
            t.send_response(t0 + Duration::from_millis(2), 200, ok.clone())
                .unwrap();
            let mut sent = 0;
            while let Some(m) = t.poll_transmit() {
                sent += black_box(m).len();
            }
            t.on_ack_2xx(t0 + Duration::from_millis(5));
            assert_eq!(t.poll_event(), Some(Event::AckReceived));
            let l = t.poll_timeout().expect("Timer L armed");
            t.handle_timeout(l);
            assert!(t.is_terminated());
            sent
        })
    });
}

criterion_group!(benches, non_invite_server, invite_server);
criterion_main!(benches);
