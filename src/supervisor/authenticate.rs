//! Digest authentication at the door: before a new request is routed (and before any credit
//! check), the supervisor asks whether it must prove its sender (`auth.mode`), and either
//! answers it here (`401` with challenges, `403`, `400`) or passes it on with the proven
//! address of record in `IncomingRequest::authenticated`, the only place that field is set.

use super::Supervisor;
use crate::auth::{Attempt, Authenticator, Verdict};
use crate::config::{AuthMode, Config, JoinRule};
use crate::endpoint::IncomingRequest;
use crate::sip::{HeaderName, Method, Request};
use crate::sip::{Status, WarnCode};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// Whether a new (out-of-dialog) request must carry proof. Requests from trusted hosts never
/// do (the core vouches for them), nor ACK and CANCEL (RFC 3261 §22.1: they cannot be
/// challenged). In-dialog requests ride on the dialog an authenticated request created.
pub fn must_authenticate(
    mode: AuthMode,
    method: &Method,
    trusted_source: bool,
    group_join: Option<JoinRule>,
) -> bool {
    if trusted_source || matches!(method, Method::Ack | Method::Cancel) {
        return false;
    }
    match mode {
        AuthMode::Off => false,
        AuthMode::MembersOnly => {
            matches!(
                method,
                Method::Invite | Method::Subscribe | Method::Refer | Method::Message
            ) && matches!(
                group_join,
                Some(JoinRule::MembersOnly | JoinRule::InvitedOnly)
            )
        }
        AuthMode::Untrusted => true,
    }
}

/// The authenticator of a running focus, and what it needs to reload its users.
pub struct AuthGate {
    mode: AuthMode,
    authenticator: Mutex<Authenticator>,
}

impl AuthGate {
    /// The gate for `config`, or `None` when `auth.mode` is off. Fails when the credentials
    /// file cannot be used (validation checked it, but it may have changed since).
    pub fn new(config: &Config) -> Result<Option<AuthGate>, String> {
        if config.auth.mode == AuthMode::Off {
            return Ok(None);
        }
        let credentials = config.auth.load_credentials(&config.focus)?;
        Ok(Some(AuthGate {
            mode: config.auth.mode,
            authenticator: Mutex::new(Authenticator::new(
                config.auth.settings(&config.focus),
                Arc::new(credentials),
            )),
        }))
    }

    /// Re-reads the credentials file (a reload: users added or removed); on failure the
    /// users in force stay and the error is logged.
    pub fn reload(&self, config: &Config) {
        match config.auth.load_credentials(&config.focus) {
            Ok(c) => self.lock().set_credentials(Arc::new(c)),
            Err(e) => {
                tracing::error!(error = %e, "auth.credentials not reloaded; the users in force stay")
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Authenticator> {
        self.authenticator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Judges a request from `source`.
    fn check(&self, req: &Request, source: IpAddr) -> Verdict {
        let attempt = Attempt {
            method: req.method.as_str(),
            request_uri: &req.uri,
            from: &req.from.uri,
            authorization: req.headers.get_all(HeaderName::Authorization).collect(),
            source,
        };
        self.lock()
            .check(Instant::now(), &attempt, &mut rand::rng())
    }
}

impl Supervisor {
    /// Passes `incoming` on (authenticated when it had to be), or answers it and returns
    /// `None`.
    pub(super) fn authenticate(&self, incoming: IncomingRequest) -> Option<IncomingRequest> {
        let Some(gate) = &self.settings.auth else {
            return Some(incoming);
        };
        let req = incoming.request.clone();
        let source = incoming.source.addr.ip();
        let join = {
            let catalog = self.catalog();
            let trusted = catalog.template.trust.trusts(source);
            let join = self
                .is_for_focus(&req)
                .then(|| req.uri.user_unescaped())
                .flatten()
                .and_then(|u| catalog.groups.get(u.as_ref()))
                .map(|g| g.settings.policy.join);
            if !must_authenticate(gate.mode, &req.method, trusted, join) {
                return Some(incoming);
            }
            join
        };
        self.judge(gate, incoming, join)
    }

    /// Checks `incoming`'s credentials and answers it (`None`: a `401` challenge, `403` or
    /// `400`), or passes it on proven. Also for a request that needs a proven identity
    /// whatever `auth.mode` says of it (a chargeable request from an outsider).
    pub(super) fn judge(
        &self,
        gate: &AuthGate,
        mut incoming: IncomingRequest,
        join: Option<crate::config::JoinRule>,
    ) -> Option<IncomingRequest> {
        let req = incoming.request.clone();
        let source = incoming.source.addr.ip();
        let verdict = gate.check(&req, source);
        verdict.count();
        match verdict {
            Verdict::Proven { aor } => {
                tracing::debug!(%aor, %source, ?join, "digest authentication proved the sender");
                incoming.authenticated = Some(aor.into());
                Some(incoming)
            }
            Verdict::Challenge {
                challenges,
                failure,
            } => {
                if let Some(f) = failure {
                    tracing::info!(%source, reason = f.label(), "digest authentication failed");
                }
                incoming
                    .txn
                    .reply_with(&req, Status::UNAUTHORIZED, "Unauthorized", |w| {
                        for c in &challenges {
                            w.header(HeaderName::WwwAuthenticate, c);
                        }
                    });
                None
            }
            Verdict::Forbidden { failure, warning } => {
                tracing::info!(%source, reason = failure.label(), "digest authentication refused");
                let warning = format!(
                    "{} {} \"{warning}\"",
                    WarnCode::MISCELLANEOUS,
                    self.settings.domain
                );
                incoming
                    .txn
                    .reply_with(&req, Status::FORBIDDEN, "Forbidden", |w| {
                        w.header(HeaderName::Warning, &warning);
                    });
                None
            }
            Verdict::Malformed(e) => {
                tracing::info!(%source, error = %e, "malformed digest credentials");
                incoming
                    .txn
                    .reply_with(&req, Status::BAD_REQUEST, &e.to_string(), |_| {});
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_must_authenticate() {
        use AuthMode::*;
        let open = Some(JoinRule::Open);
        let members = Some(JoinRule::MembersOnly);
        let invited = Some(JoinRule::InvitedOnly);
        assert!(!must_authenticate(Off, &Method::Invite, false, members));
        assert!(must_authenticate(
            MembersOnly,
            &Method::Invite,
            false,
            members
        ));
        assert!(must_authenticate(
            MembersOnly,
            &Method::Subscribe,
            false,
            invited
        ));
        assert!(must_authenticate(
            MembersOnly,
            &Method::Refer,
            false,
            members
        ));
        assert!(!must_authenticate(
            MembersOnly,
            &Method::Options,
            false,
            members
        ));
        assert!(!must_authenticate(
            MembersOnly,
            &Method::Invite,
            false,
            open
        ));
        assert!(!must_authenticate(
            MembersOnly,
            &Method::Invite,
            false,
            None
        ));
        assert!(!must_authenticate(
            MembersOnly,
            &Method::Invite,
            true,
            members
        ));
        assert!(must_authenticate(Untrusted, &Method::Invite, false, None));
        assert!(must_authenticate(Untrusted, &Method::Options, false, open));
        assert!(!must_authenticate(Untrusted, &Method::Invite, true, None));
        assert!(!must_authenticate(Untrusted, &Method::Ack, false, None));
        assert!(!must_authenticate(Untrusted, &Method::Cancel, false, None));
    }
}
