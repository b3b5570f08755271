//! REFER conference control (RFC 4579 §5, RFC 3515, RFC 4488): a host or moderator adds a
//! participant (the focus calls it) or removes one (the focus sends BYE); the referrer learns
//! the outcome through `message/sipfrag` NOTIFYs of the REFER's implicit subscription, and
//! everyone through the conference package.

use super::referrals::REFER_EXPIRES;
use super::{RequestCtx, SessionState};
use crate::conference_info::DisconnectionMethod;
use crate::dialog::Dialog;
use crate::policy::{GroupPolicy, Identity, ANONYMOUS_DOMAIN};
use crate::sip::new_tag;
use crate::sip::Status;
use crate::sip::ALLOW;
use crate::sip::{parse_saturating, HeaderName, MessageWriter, Method, Request};
use crate::sip::{NameAddr, Uri};
use std::time::Instant;

impl SessionState {
    /// A REFER to the conference: `from` is the referring participant when it came in its
    /// dialog.
    pub(super) fn on_refer(
        &mut self,
        now: Instant,
        req: &Request,
        ctx: RequestCtx,
        from: Option<u64>,
    ) {
        let targets: Vec<&str> = req.headers.values(HeaderName::ReferTo).collect();
        let [target] = targets.as_slice() else {
            self.reply(
                req,
                ctx,
                Status::BAD_REQUEST,
                "Exactly one Refer-To required",
                None,
                &[],
            );
            return;
        };
        let Ok(target) = NameAddr::parse(target) else {
            self.reply(
                req,
                ctx,
                Status::BAD_REQUEST,
                "Malformed Refer-To header",
                None,
                &[],
            );
            return;
        };
        if matches!(&target.uri.scheme, crate::sip::Scheme::Other(s) if &**s == "cid") {
            self.on_multiple_refer(now, req, ctx, from, &target.uri);
            return;
        }
        if !target.uri.is_sip() {
            self.reply(
                req,
                ctx,
                Status::BAD_REQUEST,
                "Refer-To must be a SIP URI",
                None,
                &[],
            );
            return;
        }
        // RFC 4579 §5.3: `method=BYE` asks to remove the participant.
        let remove = target
            .uri
            .param("method")
            .flatten()
            .is_some_and(|m| m.eq_ignore_ascii_case("BYE"));
        let who = self.identify(req, &ctx);
        let action = if remove {
            crate::policy::Action::Remove
        } else {
            crate::policy::Action::Add
        };
        // RFC 4579 §5.5: a participant may remove itself; that is a leave, whatever its role.
        let leaver = if remove {
            self.self_removal(from, &target.uri, &who)
        } else {
            None
        };
        if leaver.is_none() {
            if let Err(r) = self.authorize(requester(from, &who), action) {
                self.refuse(req, ctx, &r);
                return;
            }
        }
        // The focus itself (this conference or any other URI it answers at) would be called
        // in by its own INVITE: refused before anything is sent.
        if self.settings.amplification.names_focus(&target.uri) {
            self.refuse(req, ctx, &crate::policy::Amplification::self_target());
            return;
        }
        // RFC 4488: `Refer-Sub: false` asks for no implicit subscription.
        let no_sub = req
            .headers
            .get(HeaderName::ReferSub)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
        let contact = self.contact(&ctx.source).to_string();
        let rid = if no_sub {
            let mut w = self.writer(req, &ctx, Status::OK, "OK");
            w.header(HeaderName::ReferSub, "false");
            self.respond(ctx, Status::OK, w.finish_empty(), None);
            None
        } else {
            let rid = self.out.id();
            match from {
                Some(pid) => {
                    self.referrals.open_in_dialog(rid, pid, req.cseq.seq);
                    let mut w = self.writer(req, &ctx, Status::ACCEPTED, "Accepted");
                    w.header(HeaderName::Contact, &contact);
                    self.respond(ctx, Status::ACCEPTED, w.finish_empty(), None);
                }
                None => {
                    let tag = new_tag();
                    let dialog = match Dialog::uas(req, &tag, ctx.source) {
                        Ok(d) => d,
                        Err(e) => {
                            let reason = e.to_string();
                            self.reply(req, ctx, e.status(), &reason, None, &[]);
                            return;
                        }
                    };
                    self.referrals
                        .open_own(rid, dialog, &mut self.dialogs, &mut self.out);
                    let mut w = MessageWriter::response_to(
                        req,
                        ctx.source.addr,
                        Status::ACCEPTED,
                        "Accepted",
                        Some(&tag),
                    );
                    w.header(HeaderName::Contact, &contact);
                    self.respond(ctx, Status::ACCEPTED, w.finish_empty(), None);
                }
            }
            self.referral_notify(Some(rid), Status::TRYING, "Trying", false);
            Some(rid)
        };
        if let Some(pid) = leaver {
            // The referrer hears the outcome before its dialog ends: not queued behind the
            // Trying in flight, whose answer would come after the BYE.
            if let Some(rid) = rid {
                self.referrals.skip_wait_in(rid, pid);
            }
            self.referral_notify(rid, Status::OK, "OK", true);
            self.hang_up(now, pid, DisconnectionMethod::Departed, None);
            return;
        }
        let by = self.referrer_name(from, &who);
        if remove {
            let requester = self.requester_aor(from, &who);
            self.refer_remove(now, &target.uri, rid, &by, requester.as_deref());
        } else {
            self.dial_out(now, &target, rid, &by);
        }
    }

