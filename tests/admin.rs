//! The admin API end to end over real HTTP and SIP sockets: probes, bearer token, session
//! list and roster, lock and unlock, removing a participant, ending a session, reload; each
//! action reaches participants and subscribers as SIP (BYE, NOTIFY) and is counted.

mod support;

use cpm_focus::conference_info::ConferenceInfo;
use cpm_focus::sip::HeaderName;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{follow, http, metric, Focus, Ua, TEAM, WAIT};

const TOKEN: &str = "e2e-0123456789abcdef";

/// Waits until `done` holds of the watcher's view.
fn until(ua: &mut Ua, view: &mut ConferenceInfo, done: impl FnMut(&ConferenceInfo) -> bool) {
    follow(ua, view, done);
}

#[test]
fn operators_list_inspect_and_moderate_sessions() {
    let cdr = std::env::temp_dir().join(format!("cpm-focus-admin-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&cdr);
    let focus = Focus::start(&format!(
        r#"
        [admin]
        token = "{TOKEN}"
        [charging]
        path = "{}"
        fsync = "always"
        "#,
        cdr.display()
    ));
    // Probes need no token; everything else does.
    let health = focus.admin("GET", "/health", None);
    assert_eq!(
        (health.status, health.json()["status"].as_str()),
        (200, Some("ok"))
    );
    let ready = focus.admin("GET", "/ready", None);
    assert_eq!(
        (ready.status, ready.json()["ready"].as_bool()),
        (200, Some(true))
    );
    let refused = focus.admin("GET", "/v1/sessions", None);
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        focus
            .admin("GET", "/v1/sessions", Some("wrong-token-0123456"))
            .status,
        401
    );
    let empty = focus.admin("GET", "/v1/sessions", Some(TOKEN));
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["sessions"].as_array().map(Vec::len), Some(0));

    let mut alice = Ua::udp(&focus, "alice");
    let (alice_call, _) = alice.join(TEAM);
    let mut bob = Ua::udp(&focus, "bob");
    let (bob_call, _) = bob.join(TEAM);
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_w, first) = watcher.subscribe_to(TEAM);
    let mut view = first.doc;

    // The list and one session's roster (by key and by conference URI).
    let list = focus.admin("GET", "/v1/sessions", Some(TOKEN)).json();
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{list}");
    let team = &sessions[0];
    assert_eq!(team["uri"], TEAM);
    assert_eq!(team["kind"], "predefined");
    assert_eq!(team["participants"], 2);
    assert_eq!(team["subscriptions"], 1);
    assert_eq!(team["locked"], false);
    assert!(team["floor_holder"].is_null());
    assert!(
        team["created"].as_str().is_some_and(|c| c.ends_with('Z')),
        "{team}"
    );
    assert!(team.get("roster").is_none(), "the list carries no rosters");
    let shown = focus.admin(
        "GET",
        "/v1/sessions/sip%3Ateam%40focus.example.com",
        Some(TOKEN),
    );
    assert_eq!(shown.status, 200);
    let roster = shown.json()["roster"].as_array().unwrap().clone();
    let uris: Vec<&str> = roster.iter().filter_map(|p| p["uri"].as_str()).collect();
    assert_eq!(uris, ["sip:alice@example.com", "sip:bob@example.com"]);
    assert_eq!(roster[0]["status"], "connected");
    assert_eq!(roster[0]["joining_method"], "dialed-in");
    assert_eq!(roster[0]["role"], "participant");
    assert_eq!(roster[0]["call_id"], alice_call.call_id.as_str());
    assert_eq!(
        focus
            .admin("GET", "/v1/sessions/nosuch", Some(TOKEN))
            .status,
        404
    );

    // Lock: dial-ins are refused as a moderator's lock refuses them; subscribers see it.
    let locked = focus.admin("POST", "/v1/sessions/team/lock", Some(TOKEN));
    assert_eq!(
        (locked.status, &locked.json()["locked"]),
        (200, &serde_json::json!(true))
    );
    until(&mut watcher, &mut view, |v| {
        v.conference_state.and_then(|s| s.locked) == Some(true)
    });
    let mut carol = Ua::udp(&focus, "carol");
    assert_eq!(carol.try_join(TEAM).1.status, 403);
    let unlocked = focus.admin("POST", "/v1/sessions/team/unlock", Some(TOKEN));
    assert_eq!(unlocked.json()["locked"], false);
    let (carol_call, _) = carol.join(TEAM);

    // Remove bob: he gets a BYE naming the operator; an unknown participant is 404.
    let removed = focus.admin(
        "DELETE",
        "/v1/sessions/team/participants/sip%3Abob%40example.com",
        Some(TOKEN),
    );
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(removed.json()["participants"], 2);
    let bye = bob.expect_bye(&bob_call);
    assert_eq!(
        bye.headers.get(HeaderName::Reason),
        Some("SIP;cause=200;text=\"removed by the operator\"")
    );
    let gone = focus.admin(
        "DELETE",
        "/v1/sessions/team/participants/sip%3Abob%40example.com",
        Some(TOKEN),
    );
    assert_eq!(gone.status, 404);

    // End the session: BYE to everyone, a final NOTIFY, charging closed.
    let ended = focus.admin("DELETE", "/v1/sessions/team", Some(TOKEN));
    assert_eq!(ended.status, 200, "{}", ended.body);
    assert_eq!(ended.json()["participants"], 0);
    alice.expect_bye(&alice_call);
    carol.expect_bye(&carol_call);
    let last = loop {
        let n = watcher.next_notify(WAIT).expect("a final NOTIFY");
        if n.is_terminated() {
            break n;
        }
    };
    assert!(last.state.contains("noresource"), "{}", last.state);
    let deadline = Instant::now() + WAIT;
    while focus.admin("GET", "/v1/sessions/team", Some(TOKEN)).status != 404 {
        assert!(Instant::now() < deadline, "the ended session still runs");
        // Session end has no notification over HTTP: poll.
        std::thread::sleep(Duration::from_millis(20));
    }
    let deadline = Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&cdr).unwrap_or_default();
        if text.contains("\"session_stop\"") {
            assert_eq!(text.matches("\"participant_leave\"").count(), 3, "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "no session_stop record:\n{text}");
        // The charging file has no change notification: poll it.
        std::thread::sleep(Duration::from_millis(20));
    }

    // Bad requests get clear answers; every request is counted and logged with who asked.
    let wrong = focus.admin("GET", "/v1/reload", Some(TOKEN));
    assert_eq!((wrong.status, wrong.header("allow")), (405, Some("POST")));
    assert_eq!(focus.admin("GET", "/v1/nothing", Some(TOKEN)).status, 404);
    let raw = http(
        focus.admin_addr,
        "POST",
        "/v1/reload",
        &[("Transfer-Encoding", "chunked")],
        "",
    );
    assert_eq!(raw.status, 400);
    for (series, want) in [
        (
            "focus_admin_requests_total{action=\"lock\",status=\"200\"}",
            1.0,
        ),
        (
            "focus_admin_requests_total{action=\"unlock\",status=\"200\"}",
            1.0,
        ),
        (
            "focus_admin_requests_total{action=\"remove\",status=\"200\"}",
            1.0,
        ),
        (
            "focus_admin_requests_total{action=\"remove\",status=\"404\"}",
            1.0,
        ),
        (
            "focus_admin_requests_total{action=\"end\",status=\"200\"}",
            1.0,
        ),
        (
            "focus_admin_requests_total{action=\"list\",status=\"401\"}",
            2.0,
        ),
        (
            "focus_admin_requests_total{action=\"health\",status=\"200\"}",
            1.0,
        ),
        (
            "focus_admin_requests_total{action=\"unknown\",status=\"400\"}",
            1.0,
        ),
    ] {
        assert_eq!(metric(&focus, series), want, "{series}");
    }
    let log = focus.log();
    assert!(
        log.lines().any(|l| l.contains("admin request")
            && l.contains("action=\"end\"")
            && l.contains("e2e-test")),
        "the end is logged with who asked"
    );
    let _ = std::fs::remove_file(&cdr);
}

