//! IPv6 end to end (issue 13, item 4): the main scenarios (join, SUBSCRIBE and NOTIFY, chat
//! over MSRP, a talk burst with BFCP and RTP through the focus, leave) over `[::1]` and over
//! 127.0.0.1, a dial-out to an IPv6 target, and a focus listening on both families at once.
//!
//! Every URI the focus writes is parsed back with the project's own parser and must be well
//! formed (RFC 3261 §25 with RFC 5118: an IPv6 reference in brackets) and name the focus's
//! address of the peer's family: Via sent-by, Contact, From/To, Record-Route, Request-URIs,
//! MSRP paths (`a=path`, To-Path/From-Path), and SDP `o=`/`c=` (`IN IP6 ::1`, no brackets).
//!
//! A machine without an IPv6 loopback fails these tests with a message saying so: they must
//! never pass without having run.

mod support;

use cpm_focus::media::msrp::MsrpUri;
use cpm_focus::sip::{HeaderName, Host, NameAddr, Request, Response, Uri, Via};
use std::net::{IpAddr, Ipv6Addr, UdpSocket};
use support::talk::Talker;
use support::{user_count, Call, Chat, Focus, Launch, MsrpClient, Notify, Setup, Ua, TEAM};

const TALK: &str = "sip:talk@focus.example.com";

const V4: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// The team chat, a talk-burst group, and moderators who may add participants.
const GROUPS: &str = r#"
[policy]
allowed_media = ["msrp", "audio"]
trusted_hosts = ["127.0.0.1", "::1"]
[rtp]
silence_timeout_s = 60
[[groups]]
uri = "sip:team@focus.example.com"
[[groups.members]]
uri = "sip:alice@example.com"
role = "moderator"
[[groups]]
uri = "sip:talk@focus.example.com"
display_name = "Talk"
codecs = ["PCMU/8000"]
"#;

/// `::1`, after checking this machine can use it: a loud failure otherwise, never a pass.
fn ipv6_loopback() -> IpAddr {
    if let Err(e) = UdpSocket::bind((V6, 0)) {
        panic!(
            "this machine has no usable IPv6 loopback (binding [::1]: {e}); the IPv6 tests \
             cannot run. Enable it (sysctl net.ipv6.conf.lo.disable_ipv6=0) rather than \
             skipping them."
        );
    }
    V6
}

/// A focus whose SIP, SIP over TLS and MSRP listen on `ips` (the first is the primary).
fn focus_on(ips: &[IpAddr]) -> Focus {
    Focus::launch(
        GROUPS,
        Launch {
            ips: ips.to_vec(),
            ..Launch::default()
        },
    )
}

/// The host a URI or Via must name for `ip`.
fn host(ip: IpAddr) -> Host {
    Host::Ip(ip)
}

/// A header value that must be a well-formed name-addr (or addr-spec).
fn name_addr(what: &str, value: &str) -> NameAddr {
    NameAddr::parse(value).unwrap_or_else(|e| panic!("{what} {value:?} is malformed: {e}"))
}

/// The headers every message of the focus carries, parsed back: From, To, every Via and
/// Record-Route; and the raw text never holds an IPv6 address unbracketed in a URI.
fn check_common(what: &str, headers: &cpm_focus::sip::Headers) {
    for name in [HeaderName::From, HeaderName::To] {
        let v = headers
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name:?}"));
        name_addr(&format!("{what}: {name:?}"), v);
    }
    for v in headers.values(HeaderName::Via) {
        Via::parse(v).unwrap_or_else(|e| panic!("{what}: Via {v:?} is malformed: {e}"));
    }
    for v in headers.values(HeaderName::RecordRoute) {
        name_addr(&format!("{what}: Record-Route"), v);
    }
}

/// The focus's Contact: well formed, `;isfocus`, naming the focus at `focus_ip`.
fn check_contact(what: &str, headers: &cpm_focus::sip::Headers, focus_ip: IpAddr) -> Uri {
    let v = headers
        .get(HeaderName::Contact)
        .unwrap_or_else(|| panic!("{what}: no Contact"));
    let c = name_addr(&format!("{what}: Contact"), v);
    assert!(
        c.param("isfocus").is_some(),
        "{what}: Contact {v} without ;isfocus"
    );
    assert_eq!(
        c.uri.host.as_ref(),
        Some(&host(focus_ip)),
        "{what}: Contact {v} does not name the focus at {focus_ip}"
    );
    assert!(c.uri.port.is_some(), "{what}: Contact {v} without port");
    c.uri
}

