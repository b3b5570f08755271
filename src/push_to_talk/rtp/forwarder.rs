//! The RTP plane: a UDP port pair per participant, bound to the address its SDP announced
//! ([`SourceBinding`]: packets from any other source are dropped, never forwarded, and never
//! move the leg), and packets from the floor holder only forwarded to every other
//! participant, each through its own [`OutStream`] rewrite. It runs in its own tokio tasks:
//! the session actor only says who holds the floor.
//!
//! Port pairs are drawn uniformly from the free ones, so a leg's port says nothing about the
//! next one.
//!
//! A leg's port pair is bound in two steps: [`RtpPorts::reserve`] while the SDP answer is
//! built (the port goes into the answer), [`RtpPlane::add`] once the participant is in the
//! session (the receive tasks start). A reservation that is not used is
//! [released](RtpPorts::release).
//!
//! RTCP is terminated: reports from participants only prove they are alive, and the focus
//! sends each receiver its own sender reports for the stream it forwards.

use super::packet::{rewrite, RtpError as PacketError, RtpHeader};
use super::source::{Admission, Latching, SourceBinding};
use super::stream::OutStream;
use bytes::{BufMut, BytesMut};
use metrics::{Counter, Gauge, Histogram};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// RTP plane limits.
#[derive(Debug, Clone)]
pub struct RtpSettings {
    /// The address sockets bind to.
    pub bind: IpAddr,
    /// Addresses of other IP families (a focus on IPv4 and IPv6): a leg binds the address of
    /// its peer's family.
    pub also_bind: Vec<IpAddr>,
    /// Even port range for RTP (RTCP on the next odd port), both ends included.
    pub port_min: u16,
    pub port_max: u16,
    /// A participant silent (no RTP or RTCP) this long is reported.
    pub silence_timeout: Duration,
    /// Packets per second the participant may send to its port; beyond, its packets are
    /// dropped (flood).
    pub max_packet_rate: u32,
    /// Which source a leg accepts: the signalled one, or one latch to the signalled address.
    pub latching: Latching,
}

/// News for the session about a participant's RTP leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpEvent {
    /// No RTP and no RTCP for the silence timeout.
    Silent,
    /// RTP or RTCP arrived again after [`RtpEvent::Silent`].
    Resumed,
}

/// Receives RTP events (implemented by the session actor).
pub trait RtpEvents: Send + Sync + 'static {
    fn on_rtp_event(&self, pid: u64, event: RtpEvent);
}

/// Port pairs for legs, as the SDP answer needs them: reserved before the answer goes out,
/// released when the answer is not used. Implemented by [`RtpPlane`]; the session state only
/// sees this trait, so it stays free of sockets.
pub trait RtpPorts: Send + Sync + 'static {
    /// Binds a free port pair, in the IP family of `peer`, and keeps it for
    /// [`RtpPlane::add`]; `None` when none is free.
    fn reserve(&self, peer: IpAddr) -> Option<u16>;
    /// Gives back a reservation that no leg took.
    fn release(&self, port: u16);
}

/// Why a leg could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RtpError {
    #[error("no free RTP port pair")]
    NoPorts,
    #[error("RTP port {0} was not reserved")]
    NotReserved(u16),
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

/// The codec a leg carries: its index in the group's codec list (only legs with the same
/// index hear each other: no transcoding), its payload type, and its clock rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegCodec {
    pub index: u8,
    pub payload_type: u8,
    pub clock_rate: u32,
}

impl LegCodec {
    fn pack(self) -> u32 {
        u32::from(self.index) << 8 | u32::from(self.payload_type & 0x7f)
    }

    fn unpack(v: u32) -> (u8, u8) {
        ((v >> 8) as u8, (v & 0x7f) as u8)
    }
}