#[test]
fn reload_through_the_api_reports_changes_and_refuses_invalid_files() {
    let focus = Focus::start("");
    let mut alice = Ua::udp(&focus, "alice");
    let (mut call, _) = alice.join(TEAM);
    let original = std::fs::read_to_string(focus.config_path()).unwrap();
    let added = format!(
        "{original}\n[[groups]]\nuri = \"sip:ops@focus.example.com\"\nmax_participants = 5\n"
    );
    std::fs::write(focus.config_path(), &added).unwrap();
    let ok = focus.admin("POST", "/v1/reload", None);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let report = &ok.json()["report"];
    assert_eq!(
        report["groups_added"],
        serde_json::json!(["sip:ops@focus.example.com"])
    );
    assert_eq!(report["groups_removed"], serde_json::json!([]));
    assert_eq!(report["sessions_updated"], 1);
    assert_eq!(report["restart_required"], serde_json::json!([]));
    let mut bob = Ua::udp(&focus, "bob");
    bob.join("sip:ops@focus.example.com");

    // A change that needs a restart is reported, and the running value stays.
    let restart = added.replace("t1_ms = 500", "t1_ms = 400");
    assert_ne!(restart, added, "the file sets sip.t1_ms");
    std::fs::write(focus.config_path(), &restart).unwrap();
    let r = focus.admin("POST", "/v1/reload", None);
    assert_eq!(
        r.json()["report"]["restart_required"],
        serde_json::json!(["sip"])
    );

    // Invalid: every problem with its key; nothing changes.
    std::fs::write(
        focus.config_path(),
        format!("{original}\n[[groups]]\nuri = \"sip:x@elsewhere.net\"\nmax_participants = 0\n"),
    )
    .unwrap();
    let bad = focus.admin("POST", "/v1/reload", None);
    assert_eq!(bad.status, 422, "{}", bad.body);
    let body = bad.json();
    assert_eq!(body["reloaded"], false);
    let keys: Vec<&str> = body["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["key"].as_str())
        .collect();
    assert!(keys.contains(&"groups[1].uri"), "{body}");
    assert!(keys.contains(&"groups[1].max_participants"), "{body}");
    let mut carol = Ua::udp(&focus, "carol");
    carol.join("sip:ops@focus.example.com");
    assert_eq!(alice.bye(&mut call).status, 200);
    assert_eq!(
        metric(
            &focus,
            "focus_config_reloads_total{trigger=\"admin\",outcome=\"refused\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &focus,
            "focus_config_reloads_total{trigger=\"admin\",outcome=\"applied\"}"
        ),
        2.0
    );
}

#[test]
fn readiness_fails_while_draining() {
    let mut focus = Focus::start("[shutdown]\ngrace_s = 10\n");
    let mut alice = Ua::udp(&focus, "alice");
    let (call, _) = alice.join(TEAM);
    focus.terminate();
    // The focus waits for alice's answer to its BYE: meanwhile it is alive but not ready.
    let deadline = Instant::now() + WAIT;
    loop {
        let r = focus.admin("GET", "/ready", None);
        if r.status == 503 {
            assert_eq!(r.json()["reason"], "draining");
            break;
        }
        assert!(Instant::now() < deadline, "still ready while draining");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(focus.admin("GET", "/health", None).status, 200);
    alice.expect_bye(&call);
    assert_eq!(focus.wait_exit(WAIT).code(), Some(0));
}

#[test]
fn a_public_admin_listener_without_a_token_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_cpm-focus"))
        .args([
            "--sip-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--msrp-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("running cpm-focus");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ready"));
}

/// Sends `bytes` raw to the admin listener and reads until it closes (or `WAIT` passes).
fn raw_exchange(focus: &Focus, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(focus.admin_addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    // The focus may refuse and close before it read everything: what it answered is what
    // counts.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A client that sends too much or too slowly is cut off by the configured bounds, and every
/// such request is counted: a body over `max_request_bytes` is `413` before it is read, a
/// head beyond the head buffer `431`, a body that stalls `408`, and a connection that never
/// sends its head is closed unanswered (counted as `408`).
#[test]
fn oversized_and_slow_admin_requests_are_bounded_and_counted() {
    let focus = Focus::start("[admin]\nmax_request_bytes = 1024\ntimeout_ms = 300\n");
    let big_body = raw_exchange(
        &focus,
        b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
    );
    assert!(big_body.starts_with("HTTP/1.1 413 "), "{big_body}");
    assert!(big_body.contains("request too large"), "{big_body}");
    let mut huge_head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
    huge_head.extend(std::iter::repeat_n(b'a', 10_000));
    huge_head.extend_from_slice(b"\r\n\r\n");
    let big_head = raw_exchange(&focus, &huge_head);
    assert!(big_head.starts_with("HTTP/1.1 431 "), "{big_head}");
    let started = Instant::now();
    let stalled = raw_exchange(
        &focus,
        b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{}",
    );
    assert!(stalled.starts_with("HTTP/1.1 408 "), "{stalled}");
    assert!(started.elapsed() < WAIT, "the body timeout held");
    let silent = raw_exchange(&focus, b"");
    assert_eq!(silent, "", "no answer to a request never sent");
    for (series, want) in [
        (
            "focus_admin_requests_total{action=\"unknown\",status=\"413\"}",
            1.0,
        ),
        (
            "focus_admin_requests_total{action=\"unknown\",status=\"431\"}",
            1.0,
        ),
        (
            "focus_admin_requests_total{action=\"unknown\",status=\"408\"}",
            2.0,
        ),
        (
            "focus_admin_requests_total{action=\"reload\",status=\"200\"}",
            0.0,
        ),
    ] {
        assert_eq!(metric(&focus, series), want, "{series}");
    }
    // The listener still serves.
    assert_eq!(focus.admin("GET", "/health", None).status, 200);
}
