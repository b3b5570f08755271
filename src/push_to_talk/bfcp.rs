//! BFCP, the Binary Floor Control Protocol (RFC 8855): the sans-IO codec. No crate implements
//! it, so this is ours.
//!
//! Bytes flow [`StreamDecoder`] (TCP/TLS, version 1: cuts a message by its Payload Length) or
//! [`decode_datagram`] (UDP/DTLS, version 2) → [`Reassembler`] (UDP fragments) → [`Message`].
//! Outgoing messages are written by [`encode`], or by [`encode_datagrams`] when they may need
//! fragmenting. A [`DecodeError`] names the BFCP Error code to answer and builds that answer
//! ([`DecodeError::error_response`]) when the header could be read.
//!
//! Files: `codes` (the IANA registries), `attribute` (TLVs), `message` (COMMON-HEADER),
//! `parse`, `framer` (TCP), `encode`, `fragment` (UDP), `error`.

mod attribute;
mod codes;
mod encode;
mod error;
mod fragment;
mod framer;
mod message;
mod parse;

pub use attribute::{Attribute, ErrorDetails, Text};
pub use codes::{AttributeType, ErrorCode, Primitive, Priority, RequestStatus};
pub use encode::{encode, EncodeError};
pub use error::{DecodeError, Fault};
pub use fragment::{encode_datagrams, Reassembler};
pub use framer::{StreamDecoder, DEFAULT_MAX_MESSAGE};
pub use message::{
    Fragment, Header, Message, FRAGMENT_HEADER_LEN, HEADER_LEN, VERSION_RELIABLE,
    VERSION_UNRELIABLE,
};
pub use parse::{decode_datagram, decode_datagram_bytes};

use bytes::BytesMut;

/// A fuzz target's body: runs every decoder over arbitrary bytes and re-encodes what they
/// accept. Never panics (a panic is a bug to report).
pub fn fuzz_decode(data: &[u8]) {
    let mut reassembler = Reassembler::new(4, DEFAULT_MAX_MESSAGE);
    let mut out = BytesMut::new();
    if let Ok(msg) = decode_datagram(data) {
        let _ = encode(&msg, &mut out);
        if let Ok(Some(whole)) = reassembler.push(msg) {
            let _ = encode(&whole, &mut out);
        }
    }
    // The same bytes as a stream: at once, then in 3-octet pieces.
    for piece in [data.len().max(1), 3] {
        let mut decoder = StreamDecoder::new(4096);
        let mut buf = BytesMut::new();
        for chunk in data.chunks(piece) {
            buf.extend_from_slice(chunk);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(msg)) => {
                        out.clear();
                        let _ = encode(&msg, &mut out);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = e.error_response();
                        if e.closes_stream() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
