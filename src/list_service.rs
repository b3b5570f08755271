//! The URI-list service for MESSAGE (RFC 5365 exploder): a MESSAGE whose `multipart/mixed`
//! body holds the payload and a `recipient-list` resource list (with
//! `Require: recipient-list-message`) is answered `202 Accepted` and sent on as one MESSAGE
//! per listed recipient, carrying the payload only (plus, when there are To or Cc
//! recipients, the `recipient-list-history` that RFC 5364 lets them see: no bcc, anonymized
//! entries masked). It keeps no state beyond its requests in flight.

use crate::body::{multipart, resource_lists};
use crate::endpoint::{
    Destination, Endpoint, IncomingRequest, OutgoingRequest, TransactionUser, TuEvent,
};
use crate::media::cpim::vouch::{vouch, Path, Sender};
use crate::media::cpim::{Addr, Cpim, CpimLimits};
use crate::sip::{new_tag, HeaderName, MessageWriter, Method, Uri};
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The URI-list service (the RFC 5365 MESSAGE exploder).
pub struct ListService {
    endpoint: Endpoint,
    max_list: usize,
    domain: String,
    trust: crate::policy::Trust,
    charging: crate::charging::ChargingHandle,
    /// XML bounds of the list, and the addresses it may not name (the focus's own).
    amplification: Arc<crate::policy::Amplification>,
    next: AtomicU64,
}

impl ListService {
    pub fn new(
        endpoint: Endpoint,
        max_list: usize,
        domain: String,
        trust: crate::policy::Trust,
        charging: crate::charging::ChargingHandle,
        amplification: Arc<crate::policy::Amplification>,
    ) -> ListService {
        ListService {
            endpoint,
            max_list,
            domain,
            trust,
            charging,
            amplification,
            next: AtomicU64::new(1),
        }
    }

