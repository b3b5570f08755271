//! What the floor machine asks its driver to do.

use crate::push_to_talk::bfcp::Message;

/// One effect of an input, in the order the machine produced them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Encode `message` and send it on `user`'s BFCP connection.
    Send { user: u16, message: Message },
    /// Tell the media plane who may talk.
    Event(FloorEvent),
}

/// A change of who holds a floor, for the media plane (forward only the holder's media).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FloorEvent {
    FloorGranted {
        floor: u16,
        user: u16,
    },
    /// The holder gave the floor back.
    FloorReleased {
        floor: u16,
        user: u16,
    },
    /// The floor was taken away from its holder.
    FloorRevoked {
        floor: u16,
        user: u16,
        reason: RevokeReason,
    },
}

/// Why a holder lost the floor (the PoC revoke reasons a client can show).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevokeReason {
    /// The maximum talk-burst time ran out.
    TalkBurstTooLong,
    /// A chair revoked it, or granted the floor to someone else.
    Chair,
    /// The caller muted the holder.
    Muted,
    /// The holder left (Goodbye or removal).
    UserLeft,
    /// The holder's floor control connection dropped.
    ConnectionLost,
    /// The holder's media went silent (no RTP or RTCP): its device is gone.
    Silent,
}

impl RevokeReason {
    /// The STATUS-INFO text sent with the Revoked status.
    pub fn text(self) -> &'static str {
        match self {
            RevokeReason::TalkBurstTooLong => "maximum talk-burst time reached",
            RevokeReason::Chair => "revoked by a chair",
            RevokeReason::Muted => "muted",
            RevokeReason::UserLeft => "user left",
            RevokeReason::ConnectionLost => "floor control connection lost",
            RevokeReason::Silent => "no media from the holder",
        }
    }

    /// A bounded metric label.
    pub fn label(self) -> &'static str {
        match self {
            RevokeReason::TalkBurstTooLong => "talk_burst",
            RevokeReason::Chair => "chair",
            RevokeReason::Muted => "muted",
            RevokeReason::UserLeft => "left",
            RevokeReason::ConnectionLost => "connection_lost",
            RevokeReason::Silent => "silent",
        }
    }
}
