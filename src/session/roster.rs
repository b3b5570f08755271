//! The roster: who is in the group session, grouped as RFC 4575 users (one per identity) with
//! one endpoint per dialog, and a change counter that lets each subscriber get exactly the
//! users that changed since the last NOTIFY it acknowledged.

use crate::conference_info::{
    DisconnectionMethod, Endpoint, EndpointStatus, Execution, JoiningMethod, Media, SipDialogInfo,
    User,
};
use std::collections::{BTreeMap, HashMap};
use std::time::{Instant, SystemTime};

/// One endpoint (one dialog) of a user.
#[derive(Debug, Clone)]
pub struct EndpointEntry {
    /// The participant this endpoint belongs to while connected.
    pub pid: Option<u64>,
    /// Endpoint entity: the participant's Contact URI.
    pub entity: String,
    pub status: EndpointStatus,
    pub joining_method: JoiningMethod,
    pub joined_at: SystemTime,
    pub disconnection: Option<(DisconnectionMethod, SystemTime, Option<String>)>,
    /// When the endpoint left (for purging after the retention time).
    pub departed_at: Option<Instant>,
    pub call_id: String,
    pub remote_tag: String,
    pub local_tag: String,
    /// An anonymous participant: no dialog details (they could identify it) are shown.
    pub hidden: bool,
    /// Who asked the focus to bring this endpoint in (REFER), shown as `referred`.
    pub referred_by: Option<String>,
    /// Its media streams as conference-info shows them (talk-burst audio and its floor).
    pub media: Vec<Media>,
}

/// One user: an identity with its endpoints.
#[derive(Debug, Clone)]
pub struct UserEntry {
    pub identity: String,
    pub display: Option<String>,
    pub roles: Vec<String>,
    pub endpoints: Vec<EndpointEntry>,
    /// Change counter value when this user last changed.
    pub revision: u64,
}

impl UserEntry {
    /// True while one of its endpoints is in the conference (dialing-out and alerting
    /// endpoints are not in it yet).
    pub fn is_present(&self) -> bool {
        self.endpoints.iter().any(|e| {
            e.departed_at.is_none()
                && !matches!(
                    e.status,
                    EndpointStatus::DialingOut | EndpointStatus::Alerting | EndpointStatus::Pending
                )
        })
    }
}

/// The roster with its change counter.
#[derive(Debug, Default)]
pub struct Roster {
    /// Users in join order (key: insertion sequence).
    users: BTreeMap<u64, UserEntry>,
    by_identity: HashMap<String, u64>,
    /// Connected participant → its user's slot: the per-participant changes (leave, status,
    /// media) touch one user instead of scanning a group of thousands.
    by_pid: HashMap<u64, u64>,
    /// Users removed entirely, kept as `(identity, revision)` until every subscriber saw them.
    deleted: Vec<(String, u64)>,
    next_slot: u64,
    /// The change counter: every change gets the next value.
    seq: u64,
    present: usize,
    /// Endpoints not departed (in the conference or on their way in).
    live_endpoints: usize,
}

impl Roster {
    /// The current change counter.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Users with at least one endpoint in the conference.
    pub fn present_users(&self) -> usize {
        self.present
    }

    /// Counts endpoints currently in the conference or on their way in (the limit counts
    /// the participants being called too).
    pub fn present_endpoints(&self) -> usize {
        self.live_endpoints
    }

