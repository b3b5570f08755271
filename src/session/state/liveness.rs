//! Session timers on participants' dialogs (RFC 4028): the session's side of
//! [`crate::session_timer`]. Joins, re-INVITEs and UPDATEs negotiate the interval and the
//! refresher (or are refused `422`); the focus sends its refreshes (UPDATE when the
//! participant allows it, else a re-INVITE with the unchanged SDP) and hangs up on a
//! participant whose session is not refreshed in time. The others see it leave as
//! `disconnected` / `failed`.

use super::outbox::Pending;
use super::{Effect, OutgoingSpec, RequestCtx, SessionState};
use crate::conference_info::DisconnectionMethod;
use crate::session_timer::{
    self as st, Duty, RefreshAnswer, SessionTimer, TimerAction, TimerHeaders, UasDecision,
};
use crate::sip::ALLOW;
use crate::sip::{HeaderName, Method, Request, Response};
use crate::transport::Target;
use std::time::Instant;

impl SessionState {
    /// Reads and negotiates the session timer of an INVITE or UPDATE the focus answers;
    /// `None` once it answered the request itself (`400` malformed headers, `420` when the
    /// UAC requires timers the focus has turned off, `422` for a too-small interval).
    pub(super) fn uas_timer(&mut self, req: &Request, ctx: &RequestCtx) -> Option<UasDecision> {
        let settings = self.settings.session_timer;
        if !settings.enabled && req.headers.has_token(HeaderName::Require, "timer") {
            self.reply(
                req,
                ctx.clone(),
                420,
                "Bad Extension",
                None,
                &[(HeaderName::Unsupported, "timer")],
            );
            return None;
        }
        let headers = match TimerHeaders::read(&req.headers) {
            Ok(h) => h,
            Err(e) => {
                let reason = e.to_string();
                self.reply(req, ctx.clone(), 400, &reason, None, &[]);
                return None;
            }
        };
        let decision = st::negotiate_uas(&settings, &headers);
        if let UasDecision::TooSmall { min_se } = decision {
            metrics::counter!("focus_session_timer_rejections_total").increment(1);
            let min = min_se.to_string();
            self.reply(
                req,
                ctx.clone(),
                422,
                "Session Interval Too Small",
                None,
                &[(HeaderName::MinSe, &min)],
            );
            return None;
        }
        Some(decision)
    }

    /// The session-timer headers of the focus's 2xx to an INVITE or UPDATE.
    pub(super) fn timer_headers(&self, decision: &UasDecision) -> Vec<(HeaderName, String)> {
        let mut out = Vec::new();
        if !self.settings.session_timer.enabled {
            return out;
        }
        out.push((HeaderName::Supported, "timer".to_string()));
        if let UasDecision::Timer {
            interval,
            refresher,
            require,
        } = *decision
        {
            out.push((
                HeaderName::SessionExpires,
                format!("{interval};refresher={}", refresher.as_str()),
            ));
            if require {
                out.push((HeaderName::Require, "timer".to_string()));
            }
        }
        out
    }

    /// The session-timer headers of a request the focus sends (an INVITE of its own, a
    /// resume, a refresh) asking for `interval` seconds; `refresher` when the focus names one.
    pub(super) fn timer_request_headers(
        &self,
        interval: u32,
        refresher: Option<st::Refresher>,
    ) -> Vec<(HeaderName, String)> {
        let s = &self.settings.session_timer;
        if !s.enabled {
            return Vec::new();
        }
        let se = match refresher {
            Some(r) => format!("{interval};refresher={}", r.as_str()),
            None => interval.to_string(),
        };
        vec![
            (HeaderName::Supported, "timer".to_string()),
            (HeaderName::SessionExpires, se),
            (HeaderName::MinSe, s.min_se.to_string()),
        ]
    }

