//! `SessionState`: everything one group session decides, as a pure state machine. It is fed
//! requests, responses and time, and returns [`Effect`]s (responses to send, requests to send,
//! dialogs to register) that the actor executes. No sockets, no clock, no actix.
//!
//! This file routes each input to the part that owns it. The parts own their data and write
//! effects to the [`Outbox`](outbox::Outbox): `participants` (admit, withdraw), `dialogs`
//! (the dialog table and its routing), `package` (subscriptions, conference-info, NOTIFY),
//! `referrals` (REFER implicit subscriptions), `pager` (group-message pacing), and talk
//! bursts ([`crate::push_to_talk::talk_burst::Talk`]). The requests are handled in `join`, `in_dialog`, `leave`,
//! `subscribe`, `refer`, `dial_out`, `pager`, `control`, `operator`, `liveness` (session
//! timers), `recover` (journal and resume) and `floor`, each importing what it uses by name.

use super::roster::Roster;
use super::sdp_policy::{self, MsrpOffer};
use crate::conference_info::DisconnectionMethod;
use crate::config::MediaKind;
use crate::dialog::Failure;
use crate::sip::{Method, Request, Response};
use crate::transport::Target;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Sessions with fewer participants compute their next deadline exactly every time.
const EXACT_BELOW: usize = 64;
/// How long a large session reuses its earliest participant deadline.
const DEADLINE_REUSE: Duration = Duration::from_millis(250);

/// The pure state of one group session.
pub struct SessionState {
    settings: Arc<SessionSettings>,
    /// The earliest participant deadline (media bind or grace, session timer) and when it was
    /// computed: a large session reuses it briefly instead of scanning every participant
    /// after every message (see [`SessionState::participant_deadline`]).
    deadline_cache: Cell<Option<(Instant, Option<Instant>)>>,
    epoch: (Instant, SystemTime),
    roster: Roster,
    participants: Participants,
    /// Conference-event subscriptions and their NOTIFYs.
    package: ConferencePackage,
    dialogs: Dialogs,
    /// INVITE transactions whose 2xx is not yet ACKed → participant.
    invites: HashMap<u64, u64>,
    /// Participants the focus is calling (REFER), not yet answered.
    dialouts: HashMap<u64, dial_out::DialOut>,
    /// Our answered INVITEs (token → participant): their 2xx retransmissions are ACKed again.
    answered: HashMap<u64, u64>,
    /// A re-INVITE accepted off its dialog's flow (authenticated, see `state/binding.rs`):
    /// the flow its ACK may come on (participant → flow).
    ack_flows: HashMap<u64, Target>,
    /// REFER implicit subscriptions.
    referrals: Referrals,
    /// Group messages: paced deliveries, those in flight, senders' shares.
    pager: pager::Pager,
    /// Subject, Contribution-ID and Conversation-ID of the conversation.
    ids: Option<uri_list::ConversationIds>,
    /// Everyone who was ever a member, by where to call them (restart remembers them).
    ever: Vec<(String, Option<String>)>,
    /// The addresses in `ever` and their addresses of record, so a join checks membership
    /// without parsing every remembered address again.
    ever_keys: HashSet<String>,
    /// A restarted session called its members back already.
    called_back: bool,
    /// Change counter value when conference-state (user-count, active) last changed.
    state_rev: u64,
    active: bool,
    /// New dial-ins are refused (policy `locked`, or a moderator locked it).
    locked: bool,
    /// Anonymous aliases handed out so far.
    anonymous_count: u32,
    /// When the session went active, and how many participants it has had since.
    started: Option<Instant>,
    participants_total: u32,
    shutting_down: bool,
    /// Talk bursts, once the actor enabled them (see `state/push_to_talk.rs`).
    talk: Option<crate::push_to_talk::talk_burst::Talk>,
    /// The group was removed from the configuration: new joins, subscriptions and
    /// out-of-dialog requests are refused `404`; the session ends when it empties.
    retired: bool,
    /// The journal has this session open (an `Open` line went out, no `Close` since).
    journal_open: bool,
    /// The session was resumed after a restart (its next charging start says so).
    recovered: bool,
    /// Effects for the actor and the requests awaiting answers.
    out: Outbox,
}

