//! Anonymity and sender identity on every relay path (issue 13 item 3): a participant that
//! joined with `Privacy: id` is seen by its alias only, whether it writes over MSRP, in a
//! pager-mode MESSAGE with a `message/cpim` body, through the exploder, or sends an IMDN; a
//! CPIM `From` naming someone else is never relayed (replaced by the focus's word, counted);
//! a private message reaches every CPIM `To` recipient and no one else.

mod support;

use bytes::Bytes;
use cpm_focus::body::multipart::{Multipart, Part};
use cpm_focus::body::resource_lists::{self, Entry};
use cpm_focus::media::cpim::{Addr, Cpim, CpimLimits};
use cpm_focus::sip::{HeaderName, Method, NameAddr, Response};
use std::time::{Duration, SystemTime};
use support::{cpim_text, metric, Call, ChatMember, Focus, Rx, Sink, Ua, TEAM, WAIT};

const ALIAS: &str = "sip:anonymous-1@anonymous.invalid";
const QUIET: Duration = Duration::from_millis(300);
const LIST_SERVICE: &str = "sip:list-service@focus.example.com";

/// MESSAGE to `uri` outside any dialog; the final response.
fn message(ua: &mut Ua, uri: &str, extra: &str, ct: &str, body: &[u8]) -> Response {
    let mut call = Call::new(uri);
    let body = std::str::from_utf8(body).expect("a text body");
    let b = ua.send_request(&mut call, "MESSAGE", extra, Some((ct, body)));
    ua.expect_final(&b)
}

fn parse_cpim(body: &Bytes) -> Cpim {
    Cpim::parse(
        body.clone(),
        &CpimLimits {
            max_headers: 64,
            max_size: 1 << 16,
        },
    )
    .unwrap_or_else(|e| panic!("not CPIM ({e}): {}", String::from_utf8_lossy(body)))
}

/// The next group MESSAGE `ua` gets, answered 200.
fn receive(ua: &mut Ua) -> Rx {
    let m = ua.expect_request(Method::Message, WAIT);
    ua.respond(&m, 200);
    m
}

/// A delivery notification (RFC 5438) that `me` sends about message `id`.
fn imdn_from(me: &str, to: &str, id: &str) -> Bytes {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>{id}</message-id>\
         <datetime>2026-01-01T00:00:00Z</datetime>\
         <recipient-uri>{me}</recipient-uri><original-recipient-uri>{me}</original-recipient-uri>\
         <delivery-notification><status><delivered/></status></delivery-notification></imdn>"
    );
    let mut c = Cpim::new(
        Addr::new(me),
        Addr::new(to),
        "message/imdn+xml",
        Bytes::from(xml),
        SystemTime::now(),
    )
    .with_imdn("n-1", None);
    c.content_headers.push(cpm_focus::media::msrp::Header::new(
        "Content-Disposition",
        "notification",
    ));
    c.to_bytes().unwrap()
}

