//! Talk bursts in a group session, as pure state: the session's floor control
//! ([`FloorControl`], RFC 8855) and its participants' RTP legs. Offers go in (an answer plan
//! per participant: one audio line, one BFCP line), BFCP messages, connection losses, RTP
//! liveness and time go in; [`TalkEffect`]s come out (legs to install, who holds the floor,
//! BFCP messages to write), and each participant's `<media>` for conference-info.
//!
//! One floor ([`AUDIO_FLOOR`]) controls the group's audio: its holder's RTP is forwarded to
//! everyone else. The focus never reads a socket here: port pairs come from an [`RtpPorts`]
//! reservation, and the actor executes the effects.

use super::floor::{self, FloorControl, FloorEvent, Output, RevokeReason, UserInfo};
use crate::conference_info::{Media, MediaStatus};
use crate::push_to_talk::bfcp::{Attribute, ErrorCode, Message, Primitive, RequestStatus};
use crate::push_to_talk::rtp::{self, Codec, CodecChoice, LegCodec, LegSpec, RtpEvent, RtpPorts};
use crate::sdp::{Attribute as SdpAttribute, MediaDescription, SessionDescription};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The floor of a talk-burst group: its audio (RFC 8856 `a=floorid:1 mstrm:<label>`).
pub const AUDIO_FLOOR: u16 = 1;

/// What a session needs to serve talk bursts (from `[rtp]`, `[floor]` and the group).
#[derive(Clone)]
pub struct TalkSettings {
    /// The group's codecs, in preference order.
    pub codecs: Vec<Codec>,
    /// The BFCP listener's port, announced in answers.
    pub bfcp_port: u16,
    pub max_talk_burst: Option<Duration>,
    pub max_queue: usize,
    pub max_requests_per_user: usize,
    pub priority_ordering: bool,
    pub moderated: bool,
    /// Port pairs for legs.
    pub ports: Arc<dyn RtpPorts>,
}

impl TalkSettings {
    /// The settings of `config` over the running planes; a group's `codecs` replaces the
    /// provider's list.
    pub fn from_config(
        config: &crate::config::Config,
        planes: &TalkPlanes,
        group_codecs: Option<&[String]>,
    ) -> TalkSettings {
        let specs = group_codecs.unwrap_or(&config.rtp.codecs);
        // Validated with the configuration: nothing here fails.
        let codecs = specs.iter().filter_map(|c| Codec::parse(c).ok()).collect();
        let f = &config.floor;
        TalkSettings {
            codecs,
            bfcp_port: planes.floor.local_addr().port(),
            max_talk_burst: (f.max_talk_burst_s > 0)
                .then(|| Duration::from_secs(f.max_talk_burst_s)),
            max_queue: f.max_queue,
            max_requests_per_user: f.max_requests_per_user,
            priority_ordering: f.priority_ordering,
            moderated: f.moderated,
            ports: planes.rtp.clone(),
        }
    }
}

/// The shared planes talk-burst sessions use: the RTP plane and the BFCP listener.
#[derive(Clone)]
pub struct TalkPlanes {
    pub rtp: Arc<crate::push_to_talk::rtp::RtpPlane>,
    pub floor: Arc<crate::push_to_talk::FloorServer>,
}

