//! RTP for talk bursts: the focus forwards the floor holder's audio to everyone else (OMA
//! PoC-style centralized media distribution, RFC 3550), rewriting each receiver's stream so
//! that it stays one continuous source across talker changes.

mod forwarder;
mod packet;
mod stream;

pub use forwarder::{RtpError, RtpEvent, RtpEvents, RtpGroup, RtpMember, RtpPlane, RtpSettings};
pub use packet::{rewrite, RtpError as PacketError, RtpHeader};
pub use stream::OutStream;
