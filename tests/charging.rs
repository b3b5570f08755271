//! Charging end to end: the offline records a scripted session leaves in the charging file
//! (checked line by line after a graceful stop), rotation by size, a file that cannot be
//! written at first, and the online credit check against a small HTTP server the test runs
//! (denied: 402 and nothing happens; granted: the request proceeds; server down: the
//! configured policy).

mod support;

use cpm_focus::body::multipart::{Multipart, Part};
use cpm_focus::body::resource_lists::{self, Entry as ListEntry};
use cpm_focus::charging::{
    DisconnectionMethod, Entry, JoiningMethod, MessageMode, Record, SessionKind,
};
use cpm_focus::sip::{HeaderName, Response};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Call, Credit, CreditServer, Focus, Setup, Sink, Ua, AUDIO_OFFER, TEAM, WAIT};

const CLUB: &str = "sip:club@focus.example.com";
const LIST_SERVICE: &str = "sip:list-service@focus.example.com";

/// A scratch directory, removed when the test passes.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let p =
            std::env::temp_dir().join(format!("cpm-focus-charging-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("charging test files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Every record of one charging file, in order; every line must be complete JSON.
fn records(path: &Path) -> Vec<Entry> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "a cut line in {}",
        path.display()
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The `[charging]` section writing to `path`, and more.
fn charging_config(path: &Path, extra: &str) -> String {
    format!(
        "[charging]\npath = \"{}\"\nfsync = \"always\"\n{extra}\n",
        path.display()
    )
}

/// Stops the focus with SIGTERM and waits for a clean exit (records flushed).
fn stop(mut focus: Focus) {
    focus.terminate();
    let status = focus.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "focus exit");
}

fn message(ua: &mut Ua, uri: &str, extra: &str, ct: &str, body: &str) -> Response {
    let mut call = Call::new(uri);
    let b = ua.send_request(&mut call, "MESSAGE", extra, Some((ct, body)));
    ua.expect_final(&b)
}

fn seconds(d: Duration) -> u64 {
    d.as_secs()
}

#[test]
fn a_scripted_session_leaves_one_record_per_event() {
    let scratch = Scratch::new("scripted");
    let file = scratch.path("cdr/charging.jsonl");
    let sinks: Vec<Sink> = (1..=3).map(|i| Sink::start(&format!("c{i}"))).collect();
    let mut groups = String::from(
        "[[groups]]\nuri = \"sip:club@focus.example.com\"\n[[groups.members]]\nuri = \"sip:alice@example.com\"\n",
    );
    for s in &sinks {
        groups.push_str(&format!("[[groups.members]]\nuri = \"{}\"\n", s.uri()));
    }
    let focus = Focus::start(&format!("{}\n{groups}", charging_config(&file, "")));

    // Two participants chat; bob leaves first, then alice.
    let mut alice = Ua::udp(&focus, "alice");
    let mut bob = Ua::udp(&focus, "bob");
    let alice_invited = Instant::now();
    let mut a = alice.join_chat(TEAM, Setup::Active);
    let alice_joined = Instant::now();
    let mut am = a.connect();
    am.bind();
    let bob_invited = Instant::now();
    let mut b = bob.join_chat(TEAM, Setup::Active);
    let bob_joined = Instant::now();
    let mut bm = b.connect();
    bm.bind();
    assert_eq!(am.say("hello bob").code, 200);
    assert_eq!(bm.expect_message().text(), "hello bob");
    assert_eq!(bm.say("hi").code, 200);
    assert_eq!(am.expect_message().text(), "hi");
    assert_eq!(am.say("bye now").code, 200);
    assert_eq!(bm.expect_message().text(), "bye now");
    // A participant's time in the session is the time between its join and its leave.
    std::thread::sleep(Duration::from_millis(1200));
    let bob_leaving = Instant::now();
    assert_eq!(bob.bye(&mut b.call).status, 200);
    let bob_left = Instant::now();
    let alice_leaving = Instant::now();
    assert_eq!(alice.bye(&mut a.call).status, 200);
    let alice_left = Instant::now();

    // A group message to the club (three other members), and one to an ad-hoc list of two.
    let r = message(&mut alice, CLUB, "", "text/plain", "ping");
    assert_eq!(r.status, 202);
    for s in &sinks {
        s.expect_one(WAIT);
    }
    let list = resource_lists::render(&[
        ListEntry::new(sinks[0].uri()),
        ListEntry::new(sinks[1].uri()),
    ]);
    let (ct, body) = Multipart::mixed(vec![
        Part::new("text/plain", "to two"),
        Part::new(resource_lists::MIME_TYPE, list).with_disposition("recipient-list"),
    ])
    .encode_with_new_boundary()
    .unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    let r = message(
        &mut alice,
        LIST_SERVICE,
        "Require: recipient-list-message\r\n",
        &ct,
        &body,
    );
    assert_eq!(r.status, 202);
    sinks[0].wait_deliveries(2, WAIT);
    sinks[1].wait_deliveries(2, WAIT);
    focus.wait_metric(
        "focus_charging_records_written_total{type=\"group_message\"}",
        WAIT,
        |v| v == 2.0,
    );
    let text = focus.metrics();
    for (kind, n) in [
        ("session_start", 1.0),
        ("session_stop", 1.0),
        ("participant_join", 2.0),
        ("participant_leave", 2.0),
        ("msrp_volume", 2.0),
    ] {
        assert_eq!(
            support::metric_in(
                &text,
                &format!("focus_charging_records_written_total{{type=\"{kind}\"}}")
            ),
            Some(n),
            "{kind}"
        );
    }
    assert_eq!(
        support::metric_in(&text, "focus_charging_backlog"),
        Some(0.0)
    );
    stop(focus);

    // Line by line.
    let got = records(&file);
    let kinds: Vec<&str> = got.iter().map(|e| e.record.type_name()).collect();
    assert_eq!(
        kinds,
        [
            "session_start",
            "participant_join",
            "participant_join",
            "msrp_volume",
            "participant_leave",
            "msrp_volume",
            "participant_leave",
            "session_stop",
            "group_message",
            "group_message",
        ],
        "{got:#?}"
    );
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "seq of {e:?}");
        assert_eq!(e.instance, "focus-1");
        if i > 0 {
            assert!(e.ts >= got[i - 1].ts, "time goes back at {e:?}");
        }
    }
    match &got[0].record {
        Record::SessionStart {
            conference,
            kind,
            subject,
            recovered,
        } => {
            assert_eq!(conference, TEAM);
            assert!(!recovered, "a fresh session is no recovered one");
            assert_eq!(*kind, SessionKind::Predefined);
            assert_eq!(subject.as_deref(), Some("Team chat"));
        }
        r => panic!("{r:?}"),
    }
    for (rec, who) in [(&got[1], "alice"), (&got[2], "bob")] {
        match &rec.record {
            Record::ParticipantJoin {
                conference,
                participant,
                identity,
                joining_method,
                anonymous,
                verified,
            } => {
                assert!(*verified, "{who} joined from the trusted host");
                assert_eq!(conference, TEAM);
                assert_eq!(participant, &format!("sip:{who}@example.com"));
                assert_eq!(identity, participant);
                assert_eq!(*joining_method, JoiningMethod::DialedIn);
                assert!(!anonymous);
            }
            r => panic!("{r:?}"),
        }
    }
    // bob: sent "hi", got "hello bob" and "bye now"; alice the other way round.
    for (rec, who, sent, bytes_sent, received, min_received) in [
        (&got[3], "bob", 1, 2, 2, 9 + 7),
        (&got[5], "alice", 2, 9 + 7, 1, 2),
    ] {
        match &rec.record {
            Record::MsrpVolume {
                conference,
                participant,
                identity,
                messages_sent,
                bytes_sent: bs,
                messages_received,
                bytes_received,
                verified,
            } => {
                assert!(*verified, "{who}");
                assert_eq!(conference, TEAM);
                assert_eq!(participant, &format!("sip:{who}@example.com"));
                assert_eq!(identity, participant);
                assert_eq!(*messages_sent, sent, "{who}");
                assert_eq!(*bs, bytes_sent, "{who}");
                assert_eq!(*messages_received, received, "{who}");
                // Delivered as message/cpim: the text and the CPIM headers around it.
                assert!(*bytes_received > min_received, "{who}: {bytes_received}");
            }
            r => panic!("{r:?}"),
        }
    }
    // Durations in whole seconds, rounded down: within what the test itself saw.
    for (rec, who, lower, upper) in [
        (
            &got[4],
            "bob",
            bob_leaving - bob_joined,
            bob_left - bob_invited,
        ),
        (
            &got[6],
            "alice",
            alice_leaving - alice_joined,
            alice_left - alice_invited,
        ),
    ] {
        match &rec.record {
            Record::ParticipantLeave {
                participant,
                disconnection_method,
                duration_s,
                reason,
                ..
            } => {
                assert_eq!(participant, &format!("sip:{who}@example.com"));
                assert_eq!(*reason, None, "{who} left by BYE");
                assert_eq!(*disconnection_method, DisconnectionMethod::Departed);
                assert!(
                    (seconds(lower)..=seconds(upper)).contains(duration_s),
                    "{who}: {duration_s} s, saw {lower:?}..{upper:?}"
                );
                assert!(*duration_s >= 1);
            }
            r => panic!("{r:?}"),
        }
    }
    match &got[7].record {
        Record::SessionStop {
            conference,
            duration_s,
            participants_total,
            reason,
        } => {
            assert_eq!(conference, TEAM);
            assert_eq!(*reason, None, "ended by its participants");
            assert_eq!(*participants_total, 2);
            let (lower, upper) = (alice_leaving - alice_joined, alice_left - alice_invited);
            assert!(
                (seconds(lower)..=seconds(upper)).contains(duration_s),
                "{duration_s} s, saw {lower:?}..{upper:?}"
            );
        }
        r => panic!("{r:?}"),
    }
    match &got[8].record {
        Record::GroupMessage {
            conference,
            sender,
            recipients,
            size,
            mode,
            verified,
        } => {
            assert!(*verified);
            assert_eq!(conference.as_deref(), Some(CLUB));
            assert_eq!(sender, "sip:alice@example.com");
            assert_eq!((*recipients, *size, *mode), (3, 4, MessageMode::Pager));
        }
        r => panic!("{r:?}"),
    }
    match &got[9].record {
        Record::GroupMessage {
            conference,
            sender,
            recipients,
            size,
            mode,
            verified,
        } => {
            assert!(*verified);
            assert_eq!(*conference, None);
            assert_eq!(sender, "sip:alice@example.com");
            assert_eq!((*recipients, *size, *mode), (2, 6, MessageMode::Exploder));
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn the_charging_file_rotates_by_size_without_splitting_or_losing_records() {
    let scratch = Scratch::new("rotation");
    let file = scratch.path("charging.jsonl");
    let focus = Focus::start(&charging_config(
        &file,
        "max_file_bytes = 1024\nkeep_files = 2\n",
    ));
    let mut ua = Ua::udp(&focus, "rotor");
    // Each join and leave writes four records of about 200 bytes: well over 3 KiB in all.
    for _ in 0..6 {
        let (mut call, _) = ua.join(TEAM);
        assert_eq!(ua.bye(&mut call).status, 200);
    }
    focus.wait_metric(
        "focus_charging_records_written_total{type=\"session_stop\"}",
        WAIT,
        |v| v == 6.0,
    );
    stop(focus);
    let mut all = Vec::new();
    for name in ["charging.jsonl.2", "charging.jsonl.1", "charging.jsonl"] {
        let p = scratch.path(name);
        let len = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .len();
        assert!(len <= 1024, "{name} has {len} bytes");
        all.extend(records(&p));
    }
    assert!(
        !scratch.path("charging.jsonl.3").exists(),
        "more files kept than keep_files"
    );
    // The kept files hold the newest records, in order, without a gap; older ones were
    // deleted with the oldest file.
    assert!(all.len() >= 6, "{} records kept", all.len());
    let first = all[0].seq;
    assert!(first > 1, "nothing was rotated away");
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.seq, first + i as u64);
    }
    assert_eq!(
        all.last().unwrap().seq,
        24,
        "6 × (start, join, leave, stop)"
    );
}

