//! Typed configuration: every limit of the focus is a named setting here, with the default
//! that `config/focus.toml` (compiled into the binary) documents line by line.

use crate::sip::{Host, Scheme, Uri};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;
use thiserror::Error;

/// The embedded default configuration file.
pub const DEFAULT_TOML: &str = include_str!("../config/focus.toml");

/// One problem in a configuration, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Syntax(String),
    #[error("{} error(s):\n{}", .0.len(), .0.iter().map(|i| format!("  {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigIssue>),
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub focus: FocusConfig,
    pub sip: SipConfig,
    pub supervisor: SupervisorConfig,
    pub subscriptions: SubscriptionConfig,
    pub shutdown: ShutdownConfig,
    pub msrp: MsrpConfig,
    pub rtp: RtpConfig,
    pub floor: FloorControlConfig,
    pub policy: ProviderPolicy,
    pub charging: ChargingConfig,
    pub xml: XmlConfig,
    pub overload: OverloadConfig,
    pub tls: TlsConfig,
    pub admin: AdminConfig,
    pub session_timer: SessionTimerConfig,
    pub journal: JournalConfig,
    pub listen: ListenConfig,
    pub auth: AuthConfig,
    pub xdms: XdmsConfig,
    pub groups: Vec<GroupConfig>,
}

/// `[focus]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FocusConfig {
    pub domain: String,
    pub display_name: String,
    pub instance_id: String,
    /// User part of the conference factory URI (RFC 4579): INVITE creates ad-hoc sessions.
    pub factory_user: String,
    /// User part of the URI-list service for group MESSAGE (RFC 5365 exploder).
    pub list_service_user: String,
    /// How long an ended ad-hoc session can be restarted by its Contribution-ID, seconds.
    pub restart_window_s: u64,
    /// Most ended ad-hoc sessions remembered for restart.
    pub max_remembered: usize,
    /// How log lines are written to stderr (`--log-format` overrides it).
    pub log_format: LogFormat,
    /// Lines one repetitive log call site writes per interval before it is counted instead
    /// (`crate::log_limit`); 0: no limit.
    pub log_repeat_burst: u32,
    /// That interval, seconds.
    pub log_repeat_interval_s: u64,
}

/// The form of the log on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines (coloured only when stderr is a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl Default for FocusConfig {
    fn default() -> Self {
        FocusConfig {
            domain: "focus.example.com".into(),
            display_name: "cpm-focus".into(),
            instance_id: "focus-1".into(),
            factory_user: "conf-factory".into(),
            list_service_user: "list-service".into(),
            restart_window_s: 86_400,
            max_remembered: 10_000,
            log_format: LogFormat::Text,
            log_repeat_burst: 10,
            log_repeat_interval_s: 60,
        }
    }
}

/// `[sip]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    pub max_message_size: usize,
    pub max_headers: usize,
    /// Largest response sent as one UDP datagram: a response goes back over its request's
    /// transport (RFC 3261 §18.2.2), and a final one larger is replaced by `500`.
    pub max_datagram_size: usize,
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    pub max_transactions: usize,
    pub force_rport: bool,
    pub max_tcp_connections: usize,
    pub tcp_idle_timeout_s: u64,
    pub tcp_write_queue: usize,
    /// Open TCP (and TLS) connections from one untrusted address.
    pub max_tcp_connections_per_source: usize,
    /// Longest time from the first byte of a message to its last on a stream (slowloris).
    pub tcp_message_timeout_s: u64,
    /// Longest time one write may wait for a peer that does not read.
    pub tcp_write_timeout_s: u64,
    /// An inbound connection from an untrusted address that sends no byte this long is
    /// closed: a silent connection holds a slot for seconds, not `tcp_idle_timeout_s`.
    pub tcp_first_byte_timeout_ms: u64,
    /// Percent of `max_tcp_connections` only the trusted core may use: outsiders filling the
    /// rest never lock the core out (a percentage stays valid whatever the cap).
    pub tcp_trusted_reserve_pct: u8,
    /// When the untrusted share is full, a new connection closes the oldest untrusted one
    /// that never carried an admitted participant or member subscription (so members still
    /// get in); off: the new connection is refused.
    pub tcp_evict_unadmitted: bool,
    pub queue_depth: usize,
    pub outbound_proxy: String,
    pub advertise: String,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            max_message_size: 65535,
            max_headers: 256,
            max_datagram_size: 65_507,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            max_transactions: 1_000_000,
            force_rport: true,
            max_tcp_connections: 4096,
            tcp_idle_timeout_s: 600,
            tcp_write_queue: 1024,
            max_tcp_connections_per_source: 64,
            tcp_message_timeout_s: 10,
            tcp_write_timeout_s: 10,
            tcp_first_byte_timeout_ms: 5000,
            tcp_trusted_reserve_pct: 10,
            tcp_evict_unadmitted: true,
            queue_depth: 16_384,
            outbound_proxy: String::new(),
            advertise: String::new(),
        }
    }
}

/// `[supervisor]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisorConfig {
    pub arbiters: usize,
    pub mailbox_capacity: usize,
    pub retry_after_s: u32,
    pub max_sessions: usize,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        SupervisorConfig {
            arbiters: 0,
            mailbox_capacity: 1024,
            retry_after_s: 5,
            max_sessions: 10_000,
        }
    }
}

/// `[subscriptions]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionConfig {
    pub min_expires_s: u32,
    pub default_expires_s: u32,
    pub max_expires_s: u32,
    pub max_per_session: usize,
    pub min_notify_interval_ms: u64,
    pub departed_retention_s: u64,
    /// Percent of `max_per_session` that subscribers who are neither participants nor listed
    /// members may hold, so the host and members can always subscribe.
    pub outsider_share_pct: u8,
    /// Subscribers from `policy.trusted_hosts` see the participants' dialog identifiers
    /// (`<call-info>`); nobody else ever does (they are what an in-dialog request needs).
    pub call_info_to_trusted: bool,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        SubscriptionConfig {
            min_expires_s: 60,
            default_expires_s: 3600,
            max_expires_s: 86_400,
            max_per_session: 1000,
            min_notify_interval_ms: 1000,
            departed_retention_s: 30,
            outsider_share_pct: 50,
            call_info_to_trusted: false,
        }
    }
}

/// `[shutdown]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    pub grace_s: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { grace_s: 5 }
    }
}

/// `[msrp]`: the MSRP switch for session-mode group chat.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MsrpConfig {
    pub enabled: bool,
    pub max_message_size: u64,
    pub max_chunk_size: usize,
    pub queue_depth: usize,
    pub delivery_timeout_s: u64,
    pub bind_timeout_s: u64,
    pub connection_grace_s: u64,
    pub max_connections: usize,
    /// Chunks per second one MSRP connection may send (0: unlimited); beyond, the focus
    /// reads it more slowly (TCP flow control holds the sender back).
    pub max_chunk_rate: u32,
    /// Bytes per second one MSRP connection may send (0: unlimited), enforced the same way.
    pub max_bytes_rate: u64,
}

impl Default for MsrpConfig {
    fn default() -> Self {
        MsrpConfig {
            enabled: true,
            max_message_size: 4 * 1024 * 1024,
            max_chunk_size: 256 * 1024,
            queue_depth: 1024,
            delivery_timeout_s: 30,
            bind_timeout_s: 30,
            connection_grace_s: 10,
            max_connections: 4096,
            max_chunk_rate: 200,
            max_bytes_rate: 2 * 1024 * 1024,
        }
    }
}

