//! The join path in one process, for instruction counts: starts the focus (transports,
//! endpoint, supervisor, session arbiters, metrics recorder) on loopback, then one client
//! socket makes N calls one after another: INVITE (audio offer, declined), 200, ACK, BYE, 200.
//!
//! ```sh
//! cargo build --release --example join_path
//! valgrind --tool=callgrind --callgrind-out-file=cg.100 target/release/examples/join_path 100
//! valgrind --tool=callgrind --callgrind-out-file=cg.1100 target/release/examples/join_path 1100
//! # instructions per call: (total(1100) - total(100)) / 1000, from `callgrind_annotate cg.N | head`
//! ```
//! Subtracting two runs removes start-up and shutdown; what is left is the focus's work per
//! call plus this client's (which writes from templates and reads only the To tag).

use cpm_focus::config::Config;
use cpm_focus::server::Server;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// The allocator of the `cpm-focus` binary, so the counts match it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OFFER: &str = "v=0\r\no=load 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn main() -> anyhow::Result<()> {
    let calls: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100);
    let config = Config::embedded()?;
    let _system = actix::System::new();
    let arbiters: Vec<actix::Arbiter> = (0..config.arbiter_count())
        .map(|_| actix::Arbiter::new())
        .collect();
    let handles = arbiters.iter().map(|a| a.handle()).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let listen: SocketAddr = "127.0.0.1:0".parse()?;
    let msrp: SocketAddr = "127.0.0.1:0".parse()?;
    let server = runtime.block_on(async {
        let _ = cpm_focus::metrics::install();
        Server::start(&config, listen, Some(msrp), handles)
    })?;
    let focus = server.udp_addr;
    let client = std::thread::spawn(move || run_calls(focus, calls));
    let done = client
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))??;
    runtime.block_on(server.shutdown());
    for a in &arbiters {
        a.stop();
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    println!("{done} calls");
    Ok(())
}

/// Calls one after another; each waits for its responses (retransmitting on loss).
fn run_calls(focus: SocketAddr, calls: u64) -> anyhow::Result<u64> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.set_read_timeout(Some(Duration::from_millis(500)))?;
    let local = sock.local_addr()?;
    let mut buf = vec![0u8; 65536];
    for i in 0..calls {
        let head = |method: &str, cseq: u32, branch: &str, to_tag: &str| {
            format!(
                "{method} sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch}\r\nFrom: <sip:u{i}@example.com>;tag=f{i}\r\nTo: <sip:team@focus.example.com>{to_tag}\r\nCall-ID: c{i}@example.com\r\nCSeq: {cseq} {method}\r\nContact: <sip:u{i}@{local}>\r\nMax-Forwards: 70\r\n"
            )
        };
        let invite = format!(
            "{}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{OFFER}",
            head("INVITE", 1, &format!("i{i}"), ""),
            OFFER.len()
        );
        let ok = exchange(&sock, focus, &invite, &mut buf, "CSeq: 1 INVITE")?;
        let tag = to_tag(&ok).ok_or_else(|| anyhow::anyhow!("200 without To tag:\n{ok}"))?;
        let to = format!(";tag={tag}");
        let ack = format!(
            "{}Content-Length: 0\r\n\r\n",
            head("ACK", 1, &format!("a{i}"), &to)
        );
        sock.send_to(ack.as_bytes(), focus)?;
        let bye = format!(
            "{}Content-Length: 0\r\n\r\n",
            head("BYE", 2, &format!("b{i}"), &to)
        );
        exchange(&sock, focus, &bye, &mut buf, "CSeq: 2 BYE")?;
    }
    Ok(calls)
}

/// Sends `msg` until a final response naming `cseq` arrives; returns it.
fn exchange(
    sock: &UdpSocket,
    to: SocketAddr,
    msg: &str,
    buf: &mut [u8],
    cseq: &str,
) -> anyhow::Result<String> {
    for _ in 0..20 {
        sock.send_to(msg.as_bytes(), to)?;
        while let Ok(n) = sock.recv(buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("SIP/2.0 2") && text.contains(cseq) {
                return Ok(text.into_owned());
            }
            if text.starts_with("SIP/2.0 ") && !text.starts_with("SIP/2.0 1") {
                anyhow::bail!("unexpected answer:\n{text}");
            }
        }
    }
    anyhow::bail!("no answer to:\n{msg}")
}

fn to_tag(resp: &str) -> Option<&str> {
    let to = resp.lines().find(|l| l.starts_with("To:"))?;
    let tag = &to[to.find(";tag=")? + 5..];
    Some(tag.split([';', '\r', ' ']).next().unwrap_or(tag))
}
