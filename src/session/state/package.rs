//! The conference event package (RFC 4575 over RFC 6665): the session's subscriptions, the
//! conference-info documents they are told, and the NOTIFYs that tell them.

use super::dialogs::{Dialogs, Owner};
use super::effects::{Effect, OutgoingSpec};
use super::outbox::Outbox;
use super::outbox::Pending;
use super::settings::SessionSettings;
use crate::conference_info::{
    ConferenceDescription, ConferenceInfo, ConferenceState, ElemState, HostInfo, Unversioned,
    UriEntry, User, Users,
};
use crate::session::roster::{user_element, Roster};
use crate::session::subscription::Subscription;
use crate::sip::CONFERENCE_INFO;
use crate::sip::{HeaderName, Method};
use std::collections::HashMap;
use std::time::Instant;

/// Documents rendered during one flush, by base (`None`: full) and whether they carry
/// dialog identifiers; each subscriber's copy only adds its version.
pub(super) type RenderCache = HashMap<(Option<u64>, bool), Unversioned>;

/// What a conference-info document says: the session's settings, its roster, and its
/// conference-state.
pub(super) struct Conference<'a> {
    pub(super) settings: &'a SessionSettings,
    pub(super) roster: &'a Roster,
    /// Change counter value when conference-state (user-count, active) last changed.
    pub(super) state_rev: u64,
    pub(super) active: bool,
    pub(super) locked: bool,
}

/// A [`Conference`] view of a session's fields, borrowing only those (so the package and
/// the outbox stay free to change).
macro_rules! conference {
    ($s:expr) => {
        $crate::session::state::package::Conference {
            settings: &$s.settings,
            roster: &$s.roster,
            state_rev: $s.state_rev,
            active: $s.active,
            locked: $s.locked,
        }
    };
}
pub(super) use conference;

impl Conference<'_> {
    fn description(&self) -> ConferenceDescription {
        let s = self.settings;
        ConferenceDescription {
            display_text: non_empty(&s.display_name),
            subject: non_empty(&s.subject),
            conf_uris: vec![UriEntry::new(s.conference_uri.clone())],
            maximum_user_count: Some(s.policy.max_participants),
            ..ConferenceDescription::default()
        }
    }

    fn conference_state(&self) -> ConferenceState {
        ConferenceState {
            user_count: Some(self.roster.present_users() as u32),
            active: Some(self.active),
            locked: Some(self.locked),
        }
    }

    /// The whole document; `dialog_ids` includes each endpoint's `<call-info>` (Call-ID and
    /// tags), which only a trusted subscriber may see (`subscriptions.call_info_to_trusted`).
    pub(super) fn full_document(&self, dialog_ids: bool) -> ConferenceInfo {
        let uri = &self.settings.conference_uri;
        let mut doc = ConferenceInfo::full(uri.clone(), 0);
        doc.description = Some(self.description());
        doc.host_info = Some(HostInfo {
            display_text: non_empty(&self.settings.focus_display),
            web_page: None,
            uris: vec![UriEntry::new(uri.clone())],
        });
        doc.conference_state = Some(self.conference_state());
        doc.users = Some(Users {
            state: ElemState::Full,
            users: self
                .roster
                .users()
                .map(|u| user_element(u, dialog_ids))
                .collect(),
        });
        doc
    }

    /// The changes after change counter `base`, as RFC 4575 partial state.
    pub(super) fn partial_document(&self, base: u64, dialog_ids: bool) -> ConferenceInfo {
        let mut doc = ConferenceInfo::full(self.settings.conference_uri.clone(), 0);
        doc.state = ElemState::Partial;
        if self.state_rev > base {
            doc.conference_state = Some(self.conference_state());
        }
        let mut users: Vec<User> = self
            .roster
            .users()
            .filter(|u| u.revision > base)
            .map(|u| user_element(u, dialog_ids))
            .collect();
        users.extend(self.roster.deleted_since(base).map(|id| User {
            state: ElemState::Deleted,
            ..User::new(id.to_string())
        }));
        if !users.is_empty() {
            doc.users = Some(Users {
                state: ElemState::Partial,
                users,
            });
        }
        doc
    }

    /// The document (full when `base` is `None`, else the changes after `base`), rendered
    /// once for every subscriber that is told the same.
    fn render(&self, base: Option<u64>, dialog_ids: bool) -> Unversioned {
        let doc = match base {
            None => self.full_document(dialog_ids),
            Some(b) => self.partial_document(b, dialog_ids),
        };
        Unversioned::render(&doc)
    }
}

/// The session's conference-event subscriptions.
#[derive(Default)]
pub(super) struct ConferencePackage {
    subs: HashMap<u64, Subscription>,
}

