//! Digest authentication end to end (`[auth]`), played by a client that computes its own
//! responses, and by attackers on other loopback addresses: a member proves itself and joins
//! a members-only group; a wrong password is challenged again and then refused; a replayed
//! nonce count and an expired nonce get the right answers; nothing on the wire can make the
//! focus believe an identity it did not prove; a reload takes new users.

mod support;

use cpm_focus::sip::{HeaderName, Response};
use std::time::Duration;
use support::{Call, Challenge, CredentialsFile, Focus, Ua, AUDIO_OFFER, WAIT};

const REALM: &str = "focus.example.com";
const CLUB: &str = "sip:club@focus.example.com";
const TEAM: &str = "sip:team@focus.example.com";

/// A focus whose `club` group is members-only (alice, bob), with `mode` and `extra` settings.
fn focus(mode: &str, users: &CredentialsFile, extra: &str) -> Focus {
    Focus::start(&format!(
        r#"
        [auth]
        mode = "{mode}"
        credentials = "{}"
        {extra}

        [[groups]]
        uri = "{CLUB}"
        join = "members-only"
        [[groups.members]]
        uri = "sip:alice@focus.example.com"
        [[groups.members]]
        uri = "sip:bob@focus.example.com"
        "#,
        users.toml_path()
    ))
}

fn users() -> CredentialsFile {
    CredentialsFile::new(
        REALM,
        &[
            ("alice", "wonderland"),
            ("bob", "builder"),
            ("mallory", "evil"),
        ],
    )
}

/// An agent named `name` of the focus's domain (its From is `sip:name@focus.example.com`)
/// on UDP from loopback address `ip`.
fn agent(focus: &Focus, name: &str, ip: &str) -> Ua {
    let mut ua = Ua::udp_from(focus, name, ip);
    ua.domain = REALM.into();
    ua
}

/// An INVITE to `uri` in `call` with the extra header lines `extra`; its final response.
fn invite(ua: &mut Ua, call: &mut Call, extra: &str) -> Response {
    ua.invite_headers = extra.to_string();
    let b = ua.invite(call, Some(AUDIO_OFFER));
    ua.invite_headers.clear();
    ua.expect_final(&b)
}

fn authorization(value: &str) -> String {
    format!("Authorization: {value}\r\n")
}

/// Joins `uri` answering the first challenge's `pick`th algorithm; the final response
/// (ACKed, and the call in its dialog, when 200).
fn join_with(ua: &mut Ua, uri: &str, user: &str, password: &str, pick: usize) -> (Call, Response) {
    let mut call = Call::new(uri);
    let r = invite(ua, &mut call, "");
    let challenges = Challenge::all(&r);
    let auth = challenges[pick].answer(user, password, "INVITE", uri, 1);
    let r = invite(ua, &mut call, &authorization(&auth));
    if r.status == 200 {
        call.learn(&r);
        ua.ack(&call);
    }
    (call, r)
}

fn failures(focus: &Focus, reason: &str) -> Option<f64> {
    focus.metric(&format!("focus_auth_failures_total{{reason=\"{reason}\"}}"))
}

fn warning(r: &Response) -> Option<&str> {
    r.headers.get(HeaderName::Warning)
}

