//! The conference event package (RFC 4575, RFC 6665): subscriptions, full and partial
//! NOTIFYs with consecutive versions, unsubscribing, refusals, and rate-limited coalescing.

mod support;

use cpm_focus::conference_info::{
    apply, ConferenceInfo, DisconnectionMethod, ElemState, EndpointStatus,
};
use cpm_focus::sip::HeaderName;
use std::time::{Duration, Instant};
use support::{
    contact_of, endpoint_state, user_count, user_entities, without_version, Call, Focus, Notify,
    Ua, TEAM,
};

/// A fresh full document, fetched by a one-shot subscription (`Expires: 0`).
fn fetch(focus: &Focus, name: &str) -> ConferenceInfo {
    let mut ua = Ua::udp(focus, name);
    let mut call = Call::new(TEAM);
    let r = ua.subscribe(&mut call, Some(0));
    assert_eq!(r.status, 200, "{}", r.reason);
    assert_eq!(r.headers.get(HeaderName::Expires), Some("0"));
    let n = ua.expect_notify();
    assert_eq!(n.state, "terminated;reason=timeout");
    assert_eq!(n.doc.state, ElemState::Full);
    assert_eq!(n.doc.version, 1);
    n.doc
}

fn check_first_notify(n: &Notify, call: &Call) {
    assert_eq!(n.request.call_id(), call.call_id);
    assert_eq!(
        n.request.from.tag(),
        call.to_tag.as_deref(),
        "NOTIFY outside the dialog"
    );
    assert_eq!(n.request.to.tag(), Some(call.from_tag.as_str()));
    assert_eq!(n.request.headers.get(HeaderName::Event), Some("conference"));
    assert_eq!(
        n.request.headers.get(HeaderName::ContentType),
        Some("application/conference-info+xml")
    );
    let (_, isfocus) = {
        let v = n
            .request
            .headers
            .get(HeaderName::Contact)
            .expect("NOTIFY without Contact");
        let a = cpm_focus::sip::NameAddr::parse(v).unwrap();
        (a.uri.to_string(), a.param("isfocus").is_some())
    };
    assert!(isfocus, "NOTIFY Contact lacks isfocus");
    assert!(
        n.state == "active;expires=3600" || n.state == "active;expires=3599",
        "{}",
        n.state
    );
    let doc = &n.doc;
    assert_eq!(
        (doc.entity.as_str(), doc.state, doc.version),
        (TEAM, ElemState::Full, 1)
    );
    let d = doc.description.as_ref().expect("no conference-description");
    assert_eq!(d.display_text.as_deref(), Some("Team"));
    assert_eq!(d.subject.as_deref(), Some("Team chat"));
    assert_eq!(d.maximum_user_count, Some(1000));
    let s = doc.conference_state.expect("no conference-state");
    assert_eq!((s.user_count, s.active), (Some(0), Some(false)));
    assert!(user_entities(doc).is_empty());
}

fn joins_and_leaves_are_notified_in_order(tcp: bool) {
    let focus = Focus::start("");
    let mut sub = if tcp {
        Ua::tcp(&focus, "sub")
    } else {
        Ua::udp(&focus, "sub")
    };
    let mut call = Call::new(TEAM);
    let r = sub.subscribe(&mut call, None);
    assert_eq!((r.status, &*r.reason), (200, "OK"));
    assert_eq!(r.headers.get(HeaderName::Expires), Some("3600"));
    let (contact, isfocus) = contact_of(&r);
    assert!(isfocus, "200 Contact lacks isfocus");
    let addr = if tcp { focus.sip_tcp } else { focus.sip_udp };
    assert!(
        contact.starts_with(&format!("sip:team@{addr}")),
        "{contact}"
    );
    assert!(r.to.tag().is_some());
    let first = sub.expect_notify();
    check_first_notify(&first, &call);
    let mut view = first.doc;

    let mut alice = Ua::udp(&focus, "alice");
    let (mut alice_call, _) = alice.join(TEAM);
    let n = sub.expect_notify();
    assert_eq!((n.doc.state, n.doc.version), (ElemState::Partial, 2));
    apply(&mut view, &n.doc).unwrap();
    assert_eq!(user_count(&view), Some(1));
    assert_eq!(
        endpoint_state(&view, &alice.aor()),
        Some((EndpointStatus::Connected, None))
    );

    let mut bob = Ua::tcp(&focus, "bob");
    let (mut bob_call, _) = bob.join(TEAM);
    let n = sub.expect_notify();
    assert_eq!((n.doc.state, n.doc.version), (ElemState::Partial, 3));
    // A partial carries only what changed: bob, not alice.
    assert_eq!(user_entities(&n.doc), vec![bob.aor()]);
    apply(&mut view, &n.doc).unwrap();
    assert_eq!(user_count(&view), Some(2));

    assert_eq!(alice.bye(&mut alice_call).status, 200);
    let n = sub.expect_notify();
    assert_eq!((n.doc.state, n.doc.version), (ElemState::Partial, 4));
    apply(&mut view, &n.doc).unwrap();
    assert_eq!(user_count(&view), Some(1));
    assert_eq!(
        endpoint_state(&view, &alice.aor()),
        Some((
            EndpointStatus::Disconnected,
            Some(DisconnectionMethod::Departed)
        ))
    );
    assert_eq!(
        endpoint_state(&view, &bob.aor()),
        Some((EndpointStatus::Connected, None))
    );
    let active = view.conference_state.and_then(|s| s.active);
    assert_eq!(active, Some(true));

    // The merged view is exactly what a fresh full document says.
    assert_eq!(
        without_version(&view),
        without_version(&fetch(&focus, "fetcher"))
    );

    assert_eq!(bob.bye(&mut bob_call).status, 200);
    let n = sub.expect_notify();
    assert_eq!(n.doc.version, 5);
    apply(&mut view, &n.doc).unwrap();
    assert_eq!(user_count(&view), Some(0));
    assert_eq!(view.conference_state.and_then(|s| s.active), Some(false));
    assert!(
        sub.next_notify(Duration::from_millis(200)).is_none(),
        "NOTIFY without a change"
    );
}

