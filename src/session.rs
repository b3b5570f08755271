//! Group sessions: one actor per CPM group session, a thin shell around a pure
//! [`SessionState`] that owns the roster, the participants' dialogs and the conference-event
//! subscriptions.
//!
//! - `state.rs`: the decisions (join, leave, re-INVITE, SUBSCRIBE, NOTIFY scheduling);
//!   `state/liveness.rs` its session timers (RFC 4028), `state/recover.rs` its journal lines
//!   and the resume of its participants after a crash (the rest of crash recovery is
//!   [`crate::recovery`]), `state/push_to_talk.rs` its talk bursts (the rest of push-to-talk
//!   is [`crate::push_to_talk`])
//! - `roster.rs`: users and endpoints with change revisions (RFC 4575 partial state)
//! - `subscription.rs`: one subscription's versions, expiry and rate limit
//! - `sdp_policy.rs`: which media the focus offers and answers (MSRP lines, the focus's
//!   SDP policy)
//! - `actor.rs`: the actix actor that executes the state's effects (and ends its session
//!   cleanly when a handler panics); `actor/push_to_talk.rs` drives its talk-burst planes
//! - `routes.rs`: the routing tables as a session sees them (the supervisor implements them)
//! - `fault.rs`: the test-only panic trigger

mod actor;
mod charge;
pub mod fault;
mod roster;
mod routes;
mod sdp_policy;
mod state;
mod subscription;

pub use actor::{SessionActor, SessionDeps, SessionInput};
pub use charge::{ChargeEvent, SessionKind};
pub use routes::{Routes, SessionEntry};
pub use sdp_policy::{MsrpLeg, MsrpOffer};
pub use state::{
    AdhocRecord, AdminCommand, AdminRefusal, Effect, FocusFace, OutgoingSpec, ParticipantView,
    Reconfigure, RequestCtx, SessionSettings, SessionState, SessionView,
};