#[test]
fn a_member_proves_itself_with_sha256_or_md5_and_joins_a_members_only_group() {
    let users = users();
    let focus = focus("members_only", &users, "");
    let mut alice = agent(&focus, "alice", "127.0.0.66");

    // Unproven: a 401 with one challenge per algorithm, SHA-256 first, fresh nonce, qop=auth.
    let mut call = Call::new(CLUB);
    let r = invite(&mut alice, &mut call, "");
    assert_eq!((r.status, &*r.reason), (401, "Unauthorized"));
    let challenges = Challenge::all(&r);
    let algorithms: Vec<&str> = challenges.iter().map(|c| c.algorithm.as_str()).collect();
    assert_eq!(algorithms, ["SHA-256", "MD5"]);
    for c in &challenges {
        assert_eq!(
            (c.realm.as_str(), c.qop.as_str(), c.stale),
            (REALM, "auth", false)
        );
        assert!(
            c.nonce.len() >= 32,
            "nonce {:?} is too short to be unguessable",
            c.nonce
        );
    }
    assert_eq!(focus.metric("focus_auth_challenges_total"), Some(1.0));

    // Answered with SHA-256: admitted.
    let auth = challenges[0].answer("alice", "wonderland", "INVITE", CLUB, 1);
    let r = invite(&mut alice, &mut call, &authorization(&auth));
    assert_eq!(r.status, 200, "{} {}", r.status, r.reason);
    call.learn(&r);
    alice.ack(&call);

    // Bob, an old client, answers MD5.
    let mut bob = agent(&focus, "bob", "127.0.0.67");
    let (mut bob_call, r) = join_with(&mut bob, CLUB, "bob", "builder", 1);
    assert_eq!(r.status, 200, "{} {}", r.status, r.reason);
    assert_eq!(focus.metric("focus_auth_success_total"), Some(2.0));
    assert_eq!(focus.metric("focus_participants_active"), Some(2.0));

    // In-dialog requests ride on the authenticated dialog.
    assert_eq!(bob.bye(&mut bob_call).status, 200);
    assert_eq!(alice.bye(&mut call).status, 200);

    // members_only leaves open groups alone.
    let mut carol = agent(&focus, "carol", "127.0.0.68");
    let (mut c, ok) = carol.join(TEAM);
    assert_eq!(ok.status, 200);
    assert_eq!(carol.bye(&mut c).status, 200);
    assert_eq!(focus.metric("focus_auth_challenges_total"), Some(2.0));
}

#[test]
fn a_wrong_password_is_challenged_again_until_the_source_is_refused() {
    let users = users();
    let focus = focus(
        "members_only",
        &users,
        "max_failures = 3\nfailure_window_s = 600",
    );
    let mut attacker = agent(&focus, "alice", "127.0.0.66");
    let mut call = Call::new(CLUB);
    let mut r = invite(&mut attacker, &mut call, "");
    for (n, guess) in ["password", "123456", "letmein"].iter().enumerate() {
        let auth = Challenge::all(&r)[0].answer("alice", guess, "INVITE", CLUB, 1);
        r = invite(&mut attacker, &mut call, &authorization(&auth));
        assert_eq!(r.status, 401, "guess {n}: {} {}", r.status, r.reason);
        assert!(
            !Challenge::all(&r)[0].stale,
            "a wrong password is not stale"
        );
    }
    assert_eq!(failures(&focus, "wrong_password"), Some(3.0));
    // The source has used up its failures: even the right password is refused now.
    let auth = Challenge::all(&r)[0].answer("alice", "wonderland", "INVITE", CLUB, 1);
    let r = invite(&mut attacker, &mut call, &authorization(&auth));
    assert_eq!((r.status, &*r.reason), (403, "Forbidden"));
    assert_eq!(
        warning(&r),
        Some("399 focus.example.com \"Too many failed authentication attempts; try again later\"")
    );
    assert_eq!(failures(&focus, "rate_limited"), Some(1.0));
    assert_eq!(focus.metric("focus_auth_success_total"), Some(0.0));
    // Other sources are not punished for it.
    let mut alice = agent(&focus, "alice", "127.0.0.67");
    let (mut c, r) = join_with(&mut alice, CLUB, "alice", "wonderland", 0);
    assert_eq!(r.status, 200);
    assert_eq!(alice.bye(&mut c).status, 200);
}

#[test]
fn a_replayed_nonce_count_is_refused() {
    let users = users();
    let focus = focus("members_only", &users, "");
    let mut alice = agent(&focus, "alice", "127.0.0.66");
    let mut call = Call::new(CLUB);
    let r = invite(&mut alice, &mut call, "");
    let challenge = Challenge::all(&r)[0].clone();
    let auth = challenge.answer("alice", "wonderland", "INVITE", CLUB, 1);
    let r = invite(&mut alice, &mut call, &authorization(&auth));
    assert_eq!(r.status, 200);
    call.learn(&r);
    alice.ack(&call);

    // An eavesdropper replays alice's Authorization in a call of its own.
    let mut eve = agent(&focus, "alice", "127.0.0.99");
    let mut stolen = Call::new(CLUB);
    let r = invite(&mut eve, &mut stolen, &authorization(&auth));
    assert_eq!(
        r.status, 401,
        "a replay was admitted: {} {}",
        r.status, r.reason
    );
    assert_eq!(failures(&focus, "replay"), Some(1.0));
    // With the next nonce count alice herself is fine (a second call under the same nonce).
    let mut second = Call::new(CLUB);
    let auth2 = challenge.answer("alice", "wonderland", "INVITE", CLUB, 2);
    let r = invite(&mut alice, &mut second, &authorization(&auth2));
    assert_eq!(r.status, 200, "{} {}", r.status, r.reason);
    second.learn(&r);
    alice.ack(&second);
    assert_eq!(focus.metric("focus_participants_active"), Some(2.0));
}

