//! A URI list as the focus acts on it: the recipients, flattened, with what RFC 5364 says
//! about exposing each to the others.

/// `urn:ietf:params:xml:ns:resource-lists` (RFC 4826).
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:resource-lists";
/// `urn:ietf:params:xml:ns:copycontrol` (RFC 5364): `copyControl`, `anonymize` and `count`.
pub const COPY_CONTROL_NAMESPACE: &str = "urn:ietf:params:xml:ns:copycontrol";
/// The media type of the list part.
pub const MIME_TYPE: &str = "application/resource-lists+xml";
/// What an anonymized recipient shows as to the others (the RFC 3323 anonymous URI).
pub const ANONYMOUS_URI: &str = "sip:anonymous@anonymous.invalid";

/// How a recipient is addressed (RFC 5364), as in email: `to` and `cc` recipients are shown
/// to the others, `bcc` recipients are not. The order is by how much each hides, so
/// [`Ord::max`] picks the more private of two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum CopyControl {
    /// The default when the attribute is absent.
    #[default]
    To,
    Cc,
    Bcc,
}

impl CopyControl {
    pub fn as_str(self) -> &'static str {
        match self {
            CopyControl::To => "to",
            CopyControl::Cc => "cc",
            CopyControl::Bcc => "bcc",
        }
    }

    /// Parses the attribute value (ASCII case ignored).
    pub fn from_token(s: &str) -> Option<CopyControl> {
        [CopyControl::To, CopyControl::Cc, CopyControl::Bcc]
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

/// One recipient.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The `uri` attribute, whitespace-trimmed; any scheme (`sip:`, `tel:`, ...).
    pub uri: String,
    /// `<display-name>`, as written.
    pub display_name: Option<String>,
    pub copy_control: CopyControl,
    /// RFC 5364 `anonymize`: other recipients must not learn this URI.
    pub anonymize: bool,
    /// RFC 5364 `count` on an anonymous entry of a history document: how many anonymized
    /// recipients it stands for. `None` on ordinary entries.
    pub count: Option<u32>,
}

impl Entry {
    /// A `to` recipient with no display name.
    pub fn new(uri: impl Into<String>) -> Entry {
        Entry {
            uri: uri.into(),
            ..Entry::default()
        }
    }

    pub fn with_display_name(mut self, name: impl Into<String>) -> Entry {
        self.display_name = Some(name.into());
        self
    }

    pub fn with_copy_control(mut self, copy_control: CopyControl) -> Entry {
        self.copy_control = copy_control;
        self
    }

    pub fn anonymized(mut self) -> Entry {
        self.anonymize = true;
        self
    }
}

/// A reference the parser did not follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `<entry-ref ref="…"/>`: an entry in another resource-lists document (relative XCAP URI).
    EntryRef(String),
    /// `<external anchor="…"/>`: a whole list elsewhere; the anchor is optional in the schema.
    External(Option<String>),
}

/// A parsed list: its entries flattened in document order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceList {
    pub entries: Vec<Entry>,
    /// `<entry-ref>` and `<external>` elements, in document order; the caller decides whether
    /// a list it cannot fully resolve is acceptable.
    pub unresolved: Vec<Reference>,
}
