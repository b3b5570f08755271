//! `join-leave`: INVITE (audio offer, declined by the focus) / ACK / BYE to the groups at a
//! target rate. Latency is INVITE to 200 (call setup); a call completes when its BYE is answered.

use crate::agent::{Accept, Agent};
use crate::report::Phase;
use crate::{pace, wait_until, Ctx, GroupArgs};
use clap::Args;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The offer SIPp's stock UAC sends: the focus declines the audio, the call is signalling-only.
pub const AUDIO_OFFER: &str = "v=0\r\no=load 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

#[derive(Args, Debug)]
pub struct Opts {
    #[command(flatten)]
    groups: GroupArgs,
    /// Calls started per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Time between the ACK and the BYE, ms.
    #[arg(long, default_value_t = 0)]
    hold_ms: u64,
    /// Calls in progress at most; a call beyond it is counted failed, not queued.
    #[arg(long, default_value_t = 50_000)]
    max_inflight: usize,
    /// UDP sockets the calls are spread over.
    #[arg(long, default_value_t = 1)]
    sockets: usize,
}

pub async fn run(ctx: Arc<Ctx>, o: Opts) -> anyhow::Result<()> {
    let mut agents = Vec::new();
    for _ in 0..o.sockets.max(1) {
        agents.push(Agent::bind(ctx.focus.ip(), ctx.focus, false, Arc::new(Accept)).await?);
    }
    let phase = Arc::new(Phase::start("join-leave", "calls", ctx.pid));
    let total = (o.rate * o.duration).round() as u64;
    let sem = Arc::new(Semaphore::new(o.max_inflight));
    let hold = Duration::from_millis(o.hold_ms);
    pace(o.rate, total, |i| {
        let Ok(permit) = sem.clone().try_acquire_owned() else {
            phase.fail("too many calls in progress (--max-inflight)");
            return;
        };
        let agent = agents[i as usize % agents.len()].clone();
        let ruri = o.groups.uri(i as usize, &ctx.domain);
        let phase = phase.clone();
        tokio::spawn(async move {
            let user = format!("u{i}");
            match agent.invite(&ruri, &user, AUDIO_OFFER).await {
                Ok((mut d, _, setup)) => {
                    if !hold.is_zero() {
                        tokio::time::sleep(hold).await;
                    }
                    match agent.bye(&mut d).await {
                        Ok(_) => phase.ok(setup),
                        Err(e) => phase.fail(format!("BYE: {e}")),
                    }
                }
                Err(e) => phase.fail(format!("INVITE: {e}")),
            }
            drop(permit);
        });
    })
    .await;
    let drained = wait_until(Duration::from_secs(40), || {
        sem.available_permits() == o.max_inflight
    })
    .await;
    if !drained {
        let left = o.max_inflight - sem.available_permits();
        for _ in 0..left {
            phase.fail("call unfinished 40 s after the load stopped");
        }
    }
    phase.set("target_rate", o.rate);
    phase.set(
        "calls_per_s",
        (phase.completed() as f64 * 1000.0 / phase.elapsed().as_millis().max(1) as f64).round(),
    );
    ctx.report(&phase);
    Ok(())
}
