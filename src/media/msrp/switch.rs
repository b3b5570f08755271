//! The MSRP switch (RFC 7701): every SEND a participant sends is acknowledged and relayed to
//! every other participant of its group, wrapped in `message/cpim` with the sender's identity
//! (RFC 3862), or to one participant when the CPIM `To` names them (a private message).
//!
//! It runs outside actor mailboxes: a connection's reader task fans each message out into the
//! recipients' bounded write queues. Session actors only install and remove members. A chunk
//! is relayed as it arrives (only the CPIM header block is rewritten, so later chunks move by
//! a fixed byte offset); no message is held whole. A recipient that cannot keep up is cut off
//! and reported; every failed delivery is counted and, when the sender asked, reported back
//! with an IMDN.

use super::{
    new_message_id, new_transaction_id, ByteRange, Continuation, MsrpUri, Request, Response, Status,
};
use crate::media::cpim::vouch::{is_imdn, same_aor, vouch, Path, Sender};
use crate::media::cpim::{Addr, Cpim, CpimLimits};
use crate::media::imdn;
use bytes::{BufMut, Bytes, BytesMut};
use dashmap::DashMap;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

/// Switch limits.
#[derive(Debug, Clone, Copy)]
pub struct SwitchSettings {
    /// Largest message (all chunks) relayed; larger ones are answered 413.
    pub max_message: u64,
    /// Largest chunk (frame) read; a larger one is answered 413.
    pub max_frame: usize,
    /// Messages queued toward one participant before it counts as stalled.
    pub queue_depth: usize,
    /// A recipient that does not answer a SEND in this time failed it (RFC 4975 408).
    pub delivery_timeout: Duration,
    /// Most MSRP connections at once.
    pub max_connections: usize,
    /// A connection that has bound no session this long after it opened is closed.
    pub bind_timeout: Duration,
}

/// What an MSRP connection may send, and how connections are secured: the edge of the
/// switch, outside the relaying logic.
#[derive(Debug, Clone, Default)]
pub struct EdgeSettings {
    /// MSRP over TLS: the listener accepts TLS beside plain TCP (told apart by the first
    /// byte), and the focus connects out over TLS to `msrps:` paths.
    pub tls: Option<crate::transport::TlsContext>,
    /// Chunks and bytes per second one connection may send (0: unlimited). Beyond, the
    /// focus reads it more slowly: TCP flow control holds a flooding participant back
    /// without costing the others anything.
    pub chunk_rate: u32,
    pub bytes_rate: u64,
}

/// What the switch tells a session about one of its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// The member's MSRP connection is bound (first SEND arrived, or we connected out).
    Bound,
    /// The member's connection closed.
    Lost,
    /// The member could not keep up with its queue and was cut off.
    Stalled,
}

/// Receives member events (implemented by the session actor).
pub trait MemberEvents: Send + Sync + 'static {
    fn on_media_event(&self, pid: u64, event: MediaEvent);
}

/// Bytes queued toward one connection, written back to back.
#[derive(Debug)]
pub struct Outgoing {
    pub head: Bytes,
    pub prefix: Bytes,
    pub body: Bytes,
    pub tail: Bytes,
}

impl From<Bytes> for Outgoing {
    /// A message already encoded in one piece.
    fn from(bytes: Bytes) -> Outgoing {
        Outgoing {
            head: bytes,
            prefix: Bytes::new(),
            body: Bytes::new(),
            tail: Bytes::new(),
        }
    }
}

/// A member's bound connection.
#[derive(Debug, Clone)]
pub struct Link {
    pub conn: u64,
    pub tx: mpsc::Sender<Outgoing>,
    /// The certificate the peer presented on a TLS connection (DER), for its fingerprint.
    pub peer_cert: Option<Arc<[u8]>>,
}

/// What a relayed message needs for failure reports.
struct MessageInfo {
    sender: Weak<Member>,
    /// The sender's `imdn.Message-ID` when it asked for negative delivery notifications.
    imdn_id: Option<String>,
    /// Recipients already counted as failed for this message (one report each).
    failed: Mutex<HashSet<u64>>,
    received: Instant,
}

/// A SEND of ours awaiting the recipient's response.
struct Outstanding {
    sent: Instant,
    info: Arc<MessageInfo>,
    last_chunk: bool,
}