#[test]
fn a_pager_cpim_message_from_an_anonymous_participant_names_only_its_alias() {
    let focus = Focus::start("");
    let mut dave = Ua::udp(&focus, "dave");
    dave.display = "Dave Secretive".into();
    dave.invite_headers = "Privacy: id\r\n".into();
    let (mut d, _) = dave.join(TEAM);
    let mut bob = Ua::udp(&focus, "bob");
    let (mut b, _) = bob.join(TEAM);
    let mut carol = Ua::tcp(&focus, "carol");
    let (mut c, _) = carol.join(TEAM);

    // dave writes his real identity as CPIM From, and no Privacy header on the MESSAGE: the
    // session knows he joined anonymously.
    let cpim = cpim_text(&dave.aor(), TEAM, "guess who")
        .with_imdn("m-1", Some("positive-delivery"))
        .to_bytes()
        .unwrap();
    let r = message(&mut dave, TEAM, "", "message/cpim", &cpim);
    assert_eq!(r.status, 202);
    for ua in [&mut bob, &mut carol] {
        let m = receive(ua);
        let req = m.request().unwrap();
        let from = NameAddr::parse(req.headers.get(HeaderName::From).unwrap()).unwrap();
        assert_eq!(from.uri.to_string(), ALIAS, "SIP From");
        assert_eq!(from.display.as_deref(), Some("Anonymous 1"));
        let got = parse_cpim(&req.body);
        let cf = got.from.clone().expect("a CPIM From");
        assert_eq!(
            (cf.uri.as_str(), cf.display.as_deref()),
            (ALIAS, Some("Anonymous 1"))
        );
        assert_eq!(&got.body[..], b"guess who");
        assert_eq!(got.imdn_message_id(), Some("m-1"), "IMDN fields kept");
        let raw = m.text().to_ascii_lowercase();
        assert!(
            !raw.contains("dave") && !raw.contains("secretive"),
            "{} learns who dave is:\n{raw}",
            ua.name
        );
    }
    // Claiming to be bob changes nothing but the count.
    let cpim = cpim_text("sip:bob@example.com", TEAM, "it is bob")
        .to_bytes()
        .unwrap();
    assert_eq!(
        message(&mut dave, TEAM, "", "message/cpim", &cpim).status,
        202
    );
    for ua in [&mut bob, &mut carol] {
        let m = receive(ua);
        let got = parse_cpim(&m.request().unwrap().body);
        assert_eq!(got.from.unwrap().uri, ALIAS);
    }
    assert_eq!(
        metric(&focus, "focus_cpim_forged_from_total{path=\"pager\"}"),
        1.0
    );

    // His IMDN to bob (a private message: CPIM To names bob) names the alias, reaches bob
    // only.
    let imdn = imdn_from(&dave.aor(), "sip:bob@example.com", "b-7");
    assert_eq!(
        message(&mut dave, TEAM, "", "message/cpim", &imdn).status,
        202
    );
    let m = receive(&mut bob);
    let got = parse_cpim(&m.request().unwrap().body);
    assert_eq!(got.from.unwrap().uri, ALIAS);
    assert_eq!(got.content_type.as_deref(), Some("message/imdn+xml"));
    let xml = String::from_utf8_lossy(&got.body).into_owned();
    assert!(!xml.contains("dave"), "{xml}");
    assert!(
        xml.contains(&format!("<recipient-uri>{ALIAS}</recipient-uri>")),
        "{xml}"
    );
    assert!(xml.contains("<message-id>b-7</message-id>"), "{xml}");
    carol.assert_quiet(QUIET, "a notification for bob");

    // A failed delivery is reported back to dave, naming the recipient by what the others
    // see; dave's report never reaches anyone else.
    let cpim = cpim_text(&dave.aor(), TEAM, "are you there?")
        .with_imdn("m-2", Some("negative-delivery"))
        .to_bytes()
        .unwrap();
    assert_eq!(
        message(&mut dave, TEAM, "", "message/cpim", &cpim).status,
        202
    );
    let m = bob.expect_request(Method::Message, WAIT);
    bob.respond(&m, 486);
    receive(&mut carol);
    let report = dave.expect_request(Method::Message, WAIT);
    dave.respond(&report, 200);
    let got = parse_cpim(&report.request().unwrap().body);
    let xml = String::from_utf8_lossy(&got.body).into_owned();
    assert!(xml.contains("<message-id>m-2</message-id>"), "{xml}");
    assert!(
        xml.contains("<recipient-uri>sip:bob@example.com</recipient-uri>"),
        "{xml}"
    );
    bob.assert_quiet(QUIET, "dave's report");
    carol.assert_quiet(QUIET, "dave's report");

    for (ua, call) in [
        (&mut dave, &mut d),
        (&mut bob, &mut b),
        (&mut carol, &mut c),
    ] {
        assert_eq!(ua.bye(call).status, 200);
    }
}

