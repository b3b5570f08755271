//! Pre-defined groups from a real Shared Group XDMS (issue 16): Kamailio's `xcap_server`
//! (documents in db_text) started on a free port with `tests/xdms/kamailio-xcap.cfg`, written
//! to with XCAP `PUT`s exactly as an XDM client does, and a focus polling it every second:
//! - an rls-services document listing alice in `sip:board@…`: alice (asserted by the trusted
//!   host) joins, bob is refused; the focus's GETs carry `If-None-Match`;
//! - a `PUT` adding bob lets him join within `poll_s` + 1 s;
//! - a document the focus cannot use (an entry without a URI) changes nothing and is counted;
//! - a `PUT` removing the group: new joins get 404, the live members stay; a group the
//!   configuration file defines too is the file's;
//! - the XDMS stopped: the last good groups are still served, the outage shows in metrics and
//!   `/health`; a focus restarted while the XDMS is down serves them from its cache file.
//!
//! It needs `kamailio` and its `xcap_server` module (Debian: kamailio,
//! kamailio-presence-modules); without them it says so loudly and passes, except under `CI`,
//! which installs them: there a missing one fails the test.

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{http, metric, Call, Focus, Ua};

const DOCUMENT: &str = "rls-services/users/sip:admin@focus.example.com/index";
const POLL_S: u64 = 1;

fn tools() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    let binary = dirs
        .into_iter()
        .map(|d| d.join("kamailio"))
        .find(|p| p.is_file());
    let module = [
        "/usr/lib/x86_64-linux-gnu/kamailio/modules",
        "/usr/lib/aarch64-linux-gnu/kamailio/modules",
        "/usr/lib/kamailio/modules",
        "/usr/local/lib64/kamailio/modules",
    ]
    .iter()
    .any(|d| Path::new(d).join("xcap_server.so").is_file());
    match (binary, module) {
        (Some(b), true) => Some(b),
        _ => {
            support::skip(
                "xdms",
                "kamailio or its xcap_server module is missing (apt-get install -y kamailio \
                 kamailio-presence-modules).",
            );
            None
        }
    }
}

/// Kamailio as an XDMS; stopped on drop (its log printed when the test fails).
struct Xdms {
    child: Option<Child>,
    addr: SocketAddr,
    dir: PathBuf,
    /// GETs need digest credentials (focus / secret, realm xdms.test).
    auth: bool,
}

impl Xdms {
    fn start(binary: &Path) -> Xdms {
        Xdms::launch(binary, false)
    }

