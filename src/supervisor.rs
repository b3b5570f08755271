//! The supervisor: the router of the design card. It finds the session actor a request
//! belongs to (by dialog for in-dialog requests, by conference URI otherwise), starts session
//! actors for pre-defined groups on one of N arbiters, sheds load when a mailbox is full, and
//! keeps its tables free of dead sessions.
//!
//! Delivery never waits: `try_send` into a bounded mailbox, and a full one is answered `503`
//! with Retry-After. Every routed message is counted in the session's in-flight counter while
//! the table entry is held, so a session retires itself only when nothing is on its way to it.

mod authenticate;
mod catalog;
pub mod checks;
mod control;
mod tables;

pub use authenticate::AuthGate;
pub use catalog::CatalogChange;
pub use control::{AdminAnswer, AdminError};
pub use tables::Tables;
mod recover;

use crate::config::Config;
use crate::dialog::DialogId;
use crate::endpoint::{Endpoint, IncomingRequest, Router};
use crate::media::msrp::switch::Switch;
use crate::overload::Shed;
pub use crate::session::SessionEntry;
use crate::session::{SessionActor, SessionInput, SessionSettings, SessionState};
use crate::sip::{HeaderName, Host, Method, Request};
use crate::sip::{Refuse, Refuser, Status, WarnCode};
use crate::transport::{Face, PerFamily, Protocol, Target};
use actix::dev::SendError;
use actix::prelude::*;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

/// Outcome of handing a message to a session's mailbox.
enum Delivery {
    Sent,
    /// The mailbox is full: the message comes back to be answered 503.
    Full(SessionInput),
    /// The actor has stopped.
    Closed(SessionInput),
}

/// What every session shares, from the configuration and the bound transports.
struct Template {
    /// The focus's own addresses per IP family.
    faces: PerFamily<Face>,
    /// The MSRP side per IP family, when the switch runs.
    msrp: Option<PerFamily<crate::session::MsrpOffer>>,
    trust: crate::policy::Trust,
    base: SessionSettings,
}

/// The XML bounds of the configuration, and every address that names this focus.
fn amplification(config: &Config, settings: &SupervisorSettings) -> crate::policy::Amplification {
    let mut hosts: Vec<Host> = settings.local_ips.iter().map(|ip| Host::Ip(*ip)).collect();
    hosts.extend(settings.faces.iter().map(|f| f.host.clone()));
    let mut ports = Vec::new();
    for f in settings.faces.iter() {
        ports.extend([f.udp, f.tcp]);
    }
    crate::policy::Amplification {
        lists: config.xml.list_limits(),
        own: crate::policy::OwnUris {
            domain: settings.domain.clone(),
            hosts,
            ports,
        },
    }
}

impl Template {
    fn new(config: &Config, settings: &SupervisorSettings) -> Template {
        let trust = crate::policy::Trust::from_policy(&config.policy);
        let base = SessionSettings {
            conference_uri: String::new(),
            display_name: String::new(),
            subject: String::new(),
            policy: crate::policy::GroupPolicy::adhoc(&config.policy),
            trust: trust.clone(),
            faces: session_faces(&settings.faces, settings.msrp.as_ref(), ""),
            warn_agent: config.focus.domain.clone(),
            focus_display: config.focus.display_name.clone(),
            min_expires: config.subscriptions.min_expires_s,
            default_expires: config.subscriptions.default_expires_s,
            max_expires: config.subscriptions.max_expires_s,
            max_subscriptions: config.subscriptions.max_per_session,
            min_notify_interval: Duration::from_millis(config.subscriptions.min_notify_interval_ms),
            departed_retention: Duration::from_secs(config.subscriptions.departed_retention_s),
            retry_after_s: config.supervisor.retry_after_s,
            max_queue_delay: config.overload.max_queue_delay(),
            media_bind_timeout: Duration::from_secs(config.msrp.bind_timeout_s),
            media_grace: Duration::from_secs(config.msrp.connection_grace_s),
            dial_timeout: Duration::from_secs(config.policy.dial_out_timeout_s),
            max_list: config.policy.max_list_size,
            amplification: Arc::new(amplification(config, settings)),
            pager_rate: config.policy.pager_rate,
            pager_queue: config.policy.pager_queue,
            kind: crate::session::SessionKind::Predefined,
            restart_members: Vec::new(),
            restart_ids: None,
            talk: settings.talk.as_ref().map(|planes| {
                crate::push_to_talk::talk_burst::TalkSettings::from_config(config, planes, None)
            }),
            session_timer: config.session_timer.settings(),
            journal: !config.journal.path.is_empty(),
            shares: {
                settings
                    .rtp_legs
                    .set_max(config.rtp.max_legs_per_source as usize);
                crate::overload::ShareSettings::from_config(config, settings.rtp_legs.clone())
            },
            cascade: config.policy.cascade,
            call_info_to_trusted: config.subscriptions.call_info_to_trusted,
        };
        Template {
            faces: settings.faces.clone(),
            msrp: settings.msrp.clone(),
            trust,
            base,
        }
    }

