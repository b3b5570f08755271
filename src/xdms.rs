//! Pre-defined groups from a Shared Group XDMS over XCAP (RFC 4825): the `[xdms]` documents
//! are RFC 4826 `rls-services`, fetched with conditional GETs, each `<service>` a group like a
//! `[[groups]]` entry (see `docs/groups.md`).
//!
//! - [`rls`]: the bounded document reader (sans-IO).
//! - [`store`]: the last good copy of every document, its ETag, and the groups they make
//!   (sans-IO: a bad document is refused and the good copy stays).
//! - [`driver`]: the poll loop on the pooled HTTP client, feeding the supervisor's catalog.
//! - [`subscriber`] (sans-IO) and [`follow`] (its driver): the xcap-diff subscription (RFC
//!   5875) whose notices wake the poll loop; [`diff`] reads their bodies.

pub mod diff;
pub mod driver;
pub mod follow;
pub mod rls;
pub mod store;
pub mod subscriber;

#[cfg(test)]
mod tests;

pub use driver::{spawn, GroupCatalog, XdmsHealth};
pub use follow::SubscriptionHandle;
pub use rls::{parse, RlsError, RlsServices, Service};
pub use store::{Applied, Documents};
