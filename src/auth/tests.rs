//! The authenticator in virtual time: a client answering its challenges, and every way an
//! attempt can fall short.

use super::*;
use rand::SeedableRng;

const REALM: &str = "focus.example.com";
const GROUP: &str = "sip:team@focus.example.com";

fn settings() -> AuthSettings {
    AuthSettings {
        realm: REALM.into(),
        algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        nonce_ttl: Duration::from_secs(300),
        max_nonces: 100,
        max_failures: 3,
        failure_window: Duration::from_secs(60),
        max_failure_sources: 100,
        domain: "focus.example.com".into(),
    }
}

fn authenticator() -> Authenticator {
    let text = format!(
        "{}\n{}\n",
        credentials_line("alice", REALM, "wonderland"),
        credentials_line("mallory", REALM, "evil")
    );
    Authenticator::new(settings(), Arc::new(Credentials::parse(&text).unwrap()))
}

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(7)
}

/// `param="value"` or `param=value` of a challenge.
fn param(challenge: &str, name: &str) -> Option<String> {
    let rest = challenge.strip_prefix("Digest ")?;
    crate::sip::split_commas(rest).find_map(|p| {
        let (n, v) = p.split_once('=')?;
        (n.trim() == name).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// An Authorization value for `challenge` as a client with `user`/`password` computes it.
fn answer(challenge: &str, user: &str, password: &str, method: &str, uri: &str, nc: u32) -> String {
    let alg = Algorithm::from_token(&param(challenge, "algorithm").unwrap()).unwrap();
    let nonce = param(challenge, "nonce").unwrap();
    let realm = param(challenge, "realm").unwrap();
    let nc = format!("{nc:08x}");
    let ha1 = alg.ha1(user, &realm, password);
    let response = alg.response(
        &ha1,
        method,
        uri,
        &ResponseInput {
            nonce: &nonce,
            nc: &nc,
            cnonce: "0a4f113b",
        },
    );
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm={}, qop=auth, nc={nc}, cnonce=\"0a4f113b\"",
        alg.token()
    )
}

struct Req {
    uri: Uri,
    from: Uri,
    method: &'static str,
    source: IpAddr,
}

impl Req {
    fn new(from: &str) -> Req {
        Req {
            uri: Uri::parse(GROUP).unwrap(),
            from: Uri::parse(from).unwrap(),
            method: "INVITE",
            source: IpAddr::from([127, 0, 0, 66]),
        }
    }

    fn attempt<'a>(&'a self, auth: &'a [String]) -> Attempt<'a> {
        Attempt {
            method: self.method,
            request_uri: &self.uri,
            from: &self.from,
            authorization: auth.iter().map(String::as_str).collect(),
            source: self.source,
        }
    }
}

fn challenges(v: Verdict) -> (Vec<String>, Option<Failure>) {
    match v {
        Verdict::Challenge {
            challenges,
            failure,
        } => (challenges, failure),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[test]
fn a_request_without_credentials_gets_one_challenge_per_algorithm_sha256_first() {
    let mut a = authenticator();
    let req = Req::new("sip:alice@focus.example.com");
    let (c, failure) = challenges(a.check(Instant::now(), &req.attempt(&[]), &mut rng()));
    assert_eq!(failure, None);
    assert_eq!(c.len(), 2);
    assert_eq!(param(&c[0], "algorithm").as_deref(), Some("SHA-256"));
    assert_eq!(param(&c[1], "algorithm").as_deref(), Some("MD5"));
    assert_eq!(param(&c[0], "qop").as_deref(), Some("auth"));
    assert_eq!(param(&c[0], "realm").as_deref(), Some(REALM));
    assert_eq!(param(&c[0], "nonce").unwrap().len(), 32);
    assert!(param(&c[0], "stale").is_none());
    // Each 401 has a fresh nonce.
    let (c2, _) = challenges(a.check(Instant::now(), &req.attempt(&[]), &mut rng_other()));
    assert_ne!(param(&c[0], "nonce"), param(&c2[0], "nonce"));
}

fn rng_other() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(8)
}

#[test]
fn both_algorithms_prove_the_from_and_a_count_is_used_once() {
    let t0 = Instant::now();
    for which in 0..2 {
        let mut a = authenticator();
        // URI parameters are no part of the address of record.
        let req = Req::new("sip:alice@focus.example.com;transport=udp");
        let (c, _) = challenges(a.check(t0, &req.attempt(&[]), &mut rng()));
        let auth = vec![answer(&c[which], "alice", "wonderland", "INVITE", GROUP, 1)];
        assert_eq!(
            a.check(t0, &req.attempt(&auth), &mut rng()),
            Verdict::Proven {
                aor: "sip:alice@focus.example.com".into()
            }
        );
        // The same nonce and count again: a replay.
        let (_, failure) = challenges(a.check(t0, &req.attempt(&auth), &mut rng()));
        assert_eq!(failure, Some(Failure::Replay));
        // The next count is fine.
        let auth = vec![answer(&c[which], "alice", "wonderland", "INVITE", GROUP, 2)];
        assert!(matches!(
            a.check(t0, &req.attempt(&auth), &mut rng()),
            Verdict::Proven { .. }
        ));
    }
}

#[test]
fn a_wrong_password_or_unknown_user_is_challenged_again_then_the_source_is_refused() {
    let t0 = Instant::now();
    let mut a = authenticator();
    let req = Req::new("sip:alice@focus.example.com");
    let (c, _) = challenges(a.check(t0, &req.attempt(&[]), &mut rng()));
    let auth = vec![answer(&c[0], "alice", "guess", "INVITE", GROUP, 1)];
    assert_eq!(
        challenges(a.check(t0, &req.attempt(&auth), &mut rng())).1,
        Some(Failure::WrongPassword)
    );
    let auth = vec![answer(&c[0], "nobody", "guess", "INVITE", GROUP, 1)];
    assert_eq!(
        challenges(a.check(t0, &req.attempt(&auth), &mut rng())).1,
        Some(Failure::UnknownUser)
    );
    let auth = vec![answer(&c[0], "alice", "guess2", "INVITE", GROUP, 1)];
    assert_eq!(
        challenges(a.check(t0, &req.attempt(&auth), &mut rng())).1,
        Some(Failure::WrongPassword)
    );
    // Three failures: even the right password is refused now, from this source only.
    let good = vec![answer(&c[0], "alice", "wonderland", "INVITE", GROUP, 1)];
    assert!(matches!(
        a.check(t0, &req.attempt(&good), &mut rng()),
        Verdict::Forbidden {
            failure: Failure::RateLimited,
            ..
        }
    ));
    let mut elsewhere = Req::new("sip:alice@focus.example.com");
    elsewhere.source = IpAddr::from([127, 0, 0, 1]);
    assert!(matches!(
        a.check(t0, &elsewhere.attempt(&good), &mut rng()),
        Verdict::Proven { .. }
    ));
    // After the window, the source may try again.
    let later = t0 + Duration::from_secs(61);
    let good = vec![answer(&c[0], "alice", "wonderland", "INVITE", GROUP, 2)];
    assert!(matches!(
        a.check(later, &req.attempt(&good), &mut rng()),
        Verdict::Proven { .. }
    ));
}

#[test]
fn an_expired_nonce_with_the_right_password_is_stale_and_with_a_wrong_one_is_not() {
    let t0 = Instant::now();
    let mut a = authenticator();
    let req = Req::new("sip:alice@focus.example.com");
    let (c, _) = challenges(a.check(t0, &req.attempt(&[]), &mut rng()));
    let late = t0 + Duration::from_secs(300);
    let good = vec![answer(&c[0], "alice", "wonderland", "INVITE", GROUP, 1)];
    let (c2, failure) = challenges(a.check(late, &req.attempt(&good), &mut rng()));
    assert_eq!(failure, Some(Failure::Stale));
    assert!(c2
        .iter()
        .all(|c| param(c, "stale").as_deref() == Some("true")));
    let bad = vec![answer(&c[0], "alice", "nope", "INVITE", GROUP, 1)];
    let (c3, failure) = challenges(a.check(late, &req.attempt(&bad), &mut rng()));
    assert_eq!(failure, Some(Failure::WrongPassword));
    assert!(param(&c3[0], "stale").is_none());
    // A nonce never issued here, with a response right for it: stale too (it proves the
    // password, and the client just needs a nonce of ours).
    let forged = vec![answer(
        &c[0].replace(&param(&c[0], "nonce").unwrap(), "feedface"),
        "alice",
        "wonderland",
        "INVITE",
        GROUP,
        1,
    )];
    assert_eq!(
        challenges(a.check(t0, &req.attempt(&forged), &mut rng())).1,
        Some(Failure::Stale)
    );
}

#[test]
fn the_from_must_name_the_authenticated_user() {
    let t0 = Instant::now();
    let mut a = authenticator();
    for (n, from) in [
        "sip:alice@focus.example.com",
        "sip:alice@elsewhere.example.org",
        "tel:+15551234",
    ]
    .iter()
    .enumerate()
    {
        let req = Req::new(from);
        let (c, _) = challenges(a.check(t0, &req.attempt(&[]), &mut rng_n(n)));
        let auth = vec![answer(&c[0], "mallory", "evil", "INVITE", GROUP, 1)];
        assert_eq!(
            a.check(t0, &req.attempt(&auth), &mut rng()),
            Verdict::Forbidden {
                failure: Failure::IdentityMismatch,
                warning: "The From does not name the authenticated user"
            },
            "{from}"
        );
    }
}

fn rng_n(n: usize) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(100 + n as u64)
}

#[test]
fn the_digest_signs_method_and_request_uri() {
    let t0 = Instant::now();
    let mut a = authenticator();
    let req = Req::new("sip:alice@focus.example.com");
    let (c, _) = challenges(a.check(t0, &req.attempt(&[]), &mut rng()));
    // Signed for another conference: refused before the password is even looked at.
    let other = vec![answer(
        &c[0],
        "alice",
        "wonderland",
        "INVITE",
        "sip:other@focus.example.com",
        1,
    )];
    assert_eq!(
        a.check(t0, &req.attempt(&other), &mut rng()),
        Verdict::Malformed(AuthorizationError::Uri)
    );
    // Signed for SUBSCRIBE, sent with INVITE: the response does not match.
    let sub = vec![answer(&c[0], "alice", "wonderland", "SUBSCRIBE", GROUP, 2)];
    assert_eq!(
        challenges(a.check(t0, &req.attempt(&sub), &mut rng())).1,
        Some(Failure::WrongPassword)
    );
    // The same URI written differently (host case) is the same URI.
    let upper = vec![answer(
        &c[0],
        "alice",
        "wonderland",
        "INVITE",
        "sip:team@FOCUS.example.com",
        3,
    )];
    assert!(matches!(
        a.check(t0, &req.attempt(&upper), &mut rng()),
        Verdict::Proven { .. }
    ));
}

#[test]
fn credentials_for_another_realm_are_ignored_and_an_md5_only_focus_refuses_sha256() {
    let t0 = Instant::now();
    let mut a = authenticator();
    let req = Req::new("sip:alice@focus.example.com");
    let foreign = vec![
        "Digest username=\"alice\", realm=\"proxy.example.net\", nonce=\"x\", uri=\"sip:a@b\", response=\"00\"".to_string(),
    ];
    assert_eq!(
        challenges(a.check(t0, &req.attempt(&foreign), &mut rng())).1,
        None
    );
    let mut md5_only = settings();
    md5_only.algorithms = vec![Algorithm::Md5];
    let mut a = Authenticator::new(
        md5_only,
        Arc::new(Credentials::parse(&credentials_line("alice", REALM, "wonderland")).unwrap()),
    );
    let (c, _) = challenges(a.check(t0, &req.attempt(&[]), &mut rng()));
    assert_eq!(c.len(), 1);
    let sha = c[0].replace("algorithm=MD5", "algorithm=SHA-256");
    let auth = vec![answer(&sha, "alice", "wonderland", "INVITE", GROUP, 1)];
    assert_eq!(
        a.check(t0, &req.attempt(&auth), &mut rng()),
        Verdict::Malformed(AuthorizationError::Algorithm)
    );
}
