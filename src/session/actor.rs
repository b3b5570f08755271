//! The actix actor around [`SessionState`]: it holds the server transactions the state
//! answers, executes effects through the endpoint and the routing tables, and keeps one
//! timer armed at the state's next deadline.

mod push_to_talk;

pub use push_to_talk::TalkInput;

use super::routes::{Routes, SessionEntry};
use super::state::{Effect, RequestCtx, SessionState};
use crate::endpoint::{
    Endpoint, IncomingRequest, OutgoingRequest, ServerTxn, TransactionUser, TuEvent, TuHandle,
};
use crate::media::cpim::Addr as CpimAddr;
use crate::media::msrp::connection::connect_out;
use crate::media::msrp::switch::{Group, MediaEvent, MemberEvents, MemberSpec, Switch};
use crate::sip::Request;
use crate::transport::Target;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// Everything a session actor receives.
#[derive(Message)]
#[rtype(result = "()")]
pub enum SessionInput {
    /// A new request (out of dialog or in one of this session's dialogs).
    Request(IncomingRequest),
    /// An ACK for one of this session's 2xx.
    Ack(Arc<Request>, Target),
    /// Transaction-layer news about requests this session sent or answered.
    Tu(TuEvent),
    /// News about a participant's MSRP leg.
    Media(u64, MediaEvent),
    /// Talk bursts: BFCP messages and connections, RTP liveness.
    Talk(TalkInput),
    /// End the session (focus shutdown); the sender learns when it is done.
    Shutdown(oneshot::Sender<()>),
    /// An operator's command (admin API); the answer goes back on the channel.
    Admin(
        super::AdminCommand,
        oneshot::Sender<Result<super::SessionView, super::AdminRefusal>>,
    ),
    /// New settings after a configuration reload.
    Reconfigure(super::Reconfigure),
    /// A connection a dialog of this session is bound to closed.
    FlowClosed(Target),
    /// Resume the participants a crashed focus had in this session (sent once, first).
    Recover(Box<crate::recovery::journal::LiveSession>),
    /// Fault injection for the panic-isolation test.
    #[cfg(test)]
    Panic,
}

/// Delivers transaction events to the actor. `do_send` is right here: these are answers to
/// requests the session itself sent, bounded by what it sent, not by what peers send.
struct SessionTu(Addr<SessionActor>);

impl TransactionUser for SessionTu {
    fn on_event(&self, event: TuEvent) {
        self.0.do_send(SessionInput::Tu(event));
    }
}

/// Delivers MSRP switch events to the actor (bounded by the participants' connections).
struct SessionMedia(Addr<SessionActor>);

impl MemberEvents for SessionMedia {
    fn on_media_event(&self, pid: u64, event: MediaEvent) {
        self.0.do_send(SessionInput::Media(pid, event));
    }
}

/// One group session.
pub struct SessionActor {
    state: SessionState,
    /// Conference key in the supervisor's table and this instance's id there.
    key: Box<str>,
    instance: u64,
    tables: Arc<dyn Routes>,
    endpoint: Endpoint,
    /// Counts messages routed to this actor and not yet handled (see [`Routes::retire`]).
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// Offline charging records.
    charging: crate::charging::ChargingHandle,
    /// The membership journal (crash recovery).
    journal: crate::recovery::journal::JournalHandle,
    /// The MSRP switch and this session's group in it.
    switch: Option<Arc<Switch>>,
    group: Option<Arc<Group>>,
    /// This actor's routing entry, for registering its dialogs.
    me: Option<SessionEntry>,
    /// The talk-burst planes, and this session's part of them once started.
    planes: Option<crate::push_to_talk::talk_burst::TalkPlanes>,
    talk: Option<push_to_talk::TalkDriver>,
    /// Requests the state has not answered yet.
    txns: HashMap<u64, ServerTxn>,
    tu: Option<TuHandle>,
    timer: Option<(Instant, SpawnHandle)>,
    shutdown: Option<oneshot::Sender<()>>,
    /// Set while a handler runs. actix stops an actor whose handler panicked when it drops
    /// its context, so `stopped` seeing this still set means the handler never returned.
    busy: bool,
}

