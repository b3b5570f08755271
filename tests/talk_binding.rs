//! Media and floors bound to their participants (issue 14, items 2 and 3), played by an
//! attacker on 127.0.0.66 (nothing trusted) against a talk-burst group whose participants are
//! on 127.0.0.1: RTP injected at every focus port of the group reaches nobody and moves no
//! leg while the floor holder's stream reaches everyone; a BFCP connection from another
//! address, or one speaking under another participant's user id, gets a BFCP Error and no
//! grant; user ids and port pairs are not sequential.

mod support;

use cpm_focus::push_to_talk::bfcp::{
    Attribute, ErrorCode, Message, Primitive, Priority, RequestStatus,
};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;
use support::talk::{error_code, talk_focus, BfcpClient, Talker};
use support::{Focus, Ua, WAIT};

const TALK: &str = "sip:talk@focus.example.com";
const ATTACKER: [u8; 4] = [127, 0, 0, 66];
const UNKNOWN_SOURCE: &str = "focus_rtp_packets_dropped_total{reason=\"unknown_source\"}";

fn join(focus: &Focus, name: &str) -> (Ua, Talker) {
    let mut ua = Ua::udp(focus, name);
    let mut t = ua.join_talk(TALK);
    t.connect_bfcp();
    (ua, t)
}

/// The attacker's sockets on 127.0.0.66: one on an ephemeral port, and one on each
/// participant's own RTP port number (a check of the port alone would take it for them).
fn attacker_sockets(talkers: &[&Talker]) -> Vec<UdpSocket> {
    let ip = IpAddr::from(ATTACKER);
    let mut out = vec![UdpSocket::bind((ip, 0)).expect("binding 127.0.0.66")];
    for t in talkers {
        if let Ok(s) = UdpSocket::bind((ip, t.rtp.local_addr().unwrap().port())) {
            out.push(s);
        }
    }
    out
}

/// Every focus port of the group: each leg's RTP port and the RTCP port after it.
fn focus_ports(talkers: &[&Talker]) -> Vec<SocketAddr> {
    talkers
        .iter()
        .flat_map(|t| {
            let rtp = t.focus_rtp;
            [rtp, SocketAddr::new(rtp.ip(), rtp.port() + 1)]
        })
        .collect()
}

/// One PCMU packet from every attacker socket to every port; returns how many were sent.
fn inject(from: &[UdpSocket], to: &[SocketAddr], k: u16) -> u64 {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&k.to_be_bytes());
    p.extend_from_slice(&(u32::from(k) * 160).to_be_bytes());
    p.extend_from_slice(&0x0bad_0bad_u32.to_be_bytes());
    p.extend_from_slice(format!("attacker {k}").as_bytes());
    let mut sent = 0;
    for s in from {
        for addr in to {
            s.send_to(&p, addr).expect("injecting");
            sent += 1;
        }
    }
    sent
}

/// Nothing from the focus reached the attacker (no leg was moved to it).
fn assert_attacker_got_nothing(sockets: &[UdpSocket]) {
    for s in sockets {
        s.set_read_timeout(Some(Duration::from_millis(150)))
            .unwrap();
        let mut buf = [0u8; 2048];
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            panic!(
                "the attacker on {} received {n} bytes from {from}: {:?}",
                s.local_addr().unwrap(),
                String::from_utf8_lossy(&buf[12.min(n)..n])
            );
        }
    }
}

/// `n` packets on `t`'s RTP socket, all from `talker`, in sequence.
fn expect_stream_of(t: &Talker, talker: &str, n: usize) {
    let got = t.expect_rtp(n);
    for (k, p) in got.iter().enumerate() {
        let text = String::from_utf8_lossy(&p.payload);
        assert!(
            text.starts_with(&format!("{talker} ")),
            "{}: packet {k} is {text:?}, not {talker}'s",
            t.name
        );
    }
    for w in got.windows(2) {
        assert_eq!(
            w[1].header.sequence,
            w[0].header.sequence.wrapping_add(1),
            "{}: a gap or an extra packet in the stream",
            t.name
        );
    }
}

