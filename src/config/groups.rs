//! `[[groups]]`: the pre-defined groups of the file.

use super::Authority;
use super::JoinRule;
use super::MediaKind;
use super::MemberConfig;
use serde::Deserialize;

/// `[[groups]]`: a pre-defined group.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub uri: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default = "default_join")]
    pub join: JoinRule,
    #[serde(default = "default_max_participants")]
    pub max_participants: u32,
    #[serde(default = "default_true")]
    pub allow_signalling_only: bool,
    #[serde(default = "default_true")]
    pub allow_private_messages: bool,
    /// Media this group serves (a subset of the provider's); default: all the provider allows.
    #[serde(default)]
    pub allowed_media: Option<Vec<MediaKind>>,
    /// Audio codecs this group forwards, in preference order; default: `rtp.codecs`.
    #[serde(default)]
    pub codecs: Option<Vec<String>>,
    #[serde(default = "default_true")]
    pub allow_anonymous: bool,
    #[serde(default = "default_add")]
    pub add: Authority,
    #[serde(default = "default_add")]
    pub remove: Authority,
    /// The group starts locked: nobody new may join until a moderator unlocks it.
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub members: Vec<MemberConfig>,
}

fn default_add() -> Authority {
    Authority::Moderators
}

fn default_join() -> JoinRule {
    JoinRule::Open
}
fn default_max_participants() -> u32 {
    1000
}
fn default_true() -> bool {
    true
}
