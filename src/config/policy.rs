//! `[policy]`: the provider's policy, and the domain enums groups and sessions use as their model.

use serde::Deserialize;

/// Who may join a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JoinRule {
    /// Anyone may join.
    Open,
    /// Only the group's listed members may join.
    MembersOnly,
    /// Nobody dials in: only participants the focus invited (REFER, URI list) join.
    InvitedOnly,
}

/// A member's role in a group (shown in conference-info `roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Participant,
    Moderator,
    Host,
}

impl Role {
    /// The RFC 4575 role token.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Participant => "participant",
            Role::Moderator => "moderator",
            Role::Host => "host",
        }
    }
}

/// Who may add or remove participants (REFER, RFC 4579).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Authority {
    /// Hosts only.
    Hosts,
    /// Hosts and moderators.
    Moderators,
    /// Any listed member.
    Members,
    /// Any participant.
    Anyone,
}

/// A media type a session may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MediaKind {
    /// Session-mode chat (`m=message ... TCP/MSRP`).
    Msrp,
    /// Talk bursts: `m=audio` RTP with BFCP floor control (`m=application ... TCP/BFCP`).
    Audio,
}

/// `[[groups.members]]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    pub uri: String,
    #[serde(default = "default_role")]
    pub role: Role,
}

fn default_role() -> Role {
    Role::Participant
}

/// `[policy]`: service-provider policy, over every group and ad-hoc session.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderPolicy {
    /// No session holds more participants than this, whatever its group says.
    pub max_participants_per_session: u32,
    /// Media the focus may serve at all.
    pub allowed_media: Vec<MediaKind>,
    /// Hosts (IP addresses) whose P-Asserted-Identity is trusted (RFC 3325).
    pub trusted_hosts: Vec<String>,
    /// Which identities count for membership, roles and rights: only proven ones
    /// (`asserted`), or any From (`from`, the lab mode).
    pub identity: IdentityMode,
    /// Whether ad-hoc groups may be created, and by whom: "anyone", "none", or a list of
    /// domains in `adhoc_domains`.
    pub adhoc: AdhocRule,
    pub adhoc_domains: Vec<String>,
    /// How long a participant the focus calls may ring before the focus gives up (CANCEL).
    pub dial_out_timeout_s: u64,
    /// Most targets one URI list may name (REFER, INVITE or MESSAGE with a list); more is 403.
    pub max_list_size: usize,
    /// Group messages one session relays per second (pager mode), and most it queues.
    pub pager_rate: u32,
    pub pager_queue: usize,
    /// Participants one untrusted address may have in one session at once (the trusted
    /// core fronts many users and is exempt): one address cannot fill a group.
    pub max_participants_per_source: u32,
    /// Group messages per second one sender (identity) may send into a session (0:
    /// unlimited), and its burst; beyond, 503 with Retry-After.
    pub pager_rate_per_sender: u32,
    pub pager_burst_per_sender: u32,
    /// A joining UA whose Contact carries `;isfocus` (another focus cascading into ours).
    pub cascade: CascadeRule,
}

/// What becomes of a join from another focus (its Contact says `;isfocus`, RFC 4579 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CascadeRule {
    /// Refused `403` with a Warning.
    Refuse,
    /// Accepted as a participant that stands for another conference.
    Accept,
}

/// Which identities count for membership, roles and rights (`policy.identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityMode {
    /// Only a proven identity: P-Asserted-Identity from a trusted host, the From of a trusted
    /// host, or digest authentication by the focus. Anyone else is an outsider.
    #[default]
    Asserted,
    /// Any From counts, from anywhere: a lab mode, never for a network others can reach.
    From,
}

/// Who may create ad-hoc groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdhocRule {
    Anyone,
    None,
    Domains,
}

impl Default for ProviderPolicy {
    fn default() -> Self {
        ProviderPolicy {
            max_participants_per_session: 1000,
            allowed_media: vec![MediaKind::Msrp],
            // Loopback: a proxy or test tool on the focus's own machine (the embedded file
            // documents the same).
            trusted_hosts: vec!["127.0.0.1".into(), "::1".into()],
            identity: IdentityMode::Asserted,
            adhoc: AdhocRule::Anyone,
            adhoc_domains: Vec::new(),
            dial_out_timeout_s: 60,
            max_list_size: 100,
            pager_rate: 2000,
            pager_queue: 20_000,
            max_participants_per_source: 32,
            pager_rate_per_sender: 5,
            pager_burst_per_sender: 20,
            cascade: CascadeRule::Refuse,
        }
    }
}
