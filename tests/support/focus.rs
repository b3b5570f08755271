//! The focus under test: one `cpm-focus` process per test, on ephemeral ports.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use toml::{Table, Value};

/// Settings every test focus gets before the test's own: NOTIFYs are not rate limited (tests
/// that exercise coalescing set `min_notify_interval_ms` themselves), and the session
/// arbiters match the two cores of the test machine.
const TEST_DEFAULTS: &str = r#"
[subscriptions]
min_notify_interval_ms = 0
[supervisor]
arbiters = 2
"#;

/// How long the focus may take to print its ready line (a cold start on a loaded machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

static CONFIGS: AtomicUsize = AtomicUsize::new(0);

/// How a focus process is started beyond its configuration.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Extra environment variables (e.g. the fault-injection switch).
    pub env: Vec<(String, String)>,
    /// The SIP address to listen on (default `127.0.0.1:0`); a restart reuses the port.
    pub sip_listen: Option<SocketAddr>,
    /// Extra command-line arguments (e.g. `--log-format json`).
    pub args: Vec<String>,
    /// Environment variables removed after the test defaults (e.g. `NO_COLOR`).
    pub env_remove: Vec<String>,
    /// The loopback addresses SIP, SIP over TLS and MSRP listen on, with ports the OS
    /// picks (default `127.0.0.1`; `[::1]` for IPv6, both for a dual-stack focus). The first
    /// is the primary one. `sip_listen`, when set, replaces the SIP addresses.
    pub ips: Vec<IpAddr>,
}

/// A running focus; killed (and its config file removed) on drop. When the test is failing,
/// drop prints the focus's log to help find out why.
pub struct Focus {
    child: Child,
    /// SIP over UDP.
    pub sip_udp: SocketAddr,
    /// SIP over TCP (same port as UDP).
    pub sip_tcp: SocketAddr,
    /// SIP over TLS (`None` when `[tls]` is not configured: the ready line says `off`).
    pub sip_tls: Option<SocketAddr>,
    /// The `/metrics` HTTP listener.
    pub metrics_addr: SocketAddr,
    /// The MSRP listener (`None` when `[msrp] enabled = false`: the ready line says `off`).
    pub msrp: Option<SocketAddr>,
    /// The admin HTTP API.
    pub admin_addr: SocketAddr,
    /// Every address of the ready line by key, in order (a dual-stack focus repeats
    /// `sip_udp`, `sip_tcp`, `sip_tls` and `msrp` for its second family).
    pub addrs: Vec<(String, SocketAddr)>,
    /// Everything the focus wrote on stderr (its tracing log).
    log: Arc<Mutex<String>>,
    config_path: PathBuf,
    exited: Option<ExitStatus>,
    /// The configuration text and launch options, for [`Focus::restart`].
    config_text: String,
    launch: Launch,
}

impl Focus {
    /// Starts a focus with the embedded configuration, the test defaults and `extra_toml`
    /// merged over it (keys replace keys; a `[[groups]]` entry replaces the fields of the
    /// group with the same `uri`, or adds a group).
    pub fn start(extra_toml: &str) -> Focus {
        Focus::launch(extra_toml, Launch::default())
    }

    /// [`Focus::start`] with launch options.
    pub fn launch(extra_toml: &str, launch: Launch) -> Focus {
        Focus::spawn(config_text(extra_toml), launch)
    }

    /// A new focus process with this one's configuration and launch options, listening for
    /// SIP on this one's address (kill this one first: [`Focus::kill`]).
    pub fn restart(&self) -> Focus {
        let launch = Launch {
            sip_listen: Some(self.sip_udp),
            ..self.launch.clone()
        };
        Focus::spawn(self.config_text.clone(), launch)
    }