#[test]
fn a_digest_for_another_request_uri_is_400_in_untrusted_mode() {
    let users = users();
    let focus = focus("untrusted", &users, "");
    let mut alice = agent(&focus, "alice", "127.0.0.66");
    let mut call = Call::new(TEAM);
    let r = invite(&mut alice, &mut call, "");
    let auth = Challenge::all(&r)[0].answer("alice", "wonderland", "INVITE", CLUB, 1);
    let r = invite(&mut alice, &mut call, &authorization(&auth));
    assert_eq!(
        (r.status, &*r.reason),
        (400, "Digest uri does not match the Request-URI")
    );
    assert_eq!(failures(&focus, "malformed"), Some(1.0));
}

#[test]
fn an_expired_nonce_with_the_right_password_gets_stale_true() {
    let users = users();
    let focus = focus("members_only", &users, "nonce_ttl_s = 1");
    let mut alice = agent(&focus, "alice", "127.0.0.66");
    let mut call = Call::new(CLUB);
    let r = invite(&mut alice, &mut call, "");
    let old = Challenge::all(&r)[0].clone();
    // The nonce's lifetime is the thing under test: let it pass.
    std::thread::sleep(Duration::from_millis(1300));
    let r = invite(
        &mut alice,
        &mut call,
        &authorization(&old.answer("alice", "wonderland", "INVITE", CLUB, 1)),
    );
    let fresh = Challenge::all(&r);
    assert!(fresh.iter().all(|c| c.stale), "{fresh:?}");
    assert!(fresh.iter().all(|c| c.nonce != old.nonce));
    assert_eq!(failures(&focus, "stale"), Some(1.0));
    // The client retries with the new nonce, without asking its user again.
    let r = invite(
        &mut alice,
        &mut call,
        &authorization(&fresh[0].answer("alice", "wonderland", "INVITE", CLUB, 1)),
    );
    assert_eq!(r.status, 200, "{} {}", r.status, r.reason);
    // A wrong password with an expired nonce is a wrong password, not stale.
    let mut bob = agent(&focus, "bob", "127.0.0.67");
    let mut c = Call::new(CLUB);
    let r = invite(&mut bob, &mut c, "");
    let old = Challenge::all(&r)[0].clone();
    std::thread::sleep(Duration::from_millis(1300));
    let r = invite(
        &mut bob,
        &mut c,
        &authorization(&old.answer("bob", "guess", "INVITE", CLUB, 1)),
    );
    assert!(!Challenge::all(&r)[0].stale);
    assert_eq!(failures(&focus, "wrong_password"), Some(1.0));
}

