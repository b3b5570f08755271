//! A bad network between one test agent and the focus: a UDP relay that loses, delays,
//! reorders and duplicates datagrams, each seeded and bounded (the kernel here has no
//! `netem`, so the impairment lives in user space).
//!
//! The relay has two sockets. The agent sends to the *agent side*; the relay forwards from
//! its *focus side*, so the focus sees the focus side as the agent's address, and the agent
//! writes that address into its Via and Contact (the focus answers and calls it there).
//! Whatever reaches the focus side is forwarded to the agent from the agent side. The agent's
//! TCP twin port (large NOTIFYs go over TCP) is relayed unimpaired: TCP repairs its own losses.
//!
//! Random impairments come from a seeded generator per direction, so a failing run names the
//! seed that reproduces its impairment pattern (the thread schedule still varies). Rules
//! ([`Relay::drop_next`], [`Relay::duplicate_next`]) impair chosen datagrams for sure: the
//! classic bugs (a lost ACK, a duplicated MESSAGE) are provoked on purpose, not by luck.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the relay does to datagrams, per direction.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Probability a datagram is dropped.
    pub loss: f64,
    /// Probability a datagram is held back by `reorder_delay`, so later ones overtake it.
    pub reorder: f64,
    /// Probability a datagram is sent twice.
    pub duplicate: f64,
    /// Delay every datagram gets.
    pub delay: Duration,
    /// Extra delay of a reordered datagram (the bound on how late it comes).
    pub reorder_delay: Duration,
    /// Most datagrams dropped in a row per direction: losses are bounded, so a transaction
    /// retransmitted by the RFC's timers always gets through before its timeout.
    pub max_burst_loss: u32,
}

impl Impairment {
    /// A clean path (rules still apply).
    pub const NONE: Impairment = Impairment {
        loss: 0.0,
        reorder: 0.0,
        duplicate: 0.0,
        delay: Duration::ZERO,
        reorder_delay: Duration::ZERO,
        max_burst_loss: 0,
    };

    /// The bad network: 5 % loss, 10 % reordering, 1 % duplication.
    pub const LOSSY: Impairment = Impairment {
        loss: 0.05,
        reorder: 0.10,
        duplicate: 0.01,
        delay: Duration::from_millis(1),
        reorder_delay: Duration::from_millis(30),
        max_burst_loss: 2,
    };
}

/// A direction through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the agent to the focus.
    ToFocus,
    /// From the focus to the agent.
    FromFocus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Drop,
    Duplicate,
}

type Matcher = Box<dyn Fn(&str) -> bool + Send>;

/// Impair the next `remaining` datagrams in `dir` that `matches` accepts.
struct Rule {
    dir: Dir,
    action: Action,
    matches: Matcher,
    remaining: usize,
    hits: Arc<AtomicUsize>,
}

/// The datagrams in `dir` that `matches` accepts and the relay let through, with when.
struct Tap {
    dir: Dir,
    matches: Matcher,
    log: Log,
}

/// Datagrams a tap saw: when the relay took them in, and their text.
pub type Log = Arc<Mutex<Vec<(Instant, String)>>>;

/// What the relay did, over both directions.
#[derive(Debug, Default)]
pub struct Stats {
    pub forwarded: AtomicUsize,
    pub dropped: AtomicUsize,
    pub reordered: AtomicUsize,
    pub duplicated: AtomicUsize,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub forwarded: usize,
    pub dropped: usize,
    pub reordered: usize,
    pub duplicated: usize,
}

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, o: Counts) -> Counts {
        Counts {
            forwarded: self.forwarded + o.forwarded,
            dropped: self.dropped + o.dropped,
            reordered: self.reordered + o.reordered,
            duplicated: self.duplicated + o.duplicated,
        }
    }
}

struct Shared {
    /// Where the agent's datagrams go: the focus's address, or the last source that sent to
    /// the focus side (a relay made before the focus started learns it from the focus).
    focus: Mutex<Option<SocketAddr>>,
    impairment: Impairment,
    rules: Mutex<Vec<Rule>>,
    taps: Mutex<Vec<Tap>>,
    stats: Stats,
    stop: AtomicBool,
}

/// A relay for one agent (see the module doc). Stops on drop.
pub struct Relay {
    /// Where the agent sends.
    pub agent_side: SocketAddr,
    /// What the focus sees as the agent (its Via and Contact address).
    pub focus_side: SocketAddr,
    pub seed: u64,
    shared: Arc<Shared>,
}

/// How long a relay thread blocks in one receive before it checks its queue and `stop`.
const TICK: Duration = Duration::from_millis(20);

