//! Metric names, help texts and histogram buckets in one place, and the `/metrics` listener.
//!
//! The listener is the focus's own hyper stack ([`crate::http::server`], shared with the
//! admin API) rather than the exporter's: it binds before the focus reports ready, can use
//! port 0 in tests, and carries `/health`.

mod process;

use crate::http::server::{self, BoxFuture, Connection, Handler, Limits, Reply};
use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Latency buckets, in seconds: sub-millisecond to the 32 s of Timer B/F.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 32.0,
];

/// Forwarding latency buckets, in seconds: a packet's stay in the focus is microseconds.
const FORWARD_BUCKETS: &[f64] = &[
    0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
];

/// Talk-burst duration buckets, in seconds (a PTT burst is seconds to a minute).
const TALK_BURST_BUCKETS: &[f64] = &[0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0];

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
        .set_buckets_for_metric(
            Matcher::Full("focus_credit_check_duration_seconds".into()),
            LATENCY_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full("focus_rtp_forward_seconds".into()),
            FORWARD_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full("focus_floor_talk_burst_seconds".into()),
            TALK_BURST_BUCKETS,
        )?
        .install_recorder()?;
    describe();
    touch();
    build_info();
    process::sample();
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
        "focus_sip_limit_refusals_total",
        Kind::Counter,
        "Messages refused for a limit: too many header lines, too large (513), a stream \
         message without Content-Length; a final response too large to send (replaced by 500)",
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
        "focus_subscriptions_flow_closed_total",
        Kind::Counter,
        "Subscriptions ended because the connection their dialog is bound to closed",
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
        "focus_cpim_forged_from_total",
        Kind::Counter,
        "Relayed message/cpim whose From named someone other than the sender (replaced by the sender's identity or alias, never relayed), by path (msrp, pager, exploder)",
    ),
    (
        "focus_policy_rejections_total",
        Kind::Counter,
        "Requests refused by group policy, by reason",
    ),
    (
        "focus_dialog_rejections_total",
        Kind::Counter,
        "In-dialog requests refused, by reason (remote_tag: Call-ID and local tag of a dialog with another remote tag, 481; flow: not on the flow of a dialog set up from an untrusted address, 403)",
    ),
    (
        "focus_auth_challenges_total",
        Kind::Counter,
        "401 digest challenges sent (first challenges, wrong passwords, stale and replayed nonces)",
    ),
    (
        "focus_auth_failures_total",
        Kind::Counter,
        "Digest authentication attempts that proved nothing, by reason (wrong_password, stale, replay, unknown_user, malformed, rate_limited, identity_mismatch)",
    ),
    (
        "focus_auth_success_total",
        Kind::Counter,
        "Requests whose sender digest authentication proved",
    ),
    (
        "focus_credit_check_duration_seconds",
        Kind::Histogram,
        "Online credit checks, request to decision (timeouts and failed TLS handshakes included), by outcome",
    ),
    (
        "focus_request_duration_seconds",
        Kind::Histogram,
        "Request arrival to final response, by method",
    ),
    (
        "focus_tcp_connections_active",
        Kind::Gauge,
        "Open SIP TCP and TLS connections, by transport",
    ),
    (
        "focus_tcp_connections_refused_total",
        Kind::Counter,
        "TCP and TLS connections refused, by reason (limit: the total cap, per_source: the cap per source address, untrusted_share: the untrusted share is full and no unadmitted connection could be evicted)",
    ),
    (
        "focus_tcp_connections_closed_total",
        Kind::Counter,
        "TCP and TLS connections closed by the focus, by reason (message_timeout: a message never completed, write_timeout: the peer stopped reading, first_byte_timeout: an untrusted connection sent nothing, evicted: an unadmitted untrusted connection closed to make room)",
    ),
    (
        "focus_fair_share_refusals_total",
        Kind::Counter,
        "Requests refused so that one party cannot take capacity others need, by reason (outsider_subscriptions, participants_per_source, rtp_legs_per_source, sender_rate)",
    ),
    (
        "focus_flood_dropped_total",
        Kind::Counter,
        "Requests dropped unread from sources over their rate, beyond the 503s they got, by transport",
    ),
    (
        "focus_tls_handshakes_total",
        Kind::Counter,
        "TLS handshakes of accepted and outbound connections, by service (sip, msrp, credit: the online credit check's https client) and outcome (ok, failed)",
    ),
    (
        "focus_tls_handshake_failures_total",
        Kind::Counter,
        "Failed TLS handshakes, by role (server: accepted, client: the focus connected out), service (sip, msrp, credit) and reason (name_mismatch, unknown_issuer, expired, bad_certificate, fingerprint_mismatch, alert, timeout, protocol, io)",
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
        "focus_msrp_throttled_total",
        Kind::Counter,
        "Times an MSRP connection over its chunk or byte rate was read more slowly",
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
        "focus_admin_requests_total",
        Kind::Counter,
        "Admin API requests answered, by action and HTTP status",
    ),
    (
        "focus_config_reloads_total",
        Kind::Counter,
        "Configuration reloads, by trigger (sighup, admin) and outcome (applied, refused)",
    ),
    (
        "focus_config_last_reload_successful",
        Kind::Gauge,
        "1 when the last configuration reload was applied, 0 when it was refused",
    ),
    (
        "focus_xdms_fetch_failures_total",
        Kind::Counter,
        "XDMS document fetches that failed, by reason (unreachable, timeout, status, invalid: a document refused, its last good copy kept)",
    ),
    (
        "focus_xdms_documents",
        Kind::Gauge,
        "XDMS group documents held (the last good copy of each)",
    ),
    (
        "focus_xdms_last_success_timestamp_seconds",
        Kind::Gauge,
        "Unix time of the last round of XDMS fetches without a failure",
    ),
    (
        "focus_credit_checks_total",
        Kind::Counter,
        "Online credit checks, by outcome (granted, denied, unavailable; busy: refused at once, charging.online_max_pending checks already in flight)",
    ),
    (
        "focus_floor_requests_total",
        Kind::Counter,
        "BFCP FloorRequests, by outcome (granted, queued, pending, denied, error)",
    ),
    (
        "focus_floor_grants_total",
        Kind::Counter,
        "Floors granted (talk bursts started)",
    ),
    (
        "focus_floor_revokes_total",
        Kind::Counter,
        "Floors revoked, by reason (talk_burst, chair, muted, left, connection_lost, silent)",
    ),
    (
        "focus_floor_talk_burst_seconds",
        Kind::Histogram,
        "Talk bursts: grant to release or revoke",
    ),
    (
        "focus_bfcp_connections_active",
        Kind::Gauge,
        "Open BFCP connections",
    ),
    (
        "focus_bfcp_connections_refused_total",
        Kind::Counter,
        "BFCP connections refused at the connection limit",
    ),
    (
        "focus_bfcp_messages_received_total",
        Kind::Counter,
        "BFCP messages received",
    ),
    (
        "focus_bfcp_messages_sent_total",
        Kind::Counter,
        "BFCP messages written",
    ),
    (
        "focus_bfcp_rejected_total",
        Kind::Counter,
        "BFCP input refused, by reason (unknown_conference, unknown_user, wrong_address: a connection from an address the user's SDP did not negotiate, user_mismatch: a message naming another user than its connection's, malformed, busy, bind_timeout, write_queue)",
    ),
    (
        "focus_rtp_legs",
        Kind::Gauge,
        "Participants' RTP legs (port pairs in use)",
    ),
    (
        "focus_rtp_packets_forwarded_total",
        Kind::Counter,
        "RTP packets sent to receivers (one per receiver)",
    ),
    (
        "focus_rtp_packets_dropped_total",
        Kind::Counter,
        "RTP packets not forwarded, by reason (unknown_source: not from the participant's signalled or latched address, also on RTCP ports; not_holder, muted, flood, malformed, payload_type, codec, send_error)",
    ),
    (
        "focus_rtp_forward_seconds",
        Kind::Histogram,
        "A forwarded packet's time in the focus: receipt to its last copy sent",
    ),
    (
        "focus_rtcp_packets_received_total",
        Kind::Counter,
        "RTCP packets received from participants (terminated)",
    ),
    (
        "focus_rtp_silent_total",
        Kind::Counter,
        "Participants whose RTP and RTCP stopped for the silence timeout",
    ),
    (
        "focus_rtp_ports_exhausted_total",
        Kind::Counter,
        "Audio streams declined for want of a free RTP port pair",
    ),
    (
        "focus_session_timer_rejections_total",
        Kind::Counter,
        "INVITEs and UPDATEs refused 422 because their Session-Expires was below session_timer.min_se_s",
    ),
    (
        "focus_session_timer_refreshes_total",
        Kind::Counter,
        "Session refreshes (RFC 4028) completed, by who refreshed (participant, focus)",
    ),
    (
        "focus_session_timer_expired_total",
        Kind::Counter,
        "Participants removed because their session was not refreshed in time or a refresh failed",
    ),
    (
        "focus_journal_lines_total",
        Kind::Counter,
        "Lines appended to the membership journal, by op (open, join, update, leave, close)",
    ),
    (
        "focus_journal_errors_total",
        Kind::Counter,
        "Journal operations that failed, by op (read, write, sync, compact, heartbeat, encode, closed)",
    ),
    (
        "focus_journal_compactions_total",
        Kind::Counter,
        "Times the journal was rewritten with only the live sessions (at start and when it grew past max_bytes)",
    ),
    (
        "focus_recovered_sessions_total",
        Kind::Counter,
        "Sessions started again after a crash, from the journal",
    ),
    (
        "focus_recovered_participants_total",
        Kind::Counter,
        "Participants of resumed sessions, by outcome (resumed: accepted the re-INVITE; redialed: called again after 481; failed)",
    ),
    (
        "focus_build_info",
        Kind::Gauge,
        "Always 1; its labels name the running version and the git revision it was built from",
    ),
    (
        "process_cpu_seconds_total",
        Kind::Gauge,
        "CPU time the process used, user and system, in seconds (a counter's value; read it with rate())",
    ),
    (
        "process_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory of the process, in bytes",
    ),
    (
        "process_open_fds",
        Kind::Gauge,
        "Open file descriptors (sockets, the charging file, the journal)",
    ),
    (
        "process_max_fds",
        Kind::Gauge,
        "The soft limit on open file descriptors (LimitNOFILE)",
    ),
    (
        "process_start_time_seconds",
        Kind::Gauge,
        "When the process started, seconds since the Unix epoch",
    ),
];

