//! SIP dialogs (RFC 3261 §12) as the focus keeps them: one per participant and one per
//! subscription. Pure data and rules; sending is the session's business.

use crate::sip::{HeaderName, MessageWriter, Method, NameAddr, Request, Uri};
use crate::transport::Target;
use thiserror::Error;

/// Why a dialog could not be created or a request in it is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DialogError {
    /// A dialog-creating request needs a Contact with a single SIP URI (RFC 3261 §8.1.1.8).
    #[error("Missing or invalid Contact header")]
    BadContact,
    #[error("Malformed Record-Route header")]
    BadRecordRoute,
    /// RFC 3261 §12.2.2: a request with a CSeq below the last one is out of order (500).
    #[error("CSeq out of order")]
    CSeqOutOfOrder,
}

impl DialogError {
    /// The status this error is answered with.
    pub fn status(&self) -> crate::sip::Status {
        match self {
            DialogError::CSeqOutOfOrder => crate::sip::Status::SERVER_INTERNAL_ERROR,
            _ => crate::sip::Status::BAD_REQUEST,
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The next hop: the first Route when it is a loose router, else the Request-URI.
    pub next_hop: Uri,
    /// A flow to reuse when it is still open: the TCP connection the dialog came in on.
    pub flow: Option<Target>,
}

/// The header values of an INVITE that its ACK (non-2xx) and CANCEL repeat.
#[derive(Debug, Clone)]
pub struct InviteBasis {
    /// From header value, tag included.
    pub from: String,
    /// To header value as sent (no tag).
    pub to: String,
    pub cseq: u32,
    /// Route header values, in order.
    pub routes: Vec<String>,
}

/// Why a request the focus sent got no final response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Timer F (or B) fired.
    Timeout,
    /// The transport refused or lost the message, or the target did not resolve.
    Transport,
}

/// Identifies a dialog at the focus: Call-ID plus the focus's own tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: Box<str>,
    pub local_tag: Box<str>,
}

/// One dialog in which the focus is the UAS side of the creating request.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub id: DialogId,
    pub remote_tag: Box<str>,
    /// The focus's address (the creating request's To, without tag).
    pub local_addr: String,
    /// The peer's address (the creating request's From, without tag).
    pub remote_addr: String,
    /// Where in-dialog requests go (the peer's Contact), refreshed by target refreshes.
    pub remote_target: Uri,
    /// Record-Route of the creating request, in order (RFC 3261 §12.1.1).
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    pub remote_cseq: u32,
    /// The connection the dialog was created on, reused while it lives.
    pub flow: Target,
    /// How closely the peer's requests must follow `flow` (see [`Dialog::on_flow`]).
    pub binding: Binding,
}

/// How an untrusted peer's in-dialog requests are held to the dialog's flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The peer set the dialog up with its own request: the same transport and address, and
    /// for TCP and TLS the same connection.
    Flow,
    /// The focus set the dialog up (a dial-out, a resume after restart) and learned the flow
    /// from the peer's 2xx: the peer may answer on the focus's connection and send its own
    /// requests on another transport or connection (to the focus's Contact), so only its
    /// address is held.
    Host,
}

impl Dialog {
    /// Builds the UAS side of a dialog from its creating request (INVITE or SUBSCRIBE).
    pub fn uas(req: &Request, local_tag: &str, flow: Target) -> Result<Dialog, DialogError> {
        let contact = req
            .headers
            .values(HeaderName::Contact)
            .next()
            .ok_or(DialogError::BadContact)?;
        let contact = NameAddr::parse(contact).map_err(|_| DialogError::BadContact)?;
        if !contact.uri.is_sip() {
            return Err(DialogError::BadContact);
        }
        let mut route_set = Vec::new();
        for rr in req.headers.values(HeaderName::RecordRoute) {
            let a = NameAddr::parse(rr).map_err(|_| DialogError::BadRecordRoute)?;
            if !a.uri.is_sip() {
                return Err(DialogError::BadRecordRoute);
            }
            route_set.push(rr.to_string());
        }
        let mut local_addr = String::new();
        req.to.write_without_tag(&mut local_addr);
        let mut remote_addr = String::new();
        req.from.write_without_tag(&mut remote_addr);
        Ok(Dialog {
            id: DialogId {
                call_id: req.call_id().into(),
                local_tag: local_tag.into(),
            },
            remote_tag: req.from.tag().unwrap_or("").into(),
            local_addr,
            remote_addr,
            remote_target: contact.uri,
            route_set,
            // RFC 3261 §8.1.1.5 only asks for a value below 2^31; start low and random-free,
            // the Call-ID and tags already make our requests unique.
            local_cseq: 1,
            remote_cseq: req.cseq.seq,
            flow,
            binding: Binding::Flow,
        })
    }