/// What [`RtpPlane::add`] needs for one participant's leg.
#[derive(Debug, Clone)]
pub struct LegSpec {
    pub pid: u64,
    /// A port [reserved](RtpPorts::reserve) for it.
    pub port: u16,
    /// Where its SDP says it receives, and so where its packets must come from.
    pub expected: Option<SocketAddr>,
    pub codec: LegCodec,
}

/// Why a received packet was not forwarded (the `reason` label of
/// `focus_rtp_packets_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not from the participant's signalled (or latched) source.
    UnknownSource,
    /// The sender is over `max_packet_rate`.
    Flood,
    /// The sender does not hold the floor.
    NotHolder,
    /// The sender was muted by a moderator.
    Muted,
    /// Not an RTP packet.
    Malformed,
    /// A payload type the sender's answer did not give it.
    PayloadType,
    /// A receiver whose leg carries another codec (counted per receiver).
    Codec,
    /// The socket refused the datagram (counted per receiver).
    Send,
}

impl DropReason {
    const ALL: [DropReason; 8] = [
        DropReason::UnknownSource,
        DropReason::Flood,
        DropReason::NotHolder,
        DropReason::Muted,
        DropReason::Malformed,
        DropReason::PayloadType,
        DropReason::Codec,
        DropReason::Send,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::UnknownSource => "unknown_source",
            DropReason::Flood => "flood",
            DropReason::NotHolder => "not_holder",
            DropReason::Muted => "muted",
            DropReason::Malformed => "malformed",
            DropReason::PayloadType => "payload_type",
            DropReason::Codec => "codec",
            DropReason::Send => "send_error",
        }
    }
}

/// What became of one received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded to this many receivers.
    Forwarded(usize),
    Dropped(DropReason),
    /// RTCP multiplexed on the RTP port (RFC 5761): proof of life, terminated.
    Rtcp,
}

/// Metric handles, registered once: the per-packet path does no registry lookups.
struct RtpMetrics {
    forwarded: Counter,
    dropped: [Counter; DropReason::ALL.len()],
    latency: Histogram,
    rtcp: Counter,
    silent: Counter,
    legs: Gauge,
    strangers: StrangerLog,
}

impl RtpMetrics {
    fn new() -> RtpMetrics {
        RtpMetrics {
            forwarded: metrics::counter!("focus_rtp_packets_forwarded_total"),
            dropped: DropReason::ALL.map(
                |r| metrics::counter!("focus_rtp_packets_dropped_total", "reason" => r.label()),
            ),
            latency: metrics::histogram!("focus_rtp_forward_seconds"),
            rtcp: metrics::counter!("focus_rtcp_packets_received_total"),
            silent: metrics::counter!("focus_rtp_silent_total"),
            legs: metrics::gauge!("focus_rtp_legs"),
            strangers: StrangerLog::default(),
        }
    }

    fn dropped(&self, reason: DropReason, n: u64) {
        if let Some(i) = DropReason::ALL.iter().position(|r| *r == reason) {
            self.dropped[i].increment(n);
        }
    }
}

/// One participant's leg.
pub struct RtpMember {
    pub pid: u64,
    pub rtp_port: u16,
    rtp: UdpSocket,
    rtcp: UdpSocket,
    /// The same sockets for sending: a plain non-blocking `sendto` from any thread, without
    /// the reactor's readiness bookkeeping (which refuses sends until it has seen the socket
    /// writable once).
    rtp_send: std::net::UdpSocket,
    rtcp_send: std::net::UdpSocket,
    /// The sources its RTP and RTCP must come from (where its SDP said, or the one latch),
    /// which are also where it receives.
    source: Mutex<SourceBinding>,
    rtcp_source: Mutex<SourceBinding>,
    /// [`LegCodec::pack`]: codec index and payload type.
    codec: AtomicU32,
    out: Mutex<OutStream>,
    last_heard: Mutex<Instant>,
    /// Packets per source in the current one-second window (flood control).
    rate: Mutex<SourceRates>,
    max_rate: u32,
    muted: AtomicBool,
    group: Weak<RtpGroup>,
    events: Arc<dyn RtpEvents>,
    cancel: CancellationToken,
    reported_silent: AtomicBool,
    metrics: Arc<RtpMetrics>,
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