#[test]
fn a_forged_cpim_from_is_never_relayed_by_the_pager() {
    let focus = Focus::start("");
    let mut alice = Ua::udp(&focus, "alice");
    alice.display = "Alice Liddell".into();
    let (mut a, _) = alice.join(TEAM);
    let mut bob = Ua::udp(&focus, "bob");
    let (mut b, _) = bob.join(TEAM);
    // The attacker, on an untrusted address, writes alice's identity in the CPIM envelope.
    let mut mallory = Ua::udp_from(&focus, "mallory", "127.0.0.66");
    let cpim = cpim_text("sip:alice@example.com", TEAM, "transfer the money")
        .to_bytes()
        .unwrap();
    let r = message(&mut mallory, TEAM, "", "message/cpim", &cpim);
    assert_eq!(r.status, 202);
    for ua in [&mut alice, &mut bob] {
        let m = receive(ua);
        let got = parse_cpim(&m.request().unwrap().body);
        assert_eq!(got.from.unwrap().uri, "sip:mallory@example.com");
        let body = String::from_utf8_lossy(&m.request().unwrap().body).into_owned();
        assert!(
            !body.contains("sip:alice@"),
            "the forged sender was relayed:\n{body}"
        );
    }
    assert_eq!(
        metric(&focus, "focus_cpim_forged_from_total{path=\"pager\"}"),
        1.0
    );
    // alice's own identity (with her display name) is what her messages carry.
    let cpim = cpim_text("sip:alice@example.com", TEAM, "hello")
        .to_bytes()
        .unwrap();
    assert_eq!(
        message(&mut alice, TEAM, "", "message/cpim", &cpim).status,
        202
    );
    let got = parse_cpim(&receive(&mut bob).request().unwrap().body);
    let from = got.from.unwrap();
    assert_eq!(
        (from.uri.as_str(), from.display.as_deref()),
        ("sip:alice@example.com", Some("Alice Liddell"))
    );
    assert_eq!(
        metric(&focus, "focus_cpim_forged_from_total{path=\"pager\"}"),
        1.0,
        "her own identity is no forgery"
    );
    // A CPIM body that cannot be read cannot be vouched for: refused, relayed to nobody.
    let r = message(
        &mut mallory,
        TEAM,
        "",
        "message/cpim",
        b"From: <sip:alice@example.com>\r\nno blank line",
    );
    assert_eq!(r.status, 400, "{}", r.reason);
    assert!(r.headers.get(HeaderName::Warning).is_some());
    alice.assert_quiet(QUIET, "a malformed CPIM body");
    bob.assert_quiet(QUIET, "a malformed CPIM body");
    assert_eq!(alice.bye(&mut a).status, 200);
    assert_eq!(bob.bye(&mut b).status, 200);
}

#[test]
fn a_pager_private_message_reaches_every_named_participant_and_no_one_else() {
    let focus = Focus::start("");
    let mut alice = Ua::udp(&focus, "alice");
    let (mut a, _) = alice.join(TEAM);
    let mut bob = Ua::udp(&focus, "bob");
    let (mut b, _) = bob.join(TEAM);
    let mut carol = Ua::udp(&focus, "carol");
    let (mut c, _) = carol.join(TEAM);
    let mut erin = Ua::udp(&focus, "erin");
    let (mut e, _) = erin.join(TEAM);
    let mut cpim = cpim_text(&alice.aor(), "sip:bob@example.com", "bob and carol only");
    cpim.to.push(Addr::new("sip:carol@example.com"));
    let cpim = cpim.to_bytes().unwrap();
    assert_eq!(
        message(&mut alice, TEAM, "", "message/cpim", &cpim).status,
        202
    );
    for ua in [&mut bob, &mut carol] {
        let got = parse_cpim(&receive(ua).request().unwrap().body);
        assert_eq!(&got.body[..], b"bob and carol only");
        let to: Vec<&str> = got.to.iter().map(|a| a.uri.as_str()).collect();
        assert_eq!(to, ["sip:bob@example.com", "sip:carol@example.com"]);
    }
    erin.assert_quiet(QUIET, "a private message for bob and carol");
    alice.assert_quiet(QUIET, "the sender is not a recipient");
    // A named recipient not in the session: refused whole, nobody gets it.
    let mut cpim = cpim_text(&alice.aor(), "sip:bob@example.com", "and zed");
    cpim.to.push(Addr::new("sip:zed@example.com"));
    let r = message(
        &mut alice,
        TEAM,
        "",
        "message/cpim",
        &cpim.to_bytes().unwrap(),
    );
    assert_eq!(r.status, 480, "{}", r.reason);
    assert_eq!(
        metric(
            &focus,
            "focus_policy_rejections_total{reason=\"private_not_present\"}"
        ),
        1.0
    );
    bob.assert_quiet(QUIET, "a refused private message");
    for (ua, call) in [
        (&mut alice, &mut a),
        (&mut bob, &mut b),
        (&mut carol, &mut c),
        (&mut erin, &mut e),
    ] {
        assert_eq!(ua.bye(call).status, 200);
    }
}

/// A MESSAGE body for the URI-list service: the payload and the recipient list.
fn exploder_body(payload_type: &str, payload: Bytes, entries: &[Entry]) -> (String, String) {
    let body = Multipart::mixed(vec![
        Part::new(payload_type, payload),
        Part::new(resource_lists::MIME_TYPE, resource_lists::render(entries))
            .with_disposition("recipient-list"),
    ]);
    let (ct, bytes) = body.encode_with_new_boundary().unwrap();
    (ct, String::from_utf8(bytes.to_vec()).unwrap())
}

