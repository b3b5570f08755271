//! The journal: replay rules, the writer's file (append, compaction, torn lines).

use super::*;
use crate::config::{FsyncPolicy, JournalConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

fn info(uri: &str) -> SessionInfo {
    SessionInfo {
        uri: uri.into(),
        kind: "adhoc".into(),
        subject: Some("Lunch".into()),
        contribution_id: Some("cid-1".into()),
        conversation_id: None,
        hosts: vec!["sip:alice@example.com".into()],
        started_ms: 1_000,
        participants_total: 0,
    }
}

fn participant(name: &str, total: u32) -> ParticipantRecord {
    ParticipantRecord {
        identity: format!("sip:{name}@example.com"),
        display: Some(name.into()),
        real: format!("sip:{name}@example.com"),
        role: "participant".into(),
        proof: "trusted-from".into(),
        hidden: false,
        dialed_out: false,
        joined_ms: 2_000,
        participants_total: total,
        call_id: format!("call-{name}"),
        local_tag: format!("ft-{name}"),
        remote_tag: format!("rt-{name}"),
        local_addr: "<sip:conf@focus.example.com>".into(),
        remote_addr: format!("<sip:{name}@example.com>"),
        remote_target: format!("sip:{name}@10.0.0.1:5060"),
        route_set: Vec::new(),
        local_cseq: 1,
        transport: "udp".into(),
        peer: "10.0.0.1:5060".into(),
        sdp: "v=0\r\n".into(),
        peer_update: false,
    }
}

fn line(key: &str, instance: u64, event: Event) -> Line {
    Line {
        ts: 5_000,
        key: key.into(),
        instance,
        event,
    }
}

fn join(key: &str, instance: u64, pid: u64, name: &str, total: u32) -> Line {
    line(
        key,
        instance,
        Event::Join {
            pid,
            participant: Box::new(participant(name, total)),
        },
    )
}

#[test]
fn replay_follows_opens_joins_updates_leaves_and_closes() {
    let mut live = Live::default();
    live.apply(&line(
        "conf",
        1,
        Event::Open {
            info: info("sip:conf@f"),
        },
    ));
    live.apply(&join("conf", 1, 1, "alice", 1));
    live.apply(&join("conf", 1, 2, "bob", 2));
    live.apply(&line(
        "conf",
        1,
        Event::Update {
            pid: 2,
            local_cseq: 7,
            remote_target: "sip:bob@10.0.0.2:5070".into(),
            sdp: None,
        },
    ));
    live.apply(&line("conf", 1, Event::Leave { pid: 1 }));
    let s = live.sessions();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].info.participants_total, 2);
    let bob = &s[0].participants[&2];
    assert_eq!(bob.local_cseq, 7);
    assert_eq!(bob.remote_target, "sip:bob@10.0.0.2:5070");
    assert_eq!(
        bob.sdp, "v=0\r\n",
        "an update without SDP keeps the last one"
    );
    assert!(!s[0].participants.contains_key(&1));
    live.apply(&line("conf", 1, Event::Close));
    assert!(live.is_empty());
}

#[test]
fn lines_of_a_retired_instance_do_not_touch_its_successor() {
    let mut live = Live::default();
    live.apply(&line(
        "team",
        1,
        Event::Open {
            info: info("sip:team@f"),
        },
    ));
    live.apply(&join("team", 1, 1, "alice", 1));
    // The successor opens before the old actor's last lines are written.
    live.apply(&line(
        "team",
        2,
        Event::Open {
            info: info("sip:team@f"),
        },
    ));
    live.apply(&join("team", 2, 1, "bob", 1));
    live.apply(&line("team", 1, Event::Leave { pid: 1 }));
    live.apply(&line("team", 1, Event::Close));
    let s = live.sessions();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].instance, 2);
    assert_eq!(s[0].participants[&1].real, "sip:bob@example.com");
    // Lines for a key never opened are ignored.
    live.apply(&join("ghost", 9, 1, "carol", 1));
    assert_eq!(live.len(), 1);
}

#[test]
fn a_snapshot_replays_to_the_same_state() {
    let mut live = Live::default();
    live.apply(&line(
        "a",
        1,
        Event::Open {
            info: info("sip:a@f"),
        },
    ));
    live.apply(&join("a", 1, 1, "alice", 1));
    live.apply(&join("a", 1, 2, "bob", 2));
    live.apply(&line(
        "b",
        3,
        Event::Open {
            info: info("sip:b@f"),
        },
    ));
    live.apply(&join("b", 3, 5, "carol", 1));
    let mut again = Live::default();
    for l in live.snapshot() {
        again.apply(&l);
    }
    assert_eq!(again, live);
    assert_eq!(again.participant_count(), 3);
}

static DIRS: AtomicUsize = AtomicUsize::new(0);

fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "cpm-journal-{}-{}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn config(path: &Path, max_bytes: u64) -> JournalConfig {
    JournalConfig {
        path: path.to_string_lossy().into_owned(),
        fsync: FsyncPolicy::Always,
        fsync_interval_ms: 1000,
        recovery_window_s: 60,
        max_bytes,
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn the_writer_appends_and_a_reader_gets_the_live_state_back() {
    let dir = temp_dir();
    let path = dir.join("sub").join("journal.jsonl");
    let handle = JournalHandle::start(&config(&path, 1 << 20), Live::default()).unwrap();
    assert!(handle.is_enabled());
    handle.record(
        "conf",
        1,
        Event::Open {
            info: info("sip:conf@f"),
        },
    );
    handle.record(
        "conf",
        1,
        Event::Join {
            pid: 1,
            participant: Box::new(participant("alice", 1)),
        },
    );
    handle.record(
        "conf",
        1,
        Event::Join {
            pid: 2,
            participant: Box::new(participant("bob", 2)),
        },
    );
    handle.record("conf", 1, Event::Leave { pid: 1 });
    block_on(handle.flush());
    let j = read(&path).unwrap();
    assert_eq!(j.lines, 4);
    assert_eq!(j.skipped, 0);
    assert!(j.last_alive.is_some());
    let s = j.live.sessions();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].participants.len(), 1);
    assert_eq!(s[0].participants[&2].real, "sip:bob@example.com");
    // A torn last line (the crash cut a write short) is skipped.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(br#"{"ts":1,"key":"conf","instance":1,"op":"lea"#)
        .unwrap();
    let j = read(&path).unwrap();
    assert_eq!((j.lines, j.skipped), (4, 1));
    assert_eq!(j.live.sessions()[0].participants.len(), 1);
    block_on(handle.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_file_is_compacted_to_the_live_state_and_stays_bounded() {
    let dir = temp_dir();
    let path = dir.join("journal.jsonl");
    let handle = JournalHandle::start(&config(&path, 4096), Live::default()).unwrap();
    handle.record(
        "conf",
        1,
        Event::Open {
            info: info("sip:conf@f"),
        },
    );
    handle.record(
        "conf",
        1,
        Event::Join {
            pid: 1,
            participant: Box::new(participant("alice", 1)),
        },
    );
    // Many participants come and go: thousands of lines, one live participant at the end.
    for pid in 2..600u64 {
        handle.record(
            "conf",
            1,
            Event::Join {
                pid,
                participant: Box::new(participant("bob", pid as u32)),
            },
        );
        handle.record("conf", 1, Event::Leave { pid });
    }
    block_on(handle.flush());
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 2 * 4096, "the journal grew to {size} bytes");
    let j = read(&path).unwrap();
    let s = j.live.sessions();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].participants.len(), 1);
    assert_eq!(s[0].participants[&1].real, "sip:alice@example.com");
    assert_eq!(s[0].info.participants_total, 599);
    assert!(!dir.join("journal.jsonl.tmp").exists());
    block_on(handle.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn starting_rewrites_the_file_with_the_state_to_keep() {
    let dir = temp_dir();
    let path = dir.join("journal.jsonl");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&path, "garbage\n").unwrap();
    let mut keep = Live::default();
    keep.apply(&line(
        "a",
        1,
        Event::Open {
            info: info("sip:a@f"),
        },
    ));
    keep.apply(&join("a", 1, 1, "alice", 1));
    let handle = JournalHandle::start(&config(&path, 1 << 20), keep.clone()).unwrap();
    let j = read(&path).unwrap();
    assert_eq!(j.skipped, 0);
    assert_eq!(j.live, keep);
    block_on(handle.shutdown());
    // A missing file is an empty journal.
    let j = read(&dir.join("none.jsonl")).unwrap();
    assert!(j.live.is_empty() && j.last_alive.is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_disabled_journal_takes_lines_and_writes_nothing() {
    let handle = JournalHandle::start(&JournalConfig::default(), Live::default()).unwrap();
    assert!(!handle.is_enabled());
    handle.record("conf", 1, Event::Close);
    // No writer behind it: a flush is done at its first poll, with nothing to wait for.
    let mut flush = std::pin::pin!(handle.flush());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(std::future::Future::poll(flush.as_mut(), &mut cx).is_ready());
    assert!(!JournalHandle::disabled().is_enabled());
}

use std::io::Write;

/// A journal is written by one process at a time: a second lock on it is refused at once,
/// and released with its holder.
#[test]
fn a_second_lock_on_a_journal_is_refused_until_the_first_goes() {
    let dir = temp_dir();
    let path = dir.join("journal.jsonl");
    let first = super::JournalLock::acquire(&path).unwrap();
    match super::JournalLock::acquire(&path) {
        Err(JournalError::Locked { lock, .. }) => assert!(lock.ends_with("journal.jsonl.lock")),
        other => panic!("a second lock: {other:?}"),
    }
    drop(first);
    assert!(super::JournalLock::acquire(&path).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}
