//! systemd readiness (`Type=notify`): with `NOTIFY_SOCKET` set, the focus sends `READY=1` once
//! every listener is bound, `WATCHDOG=1` every half `WATCHDOG_USEC`, and `STOPPING=1` when
//! it drains on SIGTERM. The test plays systemd's side of the socket.

mod support;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};
use support::{Focus, Launch};

/// The next datagrams on `sock` until one equals `want`, within `within`.
fn expect(sock: &UnixDatagram, want: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            let done = msg == want;
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
    panic!("no {want:?} from the focus; got {seen:?}");
}

fn run(socket_name: &str, bind: impl FnOnce() -> UnixDatagram) {
    let sock = bind();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let focus = Focus::launch(
        "",
        Launch {
            env: vec![
                ("NOTIFY_SOCKET".into(), socket_name.into()),
                ("WATCHDOG_USEC".into(), "200000".into()),
            ],
            ..Launch::default()
        },
    );
    // READY=1 follows the ready line the launch waited for: it is on its way.
    let first = expect(&sock, "READY=1", Duration::from_secs(2));
    assert_eq!(first, ["READY=1"], "READY=1 comes first");
    // Pings every 100 ms.
    let started = Instant::now();
    expect(&sock, "WATCHDOG=1", Duration::from_secs(2));
    expect(&sock, "WATCHDOG=1", Duration::from_secs(2));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    focus.terminate();
    expect(&sock, "STOPPING=1", Duration::from_secs(5));
}

#[test]
fn readiness_watchdog_and_stopping_reach_a_path_socket() {
    let path = std::env::temp_dir().join(format!("cpm-focus-notify-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let name = path.display().to_string();
    run(&name, || {
        UnixDatagram::bind(&path).expect("binding the notify socket")
    });
    let _ = std::fs::remove_file(&path);
}

#[test]
fn readiness_reaches_an_abstract_socket() {
    use std::os::linux::net::SocketAddrExt as _;
    let name = format!("cpm-focus-notify-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .expect("abstract address");
    run(&format!("@{name}"), || {
        UnixDatagram::bind_addr(&addr).expect("binding the abstract notify socket")
    });
}

#[test]
fn a_watchdog_for_another_process_is_not_fed() {
    let path =
        std::env::temp_dir().join(format!("cpm-focus-notify-pid-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).expect("binding");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let _focus = Focus::launch(
        "",
        Launch {
            env: vec![
                ("NOTIFY_SOCKET".into(), path.display().to_string()),
                ("WATCHDOG_USEC".into(), "100000".into()),
                // systemd names the main PID; this is not the focus's.
                ("WATCHDOG_PID".into(), "1".into()),
            ],
            ..Launch::default()
        },
    );
    expect(&sock, "READY=1", Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut buf = [0u8; 64];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            panic!("unexpected {:?}", String::from_utf8_lossy(&buf[..n]));
        }
    }
    let _ = std::fs::remove_file(&path);
}