/// A response of the focus to a request of ours.
fn check_response(what: &str, r: &Response, focus_ip: IpAddr) {
    check_common(what, &r.headers);
    if r.headers.get(HeaderName::Contact).is_some() {
        check_contact(what, &r.headers, focus_ip);
    }
    if !r.body.is_empty() && r.headers.get(HeaderName::ContentType) == Some("application/sdp") {
        check_sdp(what, &String::from_utf8_lossy(&r.body), focus_ip);
    }
}

/// A request the focus sent us at `our_ip`: its Request-URI names us, its top Via names the
/// focus (sent-by with a port), its Contact (when it has one) names the focus.
fn check_request(what: &str, req: &Request, focus_ip: IpAddr, our_ip: IpAddr) {
    check_common(what, &req.headers);
    assert_eq!(
        req.uri.host.as_ref(),
        Some(&host(our_ip)),
        "{what}: Request-URI {} does not name us",
        req.uri
    );
    assert_eq!(req.via.host, host(focus_ip), "{what}: Via {:?}", req.via);
    assert!(req.via.port.is_some(), "{what}: Via without port");
    if req.headers.get(HeaderName::Contact).is_some() {
        check_contact(what, &req.headers, focus_ip);
    }
    if req.headers.get(HeaderName::ContentType) == Some("application/sdp") {
        check_sdp(what, &String::from_utf8_lossy(&req.body), focus_ip);
    }
}

/// SDP of the focus: parses, `o=` and `c=` are `IN IP4`/`IN IP6` with the focus's address
/// (no brackets), every MSRP `a=path` is a well-formed URI naming the focus.
fn check_sdp(what: &str, text: &str, focus_ip: IpAddr) {
    let sdp = cpm_focus::sdp::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("{what}: SDP does not parse ({e}):\n{text}"));
    let family = if focus_ip.is_ipv6() { "IP6" } else { "IP4" };
    let o = &sdp.origin;
    assert_eq!(
        (
            o.nettype.as_str(),
            o.addrtype.as_str(),
            o.address.parse().ok()
        ),
        ("IN", family, Some(focus_ip)),
        "{what}: o= line:\n{text}"
    );
    let mut connections: Vec<_> = sdp.connection.iter().collect();
    for m in sdp.media.iter().filter(|m| m.port != 0) {
        connections.extend(m.connections.iter());
        for path in m.path() {
            let uri = MsrpUri::parse(path)
                .unwrap_or_else(|e| panic!("{what}: a=path {path} is malformed: {e}"));
            assert_eq!(uri.host, host(focus_ip), "{what}: a=path {path}");
        }
    }
    assert!(!connections.is_empty(), "{what}: no c= line:\n{text}");
    for c in connections {
        assert_eq!(
            (c.addrtype.as_str(), c.address.parse().ok()),
            (family, Some(focus_ip)),
            "{what}: c= line (never bracketed):\n{text}"
        );
    }
    for line in text
        .lines()
        .filter(|l| l.starts_with("o=") || l.starts_with("c="))
    {
        assert!(!line.contains('['), "{what}: brackets in {line}");
    }
}

/// A chat message received from the focus: its paths name the focus and us.
fn check_paths(what: &str, m: &support::Received, focus_ip: IpAddr, our_ip: IpAddr) {
    let r = &m.request;
    assert!(!r.from_path.is_empty() && !r.to_path.is_empty(), "{what}");
    assert_eq!(r.from_path[0].host, host(focus_ip), "{what}: From-Path");
    assert_eq!(r.to_path[0].host, host(our_ip), "{what}: To-Path");
}

/// A subscriber that checks every NOTIFY it takes.
struct Watcher {
    ua: Ua,
    view: cpm_focus::conference_info::ConferenceInfo,
    focus_ip: IpAddr,
    notifies: usize,
}

