//! [`CreditControl`] over HTTP: one JSON POST per check to the configured endpoint.
//!
//! The contract with the credit server: the request body is a [`CreditRequest`]
//! (`{"subject", "kind": "session"|"message", "conference", "size"?}`); `200` with
//! `{"granted": true}` grants, `200` with `{"granted": false, "reason": "..."}` or a `402` /
//! `403` denies; anything else, or no answer within the timeout, is unavailable.

use super::credit::{BoxFuture, CreditControl, CreditDecision, CreditRequest};
use super::http::{self, HttpUrl, Response};
use super::ChargingError;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Longest denial reason passed on (it ends up in a Warning header).
const MAX_REASON: usize = 128;

/// Shown when a denial carries no reason.
const DEFAULT_REASON: &str = "Credit denied";

/// The HTTP credit check.
#[derive(Debug, Clone)]
pub struct HttpCreditControl {
    url: Arc<HttpUrl>,
    /// Bounds the whole exchange (connect, send, read): a slow server is an unavailable one.
    timeout: Duration,
}

impl HttpCreditControl {
    pub fn new(url: &str, timeout: Duration) -> Result<HttpCreditControl, ChargingError> {
        let url = HttpUrl::parse(url).map_err(|e| ChargingError::Url(e.to_string()))?;
        Ok(HttpCreditControl {
            url: Arc::new(url),
            timeout,
        })
    }
}

impl CreditControl for HttpCreditControl {
    fn check(&self, req: CreditRequest) -> BoxFuture<'static, CreditDecision> {
        let url = self.url.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let Ok(body) = serde_json::to_vec(&req) else {
                return CreditDecision::Unavailable;
            };
            match tokio::time::timeout(timeout, http::post(&url, &body)).await {
                Ok(Ok(response)) => decide(&response),
                Ok(Err(e)) => {
                    tracing::debug!(%url, error = %e, "credit check failed");
                    CreditDecision::Unavailable
                }
                Err(_) => {
                    tracing::debug!(%url, ?timeout, "credit check timed out");
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
