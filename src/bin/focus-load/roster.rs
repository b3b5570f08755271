//! `roster-storm` and `idle-soak`: participants in sessions with conference-event subscribers
//! watching them. Every subscriber's NOTIFYs are checked as they arrive: versions go up by
//! exactly one, partial documents merge into the view (RFC 4575 §4.6), and no two NOTIFYs to
//! one subscriber come closer than the configured interval. At the end every subscriber's view
//! must show exactly the participants that are in the session: no change lost.

use crate::agent::{Accept, Agent, Dialog, OnRequest};
use crate::join_leave::AUDIO_OFFER;
use crate::report::{sample, Phase};
use crate::{pace, wait_until, Ctx, GroupArgs};
use clap::Args;
use cpm_focus::conference_info::{apply, parse, ConferenceInfo, DocState, EndpointStatus, Limits};
use cpm_focus::sip::{HeaderName, Method, Request};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

#[derive(Args, Debug)]
pub struct StormOpts {
    #[command(flatten)]
    groups: GroupArgs,
    /// Participants in the session.
    #[arg(long, default_value_t = 100)]
    participants: usize,
    /// Subscribers to the session's conference package.
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Joins and leaves per second during the storm (alternating).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of storm.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// The focus's subscriptions.min_notify_interval_ms (what the NOTIFY spacing is checked
    /// against).
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
}

#[derive(Args, Debug)]
pub struct SoakOpts {
    #[command(flatten)]
    groups: GroupArgs,
    /// Sessions (one per group).
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// Participants per session.
    #[arg(long, default_value_t = 10)]
    participants: usize,
    /// Subscribers per session.
    #[arg(long, default_value_t = 1)]
    subscribers: usize,
    /// Joins per second while filling the sessions.
    #[arg(long, default_value_t = 2000.0)]
    join_rate: f64,
    /// Seconds the idle sessions are held before RSS is read and everyone leaves.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// The focus's subscriptions.min_notify_interval_ms.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
}

/// What one subscriber has seen.
#[derive(Default)]
struct SubView {
    view: Option<ConferenceInfo>,
    version: u32,
    last_at: Option<Instant>,
    min_gap: Option<Duration>,
}

/// The subscribers' side: NOTIFYs checked as they arrive.
struct Watch {
    subs: Vec<Mutex<SubView>>,
    /// Closer spacing than this is a violation (the interval minus delivery jitter).
    min_spacing: Duration,
    notifies: AtomicU64,
    version_errors: AtomicU64,
    spacing_violations: AtomicU64,
    bad_bodies: AtomicU64,
}

impl Watch {
    fn new(n: usize, interval: Duration) -> Watch {
        // Delivery jitter on a loaded machine may bring two NOTIFYs closer than they left.
        let slack = (interval / 4).max(Duration::from_millis(50));
        Watch {
            subs: (0..n).map(|_| Mutex::new(SubView::default())).collect(),
            min_spacing: interval.saturating_sub(slack),
            notifies: AtomicU64::new(0),
            version_errors: AtomicU64::new(0),
            spacing_violations: AtomicU64::new(0),
            bad_bodies: AtomicU64::new(0),
        }
    }

    /// Entities shown `connected` in subscriber `i`'s view.
    fn connected(&self, i: usize) -> Option<BTreeSet<String>> {
        let s = self.subs.get(i)?.lock().ok()?;
        let view = s.view.as_ref()?;
        Some(
            view.users
                .iter()
                .flat_map(|u| u.users.iter())
                .filter(|u| {
                    u.endpoints
                        .iter()
                        .any(|e| e.status == Some(EndpointStatus::Connected))
                })
                .map(|u| u.entity.clone())
                .collect(),
        )
    }

    fn min_gap(&self) -> Option<Duration> {
        self.subs
            .iter()
            .filter_map(|s| s.lock().ok()?.min_gap)
            .min()
    }
}

/// Subscriber `i` is user `s<i>`: the NOTIFY's To is the SUBSCRIBE's From.
fn sub_index(req: &Request) -> Option<usize> {
    req.to.uri.user.as_deref()?.strip_prefix('s')?.parse().ok()
}