impl Watcher {
    /// Subscribes over TCP (the 200 and the first NOTIFY checked).
    fn new(focus: &Focus, ip: IpAddr, uri: &str) -> Watcher {
        let mut ua = Ua::tcp_at(focus, "watcher", ip);
        let mut call = Call::new(uri);
        let ok = ua.subscribe(&mut call, None);
        assert_eq!(ok.status, 200, "SUBSCRIBE: {} {}", ok.status, ok.reason);
        check_response("SUBSCRIBE 200", &ok, ip);
        let n = ua.expect_notify();
        check_request("first NOTIFY", &n.request, ip, ip);
        Watcher {
            ua,
            view: n.doc,
            focus_ip: ip,
            notifies: 1,
        }
    }

    /// Follows NOTIFYs, each checked, until `done` holds.
    fn until(&mut self, mut done: impl FnMut(&cpm_focus::conference_info::ConferenceInfo) -> bool) {
        while !done(&self.view) {
            let n: Notify = self
                .ua
                .next_notify(std::time::Duration::from_secs(10))
                .unwrap_or_else(|| panic!("the view never got there: {:#?}", self.view));
            check_request("NOTIFY", &n.request, self.focus_ip, self.focus_ip);
            cpm_focus::conference_info::apply(&mut self.view, &n.doc)
                .unwrap_or_else(|e| panic!("NOTIFY does not follow the view: {e}"));
            self.notifies += 1;
        }
    }
}

/// Joins the team chat from `ip` (UDP or TCP), checks the 200 and its SDP, connects MSRP.
fn chat_member(
    focus: &Focus,
    name: &str,
    ip: IpAddr,
    tcp: bool,
    setup: Setup,
) -> (Ua, Chat, MsrpClient) {
    let mut ua = if tcp {
        Ua::tcp_at(focus, name, ip)
    } else {
        Ua::udp_at(focus, name, ip)
    };
    let mut chat = ua.join_chat(TEAM, setup);
    check_response(&format!("{name}: INVITE 200"), &chat.ok, ip);
    assert_eq!(chat.focus_path.host, host(ip), "{name}: the focus's a=path");
    let mut msrp = chat.connect();
    match setup {
        Setup::Active => msrp.bind(),
        // The focus connected to us: its binding SEND names it and us in this family.
        Setup::Passive => {
            let bind = msrp
                .next_chunk(support::WAIT)
                .unwrap_or_else(|| panic!("{name}: no binding SEND from the focus"));
            assert_eq!(
                bind.from_path[0].host,
                host(ip),
                "{name}: binding From-Path"
            );
            assert_eq!(bind.to_path[0].host, host(ip), "{name}: binding To-Path");
        }
    }
    (ua, chat, msrp)
}

/// A talk-burst participant from `ip`: audio and BFCP accepted, the answer checked.
fn talker(focus: &Focus, name: &str, ip: IpAddr) -> (Ua, Talker) {
    let mut ua = Ua::udp_at(focus, name, ip);
    let mut t = ua.join_talk(TALK);
    check_response(&format!("{name}: talk 200"), &t.ok, ip);
    assert_eq!(
        t.focus_rtp.ip(),
        ip,
        "{name}: RTP of the focus:\n{}",
        t.answer
    );
    assert_eq!(
        t.bfcp_addr.map(|a| a.ip()),
        Some(ip),
        "{name}: BFCP:\n{}",
        t.answer
    );
    t.connect_bfcp();
    (ua, t)
}