    /// The participant a `method=BYE` REFER removes when it names its own sender: in its own
    /// dialog (bound to it, see `state/binding.rs`), the participant of that dialog; outside
    /// any dialog, only a sender whose identity the focus believes (a trusted host's
    /// P-Asserted-Identity, or an authenticated request), since a From header proves nothing.
    fn self_removal(&self, from: Option<u64>, target: &Uri, who: &Identity) -> Option<u64> {
        let aor = target.aor();
        match from {
            Some(pid) => self
                .participants
                .get(&pid)
                .filter(|p| p.real == aor || p.identity == aor)
                .map(|_| pid),
            // The one identity decision: only an identity that counts names itself, and only
            // the participant that joined as it (not an outsider claiming it).
            None if who.entitled() == Some(aor.as_str()) => self
                .participants
                .iter()
                .find(|(_, p)| p.real == aor && self.settings.trust.counts(p.proof))
                .map(|(pid, _)| *pid),
            None => None,
        }
    }

    /// REFER to several targets at once (RFC 5368): `Refer-To: <cid:...>` names a
    /// `recipient-list` part of the body. No implicit subscription: progress is reported by the
    /// conference package.
    fn on_multiple_refer(
        &mut self,
        now: Instant,
        req: &Request,
        ctx: RequestCtx,
        from: Option<u64>,
        cid: &Uri,
    ) {
        use crate::body::{multipart, resource_lists};
        if !req.headers.has_token(HeaderName::Require, "multiple-refer") {
            self.reply(
                req,
                ctx,
                Status::EXTENSION_REQUIRED,
                "Extension Required",
                None,
                &[(HeaderName::Require, "multiple-refer")],
            );
            return;
        }
        let ct = req.headers.get(HeaderName::ContentType).unwrap_or("");
        let list = multipart::parse(ct, req.body.clone(), &multipart::MultipartLimits::default())
            .ok()
            .and_then(|m| {
                let part = m.find_by_content_id(cid.as_str())?;
                if !part.is_content_type(resource_lists::MIME_TYPE) {
                    return None;
                }
                resource_lists::parse(&part.body, &self.settings.amplification.lists).ok()
            });
        let Some(mut list) = list else {
            self.reply(
                req,
                ctx,
                Status::BAD_REQUEST,
                "Malformed or missing URI list",
                None,
                &[],
            );
            return;
        };
        list.dedup();
        if list.entries.len() > self.settings.max_list {
            self.refuse(
                req,
                ctx,
                &GroupPolicy::list_too_long(self.settings.max_list),
            );
            return;
        }
        let who = self.identify(req, &ctx);
        let mut targets = Vec::new();
        for e in &list.entries {
            let Ok(uri) = Uri::parse(&e.uri) else {
                continue;
            };
            if !uri.is_sip() {
                continue;
            }
            let remove = uri
                .param("method")
                .flatten()
                .or_else(|| {
                    uri.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("method"))
                        .and_then(|h| h.value.as_deref())
                })
                .is_some_and(|m| m.eq_ignore_ascii_case("BYE"));
            let action = if remove {
                crate::policy::Action::Remove
            } else {
                crate::policy::Action::Add
            };
            if let Err(r) = self.authorize(requester(from, &who), action) {
                self.refuse(req, ctx, &r);
                return;
            }
            targets.push((uri, e.display_name.clone(), remove));
        }
        if self.names_focus_any(list.entries.iter().map(|e| e.uri.as_str())) {
            self.refuse(req, ctx, &crate::policy::Amplification::self_target());
            return;
        }
        let mut w = self.writer(req, &ctx, Status::ACCEPTED, "Accepted");
        w.header(HeaderName::ReferSub, "false");
        self.respond(ctx, Status::ACCEPTED, w.finish_empty(), None);
        let by = self.referrer_name(from, &who);
        let requester = self.requester_aor(from, &who);
        for (uri, display, remove) in targets {
            if remove {
                self.refer_remove(now, &uri, None, &by, requester.as_deref());
            } else {
                let target = NameAddr {
                    display: display.map(Into::into),
                    uri,
                    params: Vec::new(),
                };
                self.dial_out(now, &target, None, &by);
            }
        }
    }

    /// True when one of `uris` (as written in a URI list) names the focus itself.
    pub(super) fn names_focus_any<'a>(&self, mut uris: impl Iterator<Item = &'a str>) -> bool {
        uris.any(|u| Uri::parse(u).is_ok_and(|u| self.settings.amplification.names_focus(&u)))
    }

    /// How a referrer is named to the others (Referred-By of our INVITE, `referred` in
    /// conference-info, the Reason of a BYE): as a participant, its public identity (the
    /// alias when it joined anonymously); otherwise its identity, or the anonymous URI when
    /// the REFER itself asks for privacy (RFC 3323).
    fn referrer_name(&self, from: Option<u64>, who: &Identity) -> String {
        let participant = match from {
            Some(pid) => self.participants.get(&pid),
            None => who
                .entitled()
                .and_then(|aor| self.entitled_participant(aor)),
        };
        match participant {
            Some(p) => p.identity.clone(),
            None if who.anonymous => format!("sip:anonymous@{ANONYMOUS_DOMAIN}"),
            None => who.aor.clone(),
        }
    }

    /// The address of record a REFER is decided on: in a participant's dialog, the identity
    /// that participant joined with (the dialog is bound to it), never the REFER's own `From`;
    /// outside a dialog, the sender's identity when it counts. `None`: nobody (an outsider).
    fn requester_aor(&self, from: Option<u64>, who: &Identity) -> Option<String> {
        match from {
            Some(pid) => self
                .participants
                .get(&pid)
                .filter(|p| self.settings.trust.counts(p.proof))
                .map(|p| p.real.clone()),
            None => who.entitled().map(str::to_string),
        }
    }

    /// A response writer for `req` with the right To tag.
    fn writer(
        &self,
        req: &Request,
        ctx: &RequestCtx,
        status: Status,
        reason: &str,
    ) -> MessageWriter {
        let tag = req.to.tag().map(str::to_string).unwrap_or_else(new_tag);
        MessageWriter::response_to(req, ctx.source.addr, status, reason, Some(&tag))
    }

    /// Requests in a referral's own dialog: refreshes and unsubscribes are accepted; the
    /// subscription ends with the final NOTIFY anyway.
    pub(super) fn on_referral_request(&mut self, req: &Request, ctx: RequestCtx, rid: u64) {
        match req.method {
            Method::Subscribe => {
                let mut w = self.writer(req, &ctx, Status::OK, "OK");
                let expires = req
                    .headers
                    .get(HeaderName::Expires)
                    .and_then(parse_saturating)
                    .unwrap_or(REFER_EXPIRES)
                    .min(REFER_EXPIRES);
                w.header_fmt(HeaderName::Expires, format_args!("{expires}"));
                self.respond(ctx, Status::OK, w.finish_empty(), None);
                if expires == 0 {
                    self.end_referral(rid);
                }
            }
            Method::Options => self.reply_options(req, ctx),
            _ => self.reply(
                req,
                ctx,
                Status::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
                None,
                &[(HeaderName::Allow, ALLOW)],
            ),
        }
    }

    /// Sends a referral NOTIFY with `SIP/2.0 <status> <reason>` (RFC 3515 §2.4.5);
    /// `last` terminates the implicit subscription.
    pub(super) fn referral_notify(
        &mut self,
        rid: Option<u64>,
        status: Status,
        reason: &str,
        last: bool,
    ) {
        let Some(rid) = rid else { return };
        self.referrals.notify(
            rid,
            (status, reason),
            last,
            &mut self.participants,
            &self.settings,
            &mut self.dialogs,
            &mut self.out,
        );
    }

    /// The referrer answered a referral NOTIFY: the next one, if any, goes.
    pub(super) fn referral_answered(&mut self, rid: u64) {
        self.referrals.answered(
            rid,
            &mut self.participants,
            &self.settings,
            &mut self.dialogs,
            &mut self.out,
        );
    }

    /// Forgets a referral (and its own dialog).
    pub(super) fn end_referral(&mut self, rid: u64) {
        self.referrals.end(rid, &mut self.dialogs, &mut self.out);
    }

    /// Removes the participant a REFER with `method=BYE` names (RFC 4579 §5.3); `requester`
    /// is the real identity of whoever asked.
    fn refer_remove(
        &mut self,
        now: Instant,
        target: &Uri,
        rid: Option<u64>,
        by: &str,
        requester: Option<&str>,
    ) {
        let aor = target.aor();
        let pid = self
            .participants
            .named(|p| names(&p.identity, &p.real, &aor, requester));
        if let Some(pid) = pid {
            // The outcome goes first; a referrer removing itself hears it before its
            // dialog ends, not queued behind a NOTIFY whose answer would come too late.
            if let Some(rid) = rid {
                self.referrals.skip_wait_in(rid, pid);
            }
            self.referral_notify(rid, Status::OK, "OK", true);
            let reason = format!("removed by {by}");
            self.hang_up(
                now,
                pid,
                DisconnectionMethod::Booted,
                Some((Status::OK, &reason)),
            );
            return;
        }
        let calling = self
            .dialouts
            .iter()
            .find(|(_, d)| names(&d.identity, &d.real, &aor, requester))
            .map(|(pid, _)| *pid);
        if let Some(pid) = calling {
            self.stop_calling(now, pid, format!("removed by {by}"));
            self.referral_notify(rid, Status::OK, "OK", true);
            return;
        }
        self.referral_notify(
            rid,
            Status::CALL_TRANSACTION_DOES_NOT_EXIST,
            "Call/Transaction Does Not Exist",
            true,
        );
    }
}

/// Whether a target address of record names a participant (or callee) shown as `identity`
/// whose real address of record is `real`. Anonymous ones (the identity is an alias) are
/// named by their alias only, except by themselves: nobody learns who hides behind an alias
/// by trying real addresses (RFC 3323). `requester` is the identity that counts of whoever
/// asks (`None` for an outsider), never what its request claims.
pub(super) fn names(identity: &str, real: &str, target: &str, requester: Option<&str>) -> bool {
    identity == target || (real == target && (identity == real || requester == Some(real)))
}

/// Who asks by a REFER: the participant in whose dialog it came, or whoever it names.
fn requester(from: Option<u64>, who: &Identity) -> super::identity::Requester<'_> {
    match from {
        Some(pid) => super::identity::Requester::Participant(pid),
        None => super::identity::Requester::Outside(who),
    }
}
