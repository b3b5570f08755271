//! A minimal HTTP/1.1 client for one JSON POST per connection, enough for a credit-control
//! endpoint: no TLS, no redirects, no keep-alive (`Connection: close`).
//!
//! Framing is separate from I/O, as for SIP: [`parse_response`] says whether a whole
//! response is buffered (`Ok(None)` means "read more") and never panics on garbage; [`post`]
//! only moves bytes. Everything read is bounded by [`MAX_RESPONSE`].

use std::io;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most bytes read from a response (head and body): a credit answer is a few dozen.
pub const MAX_RESPONSE: usize = 16 * 1024;

/// Most header lines in a response head.
const MAX_HEADERS: usize = 64;

/// Why an exchange failed. The caller's timeout covers the rest.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HttpError {
    #[error("connect: {0}")]
    Connect(io::ErrorKind),
    #[error("i/o: {0}")]
    Io(io::ErrorKind),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    #[error("response larger than {MAX_RESPONSE} bytes")]
    TooLarge,
    #[error("connection closed before the response was complete")]
    Truncated,
}

pub use crate::config::{HttpUrl, UrlError};

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub body: Vec<u8>,
}

/// POSTs `body` as `application/json` and reads the whole response. No timeout here: the
/// caller bounds the whole exchange.
pub async fn post(url: &HttpUrl, body: &[u8]) -> Result<Response, HttpError> {
    let mut stream = TcpStream::connect((url.host(), url.port()))
        .await
        .map_err(|e| HttpError::Connect(e.kind()))?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        url.target(),
        url.authority(),
        body.len()
    );
    let mut request = Vec::with_capacity(head.len() + body.len());
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body);
    let io = |e: io::Error| HttpError::Io(e.kind());
    stream.write_all(&request).await.map_err(io)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if buf.len() + n > MAX_RESPONSE {
            return Err(HttpError::TooLarge);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(response) = parse_response(&buf, n == 0)? {
            return Ok(response);
        }
        if n == 0 {
            return Err(HttpError::Truncated);
        }
    }
}

/// Parses a buffered response: `Ok(None)` when more bytes are needed (and `eof` is false).
/// Interim (1xx) responses are skipped. The body is framed by `Transfer-Encoding: chunked`,
/// `Content-Length`, or the end of the connection, in that order (RFC 9112 §6.3).
pub fn parse_response(buf: &[u8], eof: bool) -> Result<Option<Response>, HttpError> {
    let mut rest = buf;
    loop {
        let Some(head_len) = find(rest, b"\r\n\r\n").map(|i| i + 4) else {
            return if eof {
                Err(HttpError::Truncated)
            } else {
                Ok(None)
            };
        };
        let head = std::str::from_utf8(&rest[..head_len - 4])
            .map_err(|_| HttpError::Malformed("head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let (status, reason) = status_line(lines.next().unwrap_or(""))?;
        let mut length: Option<usize> = None;
        let mut chunked = false;
        for (i, line) in lines.enumerate() {
            if i >= MAX_HEADERS {
                return Err(HttpError::Malformed("too many headers"));
            }
            let (name, value) = line
                .split_once(':')
                .ok_or(HttpError::Malformed("header without colon"))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| HttpError::Malformed("bad Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(HttpError::Malformed("conflicting Content-Length"));
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
                if !chunked {
                    return Err(HttpError::Malformed("unsupported Transfer-Encoding"));
                }
            }
        }
        let body = &rest[head_len..];
        if (100..200).contains(&status) {
            rest = body;
            continue;
        }
        // 204 and 304 have no body whatever the headers say.
        let body = if status == 204 || status == 304 {
            Some(Vec::new())
        } else if chunked {
            dechunk(body)?
        } else if let Some(n) = length {
            if n > MAX_RESPONSE {
                return Err(HttpError::TooLarge);
            }
            (body.len() >= n).then(|| body[..n].to_vec())
        } else if eof {
            Some(body.to_vec())
        } else {
            None
        };
        return match body {
            Some(body) => Ok(Some(Response {
                status,
                reason: reason.to_string(),
                body,
            })),
            None if eof => Err(HttpError::Truncated),
            None => Ok(None),
        };
    }
}

/// `HTTP/1.x SP 3DIGIT SP reason`.
fn status_line(line: &str) -> Result<(u16, &str), HttpError> {
    let rest = line
        .strip_prefix("HTTP/1.")
        .ok_or(HttpError::Malformed("not an HTTP/1.x status line"))?;
    let mut parts = rest.splitn(3, ' ');
    let minor = parts.next().unwrap_or("");
    if minor.len() != 1 || !minor.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::Malformed("bad HTTP version"));
    }
    let code = parts.next().unwrap_or("");
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::Malformed("bad status code"));
    }
    let status = code
        .parse::<u16>()
        .map_err(|_| HttpError::Malformed("bad status code"))?;
    if status < 100 {
        return Err(HttpError::Malformed("bad status code"));
    }
    Ok((status, parts.next().unwrap_or("").trim()))
}

/// Decodes a chunked body: `Ok(None)` until the last chunk and the trailers are buffered.
fn dechunk(mut buf: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(buf, b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[..line_end])
            .map_err(|_| HttpError::Malformed("bad chunk size"))?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| HttpError::Malformed("bad chunk size"))?;
        if size > MAX_RESPONSE {
            return Err(HttpError::TooLarge);
        }
        buf = &buf[line_end + 2..];
        if size == 0 {
            // Trailers (ignored) end with an empty line.
            return Ok(
                if buf.starts_with(b"\r\n") || find(buf, b"\r\n\r\n").is_some() {
                    Some(body)
                } else {
                    None
                },
            );
        }
        if buf.len() < size + 2 {
            return Ok(None);
        }
        if &buf[size..size + 2] != b"\r\n" {
            return Err(HttpError::Malformed("chunk not followed by CRLF"));
        }
        body.extend_from_slice(&buf[..size]);
        buf = &buf[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
