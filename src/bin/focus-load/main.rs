//! focus-load: drives a running cpm-focus over real sockets (SIP over UDP, MSRP over TCP) and
//! prints one summary line per phase: rate, completed, failed, latency percentiles, and the
//! focus's CPU seconds and RSS (from `/proc/<pid>` with `--focus-pid`).
//!
//! Scenarios (see `focus-load help <scenario>`): `join-leave`, `group-chat`, `group-message`,
//! `roster-storm`, `idle-soak`; `config` prints a focus configuration with many groups for
//! them. The exit status is 1 when a phase failed more than `--max-fail-ratio` or a check
//! (loss, duplicates, NOTIFY versions) failed.

mod agent;
mod group_chat;
mod group_message;
mod join_leave;
mod report;
mod roster;
mod track;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "focus-load", about = "Load generator for cpm-focus")]
struct Cli {
    /// The focus's SIP address (UDP).
    #[arg(long, global = true, default_value = "127.0.0.1:5060")]
    focus: SocketAddr,
    /// The focus's process id: CPU seconds and RSS per phase come from /proc/<pid>.
    #[arg(long, global = true)]
    focus_pid: Option<u32>,
    /// The focus's domain (host part of group URIs).
    #[arg(long, global = true, default_value = "focus.example.com")]
    domain: String,
    /// Print each phase summary as one JSON object per line instead of key=value text.
    #[arg(long, global = true)]
    json: bool,
    /// Worker threads of the tool's runtime.
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    /// Failures allowed per phase, as a fraction of its operations (0.001 = 0.1%).
    #[arg(long, global = true, default_value_t = 0.0)]
    max_fail_ratio: f64,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Which groups a scenario uses: `--groups 0` is the single group `sip:PREFIX@DOMAIN`;
/// `--groups N` is `sip:PREFIX0@DOMAIN` .. `sip:PREFIX<N-1>@DOMAIN` (see `config`).
#[derive(Args, Debug, Clone)]
pub struct GroupArgs {
    /// User part of the group URIs (with --groups N, followed by 0..N-1).
    #[arg(long, default_value = "team")]
    prefix: String,
    /// Number of groups; 0 means the one group named by --prefix.
    #[arg(long, default_value_t = 0)]
    groups: usize,
}

impl GroupArgs {
    pub fn count(&self) -> usize {
        self.groups.max(1)
    }