    /// Builds the UAC side of a dialog from our INVITE and its 2xx (RFC 3261 §12.1.2): the route
    /// set is the 2xx's Record-Route reversed, the remote target its Contact.
    pub fn uac(
        call_id: &str,
        local_tag: &str,
        local_addr: String,
        remote_addr: String,
        cseq: u32,
        resp: &crate::sip::Response,
        flow: Target,
    ) -> Result<Dialog, DialogError> {
        let contact = resp
            .headers
            .values(HeaderName::Contact)
            .next()
            .ok_or(DialogError::BadContact)?;
        let contact = NameAddr::parse(contact).map_err(|_| DialogError::BadContact)?;
        if !contact.uri.is_sip() {
            return Err(DialogError::BadContact);
        }
        let mut route_set = Vec::new();
        for rr in resp.headers.values(HeaderName::RecordRoute) {
            let a = NameAddr::parse(rr).map_err(|_| DialogError::BadRecordRoute)?;
            if !a.uri.is_sip() {
                return Err(DialogError::BadRecordRoute);
            }
            route_set.push(rr.to_string());
        }
        route_set.reverse();
        Ok(Dialog {
            id: DialogId {
                call_id: call_id.into(),
                local_tag: local_tag.into(),
            },
            remote_tag: resp.to.tag().unwrap_or("").into(),
            local_addr,
            remote_addr,
            remote_target: contact.uri,
            route_set,
            local_cseq: cseq,
            remote_cseq: 0,
            flow,
            binding: Binding::Host,
        })
    }

    /// The ACK for our 2xx to an INVITE with CSeq `cseq` (RFC 3261 §13.2.2.4): a request of
    /// its own, in the dialog, with the INVITE's CSeq number.
    pub fn ack(&self, cseq: u32) -> (String, MessageWriter) {
        let (request_uri, routes) = self.request_uri_and_routes();
        let mut w = MessageWriter::headers_only();
        for r in &routes {
            w.header(HeaderName::Route, r);
        }
        w.header_fmt(
            HeaderName::From,
            format_args!("{};tag={}", self.local_addr, self.id.local_tag),
        );
        w.header_fmt(
            HeaderName::To,
            format_args!("{};tag={}", self.remote_addr, self.remote_tag),
        );
        w.header(HeaderName::CallId, &self.id.call_id);
        w.header_fmt(HeaderName::CSeq, format_args!("{cseq} ACK"));
        w.header(HeaderName::MaxForwards, "70");
        (request_uri, w)
    }

