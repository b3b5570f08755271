//! cpm-focus: the Controlling Function of OMA CPM, a SIP conference focus (RFC 4353/4579)
//! with the conference event package (RFC 4575).
//!
//! How a request flows, and the module that handles each step:
//!
//! 1. [`transport`] reads a datagram or a TCP stream; [`sip`] frames (streams), normalizes and
//!    parses it. Garbage is answered `400` (when a response can be addressed) or dropped.
//! 2. [`endpoint`] drives the [`transaction`] state machines (RFC 3261 §17, sans-IO):
//!    retransmissions are absorbed there, new requests go to the router.
//! 3. [`supervisor`] routes: in-dialog requests by [`dialog`] id, others by conference URI,
//!    starting a session actor for a pre-defined group ([`config`]) when needed. Full
//!    mailboxes are answered `503`.
//! 4. [`session`]: one actix actor per group session around a pure `SessionState` (roster,
//!    participants' dialogs and [`sdp`] offer/answer, conference-event subscriptions with
//!    [`conference_info`] documents) whose effects the actor executes.
//! 5. [`metrics`] names every metric; `/metrics` serves them. [`server`] assembles it all.
//! 6. Talk bursts run beside the sessions: [`floor`] (the BFCP listener, RFC 8855, and the
//!    floor machine each session owns) and [`media`] (the RTP plane that forwards the floor
//!    holder's audio); a session's actor only installs legs and who may talk.
//!
//! Operations: [`admin`] is the operator's HTTP API (sessions, moderation, reload, probes);
//! [`reload`] re-reads the configuration on `SIGHUP` or request and swaps groups and policy
//! without dropping a session.
//!
//! Liveness and recovery: [`session_timer`] (RFC 4028) finds participants that vanished
//! without a BYE; [`journal`] keeps the membership of live sessions on disk, and
//! [`recovery`] resumes them (re-INVITE) when a focus restarts after a crash.
#![forbid(unsafe_code)]

/// The version `--version` prints: the package version and the git revision it was built
/// from (`build.rs`; `unknown` outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CPM_FOCUS_GIT_REV"),
    ")"
);

pub mod admin;
pub mod auth;
pub mod body;
pub mod charging;
pub mod conference_info;
pub mod config;
pub mod dialog;
pub mod endpoint;
pub mod http;
pub mod list_service;
pub mod log_limit;
pub mod media;
pub mod metrics;
pub mod notify;
pub mod overload;
pub mod policy;
pub mod push_to_talk;
pub mod recovery;
pub mod reload;
pub mod sdp;
pub mod server;
pub mod session;
pub mod session_timer;
pub mod sip;
pub mod supervisor;
pub mod transaction;
pub mod transport;
pub mod xdms;
pub mod xml;
