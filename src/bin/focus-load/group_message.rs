//! `group-message`: M members join each group (signalling-only INVITEs from the tool's member
//! socket); a sender outside the groups sends pager-mode MESSAGEs to the group URIs at a rate;
//! the focus relays each to every member, and the member socket answers 200 and counts.
//! Checks: every message reaches every member of its group exactly once.

use crate::agent::{Agent, Dialog, OnRequest};
use crate::join_leave::AUDIO_OFFER;
use crate::report::Phase;
use crate::track::{body, Tracker};
use crate::{pace, wait_until, Ctx, GroupArgs};
use clap::Args;
use cpm_focus::sip::{Method, Request};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(Args, Debug)]
pub struct Opts {
    #[command(flatten)]
    groups: GroupArgs,
    /// Members joined to each group (all receive every message).
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// MESSAGEs sent per second (over all groups).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Body size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// MESSAGE transactions in progress at most.
    #[arg(long, default_value_t = 20_000)]
    max_inflight: usize,
}

/// Member `g`-`k` is user `m<g>x<k>`: its index is `g * members + k`.
struct Members {
    tracker: Arc<Tracker>,
    members: usize,
}

impl OnRequest for Members {
    fn on_request(&self, req: &Request, at: Instant) -> u16 {
        if req.method == Method::Message {
            let idx = member_index(req, self.members).unwrap_or(usize::MAX);
            self.tracker.delivered(idx, &req.body, at);
        }
        200
    }
}

fn member_index(req: &Request, members: usize) -> Option<usize> {
    let user = req.uri.to_string();
    let user = user.strip_prefix("sip:m")?;
    let user = &user[..user.find('@')?];
    let (g, k) = user.split_once('x')?;
    Some(g.parse::<usize>().ok()? * members + k.parse::<usize>().ok()?)
}

pub async fn run(ctx: Arc<Ctx>, o: Opts) -> anyhow::Result<()> {
    let groups = o.groups.count();
    let total = (o.rate * o.duration).round() as u64;
    let tracker = Arc::new(Tracker::new(total as usize, groups * o.members));
    let handler = Arc::new(Members {
        tracker: tracker.clone(),
        members: o.members,
    });
    let members = Agent::bind(ctx.focus.ip(), ctx.focus, true, handler).await?;
    let sender = Agent::bind(
        ctx.focus.ip(),
        ctx.focus,
        true,
        Arc::new(crate::agent::Accept),
    )
    .await?;

    // Setup: every member joins its group.
    let setup = Arc::new(Phase::start("group-message", "join", ctx.pid));
    let dialogs = join_members(&ctx, &o.groups, groups, o.members, &members, &setup).await;
    ctx.report(&setup);

    // Load: MESSAGEs spread over the groups.
    let phase = Arc::new(Phase::start("group-message", "message", ctx.pid));
    let sem = Arc::new(Semaphore::new(o.max_inflight));
    let sent = Arc::new(AtomicU64::new(0));
    let size = o.size;
    let m = o.members as u32;
    pace(o.rate, total, |i| {
        let Ok(permit) = sem.clone().try_acquire_owned() else {
            phase.fail("too many MESSAGEs in progress (--max-inflight)");
            return;
        };
        let ruri = o.groups.uri(i as usize, &ctx.domain);
        let (sender, phase, tracker) = (sender.clone(), phase.clone(), tracker.clone());
        sent.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let b = body(i, size);
            tracker.sending(i, m);
            match sender.message(&ruri, "sender", "text/plain", &b).await {
                Ok((s, took)) if (200..300).contains(&s) => phase.ok(took),
                Ok((s, _)) => phase.fail(format!("MESSAGE answered {s}")),
                Err(e) => phase.fail(format!("MESSAGE: {e}")),
            }
            drop(permit);
        });
    })
    .await;
    let load_s = phase.elapsed().as_secs_f64();
    let n = sent.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(40), || {
        sem.available_permits() == o.max_inflight && tracker.complete(n)
    })
    .await;
    let out = tracker.outcome(n);
    phase.set("deliveries", out.delivered);
    phase.set("deliveries_per_s", (out.delivered as f64 / load_s).round());
    phase.set("lost", out.lost);
    phase.set("duplicated", out.duplicates);
    phase.set("unknown", out.unknown);
    phase.set(
        "retransmissions_in",
        members.retransmissions_in.load(Ordering::Relaxed),
    );
    let mut lat = out.last_delivery_us.clone();
    lat.sort_unstable();
    if !lat.is_empty() {
        let p99 = lat[(lat.len() * 99).div_ceil(100).clamp(1, lat.len()) - 1];
        phase.set("delivery_p50_ms", f64::from(lat[lat.len() / 2]) / 1000.0);
        phase.set("delivery_p99_ms", f64::from(p99) / 1000.0);
    }
    if let Some(cpu) = phase.cpu_s() {
        if out.delivered > 0 {
            phase.set(
                "focus_cpu_us_per_delivery",
                (cpu * 1e8 / out.delivered as f64).round() / 100.0,
            );
        }
    }
    for _ in 0..(out.lost + out.duplicates + out.unknown).min(1) {
        phase.fail(format!(
            "{} lost, {} duplicated, {} unknown deliveries",
            out.lost, out.duplicates, out.unknown
        ));
    }
    ctx.report(&phase);

    let leave = Arc::new(Phase::start("group-message", "leave", ctx.pid));
    leave_all(dialogs, &members, &leave).await;
    ctx.report(&leave);
    Ok(())
}

/// Joins `members` users to each of `groups` groups, 200 at a time.
pub async fn join_members(
    ctx: &Ctx,
    g: &GroupArgs,
    groups: usize,
    members: usize,
    agent: &Arc<Agent>,
    phase: &Arc<Phase>,
) -> Vec<Dialog> {
    let sem = Arc::new(Semaphore::new(200));
    let mut tasks = Vec::new();
    for gi in 0..groups {
        for k in 0..members {
            let Ok(permit) = sem.clone().acquire_owned().await else {
                break;
            };
            let (agent, phase) = (agent.clone(), phase.clone());
            let ruri = g.uri(gi, &ctx.domain);
            tasks.push(tokio::spawn(async move {
                let r = agent
                    .invite(&ruri, &format!("m{gi}x{k}"), AUDIO_OFFER)
                    .await;
                drop(permit);
                match r {
                    Ok((d, _, took)) => {
                        phase.ok(took);
                        Some(d)
                    }
                    Err(e) => {
                        phase.fail(format!("member join: {e}"));
                        None
                    }
                }
            }));
        }
    }
    let mut dialogs = Vec::new();
    for t in tasks {
        if let Ok(Some(d)) = t.await {
            dialogs.push(d);
        }
    }
    dialogs
}

/// BYE for every dialog, 200 at a time.
pub async fn leave_all(dialogs: Vec<Dialog>, agent: &Arc<Agent>, phase: &Arc<Phase>) {
    let sem = Arc::new(Semaphore::new(200));
    let mut tasks = Vec::new();
    for mut d in dialogs {
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let (agent, phase) = (agent.clone(), phase.clone());
        tasks.push(tokio::spawn(async move {
            match agent.bye(&mut d).await {
                Ok(took) => phase.ok(took),
                Err(e) => phase.fail(format!("leave: {e}")),
            }
            drop(permit);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}
