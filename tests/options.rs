//! OPTIONS: the focus and its groups describe themselves; unknown conferences do not exist.

mod support;

use cpm_focus::sip::{HeaderName, Response};
use support::{contact_of, Focus, Ua, TEAM};

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, SUBSCRIBE, REFER, INFO, MESSAGE, UPDATE";

fn assert_capabilities(r: &Response, contact: &str) {
    assert_eq!((r.status, &*r.reason), (200, "OK"));
    assert_eq!(r.headers.get(HeaderName::Allow), Some(ALLOW));
    assert_eq!(r.headers.get(HeaderName::Accept), Some("application/sdp"));
    assert_eq!(r.headers.get(HeaderName::AllowEvents), Some("conference"));
    let (uri, isfocus) = contact_of(r);
    assert_eq!(uri, contact);
    assert!(isfocus, "Contact lacks ;isfocus");
    assert!(r.body.is_empty());
}

fn options_everywhere(tcp: bool) {
    let focus = Focus::start("");
    let mut ua = if tcp {
        Ua::tcp(&focus, "alice")
    } else {
        Ua::udp(&focus, "alice")
    };
    let (addr, transport) = if tcp {
        (focus.sip_tcp, ";transport=tcp")
    } else {
        (focus.sip_udp, "")
    };

    // The focus itself.
    let r = ua.options("sip:focus.example.com");
    assert_capabilities(&r, &format!("sip:{addr}{transport}"));
    // Out-of-dialog answers name the product and the instance (config focus.instance_id).
    let server = r.headers.get(HeaderName::Server).unwrap_or("");
    assert!(
        server.starts_with("cpm-focus/") && server.ends_with("(focus-1)"),
        "Server: {server}"
    );
    // The group by its URI.
    let r = ua.options(TEAM);
    assert_capabilities(&r, &format!("sip:team@{addr}{transport}"));
    // The group through the address the focus listens on.
    let r = ua.options(&format!("sip:team@{addr}"));
    assert_capabilities(&r, &format!("sip:team@{addr}{transport}"));
    // The focus by the address it listens on.
    let r = ua.options(&format!("sip:{addr}"));
    assert_capabilities(&r, &format!("sip:{addr}{transport}"));
    // Host names compare case-insensitively.
    let r = ua.options("sip:team@FOCUS.Example.COM");
    assert_eq!(r.status, 200, "{}", r.reason);

    // A conference that does not exist, and a host that is not the focus.
    for uri in [
        "sip:nosuchgroup@focus.example.com",
        "sip:team@elsewhere.example.org",
        "sip:team@192.0.2.1",
    ] {
        let r = ua.options(uri);
        assert_eq!((r.status, &*r.reason), (404, "Not Found"), "{uri}");
        assert!(r.to.tag().is_some(), "{uri}: final response without To tag");
    }
}

#[test]
fn options_over_udp() {
    options_everywhere(false);
}

#[test]
fn options_over_tcp() {
    options_everywhere(true);
}

#[test]
fn options_to_an_active_session_and_inside_a_dialog() {
    let focus = Focus::start("");
    let mut ua = Ua::udp(&focus, "bob");
    let (mut call, _) = ua.join(TEAM);
    // Out of dialog, while the group's session runs.
    let r = ua.options(TEAM);
    assert_capabilities(&r, &format!("sip:team@{}", focus.sip_udp));
    // Inside the participant's dialog: answered by the session, with the dialog's tag.
    let b = ua.send_request(&mut call, "OPTIONS", "", None);
    let r = ua.expect_final(&b);
    assert_capabilities(&r, &format!("sip:team@{}", focus.sip_udp));
    assert_eq!(r.to.tag(), call.to_tag.as_deref());
    assert_eq!(ua.bye(&mut call).status, 200);
}
