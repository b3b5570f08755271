//! MSRP (RFC 4975) with the RFC 7701 extensions a chat switch needs: URIs, messages, framing,
//! parsing, writing, chunking and reassembly. No crate implements MSRP, so this is ours.
//!
//! Bytes flow [`Framer`] (cuts a message at its end-line) → [`parse`] (or [`Frame::parse`])
//! → [`Message`]. Outgoing messages are written by [`Request::encode`] and
//! [`Response::encode`]; [`Response::for_request`] and [`Request::report`] address replies as
//! RFC 4975 §7.1.2 and §7.2 say. Large messages go out through [`chunks`] and come back
//! together in a [`Reassembler`].
//!
//! Limits, all explicit: [`Framer::new`] (frame size; larger messages give
//! [`FrameError::Oversized`] to answer `413`), [`ParseLimits`] (header count, path length),
//! [`ReassemblyLimits`] (message size, chunks per message, messages in progress).

mod chunk;
pub mod connection;
mod expect;
mod framer;
mod message;
mod parse;
pub mod status;
pub mod switch;
mod syntax;
mod uri;
mod write;

pub use chunk::{chunks, Chunks, Reassembler, Reassembly, ReassemblyError, ReassemblyLimits};
pub use framer::{Frame, FrameError, Framer, DEFAULT_MAX_FRAME};
pub use message::{
    ByteRange, Continuation, FailureReport, Header, Message, Method, Request, Response, Status,
};
pub use parse::{parse, parse_head, Fault, ParseError, ParseLimits, Rejected};
pub use syntax::{is_ident, new_message_id, new_transaction_id, HeaderName};
pub use uri::{MsrpScheme, MsrpUri, UriError};
pub use write::WriteError;

#[cfg(test)]
mod tests;
