//! The plane over real loopback sockets: reservations, legs, forwarding only from the
//! holder, per-receiver rewriting (SSRC, sequence, payload type), codec separation, silence.

use super::*;
use std::sync::mpsc;

struct Events(Mutex<mpsc::Sender<(u64, RtpEvent)>>);

impl RtpEvents for Events {
    fn on_rtp_event(&self, pid: u64, event: RtpEvent) {
        let _ = self.0.lock().unwrap().send((pid, event));
    }
}

fn settings(silence: Duration) -> RtpSettings {
    RtpSettings {
        bind: "127.0.0.1".parse().unwrap(),
        also_bind: Vec::new(),
        port_min: 40000,
        port_max: 60999,
        silence_timeout: silence,
        max_packet_rate: 1000,
        latching: Latching::Signalled,
    }
}

fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(b"voice");
    p
}

fn codec(index: u8, pt: u8) -> LegCodec {
    LegCodec {
        index,
        payload_type: pt,
        clock_rate: 8000,
    }
}

/// A participant's end: a socket the focus sends to.
fn peer() -> std::net::UdpSocket {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(2000)))
        .unwrap();
    s
}

fn recv(s: &std::net::UdpSocket) -> Option<RtpHeader> {
    let mut buf = [0u8; 2048];
    let n = s.recv(&mut buf).ok()?;
    RtpHeader::parse(&buf[..n]).ok()
}

#[test]
fn forwards_only_the_holder_rewritten_per_receiver() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let plane = Arc::new(RtpPlane::new(settings(Duration::from_secs(60))));
    let group = plane.group();
    let (tx, _rx) = mpsc::channel();
    let events: Arc<dyn RtpEvents> = Arc::new(Events(Mutex::new(tx)));
    let peers: Vec<_> = (0..3).map(|_| peer()).collect();
    // Alice and Bob speak PCMU as 0, Carol as 96 (same codec, another number).
    let pts = [0u8, 0, 96];
    let members: Vec<_> = (0..3)
        .map(|i| {
            let port = plane.reserve([127, 0, 0, 1].into()).expect("a free pair");
            plane
                .add(
                    &group,
                    LegSpec {
                        pid: i + 1,
                        port,
                        expected: Some(peers[i as usize].local_addr().unwrap()),
                        codec: codec(0, pts[i as usize]),
                    },
                    events.clone(),
                )
                .unwrap()
        })
        .collect();
    assert_eq!(group.len(), 3);
    let mut scratch = Vec::new();
    let now = Instant::now();
    // Nobody holds the floor: dropped.
    assert_eq!(
        members[0].on_packet(&packet(0, 10, 100, 0xa), now, &mut scratch),
        Outcome::Dropped(DropReason::NotHolder)
    );
    group.set_holder(1);
    assert_eq!(
        members[1].on_packet(&packet(0, 10, 100, 0xb), now, &mut scratch),
        Outcome::Dropped(DropReason::NotHolder)
    );
    assert_eq!(
        members[0].on_packet(&packet(8, 10, 100, 0xa), now, &mut scratch),
        Outcome::Dropped(DropReason::PayloadType)
    );
    assert_eq!(
        members[0].on_packet(&[0x80, 0], now, &mut scratch),
        Outcome::Dropped(DropReason::Malformed)
    );
    for i in 0..3u16 {
        assert_eq!(
            members[0].on_packet(
                &packet(0, 10 + i, 100 + 160 * u32::from(i), 0xa),
                now,
                &mut scratch
            ),
            Outcome::Forwarded(2)
        );
    }
    let bob: Vec<_> = (0..3).map(|_| recv(&peers[1]).unwrap()).collect();
    let carol: Vec<_> = (0..3).map(|_| recv(&peers[2]).unwrap()).collect();
    assert_eq!(bob[0].payload_type, 0);
    assert_eq!(
        carol[0].payload_type, 96,
        "rewritten to the receiver's number"
    );
    assert_ne!(bob[0].ssrc, 0xa, "the focus's own SSRC per receiver");
    assert_ne!(bob[0].ssrc, carol[0].ssrc);
    assert!(bob[0].marker, "a talk burst starts marked");
    for w in bob.windows(2).chain(carol.windows(2)) {
        assert_eq!(w[1].sequence, w[0].sequence.wrapping_add(1));
        assert_eq!(w[1].timestamp.wrapping_sub(w[0].timestamp), 160);
    }
    // Muted: dropped even as the holder.
    plane.set_muted(&group, 1, true);
    assert_eq!(
        members[0].on_packet(&packet(0, 20, 2000, 0xa), now, &mut scratch),
        Outcome::Dropped(DropReason::Muted)
    );
    plane.set_muted(&group, 1, false);
    // Bob moves to another codec: he no longer hears Alice.
    plane.update(&group, 2, None, codec(1, 8));
    assert_eq!(
        members[0].on_packet(&packet(0, 21, 2160, 0xa), now, &mut scratch),
        Outcome::Forwarded(1)
    );
    // The holder leaves: the floor is free.
    plane.remove(&group, 1);
    assert_eq!(group.holder(), 0);
    assert_eq!(group.len(), 2);
}

