//! Measurement (ignored by default): RTP forwarding in a talk-burst group of 10 over real
//! loopback sockets. Ten participants join with audio and BFCP, one is granted the floor and
//! sends paced RTP carrying its send time; the nine others record when each packet arrives.
//! Reported per offered rate: packets forwarded per second (received by the nine), loss, and
//! the latency median and p99, next to the same path without the focus (one direct loopback
//! hop), so the difference is what the focus adds.
//!
//! ```sh
//! cargo test --release --test rtp_load -- --ignored --nocapture
//! ```
//!
//! The focus, the sender and the nine receivers share the machine's cores: the figures are
//! what this host does with everything on it, not the focus alone.

mod support;

use cpm_focus::push_to_talk::bfcp::RequestStatus;
use std::net::UdpSocket;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use support::{Focus, Ua};

const GROUP: &str = "sip:team@focus.example.com";

/// Sends `n` packets at `rate` per second from `from` to `to`; payload: send time (ns since
/// `epoch`), sequence, padding to a 20 ms PCMU frame.
fn send_paced(from: &UdpSocket, to: std::net::SocketAddr, epoch: Instant, rate: u32, n: u32) {
    let start = Instant::now();
    let ssrc = 0x5151_5151u32;
    let mut p = vec![0u8; 12 + 160];
    p[0] = 0x80;
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    for i in 0..n {
        let due = start + Duration::from_secs_f64(f64::from(i) / f64::from(rate));
        let now = Instant::now();
        if due > now + Duration::from_micros(200) {
            std::thread::sleep(due - now);
        }
        let seq = i as u16;
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[4..8].copy_from_slice(&(i * 160).to_be_bytes());
        let t = epoch.elapsed().as_nanos() as u64;
        p[12..20].copy_from_slice(&t.to_be_bytes());
        let _ = from.send_to(&p, to);
    }
}

/// Receives until `quiet` passes without a packet; returns each packet's latency (ns).
fn receive(sock: &UdpSocket, epoch: Instant, quiet: Duration) -> Vec<u64> {
    sock.set_read_timeout(Some(quiet)).unwrap();
    let mut buf = [0u8; 2048];
    let mut out = Vec::new();
    while let Ok(n) = sock.recv(&mut buf) {
        let now = epoch.elapsed().as_nanos() as u64;
        if n >= 20 {
            let sent = u64::from_be_bytes(buf[12..20].try_into().unwrap());
            out.push(now.saturating_sub(sent));
        }
    }
    out
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

struct Run {
    offered: u32,
    sent: u32,
    received: usize,
    seconds: f64,
    latencies: Vec<u64>,
}

fn report(label: &str, r: &Run, receivers: usize) {
    let mut l = r.latencies.clone();
    l.sort_unstable();
    let expected = r.sent as usize * receivers;
    println!(
        "{label:>8} offered {:>6}/s: forwarded {:>8.0} packets/s, loss {:>5.2}%, latency median {:>7.1} us, p99 {:>8.1} us",
        r.offered,
        r.received as f64 / r.seconds,
        100.0 * (expected.saturating_sub(r.received)) as f64 / expected.max(1) as f64,
        percentile(&l, 0.5),
        percentile(&l, 0.99),
    );
}

#[test]
#[ignore = "measurement: cargo test --release --test rtp_load -- --ignored --nocapture"]
fn ten_participant_group_forwarding_rate_and_latency() {
    let focus = Focus::start(
        r#"
[policy]
allowed_media = ["msrp", "audio"]
[rtp]
max_packet_rate = 1000000
silence_timeout_s = 3600
[floor]
max_talk_burst_s = 0
"#,
    );
    let mut agents = Vec::new();
    let mut talkers = Vec::new();
    for i in 0..10 {
        let mut ua = Ua::udp(&focus, &format!("p{i}"));
        let mut t = ua.join_talk(GROUP);
        t.connect_bfcp();
        agents.push(ua);
        talkers.push(t);
    }
    let (_, status, _) = talkers[0].request_floor();
    assert_eq!(status, RequestStatus::Granted);
    let epoch = Instant::now();
    let holder = talkers.remove(0);
    let sender = holder.rtp.try_clone().unwrap();
    let focus_rtp = holder.focus_rtp;
    let receivers: Vec<UdpSocket> = talkers.iter().map(|t| t.rtp.try_clone().unwrap()).collect();

    // (rate, seconds): voice, then increasing offered loads.
    let plan = [
        (50u32, 6.0f64),
        (1000, 3.0),
        (5000, 3.0),
        (10000, 3.0),
        (20000, 3.0),
    ];
    println!("talk-burst group of 10: 1 holder, 9 receivers (loopback, release build)");
    for (rate, secs) in plan {
        let n = (f64::from(rate) * secs) as u32;
        let barrier = Arc::new(Barrier::new(receivers.len() + 1));
        let handles: Vec<_> = receivers
            .iter()
            .map(|r| {
                let r = r.try_clone().unwrap();
                let b = barrier.clone();
                std::thread::spawn(move || {
                    b.wait();
                    receive(&r, epoch, Duration::from_millis(500))
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        send_paced(&sender, focus_rtp, epoch, rate, n);
        let seconds = start.elapsed().as_secs_f64();
        let mut latencies = Vec::new();
        for h in handles {
            latencies.extend(h.join().unwrap());
        }
        let run = Run {
            offered: rate,
            sent: n,
            received: latencies.len(),
            seconds,
            latencies,
        };
        report("focus", &run, receivers.len());
        assert!(run.received > 0, "nothing was forwarded at {rate}/s");

        // The same sender and one receiver without the focus: the loopback baseline.
        let direct = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = direct.local_addr().unwrap();
        let n_direct = n.min(rate * 2);
        let h = std::thread::spawn(move || receive(&direct, epoch, Duration::from_millis(500)));
        std::thread::sleep(Duration::from_millis(50));
        let start = Instant::now();
        send_paced(&sender, to, epoch, rate, n_direct);
        let seconds = start.elapsed().as_secs_f64();
        let latencies = h.join().unwrap();
        let base = Run {
            offered: rate,
            sent: n_direct,
            received: latencies.len(),
            seconds,
            latencies,
        };
        report("direct", &base, 1);
    }
    let text = focus.metrics();
    for series in [
        "focus_rtp_packets_forwarded_total",
        "focus_rtp_packets_dropped_total{reason=\"flood\"}",
        "focus_rtp_packets_dropped_total{reason=\"send_error\"}",
        "focus_rtp_forward_seconds_count",
        "focus_rtp_forward_seconds_sum",
    ] {
        println!("{series} {:?}", support::metric_in(&text, series));
    }
    drop(agents);
}
