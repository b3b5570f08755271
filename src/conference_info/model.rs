//! The RFC 4575 conference-info data model.
//!
//! Plain owned data: the session layer builds it from its own state on every change, so the
//! types are cheap to construct (`Default`, `new`) and compare (`PartialEq`, used by `delta`).
//! Element and token names follow the XML schema of RFC 4575 §6; `Option`/empty `Vec` mean
//! "element absent", which is how a partial document says "unchanged".

use std::fmt;
use std::time::SystemTime;

/// XML namespace of `application/conference-info+xml` documents.
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:conference-info";

/// XML namespace of the focus's own extension attributes (RFC 4575 lets `endpoint` carry
/// attributes of other namespaces; receivers that do not know them ignore them).
pub const FOCUS_NAMESPACE: &str = "urn:cpm-focus:params:xml:ns:conference-info";

/// MIME type of the NOTIFY body for `Event: conference`.
pub const MIME_TYPE: &str = "application/conference-info+xml";

/// Declares an enum whose variants map one-to-one onto RFC 4575 schema tokens.
macro_rules! token_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $token:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in schema order (lets tests cover each token).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The exact schema token.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $token),+
                }
            }

            /// Parses the exact schema token (case-sensitive, as the schema is).
            pub fn from_token(token: &str) -> Option<Self> {
                match token {
                    $($token => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

token_enum! {
    /// `state-type`: how an element relates to the subscriber's previous view.
    #[derive(Default)]
    ElemState {
        /// The element carries its complete state and replaces the old one.
        #[default]
        Full = "full",
        /// Only changed children are present; merge them.
        Partial = "partial",
        /// The element (keyed by its entity) is gone.
        Deleted = "deleted",
    }
}

/// The root `state` attribute uses the same `state-type` as `users`, `user` and `endpoint`.
pub type DocState = ElemState;

token_enum! {
    /// `endpoint-status-type` (RFC 4575 §5.7.2).
    EndpointStatus {
        Pending = "pending",
        DialingOut = "dialing-out",
        DialingIn = "dialing-in",
        Alerting = "alerting",
        OnHold = "on-hold",
        Connected = "connected",
        MutedViaFocus = "muted-via-focus",
        Disconnecting = "disconnecting",
        Disconnected = "disconnected",
    }
}

token_enum! {
    /// `joining-type`: how the endpoint came into the conference.
    JoiningMethod {
        DialedIn = "dialed-in",
        DialedOut = "dialed-out",
        FocusOwner = "focus-owner",
    }
}

token_enum! {
    /// `disconnection-type`: why the endpoint left.
    DisconnectionMethod {
        Departed = "departed",
        Booted = "booted",
        Failed = "failed",
        Busy = "busy",
    }
}

token_enum! {
    /// `media-status-type`: direction of a media stream as the focus sees it.
    MediaStatus {
        RecvOnly = "recvonly",
        SendOnly = "sendonly",
        SendRecv = "sendrecv",
        Inactive = "inactive",
    }
}

/// `<conference-info>`: one notification body.
///
/// Every child is optional because a partial document carries only what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceInfo {
    /// Conference URI (`entity`, required).
    pub entity: String,
    /// Full, partial or deleted document.
    pub state: DocState,
    /// Per-subscription sequence number; see `delta` for the rule.
    pub version: u32,
    pub description: Option<ConferenceDescription>,
    pub host_info: Option<HostInfo>,
    pub conference_state: Option<ConferenceState>,
    pub users: Option<Users>,
}

impl ConferenceInfo {
    /// An empty full document: the caller fills in the parts it has.
    pub fn full(entity: impl Into<String>, version: u32) -> Self {
        ConferenceInfo {
            entity: entity.into(),
            state: ElemState::Full,
            version,
            description: None,
            host_info: None,
            conference_state: None,
            users: None,
        }
    }
}

/// `<conference-description>`: what the conference is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConferenceDescription {
    pub display_text: Option<String>,
    pub subject: Option<String>,
    pub free_text: Option<String>,
    /// `keywords` is an `xs:list`: tokens must not contain whitespace.
    pub keywords: Vec<String>,
    /// `<conf-uris>`: URIs to join (e.g. the conference URI itself).
    pub conf_uris: Vec<UriEntry>,
    /// `<service-uris>`: auxiliary services (web page, recording...).
    pub service_uris: Vec<UriEntry>,
    pub maximum_user_count: Option<u32>,
    pub available_media: Vec<AvailableMedia>,
}

/// `uri-type` entry of `conf-uris`, `service-uris`, `host-info/uris`, `associated-aors`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UriEntry {
    pub uri: String,
    pub display_text: Option<String>,
    pub purpose: Option<String>,
}

