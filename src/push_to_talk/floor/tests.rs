//! Floor machine tests in virtual time: every input goes through the codec first and every
//! message out is encoded and decoded again, so the wire format is checked along the way.
//! Random operation sequences (`tests/prop.rs`) check the invariants.

mod prop;

use super::*;
use crate::push_to_talk::bfcp::{decode_datagram, encode, StreamDecoder, Text};
use bytes::BytesMut;
use std::time::Duration;

const CONF: u32 = 77;
const ALICE: u16 = 1;
const BOB: u16 = 2;
const CAROL: u16 = 3;
const DAVE: u16 = 4;
const CHAIR: u16 = 9;
const AUDIO: u16 = 1;
const VIDEO: u16 = 2;
const BURST: Duration = Duration::from_secs(30);

struct Sim {
    fc: FloorControl,
    t0: Instant,
    now: Instant,
    tid: u16,
    transport: Transport,
}

fn config() -> Config {
    Config {
        conference_id: CONF,
        floors: vec![
            FloorConfig::new(AUDIO, "audio"),
            FloorConfig::new(VIDEO, "video"),
        ],
        max_talk_burst: Some(BURST),
        ..Config::default()
    }
}

impl Sim {
    fn new() -> Sim {
        Sim::with(config())
    }

    fn with(config: Config) -> Sim {
        let transport = config.transport;
        let mut fc = FloorControl::new(config);
        for (user, name) in [
            (ALICE, "Alice"),
            (BOB, "Bob"),
            (CAROL, "Carol"),
            (DAVE, "Dave"),
        ] {
            let info = UserInfo {
                chair: false,
                display_name: Some(name.into()),
                uri: Some(format!("sip:{}@example.com", name.to_lowercase())),
            };
            fc.add_user(user, info);
        }
        fc.add_user(
            CHAIR,
            UserInfo {
                chair: true,
                ..UserInfo::default()
            },
        );
        let t0 = Instant::now();
        Sim {
            fc,
            t0,
            now: t0,
            tid: 100,
            transport,
        }
    }

    fn message(&mut self, user: u16, primitive: Primitive, attributes: Vec<Attribute>) -> Message {
        self.tid += 1;
        Message::new(self.transport.version(), primitive, CONF, self.tid, user)
            .with_attributes(attributes)
    }

    /// Sends `msg` on `user`'s connection, through the codec both ways.
    fn send_as(&mut self, user: u16, msg: Message) -> Vec<Output> {
        let msg = wire(&msg);
        let out = self.fc.on_message(self.now, user, &msg);
        check_wire(&out);
        out
    }

    fn send(&mut self, user: u16, primitive: Primitive, attributes: Vec<Attribute>) -> Vec<Output> {
        let msg = self.message(user, primitive, attributes);
        self.send_as(user, msg)
    }

    fn request(&mut self, user: u16, floors: &[u16], priority: Priority) -> Vec<Output> {
        let mut attributes: Vec<Attribute> =
            floors.iter().map(|&f| Attribute::floor_id(f)).collect();
        attributes.push(Attribute::priority(priority));
        self.send(user, Primitive::FloorRequest, attributes)
    }

    /// Requests `floor` and returns the new FLOOR-REQUEST-ID.
    fn take(&mut self, user: u16, floor: u16) -> u16 {
        let out = self.request(user, &[floor], Priority::Normal);
        response_status(&out, user).0
    }

    fn release(&mut self, user: u16, id: u16) -> Vec<Output> {
        self.send(
            user,
            Primitive::FloorRelease,
            vec![Attribute::floor_request_id(id)],
        )
    }

    fn chair(&mut self, id: u16, floor: u16, status: RequestStatus) -> Vec<Output> {
        let fri = Attribute::floor_request_information(
            id,
            vec![Attribute::floor_request_status(
                floor,
                vec![Attribute::request_status(status, 0)],
            )],
        );
        self.send(CHAIR, Primitive::ChairAction, vec![fri])
    }

    fn advance(&mut self, by: Duration) -> Vec<Output> {
        self.now += by;
        let out = self.fc.handle_timeout(self.now);
        check_wire(&out);
        out
    }
}

/// The message as the server would decode it.
fn wire(msg: &Message) -> Message {
    let mut buf = BytesMut::new();
    encode(msg, &mut buf).unwrap();
    if msg.version == 1 {
        StreamDecoder::default().decode(&mut buf).unwrap().unwrap()
    } else {
        decode_datagram(&buf).unwrap()
    }
}

fn check_wire(out: &[Output]) {
    for o in out {
        if let Output::Send { message, .. } = o {
            assert_eq!(&wire(message), message);
        }
    }
}