#[test]
fn records_wait_for_a_file_that_cannot_be_written_yet() {
    let scratch = Scratch::new("unwritable");
    // The charging directory's place is taken by a plain file: nothing can be opened.
    let blocker = scratch.path("cdr");
    std::fs::write(&blocker, "not a directory").unwrap();
    let file = blocker.join("charging.jsonl");
    let focus = Focus::start(&charging_config(&file, ""));
    let mut ua = Ua::udp(&focus, "patient");
    let (mut call, _) = ua.join(TEAM);
    assert_eq!(ua.bye(&mut call).status, 200);
    focus.wait_metric("focus_charging_backlog", WAIT, |v| v == 4.0);
    assert!(focus.metric("focus_charging_errors_total{op=\"open\"}") >= Some(1.0));
    // The disk comes back: the backlog is written (retried every second), nothing lost.
    std::fs::remove_file(&blocker).unwrap();
    focus.wait_metric("focus_charging_backlog", Duration::from_secs(10), |v| {
        v == 0.0
    });
    focus.wait_metric(
        "focus_charging_records_written_total{type=\"participant_leave\"}",
        WAIT,
        |v| v == 1.0,
    );
    stop(focus);
    let got = records(&file);
    let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
}

// ----- online charging -----

/// Tries to join `uri` and, when admitted, leaves at once; the join's final response.
fn try_join(ua: &mut Ua, uri: &str) -> Response {
    let (mut call, r) = ua.try_join(uri);
    if r.status == 200 {
        assert_eq!(ua.bye(&mut call).status, 200);
    }
    r
}

