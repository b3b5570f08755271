//! SIP status codes (RFC 3261 §21 and the extensions the focus answers with) and Warning
//! codes (RFC 3261 §20.43): the one table that names each number and spells its phrase.

use std::fmt;

/// A SIP status code. Any number a peer sends can be held (`Status::new`); the focus answers
/// with the named constants, whose reason phrases come from the table below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Status(u16);

/// Defines the constants and the phrase table from one list, so a phrase is spelled once.
macro_rules! statuses {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $phrase:literal;)*) => {
        impl Status {
            $($(#[$doc])* pub const $name: Status = Status($code);)*
        }

        fn known_phrase(code: u16) -> Option<&'static str> {
            match code {
                $($code => Some($phrase),)*
                _ => None,
            }
        }
    };
}

statuses! {
    TRYING = 100, "Trying";
    RINGING = 180, "Ringing";
    CALL_IS_BEING_FORWARDED = 181, "Call Is Being Forwarded";
    QUEUED = 182, "Queued";
    SESSION_PROGRESS = 183, "Session Progress";
    OK = 200, "OK";
    /// RFC 3265 / RFC 6665 (SUBSCRIBE, REFER) and the pager's first answer.
    ACCEPTED = 202, "Accepted";
    /// RFC 5839.
    NO_NOTIFICATION = 204, "No Notification";
    MULTIPLE_CHOICES = 300, "Multiple Choices";
    MOVED_PERMANENTLY = 301, "Moved Permanently";
    MOVED_TEMPORARILY = 302, "Moved Temporarily";
    BAD_REQUEST = 400, "Bad Request";
    UNAUTHORIZED = 401, "Unauthorized";
    PAYMENT_REQUIRED = 402, "Payment Required";
    FORBIDDEN = 403, "Forbidden";
    NOT_FOUND = 404, "Not Found";
    METHOD_NOT_ALLOWED = 405, "Method Not Allowed";
    NOT_ACCEPTABLE = 406, "Not Acceptable";
    REQUEST_TIMEOUT = 408, "Request Timeout";
    GONE = 410, "Gone";
    REQUEST_ENTITY_TOO_LARGE = 413, "Request Entity Too Large";
    REQUEST_URI_TOO_LONG = 414, "Request-URI Too Long";
    UNSUPPORTED_MEDIA_TYPE = 415, "Unsupported Media Type";
    UNSUPPORTED_URI_SCHEME = 416, "Unsupported URI Scheme";
    BAD_EXTENSION = 420, "Bad Extension";
    EXTENSION_REQUIRED = 421, "Extension Required";
    /// RFC 4028.
    SESSION_INTERVAL_TOO_SMALL = 422, "Session Interval Too Small";
    INTERVAL_TOO_BRIEF = 423, "Interval Too Brief";
    /// RFC 4474.
    USE_IDENTITY_HEADER = 428, "Use Identity Header";
    TEMPORARILY_UNAVAILABLE = 480, "Temporarily Unavailable";
    CALL_TRANSACTION_DOES_NOT_EXIST = 481, "Call/Transaction Does Not Exist";
    LOOP_DETECTED = 482, "Loop Detected";
    TOO_MANY_HOPS = 483, "Too Many Hops";
    ADDRESS_INCOMPLETE = 484, "Address Incomplete";
    AMBIGUOUS = 485, "Ambiguous";
    BUSY_HERE = 486, "Busy Here";
    REQUEST_TERMINATED = 487, "Request Terminated";
    NOT_ACCEPTABLE_HERE = 488, "Not Acceptable Here";
    /// RFC 6665.
    BAD_EVENT = 489, "Bad Event";
    REQUEST_PENDING = 491, "Request Pending";
    UNDECIPHERABLE = 493, "Undecipherable";
    SERVER_INTERNAL_ERROR = 500, "Server Internal Error";
    NOT_IMPLEMENTED = 501, "Not Implemented";
    BAD_GATEWAY = 502, "Bad Gateway";
    /// Overload: answered with Retry-After, decided where work is admitted.
    SERVICE_UNAVAILABLE = 503, "Service Unavailable";
    SERVER_TIME_OUT = 504, "Server Time-out";
    VERSION_NOT_SUPPORTED = 505, "Version Not Supported";
    MESSAGE_TOO_LARGE = 513, "Message Too Large";
    BUSY_EVERYWHERE = 600, "Busy Everywhere";
    DECLINE = 603, "Decline";
    DOES_NOT_EXIST_ANYWHERE = 604, "Does Not Exist Anywhere";
    /// RFC 3261 §21.6.4 (the global "Not Acceptable").
    NOT_ACCEPTABLE_ANYWHERE = 606, "Not Acceptable";
}

