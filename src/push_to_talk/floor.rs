//! The floor control server of one conference (RFC 8855 §13), pure and sans-IO: decoded
//! requests and the clock go in ([`FloorControl::on_message`], [`FloorControl::handle_timeout`],
//! and the caller's roster changes), messages for users and floor events for the media plane
//! come out ([`Output`]). Nothing here reads a clock or a socket.
//!
//! Policy: one holder per floor; a request for several floors is granted when all are free and
//! nobody ahead in the queue wants one of them (a total order, so no deadlock); the queue is
//! FIFO, or by PRIORITY then FIFO. A holder is Revoked after the maximum talk-burst time, when
//! muted, or when it leaves, and the queue moves on.
//!
//! Notifications are computed, not scattered: after every input the machine compares what it
//! last told about each request and each floor with the current state, and sends a
//! FloorRequestStatus (to the requester and beneficiary) or FloorStatus (to every user whose
//! latest FloorQuery named the floor) for each difference.

mod config;
mod describe;
mod output;
mod request;

pub use config::{Config, FloorConfig, Transport, UserInfo};
pub use output::{FloorEvent, Output, RevokeReason};

use crate::push_to_talk::bfcp::{
    Attribute, ErrorCode, ErrorDetails, Message, Primitive, Priority, RequestStatus,
};
use describe::View;
use request::{Request, Snapshot};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// Floors one FloorRequest may name: keeps every FLOOR-REQUEST-INFORMATION within its
/// 8-bit length.
pub const MAX_FLOORS_PER_REQUEST: usize = 16;

#[derive(Debug, Clone)]
struct Floor {
    media_label: String,
    /// The Granted request holding this floor.
    holder: Option<u16>,
}

/// The floor control state of one conference.
#[derive(Debug, Clone)]
pub struct FloorControl {
    config: Config,
    floors: BTreeMap<u16, Floor>,
    users: BTreeMap<u16, UserInfo>,
    /// Managed by the caller, independent of the roster (a user may be muted before joining).
    muted: BTreeSet<u16>,
    /// Live requests by FLOOR-REQUEST-ID.
    requests: BTreeMap<u16, Request>,
    next_request_id: u16,
    next_seq: u64,
    /// For server-initiated messages over UDP (never 0 there).
    next_transaction_id: u16,
    /// The floors of each user's latest FloorQuery, in its order.
    subscriptions: BTreeMap<u16, Vec<u16>>,
    /// What the requester and beneficiary were last told about each live request.
    told_requests: BTreeMap<u16, Snapshot>,
    /// What subscribers were last told about each floor.
    told_floors: BTreeMap<u16, Vec<(u16, Snapshot)>>,
}

