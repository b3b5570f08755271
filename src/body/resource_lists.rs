//! `application/resource-lists+xml` (RFC 4826 §3) with the copy-control attributes of
//! RFC 5364: the recipients of an INVITE, MESSAGE or REFER sent to a URI-list service.
//!
//! - [`parse`](parse()): bounded, namespace-aware parser returning the entries flattened in
//!   document order ([`ResourceList`]).
//! - [`ResourceList::dedup`]: one entry per recipient, as URI-list services must send at most
//!   one request to each (RFC 5363 framework, RFC 5365, RFC 5366).
//! - [`render_history`]: the `recipient-list-history` document an exploder sends on
//!   (RFC 5365, RFC 5364): no bcc recipients, anonymized ones masked.
//! - [`render`]: a plain document, for building requests (the test UA, property tests).
//!
//! # Decisions where the RFCs leave a choice
//!
//! - `<entry-ref>` and `<external>` point into documents the service would have to fetch
//!   (XCAP). They are not resolved and not silently dropped: each is reported in
//!   [`ResourceList::unresolved`], so the caller can refuse the request (e.g. `403`) or go on
//!   with the inline entries.
//! - Nested `<list>`s are flattened; list names and display names are not kept.
//! - The attributes of RFC 5364 (`copyControl`, `anonymize`, and `count` in history
//!   documents) are read on `<entry>` only, in their own namespace
//!   (`urn:ietf:params:xml:ns:copycontrol`, usually prefixed `cp:`); a missing `copyControl`
//!   means `to`. The same names without a namespace are refused, not ignored: ignoring a
//!   `bcc` would expose that recipient.
//! - Duplicates merge towards privacy; see [`ResourceList::dedup`].

mod dedup;
mod model;
mod parse;
mod render;

pub use dedup::recipient_key;
pub use model::{
    CopyControl, Entry, Reference, ResourceList, ANONYMOUS_URI, COPY_CONTROL_NAMESPACE, MIME_TYPE,
    NAMESPACE,
};
pub use parse::{parse, ListError, ListLimits, DEPTH_CAP};
pub use render::{render, render_history};

#[cfg(test)]
mod tests;
