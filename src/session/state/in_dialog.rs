//! A participant's dialog after the join: its in-dialog requests (re-INVITE, UPDATE, BYE,
//! ...), its ACKs, and the MSRP leg each offer/answer round installs or drops.

use super::binding::Breach;
use super::dialogs::Owner;
use super::{Effect, RequestCtx, SessionState};
use crate::conference_info::DisconnectionMethod;
use crate::media::msrp::switch::MediaEvent;
use crate::overload::ShareRefusal;
use crate::policy::GroupPolicy;
use crate::sdp;
use crate::session::sdp_policy::{self, MsrpLeg};
use crate::sip::ALLOW;
use crate::sip::{HeaderName, MessageWriter, Method, Request};
use crate::transport::Target;
use std::time::Instant;

impl SessionState {
    pub(super) fn on_participant_request(
        &mut self,
        now: Instant,
        req: &Request,
        ctx: RequestCtx,
        pid: u64,
    ) {
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
    pub(super) fn on_offer_in_dialog(
        &mut self,
        now: Instant,
        req: &Request,
        ctx: RequestCtx,
        pid: u64,
    ) {
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
    pub(super) fn install_msrp(&mut self, now: Instant, pid: u64, leg: MsrpLeg) {
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
        self.out.effects.push_back(Effect::MsrpAdd {
            pid,
            leg,
            display,
            identity,
            real,
            charged,
        });
        // A new leg of a muted participant (re-INVITE) stays muted.
        if muted {
            self.out.effects.push_back(Effect::MsrpMute {
                session_id,
                muted: true,
            });
        }
    }

    /// Removes a participant's MSRP leg (if any).
    pub(super) fn drop_msrp(&mut self, pid: u64) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        p.media_deadline = None;
        if let Some(leg) = p.msrp.take() {
            self.out.effects.push_back(Effect::MsrpRemove {
                session_id: leg.session_id,
            });
        } else if p.offer_pending {
            // Gone before answering our offer: nobody may wait for its leg any more.
            self.out.effects.push_back(Effect::MsrpRemove {
                session_id: p.msrp_session.clone(),
            });
        }
    }

    /// A new offer/answer round changed (or kept) the MSRP leg.
    pub(super) fn update_msrp(&mut self, now: Instant, pid: u64, leg: Option<MsrpLeg>) {
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
        let Some(owner @ Owner::Participant(pid)) = self.dialogs.owner(tag) else {
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
                let leg = sdp_policy::leg_from_answer(&answer, &p.msrp_session);
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
            self.withdraw(pid);
            self.flush(now);
        }
    }
}
