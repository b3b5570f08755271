//! Metric names, help texts and histogram buckets in one place, and the `/metrics` listener.
//!
//! The HTTP listener is our own (a few lines over tokio) rather than the exporter's: it binds
//! before the focus reports ready, can use port 0 in tests, and will carry `/health`.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Latency buckets, in seconds: sub-millisecond to the 32 s of Timer B/F.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 32.0,
];

/// Installs the global recorder and describes every metric.
pub fn install() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("focus_request_duration_seconds".into()),
            LATENCY_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full("focus_msrp_fanout_duration_seconds".into()),
            LATENCY_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    Ok(handle)
}

/// The kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric the focus exports: name, kind and help text. Dashboards and tests read it.
pub const METRICS: &[(&str, Kind, &str)] = &[
    (
        "focus_sip_requests_received_total",
        Kind::Counter,
        "SIP requests received (retransmissions included), by method",
    ),
    (
        "focus_sip_retransmissions_received_total",
        Kind::Counter,
        "Request retransmissions absorbed by the transaction layer",
    ),
    (
        "focus_sip_responses_sent_total",
        Kind::Counter,
        "SIP responses sent, by status class",
    ),
    (
        "focus_sip_requests_sent_total",
        Kind::Counter,
        "Requests the focus originated (NOTIFY, BYE), by method",
    ),
    (
        "focus_sip_requests_failed_total",
        Kind::Counter,
        "Requests the focus originated that got no final response, by reason",
    ),
    (
        "focus_sip_parse_errors_total",
        Kind::Counter,
        "Messages that failed to parse: rejected (answered 400/505), dropped, unframeable",
    ),
    (
        "focus_sip_stray_responses_total",
        Kind::Counter,
        "Responses that matched no transaction (dropped)",
    ),
    (
        "focus_sip_cancelled_total",
        Kind::Counter,
        "INVITEs terminated by CANCEL (answered 487)",
    ),
    (
        "focus_sip_ack_timeouts_total",
        Kind::Counter,
        "2xx responses to INVITE that never got their ACK",
    ),
    (
        "focus_sip_abandoned_total",
        Kind::Counter,
        "Requests a session could not answer (answered 503)",
    ),
    (
        "focus_sip_unsupported_methods_total",
        Kind::Counter,
        "Requests answered 405 or 501",
    ),
    (
        "focus_transactions_active",
        Kind::Gauge,
        "SIP transactions alive",
    ),
    (
        "focus_transactions_lingering",
        Kind::Gauge,
        "Completed transactions absorbing retransmissions until their last timer",
    ),
    (
        "focus_sessions_active",
        Kind::Gauge,
        "Group sessions with at least one participant",
    ),
    (
        "focus_session_actors",
        Kind::Gauge,
        "Session actors running (active sessions and groups holding subscriptions)",
    ),
    (
        "focus_sessions_started_total",
        Kind::Counter,
        "Session actors started, by kind",
    ),
    (
        "focus_session_panics_total",
        Kind::Counter,
        "Session actors that panicked (their sessions were ended cleanly)",
    ),
    (
        "focus_participants_active",
        Kind::Gauge,
        "Participants in all sessions",
    ),
    (
        "focus_subscriptions_active",
        Kind::Gauge,
        "Conference-event subscriptions",
    ),
    (
        "focus_notify_sent_total",
        Kind::Counter,
        "Conference-event NOTIFYs sent",
    ),
    (
        "focus_sip_loops_detected_total",
        Kind::Counter,
        "Requests answered 482 Loop Detected: merged (the same request by another path) or looped (a request of the focus's own, come back)",
    ),
    (
        "focus_overload_rejections_total",
        Kind::Counter,
        "Requests refused with 503 to shed load, by reason",
    ),
    (
        "focus_policy_rejections_total",
        Kind::Counter,
        "Requests refused by group policy, by reason",
    ),
    (
        "focus_request_duration_seconds",
        Kind::Histogram,
        "Request arrival to final response, by method",
    ),
    (
        "focus_tcp_connections_active",
        Kind::Gauge,
        "Open SIP TCP connections",
    ),
    (
        "focus_tcp_connections_refused_total",
        Kind::Counter,
        "TCP connections refused at the connection limit",
    ),
    (
        "focus_tcp_idle_closed_total",
        Kind::Counter,
        "TCP connections closed for idleness",
    ),
    (
        "focus_transport_bytes_received_total",
        Kind::Counter,
        "Bytes received, by transport",
    ),
    (
        "focus_transport_send_errors_total",
        Kind::Counter,
        "Sends that failed, by transport and reason",
    ),
    (
        "focus_msrp_members",
        Kind::Gauge,
        "Participants with an MSRP leg installed in the switch",
    ),
    (
        "focus_msrp_connections_active",
        Kind::Gauge,
        "Open MSRP connections",
    ),
    (
        "focus_msrp_connections_refused_total",
        Kind::Counter,
        "MSRP connections refused at the connection limit",
    ),
    (
        "focus_msrp_messages_received_total",
        Kind::Counter,
        "MSRP SEND chunks received from participants",
    ),
    (
        "focus_msrp_messages_delivered_total",
        Kind::Counter,
        "Messages delivered to a recipient (its last chunk answered 200)",
    ),
    (
        "focus_msrp_bytes_relayed_total",
        Kind::Counter,
        "Message bytes received for relaying",
    ),
    (
        "focus_msrp_delivery_failures_total",
        Kind::Counter,
        "Deliveries that failed, by reason (error_response, timeout, left, not_connected, stalled, too_large)",
    ),
    (
        "focus_msrp_fanout_duration_seconds",
        Kind::Histogram,
        "Receipt of a message to its last recipient's queue",
    ),
    (
        "focus_msrp_participants_lost_total",
        Kind::Counter,
        "Participants removed because their MSRP connection never bound or stayed lost",
    ),
    (
        "focus_dialouts_total",
        Kind::Counter,
        "Participants the focus called (REFER, URI list, restart), by outcome: started, answered, busy, failed",
    ),
    (
        "focus_group_messages_total",
        Kind::Counter,
        "Group messages accepted (202), by mode: pager, exploder",
    ),
    (
        "focus_group_message_deliveries_total",
        Kind::Counter,
        "Group message deliveries, by outcome: delivered, failed",
    ),
    (
        "focus_moderation_actions_total",
        Kind::Counter,
        "Moderation requests accepted, by action",
    ),
    (
        "focus_charging_records_written_total",
        Kind::Counter,
        "Charging records written to the charging file, by type",
    ),
    (
        "focus_charging_records_dropped_total",
        Kind::Counter,
        "Charging records never written, by reason (disabled, backlog, closed, encode)",
    ),
    (
        "focus_charging_errors_total",
        Kind::Counter,
        "Charging file operations that failed, by op (open, write, rotate, sync)",
    ),
    (
        "focus_charging_backlog",
        Kind::Gauge,
        "Charging records waiting in memory for the charging file",
    ),
    (
        "focus_credit_checks_total",
        Kind::Counter,
        "Online credit checks, by outcome (granted, denied, unavailable)",
    ),
];

fn describe() {
    for (name, kind, help) in METRICS {
        match kind {
            Kind::Counter => describe_counter!(*name, *help),
            Kind::Gauge => describe_gauge!(*name, *help),
            Kind::Histogram => describe_histogram!(*name, Unit::Seconds, *help),
        }
    }
}

/// Serves `/metrics` (Prometheus text format) and `/health` until cancelled.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle, cancel: CancellationToken) {
    let upkeep = handle.clone();
    let upkeep_cancel = cancel.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = upkeep_cancel.cancelled() => return,
                _ = tick.tick() => upkeep.run_upkeep(),
            }
        }
    });
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let mut len = 0;
            // Read the request head (bounded); the body, if any, is ignored.
            while len < buf.len() {
                match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf[len..]))
                    .await
                {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                    Ok(Ok(n)) => len += n,
                }
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, ctype, body) = match path {
                "/metrics" => ("200 OK", "text/plain; version=0.0.4", handle.render()),
                "/health" => ("200 OK", "text/plain", "ok\n".to_string()),
                _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(resp.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
