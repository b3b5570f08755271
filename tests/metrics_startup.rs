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
}
