//! Panic isolation end to end: a session actor that panics (made to, with the test-only
//! `X-Cpm-Fault: panic` header) ends its own session cleanly (BYE to its participants, a
//! final NOTIFY to its subscribers, charging records closed, the request that triggered it
//! answered 503) and is counted; the other sessions, on the same arbiters, and the process
//! go on.

mod support;

use cpm_focus::conference_info::{DisconnectionMethod, EndpointStatus};
use cpm_focus::sip::HeaderName;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{endpoint_state, follow, user_count, Focus, Launch, Ua, AUDIO_OFFER, TEAM, WAIT};

const OTHER: &str = "sip:other@focus.example.com";

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cpm-focus-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The charging records in `path` once `done` accepts them (within 10 s).
fn records_until(path: &Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let records: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if done(&records) {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "charging records never complete:\n{text}"
        );
        // The charging file has no change notification: poll it.
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn of_type<'a>(records: &'a [Value], t: &str, conference: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["type"] == t && r["conference"] == conference)
        .collect()
}

#[test]
fn a_panicking_session_ends_cleanly_and_the_others_go_on() {
    if !cpm_focus::session::fault::COMPILED {
        support::skip(
            "panic",
            "fault injection is not compiled into this build (a release build without the \
             fault-injection feature: cargo test --features fault-injection --test panic)",
        );
        return;
    }
    let dir = temp_dir("panic");
    let cdr = dir.join("cdr.jsonl");
    let mut focus = Focus::launch(
        &format!(
            "[charging]\npath = \"{}\"\n[[groups]]\nuri = \"{OTHER}\"\n",
            cdr.display()
        ),
        Launch {
            env: vec![(cpm_focus::session::fault::ENV.into(), "1".into())],
            ..Launch::default()
        },
    );
    // The team: alice and bob, watched by walter. The other group: carol, watched by olga.
    let mut walter = Ua::udp(&focus, "walter");
    let (_w, first) = walter.subscribe_to(TEAM);
    let mut team_view = first.doc;
    let mut olga = Ua::udp(&focus, "olga");
    let (_o, first) = olga.subscribe_to(OTHER);
    let mut other_view = first.doc;
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a_call, _) = alice.join(TEAM);
    let mut bob = Ua::udp(&focus, "bob");
    let (b_call, _) = bob.join(TEAM);
    let mut carol = Ua::udp(&focus, "carol");
    let (mut c_call, _) = carol.join(OTHER);
    follow(&mut walter, &mut team_view, |v| user_count(v) == Some(2));
    follow(&mut olga, &mut other_view, |v| user_count(v) == Some(1));

    // Alice's in-dialog request makes the team's session actor panic.
    let b = alice.send_request(&mut a_call, "INFO", "X-Cpm-Fault: panic\r\n", None);
    let r = alice.expect_final(&b);
    assert_eq!(r.status, 503, "the request that hit the panic is answered");

    // Everyone in the team is told: BYE (cause 500) ...
    for (ua, call) in [(&mut alice, &a_call), (&mut bob, &b_call)] {
        let bye = ua.expect_bye(call);
        assert_eq!(
            bye.headers.get(HeaderName::Reason),
            Some("SIP;cause=500;text=\"conference failed (internal error)\""),
            "{}",
            ua.name
        );
    }
    // ... and the watcher gets the final state: both failed, subscription terminated.
    let last = loop {
        let n = walter.expect_notify();
        cpm_focus::conference_info::apply(&mut team_view, &n.doc).unwrap();
        if n.is_terminated() {
            break n;
        }
    };
    assert_eq!(last.state, "terminated;reason=noresource");
    for who in [alice.aor(), bob.aor()] {
        assert_eq!(
            endpoint_state(&team_view, &who),
            Some((
                EndpointStatus::Disconnected,
                Some(DisconnectionMethod::Failed)
            )),
            "{who}"
        );
    }
    assert_eq!(focus.metric("focus_session_panics_total"), Some(1.0));
    assert_eq!(focus.metric("focus_sip_abandoned_total"), Some(1.0));

    // Charging: both participants left (failed), the session stopped.
    let team = TEAM;
    let records = records_until(&cdr, |r| {
        of_type(r, "session_stop", team).len() == 1
            && of_type(r, "participant_leave", team).len() == 2
    });
    for leave in of_type(&records, "participant_leave", TEAM) {
        assert_eq!(leave["disconnection_method"], "failed", "{leave}");
    }
    assert_eq!(
        of_type(&records, "session_stop", TEAM)[0]["participants_total"],
        2
    );

    // The other session, on the same arbiters, did not notice: carol re-INVITEs and
    // leaves, olga sees it.
    let b = carol.invite(&mut c_call, Some(AUDIO_OFFER));
    assert_eq!(carol.expect_final(&b).status, 200);
    carol.ack(&c_call);
    assert_eq!(carol.bye(&mut c_call).status, 200);
    follow(&mut olga, &mut other_view, |v| {
        endpoint_state(v, &carol.aor())
            == Some((
                EndpointStatus::Disconnected,
                Some(DisconnectionMethod::Departed),
            ))
    });
    // The team is a conference again for whoever joins next (a fresh session).
    let mut dave = Ua::udp(&focus, "dave");
    let (mut d_call, _) = dave.join(TEAM);
    let b = dave.send_request(&mut d_call, "OPTIONS", "", None);
    assert_eq!(dave.expect_final(&b).status, 200);
    assert_eq!(dave.bye(&mut d_call).status, 200);
    // Alice's old dialog is gone with the session.
    let b = alice.send_request(&mut a_call, "OPTIONS", "", None);
    assert_eq!(alice.expect_final(&b).status, 481);

    focus.terminate();
    assert_eq!(
        focus.wait_exit(WAIT).code(),
        Some(0),
        "the process survived"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_fault_header_does_nothing_unless_armed() {
    let focus = Focus::start("");
    let mut alice = Ua::udp(&focus, "alice");
    let (mut call, _) = alice.join(TEAM);
    let b = alice.send_request(&mut call, "OPTIONS", "X-Cpm-Fault: panic\r\n", None);
    assert_eq!(alice.expect_final(&b).status, 200);
    assert_eq!(focus.metric("focus_session_panics_total"), Some(0.0));
    assert_eq!(alice.bye(&mut call).status, 200);
}
