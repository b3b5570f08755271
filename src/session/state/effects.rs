//! What a session hands its actor: the context a request comes with, and the effects it
//! returns (responses, requests to send, dialogs to route, media and journal changes).

use crate::dialog::Destination;
use crate::dialog::DialogId;
use crate::session::sdp_policy::MsrpLeg;
use crate::sip::Method;
use crate::transport::Target;
use bytes::Bytes;
use std::time::Instant;

/// A request's transaction and origin.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// The server transaction id (the actor holds the [`crate::endpoint::ServerTxn`]).
    pub txn: u64,
    pub source: Target,
    /// The address of record the focus proved by digest authentication, if any.
    pub authenticated: Option<std::sync::Arc<str>>,
}

/// A request the session wants sent.
#[derive(Debug, Clone)]
pub struct OutgoingSpec {
    pub method: Method,
    pub request_uri: String,
    pub rest: Bytes,
    pub call_id: Box<str>,
    pub destination: Destination,
    /// INVITE: what its ACK and CANCEL repeat.
    pub invite: Option<crate::dialog::InviteBasis>,
}

/// What the actor must do.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Answer server transaction `txn`. For a 2xx to INVITE, `ack` names the dialog whose
    /// ACK the endpoint must match.
    Respond {
        txn: u64,
        status: u16,
        bytes: Bytes,
        ack: Option<DialogId>,
    },
    /// Send a request; its outcome comes back with `token`.
    Send {
        token: u64,
        request: Box<OutgoingSpec>,
    },
    /// Cancel our INVITE (a dial-out nobody answered in time).
    CancelInvite {
        call_id: Box<str>,
        cseq: u32,
    },
    /// A charging event for the records (offline charging).
    Charge(crate::session::ChargeEvent),
    /// Mute or unmute a participant's MSRP leg (moderation): its messages are refused.
    MsrpMute {
        session_id: String,
        muted: bool,
    },
    /// Install a participant's MSRP leg in the switch.
    MsrpAdd {
        pid: u64,
        leg: MsrpLeg,
        /// CPIM `From` of its messages: display name and identity.
        display: Option<String>,
        identity: String,
        /// The real identity (vouching for its CPIM `From`).
        real: String,
        /// Whom charging bills for its volume.
        charged: crate::policy::Charged,
    },
    /// Remove an MSRP leg (closing its connection), or stop expecting one.
    MsrpRemove {
        session_id: String,
    },
    /// An MSRP leg will be installed when the answer to our offer comes (delayed offer): the
    /// switch lets a bind for it wait until then (at most until `until`).
    MsrpExpect {
        session_id: String,
        until: Instant,
    },
    /// Talk bursts: RTP legs, the floor holder, BFCP messages.
    Talk(crate::push_to_talk::talk_burst::TalkEffect),
    /// A membership change for the crash-recovery journal.
    Journal(crate::recovery::journal::Event),
    /// A request from this flow was admitted (a participant joined, a member subscribed):
    /// its connection is never evicted to make room for outsiders.
    AdmitFlow(Target),
    /// A dialog of this session is bound to this connection: tell the session
    /// ([`super::SessionState::on_flow_closed`]) when it closes.
    WatchFlow(Target),
    /// Route in-dialog requests of this dialog to this session (before the response goes).
    RegisterDialog(DialogId),
    UnregisterDialog(DialogId),
}