impl TalkPlanes {
    /// Starts the RTP plane and the BFCP listener when the provider's policy serves audio
    /// (inside the I/O runtime). The listener binds `[floor] listen`, or the first SIP
    /// address with a port the OS picks; further addresses (the SIP addresses of other IP
    /// families) listen on the same port. RTP legs bind the SIP address of their peer's
    /// family. `Err` names the address that could not be bound.
    pub fn start(
        config: &crate::config::Config,
        sip_ips: &[std::net::IpAddr],
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<Option<TalkPlanes>, (SocketAddr, std::io::Error)> {
        use crate::config::MediaKind;
        if !config.policy.allowed_media.contains(&MediaKind::Audio) {
            return Ok(None);
        }
        let f = &config.floor;
        let sip_ip = sip_ips
            .first()
            .copied()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
        let configured: Vec<SocketAddr> = f
            .listen
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let addr = configured
            .first()
            .copied()
            .unwrap_or_else(|| SocketAddr::new(sip_ip, 0));
        // One BFCP address per IP family beyond the first.
        let mut more: Vec<std::net::IpAddr> = Vec::new();
        let candidates: Vec<std::net::IpAddr> = if configured.is_empty() {
            sip_ips.to_vec()
        } else {
            configured.iter().map(SocketAddr::ip).collect()
        };
        for ip in candidates {
            if ip.is_ipv6() != addr.is_ipv6() && !more.iter().any(|m| m.is_ipv6() == ip.is_ipv6()) {
                more.push(ip);
            }
        }
        let (floor, listener) = crate::push_to_talk::FloorServer::bind(
            addr,
            crate::push_to_talk::ServerSettings {
                max_connections: f.max_connections,
                bind_timeout: Duration::from_secs(f.bind_timeout_s),
                max_message: f.max_message_size,
                write_queue: f.write_queue,
            },
        )
        .map_err(|e| (addr, e))?;
        for ip in &more {
            let also = floor
                .bind_also(*ip)
                .map_err(|e| (SocketAddr::new(*ip, floor.local_addr().port()), e))?;
            tokio::spawn(floor.clone().run(also, cancel.clone()));
        }
        tokio::spawn(floor.clone().run(listener, cancel.clone()));
        let r = &config.rtp;
        let rtp = Arc::new(crate::push_to_talk::rtp::RtpPlane::new(
            crate::push_to_talk::rtp::RtpSettings {
                bind: sip_ip,
                also_bind: sip_ips
                    .iter()
                    .copied()
                    .filter(|ip| ip.is_ipv6() != sip_ip.is_ipv6())
                    .take(1)
                    .collect(),
                port_min: r.port_min,
                port_max: r.port_max,
                silence_timeout: Duration::from_secs(r.silence_timeout_s),
                max_packet_rate: r.max_packet_rate,
                latching: r.latching,
            },
        ));
        Ok(Some(TalkPlanes { rtp, floor }))
    }
}

impl fmt::Debug for TalkPlanes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TalkPlanes")
            .field("bfcp", &self.floor.local_addr())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for TalkSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TalkSettings")
            .field("codecs", &self.codecs)
            .field("bfcp_port", &self.bfcp_port)
            .field("max_talk_burst", &self.max_talk_burst)
            .field("max_queue", &self.max_queue)
            .field("moderated", &self.moderated)
            .finish_non_exhaustive()
    }
}

/// What the actor does for talk bursts.
#[derive(Debug, Clone)]
pub enum TalkEffect {
    /// Start a participant's RTP leg on its reserved port pair.
    AddLeg(LegSpec),
    /// A new offer moved its media address or codec.
    UpdateLeg {
        pid: u64,
        expected: Option<SocketAddr>,
        codec: LegCodec,
    },
    RemoveLeg {
        pid: u64,
    },
    /// Forward only this participant's RTP (0: nobody's).
    Holder {
        pid: u64,
    },
    /// Drop everything a participant sends (moderation).
    Mute {
        pid: u64,
        muted: bool,
    },
    /// Write a BFCP message on a user's connection.
    Send {
        user: u16,
        message: Message,
    },
    /// Close a user's BFCP connection (it left).
    Close {
        user: u16,
    },
}

/// Why a BFCP connection may not speak for the user it names. Each refusal is one BFCP
/// Error (RFC 8855 §13.1) and one `reason` of `focus_bfcp_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FloorRefusal {
    /// No floor control user by that id in this conference.
    #[error("no such user in this conference")]
    UnknownUser,
    /// The user exists, but its SDP negotiated floor control from another address.
    #[error("this address did not negotiate floor control for that user")]
    WrongAddress,
}

impl FloorRefusal {
    /// The BFCP error code answered.
    pub fn code(self) -> ErrorCode {
        match self {
            FloorRefusal::UnknownUser => ErrorCode::UserDoesNotExist,
            FloorRefusal::WrongAddress => ErrorCode::UnauthorizedOperation,
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            FloorRefusal::UnknownUser => "unknown_user",
            FloorRefusal::WrongAddress => "wrong_address",
        }
    }
}