/// SIP methods as `Method::metric_label` writes them.
const METHODS: &[&str] = &[
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "SUBSCRIBE",
    "NOTIFY",
    "REFER",
    "MESSAGE",
    "INFO",
    "UPDATE",
    "PRACK",
    "PUBLISH",
    "other",
];

/// The bounded label values of labelled counters and gauges: `(metric, label, values)`, one
/// row per label. At start every combination is set to 0 (so alerts and panels have a series
/// before the first event), and docs/metrics.md lists them. Add a row with a new labelled
/// counter or gauge; a value missing here still works, it just appears on first use.
pub const LABELS: &[(&str, &str, &[&str])] = &[
    ("focus_sip_requests_received_total", "method", METHODS),
    (
        "focus_sip_responses_sent_total",
        "class",
        &["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"],
    ),
    ("focus_sip_requests_sent_total", "method", METHODS),
    (
        "focus_sip_requests_failed_total",
        "reason",
        &["timeout", "transport", "unroutable"],
    ),
    (
        "focus_sip_parse_errors_total",
        "reason",
        &["rejected", "dropped", "too_large", "unframeable"],
    ),
    (
        "focus_sip_limit_refusals_total",
        "reason",
        &[
            "too_many_headers",
            "too_large",
            "no_content_length",
            "response_too_large",
        ],
    ),
    (
        "focus_sessions_started_total",
        "kind",
        &["predefined", "adhoc", "restarted"],
    ),
    (
        "focus_sip_loops_detected_total",
        "kind",
        &["merged", "looped"],
    ),
    (
        "focus_overload_rejections_total",
        "reason",
        &[
            "transactions",
            "transactions_high",
            "shard_queue",
            "queue_high",
            "queue_delay",
            "mailbox",
            "mailbox_high",
            "sessions",
            "subscriptions",
            "pager_queue",
            "draining",
        ],
    ),
    (
        "focus_policy_rejections_total",
        "reason",
        &[
            "full",
            "locked",
            "not_member",
            "not_invited",
            "not_authorized",
            "anonymous",
            "media",
            "loop",
            "list_too_long",
            "adhoc",
            "credit_denied",
            "credit_unavailable",
            "credit_busy",
            "cascade",
            "unverified",
            "unverified_charging",
        ],
    ),
    (
        "focus_dialog_rejections_total",
        "reason",
        &["remote_tag", "flow"],
    ),
    (
        "focus_auth_failures_total",
        "reason",
        &[
            "wrong_password",
            "stale",
            "replay",
            "unknown_user",
            "malformed",
            "rate_limited",
            "identity_mismatch",
        ],
    ),
    (
        "focus_dialouts_total",
        "outcome",
        &["started", "answered", "busy", "failed"],
    ),
    ("focus_group_messages_total", "mode", &["pager", "exploder"]),
    (
        "focus_group_message_deliveries_total",
        "outcome",
        &["delivered", "failed"],
    ),
    (
        "focus_charging_records_written_total",
        "type",
        &[
            "session_start",
            "session_stop",
            "participant_join",
            "participant_leave",
            "group_message",
            "msrp_volume",
        ],
    ),
    (
        "focus_charging_records_dropped_total",
        "reason",
        &["disabled", "backlog", "closed", "encode"],
    ),
    (
        "focus_charging_errors_total",
        "op",
        &["open", "write", "rotate", "sync"],
    ),
    (
        "focus_credit_checks_total",
        "outcome",
        &["granted", "denied", "unavailable", "busy"],
    ),
    (
        "focus_moderation_actions_total",
        "action",
        &["lock", "unlock", "end", "mute", "unmute", "unknown"],
    ),
    ("focus_tcp_connections_active", "transport", &["tcp", "tls"]),
    (
        "focus_tcp_connections_refused_total",
        "reason",
        &["limit", "per_source"],
    ),
    (
        "focus_tcp_connections_closed_total",
        "reason",
        &["message_timeout", "write_timeout"],
    ),
    (
        "focus_flood_dropped_total",
        "transport",
        &["udp", "tcp", "tls"],
    ),
    (
        "focus_tls_handshakes_total",
        "service",
        &["sip", "msrp", "credit"],
    ),
    ("focus_tls_handshakes_total", "outcome", &["ok", "failed"]),
    (
        "focus_transport_bytes_received_total",
        "transport",
        &["udp", "tcp", "tls"],
    ),
    ("focus_transport_send_errors_total", "transport", &["udp"]),
    (
        "focus_transport_send_errors_total",
        "reason",
        &["full", "io"],
    ),
    (
        "focus_msrp_delivery_failures_total",
        "reason",
        &[
            "timeout",
            "muted",
            "too_large",
            "stalled",
            "error_response",
            "left",
            "not_connected",
        ],
    ),
    (
        "focus_floor_requests_total",
        "outcome",
        &["granted", "queued", "pending", "denied", "error"],
    ),
    (
        "focus_floor_revokes_total",
        "reason",
        &[
            "talk_burst",
            "chair",
            "muted",
            "left",
            "connection_lost",
            "silent",
        ],
    ),
    (
        "focus_bfcp_rejected_total",
        "reason",
        &[
            "unknown_conference",
            "unknown_user",
            "wrong_address",
            "user_mismatch",
            "malformed",
            "busy",
            "bind_timeout",
            "write_queue",
        ],
    ),
    (
        "focus_rtp_packets_dropped_total",
        "reason",
        &[
            "unknown_source",
            "not_holder",
            "muted",
            "flood",
            "malformed",
            "payload_type",
            "codec",
            "send_error",
        ],
    ),
    (
        "focus_admin_requests_total",
        "action",
        &[
            "list", "show", "end", "remove", "lock", "unlock", "reload", "health", "ready",
            "unknown",
        ],
    ),
    (
        "focus_admin_requests_total",
        "status",
        &[
            "200", "400", "401", "404", "408", "413", "431", "503", "504",
        ],
    ),
    (
        "focus_xdms_fetch_failures_total",
        "reason",
        &["unreachable", "timeout", "status", "invalid"],
    ),
    (
        "focus_config_reloads_total",
        "trigger",
        &["sighup", "admin"],
    ),
    (
        "focus_config_reloads_total",
        "outcome",
        &["applied", "refused"],
    ),
    (
        "focus_session_timer_refreshes_total",
        "by",
        &["participant", "focus"],
    ),
    (
        "focus_journal_lines_total",
        "op",
        &["open", "join", "update", "leave", "close"],
    ),
    (
        "focus_journal_errors_total",
        "op",
        &[
            "read",
            "write",
            "sync",
            "compact",
            "heartbeat",
            "encode",
            "closed",
        ],
    ),
    (
        "focus_recovered_participants_total",
        "outcome",
        &["resumed", "redialed", "failed"],
    ),
];

