//! Group and service-provider policy as pure decisions: who may join, with what media, and
//! who may add, remove or moderate. Each refusal is typed, carries the status and Warning
//! text it is answered with, and a bounded label for `focus_policy_rejections_total`.

mod amplification;
mod identity;

pub use amplification::{Amplification, OwnUris};
pub use identity::{source_account, Charged, Identity, Proof, Trust, ANONYMOUS_DOMAIN};

use crate::config::{Authority, GroupConfig, JoinRule, MediaKind, ProviderPolicy, Role};
use crate::sip::{Refuse, Status, WarnCode};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// A refusal and how it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: Status,
    /// The metric label (bounded).
    pub label: &'static str,
    /// The Warning code (RFC 3261 §20.43): 399, or 304 for media.
    pub code: WarnCode,
    /// The Warning text.
    pub warning: String,
}

impl Refusal {
    fn new(status: Status, label: &'static str, warning: impl Into<String>) -> Refusal {
        Refusal {
            status,
            label,
            code: WarnCode::MISCELLANEOUS,
            warning: warning.into(),
        }
    }

    /// The refusal of an outsider (an identity that does not count, see [`Trust::counts`])
    /// asking for what only a verified identity may do; `what` completes "may ...".
    pub fn unverified(what: &str) -> Refusal {
        Refusal::new(
            Status::FORBIDDEN,
            "unverified",
            format!("Your identity is not verified: only a verified identity may {what}"),
        )
    }
}

impl Refuse for Refusal {
    fn status(&self) -> Status {
        self.status
    }

    fn warning(&self) -> Option<(WarnCode, Cow<'_, str>)> {
        Some((self.code, Cow::Borrowed(&self.warning)))
    }

    /// A refusal for want of a service (the credit server) is retried later, like load.
    fn retry_later(&self) -> bool {
        self.status == crate::overload::Shed::STATUS
    }

    fn label(&self) -> &'static str {
        self.label
    }

    fn count(&self) {
        metrics::counter!("focus_policy_rejections_total", "reason" => self.label).increment(1);
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.warning)
    }
}

/// How a participant arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// INVITE to the conference URI.
    DialIn,
    /// The focus called it (REFER, URI list).
    Invited,
}

/// A control action (RFC 4579 REFER, or moderation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Add,
    Remove,
    /// Lock, unlock, end, mute.
    Moderate,
}

impl Action {
    /// What the action is, completing "may ...".
    pub fn what(self) -> &'static str {
        match self {
            Action::Add => "add participants",
            Action::Remove => "remove participants",
            Action::Moderate => "moderate this group",
        }
    }
}

/// The policy one session enforces: the group's, bounded by the provider's.
#[derive(Debug, Clone)]
pub struct GroupPolicy {
    pub join: JoinRule,
    pub max_participants: u32,
    pub media: Vec<MediaKind>,
    pub allow_signalling_only: bool,
    pub allow_anonymous: bool,
    pub allow_private: bool,
    pub add: Authority,
    pub remove: Authority,
    pub locked: bool,
    /// Listed members by address of record.
    pub members: HashMap<String, Role>,
    /// Where listed members are reached when the focus sends to them outside a session
    /// (group messages): the URI as configured, port and parameters included, by address of
    /// record. A member without an entry is reached at its address of record.
    pub member_uris: HashMap<String, String>,
}

impl GroupPolicy {
    /// The policy of a pre-defined group under the provider's policy.
    pub fn for_group(g: &GroupConfig, provider: &ProviderPolicy) -> GroupPolicy {
        let media = match &g.allowed_media {
            Some(m) => m
                .iter()
                .copied()
                .filter(|k| provider.allowed_media.contains(k))
                .collect(),
            None => provider.allowed_media.clone(),
        };
        let parsed: Vec<(String, &crate::config::MemberConfig)> = g
            .members
            .iter()
            .filter_map(|m| crate::sip::Uri::parse(&m.uri).ok().map(|u| (u.aor(), m)))
            .collect();
        let members = parsed
            .iter()
            .map(|(aor, m)| (aor.clone(), m.role))
            .collect();
        let member_uris = parsed
            .iter()
            .map(|(aor, m)| (aor.clone(), m.uri.clone()))
            .collect();
        GroupPolicy {
            join: g.join,
            max_participants: g
                .max_participants
                .min(provider.max_participants_per_session),
            media,
            allow_signalling_only: g.allow_signalling_only,
            allow_anonymous: g.allow_anonymous,
            allow_private: g.allow_private_messages,
            add: g.add,
            remove: g.remove,
            locked: g.locked,
            members,
            member_uris,
        }
    }

    /// The policy of an ad-hoc session: open to its (unguessable) URI, any participant may
    /// add others (RCS group chat), the provider's limits and media.
    pub fn adhoc(provider: &ProviderPolicy) -> GroupPolicy {
        GroupPolicy {
            join: JoinRule::Open,
            max_participants: provider.max_participants_per_session,
            media: provider.allowed_media.clone(),
            allow_signalling_only: true,
            allow_anonymous: true,
            allow_private: true,
            add: Authority::Anyone,
            remove: Authority::Moderators,
            locked: false,
            members: HashMap::new(),
            member_uris: HashMap::new(),
        }
    }

    /// The listed role of an address of record.
    pub fn member_role(&self, aor: &str) -> Option<Role> {
        self.members.get(aor).copied()
    }

