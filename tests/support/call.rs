//! Requests the test agent sends, and the per-call state (Call-ID, tags, CSeq, remote target)
//! they are built from.

use super::contact_of;
use super::ua::{Rx, Ua};
use cpm_focus::sip::{HeaderName, NameAddr, Request, Response};
use std::sync::atomic::{AtomicU64, Ordering};

/// An audio offer as SIPp's `uac` scenario sends it.
pub const AUDIO_OFFER: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// The same session with a video stream added (a changed offer).
pub const AUDIO_VIDEO_OFFER: &str = "v=0\r\n\
o=user1 53655765 2353687638 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n\
m=video 6002 RTP/AVP 31\r\n\
a=rtpmap:31 H261/90000\r\n";

static UNIQUE: AtomicU64 = AtomicU64::new(1);

fn unique() -> String {
    format!(
        "{:x}{:04x}",
        std::process::id(),
        UNIQUE.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh RFC 3261 branch.
pub fn branch() -> String {
    format!("z9hG4bK-e2e-{}", unique())
}

/// One call (dialog, once the focus tagged it) of a test agent.
#[derive(Debug, Clone)]
pub struct Call {
    pub call_id: String,
    pub from_tag: String,
    /// Request-URI of requests outside the dialog.
    pub ruri: String,
    /// The To URI (the conference).
    pub to_uri: String,
    /// The focus's tag, once a response carried one.
    pub to_tag: Option<String>,
    /// The focus's Contact URI: the Request-URI inside the dialog.
    pub target: Option<String>,
    /// Last CSeq number used by a request that is not ACK or CANCEL.
    pub cseq: u32,
    /// Branch and CSeq of the last INVITE (ACK and CANCEL refer to it).
    pub last_invite: Option<(String, u32)>,
    /// The dialog's route set (RFC 3261 §12.1.2: the 2xx's Record-Route, reversed): `Route`
    /// headers of in-dialog requests. Empty unless a proxy record-routed.
    pub route: Vec<String>,
}

impl Call {
    /// A new call to `uri` (outside any dialog).
    pub fn new(uri: &str) -> Call {
        Call {
            call_id: format!("e2e-{}@127.0.0.1", unique()),
            from_tag: format!("ft{}", unique()),
            ruri: uri.to_string(),
            to_uri: uri.to_string(),
            to_tag: None,
            target: None,
            cseq: 0,
            last_invite: None,
            route: Vec::new(),
        }
    }

    /// The dialog of an INVITE the focus sent us (a dial-out) that we answer with tag
    /// `our_tag`: our requests in it carry the focus's From tag as To tag and go to the
    /// focus's Contact.
    pub fn answering(invite: &Request, our_tag: &str) -> Call {
        let from = NameAddr::parse(invite.headers.get(HeaderName::From).expect("From"))
            .expect("the focus's From");
        let contact = invite
            .headers
            .get(HeaderName::Contact)
            .and_then(|c| NameAddr::parse(c).ok())
            .expect("the focus's INVITE has a Contact");
        Call {
            call_id: invite.call_id().to_string(),
            from_tag: our_tag.to_string(),
            ruri: contact.uri.to_string(),
            to_uri: from.uri.to_string(),
            to_tag: invite.from.tag().map(str::to_string),
            target: Some(contact.uri.to_string()),
            cseq: 0,
            last_invite: None,
            route: invite
                .headers
                .values(HeaderName::RecordRoute)
                .map(str::to_string)
                .collect(),
        }
    }

    /// Learns the focus's tag and Contact from a response that establishes the dialog.
    pub fn learn(&mut self, resp: &Response) {
        if let Some(tag) = resp.to.tag() {
            self.to_tag = Some(tag.to_string());
        }
        if resp.headers.get(HeaderName::Contact).is_some() {
            self.target = Some(contact_of(resp).0);
        }
        if self.route.is_empty() {
            let mut rr: Vec<String> = resp
                .headers
                .values(HeaderName::RecordRoute)
                .map(str::to_string)
                .collect();
            rr.reverse();
            self.route = rr;
        }
    }
}

/// What is needed to ACK a non-2xx final or CANCEL an INVITE.
#[derive(Debug, Clone)]
pub struct SentInvite {
    pub ruri: String,
    pub via: String,
    pub from: String,
    pub to: String,
    pub call_id: String,
    pub cseq: u32,
}

impl Ua {
    /// The agent's address-of-record.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", self.name, self.domain)
    }

    fn transport(&self) -> &'static str {
        if self.tls {
            "TLS"
        } else if self.tcp {
            "TCP"
        } else {
            "UDP"
        }
    }

    /// The agent's Contact URI.
    pub fn contact_uri(&self) -> String {
        if self.tls {
            return format!("sips:{}@{}", self.name, self.local);
        }
        let t = if self.tcp { ";transport=tcp" } else { "" };
        format!("sip:{}@{}{t}", self.name, self.local)
    }

    fn via(&self, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.transport(),
            self.local
        )
    }

    fn from(&self, call: &Call) -> String {
        format!(
            "\"{}\" <{}>;tag={}",
            self.display,
            self.aor(),
            call.from_tag
        )
    }

    fn to(&self, call: &Call) -> String {
        match &call.to_tag {
            Some(t) => format!("<{}>;tag={t}", call.to_uri),
            None => format!("<{}>", call.to_uri),
        }
    }

    /// The text of a request in `call`. Inside the dialog the Request-URI is the focus's
    /// Contact; `extra` headers end with CRLF; `body` is (Content-Type, text).
    pub fn request_text(
        &self,
        method: &str,
        call: &Call,
        cseq: u32,
        branch: &str,
        extra: &str,
        body: Option<(&str, &str)>,
    ) -> String {
        let ruri = match (&call.to_tag, &call.target) {
            (Some(_), Some(t)) => t.as_str(),
            _ => call.ruri.as_str(),
        };
        let mut s = format!(
            "{method} {ruri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <{}>\r\nUser-Agent: cpm-focus-e2e\r\n{extra}",
            self.via(branch),
            self.from(call),
            self.to(call),
            call.call_id,
            self.contact_uri(),
        );
        if call.to_tag.is_some() {
            for r in &call.route {
                s.push_str(&format!("Route: {r}\r\n"));
            }
        }
        match body {
            Some((ct, b)) => s.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None => s.push_str("Content-Length: 0\r\n\r\n"),
        }
        s
    }

    /// Sends a new request in `call` (CSeq + 1); returns its branch.
    pub fn send_request(
        &mut self,
        call: &mut Call,
        method: &str,
        extra: &str,
        body: Option<(&str, &str)>,
    ) -> String {
        call.cseq += 1;
        let b = branch();
        let text = self.request_text(method, call, call.cseq, &b, extra, body);
        if method == "INVITE" {
            call.last_invite = Some((b.clone(), call.cseq));
            let ruri = text.split(' ').nth(1).unwrap().to_string();
            self.invites.insert(
                b.clone(),
                SentInvite {
                    ruri,
                    via: self.via(&b),
                    from: self.from(call),
                    to: self.to(call),
                    call_id: call.call_id.clone(),
                    cseq: call.cseq,
                },
            );
        }
        self.send_new(&b, &text, method == "INVITE");
        self.sent.insert(b.clone(), text);
        b
    }

    /// Sends the request of transaction `branch` again, byte for byte.
    pub fn retransmit(&self, branch: &str) {
        let text = self.sent.get(branch).expect("no such request sent");
        self.send_raw(text);
    }

    /// Sends an INVITE (initial or re-INVITE) with an SDP offer, or none, and the agent's
    /// [`Ua::invite_headers`].
    pub fn invite(&mut self, call: &mut Call, sdp: Option<&str>) -> String {
        let extra = self.invite_headers.clone();
        self.send_request(call, "INVITE", &extra, sdp.map(|s| ("application/sdp", s)))
    }

    /// The ACK for a 2xx to the last INVITE of `call` (its own transaction, new branch).
    pub fn ack(&mut self, call: &Call) {
        self.ack_with(call, None);
    }

    /// The ACK for a 2xx, carrying an SDP answer when the 2xx was an offer.
    pub fn ack_with(&mut self, call: &Call, sdp: Option<&str>) {
        let (_, cseq) = call.last_invite.clone().expect("no INVITE to ACK");
        let b = branch();
        let text = self.request_text(
            "ACK",
            call,
            cseq,
            &b,
            "",
            sdp.map(|s| ("application/sdp", s)),
        );
        self.send_ack(&call.call_id, cseq, &text);
        self.sent.insert(b, text);
    }

    /// The ACK for a non-2xx final: same branch, Request-URI and From as the INVITE, To from
    /// the response (RFC 3261 §17.1.1.3).
    pub fn ack_non_2xx(&mut self, branch: &str, resp: &Response) {
        let Some(inv) = self.invites.get(branch) else {
            return;
        };
        let to = resp.headers.get(HeaderName::To).unwrap_or("");
        let text = format!(
            "ACK {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
            inv.ruri, inv.via, inv.from, inv.call_id, inv.cseq
        );
        let (call_id, cseq) = (inv.call_id.clone(), inv.cseq);
        self.send_ack(&call_id, cseq, &text);
    }

    /// CANCELs the last INVITE of `call`; returns the CANCEL's branch (the INVITE's).
    pub fn cancel(&mut self, call: &Call) -> String {
        let (b, _) = call.last_invite.clone().expect("no INVITE to cancel");
        let inv = self.invites.get(&b).expect("INVITE not recorded").clone();
        let text = format!(
            "CANCEL {} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} CANCEL\r\nContent-Length: 0\r\n\r\n",
            inv.ruri, inv.via, inv.from, inv.to, inv.call_id, inv.cseq
        );
        self.send_raw(&text);
        b
    }

    /// Tries to join conference `uri`: INVITE with an audio offer; a 200 is ACKed and the
    /// call learns its dialog (a refusal is ACKed by [`Ua::expect_final`]). Returns the call
    /// and the final response, for tests that expect either.
    pub fn try_join(&mut self, uri: &str) -> (Call, Response) {
        let mut call = Call::new(uri);
        let b = self.invite(&mut call, Some(AUDIO_OFFER));
        let r = self.expect_final(&b);
        if r.status == 200 {
            call.learn(&r);
            self.ack(&call);
        }
        (call, r)
    }

    /// Joins conference `uri`: INVITE with an audio offer, 200, ACK. Returns the call (in
    /// its dialog) and the 200.
    pub fn join(&mut self, uri: &str) -> (Call, Response) {
        let mut call = Call::new(uri);
        let b = self.invite(&mut call, Some(AUDIO_OFFER));
        let ok = self.expect_final(&b);
        assert_eq!(
            ok.status, 200,
            "{}: join refused: {} {}",
            self.name, ok.status, ok.reason
        );
        call.learn(&ok);
        self.ack(&call);
        (call, ok)
    }

    /// BYE in `call`; returns the final response.
    pub fn bye(&mut self, call: &mut Call) -> Response {
        let b = self.send_request(call, "BYE", "", None);
        self.expect_final(&b)
    }

    /// OPTIONS to `uri` outside any dialog; returns the final response.
    pub fn options(&mut self, uri: &str) -> Response {
        let mut call = Call::new(uri);
        let b = self.send_request(&mut call, "OPTIONS", "Accept: application/sdp\r\n", None);
        self.expect_final(&b)
    }

    /// SUBSCRIBE to the conference event package (`expires` None: no Expires header).
    pub fn subscribe(&mut self, call: &mut Call, expires: Option<u32>) -> Response {
        let exp = expires
            .map(|e| format!("Expires: {e}\r\n"))
            .unwrap_or_default();
        let extra =
            format!("Event: conference\r\nAccept: application/conference-info+xml\r\n{exp}");
        let b = self.send_request(call, "SUBSCRIBE", &extra, None);
        let r = self.expect_final(&b);
        if r.status == 200 {
            call.learn(&r);
        }
        r
    }

    /// Subscribes to `uri` and takes the first NOTIFY (full state).
    pub fn subscribe_to(&mut self, uri: &str) -> (Call, super::Notify) {
        let mut call = Call::new(uri);
        let r = self.subscribe(&mut call, None);
        assert_eq!(
            r.status, 200,
            "{}: SUBSCRIBE refused: {} {}",
            self.name, r.status, r.reason
        );
        let n = self.expect_notify();
        assert_eq!(
            n.request.call_id(),
            call.call_id,
            "NOTIFY of another subscription"
        );
        (call, n)
    }
}

