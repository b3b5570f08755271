//! The README's start command, run exactly as written: `cargo run --release` with no arguments
//! must start the focus on its embedded configuration and answer OPTIONS on 127.0.0.1:5060.
//! A release build takes minutes and the test needs port 5060, so it is `#[ignore]`d in plain
//! `cargo test`; `.ci/run` runs it (`cargo test --test start_command -- --ignored`).

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The start command as the README's quick start shows it.
const START: &str = "cargo run --release";

/// A cold release build on a two-core machine.
const BUILD_TIMEOUT: Duration = Duration::from_secs(40 * 60);

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md")
}

#[test]
fn readme_shows_the_start_command_on_a_line_of_its_own() {
    let readme = readme();
    assert!(
        readme.lines().any(|l| l.trim() == START),
        "README.md no longer shows `{START}` on a line of its own; update this test with it"
    );
    assert!(
        readme.lines().any(|l| l.trim() == "cargo test"),
        "README.md no longer shows `cargo test`"
    );
}

/// Stops the whole process group (the shell, cargo, the focus) when the test ends, passing or
/// not, so no focus is left holding port 5060.
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "release build and port 5060: run by .ci/run"]
fn the_readme_start_command_answers_options_on_5060() {
    assert!(readme().lines().any(|l| l.trim() == START));
    use std::os::unix::process::CommandExt as _;
    let child = Command::new("sh")
        .args(["-c", &format!("exec {START}")])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawning the start command");
    let mut group = Group(child);
    let stdout = group.0.stdout.take().expect("stdout");
    let stderr = group.0.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("cpm-focus ready ") {
                let _ = tx.send(line);
            }
        }
    });
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut l = sink.lock().unwrap_or_else(|e| e.into_inner());
            l.push_str(&line);
            l.push('\n');
        }
    });
    let ready = match rx.recv_timeout(BUILD_TIMEOUT) {
        Ok(line) => line,
        Err(_) => panic!(
            "`{START}` printed no ready line:\n{}",
            log.lock().unwrap_or_else(|e| e.into_inner())
        ),
    };
    assert!(ready.contains("sip_udp=127.0.0.1:5060"), "{ready}");

    let sock = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let local = sock.local_addr().expect("local address");
    let options = format!(
        "OPTIONS sip:focus.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-start-command\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:newcomer@example.com>;tag=start\r\n\
         To: <sip:focus.example.com>\r\n\
         Call-ID: start-command@example.com\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    let answer = loop {
        assert!(Instant::now() < deadline, "no answer to OPTIONS on 5060");
        sock.send_to(options.as_bytes(), "127.0.0.1:5060")
            .expect("sending OPTIONS");
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if !text.starts_with("SIP/2.0 1") {
                break text;
            }
        }
    };
    assert!(answer.starts_with("SIP/2.0 200 "), "{answer}");
    assert!(answer.contains("start-command@example.com"), "{answer}");
}
