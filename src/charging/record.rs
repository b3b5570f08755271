//! The charging record schema: what one line of the charging file says.
//!
//! The session layer builds a [`Record`] (the event); the writer wraps it in an [`Entry`]
//! (sequence number, time, instance) and writes the entry as one JSON line. [`SCHEMA_DOC`] is
//! the operator-facing description of the same schema; a test keeps the two in step.

use super::timestamp::Timestamp;
use serde::{Deserialize, Serialize};

/// One line of the charging file: the envelope every record shares, then the record's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in this instance's file set, from 1, one more per record: a reader seeing a
    /// jump knows records were lost (a writer that had to drop records still used their
    /// numbers). A restarted writer continues from the last number in the file.
    pub seq: u64,
    /// When the event happened (not when it was written).
    pub ts: Timestamp,
    /// The focus instance that wrote it (`focus.instance_id`): files of several instances can
    /// be merged.
    pub instance: String,
    /// The event.
    #[serde(flatten)]
    pub record: Record,
}

/// A charging event, tagged by `type` in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// A group session began (its first participant joined).
    SessionStart {
        /// The conference URI.
        conference: String,
        /// How the session came to be.
        kind: SessionKind,
        /// The group's subject, when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        /// The session resumes one a crashed focus had (its interrupted part was closed with
        /// `reason: crash`).
        #[serde(default, skip_serializing_if = "is_false")]
        recovered: bool,
    },
    /// A group session ended (its last participant left, or it was ended).
    SessionStop {
        /// The conference URI.
        conference: String,
        /// Session length in whole seconds, rounded down.
        duration_s: u64,
        /// Distinct participants that joined during the session.
        participants_total: u32,
        /// Why it ended, when not by its participants or its moderators: `crash` for the part
        /// of a session a crashed focus interrupted (written when the focus restarts).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<StopReason>,
    },
    /// A participant joined a session.
    ParticipantJoin {
        /// The conference URI.
        conference: String,
        /// The participant as the other participants see it (an anonymous alias if it asked
        /// for privacy): the key that matches its `participant_leave`.
        participant: String,
        /// The participant's real identity (the identity that counts): the one to charge.
        /// Charging records are internal, so privacy does not hide it here.
        identity: String,
        /// `false` when the identity is an unproven claim (`policy.identity`): `identity`
        /// then names the account of its source address (`source:192.0.2.7`), never the
        /// claim. Written only when `false`.
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        verified: bool,
        /// Whether it called in or the focus called it.
        joining_method: JoiningMethod,
        /// Whether it asked for privacy (and is shown as an alias).
        anonymous: bool,
    },
    /// A participant left a session.
    ParticipantLeave {
        /// The conference URI.
        conference: String,
        /// The participant as shown, as in its `participant_join`.
        participant: String,
        /// The participant's real identity.
        identity: String,
        /// `false` when the identity is an unproven claim (`policy.identity`): `identity`
        /// then names the account of its source address (`source:192.0.2.7`), never the
        /// claim. Written only when `false`.
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        verified: bool,
        /// Why it left.
        disconnection_method: DisconnectionMethod,
        /// Time in the session, whole seconds rounded down.
        duration_s: u64,
        /// `crash`: the focus crashed while the participant was in (see `session_stop`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<StopReason>,
    },
    /// A message the focus distributed to a group (SIP MESSAGE, pager mode, or a message to a
    /// URI list, exploder mode).
    GroupMessage {
        /// The conference or group URI, absent for a message to an ad-hoc URI list.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conference: Option<String>,
        /// The sender's real identity.
        sender: String,
        /// `false` when the identity is an unproven claim (`policy.identity`): `sender`
        /// then names the account of its source address (`source:192.0.2.7`), never the
        /// claim. Written only when `false`.
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        verified: bool,
        /// Recipients the focus sent it to.
        recipients: u32,
        /// Body size in bytes.
        size: u64,
        /// How it was distributed.
        mode: MessageMode,
    },
    /// Session-mode (MSRP) traffic of one participant, written once when its MSRP leg ends.
    MsrpVolume {
        /// The conference URI.
        conference: String,
        /// The participant as shown.
        participant: String,
        /// The participant's real identity.
        identity: String,
        /// `false` when the identity is an unproven claim (`policy.identity`): `identity`
        /// then names the account of its source address (`source:192.0.2.7`), never the
        /// claim. Written only when `false`.
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        verified: bool,
        /// Complete messages the participant sent to the group.
        messages_sent: u64,
        /// Bytes of message content the participant sent.
        bytes_sent: u64,
        /// Messages delivered to the participant.
        messages_received: u64,
        /// Bytes of message content delivered to the participant.
        bytes_received: u64,
    },
}

impl Record {
    /// The `type` token; also the `type` label of `focus_charging_records_written_total`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Record::SessionStart { .. } => "session_start",
            Record::SessionStop { .. } => "session_stop",
            Record::ParticipantJoin { .. } => "participant_join",
            Record::ParticipantLeave { .. } => "participant_leave",
            Record::GroupMessage { .. } => "group_message",
            Record::MsrpVolume { .. } => "msrp_volume",
        }
    }
}

