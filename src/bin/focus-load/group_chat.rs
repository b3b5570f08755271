//! `group-chat`: S sessions of M participants, each joined with an MSRP offer
//! (`a=setup:active`), connected to the focus's MSRP path and bound with an empty SEND. Then
//! SENDs at a total rate, spread over every participant; each must reach the M-1 others of its
//! session exactly once. Latency is the send to the last delivery of each message.

use crate::agent::{Accept, Agent, Dialog};
use crate::report::Phase;
use crate::track::{body, Tracker};
use crate::{pace, wait_until, Ctx, GroupArgs};
use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use clap::Args;
use cpm_focus::media::msrp::{
    parse, Framer, Message, Method, MsrpUri, ParseLimits, Request, Response,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpSocket;
use tokio::sync::{mpsc, oneshot, Semaphore};

#[derive(Args, Debug)]
pub struct Opts {
    #[command(flatten)]
    groups: GroupArgs,
    /// Sessions (one per group: --groups must name at least this many, or 0 for one).
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Participants per session.
    #[arg(long, default_value_t = 10)]
    participants: usize,
    /// SENDs per second over all participants (deliveries: rate x (participants - 1)).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Body size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
}

/// Counts of the answers to our own SENDs.
#[derive(Default)]
struct Acks {
    ok: AtomicU64,
    refused: AtomicU64,
}

/// One participant: its SIP dialog, MSRP paths and the queue its connection writes.
struct Participant {
    dialog: Dialog,
    ours: MsrpUri,
    focus: MsrpUri,
    out: mpsc::UnboundedSender<Bytes>,
}

pub async fn run(ctx: Arc<Ctx>, o: Opts) -> anyhow::Result<()> {
    let sessions = o.sessions.max(1);
    let m = o.participants.max(2);
    let total = (o.rate * o.duration).round() as u64;
    let tracker = Arc::new(Tracker::new(total as usize, sessions * m));
    let acks = Arc::new(Acks::default());
    let sip = Agent::bind(ctx.focus.ip(), ctx.focus, true, Arc::new(Accept)).await?;

    let setup = Arc::new(Phase::start("group-chat", "join", ctx.pid));
    let mut participants: Vec<Option<Participant>> = Vec::new();
    let sem = Arc::new(Semaphore::new(100));
    let mut tasks = Vec::new();
    for s in 0..sessions {
        for k in 0..m {
            let idx = s * m + k;
            let permit = sem.clone().acquire_owned().await?;
            let (sip, setup, tracker, acks) =
                (sip.clone(), setup.clone(), tracker.clone(), acks.clone());
            let ruri = o.groups.uri(s, &ctx.domain);
            tasks.push(tokio::spawn(async move {
                let t0 = Instant::now();
                let r = join(&sip, &ruri, idx, tracker, acks).await;
                drop(permit);
                match r {
                    Ok(p) => {
                        setup.ok(t0.elapsed());
                        Some(p)
                    }
                    Err(e) => {
                        setup.fail(format!("participant {idx}: {e:#}"));
                        None
                    }
                }
            }));
        }
    }
    for t in tasks {
        participants.push(t.await.ok().flatten());
    }
    ctx.report(&setup);

    let phase = Arc::new(Phase::start("group-chat", "chat", ctx.pid));
    let sent = AtomicU64::new(0);
    let joined: Vec<bool> = participants.iter().map(Option::is_some).collect();
    let expected: Vec<u32> = (0..sessions)
        .map(|s| joined[s * m..(s + 1) * m].iter().filter(|j| **j).count() as u32)
        .collect();
    pace(o.rate, total, |i| {
        let from = i as usize % participants.len();
        let Some(p) = &participants[from] else {
            return;
        };
        let req = Request::send(
            vec![p.focus.clone()],
            vec![p.ours.clone()],
            "text/plain",
            Bytes::from(body(i, o.size)),
        );
        let Ok(bytes) = req.to_bytes() else {
            phase.fail("SEND not writable");
            return;
        };
        tracker.sending(i, expected[from / m].saturating_sub(1));
        sent.fetch_add(1, Ordering::Relaxed);
        if p.out.send(bytes).is_err() {
            phase.fail("MSRP connection closed");
        }
    })
    .await;
    let load_s = phase.elapsed().as_secs_f64();
    let n = sent.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(30), || {
        tracker.complete(n)
            && acks.ok.load(Ordering::Relaxed) + acks.refused.load(Ordering::Relaxed) >= n
    })
    .await;
    let out = tracker.outcome(n);
    phase
        .completed
        .store(acks.ok.load(Ordering::Relaxed), Ordering::Relaxed);
    let refused = acks.refused.load(Ordering::Relaxed);
    for _ in 0..refused {
        phase.fail("SEND refused");
    }
    let unanswered = n.saturating_sub(acks.ok.load(Ordering::Relaxed) + refused);
    for _ in 0..unanswered {
        phase.fail("SEND unanswered");
    }
    if out.lost + out.duplicates + out.unknown > 0 {
        phase.fail(format!(
            "{} lost, {} duplicated, {} unknown deliveries",
            out.lost, out.duplicates, out.unknown
        ));
    }
    phase.latencies(&out.last_delivery_us);
    phase.set("sends", n);
    phase.set("deliveries", out.delivered);
    phase.set("deliveries_per_s", (out.delivered as f64 / load_s).round());
    phase.set("lost", out.lost);
    phase.set("duplicated", out.duplicates);
    phase.set("unknown", out.unknown);
    if let Some(cpu) = phase.cpu_s() {
        if out.delivered > 0 {
            phase.set(
                "focus_cpu_us_per_delivery",
                (cpu * 1e8 / out.delivered as f64).round() / 100.0,
            );
        }
    }
    phase.set("latency", "send to last delivery");
    ctx.report(&phase);

    let leave = Arc::new(Phase::start("group-chat", "leave", ctx.pid));
    let dialogs: Vec<Dialog> = participants
        .into_iter()
        .flatten()
        .map(|p| p.dialog)
        .collect();
    crate::group_message::leave_all(dialogs, &sip, &leave).await;
    ctx.report(&leave);
    Ok(())
}