fn sends(out: &[Output]) -> Vec<(u16, &Message)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { user, message } => Some((*user, message)),
            Output::Event(_) => None,
        })
        .collect()
}

fn events(out: &[Output]) -> Vec<FloorEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            Output::Send { .. } => None,
        })
        .collect()
}

/// (FLOOR-REQUEST-ID, overall status, queue position, STATUS-INFO) of a FloorRequestStatus.
fn request_status(msg: &Message) -> (u16, RequestStatus, u8, Option<String>) {
    assert_eq!(msg.primitive, Primitive::FloorRequestStatus, "{msg:?}");
    fri_status(&msg.attributes[0])
}

fn fri_status(fri: &Attribute) -> (u16, RequestStatus, u8, Option<String>) {
    let Attribute::FloorRequestInformation {
        floor_request_id,
        attributes,
        ..
    } = fri
    else {
        panic!("not a FLOOR-REQUEST-INFORMATION: {fri:?}");
    };
    let ors = attributes
        .iter()
        .find(|a| matches!(a, Attribute::OverallRequestStatus { .. }))
        .unwrap();
    let mut status = None;
    let mut info = None;
    for a in ors.nested() {
        match a {
            Attribute::RequestStatus {
                status: s,
                queue_position,
                ..
            } => status = Some((*s, *queue_position)),
            Attribute::StatusInfo { text, .. } => info = text.as_str().map(str::to_owned),
            _ => {}
        }
    }
    let (s, q) = status.unwrap();
    (*floor_request_id, s, q, info)
}

/// The FloorRequestStatus answering `user` (transaction ID non-zero over TCP: not a
/// notification).
fn response_status(out: &[Output], user: u16) -> (u16, RequestStatus, u8, Option<String>) {
    let (_, msg) = sends(out)
        .into_iter()
        .find(|(u, m)| {
            *u == user && m.primitive == Primitive::FloorRequestStatus && m.transaction_id != 0
        })
        .unwrap_or_else(|| panic!("no response to {user}: {out:?}"));
    request_status(msg)
}

/// The server-initiated FloorRequestStatus messages, as (user, id, status, position).
fn notifications(out: &[Output]) -> Vec<(u16, u16, RequestStatus, u8)> {
    sends(out)
        .into_iter()
        .filter(|(_, m)| m.primitive == Primitive::FloorRequestStatus && m.transaction_id == 0)
        .map(|(u, m)| {
            let (id, s, q, _) = request_status(m);
            (u, id, s, q)
        })
        .collect()
}