#[test]
fn injected_rtp_reaches_nobody_and_moves_no_leg() {
    let focus = talk_focus("");
    let (_a, mut alice) = join(&focus, "alice");
    let (_b, mut bob) = join(&focus, "bob");
    let (_c, carol) = join(&focus, "carol");
    let (a_req, status, _) = alice.request_floor();
    assert_eq!(status, RequestStatus::Granted);
    let legs = [&alice, &bob, &carol];
    let ports = focus_ports(&legs);
    let attackers = attacker_sockets(&legs);
    let before = focus.metric(UNKNOWN_SOURCE).unwrap_or(0.0);

    // The attacker goes first (a leg latching to the first packet it sees would be taken
    // now), then keeps injecting at every port between the holder's packets.
    let mut injected = inject(&attackers, &ports, 0);
    let rounds = 40;
    for k in 1..=rounds {
        alice.send_rtp(1);
        injected += inject(&attackers, &ports, k);
        std::thread::sleep(Duration::from_millis(5));
    }
    // Bob and Carol hear Alice, every packet and nothing else, throughout.
    for t in [&bob, &carol] {
        expect_stream_of(t, "alice", rounds as usize);
        t.assert_no_rtp(Duration::from_millis(300), "injected RTP was forwarded");
    }
    alice.assert_no_rtp(
        Duration::from_millis(100),
        "injected RTP reached the holder",
    );
    assert_attacker_got_nothing(&attackers);
    focus.wait_metric(UNKNOWN_SOURCE, WAIT, |v| v >= before + injected as f64);

    // No leg moved: Bob takes the floor and Alice and Carol hear him where their SDP said,
    // with the attacker still at it.
    assert_eq!(alice.bfcp().release(a_req), RequestStatus::Released);
    let (_, status, _) = bob.request_floor();
    assert_eq!(status, RequestStatus::Granted);
    for k in 0..10 {
        bob.send_rtp(1);
        inject(&attackers, &ports, 100 + k);
    }
    expect_stream_of(&alice, "bob", 10);
    expect_stream_of(&carol, "bob", 10);
    carol.assert_no_rtp(Duration::from_millis(300), "injected RTP was forwarded");
    assert_attacker_got_nothing(&attackers);
    let forwarded = "focus_rtp_packets_forwarded_total";
    let expected = 2.0 * 40.0 + 2.0 * 10.0;
    focus.wait_metric(forwarded, WAIT, |v| v >= expected);
    assert_eq!(
        focus.metric(forwarded),
        Some(expected),
        "only the holders' packets were forwarded"
    );
}

#[test]
fn symmetric_rtp_latches_once_to_the_signalled_address() {
    let focus = talk_focus("[rtp]\nsilence_timeout_s = 60\nlatching = \"symmetric_once\"\n");
    let (_a, mut alice) = join(&focus, "alice");
    let (_b, mut bob) = join(&focus, "bob");
    let (a_req, status, _) = alice.request_floor();
    assert_eq!(status, RequestStatus::Granted);
    let legs = [&alice, &bob];
    let ports = focus_ports(&legs);
    let attackers = attacker_sockets(&legs);
    let before = focus.metric(UNKNOWN_SOURCE).unwrap_or(0.0);

    // Before anyone speaks the attacker injects everywhere: nothing latches to it.
    let mut refused = inject(&attackers, &ports, 0);
    bob.assert_no_rtp(Duration::from_millis(200), "injected RTP was forwarded");
    // Alice speaks from another port of her own address (as behind a NAT): her leg latches.
    let nat = UdpSocket::bind("127.0.0.1:0").unwrap();
    nat.set_read_timeout(Some(WAIT)).unwrap();
    alice.send_rtp_via(&nat, 5, 0);
    expect_stream_of(&bob, "alice", 5);
    // Latched once: neither the attacker nor another port of her address moves it again.
    refused += inject(&attackers, &ports, 1);
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    alice.send_rtp_via(&other, 3, 0);
    refused += 3;
    bob.assert_no_rtp(Duration::from_millis(300), "a second source was forwarded");
    alice.send_rtp_via(&nat, 2, 0);
    expect_stream_of(&bob, "alice", 2);
    focus.wait_metric(UNKNOWN_SOURCE, WAIT, |v| v >= before + refused as f64);

    // Bob takes the floor: Alice hears him where her leg latched, the attacker nothing.
    assert_eq!(alice.bfcp().release(a_req), RequestStatus::Released);
    let (_, status, _) = bob.request_floor();
    assert_eq!(status, RequestStatus::Granted);
    bob.send_rtp(3);
    let mut buf = [0u8; 2048];
    for k in 0..3 {
        let n = nat
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("Bob's packet {k} did not reach Alice's source: {e}"));
        assert!(String::from_utf8_lossy(&buf[12..n]).starts_with("bob "));
    }
    assert_attacker_got_nothing(&attackers);
}

