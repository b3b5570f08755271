//! REFER conference control (RFC 4579 §5, RFC 3515, RFC 4488): a host or moderator adds a
//! participant (the focus calls it) or removes one (the focus sends BYE); the referrer learns
//! the outcome through `message/sipfrag` NOTIFYs of the REFER's implicit subscription, and
//! everyone through the conference package.

use super::*;
use crate::dialog::InviteBasis;
use crate::sip::{NameAddr, Uri};

/// How long a REFER's implicit subscription lives at most (it ends with the final sipfrag).
const REFER_EXPIRES: u32 = 60;

/// A participant the focus is calling.
pub(in crate::session) struct DialOut {
    pub call_id: Box<str>,
    pub local_tag: String,
    /// From (the conference, without tag) and To (the target) header values.
    pub from: String,
    pub to: String,
    pub cseq: u32,
    pub sdp: LocalSdpState,
    pub msrp_session: String,
    pub referral: Option<u64>,
    pub identity: String,
    pub display: Option<String>,
    pub real: String,
    pub role: Role,
    /// When to give up ringing (CANCEL), then when to give up waiting for the CANCEL's effect.
    pub deadline: Instant,
    pub cancelled: bool,
    pub alerting: bool,
    /// Shown only as an anonymous alias (bcc or anonymized invitee).
    pub hidden: bool,
}

/// A REFER's implicit subscription (RFC 3515 §2.4.4).
pub(in crate::session) struct Referral {
    pub via: ReferVia,
    /// `refer`, or `refer;id=<CSeq>` inside an INVITE dialog.
    pub event: String,
}

