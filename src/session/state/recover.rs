//! Crash recovery, the session's side: it journals its membership as it changes (open, join,
//! dialog update, leave, close), and a session started again after a crash resumes the
//! participants the journal names.
//!
//! Resuming a participant: the focus re-INVITEs it *inside its existing dialog* (same
//! Call-ID, tags and route set; a CSeq [`CSEQ_GAP`] above the journaled one) with the
//! conference's Contact, Subject, Contribution-ID and Conversation-ID, and an SDP offer with
//! the same `o=` session and m-lines as before, where the chat stream points at the new
//! focus process's MSRP listener. The participant answers as to any re-INVITE: the dialog,
//! the conversation and the roster entry stay what they were; only its MSRP connection is
//! new. A participant whose client dropped the dialog meanwhile answers `481`: the focus then
//! calls it again with a new INVITE (same conversation identifiers). Any other refusal or no
//! answer removes it.

use super::outbox::Pending;
use super::participants::{Joining, Participant};
use super::uri_list;
use super::{Effect, OutgoingSpec, SessionState};
use crate::conference_info::{DisconnectionMethod, EndpointStatus, JoiningMethod};
use crate::config::Role;
use crate::dialog::{Dialog, DialogId};
use crate::policy::Proof;
use crate::recovery::journal::{
    Event as JournalEvent, LiveSession, ParticipantRecord, SessionInfo,
};
use crate::sdp;
use crate::sdp::LocalSdpState;
use crate::session::roster::EndpointEntry;
use crate::session::sdp_policy;
use crate::sip::Status;
use crate::sip::{HeaderName, Method, Response};
use crate::sip::{NameAddr, Uri};
use crate::sip::{ALLOW, ALLOW_EVENTS};
use crate::transport::{Protocol, Target};
use std::time::{Instant, SystemTime};

/// CSeq numbers the focus skips in a resumed dialog: requests it sent after the last
/// journaled CSeq (in-dialog NOTIFYs of a REFER) are not journaled one by one, and the
/// participant must see our next CSeq higher than all of them (RFC 3261 §12.2.1.1).
pub const CSEQ_GAP: u32 = 1000;

fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn role_of(s: &str) -> Role {
    match s {
        "host" => Role::Host,
        "moderator" => Role::Moderator,
        _ => Role::Participant,
    }
}

impl SessionState {
    /// What the journal needs to start this session again.
    fn journal_info(&self, now: Instant) -> SessionInfo {
        let ids = self.ids.clone().unwrap_or_default();
        let subject = ids
            .subject
            .clone()
            .or_else(|| (!self.settings.subject.is_empty()).then(|| self.settings.subject.clone()));
        let mut hosts: Vec<String> = match self.settings.kind {
            crate::session::SessionKind::Predefined => Vec::new(),
            _ => self
                .settings
                .policy
                .members
                .iter()
                .filter(|(_, r)| **r == Role::Host)
                .map(|(a, _)| a.clone())
                .collect(),
        };
        hosts.sort();
        SessionInfo {
            uri: self.settings.conference_uri.clone(),
            kind: self.settings.kind.as_str().to_string(),
            subject,
            contribution_id: ids.contribution_id,
            conversation_id: ids.conversation_id,
            hosts,
            started_ms: millis(self.wall(self.started.unwrap_or(now))),
            participants_total: self.participants_total,
        }
    }

    /// The journal record of a participant and its dialog.
    fn participant_record(&self, pid: u64) -> Option<ParticipantRecord> {
        let p = self.participants.get(&pid)?;
        let d = &p.dialog;
        Some(ParticipantRecord {
            identity: p.identity.clone(),
            display: p.display.clone(),
            real: p.real.clone(),
            role: p.role.as_str().to_string(),
            proof: p.proof.as_str().to_string(),
            hidden: p.hidden,
            dialed_out: p.dialed_out,
            joined_ms: millis(self.wall(p.joined)),
            participants_total: self.participants_total,
            call_id: d.id.call_id.to_string(),
            local_tag: d.id.local_tag.to_string(),
            remote_tag: d.remote_tag.to_string(),
            local_addr: d.local_addr.clone(),
            remote_addr: d.remote_addr.clone(),
            remote_target: d.remote_target.to_string(),
            route_set: d.route_set.clone(),
            local_cseq: d.local_cseq,
            transport: match d.flow.protocol {
                Protocol::Udp => "udp",
                Protocol::Tcp => "tcp",
                Protocol::Tls => "tls",
            }
            .to_string(),
            peer: d.flow.addr.to_string(),
            sdp: p.sdp.last_sent().map(|s| s.to_string()).unwrap_or_default(),
            peer_update: p.peer_update,
        })
    }

