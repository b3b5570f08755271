//! One shard of the endpoint: the transactions of the Call-IDs hashed to it, their timers and
//! the index that matches ACKs to the 2xx they acknowledge.

use super::key::{self, TsxKey};
use super::linger::Linger;
use super::outbound::{InviteCtx, Prepared};
use super::{
    new_tag, response_target, Failure, IncomingRequest, Inner, ServerTxn, TuCommand, TuEvent,
    TuHandle,
};
use crate::sip::{HeaderName, Message, MessageWriter, Method, Request, Response};
use crate::transaction::{
    Event, InviteClient, InviteClientState, InviteServer, InviteServerState, NonInviteClient,
    NonInviteServer, NonInviteServerState, Timer,
};
use crate::transport::{Protocol, Target, MAX_DATAGRAM};
use bytes::Bytes;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

enum ServerMachine {
    Invite(InviteServer),
    NonInvite(NonInviteServer),
}

struct ServerEntry {
    machine: ServerMachine,
    /// Where responses go.
    target: Target,
    /// The request, until its final response: needed only to answer it ourselves (487 on
    /// CANCEL, 503 when abandoned). Dropped at the final response, so the tens of thousands
    /// of transactions that linger for Timer J/L hold only their response bytes.
    request: Option<Arc<Request>>,
    method: Method,
    id: u64,
    arrived: Instant,
    scheduled: Option<Instant>,
    /// Learns of a missing ACK or a refused response.
    tu: Option<TuHandle>,
    ack_key: Option<Box<str>>,
    merge_key: Option<Box<str>>,
    /// A final response was recorded in the latency histogram.
    finished: bool,
    /// The final response, repeated to retransmissions once the transaction lingers.
    final_response: Option<Bytes>,
    /// The ACK for our 2xx arrived.
    acked: bool,
    /// Shared with the INVITE's [`ServerTxn`]: set when a CANCEL answered it 487.
    cancelled: Option<Arc<std::sync::atomic::AtomicBool>>,
}

enum ClientMachine {
    Invite(InviteClient),
    NonInvite(NonInviteClient),
}

struct ClientEntry {
    machine: ClientMachine,
    target: Target,
    tu: TuHandle,
    token: u64,
    scheduled: Option<Instant>,
    method: Method,
    call_id: Box<str>,
    /// INVITE: how to build its ACK and CANCEL.
    invite: Option<Box<InviteCtx>>,
    /// A CANCEL was asked for before any provisional response: sent at the first one
    /// (RFC 3261 §9.1).
    cancel_pending: bool,
}

impl ClientMachine {
    fn poll_transmit(&mut self) -> Option<Bytes> {
        match self {
            ClientMachine::Invite(m) => m.poll_transmit(),
            ClientMachine::NonInvite(m) => m.poll_transmit(),
        }
    }
    fn poll_event(&mut self) -> Option<Event> {
        match self {
            ClientMachine::Invite(m) => m.poll_event(),
            ClientMachine::NonInvite(m) => m.poll_event(),
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            ClientMachine::Invite(m) => m.poll_timeout(),
            ClientMachine::NonInvite(m) => m.poll_timeout(),
        }
    }
    fn is_terminated(&self) -> bool {
        match self {
            ClientMachine::Invite(m) => m.is_terminated(),
            ClientMachine::NonInvite(m) => m.is_terminated(),
        }
    }
    fn on_transport_error(&mut self) {
        match self {
            ClientMachine::Invite(m) => m.on_transport_error(),
            ClientMachine::NonInvite(m) => m.on_transport_error(),
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        match self {
            ClientMachine::Invite(m) => m.handle_timeout(now),
            ClientMachine::NonInvite(m) => m.handle_timeout(now),
        }
    }
}

/// The CANCEL's own transaction answers nobody: the INVITE's outcome is what the TU learns.
struct NoTu;

impl super::TransactionUser for NoTu {
    fn on_event(&self, _event: TuEvent) {}
}

pub(super) struct Shard {
    index: usize,
    inner: Arc<Inner>,
    net_rx: mpsc::Receiver<(Message, Target, Instant)>,
    tu_rx: mpsc::UnboundedReceiver<TuCommand>,
    servers: HashMap<TsxKey, ServerEntry>,
    clients: HashMap<TsxKey, ClientEntry>,
    /// Call-ID + our tag → the INVITE server transaction whose 2xx awaits its ACK.
    acks: HashMap<Box<str>, TsxKey>,
    /// From tag + Call-ID + CSeq → out-of-dialog server transaction (merged-request check).
    merged: HashMap<Box<str>, TsxKey>,
    timers: BinaryHeap<Reverse<(Instant, TsxKey)>>,
    /// Completed transactions absorbing retransmissions.
    linger: Linger,
}

impl Shard {
    pub(super) fn new(
        index: usize,
        inner: Arc<Inner>,
        net_rx: mpsc::Receiver<(Message, Target, Instant)>,
        tu_rx: mpsc::UnboundedReceiver<TuCommand>,
    ) -> Shard {
        Shard {
            index,
            inner,
            net_rx,
            tu_rx,
            servers: HashMap::new(),
            clients: HashMap::new(),
            acks: HashMap::new(),
            merged: HashMap::new(),
            timers: BinaryHeap::new(),
            linger: Linger::default(),
        }
    }

