//! A small SIP flood tool for overload measurements: OPTIONS requests over UDP from several
//! source addresses (loopback aliases 127.0.0.x work without set-up on Linux) at a fixed total
//! rate, counting what the focus answers.
//!
//! ```sh
//! cargo run --release --example flood -- 127.0.0.1:5060 60000 30 127.0.0.2 127.0.0.3
//! #                                      target          rate   s  sources...
//! ```
//! Prints requests sent, answers by status, and how many got no answer.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn request(from: SocketAddr, n: u64) -> String {
    format!(
        "OPTIONS sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-f{n}\r\nFrom: <sip:flood@example.com>;tag=f{n}\r\nTo: <sip:team@focus.example.com>\r\nCall-ID: f{n}@{from}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        eprintln!("usage: flood TARGET RATE SECONDS SOURCE_IP...");
        std::process::exit(2);
    }
    let target: SocketAddr = args[0].parse().expect("TARGET is IP:PORT");
    let rate: f64 = args[1].parse().expect("RATE is requests per second");
    let seconds: f64 = args[2].parse().expect("SECONDS");
    let sources = &args[3..];
    let per_source = rate / sources.len() as f64;
    let sent = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let shed = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    let mut readers = Vec::new();
    for ip in sources {
        let sock = UdpSocket::bind((ip.as_str(), 0)).expect("binding a source address");
        let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
        let me = sock.local_addr().unwrap();
        let reader = sock.try_clone().unwrap();
        let (ok, shed, other, stop) = (ok.clone(), shed.clone(), other.clone(), stop.clone());
        readers.push(std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = reader.recv(&mut buf) {
                    match &buf[..n.min(12)] {
                        b"SIP/2.0 200 " => ok.fetch_add(1, Ordering::Relaxed),
                        b"SIP/2.0 503 " => shed.fetch_add(1, Ordering::Relaxed),
                        _ => other.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }
        }));
        let sent = sent.clone();
        senders.push(std::thread::spawn(move || {
            let start = Instant::now();
            let mut n = 0u64;
            loop {
                let elapsed = start.elapsed().as_secs_f64();
                if elapsed >= seconds {
                    break;
                }
                // Send what the schedule says is due, in small bursts.
                let due = (elapsed * per_source) as u64;
                while n < due {
                    let _ = sock.send_to(request(me, n).as_bytes(), target);
                    n += 1;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_micros(500));
            }
        }));
    }
    for s in senders {
        let _ = s.join();
    }
    // Answers still on their way.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let _ = r.join();
    }
    let sent = sent.load(Ordering::Relaxed);
    let (ok, shed, other) = (
        ok.load(Ordering::Relaxed),
        shed.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed),
    );
    println!(
        "sent {sent} ({:.0}/s) answered 200: {ok}, 503: {shed}, other: {other}, unanswered: {}",
        sent as f64 / seconds,
        sent.saturating_sub(ok + shed + other)
    );
}