/// The talk-burst part of one answer: its lines and the leg they describe.
#[derive(Debug, Clone)]
pub struct TalkAnswer {
    pub audio_index: usize,
    pub audio_line: MediaDescription,
    /// The BFCP line, when the offer had one the focus serves.
    pub bfcp: Option<(usize, MediaDescription)>,
    pub port: u16,
    /// The port was reserved for this answer: release it if the answer is not used.
    pub fresh: bool,
    pub user: u16,
    pub label: String,
    pub codec: CodecChoice,
    /// Where the offer says the participant receives.
    pub remote: Option<SocketAddr>,
    /// The address the offer's BFCP stream is at: its connections must come from there.
    pub bfcp_from: Option<IpAddr>,
}

impl TalkAnswer {
    fn leg_codec(&self) -> LegCodec {
        LegCodec {
            index: u8::try_from(self.codec.index).unwrap_or(u8::MAX),
            payload_type: self.codec.payload_type,
            clock_rate: self.codec.clock_rate,
        }
    }
}

/// One participant's leg.
#[derive(Debug, Clone)]
struct Leg {
    user: u16,
    port: u16,
    label: String,
    codec: CodecChoice,
    remote: Option<SocketAddr>,
    /// A floor control user (its offer had a BFCP stream).
    floor_user: bool,
    /// Where its BFCP connections must come from (its offer's BFCP `c=` address).
    bfcp_from: Option<IpAddr>,
    /// Its BFCP connection dropped and none replaced it.
    lost: bool,
    /// No RTP or RTCP for the silence timeout.
    silent: bool,
}

/// The talk-burst state of one session.
pub struct Talk {
    settings: TalkSettings,
    conference_id: u32,
    floor: FloorControl,
    legs: BTreeMap<u64, Leg>,
    /// BFCP user id (random, so not guessable from one's own) → participant.
    users: HashMap<u16, u64>,
    /// Participants resumed after a crash whose answer is awaited: the plan their offer made.
    resuming: HashMap<u64, TalkAnswer>,
    holder: Option<u64>,
    /// When the current talk burst was granted (its duration is measured).
    granted_at: Option<Instant>,
    effects: Vec<TalkEffect>,
}

impl Talk {
    /// Talk bursts under `conference_id` (the BFCP `a=confid`, registered with the listener).
    pub fn new(settings: TalkSettings, conference_id: u32) -> Talk {
        let floor = FloorControl::new(floor::Config {
            conference_id,
            transport: floor::Transport::Reliable,
            floors: vec![floor::FloorConfig::new(AUDIO_FLOOR, "audio")],
            max_talk_burst: settings.max_talk_burst,
            max_requests_per_floor: settings.max_requests_per_user,
            max_queue: Some(settings.max_queue),
            priority_ordering: settings.priority_ordering,
            moderated: settings.moderated,
        });
        Talk {
            settings,
            conference_id,
            floor,
            legs: BTreeMap::new(),
            users: HashMap::new(),
            resuming: HashMap::new(),
            holder: None,
            granted_at: None,
            effects: Vec::new(),
        }
    }

    pub fn conference_id(&self) -> u32 {
        self.conference_id
    }

    /// The participant holding the floor.
    pub fn holder(&self) -> Option<u64> {
        self.holder
    }

    /// Whether BFCP user `user` is a participant with floor control.
    pub fn knows(&self, user: u16) -> bool {
        self.users.contains_key(&user) && self.floor.has_user(user)
    }

    /// Whether a BFCP connection from `peer` may speak for `user`: the user must be a floor
    /// control participant whose offer put its BFCP stream at `peer`'s address.
    pub fn authorize(&self, user: u16, peer: IpAddr) -> Result<(), FloorRefusal> {
        let leg = self
            .users
            .get(&user)
            .and_then(|p| self.legs.get(p))
            .filter(|_| self.floor.has_user(user))
            .ok_or(FloorRefusal::UnknownUser)?;
        match leg.bfcp_from {
            Some(ip) if ip.to_canonical() == peer.to_canonical() => Ok(()),
            _ => Err(FloorRefusal::WrongAddress),
        }
    }

    /// Effects produced since the last call.
    pub fn take_effects(&mut self) -> Vec<TalkEffect> {
        std::mem::take(&mut self.effects)
    }

