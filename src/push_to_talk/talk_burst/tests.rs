//! Talk bursts as pure state: answer plans, the floor moving between participants, and what
//! the actor is asked to do, in virtual time with a fake port allocator.

use super::*;
use crate::push_to_talk::bfcp::{Priority, VERSION_RELIABLE};
use std::sync::Mutex;

/// Hands out even ports from 30000 and remembers what was given back.
#[derive(Default)]
struct Ports {
    next: Mutex<u16>,
    released: Mutex<Vec<u16>>,
    exhausted: bool,
}

impl RtpPorts for Ports {
    fn reserve(&self, _peer: std::net::IpAddr) -> Option<u16> {
        if self.exhausted {
            return None;
        }
        let mut n = self.next.lock().unwrap();
        *n += 2;
        Some(30000 + *n)
    }

    fn release(&self, port: u16) {
        self.released.lock().unwrap().push(port);
    }
}

const CONF: u32 = 4321;

fn settings(ports: Arc<Ports>) -> TalkSettings {
    TalkSettings {
        codecs: vec![Codec::parse("PCMU/8000").unwrap()],
        bfcp_port: 5070,
        max_talk_burst: Some(Duration::from_secs(30)),
        max_queue: 4,
        max_requests_per_user: 1,
        priority_ordering: true,
        moderated: false,
        ports,
    }
}

fn offer(pt: &str, bfcp: bool) -> SessionDescription {
    let mut text = format!(
        "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\nm=audio 6000 RTP/AVP {pt}\r\na=label:mic\r\n"
    );
    if bfcp {
        text.push_str("m=application 9 TCP/BFCP *\r\na=floorctrl:c-only\r\na=setup:active\r\n");
    }
    crate::sdp::parse(text.as_bytes()).unwrap()
}

fn info(name: &str) -> UserInfo {
    UserInfo {
        chair: false,
        display_name: Some(name.into()),
        uri: Some(format!("sip:{name}@example.com")),
    }
}

fn request(user: u16, tid: u16) -> Message {
    Message::new(VERSION_RELIABLE, Primitive::FloorRequest, CONF, tid, user).with_attributes(vec![
        Attribute::floor_id(AUDIO_FLOOR),
        Attribute::priority(Priority::Normal),
    ])
}

fn holders(effects: &[TalkEffect]) -> Vec<u64> {
    effects
        .iter()
        .filter_map(|e| match e {
            TalkEffect::Holder { pid } => Some(*pid),
            _ => None,
        })
        .collect()
}

/// Joins participant `pid`; returns its BFCP user id.
fn join(t: &mut Talk, pid: u64, name: &str) -> u16 {
    let a = t
        .plan(&offer("0", true), None, [127, 0, 0, 1].into())
        .expect("a plan");
    let user = a.user;
    t.join(pid, a, info(name));
    user
}

#[test]
fn a_plan_answers_one_codec_and_a_bfcp_server_line() {
    let ports = Arc::new(Ports::default());
    let mut t = Talk::new(settings(ports.clone()), CONF);
    let a = t
        .plan(&offer("8 0", true), None, [127, 0, 0, 1].into())
        .unwrap();
    assert_eq!((a.audio_index, a.port, a.fresh), (0, 30002, true));
    assert_eq!(a.audio_line.formats, ["0"]);
    assert_eq!(a.audio_line.attr_value("rtpmap"), Some("0 PCMU/8000"));
    assert_eq!(a.audio_line.label(), Some("mic"));
    assert_eq!(a.remote, Some("10.0.0.5:6000".parse().unwrap()));
    let (i, bfcp) = a.bfcp.clone().unwrap();
    assert_eq!((i, bfcp.port), (1, 5070));
    assert_eq!(bfcp.attr_value("confid"), Some("4321"));
    assert_eq!(bfcp.attr_value("userid"), Some(a.user.to_string().as_str()));
    assert_eq!(bfcp.attr_value("floorid"), Some("1 mstrm:mic"));
    // Unused: the port goes back.
    t.discard(&a);
    assert_eq!(*ports.released.lock().unwrap(), [30002]);
    // No common codec, or no port: nothing planned (and nothing reserved).
    assert!(t
        .plan(&offer("18", true), None, [127, 0, 0, 1].into())
        .is_none());
    let none = Arc::new(Ports {
        exhausted: true,
        ..Ports::default()
    });
    assert!(Talk::new(settings(none), CONF)
        .plan(&offer("0", true), None, [127, 0, 0, 1].into())
        .is_none());
}