impl Status {
    /// Any code, as read from the wire or a peer's answer.
    pub const fn new(code: u16) -> Status {
        Status(code)
    }

    /// The number.
    pub const fn code(self) -> u16 {
        self.0
    }

    /// The standard reason phrase (the class's generic phrase for a code not in the table).
    pub fn reason(self) -> &'static str {
        known_phrase(self.0).unwrap_or(match self.0 / 100 {
            1 => "Session Progress",
            2 => "OK",
            3 => "Redirection",
            4 => "Request Failure",
            5 => "Server Error",
            _ => "Global Failure",
        })
    }

    /// The bounded metric label for this status: its class (`1xx` ... `6xx`).
    pub fn class_label(self) -> &'static str {
        match self.0 / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            5 => "5xx",
            _ => "6xx",
        }
    }

    /// 1xx.
    pub const fn is_provisional(self) -> bool {
        self.0 >= 100 && self.0 < 200
    }

    /// 2xx.
    pub const fn is_success(self) -> bool {
        self.0 >= 200 && self.0 < 300
    }

    /// 200 to 699: ends a transaction.
    pub const fn is_final(self) -> bool {
        self.0 >= 200 && self.0 < 700
    }

    /// 300 to 699: a failure (or redirection) the request was not served with.
    pub const fn is_failure(self) -> bool {
        self.0 >= 300 && self.0 < 700
    }

    /// Within 100..=699, the range RFC 3261 §7.2 allows.
    pub const fn is_valid(self) -> bool {
        self.0 >= 100 && self.0 < 700
    }
}

impl From<u16> for Status {
    fn from(code: u16) -> Status {
        Status(code)
    }
}

impl From<Status> for u16 {
    fn from(s: Status) -> u16 {
        s.0
    }
}

impl PartialEq<u16> for Status {
    fn eq(&self, other: &u16) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Status> for u16 {
    fn eq(&self, other: &Status) -> bool {
        *self == other.0
    }
}

impl PartialOrd<u16> for Status {
    fn partial_cmp(&self, other: &u16) -> Option<std::cmp::Ordering> {
        self.0.partial_cmp(other)
    }
}

impl PartialOrd<Status> for u16 {
    fn partial_cmp(&self, other: &Status) -> Option<std::cmp::Ordering> {
        self.partial_cmp(&other.0)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A Warning code (RFC 3261 §20.43; RFC 5630 §3.3 for the SIPS ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WarnCode(u16);

impl WarnCode {
    /// "Media type not available": none of the offered media is served.
    pub const MEDIA_TYPE_NOT_AVAILABLE: WarnCode = WarnCode(304);
    /// RFC 5630: a `sips:` Request-URI came over a transport that is not TLS.
    pub const SIPS_NOT_ALLOWED: WarnCode = WarnCode(380);
    /// "Miscellaneous warning": the text says what.
    pub const MISCELLANEOUS: WarnCode = WarnCode(399);

    /// The number.
    pub const fn code(self) -> u16 {
        self.0
    }
}

impl fmt::Display for WarnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The standard reason phrase for a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    Status(code).reason()
}

/// The bounded metric label for a status code: its class (`1xx` ... `6xx`).
pub fn class_label(code: u16) -> &'static str {
    Status(code).class_label()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_carry_their_phrases() {
        assert_eq!(Status::SERVICE_UNAVAILABLE.code(), 503);
        assert_eq!(Status::SERVICE_UNAVAILABLE.reason(), "Service Unavailable");
        assert_eq!(
            Status::CALL_TRANSACTION_DOES_NOT_EXIST.reason(),
            "Call/Transaction Does Not Exist"
        );
        assert_eq!(Status::NOT_ACCEPTABLE_ANYWHERE.reason(), "Not Acceptable");
        assert_eq!(Status::new(499).reason(), "Request Failure");
        assert_eq!(Status::new(699).class_label(), "6xx");
    }

    #[test]
    fn compares_with_numbers_and_classifies() {
        assert_eq!(Status::OK, 200);
        assert!(Status::new(299) < 300 && 299 > Status::TRYING);
        assert!(Status::ACCEPTED.is_success() && Status::ACCEPTED.is_final());
        assert!(Status::RINGING.is_provisional() && !Status::RINGING.is_final());
        assert!(Status::BUSY_HERE.is_failure() && !Status::new(700).is_valid());
        assert_eq!(Status::FORBIDDEN.to_string(), "403");
    }
}
