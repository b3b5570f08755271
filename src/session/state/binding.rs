//! Dialogs bound to their parties (issue 14). An in-dialog request reaches its dialog only
//! when it matches the whole dialog id (Call-ID, local *and* remote tag, RFC 3261 §12), and,
//! for a dialog set up from an address outside `policy.trusted_hosts`, only when it comes on
//! the dialog's own flow (transport and address; for TCP and TLS the same connection), from
//! a trusted host, or authenticated as the dialog's party. A dialog the focus set up itself (a
//! dial-out, a resume after a restart) is held to the address its peer's 2xx came from. Knowing
//! a participant's Call-ID and tags is then not enough to end its session or move its media.

use super::dialogs::Owner;
use super::referrals::ReferVia;
use super::{RequestCtx, SessionState};
use crate::dialog::Dialog;
use crate::sip::Request;
use crate::sip::{Status, WarnCode};
use crate::transport::Target;

/// Why an in-dialog request is refused before its dialog sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Breach {
    /// Call-ID and local tag name a dialog whose remote tag is another (`481`).
    RemoteTag,
    /// The request is not on the flow of a dialog bound to one (`403`).
    Flow,
}

impl Breach {
    /// The label of `focus_dialog_rejections_total` (bounded).
    fn label(self) -> &'static str {
        match self {
            Breach::RemoteTag => "remote_tag",
            Breach::Flow => "flow",
        }
    }

    /// Counts the refusal.
    pub(super) fn count(self) {
        metrics::counter!("focus_dialog_rejections_total", "reason" => self.label()).increment(1);
    }
}

impl SessionState {
    /// The dialog an owner holds and the identity its party proved when it was set up.
    fn owned_dialog(&self, owner: Owner) -> Option<(&Dialog, &str)> {
        match owner {
            Owner::Participant(pid) => self
                .participants
                .get(&pid)
                .map(|p| (&p.dialog, p.real.as_str())),
            Owner::Subscription(sid) => self
                .package
                .get(&sid)
                .map(|s| (&s.dialog, s.subscriber.as_str())),
            Owner::Referral(rid) => match self.referrals.get(&rid).map(|r| &r.via) {
                Some(ReferVia::Own(d)) => Some((&**d, "")),
                _ => None,
            },
        }
    }

    /// Whether `req`, from `source` (and `authenticated` as an address of record), may act in
    /// the dialog of `owner`. An owner whose dialog is gone is left to its handler (`481`).
    pub(super) fn check_binding(
        &self,
        owner: Owner,
        req: &Request,
        source: &Target,
        authenticated: Option<&str>,
    ) -> Result<(), Breach> {
        let Some((dialog, identity)) = self.owned_dialog(owner) else {
            return Ok(());
        };
        if !dialog.matches(req) {
            return Err(Breach::RemoteTag);
        }
        let Some(_) = dialog.bound_flow(&self.settings.trust.hosts) else {
            return Ok(());
        };
        let proven = !identity.is_empty() && authenticated == Some(identity);
        if dialog.on_flow(source) || self.settings.trust.trusts(source.addr.ip()) || proven {
            Ok(())
        } else {
            Err(Breach::Flow)
        }
    }

    /// Answers a refused in-dialog request: `481` when it names no dialog of ours (RFC 3261
    /// §12.2.2), `403` with a Warning when the dialog exists but the sender may not act in it
    /// (RFC 5057: a 403 leaves the dialog to its real party).
    pub(super) fn refuse_breach(&mut self, req: &Request, ctx: RequestCtx, breach: Breach) {
        breach.count();
        tracing::info!(
            conference = %self.settings.conference_uri,
            method = %req.method,
            source = %ctx.source.addr,
            reason = breach.label(),
            "in-dialog request refused"
        );
        match breach {
            Breach::RemoteTag => {
                self.reply_simple(req, ctx, Status::CALL_TRANSACTION_DOES_NOT_EXIST)
            }
            Breach::Flow => self.reply(
                req,
                ctx,
                Status::FORBIDDEN,
                "Forbidden",
                Some((
                    WarnCode::MISCELLANEOUS,
                    "Requests in this dialog must come on the flow that set it up",
                )),
                &[],
            ),
        }
    }
}
