//! The little HTTP/1.1 the admin API needs, sans-IO: [`parse`] cuts one request out of the
//! bytes read so far (or says it needs more), [`response`] writes one answer. One request per
//! connection (`Connection: close`), bodies by `Content-Length` only, everything bounded.

use thiserror::Error;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    /// The path, still percent-encoded (segments are decoded one by one).
    pub path: String,
    /// Header names lower-cased, values trimmed.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path's segments, percent-decoded; `None` when one does not decode to UTF-8.
    pub fn segments(&self) -> Option<Vec<String>> {
        self.path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect()
    }
}

/// Why a request cannot be served; each maps to one status.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HttpError {
    #[error("request too large")]
    TooLarge,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("only HTTP/1.0 and HTTP/1.1 are served")]
    Version,
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::TooLarge => 413,
            HttpError::Malformed(_) => 400,
            HttpError::Version => 505,
        }
    }
}

/// One whole request from the start of `buf`, `Ok(None)` while more bytes are needed.
/// `max` bounds head and body together.
pub fn parse(buf: &[u8], max: usize) -> Result<Option<HttpRequest>, HttpError> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() >= max {
            Err(HttpError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| HttpError::Malformed("head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed("request line"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HttpError::Malformed("method"));
    }
    if !target.starts_with('/') {
        return Err(HttpError::Malformed("target must be a path"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HttpError::Version);
    }
    let mut headers = Vec::new();
    for l in lines {
        let (name, value) = l
            .split_once(':')
            .ok_or(HttpError::Malformed("header line"))?;
        if name.is_empty() || name.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(HttpError::Malformed("header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let find = |n: &str| {
        headers
            .iter()
            .find(|(h, _)| h == n)
            .map(|(_, v)| v.as_str())
    };
    if find("transfer-encoding").is_some() {
        return Err(HttpError::Malformed(
            "only Content-Length bodies are accepted",
        ));
    }
    let length = match find("content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| HttpError::Malformed("Content-Length"))?,
    };
    let start = head_end + 4;
    if start.saturating_add(length) > max {
        return Err(HttpError::TooLarge);
    }
    if buf.len() < start + length {
        return Ok(None);
    }
    let path = target.split('?').next().unwrap_or(target).to_string();
    Ok(Some(HttpRequest {
        method: method.to_string(),
        path,
        headers,
        body: buf[start..start + length].to_vec(),
    }))
}

/// A response with a JSON body; `extra` headers are `(name, value)`.
pub fn response(status: u16, body: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in extra {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

/// The reason phrase of the statuses the API uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Internal Server Error",
    }
}

/// Percent-decodes one path segment (`%3A` → `:`); `None` for bad escapes or non-UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_cut_when_whole() {
        let text = b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\r\nContent-Length: 2\r\n\r\n{}";
        for n in 0..text.len() {
            assert_eq!(parse(&text[..n], 1024), Ok(None), "prefix {n}");
        }
        let r = parse(text, 1024).unwrap().unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/reload");
        assert_eq!(r.header("authorization"), Some("Bearer abc"));
        assert_eq!(r.body, b"{}");
    }

    #[test]
    fn bad_requests_name_their_fault() {
        assert_eq!(
            parse(b"GET / HTTP/2\r\n\r\n", 1024),
            Err(HttpError::Version)
        );
        assert!(matches!(
            parse(b"GET http://x/ HTTP/1.1\r\n\r\n", 1024),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 1024),
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            parse(
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                1024
            ),
            Err(HttpError::Malformed(_))
        ));
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 1024),
            Err(HttpError::TooLarge)
        );
        assert_eq!(parse(&[b'a'; 2048], 1024), Err(HttpError::TooLarge));
        assert_eq!(HttpError::TooLarge.status(), 413);
    }

    #[test]
    fn segments_are_percent_decoded() {
        let r = parse(
            b"GET /v1/sessions/sip%3Ateam%40focus.example.com?x=1 HTTP/1.1\r\n\r\n",
            1024,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            r.segments().unwrap(),
            ["v1", "sessions", "sip:team@focus.example.com"]
        );
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%C3%A9"), Some("é".into()));
    }

    #[test]
    fn responses_carry_length_and_close() {
        let r = String::from_utf8(response(401, "{}", &[("WWW-Authenticate", "Bearer")])).unwrap();
        assert!(r.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
        assert!(r.contains("Content-Length: 2\r\n"));
        assert!(r.contains("Connection: close\r\n"));
        assert!(r.ends_with("WWW-Authenticate: Bearer\r\n\r\n{}"));
    }
}