#[test]
fn joins_and_leaves_are_notified_in_order_over_udp() {
    joins_and_leaves_are_notified_in_order(false);
}

#[test]
fn joins_and_leaves_are_notified_in_order_over_tcp() {
    joins_and_leaves_are_notified_in_order(true);
}

#[test]
fn expires_zero_ends_the_subscription_with_a_final_notify() {
    let focus = Focus::start("");
    let mut sub = Ua::udp(&focus, "sub");
    let (mut call, first) = sub.subscribe_to(TEAM);
    assert_eq!(first.doc.version, 1);
    let r = sub.subscribe(&mut call, Some(0));
    assert_eq!(r.status, 200, "{}", r.reason);
    assert_eq!(r.headers.get(HeaderName::Expires), Some("0"));
    let last = sub.expect_notify();
    assert_eq!(last.state, "terminated;reason=timeout");
    assert_eq!(last.doc.state, ElemState::Full);
    assert_eq!(last.doc.version, 2);
    assert_eq!(focus.metric("focus_subscriptions_active"), Some(0.0));
    // The dialog is gone: a join is not notified, a refresh finds nothing.
    let mut alice = Ua::udp(&focus, "alice");
    let (mut c, _) = alice.join(TEAM);
    assert!(
        sub.next_notify(Duration::from_millis(300)).is_none(),
        "NOTIFY after unsubscribing"
    );
    assert_eq!(sub.subscribe(&mut call, Some(600)).status, 481);
    assert_eq!(alice.bye(&mut c).status, 200);
}

#[test]
fn subscribe_refusals() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "carol");

    let mut call = Call::new(TEAM);
    let b = ua.send_request(&mut call, "SUBSCRIBE", "Event: presence\r\n", None);
    let r = ua.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (489, "Bad Event"));
    assert_eq!(r.headers.get(HeaderName::AllowEvents), Some("conference"));

    let mut call = Call::new(TEAM);
    let r = ua.subscribe(&mut call, Some(1));
    assert_eq!((r.status, &*r.reason), (423, "Interval Too Brief"));
    assert_eq!(r.headers.get(HeaderName::MinExpires), Some("60"));

    let mut call = Call::new(TEAM);
    let b = ua.send_request(&mut call, "SUBSCRIBE", "", None);
    let r = ua.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (400, "Missing Event header"));

    let mut call = Call::new(TEAM);
    let b = ua.send_request(
        &mut call,
        "SUBSCRIBE",
        "Event: conference\r\nAccept: application/pidf+xml\r\n",
        None,
    );
    let r = ua.expect_final(&b);
    assert_eq!(r.status, 406);
    assert_eq!(
        r.headers.get(HeaderName::Accept),
        Some("application/conference-info+xml")
    );

    // A long subscription is granted, shortened to the maximum.
    let mut call = Call::new(TEAM);
    let r = ua.subscribe(&mut call, Some(10_000_000));
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get(HeaderName::Expires), Some("86400"));
    assert_eq!(ua.expect_notify().doc.version, 1);
    // None of the refusals left a subscription behind.
    assert_eq!(focus.metric("focus_subscriptions_active"), Some(1.0));
}

