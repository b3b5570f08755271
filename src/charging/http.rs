//! The credit server's URL, checked once at start, and the response the credit check
//! decides on. The HTTP itself is hyper ([`crate::http::client`]).

pub use crate::config::{HttpUrl, UrlError};

/// The URL as hyper takes it (the type itself is a setting's, in `config`).
impl HttpUrl {
    pub fn uri(&self) -> Result<hyper::Uri, hyper::http::uri::InvalidUri> {
        self.to_string().parse()
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub body: Vec<u8>,
}