/// `[overload]`: per-source request rates and the high-water marks of admission control.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OverloadConfig {
    /// SIP requests per second from one untrusted address (0: unlimited), and the burst.
    pub source_rate: u32,
    pub source_burst: u32,
    /// Addresses of the SIP core (besides `policy.trusted_hosts`), exempt from the untrusted
    /// limits and from the admission marks.
    pub trusted_sources: Vec<String>,
    /// Requests per second from each trusted address (0: exempt), and the burst.
    pub trusted_rate: u32,
    pub trusted_burst: u32,
    /// 503s per second a source over its rate gets; its other requests are dropped.
    pub reject_rate: u32,
    /// Untrusted addresses whose rates are tracked at once.
    pub max_sources: usize,
    /// New work from untrusted sources is refused (503) beyond this percentage of
    /// `sip.max_transactions`, of a shard queue (`sip.queue_depth`), of a session mailbox
    /// (`supervisor.mailbox_capacity`).
    pub transactions_high_pct: u8,
    pub queue_high_pct: u8,
    pub mailbox_high_pct: u8,
    /// New work (an out-of-dialog request) that waited longer than this in the focus's
    /// queues (a transaction shard's queue, a session's mailbox) is answered 503 instead of
    /// served, from any source, the trusted core included: its client has retransmitted or
    /// given up by then, and serving stale work is how an overloaded server collapses.
    /// Milliseconds; 0 turns it off.
    pub max_queue_delay_ms: u64,
}

impl Default for OverloadConfig {
    fn default() -> Self {
        OverloadConfig {
            source_rate: 100,
            source_burst: 200,
            trusted_sources: vec!["127.0.0.1".into(), "::1".into()],
            trusted_rate: 0,
            trusted_burst: 0,
            reject_rate: 5,
            max_sources: 65_536,
            transactions_high_pct: 80,
            queue_high_pct: 50,
            mailbox_high_pct: 50,
            max_queue_delay_ms: 2000,
        }
    }
}

impl OverloadConfig {
    /// The trusted core: `policy.trusted_hosts` and `overload.trusted_sources` (valid ones).
    pub fn trusted(&self, policy: &ProviderPolicy) -> std::collections::HashSet<std::net::IpAddr> {
        policy
            .trusted_hosts
            .iter()
            .chain(&self.trusted_sources)
            .filter_map(|h| h.parse().ok())
            .collect()
    }

    fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        let mut bad = |key: String, message: &str| {
            issues.push(ConfigIssue {
                key,
                message: message.into(),
            })
        };
        if self.source_rate > 0 && self.source_burst == 0 {
            bad(
                "overload.source_burst".into(),
                "must be positive when source_rate is",
            );
        }
        if self.trusted_rate > 0 && self.trusted_burst == 0 {
            bad(
                "overload.trusted_burst".into(),
                "must be positive when trusted_rate is",
            );
        }
        for (i, h) in self.trusted_sources.iter().enumerate() {
            if h.parse::<std::net::IpAddr>().is_err() {
                bad(
                    format!("overload.trusted_sources[{i}]"),
                    "must be an IP address",
                );
            }
        }
        if self.reject_rate == 0 {
            bad("overload.reject_rate".into(), "must be positive");
        }
        if self.max_sources < 16 {
            bad("overload.max_sources".into(), "must be at least 16");
        }
        for (key, v) in [
            ("transactions_high_pct", self.transactions_high_pct),
            ("queue_high_pct", self.queue_high_pct),
            ("mailbox_high_pct", self.mailbox_high_pct),
        ] {
            if !(1..=100).contains(&v) {
                bad(format!("overload.{key}"), "must be between 1 and 100");
            }
        }
        if self.max_queue_delay_ms != 0 && self.max_queue_delay_ms < 100 {
            bad(
                "overload.max_queue_delay_ms".into(),
                "must be 0 (off) or at least 100",
            );
        }
    }

    /// [`OverloadConfig::max_queue_delay_ms`] as a duration (`None`: off).
    pub fn max_queue_delay(&self) -> Option<Duration> {
        (self.max_queue_delay_ms > 0).then(|| Duration::from_millis(self.max_queue_delay_ms))
    }
}

/// `[tls]`: SIP over TLS (`sips:`) and MSRP over TLS (`msrps:`). Off while `cert_file` is
/// empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain of the focus (leaf first).
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
    /// PEM certificates trusted when the focus connects out over TLS; empty: the focus
    /// opens no TLS connection of its own (it still answers over the ones it accepted).
    pub ca_file: String,
    /// Longest TLS handshake of an accepted connection.
    pub handshake_timeout_ms: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: String::new(),
            key_file: String::new(),
            ca_file: String::new(),
            handshake_timeout_ms: 5000,
        }
    }
}

impl TlsConfig {
    /// True when TLS is configured.
    pub fn enabled(&self) -> bool {
        !self.cert_file.is_empty()
    }

    fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        let mut bad = |key: &str, message: &str| {
            issues.push(ConfigIssue {
                key: format!("tls.{key}"),
                message: message.into(),
            })
        };
        if self.cert_file.is_empty() != self.key_file.is_empty() {
            bad(
                if self.cert_file.is_empty() {
                    "cert_file"
                } else {
                    "key_file"
                },
                "cert_file and key_file go together",
            );
        }
        if !self.ca_file.is_empty() && !self.enabled() {
            bad("ca_file", "needs cert_file and key_file");
        }
        if !(100..=60_000).contains(&self.handshake_timeout_ms) {
            bad("handshake_timeout_ms", "must be between 100 and 60000");
        }
    }
}

/// How a leg learns where its participant's packets come from (`[rtp] latching`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Latching {
    /// Only from the address and port the SDP announced (RFC 4961 symmetric RTP: clients
    /// send from the port they receive on).
    #[default]
    Signalled,
    /// Once, at the start of the leg, to the first source from the signalled *address*, on
    /// any port (a NAT that keeps the address but maps the port); never to another source
    /// afterwards.
    SymmetricOnce,
}

/// `[rtp]`: the RTP plane of talk-burst groups (served when `policy.allowed_media` has
/// `audio`). The section's checks live in `config/talk.rs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtpConfig {
    /// UDP ports for participants' legs: an even RTP port and the next odd one for RTCP.
    pub port_min: u16,
    pub port_max: u16,
    /// A participant with no RTP and no RTCP this long loses the floor, in seconds.
    pub silence_timeout_s: u64,
    /// Packets per second one participant may send; more are dropped.
    pub max_packet_rate: u32,
    /// Codecs forwarded, in preference order (`<encoding>/<rate>[/<channels>]`).
    pub codecs: Vec<String>,
    /// RTP legs (port pairs) held at once by participants that joined from one untrusted
    /// address, over all sessions: one address cannot drain the port pool.
    pub max_legs_per_source: u32,
    /// Which source a participant's leg accepts: `signalled` (the SDP's address and port)
    /// or `symmetric_once` (one latch to the first source from the SDP's address).
    pub latching: Latching,
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            port_min: 20000,
            port_max: 29999,
            silence_timeout_s: 10,
            max_packet_rate: 200,
            codecs: vec!["PCMU/8000".into(), "PCMA/8000".into()],
            max_legs_per_source: 32,
            latching: Latching::Signalled,
        }
    }
}

/// `[floor]`: the BFCP floor control server (RFC 8855) of talk-burst groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FloorControlConfig {
    /// BFCP over TCP listener, `IP:PORT`; empty: the SIP address with a port the OS picks
    /// (announced in SDP).
    pub listen: String,
    /// Longest talk burst before the floor is revoked, in seconds; 0 for no limit.
    pub max_talk_burst_s: u64,
    /// Requests waiting per floor; more are denied.
    pub max_queue: usize,
    /// Ongoing requests one participant may have per floor.
    pub max_requests_per_user: usize,
    /// Serve higher PRIORITY first (else strictly first come, first served).
    pub priority_ordering: bool,
    /// Requests wait for a chair (a host or moderator) to accept or grant them.
    pub moderated: bool,
    /// Most BFCP connections at once.
    pub max_connections: usize,
    /// A connection that names no existing conference this long after opening is closed,
    /// in seconds.
    pub bind_timeout_s: u64,
    /// Largest BFCP message accepted, in bytes.
    pub max_message_size: usize,
    /// Messages queued toward one connection; a client that falls this far behind is
    /// disconnected.
    pub write_queue: usize,
}

