//! The xcap-diff subscription (RFC 5875 over RFC 6665), sans-IO: it is fed responses, NOTIFYs
//! and the time, and returns the requests to send and the documents to fetch. The driver
//! (`super::follow`) sends through the endpoint's client transactions.
//!
//! A NOTIFY counts only inside the focus's own dialog: the Call-ID and tag the focus chose
//! (random), the notifier's tag learnt from the 2xx (or the first NOTIFY), and the notifier's
//! address (the dialog is bound by host, as for the focus's other dialogs it set up itself).
//! Anything else is answered `481` and triggers nothing.

use crate::body::resource_lists::ListLimits;
use crate::dialog::{Binding, Destination, Dialog, DialogId};
use crate::sip::{
    new_tag, HeaderName, MessageWriter, Method, NameAddr, Request, Response, Status, Uri,
};
use crate::transport::Target;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// The event package.
pub const EVENT: &str = "xcap-diff";
/// Its body type.
pub const DIFF_TYPE: &str = "application/xcap-diff+xml";

/// Most doublings of the retry wait (64 times the first wait).
const MAX_RETRY_SHIFT: u32 = 6;

/// What the subscription is made of.
#[derive(Debug, Clone)]
pub struct SubscriberSettings {
    /// The URI subscribed to (Request-URI and To).
    pub target: Uri,
    /// The focus's address (From, without tag).
    pub from: String,
    /// The focus's Contact value.
    pub contact: String,
    /// Selectors of the documents, named in the body.
    pub documents: Vec<String>,
    pub expires: u32,
    /// First wait after a failure.
    pub retry: Duration,
    /// The XCAP root (to read absolute selectors in notices).
    pub root: String,
    pub limits: ListLimits,
}

/// A request for the endpoint.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub token: u64,
    pub method: Method,
    pub request_uri: String,
    pub rest: Bytes,
    pub call_id: Box<str>,
    pub destination: Destination,
}

/// What the driver does.
#[derive(Debug, Clone)]
pub enum Action {
    Send(Box<Outgoing>),
    /// Fetch these documents now (`None`: every document).
    Fetch(Option<Vec<String>>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing in flight; subscribe at `at`.
    Waiting { at: Instant },
    /// A SUBSCRIBE (`token`) awaits its final response.
    Pending { token: u64 },
    /// Subscribed; refresh at `at`.
    Active { at: Instant },
    /// Stopped (unsubscribed or shutting down).
    Stopped,
}

/// The subscription.
#[derive(Debug)]
pub struct Subscriber {
    s: SubscriberSettings,
    call_id: Box<str>,
    local_tag: Box<str>,
    /// CSeq of the last SUBSCRIBE outside a dialog.
    cseq: u32,
    dialog: Option<Dialog>,
    phase: Phase,
    expires: u32,
    next_token: u64,
    failures: u32,
}

/// When to refresh a subscription that lasts `expires` seconds: a minute early for long
/// ones, half-way for short ones.
fn refresh_after(expires: u32) -> Duration {
    let e = u64::from(expires);
    Duration::from_secs(if e > 120 { e - 60 } else { (e / 2).max(1) })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

impl Subscriber {
    /// A subscription that starts at the first [`Subscriber::on_tick`] at or after `now`.
    pub fn new(settings: SubscriberSettings, now: Instant) -> Subscriber {
        let expires = settings.expires;
        Subscriber {
            s: settings,
            call_id: "".into(),
            local_tag: "".into(),
            cseq: 0,
            dialog: None,
            phase: Phase::Waiting { at: now },
            expires,
            next_token: 1,
            failures: 0,
        }
    }

    /// The Call-ID and tag a NOTIFY must carry (empty before the first SUBSCRIBE).
    pub fn ids(&self) -> (Box<str>, Box<str>) {
        (self.call_id.clone(), self.local_tag.clone())
    }

    /// True while the subscription is established.
    pub fn is_active(&self) -> bool {
        matches!(self.phase, Phase::Active { .. })
    }

    /// When [`Subscriber::on_tick`] has work.
    pub fn deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting { at } | Phase::Active { at } => Some(at),
            Phase::Pending { .. } | Phase::Stopped => None,
        }
    }

