//! RFC 8866 §9 lexical rules, shared by the parser (what we accept) and
//! [`SessionDescription::validate`](super::SessionDescription::validate) (what we send), so
//! the two cannot drift apart and every valid model round-trips.

/// `token-char` of RFC 8866 §9: visible ASCII except separators such as `"(),/:;<=>?@[\]`.
fn is_token_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x27 | 0x2A..=0x2B | 0x2D..=0x2E | 0x30..=0x39 | 0x41..=0x5A | 0x5E..=0x7E)
}

/// `token`: one or more token characters.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// `proto`: `token *("/" token)`, e.g. `RTP/AVP`, `TCP/TLS/MSRP`, `UDP/TLS/BFCP`.
pub(crate) fn is_proto(s: &str) -> bool {
    s.split('/').all(is_token)
}

/// `non-ws-string`: one or more visible characters (ASCII or UTF-8), no space or control.
pub(crate) fn is_non_ws(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b > 0x20 && b != 0x7F)
}

/// `byte-string` (free text): no NUL, CR or LF. Unlike the RFC we allow it to be empty
/// (`s=` and `i=` with nothing are common in the wild and harmless).
pub(crate) fn is_text(s: &str) -> bool {
    !s.bytes().any(|b| matches!(b, 0 | b'\r' | b'\n'))
}

/// One or more ASCII digits. (Rust's `parse` would also take a leading `+`.)
pub(crate) fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal number that fits the target type.
pub(crate) fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    if is_digits(s) {
        s.parse().ok()
    } else {
        None
    }
}

/// `typed-time`: digits with an optional unit `d`, `h`, `m` or `s` (`r=`, `z=`).
pub(crate) fn is_typed_time(s: &str) -> bool {
    let digits = s.strip_suffix(['d', 'h', 'm', 's']).unwrap_or(s);
    is_digits(digits)
}

/// A `z=` offset: `["-"] typed-time`.
pub(crate) fn is_zone_offset(s: &str) -> bool {
    is_typed_time(s.strip_prefix('-').unwrap_or(s))
}
