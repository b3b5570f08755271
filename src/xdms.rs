//! Pre-defined groups from a Shared Group XDMS over XCAP (RFC 4825): the `[xdms]` documents
//! are RFC 4826 `rls-services`, fetched with conditional GETs, each `<service>` a group like a
//! `[[groups]]` entry (see `docs/groups.md`).
//!
//! - [`rls`]: the bounded document reader (sans-IO).
//! - [`store`]: the last good copy of every document, its ETag, and the groups they make
//!   (sans-IO: a bad document is refused and the good copy stays).
//! - [`driver`]: the poll loop on the pooled HTTP client, feeding the supervisor's catalog.

pub mod driver;
pub mod rls;
pub mod store;

#[cfg(test)]
mod tests;

pub use driver::{spawn, GroupCatalog, XdmsHealth};
pub use rls::{parse, RlsError, RlsServices, Service};
pub use store::{Applied, Documents};
