//! Process metrics from `/proc/self` (Linux), sampled on every scrape: CPU seconds, resident
//! memory, open and allowed file descriptors, start time. Each is a plain read of a small
//! file; where one cannot be read (another OS, a hardened /proc) its metric keeps its last
//! value.

/// Clock ticks per second in which `/proc/self/stat` counts CPU time: Linux's USER_HZ, 100
/// on every architecture the focus builds for (it is ABI, unlike the kernel's HZ). The crate
/// forbids `unsafe`, so no sysconf.
fn clock_ticks() -> f64 {
    100.0
}

/// The fields of `/proc/self/stat` after the command name (which may hold spaces).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let after = stat.rsplit_once(')')?.1;
    Some(after.split_whitespace().collect())
}

/// CPU seconds (user + system) and the start time in ticks since boot, from `/proc/self/stat`.
fn cpu_and_start() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f = stat_fields(&stat)?;
    // After the name: state is field 3 (index 0), utime 14, stime 15, starttime 22.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    let start: f64 = f.get(19)?.parse().ok()?;
    Some(((utime + stime) / clock_ticks(), start / clock_ticks()))
}

/// Boot time, seconds since the epoch (`btime` in `/proc/stat`).
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Resident memory in bytes (`VmRSS` of `/proc/self/status`, in kB).
fn rss_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024.0)
}

fn open_fds() -> Option<f64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as f64)
}

/// The soft limit on open files (`Max open files` in `/proc/self/limits`).
fn max_fds() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Updates the process metrics.
pub fn sample() {
    if let Some((cpu, start)) = cpu_and_start() {
        // A gauge holding a counter's value: the `metrics` counters are whole numbers, and
        // CPU time is not; rate() reads it the same.
        metrics::gauge!("process_cpu_seconds_total").set(cpu);
        if let Some(boot) = boot_time() {
            metrics::gauge!("process_start_time_seconds").set(boot + start);
        }
    }
    if let Some(rss) = rss_bytes() {
        metrics::gauge!("process_resident_memory_bytes").set(rss);
    }
    if let Some(n) = open_fds() {
        metrics::gauge!("process_open_fds").set(n);
    }
    if let Some(n) = max_fds() {
        metrics::gauge!("process_max_fds").set(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_a_name_with_spaces_and_parens() {
        let stat = "1234 (focus (io) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 4242 1000 200";
        let f = stat_fields(stat).unwrap();
        assert_eq!(f[0], "S");
        assert_eq!(f[11], "250");
        assert_eq!(f[12], "50");
        assert_eq!(f[19], "4242");
    }

    #[test]
    fn this_process_is_measured() {
        let (cpu, start) = cpu_and_start().expect("/proc/self/stat");
        assert!(cpu >= 0.0 && start > 0.0);
        assert!(rss_bytes().expect("VmRSS") > 1024.0 * 1024.0);
        assert!(open_fds().expect("/proc/self/fd") >= 3.0);
        assert!(max_fds().expect("limits") >= open_fds().unwrap_or(0.0));
    }
}
