//! [`CreditControl`] over HTTP: one JSON POST per check to the configured endpoint, on
//! hyper's pooled client ([`crate::http::client`]): connections are kept alive between
//! checks, `https://` servers are verified (chain and name) against `tls.ca_file` and
//! `charging.online_ca_file`, and a bearer token or basic credentials go with every request.
//!
//! The contract with the credit server: the request body is a [`CreditRequest`]
//! (`{"subject", "kind": "session"|"message", "conference", "size"?}`); `200` with
//! `{"granted": true}` grants, `200` with `{"granted": false, "reason": "..."}` or a `402` /
//! `403` denies; anything else, no answer within the timeout, or a server that fails TLS
//! verification, is unavailable.

use super::credit::{BoxFuture, CreditControl, CreditDecision, CreditRequest};
use super::http::{HttpUrl, Response};
use super::ChargingError;
use crate::config::ChargingConfig;
use crate::http::client::{self, ClientSettings, PooledClient};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Longest denial reason passed on (it ends up in a Warning header).
const MAX_REASON: usize = 128;

/// Shown when a denial carries no reason.
const DEFAULT_REASON: &str = "Credit denied";

/// Most bytes read of a response body: a credit answer is a few dozen.
pub const MAX_RESPONSE: usize = 16 * 1024;

/// The HTTP credit check.
#[derive(Clone)]
pub struct HttpCreditControl {
    url: Arc<HttpUrl>,
    uri: hyper::Uri,
    client: PooledClient,
    /// The `Authorization` value, when credentials are configured.
    authorization: Option<HeaderValue>,
    /// Bounds the whole exchange (connect, TLS, send, read): a slow server is an unavailable
    /// one.
    timeout: Duration,
}

impl std::fmt::Debug for HttpCreditControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCreditControl")
            .field("url", &self.url.to_string())
            .field("authorization", &self.authorization.is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpCreditControl {
    /// A plain check of `url` with no credentials and no roots of its own (an `https` URL
    /// then fails every check).
    pub fn new(url: &str, timeout: Duration) -> Result<HttpCreditControl, ChargingError> {
        let config = ChargingConfig {
            online_url: url.to_string(),
            online_timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            ..ChargingConfig::default()
        };
        HttpCreditControl::from_config(&config, "")
    }

    /// From `[charging]`, with `[tls] ca_file` as roots besides `online_ca_file`. Secret
    /// files are read here, once: a reload that changes them needs a restart, as every
    /// `[charging]` change does.
    pub fn from_config(
        config: &ChargingConfig,
        tls_ca_file: &str,
    ) -> Result<HttpCreditControl, ChargingError> {
        let url =
            HttpUrl::parse(&config.online_url).map_err(|e| ChargingError::Url(e.to_string()))?;
        let uri = url.uri().map_err(|e| ChargingError::Url(e.to_string()))?;
        let roots: Vec<&str> = [tls_ca_file, config.online_ca_file.as_str()]
            .into_iter()
            .filter(|f| !f.is_empty())
            .collect();
        let tls = if roots.is_empty() {
            None
        } else {
            let config = crate::transport::tls::client_config_from(&roots)
                .map_err(|e| ChargingError::CreditClient(e.to_string()))?;
            Some(tokio_rustls::TlsConnector::from(config))
        };
        let authorization = authorization(config)?;
        if authorization.is_some() && !url.is_https() {
            tracing::warn!(url = %url, "credit-control credentials are sent over plain http");
        }
        let timeout = Duration::from_millis(config.online_timeout_ms);
        let client = client::pooled(ClientSettings {
            tls,
            service: "credit",
            idle_timeout: Duration::from_millis(config.online_idle_timeout_ms),
            max_idle: config.online_max_pending,
            connect_timeout: timeout,
        });
        Ok(HttpCreditControl {
            url: Arc::new(url),
            uri,
            client,
            authorization,
            timeout,
        })
    }
}

/// The `Authorization` header the settings ask for.
fn authorization(config: &ChargingConfig) -> Result<Option<HeaderValue>, ChargingError> {
    let secret = |inline: &str, file: &str, key: &str| -> Result<String, ChargingError> {
        if file.is_empty() {
            return Ok(inline.to_string());
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| ChargingError::CreditClient(format!("charging.{key} {file}: {e}")))?;
        Ok(text.trim_end_matches(['\r', '\n']).to_string())
    };
    let token = secret(
        &config.online_token,
        &config.online_token_file,
        "online_token_file",
    )?;
    let value = if !token.is_empty() {
        format!("Bearer {token}")
    } else if !config.online_user.is_empty() {
        let password = secret(
            &config.online_password,
            &config.online_password_file,
            "online_password_file",
        )?;
        format!(
            "Basic {}",
            base64(format!("{}:{password}", config.online_user).as_bytes())
        )
    } else {
        return Ok(None);
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| {
        ChargingError::CreditClient(
            "the credit-control credentials are not a valid header value".into(),
        )
    })?;
    value.set_sensitive(true);
    Ok(Some(value))
}

/// Standard base64 with padding (RFC 4648 §4), for basic credentials.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Why an exchange gave no response to decide on.
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    #[error("request: {0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    #[error("building the request: {0}")]
    Build(#[from] hyper::http::Error),
    #[error("response body: {0}")]
    Body(String),
}

impl HttpCreditControl {
    /// POSTs `body` and reads the whole (bounded) response.
    async fn exchange(&self, body: Vec<u8>) -> Result<Response, ExchangeError> {
        let mut request = hyper::Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json");
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let request = request.body(Full::new(Bytes::from(body)))?;
        let response = self.client.request(request).await?;
        let status = response.status();
        let reason = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .and_then(|r| std::str::from_utf8(r.as_bytes()).ok())
            .or(status.canonical_reason())
            .unwrap_or("")
            .to_string();
        let body = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| ExchangeError::Body(e.to_string()))?
            .to_bytes();
        Ok(Response {
            status: status.as_u16(),
            reason,
            body: body.to_vec(),
        })
    }
}

