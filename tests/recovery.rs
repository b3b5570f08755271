//! Crash recovery of live groups end to end: participants chat in a pre-defined and in an
//! ad-hoc group, the focus is killed with SIGKILL and started again on the same SIP port with
//! the same journal; it re-INVITEs every participant in its dialog (same conference URI,
//! Contribution-ID and Subject kept), calls again with a new INVITE the one that lost its
//! dialog (481), the rosters are whole again and the groups chat on. The charging records
//! close the interrupted sessions (`reason: crash`) and open the resumed ones.

mod support;

use cpm_focus::conference_info::EndpointStatus;
use cpm_focus::media::msrp::MsrpUri;
use cpm_focus::sip::{HeaderName, Method, NameAddr, Request};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{
    contact_of, endpoint_state, follow, Chat, Endpoint, Focus, Invited, MsrpClient, MsrpMedia,
    Setup, Ua, TEAM, WAIT,
};

const FACTORY: &str = "sip:conf-factory@focus.example.com";

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cpm-focus-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(journal: &Path, cdr: &Path, window_s: u64) -> String {
    config_with(journal, cdr, window_s, "")
}

/// `extra` lines go into the `[journal]` section.
fn config_with(journal: &Path, cdr: &Path, window_s: u64, extra: &str) -> String {
    format!(
        "[journal]\npath = \"{}\"\nfsync = \"always\"\nrecovery_window_s = {window_s}\n{extra}[charging]\npath = \"{}\"\n",
        journal.display(),
        cdr.display()
    )
}