    /// Settings of a session at `conference_uri`, whose URI user (as written) is `user`.
    fn settings(
        &self,
        conference_uri: &str,
        user: &str,
        policy: crate::policy::GroupPolicy,
    ) -> SessionSettings {
        SessionSettings {
            conference_uri: conference_uri.to_string(),
            faces: session_faces(&self.faces, self.msrp.as_ref(), user),
            policy,
            ..self.base.clone()
        }
    }
}

/// The focus's Contact (with `;isfocus`) for a dialog over `protocol`: `sips:` over TLS
/// (RFC 5630 §3.1.3: a dialog that came in over TLS stays on TLS), `transport=tcp` over TCP.
/// The host is written by [`Host::with_port`] (an IPv6 address bracketed, RFC 5118).
fn focus_contact(user: &str, face: &Face, protocol: Protocol) -> String {
    let at = if user.is_empty() { "" } else { "@" };
    let host = &face.host;
    match (protocol, face.tls) {
        (Protocol::Tls, Some(port)) => {
            format!("<sips:{user}{at}{}>;isfocus", host.with_port(port))
        }
        (Protocol::Udp, _) => format!("<sip:{user}{at}{}>;isfocus", host.with_port(face.udp)),
        _ => format!(
            "<sip:{user}{at}{};transport=tcp>;isfocus",
            host.with_port(face.tcp)
        ),
    }
}

/// What a session with URI user `user` tells each IP family about the focus.
fn session_faces(
    faces: &PerFamily<Face>,
    msrp: Option<&PerFamily<crate::session::MsrpOffer>>,
    user: &str,
) -> PerFamily<crate::session::FocusFace> {
    faces.map(|face| crate::session::FocusFace {
        contact_udp: focus_contact(user, face, Protocol::Udp),
        contact_tcp: focus_contact(user, face, Protocol::Tcp),
        contact_tls: focus_contact(user, face, Protocol::Tls),
        sdp_address: face.sdp,
        msrp: msrp.map(|m| m.for_ip(face.sdp).clone()),
    })
}

/// The conference factory and URI-list service.
struct AdhocSettings {
    factory_user: String,
    list_service_user: String,
    instance: String,
    rule: crate::config::AdhocRule,
    domains: Vec<String>,
    provider: crate::config::ProviderPolicy,
    restart_window: Duration,
    max_remembered: usize,
}

/// Supervisor settings derived from the configuration and the bound transports.
pub struct SupervisorSettings {
    pub domain: Host,
    /// Addresses the focus listens on (a Request-URI naming one is for the focus).
    pub local_ips: Vec<IpAddr>,
    /// What the focus writes about itself (host, SDP address, ports) per IP family.
    pub faces: PerFamily<Face>,
    pub mailbox_capacity: usize,
    pub max_sessions: usize,
    pub retry_after_s: u32,
    /// `Server` header value for OPTIONS answers (product and instance).
    pub server: String,
    /// The MSRP side sessions announce per IP family, when the switch runs.
    pub msrp: Option<PerFamily<crate::session::MsrpOffer>>,
    /// Who is trusted, and the mailbox mark beyond which new work is refused.
    pub admission: Arc<crate::overload::Admission>,
    /// The RTP plane and BFCP listener, when the focus serves audio.
    pub talk: Option<crate::push_to_talk::talk_burst::TalkPlanes>,
    /// RTP legs held per source address over all sessions (fair share; outlives reloads).
    pub rtp_legs: Arc<crate::overload::SourceQuota>,
    /// Digest authentication (`[auth]`); `None` when `auth.mode` is off.
    pub auth: Option<AuthGate>,
    /// Online charging of a sender whose identity does not count (`charging.unverified`).
    pub unverified_charging: crate::config::UnverifiedCharging,
}

