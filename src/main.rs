//! The `cpm-focus` binary: command line, configuration, and the start and orderly stop of
//! the transports, the endpoint, the supervisor and the session arbiters.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use cpm_focus::config::Config;
use cpm_focus::endpoint::{Endpoint, EndpointSettings};
use cpm_focus::sip::ParseLimits;
use cpm_focus::supervisor::{Supervisor, SupervisorSettings};
use cpm_focus::transport::{Sink, TcpRegistry, TcpSettings, Transports, UdpTransport};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// cpm-focus: the CPM Controlling Function, a SIP conference focus.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Configuration file (default: the embedded config/focus.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// SIP address, UDP and TCP (port 0 picks a free port).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:5060")]
    sip_listen: SocketAddr,
    /// Prometheus /metrics address.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:9090")]
    metrics_listen: SocketAddr,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validates a configuration file and reports every error with its key.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match &cli.config {
        Some(path) => Config::load(path),
        None => Config::embedded(),
    }
    .context("configuration")?;

    // Session actors live on N arbiters (one thread each); transports and transaction shards
    // on a multi-threaded tokio runtime.
    let _system = actix::System::new();
    let arbiters: Vec<actix::Arbiter> = (0..config.arbiter_count()).map(|_| actix::Arbiter::new()).collect();
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

async fn run(cli: Cli, config: Config, arbiters: Vec<actix::dev::ArbiterHandle>) -> anyhow::Result<i32> {
    let handle = cpm_focus::metrics::install().context("metrics recorder")?;
    let cancel = CancellationToken::new();
    let metrics_listener = tokio::net::TcpListener::bind(cli.metrics_listen)
        .await
        .with_context(|| format!("binding metrics listener {}", cli.metrics_listen))?;
    let metrics_addr = metrics_listener.local_addr()?;
    tokio::spawn(cpm_focus::metrics::serve(metrics_listener, handle, cancel.clone()));

    let limits = ParseLimits {
        max_headers: config.sip.max_headers,
    };
    let transport_cancel = CancellationToken::new();
    let tcp_settings = TcpSettings {
        max_message: config.sip.max_message_size,
        max_connections: config.sip.max_tcp_connections,
        idle_timeout: Duration::from_secs(config.sip.tcp_idle_timeout_s),
        write_queue: config.sip.tcp_write_queue,
        limits,
    };
    // TCP on the same address (and the same port when UDP picked one). A port UDP picked may
    // be taken for TCP (by another socket's ephemeral port): then pick again.
    let mut attempt = 0;
    let (udp, tcp) = loop {
        attempt += 1;
        let udp = Arc::new(
            UdpTransport::bind(cli.sip_listen)
                .with_context(|| format!("binding UDP {}", cli.sip_listen))?,
        );
        let tcp_addr = SocketAddr::new(cli.sip_listen.ip(), udp.local_addr().port());
        match TcpRegistry::bind(tcp_addr, tcp_settings, transport_cancel.clone()) {
            Ok(tcp) => break (udp, Arc::new(tcp)),
            Err(_) if cli.sip_listen.port() == 0 && attempt < 20 => continue,
            Err(e) => return Err(e).with_context(|| format!("binding TCP {tcp_addr}")),
        }
    };
    let transports = Transports {
        udp: udp.clone(),
        tcp: tcp.clone(),
    };
    let advertised = advertised_host(&config, cli.sip_listen.ip());
    let shards = std::thread::available_parallelism().map_or(2, |n| n.get());
    let endpoint = Endpoint::start(
        transports,
        EndpointSettings {
            timers: config.sip.timers(),
            force_rport: config.sip.force_rport,
            max_transactions: config.sip.max_transactions,
            retry_after_s: config.supervisor.retry_after_s,
            advertised_host: advertised.clone(),
            outbound_proxy: (!config.sip.outbound_proxy.is_empty()).then(|| config.sip.outbound_proxy.clone()),
            shard_queue: config.sip.queue_depth,
            shards,
        },
    );
    let domain = cpm_focus::sip::Host::parse(&config.focus.domain)
        .map_err(|e| anyhow::anyhow!("focus.domain: {e}"))?;
    let supervisor = Arc::new(Supervisor::new(
        &config,
        SupervisorSettings {
            domain,
            local_ips: vec![cli.sip_listen.ip()],
            advertised_host: advertised.clone(),
            udp_port: udp.local_addr().port(),
            tcp_port: tcp.local_addr().port(),
            mailbox_capacity: config.supervisor.mailbox_capacity,
            max_sessions: config.supervisor.max_sessions,
            retry_after_s: config.supervisor.retry_after_s,
        },
        endpoint.clone(),
        arbiters,
    ));
    endpoint.set_router(supervisor.clone());
    let sink: Arc<dyn Sink> = Arc::new(endpoint.clone());
    tokio::spawn(udp.clone().run(
        sink.clone(),
        config.sip.max_message_size,
        limits,
        transport_cancel.clone(),
    ));
    tokio::spawn(tcp.clone().run(sink));

    // Handlers first: a SIGTERM right after the ready line must not kill us by default action.
    let signalled = wait_for_signal();
    tracing::info!(
        sip_udp = %udp.local_addr(), sip_tcp = %tcp.local_addr(), metrics = %metrics_addr,
        domain = %config.focus.domain, groups = config.groups.len(), "cpm-focus ready"
    );
    // One machine-readable line for scripts and tests.
    println!(
        "cpm-focus ready sip_udp={} sip_tcp={} metrics={}",
        udp.local_addr(),
        tcp.local_addr(),
        metrics_addr
    );

    signalled.await;
    tracing::info!("shutting down: ending sessions");
    supervisor
        .shutdown(Duration::from_secs(config.shutdown.grace_s))
        .await;
    transport_cancel.cancel();
    cancel.cancel();
    tracing::info!("stopped");
    Ok(0)
}

/// Installs the SIGTERM and SIGINT handlers now and returns the wait for either.
fn wait_for_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
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

/// The host written into Via, Contact and SDP.
fn advertised_host(config: &Config, listen: IpAddr) -> String {
    if !config.sip.advertise.is_empty() {
        return config.sip.advertise.clone();
    }
    if !listen.is_unspecified() {
        return listen.to_string();
    }
    // The address of the interface with the default route (no packet is sent).
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("192.0.2.1:9")?;
            s.local_addr()
        })
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| "127.0.0.1".into())
}