fn error_code(out: &[Output]) -> ErrorCode {
    let errors: Vec<_> = sends(out)
        .into_iter()
        .filter(|(_, m)| m.primitive == Primitive::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{out:?}");
    match &errors[0].1.attributes[0] {
        Attribute::ErrorCode { code, .. } => *code,
        other => panic!("{other:?}"),
    }
}

/// Requests as a FloorStatus lists them: (id, status, position).
type Listed = Vec<(u16, RequestStatus, u8)>;

/// The floor and the requests a FloorStatus lists.
fn floor_status(msg: &Message) -> (Option<u16>, Listed) {
    assert_eq!(msg.primitive, Primitive::FloorStatus);
    let floor = msg.attributes.iter().find_map(|a| match a {
        Attribute::FloorId { id, .. } => Some(*id),
        _ => None,
    });
    let requests = msg
        .attributes
        .iter()
        .filter(|a| matches!(a, Attribute::FloorRequestInformation { .. }))
        .map(|a| {
            let (id, s, q, _) = fri_status(a);
            (id, s, q)
        })
        .collect();
    (floor, requests)
}

#[test]
fn request_grant_queue_release_and_next_grant() {
    let mut s = Sim::new();
    let out = s.request(ALICE, &[AUDIO], Priority::Normal);
    let (a, status, _, _) = response_status(&out, ALICE);
    assert_eq!(status, RequestStatus::Granted);
    assert_eq!(
        events(&out),
        vec![FloorEvent::FloorGranted {
            floor: AUDIO,
            user: ALICE
        }]
    );
    assert_eq!(s.fc.holder(AUDIO), Some(ALICE));

    let out = s.request(BOB, &[AUDIO], Priority::Normal);
    let (b, status, position, _) = response_status(&out, BOB);
    assert_eq!((status, position), (RequestStatus::Accepted, 1));
    assert!(events(&out).is_empty());
    let c = s.take(CAROL, AUDIO);
    assert_eq!(s.fc.queue(AUDIO), vec![BOB, CAROL]);

    let out = s.release(ALICE, a);
    assert_eq!(response_status(&out, ALICE).1, RequestStatus::Released);
    assert_eq!(
        events(&out),
        vec![
            FloorEvent::FloorReleased {
                floor: AUDIO,
                user: ALICE
            },
            FloorEvent::FloorGranted {
                floor: AUDIO,
                user: BOB
            },
        ]
    );
    assert_eq!(
        notifications(&out),
        vec![
            (BOB, b, RequestStatus::Granted, 0),
            (CAROL, c, RequestStatus::Accepted, 1)
        ]
    );
    assert_eq!(s.fc.holder(AUDIO), Some(BOB));
    // The other floor is independent.
    let out = s.request(DAVE, &[VIDEO], Priority::Normal);
    assert_eq!(response_status(&out, DAVE).1, RequestStatus::Granted);
}

#[test]
fn priority_orders_the_queue_fifo_within_a_priority() {
    let mut s = Sim::new();
    let a = s.take(ALICE, AUDIO);
    s.request(BOB, &[AUDIO], Priority::Normal);
    let out = s.request(CAROL, &[AUDIO], Priority::High);
    assert_eq!(response_status(&out, CAROL).2, 1, "ahead of Bob");
    assert_eq!(notifications(&out).len(), 1, "Bob moved to 2nd: {out:?}");
    s.request(DAVE, &[AUDIO], Priority::High);
    assert_eq!(s.fc.queue(AUDIO), vec![CAROL, DAVE, BOB]);
    s.release(ALICE, a);
    assert_eq!(s.fc.holder(AUDIO), Some(CAROL));

    // Without priority ordering: first come, first served.
    let mut s = Sim::with(Config {
        priority_ordering: false,
        ..config()
    });
    let a = s.take(ALICE, AUDIO);
    s.request(BOB, &[AUDIO], Priority::Lowest);
    s.request(CAROL, &[AUDIO], Priority::Highest);
    assert_eq!(s.fc.queue(AUDIO), vec![BOB, CAROL]);
    s.release(ALICE, a);
    assert_eq!(s.fc.holder(AUDIO), Some(BOB));
}

#[test]
fn releasing_a_queued_request_cancels_it() {
    let mut s = Sim::new();
    s.take(ALICE, AUDIO);
    let b = s.take(BOB, AUDIO);
    let c = s.take(CAROL, AUDIO);
    let out = s.release(BOB, b);
    assert_eq!(response_status(&out, BOB).1, RequestStatus::Cancelled);
    assert!(events(&out).is_empty(), "the holder keeps talking");
    assert_eq!(
        notifications(&out),
        vec![(CAROL, c, RequestStatus::Accepted, 1)]
    );
    assert_eq!(s.fc.holder(AUDIO), Some(ALICE));
    // Gone: releasing or querying it again is Error 7.
    assert_eq!(
        error_code(&s.release(BOB, b)),
        ErrorCode::FloorRequestIdDoesNotExist
    );
    // Someone else's request: Error 5.
    assert_eq!(
        error_code(&s.release(DAVE, c)),
        ErrorCode::UnauthorizedOperation
    );
}

#[test]
fn floor_query_notifies_every_querier_on_each_change() {
    let mut s = Sim::new();
    for user in [CAROL, DAVE] {
        let out = s.send(
            user,
            Primitive::FloorQuery,
            vec![Attribute::floor_id(AUDIO)],
        );
        let msgs = sends(&out);
        assert_eq!(msgs.len(), 1);
        assert_eq!(floor_status(msgs[0].1), (Some(AUDIO), vec![]));
        assert_ne!(msgs[0].1.transaction_id, 0, "the response");
    }
    let watchers = |out: &[Output]| -> Vec<(u16, Listed)> {
        sends(out)
            .into_iter()
            .filter(|(_, m)| m.primitive == Primitive::FloorStatus)
            .map(|(u, m)| {
                assert_eq!(m.transaction_id, 0);
                (u, floor_status(m).1)
            })
            .collect()
    };
    let a = s.take(ALICE, AUDIO);
    let out = s.request(BOB, &[AUDIO], Priority::Normal);
    let b = response_status(&out, BOB).0;
    let queued = vec![
        (a, RequestStatus::Granted, 0),
        (b, RequestStatus::Accepted, 1),
    ];
    assert_eq!(
        watchers(&out),
        vec![(CAROL, queued.clone()), (DAVE, queued)]
    );
    let out = s.release(ALICE, a);
    let next = vec![(b, RequestStatus::Granted, 0)];
    assert_eq!(watchers(&out), vec![(CAROL, next.clone()), (DAVE, next)]);
    // A change on another floor is not theirs.
    let out = s.request(ALICE, &[VIDEO], Priority::Normal);
    assert!(watchers(&out).is_empty());
    // An empty FloorQuery ends Dave's updates.
    s.send(DAVE, Primitive::FloorQuery, vec![]);
    let out = s.release(BOB, b);
    assert_eq!(watchers(&out), vec![(CAROL, vec![])]);

    // Two floors in one query: the response covers the first, a notification the second.
    let out = s.send(
        BOB,
        Primitive::FloorQuery,
        vec![Attribute::floor_id(AUDIO), Attribute::floor_id(VIDEO)],
    );
    let msgs = sends(&out);
    assert_eq!(msgs.len(), 2);
    assert_eq!(floor_status(msgs[0].1).0, Some(AUDIO));
    assert_ne!(msgs[0].1.transaction_id, 0);
    assert_eq!(floor_status(msgs[1].1).0, Some(VIDEO));
    assert_eq!(msgs[1].1.transaction_id, 0);
    assert_eq!(floor_status(msgs[1].1).1.len(), 1, "Alice holds video");
}

#[test]
fn max_talk_burst_revokes_and_the_queue_advances() {
    let mut s = Sim::new();
    assert_eq!(s.fc.poll_timeout(), None);
    let a = s.take(ALICE, AUDIO);
    let b = s.take(BOB, AUDIO);
    assert_eq!(s.fc.poll_timeout(), Some(s.t0 + BURST));
    assert!(s.advance(BURST - Duration::from_millis(1)).is_empty());
    let out = s.advance(Duration::from_millis(1));
    assert_eq!(
        events(&out),
        vec![
            FloorEvent::FloorRevoked {
                floor: AUDIO,
                user: ALICE,
                reason: RevokeReason::TalkBurstTooLong
            },
            FloorEvent::FloorGranted {
                floor: AUDIO,
                user: BOB
            },
        ]
    );
    let told: Vec<_> = sends(&out)
        .into_iter()
        .map(|(u, m)| (u, request_status(m)))
        .collect();
    assert_eq!(
        told,
        vec![
            (
                ALICE,
                (
                    a,
                    RequestStatus::Revoked,
                    0,
                    Some("maximum talk-burst time reached".into())
                )
            ),
            (BOB, (b, RequestStatus::Granted, 0, None)),
        ]
    );
    // Bob's burst is measured from his grant.
    assert_eq!(s.fc.poll_timeout(), Some(s.t0 + 2 * BURST));
    // Without a limit there is no timer.
    let mut s = Sim::with(Config {
        max_talk_burst: None,
        ..config()
    });
    s.take(ALICE, AUDIO);
    assert_eq!(s.fc.poll_timeout(), None);
}

#[test]
fn chair_grants_denies_and_revokes() {
    let mut s = Sim::new();
    let a = s.take(ALICE, AUDIO);
    let b = s.take(BOB, AUDIO);
    let c = s.take(CAROL, AUDIO);

    // Grant Carol over the queue: Alice is revoked.
    let out = s.chair(c, AUDIO, RequestStatus::Granted);
    let acks: Vec<_> = sends(&out)
        .into_iter()
        .filter(|(_, m)| m.primitive == Primitive::ChairActionAck)
        .collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].0, CHAIR);
    assert_eq!(
        events(&out),
        vec![
            FloorEvent::FloorRevoked {
                floor: AUDIO,
                user: ALICE,
                reason: RevokeReason::Chair
            },
            FloorEvent::FloorGranted {
                floor: AUDIO,
                user: CAROL
            },
        ]
    );
    assert_eq!(
        notifications(&out),
        vec![
            (ALICE, a, RequestStatus::Revoked, 0),
            (CAROL, c, RequestStatus::Granted, 0)
        ]
    );
    // Deny Bob, who is queued.
    let out = s.chair(b, AUDIO, RequestStatus::Denied);
    assert_eq!(
        notifications(&out),
        vec![(BOB, b, RequestStatus::Denied, 0)]
    );
    assert!(events(&out).is_empty());
    // Revoke Carol.
    let out = s.chair(c, AUDIO, RequestStatus::Revoked);
    assert_eq!(
        notifications(&out),
        vec![(CAROL, c, RequestStatus::Revoked, 0)]
    );
    assert_eq!(s.fc.holder(AUDIO), None);
    // Statuses a chair cannot set, unknown requests, floors outside the request.
    let d = s.take(DAVE, AUDIO);
    assert_eq!(
        error_code(&s.chair(d, AUDIO, RequestStatus::Released)),
        ErrorCode::GenericError
    );
    assert_eq!(
        error_code(&s.chair(999, AUDIO, RequestStatus::Granted)),
        ErrorCode::FloorRequestIdDoesNotExist
    );
    assert_eq!(
        error_code(&s.chair(d, VIDEO, RequestStatus::Revoked)),
        ErrorCode::InvalidFloorId
    );
}