#[test]
fn reservations_are_bound_released_and_bounded() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let mut s = settings(Duration::from_secs(60));
    // One pair only: find a free one first.
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let base = probe.local_addr().unwrap().port() & !1;
    drop(probe);
    s.port_min = base;
    s.port_max = base + 1;
    let plane = Arc::new(RtpPlane::new(s));
    assert_eq!(plane.free_ports(), 1);
    let Some(port) = plane.reserve([127, 0, 0, 1].into()) else {
        // Someone else took the pair meanwhile: nothing to test on a busy host.
        return;
    };
    assert_eq!(port, base);
    assert!(
        std::net::UdpSocket::bind(("127.0.0.1", port)).is_err(),
        "held"
    );
    assert_eq!(plane.reserve([127, 0, 0, 1].into()), None, "exhausted");
    plane.release(port);
    assert_eq!(plane.free_ports(), 1);
    let group = plane.group();
    let (tx, _rx) = mpsc::channel();
    let err = plane.add(
        &group,
        LegSpec {
            pid: 1,
            port,
            expected: None,
            codec: codec(0, 0),
        },
        Arc::new(Events(Mutex::new(tx))),
    );
    assert!(matches!(err, Err(RtpError::NotReserved(p)) if p == port));
}

#[test]
fn silence_is_reported_once_and_resumption_too() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let plane = Arc::new(RtpPlane::new(settings(Duration::from_millis(500))));
    let group = plane.group();
    let (tx, rx) = mpsc::channel();
    let port = plane.reserve([127, 0, 0, 1].into()).unwrap();
    // Alice's RTCP comes from her RTCP port, the one after the RTP port her SDP announced.
    let alice = peer();
    let alice_rtp = SocketAddr::new(
        alice.local_addr().unwrap().ip(),
        alice.local_addr().unwrap().port() - 1,
    );
    plane
        .add(
            &group,
            LegSpec {
                pid: 7,
                port,
                expected: Some(alice_rtp),
                codec: codec(0, 0),
            },
            Arc::new(Events(Mutex::new(tx))),
        )
        .unwrap();
    let wait = Duration::from_secs(5);
    assert_eq!(rx.recv_timeout(wait), Ok((7, RtpEvent::Silent)));
    alice
        .send_to(&[0x80, 201, 0, 1, 0, 0, 0, 1], ("127.0.0.1", port + 1))
        .unwrap();
    assert_eq!(rx.recv_timeout(wait), Ok((7, RtpEvent::Resumed)));
    assert_eq!(rx.recv_timeout(wait), Ok((7, RtpEvent::Silent)));
    // RTCP from anyone else is no proof of life.
    let stranger = std::net::UdpSocket::bind("127.0.0.66:0").unwrap();
    stranger
        .send_to(&[0x80, 201, 0, 1, 0, 0, 0, 2], ("127.0.0.1", port + 1))
        .unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(1500)).is_err());
}

#[test]
fn a_flooding_source_does_not_use_up_another_sources_budget() {
    let t0 = Instant::now();
    let mut r = SourceRates::new(t0);
    let talker: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    let flood: SocketAddr = "10.0.0.9:4000".parse().unwrap();
    for _ in 0..50 {
        assert!(!r.count(flood, 50, t0));
    }
    assert!(
        r.count(flood, 50, t0),
        "the 51st packet of a second is over"
    );
    assert!(!r.count(talker, 50, t0), "the talker has its own budget");
    // A new second starts every count afresh.
    assert!(!r.count(flood, 50, t0 + Duration::from_secs(1)));
}

