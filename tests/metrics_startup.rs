//! `/metrics` right after start lists every counter and gauge of the metric table, at 0, with
//! every bounded label value of `LABELS`: alerts and dashboard panels never see "no data"
//! because nothing has happened yet.

mod support;

use cpm_focus::metrics::{Kind, LABELS, METRICS};
use support::Focus;

#[test]
fn every_counter_and_gauge_is_exported_at_start() {
    let focus = Focus::start("");
    let text = focus.metrics();
    let mut missing = Vec::new();
    for (name, kind, _) in METRICS {
        if *kind == Kind::Histogram {
            continue;
        }
        let series: Vec<&str> = text
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .collect();
        if series.is_empty() {
            missing.push(*name);
            continue;
        }
        for (metric, label, values) in LABELS.iter().filter(|(m, _, _)| m == name) {
            for v in *values {
                let needle = format!("{label}=\"{v}\"");
                assert!(
                    series.iter().any(|s| s.contains(&needle)),
                    "{metric} has no series with {needle} at start:\n{}",
                    series.join("\n")
                );
            }
        }
        // A labelled metric is not also exported without labels.
        if LABELS.iter().any(|(m, _, _)| m == name) {
            assert!(
                series.iter().all(|s| s.starts_with(&format!("{name}{{"))),
                "{name} has an unlabelled series:\n{}",
                series.join("\n")
            );
        }
    }
    assert!(
        missing.is_empty(),
        "not on /metrics right after start: {missing:?}"
    );
    // Nothing has happened yet: the event counters are at 0.
    assert_eq!(
        focus.metric("focus_sip_parse_errors_total{reason=\"rejected\"}"),
        Some(0.0)
    );
    assert_eq!(focus.metric("focus_notify_sent_total"), Some(0.0));
    assert_eq!(focus.metric("focus_subscriptions_active"), Some(0.0));
    // Which build runs, and the process's own resources, for dashboards and capacity alerts.
    let info = text
        .lines()
        .find(|l| l.starts_with("focus_build_info{"))
        .unwrap_or_else(|| panic!("no focus_build_info:\n{text}"));
    assert!(
        info.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "{info}"
    );
    assert!(
        info.contains("revision=\"") && info.ends_with(" 1"),
        "{info}"
    );
    assert!(focus.metric("process_resident_memory_bytes").unwrap_or(0.0) > 1e6);
    assert!(focus.metric("process_open_fds").unwrap_or(0.0) >= 3.0);
    assert!(focus.metric("process_max_fds").unwrap_or(0.0) >= 3.0);
    assert!(focus.metric("process_start_time_seconds").unwrap_or(0.0) > 1.6e9);
    assert!(focus.metric("process_cpu_seconds_total").is_some());
}