/// An Error answer: the code and the ERROR-INFO text.
type Refusal = (ErrorCode, &'static str);

impl FloorControl {
    pub fn new(config: Config) -> FloorControl {
        let floors = config
            .floors
            .iter()
            .map(|f| {
                let floor = Floor {
                    media_label: f.media_label.clone(),
                    holder: None,
                };
                (f.id, floor)
            })
            .collect::<BTreeMap<_, _>>();
        let told_floors = floors.keys().map(|&f| (f, Vec::new())).collect();
        FloorControl {
            config,
            floors,
            users: BTreeMap::new(),
            muted: BTreeSet::new(),
            requests: BTreeMap::new(),
            next_request_id: 1,
            next_seq: 0,
            next_transaction_id: 1,
            subscriptions: BTreeMap::new(),
            told_requests: BTreeMap::new(),
            told_floors,
        }
    }

    /// Adds (or updates) a participant that may use floor control.
    pub fn add_user(&mut self, user: u16, info: UserInfo) {
        self.users.insert(user, info);
    }

    /// The user holding `floor`, if any.
    pub fn holder(&self, floor: u16) -> Option<u16> {
        let id = self.floors.get(&floor)?.holder?;
        Some(self.requests.get(&id)?.beneficiary)
    }

    /// The media stream `floor` controls.
    pub fn media_label(&self, floor: u16) -> Option<&str> {
        self.floors.get(&floor).map(|f| f.media_label.as_str())
    }

    /// The users queued (Accepted) for `floor`, first in line first.
    pub fn queue(&self, floor: u16) -> Vec<u16> {
        self.queue_of(floor)
            .iter()
            .filter_map(|id| self.requests.get(id).map(|r| r.beneficiary))
            .collect()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.requests.values().filter_map(|r| r.deadline).min()
    }

    /// Revokes the holders whose talk burst ran out; the queue moves on.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let mut expired: Vec<(Instant, u16)> = self
            .requests
            .values()
            .filter_map(|r| r.deadline.filter(|&d| d <= now).map(|d| (d, r.id)))
            .collect();
        expired.sort();
        for (_, id) in expired {
            self.finish(
                id,
                RequestStatus::Revoked,
                Some(RevokeReason::TalkBurstTooLong),
                None,
                &mut out,
            );
        }
        self.settle(now, &mut out);
        out
    }

    /// Mutes or unmutes `user`. A muted user's requests are Denied, and a floor it holds is
    /// Revoked.
    pub fn set_muted(&mut self, now: Instant, user: u16, muted: bool) -> Vec<Output> {
        let mut out = Vec::new();
        if !muted {
            self.muted.remove(&user);
            return out;
        }
        self.muted.insert(user);
        for id in self.requests_of(user) {
            let granted = self.requests.get(&id).map(|r| r.status) == Some(RequestStatus::Granted);
            if granted {
                let reason = Some(RevokeReason::Muted);
                self.finish(id, RequestStatus::Revoked, reason, None, &mut out);
            } else {
                let status = RequestStatus::Denied;
                self.finish_with_info(id, status, None, Some("muted"), None, &mut out);
            }
        }
        self.settle(now, &mut out);
        out
    }

    /// Forgets `user` (it left the conference, or said Goodbye): a floor it holds is Revoked,
    /// its queued requests are Cancelled, its FloorQuery subscription ends.
    pub fn remove_user(&mut self, now: Instant, user: u16) -> Vec<Output> {
        let mut out = Vec::new();
        self.remove_user_into(user, &mut out);
        self.settle(now, &mut out);
        out
    }

    /// Revokes the floors `user` holds, for `reason` (its media went silent, say); its
    /// queued requests stay. The queue moves on.
    pub fn revoke(&mut self, now: Instant, user: u16, reason: RevokeReason) -> Vec<Output> {
        let mut out = Vec::new();
        for id in self.requests_of(user) {
            let granted = self.requests.get(&id).map(|r| r.status) == Some(RequestStatus::Granted);
            if granted {
                self.finish(id, RequestStatus::Revoked, Some(reason), None, &mut out);
            }
        }
        self.settle(now, &mut out);
        out
    }

    /// `user`'s floor control connection dropped: what it holds is Revoked
    /// ([`RevokeReason::ConnectionLost`]), its waiting requests are Cancelled and its
    /// FloorQuery subscription ends (nobody could be told). It stays a user: a new connection
    /// may request again.
    pub fn connection_lost(&mut self, now: Instant, user: u16) -> Vec<Output> {
        let mut out = Vec::new();
        self.subscriptions.remove(&user);
        for id in self.requests_of(user) {
            let granted = self.requests.get(&id).map(|r| r.status) == Some(RequestStatus::Granted);
            if granted {
                let reason = Some(RevokeReason::ConnectionLost);
                self.finish(id, RequestStatus::Revoked, reason, None, &mut out);
            } else {
                self.finish(id, RequestStatus::Cancelled, None, None, &mut out);
            }
        }
        self.settle(now, &mut out);
        out
    }

    /// Whether `user` is known (added and not removed).
    pub fn has_user(&self, user: u16) -> bool {
        self.users.contains_key(&user)
    }

    /// The users waiting for `floor` for a chair's decision (moderated), in arrival order.
    pub fn pending(&self, floor: u16) -> Vec<u16> {
        let mut pending: Vec<&Request> = self
            .requests
            .values()
            .filter(|r| r.status == RequestStatus::Pending && r.floors.contains(&floor))
            .collect();
        pending.sort_by_key(|r| r.seq);
        pending.iter().map(|r| r.beneficiary).collect()
    }

    /// Handles a decoded message that arrived on `user`'s BFCP connection.
    pub fn on_message(&mut self, now: Instant, user: u16, msg: &Message) -> Vec<Output> {
        let mut out = Vec::new();
        if let Err((code, info)) = self.dispatch(now, user, msg, &mut out) {
            out.push(self.error(user, msg, code, info));
        }
        self.settle(now, &mut out);
        out
    }

    fn dispatch(
        &mut self,
        now: Instant,
        user: u16,
        msg: &Message,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        let unreliable = self.config.transport == Transport::Unreliable;
        if msg.primitive == Primitive::Error || (unreliable && msg.responder) {
            // Never answer an Error (no loops); over UDP, R marks a response to us.
            return Ok(());
        }
        if msg.conference_id != self.config.conference_id {
            return Err((ErrorCode::ConferenceDoesNotExist, "no such conference"));
        }
        if msg.user_id != user {
            return Err((
                ErrorCode::UnauthorizedOperation,
                "User ID does not match the connection",
            ));
        }
        if !self.users.contains_key(&user) {
            return Err((ErrorCode::UserDoesNotExist, "no such user"));
        }
        match msg.primitive {
            Primitive::FloorRequest => self.floor_request(now, user, msg, out),
            Primitive::FloorRelease => self.floor_release(user, msg, out),
            Primitive::FloorRequestQuery => self.floor_request_query(user, msg, out),
            Primitive::UserQuery => self.user_query(user, msg, out),
            Primitive::FloorQuery => self.floor_query(user, msg, out),
            Primitive::ChairAction => self.chair_action(now, user, msg, out),
            Primitive::Hello => {
                out.push(self.respond(user, msg, Primitive::HelloAck, describe::hello_ack()));
                Ok(())
            }
            Primitive::Goodbye => {
                out.push(self.respond(user, msg, Primitive::GoodbyeAck, Vec::new()));
                self.remove_user_into(user, out);
                Ok(())
            }
            // Acknowledgements of what we sent: nothing to do (over TCP they are not even
            // expected; over UDP retransmission is the driver's).
            Primitive::FloorRequestStatusAck
            | Primitive::FloorStatusAck
            | Primitive::GoodbyeAck => Ok(()),
            Primitive::FloorRequestStatus
            | Primitive::UserStatus
            | Primitive::FloorStatus
            | Primitive::ChairActionAck
            | Primitive::HelloAck
            | Primitive::Error
            | Primitive::Unknown(_) => Err((
                ErrorCode::UnknownPrimitive,
                "not a request a floor control server handles",
            )),
        }
    }

    // Requests (RFC 8855 §13).

    fn floor_request(
        &mut self,
        now: Instant,
        user: u16,
        msg: &Message,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        let mut floors = Vec::new();
        for a in &msg.attributes {
            if let Attribute::FloorId { id, .. } = a {
                if !floors.contains(id) {
                    floors.push(*id);
                }
            }
        }
        if floors.is_empty() {
            return Err((
                ErrorCode::UnableToParseMessage,
                "FloorRequest without FLOOR-ID",
            ));
        }
        if floors.len() > MAX_FLOORS_PER_REQUEST {
            return Err((ErrorCode::GenericError, "too many floors in one request"));
        }
        if floors.iter().any(|f| !self.floors.contains_key(f)) {
            return Err((ErrorCode::InvalidFloorId, "no such floor"));
        }
        let beneficiary = find_beneficiary(msg).unwrap_or(user);
        if beneficiary != user {
            if !self.is_chair(user) {
                return Err((
                    ErrorCode::UnauthorizedOperation,
                    "only a chair may request a floor for someone else",
                ));
            }
            if !self.users.contains_key(&beneficiary) {
                return Err((ErrorCode::UserDoesNotExist, "no such beneficiary"));
            }
        }
        let ongoing = |f: &u16| {
            self.requests
                .values()
                .filter(|r| r.beneficiary == beneficiary && r.floors.contains(f))
                .count()
        };
        if floors
            .iter()
            .any(|f| ongoing(f) >= self.config.max_requests_per_floor)
        {
            return Err((
                ErrorCode::MaxFloorRequestsReached,
                "too many ongoing floor requests for this floor",
            ));
        }
        let id = self
            .allocate_request_id()
            .ok_or((ErrorCode::GenericError, "no floor request ID left"))?;
        let priority = msg
            .attributes
            .iter()
            .find_map(|a| match a {
                Attribute::Priority { priority, .. } => Some(*priority),
                _ => None,
            })
            .unwrap_or(Priority::Normal);
        let info = msg.attributes.iter().find_map(|a| match a {
            Attribute::ParticipantProvidedInfo { text, .. } => Some(text.clone()),
            _ => None,
        });
        let status = if self.config.moderated && !self.is_chair(user) {
            RequestStatus::Pending
        } else {
            RequestStatus::Accepted
        };
        let request = Request {
            id,
            requester: user,
            beneficiary,
            floors,
            priority,
            info,
            status,
            seq: self.next_seq,
            deadline: None,
        };
        self.next_seq += 1;
        let refusal = if self.muted.contains(&beneficiary) {
            Some("muted")
        } else if self.queue_full(&request.floors) {
            Some("queue full")
        } else {
            None
        };
        if let Some(why) = refusal {
            // Denied at once: the request never enters the queue.
            let positions = vec![0; request.floors.len()];
            let view = View {
                request: &request,
                status: RequestStatus::Denied,
                positions: &positions,
                status_info: Some(why),
            };
            let fri = describe::floor_request_information(&view, &self.users);
            out.push(self.respond(user, msg, Primitive::FloorRequestStatus, vec![fri]));
            return Ok(());
        }
        self.requests.insert(id, request);
        self.advance(now, out);
        let fri = self.describe_live(id);
        out.push(self.respond(user, msg, Primitive::FloorRequestStatus, fri));
        if let Some(told) = self.snapshot(id) {
            self.told_requests.insert(id, told);
        }
        // The requester knows from the response; the beneficiary of a third-party request
        // learns it here.
        if beneficiary != user {
            let fri = self.describe_live(id);
            out.push(self.notify(beneficiary, Primitive::FloorRequestStatus, fri));
        }
        Ok(())
    }

    fn floor_release(
        &mut self,
        user: u16,
        msg: &Message,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        let id = find_request_id(msg)?;
        let request = self.requests.get(&id).ok_or(UNKNOWN_REQUEST)?;
        if user != request.requester && user != request.beneficiary && !self.is_chair(user) {
            return Err((
                ErrorCode::UnauthorizedOperation,
                "not your floor request to release",
            ));
        }
        let status = if request.status == RequestStatus::Granted {
            RequestStatus::Released
        } else {
            RequestStatus::Cancelled
        };
        if let Some(request) = self.finish(id, status, None, Some(user), out) {
            let positions = vec![0; request.floors.len()];
            let view = View {
                request: &request,
                status,
                positions: &positions,
                status_info: None,
            };
            let fri = describe::floor_request_information(&view, &self.users);
            out.push(self.respond(user, msg, Primitive::FloorRequestStatus, vec![fri]));
        }
        Ok(())
    }

    fn floor_request_query(
        &mut self,
        user: u16,
        msg: &Message,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        let id = find_request_id(msg)?;
        if !self.requests.contains_key(&id) {
            return Err(UNKNOWN_REQUEST);
        }
        let fri = self.describe_live(id);
        out.push(self.respond(user, msg, Primitive::FloorRequestStatus, fri));
        Ok(())
    }

    fn user_query(
        &mut self,
        user: u16,
        msg: &Message,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        let asked = find_beneficiary(msg);
        let target = asked.unwrap_or(user);
        let Some(info) = self.users.get(&target) else {
            return Err((ErrorCode::UserDoesNotExist, "no such beneficiary"));
        };
        let mut attributes = Vec::new();
        if asked.is_some() {
            attributes.push(describe::beneficiary_information(target, Some(info)));
        }
        let ids: Vec<u16> = self
            .requests
            .values()
            .filter(|r| r.beneficiary == target)
            .map(|r| r.id)
            .collect();
        for id in ids {
            attributes.extend(self.describe_live(id));
        }
        out.push(self.respond(user, msg, Primitive::UserStatus, attributes));
        Ok(())
    }

    fn floor_query(
        &mut self,
        user: u16,
        msg: &Message,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        let mut floors = Vec::new();
        for a in &msg.attributes {
            if let Attribute::FloorId { id, .. } = a {
                if !self.floors.contains_key(id) {
                    return Err((ErrorCode::InvalidFloorId, "no such floor"));
                }
                if !floors.contains(id) {
                    floors.push(*id);
                }
            }
        }
        // The latest FloorQuery replaces the earlier one; an empty one ends the updates.
        if floors.is_empty() {
            self.subscriptions.remove(&user);
            out.push(self.respond(user, msg, Primitive::FloorStatus, Vec::new()));
            return Ok(());
        }
        self.subscriptions.insert(user, floors.clone());
        // The response covers the first floor; each other floor gets its own FloorStatus.
        let first = self.floor_status(floors[0]);
        out.push(self.respond(user, msg, Primitive::FloorStatus, first));
        for &floor in &floors[1..] {
            let attributes = self.floor_status(floor);
            out.push(self.notify(user, Primitive::FloorStatus, attributes));
        }
        Ok(())
    }

    /// A chair accepts, grants, denies or revokes a request (RFC 8855 §11, §13). The new
    /// status is the first REQUEST-STATUS of the FLOOR-REQUEST-INFORMATION and applies to the
    /// whole request (all its floors).
    fn chair_action(
        &mut self,
        now: Instant,
        user: u16,
        msg: &Message,
        out: &mut Vec<Output>,
    ) -> Result<(), Refusal> {
        if !self.is_chair(user) {
            return Err((ErrorCode::UnauthorizedOperation, "only a chair may do that"));
        }
        let Some((id, nested)) = msg.attributes.iter().find_map(|a| match a {
            Attribute::FloorRequestInformation {
                floor_request_id,
                attributes,
                ..
            } => Some((*floor_request_id, attributes)),
            _ => None,
        }) else {
            return Err((
                ErrorCode::UnableToParseMessage,
                "ChairAction without FLOOR-REQUEST-INFORMATION",
            ));
        };
        let request = self.requests.get(&id).ok_or(UNKNOWN_REQUEST)?;
        let mut new_status = None;
        for a in nested {
            match a {
                Attribute::FloorRequestStatus {
                    floor_id,
                    attributes,
                    ..
                } => {
                    if !request.floors.contains(floor_id) {
                        return Err((ErrorCode::InvalidFloorId, "floor not in this request"));
                    }
                    new_status = new_status.or_else(|| find_status(attributes));
                }
                Attribute::OverallRequestStatus { attributes, .. } => {
                    new_status = new_status.or_else(|| find_status(attributes));
                }
                _ => {}
            }
        }
        let Some(new_status) = new_status else {
            return Err((
                ErrorCode::UnableToParseMessage,
                "ChairAction without REQUEST-STATUS",
            ));
        };
        let granted = request.status == RequestStatus::Granted;
        let floors = request.floors.clone();
        match new_status {
            RequestStatus::Accepted => {
                if let Some(r) = self.requests.get_mut(&id) {
                    if r.status == RequestStatus::Pending {
                        r.status = RequestStatus::Accepted;
                    }
                }
            }
            RequestStatus::Granted if !granted => {
                for floor in floors {
                    let holder = self.floors.get(&floor).and_then(|f| f.holder);
                    if let Some(other) = holder.filter(|&h| h != id) {
                        let reason = Some(RevokeReason::Chair);
                        self.finish(other, RequestStatus::Revoked, reason, None, out);
                    }
                }
                self.grant(now, id, out);
            }
            RequestStatus::Granted => {}
            RequestStatus::Denied | RequestStatus::Revoked if granted => {
                let reason = Some(RevokeReason::Chair);
                self.finish(id, RequestStatus::Revoked, reason, None, out);
            }
            RequestStatus::Denied | RequestStatus::Revoked => {
                let info = Some("denied by a chair");
                self.finish_with_info(id, RequestStatus::Denied, None, info, None, out);
            }
            RequestStatus::Pending | RequestStatus::Cancelled | RequestStatus::Released => {
                return Err((
                    ErrorCode::GenericError,
                    "a chair may accept, grant, deny or revoke",
                ));
            }
        }
        out.push(self.respond(user, msg, Primitive::ChairActionAck, Vec::new()));
        Ok(())
    }

    // State changes.

    fn remove_user_into(&mut self, user: u16, out: &mut Vec<Output>) {
        if self.users.remove(&user).is_none() {
            return;
        }
        self.subscriptions.remove(&user);
        for id in self.requests_of(user) {
            let granted = self.requests.get(&id).map(|r| r.status) == Some(RequestStatus::Granted);
            if granted {
                let reason = Some(RevokeReason::UserLeft);
                self.finish(id, RequestStatus::Revoked, reason, None, out);
            } else {
                self.finish(id, RequestStatus::Cancelled, None, None, out);
            }
        }
    }

    /// Live requests whose beneficiary is `user`.
    fn requests_of(&self, user: u16) -> Vec<u16> {
        self.requests
            .values()
            .filter(|r| r.beneficiary == user)
            .map(|r| r.id)
            .collect()
    }

    /// Grants what the queue allows, then tells everyone what changed.
    fn settle(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.advance(now, out);
        self.publish(out);
    }

    /// Walks the queue in order and grants each request whose floors are all free and wanted
    /// by nobody ahead of it.
    fn advance(&mut self, now: Instant, out: &mut Vec<Output>) {
        let by_priority = self.config.priority_ordering;
        let mut queued: Vec<&Request> = self
            .requests
            .values()
            .filter(|r| r.status == RequestStatus::Accepted)
            .collect();
        queued.sort_by_key(|r| r.queue_key(by_priority));
        let mut blocked = BTreeSet::new();
        let mut grant = Vec::new();
        for r in queued {
            let free = r.floors.iter().all(|f| {
                !blocked.contains(f) && self.floors.get(f).is_some_and(|fl| fl.holder.is_none())
            });
            if free {
                grant.push(r.id);
            }
            // Granted now or waiting: either way nobody behind it gets these floors.
            blocked.extend(r.floors.iter().copied());
        }
        for id in grant {
            self.grant(now, id, out);
        }
    }

    fn grant(&mut self, now: Instant, id: u16, out: &mut Vec<Output>) {
        let deadline = self.config.max_talk_burst.map(|d| now + d);
        let Some(r) = self.requests.get_mut(&id) else {
            return;
        };
        r.status = RequestStatus::Granted;
        r.deadline = deadline;
        let (user, floors) = (r.beneficiary, r.floors.clone());
        for floor in floors {
            if let Some(f) = self.floors.get_mut(&floor) {
                f.holder = Some(id);
            }
            out.push(Output::Event(FloorEvent::FloorGranted { floor, user }));
        }
    }

    fn finish(
        &mut self,
        id: u16,
        status: RequestStatus,
        reason: Option<RevokeReason>,
        answered: Option<u16>,
        out: &mut Vec<Output>,
    ) -> Option<Request> {
        let info = reason.map(RevokeReason::text);
        self.finish_with_info(id, status, reason, info, answered, out)
    }

    /// Ends a request with a final `status`: frees its floors (telling the media plane), and
    /// tells its requester and beneficiary, except `answered` (who gets it in a response).
    fn finish_with_info(
        &mut self,
        id: u16,
        status: RequestStatus,
        reason: Option<RevokeReason>,
        status_info: Option<&str>,
        answered: Option<u16>,
        out: &mut Vec<Output>,
    ) -> Option<Request> {
        let request = self.requests.remove(&id)?;
        self.told_requests.remove(&id);
        for &floor in &request.floors {
            let Some(f) = self.floors.get_mut(&floor) else {
                continue;
            };
            if f.holder != Some(id) {
                continue;
            }
            f.holder = None;
            let user = request.beneficiary;
            out.push(Output::Event(match status {
                RequestStatus::Released => FloorEvent::FloorReleased { floor, user },
                _ => FloorEvent::FloorRevoked {
                    floor,
                    user,
                    reason: reason.unwrap_or(RevokeReason::Chair),
                },
            }));
        }
        let positions = vec![0; request.floors.len()];
        let view = View {
            request: &request,
            status,
            positions: &positions,
            status_info,
        };
        let fri = describe::floor_request_information(&view, &self.users);
        for to in self.recipients(&request) {
            if Some(to) != answered {
                out.push(self.notify(to, Primitive::FloorRequestStatus, vec![fri.clone()]));
            }
        }
        Some(request)
    }

    /// Sends a FloorRequestStatus for each request and a FloorStatus for each floor whose
    /// state differs from what was last told.
    fn publish(&mut self, out: &mut Vec<Output>) {
        let ids: Vec<u16> = self.requests.keys().copied().collect();
        for id in ids {
            let Some(now) = self.snapshot(id) else {
                continue;
            };
            if self.told_requests.get(&id) == Some(&now) {
                continue;
            }
            self.told_requests.insert(id, now);
            let Some(request) = self.requests.get(&id) else {
                continue;
            };
            for to in self.recipients(request) {
                let fri = self.describe_live(id);
                out.push(self.notify(to, Primitive::FloorRequestStatus, fri));
            }
        }
        let floors: Vec<u16> = self.floors.keys().copied().collect();
        for floor in floors {
            let now = self.floor_snapshot(floor);
            if self.told_floors.get(&floor) == Some(&now) {
                continue;
            }
            self.told_floors.insert(floor, now);
            let subscribers: Vec<u16> = self
                .subscriptions
                .iter()
                .filter(|(_, floors)| floors.contains(&floor))
                .map(|(&user, _)| user)
                .collect();
            for to in subscribers {
                let attributes = self.floor_status(floor);
                out.push(self.notify(to, Primitive::FloorStatus, attributes));
            }
        }
    }

    // Views of the state.

    /// Accepted requests for `floor`, first in line first.
    fn queue_of(&self, floor: u16) -> Vec<u16> {
        let by_priority = self.config.priority_ordering;
        let mut queued: Vec<&Request> = self
            .requests
            .values()
            .filter(|r| r.status == RequestStatus::Accepted && r.floors.contains(&floor))
            .collect();
        queued.sort_by_key(|r| r.queue_key(by_priority));
        queued.iter().map(|r| r.id).collect()
    }

    fn positions(&self, r: &Request) -> Vec<u8> {
        r.floors
            .iter()
            .map(|&f| {
                if r.status != RequestStatus::Accepted {
                    return 0;
                }
                let place = self.queue_of(f).iter().position(|&id| id == r.id);
                place.map_or(0, |p| u8::try_from(p + 1).unwrap_or(u8::MAX))
            })
            .collect()
    }

    fn snapshot(&self, id: u16) -> Option<Snapshot> {
        let r = self.requests.get(&id)?;
        Some(Snapshot {
            status: r.status,
            positions: self.positions(r),
            beneficiary: r.beneficiary,
        })
    }

    /// The requests a FloorStatus about `floor` lists: the holder, the queue, then those
    /// waiting for a chair.
    fn floor_requests(&self, floor: u16) -> Vec<u16> {
        let mut ids: Vec<u16> = self
            .floors
            .get(&floor)
            .and_then(|f| f.holder)
            .into_iter()
            .collect();
        ids.extend(self.queue_of(floor));
        ids.extend(
            self.requests
                .values()
                .filter(|r| r.status == RequestStatus::Pending && r.floors.contains(&floor))
                .map(|r| r.id),
        );
        ids
    }

    fn floor_snapshot(&self, floor: u16) -> Vec<(u16, Snapshot)> {
        self.floor_requests(floor)
            .into_iter()
            .filter_map(|id| Some((id, self.snapshot(id)?)))
            .collect()
    }

    /// FLOOR-ID and a FLOOR-REQUEST-INFORMATION per request on the floor (§5.3.8).
    fn floor_status(&self, floor: u16) -> Vec<Attribute> {
        let mut attributes = vec![Attribute::floor_id(floor)];
        for id in self.floor_requests(floor) {
            attributes.extend(self.describe_live(id));
        }
        attributes
    }

    /// FLOOR-REQUEST-INFORMATION of a live request (empty if there is none).
    fn describe_live(&self, id: u16) -> Vec<Attribute> {
        let Some(request) = self.requests.get(&id) else {
            return Vec::new();
        };
        let positions = self.positions(request);
        let view = View {
            request,
            status: request.status,
            positions: &positions,
            status_info: None,
        };
        vec![describe::floor_request_information(&view, &self.users)]
    }

    /// Who hears about a request: its requester and beneficiary, while they are present.
    fn recipients(&self, r: &Request) -> Vec<u16> {
        let mut to = vec![r.requester];
        if r.beneficiary != r.requester {
            to.push(r.beneficiary);
        }
        to.retain(|u| self.users.contains_key(u));
        to
    }

    /// Whether one of `floors` has as many waiting requests as the queue limit allows.
    fn queue_full(&self, floors: &[u16]) -> bool {
        let Some(limit) = self.config.max_queue else {
            return false;
        };
        floors.iter().any(|f| {
            let waiting = self
                .requests
                .values()
                .filter(|r| {
                    r.floors.contains(f)
                        && matches!(r.status, RequestStatus::Accepted | RequestStatus::Pending)
                })
                .count();
            waiting >= limit
        })
    }

    fn is_chair(&self, user: u16) -> bool {
        self.users.get(&user).is_some_and(|u| u.chair)
    }

    fn allocate_request_id(&mut self) -> Option<u16> {
        for _ in 0..=u16::MAX {
            let id = self.next_request_id;
            self.next_request_id = self.next_request_id.checked_add(1).unwrap_or(1);
            if id != 0 && !self.requests.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    // Messages out.

    /// The response to `msg`, in its transaction.
    fn respond(
        &self,
        user: u16,
        msg: &Message,
        primitive: Primitive,
        attributes: Vec<Attribute>,
    ) -> Output {
        let version = self.config.transport.version();
        let mut message = Message::new(
            version,
            primitive,
            msg.conference_id,
            msg.transaction_id,
            msg.user_id,
        )
        .with_attributes(attributes);
        message.responder = self.config.transport == Transport::Unreliable;
        Output::Send { user, message }
    }

    /// A server-initiated message (a new transaction: ID 0 over TCP, fresh over UDP).
    fn notify(&mut self, user: u16, primitive: Primitive, attributes: Vec<Attribute>) -> Output {
        let transaction_id = match self.config.transport {
            Transport::Reliable => 0,
            Transport::Unreliable => {
                let id = self.next_transaction_id;
                self.next_transaction_id = self.next_transaction_id.checked_add(1).unwrap_or(1);
                id
            }
        };
        let message = Message::new(
            self.config.transport.version(),
            primitive,
            self.config.conference_id,
            transaction_id,
            user,
        )
        .with_attributes(attributes);
        Output::Send { user, message }
    }

    fn error(&self, user: u16, msg: &Message, code: ErrorCode, info: &str) -> Output {
        let attributes = vec![
            Attribute::error_code(code, ErrorDetails::none()),
            Attribute::error_info(info),
        ];
        self.respond(user, msg, Primitive::Error, attributes)
    }
}

const UNKNOWN_REQUEST: Refusal = (
    ErrorCode::FloorRequestIdDoesNotExist,
    "no such floor request",
);

fn find_beneficiary(msg: &Message) -> Option<u16> {
    msg.attributes.iter().find_map(|a| match a {
        Attribute::BeneficiaryId { id, .. } => Some(*id),
        _ => None,
    })
}

fn find_request_id(msg: &Message) -> Result<u16, Refusal> {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            Attribute::FloorRequestId { id, .. } => Some(*id),
            _ => None,
        })
        .ok_or((ErrorCode::UnableToParseMessage, "FLOOR-REQUEST-ID missing"))
}

fn find_status(attributes: &[Attribute]) -> Option<RequestStatus> {
    attributes.iter().find_map(|a| match a {
        Attribute::RequestStatus { status, .. } => Some(*status),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
