//! The MSRP switch's fan-out: one SEND from one participant relayed to every other member of
//! a group of 10, 100 and 1000 (CPIM re-wrap, per-recipient frame heads, queueing), plus the
//! recipients' 200 responses being matched. No sockets: the queues are drained in place.
//!
//! `cargo bench --bench msrp`

use bytes::Bytes;
use cpm_focus::media::cpim::Addr;
use cpm_focus::media::msrp::switch::{
    Link, MediaEvent, MemberEvents, MemberSpec, Outgoing, Switch, SwitchSettings,
};
use cpm_focus::media::msrp::{MsrpUri, Request, Response};
use cpm_focus::sip::Host;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

struct NoEvents;

impl MemberEvents for NoEvents {
    fn on_media_event(&self, _pid: u64, _event: MediaEvent) {}
}

fn fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let mut group = c.benchmark_group("msrp/fanout");
    for n in [10usize, 100, 1000] {
        let switch = Switch::new(
            SwitchSettings {
                max_message: 4 << 20,
                max_frame: 256 << 10,
                queue_depth: 4,
                delivery_timeout: Duration::from_secs(30),
                max_connections: 10_000,
                bind_timeout: Duration::from_secs(30),
            },
            Host::Ip("127.0.0.1".parse().unwrap()),
            2855,
        );
        let conference = "sip:team@focus.example.com";
        let g = switch.group(conference, true);
        let mut members = Vec::new();
        let mut queues = Vec::new();
        for i in 0..n {
            let peer =
                MsrpUri::parse(&format!("msrp://127.0.0.1:{}/p{i};tcp", 10_000 + i)).unwrap();
            let m = switch.add_member(
                &g,
                MemberSpec {
                    fingerprint: None,
                    pid: i as u64,
                    session_id: format!("s{i}"),
                    peer_path: vec![peer],
                    cpim_from: Addr::with_display(format!("sip:user{i}@example.com"), "User"),
                    identity: format!("sip:user{i}@example.com"),
                    real: format!("sip:user{i}@example.com"),
                    charged: cpm_focus::policy::Charged {
                        subject: format!("sip:user{i}@example.com"),
                        verified: true,
                    },
                    events: Arc::new(NoEvents),
                },
            );
            let (tx, rx) = mpsc::channel::<Outgoing>(4);
            switch
                .bind(
                    &m,
                    &Link {
                        conn: i as u64,
                        tx,
                        peer_cert: None,
                    },
                )
                .unwrap();
            members.push(m);
            queues.push(rx);
        }
        let sender = members[0].clone();
        let send = Request::send(
            vec![sender.our_uri.clone()],
            sender.peer_path.clone(),
            "text/plain",
            Bytes::from_static(b"Hello, group! This is a chat line of typical length."),
        );
        group.throughput(Throughput::Elements((n - 1) as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let back = switch.on_send(&sender, send.clone(), Instant::now());
                black_box(back);
                // Each recipient answers 200, as a live one would.
                for (i, rx) in queues.iter_mut().enumerate().skip(1) {
                    while let Ok(out) = rx.try_recv() {
                        let tid = std::str::from_utf8(&out.head[5..])
                            .ok()
                            .and_then(|s| s.split(' ').next())
                            .unwrap_or("")
                            .to_string();
                        let resp = Response {
                            transaction_id: tid,
                            code: 200,
                            comment: None,
                            to_path: vec![members[i].our_uri.clone()],
                            from_path: members[i].peer_path.clone(),
                            headers: Vec::new(),
                        };
                        switch.on_response(&members[i], &resp);
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
