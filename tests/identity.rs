//! The identity model end to end, played by an attacker (docs/security.md, "Identity"): the
//! focus trusts 127.0.0.1 only; mallory sends from 127.0.0.66 (Linux routes all of
//! 127.0.0.0/8 on the loopback) and claims to be alice, the host, in her From and in a forged
//! P-Asserted-Identity. At every decision point (join, REFER in and out of dialog,
//! moderation, SUBSCRIBE, pager MESSAGE, the exploder, ad-hoc creation, MSRP) the claim counts
//! for nothing, while the same request from the trusted host with P-Asserted-Identity works.
//! `policy.identity = "from"` (the lab mode) believes anyone, and says so in the log.

mod support;

use cpm_focus::body::multipart::{Multipart, Part};
use cpm_focus::body::resource_lists::{self, Entry};
use cpm_focus::conference_info::{DisconnectionMethod, EndpointStatus};
use cpm_focus::sip::{HeaderName, NameAddr, Response};
use std::time::Duration;
use support::{
    assert_refused, endpoint_state, metric, user, Call, Focus, Setup, Sink, Ua, Watcher, TEAM, WAIT,
};

const CLUB: &str = "sip:club@focus.example.com";
const FACTORY: &str = "sip:conf-factory@focus.example.com";
const LIST_SERVICE: &str = "sip:list-service@focus.example.com";
/// The untrusted source mallory sends from.
const ELSEWHERE: &str = "127.0.0.66";
/// A forged (or, from the trusted host, genuine) assertion that the sender is alice.
const PAI_ALICE: &str = "P-Asserted-Identity: \"Alice\" <sip:alice@example.com>\r\n";
/// A window in which something must not happen.
const QUIET: Duration = Duration::from_millis(500);
/// The Warning of an outsider's refusal, completing "may ...".
fn unverified(what: &str) -> String {
    format!(
        "399 focus.example.com \"Your identity is not verified: only a verified identity may \
         {what}\""
    )
}