    /// The participants with a leg.
    pub fn pids(&self) -> Vec<u64> {
        self.snapshot().iter().map(|m| m.pid).collect()
    }

    /// Legs in the group.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Allocates port pairs and runs the legs.
pub struct RtpPlane {
    settings: RtpSettings,
    /// Free pairs (their even ports), in no order: drawn at random.
    free: Mutex<Vec<u16>>,
    /// Port pairs bound for answers not yet turned into legs.
    reserved: Mutex<HashMap<u16, (std::net::UdpSocket, std::net::UdpSocket)>>,
    runtime: tokio::runtime::Handle,
    metrics: Arc<RtpMetrics>,
}

impl RtpPlane {
    /// A plane over the configured port range. Must be created inside the I/O runtime.
    pub fn new(settings: RtpSettings) -> RtpPlane {
        let start = settings.port_min.saturating_add(settings.port_min % 2);
        let free = (start..settings.port_max)
            .step_by(2)
            .filter(|p| p.checked_add(1).is_some_and(|q| q <= settings.port_max))
            .collect();
        RtpPlane {
            settings,
            free: Mutex::new(free),
            reserved: Mutex::new(HashMap::new()),
            runtime: tokio::runtime::Handle::current(),
            metrics: Arc::new(RtpMetrics::new()),
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

    /// Port pairs free for new legs.
    pub fn free_ports(&self) -> usize {
        self.free.lock().map_or(0, |f| f.len())
    }

    /// Starts a participant's leg on its reserved port pair.
    pub fn add(
        self: &Arc<Self>,
        group: &Arc<RtpGroup>,
        spec: LegSpec,
        events: Arc<dyn RtpEvents>,
    ) -> Result<Arc<RtpMember>, RtpError> {
        let (rtp, rtcp) = self
            .reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&spec.port)
            .ok_or(RtpError::NotReserved(spec.port))?;
        let sockets = rtp.try_clone().and_then(|a| Ok((a, rtcp.try_clone()?)));
        let (rtp_send, rtcp_send) = match sockets {
            Ok(x) => x,
            Err(e) => {
                self.give_back(spec.port);
                return Err(RtpError::Io(e));
            }
        };
        let (rtp, rtcp) = {
            let _guard = self.runtime.enter();
            match (UdpSocket::from_std(rtp), UdpSocket::from_std(rtcp)) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => {
                    self.give_back(spec.port);
                    return Err(RtpError::Io(e));
                }
            }
        };
        let now = Instant::now();
        let member = Arc::new(RtpMember {
            pid: spec.pid,
            rtp_port: spec.port,
            rtp,
            rtcp,
            rtp_send,
            rtcp_send,
            source: Mutex::new(SourceBinding::new(self.settings.latching, spec.expected)),
            rtcp_source: Mutex::new(SourceBinding::new(
                self.settings.latching,
                spec.expected.map(rtcp_of),
            )),
            codec: AtomicU32::new(spec.codec.pack()),
            out: Mutex::new(OutStream::new(
                rand::random(),
                spec.codec.clock_rate,
                rand::random(),
                rand::random(),
            )),
            last_heard: Mutex::new(now),
            rate: Mutex::new(SourceRates::new(now)),
            max_rate: self.settings.max_packet_rate,
            muted: AtomicBool::new(false),
            group: Arc::downgrade(group),
            events,
            cancel: CancellationToken::new(),
            reported_silent: AtomicBool::new(false),
            metrics: self.metrics.clone(),
        });
        {
            let mut guard = group.members.write().unwrap_or_else(|e| e.into_inner());
            let mut list = guard.as_ref().clone();
            list.push(member.clone());
            *guard = Arc::new(list);
        }
        self.metrics.legs.increment(1.0);
        self.runtime.spawn(rtp_loop(member.clone()));
        self.runtime
            .spawn(rtcp_loop(member.clone(), self.settings.silence_timeout));
        Ok(member)
    }