/// INVITE with an MSRP offer, TCP connect to the focus's path, binding SEND.
async fn join(
    sip: &Agent,
    ruri: &str,
    idx: usize,
    tracker: Arc<Tracker>,
    acks: Arc<Acks>,
) -> anyhow::Result<Participant> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(sip.local.ip(), 0))?;
    let port = socket.local_addr()?.port();
    let ours = MsrpUri::parse(&format!(
        "msrp://{}:{port}/l{idx}x{port};tcp",
        sip.local.ip()
    ))?;
    let offer = format!(
        "v=0\r\no=p{idx} 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=message {port} TCP/MSRP *\r\na=accept-types:message/cpim text/plain\r\n\
         a=accept-wrapped-types:*\r\na=path:{ours}\r\na=setup:active\r\n",
        ip = sip.local.ip()
    );
    let (dialog, resp, _) = sip
        .invite(ruri, &format!("p{idx}"), &offer)
        .await
        .map_err(|e| anyhow::anyhow!("INVITE: {e}"))?;
    let answer = std::str::from_utf8(&resp.body).context("SDP answer is not text")?;
    let path = answer
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=path:"))
        .context("no a=path in the answer")?;
    let focus = MsrpUri::parse(path.split_whitespace().next().unwrap_or(path))?;
    let host = focus.host.to_string();
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .context("the focus's MSRP path names no IP address")?;
    let addr = SocketAddr::new(ip, focus.port.context("MSRP path without port")?);
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let (rd, wr) = stream.into_split();
    let (out, queue) = mpsc::unbounded_channel();
    tokio::spawn(writer(wr, queue));
    let bind = Request::send(vec![focus.clone()], vec![ours.clone()], "", Bytes::new());
    let (bound_tx, bound_rx) = oneshot::channel();
    tokio::spawn(reader(
        rd,
        out.clone(),
        idx,
        tracker,
        acks,
        bind.transaction_id.clone(),
        bound_tx,
    ));
    out.send(bind.to_bytes()?)
        .map_err(|_| anyhow::anyhow!("MSRP connection closed"))?;
    match tokio::time::timeout(Duration::from_secs(10), bound_rx).await {
        Ok(Ok(200)) => {}
        Ok(Ok(code)) => anyhow::bail!("binding SEND answered {code}"),
        _ => anyhow::bail!("binding SEND unanswered"),
    }
    Ok(Participant {
        dialog,
        ours,
        focus,
        out,
    })
}

/// Writes queued frames, coalescing whatever is waiting into one write.
async fn writer(mut wr: OwnedWriteHalf, mut queue: mpsc::UnboundedReceiver<Bytes>) {
    let mut buf = BytesMut::with_capacity(64 << 10);
    while let Some(first) = queue.recv().await {
        buf.extend_from_slice(&first);
        while buf.len() < (256 << 10) {
            match queue.try_recv() {
                Ok(more) => buf.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() {
            return;
        }
        buf.clear();
    }
}

async fn reader(
    mut rd: OwnedReadHalf,
    out: mpsc::UnboundedSender<Bytes>,
    idx: usize,
    tracker: Arc<Tracker>,
    acks: Arc<Acks>,
    bind_tid: String,
    bound: oneshot::Sender<u16>,
) {
    let mut bound = Some(bound);
    let limits = ParseLimits::default();
    let mut framer = Framer::new(1 << 20);
    let mut buf = BytesMut::with_capacity(64 << 10);
    loop {
        loop {
            let frame = match framer.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => return,
            };
            let at = Instant::now();
            match parse(frame.bytes, &limits) {
                Ok(Message::Request(req)) if req.method == Method::Send => {
                    if req.should_respond(200) {
                        if let Ok(b) = Response::for_request(&req, 200, None).to_bytes() {
                            let _ = out.send(b);
                        }
                    }
                    if !req.body.is_empty() {
                        tracker.delivered(idx, &req.body, at);
                    }
                }
                Ok(Message::Request(_)) => {}
                Ok(Message::Response(r)) => {
                    if r.transaction_id == bind_tid {
                        if let Some(b) = bound.take() {
                            let _ = b.send(r.code);
                        }
                    } else if r.is_success() {
                        acks.ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        acks.refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) => {}
            }
        }
        buf.reserve(64 << 10);
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