/// The router.
pub struct Supervisor {
    tables: Arc<Tables>,
    endpoint: Endpoint,
    settings: SupervisorSettings,
    /// Groups, policy and the session template: replaced whole by a configuration reload
    /// (see `catalog.rs`). Read briefly per request; never held across an await.
    catalog: std::sync::RwLock<Arc<catalog::Catalog>>,
    charging: crate::charging::ChargingHandle,
    /// Online charging: a credit check before a new participant or group message.
    credit: Arc<crate::charging::CreditGate>,
    /// Itself, for the tasks that finish routing after a credit check.
    me: std::sync::OnceLock<Weak<Supervisor>>,
    arbiters: Vec<ArbiterHandle>,
    /// The MSRP switch sessions install their participants in.
    switch: Option<Arc<Switch>>,
    /// The membership journal sessions report to (crash recovery); disabled until set.
    journal: std::sync::OnceLock<crate::recovery::journal::JournalHandle>,
    next_arbiter: AtomicUsize,
    next_instance: AtomicU64,
    draining: AtomicBool,
    /// The groups read from the XDMS (`crate::xdms`), merged into every catalog built.
    xdms_groups: std::sync::RwLock<Arc<Vec<crate::config::GroupConfig>>>,
    /// The configuration the catalog was last built from; its lock serializes rebuilds (a
    /// reload and an XDMS change), so neither loses the other's part.
    running: std::sync::Mutex<Config>,
    /// The XDMS client's state, for `/health` (unset: no XDMS).
    xdms_health: std::sync::OnceLock<Arc<crate::xdms::XdmsHealth>>,
    /// The xcap-diff subscription the NOTIFYs of its dialog go to (unset: none).
    xdms_subscription: std::sync::OnceLock<Arc<crate::xdms::SubscriptionHandle>>,
}

impl Supervisor {
    /// Builds the supervisor for `config`, with sessions on `arbiters`.
    pub fn new(
        config: &Config,
        settings: SupervisorSettings,
        endpoint: Endpoint,
        arbiters: Vec<ArbiterHandle>,
        switch: Option<Arc<Switch>>,
        charging: crate::charging::ChargingHandle,
        credit: crate::charging::CreditGate,
    ) -> Supervisor {
        let catalog = catalog::Catalog::build(config, &[], &settings, &endpoint, &charging);
        let tables = Arc::new(Tables::default());
        tables.set_restart_limits(catalog.adhoc.restart_window, catalog.adhoc.max_remembered);
        Supervisor {
            tables,
            endpoint,
            settings,
            catalog: std::sync::RwLock::new(Arc::new(catalog)),
            charging,
            credit: Arc::new(credit),
            me: std::sync::OnceLock::new(),
            arbiters,
            switch,
            journal: std::sync::OnceLock::new(),
            next_arbiter: AtomicUsize::new(0),
            next_instance: AtomicU64::new(1),
            draining: AtomicBool::new(false),
            xdms_groups: std::sync::RwLock::new(Arc::new(Vec::new())),
            running: std::sync::Mutex::new(config.clone()),
            xdms_health: std::sync::OnceLock::new(),
            xdms_subscription: std::sync::OnceLock::new(),
        }
    }

    /// Lets routing continue in tasks (after an online credit check): call once with the
    /// supervisor's own `Arc`.
    pub fn set_self(self: &Arc<Self>) {
        let _ = self.me.set(Arc::downgrade(self));
    }

    /// The routing tables.
    pub fn tables(&self) -> &Arc<Tables> {
        &self.tables
    }

    /// True when a Request-URI names the focus (its domain or an address it listens on).
    fn is_for_focus(&self, req: &Request) -> bool {
        let Some(host) = &req.uri.host else {
            return false;
        };
        if host.matches(&self.settings.domain) {
            return true;
        }
        match host.ip() {
            Some(ip) => self
                .settings
                .local_ips
                .iter()
                .any(|l| *l == ip || l.is_unspecified()),
            None => self.settings.faces.iter().any(|f| host.matches(&f.host)),
        }
    }

    /// The focus's Contact toward a peer reached over `source` (its transport and family).
    fn contact_for(&self, user: &str, source: &Target) -> String {
        focus_contact(
            user,
            self.settings.faces.for_ip(source.addr.ip()),
            source.protocol,
        )
    }

    /// True when new work for a session whose mailbox holds `entry`'s waiting requests must
    /// be refused (its established dialogs keep the rest of the mailbox).
    fn mailbox_busy(&self, entry: &SessionEntry, source: &Target) -> bool {
        self.settings
            .admission
            .mailbox_busy(source.addr.ip(), entry.in_flight.load(Ordering::SeqCst))
    }