impl CreditControl for HttpCreditControl {
    fn check(&self, req: CreditRequest) -> BoxFuture<'static, CreditDecision> {
        let this = self.clone();
        Box::pin(async move {
            let Ok(body) = serde_json::to_vec(&req) else {
                return CreditDecision::Unavailable;
            };
            match tokio::time::timeout(this.timeout, this.exchange(body)).await {
                Ok(Ok(response)) => decide(&response),
                Ok(Err(e)) => {
                    tracing::debug!(url = %this.url, error = %e, "credit check failed");
                    CreditDecision::Unavailable
                }
                Err(_) => {
                    tracing::debug!(url = %this.url, timeout = ?this.timeout, "credit check timed out");
                    CreditDecision::Unavailable
                }
            }
        })
    }
}

/// The JSON answer; unknown fields are ignored so the server may add its own.
#[derive(Deserialize)]
struct Answer {
    /// Required in a 200; a 402/403 may carry only a reason.
    #[serde(default)]
    granted: Option<bool>,
    #[serde(default)]
    reason: Option<String>,
}

/// Maps a complete response to a decision.
pub(crate) fn decide(response: &Response) -> CreditDecision {
    let answer = serde_json::from_slice::<Answer>(&response.body).ok();
    match (response.status, answer) {
        (
            200,
            Some(Answer {
                granted: Some(true),
                ..
            }),
        ) => CreditDecision::Granted,
        (
            200,
            Some(Answer {
                granted: Some(false),
                reason,
            }),
        ) => denied(reason.as_deref()),
        (402 | 403, answer) => {
            let reason = answer
                .and_then(|a| a.reason)
                .or_else(|| (!response.reason.is_empty()).then(|| response.reason.clone()));
            denied(reason.as_deref())
        }
        _ => CreditDecision::Unavailable,
    }
}

fn denied(reason: Option<&str>) -> CreditDecision {
    let reason = reason.map(sanitize).filter(|r| !r.is_empty());
    CreditDecision::Denied {
        reason: reason.unwrap_or_else(|| DEFAULT_REASON.to_string()),
    }
}

/// Keeps a reason safe for a SIP Warning header's quoted text: no controls, quotes or
/// backslashes, at most [`MAX_REASON`] characters.
fn sanitize(reason: &str) -> String {
    reason
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .take(MAX_REASON)
        .collect::<String>()
        .trim()
        .to_string()
}
