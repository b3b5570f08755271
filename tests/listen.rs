//! The listen addresses come from `[listen]` of the configuration file, so a unit file or a
//! container holds no network set-up; a command-line flag overrides its key.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};

/// A port free for UDP and TCP on 127.0.0.1 right now.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts the focus with `config` and `args`; returns its ready line, then kills it.
fn ready_line(config: &str, args: &[&str]) -> String {
    let path = std::env::temp_dir().join(format!(
        "cpm-focus-listen-{}-{}.toml",
        std::process::id(),
        free_port()
    ));
    std::fs::write(&path, config).expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cpm-focus"))
        .arg("--config")
        .arg(&path)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning cpm-focus");
    let stdout = child.stdout.take().expect("stdout");
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("cpm-focus ready "));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    line.expect("no ready line")
}

#[test]
fn the_configuration_file_sets_every_listen_address() {
    let (sip, msrp, metrics, admin) = (free_port(), free_port(), free_port(), free_port());
    let config = format!(
        "[listen]\nsip = \"127.0.0.1:{sip}\"\nmsrp = \"127.0.0.1:{msrp}\"\n\
         metrics = \"127.0.0.1:{metrics}\"\nadmin = \"127.0.0.1:{admin}\"\n"
    );
    let line = ready_line(&config, &[]);
    for want in [
        format!("sip_udp=127.0.0.1:{sip} "),
        format!("sip_tcp=127.0.0.1:{sip} "),
        format!("msrp=127.0.0.1:{msrp} "),
        format!("metrics=127.0.0.1:{metrics} "),
        format!("admin=127.0.0.1:{admin}"),
    ] {
        assert!(line.contains(&want), "{want} not in {line}");
    }
    // The command line overrides a key; the others stay as the file says.
    let other = free_port();
    let line = ready_line(&config, &["--sip-listen", &format!("127.0.0.1:{other}")]);
    assert!(
        line.contains(&format!("sip_udp=127.0.0.1:{other} ")),
        "{line}"
    );
    assert!(
        line.contains(&format!("metrics=127.0.0.1:{metrics} ")),
        "{line}"
    );
}

#[test]
fn a_bad_listen_address_is_refused_with_its_key() {
    let path =
        std::env::temp_dir().join(format!("cpm-focus-listen-bad-{}.toml", std::process::id()));
    std::fs::write(&path, "[listen]\nsip = \"localhost:5060\"\n").expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_cpm-focus"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("check-config");
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen.sip"), "{err}");
}