/// A chunked message in progress from a sender.
struct Relay {
    our_id: String,
    /// Bytes our CPIM header block adds to (or removes from) each offset.
    delta: i64,
    total: Option<u64>,
    /// The recipients of a private message (empty: the whole group).
    private_to: Arc<[Arc<Member>]>,
    info: Arc<MessageInfo>,
}

/// One participant's MSRP leg.
pub struct Member {
    pub pid: u64,
    pub session_id: Box<str>,
    /// Our URI toward this member (`msrp://focus/<session_id>;tcp`).
    pub our_uri: MsrpUri,
    /// The member's path (its SDP `a=path`): the To-Path toward it.
    pub peer_path: Vec<MsrpUri>,
    /// The certificate fingerprint the member offered: its TLS connection must present it.
    pub fingerprint: Option<crate::transport::tls::Fingerprint>,
    /// The address shown as CPIM `From` of this member's messages (anonymous when private).
    pub cpim_from: Addr,
    /// The identity a private message names to reach this member.
    pub identity: String,
    /// The real identity (vouching for the CPIM `From` of its messages).
    real: String,
    /// Whom charging bills for its volume.
    charged: crate::policy::Charged,
    /// Messages and bytes sent, messages and bytes received (charging).
    volume: [AtomicU64; 4],
    /// Pre-encoded path lines toward this member.
    to_path: String,
    from_path: String,
    group: Weak<Group>,
    link: Mutex<Option<Link>>,
    outstanding: Mutex<HashMap<String, Outstanding>>,
    relays: Mutex<HashMap<String, Relay>>,
    nickname: Mutex<Option<String>>,
    events: Arc<dyn MemberEvents>,
    closed: AtomicBool,
    /// Muted by a moderator: its messages are refused (403) instead of relayed.
    muted: AtomicBool,
}

impl Member {
    /// The connection this member is bound to.
    pub fn link(&self) -> Option<Link> {
        self.link.lock().ok().and_then(|l| l.clone())
    }

    /// Tells this member's session about its MSRP leg.
    pub fn notify(&self, event: MediaEvent) {
        self.events.on_media_event(self.pid, event);
    }

    /// Queues toward the member's connection: `Full` when it cannot keep up, `Closed` when it
    /// has none (or it is closing).
    fn queue(&self, out: Outgoing) -> Result<(), QueueError> {
        let Some(link) = self.link() else {
            return Err(QueueError::Closed);
        };
        link.tx.try_send(out).map_err(|e| match e {
            TrySendError::Full(_) => QueueError::Full,
            TrySendError::Closed(_) => QueueError::Closed,
        })
    }
}

/// Why a message could not be queued toward a member.
enum QueueError {
    Full,
    Closed,
}

/// The members of one group session.
pub struct Group {
    /// The conference URI: CPIM `To` of group messages.
    pub conference: String,
    pub allow_private: bool,
    members: RwLock<Arc<Vec<Arc<Member>>>>,
}