/// Join, SUBSCRIBE/NOTIFY, chat over MSRP, a talk burst and leave, all over `ip`.
fn main_scenarios(ip: IpAddr) {
    let focus = focus_on(&[ip]);
    let mut w = Watcher::new(&focus, ip, TEAM);

    // Chat: alice over UDP (she connects to the focus), bob over TCP (the focus connects to
    // him: its own MSRP connection to an address of this family).
    let (mut alice, mut a_chat, mut a_msrp) =
        chat_member(&focus, "alice", ip, false, Setup::Active);
    let (mut bob, mut b_chat, mut b_msrp) = chat_member(&focus, "bob", ip, true, Setup::Passive);
    w.until(|v| user_count(v) == Some(2));
    assert_eq!(a_msrp.say("hello over the wire").code, 200);
    let got = b_msrp.expect_message();
    assert_eq!(got.text(), "hello over the wire");
    check_paths("bob's SEND", &got, ip, ip);
    assert_eq!(b_msrp.say("and back").code, 200);
    let got = a_msrp.expect_message();
    check_paths("alice's SEND", &got, ip, ip);

    // A talk burst: carol holds the floor, her RTP reaches dan through the focus.
    let (mut carol_ua, mut carol) = talker(&focus, "carol", ip);
    let (mut dan_ua, dan) = talker(&focus, "dan", ip);
    let (req, status, _) = carol.request_floor();
    assert_eq!(
        status,
        cpm_focus::push_to_talk::bfcp::RequestStatus::Granted
    );
    carol.send_rtp(5);
    let heard = dan.expect_rtp(5);
    assert!(String::from_utf8_lossy(&heard[0].payload).starts_with("carol "));
    assert_eq!(
        carol.bfcp().release(req),
        cpm_focus::push_to_talk::bfcp::RequestStatus::Released
    );

    // Leave: every BYE answered by the focus, the watcher sees them go.
    for (ua, call) in [
        (&mut alice, &mut a_chat.call),
        (&mut bob, &mut b_chat.call),
        (&mut carol_ua, &mut carol.call),
        (&mut dan_ua, &mut dan.call.clone()),
    ] {
        let r = ua.bye(call);
        assert_eq!(r.status, 200, "{}: BYE {} {}", ua.name, r.status, r.reason);
        check_response(&format!("{}: BYE 200", ua.name), &r, ip);
    }
    w.until(|v| user_count(v) == Some(0));
    assert!(w.notifies >= 3, "the watcher saw {} NOTIFYs", w.notifies);
}

#[test]
fn the_main_scenarios_over_ipv4() {
    main_scenarios(V4);
}

#[test]
fn the_main_scenarios_over_ipv6() {
    main_scenarios(ipv6_loopback());
}

/// A moderator's REFER makes the focus call `sip:dan@[::1]:port`: its INVITE (Request-URI,
/// Via, Contact, SDP offer with an `msrp://[::1]` path) is well formed and dan joins the chat.
#[test]
fn the_focus_dials_out_to_an_ipv6_target() {
    let ip = ipv6_loopback();
    let focus = focus_on(&[ip]);
    let (mut alice, _chat, mut a_msrp) = chat_member(&focus, "alice", ip, false, Setup::Active);
    let mut dan = Ua::udp_at(&focus, "dan", ip);
    let target = format!("sip:dan@{}", dan.local);
    assert!(target.contains("@[::1]:"), "{target}");

    let mut refer = Call::new(TEAM);
    let b = alice.refer(&mut refer, &format!("<{target}>"), "");
    let accepted = alice.expect_final(&b);
    assert_eq!(accepted.status, 202, "{accepted:?}");
    check_response("REFER 202", &accepted, ip);
    let trying = alice.expect_sipfrag();
    check_request("refer NOTIFY", trying.request().unwrap(), ip, ip);

    let inv = dan.expect_invite();
    check_request("dial-out INVITE", inv.request(), ip, ip);
    assert_eq!(inv.request().uri.to_string(), target);
    assert_eq!(inv.focus_path.host, host(ip));
    let mut end = dan.chat_end(Setup::Active);
    let (mut call, ack) = dan.accept(&inv, &end);
    check_request("dial-out ACK", &ack, ip, ip);
    let mut d_msrp = end.connect(&inv.focus_path);
    d_msrp.bind();
    assert_eq!(d_msrp.say("dan here").code, 200);
    let got = a_msrp.expect_message();
    check_paths("alice hears dan", &got, ip, ip);
    assert_eq!(got.text(), "dan here");
    let r = dan.bye(&mut call);
    assert_eq!(r.status, 200);
}