/// What every session actor works with, shared across sessions.
#[derive(Clone)]
pub struct SessionDeps {
    /// The supervisor's routing tables.
    pub tables: Arc<dyn Routes>,
    pub endpoint: Endpoint,
    pub switch: Option<Arc<Switch>>,
    pub charging: crate::charging::ChargingHandle,
    /// The RTP plane and BFCP listener, when the focus serves audio.
    pub talk: Option<crate::push_to_talk::talk_burst::TalkPlanes>,
    pub journal: crate::recovery::journal::JournalHandle,
}

impl SessionActor {
    pub fn new(
        state: SessionState,
        key: Box<str>,
        instance: u64,
        in_flight: Arc<std::sync::atomic::AtomicUsize>,
        deps: SessionDeps,
    ) -> SessionActor {
        SessionActor {
            state,
            key,
            instance,
            tables: deps.tables,
            endpoint: deps.endpoint,
            in_flight,
            switch: deps.switch,
            charging: deps.charging,
            journal: deps.journal,
            group: None,
            me: None,
            planes: deps.talk,
            talk: None,
            txns: HashMap::new(),
            tu: None,
            timer: None,
            shutdown: None,
            busy: false,
        }
    }

    fn execute(&mut self) {
        while let Some(effect) = self.state.poll_effect() {
            match effect {
                Effect::Respond {
                    txn,
                    status,
                    bytes,
                    ack,
                } => {
                    let Some(t) = self.txns.remove(&txn) else {
                        continue;
                    };
                    match ack {
                        Some(id) => t.respond_in_dialog(
                            status,
                            bytes,
                            Some((&id.call_id, &id.local_tag)),
                            self.tu.clone(),
                        ),
                        None => t.respond(status, bytes),
                    }
                }
                Effect::Send { token, request } => {
                    let Some(tu) = self.tu.clone() else { continue };
                    self.endpoint.send_request(OutgoingRequest {
                        method: request.method,
                        request_uri: request.request_uri,
                        rest: request.rest,
                        call_id: request.call_id,
                        destination: request.destination,
                        token,
                        tu,
                        invite: request.invite,
                    });
                }
                Effect::RegisterDialog(id) => {
                    if let Some(me) = &self.me {
                        self.tables.register_dialog(id, me.clone());
                    }
                }
                Effect::UnregisterDialog(id) => self.tables.unregister_dialog(&id, self.instance),
                Effect::MsrpAdd {
                    pid,
                    leg,
                    display,
                    identity,
                    real,
                    charged,
                } => {
                    let (Some(switch), Some(group), Some(me)) =
                        (&self.switch, &self.group, &self.me)
                    else {
                        continue;
                    };
                    let cpim_from = match display {
                        Some(d) => CpimAddr::with_display(identity.clone(), d),
                        None => CpimAddr::new(identity.clone()),
                    };
                    let active = leg.active;
                    let member = switch.add_member(
                        group,
                        MemberSpec {
                            pid,
                            session_id: leg.session_id,
                            peer_path: leg.peer_path,
                            fingerprint: leg.fingerprint,
                            cpim_from,
                            identity,
                            real,
                            charged,
                            events: Arc::new(SessionMedia(me.addr.clone())),
                        },
                    );
                    if active {
                        connect_out(
                            switch.clone(),
                            member,
                            tokio_util::sync::CancellationToken::new(),
                        );
                    }
                }
                Effect::Charge(event) => self.charge(event),
                Effect::Talk(effect) => {
                    if let Some(t) = self.talk.as_mut() {
                        t.execute(effect);
                    }
                }
                Effect::Journal(event) => self.journal.record(&self.key, self.instance, event),
                Effect::AdmitFlow(source) => self.endpoint.transports().admit(&source),
                Effect::WatchFlow(flow) => {
                    if let Some(me) = &self.me {
                        let addr = me.addr.clone();
                        self.endpoint.transports().watch_close(
                            &flow,
                            self.instance,
                            Box::new(move |closed| addr.do_send(SessionInput::FlowClosed(closed))),
                        );
                    }
                }
                Effect::CancelInvite { call_id, cseq } => {
                    self.endpoint.cancel_invite(&call_id, cseq);
                }
                Effect::MsrpExpect { session_id, until } => {
                    if let Some(switch) = &self.switch {
                        switch.expect(&session_id, until);
                    }
                }
                Effect::MsrpMute { session_id, muted } => {
                    if let Some(switch) = &self.switch {
                        switch.set_muted(&session_id, muted);
                    }
                }
                Effect::MsrpRemove { session_id } => {
                    if let Some(switch) = &self.switch {
                        // The volume of a participant's chat, for charging.
                        if let Some(v) = switch.remove_member(&session_id) {
                            self.charging.record(crate::charging::Record::MsrpVolume {
                                conference: self.state.conference_uri().to_string(),
                                participant: v.participant,
                                identity: v.identity,
                                verified: v.verified,
                                messages_sent: v.messages_sent,
                                bytes_sent: v.bytes_sent,
                                messages_received: v.messages_received,
                                bytes_received: v.bytes_received,
                            });
                        }
                    }
                }
            }
        }
    }