/// The CPIM payload a sink got from the exploder.
fn exploded_cpim(d: &support::Delivery) -> Cpim {
    let ct = d.header(HeaderName::ContentType).unwrap().to_string();
    if ct.starts_with("message/cpim") {
        return parse_cpim(&d.request.body);
    }
    let m = cpm_focus::body::multipart::parse(&ct, d.request.body.clone(), &Default::default())
        .unwrap_or_else(|e| panic!("{e}\n{}", d.text()));
    let p = m
        .parts
        .iter()
        .find(|p| p.is_content_type("message/cpim"))
        .expect("the CPIM payload");
    parse_cpim(&p.body)
}

#[test]
fn the_exploder_vouches_for_the_sender_too() {
    let focus = Focus::start("");
    let sinks: Vec<Sink> = (1..=2).map(|i| Sink::start(&format!("x{i}"))).collect();
    let entries: Vec<Entry> = sinks.iter().map(|s| Entry::new(s.uri())).collect();
    let require = "Require: recipient-list-message\r\n";
    // An anonymous sender: its real identity never reaches the recipients.
    let mut alice = Ua::udp(&focus, "alice");
    let payload = cpim_text(&alice.aor(), "sip:x1@127.0.0.1", "from nobody")
        .to_bytes()
        .unwrap();
    let (ct, body) = exploder_body("message/cpim", payload, &entries);
    let extra = format!("{require}Privacy: id\r\n");
    let r = message(&mut alice, LIST_SERVICE, &extra, &ct, body.as_bytes());
    assert_eq!(r.status, 202, "{}", r.reason);
    for s in &sinks {
        let d = s.expect_one(WAIT);
        let got = exploded_cpim(&d);
        assert_eq!(
            got.from.unwrap().uri,
            "sip:anonymous@anonymous.invalid",
            "{}",
            d.text()
        );
        assert_eq!(&got.body[..], b"from nobody");
        assert!(!d.text().contains("alice"), "{}", d.text());
    }
    // The attacker forges alice: the recipients see the attacker. (She sends through the
    // trusted host as herself: from an untrusted address the exploder relays for nobody, see
    // tests/identity.rs; a proven sender's CPIM envelope is still never believed.)
    let mut mallory = Ua::udp(&focus, "mallory");
    let payload = cpim_text("sip:alice@example.com", "sip:x1@127.0.0.1", "from alice?")
        .to_bytes()
        .unwrap();
    let (ct, body) = exploder_body("message/cpim", payload, &entries);
    let r = message(&mut mallory, LIST_SERVICE, require, &ct, body.as_bytes());
    assert_eq!(r.status, 202);
    for s in &sinks {
        let d = s.wait_deliveries(2, WAIT).pop().unwrap();
        let got = exploded_cpim(&d);
        assert_eq!(got.from.unwrap().uri, "sip:mallory@example.com");
        assert!(!d.text().contains("sip:alice@"), "{}", d.text());
    }
    assert_eq!(
        metric(&focus, "focus_cpim_forged_from_total{path=\"exploder\"}"),
        1.0
    );
    // Unreadable CPIM: refused, sent to nobody.
    let (ct, body) = exploder_body(
        "message/cpim",
        Bytes::from_static(b"From: <sip:alice@example.com>"),
        &entries,
    );
    let r = message(&mut mallory, LIST_SERVICE, require, &ct, body.as_bytes());
    assert_eq!(r.status, 400);
    std::thread::sleep(QUIET);
    for s in &sinks {
        assert_eq!(
            s.deliveries().len(),
            2,
            "{} got the refused message",
            s.name
        );
    }
}

/// `name` joins the team chat, its INVITE carrying the extra header lines `headers`.
fn chat_member(focus: &Focus, name: &str, headers: &str) -> ChatMember {
    let mut ua = Ua::udp(focus, name);
    ua.invite_headers = headers.into();
    ChatMember::join(ua, TEAM)
}

