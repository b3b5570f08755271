//! SIP over TLS (`sips:`, RFC 5630) and MSRP over TLS (`TCP/TLS/MSRP`, `msrps:`, RFC 4975
//! §14): with certificates the test makes at run time, participants join a group over TLS,
//! subscribe to it over TLS, and chat over TLS; the focus's Contact, Via and SDP say TLS.

mod support;

use cpm_focus::sip::HeaderName;
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;
use support::{contact_of, user, Endpoint, Focus, Pki, Ua, WAIT};

const TEAM_SIPS: &str = "sips:team@focus.example.com";

#[test]
fn a_group_is_joined_subscribed_and_chatted_over_tls() {
    let pki = Pki::new();
    let focus = Focus::start(&pki.config());
    let sips = focus.sip_tls.expect("a TLS listener when [tls] is set");
    let msrp = focus.msrp.expect("MSRP runs");
    let sip_relay = pki.relay(sips);
    let msrp_relay = pki.relay(msrp);

    // Alice joins over TLS with a TLS chat stream.
    let mut alice = Ua::tls(&focus, "alice", sip_relay);
    let mut chat_a = alice.join_chat_with(TEAM_SIPS, Endpoint::tls("alice", msrp_relay));
    let (contact, isfocus) = contact_of(&chat_a.ok);
    assert!(isfocus, "Contact without ;isfocus");
    assert_eq!(
        contact,
        format!("sips:team@127.0.0.1:{}", sips.port()),
        "a dialog over TLS gets a sips: Contact on the TLS port"
    );
    let via = chat_a.ok.headers.get(HeaderName::Via).unwrap_or("");
    assert!(via.starts_with("SIP/2.0/TLS "), "Via: {via}");
    assert!(
        chat_a.media.m_line.contains(" TCP/TLS/MSRP "),
        "{}",
        chat_a.answer
    );
    assert!(chat_a.focus_path.is_secure(), "{}", chat_a.focus_path);
    let mut a = chat_a.connect();
    a.bind();

    // Bob too; Carol subscribes over TLS and sees both.
    let mut bob = Ua::tls(&focus, "bob", sip_relay);
    let mut chat_b = bob.join_chat_with(TEAM_SIPS, Endpoint::tls("bob", msrp_relay));
    let mut b = chat_b.connect();
    b.bind();
    let mut carol = Ua::tls(&focus, "carol", sip_relay);
    let (_sub, notify) = carol.subscribe_to(TEAM_SIPS);
    assert!(
        user(&notify.doc, &chat_a.aor).is_some(),
        "{:#?}",
        notify.doc
    );
    assert!(
        user(&notify.doc, &chat_b.aor).is_some(),
        "{:#?}",
        notify.doc
    );
    // The focus's NOTIFY came over the subscriber's TLS connection, and says so.
    let via = notify.request.headers.get(HeaderName::Via).unwrap_or("");
    assert!(via.starts_with("SIP/2.0/TLS "), "NOTIFY Via: {via}");
    let contact = notify
        .request
        .headers
        .get(HeaderName::Contact)
        .unwrap_or("");
    assert!(
        contact.starts_with("<sips:team@"),
        "NOTIFY Contact: {contact}"
    );

    // Chat over TLS, both ways.
    assert_eq!(a.say("over tls").code, 200);
    assert_eq!(b.expect_message().text(), "over tls");
    assert_eq!(b.say("and back").code, 200);
    assert_eq!(a.expect_message().text(), "and back");

    // Bob leaves; carol hears of it over TLS.
    assert_eq!(bob.bye(&mut chat_b.call).status, 200);
    let n = carol.expect_notify();
    assert!(n.doc.version > notify.doc.version);

    // A client that does not speak TLS to the TLS port is closed without harm.
    let mut plain = TcpStream::connect_timeout(&sips, WAIT).unwrap();
    plain.set_read_timeout(Some(WAIT)).unwrap();
    use std::io::Write;
    plain
        .write_all(b"OPTIONS sip:team@focus.example.com SIP/2.0\r\n\r\n")
        .unwrap();
    // At most a TLS alert, then the close: never a SIP answer.
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"SIP/2.0"),
        "plain SIP on the TLS port got a SIP answer"
    );
    focus.wait_metric(
        "focus_tls_handshakes_total{service=\"sip\",outcome=\"failed\"}",
        WAIT,
        |v| v == 1.0,
    );
    assert_eq!(
        focus.metric("focus_tls_handshakes_total{service=\"sip\",outcome=\"ok\"}"),
        Some(3.0)
    );
    assert_eq!(
        focus.metric("focus_tls_handshakes_total{service=\"msrp\",outcome=\"ok\"}"),
        Some(2.0)
    );
    // Still serving.
    assert_eq!(alice.options(TEAM_SIPS).status, 200);
}

