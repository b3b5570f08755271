//! Routes and handlers of the admin API. Every request is authorized (except the probes),
//! counted in `focus_admin_requests_total{action,status}` and logged with who asked: the
//! peer address and the free-text `X-Operator` header, when given.

use super::AdminAuth;
use crate::http::server::{self, Connection, Reply};
use crate::reload::{Reloader, Trigger};
use crate::session::{AdminCommand, AdminRefusal, SessionView};
use crate::supervisor::{AdminError, Supervisor};
use hyper::body::Incoming;
use hyper::Request;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// What the handlers work with.
pub struct AdminApi {
    supervisor: Arc<Supervisor>,
    /// `None` when the focus cannot reload (tests that run a server in-process).
    reloader: Option<Arc<Reloader>>,
    auth: Arc<AdminAuth>,
}

/// A route, decided from method and path alone.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Health,
    Ready,
    List,
    Show(String),
    End(String),
    Lock(String, bool),
    Remove(String, String),
    Reload,
    /// The path exists, the method does not: 405 with these.
    Method(&'static str),
    NotFound,
}

impl Route {
    fn of(method: &str, segments: &[String]) -> Route {
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (method, s.as_slice()) {
            ("GET", ["health"]) => Route::Health,
            ("GET", ["ready"]) => Route::Ready,
            ("GET", ["v1", "sessions"]) => Route::List,
            ("GET", ["v1", "sessions", id]) => Route::Show(id.to_string()),
            ("DELETE", ["v1", "sessions", id]) => Route::End(id.to_string()),
            ("POST", ["v1", "sessions", id, "lock"]) => Route::Lock(id.to_string(), true),
            ("POST", ["v1", "sessions", id, "unlock"]) => Route::Lock(id.to_string(), false),
            ("DELETE", ["v1", "sessions", id, "participants", who]) => {
                Route::Remove(id.to_string(), who.to_string())
            }
            ("POST", ["v1", "reload"]) => Route::Reload,
            (_, ["health"] | ["ready"] | ["v1", "sessions"]) => Route::Method("GET"),
            (_, ["v1", "sessions", _]) => Route::Method("GET, DELETE"),
            (_, ["v1", "sessions", _, "lock" | "unlock"] | ["v1", "reload"]) => {
                Route::Method("POST")
            }
            (_, ["v1", "sessions", _, "participants", _]) => Route::Method("DELETE"),
            _ => Route::NotFound,
        }
    }

    /// The metric label.
    fn action(&self) -> &'static str {
        match self {
            Route::Health => "health",
            Route::Ready => "ready",
            Route::List => "list",
            Route::Show(_) => "show",
            Route::End(_) => "end",
            Route::Lock(_, true) => "lock",
            Route::Lock(_, false) => "unlock",
            Route::Remove(..) => "remove",
            Route::Reload => "reload",
            Route::Method(_) | Route::NotFound => "unknown",
        }
    }
}

/// Counts one answered request.
pub(super) fn count(action: &'static str, status: u16) {
    metrics::counter!("focus_admin_requests_total", "action" => action, "status" => status_label(status))
        .increment(1);
}

/// Bounded status labels.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        400 => "400",
        401 => "401",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        413 => "413",
        422 => "422",
        431 => "431",
        503 => "503",
        504 => "504",
        505 => "505",
        _ => "other",
    }
}

/// `{"error": message}`.
fn error_body(message: &str) -> String {
    json!({ "error": message }).to_string()
}

const JSON: &str = "application/json";

/// A request refused before routing: counted under `unknown`.
fn refuse(status: u16, message: &str) -> Reply {
    count("unknown", status);
    server::reply(status, JSON, error_body(message), &[])
}

/// The path's segments, percent-decoded; `None` when one does not decode to UTF-8.
fn segments(path: &str) -> Option<Vec<String>> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

