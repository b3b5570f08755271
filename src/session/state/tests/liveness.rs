//! Session timers, journaling and crash recovery of a group session, in virtual time (a
//! child of the state tests: it shares their harness).

use super::*;
use crate::recovery::journal::{Event as JournalEvent, LiveSession};
use crate::session::ChargeEvent;
use crate::session_timer::TimerSettings;

/// A chat offer (MSRP, the participant connects).
const CHAT: &str = "v=0\r\no=alice 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\nm=message 7000 TCP/MSRP *\r\na=path:msrp://10.0.0.1:7000/alice;tcp\r\na=accept-types:message/cpim\r\na=setup:active\r\n";

fn harness_with(timer: TimerSettings) -> Harness {
    let mut s = (*settings(10, true, 0)).clone();
    s.session_timer = timer;
    s.subject = String::new();
    let now = Instant::now();
    Harness {
        s: SessionState::new(Arc::new(s), now, SystemTime::UNIX_EPOCH),
        now,
        txn: 0,
    }
}

fn timers(expires: u32, min_se: u32) -> TimerSettings {
    TimerSettings {
        enabled: true,
        expires,
        min_se,
    }
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
}

/// A response to request `token` from the participant, CSeq `cseq METHOD`.
fn reply(h: &mut Harness, token: u64, status: u16, cseq: &str, extra: &str, body: &str) -> Out {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/sdp\r\n"
    };
    let r = resp(&format!(
        "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nFrom: <sip:team@focus.example.com>;tag=f\r\nTo: <sip:alice@example.com>;tag=alice-tag\r\nCall-ID: call-alice\r\nCSeq: {cseq}\r\n{extra}{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    h.s.on_response(h.now, token, &r);
    h.drain()
}

fn join_with(h: &mut Harness, extra: &str, body: &str) -> (u16, String) {
    let out = h.send(&request(
        "INVITE",
        "alice",
        "call-alice",
        1,
        None,
        extra,
        body,
    ));
    out.responses[0].clone()
}

fn byes(out: &Out) -> Vec<&Sent> {
    out.sent
        .iter()
        .filter(|s| s.method == Method::Bye)
        .collect()
}

#[test]
fn a_too_small_session_interval_is_422_with_min_se() {
    let mut h = harness_with(timers(1800, 90));
    let (status, text) = join_with(&mut h, "Supported: timer\r\nSession-Expires: 30\r\n", SDP);
    assert_eq!(status, 422, "{text}");
    assert!(text.starts_with("SIP/2.0 422 Session Interval Too Small\r\n"));
    assert_eq!(header(&text, "Min-SE"), Some("90"));
    assert!(h.s.is_idle());
    let (status, text) = join_with(&mut h, "Session-Expires: soon\r\n", SDP);
    assert_eq!(status, 400);
    assert!(text.starts_with("SIP/2.0 400 Malformed Session-Expires header\r\n"));
}

#[test]
fn the_participant_refreshes_and_is_hung_up_when_it_stops() {
    let mut h = harness_with(timers(1800, 90));
    let (status, text) = join_with(
        &mut h,
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
        SDP,
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(header(&text, "Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(header(&text, "Require"), Some("timer"));
    assert_eq!(header(&text, "Supported"), Some("timer"));
    let tag = text
        .lines()
        .find(|l| l.starts_with("To:"))
        .and_then(|l| l.split("tag=").nth(1))
        .unwrap()
        .to_string();
    // A refresh (UPDATE without a body) at 40 s.
    let out = h.advance(Duration::from_secs(40));
    assert!(byes(&out).is_empty());
    let out = h.send(&request(
        "UPDATE",
        "alice",
        "call-alice",
        2,
        Some(&tag),
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
        "",
    ));
    assert_eq!(out.responses[0].0, 200);
    assert_eq!(
        header(&out.responses[0].1, "Session-Expires"),
        Some("90;refresher=uac")
    );
    // The old deadline (60 s) passes quietly; the new one is 40 + 60 s.
    let out = h.advance(Duration::from_secs(59));
    assert!(byes(&out).is_empty());
    let out = h.advance(Duration::from_secs(1));
    let bye = byes(&out);
    assert_eq!(bye.len(), 1, "BYE at expiry - min(32, 90/3)");
    assert_eq!(
        bye[0].header("Reason"),
        Some("SIP;cause=408;text=\"session timer expired\"")
    );
    assert_eq!(h.s.participant_count(), 0);
    assert!(out.charges.iter().any(|c| matches!(
        c,
        ChargeEvent::Leave {
            method: DisconnectionMethod::Failed,
            ..
        }
    )));
    assert!(matches!(
        out.journal.as_slice(),
        [JournalEvent::Leave { .. }, JournalEvent::Close]
    ));
}

#[test]
fn without_timer_support_the_focus_refreshes_by_reinvite_and_ends_on_481() {
    let mut h = harness_with(timers(120, 90));
    let (status, text) = join_with(&mut h, "", SDP);
    assert_eq!(status, 200);
    assert_eq!(header(&text, "Session-Expires"), Some("120;refresher=uas"));
    assert_eq!(header(&text, "Require"), None);
    let answer = text.split_once("\r\n\r\n").unwrap().1.to_string();
    assert!(h.advance(Duration::from_secs(59)).sent.is_empty());
    let out = h.advance(Duration::from_secs(1));
    let refresh = out
        .sent
        .iter()
        .find(|s| s.method == Method::Invite)
        .expect("a refresh re-INVITE at half time");
    assert_eq!(refresh.header("CSeq"), Some("2 INVITE"));
    assert_eq!(refresh.header("Session-Expires"), Some("120;refresher=uac"));
    assert_eq!(refresh.header("Supported"), Some("timer"));
    // The SDP of the 200, unchanged (same o= version).
    assert_eq!(refresh.body(), answer);
    // 200: ACKed with the re-INVITE's CSeq; the next refresh is 60 s later.
    let out = reply(&mut h, refresh.token, 200, "2 INVITE", "", "");
    let ack = out.sent.iter().find(|s| s.method == Method::Ack).unwrap();
    assert_eq!(ack.header("CSeq"), Some("2 ACK"));
    assert!(out
        .journal
        .iter()
        .any(|e| matches!(e, JournalEvent::Update { local_cseq: 2, .. })));
    assert!(h.advance(Duration::from_secs(59)).sent.is_empty());
    let out = h.advance(Duration::from_secs(1));
    let refresh = out
        .sent
        .iter()
        .find(|s| s.method == Method::Invite)
        .unwrap();
    assert_eq!(refresh.header("CSeq"), Some("3 INVITE"));
    // The participant's dialog is gone: BYE.
    let out = reply(&mut h, refresh.token, 481, "3 INVITE", "", "");
    assert_eq!(byes(&out).len(), 1);
    assert_eq!(h.s.participant_count(), 0);
}

#[test]
fn a_participant_that_allows_update_is_refreshed_by_update_and_an_unanswered_refresh_expires() {
    let mut h = harness_with(timers(100, 90));
    let (status, _) = join_with(&mut h, "Allow: INVITE, ACK, BYE, UPDATE\r\n", SDP);
    assert_eq!(status, 200);
    let out = h.advance(Duration::from_secs(50));
    let refresh = out
        .sent
        .iter()
        .find(|s| s.method == Method::Update)
        .unwrap();
    assert_eq!(refresh.body(), "");
    // No answer: at the end of the interval the session is over.
    let out = h.advance(Duration::from_secs(49));
    assert!(out.sent.is_empty());
    let out = h.advance(Duration::from_secs(1));
    assert_eq!(byes(&out).len(), 1);
    // The failure of the UPDATE transaction, later, changes nothing more.
    h.s.on_failure(h.now, refresh.token, crate::endpoint::Failure::Timeout);
    assert!(h.drain().sent.is_empty());
}

#[test]
fn glare_on_a_refresh_retries_and_other_answers_prove_life() {
    let mut h = harness_with(timers(100, 90));
    join_with(&mut h, "", SDP);
    let out = h.advance(Duration::from_secs(50));
    let r1 = out
        .sent
        .iter()
        .find(|s| s.method == Method::Invite)
        .unwrap();
    // 491: retried 2.1 s later.
    let _ = reply(&mut h, r1.token, 491, "2 INVITE", "", "");
    assert!(h.advance(Duration::from_secs(2)).sent.is_empty());
    let out = h.advance(Duration::from_millis(100));
    let r2 = out
        .sent
        .iter()
        .find(|s| s.method == Method::Invite)
        .unwrap();
    // 488: the participant answered in its dialog, the session stands.
    let _ = reply(&mut h, r2.token, 488, "3 INVITE", "", "");
    assert!(h.advance(Duration::from_secs(49)).sent.is_empty());
    assert_eq!(h.s.participant_count(), 1);
}

#[test]
fn disabled_timers_add_nothing_and_refuse_require_timer() {
    let mut h = harness_with(TimerSettings {
        enabled: false,
        ..TimerSettings::default()
    });
    let (status, text) = join_with(&mut h, "Require: timer\r\nSession-Expires: 90\r\n", SDP);
    assert_eq!(status, 420, "{text}");
    assert_eq!(header(&text, "Unsupported"), Some("timer"));
    let (status, text) = join_with(&mut h, "Session-Expires: 90\r\n", SDP);
    assert_eq!(status, 200);
    assert_eq!(header(&text, "Session-Expires"), None);
    assert_eq!(header(&text, "Supported"), None);
}

/// Joins alice with a chat offer; returns the journal events of the join.
fn chat_join(h: &mut Harness) -> Vec<JournalEvent> {
    let out = h.send(&request(
        "INVITE",
        "alice",
        "call-alice",
        1,
        None,
        "Contribution-ID: cid-7\r\nSubject: Lunch\r\nAllow: INVITE, UPDATE\r\n",
        CHAT,
    ));
    assert_eq!(out.responses[0].0, 200);
    out.journal
}

#[test]
fn joins_and_leaves_are_journaled() {
    let mut h = harness_with(timers(1800, 90));
    let events = chat_join(&mut h);
    let [JournalEvent::Open { info }, JournalEvent::Join { participant, .. }] = events.as_slice()
    else {
        panic!("{events:?}")
    };
    assert_eq!(info.uri, "sip:team@focus.example.com");
    assert_eq!(info.kind, "predefined");
    assert_eq!(info.contribution_id.as_deref(), Some("cid-7"));
    assert_eq!(info.subject.as_deref(), Some("Lunch"));
    assert_eq!(participant.real, "sip:alice@example.com");
    assert_eq!(participant.call_id, "call-alice");
    assert_eq!(participant.remote_tag, "alice-tag");
    assert_eq!(participant.remote_target, "sip:alice@10.0.0.1:5060");
    assert_eq!(participant.local_cseq, 1);
    assert!(participant.peer_update);
    assert!(participant.sdp.contains("m=message 2855 TCP/MSRP *"));
    let tag = participant.local_tag.clone();
    let out = h.send(&request(
        "BYE",
        "alice",
        "call-alice",
        2,
        Some(&tag),
        "",
        "",
    ));
    assert!(matches!(
        out.journal.as_slice(),
        [JournalEvent::Leave { .. }, JournalEvent::Close]
    ));
}

/// The live session a crash would leave after alice joined a chat.
fn crashed_session() -> LiveSession {
    let mut h = harness_with(timers(1800, 90));
    let mut live = crate::recovery::journal::Live::default();
    for (i, e) in chat_join(&mut h).into_iter().enumerate() {
        live.apply(&crate::recovery::journal::Line {
            ts: i as u64,
            key: "team".into(),
            instance: 1,
            event: e,
        });
    }
    live.sessions().remove(0)
}

#[test]
fn a_recovered_session_reinvites_in_the_old_dialog_and_resumes_on_200() {
    let crashed = crashed_session();
    let old = crashed.participants.values().next().unwrap().clone();
    let mut h = harness_with(timers(1800, 90));
    h.s.recover(h.now, crashed);
    let out = h.drain();
    assert_eq!(
        out.registered, 1,
        "the old dialog routes to the new session"
    );
    let reinvite = out
        .sent
        .iter()
        .find(|s| s.method == Method::Invite)
        .unwrap();
    assert_eq!(reinvite.header("Call-ID"), Some("call-alice"));
    assert_eq!(
        reinvite.header("From"),
        Some(format!("<sip:team@focus.example.com>;tag={}", old.local_tag).as_str())
    );
    assert_eq!(
        reinvite.header("To"),
        Some("\"alice\" <sip:alice@example.com>;tag=alice-tag")
    );
    assert_eq!(reinvite.header("CSeq"), Some("1002 INVITE"));
    assert_eq!(reinvite.header("Contribution-ID"), Some("cid-7"));
    assert_eq!(reinvite.header("Subject"), Some("Lunch"));
    assert_eq!(
        reinvite.header("Contact"),
        Some("<sip:team@127.0.0.1:5060>;isfocus")
    );
    // Same o= session, next version, same m-lines; the chat stream on a new MSRP session.
    let offer = crate::sdp::parse(reinvite.body().as_bytes()).unwrap();
    let before = crate::sdp::parse(old.sdp.as_bytes()).unwrap();
    assert_eq!(offer.origin.session_id, before.origin.session_id);
    assert_eq!(
        offer.origin.session_version.parse::<u64>().unwrap(),
        before.origin.session_version.parse::<u64>().unwrap() + 1
    );
    let kinds = |s: &crate::sdp::SessionDescription| {
        s.media
            .iter()
            .map(|m| (m.media.clone(), m.port))
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&offer), kinds(&before));
    assert!(reinvite.body().contains("a=setup:passive"));
    assert_ne!(offer.to_string(), before.to_string());
    // While it rings, the roster shows alice being called.
    let users = h.s.full_document().users.unwrap().users;
    assert_eq!(
        users[0].endpoints[0].status,
        Some(ci::EndpointStatus::DialingOut)
    );
    assert!(out.journal.iter().any(
        |e| matches!(e, JournalEvent::Join { participant, .. } if participant.local_cseq == 1001)
    ));
    // She accepts with a new MSRP end.
    let answer = "v=0\r\no=alice 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\nm=message 7002 TCP/MSRP *\r\na=path:msrp://10.0.0.1:7002/alice2;tcp\r\na=accept-types:message/cpim\r\na=setup:active\r\n";
    let out = reply(
        &mut h,
        reinvite.token,
        200,
        "1002 INVITE",
        "Contact: <sip:alice@10.0.0.1:5062>\r\nSupported: timer\r\nSession-Expires: 1800;refresher=uas\r\n",
        answer,
    );
    let ack = out.sent.iter().find(|s| s.method == Method::Ack).unwrap();
    assert_eq!(ack.header("CSeq"), Some("1002 ACK"));
    assert_eq!(out.msrp_added.len(), 1);
    assert_eq!(
        out.msrp_added[0].1.peer_path[0].to_string(),
        "msrp://10.0.0.1:7002/alice2;tcp"
    );
    assert!(out.charges.iter().any(|c| matches!(
        c,
        ChargeEvent::SessionStart {
            recovered: true,
            ..
        }
    )));
    assert!(out.charges.iter().any(|c| matches!(
        c,
        ChargeEvent::Join {
            dialed_out: false,
            ..
        }
    )));
    let users = h.s.full_document().users.unwrap().users;
    assert_eq!(users[0].entity, "sip:alice@example.com");
    assert_eq!(
        users[0].endpoints[0].status,
        Some(ci::EndpointStatus::Connected)
    );
    // The refreshed target is where the next request goes.
    assert!(out.journal.iter().any(|e| matches!(
        e,
        JournalEvent::Update { remote_target, .. } if remote_target == "sip:alice@10.0.0.1:5062"
    )));
    // Her next request in the old dialog is hers, whatever CSeq she is at.
    let tag = old.local_tag.clone();
    let out = h.send(&request(
        "BYE",
        "alice",
        "call-alice",
        7,
        Some(&tag),
        "",
        "",
    ));
    assert_eq!(out.responses[0].0, 200);
    assert_eq!(h.s.participant_count(), 0);
}

#[test]
fn a_participant_that_lost_the_dialog_is_called_again_and_a_refusal_removes_it() {
    let mut crashed = crashed_session();
    // Her identity counts (asserted by the trusted core): only such a participant is called
    // again (see the next test).
    for p in crashed.participants.values_mut() {
        p.proof = "asserted".into();
    }
    let mut h = harness_with(timers(1800, 90));
    h.s.recover(h.now, crashed.clone());
    let out = h.drain();
    let reinvite = out
        .sent
        .iter()
        .find(|s| s.method == Method::Invite)
        .unwrap();
    // 481: a new INVITE to her Contact, From the conference, same conversation.
    let out = reply(&mut h, reinvite.token, 481, "1002 INVITE", "", "");
    assert_eq!(out.unregistered, 1);
    let invite = out
        .sent
        .iter()
        .find(|s| s.method == Method::Invite)
        .expect("called again");
    assert_ne!(invite.header("Call-ID"), Some("call-alice"));
    assert!(invite
        .header("From")
        .unwrap()
        .starts_with("\"Team\" <sip:team@focus.example.com>;tag="));
    assert_eq!(
        invite.header("To"),
        Some("<sip:alice@example.com>"),
        "{}",
        invite.text
    );
    assert_eq!(invite.header("Contribution-ID"), Some("cid-7"));
    assert_eq!(invite.header("Referred-By"), None);
    let users = h.s.full_document().users.unwrap().users;
    assert_eq!(users.len(), 1);
    assert_eq!(
        users[0].endpoints[0].joining_method,
        Some(ci::JoiningMethod::DialedOut)
    );

    // Another participant refuses the re-INVITE: BYE, and she is gone.
    let mut h = harness_with(timers(1800, 90));
    h.s.recover(h.now, crashed);
    let out = h.drain();
    let reinvite = out
        .sent
        .iter()
        .find(|s| s.method == Method::Invite)
        .unwrap();
    let out = reply(&mut h, reinvite.token, 603, "1002 INVITE", "", "");
    assert_eq!(byes(&out).len(), 1);
    assert_eq!(h.s.participant_count(), 0);
    assert!(matches!(
        out.journal.as_slice(),
        [JournalEvent::Leave { .. }, JournalEvent::Close]
    ));
}

#[test]
fn an_unverified_participant_that_lost_the_dialog_is_not_called_again() {
    let mut crashed = crashed_session();
    for p in crashed.participants.values_mut() {
        p.proof = "claimed".into();
    }
    let mut h = harness_with(timers(1800, 90));
    h.s.recover(h.now, crashed);
    let out = h.drain();
    let reinvite = out
        .sent
        .iter()
        .find(|s| s.method == Method::Invite)
        .unwrap();
    let out = reply(&mut h, reinvite.token, 481, "1002 INVITE", "", "");
    assert!(
        !out.sent.iter().any(|s| s.method == Method::Invite),
        "an outsider's Contact is called as the address it claimed"
    );
    assert_eq!(h.s.participant_count(), 0);
    assert!(out.charges.iter().any(|c| matches!(
        c,
        ChargeEvent::Leave {
            method: DisconnectionMethod::Failed,
            ..
        }
    )));
}

#[test]
fn an_aborted_session_hangs_up_as_failed() {
    let mut h = harness_with(timers(1800, 90));
    chat_join(&mut h);
    let (_, _) = h.subscribe("watcher", 600);
    h.drain();
    h.s.abort(h.now);
    let out = h.drain();
    let bye = byes(&out);
    assert_eq!(bye.len(), 1);
    assert_eq!(
        bye[0].header("Reason"),
        Some("SIP;cause=500;text=\"conference failed (internal error)\"")
    );
    let notify = out
        .sent
        .iter()
        .find(|s| s.method == Method::Notify)
        .unwrap();
    assert_eq!(
        notify.header("Subscription-State"),
        Some("terminated;reason=noresource")
    );
    assert!(out.charges.iter().any(|c| matches!(
        c,
        ChargeEvent::Leave {
            method: DisconnectionMethod::Failed,
            ..
        }
    )));
    assert!(out
        .charges
        .iter()
        .any(|c| matches!(c, ChargeEvent::SessionStop { .. })));
    assert!(out.journal.iter().any(|e| matches!(e, JournalEvent::Close)));
}