/// Trusts 127.0.0.1 only. `club` is members-only (alice host, bob); `team` is open, with
/// alice as host. Both list `extra_member` when given (a group-message recipient).
fn config(extra_member: Option<&str>, extra: &str) -> String {
    let member = extra_member
        .map(|u| format!("[[groups.members]]\nuri = \"{u}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[policy]
trusted_hosts = ["127.0.0.1"]
{extra}
[[groups]]
uri = "sip:team@focus.example.com"
[[groups.members]]
uri = "sip:alice@example.com"
role = "host"
{member}
[[groups]]
uri = "sip:club@focus.example.com"
join = "members-only"
[[groups.members]]
uri = "sip:alice@example.com"
role = "host"
[[groups.members]]
uri = "sip:bob@example.com"
{member}
"#
    )
}

/// mallory: on 127.0.0.66, From alice, with a forged P-Asserted-Identity of alice.
fn mallory(focus: &Focus) -> Ua {
    let mut ua = Ua::udp_from(focus, "alice", ELSEWHERE);
    ua.invite_headers = PAI_ALICE.into();
    ua
}

/// The real alice: behind the trusted host (127.0.0.1), asserted by it. Her From names
/// another device, so only the assertion can make her alice.
fn alice(focus: &Focus) -> Ua {
    let mut ua = Ua::udp(focus, "alice-laptop");
    ua.invite_headers = PAI_ALICE.into();
    ua
}

const UNVERIFIED: &str = "focus_policy_rejections_total{reason=\"unverified\"}";

/// A request outside any dialog with `extra` headers; the final response.
fn out_of_dialog(
    ua: &mut Ua,
    uri: &str,
    method: &str,
    extra: &str,
    body: Option<(&str, &str)>,
) -> Response {
    let mut call = Call::new(uri);
    let b = ua.send_request(&mut call, method, extra, body);
    ua.expect_final(&b)
}

/// A subscriber to `uri` from the trusted host (with an asserted identity).
fn watch(focus: &Focus, uri: &str) -> Watcher {
    let mut ua = Ua::udp(focus, "watcher");
    let r = out_of_dialog(
        &mut ua,
        uri,
        "SUBSCRIBE",
        "Event: conference\r\nAccept: application/conference-info+xml\r\nP-Asserted-Identity: <sip:bob@example.com>\r\n",
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let n = ua.expect_notify();
    Watcher::from_first(ua, n)
}

#[test]
fn a_members_only_join_needs_a_verified_identity() {
    let focus = Focus::start(&config(None, ""));
    // From alice and a forged P-Asserted-Identity of alice, from an untrusted address.
    let mut m = mallory(&focus);
    let (_, r) = m.try_join(CLUB);
    assert_refused(&r, 403, "Forbidden", &unverified("join this group"));
    // Without the forged assertion too.
    m.invite_headers.clear();
    let (_, r) = m.try_join(CLUB);
    assert_refused(&r, 403, "Forbidden", &unverified("join this group"));
    assert_eq!(metric(&focus, UNVERIFIED), 2.0);
    // The same join through the trusted host, asserted: alice is in, as host.
    let mut a = alice(&focus);
    let (mut call, r) = a.try_join(CLUB);
    assert_eq!(r.status, 200, "{r:?}");
    for action in ["lock", "unlock"] {
        let r = a.control(&mut call, "INFO", &format!(r#"{{"action":"{action}"}}"#));
        assert_eq!(r.status, 200, "the asserted alice is the host: {r:?}");
    }
    // From the trusted host without an assertion, its From is vouched for (bob is listed).
    let mut bob = Ua::udp(&focus, "bob");
    let (mut b, _) = bob.join(CLUB);
    assert_eq!(bob.bye(&mut b).status, 200);
    assert_eq!(a.bye(&mut call).status, 200);
    assert_eq!(metric(&focus, UNVERIFIED), 2.0);
}

#[test]
fn an_out_of_dialog_refer_bye_from_an_untrusted_source_removes_nobody() {
    let focus = Focus::start(&config(None, ""));
    let mut w = watch(&focus, CLUB);
    let mut bob = Ua::udp(&focus, "bob");
    let (mut b, _) = bob.join(CLUB);
    w.until(|v| endpoint_state(v, "sip:bob@example.com").is_some());
    // mallory claims to be the host, with a forged assertion: refused, nobody removed.
    let mut m = mallory(&focus);
    let mut refer = Call::new(CLUB);
    let branch = m.refer(&mut refer, "<sip:bob@example.com;method=BYE>", PAI_ALICE);
    assert_refused(
        &m.expect_final(&branch),
        403,
        "Forbidden",
        &unverified("remove participants"),
    );
    // Nor may she add anyone.
    let mut refer = Call::new(CLUB);
    let branch = m.refer(&mut refer, "<sip:carol@example.com>", PAI_ALICE);
    assert_refused(
        &m.expect_final(&branch),
        403,
        "Forbidden",
        &unverified("add participants"),
    );
    bob.assert_quiet(QUIET, "bob is not removed by an unverified REFER");
    assert_eq!(
        endpoint_state(&w.view, "sip:bob@example.com").map(|s| s.0),
        Some(EndpointStatus::Connected)
    );
    assert_eq!(metric(&focus, UNVERIFIED), 2.0);
    // The same REFER through the trusted host, asserted: bob is removed.
    let mut a = alice(&focus);
    let mut refer = Call::new(CLUB);
    let branch = a.refer(&mut refer, "<sip:bob@example.com;method=BYE>", PAI_ALICE);
    assert_eq!(a.expect_final(&branch).status, 202);
    bob.expect_bye(&b);
    w.until(|v| {
        endpoint_state(v, "sip:bob@example.com")
            == Some((
                EndpointStatus::Disconnected,
                Some(DisconnectionMethod::Booted),
            ))
    });
    assert_eq!(bob.bye(&mut b).status, 481);
}

#[test]
fn an_outsider_in_an_open_group_holds_no_role_and_moderates_nothing() {
    let focus = Focus::start(&config(None, ""));
    let mut w = watch(&focus, TEAM);
    // The open group takes mallory, shown as what she claims, as a plain participant.
    let mut m = mallory(&focus);
    let (mut mc, r) = m.try_join(TEAM);
    assert_eq!(r.status, 200, "{r:?}");
    w.until(|v| user(v, "sip:alice@example.com").is_some());
    let shown = user(&w.view, "sip:alice@example.com").unwrap();
    assert_eq!(shown.roles, ["participant"], "{shown:#?}");
    // Marked unverified (an extension attribute receivers that do not know it ignore).
    assert!(shown.endpoints[0].unverified, "{shown:#?}");
    let mut bob = Ua::udp(&focus, "bob");
    let (mut b, _) = bob.join(TEAM);
    // Moderation in her dialog: lock, mute, end; each refused.
    for body in [
        r#"{"action":"lock"}"#,
        r#"{"action":"mute","target":"sip:bob@example.com"}"#,
        r#"{"action":"end"}"#,
    ] {
        let r = m.control(&mut mc, "INFO", body);
        assert_refused(&r, 403, "Forbidden", &unverified("moderate this group"));
    }
    // A REFER in her dialog, removing or adding: refused.
    let branch = m.refer(&mut mc, "<sip:bob@example.com;method=BYE>", PAI_ALICE);
    assert_refused(
        &m.expect_final(&branch),
        403,
        "Forbidden",
        &unverified("remove participants"),
    );
    let branch = m.refer(&mut mc, "<sip:carol@example.com>", "");
    assert_refused(
        &m.expect_final(&branch),
        403,
        "Forbidden",
        &unverified("add participants"),
    );
    bob.assert_quiet(QUIET, "bob stays");
    assert_eq!(
        w.view.conference_state.as_ref().and_then(|s| s.locked),
        Some(false)
    );
    assert_eq!(metric(&focus, UNVERIFIED), 5.0);
    // The asserted alice, through the trusted host, is the host.
    let mut a = alice(&focus);
    let (mut ac, _) = a.join(TEAM);
    let r = a.control(&mut ac, "INFO", r#"{"action":"lock"}"#);
    assert_eq!(r.status, 200);
    w.until(|v| v.conference_state.and_then(|s| s.locked) == Some(true));
    // Her endpoint, under the same user, is not marked.
    let shown = user(&w.view, "sip:alice@example.com").unwrap();
    let marks: Vec<bool> = shown.endpoints.iter().map(|e| e.unverified).collect();
    assert_eq!(marks, [true, false], "{shown:#?}");
    for (ua, call) in [(&mut a, &mut ac), (&mut bob, &mut b), (&mut m, &mut mc)] {
        assert_eq!(ua.bye(call).status, 200);
    }
}

#[test]
fn a_subscription_to_a_members_only_group_needs_a_verified_identity() {
    let focus = Focus::start(&config(None, ""));
    let subscribe = "Event: conference\r\nAccept: application/conference-info+xml\r\n";
    let mut m = mallory(&focus);
    let r = out_of_dialog(
        &mut m,
        CLUB,
        "SUBSCRIBE",
        &format!("{subscribe}{PAI_ALICE}"),
        None,
    );
    assert_refused(&r, 403, "Forbidden", &unverified("subscribe to this group"));
    m.assert_quiet(QUIET, "no NOTIFY to a refused subscriber");
    assert_eq!(metric(&focus, UNVERIFIED), 1.0);
    let mut a = alice(&focus);
    let r = out_of_dialog(
        &mut a,
        CLUB,
        "SUBSCRIBE",
        &format!("{subscribe}{PAI_ALICE}"),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(a.expect_notify().doc.users.is_some());
}

#[test]
fn a_group_message_claiming_a_member_is_refused() {
    let sink = Sink::start("member");
    let focus = Focus::start(&config(Some(&sink.uri()), ""));
    let mut m = mallory(&focus);
    let r = out_of_dialog(
        &mut m,
        CLUB,
        "MESSAGE",
        PAI_ALICE,
        Some(("text/plain", "from alice, honest")),
    );
    assert_refused(
        &r,
        403,
        "Forbidden",
        &unverified("send group messages to this group"),
    );
    std::thread::sleep(QUIET);
    assert!(sink.deliveries().is_empty(), "the refused message went out");
    assert_eq!(metric(&focus, UNVERIFIED), 1.0);
    // Through the trusted host, asserted: relayed, from the asserted alice.
    let mut a = alice(&focus);
    let r = out_of_dialog(
        &mut a,
        CLUB,
        "MESSAGE",
        PAI_ALICE,
        Some(("text/plain", "from alice")),
    );
    assert_eq!(r.status, 202, "{r:?}");
    let d = sink.expect_one(WAIT);
    assert_eq!(d.body(), "from alice");
    let from = NameAddr::parse(d.header(HeaderName::From).unwrap()).unwrap();
    assert_eq!(from.uri.to_string(), "sip:alice@example.com");
}

#[test]
fn an_untrusted_assertion_is_never_believed_nor_forwarded() {
    let sink = Sink::start("listener");
    // The open team group lists the sink: group messages reach it.
    let focus = Focus::start(&config(Some(&sink.uri()), ""));
    let mut w = watch(&focus, TEAM);
    // mallory as herself, asserting (and preferring) to be the boss.
    let mut m = Ua::udp_from(&focus, "mallory", ELSEWHERE);
    let forged = "P-Asserted-Identity: \"The Boss\" <sip:boss@example.com>\r\n\
                  P-Preferred-Identity: <sip:boss@example.com>\r\n";
    m.invite_headers = forged.into();
    let mut chat = m.join_chat(TEAM, Setup::Active);
    let mut msrp = chat.connect();
    msrp.bind();
    let mut bob = Ua::udp(&focus, "bob");
    let mut bchat = bob.join_chat(TEAM, Setup::Active);
    let mut bmsrp = bchat.connect();
    bmsrp.bind();
    w.until(|v| {
        user(v, "sip:mallory@example.com").is_some() && user(v, "sip:bob@example.com").is_some()
    });
    // Her chat messages carry the identity of her join: what she claimed, not the boss.
    assert_eq!(msrp.say("the boss speaks").code, 200);
    assert_eq!(
        bmsrp.expect_message().sender_uri(),
        "sip:mallory@example.com"
    );
    // Her group message reaches the listed member from what she claimed, with neither
    // header.
    let r = out_of_dialog(
        &mut m,
        TEAM,
        "MESSAGE",
        forged,
        Some(("text/plain", "memo")),
    );
    assert_eq!(r.status, 202, "{r:?}");
    let d = sink.expect_one(WAIT);
    assert_eq!(d.body(), "memo");
    assert_eq!(
        support::uri_of(d.header(HeaderName::From).unwrap()),
        "sip:mallory@example.com"
    );
    assert!(
        d.header(HeaderName::PAssertedIdentity).is_none(),
        "{}",
        d.text()
    );
    assert!(
        d.header(HeaderName::PPreferredIdentity).is_none(),
        "{}",
        d.text()
    );
    assert!(
        !d.text().to_ascii_lowercase().contains("boss"),
        "{}",
        d.text()
    );
    // Nor does the roster ever name the boss.
    let seen = format!("{:?}", w.view);
    assert!(!seen.to_ascii_lowercase().contains("boss"), "{seen}");
    assert_eq!(m.bye(&mut chat.call).status, 200);
    assert_eq!(bob.bye(&mut bchat.call).status, 200);
}

/// A MESSAGE body for the URI-list service: the payload and the recipient list.
fn exploder_body(payload: &str, entries: &[Entry]) -> (String, String) {
    let body = Multipart::mixed(vec![
        Part::new("text/plain", payload.to_string()),
        Part::new(resource_lists::MIME_TYPE, resource_lists::render(entries))
            .with_disposition("recipient-list"),
    ]);
    let (ct, bytes) = body.encode_with_new_boundary().unwrap();
    (ct, String::from_utf8(bytes.to_vec()).unwrap())
}

#[test]
fn the_exploder_relays_only_for_a_verified_sender() {
    let sink = Sink::start("r1");
    let focus = Focus::start(&config(None, ""));
    let (ct, body) = exploder_body("hello", &[Entry::new(sink.uri())]);
    let extra = format!("Require: recipient-list-message\r\n{PAI_ALICE}");
    let mut m = mallory(&focus);
    let r = out_of_dialog(&mut m, LIST_SERVICE, "MESSAGE", &extra, Some((&ct, &body)));
    assert_refused(
        &r,
        403,
        "Forbidden",
        &unverified("send messages through this service"),
    );
    std::thread::sleep(QUIET);
    assert!(sink.deliveries().is_empty(), "relayed for an outsider");
    assert_eq!(metric(&focus, UNVERIFIED), 1.0);
    let mut a = alice(&focus);
    let r = out_of_dialog(&mut a, LIST_SERVICE, "MESSAGE", &extra, Some((&ct, &body)));
    assert_eq!(r.status, 202, "{r:?}");
    let d = sink.expect_one(WAIT);
    // From the asserted identity, not the From of the device.
    assert_eq!(
        support::uri_of(d.header(HeaderName::From).unwrap()),
        "sip:alice@example.com"
    );
    assert!(d.header(HeaderName::PAssertedIdentity).is_none());
}

#[test]
fn ad_hoc_creation_by_domain_needs_a_verified_identity() {
    let focus = Focus::start(&config(
        None,
        "adhoc = \"domains\"\nadhoc_domains = [\"example.com\"]",
    ));
    let mut m = mallory(&focus);
    let (_, r) = m.try_join(FACTORY);
    assert_refused(&r, 403, "Forbidden", &unverified("create group sessions"));
    assert_eq!(metric(&focus, UNVERIFIED), 1.0);
    let mut a = alice(&focus);
    let (mut call, r) = a.try_join(FACTORY);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(a.bye(&mut call).status, 200);
}

#[test]
fn an_outsider_who_creates_an_ad_hoc_group_does_not_host_it() {
    let focus = Focus::start(&config(None, ""));
    // Anyone may create (the default), but a claim makes nobody host.
    let mut m = mallory(&focus);
    let (mut mc, r) = m.try_join(FACTORY);
    assert_eq!(r.status, 200, "{r:?}");
    let r = m.control(&mut mc, "INFO", r#"{"action":"lock"}"#);
    assert_refused(&r, 403, "Forbidden", &unverified("moderate this group"));
    assert_eq!(m.bye(&mut mc).status, 200);
    // The asserted creator hosts hers.
    let mut a = alice(&focus);
    let (mut ac, r) = a.try_join(FACTORY);
    assert_eq!(r.status, 200, "{r:?}");
    let r = a.control(&mut ac, "INFO", r#"{"action":"lock"}"#);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(a.bye(&mut ac).status, 200);
}

#[test]
fn the_lab_mode_believes_any_from_and_says_so() {
    let focus = Focus::start(&config(None, "identity = \"from\""));
    assert!(
        focus.log_contains("policy.identity = \"from\"", WAIT),
        "no warning in the log:\n{}",
        focus.log()
    );
    assert!(focus.log().contains("WARN"), "{}", focus.log());
    let mut bob = Ua::udp(&focus, "bob");
    let (b, _) = bob.join(CLUB);
    // mallory's bare From is believed: she is in as alice, the host, and removes bob.
    let mut m = Ua::udp_from(&focus, "alice", ELSEWHERE);
    let (mut mc, r) = m.try_join(CLUB);
    assert_eq!(r.status, 200, "{r:?}");
    let mut refer = Call::new(CLUB);
    let branch = m.refer(&mut refer, "<sip:bob@example.com;method=BYE>", "");
    assert_eq!(m.expect_final(&branch).status, 202);
    bob.expect_bye(&b);
    assert_eq!(m.bye(&mut mc).status, 200);
    assert_eq!(metric(&focus, UNVERIFIED), 0.0);
}

/// A restarted ad-hoc session calls its members back on behalf of a joiner whose identity
/// counts, leaving out that joiner: an outsider claiming the creator neither makes the focus
/// call anyone in her name nor keeps the real creator's call-back from happening.
#[test]
fn a_restart_calls_members_back_only_for_a_joiner_whose_identity_counts() {
    let focus = Focus::start(&config(None, ""));
    let mut bob = Ua::udp(&focus, "bob");
    let bob_at = format!("sip:bob@{}", bob.local);
    let ids = "Contribution-ID: restart-trust\r\n";
    // The asserted alice creates the group with bob; everyone leaves, and it is remembered.
    let mut a = alice(&focus);
    a.invite_headers = format!("{PAI_ALICE}{ids}");
    let list = resource_lists::render(&[Entry::new(bob_at.clone())]);
    let (ct, body) = Multipart::mixed(vec![
        Part::new("application/sdp", support::AUDIO_OFFER),
        Part::new(resource_lists::MIME_TYPE, list).with_disposition("recipient-list"),
    ])
    .encode_with_new_boundary()
    .unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let mut ac = Call::new(FACTORY);
    let extra = format!("{PAI_ALICE}{ids}Require: recipient-list-invite\r\n");
    let b = a.send_request(&mut ac, "INVITE", &extra, Some((&ct, &body)));
    let r = a.expect_final(&b);
    assert_eq!(r.status, 200, "{r:?}");
    ac.learn(&r);
    a.ack(&ac);
    let inv = bob.expect_invite();
    let (mut bc, _m) = bob.accept_chat(&inv);
    assert_eq!(a.bye(&mut ac).status, 200);
    assert_eq!(bob.bye(&mut bc).status, 200);
    focus.wait_metric("focus_session_actors", WAIT, |v| v == 0.0);

    // mallory, claiming alice, brings it back: nobody is called in alice's name.
    let mut m = mallory(&focus);
    m.invite_headers = format!("{PAI_ALICE}{ids}");
    let (mut mc, r) = m.try_join(FACTORY);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        metric(&focus, "focus_sessions_started_total{kind=\"restarted\"}"),
        1.0
    );
    bob.assert_quiet(QUIET, "bob called back for an unverified joiner");
    // The real alice joins it: bob is called back on her behalf, and she is not called.
    let (mut ac, r) = a.try_join(FACTORY);
    assert_eq!(r.status, 200, "{r:?}");
    let inv = bob.expect_invite();
    assert_eq!(
        inv.header(HeaderName::ReferredBy),
        Some("<sip:alice@example.com>")
    );
    let (mut bc, _m) = bob.accept_chat(&inv);
    a.assert_quiet(QUIET, "the joiner is not called back");
    for (ua, call) in [(&mut a, &mut ac), (&mut bob, &mut bc), (&mut m, &mut mc)] {
        assert_eq!(ua.bye(call).status, 200);
    }
}

/// A REFER in a participant's dialog is decided on the participant bound to that dialog,
/// never on the REFER's own From: a proven participant on an untrusted address who may
/// remove others cannot find out (and remove) who hides behind an anonymous alias by writing
/// that person's address in her From.
#[test]
fn an_in_dialog_refer_is_decided_on_the_dialogs_participant_not_its_from() {
    let users = support::CredentialsFile::new("focus.example.com", &[("mallory", "evil")]);
    let focus = Focus::start(&format!(
        r#"
[policy]
trusted_hosts = ["127.0.0.1"]
[auth]
mode = "untrusted"
credentials = "{}"
[[groups]]
uri = "sip:lounge@focus.example.com"
remove = "anyone"
"#,
        users.toml_path()
    ));
    const LOUNGE: &str = "sip:lounge@focus.example.com";
    // carol joins through the trusted host, anonymously.
    let mut carol = Ua::udp(&focus, "carol");
    carol.invite_headers = "Privacy: id\r\n".into();
    let (mut cc, r) = carol.try_join(LOUNGE);
    assert_eq!(r.status, 200, "{r:?}");
    // mallory proves herself (digest) from an untrusted address and joins.
    let mut m = Ua::udp_from(&focus, "mallory", ELSEWHERE);
    m.domain = "focus.example.com".into();
    let mut mc = Call::new(LOUNGE);
    let b = m.invite(&mut mc, Some(support::AUDIO_OFFER));
    let r = m.expect_final(&b);
    let auth = support::Challenge::all(&r)[0].answer("mallory", "evil", "INVITE", LOUNGE, 1);
    m.invite_headers = format!("Authorization: {auth}\r\n");
    let b = m.invite(&mut mc, Some(support::AUDIO_OFFER));
    let r = m.expect_final(&b);
    assert_eq!(r.status, 200, "{r:?}");
    mc.learn(&r);
    m.ack(&mc);
    m.invite_headers.clear();
    // In her own dialog, mallory writes carol's address in the REFER's From and asks to remove
    // carol by her real address: only carol herself may name her so.
    mc.cseq += 1;
    let branch = format!("z9hG4bK-forged-{}", std::process::id());
    let text = m
        .request_text(
            "REFER",
            &mc,
            mc.cseq,
            &branch,
            "Refer-To: <sip:carol@example.com;method=BYE>\r\n",
            None,
        )
        .replace(
            "<sip:mallory@focus.example.com>;tag=",
            "<sip:carol@example.com>;tag=",
        );
    assert!(
        text.contains("From: \"mallory\" <sip:carol@example.com>;tag="),
        "{text}"
    );
    m.send_raw(&text);
    assert_eq!(m.expect_final(&branch).status, 202);
    // The final NOTIFY (after 100 Trying) says how the removal ended.
    let frag = loop {
        let f = m.expect_sipfrag();
        if f.text().contains("Subscription-State: terminated") {
            break f;
        }
    };
    assert!(
        frag.text().contains("SIP/2.0 481"),
        "carol was found by her real address: {}",
        frag.text()
    );
    carol.assert_quiet(QUIET, "carol is not removed by a forged From");
    for (ua, call) in [(&mut carol, &mut cc), (&mut m, &mut mc)] {
        assert_eq!(ua.bye(call).status, 200);
    }
}

#[test]
fn a_removal_names_the_verified_participant_before_an_outsider_claiming_the_same_identity() {
    let focus = Focus::start(&config(None, ""));
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    // An outsider claiming bob joins the open group first (the earlier participant)...
    let mut fake = Ua::udp_from(&focus, "bob", ELSEWHERE);
    let (mut fc, _) = fake.join(TEAM);
    // ... then the real bob, asserted by the trusted host.
    let mut bob = Ua::udp(&focus, "bob-phone");
    bob.invite_headers = "P-Asserted-Identity: <sip:bob@example.com>\r\n".into();
    let (bc, _) = bob.join(TEAM);
    w.until(|v| user(v, "sip:bob@example.com").is_some_and(|u| u.endpoints.len() == 2));
    // The host removes bob: the real bob goes; the outsider shown as bob does not shield him.
    let mut a = alice(&focus);
    let mut refer = Call::new(TEAM);
    let branch = a.refer(&mut refer, "<sip:bob@example.com;method=BYE>", PAI_ALICE);
    assert_eq!(a.expect_final(&branch).status, 202);
    bob.expect_bye(&bc);
    fake.assert_quiet(QUIET, "the outsider is not taken for bob");
    // Asked again, the focus removes the one left shown as bob: the outsider.
    let mut refer = Call::new(TEAM);
    let branch = a.refer(&mut refer, "<sip:bob@example.com;method=BYE>", PAI_ALICE);
    assert_eq!(a.expect_final(&branch).status, 202);
    fake.expect_bye(&fc);
    assert_eq!(fake.bye(&mut fc).status, 481);
}