    /// Journals a participant that is in (opening the session in the journal first).
    pub(super) fn journal_join(&mut self, now: Instant, pid: u64) {
        if !self.settings.journal {
            return;
        }
        let Some(record) = self.participant_record(pid) else {
            return;
        };
        if !self.journal_open {
            self.journal_open = true;
            let info = self.journal_info(now);
            self.out
                .effects
                .push_back(Effect::Journal(JournalEvent::Open { info }));
        }
        self.out
            .effects
            .push_back(Effect::Journal(JournalEvent::Join {
                pid,
                participant: Box::new(record),
            }));
    }

    /// Journals a participant's dialog as it now is (CSeq, remote target, last SDP).
    pub(super) fn journal_update(&mut self, pid: u64) {
        if !self.journal_open {
            return;
        }
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        let event = JournalEvent::Update {
            pid,
            local_cseq: p.dialog.local_cseq,
            remote_target: p.dialog.remote_target.to_string(),
            sdp: p.sdp.last_sent().map(|s| s.to_string()),
        };
        self.out.effects.push_back(Effect::Journal(event));
    }

    /// Journals a participant that is gone, and the session's end with its last one.
    pub(super) fn journal_leave(&mut self, pid: u64) {
        if !self.journal_open {
            return;
        }
        self.out
            .effects
            .push_back(Effect::Journal(JournalEvent::Leave { pid }));
        if self.participants.is_empty() {
            self.journal_open = false;
            self.out
                .effects
                .push_back(Effect::Journal(JournalEvent::Close));
        }
    }

    /// Resumes a session the journal of a crashed focus names: every participant gets a
    /// re-INVITE in its dialog. Call before any other input.
    pub fn recover(&mut self, now: Instant, session: LiveSession) {
        self.recovered = true;
        if self.ids.is_none() {
            self.ids = Some(uri_list::ConversationIds {
                subject: session.info.subject.clone(),
                contribution_id: session.info.contribution_id.clone(),
                conversation_id: session.info.conversation_id.clone(),
            });
        }
        // Aliases handed out before stay unique.
        for p in session.participants.values() {
            let n = p
                .identity
                .strip_prefix("sip:anonymous-")
                .and_then(|r| r.split('@').next())
                .and_then(|n| n.parse::<u32>().ok());
            if let Some(n) = n {
                self.anonymous_count = self.anonymous_count.max(n);
            }
            // A restart calls remembered members back: never an address only an outsider
            // named (as at its join).
            if self.settings.trust.counts(Proof::from_label(&p.proof)) {
                self.remember_member(&p.real, p.display.clone());
            }
        }
        for p in session.participants.into_values() {
            self.resume(now, p);
        }
        self.flush(now);
    }

