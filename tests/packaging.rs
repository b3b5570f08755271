//! Packaging: `--version` names the git revision, the embedded configuration checks clean,
//! and the systemd unit starts the binary with flags it has, hardened.

use std::process::Command;

fn focus(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cpm-focus"))
        .args(args)
        .output()
        .expect("running cpm-focus");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn version_names_the_revision() {
    let (ok, text) = focus(&["--version"]);
    assert!(ok, "{text}");
    let line = text.trim();
    let rev = line
        .strip_prefix(concat!("cpm-focus ", env!("CARGO_PKG_VERSION"), " ("))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected --version: {line}"));
    // A hex commit in a git checkout (this test runs in one), `unknown` elsewhere.
    let hex = rev.strip_prefix("git ").unwrap_or(rev);
    assert!(
        rev == "unknown" || (hex.len() >= 7 && hex.bytes().all(|b| b.is_ascii_hexdigit())),
        "{rev}"
    );
}

#[test]
fn the_shipped_configuration_checks_clean() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/focus.toml");
    let (ok, text) = focus(&["check-config", path]);
    assert!(ok, "{text}");
}

#[test]
fn the_systemd_unit_is_hardened_and_uses_real_flags() {
    let unit = include_str!("../config/cpm-focus.service");
    let (_, help) = focus(&["--help"]);
    for flag in [
        "--config",
        "--sip-listen",
        "--metrics-listen",
        "--admin-listen",
    ] {
        assert!(unit.contains(flag), "the unit does not set {flag}");
        assert!(help.contains(flag), "the binary has no {flag}");
    }
    for directive in [
        "User=cpm-focus",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ExecStartPre=/usr/local/bin/cpm-focus check-config",
    ] {
        assert!(unit.contains(directive), "the unit lacks {directive:?}");
    }
    let sysusers = include_str!("../config/cpm-focus.sysusers");
    assert!(sysusers.lines().any(|l| l.starts_with("u cpm-focus ")));
}
