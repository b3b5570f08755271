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
        .install_recorder()?;
    describe();
    Ok(handle)
}

fn describe() {
    describe_counter!(
        "focus_sip_requests_received_total",
        "SIP requests received (retransmissions included), by method"
    );
    describe_counter!(
        "focus_sip_retransmissions_received_total",
        "Request retransmissions absorbed by the transaction layer"
    );
    describe_counter!(
        "focus_sip_responses_sent_total",
        "SIP responses sent, by status class"
    );
    describe_counter!(
        "focus_sip_requests_sent_total",
        "Requests the focus originated (NOTIFY, BYE), by method"
    );
    describe_counter!(
        "focus_sip_requests_failed_total",
        "Requests the focus originated that got no final response, by reason"
    );
    describe_counter!(
        "focus_sip_parse_errors_total",
        "Messages that failed to parse: rejected (answered 400/505), dropped, unframeable"
    );
    describe_counter!(
        "focus_sip_stray_responses_total",
        "Responses that matched no transaction (dropped)"
    );
    describe_counter!(
        "focus_sip_cancelled_total",
        "INVITEs terminated by CANCEL (answered 487)"
    );
    describe_counter!(
        "focus_sip_ack_timeouts_total",
        "2xx responses to INVITE that never got their ACK"
    );
    describe_counter!(
        "focus_sip_abandoned_total",
        "Requests a session could not answer (answered 503)"
    );
    describe_counter!(
        "focus_sip_unsupported_methods_total",
        "Requests answered 405 or 501"
    );
    describe_gauge!("focus_transactions_active", "SIP transactions alive");
    describe_gauge!(
        "focus_sessions_active",
        "Group sessions with at least one participant"
    );
    describe_gauge!(
        "focus_session_actors",
        "Session actors running (active sessions and groups holding subscriptions)"
    );
    describe_counter!(
        "focus_sessions_started_total",
        "Session actors started, by kind"
    );
    describe_counter!(
        "focus_session_panics_total",
        "Session actors that panicked (their sessions were ended cleanly)"
    );
    describe_gauge!("focus_participants_active", "Participants in all sessions");
    describe_gauge!(
        "focus_subscriptions_active",
        "Conference-event subscriptions"
    );
    describe_counter!("focus_notify_sent_total", "Conference-event NOTIFYs sent");
    describe_counter!(
        "focus_overload_rejections_total",
        "Requests refused with 503 to shed load, by reason"
    );
    describe_counter!(
        "focus_policy_rejections_total",
        "Requests refused by group policy, by reason"
    );
    describe_histogram!(
        "focus_request_duration_seconds",
        Unit::Seconds,
        "Request arrival to final response, by method"
    );
    describe_gauge!("focus_tcp_connections_active", "Open SIP TCP connections");
    describe_counter!(
        "focus_tcp_connections_refused_total",
        "TCP connections refused at the connection limit"
    );
    describe_counter!(
        "focus_tcp_idle_closed_total",
        "TCP connections closed for idleness"
    );
    describe_counter!(
        "focus_transport_bytes_received_total",
        "Bytes received, by transport"
    );
    describe_counter!(
        "focus_transport_send_errors_total",
        "Sends that failed, by transport and reason"
    );
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