    /// Turns a session's charging event into a record.
    fn charge(&mut self, event: crate::session::ChargeEvent) {
        use crate::charging::{self as c, Record};
        use crate::session::ChargeEvent as E;
        let conference = self.state.conference_uri().to_string();
        let record = match event {
            E::SessionStart { subject, recovered } => Record::SessionStart {
                recovered,
                conference,
                kind: match self.state.kind() {
                    crate::session::SessionKind::Predefined => c::SessionKind::Predefined,
                    crate::session::SessionKind::Adhoc => c::SessionKind::Adhoc,
                    crate::session::SessionKind::Restarted => c::SessionKind::Restarted,
                },
                subject,
            },
            E::SessionStop {
                duration,
                participants_total,
            } => Record::SessionStop {
                conference,
                duration_s: c::whole_seconds(duration),
                participants_total,
                reason: None,
            },
            E::Join {
                participant,
                charged,
                dialed_out,
                anonymous,
            } => Record::ParticipantJoin {
                conference,
                participant,
                identity: charged.subject,
                verified: charged.verified,
                joining_method: if dialed_out {
                    c::JoiningMethod::DialedOut
                } else {
                    c::JoiningMethod::DialedIn
                },
                anonymous,
            },
            E::Leave {
                participant,
                charged,
                method,
                duration,
            } => Record::ParticipantLeave {
                conference,
                participant,
                identity: charged.subject,
                verified: charged.verified,
                disconnection_method: method.into(),
                duration_s: c::whole_seconds(duration),
                reason: None,
            },
            E::GroupMessage {
                sender,
                recipients,
                size,
            } => Record::GroupMessage {
                conference: Some(conference),
                sender: sender.subject,
                verified: sender.verified,
                recipients,
                size,
                mode: c::MessageMode::Pager,
            },
        };
        self.charging.record(record);
    }

    fn on_talk(&mut self, now: Instant, input: TalkInput) {
        match input {
            TalkInput::Bfcp {
                conn,
                user,
                message,
            } => {
                let Some(t) = self.talk.as_mut() else {
                    return;
                };
                if let Err(refusal) = self.state.authorize_floor_user(user, conn.peer().ip()) {
                    push_to_talk::TalkDriver::refuse(&conn, &message, refusal);
                    return;
                }
                t.bind(user, &conn);
                self.state.on_bfcp(now, user, &message);
            }
            TalkInput::BfcpClosed { conn, user } => {
                if self.talk.as_mut().is_some_and(|t| t.unbind(user, conn)) {
                    self.state.on_bfcp_closed(now, user);
                }
            }
            TalkInput::Rtp { pid, event } => self.state.on_rtp_event(now, pid, event),
        }
    }