    fn spawn(text: String, launch: Launch) -> Focus {
        let n = CONFIGS.fetch_add(1, Ordering::Relaxed);
        let config_path =
            std::env::temp_dir().join(format!("cpm-focus-e2e-{}-{n}.toml", std::process::id()));
        std::fs::write(&config_path, &text).expect("writing the test config");
        let ips = if launch.ips.is_empty() {
            vec![IpAddr::from([127, 0, 0, 1])]
        } else {
            launch.ips.clone()
        };
        let any_port = ips
            .iter()
            .map(|ip| SocketAddr::new(*ip, 0).to_string())
            .collect::<Vec<_>>()
            .join(",");
        let sip_listen = launch
            .sip_listen
            .map_or_else(|| any_port.clone(), |a| a.to_string());
        let mut command = Command::new(env!("CARGO_BIN_EXE_cpm-focus"));
        command
            .arg("--config")
            .arg(&config_path)
            .args([
                "--sips-listen",
                &any_port,
                "--sip-listen",
                &sip_listen,
                "--metrics-listen",
                "127.0.0.1:0",
                "--msrp-listen",
                &any_port,
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "cpm_focus=debug,info")
            .env("NO_COLOR", "1")
            .args(&launch.args)
            .envs(launch.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in &launch.env_remove {
            command.env_remove(k);
        }
        let mut child = command.spawn().expect("spawning cpm-focus");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep reading to the end so the focus never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("cpm-focus ready ") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "focus not ready within {READY_TIMEOUT:?} ({status:?}); config:\n{text}\nlog:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        let value = |name: &str| -> &str {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("no {name}= in ready line {line:?}"))
        };
        let field = |name: &str| -> SocketAddr {
            let v = value(name);
            v.parse()
                .unwrap_or_else(|e| panic!("{name}={v} in ready line {line:?}: {e}"))
        };
        let msrp = match value("msrp") {
            "off" => None,
            _ => Some(field("msrp")),
        };
        let sip_tls = match value("sip_tls") {
            "off" => None,
            _ => Some(field("sip_tls")),
        };
        // Every `key=IP:PORT` of the line, repeated keys included (a second IP family).
        let addrs = line
            .split_whitespace()
            .filter_map(|w| {
                let (k, v) = w.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect();
        Focus {
            addrs,
            sip_tls,
            sip_udp: field("sip_udp"),
            sip_tcp: field("sip_tcp"),
            metrics_addr: field("metrics"),
            admin_addr: field("admin"),
            msrp,
            child,
            log,
            config_path,
            exited: None,
            config_text: text,
            launch,
        }
    }

    /// The address of service `key` (`sip_udp`, `sip_tcp`, `msrp`...) in `ip`'s family.
    pub fn addr_of(&self, key: &str, ip: IpAddr) -> SocketAddr {
        self.addrs
            .iter()
            .find(|(k, a)| k == key && a.is_ipv6() == ip.is_ipv6())
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no {key} address of {ip}'s family: {:?}", self.addrs))
    }

    /// Kills the process with SIGKILL (a crash: no cleanup of any kind) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let status = self.child.wait().expect("reaping the killed focus");
        self.exited = Some(status);
    }

    /// The focus's log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits up to `within` for a log line containing `needle`: the log arrives on its own
    /// pipe, so it can lag the ready line and the responses a test has already seen.
    pub fn log_contains(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.log.lock().unwrap().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The configuration file the focus was started with (a reload re-reads it).
    pub fn config_path(&self) -> &std::path::Path {
        &self.config_path
    }

    /// Sends SIGHUP (configuration reload).
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -HUP failed: {status}");
    }

    /// The operating-system process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET /metrics`: the Prometheus text.
    pub fn metrics(&self) -> String {
        scrape(self.metrics_addr, super::WAIT)
    }

    /// The value of one series (`name` or `name{labels}` exactly as rendered), if present.
    pub fn metric(&self, series: &str) -> Option<f64> {
        metric_in(&self.metrics(), series)
    }

    /// Waits until series `series` has a value `pred` accepts (metrics change after the
    /// messages that cause them, on the focus's own schedule); panics after `timeout`.
    pub fn wait_metric(&self, series: &str, timeout: Duration, pred: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.metric(series);
            if let Some(v) = v.filter(|v| pred(*v)) {
                return v;
            }
            if Instant::now() >= deadline {
                panic!("{series} is {v:?} after {timeout:?}");
            }
            // /metrics has no change notification: poll it.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Waits for the process to exit; panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return status;
            }
            if Instant::now() >= deadline {
                panic!("focus did not exit within {timeout:?}");
            }
            // Process exit has no receive-with-timeout in std: poll it.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Focus {
    fn drop(&mut self) {
        if std::thread::panicking() && self.exited.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                eprintln!("---- the focus had exited on its own: {status} ----");
                self.exited = Some(status);
            }
        }
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(200).collect();
            eprintln!("---- focus log (last {} lines) ----", tail.len());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
            eprintln!("---- end of focus log ----");
        }
        let _ = std::fs::remove_file(&self.config_path);
    }
}

/// The value of one series in Prometheus text.
/// `GET /metrics` at `addr`, each step within `timeout`: the Prometheus text.
pub fn scrape(addr: SocketAddr, timeout: Duration) -> String {
    let mut s = TcpStream::connect_timeout(&addr, timeout).expect("connecting to /metrics");
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).expect("reading /metrics");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    body.to_string()
}

/// The value of one series on `focus`, 0 when it is not served yet (a counter appears at its
/// first increment, so "absent" and "0" mean the same to a test).
pub fn metric(focus: &Focus, series: &str) -> f64 {
    focus.metric(series).unwrap_or(0.0)
}

pub fn metric_in(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The configuration file a test focus runs with.
pub fn config_text(extra_toml: &str) -> String {
    let mut table: Table =
        toml::from_str(cpm_focus::config::DEFAULT_TOML).expect("embedded config");
    for layer in [TEST_DEFAULTS, extra_toml] {
        let over: Table = toml::from_str(layer)
            .unwrap_or_else(|e| panic!("test config {layer:?} is not TOML: {e}"));
        merge(&mut table, over);
    }
    let text = toml::to_string(&table).expect("serialising config");
    cpm_focus::config::Config::from_toml(&text)
        .unwrap_or_else(|e| panic!("test config refused: {e}\n{text}"));
    text
}

fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (Some(Value::Array(b)), Value::Array(o)) if key == "groups" => {
                for group in o {
                    let Value::Table(g) = group else {
                        panic!("[[groups]] entry is not a table")
                    };
                    let uri = g.get("uri").cloned();
                    let same = b.iter_mut().find(|e| {
                        uri.is_some() && e.as_table().and_then(|t| t.get("uri")) == uri.as_ref()
                    });
                    match same {
                        Some(Value::Table(existing)) => merge(existing, g),
                        _ => b.push(Value::Table(g)),
                    }
                }
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}
