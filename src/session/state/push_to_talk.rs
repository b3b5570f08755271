//! Talk bursts inside the session: offers plan an audio leg and a BFCP stream
//! ([`crate::push_to_talk::talk_burst`]), joins and leaves add and remove them, BFCP messages and liveness
//! news move the floor, and every change shows in conference-info as the participants'
//! `<media>`.

use super::{Effect, SessionState};
use crate::config::MediaKind;
use crate::policy::Action;
use crate::push_to_talk::bfcp::Message;
use crate::push_to_talk::rtp::RtpEvent;
use crate::push_to_talk::talk_burst::{Talk, TalkAnswer};
use crate::push_to_talk::UserInfo;
use std::time::Instant;

impl SessionState {
    /// Turns talk bursts on under BFCP conference `conference_id` (the actor registered it
    /// with the listener); false when this group serves no audio.
    pub fn enable_talk(&mut self, conference_id: u32) -> bool {
        let Some(settings) = self.settings.talk.clone() else {
            return false;
        };
        if !self.settings.policy.serves(MediaKind::Audio) {
            return false;
        }
        self.talk = Some(Talk::new(settings, conference_id));
        true
    }

    /// Whether the group serves talk bursts (the actor then registers a BFCP conference).
    pub fn serves_talk(&self) -> bool {
        self.settings.talk.is_some() && self.settings.policy.serves(MediaKind::Audio)
    }

    /// Whether `user` is a floor control user of this session (else its BFCP connection is
    /// refused with Error 2).
    pub fn knows_floor_user(&self, user: u16) -> bool {
        self.talk.as_ref().is_some_and(|t| t.knows(user))
    }

    /// Whether a BFCP connection from `peer` may speak for `user` (see [`Talk::authorize`]).
    pub fn authorize_floor_user(
        &self,
        user: u16,
        peer: std::net::IpAddr,
    ) -> Result<(), crate::push_to_talk::talk_burst::FloorRefusal> {
        self.talk.as_ref().map_or(
            Err(crate::push_to_talk::talk_burst::FloorRefusal::UnknownUser),
            |t| t.authorize(user, peer),
        )
    }

    /// A BFCP message from `user`'s connection.
    pub fn on_bfcp(&mut self, now: Instant, user: u16, msg: &Message) {
        if let Some(t) = self.talk.as_mut() {
            t.on_bfcp(now, user, msg);
        }
        self.settle_talk(now);
        self.flush(now);
    }

    /// `user`'s BFCP connection dropped.
    pub fn on_bfcp_closed(&mut self, now: Instant, user: u16) {
        if let Some(t) = self.talk.as_mut() {
            t.connection_lost(now, user);
        }
        self.settle_talk(now);
        self.flush(now);
    }

    /// News about a participant's RTP leg.
    pub fn on_rtp_event(&mut self, now: Instant, pid: u64, event: RtpEvent) {
        if let Some(t) = self.talk.as_mut() {
            t.rtp_event(now, pid, event);
        }
        self.settle_talk(now);
        self.flush(now);
    }

    /// The talk-burst part of an answer to `offer` (`pid`: the participant renewing it).
    pub(super) fn plan_talk(
        &mut self,
        offer: &crate::sdp::SessionDescription,
        pid: Option<u64>,
        peer: std::net::IpAddr,
    ) -> Option<TalkAnswer> {
        self.talk.as_mut()?.plan(offer, pid, peer)
    }

    /// Gives back what an unused plan reserved.
    pub(super) fn discard_talk(&self, answer: Option<&TalkAnswer>) {
        if let (Some(t), Some(a)) = (self.talk.as_ref(), answer) {
            t.discard(a);
        }
    }

    pub(super) fn talk_join(&mut self, now: Instant, pid: u64, answer: Option<TalkAnswer>) {
        let Some(answer) = answer else { return };
        let info = self.floor_info(pid);
        if let Some(t) = self.talk.as_mut() {
            t.join(pid, answer, info);
        }
        self.settle_talk(now);
    }

    pub(super) fn talk_renew(&mut self, now: Instant, pid: u64, answer: Option<TalkAnswer>) {
        let info = self.floor_info(pid);
        let muted = self.participants.get(&pid).is_some_and(|p| p.muted);
        if let Some(t) = self.talk.as_mut() {
            t.renew(now, pid, answer, info);
            if muted {
                t.set_muted(now, pid, true);
            }
        }
        self.settle_talk(now);
    }

    /// The audio and BFCP lines of a resume offer to `pid` (see [`Talk::plan_resume`]).
    pub(super) fn talk_plan_resume(
        &mut self,
        pid: u64,
        last: &crate::sdp::SessionDescription,
        peer: std::net::IpAddr,
    ) -> Vec<(usize, crate::sdp::MediaDescription)> {
        self.talk
            .as_mut()
            .and_then(|t| t.plan_resume(pid, last, peer))
            .unwrap_or_default()
    }

    /// `pid` answered its resume: its RTP leg starts (see [`Talk::finish_resume`]).
    pub(super) fn talk_finish_resume(
        &mut self,
        now: Instant,
        pid: u64,
        answer: &crate::sdp::SessionDescription,
    ) {
        let info = self.floor_info(pid);
        if let Some(t) = self.talk.as_mut() {
            t.finish_resume(pid, answer, info);
        }
        self.settle_talk(now);
    }

    /// `pid`'s resume failed: the port pair its offer reserved goes back.
    pub(super) fn talk_abandon_resume(&mut self, pid: u64) {
        if let Some(t) = self.talk.as_mut() {
            t.abandon_resume(pid);
        }
    }

    pub(super) fn talk_leave(&mut self, now: Instant, pid: u64) {
        if let Some(t) = self.talk.as_mut() {
            t.leave(now, pid);
        }
        self.settle_talk(now);
    }

    pub(super) fn talk_mute(&mut self, now: Instant, pid: u64, muted: bool) {
        if let Some(t) = self.talk.as_mut() {
            t.set_muted(now, pid, muted);
        }
        self.settle_talk(now);
    }

    pub(super) fn talk_poll_timeout(&self) -> Option<Instant> {
        self.talk.as_ref()?.poll_timeout()
    }

    pub(super) fn talk_timeout(&mut self, now: Instant) {
        if let Some(t) = self.talk.as_mut() {
            t.handle_timeout(now);
        }
        self.settle_talk(now);
    }

    /// What floor control tells others about a participant (its public identity), and
    /// whether it is a chair (it may moderate).
    fn floor_info(&self, pid: u64) -> UserInfo {
        let Some(p) = self.participants.get(&pid) else {
            return UserInfo::default();
        };
        UserInfo {
            // The same decision as moderation: an outsider is never a chair.
            chair: self
                .authorize(
                    super::identity::Requester::Participant(pid),
                    Action::Moderate,
                )
                .is_ok(),
            display_name: p.display.clone(),
            uri: Some(p.identity.clone()),
        }
    }

    /// Executes talk effects through the actor and shows the floor in conference-info.
    fn settle_talk(&mut self, _now: Instant) {
        let Some(t) = self.talk.as_mut() else {
            return;
        };
        let effects = t.take_effects();
        let media: Vec<(u64, Vec<crate::conference_info::Media>)> = t
            .participants()
            .map(|pid| (pid, t.media(pid).into_iter().collect()))
            .collect();
        self.out
            .effects
            .extend(effects.into_iter().map(Effect::Talk));
        let mut changed = false;
        for (pid, m) in media {
            changed |= self.roster.set_media(pid, &m);
        }
        if changed {
            self.roster_changed();
        }
    }
}
