//! The one check of a refusal, so every test asserts the same three things of it.

use cpm_focus::sip::{HeaderName, Response};

/// Asserts a refusal: its status, its reason phrase and its exact `Warning` header.
pub fn assert_refused(r: &Response, status: u16, reason: &str, warning: &str) {
    assert_eq!((r.status, &*r.reason), (status, reason), "{r:?}");
    assert_eq!(
        r.headers.get(HeaderName::Warning),
        Some(warning),
        "Warning of {} {}",
        r.status,
        r.reason
    );
}
