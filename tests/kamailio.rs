//! Scale-out behind Kamailio (issue 9): the shipped `config/kamailio/kamailio.cfg` runs in
//! front of two focus instances on loopback, and
//! - every client of a pre-defined group lands on the same instance (hash of the URI);
//! - ad-hoc conferences created through the balancer are joinable through it (the instance
//!   tag in their URI routes to their instance);
//! - in-dialog requests follow the Record-Route set (BYE from a participant, NOTIFY from the
//!   focus), and the instances are probed with OPTIONS;
//! - stopping one instance leaves the other's sessions untouched, and the balancer stops
//!   routing to the dead one: its groups move to the live instance, its ad-hoc
//!   conferences answer 480.
//!
//! It needs the `kamailio` binary (CI installs the Debian package); without it the test says
//! so loudly and passes, except under `CI`, where it fails.

mod support;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{contact_of, Call, Focus, Origin, Ua, WAIT};

const GROUPS: usize = 8;
const DOMAIN: &str = "focus.example.com";

fn group_uri(i: usize) -> String {
    format!("sip:g{i}@{DOMAIN}")
}

/// The `kamailio` binary, if installed.
fn kamailio_binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("kamailio"))
        .find(|p| p.is_file())
}

/// A Kamailio process with its scratch directory; stopped on drop (its log printed when
/// the test fails).
struct Kamailio {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Kamailio {
    fn start(binary: &PathBuf, instances: &[(&str, SocketAddr)]) -> Kamailio {
        let dir = std::env::temp_dir().join(format!("cpm-focus-kamailio-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("dispatcher.list");
        let lines: String = instances
            .iter()
            .map(|(id, a)| format!("1 sip:{a} 0 0 duid={id}\n"))
            .collect();
        std::fs::write(&list, lines).unwrap();
        // A free port for UDP and TCP alike (released just before Kamailio binds it).
        let port = (0..50)
            .find_map(|_| {
                let u = UdpSocket::bind("127.0.0.1:0").ok()?;
                let p = u.local_addr().ok()?.port();
                TcpListener::bind(("127.0.0.1", p)).ok().map(|_| p)
            })
            .expect("a free port");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::fs::File::create(dir.join("kamailio.log")).unwrap();
        let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/config/kamailio/kamailio.cfg");
        let child = Command::new(binary)
            .args(["-f", cfg, "-DD", "-E", "-m", "64", "-M", "8"])
            .arg("-Y")
            .arg(&dir)
            .arg("-w")
            .arg(&dir)
            .args([
                "-A",
                &format!("LISTEN_UDP=udp:{addr}"),
                "-A",
                &format!("LISTEN_TCP=tcp:{addr}"),
                "-A",
                &format!("DISPATCHER_LIST=\"{}\"", list.display()),
                "-A",
                "PROBE_INTERVAL=1",
                "-A",
                "FR_TIMER=2000",
                "-A",
                "CHILDREN=2",
                "-A",
                "LOG_LEVEL=3",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting kamailio");
        let k = Kamailio { child, addr, dir };
        k.wait_ready();
        k
    }

    /// Waits for Kamailio to answer an OPTIONS to itself.
    fn wait_ready(&self) {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let me = sock.local_addr().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 4096];
        for n in 0.. {
            assert!(
                Instant::now() < deadline,
                "kamailio never answered; log:\n{}",
                self.log()
            );
            let probe = format!(
                "OPTIONS sip:{} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-ready{n};rport\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{DOMAIN}>;tag=p{n}\r\nTo: <sip:{}>\r\nCall-ID: ready-{n}@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                self.addr, self.addr
            );
            let _ = sock.send_to(probe.as_bytes(), self.addr);
            if let Ok((len, _)) = sock.recv_from(&mut buf) {
                if buf[..len].starts_with(b"SIP/2.0 200") {
                    return;
                }
            }
        }
    }

    fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("kamailio.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM lets the main process stop its children.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(150).collect();
            eprintln!("---- kamailio log (last {} lines) ----", tail.len());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A focus instance with every test group.
fn instance(id: &str) -> Focus {
    let mut extra = format!("[focus]\ninstance_id = \"{id}\"\n");
    for i in 0..GROUPS {
        extra.push_str(&format!("[[groups]]\nuri = \"{}\"\n", group_uri(i)));
    }
    Focus::start(&extra)
}

/// A UDP agent that sends everything to the balancer.
fn client(focus: &Focus, name: &str, balancer: SocketAddr) -> Ua {
    let mut ua = Ua::udp(focus, name);
    ua.primary = Origin::Udp(balancer);
    ua
}

/// Which instance runs the session `key` (index into `instances`), if any.
fn running_on(instances: &[&Focus], key: &str) -> Vec<usize> {
    instances
        .iter()
        .enumerate()
        .filter(|(_, f)| f.admin("GET", &format!("/v1/sessions/{key}"), None).status == 200)
        .map(|(i, _)| i)
        .collect()
}

fn participants(focus: &Focus, key: &str) -> u64 {
    let r = focus.admin("GET", &format!("/v1/sessions/{key}"), None);
    assert_eq!(r.status, 200, "{key}: {}", r.body);
    r.json()["participants"].as_u64().unwrap()
}

#[test]
fn instances_behind_kamailio_dispatcher() {
    let Some(binary) = kamailio_binary() else {
        support::skip(
            "kamailio",
            "kamailio is not installed (apt-get install -y kamailio); the scale-out test did \
             not run",
        );
        return;
    };
    let a = instance("focus-a");
    let mut b = instance("focus-b");
    let kam = Kamailio::start(&binary, &[("focus-a", a.sip_udp), ("focus-b", b.sip_udp)]);
    let both = [&a, &b];

    // Pre-defined groups: two clients per group, through the balancer, on one instance.
    let mut members: Vec<(Ua, Call)> = Vec::new();
    let mut home = Vec::new();
    for i in 0..GROUPS {
        let uri = group_uri(i);
        for who in ["x", "y"] {
            let mut ua = client(&a, &format!("{who}{i}"), kam.addr);
            let (call, ok) = ua.join(&uri);
            assert!(
                ok.headers
                    .get(cpm_focus::sip::HeaderName::RecordRoute)
                    .is_some(),
                "the balancer record-routes"
            );
            assert!(!call.route.is_empty());
            members.push((ua, call));
        }
        let on = running_on(&both, &format!("g{i}"));
        assert_eq!(on.len(), 1, "g{i} runs on {on:?}");
        assert_eq!(participants(both[on[0]], &format!("g{i}")), 2, "g{i}");
        home.push(on[0]);
    }
    assert!(
        home.contains(&0) && home.contains(&1),
        "the groups spread over both instances: {home:?}"
    );
    // In-dialog requests follow the route set: a participant leaves by BYE via the
    // balancer, and a subscriber gets its NOTIFYs from the focus through the balancer.
    let (mut ua, mut call) = members.pop().unwrap();
    assert_eq!(ua.bye(&mut call).status, 200);
    let last = GROUPS - 1;
    assert_eq!(participants(both[home[last]], &format!("g{last}")), 1);
    let mut watcher = client(&a, "watcher", kam.addr);
    let (_w, first) = watcher.subscribe_to(&group_uri(0));
    let (rejoin, joined) = ua.try_join(&group_uri(0));
    let status = joined.status;
    assert_eq!(status, 200);
    assert!(rejoin.to_tag.is_some());
    let n = watcher.expect_notify();
    assert_eq!(
        n.origin,
        Origin::Udp(kam.addr),
        "NOTIFY came through the balancer"
    );
    assert!(n.doc.version > first.doc.version);

    // Ad-hoc conferences: created through the balancer, joinable through it.
    let mut adhoc: Vec<(String, usize)> = Vec::new();
    for k in 0..4 {
        let mut creator = client(&a, &format!("creator{k}"), kam.addr);
        let (_c, ok) = creator.join(&format!("sip:conf-factory@{DOMAIN}"));
        let (contact, isfocus) = contact_of(&ok);
        assert!(isfocus);
        let user = contact
            .strip_prefix("sip:")
            .and_then(|c| c.split('@').next())
            .unwrap()
            .to_string();
        let tag = if user.starts_with("conf-focus-a-") {
            0
        } else {
            1
        };
        assert!(user.starts_with("conf-focus-"), "{user}");
        let mut guest = client(&a, &format!("guest{k}"), kam.addr);
        guest.join(&format!("sip:{user}@{DOMAIN}"));
        assert_eq!(running_on(&both, &user), [tag], "{user}");
        assert_eq!(participants(both[tag], &user), 2, "{user}");
        adhoc.push((user, tag));
    }
    assert!(
        adhoc.iter().any(|(_, t)| *t == 0) && adhoc.iter().any(|(_, t)| *t == 1),
        "ad-hoc conferences on both instances: {adhoc:?}"
    );
    // Both instances are probed.
    for f in both {
        f.wait_metric(
            "focus_sip_requests_received_total{method=\"OPTIONS\"}",
            WAIT,
            |v| v >= 1.0,
        );
    }

    // Stop instance b: a's sessions stay as they were, b's groups move to a, b's ad-hoc
    // conferences are unavailable.
    let before: Vec<(String, u64)> = a.admin("GET", "/v1/sessions", None).json()["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["uri"].as_str().unwrap().to_string(),
                s["participants"].as_u64().unwrap(),
            )
        })
        .collect();
    b.terminate();
    assert_eq!(b.wait_exit(Duration::from_secs(20)).code(), Some(0));
    let moved = home.iter().position(|h| *h == 1).expect("a group of b");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    loop {
        n += 1;
        let mut ua = client(&a, &format!("late{n}"), kam.addr);
        let status = ua.try_join(&group_uri(moved)).1.status;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "g{moved} never moved to the live instance (last {status})"
        );
    }
    assert_eq!(running_on(&[&a], &format!("g{moved}")), [0]);
    let after: Vec<(String, u64)> = a.admin("GET", "/v1/sessions", None).json()["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["uri"].as_str().unwrap().to_string(),
                s["participants"].as_u64().unwrap(),
            )
        })
        .filter(|(uri, _)| *uri != group_uri(moved))
        .collect();
    assert_eq!(before, after, "instance a's sessions were untouched");
    let (dead, _) = adhoc.iter().find(|(_, t)| *t == 1).unwrap();
    let mut ua = client(&a, "too-late", kam.addr);
    let status = ua.try_join(&format!("sip:{dead}@{DOMAIN}")).1.status;
    assert_eq!(status, 480, "an ad-hoc conference of the dead instance");
    // New joins of a's groups still land on a.
    let kept = home.iter().position(|h| *h == 0).unwrap();
    let mut ua = client(&a, "one-more", kam.addr);
    let status = ua.try_join(&group_uri(kept)).1.status;
    assert_eq!(status, 200);
    assert_eq!(running_on(&[&a], &format!("g{kept}")), [0]);
}
