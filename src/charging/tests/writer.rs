use crate::charging::*;
use crate::config::{Config, FsyncPolicy};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("cpm-charging-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, rest: &str) -> PathBuf {
        self.0.join(rest)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(path: &Path, tweak: impl FnOnce(&mut crate::config::ChargingConfig)) -> Config {
    let mut c = Config::default();
    c.charging.path = path.display().to_string();
    tweak(&mut c.charging);
    c
}

fn message(n: u64) -> Record {
    Record::GroupMessage {
        conference: Some("sip:team@focus.example.com".into()),
        sender: "sip:alice@example.com".into(),
        recipients: 3,
        size: n,
        mode: MessageMode::Pager,
        verified: true,
    }
}

fn size_of(e: &Entry) -> u64 {
    match e.record {
        Record::GroupMessage { size, .. } => size,
        _ => panic!("not a message: {e:?}"),
    }
}

/// Every line of one file, each of which must be a complete, valid entry.
fn entries(path: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'), "torn last line");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Every entry of the file set, oldest file first.
fn all_entries(path: &Path, keep: usize) -> Vec<Entry> {
    let mut all = Vec::new();
    for n in (1..=keep).rev() {
        all.extend(entries(&files::numbered(path, n)));
    }
    all.extend(entries(path));
    all
}

fn seqs(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn one_valid_object_per_line_in_order_with_consecutive_seq() {
    let dir = Scratch::new("lines");
    let path = dir.path("sub/dir/cdr.jsonl");
    let (handle, task) = ChargingWriter::start(&config(&path, |_| {})).unwrap();
    assert!(handle.is_enabled());
    for record in super::record::every_record() {
        handle.record(record);
    }
    for n in 0..200 {
        handle.record(message(n));
    }
    handle.shutdown().await.unwrap();
    task.await.unwrap();

    let got = entries(&path);
    assert_eq!(seqs(&got), (1..=206).collect::<Vec<_>>());
    let types: Vec<_> = got[..6].iter().map(|e| e.record.type_name()).collect();
    assert_eq!(
        types,
        [
            "session_start",
            "session_stop",
            "participant_join",
            "participant_leave",
            "group_message",
            "msrp_volume"
        ]
    );
    let sizes: Vec<_> = got[6..].iter().map(size_of).collect();
    assert_eq!(sizes, (0..200).collect::<Vec<_>>());
    assert!(got.iter().all(|e| e.instance == "focus-1"));
    assert!(got.windows(2).all(|w| w[0].ts <= w[1].ts));
    assert_eq!(
        handle.stats(),
        ChargingStats {
            written: 206,
            ..ChargingStats::default()
        }
    );
}

#[tokio::test]
async fn rotation_keeps_whole_lines_within_the_limit_and_loses_none() {
    let dir = Scratch::new("rotate");
    let path = dir.path("cdr.jsonl");
    let limit = 1024;
    let keep = 3;
    let (handle, task) = ChargingWriter::start(&config(&path, |c| {
        c.max_file_bytes = limit;
        c.keep_files = keep;
    }))
    .unwrap();
    // A line is under 200 bytes, so four files hold at least 20: nothing is deleted yet.
    for n in 0..10 {
        handle.record(message(n));
    }
    handle.flush().await.unwrap();
    for n in 10..20 {
        handle.record(message(n));
    }
    handle.shutdown().await.unwrap();
    task.await.unwrap();

    assert!(!files::numbered(&path, keep + 1).exists());
    let all = all_entries(&path, keep);
    assert_eq!(seqs(&all), (1..=20).collect::<Vec<_>>());
    assert_eq!(
        all.iter().map(size_of).collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
    let line = |e: &Entry| serde_json::to_vec(e).unwrap().len() as u64 + 1;
    for n in 1..=keep {
        let file = files::numbered(&path, n);
        let len = std::fs::metadata(&file).unwrap().len();
        assert!(len <= limit, "{} is {len} bytes", file.display());
        // Rotated only when the next line did not fit.
        let next_seq = entries(&file).last().unwrap().seq + 1;
        let next = all.iter().find(|e| e.seq == next_seq).unwrap();
        assert!(len + line(next) > limit, "{} rotated early", file.display());
    }
}

#[tokio::test]
async fn rotation_deletes_only_beyond_keep_files() {
    let dir = Scratch::new("keep");
    let path = dir.path("cdr.jsonl");
    let keep = 2;
    let (handle, task) = ChargingWriter::start(&config(&path, |c| {
        c.max_file_bytes = 1024;
        c.keep_files = keep;
        c.fsync = FsyncPolicy::Never;
    }))
    .unwrap();
    for n in 0..300 {
        handle.record(message(n));
    }
    handle.shutdown().await.unwrap();
    task.await.unwrap();

    assert!(files::numbered(&path, keep).exists());
    assert!(!files::numbered(&path, keep + 1).exists());
    let kept = seqs(&all_entries(&path, keep));
    assert_eq!(kept.last(), Some(&300));
    assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "{kept:?}");
    assert!(kept[0] > 1);
}

#[tokio::test]
async fn a_record_larger_than_the_limit_gets_a_file_of_its_own() {
    let dir = Scratch::new("large");
    let path = dir.path("cdr.jsonl");
    let (handle, task) = ChargingWriter::start(&config(&path, |c| {
        c.max_file_bytes = 1024;
        c.keep_files = 5;
    }))
    .unwrap();
    handle.record(message(1));
    handle.record(Record::SessionStart {
        conference: "sip:big@focus.example.com".into(),
        kind: SessionKind::Adhoc,
        subject: Some("x".repeat(3000)),
        recovered: false,
    });
    handle.record(message(2));
    handle.shutdown().await.unwrap();
    task.await.unwrap();

    assert_eq!(seqs(&entries(&files::numbered(&path, 2))), [1]);
    assert_eq!(seqs(&entries(&files::numbered(&path, 1))), [2]);
    assert_eq!(seqs(&entries(&path)), [3]);
}

#[tokio::test]
async fn every_fsync_policy_writes_everything() {
    for policy in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval,
        FsyncPolicy::Never,
    ] {
        let dir = Scratch::new("fsync");
        let path = dir.path("cdr.jsonl");
        let (handle, task) = ChargingWriter::start(&config(&path, |c| {
            c.fsync = policy;
            c.fsync_interval_ms = 5;
        }))
        .unwrap();
        for n in 0..50 {
            handle.record(message(n));
            if n % 10 == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        }
        handle.flush().await.unwrap();
        assert_eq!(entries(&path).len(), 50, "{policy:?}");
        assert_eq!(handle.stats().written, 50, "{policy:?}");
        assert_eq!(handle.stats().errors, 0, "{policy:?}");
        handle.shutdown().await.unwrap();
        task.await.unwrap();
    }
}

#[tokio::test]
async fn shutdown_drains_what_every_thread_sent_just_before() {
    let dir = Scratch::new("drain");
    let path = dir.path("cdr.jsonl");
    let (handle, task) =
        ChargingWriter::start(&config(&path, |c| c.fsync = FsyncPolicy::Always)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let h = handle.clone();
            std::thread::spawn(move || {
                for n in 0..250 {
                    h.record(message(t * 1000 + n));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    handle.shutdown().await.unwrap();
    task.await.unwrap();

    let got = entries(&path);
    assert_eq!(seqs(&got), (1..=1000).collect::<Vec<_>>());
    // Each thread's records stay in its own order.
    for t in 0..4 {
        let mine: Vec<_> = got.iter().map(size_of).filter(|s| s / 1000 == t).collect();
        assert_eq!(mine, (t * 1000..t * 1000 + 250).collect::<Vec<_>>());
    }

    // After shutdown nothing is written, and that is counted and said.
    handle.record(message(0));
    assert_eq!(handle.stats().dropped, 1);
    assert_eq!(handle.flush().await, Err(ChargingError::Stopped));
    assert_eq!(entries(&path).len(), 1000);
}

#[tokio::test]
async fn dropping_every_handle_also_drains() {
    let dir = Scratch::new("dropped");
    let path = dir.path("cdr.jsonl");
    let (handle, task) = ChargingWriter::start(&config(&path, |_| {})).unwrap();
    for n in 0..20 {
        handle.record(message(n));
    }
    drop(handle);
    task.await.unwrap();
    assert_eq!(seqs(&entries(&path)), (1..=20).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_unwritable_directory_counts_errors_keeps_records_and_recovers() {
    let dir = Scratch::new("blocked");
    // A file where a directory should be.
    let blocker = dir.path("blocker");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let path = blocker.join("cdr.jsonl");
    let (handle, task) = ChargingWriter::start(&config(&path, |_| {})).unwrap();
    for n in 0..5 {
        handle.record(message(n));
    }
    assert_eq!(
        handle.flush().await,
        Err(ChargingError::Unwritten { records: 5 })
    );
    let stats = handle.stats();
    assert!(stats.errors >= 2, "{stats:?}");
    assert_eq!((stats.written, stats.backlog, stats.dropped), (0, 5, 0));

    // The directory becomes usable: the backlog is written, in order, on the next attempt.
    std::fs::remove_file(&blocker).unwrap();
    handle.record(message(5));
    handle.flush().await.unwrap();
    assert_eq!(seqs(&entries(&path)), (1..=6).collect::<Vec<_>>());
    assert_eq!(handle.stats().backlog, 0);
    handle.shutdown().await.unwrap();
    task.await.unwrap();
}

#[tokio::test]
async fn beyond_max_backlog_records_are_dropped_counted_and_leave_a_gap() {
    let dir = Scratch::new("backlog");
    let blocker = dir.path("blocker");
    std::fs::write(&blocker, b"x").unwrap();
    let path = blocker.join("cdr.jsonl");
    let (handle, task) = ChargingWriter::start(&config(&path, |c| c.max_backlog = 3)).unwrap();
    for n in 0..5 {
        handle.record(message(n));
    }
    assert_eq!(
        handle.flush().await,
        Err(ChargingError::Unwritten { records: 3 })
    );
    assert_eq!(handle.stats().dropped, 2);

    std::fs::remove_file(&blocker).unwrap();
    handle.record(message(5));
    handle.shutdown().await.unwrap();
    task.await.unwrap();
    assert_eq!(handle.stats().dropped, 2);
    // 4 and 5 were dropped: the reader sees the jump from 3 to 6.
    assert_eq!(seqs(&entries(&path)), [1, 2, 3, 6]);
}

#[tokio::test]
async fn a_shutdown_the_file_refuses_reports_and_counts_the_loss() {
    let dir = Scratch::new("lost");
    let blocker = dir.path("blocker");
    std::fs::write(&blocker, b"x").unwrap();
    let (handle, task) =
        ChargingWriter::start(&config(&blocker.join("cdr.jsonl"), |_| {})).unwrap();
    handle.record(message(0));
    handle.record(message(1));
    assert_eq!(
        handle.shutdown().await,
        Err(ChargingError::Unwritten { records: 2 })
    );
    task.await.unwrap();
    let stats = handle.stats();
    assert_eq!((stats.dropped, stats.backlog, stats.written), (2, 0, 0));
}

#[tokio::test]
async fn a_restarted_writer_appends_and_continues_the_sequence() {
    let dir = Scratch::new("restart");
    let path = dir.path("cdr.jsonl");
    let c = config(&path, |_| {});
    for round in 0..2 {
        let (handle, task) = ChargingWriter::start(&c).unwrap();
        for n in 0..3 {
            handle.record(message(round * 10 + n));
        }
        handle.shutdown().await.unwrap();
        task.await.unwrap();
    }
    let got = entries(&path);
    assert_eq!(seqs(&got), [1, 2, 3, 4, 5, 6]);
    assert_eq!(
        got.iter().map(size_of).collect::<Vec<_>>(),
        [0, 1, 2, 10, 11, 12]
    );
}

#[tokio::test]
async fn a_line_torn_by_a_crash_stays_alone() {
    let dir = Scratch::new("torn");
    let path = dir.path("cdr.jsonl");
    let c = config(&path, |_| {});
    let (handle, task) = ChargingWriter::start(&c).unwrap();
    handle.record(message(0));
    handle.shutdown().await.unwrap();
    task.await.unwrap();
    // A crash in the middle of the next line.
    let mut text = std::fs::read(&path).unwrap();
    text.extend_from_slice(br#"{"seq":2,"ts":"2025-"#);
    std::fs::write(&path, &text).unwrap();

    let (handle, task) = ChargingWriter::start(&c).unwrap();
    handle.record(message(1));
    handle.shutdown().await.unwrap();
    task.await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[1], r#"{"seq":2,"ts":"2025-"#);
    let last: Entry = serde_json::from_str(lines[2]).unwrap();
    // Numbering continues from the last complete record; the torn one is unreadable.
    assert_eq!((last.seq, size_of(&last)), (2, 1));
}

#[tokio::test]
async fn the_sequence_continues_from_the_newest_rotated_file() {
    let dir = Scratch::new("resume");
    let path = dir.path("cdr.jsonl");
    let old = r#"{"seq":41,"ts":"2025-11-26T01:02:03.045Z","instance":"focus-1","type":"session_stop","conference":"sip:c@f","duration_s":1,"participants_total":1}"#;
    std::fs::write(files::numbered(&path, 1), format!("{old}\n")).unwrap();
    let (handle, task) = ChargingWriter::start(&config(&path, |_| {})).unwrap();
    handle.record(message(0));
    handle.shutdown().await.unwrap();
    task.await.unwrap();
    assert_eq!(seqs(&entries(&path)), [42]);
}

#[tokio::test]
async fn an_empty_path_disables_and_counts() {
    let c = Config::default();
    let (handle, task) = ChargingWriter::start(&c).unwrap();
    assert!(!handle.is_enabled());
    handle.record(message(0));
    handle.record(message(1));
    assert_eq!(handle.stats().dropped, 2);
    assert_eq!(handle.flush().await, Ok(()));
    assert_eq!(handle.shutdown().await, Ok(()));
    task.await.unwrap();
    ChargingHandle::disabled().record(message(2));
}

#[tokio::test]
async fn an_invalid_section_is_refused_with_its_key() {
    let dir = Scratch::new("invalid");
    let c = config(&dir.path("cdr.jsonl"), |c| c.keep_files = 0);
    let err = ChargingWriter::start(&c).unwrap_err();
    assert!(
        matches!(&err, ChargingError::Config(text) if text.contains("charging.keep_files")),
        "{err}"
    );
}

#[test]
fn starting_outside_a_runtime_is_an_error_not_a_panic() {
    let c = Config::default();
    assert_eq!(
        ChargingWriter::start(&c).map(|_| ()),
        Err(ChargingError::NoRuntime)
    );
}
