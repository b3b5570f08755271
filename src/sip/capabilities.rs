//! What the focus implements, as its UAS headers advertise it (RFC 3261 §20: Allow, Accept,
//! Supported, Allow-Events), the body types it recognizes, and the fresh tags and branches
//! every request it sends carries. They live here, at the bottom, because the request checks,
//! the pure session state and the endpoint all need them.

/// Methods the focus implements (the `Allow` header).
pub const ALLOW: &str =
    "INVITE, ACK, BYE, CANCEL, OPTIONS, SUBSCRIBE, REFER, INFO, MESSAGE, UPDATE";
/// Body types the focus accepts in requests (the `Accept` header).
pub const ACCEPT: &str = "application/sdp";
/// Option tags the focus supports (the `Supported` header); empty for now.
pub const SUPPORTED: &[&str] = &[
    "multiple-refer",
    "norefersub",
    "recipient-list-invite",
    "recipient-list-message",
];
/// Event packages (the `Allow-Events` header).
pub const ALLOW_EVENTS: &str = "conference";
/// Moderation requests (lock, unlock, end, mute) in INFO or MESSAGE.
pub const CONTROL: &str = "application/vnd.cpm-focus.control+json";
/// The conference-info body type.
pub const CONFERENCE_INFO: &str = "application/conference-info+xml";

/// The media type of a Content-Type value, without parameters.
pub fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

/// A fresh random tag (RFC 3261 §19.3: at least 32 bits of randomness).
pub fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A fresh branch with the RFC 3261 magic cookie.
pub fn new_branch() -> String {
    format!("z9hG4bK{:016x}", rand::random::<u64>())
}