#[test]
fn floor_control_only_from_the_negotiated_address_as_ones_own_user() {
    let focus = talk_focus("");
    let (_a, mut alice) = join(&focus, "alice");
    let (_b, mut bob) = join(&focus, "bob");
    // Mallory is a participant too, from 127.0.0.67.
    let mut m_ua = Ua::udp_from(&focus, "mallory", "127.0.0.67");
    let mut mallory = m_ua.join_talk(TALK);
    mallory.connect_bfcp();

    // Nothing to enumerate: user ids and port pairs are not handed out in sequence.
    let mut ids = [alice.user_id, bob.user_id, mallory.user_id];
    ids.sort();
    assert!(
        ids.windows(2).any(|w| w[1] != w[0] + 1),
        "sequential user ids: {ids:?}"
    );
    let mut ports = [
        alice.focus_rtp.port(),
        bob.focus_rtp.port(),
        mallory.focus_rtp.port(),
    ];
    ports.sort();
    assert!(
        ports.windows(2).any(|w| w[1] != w[0] + 2),
        "sequential port pairs: {ports:?}"
    );

    let addr = alice.bfcp_addr.unwrap();
    let floor = alice.floor_id;
    let request = |c: &mut BfcpClient| {
        c.send(
            Primitive::FloorRequest,
            vec![
                Attribute::floor_id(floor),
                Attribute::priority(Priority::Normal),
            ],
        )
    };
    let refused = |c: &mut BfcpClient, who: &str| {
        let e = c
            .wait_for(WAIT, |m| m.primitive == Primitive::Error)
            .unwrap_or_else(|| panic!("{who}: no BFCP Error"));
        assert_eq!(
            error_code(&e),
            Some(ErrorCode::UnauthorizedOperation),
            "{who}: {e:?}"
        );
        assert!(
            c.wait_for(Duration::from_millis(300), |m| m.primitive
                == Primitive::FloorRequestStatus)
                .is_none(),
            "{who}: a floor request was answered"
        );
        assert!(c.wait_closed(WAIT), "{who}: the connection stayed open");
    };

    // An attacker on 127.0.0.66 speaks as Alice (her ids leaked): Error, no grant, closed.
    let attacker = IpAddr::from(ATTACKER);
    let mut x = BfcpClient::connect_from(attacker, addr, alice.conference_id, alice.user_id);
    x.send(Primitive::Hello, vec![]);
    request(&mut x);
    refused(&mut x, "attacker as Alice");
    // Alice's own connection was not displaced: she is granted the floor on it.
    let (a_req, status, _) = alice.request_floor();
    assert_eq!(status, RequestStatus::Granted);

    // The attacker cannot release it either.
    let mut x = BfcpClient::connect_from(attacker, addr, alice.conference_id, alice.user_id);
    x.send(
        Primitive::FloorRelease,
        vec![Attribute::floor_request_id(a_req)],
    );
    refused(&mut x, "attacker releasing Alice's floor");
    let (_, status, position) = bob.request_floor();
    assert_eq!(
        (status, position),
        (RequestStatus::Accepted, 1),
        "Alice still holds the floor"
    );

    // Mallory, a participant on another address, speaks as Alice on a new connection...
    let mut m = BfcpClient::connect_from(mallory.ip, addr, alice.conference_id, alice.user_id);
    request(&mut m);
    refused(&mut m, "Mallory as Alice");
    // ...and on her own connection with Alice's user id in the header: refused, counted.
    let tid = 0x4242;
    let forged = Message::new(
        1,
        Primitive::FloorRequest,
        alice.conference_id,
        tid,
        alice.user_id,
    )
    .with_attributes(vec![Attribute::floor_id(floor)]);
    mallory.bfcp().send_message(&forged);
    let e = mallory.bfcp().expect_response(tid);
    assert_eq!(error_code(&e), Some(ErrorCode::UnauthorizedOperation));
    // As herself she may ask, and waits behind Bob.
    let (_, status, position) = mallory.request_floor();
    assert_eq!((status, position), (RequestStatus::Accepted, 2));
    alice.send_rtp(3);
    bob.expect_rtp(3);

    let rejected = |reason: &str| {
        focus
            .metric(&format!("focus_bfcp_rejected_total{{reason=\"{reason}\"}}"))
            .unwrap_or(0.0)
    };
    assert!(rejected("wrong_address") >= 3.0, "{}", focus.metrics());
    assert_eq!(rejected("user_mismatch"), 1.0);
}
