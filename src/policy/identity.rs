//! Who a participant is (RFC 3325 asserted identity, only from trusted hosts) and whether it
//! asked to be anonymous (RFC 3323 `Privacy`).

use crate::sip::{HeaderName, NameAddr, Request};
use std::net::IpAddr;

/// The domain of anonymous aliases (RFC 3323 §4.1.1.3).
pub const ANONYMOUS_DOMAIN: &str = "anonymous.invalid";

/// A participant's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Address of record (`sip:user@host`), the key for membership and roles.
    pub aor: String,
    /// Display name chosen by the participant (From or asserted identity).
    pub display: Option<String>,
    /// True when it came from a trusted P-Asserted-Identity.
    pub asserted: bool,
    /// `Privacy: id`, `user` or `header`: hidden from the other participants.
    pub anonymous: bool,
}

/// Reads the identity of a request's sender. The P-Asserted-Identity is believed only from a
/// trusted host (RFC 3325 §5); otherwise, and without one, the From is the identity.
pub fn identify(req: &Request, source: IpAddr, trusted: &[IpAddr]) -> Identity {
    let anonymous = req
        .headers
        .values(HeaderName::Privacy)
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .any(|p| {
            p.eq_ignore_ascii_case("id")
                || p.eq_ignore_ascii_case("user")
                || p.eq_ignore_ascii_case("header")
        });
    let from_trusted = trusted.contains(&source);
    let asserted = from_trusted
        .then(|| {
            req.headers
                .values(HeaderName::PAssertedIdentity)
                .filter_map(|v| NameAddr::parse(v).ok())
                .find(|a| a.uri.is_sip())
        })
        .flatten();
    match asserted {
        Some(a) => Identity {
            aor: a.uri.aor(),
            display: a.display.map(|d| d.to_string()),
            asserted: true,
            anonymous,
        },
        None => Identity {
            aor: req.from.uri.aor(),
            display: req.from.display.as_deref().map(str::to_string),
            asserted: false,
            anonymous,
        },
    }
}
