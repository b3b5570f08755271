//! systemd's readiness protocol (`Type=notify`), written by hand: a datagram to the socket
//! named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). `READY=1` once
//! every listener is bound, `WATCHDOG=1` every half `WATCHDOG_USEC` while the process runs,
//! `STOPPING=1` when it drains. Outside systemd (no `NOTIFY_SOCKET`) every call does nothing.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` (e.g. `"READY=1"`) to the service manager, if there is one.
pub fn notify(state: &str) -> io::Result<()> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt as _;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        socket.send_to(state.as_bytes(), &path)?;
    }
    Ok(())
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when it is set for this process
/// (`WATCHDOG_PID` absent or ours).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
