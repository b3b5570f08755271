//! Pager-mode group messages (OMA CPM, RFC 3428): a MESSAGE to a group URI or an active
//! conference URI is answered `202 Accepted` and relayed as a MESSAGE of its own to every
//! participant of the session and every listed member who is not in it (at the address the
//! configuration gives), except the sender. Fan-out is paced by a per-group token bucket and
//! bounded by a queue; every failed delivery is counted and, when the sender asked for it
//! (IMDN in CPIM), reported back. A session lives until each delivery is answered.

use super::outbox::Pending;
use super::outbox::{NegativeReport, Outbox};
use super::{Effect, OutgoingSpec, RequestCtx, SessionState};
use crate::dialog::Destination;
use crate::media::cpim::vouch::{same_aor, vouch, Path, Sender};
use crate::media::cpim::{Addr as CpimAddr, Cpim, CpimLimits};
use crate::media::imdn;
use crate::overload::ShareRefusal;
use crate::overload::Shed;
use crate::policy::{Identity, Refusal, ANONYMOUS_DOMAIN};
use crate::sip::new_tag;
use crate::sip::{HeaderName, MessageWriter, Method, Request};
use crate::sip::{Status, WarnCode};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One delivery waiting for its turn.
pub(in crate::session) struct PagerItem {
    pub spec: OutgoingSpec,
    pub report: Option<Arc<NegativeReport>>,
    pub recipient: String,
}

/// One group message as every recipient gets it; only the Request-URI and the destination
/// differ per recipient.
pub(in crate::session) struct Letter {
    /// The From value (the sender as shown), without tag.
    from: String,
    content_type: String,
    body: Bytes,
    /// Referred-By, Contribution-ID, Conversation-ID.
    headers: Vec<(HeaderName, String)>,
}

impl Letter {
    /// The MESSAGE that carries this letter to `uri` (at `dest`, else at `uri`).
    fn spec(&self, agent: &str, uri: &crate::sip::Uri, dest: Option<Destination>) -> OutgoingSpec {
        let call_id: Box<str> = format!("{}@{agent}", new_tag()).into();
        let mut w = MessageWriter::headers_only();
        w.header_fmt(
            HeaderName::From,
            format_args!("{};tag={}", self.from, new_tag()),
        );
        w.header_fmt(HeaderName::To, format_args!("<{uri}>"));
        w.header(HeaderName::CallId, &call_id);
        w.header(HeaderName::CSeq, "1 MESSAGE");
        w.header(HeaderName::MaxForwards, "70");
        for (name, value) in &self.headers {
            w.header(*name, value);
        }
        let rest = w.finish(Some(&self.content_type), &self.body);
        let destination = dest.unwrap_or(Destination {
            next_hop: uri.clone(),
            flow: None,
        });
        OutgoingSpec {
            method: Method::Message,
            request_uri: uri.to_string(),
            rest,
            call_id,
            destination,
            invite: None,
        }
    }
}

/// A delivery to an invitee the focus is still calling: it goes when the invitee answers
/// and fails (counted, reported when asked) when it does not. Without it, a message
/// accepted while an invitee's `200` was still on its way skipped that invitee.
pub(in crate::session) struct Parked {
    letter: Arc<Letter>,
    report: Option<Arc<NegativeReport>>,
    recipient: String,
}

/// A session's group messages: the paced queue of deliveries, those sent and not yet
/// answered, those waiting for an invitee to answer, and each sender's share. Sends go out
/// through the [`Outbox`].
pub(in crate::session) struct Pager {
    pacer: Pacer,
    /// Deliveries sent and not yet answered: the session stays until each is counted (and
    /// reported when it fails).
    in_flight: usize,
    /// Deliveries waiting for the dial-out (by its pid) to answer.
    parked: std::collections::HashMap<u64, Vec<Parked>>,
    /// Group messages per sender (fair share).
    senders: crate::overload::SenderBuckets,
}

impl Pager {
    pub(super) fn new() -> Pager {
        Pager {
            pacer: Pacer::new(),
            in_flight: 0,
            parked: Default::default(),
            senders: Default::default(),
        }
    }

    /// Nothing waits, nothing is on its way, and no bucket is refilling.
    pub(super) fn is_idle(&self) -> bool {
        self.pacer.queue.is_empty()
            && self.in_flight == 0
            && self.parked.is_empty()
            && self.pacer.rested_at.is_none()
            && self.senders.rested_at().is_none()
    }

