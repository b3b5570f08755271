//! Calling participants in (RFC 4579 §5.2): for a REFER, a URI list, a restart's call-back
//! or a redial. The focus sends the INVITE, rings until the dial timeout (then CANCELs),
//! and on a 2xx ACKs and admits the participant; the referral, if any, is told each step.

use super::outbox::Pending;
use super::participants::{Joining, Participant};
use super::{Effect, OutgoingSpec, SessionState};
use crate::conference_info::{DisconnectionMethod, EndpointStatus, JoiningMethod};
use crate::config::Role;
use crate::dialog::Destination;
use crate::dialog::Dialog;
use crate::dialog::InviteBasis;
use crate::policy::{Arrival, Identity};
use crate::sdp;
use crate::sdp::LocalSdpState;
use crate::session::roster::EndpointEntry;
use crate::session::sdp_policy;
use crate::sip::new_tag;
use crate::sip::{HeaderName, MessageWriter, Method, Response};
use crate::sip::{NameAddr, Uri};
use crate::sip::{Refuse, Status};
use crate::sip::{ALLOW, ALLOW_EVENTS};
use crate::transport::{Protocol, Target};
use std::time::{Duration, Instant};

/// A participant the focus is calling.
pub(in crate::session) struct DialOut {
    pub call_id: Box<str>,
    pub local_tag: String,
    /// From (the conference, without tag) and To (the target) header values.
    pub from: String,
    pub to: String,
    pub cseq: u32,
    pub sdp: LocalSdpState,
    pub msrp_session: String,
    pub referral: Option<u64>,
    pub identity: String,
    pub display: Option<String>,
    pub real: String,
    pub role: Role,
    /// When to give up ringing (CANCEL), then when to give up waiting for the CANCEL's effect.
    pub deadline: Instant,
    pub cancelled: bool,
    pub alerting: bool,
    /// Shown only as an anonymous alias (bcc or anonymized invitee).
    pub hidden: bool,
}

impl SessionState {
    /// Calls `target` into the session (RFC 4579 §5.2).
    pub(super) fn dial_out(&mut self, now: Instant, target: &NameAddr, rid: Option<u64>, by: &str) {
        self.dial_out_as(now, target, rid, by, false);
    }

    /// Calls `target`; a `hidden` invitee (bcc or anonymized in a URI list) is shown to the
    /// others only as an anonymous alias.
    pub(super) fn dial_out_as(
        &mut self,
        now: Instant,
        target: &NameAddr,
        rid: Option<u64>,
        by: &str,
        hidden: bool,
    ) {
        self.dial_out_full(now, target, None, rid, Some(by), hidden);
    }

