//! Moderation inside a participant's dialog: INFO or MESSAGE carrying
//! `application/vnd.cpm-focus.control+json` (documented in docs/groups.md):
//! `{"action": "lock" | "unlock" | "end" | "mute" | "unmute", "target": "sip:..."}`.
//! Only roles the group policy allows to moderate may; anyone else gets 403.

use super::identity;
use super::refer;
use super::{Effect, RequestCtx, SessionState};
use crate::conference_info::{DisconnectionMethod, EndpointStatus};
use crate::sip::Status;
use crate::sip::CONTROL;
use crate::sip::{HeaderName, Request};
use serde::Deserialize;
use std::time::Instant;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Control {
    action: String,
    #[serde(default)]
    target: Option<String>,
}

impl SessionState {
    pub(super) fn on_control(&mut self, now: Instant, req: &Request, ctx: RequestCtx, pid: u64) {
        let ct = req
            .headers
            .get(HeaderName::ContentType)
            .map(crate::sip::media_type)
            .unwrap_or("");
        if !ct.eq_ignore_ascii_case(CONTROL) {
            self.reply(
                req,
                ctx,
                Status::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type",
                None,
                &[(HeaderName::Accept, CONTROL)],
            );
            return;
        }
        let Ok(control) = serde_json::from_slice::<Control>(&req.body) else {
            self.reply(
                req,
                ctx,
                Status::BAD_REQUEST,
                "Malformed control request",
                None,
                &[],
            );
            return;
        };
        if let Err(r) = self.authorize(
            identity::Requester::Participant(pid),
            crate::policy::Action::Moderate,
        ) {
            self.refuse(req, ctx, &r);
            return;
        }
        let Some(actor) = self.participants.get(&pid) else {
            self.reply_simple(req, ctx, Status::CALL_TRANSACTION_DOES_NOT_EXIST);
            return;
        };
        let by = actor.identity.clone();
        let actor_real = actor.real.clone();
        metrics::counter!("focus_moderation_actions_total", "action" => action_label(&control.action))
            .increment(1);
        match control.action.as_str() {
            "lock" | "unlock" => {
                self.reply_simple(req, ctx, Status::OK);
                self.set_locked(control.action == "lock");
            }
            "end" => {
                self.reply_simple(req, ctx, Status::OK);
                self.end_conference(now, &format!("conference ended by {by}"));
            }
            "mute" | "unmute" => {
                let mute = control.action == "mute";
                let Some(target) = control.target.as_deref() else {
                    self.reply(
                        req,
                        ctx,
                        Status::BAD_REQUEST,
                        "Control action needs a target",
                        None,
                        &[],
                    );
                    return;
                };
                let aor = crate::sip::Uri::parse(target.trim_matches(['<', '>']))
                    .map(|u| u.aor())
                    .unwrap_or_else(|_| target.to_string());
                let requester = actor_real.clone();
                let found = self
                    .participants
                    .named(|p| refer::names(&p.identity, &p.real, &aor, Some(&requester)))
                    .and_then(|pid| {
                        let p = self.participants.get_mut(&pid)?;
                        p.muted = mute;
                        Some((pid, p.msrp.as_ref().map(|l| l.session_id.clone())))
                    });
                let Some((target_pid, session)) = found else {
                    self.reply(
                        req,
                        ctx,
                        Status::NOT_FOUND,
                        "No such participant",
                        None,
                        &[],
                    );
                    return;
                };
                self.reply_simple(req, ctx, Status::OK);
                let status = if mute {
                    EndpointStatus::MutedViaFocus
                } else {
                    EndpointStatus::Connected
                };
                if self.roster.set_status(target_pid, status) {
                    self.roster_changed();
                }
                // A muted talker loses the floor and is not granted it again.
                self.talk_mute(now, target_pid, mute);
                if let Some(session_id) = session {
                    self.out.effects.push_back(Effect::MsrpMute {
                        session_id,
                        muted: mute,
                    });
                }
            }
            _ => self.reply(
                req,
                ctx,
                Status::BAD_REQUEST,
                "Unknown control action",
                None,
                &[],
            ),
        }
    }
}

impl SessionState {
    /// Locks or unlocks dial-in (moderation and the admin API); subscribers see `locked`.
    pub(super) fn set_locked(&mut self, lock: bool) {
        if self.locked != lock {
            self.locked = lock;
            self.roster.touch();
            self.roster_changed();
        }
    }

    /// BYE to every participant with `reason`, and gives up on everyone being called.
    pub(super) fn end_conference(&mut self, now: Instant, reason: &str) {
        let pids: Vec<u64> = self.participants.keys().copied().collect();
        for p in pids {
            self.hang_up(
                now,
                p,
                DisconnectionMethod::Booted,
                Some((Status::OK, reason)),
            );
        }
        // Calls in progress are CANCELled and shown `disconnected` at once.
        let calling: Vec<u64> = self.dialouts.keys().copied().collect();
        for p in calling {
            self.stop_calling(now, p, reason.to_string());
        }
    }
}

fn action_label(action: &str) -> &'static str {
    match action {
        "lock" => "lock",
        "unlock" => "unlock",
        "end" => "end",
        "mute" => "mute",
        "unmute" => "unmute",
        _ => "unknown",
    }
}
