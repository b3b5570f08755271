//! `multipart/*` bodies (RFC 2046 §5.1): how a URI list rides beside the SDP offer (RFC 5366),
//! the message payload (RFC 5365) or in a REFER (RFC 5368).
//!
//! [`parse`] (bounded by [`MultipartLimits`]) → [`Multipart`] of [`Part`]s, each body a
//! zero-copy slice of the input → [`Multipart::encode`].
//!
//! # Framing rules
//!
//! - The boundary comes from the `boundary` parameter of the Content-Type (quoted or not,
//!   1 to 70 characters of RFC 2046 `bchars`). The preamble before the first delimiter and the
//!   epilogue after `--boundary--` are ignored.
//! - A delimiter is a line that starts with `--boundary` (RFC 2046 §5.1.1: the boundary must
//!   appear in its entirety after the line end; an exact match of the whole line is not
//!   required). The line end before it belongs to the delimiter, not to the preceding body.
//!   After the boundary only transport padding (spaces, tabs) may follow, or `--` for the
//!   close delimiter; anything else means a body contained the boundary, and the message is
//!   rejected rather than split at a guess.
//! - Lines may end in CRLF or, leniently, LF alone.
//! - Parts are not decoded further: no Content-Transfer-Encoding (SIP bodies are 8-bit clean)
//!   and no nesting (a `multipart/*` part is bytes; parse it again if it matters).

mod model;
mod params;
mod parse;
mod write;

pub use model::{Header, Multipart, Part};
pub use parse::{parse, MultipartError, MultipartLimits};
pub use write::EncodeError;

/// Content-Disposition of the URI list in a request (registered by RFC 5363).
pub const RECIPIENT_LIST: &str = "recipient-list";
/// Content-Disposition of the list a MESSAGE exploder sends on to recipients (RFC 5364 §9.1).
pub const RECIPIENT_LIST_HISTORY: &str = "recipient-list-history";

#[cfg(test)]
mod tests;
