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
    assert!(unit.contains("--config"), "the unit does not set --config");
    assert!(help.contains("--config"), "the binary has no --config");
    // The network set-up lives in the configuration file, not in the unit.
    for flag in [
        "--sip-listen",
        "--sips-listen",
        "--msrp-listen",
        "--metrics-listen",
        "--admin-listen",
    ] {
        assert!(help.contains(flag), "the binary has no {flag}");
        assert!(
            !unit.contains(flag),
            "the unit sets {flag}: put it in [listen]"
        );
    }
    for directive in [
        "User=cpm-focus",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "Restart=on-failure",
        "Type=notify\n",
        "NotifyAccess=main\n",
        "WatchdogSec=",
        "ExecStartPre=/usr/local/bin/cpm-focus check-config /etc/cpm-focus/focus.toml\n",
    ] {
        assert!(unit.contains(directive), "the unit lacks {directive:?}");
    }
    // sd_notify needs AF_UNIX.
    let families = unit
        .lines()
        .find(|l| l.starts_with("RestrictAddressFamilies="))
        .expect("RestrictAddressFamilies");
    assert!(families.contains("AF_UNIX"), "{families}");
    // systemctl reload checks the file first, and signals only when it is good.
    let reloads: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("ExecReload="))
        .collect();
    assert_eq!(
        reloads,
        [
            "/usr/local/bin/cpm-focus check-config /etc/cpm-focus/focus.toml",
            "/bin/kill -HUP $MAINPID"
        ]
    );
    let sysusers = include_str!("../config/cpm-focus.sysusers");
    assert!(sysusers.lines().any(|l| l.starts_with("u cpm-focus ")));
}

#[test]
fn the_unit_documentation_is_installed_by_its_own_steps() {
    let unit = include_str!("../config/cpm-focus.service");
    let doc = unit
        .lines()
        .find_map(|l| l.strip_prefix("Documentation=file:"))
        .expect("Documentation=file:...");
    let name = doc
        .strip_prefix("/usr/local/share/doc/cpm-focus/")
        .unwrap_or_else(|| panic!("Documentation= points outside the doc directory: {doc}"));
    assert!(
        unit.contains("install -D -m 0644 -t /usr/local/share/doc/cpm-focus README.md docs/*.md"),
        "the install steps do not install the documentation"
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("docs").join(name).exists() || root.join(name).exists(),
        "Documentation= names {name}, which the repository does not have"
    );
}

#[test]
fn the_license_matches_cargo_toml() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("license = \"Apache-2.0\""));
    let license = std::fs::read_to_string(root.join("LICENSE")).expect("LICENSE");
    assert!(license.contains("Apache License"));
    assert!(license.contains("Version 2.0, January 2004"));
    assert!(license.contains("END OF TERMS AND CONDITIONS"));
}

/// Lines of a Dockerfile, continuation lines joined.
fn dockerfile() -> Vec<String> {
    let text = include_str!("../Dockerfile");
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        if let Some(head) = l.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
        } else {
            cur.push_str(l);
            out.push(std::mem::take(&mut cur));
        }
    }
    out
}

#[test]
fn the_dockerfile_builds_the_release_binary_and_runs_it_unprivileged() {
    let lines = dockerfile();
    let froms: Vec<&String> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(
        froms.len(),
        2,
        "a build stage and a runtime stage: {froms:?}"
    );
    assert!(froms[0].contains(" AS build"), "{}", froms[0]);
    // The toolchain is at least the crate's rust-version.
    let manifest = include_str!("../Cargo.toml");
    let msrv = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("rust-version");
    assert!(
        froms[0].contains(&format!("rust:{msrv}")),
        "{} vs {msrv}",
        froms[0]
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("RUN cargo build --release --locked --bin cpm-focus")));
    // Only the binary and its configuration reach the runtime image.
    let copies: Vec<&String> = lines.iter().filter(|l| l.starts_with("COPY ")).collect();
    let runtime: Vec<&&String> = copies.iter().filter(|l| !l.contains(". .")).collect();
    assert_eq!(runtime.len(), 2, "{copies:?}");
    assert!(
        runtime[0].contains("--from=build /src/target/release/cpm-focus /usr/local/bin/cpm-focus")
    );
    assert!(runtime[1].contains("config/container.toml /etc/cpm-focus/focus.toml"));
    // Not root: the last USER is a named, unprivileged user.
    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "{user}"
    );
    // The ports it exposes are the ones its configuration serves.
    let container = include_str!("../config/container.toml");
    for (key, port) in [("sip", "5060"), ("metrics", "9464")] {
        assert!(
            container.contains(&format!("{key} = \"0.0.0.0:{port}\"")),
            "config/container.toml does not serve {key} on {port}"
        );
    }
    let expose = lines
        .iter()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    for p in ["5060/udp", "5060/tcp", "2855/tcp", "9464/tcp"] {
        assert!(
            expose.split_whitespace().any(|e| e == p),
            "EXPOSE lacks {p}"
        );
    }
    let ignore = include_str!("../.dockerignore");
    assert!(
        ignore.lines().any(|l| l == "target"),
        ".dockerignore keeps target/ out"
    );
}

#[test]
fn the_container_configuration_checks_clean() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/container.toml");
    let (ok, text) = focus(&["check-config", path]);
    assert!(ok, "{text}");
}

#[test]
fn compose_runs_the_focus_with_prometheus_and_grafana_provisioned() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let compose = include_str!("../compose.yaml");
    for service in ["  focus:", "  prometheus:", "  grafana:"] {
        assert!(
            compose.contains(&format!("\n{service}\n")),
            "compose lacks {service}"
        );
    }
    // The RTP port range needs host networking (docs/operations.md).
    assert!(compose.matches("network_mode: host").count() >= 3);
    // Every file compose mounts exists.
    for line in compose.lines() {
        let l = line.trim();
        if let Some(src) = l.strip_prefix("- ./") {
            let path = src.split(':').next().unwrap_or("");
            assert!(
                root.join(path).exists(),
                "compose mounts ./{path}, which is missing"
            );
        }
    }
    // Prometheus scrapes the focus where its container configuration serves metrics, and
    // loads the alert rules; Grafana's data source is that Prometheus.
    let prom = include_str!("../config/compose/prometheus.yml");
    assert!(prom.contains("127.0.0.1:9464"));
    assert!(prom.contains("prometheus-rules.yml"));
    assert!(compose.contains("--web.listen-address=127.0.0.1:9090"));
    let ds = include_str!("../config/compose/grafana/provisioning/datasources/prometheus.yaml");
    assert!(ds.contains("url: http://127.0.0.1:9090"));
    let dash = include_str!("../config/compose/grafana/provisioning/dashboards/cpm-focus.yaml");
    assert!(dash.contains("path: /var/lib/grafana/dashboards"));
    assert!(compose.contains("./config/grafana:/var/lib/grafana/dashboards:ro"));
    let ops = std::fs::read_to_string(root.join("docs/operations.md")).expect("operations.md");
    assert!(
        ops.contains("host networking"),
        "docs/operations.md does not say why the RTP range needs host networking"
    );
}