#[test]
fn a_non_chair_chair_action_is_refused() {
    let mut s = Sim::new();
    let a = s.take(ALICE, AUDIO);
    let fri = Attribute::floor_request_information(
        a,
        vec![Attribute::floor_request_status(
            AUDIO,
            vec![Attribute::request_status(RequestStatus::Revoked, 0)],
        )],
    );
    let out = s.send(BOB, Primitive::ChairAction, vec![fri]);
    assert_eq!(error_code(&out), ErrorCode::UnauthorizedOperation);
    assert_eq!(s.fc.holder(AUDIO), Some(ALICE));
    // A non-chair may not request for someone else either.
    let out = s.send(
        BOB,
        Primitive::FloorRequest,
        vec![Attribute::floor_id(VIDEO), Attribute::beneficiary_id(CAROL)],
    );
    assert_eq!(error_code(&out), ErrorCode::UnauthorizedOperation);
}

#[test]
fn moderated_requests_wait_for_a_chair() {
    let mut s = Sim::with(Config {
        moderated: true,
        ..config()
    });
    let out = s.request(ALICE, &[AUDIO], Priority::Normal);
    let (a, status, position, _) = response_status(&out, ALICE);
    assert_eq!((status, position), (RequestStatus::Pending, 0));
    assert_eq!(s.fc.holder(AUDIO), None);
    let out = s.chair(a, AUDIO, RequestStatus::Accepted);
    assert_eq!(
        notifications(&out),
        vec![(ALICE, a, RequestStatus::Granted, 0)]
    );
    assert_eq!(s.fc.holder(AUDIO), Some(ALICE));
    // A chair's own requests, here for Bob, skip the wait; Bob learns of it.
    let out = s.send(
        CHAIR,
        Primitive::FloorRequest,
        vec![Attribute::floor_id(VIDEO), Attribute::beneficiary_id(BOB)],
    );
    let (v, status, _, _) = response_status(&out, CHAIR);
    assert_eq!(status, RequestStatus::Granted);
    assert_eq!(
        notifications(&out),
        vec![(BOB, v, RequestStatus::Granted, 0)]
    );
    assert_eq!(s.fc.holder(VIDEO), Some(BOB));
}

