//! Group-message recipients: a user agent on its own UDP socket that answers every MESSAGE
//! with a status the test sets (200 by default) and keeps one copy per transaction, so a test
//! can count deliveries exactly. Retransmissions get the same answer again and are counted
//! apart; anything but MESSAGE is answered 405.

use super::ua::response_text;
use bytes::Bytes;
use cpm_focus::sip::{parse, Framing, HeaderName, Message, Method, ParseLimits, Request};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One MESSAGE transaction a sink answered.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub request: Request,
    pub raw: Bytes,
    /// The status it was answered with.
    pub answered: u16,
}

impl Delivery {
    /// A header value.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.request.headers.get(name)
    }

    /// The body as text.
    pub fn body(&self) -> String {
        String::from_utf8_lossy(&self.request.body).into_owned()
    }

    /// The whole request as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

struct Shared {
    deliveries: Mutex<Vec<Delivery>>,
    arrived: Condvar,
    /// Answers by branch: a retransmission gets the first answer again.
    answered: Mutex<HashMap<String, u16>>,
    retransmissions: AtomicUsize,
    status: AtomicU16,
    stop: AtomicBool,
}

/// A MESSAGE recipient at `sip:<name>@127.0.0.1:<port>`.
pub struct Sink {
    pub name: String,
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Sink {
    /// Binds a fresh UDP port and starts answering 200.
    pub fn start(name: &str) -> Sink {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("binding a sink socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let shared = Arc::new(Shared {
            deliveries: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            answered: Mutex::new(HashMap::new()),
            retransmissions: AtomicUsize::new(0),
            status: AtomicU16::new(200),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || serve(socket, s));
        Sink {
            name: name.to_string(),
            addr,
            shared,
        }
    }

    /// Where the focus reaches it (the member URI to configure or list).
    pub fn uri(&self) -> String {
        format!("sip:{}@{}", self.name, self.addr)
    }

    /// Its address of record as the focus names it (no port).
    pub fn aor(&self) -> String {
        format!("sip:{}@127.0.0.1", self.name)
    }

    /// Answers later MESSAGEs with `status`.
    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::Relaxed);
    }

    /// Every MESSAGE transaction so far, in arrival order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().unwrap().clone()
    }

    /// Retransmissions received (answered again, not counted as deliveries).
    pub fn retransmissions(&self) -> usize {
        self.shared.retransmissions.load(Ordering::Relaxed)
    }

    /// Waits until at least `n` transactions arrived; panics after `timeout`.
    pub fn wait_deliveries(&self, n: usize, timeout: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + timeout;
        let mut got = self.shared.deliveries.lock().unwrap();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "{}: {} MESSAGE(s) after {timeout:?}, expected {n}",
                    self.name,
                    got.len()
                );
            }
            got = self.shared.arrived.wait_timeout(got, left).unwrap().0;
        }
        got.clone()
    }

    /// The single MESSAGE this sink must get (waiting at most `timeout` for it), then
    /// [`LATE_DUPLICATE_WINDOW`] more for a second copy that must not come: a duplicate
    /// delivered a little later would pass a check made when the first one arrives.
    pub fn expect_one(&self, timeout: Duration) -> Delivery {
        let first = self.wait_deliveries(1, timeout);
        let deadline = Instant::now() + LATE_DUPLICATE_WINDOW;
        let mut got = self.shared.deliveries.lock().unwrap();
        while got.len() == 1 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            got = self.shared.arrived.wait_timeout(got, left).unwrap().0;
        }
        assert_eq!(
            got.len(),
            1,
            "{}: more than one MESSAGE: {:?}",
            self.name,
            got.iter().map(Delivery::body).collect::<Vec<_>>()
        );
        first[0].clone()
    }
}

/// How long [`Sink::expect_one`] keeps listening after the first copy: long beside the
/// focus's pacing of group deliveries (`pager_rate`, 2,000 a second by default), so a second
/// transaction sent by a later round is seen.
pub const LATE_DUPLICATE_WINDOW: Duration = Duration::from_millis(300);

impl Drop for Sink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(socket: UdpSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65536];
    while !shared.stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let raw = Bytes::copy_from_slice(&buf[..n]);
        let Ok(Message::Request(req)) =
            parse(raw.clone(), Framing::Datagram, &ParseLimits::default())
        else {
            continue;
        };
        if req.method == Method::Ack {
            continue;
        }
        let branch = req.branch().unwrap_or("").to_string();
        let (status, first) = {
            let mut answered = shared.answered.lock().unwrap();
            match answered.get(&branch) {
                Some(s) => (*s, false),
                None => {
                    let s = if req.method == Method::Message {
                        shared.status.load(Ordering::Relaxed)
                    } else {
                        405
                    };
                    answered.insert(branch, s);
                    (s, true)
                }
            }
        };
        if !first {
            shared.retransmissions.fetch_add(1, Ordering::Relaxed);
        } else if req.method == Method::Message {
            let mut got = shared.deliveries.lock().unwrap();
            got.push(Delivery {
                request: req.clone(),
                raw,
                answered: status,
            });
            shared.arrived.notify_all();
        }
        let reason = cpm_focus::sip::reason_phrase(status);
        let text = response_text(&req, status, reason, Some("sink"), "");
        let _ = socket.send_to(text.as_bytes(), from);
    }
}
