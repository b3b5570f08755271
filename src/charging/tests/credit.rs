use crate::charging::*;
use crate::config::{ChargingConfig, OnUnavailable};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the test credit server does with each request.
#[derive(Clone)]
enum Answer {
    /// Writes these bytes, then closes.
    Bytes(&'static [u8]),
    /// Reads the request and never answers.
    Never,
}

/// A credit server on a loopback port: records each request (head and body as text).
async fn server(answer: Answer) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                // The head, then Content-Length bytes of body.
                loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        if body.len() >= length {
                            break;
                        }
                    }
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).to_string());
                match answer {
                    Answer::Bytes(bytes) => {
                        let _ = stream.write_all(bytes).await;
                        let _ = stream.shutdown().await;
                    }
                    Answer::Never => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                }
            });
        }
    });
    (addr, seen)
}

fn control(addr: SocketAddr) -> HttpCreditControl {
    HttpCreditControl::new(&format!("http://{addr}/credit"), Duration::from_millis(300)).unwrap()
}

fn session(subject: &str) -> CreditRequest {
    CreditRequest {
        subject: subject.into(),
        kind: CreditKind::Session,
        conference: "sip:team@focus.example.com".into(),
        size: None,
    }
}

async fn decide(answer: &'static [u8]) -> CreditDecision {
    let (addr, _) = server(Answer::Bytes(answer)).await;
    control(addr).check(session("sip:alice@example.com")).await
}

#[tokio::test]
async fn granted_and_the_request_on_the_wire() {
    let (addr, seen) = server(Answer::Bytes(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"granted\":true}",
    ))
    .await;
    let req = CreditRequest {
        subject: "sip:alice@example.com".into(),
        kind: CreditKind::Message,
        conference: "sip:team@focus.example.com".into(),
        size: Some(512),
    };
    assert_eq!(control(addr).check(req).await, CreditDecision::Granted);

    let seen = seen.lock().unwrap();
    let (head, body) = seen[0].split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    assert_eq!(lines.next(), Some("POST /credit HTTP/1.1"));
    let headers: Vec<_> = lines.collect();
    for h in [
        format!("Host: {addr}"),
        "Content-Type: application/json".into(),
        format!("Content-Length: {}", body.len()),
    ] {
        assert!(
            headers.contains(&h.as_str()),
            "{h} missing from {headers:?}"
        );
    }
    // The connection is kept for the next check (pooled client); no credentials configured.
    assert!(
        !headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("connection: close")
                || h.to_ascii_lowercase().starts_with("authorization")),
        "{headers:?}"
    );
    assert_eq!(
        body,
        r#"{"subject":"sip:alice@example.com","kind":"message","conference":"sip:team@focus.example.com","size":512}"#
    );
}

