//! Conference control from the agents' side: the INVITE the focus sends to a participant it
//! calls (REFER), the answers to it, refer NOTIFYs (`message/sipfrag`), and moderation
//! requests (`application/vnd.cpm-focus.control+json`).

use super::msrp::{Endpoint, MsrpClient, MsrpMedia};
use super::ua::{Rx, Ua};
use super::{Call, WAIT};
use cpm_focus::media::msrp::MsrpUri;
use cpm_focus::sip::{HeaderName, Method, NameAddr, Request, Response};
use std::sync::atomic::{AtomicU64, Ordering};

/// The moderation body type.
pub const CONTROL: &str = "application/vnd.cpm-focus.control+json";

static TAGS: AtomicU64 = AtomicU64::new(1);

/// An INVITE the focus sent to this agent (a dial-out after REFER).
pub struct Invited {
    pub rx: Rx,
    /// Our To tag in the answers (the dialog's local tag on our side).
    pub tag: String,
    /// The focus's SDP offer.
    pub offer: String,
    /// The focus's MSRP URI in the offer (its `a=path`).
    pub focus_path: MsrpUri,
}

impl Invited {
    pub fn request(&self) -> &Request {
        self.rx.request().expect("an INVITE")
    }

    /// A header value of the INVITE.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.request().headers.get(name)
    }

    /// The dialog our requests use once we answered 2xx.
    pub fn call(&self) -> Call {
        Call::answering(self.request(), &self.tag)
    }
}

impl Ua {
    /// The next INVITE the focus sends this agent (within [`WAIT`]), with its MSRP offer.
    pub fn expect_invite(&mut self) -> Invited {
        let rx = self.expect_request(Method::Invite, WAIT);
        let req = rx.request().unwrap();
        let offer = String::from_utf8(req.body.to_vec()).expect("SDP offer is text");
        let media = MsrpMedia::find(&offer).unwrap_or_else(|| {
            panic!("{}: no m=message in the focus's offer:\n{offer}", self.name)
        });
        let path = media
            .attr("path")
            .unwrap_or_else(|| panic!("no a=path in the focus's offer:\n{offer}"));
        let focus_path = MsrpUri::parse(path).unwrap_or_else(|e| panic!("a=path {path}: {e}"));
        Invited {
            rx,
            tag: format!("callee{}", TAGS.fetch_add(1, Ordering::Relaxed)),
            offer,
            focus_path,
        }
    }

    /// A provisional answer (180 Ringing) to the focus's INVITE.
    pub fn ring(&self, inv: &Invited) {
        let contact = self.contact_header();
        self.answer(&inv.rx, 180, Some(&inv.tag), &contact, None);
    }

    /// 200 with `endpoint`'s SDP as the answer; waits for the focus's ACK (checked to be in
    /// the dialog) and returns it with the dialog.
    pub fn accept(&mut self, inv: &Invited, endpoint: &Endpoint) -> (Call, Request) {
        let contact = self.contact_header();
        let sdp = endpoint.offer();
        self.answer(
            &inv.rx,
            200,
            Some(&inv.tag),
            &contact,
            Some(("application/sdp", &sdp)),
        );
        let ack = self.expect_request(Method::Ack, WAIT);
        let ack = ack.request().unwrap().clone();
        assert_eq!(
            ack.call_id(),
            inv.request().call_id(),
            "ACK of another call"
        );
        assert_eq!(
            ack.to.tag(),
            Some(inv.tag.as_str()),
            "ACK outside our dialog"
        );
        assert_eq!(ack.cseq.seq, inv.request().cseq.seq, "ACK CSeq");
        (inv.call(), ack)
    }

    /// Accepts with a fresh active MSRP end, connects it to the focus and binds.
    pub fn accept_chat(&mut self, inv: &Invited) -> (Call, MsrpClient) {
        let mut end = self.chat_end(super::msrp::Setup::Active);
        let (call, _) = self.accept(inv, &end);
        let mut msrp = end.connect(&inv.focus_path);
        msrp.bind();
        (call, msrp)
    }

    /// A final refusal (486, 603...) to the focus's INVITE; the focus's transaction ACKs it
    /// (same branch), which this waits for.
    pub fn refuse_invite(&mut self, inv: &Invited, status: u16) -> Request {
        self.answer(&inv.rx, status, Some(&inv.tag), "", None);
        let ack = self.expect_request(Method::Ack, WAIT);
        let ack = ack.request().unwrap().clone();
        assert_eq!(
            ack.call_id(),
            inv.request().call_id(),
            "ACK of another call"
        );
        assert_eq!(
            ack.branch(),
            inv.request().branch(),
            "a non-2xx ACK keeps the branch"
        );
        ack
    }

    /// The BYE the focus sends in `call`, answered 200.
    pub fn expect_bye(&mut self, call: &Call) -> Request {
        let bye = self.wait_for(WAIT, |m| {
            m.request()
                .is_some_and(|r| r.method == Method::Bye && r.call_id() == call.call_id)
        });
        let bye = bye.unwrap_or_else(|| panic!("{}: no BYE in {}", self.name, call.call_id));
        self.respond(&bye, 200);
        bye.request().unwrap().clone()
    }

    /// A moderation request (`method` INFO or MESSAGE) in `call` with `body`; the final
    /// response.
    pub fn control(&mut self, call: &mut Call, method: &str, body: &str) -> Response {
        let b = self.send_request(call, method, "", Some((CONTROL, body)));
        self.expect_final(&b)
    }
}

/// The status line a refer NOTIFY carries, after checking its headers: `Event` is `event`,
/// the body is `message/sipfrag`.
pub fn sipfrag(n: &Rx, event: &str) -> String {
    let req = n.request().expect("a NOTIFY");
    assert_eq!(req.method, Method::Notify);
    assert_eq!(
        req.headers.get(HeaderName::Event),
        Some(event),
        "{}",
        n.text()
    );
    let ct = req.headers.get(HeaderName::ContentType).unwrap_or("");
    assert!(
        ct.to_ascii_lowercase().starts_with("message/sipfrag"),
        "Content-Type {ct:?}"
    );
    let body = String::from_utf8(req.body.to_vec()).expect("sipfrag is text");
    body.lines().next().unwrap_or("").to_string()
}

/// The `Subscription-State` of a NOTIFY.
pub fn subscription_state(n: &Rx) -> String {
    n.request()
        .and_then(|r| r.headers.get(HeaderName::SubscriptionState))
        .unwrap_or("")
        .to_string()
}

/// The URI of a name-addr header value.
pub fn uri_of(value: &str) -> String {
    NameAddr::parse(value)
        .unwrap_or_else(|e| panic!("{value:?}: {e}"))
        .uri
        .to_string()
}
