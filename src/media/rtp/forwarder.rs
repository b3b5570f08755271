//! The RTP plane: a UDP port pair per participant, the participant's address latched from its
//! first packet (symmetric RTP, RFC 4961), and packets from the floor holder only forwarded to
//! every other participant, each through its own [`OutStream`] rewrite. It runs in its own
//! tokio tasks: the session actor only says who holds the floor.
//!
//! RTCP is terminated: reports from participants only prove they are alive, and the focus
//! sends each receiver its own sender reports for the stream it forwards.

use super::packet::{rewrite, RtpHeader};
use super::stream::OutStream;
use bytes::{BufMut, BytesMut};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// RTP plane limits.
#[derive(Debug, Clone)]
pub struct RtpSettings {
    /// The address sockets bind to and SDP announces.
    pub bind: IpAddr,
    /// Even port range for RTP (RTCP on the next odd port).
    pub port_min: u16,
    pub port_max: u16,
    /// A participant silent (no RTP or RTCP) this long is reported.
    pub silence_timeout: Duration,
    /// Packets per second one source address may send to a participant's port; beyond,
    /// its packets are dropped (flood) before they can latch or be forwarded.
    pub max_packet_rate: u32,
}

/// News for the session about a participant's RTP leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpEvent {
    /// No RTP and no RTCP for the silence timeout.
    Silent,
}

/// Receives RTP events (implemented by the session actor).
pub trait RtpEvents: Send + Sync + 'static {
    fn on_rtp_event(&self, pid: u64, event: RtpEvent);
}

/// Why a leg could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RtpError {
    #[error("no free RTP port pair")]
    NoPorts,
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// One participant's leg.
pub struct RtpMember {
    pub pid: u64,
    pub rtp_port: u16,
    rtp: Arc<UdpSocket>,
    rtcp: Arc<UdpSocket>,
    /// Where its RTP and RTCP come from (latched), else where its SDP said.
    remote: Mutex<Option<SocketAddr>>,
    remote_rtcp: Mutex<Option<SocketAddr>>,
    out: Mutex<OutStream>,
    last_heard: Mutex<Instant>,
    /// Packets per source in the current one-second window (flood control).
    rate: Mutex<SourceRates>,
    muted: AtomicBool,
    group: Weak<RtpGroup>,
    events: Arc<dyn RtpEvents>,
    cancel: CancellationToken,
    reported_silent: AtomicBool,
}

/// The legs of one session and who may talk.
pub struct RtpGroup {
    members: RwLock<Arc<Vec<Arc<RtpMember>>>>,
    /// The participant whose RTP is forwarded (0: nobody).
    holder: AtomicU64,
}

