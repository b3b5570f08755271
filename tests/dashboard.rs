//! The Grafana dashboard (`config/grafana/*.json`) and the Prometheus rules only query
//! metrics a running focus exports: after traffic that touches each panel's subject (joins,
//! chat, subscriptions, refusals, overload, garbage, admin requests, a reload), every metric
//! name in every query is on `/metrics`.

mod support;

use std::collections::BTreeSet;
use support::{Call, Focus, Setup, Ua, AUDIO_OFFER, TEAM, WAIT};

/// Every `expr` string in a JSON document (panel targets, at any depth).
fn exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    ("query" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// The `focus_*` and `process_*` metric names a PromQL expression reads (histogram series reduced to the
/// histogram's name).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let histograms: Vec<&str> = cpm_focus::metrics::METRICS
        .iter()
        .filter(|(_, k, _)| *k == cpm_focus::metrics::Kind::Histogram)
        .map(|(n, _, _)| *n)
        .collect();
    let mut names = BTreeSet::new();
    for prefix in ["focus_", "process_"] {
        names.extend(names_with_prefix(expr, prefix, &histograms));
    }
    names
}

/// The metric names starting with `prefix` in `expr`.
fn names_with_prefix(expr: &str, prefix: &str, histograms: &[&str]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find(prefix) {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |e| start + e);
        if boundary {
            let mut name = &expr[start..end];
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(base) = name.strip_suffix(suffix) {
                    if histograms.contains(&base) {
                        name = base;
                    }
                }
            }
            names.insert(name.to_string());
        }
        i = end;
    }
    names
}

fn dashboards() -> Vec<(String, serde_json::Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config/grafana");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("config/grafana") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            out.push((path.display().to_string(), json));
        }
    }
    assert!(!out.is_empty(), "no dashboard in {dir}");
    out
}

#[test]
fn dashboards_are_well_formed() {
    for (path, d) in dashboards() {
        let panels = d["panels"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: no panels"));
        let mut ids = BTreeSet::new();
        for p in panels {
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{path}: panel without id"));
            assert!(ids.insert(id), "{path}: panel id {id} twice");
            assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()));
            if p["type"] != "row" {
                let targets = p["targets"].as_array().expect("targets");
                assert!(!targets.is_empty(), "{path}: panel {id} queries nothing");
                assert_eq!(
                    p["datasource"]["uid"], "${datasource}",
                    "{path}: panel {id}"
                );
            }
        }
    }
}

#[test]
fn alert_rules_read_described_metrics() {
    let rules = include_str!("../config/prometheus-rules.yml");
    let described: Vec<&str> = cpm_focus::metrics::METRICS
        .iter()
        .map(|(n, _, _)| *n)
        .collect();
    let mut seen = 0;
    for line in rules
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
    {
        for name in metric_names(line) {
            assert!(
                described.contains(&name.as_str()),
                "rule reads unknown {name}"
            );
            seen += 1;
        }
    }
    assert!(seen >= 4, "the rules read focus metrics");
}

/// The alert rules page on what a running focus exports: every metric they read is on
/// `/metrics` of a focus that has served one request (histograms appear with their first
/// observation; counters and gauges from the start), so no rule sits on "no data".
#[test]
fn every_metric_an_alert_rule_reads_is_exported() {
    let rules = include_str!("../config/prometheus-rules.yml");
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "alice");
    assert_eq!(ua.options(TEAM).status, 200);
    focus.wait_metric(
        "focus_sip_requests_received_total{method=\"OPTIONS\"}",
        WAIT,
        |v| v >= 1.0,
    );
    let text = focus.metrics();
    let mut read = BTreeSet::new();
    for line in rules
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
    {
        read.extend(metric_names(line));
    }
    for page in [
        "focus_charging_records_dropped_total",
        "focus_charging_errors_total",
        "focus_journal_errors_total",
    ] {
        assert!(read.contains(page), "no alert rule pages on {page}");
    }
    let missing: Vec<&String> = read
        .iter()
        .filter(|name| {
            !text
                .lines()
                .any(|l| !l.starts_with('#') && l.starts_with(name.as_str()))
        })
        .collect();
    assert!(missing.is_empty(), "rules read unexported {missing:?}");
}