/// Registers every counter and gauge at 0, with every combination of its bounded label values
/// (`LABELS`), so `/metrics` lists them from the start: an alert on a rate or a dashboard
/// panel has a series before the first event. A gauge keeps any value it already has.
fn touch() {
    for (name, kind, _) in METRICS {
        // focus_build_info carries its own labels (build_info).
        if *kind == Kind::Histogram || *name == "focus_build_info" {
            continue;
        }
        for labels in label_sets(name) {
            match kind {
                Kind::Counter => metrics::counter!(*name, labels).increment(0),
                Kind::Gauge => metrics::gauge!(*name, labels).increment(0.0),
                Kind::Histogram => {}
            }
        }
    }
}

/// `focus_build_info{version, revision} 1`: which build runs where, for dashboards and for
/// alerts that compare instances.
fn build_info() {
    let revision = env!("CPM_FOCUS_GIT_REV");
    let revision = revision.strip_prefix("git ").unwrap_or(revision);
    metrics::gauge!(
        "focus_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "revision" => revision
    )
    .set(1.0);
}

/// Every combination of `metric`'s label values in `LABELS` (one empty set when it has none).
pub fn label_sets(metric: &str) -> Vec<Vec<metrics::Label>> {
    let mut sets: Vec<Vec<metrics::Label>> = vec![Vec::new()];
    for (_, label, values) in LABELS.iter().filter(|(m, _, _)| *m == metric) {
        sets = sets
            .iter()
            .flat_map(|set| {
                values.iter().map(move |v| {
                    let mut s = set.clone();
                    s.push(metrics::Label::new(*label, *v));
                    s
                })
            })
            .collect();
    }
    sets
}