    /// When the pager next has work at `rate` per second.
    pub(super) fn deadlines(&self, now: Instant, rate: f64) -> impl Iterator<Item = Instant> {
        let pacer = self.pacer.next_at(now, rate).or(self.pacer.rested_at);
        pacer.into_iter().chain(self.senders.rested_at())
    }

    /// Forgets senders whose buckets are full again.
    pub(super) fn expire(&mut self, now: Instant) {
        self.senders.expire(now);
    }

    /// Deliveries queued or waiting for an invitee (bounded by `pager_queue` together).
    fn waiting(&self) -> usize {
        self.pacer.queue.len() + self.parked.values().map(Vec::len).sum::<usize>()
    }

    /// A delivery was answered (or failed).
    pub(super) fn answered(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Sends what the token bucket allows now, at `rate` per second.
    pub(super) fn pump(&mut self, now: Instant, rate: f64, out: &mut Outbox) {
        self.pacer.refill(now, rate);
        let mut sent = false;
        while self.pacer.tokens >= 1.0 {
            if self.pacer.queue.is_empty() {
                break;
            }
            self.pacer.tokens -= 1.0;
            self.send_next(out);
            sent = true;
        }
        if sent {
            // Recompute when the bucket is full again.
            self.pacer.refill(now, rate);
        }
    }

    /// Sends every waiting delivery at once, unpaced: the session is ending (shutdown) and
    /// an accepted message must still reach everyone or be reported failed.
    pub(super) fn flush(&mut self, out: &mut Outbox) {
        while !self.pacer.queue.is_empty() {
            self.send_next(out);
        }
    }

    fn send_next(&mut self, out: &mut Outbox) {
        let Some(item) = self.pacer.queue.pop_front() else {
            return;
        };
        let token = out.id();
        self.in_flight += 1;
        out.pending.insert(
            token,
            Pending::Pager {
                report: item.report,
                recipient: item.recipient,
            },
        );
        out.push(Effect::Send {
            token,
            request: Box::new(item.spec),
        });
    }
}

/// The pacing state of a session's group messages.
struct Pacer {
    queue: VecDeque<PagerItem>,
    tokens: f64,
    last: Option<Instant>,
    /// When the bucket is full again after the last sends. Until then the session stays
    /// (even with nobody in it): a group whose session ended after each message would start
    /// the next one with a full bucket, and `pager_rate` would bound nothing.
    rested_at: Option<Instant>,
}

impl Pacer {
    fn new() -> Pacer {
        Pacer {
            queue: VecDeque::new(),
            tokens: 0.0,
            last: None,
            rested_at: None,
        }
    }

    /// Refills at `rate` per second up to a one-second burst.
    fn refill(&mut self, now: Instant, rate: f64) {
        let elapsed = self
            .last
            .map_or(1.0, |l| now.saturating_duration_since(l).as_secs_f64());
        let burst = rate.max(1.0);
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = Some(now);
        self.rested_at = (self.tokens < burst && rate > 0.0)
            .then(|| now + Duration::from_secs_f64((burst - self.tokens) / rate));
    }

