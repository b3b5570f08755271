//! The `message/cpim` model (RFC 3862): message header fields, the encapsulated MIME header
//! fields, and the content. The switch reads the sender and recipients from it and writes a
//! new one around every message it fans out (RFC 7701 §7, OMA CPM).

use crate::media::msrp::Header;
use bytes::Bytes;
use std::time::SystemTime;

/// The IMDN namespace (RFC 5438 §7.1.1), declared as `NS: imdn <urn:ietf:params:imdn>`.
pub const IMDN_NS: &str = "urn:ietf:params:imdn";

/// `[Formal-name] "<" URI ">"` of From, To and cc.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Addr {
    /// The display name, unquoted.
    pub display: Option<String>,
    /// The URI between the angle brackets (`sip:`, `tel:`, `im:`...), as written.
    pub uri: String,
}

impl Addr {
    pub fn new(uri: impl Into<String>) -> Addr {
        Addr {
            display: None,
            uri: uri.into(),
        }
    }

    pub fn with_display(uri: impl Into<String>, display: impl Into<String>) -> Addr {
        Addr {
            display: Some(display.into()),
            uri: uri.into(),
        }
    }
}

/// A `Subject`, optionally in a language (`Subject:;lang=fr ...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subject {
    pub lang: Option<String>,
    pub text: String,
}

/// An `NS` declaration: `prefix` names header fields of namespace `uri` (no prefix: the
/// default namespace).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace {
    pub prefix: Option<String>,
    pub uri: String,
}

/// A message header field the model has no field for: prefixed ones (`imdn.Message-ID`) and
/// unknown ones, kept in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// The namespace prefix before the `.`.
    pub prefix: Option<String>,
    pub name: String,
    /// `;name=value` parameters (unquoted values).
    pub params: Vec<(String, String)>,
    /// As written after the single SP that follows the colon.
    pub value: String,
}

impl Field {
    pub fn new(prefix: Option<&str>, name: &str, value: impl Into<String>) -> Field {
        Field {
            prefix: prefix.map(str::to_owned),
            name: name.to_owned(),
            params: Vec::new(),
            value: value.into(),
        }
    }
}

/// A `message/cpim` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpim {
    pub from: Option<Addr>,
    pub to: Vec<Addr>,
    pub cc: Vec<Addr>,
    /// RFC 3339 text as written; see [`Cpim::date_time`].
    pub date_time: Option<String>,
    pub subject: Vec<Subject>,
    pub ns: Vec<Namespace>,
    /// Header names the recipient must understand.
    pub require: Vec<String>,
    /// Other message header fields, in order.
    pub fields: Vec<Field>,
    /// The encapsulated object's Content-Type.
    pub content_type: Option<String>,
    /// Other MIME header fields of the encapsulated object, in order.
    pub content_headers: Vec<Header>,
    /// The encapsulated content: a slice of the parsed bytes.
    pub body: Bytes,
}

impl Cpim {
    /// A message from `from` to `to`, stamped `now` (UTC, whole seconds). Sans-IO: the
    /// caller reads the clock.
    pub fn new(
        from: Addr,
        to: Addr,
        content_type: impl Into<String>,
        body: Bytes,
        now: SystemTime,
    ) -> Cpim {
        Cpim {
            from: Some(from),
            to: vec![to],
            cc: Vec::new(),
            date_time: Some(crate::conference_info::to_rfc3339(now)),
            subject: Vec::new(),
            ns: Vec::new(),
            require: Vec::new(),
            fields: Vec::new(),
            content_type: Some(content_type.into()),
            content_headers: Vec::new(),
            body,
        }
    }

    /// Adds IMDN (RFC 5438) `Message-ID` and, when given, `Disposition-Notification`
    /// (e.g. `positive-delivery, display`), declaring the namespace if needed and replacing
    /// earlier values.
    pub fn with_imdn(mut self, message_id: &str, disposition: Option<&str>) -> Cpim {
        let prefix = match self
            .ns
            .iter()
            .find(|n| n.uri == IMDN_NS && n.prefix.is_some())
        {
            Some(n) => n.prefix.clone().unwrap_or_default(),
            None => {
                let mut prefix = "imdn".to_owned();
                let mut i = 1;
                while self.ns.iter().any(|n| n.prefix.as_deref() == Some(&prefix)) {
                    i += 1;
                    prefix = format!("imdn{i}");
                }
                self.ns.push(Namespace {
                    prefix: Some(prefix.clone()),
                    uri: IMDN_NS.to_owned(),
                });
                prefix
            }
        };
        let ns = self.ns.clone();
        self.fields.retain(|f| {
            !(in_namespace(&ns, f, IMDN_NS)
                && (f.name.eq_ignore_ascii_case("Message-ID")
                    || f.name.eq_ignore_ascii_case("Disposition-Notification")))
        });
        self.fields
            .push(Field::new(Some(&prefix), "Message-ID", message_id));
        if let Some(d) = disposition {
            self.fields
                .push(Field::new(Some(&prefix), "Disposition-Notification", d));
        }
        self
    }

    /// The value of header `name` in namespace `ns_uri`, whatever prefix the sender chose.
    pub fn field(&self, ns_uri: &str, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name) && in_namespace(&self.ns, f, ns_uri))
            .map(|f| f.value.as_str())
    }

    /// `imdn.Message-ID`.
    pub fn imdn_message_id(&self) -> Option<&str> {
        self.field(IMDN_NS, "Message-ID")
    }

    /// `imdn.Disposition-Notification`.
    pub fn disposition_notification(&self) -> Option<&str> {
        self.field(IMDN_NS, "Disposition-Notification")
    }

    /// DateTime as an instant, when it is valid RFC 3339.
    pub fn date_time(&self) -> Option<SystemTime> {
        crate::conference_info::parse_datetime(self.date_time.as_deref()?)
    }

    /// The recipients of a private message (RFC 7701 §7.2, OMA CPM: one or more): every
    /// `To`, unless one names the chat itself (`conference`, compared as an address of
    /// record) or is the anonymous URI clients put when they address everyone; then (and
    /// without a `To`) none: the message is for the whole group. Duplicates are dropped.
    pub fn private_recipients(&self, conference: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for to in &self.to {
            let uri = to.uri.trim();
            if same_aor(uri, conference) || same_aor(uri, ANONYMOUS) {
                return Vec::new();
            }
            if !out.iter().any(|u| same_aor(u, uri)) {
                out.push(uri);
            }
        }
        out
    }
}

/// RFC 3323 anonymous URI.
const ANONYMOUS: &str = "sip:anonymous@anonymous.invalid";

fn same_aor(a: &str, b: &str) -> bool {
    use crate::sip::Uri;
    match (Uri::parse(a), Uri::parse(b)) {
        (Ok(x), Ok(y)) => x.aor() == y.aor(),
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// Whether `f` belongs to namespace `uri`: its prefix (or, without one, the default) is
/// declared for it.
fn in_namespace(ns: &[Namespace], f: &Field, uri: &str) -> bool {
    ns.iter()
        .rev()
        .find(|n| n.prefix == f.prefix)
        .is_some_and(|n| n.uri == uri)
}