    fn launch(binary: &Path, auth: bool) -> Xdms {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("cpm-focus-xdms-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The db_text tables xcap_server needs (the schema of Kamailio 5.x, version 4).
        std::fs::write(
            dir.join("version"),
            "id(int,auto) table_name(string) table_version(int) \n0:xcap:4\n\
             0:presentity:5\n0:active_watchers:12\n0:watchers:3\n0:subscriber:7\n",
        )
        .unwrap();
        // Those of presence (xcap-diff subscriptions; kept in memory, but checked at start).
        for (table, columns) in [
            (
                "presentity",
                "id(int,auto) username(string) domain(string) event(string) etag(string) \
                 expires(int) received_time(int) body(string) sender(string) priority(int) \
                 ruid(string,null) ",
            ),
            (
                "active_watchers",
                "id(int,auto) presentity_uri(string) watcher_username(string) \
                 watcher_domain(string) to_user(string) to_domain(string) event(string) \
                 event_id(string,null) to_tag(string) from_tag(string) callid(string) \
                 local_cseq(int) remote_cseq(int) contact(string) record_route(string,null) \
                 expires(int) status(int) reason(string,null) version(int) \
                 socket_info(string) local_contact(string) from_user(string) \
                 from_domain(string) updated(int) updated_winfo(int) flags(int) \
                 user_agent(string,null) ",
            ),
            (
                "watchers",
                "id(int,auto) presentity_uri(string) watcher_username(string) \
                 watcher_domain(string) event(string) status(int) reason(string,null) \
                 inserted_time(int) ",
            ),
        ] {
            std::fs::write(dir.join(table), format!("{columns}\n")).unwrap();
        }
        // The focus's account (auth_db computes HA1 from the password).
        std::fs::write(
            dir.join("subscriber"),
            "id(int,auto) username(string) domain(string) password(string) ha1(string) \
             ha1b(string) \n1:focus:xdms.test:secret:x:x\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("xcap"),
            "id(int,auto) username(string) domain(string) doc(string) doc_type(int) \
             etag(string) source(int) doc_uri(string) port(int) \n",
        )
        .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut x = Xdms {
            child: None,
            addr,
            dir,
            auth,
        };
        x.run(binary);
        x
    }

    fn run(&mut self, binary: &Path) {
        let log = std::fs::File::create(self.dir.join("kamailio.log")).unwrap();
        let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/xdms/kamailio-xcap.cfg");
        let child = Command::new(binary)
            .args(["-f", cfg, "-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-Y")
            .arg(&self.dir)
            .arg("-w")
            .arg(&self.dir)
            .args([
                "-A",
                &format!("LISTEN=tcp:{}", self.addr),
                "-A",
                &format!("LISTENUDP=udp:{}", self.addr),
                "-A",
                &format!("DB_URL=\"text://{}\"", self.dir.display()),
            ])
            .args(if self.auth {
                &["-A", "WITH_AUTH"][..]
            } else {
                &[][..]
            })
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting kamailio");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(self.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "XDMS never listened:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An XCAP PUT of the whole document, as an XDM client writes one.
    fn put(&self, body: &str) -> u16 {
        http(
            self.addr,
            "PUT",
            &format!("/xcap-root/{DOCUMENT}"),
            &[
                ("Content-Type", "application/rls-services+xml"),
                ("Connection", "close"),
            ],
            body,
        )
        .status
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
    }

    /// The focus's GETs the XDMS has seen so far.
    fn gets(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("XCAP GET"))
            .count()
    }

    /// The lines the XDMS logged with `needle`.
    fn lines(&self, needle: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Xdms {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("---- XDMS (kamailio) log ----\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An rls-services document: each `(group, members)` a service with an inline list.
fn document(services: &[(&str, &[&str])]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rls-services \
         xmlns=\"urn:ietf:params:xml:ns:rls-services\" \
         xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\">\n",
    );
    for (group, members) in services {
        s.push_str(&format!(
            "<service uri=\"sip:{group}@focus.example.com\"><list name=\"{group}\">\
             <rl:display-name>The {group}</rl:display-name>"
        ));
        for m in *members {
            s.push_str(&format!("<rl:entry uri=\"sip:{m}@example.com\"/>"));
        }
        s.push_str("</list><packages><package>conference</package></packages></service>\n");
    }
    s.push_str("</rls-services>\n");
    s
}

/// `name`'s phone behind the trusted host (127.0.0.1), which asserts who it is.
fn user(focus: &Focus, name: &str) -> Ua {
    let mut ua = Ua::udp(focus, &format!("{name}-phone"));
    ua.invite_headers = format!("P-Asserted-Identity: <sip:{name}@example.com>\r\n");
    ua
}

fn join(ua: &mut Ua, group: &str) -> (u16, Call) {
    let (call, r) = ua.try_join(&format!("sip:{group}@focus.example.com"));
    (r.status, call)
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if done() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn groups_follow_a_kamailio_xdms() {
    let Some(binary) = tools() else { return };
    let mut xdms = Xdms::start(&binary);
    assert_eq!(xdms.put(&document(&[("board", &["alice"])])), 200);
    let cache = xdms.dir.join("focus-cache.json");
    let focus = Focus::start(&format!(
        "[policy]\ntrusted_hosts = [\"127.0.0.1\"]\n\
         [xdms]\nroot = \"http://{}/xcap-root\"\ndocuments = [\"{DOCUMENT}\"]\n\
         poll_s = {POLL_S}\ntimeout_ms = 1000\ncache = \"{}\"\n",
        xdms.addr,
        cache.display()
    ));
    wait_for("the first fetch", Duration::from_secs(5), || {
        metric(&focus, "focus_xdms_documents") == 1.0
    });

    let ready = focus.admin("GET", "/ready", None);
    assert_eq!(ready.status, 200, "the groups are loaded: {}", ready.body);
    let mut alice = user(&focus, "alice");
    let mut bob = user(&focus, "bob");
    let (status, _alice_call) = join(&mut alice, "board");
    assert_eq!(status, 200, "alice is in the XDMS list");
    assert_eq!(join(&mut bob, "board").0, 403, "bob is not (members-only)");

    // The focus polls with the ETag it holds: the XDMS sees conditional GETs (and answers
    // 304, the ETag being current).
    wait_for(
        "conditional GETs",
        Duration::from_secs(3 * POLL_S + 1),
        || {
            xdms.log()
                .lines()
                .any(|l| l.contains("XCAP GET") && l.contains("if-none-match=[\"sr-"))
        },
    );

    // An XDM client adds bob.
    assert_eq!(xdms.put(&document(&[("board", &["alice", "bob"])])), 200);
    let limit = Duration::from_secs(POLL_S + 1);
    let mut bob_call = None;
    let took = wait_for("bob joins after the PUT", limit, || {
        let (status, call) = join(&mut bob, "board");
        if status == 200 {
            bob_call = Some(call);
        }
        status == 200
    });
    eprintln!("bob joined {took:?} after the PUT");

    // A document the focus cannot use: well-formed for the XDMS, an entry without a URI for
    // the focus. It is refused, counted, and dave (in it) stays out.
    let invalid = "focus_xdms_fetch_failures_total{reason=\"invalid\"}";
    let bad = document(&[("board", &["alice", "bob", "dave"])])
        .replace("<rl:entry uri=\"sip:dave@example.com\"/>", "<rl:entry/>");
    assert_eq!(xdms.put(&bad), 200, "the XDMS stores it");
    wait_for("the bad document is refused", limit * 2, || {
        metric(&focus, invalid) >= 1.0
    });
    let mut dave = user(&focus, "dave");
    assert_eq!(join(&mut dave, "board").0, 403);

    // The attacker's version: dave smuggled in through an internal DTD entity (the XDMS's
    // libxml2 takes it). The focus expands no entity and refuses any DOCTYPE.
    let smuggled = document(&[("board", &["alice", "bob", "DAVE"])])
        .replace(
            "<rls-services",
            "<!DOCTYPE rls-services [<!ENTITY d \"sip:dave@example.com\">]>\n<rls-services",
        )
        .replace("sip:DAVE@example.com", "&d;");
    assert_eq!(xdms.put(&smuggled), 200, "the XDMS stores it");
    let refused = metric(&focus, invalid);
    wait_for("the DTD document is refused", limit * 2, || {
        metric(&focus, invalid) >= refused + 2.0
    });
    assert_eq!(join(&mut dave, "board").0, 403, "no entity was expanded");
    assert_eq!(
        metric(&focus, "focus_xdms_documents"),
        1.0,
        "the last good copy stays"
    );

    // The group goes (others take its place): new joins 404, the live members stay. `team`
    // is also a [[groups]] entry of the test configuration (open): the file's wins.
    assert_eq!(
        xdms.put(&document(&[
            ("crew", &["alice", "carol"]),
            ("team", &["alice"])
        ])),
        200
    );
    // dave was refused (403) while board existed; now nobody can join it.
    wait_for("board is removed", limit * 2, || {
        join(&mut dave, "board").0 == 404
    });
    let session = focus.admin("GET", "/v1/sessions/board", None);
    assert_eq!(session.status, 200, "{}", session.body);
    assert_eq!(
        session.json()["participants"].as_u64(),
        Some(2),
        "{}",
        session.body
    );
    let mut carol = user(&focus, "carol");
    assert_eq!(join(&mut carol, "crew").0, 200, "the new group is joinable");
    assert_eq!(
        join(&mut dave, "team").0,
        200,
        "the file's open team wins over the XDMS's members-only one"
    );
    // The override is said once, not again at the next change of the document.
    let wins = "the file's wins";
    let applied = focus.log().matches("XDMS groups applied").count();
    assert_eq!(
        xdms.put(&document(&[
            ("crew", &["alice", "carol", "erin"]),
            ("team", &["alice"])
        ])),
        200
    );
    wait_for("the next change applies", limit * 2, || {
        focus.log().matches("XDMS groups applied").count() > applied
    });
    assert_eq!(focus.log().matches(wins).count(), 1, "{}", focus.log());

    // The XDMS goes away: the last good groups are still served, the outage is visible.
    xdms.stop();
    let unreachable = "focus_xdms_fetch_failures_total{reason=\"unreachable\"}";
    wait_for("the outage is counted", limit * 2, || {
        metric(&focus, unreachable) >= 1.0
    });
    let health = focus.admin("GET", "/health", None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "degraded", "{}", health.body);
    assert_eq!(health.json()["xdms"]["groups"], 2, "{}", health.body);
    let mut alice2 = user(&focus, "alice");
    assert_eq!(
        join(&mut alice2, "crew").0,
        200,
        "served from the last good copy"
    );
    assert_eq!(join(&mut dave, "crew").0, 403);

    // A restart while the XDMS is down serves the cached groups.
    let mut focus = focus;
    focus.kill();
    let focus = focus.restart();
    let mut alice3 = user(&focus, "alice");
    assert_eq!(
        join(&mut alice3, "crew").0,
        200,
        "served from the cache file"
    );
    let mut bob2 = user(&focus, "bob");
    assert_eq!(join(&mut bob2, "crew").0, 403);
    assert_eq!(join(&mut bob2, "board").0, 404);
    drop(bob_call);
}

/// The value of `key=[...]` in a line of the XDMS's log.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line
        .find(&format!("{key}=["))
        .map(|i| i + key.len() + 2)
        .unwrap_or_else(|| panic!("{key} in {line}"));
    let end = line[start..].find(']').map_or(line.len(), |e| start + e);
    &line[start..end]
}

fn subscribing_focus(xdms: &Xdms, expires_s: u32) -> Focus {
    // poll_s is an hour: whatever arrives sooner came through the subscription.
    Focus::start(&format!(
        "[policy]\ntrusted_hosts = [\"127.0.0.1\"]\n\
         [xdms]\nroot = \"http://{addr}/xcap-root\"\ndocuments = [\"{DOCUMENT}\"]\n\
         poll_s = 3600\ntimeout_ms = 1000\nsubscribe = \"sip:admin@{addr}\"\n\
         subscribe_expires_s = {expires_s}\n",
        addr = xdms.addr,
    ))
}

#[test]
fn an_xcap_diff_subscription_is_refreshed_and_its_notify_fetches_at_once() {
    let Some(binary) = tools() else { return };
    let xdms = Xdms::start(&binary);
    assert_eq!(xdms.put(&document(&[("board", &["alice"])])), 200);
    let focus = subscribing_focus(&xdms, 4);
    wait_for("the first fetch", Duration::from_secs(10), || {
        metric(&focus, "focus_xdms_documents") == 1.0
    });
    let established = "focus_xdms_subscribes_total{outcome=\"established\"}";
    let refreshed = "focus_xdms_subscribes_total{outcome=\"refreshed\"}";
    wait_for("the subscription", Duration::from_secs(10), || {
        metric(&focus, established) == 1.0
    });
    // Expires 4: refreshed every 2 s, in the dialog (the XDMS sees its own tag in To).
    wait_for("a refresh", Duration::from_secs(10), || {
        metric(&focus, refreshed) >= 1.0
    });
    let subscribes = xdms.lines("SIP SUBSCRIBE");
    assert!(
        subscribes.iter().any(|l| field(l, "tt") != "<null>"
            && field(l, "event") == "xcap-diff"
            && field(l, "expires") == "4"),
        "no in-dialog refresh among {subscribes:#?}"
    );
    assert_eq!(metric(&focus, established), 1.0, "refreshed, not re-made");
    let health = focus.admin("GET", "/health", None);
    assert_eq!(health.json()["xdms"]["subscribed"], true, "{}", health.body);

    // An XDM client adds bob: the XDMS notifies, the focus fetches at once, not after an hour.
    let mut bob = user(&focus, "bob");
    assert_eq!(join(&mut bob, "board").0, 403);
    assert_eq!(xdms.put(&document(&[("board", &["alice", "bob"])])), 200);
    let took = wait_for(
        "bob joins after the NOTIFY",
        Duration::from_secs(10),
        || join(&mut bob, "board").0 == 200,
    );
    eprintln!("bob joined {took:?} after the PUT (poll_s is 3600)");
}

#[test]
fn a_notify_from_outside_the_subscription_changes_nothing() {
    let Some(binary) = tools() else { return };
    let xdms = Xdms::start(&binary);
    assert_eq!(xdms.put(&document(&[("board", &["alice"])])), 200);
    // No refresh during the test: every GET after the first notice is somebody's doing.
    let focus = subscribing_focus(&xdms, 3600);
    let accepted = "focus_xdms_notifies_total{outcome=\"accepted\"}";
    wait_for("the first notice", Duration::from_secs(10), || {
        metric(&focus, accepted) >= 1.0
    });
    // The dialog's ids, as an eavesdropper would know them: Call-ID, the focus's tag and
    // the XDMS's.
    let notify = xdms
        .lines("LOCAL NOTIFY")
        .pop()
        .expect("the XDMS sent a NOTIFY");
    let (call_id, xdms_tag, focus_tag) = (
        field(&notify, "ci").to_string(),
        field(&notify, "ft").to_string(),
        field(&notify, "tt").to_string(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let gets = xdms.gets();
    let refused = "focus_xdms_notifies_total{outcome=\"refused\"}";

    // The attacker, at 127.0.0.66, sends a NOTIFY in that dialog saying the subscription is
    // over and everything changed.
    let attacker = std::net::UdpSocket::bind("127.0.0.66:0").expect("127.0.0.66 on lo");
    attacker
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let local = attacker.local_addr().unwrap();
    let forged = format!(
        "NOTIFY sip:{focus_addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKforged1;rport\r\n\
         From: <sip:admin@focus.example.com>;tag={xdms_tag}\r\n\
         To: <sip:conf@focus.example.com>;tag={focus_tag}\r\nCall-ID: {call_id}\r\n\
         CSeq: 900 NOTIFY\r\nMax-Forwards: 70\r\nContact: <sip:{local}>\r\n\
         Event: xcap-diff\r\nSubscription-State: terminated;reason=deactivated\r\n\
         Content-Length: 0\r\n\r\n",
        focus_addr = focus.sip_udp,
    );
    attacker.send_to(forged.as_bytes(), focus.sip_udp).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = attacker.recv_from(&mut buf).expect("an answer");
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(answer.starts_with("SIP/2.0 481 "), "{answer}");
    assert_eq!(metric(&focus, refused), 1.0);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(xdms.gets(), gets, "the forged NOTIFY made the focus fetch");

    // The subscription lives on: the XDMS's own notice still brings a change at once.
    let mut bob = user(&focus, "bob");
    assert_eq!(xdms.put(&document(&[("board", &["alice", "bob"])])), 200);
    wait_for(
        "bob joins after the real NOTIFY",
        Duration::from_secs(10),
        || join(&mut bob, "board").0 == 200,
    );
    assert!(xdms.gets() > gets);
}

/// No Kamailio needed: an XDMS that never answers (a closed port).
#[test]
fn ready_waits_for_the_groups_unless_a_cache_or_the_grace_says_otherwise() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = |extra: &str| {
        format!(
            "[policy]\ntrusted_hosts = [\"127.0.0.1\"]\n\
             [xdms]\nroot = \"http://{closed}/xcap-root\"\ndocuments = [\"{DOCUMENT}\"]\n\
             poll_s = 1\ntimeout_ms = 500\n{extra}"
        )
    };
    let ready = |focus: &Focus| {
        let r = focus.admin("GET", "/ready", None);
        (r.status, r.body)
    };

    // No fetch, no cache, no grace: not ready, and it says why.
    let focus = Focus::start(&config("ready_grace_s = 0\n"));
    let (status, body) = ready(&focus);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("xdms"), "{body}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(ready(&focus).0, 503, "still no groups");
    drop(focus);

    // A grace of 2 s: not ready at first, ready (with the file's groups) after it.
    let focus = Focus::start(&config("ready_grace_s = 2\n"));
    assert_eq!(ready(&focus).0, 503);
    let took = wait_for("ready after the grace", Duration::from_secs(5), || {
        ready(&focus).0 == 200
    });
    assert!(
        took >= Duration::from_millis(500),
        "ready too soon: {took:?}"
    );
    drop(focus);

    // A cache file with the groups: ready at once, and they are served.
    let dir = std::env::temp_dir().join(format!("cpm-focus-xdms-ready-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cache = dir.join("cache.json");
    let entry = serde_json::json!({ DOCUMENT: { "etag": null, "body": document(&[("board", &["alice"])]) } });
    std::fs::write(&cache, entry.to_string()).unwrap();
    let focus = Focus::start(&config(&format!(
        "ready_grace_s = 0\ncache = \"{}\"\n",
        cache.display()
    )));
    let (status, body) = ready(&focus);
    assert_eq!(status, 200, "the cache gave the groups: {body}");
    let mut alice = user(&focus, "alice");
    assert_eq!(join(&mut alice, "board").0, 200, "served from the cache");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_focus_answers_the_xdms_digest_challenge() {
    let Some(binary) = tools() else { return };
    let xdms = Xdms::launch(&binary, true);
    assert_eq!(xdms.put(&document(&[("board", &["alice"])])), 200);
    let focus_with = |password: &str| {
        Focus::start(&format!(
            "[policy]\ntrusted_hosts = [\"127.0.0.1\"]\n\
             [xdms]\nroot = \"http://{}/xcap-root\"\ndocuments = [\"{DOCUMENT}\"]\n\
             poll_s = {POLL_S}\ntimeout_ms = 1000\nuser = \"focus\"\npassword = \"{password}\"\n",
            xdms.addr
        ))
    };

    // The right password: challenged, answered with digest, the groups are read.
    let focus = focus_with("secret");
    wait_for("the authenticated fetch", Duration::from_secs(5), || {
        metric(&focus, "focus_xdms_documents") == 1.0
    });
    let authorized = xdms.lines("XCAP authorized");
    assert!(
        authorized
            .iter()
            .any(|l| l.contains("Digest username=\"focus\"") && l.contains("qop=auth")),
        "{authorized:#?}"
    );
    assert!(
        authorized.iter().all(|l| !l.contains("secret")),
        "the password never crosses the wire"
    );
    let mut alice = user(&focus, "alice");
    assert_eq!(join(&mut alice, "board").0, 200);
    // The nonce is reused with a growing count: later polls need no new challenge.
    let seen = authorized.len();
    wait_for(
        "polls with the same nonce",
        Duration::from_secs(4 * POLL_S),
        || xdms.lines("XCAP authorized").len() >= seen + 2,
    );
    assert!(
        xdms.lines("XCAP authorized")
            .iter()
            .any(|l| l.contains("nc=00000002")),
        "{:#?}",
        xdms.lines("XCAP authorized")
    );
    drop(focus);

    // A wrong one: refused, counted, no groups.
    let focus = focus_with("wrong");
    let status = "focus_xdms_fetch_failures_total{reason=\"status\"}";
    wait_for("the refusal is counted", Duration::from_secs(5), || {
        metric(&focus, status) >= 1.0
    });
    assert_eq!(metric(&focus, "focus_xdms_documents"), 0.0);
    let mut alice = user(&focus, "alice");
    assert_eq!(join(&mut alice, "board").0, 404);
}
