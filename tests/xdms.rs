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
}

impl Xdms {
    fn start(binary: &Path) -> Xdms {
        let dir = std::env::temp_dir().join(format!("cpm-focus-xdms-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The db_text tables xcap_server needs (the schema of Kamailio 5.x, version 4).
        std::fs::write(
            dir.join("version"),
            "id(int,auto) table_name(string) table_version(int) \n0:xcap:4\n",
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
                &format!("DB_URL=\"text://{}\"", self.dir.display()),
            ])
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
