//! Phase accounting and the summary line: completions, failures, latency percentiles, and the
//! focus process's CPU time and RSS read from `/proc/<pid>`.

use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on every Linux we run).
const USER_HZ: f64 = 100.0;

/// CPU seconds (user + system) and RSS in bytes of a process, from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    pub cpu_s: f64,
    pub rss: u64,
}

/// Reads the focus's counters; `None` when no pid was given or the process is gone.
pub fn sample(pid: Option<u32>) -> Option<ProcSample> {
    let pid = pid?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some(ProcSample {
        cpu_s: (utime + stime) / USER_HZ,
        rss: rss_kb * 1024,
    })
}

/// One phase of a scenario: what completed, what failed, and how long each took.
pub struct Phase {
    pub scenario: &'static str,
    pub name: &'static str,
    started: Instant,
    pid: Option<u32>,
    before: Option<ProcSample>,
    pub completed: AtomicU64,
    pub failed: AtomicU64,
    /// Latencies in microseconds (one per completed operation, or per checked item).
    latencies: Mutex<Vec<u32>>,
    /// Scenario-specific figures (deliveries, lost, duplicated, NOTIFYs...).
    extra: Mutex<Map<String, Value>>,
    /// First few failure reasons, for the operator.
    reasons: Mutex<Vec<String>>,
}

impl Phase {
    pub fn start(scenario: &'static str, name: &'static str, pid: Option<u32>) -> Phase {
        Phase {
            scenario,
            name,
            started: Instant::now(),
            pid,
            before: sample(pid),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            latencies: Mutex::new(Vec::new()),
            extra: Mutex::new(Map::new()),
            reasons: Mutex::new(Vec::new()),
        }
    }

    pub fn ok(&self, latency: Duration) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        self.latency(latency);
    }

    pub fn latency(&self, latency: Duration) {
        let us = latency.as_micros().min(u128::from(u32::MAX)) as u32;
        if let Ok(mut l) = self.latencies.lock() {
            l.push(us);
        }
    }

    /// Adds a batch of latencies (a receiver's own list, merged at the end).
    pub fn latencies(&self, batch: &[u32]) {
        if let Ok(mut l) = self.latencies.lock() {
            l.extend_from_slice(batch);
        }
    }

    pub fn fail(&self, why: impl Into<String>) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut r) = self.reasons.lock() {
            if r.len() < 5 {
                r.push(why.into());
            }
        }
    }

    pub fn set(&self, key: &str, value: impl Into<Value>) {
        if let Ok(mut e) = self.extra.lock() {
            e.insert(key.to_string(), value.into());
        }
    }

    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Focus CPU seconds used since the phase started.
    pub fn cpu_s(&self) -> Option<f64> {
        Some(sample(self.pid)?.cpu_s - self.before?.cpu_s)
    }

    /// The elapsed time so far.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the phase: the summary as JSON (also what the text line is made from).
    pub fn finish(&self) -> Value {
        let elapsed = self.started.elapsed().as_secs_f64();
        let after = sample(self.pid);
        let mut lat = self.latencies.lock().map(|l| l.clone()).unwrap_or_default();
        lat.sort_unstable();
        let pct = |p: f64| -> f64 {
            if lat.is_empty() {
                return 0.0;
            }
            let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
            f64::from(lat[i]) / 1000.0
        };
        let completed = self.completed();
        let failed = self.failed();
        let mut v = json!({
            "scenario": self.scenario,
            "phase": self.name,
            "seconds": round3(elapsed),
            "rate": round3(completed as f64 / elapsed.max(1e-9)),
            "completed": completed,
            "failed": failed,
            "p50_ms": round3(pct(0.50)),
            "p99_ms": round3(pct(0.99)),
            "max_ms": round3(lat.last().map_or(0.0, |m| f64::from(*m) / 1000.0)),
        });
        let obj = v.as_object_mut().expect("a JSON object");
        if let (Some(b), Some(a)) = (self.before, after) {
            obj.insert("focus_cpu_s".into(), json!(round3(a.cpu_s - b.cpu_s)));
            obj.insert("focus_rss_mb".into(), json!(round3(a.rss as f64 / 1e6)));
        }
        if let Ok(extra) = self.extra.lock() {
            for (k, x) in extra.iter() {
                obj.insert(k.clone(), x.clone());
            }
        }
        if let Ok(r) = self.reasons.lock() {
            if !r.is_empty() {
                obj.insert("first_failures".into(), json!(*r));
            }
        }
        v
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Keys printed first, in this order; the others follow alphabetically.
const FIRST: &[&str] = &[
    "scenario",
    "phase",
    "rate",
    "completed",
    "failed",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "focus_cpu_s",
    "focus_rss_mb",
    "seconds",
];

/// The one-line text form of a phase summary: `key=value` pairs.
pub fn line(v: &Value) -> String {
    let Some(obj) = v.as_object() else {
        return v.to_string();
    };
    let rest = obj.keys().filter(|k| !FIRST.contains(&k.as_str()));
    let mut out = String::new();
    for k in FIRST.iter().copied().chain(rest.map(String::as_str)) {
        let Some(x) = obj.get(k) else { continue };
        if !out.is_empty() {
            out.push(' ');
        }
        match x {
            Value::String(s) => out.push_str(&format!("{k}={s}")),
            other => out.push_str(&format!("{k}={other}")),
        }
    }
    out
}