impl Default for FloorControlConfig {
    fn default() -> Self {
        FloorControlConfig {
            listen: String::new(),
            max_talk_burst_s: 30,
            max_queue: 16,
            max_requests_per_user: 1,
            priority_ordering: true,
            moderated: false,
            max_connections: 4096,
            bind_timeout_s: 30,
            max_message_size: 65536,
            write_queue: 256,
        }
    }
}

/// `[xml]`: bounds on every XML body the focus parses from a peer (the RFC 4826 URI lists of
/// INVITE, REFER and MESSAGE). DTDs and entities beyond the five predefined ones are refused
/// whatever these say.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XmlConfig {
    /// Largest document, bytes.
    pub max_bytes: usize,
    /// Deepest element nesting (the root is depth 1).
    pub max_depth: usize,
    /// Most elements in one document, foreign ones included.
    pub max_elements: usize,
}

impl Default for XmlConfig {
    fn default() -> Self {
        XmlConfig {
            max_bytes: 65_536,
            max_depth: 16,
            max_elements: 10_000,
        }
    }
}

impl XmlConfig {
    /// Every problem of the `[xml]` section, each with its key.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: &str, message: &str| {
            issues.push(ConfigIssue {
                key: format!("xml.{key}"),
                message: message.into(),
            })
        };
        if self.max_bytes < 1024 {
            bad("max_bytes", "must be at least 1024");
        }
        if !(2..=crate::body::resource_lists::DEPTH_CAP).contains(&self.max_depth) {
            bad("max_depth", "must be between 2 and 256");
        }
        if self.max_elements < 2 {
            bad("max_elements", "must be at least 2");
        }
        issues
    }

    /// The parser limits of a resource list under these bounds.
    pub fn list_limits(&self) -> crate::body::resource_lists::ListLimits {
        crate::body::resource_lists::ListLimits {
            max_bytes: self.max_bytes,
            max_depth: self.max_depth,
            max_elements: self.max_elements,
            // Every entry is an element: the element bound is also the entry bound before
            // duplicates go; policy.max_list_size bounds the targets after.
            max_entries: self.max_elements,
        }
    }
}

/// When the charging writer forces records to disk (`fsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsyncPolicy {
    /// After every batch: nothing acknowledged is lost in a power cut, at a sync per batch.
    Always,
    /// At most `fsync_interval_ms` after a write: a power cut loses at most that much.
    Interval,
    /// Left to the operating system (flush and shutdown still sync).
    Never,
}

/// What the focus does when the credit-control server cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnUnavailable {
    /// Admit the session or message (the records still let it be charged later).
    Allow,
    /// Refuse it (503): nothing is served that could not be authorized.
    Deny,
}

/// With online charging on, what becomes of a chargeable request (a join, a group message)
/// whose sender's identity does not count (`charging.unverified`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnverifiedCharging {
    /// Challenged (`401`) when `[auth]` can prove it, else refused `403`: nobody's credit is
    /// spent on a claim.
    #[default]
    Refuse,
    /// Checked against the account of its source address (`source:192.0.2.7`).
    Source,
}

/// `[charging]`: offline charging records and the online credit check.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChargingConfig {
    /// The JSON-lines file records are appended to; empty disables offline charging.
    pub path: String,
    /// The file is rotated before a record would make it larger than this, in bytes.
    pub max_file_bytes: u64,
    /// Rotated files kept (`path.1` is the newest).
    pub keep_files: usize,
    pub fsync: FsyncPolicy,
    pub fsync_interval_ms: u64,
    /// Records held in memory while the file cannot be written; more are dropped (counted).
    pub max_backlog: usize,
    /// Credit-control endpoint (`http://` or `https://host:port/path`); empty disables
    /// online charging.
    pub online_url: String,
    pub online_timeout_ms: u64,
    pub on_unavailable: OnUnavailable,
    /// A chargeable request from an identity that does not count: proven or refused, or
    /// charged to its source address.
    pub unverified: UnverifiedCharging,
    /// PEM roots trusted for an `https` credit server, besides `tls.ca_file`.
    pub online_ca_file: String,
    /// How long an idle connection to the credit server is kept for the next check, ms;
    /// 0: a connection per check.
    pub online_idle_timeout_ms: u64,
    /// Credit checks in flight at once (and idle connections kept); more are refused `503`.
    pub online_max_pending: usize,
    /// `Authorization: Bearer` token for the credit server, inline or (better) read from a
    /// file at start.
    pub online_token: String,
    pub online_token_file: String,
    /// Basic authentication (RFC 7617) for the credit server: user, and the password inline
    /// or from a file.
    pub online_user: String,
    pub online_password: String,
    pub online_password_file: String,
}

// Debug by hand: the token and password are secrets and configurations get logged.
impl fmt::Debug for ChargingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChargingConfig")
            .field("path", &self.path)
            .field("max_file_bytes", &self.max_file_bytes)
            .field("keep_files", &self.keep_files)
            .field("fsync", &self.fsync)
            .field("fsync_interval_ms", &self.fsync_interval_ms)
            .field("max_backlog", &self.max_backlog)
            .field("online_url", &self.online_url)
            .field("online_timeout_ms", &self.online_timeout_ms)
            .field("on_unavailable", &self.on_unavailable)
            .field("unverified", &self.unverified)
            .field("online_ca_file", &self.online_ca_file)
            .field("online_idle_timeout_ms", &self.online_idle_timeout_ms)
            .field("online_max_pending", &self.online_max_pending)
            .field("online_token", &token_digest(&self.online_token))
            .field("online_token_file", &self.online_token_file)
            .field("online_user", &self.online_user)
            .field("online_password", &token_digest(&self.online_password))
            .field("online_password_file", &self.online_password_file)
            .finish()
    }
}

impl Default for ChargingConfig {
    fn default() -> Self {
        ChargingConfig {
            path: String::new(),
            max_file_bytes: 64 * 1024 * 1024,
            keep_files: 10,
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: 1000,
            max_backlog: 100_000,
            online_url: String::new(),
            online_timeout_ms: 1000,
            on_unavailable: OnUnavailable::Allow,
            unverified: UnverifiedCharging::Refuse,
            online_ca_file: String::new(),
            online_idle_timeout_ms: 60_000,
            online_max_pending: 256,
            online_token: String::new(),
            online_token_file: String::new(),
            online_user: String::new(),
            online_password: String::new(),
            online_password_file: String::new(),
        }
    }
}

/// True when `path` names a file, not a directory: "dir/" would be opened as a file name by
/// `Path` (which drops the slash).
fn names_a_file(path: &str) -> bool {
    !path.ends_with('/') && std::path::Path::new(path).file_name().is_some()
}

impl ChargingConfig {
    /// Every problem of the `[charging]` section, each with its key (the charging writer
    /// checks the same when started on its own).
    pub fn validate(&self) -> Vec<ConfigIssue> {
        self.validate_with_roots(None)
    }