impl Group {
    fn snapshot(&self) -> Arc<Vec<Arc<Member>>> {
        self.members
            .read()
            .map(|m| m.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn edit(&self, f: impl FnOnce(&mut Vec<Arc<Member>>)) {
        let mut guard = self.members.write().unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<Arc<Member>> = guard.as_ref().clone();
        f(&mut list);
        *guard = Arc::new(list);
    }

    /// Members in the group.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// True when no member is installed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The session is bound to another connection (answered 506, RFC 4975 §7.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("session already bound to another connection")]
pub struct AlreadyBound;

/// What a participant exchanged over MSRP (offline charging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub participant: String,
    /// Whom to bill ([`crate::policy::Charged`]).
    pub identity: String,
    pub verified: bool,
    pub messages_sent: u64,
    pub bytes_sent: u64,
    pub messages_received: u64,
    pub bytes_received: u64,
}

/// What a session installs for a participant.
pub struct MemberSpec {
    pub pid: u64,
    pub session_id: String,
    pub peer_path: Vec<MsrpUri>,
    pub fingerprint: Option<crate::transport::tls::Fingerprint>,
    pub cpim_from: Addr,
    pub identity: String,
    /// The real identity (vouching only; never shown).
    pub real: String,
    /// Whom charging bills: the real identity when it counts, else its source's account.
    pub charged: crate::policy::Charged,
    pub events: Arc<dyn MemberEvents>,
}

/// The switch: every member of every group, by the session id of our URI toward it.
pub struct Switch {
    members: DashMap<Box<str>, Arc<Member>>,
    /// Sessions offered in a 2xx whose answer (in the ACK) has not installed them yet.
    expected: super::expect::Expected,
    settings: SwitchSettings,
    /// Host and port of our MSRP URIs, per IP family (a member is named the ones of its own).
    hosts: crate::transport::PerFamily<(crate::sip::Host, u16)>,
    next_conn: AtomicU64,
    /// The I/O runtime connections run on (session actors live on other threads).
    runtime: tokio::runtime::Handle,
    edge: EdgeSettings,
}

impl Switch {
    /// A switch whose URIs name `host:port`. Must be created inside the I/O runtime.
    pub fn new(settings: SwitchSettings, host: crate::sip::Host, port: u16) -> Switch {
        let family = host.ip().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        Switch {
            members: DashMap::new(),
            expected: Default::default(),
            settings,
            hosts: crate::transport::PerFamily::single(family, (host, port)),
            next_conn: AtomicU64::new(1),
            runtime: tokio::runtime::Handle::current(),
            edge: EdgeSettings::default(),
        }
    }

    /// Also names `host:port` in the URIs toward members of `family`'s IP family (a focus on
    /// IPv4 and IPv6 at once).
    pub fn also_at(
        mut self,
        family: std::net::IpAddr,
        host: crate::sip::Host,
        port: u16,
    ) -> Switch {
        self.hosts.insert(family, (host, port));
        self
    }

    /// Sets TLS and the per-connection rate limits.
    pub fn with_edge(mut self, edge: EdgeSettings) -> Switch {
        self.edge = edge;
        self
    }

    /// TLS and the per-connection rate limits.
    pub fn edge(&self) -> &EdgeSettings {
        &self.edge
    }

    /// The runtime connection tasks are spawned on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    pub fn settings(&self) -> &SwitchSettings {
        &self.settings
    }

    /// A new connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Our MSRP URI for a session id (the primary family's host).
    pub fn uri_for(&self, session_id: &str) -> MsrpUri {
        let (host, port) = self.hosts.primary();
        MsrpUri::new(
            super::MsrpScheme::Msrp,
            host.clone(),
            *port,
            session_id.to_string(),
        )
    }

    /// Our MSRP URI for a session id toward a member whose path starts at `peer`: the host of
    /// the member's IP family when its path names an address.
    fn uri_toward(&self, session_id: &str, peer: Option<&MsrpUri>) -> MsrpUri {
        let (host, port) = match peer.and_then(|u| u.host.ip()) {
            Some(ip) => self.hosts.for_ip(ip),
            None => self.hosts.primary(),
        };
        MsrpUri::new(
            super::MsrpScheme::Msrp,
            host.clone(),
            *port,
            session_id.to_string(),
        )
    }

    /// A new group for a session.
    pub fn group(&self, conference: &str, allow_private: bool) -> Arc<Group> {
        Arc::new(Group {
            conference: conference.to_string(),
            allow_private,
            members: RwLock::new(Arc::new(Vec::new())),
        })
    }

    /// Installs a member (replacing one with the same session id).
    pub fn add_member(&self, group: &Arc<Group>, spec: MemberSpec) -> Arc<Member> {
        let mut our_uri = self.uri_toward(&spec.session_id, spec.peer_path.first());
        // A participant reached over TLS (`msrps:` path) reaches us over TLS too.
        if spec.peer_path.first().is_some_and(|u| u.is_secure()) {
            our_uri.scheme = super::MsrpScheme::Msrps;
        }
        let mut to_path = String::from("To-Path:");
        for u in &spec.peer_path {
            let _ = write!(to_path, " {u}");
        }
        to_path.push_str("\r\n");
        let from_path = format!("From-Path: {our_uri}\r\n");
        let member = Arc::new(Member {
            pid: spec.pid,
            session_id: spec.session_id.clone().into(),
            our_uri,
            peer_path: spec.peer_path,
            fingerprint: spec.fingerprint,
            cpim_from: spec.cpim_from,
            identity: spec.identity,
            real: spec.real,
            charged: spec.charged,
            volume: Default::default(),
            to_path,
            from_path,
            group: Arc::downgrade(group),
            link: Mutex::new(None),
            outstanding: Mutex::new(HashMap::new()),
            relays: Mutex::new(HashMap::new()),
            nickname: Mutex::new(None),
            events: spec.events,
            closed: AtomicBool::new(false),
            muted: AtomicBool::new(false),
        });
        let session_id = spec.session_id.clone();
        if let Some(old) = self.members.insert(spec.session_id.into(), member.clone()) {
            self.close_member(&old);
        }
        group.edit(|list| list.push(member.clone()));
        // A connection may already be waiting to bind it.
        self.expected.settle(&session_id);
        metrics::gauge!("focus_msrp_members").increment(1.0);
        member
    }

    /// Removes a member: its connection is closed and what was still on its way to it is
    /// reported as failed.
    pub fn remove_member(&self, session_id: &str) -> Option<Volume> {
        self.expected.settle(session_id);
        let (_, m) = self.members.remove(session_id)?;
        self.close_member(&m);
        Some(Volume {
            participant: m.identity.clone(),
            identity: m.charged.subject.clone(),
            verified: m.charged.verified,
            messages_sent: m.volume[0].load(Ordering::Relaxed),
            bytes_sent: m.volume[1].load(Ordering::Relaxed),
            messages_received: m.volume[2].load(Ordering::Relaxed),
            bytes_received: m.volume[3].load(Ordering::Relaxed),
        })
    }

    fn close_member(&self, m: &Arc<Member>) {
        if m.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        metrics::gauge!("focus_msrp_members").decrement(1.0);
        if let Some(group) = m.group.upgrade() {
            group.edit(|list| list.retain(|x| !Arc::ptr_eq(x, m)));
        }
        if let Ok(mut l) = m.link.lock() {
            // Dropping the sender ends the connection's writer once the queue drains.
            *l = None;
        }
        let pending: Vec<Outstanding> = match m.outstanding.lock() {
            Ok(mut o) => o.drain().map(|(_, v)| v).collect(),
            Err(_) => Vec::new(),
        };
        for o in pending {
            self.delivery_failed(m, &o.info, "left");
        }
        if let Ok(mut r) = m.relays.lock() {
            r.clear();
        }
    }

    /// Mutes or unmutes a member (moderation, `muted-via-focus`).
    pub fn set_muted(&self, session_id: &str, muted: bool) {
        if let Some(m) = self.members.get(session_id) {
            m.muted.store(muted, Ordering::SeqCst);
        }
    }

    /// The member a session id names.
    pub fn member(&self, session_id: &str) -> Option<Arc<Member>> {
        self.members.get(session_id).map(|m| m.clone())
    }

    /// A member for `session_id` is on its way (our offer went out, the answer will install
    /// it): until `until`, a SEND naming it waits for it rather than getting 481.
    pub fn expect(&self, session_id: &str, until: Instant) {
        self.expected.expect(session_id, until);
    }

    /// Whether a member for `session_id` is expected (see [`Switch::expect`]).
    pub fn is_expected(&self, session_id: &str) -> bool {
        self.expected.is_expected(session_id, Instant::now())
    }

    /// The member for an expected session, once installed; `None` when it will not come.
    pub async fn wait_member(&self, session_id: &str) -> Option<Arc<Member>> {
        self.expected
            .wait(session_id, || self.member(session_id))
            .await
    }

    /// Binds a member to a connection; `Ok(true)` when newly bound.
    pub fn bind(&self, member: &Arc<Member>, link: &Link) -> Result<bool, AlreadyBound> {
        let Ok(mut l) = member.link.lock() else {
            return Err(AlreadyBound);
        };
        match l.as_ref() {
            Some(existing) if existing.conn == link.conn => Ok(false),
            Some(existing) if !existing.tx.is_closed() => Err(AlreadyBound),
            _ => {
                *l = Some(link.clone());
                drop(l);
                member.events.on_media_event(member.pid, MediaEvent::Bound);
                Ok(true)
            }
        }
    }

    /// A connection closed: its members are unbound and their sessions told.
    pub fn connection_lost(&self, conn: u64, members: &[Arc<Member>]) {
        for m in members {
            // Tell the session while still holding the link: a rebind on another connection
            // (which takes the lock, then reports Bound) must not overtake this Lost, or the
            // session would start the grace timer for a participant that is connected.
            if let Ok(mut l) = m.link.lock() {
                if l.as_ref().is_some_and(|x| x.conn == conn) {
                    *l = None;
                    if !m.closed.load(Ordering::SeqCst) {
                        m.events.on_media_event(m.pid, MediaEvent::Lost);
                    }
                }
            }
        }
    }

    /// Handles a SEND from `sender` (bound to the connection that read it); returns the
    /// response and REPORT to send back on that connection.
    pub fn on_send(&self, sender: &Arc<Member>, req: Request, now: Instant) -> Vec<Bytes> {
        let mut back = Vec::new();
        metrics::counter!("focus_msrp_messages_received_total").increment(1);
        if sender.muted.load(Ordering::SeqCst) && !req.body.is_empty() {
            // A moderator muted this participant (RFC 4575 muted-via-focus).
            metrics::counter!("focus_msrp_delivery_failures_total", "reason" => "muted")
                .increment(1);
            respond(&mut back, &req, 403, Some("Muted by the focus"));
            return back;
        }
        let range = req.byte_range();
        // The declared total, or (total `*`) the bytes so far, past the maximum.
        let last_byte = range
            .start
            .saturating_add(req.body.len() as u64)
            .saturating_sub(1);
        let max = self.settings.max_message;
        if range.total.is_some_and(|t| t > max) || last_byte > max {
            metrics::counter!("focus_msrp_delivery_failures_total", "reason" => "too_large")
                .increment(1);
            let relay = match (&req.message_id, sender.relays.lock()) {
                (Some(id), Ok(mut r)) => r.remove(id),
                _ => None,
            };
            if let Some(relay) = relay {
                self.abort_relay(sender, &relay, shift(range.start, relay.delta));
            }
            respond(&mut back, &req, 413, Some("Message too large"));
            return back;
        }
        // Acknowledge at once: the switch took responsibility for the chunk (RFC 7701 §5).
        if req.should_respond(200) {
            respond(&mut back, &req, 200, None);
        }
        if req.body.is_empty() && req.byte_range.is_none_or(|r| r.total == Some(0)) {
            // The empty SEND that binds a connection (RFC 4975 §5.4): nothing to relay.
            return back;
        }
        let Some(group) = sender.group.upgrade() else {
            return back;
        };
        let msg_id = req.message_id.clone().unwrap_or_default();
        let relay = self.relay_for(sender, &group, &req, &msg_id, range, now);
        let relay = match relay {
            Ok(r) => r,
            Err(code) => {
                // Replace the 200 we were about to send with the error.
                back.clear();
                respond(&mut back, &req, code, None);
                return back;
            }
        };
        metrics::counter!("focus_msrp_bytes_relayed_total").increment(req.body.len() as u64);
        sender.volume[1].fetch_add(req.body.len() as u64, Ordering::Relaxed);
        if req.continuation != Continuation::More {
            sender.volume[0].fetch_add(1, Ordering::Relaxed);
        }
        let (prefix, body_start) = match &relay.first {
            Some((prefix, skip)) => (prefix.clone(), *skip),
            None => (Bytes::new(), 0),
        };
        let content = req.body.slice(body_start.min(req.body.len())..);
        let start = if relay.first.is_some() {
            1
        } else {
            shift(range.start, relay.delta)
        };
        let len = (prefix.len() + content.len()) as u64;
        let end = start + len.saturating_sub(1);
        let new_range = ByteRange {
            start,
            end: Some(end),
            total: relay.total,
        };
        let last = req.continuation != Continuation::More;
        let targets: Vec<Arc<Member>> = if relay.private_to.is_empty() {
            group
                .snapshot()
                .iter()
                .filter(|m| !Arc::ptr_eq(m, sender))
                .cloned()
                .collect()
        } else {
            relay.private_to.to_vec()
        };
        for target in targets {
            if target.link().is_none() {
                // Not bound yet, or its connection dropped and the grace time runs: this
                // delivery failed (and the sender hears so when it asked).
                self.delivery_failed(&target, &relay.info, "not_connected");
                continue;
            }
            let tid = new_transaction_id();
            let head = frame_head(&target, &tid, &relay.our_id, new_range);
            let mut tail = BytesMut::with_capacity(tid.len() + 11);
            tail.put_slice(b"\r\n-------");
            tail.put_slice(tid.as_bytes());
            tail.put_u8(req.continuation.as_byte());
            tail.put_slice(b"\r\n");
            if let Ok(mut o) = target.outstanding.lock() {
                o.insert(
                    tid.clone(),
                    Outstanding {
                        sent: now,
                        info: relay.info.clone(),
                        last_chunk: last,
                    },
                );
            }
            let out = Outgoing {
                head,
                prefix: prefix.clone(),
                body: content.clone(),
                tail: tail.freeze(),
            };
            let size = (out.prefix.len() + out.body.len()) as u64;
            match target.queue(out) {
                Ok(()) => {
                    target.volume[3].fetch_add(size, Ordering::Relaxed);
                    if last {
                        target.volume[2].fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(QueueError::Full) => {
                    // The recipient cannot keep up: cut it off rather than stall the group.
                    self.delivery_failed(&target, &relay.info, "stalled");
                    self.stall(&target);
                }
                Err(QueueError::Closed) => {
                    // Its connection is closing (connection_lost follows, and the grace
                    // time): not a stall.
                    if let Ok(mut o) = target.outstanding.lock() {
                        o.remove(&tid);
                    }
                    self.delivery_failed(&target, &relay.info, "not_connected");
                }
            }
        }
        if last {
            if let Ok(mut r) = sender.relays.lock() {
                r.remove(&msg_id);
            }
            metrics::histogram!("focus_msrp_fanout_duration_seconds")
                .record(relay.info.received.elapsed().as_secs_f64());
            if req.success_report() {
                // RFC 4975 §7.1.2: we received the whole message.
                // Both in relayed coordinates: shift back to the sender's.
                let total = shift(relay.total.unwrap_or(end), -relay.delta);
                let report = Request::report(&req, Status::ok(), ByteRange::whole(total));
                if let Ok(b) = report.to_bytes() {
                    back.push(b);
                }
            }
        }
        back
    }

    /// Finds or starts the relay of a message: the CPIM block to prefix and the offset shift.
    fn relay_for(
        &self,
        sender: &Arc<Member>,
        group: &Arc<Group>,
        req: &Request,
        msg_id: &str,
        range: ByteRange,
        now: Instant,
    ) -> Result<RelayStep, u16> {
        if range.start > 1 {
            // A later chunk: the relay set up by the first one.
            let relays = sender.relays.lock().map_err(|_| 500u16)?;
            let r = relays.get(msg_id).ok_or(400u16)?;
            return Ok(RelayStep {
                our_id: r.our_id.clone(),
                delta: r.delta,
                total: r.total,
                private_to: r.private_to.clone(),
                info: r.info.clone(),
                first: None,
            });
        }
        let content_type = req.content_type.as_deref().unwrap_or("text/plain");
        let is_cpim = content_type
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("message/cpim"));
        let (mut cpim, skip) = if is_cpim {
            let limits = CpimLimits {
                max_headers: 64,
                max_size: self.settings.max_frame,
            };
            let parsed = Cpim::parse(req.body.clone(), &limits).map_err(|_| 400u16)?;
            let skip = req.body.len() - parsed.body.len();
            (parsed, skip)
        } else {
            let c = Cpim {
                from: None,
                to: Vec::new(),
                cc: Vec::new(),
                date_time: None,
                subject: Vec::new(),
                ns: Vec::new(),
                require: Vec::new(),
                fields: Vec::new(),
                content_type: Some(content_type.to_string()),
                content_headers: Vec::new(),
                body: req.body.clone(),
            };
            (c, 0)
        };
        let private_to: Arc<[Arc<Member>]> = private_members(&cpim, group, sender)?.into();
        // Rewrite the envelope: the focus vouches for who sent it (and hides who asked to be
        // anonymous); the group (or the private recipients) is the To.
        let who = Sender {
            shown: &sender.cpim_from,
            real: &sender.real,
        };
        vouch(&mut cpim, who, Path::Msrp).map_err(|_| 400u16)?;
        cpim.to = if private_to.is_empty() {
            vec![Addr::new(group.conference.clone())]
        } else {
            private_to
                .iter()
                .map(|t| Addr::new(t.identity.clone()))
                .collect()
        };
        if cpim.date_time.is_none() {
            cpim.date_time = Some(crate::conference_info::to_rfc3339(SystemTime::now()));
        }
        let imdn_id = match (cpim.imdn_message_id(), cpim.disposition_notification()) {
            (Some(id), Some(d)) if imdn::wants_negative_delivery(d) => Some(id.to_string()),
            _ => None,
        };
        // The content is relayed as it arrives, except an anonymous sender's notification,
        // rewritten to name its alias: that one must come whole.
        let skip = if who.hidden() && is_imdn(&cpim) {
            if req.continuation != Continuation::Complete || range.start != 1 {
                return Err(413);
            }
            req.body.len()
        } else {
            cpim.body = Bytes::new();
            skip
        };
        let prefix = cpim.to_bytes().map_err(|_| 400u16)?;
        let delta = prefix.len() as i64 - skip as i64;
        let total = range.total.map(|t| shift(t, delta));
        let info = Arc::new(MessageInfo {
            sender: Arc::downgrade(sender),
            imdn_id,
            failed: Mutex::new(HashSet::new()),
            received: now,
        });
        let our_id = new_message_id();
        if req.continuation == Continuation::More {
            if let Ok(mut relays) = sender.relays.lock() {
                relays.insert(
                    msg_id.to_string(),
                    Relay {
                        our_id: our_id.clone(),
                        delta,
                        total,
                        private_to: private_to.clone(),
                        info: info.clone(),
                    },
                );
            }
        }
        Ok(RelayStep {
            our_id,
            delta,
            total,
            private_to,
            info,
            first: Some((prefix, skip)),
        })
    }

    /// Ends a message whose first chunks were relayed but whose rest is refused: recipients
    /// get an empty chunk flagged `#` (aborted, RFC 4975 §7.1) at `next`, the first byte
    /// they will not get, instead of waiting for the end of that message forever.
    fn abort_relay(&self, sender: &Arc<Member>, relay: &Relay, next: u64) {
        let targets: Vec<Arc<Member>> = match sender.group.upgrade() {
            _ if !relay.private_to.is_empty() => relay.private_to.to_vec(),
            Some(group) => group
                .snapshot()
                .iter()
                .filter(|m| !Arc::ptr_eq(m, sender))
                .cloned()
                .collect(),
            None => return,
        };
        let range = ByteRange {
            start: next,
            end: Some(next.saturating_sub(1)),
            total: None,
        };
        for target in targets {
            let tid = new_transaction_id();
            let head = frame_head(&target, &tid, &relay.our_id, range);
            let tail = Bytes::from(format!("\r\n-------{tid}#\r\n"));
            let _ = target.queue(Outgoing {
                head,
                prefix: Bytes::new(),
                body: Bytes::new(),
                tail,
            });
        }
    }

    fn stall(&self, m: &Arc<Member>) {
        if let Ok(mut l) = m.link.lock() {
            *l = None;
        }
        m.events.on_media_event(m.pid, MediaEvent::Stalled);
    }

    /// A response to one of our SENDs toward `recipient`.
    pub fn on_response(&self, recipient: &Arc<Member>, resp: &Response) {
        let entry = recipient
            .outstanding
            .lock()
            .ok()
            .and_then(|mut o| o.remove(&resp.transaction_id));
        let Some(o) = entry else { return };
        if resp.code == 200 {
            if o.last_chunk {
                metrics::counter!("focus_msrp_messages_delivered_total").increment(1);
            }
        } else {
            self.delivery_failed(recipient, &o.info, "error_response");
        }
    }

    /// Times out SENDs toward `recipient` unanswered for longer than the delivery timeout.
    pub fn sweep(&self, recipient: &Arc<Member>, now: Instant) {
        let expired: Vec<Outstanding> = match recipient.outstanding.lock() {
            Ok(mut o) => {
                let timeout = self.settings.delivery_timeout;
                let keys: Vec<String> = o
                    .iter()
                    .filter(|(_, v)| now.duration_since(v.sent) >= timeout)
                    .map(|(k, _)| k.clone())
                    .collect();
                keys.iter().filter_map(|k| o.remove(k)).collect()
            }
            Err(_) => Vec::new(),
        };
        for o in expired {
            self.delivery_failed(recipient, &o.info, "timeout");
        }
    }

    /// Counts a failed delivery once per message and recipient, and sends the sender a
    /// negative IMDN when it asked for one.
    fn delivery_failed(
        &self,
        recipient: &Arc<Member>,
        info: &Arc<MessageInfo>,
        reason: &'static str,
    ) {
        let first = info
            .failed
            .lock()
            .map(|mut f| f.insert(recipient.pid))
            .unwrap_or(false);
        if !first {
            return;
        }
        metrics::counter!("focus_msrp_delivery_failures_total", "reason" => reason).increment(1);
        let (Some(id), Some(sender)) = (&info.imdn_id, info.sender.upgrade()) else {
            return;
        };
        let Some(group) = sender.group.upgrade() else {
            return;
        };
        let body = imdn::failed_delivery(id, &recipient.identity, SystemTime::now());
        let cpim = Cpim::new(
            Addr::new(group.conference.clone()),
            sender.cpim_from.clone(),
            imdn::CONTENT_TYPE,
            Bytes::from(body),
            SystemTime::now(),
        )
        .with_imdn(&new_message_id(), None);
        let mut cpim = cpim;
        cpim.content_headers
            .push(super::Header::new("Content-Disposition", "notification"));
        let Ok(body) = cpim.to_bytes() else { return };
        let req = Request::send(
            sender.peer_path.clone(),
            vec![sender.our_uri.clone()],
            "message/cpim",
            body,
        );
        if let Ok(bytes) = req.to_bytes() {
            let _ = sender.queue(Outgoing::from(bytes));
        }
    }

    /// Handles NICKNAME (RFC 7701 §6): unique within the group.
    pub fn on_nickname(&self, member: &Arc<Member>, req: &Request) -> u16 {
        let Some(nick) = req.use_nickname.as_deref().filter(|n| !n.trim().is_empty()) else {
            return 424;
        };
        let Some(group) = member.group.upgrade() else {
            return 481;
        };
        let taken = group.snapshot().iter().any(|m| {
            !Arc::ptr_eq(m, member)
                && m.nickname
                    .lock()
                    .ok()
                    .and_then(|n| n.clone())
                    .is_some_and(|n| n.eq_ignore_ascii_case(nick))
        });
        if taken {
            return 425;
        }
        if let Ok(mut n) = member.nickname.lock() {
            *n = Some(nick.to_string());
        }
        200
    }
}

struct RelayStep {
    our_id: String,
    delta: i64,
    total: Option<u64>,
    private_to: Arc<[Arc<Member>]>,
    info: Arc<MessageInfo>,
    /// For the first chunk: our CPIM block and how many bytes of the sender's body it replaces.
    first: Option<(Bytes, usize)>,
}

fn shift(v: u64, delta: i64) -> u64 {
    if delta >= 0 {
        v.saturating_add(delta as u64)
    } else {
        v.saturating_sub(delta.unsigned_abs())
    }
}

fn respond(back: &mut Vec<Bytes>, req: &Request, code: u16, comment: Option<&str>) {
    if let Ok(b) = Response::for_request(req, code, comment).to_bytes() {
        back.push(b);
    }
}

/// The start line and header block of a relayed chunk.
fn frame_head(target: &Member, tid: &str, msg_id: &str, range: ByteRange) -> Bytes {
    let mut h = BytesMut::with_capacity(target.to_path.len() + target.from_path.len() + 160);
    h.put_slice(b"MSRP ");
    h.put_slice(tid.as_bytes());
    h.put_slice(b" SEND\r\n");
    h.put_slice(target.to_path.as_bytes());
    h.put_slice(target.from_path.as_bytes());
    h.put_slice(b"Message-ID: ");
    h.put_slice(msg_id.as_bytes());
    let mut line = String::with_capacity(48);
    let _ = write!(line, "\r\nByte-Range: {range}\r\n");
    h.put_slice(line.as_bytes());
    // We ask for failure responses only where needed to count failures: the default (yes).
    h.put_slice(b"Content-Type: message/cpim\r\n\r\n");
    h.freeze()
}

/// The members a private message goes to: every one its CPIM `To` names by public identity
/// (an anonymous member by its alias only), the sender excepted; none for a group message.
/// A named recipient not in the session refuses the whole message (404): it reaches all of
/// them or no one. 428 when the group allows no private messages (RFC 7701 §7.2).
fn private_members(
    cpim: &Cpim,
    group: &Group,
    sender: &Arc<Member>,
) -> Result<Vec<Arc<Member>>, u16> {
    let named = cpim.private_recipients(&group.conference);
    if named.is_empty() {
        return Ok(Vec::new());
    }
    if !group.allow_private {
        return Err(428);
    }
    let members = group.snapshot();
    let mut out: Vec<Arc<Member>> = Vec::with_capacity(named.len());
    for uri in named {
        if same_aor(&sender.identity, uri) {
            continue;
        }
        let m = members
            .iter()
            .find(|m| same_aor(&m.identity, uri) && !Arc::ptr_eq(m, sender))
            .ok_or(404u16)?;
        if !out.iter().any(|x| Arc::ptr_eq(x, m)) {
            out.push(m.clone());
        }
    }
    if out.is_empty() {
        return Err(404);
    }
    Ok(out)
}
