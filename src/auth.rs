//! SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760) for deployments without an
//! IMS core to assert identities. Sans-IO: the supervisor asks [`must_authenticate`] whether
//! a new request needs proof, hands it to an [`Authenticator`] with the time and a CSPRNG,
//! and answers the [`Verdict`] (`401` with challenges, `403`, `400`, or on to the session
//! with the proven address of record).
//!
//! | file             | what                                                          |
//! |------------------|---------------------------------------------------------------|
//! | `digest.rs`      | hashes, `Authorization` parsing, challenges, responses        |
//! | `nonce.rs`       | issued nonces, expiry, nonce-count replay defence             |
//! | `credentials.rs` | the `user:realm:ha1_md5[:ha1_sha256]` file                    |
//! | `limiter.rs`     | failed attempts per source address                            |
//!
//! What is proven: the request's From address of record, and only when its user part is the
//! authenticated username and its host is the realm or the focus's domain (anything else is
//! `403`): digest proves who knows the password, the From says who they claim to be, and the
//! two must agree.

mod credentials;
mod digest;
mod limiter;
mod nonce;

pub use credentials::{line as credentials_line, Credentials, CredentialsError, Ha1};
pub use digest::{
    challenge, digest_realm, responses_match, Algorithm, AuthorizationError,
    Challenge as DigestChallenge, DigestCredentials, ResponseInput,
};
pub use limiter::FailureLimiter;
pub use nonce::{NonceCheck, NonceStore};

use crate::sip::{Host, Uri};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The authenticator's settings (from `[auth]`).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub realm: String,
    /// Challenges offered, in this order (SHA-256 first by default).
    pub algorithms: Vec<Algorithm>,
    pub nonce_ttl: Duration,
    pub max_nonces: usize,
    /// Failures one source may have per window before it is refused outright.
    pub max_failures: u32,
    pub failure_window: Duration,
    pub max_failure_sources: usize,
    /// The focus's domain: besides the realm, the host a proven From may have.
    pub domain: String,
}

/// Why an attempt did not prove anything (a bounded metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    WrongPassword,
    /// The password was right but the nonce expired (answered `stale=true`).
    Stale,
    /// A nonce count used before.
    Replay,
    UnknownUser,
    Malformed,
    /// The source used up its failures.
    RateLimited,
    /// The password was right but the From names someone else.
    IdentityMismatch,
}

impl Failure {
    /// The `reason` label of `focus_auth_failures_total`.
    pub fn label(self) -> &'static str {
        match self {
            Failure::WrongPassword => "wrong_password",
            Failure::Stale => "stale",
            Failure::Replay => "replay",
            Failure::UnknownUser => "unknown_user",
            Failure::Malformed => "malformed",
            Failure::RateLimited => "rate_limited",
            Failure::IdentityMismatch => "identity_mismatch",
        }
    }
}

/// What the attempt earns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Proven: this address of record (the From's) is the sender.
    Proven { aor: String },
    /// `401` with these `WWW-Authenticate` values; `failure` is why the credentials sent (if
    /// any) were not enough.
    Challenge {
        challenges: Vec<String>,
        failure: Option<Failure>,
    },
    /// `403` with this Warning text.
    Forbidden {
        failure: Failure,
        warning: &'static str,
    },
    /// `400` with this reason phrase.
    Malformed(AuthorizationError),
}

impl Verdict {
    /// Counts the verdict in `focus_auth_*`.
    pub fn count(&self) {
        let failure = match self {
            Verdict::Proven { .. } => {
                metrics::counter!("focus_auth_success_total").increment(1);
                None
            }
            Verdict::Challenge { failure, .. } => {
                metrics::counter!("focus_auth_challenges_total").increment(1);
                *failure
            }
            Verdict::Forbidden { failure, .. } => Some(*failure),
            Verdict::Malformed(_) => Some(Failure::Malformed),
        };
        if let Some(f) = failure {
            metrics::counter!("focus_auth_failures_total", "reason" => f.label()).increment(1);
        }
    }
}

/// The parts of a request authentication looks at.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub method: &'a str,
    pub request_uri: &'a Uri,
    pub from: &'a Uri,
    /// Every `Authorization` value the request carries.
    pub authorization: Vec<&'a str>,
    pub source: IpAddr,
}

/// Nonces, failure counts and the credentials, decided on without I/O.
#[derive(Debug)]
pub struct Authenticator {
    settings: AuthSettings,
    credentials: Arc<Credentials>,
    nonces: NonceStore,
    failures: FailureLimiter,
}

