//! A pooled HTTP/1.1 client: hyper-util's legacy client (keep-alive, one pool per host) over
//! plain TCP for `http://` and rustls for `https://`. Servers are verified exactly as every
//! other TLS peer of the focus is ([`crate::transport::tls::client_config`]: the chain against
//! the configured roots, the name against the host of the URL); a failed handshake is
//! counted in `focus_tls_handshake_failures_total{role="client"}` under the client's service
//! label, and the request fails (closed: nothing is sent to an unverified server).

use crate::transport::tls::{self, Role, TlsContext};
use bytes::Bytes;
use http_body_util::Full;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tower_service::Service;

/// The error a connection attempt fails with (hyper-util wraps it).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The pooled client; cheap to clone (clones share the pool).
pub type PooledClient = Client<Connector, Full<Bytes>>;

/// How a client connects and keeps connections.
#[derive(Clone)]
pub struct ClientSettings {
    /// Verifies `https://` servers; `None`: only `http://` URLs can be used.
    pub tls: Option<TlsConnector>,
    /// The `service` label of the client's TLS metrics (bounded: a constant per client).
    pub service: &'static str,
    /// How long an idle connection stays in the pool; zero keeps none (a connection per
    /// request).
    pub idle_timeout: Duration,
    /// The most idle connections kept per host.
    pub max_idle: usize,
    /// Longest TCP connect.
    pub connect_timeout: Duration,
}

/// A pooled client with `settings`.
pub fn pooled(settings: ClientSettings) -> PooledClient {
    let mut http = HttpConnector::new();
    // https:// URLs reach `Connector`, which does the TLS.
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(settings.connect_timeout));
    let connector = Connector {
        http,
        tls: settings.tls,
        service: settings.service,
    };
    let keep = !settings.idle_timeout.is_zero();
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(keep.then_some(settings.idle_timeout))
        .pool_max_idle_per_host(if keep { settings.max_idle } else { 0 })
        .http1_title_case_headers(true)
        .build(connector)
}

/// TCP, then TLS for `https`.
#[derive(Clone)]
pub struct Connector {
    http: HttpConnector,
    tls: Option<TlsConnector>,
    service: &'static str,
}

impl Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().unwrap_or("").to_string();
        let tls = self.tls.clone();
        let service = self.service;
        let tcp = self.http.call(uri);
        Box::pin(async move {
            let tcp = tcp.await?;
            if !https {
                return Ok(Stream::Plain(tcp));
            }
            let tls = tls.ok_or("https needs trust roots (no CA file is configured)")?;
            let name = TlsContext::server_name(&host).ok_or("the URL's host is not a TLS name")?;
            match tls.connect(name, tcp.into_inner()).await {
                Ok(stream) => {
                    metrics::counter!("focus_tls_handshakes_total", "service" => service, "outcome" => "ok")
                        .increment(1);
                    Ok(Stream::Tls(Box::new(TokioIo::new(stream))))
                }
                Err(e) => {
                    metrics::counter!("focus_tls_handshakes_total", "service" => service, "outcome" => "failed")
                        .increment(1);
                    let reason = tls::count_failure(Role::Client, service, tls::failure_reason(&e));
                    crate::warn_limited!(%host, reason, error = %e, "TLS handshake with an HTTP server failed");
                    Err(e.into())
                }
            }
        })
    }
}

/// A connection of the pool.
pub enum Stream {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain(s) => s.inner().connected(),
            Stream::Tls(s) => s.inner().get_ref().0.connected(),
        }
    }
}

impl Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
