//! Answers to requests: plain replies, policy and fair-share refusals, OPTIONS.

use super::{Effect, RequestCtx, SessionState};
use crate::dialog::DialogId;
use crate::overload::Shed;
use crate::sip::new_tag;
use crate::sip::{refusal_response, HeaderName, MessageWriter, Refuse, Refuser, Request};
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

    /// Answers a typed refusal through the one responder (status, Warning, Retry-After),
    /// which counts it.
    pub(super) fn refuse(&mut self, req: &Request, ctx: RequestCtx, refusal: &dyn Refuse) {
        self.refuse_after(req, ctx, refusal, self.settings.retry_after_s);
    }

    /// [`SessionState::refuse`], asking a client to retry after `retry_after_s` (its own
    /// wait, for a sender over its rate).
    pub(super) fn refuse_after(
        &mut self,
        req: &Request,
        ctx: RequestCtx,
        refusal: &dyn Refuse,
        retry_after_s: u32,
    ) {
        let status = refusal.status();
        if refusal.retry_later() {
            tracing::debug!(conference = %self.settings.conference_uri,
                source = %ctx.source.addr.ip(), status = status.code(), reason = refusal.label(),
                "request shed");
        } else {
            tracing::info!(conference = %self.settings.conference_uri,
                call_id = req.headers.get(HeaderName::CallId).unwrap_or(""), method = %req.method,
                status = status.code(), reason = refusal.label(),
                warning = %refusal.warning().map(|(_, w)| w).unwrap_or_default(),
                "request refused");
        }
        let tag = req.to.tag().map(str::to_string).unwrap_or_else(new_tag);
        let by = Refuser {
            agent: &self.settings.warn_agent,
            retry_after_s,
        };
        let (status, bytes) = refusal_response(req, ctx.source.addr, Some(&tag), by, refusal);
        self.respond(ctx, status, bytes, None);
    }

    /// Sheds a request the session cannot take now (`503` with Retry-After, counted).
    pub(super) fn shed(&mut self, req: &Request, ctx: RequestCtx, why: Shed) {
        self.refuse(req, ctx, &why);
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