    /// A new offer/answer round moved a participant's media address or codec.
    pub fn update(
        &self,
        group: &Arc<RtpGroup>,
        pid: u64,
        expected: Option<SocketAddr>,
        codec: LegCodec,
    ) {
        for m in group.snapshot().iter().filter(|m| m.pid == pid) {
            if let (Some(a), Ok(mut s)) = (expected, m.source.lock()) {
                s.resignal(a);
            }
            if let (Some(a), Ok(mut s)) = (expected, m.rtcp_source.lock()) {
                s.resignal(rtcp_of(a));
            }
            m.codec.store(codec.pack(), Ordering::SeqCst);
        }
    }

    /// Ends a participant's leg and frees its ports.
    pub fn remove(&self, group: &Arc<RtpGroup>, pid: u64) {
        let removed: Vec<Arc<RtpMember>> = {
            let mut guard = group.members.write().unwrap_or_else(|e| e.into_inner());
            let (gone, kept): (Vec<_>, Vec<_>) = guard.iter().cloned().partition(|m| m.pid == pid);
            *guard = Arc::new(kept);
            gone
        };
        if group.holder() == pid {
            group.set_holder(0);
        }
        for m in removed {
            m.cancel.cancel();
            self.metrics.legs.decrement(1.0);
            self.give_back(m.rtp_port);
        }
    }

    /// Mutes (drops everything it sends) or unmutes a participant.
    pub fn set_muted(&self, group: &Arc<RtpGroup>, pid: u64, muted: bool) {
        for m in group.snapshot().iter().filter(|m| m.pid == pid) {
            m.muted.store(muted, Ordering::SeqCst);
        }
    }

    fn give_back(&self, port: u16) {
        if let Ok(mut free) = self.free.lock() {
            free.push(port);
        }
    }

    /// Binds a free pair drawn uniformly at random (nothing to predict from the pairs given
    /// before, and several focus processes on one host rarely race for the same ports), on
    /// the bind address of `peer`'s IP family.
    fn bind_pair(
        &self,
        peer: IpAddr,
    ) -> Result<(std::net::UdpSocket, std::net::UdpSocket, u16), RtpError> {
        let v6 = peer.to_canonical().is_ipv6();
        let bind = std::iter::once(&self.settings.bind)
            .chain(&self.settings.also_bind)
            .find(|b| b.is_ipv6() == v6)
            .copied()
            .unwrap_or(self.settings.bind);
        let mut tried = 0;
        loop {
            let port = {
                let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
                if free.is_empty() {
                    return Err(RtpError::NoPorts);
                }
                let i = rand::random_range(0..free.len());
                free.swap_remove(i)
            };
            let pair = std::net::UdpSocket::bind(SocketAddr::new(bind, port)).and_then(|a| {
                let b = std::net::UdpSocket::bind(SocketAddr::new(bind, port + 1))?;
                a.set_nonblocking(true)?;
                b.set_nonblocking(true)?;
                Ok((a, b))
            });
            match pair {
                Ok((a, b)) => return Ok((a, b, port)),
                // Taken by someone else: try another pair (this one stays out of the pool).
                Err(_) if tried < 64 => tried += 1,
                Err(e) => return Err(RtpError::Io(e)),
            }
        }
    }
}

impl RtpPorts for RtpPlane {
    fn reserve(&self, peer: IpAddr) -> Option<u16> {
        match self.bind_pair(peer) {
            Ok((rtp, rtcp, port)) => {
                self.reserved
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(port, (rtp, rtcp));
                Some(port)
            }
            Err(e) => {
                metrics::counter!("focus_rtp_ports_exhausted_total").increment(1);
                crate::warn_limited!(error = %e, "no RTP port pair for a new leg");
                None
            }
        }
    }