impl RtpGroup {
    fn snapshot(&self) -> Arc<Vec<Arc<RtpMember>>> {
        self.members
            .read()
            .map(|m| m.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Gives the floor to `pid` (0: nobody): only its packets are forwarded from now on.
    pub fn set_holder(&self, pid: u64) {
        self.holder.store(pid, Ordering::SeqCst);
    }

    /// Who holds the floor.
    pub fn holder(&self) -> u64 {
        self.holder.load(Ordering::SeqCst)
    }
}

/// Allocates port pairs and runs the legs.
pub struct RtpPlane {
    settings: RtpSettings,
    free: Mutex<BTreeSet<u16>>,
    runtime: tokio::runtime::Handle,
}

impl RtpPlane {
    /// A plane over the configured port range. Must be created inside the I/O runtime.
    pub fn new(settings: RtpSettings) -> RtpPlane {
        let start = settings.port_min + settings.port_min % 2;
        let free = (start..settings.port_max.saturating_sub(1))
            .step_by(2)
            .collect();
        RtpPlane {
            settings,
            free: Mutex::new(free),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    pub fn settings(&self) -> &RtpSettings {
        &self.settings
    }

    /// A new group (one per session).
    pub fn group(&self) -> Arc<RtpGroup> {
        Arc::new(RtpGroup {
            members: RwLock::new(Arc::new(Vec::new())),
            holder: AtomicU64::new(0),
        })
    }

    /// Sets up a participant's leg: binds a port pair and starts its tasks. `expected` is the
    /// address its SDP announced, used until its first packet arrives.
    pub fn add(
        self: &Arc<Self>,
        group: &Arc<RtpGroup>,
        pid: u64,
        expected: Option<SocketAddr>,
        clock_rate: u32,
        events: Arc<dyn RtpEvents>,
    ) -> Result<Arc<RtpMember>, RtpError> {
        let (rtp, rtcp, port) = self.bind_pair()?;
        let member = Arc::new(RtpMember {
            pid,
            rtp_port: port,
            rtp: Arc::new(rtp),
            rtcp: Arc::new(rtcp),
            remote: Mutex::new(expected),
            remote_rtcp: Mutex::new(
                expected.map(|a| SocketAddr::new(a.ip(), a.port().saturating_add(1))),
            ),
            out: Mutex::new(OutStream::new(
                rand::random(),
                clock_rate,
                rand::random(),
                rand::random(),
            )),
            last_heard: Mutex::new(Instant::now()),
            rate: Mutex::new(SourceRates::new(Instant::now())),
            muted: AtomicBool::new(false),
            group: Arc::downgrade(group),
            events,
            cancel: CancellationToken::new(),
            reported_silent: AtomicBool::new(false),
        });
        {
            let mut guard = group.members.write().unwrap_or_else(|e| e.into_inner());
            let mut list = guard.as_ref().clone();
            list.push(member.clone());
            *guard = Arc::new(list);
        }
        metrics::gauge!("focus_rtp_legs").increment(1.0);
        self.runtime
            .spawn(rtp_loop(member.clone(), self.settings.max_packet_rate));
        self.runtime
            .spawn(rtcp_loop(member.clone(), self.settings.silence_timeout));
        Ok(member)
    }

    /// Ends a participant's leg and frees its ports.
    pub fn remove(&self, group: &Arc<RtpGroup>, pid: u64) {
        let removed = {
            let mut guard = group.members.write().unwrap_or_else(|e| e.into_inner());
            let mut list = guard.as_ref().clone();
            let before = list.len();
            let gone: Vec<Arc<RtpMember>> = list.iter().filter(|m| m.pid == pid).cloned().collect();
            list.retain(|m| m.pid != pid);
            *guard = Arc::new(list);
            if before == guard.len() {
                Vec::new()
            } else {
                gone
            }
        };
        if group.holder() == pid {
            group.set_holder(0);
        }
        for m in removed {
            m.cancel.cancel();
            metrics::gauge!("focus_rtp_legs").decrement(1.0);
            if let Ok(mut free) = self.free.lock() {
                free.insert(m.rtp_port);
            }
        }
    }

    /// Mutes (drops everything it sends) or unmutes a participant.
    pub fn set_muted(&self, group: &Arc<RtpGroup>, pid: u64, muted: bool) {
        for m in group.snapshot().iter().filter(|m| m.pid == pid) {
            m.muted.store(muted, Ordering::SeqCst);
        }
    }

    fn bind_pair(&self) -> Result<(UdpSocket, UdpSocket, u16), RtpError> {
        let mut tried = 0;
        loop {
            let port = {
                let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
                let p = free.iter().next().copied().ok_or(RtpError::NoPorts)?;
                free.remove(&p);
                p
            };
            let pair = std::net::UdpSocket::bind(SocketAddr::new(self.settings.bind, port))
                .and_then(|a| {
                    let b =
                        std::net::UdpSocket::bind(SocketAddr::new(self.settings.bind, port + 1))?;
                    a.set_nonblocking(true)?;
                    b.set_nonblocking(true)?;
                    Ok((a, b))
                });
            match pair {
                Ok((a, b)) => {
                    let _guard = self.runtime.enter();
                    return Ok((UdpSocket::from_std(a)?, UdpSocket::from_std(b)?, port));
                }
                // Taken by someone else: try the next pair (it stays out of the pool).
                Err(_) if tried < 64 => tried += 1,
                Err(e) => return Err(RtpError::Io(e)),
            }
        }
    }
}

/// Receives a participant's RTP and forwards it when it holds the floor.
async fn rtp_loop(me: Arc<RtpMember>, max_rate: u32) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = tokio::select! {
            _ = me.cancel.cancelled() => return,
            r = me.rtp.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        let now = Instant::now();
        // Per source: a stranger flooding the port neither uses up the participant's own
        // budget nor latches the leg to itself.
        if over_rate(&me, from, max_rate, now) {
            metrics::counter!("focus_rtp_packets_dropped_total", "reason" => "flood").increment(1);
            continue;
        }
        heard(&me, now);
        if let Ok(mut r) = me.remote.lock() {
            // Symmetric RTP: answer where it really sends from (NAT, RFC 4961).
            *r = Some(from);
        }
        let Some(group) = me.group.upgrade() else {
            return;
        };
        if group.holder() != me.pid || me.muted.load(Ordering::Relaxed) {
            metrics::counter!("focus_rtp_packets_dropped_total", "reason" => "not_holder")
                .increment(1);
            continue;
        }
        let Ok(header) = RtpHeader::parse(&buf[..n]) else {
            metrics::counter!("focus_rtp_packets_dropped_total", "reason" => "malformed")
                .increment(1);
            continue;
        };
        let payload_len = n.saturating_sub(header.payload_offset);
        let mut out = BytesMut::with_capacity(n);
        for other in group.snapshot().iter().filter(|m| m.pid != me.pid) {
            let Some(to) = other.remote.lock().ok().and_then(|r| *r) else {
                continue;
            };
            let (seq, ts, marker, ssrc) = match other.out.lock() {
                Ok(mut s) => {
                    let (seq, ts, marker) = s.map(&header, payload_len, now);
                    (seq, ts, marker, s.ssrc)
                }
                Err(_) => continue,
            };
            out.clear();
            out.put_slice(&buf[..n]);
            rewrite(&mut out, seq, ts, ssrc, marker);
            // From the receiver's own port: the pair it was given in SDP (symmetric RTP).
            if other.rtp.try_send_to(&out, to).is_ok() {
                metrics::counter!("focus_rtp_packets_forwarded_total").increment(1);
            }
        }
        metrics::histogram!("focus_rtp_forward_seconds").record(now.elapsed().as_secs_f64());
    }
}

/// Receives a participant's RTCP (proof of life), sends it sender reports, and reports a
/// participant that went silent.
async fn rtcp_loop(me: Arc<RtpMember>, silence: Duration) {
    let mut buf = vec![0u8; 1500];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut seconds = 0u64;
    loop {
        tokio::select! {
            _ = me.cancel.cancelled() => return,
            _ = tick.tick() => {
                seconds += 1;
                let last = me.last_heard.lock().map(|t| *t).unwrap_or_else(|_| Instant::now());
                if last.elapsed() >= silence && !me.reported_silent.swap(true, Ordering::SeqCst) {
                    metrics::counter!("focus_rtp_silent_total").increment(1);
                    me.events.on_rtp_event(me.pid, RtpEvent::Silent);
                }
                if seconds % 5 == 0 {
                    send_report(&me);
                }
            }
            r = me.rtcp.recv_from(&mut buf) => {
                if let Ok((_, from)) = r {
                    heard(&me, Instant::now());
                    if let Ok(mut rr) = me.remote_rtcp.lock() {
                        *rr = Some(from);
                    }
                    metrics::counter!("focus_rtcp_packets_received_total").increment(1);
                }
            }
        }
    }
}

fn heard(me: &RtpMember, now: Instant) {
    if let Ok(mut t) = me.last_heard.lock() {
        *t = now;
    }
    me.reported_silent.store(false, Ordering::SeqCst);
}

/// Sources counted apart per leg; more in one second share one count.
const MAX_SOURCES: usize = 8;

/// Packet counts per source address in a one-second window.
struct SourceRates {
    start: Instant,
    counts: Vec<(SocketAddr, u32)>,
    others: u32,
}

impl SourceRates {
    fn new(now: Instant) -> SourceRates {
        SourceRates {
            start: now,
            counts: Vec::with_capacity(2),
            others: 0,
        }
    }

    /// Counts a packet from `from`; true when that source is over `max` this second.
    fn count(&mut self, from: SocketAddr, max: u32, now: Instant) -> bool {
        if now.duration_since(self.start) >= Duration::from_secs(1) {
            self.start = now;
            self.counts.clear();
            self.others = 0;
        }
        let i = match self.counts.iter().position(|(a, _)| *a == from) {
            Some(i) => Some(i),
            None if self.counts.len() < MAX_SOURCES => {
                self.counts.push((from, 0));
                Some(self.counts.len() - 1)
            }
            None => None,
        };
        let n = match i {
            Some(i) => &mut self.counts[i].1,
            None => &mut self.others,
        };
        *n = n.saturating_add(1);
        *n > max
    }
}

fn over_rate(me: &RtpMember, from: SocketAddr, max: u32, now: Instant) -> bool {
    match me.rate.lock() {
        Ok(mut r) => r.count(from, max, now),
        Err(_) => false,
    }
}

/// An RTCP sender report (RFC 3550 §6.4.1) for the stream forwarded to `me`.
fn send_report(me: &RtpMember) {
    let Some(to) = me.remote_rtcp.lock().ok().and_then(|r| *r) else {
        return;
    };
    let Ok(s) = me.out.lock() else { return };
    if s.packets == 0 {
        return;
    }
    let ntp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| {
            let secs = d.as_secs() + 2_208_988_800;
            let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
            (secs << 32) | frac
        })
        .unwrap_or(0);
    let mut p = BytesMut::with_capacity(28);
    p.put_u8(0x80);
    p.put_u8(200);
    p.put_u16(6);
    p.put_u32(s.ssrc);
    p.put_u64(ntp);
    p.put_u32(s.last_timestamp());
    p.put_u32(s.packets);
    p.put_u32(s.octets);
    drop(s);
    let _ = me.rtcp.try_send_to(&p, to);
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn a_flooding_source_does_not_use_up_another_sources_budget() {
        let t0 = Instant::now();
        let mut r = SourceRates::new(t0);
        let talker: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let flood: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        for _ in 0..50 {
            assert!(!r.count(flood, 50, t0));
        }
        assert!(
            r.count(flood, 50, t0),
            "the 51st packet of a second is over"
        );
        assert!(!r.count(talker, 50, t0), "the talker has its own budget");
        // A new second starts every count afresh.
        assert!(!r.count(flood, 50, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn sources_beyond_the_table_share_one_count() {
        let t0 = Instant::now();
        let mut r = SourceRates::new(t0);
        for i in 0..MAX_SOURCES as u16 {
            assert!(!r.count(SocketAddr::from(([10, 0, 0, 1], i)), 1, t0));
        }
        assert!(!r.count(SocketAddr::from(([10, 0, 0, 2], 1)), 1, t0));
        assert!(r.count(SocketAddr::from(([10, 0, 0, 3], 1)), 1, t0));
    }
}