    /// URI of group `i` (modulo the count).
    pub fn uri(&self, i: usize, domain: &str) -> String {
        if self.groups == 0 {
            format!("sip:{}@{domain}", self.prefix)
        } else {
            format!("sip:{}{}@{domain}", self.prefix, i % self.groups)
        }
    }
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Prints a focus configuration (TOML) with N open groups for load runs.
    Config {
        #[arg(long, default_value = "team")]
        prefix: String,
        #[arg(long, default_value_t = 100)]
        groups: usize,
        /// Participant limit of each group (and of the provider policy).
        #[arg(long, default_value_t = 1000)]
        max_participants: usize,
        /// Group messages one session relays per second (policy.pager_rate).
        #[arg(long, default_value_t = 100_000)]
        pager_rate: u32,
        /// Least time between NOTIFYs to one subscriber, ms.
        #[arg(long, default_value_t = 1000)]
        min_notify_interval_ms: u64,
    },
    /// INVITE/ACK/BYE to the groups at a target rate.
    JoinLeave(join_leave::Opts),
    /// N sessions of M participants over MSRP, each message delivered to the others.
    GroupChat(group_chat::Opts),
    /// Pager-mode MESSAGE to groups of M members that the tool answers.
    GroupMessage(group_message::Opts),
    /// M participants and S subscribers in one session, joins and leaves at a rate.
    RosterStorm(roster::StormOpts),
    /// S sessions of M idle participants with subscriptions: RSS per participant.
    IdleSoak(roster::SoakOpts),
}

/// What every scenario gets.
pub struct Ctx {
    pub focus: SocketAddr,
    pub pid: Option<u32>,
    pub domain: String,
    json: bool,
    max_fail_ratio: f64,
    pub failed_checks: std::sync::atomic::AtomicBool,
}

impl Ctx {
    /// Prints a finished phase and remembers whether it failed beyond the allowed ratio.
    pub fn report(&self, phase: &report::Phase) -> Value {
        let v = phase.finish();
        if self.json {
            println!("{v}");
        } else {
            println!("{}", report::line(&v));
        }
        let failed = phase.failed() as f64;
        let total = failed + phase.completed() as f64;
        if failed > 0.0 && failed > self.max_fail_ratio * total {
            self.failed_checks
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        v
    }
}

/// Calls `f(i)` for i in 0..total, spread evenly at `rate` per second from now.
pub async fn pace(rate: f64, total: u64, mut f: impl FnMut(u64)) {
    let start = tokio::time::Instant::now();
    let rate = rate.max(1e-3);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if due > tokio::time::Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        f(i);
    }
}

/// Waits until `done()` or `timeout`; false on timeout. (A load tool may poll: the scenario's
/// own counters have no change notification.)
pub async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

fn config_toml(
    prefix: &str,
    groups: usize,
    max_participants: usize,
    pager_rate: u32,
    min_notify_interval_ms: u64,
    domain: &str,
) -> String {
    let mut s = String::new();
    s.push_str("# Generated by `focus-load config`: open groups for load runs.\n");
    s.push_str(&format!(
        "[supervisor]\nmax_sessions = {}\n\n",
        (groups + 16).max(10_000)
    ));
    s.push_str(&format!(
        "[subscriptions]\nmin_notify_interval_ms = {min_notify_interval_ms}\n\n"
    ));
    s.push_str(&format!(
        "[policy]\nmax_participants_per_session = {max_participants}\npager_rate = {pager_rate}\npager_queue = {}\n# One load sender plays many: no per-sender message rate.\npager_rate_per_sender = 0\n",
        (pager_rate as usize * 2).max(20_000)
    ));
    for i in 0..groups {
        s.push_str(&format!(
            "\n[[groups]]\nuri = \"sip:{prefix}{i}@{domain}\"\nmax_participants = {max_participants}\n"
        ));
    }
    s
}

fn main() {
    let cli = Cli::parse();
    if let Cmd::Config {
        prefix,
        groups,
        max_participants,
        pager_rate,
        min_notify_interval_ms,
    } = &cli.cmd
    {
        print!(
            "{}",
            config_toml(
                prefix,
                *groups,
                *max_participants,
                *pager_rate,
                *min_notify_interval_ms,
                &cli.domain
            )
        );
        return;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("focus-load: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    let ctx = std::sync::Arc::new(Ctx {
        focus: cli.focus,
        pid: cli.focus_pid,
        domain: cli.domain.clone(),
        json: cli.json,
        max_fail_ratio: cli.max_fail_ratio,
        failed_checks: std::sync::atomic::AtomicBool::new(false),
    });
    let result = rt.block_on(async {
        match cli.cmd {
            Cmd::Config { .. } => Ok(()),
            Cmd::JoinLeave(o) => join_leave::run(ctx.clone(), o).await,
            Cmd::GroupChat(o) => group_chat::run(ctx.clone(), o).await,
            Cmd::GroupMessage(o) => group_message::run(ctx.clone(), o).await,
            Cmd::RosterStorm(o) => roster::storm(ctx.clone(), o).await,
            Cmd::IdleSoak(o) => roster::soak(ctx.clone(), o).await,
        }
    });
    // Tasks still waiting on the focus (it stopped answering) must not hold the exit.
    rt.shutdown_timeout(Duration::from_millis(100));
    if let Err(e) = result {
        eprintln!("focus-load: {e}");
        std::process::exit(2);
    }
    if ctx.failed_checks.load(std::sync::atomic::Ordering::Relaxed) {
        std::process::exit(1);
    }
}
