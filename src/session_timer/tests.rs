//! Session-timer grammar, negotiation tables and the timer machine in virtual time.

use super::*;

fn settings(expires: u32, min_se: u32) -> TimerSettings {
    TimerSettings {
        enabled: true,
        expires,
        min_se,
    }
}

fn headers(se: Option<&str>, min_se: Option<u32>, supported: bool) -> TimerHeaders {
    TimerHeaders {
        session_expires: se.map(|s| SessionExpires::parse(s).unwrap()),
        min_se,
        supported,
    }
}

#[test]
fn session_expires_grammar() {
    assert_eq!(
        SessionExpires::parse("1800;refresher=uac"),
        Ok(SessionExpires {
            interval: 1800,
            refresher: Some(Refresher::Uac)
        })
    );
    assert_eq!(
        SessionExpires::parse(" 90 ; refresher = UAS ; x=1"),
        Ok(SessionExpires {
            interval: 90,
            refresher: Some(Refresher::Uas)
        })
    );
    assert_eq!(
        SessionExpires::parse("4000000000000").map(|s| s.interval),
        Ok(u32::MAX)
    );
    for bad in ["", "abc", "-5", "0", "90;refresher=both", "1.5"] {
        assert_eq!(
            SessionExpires::parse(bad),
            Err(TimerError::SessionExpires),
            "{bad:?}"
        );
    }
    assert_eq!(parse_min_se("90"), Ok(90));
    assert_eq!(parse_min_se("120;x"), Ok(120));
    assert_eq!(parse_min_se("x"), Err(TimerError::MinSe));
}

#[test]
fn uas_refuses_an_interval_below_its_min_se() {
    let s = settings(1800, 120);
    assert_eq!(
        negotiate_uas(&s, &headers(Some("100"), None, true)),
        UasDecision::TooSmall { min_se: 120 }
    );
    // At the minimum is fine.
    assert!(matches!(
        negotiate_uas(&s, &headers(Some("120"), None, true)),
        UasDecision::Timer { interval: 120, .. }
    ));
}

#[test]
fn uas_shortens_never_lengthens_and_keeps_the_request_min_se() {
    let s = settings(600, 90);
    // Longer than ours: shortened to ours.
    assert_eq!(
        negotiate_uas(&s, &headers(Some("3600"), None, true)),
        UasDecision::Timer {
            interval: 600,
            refresher: Refresher::Uac,
            require: true
        }
    );
    // Shorter than ours: kept.
    assert!(matches!(
        negotiate_uas(&s, &headers(Some("300"), None, true)),
        UasDecision::Timer { interval: 300, .. }
    ));
    // The request's Min-SE is a floor for our shortening.
    assert!(matches!(
        negotiate_uas(&s, &headers(Some("3600"), Some(1200), true)),
        UasDecision::Timer { interval: 1200, .. }
    ));
    // No Session-Expires: ours, at least the request's Min-SE.
    assert!(matches!(
        negotiate_uas(&s, &headers(None, None, true)),
        UasDecision::Timer { interval: 600, .. }
    ));
    assert!(matches!(
        negotiate_uas(&s, &headers(None, Some(900), true)),
        UasDecision::Timer { interval: 900, .. }
    ));
}

#[test]
fn refresher_table_of_rfc_4028_section_9() {
    let s = settings(1800, 90);
    let refresher = |h: TimerHeaders| match negotiate_uas(&s, &h) {
        UasDecision::Timer {
            refresher, require, ..
        } => (refresher, require),
        other => panic!("{other:?}"),
    };
    // UAC without timer support: the UAS refreshes, no Require.
    assert_eq!(
        refresher(headers(Some("1800"), None, false)),
        (Refresher::Uas, false)
    );
    assert_eq!(
        refresher(headers(None, None, false)),
        (Refresher::Uas, false)
    );
    // Supported, none asked: we let the participant refresh.
    assert_eq!(
        refresher(headers(Some("1800"), None, true)),
        (Refresher::Uac, true)
    );
    // Supported, asked: as asked.
    assert_eq!(
        refresher(headers(Some("1800;refresher=uac"), None, true)),
        (Refresher::Uac, true)
    );
    assert_eq!(
        refresher(headers(Some("1800;refresher=uas"), None, true)),
        (Refresher::Uas, true)
    );
}

#[test]
fn disabled_timers_negotiate_nothing() {
    let s = TimerSettings {
        enabled: false,
        ..TimerSettings::default()
    };
    assert_eq!(
        negotiate_uas(&s, &headers(Some("10"), None, true)),
        UasDecision::Off
    );
    assert_eq!(negotiate_uac(&s, 1800, &headers(None, None, false)), None);
}

#[test]
fn duties_follow_the_transaction_roles() {
    assert_eq!(Duty::of(Refresher::Uac, true), Duty::Focus);
    assert_eq!(Duty::of(Refresher::Uas, true), Duty::Peer);
    assert_eq!(Duty::of(Refresher::Uac, false), Duty::Peer);
    assert_eq!(Duty::of(Refresher::Uas, false), Duty::Focus);
    for d in [Duty::Focus, Duty::Peer] {
        for uac in [true, false] {
            assert_eq!(Duty::of(d.refresher(uac), uac), d);
        }
    }
}

