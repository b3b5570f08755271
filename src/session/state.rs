//! `SessionState`: everything one group session decides, as a pure state machine. It is fed
//! requests, responses and time, and returns [`Effect`]s (responses to send, requests to send,
//! dialogs to register) that the actor executes. No sockets, no clock, no actix.

use super::charge::ChargeEvent;
use super::media::{self, FocusPolicy, MsrpLeg, MsrpOffer};
use super::roster::{user_element, EndpointEntry, Roster};
use super::subscription::Subscription;
use crate::conference_info::{
    self as ci, ConferenceDescription, ConferenceInfo, ConferenceState, DisconnectionMethod,
    ElemState, EndpointStatus, HostInfo, JoiningMethod, UriEntry, User, Users,
};
use crate::config::{MediaKind, Role};
use crate::dialog::{Destination, Failure};
use crate::dialog::{Dialog, DialogId};
use crate::media::msrp::switch::MediaEvent;
use crate::overload::ShareRefusal;
use crate::policy::{Arrival, GroupPolicy, Identity, Refusal, ANONYMOUS_DOMAIN};
use crate::sdp::{self, AnswerContext, LocalSdpState};
use crate::sip::{new_tag, ALLOW, ALLOW_EVENTS, CONFERENCE_INFO};
use crate::sip::{parse_saturating, HeaderName, MessageWriter, Method, Request, Response};
use crate::transport::{Protocol, Target};
use bytes::{Bytes, BytesMut};
use std::cell::Cell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// What a session is and the limits it enforces.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// The conference URI (`sip:team@focus.example.com`).
    pub conference_uri: String,
    pub display_name: String,
    pub subject: String,
    /// Group policy under the provider's (membership, roles, limits, media, rights).
    pub policy: GroupPolicy,
    /// Whom the focus believes (trusted hosts, `policy.identity`): every identity decision.
    pub trust: crate::policy::Trust,
    /// What the focus says about itself (Contact, SDP address, MSRP path), per IP family: a
    /// participant is told the addresses of the family it reached the focus on.
    pub faces: crate::transport::PerFamily<FocusFace>,
    /// Warn-agent of Warning headers (the focus domain).
    pub warn_agent: String,
    pub focus_display: String,
    pub min_expires: u32,
    pub default_expires: u32,
    pub max_expires: u32,
    pub max_subscriptions: usize,
    pub min_notify_interval: Duration,
    /// How long departed participants stay in conference-info as `disconnected`.
    pub departed_retention: Duration,
    pub retry_after_s: u32,
    /// New work that waited longer than this for the session is answered 503 instead of
    /// served (`overload.max_queue_delay_ms`); `None`: served however old.
    pub max_queue_delay: Option<Duration>,
    /// A participant whose MSRP connection is not bound this long after joining, or stays
    /// lost this long, is removed (BYE).
    pub media_bind_timeout: Duration,
    pub media_grace: Duration,
    /// How long a dialed-out participant may ring before the focus CANCELs.
    pub dial_timeout: Duration,
    /// Most targets one URI list (REFER, INVITE, MESSAGE) may name.
    pub max_list: usize,
    /// XML bounds for URI lists, and the addresses no request may make the focus call.
    pub amplification: Arc<crate::policy::Amplification>,
    /// Group messages relayed per second by this session (pacing), and most waiting.
    pub pager_rate: u32,
    pub pager_queue: usize,
    /// Pre-defined, ad-hoc or restarted.
    pub kind: crate::session::SessionKind,
    /// A restarted session's remembered members (address of record, display name), called
    /// again when the first participant arrives.
    pub restart_members: Vec<(String, Option<String>)>,
    /// Identifiers a restarted session keeps from its first life.
    pub restart_ids: Option<(Option<String>, Option<String>, Option<String>)>,
    /// Talk bursts (RTP and BFCP), when the focus serves audio at all.
    pub talk: Option<super::talk::TalkSettings>,
    /// Session timers (RFC 4028) on participants' dialogs.
    pub session_timer: crate::session_timer::TimerSettings,
    /// Membership changes are journaled (crash recovery); off: no journal effects at all.
    pub journal: bool,
    /// Fair shares: outsiders' subscriptions, seats and RTP legs per address, group messages
    /// per sender.
    pub shares: crate::overload::ShareSettings,
    /// A join from another focus (`;isfocus` Contact): refused or accepted (`policy.cascade`).
    pub cascade: crate::config::CascadeRule,
    /// Subscribers from trusted hosts see dialog identifiers (`<call-info>`).
    pub call_info_to_trusted: bool,
}

/// What the focus tells the participants of one IP family about itself.
#[derive(Debug, Clone)]
pub struct FocusFace {
    /// The focus's Contact for dialogs over UDP and TCP (with `;isfocus`).
    pub contact_udp: String,
    pub contact_tcp: String,
    /// The Contact for dialogs over TLS (`sips:`).
    pub contact_tls: String,
    /// Address written into SDP `o=` and `c=` (`IN IP4` / `IN IP6`).
    pub sdp_address: IpAddr,
    /// The focus's MSRP side; `None` serves no MSRP (every stream declined).
    pub msrp: Option<MsrpOffer>,
}

impl FocusFace {
    /// The Contact for a dialog over `protocol`.
    pub fn contact(&self, protocol: Protocol) -> &str {
        match protocol {
            Protocol::Udp => &self.contact_udp,
            Protocol::Tcp => &self.contact_tcp,
            Protocol::Tls => &self.contact_tls,
        }
    }
}

/// A request's transaction and origin.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// The server transaction id (the actor holds the [`crate::endpoint::ServerTxn`]).
    pub txn: u64,
    pub source: Target,
    /// The address of record the focus proved by digest authentication, if any.
    pub authenticated: Option<std::sync::Arc<str>>,
}

/// A request the session wants sent.
#[derive(Debug, Clone)]
pub struct OutgoingSpec {
    pub method: Method,
    pub request_uri: String,
    pub rest: Bytes,
    pub call_id: Box<str>,
    pub destination: Destination,
    /// INVITE: what its ACK and CANCEL repeat.
    pub invite: Option<crate::endpoint::InviteBasis>,
}

/// What the actor must do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Answer server transaction `txn`. For a 2xx to INVITE, `ack` names the dialog whose
    /// ACK the endpoint must match.
    Respond {
        txn: u64,
        status: u16,
        bytes: Bytes,
        ack: Option<DialogId>,
    },
    /// Send a request; its outcome comes back with `token`.
    Send {
        token: u64,
        request: Box<OutgoingSpec>,
    },
    /// Cancel our INVITE (a dial-out nobody answered in time).
    CancelInvite {
        call_id: Box<str>,
        cseq: u32,
    },
    /// A charging event for the records (offline charging).
    Charge(crate::session::ChargeEvent),
    /// Mute or unmute a participant's MSRP leg (moderation): its messages are refused.
    MsrpMute {
        session_id: String,
        muted: bool,
    },
    /// Install a participant's MSRP leg in the switch.
    MsrpAdd {
        pid: u64,
        leg: MsrpLeg,
        /// CPIM `From` of its messages: display name and identity.
        display: Option<String>,
        identity: String,
        /// The real identity (vouching for its CPIM `From`).
        real: String,
        /// Whom charging bills for its volume.
        charged: crate::policy::Charged,
    },
    /// Remove an MSRP leg (closing its connection), or stop expecting one.
    MsrpRemove {
        session_id: String,
    },
    /// An MSRP leg will be installed when the answer to our offer comes (delayed offer): the
    /// switch lets a bind for it wait until then (at most until `until`).
    MsrpExpect {
        session_id: String,
        until: Instant,
    },
    /// Talk bursts: RTP legs, the floor holder, BFCP messages.
    Talk(super::talk::TalkEffect),
    /// A membership change for the crash-recovery journal.
    Journal(crate::journal::Event),
    /// A request from this flow was admitted (a participant joined, a member subscribed):
    /// its connection is never evicted to make room for outsiders.
    AdmitFlow(Target),
    /// Route in-dialog requests of this dialog to this session (before the response goes).
    RegisterDialog(DialogId),
    UnregisterDialog(DialogId),
}

#[derive(Debug, Clone, Copy)]
enum Owner {
    Participant(u64),
    Subscription(u64),
    /// The implicit subscription of an out-of-dialog REFER (RFC 3515).
    Referral(u64),
}

