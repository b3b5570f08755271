//! Session timers (RFC 4028), sans-IO: the `Session-Expires` / `Min-SE` grammar, the
//! negotiation of a dialog's session interval and refresher, and one dialog's timer as a
//! small state machine fed with time that says when to refresh and when the session is dead.
//!
//! Why the focus needs it: a participant whose device vanished (battery, radio, crash)
//! sends no BYE; without a refresh duty on someone, its dialog would stay in the roster for
//! ever. With session timers either the participant refreshes (and the focus hangs up when
//! it stops) or the focus refreshes (and hangs up when the refresh is not answered).
//!
//! The session layer reads the headers, asks [`negotiate_uas`] / [`negotiate_uac`] for the
//! terms, keeps a [`SessionTimer`] per participant, and turns its [`TimerAction`]s into
//! re-INVITE/UPDATE refreshes or a BYE.

use crate::sip::{parse_saturating, HeaderName, Headers};
use std::time::{Duration, Instant};
use thiserror::Error;

/// The smallest session interval RFC 4028 §4 allows a UA to ask for when it sends no Min-SE.
pub const RFC_MIN_SE: u32 = 90;

/// After a `491 Request Pending` to our refresh, try again this much later (RFC 3261 §14.1
/// asks for 2.1 to 4 s when the focus does not own the dialog's Call-ID).
pub const GLARE_RETRY: Duration = Duration::from_millis(2100);

/// The focus's own terms (config `[session_timer]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerSettings {
    /// Use session timers at all; when false the focus neither asks for nor grants them.
    pub enabled: bool,
    /// The session interval the focus asks for and the longest it grants, in seconds.
    pub expires: u32,
    /// The shortest session interval the focus accepts (422 below it), in seconds.
    pub min_se: u32,
}

impl Default for TimerSettings {
    fn default() -> Self {
        TimerSettings {
            enabled: true,
            expires: 1800,
            min_se: RFC_MIN_SE,
        }
    }
}

/// Who refreshes, in the terms of the transaction that negotiated it (RFC 4028 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    /// The `refresher` parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// Who refreshes, seen from the focus: roles flip between transactions, duties do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duty {
    /// The focus sends the refreshes.
    Focus,
    /// The participant sends them; the focus hangs up when they stop.
    Peer,
}

impl Duty {
    /// The duty a `refresher` value means in a transaction where the focus was the UAC
    /// (`focus_is_uac`) or the UAS.
    pub fn of(refresher: Refresher, focus_is_uac: bool) -> Duty {
        match (refresher, focus_is_uac) {
            (Refresher::Uac, true) | (Refresher::Uas, false) => Duty::Focus,
            _ => Duty::Peer,
        }
    }

    /// The `refresher` value naming this duty in a transaction where the focus is the UAC
    /// (`focus_is_uac`) or the UAS.
    pub fn refresher(self, focus_is_uac: bool) -> Refresher {
        match (self, focus_is_uac) {
            (Duty::Focus, true) | (Duty::Peer, false) => Refresher::Uac,
            _ => Refresher::Uas,
        }
    }
}

/// A header the focus could not read; answered `400` with the message as reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TimerError {
    #[error("Malformed Session-Expires header")]
    SessionExpires,
    #[error("Malformed Min-SE header")]
    MinSe,
}

/// A `Session-Expires` value: delta-seconds and the optional `refresher` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    pub interval: u32,
    pub refresher: Option<Refresher>,
}

impl SessionExpires {
    /// Parses `1800;refresher=uac` (other parameters are ignored, RFC 4028 §4 `se-params`).
    pub fn parse(value: &str) -> Result<SessionExpires, TimerError> {
        let mut parts = value.split(';');
        let interval = parts
            .next()
            .and_then(parse_saturating)
            .ok_or(TimerError::SessionExpires)?;
        if interval == 0 {
            return Err(TimerError::SessionExpires);
        }
        let mut refresher = None;
        for p in parts {
            let (name, v) = p.split_once('=').unwrap_or((p, ""));
            if name.trim().eq_ignore_ascii_case("refresher") {
                refresher = Some(match v.trim() {
                    r if r.eq_ignore_ascii_case("uac") => Refresher::Uac,
                    r if r.eq_ignore_ascii_case("uas") => Refresher::Uas,
                    _ => return Err(TimerError::SessionExpires),
                });
            }
        }
        Ok(SessionExpires {
            interval,
            refresher,
        })
    }
}