    fn bump(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Users in the roster, present or departed (kept for the retention time).
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Applies `f` to the user in `slot` and keeps the present-user count right (no
    /// recount of the whole roster); `None` when there is no such user.
    fn change_user<R>(&mut self, slot: u64, f: impl FnOnce(&mut UserEntry) -> R) -> Option<R> {
        let u = self.users.get_mut(&slot)?;
        let was = u.is_present();
        let r = f(u);
        let is = u.is_present();
        match (was, is) {
            (false, true) => self.present += 1,
            (true, false) => self.present = self.present.saturating_sub(1),
            _ => {}
        }
        Some(r)
    }

    /// Adds a connected endpoint for `identity` (creating the user on first sight).
    pub fn join(
        &mut self,
        identity: &str,
        display: Option<String>,
        role: &str,
        endpoint: EndpointEntry,
    ) {
        let rev = self.bump();
        let slot = match self.by_identity.get(identity) {
            Some(s) => *s,
            None => {
                let s = self.next_slot;
                self.next_slot += 1;
                self.by_identity.insert(identity.to_string(), s);
                self.deleted.retain(|(id, _)| id != identity);
                self.users.insert(
                    s,
                    UserEntry {
                        identity: identity.to_string(),
                        display: None,
                        roles: Vec::new(),
                        endpoints: Vec::new(),
                        revision: rev,
                    },
                );
                s
            }
        };
        if let Some(pid) = endpoint.pid {
            self.by_pid.insert(pid, slot);
        }
        let live = endpoint.departed_at.is_none();
        let added = self.change_user(slot, |u| {
            if display.is_some() {
                u.display = display;
            }
            if !u.roles.iter().any(|r| r == role) {
                u.roles.push(role.to_string());
            }
            // A rejoin from the same dialog entity replaces the departed endpoint.
            u.endpoints
                .retain(|e| !(e.departed_at.is_some() && e.entity == endpoint.entity));
            u.endpoints.push(endpoint);
            u.revision = rev;
        });
        if added.is_some() && live {
            self.live_endpoints += 1;
        }
    }

    /// Marks the endpoint of participant `pid` disconnected; returns whether it was found.
    pub fn depart(
        &mut self,
        pid: u64,
        method: DisconnectionMethod,
        reason: Option<String>,
        now: Instant,
        wall: SystemTime,
    ) -> bool {
        let rev = self.seq + 1;
        let Some(slot) = self.by_pid.remove(&pid) else {
            return false;
        };
        let found = self
            .change_user(slot, |u| {
                // One endpoint per pid; the newest are at the end, and leaving ones are
                // mostly recent (a user can hold many endpoints: one per device, or a load
                // generator calling with one identity).
                let Some(e) = u.endpoints.iter_mut().rev().find(|e| e.pid == Some(pid)) else {
                    return false;
                };
                e.pid = None;
                e.status = EndpointStatus::Disconnected;
                e.media.clear();
                e.disconnection = Some((method, wall, reason));
                e.departed_at = Some(now);
                u.revision = rev;
                true
            })
            .unwrap_or(false);
        if found {
            self.live_endpoints = self.live_endpoints.saturating_sub(1);
            self.bump();
        }
        found
    }

    /// Removes the endpoint of `pid` without a trace of disconnection (a join that never
    /// completed, e.g. CANCELled): the user is deleted if nothing else remains.
    pub fn withdraw(&mut self, pid: u64) -> bool {
        let rev = self.seq + 1;
        let Some(slot) = self.by_pid.remove(&pid) else {
            return false;
        };
        let (found, emptied) = self
            .change_user(slot, |u| {
                let before = u.endpoints.len();
                // A pid is set only on endpoints that have not departed.
                u.endpoints.retain(|e| e.pid != Some(pid));
                let found = u.endpoints.len() != before;
                if found {
                    u.revision = rev;
                }
                (found, u.endpoints.is_empty())
            })
            .unwrap_or((false, false));
        if found {
            self.live_endpoints = self.live_endpoints.saturating_sub(1);
            self.bump();
            if emptied {
                self.remove_slot(slot, rev);
            }
        }
        found
    }

    fn remove_slot(&mut self, slot: u64, rev: u64) {
        if let Some(u) = self.users.remove(&slot) {
            if u.is_present() {
                self.present = self.present.saturating_sub(1);
            }
            let live = u
                .endpoints
                .iter()
                .filter(|e| e.departed_at.is_none())
                .count();
            self.live_endpoints = self.live_endpoints.saturating_sub(live);
            for pid in u.endpoints.iter().filter_map(|e| e.pid) {
                self.by_pid.remove(&pid);
            }
            self.by_identity.remove(&u.identity);
            self.deleted.push((u.identity, rev));
        }
    }

    /// Updates the endpoint status of a participant (alerting, connected, muted); returns
    /// whether anything changed.
    pub fn set_status(&mut self, pid: u64, status: EndpointStatus) -> bool {
        let rev = self.seq + 1;
        let Some(slot) = self.by_pid.get(&pid).copied() else {
            return false;
        };
        let changed = self
            .change_user(slot, |u| {
                let mut changed = false;
                for e in u.endpoints.iter_mut().filter(|e| e.pid == Some(pid)) {
                    if e.status != status {
                        e.status = status;
                        u.revision = rev;
                        changed = true;
                    }
                }
                changed
            })
            .unwrap_or(false);
        if changed {
            self.bump();
        }
        changed
    }

    /// Replaces the media shown for participant `pid`; returns whether anything changed.
    pub fn set_media(&mut self, pid: u64, media: &[Media]) -> bool {
        let rev = self.seq + 1;
        let Some(slot) = self.by_pid.get(&pid).copied() else {
            return false;
        };
        let mut changed = false;
        if let Some(u) = self.users.get_mut(&slot) {
            for e in u.endpoints.iter_mut().filter(|e| e.pid == Some(pid)) {
                if e.media != media {
                    e.media = media.to_vec();
                    u.revision = rev;
                    changed = true;
                }
            }
        }
        if changed {
            self.bump();
        }
        changed
    }

    /// Records a conference-level change (lock, unlock): subscribers get a NOTIFY.
    pub fn touch(&mut self) -> u64 {
        self.bump()
    }

    /// Purges endpoints that left before `cutoff`; users left with none are deleted.
    /// Returns whether anything changed.
    pub fn purge_departed(&mut self, cutoff: Instant) -> bool {
        let rev = self.seq + 1;
        let mut changed = false;
        let mut emptied = Vec::new();
        for (slot, u) in self.users.iter_mut() {
            let before = u.endpoints.len();
            u.endpoints
                .retain(|e| e.departed_at.is_none_or(|t| t > cutoff));
            if u.endpoints.len() != before {
                changed = true;
                u.revision = rev;
                if u.endpoints.is_empty() {
                    emptied.push(*slot);
                }
            }
        }
        if changed {
            self.bump();
            for slot in emptied {
                self.remove_slot(slot, rev);
            }
        }
        changed
    }

    /// The earliest departure time still retained.
    pub fn oldest_departure(&self) -> Option<Instant> {
        self.users
            .values()
            .flat_map(|u| u.endpoints.iter())
            .filter_map(|e| e.departed_at)
            .min()
    }

    /// Forgets deleted-user tombstones every subscriber has seen.
    pub fn prune_tombstones(&mut self, seen_by_all: u64) {
        self.deleted.retain(|(_, rev)| *rev > seen_by_all);
    }

    /// Users in join order.
    pub fn users(&self) -> impl Iterator<Item = &UserEntry> {
        self.users.values()
    }

    /// Identities deleted after `since` (for partial notifications).
    pub fn deleted_since(&self, since: u64) -> impl Iterator<Item = &str> {
        self.deleted
            .iter()
            .filter(move |(_, rev)| *rev > since)
            .map(|(id, _)| id.as_str())
    }
}

/// Renders one user as an RFC 4575 `user` element; `dialog_ids` includes each endpoint's
/// dialog identifiers (`<call-info>`), which let a request be forged into its dialog.
pub fn user_element(u: &UserEntry, dialog_ids: bool) -> User {
    let mut user = User::new(u.identity.clone());
    user.display_text = u.display.clone();
    user.roles = u.roles.clone();
    user.endpoints = u
        .endpoints
        .iter()
        .map(|e| {
            let mut ep = Endpoint::new(e.entity.clone());
            ep.status = Some(e.status);
            ep.joining_method = Some(e.joining_method);
            ep.joining_info = Some(Execution {
                when: Some(e.joined_at),
                reason: None,
                by: None,
            });
            if let Some((method, when, reason)) = &e.disconnection {
                ep.disconnection_method = Some(*method);
                ep.disconnection_info = Some(Execution {
                    when: Some(*when),
                    reason: reason.clone(),
                    by: None,
                });
            }
            if dialog_ids && !e.hidden {
                ep.call_info = Some(SipDialogInfo {
                    display_text: None,
                    call_id: e.call_id.clone(),
                    from_tag: e.remote_tag.clone(),
                    to_tag: e.local_tag.clone(),
                });
            }
            ep.referred = e.referred_by.as_ref().map(|by| Execution {
                when: None,
                reason: None,
                by: Some(by.clone()),
            });
            ep.media = e.media.clone();
            ep
        })
        .collect();
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(pid: u64, entity: &str) -> EndpointEntry {
        EndpointEntry {
            pid: Some(pid),
            entity: entity.into(),
            status: EndpointStatus::Connected,
            joining_method: JoiningMethod::DialedIn,
            joined_at: SystemTime::UNIX_EPOCH,
            disconnection: None,
            departed_at: None,
            call_id: format!("c{pid}"),
            remote_tag: "r".into(),
            local_tag: "l".into(),
            hidden: false,
            referred_by: None,
            media: Vec::new(),
        }
    }

    #[test]
    fn revisions_track_changes() {
        let mut r = Roster::default();
        let t0 = Instant::now();
        r.join("sip:a@x", Some("A".into()), "participant", ep(1, "sip:a@1"));
        r.join("sip:b@x", None, "participant", ep(2, "sip:b@1"));
        assert_eq!((r.seq(), r.present_users()), (2, 2));
        // A second device of the same identity is a second endpoint of the same user.
        r.join("sip:a@x", None, "participant", ep(3, "sip:a@2"));
        assert_eq!(r.present_users(), 2);
        assert_eq!(r.present_endpoints(), 3);
        let base = r.seq();
        assert!(r.depart(
            2,
            DisconnectionMethod::Departed,
            None,
            t0,
            SystemTime::UNIX_EPOCH
        ));
        assert_eq!(r.present_users(), 1);
        let changed: Vec<_> = r
            .users()
            .filter(|u| u.revision > base)
            .map(|u| u.identity.clone())
            .collect();
        assert_eq!(changed, vec!["sip:b@x".to_string()]);
        // Purge after retention deletes b entirely, as a tombstone.
        let base = r.seq();
        assert!(r.purge_departed(t0 + std::time::Duration::from_secs(1)));
        assert_eq!(r.deleted_since(base).collect::<Vec<_>>(), vec!["sip:b@x"]);
        r.prune_tombstones(r.seq());
        assert_eq!(r.deleted_since(0).count(), 0);
    }

    #[test]
    fn present_count_follows_every_change() {
        let counted = |r: &Roster| {
            let live = r
                .users()
                .flat_map(|u| u.endpoints.iter())
                .filter(|e| e.departed_at.is_none())
                .count();
            assert_eq!(r.present_endpoints(), live, "live endpoint count");
            r.users().filter(|u| u.is_present()).count()
        };
        let mut r = Roster::default();
        let now = Instant::now();
        r.join("sip:a@x", None, "participant", ep(1, "sip:a@h1"));
        r.join("sip:a@x", None, "participant", ep(2, "sip:a@h2"));
        r.join("sip:b@x", None, "participant", ep(3, "sip:b@h"));
        assert_eq!((r.present_users(), counted(&r)), (2, 2));
        assert!(r.set_status(3, EndpointStatus::Alerting));
        assert_eq!((r.present_users(), counted(&r)), (1, 1));
        assert!(r.set_status(3, EndpointStatus::Connected));
        assert!(r.depart(
            1,
            DisconnectionMethod::Departed,
            None,
            now,
            SystemTime::now()
        ));
        assert_eq!(
            (r.present_users(), counted(&r)),
            (2, 2),
            "a keeps one endpoint"
        );
        assert!(r.depart(
            2,
            DisconnectionMethod::Departed,
            None,
            now,
            SystemTime::now()
        ));
        assert_eq!((r.present_users(), counted(&r)), (1, 1));
        assert!(!r.depart(
            2,
            DisconnectionMethod::Departed,
            None,
            now,
            SystemTime::now()
        ));
        assert!(r.withdraw(3));
        assert_eq!((r.present_users(), counted(&r)), (0, 0));
        assert!(
            !r.set_status(3, EndpointStatus::Connected),
            "a withdrawn pid is gone"
        );
        assert!(r.purge_departed(now + std::time::Duration::from_secs(1)));
        assert_eq!((r.user_count(), r.present_users()), (0, 0));
    }

    #[test]
    fn withdraw_leaves_no_trace() {
        let mut r = Roster::default();
        r.join("sip:a@x", None, "participant", ep(1, "sip:a@1"));
        assert!(r.withdraw(1));
        assert_eq!(r.users().count(), 0);
        assert_eq!(r.deleted_since(0).count(), 1);
        assert!(!r.withdraw(1));
    }
}
