//! The endpoint drives the sans-IO transaction machines with real time and real sockets.
//!
//! Work is split into shards by Call-ID, so every transaction and dialog of a call lives on one
//! task with no locks; each shard owns its transactions, its timer heap and its ACK index.
//! Transports feed shards through bounded queues (a full queue sheds load with `503`), session
//! actors through unbounded ones (their output is bounded by their own bounded mailboxes, and a
//! response must never be lost).

mod guard;
mod key;
mod linger;
mod outbound;
mod shard;

pub use crate::dialog::{Destination, Failure, InviteBasis};
pub use guard::Guard;
pub use key::TsxKey;
pub use outbound::OutgoingRequest;

use crate::sip::{
    new_branch, new_tag, Message, MessageWriter, Method, ParseError, Request, Response,
};
use crate::transaction::TimerConfig;
use crate::transport::{Protocol, Sink, Target, Transports};
use bytes::Bytes;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Where incoming requests go once the transaction layer has absorbed retransmissions.
pub trait Router: Send + Sync + 'static {
    /// A new request. The router (or the session it reaches) must answer through `txn`;
    /// dropping it unanswered sends `503`.
    fn route(&self, incoming: IncomingRequest);
    /// An ACK for a 2xx (a transaction of its own): passed on once, never answered.
    fn ack(&self, request: Arc<Request>, source: Target);
}

/// The transaction user of client transactions and of INVITE 2xx responses: session actors.
pub trait TransactionUser: Send + Sync + 'static {
    fn on_event(&self, event: TuEvent);
}

/// A handle to a transaction user.
pub type TuHandle = Arc<dyn TransactionUser>;

/// What the endpoint tells a transaction user.
#[derive(Debug)]
pub enum TuEvent {
    /// A response to a request the TU sent (`token` is the TU's).
    Response {
        token: u64,
        response: Box<Response>,
        /// Where the response came from (a 2xx to an INVITE binds the dialog to it).
        source: Target,
    },
    /// A request the TU sent failed without a final response.
    Failed { token: u64, failure: Failure },
    /// No ACK came for the TU's 2xx to INVITE `txn` (RFC 3261 §13.3.1.4: end the session).
    AckTimeout { txn: u64 },
    /// The final response of the TU to `txn` could not be sent because the transaction had
    /// already ended (CANCELled and answered 487): the TU must undo what the response promised.
    ResponseRefused { txn: u64, status: u16 },
}

/// Endpoint settings.
#[derive(Debug, Clone)]
pub struct EndpointSettings {
    pub timers: TimerConfig,
    pub force_rport: bool,
    pub max_transactions: usize,
    pub retry_after_s: u32,
    /// The host the focus writes into the Via of its requests, per IP family (the port is
    /// the bound one of the transport and family the request leaves on).
    pub advertised: crate::transport::PerFamily<crate::sip::Host>,
    /// Outbound proxy for requests the focus originates, as `host:port`.
    pub outbound_proxy: Option<String>,
    /// Depth of each shard's queue from the transports.
    pub shard_queue: usize,
    pub shards: usize,
    /// New work that waited longer than this in a shard's queue is answered 503 (see
    /// `overload.max_queue_delay_ms`); `None`: served however old.
    pub max_queue_delay: Option<Duration>,
    /// Largest response sent as one UDP datagram (`sip.max_datagram_size`).
    pub max_datagram: usize,
}

/// A new request handed to the router.
pub struct IncomingRequest {
    pub request: Arc<Request>,
    pub source: Target,
    pub txn: ServerTxn,
    pub arrived: Instant,
    /// The address of record the focus itself proved (digest authentication by the
    /// supervisor); `None` until then. Never read from the request's own headers.
    pub authenticated: Option<Arc<str>>,
}

enum TuCommand {
    Respond {
        key: TsxKey,
        /// The transaction's id, for a `ResponseRefused` after the transaction is gone.
        txn: u64,
        status: u16,
        bytes: Bytes,
        ack_key: Option<Box<str>>,
        tu: Option<TuHandle>,
    },
    Abandon {
        key: TsxKey,
    },
    Send(Box<outbound::Prepared>),
    /// Cancel our INVITE with this Call-ID and CSeq.
    Cancel {
        call_id: Box<str>,
        cseq: u32,
    },
}

/// The obligation to answer one server transaction. Answer with [`ServerTxn::respond`] (or a
/// helper); dropping it unanswered makes the endpoint answer `503` with Retry-After, so an
/// accepted request is never silently lost (a panicking session, a stopped actor).
pub struct ServerTxn {
    tx: mpsc::UnboundedSender<TuCommand>,
    key: TsxKey,
    id: u64,
    source: Target,
    answered: bool,
    /// Set by the endpoint when a CANCEL ended the (INVITE) transaction with a 487: work
    /// still ahead for it (a request held for a credit check) is moot. `None` for requests
    /// that cannot be cancelled.
    cancelled: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl ServerTxn {
    /// Whether a CANCEL already ended this transaction (its 487 is sent): routing it on
    /// would admit a caller who has gone.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Acquire))
    }