    /// How the supervisor signs its refusals: Warnings by the focus's domain.
    fn refuser(&self) -> Refuser<'_> {
        Refuser {
            agent: &self.settings.domain,
            retry_after_s: self.settings.retry_after_s,
        }
    }

    /// Answers a new request with a typed refusal (counted by the responder).
    fn refuse(&self, incoming: IncomingRequest, refusal: &dyn Refuse) {
        incoming
            .txn
            .refuse(&incoming.request, self.refuser(), refusal);
    }

    /// The session of a conference, started if it is a pre-defined group without one.
    fn session_for(&self, user: &str) -> Result<SessionEntry, NoSession> {
        if let Some(e) = self.tables.conferences.get(user) {
            e.in_flight.fetch_add(1, Ordering::SeqCst);
            return Ok(e.clone());
        }
        // The read guard spans the start: a reload swaps the catalog under the write lock and
        // then updates every session in the table, so none starts with stale settings.
        let catalog = self.catalog_guard();
        let group = catalog.groups.get(user).ok_or(NoSession::Unknown)?;
        if self.tables.conferences.len() >= self.settings.max_sessions {
            return Err(NoSession::Shed(Shed::Sessions));
        }
        let entry = self
            .tables
            .conferences
            .entry(user.into())
            .or_insert_with(|| self.start_session(user, group.settings.clone(), "predefined"));
        entry.in_flight.fetch_add(1, Ordering::SeqCst);
        Ok(entry.clone())
    }

    fn start_session(
        &self,
        key: &str,
        settings: Arc<SessionSettings>,
        kind: &'static str,
    ) -> SessionEntry {
        let instance = self.next_instance.fetch_add(1, Ordering::Relaxed);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let n = self.arbiters.len().max(1);
        let arbiter = &self.arbiters[self.next_arbiter.fetch_add(1, Ordering::Relaxed) % n];
        let deps = crate::session::SessionDeps {
            tables: self.tables.clone(),
            endpoint: self.endpoint.clone(),
            switch: self.switch.clone(),
            charging: self.charging.clone(),
            talk: self.settings.talk.clone(),
            journal: self.journal.get().cloned().unwrap_or_default(),
        };
        let capacity = self.settings.mailbox_capacity;
        let key: Box<str> = key.into();
        let counter = in_flight.clone();
        let addr = SessionActor::start_in_arbiter(arbiter, move |ctx| {
            ctx.set_mailbox_capacity(capacity);
            let state = SessionState::new(settings, Instant::now(), SystemTime::now());
            SessionActor::new(state, key, instance, counter, deps)
        });
        metrics::counter!("focus_sessions_started_total", "kind" => kind).increment(1);
        SessionEntry {
            addr,
            instance,
            in_flight,
        }
    }

    /// Hands a message to a session; gives it back when the mailbox is full or closed.
    fn deliver(entry: &SessionEntry, msg: SessionInput) -> Delivery {
        match entry.addr.try_send(msg) {
            Ok(()) => Delivery::Sent,
            Err(SendError::Full(m)) => {
                entry.in_flight.fetch_sub(1, Ordering::SeqCst);
                Delivery::Full(m)
            }
            Err(SendError::Closed(m)) => {
                entry.in_flight.fetch_sub(1, Ordering::SeqCst);
                Delivery::Closed(m)
            }
        }
    }

    fn route_in_dialog(&self, incoming: IncomingRequest, tag: &str) {
        let req = incoming.request.clone();
        let id = DialogId {
            call_id: req.call_id().into(),
            local_tag: tag.into(),
        };
        let entry = self.tables.dialogs.get(&id).map(|e| {
            e.in_flight.fetch_add(1, Ordering::SeqCst);
            e.clone()
        });
        let Some(entry) = entry else {
            incoming
                .txn
                .reply(&req, Status::CALL_TRANSACTION_DOES_NOT_EXIST);
            return;
        };
        match Self::deliver(&entry, SessionInput::Request(incoming)) {
            Delivery::Sent => {}
            Delivery::Full(SessionInput::Request(inc)) => inc.txn.shed(Shed::Mailbox),
            Delivery::Closed(SessionInput::Request(inc)) => {
                inc.txn.reply(&req, Status::CALL_TRANSACTION_DOES_NOT_EXIST)
            }
            Delivery::Full(_) | Delivery::Closed(_) => {}
        }
    }

    /// Digest authentication where `auth.mode` asks for it, online charging (a credit check)
    /// before a new participant or a group message; then the normal routing.
    fn route_out_of_dialog(&self, incoming: IncomingRequest) {
        let Some(incoming) = self.authenticate(incoming) else {
            return;
        };
        let chargeable = matches!(incoming.request.method, Method::Invite | Method::Message);
        let me = self.me.get().and_then(Weak::upgrade);
        let (true, true, Some(me)) = (self.credit.is_online(), chargeable, me) else {
            self.route_new(incoming);
            return;
        };
        let Some((incoming, subject)) = self.credit_subject(incoming) else {
            return;
        };
        let req = incoming.request.clone();
        let check = self.credit.admit(crate::charging::CreditRequest {
            subject,
            kind: if req.method == Method::Invite {
                crate::charging::CreditKind::Session
            } else {
                crate::charging::CreditKind::Message
            },
            conference: req.uri.to_string(),
            size: (req.method == Method::Message).then_some(req.body.len() as u64),
        });
        tokio::spawn(async move {
            match check.await {
                // CANCELled (and answered 487) while the check ran: the caller has gone, so
                // nobody is admitted, shown to the others or charged.
                Ok(()) if incoming.txn.is_cancelled() => {
                    tracing::debug!(call_id = %req.call_id(), "cancelled during its credit check");
                }
                Ok(()) => me.route_new(incoming),
                Err(refusal) => me.refuse(incoming, &refusal),
            }
        });
    }

    /// Whom the credit check asks about: the identity that counts, never an outsider's
    /// claim. An outsider is challenged (when digest authentication can prove it) or refused
    /// `403`, or, with `charging.unverified = "source"`, checked as its source address's
    /// account. `None`: the request was answered here.
    fn credit_subject(&self, incoming: IncomingRequest) -> Option<(IncomingRequest, String)> {
        let source = incoming.source.addr.ip();
        let trust = self.catalog().template.trust.clone();
        let who = trust.identify(&incoming.request, source, incoming.authenticated.as_deref());
        if who.counts {
            return Some((incoming, who.aor));
        }
        if self.settings.unverified_charging == crate::config::UnverifiedCharging::Source {
            return Some((incoming, crate::policy::source_account(source)));
        }
        // Digest authentication proves it when the focus can (any `auth.mode` but off).
        let Some(gate) = &self.settings.auth else {
            tracing::info!(%source, claimed = %who.aor, "a chargeable request from an unverified identity refused");
            let refusal = crate::policy::Refusal {
                label: "unverified_charging",
                ..crate::policy::Refusal::unverified("use a charged service")
            };
            self.refuse(incoming, &refusal);
            return None;
        };
        let incoming = self.judge(gate, incoming, None)?;
        let who = trust.identify(&incoming.request, source, incoming.authenticated.as_deref());
        Some((incoming, who.aor))
    }

    fn route_new(&self, incoming: IncomingRequest) {
        let req = incoming.request.clone();
        if !self.is_for_focus(&req) {
            incoming.txn.reply(&req, Status::NOT_FOUND);
            return;
        }
        let user = req
            .uri
            .user_unescaped()
            .map(|u| u.into_owned())
            .unwrap_or_default();
        let catalog = self.catalog();
        if user == catalog.adhoc.factory_user || user == catalog.adhoc.list_service_user {
            self.route_service(incoming, &user, &catalog);
            return;
        }
        match req.method {
            Method::Options => {
                let known = user.is_empty()
                    || catalog.groups.contains_key(&user)
                    || self.tables.conferences.contains_key(user.as_str());
                if !known {
                    incoming.txn.reply(&req, Status::NOT_FOUND);
                    return;
                }
                let contact = self.contact_for(&user, &incoming.source);
                incoming.txn.reply_with(&req, Status::OK, "OK", |w| {
                    w.header(HeaderName::Contact, &contact);
                    w.header(HeaderName::Allow, crate::sip::ALLOW);
                    w.header(HeaderName::Accept, crate::sip::ACCEPT);
                    w.header(HeaderName::AllowEvents, crate::sip::ALLOW_EVENTS);
                    w.header(HeaderName::Server, &self.settings.server);
                });
            }
            Method::Invite | Method::Subscribe | Method::Refer | Method::Message => {
                if self.draining.load(Ordering::Relaxed) {
                    incoming.txn.shed(Shed::Draining);
                    return;
                }
                let mut incoming = incoming;
                // Two attempts: a session that stopped between lookup and delivery is
                // replaced by a fresh one.
                for _ in 0..2 {
                    let entry = match self.session_for(&user) {
                        Ok(e) => e,
                        Err(NoSession::Shed(why)) => {
                            incoming.txn.shed(why);
                            return;
                        }
                        Err(NoSession::Unknown) => {
                            incoming.txn.reply(&req, Status::NOT_FOUND);
                            return;
                        }
                    };
                    if self.mailbox_busy(&entry, &incoming.source) {
                        entry.in_flight.fetch_sub(1, Ordering::SeqCst);
                        incoming.txn.shed(Shed::MailboxHigh);
                        return;
                    }
                    match Self::deliver(&entry, SessionInput::Request(incoming)) {
                        Delivery::Sent => return,
                        Delivery::Full(SessionInput::Request(inc)) => {
                            inc.txn.shed(Shed::Mailbox);
                            return;
                        }
                        Delivery::Closed(SessionInput::Request(inc)) => {
                            self.tables
                                .conferences
                                .remove_if(user.as_str(), |_, e| e.instance == entry.instance);
                            incoming = inc;
                        }
                        Delivery::Full(_) | Delivery::Closed(_) => return,
                    }
                }
                incoming.txn.shed(Shed::Sessions);
            }
            // BYE, UPDATE and the like need a dialog.
            _ => incoming
                .txn
                .reply(&req, Status::CALL_TRANSACTION_DOES_NOT_EXIST),
        }
    }

    /// Requests to the conference factory and the URI-list service.
    fn route_service(&self, incoming: IncomingRequest, user: &str, catalog: &catalog::Catalog) {
        let req = incoming.request.clone();
        let factory = user == catalog.adhoc.factory_user;
        match req.method {
            Method::Options => {
                let contact = self.contact_for(user, &incoming.source);
                incoming.txn.reply_with(&req, Status::OK, "OK", |w| {
                    w.header(HeaderName::Contact, &contact);
                    w.header(HeaderName::Allow, crate::sip::ALLOW);
                    w.header(HeaderName::Server, &self.settings.server);
                });
            }
            Method::Invite if factory => self.create_adhoc(incoming),
            Method::Message if !factory => catalog.list_service.handle(incoming),
            _ => {
                let allow = if factory {
                    "INVITE, OPTIONS"
                } else {
                    "MESSAGE, OPTIONS"
                };
                incoming.txn.reply_with(
                    &req,
                    Status::METHOD_NOT_ALLOWED,
                    "Method Not Allowed",
                    |w| {
                        w.header(HeaderName::Allow, allow);
                    },
                );
            }
        }
    }

    /// INVITE to the conference factory (RFC 4579 §5.1): a new ad-hoc session with an
    /// unguessable URI, or (RCS) the live or ended session of the same Contribution-ID.
    fn create_adhoc(&self, incoming: IncomingRequest) {
        let req = incoming.request.clone();
        if self.draining.load(Ordering::Relaxed) {
            incoming.txn.shed(Shed::Draining);
            return;
        }
        let catalog = self.catalog();
        let who = catalog.template.trust.identify(
            &req,
            incoming.source.addr.ip(),
            incoming.authenticated.as_deref(),
        );
        let allowed = match catalog.adhoc.rule {
            crate::config::AdhocRule::Anyone => true,
            crate::config::AdhocRule::None => false,
            // A domain is only known from an identity that counts: an outsider's claim of
            // one proves nothing.
            crate::config::AdhocRule::Domains => who
                .entitled()
                .and_then(|aor| crate::sip::Uri::parse(aor).ok())
                .and_then(|u| u.host.map(|h| h.to_string()))
                .is_some_and(|h| {
                    catalog
                        .adhoc
                        .domains
                        .iter()
                        .any(|d| d.eq_ignore_ascii_case(&h))
                }),
        };
        if !allowed {
            let refusal = if who.counts || catalog.adhoc.rule != crate::config::AdhocRule::Domains {
                crate::policy::Refusal {
                    status: Status::FORBIDDEN,
                    label: "adhoc",
                    code: WarnCode::MISCELLANEOUS,
                    warning: "You may not create group sessions".into(),
                }
            } else {
                crate::policy::Refusal::unverified("create group sessions")
            };
            self.refuse(incoming, &refusal);
            return;
        }
        let key = req
            .headers
            .get(HeaderName::ContributionId)
            .or_else(|| req.headers.get(HeaderName::ConversationId))
            .map(str::to_string);
        if let Some(k) = &key {
            // The same conversation, still live: join it.
            let live = self.tables.adhoc_live.get(k).map(|u| u.to_string());
            if let Some(user) = live {
                if let Ok(entry) = self.session_for(&user) {
                    self.deliver_or_answer(&entry, incoming);
                    return;
                }
            }
        }
        let remembered = key.as_deref().and_then(|k| {
            self.tables
                .remembered
                .lock()
                .ok()
                .and_then(|mut r| r.take(k, Instant::now()))
        });
        if self.tables.conferences.len() >= self.settings.max_sessions {
            incoming.txn.shed(Shed::Sessions);
            return;
        }
        // Held to the session's start, as in `session_for`.
        drop(catalog);
        let catalog = self.catalog_guard();
        let (user, mut s, kind) = match remembered {
            Some(rec) => {
                let Some(user) = crate::sip::Uri::parse(&rec.conference_uri)
                    .ok()
                    .and_then(|u| u.user.as_deref().map(str::to_string))
                else {
                    incoming.txn.reply(&req, Status::SERVER_INTERNAL_ERROR);
                    return;
                };
                let mut s = catalog.template.settings(
                    &rec.conference_uri,
                    &user,
                    crate::policy::GroupPolicy::adhoc(&catalog.adhoc.provider),
                );
                s.kind = crate::session::SessionKind::Restarted;
                s.subject = rec.subject.clone().unwrap_or_default();
                s.restart_members = rec.members.clone();
                s.restart_ids = Some((rec.subject, rec.contribution_id, rec.conversation_id));
                (user, s, "restarted")
            }
            None => {
                let user = format!(
                    "conf-{}-{:016x}",
                    catalog.adhoc.instance,
                    rand::random::<u64>()
                );
                let uri = format!("sip:{user}@{}", self.settings.domain);
                let mut s = catalog.template.settings(
                    &uri,
                    &user,
                    crate::policy::GroupPolicy::adhoc(&catalog.adhoc.provider),
                );
                s.kind = crate::session::SessionKind::Adhoc;
                s.subject = req
                    .headers
                    .get(HeaderName::Subject)
                    .unwrap_or("")
                    .to_string();
                (user, s, "adhoc")
            }
        };
        // The creator hosts its session, when its identity counts: an outsider's claim makes
        // nobody host (it joins its session as a plain participant).
        if let Some(aor) = who.entitled() {
            s.policy
                .members
                .insert(aor.to_string(), crate::config::Role::Host);
        }
        let settings = Arc::new(s);
        let entry = {
            let e = self
                .tables
                .conferences
                .entry(user.as_str().into())
                .or_insert_with(|| self.start_session(&user, settings, kind));
            e.in_flight.fetch_add(1, Ordering::SeqCst);
            e.clone()
        };
        drop(catalog);
        if let Some(k) = &key {
            self.tables.adhoc_started(k, &user);
        }
        self.deliver_or_answer(&entry, incoming);
    }

    fn deliver_or_answer(&self, entry: &SessionEntry, incoming: IncomingRequest) {
        match Self::deliver(entry, SessionInput::Request(incoming)) {
            Delivery::Sent => {}
            Delivery::Full(SessionInput::Request(inc)) => inc.txn.shed(Shed::Mailbox),
            Delivery::Closed(SessionInput::Request(inc)) => inc.txn.shed(Shed::Draining),
            Delivery::Full(_) | Delivery::Closed(_) => {}
        }
    }

    /// A NOTIFY goes to the XDMS subscription when it names its dialog; any other is `481`
    /// (RFC 6665 §4.1.3: no such subscription) and changes nothing.
    fn route_notify(&self, incoming: IncomingRequest) {
        let incoming = match self.xdms_subscription.get() {
            Some(h) => match h.offer(incoming) {
                Ok(()) => return,
                Err(inc) => inc,
            },
            None => incoming,
        };
        metrics::counter!("focus_xdms_notifies_total", "outcome" => "no_subscription").increment(1);
        let req = incoming.request.clone();
        incoming
            .txn
            .reply(&req, Status::CALL_TRANSACTION_DOES_NOT_EXIST);
    }

    /// Graceful shutdown: refuse new sessions, end every session (BYE to participants, final
    /// NOTIFY to subscribers) and wait at most `grace` for them to finish.
    pub async fn shutdown(&self, grace: Duration) {
        self.draining.store(true, Ordering::SeqCst);
        let entries: Vec<SessionEntry> = self
            .tables
            .conferences
            .iter()
            .map(|e| e.value().clone())
            .collect();
        let mut waits = Vec::with_capacity(entries.len());
        for e in entries {
            let (tx, rx) = tokio::sync::oneshot::channel();
            // Shutdown must get through a full mailbox.
            e.addr.do_send(SessionInput::Shutdown(tx));
            waits.push(rx);
        }
        let all = futures_join_all(waits);
        let _ = tokio::time::timeout(grace, all).await;
    }
}