    /// Rebuilds a participant's dialog from its record and re-INVITEs it.
    fn resume(&mut self, now: Instant, rec: ParticipantRecord) {
        let (Ok(remote_target), Ok(peer)) = (
            Uri::parse(&rec.remote_target),
            rec.peer.parse::<std::net::SocketAddr>(),
        ) else {
            metrics::counter!("focus_recovered_participants_total", "outcome" => "failed")
                .increment(1);
            return;
        };
        let protocol = match rec.transport.as_str() {
            "tcp" => Protocol::Tcp,
            "tls" => Protocol::Tls,
            _ => Protocol::Udp,
        };
        let dialog = Dialog {
            id: DialogId {
                call_id: rec.call_id.clone().into(),
                local_tag: rec.local_tag.clone().into(),
            },
            remote_tag: rec.remote_tag.clone().into(),
            local_addr: rec.local_addr.clone(),
            remote_addr: rec.remote_addr.clone(),
            remote_target,
            route_set: rec.route_set.clone(),
            local_cseq: rec.local_cseq.saturating_add(CSEQ_GAP),
            // Whatever the participant sent since the journal last saw its CSeq is accepted.
            remote_cseq: 0,
            // The connection died with the old process: a new one is opened to the target.
            flow: Target {
                protocol,
                addr: peer,
                conn: None,
            },
            // The connection died with the old process; the resume's 2xx binds it again.
            binding: crate::dialog::Binding::Host,
        };
        // The offer keeps the dialog's SDP session (o= id, version + 1) and its m-lines.
        let msrp_session = sdp_policy::new_session_id();
        let served = self.msrp_for(peer.ip());
        let last = sdp::parse(rec.sdp.as_bytes()).ok();
        let (mut sdp_state, lines) = match &last {
            Some(l) => match (
                l.origin.session_id.parse::<u64>(),
                l.origin.session_version.parse::<u64>(),
            ) {
                (Ok(id), Ok(v)) => (
                    LocalSdpState::new(id, v.saturating_add(1)),
                    sdp_policy::reoffer(l, served, &msrp_session),
                ),
                _ => (
                    LocalSdpState::random(),
                    sdp_policy::reoffer(l, served, &msrp_session),
                ),
            },
            None => (
                LocalSdpState::random(),
                sdp_policy::offer_lines(served, &msrp_session),
            ),
        };
        // Talk bursts: the old process's RTP port died with it. A fresh port pair (and BFCP
        // user) replaces it in the offer; the leg starts with the answer.
        let pid = self.out.id();
        let mut lines = lines;
        if let Some(l) = &last {
            for (i, line) in self.talk_plan_resume(pid, l, peer.ip()) {
                if let Some(slot) = lines.get_mut(i) {
                    *slot = line;
                }
            }
        }
        let Ok(offer) = sdp_state.offer(lines, &self.answer_ctx(peer.ip())) else {
            self.talk_abandon_resume(pid);
            metrics::counter!("focus_recovered_participants_total", "outcome" => "failed")
                .increment(1);
            return;
        };
        let role = role_of(&rec.role);
        let entity = if rec.hidden {
            rec.identity.clone()
        } else {
            dialog.remote_target.to_string()
        };
        let endpoint = EndpointEntry {
            pid: Some(pid),
            entity,
            status: EndpointStatus::DialingOut,
            joining_method: if rec.dialed_out {
                JoiningMethod::DialedOut
            } else {
                JoiningMethod::DialedIn
            },
            joined_at: self.wall(now),
            disconnection: None,
            departed_at: None,
            call_id: rec.call_id.clone(),
            remote_tag: rec.remote_tag.clone(),
            local_tag: rec.local_tag.clone(),
            hidden: rec.hidden,
            referred_by: None,
            media: Vec::new(),
            unverified: crate::policy::Proof::from_label(&rec.proof)
                == crate::policy::Proof::Claimed,
        };
        let participant = Participant::new(
            Joining {
                dialog,
                sdp: sdp_state,
                identity: rec.identity.clone(),
                display: rec.display.clone(),
                real: rec.real.clone(),
                proof: crate::policy::Proof::from_label(&rec.proof),
                role,
                msrp_session,
                peer_update: rec.peer_update,
                dialed_out: rec.dialed_out,
                hidden: rec.hidden,
            },
            now,
        );
        self.participants
            .admit(pid, participant, &mut self.dialogs, &mut self.out);
        self.roster
            .join(&rec.identity, rec.display.clone(), role.as_str(), endpoint);
        self.roster_changed();
        // Journaled at once: a second crash before the answer still knows the participant.
        self.journal_join(now, pid);
        self.send_resume(pid, &offer.to_bytes());
    }

    /// The re-INVITE that resumes `pid`'s dialog.
    fn send_resume(&mut self, pid: u64, offer: &[u8]) {
        let ids = self.ids.clone().unwrap_or_default();
        let subject = ids
            .subject
            .clone()
            .or_else(|| (!self.settings.subject.is_empty()).then(|| self.settings.subject.clone()));
        let timer = self.timer_request_headers(self.settings.session_timer.expires, None);
        let faces = self.settings.faces.clone();
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        let (uri, mut w) = p.dialog.request(&Method::Invite);
        let cseq = p.dialog.local_cseq;
        let flow = p.dialog.flow;
        w.header(
            HeaderName::Contact,
            faces.for_ip(flow.addr.ip()).contact(flow.protocol),
        );
        w.header(HeaderName::Allow, ALLOW);
        w.header(HeaderName::AllowEvents, ALLOW_EVENTS);
        if let Some(s) = &subject {
            w.header(HeaderName::Subject, s);
        }
        if let Some(c) = &ids.contribution_id {
            w.header(HeaderName::ContributionId, c);
        }
        if let Some(c) = &ids.conversation_id {
            w.header(HeaderName::ConversationId, c);
        }
        for (name, value) in &timer {
            w.header(*name, value);
        }
        let rest = w.finish(Some("application/sdp"), offer);
        let spec = OutgoingSpec {
            method: Method::Invite,
            request_uri: uri,
            rest,
            call_id: p.dialog.id.call_id.clone(),
            destination: p.dialog.destination(),
            invite: Some(p.dialog.invite_basis(cseq)),
        };
        let token = self.out.id();
        self.out
            .pending
            .insert(token, Pending::Resume { pid, cseq });
        self.out.effects.push_back(Effect::Send {
            token,
            request: Box::new(spec),
        });
    }