/// How a session came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionKind {
    /// A pre-defined group's session.
    Predefined,
    /// An ad-hoc group created by its first INVITE.
    Adhoc,
    /// An ended ad-hoc session started again by its Contribution-ID (RCS restart).
    Restarted,
}

/// Why a session or a participant's part in it ended, beyond the disconnection method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// The focus process died (killed, crashed); the record is written by the restarted
    /// focus from its journal, timed at the crash.
    Crash,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_true(b: &bool) -> bool {
    *b
}

fn yes() -> bool {
    true
}

/// How a participant joined (RFC 4575 `joining-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JoiningMethod {
    DialedIn,
    DialedOut,
}

/// Why a participant left (RFC 4575 `disconnection-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DisconnectionMethod {
    Departed,
    Booted,
    Failed,
    Busy,
}

impl From<crate::conference_info::DisconnectionMethod> for DisconnectionMethod {
    fn from(m: crate::conference_info::DisconnectionMethod) -> Self {
        use crate::conference_info::DisconnectionMethod as Ci;
        match m {
            Ci::Departed => DisconnectionMethod::Departed,
            Ci::Booted => DisconnectionMethod::Booted,
            Ci::Failed => DisconnectionMethod::Failed,
            Ci::Busy => DisconnectionMethod::Busy,
        }
    }
}

/// How a group message was distributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageMode {
    /// A MESSAGE to a group or conference URI, copied to its members.
    Pager,
    /// A MESSAGE carrying a URI list (RFC 5365), copied to each listed recipient.
    Exploder,
}

/// The charging file format, for operators and docs/charging.md.
pub const SCHEMA_DOC: &str = r#"## Charging records

The focus appends one JSON object per line (UTF-8, `\n`-terminated) to `charging.path`. When
the next line would make the file larger than `charging.max_file_bytes`, the file is renamed
`PATH.1` (older ones shift to `PATH.2` ... `PATH.<keep_files>`, the oldest is deleted) and a
new file is started, so records are in order across `PATH.<n>` ... `PATH.1`, `PATH`. Records
are never split across files. A line without a final `\n` is a write cut short by a crash:
skip it.

Every record has:

| field | type | meaning |
|---|---|---|
| `seq` | integer | 1, 2, 3 ... per instance; a jump means records were lost |
| `ts` | string | when the event happened, RFC 3339 UTC with milliseconds |
| `instance` | string | the focus instance (`focus.instance_id`) |
| `type` | string | one of the types below |

Then, by `type`:

- `session_start`: `conference` (URI); `kind`: `predefined`, `adhoc` or `restarted`;
  `subject` (optional); `recovered` (`true`, only present when the session resumes one a
  crashed focus had).
- `session_stop`: `conference`; `duration_s` (whole seconds); `participants_total`
  (distinct participants that joined); `reason` (optional): `crash` when the focus died
  during the session.
- `participant_join`: `conference`; `participant` (as shown to others, possibly an anonymous
  alias); `identity` (the real identity, to charge); `joining_method`: `dialed-in` or
  `dialed-out`; `anonymous` (boolean); `verified` (see below).
- `participant_leave`: `conference`; `participant`; `identity`; `disconnection_method`:
  `departed`, `booted`, `failed` or `busy`; `duration_s` (time in the session); `reason`
  (optional): `crash` as for `session_stop`; `verified`.
- `group_message`: `conference` (absent for an ad-hoc URI list); `sender` (real identity);
  `recipients`; `size` (body bytes); `mode`: `pager` or `exploder`; `verified`.
- `msrp_volume` (once per participant's MSRP leg, when it ends): `conference`;
  `participant`; `identity`; `messages_sent`; `bytes_sent`; `messages_received`;
  `bytes_received`; `verified`.

`identity` and `sender` are what to bill: the identity the focus proved (a trusted host's
P-Asserted-Identity or From, digest authentication, or an address the focus called). A
participant or sender whose identity is an unproven claim (a `From` from outside
`policy.trusted_hosts`) carries `verified: false`, and its `identity` or `sender` is then the
account of its source address, `source:<IPv4>` or `source:[<IPv6>]`, never the claim (the
claim may still show in `participant`, as the others saw it). `verified` is present only when
`false`. In the lab mode `policy.identity = "from"` a claim counts and is billed as
written, still with `verified: false`.

After a crash (`kill -9`, power loss) the restarted focus closes, from its journal, what the
crash interrupted: one `participant_leave` (`failed`, `reason: crash`) per participant and one
`session_stop` (`reason: crash`) per session, timed at the crash. The groups it resumes then
start again: `session_start` with `recovered: true` and a `participant_join` per participant
that accepts the focus's re-INVITE. MSRP volumes counted before the crash are lost.

Stability: fields keep their name and meaning; new fields and types may be added, so readers
ignore what they do not know.
"#;