    /// Whether the session serves a media kind.
    pub fn serves(&self, kind: MediaKind) -> bool {
        self.media.contains(&kind)
    }

    /// Decides a join. `present` counts participants in the session now.
    pub fn admit(
        &self,
        who: &Identity,
        arrival: Arrival,
        present: usize,
        locked: bool,
    ) -> Result<Role, Refusal> {
        // Only an identity that counts is a member: an outsider's claim is never looked up.
        let role = who.entitled().and_then(|aor| self.member_role(aor));
        // A lock keeps newcomers out, not the group's hosts and moderators (who may also
        // unlock it).
        let moderates = role.is_some_and(|r| r >= Role::Moderator);
        if locked && arrival == Arrival::DialIn && !moderates {
            return Err(Refusal::new(
                Status::FORBIDDEN,
                "locked",
                "The group is locked",
            ));
        }
        match self.join {
            JoinRule::Open => {}
            JoinRule::MembersOnly | JoinRule::InvitedOnly if !who.counts => {
                return Err(Refusal::unverified("join this group"))
            }
            JoinRule::MembersOnly if role.is_none() => {
                return Err(Refusal::new(
                    Status::FORBIDDEN,
                    "not_member",
                    "Only members of this group may join",
                ))
            }
            JoinRule::MembersOnly => {}
            JoinRule::InvitedOnly if arrival == Arrival::DialIn && role.is_none() => {
                return Err(Refusal::new(
                    Status::FORBIDDEN,
                    "not_invited",
                    "Only invited participants may join this group",
                ))
            }
            JoinRule::InvitedOnly => {}
        }
        if who.anonymous && !self.allow_anonymous {
            return Err(Refusal::new(
                Status::FORBIDDEN,
                "anonymous",
                "Anonymous participation is not allowed in this group",
            ));
        }
        if present >= self.max_participants as usize {
            return Err(Refusal::new(Status::BUSY_HERE, "full", "The group is full"));
        }
        Ok(role.unwrap_or(Role::Participant))
    }

    /// Decides a subscription to the group's conference events: a members-only or
    /// invited-only group shows its roster only to those who may be in it, i.e. its listed
    /// members and whoever is in the session (or being called into it) now.
    /// `present` must come from the same decision (an outsider is never present).
    pub fn may_watch(&self, who: &Identity, present: bool) -> Result<(), Refusal> {
        let listed = who
            .entitled()
            .is_some_and(|aor| self.member_role(aor).is_some());
        if self.join == JoinRule::Open || present || listed {
            return Ok(());
        }
        if !who.counts {
            return Err(Refusal::unverified("subscribe to this group"));
        }
        match self.join {
            JoinRule::Open => Ok(()),
            JoinRule::MembersOnly => Err(Refusal::new(
                Status::FORBIDDEN,
                "not_member",
                "Only members of this group may subscribe to it",
            )),
            JoinRule::InvitedOnly => Err(Refusal::new(
                Status::FORBIDDEN,
                "not_invited",
                "Only invited participants may subscribe to this group",
            )),
        }
    }

    /// Decides a control action by an actor (`None`: not a participant nor a member).
    pub fn allow(&self, actor: Option<Role>, listed: bool, action: Action) -> Result<(), Refusal> {
        let needed = match action {
            Action::Add => self.add,
            Action::Remove => self.remove,
            Action::Moderate => Authority::Moderators,
        };
        let ok = match needed {
            Authority::Anyone => actor.is_some(),
            Authority::Members => listed || actor.is_some_and(|r| r >= Role::Moderator),
            Authority::Moderators => actor.is_some_and(|r| r >= Role::Moderator),
            Authority::Hosts => actor == Some(Role::Host),
        };
        if ok {
            Ok(())
        } else {
            Err(Refusal::new(
                Status::FORBIDDEN,
                "not_authorized",
                format!("You may not {}", action.what()),
            ))
        }
    }

    /// The refusal for a conference that would join itself (the focus called its own URI,
    /// e.g. after a REFER naming the conference): its chat would relay every message back
    /// into the group forever.
    pub fn self_join() -> Refusal {
        Refusal::new(
            Status::LOOP_DETECTED,
            "loop",
            "A conference cannot join itself",
        )
    }

    /// The refusal for a join from another focus (`;isfocus` Contact) where cascading is not
    /// configured (`policy.cascade`): its roster would be mixed into ours unannounced.
    pub fn cascade() -> Refusal {
        Refusal::new(
            Status::FORBIDDEN,
            "cascade",
            "Cascaded conferences are not accepted here",
        )
    }

    /// The refusal for a URI list (REFER, INVITE) naming more than `max` targets.
    pub fn list_too_long(max: usize) -> Refusal {
        Refusal::new(
            Status::FORBIDDEN,
            "list_too_long",
            format!("At most {max} targets per request"),
        )
    }

    /// The refusal for an offer without any media the group serves, when signalling-only
    /// participants are not allowed.
    pub fn no_media() -> Refusal {
        Refusal {
            code: WarnCode::MEDIA_TYPE_NOT_AVAILABLE,
            ..Refusal::new(
                Status::NOT_ACCEPTABLE_HERE,
                "media",
                "No media stream the group serves was offered",
            )
        }
    }
}

#[cfg(test)]
mod tests;