#[test]
fn every_metric_a_dashboard_queries_is_exported() {
    let mut wanted = BTreeSet::new();
    for (path, d) in dashboards() {
        let mut list = Vec::new();
        exprs(&d, &mut list);
        assert!(list.len() > 10, "{path}: only {} queries", list.len());
        for e in &list {
            wanted.extend(metric_names(e));
        }
    }
    let described: Vec<&str> = cpm_focus::metrics::METRICS
        .iter()
        .map(|(n, _, _)| *n)
        .collect();
    for name in &wanted {
        assert!(
            described.contains(&name.as_str()),
            "the dashboard queries unknown {name}"
        );
    }

    let focus = Focus::start(
        r#"
        [supervisor]
        max_sessions = 1
        [overload]
        source_rate = 5
        source_burst = 5
        reject_rate = 2
        trusted_sources = ["127.0.0.1"]
        [[groups]]
        uri = "sip:team@focus.example.com"
        max_participants = 2
        [[groups]]
        uri = "sip:other@focus.example.com"
        "#,
    );
    // Chat between two participants: sessions, participants, MSRP traffic and fan-out.
    let mut ua = Ua::udp(&focus, "alice");
    let mut alice = ua.join_chat(TEAM, Setup::Active);
    let mut a = alice.connect();
    let mut ub = Ua::tcp(&focus, "bob");
    let mut bob = ub.join_chat(TEAM, Setup::Active);
    let mut b = bob.connect();
    a.bind();
    b.bind();
    assert_eq!(a.say("hello").code, 200);
    assert_eq!(b.expect_message().text(), "hello");
    // An in-dialog request with another remote tag: no request of alice's dialog (481).
    let mut forged = alice.call.clone();
    forged.from_tag = "forged".into();
    assert_eq!(ua.bye(&mut forged).status, 481);
    // A subscriber; a refusal by policy (full), one by overload (second session), garbage.
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_w, _) = watcher.subscribe_to(TEAM);
    let mut carol = Ua::udp(&focus, "carol");
    let mut c = Call::new(TEAM);
    let br = carol.invite(&mut c, Some(AUDIO_OFFER));
    assert_eq!(carol.expect_final(&br).status, 486);
    let mut c = Call::new("sip:other@focus.example.com");
    let br = carol.invite(&mut c, Some(AUDIO_OFFER));
    assert_eq!(carol.expect_final(&br).status, 503);
    carol.raw_ok = true;
    carol.send_raw("garbage\r\n\r\n");
    carol.send_raw(&format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK-stray\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 NOTIFY\r\nContent-Length: 0\r\n\r\n",
        focus.sip_udp
    ));
    let mut c = Call::new(TEAM);
    let br = carol.send_request(&mut c, "REGISTER", "", None);
    assert_eq!(carol.expect_final(&br).status, 405);
    // A flood from another loopback address: 503s, then requests dropped unread.
    let flooder = std::net::UdpSocket::bind("127.0.0.2:0").expect("binding a loopback alias");
    let me = flooder.local_addr().unwrap();
    for n in 0..50 {
        let options = format!(
            "OPTIONS sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-flood{n}\r\nMax-Forwards: 70\r\nFrom: <sip:flood@example.com>;tag=f{n}\r\nTo: <sip:team@focus.example.com>\r\nCall-ID: flood-{n}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        flooder.send_to(options.as_bytes(), focus.sip_udp).unwrap();
    }
    focus.wait_metric("focus_flood_dropped_total{transport=\"udp\"}", WAIT, |v| {
        v >= 1.0
    });
    // Operations: an admin request and a reload.
    assert_eq!(focus.admin("GET", "/v1/sessions", None).status, 200);
    assert_eq!(focus.admin("POST", "/v1/reload", None).status, 200);
    focus.wait_metric("focus_msrp_messages_delivered_total", WAIT, |v| v >= 1.0);
    focus.wait_metric(
        "focus_sip_parse_errors_total{reason=\"dropped\"}",
        WAIT,
        |v| v >= 1.0,
    );
    focus.wait_metric("focus_sip_stray_responses_total", WAIT, |v| v >= 1.0);

    let text = focus.metrics();
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|name| {
            !text
                .lines()
                .any(|l| !l.starts_with('#') && l.starts_with(name.as_str()))
        })
        .collect();
    assert!(missing.is_empty(), "not exported: {missing:?}\n{text}");
}
