//! Configuration reload end to end (issue 8 item 9): the focus re-reads its file on SIGHUP;
//! sessions survive, new joins see the new policy, a removed group takes no new joins but its
//! live session goes on until empty, a new group is joinable at once; an invalid file is
//! refused with the error logged and the running configuration stays.

mod support;

use std::time::{Duration, Instant};
use support::{Focus, Ua, WAIT};

const OLD: &str = "sip:old@focus.example.com";
const NEW: &str = "sip:new@focus.example.com";
const TEAM: &str = "sip:team@focus.example.com";

/// Rewrites the focus's configuration file: `edit` gets the parsed TOML.
fn rewrite(focus: &Focus, edit: impl FnOnce(&mut toml::Table)) {
    let text = std::fs::read_to_string(focus.config_path()).unwrap();
    let mut table: toml::Table = toml::from_str(&text).unwrap();
    edit(&mut table);
    std::fs::write(focus.config_path(), toml::to_string(&table).unwrap()).unwrap();
}

fn group(uri: &str, max: i64) -> toml::Value {
    let mut g = toml::Table::new();
    g.insert("uri".into(), uri.into());
    g.insert("max_participants".into(), max.into());
    toml::Value::Table(g)
}

/// Waits until the log contains `needle`.
fn wait_log(focus: &Focus, needle: &str) {
    let deadline = Instant::now() + WAIT * 2;
    while !focus.log().contains(needle) {
        assert!(Instant::now() < deadline, "{needle:?} never logged");
        // The log has no change notification: poll it.
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_swaps_groups_and_policy_without_dropping_sessions() {
    let focus = Focus::start(
        r#"
        [[groups]]
        uri = "sip:old@focus.example.com"
        "#,
    );
    let mut alice = Ua::udp(&focus, "alice");
    let (mut alice_call, _) = alice.join(TEAM);
    let mut bob = Ua::udp(&focus, "bob");
    let (mut bob_call, _) = bob.join(OLD);
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_w, _) = watcher.subscribe_to(TEAM);

    // The new file: team holds at most one participant, old is gone, new is there.
    rewrite(&focus, |t| {
        t.insert(
            "groups".into(),
            toml::Value::Array(vec![group(TEAM, 1), group(NEW, 10)]),
        );
    });
    focus.hangup();
    focus.wait_metric(
        "focus_config_reloads_total{trigger=\"sighup\",outcome=\"applied\"}",
        WAIT,
        |v| v == 1.0,
    );
    assert_eq!(
        focus.metric("focus_config_last_reload_successful"),
        Some(1.0)
    );
    wait_log(&focus, "configuration reloaded");

    // New joins see the new policy: team is full with alice in it.
    let mut carol = Ua::udp(&focus, "carol");
    assert_eq!(
        carol.try_join(TEAM).1.status,
        486,
        "team now holds one participant"
    );
    // The new group is joinable.
    let mut dave = Ua::udp(&focus, "dave");
    let (mut dave_call, _) = dave.join(NEW);
    // The removed group takes nobody new, but bob's session goes on.
    let mut erin = Ua::udp(&focus, "erin");
    assert_eq!(erin.try_join(OLD).1.status, 404);
    let mut probe = bob_call.clone();
    let b = bob.send_request(&mut probe, "OPTIONS", "", None);
    assert_eq!(bob.expect_final(&b).status, 200, "bob's dialog survived");
    bob_call.cseq = probe.cseq;
    assert_eq!(bob.bye(&mut bob_call).status, 200);
    // Empty, the removed group's session ends; the group stays gone.
    focus.wait_metric("focus_session_actors", WAIT, |v| v == 2.0);
    assert_eq!(erin.try_join(OLD).1.status, 404);
    // The subscriber's dialog survived too: alice's leave reaches it.
    assert_eq!(alice.bye(&mut alice_call).status, 200);
    let mut left = false;
    let deadline = Instant::now() + WAIT;
    while !left && Instant::now() < deadline {
        if let Some(n) = watcher.next_notify(WAIT) {
            left = n.doc.conference_state.and_then(|s| s.user_count) == Some(0);
        }
    }
    assert!(left, "the subscriber saw alice leave");

    // An invalid file is refused with its error; the running configuration stays.
    rewrite(&focus, |t| {
        t.insert(
            "groups".into(),
            toml::Value::Array(vec![group("sip:bad@elsewhere.example.net", 10)]),
        );
    });
    focus.hangup();
    focus.wait_metric(
        "focus_config_reloads_total{trigger=\"sighup\",outcome=\"refused\"}",
        WAIT,
        |v| v == 1.0,
    );
    assert_eq!(
        focus.metric("focus_config_last_reload_successful"),
        Some(0.0)
    );
    wait_log(&focus, "host must be the focus domain");
    let mut frank = Ua::udp(&focus, "frank");
    frank.join(NEW);
    assert_eq!(carol.try_join(TEAM).1.status, 200, "team still configured");
    assert_eq!(dave.bye(&mut dave_call).status, 200);

    // Garbage that is not TOML at all is refused the same way.
    std::fs::write(focus.config_path(), "[[groups]\nuri = ").unwrap();
    focus.hangup();
    focus.wait_metric(
        "focus_config_reloads_total{trigger=\"sighup\",outcome=\"refused\"}",
        WAIT,
        |v| v == 2.0,
    );
    let mut gina = Ua::udp(&focus, "gina");
    gina.join(NEW);
}
