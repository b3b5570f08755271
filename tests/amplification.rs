//! Amplification and XML safety end to end: one request must never make the focus do
//! unbounded or self-directed work.
//!
//! - A REFER or URI list (RFC 5368 REFER, RFC 5366 INVITE, RFC 5365 MESSAGE) that names the
//!   focus itself (a group, the factory, the list service, its own address) is refused `482`
//!   before anything is sent; a request of the focus's own that comes back (a target routing
//!   to the focus) is refused `482` too.
//! - URI lists with a DTD or entity definitions, or over the `[xml]` bounds (size, depth,
//!   elements), are refused `400`; lists longer than `policy.max_list_size` after duplicates
//!   are merged are refused `403`; duplicates get one request each.

mod support;

use cpm_focus::body::multipart::{Multipart, Part};
use cpm_focus::body::resource_lists::{self, Entry};
use cpm_focus::sip::{Method, Response};
use std::time::Duration;
use support::{assert_refused, metric, sipfrag, Call, Focus, Ua, AUDIO_OFFER, TEAM, WAIT};

/// alice moderates the team group (she may add and remove participants).
const MODERATED: &str = r#"
[[groups]]
uri = "sip:team@focus.example.com"
[[groups.members]]
uri = "sip:alice@example.com"
role = "moderator"
"#;

const FACTORY: &str = "sip:conf-factory@focus.example.com";
const LIST_SERVICE: &str = "sip:list-service@focus.example.com";
const LOOP_WARNING: &str =
    "399 focus.example.com \"A request cannot make the focus send to itself\"";

/// A window in which something must not happen.
const QUIET: Duration = Duration::from_millis(400);

/// The URI at which the focus reaches a test agent directly.
fn at(ua: &Ua) -> String {
    format!("sip:{}@{}", ua.name, ua.local)
}

/// The requests the focus has sent (INVITE, MESSAGE, NOTIFY...) by method.
fn sent(focus: &Focus, method: &str) -> f64 {
    metric(
        focus,
        &format!("focus_sip_requests_sent_total{{method=\"{method}\"}}"),
    )
}

/// A resource list as XML, one entry per URI.
fn list_xml(uris: &[String]) -> String {
    let entries: Vec<Entry> = uris.iter().map(|u| Entry::new(u.clone())).collect();
    resource_lists::render(&entries)
}

/// `multipart/mixed` with `parts` (content type, body, is the recipient list).
fn multipart(parts: &[(&str, &str, bool)]) -> (String, String) {
    let parts = parts
        .iter()
        .map(|(ct, body, list)| {
            let p = Part::new(ct.to_string(), body.to_string());
            if *list {
                p.with_disposition("recipient-list")
                    .with_content_id("list@example.com")
            } else {
                p
            }
        })
        .collect();
    let (ct, bytes) = Multipart::mixed(parts)
        .encode_with_new_boundary()
        .expect("encoding");
    (ct, String::from_utf8(bytes.to_vec()).unwrap())
}

/// A REFER to several targets (RFC 5368) whose list document is `xml`, sent by `ua` outside
/// any dialog; the final response.
fn refer_list(ua: &mut Ua, xml: &str) -> Response {
    let (ct, body) = multipart(&[(resource_lists::MIME_TYPE, xml, true)]);
    let mut call = Call::new(TEAM);
    let b = ua.send_request(
        &mut call,
        "REFER",
        "Refer-To: <cid:list@example.com>\r\nRequire: multiple-refer\r\n",
        Some((&ct, &body)),
    );
    ua.expect_final(&b)
}

/// A group MESSAGE through the URI-list service (RFC 5365) to the list `xml`.
fn explode(ua: &mut Ua, xml: &str) -> Response {
    let (ct, body) = multipart(&[
        ("text/plain", "hello everyone", false),
        (resource_lists::MIME_TYPE, xml, true),
    ]);
    let mut call = Call::new(LIST_SERVICE);
    let b = ua.send_request(
        &mut call,
        "MESSAGE",
        "Require: recipient-list-message\r\n",
        Some((&ct, &body)),
    );
    ua.expect_final(&b)
}

