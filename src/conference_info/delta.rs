//! Partial notifications (RFC 4575 §4.6 and the `state` attribute of §5): what the focus sends
//! after the first NOTIFY, and how a subscriber folds it into its view.
//!
//! # Version rule
//!
//! The caller owns one `version` counter per subscription (not per conference: subscribers
//! join at different times). The first NOTIFY of a subscription carries a **full** document;
//! every later NOTIFY carries the counter incremented by exactly one, whether full or partial.
//! A subscriber that sees a gap or a decrease has lost a notification and must re-SUBSCRIBE to
//! get full state; [`apply`] reports that as [`ApplyError::VersionGap`]. Set `version` on the
//! document returned by [`delta`] before rendering it for a given subscription.
//!
//! # Rate of notifications
//!
//! RFC 4575 §3.10 asks notifiers to throttle NOTIFYs to a subscriber (a few seconds apart). That
//! is why [`delta`] compares two *snapshots* rather than replaying events: when the throttle
//! holds back several changes, the delta between the last snapshot sent to a subscriber and the
//! current one coalesces them into one partial NOTIFY, and a user who joined and left in between
//! does not appear at all.
//!
//! # Shape of a partial document
//!
//! Users are matched by `entity`. A changed or new user is sent whole with `state="full"`
//! (simple, and always correct: the subscriber replaces its copy); a removed user is sent with
//! `state="deleted"` and no content. `conference-description`, `host-info` and
//! `conference-state` carry no `state` attribute, so when present in a partial document they
//! replace the subscriber's copy; they are included only when they changed. They cannot be
//! removed by a partial document: if the new state lacks one that the old had, an empty element
//! is sent. User order is not significant (the key is `entity`): [`apply`] appends new users.

use std::collections::HashMap;

use thiserror::Error;

use super::model::{ConferenceInfo, ElemState, Endpoint, Media, User, Users};

/// Why a notification could not be merged: the subscriber must fetch full state again.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApplyError {
    #[error("notification is for {got:?}, view is of {expected:?}")]
    EntityMismatch { expected: String, got: String },
    #[error("version {got} does not follow {current} (a notification was lost or reordered)")]
    VersionGap { current: u32, got: u32 },
}

/// The partial document taking a subscriber from `prev` to `next`, or `None` if nothing
/// changed (send no NOTIFY and do not spend a version).
///
/// Both documents are full views of the same conference with unique user entities. The result
/// carries `next.version`; the caller overwrites it with the subscription's next version.
pub fn delta(prev: &ConferenceInfo, next: &ConferenceInfo) -> Option<ConferenceInfo> {
    let no_users: &[User] = &[];
    let prev_users = prev.users.as_ref().map_or(no_users, |u| &u.users);
    let next_users = next.users.as_ref().map_or(no_users, |u| &u.users);
    let users = users_delta(prev_users, next_users);

    let description = (prev.description != next.description)
        .then(|| next.description.clone().unwrap_or_default());
    let host_info =
        (prev.host_info != next.host_info).then(|| next.host_info.clone().unwrap_or_default());
    let conference_state = (prev.conference_state != next.conference_state)
        .then(|| next.conference_state.unwrap_or_default());

    if users.is_empty()
        && description.is_none()
        && host_info.is_none()
        && conference_state.is_none()
    {
        return None;
    }
    Some(ConferenceInfo {
        entity: next.entity.clone(),
        state: ElemState::Partial,
        version: next.version,
        description,
        host_info,
        conference_state,
        users: (!users.is_empty()).then_some(Users {
            state: ElemState::Partial,
            users,
        }),
    })
}

/// The `user` elements of a partial `users`: changed and new users whole (`state="full"`) in
/// `next` order, then removed users as `state="deleted"` in `prev` order.
pub fn users_delta(prev: &[User], next: &[User]) -> Vec<User> {
    let old: HashMap<&str, &User> = prev.iter().map(|u| (u.entity.as_str(), u)).collect();
    let mut out = Vec::new();
    let mut kept = 0;
    for user in next {
        let changed = match old.get(user.entity.as_str()) {
            Some(before) => {
                kept += 1;
                !same_user(before, user)
            }
            None => true,
        };
        if changed {
            out.push(User {
                state: ElemState::Full,
                ..user.clone()
            });
        }
    }
    if kept < prev.len() {
        // Some users are gone; only then build the second index.
        let current: HashMap<&str, ()> = next.iter().map(|u| (u.entity.as_str(), ())).collect();
        for user in prev {
            if !current.contains_key(user.entity.as_str()) {
                out.push(User {
                    entity: user.entity.clone(),
                    state: ElemState::Deleted,
                    ..User::default()
                });
            }
        }
    }
    out
}

