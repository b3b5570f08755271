//! The `cpm-focus` binary: command line, configuration, and the start and orderly stop of
//! the transports, the endpoint, the supervisor and the session arbiters.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use cpm_focus::config::{Config, LogFormat};
use cpm_focus::reload::{Reloader, Trigger};
use cpm_focus::server::Server;
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// mimalloc rather than glibc malloc: messages are allocated on the I/O threads and freed on
/// the session arbiters (and back), which glibc serves slowly and under arena locks.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// cpm-focus: the CPM Controlling Function, a SIP conference focus.
#[derive(Parser, Debug)]
#[command(version = cpm_focus::VERSION, about)]
struct Cli {
    /// Configuration file (default: the embedded config/focus.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// SIP addresses, UDP and TCP (port 0 picks a free port). Repeat the flag or separate
    /// addresses with commas to listen on IPv4 and IPv6 (`127.0.0.1:5060,[::1]:5060`); the
    /// first is the primary one [default: listen.sip of the configuration, 127.0.0.1:5060].
    #[arg(long, value_name = "IP:PORT", value_delimiter = ',')]
    sip_listen: Vec<SocketAddr>,
    /// MSRP (TCP) addresses for group chat, like --sip-listen [default: listen.msrp, else
    /// each SIP address with port 2855].
    #[arg(long, value_name = "IP:PORT", value_delimiter = ',')]
    msrp_listen: Vec<SocketAddr>,
    /// SIP over TLS addresses, used when [tls] is configured, like --sip-listen [default:
    /// listen.sips, else each SIP address with port 5061, or port 0 when its port is 0].
    #[arg(long, value_name = "IP:PORT", value_delimiter = ',')]
    sips_listen: Vec<SocketAddr>,
    /// Prometheus /metrics address [default: listen.metrics, 127.0.0.1:9464].
    #[arg(long, value_name = "IP:PORT")]
    metrics_listen: Option<SocketAddr>,
    /// Admin HTTP API address; a non-loopback address needs `[admin] token` [default:
    /// listen.admin, 127.0.0.1:8090].
    #[arg(long, value_name = "IP:PORT")]
    admin_listen: Option<SocketAddr>,
    /// Log format on stderr (default: `focus.log_format` of the configuration, `text`).
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// `--log-format` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validates a configuration file and reports every error with its key.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Prints the `[auth] credentials` line of a user: reads the password from the first
    /// line of standard input (never from the command line, which other users can see).
    HashPassword {
        /// The user name (the user part of the user's SIP URI).
        #[arg(long)]
        user: String,
        /// The digest realm (`auth.realm`, by default `focus.domain`).
        #[arg(long)]
        realm: String,
    },
}

