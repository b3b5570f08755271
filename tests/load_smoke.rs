//! The load tool against a test focus: every scenario of `focus-load` for a second or two at a
//! low rate, which must end with zero failures (and no loss, duplicate, version gap or NOTIFY
//! closer than the interval). Keeps the tool working as the focus changes; the figures
//! themselves come from release runs (BENCHMARKS.md), not from here.

mod support;

use serde_json::Value;
use std::process::Command;
use support::Focus;

/// Groups `load0..load9`, NOTIFYs at most every 500 ms, pager fan-out not paced below the
/// rate, and no per-sender message rate (one load sender plays many).
const CONFIG: &str = r#"
[subscriptions]
min_notify_interval_ms = 500
[policy]
pager_rate = 100000
pager_rate_per_sender = 0
"#;

fn groups_toml(n: usize) -> String {
    (0..n)
        .map(|i| format!("[[groups]]\nuri = \"sip:load{i}@focus.example.com\"\n"))
        .collect()
}

/// Runs one scenario; returns its phase summaries (and fails the test on a non-zero exit).
fn run(focus: &Focus, args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_focus-load"))
        .args(["--focus", &focus.sip_udp.to_string()])
        .args(["--focus-pid", &focus.pid().to_string(), "--json"])
        .args(args)
        .args(["--prefix", "load"])
        .output()
        .expect("running focus-load");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "focus-load {args:?} exited {}:\n{stdout}\n{stderr}",
        out.status
    );
    let phases: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!phases.is_empty(), "no phase summary:\n{stdout}\n{stderr}");
    for p in &phases {
        assert_eq!(p["failed"], 0, "{args:?}: {p}");
        assert!(p["completed"].as_u64().unwrap_or(0) > 0, "{args:?}: {p}");
        assert!(p["focus_cpu_s"].is_number(), "{args:?}: {p}");
        assert!(
            p["focus_rss_mb"].as_f64().unwrap_or(0.0) > 0.0,
            "{args:?}: {p}"
        );
    }
    phases
}

fn phase<'a>(phases: &'a [Value], name: &str) -> &'a Value {
    phases
        .iter()
        .find(|p| p["phase"] == name)
        .unwrap_or_else(|| panic!("no phase {name} in {phases:?}"))
}

#[test]
fn every_scenario_runs_clean() {
    let focus = Focus::start(&format!("{CONFIG}{}", groups_toml(10)));

    let p = run(
        &focus,
        &[
            "join-leave",
            "--groups",
            "10",
            "--rate",
            "200",
            "--duration",
            "1.5",
        ],
    );
    assert_eq!(phase(&p, "calls")["completed"], 300);

    let p = run(
        &focus,
        &[
            "group-message",
            "--groups",
            "4",
            "--members",
            "5",
            "--rate",
            "100",
            "--duration",
            "1.5",
        ],
    );
    let m = phase(&p, "message");
    assert_eq!(m["deliveries"], 150 * 5, "{m}");
    assert_eq!(
        (m["lost"].as_u64(), m["duplicated"].as_u64()),
        (Some(0), Some(0))
    );

    let p = run(
        &focus,
        &[
            "group-chat",
            "--groups",
            "2",
            "--sessions",
            "2",
            "--participants",
            "5",
            "--rate",
            "100",
            "--duration",
            "1.5",
        ],
    );
    let c = phase(&p, "chat");
    assert_eq!(c["deliveries"], 150 * 4, "{c}");
    assert_eq!(
        (c["lost"].as_u64(), c["duplicated"].as_u64()),
        (Some(0), Some(0))
    );

    let p = run(
        &focus,
        &[
            "roster-storm",
            "--groups",
            "10",
            "--participants",
            "20",
            "--subscribers",
            "20",
            "--rate",
            "20",
            "--duration",
            "2",
            "--interval-ms",
            "500",
        ],
    );
    let s = phase(&p, "storm");
    assert_eq!(s["subscribers_converged"], 20, "{s}");
    assert_eq!(s["version_errors"], 0, "{s}");
    assert_eq!(s["spacing_violations"], 0, "{s}");

    let p = run(
        &focus,
        &[
            "idle-soak",
            "--groups",
            "10",
            "--sessions",
            "10",
            "--participants",
            "5",
            "--duration",
            "1",
            "--interval-ms",
            "500",
        ],
    );
    let h = phase(&p, "hold");
    assert_eq!(h["participants"], 50, "{h}");
    assert!(h["rss_per_participant_kb"].is_number(), "{h}");
}