/// Parses a `Min-SE` value (delta-seconds, parameters ignored).
pub fn parse_min_se(value: &str) -> Result<u32, TimerError> {
    value
        .split(';')
        .next()
        .and_then(parse_saturating)
        .ok_or(TimerError::MinSe)
}

/// What a request or response said about session timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimerHeaders {
    pub session_expires: Option<SessionExpires>,
    pub min_se: Option<u32>,
    /// `Supported: timer` or `Require: timer`: the sender understands the extension.
    pub supported: bool,
}

impl TimerHeaders {
    /// Reads the session-timer headers of a message.
    pub fn read(headers: &Headers) -> Result<TimerHeaders, TimerError> {
        let session_expires = headers
            .get(HeaderName::SessionExpires)
            .map(SessionExpires::parse)
            .transpose()?;
        let min_se = headers
            .get(HeaderName::MinSe)
            .map(parse_min_se)
            .transpose()?;
        let supported = headers.has_token(HeaderName::Supported, "timer")
            || headers.has_token(HeaderName::Require, "timer");
        Ok(TimerHeaders {
            session_expires,
            min_se,
            supported,
        })
    }
}

/// The focus's answer to a session-timer request it receives as UAS (RFC 4028 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UasDecision {
    /// `422 Session Interval Too Small` with `Min-SE: min_se`.
    TooSmall { min_se: u32 },
    /// No session timer on this dialog (the focus has them disabled).
    Off,
    /// Put `Session-Expires: interval;refresher=...` in the 2xx, with `Require: timer` when
    /// `require` is set.
    Timer {
        interval: u32,
        refresher: Refresher,
        require: bool,
    },
}

impl UasDecision {
    /// Who refreshes, seen from the focus (the UAS of this transaction).
    pub fn duty(&self) -> Option<(u32, Duty)> {
        match *self {
            UasDecision::Timer {
                interval,
                refresher,
                ..
            } => Some((interval, Duty::of(refresher, false))),
            _ => None,
        }
    }
}

/// RFC 4028 §9: the session interval and refresher of a 2xx to an INVITE or UPDATE.
///
/// - A `Session-Expires` below the focus's `min_se` is refused (422).
/// - The focus may shorten the interval to its own `expires`, never below the request's
///   `Min-SE` (90 s when absent), and never lengthens it.
/// - Without `Session-Expires` the focus asks for its own `expires` (at least the
///   request's `Min-SE`).
/// - A UAC that does not support timers gets `refresher=uas`: the focus refreshes alone. One
///   that does keeps the refresher it asked for; when it asked for none, it refreshes itself
///   (`uac`), which costs the focus nothing per participant and still catches a silent one.
pub fn negotiate_uas(settings: &TimerSettings, request: &TimerHeaders) -> UasDecision {
    if !settings.enabled {
        return UasDecision::Off;
    }
    let interval = match request.session_expires {
        Some(se) => {
            if se.interval < settings.min_se {
                return UasDecision::TooSmall {
                    min_se: settings.min_se,
                };
            }
            let floor = request
                .min_se
                .unwrap_or(RFC_MIN_SE)
                .max(settings.min_se)
                .min(se.interval);
            se.interval.min(settings.expires).max(floor)
        }
        None => settings
            .expires
            .max(request.min_se.unwrap_or(0))
            .max(settings.min_se),
    };
    let refresher = if request.supported {
        request
            .session_expires
            .and_then(|se| se.refresher)
            .unwrap_or(Refresher::Uac)
    } else {
        Refresher::Uas
    };
    UasDecision::Timer {
        interval,
        refresher,
        require: request.supported,
    }
}

/// RFC 4028 §7.2: the terms of a 2xx to a request the focus sent (as UAC) with
/// `Session-Expires: asked`. A 2xx without `Session-Expires` comes from a UAS that does not
/// do session timers: the focus then refreshes alone with the interval it asked for (a
/// re-INVITE or UPDATE is plain RFC 3261 to the peer), so a vanished peer is still found.
pub fn negotiate_uac(
    settings: &TimerSettings,
    asked: u32,
    response: &TimerHeaders,
) -> Option<(u32, Duty)> {
    if !settings.enabled {
        return None;
    }
    Some(match response.session_expires {
        Some(se) => (
            se.interval.max(1),
            Duty::of(se.refresher.unwrap_or(Refresher::Uac), true),
        ),
        None => (asked, Duty::Focus),
    })
}

/// What a dialog's timer asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerAction {
    /// Send a refresh (re-INVITE or UPDATE) now.
    Refresh,
    /// The session is dead: BYE and remove the participant.
    Expire,
}

