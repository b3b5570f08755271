//! CANCEL at the endpoint level, deterministic: a router that keeps the INVITE's server
//! transaction without answering, so the CANCEL always finds it pending.

use bytes::Bytes;
use cpm_focus::endpoint::{
    Endpoint, EndpointSettings, IncomingRequest, Router, ServerTxn, TransactionUser, TuEvent,
};
use cpm_focus::sip::{parse, Framing, Message, ParseLimits, Request, Response};
use cpm_focus::transaction::TimerConfig;
use cpm_focus::transport::{
    ConnLimits, Sink, Target, TcpRegistry, TcpSettings, Transports, UdpTransport,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);

/// Keeps every server transaction unanswered; counts ACKs passed up.
#[derive(Default)]
struct Keeper {
    kept: Mutex<Vec<(Arc<Request>, ServerTxn)>>,
    acks: AtomicUsize,
}

impl Router for Keeper {
    fn route(&self, incoming: IncomingRequest) {
        self.kept
            .lock()
            .unwrap()
            .push((incoming.request, incoming.txn));
    }

    fn ack(&self, _request: Arc<Request>, _source: Target) {
        self.acks.fetch_add(1, Ordering::SeqCst);
    }
}

/// A transaction user that forwards its events to the test.
struct Events(mpsc::UnboundedSender<TuEvent>);

impl TransactionUser for Events {
    fn on_event(&self, event: TuEvent) {
        let _ = self.0.send(event);
    }
}

struct Harness {
    endpoint: Endpoint,
    router: Arc<Keeper>,
    focus: SocketAddr,
    client: UdpSocket,
    cancel: CancellationToken,
}

impl Harness {
    async fn start() -> Harness {
        let cancel = CancellationToken::new();
        let udp = Arc::new(UdpTransport::bind("127.0.0.1:0".parse().unwrap()).unwrap());
        let limits = ParseLimits::default();
        let tcp = Arc::new(
            TcpRegistry::bind(
                "127.0.0.1:0".parse().unwrap(),
                TcpSettings {
                    max_message: 65535,
                    idle_timeout: Duration::from_secs(60),
                    message_timeout: Duration::from_secs(10),
                    write_queue: 64,
                    write_timeout: Duration::from_secs(10),
                    first_byte_timeout: Duration::from_secs(5),
                    limits,
                },
                Arc::new(ConnLimits::new(16, 16, Default::default())),
                cancel.clone(),
            )
            .unwrap(),
        );
        let endpoint = Endpoint::start(
            Transports {
                udp: udp.clone(),
                tcp,
                tls: None,
            },
            EndpointSettings {
                // Short timers: a 487 not ACKed is retransmitted after 50 ms; an ACKed one
                // lingers T4 = 200 ms.
                timers: TimerConfig {
                    t1: Duration::from_millis(50),
                    t2: Duration::from_millis(400),
                    t4: Duration::from_millis(200),
                },
                force_rport: true,
                max_transactions: 1000,
                retry_after_s: 5,
                advertised: cpm_focus::transport::PerFamily::single(
                    [127, 0, 0, 1].into(),
                    cpm_focus::sip::Host::Ip([127, 0, 0, 1].into()),
                ),
                outbound_proxy: None,
                shard_queue: 64,
                shards: 2,
                max_queue_delay: None,
                max_datagram: cpm_focus::transport::MAX_DATAGRAM,
            },
        );
        let router = Arc::new(Keeper::default());
        endpoint.set_router(router.clone());
        let sink: Arc<dyn Sink> = Arc::new(endpoint.clone());
        tokio::spawn(udp.clone().run(sink, 65535, limits, cancel.clone()));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        Harness {
            endpoint,
            router,
            focus: udp.local_addr(),
            client,
            cancel,
        }
    }

    async fn send(&self, text: &str) {
        self.client
            .send_to(text.as_bytes(), self.focus)
            .await
            .unwrap();
    }