#[test]
fn nothing_on_the_wire_makes_an_identity_proven() {
    let users = users();
    let focus = focus("untrusted", &users, "");
    let mut mallory = agent(&focus, "alice", "127.0.0.66");
    // Headers that might pass for proof: an asserted identity, a made-up Authorization for
    // alice (a well-formed one with a guessed response, and one for another realm).
    let mut call = Call::new(CLUB);
    let forged = "P-Asserted-Identity: <sip:alice@focus.example.com>\r\n\
         X-Authenticated: sip:alice@focus.example.com\r\n\
         Authorization: Digest username=\"alice\", realm=\"proxy.example.net\", nonce=\"x\", \
         uri=\"sip:club@focus.example.com\", response=\"00000000000000000000000000000000\", \
         qop=auth, nc=00000001, cnonce=\"c\"\r\n";
    let r = invite(&mut mallory, &mut call, forged);
    assert_eq!(r.status, 401, "{} {}", r.status, r.reason);
    let c = Challenge::all(&r)[0].clone();
    let guessed = format!(
        "Digest username=\"alice\", realm=\"{REALM}\", nonce=\"{}\", uri=\"{CLUB}\", \
         response=\"{}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"c\"",
        c.nonce,
        "0".repeat(64)
    );
    let r = invite(&mut mallory, &mut call, &authorization(&guessed));
    assert_eq!(r.status, 401);
    assert_eq!(failures(&focus, "wrong_password"), Some(1.0));
    // Her own password proves mallory, not the alice she writes in From.
    let auth = Challenge::all(&r)[0].answer("mallory", "evil", "INVITE", CLUB, 1);
    let r = invite(&mut mallory, &mut call, &authorization(&auth));
    assert_eq!((r.status, &*r.reason), (403, "Forbidden"));
    assert_eq!(
        warning(&r),
        Some("399 focus.example.com \"The From does not name the authenticated user\"")
    );
    assert_eq!(failures(&focus, "identity_mismatch"), Some(1.0));
    // As herself she is proven, and the group's own policy keeps a non-member out.
    let mut honest = agent(&focus, "mallory", "127.0.0.66");
    let (_, r) = join_with(&mut honest, CLUB, "mallory", "evil", 0);
    assert_eq!(r.status, 403, "{} {}", r.status, r.reason);
    assert_eq!(
        warning(&r),
        Some("399 focus.example.com \"Only members of this group may join\"")
    );
    // An unknown user is answered like a wrong password.
    let mut nobody = agent(&focus, "nobody", "127.0.0.70");
    let (_, r) = join_with(&mut nobody, TEAM, "nobody", "x", 0);
    assert_eq!(r.status, 401);
    assert_eq!(failures(&focus, "unknown_user"), Some(1.0));
    assert_eq!(
        focus.metric("focus_participants_active").unwrap_or(0.0),
        0.0,
        "nobody got in"
    );
    // untrusted mode challenges every new request, OPTIONS too.
    let r = mallory.options(CLUB);
    assert_eq!(r.status, 401);
    assert_eq!(
        focus.metric("focus_auth_success_total"),
        Some(1.0),
        "only honest mallory"
    );
}

#[test]
fn trusted_hosts_are_not_challenged() {
    let users = users();
    let focus = focus(
        "untrusted",
        &users,
        "[policy]\ntrusted_hosts = [\"127.0.0.1\"]",
    );
    let mut core = Ua::udp(&focus, "alice");
    core.domain = REALM.into();
    let (mut call, r) = core.join(CLUB);
    assert_eq!(r.status, 200);
    assert_eq!(core.bye(&mut call).status, 200);
    let mut outsider = agent(&focus, "alice", "127.0.0.66");
    assert_eq!(outsider.options(TEAM).status, 401);
    assert_eq!(focus.metric("focus_auth_challenges_total"), Some(1.0));
}

#[test]
fn a_reload_takes_new_users() {
    let users = CredentialsFile::new(REALM, &[("alice", "wonderland")]);
    let focus = focus("members_only", &users, "");
    let mut bob = agent(&focus, "bob", "127.0.0.66");
    let (_, r) = join_with(&mut bob, CLUB, "bob", "builder", 0);
    assert_eq!(r.status, 401, "bob is no user yet");
    users.write(REALM, &[("alice", "wonderland"), ("bob", "builder")]);
    focus.hangup();
    assert!(
        focus.log_contains("configuration reloaded", WAIT),
        "no reload in the log"
    );
    let (mut call, r) = join_with(&mut bob, CLUB, "bob", "builder", 0);
    assert_eq!(r.status, 200, "{} {}", r.status, r.reason);
    assert_eq!(bob.bye(&mut call).status, 200);
    // A file that became unusable refuses the reload, and the users in force stay.
    std::fs::write(&users.path, "bob:focus.example.com:not-a-hash\n").unwrap();
    focus.hangup();
    assert!(focus.log_contains("reload refused", WAIT));
    let (mut call, r) = join_with(&mut bob, CLUB, "bob", "builder", 0);
    assert_eq!(r.status, 200);
    assert_eq!(bob.bye(&mut call).status, 200);
}