    /// Plans the talk-burst part of the answer to `offer`: the first `m=audio` RTP stream
    /// with a codec of the group, and the first BFCP stream the focus serves. `pid` names the
    /// participant whose leg it renews (a re-INVITE keeps its port and user id). `None`: no
    /// usable audio stream (or no free port pair), so audio and BFCP are declined. A fresh
    /// leg's ports are bound in the IP family of `peer` (where the participant's signalling
    /// came from, the family the answer's `c=` names).
    pub fn plan(
        &mut self,
        offer: &SessionDescription,
        pid: Option<u64>,
        peer: std::net::IpAddr,
    ) -> Option<TalkAnswer> {
        let existing = pid.and_then(|p| self.legs.get(&p)).cloned();
        let (audio_index, offered) = offer
            .media
            .iter()
            .enumerate()
            .find(|(_, m)| !m.is_disabled() && is_rtp_audio(m))?;
        let codec = rtp::choose(&self.settings.codecs, offered)?;
        let (port, fresh) = match &existing {
            Some(l) => (l.port, false),
            None => (self.settings.ports.reserve(peer)?, true),
        };
        let user = match &existing {
            Some(l) => l.user,
            None => self.allocate_user(),
        };
        // RFC 4574: the label is a token; BFCP's mstrm: needs it whole.
        let label = offered
            .label()
            .filter(|l| !l.is_empty() && !l.contains(char::is_whitespace))
            .unwrap_or("audio")
            .to_string();
        let remote = offer
            .connections_for(offered)
            .first()
            .and_then(|c| c.ip())
            .map(|ip| SocketAddr::new(ip, offered.port));
        let mut audio_line = MediaDescription::new(
            "audio",
            port,
            offered.proto.as_str(),
            [codec.payload_type.to_string()],
        )
        .with_attribute(SdpAttribute::new("rtpmap", codec.rtpmap.as_str()));
        if let Some(fmtp) = &codec.fmtp {
            audio_line = audio_line.with_attribute(SdpAttribute::new("fmtp", fmtp.as_str()));
        }
        audio_line = audio_line.with_attribute(SdpAttribute::new("label", label.as_str()));
        let offered_bfcp = offer
            .media
            .iter()
            .enumerate()
            .find(|(_, m)| !m.is_disabled() && super::sdp::can_serve(m));
        let bfcp_from = offered_bfcp
            .and_then(|(_, m)| offer.connections_for(m).first())
            .and_then(|c| c.ip());
        let bfcp = offered_bfcp.map(|(i, m)| {
            let line = super::sdp::ServerLine {
                port: self.settings.bfcp_port,
                conference_id: self.conference_id,
                user_id: user,
                floor_id: AUDIO_FLOOR,
                media_label: &label,
            };
            (i, super::sdp::answer_line(m, &line))
        });
        Some(TalkAnswer {
            audio_index,
            audio_line,
            bfcp,
            port,
            fresh,
            user,
            label,
            codec,
            remote,
            bfcp_from,
        })
    }

    /// Plans the leg of a participant resumed after a crash, where the focus offers: a fresh
    /// port pair and user id replace the old ones in `last` (the focus's last SDP in the
    /// dialog, whose port the new process never bound). Returns the lines to offer in place
    /// of the old audio and BFCP lines, by index; the leg starts with the participant's
    /// answer ([`Talk::finish_resume`]). `None`: `last` had no audio the group serves, or no
    /// port pair is free (the audio line is offered as it was and stays without a leg).
    pub fn plan_resume(
        &mut self,
        pid: u64,
        last: &SessionDescription,
        peer: IpAddr,
    ) -> Option<Vec<(usize, MediaDescription)>> {
        let (audio_index, old) = last
            .media
            .iter()
            .enumerate()
            .find(|(_, m)| !m.is_disabled() && is_rtp_audio(m))?;
        let codec = rtp::choose(&self.settings.codecs, old)?;
        let port = self.settings.ports.reserve(peer)?;
        let user = self.allocate_user();
        // Held for the participant until its answer, so no other plan takes the id.
        self.users.insert(user, pid);
        let label = old
            .label()
            .filter(|l| !l.is_empty() && !l.contains(char::is_whitespace))
            .unwrap_or("audio")
            .to_string();
        let mut audio_line = old.clone();
        audio_line.port = port;
        let bfcp = last
            .media
            .iter()
            .enumerate()
            .find(|(_, m)| {
                !m.is_disabled()
                    && m.media.eq_ignore_ascii_case("application")
                    && m.proto.eq_ignore_ascii_case(super::sdp::PROTO)
            })
            .map(|(i, m)| {
                let line = super::sdp::ServerLine {
                    port: self.settings.bfcp_port,
                    conference_id: self.conference_id,
                    user_id: user,
                    floor_id: AUDIO_FLOOR,
                    media_label: &label,
                };
                (i, super::sdp::answer_line(m, &line))
            });
        let mut lines = vec![(audio_index, audio_line.clone())];
        lines.extend(bfcp.clone());
        self.resuming.insert(
            pid,
            TalkAnswer {
                audio_index,
                audio_line,
                bfcp,
                port,
                fresh: true,
                user,
                label,
                codec,
                remote: None,
                bfcp_from: None,
            },
        );
        Some(lines)
    }