/// Percent-decodes one path segment (`%3A` → `:`); `None` for bad escapes or non-UTF-8.
fn percent_decode(s: &str) -> Option<String> {
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

/// A handler's answer before it is written.
struct Answer {
    status: u16,
    body: String,
    extra: Vec<(&'static str, &'static str)>,
}

impl Answer {
    fn json(status: u16, value: serde_json::Value) -> Answer {
        Answer {
            status,
            body: value.to_string(),
            extra: Vec::new(),
        }
    }

    fn error(status: u16, message: &str) -> Answer {
        Answer {
            status,
            body: error_body(message),
            extra: Vec::new(),
        }
    }
}

impl AdminApi {
    pub fn new(
        supervisor: Arc<Supervisor>,
        reloader: Option<Arc<Reloader>>,
        auth: Arc<AdminAuth>,
    ) -> AdminApi {
        AdminApi {
            supervisor,
            reloader,
            auth,
        }
    }

    /// Answers one request. Bodies come by `Content-Length` only (no admin request needs
    /// more, and a request framed both ways is how requests are smuggled past proxies,
    /// RFC 9112 §6.1); the body is read, bounded, before anything is decided.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        conn: Connection,
        timeout: Duration,
    ) -> Reply {
        if req.headers().contains_key(hyper::header::TRANSFER_ENCODING) {
            return refuse(
                400,
                "malformed request: only Content-Length bodies are accepted",
            );
        }
        let method = req.method().as_str().to_string();
        let path = req.uri().path().to_string();
        let header = |name: hyper::header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let authorization = header(hyper::header::AUTHORIZATION);
        let operator = header(hyper::header::HeaderName::from_static("x-operator"));
        if let Err(e) = server::read_body(req, &conn).await {
            return refuse(e.status(), &e.to_string());
        }
        let peer = conn.peer;
        let route = match segments(&path) {
            Some(segments) => Route::of(&method, &segments),
            None => Route::NotFound,
        };
        let who = match operator.as_deref().map(operator_name) {
            Some(name) if !name.is_empty() => format!("{name} ({peer})"),
            _ => peer.to_string(),
        };
        let probe = matches!(route, Route::Health | Route::Ready);
        let answer = if !probe && !self.auth.admits(authorization.as_deref()) {
            Answer {
                extra: vec![("WWW-Authenticate", "Bearer")],
                ..Answer::error(401, "a valid bearer token is required")
            }
        } else {
            self.run(&route, &who, timeout).await
        };
        count(route.action(), answer.status);
        if !probe {
            let level_info = answer.status < 400 || answer.status == 404;
            let target = match &route {
                Route::Show(id) | Route::End(id) | Route::Lock(id, _) => id.as_str(),
                Route::Remove(id, _) => id.as_str(),
                _ => "",
            };
            if level_info {
                tracing::info!(action = route.action(), %who, session = target, status = answer.status, "admin request");
            } else {
                crate::warn_limited!(action = route.action(), %who, session = target, status = answer.status, "admin request refused");
            }
        }
        let mut extra = answer.extra;
        if let Route::Method(allow) = route {
            extra.push(("Allow", allow));
        }
        server::reply(answer.status, JSON, answer.body, &extra)
    }

    async fn run(&self, route: &Route, who: &str, timeout: Duration) -> Answer {
        match route {
            // Still 200 during an XDMS outage: the focus serves the last good groups, and a
            // liveness probe must not restart it for a peer's fault.
            Route::Health => match self.supervisor.xdms_health() {
                None => Answer::json(200, json!({ "status": "ok" })),
                Some(x) => {
                    let x = x.snapshot();
                    let status = if x.reachable { "ok" } else { "degraded" };
                    Answer::json(200, json!({ "status": status, "xdms": x }))
                }
            },
            Route::Ready => {
                if self.supervisor.is_draining() {
                    Answer::json(503, json!({ "ready": false, "reason": "draining" }))
                } else if self.supervisor.xdms_health().is_some_and(|x| !x.is_ready()) {
                    // The XDMS groups are not known yet (no fetch, no cache, grace running).
                    Answer::json(503, json!({ "ready": false, "reason": "xdms" }))
                } else {
                    Answer::json(200, json!({ "ready": true }))
                }
            }
            Route::List => self.list(timeout).await,
            Route::Show(id) => {
                self.command(id, AdminCommand::Describe { roster: true }, timeout)
                    .await
            }
            Route::End(id) => self.command(id, AdminCommand::End, timeout).await,
            Route::Lock(id, lock) => self.command(id, AdminCommand::Lock(*lock), timeout).await,
            Route::Remove(id, target) => {
                let command = AdminCommand::Remove {
                    target: target.clone(),
                };
                self.command(id, command, timeout).await
            }
            Route::Reload => self.reload(who).await,
            Route::Method(_) => Answer::error(405, "method not allowed on this path"),
            Route::NotFound => Answer::error(404, "no such path"),
        }
    }

    async fn list(&self, timeout: Duration) -> Answer {
        let mut waits = Vec::new();
        let mut busy = 0usize;
        for key in self.supervisor.session_keys() {
            match self
                .supervisor
                .admin_command(&key, AdminCommand::Describe { roster: false })
            {
                Ok(rx) => waits.push(rx),
                Err(AdminError::Busy) => busy += 1,
                // Ended since it was listed.
                Err(AdminError::NoSession) => {}
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut sessions: Vec<SessionView> = Vec::with_capacity(waits.len());
        for rx in waits {
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(Ok(Ok(view))) => sessions.push(view),
                Ok(_) => {}
                Err(_) => busy += 1,
            }
        }
        sessions.sort_by(|a, b| a.uri.cmp(&b.uri));
        Answer::json(200, json!({ "sessions": sessions, "unanswered": busy }))
    }

    async fn command(&self, id: &str, command: AdminCommand, timeout: Duration) -> Answer {
        let key = self.supervisor.session_key(id);
        let rx = match self.supervisor.admin_command(&key, command) {
            Ok(rx) => rx,
            Err(AdminError::NoSession) => return Answer::error(404, "no such session"),
            Err(AdminError::Busy) => {
                return Answer {
                    extra: vec![("Retry-After", "1")],
                    ..Answer::error(503, "the session is busy, try again")
                }
            }
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(view))) => Answer::json(200, json!(view)),
            Ok(Ok(Err(AdminRefusal::NoParticipant))) => {
                Answer::error(404, "no such participant in this session")
            }
            Ok(Ok(Err(refusal @ AdminRefusal::Policy(_)))) => {
                Answer::error(409, &refusal.to_string())
            }
            Ok(Err(_)) => Answer::error(404, "the session ended"),
            Err(_) => Answer::error(504, "the session did not answer in time"),
        }
    }

    async fn reload(&self, who: &str) -> Answer {
        let Some(reloader) = self.reloader.clone() else {
            return Answer::error(409, "this focus cannot reload its configuration");
        };
        let who = who.to_string();
        // Reading and validating the file is blocking work.
        let outcome =
            tokio::task::spawn_blocking(move || reloader.reload(Trigger::Admin, &who)).await;
        match outcome {
            Ok(Ok(report)) => Answer::json(200, json!({ "reloaded": true, "report": report })),
            Ok(Err(e @ crate::reload::ReloadError::NoFile)) => Answer::error(409, &e.to_string()),
            Ok(Err(e)) => {
                let issues: Vec<_> = e
                    .issues()
                    .into_iter()
                    .map(|i| json!({ "key": i.key, "message": i.message }))
                    .collect();
                Answer::json(
                    422,
                    json!({ "reloaded": false, "error": e.to_string(), "issues": issues }),
                )
            }
            Err(_) => Answer::error(500, "the reload failed"),
        }
    }
}