    /// [`ChargingConfig::validate`], and with `tls_ca_file` (the `[tls]` roots) known, that an
    /// `https` credit server has roots to be verified against.
    pub fn validate_with_roots(&self, tls_ca_file: Option<&str>) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: &str, message: &str| {
            issues.push(ConfigIssue {
                key: format!("charging.{key}"),
                message: message.into(),
            })
        };
        if !self.path.is_empty() && !names_a_file(&self.path) {
            bad("path", "must name a file");
        }
        if self.max_file_bytes < 1024 {
            bad("max_file_bytes", "must be at least 1024");
        }
        if !(1..=1000).contains(&self.keep_files) {
            bad("keep_files", "must be between 1 and 1000");
        }
        if !(1..=60_000).contains(&self.fsync_interval_ms) {
            bad("fsync_interval_ms", "must be between 1 and 60000");
        }
        if self.max_backlog == 0 {
            bad("max_backlog", "must be positive");
        }
        if !self.online_url.is_empty() {
            match HttpUrl::parse(&self.online_url) {
                Err(e) => bad("online_url", &e.to_string()),
                Ok(url)
                    if url.is_https()
                        && self.online_ca_file.is_empty()
                        && tls_ca_file.is_some_and(str::is_empty) =>
                {
                    bad(
                        "online_url",
                        "https needs roots to verify the server: set charging.online_ca_file or tls.ca_file",
                    )
                }
                Ok(_) => {}
            }
        }
        if !(1..=30_000).contains(&self.online_timeout_ms) {
            bad("online_timeout_ms", "must be between 1 and 30000");
        }
        if self.online_idle_timeout_ms > 3_600_000 {
            bad("online_idle_timeout_ms", "must be at most 3600000");
        }
        if !(1..=65_536).contains(&self.online_max_pending) {
            bad("online_max_pending", "must be between 1 and 65536");
        }
        if !self.online_token.is_empty() && !self.online_token_file.is_empty() {
            bad(
                "online_token",
                "set online_token or online_token_file, not both",
            );
        }
        if !self.online_token.bytes().all(|b| b.is_ascii_graphic()) {
            bad(
                "online_token",
                "must be printable characters without spaces",
            );
        }
        if !self.online_password.is_empty() && !self.online_password_file.is_empty() {
            bad(
                "online_password",
                "set online_password or online_password_file, not both",
            );
        }
        let token = !self.online_token.is_empty() || !self.online_token_file.is_empty();
        let password = !self.online_password.is_empty() || !self.online_password_file.is_empty();
        if self.online_user.contains(':') || self.online_user.chars().any(char::is_control) {
            bad(
                "online_user",
                "must not contain a colon or control characters (RFC 7617)",
            );
        }
        if self.online_user.is_empty() == password {
            let key = if password {
                "online_user"
            } else {
                "online_password"
            };
            if password || !self.online_user.is_empty() {
                bad(
                    key,
                    "basic authentication needs both online_user and a password",
                );
            }
        }
        if token && !self.online_user.is_empty() {
            bad(
                "online_user",
                "choose a bearer token or basic authentication, not both",
            );
        }
        issues
    }
}

/// `[admin]`: the operator's HTTP API (`--admin-listen`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer token every request but `/health` and `/ready` must carry; empty: none asked
    /// (allowed on a loopback listener only). Reloadable.
    pub token: String,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Largest request (head and body), bytes.
    pub max_request_bytes: usize,
    /// How long a client may take to send its request, and a session to answer, ms.
    pub timeout_ms: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            token: String::new(),
            max_connections: 16,
            max_request_bytes: 16 * 1024,
            timeout_ms: 5000,
        }
    }
}

// Debug by hand: the token is a secret and configurations get logged.
impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("token", &token_digest(&self.token))
            .field("max_connections", &self.max_connections)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// A stand-in for a secret in Debug output that still differs when the secret does (the
/// reload compares sections by their Debug text).
fn token_digest(token: &str) -> String {
    use std::hash::{Hash, Hasher};
    if token.is_empty() {
        return "none".into();
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    token.hash(&mut h);
    format!("set#{:04x}", h.finish() & 0xffff)
}

impl AdminConfig {
    /// Every problem of the `[admin]` section, each with its key.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: &str, message: &str| {
            issues.push(ConfigIssue {
                key: format!("admin.{key}"),
                message: message.into(),
            })
        };
        if !self.token.is_empty()
            && (self.token.len() < 16 || !self.token.bytes().all(|b| b.is_ascii_graphic()))
        {
            bad(
                "token",
                "must be at least 16 printable characters without spaces",
            );
        }
        if !(1..=1024).contains(&self.max_connections) {
            bad("max_connections", "must be between 1 and 1024");
        }
        if !(1024..=1024 * 1024).contains(&self.max_request_bytes) {
            bad("max_request_bytes", "must be between 1024 and 1048576");
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            bad("timeout_ms", "must be between 100 and 60000");
        }
        issues
    }
}

/// `[session_timer]`: RFC 4028 session timers on participants' dialogs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionTimerConfig {
    /// Ask for and grant session timers (`Supported: timer`); false leaves dialogs untimed.
    pub enabled: bool,
    /// The session interval the focus asks for and the longest it grants, seconds.
    pub expires_s: u32,
    /// The shortest session interval accepted (422 with Min-SE below it), seconds.
    pub min_se_s: u32,
}

impl Default for SessionTimerConfig {
    fn default() -> Self {
        SessionTimerConfig {
            enabled: true,
            expires_s: 1800,
            min_se_s: 90,
        }
    }
}

impl SessionTimerConfig {
    /// The settings sessions negotiate with.
    pub fn settings(&self) -> crate::session_timer::TimerSettings {
        crate::session_timer::TimerSettings {
            enabled: self.enabled,
            expires: self.expires_s,
            min_se: self.min_se_s,
        }
    }
}

/// `[journal]`: the membership journal that lets a restarted focus resume its live groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// The journal file; empty disables journaling (and crash recovery).
    pub path: String,
    pub fsync: FsyncPolicy,
    pub fsync_interval_ms: u64,
    /// A restart this long (at most) after the crash resumes the journaled groups, seconds.
    pub recovery_window_s: u64,
    /// The file is compacted (rewritten with only the live sessions) when it grows past this,
    /// bytes.
    pub max_bytes: u64,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            path: String::new(),
            fsync: FsyncPolicy::Interval,
            fsync_interval_ms: 1000,
            recovery_window_s: 300,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

impl JournalConfig {
    /// Every problem of the `[journal]` section, each with its key.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: &str, message: &str| {
            issues.push(ConfigIssue {
                key: format!("journal.{key}"),
                message: message.into(),
            })
        };
        if !self.path.is_empty() && !names_a_file(&self.path) {
            bad("path", "must name a file");
        }
        if !(1..=60_000).contains(&self.fsync_interval_ms) {
            bad("fsync_interval_ms", "must be between 1 and 60000");
        }
        if self.recovery_window_s > 7 * 86_400 {
            bad("recovery_window_s", "must be at most 604800");
        }
        if self.max_bytes < 4096 {
            bad("max_bytes", "must be at least 4096");
        }
        issues
    }
}

/// Who may join a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JoinRule {
    /// Anyone may join.
    Open,
    /// Only the group's listed members may join.
    MembersOnly,
    /// Nobody dials in: only participants the focus invited (REFER, URI list) join.
    InvitedOnly,
}

/// A member's role in a group (shown in conference-info `roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Participant,
    Moderator,
    Host,
}

impl Role {
    /// The RFC 4575 role token.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Participant => "participant",
            Role::Moderator => "moderator",
            Role::Host => "host",
        }
    }
}

/// Who may add or remove participants (REFER, RFC 4579).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Authority {
    /// Hosts only.
    Hosts,
    /// Hosts and moderators.
    Moderators,
    /// Any listed member.
    Members,
    /// Any participant.
    Anyone,
}