    /// After each input: run effects, re-arm the timer, and stop when idle or done.
    fn settle(&mut self, ctx: &mut Context<Self>) {
        self.execute();
        let now = Instant::now();
        let next = self.state.poll_timeout(now);
        if next != self.timer.as_ref().map(|t| t.0) {
            if let Some((_, h)) = self.timer.take() {
                ctx.cancel_future(h);
            }
            if let Some(at) = next {
                let delay = at.saturating_duration_since(now);
                let h = ctx.run_later(delay, |act, ctx| {
                    act.busy = true;
                    act.timer = None;
                    act.state.handle_timeout(Instant::now());
                    act.settle(ctx);
                    act.busy = false;
                });
                self.timer = Some((at, h));
            }
        }
        if self.shutdown.is_some() {
            if self.state.outstanding() == 0 {
                if let Some(tx) = self.shutdown.take() {
                    let _ = tx.send(());
                }
                ctx.stop();
            }
            return;
        }
        if self.state.is_idle() && self.tables.retire(&self.key, self.instance) {
            ctx.stop();
        }
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.tu = Some(Arc::new(SessionTu(ctx.address())));
        if let Some(switch) = &self.switch {
            self.group = Some(switch.group(
                self.state.conference_uri(),
                self.state.allows_private_messages(),
            ));
        }
        self.me = Some(SessionEntry {
            addr: ctx.address(),
            instance: self.instance,
            in_flight: self.in_flight.clone(),
        });
        if let Some(planes) = self.planes.clone().filter(|_| self.state.serves_talk()) {
            let driver = push_to_talk::TalkDriver::start(planes, ctx.address());
            self.state.enable_talk(driver.conference_id());
            self.talk = Some(driver);
        }
        metrics::gauge!("focus_session_actors").increment(1.0);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        metrics::gauge!("focus_session_actors").decrement(1.0);
        if let Some(t) = self.talk.as_mut() {
            t.stop();
        }
        // An ended ad-hoc session may be restarted by its Contribution-ID.
        if let Some(record) = self.state.adhoc_record() {
            self.tables.adhoc_ended(record, &self.key);
        }
        if !self.busy {
            self.tables.forget_session(&self.key, self.instance, false);
            return;
        }
        // A handler panicked (there must be none, but): end this session cleanly for everyone
        // in it (BYE, final NOTIFY, charging records closed, journal closed) and leave no
        // route pointing at it. Other sessions on the arbiter are untouched: tokio confines
        // the panic to this actor's task. The state may be half-updated; should ending it
        // panic too, the routes still go.
        metrics::counter!("focus_session_panics_total").increment(1);
        tracing::error!(conference = %self.key, "session actor panicked; ending the session");
        let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.state.abort(Instant::now());
            self.execute();
        }));
        if ended.is_err() {
            tracing::error!(conference = %self.key, "ending the panicked session failed too");
        }
        self.tables.forget_session(&self.key, self.instance, true);
        // Unanswered requests are answered 503 by their ServerTxn guards as `txns` drops.
    }
}

impl Handler<SessionInput> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: SessionInput, ctx: &mut Self::Context) {
        self.busy = true;
        let now = Instant::now();
        match msg {
            SessionInput::Request(incoming) => {
                self.in_flight
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                let IncomingRequest {
                    request,
                    source,
                    txn,
                    arrived,
                    authenticated,
                } = incoming;
                if let Some(retry) = self.state.stale_new_work(&request, arrived, now) {
                    let retry = retry.to_string();
                    metrics::counter!("focus_overload_rejections_total", "reason" => "queue_delay")
                        .increment(1);
                    txn.reply_with(&request, 503, "Service Unavailable", |w| {
                        w.header(crate::sip::HeaderName::RetryAfter, &retry);
                    });
                    self.busy = false;
                    return;
                }
                let rctx = RequestCtx {
                    txn: txn.id(),
                    source,
                    authenticated,
                };
                self.txns.insert(txn.id(), txn);
                super::fault::check(&request);
                self.state.on_request(now, &request, rctx);
            }
            SessionInput::Ack(request, source) => {
                self.in_flight
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                self.state.on_ack(now, &request, &source);
            }
            SessionInput::Tu(event) => match event {
                TuEvent::Response {
                    token,
                    response,
                    source,
                } => self
                    .state
                    .on_response_from(now, token, &response, Some(source)),
                TuEvent::Failed { token, failure } => self.state.on_failure(now, token, failure),
                TuEvent::AckTimeout { txn } => self.state.on_ack_timeout(now, txn),
                TuEvent::ResponseRefused { txn, .. } => self.state.on_response_refused(now, txn),
            },
            SessionInput::Media(pid, event) => self.state.on_media_event(now, pid, event),
            SessionInput::Talk(input) => self.on_talk(now, input),
            SessionInput::Shutdown(tx) => {
                self.shutdown = Some(tx);
                self.state.shutdown(now);
            }
            SessionInput::Admin(command, reply) => {
                self.in_flight
                    .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                let _ = reply.send(self.state.on_admin(now, command));
            }
            SessionInput::Reconfigure(update) => self.state.reconfigure(now, update),
            SessionInput::Recover(session) => self.state.recover(now, *session),
            SessionInput::FlowClosed(flow) => self.state.on_flow_closed(now, flow),
            #[cfg(test)]
            SessionInput::Panic => panic!("injected fault"),
        }
        self.settle(ctx);
        self.busy = false;
    }
}
