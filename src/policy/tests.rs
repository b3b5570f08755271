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

/// A proven identity (the From of a trusted host).
fn who(aor: &str, anonymous: bool) -> Identity {
    Identity {
        aor: aor.into(),
        display: None,
        proof: Proof::TrustedFrom,
        counts: true,
        anonymous,
    }
}

/// What an untrusted source claims.
fn claim(aor: &str) -> Identity {
    Identity {
        proof: Proof::Claimed,
        counts: false,
        ..who(aor, false)
    }
}

fn trust(mode: crate::config::IdentityMode, hosts: &[&str]) -> Trust {
    Trust {
        mode,
        hosts: hosts.iter().map(|h| h.parse().unwrap()).collect(),
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
    assert_eq!((locked.status.code(), locked.label), (403, "locked"));
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
    assert_eq!((r.status.code(), r.label), (403, "not_member"));
    assert_eq!(
        members.admit(&who("sip:m@example.com", false), Arrival::DialIn, 0, false),
        Ok(Role::Participant)
    );

    let invited = group("join = \"invited-only\"");
    let r = invited
        .admit(&who("sip:x@y", false), Arrival::DialIn, 0, false)
        .unwrap_err();
    assert_eq!((r.status.code(), r.label), (403, "not_invited"));
    assert!(invited
        .admit(&who("sip:x@y", false), Arrival::Invited, 0, false)
        .is_ok());

    let no_anon = group("allow_anonymous = false");
    let r = no_anon
        .admit(&who("sip:x@y", true), Arrival::DialIn, 0, false)
        .unwrap_err();
    assert_eq!((r.status.code(), r.label), (403, "anonymous"));
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
    use crate::config::IdentityMode;
    let r = req("P-Asserted-Identity: \"Real Alice\" <sip:alice.real@operator.net>\r\n");
    let t = trust(IdentityMode::Asserted, &["10.0.0.9"]);
    let id = t.identify(&r, "10.0.0.9".parse().unwrap(), None);
    assert_eq!(
        (id.aor.as_str(), id.proof, id.counts),
        ("sip:alice.real@operator.net", Proof::Asserted, true)
    );
    assert_eq!(id.display.as_deref(), Some("Real Alice"));
    // From anywhere else the PAI is ignored and the From is a bare claim.
    let id = t.identify(&r, "10.0.0.1".parse().unwrap(), None);
    assert_eq!(
        (id.aor.as_str(), id.proof, id.counts),
        ("sip:alice@example.com", Proof::Claimed, false)
    );
    assert_eq!(id.entitled(), None);
    assert_eq!(id.display.as_deref(), Some("Alice"));
    // A P-Preferred-Identity is never believed, even from a trusted host.
    let r = req("P-Preferred-Identity: <sip:boss@operator.net>\r\n");
    let id = t.identify(&r, "10.0.0.9".parse().unwrap(), None);
    assert_eq!(
        (id.aor.as_str(), id.proof),
        ("sip:alice@example.com", Proof::TrustedFrom)
    );
    assert_eq!(id.entitled(), Some("sip:alice@example.com"));
}

#[test]
fn the_one_decision_on_what_counts() {
    use crate::config::IdentityMode;
    let strict = trust(IdentityMode::Asserted, &[]);
    let lab = trust(IdentityMode::From, &[]);
    for proof in [
        Proof::Asserted,
        Proof::Authenticated,
        Proof::TrustedFrom,
        Proof::Called,
    ] {
        assert!(strict.counts(proof), "{proof:?}");
        assert!(lab.counts(proof), "{proof:?}");
    }
    assert!(!strict.counts(Proof::Claimed));
    assert!(lab.counts(Proof::Claimed));
    // The lab mode believes an untrusted From, but still says how it is known.
    let id = lab.identify(&req(""), "10.0.0.1".parse().unwrap(), None);
    assert_eq!((id.proof, id.counts), (Proof::Claimed, true));
}

#[test]
fn an_authenticated_identity_counts_from_anywhere() {
    use crate::config::IdentityMode;
    let t = trust(IdentityMode::Asserted, &["10.0.0.9"]);
    let r = req("P-Asserted-Identity: <sip:forged@operator.net>\r\n");
    let id = t.identify(
        &r,
        "10.0.0.1".parse().unwrap(),
        Some("sip:alice@example.com"),
    );
    assert_eq!(
        (id.aor.as_str(), id.proof, id.counts),
        ("sip:alice@example.com", Proof::Authenticated, true)
    );
    assert_eq!(id.display.as_deref(), Some("Alice"));
    // Proven as someone else than the From names: the proof wins, without the From's name.
    let id = t.identify(
        &r,
        "10.0.0.1".parse().unwrap(),
        Some("sip:carol@example.com"),
    );
    assert_eq!(
        (id.aor.as_str(), id.display),
        ("sip:carol@example.com", None)
    );
}

#[test]
fn an_ipv4_mapped_source_is_the_trusted_host() {
    let t = trust(crate::config::IdentityMode::Asserted, &["127.0.0.1"]);
    assert!(t.trusts("::ffff:127.0.0.1".parse().unwrap()));
    assert!(!t.trusts("::ffff:127.0.0.66".parse().unwrap()));
    assert!(!t.trusts("127.0.0.66".parse().unwrap()));
}

#[test]
fn an_outsider_is_no_member_and_no_host() {
    let members = group("join = \"members-only\"");
    let r = members
        .admit(&claim("sip:host@example.com"), Arrival::DialIn, 0, false)
        .unwrap_err();
    assert_eq!((r.status.code(), r.label), (403, "unverified"));
    assert!(r.warning.contains("not verified"), "{}", r.warning);
    let invited = group("join = \"invited-only\"");
    assert_eq!(
        invited
            .admit(&claim("sip:host@example.com"), Arrival::DialIn, 0, false)
            .unwrap_err()
            .label,
        "unverified"
    );
    // An open group takes it, as a plain participant whatever it claims.
    let open = group("join = \"open\"");
    assert_eq!(
        open.admit(&claim("sip:host@example.com"), Arrival::DialIn, 0, false),
        Ok(Role::Participant)
    );
    // A lock keeps it out though the host it claims may pass.
    assert_eq!(
        open.admit(&claim("sip:host@example.com"), Arrival::DialIn, 0, true)
            .unwrap_err()
            .label,
        "locked"
    );
    // It may not watch a closed group it claims to be listed in.
    assert_eq!(
        members
            .may_watch(&claim("sip:m@example.com"), false)
            .unwrap_err()
            .label,
        "unverified"
    );
    assert!(open.may_watch(&claim("sip:x@y"), false).is_ok());
}

#[test]
fn privacy_values() {
    let any: IpAddr = "10.0.0.1".parse().unwrap();
    let t = Trust::default();
    let anon = |extra: &str| t.identify(&req(extra), any, None).anonymous;
    assert!(anon("Privacy: id\r\n"));
    assert!(anon("Privacy: user; critical\r\n"));
    assert!(anon("Privacy: header\r\n"));
    assert!(!anon("Privacy: none\r\n"));
    assert!(!anon("Privacy: session\r\n"));
    assert!(!anon(""));
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
        assert_eq!((r.status.code(), r.label), (403, label), "{rule}");
        // A listed member may, and so may whoever is in the session (invited).
        assert!(g.may_watch(&who("sip:m@example.com", false), false).is_ok());
        assert!(g.may_watch(&outsider, true).is_ok());
    }
}

#[test]
fn an_outsider_is_billed_to_its_source_address_never_to_its_claim() {
    use super::identity::{source_account, Charged};
    let v4: IpAddr = "192.0.2.7".parse().unwrap();
    let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    let v6: IpAddr = "2001:db8::7".parse().unwrap();
    assert_eq!(source_account(v4), "source:192.0.2.7");
    assert_eq!(source_account(mapped), "source:192.0.2.7");
    assert_eq!(source_account(v6), "source:[2001:db8::7]");
    let alice = "sip:alice@example.com";
    assert_eq!(
        Charged::new(alice, Proof::Claimed, false, v4),
        Charged {
            subject: "source:192.0.2.7".into(),
            verified: false
        }
    );
    // The lab mode bills a claim as written, still unverified.
    assert_eq!(
        Charged::new(alice, Proof::Claimed, true, v4),
        Charged {
            subject: alice.into(),
            verified: false
        }
    );
    for proof in [
        Proof::Asserted,
        Proof::Authenticated,
        Proof::TrustedFrom,
        Proof::Called,
    ] {
        assert_eq!(
            Charged::new(alice, proof, true, v4),
            Charged {
                subject: alice.into(),
                verified: true
            }
        );
    }
}