#[test]
fn a_refer_or_uri_list_naming_the_focus_is_refused_before_anything_is_sent() {
    let focus = Focus::start(MODERATED);
    let mut alice = Ua::udp(&focus, "alice");
    let mut bob = Ua::udp(&focus, "bob");
    let own_address = format!("sip:team@{}", focus.sip_udp);
    let own = [
        TEAM.to_string(),
        FACTORY.to_string(),
        LIST_SERVICE.to_string(),
        "sip:board@FOCUS.example.com;transport=tcp".to_string(),
        own_address.clone(),
    ];
    // REFER naming one of the focus's own URIs: the focus would INVITE itself.
    for target in &own {
        let mut call = Call::new(TEAM);
        let b = alice.refer(&mut call, &format!("<{target}>"), "");
        assert_refused(&alice.expect_final(&b), 482, "Loop Detected", LOOP_WARNING);
    }
    // A list naming bob and the focus: refused whole, bob is not called either.
    let r = refer_list(&mut alice, &list_xml(&[at(&bob), own_address.clone()]));
    assert_refused(&r, 482, "Loop Detected", LOOP_WARNING);
    // A URI-list INVITE to the factory (RFC 5366) listing the factory itself.
    let (ct, body) = multipart(&[
        ("application/sdp", AUDIO_OFFER, false),
        (
            resource_lists::MIME_TYPE,
            &list_xml(&[at(&bob), FACTORY.to_string()]),
            true,
        ),
    ]);
    let mut call = Call::new(FACTORY);
    let b = alice.send_request(
        &mut call,
        "INVITE",
        "Require: recipient-list-invite\r\n",
        Some((&ct, &body)),
    );
    assert_refused(&alice.expect_final(&b), 482, "Loop Detected", LOOP_WARNING);
    // A group MESSAGE whose recipients include a group of the focus (which would relay it to
    // its members, again and again if lists nest).
    let r = explode(&mut alice, &list_xml(&[at(&bob), TEAM.to_string()]));
    assert_refused(&r, 482, "Loop Detected", LOOP_WARNING);

    bob.assert_quiet(QUIET, "nobody is called or messaged for a refused request");
    for method in ["INVITE", "MESSAGE", "NOTIFY"] {
        assert_eq!(sent(&focus, method), 0.0, "{method} sent");
    }
    assert_eq!(
        metric(&focus, "focus_policy_rejections_total{reason=\"loop\"}"),
        (own.len() + 3) as f64
    );
    assert_eq!(
        metric(&focus, "focus_participants_active"),
        0.0,
        "no participant"
    );
}

#[test]
fn lists_with_a_dtd_or_over_the_xml_bounds_are_refused_and_nothing_is_sent() {
    let focus = Focus::start(&format!(
        "{MODERATED}\n[xml]\nmax_bytes = 2048\nmax_depth = 4\nmax_elements = 20\n[policy]\nmax_list_size = 3\n"
    ));
    let mut alice = Ua::udp(&focus, "alice");
    let mut dan = Ua::udp(&focus, "dan");
    let dan_at = at(&dan);
    let ns = "xmlns=\"urn:ietf:params:xml:ns:resource-lists\"";
    let entry = format!("<entry uri=\"{dan_at}\"/>");
    let cases = [
        // An entity expanding a thousandfold per level (billion laughs).
        format!(
            "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"{dan_at}\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><resource-lists {ns}><list><entry uri=\"&c;\"/></list></resource-lists>"
        ),
        // An external entity (a file of the focus's host, or a URL it would fetch).
        format!(
            "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><resource-lists {ns}><list><entry uri=\"{dan_at}\"><display-name>&x;</display-name></entry></list></resource-lists>"
        ),
        // An undefined entity.
        format!("<resource-lists {ns}><list><entry uri=\"{dan_at}\"><display-name>&x;</display-name></entry></list></resource-lists>"),
        // Deeper than 4.
        format!("<resource-lists {ns}><list><list><list>{entry}</list></list></list></resource-lists>"),
        // More than 20 elements (the same entry, so merging duplicates would not help).
        format!("<resource-lists {ns}><list>{}</list></resource-lists>", entry.repeat(19)),
        // Larger than 2048 bytes.
        format!(
            "<resource-lists {ns}><list><entry uri=\"{dan_at}\"><display-name>{}</display-name></entry></list></resource-lists>",
            "d".repeat(2100)
        ),
    ];
    for xml in &cases {
        let r = refer_list(&mut alice, xml);
        assert_eq!(
            (r.status, &*r.reason),
            (400, "Malformed or missing URI list"),
            "{xml}"
        );
        let r = explode(&mut alice, xml);
        assert_eq!(
            (r.status, &*r.reason),
            (400, "Missing recipient list or payload"),
            "{xml}"
        );
    }
    // The same parser guards a URI-list INVITE to the factory (RFC 5366).
    let (ct, body) = multipart(&[
        ("application/sdp", AUDIO_OFFER, false),
        (resource_lists::MIME_TYPE, &cases[0], true),
    ]);
    let mut call = Call::new(FACTORY);
    let b = alice.send_request(
        &mut call,
        "INVITE",
        "Require: recipient-list-invite\r\n",
        Some((&ct, &body)),
    );
    let r = alice.expect_final(&b);
    assert_eq!((r.status, &*r.reason), (400, "Malformed resource list"));
    // Four distinct targets where three are allowed.
    let four: Vec<String> = (1..=4).map(|i| format!("sip:t{i}@example.com")).collect();
    let r = refer_list(&mut alice, &list_xml(&four));
    assert_refused(
        &r,
        403,
        "Forbidden",
        "399 focus.example.com \"At most 3 targets per request\"",
    );
    let r = explode(&mut alice, &list_xml(&four));
    assert_refused(
        &r,
        403,
        "Forbidden",
        "399 focus.example.com \"At most 3 recipients per message\"",
    );
    dan.assert_quiet(QUIET, "no request for a refused list");
    for method in ["INVITE", "MESSAGE"] {
        assert_eq!(sent(&focus, method), 0.0, "{method} sent");
    }
    assert_eq!(
        metric(
            &focus,
            "focus_policy_rejections_total{reason=\"list_too_long\"}"
        ),
        2.0
    );
}