#[test]
fn a_renewed_leg_keeps_its_port_and_user() {
    let ports = Arc::new(Ports::default());
    let mut t = Talk::new(settings(ports.clone()), CONF);
    let user = join(&mut t, 7, "alice");
    let effects = t.take_effects();
    assert!(
        matches!(&effects[..], [TalkEffect::AddLeg(spec)] if spec.pid == 7 && spec.port == 30002)
    );
    let again = t
        .plan(&offer("0", true), Some(7), [127, 0, 0, 1].into())
        .unwrap();
    assert_eq!((again.port, again.user, again.fresh), (30002, user, false));
    t.discard(&again);
    assert!(
        ports.released.lock().unwrap().is_empty(),
        "a kept port is not released"
    );
    // A re-offer without BFCP: the leg stays, floor control goes.
    let audio_only = t
        .plan(&offer("0", false), Some(7), [127, 0, 0, 1].into())
        .unwrap();
    let now = Instant::now();
    t.renew(now, 7, Some(audio_only), info("alice"));
    assert!(!t.knows(user));
    let effects = t.take_effects();
    assert!(matches!(effects[0], TalkEffect::UpdateLeg { pid: 7, .. }));
    assert!(matches!(effects.last(), Some(TalkEffect::Close { user: u }) if *u == user));
    // A re-offer without audio ends the leg.
    t.renew(now, 7, None, info("alice"));
    assert!(t
        .take_effects()
        .iter()
        .any(|e| matches!(e, TalkEffect::RemoveLeg { pid: 7 })));
    assert!(t.media(7).is_none());
}

#[test]
fn the_floor_moves_and_shows_in_the_media() {
    let ports = Arc::new(Ports::default());
    let mut t = Talk::new(settings(ports), CONF);
    let now = Instant::now();
    let alice = join(&mut t, 1, "alice");
    let bob = join(&mut t, 2, "bob");
    let carol = join(&mut t, 3, "carol");
    t.take_effects();
    t.on_bfcp(now, alice, &request(alice, 1));
    let effects = t.take_effects();
    assert_eq!(holders(&effects), [1]);
    assert!(effects.iter().any(
        |e| matches!(e, TalkEffect::Send { user, message } if *user == alice && message.transaction_id == 1)
    ));
    assert_eq!(t.holder(), Some(1));
    t.on_bfcp(now, bob, &request(bob, 2));
    t.on_bfcp(now, carol, &request(carol, 3));
    let status = |t: &Talk, pid| t.media(pid).map(|m| (m.status.unwrap(), m.display_text));
    assert_eq!(
        status(&t, 1),
        Some((MediaStatus::SendOnly, Some("floor granted".into())))
    );
    assert_eq!(
        status(&t, 3),
        Some((
            MediaStatus::RecvOnly,
            Some("floor requested, queue position 2".into())
        ))
    );
    t.take_effects();
    // Alice's connection drops: Bob talks; she shows the loss until she reconnects.
    t.connection_lost(now, alice);
    assert_eq!(holders(&t.take_effects()), [0, 2]);
    assert_eq!(
        status(&t, 1),
        Some((
            MediaStatus::Inactive,
            Some("floor control connection lost".into())
        ))
    );
    let hello = Message::new(VERSION_RELIABLE, Primitive::Hello, CONF, 9, alice);
    t.on_bfcp(now, alice, &hello);
    assert_eq!(status(&t, 1), Some((MediaStatus::RecvOnly, None)));
    // Bob's device goes silent: revoked, Carol talks; back once his RTP resumes.
    t.rtp_event(now, 2, RtpEvent::Silent);
    assert_eq!(holders(&t.take_effects()), [0, 3]);
    assert_eq!(status(&t, 2).unwrap().0, MediaStatus::Inactive);
    t.rtp_event(now, 2, RtpEvent::Resumed);
    assert_eq!(status(&t, 2), Some((MediaStatus::RecvOnly, None)));
    // Carol is muted: the floor is free; she leaves: her leg and connection go.
    t.set_muted(now, 3, true);
    let effects = t.take_effects();
    assert_eq!(holders(&effects), [0]);
    assert!(effects.iter().any(|e| matches!(
        e,
        TalkEffect::Mute {
            pid: 3,
            muted: true
        }
    )));
    t.leave(now, 3);
    let effects = t.take_effects();
    assert!(effects
        .iter()
        .any(|e| matches!(e, TalkEffect::RemoveLeg { pid: 3 })));
    assert!(effects
        .iter()
        .any(|e| matches!(e, TalkEffect::Close { user } if *user == carol)));
    assert!(!t.knows(carol));
}

