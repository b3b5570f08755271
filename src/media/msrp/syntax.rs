//! The lexical pieces of MSRP (RFC 4975 §9) that the model, the framer, the parser and the
//! writer all use: idents and fresh ids, header names, a byte search. A leaf: it imports
//! nothing of the codec, so those four import it and not each other in a circle.

use rand::distr::{Alphanumeric, SampleString};

/// `ident = ALPHANUM 3*31ident-char` (RFC 4975 §9): transaction ids and Message-IDs.
pub fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    (4..=32).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|&c| is_ident_byte(c))
}

pub(crate) fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b".-+%=".contains(&c)
}

/// Length of generated transaction and message ids: 16 alphanumerics carry about 95 bits,
/// above the 64 bits of randomness RFC 4975 §7.1 asks of transaction ids.
const ID_LEN: usize = 16;

/// A fresh transaction id.
pub fn new_transaction_id() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), ID_LEN)
}

/// A fresh Message-ID.
pub fn new_message_id() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), ID_LEN)
}

/// Header fields the parser knows, for fault reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderName {
    ToPath,
    FromPath,
    MessageId,
    ByteRange,
    SuccessReport,
    FailureReport,
    Status,
    ContentType,
    UseNickname,
}

impl HeaderName {
    pub const ALL: [HeaderName; 9] = [
        HeaderName::ToPath,
        HeaderName::FromPath,
        HeaderName::MessageId,
        HeaderName::ByteRange,
        HeaderName::SuccessReport,
        HeaderName::FailureReport,
        HeaderName::Status,
        HeaderName::ContentType,
        HeaderName::UseNickname,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HeaderName::ToPath => "To-Path",
            HeaderName::FromPath => "From-Path",
            HeaderName::MessageId => "Message-ID",
            HeaderName::ByteRange => "Byte-Range",
            HeaderName::SuccessReport => "Success-Report",
            HeaderName::FailureReport => "Failure-Report",
            HeaderName::Status => "Status",
            HeaderName::ContentType => "Content-Type",
            HeaderName::UseNickname => "Use-Nickname",
        }
    }

    pub(super) fn lookup(name: &str) -> Option<HeaderName> {
        HeaderName::ALL
            .into_iter()
            .find(|h| h.as_str().eq_ignore_ascii_case(name))
    }
}

/// The first occurrence of `needle` in `hay` at or after `from`.
pub(crate) fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while i + needle.len() <= hay.len() {
        let off = hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        let at = i + off;
        if hay[at..at + needle.len()] == *needle {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idents() {
        assert!(is_ident("a786"));
        assert!(is_ident("a786hjs2"));
        assert!(is_ident("1.-+%=x"));
        assert!(is_ident(&"x".repeat(32)));
        assert!(!is_ident("abc"));
        assert!(!is_ident(&"x".repeat(33)));
        assert!(!is_ident(".abc"));
        assert!(!is_ident("ab_c"));
        assert!(!is_ident("ab c"));
    }
}
