use super::*;

/// `sip.advertise` names one host per IP family (IPv6 with or without brackets), and a
/// bare IPv6 outbound proxy is refused with the bracket hint.
#[test]
fn advertise_takes_a_list_and_ipv6_is_accepted() {
    let ok = "[sip]\nadvertise = \"203.0.113.5, 2001:db8::5\"\n";
    assert!(Config::from_toml(ok).is_ok());
    assert!(Config::from_toml("[sip]\nadvertise = \"[2001:db8::5]\"\n").is_ok());
    assert!(Config::from_toml("[sip]\noutbound_proxy = \"[2001:db8::1]:5060\"\n").is_ok());
    for (text, key, hint) in [
        ("[sip]\nadvertise = \"a, ,b\"\n", "sip.advertise", "commas"),
        (
            "[sip]\nadvertise = \"bad host\"\n",
            "sip.advertise",
            "commas",
        ),
        (
            "[sip]\noutbound_proxy = \"2001:db8::1\"\n",
            "sip.outbound_proxy",
            "brackets",
        ),
    ] {
        let Err(ConfigError::Invalid(issues)) = Config::from_toml(text) else {
            panic!("accepted: {text}")
        };
        assert!(
            issues
                .iter()
                .any(|i| i.key == key && i.message.contains(hint)),
            "{text}: {issues:?}"
        );
    }
}

