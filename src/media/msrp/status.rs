//! MSRP response codes (RFC 4975 §10, RFC 7701 §9) and the comments the focus sends with
//! them. The comment is informational: peers act on the code alone.

/// The request was accepted (hop by hop for SEND).
pub const OK: u16 = 200;
/// Malformed request (see the comment for what).
pub const BAD_REQUEST: u16 = 400;
/// Not allowed by policy (e.g. a participant that may not send).
pub const FORBIDDEN: u16 = 403;
/// RFC 7701: the private-message recipient is not in the chat.
pub const NOT_FOUND: u16 = 404;
/// Local timeout waiting for a response (never sent on the wire).
pub const REQUEST_TIMEOUT: u16 = 408;
/// Stop sending this message (too large, or unwanted).
pub const STOP_SENDING: u16 = 413;
/// The Content-Type is not in the session's accept-types.
pub const UNSUPPORTED_MEDIA_TYPE: u16 = 415;
/// A parameter (e.g. Expires) is out of bounds.
pub const OUT_OF_BOUNDS: u16 = 423;
/// RFC 7701: the nickname is malformed or may not be used.
pub const NICKNAME_USAGE_FAILED: u16 = 424;
/// RFC 7701: the nickname is reserved or taken by another participant.
pub const NICKNAME_IN_USE: u16 = 425;
/// RFC 7701: the switch does not support private messages.
pub const PRIVATE_MESSAGES_NOT_SUPPORTED: u16 = 428;
/// The To-Path names no session of ours.
pub const NO_SUCH_SESSION: u16 = 481;
/// Unknown method.
pub const UNKNOWN_METHOD: u16 = 501;
/// The session is already bound to another connection.
pub const SESSION_ALREADY_BOUND: u16 = 506;

/// The comment the focus puts after a code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        OK => "OK",
        BAD_REQUEST => "Bad Request",
        FORBIDDEN => "Forbidden",
        NOT_FOUND => "Recipient Does Not Exist",
        REQUEST_TIMEOUT => "Request Timeout",
        STOP_SENDING => "Stop Sending Message",
        UNSUPPORTED_MEDIA_TYPE => "Unsupported Media Type",
        OUT_OF_BOUNDS => "Parameter Out Of Bounds",
        NICKNAME_USAGE_FAILED => "Nickname Usage Failed",
        NICKNAME_IN_USE => "Nickname Reserved Or Already In Use",
        PRIVATE_MESSAGES_NOT_SUPPORTED => "Private Messages Not Supported",
        NO_SUCH_SESSION => "Session Does Not Exist",
        UNKNOWN_METHOD => "Unknown Method",
        SESSION_ALREADY_BOUND => "Session Already Bound",
        c if (200..300).contains(&c) => "Success",
        c if (400..500).contains(&c) => "Request Failed",
        _ => "Error",
    }
}