async fn futures_join_all(waits: Vec<tokio::sync::oneshot::Receiver<()>>) {
    for w in waits {
        let _ = w.await;
    }
}

/// Why no session takes a request for a conference.
enum NoSession {
    /// No such conference.
    Unknown,
    /// There is one, but no session can start for it now.
    Shed(Shed),
}

impl Router for Supervisor {
    fn route(&self, incoming: IncomingRequest) {
        let req = incoming.request.clone();
        // RFC 5630: a `sips:` Request-URI asks for TLS on every hop; one that came over a
        // plain transport already lost that, so it is refused rather than served in clear.
        if req.uri.scheme == crate::sip::Scheme::Sips && incoming.source.protocol != Protocol::Tls {
            let refusal = crate::policy::Refusal {
                status: Status::TEMPORARILY_UNAVAILABLE,
                label: "sips_plain_transport",
                code: WarnCode::SIPS_NOT_ALLOWED,
                warning: "SIPS Not Allowed: a sips: Request-URI needs TLS".into(),
            };
            self.refuse(incoming, &refusal);
            return;
        }
        // The focus subscribes to one event package only (xcap-diff, at the XDMS): with that
        // subscription configured a NOTIFY belongs to its dialog or to nothing (481); without
        // it the focus takes no NOTIFY at all (405 with Allow, from the checks below).
        if req.method == Method::Notify && self.xdms_subscription.get().is_some() {
            self.route_notify(incoming);
            return;
        }
        if let Some(refusal) = checks::check(&req) {
            self.refuse(incoming, &refusal);
            return;
        }
        match req.to.tag() {
            Some(tag) => {
                let tag = tag.to_string();
                self.route_in_dialog(incoming, &tag)
            }
            None => self.route_out_of_dialog(incoming),
        }
    }

