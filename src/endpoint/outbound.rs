//! Requests the focus originates (NOTIFY, BYE; later INVITE, MESSAGE): choose the next hop and
//! transport (RFC 3261 §8.1.2, §18.1.1, connection reuse), add the Via with a fresh branch, and
//! hand the message to the shard that owns its Call-ID.

use super::{new_branch, Failure, Inner, TuCommand, TuEvent, TuHandle};
use crate::dialog::{Destination, InviteBasis};
use crate::sip::{Host, Method, Uri};
use crate::transport::{Protocol, Target};
use bytes::{BufMut, Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;

/// Over UDP, messages larger than this go over TCP when the peer accepts it (RFC 3261 §18.1.1).
const UDP_SIZE_LIMIT: usize = 1300;

/// A request for the endpoint to send.
pub struct OutgoingRequest {
    pub method: Method,
    pub request_uri: String,
    /// Every header after Via, the empty line and the body (see
    /// [`crate::sip::MessageWriter::headers_only`]).
    pub rest: Bytes,
    pub call_id: Box<str>,
    pub destination: Destination,
    /// The TU's correlation value, echoed in [`TuEvent`]s.
    pub token: u64,
    pub tu: TuHandle,
    /// For INVITE: what the transaction needs to build the ACK for a non-2xx final and a
    /// CANCEL (RFC 3261 §17.1.1.3, §9.1).
    pub invite: Option<InviteBasis>,
}

/// A request ready for its client transaction.
pub(super) struct Prepared {
    pub bytes: Bytes,
    pub target: Target,
    pub branch: String,
    pub method: Method,
    pub token: u64,
    pub tu: TuHandle,
    pub call_id: Box<str>,
    /// INVITE only: the pieces of its ACK and CANCEL.
    pub invite: Option<Box<InviteCtx>>,
}

/// What an INVITE client transaction keeps to build its ACK and CANCEL.
pub(super) struct InviteCtx {
    pub request_uri: String,
    /// Top Via value (same branch for ACK and CANCEL).
    pub via: String,
    pub basis: InviteBasis,
}

impl InviteCtx {
    /// A request that repeats the INVITE's Request-URI, Via, Route, From, Call-ID and CSeq
    /// number, with `method` and the given To.
    pub fn build(&self, method: &str, call_id: &str, to: &str) -> Bytes {
        let b = &self.basis;
        let mut out = BytesMut::with_capacity(512);
        let mut line = |name: &str, value: &str| {
            out.put_slice(name.as_bytes());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        };
        line("Via", &self.via);
        for r in &b.routes {
            line("Route", r);
        }
        line("From", &b.from);
        line("To", to);
        line("Call-ID", call_id);
        line("CSeq", &format!("{} {method}", b.cseq));
        line("Max-Forwards", "70");
        line("Content-Length", "0");
        let mut msg = BytesMut::with_capacity(out.len() + self.request_uri.len() + 32);
        msg.put_slice(format!("{method} {} SIP/2.0\r\n", self.request_uri).as_bytes());
        msg.put_slice(&out);
        msg.put_slice(b"\r\n");
        msg.freeze()
    }
}

pub(super) fn send(inner: Arc<Inner>, req: OutgoingRequest) {
    let size = req.rest.len() + req.request_uri.len() + 128;
    let (uri, flow) = match proxy_uri(&inner) {
        Some(proxy) => (proxy, None),
        None => (req.destination.next_hop.clone(), req.destination.flow),
    };
    // Fast path: an open TCP flow, or an IP literal over UDP with a small message.
    if let Some(flow) = flow {
        if inner
            .transports
            .stream(flow.protocol)
            .is_some_and(|s| s.has_route(flow.conn, flow.addr))
        {
            dispatch(&inner, req, flow);
            return;
        }
    }
    let protocol = uri_protocol(&uri);
    let port = uri.port.unwrap_or(if protocol == Protocol::Tls {
        5061
    } else {
        5060
    });
    if let (Some(ip), Protocol::Udp) = (uri.host.as_ref().and_then(Host::ip), protocol) {
        if size <= UDP_SIZE_LIMIT {
            let target = Target {
                protocol: Protocol::Udp,
                addr: SocketAddr::new(ip, port),
                conn: None,
            };
            dispatch(&inner, req, target);
            return;
        }
    }
    let rt = inner.runtime.clone();
    rt.spawn(async move {
        match resolve(&inner, &uri, protocol, port, size).await {
            Some(target) => dispatch(&inner, req, target),
            None => {
                metrics::counter!("focus_sip_requests_failed_total", "reason" => "unroutable")
                    .increment(1);
                req.tu.on_event(TuEvent::Failed {
                    token: req.token,
                    failure: Failure::Transport,
                });
            }
        }
    });
}

fn proxy_uri(inner: &Inner) -> Option<Uri> {
    let p = inner.settings.outbound_proxy.as_deref()?;
    Uri::parse(&format!("sip:{p}")).ok()
}

/// The transport a URI asks for: TLS for `sips:` (RFC 5630) and `transport=tls`.
fn uri_protocol(uri: &Uri) -> Protocol {
    if uri.scheme == crate::sip::Scheme::Sips {
        return Protocol::Tls;
    }
    match uri.param("transport").flatten() {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Protocol::Tcp,
        Some(t) if t.eq_ignore_ascii_case("tls") => Protocol::Tls,
        _ => Protocol::Udp,
    }
}

async fn resolve(
    inner: &Arc<Inner>,
    uri: &Uri,
    protocol: Protocol,
    port: u16,
    size: usize,
) -> Option<Target> {
    let host = uri.host.as_ref()?;
    let addr = match host {
        Host::Ip(ip) => SocketAddr::new(*ip, port),
        Host::Domain(name) => tokio::net::lookup_host((name.as_ref(), port))
            .await
            .ok()?
            .next()?,
    };
    if protocol == Protocol::Tls {
        // Never downgraded: a sips: target is reached over TLS or not at all.
        let tls = inner.transports.tls.as_ref()?;
        let name = match host {
            Host::Ip(ip) => ip.to_string(),
            Host::Domain(d) => d.to_string(),
        };
        let conn = tls.connect(addr, &name).await.ok()?;
        return Some(Target {
            protocol: Protocol::Tls,
            addr,
            conn: Some(conn),
        });
    }
    let want_tcp = protocol == Protocol::Tcp || size > UDP_SIZE_LIMIT;
    if want_tcp {
        match inner.transports.tcp.connect(addr, "").await {
            Ok(conn) => {
                return Some(Target {
                    protocol: Protocol::Tcp,
                    addr,
                    conn: Some(conn),
                })
            }
            // RFC 3261 §18.1.1: a large request falls back to UDP when TCP cannot be used.
            Err(_) if protocol == Protocol::Udp => {}
            Err(_) => return None,
        }
    }
    Some(Target {
        protocol: Protocol::Udp,
        addr,
        conn: None,
    })
}

fn dispatch(inner: &Arc<Inner>, req: OutgoingRequest, target: Target) {
    let branch = new_branch();
    let peer = target.addr.ip();
    let local_port = inner
        .transports
        .local_addr_for(target.protocol, peer)
        .port();
    let via = format!(
        "SIP/2.0/{} {};branch={};rport",
        target.protocol.via_token(),
        inner.settings.advertised.for_ip(peer).with_port(local_port),
        branch
    );
    let mut buf = BytesMut::with_capacity(req.rest.len() + req.request_uri.len() + 160);
    buf.put_slice(req.method.as_str().as_bytes());
    buf.put_u8(b' ');
    buf.put_slice(req.request_uri.as_bytes());
    buf.put_slice(b" SIP/2.0\r\nVia: ");
    buf.put_slice(via.as_bytes());
    buf.put_slice(b"\r\n");
    buf.put_slice(&req.rest);
    let bytes = buf.freeze();
    if req.method == Method::Ack {
        // The ACK for a 2xx is a transaction of its own, sent once (RFC 3261 §13.2.2.4).
        let _ = inner.transports.send(&target, bytes);
        return;
    }
    let shard = super::shard_index(&req.call_id, inner.tu.len());
    let invite = req.invite.map(|basis| {
        Box::new(InviteCtx {
            request_uri: req.request_uri.clone(),
            via,
            basis,
        })
    });
    let prepared = Prepared {
        bytes,
        target,
        branch,
        method: req.method,
        token: req.token,
        tu: req.tu,
        call_id: req.call_id,
        invite,
    };
    if let Err(e) = inner.tu[shard].send(TuCommand::Send(Box::new(prepared))) {
        if let TuCommand::Send(p) = e.0 {
            p.tu.on_event(TuEvent::Failed {
                token: p.token,
                failure: Failure::Transport,
            });
        }
    }
}
