//! Header names (with their compact forms) and the parsed header collection.
//!
//! Headers are kept as ranges into one normalized text buffer: a message costs one string
//! and one vector, and values come out as `&str` without copies.

use std::ops::Range;

macro_rules! header_names {
    ($( $variant:ident => $long:literal $(, $compact:literal)? ;)*) => {
        /// Names of the headers the focus reads or writes. Everything else is `Other` and keeps
        /// its text in the message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $( $variant, )*
            /// An extension or unknown header: compare by text.
            Other,
        }

        impl HeaderName {
            /// Maps a header name as received (any case, long or compact form).
            pub fn from_wire(name: &str) -> HeaderName {
                $(
                    if name.eq_ignore_ascii_case($long) {
                        return HeaderName::$variant;
                    }
                    $( if name.len() == 1 && name.eq_ignore_ascii_case($compact) {
                        return HeaderName::$variant;
                    } )?
                )*
                HeaderName::Other
            }

            /// The canonical long form, as the focus writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( HeaderName::$variant => $long, )*
                    HeaderName::Other => "",
                }
            }
        }
    };
}

header_names! {
    Via => "Via", "v";
    From => "From", "f";
    To => "To", "t";
    CallId => "Call-ID", "i";
    CSeq => "CSeq";
    Contact => "Contact", "m";
    MaxForwards => "Max-Forwards";
    ContentLength => "Content-Length", "l";
    ContentType => "Content-Type", "c";
    ContentEncoding => "Content-Encoding", "e";
    ContentDisposition => "Content-Disposition";
    Route => "Route";
    RecordRoute => "Record-Route";
    Require => "Require";
    ProxyRequire => "Proxy-Require";
    Supported => "Supported", "k";
    Unsupported => "Unsupported";
    Allow => "Allow";
    Accept => "Accept";
    AcceptEncoding => "Accept-Encoding";
    AllowEvents => "Allow-Events", "u";
    Event => "Event", "o";
    Expires => "Expires";
    MinExpires => "Min-Expires";
    SubscriptionState => "Subscription-State";
    Subject => "Subject", "s";
    ReferTo => "Refer-To", "r";
    ReferredBy => "Referred-By", "b";
    SessionExpires => "Session-Expires", "x";
    MinSe => "Min-SE";
    PAssertedIdentity => "P-Asserted-Identity";
    PPreferredIdentity => "P-Preferred-Identity";
    Privacy => "Privacy";
    RetryAfter => "Retry-After";
    Warning => "Warning";
    UserAgent => "User-Agent";
    Server => "Server";
    Date => "Date";
    Timestamp => "Timestamp";
    RSeq => "RSeq";
    RAck => "RAck";
    AcceptContact => "Accept-Contact", "a";
    RejectContact => "Reject-Contact", "j";
    RequestDisposition => "Request-Disposition", "d";
    Identity => "Identity", "y";
    ContributionId => "Contribution-ID";
    ConversationId => "Conversation-ID";
    InReplyToContributionId => "InReplyTo-Contribution-ID";
    ReferSub => "Refer-Sub";
    Reason => "Reason";
    Authorization => "Authorization";
    WwwAuthenticate => "WWW-Authenticate";
}

/// One header line after normalization.
#[derive(Debug, Clone)]
struct Entry {
    name: HeaderName,
    /// Name text as received (needed for `Other`).
    name_range: Range<u32>,
    value: Range<u32>,
}

/// The headers of one message, in wire order.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    text: String,
    entries: Vec<Entry>,
}

impl Headers {
    /// Starts an empty collection with room for a typical message.
    pub(crate) fn with_capacity(text_bytes: usize, headers: usize) -> Headers {
        Headers {
            text: String::with_capacity(text_bytes),
            entries: Vec::with_capacity(headers),
        }
    }

    /// Appends a header (name as received, value already unfolded and trimmed).
    pub(crate) fn push(&mut self, name: &str, value: &str) {
        let start = self.text.len() as u32;
        self.text.push_str(name);
        let mid = self.text.len() as u32;
        self.text.push_str(value);
        let end = self.text.len() as u32;
        self.entries.push(Entry {
            name: HeaderName::from_wire(name),
            name_range: start..mid,
            value: mid..end,
        });
    }