/// A focus on 127.0.0.1 and [::1] at once tells each peer the addresses of the family it
/// came in on (Contact, Via, SDP, MSRP paths), and relays chat between the families.
#[test]
fn a_dual_stack_focus_answers_each_family_with_its_own_addresses() {
    let v6 = ipv6_loopback();
    let focus = focus_on(&[V4, v6]);
    for key in ["sip_udp", "sip_tcp", "msrp"] {
        assert!(focus.addr_of(key, V4).is_ipv4());
        assert!(focus.addr_of(key, v6).is_ipv6());
    }
    let mut w4 = Watcher::new(&focus, V4, TEAM);
    let mut w6 = Watcher::new(&focus, v6, TEAM);
    let (_a, _ac, mut a_msrp) = chat_member(&focus, "alice", V4, false, Setup::Active);
    let (_b, _bc, mut b_msrp) = chat_member(&focus, "bob", v6, false, Setup::Active);
    // The focus connects out to a passive participant in each family.
    let (_c, _cc, mut c_msrp) = chat_member(&focus, "carol", v6, true, Setup::Passive);
    w4.until(|v| user_count(v) == Some(3));
    w6.until(|v| user_count(v) == Some(3));

    assert_eq!(a_msrp.say("from four").code, 200);
    for (m, name) in [(&mut b_msrp, "bob"), (&mut c_msrp, "carol")] {
        let got = m.expect_message();
        assert_eq!(got.text(), "from four");
        check_paths(&format!("{name} hears alice"), &got, v6, v6);
    }
    assert_eq!(b_msrp.say("from six").code, 200);
    let got = a_msrp.expect_message();
    check_paths("alice hears bob", &got, V4, V4);
    assert_eq!(got.text(), "from six");
    let _ = c_msrp.expect_message();

    // A talk burst across the families: the focus's audio and BFCP for each participant are
    // reachable from it (the answer checked), and the audio gets through.
    let (_d, mut dave) = talker(&focus, "dave", V4);
    let (_e, eve) = talker(&focus, "eve", v6);
    let (_, status, _) = dave.request_floor();
    assert_eq!(
        status,
        cpm_focus::push_to_talk::bfcp::RequestStatus::Granted
    );
    dave.send_rtp(3);
    eve.expect_rtp(3);
}

/// An INVITE to the conference factory with a URI list naming an IPv6 target: the focus's
/// 200 (the new conference's Contact) and its INVITE to the invitee are well formed, and the
/// invitee joins the chat over IPv6.
#[test]
fn a_uri_list_invite_calls_an_ipv6_invitee() {
    use cpm_focus::body::multipart::{Multipart, Part};
    use cpm_focus::body::resource_lists::{self, Entry};
    let ip = ipv6_loopback();
    let focus = focus_on(&[ip]);
    let mut alice = Ua::udp_at(&focus, "alice", ip);
    let mut bob = Ua::udp_at(&focus, "bob", ip);
    let target = format!("sip:bob@{}", bob.local);
    let end = alice.chat_end(Setup::Active);
    let body = Multipart::mixed(vec![
        Part::new("application/sdp", end.offer()),
        Part::new(
            resource_lists::MIME_TYPE,
            resource_lists::render(&[Entry::new(target.clone())]),
        )
        .with_disposition("recipient-list"),
    ]);
    let (ct, bytes) = body.encode_with_new_boundary().expect("encoding the list");
    let mut call = Call::new("sip:conf-factory@focus.example.com");
    let b = alice.send_request(
        &mut call,
        "INVITE",
        "Require: recipient-list-invite\r\n",
        Some((&ct, std::str::from_utf8(&bytes).unwrap())),
    );
    let ok = alice.expect_final(&b);
    assert_eq!(ok.status, 200, "{}", ok.reason);
    check_response("factory 200", &ok, ip);
    call.learn(&ok);
    alice.ack(&call);

    let inv = bob.expect_invite();
    check_request("URI-list dial-out INVITE", inv.request(), ip, ip);
    assert_eq!(inv.request().uri.to_string(), target);
    let (mut b_call, mut b_msrp) = bob.accept_chat(&inv);
    assert_eq!(b_msrp.say("bob joined").code, 200);
    assert_eq!(bob.bye(&mut b_call).status, 200);
    assert_eq!(alice.bye(&mut call).status, 200);
}