    pub(super) async fn run(mut self) {
        loop {
            let deadline = match (
                self.timers.peek().map(|Reverse((t, _))| *t),
                self.linger.next_expiry(),
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                cmd = self.tu_rx.recv() => match cmd {
                    Some(cmd) => {
                        self.on_command(cmd);
                        // Drain a batch before going back to select.
                        for _ in 0..64 {
                            match self.tu_rx.try_recv() {
                                Ok(cmd) => self.on_command(cmd),
                                Err(_) => break,
                            }
                        }
                    }
                    None => return,
                },
                msg = self.net_rx.recv() => match msg {
                    Some((msg, source, read)) => {
                        self.on_message(msg, source, read);
                        for _ in 0..64 {
                            match self.net_rx.try_recv() {
                                Ok((msg, source, read)) => self.on_message(msg, source, read),
                                Err(_) => break,
                            }
                        }
                    }
                    None => return,
                },
                _ = sleep => self.on_timers(Instant::now()),
            }
        }
    }

    fn router(&self) -> Option<Arc<dyn super::Router>> {
        self.inner.router.get().cloned()
    }

    fn tu_sender(&self) -> mpsc::UnboundedSender<TuCommand> {
        self.inner.tu[self.index].clone()
    }

    fn on_message(&mut self, msg: Message, source: Target, read: Instant) {
        match msg {
            Message::Request(req) => self.on_request(req, source, read),
            Message::Response(resp) => self.on_response(resp, source),
        }
    }

    /// Why a request that would start a server transaction must be answered 503 instead,
    /// if it must.
    fn overloaded(
        &self,
        req: &Request,
        source: Target,
        now: Instant,
        read: Instant,
    ) -> Option<&'static str> {
        let new_work = req.to.tag().is_none();
        let settings = &self.inner.settings;
        // Stale new work: its client has retransmitted (absorbed above once a transaction
        // exists) or given up; serving it now only delays fresh requests further.
        if new_work
            && settings
                .max_queue_delay
                .is_some_and(|max| now.saturating_duration_since(read) > max)
        {
            return Some("queue_delay");
        }
        let active = self.inner.active.load(Ordering::Relaxed);
        if active >= settings.max_transactions {
            return Some("transactions");
        }
        self.inner
            .admission
            .get()
            .and_then(|a| a.refuse_new(source.addr.ip(), active, 0, 0))
            .filter(|_| new_work)
    }

