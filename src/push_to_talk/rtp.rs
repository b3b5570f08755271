//! RTP for talk bursts: the focus forwards the floor holder's audio to everyone else (OMA
//! PoC-style centralized media distribution, RFC 3550), rewriting each receiver's stream so
//! that it stays one continuous source across talker changes.
//!
//! - `packet`: the fixed header, parsed and rewritten in place
//! - `stream`: one receiver's continuous sequence numbers and timestamps
//! - `codec`: which codec (and payload type) a leg answers; no transcoding
//! - `source`: which source a leg accepts (bound to the participant's signalled address)
//! - `forwarder`: port pairs, legs, forwarding from the floor holder, RTCP and silence

mod codec;
mod forwarder;
mod packet;
mod source;
mod stream;

pub use codec::{choose, Codec, CodecChoice, CodecError, MAX_CODECS};
pub use forwarder::{
    DropReason, LegCodec, LegSpec, Outcome, RtpError, RtpEvent, RtpEvents, RtpGroup, RtpMember,
    RtpPlane, RtpPorts, RtpSettings,
};
pub use packet::{rewrite, RtpError as PacketError, RtpHeader};
pub use source::{Admission, Latching, SourceBinding};
pub use stream::OutStream;
