//! What can be wrong with received SDP text, and with an SDP model we are about to send.
//!
//! Every parse error names the 1-based line it was found on, so a 400/488 reason phrase or a
//! log line points at the culprit without echoing the peer's bytes.

use thiserror::Error;

/// A received SDP body that does not parse (RFC 8866 structure or field syntax).
///
/// `line` is 1-based. For a field that is missing at the end of the body, `line` is one past
/// the last line: the place where it was expected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is not UTF-8 (RFC 8866 allows other charsets via `a=charset`; we do not).
    #[error("line {line}: not valid UTF-8")]
    NotUtf8 { line: usize },
    /// More lines than [`Limits::max_lines`](super::Limits::max_lines).
    #[error("line {line}: more than {limit} lines")]
    TooManyLines { line: usize, limit: usize },
    /// More `m=` lines than [`Limits::max_media`](super::Limits::max_media).
    #[error("line {line}: more than {limit} media descriptions")]
    TooManyMedia { line: usize, limit: usize },
    /// An empty line before the last non-empty one.
    #[error("line {line}: empty line")]
    EmptyLine { line: usize },
    /// Not `<letter>=<value>` with a lower-case ASCII letter and no space around `=`.
    #[error("line {line}: not a <type>=<value> line")]
    Malformed { line: usize },
    /// A well-formed line whose type letter RFC 8866 does not define. The RFC says to ignore
    /// the whole description in that case; we reject it.
    #[error("line {line}: unknown line type {field}=")]
    UnknownType { line: usize, field: char },
    /// NUL or a bare CR inside a line.
    #[error("line {line}: forbidden control character")]
    ControlChar { line: usize },
    /// A required line (`v=`, `o=`, `s=`, `t=`) is absent where it must appear.
    #[error("line {line}: missing {field}=")]
    Missing { line: usize, field: char },
    /// The line type is allowed in this section but not at this position (RFC 8866 §5 order).
    #[error("line {line}: {field}= out of order")]
    OutOfOrder { line: usize, field: char },
    /// A second occurrence of a line allowed at most once in its section.
    #[error("line {line}: duplicate {field}=")]
    Duplicate { line: usize, field: char },
    /// A session-only line (`v= o= s= u= e= p= t= r= z=`) after the first `m=`.
    #[error("line {line}: {field}= not allowed in a media description")]
    NotInMedia { line: usize, field: char },
    /// The line has the right type and position but its value breaks the field grammar.
    #[error("line {line}: invalid {field}= line: {reason}")]
    InvalidField {
        line: usize,
        field: char,
        reason: &'static str,
    },
}

impl SdpError {
    /// The 1-based line the error refers to.
    pub fn line(&self) -> usize {
        match *self {
            SdpError::NotUtf8 { line }
            | SdpError::TooManyLines { line, .. }
            | SdpError::TooManyMedia { line, .. }
            | SdpError::EmptyLine { line }
            | SdpError::Malformed { line }
            | SdpError::UnknownType { line, .. }
            | SdpError::ControlChar { line }
            | SdpError::Missing { line, .. }
            | SdpError::OutOfOrder { line, .. }
            | SdpError::Duplicate { line, .. }
            | SdpError::NotInMedia { line, .. }
            | SdpError::InvalidField { line, .. } => line,
        }
    }
}

/// A model that would not serialize to SDP that parses back to the same model (a field holds
/// a space, a CR/LF, a non-token character, an empty list...). Found by
/// [`SessionDescription::validate`](super::SessionDescription::validate) before anything we
/// built leaves the process.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ValidationError {
    /// Index of the media description at fault, `None` for the session level.
    pub media: Option<usize>,
    /// The SDP line type at fault.
    pub field: char,
    /// What is wrong.
    pub reason: &'static str,
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.media {
            Some(i) => write!(f, "media {i}: {}=: {}", self.field, self.reason),
            None => write!(f, "session: {}=: {}", self.field, self.reason),
        }
    }
}