#[test]
fn answering_a_notify_with_481_ends_the_subscription() {
    let focus = Focus::start("");
    let mut sub = Ua::udp(&focus, "sub");
    let (mut call, _) = sub.subscribe_to(TEAM);
    sub.set_notify_status(481);
    let mut alice = Ua::udp(&focus, "alice");
    let (mut c, _) = alice.join(TEAM);
    let refused = sub.expect_notify();
    assert_eq!((refused.answered, refused.doc.version), (481, 2));
    sub.set_notify_status(200);
    // The leave is not notified any more, and the dialog is gone.
    assert_eq!(alice.bye(&mut c).status, 200);
    assert!(
        sub.next_notify(Duration::from_millis(300)).is_none(),
        "NOTIFY after 481"
    );
    assert_eq!(focus.metric("focus_subscriptions_active"), Some(0.0));
    assert_eq!(sub.subscribe(&mut call, Some(600)).status, 481);
}

#[test]
fn notifies_are_coalesced_under_the_rate_limit_and_nothing_is_lost() {
    const JOINS: usize = 5;
    let focus = Focus::start("[subscriptions]\nmin_notify_interval_ms = 1000\n");
    let mut sub = Ua::udp(&focus, "sub");
    // Before the focus sends its first NOTIFY: the anchor of the spacing below.
    let subscribed = Instant::now();
    let (_call, first) = sub.subscribe_to(TEAM);
    let mut view = first.doc;
    let mut uas: Vec<Ua> = (0..JOINS)
        .map(|i| Ua::udp(&focus, &format!("user{i}")))
        .collect();
    let mut calls = Vec::new();
    for ua in &mut uas {
        calls.push(ua.join(TEAM).0);
    }
    let aors: Vec<String> = uas.iter().map(Ua::aor).collect();
    let mut times = vec![first.at];
    // Only a guard against a hang.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut versions = vec![view.version];
    while user_count(&view) != Some(JOINS as u32) {
        let n = sub
            .next_notify(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|| panic!("roster incomplete: {:?}", user_entities(&view)));
        apply(&mut view, &n.doc).unwrap_or_else(|e| panic!("versions not consecutive: {e}"));
        versions.push(n.doc.version);
        times.push(n.at);
    }
    let notifies = versions.len() - 1;
    assert!(
        (1..JOINS).contains(&notifies),
        "{JOINS} joins produced {notifies} NOTIFYs (versions {versions:?})"
    );
    // The k-th NOTIFY after the first is sent at least k intervals after it, and the first
    // after the SUBSCRIBE left: measured from that send time, a late read of one NOTIFY
    // cannot make the next look early.
    for (k, at) in times.iter().enumerate() {
        assert!(
            *at - subscribed >= Duration::from_millis(1000) * k as u32,
            "NOTIFY {k} came {} ms after the SUBSCRIBE, under {k} × the 1000 ms minimum \
             (all: {:?})",
            (*at - subscribed).as_millis(),
            times
                .iter()
                .map(|t| (*t - subscribed).as_millis())
                .collect::<Vec<_>>()
        );
    }
    // Every join is in the merged view, connected, and it equals a fresh full document.
    for aor in &aors {
        assert_eq!(
            endpoint_state(&view, aor),
            Some((EndpointStatus::Connected, None)),
            "{aor}"
        );
    }
    assert_eq!(
        without_version(&view),
        without_version(&fetch(&focus, "fetcher"))
    );
}

#[test]
fn a_refresh_gets_full_state_with_the_next_version() {
    let focus = Focus::start("");
    let mut alice = Ua::udp(&focus, "alice");
    let (mut c, _) = alice.join(TEAM);
    let mut sub = Ua::tcp(&focus, "sub");
    let (mut call, first) = sub.subscribe_to(TEAM);
    let r = sub.subscribe(&mut call, Some(600));
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get(HeaderName::Expires), Some("600"));
    let n = sub.expect_notify();
    assert!(
        n.state == "active;expires=600" || n.state == "active;expires=599",
        "{}",
        n.state
    );
    assert_eq!((n.doc.state, n.doc.version), (ElemState::Full, 2));
    assert_eq!(without_version(&n.doc), without_version(&first.doc));
    // Misuse of the dialogs: SUBSCRIBE in a participant's dialog, BYE in a subscription's.
    let b = alice.send_request(&mut c, "SUBSCRIBE", "Event: conference\r\n", None);
    let r = alice.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (403, "Forbidden"));
    assert!(r.headers.get(HeaderName::Warning).is_some());
    let b = sub.send_request(&mut call, "BYE", "", None);
    assert_eq!(sub.expect_final(&b).status, 481);
    // Neither ended anything.
    assert_eq!(alice.bye(&mut c).status, 200);
    assert_eq!(sub.expect_notify().doc.version, 3);
}

