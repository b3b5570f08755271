//! Parses `multipart/*` bodies (RFC 2046 §5.1); the framing rules are in the module docs.
//!
//! Work is bounded before it is done: the body size first, then the part count before each
//! part is scanned, then header lines per part. Part bodies are slices of the input `Bytes`.

use super::model::{
    Header, Multipart, Part, CONTENT_DISPOSITION, CONTENT_ID, CONTENT_LENGTH, CONTENT_TYPE,
};
use super::params;
use crate::body::quote;
use bytes::Bytes;
use thiserror::Error;

/// Bounds on what a peer can make the parser hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultipartLimits {
    /// The whole body, in bytes.
    pub max_bytes: usize,
    /// Body parts. URI-list requests carry two (payload and list).
    pub max_parts: usize,
    /// Header lines per part, continuation lines included.
    pub max_header_lines: usize,
}

impl Default for MultipartLimits {
    /// 1 MiB, 16 parts, 32 header lines: a SIP message is at most 64 KiB by default
    /// (`sip.max_message_size`) and a URI-list request has two parts with a few headers each,
    /// so these leave room for RLMI notifications and extensions while capping the work.
    fn default() -> Self {
        MultipartLimits {
            max_bytes: 1024 * 1024,
            max_parts: 16,
            max_header_lines: 32,
        }
    }
}

/// Why a multipart body was rejected; the fault is the sender's (answer `400`, or `415` for
/// [`MultipartError::NotMultipart`]). Part indexes count from 0.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MultipartError {
    #[error("multipart body is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed Content-Type {0:?}")]
    ContentType(String),
    #[error("Content-Type {0:?} is not multipart")]
    NotMultipart(String),
    #[error("multipart Content-Type has no boundary parameter")]
    MissingBoundary,
    #[error("boundary {0:?} is not 1 to 70 boundary characters")]
    InvalidBoundary(String),
    #[error("no opening boundary delimiter")]
    NoOpeningDelimiter,
    #[error("body ends without a closing boundary delimiter")]
    NoClosingDelimiter,
    #[error("unexpected text after the boundary on the delimiter line before part {index}")]
    DelimiterLine { index: usize },
    #[error("multipart body has no parts")]
    NoParts,
    #[error("multipart body has more than the limit of {limit} parts")]
    TooManyParts { limit: usize },
    #[error("part {index} has more than the limit of {limit} header lines")]
    TooManyHeaderLines { index: usize, limit: usize },
    #[error("part {index} has a header line that is not UTF-8")]
    HeaderNotUtf8 { index: usize },
    #[error("part {index} has a malformed header line")]
    HeaderLine { index: usize },
    #[error("part {index} has more than one {name} header")]
    DuplicateHeader { index: usize, name: &'static str },
    #[error("part {index} has a malformed {name} header")]
    MalformedHeader { index: usize, name: &'static str },
    #[error("part {index} has a Content-Length that does not match its body")]
    ContentLength { index: usize },
}

/// Parses a multipart body, given the value of its Content-Type header.
pub fn parse(
    content_type: &str,
    body: Bytes,
    limits: &MultipartLimits,
) -> Result<Multipart, MultipartError> {
    if body.len() > limits.max_bytes {
        return Err(MultipartError::TooLarge {
            size: body.len(),
            limit: limits.max_bytes,
        });
    }
    let value = params::parse(content_type)
        .ok_or_else(|| MultipartError::ContentType(quote(content_type)))?;
    let (ty, subtype) = params::media_type(value.main)
        .ok_or_else(|| MultipartError::ContentType(quote(content_type)))?;
    if !ty.eq_ignore_ascii_case("multipart") {
        return Err(MultipartError::NotMultipart(quote(value.main)));
    }
    let boundary = value
        .get("boundary")
        .ok_or(MultipartError::MissingBoundary)?;
    if !is_valid_boundary(boundary) {
        return Err(MultipartError::InvalidBoundary(quote(boundary)));
    }
    let dash = format!("--{boundary}");
    let dash = dash.as_bytes();
    let data: &[u8] = &body;

    let mut at = find_delimiter(data, 0, dash).ok_or(MultipartError::NoOpeningDelimiter)?;
    let mut parts = Vec::new();
    loop {
        // `at` starts a delimiter line: `--boundary`, then `--` or padding and a line end.
        let after = at + dash.len();
        if data[after..].starts_with(b"--") {
            if parts.is_empty() {
                return Err(MultipartError::NoParts);
            }
            break;
        }
        let index = parts.len();
        let mut i = after;
        while i < data.len() && (data[i] == b' ' || data[i] == b'\t') {
            i += 1;
        }
        let start = match &data[i..] {
            [] => return Err(MultipartError::NoClosingDelimiter),
            [b'\r', b'\n', ..] => i + 2,
            [b'\n', ..] => i + 1,
            _ => return Err(MultipartError::DelimiterLine { index }),
        };
        if index >= limits.max_parts {
            return Err(MultipartError::TooManyParts {
                limit: limits.max_parts,
            });
        }
        let next = find_delimiter(data, start, dash).ok_or(MultipartError::NoClosingDelimiter)?;
        // The line end before the next delimiter belongs to the delimiter.
        let mut end = next;
        if end > start && data[end - 1] == b'\n' {
            end -= 1;
            if end > start && data[end - 1] == b'\r' {
                end -= 1;
            }
        }
        parts.push(part(&body, start, end, index, limits)?);
        at = next;
    }
    let params = value
        .params
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("boundary"))
        .map(|(name, v)| ((*name).to_owned(), v.clone().into_owned()))
        .collect();
    Ok(Multipart {
        subtype: subtype.to_ascii_lowercase(),
        params,
        parts,
    })
}

