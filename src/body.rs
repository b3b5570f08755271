//! Request bodies that carry URI lists: the decoders and encoders behind INVITE with a URI
//! list (RFC 5366), the MESSAGE exploder (RFC 5365) and REFER to multiple targets (RFC 5368).
//!
//! - [`multipart`]: `multipart/*` bodies (RFC 2046 §5.1). The list travels as one part of a
//!   `multipart/mixed` body beside the SDP offer or the message payload, marked
//!   `Content-Disposition: recipient-list`; a REFER points at it with `Refer-To: <cid:…>`.
//! - [`resource_lists`]: `application/resource-lists+xml` (RFC 4826) with the copy-control
//!   attributes of RFC 5364, flattened to the recipients a URI-list service acts on, plus the
//!   `recipient-list-history` document a MESSAGE exploder sends on.
//!
//! Both decoders are pure functions of their input and bounded by explicit limits: bodies come
//! from peers, and one request must not make the focus allocate without bound.

pub mod multipart;
pub mod resource_lists;

/// Errors quote at most a short excerpt of the input (the shared XML reader's rule).
use crate::xml::quote;
