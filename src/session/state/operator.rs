//! The operator's hand on a session: commands from the admin API (describe, end, remove,
//! lock, unlock) and new settings from a configuration reload. They run through the same
//! state as SIP control: the operator acts with a host's rights in every session, decided
//! by the group policy like any moderator's request, and its actions end in the same BYEs,
//! NOTIFYs and charging records.

use super::{SessionSettings, SessionState};
use crate::conference_info::DisconnectionMethod;
use crate::config::Role;
use crate::sip::Status;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// What the admin API asks of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// The session's summary, with the roster when `roster` is set.
    Describe { roster: bool },
    /// BYE to every participant, a final NOTIFY to every subscriber.
    End,
    /// BYE to one participant, named by address of record (or anonymous alias).
    Remove { target: String },
    /// Lock (`true`) or unlock dial-in.
    Lock(bool),
}

/// Why a session refused an admin command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminRefusal {
    #[error("no such participant")]
    NoParticipant,
    #[error("{0}")]
    Policy(String),
}

/// A session as the admin API shows it (the JSON schema is `config/admin-openapi.yaml`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SessionView {
    /// The conference URI.
    pub uri: String,
    /// `predefined`, `adhoc` or `restarted`.
    pub kind: &'static str,
    pub participants: usize,
    pub subscriptions: usize,
    /// Participants being called (REFER, URI list).
    pub dialing: usize,
    /// When the session actor started (RFC 3339).
    pub created: String,
    /// When the first participant of the current activity joined.
    pub active_since: Option<String>,
    pub locked: bool,
    /// The group was removed from the configuration: no new joins, ends when empty.
    pub retiring: bool,
    /// The participant holding the floor (talk bursts), when floor control runs.
    pub floor_holder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roster: Option<Vec<ParticipantView>>,
}

/// One participant in [`SessionView::roster`].
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ParticipantView {
    /// The real address of record (the operator sees through anonymity).
    pub uri: String,
    /// What the others see instead, when the participant is anonymous.
    pub alias: Option<String>,
    pub display_name: Option<String>,
    /// `host`, `moderator` or `participant`.
    pub role: &'static str,
    /// How the focus knows `uri` (`asserted`, `authenticated`, `trusted-from`, `called`,
    /// or `claimed`: nobody vouched for it).
    pub identity: &'static str,
    /// The RFC 4575 endpoint status (`connected`, `muted-via-focus`...).
    pub status: &'static str,
    /// `dialed-in` or `dialed-out`.
    pub joining_method: &'static str,
    pub joined: String,
    /// Media the focus serves this participant (`msrp`), empty for signalling only.
    pub media: Vec<&'static str>,
    /// The participant's dialog, to find it in logs and traces.
    pub call_id: String,
}

/// New settings for a live session after a configuration reload.
#[derive(Debug, Clone)]
pub enum Reconfigure {
    /// The session's pre-defined group, as configured now.
    Group(Arc<SessionSettings>),
    /// The session is not a configured group: an ad-hoc session takes the provider's new
    /// policy and limits from this template; a pre-defined group's session (its group was
    /// removed) retires: no new joins, and it ends when empty.
    Other(Arc<SessionSettings>),
}

/// Who the operator is in SIP-visible texts (BYE `Reason`); the admin log names the person.
const OPERATOR: &str = "the operator";

impl SessionState {
    /// Runs an admin command; the answer is the session as it is afterwards.
    pub fn on_admin(
        &mut self,
        now: Instant,
        command: AdminCommand,
    ) -> Result<SessionView, AdminRefusal> {
        // The operator holds a host's rights everywhere; the group policy still decides.
        let allow = |s: &Self, action| {
            s.settings
                .policy
                .allow(Some(Role::Host), true, action)
                .map_err(|r| AdminRefusal::Policy(r.warning))
        };
        let roster = match command {
            AdminCommand::Describe { roster } => roster,
            AdminCommand::Lock(lock) => {
                allow(self, crate::policy::Action::Moderate)?;
                self.set_locked(lock);
                false
            }
            AdminCommand::End => {
                allow(self, crate::policy::Action::Moderate)?;
                self.end_conference(now, &format!("conference ended by {OPERATOR}"));
                let sids = self.package.ids();
                for sid in sids {
                    self.terminate_subscription(now, sid, "noresource");
                }
                false
            }
            AdminCommand::Remove { target } => {
                allow(self, crate::policy::Action::Remove)?;
                let aor = crate::sip::Uri::parse(target.trim().trim_matches(['<', '>']))
                    .map(|u| u.aor())
                    .unwrap_or(target);
                let pid = self
                    .participants
                    .iter()
                    .find(|(_, p)| p.real == aor || p.identity == aor)
                    .map(|(pid, _)| *pid)
                    .ok_or(AdminRefusal::NoParticipant)?;
                let reason = format!("removed by {OPERATOR}");
                self.hang_up(
                    now,
                    pid,
                    DisconnectionMethod::Booted,
                    Some((Status::OK, &reason)),
                );
                false
            }
        };
        self.flush(now);
        Ok(self.view(roster))
    }

