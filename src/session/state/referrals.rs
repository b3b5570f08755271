//! REFER implicit subscriptions (RFC 3515 §2.4.4): where each referral's `message/sipfrag`
//! NOTIFYs travel, and those NOTIFYs. A referral in a dialog of its own registers that
//! dialog here and gives it back when it ends. A referral has at most one NOTIFY in flight:
//! the next waits for its final response, so over a lossy path the referrer still learns the
//! progress in order and nothing follows the NOTIFY that ends the subscription.

use super::dialogs::{Dialogs, Owner};
use super::effects::{Effect, OutgoingSpec};
use super::outbox::{Outbox, Pending};
use super::participants::Participants;
use super::settings::SessionSettings;
use crate::dialog::Dialog;
use crate::sip::Status;
use crate::sip::{HeaderName, Method};
use std::collections::{HashMap, VecDeque};

/// How long a REFER's implicit subscription lives at most (it ends with the final sipfrag).
pub(super) const REFER_EXPIRES: u32 = 60;

/// A REFER's implicit subscription (RFC 3515 §2.4.4).
pub(in crate::session) struct Referral {
    pub via: ReferVia,
    /// `refer`, or `refer;id=<CSeq>` inside an INVITE dialog.
    pub event: String,
    /// A NOTIFY of this referral awaits its final response.
    in_flight: bool,
    /// Sipfrags (status, reason, last) waiting for it, in order.
    queued: VecDeque<(Status, String, bool)>,
}

impl Referral {
    fn new(via: ReferVia, event: String) -> Referral {
        Referral {
            via,
            event,
            in_flight: false,
            queued: VecDeque::new(),
        }
    }
}

/// Where a referral's NOTIFYs travel.
pub(in crate::session) enum ReferVia {
    /// The dialog an out-of-dialog REFER created.
    Own(Box<Dialog>),
    /// The referrer's own INVITE dialog (in-dialog REFER).
    Participant(u64),
}

/// The session's referrals by id.
#[derive(Default)]
pub(super) struct Referrals {
    map: HashMap<u64, Referral>,
}

impl Referrals {
    pub(super) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(super) fn get(&self, rid: &u64) -> Option<&Referral> {
        self.map.get(rid)
    }

    /// A referral told inside participant `pid`'s INVITE dialog (the REFER's CSeq `cseq`
    /// names it, RFC 3515 §2.4.6).
    pub(super) fn open_in_dialog(&mut self, rid: u64, pid: u64, cseq: u32) {
        let referral = Referral::new(ReferVia::Participant(pid), format!("refer;id={cseq}"));
        self.map.insert(rid, referral);
    }

    /// A referral with a dialog of its own (an out-of-dialog REFER): the dialog is routed here.
    pub(super) fn open_own(
        &mut self,
        rid: u64,
        dialog: Dialog,
        dialogs: &mut Dialogs,
        out: &mut Outbox,
    ) {
        dialogs.register(&dialog.id, Owner::Referral(rid), out);
        let referral = Referral::new(ReferVia::Own(Box::new(dialog)), "refer".into());
        self.map.insert(rid, referral);
    }

    /// Lets referral `rid`'s next NOTIFY go without waiting for the one in flight, when it
    /// travels in participant `pid`'s dialog and that dialog is about to end: waiting would
    /// outlive the dialog and lose the outcome (the referrer removing itself).
    pub(super) fn skip_wait_in(&mut self, rid: u64, pid: u64) {
        if let Some(r) = self.map.get_mut(&rid) {
            if matches!(r.via, ReferVia::Participant(p) if p == pid) {
                r.in_flight = false;
            }
        }
    }

    /// Forgets a referral (and gives back its own dialog).
    pub(super) fn end(&mut self, rid: u64, dialogs: &mut Dialogs, out: &mut Outbox) {
        if let Some(r) = self.map.remove(&rid) {
            if let ReferVia::Own(d) = r.via {
                dialogs.unregister(&d.id, out);
            }
        }
    }

    /// The referrer answered the referral's NOTIFY in flight (finally, not with 481): the
    /// next queued one goes.
    pub(super) fn answered(
        &mut self,
        rid: u64,
        participants: &mut Participants,
        settings: &SessionSettings,
        dialogs: &mut Dialogs,
        out: &mut Outbox,
    ) {
        let Some(r) = self.map.get_mut(&rid) else {
            return;
        };
        r.in_flight = false;
        if let Some((status, reason, last)) = r.queued.pop_front() {
            self.notify(
                rid,
                (status, &reason),
                last,
                participants,
                settings,
                dialogs,
                out,
            );
        }
    }

    /// Sends a referral NOTIFY with `SIP/2.0 <status> <reason>` (RFC 3515 §2.4.5), or
    /// queues it behind the one in flight; `last` terminates the implicit subscription. A
    /// referral whose referrer's dialog is gone is forgotten.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn notify(
        &mut self,
        rid: u64,
        (status, reason): (Status, &str),
        last: bool,
        participants: &mut Participants,
        settings: &SessionSettings,
        dialogs: &mut Dialogs,
        out: &mut Outbox,
    ) {
        let Some(r) = self.map.get_mut(&rid) else {
            return;
        };
        if r.in_flight {
            r.queued.push_back((status, reason.to_string(), last));
            return;
        }
        let dialog = match &mut r.via {
            ReferVia::Own(d) => Some(&mut **d),
            ReferVia::Participant(pid) => participants.get_mut(pid).map(|p| &mut p.dialog),
        };
        let Some(dialog) = dialog else {
            self.map.remove(&rid);
            return;
        };
        let (uri, mut w) = dialog.request(&Method::Notify);
        let flow = dialog.flow;
        w.header(
            HeaderName::Contact,
            settings.faces.for_ip(flow.addr.ip()).contact(flow.protocol),
        );
        w.header(HeaderName::Event, &r.event);
        if last {
            w.header(
                HeaderName::SubscriptionState,
                "terminated;reason=noresource",
            );
        } else {
            w.header_fmt(
                HeaderName::SubscriptionState,
                format_args!("active;expires={REFER_EXPIRES}"),
            );
        }
        let body = format!("SIP/2.0 {status} {reason}\r\n");
        let rest = w.finish(Some("message/sipfrag;version=2.0"), body.as_bytes());
        let spec = OutgoingSpec {
            method: Method::Notify,
            request_uri: uri,
            rest,
            call_id: dialog.id.call_id.clone(),
            destination: dialog.destination(),
            invite: None,
        };
        let token = out.id();
        out.pending.insert(token, Pending::ReferNotify { rid });
        out.push(Effect::Send {
            token,
            request: Box::new(spec),
        });
        r.in_flight = true;
        if last {
            self.end(rid, dialogs, out);
        }
    }
}