#[tokio::test]
async fn a_session_check_has_no_size() {
    let (addr, seen) = server(Answer::Bytes(
        b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{\"granted\":true}",
    ))
    .await;
    control(addr).check(session("sip:bob@example.com")).await;
    let seen = seen.lock().unwrap();
    assert!(seen[0].ends_with(
        r#"{"subject":"sip:bob@example.com","kind":"session","conference":"sip:team@focus.example.com"}"#
    ));
}

#[tokio::test]
async fn denied_by_the_body_or_by_402_and_403() {
    assert_eq!(
        decide(b"HTTP/1.1 200 OK\r\nContent-Length: 45\r\n\r\n{\"granted\":false,\"reason\":\"Out of credit\"}   ").await,
        CreditDecision::Denied {
            reason: "Out of credit".into()
        }
    );
    assert_eq!(
        decide(b"HTTP/1.1 200 OK\r\n\r\n{\"granted\":false}").await,
        CreditDecision::Denied {
            reason: "Credit denied".into()
        }
    );
    assert_eq!(
        decide(b"HTTP/1.1 402 Payment Required\r\nContent-Length: 0\r\n\r\n").await,
        CreditDecision::Denied {
            reason: "Payment Required".into()
        }
    );
    assert_eq!(
        decide(b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n1c\r\n{\"reason\":\"Barred \\\"user\\\"\"}\r\n0\r\n\r\n").await,
        CreditDecision::Denied {
            reason: "Barred user".into()
        }
    );
}

#[tokio::test]
async fn server_errors_and_garbage_are_unavailable() {
    for answer in [
        &b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 16\r\n\r\n{\"granted\":true}"[..],
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!",
        b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{\"granted\":\"yes\"}",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"granted\":true}",
        b"HTTP/1.1 302 Found\r\nLocation: http://elsewhere/\r\n\r\n",
        b"SIP/2.0 200 OK\r\n\r\n",
        b"\x00\xff\xfe garbage without a head",
        b"",
    ] {
        assert_eq!(
            decide(answer).await,
            CreditDecision::Unavailable,
            "{:?}",
            String::from_utf8_lossy(answer)
        );
    }
}

#[tokio::test]
async fn an_oversized_answer_is_unavailable() {
    static HUGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let huge = HUGE.get_or_init(|| {
        let mut v = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        v.resize(crate::charging::credit_http::MAX_RESPONSE * 2, b' ');
        v
    });
    assert_eq!(decide(huge).await, CreditDecision::Unavailable);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_unavailable() {
    let (addr, seen) = server(Answer::Never).await;
    let started = Instant::now();
    // The client's own 300 ms timeout must end it; HANG_GUARD only catches a client that
    // would wait for ever (late is no failure on a loaded machine, early is).
    const HANG_GUARD: Duration = Duration::from_secs(30);
    let decision = tokio::time::timeout(
        HANG_GUARD,
        control(addr).check(session("sip:a@example.com")),
    )
    .await
    .expect("the credit check never timed out");
    assert_eq!(decision, CreditDecision::Unavailable);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_closed_port_is_unavailable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let decision = control(addr).check(session("sip:a@example.com")).await;
    assert_eq!(decision, CreditDecision::Unavailable);
}

#[test]
fn verdicts_402_for_denied_and_on_unavailable_for_the_rest() {
    assert_eq!(CreditDecision::Granted.verdict(OnUnavailable::Deny), Ok(()));
    let denied = CreditDecision::Denied {
        reason: "Out of credit".into(),
    }
    .verdict(OnUnavailable::Allow)
    .unwrap_err();
    assert_eq!(
        (denied.status, denied.label, denied.warning.as_str()),
        (402, "credit_denied", "Out of credit")
    );
    assert_eq!(
        CreditDecision::Unavailable.verdict(OnUnavailable::Allow),
        Ok(())
    );
    let refused = CreditDecision::Unavailable
        .verdict(OnUnavailable::Deny)
        .unwrap_err();
    assert_eq!((refused.status, refused.label), (503, "credit_unavailable"));
}

/// A fixed decision, to drive the gate without a network.
struct Always(CreditDecision);

impl CreditControl for Always {
    fn check(&self, _req: CreditRequest) -> BoxFuture<'static, CreditDecision> {
        Box::pin(std::future::ready(self.0.clone()))
    }
}

#[tokio::test]
async fn the_gate_applies_the_decision_and_the_unavailable_rule() {
    let denied = CreditGate::new(
        Arc::new(Always(CreditDecision::Denied {
            reason: "no".into(),
        })),
        OnUnavailable::Allow,
    );
    assert_eq!(
        denied.admit(session("sip:a@x")).await.unwrap_err().status,
        402
    );
    let down_allow = CreditGate::new(
        Arc::new(Always(CreditDecision::Unavailable)),
        OnUnavailable::Allow,
    );
    assert_eq!(down_allow.admit(session("sip:a@x")).await, Ok(()));
    let down_deny = CreditGate::new(
        Arc::new(Always(CreditDecision::Unavailable)),
        OnUnavailable::Deny,
    );
    assert_eq!(
        down_deny
            .admit(session("sip:a@x"))
            .await
            .unwrap_err()
            .status,
        503
    );

    let off = CreditGate::disabled();
    assert!(!off.is_online());
    assert_eq!(off.admit(session("sip:a@x")).await, Ok(()));
    assert_eq!(
        NoCredit.check(session("sip:a@x")).await,
        CreditDecision::Granted
    );
}

/// A credit server that answers only when told to.
struct Gated(Arc<tokio::sync::Notify>);

impl CreditControl for Gated {
    fn check(&self, _req: CreditRequest) -> BoxFuture<'static, CreditDecision> {
        let go = self.0.clone();
        Box::pin(async move {
            go.notified().await;
            CreditDecision::Granted
        })
    }
}

#[tokio::test]
async fn checks_in_flight_are_bounded_and_the_excess_is_refused_503_at_once() {
    let go = Arc::new(tokio::sync::Notify::new());
    let gate =
        CreditGate::new(Arc::new(Gated(go.clone())), OnUnavailable::Allow).with_max_pending(2);
    let first = tokio::spawn(gate.admit(session("sip:a@x")));
    let second = tokio::spawn(gate.admit(session("sip:b@x")));
    // The two permits are taken when `admit` is called, not when the future runs: the third
    // is refused without waiting for the server.
    let third = gate.admit(session("sip:c@x")).await.unwrap_err();
    assert_eq!((third.status, third.label), (503, "credit_busy"));
    go.notify_waiters();
    while !(first.is_finished() && second.is_finished()) {
        tokio::task::yield_now().await;
        go.notify_waiters();
    }
    assert_eq!(first.await.unwrap(), Ok(()));
    assert_eq!(second.await.unwrap(), Ok(()));
    // The permits came back: a new check waits for the server again, then passes.
    let fourth = tokio::spawn(gate.admit(session("sip:d@x")));
    while !fourth.is_finished() {
        tokio::task::yield_now().await;
        go.notify_waiters();
    }
    assert_eq!(fourth.await.unwrap(), Ok(()));
}

#[tokio::test]
async fn the_gate_from_configuration() {
    let mut c = ChargingConfig::default();
    assert!(!CreditGate::from_config(&c, "").unwrap().is_online());

    let (addr, _) = server(Answer::Bytes(
        b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n{\"granted\":false,\"reason\":\"Limit reached\"}",
    ))
    .await;
    c.online_url = format!("http://{addr}/check");
    let gate = CreditGate::from_config(&c, "").unwrap();
    assert!(gate.is_online());
    let refusal = gate.admit(session("sip:a@x")).await.unwrap_err();
    assert_eq!(
        (refusal.status, refusal.warning.as_str()),
        (402, "Limit reached")
    );

    c.online_url = "ftp://secure/".into();
    assert!(matches!(
        CreditGate::from_config(&c, ""),
        Err(ChargingError::Url(_))
    ));
    // https is served, but roots that cannot be read stop the start.
    c.online_url = "https://secure/".into();
    c.online_ca_file = "/nonexistent/ca.pem".into();
    assert!(matches!(
        CreditGate::from_config(&c, ""),
        Err(ChargingError::CreditClient(_))
    ));
}

#[test]
fn reasons_are_made_safe_for_a_warning_header() {
    let response = crate::charging::http::Response {
        status: 200,
        reason: "OK".into(),
        body: format!(
            "{{\"granted\":false,\"reason\":\"a\\r\\nb \\\"c\\\" \\\\ {}\"}}",
            "x".repeat(500)
        )
        .into_bytes(),
    };
    let CreditDecision::Denied { reason } = crate::charging::credit_http::decide(&response) else {
        panic!("not denied")
    };
    assert!(reason.starts_with("ab c  x"), "{reason}");
    assert_eq!(reason.chars().count(), 128);
}
