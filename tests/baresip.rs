//! baresip, a real SIP client, joins a members-only group that requires digest
//! authentication, with the password of its account; with a wrong password it stays out.
//! Checked on the focus side: `focus_auth_*` metrics, the participant gauge and the admin
//! roster.
//!
//! baresip runs headless: a config directory made here (no audio device: a sine source and a
//! file player to /dev/null; the `menu` module for the `/dial` command given with `-e`), an
//! account `<sip:alice@focus.example.com>;auth_pass=...;outbound="sip:<focus>";regint=0`,
//! its SIP socket on 127.0.0.66 (a source no configuration trusts), and `-t` to hang up and
//! quit. Debian 12's baresip 1.0 (libre 1.1) computes MD5 only and gives up on a challenge
//! it cannot compute instead of skipping it (RFC 8760 §2.4), so the focus offers MD5 alone
//! here, as `config/focus.toml` advises for such clients.
//!
//! Without `baresip` on the PATH the test prints a loud SKIPPED line and passes, except
//! under `CI` (which installs it: Debian package `baresip-core`), where it fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{CredentialsFile, Focus};

const REALM: &str = "focus.example.com";
const CLUB: &str = "sip:club@focus.example.com";

/// `baresip` on the PATH, or `None` after saying loudly why the test is skipped.
fn baresip_present(test: &str) -> bool {
    match Command::new("baresip")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => true,
        Err(e) => {
            support::skip(
                test,
                &format!(
                    "`baresip` cannot be run ({e}). Install it (Debian/Ubuntu: apt-get install \
                     -y baresip-core) to run it."
                ),
            );
            false
        }
    }
}

/// A headless baresip with one account, killed on drop; its output (with the SIP trace)
/// goes to a file shown when the test fails.
struct Baresip {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
}

impl Baresip {
    /// Starts baresip dialling `target` as `sip:user@focus.example.com` with `password`,
    /// through `focus`, hanging up and quitting after `hold`.
    fn dial(
        focus: &Focus,
        tag: &str,
        user: &str,
        password: &str,
        target: &str,
        hold: Duration,
    ) -> Baresip {
        let dir =
            std::env::temp_dir().join(format!("cpm-focus-baresip-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("baresip config directory");
        std::fs::write(
            dir.join("config"),
            "poll_method\tepoll\n\
             sip_listen\t127.0.0.66:0\n\
             module_path\t/usr/lib/baresip/modules\n\
             module\t\tg711.so\n\
             module\t\tausine.so\n\
             module\t\taufile.so\n\
             module_app\taccount.so\n\
             module_app\tmenu.so\n\
             audio_player\taufile,/dev/null\n\
             audio_source\tausine,440\n\
             audio_alert\taufile,/dev/null\n",
        )
        .expect("baresip config");
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:{user}@{REALM}>;auth_pass={password};outbound=\"sip:{}\";regint=0\n",
                focus.sip_udp
            ),
        )
        .expect("baresip accounts");
        let log = dir.join("baresip.log");
        let out = std::fs::File::create(&log).expect("baresip log");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .arg("-s")
            .args(["-t", &hold.as_secs().to_string()])
            .args(["-e", &format!("/dial {target}")])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log handle"))
            .stderr(out)
            .spawn()
            .expect("starting baresip");
        Baresip { child, dir, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for baresip to quit on its own (`-t`); panics after `within`.
    fn wait(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.child.try_wait().expect("try_wait").is_none() {
            assert!(
                Instant::now() < deadline,
                "baresip still running:\n{}",
                self.log()
            );
            // Process exit has no receive-with-timeout in std: poll it.
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- baresip output ----\n{}\n---- end ----", self.log());
            eprintln!("baresip files kept in {}", self.path().display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn focus(users: &CredentialsFile) -> Focus {
    Focus::start(&format!(
        r#"
        [auth]
        mode = "members_only"
        credentials = "{}"
        algorithms = ["md5"]

        [[groups]]
        uri = "{CLUB}"
        join = "members-only"
        [[groups.members]]
        uri = "sip:alice@focus.example.com"
        "#,
        users.toml_path()
    ))
}

#[test]
fn baresip_with_its_account_password_joins_a_members_only_group() {
    if !baresip_present("baresip_with_its_account_password_joins_a_members_only_group") {
        return;
    }
    let users = CredentialsFile::new(REALM, &[("alice", "wonderland")]);
    let focus = focus(&users);

    // A wrong password: challenged, answered, challenged again, and never in.
    let mut wrong = Baresip::dial(
        &focus,
        "wrong",
        "alice",
        "looking-glass",
        CLUB,
        Duration::from_secs(3),
    );
    focus.wait_metric(
        "focus_auth_failures_total{reason=\"wrong_password\"}",
        Duration::from_secs(10),
        |v| v >= 1.0,
    );
    wrong.wait(Duration::from_secs(15));
    assert_eq!(
        focus.metric("focus_auth_success_total"),
        Some(0.0),
        "{}",
        wrong.log()
    );
    assert_eq!(
        focus.metric("focus_participants_active").unwrap_or(0.0),
        0.0
    );
    drop(wrong);

    // The right one: in the roster, as alice, until baresip hangs up.
    let mut right = Baresip::dial(
        &focus,
        "right",
        "alice",
        "wonderland",
        CLUB,
        Duration::from_secs(6),
    );
    focus.wait_metric("focus_participants_active", Duration::from_secs(10), |v| {
        v == 1.0
    });
    assert_eq!(focus.metric("focus_auth_success_total"), Some(1.0));
    let shown = focus.admin("GET", "/v1/sessions/club", None);
    assert_eq!(shown.status, 200, "{}", shown.body);
    let roster = shown.json()["roster"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let uris: Vec<&str> = roster.iter().filter_map(|p| p["uri"].as_str()).collect();
    assert_eq!(uris, ["sip:alice@focus.example.com"], "{}", shown.body);
    assert_eq!(roster[0]["status"], "connected");
    right.wait(Duration::from_secs(20));
    focus.wait_metric("focus_participants_active", Duration::from_secs(10), |v| {
        v == 0.0
    });
    assert!(right.log().contains("Call established"), "{}", right.log());
}