/// Where a referral's NOTIFYs travel.
pub(in crate::session) enum ReferVia {
    /// The dialog an out-of-dialog REFER created.
    Own(Box<Dialog>),
    /// The referrer's own INVITE dialog (in-dialog REFER).
    Participant(u64),
}

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
            self.reply(req, ctx, 400, "Exactly one Refer-To required", None, &[]);
            return;
        };
        let Ok(target) = NameAddr::parse(target) else {
            self.reply(req, ctx, 400, "Malformed Refer-To header", None, &[]);
            return;
        };
        if matches!(&target.uri.scheme, crate::sip::Scheme::Other(s) if &**s == "cid") {
            self.on_multiple_refer(now, req, ctx, from, &target.uri);
            return;
        }
        if !target.uri.is_sip() {
            self.reply(req, ctx, 400, "Refer-To must be a SIP URI", None, &[]);
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
            let mut w = self.writer(req, &ctx, 200, "OK");
            w.header(HeaderName::ReferSub, "false");
            self.respond(ctx, 200, w.finish_empty(), None);
            None
        } else {
            let rid = self.id();
            match from {
                Some(pid) => {
                    self.referrals.insert(
                        rid,
                        Referral {
                            via: ReferVia::Participant(pid),
                            event: format!("refer;id={}", req.cseq.seq),
                        },
                    );
                    let mut w = self.writer(req, &ctx, 202, "Accepted");
                    w.header(HeaderName::Contact, &contact);
                    self.respond(ctx, 202, w.finish_empty(), None);
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
                    self.dialogs
                        .insert(tag.clone().into(), Owner::Referral(rid));
                    self.effects
                        .push_back(Effect::RegisterDialog(dialog.id.clone()));
                    self.referrals.insert(
                        rid,
                        Referral {
                            via: ReferVia::Own(Box::new(dialog)),
                            event: "refer".into(),
                        },
                    );
                    let mut w = MessageWriter::response_to(
                        req,
                        ctx.source.addr,
                        202,
                        "Accepted",
                        Some(&tag),
                    );
                    w.header(HeaderName::Contact, &contact);
                    self.respond(ctx, 202, w.finish_empty(), None);
                }
            }
            self.referral_notify(Some(rid), 100, "Trying", false);
            Some(rid)
        };
        if let Some(pid) = leaver {
            // The referrer hears the outcome before its dialog ends.
            self.referral_notify(rid, 200, "OK", true);
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
                421,
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
            self.reply(req, ctx, 400, "Malformed or missing URI list", None, &[]);
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
        let mut w = self.writer(req, &ctx, 202, "Accepted");
        w.header(HeaderName::ReferSub, "false");
        self.respond(ctx, 202, w.finish_empty(), None);
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
    fn writer(&self, req: &Request, ctx: &RequestCtx, status: u16, reason: &str) -> MessageWriter {
        let tag = req.to.tag().map(str::to_string).unwrap_or_else(new_tag);
        MessageWriter::response_to(req, ctx.source.addr, status, reason, Some(&tag))
    }

    /// Requests in a referral's own dialog: refreshes and unsubscribes are accepted; the
    /// subscription ends with the final NOTIFY anyway.
    pub(super) fn on_referral_request(&mut self, req: &Request, ctx: RequestCtx, rid: u64) {
        match req.method {
            Method::Subscribe => {
                let mut w = self.writer(req, &ctx, 200, "OK");
                let expires = req
                    .headers
                    .get(HeaderName::Expires)
                    .and_then(parse_saturating)
                    .unwrap_or(REFER_EXPIRES)
                    .min(REFER_EXPIRES);
                w.header_fmt(HeaderName::Expires, format_args!("{expires}"));
                self.respond(ctx, 200, w.finish_empty(), None);
                if expires == 0 {
                    self.end_referral(rid);
                }
            }
            Method::Options => self.reply_options(req, ctx),
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

    /// Sends a referral NOTIFY with `SIP/2.0 <status> <reason>` (RFC 3515 §2.4.5);
    /// `last` terminates the implicit subscription.
    pub(super) fn referral_notify(
        &mut self,
        rid: Option<u64>,
        status: u16,
        reason: &str,
        last: bool,
    ) {
        let Some(rid) = rid else { return };
        let faces = self.settings.faces.clone();
        let Some(r) = self.referrals.get_mut(&rid) else {
            return;
        };
        let event = r.event.clone();
        let dialog = match &mut r.via {
            ReferVia::Own(d) => Some(&mut **d),
            ReferVia::Participant(pid) => self.participants.get_mut(pid).map(|p| &mut p.dialog),
        };
        let Some(dialog) = dialog else {
            self.referrals.remove(&rid);
            return;
        };
        let (uri, mut w) = dialog.request(&Method::Notify);
        let flow = dialog.flow;
        w.header(
            HeaderName::Contact,
            faces.for_ip(flow.addr.ip()).contact(flow.protocol),
        );
        w.header(HeaderName::Event, &event);
        if last {
            w.header(
                HeaderName::SubscriptionState,
                "terminated;reason=noresource",
            );
        } else {
            w.header_fmt(
                HeaderName::SubscriptionState,
                format_args!("active;expires={REFER_EXPIRES}"),
            );
        }
        let body = format!("SIP/2.0 {status} {reason}\r\n");
        let rest = w.finish(Some("message/sipfrag;version=2.0"), body.as_bytes());
        let spec = OutgoingSpec {
            method: Method::Notify,
            request_uri: uri,
            rest,
            call_id: dialog.id.call_id.clone(),
            destination: dialog.destination(),
            invite: None,
        };
        let token = self.id();
        self.pending.insert(token, Pending::ReferNotify { rid });
        self.effects.push_back(Effect::Send {
            token,
            request: Box::new(spec),
        });
        if last {
            self.end_referral(rid);
        }
    }

    /// Forgets a referral (and its own dialog).
    pub(super) fn end_referral(&mut self, rid: u64) {
        if let Some(r) = self.referrals.remove(&rid) {
            if let ReferVia::Own(d) = r.via {
                self.dialogs.remove(&d.id.local_tag);
                self.effects.push_back(Effect::UnregisterDialog(d.id));
            }
        }
    }

    /// Calls `target` into the session (RFC 4579 §5.2).
    fn dial_out(&mut self, now: Instant, target: &NameAddr, rid: Option<u64>, by: &str) {
        self.dial_out_as(now, target, rid, by, false);
    }

    /// Calls `target`; a `hidden` invitee (bcc or anonymized in a URI list) is shown to the
    /// others only as an anonymous alias.
    pub(super) fn dial_out_as(
        &mut self,
        now: Instant,
        target: &NameAddr,
        rid: Option<u64>,
        by: &str,
        hidden: bool,
    ) {
        self.dial_out_full(now, target, None, rid, Some(by), hidden);
    }

    /// Calls `target` (Request-URI and next hop). `who` names the participant when that is
    /// not the target itself (a participant called back at its Contact after a restart);
    /// `by` is the referrer, if any (`Referred-By`, `referred` in conference-info).
    pub(super) fn dial_out_full(
        &mut self,
        now: Instant,
        target: &NameAddr,
        who: Option<&NameAddr>,
        rid: Option<u64>,
        by: Option<&str>,
        hidden: bool,
    ) {
        if self.settings.amplification.names_focus(&target.uri) {
            // Requests are checked before they get here; this keeps any other path (a
            // restarted session's remembered members) from making the focus call itself.
            let refusal = crate::policy::Amplification::self_target();
            refusal.count();
            self.referral_notify(rid, refusal.status, "Loop Detected", true);
            return;
        }
        let named = who.unwrap_or(target);
        let aor = named.uri.aor();
        // An outsider who joined claiming `aor` is not it: the real one is still called.
        if self.entitled_participant(&aor).is_some()
            || self.dialouts.values().any(|d| d.real == aor)
        {
            // Already in (or being called): nothing to do, and that is a success.
            self.referral_notify(rid, 200, "OK", true);
            return;
        }
        let who = Identity::called(aor.clone(), named.display.as_deref().map(str::to_string));
        let role = match self.settings.policy.admit(
            &who,
            Arrival::Invited,
            self.roster.present_endpoints(),
            self.locked,
        ) {
            Ok(r) => r,
            Err(refusal) => {
                refusal.count();
                let reason = crate::sip::reason_phrase(refusal.status);
                self.referral_notify(rid, refusal.status, reason, true);
                return;
            }
        };
        let pid = self.id();
        let local_tag = new_tag();
        let call_id: Box<str> = format!("{}@{}", new_tag(), self.settings.warn_agent).into();
        let msrp_session = media::new_session_id();
        let mut sdp_state = LocalSdpState::random();
        // The target's family when it names an address (`sip:bob@[2001:db8::1]`); a name is
        // offered the primary family's addresses.
        let family = target
            .uri
            .host
            .as_ref()
            .and_then(crate::sip::Host::ip)
            .unwrap_or_else(|| self.settings.faces.primary().sdp_address);
        let served = self.msrp_for(family);
        let body = match sdp_state.offer(
            media::offer_lines(served, &msrp_session),
            &self.answer_ctx(family),
        ) {
            Ok(sdp) => sdp.to_bytes(),
            Err(_) => {
                self.referral_notify(rid, 500, "Server Internal Error", true);
                return;
            }
        };
        let from = match self.settings.display_name.as_str() {
            "" => format!("<{}>", self.settings.conference_uri),
            d => format!(
                "\"{}\" <{}>",
                d.replace('"', "'"),
                self.settings.conference_uri
            ),
        };
        let to = format!("<{}>", request_target(&named.uri));
        let transport = target.uri.param("transport").flatten();
        let is = |name: &str| transport.is_some_and(|t| t.eq_ignore_ascii_case(name));
        let protocol = if target.uri.scheme == crate::sip::Scheme::Sips || is("tls") {
            Protocol::Tls
        } else if is("tcp") {
            Protocol::Tcp
        } else {
            Protocol::Udp
        };
        let contact = self
            .settings
            .faces
            .for_ip(family)
            .contact(protocol)
            .to_string();
        let cseq = 1;
        let mut w = MessageWriter::headers_only();
        w.header_fmt(HeaderName::From, format_args!("{from};tag={local_tag}"));
        w.header(HeaderName::To, &to);
        w.header(HeaderName::CallId, &call_id);
        w.header_fmt(HeaderName::CSeq, format_args!("{cseq} INVITE"));
        w.header(HeaderName::MaxForwards, "70");
        w.header(HeaderName::Contact, &contact);
        w.header(HeaderName::Allow, ALLOW);
        w.header(HeaderName::AllowEvents, ALLOW_EVENTS);
        // Invitees learn what the conversation is (RCS/CPM: Subject, Contribution-ID,
        // Conversation-ID copied unchanged).
        let ids = self.ids.clone().unwrap_or_default();
        let subject = ids
            .subject
            .clone()
            .or_else(|| (!self.settings.subject.is_empty()).then(|| self.settings.subject.clone()));
        if let Some(s) = subject {
            w.header(HeaderName::Subject, &s);
        }
        if let Some(c) = &ids.contribution_id {
            w.header(HeaderName::ContributionId, c);
        }
        if let Some(c) = &ids.conversation_id {
            w.header(HeaderName::ConversationId, c);
        }
        if let Some(by) = by {
            w.header_fmt(HeaderName::ReferredBy, format_args!("<{by}>"));
        }
        let expires = self.settings.session_timer.expires;
        for (name, value) in self.timer_request_headers(expires, None) {
            w.header(name, &value);
        }
        let rest = w.finish(Some("application/sdp"), &body);
        let token = self.id();
        self.pending.insert(token, Pending::Invite { pid });
        self.effects.push_back(Effect::Send {
            token,
            request: Box::new(OutgoingSpec {
                method: Method::Invite,
                request_uri: request_target(&target.uri),
                rest,
                call_id: call_id.clone(),
                destination: Destination {
                    next_hop: target.uri.clone(),
                    flow: None,
                },
                invite: Some(InviteBasis {
                    from: format!("{from};tag={local_tag}"),
                    to: to.clone(),
                    cseq,
                    routes: Vec::new(),
                }),
            }),
        });
        self.remember_member(&request_target(&target.uri), who.display.clone());
        let (identity, display) = if hidden {
            self.public_identity(&Identity {
                anonymous: true,
                ..who.clone()
            })
        } else {
            (aor.clone(), who.display.clone())
        };
        self.roster.join(
            &identity,
            display.clone(),
            role.as_str(),
            EndpointEntry {
                pid: Some(pid),
                entity: if hidden {
                    identity.clone()
                } else {
                    request_target(&target.uri)
                },
                status: EndpointStatus::DialingOut,
                joining_method: JoiningMethod::DialedOut,
                joined_at: self.wall(now),
                disconnection: None,
                departed_at: None,
                call_id: call_id.to_string(),
                remote_tag: String::new(),
                local_tag: local_tag.clone(),
                hidden,
                referred_by: by.map(str::to_string),
                media: Vec::new(),
                unverified: false,
            },
        );
        self.dialouts.insert(
            pid,
            DialOut {
                call_id,
                local_tag,
                from,
                to,
                cseq,
                sdp: sdp_state,
                msrp_session,
                referral: rid,
                identity,
                display,
                real: aor,
                role,
                deadline: now + self.settings.dial_timeout,
                cancelled: false,
                alerting: false,
                hidden,
            },
        );
        metrics::counter!("focus_dialouts_total", "outcome" => "started").increment(1);
        self.roster_changed();
    }

    /// A response to our INVITE toward a dialed-out participant.
    pub(super) fn on_dial_response(&mut self, now: Instant, token: u64, pid: u64, resp: &Response) {
        match resp.status {
            100..=199 => {
                if resp.status == 100 {
                    return;
                }
                let Some(d) = self.dialouts.get_mut(&pid) else {
                    return;
                };
                if !d.alerting {
                    d.alerting = true;
                    let rid = d.referral;
                    if self.roster.set_status(pid, EndpointStatus::Alerting) {
                        self.roster_changed();
                    }
                    let reason = resp.reason.to_string();
                    self.referral_notify(rid, resp.status, &reason, false);
                }
            }
            200..=299 => {
                self.pending.remove(&token);
                let Some(d) = self.dialouts.remove(&pid) else {
                    return;
                };
                let flow = Target {
                    protocol: Protocol::Udp,
                    addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
                    conn: None,
                };
                let dialog = match Dialog::uac(
                    &d.call_id,
                    &d.local_tag,
                    d.from.clone(),
                    d.to.clone(),
                    d.cseq,
                    resp,
                    flow,
                ) {
                    Ok(dialog) => dialog,
                    Err(_) => {
                        // Without a Contact we cannot even ACK in its dialog: give up.
                        self.dialouts.insert(pid, d);
                        self.dial_failed(now, pid, 502, DisconnectionMethod::Failed);
                        return;
                    }
                };
                let rid = d.referral;
                // A bcc or anonymized invitee is shown by an alias, like a participant that
                // asked for privacy.
                let hidden = d.identity != d.real;
                self.dialogs
                    .insert(d.local_tag.clone().into(), Owner::Participant(pid));
                self.effects
                    .push_back(Effect::RegisterDialog(dialog.id.clone()));
                self.participants.insert(
                    pid,
                    Participant {
                        dialog,
                        sdp: d.sdp,
                        identity: d.identity,
                        display: d.display,
                        real: d.real,
                        proof: crate::policy::Proof::Called,
                        role: d.role,
                        joined: now,
                        msrp_session: d.msrp_session.clone(),
                        msrp: None,
                        media_deadline: None,
                        offer_pending: false,
                        awaiting_ack: None,
                        muted: false,
                        timer: None,
                        peer_update: resp.headers.has_token(HeaderName::Allow, "UPDATE"),
                        dialed_out: true,
                        hidden: d.hidden,
                        source: None,
                        rtp_share: None,
                    },
                );
                if d.cancelled {
                    // A 2xx that crossed our CANCEL (ring timeout, removal, end): the dialog
                    // exists, so ACK it, then end it at once (RFC 3261 §15).
                    self.answered.insert(token, pid);
                    self.send_ack(pid);
                    metrics::gauge!("focus_participants_active").increment(1.0);
                    metrics::counter!("focus_dialouts_total", "outcome" => "failed").increment(1);
                    self.hang_up(
                        now,
                        pid,
                        DisconnectionMethod::Failed,
                        Some((487, "call cancelled")),
                    );
                    self.referral_notify(rid, 487, "Request Terminated", true);
                    return;
                }
                // The 2xx carries the answer to our offer. Its MSRP leg is in the switch
                // before the ACK leaves: the participant may connect and bind as soon as it
                // sees the ACK.
                let answer = sdp::parse(&resp.body).ok();
                if let Some(leg) = answer
                    .as_ref()
                    .and_then(|a| media::leg_from_answer(a, &d.msrp_session))
                {
                    self.install_msrp(now, pid, leg);
                }
                self.answered.insert(token, pid);
                self.send_ack(pid);
                metrics::gauge!("focus_participants_active").increment(1.0);
                metrics::counter!("focus_dialouts_total", "outcome" => "answered").increment(1);
                let expires = self.settings.session_timer.expires;
                self.apply_uac_timer(now, pid, expires, resp);
                self.charge_join(now, pid, true, hidden);
                if self.roster.set_status(pid, EndpointStatus::Connected) {
                    self.roster_changed_at(now);
                }
                self.journal_join(now, pid);
                // A broken answer ends the call.
                if answer.is_none() {
                    self.hang_up(
                        now,
                        pid,
                        DisconnectionMethod::Failed,
                        Some((488, "no valid SDP answer")),
                    );
                }
                self.referral_notify(rid, 200, "OK", true);
            }
            _ => {
                self.pending.remove(&token);
                let method = match resp.status {
                    486 | 600 | 603 => DisconnectionMethod::Busy,
                    _ => DisconnectionMethod::Failed,
                };
                self.dial_failed(now, pid, resp.status, method);
            }
        }
    }

    /// A dial-out ended without a session.
    pub(super) fn dial_failed(
        &mut self,
        now: Instant,
        pid: u64,
        status: u16,
        method: DisconnectionMethod,
    ) {
        let Some(d) = self.dialouts.remove(&pid) else {
            return;
        };
        let outcome = match method {
            DisconnectionMethod::Busy => "busy",
            _ => "failed",
        };
        metrics::counter!("focus_dialouts_total", "outcome" => outcome).increment(1);
        let wall = self.wall(now);
        let reason = crate::sip::reason_phrase(status);
        self.roster
            .depart(pid, method, Some(format!("{status} {reason}")), now, wall);
        self.roster_changed();
        self.referral_notify(d.referral, status, reason, true);
    }

    /// Sends (again) the ACK for the 2xx of the INVITE that brought `pid` in.
    pub(super) fn send_ack(&mut self, pid: u64) {
        let Some(cseq) = self.participants.get(&pid).map(|p| p.dialog.local_cseq) else {
            return;
        };
        self.send_ack_cseq(pid, cseq);
    }

    /// Sends the ACK for the 2xx of our INVITE with CSeq `cseq` in `pid`'s dialog.
    pub(super) fn send_ack_cseq(&mut self, pid: u64, cseq: u32) {
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        let (uri, w) = p.dialog.ack(cseq);
        let spec = OutgoingSpec {
            method: Method::Ack,
            request_uri: uri,
            rest: w.finish_empty(),
            call_id: p.dialog.id.call_id.clone(),
            destination: p.dialog.destination(),
            invite: None,
        };
        let token = self.id();
        self.effects.push_back(Effect::Send {
            token,
            request: Box::new(spec),
        });
    }

    /// Ring timeouts: CANCEL what rang too long; give up on what the CANCEL did not end.
    pub(super) fn dial_timeouts(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .dialouts
            .iter()
            .filter(|(_, d)| d.deadline <= now)
            .map(|(pid, _)| *pid)
            .collect();
        for pid in due {
            let Some(d) = self.dialouts.get_mut(&pid) else {
                continue;
            };
            if d.cancelled {
                // No final response came after our CANCEL: stop waiting.
                self.pending
                    .retain(|_, p| !matches!(p, Pending::Invite { pid: x } if *x == pid));
                self.dial_failed(now, pid, 408, DisconnectionMethod::Failed);
            } else {
                self.cancel_call(now, pid);
            }
        }
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
            .iter()
            .find(|(_, p)| names(&p.identity, &p.real, &aor, requester))
            .map(|(pid, _)| *pid);
        if let Some(pid) = pid {
            let reason = format!("removed by {by}");
            self.hang_up(now, pid, DisconnectionMethod::Booted, Some((200, &reason)));
            self.referral_notify(rid, 200, "OK", true);
            return;
        }
        let calling = self
            .dialouts
            .iter()
            .find(|(_, d)| names(&d.identity, &d.real, &aor, requester))
            .map(|(pid, _)| *pid);
        if let Some(pid) = calling {
            self.stop_calling(now, pid, format!("removed by {by}"));
            self.referral_notify(rid, 200, "OK", true);
            return;
        }
        self.referral_notify(rid, 481, "Call/Transaction Does Not Exist", true);
    }

    /// CANCELs our INVITE to `pid` (once).
    fn cancel_call(&mut self, now: Instant, pid: u64) {
        let Some(d) = self.dialouts.get_mut(&pid) else {
            return;
        };
        if d.cancelled {
            return;
        }
        d.cancelled = true;
        // The INVITE transaction ends within 64·T1 of the CANCEL; wait that long at most.
        d.deadline = now + Duration::from_secs(32);
        let (call_id, cseq) = (d.call_id.clone(), d.cseq);
        self.effects
            .push_back(Effect::CancelInvite { call_id, cseq });
    }

    /// Stops calling `pid` because someone decided so (removal, end of the conference): the
    /// call is CANCELled and conference-info shows the endpoint `disconnected` (`failed`,
    /// with `reason`) at once, however long the callee takes to end its side. A 2xx that
    /// crosses the CANCEL is still ACKed and hung up.
    pub(super) fn stop_calling(&mut self, now: Instant, pid: u64, reason: String) {
        if !self.dialouts.contains_key(&pid) {
            return;
        }
        self.cancel_call(now, pid);
        let wall = self.wall(now);
        if self
            .roster
            .depart(pid, DisconnectionMethod::Failed, Some(reason), now, wall)
        {
            self.roster_changed();
        }
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

/// The URI to call: the Refer-To URI without the REFER-only `method` parameter and without
/// headers.
pub(super) fn request_target(uri: &Uri) -> String {
    let text = uri.as_str();
    let base = text.split('?').next().unwrap_or(text);
    base.split(';')
        .filter(|p| {
            !p.trim_start()
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("method="))
        })
        .collect::<Vec<_>>()
        .join(";")
}