    /// The session's summary (and roster).
    fn view(&self, with_roster: bool) -> SessionView {
        let rfc3339 = crate::conference_info::to_rfc3339;
        let roster = with_roster.then(|| {
            let mut list: Vec<ParticipantView> = self
                .roster
                .users()
                .flat_map(|u| u.endpoints.iter().map(move |e| (u, e)))
                .filter_map(|(u, e)| {
                    let pid = e.pid?;
                    let p = self.participants.get(&pid)?;
                    Some(ParticipantView {
                        uri: p.real.clone(),
                        alias: (p.identity != p.real).then(|| p.identity.clone()),
                        display_name: u.display.clone(),
                        role: p.role.as_str(),
                        identity: p.proof.as_str(),
                        status: e.status.as_str(),
                        joining_method: e.joining_method.as_str(),
                        joined: rfc3339(e.joined_at),
                        media: p
                            .msrp
                            .iter()
                            .map(|_| "msrp")
                            .chain(
                                self.talk
                                    .as_ref()
                                    .and_then(|t| t.media(pid))
                                    .map(|_| "audio"),
                            )
                            .collect(),
                        call_id: e.call_id.clone(),
                    })
                })
                .collect();
            list.sort_by(|a, b| a.joined.cmp(&b.joined).then(a.uri.cmp(&b.uri)));
            list
        });
        SessionView {
            uri: self.settings.conference_uri.clone(),
            kind: self.settings.kind.as_str(),
            participants: self.participants.len(),
            subscriptions: self.package.len(),
            dialing: self.dialouts.len(),
            created: rfc3339(self.epoch.1),
            active_since: self.started.map(|s| rfc3339(self.wall(s))),
            locked: self.locked,
            retiring: self.retired,
            floor_holder: self
                .talk
                .as_ref()
                .and_then(|t| t.holder())
                .and_then(|pid| self.participants.get(&pid))
                .map(|p| p.real.clone()),
            roster,
        }
    }

    /// Takes the settings of a configuration reload. Participants, dialogs and subscriptions
    /// stay; what the settings decide (who may join, limits, rights) applies from the next
    /// request on. A lock set in the configuration is applied when the configured value
    /// changed; otherwise a moderator's lock or unlock stands.
    pub fn reconfigure(&mut self, now: Instant, update: Reconfigure) {
        let next = match update {
            Reconfigure::Group(s) => {
                self.retired = false;
                s
            }
            Reconfigure::Other(_)
                if self.settings.kind == crate::session::SessionKind::Predefined =>
            {
                if !self.retired {
                    tracing::info!(conference = %self.settings.conference_uri,
                        "group removed from the configuration: no new joins, the session ends when empty");
                }
                self.retired = true;
                return;
            }
            Reconfigure::Other(base) => {
                let own = &self.settings;
                let mut s = SessionSettings {
                    conference_uri: own.conference_uri.clone(),
                    display_name: own.display_name.clone(),
                    subject: own.subject.clone(),
                    faces: own.faces.clone(),
                    kind: own.kind,
                    restart_members: own.restart_members.clone(),
                    restart_ids: own.restart_ids.clone(),
                    ..(*base).clone()
                };
                // The creator stays host of its session.
                s.policy.members = own.policy.members.clone();
                Arc::new(s)
            }
        };
        let lock_changed = next.policy.locked != self.settings.policy.locked;
        self.settings = next;
        if lock_changed {
            self.set_locked(self.settings.policy.locked);
        }
        self.flush(now);
    }
}
