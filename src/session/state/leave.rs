//! A participant leaving (BYE from it or from the focus), and what every roster change
//! decides: the session's conference-state, whether it is active, and its charging.

use super::outbox::Pending;
use super::participants::Participant;
use super::{Effect, OutgoingSpec, SessionState};
use crate::conference_info::DisconnectionMethod;
use crate::session::charge::ChargeEvent;
use crate::sip::Status;
use crate::sip::{HeaderName, Method};
use std::time::{Duration, Instant};

impl SessionState {
    /// Sends BYE to a participant and removes it.
    pub(super) fn hang_up(
        &mut self,
        now: Instant,
        pid: u64,
        method: DisconnectionMethod,
        reason: Option<(Status, &str)>,
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
        let token = self.out.id();
        self.out.pending.insert(token, Pending::Bye);
        self.out.effects.push_back(Effect::Send {
            token,
            request: Box::new(spec),
        });
        self.leave(now, pid, method, reason.map(|(_, r)| r.to_string()));
    }

    /// Takes a participant out without a departure (no `disconnected` entry, no charging):
    /// its join never completed (the 2xx could not be sent), or it is called again at once
    /// (a redial after a restart). Out of the dialogs, the roster and the journal.
    pub(super) fn withdraw(&mut self, pid: u64) -> Option<Participant> {
        let p = self
            .participants
            .withdraw(pid, &mut self.dialogs, &mut self.out)?;
        self.roster.withdraw(pid);
        self.roster_changed();
        self.journal_leave(pid);
        Some(p)
    }

    /// Removes a participant from the session and the roster.
    pub(super) fn leave(
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
        let Some(p) = self
            .participants
            .withdraw(pid, &mut self.dialogs, &mut self.out)
        else {
            return;
        };
        if let Some(txn) = p.awaiting_ack {
            self.invites.remove(&txn);
        }
        let wall = self.wall(now);
        self.roster.depart(pid, method, reason, now, wall);
        self.out
            .effects
            .push_back(Effect::Charge(ChargeEvent::Leave {
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
    pub(super) fn roster_changed(&mut self) {
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
    pub(super) fn roster_changed_at(&mut self, now: Instant) {
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
                self.out
                    .effects
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
                self.out
                    .effects
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
    pub(super) fn charge_join(
        &mut self,
        now: Instant,
        pid: u64,
        dialed_out: bool,
        anonymous: bool,
    ) {
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
        self.out.effects.push_back(Effect::Charge(event));
    }
}