    /// The resumed participant answered `answer`: its leg starts where the answer says it
    /// receives (with the codec it kept), and it is a floor control user again when it
    /// accepted the BFCP stream. An answer that declined the audio gives the port back.
    pub fn finish_resume(&mut self, pid: u64, answer: &SessionDescription, info: UserInfo) {
        let Some(mut plan) = self.resuming.remove(&pid) else {
            return;
        };
        let audio = answer
            .media
            .get(plan.audio_index)
            .filter(|m| !m.is_disabled() && is_rtp_audio(m));
        let Some(audio) = audio else {
            self.abandon(plan);
            return;
        };
        if let Some(codec) = rtp::choose(&self.settings.codecs, audio) {
            plan.codec = codec;
        }
        plan.remote = answer
            .connections_for(audio)
            .first()
            .and_then(|c| c.ip())
            .map(|ip| SocketAddr::new(ip, audio.port));
        let bfcp_answer = plan
            .bfcp
            .as_ref()
            .and_then(|(i, _)| answer.media.get(*i))
            .filter(|m| !m.is_disabled());
        plan.bfcp_from = bfcp_answer
            .and_then(|m| answer.connections_for(m).first())
            .and_then(|c| c.ip());
        if bfcp_answer.is_none() {
            plan.bfcp = None;
        }
        self.join(pid, plan, info);
    }

    /// The resume failed (refused, unanswered, called again): its reservation goes back.
    pub fn abandon_resume(&mut self, pid: u64) {
        if let Some(plan) = self.resuming.remove(&pid) {
            self.abandon(plan);
        }
    }

    fn abandon(&mut self, plan: TalkAnswer) {
        // The id was held for the plan only (a leg that started keeps its own).
        if !self.legs.values().any(|l| l.user == plan.user) {
            self.users.remove(&plan.user);
        }
        self.discard(&plan);
    }

    /// Gives back what an unused plan reserved.
    pub fn discard(&self, answer: &TalkAnswer) {
        if answer.fresh {
            self.settings.ports.release(answer.port);
        }
    }

    /// A participant joined with `answer`: its leg starts, and it becomes a floor control
    /// user when its offer had BFCP.
    pub fn join(&mut self, pid: u64, answer: TalkAnswer, info: UserInfo) {
        let floor_user = answer.bfcp.is_some();
        if floor_user {
            self.floor.add_user(answer.user, info);
        }
        self.users.insert(answer.user, pid);
        self.effects.push(TalkEffect::AddLeg(LegSpec {
            pid,
            port: answer.port,
            expected: answer.remote,
            codec: answer.leg_codec(),
        }));
        self.legs.insert(
            pid,
            Leg {
                user: answer.user,
                port: answer.port,
                label: answer.label,
                codec: answer.codec,
                remote: answer.remote,
                floor_user,
                bfcp_from: answer.bfcp_from,
                lost: false,
                silent: false,
            },
        );
    }

    /// A new offer/answer round: the leg is kept (new address or codec), started, or ended.
    pub fn renew(&mut self, now: Instant, pid: u64, answer: Option<TalkAnswer>, info: UserInfo) {
        let Some(answer) = answer else {
            self.leave(now, pid);
            return;
        };
        let Some(leg) = self.legs.get_mut(&pid) else {
            self.join(pid, answer, info);
            return;
        };
        let codec = answer.leg_codec();
        leg.remote = answer.remote;
        leg.codec = answer.codec.clone();
        leg.label = answer.label.clone();
        leg.bfcp_from = answer.bfcp_from;
        let (user, had_floor) = (leg.user, leg.floor_user);
        leg.floor_user = answer.bfcp.is_some();
        self.effects.push(TalkEffect::UpdateLeg {
            pid,
            expected: answer.remote,
            codec,
        });
        match (had_floor, answer.bfcp.is_some()) {
            (false, true) => self.floor.add_user(user, info),
            (true, false) => {
                let out = self.floor.remove_user(now, user);
                self.handle(now, out);
                self.effects.push(TalkEffect::Close { user });
            }
            _ => {}
        }
    }