#[test]
fn muted_users_are_denied_and_lose_the_floor() {
    let mut s = Sim::new();
    assert!(s.fc.set_muted(s.now, BOB, true).is_empty());
    let out = s.request(BOB, &[AUDIO], Priority::Normal);
    let (_, status, _, info) = response_status(&out, BOB);
    assert_eq!(
        (status, info.as_deref()),
        (RequestStatus::Denied, Some("muted"))
    );
    assert_eq!(s.fc.holder(AUDIO), None);
    // Unmuted, Bob may talk; muted again, he loses the floor to Carol.
    s.fc.set_muted(s.now, BOB, false);
    let b = s.take(BOB, AUDIO);
    let c = s.take(CAROL, AUDIO);
    let out = s.fc.set_muted(s.now, BOB, true);
    check_wire(&out);
    assert_eq!(
        events(&out),
        vec![
            FloorEvent::FloorRevoked {
                floor: AUDIO,
                user: BOB,
                reason: RevokeReason::Muted
            },
            FloorEvent::FloorGranted {
                floor: AUDIO,
                user: CAROL
            },
        ]
    );
    assert_eq!(
        notifications(&out),
        vec![
            (BOB, b, RequestStatus::Revoked, 0),
            (CAROL, c, RequestStatus::Granted, 0)
        ]
    );
    // Muting a queued user denies the request.
    let d = s.take(DAVE, AUDIO);
    let out = s.fc.set_muted(s.now, DAVE, true);
    assert_eq!(
        notifications(&out),
        vec![(DAVE, d, RequestStatus::Denied, 0)]
    );
}