#[test]
fn a_subscription_expires_with_a_final_notify() {
    let focus = Focus::start("[subscriptions]\nmin_expires_s = 1\n");
    let mut sub = Ua::udp(&focus, "sub");
    let mut call = Call::new(TEAM);
    let r = sub.subscribe(&mut call, Some(1));
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get(HeaderName::Expires), Some("1"));
    let first = sub.expect_notify();
    assert!(
        first.state == "active;expires=1" || first.state == "active;expires=0",
        "{}",
        first.state
    );
    let last = sub.expect_notify();
    assert_eq!(last.state, "terminated;reason=timeout");
    assert_eq!(last.doc.version, 2);
    let lived = last.at - first.at;
    assert!(
        lived >= Duration::from_millis(800),
        "expired after {lived:?}"
    );
    assert_eq!(focus.metric("focus_subscriptions_active"), Some(0.0));
}

#[test]
fn departed_participants_are_deleted_after_the_retention_time() {
    let focus = Focus::start("[subscriptions]\ndeparted_retention_s = 1\n");
    let mut sub = Ua::udp(&focus, "sub");
    let (_call, first) = sub.subscribe_to(TEAM);
    let mut view = first.doc;
    let mut alice = Ua::udp(&focus, "alice");
    let (mut c, _) = alice.join(TEAM);
    // The retention starts at the departure, which comes after the BYE left: measured from
    // here, a late read of the departure NOTIFY cannot make the purge look early.
    let departed = Instant::now();
    assert_eq!(alice.bye(&mut c).status, 200);
    let aor = alice.aor();
    while endpoint_state(&view, &aor).map(|s| s.0) != Some(EndpointStatus::Disconnected) {
        let n = sub.expect_notify();
        apply(&mut view, &n.doc).unwrap();
    }
    let n = sub.expect_notify();
    let users = &n
        .doc
        .users
        .as_ref()
        .expect("no users in the purge NOTIFY")
        .users;
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].entity.as_str(), users[0].state),
        (aor.as_str(), ElemState::Deleted)
    );
    assert!(
        n.at - departed >= Duration::from_secs(1),
        "purged {:?} after the BYE, before the 1 s retention",
        n.at - departed
    );
    apply(&mut view, &n.doc).unwrap();
    assert!(user_entities(&view).is_empty());
    assert_eq!(
        without_version(&view),
        without_version(&fetch(&focus, "fetcher"))
    );
}

#[test]
fn a_failed_notify_is_retried_with_full_state_at_the_rate_limit() {
    const INTERVAL: Duration = Duration::from_millis(300);
    let focus = Focus::start("[subscriptions]\nmin_notify_interval_ms = 300\n");
    let mut sub = Ua::udp(&focus, "sub");
    // Before the focus's first NOTIFY: the anchor of the spacing below.
    let subscribed = Instant::now();
    let (_call, _first) = sub.subscribe_to(TEAM);
    sub.set_notify_status(500);
    let mut alice = Ua::udp(&focus, "alice");
    let (_c, _) = alice.join(TEAM);
    // Three NOTIFYs answered 500: the change, then retries. The i-th is sent at least i + 1
    // intervals after the first NOTIFY, itself sent after the SUBSCRIBE left: measured from
    // there, a late read of one cannot make the next look early (no NOTIFY storm).
    let failed: Vec<_> = (0..3).map(|_| sub.expect_notify()).collect();
    for (i, n) in failed.iter().enumerate() {
        assert_eq!(n.answered, 500);
        let after = n.at - subscribed;
        assert!(
            after >= INTERVAL * (i as u32 + 1),
            "NOTIFY {i} came {after:?} after the SUBSCRIBE, under {} × {INTERVAL:?}",
            i + 1
        );
        assert_eq!(n.doc.version, 2 + i as u32);
        if i > 0 {
            // After a failure the subscriber's view is unknown: full state again.
            assert_eq!(n.doc.state, ElemState::Full);
        }
    }
    // Once the subscriber answers again, it is up to date and stays subscribed (a retry
    // already on its way may still meet the 500: it is full state too).
    sub.set_notify_status(200);
    let ok = loop {
        let n = sub.expect_notify();
        assert_eq!(n.doc.state, ElemState::Full);
        if n.answered == 200 {
            break n;
        }
    };
    assert_eq!((ok.answered, ok.doc.state), (200, ElemState::Full));
    assert_eq!(
        endpoint_state(&ok.doc, &alice.aor()),
        Some((EndpointStatus::Connected, None))
    );
    assert_eq!(focus.metric("focus_subscriptions_active"), Some(1.0));
}
