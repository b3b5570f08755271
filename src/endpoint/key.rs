//! Transaction keys (RFC 3261 §17.2.3 and §17.1.3): opaque strings that hide the branch
//! versus RFC 2543 fallback matching behind `Hash + Eq`.

use crate::sip::{Method, Request, Response};
use std::fmt::Write as _;
use std::sync::Arc;

/// Identifies one transaction inside a shard.
pub type TsxKey = Arc<str>;

/// The method a key is filed under: ACK matches the INVITE transaction it acknowledges.
fn key_method(m: &Method) -> &str {
    match m {
        Method::Ack => "INVITE",
        other => other.as_str(),
    }
}

/// Server transaction key of a request.
pub fn server_key(req: &Request) -> TsxKey {
    let mut k = String::with_capacity(96 + req.call_id().len());
    let via = &req.via;
    if via.has_rfc3261_branch() {
        // branch + sent-by + method (RFC 3261 §17.2.3), plus Call-ID and CSeq number: a
        // retransmission carries the same ones (so do the ACK and CANCEL of an INVITE), and
        // two requests that differ in them are two requests whatever their branch. RFC 4475
        // §3.3.2 and §3.3.3 share one branch: matched on branch alone, the second would be
        // "answered" with the first's response, at the first's address. NUL cannot occur in
        // a Call-ID, so the fields cannot run into each other.
        let _ = write!(
            k,
            "S3|{}|{}:{}|{}\u{0}{}|{}",
            via.branch().unwrap_or(""),
            via.host,
            via.port.unwrap_or(0),
            req.call_id(),
            req.cseq.seq,
            key_method(&req.method)
        );
    } else {
        // RFC 2543 fallback: Request-URI, From tag, Call-ID, CSeq and top Via. The To tag is
        // left out so that the ACK (which carries our tag) finds its INVITE.
        let _ = write!(
            k,
            "S2|{}|{}|{}|{}|{}:{}|{}|{}",
            req.uri,
            req.from.tag().unwrap_or(""),
            req.call_id(),
            req.cseq.seq,
            via.host,
            via.port.unwrap_or(0),
            via.branch().unwrap_or(""),
            key_method(&req.method)
        );
    }
    k.into()
}

/// The key of the INVITE transaction a CANCEL targets.
pub fn cancelled_invite_key(cancel: &Request) -> TsxKey {
    let as_invite = server_key(cancel);
    // Same fields, method INVITE instead of CANCEL.
    let s = as_invite
        .strip_suffix("CANCEL")
        .map(|p| format!("{p}INVITE"))
        .unwrap_or_else(|| as_invite.to_string());
    s.into()
}

/// Client transaction key from our own branch and the method.
pub fn client_key(branch: &str, method: &Method) -> TsxKey {
    format!("C|{branch}|{}", key_method(method)).into()
}

/// Client transaction key a response matches (RFC 3261 §17.1.3).
pub fn response_key(resp: &Response) -> TsxKey {
    client_key(resp.branch().unwrap_or(""), &resp.cseq.method)
}

/// Key of an INVITE 2xx awaiting its ACK: Call-ID and our To tag identify the dialog.
pub fn ack_key(call_id: &str, local_tag: &str) -> Box<str> {
    let mut k = String::with_capacity(call_id.len() + local_tag.len() + 1);
    k.push_str(call_id);
    k.push('\u{0}');
    k.push_str(local_tag);
    k.into()
}

/// Key used to detect merged requests (RFC 3261 §8.2.2.2): From tag, Call-ID, CSeq.
pub fn merge_key(req: &Request) -> Option<Box<str>> {
    if req.to.tag().is_some() || matches!(req.method, Method::Ack | Method::Cancel) {
        return None;
    }
    let from_tag = req.from.tag()?;
    Some(format!("{from_tag}\u{0}{}\u{0}{}", req.call_id(), req.cseq.seq).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{parse, Framing, Message, ParseLimits};
    use bytes::Bytes;

    fn req(method: &str, branch: &str, cseq_method: &str) -> Request {
        req_in(method, branch, cseq_method, "c")
    }

    fn req_in(method: &str, branch: &str, cseq_method: &str, call_id: &str) -> Request {
        let text = format!(
            "{method} sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\nFrom: <sip:x@y>;tag=f\r\nTo: <sip:a@b>\r\nCall-ID: {call_id}\r\nCSeq: 1 {cseq_method}\r\nContent-Length: 0\r\n\r\n"
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

    #[test]
    fn ack_and_cancel_find_the_invite() {
        let inv = req("INVITE", "z9hG4bK1", "INVITE");
        let ack = req("ACK", "z9hG4bK1", "ACK");
        let cancel = req("CANCEL", "z9hG4bK1", "CANCEL");
        assert_eq!(server_key(&inv), server_key(&ack));
        assert_ne!(server_key(&inv), server_key(&cancel));
        assert_eq!(cancelled_invite_key(&cancel), server_key(&inv));
        // RFC 2543 style (no cookie), including a bare cookie.
        let inv = req("INVITE", "z9hG4bK", "INVITE");
        let ack = req("ACK", "z9hG4bK", "ACK");
        let cancel = req("CANCEL", "z9hG4bK", "CANCEL");
        assert!(server_key(&inv).starts_with("S2|"));
        assert_eq!(server_key(&inv), server_key(&ack));
        assert_eq!(cancelled_invite_key(&cancel), server_key(&inv));
    }

    #[test]
    fn one_branch_in_two_calls_is_two_transactions() {
        // Regression (RFC 4475 §3.3.2/§3.3.3 share a branch): the second request was taken
        // for a retransmission of the first and never answered at its own address.
        let a = req_in("OPTIONS", "z9hG4bKkdjuw39234", "OPTIONS", "unkscm.1");
        let b = req_in("OPTIONS", "z9hG4bKkdjuw39234", "OPTIONS", "novelsc.1");
        assert_ne!(server_key(&a), server_key(&b));
        assert_eq!(server_key(&a), server_key(&a.clone()));
    }
}