#[test]
fn tls_is_off_without_certificates_and_plain_msrp_still_works() {
    let focus = Focus::start("");
    assert_eq!(focus.sip_tls, None, "the ready line says sip_tls=off");
    assert!(
        focus.log_contains("TLS off", WAIT),
        "no log line says TLS is off:\n{}",
        focus.log()
    );
    // An MSRP-over-TLS offer is declined (port 0): the focus cannot serve it.
    let mut dave = Ua::udp(&focus, "dave");
    let offer = Endpoint::tls("dave", "127.0.0.1:9".parse().unwrap()).offer();
    let mut call = support::Call::new(support::TEAM);
    let b = dave.invite(&mut call, Some(&offer));
    let ok = dave.expect_final(&b);
    assert_eq!(ok.status, 200, "signalling-only join is allowed");
    let answer = String::from_utf8_lossy(&ok.body).to_string();
    assert!(
        answer.contains("m=message 0 TCP/TLS/MSRP"),
        "the TLS stream is declined:\n{answer}"
    );
}

// ----- TLS that checks (issue 13 item 5) -----

#[test]
fn a_sips_request_over_a_plain_transport_is_refused() {
    let pki = Pki::new();
    let focus = Focus::start(&pki.config());
    let mut udp = Ua::udp(&focus, "alice");
    let mut tcp = Ua::tcp(&focus, "bob");
    for ua in [&mut udp, &mut tcp] {
        let r = ua.options(TEAM_SIPS);
        assert_eq!((r.status, &*r.reason), (480, "Temporarily Unavailable"));
        let warning = r.headers.get(HeaderName::Warning).unwrap_or("");
        assert!(
            warning.starts_with("380 focus.example.com \"SIPS Not Allowed"),
            "Warning: {warning}"
        );
        // The same group by sip: is served on the same transport.
        assert_eq!(ua.options(support::TEAM).status, 200);
    }
    let mut call = support::Call::new(TEAM_SIPS);
    let b = udp.invite(&mut call, Some(support::AUDIO_OFFER));
    assert_eq!(udp.expect_final(&b).status, 480, "nobody joins in clear");
    assert_eq!(
        focus.metric("focus_policy_rejections_total{reason=\"sips_plain_transport\"}"),
        Some(3.0)
    );
    // Over TLS the same request is served.
    let mut alice = Ua::tls(&focus, "alice", pki.relay(focus.sip_tls.unwrap()));
    assert_eq!(alice.options(TEAM_SIPS).status, 200);
}

