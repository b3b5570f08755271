//! The log an operator reads: no ANSI escape codes when stderr is not a terminal (the journal,
//! a file, a pipe), one JSON object per line with `--log-format json` (or
//! `focus.log_format = "json"`), and at the default `info` level one line per join and per
//! leave carrying the Call-ID, the conference and the outcome, one per session start and end,
//! and one per refusal with its reason.

mod support;

use std::time::Duration;
use support::{Focus, Launch, Ua, TEAM};

/// A focus at the default level (`RUST_LOG` unset) and with `NO_COLOR` unset: colours would be
/// on if the focus decided by anything but whether stderr is a terminal.
fn operator_focus(extra_toml: &str, args: &[&str]) -> Focus {
    Focus::launch(
        extra_toml,
        Launch {
            args: args.iter().map(|a| a.to_string()).collect(),
            env_remove: vec!["NO_COLOR".into(), "RUST_LOG".into()],
            ..Launch::default()
        },
    )
}

/// The lines of `log` at `info` naming `needle`.
fn info_lines<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|l| l.contains("INFO") && l.contains(needle))
        .collect()
}

/// Joins `team` and leaves; returns the Call-ID.
fn join_and_leave(focus: &Focus) -> String {
    let mut alice = Ua::udp(focus, "alice");
    let (mut call, _) = alice.join(TEAM);
    let bye = alice.bye(&mut call);
    assert_eq!(bye.status, 200);
    call.call_id.clone()
}

fn wait_for_log(focus: &Focus, needle: &str) {
    assert!(
        focus.log_contains(needle, Duration::from_secs(5)),
        "no {needle:?} in the log:\n{}",
        focus.log()
    );
}

#[test]
fn a_log_piped_to_a_file_has_no_escape_codes_and_a_join_and_a_leave_each_log_one_info_line() {
    let focus = operator_focus("", &[]);
    let call_id = join_and_leave(&focus);
    wait_for_log(&focus, "session ended");
    let log = focus.log();
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in a piped log:\n{log:?}"
    );
    let joins: Vec<&str> = info_lines(&log, &call_id)
        .into_iter()
        .filter(|l| l.contains("participant joined"))
        .collect();
    assert_eq!(joins.len(), 1, "join lines:\n{log}");
    assert!(
        joins[0].contains("sip:team@focus.example.com"),
        "{}",
        joins[0]
    );
    assert!(joins[0].contains("outcome=\"joined\""), "{}", joins[0]);
    let leaves: Vec<&str> = info_lines(&log, &call_id)
        .into_iter()
        .filter(|l| l.contains("participant left"))
        .collect();
    assert_eq!(leaves.len(), 1, "leave lines:\n{log}");
    assert!(leaves[0].contains("outcome=\"departed\""), "{}", leaves[0]);
    assert!(
        leaves[0].contains("sip:team@focus.example.com"),
        "{}",
        leaves[0]
    );
    assert_eq!(info_lines(&log, "session started").len(), 1, "{log}");
    assert_eq!(info_lines(&log, "session ended").len(), 1, "{log}");
    // Nothing at debug: the default level is info.
    assert!(
        !log.contains("DEBUG"),
        "debug lines at the default level:\n{log}"
    );
}

#[test]
fn a_refusal_is_logged_at_info_with_its_reason() {
    let focus = operator_focus(
        r#"
[[groups]]
uri = "sip:team@focus.example.com"
join = "members-only"
[[groups.members]]
uri = "sip:alice@example.com"
"#,
        &[],
    );
    let mut mallory = Ua::udp(&focus, "mallory");
    let mut call = support::Call::new(TEAM);
    let b = mallory.invite(&mut call, Some(support::AUDIO_OFFER));
    let r = mallory.expect_final(&b);
    assert_eq!(r.status, 403);
    wait_for_log(&focus, "request refused");
    let log = focus.log();
    let lines = info_lines(&log, "request refused");
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains(&call.call_id), "{}", lines[0]);
    assert!(lines[0].contains("reason=\"not_member\""), "{}", lines[0]);
    assert!(lines[0].contains("status=403"), "{}", lines[0]);
}

#[test]
fn json_mode_prints_one_object_per_line() {
    for (toml, args) in [
        ("", &["--log-format", "json"][..]),
        ("[focus]\nlog_format = \"json\"\n", &[][..]),
    ] {
        let focus = operator_focus(toml, args);
        let call_id = join_and_leave(&focus);
        wait_for_log(&focus, "session ended");
        let log = focus.log();
        let mut joined = 0;
        for line in log.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
            assert!(v.is_object(), "{line}");
            assert!(
                v["level"].is_string() && v["timestamp"].is_string(),
                "{line}"
            );
            if v["message"] == "participant joined" {
                assert_eq!(v["call_id"], call_id.as_str(), "{line}");
                assert_eq!(v["conference"], "sip:team@focus.example.com", "{line}");
                assert_eq!(v["level"], "INFO", "{line}");
                joined += 1;
            }
        }
        assert_eq!(joined, 1, "{log}");
        assert!(log.contains("cpm-focus ready"), "{log}");
    }
}

/// Issue 18: a refused RTP leg logged one WARN line each (2,534 in one flood). The focus's
/// whole RTP range is one port pair this test holds, so every join's leg is refused: the
/// metric counts each, the log writes `focus.log_repeat_burst` of them per interval.
#[test]
fn a_flood_of_refused_rtp_legs_writes_a_bounded_number_of_warnings() {
    const JOINS: usize = 40;
    const BURST: usize = 5;
    let (rtp, _rtcp) = support::talk::rtp_pair();
    let port = rtp.local_addr().unwrap().port();
    let focus = support::talk::talk_focus(&format!(
        "[rtp]\nport_min = {port}\nport_max = {}\nsilence_timeout_s = 60\n\
         [focus]\nlog_repeat_burst = {BURST}\nlog_repeat_interval_s = 3600\n",
        port + 1
    ));
    let mut ua = Ua::udp(&focus, "flood");
    let offer = support::talk::talk_offer(40000, &[(0, "PCMU/8000")], "a", false);
    for i in 0..JOINS {
        let mut call = support::Call::new("sip:talk@focus.example.com");
        let b = ua.invite(&mut call, Some(&offer));
        let r = ua.expect_final(&b);
        if r.status == 200 {
            call.learn(&r);
            ua.ack(&call);
            assert_eq!(ua.bye(&mut call).status, 200, "join {i}");
        }
    }
    focus.wait_metric(
        "focus_rtp_ports_exhausted_total",
        Duration::from_secs(5),
        |v| v == JOINS as f64,
    );
    let log = focus.log();
    let warned = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("no RTP port pair"))
        .count();
    assert_eq!(
        warned, BURST,
        "{JOINS} refused legs wrote {warned} warnings:\n{log}"
    );
    drop(rtp);
}