    fn ack(&self, request: Arc<Request>, source: Target) {
        let Some(tag) = request.to.tag() else { return };
        let id = DialogId {
            call_id: request.call_id().into(),
            local_tag: tag.into(),
        };
        let entry = self.tables.dialogs.get(&id).map(|e| {
            e.in_flight.fetch_add(1, Ordering::SeqCst);
            e.clone()
        });
        if let Some(entry) = entry {
            // A late or unknown ACK is dropped (never answered); a full mailbox drops it too,
            // and the 2xx retransmission brings another.
            let _ = Self::deliver(&entry, SessionInput::Ack(request, source));
        }
    }
}

#[cfg(test)]
mod contact_tests {
    use super::*;

    /// The focus's Contact names its host through `Host::with_port`: over IPv6 the address is
    /// bracketed for every transport (the issue: `<sip:team@::1:5060>`).
    #[test]
    fn an_ipv6_contact_is_bracketed_on_every_transport() {
        let face = Face::new("[::1]:5060".parse().unwrap(), None, 5062, Some(5061));
        assert_eq!(
            focus_contact("team", &face, Protocol::Udp),
            "<sip:team@[::1]:5060>;isfocus"
        );
        assert_eq!(
            focus_contact("team", &face, Protocol::Tcp),
            "<sip:team@[::1]:5062;transport=tcp>;isfocus"
        );
        assert_eq!(
            focus_contact("team", &face, Protocol::Tls),
            "<sips:team@[::1]:5061>;isfocus"
        );
        for p in [Protocol::Udp, Protocol::Tcp, Protocol::Tls] {
            let c = crate::sip::NameAddr::parse(&focus_contact("", &face, p)).unwrap();
            assert_eq!(c.uri.host, Some(Host::Ip("::1".parse().unwrap())));
        }
    }

    /// A focus on both families gives each peer the Contact of its own family.
    #[test]
    fn each_family_gets_its_own_contact() {
        let mut faces = PerFamily::single(
            "127.0.0.1".parse().unwrap(),
            Face::new("127.0.0.1:5060".parse().unwrap(), None, 5060, None),
        );
        let v6 = Face::new("[::1]:5070".parse().unwrap(), None, 5070, None);
        faces.insert("::1".parse().unwrap(), v6);
        let s = session_faces(&faces, None, "team");
        let v4 = s.for_ip("127.0.0.1".parse().unwrap());
        assert_eq!(v4.contact_udp, "<sip:team@127.0.0.1:5060>;isfocus");
        let six = s.for_ip("::1".parse().unwrap());
        assert_eq!(six.contact_udp, "<sip:team@[::1]:5070>;isfocus");
        assert_eq!(six.sdp_address, "::1".parse::<IpAddr>().unwrap());
    }
}