#[test]
fn a_denied_credit_check_is_402_and_nothing_happens() {
    let scratch = Scratch::new("denied");
    let file = scratch.path("charging.jsonl");
    let server = CreditServer::start(Credit::Deny);
    let sink = Sink::start("member");
    let focus = Focus::start(&format!(
        "{}\n[[groups]]\nuri = \"sip:club@focus.example.com\"\n[[groups.members]]\nuri = \"sip:alice@example.com\"\n[[groups.members]]\nuri = \"{}\"\n",
        charging_config(&file, &format!("online_url = \"{}\"\n", server.url())),
        sink.uri()
    ));
    let mut alice = Ua::udp(&focus, "alice");
    let r = try_join(&mut alice, TEAM);
    assert_eq!((r.status, &*r.reason), (402, "Payment Required"));
    assert_eq!(
        r.headers.get(HeaderName::Warning),
        Some("399 focus.example.com \"Out of credit\"")
    );
    let r = message(&mut alice, CLUB, "", "text/plain", "hello");
    assert_eq!(r.status, 402);
    // The server was asked about the right things.
    let asked = server.requests();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(asked[0]["subject"], "sip:alice@example.com");
    assert_eq!(asked[0]["kind"], "session");
    assert_eq!(asked[0]["conference"], TEAM);
    assert_eq!(asked[1]["kind"], "message");
    assert_eq!(asked[1]["conference"], CLUB);
    assert_eq!(asked[1]["size"], 5);
    // Nothing happened: no session, no delivery, no record.
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.deliveries().is_empty());
    let text = focus.metrics();
    assert_eq!(
        support::metric_in(&text, "focus_credit_checks_total{outcome=\"denied\"}"),
        Some(2.0)
    );
    assert_eq!(
        support::metric_in(&text, "focus_sessions_started_total{kind=\"predefined\"}"),
        Some(0.0)
    );
    assert_eq!(
        support::metric_in(
            &text,
            "focus_policy_rejections_total{reason=\"credit_denied\"}"
        ),
        Some(2.0)
    );
    stop(focus);
    assert!(records(&file).is_empty());

    // Granted: the same requests proceed.
    let focus = Focus::start(&format!(
        "{}\n[[groups]]\nuri = \"sip:club@focus.example.com\"\n[[groups.members]]\nuri = \"sip:alice@example.com\"\n[[groups.members]]\nuri = \"{}\"\n",
        charging_config(&file, &format!("online_url = \"{}\"\n", server.url())),
        sink.uri()
    ));
    server.set(Credit::Grant);
    let mut alice = Ua::udp(&focus, "alice");
    assert_eq!(try_join(&mut alice, TEAM).status, 200);
    assert_eq!(
        message(&mut alice, CLUB, "", "text/plain", "hello").status,
        202
    );
    assert_eq!(sink.expect_one(WAIT).body(), "hello");
    assert_eq!(
        focus.metric("focus_credit_checks_total{outcome=\"granted\"}"),
        Some(2.0)
    );
    // Each check's latency, for the credit server's dashboard.
    assert_eq!(
        focus.metric("focus_credit_check_duration_seconds_count{outcome=\"granted\"}"),
        Some(2.0)
    );
    stop(focus);
    let kinds: Vec<&'static str> = records(&file)
        .iter()
        .map(|e| e.record.type_name())
        .collect();
    assert_eq!(
        kinds,
        [
            "session_start",
            "participant_join",
            "participant_leave",
            "session_stop",
            "group_message"
        ]
    );
}