/// Equality of content; the `state` attribute of a full view's users is not content.
fn same_user(a: &User, b: &User) -> bool {
    a.display_text == b.display_text
        && a.associated_aors == b.associated_aors
        && a.roles == b.roles
        && a.languages == b.languages
        && a.cascaded_focus == b.cascaded_focus
        && a.endpoints == b.endpoints
}

/// Merges a received notification into a subscriber's `view` (what our test UA does).
///
/// A full document replaces the view. A partial document must carry the next version; its
/// `conference-description`, `host-info` and `conference-state` replace the view's, and its
/// users are merged by `entity` (`full` replaces or adds, `deleted` removes, `partial` merges
/// child by child, endpoints by `entity` and media by `id`). On error the view is unchanged.
pub fn apply(view: &mut ConferenceInfo, update: &ConferenceInfo) -> Result<(), ApplyError> {
    if view.entity != update.entity {
        return Err(ApplyError::EntityMismatch {
            expected: view.entity.clone(),
            got: update.entity.clone(),
        });
    }
    if update.state != ElemState::Partial {
        *view = update.clone();
        return Ok(());
    }
    if view.version.checked_add(1) != Some(update.version) {
        return Err(ApplyError::VersionGap {
            current: view.version,
            got: update.version,
        });
    }
    view.version = update.version;
    if let Some(d) = &update.description {
        view.description = Some(d.clone());
    }
    if let Some(h) = &update.host_info {
        view.host_info = Some(h.clone());
    }
    if let Some(s) = update.conference_state {
        view.conference_state = Some(s);
    }
    if let Some(users) = &update.users {
        merge_users(&mut view.users, users);
    }
    Ok(())
}

fn merge_users(view: &mut Option<Users>, update: &Users) {
    match update.state {
        ElemState::Full => *view = Some(update.clone()),
        ElemState::Deleted => *view = None,
        ElemState::Partial => {
            let roster = &mut view.get_or_insert_with(Users::default).users;
            for user in &update.users {
                let pos = roster.iter().position(|u| u.entity == user.entity);
                match (user.state, pos) {
                    (ElemState::Deleted, Some(i)) => {
                        roster.remove(i);
                    }
                    (ElemState::Deleted, None) => {}
                    (ElemState::Full, Some(i)) => roster[i] = user.clone(),
                    (ElemState::Partial, Some(i)) => merge_user(&mut roster[i], user),
                    // A partial for a user we never saw: keep what we were told.
                    (ElemState::Full | ElemState::Partial, None) => roster.push(User {
                        state: ElemState::Full,
                        ..user.clone()
                    }),
                }
            }
        }
    }
}

/// Child-by-child merge of a `state="partial"` user: present children replace, absent stay.
fn merge_user(dst: &mut User, src: &User) {
    if src.display_text.is_some() {
        dst.display_text.clone_from(&src.display_text);
    }
    if !src.associated_aors.is_empty() {
        dst.associated_aors.clone_from(&src.associated_aors);
    }
    if !src.roles.is_empty() {
        dst.roles.clone_from(&src.roles);
    }
    if !src.languages.is_empty() {
        dst.languages.clone_from(&src.languages);
    }
    if src.cascaded_focus.is_some() {
        dst.cascaded_focus.clone_from(&src.cascaded_focus);
    }
    for ep in &src.endpoints {
        let pos = dst.endpoints.iter().position(|e| e.entity == ep.entity);
        match (ep.state, pos) {
            (ElemState::Deleted, Some(i)) => {
                dst.endpoints.remove(i);
            }
            (ElemState::Deleted, None) => {}
            (ElemState::Full, Some(i)) => dst.endpoints[i] = ep.clone(),
            (ElemState::Partial, Some(i)) => merge_endpoint(&mut dst.endpoints[i], ep),
            (ElemState::Full | ElemState::Partial, None) => dst.endpoints.push(Endpoint {
                state: ElemState::Full,
                ..ep.clone()
            }),
        }
    }
}

fn merge_endpoint(dst: &mut Endpoint, src: &Endpoint) {
    fn take<T: Clone>(dst: &mut Option<T>, src: &Option<T>) {
        if src.is_some() {
            dst.clone_from(src);
        }
    }
    take(&mut dst.display_text, &src.display_text);
    take(&mut dst.referred, &src.referred);
    take(&mut dst.status, &src.status);
    take(&mut dst.joining_method, &src.joining_method);
    take(&mut dst.joining_info, &src.joining_info);
    take(&mut dst.disconnection_method, &src.disconnection_method);
    take(&mut dst.disconnection_info, &src.disconnection_info);
    take(&mut dst.call_info, &src.call_info);
    // Written on every rendering of the endpoint: present means unverified.
    dst.unverified |= src.unverified;
    // `media` has no state attribute: a present one replaces the one with the same id.
    for m in &src.media {
        match dst.media.iter_mut().find(|d| d.id == m.id) {
            Some(d) => *d = Media::clone(m),
            None => dst.media.push(m.clone()),
        }
    }
}