    fn on_request(&mut self, req: Request, source: Target, read: Instant) {
        let now = Instant::now();
        metrics::counter!("focus_sip_requests_received_total", "method" => req.method.metric_label())
            .increment(1);
        let key = key::server_key(&req);
        if req.method == Method::Ack {
            self.on_ack(req, key, source, now);
            return;
        }
        if let Some(l) = self.linger.get(&key) {
            // A retransmission of a completed transaction: repeat its final response.
            metrics::counter!("focus_sip_retransmissions_received_total").increment(1);
            if let Some(bytes) = l.response.clone() {
                let _ = self.inner.transports.send(&l.target, bytes);
            }
            return;
        }
        if let Some(entry) = self.servers.get_mut(&key) {
            // A retransmission: absorbed here, the session never sees it.
            metrics::counter!("focus_sip_retransmissions_received_total").increment(1);
            match &mut entry.machine {
                ServerMachine::Invite(m) => m.on_retransmission(now),
                ServerMachine::NonInvite(m) => m.on_retransmission(now),
            }
            self.drive_server(&key, now);
            return;
        }
        if req.method == Method::Cancel {
            self.on_cancel(req, key, source, now);
            return;
        }
        let target = response_target(&req.via, source, self.inner.settings.force_rport);
        // RFC 3261 §8.2.2.2: the same request arriving by another path is answered 482.
        let merge_key = key::merge_key(&req);
        if let Some(mk) = &merge_key {
            if self
                .merged
                .get(mk)
                .is_some_and(|k| self.servers.contains_key(k) || self.linger.get(k).is_some())
            {
                metrics::counter!("focus_sip_loops_detected_total", "kind" => "merged")
                    .increment(1);
                self.stateless(&req, source, target, 482, "Loop Detected", None);
                return;
            }
        }
        // A request the focus itself sent, come back (a target that routes to the focus, a
        // proxy loop): acting on it would make the focus call or message itself, maybe
        // without end. It carries one of our Vias, with the branch of a client transaction
        // still running here (a loop keeps the Call-ID, so the same shard).
        if self.is_own_request(&req) {
            metrics::counter!("focus_sip_loops_detected_total", "kind" => "looped").increment(1);
            self.stateless(&req, source, target, 482, "Loop Detected", None);
            return;
        }
        if let Some(reason) = self.overloaded(&req, source, now, read) {
            metrics::counter!("focus_overload_rejections_total", "reason" => reason).increment(1);
            let retry = self.inner.settings.retry_after_s;
            self.stateless(
                &req,
                source,
                target,
                503,
                "Service Unavailable",
                Some(retry),
            );
            return;
        }
        let reliable = source.protocol.is_reliable();
        let timers = self.inner.settings.timers;
        let is_invite = req.method == Method::Invite;
        let machine = if is_invite {
            ServerMachine::Invite(InviteServer::new(now, timers, reliable))
        } else {
            ServerMachine::NonInvite(NonInviteServer::new(now, timers, reliable))
        };
        // A BYE proves its dialog's 2xx arrived: it stands in for an ACK still on its way
        // (a proxy with several workers may reorder them).
        if req.method == Method::Bye {
            if let Some(tag) = req.to.tag() {
                let ak = key::ack_key(req.call_id(), tag);
                if let Some(ist) = self.acks.get(&ak).cloned() {
                    if let Some(ServerEntry {
                        machine: ServerMachine::Invite(m),
                        acked,
                        ..
                    }) = self.servers.get_mut(&ist)
                    {
                        m.on_ack_2xx(now);
                        while m.poll_event().is_some() {}
                        *acked = true;
                    }
                    self.drive_server(&ist, now);
                }
            }
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let request = Arc::new(req);
        let cancelled = is_invite.then(|| Arc::new(std::sync::atomic::AtomicBool::new(false)));
        self.servers.insert(
            key.clone(),
            ServerEntry {
                machine,
                target,
                request: Some(request.clone()),
                method: request.method.clone(),
                id,
                arrived: now,
                scheduled: None,
                tu: None,
                ack_key: None,
                merge_key: merge_key.clone(),
                finished: false,
                final_response: None,
                acked: false,
                cancelled: cancelled.clone(),
            },
        );
        if let Some(mk) = merge_key {
            self.merged.insert(mk, key.clone());
        }
        self.inner.active.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("focus_transactions_active").increment(1.0);
        if is_invite {
            // 100 Trying at once: it stops the client's INVITE retransmissions (RFC 3261 §17.2.1).
            let trying = MessageWriter::response_to(&request, source.addr, 100, "Trying", None)
                .finish_empty();
            if let Some(ServerEntry {
                machine: ServerMachine::Invite(m),
                ..
            }) = self.servers.get_mut(&key)
            {
                let _ = m.send_response(now, 100, trying);
                metrics::counter!("focus_sip_responses_sent_total", "class" => "1xx").increment(1);
            }
            self.drive_server(&key, now);
        }
        let txn = ServerTxn {
            tx: self.tu_sender(),
            key,
            id,
            source,
            answered: false,
            cancelled,
        };
        match self.router() {
            Some(router) => router.route(IncomingRequest {
                request,
                source,
                txn,
                arrived: now,
                authenticated: None,
            }),
            // Not wired yet (start-up): the dropped txn answers 503.
            None => drop(txn),
        }
    }

    fn on_ack(&mut self, req: Request, key: TsxKey, source: Target, now: Instant) {
        if self.linger.get(&key).is_some() {
            // An ACK retransmission for a confirmed non-2xx: absorbed.
            return;
        }
        // ACK for a non-2xx final: same branch as the INVITE.
        if let Some(entry) = self.servers.get_mut(&key) {
            if let ServerMachine::Invite(m) = &mut entry.machine {
                if m.state() != InviteServerState::Accepted {
                    m.on_ack(now);
                    self.drive_server(&key, now);
                    return;
                }
            }
        }
        // ACK for a 2xx: its own transaction, matched to the INVITE by dialog.
        let mut first = true;
        if let Some(tag) = req.to.tag() {
            let ak = key::ack_key(req.call_id(), tag);
            if let Some(ist) = self.acks.get(&ak).cloned() {
                first = false;
                if let Some(ServerEntry {
                    machine: ServerMachine::Invite(m),
                    acked,
                    ..
                }) = self.servers.get_mut(&ist)
                {
                    m.on_ack_2xx(now);
                    while let Some(ev) = m.poll_event() {
                        if ev == Event::AckReceived {
                            first = true;
                        }
                    }
                    *acked = true;
                }
                self.drive_server(&ist, now);
            }
        }
        if first {
            if let Some(router) = self.router() {
                router.ack(Arc::new(req), source);
            }
        }
    }

    fn on_cancel(&mut self, req: Request, _key: TsxKey, source: Target, now: Instant) {
        let target = response_target(&req.via, source, self.inner.settings.force_rport);
        let invite_key = key::cancelled_invite_key(&req);
        if !self.servers.contains_key(&invite_key) {
            self.stateless(
                &req,
                source,
                target,
                481,
                "Call/Transaction Does Not Exist",
                None,
            );
            return;
        }
        // The CANCEL is answered 200 whether or not it still has an effect (RFC 3261 §9.2).
        self.stateless(&req, source, target, 200, "OK", None);
        let Some(entry) = self.servers.get_mut(&invite_key) else {
            return;
        };
        let ServerMachine::Invite(m) = &mut entry.machine else {
            return;
        };
        if let (None, Some(request)) = (m.final_status(), entry.request.take()) {
            let tag = new_tag();
            let bytes = MessageWriter::response_to(
                &request,
                entry.target.addr,
                487,
                "Request Terminated",
                Some(&tag),
            )
            .finish_empty();
            if m.send_response(now, 487, bytes).is_ok() {
                metrics::counter!("focus_sip_responses_sent_total", "class" => "4xx").increment(1);
                metrics::counter!("focus_sip_cancelled_total").increment(1);
                if let Some(c) = &entry.cancelled {
                    c.store(true, Ordering::Release);
                }
            }
            self.drive_server(&invite_key, now);
        }
    }

    fn on_response(&mut self, resp: Response, source: Target) {
        let now = Instant::now();
        let key = key::response_key(&resp);
        let Some(entry) = self.clients.get_mut(&key) else {
            // Stray responses are dropped silently (RFC 3261 §18.1.2).
            metrics::counter!("focus_sip_stray_responses_total").increment(1);
            return;
        };
        let disposition = match &mut entry.machine {
            ClientMachine::Invite(m) => m.on_response(now, resp.status),
            ClientMachine::NonInvite(m) => m.on_response(now, resp.status),
        };
        if disposition.needs_ack() {
            // RFC 3261 §17.1.1.3: the transaction itself acknowledges a non-2xx final.
            if let (ClientMachine::Invite(m), Some(ctx)) = (&mut entry.machine, &entry.invite) {
                let to = resp.headers.get(HeaderName::To).unwrap_or("");
                let ack = ctx.build("ACK", &entry.call_id, to);
                let _ = m.send_ack(now, ack);
            }
        }
        let cancel_now = entry.cancel_pending && (100..200).contains(&resp.status);
        if disposition.pass_to_tu() {
            entry.tu.on_event(TuEvent::Response {
                token: entry.token,
                response: Box::new(resp),
                source,
            });
        }
        self.drive_client(&key, now);
        if cancel_now {
            self.send_cancel(&key, now);
        }
    }

    /// Cancels the pending INVITE with this Call-ID and CSeq: now if a provisional response
    /// came, else at the first one; nothing once it has a final response.
    fn cancel(&mut self, call_id: &str, cseq: u32, now: Instant) {
        let key = self.clients.iter().find_map(|(k, e)| {
            let matches = e.method == Method::Invite
                && &*e.call_id == call_id
                && e.invite.as_ref().is_some_and(|c| c.basis.cseq == cseq);
            matches.then(|| k.clone())
        });
        let Some(key) = key else { return };
        let Some(entry) = self.clients.get_mut(&key) else {
            return;
        };
        match &entry.machine {
            ClientMachine::Invite(m) if m.state() == InviteClientState::Calling => {
                entry.cancel_pending = true;
            }
            ClientMachine::Invite(m) if m.state() == InviteClientState::Proceeding => {
                self.send_cancel(&key, now);
            }
            _ => {}
        }
    }

    fn send_cancel(&mut self, key: &TsxKey, now: Instant) {
        let Some(entry) = self.clients.get_mut(key) else {
            return;
        };
        entry.cancel_pending = false;
        let Some(ctx) = &entry.invite else { return };
        let bytes = ctx.build("CANCEL", &entry.call_id, &ctx.basis.to);
        let branch = key.split('|').nth(1).unwrap_or("").to_string();
        let prepared = Prepared {
            bytes,
            target: entry.target,
            branch,
            method: Method::Cancel,
            token: 0,
            tu: Arc::new(NoTu),
            call_id: entry.call_id.clone(),
            invite: None,
        };
        self.start_client(prepared, now);
    }

    fn on_command(&mut self, cmd: TuCommand) {
        let now = Instant::now();
        match cmd {
            TuCommand::Respond {
                key,
                txn,
                status,
                bytes,
                ack_key,
                tu,
            } => self.respond(key, txn, status, bytes, ack_key, tu, now),
            TuCommand::Abandon { key } => {
                let Some(entry) = self.servers.get(&key) else {
                    return;
                };
                let Some(request) = entry.request.clone() else {
                    return;
                };
                let target = entry.target;
                let retry = self.inner.settings.retry_after_s;
                let tag = new_tag();
                let mut w = MessageWriter::response_to(
                    &request,
                    target.addr,
                    503,
                    "Service Unavailable",
                    Some(&tag),
                );
                w.header_fmt(HeaderName::RetryAfter, format_args!("{retry}"));
                metrics::counter!("focus_sip_abandoned_total").increment(1);
                let txn = entry.id;
                self.respond(key, txn, 503, w.finish_empty(), None, None, now);
            }
            TuCommand::Send(prepared) => self.start_client(*prepared, now),
            TuCommand::Cancel { call_id, cseq } => self.cancel(&call_id, cseq, now),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn respond(
        &mut self,
        key: TsxKey,
        txn: u64,
        status: u16,
        bytes: Bytes,
        ack_key: Option<Box<str>>,
        tu: Option<TuHandle>,
        now: Instant,
    ) {
        let Some(entry) = self.servers.get_mut(&key) else {
            // The transaction already ended (CANCELled, its 487 ACKed): the TU must undo what
            // the response promised, so it needs the transaction's real id.
            if status >= 200 {
                if let Some(tu) = tu {
                    tu.on_event(TuEvent::ResponseRefused { txn, status });
                }
            }
            return;
        };
        // RFC 3261 §18.2.2: a response goes back over the transport its request came on, so
        // one larger than a datagram can carry cannot be sent at all over UDP. Rather than a
        // transaction retransmitting what never leaves, the request gets a `500` (small, no
        // body, no Record-Route) and the TU undoes what the response promised.
        let (status, bytes, ack_key, tu) = if entry.target.protocol == Protocol::Udp
            && bytes.len() > self.inner.settings.max_datagram.min(MAX_DATAGRAM)
        {
            metrics::counter!("focus_sip_limit_refusals_total", "reason" => "response_too_large")
                .increment(1);
            tracing::warn!(
                status,
                size = bytes.len(),
                to = %entry.target.addr,
                "response too large for a UDP datagram; answering 500 instead"
            );
            if status >= 200 {
                if let Some(tu) = &tu {
                    tu.on_event(TuEvent::ResponseRefused {
                        txn: entry.id,
                        status,
                    });
                }
            }
            let Some(request) = entry.request.clone().filter(|_| status >= 200) else {
                // A provisional response is only left out; the final one follows.
                return;
            };
            let tag = new_tag();
            let w = MessageWriter::response_to(
                &request,
                entry.target.addr,
                500,
                "Response Too Large",
                Some(&tag),
            );
            (500, w.finish_empty(), None, None)
        } else {
            (status, bytes, ack_key, tu)
        };
        if status >= 200 {
            entry.final_response = Some(bytes.clone());
        }
        let result = match &mut entry.machine {
            ServerMachine::Invite(m) => m.send_response(now, status, bytes),
            ServerMachine::NonInvite(m) => m.send_response(now, status, bytes),
        };
        match result {
            Ok(()) => {
                metrics::counter!("focus_sip_responses_sent_total", "class" => crate::sip::class_label(status))
                    .increment(1);
                if status >= 200 && !entry.finished {
                    entry.finished = true;
                    entry.request = None;
                    metrics::histogram!(
                        "focus_request_duration_seconds",
                        "method" => entry.method.metric_label()
                    )
                    .record(now.duration_since(entry.arrived).as_secs_f64());
                }
                if (200..300).contains(&status) {
                    if let Some(ak) = ack_key {
                        self.acks.insert(ak.clone(), key.clone());
                        entry.ack_key = Some(ak);
                    }
                }
                if tu.is_some() {
                    entry.tu = tu;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, status, "response refused by its transaction");
                if status >= 200 {
                    if let Some(tu) = tu {
                        tu.on_event(TuEvent::ResponseRefused {
                            txn: entry.id,
                            status,
                        });
                    }
                }
            }
        }
        self.drive_server(&key, now);
    }

    fn start_client(&mut self, p: Prepared, now: Instant) {
        let key = key::client_key(&p.branch, &p.method);
        let reliable = p.target.protocol.is_reliable();
        let timers = self.inner.settings.timers;
        let machine = if p.method == Method::Invite {
            ClientMachine::Invite(InviteClient::new(now, timers, reliable, p.bytes))
        } else {
            ClientMachine::NonInvite(NonInviteClient::new(now, timers, reliable, p.bytes))
        };
        metrics::counter!("focus_sip_requests_sent_total", "method" => p.method.metric_label())
            .increment(1);
        self.clients.insert(
            key.clone(),
            ClientEntry {
                machine,
                target: p.target,
                tu: p.tu,
                token: p.token,
                scheduled: None,
                method: p.method,
                call_id: p.call_id,
                invite: p.invite,
                cancel_pending: false,
            },
        );
        self.inner.active.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("focus_transactions_active").increment(1.0);
        self.drive_client(&key, now);
    }

    /// Sends what a server transaction queued, delivers its events, re-arms its timer and
    /// removes it once terminated.
    fn drive_server(&mut self, key: &TsxKey, now: Instant) {
        let Some(entry) = self.servers.get_mut(key) else {
            return;
        };
        let transports = &self.inner.transports;
        let mut failed = false;
        loop {
            let out = match &mut entry.machine {
                ServerMachine::Invite(m) => m.poll_transmit(),
                ServerMachine::NonInvite(m) => m.poll_transmit(),
            };
            let Some(bytes) = out else { break };
            if transports.send(&entry.target, bytes).is_err() && entry.target.protocol.is_reliable()
            {
                failed = true;
            }
        }
        if failed {
            match &mut entry.machine {
                ServerMachine::Invite(m) => m.on_transport_error(),
                ServerMachine::NonInvite(m) => m.on_transport_error(),
            }
        }
        loop {
            let ev = match &mut entry.machine {
                ServerMachine::Invite(m) => m.poll_event(),
                ServerMachine::NonInvite(m) => m.poll_event(),
            };
            let Some(ev) = ev else { break };
            match ev {
                Event::AckTimeout => {
                    metrics::counter!("focus_sip_ack_timeouts_total").increment(1);
                    if let Some(tu) = &entry.tu {
                        tu.on_event(TuEvent::AckTimeout { txn: entry.id });
                    }
                }
                Event::Timeout | Event::TransportError | Event::AckReceived => {}
            }
        }
        let (terminated, next) = match &entry.machine {
            ServerMachine::Invite(m) => (m.is_terminated(), m.poll_timeout()),
            ServerMachine::NonInvite(m) => (m.is_terminated(), m.poll_timeout()),
        };
        // A transaction that only absorbs retransmissions from now on moves to the compact
        // linger store until its last timer (J, I or L).
        let linger = match &entry.machine {
            ServerMachine::NonInvite(m) if m.state() == NonInviteServerState::Completed => {
                m.timer(Timer::J).map(|t| (t, entry.final_response.clone()))
            }
            ServerMachine::Invite(m) if m.state() == InviteServerState::Confirmed => {
                m.timer(Timer::I).map(|t| (t, None))
            }
            ServerMachine::Invite(m) if m.state() == InviteServerState::Accepted && entry.acked => {
                m.timer(Timer::L).map(|t| (t, None))
            }
            _ => None,
        };
        let lingers = linger.is_some();
        if let Some((until, response)) = linger {
            let target = entry.target;
            // An exact-size copy: the writer's buffer has slack, and this lives for 32 s.
            let response = response.map(|b| Bytes::copy_from_slice(&b));
            // The merged-request index keeps pointing at it while it lingers.
            let merge_key = entry.merge_key.take();
            let before = self.linger.len();
            self.linger
                .insert(key.clone(), response, target, merge_key, until);
            // Each shard adds its own change: the gauge is the sum over shards (a `set` from
            // each shard would show whichever shard wrote last).
            metrics::gauge!("focus_transactions_lingering")
                .increment(self.linger.len() as f64 - before as f64);
        }
        if terminated || lingers {
            if let Some(entry) = self.servers.remove(key) {
                if let Some(ak) = entry.ack_key {
                    self.acks.remove(&ak);
                }
                if let Some(mk) = entry.merge_key {
                    self.merged.remove(&mk);
                }
                self.inner.active.fetch_sub(1, Ordering::Relaxed);
                metrics::gauge!("focus_transactions_active").decrement(1.0);
            }
            return;
        }
        if next != entry.scheduled {
            entry.scheduled = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, key.clone())));
            }
        }
        let _ = now;
    }

    fn drive_client(&mut self, key: &TsxKey, _now: Instant) {
        let Some(entry) = self.clients.get_mut(key) else {
            return;
        };
        let transports = &self.inner.transports;
        while let Some(bytes) = entry.machine.poll_transmit() {
            if transports.send(&entry.target, bytes).is_err() && entry.target.protocol.is_reliable()
            {
                entry.machine.on_transport_error();
            }
        }
        while let Some(ev) = entry.machine.poll_event() {
            let failure = match ev {
                Event::Timeout => Failure::Timeout,
                Event::TransportError => Failure::Transport,
                Event::AckReceived | Event::AckTimeout => continue,
            };
            metrics::counter!("focus_sip_requests_failed_total", "reason" => match failure {
                Failure::Timeout => "timeout",
                Failure::Transport => "transport",
            })
            .increment(1);
            tracing::debug!(method = %entry.method, ?failure, "request failed");
            entry.tu.on_event(TuEvent::Failed {
                token: entry.token,
                failure,
            });
        }
        if entry.machine.is_terminated() {
            self.clients.remove(key);
            self.inner.active.fetch_sub(1, Ordering::Relaxed);
            metrics::gauge!("focus_transactions_active").decrement(1.0);
            return;
        }
        let next = entry.machine.poll_timeout();
        if next != entry.scheduled {
            entry.scheduled = next;
            if let Some(t) = next {
                self.timers.push(Reverse((t, key.clone())));
            }
        }
    }

    fn on_timers(&mut self, now: Instant) {
        let merged = &mut self.merged;
        let expired = self.linger.expire(now, |mk| {
            merged.remove(&mk);
        });
        if expired > 0 {
            metrics::gauge!("focus_transactions_lingering").decrement(expired as f64);
        }
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((t, key))) = self.timers.pop() else {
                break;
            };
            if let Some(entry) = self.servers.get_mut(&key) {
                if entry.scheduled == Some(t) {
                    entry.scheduled = None;
                    match &mut entry.machine {
                        ServerMachine::Invite(m) => m.handle_timeout(now),
                        ServerMachine::NonInvite(m) => m.handle_timeout(now),
                    }
                    self.drive_server(&key, now);
                }
            } else if let Some(entry) = self.clients.get_mut(&key) {
                if entry.scheduled == Some(t) {
                    entry.scheduled = None;
                    entry.machine.handle_timeout(now);
                    self.drive_client(&key, now);
                }
            }
        }
    }

    /// A response outside any transaction (CANCEL results, 482, overload 503).
    /// True when a Via below the top one carries the branch of a client transaction of ours
    /// for this method (the top Via is the last hop's, never ours).
    fn is_own_request(&self, req: &Request) -> bool {
        if self.clients.is_empty() {
            return false;
        }
        req.headers
            .values(HeaderName::Via)
            .skip(1)
            .filter_map(|v| crate::sip::Via::parse_lenient(v).ok())
            .any(|via| {
                via.branch()
                    .is_some_and(|b| self.clients.contains_key(&key::client_key(b, &req.method)))
            })
    }

    fn stateless(
        &self,
        req: &Request,
        source: Target,
        target: Target,
        status: u16,
        reason: &str,
        retry_after: Option<u32>,
    ) {
        let tag = new_tag();
        let mut w = MessageWriter::response_to(req, source.addr, status, reason, Some(&tag));
        if let Some(r) = retry_after {
            w.header_fmt(HeaderName::RetryAfter, format_args!("{r}"));
        }
        metrics::counter!("focus_sip_responses_sent_total", "class" => crate::sip::class_label(status))
            .increment(1);
        let _ = self.inner.transports.send(&target, w.finish_empty());
    }
}
