//! HTTP/1.1 on hyper, for the focus's own listeners and its one outbound HTTP client.
//!
//! - `server.rs`: the listener stack the admin API and `/metrics` share (connection limit,
//!   head and body bounds, timeouts, one request per connection)
//! - `client.rs`: a pooled keep-alive client over plain TCP or rustls, for the online credit
//!   check (and any later HTTP peer)

pub mod client;
pub mod server;