/// The charging records in `path` once `done` accepts them (within 10 s).
fn records_until(path: &Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let records: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        if done(&records) {
            return records;
        }
        assert!(
            Instant::now() < deadline,
            "charging records never complete:\n{text}"
        );
        // The charging file has no change notification: poll it.
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count(records: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    records.iter().filter(|r| pred(r)).count()
}

/// A chat member: its SIP agent, dialog and MSRP connection.
struct Member {
    ua: Ua,
    chat: Chat,
    msrp: MsrpClient,
}

fn join(focus: &Focus, name: &str, uri: &str, headers: &str) -> Member {
    let mut ua = Ua::udp(focus, name);
    ua.invite_headers = headers.to_string();
    let mut chat = ua.join_chat(uri, Setup::Active);
    let mut msrp = chat.connect();
    msrp.bind();
    Member { ua, chat, msrp }
}

/// The next INVITE the focus sends `ua` that `pred` accepts, with its MSRP offer.
fn invite_where(ua: &mut Ua, pred: impl Fn(&Request) -> bool) -> Invited {
    let rx = ua
        .wait_for(Duration::from_secs(10), |m| {
            m.request()
                .is_some_and(|r| r.method == Method::Invite && pred(r))
        })
        .unwrap_or_else(|| panic!("{}: no INVITE from the restarted focus", ua.name));
    let req = rx.request().unwrap();
    let offer = String::from_utf8(req.body.to_vec()).expect("SDP offer is text");
    let media = MsrpMedia::find(&offer)
        .unwrap_or_else(|| panic!("{}: no m=message in the offer:\n{offer}", ua.name));
    let focus_path = MsrpUri::parse(media.attr("path").expect("a=path")).expect("focus path");
    Invited {
        rx,
        tag: String::new(),
        offer,
        focus_path,
    }
}

/// The URI of the Contact of a request, and whether it carries `;isfocus`.
fn contact(req: &Request) -> (String, bool) {
    let c = NameAddr::parse(req.headers.get(HeaderName::Contact).expect("Contact")).unwrap();
    (c.uri.to_string(), c.param("isfocus").is_some())
}

/// Checks the focus's re-INVITE in `m`'s dialog and accepts it with a new MSRP end; the
/// member chats on over the new connection.
fn accept_resume(m: &mut Member, inv: &Invited) {
    let req = inv.request().clone();
    let call = &m.chat.call;
    assert_eq!(req.to.tag(), Some(call.from_tag.as_str()), "our dialog");
    assert_eq!(req.from.tag(), call.to_tag.as_deref(), "the focus's tag");
    assert!(
        req.cseq.seq > 1000,
        "CSeq {} above the old ones",
        req.cseq.seq
    );
    assert_eq!(
        contact(&req),
        (call.target.clone().unwrap(), true),
        "the same conference URI, still a focus"
    );
    let mut end = Endpoint::new(&m.ua.name.clone(), Setup::Active);
    let head = m.ua.contact_header();
    m.ua.answer(
        &inv.rx,
        200,
        None,
        &head,
        Some(("application/sdp", &end.offer())),
    );
    let ack =
        m.ua.wait_for(WAIT, |x| {
            x.request()
                .is_some_and(|r| r.method == Method::Ack && r.call_id() == call.call_id)
        })
        .unwrap_or_else(|| panic!("{}: no ACK for the re-INVITE", m.ua.name));
    assert_eq!(ack.request().unwrap().cseq.seq, req.cseq.seq);
    m.msrp = end.connect(&inv.focus_path);
    m.msrp.bind();
}

#[test]
fn killed_focus_resumes_its_groups_after_a_restart() {
    let dir = temp_dir("recovery");
    let (journal, cdr) = (dir.join("journal.jsonl"), dir.join("cdr.jsonl"));
    let mut focus = Focus::start(&config(&journal, &cdr, 60));

    // A pre-defined group: alice and bob. An ad-hoc one: carol creates it, dave joins.
    let mut alice = join(&focus, "alice", TEAM, "");
    let mut bob = join(&focus, "bob", TEAM, "");
    let mut carol = join(
        &focus,
        "carol",
        FACTORY,
        "Contribution-ID: cid-lunch-1\r\nSubject: Lunch plans\r\n",
    );
    let (conf_contact, _) = contact_of(&carol.chat.ok);
    let conf_uri = NameAddr::parse(&format!("<{conf_contact}>"))
        .unwrap()
        .uri
        .aor()
        .replace("@127.0.0.1", "@focus.example.com");
    let mut dave = join(&focus, "dave", &conf_contact, "");
    assert_eq!(alice.msrp.say("before").code, 200);
    assert_eq!(bob.msrp.expect_message().text(), "before");

    // Everything is journaled and charged before the crash.
    focus.wait_metric("focus_journal_lines_total{op=\"join\"}", WAIT, |v| v == 4.0);
    records_until(&cdr, |r| count(r, |x| x["type"] == "participant_join") == 4);
    let sip_port = focus.sip_udp.port();
    focus.kill();
    let focus = focus.restart();
    assert_eq!(focus.sip_udp.port(), sip_port);

    // Every participant gets a re-INVITE in its own dialog.
    for m in [&mut alice, &mut bob, &mut carol] {
        let call_id = m.chat.call.call_id.clone();
        let inv = invite_where(&mut m.ua, |r| r.call_id() == call_id);
        if m.ua.name == "carol" {
            assert_eq!(inv.header(HeaderName::ContributionId), Some("cid-lunch-1"));
            assert_eq!(inv.header(HeaderName::Subject), Some("Lunch plans"));
        }
        accept_resume(m, &inv);
    }
    // Dave's client dropped the dialog meanwhile: 481, and the focus calls him again.
    let old = dave.chat.call.call_id.clone();
    let inv = invite_where(&mut dave.ua, |r| r.call_id() == old);
    dave.ua.respond(&inv.rx, 481);
    dave.ua
        .wait_for(WAIT, |m| {
            m.request()
                .is_some_and(|r| r.method == Method::Ack && r.call_id() == old)
        })
        .expect("the 481 is ACKed");
    let inv = invite_where(&mut dave.ua, |r| r.call_id() != old);
    let from = NameAddr::parse(inv.header(HeaderName::From).unwrap()).unwrap();
    assert_eq!(from.uri.to_string(), conf_uri, "from the same conference");
    assert_eq!(inv.header(HeaderName::ContributionId), Some("cid-lunch-1"));
    assert_eq!(inv.header(HeaderName::Subject), Some("Lunch plans"));
    let inv = Invited {
        tag: "dave-again".into(),
        ..inv
    };
    let (_call, msrp) = dave.ua.accept_chat(&inv);
    dave.msrp = msrp;

    // The rosters are whole again.
    for (uri, members) in [(TEAM, ["alice", "bob"]), (&conf_uri, ["carol", "dave"])] {
        let mut watcher = Ua::udp(&focus, "watcher");
        let (_sub, first) = watcher.subscribe_to(uri);
        let mut view = first.doc;
        follow(&mut watcher, &mut view, |v| {
            members.iter().all(|n| {
                endpoint_state(v, &format!("sip:{n}@example.com"))
                    .is_some_and(|(s, _)| s == EndpointStatus::Connected)
            })
        });
    }
    // And the groups chat on.
    assert_eq!(alice.msrp.say("we are back").code, 200);
    assert_eq!(bob.msrp.expect_message().text(), "we are back");
    assert_eq!(dave.msrp.say("lunch at one?").code, 200);
    assert_eq!(carol.msrp.expect_message().text(), "lunch at one?");

    assert_eq!(focus.metric("focus_recovered_sessions_total"), Some(2.0));
    assert_eq!(
        focus.metric("focus_recovered_participants_total{outcome=\"resumed\"}"),
        Some(3.0)
    );
    assert_eq!(
        focus.metric("focus_recovered_participants_total{outcome=\"redialed\"}"),
        Some(1.0)
    );
    assert_eq!(
        focus.metric("focus_sessions_started_total{kind=\"recovered\"}"),
        Some(2.0)
    );
    assert!(focus.metric("focus_journal_compactions_total") >= Some(1.0));

    // Charging: the interrupted part closed as a crash, the resumed part opened.
    let records = records_until(&cdr, |r| count(r, |x| x["type"] == "participant_join") == 8);
    let crash = |x: &Value| x["reason"] == "crash";
    assert_eq!(
        count(&records, |x| x["type"] == "participant_leave" && crash(x)),
        4
    );
    assert_eq!(
        count(&records, |x| x["type"] == "session_stop" && crash(x)),
        2
    );
    assert_eq!(
        count(&records, |x| x["type"] == "session_start"
            && x["recovered"] == true),
        2
    );
    for x in records
        .iter()
        .filter(|x| x["type"] == "participant_leave" && crash(x))
    {
        assert_eq!(x["disconnection_method"], "failed", "{x}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn outside_the_recovery_window_nothing_is_resumed_but_the_records_are_closed() {
    let dir = temp_dir("recovery-late");
    let (journal, cdr) = (dir.join("journal.jsonl"), dir.join("cdr.jsonl"));
    // A window of 0: never resume.
    let mut focus = Focus::start(&config(&journal, &cdr, 0));
    let mut alice = join(&focus, "alice", TEAM, "");
    focus.wait_metric("focus_journal_lines_total{op=\"join\"}", WAIT, |v| v == 1.0);
    focus.kill();
    let focus = focus.restart();
    alice
        .ua
        .assert_quiet(Duration::from_secs(1), "no re-INVITE outside the window");
    let records = records_until(&cdr, |r| {
        count(r, |x| x["type"] == "session_stop" && x["reason"] == "crash") == 1
    });
    assert_eq!(
        count(&records, |x| x["type"] == "participant_leave"
            && x["reason"] == "crash"),
        1
    );
    // Her old dialog is unknown to the new process; the journal starts empty.
    let b = alice
        .ua
        .send_request(&mut alice.chat.call, "OPTIONS", "", None);
    assert_eq!(alice.ua.expect_final(&b).status, 481);
    assert_eq!(std::fs::read_to_string(&journal).unwrap(), "");
    assert_eq!(focus.metric("focus_recovered_sessions_total"), Some(0.0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_graceful_shutdown_leaves_nothing_to_resume() {
    let dir = temp_dir("recovery-graceful");
    let (journal, cdr) = (dir.join("journal.jsonl"), dir.join("cdr.jsonl"));
    let mut focus = Focus::start(&config(&journal, &cdr, 60));
    let mut alice = join(&focus, "alice", TEAM, "");
    focus.wait_metric("focus_journal_lines_total{op=\"join\"}", WAIT, |v| v == 1.0);
    focus.terminate();
    alice.ua.expect_bye(&alice.chat.call);
    assert_eq!(focus.wait_exit(WAIT).code(), Some(0));
    let journaled = cpm_focus::recovery::journal::read(&journal).unwrap();
    assert!(journaled.live.is_empty(), "{:?}", journaled.live);
    let focus = focus.restart();
    alice
        .ua
        .assert_quiet(Duration::from_secs(1), "nothing to resume");
    assert_eq!(focus.metric("focus_recovered_sessions_total"), Some(0.0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_journal_that_cannot_be_written_is_counted_and_rebuilt_from_memory() {
    let dir = temp_dir("recovery-damaged");
    let jdir = dir.join("j");
    let (journal, cdr) = (jdir.join("journal.jsonl"), dir.join("cdr.jsonl"));
    let mut focus = Focus::start(&config_with(&journal, &cdr, 60, "max_bytes = 4096\n"));
    let mut alice = Ua::udp(&focus, "alice");
    let (a_call, _) = alice.join(TEAM);
    focus.wait_metric("focus_journal_lines_total{op=\"join\"}", WAIT, |v| v == 1.0);
    // The journal's directory disappears: appends still reach the open (unlinked) file, but
    // the compaction the growing file needs cannot create its new file.
    std::fs::remove_dir_all(&jdir).unwrap();
    let mut bob = Ua::udp(&focus, "bob");
    let deadline = Instant::now() + Duration::from_secs(20);
    while focus
        .metric("focus_journal_errors_total{op=\"compact\"}")
        .unwrap_or(0.0)
        == 0.0
    {
        assert!(Instant::now() < deadline, "compaction never failed");
        let (mut call, _) = bob.join(TEAM);
        assert_eq!(bob.bye(&mut call).status, 200);
    }
    assert!(!journal.exists());
    // The directory comes back: the next change rebuilds the file from the live state.
    std::fs::create_dir_all(&jdir).unwrap();
    let mut carol = Ua::udp(&focus, "carol");
    let (c_call, _) = carol.join(TEAM);
    let deadline = Instant::now() + Duration::from_secs(10);
    let live = loop {
        let j = cpm_focus::recovery::journal::read(&journal).unwrap();
        if j.live.participant_count() == 2 {
            break j.live;
        }
        assert!(Instant::now() < deadline, "the journal was not rebuilt");
        // The journal file has no change notification: poll it.
        std::thread::sleep(Duration::from_millis(50));
    };
    let names: Vec<String> = live.sessions()[0]
        .participants
        .values()
        .map(|p| p.real.clone())
        .collect();
    assert_eq!(names, [alice.aor(), carol.aor()]);

    // And it is good for a recovery.
    focus.kill();
    let focus = focus.restart();
    for (ua, call) in [(&mut alice, &a_call), (&mut carol, &c_call)] {
        let inv = ua
            .wait_for(Duration::from_secs(10), |m| {
                m.request()
                    .is_some_and(|r| r.method == Method::Invite && r.call_id() == call.call_id)
            })
            .unwrap_or_else(|| panic!("{}: no re-INVITE", ua.name));
        let head = ua.contact_header();
        ua.answer(
            &inv,
            200,
            None,
            &head,
            Some(("application/sdp", support::AUDIO_OFFER)),
        );
    }
    let mut watcher = Ua::udp(&focus, "watcher");
    let (_sub, first) = watcher.subscribe_to(TEAM);
    let mut view = first.doc;
    follow(&mut watcher, &mut view, |v| {
        [alice.aor(), carol.aor()]
            .iter()
            .all(|a| endpoint_state(v, a).is_some_and(|(s, _)| s == EndpointStatus::Connected))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// An outsider (127.0.0.66, claiming alice in its From and a forged P-Asserted-Identity) in an
/// open group is resumed as what it was: unverified. When it answers the resuming re-INVITE
/// with 481, the focus does not call it again (a call the focus places makes the callee's
/// address an identity that counts), and the crash's records bill its source address.
#[test]
fn an_unverified_participant_that_lost_its_dialog_is_not_called_again() {
    let dir = temp_dir("recovery-unverified");
    let (journal, cdr) = (dir.join("journal.jsonl"), dir.join("cdr.jsonl"));
    let mut focus = Focus::start(&format!(
        "[policy]\ntrusted_hosts = [\"127.0.0.1\"]\n{}",
        config(&journal, &cdr, 60)
    ));
    let mut m = Ua::udp_from(&focus, "alice", "127.0.0.66");
    m.invite_headers = "P-Asserted-Identity: <sip:alice@example.com>\r\n".into();
    let mut chat = m.join_chat(TEAM, Setup::Active);
    let mut msrp = chat.connect();
    msrp.bind();
    let mut bob = join(&focus, "bob", TEAM, "");
    focus.wait_metric("focus_journal_lines_total{op=\"join\"}", WAIT, |v| v == 2.0);
    records_until(&cdr, |r| count(r, |x| x["type"] == "participant_join") == 2);
    focus.kill();
    let focus = focus.restart();

    let call_id = bob.chat.call.call_id.clone();
    let inv = invite_where(&mut bob.ua, |r| r.call_id() == call_id);
    accept_resume(&mut bob, &inv);
    let old = chat.call.call_id.clone();
    let inv = invite_where(&mut m, |r| r.call_id() == old);
    m.respond(&inv.rx, 481);
    // Nothing but the ACK of the 481: no new INVITE to the outsider's Contact.
    let called = m.wait_for(Duration::from_secs(2), |x| {
        x.request()
            .is_some_and(|r| r.method == Method::Invite && r.call_id() != old)
    });
    assert!(called.is_none(), "the focus called the outsider again");
    assert_eq!(
        focus.metric("focus_recovered_participants_total{outcome=\"redialed\"}"),
        Some(0.0)
    );
    // The crash's records bill the outsider's address, never alice.
    let records = records_until(&cdr, |r| {
        count(r, |x| {
            x["type"] == "participant_leave" && x["reason"] == "crash"
        }) == 2
    });
    let crash_leaves: Vec<(String, bool)> = records
        .iter()
        .filter(|x| x["type"] == "participant_leave" && x["reason"] == "crash")
        .map(|x| {
            (
                x["identity"].as_str().unwrap_or("").to_string(),
                x["verified"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    assert!(
        crash_leaves.contains(&("source:127.0.0.66".to_string(), false)),
        "{crash_leaves:?}"
    );
    assert!(
        crash_leaves.contains(&("sip:bob@example.com".to_string(), true)),
        "{crash_leaves:?}"
    );
    assert!(
        !records
            .iter()
            .any(|x| x["identity"] == "sip:alice@example.com"),
        "{records:#?}"
    );
    assert_eq!(bob.ua.bye(&mut bob.chat.call).status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two processes on one journal: the second refuses to start (non-zero exit, a log line that
/// names the lock) instead of reading the first one's live sessions as a crash, closing them
/// in the charging records and re-INVITEing its participants. The first runs on untouched.
#[test]
fn a_second_focus_on_the_same_journal_refuses_to_start() {
    let dir = temp_dir("recovery-locked");
    let (journal, cdr) = (dir.join("journal.jsonl"), dir.join("cdr.jsonl"));
    let text = config(&journal, &cdr, 60);
    let first = Focus::start(&text);
    let mut alice = join(&first, "alice", TEAM, "");
    first.wait_metric("focus_journal_lines_total{op=\"join\"}", WAIT, |v| v == 1.0);

    let path = dir.join("second.toml");
    std::fs::write(&path, support::config_text(&text)).unwrap();
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_cpm-focus"))
        .arg("--config")
        .arg(&path)
        .args([
            "--sip-listen",
            "127.0.0.1:0",
            "--sips-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--msrp-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .args(["--admin-listen", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning the second focus");
    // A guard against hanging only: a focus that starts runs until it is killed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = second.kill();
            break None;
        }
        // A child process has no exit notification here but its status: poll it.
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = second.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let status = status.unwrap_or_else(|| panic!("the second focus started:\n{log}"));
    assert!(!status.success(), "{status:?}\n{log}");
    assert!(
        log.contains("in use by another focus process") && log.contains("journal.jsonl.lock"),
        "{log}"
    );

    // The first focus still has alice, and nobody re-INVITEd her.
    alice.ua.assert_quiet(
        Duration::from_millis(500),
        "no re-INVITE from a second focus",
    );
    let b = alice
        .ua
        .send_request(&mut alice.chat.call, "OPTIONS", "", None);
    assert_eq!(alice.ua.expect_final(&b).status, 200);
    let j = cpm_focus::recovery::journal::read(&journal).unwrap();
    assert_eq!(j.live.participant_count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 18: after a `kill -9` and a restart, the resumed participants of a talk group were
/// re-INVITEd with the dead process's audio port in the offer and no RTP leg was bound
/// (`focus_rtp_legs` 0): the group came back mute. The resume offer now carries a fresh
/// port pair (and BFCP user of the new conference), the legs start with the answers, and a
/// talk burst is relayed after the recovery.
#[test]
fn a_recovered_talk_group_relays_audio() {
    use support::talk::{sections, talk_focus, talk_offer_at};
    const TALK: &str = "sip:talk@focus.example.com";
    let dir = temp_dir("recovery-talk");
    let (journal, cdr) = (dir.join("journal.jsonl"), dir.join("cdr.jsonl"));
    let mut focus = talk_focus(&config(&journal, &cdr, 60));
    let mut uas = [Ua::udp(&focus, "alice"), Ua::udp(&focus, "bob")];
    let mut talkers: Vec<_> = uas.iter_mut().map(|ua| ua.join_talk(TALK)).collect();
    focus.wait_metric("focus_journal_lines_total{op=\"join\"}", WAIT, |v| v == 2.0);
    focus.wait_metric("focus_rtp_legs", WAIT, |v| v == 2.0);
    focus.kill();
    let focus = focus.restart();

    for (ua, t) in uas.iter_mut().zip(talkers.iter_mut()) {
        let call_id = t.call.call_id.clone();
        let inv = ua
            .wait_for(Duration::from_secs(10), |m| {
                m.request()
                    .is_some_and(|r| r.method == Method::Invite && r.call_id() == call_id)
            })
            .unwrap_or_else(|| panic!("{}: no re-INVITE", ua.name));
        let offer = String::from_utf8(inv.request().unwrap().body.to_vec()).unwrap();
        let all = sections(&offer);
        let audio = all
            .iter()
            .find(|s| s.media == "audio")
            .unwrap_or_else(|| panic!("no m=audio in the resume offer:\n{offer}"));
        assert_ne!(audio.port, 0, "{offer}");
        let bfcp = all
            .iter()
            .find(|s| s.media == "application" && s.port != 0)
            .unwrap_or_else(|| panic!("no BFCP line in the resume offer:\n{offer}"));
        let num = |name: &str| -> u64 {
            bfcp.attr(name)
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or_else(|| panic!("no a={name} in the resume offer:\n{offer}"))
        };
        t.focus_rtp = std::net::SocketAddr::new(t.focus_rtp.ip(), audio.port);
        t.bfcp_addr = Some(std::net::SocketAddr::new(t.focus_rtp.ip(), bfcp.port));
        t.conference_id = num("confid") as u32;
        t.user_id = num("userid") as u16;
        t.floor_id = num("floorid") as u16;
        t.bfcp = None;
        // The answer: the same RTP port as before, BFCP as a client.
        let port = t.rtp.local_addr().unwrap().port();
        let label = audio.attr("label").unwrap_or("audio").to_string();
        let answer = talk_offer_at(t.ip, port, &[(0, "PCMU/8000")], &label, true);
        let head = ua.contact_header();
        ua.answer(&inv, 200, None, &head, Some(("application/sdp", &answer)));
        let cseq = inv.request().unwrap().cseq.seq;
        ua.wait_for(WAIT, |m| {
            m.request().is_some_and(|r| {
                r.method == Method::Ack && r.call_id() == call_id && r.cseq.seq == cseq
            })
        })
        .unwrap_or_else(|| panic!("{}: no ACK for the re-INVITE", ua.name));
    }
    focus.wait_metric("focus_rtp_legs", WAIT, |v| v == 2.0);

    // alice takes the floor of the new conference and talks; bob hears her.
    let (alice, bob) = talkers.split_at_mut(1);
    let (alice, bob) = (&mut alice[0], &mut bob[0]);
    alice.connect_bfcp();
    let (_, status, _) = alice.request_floor();
    assert_eq!(
        status,
        cpm_focus::push_to_talk::bfcp::RequestStatus::Granted
    );
    bob.send_rtcp();
    alice.send_rtp(3);
    let heard = bob.expect_rtp(3);
    for p in &heard {
        assert!(
            String::from_utf8_lossy(&p.payload).starts_with("alice "),
            "{:?}",
            String::from_utf8_lossy(&p.payload)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