/// A media type a session may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaKind {
    /// Session-mode chat (`m=message ... TCP/MSRP`).
    Msrp,
    /// Talk bursts: `m=audio` RTP with BFCP floor control (`m=application ... TCP/BFCP`).
    Audio,
}

/// `[[groups.members]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    pub uri: String,
    #[serde(default = "default_role")]
    pub role: Role,
}

fn default_role() -> Role {
    Role::Participant
}

/// `[policy]`: service-provider policy, over every group and ad-hoc session.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderPolicy {
    /// No session holds more participants than this, whatever its group says.
    pub max_participants_per_session: u32,
    /// Media the focus may serve at all.
    pub allowed_media: Vec<MediaKind>,
    /// Hosts (IP addresses) whose P-Asserted-Identity is trusted (RFC 3325).
    pub trusted_hosts: Vec<String>,
    /// Which identities count for membership, roles and rights: only proven ones
    /// (`asserted`), or any From (`from`, the lab mode).
    pub identity: IdentityMode,
    /// Whether ad-hoc groups may be created, and by whom: "anyone", "none", or a list of
    /// domains in `adhoc_domains`.
    pub adhoc: AdhocRule,
    pub adhoc_domains: Vec<String>,
    /// How long a participant the focus calls may ring before the focus gives up (CANCEL).
    pub dial_out_timeout_s: u64,
    /// Most targets one URI list may name (REFER, INVITE or MESSAGE with a list); more is 403.
    pub max_list_size: usize,
    /// Group messages one session relays per second (pager mode), and most it queues.
    pub pager_rate: u32,
    pub pager_queue: usize,
    /// Participants one untrusted address may have in one session at once (the trusted
    /// core fronts many users and is exempt): one address cannot fill a group.
    pub max_participants_per_source: u32,
    /// Group messages per second one sender (identity) may send into a session (0:
    /// unlimited), and its burst; beyond, 503 with Retry-After.
    pub pager_rate_per_sender: u32,
    pub pager_burst_per_sender: u32,
    /// A joining UA whose Contact carries `;isfocus` (another focus cascading into ours).
    pub cascade: CascadeRule,
}

/// What becomes of a join from another focus (its Contact says `;isfocus`, RFC 4579 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CascadeRule {
    /// Refused `403` with a Warning.
    Refuse,
    /// Accepted as a participant that stands for another conference.
    Accept,
}

/// Which identities count for membership, roles and rights (`policy.identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityMode {
    /// Only a proven identity: P-Asserted-Identity from a trusted host, the From of a trusted
    /// host, or digest authentication by the focus. Anyone else is an outsider.
    #[default]
    Asserted,
    /// Any From counts, from anywhere: a lab mode, never for a network others can reach.
    From,
}

/// Who may create ad-hoc groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdhocRule {
    Anyone,
    None,
    Domains,
}

impl Default for ProviderPolicy {
    fn default() -> Self {
        ProviderPolicy {
            max_participants_per_session: 1000,
            allowed_media: vec![MediaKind::Msrp],
            // Loopback: a proxy or test tool on the focus's own machine (the embedded file
            // documents the same).
            trusted_hosts: vec!["127.0.0.1".into(), "::1".into()],
            identity: IdentityMode::Asserted,
            adhoc: AdhocRule::Anyone,
            adhoc_domains: Vec::new(),
            dial_out_timeout_s: 60,
            max_list_size: 100,
            pager_rate: 2000,
            pager_queue: 20_000,
            max_participants_per_source: 32,
            pager_rate_per_sender: 5,
            pager_burst_per_sender: 20,
            cascade: CascadeRule::Refuse,
        }
    }
}

/// `[[groups]]`: a pre-defined group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub uri: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default = "default_join")]
    pub join: JoinRule,
    #[serde(default = "default_max_participants")]
    pub max_participants: u32,
    #[serde(default = "default_true")]
    pub allow_signalling_only: bool,
    #[serde(default = "default_true")]
    pub allow_private_messages: bool,
    /// Media this group serves (a subset of the provider's); default: all the provider allows.
    #[serde(default)]
    pub allowed_media: Option<Vec<MediaKind>>,
    /// Audio codecs this group forwards, in preference order; default: `rtp.codecs`.
    #[serde(default)]
    pub codecs: Option<Vec<String>>,
    #[serde(default = "default_true")]
    pub allow_anonymous: bool,
    #[serde(default = "default_add")]
    pub add: Authority,
    #[serde(default = "default_add")]
    pub remove: Authority,
    /// The group starts locked: nobody new may join until a moderator unlocks it.
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub members: Vec<MemberConfig>,
}

fn default_add() -> Authority {
    Authority::Moderators
}

fn default_join() -> JoinRule {
    JoinRule::Open
}
fn default_max_participants() -> u32 {
    1000
}
fn default_true() -> bool {
    true
}