    /// Calls `target` (Request-URI and next hop). `who` names the participant when that is
    /// not the target itself (a participant called back at its Contact after a restart);
    /// `by` is the referrer, if any (`Referred-By`, `referred` in conference-info).
    pub(super) fn dial_out_full(
        &mut self,
        now: Instant,
        target: &NameAddr,
        who: Option<&NameAddr>,
        rid: Option<u64>,
        by: Option<&str>,
        hidden: bool,
    ) {
        if self.settings.amplification.names_focus(&target.uri) {
            // Requests are checked before they get here; this keeps any other path (a
            // restarted session's remembered members) from making the focus call itself.
            let refusal = crate::policy::Amplification::self_target();
            refusal.count();
            self.referral_notify(rid, refusal.status, refusal.status.reason(), true);
            return;
        }
        let named = who.unwrap_or(target);
        let aor = named.uri.aor();
        // An outsider who joined claiming `aor` is not it: the real one is still called.
        if self.entitled_participant(&aor).is_some()
            || self.dialouts.values().any(|d| d.real == aor)
        {
            // Already in (or being called): nothing to do, and that is a success.
            self.referral_notify(rid, Status::OK, "OK", true);
            return;
        }
        let who = Identity::called(aor.clone(), named.display.as_deref().map(str::to_string));
        let role = match self.settings.policy.admit(
            &who,
            Arrival::Invited,
            self.roster.present_endpoints(),
            self.locked,
        ) {
            Ok(r) => r,
            Err(refusal) => {
                refusal.count();
                let reason = refusal.status.reason();
                self.referral_notify(rid, refusal.status, reason, true);
                return;
            }
        };
        let pid = self.out.id();
        let local_tag = new_tag();
        let call_id: Box<str> = format!("{}@{}", new_tag(), self.settings.warn_agent).into();
        let msrp_session = sdp_policy::new_session_id();
        let mut sdp_state = LocalSdpState::random();
        // The target's family when it names an address (`sip:bob@[2001:db8::1]`); a name is
        // offered the primary family's addresses.
        let family = target
            .uri
            .host
            .as_ref()
            .and_then(crate::sip::Host::ip)
            .unwrap_or_else(|| self.settings.faces.primary().sdp_address);
        let served = self.msrp_for(family);
        let body = match sdp_state.offer(
            sdp_policy::offer_lines(served, &msrp_session),
            &self.answer_ctx(family),
        ) {
            Ok(sdp) => sdp.to_bytes(),
            Err(_) => {
                self.referral_notify(
                    rid,
                    Status::SERVER_INTERNAL_ERROR,
                    "Server Internal Error",
                    true,
                );
                return;
            }
        };
        let from = match self.settings.display_name.as_str() {
            "" => format!("<{}>", self.settings.conference_uri),
            d => format!(
                "\"{}\" <{}>",
                d.replace('"', "'"),
                self.settings.conference_uri
            ),
        };
        let to = format!("<{}>", request_target(&named.uri));
        let transport = target.uri.param("transport").flatten();
        let is = |name: &str| transport.is_some_and(|t| t.eq_ignore_ascii_case(name));
        let protocol = if target.uri.scheme == crate::sip::Scheme::Sips || is("tls") {
            Protocol::Tls
        } else if is("tcp") {
            Protocol::Tcp
        } else {
            Protocol::Udp
        };
        let contact = self
            .settings
            .faces
            .for_ip(family)
            .contact(protocol)
            .to_string();
        let cseq = 1;
        let mut w = MessageWriter::headers_only();
        w.header_fmt(HeaderName::From, format_args!("{from};tag={local_tag}"));
        w.header(HeaderName::To, &to);
        w.header(HeaderName::CallId, &call_id);
        w.header_fmt(HeaderName::CSeq, format_args!("{cseq} INVITE"));
        w.header(HeaderName::MaxForwards, "70");
        w.header(HeaderName::Contact, &contact);
        w.header(HeaderName::Allow, ALLOW);
        w.header(HeaderName::AllowEvents, ALLOW_EVENTS);
        // Invitees learn what the conversation is (RCS/CPM: Subject, Contribution-ID,
        // Conversation-ID copied unchanged).
        let ids = self.ids.clone().unwrap_or_default();
        let subject = ids
            .subject
            .clone()
            .or_else(|| (!self.settings.subject.is_empty()).then(|| self.settings.subject.clone()));
        if let Some(s) = subject {
            w.header(HeaderName::Subject, &s);
        }
        if let Some(c) = &ids.contribution_id {
            w.header(HeaderName::ContributionId, c);
        }
        if let Some(c) = &ids.conversation_id {
            w.header(HeaderName::ConversationId, c);
        }
        if let Some(by) = by {
            w.header_fmt(HeaderName::ReferredBy, format_args!("<{by}>"));
        }
        let expires = self.settings.session_timer.expires;
        for (name, value) in self.timer_request_headers(expires, None) {
            w.header(name, &value);
        }
        let rest = w.finish(Some("application/sdp"), &body);
        let token = self.out.id();
        self.out.pending.insert(token, Pending::Invite { pid });
        self.out.effects.push_back(Effect::Send {
            token,
            request: Box::new(OutgoingSpec {
                method: Method::Invite,
                request_uri: request_target(&target.uri),
                rest,
                call_id: call_id.clone(),
                destination: Destination {
                    next_hop: target.uri.clone(),
                    flow: None,
                },
                invite: Some(InviteBasis {
                    from: format!("{from};tag={local_tag}"),
                    to: to.clone(),
                    cseq,
                    routes: Vec::new(),
                }),
            }),
        });
        self.remember_member(&request_target(&target.uri), who.display.clone());
        let (identity, display) = if hidden {
            self.public_identity(&Identity {
                anonymous: true,
                ..who.clone()
            })
        } else {
            (aor.clone(), who.display.clone())
        };
        self.roster.join(
            &identity,
            display.clone(),
            role.as_str(),
            EndpointEntry {
                pid: Some(pid),
                entity: if hidden {
                    identity.clone()
                } else {
                    request_target(&target.uri)
                },
                status: EndpointStatus::DialingOut,
                joining_method: JoiningMethod::DialedOut,
                joined_at: self.wall(now),
                disconnection: None,
                departed_at: None,
                call_id: call_id.to_string(),
                remote_tag: String::new(),
                local_tag: local_tag.clone(),
                hidden,
                referred_by: by.map(str::to_string),
                media: Vec::new(),
                unverified: false,
            },
        );
        self.dialouts.insert(
            pid,
            DialOut {
                call_id,
                local_tag,
                from,
                to,
                cseq,
                sdp: sdp_state,
                msrp_session,
                referral: rid,
                identity,
                display,
                real: aor,
                role,
                deadline: now + self.settings.dial_timeout,
                cancelled: false,
                alerting: false,
                hidden,
            },
        );
        metrics::counter!("focus_dialouts_total", "outcome" => "started").increment(1);
        self.roster_changed();
    }