    /// When the next queued item may go.
    fn next_at(&self, now: Instant, rate: f64) -> Option<Instant> {
        if self.queue.is_empty() {
            return None;
        }
        if self.tokens >= 1.0 || rate <= 0.0 {
            return Some(now);
        }
        let wait = (1.0 - self.tokens) / rate;
        Some(now + Duration::from_secs_f64(wait.max(0.001)))
    }
}

impl SessionState {
    /// A MESSAGE to the group or conference URI.
    pub(super) fn on_group_message(&mut self, now: Instant, req: &Request, ctx: RequestCtx) {
        let who = self.identify(req, &ctx);
        // Only an identity that counts is a member or a participant here.
        let entitled = who.entitled();
        let member = entitled.is_some_and(|aor| {
            self.settings.policy.member_role(aor).is_some()
                || self.entitled_participant(aor).is_some()
        });
        if self.settings.policy.join != crate::config::JoinRule::Open && !member {
            let r = if who.counts {
                Refusal {
                    status: Status::FORBIDDEN,
                    label: "not_member",
                    code: WarnCode::MISCELLANEOUS,
                    warning: "Only members may send group messages".into(),
                }
            } else {
                Refusal::unverified("send group messages to this group")
            };
            self.refuse(req, ctx, &r);
            return;
        }
        // Each sender gets its own rate (503, not SIP's 429, which is RFC 3892's "Provide
        // Referrer Identity"), so one cannot fill the session's queue for everyone.
        let shares = &self.settings.shares;
        let (rate, burst) = (shares.sender_rate, shares.sender_burst);
        // Keyed by an identity that counts; an outsider's share is its address's, so claiming
        // alice cannot spend alice's share.
        let sender_key = match who.entitled() {
            Some(aor) => aor.to_string(),
            None => format!("unverified@{}", ctx.source.addr.ip()),
        };
        if let Err(wait) = self.pager.senders.take(&sender_key, rate, burst, now) {
            self.refuse_after(req, ctx, &ShareRefusal::SenderRate, wait);
            return;
        }
        let content_type = req
            .headers
            .get(HeaderName::ContentType)
            .unwrap_or("text/plain")
            .to_string();
        // The sender as the recipients see it: the same rule as the MSRP switch's (its
        // alias when it joined anonymously, the anonymous URI when this request asks for
        // privacy, RFC 3323), in the SIP From and the CPIM From alike.
        let shown = self.shown_sender(&who);
        let (body, private) = match self.vouched_body(req, &content_type, &who, &shown) {
            Ok(x) => x,
            Err(r) => {
                self.refuse(req, ctx, &r);
                return;
            }
        };
        // Every participant of the session gets it where it is; listed members who are not
        // in the session get it at their configured address (a pre-defined group's members
        // whether or not a session runs; an ad-hoc group's creator after it left). A private
        // message (CPIM To naming participants) goes to those participants only.
        let mut recipients: Vec<(String, crate::sip::Uri, Option<Destination>)> = Vec::new();
        // The sender gets no copy: by an identity that counts (an outsider claiming to be
        // someone cannot keep the message from that someone).
        let is_sender = |aor: &str, counts: bool| counts && entitled == Some(aor);
        for (pid, p) in self.participants.iter() {
            let named = private.is_empty() || private.contains(pid);
            if !is_sender(&p.real, self.settings.trust.counts(p.proof)) && named {
                recipients.push((
                    p.identity.clone(),
                    p.dialog.remote_target.clone(),
                    Some(p.dialog.destination()),
                ));
            }
        }
        let present: std::collections::HashSet<&str> = self
            .participants
            .values()
            .map(|p| p.real.as_str())
            .collect();
        for aor in self.settings.policy.members.keys() {
            if is_sender(aor, true) || present.contains(aor.as_str()) || !private.is_empty() {
                continue;
            }
            let address = self
                .settings
                .policy
                .member_uris
                .get(aor)
                .map_or(aor.as_str(), String::as_str);
            if let Ok(uri) = crate::sip::Uri::parse(address) {
                recipients.push((aor.clone(), uri, None));
            }
        }
        // Invitees still being called are members too: each gets the message once it
        // answers, or the delivery fails (counted, reported when asked). A listed member is
        // served at its configured address above; a private message names participants only.
        let mut invitees: Vec<(u64, String)> = Vec::new();
        if private.is_empty() {
            for (pid, d) in &self.dialouts {
                let listed = self.settings.policy.members.contains_key(&d.real);
                if !d.cancelled && !listed && !is_sender(&d.real, true) {
                    invitees.push((*pid, d.identity.clone()));
                }
            }
        }
        if self.pager.waiting() + recipients.len() + invitees.len() > self.settings.pager_queue {
            self.shed(req, ctx, Shed::PagerQueue);
            return;
        }
        let report = negative_report(req, &content_type, &who);
        // Referred-By tells the recipient which group the message belongs to (RFC 3892
        // style).
        let mut headers = vec![(
            HeaderName::ReferredBy,
            format!("<{}>", self.settings.conference_uri),
        )];
        for h in [HeaderName::ContributionId, HeaderName::ConversationId] {
            if let Some(v) = req.headers.get(h) {
                headers.push((h, v.to_string()));
            }
        }
        let letter = Arc::new(Letter {
            from: name_addr(&shown),
            content_type,
            body,
            headers,
        });
        let count = recipients.len() + invitees.len();
        for (shown, uri, dest) in recipients {
            let spec = letter.spec(&self.settings.warn_agent, &uri, dest);
            self.pager.pacer.queue.push_back(PagerItem {
                spec,
                report: report.clone(),
                recipient: shown,
            });
        }
        for (pid, shown) in invitees {
            self.pager.parked.entry(pid).or_default().push(Parked {
                letter: letter.clone(),
                report: report.clone(),
                recipient: shown,
            });
        }
        metrics::counter!("focus_group_messages_total", "mode" => "pager").increment(1);
        self.out
            .effects
            .push_back(Effect::Charge(crate::session::ChargeEvent::GroupMessage {
                sender: who.charged(ctx.source.addr.ip()),
                recipients: count as u32,
                size: req.body.len() as u64,
            }));
        self.reply(req, ctx, Status::ACCEPTED, "Accepted", None, &[]);
        self.pump_pager(now);
    }