    /// The next response, or `None` after `timeout`.
    async fn recv(&self, timeout: Duration) -> Option<Response> {
        let mut buf = vec![0u8; 65536];
        let (n, _) = tokio::time::timeout(timeout, self.client.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        let bytes = Bytes::copy_from_slice(&buf[..n]);
        match parse(bytes.clone(), Framing::Datagram, &ParseLimits::default()) {
            Ok(Message::Response(r)) => Some(r),
            other => panic!(
                "not a response: {other:?}\n{}",
                String::from_utf8_lossy(&bytes)
            ),
        }
    }

    async fn expect(&self, status: u16, method: &str) -> Response {
        let r = self
            .recv(WAIT)
            .await
            .unwrap_or_else(|| panic!("no {status} to {method}"));
        assert_eq!(
            (r.status, r.cseq.method.as_str()),
            (status, method),
            "{}",
            r.reason
        );
        r
    }

    async fn assert_quiet(&self, window: Duration, what: &str) {
        if let Some(r) = self.recv(window).await {
            panic!(
                "expected nothing ({what}), got {} {} to {}",
                r.status, r.reason, r.cseq.method
            );
        }
    }

    fn request(&self, method: &str, branch: &str, to_tag: Option<&str>) -> String {
        let local = self.client.local_addr().unwrap();
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let body = if method == "INVITE" { "v=0\r\n" } else { "" };
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        format!(
            "{method} sip:team@focus.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:team@focus.example.com>{to_tag}\r\nCall-ID: {branch}@test\r\nCSeq: 1 {method}\r\nContact: <sip:alice@{local}>\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// INVITE, CANCEL: 100, 200 to the CANCEL, 487 to the INVITE. Returns the 487.
    async fn invite_and_cancel(&self, branch: &str) -> Response {
        self.send(&self.request("INVITE", branch, None)).await;
        let trying = self.expect(100, "INVITE").await;
        assert_eq!(trying.to.tag(), None);
        self.send(&self.request("CANCEL", branch, None)).await;
        let ok = self.expect(200, "CANCEL").await;
        assert_eq!(ok.branch(), Some(branch));
        let terminated = self.expect(487, "INVITE").await;
        assert_eq!(&*terminated.reason, "Request Terminated");
        assert!(terminated.to.tag().is_some(), "487 without To tag");
        // The router saw the INVITE once and never the CANCEL.
        let kept = self.router.kept.lock().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].0.method.as_str(), "INVITE");
        drop(kept);
        terminated
    }

    /// Waits until no transaction is alive (Timer I has run); polls, as the endpoint has no
    /// event for it.
    async fn wait_idle(&self) {
        let deadline = Instant::now() + WAIT;
        while self.endpoint.active_transactions() > 0 {
            assert!(Instant::now() < deadline, "transactions never ended");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_gets_200_and_the_pending_invite_487_whose_ack_is_absorbed() {
    let h = Harness::start().await;
    let terminated = h.invite_and_cancel("z9hG4bK-ep-1").await;
    // Not ACKed yet: Timer G retransmits the 487 after T1.
    let again = h.expect(487, "INVITE").await;
    assert_eq!(again.to.tag(), terminated.to.tag());
    // The ACK (same branch, the 487's To tag) stops it and is not passed to the router.
    h.send(&h.request("ACK", "z9hG4bK-ep-1", terminated.to.tag()))
        .await;
    h.assert_quiet(Duration::from_millis(400), "no 487 after its ACK")
        .await;
    assert_eq!(
        h.router.acks.load(Ordering::SeqCst),
        0,
        "the ACK for a 487 reached the router"
    );
    // Dropping the kept transaction sends nothing: it was answered (487) already.
    h.router.kept.lock().unwrap().clear();
    h.assert_quiet(
        Duration::from_millis(300),
        "nothing after the txn is dropped",
    )
    .await;
    h.wait_idle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_after_the_cancelled_transaction_ended_is_refused_to_its_tu() {
    let h = Harness::start().await;
    let terminated = h.invite_and_cancel("z9hG4bK-ep-2").await;
    h.send(&h.request("ACK", "z9hG4bK-ep-2", terminated.to.tag()))
        .await;
    // Timer I (T4) ends the transaction; only then does the TU's 200 arrive.
    h.wait_idle().await;
    let (request, txn) = h.router.kept.lock().unwrap().pop().unwrap();
    let id = txn.id();
    let (tx, mut events) = mpsc::unbounded_channel();
    let tu: Arc<dyn TransactionUser> = Arc::new(Events(tx));
    let local = h.client.local_addr().unwrap();
    let mut w =
        cpm_focus::sip::MessageWriter::response_to(&request, local, 200, "OK", Some("late"));
    w.header(cpm_focus::sip::HeaderName::Contact, "<sip:team@127.0.0.1>");
    txn.respond_in_dialog(
        200,
        w.finish_empty(),
        Some((request.call_id(), "late")),
        Some(tu),
    );
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("the TU was not told its 200 was refused")
        .unwrap();
    match event {
        TuEvent::ResponseRefused { txn, status } => assert_eq!((txn, status), (id, 200)),
        other => panic!("unexpected {other:?}"),
    }
    h.assert_quiet(
        Duration::from_millis(200),
        "the refused 200 must not be sent",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_racing_the_487_is_refused_while_the_transaction_lingers() {
    let h = Harness::start().await;
    h.invite_and_cancel("z9hG4bK-ep-3").await;
    let (request, txn) = h.router.kept.lock().unwrap().pop().unwrap();
    let id = txn.id();
    let (tx, mut events) = mpsc::unbounded_channel();
    let tu: Arc<dyn TransactionUser> = Arc::new(Events(tx));
    let local = h.client.local_addr().unwrap();
    let w = cpm_focus::sip::MessageWriter::response_to(&request, local, 200, "OK", Some("late"));
    txn.respond_in_dialog(
        200,
        w.finish_empty(),
        Some((request.call_id(), "late")),
        Some(tu),
    );
    let event = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    match event {
        TuEvent::ResponseRefused { txn, status } => assert_eq!((txn, status), (id, 200)),
        other => panic!("unexpected {other:?}"),
    }
    // Only the 487's own retransmission may follow (it was not ACKed), never a 200.
    while let Some(r) = h.recv(Duration::from_millis(200)).await {
        assert_eq!(r.status, 487, "{} {}", r.status, r.reason);
    }
}