/// RFC 2046 §5.1.1 `boundary`: 1 to 70 `bchars`, not ending in a space.
pub(super) fn is_valid_boundary(b: &str) -> bool {
    (1..=70).contains(&b.len())
        && !b.ends_with(' ')
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c))
}

/// The first line start at or after `from` (a line start itself) that begins with `dash`.
pub(super) fn find_delimiter(data: &[u8], from: usize, dash: &[u8]) -> Option<usize> {
    let mut p = from;
    loop {
        if (p == 0 || data[p - 1] == b'\n') && data[p..].starts_with(dash) {
            return Some(p);
        }
        let nl = data[p..].iter().position(|&b| b == b'\n')?;
        p += nl + 1;
    }
}

/// A header field that must appear at most once, with what is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeaderFault {
    Duplicate(&'static str),
    Malformed(&'static str),
    ContentLength,
}

/// Checks the header fields the model interprets, and returns the body length Content-Length
/// asks for (the whole body when there is none).
///
/// Content-Length is optional in a part. When present it must not claim more than the part
/// holds, and what it leaves out may only be line-end padding (the blank line some senders put
/// before the delimiter, as in RFC 5365's example); the body is cut to it.
pub(super) fn check_headers(headers: &[Header], body: &[u8]) -> Result<usize, HeaderFault> {
    let mut len = body.len();
    for name in [
        CONTENT_TYPE,
        CONTENT_DISPOSITION,
        CONTENT_ID,
        CONTENT_LENGTH,
    ] {
        let mut found = headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name));
        let Some(h) = found.next() else { continue };
        if found.next().is_some() {
            return Err(HeaderFault::Duplicate(name));
        }
        let ok = match name {
            CONTENT_TYPE => params::parse(&h.value)
                .and_then(|v| params::media_type(v.main))
                .is_some(),
            CONTENT_DISPOSITION => {
                params::parse(&h.value).is_some_and(|v| params::is_token(v.main))
            }
            CONTENT_ID => !h.value.is_empty(),
            _ => {
                let v = &h.value;
                if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    false
                } else {
                    let n: usize = v.parse().map_err(|_| HeaderFault::ContentLength)?;
                    let padding_only = body
                        .get(n..)
                        .is_some_and(|rest| rest.iter().all(|b| b" \t\r\n".contains(b)));
                    if !padding_only {
                        return Err(HeaderFault::ContentLength);
                    }
                    len = n;
                    true
                }
            }
        };
        if !ok {
            return Err(HeaderFault::Malformed(name));
        }
    }
    Ok(len)
}

/// Parses the part in `body[start..end]`: header lines, a blank line, the body.
fn part(
    body: &Bytes,
    start: usize,
    end: usize,
    index: usize,
    limits: &MultipartLimits,
) -> Result<Part, MultipartError> {
    let content = &body[start..end];
    let mut headers: Vec<Header> = Vec::new();
    let mut pos = 0;
    let mut lines = 0usize;
    let body_start = loop {
        if pos >= content.len() {
            // Header fields and no body (`body-part := MIME-part-headers [CRLF *OCTET]`).
            break content.len();
        }
        let rest = &content[pos..];
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => (&rest[..nl], pos + nl + 1),
            None => (rest, content.len()),
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break next;
        }
        lines += 1;
        if lines > limits.max_header_lines {
            return Err(MultipartError::TooManyHeaderLines {
                index,
                limit: limits.max_header_lines,
            });
        }
        let text =
            std::str::from_utf8(line).map_err(|_| MultipartError::HeaderNotUtf8 { index })?;
        if text.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(MultipartError::HeaderLine { index });
        }
        if text.starts_with([' ', '\t']) {
            // A folded line continues the previous field (RFC 5322 §2.2.3).
            let last = headers
                .last_mut()
                .ok_or(MultipartError::HeaderLine { index })?;
            last.value.push_str(text);
        } else {
            let (name, value) = text
                .split_once(':')
                .ok_or(MultipartError::HeaderLine { index })?;
            let name = name.trim_end_matches([' ', '\t']);
            if name.is_empty() || !name.bytes().all(is_name_byte) {
                return Err(MultipartError::HeaderLine { index });
            }
            headers.push(Header::new(name, value));
        }
        pos = next;
    };
    for h in &mut headers {
        let trimmed = h.value.trim_matches([' ', '\t']);
        if trimmed.len() != h.value.len() {
            h.value = trimmed.to_owned();
        }
    }
    let raw = &content[body_start..];
    let len = check_headers(&headers, raw).map_err(|fault| match fault {
        HeaderFault::Duplicate(name) => MultipartError::DuplicateHeader { index, name },
        HeaderFault::Malformed(name) => MultipartError::MalformedHeader { index, name },
        HeaderFault::ContentLength => MultipartError::ContentLength { index },
    })?;
    let from = start + body_start;
    Ok(Part {
        headers,
        body: body.slice(from..from + len),
    })
}

/// RFC 5322 field names: printable ASCII except the colon.
pub(super) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b':'
}