    fn release(&self, port: u16) {
        let taken = self
            .reserved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&port);
        if taken.is_some() {
            self.give_back(port);
        }
    }
}

impl RtpMember {
    /// Handles one datagram that arrived on this leg's RTP port at `now`: forwards it to
    /// every other leg when this participant holds the floor (the hot path; `scratch` is the
    /// caller's reused buffer, so nothing is allocated per packet).
    pub fn on_packet(&self, packet: &[u8], now: Instant, scratch: &mut Vec<u8>) -> Outcome {
        let outcome = self.forward(packet, now, scratch);
        match outcome {
            Outcome::Forwarded(n) => {
                self.metrics.forwarded.increment(n as u64);
                self.metrics.latency.record(now.elapsed().as_secs_f64());
            }
            Outcome::Dropped(reason) => self.metrics.dropped(reason, 1),
            Outcome::Rtcp => self.metrics.rtcp.increment(1),
        }
        outcome
    }

    fn forward(&self, packet: &[u8], now: Instant, scratch: &mut Vec<u8>) -> Outcome {
        let header = match RtpHeader::parse(packet) {
            Ok(h) => h,
            Err(PacketError::Rtcp) => return Outcome::Rtcp,
            Err(_) => return Outcome::Dropped(DropReason::Malformed),
        };
        let Some(group) = self.group.upgrade() else {
            return Outcome::Dropped(DropReason::NotHolder);
        };
        if group.holder() != self.pid {
            return Outcome::Dropped(DropReason::NotHolder);
        }
        if self.muted.load(Ordering::Relaxed) {
            return Outcome::Dropped(DropReason::Muted);
        }
        let (codec, pt) = LegCodec::unpack(self.codec.load(Ordering::Relaxed));
        if header.payload_type != pt {
            return Outcome::Dropped(DropReason::PayloadType);
        }
        let payload_len = packet.len().saturating_sub(header.payload_offset);
        let mut sent = 0;
        for other in group.snapshot().iter().filter(|m| m.pid != self.pid) {
            let (their_codec, their_pt) = LegCodec::unpack(other.codec.load(Ordering::Relaxed));
            if their_codec != codec {
                self.metrics.dropped(DropReason::Codec, 1);
                continue;
            }
            let Some(to) = other.source.lock().ok().and_then(|s| s.remote()) else {
                continue;
            };
            let (seq, ts, marker, ssrc) = match other.out.lock() {
                Ok(mut s) => {
                    let (seq, ts, marker) = s.map(&header, payload_len, now);
                    (seq, ts, marker, s.ssrc)
                }
                Err(_) => continue,
            };
            scratch.clear();
            scratch.extend_from_slice(packet);
            rewrite(scratch, seq, ts, ssrc, marker);
            scratch[1] = (scratch[1] & 0x80) | their_pt;
            // From the receiver's own port: the pair it was given in SDP (symmetric RTP).
            match other.rtp_send.send_to(scratch, to) {
                Ok(_) => sent += 1,
                Err(_) => self.metrics.dropped(DropReason::Send, 1),
            }
        }
        Outcome::Forwarded(sent)
    }

    /// Handles a datagram from `from` on the RTP port: only the participant's own source is
    /// heard (liveness) and may be forwarded; anyone else's packet is dropped and counted
    /// (`unknown_source`) before it can touch the leg.
    pub fn on_datagram(
        &self,
        from: SocketAddr,
        packet: &[u8],
        now: Instant,
        scratch: &mut Vec<u8>,
    ) -> Outcome {
        if !self.admit(&self.source, from, now) {
            return Outcome::Dropped(DropReason::UnknownSource);
        }
        if self.over_rate(from, now) {
            self.metrics.dropped(DropReason::Flood, 1);
            return Outcome::Dropped(DropReason::Flood);
        }
        self.heard(now);
        self.on_packet(packet, now, scratch)
    }

