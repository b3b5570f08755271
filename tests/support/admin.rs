//! A small blocking HTTP/1.1 client for the admin API (and any other HTTP listener of the
//! focus): one request per connection, as the API answers.

use super::{Focus, WAIT};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    /// Header lines as `(lower-case name, value)`.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` with optional headers and body to `addr`.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpReply {
    let mut s = TcpStream::connect_timeout(&addr, WAIT).expect("connecting to the HTTP listener");
    s.set_read_timeout(Some(WAIT * 2)).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text)
        .expect("reading the HTTP answer");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    HttpReply {
        status,
        headers,
        body: body.to_string(),
    }
}

impl Focus {
    /// A request to the admin API, with `token` as bearer token when given.
    pub fn admin(&self, method: &str, path: &str, token: Option<&str>) -> HttpReply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("X-Operator", "e2e-test")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        http(self.admin_addr, method, path, &headers, "")
    }
}