#[test]
fn a_leaving_user_loses_the_floor_and_its_requests() {
    let mut s = Sim::new();
    s.take(ALICE, AUDIO);
    let b = s.take(BOB, AUDIO);
    s.take(ALICE, VIDEO);
    let out = s.fc.remove_user(s.now, ALICE);
    check_wire(&out);
    assert_eq!(
        events(&out),
        vec![
            FloorEvent::FloorRevoked {
                floor: AUDIO,
                user: ALICE,
                reason: RevokeReason::UserLeft
            },
            FloorEvent::FloorRevoked {
                floor: VIDEO,
                user: ALICE,
                reason: RevokeReason::UserLeft
            },
            FloorEvent::FloorGranted {
                floor: AUDIO,
                user: BOB
            },
        ]
    );
    assert_eq!(
        notifications(&out),
        vec![(BOB, b, RequestStatus::Granted, 0)]
    );
    // Alice is unknown now.
    let out = s.request(ALICE, &[AUDIO], Priority::Normal);
    assert_eq!(error_code(&out), ErrorCode::UserDoesNotExist);
    // A queued request of a leaver is cancelled; Goodbye leaves too.
    s.take(CAROL, AUDIO);
    let d = s.take(DAVE, AUDIO);
    let out = s.send(CAROL, Primitive::Goodbye, vec![]);
    let msgs = sends(&out);
    assert_eq!(msgs[0].0, CAROL);
    assert_eq!(msgs[0].1.primitive, Primitive::GoodbyeAck);
    assert_eq!(
        notifications(&out),
        vec![(DAVE, d, RequestStatus::Accepted, 1)]
    );
    assert!(events(&out).is_empty());
    assert_eq!(s.fc.queue(AUDIO), vec![DAVE]);
}

#[test]
fn max_ongoing_requests_per_floor() {
    let mut s = Sim::new();
    s.take(ALICE, AUDIO);
    let out = s.request(ALICE, &[AUDIO], Priority::Normal);
    assert_eq!(error_code(&out), ErrorCode::MaxFloorRequestsReached);
    // Another floor is fine.
    assert_eq!(
        response_status(&s.request(ALICE, &[VIDEO], Priority::Normal), ALICE).1,
        RequestStatus::Granted
    );
    let mut s = Sim::with(Config {
        max_requests_per_floor: 2,
        ..config()
    });
    s.take(ALICE, AUDIO);
    s.take(ALICE, AUDIO);
    let out = s.request(ALICE, &[AUDIO], Priority::Normal);
    assert_eq!(error_code(&out), ErrorCode::MaxFloorRequestsReached);
}

#[test]
fn unknown_floor_and_request_ids() {
    let mut s = Sim::new();
    let out = s.request(ALICE, &[AUDIO, 9], Priority::Normal);
    assert_eq!(error_code(&out), ErrorCode::InvalidFloorId);
    assert_eq!(s.fc.holder(AUDIO), None, "nothing granted");
    let out = s.send(ALICE, Primitive::FloorQuery, vec![Attribute::floor_id(9)]);
    assert_eq!(error_code(&out), ErrorCode::InvalidFloorId);
    assert_eq!(
        error_code(&s.release(ALICE, 42)),
        ErrorCode::FloorRequestIdDoesNotExist
    );
    let out = s.send(
        ALICE,
        Primitive::FloorRequestQuery,
        vec![Attribute::floor_request_id(42)],
    );
    assert_eq!(error_code(&out), ErrorCode::FloorRequestIdDoesNotExist);
    // Missing mandatory attributes.
    let out = s.send(ALICE, Primitive::FloorRequest, vec![]);
    assert_eq!(error_code(&out), ErrorCode::UnableToParseMessage);
    let out = s.send(ALICE, Primitive::FloorRelease, vec![]);
    assert_eq!(error_code(&out), ErrorCode::UnableToParseMessage);
}

#[test]
fn errors_are_addressed_to_the_request() {
    let mut s = Sim::new();
    let mut msg = s.message(ALICE, Primitive::Hello, vec![]);
    msg.conference_id = CONF + 1;
    let out = s.send_as(ALICE, msg.clone());
    assert_eq!(error_code(&out), ErrorCode::ConferenceDoesNotExist);
    let (to, err) = sends(&out)[0];
    assert_eq!(
        (to, err.conference_id, err.transaction_id, err.user_id),
        (ALICE, CONF + 1, msg.transaction_id, ALICE)
    );
    let out = s.send(55, Primitive::Hello, vec![]);
    assert_eq!(error_code(&out), ErrorCode::UserDoesNotExist);
    // The header names someone else than the connection's user.
    let msg = s.message(BOB, Primitive::Hello, vec![]);
    let out = s.send_as(ALICE, msg);
    assert_eq!(error_code(&out), ErrorCode::UnauthorizedOperation);
    for p in [
        Primitive::Unknown(99),
        Primitive::FloorStatus,
        Primitive::HelloAck,
    ] {
        let out = s.send(ALICE, p, vec![]);
        assert_eq!(error_code(&out), ErrorCode::UnknownPrimitive);
    }
    // Acks and Errors are taken silently.
    for p in [
        Primitive::FloorRequestStatusAck,
        Primitive::FloorStatusAck,
        Primitive::GoodbyeAck,
        Primitive::Error,
    ] {
        assert!(s.send(ALICE, p, vec![]).is_empty(), "{p}");
    }
}