#[test]
fn an_outbound_tls_connection_checks_the_peer_name_and_counts_a_wrong_one() {
    let pki = Pki::new();
    // Both peers have a certificate from the CA the focus trusts; only one is for the
    // address the focus dials.
    let (good, good_rx) = pki.server(&["127.0.0.1"]);
    let (bad, bad_rx) = pki.server(&["wrong.example.com"]);
    let config = format!(
        "{}\n[[groups]]\nuri = \"sip:team@focus.example.com\"\n\
         [[groups.members]]\nuri = \"sips:good@127.0.0.1:{}\"\n\
         [[groups.members]]\nuri = \"sips:bad@127.0.0.1:{}\"\n",
        pki.config(),
        good.port(),
        bad.port()
    );
    let focus = Focus::start(&config);
    // A group message goes to each listed member at its sips: address, over TLS.
    let mut alice = Ua::udp(&focus, "alice");
    let mut call = support::Call::new(support::TEAM);
    let b = alice.send_request(&mut call, "MESSAGE", "", Some(("text/plain", "hello")));
    assert_eq!(alice.expect_final(&b).status, 202);
    let got = good_rx
        .recv_timeout(WAIT)
        .expect("the right peer gets the MESSAGE");
    assert!(
        got.starts_with(b"MESSAGE sips:good@127.0.0.1"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    focus.wait_metric(
        "focus_tls_handshake_failures_total{role=\"client\",service=\"sip\",reason=\"name_mismatch\"}",
        WAIT,
        |v| v == 1.0,
    );
    assert!(
        bad_rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "the wrongly named peer got the request"
    );
    focus.wait_metric(
        "focus_group_message_deliveries_total{outcome=\"failed\"}",
        WAIT,
        |v| v == 1.0,
    );
}

#[test]
fn sighup_reloads_the_certificate_and_open_connections_stay() {
    let pki = Pki::new();
    let focus = Focus::start(&pki.config());
    let sips = focus.sip_tls.unwrap();
    let mut alice = Ua::tls(&focus, "alice", pki.relay(sips));
    let (mut call, _) = alice.join(TEAM_SIPS);
    let old = pki.peer_certificate(sips);

    let new = pki.renew();
    assert_ne!(old, new);
    focus.hangup();
    focus.wait_metric(
        "focus_config_reloads_total{trigger=\"sighup\",outcome=\"applied\"}",
        WAIT,
        |v| v == 1.0,
    );
    assert_eq!(
        pki.peer_certificate(sips),
        new,
        "new handshakes get the new one"
    );
    // alice's connection, made with the old certificate, still carries her dialog.
    assert_eq!(alice.options(TEAM_SIPS).status, 200);

    // A key that does not go with the certificate: the reload is refused, the running
    // certificate stays.
    let (_, other_key) = pki.issue(&["localhost"]);
    std::fs::write(pki.dir.join("focus.key"), other_key).unwrap();
    focus.hangup();
    focus.wait_metric(
        "focus_config_reloads_total{trigger=\"sighup\",outcome=\"refused\"}",
        WAIT,
        |v| v == 1.0,
    );
    assert_eq!(pki.peer_certificate(sips), new);
    assert_eq!(alice.bye(&mut call).status, 200);
}

/// The DER of the first certificate in `pem`.
fn der_of(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

#[test]
fn an_msrp_tls_peer_must_present_the_certificate_its_fingerprint_names() {
    use cpm_focus::transport::tls::Fingerprint;
    let pki = Pki::new();
    let focus = Focus::start(&pki.config());
    let sip_relay = pki.relay(focus.sip_tls.unwrap());
    let msrp = focus.msrp.unwrap();
    let (cert, key) = pki.issue(&["alice.example.com"]);
    let fingerprint = Fingerprint::sha256_of(&der_of(&cert));

    // alice offers her certificate's fingerprint and presents that certificate: bound.
    let mut alice = Ua::tls(&focus, "alice", sip_relay);
    let mut end = Endpoint::tls("alice", pki.relay_as(msrp, &cert, &key));
    end.fingerprint = Some(fingerprint.clone());
    let mut chat_a = alice.join_chat_with(TEAM_SIPS, end);
    let mut a = chat_a.connect();
    a.bind();

    // mallory offers the same fingerprint with another certificate, then with none: her
    // connection binds nothing (403) and gets none of the chat.
    let (other, other_key) = pki.issue(&["mallory.example.com"]);
    for relay in [pki.relay_as(msrp, &other, &other_key), pki.relay(msrp)] {
        let mut mallory = Ua::tls(&focus, "mallory", sip_relay);
        let mut end = Endpoint::tls("mallory", relay);
        end.fingerprint = Some(fingerprint.clone());
        let mut chat_m = mallory.join_chat_with(TEAM_SIPS, end);
        let mut m = chat_m.connect();
        let req = m.request("", bytes::Bytes::new());
        let tid = m.send(&req);
        assert_eq!(
            m.expect_response(&tid).code,
            403,
            "a mismatching peer bound"
        );
        assert_eq!(a.say("not for mallory").code, 200);
        m.assert_no_message(Duration::from_millis(300), "an unbound connection");
        assert_eq!(mallory.bye(&mut chat_m.call).status, 200);
    }
    focus.wait_metric(
        "focus_tls_handshake_failures_total{role=\"server\",service=\"msrp\",reason=\"fingerprint_mismatch\"}",
        WAIT,
        |v| v == 2.0,
    );
    assert_eq!(a.say("still here").code, 200);
    assert_eq!(alice.bye(&mut chat_a.call).status, 200);
}

/// The outbound direction of RFC 4572 / RFC 8122: a participant that listens
/// (`a=setup:passive`) for MSRP over TLS is connected to by the focus, which accepts only the
/// certificate the participant's SDP fingerprint names (self-signed or not: the SDP vouches).
#[test]
fn the_focus_connecting_out_accepts_only_the_certificate_the_msrp_fingerprint_names() {
    use cpm_focus::media::msrp::MsrpScheme;
    use cpm_focus::transport::tls::Fingerprint;
    use support::Setup;
    let pki = Pki::new();
    let focus = Focus::start(&pki.config());
    let sip_relay = pki.relay(focus.sip_tls.unwrap());
    let (cert, key) = pki.issue(&["alice.example.com"]);
    let fingerprint = Fingerprint::sha256_of(&der_of(&cert));
    let mismatch = "focus_tls_handshake_failures_total{role=\"client\",service=\"msrp\",reason=\"fingerprint_mismatch\"}";
    // A passive end whose TLS side (in its a=path) presents `cert` and whose SDP offers the
    // fingerprint of alice's certificate.
    let passive = |name: &str, cert: &str, key: &str| {
        let mut end = Endpoint::new(name, Setup::Passive);
        let listener = std::net::SocketAddr::from(([127, 0, 0, 1], end.path.port.unwrap()));
        let tls_at = pki.terminator(listener, cert, key);
        end.path.port = Some(tls_at.port());
        end.path.scheme = MsrpScheme::Msrps;
        end.fingerprint = Some(fingerprint.clone());
        end
    };

    // mallory listens with another certificate under alice's fingerprint: the focus's
    // handshake fails, is counted, and no byte of the chat reaches her.
    let (other, other_key) = pki.issue(&["alice.example.com"]);
    let mut mallory = Ua::tls(&focus, "mallory", sip_relay);
    let chat_m = mallory.join_chat_with(TEAM_SIPS, passive("mallory", &other, &other_key));
    assert!(chat_m.focus_path.is_secure(), "{}", chat_m.focus_path);
    focus.wait_metric(mismatch, WAIT, |v| v == 1.0);

    // alice listens with the certificate her SDP names: the focus connects and binds, and
    // she chats with an active participant.
    let mut alice = Ua::tls(&focus, "alice", sip_relay);
    let mut chat_a = alice.join_chat_with(TEAM_SIPS, passive("alice", &cert, &key));
    let mut a = chat_a.connect();
    let mut bob = Ua::tls(&focus, "bob", sip_relay);
    let mut chat_b = bob.join_chat_with(
        TEAM_SIPS,
        Endpoint::tls("bob", pki.relay(focus.msrp.unwrap())),
    );
    let mut b = chat_b.connect();
    b.bind();
    assert_eq!(b.say("to the passive end").code, 200);
    assert_eq!(a.expect_message().text(), "to the passive end");
    assert_eq!(a.say("and back").code, 200);
    assert_eq!(b.expect_message().text(), "and back");
    assert_eq!(
        focus.metric(mismatch),
        Some(1.0),
        "alice's handshake passed"
    );
    for (ua, call) in [(&mut alice, &mut chat_a.call), (&mut bob, &mut chat_b.call)] {
        assert_eq!(ua.bye(call).status, 200);
    }
    let mut chat_m = chat_m;
    let _ = mallory.bye(&mut chat_m.call);
}
