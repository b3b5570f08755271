//! Liveness (issue 18): a subscriber whose connection is gone is noticed within seconds,
//! not when its subscription expires or a NOTIFY fails a minute or two later.

mod support;

use std::time::Instant;
use support::{Focus, Ua, TEAM, WAIT};

/// A subscription set up over TCP by an untrusted subscriber is bound to that connection
/// (its in-dialog requests must come on it). When the connection closes the subscription
/// ends at once and leaves the gauge; another subscriber's, on its own connection, stays
/// and keeps hearing the news.
#[test]
fn a_subscription_ends_when_its_tcp_connection_closes() {
    let focus = Focus::start("");
    let mut stays = Ua::tcp_from(&focus, "stays", "127.0.0.67");
    let (_kept, first) = stays.subscribe_to(TEAM);
    let mut view = first.doc;
    let mut leaves = Ua::tcp_from(&focus, "leaves", "127.0.0.66");
    let (_sub, _) = leaves.subscribe_to(TEAM);
    focus.wait_metric("focus_subscriptions_active", WAIT, |v| v == 2.0);
    let closed = Instant::now();
    drop(leaves);
    // The guard is generous for a loaded machine; the focus acts on the close itself, so
    // this takes milliseconds (before: until the subscription expired, up to an hour, or a
    // NOTIFY failed).
    focus.wait_metric("focus_subscriptions_active", WAIT, |v| v == 1.0);
    eprintln!(
        "subscription ended {:?} after its connection closed",
        closed.elapsed()
    );
    assert_eq!(
        focus.metric("focus_subscriptions_flow_closed_total"),
        Some(1.0)
    );
    // The other subscriber still hears a join.
    let mut dave = Ua::udp(&focus, "dave");
    let (mut call, _) = dave.join(TEAM);
    while support::user(&view, "sip:dave@example.com").is_none() {
        let n = stays.expect_notify();
        cpm_focus::conference_info::apply(&mut view, &n.doc).expect("a NOTIFY that applies");
    }
    assert_eq!(dave.bye(&mut call).status, 200);
    assert_eq!(
        focus.metric("focus_subscriptions_active"),
        Some(1.0),
        "the other subscription is untouched"
    );
}