    /// The body naming the documents (RFC 5875 §4.1: selectors relative to the root).
    fn body(&self) -> String {
        let mut b = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\n<list>\n",
        );
        for d in &self.s.documents {
            b.push_str(&format!("<entry uri=\"{}\"/>\n", xml_escape(d)));
        }
        b.push_str("</list>\n</resource-lists>\n");
        b
    }

    fn token(&mut self) -> u64 {
        let t = self.next_token;
        self.next_token += 1;
        t
    }

    fn finish(&self, mut w: MessageWriter, expires: u32) -> Bytes {
        w.header(HeaderName::Contact, &self.s.contact);
        w.header(HeaderName::Event, EVENT);
        w.header(HeaderName::Accept, DIFF_TYPE);
        w.header_fmt(HeaderName::Expires, format_args!("{expires}"));
        w.finish(
            Some(crate::body::resource_lists::MIME_TYPE),
            self.body().as_bytes(),
        )
    }

    /// A SUBSCRIBE outside any dialog: a new Call-ID and tag when `fresh`.
    fn subscribe(&mut self, fresh: bool) -> Action {
        if fresh || self.call_id.is_empty() {
            self.call_id = format!("{}@xdms", new_tag()).into();
            self.local_tag = new_tag().into();
            self.cseq = 0;
            self.dialog = None;
        }
        self.cseq += 1;
        let mut w = MessageWriter::headers_only();
        w.header_fmt(
            HeaderName::From,
            format_args!("{};tag={}", self.s.from, self.local_tag),
        );
        w.header_fmt(HeaderName::To, format_args!("<{}>", self.s.target));
        w.header(HeaderName::CallId, &self.call_id);
        w.header_fmt(HeaderName::CSeq, format_args!("{} SUBSCRIBE", self.cseq));
        w.header(HeaderName::MaxForwards, "70");
        let rest = self.finish(w, self.expires);
        let token = self.token();
        self.phase = Phase::Pending { token };
        Action::Send(Box::new(Outgoing {
            token,
            method: Method::Subscribe,
            request_uri: self.s.target.to_string(),
            rest,
            call_id: self.call_id.clone(),
            destination: Destination {
                next_hop: self.s.target.clone(),
                flow: None,
            },
        }))
    }

    /// A SUBSCRIBE in the dialog (a refresh, or `expires` 0 to end it).
    fn refresh(&mut self, expires: u32) -> Option<Action> {
        let dialog = self.dialog.as_mut()?;
        let (request_uri, w) = dialog.request(&Method::Subscribe);
        let destination = dialog.destination();
        let rest = self.finish(w, expires);
        let token = self.token();
        self.phase = Phase::Pending { token };
        Some(Action::Send(Box::new(Outgoing {
            token,
            method: Method::Subscribe,
            request_uri,
            rest,
            call_id: self.call_id.clone(),
            destination,
        })))
    }

    /// Time passes: subscribe or refresh when due.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        match self.phase {
            Phase::Waiting { at } if now >= at => vec![self.subscribe(true)],
            Phase::Active { at } if now >= at => match self.refresh(self.expires) {
                Some(a) => vec![a],
                None => vec![self.subscribe(true)],
            },
            _ => Vec::new(),
        }
    }

    /// Ends the subscription (shutdown): an unsubscribe when one is established.
    pub fn stop(&mut self) -> Vec<Action> {
        let out = match self.phase {
            Phase::Active { .. } => self.refresh(0).into_iter().collect(),
            _ => Vec::new(),
        };
        self.phase = Phase::Stopped;
        out
    }

    /// Waits before subscribing again, longer with each failure in a row.
    fn back_off(&mut self, now: Instant, why: &str) {
        metrics::counter!("focus_xdms_subscribes_total", "outcome" => "failed").increment(1);
        let wait = self.s.retry * (1u32 << self.failures.min(MAX_RETRY_SHIFT));
        self.failures = self.failures.saturating_add(1);
        tracing::warn!(why, retry_in = ?wait, "xcap-diff subscription failed; polling goes on");
        self.dialog = None;
        self.phase = Phase::Waiting { at: now + wait };
    }

    /// The final response to SUBSCRIBE `token` (provisional ones are ignored).
    pub fn on_response(
        &mut self,
        token: u64,
        resp: &Response,
        source: Target,
        now: Instant,
    ) -> Vec<Action> {
        if self.phase != (Phase::Pending { token }) || resp.status < 200 {
            return Vec::new();
        }
        let refreshing = self.dialog.is_some();
        match resp.status {
            200..=299 => {
                let expires = resp
                    .headers
                    .get(HeaderName::Expires)
                    .and_then(|v| v.trim().parse::<u32>().ok())
                    .unwrap_or(self.expires);
                if self.dialog.is_none() {
                    let mut local = String::new();
                    NameAddr::parse(&self.s.from)
                        .map(|a| a.write_without_tag(&mut local))
                        .unwrap_or_else(|_| local.push_str(&self.s.from));
                    match Dialog::uac(
                        &self.call_id,
                        &self.local_tag,
                        local,
                        format!("<{}>", self.s.target),
                        self.cseq,
                        resp,
                        source,
                    ) {
                        Ok(d) => self.dialog = Some(d),
                        Err(e) => {
                            self.back_off(now, &format!("2xx unusable: {e}"));
                            return Vec::new();
                        }
                    }
                } else if let Some(d) = self.dialog.as_mut() {
                    d.refresh_target_from(&resp.headers);
                }
                if expires == 0 {
                    self.back_off(now, "the notifier granted no time (Expires: 0)");
                    return Vec::new();
                }
                self.failures = 0;
                let outcome = if refreshing {
                    "refreshed"
                } else {
                    "established"
                };
                metrics::counter!("focus_xdms_subscribes_total", "outcome" => outcome).increment(1);
                tracing::info!(
                    target = %self.s.target,
                    expires,
                    outcome,
                    "xcap-diff subscription"
                );
                self.phase = Phase::Active {
                    at: now + refresh_after(expires),
                };
                Vec::new()
            }
            423 => {
                // RFC 6665 §4.1.2.1: ask again with at least Min-Expires (once it is higher).
                let min = resp
                    .headers
                    .get(HeaderName::MinExpires)
                    .and_then(|v| v.trim().parse::<u32>().ok());
                match min {
                    Some(m) if m > self.expires => {
                        self.expires = m;
                        match self.refresh(m) {
                            Some(a) => vec![a],
                            None => vec![self.subscribe(false)],
                        }
                    }
                    _ => {
                        self.back_off(now, "423 without a usable Min-Expires");
                        Vec::new()
                    }
                }
            }
            status => {
                self.back_off(now, &format!("answered {status}"));
                Vec::new()
            }
        }
    }

    /// SUBSCRIBE `token` got no final response.
    pub fn on_failure(&mut self, token: u64, now: Instant) {
        if self.phase == (Phase::Pending { token }) {
            self.back_off(now, "no answer");
        }
    }

    /// A NOTIFY the supervisor handed over (its Call-ID and To tag are the subscription's).
    /// Returns the status to answer and what to do.
    pub fn on_notify(
        &mut self,
        req: &Request,
        source: Target,
        now: Instant,
    ) -> (Status, Vec<Action>) {
        let ours = !self.call_id.is_empty()
            && req.call_id() == &*self.call_id
            && req.to.tag() == Some(&*self.local_tag)
            && self.phase != Phase::Stopped;
        if !ours {
            return refuse("not the subscription's dialog");
        }
        let from_tag = req.from.tag().unwrap_or("");
        match self.dialog.as_mut() {
            Some(d) => {
                if from_tag != &*d.remote_tag {
                    return refuse("another notifier's tag");
                }
                if !d.on_flow(&source) {
                    return refuse("not from the notifier's address");
                }
                if d.accept_remote_cseq(req).is_err() {
                    return (Status::SERVER_INTERNAL_ERROR, Vec::new());
                }
            }
            // RFC 6665 §4.1.2.4: the NOTIFY may come before the 2xx; it makes the dialog.
            None if matches!(self.phase, Phase::Pending { .. }) => {
                let contact = req
                    .headers
                    .values(HeaderName::Contact)
                    .next()
                    .and_then(|c| NameAddr::parse(c).ok())
                    .filter(|c| c.uri.is_sip());
                let Some(contact) = contact else {
                    return (Status::BAD_REQUEST, Vec::new());
                };
                let mut local = String::new();
                req.to.write_without_tag(&mut local);
                let mut remote = String::new();
                req.from.write_without_tag(&mut remote);
                self.dialog = Some(Dialog {
                    id: DialogId {
                        call_id: self.call_id.clone(),
                        local_tag: self.local_tag.clone(),
                    },
                    remote_tag: from_tag.into(),
                    local_addr: local,
                    remote_addr: remote,
                    remote_target: contact.uri,
                    route_set: req
                        .headers
                        .values(HeaderName::RecordRoute)
                        .map(str::to_string)
                        .collect(),
                    local_cseq: self.cseq,
                    remote_cseq: req.cseq.seq,
                    flow: source,
                    binding: Binding::Host,
                });
            }
            None => return refuse("no subscription dialog"),
        }
        let event = req.headers.get(HeaderName::Event).unwrap_or("");
        let package = event.split(';').next().unwrap_or("").trim();
        if !package.eq_ignore_ascii_case(EVENT) {
            metrics::counter!("focus_xdms_notifies_total", "outcome" => "refused").increment(1);
            return (Status::BAD_EVENT, Vec::new());
        }
        if let Some(d) = self.dialog.as_mut() {
            d.refresh_target(req);
        }
        metrics::counter!("focus_xdms_notifies_total", "outcome" => "accepted").increment(1);
        let state = req
            .headers
            .get(HeaderName::SubscriptionState)
            .unwrap_or("")
            .to_ascii_lowercase();
        if state.trim_start().starts_with("terminated") {
            // RFC 6665 §4.1.3: after deactivated or timeout, subscribe again at once.
            let at_once = state.contains("reason=deactivated") || state.contains("reason=timeout");
            self.dialog = None;
            if at_once {
                self.phase = Phase::Waiting { at: now };
            } else {
                self.back_off(now, "the notifier ended the subscription");
            }
        }
        (Status::OK, vec![Action::Fetch(self.changed(req))])
    }

    /// The documents a notice names, `None` for "check everything" (an empty or unreadable
    /// body: the fetch is conditional, so checking costs little).
    fn changed(&self, req: &Request) -> Option<Vec<String>> {
        if req.body.is_empty() {
            return None;
        }
        let is_diff = req
            .content_type()
            .map(crate::sip::media_type)
            .is_some_and(|t| t.eq_ignore_ascii_case(DIFF_TYPE));
        if !is_diff {
            return None;
        }
        match super::diff::parse(&req.body, &self.s.root, &self.s.limits) {
            Ok(changed) => Some(
                changed
                    .into_iter()
                    .map(|c| c.selector)
                    .filter(|s| self.s.documents.contains(s))
                    .collect(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "xcap-diff body unreadable; checking every document");
                None
            }
        }
    }
}