/// The `X-Operator` value as logged: printable, at most 64 characters.
fn operator_name(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Route {
        let segs: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        Route::of(method, &segs)
    }

    #[test]
    fn routes_by_method_and_path() {
        assert_eq!(route("GET", "/health"), Route::Health);
        assert_eq!(route("GET", "/v1/sessions"), Route::List);
        assert_eq!(
            route("GET", "/v1/sessions/team"),
            Route::Show("team".into())
        );
        assert_eq!(
            route("DELETE", "/v1/sessions/team"),
            Route::End("team".into())
        );
        assert_eq!(
            route("POST", "/v1/sessions/team/unlock"),
            Route::Lock("team".into(), false)
        );
        assert_eq!(
            route(
                "DELETE",
                "/v1/sessions/team/participants/sip:bob@example.com"
            ),
            Route::Remove("team".into(), "sip:bob@example.com".into())
        );
        assert_eq!(route("POST", "/v1/reload"), Route::Reload);
        assert_eq!(route("GET", "/v1/reload"), Route::Method("POST"));
        assert_eq!(
            route("PUT", "/v1/sessions/team"),
            Route::Method("GET, DELETE")
        );
        assert_eq!(route("GET", "/v2/x"), Route::NotFound);
    }

    /// `config/admin-openapi.yaml` names every route and every field the API writes.
    #[test]
    fn the_openapi_file_documents_every_route_and_field() {
        let spec = include_str!("../../config/admin-openapi.yaml");
        for path in [
            "/health",
            "/ready",
            "/v1/sessions",
            "/v1/sessions/{id}",
            "/v1/sessions/{id}/lock",
            "/v1/sessions/{id}/unlock",
            "/v1/sessions/{id}/participants/{participant}",
            "/v1/reload",
        ] {
            assert!(
                spec.contains(&format!("\n  {path}:\n")),
                "{path} undocumented"
            );
        }
        let participant = crate::session::ParticipantView {
            uri: String::new(),
            alias: None,
            display_name: None,
            role: "host",
            identity: "asserted",
            status: "connected",
            joining_method: "dialed-in",
            joined: String::new(),
            media: Vec::new(),
            call_id: String::new(),
        };
        let session = SessionView {
            uri: String::new(),
            kind: "adhoc",
            participants: 0,
            subscriptions: 0,
            dialing: 0,
            created: String::new(),
            active_since: None,
            locked: false,
            retiring: false,
            floor_holder: None,
            roster: Some(vec![participant]),
        };
        let report = crate::reload::ReloadReport::default();
        let mut fields: Vec<String> = Vec::new();
        for value in [
            json!(session),
            json!(session)["roster"][0].clone(),
            json!(report),
        ] {
            fields.extend(value.as_object().unwrap().keys().cloned());
        }
        for f in fields {
            assert!(spec.contains(&format!(" {f}:")), "field {f} undocumented");
        }
    }

    #[test]
    fn segments_are_percent_decoded() {
        assert_eq!(
            segments("/v1/sessions/sip%3Ateam%40focus.example.com").unwrap(),
            ["v1", "sessions", "sip:team@focus.example.com"]
        );
        assert_eq!(segments("/v1/%zz"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%C3%A9"), Some("é".into()));
    }

    #[test]
    fn operator_names_are_bounded_and_printable() {
        assert_eq!(operator_name(" alice\u{7}  "), "alice");
        assert_eq!(operator_name(&"x".repeat(100)).len(), 64);
    }
}