impl OnRequest for Watch {
    fn on_request(&self, req: &Request, at: Instant) -> u16 {
        if req.method != Method::Notify {
            return 200;
        }
        self.notifies.fetch_add(1, Ordering::Relaxed);
        let terminated = req
            .headers
            .get(HeaderName::SubscriptionState)
            .is_some_and(|s| s.trim_start().starts_with("terminated"));
        let Some(Ok(mut sub)) = sub_index(req)
            .and_then(|i| self.subs.get(i))
            .map(|s| s.lock())
        else {
            return 481;
        };
        if let Some(last) = sub.last_at {
            let gap = at.saturating_duration_since(last);
            sub.min_gap = Some(sub.min_gap.map_or(gap, |m| m.min(gap)));
            if gap < self.min_spacing && !terminated {
                self.spacing_violations.fetch_add(1, Ordering::Relaxed);
            }
        }
        sub.last_at = Some(at);
        if req.body.is_empty() {
            return 200;
        }
        let doc = match parse(&req.body, &Limits::default()) {
            Ok(d) => d,
            Err(_) => {
                self.bad_bodies.fetch_add(1, Ordering::Relaxed);
                return 200;
            }
        };
        let version = doc.version;
        let expected = sub.version.wrapping_add(1);
        match sub.view.as_mut() {
            None if doc.state == DocState::Full => sub.view = Some(doc),
            None => {
                self.version_errors.fetch_add(1, Ordering::Relaxed);
            }
            Some(view) => {
                if version != expected || apply(view, &doc).is_err() {
                    self.version_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        sub.version = version;
        200
    }
}

/// SUBSCRIBEs `count` subscribers, subscriber `i` (numbered from `first`) to `uri_of(i)`.
async fn subscribe_all(
    agent: &Arc<Agent>,
    first: usize,
    count: usize,
    uri_of: impl Fn(usize) -> String,
    phase: &Arc<Phase>,
) -> Vec<Dialog> {
    let sem = Arc::new(Semaphore::new(200));
    let mut tasks = Vec::new();
    for i in first..first + count {
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let (agent, phase, uri) = (agent.clone(), phase.clone(), uri_of(i));
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let r = agent.subscribe(&uri, &format!("s{i}"), 3600).await;
            drop(permit);
            match r {
                Ok(d) => {
                    phase.ok(t0.elapsed());
                    Some(d)
                }
                Err(e) => {
                    phase.fail(format!("SUBSCRIBE: {e}"));
                    None
                }
            }
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        if let Ok(Some(d)) = t.await {
            out.push(d);
        }
    }
    out
}

async fn unsubscribe_all(agent: &Arc<Agent>, dialogs: Vec<Dialog>, phase: &Arc<Phase>) {
    let sem = Arc::new(Semaphore::new(200));
    let mut tasks = Vec::new();
    for mut d in dialogs {
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let (agent, phase) = (agent.clone(), phase.clone());
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            match agent.unsubscribe(&mut d).await {
                Ok(()) => phase.ok(t0.elapsed()),
                Err(e) => phase.fail(format!("unSUBSCRIBE: {e}")),
            }
            drop(permit);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// A participant of the storm.
enum Slot {
    In(Dialog),
    Out,
    Busy,
}

fn entity(k: usize) -> String {
    format!("sip:p{k}@load.example")
}

pub async fn storm(ctx: Arc<Ctx>, o: StormOpts) -> anyhow::Result<()> {
    let interval = Duration::from_millis(o.interval_ms);
    let watch = Arc::new(Watch::new(o.subscribers, interval));
    let subs = Agent::bind(ctx.focus.ip(), ctx.focus, true, watch.clone()).await?;
    let parts = Agent::bind(ctx.focus.ip(), ctx.focus, true, Arc::new(Accept)).await?;
    let uri = o.groups.uri(0, &ctx.domain);

    let phase = Arc::new(Phase::start("roster-storm", "subscribe", ctx.pid));
    let dialogs = subscribe_all(&subs, 0, o.subscribers, |_| uri.clone(), &phase).await;
    ctx.report(&phase);

    let phase = Arc::new(Phase::start("roster-storm", "join", ctx.pid));
    let slots: Arc<Vec<Mutex<Slot>>> =
        Arc::new((0..o.participants).map(|_| Mutex::new(Slot::Out)).collect());
    let sem = Arc::new(Semaphore::new(100));
    let mut tasks = Vec::new();
    for k in 0..o.participants {
        let permit = sem.clone().acquire_owned().await?;
        let (parts, phase, slots, uri) = (parts.clone(), phase.clone(), slots.clone(), uri.clone());
        tasks.push(tokio::spawn(async move {
            match parts.invite(&uri, &format!("p{k}"), AUDIO_OFFER).await {
                Ok((d, _, took)) => {
                    phase.ok(took);
                    if let Ok(mut s) = slots[k].lock() {
                        *s = Slot::In(d);
                    }
                }
                Err(e) => phase.fail(format!("join: {e}")),
            }
            drop(permit);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    ctx.report(&phase);

    // The storm: even operations make a participant leave, odd ones bring one back; each
    // picks, from a spread-out starting point, the first participant in the state it needs.
    let phase = Arc::new(Phase::start("roster-storm", "storm", ctx.pid));
    let n0 = watch.notifies.load(Ordering::Relaxed);
    let total = (o.rate * o.duration).round() as u64;
    let inflight = Arc::new(Semaphore::new(10_000));
    let m = o.participants.max(1);
    let skipped = AtomicU64::new(0);
    pace(o.rate, total, |i| {
        let leave = i % 2 == 0;
        let start = (i as usize).wrapping_mul(7919) % m;
        let mut taken = None;
        for j in 0..m {
            let k = (start + j) % m;
            let Ok(mut slot) = slots[k].lock() else {
                continue;
            };
            if matches!((&*slot, leave), (Slot::In(_), true) | (Slot::Out, false)) {
                taken = Some((k, std::mem::replace(&mut *slot, Slot::Busy)));
                break;
            }
        }
        let Some((k, taken)) = taken else {
            skipped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Ok(permit) = inflight.clone().try_acquire_owned() else {
            phase.fail("too many joins/leaves in progress");
            return;
        };
        let (parts, phase, slots, uri) = (parts.clone(), phase.clone(), slots.clone(), uri.clone());
        tokio::spawn(async move {
            let next = match taken {
                Slot::In(mut d) => match parts.bye(&mut d).await {
                    Ok(took) => {
                        phase.ok(took);
                        Slot::Out
                    }
                    Err(e) => {
                        phase.fail(format!("leave: {e}"));
                        Slot::In(d)
                    }
                },
                Slot::Out => match parts.invite(&uri, &format!("p{k}"), AUDIO_OFFER).await {
                    Ok((d, _, took)) => {
                        phase.ok(took);
                        Slot::In(d)
                    }
                    Err(e) => {
                        phase.fail(format!("join: {e}"));
                        Slot::Out
                    }
                },
                Slot::Busy => Slot::Busy,
            };
            if !matches!(next, Slot::Busy) {
                if let Ok(mut s) = slots[k].lock() {
                    *s = next;
                }
            }
            drop(permit);
        });
    })
    .await;
    let storm_s = phase.elapsed().as_secs_f64();
    wait_until(Duration::from_secs(40), || {
        inflight.available_permits() == 10_000
    })
    .await;
    let truth: BTreeSet<String> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s.lock().as_deref(), Ok(Slot::In(_))))
        .map(|(k, _)| entity(k))
        .collect();
    // Every subscriber converges within a few intervals once the changes stop.
    let settle = interval * 3 + Duration::from_secs(15);
    let converged = |w: &Watch| {
        (0..o.subscribers)
            .filter(|i| w.connected(*i).as_ref() == Some(&truth))
            .count()
    };
    wait_until(settle, || converged(&watch) == o.subscribers).await;
    let ok_subs = converged(&watch);
    let notifies = watch.notifies.load(Ordering::Relaxed) - n0;
    phase.set("subscribers_converged", ok_subs as u64);
    phase.set("skipped_ops", skipped.load(Ordering::Relaxed));
    phase.set("participants_at_end", truth.len() as u64);
    phase.set("notifies", notifies);
    phase.set(
        "notifies_per_subscriber_per_s",
        ((notifies as f64 / o.subscribers.max(1) as f64 / storm_s) * 1000.0).round() / 1000.0,
    );
    check(&watch, &phase);
    phase.set(
        "retransmissions_in",
        subs.retransmissions_in.load(Ordering::Relaxed),
    );
    for _ in ok_subs..o.subscribers {
        phase.fail("a subscriber's view differs from the session (lost change)");
    }
    ctx.report(&phase);

    let phase = Arc::new(Phase::start("roster-storm", "leave", ctx.pid));
    unsubscribe_all(&subs, dialogs, &phase).await;
    let dialogs: Vec<Dialog> = slots
        .iter()
        .filter_map(|s| {
            match s
                .lock()
                .ok()
                .map(|mut s| std::mem::replace(&mut *s, Slot::Out))
            {
                Some(Slot::In(d)) => Some(d),
                _ => None,
            }
        })
        .collect();
    crate::group_message::leave_all(dialogs, &parts, &phase).await;
    ctx.report(&phase);
    Ok(())
}

/// Version and spacing checks into the phase.
fn check(watch: &Watch, phase: &Phase) {
    let versions = watch.version_errors.load(Ordering::Relaxed);
    let spacing = watch.spacing_violations.load(Ordering::Relaxed);
    let bad = watch.bad_bodies.load(Ordering::Relaxed);
    phase.set("version_errors", versions);
    phase.set("spacing_violations", spacing);
    phase.set("bad_bodies", bad);
    if let Some(g) = watch.min_gap() {
        phase.set("min_notify_gap_ms", g.as_millis() as u64);
    }
    if versions + spacing + bad > 0 {
        phase.fail(format!(
            "{versions} version errors, {spacing} NOTIFYs closer than the interval, {bad} bad bodies"
        ));
    }
}

pub async fn soak(ctx: Arc<Ctx>, o: SoakOpts) -> anyhow::Result<()> {
    let interval = Duration::from_millis(o.interval_ms);
    let sessions = o.sessions.max(1);
    let nsubs = sessions * o.subscribers;
    let watch = Arc::new(Watch::new(nsubs, interval));
    let subs = Agent::bind(ctx.focus.ip(), ctx.focus, true, watch.clone()).await?;
    let parts = Agent::bind(ctx.focus.ip(), ctx.focus, true, Arc::new(Accept)).await?;
    let baseline = sample(ctx.pid);

    let phase = Arc::new(Phase::start("idle-soak", "subscribe", ctx.pid));
    let per = o.subscribers.max(1);
    let groups = &o.groups;
    let dom = ctx.domain.clone();
    let sub_dialogs = subscribe_all(&subs, 0, nsubs, |i| groups.uri(i / per, &dom), &phase).await;
    ctx.report(&phase);

    let phase = Arc::new(Phase::start("idle-soak", "join", ctx.pid));
    let total = (sessions * o.participants) as u64;
    let dialogs: Arc<Mutex<Vec<Dialog>>> = Arc::new(Mutex::new(Vec::new()));
    let inflight = Arc::new(Semaphore::new(5_000));
    let m = o.participants.max(1);
    pace(o.join_rate, total, |i| {
        let Ok(permit) = inflight.clone().try_acquire_owned() else {
            phase.fail("too many joins in progress");
            return;
        };
        let (parts, phase, dialogs) = (parts.clone(), phase.clone(), dialogs.clone());
        let uri = o.groups.uri(i as usize / m, &ctx.domain);
        tokio::spawn(async move {
            match parts.invite(&uri, &format!("p{i}"), AUDIO_OFFER).await {
                Ok((d, _, took)) => {
                    phase.ok(took);
                    if let Ok(mut v) = dialogs.lock() {
                        v.push(d);
                    }
                }
                Err(e) => phase.fail(format!("join: {e}")),
            }
            drop(permit);
        });
    })
    .await;
    wait_until(Duration::from_secs(40), || {
        inflight.available_permits() == 5_000
    })
    .await;
    ctx.report(&phase);

    let phase = Arc::new(Phase::start("idle-soak", "hold", ctx.pid));
    tokio::time::sleep(Duration::from_secs_f64(o.duration)).await;
    let joined = dialogs.lock().map(|d| d.len()).unwrap_or(0);
    // Each subscriber must show its session's participants.
    let full = (0..nsubs)
        .filter(|i| watch.connected(*i).map(|c| c.len()) == Some(m))
        .count();
    phase.completed.store(full as u64, Ordering::Relaxed);
    for _ in full..nsubs {
        phase.fail("a subscriber's view misses participants");
    }
    check(&watch, &phase);
    phase.set(
        "retransmissions_in",
        subs.retransmissions_in.load(Ordering::Relaxed),
    );
    phase.set("participants", joined as u64);
    phase.set("subscriptions", sub_dialogs.len() as u64);
    if let (Some(b), Some(a)) = (baseline, sample(ctx.pid)) {
        if joined > 0 {
            let per = a.rss.saturating_sub(b.rss) as f64 / joined as f64;
            phase.set(
                "rss_per_participant_kb",
                (per / 1024.0 * 100.0).round() / 100.0,
            );
        }
        phase.set(
            "rss_growth_mb",
            ((a.rss as f64 - b.rss as f64) / 1e6).round(),
        );
    }
    ctx.report(&phase);

    let phase = Arc::new(Phase::start("idle-soak", "leave", ctx.pid));
    unsubscribe_all(&subs, sub_dialogs, &phase).await;
    let all = dialogs
        .lock()
        .map(|mut d| std::mem::take(&mut *d))
        .unwrap_or_default();
    crate::group_message::leave_all(all, &parts, &phase).await;
    ctx.report(&phase);
    Ok(())
}