#[test]
fn embedded_default_is_valid_and_matches_defaults() {
    let c = Config::embedded().unwrap();
    assert_eq!(c.focus.domain, "focus.example.com");
    assert_eq!(c.groups.len(), 1);
    assert_eq!(c.groups[0].uri, "sip:team@focus.example.com");
    assert_eq!(c.groups[0].join, JoinRule::Open);
    assert_eq!(c.groups[0].max_participants, 1000);
    assert!(c.groups[0].allow_signalling_only);
    // The file documents the built-in defaults: they must agree.
    let d = Config::default();
    assert_eq!(c.sip.max_message_size, d.sip.max_message_size);
    assert_eq!(c.sip.t1_ms, d.sip.t1_ms);
    assert_eq!(c.supervisor.mailbox_capacity, d.supervisor.mailbox_capacity);
    assert_eq!(
        c.subscriptions.min_notify_interval_ms,
        d.subscriptions.min_notify_interval_ms
    );
    assert_eq!(c.shutdown.grace_s, d.shutdown.grace_s);
    assert_eq!(c.msrp.max_message_size, d.msrp.max_message_size);
    assert_eq!(c.msrp.queue_depth, d.msrp.queue_depth);
    assert!(c.groups[0].allow_private_messages);
    // Loopback is trusted (the README's SIPp tour), and only proven identities count.
    assert_eq!(c.policy.trusted_hosts, ["127.0.0.1", "::1"]);
    assert_eq!(c.policy.trusted_hosts, d.policy.trusted_hosts);
    assert_eq!(c.policy.identity, IdentityMode::Asserted);
    assert_eq!(c.policy.identity, d.policy.identity);
    assert_eq!(c.charging.path, d.charging.path);
    assert_eq!(c.charging.max_file_bytes, d.charging.max_file_bytes);
    assert_eq!(c.charging.keep_files, d.charging.keep_files);
    assert_eq!(c.charging.fsync, d.charging.fsync);
    assert_eq!(c.charging.fsync_interval_ms, d.charging.fsync_interval_ms);
    assert_eq!(c.charging.max_backlog, d.charging.max_backlog);
    assert_eq!(c.charging.online_url, d.charging.online_url);
    assert_eq!(c.charging.online_timeout_ms, d.charging.online_timeout_ms);
    assert_eq!(c.charging.on_unavailable, d.charging.on_unavailable);
    assert_eq!(
        format!("{:?}", c.charging),
        format!("{:?}", d.charging),
        "the credit client's keys in config/focus.toml are the defaults"
    );
    assert_eq!(c.rtp.port_min, d.rtp.port_min);
    assert_eq!(c.rtp.port_max, d.rtp.port_max);
    assert_eq!(c.rtp.silence_timeout_s, d.rtp.silence_timeout_s);
    assert_eq!(c.rtp.max_packet_rate, d.rtp.max_packet_rate);
    assert_eq!(c.rtp.codecs, d.rtp.codecs);
    assert_eq!(c.rtp.latching, d.rtp.latching);
    assert_eq!(c.floor.listen, d.floor.listen);
    assert_eq!(c.floor.max_talk_burst_s, d.floor.max_talk_burst_s);
    assert_eq!(c.floor.max_queue, d.floor.max_queue);
    assert_eq!(c.floor.max_requests_per_user, d.floor.max_requests_per_user);
    assert_eq!(c.floor.priority_ordering, d.floor.priority_ordering);
    assert_eq!(c.floor.moderated, d.floor.moderated);
    assert_eq!(c.floor.max_connections, d.floor.max_connections);
    assert_eq!(c.floor.bind_timeout_s, d.floor.bind_timeout_s);
    assert_eq!(c.floor.max_message_size, d.floor.max_message_size);
    assert_eq!(c.floor.write_queue, d.floor.write_queue);
    assert_eq!(
        c.sip.max_tcp_connections_per_source,
        d.sip.max_tcp_connections_per_source
    );
    assert_eq!(c.sip.tcp_message_timeout_s, d.sip.tcp_message_timeout_s);
    assert_eq!(c.sip.tcp_write_timeout_s, d.sip.tcp_write_timeout_s);
    // Fair shares (issue 14).
    assert_eq!(
        (
            c.sip.tcp_first_byte_timeout_ms,
            c.sip.tcp_trusted_reserve_pct,
            c.sip.tcp_evict_unadmitted
        ),
        (
            d.sip.tcp_first_byte_timeout_ms,
            d.sip.tcp_trusted_reserve_pct,
            d.sip.tcp_evict_unadmitted
        )
    );
    assert_eq!(
        c.subscriptions.outsider_share_pct,
        d.subscriptions.outsider_share_pct
    );
    assert_eq!(c.rtp.max_legs_per_source, d.rtp.max_legs_per_source);
    assert_eq!(
        (
            c.policy.max_participants_per_source,
            c.policy.pager_rate_per_sender,
            c.policy.pager_burst_per_sender
        ),
        (
            d.policy.max_participants_per_source,
            d.policy.pager_rate_per_sender,
            d.policy.pager_burst_per_sender
        )
    );
    assert_eq!(c.msrp.max_chunk_rate, d.msrp.max_chunk_rate);
    assert_eq!(c.msrp.max_bytes_rate, d.msrp.max_bytes_rate);
    let (o, od) = (&c.overload, &d.overload);
    assert_eq!(
        (o.source_rate, o.source_burst, o.reject_rate, o.max_sources),
        (
            od.source_rate,
            od.source_burst,
            od.reject_rate,
            od.max_sources
        )
    );
    assert_eq!(o.trusted_sources, od.trusted_sources);
    assert_eq!(
        (o.trusted_rate, o.trusted_burst),
        (od.trusted_rate, od.trusted_burst)
    );
    assert_eq!(
        (
            o.transactions_high_pct,
            o.queue_high_pct,
            o.mailbox_high_pct
        ),
        (
            od.transactions_high_pct,
            od.queue_high_pct,
            od.mailbox_high_pct
        )
    );
    assert!(!c.tls.enabled());
    assert_eq!(c.tls.handshake_timeout_ms, d.tls.handshake_timeout_ms);
    assert_eq!(c.session_timer.enabled, d.session_timer.enabled);
    assert_eq!(c.session_timer.expires_s, d.session_timer.expires_s);
    assert_eq!(c.session_timer.min_se_s, d.session_timer.min_se_s);
    assert_eq!(c.journal.path, d.journal.path);
    assert_eq!(c.journal.fsync, d.journal.fsync);
    assert_eq!(c.journal.fsync_interval_ms, d.journal.fsync_interval_ms);
    assert_eq!(c.journal.recovery_window_s, d.journal.recovery_window_s);
    assert_eq!(c.journal.max_bytes, d.journal.max_bytes);
}

#[test]
fn overload_and_tls_errors_are_reported_with_their_keys() {
    let text = r#"
        [overload]
        trusted_sources = ["core.example.com"]
        reject_rate = 0
        queue_high_pct = 0
        max_queue_delay_ms = 10
        [tls]
        key_file = "focus.key"
    "#;
    let Err(ConfigError::Invalid(issues)) = Config::from_toml(text) else {
        panic!("accepted")
    };
    let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "overload.trusted_sources[0]",
            "overload.reject_rate",
            "overload.queue_high_pct",
            "overload.max_queue_delay_ms",
            "tls.cert_file",
        ]
    );
}