#[test]
fn an_msrp_private_message_to_two_recipients_reaches_exactly_those_two() {
    let focus = Focus::start("");
    let mut alice = chat_member(&focus, "alice", "");
    let mut bob = chat_member(&focus, "bob", "");
    let mut carol = chat_member(&focus, "carol", "");
    let mut erin = chat_member(&focus, "erin", "");
    let mut dave = chat_member(&focus, "dave", "Privacy: id\r\n");
    // To bob, carol and the anonymous dave (by his alias).
    let mut cpim = cpim_text(&alice.ua.aor(), "sip:bob@example.com", "three of you");
    cpim.to.push(Addr::new("sip:carol@example.com"));
    cpim.to.push(Addr::new(ALIAS));
    let req = alice.msrp.request("message/cpim", cpim.to_bytes().unwrap());
    let tid = alice.msrp.send(&req);
    assert_eq!(alice.msrp.expect_response(&tid).code, 200);
    for m in [&mut bob, &mut carol, &mut dave] {
        let got = m.msrp.expect_message();
        assert_eq!(got.text(), "three of you");
        assert_eq!(got.sender_uri(), "sip:alice@example.com");
        assert_eq!(
            got.to_uris(),
            ["sip:bob@example.com", "sip:carol@example.com", ALIAS]
        );
    }
    erin.msrp
        .assert_no_message(QUIET, "a private message for the others");
    alice
        .msrp
        .assert_no_message(QUIET, "nothing back to the sender");
    // dave's real identity names nobody: an alias hides who is behind it.
    let cpim = cpim_text(&alice.ua.aor(), "sip:dave@example.com", "dave?");
    let req = alice.msrp.request("message/cpim", cpim.to_bytes().unwrap());
    let tid = alice.msrp.send(&req);
    assert_eq!(alice.msrp.expect_response(&tid).code, 404);
    // One named recipient absent: nobody gets it.
    let mut cpim = cpim_text(&alice.ua.aor(), "sip:bob@example.com", "and zed");
    cpim.to.push(Addr::new("sip:zed@example.com"));
    let req = alice.msrp.request("message/cpim", cpim.to_bytes().unwrap());
    let tid = alice.msrp.send(&req);
    assert_eq!(alice.msrp.expect_response(&tid).code, 404);
    for m in [&mut bob, &mut carol, &mut dave, &mut erin] {
        m.msrp.assert_no_message(QUIET, "a refused private message");
    }
    for m in [&mut alice, &mut bob, &mut carol, &mut erin, &mut dave] {
        assert_eq!(m.ua.bye(&mut m.call).status, 200);
    }
}

#[test]
fn an_anonymous_msrp_sender_is_named_by_its_alias_in_its_notifications() {
    let focus = Focus::start("");
    let mut alice = chat_member(&focus, "alice", "");
    let mut carol = chat_member(&focus, "carol", "");
    let mut dave = chat_member(&focus, "dave", "Privacy: id\r\n");
    // alice writes; dave confirms delivery to alice (a private message).
    assert_eq!(alice.msrp.say("did you get it?").code, 200);
    dave.msrp.expect_message();
    carol.msrp.expect_message();
    let imdn = imdn_from(&dave.ua.aor(), "sip:alice@example.com", "q-1");
    let req = dave.msrp.request("message/cpim", imdn);
    let tid = dave.msrp.send(&req);
    assert_eq!(dave.msrp.expect_response(&tid).code, 200);
    let got = alice.msrp.expect_message();
    assert_eq!(got.sender_uri(), ALIAS);
    assert_eq!(got.inner_type().as_deref(), Some("message/imdn+xml"));
    let raw = String::from_utf8_lossy(&got.request.body).into_owned();
    assert!(!raw.contains("dave"), "alice learns who dave is:\n{raw}");
    assert!(
        raw.contains(&format!("<recipient-uri>{ALIAS}</recipient-uri>")),
        "{raw}"
    );
    assert!(raw.contains("<message-id>q-1</message-id>"), "{raw}");
    carol
        .msrp
        .assert_no_message(QUIET, "a notification for alice");
    // A forged From over MSRP is counted (and replaced, as always).
    let cpim = cpim_text("sip:carol@example.com", TEAM, "it is carol")
        .to_bytes()
        .unwrap();
    let req = dave.msrp.request("message/cpim", cpim);
    let tid = dave.msrp.send(&req);
    assert_eq!(dave.msrp.expect_response(&tid).code, 200);
    for m in [&mut alice, &mut carol] {
        assert_eq!(m.msrp.expect_message().sender_uri(), ALIAS);
    }
    assert_eq!(
        metric(&focus, "focus_cpim_forged_from_total{path=\"msrp\"}"),
        1.0
    );
    for m in [&mut alice, &mut carol, &mut dave] {
        assert_eq!(m.ua.bye(&mut m.call).status, 200);
    }
}
