//! The focus's HTTP listener: hyper's HTTP/1.1 server connection under the limits both the
//! admin API and `/metrics` need. One request per connection (`Connection: close`), so a
//! connection slot is never held by an idle keep-alive; heads bounded by hyper's buffer;
//! bodies bounded and read by [`read_body`] against the connection's deadline.
//!
//! hyper answers what it cannot parse itself (`400`, `431`) without reaching the handler,
//! and closes a connection whose head does not arrive in time; [`Handler::refused`] hears of
//! each, so every request path is still counted.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// hyper's smallest head buffer (it panics below it).
const MIN_HEAD_BUFFER: usize = 8192;

/// Above this a too-long URI would be hyper's `414` rather than a too-large head's `431`;
/// heads are kept below it so a refused head is always one status.
const MAX_HEAD_BUFFER: usize = 65_534;

/// A listener's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once (more wait in the listen backlog); `None`: no limit.
    pub max_connections: Option<usize>,
    /// Largest request, head and body together, in bytes. The head alone is also bounded by
    /// hyper's read buffer, at least 8 KiB and at most 64 KiB.
    pub max_request_bytes: usize,
    /// How long a client may take to send its request (head and body); the whole exchange,
    /// answer included, is cut off at three times this.
    pub timeout: Duration,
}

/// The answer a handler writes.
pub type Reply = Response<Full<Bytes>>;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a handler knows of the connection its request came on.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub peer: SocketAddr,
    /// When the request must have been read completely (accepted + `timeout`).
    pub deadline: Instant,
    /// `max_request_bytes` of the listener.
    pub max_request_bytes: usize,
}

/// Serves requests.
pub trait Handler: Send + Sync + 'static {
    fn handle(self: Arc<Self>, req: Request<Incoming>, conn: Connection) -> BoxFuture<Reply>;

    /// hyper refused a request before it reached [`Handler::handle`]: `status` is what it
    /// answered (`400`, `431`), or `408` when the head did not arrive in time and the
    /// connection was closed unanswered (as a web server's access log records it).
    fn refused(&self, status: u16);
}

/// Serves `listener` until cancelled. Connections already accepted finish on their own
/// (their timeouts bound them).
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    limits: Limits,
    cancel: CancellationToken,
) {
    let slots = limits
        .max_connections
        .map(|n| Arc::new(tokio::sync::Semaphore::new(n)));
    let head_buffer = limits
        .max_request_bytes
        .clamp(MIN_HEAD_BUFFER, MAX_HEAD_BUFFER);
    loop {
        // A slot first: connections beyond the limit wait in the listen backlog.
        let permit = match &slots {
            None => None,
            Some(slots) => tokio::select! {
                _ = cancel.cancelled() => return,
                p = slots.clone().acquire_owned() => match p { Ok(p) => Some(p), Err(_) => return },
            },
        };
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let accepted = Instant::now();
            let conn = Connection {
                peer,
                deadline: accepted + limits.timeout,
                max_request_bytes: limits.max_request_bytes,
            };
            let on_request = handler.clone();
            let service = hyper::service::service_fn(move |req| {
                let handler = on_request.clone();
                async move { Ok::<_, Infallible>(handler.handle(req, conn).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .keep_alive(false)
                .timer(TokioTimer::new())
                .header_read_timeout(limits.timeout)
                .max_buf_size(head_buffer);
            let served = builder.serve_connection(TokioIo::new(stream), service);
            // A client that does not read its answer holds its slot no longer than this.
            let hard_stop = accepted + limits.timeout * 3;
            match tokio::time::timeout_at(hard_stop, served).await {
                Ok(Err(e)) => {
                    if let Some(status) = refusal_status(&e) {
                        handler.refused(status);
                    }
                    tracing::debug!(%peer, error = %e, "http connection failed");
                }
                Ok(Ok(())) => {}
                Err(_) => tracing::debug!(%peer, "http connection cut off"),
            }
        });
    }
}

/// What hyper answered for a request it refused itself; `None` when no request was made
/// (the peer went away) or the failure came after the handler.
fn refusal_status(e: &hyper::Error) -> Option<u16> {
    if e.is_parse_too_large() {
        Some(431)
    } else if e.is_parse_version_h2() {
        // Closed unanswered: only HTTP/1.x is served.
        Some(505)
    } else if e.is_parse() {
        Some(400)
    } else if e.is_timeout() {
        Some(408)
    } else {
        None
    }
}

/// Why a request body could not be read.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    #[error("request too large")]
    TooLarge,
    #[error("request timeout")]
    Timeout,
    #[error("malformed request body")]
    Malformed,
}

impl BodyError {
    pub fn status(self) -> u16 {
        match self {
            BodyError::TooLarge => 413,
            BodyError::Timeout => 408,
            BodyError::Malformed => 400,
        }
    }
}

/// The size of a request's head as it came on the wire, near enough to bound head and body
/// together (hyper does not keep the raw bytes).
pub fn head_size<B>(req: &Request<B>) -> usize {
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    req.headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + line
        + 2
}

/// Reads the whole body of `req` within `conn`'s deadline and request bound. A declared
/// `Content-Length` over the bound is refused before anything is read.
pub async fn read_body(req: Request<Incoming>, conn: &Connection) -> Result<Bytes, BodyError> {
    let room = conn.max_request_bytes.saturating_sub(head_size(&req));
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > room as u64) {
        return Err(BodyError::TooLarge);
    }
    let body = Limited::new(req.into_body(), room);
    match tokio::time::timeout_at(conn.deadline, body.collect()).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Ok(Err(_)) => Err(BodyError::Malformed),
    }
}

/// A response with `content_type`, `Cache-Control: no-store`, `Connection: close` and
/// `extra` headers.
pub fn reply(
    status: u16,
    content_type: &'static str,
    body: String,
    extra: &[(&str, &str)],
) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    for (name, value) in extra {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}