/// How a final response to the focus's refresh request counts (RFC 4028 §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshAnswer {
    /// 2xx: refreshed with the terms of the response.
    Refreshed,
    /// 408 or 481: the peer's dialog is gone; end the session.
    Failed,
    /// 491: our refresh crossed one of the peer's; retry a little later.
    Glare,
    /// 422: retry at once with the interval the peer's `Min-SE` names.
    TooSmall(u32),
    /// Any other final response: the peer is alive (it answered in the dialog) and the
    /// session unchanged (RFC 3261 §14.1): counts as a refresh.
    Alive,
}

impl RefreshAnswer {
    /// Classifies a final status; `min_se` is the response's `Min-SE`, if any.
    pub fn of(status: u16, min_se: Option<u32>) -> RefreshAnswer {
        match status {
            200..=299 => RefreshAnswer::Refreshed,
            408 | 481 => RefreshAnswer::Failed,
            491 => RefreshAnswer::Glare,
            422 => match min_se {
                Some(m) => RefreshAnswer::TooSmall(m),
                // A 422 without Min-SE gives nothing to retry with.
                None => RefreshAnswer::Alive,
            },
            _ => RefreshAnswer::Alive,
        }
    }
}

/// One dialog's session timer: when the next refresh is due (the focus's duty) or when the
/// session counts as dead (the peer's duty, or the focus's refresh went unanswered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTimer {
    interval: Duration,
    duty: Duty,
    /// When the session was last refreshed (or negotiated).
    refreshed_at: Instant,
    /// Our refresh request is outstanding.
    in_flight: bool,
    /// A refresh to retry at this instant (after a 491).
    retry_at: Option<Instant>,
}

impl SessionTimer {
    /// A timer negotiated at `now` for `interval_s` seconds.
    pub fn new(now: Instant, interval_s: u32, duty: Duty) -> SessionTimer {
        SessionTimer {
            interval: Duration::from_secs(u64::from(interval_s.max(1))),
            duty,
            refreshed_at: now,
            in_flight: false,
            retry_at: None,
        }
    }

    /// The session interval, in seconds.
    pub fn interval_s(&self) -> u32 {
        u32::try_from(self.interval.as_secs()).unwrap_or(u32::MAX)
    }

    /// Who refreshes.
    pub fn duty(&self) -> Duty {
        self.duty
    }

    /// Whether the focus's refresh is outstanding.
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// When the session expires without a refresh.
    pub fn expires_at(&self) -> Instant {
        self.refreshed_at + self.interval
    }

    /// A refresh completed at `now` (either side's), possibly with new terms.
    pub fn refreshed(&mut self, now: Instant, interval_s: u32, duty: Duty) {
        *self = SessionTimer::new(now, interval_s, duty);
    }

    /// Our refresh got an answer that keeps the session as it was ([`RefreshAnswer::Alive`]).
    pub fn answered(&mut self, now: Instant) {
        self.refreshed_at = now;
        self.in_flight = false;
        self.retry_at = None;
    }

    /// Our refresh must be sent again at `at` (491), or at once with a new interval (422).
    pub fn retry(&mut self, at: Instant, interval_s: Option<u32>) {
        if let Some(i) = interval_s {
            self.interval = Duration::from_secs(u64::from(i.max(1)));
        }
        self.in_flight = false;
        self.retry_at = Some(at);
    }

    /// The instant at which [`SessionTimer::on_timeout`] has something to do.
    ///
    /// RFC 4028 §10: the refresher refreshes at half the interval; the other side sends its
    /// BYE before the interval ends, by the smaller of 32 s and a third of the interval, so
    /// that the BYE itself still finds the session.
    pub fn deadline(&self) -> Instant {
        let expiry = self.expires_at();
        match self.duty {
            Duty::Peer => {
                let margin = Duration::from_secs(32).min(self.interval / 3);
                expiry - margin
            }
            Duty::Focus if self.in_flight => expiry,
            Duty::Focus => match self.retry_at {
                Some(at) => at.min(expiry),
                None => self.refreshed_at + self.interval / 2,
            },
        }
    }

    /// What is due at `now`, if anything.
    pub fn on_timeout(&mut self, now: Instant) -> Option<TimerAction> {
        if now < self.deadline() {
            return None;
        }
        match self.duty {
            Duty::Peer => Some(TimerAction::Expire),
            Duty::Focus if self.in_flight || now >= self.expires_at() => Some(TimerAction::Expire),
            Duty::Focus => {
                self.in_flight = true;
                self.retry_at = None;
                Some(TimerAction::Refresh)
            }
        }
    }
}

#[cfg(test)]
mod tests;