impl SessionState {
    /// A new, empty session. `now` and `wall` anchor its clock (wall time for conference-info
    /// timestamps is derived from `now`, so tests stay deterministic).
    pub fn new(settings: Arc<SessionSettings>, now: Instant, wall: SystemTime) -> SessionState {
        let locked = settings.policy.locked;
        let ids =
            settings
                .restart_ids
                .clone()
                .map(
                    |(subject, contribution_id, conversation_id)| uri_list::ConversationIds {
                        subject,
                        contribution_id,
                        conversation_id,
                    },
                );
        SessionState {
            settings,
            epoch: (now, wall),
            roster: Roster::default(),
            participants: Participants::default(),
            package: ConferencePackage::default(),
            dialogs: Dialogs::default(),
            invites: HashMap::new(),
            dialouts: HashMap::new(),
            answered: HashMap::new(),
            ack_flows: HashMap::new(),
            referrals: Referrals::default(),
            pager: pager::Pager::new(),
            deadline_cache: Cell::new(None),
            ids,
            ever: Vec::new(),
            ever_keys: HashSet::new(),
            called_back: false,
            state_rev: 0,
            active: false,
            locked,
            anonymous_count: 0,
            started: None,
            participants_total: 0,
            shutting_down: false,
            talk: None,
            retired: false,
            journal_open: false,
            recovered: false,
            out: Outbox::new(),
        }
    }