impl UriEntry {
    pub fn new(uri: impl Into<String>) -> Self {
        UriEntry {
            uri: uri.into(),
            ..UriEntry::default()
        }
    }
}

/// `available-media/entry` (`conference-medium-type`): a media stream the conference offers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AvailableMedia {
    /// `label` attribute (required); ties to SDP `a=label`.
    pub label: String,
    /// `<type>` (required): "audio", "video", "message"...
    pub media_type: String,
    pub display_text: Option<String>,
    pub status: Option<MediaStatus>,
}

/// `<host-info>`: who hosts the conference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostInfo {
    pub display_text: Option<String>,
    pub web_page: Option<String>,
    pub uris: Vec<UriEntry>,
}

/// `<conference-state>`: the counters a roster view shows at the top.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConferenceState {
    pub user_count: Option<u32>,
    pub active: Option<bool>,
    pub locked: Option<bool>,
}

/// `<users>`: the roster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    /// `full` replaces the subscriber's roster; `partial` lists only changed users.
    pub state: ElemState,
    pub users: Vec<User>,
}

/// `<user>`: one participant, keyed by `entity` (its AOR).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// `entity` attribute: the user's AOR, the key partial documents match on.
    pub entity: String,
    pub state: ElemState,
    pub display_text: Option<String>,
    pub associated_aors: Vec<UriEntry>,
    /// `roles/entry` values ("participant", "administrator"...).
    pub roles: Vec<String>,
    /// `languages` is an `xs:list` of language tags.
    pub languages: Vec<String>,
    pub cascaded_focus: Option<String>,
    pub endpoints: Vec<Endpoint>,
}

impl User {
    pub fn new(entity: impl Into<String>) -> Self {
        User {
            entity: entity.into(),
            ..User::default()
        }
    }
}

/// `<endpoint>`: one device (SIP dialog) of a user, keyed by `entity` (its contact).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub entity: String,
    pub state: ElemState,
    pub display_text: Option<String>,
    /// Who asked the focus to bring this endpoint in (REFER).
    pub referred: Option<Execution>,
    pub status: Option<EndpointStatus>,
    pub joining_method: Option<JoiningMethod>,
    pub joining_info: Option<Execution>,
    pub disconnection_method: Option<DisconnectionMethod>,
    pub disconnection_info: Option<Execution>,
    pub media: Vec<Media>,
    pub call_info: Option<SipDialogInfo>,
    /// The participant's identity is an unproven claim (`policy.identity`): written as the
    /// extension attribute `verified="false"` in [`FOCUS_NAMESPACE`].
    pub unverified: bool,
}

impl Endpoint {
    pub fn new(entity: impl Into<String>) -> Self {
        Endpoint {
            entity: entity.into(),
            ..Endpoint::default()
        }
    }
}

/// `execution-type`: when, why and by whom something happened.
///
/// `when` is rendered to whole seconds (UTC), so sub-second precision does not round-trip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Execution {
    pub when: Option<SystemTime>,
    pub reason: Option<String>,
    pub by: Option<String>,
}

/// `<media>` of an endpoint, keyed by `id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Media {
    /// `id` attribute (required).
    pub id: String,
    pub display_text: Option<String>,
    pub media_type: Option<String>,
    /// Matches an `available-media` entry's label.
    pub label: Option<String>,
    /// SSRC (RTP) or other source id.
    pub src_id: Option<String>,
    pub status: Option<MediaStatus>,
}

/// `call-info/sip` (`sip-dialog-id-type`): the dialog between focus and endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SipDialogInfo {
    pub display_text: Option<String>,
    pub call_id: String,
    pub from_tag: String,
    pub to_tag: String,
}
