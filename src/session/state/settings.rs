//! What a session is and the limits it enforces: the settings a session is made with, and
//! what the focus tells participants about itself.

use crate::policy::GroupPolicy;
use crate::session::sdp_policy::MsrpOffer;
use crate::transport::Protocol;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

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
    pub talk: Option<crate::push_to_talk::talk_burst::TalkSettings>,
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