#[test]
fn duplicates_in_a_list_get_one_request_each() {
    // Two targets allowed: five entries naming two recipients pass, one request each.
    let focus = Focus::start(&format!("{MODERATED}\n[policy]\nmax_list_size = 2\n"));
    let mut alice = Ua::udp(&focus, "alice");
    let mut dan = Ua::udp(&focus, "dan");
    let mut erin = Ua::udp(&focus, "erin");
    let dan_spellings = [
        at(&dan),
        at(&dan).replace("sip:dan@", "sip:%64an@"),
        format!("{};transport=udp", at(&dan)),
    ];
    let mut uris = dan_spellings.to_vec();
    uris.push(at(&erin));
    uris.push(at(&erin).replace("sip:erin@", "sip:%65rin@"));

    let r = refer_list(&mut alice, &list_xml(&uris));
    assert_eq!((r.status, &*r.reason), (202, "Accepted"));
    for ua in [&mut dan, &mut erin] {
        let inv = ua.expect_invite();
        ua.refuse_invite(&inv, 486);
        ua.assert_quiet(QUIET, "a second INVITE for a duplicate");
    }
    assert_eq!(sent(&focus, "INVITE"), 2.0);

    let r = explode(&mut alice, &list_xml(&uris));
    assert_eq!((r.status, &*r.reason), (202, "Accepted"));
    let (dan_at, erin_at) = (at(&dan), at(&erin));
    for ua in [&mut dan, &mut erin] {
        let m = ua.expect_request(Method::Message, WAIT);
        // The payload, and the recipient-list-history naming each recipient once.
        let body = String::from_utf8_lossy(&m.request().unwrap().body).into_owned();
        assert!(body.contains("hello everyone"), "{body}");
        for uri in [&dan_at, &erin_at] {
            assert_eq!(body.matches(&format!("\"{uri}\"")).count(), 1, "{body}");
        }
        ua.respond(&m, 200);
        ua.assert_quiet(QUIET, "a second MESSAGE for a duplicate");
    }
    assert_eq!(sent(&focus, "MESSAGE"), 2.0);
}

#[test]
fn a_request_of_the_focus_that_comes_back_to_it_is_refused_482() {
    // loopy routes whatever it gets back to the focus, as a misconfigured proxy or a target
    // that forwards to the group would: the focus's own INVITE arrives at the focus.
    let focus = Focus::start(MODERATED);
    let mut alice = Ua::udp(&focus, "alice");
    let mut loopy = Ua::udp(&focus, "loopy");
    let mut call = Call::new(TEAM);
    let b = alice.refer(&mut call, &format!("<{}>", at(&loopy)), "");
    assert_eq!(alice.expect_final(&b).status, 202);
    assert_eq!(
        sipfrag(&alice.expect_sipfrag(), "refer"),
        "SIP/2.0 100 Trying"
    );

    let invite = loopy.expect_request(Method::Invite, WAIT);
    let text = invite.text();
    let (start, rest) = text.split_once("\r\n").unwrap();
    let start = start.replacen(&at(&loopy), TEAM, 1);
    let branch = "z9hG4bK-loopy-forward";
    let forwarded = format!(
        "{start}\r\nVia: SIP/2.0/UDP {};branch={branch}\r\n{}",
        loopy.local,
        rest.replacen("Max-Forwards: 70", "Max-Forwards: 69", 1)
    );
    loopy.send_raw(&forwarded);
    let r = loopy.expect_final(branch);
    assert_eq!((r.status, &*r.reason), (482, "Loop Detected"));
    // The loop's answer goes back upstream: the focus's call fails and alice hears why.
    loopy.respond(&invite, 482);
    let n = alice.expect_sipfrag();
    assert_eq!(sipfrag(&n, "refer"), "SIP/2.0 482 Loop Detected");
    assert_eq!(
        metric(&focus, "focus_sip_loops_detected_total{kind=\"looped\"}"),
        1.0
    );
    assert_eq!(metric(&focus, "focus_participants_active"), 0.0);
    assert_eq!(sent(&focus, "INVITE"), 1.0, "one INVITE, never a second");

    // The same request arriving again by another path while the first is alive is merged
    // (RFC 3261 §8.2.2.2).
    let mut bob = Ua::udp(&focus, "bob");
    let mut call = Call::new(TEAM);
    call.cseq += 1;
    let first = "z9hG4bK-merged-first";
    let text = bob.request_text("OPTIONS", &call, call.cseq, first, "", None);
    bob.send_raw(&text);
    assert_eq!(bob.expect_final(first).status, 200);
    let second = "z9hG4bK-merged-second";
    bob.send_raw(&text.replace(first, second));
    assert_eq!(bob.expect_final(second).status, 482);
    assert_eq!(
        metric(&focus, "focus_sip_loops_detected_total{kind=\"merged\"}"),
        1.0
    );
}
