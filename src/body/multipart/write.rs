//! Writes `multipart/*` bodies. Like the other writers it refuses what would not parse back
//! to the same model: a boundary that a body contains, header text that would break a line or
//! be trimmed, header fields [`parse`](super::parse()) would reject.

use super::model::{Multipart, CONTENT_LENGTH};
use super::params;
use super::parse::{check_headers, find_delimiter, is_name_byte, is_valid_boundary, HeaderFault};
use crate::body::quote;
use bytes::{BufMut, Bytes, BytesMut};
use rand::distr::{Alphanumeric, SampleString};
use rand::Rng;
use thiserror::Error;

/// Why a multipart body cannot be written (a caller's mistake, not a peer's).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("no parts to encode")]
    NoParts,
    #[error("boundary {0:?} is not 1 to 70 boundary characters")]
    InvalidBoundary(String),
    #[error("part {index} contains a line starting with the boundary")]
    BoundaryInBody { index: usize },
    #[error("invalid multipart subtype or Content-Type parameter {0:?}")]
    ContentType(String),
    #[error("part {index} has an invalid header name {name:?}")]
    HeaderName { index: usize, name: String },
    #[error("part {index} has an invalid {name} header value")]
    HeaderValue { index: usize, name: String },
}

/// Random characters in a generated boundary: 24 alphanumerics (~143 bits) make a collision
/// with content, or a guess by whoever wrote the content, negligible.
const BOUNDARY_RANDOM: usize = 24;

impl Multipart {
    /// Writes the body with `boundary`; returns the Content-Type header value
    /// (`multipart/mixed;boundary="…"`) and the body.
    ///
    /// Fails rather than write a body that would parse differently: no parts, a boundary that
    /// starts a line in some part's body, or header fields the parser would refuse.
    pub fn encode(&self, boundary: &str) -> Result<(String, Bytes), EncodeError> {
        if self.parts.is_empty() {
            return Err(EncodeError::NoParts);
        }
        if !is_valid_boundary(boundary) {
            return Err(EncodeError::InvalidBoundary(quote(boundary)));
        }
        let content_type = self.content_type(boundary)?;
        let dash = format!("--{boundary}");
        let mut size = 0;
        for (index, part) in self.parts.iter().enumerate() {
            if find_delimiter(&part.body, 0, dash.as_bytes()).is_some() {
                return Err(EncodeError::BoundaryInBody { index });
            }
            for h in &part.headers {
                if h.name.is_empty() || !h.name.bytes().all(is_name_byte) {
                    return Err(EncodeError::HeaderName {
                        index,
                        name: quote(&h.name),
                    });
                }
                let v = &h.value;
                let bad = v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
                    || v.starts_with([' ', '\t'])
                    || v.ends_with([' ', '\t'])
                    // A Content-Length must give the body exactly; parse would cut it otherwise.
                    || (h.name.eq_ignore_ascii_case(CONTENT_LENGTH)
                        && v.parse::<usize>().ok() != Some(part.body.len()));
                if bad {
                    return Err(EncodeError::HeaderValue {
                        index,
                        name: quote(&h.name),
                    });
                }
                size += h.name.len() + v.len() + 4;
            }
            check_headers(&part.headers, &part.body).map_err(|fault| {
                let name = match fault {
                    HeaderFault::Duplicate(n) | HeaderFault::Malformed(n) => n,
                    HeaderFault::ContentLength => CONTENT_LENGTH,
                };
                EncodeError::HeaderValue {
                    index,
                    name: name.to_owned(),
                }
            })?;
            size += dash.len() + part.body.len() + 6;
        }
        let mut out = BytesMut::with_capacity(size + dash.len() + 6);
        for part in &self.parts {
            out.put_slice(dash.as_bytes());
            out.put_slice(b"\r\n");
            for h in &part.headers {
                out.put_slice(h.name.as_bytes());
                out.put_slice(b": ");
                out.put_slice(h.value.as_bytes());
                out.put_slice(b"\r\n");
            }
            out.put_slice(b"\r\n");
            out.put_slice(&part.body);
            // The line end before a delimiter belongs to the delimiter.
            out.put_slice(b"\r\n");
        }
        out.put_slice(dash.as_bytes());
        out.put_slice(b"--\r\n");
        Ok((content_type, out.freeze()))
    }

    /// [`Multipart::encode`] with a fresh [`Multipart::new_boundary`].
    pub fn encode_with_new_boundary(&self) -> Result<(String, Bytes), EncodeError> {
        self.encode(&self.new_boundary())
    }

    /// A random boundary that appears nowhere in any part's body.
    pub fn new_boundary(&self) -> String {
        self.new_boundary_with(&mut rand::rng())
    }

    /// [`Multipart::new_boundary`] drawing from `rng`; a candidate found in a body is drawn
    /// again (with 143 random bits, in practice never).
    pub(crate) fn new_boundary_with<R: Rng + ?Sized>(&self, rng: &mut R) -> String {
        loop {
            let candidate = format!("cpm-{}", Alphanumeric.sample_string(rng, BOUNDARY_RANDOM));
            let needle = candidate.as_bytes();
            let clash = self
                .parts
                .iter()
                .any(|p| p.body.windows(needle.len()).any(|w| w == needle));
            if !clash {
                return candidate;
            }
        }
    }

    /// The Content-Type value for `boundary`.
    fn content_type(&self, boundary: &str) -> Result<String, EncodeError> {
        let bad = |s: &str| EncodeError::ContentType(quote(s));
        if !params::is_token(&self.subtype) {
            return Err(bad(&self.subtype));
        }
        let mut out = format!("multipart/{}", self.subtype.to_ascii_lowercase());
        for (i, (name, value)) in self.params.iter().enumerate() {
            let repeated = self.params[..i]
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name));
            if !params::is_token(name) || name.eq_ignore_ascii_case("boundary") || repeated {
                return Err(bad(name));
            }
            if value.chars().any(char::is_control) {
                return Err(bad(value));
            }
            out.push(';');
            out.push_str(name);
            out.push('=');
            params::push_value(&mut out, value);
        }
        out.push_str(";boundary=\"");
        out.push_str(boundary);
        out.push('"');
        Ok(out)
    }
}
