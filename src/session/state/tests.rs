//! Group-session behaviour in virtual time, without actix or sockets: every input is a parsed
//! message and an instant, every output an effect we inspect.

use super::*;
use crate::conference_info::{self as ci, ConferenceInfo};
use crate::sip::{parse, Framing, Message, ParseLimits};
use crate::transport::Protocol;
use bytes::Bytes;

const SDP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn settings(max: u32, signalling_only: bool, interval_ms: u64) -> Arc<SessionSettings> {
    let base = SessionSettings::example();
    Arc::new(SessionSettings {
        subject: "Chat".into(),
        policy: crate::policy::GroupPolicy {
            max_participants: max,
            allow_signalling_only: signalling_only,
            ..base.policy.clone()
        },
        faces: crate::transport::PerFamily::single(
            "127.0.0.1".parse().unwrap(),
            super::FocusFace {
                contact_udp: "<sip:team@127.0.0.1:5060>;isfocus".into(),
                contact_tcp: "<sip:team@127.0.0.1:5060;transport=tcp>;isfocus".into(),
                contact_tls: "<sips:team@127.0.0.1:5061>;isfocus".into(),
                sdp_address: "127.0.0.1".parse().unwrap(),
                msrp: Some(super::super::sdp_policy::MsrpOffer {
                    host: crate::sip::Host::Ip("127.0.0.1".parse().unwrap()),
                    port: 2855,
                    max_size: 4096,
                    tls: false,
                }),
            },
        ),
        max_expires: 7200,
        max_subscriptions: 3,
        min_notify_interval: Duration::from_millis(interval_ms),
        journal: true,
        ..base
    })
}

fn source() -> Target {
    Target {
        protocol: Protocol::Udp,
        addr: "10.0.0.1:5060".parse().unwrap(),
        conn: None,
    }
}