    /// The participant's re-INVITE or UPDATE was accepted with `decision`: its session is
    /// refreshed (or its terms changed), and its dialog is journaled as it now is.
    pub(super) fn peer_refreshed(
        &mut self,
        now: Instant,
        pid: u64,
        req: &Request,
        decision: &UasDecision,
    ) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        p.peer_update |= req.headers.has_token(HeaderName::Allow, "UPDATE");
        match decision.duty() {
            Some((interval, duty)) => {
                if p.timer.is_some() {
                    metrics::counter!("focus_session_timer_refreshes_total", "by" => "participant")
                        .increment(1);
                }
                p.timer = Some(SessionTimer::new(now, interval, duty));
            }
            None => p.timer = None,
        }
        self.journal_update(pid);
    }

    /// Sets a participant's timer from the 2xx to an INVITE the focus sent asking for
    /// `asked` seconds (a dial-out, a resume, a refresh).
    pub(super) fn apply_uac_timer(&mut self, now: Instant, pid: u64, asked: u32, resp: &Response) {
        let settings = self.settings.session_timer;
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        p.peer_update |= resp.headers.has_token(HeaderName::Allow, "UPDATE");
        // An unreadable Session-Expires in a 2xx: keep the terms we asked for.
        let headers = TimerHeaders::read(&resp.headers).unwrap_or_default();
        p.timer = st::negotiate_uac(&settings, asked, &headers)
            .map(|(interval, duty)| SessionTimer::new(now, interval, duty));
    }

    /// True while the focus's refresh re-INVITE is outstanding in `pid`'s dialog (an
    /// incoming offer then gets 491, RFC 3261 §14.2).
    pub(super) fn refresh_invite_pending(&self, pid: u64) -> bool {
        self.out.pending.values().any(|x| {
            matches!(x, Pending::Refresh { pid: p, invite: true, .. } if *p == pid)
                || matches!(x, Pending::Resume { pid: p, .. } if *p == pid)
        })
    }

    /// Refreshes that are due, and sessions that expired.
    pub(super) fn session_timeouts(&mut self, now: Instant) {
        let due: Vec<(u64, TimerAction)> = self
            .participants
            .iter_mut()
            .filter_map(|(pid, p)| Some((*pid, p.timer.as_mut()?.on_timeout(now)?)))
            .collect();
        for (pid, action) in due {
            match action {
                TimerAction::Refresh => self.send_refresh(pid),
                TimerAction::Expire => {
                    metrics::counter!("focus_session_timer_expired_total").increment(1);
                    tracing::debug!(conference = %self.settings.conference_uri, pid, "session timer expired");
                    self.hang_up(
                        now,
                        pid,
                        DisconnectionMethod::Failed,
                        Some((408, "session timer expired")),
                    );
                }
            }
        }
    }

    /// Sends the focus's session refresh: UPDATE without a body when the participant allows
    /// UPDATE, else a re-INVITE offering the last SDP unchanged (same `o=` version: nothing
    /// to renegotiate).
    fn send_refresh(&mut self, pid: u64) {
        let faces = self.settings.faces.clone();
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        let Some(interval) = p.timer.as_ref().map(SessionTimer::interval_s) else {
            return;
        };
        let invite = !p.peer_update;
        let timer = self.timer_request_headers(interval, Some(Duty::Focus.refresher(true)));
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        let body = if invite {
            p.sdp.last_sent().map(|s| s.to_bytes())
        } else {
            None
        };
        let method = if invite {
            Method::Invite
        } else {
            Method::Update
        };
        let (uri, mut w) = p.dialog.request(&method);
        let cseq = p.dialog.local_cseq;
        let flow = p.dialog.flow;
        w.header(
            HeaderName::Contact,
            faces.for_ip(flow.addr.ip()).contact(flow.protocol),
        );
        if invite {
            w.header(HeaderName::Allow, ALLOW);
        }
        for (name, value) in &timer {
            w.header(*name, value);
        }
        let rest = match &body {
            Some(b) => w.finish(Some("application/sdp"), b),
            None => w.finish_empty(),
        };
        let spec = OutgoingSpec {
            method,
            request_uri: uri,
            rest,
            call_id: p.dialog.id.call_id.clone(),
            destination: p.dialog.destination(),
            invite: invite.then(|| p.dialog.invite_basis(cseq)),
        };
        let token = self.out.id();
        self.out.pending.insert(
            token,
            Pending::Refresh {
                pid,
                cseq,
                invite,
                asked: interval,
            },
        );
        self.out.effects.push_back(Effect::Send {
            token,
            request: Box::new(spec),
        });
        self.journal_update(pid);
    }

    /// The final response to the focus's refresh (`basis`: its CSeq, whether it was an
    /// INVITE, the interval it asked for).
    pub(super) fn on_refresh_response(
        &mut self,
        now: Instant,
        token: u64,
        pid: u64,
        basis: (u32, bool, u32),
        resp: &Response,
    ) {
        let (cseq, invite, asked) = basis;
        if !self.participants.contains_key(&pid) {
            return;
        }
        let min_se = resp
            .headers
            .get(HeaderName::MinSe)
            .and_then(|v| st::parse_min_se(v).ok());
        match RefreshAnswer::of(resp.status, min_se) {
            RefreshAnswer::Refreshed => {
                if invite {
                    // Its retransmissions are ACKed again (see `on_response`); older 2xx of
                    // this dialog stopped coming long ago (64*T1).
                    self.answered.retain(|_, p| *p != pid);
                    self.answered.insert(token, pid);
                    self.send_ack_cseq(pid, cseq);
                }
                if let Some(p) = self.participants.get_mut(&pid) {
                    p.dialog.refresh_target_from(&resp.headers);
                }
                metrics::counter!("focus_session_timer_refreshes_total", "by" => "focus")
                    .increment(1);
                self.apply_uac_timer(now, pid, asked, resp);
                self.journal_update(pid);
            }
            RefreshAnswer::Failed => {
                self.refresh_failed(now, pid);
            }
            RefreshAnswer::Glare => {
                if let Some(t) = self
                    .participants
                    .get_mut(&pid)
                    .and_then(|p| p.timer.as_mut())
                {
                    t.retry(now + st::GLARE_RETRY, None);
                }
            }
            RefreshAnswer::TooSmall(min) => {
                if let Some(t) = self
                    .participants
                    .get_mut(&pid)
                    .and_then(|p| p.timer.as_mut())
                {
                    t.retry(now, Some(min.max(asked)));
                }
            }
            RefreshAnswer::Alive => {
                if let Some(t) = self
                    .participants
                    .get_mut(&pid)
                    .and_then(|p| p.timer.as_mut())
                {
                    t.answered(now);
                }
            }
        }
    }

    /// The focus's refresh got no answer, or 408/481: the participant's session is gone
    /// (RFC 4028 §10: BYE and end it).
    pub(super) fn refresh_failed(&mut self, now: Instant, pid: u64) {
        if !self.participants.contains_key(&pid) {
            return;
        }
        metrics::counter!("focus_session_timer_expired_total").increment(1);
        self.hang_up(
            now,
            pid,
            DisconnectionMethod::Failed,
            Some((408, "session refresh failed")),
        );
    }
}