impl Config {
    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let issues = config.validate();
        if issues.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(issues))
        }
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text)
    }

    /// The embedded default.
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::from_toml(DEFAULT_TOML)
    }

    /// Every problem, each with its key; empty when the configuration is usable.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: String, message: &str| {
            issues.push(ConfigIssue {
                key,
                message: message.into(),
            })
        };
        let domain = Host::parse(&self.focus.domain);
        for (key, user) in [
            ("focus.factory_user", &self.focus.factory_user),
            ("focus.list_service_user", &self.focus.list_service_user),
        ] {
            if user.is_empty()
                || !user
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                bad(
                    key.into(),
                    "must be a non-empty token of letters, digits, '-', '_', '.'",
                );
            }
        }
        if !self
            .focus
            .instance_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || self.focus.instance_id.is_empty()
        {
            bad(
                "focus.instance_id".into(),
                "must be letters, digits and '-'",
            );
        }
        if domain.is_err() {
            bad("focus.domain".into(), "must be a host name or IP address");
        }
        if !(1..=86_400).contains(&self.focus.log_repeat_interval_s) {
            bad(
                "focus.log_repeat_interval_s".into(),
                "must be between 1 and 86400",
            );
        }
        let s = &self.sip;
        if !(1024..=16 * 1024 * 1024).contains(&s.max_message_size) {
            bad(
                "sip.max_message_size".into(),
                "must be between 1024 and 16777216",
            );
        }
        if !(16..=4096).contains(&s.max_headers) {
            bad("sip.max_headers".into(), "must be between 16 and 4096");
        }
        if !(1300..=65_507).contains(&s.max_datagram_size) {
            bad(
                "sip.max_datagram_size".into(),
                "must be between 1300 and 65507",
            );
        }
        if s.t1_ms == 0 || s.t1_ms > 60_000 {
            bad("sip.t1_ms".into(), "must be between 1 and 60000");
        }
        if s.t2_ms < s.t1_ms {
            bad("sip.t2_ms".into(), "must not be smaller than t1_ms");
        }
        if s.t4_ms == 0 {
            bad("sip.t4_ms".into(), "must be positive");
        }
        if s.max_transactions == 0 {
            bad("sip.max_transactions".into(), "must be positive");
        }
        if s.max_tcp_connections == 0 {
            bad("sip.max_tcp_connections".into(), "must be positive");
        }
        if s.tcp_idle_timeout_s == 0 {
            bad("sip.tcp_idle_timeout_s".into(), "must be positive");
        }
        if s.tcp_write_queue == 0 {
            bad("sip.tcp_write_queue".into(), "must be positive");
        }
        if s.max_tcp_connections_per_source == 0 {
            bad(
                "sip.max_tcp_connections_per_source".into(),
                "must be positive",
            );
        }
        if !(1..=3600).contains(&s.tcp_message_timeout_s) {
            bad(
                "sip.tcp_message_timeout_s".into(),
                "must be between 1 and 3600",
            );
        }
        if !(1..=3600).contains(&s.tcp_write_timeout_s) {
            bad(
                "sip.tcp_write_timeout_s".into(),
                "must be between 1 and 3600",
            );
        }
        if !(100..=60_000).contains(&s.tcp_first_byte_timeout_ms) {
            bad(
                "sip.tcp_first_byte_timeout_ms".into(),
                "must be between 100 and 60000",
            );
        }
        if s.tcp_trusted_reserve_pct > 90 {
            bad(
                "sip.tcp_trusted_reserve_pct".into(),
                "must be between 0 and 90",
            );
        }
        if s.queue_depth < 16 {
            bad("sip.queue_depth".into(), "must be at least 16");
        }
        let advertised: Vec<&str> = s.advertise.split(',').map(str::trim).collect();
        if !s.advertise.is_empty()
            && advertised
                .iter()
                .any(|h| h.is_empty() || Host::parse_config(h).is_err())
        {
            bad(
                "sip.advertise".into(),
                "must be host names or IP addresses separated by commas",
            );
        }
        if !s.outbound_proxy.is_empty()
            && crate::sip::Uri::parse(&format!("sip:{}", s.outbound_proxy)).is_err()
        {
            let message = if s.outbound_proxy.parse::<std::net::Ipv6Addr>().is_ok() {
                "must be host or host:port (an IPv6 address in brackets: [2001:db8::1]:5060)"
            } else {
                "must be host or host:port"
            };
            bad("sip.outbound_proxy".into(), message);
        }
        let sv = &self.supervisor;
        if sv.mailbox_capacity == 0 {
            bad("supervisor.mailbox_capacity".into(), "must be positive");
        }
        if sv.max_sessions == 0 {
            bad("supervisor.max_sessions".into(), "must be positive");
        }
        if sv.arbiters > 256 {
            bad("supervisor.arbiters".into(), "must be at most 256");
        }
        let sub = &self.subscriptions;
        if sub.min_expires_s > sub.max_expires_s {
            bad(
                "subscriptions.min_expires_s".into(),
                "must not exceed max_expires_s",
            );
        }
        if sub.default_expires_s < sub.min_expires_s || sub.default_expires_s > sub.max_expires_s {
            bad(
                "subscriptions.default_expires_s".into(),
                "must lie between min_expires_s and max_expires_s",
            );
        }
        if sub.max_per_session == 0 {
            bad("subscriptions.max_per_session".into(), "must be positive");
        }
        if !(1..=100).contains(&sub.outsider_share_pct) {
            bad(
                "subscriptions.outsider_share_pct".into(),
                "must be between 1 and 100",
            );
        }
        let m = &self.msrp;
        if m.max_message_size == 0 {
            bad("msrp.max_message_size".into(), "must be positive");
        }
        if !(1024..=16 * 1024 * 1024).contains(&m.max_chunk_size) {
            bad(
                "msrp.max_chunk_size".into(),
                "must be between 1024 and 16777216",
            );
        }
        if m.queue_depth == 0 {
            bad("msrp.queue_depth".into(), "must be positive");
        }
        if m.delivery_timeout_s == 0 {
            bad("msrp.delivery_timeout_s".into(), "must be positive");
        }
        if m.bind_timeout_s == 0 {
            bad("msrp.bind_timeout_s".into(), "must be positive");
        }
        if m.max_connections == 0 {
            bad("msrp.max_connections".into(), "must be positive");
        }
        let p = &self.policy;
        if p.max_participants_per_session == 0 {
            bad(
                "policy.max_participants_per_session".into(),
                "must be positive",
            );
        }
        for (i, h) in p.trusted_hosts.iter().enumerate() {
            if h.parse::<std::net::IpAddr>().is_err() {
                bad(
                    format!("policy.trusted_hosts[{i}]"),
                    "must be an IP address",
                );
            }
        }
        if p.pager_rate == 0 {
            bad("policy.pager_rate".into(), "must be positive");
        }
        if p.pager_queue == 0 {
            bad("policy.pager_queue".into(), "must be positive");
        }
        if p.max_participants_per_source == 0 {
            bad(
                "policy.max_participants_per_source".into(),
                "must be positive",
            );
        }
        if p.pager_rate_per_sender > 0 && p.pager_burst_per_sender == 0 {
            bad(
                "policy.pager_burst_per_sender".into(),
                "must be positive when pager_rate_per_sender is",
            );
        }
        if p.adhoc == AdhocRule::Domains && p.adhoc_domains.is_empty() {
            bad(
                "policy.adhoc_domains".into(),
                "adhoc = \"domains\" needs domains",
            );
        }
        if self.shutdown.grace_s > 300 {
            bad("shutdown.grace_s".into(), "must be at most 300");
        }
        let mut seen = std::collections::HashSet::new();
        for (i, g) in self.groups.iter().enumerate() {
            let key = |field: &str| format!("groups[{i}].{field}");
            match Uri::parse(&g.uri) {
                Ok(u) if u.scheme == Scheme::Sip || u.scheme == Scheme::Sips => {
                    let host_ok = match (&u.host, &domain) {
                        (Some(h), Ok(d)) => h.matches(d),
                        _ => false,
                    };
                    if !host_ok {
                        bad(key("uri"), "host must be the focus domain");
                    }
                    match u.user_unescaped() {
                        None => bad(key("uri"), "must have a user part"),
                        Some(user) => {
                            if !seen.insert(user.into_owned()) {
                                bad(key("uri"), "duplicate group");
                            }
                        }
                    }
                }
                _ => bad(key("uri"), "must be a sip: or sips: URI"),
            }
            if g.max_participants == 0 {
                bad(key("max_participants"), "must be positive");
            }
            if let Some(media) = &g.allowed_media {
                if media.iter().any(|m| !self.policy.allowed_media.contains(m)) {
                    bad(
                        key("allowed_media"),
                        "must be a subset of policy.allowed_media",
                    );
                }
            }
            for (j, m) in g.members.iter().enumerate() {
                match Uri::parse(&m.uri) {
                    Ok(u) if u.is_sip() || u.scheme == Scheme::Tel => {}
                    _ => bad(
                        format!("groups[{i}].members[{j}].uri"),
                        "must be a sip:, sips: or tel: URI",
                    ),
                }
            }
            if g.join == JoinRule::MembersOnly && g.members.is_empty() {
                bad(key("members"), "a members-only group needs members");
            }
        }
        let st = &self.session_timer;
        if st.min_se_s == 0 {
            bad("session_timer.min_se_s".into(), "must be positive");
        }
        if st.expires_s < st.min_se_s {
            bad(
                "session_timer.expires_s".into(),
                "must not be smaller than min_se_s",
            );
        }
        issues.extend(self.charging.validate_with_roots(Some(&self.tls.ca_file)));
        issues.extend(self.xml.validate());
        self.overload.validate(&mut issues);
        self.tls.validate(&mut issues);
        issues.extend(talk::validate(self));
        issues.extend(self.admin.validate());
        issues.extend(self.journal.validate());
        issues.extend(self.listen.validate());
        issues.extend(self.auth.validate(&self.focus));
        issues.extend(self.xdms.validate());
        issues
    }

    /// Number of arbiters to run: the configured number, or one per core.
    pub fn arbiter_count(&self) -> usize {
        if self.supervisor.arbiters > 0 {
            self.supervisor.arbiters
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

mod auth;
mod codec;
mod listen;
mod talk;
mod url;
mod xdms;

pub use auth::{AuthConfig, AuthMode};
pub use codec::{Codec, CodecError, MAX_CODECS};
pub use listen::ListenConfig;
pub use url::{HttpUrl, UrlError};
pub use xdms::XdmsConfig;

#[cfg(test)]
mod tests {
    use super::*;

    /// `sip.advertise` names one host per IP family (IPv6 with or without brackets), and a
    /// bare IPv6 outbound proxy is refused with the bracket hint.
    #[test]
    fn advertise_takes_a_list_and_ipv6_is_accepted() {
        let ok = "[sip]\nadvertise = \"203.0.113.5, 2001:db8::5\"\n";
        assert!(Config::from_toml(ok).is_ok());
        assert!(Config::from_toml("[sip]\nadvertise = \"[2001:db8::5]\"\n").is_ok());
        assert!(Config::from_toml("[sip]\noutbound_proxy = \"[2001:db8::1]:5060\"\n").is_ok());
        for (text, key, hint) in [
            ("[sip]\nadvertise = \"a, ,b\"\n", "sip.advertise", "commas"),
            (
                "[sip]\nadvertise = \"bad host\"\n",
                "sip.advertise",
                "commas",
            ),
            (
                "[sip]\noutbound_proxy = \"2001:db8::1\"\n",
                "sip.outbound_proxy",
                "brackets",
            ),
        ] {
            let Err(ConfigError::Invalid(issues)) = Config::from_toml(text) else {
                panic!("accepted: {text}")
            };
            assert!(
                issues
                    .iter()
                    .any(|i| i.key == key && i.message.contains(hint)),
                "{text}: {issues:?}"
            );
        }
    }

    #[test]
    fn embedded_default_is_valid_and_matches_defaults() {
        let c = Config::embedded().unwrap();
        assert_eq!(c.focus.domain, "focus.example.com");
        assert_eq!(c.groups.len(), 1);
        assert_eq!(c.groups[0].uri, "sip:team@focus.example.com");
        assert_eq!(c.groups[0].join, JoinRule::Open);
        assert_eq!(c.groups[0].max_participants, 1000);
        assert!(c.groups[0].allow_signalling_only);
        // The file documents the built-in defaults: they must agree.
        let d = Config::default();
        assert_eq!(c.sip.max_message_size, d.sip.max_message_size);
        assert_eq!(c.sip.t1_ms, d.sip.t1_ms);
        assert_eq!(c.supervisor.mailbox_capacity, d.supervisor.mailbox_capacity);
        assert_eq!(
            c.subscriptions.min_notify_interval_ms,
            d.subscriptions.min_notify_interval_ms
        );
        assert_eq!(c.shutdown.grace_s, d.shutdown.grace_s);
        assert_eq!(c.msrp.max_message_size, d.msrp.max_message_size);
        assert_eq!(c.msrp.queue_depth, d.msrp.queue_depth);
        assert!(c.groups[0].allow_private_messages);
        // Loopback is trusted (the README's SIPp tour), and only proven identities count.
        assert_eq!(c.policy.trusted_hosts, ["127.0.0.1", "::1"]);
        assert_eq!(c.policy.trusted_hosts, d.policy.trusted_hosts);
        assert_eq!(c.policy.identity, IdentityMode::Asserted);
        assert_eq!(c.policy.identity, d.policy.identity);
        assert_eq!(c.charging.path, d.charging.path);
        assert_eq!(c.charging.max_file_bytes, d.charging.max_file_bytes);
        assert_eq!(c.charging.keep_files, d.charging.keep_files);
        assert_eq!(c.charging.fsync, d.charging.fsync);
        assert_eq!(c.charging.fsync_interval_ms, d.charging.fsync_interval_ms);
        assert_eq!(c.charging.max_backlog, d.charging.max_backlog);
        assert_eq!(c.charging.online_url, d.charging.online_url);
        assert_eq!(c.charging.online_timeout_ms, d.charging.online_timeout_ms);
        assert_eq!(c.charging.on_unavailable, d.charging.on_unavailable);
        assert_eq!(
            format!("{:?}", c.charging),
            format!("{:?}", d.charging),
            "the credit client's keys in config/focus.toml are the defaults"
        );
        assert_eq!(c.rtp.port_min, d.rtp.port_min);
        assert_eq!(c.rtp.port_max, d.rtp.port_max);
        assert_eq!(c.rtp.silence_timeout_s, d.rtp.silence_timeout_s);
        assert_eq!(c.rtp.max_packet_rate, d.rtp.max_packet_rate);
        assert_eq!(c.rtp.codecs, d.rtp.codecs);
        assert_eq!(c.rtp.latching, d.rtp.latching);
        assert_eq!(c.floor.listen, d.floor.listen);
        assert_eq!(c.floor.max_talk_burst_s, d.floor.max_talk_burst_s);
        assert_eq!(c.floor.max_queue, d.floor.max_queue);
        assert_eq!(c.floor.max_requests_per_user, d.floor.max_requests_per_user);
        assert_eq!(c.floor.priority_ordering, d.floor.priority_ordering);
        assert_eq!(c.floor.moderated, d.floor.moderated);
        assert_eq!(c.floor.max_connections, d.floor.max_connections);
        assert_eq!(c.floor.bind_timeout_s, d.floor.bind_timeout_s);
        assert_eq!(c.floor.max_message_size, d.floor.max_message_size);
        assert_eq!(c.floor.write_queue, d.floor.write_queue);
        assert_eq!(
            c.sip.max_tcp_connections_per_source,
            d.sip.max_tcp_connections_per_source
        );
        assert_eq!(c.sip.tcp_message_timeout_s, d.sip.tcp_message_timeout_s);
        assert_eq!(c.sip.tcp_write_timeout_s, d.sip.tcp_write_timeout_s);
        // Fair shares (issue 14).
        assert_eq!(
            (
                c.sip.tcp_first_byte_timeout_ms,
                c.sip.tcp_trusted_reserve_pct,
                c.sip.tcp_evict_unadmitted
            ),
            (
                d.sip.tcp_first_byte_timeout_ms,
                d.sip.tcp_trusted_reserve_pct,
                d.sip.tcp_evict_unadmitted
            )
        );
        assert_eq!(
            c.subscriptions.outsider_share_pct,
            d.subscriptions.outsider_share_pct
        );
        assert_eq!(c.rtp.max_legs_per_source, d.rtp.max_legs_per_source);
        assert_eq!(
            (
                c.policy.max_participants_per_source,
                c.policy.pager_rate_per_sender,
                c.policy.pager_burst_per_sender
            ),
            (
                d.policy.max_participants_per_source,
                d.policy.pager_rate_per_sender,
                d.policy.pager_burst_per_sender
            )
        );
        assert_eq!(c.msrp.max_chunk_rate, d.msrp.max_chunk_rate);
        assert_eq!(c.msrp.max_bytes_rate, d.msrp.max_bytes_rate);
        let (o, od) = (&c.overload, &d.overload);
        assert_eq!(
            (o.source_rate, o.source_burst, o.reject_rate, o.max_sources),
            (
                od.source_rate,
                od.source_burst,
                od.reject_rate,
                od.max_sources
            )
        );
        assert_eq!(o.trusted_sources, od.trusted_sources);
        assert_eq!(
            (o.trusted_rate, o.trusted_burst),
            (od.trusted_rate, od.trusted_burst)
        );
        assert_eq!(
            (
                o.transactions_high_pct,
                o.queue_high_pct,
                o.mailbox_high_pct
            ),
            (
                od.transactions_high_pct,
                od.queue_high_pct,
                od.mailbox_high_pct
            )
        );
        assert!(!c.tls.enabled());
        assert_eq!(c.tls.handshake_timeout_ms, d.tls.handshake_timeout_ms);
        assert_eq!(c.session_timer.enabled, d.session_timer.enabled);
        assert_eq!(c.session_timer.expires_s, d.session_timer.expires_s);
        assert_eq!(c.session_timer.min_se_s, d.session_timer.min_se_s);
        assert_eq!(c.journal.path, d.journal.path);
        assert_eq!(c.journal.fsync, d.journal.fsync);
        assert_eq!(c.journal.fsync_interval_ms, d.journal.fsync_interval_ms);
        assert_eq!(c.journal.recovery_window_s, d.journal.recovery_window_s);
        assert_eq!(c.journal.max_bytes, d.journal.max_bytes);
    }

    #[test]
    fn overload_and_tls_errors_are_reported_with_their_keys() {
        let text = r#"
            [overload]
            trusted_sources = ["core.example.com"]
            reject_rate = 0
            queue_high_pct = 0
            max_queue_delay_ms = 10
            [tls]
            key_file = "focus.key"
        "#;
        let Err(ConfigError::Invalid(issues)) = Config::from_toml(text) else {
            panic!("accepted")
        };
        let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "overload.trusted_sources[0]",
                "overload.reject_rate",
                "overload.queue_high_pct",
                "overload.max_queue_delay_ms",
                "tls.cert_file",
            ]
        );
    }

    #[test]
    fn session_timer_and_journal_errors_are_reported_with_their_keys() {
        let text = r#"
            [session_timer]
            expires_s = 60
            min_se_s = 90
            [journal]
            path = "state/"
            fsync_interval_ms = 0
            recovery_window_s = 9999999
            max_bytes = 10
        "#;
        let Err(ConfigError::Invalid(issues)) = Config::from_toml(text) else {
            panic!("accepted")
        };
        let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "session_timer.expires_s",
                "journal.path",
                "journal.fsync_interval_ms",
                "journal.recovery_window_s",
                "journal.max_bytes",
            ]
        );
        assert!(Config::from_toml(
            "[session_timer]
min_se_s = 0
expires_s = 0
"
        )
        .is_err());
        let good = Config::from_toml(
            "[session_timer]
enabled = false
[journal]
path = \"/var/lib/cpm/journal\"
fsync = \"always\"
",
        )
        .unwrap();
        assert!(!good.session_timer.settings().enabled);
        assert_eq!(good.journal.fsync, FsyncPolicy::Always);
    }

    #[test]
    fn charging_errors_are_reported_with_their_keys() {
        let text = r#"
            [charging]
            path = "/var/log/cdr/"
            max_file_bytes = 10
            keep_files = 0
            fsync = "interval"
            fsync_interval_ms = 0
            max_backlog = 0
            online_url = "https://credit.example.com/check"
            online_timeout_ms = 0
        "#;
        let Err(ConfigError::Invalid(issues)) = Config::from_toml(text) else {
            panic!("accepted")
        };
        let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "charging.path",
                "charging.max_file_bytes",
                "charging.keep_files",
                "charging.fsync_interval_ms",
                "charging.max_backlog",
                "charging.online_url",
                "charging.online_timeout_ms",
            ]
        );
        let good = Config::from_toml(
            "[charging]\npath = \"cdr/focus.jsonl\"\nfsync = \"always\"\non_unavailable = \"deny\"\nonline_url = \"http://127.0.0.1:8080/credit\"\n",
        )
        .unwrap();
        assert_eq!(good.charging.fsync, FsyncPolicy::Always);
        assert_eq!(good.charging.on_unavailable, OnUnavailable::Deny);
        assert!(Config::from_toml("[charging]\nfsync = \"sometimes\"\n").is_err());
    }

    #[test]
    fn credit_client_settings_are_checked() {
        let issues = |text: &str| -> Vec<String> {
            match Config::from_toml(text) {
                Ok(_) => Vec::new(),
                Err(ConfigError::Invalid(issues)) => issues.into_iter().map(|i| i.key).collect(),
                Err(e) => panic!("{e}"),
            }
        };
        let https = "[charging]\nonline_url = \"https://cc.example.com/c\"\n";
        assert_eq!(
            issues(https),
            ["charging.online_url"],
            "https without roots"
        );
        assert!(issues(&format!("{https}online_ca_file = \"/etc/cc.pem\"\n")).is_empty());
        let tls_roots = issues(&format!("{https}[tls]\nca_file = \"/etc/ca.pem\"\n"));
        assert!(
            !tls_roots.iter().any(|k| k.starts_with("charging.")),
            "{tls_roots:?}"
        );
        let http = "[charging]\nonline_url = \"http://127.0.0.1:9/c\"\n";
        for (extra, keys) in [
            ("online_token = \"abc\"\n", &[][..]),
            (
                "online_user = \"focus\"\nonline_password_file = \"/run/pw\"\n",
                &[],
            ),
            (
                "online_token = \"a\"\nonline_token_file = \"/run/t\"\n",
                &["charging.online_token"],
            ),
            ("online_token = \"a b\"\n", &["charging.online_token"]),
            ("online_user = \"focus\"\n", &["charging.online_password"]),
            ("online_password = \"pw\"\n", &["charging.online_user"]),
            (
                "online_user = \"a:b\"\nonline_password = \"pw\"\n",
                &["charging.online_user"],
            ),
            (
                "online_user = \"u\"\nonline_password = \"p\"\nonline_password_file = \"/f\"\n",
                &["charging.online_password"],
            ),
            (
                "online_token = \"t\"\nonline_user = \"u\"\nonline_password = \"p\"\n",
                &["charging.online_user"],
            ),
            (
                "online_idle_timeout_ms = 3600001\n",
                &["charging.online_idle_timeout_ms"],
            ),
            ("online_max_pending = 0\n", &["charging.online_max_pending"]),
        ] {
            assert_eq!(issues(&format!("{http}{extra}")), keys, "{extra}");
        }
        // Secrets never reach a log through Debug.
        let c = Config::from_toml(&format!(
            "{http}online_user = \"u\"\nonline_password = \"hunter2-secret\"\n"
        ))
        .unwrap();
        assert!(!format!("{:?}", c.charging).contains("hunter2"));
    }

    #[test]
    fn xml_bounds_are_checked_and_documented() {
        let c = Config::embedded().unwrap();
        let d = XmlConfig::default();
        assert_eq!(
            (c.xml.max_bytes, c.xml.max_depth, c.xml.max_elements),
            (d.max_bytes, d.max_depth, d.max_elements)
        );
        let text = "[xml]\nmax_bytes = 10\nmax_depth = 300\nmax_elements = 0\n";
        let Err(ConfigError::Invalid(issues)) = Config::from_toml(text) else {
            panic!("accepted")
        };
        let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["xml.max_bytes", "xml.max_depth", "xml.max_elements"]);
        let l = Config::from_toml("[xml]\nmax_depth = 5\n")
            .unwrap()
            .xml
            .list_limits();
        assert_eq!((l.max_depth, l.max_bytes), (5, 65_536));
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let text = r#"
            [focus]
            domain = "bad domain"
            [sip]
            t1_ms = 0
            [subscriptions]
            min_expires_s = 10
            max_expires_s = 5
            [[groups]]
            uri = "sip:a@elsewhere.com"
            max_participants = 0
        "#;
        let Err(ConfigError::Invalid(issues)) = Config::from_toml(text) else {
            panic!("accepted")
        };
        let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
        for k in [
            "focus.domain",
            "sip.t1_ms",
            "subscriptions.min_expires_s",
            "groups[0].uri",
            "groups[0].max_participants",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml("[sip]\nt1 = 5\n").unwrap_err();
        assert!(err.to_string().contains("t1"), "{err}");
    }

    #[test]
    fn the_identity_mode_is_named() {
        let c = Config::from_toml("[policy]\nidentity = \"from\"\n").unwrap();
        assert_eq!(c.policy.identity, IdentityMode::From);
        let e = Config::from_toml("[policy]\nidentity = \"anyone\"\n").unwrap_err();
        assert!(e.to_string().contains("identity"), "{e}");
    }
}