#[test]
fn hello_ack_lists_what_the_server_supports() {
    let mut s = Sim::new();
    let out = s.send(ALICE, Primitive::Hello, vec![]);
    let (to, ack) = sends(&out)[0];
    assert_eq!(to, ALICE);
    assert_eq!(ack.primitive, Primitive::HelloAck);
    assert_eq!((ack.version, ack.responder), (1, false));
    assert_eq!(
        ack.attributes[0],
        Attribute::supported_primitives(Primitive::ALL.to_vec())
    );
    assert_eq!(
        ack.attributes[1],
        Attribute::supported_attributes((1..=18).collect())
    );
}

#[test]
fn floor_request_query_and_user_query() {
    let mut s = Sim::new();
    let a = s.take(ALICE, AUDIO);
    let b = s.take(BOB, AUDIO);
    let out = s.send(
        CAROL,
        Primitive::FloorRequestQuery,
        vec![Attribute::floor_request_id(b)],
    );
    assert_eq!(
        response_status(&out, CAROL),
        (b, RequestStatus::Accepted, 1, None)
    );

    let out = s.send(ALICE, Primitive::UserQuery, vec![]);
    let (_, status) = sends(&out)[0];
    assert_eq!(status.primitive, Primitive::UserStatus);
    assert_eq!(
        status.attributes.len(),
        1,
        "no BENEFICIARY-INFORMATION when asking about self"
    );
    assert_eq!(fri_status(&status.attributes[0]).0, a);

    let out = s.send(
        ALICE,
        Primitive::UserQuery,
        vec![Attribute::beneficiary_id(BOB)],
    );
    let (_, status) = sends(&out)[0];
    assert_eq!(
        status.attributes[0],
        Attribute::beneficiary_information(
            BOB,
            vec![
                Attribute::user_display_name("Bob"),
                Attribute::user_uri("sip:bob@example.com")
            ]
        )
    );
    assert_eq!(
        fri_status(&status.attributes[1]),
        (b, RequestStatus::Accepted, 1, None)
    );
    let out = s.send(
        ALICE,
        Primitive::UserQuery,
        vec![Attribute::beneficiary_id(77)],
    );
    assert_eq!(error_code(&out), ErrorCode::UserDoesNotExist);
}

#[test]
fn a_multi_floor_request_waits_for_all_and_keeps_its_place() {
    let mut s = Sim::new();
    let a = s.take(ALICE, AUDIO);
    let out = s.request(BOB, &[AUDIO, VIDEO], Priority::Normal);
    let (b, status, _, _) = response_status(&out, BOB);
    assert_eq!(status, RequestStatus::Accepted);
    // Video is free, but Carol is behind Bob for it.
    let out = s.request(CAROL, &[VIDEO], Priority::Normal);
    assert_eq!(response_status(&out, CAROL).1, RequestStatus::Accepted);
    let out = s.release(ALICE, a);
    assert_eq!(
        events(&out)[1..],
        [
            FloorEvent::FloorGranted {
                floor: AUDIO,
                user: BOB
            },
            FloorEvent::FloorGranted {
                floor: VIDEO,
                user: BOB
            },
        ]
    );
    let out = s.release(BOB, b);
    assert_eq!(s.fc.holder(VIDEO), Some(CAROL));
    assert_eq!(s.fc.holder(AUDIO), None);
    assert_eq!(events(&out).len(), 3);
}

#[test]
fn over_udp_responses_set_r_and_notifications_get_fresh_transactions() {
    let mut s = Sim::with(Config {
        transport: Transport::Unreliable,
        ..config()
    });
    let out = s.request(ALICE, &[AUDIO], Priority::Normal);
    let (_, resp) = sends(&out)[0];
    assert_eq!((resp.version, resp.responder), (2, true));
    assert_eq!(resp.transaction_id, s.tid);
    let a = request_status(resp).0;
    s.take(BOB, AUDIO);
    s.take(CAROL, AUDIO);
    let out = s.release(ALICE, a);
    let notes: Vec<_> = sends(&out)
        .into_iter()
        .filter(|(u, _)| *u != ALICE)
        .map(|(_, m)| (m.version, m.responder, m.transaction_id))
        .collect();
    assert_eq!(notes, vec![(2, false, 1), (2, false, 2)]);
    // A message with R set is a response to us (an Ack): nothing to answer.
    let mut ack = s.message(BOB, Primitive::FloorRequestStatusAck, vec![]);
    ack.responder = true;
    assert!(s.send_as(BOB, ack).is_empty());
}