    /// Identifies this transaction in [`TuEvent`]s.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Where the request came from.
    pub fn source(&self) -> Target {
        self.source
    }

    /// Sends a provisional response; the obligation stays.
    pub fn provisional(&self, status: u16, bytes: Bytes) {
        let _ = self.tx.send(TuCommand::Respond {
            key: self.key.clone(),
            txn: self.id,
            status,
            bytes,
            ack_key: None,
            tu: None,
        });
    }

    /// Sends the final response.
    pub fn respond(self, status: u16, bytes: Bytes) {
        self.respond_in_dialog(status, bytes, None, None);
    }

    /// Sends the final response. For a 2xx to INVITE, `ack` names the dialog (Call-ID, our
    /// tag) so the endpoint can match its ACK, and `tu` learns of a missing ACK.
    pub fn respond_in_dialog(
        mut self,
        status: u16,
        bytes: Bytes,
        ack: Option<(&str, &str)>,
        tu: Option<TuHandle>,
    ) {
        self.answered = true;
        let _ = self.tx.send(TuCommand::Respond {
            key: self.key.clone(),
            txn: self.id,
            status,
            bytes,
            ack_key: ack.map(|(c, t)| key::ack_key(c, t)),
            tu,
        });
    }

    /// Builds and sends a simple final response to `req`, letting `extra` add headers.
    pub fn reply_with(
        self,
        req: &Request,
        status: u16,
        reason: &str,
        extra: impl FnOnce(&mut MessageWriter),
    ) {
        let tag = new_tag();
        let mut w = MessageWriter::response_to(req, self.source.addr, status, reason, Some(&tag));
        extra(&mut w);
        let bytes = w.finish_empty();
        self.respond(status, bytes);
    }

    /// Sends a final response with the standard reason phrase and no extra headers.
    pub fn reply(self, req: &Request, status: u16) {
        self.reply_with(req, status, crate::sip::reason_phrase(status), |_| {});
    }
}

impl Drop for ServerTxn {
    fn drop(&mut self) {
        if !self.answered {
            let _ = self.tx.send(TuCommand::Abandon {
                key: self.key.clone(),
            });
        }
    }
}

impl std::fmt::Debug for ServerTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTxn").field("id", &self.id).finish()
    }
}

struct Inner {
    /// Per shard: a message, where it came from, and when it was read.
    net: Vec<mpsc::Sender<(Message, Target, Instant)>>,
    tu: Vec<mpsc::UnboundedSender<TuCommand>>,
    transports: Transports,
    settings: EndpointSettings,
    router: OnceLock<Arc<dyn Router>>,
    /// Overload marks: new work from untrusted sources is refused past them.
    admission: OnceLock<Arc<crate::overload::Admission>>,
    active: AtomicUsize,
    next_id: AtomicU64,
    runtime: tokio::runtime::Handle,
}

/// Cheap handle to the endpoint.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

impl Endpoint {
    /// Starts the shards on the current tokio runtime. The router is set later with
    /// [`Endpoint::set_router`] (it needs the endpoint to exist first).
    pub fn start(transports: Transports, settings: EndpointSettings) -> Endpoint {
        let n = settings.shards.max(1);
        let mut net = Vec::with_capacity(n);
        let mut tu = Vec::with_capacity(n);
        let mut receivers = Vec::with_capacity(n);
        for _ in 0..n {
            let (ntx, nrx) = mpsc::channel(settings.shard_queue.max(16));
            let (ttx, trx) = mpsc::unbounded_channel();
            net.push(ntx);
            tu.push(ttx);
            receivers.push((nrx, trx));
        }
        let inner = Arc::new(Inner {
            net,
            tu,
            transports,
            settings,
            router: OnceLock::new(),
            admission: OnceLock::new(),
            active: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
            runtime: tokio::runtime::Handle::current(),
        });
        for (i, (nrx, trx)) in receivers.into_iter().enumerate() {
            let shard = shard::Shard::new(i, inner.clone(), nrx, trx);
            tokio::spawn(shard.run());
        }
        Endpoint { inner }
    }

    /// Installs the router (once).
    pub fn set_router(&self, router: Arc<dyn Router>) {
        let _ = self.inner.router.set(router);
    }

    /// Installs the admission marks (once): a shard refuses new work from untrusted
    /// sources past the transaction mark, however fast a burst filled its queue.
    pub fn set_admission(&self, admission: Arc<crate::overload::Admission>) {
        let _ = self.inner.admission.set(admission);
    }

    /// The transports.
    pub fn transports(&self) -> &Transports {
        &self.inner.transports
    }

    /// Settings in force.
    pub fn settings(&self) -> &EndpointSettings {
        &self.inner.settings
    }

    /// Transactions alive now.
    pub fn active_transactions(&self) -> usize {
        self.inner.active.load(Ordering::Relaxed)
    }

    /// Requests waiting in the queue of the shard that owns `call_id`, and its capacity
    /// (admission control refuses new work before the queue fills).
    pub fn shard_backlog(&self, call_id: &str) -> (usize, usize) {
        let tx = &self.inner.net[self.shard_of(call_id)];
        (tx.max_capacity() - tx.capacity(), tx.max_capacity())
    }

