//! Answers to requests: plain replies, policy and fair-share refusals, OPTIONS.

use super::{Effect, RequestCtx, SessionState};
use crate::dialog::DialogId;
use crate::overload::ShareRefusal;
use crate::policy::Refusal;
use crate::sip::new_tag;
use crate::sip::{HeaderName, MessageWriter, Request};
use crate::sip::{Status, WarnCode};
use crate::sip::{ALLOW, ALLOW_EVENTS};
use bytes::Bytes;

impl SessionState {
    pub(super) fn respond(
        &mut self,
        ctx: RequestCtx,
        status: Status,
        bytes: Bytes,
        ack: Option<DialogId>,
    ) {
        self.out.effects.push_back(Effect::Respond {
            txn: ctx.txn,
            status,
            bytes,
            ack,
        });
    }

    /// A final response without body; `warning` adds a `Warning: 399` text.
    pub(super) fn reply(
        &mut self,
        req: &Request,
        ctx: RequestCtx,
        status: Status,
        reason: &str,
        warning: Option<(WarnCode, &str)>,
        extra: &[(HeaderName, &str)],
    ) {
        let tag = req.to.tag().map(str::to_string).unwrap_or_else(new_tag);
        let mut w = MessageWriter::response_to(req, ctx.source.addr, status, reason, Some(&tag));
        if let Some((code, text)) = warning {
            w.header_fmt(
                HeaderName::Warning,
                format_args!(
                    "{code} {} \"{}\"",
                    self.settings.warn_agent,
                    text.replace('"', "'")
                ),
            );
        }
        for (name, value) in extra {
            w.header(*name, value);
        }
        let bytes = w.finish_empty();
        self.respond(ctx, status, bytes, None);
    }

    /// Answers a policy refusal with its status and Warning, and counts it.
    pub(super) fn refuse(&mut self, req: &Request, ctx: RequestCtx, refusal: &Refusal) {
        refusal.count();
        tracing::info!(conference = %self.settings.conference_uri,
            call_id = req.headers.get(HeaderName::CallId).unwrap_or(""), method = %req.method,
            status = refusal.status.code(), reason = refusal.label, warning = %refusal.warning, "request refused");
        self.reply(
            req,
            ctx,
            refusal.status,
            refusal.status.reason(),
            Some((refusal.code, &refusal.warning)),
            &[],
        );
    }

    /// Answers a fair-share refusal: `status` with its Warning and a Retry-After, counted.
    pub(super) fn refuse_share(
        &mut self,
        req: &Request,
        ctx: RequestCtx,
        status: Status,
        why: ShareRefusal,
    ) {
        self.refuse_share_after(req, ctx, status, why, self.settings.retry_after_s);
    }

    pub(super) fn refuse_share_after(
        &mut self,
        req: &Request,
        ctx: RequestCtx,
        status: Status,
        why: ShareRefusal,
        retry_after: u32,
    ) {
        why.count();
        tracing::debug!(
            conference = %self.settings.conference_uri,
            source = %ctx.source.addr.ip(),
            reason = why.label(),
            "fair share refused"
        );
        let retry = retry_after.to_string();
        self.reply(
            req,
            ctx,
            status,
            status.reason(),
            Some((WarnCode::MISCELLANEOUS, why.warning())),
            &[(HeaderName::RetryAfter, &retry)],
        );
    }

    pub(super) fn reply_simple(&mut self, req: &Request, ctx: RequestCtx, status: Status) {
        self.reply(req, ctx, status, status.reason(), None, &[]);
    }

    pub(super) fn reply_options(&mut self, req: &Request, ctx: RequestCtx) {
        let contact = self.contact(&ctx.source).to_string();
        self.reply(
            req,
            ctx,
            Status::OK,
            "OK",
            None,
            &[
                (HeaderName::Contact, &contact),
                (HeaderName::Allow, ALLOW),
                (HeaderName::Accept, crate::sip::ACCEPT),
                (HeaderName::AllowEvents, ALLOW_EVENTS),
            ],
        );
    }
}
