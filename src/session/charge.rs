//! What a session tells offline charging. The session only describes events; the actor turns
//! them into records for the charging writer (and adds the MSRP volumes the switch counted).

use crate::conference_info::DisconnectionMethod;
use std::time::Duration;

/// How a session came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A configured group.
    Predefined,
    /// Created through the conference factory.
    Adhoc,
    /// An ended ad-hoc session brought back by its Contribution-ID.
    Restarted,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Predefined => "predefined",
            SessionKind::Adhoc => "adhoc",
            SessionKind::Restarted => "restarted",
        }
    }
}

/// A chargeable event.
#[derive(Debug, Clone, PartialEq)]
pub enum ChargeEvent {
    /// The first participant joined; `recovered` when the session resumes one a crashed
    /// focus had.
    SessionStart {
        subject: Option<String>,
        recovered: bool,
    },
    /// The last participant left.
    SessionStop {
        duration: Duration,
        participants_total: u32,
    },
    Join {
        /// As the others see it (alias when anonymous).
        participant: String,
        /// Whom to bill: the real identity when it counts (charging is internal), else the
        /// account of its source address.
        charged: crate::policy::Charged,
        dialed_out: bool,
        anonymous: bool,
    },
    Leave {
        participant: String,
        charged: crate::policy::Charged,
        method: DisconnectionMethod,
        duration: Duration,
    },
    /// A group message relayed (pager mode).
    GroupMessage {
        /// Whom to bill, as for a join.
        sender: crate::policy::Charged,
        recipients: u32,
        size: u64,
    },
}
