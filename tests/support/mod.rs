//! Black-box test support: a focus process on ephemeral ports ([`Focus`]) and a small
//! synchronous SIP user agent over real sockets ([`Ua`]).
//!
//! - `focus.rs`: config file, process start (ready line, [`Launch`] options), logs,
//!   `/metrics`, SIGTERM, SIGKILL and restart on the same SIP port
//! - `ua.rs`: sockets, reader threads, NOTIFY auto-answer, receive-with-timeout
//! - `call.rs`: request builders (INVITE, ACK, BYE, CANCEL, OPTIONS, SUBSCRIBE...) and the
//!   per-call state they use
//! - `control.rs`: conference control: answering the focus's dial-out INVITE, refer NOTIFYs
//!   (`message/sipfrag`), moderation requests
//! - `talk.rs`: talk-burst joins (audio and BFCP offers), a BFCP client, RTP send/receive
//! - `credit.rs`: a credit-control server for the online charging check (grant, deny, hold)
//! - `admin.rs`: a small HTTP client for the admin API
//! - `digest.rs`: a digest-authentication client (its own hashing) and credentials files
//! - `msrp.rs`: chat joins with an MSRP offer and a synchronous MSRP participant (binding,
//!   SEND, chunks, auto-answered incoming SENDs, reassembly, REPORTs)
//! - `sink.rs`: group-message recipients, each on its own socket, answering every MESSAGE and
//!   keeping one copy per transaction
//! - `skip.rs`: a missing outside tool: a loud SKIPPED line, a failure under `CI`
//! - `tls.rs`: certificates made at run time and a TLS relay for the agents (SIP and MSRP
//!   over TLS)
//!
//! Every wait is a receive with a deadline ([`WAIT`] for a message that must come), never a
//! sleep used as synchronisation.
#![allow(dead_code, unused_imports)]

mod admin;
mod call;
mod control;
mod credit;
mod digest;
mod focus;
mod msrp;
mod refusal;
mod sink;
mod skip;
pub mod talk;
mod tls;
mod ua;
mod watcher;

pub use admin::{http, HttpReply};
pub use call::{branch, Call, AUDIO_OFFER, AUDIO_VIDEO_OFFER};
pub use control::{sipfrag, subscription_state, uri_of, Invited, CONTROL};
pub use credit::{Credit, CreditServer};
pub use digest::{Challenge, CredentialsFile};
pub use focus::{metric, metric_in, scrape, Focus, Launch};
pub use msrp::{cpim_text, Chat, ChatMember, Endpoint, MsrpClient, MsrpMedia, Received, Setup};
pub use refusal::assert_refused;
pub use sink::{Delivery, Sink};
pub use skip::skip;
pub use tls::Pki;
pub use ua::{tcp_connect_from, Notify, Origin, Rx, Ua};
pub use watcher::Watcher;

use cpm_focus::conference_info::{
    apply, ConferenceInfo, DisconnectionMethod, EndpointStatus, User,
};
use cpm_focus::sip::{HeaderName, NameAddr, Response};
use std::time::{Duration, Instant};

/// The focus domain of the embedded configuration.
pub const DOMAIN: &str = "focus.example.com";
/// The pre-defined group of the embedded configuration.
pub const TEAM: &str = "sip:team@focus.example.com";
/// How long a message that must come may take (generous: the machine is shared and loaded).
pub const WAIT: Duration = Duration::from_secs(5);

/// The URI inside a Contact value, and whether it carries `;isfocus`.
pub fn contact_of(resp: &Response) -> (String, bool) {
    let value = resp
        .headers
        .get(HeaderName::Contact)
        .unwrap_or_else(|| panic!("{} {} has no Contact", resp.status, resp.reason));
    let addr = NameAddr::parse(value).unwrap_or_else(|e| panic!("Contact {value:?}: {e}"));
    (addr.uri.to_string(), addr.param("isfocus").is_some())
}

/// The users of a conference-info view, by entity.
pub fn user<'a>(view: &'a ConferenceInfo, entity: &str) -> Option<&'a User> {
    view.users
        .as_ref()?
        .users
        .iter()
        .find(|u| u.entity == entity)
}

/// Entities of the users in a view, in document order.
pub fn user_entities(view: &ConferenceInfo) -> Vec<String> {
    view.users
        .as_ref()
        .map(|u| u.users.iter().map(|u| u.entity.clone()).collect())
        .unwrap_or_default()
}

/// `user-count` of a view.
pub fn user_count(view: &ConferenceInfo) -> Option<u32> {
    view.conference_state.and_then(|s| s.user_count)
}

/// The single endpoint of a user: its status and disconnection method.
pub fn endpoint_state(
    view: &ConferenceInfo,
    entity: &str,
) -> Option<(EndpointStatus, Option<DisconnectionMethod>)> {
    let u = user(view, entity)?;
    assert_eq!(
        u.endpoints.len(),
        1,
        "user {entity} has {} endpoints",
        u.endpoints.len()
    );
    let e = &u.endpoints[0];
    Some((e.status?, e.disconnection_method))
}

/// The view without its `version` (what two documents of the same state share).
pub fn without_version(view: &ConferenceInfo) -> ConferenceInfo {
    ConferenceInfo {
        version: 0,
        ..view.clone()
    }
}

/// Merges the subscriber's NOTIFYs into `view` until `done` holds (within 10 s); returns how
/// many were applied. Each must follow the view (consecutive version, same conference).
pub fn follow(
    ua: &mut Ua,
    view: &mut ConferenceInfo,
    done: impl FnMut(&ConferenceInfo) -> bool,
) -> usize {
    follow_each(ua, view, done, |_| {})
}

/// As [`follow`], handing each NOTIFY to `each` before it is applied.
pub fn follow_each(
    ua: &mut Ua,
    view: &mut ConferenceInfo,
    mut done: impl FnMut(&ConferenceInfo) -> bool,
    mut each: impl FnMut(&Notify),
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut applied = 0;
    while !done(view) {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = ua.next_notify(left).unwrap_or_else(|| {
            panic!(
                "{}: the view never reached the expected state: {view:#?}",
                ua.name
            )
        });
        assert!(!n.is_terminated(), "subscription ended early: {}", n.state);
        each(&n);
        apply(view, &n.doc).unwrap_or_else(|e| panic!("NOTIFY does not follow the view: {e}"));
        applied += 1;
    }
    applied
}