fn describe() {
    for (name, kind, help) in METRICS {
        match kind {
            Kind::Counter => describe_counter!(*name, *help),
            Kind::Gauge => describe_gauge!(*name, *help),
            Kind::Histogram => describe_histogram!(*name, Unit::Seconds, *help),
        }
    }
}

/// How long a scraper may take to send its request (it was 5 s before hyper, too).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest scrape request: a head, no body (hyper's smallest head buffer).
const MAX_SCRAPE_REQUEST: usize = 8192;

/// `/metrics` and `/health` as the HTTP listener's handler.
struct Scrape(PrometheusHandle);

impl Handler for Scrape {
    fn handle(
        self: Arc<Self>,
        req: hyper::Request<hyper::body::Incoming>,
        _conn: Connection,
    ) -> BoxFuture<Reply> {
        let (status, ctype, body) = match req.uri().path() {
            "/metrics" => {
                process::sample();
                (200, "text/plain; version=0.0.4", self.0.render())
            }
            "/health" => (200, "text/plain", "ok\n".to_string()),
            _ => (404, "text/plain", "not found\n".to_string()),
        };
        Box::pin(std::future::ready(server::reply(status, ctype, body, &[])))
    }

    /// Scrapes are not counted (they never were): a failed scrape is Prometheus's own `up`.
    fn refused(&self, _status: u16) {}
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
    let limits = Limits {
        max_connections: None,
        max_request_bytes: MAX_SCRAPE_REQUEST,
        timeout: SCRAPE_TIMEOUT,
    };
    server::serve(listener, Arc::new(Scrape(handle)), limits, cancel).await;
}