#[test]
fn long_names_and_info_still_fit_the_grouped_length() {
    let mut s = Sim::new();
    s.fc.add_user(
        ALICE,
        UserInfo {
            chair: false,
            display_name: Some("A".repeat(200)),
            uri: Some(format!("sip:{}@example.com", "a".repeat(200))),
        },
    );
    let info = Attribute::participant_provided_info(Text::from("x".repeat(200).as_str()));
    let out = s.send(
        ALICE,
        Primitive::FloorRequest,
        vec![Attribute::floor_id(AUDIO), info],
    );
    // check_wire encoded it; the names had to go.
    let (_, msg) = sends(&out)[0];
    assert!(msg.attributes[0].encoded_len() <= 252);
    assert_eq!(request_status(msg).1, RequestStatus::Granted);
}

#[test]
fn the_queue_is_bounded() {
    let mut s = Sim::with(Config {
        max_queue: Some(1),
        ..config()
    });
    s.take(ALICE, AUDIO);
    let out = s.request(BOB, &[AUDIO], Priority::Normal);
    assert_eq!(response_status(&out, BOB).1, RequestStatus::Accepted);
    let out = s.request(CAROL, &[AUDIO], Priority::Normal);
    let (_, status, _, info) = response_status(&out, CAROL);
    assert_eq!(
        (status, info.as_deref()),
        (RequestStatus::Denied, Some("queue full"))
    );
    assert_eq!(s.fc.queue(AUDIO), vec![BOB]);
}

#[test]
fn revoke_and_connection_loss_move_the_queue_on() {
    let mut s = Sim::new();
    s.take(ALICE, AUDIO);
    let b = s.take(BOB, AUDIO);
    let c = s.take(CAROL, AUDIO);
    // Alice's media went silent: revoked, her request gone, Bob talks.
    let out = s.fc.revoke(s.now, ALICE, RevokeReason::Silent);
    check_wire(&out);
    assert_eq!(
        events(&out),
        vec![
            FloorEvent::FloorRevoked {
                floor: AUDIO,
                user: ALICE,
                reason: RevokeReason::Silent
            },
            FloorEvent::FloorGranted {
                floor: AUDIO,
                user: BOB
            },
        ]
    );
    // Revoking someone who holds nothing changes nothing.
    assert!(s.fc.revoke(s.now, CAROL, RevokeReason::Silent).is_empty());
    assert_eq!(s.fc.queue(AUDIO), vec![CAROL]);
    // Bob's connection drops: revoked; Carol talks. Bob stays a user and may ask again.
    let out = s.fc.connection_lost(s.now, BOB);
    assert_eq!(
        events(&out),
        vec![
            FloorEvent::FloorRevoked {
                floor: AUDIO,
                user: BOB,
                reason: RevokeReason::ConnectionLost
            },
            FloorEvent::FloorGranted {
                floor: AUDIO,
                user: CAROL
            },
        ]
    );
    assert!(notifications(&out).contains(&(CAROL, c, RequestStatus::Granted, 0)));
    assert!(notifications(&out).contains(&(BOB, b, RequestStatus::Revoked, 0)));
    assert!(s.fc.has_user(BOB));
    let out = s.request(BOB, &[AUDIO], Priority::Normal);
    assert_eq!(response_status(&out, BOB).1, RequestStatus::Accepted);
    // A queued request of a dropped connection is cancelled.
    let out = s.fc.connection_lost(s.now, BOB);
    assert!(events(&out).is_empty());
    assert!(s.fc.queue(AUDIO).is_empty());
    assert_eq!(RevokeReason::ConnectionLost.label(), "connection_lost");
}

#[test]
fn pending_requests_are_listed_for_the_chair() {
    let mut s = Sim::with(Config {
        moderated: true,
        ..config()
    });
    s.request(BOB, &[AUDIO], Priority::Normal);
    s.request(ALICE, &[AUDIO], Priority::Normal);
    assert_eq!(s.fc.pending(AUDIO), vec![BOB, ALICE]);
    assert_eq!(s.fc.holder(AUDIO), None);
}
