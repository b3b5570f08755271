//! The SIP message layer: framing, normalizing, parsing and writing messages.
//!
//! Bytes flow `framer` (streams only) → `parse` (normalizer + grammar) → [`Message`]. Outgoing
//! messages are written by [`MessageWriter`]. Nothing outside this module parses SIP text.
//!
//! Why not rsip's message parser: measured on rsip 0.4, it ignores Content-Length (two messages
//! in one TCP read become one), rejects compact headers, folded lines, extension methods,
//! IPv6 references and `tel:` URIs, and misplaces `;` in user parts. A focus must accept all of
//! these (RFC 4475, RFC 5118), so the grammar here is our own; rsip serves as a test oracle for
//! the messages it does parse (see `tests.rs`).

mod builder;
mod capabilities;
mod framer;
mod header;
mod message;
mod method;
mod name_addr;
mod params;
mod parse;
mod status;
mod uri;
mod via;

pub use builder::MessageWriter;
pub use capabilities::{
    media_type, new_branch, new_tag, ACCEPT, ALLOW, ALLOW_EVENTS, CONFERENCE_INFO, CONTROL,
    SUPPORTED,
};
pub use framer::{Frame, FrameError, Framer};
pub use header::{split_commas, HeaderName, Headers};
pub use message::{CSeq, Message, Request, Response};
pub use method::Method;
pub use name_addr::{AddrError, NameAddr};
pub use params::{parse_header_params, unquote};
pub use parse::{
    parse, parse_cseq, parse_saturating, refuse, Fault, Framing, ParseError, ParseLimits, Rejected,
};
pub use status::{class_label, reason_phrase};
pub use uri::{unescape, Host, HostPort, Param, Scheme, Uri, UriError};
pub use via::{Via, ViaError, ViaTransport, MAGIC_COOKIE};

#[cfg(test)]
mod tests;