/// True when the digest's `uri` names the Request-URI: the same text, or the same URI.
fn same_uri(digest_uri: &str, request: &Uri) -> bool {
    if digest_uri == request.as_str() {
        return true;
    }
    let Ok(u) = Uri::parse(digest_uri) else {
        return false;
    };
    let host = match (&u.host, &request.host) {
        (Some(a), Some(b)) => a.matches(b),
        (None, None) => true,
        _ => false,
    };
    host && u.scheme == request.scheme
        && u.user_unescaped() == request.user_unescaped()
        && u.port == request.port
        && u.params.len() == request.params.len()
        && u.params.iter().all(|p| {
            request.params.iter().any(|q| {
                q.name.eq_ignore_ascii_case(&p.name)
                    && q.value.as_deref().map(str::to_ascii_lowercase)
                        == p.value.as_deref().map(str::to_ascii_lowercase)
            })
        })
}

impl Authenticator {
    pub fn new(settings: AuthSettings, credentials: Arc<Credentials>) -> Authenticator {
        Authenticator {
            nonces: NonceStore::new(settings.nonce_ttl, settings.max_nonces),
            failures: FailureLimiter::new(
                settings.max_failures,
                settings.failure_window,
                settings.max_failure_sources,
            ),
            settings,
            credentials,
        }
    }

    /// Replaces the users (a reload); nonces and failure counts stay.
    pub fn set_credentials(&mut self, credentials: Arc<Credentials>) {
        self.credentials = credentials;
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Nonces held (tests, diagnostics).
    pub fn nonces_held(&self) -> usize {
        self.nonces.len()
    }

    fn challenge(&mut self, now: Instant, rng: &mut impl rand::Rng, stale: bool) -> Vec<String> {
        let nonce = self.nonces.issue(now, rng.random());
        self.settings
            .algorithms
            .iter()
            .map(|a| challenge(&self.settings.realm, &nonce, *a, stale))
            .collect()
    }

    fn fail(&mut self, source: IpAddr, now: Instant) {
        self.failures.record(source, now);
    }

    /// Judges one request.
    pub fn check(
        &mut self,
        now: Instant,
        attempt: &Attempt<'_>,
        rng: &mut impl rand::Rng,
    ) -> Verdict {
        if self.failures.blocked(attempt.source, now) {
            return Verdict::Forbidden {
                failure: Failure::RateLimited,
                warning: "Too many failed authentication attempts; try again later",
            };
        }
        // Ours among the request's Authorization headers (others may be for other realms).
        let ours = attempt
            .authorization
            .iter()
            .find(|v| digest_realm(v).as_deref() == Some(self.settings.realm.as_str()));
        let Some(value) = ours else {
            return Verdict::Challenge {
                challenges: self.challenge(now, rng, false),
                failure: None,
            };
        };
        let creds = match DigestCredentials::parse(value) {
            Ok(c) => c,
            Err(e) => {
                self.fail(attempt.source, now);
                return Verdict::Malformed(e);
            }
        };
        if !self.settings.algorithms.contains(&creds.algorithm) {
            self.fail(attempt.source, now);
            return Verdict::Malformed(AuthorizationError::Algorithm);
        }
        if !same_uri(&creds.uri, attempt.request_uri) {
            self.fail(attempt.source, now);
            return Verdict::Malformed(AuthorizationError::Uri);
        }
        let credentials = self.credentials.clone();
        let ha1 = credentials
            .lookup(&creds.username, &self.settings.realm)
            .and_then(|h| h.get(creds.algorithm));
        let Some(ha1) = ha1 else {
            // Answered like a wrong password: whether a user exists is nobody's business.
            self.fail(attempt.source, now);
            return Verdict::Challenge {
                challenges: self.challenge(now, rng, false),
                failure: Some(Failure::UnknownUser),
            };
        };
        if !creds.verify(ha1, attempt.method) {
            self.fail(attempt.source, now);
            return Verdict::Challenge {
                challenges: self.challenge(now, rng, false),
                failure: Some(Failure::WrongPassword),
            };
        }
        match self.nonces.consume(&creds.nonce, creds.nc, now) {
            NonceCheck::Fresh => {}
            NonceCheck::Stale => {
                return Verdict::Challenge {
                    challenges: self.challenge(now, rng, true),
                    failure: Some(Failure::Stale),
                }
            }
            NonceCheck::Replay => {
                self.fail(attempt.source, now);
                return Verdict::Challenge {
                    challenges: self.challenge(now, rng, false),
                    failure: Some(Failure::Replay),
                };
            }
        }
        if !self.names_user(attempt.from, &creds.username) {
            self.fail(attempt.source, now);
            return Verdict::Forbidden {
                failure: Failure::IdentityMismatch,
                warning: "The From does not name the authenticated user",
            };
        }
        Verdict::Proven {
            aor: attempt.from.aor(),
        }
    }

    /// True when `from` is `sip:username@realm` or `sip:username@domain`.
    fn names_user(&self, from: &Uri, username: &str) -> bool {
        let Some(host) = &from.host else {
            return false;
        };
        let host_ok = [&self.settings.realm, &self.settings.domain]
            .iter()
            .filter_map(|h| Host::parse(h).ok())
            .any(|h| h.matches(host));
        from.is_sip() && host_ok && from.user_unescaped().as_deref() == Some(username)
    }
}

#[cfg(test)]
mod tests;
