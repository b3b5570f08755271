//! Which sources a leg accepts: a participant's media is bound to the address its SDP
//! announced, so a stranger who finds a focus port can neither be forwarded to the group nor
//! pull the leg (and the conference) over to itself.
//!
//! Plain RTP carries no proof of who sent it: this binding stops anyone who cannot send from
//! the participant's own address; only SRTP (RFC 3711) authenticates the media itself.

use std::net::{IpAddr, SocketAddr};

pub use crate::config::Latching;

/// What [`SourceBinding::admit`] made of a datagram's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The participant's source.
    Accepted,
    /// The participant's source, learnt from this very packet (the leg's one latch).
    Latched,
    /// Anyone else: drop it.
    Refused,
}

/// One port's binding to its participant: the signalled address and, with
/// [`Latching::SymmetricOnce`], the source it latched to.
#[derive(Debug, Clone)]
pub struct SourceBinding {
    mode: Latching,
    signalled: Option<SocketAddr>,
    latched: Option<SocketAddr>,
}

impl SourceBinding {
    /// `signalled`: where the SDP says the participant is; without one, nothing is accepted.
    pub fn new(mode: Latching, signalled: Option<SocketAddr>) -> SourceBinding {
        SourceBinding {
            mode,
            signalled,
            latched: None,
        }
    }

    /// Whether a datagram from `from` is the participant's (latching on the first match).
    pub fn admit(&mut self, from: SocketAddr) -> Admission {
        let Some(signalled) = self.signalled else {
            return Admission::Refused;
        };
        let accepted = match (self.mode, self.latched) {
            (Latching::Signalled, _) => same_source(from, signalled),
            (Latching::SymmetricOnce, Some(latched)) => same_source(from, latched),
            (Latching::SymmetricOnce, None) => {
                if same_ip(from.ip(), signalled.ip()) {
                    self.latched = Some(from);
                    return Admission::Latched;
                }
                false
            }
        };
        if accepted {
            Admission::Accepted
        } else {
            Admission::Refused
        }
    }

    /// Where the participant receives: the latched source, else the signalled address.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.latched.or(self.signalled)
    }

    /// A new offer/answer round: a moved address starts the binding afresh (the signalling,
    /// bound to its dialog, is what may move media); the same address keeps its latch.
    pub fn resignal(&mut self, signalled: SocketAddr) {
        if self.signalled != Some(signalled) {
            self.signalled = Some(signalled);
            self.latched = None;
        }
    }
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

fn same_source(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && same_ip(a.ip(), b.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn signalled_accepts_only_the_announced_address_and_port() {
        let mut b = SourceBinding::new(Latching::Signalled, Some(a("10.0.0.1:4000")));
        assert_eq!(b.admit(a("10.0.0.66:4000")), Admission::Refused);
        assert_eq!(b.admit(a("10.0.0.1:4002")), Admission::Refused);
        assert_eq!(b.admit(a("10.0.0.1:4000")), Admission::Accepted);
        assert_eq!(
            b.admit(a("[::ffff:10.0.0.1]:4000")),
            Admission::Accepted,
            "an IPv4-mapped form is the same source"
        );
        assert_eq!(b.remote(), Some(a("10.0.0.1:4000")));
    }

    #[test]
    fn symmetric_once_latches_to_the_signalled_address_once() {
        let mut b = SourceBinding::new(Latching::SymmetricOnce, Some(a("10.0.0.1:4000")));
        // A stranger first: it does not latch, however early.
        assert_eq!(b.admit(a("10.0.0.66:4000")), Admission::Refused);
        assert_eq!(b.remote(), Some(a("10.0.0.1:4000")));
        // The participant's address on another port (a NAT mapping) latches...
        assert_eq!(b.admit(a("10.0.0.1:31000")), Admission::Latched);
        assert_eq!(b.remote(), Some(a("10.0.0.1:31000")));
        assert_eq!(b.admit(a("10.0.0.1:31000")), Admission::Accepted);
        // ...once: neither the signalled port nor a stranger moves it afterwards.
        assert_eq!(b.admit(a("10.0.0.1:4000")), Admission::Refused);
        assert_eq!(b.admit(a("10.0.0.66:31000")), Admission::Refused);
        assert_eq!(b.remote(), Some(a("10.0.0.1:31000")));
    }

    #[test]
    fn nothing_signalled_accepts_nothing_and_a_new_offer_starts_afresh() {
        let mut b = SourceBinding::new(Latching::SymmetricOnce, None);
        assert_eq!(b.admit(a("10.0.0.1:4000")), Admission::Refused);
        assert_eq!(b.remote(), None);
        b.resignal(a("10.0.0.1:4000"));
        assert_eq!(b.admit(a("10.0.0.1:5000")), Admission::Latched);
        // The same address again keeps the latch; a moved one starts over.
        b.resignal(a("10.0.0.1:4000"));
        assert_eq!(b.remote(), Some(a("10.0.0.1:5000")));
        b.resignal(a("10.0.0.2:4000"));
        assert_eq!(b.remote(), Some(a("10.0.0.2:4000")));
        assert_eq!(b.admit(a("10.0.0.1:5000")), Admission::Refused);
        assert_eq!(b.admit(a("10.0.0.2:4100")), Admission::Latched);
    }
}