    /// A response to our INVITE toward a dialed-out participant.
    pub(super) fn on_dial_response(&mut self, now: Instant, token: u64, pid: u64, resp: &Response) {
        let status = Status::new(resp.status);
        match status {
            s if s.is_provisional() => {
                if status == Status::TRYING {
                    return;
                }
                let Some(d) = self.dialouts.get_mut(&pid) else {
                    return;
                };
                if !d.alerting {
                    d.alerting = true;
                    let rid = d.referral;
                    if self.roster.set_status(pid, EndpointStatus::Alerting) {
                        self.roster_changed();
                    }
                    let reason = resp.reason.to_string();
                    self.referral_notify(rid, status, &reason, false);
                }
            }
            s if s.is_success() => {
                self.out.pending.remove(&token);
                let Some(d) = self.dialouts.remove(&pid) else {
                    return;
                };
                let flow = Target {
                    protocol: Protocol::Udp,
                    addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
                    conn: None,
                };
                let dialog = match Dialog::uac(
                    &d.call_id,
                    &d.local_tag,
                    d.from.clone(),
                    d.to.clone(),
                    d.cseq,
                    resp,
                    flow,
                ) {
                    Ok(dialog) => dialog,
                    Err(_) => {
                        // Without a Contact we cannot even ACK in its dialog: give up.
                        self.dialouts.insert(pid, d);
                        self.dial_failed(
                            now,
                            pid,
                            Status::BAD_GATEWAY,
                            DisconnectionMethod::Failed,
                        );
                        return;
                    }
                };
                let rid = d.referral;
                // A bcc or anonymized invitee is shown by an alias, like a participant that
                // asked for privacy.
                let hidden = d.identity != d.real;
                let participant = Participant::new(
                    Joining {
                        dialog,
                        sdp: d.sdp,
                        identity: d.identity,
                        display: d.display,
                        real: d.real,
                        proof: crate::policy::Proof::Called,
                        role: d.role,
                        msrp_session: d.msrp_session.clone(),
                        peer_update: resp.headers.has_token(HeaderName::Allow, "UPDATE"),
                        dialed_out: true,
                        hidden: d.hidden,
                    },
                    now,
                );
                self.participants
                    .admit(pid, participant, &mut self.dialogs, &mut self.out);
                if d.cancelled {
                    // A 2xx that crossed our CANCEL (ring timeout, removal, end): the dialog
                    // exists, so ACK it, then end it at once (RFC 3261 §15).
                    self.answered.insert(token, pid);
                    self.send_ack(pid);
                    metrics::counter!("focus_dialouts_total", "outcome" => "failed").increment(1);
                    self.hang_up(
                        now,
                        pid,
                        DisconnectionMethod::Failed,
                        Some((Status::REQUEST_TERMINATED, "call cancelled")),
                    );
                    self.referral_notify(
                        rid,
                        Status::REQUEST_TERMINATED,
                        "Request Terminated",
                        true,
                    );
                    self.fail_parked(now, pid);
                    return;
                }
                // The 2xx carries the answer to our offer. Its MSRP leg is in the switch
                // before the ACK leaves: the participant may connect and bind as soon as it
                // sees the ACK.
                let answer = sdp::parse(&resp.body).ok();
                if let Some(leg) = answer
                    .as_ref()
                    .and_then(|a| sdp_policy::leg_from_answer(a, &d.msrp_session))
                {
                    self.install_msrp(now, pid, leg);
                }
                self.answered.insert(token, pid);
                self.send_ack(pid);
                metrics::counter!("focus_dialouts_total", "outcome" => "answered").increment(1);
                let expires = self.settings.session_timer.expires;
                self.apply_uac_timer(now, pid, expires, resp);
                self.charge_join(now, pid, true, hidden);
                if self.roster.set_status(pid, EndpointStatus::Connected) {
                    self.roster_changed_at(now);
                }
                self.journal_join(now, pid);
                // A broken answer ends the call.
                if answer.is_none() {
                    self.hang_up(
                        now,
                        pid,
                        DisconnectionMethod::Failed,
                        Some((Status::NOT_ACCEPTABLE_HERE, "no valid SDP answer")),
                    );
                }
                self.referral_notify(rid, Status::OK, "OK", true);
                // Group messages accepted while it was being called go now (after the ACK),
                // or fail with the call.
                self.release_parked(now, pid);
            }
            _ => {
                self.out.pending.remove(&token);
                let method = match status {
                    Status::BUSY_HERE | Status::BUSY_EVERYWHERE | Status::DECLINE => {
                        DisconnectionMethod::Busy
                    }
                    _ => DisconnectionMethod::Failed,
                };
                self.dial_failed(now, pid, status, method);
            }
        }
    }