impl Relay {
    /// A relay between `agent` (a UDP address, with an optional TCP twin on the same port)
    /// and the focus at `focus`, impairing both directions as `impairment` says, seeded.
    pub fn start(agent: SocketAddr, focus: SocketAddr, impairment: Impairment, seed: u64) -> Relay {
        Relay::open(agent, Some(focus), impairment, seed)
    }

    /// A relay for an agent the focus calls first (a recipient configured before the focus
    /// starts): the agent's datagrams go to wherever the focus last sent from.
    pub fn learning(agent: SocketAddr, impairment: Impairment, seed: u64) -> Relay {
        Relay::open(agent, None, impairment, seed)
    }

    fn open(
        agent: SocketAddr,
        focus: Option<SocketAddr>,
        impairment: Impairment,
        seed: u64,
    ) -> Relay {
        let ip = agent.ip();
        let agent_sock = UdpSocket::bind((ip, 0)).expect("binding the relay's agent side");
        let (focus_sock, listener) = (0..50)
            .find_map(|_| {
                let udp = UdpSocket::bind((ip, 0)).ok()?;
                let port = udp.local_addr().ok()?.port();
                let l = TcpListener::bind((ip, port)).ok()?;
                Some((udp, l))
            })
            .expect("no UDP port with a free TCP twin for the relay");
        let shared = Arc::new(Shared {
            focus: Mutex::new(focus),
            impairment,
            rules: Mutex::new(Vec::new()),
            taps: Mutex::new(Vec::new()),
            stats: Stats::default(),
            stop: AtomicBool::new(false),
        });
        let relay = Relay {
            agent_side: agent_sock.local_addr().unwrap(),
            focus_side: focus_sock.local_addr().unwrap(),
            seed,
            shared: shared.clone(),
        };
        let (a_recv, a_send) = (agent_sock.try_clone().unwrap(), agent_sock);
        let (f_recv, f_send) = (focus_sock.try_clone().unwrap(), focus_sock);
        let s = shared.clone();
        std::thread::spawn(move || pump(&s, Dir::ToFocus, a_recv, f_send, None, seed));
        let s = shared.clone();
        std::thread::spawn(move || {
            pump(
                &s,
                Dir::FromFocus,
                f_recv,
                a_send,
                Some(agent),
                seed ^ 0x9e37_79b9_7f4a_7c15,
            )
        });
        std::thread::spawn(move || tcp_twin(&shared, listener, agent));
        relay
    }

    /// Drops the next `count` datagrams in `dir` whose text `matches` accepts; the counter
    /// says how many were dropped so far.
    pub fn drop_next(
        &self,
        dir: Dir,
        count: usize,
        matches: impl Fn(&str) -> bool + Send + 'static,
    ) -> Arc<AtomicUsize> {
        self.rule(dir, Action::Drop, count, Box::new(matches))
    }

    /// Sends the next `count` datagrams in `dir` that `matches` accepts twice.
    pub fn duplicate_next(
        &self,
        dir: Dir,
        count: usize,
        matches: impl Fn(&str) -> bool + Send + 'static,
    ) -> Arc<AtomicUsize> {
        self.rule(dir, Action::Duplicate, count, Box::new(matches))
    }

    /// Records every datagram in `dir` that `matches` accepts and that is not dropped.
    pub fn tap(&self, dir: Dir, matches: impl Fn(&str) -> bool + Send + 'static) -> Log {
        let log = Log::default();
        self.shared.taps.lock().unwrap().push(Tap {
            dir,
            matches: Box::new(matches),
            log: log.clone(),
        });
        log
    }

    fn rule(&self, dir: Dir, action: Action, count: usize, matches: Matcher) -> Arc<AtomicUsize> {
        let hits = Arc::new(AtomicUsize::new(0));
        self.shared.rules.lock().unwrap().push(Rule {
            dir,
            action,
            matches,
            remaining: count,
            hits: hits.clone(),
        });
        hits
    }

    /// What the relay did so far.
    pub fn counts(&self) -> Counts {
        let s = &self.shared.stats;
        Counts {
            forwarded: s.forwarded.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            reordered: s.reordered.load(Ordering::Relaxed),
            duplicated: s.duplicated.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Wake the TCP accept loop so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.focus_side, Duration::from_millis(200));
    }
}

/// True for a request with `method` (for rules).
pub fn is_request(text: &str, method: &str) -> bool {
    text.starts_with(&format!("{method} "))
}