    /// The final answer to a resuming re-INVITE.
    pub(super) fn on_resume_response(
        &mut self,
        now: Instant,
        token: u64,
        pid: u64,
        cseq: u32,
        resp: &Response,
    ) {
        if !self.participants.contains_key(&pid) {
            return;
        }
        match Status::new(resp.status) {
            s if s.is_success() => {
                let Some(p) = self.participants.get_mut(&pid) else {
                    return;
                };
                p.dialog.refresh_target_from(&resp.headers);
                let msrp_session = p.msrp_session.clone();
                let (dialed_out, hidden) = (p.dialed_out, p.hidden);
                // The new MSRP leg is in the switch before the ACK leaves: the participant may
                // connect and bind as soon as it sees the ACK.
                let answer = sdp::parse(&resp.body).ok();
                if let Some(leg) = answer
                    .as_ref()
                    .and_then(|a| sdp_policy::leg_from_answer(a, &msrp_session))
                {
                    self.install_msrp(now, pid, leg);
                }
                // The RTP leg too: the participant may send as soon as it sees the ACK.
                match &answer {
                    Some(a) => self.talk_finish_resume(now, pid, a),
                    None => self.talk_abandon_resume(pid),
                }
                self.answered.retain(|_, p| *p != pid);
                self.answered.insert(token, pid);
                self.send_ack_cseq(pid, cseq);
                let expires = self.settings.session_timer.expires;
                self.apply_uac_timer(now, pid, expires, resp);
                metrics::counter!("focus_recovered_participants_total", "outcome" => "resumed")
                    .increment(1);
                self.charge_join(now, pid, dialed_out, hidden);
                if self.roster.set_status(pid, EndpointStatus::Connected) {
                    self.roster_changed_at(now);
                }
                self.journal_update(pid);
                if answer.is_none() {
                    self.hang_up(
                        now,
                        pid,
                        DisconnectionMethod::Failed,
                        Some((Status::NOT_ACCEPTABLE_HERE, "no valid SDP answer")),
                    );
                }
            }
            Status::CALL_TRANSACTION_DOES_NOT_EXIST => self.redial(now, pid),
            status => {
                metrics::counter!("focus_recovered_participants_total", "outcome" => "failed")
                    .increment(1);
                let reason = format!("not resumed after a focus restart ({status})");
                self.hang_up(
                    now,
                    pid,
                    DisconnectionMethod::Failed,
                    Some((status, &reason)),
                );
            }
        }
    }

    /// The resuming re-INVITE got no answer at all: the participant is unreachable.
    pub(super) fn resume_failed(&mut self, now: Instant, pid: u64) {
        if !self.participants.contains_key(&pid) {
            return;
        }
        metrics::counter!("focus_recovered_participants_total", "outcome" => "failed").increment(1);
        self.leave(
            now,
            pid,
            DisconnectionMethod::Failed,
            Some("not resumed after a focus restart (no answer)".into()),
        );
    }

    /// The participant's client no longer has the dialog (481): call it again, at the
    /// Contact it had, with a new INVITE from the conference (same conversation identifiers).
    /// An outsider (an identity that does not count) is not called: the focus would make its
    /// claim a called identity, which counts (it leaves, `failed`).
    fn redial(&mut self, now: Instant, pid: u64) {
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        if !self.settings.trust.counts(p.proof) {
            metrics::counter!("focus_recovered_participants_total", "outcome" => "failed")
                .increment(1);
            tracing::info!(conference = %self.settings.conference_uri, call_id = %p.dialog.id.call_id,
                "an unverified participant lost its dialog in a focus restart; not called again");
            self.leave(
                now,
                pid,
                DisconnectionMethod::Failed,
                Some("not resumed after a focus restart (unverified identity)".into()),
            );
            return;
        }
        self.talk_abandon_resume(pid);
        let Some(p) = self.withdraw(pid) else {
            return;
        };
        metrics::counter!("focus_recovered_participants_total", "outcome" => "redialed")
            .increment(1);
        self.answered.retain(|_, x| *x != pid);
        let contact = NameAddr {
            display: None,
            uri: p.dialog.remote_target.clone(),
            params: Vec::new(),
        };
        let Ok(aor) = Uri::parse(&p.real) else {
            return;
        };
        let who = NameAddr {
            display: p.display.as_deref().filter(|_| !p.hidden).map(Into::into),
            uri: aor,
            params: Vec::new(),
        };
        self.dial_out_full(now, &contact, Some(&who), None, None, p.hidden);
    }
}
