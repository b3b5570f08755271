//! Assembles a running focus: transports, endpoint, supervisor and their tasks. `main` adds
//! the command line, the metrics exporter and signals; tests start a server in-process.

use crate::charging::{ChargingHandle, ChargingWriter};
use crate::config::Config;
use crate::endpoint::{Endpoint, EndpointSettings};
use crate::media::msrp::switch::{Switch, SwitchSettings};
use crate::session::MsrpOffer;
use crate::sip::{Host, ParseLimits};
use crate::supervisor::{Supervisor, SupervisorSettings};
use crate::transport::{
    ConnLimits, Face, PerFamily, Sink, TcpRegistry, TcpSettings, TlsContext, Transports,
    UdpTransport,
};
use actix::dev::ArbiterHandle;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// Why the focus could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error("binding {what} {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no SIP listen address")]
    NoAddress,
    #[error("focus.domain: {0}")]
    Domain(crate::sip::UriError),
    #[error("charging: {0}")]
    Charging(#[from] crate::charging::ChargingError),
    #[error("{0}")]
    Tls(#[from] crate::transport::TlsError),
    #[error("journal: {0}")]
    Journal(#[from] crate::recovery::journal::JournalError),
    #[error("auth.credentials: {0}")]
    Auth(String),
}

/// Where the focus listens. Each list may name IPv4 and IPv6 addresses (at most one per
/// family is advertised: the first); the first SIP address is the primary one.
#[derive(Debug, Clone)]
pub struct Listen {
    /// SIP over UDP and TCP (the same port per address; port 0 picks one). At least one.
    pub sip: Vec<SocketAddr>,
    /// MSRP (plain and TLS); empty: each SIP address with port 2855.
    pub msrp: Vec<SocketAddr>,
    /// SIP over TLS when `[tls]` is set; empty: each SIP address with port 5061.
    pub sips: Vec<SocketAddr>,
}

impl Listen {
    /// SIP on `sip`, MSRP on `msrp` (or beside SIP), TLS beside SIP.
    pub fn single(sip: SocketAddr, msrp: Option<SocketAddr>) -> Listen {
        Listen {
            sip: vec![sip],
            msrp: msrp.into_iter().collect(),
            sips: Vec::new(),
        }
    }
}

/// A running focus.
pub struct Server {
    pub supervisor: Arc<Supervisor>,
    pub endpoint: Endpoint,
    /// The primary SIP addresses (the first listed).
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    /// SIP over TLS, when `[tls]` is configured.
    pub tls_addr: Option<SocketAddr>,
    /// The certificate TLS handshakes present (SIP and MSRP), reloadable.
    pub tls_certs: Option<Arc<crate::transport::tls::CertStore>>,
    /// The MSRP listener, when the switch runs.
    pub msrp_addr: Option<SocketAddr>,
    /// Every bound address beyond the primary ones (a focus on IPv4 and IPv6), as
    /// `(service, address)`: `sip_udp`, `sip_tcp`, `sip_tls`, `msrp`.
    pub more_addrs: Vec<(&'static str, SocketAddr)>,
    pub switch: Option<Arc<Switch>>,
    /// The RTP plane and BFCP listener (talk bursts), when the focus serves audio.
    pub talk: Option<crate::push_to_talk::talk_burst::TalkPlanes>,
    /// Offline charging records.
    pub charging: ChargingHandle,
    /// The membership journal (crash recovery).
    pub journal: crate::recovery::journal::JournalHandle,
    /// What crash recovery found at start.
    pub recovered: crate::recovery::Outcome,
    cancel: CancellationToken,
    grace: Duration,
}

impl Server {
    /// Binds UDP and TCP on `listen` (the same port for both; port 0 picks one) and starts
    /// the endpoint and the supervisor, with session actors on `arbiters`. Must be called
    /// inside a multi-threaded tokio runtime.
    pub fn start(
        config: &Config,
        listen: SocketAddr,
        msrp_listen: Option<SocketAddr>,
        arbiters: Vec<ArbiterHandle>,
    ) -> Result<Server, StartError> {
        Self::start_listening(config, Listen::single(listen, msrp_listen), arbiters)
    }

    /// [`Server::start`] with every listening address given.
    pub fn start_listening(
        config: &Config,
        addrs: Listen,
        arbiters: Vec<ArbiterHandle>,
    ) -> Result<Server, StartError> {
        if addrs.sip.is_empty() {
            return Err(StartError::NoAddress);
        }
        let sip_ips: Vec<IpAddr> = addrs.sip.iter().map(SocketAddr::ip).collect();
        let limits = ParseLimits {
            max_headers: config.sip.max_headers,
        };
        let cancel = CancellationToken::new();
        let tls = TlsContext::load(&config.tls)?;
        if tls.is_none() {
            tracing::info!("TLS off: [tls] cert_file is not set (no sips: listener, no msrps:)");
        }
        crate::policy::Trust::from_policy(&config.policy).warn_if_lab_mode();
        let trusted = config.overload.trusted(&config.policy);
        crate::transport::init_stream_metrics();
        crate::overload::ShareRefusal::init_metrics();
        let tcp_settings = TcpSettings {
            max_message: config.sip.max_message_size,
            idle_timeout: Duration::from_secs(config.sip.tcp_idle_timeout_s),
            message_timeout: Duration::from_secs(config.sip.tcp_message_timeout_s),
            write_queue: config.sip.tcp_write_queue,
            write_timeout: Duration::from_secs(config.sip.tcp_write_timeout_s),
            first_byte_timeout: Duration::from_millis(config.sip.tcp_first_byte_timeout_ms),
            limits,
        };
        let slots = Arc::new(
            ConnLimits::new(
                config.sip.max_tcp_connections,
                config.sip.max_tcp_connections_per_source,
                trusted.clone(),
            )
            .with_shares(
                config.sip.max_tcp_connections * usize::from(config.sip.tcp_trusted_reserve_pct)
                    / 100,
                config.sip.tcp_evict_unadmitted,
            ),
        );
        // TCP on the same addresses, and on the ports UDP picked when asked for port 0. Such a
        // port may be taken for TCP (another socket's ephemeral port): then pick again.
        let any_zero = addrs.sip.iter().any(|a| a.port() == 0);
        let mut attempt = 0;
        let (udp, tcp) = loop {
            attempt += 1;
            let udp = Arc::new(
                UdpTransport::bind_all(&addrs.sip).map_err(|(addr, source)| StartError::Bind {
                    what: "UDP",
                    addr,
                    source,
                })?,
            );
            let tcp_addrs = udp.local_addrs().to_vec();
            match TcpRegistry::bind_all(&tcp_addrs, tcp_settings, slots.clone(), cancel.clone()) {
                Ok(tcp) => break (udp, tcp),
                Err(_) if any_zero && attempt < 20 => continue,
                Err((addr, source)) => {
                    return Err(StartError::Bind {
                        what: "TCP",
                        addr,
                        source,
                    })
                }
            }
        };
        // SIP over TLS: default port 5061 beside each SIP address (port 0 when SIP picked its
        // own).
        let sips = match &tls {
            None => None,
            Some(ctx) => {
                let tls_addrs = beside(&addrs.sips, &addrs.sip, 5061);
                let mut reg = TcpRegistry::bind_tls(
                    &tls_addrs,
                    ctx.clone(),
                    tcp_settings,
                    slots.clone(),
                    cancel.clone(),
                )
                .map_err(|(addr, source)| StartError::Bind {
                    what: "TLS",
                    addr,
                    source,
                })?;
                reg.share_ids(&tcp);
                Some(Arc::new(reg))
            }
        };
        let tcp = Arc::new(tcp);
        let transports = Transports {
            udp: udp.clone(),
            tcp: tcp.clone(),
            tls: sips.clone(),
        };
        let advertise = parse_advertise(&config.sip.advertise);
        let faces = faces(&advertise, &udp, &tcp, sips.as_deref());
        let shards = std::thread::available_parallelism().map_or(2, |n| n.get());
        let endpoint = Endpoint::start(
            transports,
            EndpointSettings {
                timers: crate::transaction::TimerConfig::from_config(&config.sip),
                force_rport: config.sip.force_rport,
                max_transactions: config.sip.max_transactions,
                retry_after_s: config.supervisor.retry_after_s,
                advertised: faces.map(|f| f.host.clone()),
                outbound_proxy: (!config.sip.outbound_proxy.is_empty())
                    .then(|| config.sip.outbound_proxy.clone()),
                shard_queue: config.sip.queue_depth,
                shards,
                max_queue_delay: config.overload.max_queue_delay(),
                max_datagram: config.sip.max_datagram_size,
            },
        );
        let domain = Host::parse(&config.focus.domain).map_err(StartError::Domain)?;
        let (charging, _writer) = ChargingWriter::start(config)?;
        let credit =
            crate::charging::CreditGate::from_config(&config.charging, &config.tls.ca_file)?;
        let mut more_addrs: Vec<(&'static str, SocketAddr)> = Vec::new();
        more_addrs.extend(udp.local_addrs().iter().skip(1).map(|a| ("sip_udp", *a)));
        more_addrs.extend(tcp.local_addrs().iter().skip(1).map(|a| ("sip_tcp", *a)));
        if let Some(t) = &sips {
            more_addrs.extend(t.local_addrs().iter().skip(1).map(|a| ("sip_tls", *a)));
        }
        // The MSRP switch: default listeners beside SIP, on port 2855 (RFC 4975's port).
        let (switch, msrp_addr, msrp_offer) = if config.msrp.enabled {
            let mut bound = Vec::new();
            let mut listeners = Vec::new();
            let msrp_addrs = beside(&addrs.msrp, &addrs.sip, 2855);
            let both = crate::transport::both_families(&msrp_addrs);
            for addr in msrp_addrs {
                let bind_err = |source| StartError::Bind {
                    what: "MSRP",
                    addr,
                    source,
                };
                let listener = crate::transport::bind_listener(addr, both).map_err(bind_err)?;
                bound.push(listener.local_addr().map_err(bind_err)?);
                listeners.push(listener);
            }
            // Each family is named with its own face's host and its own listener's port; a
            // family without an MSRP listener is offered another family's.
            let offers = faces.map(|face| {
                let port_at = bound[crate::transport::index_for(&bound, face.sdp)];
                let host = match port_at.is_ipv6() == face.sdp.to_canonical().is_ipv6() {
                    true => face.host.clone(),
                    false => faces.for_ip(port_at.ip()).host.clone(),
                };
                MsrpOffer {
                    host,
                    port: port_at.port(),
                    max_size: config.msrp.max_message_size,
                    tls: tls.is_some(),
                }
            });
            let first = offers.primary();
            let mut switch = Switch::new(
                SwitchSettings {
                    max_message: config.msrp.max_message_size,
                    max_frame: config.msrp.max_chunk_size,
                    queue_depth: config.msrp.queue_depth,
                    delivery_timeout: Duration::from_secs(config.msrp.delivery_timeout_s),
                    max_connections: config.msrp.max_connections,
                    bind_timeout: Duration::from_secs(config.msrp.bind_timeout_s),
                },
                first.host.clone(),
                first.port,
            );
            for face in faces.iter() {
                let o = offers.for_ip(face.sdp);
                switch = switch.also_at(face.sdp, o.host.clone(), o.port);
            }
            let switch = Arc::new(switch.with_edge(crate::media::msrp::switch::EdgeSettings {
                tls: tls.clone(),
                chunk_rate: config.msrp.max_chunk_rate,
                bytes_rate: config.msrp.max_bytes_rate,
            }));
            for listener in listeners {
                tokio::spawn(crate::media::msrp::connection::listen(
                    switch.clone(),
                    listener,
                    cancel.clone(),
                ));
            }
            more_addrs.extend(bound.iter().skip(1).map(|a| ("msrp", *a)));
            (Some(switch), bound.first().copied(), Some(offers))
        } else {
            (None, None, None)
        };
        let admission = Arc::new(crate::overload::Admission::new(
            trusted.clone(),
            crate::overload::AdmissionSettings {
                transactions_high: config.sip.max_transactions
                    * usize::from(config.overload.transactions_high_pct)
                    / 100,
                queue_high_pct: config.overload.queue_high_pct,
                mailbox_high: config.supervisor.mailbox_capacity
                    * usize::from(config.overload.mailbox_high_pct)
                    / 100,
                retry_after_s: config.supervisor.retry_after_s,
            },
        ));
        endpoint.set_admission(admission.clone());
        let talk = crate::push_to_talk::talk_burst::TalkPlanes::start(config, &sip_ips, &cancel)
            .map_err(|(addr, source)| StartError::Bind {
                what: "BFCP",
                addr,
                source,
            })?;
        let supervisor = Arc::new(Supervisor::new(
            config,
            SupervisorSettings {
                domain,
                local_ips: addrs.sip.iter().map(SocketAddr::ip).collect(),
                faces,
                mailbox_capacity: config.supervisor.mailbox_capacity,
                max_sessions: config.supervisor.max_sessions,
                retry_after_s: config.supervisor.retry_after_s,
                server: format!(
                    "cpm-focus/{} ({})",
                    env!("CARGO_PKG_VERSION"),
                    config.focus.instance_id
                ),
                msrp: msrp_offer,
                admission: admission.clone(),
                talk: talk.clone(),
                rtp_legs: Arc::new(crate::overload::SourceQuota::new(
                    config.rtp.max_legs_per_source as usize,
                )),
                auth: crate::supervisor::AuthGate::new(config).map_err(StartError::Auth)?,
                unverified_charging: config.charging.unverified,
            },
            endpoint.clone(),
            arbiters,
            switch.clone(),
            charging.clone(),
            credit,
        ));
        supervisor.set_self();
        // Before the transports run: resumed sessions get their participants first.
        let (journal, recovered) = crate::recovery::start(config, &*supervisor, &charging)?;
        endpoint.set_router(supervisor.clone());
        let o = &config.overload;
        let limiter = crate::overload::SourceLimiter::new(
            crate::overload::SourceLimits {
                rate: f64::from(o.source_rate),
                burst: f64::from(o.source_burst),
                trusted_rate: f64::from(o.trusted_rate),
                trusted_burst: f64::from(o.trusted_burst),
                reject_rate: f64::from(o.reject_rate),
                max_sources: o.max_sources,
            },
            &trusted,
            std::time::Instant::now(),
        );
        let sink: Arc<dyn Sink> = Arc::new(crate::endpoint::Guard::new(
            endpoint.clone(),
            limiter,
            admission,
        ));
        tokio::spawn(udp.clone().run(
            sink.clone(),
            config.sip.max_message_size,
            limits,
            cancel.clone(),
        ));
        tokio::spawn(tcp.clone().run(sink.clone()));
        if let Some(t) = &sips {
            tokio::spawn(t.clone().run(sink));
        }
        Ok(Server {
            supervisor,
            endpoint,
            udp_addr: udp.local_addr(),
            tcp_addr: tcp.local_addr(),
            tls_addr: sips.as_ref().map(|t| t.local_addr()),
            tls_certs: tls.as_ref().map(|t| t.certs.clone()),
            msrp_addr,
            more_addrs,
            switch,
            talk,
            charging,
            journal,
            recovered,
            cancel,
            grace: Duration::from_secs(config.shutdown.grace_s),
        })
    }

    /// Graceful stop: new sessions are refused, every session ends (BYE to participants,
    /// final NOTIFY to subscribers, bounded by the configured grace time), then the
    /// transports close.
    pub async fn shutdown(&self) {
        self.supervisor.shutdown(self.grace).await;
        // The sessions just ended closed themselves in the journal: a restart resumes nothing.
        self.journal.shutdown().await;
        // Every record of the sessions just ended is on disk before the process exits.
        if let Err(e) = self.charging.shutdown().await {
            tracing::error!(error = %e, "charging records not all written");
        }
        self.cancel.cancel();
    }
}

/// The addresses of `wanted`, or, when none is given, one beside each SIP address with port
/// `port` (port 0 beside a SIP address that asked for port 0).
fn beside(wanted: &[SocketAddr], sip: &[SocketAddr], port: u16) -> Vec<SocketAddr> {
    if !wanted.is_empty() {
        return wanted.to_vec();
    }
    sip.iter()
        .map(|a| SocketAddr::new(a.ip(), if a.port() == 0 { 0 } else { port }))
        .collect()
}

/// `sip.advertise`: hosts separated by commas (validated with the configuration).
fn parse_advertise(text: &str) -> Vec<Host> {
    text.split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .filter_map(|h| Host::parse_config(h).ok())
        .collect()
}

/// What the focus writes about itself per family of its SIP addresses: the advertised
/// address of that family, else the first advertised name, else the listen address (for an
/// unspecified one, the address of the interface with the default route of that family).
fn faces(
    advertise: &[Host],
    udp: &UdpTransport,
    tcp: &TcpRegistry,
    tls: Option<&TcpRegistry>,
) -> PerFamily<Face> {
    let face = |listen: SocketAddr| {
        let ip = listen.ip();
        let host = advertise
            .iter()
            .find(|h| h.ip().is_some_and(|a| a.is_ipv6() == ip.is_ipv6()))
            .or_else(|| advertise.iter().find(|h| h.ip().is_none()))
            .cloned()
            .unwrap_or_else(|| Host::Ip(route_ip(ip)));
        let sdp = host.ip().unwrap_or_else(|| route_ip(ip));
        Face {
            host,
            sdp,
            udp: listen.port(),
            tcp: tcp.local_addr_for(ip).port(),
            tls: tls.map(|t| t.local_addr_for(ip).port()),
        }
    };
    let locals = udp.local_addrs();
    let mut all = PerFamily::single(locals[0].ip(), face(locals[0]));
    for l in &locals[1..] {
        all.insert(l.ip(), face(*l));
    }
    all
}

/// `ip`, or for an unspecified address the address of the interface with the default route
/// of its family (no packet is sent); loopback when there is none.
fn route_ip(ip: IpAddr) -> IpAddr {
    if !ip.is_unspecified() {
        return ip;
    }
    let (bind, probe): (SocketAddr, SocketAddr) = match ip {
        IpAddr::V4(_) => (([0, 0, 0, 0], 0).into(), ([192, 0, 2, 1], 9).into()),
        IpAddr::V6(_) => (
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
            (std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9).into(),
        ),
    };
    std::net::UdpSocket::bind(bind)
        .and_then(|s| {
            s.connect(probe)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(match ip {
            IpAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionInput;
    use crate::sip::{parse, Framing, Message, ParseLimits};
    use bytes::Bytes;
    use std::net::UdpSocket;

    fn invite(to: &str, from: &str, call: &str, me: SocketAddr) -> String {
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n";
        format!(
            "INVITE sip:{to}@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{call};rport\r\nFrom: <sip:{from}@example.com>;tag={from}\r\nTo: <sip:{to}@focus.example.com>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:{from}@{me}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
    }

    fn recv(sock: &UdpSocket) -> Message {
        let mut buf = [0u8; 65536];
        let (n, _) = sock
            .recv_from(&mut buf)
            .expect("a message within the timeout");
        parse(
            Bytes::copy_from_slice(&buf[..n]),
            Framing::Datagram,
            &ParseLimits::default(),
        )
        .expect("the focus sends valid SIP")
    }

    /// Joins and returns the focus's To tag, skipping the 100.
    fn join(sock: &UdpSocket, focus: SocketAddr, to: &str, from: &str, call: &str) -> String {
        let me = sock.local_addr().unwrap();
        sock.send_to(invite(to, from, call, me).as_bytes(), focus)
            .unwrap();
        loop {
            if let Message::Response(r) = recv(sock) {
                if r.status >= 200 {
                    assert_eq!(r.status, 200);
                    let tag = r.to.tag().unwrap().to_string();
                    let ack = format!(
                        "ACK sip:{to}@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKack{call}\r\nFrom: <sip:{from}@example.com>;tag={from}\r\nTo: <sip:{to}@focus.example.com>;tag={tag}\r\nCall-ID: {call}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
                    );
                    sock.send_to(ack.as_bytes(), focus).unwrap();
                    return tag;
                }
            }
        }
    }

    /// A panic inside one session ends that session cleanly (its participant gets a BYE, its
    /// routes disappear) and leaves the other session on the same arbiter untouched.
    #[test]
    fn a_panicking_session_is_isolated() {
        let mut config = Config::embedded().unwrap();
        config.groups.push(crate::config::GroupConfig {
            uri: "sip:other@focus.example.com".into(),
            display_name: String::new(),
            subject: String::new(),
            join: crate::config::JoinRule::Open,
            max_participants: 10,
            allow_signalling_only: true,
            allow_private_messages: true,
            allowed_media: None,
            codecs: None,
            allow_anonymous: true,
            add: crate::config::Authority::Moderators,
            remove: crate::config::Authority::Moderators,
            locked: false,
            members: Vec::new(),
        });
        let _system = actix::System::new();
        // One arbiter: both sessions share its thread.
        let arbiter = actix::Arbiter::new();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(async {
            Server::start(
                &config,
                "127.0.0.1:0".parse().unwrap(),
                None,
                vec![arbiter.handle()],
            )
            .unwrap()
        });
        let focus = server.udp_addr;
        let alice = UdpSocket::bind("127.0.0.1:0").unwrap();
        alice
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let bob = UdpSocket::bind("127.0.0.1:0").unwrap();
        bob.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        join(&alice, focus, "team", "alice", "call-a");
        let bob_tag = join(&bob, focus, "other", "bob", "call-b");

        let tables = server.supervisor.tables().clone();
        let team = tables.session("team").expect("team session runs");
        team.addr.do_send(SessionInput::Panic);

        // Alice is told the session is over.
        let bye = loop {
            match recv(&alice) {
                Message::Request(r) => break r,
                Message::Response(_) => continue,
            }
        };
        assert_eq!(bye.method, crate::sip::Method::Bye);
        assert_eq!(bye.call_id(), "call-a");
        // Routes to the dead session are gone; a new join starts a fresh session.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while tables
            .session("team")
            .is_some_and(|e| e.instance == team.instance)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "dead session still routed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let carol = UdpSocket::bind("127.0.0.1:0").unwrap();
        carol
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        join(&carol, focus, "team", "carol", "call-c");
        // Bob's session, on the same arbiter, still answers in its dialog.
        let me = bob.local_addr().unwrap();
        let bye = format!(
            "BYE sip:other@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKbyeb\r\nFrom: <sip:bob@example.com>;tag=bob\r\nTo: <sip:other@focus.example.com>;tag={bob_tag}\r\nCall-ID: call-b\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        );
        bob.send_to(bye.as_bytes(), focus).unwrap();
        match recv(&bob) {
            Message::Response(r) => assert_eq!(r.status, 200),
            other => panic!("{other:?}"),
        }
        rt.block_on(server.shutdown());
        arbiter.stop();
    }
}
