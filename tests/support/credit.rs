//! A credit-control server on loopback for the online charging check: it records each
//! request body and answers per its [`Credit`] mode, which the test changes at will (hold a
//! check, then release it).

use super::WAIT;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the credit-control server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credit {
    Grant,
    Deny,
    /// Reads the request and closes the connection: no answer, at once.
    Close,
    /// Reads the request and keeps the connection open without answering until the focus
    /// gives up and closes it: only the focus's `online_timeout_ms` ends the check.
    Hang,
    /// Reads the request and grants it only once the mode is changed to `Grant`.
    Stall,
}

/// A credit-control server on a free port: it records each request body and answers per
/// its mode. What goes wrong in its threads (a malformed request, a panic) is kept and fails
/// the test when the server is dropped: a failed assert in a thread alone would be lost.
pub struct CreditServer {
    pub port: u16,
    shared: Arc<Shared>,
}

/// What the server's threads and the test share.
struct Shared {
    mode: Mutex<Credit>,
    requests: Mutex<Vec<serde_json::Value>>,
    /// How many `Hang` connections the focus closed itself.
    abandoned: Mutex<usize>,
    failures: Mutex<Vec<String>>,
}

impl Shared {
    fn mode(&self) -> Credit {
        *self.mode.lock().unwrap()
    }
}

impl CreditServer {
    pub fn start(mode: Credit) -> CreditServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            requests: Mutex::default(),
            abandoned: Mutex::default(),
            failures: Mutex::default(),
        });
        let threads = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = threads.clone();
                std::thread::spawn(move || {
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        serve_credit(stream, &shared)
                    }));
                    let failure = match outcome {
                        Ok(Ok(())) => return,
                        Ok(Err(e)) => e,
                        Err(panic) => panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "a panic".into()),
                    };
                    shared.failures.lock().unwrap().push(failure);
                });
            }
        });
        CreditServer { port, shared }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/credit", self.port)
    }

    pub fn set(&self, mode: Credit) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Waits until the focus has closed `n` hanging connections.
    pub fn expect_abandoned(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while *self.shared.abandoned.lock().unwrap() < n {
            assert!(
                Instant::now() < deadline,
                "the focus never gave up on the hanging credit check"
            );
            // The server thread has no channel to the test: poll its counter.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for CreditServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let failures = self.shared.failures.lock().unwrap();
        assert!(
            failures.is_empty(),
            "the credit server saw failures: {failures:?}"
        );
    }
}

fn serve_credit(stream: TcpStream, server: &Shared) -> Result<(), String> {
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    let mut length = 0usize;
    let mut first = true;
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            // A pooled connection closed by the focus between checks.
            return Ok(());
        }
        if first {
            if !line.starts_with("POST /credit HTTP/1.1") {
                return Err(format!("not a credit check: {line:?}"));
            }
            first = false;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v
                .trim()
                .parse()
                .map_err(|e| format!("Content-Length {v:?}: {e}"))?;
        }
    }
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("the credit request body: {e}"))?;
    let request = serde_json::from_slice(&body)
        .map_err(|e| format!("the credit request is not JSON ({e}): {body:?}"))?;
    server.requests.lock().unwrap().push(request);
    while server.mode() == Credit::Stall {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mode = server.mode();
    let answer = match mode {
        Credit::Grant => r#"{"granted":true}"#,
        Credit::Deny => r#"{"granted":false,"reason":"Out of credit"}"#,
        Credit::Close | Credit::Stall => return Ok(()),
        Credit::Hang => {
            // No answer: only the focus's timeout ends this. It closes the connection then.
            let mut rest = Vec::new();
            return match reader.read_to_end(&mut rest) {
                Ok(_) => {
                    *server.abandoned.lock().unwrap() += 1;
                    Ok(())
                }
                Err(e) => Err(format!(
                    "the focus kept a hanging credit check open past {WAIT:?}: {e}"
                )),
            };
        }
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    );
    Ok(())
}
