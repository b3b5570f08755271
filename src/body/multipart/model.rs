//! The multipart body as plain data, and the look-ups URI-list services need: the part with
//! `Content-Disposition: recipient-list` (RFC 5365/5366) or the part a `Refer-To: <cid:…>`
//! names (RFC 5368, RFC 2392).

use super::params;
use bytes::Bytes;

/// One header field of a body part, unfolded and trimmed. Names compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

impl Header {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// One body part: its header fields in order and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// All header fields as written, including Content-Type and Content-Disposition, so a part
    /// can be forwarded unchanged.
    pub headers: Vec<Header>,
    /// The body; from [`parse`](super::parse()) a slice of the parsed bytes, not a copy.
    pub body: Bytes,
}

pub(super) const CONTENT_TYPE: &str = "Content-Type";
pub(super) const CONTENT_DISPOSITION: &str = "Content-Disposition";
pub(super) const CONTENT_ID: &str = "Content-ID";
pub(super) const CONTENT_LENGTH: &str = "Content-Length";

/// RFC 2046 §5.1: a part without Content-Type is `text/plain; charset=us-ascii`.
const DEFAULT_TYPE: &str = "text/plain";

impl Part {
    /// A part with a Content-Type (e.g. `application/resource-lists+xml`) and a body.
    pub fn new(content_type: impl Into<String>, body: impl Into<Bytes>) -> Part {
        Part {
            headers: vec![Header::new(CONTENT_TYPE, content_type)],
            body: body.into(),
        }
    }

    /// Adds a header field.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Part {
        self.headers.push(Header::new(name, value));
        self
    }

    /// Adds a Content-Disposition, e.g. `recipient-list` or
    /// `recipient-list-history;handling=optional`.
    pub fn with_disposition(self, value: impl Into<String>) -> Part {
        self.with_header(CONTENT_DISPOSITION, value)
    }

    /// Adds a Content-ID; angle brackets are added when `id` has none.
    pub fn with_content_id(self, id: &str) -> Part {
        let value = if id.starts_with('<') {
            id.to_owned()
        } else {
            format!("<{id}>")
        };
        self.with_header(CONTENT_ID, value)
    }

    /// The first header field named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The media type without parameters, as written (`application/sdp`); `None` when the part
    /// has no Content-Type. Compare with [`Part::is_content_type`].
    pub fn content_type(&self) -> Option<&str> {
        self.header(CONTENT_TYPE).map(main_value)
    }

    /// True when the part's media type is `media_type`, ignoring case and parameters. A part
    /// without Content-Type counts as `text/plain` (RFC 2046 §5.1).
    pub fn is_content_type(&self, media_type: &str) -> bool {
        self.content_type()
            .unwrap_or(DEFAULT_TYPE)
            .eq_ignore_ascii_case(media_type.trim())
    }

    /// A Content-Type parameter (e.g. `charset`), unquoted.
    pub fn content_type_param(&self, name: &str) -> Option<String> {
        param(self.header(CONTENT_TYPE)?, name)
    }

    /// The disposition type without parameters, as written (`recipient-list`).
    pub fn disposition(&self) -> Option<&str> {
        self.header(CONTENT_DISPOSITION).map(main_value)
    }

    /// True when the disposition type is `kind`, ignoring case.
    pub fn is_disposition(&self, kind: &str) -> bool {
        self.disposition()
            .is_some_and(|d| d.eq_ignore_ascii_case(kind.trim()))
    }

    /// A Content-Disposition parameter (e.g. `handling`), unquoted.
    pub fn disposition_param(&self, name: &str) -> Option<String> {
        param(self.header(CONTENT_DISPOSITION)?, name)
    }

    /// True when a receiver that does not understand the disposition may ignore the part:
    /// `handling=optional` (RFC 3261 §20.11; the default is `required`).
    pub fn handling_optional(&self) -> bool {
        self.disposition_param("handling")
            .is_some_and(|h| h.eq_ignore_ascii_case("optional"))
    }

    /// The Content-ID without angle brackets (`cn35t8jf02@example.com`).
    pub fn content_id(&self) -> Option<&str> {
        self.header(CONTENT_ID).map(strip_angles)
    }
}

/// A `multipart/*` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    /// The subtype, lower-cased: `mixed`, `related`, `alternative`, ...
    pub subtype: String,
    /// Content-Type parameters other than `boundary` (multipart/related's `type`, `start`),
    /// kept so the body can be written back with them.
    pub params: Vec<(String, String)>,
    pub parts: Vec<Part>,
}

impl Multipart {
    /// A `multipart/mixed` body of `parts`.
    pub fn mixed(parts: Vec<Part>) -> Multipart {
        Multipart {
            subtype: "mixed".into(),
            params: Vec::new(),
            parts,
        }
    }

    /// The first part whose disposition type is `kind` (e.g. `recipient-list`).
    pub fn find_by_disposition(&self, kind: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.is_disposition(kind))
    }

    /// How many parts have disposition `kind`: a service may refuse a request with two
    /// `recipient-list` parts rather than pick one.
    pub fn count_disposition(&self, kind: &str) -> usize {
        self.parts.iter().filter(|p| p.is_disposition(kind)).count()
    }

    /// The part a `cid:` URI names (RFC 2392), as found in `Refer-To: <cid:…>` (RFC 5368).
    ///
    /// Accepts the URI with or without angle brackets (`<cid:a@b>`, `cid:a@b`, `cid:a%40b`),
    /// or a bare Content-ID (`<a@b>`, `a@b`). The `cid:` form is percent-decoded; Content-IDs
    /// then compare exactly, since RFC 2392 defines no case folding.
    pub fn find_by_content_id(&self, cid: &str) -> Option<&Part> {
        let wanted = content_id_of(cid)?;
        self.parts
            .iter()
            .find(|p| p.content_id().is_some_and(|id| id == wanted))
    }
}

/// The Content-ID a `cid:` URI or bare id designates.
fn content_id_of(cid: &str) -> Option<String> {
    let s = strip_angles(cid);
    let id = match s.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("cid:") => {
            let decoded = crate::sip::unescape(&s[4..]).into_owned();
            strip_angles(&decoded).to_owned()
        }
        _ => s.to_owned(),
    };
    (!id.is_empty()).then_some(id)
}

fn strip_angles(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(s)
        .trim()
}

/// What precedes the first `;` of a header value, trimmed.
fn main_value(value: &str) -> &str {
    value.split(';').next().unwrap_or(value).trim()
}

fn param(value: &str, name: &str) -> Option<String> {
    params::parse(value)?.get(name).map(str::to_owned)
}