    /// Sends a request the focus originates, in a client transaction; the outcome reaches
    /// `req.tu` as [`TuEvent`]s carrying `req.token`.
    pub fn send_request(&self, req: OutgoingRequest) {
        outbound::send(self.inner.clone(), req);
    }

    /// Sends an ACK for a 2xx (outside any transaction, RFC 3261 §13.2.2.4).
    pub fn send_stateless(&self, target: Target, bytes: Bytes) {
        let _ = self.inner.transports.send(&target, bytes);
    }

    /// Cancels a pending INVITE the focus sent (RFC 3261 §9.1); its outcome (usually 487)
    /// reaches the TU as the INVITE's final response.
    pub fn cancel_invite(&self, call_id: &str, cseq: u32) {
        let shard = self.shard_of(call_id);
        let _ = self.inner.tu[shard].send(TuCommand::Cancel {
            call_id: call_id.into(),
            cseq,
        });
    }

    fn shard_of(&self, call_id: &str) -> usize {
        shard_index(call_id, self.inner.net.len())
    }

    fn stateless_reply(&self, bytes: Bytes, status: u16, to: Target) {
        metrics::counter!("focus_sip_responses_sent_total", "class" => crate::sip::class_label(status))
            .increment(1);
        let _ = self.inner.transports.send(&to, bytes);
    }
}

fn shard_index(call_id: &str, n: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    call_id.hash(&mut h);
    (h.finish() % n as u64) as usize
}

/// Counts a message refused for a limit (header lines, size, a stream without
/// Content-Length), answered or not.
fn count_limit(fault: &crate::sip::Fault) {
    if let Some(reason) = fault.limit_label() {
        metrics::counter!("focus_sip_limit_refusals_total", "reason" => reason).increment(1);
    }
}

/// Where the responses to a request go (RFC 3261 §18.2.2, RFC 3581).
fn response_target(req_via: &crate::sip::Via, source: Target, force_rport: bool) -> Target {
    match source.protocol {
        Protocol::Tcp | Protocol::Tls => source,
        Protocol::Udp => {
            if force_rport || req_via.wants_rport() {
                source
            } else {
                Target {
                    addr: std::net::SocketAddr::new(source.addr.ip(), req_via.port.unwrap_or(5060)),
                    ..source
                }
            }
        }
    }
}

impl Sink for Endpoint {
    fn on_message(&self, message: Result<Message, ParseError>, source: Target) {
        match message {
            Ok(msg) => {
                let call_id = match &msg {
                    Message::Request(r) => r.call_id(),
                    Message::Response(r) => r.call_id(),
                };
                let shard = self.shard_of(call_id);
                if let Err(e) = self.inner.net[shard].try_send((msg, source, Instant::now())) {
                    let (msg, source, _) = match e {
                        mpsc::error::TrySendError::Full(x)
                        | mpsc::error::TrySendError::Closed(x) => x,
                    };
                    self.on_shed(Ok(msg), source, "shard_queue");
                }
            }
            Err(ParseError::Drop(fault)) => {
                metrics::counter!("focus_sip_parse_errors_total", "reason" => "dropped")
                    .increment(1);
                count_limit(&fault);
                tracing::debug!(%fault, from = %source.addr, "dropped unanswerable message");
            }
            Err(ParseError::Reject(rejected)) => {
                metrics::counter!("focus_sip_parse_errors_total", "reason" => "rejected")
                    .increment(1);
                count_limit(&rejected.fault);
                tracing::debug!(fault = %rejected.fault, from = %source.addr, "rejected malformed request");
                let to = response_target(&rejected.via, source, self.inner.settings.force_rport);
                let bytes =
                    MessageWriter::reject(&rejected, source.addr, &new_tag()).finish_empty();
                self.stateless_reply(bytes, rejected.fault.status(), to);
            }
        }
    }

    fn on_shed(&self, message: Result<Message, ParseError>, source: Target, reason: &'static str) {
        metrics::counter!("focus_overload_rejections_total", "reason" => reason).increment(1);
        // Shed load with an answer rather than silence (never for ACK or a response).
        let req = match message {
            Ok(Message::Request(req)) if req.method != Method::Ack => req,
            _ => return,
        };
        let to = response_target(&req.via, source, self.inner.settings.force_rport);
        let tag = new_tag();
        let mut w =
            MessageWriter::response_to(&req, source.addr, 503, "Service Unavailable", Some(&tag));
        w.header_fmt(
            crate::sip::HeaderName::RetryAfter,
            format_args!("{}", self.inner.settings.retry_after_s),
        );
        self.stateless_reply(w.finish_empty(), 503, to);
    }

    fn on_stream_error(&self, source: Target, error: crate::sip::FrameError) {
        metrics::counter!("focus_sip_parse_errors_total", "reason" => "unframeable").increment(1);
        tracing::debug!(%error, from = %source.addr, "closing unframeable stream");
    }
}