#[test]
fn checks_past_online_max_pending_are_refused_503_at_once_and_counted() {
    let server = CreditServer::start(Credit::Stall);
    let focus = Focus::start(&format!(
        "[charging]\nonline_url = \"{}\"\nonline_timeout_ms = 20000\nonline_max_pending = 1\n",
        server.url()
    ));
    // Alice's check is held by the server: the one permit is taken.
    let mut alice = Ua::udp(&focus, "alice");
    let mut alice_call = Call::new(TEAM);
    let alice_invite = alice.invite(&mut alice_call, Some(AUDIO_OFFER));
    let deadline = Instant::now() + WAIT;
    while server.requests().is_empty() {
        assert!(
            Instant::now() < deadline,
            "alice's credit check never arrived"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Bob is refused at once, with Retry-After, and the server never hears of him.
    let mut bob = Ua::udp(&focus, "bob");
    let r = try_join(&mut bob, TEAM);
    assert_eq!(r.status, 503, "{}", r.reason);
    assert_eq!(
        r.headers.get(HeaderName::Warning),
        Some("399 focus.example.com \"Credit control busy\"")
    );
    assert!(r.headers.get(HeaderName::RetryAfter).is_some());
    assert_eq!(
        focus.metric("focus_credit_checks_total{outcome=\"busy\"}"),
        Some(1.0)
    );
    assert_eq!(
        focus.metric("focus_policy_rejections_total{reason=\"credit_busy\"}"),
        Some(1.0)
    );
    assert_eq!(server.requests().len(), 1);
    // The server answers: alice joins, and the permit is back for bob.
    server.set(Credit::Grant);
    let r = alice.expect_final(&alice_invite);
    assert_eq!(r.status, 200, "{}", r.reason);
    alice_call.learn(&r);
    alice.ack(&alice_call);
    assert_eq!(try_join(&mut bob, TEAM).status, 200);
    assert_eq!(alice.bye(&mut alice_call).status, 200);
}

#[test]
fn an_unreachable_credit_server_follows_the_configured_policy() {
    const TIMEOUT: Duration = Duration::from_millis(300);
    let server = CreditServer::start(Credit::Hang);
    // "deny": 503 with Retry-After, nothing happens. The server holds the request open, so
    // only `online_timeout_ms` ends the check: not before it, and the focus hangs up.
    let focus = Focus::start(&format!(
        "[charging]\nonline_url = \"{}\"\nonline_timeout_ms = {}\non_unavailable = \"deny\"\n",
        server.url(),
        TIMEOUT.as_millis()
    ));
    let mut alice = Ua::udp(&focus, "alice");
    let sent = Instant::now();
    let r = try_join(&mut alice, TEAM);
    let waited = sent.elapsed();
    assert_eq!(r.status, 503, "{}", r.reason);
    assert!(
        waited >= TIMEOUT,
        "refused after {waited:?}, before the credit check could time out"
    );
    server.expect_abandoned(1);
    assert_eq!(server.requests().len(), 1);
    assert_eq!(
        r.headers.get(HeaderName::Warning),
        Some("399 focus.example.com \"Credit control unavailable\"")
    );
    assert_eq!(r.headers.get(HeaderName::RetryAfter), Some("5"));
    assert_eq!(
        focus.metric("focus_credit_checks_total{outcome=\"unavailable\"}"),
        Some(1.0)
    );
    assert_eq!(
        focus.metric("focus_sessions_started_total{kind=\"predefined\"}"),
        Some(0.0)
    );
    drop(focus);

    // "allow": the session proceeds (offline records still allow charging later): when the
    // server hangs, when it closes without answering, and when nothing listens at all (a
    // socket bound but not listening: connections are refused, and the port stays ours).
    let closing = CreditServer::start(Credit::Close);
    let unlistened =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    unlistened
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    let nowhere = format!(
        "http://127.0.0.1:{}/credit",
        unlistened.local_addr().unwrap().as_socket().unwrap().port()
    );
    for url in [server.url(), closing.url(), nowhere] {
        let focus = Focus::start(&format!(
            "[charging]\nonline_url = \"{url}\"\nonline_timeout_ms = {}\non_unavailable = \"allow\"\n",
            TIMEOUT.as_millis()
        ));
        let mut bob = Ua::udp(&focus, "bob");
        assert_eq!(try_join(&mut bob, TEAM).status, 200, "{url}");
        assert_eq!(
            focus.metric("focus_credit_checks_total{outcome=\"unavailable\"}"),
            Some(1.0),
            "{url}"
        );
    }
    server.expect_abandoned(2);
    assert_eq!(closing.requests().len(), 1);
}

#[test]
fn docs_charging_shows_the_record_schema_the_code_documents() {
    let readme = include_str!("../docs/charging.md");
    assert!(
        readme.contains(cpm_focus::charging::SCHEMA_DOC),
        "docs/charging.md differs from charging::SCHEMA_DOC: paste it again"
    );
}

/// A credit server over TLS with a certificate from the test CA for `names`: it serves
/// keep-alive HTTP/1.1 (many checks per connection, answered `{"granted":true}`), counts the
/// TCP connections it accepts and keeps every request head. Its asserts run in tasks that
/// [`TlsCreditServer::stop`] joins, so a failed assert fails the test.
struct TlsCreditServer {
    port: u16,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsCreditServer {
    fn start(pki: &support::Pki, names: &[&str]) -> TlsCreditServer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let (cert, key) = pki.issue(names);
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (count, log) = (accepted.clone(), heads.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let mut tasks = Vec::new();
                loop {
                    let tcp = tokio::select! {
                        _ = &mut stopped => break,
                        a = listener.accept() => a.unwrap().0,
                    };
                    count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let (acceptor, log) = (acceptor.clone(), log.clone());
                    tasks.push(tokio::spawn(async move {
                        // A client that refuses our certificate ends the handshake: no request.
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        serve_tls_credit(tls, &log).await;
                    }));
                }
                for task in tasks {
                    task.abort();
                    if let Err(e) = task.await {
                        if e.is_panic() {
                            std::panic::resume_unwind(e.into_panic());
                        }
                    }
                }
            });
        });
        TlsCreditServer {
            port,
            accepted,
            heads,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The URL naming the server as `host`.
    fn url(&self, host: &str) -> String {
        format!("https://{host}:{}/credit", self.port)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Stops the server and fails the test with any assert that failed in it.
    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

/// Serves requests on one connection until the client closes it.
async fn serve_tls_credit(
    mut tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    heads: &Mutex<Vec<String>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // One request: its head, then Content-Length bytes of body.
        let (head, length) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(buf[..end].to_vec()).expect("a UTF-8 head");
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().expect("a Content-Length"))
                    })
                    .expect("the credit request has a Content-Length");
                buf.drain(..end + 4);
                break (head, length);
            }
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        while buf.len() < length {
            match tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..length).collect();
        assert!(head.starts_with("POST /credit HTTP/1.1\r\n"), "{head}");
        let request: serde_json::Value =
            serde_json::from_slice(&body).expect("the credit request is JSON");
        assert_eq!(request["kind"], "session", "{request}");
        heads.lock().unwrap().push(head);
        let answer = r#"{"granted":true}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if tls.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The value of header `name` (any case) in a request head.