#[derive(Debug)]
struct Participant {
    dialog: Dialog,
    sdp: LocalSdpState,
    /// The identity the others see: the real address of record, or an anonymous alias.
    identity: String,
    display: Option<String>,
    /// The real address of record (policy decisions, never shown when anonymous).
    real: String,
    /// How the focus knows `real` (from the join): whether it counts is decided again by
    /// [`crate::policy::Trust::counts`] at each decision.
    proof: crate::policy::Proof,
    role: Role,
    /// When it joined (participant durations for charging).
    joined: Instant,
    /// Our MSRP session id toward this participant (fixed for the dialog).
    msrp_session: String,
    msrp: Option<MsrpLeg>,
    /// When the MSRP leg must be bound (again) by: after joining, or after its connection
    /// was lost.
    media_deadline: Option<Instant>,
    /// We offered in our 2xx (delayed offer) and wait for the answer in the ACK.
    offer_pending: bool,
    /// The INVITE transaction whose 2xx awaits its ACK.
    awaiting_ack: Option<u64>,
    /// Muted by a moderator: every MSRP leg it gets (re-INVITE) is muted in the switch too.
    muted: bool,
    /// The dialog's session timer (RFC 4028), when one was negotiated.
    timer: Option<crate::session_timer::SessionTimer>,
    /// The participant accepts UPDATE (session refreshes use it rather than re-INVITE).
    peer_update: bool,
    /// The focus called it in (REFER, URI list, restart) rather than it calling in.
    dialed_out: bool,
    /// Shown only as an anonymous alias.
    hidden: bool,
    /// The address it dialed in from (`None`: the focus called it, or it was resumed):
    /// seats per address are counted by it.
    source: Option<IpAddr>,
    /// Its unit of the RTP legs its address may hold (given back when it goes).
    rtp_share: Option<crate::overload::QuotaPermit>,
}

impl Participant {
    /// Whom charging bills for it: its identity when that counts, else the account of the
    /// address its dialog came from (an outsider's claim is never billed).
    fn charged(&self, trust: &crate::policy::Trust) -> crate::policy::Charged {
        trust.charged(&self.real, self.proof, self.dialog.flow.addr.ip())
    }
}

#[derive(Clone)]
enum Pending {
    Notify {
        sid: u64,
    },
    Bye,
    /// Our INVITE to a dialed-out participant.
    Invite {
        pid: u64,
    },
    /// A NOTIFY of a REFER's implicit subscription.
    ReferNotify {
        rid: u64,
    },
    /// A group message toward one recipient.
    Pager {
        report: Option<Arc<pager::NegativeReport>>,
        recipient: String,
    },
    /// Our session refresh (RFC 4028) in a participant's dialog: re-INVITE or UPDATE with
    /// CSeq `cseq`, asking for `asked` seconds.
    Refresh {
        pid: u64,
        cseq: u32,
        invite: bool,
        asked: u32,
    },
    /// Our re-INVITE that resumes a participant's dialog after a restart.
    Resume {
        pid: u64,
        cseq: u32,
    },
}

/// The outcome of one offer/answer round.
struct Negotiated {
    body: Bytes,
    /// The body is our offer (the request had none).
    is_offer: bool,
    accepted: usize,
    leg: Option<MsrpLeg>,
    /// The talk-burst part of the answer (audio leg, BFCP).
    talk: Option<super::talk::TalkAnswer>,
}

impl SessionSettings {
    /// An open chat group `sip:team@focus.example.com` (documentation addresses, no MSRP
    /// side, no journal) for unit tests and benches: each overrides what it exercises, so a
    /// new setting is added here once.
    #[doc(hidden)]
    pub fn example() -> SessionSettings {
        SessionSettings {
            conference_uri: "sip:team@focus.example.com".into(),
            display_name: "Team".into(),
            subject: "Team chat".into(),
            policy: crate::policy::GroupPolicy {
                join: crate::config::JoinRule::Open,
                max_participants: 10_000,
                media: vec![crate::config::MediaKind::Msrp],
                allow_signalling_only: true,
                allow_anonymous: true,
                allow_private: true,
                add: crate::config::Authority::Moderators,
                remove: crate::config::Authority::Moderators,
                locked: false,
                members: Default::default(),
                member_uris: Default::default(),
            },
            trust: crate::policy::Trust::default(),
            faces: crate::transport::PerFamily::single(
                IpAddr::from([192, 0, 2, 1]),
                FocusFace {
                    contact_udp: "<sip:team@192.0.2.1:5060>;isfocus".into(),
                    contact_tcp: "<sip:team@192.0.2.1:5060;transport=tcp>;isfocus".into(),
                    contact_tls: "<sips:team@192.0.2.1:5061>;isfocus".into(),
                    sdp_address: IpAddr::from([192, 0, 2, 1]),
                    msrp: None,
                },
            ),
            warn_agent: "focus.example.com".into(),
            focus_display: "cpm-focus".into(),
            min_expires: 60,
            default_expires: 3600,
            max_expires: 86_400,
            max_subscriptions: 1000,
            min_notify_interval: Duration::ZERO,
            departed_retention: Duration::from_secs(30),
            retry_after_s: 5,
            max_queue_delay: None,
            media_bind_timeout: Duration::from_secs(30),
            media_grace: Duration::from_secs(10),
            dial_timeout: Duration::from_secs(60),
            max_list: 100,
            amplification: Default::default(),
            pager_rate: 1000,
            pager_queue: 1000,
            kind: crate::session::SessionKind::Predefined,
            restart_members: Vec::new(),
            restart_ids: None,
            talk: None,
            session_timer: Default::default(),
            journal: false,
            shares: Default::default(),
            cascade: crate::config::CascadeRule::Refuse,
            call_info_to_trusted: false,
        }
    }
}