    /// How the others see the sender of a group message: a participant by its public
    /// identity (its alias when it joined anonymously); anyone asking for privacy in this very
    /// request by the anonymous URI; anyone else by its identity.
    fn shown_sender(&self, who: &Identity) -> CpimAddr {
        // Only by an identity that counts: an outsider claiming a participant's address is
        // not shown as that participant (nor as its alias).
        let participant = who
            .entitled()
            .and_then(|aor| self.entitled_participant(aor));
        let addr = |uri: &str, display: &Option<String>| match display {
            Some(d) => CpimAddr::with_display(uri, d.clone()),
            None => CpimAddr::new(uri),
        };
        match participant {
            Some(p) if p.identity != p.real => addr(&p.identity, &p.display),
            _ if who.anonymous => {
                CpimAddr::with_display(format!("sip:anonymous@{ANONYMOUS_DOMAIN}"), "Anonymous")
            }
            Some(p) => addr(&p.identity, &p.display),
            None => addr(&who.aor, &who.display),
        }
    }

    /// The body to relay and, for a private message, the participants it goes to (empty:
    /// everyone). A `message/cpim` body gets the envelope rule of every relay path
    /// ([`crate::media::cpim::vouch`]): its From is the sender as shown, never what the
    /// sender wrote. A CPIM body that cannot be read cannot be vouched for and is refused.
    fn vouched_body(
        &self,
        req: &Request,
        content_type: &str,
        who: &Identity,
        shown: &CpimAddr,
    ) -> Result<(Bytes, Vec<u64>), Refusal> {
        let is_cpim = crate::sip::media_type(content_type).eq_ignore_ascii_case("message/cpim");
        if !is_cpim {
            return Ok((req.body.clone(), Vec::new()));
        }
        let bad = |warning: &str| Refusal {
            status: Status::BAD_REQUEST,
            label: "bad_cpim",
            code: WarnCode::MISCELLANEOUS,
            warning: warning.into(),
        };
        let mut cpim = Cpim::parse(req.body.clone(), &CPIM_LIMITS)
            .map_err(|_| bad("Malformed message/cpim body"))?;
        let sender = Sender {
            shown,
            real: &who.aor,
        };
        vouch(&mut cpim, sender, Path::Pager)
            .map_err(|_| bad("Unreadable notification from an anonymous sender"))?;
        let named = cpim.private_recipients(&self.settings.conference_uri);
        let mut private = Vec::with_capacity(named.len());
        if !named.is_empty() {
            if !self.settings.policy.allow_private {
                return Err(Refusal {
                    status: Status::FORBIDDEN,
                    label: "private_not_allowed",
                    code: WarnCode::MISCELLANEOUS,
                    warning: "Private messages are not allowed in this group".into(),
                });
            }
            let mut to = Vec::with_capacity(named.len());
            for uri in named {
                if same_aor(uri, &shown.uri) {
                    continue;
                }
                // Named by public identity only: an anonymous participant by its alias.
                let Some((pid, p)) = self
                    .participants
                    .iter()
                    .find(|(_, p)| same_aor(&p.identity, uri) && p.real != who.aor)
                else {
                    return Err(Refusal {
                        status: Status::TEMPORARILY_UNAVAILABLE,
                        label: "private_not_present",
                        code: WarnCode::MISCELLANEOUS,
                        warning: "A private message recipient is not in the session".into(),
                    });
                };
                if !private.contains(pid) {
                    private.push(*pid);
                    to.push(CpimAddr::new(p.identity.clone()));
                }
            }
            if private.is_empty() {
                return Err(Refusal {
                    status: Status::TEMPORARILY_UNAVAILABLE,
                    label: "private_not_present",
                    code: WarnCode::MISCELLANEOUS,
                    warning: "A private message recipient is not in the session".into(),
                });
            }
            cpim.to = to;
        }
        let body = cpim
            .to_bytes()
            .map_err(|_| bad("Malformed message/cpim body"))?;
        Ok((body, private))
    }