    /// A participant left: its floor is revoked, its requests cancelled, its leg and BFCP
    /// connection closed.
    pub fn leave(&mut self, now: Instant, pid: u64) {
        self.abandon_resume(pid);
        let Some(leg) = self.legs.remove(&pid) else {
            return;
        };
        self.users.remove(&leg.user);
        let out = self.floor.remove_user(now, leg.user);
        self.handle(now, out);
        if self.holder == Some(pid) {
            self.holder = None;
        }
        self.effects.push(TalkEffect::RemoveLeg { pid });
        self.effects.push(TalkEffect::Close { user: leg.user });
    }

    /// Moderation: a muted participant loses the floor and cannot be granted it.
    pub fn set_muted(&mut self, now: Instant, pid: u64, muted: bool) {
        let Some(leg) = self.legs.get(&pid) else {
            return;
        };
        let user = leg.user;
        let out = self.floor.set_muted(now, user, muted);
        self.handle(now, out);
        self.effects.push(TalkEffect::Mute { pid, muted });
    }

    /// A BFCP message from `user`'s connection.
    pub fn on_bfcp(&mut self, now: Instant, user: u16, msg: &Message) {
        if let Some(leg) = self.users.get(&user).and_then(|p| self.legs.get_mut(p)) {
            leg.lost = false;
        }
        if msg.user_id != user && msg.primitive != Primitive::Error {
            // Speaking for another user on one's own connection: the machine answers Error 5.
            metrics::counter!("focus_bfcp_rejected_total", "reason" => "user_mismatch")
                .increment(1);
        }
        let out = self.floor.on_message(now, user, msg);
        if msg.primitive == Primitive::FloorRequest {
            let outcome = request_outcome(&out, user, msg.transaction_id);
            metrics::counter!("focus_floor_requests_total", "outcome" => outcome).increment(1);
        }
        self.handle(now, out);
    }

    /// `user`'s BFCP connection dropped: what it holds is revoked, its requests cancelled.
    pub fn connection_lost(&mut self, now: Instant, user: u16) {
        let Some(leg) = self.users.get(&user).and_then(|p| self.legs.get_mut(p)) else {
            return;
        };
        leg.lost = true;
        let out = self.floor.connection_lost(now, user);
        self.handle(now, out);
    }

    /// RTP liveness: a silent participant (its device is gone) loses the floor.
    pub fn rtp_event(&mut self, now: Instant, pid: u64, event: RtpEvent) {
        let Some(leg) = self.legs.get_mut(&pid) else {
            return;
        };
        match event {
            RtpEvent::Silent => {
                leg.silent = true;
                let user = leg.user;
                let out = self.floor.revoke(now, user, RevokeReason::Silent);
                self.handle(now, out);
            }
            RtpEvent::Resumed => leg.silent = false,
        }
    }