#[test]
fn session_timer_and_journal_errors_are_reported_with_their_keys() {
    let text = r#"
        [session_timer]
        expires_s = 60
        min_se_s = 90
        [journal]
        path = "state/"
        fsync_interval_ms = 0
        recovery_window_s = 9999999
        max_bytes = 10
    "#;
    let Err(ConfigError::Invalid(issues)) = Config::from_toml(text) else {
        panic!("accepted")
    };
    let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "session_timer.expires_s",
            "journal.path",
            "journal.fsync_interval_ms",
            "journal.recovery_window_s",
            "journal.max_bytes",
        ]
    );
    assert!(Config::from_toml(
        "[session_timer]
min_se_s = 0
expires_s = 0
"
    )
    .is_err());
    let good = Config::from_toml(
        "[session_timer]
enabled = false
[journal]
path = \"/var/lib/cpm/journal\"
fsync = \"always\"
",
    )
    .unwrap();
    assert!(!good.session_timer.settings().enabled);
    assert_eq!(good.journal.fsync, FsyncPolicy::Always);
}

#[test]
fn charging_errors_are_reported_with_their_keys() {
    let text = r#"
        [charging]
        path = "/var/log/cdr/"
        max_file_bytes = 10
        keep_files = 0
        fsync = "interval"
        fsync_interval_ms = 0
        max_backlog = 0
        online_url = "https://credit.example.com/check"
        online_timeout_ms = 0
    "#;
    let Err(ConfigError::Invalid(issues)) = Config::from_toml(text) else {
        panic!("accepted")
    };
    let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "charging.path",
            "charging.max_file_bytes",
            "charging.keep_files",
            "charging.fsync_interval_ms",
            "charging.max_backlog",
            "charging.online_url",
            "charging.online_timeout_ms",
        ]
    );
    let good = Config::from_toml(
        "[charging]\npath = \"cdr/focus.jsonl\"\nfsync = \"always\"\non_unavailable = \"deny\"\nonline_url = \"http://127.0.0.1:8080/credit\"\n",
    )
    .unwrap();
    assert_eq!(good.charging.fsync, FsyncPolicy::Always);
    assert_eq!(good.charging.on_unavailable, OnUnavailable::Deny);
    assert!(Config::from_toml("[charging]\nfsync = \"sometimes\"\n").is_err());
}

#[test]
fn credit_client_settings_are_checked() {
    let issues = |text: &str| -> Vec<String> {
        match Config::from_toml(text) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid(issues)) => issues.into_iter().map(|i| i.key).collect(),
            Err(e) => panic!("{e}"),
        }
    };
    let https = "[charging]\nonline_url = \"https://cc.example.com/c\"\n";
    assert_eq!(
        issues(https),
        ["charging.online_url"],
        "https without roots"
    );
    assert!(issues(&format!("{https}online_ca_file = \"/etc/cc.pem\"\n")).is_empty());
    let tls_roots = issues(&format!("{https}[tls]\nca_file = \"/etc/ca.pem\"\n"));
    assert!(
        !tls_roots.iter().any(|k| k.starts_with("charging.")),
        "{tls_roots:?}"
    );
    let http = "[charging]\nonline_url = \"http://127.0.0.1:9/c\"\n";
    for (extra, keys) in [
        ("online_token = \"abc\"\n", &[][..]),
        (
            "online_user = \"focus\"\nonline_password_file = \"/run/pw\"\n",
            &[],
        ),
        (
            "online_token = \"a\"\nonline_token_file = \"/run/t\"\n",
            &["charging.online_token"],
        ),
        ("online_token = \"a b\"\n", &["charging.online_token"]),
        ("online_user = \"focus\"\n", &["charging.online_password"]),
        ("online_password = \"pw\"\n", &["charging.online_user"]),
        (
            "online_user = \"a:b\"\nonline_password = \"pw\"\n",
            &["charging.online_user"],
        ),
        (
            "online_user = \"u\"\nonline_password = \"p\"\nonline_password_file = \"/f\"\n",
            &["charging.online_password"],
        ),
        (
            "online_token = \"t\"\nonline_user = \"u\"\nonline_password = \"p\"\n",
            &["charging.online_user"],
        ),
        (
            "online_idle_timeout_ms = 3600001\n",
            &["charging.online_idle_timeout_ms"],
        ),
        ("online_max_pending = 0\n", &["charging.online_max_pending"]),
    ] {
        assert_eq!(issues(&format!("{http}{extra}")), keys, "{extra}");
    }
    // Secrets never reach a log through Debug.
    let c = Config::from_toml(&format!(
        "{http}online_user = \"u\"\nonline_password = \"hunter2-secret\"\n"
    ))
    .unwrap();
    assert!(!format!("{:?}", c.charging).contains("hunter2"));
}

