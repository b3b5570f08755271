//! The participants of a session, and the one way in and out: [`Participants::admit`] and
//! [`Participants::withdraw`] keep the dialog table (and the actor's routing of the dialog)
//! and the participants gauge in step with the set itself.

use super::dialogs::{Dialogs, Owner};
use super::outbox::Outbox;
use super::sdp_policy::MsrpLeg;
use crate::config::Role;
use crate::dialog::Dialog;
use crate::policy::Proof;
use crate::sdp::LocalSdpState;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

#[derive(Debug)]
pub(super) struct Participant {
    pub(super) dialog: Dialog,
    pub(super) sdp: LocalSdpState,
    /// The identity the others see: the real address of record, or an anonymous alias.
    pub(super) identity: String,
    pub(super) display: Option<String>,
    /// The real address of record (policy decisions, never shown when anonymous).
    pub(super) real: String,
    /// How the focus knows `real` (from the join): whether it counts is decided again by
    /// [`crate::policy::Trust::counts`] at each decision.
    pub(super) proof: Proof,
    pub(super) role: Role,
    /// When it joined (participant durations for charging).
    pub(super) joined: Instant,
    /// Our MSRP session id toward this participant (fixed for the dialog).
    pub(super) msrp_session: String,
    pub(super) msrp: Option<MsrpLeg>,
    /// When the MSRP leg must be bound (again) by: after joining, or after its connection
    /// was lost.
    pub(super) media_deadline: Option<Instant>,
    /// We offered in our 2xx (delayed offer) and wait for the answer in the ACK.
    pub(super) offer_pending: bool,
    /// The INVITE transaction whose 2xx awaits its ACK.
    pub(super) awaiting_ack: Option<u64>,
    /// Muted by a moderator: every MSRP leg it gets (re-INVITE) is muted in the switch too.
    pub(super) muted: bool,
    /// The dialog's session timer (RFC 4028), when one was negotiated.
    pub(super) timer: Option<crate::session_timer::SessionTimer>,
    /// The participant accepts UPDATE (session refreshes use it rather than re-INVITE).
    pub(super) peer_update: bool,
    /// The focus called it in (REFER, URI list, restart) rather than it calling in.
    pub(super) dialed_out: bool,
    /// Shown only as an anonymous alias.
    pub(super) hidden: bool,
    /// The address it dialed in from (`None`: the focus called it, or it was resumed):
    /// seats per address are counted by it.
    pub(super) source: Option<IpAddr>,
    /// Its unit of the RTP legs its address may hold (given back when it goes).
    pub(super) rtp_share: Option<crate::overload::QuotaPermit>,
}

/// What tells one participant from another when it joins (dial-in, answered dial-out or
/// resumed after a restart); everything else starts the same for all.
pub(super) struct Joining {
    pub(super) dialog: Dialog,
    pub(super) sdp: LocalSdpState,
    pub(super) identity: String,
    pub(super) display: Option<String>,
    pub(super) real: String,
    pub(super) proof: Proof,
    pub(super) role: Role,
    pub(super) msrp_session: String,
    pub(super) peer_update: bool,
    pub(super) dialed_out: bool,
    pub(super) hidden: bool,
}

impl Participant {
    /// A participant joining at `now`: no media leg yet, no offer or ACK awaited, no timer,
    /// unmuted, counted against no address.
    pub(super) fn new(j: Joining, now: Instant) -> Participant {
        Participant {
            dialog: j.dialog,
            sdp: j.sdp,
            identity: j.identity,
            display: j.display,
            real: j.real,
            proof: j.proof,
            role: j.role,
            joined: now,
            msrp_session: j.msrp_session,
            msrp: None,
            media_deadline: None,
            offer_pending: false,
            awaiting_ack: None,
            muted: false,
            timer: None,
            peer_update: j.peer_update,
            dialed_out: j.dialed_out,
            hidden: j.hidden,
            source: None,
            rtp_share: None,
        }
    }

    /// Whom charging bills for it: its identity when that counts, else the account of the
    /// address its dialog came from (an outsider's claim is never billed).
    pub(super) fn charged(&self, trust: &crate::policy::Trust) -> crate::policy::Charged {
        trust.charged(&self.real, self.proof, self.dialog.flow.addr.ip())
    }
}

/// The participants by id. Read through `Deref`; changed in place through the `*_mut`
/// methods; added and removed only by `admit` and `withdraw`.
#[derive(Default)]
pub(super) struct Participants {
    map: HashMap<u64, Participant>,
}

impl std::ops::Deref for Participants {
    type Target = HashMap<u64, Participant>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl Participants {
    /// Takes `p` in as `pid`: its dialog is routed here and it counts as active.
    pub(super) fn admit(
        &mut self,
        pid: u64,
        p: Participant,
        dialogs: &mut Dialogs,
        out: &mut Outbox,
    ) {
        dialogs.register(&p.dialog.id, Owner::Participant(pid), out);
        self.map.insert(pid, p);
        metrics::gauge!("focus_participants_active").increment(1.0);
    }

    /// Takes `pid` out: its dialog is no longer routed here and it no longer counts.
    pub(super) fn withdraw(
        &mut self,
        pid: u64,
        dialogs: &mut Dialogs,
        out: &mut Outbox,
    ) -> Option<Participant> {
        let p = self.map.remove(&pid)?;
        dialogs.unregister(&p.dialog.id, out);
        metrics::gauge!("focus_participants_active").decrement(1.0);
        Some(p)
    }

    /// The participant a removal or moderation names (`named` says whether one does): one
    /// whose identity was proven before one shown as what it merely claims, so an outsider
    /// shown as `alice` can neither shield the real alice nor be taken for her; among equals
    /// the earliest, not whichever the map yields first.
    pub(super) fn named(&self, named: impl Fn(&Participant) -> bool) -> Option<u64> {
        self.map
            .iter()
            .filter(|(_, p)| named(p))
            .min_by_key(|(pid, p)| (p.proof == Proof::Claimed, **pid))
            .map(|(pid, _)| *pid)
    }

    pub(super) fn get_mut(&mut self, pid: &u64) -> Option<&mut Participant> {
        self.map.get_mut(pid)
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&u64, &mut Participant)> {
        self.map.iter_mut()
    }
}
