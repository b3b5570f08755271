//! Memory after a flood (issue 18: the RSS rose from 23 MB to about 200 MB in a flood and
//! never came back). What the focus holds per transaction leaves with the transaction, and
//! the transaction tables the flood grew give their slots back once it is over: they return
//! to a small fraction of their peak, which `focus_endpoint_table_slots` shows.

mod support;

use std::collections::HashSet;
use std::net::UdpSocket;
use std::time::{Duration, Instant};
use support::{Focus, WAIT};

/// Requests outstanding at once: enough to keep the focus busy, few enough that the
/// socket buffers drop nothing.
const WINDOW: usize = 64;

fn options_text(from: std::net::SocketAddr, n: usize) -> String {
    format!(
        "OPTIONS sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-mem{n}\r\nFrom: <sip:flood@example.com>;tag=m{n}\r\nTo: <sip:team@focus.example.com>\r\nCall-ID: mem-{n}@{from}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// The slots of `table` over all shards.
fn slots(focus: &Focus, table: &str) -> f64 {
    focus
        .metric(&format!("focus_endpoint_table_slots{{table=\"{table}\"}}"))
        .unwrap_or(0.0)
}

#[test]
fn the_transaction_tables_give_their_slots_back_after_a_flood() {
    const FLOOD: usize = 6000;
    // A short T1: the completed transactions linger 64 x T1 (Timer J), 1.3 s instead of 32.
    let focus = Focus::start("[sip]\nt1_ms = 20\n");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let me = sock.local_addr().unwrap();
    let mut answered = HashSet::new();
    let mut buf = [0u8; 4096];
    let mut peak = 0.0f64;
    for n in 0..FLOOD {
        sock.send_to(options_text(me, n).as_bytes(), focus.sip_udp)
            .unwrap();
        // Keep at most WINDOW unanswered.
        while n + 1 - answered.len() > WINDOW {
            let len = sock.recv(&mut buf).expect("an answer within WAIT");
            let text = String::from_utf8_lossy(&buf[..len]);
            let id = text
                .lines()
                .find_map(|l| l.strip_prefix("Call-ID: mem-"))
                .and_then(|v| v.split('@').next()?.parse::<usize>().ok());
            if let Some(id) = id {
                answered.insert(id);
            }
        }
        if n % 1000 == 999 {
            peak = peak.max(slots(&focus, "merged"));
        }
    }
    // Every transaction lingers, then goes (the table's peak shows meanwhile); the tables
    // follow.
    let deadline = Instant::now() + Duration::from_secs(20);
    while focus.metric("focus_transactions_lingering") != Some(0.0) {
        peak = peak.max(slots(&focus, "merged"));
        assert!(Instant::now() < deadline, "transactions still lingering");
        // The gauges have no change notification: poll them.
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        peak >= (FLOOD / 4) as f64,
        "the flood never grew the merged-request table ({peak} slots at most; answered {}):\n{}",
        answered.len(),
        focus.metrics()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now: Vec<f64> = ["servers", "clients", "acks", "merged", "timers"]
            .iter()
            .map(|t| slots(&focus, t))
            .collect();
        if now.iter().all(|s| *s <= 1024.0) && now[3] <= peak / 10.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tables kept their slots after the flood (peak {peak}, now {now:?})"
        );
        // The gauge has no change notification: poll it.
        std::thread::sleep(Duration::from_millis(100));
    }
}