fn head_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The online credit check over https, as an attacker in the path would meet it: a server
/// with a certificate for the right name from a trusted CA is used (both checks over one
/// kept-alive connection, the bearer token in each); a server whose certificate names another
/// host gets no request at all, the check fails closed (`on_unavailable = "deny"`: 503) and
/// the failed verification is counted; basic credentials arrive as RFC 7617 says.
#[test]
fn the_credit_check_over_https_verifies_the_server_and_keeps_its_connection() {
    let pki = support::Pki::new();
    let scratch = Scratch::new("https");
    let token_file = scratch.path("credit.token");
    std::fs::write(&token_file, "credit-token-0123456789\n").unwrap();
    let ca = pki.dir.join("ca.pem");
    let charging = |url: &str, auth: &str| {
        format!(
            "[charging]\nonline_url = \"{url}\"\nonline_timeout_ms = 3000\non_unavailable = \"deny\"\nonline_ca_file = \"{}\"\n{auth}",
            ca.display()
        )
    };

    // The right name, a trusted CA: two checks, one TCP connection, the token in each.
    let good = TlsCreditServer::start(&pki, &["localhost"]);
    let focus = Focus::start(&charging(
        &good.url("localhost"),
        &format!("online_token_file = \"{}\"\n", token_file.display()),
    ));
    let mut alice = Ua::udp(&focus, "alice");
    assert_eq!(try_join(&mut alice, TEAM).status, 200);
    let mut bob = Ua::udp(&focus, "bob");
    assert_eq!(try_join(&mut bob, TEAM).status, 200);
    let heads = good.heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    for head in &heads {
        assert_eq!(
            head_value(head, "authorization"),
            Some("Bearer credit-token-0123456789"),
            "{head}"
        );
    }
    assert_eq!(good.accepted(), 1, "the second check reused the connection");
    assert_eq!(
        focus.metric("focus_credit_check_duration_seconds_count{outcome=\"granted\"}"),
        Some(2.0)
    );
    assert_eq!(
        focus.metric("focus_tls_handshakes_total{service=\"credit\",outcome=\"ok\"}"),
        Some(1.0)
    );
    drop(focus);
    good.stop();

    // A certificate for another host: no request is sent, the check fails closed, counted.
    let other = TlsCreditServer::start(&pki, &["elsewhere.example.com"]);
    let focus = Focus::start(&charging(
        &other.url("localhost"),
        "online_token = \"credit-token-0123456789\"\n",
    ));
    let mut carol = Ua::udp(&focus, "carol");
    let r = try_join(&mut carol, TEAM);
    assert_eq!(r.status, 503, "{}", r.reason);
    assert_eq!(
        r.headers.get(HeaderName::Warning),
        Some("399 focus.example.com \"Credit control unavailable\"")
    );
    assert!(other.accepted() >= 1, "the focus did connect");
    assert!(
        other.heads().is_empty(),
        "a request reached an unverified server"
    );
    assert_eq!(
        focus.metric(
            "focus_tls_handshake_failures_total{role=\"client\",service=\"credit\",reason=\"name_mismatch\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        focus.metric("focus_credit_checks_total{outcome=\"unavailable\"}"),
        Some(1.0)
    );
    assert_eq!(
        focus.metric("focus_credit_check_duration_seconds_count{outcome=\"unavailable\"}"),
        Some(1.0)
    );
    drop(focus);
    other.stop();

    // Basic credentials, the password from a file.
    let password_file = scratch.path("credit.password");
    std::fs::write(&password_file, "open sesame\n").unwrap();
    let basic = TlsCreditServer::start(&pki, &["localhost"]);
    let focus = Focus::start(&charging(
        &basic.url("localhost"),
        &format!(
            "online_user = \"focus\"\nonline_password_file = \"{}\"\n",
            password_file.display()
        ),
    ));
    let mut dave = Ua::udp(&focus, "dave");
    assert_eq!(try_join(&mut dave, TEAM).status, 200);
    let heads = basic.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    // base64("focus:open sesame")
    assert_eq!(
        head_value(&heads[0], "authorization"),
        Some("Basic Zm9jdXM6b3BlbiBzZXNhbWU=")
    );
    drop(focus);
    basic.stop();
}

// ----- charging the identity that counts -----

/// The untrusted source an attacker sends from (Linux routes 127.0.0.0/8 on the loopback).
const ELSEWHERE: &str = "127.0.0.66";
/// A forged (from ELSEWHERE) or genuine (from the trusted host) assertion of alice.
const PAI_ALICE: &str = "P-Asserted-Identity: <sip:alice@example.com>\r\n";
const OPEN: &str = "sip:open@focus.example.com";

/// Trusts 127.0.0.1 only; online charging against `server`; `open` is an open group whose
/// member is `sink`; `extra` lands in `[charging]`.
fn trust_config(file: &Path, server: &CreditServer, sink: &Sink, extra: &str) -> String {
    format!(
        "[policy]\ntrusted_hosts = [\"127.0.0.1\"]\n{}\n[[groups]]\nuri = \"{OPEN}\"\n[[groups.members]]\nuri = \"{}\"\n",
        charging_config(file, &format!("online_url = \"{}\"\n{extra}", server.url())),
        sink.uri()
    )
}

/// mallory: on 127.0.0.66, From alice, with a forged P-Asserted-Identity of alice.
fn mallory(focus: &Focus) -> Ua {
    let mut ua = Ua::udp_from(focus, "alice", ELSEWHERE);
    ua.invite_headers = PAI_ALICE.into();
    ua
}

/// The real alice, asserted by the trusted host (her From names another device).
fn alice_asserted(focus: &Focus) -> Ua {
    let mut ua = Ua::udp(focus, "alice-laptop");
    ua.invite_headers = PAI_ALICE.into();
    ua
}

fn subjects(server: &CreditServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .map(|r| r["subject"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn an_outsider_claiming_alice_never_spends_her_credit_and_is_refused() {
    let scratch = Scratch::new("unverified-refused");
    let file = scratch.path("charging.jsonl");
    let server = CreditServer::start(Credit::Grant);
    let sink = Sink::start("member");
    let focus = Focus::start(&trust_config(&file, &server, &sink, ""));
    let mut m = mallory(&focus);
    let warning = "399 focus.example.com \"Your identity is not verified: only a verified \
                   identity may use a charged service\"";
    let r = try_join(&mut m, TEAM);
    assert_eq!(r.status, 403, "{}", r.reason);
    assert_eq!(r.headers.get(HeaderName::Warning), Some(warning));
    let r = message(&mut m, OPEN, PAI_ALICE, "text/plain", "on alice's bill");
    assert_eq!(r.status, 403, "{}", r.reason);
    assert_eq!(r.headers.get(HeaderName::Warning), Some(warning));
    // The credit server never heard of it, nothing was delivered, and it is counted.
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(sink.deliveries().is_empty());
    assert_eq!(
        focus.metric("focus_policy_rejections_total{reason=\"unverified_charging\"}"),
        Some(2.0)
    );
    // The same requests through the trusted host with P-Asserted-Identity are charged to
    // alice, as before.
    let mut alice = alice_asserted(&focus);
    assert_eq!(try_join(&mut alice, TEAM).status, 200);
    let r = message(&mut alice, OPEN, PAI_ALICE, "text/plain", "mine");
    assert_eq!(r.status, 202);
    assert_eq!(sink.expect_one(WAIT).body(), "mine");
    assert_eq!(
        subjects(&server),
        ["sip:alice@example.com", "sip:alice@example.com"]
    );
    stop(focus);
    let got = records(&file);
    assert!(
        got.iter().all(|e| match &e.record {
            Record::ParticipantJoin {
                identity, verified, ..
            }
            | Record::ParticipantLeave {
                identity, verified, ..
            } => identity == "sip:alice@example.com" && *verified,
            Record::GroupMessage {
                sender, verified, ..
            } => sender == "sip:alice@example.com" && *verified,
            _ => true,
        }),
        "{got:#?}"
    );
}

#[test]
fn with_digest_auth_an_outsider_is_challenged_and_charged_as_proven() {
    let users = support::CredentialsFile::new("focus.example.com", &[("mallory", "evil")]);
    let scratch = Scratch::new("unverified-challenged");
    let file = scratch.path("charging.jsonl");
    let server = CreditServer::start(Credit::Grant);
    let sink = Sink::start("member");
    // members_only challenges nothing in an open group: only charging asks for proof here.
    let focus = Focus::start(&format!(
        "{}\n[auth]\nmode = \"members_only\"\ncredentials = \"{}\"\n",
        trust_config(&file, &server, &sink, ""),
        users.toml_path()
    ));
    // Claiming alice: challenged, and the claim never reaches the credit server.
    let mut m = mallory(&focus);
    let r = try_join(&mut m, TEAM);
    assert_eq!(r.status, 401, "{}", r.reason);
    // Proving itself as mallory: charged as mallory.
    let mut m = Ua::udp_from(&focus, "mallory", ELSEWHERE);
    m.domain = "focus.example.com".into();
    let mut call = Call::new(TEAM);
    let b = m.invite(&mut call, Some(AUDIO_OFFER));
    let r = m.expect_final(&b);
    let challenge = &support::Challenge::all(&r)[0];
    let auth = challenge.answer("mallory", "evil", "INVITE", TEAM, 1);
    m.invite_headers = format!("Authorization: {auth}\r\n");
    let b = m.invite(&mut call, Some(AUDIO_OFFER));
    let r = m.expect_final(&b);
    assert_eq!(r.status, 200, "{}", r.reason);
    call.learn(&r);
    m.ack(&call);
    assert_eq!(subjects(&server), ["sip:mallory@focus.example.com"]);
    assert_eq!(m.bye(&mut call).status, 200);
    stop(focus);
    let joins: Vec<(String, bool)> = records(&file)
        .into_iter()
        .filter_map(|e| match e.record {
            Record::ParticipantJoin {
                identity, verified, ..
            } => Some((identity, verified)),
            _ => None,
        })
        .collect();
    assert_eq!(joins, [("sip:mallory@focus.example.com".to_string(), true)]);
}

#[test]
fn outsiders_may_be_charged_to_their_source_address_and_are_recorded_unverified() {
    let scratch = Scratch::new("unverified-source");
    let file = scratch.path("charging.jsonl");
    let server = CreditServer::start(Credit::Grant);
    let sink = Sink::start("member");
    let focus = Focus::start(&trust_config(
        &file,
        &server,
        &sink,
        "unverified = \"source\"\n",
    ));
    let mut m = mallory(&focus);
    assert_eq!(try_join(&mut m, TEAM).status, 200);
    let r = message(&mut m, OPEN, PAI_ALICE, "text/plain", "from the outside");
    assert_eq!(r.status, 202, "{}", r.reason);
    assert_eq!(sink.expect_one(WAIT).body(), "from the outside");
    let mut alice = alice_asserted(&focus);
    assert_eq!(try_join(&mut alice, TEAM).status, 200);
    assert_eq!(
        subjects(&server),
        [
            "source:127.0.0.66",
            "source:127.0.0.66",
            "sip:alice@example.com"
        ]
    );
    stop(focus);
    let got = records(&file);
    let mut seen = Vec::new();
    for e in &got {
        match &e.record {
            Record::ParticipantJoin {
                participant,
                identity,
                verified,
                ..
            }
            | Record::ParticipantLeave {
                participant,
                identity,
                verified,
                ..
            } => seen.push((
                e.record.type_name(),
                participant.clone(),
                identity.clone(),
                *verified,
            )),
            Record::GroupMessage {
                sender, verified, ..
            } => seen.push((
                e.record.type_name(),
                String::new(),
                sender.clone(),
                *verified,
            )),
            _ => {}
        }
    }
    let claim = "sip:alice@example.com".to_string();
    let outsider = "source:127.0.0.66".to_string();
    assert_eq!(
        seen,
        [
            ("participant_join", claim.clone(), outsider.clone(), false),
            ("participant_leave", claim.clone(), outsider.clone(), false),
            ("group_message", String::new(), outsider.clone(), false),
            ("participant_join", claim.clone(), claim.clone(), true),
            ("participant_leave", claim.clone(), claim, true),
        ],
        "{got:#?}"
    );
    // The raw line says so too, for readers that do not use this crate.
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(r#""identity":"source:127.0.0.66","verified":false"#),
        "{text}"
    );
}
