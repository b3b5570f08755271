//! Identity and privacy end to end: RFC 3325 P-Asserted-Identity is believed only from a
//! trusted host; RFC 3323 `Privacy` makes a participant anonymous to everyone else (roster,
//! chat messages, requests the focus sends on its behalf); display names are shown when no
//! privacy is asked for.

mod support;

use cpm_focus::conference_info::EndpointStatus;
use cpm_focus::sip::HeaderName;
use support::{cpim_text, user, Call, ChatMember, Focus, Ua, Watcher, AUDIO_OFFER, TEAM};

#[test]
fn an_anonymous_participant_is_anonymous_to_everyone_else() {
    let focus = Focus::start("");
    let mut early = Watcher::new(Ua::udp(&focus, "early"), TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    alice.display = "Alice Liddell".into();
    let mut alice = ChatMember::join(alice, TEAM);
    let mut dave = Ua::udp(&focus, "dave");
    dave.display = "Dave Secretive".into();
    dave.invite_headers = "Privacy: id\r\n".into();
    let mut dave = ChatMember::join(dave, TEAM);
    let alias = "sip:anonymous-1@anonymous.invalid";
    early.until(|v| v.conference_state.and_then(|s| s.user_count) == Some(2));
    // A subscriber arriving later gets the full state: the same alias.
    let mut late = Watcher::new(Ua::udp(&focus, "late"), TEAM);

    let secrets = [
        "dave",
        "Secretive",
        dave.ua.contact_uri().as_str(),
        dave.call.call_id.as_str(),
        dave.call.from_tag.as_str(),
    ]
    .map(str::to_string);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    for w in [&early, &late] {
        let u = user(&w.view, alias).unwrap_or_else(|| panic!("no alias: {:#?}", w.view));
        assert_eq!(u.display_text.as_deref(), Some("Anonymous 1"));
        let e = &u.endpoints[0];
        assert_eq!(e.entity, alias, "the endpoint is the alias too");
        assert!(e.call_info.is_none(), "dialog details identify the caller");
        assert_eq!(e.status, Some(EndpointStatus::Connected));
        // alice, who asked for nothing, is shown as herself.
        assert!(user(&w.view, "sip:alice@example.com").is_some());
        w.assert_never_saw(&secrets);
    }

    // In the chat: whatever dave writes as CPIM From, the others see the alias.
    let cpim = cpim_text(&dave.ua.aor(), TEAM, "guess who")
        .to_bytes()
        .unwrap();
    let req = dave.msrp.request("message/cpim", cpim);
    let tid = dave.msrp.send(&req);
    assert_eq!(dave.msrp.expect_response(&tid).code, 200);
    let got = alice.msrp.expect_message();
    assert_eq!(got.text(), "guess who");
    let from = got.cpim().from.clone().unwrap();
    assert_eq!(from.uri, alias);
    assert_eq!(from.display.as_deref(), Some("Anonymous 1"));
    let raw = String::from_utf8_lossy(&got.request.body).to_ascii_lowercase();
    assert!(
        !raw.contains("dave"),
        "the relayed message names dave:\n{raw}"
    );
    assert_eq!(dave.msrp.say("plain text too").code, 200);
    assert_eq!(alice.msrp.expect_message().sender_uri(), alias);
    // dave sees alice as alice.
    assert_eq!(alice.msrp.say("hi, whoever you are").code, 200);
    let got = dave.msrp.expect_message();
    assert_eq!(got.sender_uri(), "sip:alice@example.com");
    assert_eq!(
        got.cpim().from.as_ref().unwrap().display.as_deref(),
        Some("Alice Liddell")
    );

    // A second anonymous participant gets an alias of its own.
    let mut erin = Ua::tcp(&focus, "erin");
    erin.invite_headers = "Privacy: user;id\r\n".into();
    let (mut ec, _) = erin.join(TEAM);
    early.until(|v| user(v, "sip:anonymous-2@anonymous.invalid").is_some());
    let u = user(&early.view, "sip:anonymous-2@anonymous.invalid").unwrap();
    assert_eq!(u.display_text.as_deref(), Some("Anonymous 2"));

    // Leaving keeps the secret too.
    assert_eq!(dave.ua.bye(&mut dave.call).status, 200);
    for w in [&mut early, &mut late] {
        w.until(|v| {
            user(v, alias)
                .is_some_and(|u| u.endpoints[0].status == Some(EndpointStatus::Disconnected))
        });
        w.assert_never_saw(&secrets);
        w.assert_never_saw(&["erin"]);
    }
    assert_eq!(erin.bye(&mut ec).status, 200);
    assert_eq!(alice.ua.bye(&mut alice.call).status, 200);
}

#[test]
fn display_names_are_shown_when_no_privacy_is_asked() {
    // Dialog identifiers go only to a subscriber of the trusted core, and only when configured
    // (issue 14): the watcher plays that core service here.
    let focus = Focus::start(
        "[policy]\ntrusted_hosts = [\"127.0.0.1\"]\n[subscriptions]\ncall_info_to_trusted = true\n",
    );
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    alice.display = "Alice Liddell".into();
    let mut alice = ChatMember::join(alice, TEAM);
    let mut bob = ChatMember::join(Ua::udp(&focus, "bob"), TEAM);
    w.until(|v| v.conference_state.and_then(|s| s.user_count) == Some(2));
    let u = user(&w.view, "sip:alice@example.com").unwrap();
    assert_eq!(u.display_text.as_deref(), Some("Alice Liddell"));
    let e = &u.endpoints[0];
    assert_eq!(e.entity, alice.ua.contact_uri());
    let dialog = e
        .call_info
        .as_ref()
        .expect("dialog details of a named participant");
    assert_eq!(dialog.call_id, alice.call.call_id);
    assert_eq!(dialog.from_tag, alice.call.from_tag);
    // The chat names her the same way.
    assert_eq!(alice.msrp.say("hello").code, 200);
    let got = bob.msrp.expect_message();
    let from = got.cpim().from.clone().unwrap();
    assert_eq!(
        (from.uri.as_str(), from.display.as_deref()),
        ("sip:alice@example.com", Some("Alice Liddell"))
    );
    assert_eq!(bob.ua.bye(&mut bob.call).status, 200);
    assert_eq!(alice.ua.bye(&mut alice.call).status, 200);
}

/// A group whose only member is the asserted identity, and the open team group.
fn asserted_config(trusted: &str) -> String {
    format!(
        r#"
        [policy]
        trusted_hosts = ["{trusted}"]
        [[groups]]
        uri = "sip:vip@focus.example.com"
        join = "members-only"
        [[groups.members]]
        uri = "sip:eve.asserted@ims.example.net"
        role = "moderator"
        "#
    )
}

const PAI: &str = "P-Asserted-Identity: \"Eve Asserted\" <sip:eve.asserted@ims.example.net>\r\n";

#[test]
fn an_asserted_identity_from_a_trusted_host_is_the_identity() {
    let focus = Focus::start(&asserted_config("127.0.0.1"));
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut eve = Ua::udp(&focus, "eve");
    eve.invite_headers = PAI.into();
    let mut eve = ChatMember::join(eve, TEAM);
    let mut bob = ChatMember::join(Ua::udp(&focus, "bob"), TEAM);
    w.until(|v| v.conference_state.and_then(|s| s.user_count) == Some(2));
    let u = user(&w.view, "sip:eve.asserted@ims.example.net")
        .unwrap_or_else(|| panic!("the asserted identity is not in {:#?}", w.view));
    assert_eq!(u.display_text.as_deref(), Some("Eve Asserted"));
    assert!(user(&w.view, "sip:eve@example.com").is_none());
    // Her chat messages carry it.
    assert_eq!(eve.msrp.say("it is me").code, 200);
    let got = bob.msrp.expect_message();
    let from = got.cpim().from.clone().unwrap();
    assert_eq!(
        (from.uri.as_str(), from.display.as_deref()),
        ("sip:eve.asserted@ims.example.net", Some("Eve Asserted"))
    );
    // Policy decides on it: the members-only group takes her, as moderator.
    let mut eve2 = Ua::udp(&focus, "eve");
    eve2.invite_headers = PAI.into();
    let (mut c, _) = eve2.join("sip:vip@focus.example.com");
    let r = eve2.control(&mut c, "INFO", r#"{"action":"lock"}"#);
    assert_eq!(r.status, 200, "the asserted member is a moderator");
    assert_eq!(eve2.bye(&mut c).status, 200);
    assert_eq!(bob.ua.bye(&mut bob.call).status, 200);
    assert_eq!(eve.ua.bye(&mut eve.call).status, 200);
}

#[test]
fn an_asserted_identity_from_an_untrusted_host_is_ignored() {
    // The only trusted host is elsewhere: the test agents' P-Asserted-Identity is not believed.
    let focus = Focus::start(&asserted_config("192.0.2.10"));
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut eve = Ua::udp(&focus, "eve");
    eve.invite_headers = PAI.into();
    let mut eve = ChatMember::join(eve, TEAM);
    let mut bob = ChatMember::join(Ua::udp(&focus, "bob"), TEAM);
    w.until(|v| v.conference_state.and_then(|s| s.user_count) == Some(2));
    assert!(
        user(&w.view, "sip:eve@example.com").is_some(),
        "{:#?}",
        w.view
    );
    assert!(user(&w.view, "sip:eve.asserted@ims.example.net").is_none());
    w.assert_never_saw(&["eve.asserted", "Eve Asserted"]);
    assert_eq!(eve.msrp.say("trust me").code, 200);
    assert_eq!(
        bob.msrp.expect_message().sender_uri(),
        "sip:eve@example.com"
    );
    // Claiming a member's identity gets nobody into the members-only group: from an
    // untrusted host the claim counts for nothing (policy.identity = "asserted").
    let mut eve2 = Ua::udp(&focus, "eve");
    eve2.invite_headers = PAI.into();
    let mut call = Call::new("sip:vip@focus.example.com");
    let b = eve2.invite(&mut call, Some(AUDIO_OFFER));
    let r = eve2.expect_final(&b);
    assert_eq!(r.status, 403);
    assert_eq!(
        r.headers.get(HeaderName::Warning),
        Some(
            "399 focus.example.com \"Your identity is not verified: only a verified identity \
             may join this group\""
        )
    );
    assert_eq!(
        focus.metric("focus_policy_rejections_total{reason=\"unverified\"}"),
        Some(1.0)
    );
    assert_eq!(bob.ua.bye(&mut bob.call).status, 200);
    assert_eq!(eve.ua.bye(&mut eve.call).status, 200);
}

#[test]
fn an_anonymous_moderator_stays_anonymous_when_it_adds_or_removes() {
    let focus = Focus::start(
        r#"
        [[groups]]
        uri = "sip:team@focus.example.com"
        [[groups.members]]
        uri = "sip:alice@example.com"
        role = "moderator"
        [[groups.members]]
        uri = "sip:bob@example.com"
        role = "moderator"
        "#,
    );
    let mut w = Watcher::new(Ua::udp(&focus, "watcher"), TEAM);
    let mut alice = Ua::udp(&focus, "alice");
    alice.invite_headers = "Privacy: id\r\n".into();
    let (mut a, _) = alice.join(TEAM);
    let mut carol = Ua::udp(&focus, "carol");
    let (c, _) = carol.join(TEAM);
    let alias = "sip:anonymous-1@anonymous.invalid";
    // REFER from outside the INVITE dialog (the session knows her by her real identity).
    let mut dan = Ua::udp(&focus, "dan");
    let mut refer = Call::new(TEAM);
    let b = alice.refer(
        &mut refer,
        &format!("<sip:dan@{}>", dan.local),
        "Privacy: id\r\nRefer-Sub: false\r\n",
    );
    assert_eq!(alice.expect_final(&b).status, 200);
    let inv = dan.expect_invite();
    let by = inv.header(HeaderName::ReferredBy).unwrap_or("").to_string();
    assert!(!by.contains("alice"), "the INVITE to dan names alice: {by}");
    assert_eq!(by, format!("<{alias}>"));
    dan.refuse_invite(&inv, 486);
    // And removing carol does not name her either.
    let mut refer = Call::new(TEAM);
    let b = alice.refer(
        &mut refer,
        "<sip:carol@example.com;method=BYE>",
        "Refer-Sub: false\r\n",
    );
    assert_eq!(alice.expect_final(&b).status, 200);
    let bye = carol.expect_bye(&c);
    let reason = bye.headers.get_by_name("Reason").unwrap_or("").to_string();
    assert!(
        !reason.contains("alice"),
        "the BYE to carol names alice: {reason}"
    );
    // A moderator outside the session asking for privacy: the anonymous URI.
    let mut bob = Ua::udp(&focus, "bob");
    let mut erin = Ua::udp(&focus, "erin");
    let mut refer = Call::new(TEAM);
    let b = bob.refer(
        &mut refer,
        &format!("<sip:erin@{}>", erin.local),
        "Privacy: id\r\nRefer-Sub: false\r\n",
    );
    assert_eq!(bob.expect_final(&b).status, 200);
    let inv = erin.expect_invite();
    assert_eq!(
        inv.header(HeaderName::ReferredBy),
        Some("<sip:anonymous@anonymous.invalid>")
    );
    erin.refuse_invite(&inv, 486);
    w.until(|v| {
        user(v, "sip:carol@example.com")
            .is_some_and(|u| u.endpoints[0].status == Some(EndpointStatus::Disconnected))
            && user(v, "sip:dan@127.0.0.1")
                .is_some_and(|u| u.endpoints[0].status == Some(EndpointStatus::Disconnected))
    });
    w.until(|v| {
        user(v, "sip:erin@127.0.0.1")
            .is_some_and(|u| u.endpoints[0].status == Some(EndpointStatus::Disconnected))
    });
    w.assert_never_saw(&["alice", "sip:bob"]);
    assert_eq!(alice.bye(&mut a).status, 200);
}
