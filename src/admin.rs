//! The admin API: a small HTTP/JSON listener of its own (`--admin-listen`) for support staff
//! and orchestration. Its schema is `config/admin-openapi.yaml`.
//!
//! - `api.rs`: routes, authorization, and the handlers, which reach sessions through the
//!   supervisor and their mailboxes exactly as SIP requests do
//!
//! HTTP itself is hyper, through the listener stack `/metrics` uses too
//! ([`crate::http::server`]): one request per connection, a bounded request, timeouts.

mod api;

pub use api::AdminApi;

use crate::config::AdminConfig;
use crate::http::server::{self, BoxFuture, Connection, Handler, Limits, Reply};
use crate::reload::TokenStore;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Why the admin API cannot start.
#[derive(Debug, Error)]
pub enum AdminStartError {
    #[error("the admin API listens on {0}, which is not a loopback address: set [admin] token")]
    NoToken(SocketAddr),
}

/// The bearer token, checked on every request but `/health` and `/ready`; a reload may
/// replace it.
pub struct AdminAuth {
    token: RwLock<String>,
    /// The listener is on a loopback address (an empty token is allowed only there).
    loopback: bool,
}

impl AdminAuth {
    /// Refuses a non-loopback listener without a token.
    pub fn new(listen: SocketAddr, token: &str) -> Result<AdminAuth, AdminStartError> {
        let loopback = listen.ip().is_loopback();
        if !loopback && token.is_empty() {
            return Err(AdminStartError::NoToken(listen));
        }
        Ok(AdminAuth {
            token: RwLock::new(token.to_string()),
            loopback,
        })
    }

    /// Whether an `Authorization` header value is good.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let token = self.token.read().unwrap_or_else(PoisonError::into_inner);
        if token.is_empty() {
            return true;
        }
        let given = authorization
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .unwrap_or("");
        constant_time_eq(given.as_bytes(), token.as_bytes())
    }
}

impl TokenStore for AdminAuth {
    fn check(&self, token: &str) -> Result<(), &'static str> {
        if !self.loopback && token.is_empty() {
            return Err("must stay set: the admin API listens on a non-loopback address");
        }
        Ok(())
    }

    fn replace(&self, token: &str) {
        *self.token.write().unwrap_or_else(PoisonError::into_inner) = token.to_string();
    }
}

/// Compares without an early exit, so the time taken does not tell how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The admin API as the HTTP listener's handler.
struct Service {
    api: Arc<AdminApi>,
    /// How long a session may take to answer a command.
    timeout: Duration,
}

impl Handler for Service {
    fn handle(
        self: Arc<Self>,
        req: hyper::Request<hyper::body::Incoming>,
        conn: Connection,
    ) -> BoxFuture<Reply> {
        Box::pin(async move { self.api.handle(req, conn, self.timeout).await })
    }

    fn refused(&self, status: u16) {
        api::count("unknown", status);
    }
}

/// Serves the admin API on `listener` until cancelled.
pub async fn serve(
    listener: TcpListener,
    api: Arc<AdminApi>,
    config: &AdminConfig,
    cancel: CancellationToken,
) {
    let timeout = Duration::from_millis(config.timeout_ms);
    let limits = Limits {
        max_connections: Some(config.max_connections),
        max_request_bytes: config.max_request_bytes,
        timeout,
    };
    server::serve(listener, Arc::new(Service { api, timeout }), limits, cancel).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_loopback_listener_needs_a_token() {
        let any: SocketAddr = "0.0.0.0:8090".parse().unwrap();
        assert!(AdminAuth::new(any, "").is_err());
        let auth = AdminAuth::new(any, "0123456789abcdef").unwrap();
        assert!(auth.admits(Some("Bearer 0123456789abcdef")));
        assert!(auth.admits(Some("bearer  0123456789abcdef")));
        assert!(!auth.admits(Some("Bearer 0123456789abcdeX")));
        assert!(!auth.admits(Some("Basic 0123456789abcdef")));
        assert!(!auth.admits(None));
        assert!(auth.check("").is_err(), "a reload may not drop the token");
        let local = AdminAuth::new("127.0.0.1:0".parse().unwrap(), "").unwrap();
        assert!(local.admits(None));
        assert!(local.check("").is_ok());
        local.replace("0123456789abcdef");
        assert!(!local.admits(None));
    }
}