    /// A dial-out ended without a session.
    pub(super) fn dial_failed(
        &mut self,
        now: Instant,
        pid: u64,
        status: Status,
        method: DisconnectionMethod,
    ) {
        let Some(d) = self.dialouts.remove(&pid) else {
            return;
        };
        self.fail_parked(now, pid);
        let outcome = match method {
            DisconnectionMethod::Busy => "busy",
            _ => "failed",
        };
        metrics::counter!("focus_dialouts_total", "outcome" => outcome).increment(1);
        let wall = self.wall(now);
        let reason = status.reason();
        self.roster
            .depart(pid, method, Some(format!("{status} {reason}")), now, wall);
        self.roster_changed();
        self.referral_notify(d.referral, status, reason, true);
    }

    /// Sends (again) the ACK for the 2xx of the INVITE that brought `pid` in.
    pub(super) fn send_ack(&mut self, pid: u64) {
        let Some(cseq) = self.participants.get(&pid).map(|p| p.dialog.local_cseq) else {
            return;
        };
        self.send_ack_cseq(pid, cseq);
    }

    /// Sends the ACK for the 2xx of our INVITE with CSeq `cseq` in `pid`'s dialog.
    pub(super) fn send_ack_cseq(&mut self, pid: u64, cseq: u32) {
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        let (uri, w) = p.dialog.ack(cseq);
        let spec = OutgoingSpec {
            method: Method::Ack,
            request_uri: uri,
            rest: w.finish_empty(),
            call_id: p.dialog.id.call_id.clone(),
            destination: p.dialog.destination(),
            invite: None,
        };
        let token = self.out.id();
        self.out.effects.push_back(Effect::Send {
            token,
            request: Box::new(spec),
        });
    }

    /// Ring timeouts: CANCEL what rang too long; give up on what the CANCEL did not end.
    pub(super) fn dial_timeouts(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .dialouts
            .iter()
            .filter(|(_, d)| d.deadline <= now)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in due {
            let Some(d) = self.dialouts.get_mut(&pid) else {
                continue;
            };
            if d.cancelled {
                // No final response came after our CANCEL: stop waiting.
                self.out
                    .pending
                    .retain(|_, p| !matches!(p, Pending::Invite { pid: x } if *x == pid));
                self.dial_failed(
                    now,
                    pid,
                    Status::REQUEST_TIMEOUT,
                    DisconnectionMethod::Failed,
                );
            } else {
                self.cancel_call(now, pid);
            }
        }
    }

    /// CANCELs our INVITE to `pid` (once).
    pub(super) fn cancel_call(&mut self, now: Instant, pid: u64) {
        let Some(d) = self.dialouts.get_mut(&pid) else {
            return;
        };
        if d.cancelled {
            return;
        }
        d.cancelled = true;
        // The INVITE transaction ends within 64·T1 of the CANCEL; wait that long at most.
        d.deadline = now + Duration::from_secs(32);
        let (call_id, cseq) = (d.call_id.clone(), d.cseq);
        self.out
            .effects
            .push_back(Effect::CancelInvite { call_id, cseq });
    }

    /// Stops calling `pid` because someone decided so (removal, end of the conference): the
    /// call is CANCELled and conference-info shows the endpoint `disconnected` (`failed`,
    /// with `reason`) at once, however long the callee takes to end its side. A 2xx that
    /// crosses the CANCEL is still ACKed and hung up.
    pub(super) fn stop_calling(&mut self, now: Instant, pid: u64, reason: String) {
        if !self.dialouts.contains_key(&pid) {
            return;
        }
        self.cancel_call(now, pid);
        let wall = self.wall(now);
        if self
            .roster
            .depart(pid, DisconnectionMethod::Failed, Some(reason), now, wall)
        {
            self.roster_changed();
        }
    }
}

/// The URI to call: the Refer-To URI without the REFER-only `method` parameter and without
/// headers.
pub(super) fn request_target(uri: &Uri) -> String {
    let text = uri.as_str();
    let base = text.split('?').next().unwrap_or(text);
    base.split(';')
        .filter(|p| {
            !p.trim_start()
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("method="))
        })
        .collect::<Vec<_>>()
        .join(";")
}
