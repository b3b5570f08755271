//! Conference-event subscriptions as requests: SUBSCRIBE in and out of its dialog, and the
//! session's side of the package (what it is told, when it is told). The subscriptions
//! themselves and their NOTIFYs are [`super::package::ConferencePackage`]'s.

use super::package::conference;
use super::{Effect, RequestCtx, SessionState};
use crate::conference_info::ConferenceInfo;
use crate::dialog::Dialog;
use crate::overload::ShareRefusal;
use crate::session::subscription::Subscription;
use crate::sip::new_tag;
use crate::sip::{parse_saturating, HeaderName, MessageWriter, Method, Request};
use crate::sip::{ALLOW, ALLOW_EVENTS};
use std::time::{Duration, Instant};

impl SessionState {
    pub(super) fn on_subscribe(&mut self, now: Instant, req: &Request, ctx: RequestCtx) {
        let Some(event) = req.headers.get(HeaderName::Event).map(str::to_string) else {
            self.reply(req, ctx, 400, "Missing Event header", None, &[]);
            return;
        };
        let package = event.split(';').next().unwrap_or("").trim();
        if !package.eq_ignore_ascii_case("conference") {
            self.reply(
                req,
                ctx,
                489,
                "Bad Event",
                None,
                &[(HeaderName::AllowEvents, ALLOW_EVENTS)],
            );
            return;
        }
        let who = self.identify(req, &ctx);
        let present = self.is_present(&who);
        if let Err(r) = self.settings.policy.may_watch(&who, present) {
            self.refuse(req, ctx, &r);
            return;
        }
        let Some(expires) = self.granted_expires(req, &ctx) else {
            return;
        };
        if self.shutting_down {
            let retry = self.settings.retry_after_s.to_string();
            self.reply(
                req,
                ctx,
                503,
                "Service Unavailable",
                None,
                &[(HeaderName::RetryAfter, &retry)],
            );
            return;
        }
        if self.package.len() >= self.settings.max_subscriptions {
            metrics::counter!("focus_overload_rejections_total", "reason" => "subscriptions")
                .increment(1);
            let retry = self.settings.retry_after_s.to_string();
            self.reply(
                req,
                ctx,
                503,
                "Service Unavailable",
                Some((399, "Too many subscriptions to this conference")),
                &[(HeaderName::RetryAfter, &retry)],
            );
            return;
        }
        // Outsiders (neither in the session nor listed) hold at most their share, so the
        // host and members can still subscribe.
        let outsider = !present && self.settings.policy.member_role(&who.aor).is_none();
        if outsider && self.package.outsiders() >= self.settings.shares.outsider_subscriptions {
            self.refuse_share(req, ctx, 503, ShareRefusal::OutsiderSubscriptions);
            return;
        }
        let tag = new_tag();
        let dialog = match Dialog::uas(req, &tag, ctx.source) {
            Ok(d) => d,
            Err(e) => {
                let reason = e.to_string();
                self.reply(req, ctx, e.status(), &reason, None, &[]);
                return;
            }
        };
        let sid = self.out.id();
        let expires_at = now + Duration::from_secs(u64::from(expires));
        if let Some(flow) = self.closable_flow(&dialog) {
            self.out.push(Effect::WatchFlow(flow));
        }
        let mut sub = Subscription::new(sid, dialog, event, expires_at, now);
        sub.outsider = outsider;
        sub.subscriber = who.aor.clone();
        sub.dialog_ids =
            self.settings.call_info_to_trusted && self.settings.trust.trusts(ctx.source.addr.ip());
        self.package.add(sub, &mut self.dialogs, &mut self.out);
        if !outsider {
            self.out.push(Effect::AdmitFlow(ctx.source));
        }
        self.reply_subscribe_ok(req, ctx, &tag, expires);
        if expires == 0 {
            // A fetch: one NOTIFY with the state, terminating the subscription.
            self.terminate_subscription(now, sid, "timeout");
        }
    }

    /// Expires of a SUBSCRIBE as granted, or `None` after answering `423`/`400`.
    pub(super) fn granted_expires(&mut self, req: &Request, ctx: &RequestCtx) -> Option<u32> {
        let s = &self.settings;
        let asked = match req.headers.get(HeaderName::Expires) {
            None => s.default_expires,
            Some(v) => match parse_saturating(v) {
                Some(n) => n,
                None => {
                    self.reply(req, ctx.clone(), 400, "Malformed Expires header", None, &[]);
                    return None;
                }
            },
        };
        if asked != 0 && asked < s.min_expires {
            let min = s.min_expires.to_string();
            self.reply(
                req,
                ctx.clone(),
                423,
                "Interval Too Brief",
                None,
                &[(HeaderName::MinExpires, &min)],
            );
            return None;
        }
        Some(asked.min(s.max_expires))
    }

