//! The actor's talk-burst driver: it registers the session's BFCP conference with the
//! listener, keeps each floor user's connection, and executes [`TalkEffect`]s through the RTP
//! plane (legs, the holder) and those connections. News from the listener and the plane come
//! back as [`TalkInput`]s.

use super::{SessionActor, SessionInput};
use crate::push_to_talk::bfcp::{Attribute, ErrorDetails, Message, Primitive, VERSION_RELIABLE};
use crate::push_to_talk::rtp::{RtpEvent, RtpEvents, RtpGroup};
use crate::push_to_talk::talk_burst::{FloorRefusal, TalkEffect, TalkPlanes};
use crate::push_to_talk::{Busy, Connection, FloorSink};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// Talk-burst news for the session.
#[derive(Debug)]
pub enum TalkInput {
    /// A BFCP message from a connection bound to `user`.
    Bfcp {
        conn: Connection,
        user: u16,
        message: Message,
    },
    /// That connection closed.
    BfcpClosed { conn: u64, user: u16 },
    /// News about a participant's RTP leg.
    Rtp { pid: u64, event: RtpEvent },
}

/// Hands the listener's messages to the actor: `try_send`, so a full mailbox is answered
/// (Error, busy) instead of queueing without bound; closes are few and must not be lost.
struct SessionFloor(Addr<SessionActor>);

impl FloorSink for SessionFloor {
    fn message(&self, conn: &Connection, user: u16, message: Message) -> Result<(), Busy> {
        let input = TalkInput::Bfcp {
            conn: conn.clone(),
            user,
            message,
        };
        self.0.try_send(SessionInput::Talk(input)).map_err(|_| Busy)
    }

    fn closed(&self, conn: &Connection, user: u16) {
        let input = TalkInput::BfcpClosed {
            conn: conn.id(),
            user,
        };
        self.0.do_send(SessionInput::Talk(input));
    }
}

/// Delivers RTP liveness news (at most two per silence timeout per leg).
struct SessionRtp(Addr<SessionActor>);

impl RtpEvents for SessionRtp {
    fn on_rtp_event(&self, pid: u64, event: RtpEvent) {
        self.0
            .do_send(SessionInput::Talk(TalkInput::Rtp { pid, event }));
    }
}

/// The session's part of the talk-burst planes.
pub(super) struct TalkDriver {
    planes: TalkPlanes,
    group: Arc<RtpGroup>,
    conference_id: u32,
    conns: HashMap<u16, Connection>,
    events: Arc<dyn RtpEvents>,
}

impl TalkDriver {
    /// Registers a BFCP conference for the session; returns its Conference ID with it.
    pub(super) fn start(planes: TalkPlanes, addr: Addr<SessionActor>) -> TalkDriver {
        let conference_id = planes.floor.register(Arc::new(SessionFloor(addr.clone())));
        TalkDriver {
            group: planes.rtp.group(),
            planes,
            conference_id,
            conns: HashMap::new(),
            events: Arc::new(SessionRtp(addr)),
        }
    }

    pub(super) fn conference_id(&self) -> u32 {
        self.conference_id
    }

    /// A connection speaks for `user`: it replaces an older one.
    pub(super) fn bind(&mut self, user: u16, conn: &Connection) {
        if let Some(old) = self.conns.insert(user, conn.clone()) {
            if old.id() != conn.id() {
                old.close();
            }
        }
    }

    /// Whether `conn` is `user`'s current connection (a replaced one closing is no news).
    pub(super) fn unbind(&mut self, user: u16, conn: u64) -> bool {
        if self.conns.get(&user).is_some_and(|c| c.id() == conn) {
            self.conns.remove(&user);
            true
        } else {
            false
        }
    }

    /// Refuses a connection that may not speak for the user it names (Error 2 for a user the
    /// session does not know, Error 5 for one whose SDP put it on another address), and
    /// closes it: it never binds, so the participant's own connection stays.
    pub(super) fn refuse(conn: &Connection, message: &Message, refusal: FloorRefusal) {
        metrics::counter!("focus_bfcp_rejected_total", "reason" => refusal.label()).increment(1);
        tracing::debug!(peer = %conn.peer(), user = message.user_id, reason = refusal.label(), "BFCP connection refused");
        if message.primitive != Primitive::Error {
            conn.send(
                Message::new(
                    VERSION_RELIABLE,
                    Primitive::Error,
                    message.conference_id,
                    message.transaction_id,
                    message.user_id,
                )
                .with_attributes(vec![
                    Attribute::error_code(refusal.code(), ErrorDetails::none()),
                    Attribute::error_info(refusal.to_string()),
                ]),
            );
        }
        conn.close();
    }

    pub(super) fn execute(&mut self, effect: TalkEffect) {
        let plane = &self.planes.rtp;
        match effect {
            TalkEffect::AddLeg(spec) => {
                let pid = spec.pid;
                if let Err(e) = plane.add(&self.group, spec, self.events.clone()) {
                    crate::warn_limited!(pid, error = %e, "RTP leg not started");
                }
            }
            TalkEffect::UpdateLeg {
                pid,
                expected,
                codec,
            } => plane.update(&self.group, pid, expected, codec),
            TalkEffect::RemoveLeg { pid } => plane.remove(&self.group, pid),
            TalkEffect::Holder { pid } => self.group.set_holder(pid),
            TalkEffect::Mute { pid, muted } => plane.set_muted(&self.group, pid, muted),
            TalkEffect::Send { user, message } => {
                if let Some(c) = self.conns.get(&user) {
                    c.send(message);
                }
            }
            TalkEffect::Close { user } => {
                if let Some(c) = self.conns.remove(&user) {
                    c.close();
                }
            }
        }
    }

    /// The session ended: its conference and whatever is left of its legs go.
    pub(super) fn stop(&mut self) {
        self.planes.floor.unregister(self.conference_id);
        for c in self.conns.values() {
            c.close();
        }
        self.conns.clear();
        self.group.set_holder(0);
        let pids: Vec<u64> = self.group.pids();
        for pid in pids {
            self.planes.rtp.remove(&self.group, pid);
        }
    }
}