/// Documents rendered during one flush, by base (`None`: full) and whether they carry
/// dialog identifiers, split around their `version` (see [`SessionState::render_parts`]).
type RenderCache = HashMap<(Option<u64>, bool), (Bytes, Bytes)>;

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
    participants: HashMap<u64, Participant>,
    subscriptions: HashMap<u64, Subscription>,
    dialogs: HashMap<Box<str>, Owner>,
    pending: HashMap<u64, Pending>,
    /// INVITE transactions whose 2xx is not yet ACKed → participant.
    invites: HashMap<u64, u64>,
    /// Participants the focus is calling (REFER), not yet answered.
    dialouts: HashMap<u64, refer::DialOut>,
    /// Our answered INVITEs (token → participant): their 2xx retransmissions are ACKed again.
    answered: HashMap<u64, u64>,
    /// A re-INVITE accepted off its dialog's flow (authenticated, see `state/binding.rs`):
    /// the flow its ACK may come on (participant → flow).
    ack_flows: HashMap<u64, Target>,
    /// REFER implicit subscriptions.
    referrals: HashMap<u64, refer::Referral>,
    /// Group messages waiting for their turn.
    pacer: pager::Pacer,
    /// Group-message deliveries sent and not yet answered: the session stays until each
    /// is counted (and reported when it fails).
    pager_in_flight: usize,
    /// Group messages per sender (fair share).
    senders: crate::overload::SenderBuckets,
    /// Subject, Contribution-ID and Conversation-ID of the conversation.
    ids: Option<uri_list::ConversationIds>,
    /// Everyone who was ever a member, by where to call them (restart remembers them).
    ever: Vec<(String, Option<String>)>,
    /// The addresses in `ever` and their addresses of record, so a join checks membership
    /// without parsing every remembered address again.
    ever_keys: HashSet<String>,
    /// A restarted session called its members back already.
    called_back: bool,
    next_id: u64,
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
    /// Talk bursts, once the actor enabled them (see `state/floor.rs`).
    talk: Option<super::talk::Talk>,
    /// The group was removed from the configuration: new joins, subscriptions and
    /// out-of-dialog requests are refused `404`; the session ends when it empties.
    retired: bool,
    /// The journal has this session open (an `Open` line went out, no `Close` since).
    journal_open: bool,
    /// The session was resumed after a restart (its next charging start says so).
    recovered: bool,
    effects: VecDeque<Effect>,
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
            participants: HashMap::new(),
            subscriptions: HashMap::new(),
            dialogs: HashMap::new(),
            pending: HashMap::new(),
            invites: HashMap::new(),
            dialouts: HashMap::new(),
            answered: HashMap::new(),
            ack_flows: HashMap::new(),
            referrals: HashMap::new(),
            pacer: pager::Pacer::new(),
            deadline_cache: Cell::new(None),
            pager_in_flight: 0,
            senders: Default::default(),
            ids,
            ever: Vec::new(),
            ever_keys: HashSet::new(),
            called_back: false,
            next_id: 1,
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
            effects: VecDeque::new(),
        }
    }

    /// The next effect to execute.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// No participants, no one being called, no subscriptions, no group message on its
    /// way: the actor may stop.
    pub fn is_idle(&self) -> bool {
        self.participants.is_empty()
            && self.subscriptions.is_empty()
            && self.dialouts.is_empty()
            && self.referrals.is_empty()
            && self.pacer.queue.is_empty()
            && self.pager_in_flight == 0
            && self.pacer.rested_at.is_none()
            && self.senders.rested_at().is_none()
    }

    /// Requests sent and not yet answered (shutdown waits for them).
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// Participants in the session.
    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// Subscriptions held.
    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
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

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
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

    fn respond(&mut self, ctx: RequestCtx, status: u16, bytes: Bytes, ack: Option<DialogId>) {
        self.effects.push_back(Effect::Respond {
            txn: ctx.txn,
            status,
            bytes,
            ack,
        });
    }

    /// A final response without body; `warning` adds a `Warning: 399` text.
    fn reply(
        &mut self,
        req: &Request,
        ctx: RequestCtx,
        status: u16,
        reason: &str,
        warning: Option<(u16, &str)>,
        extra: &[(HeaderName, &str)],
    ) {
        let tag = req.to.tag().map(str::to_string).unwrap_or_else(new_tag);
        let mut w = MessageWriter::response_to(req, ctx.source.addr, status, reason, Some(&tag));
        if let Some((code, text)) = warning {
            w.header_fmt(
                HeaderName::Warning,
                format_args!(
                    "{code} {} \"{}\"",
                    self.settings.warn_agent,
                    text.replace('"', "'")
                ),
            );
        }
        for (name, value) in extra {
            w.header(*name, value);
        }
        let bytes = w.finish_empty();
        self.respond(ctx, status, bytes, None);
    }

    /// Answers a policy refusal with its status and Warning, and counts it.
    fn refuse(&mut self, req: &Request, ctx: RequestCtx, refusal: &Refusal) {
        refusal.count();
        tracing::info!(conference = %self.settings.conference_uri,
            call_id = req.headers.get(HeaderName::CallId).unwrap_or(""), method = %req.method,
            status = refusal.status, reason = refusal.label, warning = %refusal.warning, "request refused");
        self.reply(
            req,
            ctx,
            refusal.status,
            crate::sip::reason_phrase(refusal.status),
            Some((refusal.code, &refusal.warning)),
            &[],
        );
    }

    /// Answers a fair-share refusal: `status` with its Warning and a Retry-After, counted.
    fn refuse_share(&mut self, req: &Request, ctx: RequestCtx, status: u16, why: ShareRefusal) {
        self.refuse_share_after(req, ctx, status, why, self.settings.retry_after_s);
    }

    fn refuse_share_after(
        &mut self,
        req: &Request,
        ctx: RequestCtx,
        status: u16,
        why: ShareRefusal,
        retry_after: u32,
    ) {
        why.count();
        tracing::debug!(
            conference = %self.settings.conference_uri,
            source = %ctx.source.addr.ip(),
            reason = why.label(),
            "fair share refused"
        );
        let retry = retry_after.to_string();
        self.reply(
            req,
            ctx,
            status,
            crate::sip::reason_phrase(status),
            Some((399, why.warning())),
            &[(HeaderName::RetryAfter, &retry)],
        );
    }

    /// Whether `source` already has its share of seats in this session (the trusted core,
    /// fronting many users, has no such limit).
    fn seats_taken_by(&self, source: IpAddr) -> bool {
        let shares = &self.settings.shares;
        !shares.is_trusted(source)
            && self
                .participants
                .values()
                .filter(|p| p.source == Some(source))
                .count()
                >= shares.participants_per_source
    }

    /// A unit of `source`'s RTP legs for a freshly reserved leg in `talk` (`Ok(None)` when the
    /// answer reserves none); `Err` when the address holds all it may.
    fn take_rtp_share(
        &self,
        source: IpAddr,
        talk: Option<&super::talk::TalkAnswer>,
    ) -> Result<Option<crate::overload::QuotaPermit>, ()> {
        if !talk.is_some_and(|t| t.fresh) {
            return Ok(None);
        }
        self.settings
            .shares
            .rtp_legs
            .acquire(source, self.settings.shares.is_trusted(source))
            .map(Some)
            .ok_or(())
    }

    /// What the others see of a participant: its address of record and display name, or an
    /// anonymous alias unique in this session (RFC 3323).
    fn public_identity(&mut self, who: &Identity) -> (String, Option<String>) {
        if who.anonymous {
            self.anonymous_count += 1;
            let n = self.anonymous_count;
            (
                format!("sip:anonymous-{n}@{ANONYMOUS_DOMAIN}"),
                Some(format!("Anonymous {n}")),
            )
        } else {
            (who.aor.clone(), who.display.clone())
        }
    }

    fn reply_simple(&mut self, req: &Request, ctx: RequestCtx, status: u16) {
        self.reply(
            req,
            ctx,
            status,
            crate::sip::reason_phrase(status),
            None,
            &[],
        );
    }

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

    fn reply_options(&mut self, req: &Request, ctx: RequestCtx) {
        let contact = self.contact(&ctx.source).to_string();
        self.reply(
            req,
            ctx,
            200,
            "OK",
            None,
            &[
                (HeaderName::Contact, &contact),
                (HeaderName::Allow, ALLOW),
                (HeaderName::Accept, crate::sip::ACCEPT),
                (HeaderName::AllowEvents, ALLOW_EVENTS),
            ],
        );
    }

    /// The SDP context toward a peer at `peer`: `o=`/`c=` in its family.
    fn answer_ctx(&self, peer: IpAddr) -> AnswerContext {
        let address = self.settings.faces.for_ip(peer).sdp_address;
        AnswerContext {
            username: "-".into(),
            session_id: 0,
            session_version: 0,
            origin_address: address,
            connection_address: address,
        }
    }

    /// Answers an offer (or makes one when the request has none) in a participant's SDP
    /// state, serving MSRP under `session_id` and talk bursts (`pid`: the participant whose
    /// audio leg a re-offer renews).
    fn negotiate(
        &mut self,
        sdp_state: &mut LocalSdpState,
        body: &[u8],
        session_id: &str,
        pid: Option<u64>,
        peer: IpAddr,
    ) -> Result<Negotiated, (u16, &'static str, String)> {
        let ctx = self.answer_ctx(peer);
        let msrp = self.msrp_for(peer);
        if body.is_empty() {
            let lines = media::offer_lines(msrp, session_id);
            return match sdp_state.offer(lines, &ctx) {
                Ok(sdp) => Ok(Negotiated {
                    body: Bytes::from(sdp.to_bytes()),
                    is_offer: true,
                    accepted: 0,
                    leg: None,
                    talk: None,
                }),
                Err(e) => Err((500, "Server Internal Error", e.to_string())),
            };
        }
        let offer = sdp::parse(body).map_err(|e| (400, "Malformed SDP", e.to_string()))?;
        let talk = self.plan_talk(&offer, pid, peer);
        let msrp = self.msrp_for(peer);
        let policy = FocusPolicy::new(msrp, session_id).with_talk(talk.as_ref());
        match sdp_state.answer(&offer, &policy, &ctx) {
            Ok(a) => {
                let accepted = a.accepted_count();
                let leg = policy.leg(&offer);
                Ok(Negotiated {
                    body: Bytes::from(a.into_sdp().to_bytes()),
                    is_offer: false,
                    accepted,
                    leg,
                    talk,
                })
            }
            Err(e) => {
                self.discard_talk(talk.as_ref());
                let status = e.status_code();
                let reason = if status == 400 {
                    "Malformed SDP"
                } else {
                    crate::sip::reason_phrase(status)
                };
                Err((status, reason, e.to_string()))
            }
        }
    }

    fn on_join(&mut self, now: Instant, req: &Request, ctx: RequestCtx) {
        if self.shutting_down {
            let retry = self.settings.retry_after_s.to_string();
            self.reply(
                req,
                ctx,
                503,
                "Service Unavailable",
                None,
                &[(HeaderName::RetryAfter, &retry)],
            );
            return;
        }
        let who = self.identify(req, &ctx);
        let conference = crate::sip::Uri::parse(&self.settings.conference_uri).map(|u| u.aor());
        if conference.is_ok_and(|c| c == who.aor) {
            self.refuse(req, ctx, &GroupPolicy::self_join());
            return;
        }
        // RFC 4579 §3.3: `;isfocus` says the caller is a focus (a cascaded conference).
        if contact_is_focus(req) {
            if self.settings.cascade == crate::config::CascadeRule::Refuse {
                self.refuse(req, ctx, &GroupPolicy::cascade());
                return;
            }
            tracing::info!(conference = %self.settings.conference_uri, focus = %who.aor, "a cascaded focus joins");
        }
        let role = match self.settings.policy.admit(
            &who,
            Arrival::DialIn,
            self.roster.present_endpoints(),
            self.locked,
        ) {
            Ok(role) => role,
            Err(refusal) => {
                self.refuse(req, ctx, &refusal);
                return;
            }
        };
        let source = ctx.source.addr.ip();
        if self.seats_taken_by(source) {
            self.refuse_share(req, ctx, 486, ShareRefusal::ParticipantsPerSource);
            return;
        }
        // RFC 4028: the session interval, or 422/400/420 (answered).
        let Some(timer) = self.uas_timer(req, &ctx) else {
            return;
        };
        let invite_body = match uri_list::split_invite_body(req, &self.settings.amplification.lists)
        {
            Ok(b) => b,
            Err((status, reason)) => {
                self.reply(req, ctx, status, reason, None, &[]);
                return;
            }
        };
        if invite_body.invitees.len() > self.settings.max_list {
            self.refuse(
                req,
                ctx,
                &GroupPolicy::list_too_long(self.settings.max_list),
            );
            return;
        }
        if !invite_body.invitees.is_empty() {
            if let Err(r) = self.authorize(
                identity::Requester::Joining(&who, role),
                crate::policy::Action::Add,
            ) {
                self.refuse(req, ctx, &r);
                return;
            }
        }
        // An invitee at the focus itself would be called in by the focus's own INVITE.
        if self.names_focus_any(invite_body.invitees.iter().map(|e| e.uri.as_str())) {
            self.refuse(req, ctx, &crate::policy::Amplification::self_target());
            return;
        }
        let mut sdp_state = LocalSdpState::random();
        let msrp_session = media::new_session_id();
        let n = match self.negotiate(
            &mut sdp_state,
            &invite_body.sdp,
            &msrp_session,
            None,
            ctx.source.addr.ip(),
        ) {
            Ok(x) => x,
            Err((status, reason, warning)) => {
                self.reply(req, ctx, status, reason, Some((399, &warning)), &[]);
                return;
            }
        };
        // A new RTP leg takes one of the legs its address may hold, over all sessions.
        let rtp_share = match self.take_rtp_share(source, n.talk.as_ref()) {
            Ok(permit) => permit,
            Err(()) => {
                self.discard_talk(n.talk.as_ref());
                self.refuse_share(req, ctx, 503, ShareRefusal::RtpLegsPerSource);
                return;
            }
        };
        let (body, offer_pending, accepted) = (n.body, n.is_offer, n.accepted);
        // RFC 3264: a participant whose every stream was declined joins signalling-only, when
        // the group allows it.
        if accepted == 0 && !offer_pending && !self.settings.policy.allow_signalling_only {
            self.discard_talk(n.talk.as_ref());
            self.refuse(req, ctx, &GroupPolicy::no_media());
            return;
        }
        let tag = new_tag();
        let dialog = match Dialog::uas(req, &tag, ctx.source) {
            Ok(d) => d,
            Err(e) => {
                self.discard_talk(n.talk.as_ref());
                let reason = e.to_string();
                self.reply(req, ctx, e.status(), &reason, None, &[]);
                return;
            }
        };
        let pid = self.id();
        let id = dialog.id.clone();
        let contact = self.contact(&ctx.source).to_string();
        let mut w = MessageWriter::response_to(req, ctx.source.addr, 200, "OK", Some(&tag));
        w.header(HeaderName::Contact, &contact);
        w.header(HeaderName::Allow, ALLOW);
        w.header(HeaderName::AllowEvents, ALLOW_EVENTS);
        for (name, value) in self.timer_headers(&timer) {
            w.header(name, &value);
        }
        let bytes = w.finish(Some("application/sdp"), &body);
        self.dialogs
            .insert(tag.clone().into(), Owner::Participant(pid));
        self.effects.push_back(Effect::RegisterDialog(id.clone()));
        self.invites.insert(ctx.txn, pid);
        let public = self.public_identity(&who);
        let endpoint = EndpointEntry {
            pid: Some(pid),
            entity: if who.anonymous {
                public.0.clone()
            } else {
                dialog.remote_target.to_string()
            },
            status: EndpointStatus::Connected,
            joining_method: JoiningMethod::DialedIn,
            joined_at: self.wall(now),
            disconnection: None,
            departed_at: None,
            call_id: dialog.id.call_id.to_string(),
            remote_tag: dialog.remote_tag.to_string(),
            local_tag: tag.clone(),
            hidden: who.anonymous,
            referred_by: None,
            media: Vec::new(),
            unverified: who.proof == crate::policy::Proof::Claimed,
        };
        let (identity, display) = public;
        self.participants.insert(
            pid,
            Participant {
                dialog,
                sdp: sdp_state,
                identity: identity.clone(),
                display: display.clone(),
                real: who.aor.clone(),
                proof: who.proof,
                role,
                joined: now,
                msrp_session,
                msrp: None,
                media_deadline: None,
                offer_pending,
                awaiting_ack: Some(ctx.txn),
                muted: false,
                timer: timer
                    .duty()
                    .map(|(i, d)| crate::session_timer::SessionTimer::new(now, i, d)),
                peer_update: req.headers.has_token(HeaderName::Allow, "UPDATE"),
                dialed_out: false,
                hidden: who.anonymous,
                source: Some(source),
                rtp_share,
            },
        );
        self.effects.push_back(Effect::AdmitFlow(ctx.source));
        // The MSRP leg is in the switch before the 200 leaves: a participant may connect and
        // bind as soon as it reads the answer.
        if let Some(leg) = n.leg {
            self.install_msrp(now, pid, leg);
        }
        // With a delayed offer the leg comes with the answer in the ACK, and the participant
        // may bind right after sending it: the switch holds such a bind until the leg is in.
        let offered_msrp = self.msrp_for(ctx.source.addr.ip()).is_some() && offer_pending;
        if let (true, Some(p)) = (offered_msrp, self.participants.get(&pid)) {
            self.effects.push_back(Effect::MsrpExpect {
                session_id: p.msrp_session.clone(),
                until: now + self.settings.media_bind_timeout,
            });
        }
        // The RTP leg too: the participant may send as soon as it reads the answer.
        self.talk_join(now, pid, n.talk);
        self.respond(ctx, 200, bytes, Some(id));
        self.roster
            .join(&identity, display, role.as_str(), endpoint);
        metrics::gauge!("focus_participants_active").increment(1.0);
        tracing::debug!(conference = %self.settings.conference_uri, %identity, "participant identity");
        if let Some(p) = self.participants.get(&pid) {
            tracing::info!(conference = %self.settings.conference_uri, call_id = %p.dialog.id.call_id,
                outcome = "joined", anonymous = who.anonymous, "participant joined");
        }
        // The session starts (its first participant) before this participant's join is
        // charged: session_start precedes the join record and counts it.
        self.roster_changed_at(now);
        self.charge_join(now, pid, false, who.anonymous);
        self.learn_ids(req);
        self.journal_join(now, pid);
        // A restart calls remembered members back: never an address only an outsider named.
        if who.counts {
            self.remember_member(&who.aor, who.display.clone());
        }
        if !invite_body.invitees.is_empty() {
            self.invite_list(now, &invite_body.invitees, &identity, &who.aor);
        }
        // A restart calls the members back on behalf of its joiner, who is left out: both by
        // the identity that counts. An outsider's join calls nobody (it may not add anyone)
        // and leaves the call-back to the first joiner whose identity counts.
        if let (crate::session::SessionKind::Restarted, Some(joiner)) =
            (self.settings.kind, who.entitled())
        {
            self.call_back_members(now, joiner);
        }
    }

    /// Keeps a member for a restart to call back: `address` is where to call it (the URI
    /// the focus called, or the address of record of one who dialed in), one per address of
    /// record. Only ad-hoc sessions are restarted; a pre-defined group lives long, and
    /// remembering (and scanning) every distinct participant it ever had made each join
    /// slower and the session bigger.
    fn remember_member(&mut self, address: &str, display: Option<String>) {
        if self.settings.kind == crate::session::SessionKind::Predefined {
            return;
        }
        let aor = crate::sip::Uri::parse(address).map(|u| u.aor()).ok();
        if self.ever_keys.contains(address)
            || aor.as_ref().is_some_and(|a| self.ever_keys.contains(a))
        {
            return;
        }
        self.ever_keys.insert(address.to_string());
        self.ever_keys.extend(aor);
        self.ever.push((address.to_string(), display));
    }

    fn on_in_dialog(&mut self, now: Instant, req: &Request, ctx: RequestCtx, tag: &str) {
        let Some(owner) = self.dialogs.get(tag).copied() else {
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

    fn on_participant_request(&mut self, now: Instant, req: &Request, ctx: RequestCtx, pid: u64) {
        let Some(p) = self.participants.get_mut(&pid) else {
            self.reply_simple(req, ctx, 481);
            return;
        };
        if let Err(e) = p.dialog.accept_remote_cseq(req) {
            let reason = e.to_string();
            self.reply(req, ctx, e.status(), &reason, None, &[]);
            return;
        }
        match req.method {
            Method::Bye => {
                self.reply_simple(req, ctx, 200);
                self.leave(now, pid, DisconnectionMethod::Departed, None);
            }
            Method::Invite | Method::Update => self.on_offer_in_dialog(now, req, ctx, pid),
            Method::Options => self.reply_options(req, ctx),
            Method::Refer => self.on_refer(now, req, ctx, Some(pid)),
            Method::Info | Method::Message => self.on_control(now, req, ctx, pid),
            Method::Subscribe => self.reply(
                req,
                ctx,
                403,
                "Forbidden",
                Some((
                    399,
                    "Subscribe to the conference URI outside the INVITE dialog",
                )),
                &[],
            ),
            _ => self.reply(
                req,
                ctx,
                405,
                "Method Not Allowed",
                None,
                &[(HeaderName::Allow, ALLOW)],
            ),
        }
    }

    /// re-INVITE or UPDATE: a new offer (or none) in an existing participant dialog.
    fn on_offer_in_dialog(&mut self, now: Instant, req: &Request, ctx: RequestCtx, pid: u64) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        // An offer of ours is still unanswered: the peer must retry (RFC 3261 §14.2, RFC 3311).
        // So is ours while our refresh or resume re-INVITE is out (a bodiless UPDATE carries
        // no offer and may cross it).
        let offers = !(req.method == Method::Update && req.body.is_empty());
        if p.offer_pending || (offers && self.refresh_invite_pending(pid)) {
            self.reply_simple(req, ctx, 491);
            return;
        }
        // A re-INVITE or UPDATE is a session refresh (RFC 4028 §9): new terms, or 422.
        let Some(timer) = self.uas_timer(req, &ctx) else {
            return;
        };
        if req.method == Method::Update && req.body.is_empty() {
            let Some(p) = self.participants.get_mut(&pid) else {
                return;
            };
            p.dialog.refresh_target(req);
            let contact = self.contact(&ctx.source).to_string();
            let mut extra = vec![(HeaderName::Contact, contact)];
            extra.extend(self.timer_headers(&timer));
            let extra: Vec<(HeaderName, &str)> =
                extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
            self.reply(req, ctx, 200, "OK", None, &extra);
            self.peer_refreshed(now, pid, req, &timer);
            return;
        }
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        let mut sdp_state = p.sdp.clone();
        let session_id = p.msrp_session.clone();
        let negotiated = self.negotiate(
            &mut sdp_state,
            &req.body,
            &session_id,
            Some(pid),
            ctx.source.addr.ip(),
        );
        let n = match negotiated {
            Ok(x) => x,
            Err((status, reason, warning)) => {
                self.reply(req, ctx, status, reason, Some((399, &warning)), &[]);
                return;
            }
        };
        // A leg new in this round takes a share of its address's legs; one the round drops
        // gives it back.
        let had_share = self
            .participants
            .get(&pid)
            .is_some_and(|p| p.rtp_share.is_some());
        let fresh_share = if had_share {
            None
        } else {
            let source = self
                .participants
                .get(&pid)
                .and_then(|p| p.source)
                .unwrap_or(ctx.source.addr.ip());
            match self.take_rtp_share(source, n.talk.as_ref()) {
                Ok(permit) => permit,
                Err(()) => {
                    self.discard_talk(n.talk.as_ref());
                    self.refuse_share(req, ctx, 503, ShareRefusal::RtpLegsPerSource);
                    return;
                }
            }
        };
        let (body, offer_pending, accepted) = (n.body, n.is_offer, n.accepted);
        if accepted == 0 && !offer_pending && !self.settings.policy.allow_signalling_only {
            self.discard_talk(n.talk.as_ref());
            self.refuse(req, ctx, &GroupPolicy::no_media());
            return;
        }
        if let Some(p) = self.participants.get_mut(&pid) {
            if n.talk.is_none() {
                p.rtp_share = None;
            } else if fresh_share.is_some() {
                p.rtp_share = fresh_share;
            }
        }
        let contact = self.contact(&ctx.source).to_string();
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        p.sdp = sdp_state;
        p.dialog.refresh_target(req);
        let local_tag = p.dialog.id.local_tag.to_string();
        let mut w = MessageWriter::response_to(req, ctx.source.addr, 200, "OK", Some(&local_tag));
        w.header(HeaderName::Contact, &contact);
        w.header(HeaderName::Allow, ALLOW);
        for (name, value) in self.timer_headers(&timer) {
            w.header(name, &value);
        }
        let bytes = w.finish(Some("application/sdp"), &body);
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        let ack = if req.method == Method::Invite {
            p.offer_pending = offer_pending;
            p.awaiting_ack = Some(ctx.txn);
            let id = p.dialog.id.clone();
            if !p.dialog.on_flow(&ctx.source) {
                self.ack_flows.insert(pid, ctx.source);
            }
            self.invites.insert(ctx.txn, pid);
            Some(id)
        } else {
            None
        };
        // The new MSRP leg is in the switch before the 200 leaves (see `on_join`).
        if !offer_pending {
            self.update_msrp(now, pid, n.leg);
            self.talk_renew(now, pid, n.talk);
        }
        self.respond(ctx, 200, bytes, ack);
        self.peer_refreshed(now, pid, req, &timer);
    }

    /// Installs a participant's MSRP leg; it must bind within the bind timeout.
    fn install_msrp(&mut self, now: Instant, pid: u64, leg: MsrpLeg) {
        let deadline = now + self.settings.media_bind_timeout;
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        p.msrp = Some(leg.clone());
        p.media_deadline = Some(deadline);
        let (display, identity, real, muted) = (
            p.display.clone(),
            p.identity.clone(),
            p.real.clone(),
            p.muted,
        );
        let charged = p.charged(&self.settings.trust);
        let session_id = leg.session_id.clone();
        self.effects.push_back(Effect::MsrpAdd {
            pid,
            leg,
            display,
            identity,
            real,
            charged,
        });
        // A new leg of a muted participant (re-INVITE) stays muted.
        if muted {
            self.effects.push_back(Effect::MsrpMute {
                session_id,
                muted: true,
            });
        }
    }

    /// Removes a participant's MSRP leg (if any).
    fn drop_msrp(&mut self, pid: u64) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        p.media_deadline = None;
        if let Some(leg) = p.msrp.take() {
            self.effects.push_back(Effect::MsrpRemove {
                session_id: leg.session_id,
            });
        } else if p.offer_pending {
            // Gone before answering our offer: nobody may wait for its leg any more.
            self.effects.push_back(Effect::MsrpRemove {
                session_id: p.msrp_session.clone(),
            });
        }
    }

    /// A new offer/answer round changed (or kept) the MSRP leg.
    fn update_msrp(&mut self, now: Instant, pid: u64, leg: Option<MsrpLeg>) {
        let current = self.participants.get(&pid).and_then(|p| p.msrp.clone());
        if current == leg {
            return;
        }
        self.drop_msrp(pid);
        if let Some(l) = leg {
            self.install_msrp(now, pid, l);
        }
    }

    /// News from the MSRP switch about a participant's leg.
    pub fn on_media_event(&mut self, now: Instant, pid: u64, event: MediaEvent) {
        let grace = self.settings.media_grace;
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        match event {
            MediaEvent::Bound => p.media_deadline = None,
            // A lost connection may come back (the participant reconnects and binds again)
            // within the grace time; after it the participant is gone.
            MediaEvent::Lost => {
                if p.msrp.is_some() {
                    p.media_deadline = Some(now + grace);
                }
            }
            MediaEvent::Stalled => {
                self.hang_up(
                    now,
                    pid,
                    DisconnectionMethod::Failed,
                    Some((503, "MSRP receive queue overflow")),
                );
            }
        }
        self.flush(now);
    }

    /// An ACK for one of our 2xx (matched to its dialog by the endpoint) from `source`; one
    /// that does not belong to the dialog's party is dropped (ACKs are never answered).
    pub fn on_ack(&mut self, now: Instant, req: &Request, source: &Target) {
        let Some(tag) = req.to.tag() else { return };
        let Some(owner @ Owner::Participant(pid)) = self.dialogs.get(tag).copied() else {
            return;
        };
        match self.check_binding(owner, req, source, None) {
            Ok(()) => {}
            Err(Breach::Flow) if self.ack_flows.get(&pid) == Some(source) => {}
            Err(breach) => {
                breach.count();
                return;
            }
        }
        self.ack_flows.remove(&pid);
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        if let Some(txn) = p.awaiting_ack.take() {
            self.invites.remove(&txn);
        }
        if p.offer_pending {
            p.offer_pending = false;
            // The answer to our offer sets up the MSRP leg it accepts; a missing or broken
            // answer ends the session (RFC 3261 §13.2.2.4).
            let answer = if req.body.is_empty() {
                None
            } else {
                sdp::parse(&req.body).ok()
            };
            if let Some(answer) = answer {
                let leg = media::leg_from_answer(&answer, &p.msrp_session);
                self.update_msrp(now, pid, leg);
            } else {
                self.hang_up(
                    now,
                    pid,
                    DisconnectionMethod::Failed,
                    Some((488, "no valid SDP answer in ACK")),
                );
            }
        }
        self.flush(now);
    }

    /// No ACK came for the 2xx of transaction `txn`: end that participant's session.
    pub fn on_ack_timeout(&mut self, now: Instant, txn: u64) {
        if let Some(pid) = self.invites.remove(&txn) {
            self.hang_up(now, pid, DisconnectionMethod::Failed, Some((408, "no ACK")));
            self.flush(now);
        }
    }

    /// Our 2xx for transaction `txn` could not be sent (the INVITE was CANCELled first): the
    /// participant never joined.
    pub fn on_response_refused(&mut self, now: Instant, txn: u64) {
        if let Some(pid) = self.invites.remove(&txn) {
            self.talk_leave(now, pid);
            if let Some(p) = self.participants.remove(&pid) {
                self.dialogs.remove(&p.dialog.id.local_tag);
                self.effects
                    .push_back(Effect::UnregisterDialog(p.dialog.id.clone()));
                metrics::gauge!("focus_participants_active").decrement(1.0);
                self.roster.withdraw(pid);
                self.roster_changed();
                self.journal_leave(pid);
            }
            self.flush(now);
        }
    }

    /// Sends BYE to a participant and removes it.
    fn hang_up(
        &mut self,
        now: Instant,
        pid: u64,
        method: DisconnectionMethod,
        reason: Option<(u16, &str)>,
    ) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        let (uri, mut w) = p.dialog.request(&Method::Bye);
        if let Some((cause, r)) = reason {
            // RFC 3326: tell the participant why the focus hangs up, as a SIP status.
            w.header_fmt(
                HeaderName::Reason,
                format_args!("SIP;cause={cause};text=\"{r}\""),
            );
        }
        let rest = w.finish_empty();
        let spec = OutgoingSpec {
            method: Method::Bye,
            request_uri: uri,
            rest,
            call_id: p.dialog.id.call_id.clone(),
            destination: p.dialog.destination(),
            invite: None,
        };
        let token = self.id();
        self.pending.insert(token, Pending::Bye);
        self.effects.push_back(Effect::Send {
            token,
            request: Box::new(spec),
        });
        self.leave(now, pid, method, reason.map(|(_, r)| r.to_string()));
    }

    /// Removes a participant from the session and the roster.
    fn leave(
        &mut self,
        now: Instant,
        pid: u64,
        method: DisconnectionMethod,
        reason: Option<String>,
    ) {
        self.answered.retain(|_, p| *p != pid);
        self.ack_flows.remove(&pid);
        self.drop_msrp(pid);
        self.talk_leave(now, pid);
        let Some(p) = self.participants.remove(&pid) else {
            return;
        };
        if let Some(txn) = p.awaiting_ack {
            self.invites.remove(&txn);
        }
        self.dialogs.remove(&p.dialog.id.local_tag);
        self.effects
            .push_back(Effect::UnregisterDialog(p.dialog.id.clone()));
        metrics::gauge!("focus_participants_active").decrement(1.0);
        let wall = self.wall(now);
        self.roster.depart(pid, method, reason, now, wall);
        self.effects.push_back(Effect::Charge(ChargeEvent::Leave {
            participant: p.identity.clone(),
            charged: p.charged(&self.settings.trust),
            method,
            duration: now.saturating_duration_since(p.joined),
        }));
        tracing::info!(conference = %self.settings.conference_uri, call_id = %p.dialog.id.call_id,
            outcome = method.as_str(), "participant left");
        self.roster_changed_at(now);
        self.journal_leave(pid);
    }

    /// Bookkeeping after any roster change: conference-state and the active flag.
    fn roster_changed(&mut self) {
        let active = self.roster.present_users() > 0;
        // user-count changes with almost every roster change; track it with the same counter.
        self.state_rev = self.roster.seq();
        if active != self.active {
            self.active = active;
            if active {
                metrics::gauge!("focus_sessions_active").increment(1.0);
            } else {
                metrics::gauge!("focus_sessions_active").decrement(1.0);
            }
        }
    }

    /// [`SessionState::roster_changed`], plus the charging events of a session that starts
    /// (first participant in) or stops (last participant out).
    fn roster_changed_at(&mut self, now: Instant) {
        let was = self.active;
        self.roster_changed();
        match (was, self.active) {
            (false, true) => {
                // participants_total already counts the participant whose join started it;
                // it was reset when the previous session in this actor stopped.
                self.started = Some(now);
                tracing::info!(conference = %self.settings.conference_uri, kind = ?self.settings.kind,
                    recovered = self.recovered, "session started");
                let subject =
                    (!self.settings.subject.is_empty()).then(|| self.settings.subject.clone());
                self.effects
                    .push_back(Effect::Charge(ChargeEvent::SessionStart {
                        subject,
                        recovered: self.recovered,
                    }));
            }
            (true, false) => {
                let duration = self
                    .started
                    .take()
                    .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
                tracing::info!(conference = %self.settings.conference_uri, duration_s = duration.as_secs(),
                    participants_total = self.participants_total, "session ended");
                // A later session in this actor is a new one, not the resumed one.
                self.recovered = false;
                self.effects
                    .push_back(Effect::Charge(ChargeEvent::SessionStop {
                        duration,
                        participants_total: self.participants_total,
                    }));
                self.participants_total = 0;
            }
            _ => {}
        }
    }

    /// Records a participant's arrival for charging.
    fn charge_join(&mut self, now: Instant, pid: u64, dialed_out: bool, anonymous: bool) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        p.joined = now;
        self.participants_total += 1;
        let event = ChargeEvent::Join {
            participant: p.identity.clone(),
            charged: p.charged(&self.settings.trust),
            dialed_out,
            anonymous,
        };
        self.effects.push_back(Effect::Charge(event));
    }

    // ----- subscriptions -----

    fn on_subscribe(&mut self, now: Instant, req: &Request, ctx: RequestCtx) {
        let Some(event) = req.headers.get(HeaderName::Event).map(str::to_string) else {
            self.reply(req, ctx, 400, "Missing Event header", None, &[]);
            return;
        };
        let package = event.split(';').next().unwrap_or("").trim();
        if !package.eq_ignore_ascii_case("conference") {
            self.reply(
                req,
                ctx,
                489,
                "Bad Event",
                None,
                &[(HeaderName::AllowEvents, ALLOW_EVENTS)],
            );
            return;
        }
        let who = self.identify(req, &ctx);
        let present = self.is_present(&who);
        if let Err(r) = self.settings.policy.may_watch(&who, present) {
            self.refuse(req, ctx, &r);
            return;
        }
        let Some(expires) = self.granted_expires(req, &ctx) else {
            return;
        };
        if self.shutting_down {
            let retry = self.settings.retry_after_s.to_string();
            self.reply(
                req,
                ctx,
                503,
                "Service Unavailable",
                None,
                &[(HeaderName::RetryAfter, &retry)],
            );
            return;
        }
        if self.subscriptions.len() >= self.settings.max_subscriptions {
            metrics::counter!("focus_overload_rejections_total", "reason" => "subscriptions")
                .increment(1);
            let retry = self.settings.retry_after_s.to_string();
            self.reply(
                req,
                ctx,
                503,
                "Service Unavailable",
                Some((399, "Too many subscriptions to this conference")),
                &[(HeaderName::RetryAfter, &retry)],
            );
            return;
        }
        // Outsiders (neither in the session nor listed) hold at most their share, so the
        // host and members can still subscribe.
        let outsider = !present && self.settings.policy.member_role(&who.aor).is_none();
        if outsider
            && self.subscriptions.values().filter(|s| s.outsider).count()
                >= self.settings.shares.outsider_subscriptions
        {
            self.refuse_share(req, ctx, 503, ShareRefusal::OutsiderSubscriptions);
            return;
        }
        let tag = new_tag();
        let dialog = match Dialog::uas(req, &tag, ctx.source) {
            Ok(d) => d,
            Err(e) => {
                let reason = e.to_string();
                self.reply(req, ctx, e.status(), &reason, None, &[]);
                return;
            }
        };
        let sid = self.id();
        let id = dialog.id.clone();
        self.dialogs
            .insert(tag.clone().into(), Owner::Subscription(sid));
        self.effects.push_back(Effect::RegisterDialog(id));
        let expires_at = now + Duration::from_secs(u64::from(expires));
        let mut sub = Subscription::new(sid, dialog, event, expires_at, now);
        sub.outsider = outsider;
        sub.subscriber = who.aor.clone();
        sub.dialog_ids =
            self.settings.call_info_to_trusted && self.settings.trust.trusts(ctx.source.addr.ip());
        self.subscriptions.insert(sid, sub);
        if !outsider {
            self.effects.push_back(Effect::AdmitFlow(ctx.source));
        }
        metrics::gauge!("focus_subscriptions_active").increment(1.0);
        self.reply_subscribe_ok(req, ctx, &tag, expires);
        if expires == 0 {
            // A fetch: one NOTIFY with the state, terminating the subscription.
            self.terminate_subscription(now, sid, "timeout");
        }
    }

    /// Expires of a SUBSCRIBE as granted, or `None` after answering `423`/`400`.
    fn granted_expires(&mut self, req: &Request, ctx: &RequestCtx) -> Option<u32> {
        let s = &self.settings;
        let asked = match req.headers.get(HeaderName::Expires) {
            None => s.default_expires,
            Some(v) => match parse_saturating(v) {
                Some(n) => n,
                None => {
                    self.reply(req, ctx.clone(), 400, "Malformed Expires header", None, &[]);
                    return None;
                }
            },
        };
        if asked != 0 && asked < s.min_expires {
            let min = s.min_expires.to_string();
            self.reply(
                req,
                ctx.clone(),
                423,
                "Interval Too Brief",
                None,
                &[(HeaderName::MinExpires, &min)],
            );
            return None;
        }
        Some(asked.min(s.max_expires))
    }

    fn reply_subscribe_ok(&mut self, req: &Request, ctx: RequestCtx, tag: &str, expires: u32) {
        let contact = self.contact(&ctx.source).to_string();
        let mut w = MessageWriter::response_to(req, ctx.source.addr, 200, "OK", Some(tag));
        w.header_fmt(HeaderName::Expires, format_args!("{expires}"));
        w.header(HeaderName::Contact, &contact);
        w.header(HeaderName::AllowEvents, ALLOW_EVENTS);
        let bytes = w.finish_empty();
        self.respond(ctx, 200, bytes, None);
    }

    fn on_subscription_request(&mut self, now: Instant, req: &Request, ctx: RequestCtx, sid: u64) {
        let Some(sub) = self.subscriptions.get_mut(&sid) else {
            self.reply_simple(req, ctx, 481);
            return;
        };
        if let Err(e) = sub.dialog.accept_remote_cseq(req) {
            let reason = e.to_string();
            self.reply(req, ctx, e.status(), &reason, None, &[]);
            return;
        }
        match req.method {
            Method::Subscribe => {
                let Some(expires) = self.granted_expires(req, &ctx) else {
                    return;
                };
                let Some(sub) = self.subscriptions.get_mut(&sid) else {
                    return;
                };
                sub.dialog.refresh_target(req);
                sub.expires_at = now + Duration::from_secs(u64::from(expires));
                // RFC 6665 §4.2.1.2: a refresh gets a NOTIFY too; we send the full state.
                sub.forced = true;
                sub.needs_full = true;
                sub.next_allowed = now;
                let tag = sub.dialog.id.local_tag.to_string();
                self.reply_subscribe_ok(req, ctx, &tag, expires);
                if expires == 0 {
                    self.terminate_subscription(now, sid, "timeout");
                }
            }
            Method::Options => self.reply_options(req, ctx),
            // A subscription dialog has no INVITE usage to end.
            Method::Bye => self.reply_simple(req, ctx, 481),
            _ => self.reply(
                req,
                ctx,
                405,
                "Method Not Allowed",
                None,
                &[(HeaderName::Allow, ALLOW)],
            ),
        }
    }

    /// Sends the final NOTIFY (`terminated`, full state) and forgets the subscription.
    fn terminate_subscription(&mut self, now: Instant, sid: u64, reason: &'static str) {
        self.send_notify(now, sid, Some(reason), None);
        if let Some(sub) = self.subscriptions.remove(&sid) {
            self.dialogs.remove(&sub.dialog.id.local_tag);
            self.effects
                .push_back(Effect::UnregisterDialog(sub.dialog.id.clone()));
            metrics::gauge!("focus_subscriptions_active").decrement(1.0);
        }
        self.prune_tombstones();
    }

    fn drop_subscription(&mut self, sid: u64) {
        if let Some(sub) = self.subscriptions.remove(&sid) {
            self.dialogs.remove(&sub.dialog.id.local_tag);
            self.effects
                .push_back(Effect::UnregisterDialog(sub.dialog.id.clone()));
            metrics::gauge!("focus_subscriptions_active").decrement(1.0);
            self.prune_tombstones();
        }
    }

    fn prune_tombstones(&mut self) {
        let seen = self
            .subscriptions
            .values()
            .map(|s| s.acked)
            .min()
            .unwrap_or(u64::MAX);
        self.roster.prune_tombstones(seen);
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
        let binds = match (source, self.pending.get(&token)) {
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
        if let Some(&Pending::Invite { pid }) = self.pending.get(&token) {
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
        let Some(pending) = self.pending.remove(&token) else {
            return;
        };
        match pending {
            Pending::ReferNotify { rid } if resp.status == 481 => {
                // RFC 6665: the referrer is gone; stop telling it.
                self.end_referral(rid);
            }
            Pending::Pager { report, recipient } => {
                self.pager_in_flight = self.pager_in_flight.saturating_sub(1);
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
                    if let Some(s) = self.subscriptions.get_mut(&sid) {
                        s.delivered(token);
                    }
                    self.prune_tombstones();
                }
                // RFC 6665 §4.2.2: 481 ends the subscription.
                481 => self.drop_subscription(sid),
                _ => {
                    if let Some(s) = self.subscriptions.get_mut(&sid) {
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
        let Some(pending) = self.pending.remove(&token) else {
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
                self.pager_in_flight = self.pager_in_flight.saturating_sub(1);
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
        let subs = self
            .subscriptions
            .values()
            .flat_map(|s| [Some(s.expires_at), s.due_at(seq, now)])
            .flatten();
        let participants = self.participant_deadline(now);
        let dials = self.dialouts.values().map(|d| d.deadline);
        let pager = self
            .pacer
            .next_at(now, f64::from(self.settings.pager_rate))
            .or(self.pacer.rested_at);
        subs.chain(participants)
            .chain(dials)
            .chain(pager)
            .chain(self.senders.rested_at())
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
        let expired: Vec<u64> = self
            .subscriptions
            .values()
            .filter(|s| s.expires_at <= now)
            .map(|s| s.id)
            .collect();
        for sid in expired {
            self.terminate_subscription(now, sid, "timeout");
        }
        self.dial_timeouts(now);
        self.pump_pager(now);
        self.senders.expire(now);
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
                self.effects
                    .push_back(Effect::CancelInvite { call_id, cseq });
            }
            self.pending
                .retain(|_, p| !matches!(p, Pending::Invite { pid: x } if *x == pid));
            self.dial_failed(now, pid, 487, DisconnectionMethod::Failed);
        }
        let sids: Vec<u64> = self.subscriptions.keys().copied().collect();
        for sid in sids {
            self.terminate_subscription(now, sid, "noresource");
        }
        // Group messages already accepted still go out; shutdown waits for their answers.
        self.flush_pager();
    }

    // ----- notifications -----

    /// Sends every NOTIFY that is due.
    fn flush(&mut self, now: Instant) {
        let seq = self.roster.seq();
        let due: Vec<u64> = self
            .subscriptions
            .values()
            .filter(|s| s.due_at(seq, now).is_some_and(|t| t <= now))
            .map(|s| s.id)
            .collect();
        if due.is_empty() {
            return;
        }
        let mut cache: RenderCache = HashMap::new();
        for sid in due {
            self.send_notify(now, sid, None, Some(&mut cache));
        }
    }

    /// Builds and sends one NOTIFY; `terminal` sends `terminated;reason=...` with full state.
    fn send_notify(
        &mut self,
        now: Instant,
        sid: u64,
        terminal: Option<&'static str>,
        cache: Option<&mut RenderCache>,
    ) {
        let Some(sub) = self.subscriptions.get(&sid) else {
            return;
        };
        let base = (!sub.needs_full && terminal.is_none()).then_some(sub.acked);
        let key = (base, sub.dialog_ids);
        let parts = match cache.as_ref().and_then(|c| c.get(&key)) {
            Some(p) => p.clone(),
            None => {
                let p = self.render_parts(now, key.0, key.1);
                if let Some(c) = cache {
                    c.insert(key, p.clone());
                }
                p
            }
        };
        let token = self.id();
        let seq = self.roster.seq();
        let interval = self.settings.min_notify_interval;
        let faces = self.settings.faces.clone();
        let Some(sub) = self.subscriptions.get_mut(&sid) else {
            return;
        };
        sub.sent(token, seq, now, interval);
        let mut body = BytesMut::with_capacity(parts.0.len() + parts.1.len() + 10);
        body.extend_from_slice(&parts.0);
        body.extend_from_slice(sub.version.to_string().as_bytes());
        body.extend_from_slice(&parts.1);
        let (uri, mut w) = sub.dialog.request(&Method::Notify);
        let flow = sub.dialog.flow;
        w.header(
            HeaderName::Contact,
            faces.for_ip(flow.addr.ip()).contact(flow.protocol),
        );
        w.header(HeaderName::Event, &sub.event);
        match terminal {
            Some(reason) => w.header_fmt(
                HeaderName::SubscriptionState,
                format_args!("terminated;reason={reason}"),
            ),
            None => w.header_fmt(
                HeaderName::SubscriptionState,
                format_args!("active;expires={}", sub.remaining(now)),
            ),
        };
        let rest = w.finish(Some(CONFERENCE_INFO), &body);
        let spec = OutgoingSpec {
            method: Method::Notify,
            request_uri: uri,
            rest,
            call_id: sub.dialog.id.call_id.clone(),
            destination: sub.dialog.destination(),
            invite: None,
        };
        self.pending.insert(token, Pending::Notify { sid });
        metrics::counter!("focus_notify_sent_total").increment(1);
        self.effects.push_back(Effect::Send {
            token,
            request: Box::new(spec),
        });
    }

    /// Renders the document (full when `base` is `None`, else the changes after `base`) split
    /// around its `version` value, so each subscriber's copy is two copies and a number;
    /// `dialog_ids` includes each endpoint's `<call-info>`.
    fn render_parts(&self, now: Instant, base: Option<u64>, dialog_ids: bool) -> (Bytes, Bytes) {
        let doc = match base {
            None => self.full_document_with(dialog_ids),
            Some(b) => self.partial_document_with(b, dialog_ids),
        };
        let mut out = Vec::with_capacity(1024);
        ci::render(&doc, &mut out);
        let _ = now;
        split_version(out)
    }

    fn description(&self) -> ConferenceDescription {
        ConferenceDescription {
            display_text: non_empty(&self.settings.display_name),
            subject: non_empty(&self.settings.subject),
            conf_uris: vec![UriEntry::new(self.settings.conference_uri.clone())],
            maximum_user_count: Some(self.settings.policy.max_participants),
            ..ConferenceDescription::default()
        }
    }

    fn conference_state(&self) -> ConferenceState {
        ConferenceState {
            user_count: Some(self.roster.present_users() as u32),
            active: Some(self.active),
            locked: Some(self.locked),
        }
    }

    /// The whole conference-info document as an ordinary subscriber sees it: no dialog
    /// identifiers (version filled in per subscriber).
    pub fn full_document(&self) -> ConferenceInfo {
        self.full_document_with(false)
    }

    /// The whole document; `dialog_ids` includes each endpoint's `<call-info>` (Call-ID and
    /// tags), which only a trusted subscriber may see (`subscriptions.call_info_to_trusted`).
    pub fn full_document_with(&self, dialog_ids: bool) -> ConferenceInfo {
        let mut doc = ConferenceInfo::full(self.settings.conference_uri.clone(), 0);
        doc.description = Some(self.description());
        doc.host_info = Some(HostInfo {
            display_text: non_empty(&self.settings.focus_display),
            web_page: None,
            uris: vec![UriEntry::new(self.settings.conference_uri.clone())],
        });
        doc.conference_state = Some(self.conference_state());
        doc.users = Some(Users {
            state: ElemState::Full,
            users: self
                .roster
                .users()
                .map(|u| user_element(u, dialog_ids))
                .collect(),
        });
        doc
    }

    /// The changes after change counter `base`, as RFC 4575 partial state, as an ordinary
    /// subscriber sees them (no dialog identifiers).
    pub fn partial_document(&self, base: u64) -> ConferenceInfo {
        self.partial_document_with(base, false)
    }

    /// [`SessionState::partial_document`]; `dialog_ids` includes `<call-info>`.
    pub fn partial_document_with(&self, base: u64, dialog_ids: bool) -> ConferenceInfo {
        let mut doc = ConferenceInfo::full(self.settings.conference_uri.clone(), 0);
        doc.state = ElemState::Partial;
        if self.state_rev > base {
            doc.conference_state = Some(self.conference_state());
        }
        let mut users: Vec<User> = self
            .roster
            .users()
            .filter(|u| u.revision > base)
            .map(|u| user_element(u, dialog_ids))
            .collect();
        users.extend(self.roster.deleted_since(base).map(|id| User {
            state: ElemState::Deleted,
            ..User::new(id.to_string())
        }));
        if !users.is_empty() {
            doc.users = Some(Users {
                state: ElemState::Partial,
                users,
            });
        }
        doc
    }
}

/// True when the request's Contact carries the `isfocus` feature parameter.
fn contact_is_focus(req: &Request) -> bool {
    req.headers
        .values(HeaderName::Contact)
        .filter_map(|c| crate::sip::NameAddr::parse(c).ok())
        .any(|a| a.param("isfocus").is_some() || a.uri.param("isfocus").is_some())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Splits a rendered document around the value of the root's `version` attribute.
fn split_version(out: Vec<u8>) -> (Bytes, Bytes) {
    let bytes = Bytes::from(out);
    let root = find(&bytes, b"<conference-info").unwrap_or(0);
    let Some(at) = find(&bytes[root..], b" version=\"").map(|i| root + i + 10) else {
        return (bytes, Bytes::new());
    };
    let end = bytes[at..]
        .iter()
        .position(|&b| b == b'"')
        .map_or(at, |i| at + i);
    (bytes.slice(..at), bytes.slice(end..))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

mod binding;
use binding::Breach;
mod control;
mod floor;
mod identity;
mod liveness;
mod operator;
mod pager;
mod recover;
mod refer;
mod uri_list;

pub use operator::{AdminCommand, AdminRefusal, ParticipantView, Reconfigure, SessionView};
pub use uri_list::AdhocRecord;

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
