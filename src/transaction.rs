//! SIP transactions: the four state machines of RFC 3261 §17, as amended by RFC 6026.
//!
//! A transaction is one request and its responses (plus the ACK for a non-2xx final). Its job
//! is reliability over UDP (retransmissions, timeouts) and absorbing duplicates, so that the
//! transaction user (TU: the UA core, dialogs) sees each response and request once.
//!
//! | file | machine | RFC |
//! |---|---|---|
//! | `server_invite.rs` | [`InviteServer`] | 3261 §17.2.1, §13.3.1.4 (2xx retransmission), 6026 §7.1 |
//! | `server.rs` | [`NonInviteServer`] | 3261 §17.2.2 |
//! | `client_invite.rs` | [`InviteClient`] | 3261 §17.1.1, 6026 §7.2 |
//! | `client.rs` | [`NonInviteClient`] | 3261 §17.1.2 |
//! | `timer.rs` | [`Timer`], [`TimerConfig`] | 3261 Table 4 |
//!
//! # Sans-IO
//!
//! The machines own no socket, read no clock and never parse SIP. Messages are opaque,
//! already-encoded [`Bytes`]; the driver matches incoming messages to a transaction (Via
//! branch, sent-by, method) and tells the machine what arrived (a retransmitted request, an
//! ACK, a response's status code). Time is always an argument. The driver's loop, in the
//! style of quinn-proto:
//!
//! 1. Call an input method (`on_*`, `send_*`, `handle_timeout`) with the current instant.
//! 2. Drain `poll_transmit()` (send each payload on the transaction's transport) and
//!    `poll_event()` (hand each [`Event`] to the TU). Output queued before the machine
//!    terminated is still delivered, so drain before dropping a terminated machine.
//! 3. Sleep until `poll_timeout()`, then call `handle_timeout(now)` and drain again.
//! 4. Drop the machine once `is_terminated()` and its outputs are drained.
//!
//! Transport reliability is fixed at construction (`reliable`: false for UDP, true for TCP
//! and TLS). On reliable transports no retransmission timer is armed, and the timers RFC 3261
//! sets to zero (D, I, J, K) take effect at once: the machine terminates inside the call
//! (for Timer D, the call that hands over the ACK). The output queues are small and fixed;
//! a driver that does not drain them loses the oldest output first.
//!
//! The TU's mistakes (a second final response, a non-2xx after a 2xx, an ACK nobody asked
//! for) return a [`TransactionError`] and change nothing. Network input never errors: what
//! does not fit the state is absorbed, as the RFC asks.

#![warn(missing_docs, unreachable_pub)]

use bytes::Bytes;

mod client;
mod client_invite;
mod plumbing;
mod queue;
mod server;
mod server_invite;
mod timer;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;

pub use client::{NonInviteClient, NonInviteClientState};
pub use client_invite::{InviteClient, InviteClientState};
pub use server::{NonInviteServer, NonInviteServerState};
pub use server_invite::{InviteServer, InviteServerState};
pub use timer::{Timer, TimerConfig};

/// Something the TU must learn about, drained with `poll_event()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The peer never answered: Timer B or F fired (no final response), or Timer H fired (no
    /// ACK for our non-2xx final). The transaction is terminated.
    Timeout,
    /// The driver reported that the transport failed. The transaction is terminated.
    TransportError,
    /// [`InviteServer`] only: the first ACK for our 2xx arrived (later copies are absorbed).
    AckReceived,
    /// [`InviteServer`] only: Timer L fired and no ACK ever came for our 2xx. The dialog is
    /// confirmed but the session should be ended with a BYE (RFC 3261 §13.3.1.4).
    AckTimeout,
}

/// A TU or driver mistake. The machine is left exactly as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransactionError {
    /// The TU tried to send a status code outside 100..=699.
    #[error("status code {0} is not a SIP response class (100..=699)")]
    InvalidStatus(u16),
    /// A response after the final one: a second final, a provisional after the final, or the
    /// CANCEL race's 487 after a 2xx.
    #[error("final response {sent} already sent; {attempted} refused")]
    FinalAlreadySent {
        /// The final response already sent.
        sent: u16,
        /// The response the TU tried to send.
        attempted: u16,
    },
    /// The transaction has terminated and takes no more TU input.
    #[error("transaction terminated")]
    Terminated,
    /// An ACK was handed to an INVITE client transaction that has no non-2xx final to
    /// acknowledge (the ACK for a 2xx is the TU's, outside the transaction).
    #[error("no ACK is due: no non-2xx final response was received")]
    AckNotExpected,
    /// The ACK for the non-2xx final was already handed over.
    #[error("ACK already sent")]
    AckAlreadySent,
}

/// What a client transaction tells the driver to do with a response it just matched.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseDisposition {
    /// Pass the response to the TU.
    PassToTu,
    /// Pass the response (a non-2xx final to INVITE) to the TU, then build the ACK for it and
    /// hand it to [`InviteClient::send_ack`].
    PassToTuAndAck,
    /// A retransmission or stray: the transaction dealt with it; drop it.
    Absorb,
}

impl ResponseDisposition {
    /// Whether the TU must see the response.
    pub fn pass_to_tu(self) -> bool {
        !matches!(self, Self::Absorb)
    }

    /// Whether the driver must now build an ACK and call [`InviteClient::send_ack`].
    pub fn needs_ack(self) -> bool {
        matches!(self, Self::PassToTuAndAck)
    }
}

/// The response classes the machines distinguish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StatusClass {
    /// 1xx.
    Provisional,
    /// 2xx.
    Success,
    /// 300-699: a final that is not a 2xx.
    NonSuccess,
}

impl StatusClass {
    fn of(status: u16) -> Result<Self, TransactionError> {
        match status {
            100..=199 => Ok(Self::Provisional),
            200..=299 => Ok(Self::Success),
            300..=699 => Ok(Self::NonSuccess),
            _ => Err(TransactionError::InvalidStatus(status)),
        }
    }
}

/// Pending transmissions: a few slots are enough when the driver drains after each call.
type Transmits = queue::Queue<Bytes, 4>;
/// Pending events: each machine raises at most two in its lifetime.
type Events = queue::Queue<Event, 2>;