#[test]
fn sources_beyond_the_table_share_one_count() {
    let t0 = Instant::now();
    let mut r = SourceRates::new(t0);
    for i in 0..MAX_SOURCES as u16 {
        assert!(!r.count(SocketAddr::from(([10, 0, 0, 1], i)), 1, t0));
    }
    assert!(!r.count(SocketAddr::from(([10, 0, 0, 2], 1)), 1, t0));
    assert!(r.count(SocketAddr::from(([10, 0, 0, 3], 1)), 1, t0));
}

#[test]
fn port_pairs_are_drawn_uniformly_from_the_free_ones() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    // Sixteen pairs below the ephemeral range (and below other tests' ranges), all free.
    let seed = u64::from(std::process::id()) ^ u64::from(rand::random::<u16>());
    let Some(base) = (0..200u64).find_map(|i| {
        let base = 5000 + ((seed.wrapping_mul(2654435761).wrapping_add(i * 97)) % 2400) as u16 * 2;
        let all: Vec<_> = (0..32)
            .map(|k| std::net::UdpSocket::bind(("127.0.0.1", base + k)))
            .collect();
        all.iter().all(|s| s.is_ok()).then_some(base)
    }) else {
        return;
    };
    let mut s = settings(Duration::from_secs(60));
    s.port_min = base;
    s.port_max = base + 31;
    let plane = Arc::new(RtpPlane::new(s));
    let mut held: Vec<u16> = (0..16)
        .filter_map(|_| plane.reserve([127, 0, 0, 1].into()))
        .collect();
    if held.len() != 16 {
        // Someone else took a port meanwhile: nothing to measure on a busy host.
        return;
    }
    // The lower half goes back: eight free pairs side by side, eight held above them.
    held.sort();
    for p in &held[..8] {
        plane.release(*p);
    }
    let mut counts: HashMap<u16, u32> = HashMap::new();
    let draws = 400;
    for _ in 0..draws {
        let Some(p) = plane.reserve([127, 0, 0, 1].into()) else {
            return;
        };
        *counts.entry(p).or_default() += 1;
        plane.release(p);
    }
    // Uniform: each of the eight about 50 times. A draw that walks from a random point to the
    // next free pair picks the lowest one whenever it starts among the held ones (over half).
    let most = counts.values().max().copied().unwrap_or(0);
    assert!(
        counts.len() == 8 && most < draws * 30 / 100,
        "not uniform: {counts:?}"
    );
}

#[test]
fn strangers_are_dropped_and_never_move_the_leg() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let plane = Arc::new(RtpPlane::new(settings(Duration::from_secs(60))));
    let group = plane.group();
    let (tx, _rx) = mpsc::channel();
    let events: Arc<dyn RtpEvents> = Arc::new(Events(Mutex::new(tx)));
    let peers: Vec<_> = (0..2).map(|_| peer()).collect();
    let members: Vec<_> = (0..2)
        .map(|i| {
            let port = plane.reserve([127, 0, 0, 1].into()).expect("a free pair");
            plane
                .add(
                    &group,
                    LegSpec {
                        pid: i + 1,
                        port,
                        expected: Some(peers[i as usize].local_addr().unwrap()),
                        codec: codec(0, 0),
                    },
                    events.clone(),
                )
                .unwrap()
        })
        .collect();
    group.set_holder(1);
    let alice = peers[0].local_addr().unwrap();
    let stranger: SocketAddr = "127.0.0.66:40000".parse().unwrap();
    let same_host: SocketAddr = SocketAddr::new(alice.ip(), alice.port() ^ 2);
    let mut scratch = Vec::new();
    let now = Instant::now();
    for (k, from) in [stranger, same_host, stranger].into_iter().enumerate() {
        assert_eq!(
            members[0].on_datagram(from, &packet(0, k as u16, 0, 0xe), now, &mut scratch),
            Outcome::Dropped(DropReason::UnknownSource),
            "{from}"
        );
        // Not the holder's port either: dropped before the holder check.
        assert_eq!(
            members[1].on_datagram(from, &packet(0, k as u16, 0, 0xe), now, &mut scratch),
            Outcome::Dropped(DropReason::UnknownSource)
        );
    }
    // The leg still sends where its SDP said, and takes its participant's packets.
    assert_eq!(
        members[1].source.lock().unwrap().remote(),
        Some(peers[1].local_addr().unwrap())
    );
    assert_eq!(
        members[0].on_datagram(alice, &packet(0, 9, 0, 0xa), now, &mut scratch),
        Outcome::Forwarded(1)
    );
    assert!(recv(&peers[1]).is_some(), "Bob hears Alice where he said");
}