#[test]
fn the_talk_burst_limit_is_a_timer() {
    let ports = Arc::new(Ports::default());
    let mut t = Talk::new(settings(ports), CONF);
    let now = Instant::now();
    let alice = join(&mut t, 1, "alice");
    let bob = join(&mut t, 2, "bob");
    t.on_bfcp(now, alice, &request(alice, 1));
    t.on_bfcp(now, bob, &request(bob, 2));
    t.take_effects();
    let due = t.poll_timeout().unwrap();
    assert_eq!(due, now + Duration::from_secs(30));
    t.handle_timeout(due);
    assert_eq!(holders(&t.take_effects()), [0, 2]);
    assert_eq!(t.holder(), Some(2));
}

#[test]
fn request_outcomes_are_labelled_by_the_response() {
    let ports = Arc::new(Ports::default());
    let mut t = Talk::new(settings(ports), CONF);
    let now = Instant::now();
    let alice = join(&mut t, 1, "alice");
    let bob = join(&mut t, 2, "bob");
    let granted = t.floor.on_message(now, alice, &request(alice, 1));
    assert_eq!(request_outcome(&granted, alice, 1), "granted");
    let queued = t.floor.on_message(now, bob, &request(bob, 2));
    assert_eq!(request_outcome(&queued, bob, 2), "queued");
    let again = t.floor.on_message(now, bob, &request(bob, 3));
    assert_eq!(request_outcome(&again, bob, 3), "error");
}

#[test]
fn a_bfcp_connection_speaks_only_for_its_own_user_from_its_offers_address() {
    let ports = Arc::new(Ports::default());
    let mut t = Talk::new(settings(ports), CONF);
    let alice = join(&mut t, 1, "alice");
    let bob = join(&mut t, 2, "bob");
    let here: IpAddr = "10.0.0.5".parse().unwrap();
    assert_eq!(t.authorize(alice, here), Ok(()));
    assert_eq!(
        t.authorize(alice, "::ffff:10.0.0.5".parse().unwrap()),
        Ok(()),
        "the same address, IPv4-mapped"
    );
    assert_eq!(
        t.authorize(alice, "10.0.0.66".parse().unwrap()),
        Err(FloorRefusal::WrongAddress)
    );
    let stranger = (1..=u16::MAX).find(|u| *u != alice && *u != bob).unwrap();
    assert_eq!(t.authorize(stranger, here), Err(FloorRefusal::UnknownUser));
    assert_eq!(
        FloorRefusal::WrongAddress.code(),
        ErrorCode::UnauthorizedOperation
    );
    assert_eq!(
        FloorRefusal::UnknownUser.code(),
        ErrorCode::UserDoesNotExist
    );
    // A re-offer that moves floor control moves where its connections may come from.
    let moved = crate::sdp::parse(
        b"v=0\r\no=- 1 2 IN IP4 10.0.0.7\r\ns=-\r\nc=IN IP4 10.0.0.7\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\nm=application 9 TCP/BFCP *\r\na=floorctrl:c-only\r\na=setup:active\r\n",
    )
    .unwrap();
    let renewed = t.plan(&moved, Some(1), [127, 0, 0, 1].into()).unwrap();
    t.renew(Instant::now(), 1, Some(renewed), info("alice"));
    assert_eq!(t.authorize(alice, here), Err(FloorRefusal::WrongAddress));
    assert_eq!(t.authorize(alice, "10.0.0.7".parse().unwrap()), Ok(()));
    // Gone: unknown.
    t.leave(Instant::now(), 1);
    assert_eq!(
        t.authorize(alice, "10.0.0.7".parse().unwrap()),
        Err(FloorRefusal::UnknownUser)
    );
}

#[test]
fn user_ids_are_random_and_unique() {
    let ports = Arc::new(Ports::default());
    let mut t = Talk::new(settings(ports), CONF);
    let ids: Vec<u16> = (0..50).map(|pid| join(&mut t, pid + 1, "p")).collect();
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
    assert!(!ids.contains(&0));
    let sequential = ids
        .windows(2)
        .filter(|w| w[1] == w[0].wrapping_add(1))
        .count();
    assert!(sequential < 3, "{ids:?}");
}