    /// The next effect to execute.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.out.effects.pop_front()
    }

    /// No participants, no one being called, no subscriptions, no group message on its
    /// way: the actor may stop.
    pub fn is_idle(&self) -> bool {
        self.participants.is_empty()
            && self.package.is_empty()
            && self.dialouts.is_empty()
            && self.referrals.is_empty()
            && self.pager.is_idle()
    }

    /// Requests sent and not yet answered (shutdown waits for them).
    pub fn outstanding(&self) -> usize {
        self.out.pending.len()
    }

    /// Participants in the session.
    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// Subscriptions held.
    pub fn subscription_count(&self) -> usize {
        self.package.len()
    }

    /// The conference URI.
    pub fn conference_uri(&self) -> &str {
        &self.settings.conference_uri
    }

    /// How the session came to be.
    pub fn kind(&self) -> crate::session::SessionKind {
        self.settings.kind
    }

    /// Whether private chat messages are delivered (group policy).
    pub fn allows_private_messages(&self) -> bool {
        self.settings.policy.allow_private
    }

    fn wall(&self, now: Instant) -> SystemTime {
        self.epoch.1 + now.saturating_duration_since(self.epoch.0)
    }

    /// The focus's Contact toward a peer reached over `flow` (its transport and family).
    fn contact(&self, flow: &Target) -> &str {
        self.settings
            .faces
            .for_ip(flow.addr.ip())
            .contact(flow.protocol)
    }

    /// The MSRP side announced to a peer at `peer`, when this group serves MSRP.
    fn msrp_for(&self, peer: IpAddr) -> Option<&MsrpOffer> {
        self.settings
            .faces
            .for_ip(peer)
            .msrp
            .as_ref()
            .filter(|_| self.settings.policy.serves(MediaKind::Msrp))
    }

    // ----- responses -----

    // ----- inputs -----

    /// A new request routed to this session (retransmissions never arrive here).
    pub fn on_request(&mut self, now: Instant, req: &Request, ctx: RequestCtx) {
        match req.to.tag() {
            Some(tag) => self.on_in_dialog(now, req, ctx, tag),
            // A removed group is gone for everyone not already in it.
            None if self.retired && req.method != Method::Options => {
                self.reply_simple(req, ctx, 404)
            }
            None => match req.method {
                Method::Invite => self.on_join(now, req, ctx),
                Method::Subscribe => self.on_subscribe(now, req, ctx),
                Method::Options => self.reply_options(req, ctx),
                Method::Refer => self.on_refer(now, req, ctx, None),
                Method::Message => self.on_group_message(now, req, ctx),
                _ => self.reply_simple(req, ctx, 481),
            },
        }
        self.flush(now);
    }

    fn on_in_dialog(&mut self, now: Instant, req: &Request, ctx: RequestCtx, tag: &str) {
        let Some(owner) = self.dialogs.owner(tag) else {
            self.reply_simple(req, ctx, 481);
            return;
        };
        let authenticated = ctx.authenticated.clone();
        if let Err(breach) = self.check_binding(owner, req, &ctx.source, authenticated.as_deref()) {
            self.refuse_breach(req, ctx, breach);
            return;
        }
        match owner {
            Owner::Participant(pid) => self.on_participant_request(now, req, ctx, pid),
            Owner::Subscription(sid) => self.on_subscription_request(now, req, ctx, sid),
            Owner::Referral(rid) => self.on_referral_request(req, ctx, rid),
        }
    }

    // ----- responses to our requests -----

    /// A response to a request this session sent (from an unknown source).
    pub fn on_response(&mut self, now: Instant, token: u64, resp: &Response) {
        self.on_response_from(now, token, resp, None);
    }

    /// A response to a request this session sent, from `source`. The 2xx to our INVITE
    /// (dial-out or resume) binds the participant's dialog to the flow it came on: the focus
    /// chose whom to call, and that peer's in-dialog requests come on its flow.
    pub fn on_response_from(
        &mut self,
        now: Instant,
        token: u64,
        resp: &Response,
        source: Option<Target>,
    ) {
        let binds = match (source, self.out.pending.get(&token)) {
            (Some(src), Some(Pending::Invite { pid } | Pending::Resume { pid, .. }))
                if (200..300).contains(&resp.status) =>
            {
                Some((*pid, src))
            }
            _ => None,
        };
        self.on_answer(now, token, resp);
        if let Some((pid, src)) = binds {
            if let Some(p) = self.participants.get_mut(&pid) {
                p.dialog.flow = src;
                p.dialog.binding = crate::dialog::Binding::Host;
            }
        }
    }

    fn on_answer(&mut self, now: Instant, token: u64, resp: &Response) {
        if let Some(&Pending::Invite { pid }) = self.out.pending.get(&token) {
            self.on_dial_response(now, token, pid, resp);
            self.flush(now);
            return;
        }
        if let Some(pid) = self.answered.get(&token).copied() {
            // A retransmitted 2xx: our ACK was lost (RFC 3261 §13.2.2.4).
            if (200..300).contains(&resp.status) {
                self.send_ack_cseq(pid, resp.cseq.seq);
            }
            return;
        }
        if resp.status < 200 {
            return;
        }
        let Some(pending) = self.out.pending.remove(&token) else {
            return;
        };
        match pending {
            Pending::ReferNotify { rid } if resp.status == 481 => {
                // RFC 6665: the referrer is gone; stop telling it.
                self.end_referral(rid);
            }
            Pending::ReferNotify { rid } => self.referral_answered(rid),
            Pending::Pager { report, recipient } => {
                self.pager.answered();
                if (200..300).contains(&resp.status) {
                    metrics::counter!("focus_group_message_deliveries_total", "outcome" => "delivered")
                        .increment(1);
                } else {
                    self.pager_failed(now, report, &recipient);
                }
            }
            Pending::Refresh {
                pid,
                cseq,
                invite,
                asked,
            } => self.on_refresh_response(now, token, pid, (cseq, invite, asked), resp),
            Pending::Resume { pid, cseq } => self.on_resume_response(now, token, pid, cseq, resp),
            Pending::Notify { sid } => match resp.status {
                200..=299 => {
                    if let Some(s) = self.package.get_mut(&sid) {
                        s.delivered(token);
                    }
                    self.prune_tombstones();
                }
                // RFC 6665 §4.2.2: 481 ends the subscription.
                481 => self.drop_subscription(sid),
                _ => {
                    if let Some(s) = self.package.get_mut(&sid) {
                        s.undelivered(token);
                    }
                }
            },
            _ => {}
        }
        self.flush(now);
    }

    /// A request this session sent got no final response.
    pub fn on_failure(&mut self, now: Instant, token: u64, failure: Failure) {
        let Some(pending) = self.out.pending.remove(&token) else {
            return;
        };
        match pending {
            Pending::Notify { sid } => {
                // RFC 6665 §4.2.2: a NOTIFY timeout ends the subscription.
                tracing::debug!(?failure, "NOTIFY failed; subscription removed");
                self.drop_subscription(sid);
            }
            Pending::Invite { pid } => self.dial_failed(now, pid, 408, DisconnectionMethod::Failed),
            Pending::ReferNotify { rid } => self.end_referral(rid),
            Pending::Pager { report, recipient } => {
                self.pager.answered();
                self.pager_failed(now, report, &recipient);
            }
            Pending::Refresh { pid, .. } => self.refresh_failed(now, pid),
            Pending::Resume { pid, .. } => self.resume_failed(now, pid),
            Pending::Bye => {}
        }
        self.flush(now);
    }

    // ----- time -----

    /// The earliest instant at which [`SessionState::handle_timeout`] has work.
    pub fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        let seq = self.roster.seq();
        let subs = self.package.deadlines(seq, now);
        let participants = self.participant_deadline(now);
        let dials = self.dialouts.values().map(|d| d.deadline);
        let pager = self
            .pager
            .deadlines(now, f64::from(self.settings.pager_rate));
        subs.chain(participants)
            .chain(dials)
            .chain(pager)
            .chain(self.talk_poll_timeout())
            .min()
    }

    /// The earliest media or session-timer deadline of any participant, and when the oldest
    /// departed one is purged. The actor asks after every message; scanning thousands of
    /// participants each time made a big group's cost per join grow with its size until it
    /// could not keep up (measured: 20,000 participants, two thirds of the session's CPU in
    /// these scans). Sessions of [`EXACT_BELOW`] or more participants (or roster users) reuse
    /// the last answer for up to [`DEADLINE_REUSE`] unless it is due: such deadlines are set
    /// seconds ahead, so a fresh one is noticed at most that much late, and a stale one only
    /// wakes the actor early.
    fn participant_deadline(&self, now: Instant) -> Option<Instant> {
        let large =
            self.participants.len() >= EXACT_BELOW || self.roster.user_count() >= EXACT_BELOW;
        if large {
            if let Some((at, value)) = self.deadline_cache.get() {
                if now < at + DEADLINE_REUSE && value.is_none_or(|d| d > now) {
                    return value;
                }
            }
        }
        let value = self
            .participants
            .values()
            .flat_map(|p| [p.media_deadline, p.timer.as_ref().map(|t| t.deadline())])
            .flatten()
            .chain(
                self.roster
                    .oldest_departure()
                    .map(|t| t + self.settings.departed_retention),
            )
            .min();
        if large {
            self.deadline_cache.set(Some((now, value)));
        }
        value
    }

    /// `Some(Retry-After)` when `req` is new work (out of dialog) that waited for this session
    /// longer than `max_queue_delay` since the transaction layer took it: an overloaded
    /// session answers such stale requests 503 instead of serving them, so its backlog
    /// shrinks instead of growing with clients' retransmissions and give-ups.
    pub fn stale_new_work(&self, req: &Request, arrived: Instant, now: Instant) -> Option<u32> {
        let max = self.settings.max_queue_delay?;
        (req.to.tag().is_none() && now.saturating_duration_since(arrived) > max)
            .then_some(self.settings.retry_after_s)
    }

    /// Runs what is due at `now`: subscription expiry, purging departed participants, and
    /// rate-limited NOTIFYs.
    pub fn handle_timeout(&mut self, now: Instant) {
        for sid in self.package.expired(now) {
            self.terminate_subscription(now, sid, "timeout");
        }
        self.dial_timeouts(now);
        self.pump_pager(now);
        self.pager.expire(now);
        self.talk_timeout(now);
        self.session_timeouts(now);
        // MSRP legs that never bound, or stayed lost past the grace time.
        let silent: Vec<u64> = self
            .participants
            .iter()
            .filter(|(_, p)| p.media_deadline.is_some_and(|d| d <= now))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in silent {
            metrics::counter!("focus_msrp_participants_lost_total").increment(1);
            self.hang_up(
                now,
                pid,
                DisconnectionMethod::Failed,
                Some((408, "MSRP connection lost")),
            );
        }
        if let Some(cutoff) = now.checked_sub(self.settings.departed_retention) {
            if self.roster.purge_departed(cutoff) {
                self.roster_changed();
                // The tombstones serve subscribers' partial NOTIFYs; those every subscriber
                // has seen (all of them, when nobody subscribes) only grow the session and
                // slow every join that scans them.
                self.prune_tombstones();
            }
        }
        self.flush(now);
    }

    /// Ends the session: BYE to every participant, a final NOTIFY to every subscriber.
    pub fn shutdown(&mut self, now: Instant) {
        self.end_all(now, DisconnectionMethod::Booted, (200, "conference ended"));
    }

    /// Ends the session after an internal failure (its actor panicked): as
    /// [`SessionState::shutdown`], but participants are told the session failed (`Reason:
    /// SIP;cause=500`) and leave as `failed`.
    pub fn abort(&mut self, now: Instant) {
        self.end_all(
            now,
            DisconnectionMethod::Failed,
            (500, "conference failed (internal error)"),
        );
    }

    fn end_all(&mut self, now: Instant, method: DisconnectionMethod, reason: (u16, &str)) {
        self.shutting_down = true;
        let pids: Vec<u64> = self.participants.keys().copied().collect();
        for pid in pids {
            self.hang_up(now, pid, method, Some(reason));
        }
        let calling: Vec<u64> = self.dialouts.keys().copied().collect();
        for pid in calling {
            if let Some(d) = self.dialouts.get(&pid) {
                let (call_id, cseq) = (d.call_id.clone(), d.cseq);
                self.out
                    .effects
                    .push_back(Effect::CancelInvite { call_id, cseq });
            }
            self.out
                .pending
                .retain(|_, p| !matches!(p, Pending::Invite { pid: x } if *x == pid));
            self.dial_failed(now, pid, 487, DisconnectionMethod::Failed);
        }
        let sids = self.package.ids();
        for sid in sids {
            self.terminate_subscription(now, sid, "noresource");
        }
        // Group messages already accepted still go out; shutdown waits for their answers.
        self.pager.flush(&mut self.out);
    }
}

mod binding;
mod dial_out;
mod referrals;
use referrals::Referrals;
mod effects;
pub use effects::{Effect, OutgoingSpec, RequestCtx};
mod in_dialog;
mod join;
mod leave;
mod reply;
mod settings;
pub use settings::{FocusFace, SessionSettings};
mod package;
use package::ConferencePackage;
mod dialogs;
mod subscribe;
use dialogs::{Dialogs, Owner};
mod participants;
use participants::Participants;
mod outbox;
use outbox::{Outbox, Pending};
mod control;
mod identity;
mod liveness;
mod operator;
mod pager;
mod push_to_talk;
mod recover;
mod refer;
mod uri_list;

pub use operator::{AdminCommand, AdminRefusal, ParticipantView, Reconfigure, SessionView};
pub use uri_list::AdhocRecord;

#[cfg(test)]
mod tests;