impl ConferencePackage {
    pub(super) fn len(&self) -> usize {
        self.subs.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Subscriptions held by outsiders (their share of the session's slots).
    pub(super) fn outsiders(&self) -> usize {
        self.subs.values().filter(|s| s.outsider).count()
    }

    pub(super) fn get(&self, sid: &u64) -> Option<&Subscription> {
        self.subs.get(sid)
    }

    pub(super) fn get_mut(&mut self, sid: &u64) -> Option<&mut Subscription> {
        self.subs.get_mut(sid)
    }

    /// Every subscription's id.
    pub(super) fn ids(&self) -> Vec<u64> {
        self.subs.keys().copied().collect()
    }

    /// Takes `sub` in: its dialog is routed here and it counts as active.
    pub(super) fn add(&mut self, sub: Subscription, dialogs: &mut Dialogs, out: &mut Outbox) {
        dialogs.register(&sub.dialog.id, Owner::Subscription(sub.id), out);
        self.subs.insert(sub.id, sub);
        metrics::gauge!("focus_subscriptions_active").increment(1.0);
    }

    /// Forgets subscription `sid` (no NOTIFY); false when there was none.
    pub(super) fn remove(&mut self, sid: u64, dialogs: &mut Dialogs, out: &mut Outbox) -> bool {
        let Some(sub) = self.subs.remove(&sid) else {
            return false;
        };
        dialogs.unregister(&sub.dialog.id, out);
        metrics::gauge!("focus_subscriptions_active").decrement(1.0);
        true
    }

    /// The oldest change counter some subscriber still lacks (`u64::MAX` with none): the
    /// roster's tombstones up to it are seen by all.
    pub(super) fn seen_by_all(&self) -> u64 {
        self.subs
            .values()
            .map(|s| s.acked)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// Subscriptions expired at `now`.
    pub(super) fn expired(&self, now: Instant) -> Vec<u64> {
        self.subs
            .values()
            .filter(|s| s.expires_at <= now)
            .map(|s| s.id)
            .collect()
    }

    /// When each subscription expires or its next NOTIFY is due.
    pub(super) fn deadlines(&self, seq: u64, now: Instant) -> impl Iterator<Item = Instant> + '_ {
        self.subs
            .values()
            .flat_map(move |s| [Some(s.expires_at), s.due_at(seq, now)])
            .flatten()
    }

    /// Sends every NOTIFY that is due.
    pub(super) fn flush(&mut self, now: Instant, conf: &Conference<'_>, out: &mut Outbox) {
        let seq = conf.roster.seq();
        let due: Vec<u64> = self
            .subs
            .values()
            .filter(|s| s.due_at(seq, now).is_some_and(|t| t <= now))
            .map(|s| s.id)
            .collect();
        if due.is_empty() {
            return;
        }
        let mut cache = RenderCache::new();
        for sid in due {
            self.notify(now, sid, None, conf, Some(&mut cache), out);
        }
    }

    /// Builds and sends one NOTIFY; `terminal` sends `terminated;reason=...` with full state.
    pub(super) fn notify(
        &mut self,
        now: Instant,
        sid: u64,
        terminal: Option<&'static str>,
        conf: &Conference<'_>,
        cache: Option<&mut RenderCache>,
        out: &mut Outbox,
    ) {
        let Some(sub) = self.subs.get_mut(&sid) else {
            return;
        };
        let base = (!sub.needs_full && terminal.is_none()).then_some(sub.acked);
        let key = (base, sub.dialog_ids);
        let doc = match cache {
            Some(c) => c
                .entry(key)
                .or_insert_with(|| conf.render(key.0, key.1))
                .clone(),
            None => conf.render(key.0, key.1),
        };
        let token = out.id();
        let settings = conf.settings;
        sub.sent(token, conf.roster.seq(), now, settings.min_notify_interval);
        let body = doc.with_version(sub.version);
        let (uri, mut w) = sub.dialog.request(&Method::Notify);
        let flow = sub.dialog.flow;
        w.header(
            HeaderName::Contact,
            settings.faces.for_ip(flow.addr.ip()).contact(flow.protocol),
        );
        w.header(HeaderName::Event, &sub.event);
        match terminal {
            Some(reason) => w.header_fmt(
                HeaderName::SubscriptionState,
                format_args!("terminated;reason={reason}"),
            ),
            None => w.header_fmt(
                HeaderName::SubscriptionState,
                format_args!("active;expires={}", sub.remaining(now)),
            ),
        };
        let rest = w.finish(Some(CONFERENCE_INFO), &body);
        let spec = OutgoingSpec {
            method: Method::Notify,
            request_uri: uri,
            rest,
            call_id: sub.dialog.id.call_id.clone(),
            destination: sub.dialog.destination(),
            invite: None,
        };
        out.pending.insert(token, Pending::Notify { sid });
        metrics::counter!("focus_notify_sent_total").increment(1);
        out.push(Effect::Send {
            token,
            request: Box::new(spec),
        });
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}
