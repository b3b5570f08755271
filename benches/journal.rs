//! What liveness and crash recovery cost per event: encoding one journal line and applying it
//! to the live state (the writer's CPU per join), the writer end to end (1000 lines through
//! the handle, then a flush with its one fsync), and a session-timer negotiation (per INVITE).
//!
//! `cargo bench --bench journal`

use cpm_focus::config::{FsyncPolicy, JournalConfig};
use cpm_focus::recovery::journal::{
    Event, JournalHandle, Line, Live, ParticipantRecord, SessionInfo,
};
use cpm_focus::session_timer::{negotiate_uas, SessionExpires, TimerHeaders, TimerSettings};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

const SDP: &str = "v=0\r\no=- 4611686018427387 2 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\nm=message 2855 TCP/MSRP *\r\na=accept-types:message/cpim text/plain\r\na=accept-wrapped-types:*\r\na=path:msrp://10.0.0.9:2855/kx1bq0c7d2;tcp\r\na=setup:passive\r\na=max-size:4194304\r\n";

fn participant(n: u64) -> ParticipantRecord {
    ParticipantRecord {
        identity: format!("sip:user{n}@example.com"),
        display: Some(format!("User {n}")),
        real: format!("sip:user{n}@example.com"),
        role: "participant".into(),
        proof: "trusted-from".into(),
        hidden: false,
        dialed_out: false,
        joined_ms: 1_764_118_923_045,
        participants_total: n as u32,
        call_id: format!("a84b4c76e66710{n}@10.0.0.1"),
        local_tag: "9fxced76sl1f0a2c".into(),
        remote_tag: "1928301774".into(),
        local_addr: "\"Team\" <sip:team@focus.example.com>".into(),
        remote_addr: format!("\"User {n}\" <sip:user{n}@example.com>"),
        remote_target: format!("sip:user{n}@10.0.0.1:5060"),
        route_set: vec!["<sip:p1.example.com;lr>".into()],
        local_cseq: 1,
        transport: "udp".into(),
        peer: "10.0.0.1:5060".into(),
        sdp: SDP.into(),
        peer_update: true,
    }
}

fn open() -> Line {
    Line {
        ts: 1_764_118_923_045,
        key: "team".into(),
        instance: 1,
        event: Event::Open {
            info: SessionInfo {
                uri: "sip:team@focus.example.com".into(),
                kind: "predefined".into(),
                subject: Some("Team chat".into()),
                contribution_id: Some("cid-1".into()),
                conversation_id: None,
                hosts: Vec::new(),
                started_ms: 1_764_118_923_045,
                participants_total: 0,
            },
        },
    }
}

fn join(pid: u64) -> Line {
    Line {
        ts: 1_764_118_923_045,
        key: "team".into(),
        instance: 1,
        event: Event::Join {
            pid,
            participant: Box::new(participant(pid)),
        },
    }
}

fn lines(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal");
    group.throughput(Throughput::Elements(1));
    let line = join(7);
    let mut buf = Vec::with_capacity(2048);
    group.bench_function("encode_join_line", |b| {
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, black_box(&line)).unwrap();
            buf.push(b'\n');
            black_box(buf.len())
        })
    });
    let mut live = Live::default();
    live.apply(&open());
    let leave = Line {
        event: Event::Leave { pid: 7 },
        ..join(7)
    };
    group.bench_function("apply_join_and_leave", |b| {
        b.iter(|| {
            live.apply(black_box(&line));
            live.apply(black_box(&leave));
        })
    });
    group.finish();
}

fn writer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("cpm-journal-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = JournalConfig {
        path: dir.join("journal.jsonl").to_string_lossy().into_owned(),
        fsync: FsyncPolicy::Interval,
        fsync_interval_ms: 1000,
        recovery_window_s: 300,
        max_bytes: 16 << 20,
    };
    let handle = JournalHandle::start(&config, Live::default()).expect("journal");
    handle.record("team", 1, open().event);
    let mut group = c.benchmark_group("journal/writer");
    group.throughput(Throughput::Elements(1000));
    group.sample_size(20);
    let mut pid = 0u64;
    group.bench_function("1000_join_leave_lines_then_flush", |b| {
        b.iter(|| {
            for _ in 0..500 {
                pid += 1;
                handle.record(
                    "team",
                    1,
                    Event::Join {
                        pid,
                        participant: Box::new(participant(pid)),
                    },
                );
                handle.record("team", 1, Event::Leave { pid });
            }
            rt.block_on(handle.flush());
        })
    });
    group.finish();
    rt.block_on(handle.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

fn timer(c: &mut Criterion) {
    let settings = TimerSettings::default();
    c.bench_function("session_timer/negotiate_uas", |b| {
        b.iter(|| {
            let h = TimerHeaders {
                session_expires: SessionExpires::parse(black_box("1800;refresher=uac")).ok(),
                min_se: Some(90),
                supported: true,
            };
            black_box(negotiate_uas(&settings, &h))
        })
    });
}

criterion_group!(benches, lines, writer, timer);
criterion_main!(benches);