    /// When [`Talk::handle_timeout`] has work (the holder's talk burst runs out).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.floor.poll_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let out = self.floor.handle_timeout(now);
        self.handle(now, out);
    }

    /// The `<media>` conference-info shows for a participant's audio: `sendonly` for the
    /// holder (its audio goes to everyone), `recvonly` for listeners (with their place in the
    /// queue as display text), `inactive` when its device went silent or its floor control
    /// connection dropped.
    pub fn media(&self, pid: u64) -> Option<Media> {
        let leg = self.legs.get(&pid)?;
        let (status, text) = if self.holder == Some(pid) {
            (MediaStatus::SendOnly, Some("floor granted".to_string()))
        } else if leg.silent {
            (MediaStatus::Inactive, Some("no RTP or RTCP".to_string()))
        } else if leg.lost {
            (
                MediaStatus::Inactive,
                Some("floor control connection lost".to_string()),
            )
        } else if let Some(n) = self
            .floor
            .queue(AUDIO_FLOOR)
            .iter()
            .position(|&u| u == leg.user)
        {
            (
                MediaStatus::RecvOnly,
                Some(format!("floor requested, queue position {}", n + 1)),
            )
        } else if self.floor.pending(AUDIO_FLOOR).contains(&leg.user) {
            (
                MediaStatus::RecvOnly,
                Some("floor requested, awaiting a chair".to_string()),
            )
        } else {
            (MediaStatus::RecvOnly, None)
        };
        Some(Media {
            id: "audio".into(),
            display_text: text,
            media_type: Some("audio".into()),
            label: Some(leg.label.clone()),
            src_id: None,
            status: Some(status),
        })
    }

    /// Participants with a leg.
    pub fn participants(&self) -> impl Iterator<Item = u64> + '_ {
        self.legs.keys().copied()
    }

    /// A random free user id: one's own id says nothing about the others' (RFC 8855 carries
    /// it in every message, and a sequential one would name the neighbours).
    fn allocate_user(&mut self) -> u16 {
        for _ in 0..64 {
            let id: u16 = rand::random();
            if id != 0 && !self.users.contains_key(&id) {
                return id;
            }
        }
        // A crowded id space (tens of thousands of users): the first free one.
        (1..=u16::MAX)
            .find(|id| !self.users.contains_key(id))
            .unwrap_or(0)
    }

    /// Turns the machine's outputs into effects, following who holds the floor.
    fn handle(&mut self, now: Instant, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Send { user, message } => {
                    self.effects.push(TalkEffect::Send { user, message })
                }
                Output::Event(FloorEvent::FloorGranted { user, .. }) => {
                    let Some(&pid) = self.users.get(&user) else {
                        continue;
                    };
                    metrics::counter!("focus_floor_grants_total").increment(1);
                    self.holder = Some(pid);
                    self.granted_at = Some(now);
                    self.effects.push(TalkEffect::Holder { pid });
                }
                Output::Event(FloorEvent::FloorReleased { user, .. }) => {
                    self.ended(now, user);
                }
                Output::Event(FloorEvent::FloorRevoked { user, reason, .. }) => {
                    metrics::counter!("focus_floor_revokes_total", "reason" => reason.label())
                        .increment(1);
                    self.ended(now, user);
                }
            }
        }
    }

    /// A talk burst ended (released or revoked).
    fn ended(&mut self, now: Instant, user: u16) {
        if let Some(start) = self.granted_at.take() {
            metrics::histogram!("focus_floor_talk_burst_seconds")
                .record(now.saturating_duration_since(start).as_secs_f64());
        }
        let pid = self.users.get(&user).copied();
        if pid.is_none() || self.holder == pid {
            self.holder = None;
            self.effects.push(TalkEffect::Holder { pid: 0 });
        }
    }
}

/// `m=audio` over plain RTP (RTP/AVP or RTP/AVPF; no SRTP).
fn is_rtp_audio(m: &MediaDescription) -> bool {
    m.media.eq_ignore_ascii_case("audio")
        && (m.proto.eq_ignore_ascii_case("RTP/AVP") || m.proto.eq_ignore_ascii_case("RTP/AVPF"))
}

/// The `outcome` label of a FloorRequest: what its response said.
fn request_outcome(out: &[Output], user: u16, transaction_id: u16) -> &'static str {
    let response = out.iter().find_map(|o| match o {
        Output::Send { user: u, message }
            if *u == user && message.transaction_id == transaction_id =>
        {
            Some(message)
        }
        _ => None,
    });
    let Some(m) = response else {
        return "error";
    };
    if m.primitive != Primitive::FloorRequestStatus {
        return "error";
    }
    let status = m.attributes.iter().find_map(|a| match a {
        Attribute::FloorRequestInformation { attributes, .. } => {
            attributes.iter().find_map(|n| match n {
                Attribute::OverallRequestStatus { attributes, .. } => {
                    attributes.iter().find_map(|s| match s {
                        Attribute::RequestStatus { status, .. } => Some(*status),
                        _ => None,
                    })
                }
                _ => None,
            })
        }
        _ => None,
    });
    match status {
        Some(RequestStatus::Granted) => "granted",
        Some(RequestStatus::Accepted) => "queued",
        Some(RequestStatus::Pending) => "pending",
        Some(RequestStatus::Denied) => "denied",
        _ => "error",
    }
}

#[cfg(test)]
mod tests;