impl Ua {
    /// Answers a request the agent received with `status`, adding `to_tag` to To when it has
    /// none, the `extra` header lines (each ending in CRLF) and a body (Content-Type, text).
    pub fn answer(
        &self,
        rx: &Rx,
        status: u16,
        to_tag: Option<&str>,
        extra: &str,
        body: Option<(&str, &str)>,
    ) {
        let req = rx.request().expect("answer a request");
        let reason = cpm_focus::sip::reason_phrase(status);
        let head = super::ua::response_text(req, status, reason, to_tag, extra);
        let text = match body {
            None => head,
            Some((ct, b)) => {
                let head = head
                    .strip_suffix("Content-Length: 0\r\n\r\n")
                    .expect("response head");
                format!(
                    "{head}Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n{b}",
                    b.len()
                )
            }
        };
        self.reply_raw(rx, text.as_bytes());
    }

    /// The agent's Contact header value (for answers that establish a dialog).
    pub fn contact_header(&self) -> String {
        format!("Contact: <{}>\r\n", self.contact_uri())
    }

    /// Sends REFER in `call` (outside or inside a dialog) with `Refer-To: refer_to` and a
    /// Referred-By naming the agent; `extra` header lines end in CRLF. Returns the branch.
    pub fn refer(&mut self, call: &mut Call, refer_to: &str, extra: &str) -> String {
        let headers = format!(
            "Refer-To: {refer_to}\r\nReferred-By: <{}>\r\n{extra}",
            self.aor()
        );
        self.send_request(call, "REFER", &headers, None)
    }
}