#[test]
fn uac_side_takes_the_answer_or_refreshes_alone() {
    let s = settings(1800, 90);
    assert_eq!(
        negotiate_uac(&s, 1800, &headers(Some("600;refresher=uas"), None, true)),
        Some((600, Duty::Peer))
    );
    assert_eq!(
        negotiate_uac(&s, 1800, &headers(Some("600;refresher=uac"), None, true)),
        Some((600, Duty::Focus))
    );
    // A UAS that does not do timers: we refresh with what we asked.
    assert_eq!(
        negotiate_uac(&s, 1800, &headers(None, None, false)),
        Some((1800, Duty::Focus))
    );
}

#[test]
fn the_peer_must_refresh_before_the_bye_margin() {
    let t0 = Instant::now();
    let mut t = SessionTimer::new(t0, 90, Duty::Peer);
    // BYE at expiry - min(32, 30) = 60 s.
    assert_eq!(t.deadline(), t0 + Duration::from_secs(60));
    assert_eq!(t.on_timeout(t0 + Duration::from_secs(59)), None);
    // A refresh at 45 s moves it.
    t.refreshed(t0 + Duration::from_secs(45), 90, Duty::Peer);
    assert_eq!(t.on_timeout(t0 + Duration::from_secs(100)), None);
    assert_eq!(
        t.on_timeout(t0 + Duration::from_secs(105)),
        Some(TimerAction::Expire)
    );
    // Long intervals keep a 32 s margin.
    let long = SessionTimer::new(t0, 1800, Duty::Peer);
    assert_eq!(long.deadline(), t0 + Duration::from_secs(1768));
}

#[test]
fn the_focus_refreshes_at_half_time_and_expires_when_unanswered() {
    let t0 = Instant::now();
    let mut t = SessionTimer::new(t0, 100, Duty::Focus);
    assert_eq!(t.deadline(), t0 + Duration::from_secs(50));
    assert_eq!(t.on_timeout(t0 + Duration::from_secs(49)), None);
    assert_eq!(
        t.on_timeout(t0 + Duration::from_secs(50)),
        Some(TimerAction::Refresh)
    );
    assert!(t.in_flight());
    // Nothing more until the session would expire.
    assert_eq!(t.deadline(), t0 + Duration::from_secs(100));
    assert_eq!(t.on_timeout(t0 + Duration::from_secs(99)), None);
    assert_eq!(
        t.on_timeout(t0 + Duration::from_secs(100)),
        Some(TimerAction::Expire)
    );
}

#[test]
fn an_answered_refresh_starts_a_new_interval() {
    let t0 = Instant::now();
    let mut t = SessionTimer::new(t0, 100, Duty::Focus);
    assert_eq!(
        t.on_timeout(t0 + Duration::from_secs(50)),
        Some(TimerAction::Refresh)
    );
    t.refreshed(t0 + Duration::from_secs(51), 100, Duty::Focus);
    assert!(!t.in_flight());
    assert_eq!(t.deadline(), t0 + Duration::from_secs(101));
    // A non-2xx answer proves life too.
    assert_eq!(
        t.on_timeout(t0 + Duration::from_secs(101)),
        Some(TimerAction::Refresh)
    );
    t.answered(t0 + Duration::from_secs(102));
    assert_eq!(t.deadline(), t0 + Duration::from_secs(152));
}

#[test]
fn glare_and_too_small_retry() {
    let t0 = Instant::now();
    let mut t = SessionTimer::new(t0, 100, Duty::Focus);
    assert_eq!(
        t.on_timeout(t0 + Duration::from_secs(50)),
        Some(TimerAction::Refresh)
    );
    let at = t0 + Duration::from_secs(50) + GLARE_RETRY;
    t.retry(at, None);
    assert_eq!(t.deadline(), at);
    assert_eq!(t.on_timeout(at), Some(TimerAction::Refresh));
    // 422 with Min-SE 120: at once, with the longer interval.
    let now = at + Duration::from_millis(10);
    t.retry(now, Some(120));
    assert_eq!(t.interval_s(), 120);
    assert_eq!(t.on_timeout(now), Some(TimerAction::Refresh));
}

#[test]
fn refresh_answers_are_classified() {
    assert_eq!(RefreshAnswer::of(200, None), RefreshAnswer::Refreshed);
    assert_eq!(RefreshAnswer::of(408, None), RefreshAnswer::Failed);
    assert_eq!(RefreshAnswer::of(481, None), RefreshAnswer::Failed);
    assert_eq!(RefreshAnswer::of(491, None), RefreshAnswer::Glare);
    assert_eq!(
        RefreshAnswer::of(422, Some(300)),
        RefreshAnswer::TooSmall(300)
    );
    assert_eq!(RefreshAnswer::of(422, None), RefreshAnswer::Alive);
    assert_eq!(RefreshAnswer::of(488, None), RefreshAnswer::Alive);
    assert_eq!(RefreshAnswer::of(500, None), RefreshAnswer::Alive);
}
