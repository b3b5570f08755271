use super::*;
use crate::config::Config;
use crate::sip::{parse, Framing, Message, ParseLimits, Request};
use bytes::Bytes;
use std::net::IpAddr;

fn group(extra: &str) -> GroupPolicy {
    let text = format!(
        "[[groups]]\nuri = \"sip:g@focus.example.com\"\nmax_participants = 2\n{extra}\n[[groups.members]]\nuri = \"sip:host@example.com\"\nrole = \"host\"\n[[groups.members]]\nuri = \"sip:mod@example.com\"\nrole = \"moderator\"\n[[groups.members]]\nuri = \"sip:m@example.com\"\n"
    );
    let c = Config::from_toml(&text).unwrap();
    GroupPolicy::for_group(&c.groups[0], &c.policy)
}

fn who(aor: &str, anonymous: bool) -> Identity {
    Identity {
        aor: aor.into(),
        display: None,
        asserted: false,
        anonymous,
    }
}

#[test]
fn join_rules() {
    let open = group("join = \"open\"");
    assert_eq!(
        open.admit(&who("sip:x@y", false), Arrival::DialIn, 0, false),
        Ok(Role::Participant)
    );
    assert_eq!(
        open.admit(
            &who("sip:host@example.com", false),
            Arrival::DialIn,
            0,
            false
        ),
        Ok(Role::Host)
    );
    assert_eq!(
        open.admit(&who("sip:x@y", false), Arrival::DialIn, 2, false)
            .unwrap_err()
            .status,
        486
    );
    let locked = open
        .admit(&who("sip:x@y", false), Arrival::DialIn, 0, true)
        .unwrap_err();
    assert_eq!((locked.status, locked.label), (403, "locked"));
    // Invited participants still come in when the group is locked.
    assert!(open
        .admit(&who("sip:x@y", false), Arrival::Invited, 0, true)
        .is_ok());
    // So do its hosts and moderators, dialing in; a plain listed member does not.
    for (aor, role) in [
        ("sip:host@example.com", Role::Host),
        ("sip:mod@example.com", Role::Moderator),
    ] {
        assert_eq!(
            open.admit(&who(aor, false), Arrival::DialIn, 0, true),
            Ok(role)
        );
    }
    assert_eq!(
        open.admit(&who("sip:m@example.com", false), Arrival::DialIn, 0, true)
            .unwrap_err()
            .label,
        "locked"
    );

    let members = group("join = \"members-only\"");
    let r = members
        .admit(&who("sip:x@y", false), Arrival::DialIn, 0, false)
        .unwrap_err();
    assert_eq!((r.status, r.label), (403, "not_member"));
    assert_eq!(
        members.admit(&who("sip:m@example.com", false), Arrival::DialIn, 0, false),
        Ok(Role::Participant)
    );

    let invited = group("join = \"invited-only\"");
    let r = invited
        .admit(&who("sip:x@y", false), Arrival::DialIn, 0, false)
        .unwrap_err();
    assert_eq!((r.status, r.label), (403, "not_invited"));
    assert!(invited
        .admit(&who("sip:x@y", false), Arrival::Invited, 0, false)
        .is_ok());

    let no_anon = group("allow_anonymous = false");
    let r = no_anon
        .admit(&who("sip:x@y", true), Arrival::DialIn, 0, false)
        .unwrap_err();
    assert_eq!((r.status, r.label), (403, "anonymous"));
}

#[test]
fn control_rights() {
    let g = group("add = \"moderators\"\nremove = \"hosts\"");
    assert!(g.allow(Some(Role::Moderator), true, Action::Add).is_ok());
    assert!(g
        .allow(Some(Role::Participant), false, Action::Add)
        .is_err());
    assert!(g
        .allow(Some(Role::Moderator), true, Action::Remove)
        .is_err());
    assert!(g.allow(Some(Role::Host), true, Action::Remove).is_ok());
    assert!(g.allow(None, false, Action::Moderate).is_err());
    let anyone = group("add = \"anyone\"");
    assert!(anyone
        .allow(Some(Role::Participant), false, Action::Add)
        .is_ok());
    assert!(anyone.allow(None, false, Action::Add).is_err());
    let members = group("add = \"members\"");
    assert!(members.allow(None, true, Action::Add).is_ok());
    assert!(members
        .allow(Some(Role::Participant), false, Action::Add)
        .is_err());
}

#[test]
fn media_is_bounded_by_the_provider() {
    let text = "[policy]\nallowed_media = [\"msrp\"]\n[[groups]]\nuri = \"sip:g@focus.example.com\"\nallowed_media = [\"audio\"]\n";
    let issues = Config::from_toml(text).unwrap_err().to_string();
    assert!(issues.contains("groups[0].allowed_media"), "{issues}");
    let g = group("");
    assert!(g.serves(MediaKind::Msrp));
    assert!(!g.serves(MediaKind::Audio));
}

fn req(extra: &str) -> Request {
    let text = format!("INVITE sip:g@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nFrom: \"Alice\" <sip:alice@example.com>;tag=1\r\nTo: <sip:g@focus.example.com>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n");
    match parse(
        Bytes::from(text),
        Framing::Datagram,
        &ParseLimits::default(),
    ) {
        Ok(Message::Request(r)) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn asserted_identity_only_from_trusted_hosts() {
    let r = req("P-Asserted-Identity: \"Real Alice\" <sip:alice.real@operator.net>\r\n");
    let trusted: Vec<IpAddr> = vec!["10.0.0.9".parse().unwrap()];
    let id = identify(&r, "10.0.0.9".parse().unwrap(), &trusted);
    assert_eq!(
        (id.aor.as_str(), id.asserted),
        ("sip:alice.real@operator.net", true)
    );
    assert_eq!(id.display.as_deref(), Some("Real Alice"));
    let id = identify(&r, "10.0.0.1".parse().unwrap(), &trusted);
    assert_eq!(
        (id.aor.as_str(), id.asserted),
        ("sip:alice@example.com", false)
    );
    assert_eq!(id.display.as_deref(), Some("Alice"));
}

#[test]
fn privacy_values() {
    let any: IpAddr = "10.0.0.1".parse().unwrap();
    assert!(identify(&req("Privacy: id\r\n"), any, &[]).anonymous);
    assert!(identify(&req("Privacy: user; critical\r\n"), any, &[]).anonymous);
    assert!(identify(&req("Privacy: header\r\n"), any, &[]).anonymous);
    assert!(!identify(&req("Privacy: none\r\n"), any, &[]).anonymous);
    assert!(!identify(&req("Privacy: session\r\n"), any, &[]).anonymous);
    assert!(!identify(&req(""), any, &[]).anonymous);
}

#[test]
fn only_those_who_may_join_may_watch_a_closed_group() {
    let outsider = who("sip:x@y", false);
    assert!(group("join = \"open\"").may_watch(&outsider, false).is_ok());
    for (rule, label) in [
        ("members-only", "not_member"),
        ("invited-only", "not_invited"),
    ] {
        let g = group(&format!("join = \"{rule}\""));
        let r = g.may_watch(&outsider, false).unwrap_err();
        assert_eq!((r.status, r.label), (403, label), "{rule}");
        // A listed member may, and so may whoever is in the session (invited).
        assert!(g.may_watch(&who("sip:m@example.com", false), false).is_ok());
        assert!(g.may_watch(&outsider, true).is_ok());
    }
}