    /// Checks and records the CSeq of an in-dialog request (ACK and CANCEL are not checked).
    pub fn accept_remote_cseq(&mut self, req: &Request) -> Result<(), DialogError> {
        if matches!(req.method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        if req.cseq.seq < self.remote_cseq {
            return Err(DialogError::CSeqOutOfOrder);
        }
        self.remote_cseq = req.cseq.seq;
        Ok(())
    }

    /// A target refresh (re-INVITE, UPDATE, SUBSCRIBE refresh) may change the remote target.
    pub fn refresh_target(&mut self, req: &Request) {
        self.refresh_target_from(&req.headers);
    }

    /// The target refresh of a message's Contact (a request, or the 2xx to our re-INVITE).
    pub fn refresh_target_from(&mut self, headers: &crate::sip::Headers) {
        if let Some(c) = headers.values(HeaderName::Contact).next() {
            if let Ok(a) = NameAddr::parse(c) {
                if a.uri.is_sip() {
                    self.remote_target = a.uri;
                }
            }
        }
    }

    /// Starts an in-dialog request: returns the Request-URI and a writer with Route, From, To,
    /// Call-ID, CSeq and Max-Forwards written (RFC 3261 §12.2.1.1).
    pub fn request(&mut self, method: &Method) -> (String, MessageWriter) {
        self.local_cseq = self.local_cseq.saturating_add(1);
        let (request_uri, routes) = self.request_uri_and_routes();
        let mut w = MessageWriter::headers_only();
        for r in &routes {
            w.header(HeaderName::Route, r);
        }
        w.header_fmt(
            HeaderName::From,
            format_args!("{};tag={}", self.local_addr, self.id.local_tag),
        );
        w.header_fmt(
            HeaderName::To,
            format_args!("{};tag={}", self.remote_addr, self.remote_tag),
        );
        w.header(HeaderName::CallId, &self.id.call_id);
        w.header_fmt(
            HeaderName::CSeq,
            format_args!("{} {}", self.local_cseq, method),
        );
        w.header(HeaderName::MaxForwards, "70");
        (request_uri, w)
    }

    /// What the INVITE client transaction repeats in the ACK of a non-2xx final and in a
    /// CANCEL, for our re-INVITE with CSeq `cseq` in this dialog.
    pub fn invite_basis(&self, cseq: u32) -> InviteBasis {
        let (_, routes) = self.request_uri_and_routes();
        InviteBasis {
            from: format!("{};tag={}", self.local_addr, self.id.local_tag),
            to: format!("{};tag={}", self.remote_addr, self.remote_tag),
            cseq,
            routes,
        }
    }

    /// RFC 3261 §12.2.1.1: with a loose-routing first route, the Request-URI is the remote
    /// target and the route set goes in Route; with a strict router, the first route becomes
    /// the Request-URI and the remote target goes last.
    fn request_uri_and_routes(&self) -> (String, Vec<String>) {
        let first = self.route_set.first().and_then(|r| NameAddr::parse(r).ok());
        match first {
            Some(f) if f.uri.param("lr").is_none() => {
                let mut routes: Vec<String> = self.route_set[1..].to_vec();
                routes.push(format!("<{}>", self.remote_target));
                (f.uri.to_string(), routes)
            }
            _ => (self.remote_target.to_string(), self.route_set.clone()),
        }
    }

    /// RFC 3261 §12.2.2: a request belongs to this dialog only when its Call-ID and both tags
    /// match (the local tag already chose the dialog); a peer without a tag (RFC 2543) has the
    /// empty remote tag.
    pub fn matches(&self, req: &Request) -> bool {
        req.call_id() == &*self.id.call_id && req.from.tag().unwrap_or("") == &*self.remote_tag
    }

    /// The flow in-dialog requests must come on, when the dialog is bound to one: a dialog set
    /// up from an address outside `trusted` (the trusted core vouches for its own dialogs).
    /// `None` also when the flow is unknown (a dialog whose peer address was never seen).
    pub fn bound_flow(&self, trusted: &[std::net::IpAddr]) -> Option<&Target> {
        let ip = self.flow.addr.ip();
        (!ip.is_unspecified() && !trusted.contains(&ip)).then_some(&self.flow)
    }

    /// True when `source` is on the dialog's flow as its [`Binding`] reads it: the same
    /// transport and address, and for TCP and TLS the same connection (when the dialog's
    /// connection is known); or, bound by host, the same IP address.
    pub fn on_flow(&self, source: &Target) -> bool {
        let f = &self.flow;
        if self.binding == Binding::Host {
            return f.addr.ip() == source.addr.ip();
        }
        if f.protocol != source.protocol || f.addr != source.addr {
            return false;
        }
        match (f.protocol.is_reliable(), f.conn) {
            (true, Some(conn)) => source.conn == Some(conn),
            _ => true,
        }
    }

    /// Where the next in-dialog request goes.
    pub fn destination(&self) -> Destination {
        let next_hop = self
            .route_set
            .first()
            .and_then(|r| NameAddr::parse(r).ok())
            .map(|a| a.uri)
            .unwrap_or_else(|| self.remote_target.clone());
        // Connection reuse: a dialog created over TCP keeps using that connection while it is
        // open (the peer may have no listening socket of its own, RFC 5923's concern).
        let flow = self.flow.protocol.is_reliable().then_some(self.flow);
        Destination { next_hop, flow }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse, Framing, Message, ParseLimits};
    use crate::transport::Protocol;
    use bytes::Bytes;

    fn invite(extra: &str, cseq: u32) -> Request {
        let text = format!(
            "INVITE sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nFrom: \"Alice\" <sip:alice@example.com>;tag=a1\r\nTo: <sip:team@focus.example.com>\r\nCall-ID: call-1\r\nCSeq: {cseq} INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match parse(
            Bytes::from(text),
            Framing::Datagram,
            &ParseLimits::default(),
        ) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    fn flow() -> Target {
        Target {
            protocol: Protocol::Udp,
            addr: "10.0.0.1:5060".parse().unwrap(),
            conn: None,
        }
    }

    #[test]
    fn uas_dialog_and_in_dialog_request() {
        let req = invite(
            "Contact: <sip:alice@10.0.0.1:5060>\r\nRecord-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n",
            5,
        );
        let mut d = Dialog::uas(&req, "ftag", flow()).unwrap();
        assert_eq!(d.remote_tag.as_ref(), "a1");
        assert_eq!(d.route_set.len(), 2);
        let (ruri, w) = d.request(&Method::Bye);
        assert_eq!(ruri, "sip:alice@10.0.0.1:5060");
        let text = String::from_utf8(w.finish_empty().to_vec()).unwrap();
        assert!(text
            .starts_with("Route: <sip:p1.example.com;lr>\r\nRoute: <sip:p2.example.com;lr>\r\n"));
        assert!(text.contains("From: <sip:team@focus.example.com>;tag=ftag\r\n"));
        assert!(text.contains("To: \"Alice\" <sip:alice@example.com>;tag=a1\r\n"));
        assert!(text.contains("CSeq: 2 BYE\r\n"));
        assert_eq!(
            d.destination().next_hop.to_string(),
            "sip:p1.example.com;lr"
        );
    }

    #[test]
    fn strict_router_goes_first() {
        let req = invite(
            "Contact: <sip:alice@10.0.0.1>\r\nRecord-Route: <sip:strict.example.com>\r\n",
            1,
        );
        let mut d = Dialog::uas(&req, "t", flow()).unwrap();
        let (ruri, w) = d.request(&Method::Bye);
        assert_eq!(ruri, "sip:strict.example.com");
        let text = String::from_utf8(w.finish_empty().to_vec()).unwrap();
        assert!(text.starts_with("Route: <sip:alice@10.0.0.1>\r\n"));
    }

    #[test]
    fn cseq_rules() {
        let req = invite("Contact: <sip:alice@10.0.0.1>\r\n", 10);
        let mut d = Dialog::uas(&req, "t", flow()).unwrap();
        assert_eq!(d.accept_remote_cseq(&invite("", 11)), Ok(()));
        assert_eq!(
            d.accept_remote_cseq(&invite("", 9)),
            Err(DialogError::CSeqOutOfOrder)
        );
        assert_eq!(DialogError::CSeqOutOfOrder.status(), 500);
    }

    #[test]
    fn flows_and_their_binding() {
        let req = invite("Contact: <sip:alice@10.0.0.1>\r\n", 1);
        let tcp = |port: u16, conn: Option<u64>| Target {
            protocol: Protocol::Tcp,
            addr: std::net::SocketAddr::from(([10, 0, 0, 1], port)),
            conn,
        };
        let mut d = Dialog::uas(&req, "t", tcp(40000, Some(7))).unwrap();
        assert!(d.on_flow(&tcp(40000, Some(7))));
        assert!(!d.on_flow(&tcp(40000, Some(8))), "another connection");
        assert!(!d.on_flow(&flow()), "another transport");
        let trusted: Vec<std::net::IpAddr> = vec!["10.0.0.1".parse().unwrap()];
        assert!(d.bound_flow(&[]).is_some());
        assert!(
            d.bound_flow(&trusted).is_none(),
            "set up by the trusted core"
        );
        d.binding = Binding::Host;
        assert!(d.on_flow(&tcp(40001, Some(8))) && d.on_flow(&flow()));
        let mut elsewhere = flow();
        elsewhere.addr = "10.0.0.66:5060".parse().unwrap();
        assert!(!d.on_flow(&elsewhere));
        d.flow.addr = "0.0.0.0:0".parse().unwrap();
        assert!(
            d.bound_flow(&[]).is_none(),
            "a flow never seen binds nothing"
        );
    }

    #[test]
    fn the_remote_tag_is_part_of_the_dialog() {
        let req = invite("Contact: <sip:alice@10.0.0.1>\r\n", 1);
        let d = Dialog::uas(&req, "t", flow()).unwrap();
        assert!(d.matches(&invite("", 2)));
        let text = "BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\nFrom: <sip:alice@example.com>;tag=other\r\nTo: <sip:team@focus.example.com>;tag=t\r\nCall-ID: call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
        let Ok(Message::Request(bye)) = parse(
            Bytes::from(text),
            Framing::Datagram,
            &ParseLimits::default(),
        ) else {
            panic!()
        };
        assert!(!d.matches(&bye));
    }

    #[test]
    fn contact_required() {
        assert_eq!(
            Dialog::uas(&invite("", 1), "t", flow()).unwrap_err(),
            DialogError::BadContact
        );
        assert_eq!(
            Dialog::uas(&invite("Contact: <mailto:a@b>\r\n", 1), "t", flow()).unwrap_err(),
            DialogError::BadContact
        );
    }
}