/// True for a response with `status` whose CSeq names `method`.
pub fn is_response(text: &str, status: u16, method: &str) -> bool {
    text.starts_with(&format!("SIP/2.0 {status} "))
        && text
            .lines()
            .any(|l| l.starts_with("CSeq:") && l.trim_end().ends_with(&format!(" {method}")))
}

/// splitmix64: small, seeded, good enough to pick which datagrams to impair.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One direction: receive, decide, schedule, send what is due.
fn pump(
    shared: &Shared,
    dir: Dir,
    recv: UdpSocket,
    send: UdpSocket,
    to: Option<SocketAddr>,
    seed: u64,
) {
    let imp = shared.impairment;
    let stats = &shared.stats;
    let mut rng = Rng(seed);
    let mut queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>> = BinaryHeap::new();
    let mut order = 0u64;
    let mut burst = 0u32;
    let mut buf = vec![0u8; 65536];
    while !shared.stop.load(Ordering::Relaxed) {
        let wait = queue
            .peek()
            .map_or(TICK, |Reverse((due, _, _))| {
                due.saturating_duration_since(Instant::now())
            })
            .clamp(Duration::from_millis(1), TICK);
        recv.set_read_timeout(Some(wait)).unwrap();
        if let Ok((n, from)) = recv.recv_from(&mut buf) {
            if dir == Dir::FromFocus {
                *shared.focus.lock().unwrap() = Some(from);
            }
            let datagram = buf[..n].to_vec();
            let now = Instant::now();
            // Three draws per datagram whatever happens: the pattern depends on the seed and
            // the datagram's position only.
            let (l, r, d) = (rng.next(), rng.next(), rng.next());
            let mut schedule = |at: Instant, bytes: Vec<u8>| {
                order += 1;
                queue.push(Reverse((at, order, bytes)));
            };
            match rule_for(shared, dir, &datagram) {
                Some(Action::Drop) => {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Some(Action::Duplicate) => {
                    record(shared, dir, &datagram, now);
                    stats.duplicated.fetch_add(1, Ordering::Relaxed);
                    schedule(now + imp.delay, datagram.clone());
                    schedule(now + imp.delay + Duration::from_millis(2), datagram);
                }
                None if l < imp.loss && burst < imp.max_burst_loss => {
                    burst += 1;
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    burst = 0;
                    record(shared, dir, &datagram, now);
                    let mut at = now + imp.delay;
                    if r < imp.reorder {
                        stats.reordered.fetch_add(1, Ordering::Relaxed);
                        at += imp.reorder_delay;
                    }
                    if d < imp.duplicate {
                        stats.duplicated.fetch_add(1, Ordering::Relaxed);
                        schedule(at + Duration::from_millis(2), datagram.clone());
                    }
                    schedule(at, datagram);
                }
            }
        }
        let now = Instant::now();
        let Some(to) = to.or_else(|| *shared.focus.lock().unwrap()) else {
            continue;
        };
        while queue.peek().is_some_and(|Reverse((due, _, _))| *due <= now) {
            let Reverse((_, _, bytes)) = queue.pop().unwrap();
            if send.send_to(&bytes, to).is_ok() {
                stats.forwarded.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Hands a datagram that goes through to the taps that want it.
fn record(shared: &Shared, dir: Dir, datagram: &[u8], at: Instant) {
    let taps = shared.taps.lock().unwrap();
    if taps.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(datagram);
    for t in taps.iter().filter(|t| t.dir == dir && (t.matches)(&text)) {
        t.log.lock().unwrap().push((at, text.to_string()));
    }
}

/// The action of the first live rule for this datagram, using one of its count.
fn rule_for(shared: &Shared, dir: Dir, datagram: &[u8]) -> Option<Action> {
    let text = String::from_utf8_lossy(datagram);
    let mut rules = shared.rules.lock().unwrap();
    let rule = rules
        .iter_mut()
        .find(|r| r.dir == dir && r.remaining > 0 && (r.matches)(&text))?;
    rule.remaining -= 1;
    rule.hits.fetch_add(1, Ordering::Relaxed);
    Some(rule.action)
}

/// Connections to the focus side's TCP port are piped to the agent's TCP twin, unimpaired.
fn tcp_twin(shared: &Shared, listener: TcpListener, agent: SocketAddr) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(inbound) = stream else { continue };
        let Ok(outbound) = TcpStream::connect_timeout(&agent, super::WAIT) else {
            continue;
        };
        let (Ok(in2), Ok(out2)) = (inbound.try_clone(), outbound.try_clone()) else {
            continue;
        };
        std::thread::spawn(move || pipe(inbound, outbound));
        std::thread::spawn(move || pipe(out2, in2));
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