#[test]
fn xml_bounds_are_checked_and_documented() {
    let c = Config::embedded().unwrap();
    let d = XmlConfig::default();
    assert_eq!(
        (c.xml.max_bytes, c.xml.max_depth, c.xml.max_elements),
        (d.max_bytes, d.max_depth, d.max_elements)
    );
    let text = "[xml]\nmax_bytes = 10\nmax_depth = 300\nmax_elements = 0\n";
    let Err(ConfigError::Invalid(issues)) = Config::from_toml(text) else {
        panic!("accepted")
    };
    let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["xml.max_bytes", "xml.max_depth", "xml.max_elements"]);
    let l = Config::from_toml("[xml]\nmax_depth = 5\n")
        .unwrap()
        .xml
        .list_limits();
    assert_eq!((l.max_depth, l.max_bytes), (5, 65_536));
}

#[test]
fn every_error_is_reported_with_its_key() {
    let text = r#"
        [focus]
        domain = "bad domain"
        [sip]
        t1_ms = 0
        [subscriptions]
        min_expires_s = 10
        max_expires_s = 5
        [[groups]]
        uri = "sip:a@elsewhere.com"
        max_participants = 0
    "#;
    let Err(ConfigError::Invalid(issues)) = Config::from_toml(text) else {
        panic!("accepted")
    };
    let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
    for k in [
        "focus.domain",
        "sip.t1_ms",
        "subscriptions.min_expires_s",
        "groups[0].uri",
        "groups[0].max_participants",
    ] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
}

#[test]
fn unknown_keys_are_refused() {
    let err = Config::from_toml("[sip]\nt1 = 5\n").unwrap_err();
    assert!(err.to_string().contains("t1"), "{err}");
}

#[test]
fn the_identity_mode_is_named() {
    let c = Config::from_toml("[policy]\nidentity = \"from\"\n").unwrap();
    assert_eq!(c.policy.identity, IdentityMode::From);
    let e = Config::from_toml("[policy]\nidentity = \"anyone\"\n").unwrap_err();
    assert!(e.to_string().contains("identity"), "{e}");
}

/// One source of defaults: the built-in `Default` of every section equals the embedded,
/// commented `config/focus.toml` in full, field by field (a key left out of an operator's file
/// takes the `Default`, so the documented value and the running one must be the same). Only
/// the example group is the file's own.
#[test]
fn default_equals_the_embedded_focus_toml_in_full() {
    let e = Config::embedded().unwrap();
    let d = Config::default();
    assert_eq!(e.focus, d.focus, "[focus]");
    assert_eq!(e.sip, d.sip, "[sip]");
    assert_eq!(e.supervisor, d.supervisor, "[supervisor]");
    assert_eq!(e.subscriptions, d.subscriptions, "[subscriptions]");
    assert_eq!(e.shutdown, d.shutdown, "[shutdown]");
    assert_eq!(e.msrp, d.msrp, "[msrp]");
    assert_eq!(e.rtp, d.rtp, "[rtp]");
    assert_eq!(e.floor, d.floor, "[floor]");
    assert_eq!(e.policy, d.policy, "[policy]");
    assert!(e.charging == d.charging, "[charging]");
    assert_eq!(e.xml, d.xml, "[xml]");
    assert_eq!(e.overload, d.overload, "[overload]");
    assert_eq!(e.tls, d.tls, "[tls]");
    assert!(e.admin == d.admin, "[admin]");
    assert_eq!(e.session_timer, d.session_timer, "[session_timer]");
    assert_eq!(e.journal, d.journal, "[journal]");
    assert_eq!(e.listen, d.listen, "[listen]");
    assert_eq!(e.auth, d.auth, "[auth]");
    assert_eq!(e.xdms, d.xdms, "[xdms]");
    assert!(d.groups.is_empty());
    assert_eq!(
        Config {
            groups: Vec::new(),
            ..e
        },
        d,
        "every section"
    );
}