    fn reply_subscribe_ok(&mut self, req: &Request, ctx: RequestCtx, tag: &str, expires: u32) {
        let contact = self.contact(&ctx.source).to_string();
        let mut w = MessageWriter::response_to(req, ctx.source.addr, 200, "OK", Some(tag));
        w.header_fmt(HeaderName::Expires, format_args!("{expires}"));
        w.header(HeaderName::Contact, &contact);
        w.header(HeaderName::AllowEvents, ALLOW_EVENTS);
        let bytes = w.finish_empty();
        self.respond(ctx, 200, bytes, None);
    }

    pub(super) fn on_subscription_request(
        &mut self,
        now: Instant,
        req: &Request,
        ctx: RequestCtx,
        sid: u64,
    ) {
        let Some(sub) = self.package.get_mut(&sid) else {
            self.reply_simple(req, ctx, 481);
            return;
        };
        if let Err(e) = sub.dialog.accept_remote_cseq(req) {
            let reason = e.to_string();
            self.reply(req, ctx, e.status(), &reason, None, &[]);
            return;
        }
        match req.method {
            Method::Subscribe => {
                let Some(expires) = self.granted_expires(req, &ctx) else {
                    return;
                };
                let Some(sub) = self.package.get_mut(&sid) else {
                    return;
                };
                sub.dialog.refresh_target(req);
                sub.expires_at = now + Duration::from_secs(u64::from(expires));
                // RFC 6665 §4.2.1.2: a refresh gets a NOTIFY too; we send the full state.
                sub.forced = true;
                sub.needs_full = true;
                sub.next_allowed = now;
                let tag = sub.dialog.id.local_tag.to_string();
                self.reply_subscribe_ok(req, ctx, &tag, expires);
                if expires == 0 {
                    self.terminate_subscription(now, sid, "timeout");
                }
            }
            Method::Options => self.reply_options(req, ctx),
            // A subscription dialog has no INVITE usage to end.
            Method::Bye => self.reply_simple(req, ctx, 481),
            _ => self.reply(
                req,
                ctx,
                405,
                "Method Not Allowed",
                None,
                &[(HeaderName::Allow, ALLOW)],
            ),
        }
    }

    /// Sends the final NOTIFY (`terminated`, full state) and forgets the subscription.
    pub(super) fn terminate_subscription(&mut self, now: Instant, sid: u64, reason: &'static str) {
        let conf = conference!(self);
        self.package
            .notify(now, sid, Some(reason), &conf, None, &mut self.out);
        self.package.remove(sid, &mut self.dialogs, &mut self.out);
        self.prune_tombstones();
    }

    /// Forgets a subscription without a NOTIFY (its subscriber is gone).
    pub(super) fn drop_subscription(&mut self, sid: u64) {
        if self.package.remove(sid, &mut self.dialogs, &mut self.out) {
            self.prune_tombstones();
        }
    }

    /// Forgets the roster's tombstones every subscriber has seen.
    pub(super) fn prune_tombstones(&mut self) {
        self.roster.prune_tombstones(self.package.seen_by_all());
    }

    /// Sends every NOTIFY that is due.
    pub(super) fn flush(&mut self, now: Instant) {
        let conf = conference!(self);
        self.package.flush(now, &conf, &mut self.out);
    }

    /// The whole conference-info document as an ordinary subscriber sees it: no dialog
    /// identifiers (version filled in per subscriber).
    pub fn full_document(&self) -> ConferenceInfo {
        self.full_document_with(false)
    }

    /// The whole document; `dialog_ids` includes each endpoint's `<call-info>` (Call-ID and
    /// tags), which only a trusted subscriber may see (`subscriptions.call_info_to_trusted`).
    pub fn full_document_with(&self, dialog_ids: bool) -> ConferenceInfo {
        conference!(self).full_document(dialog_ids)
    }

    /// The changes after change counter `base`, as RFC 4575 partial state, as an ordinary
    /// subscriber sees them (no dialog identifiers).
    pub fn partial_document(&self, base: u64) -> ConferenceInfo {
        self.partial_document_with(base, false)
    }

    /// [`SessionState::partial_document`]; `dialog_ids` includes `<call-info>`.
    pub fn partial_document_with(&self, base: u64, dialog_ids: bool) -> ConferenceInfo {
        conference!(self).partial_document(base, dialog_ids)
    }
}