fn msg(text: &str) -> Request {
    match parse(
        Bytes::copy_from_slice(text.as_bytes()),
        Framing::Datagram,
        &ParseLimits::default(),
    ) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

fn resp(text: &str) -> Response {
    match parse(
        Bytes::copy_from_slice(text.as_bytes()),
        Framing::Datagram,
        &ParseLimits::default(),
    ) {
        Ok(Message::Response(r)) => r,
        other => panic!("{other:?}"),
    }
}

/// A request from user `who` in call `call` (CSeq `cseq`), with optional To tag and body.
fn request(
    method: &str,
    who: &str,
    call: &str,
    cseq: u32,
    to_tag: Option<&str>,
    extra: &str,
    body: &str,
) -> Request {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".into()
    };
    msg(&format!(
        "{method} sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{call}{cseq}{method}\r\nFrom: \"{who}\" <sip:{who}@example.com>;tag={who}-tag\r\nTo: <sip:team@focus.example.com>{to_tag}\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{who}@10.0.0.1:5060>\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

struct Harness {
    s: SessionState,
    now: Instant,
    txn: u64,
}

struct Sent {
    token: u64,
    method: Method,
    text: String,
}

impl Sent {
    fn body(&self) -> &str {
        self.text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("")
    }
    fn doc(&self) -> ConferenceInfo {
        ci::parse(self.body().as_bytes(), &ci::Limits::default()).expect("conference-info parses")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
    }
}

#[derive(Default)]
struct Out {
    responses: Vec<(u16, String)>,
    sent: Vec<Sent>,
    registered: usize,
    admitted: usize,
    /// Connections the session asked to hear about when they close.
    watched: Vec<Target>,
    unregistered: usize,
    msrp_added: Vec<(u64, super::super::sdp_policy::MsrpLeg)>,
    msrp_removed: Vec<String>,
    msrp_expected: Vec<String>,
    cancelled: Vec<String>,
    muted: Vec<(String, bool)>,
    charges: Vec<crate::session::ChargeEvent>,
    talk: Vec<crate::push_to_talk::talk_burst::TalkEffect>,
    journal: Vec<crate::recovery::journal::Event>,
}

impl Harness {
    fn new(max: u32, signalling_only: bool, interval_ms: u64) -> Harness {
        let now = Instant::now();
        Harness {
            s: SessionState::new(
                settings(max, signalling_only, interval_ms),
                now,
                SystemTime::UNIX_EPOCH,
            ),
            now,
            txn: 0,
        }
    }

    fn drain(&mut self) -> Out {
        let mut out = Out::default();
        while let Some(e) = self.s.poll_effect() {
            match e {
                Effect::Respond { status, bytes, .. } => out
                    .responses
                    .push((status, String::from_utf8_lossy(&bytes).into_owned())),
                Effect::Send { token, request } => {
                    let text = String::from_utf8_lossy(&request.rest).into_owned();
                    out.sent.push(Sent {
                        token,
                        method: request.method,
                        text,
                    })
                }
                Effect::RegisterDialog(_) => out.registered += 1,
                Effect::UnregisterDialog(_) => out.unregistered += 1,
                Effect::MsrpAdd { pid, leg, .. } => out.msrp_added.push((pid, leg)),
                Effect::MsrpRemove { session_id } => out.msrp_removed.push(session_id),
                Effect::MsrpExpect { session_id, .. } => {
                    // Announced before the 200 that carries our offer leaves.
                    assert!(out.responses.is_empty(), "MsrpExpect after the response");
                    out.msrp_expected.push(session_id)
                }
                Effect::CancelInvite { call_id, .. } => out.cancelled.push(call_id.to_string()),
                Effect::MsrpMute { session_id, muted } => out.muted.push((session_id, muted)),
                Effect::Charge(e) => out.charges.push(e),
                Effect::Talk(e) => out.talk.push(e),
                Effect::Journal(e) => out.journal.push(e),
                Effect::AdmitFlow(_) => out.admitted += 1,
                Effect::WatchFlow(f) => out.watched.push(f),
            }
        }
        out
    }

    fn send(&mut self, req: &Request) -> Out {
        self.send_from(req, source(), None)
    }

    /// Joins `who`; returns the focus's To tag.
    fn join(&mut self, who: &str) -> String {
        let out = self.send(&request(
            "INVITE",
            who,
            &format!("call-{who}"),
            1,
            None,
            "",
            SDP,
        ));
        assert_eq!(out.responses.len(), 1, "one final response");
        let (status, text) = &out.responses[0];
        assert_eq!(*status, 200, "{text}");
        let to = text.lines().find(|l| l.starts_with("To:")).unwrap();
        to.split("tag=").nth(1).unwrap().trim().to_string()
    }

    fn ok(&mut self, token: u64) -> Out {
        let r = resp("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n");
        self.s.on_response(self.now, token, &r);
        self.drain()
    }

    fn answer(&mut self, token: u64, status: u16) -> Out {
        let r = resp(&format!("SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n"));
        self.s.on_response(self.now, token, &r);
        self.drain()
    }

    fn advance(&mut self, d: Duration) -> Out {
        self.now += d;
        self.s.handle_timeout(self.now);
        self.drain()
    }

    fn subscribe(&mut self, who: &str, expires: u32) -> (String, Out) {
        let out = self.send(&request(
            "SUBSCRIBE",
            who,
            &format!("sub-{who}"),
            1,
            None,
            &format!("Event: conference\r\nExpires: {expires}\r\n"),
            "",
        ));
        let (status, text) = &out.responses[0];
        assert_eq!(*status, 200, "{text}");
        let tag = text
            .lines()
            .find(|l| l.starts_with("To:"))
            .unwrap()
            .split("tag=")
            .nth(1)
            .unwrap()
            .to_string();
        (tag, out)
    }
}

#[test]
fn join_answers_with_isfocus_contact_and_declined_audio() {
    let mut h = Harness::new(10, true, 0);
    let out = h.send(&request("INVITE", "alice", "c1", 1, None, "", SDP));
    assert_eq!(out.registered, 1);
    let (status, text) = &out.responses[0];
    assert_eq!(*status, 200);
    assert!(
        text.contains("Contact: <sip:team@127.0.0.1:5060>;isfocus\r\n"),
        "{text}"
    );
    assert!(text.contains("m=audio 0 RTP/AVP 0"), "{text}");
    assert!(text.contains("Content-Type: application/sdp"));
    assert_eq!(h.s.participant_count(), 1);
    let doc = h.s.full_document();
    let users = doc.users.unwrap().users;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].entity, "sip:alice@example.com");
    assert_eq!(users[0].display_text.as_deref(), Some("alice"));
    assert_eq!(
        users[0].endpoints[0].status,
        Some(ci::EndpointStatus::Connected)
    );
    assert_eq!(doc.conference_state.unwrap().user_count, Some(1));
}

#[test]
fn full_group_is_busy_with_warning() {
    let mut h = Harness::new(1, true, 0);
    h.join("alice");
    let out = h.send(&request("INVITE", "bob", "c2", 1, None, "", SDP));
    let (status, text) = &out.responses[0];
    assert_eq!(*status, 486);
    assert!(
        text.contains("Warning: 399 focus.example.com \"The group is full\""),
        "{text}"
    );
    assert_eq!(out.registered, 0);
    assert_eq!(h.s.participant_count(), 1);
}

#[test]
fn signalling_only_needs_policy() {
    let mut h = Harness::new(10, false, 0);
    let out = h.send(&request("INVITE", "alice", "c1", 1, None, "", SDP));
    assert_eq!(out.responses[0].0, 488);
    assert!(out.responses[0].1.contains("Warning: 304 "));
    assert!(h.s.is_idle());
}

#[test]
fn malformed_sdp_and_missing_contact_are_400() {
    let mut h = Harness::new(10, true, 0);
    let out = h.send(&request(
        "INVITE",
        "alice",
        "c1",
        1,
        None,
        "",
        "v=0\r\nbogus\r\n",
    ));
    assert_eq!(out.responses[0].0, 400);
    assert!(out.responses[0]
        .1
        .starts_with("SIP/2.0 400 Malformed SDP\r\n"));
    let req = msg("INVITE sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK9\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:team@focus.example.com>\r\nCall-ID: nc\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
    let out = h.send(&req);
    assert_eq!(out.responses[0].0, 400);
    assert!(out.responses[0]
        .1
        .starts_with("SIP/2.0 400 Missing or invalid Contact header\r\n"));
    assert!(h.s.is_idle());
}

#[test]
fn bye_leaves_and_cseq_must_not_go_back() {
    let mut h = Harness::new(10, true, 0);
    let tag = h.join("alice");
    let out = h.send(&request(
        "UPDATE",
        "alice",
        "call-alice",
        1,
        Some(&tag),
        "",
        "",
    ));
    assert_eq!(
        out.responses[0].0, 200,
        "same CSeq as the INVITE is not lower"
    );
    let out = h.send(&request(
        "BYE",
        "alice",
        "call-alice",
        0,
        Some(&tag),
        "",
        "",
    ));
    assert_eq!(out.responses[0].0, 500);
    let out = h.send(&request(
        "BYE",
        "alice",
        "call-alice",
        2,
        Some(&tag),
        "",
        "",
    ));
    assert_eq!(out.responses[0].0, 200);
    assert_eq!(out.unregistered, 1);
    assert_eq!(h.s.participant_count(), 0);
    let out = h.send(&request(
        "BYE",
        "alice",
        "call-alice",
        3,
        Some(&tag),
        "",
        "",
    ));
    assert_eq!(out.responses[0].0, 481);
}

#[test]
fn reinvite_keeps_origin_and_delayed_offer_blocks_new_offers() {
    let mut h = Harness::new(10, true, 0);
    let tag = h.join("alice");
    let out = h.send(&request(
        "INVITE",
        "alice",
        "call-alice",
        2,
        Some(&tag),
        "",
        SDP,
    ));
    let (status, text) = &out.responses[0];
    assert_eq!(*status, 200);
    assert!(text.contains("m=audio 0 RTP/AVP 0"));
    // A delayed-offer re-INVITE: we offer in the 200 and wait for the answer in the ACK.
    let out = h.send(&request(
        "INVITE",
        "alice",
        "call-alice",
        3,
        Some(&tag),
        "",
        "",
    ));
    assert_eq!(out.responses[0].0, 200);
    assert!(out.responses[0].1.contains("v=0"));
    let out = h.send(&request(
        "UPDATE",
        "alice",
        "call-alice",
        4,
        Some(&tag),
        "",
        SDP,
    ));
    assert_eq!(out.responses[0].0, 491);
    let ack = request("ACK", "alice", "call-alice", 3, Some(&tag), "", SDP);
    h.s.on_ack(h.now, &ack, &source());
    let out = h.drain();
    assert!(out.sent.is_empty(), "a valid answer keeps the participant");
    let out = h.send(&request(
        "UPDATE",
        "alice",
        "call-alice",
        5,
        Some(&tag),
        "",
        SDP,
    ));
    assert_eq!(out.responses[0].0, 200);
}

#[test]
fn a_delayed_offer_join_expects_its_msrp_leg_until_the_answer_or_the_end() {
    let mut h = Harness::new(10, true, 0);
    // An INVITE without SDP: our offer (MSRP, passive) goes in the 200; the switch is told
    // to expect the leg before that 200 leaves.
    let out = h.send(&request("INVITE", "bob", "call-bob", 1, None, "", ""));
    assert_eq!(out.responses[0].0, 200);
    assert!(
        out.responses[0].1.contains("m=message"),
        "{}",
        out.responses[0].1
    );
    assert_eq!(out.msrp_expected.len(), 1);
    let session = out.msrp_expected[0].clone();
    assert!(out.responses[0].1.contains(&format!("/{session};tcp")));
    // No ACK ever comes: the participant is hung up and the expectation dropped.
    h.s.on_ack_timeout(h.now, h.txn);
    let out = h.drain();
    assert_eq!(out.msrp_removed, vec![session]);
    // A join with an offer expects nothing: its leg is installed at once.
    let out = h.send(&request("INVITE", "carol", "call-carol", 1, None, "", SDP));
    assert_eq!(out.responses[0].0, 200);
    assert!(out.msrp_expected.is_empty());
}

/// Drives one subscriber through joins and leaves, answering each NOTIFY, and checks that
/// merging the partial documents always gives the current full document.
#[test]
fn partial_notifications_merge_to_the_full_state() {
    let mut h = Harness::new(10, true, 0);
    let (_, out) = h.subscribe("watcher", 600);
    let mut view = out.sent[0].doc();
    let mut token = out.sent[0].token;
    let mut version = view.version;
    let step = |h: &mut Harness,
                view: &mut ConferenceInfo,
                token: &mut u64,
                version: &mut u32,
                out: Out| {
        let notifies: Vec<&Sent> = out
            .sent
            .iter()
            .filter(|s| s.method == Method::Notify)
            .collect();
        assert_eq!(
            notifies.len(),
            1,
            "one NOTIFY per change when the interval is 0"
        );
        let doc = notifies[0].doc();
        assert_eq!(doc.version, *version + 1);
        assert_eq!(doc.state, ci::ElemState::Partial);
        ci::apply(view, &doc).unwrap();
        *version = doc.version;
        *token = notifies[0].token;
        let mut full = h.s.full_document();
        full.version = *version;
        let sort = |d: &mut ConferenceInfo| {
            if let Some(u) = d.users.as_mut() {
                u.users.sort_by(|a, b| a.entity.cmp(&b.entity));
            }
        };
        let mut mine = view.clone();
        sort(&mut mine);
        sort(&mut full);
        assert_eq!(mine.users, full.users);
        assert_eq!(mine.conference_state, full.conference_state);
    };
    h.ok(token);
    let tag_a = {
        let out = h.send(&request("INVITE", "alice", "ca", 1, None, "", SDP));
        let tag = out.responses[0]
            .1
            .lines()
            .find(|l| l.starts_with("To:"))
            .unwrap()
            .split("tag=")
            .nth(1)
            .unwrap()
            .to_string();
        step(&mut h, &mut view, &mut token, &mut version, out);
        tag
    };
    h.ok(token);
    let out = h.send(&request("INVITE", "bob", "cb", 1, None, "", SDP));
    step(&mut h, &mut view, &mut token, &mut version, out);
    h.ok(token);
    let out = h.send(&request("BYE", "alice", "ca", 2, Some(&tag_a), "", ""));
    step(&mut h, &mut view, &mut token, &mut version, out);
    let alice = view
        .users
        .as_ref()
        .unwrap()
        .users
        .iter()
        .find(|u| u.entity == "sip:alice@example.com")
        .unwrap();
    assert_eq!(
        alice.endpoints[0].status,
        Some(ci::EndpointStatus::Disconnected)
    );
    assert_eq!(
        alice.endpoints[0].disconnection_method,
        Some(ci::DisconnectionMethod::Departed)
    );
    assert_eq!(view.conference_state.unwrap().user_count, Some(1));
    // After the retention time alice is deleted from the roster.
    h.ok(token);
    let out = h.advance(Duration::from_secs(31));
    step(&mut h, &mut view, &mut token, &mut version, out);
    assert!(view
        .users
        .as_ref()
        .unwrap()
        .users
        .iter()
        .all(|u| u.entity != "sip:alice@example.com"));
}

#[test]
fn one_notify_in_flight_and_rate_limit_coalesce_without_loss() {
    let mut h = Harness::new(10, true, 1000);
    let (_, out) = h.subscribe("watcher", 600);
    let token = out.sent[0].token;
    // Three joins while the first NOTIFY is unanswered: nothing is sent.
    for who in ["a", "b", "c"] {
        let out = h.send(&request(
            "INVITE",
            who,
            &format!("c{who}"),
            1,
            None,
            "",
            SDP,
        ));
        assert!(out.sent.is_empty());
    }
    // Answering it does not send at once either: the interval has not passed.
    let out = h.ok(token);
    assert!(out.sent.is_empty());
    let due = h.s.poll_timeout(h.now).unwrap();
    assert_eq!(due, h.now + Duration::from_millis(1000));
    let out = h.advance(Duration::from_millis(1000));
    assert_eq!(out.sent.len(), 1);
    let doc = out.sent[0].doc();
    assert_eq!(doc.version, 2);
    assert_eq!(
        doc.users.unwrap().users.len(),
        3,
        "all three joins in one NOTIFY"
    );
}

#[test]
fn notify_failures() {
    let mut h = Harness::new(10, true, 0);
    // 481 ends the subscription.
    let (_, out) = h.subscribe("w1", 600);
    let out481 = h.answer(out.sent[0].token, 481);
    assert_eq!(out481.unregistered, 1);
    assert_eq!(h.s.subscription_count(), 0);
    // A timeout ends it too.
    let (_, out) = h.subscribe("w2", 600);
    h.s.on_failure(h.now, out.sent[0].token, Failure::Timeout);
    assert_eq!(h.drain().unregistered, 1);
    assert_eq!(h.s.subscription_count(), 0);
    // Another error keeps it, and the next NOTIFY carries the full state.
    let (_, out) = h.subscribe("w3", 600);
    let out = h.answer(out.sent[0].token, 500);
    assert_eq!(out.sent.len(), 1, "resent at once");
    let doc = out.sent[0].doc();
    assert_eq!((doc.version, doc.state), (2, ci::ElemState::Full));
}

#[test]
fn expiry_refresh_and_unsubscribe() {
    let mut h = Harness::new(10, true, 0);
    let (tag, out) = h.subscribe("w", 60);
    h.ok(out.sent[0].token);
    assert_eq!(
        h.s.poll_timeout(h.now),
        Some(h.now + Duration::from_secs(60))
    );
    // Refresh: 200 and a full NOTIFY.
    let out = h.send(&request(
        "SUBSCRIBE",
        "w",
        "sub-w",
        2,
        Some(&tag),
        "Event: conference\r\nExpires: 120\r\n",
        "",
    ));
    assert_eq!(out.responses[0].0, 200);
    assert!(out.responses[0].1.contains("Expires: 120\r\n"));
    assert_eq!(out.sent.len(), 1);
    assert_eq!(out.sent[0].doc().version, 2);
    h.ok(out.sent[0].token);
    // Expiry: a terminated NOTIFY at the new deadline.
    let out = h.advance(Duration::from_secs(120));
    assert_eq!(out.sent.len(), 1);
    assert_eq!(
        out.sent[0].header("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert_eq!(h.s.subscription_count(), 0);
    // Unsubscribe with Expires: 0.
    let (tag, out) = h.subscribe("w2", 60);
    h.ok(out.sent[0].token);
    let out = h.send(&request(
        "SUBSCRIBE",
        "w2",
        "sub-w2",
        2,
        Some(&tag),
        "Event: conference\r\nExpires: 0\r\n",
        "",
    ));
    assert_eq!(out.responses[0].0, 200);
    assert_eq!(
        out.sent[0].header("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert!(h.s.is_idle());
}

#[test]
fn subscribe_refusals() {
    let mut h = Harness::new(10, true, 0);
    let out = h.send(&request(
        "SUBSCRIBE",
        "w",
        "s1",
        1,
        None,
        "Event: presence\r\n",
        "",
    ));
    assert_eq!(out.responses[0].0, 489);
    assert!(out.responses[0].1.contains("Allow-Events: conference\r\n"));
    let out = h.send(&request(
        "SUBSCRIBE",
        "w",
        "s2",
        1,
        None,
        "Event: conference\r\nExpires: 10\r\n",
        "",
    ));
    assert_eq!(out.responses[0].0, 423);
    assert!(out.responses[0].1.contains("Min-Expires: 60\r\n"));
    let out = h.send(&request("SUBSCRIBE", "w", "s3", 1, None, "", ""));
    assert_eq!(out.responses[0].0, 400);
    // Limit: three subscriptions per session in these settings.
    for i in 0..3 {
        h.subscribe(&format!("w{i}"), 600);
    }
    let out = h.send(&request(
        "SUBSCRIBE",
        "w9",
        "s9",
        1,
        None,
        "Event: conference\r\n",
        "",
    ));
    assert_eq!(out.responses[0].0, 503);
    assert!(out.responses[0].1.contains("Retry-After: 5\r\n"));
}

#[test]
fn missing_ack_hangs_up_and_cancel_withdraws() {
    let mut h = Harness::new(10, true, 0);
    h.join("alice");
    let txn = h.txn;
    h.s.on_ack_timeout(h.now, txn);
    let out = h.drain();
    assert_eq!(out.sent.len(), 1);
    assert_eq!(out.sent[0].method, Method::Bye);
    assert!(out.sent[0].text.contains("CSeq: 2 BYE\r\n"));
    assert!(
        out.sent[0]
            .text
            .contains("Reason: SIP;cause=408;text=\"no ACK\"\r\n"),
        "{}",
        out.sent[0].text
    );
    // Every line of what we send is a well-formed header.
    let head = out.sent[0].text.split("\r\n\r\n").next().unwrap();
    assert!(
        head.lines()
            .all(|l| l.split_once(": ").is_some_and(|(n, _)| !n.is_empty())),
        "{head}"
    );
    let doc = h.s.full_document();
    let ep = &doc.users.unwrap().users[0].endpoints[0];
    assert_eq!(
        ep.disconnection_method,
        Some(ci::DisconnectionMethod::Failed)
    );

    h.join("bob");
    let txn = h.txn;
    h.s.on_response_refused(h.now, txn);
    let out = h.drain();
    assert!(out.sent.is_empty(), "no BYE: the INVITE was answered 487");
    assert_eq!(out.unregistered, 1);
    assert!(h
        .s
        .full_document()
        .users
        .unwrap()
        .users
        .iter()
        .all(|u| u.entity != "sip:bob@example.com"));
}

#[test]
fn shutdown_byes_everyone_and_terminates_subscriptions() {
    let mut h = Harness::new(10, true, 0);
    let (_, out) = h.subscribe("w", 600);
    h.ok(out.sent[0].token);
    // Each join's NOTIFY is answered before the next join, so nothing is left in flight.
    for who in ["alice", "bob"] {
        let out = h.send(&request(
            "INVITE",
            who,
            &format!("c{who}"),
            1,
            None,
            "",
            SDP,
        ));
        assert_eq!(out.sent.len(), 1);
        h.ok(out.sent[0].token);
    }
    assert_eq!(h.s.outstanding(), 0);
    h.s.shutdown(h.now);
    let out = h.drain();
    let byes = out.sent.iter().filter(|s| s.method == Method::Bye).count();
    assert_eq!(byes, 2);
    let last = out
        .sent
        .iter()
        .rfind(|s| s.method == Method::Notify)
        .unwrap();
    assert_eq!(
        last.header("Subscription-State"),
        Some("terminated;reason=noresource")
    );
    assert!(h.s.is_idle());
    assert_eq!(h.s.outstanding(), 3);
    let tokens: Vec<u64> = out.sent.iter().map(|s| s.token).collect();
    for t in tokens {
        h.ok(t);
    }
    assert_eq!(h.s.outstanding(), 0);
    // New joins are refused while shutting down.
    let out = h.send(&request("INVITE", "carol", "cc", 1, None, "", SDP));
    assert_eq!(out.responses[0].0, 503);
}

// ----- conference control (REFER, moderation) -----

impl Harness {
    /// A session whose group lists `host@example.com` as host and `mod@example.com` as
    /// moderator.
    /// The harness's requests come from 10.0.0.1, here its SIP core: their From is vouched
    /// for (tests of outsiders send from elsewhere, `Harness::send_from`).
    fn with_members() -> Harness {
        let mut s = (*settings(10, true, 0)).clone();
        s.trust.hosts = vec![source().addr.ip()];
        s.policy
            .members
            .insert("sip:host@example.com".into(), crate::config::Role::Host);
        s.policy
            .members
            .insert("sip:mod@example.com".into(), crate::config::Role::Moderator);
        let now = Instant::now();
        Harness {
            s: SessionState::new(Arc::new(s), now, SystemTime::UNIX_EPOCH),
            now,
            txn: 0,
        }
    }

    fn respond_to(&mut self, token: u64, status: u16, extra: &str, body: &str) -> Out {
        let ct = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        let r = resp(&format!(
            "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:team@focus.example.com>;tag=f\r\nTo: <sip:bob@example.com>;tag=bobtag\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        self.s.on_response(self.now, token, &r);
        self.drain()
    }
}

fn sipfrag(s: &Sent) -> &str {
    s.body().trim_end()
}

#[test]
fn refer_from_a_plain_participant_is_forbidden() {
    let mut h = Harness::with_members();
    let out = h.send(&request(
        "REFER",
        "alice",
        "r1",
        1,
        None,
        "Refer-To: <sip:bob@example.com>\r\n",
        "",
    ));
    assert_eq!(out.responses[0].0, 403);
    assert!(out.responses[0]
        .1
        .contains("Warning: 399 focus.example.com \"You may not add participants\""));
    assert!(out.sent.is_empty());
}

/// An untrusted source (not the harness's SIP core).
fn outsider() -> Target {
    Target {
        addr: "10.0.0.66:5060".parse().unwrap(),
        ..source()
    }
}

#[test]
fn an_outsider_claiming_the_host_may_not_refer() {
    let mut h = Harness::with_members();
    for refer_to in ["<sip:bob@example.com>", "<sip:mod@example.com;method=BYE>"] {
        let out = h.send_from(
            &request(
                "REFER",
                "host",
                "r1",
                1,
                None,
                &format!("Refer-To: {refer_to}\r\nP-Asserted-Identity: <sip:host@example.com>\r\n"),
                "",
            ),
            outsider(),
            None,
        );
        assert_eq!(out.responses[0].0, 403, "{refer_to}");
        assert!(out.responses[0].1.contains("Your identity is not verified"));
        assert!(out.sent.is_empty());
    }
    // The same REFER from the SIP core is the host's.
    let out = h.send(&request(
        "REFER",
        "host",
        "r2",
        1,
        None,
        "Refer-To: <sip:bob@example.com>\r\n",
        "",
    ));
    assert_eq!(out.responses[0].0, 202);
}

#[test]
fn an_outsider_joins_an_open_group_without_its_claimed_role() {
    let mut h = Harness::with_members();
    // Claims to be the host, from an untrusted address: a plain participant.
    let out = h.send_from(
        &request("INVITE", "host", "call-host", 1, None, "", SDP),
        outsider(),
        None,
    );
    assert_eq!(out.responses[0].0, 200);
    let tag = out.responses[0]
        .1
        .lines()
        .find(|l| l.starts_with("To:"))
        .and_then(|l| l.split("tag=").nth(1))
        .unwrap()
        .trim()
        .to_string();
    let json = r#"{"action":"lock"}"#;
    let info = msg(&format!(
        "INFO sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.66:5060;branch=z9hG4bKo2\r\nFrom: <sip:host@example.com>;tag=host-tag\r\nTo: <sip:team@focus.example.com>;tag={tag}\r\nCall-ID: call-host\r\nCSeq: 2 INFO\r\nContent-Type: application/vnd.cpm-focus.control+json\r\nContent-Length: {}\r\n\r\n{json}",
        json.len()
    ));
    let out = h.send_from(&info, outsider(), None);
    assert_eq!(out.responses[0].0, 403);
    assert!(out.responses[0].1.contains("Your identity is not verified"));
}

#[test]
fn refer_add_dials_out_and_reports_progress() {
    let mut h = Harness::with_members();
    let out = h.send(&request(
        "REFER",
        "host",
        "r1",
        1,
        None,
        "Refer-To: <sip:bob@example.com>\r\n",
        "",
    ));
    assert_eq!(out.responses[0].0, 202);
    assert!(out.responses[0].1.contains(";isfocus"));
    let notify = out
        .sent
        .iter()
        .find(|s| s.method == Method::Notify)
        .unwrap();
    assert_eq!(notify.header("Event"), Some("refer"));
    assert_eq!(sipfrag(notify), "SIP/2.0 100 Trying");
    // The referrer answers each refer NOTIFY: the next waits for it.
    let trying = notify.token;
    let invite = out
        .sent
        .iter()
        .find(|s| s.method == Method::Invite)
        .unwrap();
    assert!(invite
        .text
        .contains("Contact: <sip:team@127.0.0.1:5060>;isfocus\r\n"));
    assert!(invite
        .text
        .contains("Referred-By: <sip:host@example.com>\r\n"));
    assert!(
        invite.body().contains("m=message 2855 TCP/MSRP *"),
        "{}",
        invite.text
    );
    let user = |h: &Harness| {
        h.s.full_document()
            .users
            .unwrap()
            .users
            .into_iter()
            .find(|u| u.entity == "sip:bob@example.com")
            .unwrap()
    };
    let ep = user(&h).endpoints[0].clone();
    assert_eq!(ep.status, Some(ci::EndpointStatus::DialingOut));
    assert_eq!(ep.joining_method, Some(ci::JoiningMethod::DialedOut));
    assert_eq!(
        ep.referred.and_then(|r| r.by).as_deref(),
        Some("sip:host@example.com")
    );
    // Ringing, then answered.
    h.respond_to(trying, 200, "", "");
    let out = h.respond_to(invite.token, 180, "", "");
    assert_eq!(sipfrag(&out.sent[0]), "SIP/2.0 180 X");
    h.respond_to(out.sent[0].token, 200, "", "");
    assert_eq!(
        user(&h).endpoints[0].status,
        Some(ci::EndpointStatus::Alerting)
    );
    let answer = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=message 7000 TCP/MSRP *\r\na=path:msrp://10.0.0.2:7000/bob;tcp\r\na=accept-types:message/cpim\r\na=setup:active\r\n";
    let out = h.respond_to(
        invite.token,
        200,
        "Contact: <sip:bob@10.0.0.2:5060>\r\n",
        answer,
    );
    let ack = out
        .sent
        .iter()
        .find(|s| s.method == Method::Ack)
        .expect("ACK for the 2xx");
    assert!(ack.text.contains("CSeq: 1 ACK\r\n"));
    let done = out
        .sent
        .iter()
        .find(|s| s.method == Method::Notify)
        .unwrap();
    assert_eq!(sipfrag(done), "SIP/2.0 200 OK");
    assert_eq!(
        done.header("Subscription-State"),
        Some("terminated;reason=noresource")
    );
    assert_eq!(out.msrp_added.len(), 1);
    assert_eq!(
        user(&h).endpoints[0].status,
        Some(ci::EndpointStatus::Connected)
    );
    assert_eq!(h.s.participant_count(), 1);
    // A retransmitted 2xx is ACKed again.
    let out = h.respond_to(
        invite.token,
        200,
        "Contact: <sip:bob@10.0.0.2:5060>\r\n",
        answer,
    );
    assert_eq!(
        out.sent.iter().filter(|s| s.method == Method::Ack).count(),
        1
    );
}

#[test]
fn refer_add_to_a_busy_target_is_reported() {
    let mut h = Harness::with_members();
    let out = h.send(&request(
        "REFER",
        "mod",
        "r1",
        1,
        None,
        "Refer-To: <sip:bob@example.com>\r\n",
        "",
    ));
    let invite = out
        .sent
        .iter()
        .find(|s| s.method == Method::Invite)
        .unwrap();
    // The referrer answers the 100 Trying NOTIFY: the outcome waits for it.
    let trying = out
        .sent
        .iter()
        .find(|s| s.method == Method::Notify)
        .unwrap();
    h.respond_to(trying.token, 200, "", "");
    let out = h.respond_to(invite.token, 486, "", "");
    let done = out
        .sent
        .iter()
        .find(|s| s.method == Method::Notify)
        .unwrap();
    assert_eq!(sipfrag(done), "SIP/2.0 486 Busy Here");
    let doc = h.s.full_document();
    let ep = &doc.users.unwrap().users[0].endpoints[0];
    assert_eq!(ep.status, Some(ci::EndpointStatus::Disconnected));
    assert_eq!(ep.disconnection_method, Some(ci::DisconnectionMethod::Busy));
    assert_eq!(h.s.participant_count(), 0);
}

#[test]
fn refer_ring_timeout_cancels() {
    let mut h = Harness::with_members();
    let out = h.send(&request(
        "REFER",
        "host",
        "r1",
        1,
        None,
        "Refer-To: <sip:bob@example.com>\r\nRefer-Sub: false\r\n",
        "",
    ));
    assert_eq!(out.responses[0].0, 200, "Refer-Sub: false is answered 200");
    assert!(out.responses[0].1.contains("Refer-Sub: false\r\n"));
    assert!(
        out.sent.iter().all(|s| s.method != Method::Notify),
        "no implicit subscription"
    );
    let out = h.advance(Duration::from_secs(60));
    assert_eq!(out.cancelled.len(), 1);
}

#[test]
fn refer_bye_removes_a_participant() {
    let mut h = Harness::with_members();
    h.join("alice");
    let out = h.send(&request(
        "REFER",
        "host",
        "r1",
        1,
        None,
        "Refer-To: <sip:alice@example.com;method=BYE>\r\n",
        "",
    ));
    assert_eq!(out.responses[0].0, 202);
    let bye = out
        .sent
        .iter()
        .find(|s| s.method == Method::Bye)
        .expect("BYE to alice");
    assert!(bye
        .text
        .contains("Reason: SIP;cause=200;text=\"removed by sip:host@example.com\""));
    let out = answer_trying(&mut h, &out);
    let last = out
        .sent
        .iter()
        .rfind(|s| s.method == Method::Notify)
        .unwrap();
    assert_eq!(sipfrag(last), "SIP/2.0 200 OK");
    let doc = h.s.full_document();
    let alice = doc
        .users
        .unwrap()
        .users
        .into_iter()
        .find(|u| u.entity == "sip:alice@example.com")
        .unwrap();
    assert_eq!(
        alice.endpoints[0].disconnection_method,
        Some(ci::DisconnectionMethod::Booted)
    );
    // Removing someone who is not there fails with 481.
    let out = h.send(&request(
        "REFER",
        "host",
        "r2",
        1,
        None,
        "Refer-To: <sip:nobody@example.com;method=BYE>\r\n",
        "",
    ));
    let out = answer_trying(&mut h, &out);
    let last = out
        .sent
        .iter()
        .rfind(|s| s.method == Method::Notify)
        .unwrap();
    assert_eq!(sipfrag(last), "SIP/2.0 481 Call/Transaction Does Not Exist");
}

#[test]
fn a_refer_notify_waits_for_the_answer_to_the_one_before() {
    // Over a lossy path the 100 Trying may still be retransmitted when the outcome is known:
    // sent at once, the terminating NOTIFY would overtake it.
    let mut h = Harness::with_members();
    h.join("alice");
    let out = h.send(&request(
        "REFER",
        "host",
        "r1",
        1,
        None,
        "Refer-To: <sip:alice@example.com;method=BYE>\r\n",
        "",
    ));
    let notifies: Vec<&Sent> = out
        .sent
        .iter()
        .filter(|s| s.method == Method::Notify)
        .collect();
    assert_eq!(notifies.len(), 1, "one refer NOTIFY in flight");
    assert_eq!(sipfrag(notifies[0]), "SIP/2.0 100 Trying");
    let out = h.respond_to(notifies[0].token, 200, "", "");
    let last: Vec<&Sent> = out
        .sent
        .iter()
        .filter(|s| s.method == Method::Notify)
        .collect();
    assert_eq!(last.len(), 1);
    assert_eq!(sipfrag(last[0]), "SIP/2.0 200 OK");
    assert_eq!(
        last[0].header("Subscription-State"),
        Some("terminated;reason=noresource")
    );
    let out = h.respond_to(last[0].token, 200, "", "");
    assert!(
        out.sent.iter().all(|s| s.method != Method::Notify),
        "nothing after the terminating NOTIFY"
    );
}

/// The referrer answers the 100 Trying refer NOTIFY in `out` (the next refer NOTIFY waits
/// for it); what the session does then.
fn answer_trying(h: &mut Harness, out: &Out) -> Out {
    let trying = out
        .sent
        .iter()
        .find(|s| s.method == Method::Notify)
        .expect("the 100 Trying NOTIFY");
    assert_eq!(sipfrag(trying), "SIP/2.0 100 Trying");
    h.respond_to(trying.token, 200, "", "")
}

fn control(h: &mut Harness, who: &str, tag: &str, cseq: u32, json: &str) -> Out {
    let req = msg(&format!(
        "INFO sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKc{cseq}\r\nFrom: <sip:{who}@example.com>;tag={who}-tag\r\nTo: <sip:team@focus.example.com>;tag={tag}\r\nCall-ID: call-{who}\r\nCSeq: {cseq} INFO\r\nContent-Type: application/vnd.cpm-focus.control+json\r\nContent-Length: {}\r\n\r\n{json}",
        json.len()
    ));
    h.send(&req)
}

#[test]
fn moderation_lock_mute_end() {
    let mut h = Harness::with_members();
    let mod_tag = h.join("mod");
    let alice_tag = h.join("alice");
    // A plain participant may not moderate.
    let out = control(&mut h, "alice", &alice_tag, 2, r#"{"action":"lock"}"#);
    assert_eq!(out.responses[0].0, 403);
    // The moderator locks: new dial-ins are refused, conference-info says locked.
    let out = control(&mut h, "mod", &mod_tag, 2, r#"{"action":"lock"}"#);
    assert_eq!(out.responses[0].0, 200);
    assert_eq!(
        h.s.full_document().conference_state.unwrap().locked,
        Some(true)
    );
    let out = h.send(&request("INVITE", "bob", "cb", 1, None, "", SDP));
    assert_eq!(out.responses[0].0, 403);
    assert!(out.responses[0].1.contains("The group is locked"));
    let out = control(&mut h, "mod", &mod_tag, 3, r#"{"action":"unlock"}"#);
    assert_eq!(out.responses[0].0, 200);
    // Mute alice.
    let out = control(
        &mut h,
        "mod",
        &mod_tag,
        4,
        r#"{"action":"mute","target":"sip:alice@example.com"}"#,
    );
    assert_eq!(out.responses[0].0, 200);
    let doc = h.s.full_document();
    let alice = doc
        .users
        .unwrap()
        .users
        .into_iter()
        .find(|u| u.entity == "sip:alice@example.com")
        .unwrap();
    assert_eq!(
        alice.endpoints[0].status,
        Some(ci::EndpointStatus::MutedViaFocus)
    );
    let out = control(
        &mut h,
        "mod",
        &mod_tag,
        5,
        r#"{"action":"mute","target":"sip:nobody@example.com"}"#,
    );
    assert_eq!(out.responses[0].0, 404);
    let out = control(&mut h, "mod", &mod_tag, 6, r#"{"action":"explode"}"#);
    assert_eq!(out.responses[0].0, 400);
    let out = control(&mut h, "mod", &mod_tag, 7, "not json");
    assert_eq!(out.responses[0].0, 400);
    // End: everyone gets a BYE.
    let out = control(&mut h, "mod", &mod_tag, 8, r#"{"action":"end"}"#);
    assert_eq!(out.responses[0].0, 200);
    assert_eq!(
        out.sent.iter().filter(|s| s.method == Method::Bye).count(),
        2
    );
    assert_eq!(h.s.participant_count(), 0);
}

#[test]
fn anonymous_participants_are_hidden() {
    let mut h = Harness::new(10, true, 0);
    let out = h.send(&request(
        "INVITE",
        "alice",
        "ca",
        1,
        None,
        "Privacy: id\r\n",
        SDP,
    ));
    assert_eq!(out.responses[0].0, 200);
    let doc = h.s.full_document();
    let mut xml = Vec::new();
    ci::render(&doc, &mut xml);
    let xml = String::from_utf8(xml).unwrap();
    assert!(!xml.contains("alice"), "{xml}");
    assert!(xml.contains("sip:anonymous-1@anonymous.invalid"));
    assert!(xml.contains("<display-text>Anonymous 1</display-text>"));
    assert!(
        !xml.contains("call-info") && !xml.contains("<sip>"),
        "{xml}"
    );
}

/// A port allocator that always has 30000.
struct OnePort;

impl crate::push_to_talk::rtp::RtpPorts for OnePort {
    fn reserve(&self, _peer: std::net::IpAddr) -> Option<u16> {
        Some(30000)
    }
    fn release(&self, _port: u16) {}
}

#[test]
fn talk_bursts_join_take_the_floor_and_leave() {
    use crate::push_to_talk::bfcp::{Attribute as A, Message as M, Primitive};
    use crate::push_to_talk::talk_burst::{TalkEffect, TalkSettings};
    let mut settings = (*settings(10, true, 0)).clone();
    settings.policy.media.push(crate::config::MediaKind::Audio);
    settings.talk = Some(TalkSettings {
        codecs: vec![crate::push_to_talk::rtp::Codec::parse("PCMU/8000").unwrap()],
        bfcp_port: 5070,
        max_talk_burst: None,
        max_queue: 4,
        max_requests_per_user: 1,
        priority_ordering: true,
        moderated: false,
        ports: Arc::new(OnePort),
    });
    let now = Instant::now();
    let mut h = Harness {
        s: SessionState::new(Arc::new(settings), now, SystemTime::UNIX_EPOCH),
        now,
        txn: 0,
    };
    assert!(h.s.serves_talk());
    assert!(h.s.enable_talk(77));
    let offer = format!(
        "{SDP}a=label:mic\r\nm=application 9 TCP/BFCP *\r\na=floorctrl:c-only\r\na=setup:active\r\n"
    );
    let out = h.send(&request("INVITE", "alice", "c1", 1, None, "", &offer));
    let (status, text) = &out.responses[0];
    assert_eq!(*status, 200, "{text}");
    for line in [
        "m=audio 30000 RTP/AVP 0\r\n",
        "a=label:mic\r\n",
        "m=application 5070 TCP/BFCP *\r\n",
        "a=confid:77\r\n",
        "a=floorid:1 mstrm:mic\r\n",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    let pid = match &out.talk[..] {
        [TalkEffect::AddLeg(spec)] => {
            assert_eq!(spec.port, 30000);
            assert_eq!(spec.expected, Some("127.0.0.1:6000".parse().unwrap()));
            spec.pid
        }
        other => panic!("{other:?}"),
    };
    let user: u16 = text
        .lines()
        .find_map(|l| l.strip_prefix("a=userid:"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(h.s.knows_floor_user(user));
    assert!(!h.s.knows_floor_user(user + 1));
    let request =
        M::new(1, Primitive::FloorRequest, 77, 5, user).with_attributes(vec![A::floor_id(1)]);
    h.s.on_bfcp(h.now, user, &request);
    let out = h.drain();
    assert!(out
        .talk
        .iter()
        .any(|e| matches!(e, TalkEffect::Holder { pid: p } if *p == pid)));
    assert!(out
        .talk
        .iter()
        .any(|e| matches!(e, TalkEffect::Send { user: u, .. } if *u == user)));
    let doc = h.s.full_document();
    let media = &doc.users.unwrap().users[0].endpoints[0].media;
    assert_eq!(media[0].status, Some(ci::MediaStatus::SendOnly));
    assert_eq!(media[0].label.as_deref(), Some("mic"));
    // Leaving ends the leg, the floor and the BFCP connection.
    let tag = text
        .lines()
        .find(|l| l.starts_with("To:"))
        .unwrap()
        .split("tag=")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    let out = h.send(&request_in("BYE", "alice", "c1", 2, &tag));
    assert_eq!(out.responses[0].0, 200);
    assert!(out
        .talk
        .iter()
        .any(|e| matches!(e, TalkEffect::RemoveLeg { pid: p } if *p == pid)));
    assert!(out
        .talk
        .iter()
        .any(|e| matches!(e, TalkEffect::Close { user: u } if *u == user)));
    assert!(out
        .talk
        .iter()
        .any(|e| matches!(e, TalkEffect::Holder { pid: 0 })));
    assert!(!h.s.knows_floor_user(user));
}

fn request_in(method: &str, who: &str, call: &str, cseq: u32, tag: &str) -> Request {
    request(method, who, call, cseq, Some(tag), "", "")
}
mod liveness;

#[test]
fn stale_new_work_is_refused_and_dialogs_are_served_however_late() {
    let mut s = (*settings(10, true, 0)).clone();
    let t0 = Instant::now();
    let join = request("INVITE", "alice", "c1", 1, None, "", "");
    let bye = request("BYE", "alice", "c1", 2, Some("focus"), "", "");
    let state = SessionState::new(Arc::new(s.clone()), t0, SystemTime::now());
    assert_eq!(
        state.stale_new_work(&join, t0, t0 + Duration::from_secs(60)),
        None,
        "off by default in these settings"
    );
    s.max_queue_delay = Some(Duration::from_millis(100));
    let state = SessionState::new(Arc::new(s), t0, SystemTime::now());
    let late = t0 + Duration::from_millis(150);
    assert_eq!(
        state.stale_new_work(&join, t0, late),
        Some(5),
        "503 Retry-After: 5"
    );
    assert_eq!(
        state.stale_new_work(&join, t0, t0 + Duration::from_millis(50)),
        None
    );
    assert_eq!(
        state.stale_new_work(&bye, t0, late),
        None,
        "in-dialog work is served"
    );
}

// ----- dialogs bound to their parties (issue 14, `state/binding.rs`) -----

impl Harness {
    /// A request from `source`, authenticated as `authenticated` (what a digest check proved).
    fn send_from(&mut self, req: &Request, source: Target, authenticated: Option<&str>) -> Out {
        self.txn += 1;
        let ctx = RequestCtx {
            txn: self.txn,
            source,
            authenticated: authenticated.map(Into::into),
        };
        self.s.on_request(self.now, req, ctx);
        self.drain()
    }
}

fn from_addr(addr: &str) -> Target {
    Target {
        protocol: Protocol::Udp,
        addr: addr.parse().unwrap(),
        conn: None,
    }
}

/// [`request`] with `from` replacing `tag={who}-tag` in From, and `contact` replacing
/// the Contact line's end (after the URI).
#[allow(clippy::too_many_arguments)]
fn request_as(
    method: &str,
    who: &str,
    call: &str,
    cseq: u32,
    to_tag: Option<&str>,
    extra: &str,
    from: &str,
    contact: &str,
) -> Request {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let body = if method == "INVITE" { SDP } else { "" };
    let ct = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".into()
    };
    msg(&format!(
        "{method} sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{call}{cseq}{method}x\r\nFrom: \"{who}\" <sip:{who}@example.com>;tag={from}\r\nTo: <sip:team@focus.example.com>{to_tag}\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{who}@10.0.0.1:5060>{contact}\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

#[test]
fn a_request_with_another_remote_tag_is_no_request_of_the_dialog() {
    let mut h = Harness::new(10, true, 0);
    let tag = h.join("alice");
    let bye = request_as(
        "BYE",
        "alice",
        "call-alice",
        2,
        Some(&tag),
        "",
        "mallory-tag",
        "",
    );
    let out = h.send(&bye);
    assert_eq!(out.responses[0].0, 481, "{}", out.responses[0].1);
    assert_eq!(h.s.participant_count(), 1);
    // The forged CSeq was not recorded: the real party's next request is in order.
    let out = h.send(&request(
        "BYE",
        "alice",
        "call-alice",
        2,
        Some(&tag),
        "",
        "",
    ));
    assert_eq!(out.responses[0].0, 200);
    assert_eq!(h.s.participant_count(), 0);
}

#[test]
fn a_dialog_from_an_untrusted_address_takes_requests_only_on_its_flow() {
    let mut h = Harness::new(10, true, 0);
    let tag = h.join("alice");
    let elsewhere = from_addr("10.0.0.66:5060");
    // The same address on another port is another flow too.
    for source in [elsewhere, from_addr("10.0.0.1:5062")] {
        let reinvite = request("INVITE", "alice", "call-alice", 2, Some(&tag), "", SDP);
        let out = h.send_from(&reinvite, source, None);
        let (status, text) = &out.responses[0];
        assert_eq!(*status, 403, "{text}");
        assert!(text.contains("Warning: 399 "), "{text}");
        assert!(out.sent.is_empty() && out.talk.is_empty());
    }
    let bye = request("BYE", "alice", "call-alice", 3, Some(&tag), "", "");
    assert_eq!(h.send_from(&bye, elsewhere, None).responses[0].0, 403);
    assert_eq!(h.s.participant_count(), 1);
    // Authenticated as someone else: still not hers.
    let bye = request("BYE", "alice", "call-alice", 4, Some(&tag), "", "");
    let out = h.send_from(&bye, elsewhere, Some("sip:mallory@example.com"));
    assert_eq!(out.responses[0].0, 403);
    // Her own flow works.
    let bye = request("BYE", "alice", "call-alice", 5, Some(&tag), "", "");
    assert_eq!(h.send(&bye).responses[0].0, 200);
    assert_eq!(h.s.participant_count(), 0);
}

#[test]
fn an_authenticated_party_or_a_trusted_host_may_use_another_flow() {
    let mut h = Harness::new(10, true, 0);
    let tag = h.join("alice");
    let elsewhere = from_addr("10.0.0.66:5060");
    // A re-INVITE without offer: the focus offers in its 2xx, the answer comes in the ACK.
    let reinvite = request("INVITE", "alice", "call-alice", 2, Some(&tag), "", "");
    let out = h.send_from(&reinvite, elsewhere, Some("sip:alice@example.com"));
    assert_eq!(out.responses[0].0, 200, "{}", out.responses[0].1);
    let ack = request("ACK", "alice", "call-alice", 2, Some(&tag), "", SDP);
    let update = |cseq| request("UPDATE", "alice", "call-alice", cseq, Some(&tag), "", SDP);
    // An ACK from a third flow is dropped: the offer stays unanswered (491 to a new offer).
    h.s.on_ack(h.now, &ack, &from_addr("10.0.0.67:5060"));
    assert_eq!(h.send(&update(3)).responses[0].0, 491);
    // Its ACK comes on the re-INVITE's flow, which is not the dialog's: accepted.
    h.s.on_ack(h.now, &ack, &elsewhere);
    assert_eq!(h.send(&update(4)).responses[0].0, 200);
    assert_eq!(h.s.participant_count(), 1);

    let mut s = (*settings(10, true, 0)).clone();
    s.trust.hosts = vec!["10.0.0.9".parse().unwrap()];
    let mut h = Harness::new(10, true, 0);
    h.s = SessionState::new(Arc::new(s), h.now, SystemTime::UNIX_EPOCH);
    let tag = h.join("alice");
    let bye = request("BYE", "alice", "call-alice", 2, Some(&tag), "", "");
    let out = h.send_from(&bye, from_addr("10.0.0.9:5060"), None);
    assert_eq!(out.responses[0].0, 200);
}

#[test]
fn a_dialog_set_up_through_a_trusted_host_is_not_bound_to_its_flow() {
    let mut s = (*settings(10, true, 0)).clone();
    s.trust.hosts = vec!["10.0.0.1".parse().unwrap()];
    let mut h = Harness::new(10, true, 0);
    h.s = SessionState::new(Arc::new(s), h.now, SystemTime::UNIX_EPOCH);
    let tag = h.join("alice");
    let bye = request("BYE", "alice", "call-alice", 2, Some(&tag), "", "");
    let out = h.send_from(&bye, from_addr("10.0.0.77:5060"), None);
    assert_eq!(out.responses[0].0, 200);
}

#[test]
fn subscription_dialogs_are_bound_too() {
    let mut h = Harness::new(10, true, 0);
    let (tag, _) = h.subscribe("watcher", 3600);
    let refresh = |cseq| {
        request(
            "SUBSCRIBE",
            "watcher",
            "sub-watcher",
            cseq,
            Some(&tag),
            "Event: conference\r\nExpires: 0\r\n",
            "",
        )
    };
    let out = h.send_from(&refresh(2), from_addr("10.0.0.66:5060"), None);
    assert_eq!(out.responses[0].0, 403);
    let forged = request_as(
        "SUBSCRIBE",
        "watcher",
        "sub-watcher",
        3,
        Some(&tag),
        "Event: conference\r\nExpires: 0\r\n",
        "other",
        "",
    );
    assert_eq!(h.send(&forged).responses[0].0, 481);
    assert_eq!(h.s.subscription_count(), 1);
    assert_eq!(h.send(&refresh(4)).responses[0].0, 200);
    assert_eq!(h.s.subscription_count(), 0);
}

#[test]
fn ordinary_subscribers_never_see_dialog_identifiers() {
    let mut h = Harness::new(10, true, 0);
    h.join("alice");
    let (_, out) = h.subscribe("watcher", 3600);
    let notify = out
        .sent
        .iter()
        .find(|s| s.method == Method::Notify)
        .expect("first NOTIFY");
    let body = notify.body();
    assert!(body.contains("sip:alice@example.com"), "{body}");
    assert!(
        !body.contains("call-info") && !body.contains("call-alice"),
        "{body}"
    );
    let mut xml = Vec::new();
    ci::render(&h.s.full_document_with(true), &mut xml);
    assert!(String::from_utf8(xml).unwrap().contains("call-alice"));
}

#[test]
fn a_trusted_subscriber_sees_them_when_configured() {
    let mut s = (*settings(10, true, 0)).clone();
    s.trust.hosts = vec!["10.0.0.1".parse().unwrap()];
    s.call_info_to_trusted = true;
    let mut h = Harness::new(10, true, 0);
    h.s = SessionState::new(Arc::new(s), h.now, SystemTime::UNIX_EPOCH);
    h.join("alice");
    let (_, out) = h.subscribe("watcher", 3600);
    let body = out.sent[0].body().to_string();
    assert!(body.contains("<call-id>call-alice</call-id>"), "{body}");
}

#[test]
fn a_join_from_another_focus_follows_the_cascade_policy() {
    let invite = |call: &str| {
        request_as(
            "INVITE",
            "other",
            call,
            1,
            None,
            "",
            "other-tag",
            ";isfocus",
        )
    };
    let mut h = Harness::new(10, true, 0);
    let out = h.send(&invite("c1"));
    let (status, text) = &out.responses[0];
    assert_eq!(*status, 403, "{text}");
    assert!(text.contains("Cascaded conferences"), "{text}");
    let mut s = (*settings(10, true, 0)).clone();
    s.cascade = crate::config::CascadeRule::Accept;
    h.s = SessionState::new(Arc::new(s), h.now, SystemTime::UNIX_EPOCH);
    assert_eq!(h.send(&invite("c2")).responses[0].0, 200);
}

#[test]
fn refer_bye_to_oneself_is_a_leave() {
    let mut h = Harness::new(10, true, 0);
    let tag = h.join("alice");
    h.join("bob");
    let refer = request(
        "REFER",
        "alice",
        "call-alice",
        2,
        Some(&tag),
        "Refer-To: <sip:alice@example.com;method=BYE>\r\n",
        "",
    );
    let out = h.send(&refer);
    assert_eq!(out.responses[0].0, 202, "{}", out.responses[0].1);
    let methods: Vec<Method> = out.sent.iter().map(|s| s.method.clone()).collect();
    let notify = methods.iter().position(|m| *m == Method::Notify);
    let bye = methods.iter().position(|m| *m == Method::Bye);
    assert!(
        matches!((notify, bye), (Some(n), Some(b)) if n < b),
        "{methods:?}"
    );
    assert_eq!(h.s.participant_count(), 1);
    let doc = h.s.full_document();
    let alice = doc
        .users
        .unwrap()
        .users
        .into_iter()
        .find(|u| u.entity == "sip:alice@example.com")
        .unwrap();
    assert_eq!(
        alice.endpoints[0].disconnection_method,
        Some(DisconnectionMethod::Departed)
    );
    // Removing another still needs the right to remove.
    let bob_tag = h.join("carol");
    let refer = request(
        "REFER",
        "carol",
        "call-carol",
        2,
        Some(&bob_tag),
        "Refer-To: <sip:bob@example.com;method=BYE>\r\n",
        "",
    );
    assert_eq!(h.send(&refer).responses[0].0, 403);
}

/// A subscription an untrusted subscriber set up over TCP is watched on its connection and
/// ends, silently, when that connection closes; one over UDP or on another connection is
/// not touched.
#[test]
fn a_subscription_bound_to_a_connection_ends_when_it_closes() {
    let mut h = Harness::new(10, true, 0);
    let tcp = |conn| Target {
        protocol: Protocol::Tcp,
        addr: "10.0.0.1:5060".parse().unwrap(),
        conn: Some(conn),
    };
    let sub = |who: &str| {
        request(
            "SUBSCRIBE",
            who,
            &format!("sub-{who}"),
            1,
            None,
            "Event: conference\r\nExpires: 600\r\n",
            "",
        )
    };
    assert_eq!(h.send_from(&sub("w1"), tcp(7), None).watched, vec![tcp(7)]);
    assert_eq!(h.send_from(&sub("w2"), tcp(8), None).watched, vec![tcp(8)]);
    assert!(
        h.send(&sub("w3")).watched.is_empty(),
        "UDP has no connection"
    );
    assert_eq!(h.s.subscription_count(), 3);
    h.s.on_flow_closed(h.now, tcp(7));
    let out = h.drain();
    assert_eq!(h.s.subscription_count(), 2);
    assert!(out.sent.is_empty(), "no NOTIFY to a closed connection");
    assert_eq!(out.unregistered, 1);
    // A close of a connection nobody's dialog is bound to changes nothing.
    h.s.on_flow_closed(h.now, tcp(9));
    assert_eq!(h.s.subscription_count(), 2);
}
