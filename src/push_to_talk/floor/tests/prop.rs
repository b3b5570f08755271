//! Properties over random operation sequences: the floor events form a consistent stream
//! (grant only a free floor, release or revoke only the holder) that matches
//! [`FloorControl::holder`]; a free floor has an empty queue; holders are present and unmuted;
//! a held floor has a timer; every message out survives the codec.

use super::*;
use proptest::collection::vec;
use proptest::prelude::*;

const USERS: [u16; 4] = [ALICE, BOB, CAROL, DAVE];

#[derive(Debug, Clone)]
enum Op {
    Request {
        user: usize,
        floor: bool,
        priority: u8,
    },
    /// Releases the `pick`-th request ID seen so far (maybe stale: Error 7).
    Release {
        user: usize,
        pick: usize,
    },
    Chair {
        pick: usize,
        status: u8,
        floor: bool,
    },
    Mute {
        user: usize,
        muted: bool,
    },
    Remove {
        user: usize,
    },
    Rejoin {
        user: usize,
    },
    Goodbye {
        user: usize,
    },
    Query {
        user: usize,
        floor: bool,
    },
    Wait {
        secs: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let user = || 0..USERS.len();
    prop_oneof![
        4 => (user(), any::<bool>(), 0u8..5)
            .prop_map(|(user, floor, priority)| Op::Request { user, floor, priority }),
        3 => (user(), any::<usize>()).prop_map(|(user, pick)| Op::Release { user, pick }),
        1 => (any::<usize>(), 1u8..=7, any::<bool>())
            .prop_map(|(pick, status, floor)| Op::Chair { pick, status, floor }),
        1 => (user(), any::<bool>()).prop_map(|(user, muted)| Op::Mute { user, muted }),
        1 => user().prop_map(|user| Op::Remove { user }),
        1 => user().prop_map(|user| Op::Rejoin { user }),
        1 => user().prop_map(|user| Op::Goodbye { user }),
        1 => (user(), any::<bool>()).prop_map(|(user, floor)| Op::Query { user, floor }),
        2 => (0u8..40).prop_map(|secs| Op::Wait { secs }),
    ]
}

fn floor_of(video: bool) -> u16 {
    if video {
        VIDEO
    } else {
        AUDIO
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_operations_keep_the_invariants(ops in vec(op(), 1..60), by_priority in any::<bool>()) {
        let mut s = Sim::with(Config { priority_ordering: by_priority, ..config() });
        let mut ids: Vec<u16> = Vec::new();
        let mut media: BTreeMap<u16, u16> = BTreeMap::new();
        let mut present: BTreeSet<u16> = USERS.iter().copied().collect();
        let mut muted: BTreeSet<u16> = BTreeSet::new();
        for op in ops {
            let out = match op {
                Op::Request { user, floor, priority } => {
                    let priority = Priority::from_code(priority).unwrap();
                    let out = s.request(USERS[user], &[floor_of(floor)], priority);
                    for (_, m) in sends(&out) {
                        if m.primitive == Primitive::FloorRequestStatus && m.transaction_id != 0 {
                            ids.push(request_status(m).0);
                        }
                    }
                    out
                }
                Op::Release { user, pick } if !ids.is_empty() => {
                    let id = ids[pick % ids.len()];
                    s.release(USERS[user], id)
                }
                Op::Release { .. } => Vec::new(),
                Op::Chair { pick, status, floor } => {
                    let id = if ids.is_empty() { 1 } else { ids[pick % ids.len()] };
                    s.chair(id, floor_of(floor), RequestStatus::from_code(status).unwrap())
                }
                Op::Mute { user, muted: m } => {
                    if m { muted.insert(USERS[user]); } else { muted.remove(&USERS[user]); }
                    s.fc.set_muted(s.now, USERS[user], m)
                }
                Op::Remove { user } => {
                    present.remove(&USERS[user]);
                    s.fc.remove_user(s.now, USERS[user])
                }
                Op::Rejoin { user } => {
                    present.insert(USERS[user]);
                    s.fc.add_user(USERS[user], UserInfo::default());
                    Vec::new()
                }
                Op::Goodbye { user } => {
                    let out = s.send(USERS[user], Primitive::Goodbye, vec![]);
                    present.remove(&USERS[user]);
                    out
                }
                Op::Query { user, floor } => {
                    s.send(USERS[user], Primitive::FloorQuery, vec![Attribute::floor_id(floor_of(floor))])
                }
                Op::Wait { secs } => s.advance(Duration::from_secs(u64::from(secs))),
            };
            check_wire(&out);
            for e in events(&out) {
                match e {
                    FloorEvent::FloorGranted { floor, user } => {
                        prop_assert_eq!(media.insert(floor, user), None, "granted a held floor");
                    }
                    FloorEvent::FloorReleased { floor, user }
                    | FloorEvent::FloorRevoked { floor, user, .. } => {
                        prop_assert_eq!(media.remove(&floor), Some(user), "freed by a non-holder");
                    }
                }
            }
            for floor in [AUDIO, VIDEO] {
                let holder = s.fc.holder(floor);
                prop_assert_eq!(holder, media.get(&floor).copied());
                match holder {
                    Some(user) => {
                        prop_assert!(present.contains(&user) && !muted.contains(&user));
                        prop_assert!(s.fc.poll_timeout().is_some_and(|t| t <= s.now + BURST));
                    }
                    // Single-floor requests only: a free floor has nobody waiting.
                    None => prop_assert_eq!(s.fc.queue(floor), Vec::<u16>::new()),
                }
            }
        }
    }
}
