//! Online charging: a credit check before a session or a message.
//!
//! [`CreditControl`] is the seam: [`HttpCreditControl`](super::HttpCreditControl) asks a
//! credit-control server, [`NoCredit`] grants everything. [`CreditGate`] is what the session
//! layer holds: it runs the check, counts the outcome and turns it into an admission or a
//! typed refusal (402 when credit is denied).

use crate::config::{ChargingConfig, OnUnavailable};
use crate::policy::Refusal;
use crate::sip::{Status, WarnCode};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// A boxed, sendable future: the trait stays object-safe without an async-trait crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Asks whether a subject may be served. Implementations never fail: a server that cannot
/// answer is [`CreditDecision::Unavailable`], and the gate applies `on_unavailable`.
pub trait CreditControl: Send + Sync {
    fn check(&self, req: CreditRequest) -> BoxFuture<'static, CreditDecision>;
}

/// What is about to be served, and to whom. Serialized as the body of the HTTP check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreditRequest {
    /// The identity to charge (the real one, not an anonymous alias).
    pub subject: String,
    pub kind: CreditKind,
    /// The conference or group URI (for a message to an ad-hoc URI list, its Request-URI).
    pub conference: String,
    /// Message size in bytes, for a message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// What the credit is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CreditKind {
    /// Joining (or starting) a group session.
    Session,
    /// A group message.
    Message,
}

/// The credit server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreditDecision {
    Granted,
    /// Refused, with the server's reason (sanitized: it is shown in a Warning header).
    Denied {
        reason: String,
    },
    /// No usable answer (unreachable, timeout, error, garbage).
    Unavailable,
}

impl CreditDecision {
    /// The `outcome` label of `focus_credit_checks_total`.
    pub fn label(&self) -> &'static str {
        match self {
            CreditDecision::Granted => "granted",
            CreditDecision::Denied { .. } => "denied",
            CreditDecision::Unavailable => "unavailable",
        }
    }

    /// Admission: denied is `402 Payment Required`; unavailable is admitted or, with
    /// `on_unavailable = "deny"`, `503` (the user is not out of credit, the check is out of
    /// service, so the caller may add Retry-After).
    pub fn verdict(&self, on_unavailable: OnUnavailable) -> Result<(), Refusal> {
        match self {
            CreditDecision::Granted => Ok(()),
            CreditDecision::Denied { reason } => Err(Refusal {
                status: Status::PAYMENT_REQUIRED,
                label: "credit_denied",
                code: WarnCode::MISCELLANEOUS,
                warning: reason.clone(),
            }),
            CreditDecision::Unavailable => match on_unavailable {
                OnUnavailable::Allow => Ok(()),
                OnUnavailable::Deny => Err(Refusal {
                    status: crate::overload::Shed::STATUS,
                    label: "credit_unavailable",
                    code: WarnCode::MISCELLANEOUS,
                    warning: "Credit control unavailable".into(),
                }),
            },
        }
    }
}

/// Grants everything: online charging is off.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCredit;

impl CreditControl for NoCredit {
    fn check(&self, _req: CreditRequest) -> BoxFuture<'static, CreditDecision> {
        Box::pin(std::future::ready(CreditDecision::Granted))
    }
}

/// The credit check as the session layer uses it. Cheap to clone.
#[derive(Clone)]
pub struct CreditGate {
    control: Arc<dyn CreditControl>,
    on_unavailable: OnUnavailable,
    /// Off: checks go to [`NoCredit`] and are not counted (no credit server was asked).
    online: bool,
    /// Checks in flight (`charging.online_max_pending`): a slow credit server must not let
    /// a burst of joins pile up unbounded tasks and connections; past it, `503` at once.
    pending: Option<Arc<Semaphore>>,
}

impl CreditGate {
    /// From `[charging]` (and `[tls] ca_file`, the roots an `https` server is verified
    /// against besides `online_ca_file`): HTTP when `online_url` is set, otherwise
    /// [`NoCredit`].
    pub fn from_config(
        config: &ChargingConfig,
        tls_ca_file: &str,
    ) -> Result<CreditGate, super::ChargingError> {
        if config.online_url.is_empty() {
            return Ok(CreditGate::disabled());
        }
        let http = super::HttpCreditControl::from_config(config, tls_ca_file)?;
        Ok(CreditGate::new(Arc::new(http), config.on_unavailable)
            .with_max_pending(config.online_max_pending))
    }

    /// Bounds the checks in flight; beyond `max`, [`CreditGate::admit`] refuses with `503`.
    pub fn with_max_pending(mut self, max: usize) -> CreditGate {
        self.pending = Some(Arc::new(Semaphore::new(max)));
        self
    }

    /// A gate over any implementation (tests, other protocols).
    pub fn new(control: Arc<dyn CreditControl>, on_unavailable: OnUnavailable) -> CreditGate {
        CreditGate {
            control,
            on_unavailable,
            online: true,
            pending: None,
        }
    }

    /// Online charging off: everything is admitted.
    pub fn disabled() -> CreditGate {
        CreditGate {
            control: Arc::new(NoCredit),
            on_unavailable: OnUnavailable::Allow,
            online: false,
            pending: None,
        }
    }

    /// Whether a credit server is asked at all.
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// Checks credit and decides admission. `'static`, so an actor can spawn it.
    pub fn admit(&self, req: CreditRequest) -> BoxFuture<'static, Result<(), Refusal>> {
        let permit = match &self.pending {
            Some(pending) => match pending.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    metrics::counter!("focus_credit_checks_total", "outcome" => "busy")
                        .increment(1);
                    return Box::pin(std::future::ready(Err(Refusal {
                        status: crate::overload::Shed::STATUS,
                        label: "credit_busy",
                        code: WarnCode::MISCELLANEOUS,
                        warning: "Credit control busy".into(),
                    })));
                }
            },
            None => None,
        };
        let check = self.control.check(req);
        let on_unavailable = self.on_unavailable;
        let online = self.online;
        Box::pin(async move {
            let started = std::time::Instant::now();
            let decision = check.await;
            drop(permit);
            if online {
                metrics::counter!("focus_credit_checks_total", "outcome" => decision.label())
                    .increment(1);
                metrics::histogram!(
                    "focus_credit_check_duration_seconds",
                    "outcome" => decision.label()
                )
                .record(started.elapsed().as_secs_f64());
            }
            decision.verdict(on_unavailable)
        })
    }
}

impl std::fmt::Debug for CreditGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreditGate")
            .field("online", &self.online)
            .field("on_unavailable", &self.on_unavailable)
            .finish_non_exhaustive()
    }
}
