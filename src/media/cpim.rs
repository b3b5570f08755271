//! `message/cpim` (RFC 3862), the envelope of every group-chat message: who sent it (CPIM
//! `From`, which the switch keeps or anonymizes), to whom (`To`: the chat, or one participant
//! for a private message, RFC 7701 §7.2), when, and IMDN (RFC 5438) fields. The switch parses
//! what participants send and writes a fresh one for each message it fans out.
//!
//! [`Cpim::parse`] (bounded by [`CpimLimits`]) → [`Cpim`] → [`Cpim::encode`]; the content is a
//! zero-copy slice of the parsed bytes.

mod model;
mod parse;
pub mod vouch;
mod write;

pub use model::{Addr, Cpim, Field, Namespace, Subject, IMDN_NS};
pub use parse::{CpimError, CpimLimits};
pub use write::CpimWriteError;

#[cfg(test)]
mod tests;
