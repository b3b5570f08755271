//! The session's side of the identity model: who sent a request, and what it may do. Every
//! decision here goes through [`crate::policy::Trust`] (`identify`, `counts`), so a join, a
//! REFER, a moderation request, a subscription and a group message judge a claim alike.

use super::participants::Participant;
use super::{RequestCtx, SessionState};
use crate::config::Role;
use crate::policy::Action;
use crate::policy::{Identity, Refusal};
use crate::sip::Request;

/// Who asks for a control action.
pub(super) enum Requester<'a> {
    /// A participant, in its own dialog: its identity is the one it joined with.
    Participant(u64),
    /// Someone joining with `role` (an INVITE with a URI list).
    Joining(&'a Identity, Role),
    /// Anyone else, outside a dialog (out-of-dialog REFER).
    Outside(&'a Identity),
}

impl SessionState {
    /// Who sent `req`.
    pub(super) fn identify(&self, req: &Request, ctx: &RequestCtx) -> Identity {
        self.settings
            .trust
            .identify(req, ctx.source.addr.ip(), ctx.authenticated.as_deref())
    }

    /// The participant that is `aor` by an identity that counts (an outsider who joined an
    /// open group claiming `aor` is not it).
    pub(super) fn entitled_participant(&self, aor: &str) -> Option<&Participant> {
        self.participants
            .values()
            .find(|p| p.real == aor && self.settings.trust.counts(p.proof))
    }

    /// Whether `who` is in the session or being called into it, by an identity that counts.
    pub(super) fn is_present(&self, who: &Identity) -> bool {
        who.entitled().is_some_and(|aor| {
            self.entitled_participant(aor).is_some()
                || self.dialouts.values().any(|d| d.real == aor)
        })
    }

    /// Decides a control action: an outsider (an identity that does not count) is refused
    /// whatever it claims; anyone else by the group policy on its role and listing.
    pub(super) fn authorize(
        &self,
        requester: Requester<'_>,
        action: Action,
    ) -> Result<(), Refusal> {
        let policy = &self.settings.policy;
        let listed_role = |aor: &str| policy.member_role(aor);
        let (counts, actor, listed) = match requester {
            Requester::Participant(pid) => match self.participants.get(&pid) {
                Some(p) => (
                    self.settings.trust.counts(p.proof),
                    Some(p.role),
                    listed_role(&p.real).is_some(),
                ),
                None => (true, None, false),
            },
            Requester::Joining(who, role) => (
                who.counts,
                Some(role),
                who.entitled().and_then(listed_role).is_some(),
            ),
            Requester::Outside(who) => match who.entitled() {
                None => (false, None, false),
                Some(aor) => {
                    let listed = listed_role(aor);
                    let actor = self.entitled_participant(aor).map(|p| p.role).or(listed);
                    (true, actor, listed.is_some())
                }
            },
        };
        if !counts {
            return Err(Refusal::unverified(action.what()));
        }
        policy.allow(actor, listed, action)
    }
}