    fn slice(&self, r: &Range<u32>) -> &str {
        self.text
            .get(r.start as usize..r.end as usize)
            .unwrap_or("")
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first line's value of a known header.
    pub fn get(&self, name: HeaderName) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| self.slice(&e.value))
    }

    /// Every line's value of a known header, in order.
    pub fn get_all(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.entries
            .iter()
            .filter(move |e| e.name == name)
            .map(|e| self.slice(&e.value))
    }

    /// How many lines carry this header.
    pub fn count(&self, name: HeaderName) -> usize {
        self.entries.iter().filter(|e| e.name == name).count()
    }

    /// The first value of a header by its text name (extension headers).
    pub fn get_by_name(&self, name: &str) -> Option<&str> {
        let known = HeaderName::from_wire(name);
        self.entries
            .iter()
            .find(|e| {
                if known == HeaderName::Other {
                    e.name == HeaderName::Other
                        && self.slice(&e.name_range).eq_ignore_ascii_case(name)
                } else {
                    e.name == known
                }
            })
            .map(|e| self.slice(&e.value))
    }

    /// Every comma-separated element of a header across all its lines (RFC 3261 §7.3.1), with
    /// quoted strings and `<...>` kept whole.
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.get_all(name).flat_map(split_commas)
    }

    /// True when a comma-list header (Require, Supported, ...) contains `token`,
    /// compared case-insensitively.
    pub fn has_token(&self, name: HeaderName, token: &str) -> bool {
        self.values(name).any(|v| v.eq_ignore_ascii_case(token))
    }

    /// Iterates `(name, name as received, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (HeaderName, &str, &str)> + '_ {
        self.entries
            .iter()
            .map(|e| (e.name, self.slice(&e.name_range), self.slice(&e.value)))
    }
}

/// Splits a header value at top-level commas, trimming each element and skipping empty ones.
pub fn split_commas(value: &str) -> impl Iterator<Item = &str> {
    let bytes = value.as_bytes();
    let mut start = 0;
    let mut pos = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        while !done {
            let mut in_quotes = false;
            let mut in_angle = false;
            let mut escaped = false;
            while pos < bytes.len() {
                let b = bytes[pos];
                if in_quotes {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_quotes = false;
                    }
                } else if b == b'"' {
                    in_quotes = true;
                } else if b == b'<' {
                    in_angle = true;
                } else if b == b'>' {
                    in_angle = false;
                } else if b == b',' && !in_angle {
                    break;
                }
                pos += 1;
            }
            let item = value.get(start..pos).unwrap_or("").trim();
            if pos >= bytes.len() {
                done = true;
            } else {
                pos += 1;
                start = pos;
            }
            if !item.is_empty() {
                return Some(item);
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_long_names_map_to_one_variant() {
        for (wire, name) in [
            ("v", HeaderName::Via),
            ("VIA", HeaderName::Via),
            ("i", HeaderName::CallId),
            ("call-id", HeaderName::CallId),
            ("l", HeaderName::ContentLength),
            ("o", HeaderName::Event),
            ("k", HeaderName::Supported),
            ("CSeq", HeaderName::CSeq),
            ("X-Foo", HeaderName::Other),
        ] {
            assert_eq!(HeaderName::from_wire(wire), name, "{wire}");
        }
    }

    #[test]
    fn comma_split_respects_quotes_and_brackets() {
        let v: Vec<_> = split_commas(r#""Doe, J" <sip:a@b;x=1,2>;p=1 , <sip:c@d>,, tok"#).collect();
        assert_eq!(
            v,
            vec![r#""Doe, J" <sip:a@b;x=1,2>;p=1"#, "<sip:c@d>", "tok"]
        );
        assert_eq!(split_commas(" ,, ").count(), 0);
    }

    #[test]
    fn lookup_by_name_and_tokens() {
        let mut h = Headers::default();
        h.push("Require", "timer, Foo");
        h.push("X-Extra", "1");
        h.push("require", "bar");
        assert!(h.has_token(HeaderName::Require, "foo"));
        assert!(h.has_token(HeaderName::Require, "BAR"));
        assert_eq!(h.get_by_name("x-extra"), Some("1"));
        assert_eq!(h.count(HeaderName::Require), 2);
    }
}
