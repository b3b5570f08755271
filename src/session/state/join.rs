//! A dial-in INVITE: admission (policy, seats, shares, session timer, URI list), the
//! offer/answer round, and the participant it makes.

use super::identity;
use super::participants::{Joining, Participant};
use super::{uri_list, Effect, RequestCtx, SessionState};
use crate::conference_info::{EndpointStatus, JoiningMethod};
use crate::dialog::Dialog;
use crate::overload::ShareRefusal;
use crate::policy::{Arrival, GroupPolicy, Identity, ANONYMOUS_DOMAIN};
use crate::sdp::{self, AnswerContext, LocalSdpState};
use crate::session::roster::EndpointEntry;
use crate::session::sdp_policy::{self, FocusPolicy, MsrpLeg};
use crate::sip::new_tag;
use crate::sip::{HeaderName, MessageWriter, Request};
use crate::sip::{ALLOW, ALLOW_EVENTS};
use bytes::Bytes;
use std::net::IpAddr;
use std::time::Instant;

/// The outcome of one offer/answer round.
pub(super) struct Negotiated {
    pub(super) body: Bytes,
    /// The body is our offer (the request had none).
    pub(super) is_offer: bool,
    pub(super) accepted: usize,
    pub(super) leg: Option<MsrpLeg>,
    /// The talk-burst part of the answer (audio leg, BFCP).
    pub(super) talk: Option<crate::push_to_talk::talk_burst::TalkAnswer>,
}

impl SessionState {
    /// Whether `source` already has its share of seats in this session (the trusted core,
    /// fronting many users, has no such limit).
    pub(super) fn seats_taken_by(&self, source: IpAddr) -> bool {
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
    pub(super) fn take_rtp_share(
        &self,
        source: IpAddr,
        talk: Option<&crate::push_to_talk::talk_burst::TalkAnswer>,
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
    pub(super) fn public_identity(&mut self, who: &Identity) -> (String, Option<String>) {
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

    /// The SDP context toward a peer at `peer`: `o=`/`c=` in its family.
    pub(super) fn answer_ctx(&self, peer: IpAddr) -> AnswerContext {
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
    pub(super) fn negotiate(
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
            let lines = sdp_policy::offer_lines(msrp, session_id);
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

    pub(super) fn on_join(&mut self, now: Instant, req: &Request, ctx: RequestCtx) {
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
        let msrp_session = sdp_policy::new_session_id();
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
        let pid = self.out.id();
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
        let mut participant = Participant::new(
            Joining {
                dialog,
                sdp: sdp_state,
                identity: identity.clone(),
                display: display.clone(),
                real: who.aor.clone(),
                proof: who.proof,
                role,
                msrp_session,
                peer_update: req.headers.has_token(HeaderName::Allow, "UPDATE"),
                dialed_out: false,
                hidden: who.anonymous,
            },
            now,
        );
        participant.offer_pending = offer_pending;
        participant.awaiting_ack = Some(ctx.txn);
        participant.timer = timer
            .duty()
            .map(|(i, d)| crate::session_timer::SessionTimer::new(now, i, d));
        participant.source = Some(source);
        participant.rtp_share = rtp_share;
        self.participants
            .admit(pid, participant, &mut self.dialogs, &mut self.out);
        self.out.effects.push_back(Effect::AdmitFlow(ctx.source));
        // The MSRP leg is in the switch before the 200 leaves: a participant may connect and
        // bind as soon as it reads the answer.
        if let Some(leg) = n.leg {
            self.install_msrp(now, pid, leg);
        }
        // With a delayed offer the leg comes with the answer in the ACK, and the participant
        // may bind right after sending it: the switch holds such a bind until the leg is in.
        let offered_msrp = self.msrp_for(ctx.source.addr.ip()).is_some() && offer_pending;
        if let (true, Some(p)) = (offered_msrp, self.participants.get(&pid)) {
            self.out.effects.push_back(Effect::MsrpExpect {
                session_id: p.msrp_session.clone(),
                until: now + self.settings.media_bind_timeout,
            });
        }
        // The RTP leg too: the participant may send as soon as it reads the answer.
        self.talk_join(now, pid, n.talk);
        self.respond(ctx, 200, bytes, Some(id));
        self.roster
            .join(&identity, display, role.as_str(), endpoint);
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
    pub(super) fn remember_member(&mut self, address: &str, display: Option<String>) {
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
}

/// True when the request's Contact carries the `isfocus` feature parameter.
fn contact_is_focus(req: &Request) -> bool {
    req.headers
        .values(HeaderName::Contact)
        .filter_map(|c| crate::sip::NameAddr::parse(c).ok())
        .any(|a| a.param("isfocus").is_some() || a.uri.param("isfocus").is_some())
}