    /// Whether `from` is the participant's source on the port `binding` guards; a refusal is
    /// counted and (at a bounded cadence) logged.
    fn admit(&self, binding: &Mutex<SourceBinding>, from: SocketAddr, now: Instant) -> bool {
        let admission = binding
            .lock()
            .map_or(Admission::Refused, |mut b| b.admit(from));
        match admission {
            Admission::Accepted => true,
            Admission::Latched => {
                tracing::debug!(pid = self.pid, port = self.rtp_port, source = %from, "RTP leg latched");
                true
            }
            Admission::Refused => {
                self.metrics.dropped(DropReason::UnknownSource, 1);
                self.metrics
                    .strangers
                    .note(self.pid, self.rtp_port, from, now);
                false
            }
        }
    }

    /// Counts a datagram from `from`; true when that source is over the packet rate. Per
    /// source, so a burst from one source does not use up another's budget.
    fn over_rate(&self, from: SocketAddr, now: Instant) -> bool {
        match self.rate.lock() {
            Ok(mut r) => r.count(from, self.max_rate, now),
            Err(_) => false,
        }
    }

    /// RTP or RTCP arrived: the participant is alive.
    fn heard(&self, now: Instant) {
        if let Ok(mut t) = self.last_heard.lock() {
            *t = now;
        }
        if self.reported_silent.swap(false, Ordering::SeqCst) {
            self.events.on_rtp_event(self.pid, RtpEvent::Resumed);
        }
    }
}

/// Receives a participant's RTP and forwards it when it holds the floor.
async fn rtp_loop(me: Arc<RtpMember>) {
    let mut buf = vec![0u8; 2048];
    let mut scratch = Vec::with_capacity(2048);
    loop {
        let (n, from) = tokio::select! {
            _ = me.cancel.cancelled() => return,
            r = me.rtp.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
        };
        me.on_datagram(from, &buf[..n], Instant::now(), &mut scratch);
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
                    me.metrics.silent.increment(1);
                    me.events.on_rtp_event(me.pid, RtpEvent::Silent);
                }
                if seconds % 5 == 0 {
                    send_report(&me);
                }
            }
            r = me.rtcp.recv_from(&mut buf) => {
                if let Ok((_, from)) = r {
                    let now = Instant::now();
                    if me.admit(&me.rtcp_source, from, now) {
                        me.heard(now);
                        me.metrics.rtcp.increment(1);
                    }
                }
            }
        }
    }
}

/// The RTCP address that goes with an RTP address (RFC 3550 §11: the next port).
fn rtcp_of(rtp: SocketAddr) -> SocketAddr {
    SocketAddr::new(rtp.ip(), rtp.port().saturating_add(1))
}

/// How often refused sources are logged at most: an attacker spraying every port must not
/// flood the log as well; the metric counts every packet.
const STRANGER_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The plane's log of refused sources: one line per interval, with how many were dropped
/// since the last one.
#[derive(Default)]
struct StrangerLog {
    last: Mutex<Option<Instant>>,
    dropped: AtomicU64,
}

impl StrangerLog {
    fn note(&self, pid: u64, port: u16, from: SocketAddr, now: Instant) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let Ok(mut last) = self.last.try_lock() else {
            return;
        };
        if last.is_some_and(|t| now.saturating_duration_since(t) < STRANGER_LOG_INTERVAL) {
            return;
        }
        *last = Some(now);
        self.dropped.fetch_sub(n, Ordering::Relaxed);
        tracing::warn!(
            pid,
            port,
            source = %from,
            dropped = n,
            "RTP from a source other than the participant's dropped"
        );
    }
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
        if now.saturating_duration_since(self.start) >= Duration::from_secs(1) {
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

/// An RTCP sender report (RFC 3550 §6.4.1) for the stream forwarded to `me`.
fn send_report(me: &RtpMember) {
    let Some(to) = me.rtcp_source.lock().ok().and_then(|s| s.remote()) else {
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
    let _ = me.rtcp_send.send_to(&p, to);
}

#[cfg(test)]
mod tests;