fn refuse(why: &'static str) -> (Status, Vec<Action>) {
    metrics::counter!("focus_xdms_notifies_total", "outcome" => "refused").increment(1);
    tracing::info!(why, "NOTIFY refused: not in the xcap-diff subscription");
    (Status::CALL_TRANSACTION_DOES_NOT_EXIST, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse, Framing, Message, ParseLimits};
    use crate::transport::Protocol;

    const DOC: &str = "rls-services/users/sip:admin@focus.example.com/index";

    fn settings() -> SubscriberSettings {
        SubscriberSettings {
            target: Uri::parse("sip:admin@192.0.2.7:5070").unwrap(),
            from: "<sip:conf@focus.example.com>".into(),
            contact: "<sip:192.0.2.1:5060>".into(),
            documents: vec![DOC.into()],
            expires: 4,
            retry: Duration::from_secs(5),
            root: "http://192.0.2.7:8080/xcap-root".into(),
            limits: ListLimits::default(),
        }
    }

    fn from(ip: &str) -> Target {
        Target {
            protocol: Protocol::Udp,
            addr: format!("{ip}:5070").parse().unwrap(),
            conn: None,
        }
    }

    fn message(text: String) -> Message {
        parse(
            Bytes::from(text),
            Framing::Datagram,
            &ParseLimits::default(),
        )
        .unwrap()
    }

    fn sent(actions: &[Action]) -> (u64, String, String) {
        match actions {
            [Action::Send(o)] => (
                o.token,
                o.request_uri.clone(),
                String::from_utf8(o.rest.to_vec()).unwrap(),
            ),
            other => panic!("expected one request, got {other:?}"),
        }
    }

    fn ok(sub: &Subscriber, status: u16, extra: &str) -> Response {
        let (call_id, tag) = sub.ids();
        let text = format!(
            "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nFrom: <sip:conf@focus.example.com>;tag={tag}\r\nTo: <sip:admin@192.0.2.7:5070>;tag=xdms1\r\nCall-ID: {call_id}\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:192.0.2.7:5070>\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match message(text) {
            Message::Response(r) => r,
            _ => unreachable!(),
        }
    }

    fn notify(sub: &Subscriber, from_tag: &str, cseq: u32, extra: &str, body: &str) -> Request {
        notify_in(&sub.ids().0, sub, from_tag, cseq, extra, body)
    }

    fn notify_in(
        call_id: &str,
        sub: &Subscriber,
        from_tag: &str,
        cseq: u32,
        extra: &str,
        body: &str,
    ) -> Request {
        let tag = sub.ids().1;
        let text = format!(
            "NOTIFY sip:192.0.2.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK{cseq}\r\nFrom: <sip:admin@focus.example.com>;tag={from_tag}\r\nTo: <sip:conf@focus.example.com>;tag={tag}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} NOTIFY\r\nContact: <sip:192.0.2.7:5070>\r\nEvent: xcap-diff\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match message(text) {
            Message::Request(r) => r,
            _ => unreachable!(),
        }
    }

    /// Subscribed at `t0` with Expires 4.
    fn established(t0: Instant) -> Subscriber {
        let mut sub = Subscriber::new(settings(), t0);
        let (token, _, _) = sent(&sub.on_tick(t0));
        let resp = ok(&sub, 200, "Expires: 4\r\n");
        assert!(sub
            .on_response(token, &resp, from("192.0.2.7"), t0)
            .is_empty());
        assert!(sub.is_active());
        sub
    }

    #[test]
    fn subscribes_names_the_documents_and_refreshes_in_the_dialog() {
        let t0 = Instant::now();
        let mut sub = Subscriber::new(settings(), t0);
        let (_, ruri, text) = sent(&sub.on_tick(t0));
        assert_eq!(ruri, "sip:admin@192.0.2.7:5070");
        for line in [
            "Event: xcap-diff\r\n",
            "Accept: application/xcap-diff+xml\r\n",
            "Expires: 4\r\n",
            "Content-Type: application/resource-lists+xml\r\n",
            "CSeq: 1 SUBSCRIBE\r\n",
            "Contact: <sip:192.0.2.1:5060>\r\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(text.contains(&format!("<entry uri=\"{DOC}\"/>")), "{text}");

        let mut sub = established(t0);
        assert_eq!(sub.deadline(), Some(t0 + Duration::from_secs(2)));
        assert!(sub.on_tick(t0 + Duration::from_secs(1)).is_empty());
        let (_, ruri, text) = sent(&sub.on_tick(t0 + Duration::from_secs(2)));
        assert_eq!(ruri, "sip:192.0.2.7:5070", "the notifier's Contact");
        assert!(text.contains(";tag=xdms1\r\n"), "in the dialog: {text}");
        assert!(text.contains("CSeq: 2 SUBSCRIBE\r\n"), "{text}");
    }

    #[test]
    fn a_notify_in_the_dialog_fetches_what_it_names() {
        let t0 = Instant::now();
        let mut sub = established(t0);
        let (status, actions) = sub.on_notify(
            &notify(&sub, "xdms1", 1, "Subscription-State: active\r\n", ""),
            from("192.0.2.7"),
            t0,
        );
        assert_eq!(status.code(), 200);
        assert!(matches!(actions.as_slice(), [Action::Fetch(None)]));
        let body = format!(
            "<xcap-diff xmlns=\"urn:ietf:params:xml:ns:xcap-diff\" xcap-root=\"http://192.0.2.7:8080/xcap-root\"><document sel=\"{DOC}\" new-etag=\"e2\"/><document sel=\"other/doc\" new-etag=\"x\"/></xcap-diff>"
        );
        let (status, actions) = sub.on_notify(
            &notify(
                &sub,
                "xdms1",
                2,
                "Content-Type: application/xcap-diff+xml\r\n",
                &body,
            ),
            from("192.0.2.7"),
            t0,
        );
        assert_eq!(status.code(), 200);
        match actions.as_slice() {
            [Action::Fetch(Some(docs))] => assert_eq!(docs, &vec![DOC.to_string()]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_notify_outside_the_dialog_triggers_nothing() {
        let t0 = Instant::now();
        let mut sub = established(t0);
        // Another notifier's tag, the right one from another address, another package.
        for (req, source, want) in [
            (notify(&sub, "forged", 1, "", ""), from("192.0.2.7"), 481),
            (notify(&sub, "xdms1", 1, "", ""), from("192.0.2.66"), 481),
        ] {
            let (status, actions) = sub.on_notify(&req, source, t0);
            assert_eq!(status.code(), want);
            assert!(actions.is_empty(), "{actions:?}");
        }
        let other = notify_in("not-ours", &sub, "xdms1", 3, "", "");
        let (status, actions) = sub.on_notify(&other, from("192.0.2.7"), t0);
        assert_eq!((status.code(), actions.is_empty()), (481, true));
        // Still subscribed: the outsider ended nothing.
        assert!(sub.is_active());
    }

    #[test]
    fn failures_back_off_and_a_deactivated_subscription_starts_again_at_once() {
        let t0 = Instant::now();
        let mut sub = Subscriber::new(settings(), t0);
        let (token, _, _) = sent(&sub.on_tick(t0));
        let resp = ok(&sub, 503, "");
        sub.on_response(token, &resp, from("192.0.2.7"), t0);
        assert_eq!(sub.deadline(), Some(t0 + Duration::from_secs(5)));
        assert!(sub.on_tick(t0 + Duration::from_secs(4)).is_empty());
        let t1 = t0 + Duration::from_secs(5);
        let (token, _, _) = sent(&sub.on_tick(t1));
        sub.on_failure(token, t1);
        assert_eq!(
            sub.deadline(),
            Some(t1 + Duration::from_secs(10)),
            "doubled"
        );

        let mut sub = established(t0);
        let (old_call, _) = sub.ids();
        let (status, _) = sub.on_notify(
            &notify(
                &sub,
                "xdms1",
                1,
                "Subscription-State: terminated;reason=deactivated\r\n",
                "",
            ),
            from("192.0.2.7"),
            t0,
        );
        assert_eq!(status.code(), 200);
        let (_, _, text) = sent(&sub.on_tick(t0));
        assert!(!text.contains(&*old_call), "a new subscription: {text}");
    }
}