    /// Invitee `pid` answered and is a participant: the messages that waited for it join the
    /// paced queue, addressed to it where it is.
    pub(super) fn release_parked(&mut self, now: Instant, pid: u64) {
        let Some(parked) = self.pager.parked.remove(&pid) else {
            return;
        };
        let Some(p) = self.participants.get(&pid) else {
            for item in parked {
                self.pager_failed(now, item.report, &item.recipient);
            }
            return;
        };
        let (uri, dest) = (p.dialog.remote_target.clone(), p.dialog.destination());
        for item in parked {
            let spec = item
                .letter
                .spec(&self.settings.warn_agent, &uri, Some(dest.clone()));
            self.pager.pacer.queue.push_back(PagerItem {
                spec,
                report: item.report,
                recipient: item.recipient,
            });
        }
        self.pump_pager(now);
    }

    /// Invitee `pid` never came in: the messages that waited for it failed.
    pub(super) fn fail_parked(&mut self, now: Instant, pid: u64) {
        let Some(parked) = self.pager.parked.remove(&pid) else {
            return;
        };
        for item in parked {
            self.pager_failed(now, item.report, &item.recipient);
        }
    }

    /// Sends what the pager's token bucket allows now.
    pub(super) fn pump_pager(&mut self, now: Instant) {
        let rate = f64::from(self.settings.pager_rate);
        self.pager.pump(now, rate, &mut self.out);
    }

    /// A group-message delivery failed: count it, and report it when asked.
    pub(super) fn pager_failed(
        &mut self,
        now: Instant,
        report: Option<Arc<NegativeReport>>,
        recipient: &str,
    ) {
        metrics::counter!("focus_group_message_deliveries_total", "outcome" => "failed")
            .increment(1);
        let Some(r) = report else { return };
        let body = imdn::failed_delivery(&r.imdn_id, recipient, self.wall(now));
        let cpim = Cpim::new(
            crate::media::cpim::Addr::new(self.settings.conference_uri.clone()),
            crate::media::cpim::Addr::new(r.sender.clone()),
            imdn::CONTENT_TYPE,
            Bytes::from(body),
            self.wall(now),
        )
        .with_imdn(&crate::media::msrp::new_message_id(), None);
        let Ok(cpim_body) = cpim.to_bytes() else {
            return;
        };
        let call_id: Box<str> = format!("{}@{}", new_tag(), self.settings.warn_agent).into();
        let mut w = MessageWriter::headers_only();
        w.header_fmt(
            HeaderName::From,
            format_args!("<{}>;tag={}", self.settings.conference_uri, new_tag()),
        );
        w.header_fmt(HeaderName::To, format_args!("<{}>", r.sender));
        w.header(HeaderName::CallId, &call_id);
        w.header(HeaderName::CSeq, "1 MESSAGE");
        w.header(HeaderName::MaxForwards, "70");
        let rest = w.finish(Some("message/cpim"), &cpim_body);
        let token = self.out.id();
        self.out.pending.insert(token, Pending::Bye);
        self.out.effects.push_back(Effect::Send {
            token,
            request: Box::new(OutgoingSpec {
                method: Method::Message,
                request_uri: r.sender_target.to_string(),
                rest,
                call_id,
                destination: Destination {
                    next_hop: r.sender_target.clone(),
                    flow: None,
                },
                invite: None,
            }),
        });
    }
}

/// Bounds of a relayed CPIM body (the SIP message is bounded already).
const CPIM_LIMITS: CpimLimits = CpimLimits {
    max_headers: 64,
    max_size: 1 << 20,
};

/// `"display" <uri>` for a SIP From.
fn name_addr(a: &CpimAddr) -> String {
    match &a.display {
        Some(d) => format!("\"{}\" <{}>", d.replace(['"', '\\'], "'"), a.uri),
        None => format!("<{}>", a.uri),
    }
}

/// The negative-delivery request of a CPIM-wrapped MESSAGE, if it made one.
fn negative_report(
    req: &Request,
    content_type: &str,
    who: &Identity,
) -> Option<Arc<NegativeReport>> {
    let is_cpim = crate::sip::media_type(content_type).eq_ignore_ascii_case("message/cpim");
    if !is_cpim {
        return None;
    }
    let cpim = Cpim::parse(
        req.body.clone(),
        &CpimLimits {
            max_headers: 64,
            max_size: 1 << 20,
        },
    )
    .ok()?;
    let id = cpim.imdn_message_id()?;
    if !imdn::wants_negative_delivery(cpim.disposition_notification()?) {
        return None;
    }
    let target = req
        .headers
        .values(HeaderName::Contact)
        .next()
        .and_then(|c| crate::sip::NameAddr::parse(c).ok())
        .map(|a| a.uri)
        .unwrap_or_else(|| req.from.uri.clone());
    Some(Arc::new(NegativeReport {
        imdn_id: id.to_string(),
        sender_target: target,
        sender: who.aor.clone(),
    }))
}
