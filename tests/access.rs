//! Who may watch a group and whom a moderator can name, end to end: the roster of a
//! members-only or invited-only group is shown only to those who may be in it (SUBSCRIBE
//! otherwise gets 403 with a Warning), and an anonymous participant is named by its alias
//! only, never by the real address it hides (REFER `method=BYE`, mute).

mod support;

use cpm_focus::conference_info::EndpointStatus;
use cpm_focus::sip::Response;
use std::time::Duration;
use support::{assert_refused, endpoint_state, follow, sipfrag, Call, Focus, Ua, TEAM};

const CLOSED: &str = r#"
[[groups]]
uri = "sip:board@focus.example.com"
join = "members-only"
[[groups.members]]
uri = "sip:carol@example.com"
role = "moderator"
[[groups.members]]
uri = "sip:dave@example.com"

[[groups]]
uri = "sip:townhall@focus.example.com"
join = "invited-only"
[[groups.members]]
uri = "sip:erin@example.com"
role = "host"
"#;

const BOARD: &str = "sip:board@focus.example.com";
const TOWNHALL: &str = "sip:townhall@focus.example.com";

fn subscribe(ua: &mut Ua, uri: &str) -> Response {
    let mut call = Call::new(uri);
    ua.subscribe(&mut call, Some(600))
}

#[test]
fn only_those_who_may_join_a_closed_group_may_subscribe_to_it() {
    let focus = Focus::start(CLOSED);
    let mut mallory = Ua::udp(&focus, "mallory");
    assert_refused(
        &subscribe(&mut mallory, BOARD),
        403,
        "Forbidden",
        "399 focus.example.com \"Only members of this group may subscribe to it\"",
    );
    assert_refused(
        &subscribe(&mut mallory, TOWNHALL),
        403,
        "Forbidden",
        "399 focus.example.com \"Only invited participants may subscribe to this group\"",
    );
    assert!(
        mallory.next_notify(Duration::from_millis(300)).is_none(),
        "a refused subscriber got a NOTIFY"
    );
    assert_eq!(
        focus.metric("focus_subscriptions_active").unwrap_or(0.0),
        0.0
    );
    for label in ["not_member", "not_invited"] {
        assert_eq!(
            focus.metric(&format!(
                "focus_policy_rejections_total{{reason=\"{label}\"}}"
            )),
            Some(1.0)
        );
    }
    // Listed members may, whatever their role.
    let mut dave = Ua::udp(&focus, "dave");
    let (_d, n) = dave.subscribe_to(BOARD);
    assert_eq!(n.doc.entity, BOARD);
    let mut erin = Ua::udp(&focus, "erin");
    let (_e, _) = erin.subscribe_to(TOWNHALL);

    // Someone the host brought into the invited-only group may, while in it.
    let mut frank = Ua::udp(&focus, "frank");
    frank.domain = "127.0.0.1".into();
    let mut refer = Call::new(TOWNHALL);
    let b = erin.refer(&mut refer, &format!("<sip:frank@{}>", frank.local), "");
    assert_eq!(erin.expect_final(&b).status, 202);
    let inv = frank.expect_invite();
    let (mut f, _msrp) = frank.accept_chat(&inv);
    for frag in ["SIP/2.0 100 Trying", "SIP/2.0 200 OK"] {
        assert_eq!(sipfrag(&erin.expect_sipfrag(), "refer"), frag);
    }
    let (_fs, n) = frank.subscribe_to(TOWNHALL);
    assert!(
        endpoint_state(&n.doc, "sip:frank@127.0.0.1")
            .is_some_and(|s| s.0 == EndpointStatus::Connected),
        "{:#?}",
        n.doc
    );
    assert_eq!(frank.bye(&mut f).status, 200);
    // An open group's roster is anyone's to see.
    let (_m, _) = mallory.subscribe_to(TEAM);
    assert_eq!(focus.metric("focus_subscriptions_active"), Some(4.0));
}

#[test]
fn an_anonymous_participant_is_named_by_its_alias_only() {
    let focus = Focus::start(
        r#"
        [[groups]]
        uri = "sip:team@focus.example.com"
        remove = "moderators"
        [[groups.members]]
        uri = "sip:alice@example.com"
        role = "moderator"
        "#,
    );
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_w, n) = watcher.subscribe_to(TEAM);
    let mut view = n.doc;
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let mut carol = Ua::udp(&focus, "carol");
    carol.invite_headers = "Privacy: id\r\n".into();
    let (c, _) = carol.join(TEAM);
    let alias = "sip:anonymous-1@anonymous.invalid";
    follow(&mut watcher, &mut view, |v| {
        endpoint_state(v, alias).is_some_and(|s| s.0 == EndpointStatus::Connected)
    });

    // Her real address names nobody: mute is 404, removal reports 481, she stays.
    let r = alice.control(
        &mut a,
        "INFO",
        r#"{"action":"mute","target":"sip:carol@example.com"}"#,
    );
    assert_eq!((r.status, &*r.reason), (404, "No such participant"));
    let mut refer = Call::new(TEAM);
    let b = alice.refer(&mut refer, "<sip:carol@example.com;method=BYE>", "");
    assert_eq!(alice.expect_final(&b).status, 202);
    assert_eq!(
        sipfrag(&alice.expect_sipfrag(), "refer"),
        "SIP/2.0 100 Trying"
    );
    assert_eq!(
        sipfrag(&alice.expect_sipfrag(), "refer"),
        "SIP/2.0 481 Call/Transaction Does Not Exist"
    );
    carol.assert_quiet(Duration::from_millis(300), "no BYE for her real address");

    // Her alias names her.
    let r = alice.control(
        &mut a,
        "INFO",
        &format!(r#"{{"action":"mute","target":"<{alias}>"}}"#),
    );
    assert_eq!(r.status, 200);
    follow(&mut watcher, &mut view, |v| {
        endpoint_state(v, alias).is_some_and(|s| s.0 == EndpointStatus::MutedViaFocus)
    });
    let mut refer = Call::new(TEAM);
    let b = alice.refer(
        &mut refer,
        &format!("<{alias};method=BYE>"),
        "Refer-Sub: false\r\n",
    );
    assert_eq!(alice.expect_final(&b).status, 200);
    let bye = carol.expect_bye(&c);
    assert_eq!(bye.call_id(), c.call_id);
    follow(&mut watcher, &mut view, |v| {
        endpoint_state(v, alias).is_some_and(|s| s.0 == EndpointStatus::Disconnected)
    });
    assert_eq!(
        focus.metric("focus_moderation_actions_total{action=\"mute\"}"),
        Some(2.0)
    );
    assert_eq!(alice.bye(&mut a).status, 200);
}