/// `cpm-focus hash-password`: `user:realm:ha1_md5:ha1_sha256` on stdout.
fn hash_password(user: &str, realm: &str) -> anyhow::Result<()> {
    if user.is_empty() || user.contains(':') || realm.is_empty() || realm.contains(':') {
        anyhow::bail!("user and realm must be non-empty and without ':'");
    }
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    println!(
        "{}",
        cpm_focus::auth::credentials_line(user, realm, password)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::HashPassword { user, realm }) = &cli.command {
        return hash_password(user, realm);
    }
    if let Some(Command::CheckConfig { file }) = &cli.command {
        return match Config::load(file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                Ok(())
            }
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                std::process::exit(1);
            }
        };
    }
    let config = match &cli.config {
        Some(path) => Config::load(path),
        None => Config::embedded(),
    }
    .context("configuration")?;
    let format = match cli.log_format {
        Some(LogFormatArg::Text) => LogFormat::Text,
        Some(LogFormatArg::Json) => LogFormat::Json,
        None => config.focus.log_format,
    };
    init_logging(format);
    cpm_focus::log_limit::configure(
        config.focus.log_repeat_burst,
        Duration::from_secs(config.focus.log_repeat_interval_s),
    );

    // Session actors live on N arbiters (one thread each); transports and transaction shards
    // on a multi-threaded tokio runtime.
    let _system = actix::System::new();
    let arbiters: Vec<actix::Arbiter> = (0..config.arbiter_count())
        .map(|_| actix::Arbiter::new())
        .collect();
    let handles = arbiters.iter().map(|a| a.handle()).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("focus-io")
        .build()
        .context("tokio runtime")?;
    let code = runtime.block_on(run(cli, config, handles))?;
    for a in &arbiters {
        a.stop();
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

async fn run(
    cli: Cli,
    config: Config,
    arbiters: Vec<actix::dev::ArbiterHandle>,
) -> anyhow::Result<i32> {
    let handle = cpm_focus::metrics::install().context("metrics recorder")?;
    let cancel = CancellationToken::new();
    // The command line overrides [listen]; validation made every configured address parse.
    let listen = &config.listen;
    let metrics_listen = cli
        .metrics_listen
        .or(listen.metrics_addr())
        .context("listen.metrics")?;
    let admin_listen = cli
        .admin_listen
        .or(listen.admin_addr())
        .context("listen.admin")?;
    // A flag replaces its key; [listen] names one address per service.
    let or_config = |flags: Vec<SocketAddr>, configured: Option<SocketAddr>| {
        if flags.is_empty() {
            configured.into_iter().collect()
        } else {
            flags
        }
    };
    let sip_listen = or_config(cli.sip_listen.clone(), listen.sip_addr());
    anyhow::ensure!(!sip_listen.is_empty(), "listen.sip: no SIP address");
    let metrics_listener = tokio::net::TcpListener::bind(metrics_listen)
        .await
        .with_context(|| format!("binding metrics listener {metrics_listen}"))?;
    let metrics_addr = metrics_listener.local_addr()?;
    tokio::spawn(cpm_focus::metrics::serve(
        metrics_listener,
        handle,
        cancel.clone(),
    ));

    let auth = Arc::new(
        cpm_focus::admin::AdminAuth::new(admin_listen, &config.admin.token).context("admin API")?,
    );
    let admin_listener = tokio::net::TcpListener::bind(admin_listen)
        .await
        .with_context(|| format!("binding admin listener {admin_listen}"))?;
    let admin_addr = admin_listener.local_addr()?;

    // Handlers first: a SIGTERM right after the ready line must not kill us by default action
    // (nor a SIGHUP: its default action ends the process too).
    let signalled = wait_for_signal();
    let hangups = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let server = Server::start_listening(
        &config,
        cpm_focus::server::Listen {
            sip: sip_listen,
            msrp: or_config(cli.msrp_listen.clone(), listen.msrp_addr()),
            sips: or_config(cli.sips_listen.clone(), listen.sips_addr()),
        },
        arbiters,
    )?;
    let reloader = Arc::new(
        Reloader::new(
            cli.config.clone(),
            config.clone(),
            server.supervisor.clone(),
            Some(auth.clone()),
        )
        .with_tls(server.tls_certs.clone()),
    );
    tokio::spawn(reload_on_hangup(hangups, reloader.clone()));
    // Groups from the XDMS (cache file first): before the ready line, so a cached group is
    // joinable as soon as the focus says it is ready.
    cpm_focus::xdms::spawn(
        &config,
        server.supervisor.clone(),
        server.endpoint.clone(),
        cancel.clone(),
    )
    .context("[xdms]")?;
    let api = Arc::new(cpm_focus::admin::AdminApi::new(
        server.supervisor.clone(),
        Some(reloader),
        auth,
    ));
    let admin_config = config.admin.clone();
    let admin_cancel = cancel.clone();
    tokio::spawn(async move {
        cpm_focus::admin::serve(admin_listener, api, &admin_config, admin_cancel).await
    });
    tracing::info!(
        sip_udp = %server.udp_addr, sip_tcp = %server.tcp_addr, metrics = %metrics_addr,
        sip_tls = ?server.tls_addr,
        admin = %admin_addr, version = cpm_focus::VERSION,
        domain = %config.focus.domain, instance = %config.focus.instance_id,
        groups = config.groups.len(), "cpm-focus ready"
    );
    // One machine-readable line for scripts and tests.
    // Addresses beyond the primary ones (a second IP family) repeat their key at the end.
    let more: String = server
        .more_addrs
        .iter()
        .map(|(key, addr)| format!(" {key}={addr}"))
        .collect();
    println!(
        "cpm-focus ready sip_udp={} sip_tcp={} metrics={} msrp={} sip_tls={} bfcp={} admin={}{more}",
        server.udp_addr,
        server.tcp_addr,
        metrics_addr,
        server
            .msrp_addr
            .map_or_else(|| "off".to_string(), |a| a.to_string()),
        server
            .tls_addr
            .map_or_else(|| "off".to_string(), |a| a.to_string()),
        server
            .talk
            .as_ref()
            .map_or_else(|| "off".to_string(), |t| t.floor.local_addr().to_string()),
        admin_addr
    );

    // Every listener is bound: tell systemd (Type=notify), and keep its watchdog fed from
    // this runtime, so a focus whose I/O runtime stops is restarted.
    if let Err(e) = cpm_focus::notify::notify("READY=1") {
        tracing::warn!(error = %e, "sd_notify READY=1 failed");
    }
    if let Some(every) = cpm_focus::notify::watchdog_interval() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = cpm_focus::notify::notify("WATCHDOG=1") {
                    tracing::warn!(error = %e, "sd_notify WATCHDOG=1 failed");
                }
            }
        });
    }

    signalled.await;
    let _ = cpm_focus::notify::notify("STOPPING=1");
    tracing::info!("shutting down: ending sessions");
    server.shutdown().await;
    cancel.cancel();
    tracing::info!("stopped");
    Ok(0)
}

/// The log on stderr: `RUST_LOG` sets the filter (default `info`). Text lines carry ANSI
/// colours only when stderr is a terminal (never in the journal or a file); JSON is one object
/// per line, its fields at the top level.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
}

/// Reloads the configuration on every SIGHUP (`systemctl reload`); a refused file is logged
/// and the running configuration stays.
async fn reload_on_hangup(mut hangups: tokio::signal::unix::Signal, reloader: Arc<Reloader>) {
    while hangups.recv().await.is_some() {
        let r = reloader.clone();
        // File reading and validation are blocking work; the outcome is logged and counted.
        let _ = tokio::task::spawn_blocking(move || r.reload(Trigger::Signal, "SIGHUP")).await;
    }
}

/// Installs the SIGTERM and SIGINT handlers now and returns the wait for either.
fn wait_for_signal() -> impl std::future::Future<Output = ()> {
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
