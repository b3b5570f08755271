//! The focus's SDP identity within one dialog (RFC 3264 §8).
//!
//! Every SDP the focus sends in a dialog carries the same `o=` sess-id, and a sess-version
//! that grows by one exactly when the description changed: a peer that sees the same
//! version may skip reprocessing, so an unchanged answer to a re-offer (a session refresh,
//! say) must keep it, and a changed one must not.

use rand::Rng;

use super::answer::{self, Answer, AnswerContext, MediaPolicy, OfferError};
use super::error::ValidationError;
use super::model::{MediaDescription, SessionDescription};

/// Per-dialog `o=` numbers and the last SDP sent, to tell whether the next one changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSdpState {
    /// Fixed for the dialog's life.
    session_id: u64,
    /// Version of the last SDP sent (or of the first one, before any is sent).
    version: u64,
    /// The last SDP stamped, to compare the next against.
    last: Option<SessionDescription>,
}

impl LocalSdpState {
    /// A state whose first SDP carries `session_id` and `version`.
    pub fn new(session_id: u64, version: u64) -> Self {
        LocalSdpState {
            session_id,
            version,
            last: None,
        }
    }

    /// A fresh random sess-id (below 2^62, so peers that parse it as a signed 64-bit number
    /// cope) and version 1.
    pub fn random() -> Self {
        let session_id = rand::rng().random_range(1..(1u64 << 62));
        LocalSdpState::new(session_id, 1)
    }

    /// The dialog's sess-id.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The version of the last SDP sent (or the first to be sent).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The last SDP stamped, if any.
    pub fn last_sent(&self) -> Option<&SessionDescription> {
        self.last.as_ref()
    }

    /// Writes this dialog's sess-id and version into `sdp`'s `o=`, incrementing the version
    /// when `sdp` differs from the last stamped SDP (anything but the version counts).
    /// Returns whether the version was incremented. Call on every SDP sent in the dialog.
    pub fn stamp(&mut self, sdp: &mut SessionDescription) -> bool {
        sdp.origin.session_id = self.session_id.to_string();
        sdp.origin.session_version = self.version.to_string();
        let changed = self.last.as_ref().is_some_and(|last| last != sdp);
        if changed {
            // u64 cannot run out at one change per re-INVITE; saturate rather than wrap.
            self.version = self.version.saturating_add(1);
            sdp.origin.session_version = self.version.to_string();
        }
        self.last = Some(sdp.clone());
        changed
    }

    /// [`answer::answer`] with this dialog's `o=` numbers (those in `ctx` are ignored),
    /// stamped. The state is unchanged on error.
    pub fn answer<P>(
        &mut self,
        offer: &SessionDescription,
        policy: &P,
        ctx: &AnswerContext,
    ) -> Result<Answer, OfferError>
    where
        P: MediaPolicy + ?Sized,
    {
        let mut answer =
            answer::answer_with_origin(offer, policy, ctx, self.session_id, self.version)?;
        self.stamp(&mut answer.sdp);
        Ok(answer)
    }

    /// [`answer::offer`] with this dialog's `o=` numbers (those in `ctx` are ignored),
    /// stamped. The state is unchanged on error.
    pub fn offer(
        &mut self,
        media: Vec<MediaDescription>,
        ctx: &AnswerContext,
    ) -> Result<SessionDescription, ValidationError> {
        let mut sdp = answer::offer_with_origin(media, ctx, self.session_id, self.version)?;
        self.stamp(&mut sdp);
        Ok(sdp)
    }
}