impl SessionState {
    /// The connection a dialog lives and dies with, if any: a stream connection the peer
    /// itself set the dialog up on, from outside the trusted core. Its in-dialog requests
    /// must come on that very connection ([`crate::dialog::Binding::Flow`]), so once it
    /// closes the peer cannot refresh, and NOTIFYs have nowhere to go. (A trusted proxy may
    /// reconnect and carry the dialog on, so its connections are not watched.)
    pub(super) fn closable_flow(&self, dialog: &crate::dialog::Dialog) -> Option<Target> {
        if dialog.binding != crate::dialog::Binding::Flow {
            return None;
        }
        dialog
            .bound_flow(&self.settings.trust.hosts)
            .filter(|f| f.protocol.is_reliable() && f.conn.is_some())
            .copied()
    }

    /// A watched connection closed: the subscriptions bound to it end at once (no NOTIFY:
    /// the connection is gone), instead of staying listed until they expire or a NOTIFY
    /// fails.
    pub fn on_flow_closed(&mut self, now: Instant, flow: Target) {
        let gone: Vec<u64> = self
            .package
            .ids()
            .into_iter()
            .filter(|sid| {
                self.package
                    .get(sid)
                    .is_some_and(|s| self.closable_flow(&s.dialog) == Some(flow))
            })
            .collect();
        for sid in gone {
            metrics::counter!("focus_subscriptions_flow_closed_total").increment(1);
            tracing::debug!(conn = ?flow.conn, peer = %flow.addr, "subscription ended: its connection closed");
            self.drop_subscription(sid);
        }
        self.flush(now);
    }
}