    /// Handles one MESSAGE to the URI-list service.
    pub fn handle(self: &Arc<Self>, incoming: IncomingRequest) {
        let req = incoming.request.clone();
        let txn = incoming.txn;
        if req.method != Method::Message {
            txn.reply_with(&req, 405, "Method Not Allowed", |w| {
                w.header(HeaderName::Allow, "MESSAGE, OPTIONS");
            });
            return;
        }
        if !req
            .headers
            .has_token(HeaderName::Require, "recipient-list-message")
        {
            txn.reply_with(&req, 421, "Extension Required", |w| {
                w.header(HeaderName::Require, "recipient-list-message");
            });
            return;
        }
        let source = incoming.source.addr.ip();
        let who = self
            .trust
            .identify(&req, source, incoming.authenticated.as_deref());
        // RFC 5363 §5: a URI-list service relays only for a sender it knows; an outsider's
        // claim would make the focus message a list of people in someone else's name.
        if !who.counts {
            let r = crate::policy::Refusal::unverified("send messages through this service");
            r.count();
            let warning = format!("{} {} \"{}\"", r.code, self.domain, r.warning);
            txn.reply_with(&req, r.status, crate::sip::reason_phrase(r.status), |w| {
                w.header(HeaderName::Warning, &warning);
            });
            return;
        }
        let ct = req.headers.get(HeaderName::ContentType).unwrap_or("");
        let Ok(body) =
            multipart::parse(ct, req.body.clone(), &multipart::MultipartLimits::default())
        else {
            txn.reply_with(&req, 400, "Malformed multipart body", |_| {});
            return;
        };
        let list = body
            .find_by_disposition(multipart::RECIPIENT_LIST)
            .filter(|p| p.is_content_type(resource_lists::MIME_TYPE))
            .and_then(|p| resource_lists::parse(&p.body, &self.amplification.lists).ok());
        let payload = body
            .parts
            .iter()
            .find(|p| !p.is_disposition(multipart::RECIPIENT_LIST))
            .cloned();
        let (Some(mut list), Some(mut payload)) = (list, payload) else {
            txn.reply_with(&req, 400, "Missing recipient list or payload", |_| {});
            return;
        };
        list.dedup();
        if list.entries.len() > self.max_list {
            metrics::counter!("focus_policy_rejections_total", "reason" => "list_too_long")
                .increment(1);
            let warning = format!(
                "399 {} \"At most {} recipients per message\"",
                self.domain, self.max_list
            );
            txn.reply_with(&req, 403, "Forbidden", |w| {
                w.header(HeaderName::Warning, &warning);
            });
            return;
        }
        // A recipient at the focus itself (a group, the factory, this very service) would make
        // the focus message itself: refused before anything is sent.
        if list
            .entries
            .iter()
            .any(|e| Uri::parse(&e.uri).is_ok_and(|u| self.amplification.names_focus(&u)))
        {
            let r = crate::policy::Amplification::self_target();
            r.count();
            let warning = format!("{} {} \"{}\"", r.code, self.domain, r.warning);
            txn.reply_with(&req, r.status, crate::sip::reason_phrase(r.status), |w| {
                w.header(HeaderName::Warning, &warning);
            });
            return;
        }
        let from = who.as_sender(&req.from);
        // A CPIM payload gets the envelope rule of every relay path: its From is the sender
        // as the recipients see it (the anonymous URI when it asked for privacy).
        if payload.is_content_type("message/cpim") {
            let shown = if who.anonymous {
                Addr::with_display(
                    format!("sip:anonymous@{}", crate::policy::ANONYMOUS_DOMAIN),
                    "Anonymous",
                )
            } else {
                match &who.display {
                    Some(d) => Addr::with_display(who.aor.clone(), d.clone()),
                    None => Addr::new(who.aor.clone()),
                }
            };
            let limits = CpimLimits {
                max_headers: 64,
                max_size: 1 << 20,
            };
            let sender = Sender {
                shown: &shown,
                real: &who.aor,
            };
            let vouched = Cpim::parse(payload.body.clone(), &limits)
                .ok()
                .and_then(|mut c| {
                    vouch(&mut c, sender, Path::Exploder).ok()?;
                    c.to_bytes().ok()
                });
            let Some(body) = vouched else {
                txn.reply_with(&req, 400, "Malformed message/cpim payload", |_| {});
                return;
            };
            payload
                .headers
                .retain(|h| !h.name.eq_ignore_ascii_case("Content-Length"));
            payload.body = body;
        }
        // RFC 5365 §4.2: To and Cc recipients learn who else got it (never the bcc ones).
        let shows_history = list
            .entries
            .iter()
            .any(|e| e.copy_control != resource_lists::CopyControl::Bcc);
        let history = shows_history.then(|| resource_lists::render_history(&list.entries));
        let payload_type = payload.content_type().unwrap_or("text/plain").to_string();
        let (content_type, out_body): (String, Bytes) = match &history {
            None => (payload_type, payload.body.clone()),
            Some(h) => {
                let parts = vec![
                    payload.clone(),
                    multipart::Part::new(resource_lists::MIME_TYPE, Bytes::from(h.clone()))
                        .with_disposition(multipart::RECIPIENT_LIST_HISTORY),
                ];
                match multipart::Multipart::mixed(parts).encode_with_new_boundary() {
                    Ok(x) => x,
                    Err(_) => (payload_type, payload.body.clone()),
                }
            }
        };
        txn.reply_with(&req, 202, "Accepted", |_| {});
        metrics::counter!("focus_group_messages_total", "mode" => "exploder").increment(1);
        let charged = who.charged(source);
        self.charging.record(crate::charging::Record::GroupMessage {
            conference: None,
            sender: charged.subject,
            verified: charged.verified,
            recipients: list.entries.len() as u32,
            size: payload.body.len() as u64,
            mode: crate::charging::MessageMode::Exploder,
        });
        let tu: Arc<dyn TransactionUser> = self.clone();
        for e in &list.entries {
            let Ok(uri) = Uri::parse(&e.uri) else {
                metrics::counter!("focus_group_message_deliveries_total", "outcome" => "failed")
                    .increment(1);
                continue;
            };
            if !uri.is_sip() {
                metrics::counter!("focus_group_message_deliveries_total", "outcome" => "failed")
                    .increment(1);
                continue;
            }
            let call_id: Box<str> = format!("{}@{}", new_tag(), self.domain).into();
            let mut w = MessageWriter::headers_only();
            w.header_fmt(HeaderName::From, format_args!("{from};tag={}", new_tag()));
            w.header_fmt(HeaderName::To, format_args!("<{uri}>"));
            w.header(HeaderName::CallId, &call_id);
            w.header(HeaderName::CSeq, "1 MESSAGE");
            w.header(HeaderName::MaxForwards, "70");
            let rest = w.finish(Some(&content_type), &out_body);
            self.endpoint.send_request(OutgoingRequest {
                method: Method::Message,
                request_uri: uri.to_string(),
                rest,
                call_id,
                destination: Destination {
                    next_hop: uri,
                    flow: None,
                },
                token: self.next.fetch_add(1, Ordering::Relaxed),
                tu: tu.clone(),
                invite: None,
            });
        }
    }
}

impl TransactionUser for ListService {
    fn on_event(&self, event: TuEvent) {
        let outcome = match event {
            TuEvent::Response { response, .. } if response.status < 200 => return,
            TuEvent::Response { response, .. } if response.status < 300 => "delivered",
            TuEvent::Response { .. } | TuEvent::Failed { .. } => "failed",
            TuEvent::AckTimeout { .. } | TuEvent::ResponseRefused { .. } => return,
        };
        metrics::counter!("focus_group_message_deliveries_total", "outcome" => outcome)
            .increment(1);
    }
}
