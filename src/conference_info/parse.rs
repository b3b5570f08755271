//! Bounded, namespace-aware parser for `application/conference-info+xml`.
//!
//! Used by the test user agent to check NOTIFY bodies and by property tests, so it is strict
//! where our renderer could be wrong (element names in our namespace, required parts, tokens)
//! and lenient where RFC 4575 allows extension: elements and attributes in other namespaces are
//! skipped. Input comes from the network, so it never expands entities other than the five
//! predefined ones and character references, rejects any DTD, and enforces [`Limits`] before
//! doing work proportional to the input.

use thiserror::Error;

use super::datetime::parse_datetime;
use super::model::{
    AvailableMedia, ConferenceDescription, ConferenceInfo, ConferenceState, DisconnectionMethod,
    ElemState, Endpoint, EndpointStatus, Execution, HostInfo, JoiningMethod, Media, MediaStatus,
    SipDialogInfo, UriEntry, User, Users, FOCUS_NAMESPACE, NAMESPACE,
};
use crate::xml::{is_xml_space, quote, xml_trim, Fault, Node, Ns, Reader, Tag};

/// Resource bounds for one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted body in bytes.
    pub max_bytes: usize,
    /// Deepest accepted element nesting (the root is depth 1).
    pub max_depth: usize,
    /// Most elements accepted, counting skipped foreign ones.
    pub max_elements: usize,
}

impl Default for Limits {
    /// 2 MiB, depth 32, 100 000 elements.
    ///
    /// A 1000-user roster with one endpoint each (media, call-info, roles) renders to about
    /// 650 KiB and 23 000 elements, and the schema nests 6 deep (conference-info/users/user/endpoint/
    /// joining-info/when), so the defaults leave room for larger rosters and extensions while
    /// capping what a hostile peer can make us allocate.
    fn default() -> Self {
        Limits {
            max_bytes: 2 * 1024 * 1024,
            max_depth: 32,
            max_elements: 100_000,
        }
    }
}

/// Why a document was rejected. Each variant names the fault; values quoted from the input are
/// truncated so an error never carries the whole body.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("document is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("elements nest deeper than the limit of {limit}")]
    TooDeep { limit: usize },
    #[error("document has more than the limit of {limit} elements")]
    TooManyElements { limit: usize },
    #[error("document is not valid UTF-8")]
    NotUtf8,
    #[error("unsupported encoding {0:?} (only UTF-8)")]
    UnsupportedEncoding(String),
    #[error("DOCTYPE/DTD is not allowed")]
    Dtd,
    #[error("unknown entity &{0}; (only the five predefined entities are allowed)")]
    UnknownEntity(String),
    #[error("character U+{0:04X} is not allowed in XML 1.0")]
    InvalidChar(u32),
    #[error("undeclared namespace prefix {0:?}")]
    UnboundPrefix(String),
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("document has no root element")]
    NoRoot,
    #[error("content after the root element")]
    TrailingContent,
    #[error("document ends inside an element")]
    UnexpectedEof,
    #[error("root element is <{0}>, expected <conference-info>")]
    WrongRoot(String),
    #[error("root element namespace is {found:?}, expected {NAMESPACE}")]
    WrongNamespace { found: Option<String> },
    #[error("<{parent}> has unexpected child <{child}>")]
    UnexpectedElement { parent: &'static str, child: String },
    #[error("<{element}> appears more than once in <{parent}>")]
    Duplicate {
        parent: &'static str,
        element: &'static str,
    },
    #[error("<{element}> lacks required <{child}>")]
    MissingElement {
        element: &'static str,
        child: &'static str,
    },
    #[error("<{element}> lacks required attribute {attribute}")]
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    #[error("<{element}> has invalid value {value:?}")]
    InvalidValue {
        element: &'static str,
        value: String,
    },
}

/// Parses one conference-info document.
pub fn parse(input: &[u8], limits: &Limits) -> std::result::Result<ConferenceInfo, ParseError> {
    if input.len() > limits.max_bytes {
        return Err(ParseError::TooLarge {
            size: input.len(),
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(input).map_err(|_| ParseError::NotUtf8)?;
    let mut p = Parser {
        xml: Reader::new(text, NAMESPACE, limits.max_depth, limits.max_elements),
    };
    p.document()
}

type Result<T> = std::result::Result<T, ParseError>;

impl From<Fault> for ParseError {
    fn from(f: Fault) -> ParseError {
        match f {
            Fault::TooDeep { limit } => ParseError::TooDeep { limit },
            Fault::TooManyElements { limit } => ParseError::TooManyElements { limit },
            Fault::UnsupportedEncoding(e) => ParseError::UnsupportedEncoding(e),
            Fault::Dtd => ParseError::Dtd,
            Fault::UnknownEntity(e) => ParseError::UnknownEntity(e),
            Fault::InvalidChar(c) => ParseError::InvalidChar(c),
            Fault::IllegalCharRef { message, .. } | Fault::Malformed(message) => {
                ParseError::Malformed(message)
            }
            Fault::UnboundPrefix(p) => ParseError::UnboundPrefix(p),
            Fault::UnexpectedEof => ParseError::UnexpectedEof,
            Fault::UnexpectedElement { parent, child } => {
                ParseError::UnexpectedElement { parent, child }
            }
        }
    }
}

struct Parser<'i> {
    xml: Reader<'i>,
}

/// Stores `value` in `slot`, refusing a second occurrence.
fn once<T>(
    slot: &mut Option<T>,
    value: T,
    parent: &'static str,
    element: &'static str,
) -> Result<()> {
    if slot.is_some() {
        return Err(ParseError::Duplicate { parent, element });
    }
    *slot = Some(value);
    Ok(())
}

fn required<T>(value: Option<T>, element: &'static str, child: &'static str) -> Result<T> {
    value.ok_or(ParseError::MissingElement { element, child })
}

fn unexpected(parent: &'static str, tag: &Tag<'_>) -> ParseError {
    crate::xml::unexpected(parent, tag).into()
}

impl<'i> Parser<'i> {
    /// Reads the unprefixed attributes `names` of `tag`, ignoring the rest: namespace
    /// declarations, attributes in other namespaces, and unknown unprefixed ones.
    fn attrs<const N: usize>(
        &self,
        tag: &Tag<'_>,
        names: [&'static str; N],
    ) -> Result<[Option<String>; N]> {
        let mut found: [Option<String>; N] = std::array::from_fn(|_| None);
        self.xml.attributes(tag, |ns, local, value| {
            if ns.is_some() {
                return Ok(true);
            }
            if let Some(i) = names.iter().position(|n| *n == local) {
                found[i] = Some(value.read()?);
            }
            Ok::<_, ParseError>(true)
        })?;
        Ok(found)
    }

    /// Reads the attribute `name` of `tag` in the focus's own namespace
    /// ([`FOCUS_NAMESPACE`]), ignoring every other one.
    fn focus_attr(&self, tag: &Tag<'_>, name: &str) -> Result<Option<String>> {
        let mut found = None;
        self.xml.attributes(tag, |ns, local, value| {
            if ns != Some(FOCUS_NAMESPACE) || local != name {
                return Ok(true);
            }
            found = Some(value.read()?);
            Ok::<_, ParseError>(false)
        })?;
        Ok(found)
    }

    /// Visits the child elements of the element just opened: ours go to `visit`, foreign ones
    /// are skipped, text between them is ignored.
    fn children(&mut self, mut visit: impl FnMut(&mut Self, Tag<'i>) -> Result<()>) -> Result<()> {
        loop {
            match self.xml.node()? {
                Node::End => return Ok(()),
                Node::Eof => return Err(ParseError::UnexpectedEof),
                Node::Text(_) => {}
                Node::Start(tag) => match tag.ns {
                    Ns::Ours => visit(self, tag)?,
                    Ns::Foreign(_) => self.xml.skip()?,
                },
            }
        }
    }

    fn skip(&mut self) -> Result<()> {
        Ok(self.xml.skip()?)
    }

    fn text(&mut self, element: &'static str) -> Result<String> {
        Ok(self.xml.text(element)?)
    }

    fn value<T>(
        &mut self,
        element: &'static str,
        convert: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T> {
        let text = self.text(element)?;
        convert(xml_trim(&text)).ok_or_else(|| ParseError::InvalidValue {
            element,
            value: quote(&text),
        })
    }

    fn u32_value(&mut self, element: &'static str) -> Result<u32> {
        self.value(element, |s| s.parse().ok())
    }

    fn bool_value(&mut self, element: &'static str) -> Result<bool> {
        self.value(element, |s| match s {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        })
    }

    fn list_value(&mut self, element: &'static str) -> Result<Vec<String>> {
        let text = self.text(element)?;
        Ok(text
            .split([' ', '\t', '\r', '\n'])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }

    fn document(&mut self) -> Result<ConferenceInfo> {
        let root = loop {
            match self.xml.node()? {
                Node::Start(tag) => break tag,
                Node::Text(t) if is_xml_space(&t) => {}
                Node::Text(_) => {
                    return Err(ParseError::Malformed("text before the root element".into()))
                }
                Node::End => {
                    return Err(ParseError::Malformed(
                        "end tag before the root element".into(),
                    ))
                }
                Node::Eof => return Err(ParseError::NoRoot),
            }
        };
        match &root.ns {
            Ns::Ours => {}
            Ns::Foreign(found) => {
                return Err(ParseError::WrongNamespace {
                    found: found.clone(),
                })
            }
        }
        if root.local() != "conference-info" {
            return Err(ParseError::WrongRoot(quote(root.local())));
        }
        const ROOT: &str = "conference-info";
        let [entity, state, version] = self.attrs(&root, ["entity", "state", "version"])?;
        let entity = entity.ok_or(ParseError::MissingAttribute {
            element: ROOT,
            attribute: "entity",
        })?;
        let state = state_attr(ROOT, state)?;
        let version = version.ok_or(ParseError::MissingAttribute {
            element: ROOT,
            attribute: "version",
        })?;
        let version = xml_trim(&version)
            .parse()
            .map_err(|_| ParseError::InvalidValue {
                element: ROOT,
                value: quote(&version),
            })?;
        let mut doc = ConferenceInfo {
            entity,
            state,
            version,
            description: None,
            host_info: None,
            conference_state: None,
            users: None,
        };
        self.children(|p, tag| match tag.local() {
            "conference-description" => {
                let v = p.description()?;
                once(&mut doc.description, v, ROOT, "conference-description")
            }
            "host-info" => {
                let v = p.host_info()?;
                once(&mut doc.host_info, v, ROOT, "host-info")
            }
            "conference-state" => {
                let v = p.conference_state()?;
                once(&mut doc.conference_state, v, ROOT, "conference-state")
            }
            "users" => {
                let v = p.users(&tag)?;
                once(&mut doc.users, v, ROOT, "users")
            }
            // Valid RFC 4575 content this focus does not model.
            "sidebars-by-ref" | "sidebars-by-val" => p.skip(),
            _ => Err(unexpected(ROOT, &tag)),
        })?;
        loop {
            match self.xml.node()? {
                Node::Eof => return Ok(doc),
                Node::Text(t) if is_xml_space(&t) => {}
                _ => return Err(ParseError::TrailingContent),
            }
        }
    }

    fn description(&mut self) -> Result<ConferenceDescription> {
        const EL: &str = "conference-description";
        let mut d = ConferenceDescription::default();
        let (mut keywords, mut conf_uris, mut service_uris, mut media) = (None, None, None, None);
        self.children(|p, tag| match tag.local() {
            "display-text" => {
                let v = p.text("display-text")?;
                once(&mut d.display_text, v, EL, "display-text")
            }
            "subject" => {
                let v = p.text("subject")?;
                once(&mut d.subject, v, EL, "subject")
            }
            "free-text" => {
                let v = p.text("free-text")?;
                once(&mut d.free_text, v, EL, "free-text")
            }
            "keywords" => {
                let v = p.list_value("keywords")?;
                once(&mut keywords, v, EL, "keywords")
            }
            "conf-uris" => {
                let v = p.uris("conf-uris")?;
                once(&mut conf_uris, v, EL, "conf-uris")
            }
            "service-uris" => {
                let v = p.uris("service-uris")?;
                once(&mut service_uris, v, EL, "service-uris")
            }
            "maximum-user-count" => {
                let v = p.u32_value("maximum-user-count")?;
                once(&mut d.maximum_user_count, v, EL, "maximum-user-count")
            }
            "available-media" => {
                let v = p.available_media()?;
                once(&mut media, v, EL, "available-media")
            }
            _ => Err(unexpected(EL, &tag)),
        })?;
        d.keywords = keywords.unwrap_or_default();
        d.conf_uris = conf_uris.unwrap_or_default();
        d.service_uris = service_uris.unwrap_or_default();
        d.available_media = media.unwrap_or_default();
        Ok(d)
    }

    /// A `uris-type` list (`conf-uris`, `service-uris`, `uris`, `associated-aors`).
    fn uris(&mut self, element: &'static str) -> Result<Vec<UriEntry>> {
        let mut entries = Vec::new();
        self.children(|p, tag| match tag.local() {
            "entry" => {
                entries.push(p.uri_entry()?);
                Ok(())
            }
            _ => Err(unexpected(element, &tag)),
        })?;
        Ok(entries)
    }

    fn uri_entry(&mut self) -> Result<UriEntry> {
        const EL: &str = "entry";
        let (mut uri, mut display_text, mut purpose) = (None, None, None);
        self.children(|p, tag| match tag.local() {
            "uri" => {
                let v = p.text("uri")?;
                once(&mut uri, v, EL, "uri")
            }
            "display-text" => {
                let v = p.text("display-text")?;
                once(&mut display_text, v, EL, "display-text")
            }
            "purpose" => {
                let v = p.text("purpose")?;
                once(&mut purpose, v, EL, "purpose")
            }
            // `modified` (execution-type) is valid but not modelled.
            "modified" => p.skip(),
            _ => Err(unexpected(EL, &tag)),
        })?;
        Ok(UriEntry {
            uri: required(uri, EL, "uri")?,
            display_text,
            purpose,
        })
    }

    fn available_media(&mut self) -> Result<Vec<AvailableMedia>> {
        let mut entries = Vec::new();
        self.children(|p, tag| match tag.local() {
            "entry" => {
                entries.push(p.available_media_entry(&tag)?);
                Ok(())
            }
            _ => Err(unexpected("available-media", &tag)),
        })?;
        Ok(entries)
    }

    fn available_media_entry(&mut self, tag: &Tag<'_>) -> Result<AvailableMedia> {
        const EL: &str = "entry";
        let [label] = self.attrs(tag, ["label"])?;
        let label = label.ok_or(ParseError::MissingAttribute {
            element: EL,
            attribute: "label",
        })?;
        let (mut display_text, mut media_type, mut status) = (None, None, None);
        self.children(|p, tag| match tag.local() {
            "display-text" => {
                let v = p.text("display-text")?;
                once(&mut display_text, v, EL, "display-text")
            }
            "type" => {
                let v = p.text("type")?;
                once(&mut media_type, v, EL, "type")
            }
            "status" => {
                let v = p.value("status", MediaStatus::from_token)?;
                once(&mut status, v, EL, "status")
            }
            _ => Err(unexpected(EL, &tag)),
        })?;
        Ok(AvailableMedia {
            label,
            media_type: required(media_type, EL, "type")?,
            display_text,
            status,
        })
    }

    fn host_info(&mut self) -> Result<HostInfo> {
        const EL: &str = "host-info";
        let mut h = HostInfo::default();
        let mut uris = None;
        self.children(|p, tag| match tag.local() {
            "display-text" => {
                let v = p.text("display-text")?;
                once(&mut h.display_text, v, EL, "display-text")
            }
            "web-page" => {
                let v = p.text("web-page")?;
                once(&mut h.web_page, v, EL, "web-page")
            }
            "uris" => {
                let v = p.uris("uris")?;
                once(&mut uris, v, EL, "uris")
            }
            _ => Err(unexpected(EL, &tag)),
        })?;
        h.uris = uris.unwrap_or_default();
        Ok(h)
    }

    fn conference_state(&mut self) -> Result<ConferenceState> {
        const EL: &str = "conference-state";
        let mut s = ConferenceState::default();
        self.children(|p, tag| match tag.local() {
            "user-count" => {
                let v = p.u32_value("user-count")?;
                once(&mut s.user_count, v, EL, "user-count")
            }
            "active" => {
                let v = p.bool_value("active")?;
                once(&mut s.active, v, EL, "active")
            }
            "locked" => {
                let v = p.bool_value("locked")?;
                once(&mut s.locked, v, EL, "locked")
            }
            _ => Err(unexpected(EL, &tag)),
        })?;
        Ok(s)
    }

    fn users(&mut self, tag: &Tag<'_>) -> Result<Users> {
        const EL: &str = "users";
        let [state] = self.attrs(tag, ["state"])?;
        let state = state_attr(EL, state)?;
        let mut users = Vec::new();
        self.children(|p, tag| match tag.local() {
            "user" => {
                users.push(p.user(&tag)?);
                Ok(())
            }
            _ => Err(unexpected(EL, &tag)),
        })?;
        Ok(Users { state, users })
    }

    fn user(&mut self, tag: &Tag<'_>) -> Result<User> {
        const EL: &str = "user";
        let [entity, state] = self.attrs(tag, ["entity", "state"])?;
        let mut u = User {
            // Optional in the schema, but it is the key partial documents need.
            entity: entity.ok_or(ParseError::MissingAttribute {
                element: EL,
                attribute: "entity",
            })?,
            state: state_attr(EL, state)?,
            ..User::default()
        };
        let (mut aors, mut roles, mut languages) = (None, None, None);
        self.children(|p, tag| match tag.local() {
            "display-text" => {
                let v = p.text("display-text")?;
                once(&mut u.display_text, v, EL, "display-text")
            }
            "associated-aors" => {
                let v = p.uris("associated-aors")?;
                once(&mut aors, v, EL, "associated-aors")
            }
            "roles" => {
                let v = p.roles()?;
                once(&mut roles, v, EL, "roles")
            }
            "languages" => {
                let v = p.list_value("languages")?;
                once(&mut languages, v, EL, "languages")
            }
            "cascaded-focus" => {
                let v = p.text("cascaded-focus")?;
                once(&mut u.cascaded_focus, v, EL, "cascaded-focus")
            }
            "endpoint" => {
                u.endpoints.push(p.endpoint(&tag)?);
                Ok(())
            }
            _ => Err(unexpected(EL, &tag)),
        })?;
        u.associated_aors = aors.unwrap_or_default();
        u.roles = roles.unwrap_or_default();
        u.languages = languages.unwrap_or_default();
        Ok(u)
    }

    fn roles(&mut self) -> Result<Vec<String>> {
        let mut roles = Vec::new();
        self.children(|p, tag| match tag.local() {
            "entry" => {
                roles.push(p.text("entry")?);
                Ok(())
            }
            _ => Err(unexpected("roles", &tag)),
        })?;
        Ok(roles)
    }

    fn endpoint(&mut self, tag: &Tag<'_>) -> Result<Endpoint> {
        const EL: &str = "endpoint";
        let [entity, state] = self.attrs(tag, ["entity", "state"])?;
        let mut e = Endpoint {
            entity: entity.ok_or(ParseError::MissingAttribute {
                element: EL,
                attribute: "entity",
            })?,
            state: state_attr(EL, state)?,
            unverified: self.focus_attr(tag, "verified")?.as_deref() == Some("false"),
            ..Endpoint::default()
        };
        self.children(|p, tag| match tag.local() {
            "display-text" => {
                let v = p.text("display-text")?;
                once(&mut e.display_text, v, EL, "display-text")
            }
            "referred" => {
                let v = p.execution("referred")?;
                once(&mut e.referred, v, EL, "referred")
            }
            "status" => {
                let v = p.value("status", EndpointStatus::from_token)?;
                once(&mut e.status, v, EL, "status")
            }
            "joining-method" => {
                let v = p.value("joining-method", JoiningMethod::from_token)?;
                once(&mut e.joining_method, v, EL, "joining-method")
            }
            "joining-info" => {
                let v = p.execution("joining-info")?;
                once(&mut e.joining_info, v, EL, "joining-info")
            }
            "disconnection-method" => {
                let v = p.value("disconnection-method", DisconnectionMethod::from_token)?;
                once(&mut e.disconnection_method, v, EL, "disconnection-method")
            }
            "disconnection-info" => {
                let v = p.execution("disconnection-info")?;
                once(&mut e.disconnection_info, v, EL, "disconnection-info")
            }
            "media" => {
                e.media.push(p.media(&tag)?);
                Ok(())
            }
            "call-info" => {
                // Only the `sip` choice is modelled; other protocols leave it `None`.
                if let Some(v) = p.call_info()? {
                    once(&mut e.call_info, v, EL, "call-info")?;
                }
                Ok(())
            }
            _ => Err(unexpected(EL, &tag)),
        })?;
        Ok(e)
    }

    fn execution(&mut self, element: &'static str) -> Result<Execution> {
        let mut x = Execution::default();
        self.children(|p, tag| match tag.local() {
            "when" => {
                let v = p.value("when", parse_datetime)?;
                once(&mut x.when, v, element, "when")
            }
            "reason" => {
                let v = p.text("reason")?;
                once(&mut x.reason, v, element, "reason")
            }
            "by" => {
                let v = p.text("by")?;
                once(&mut x.by, v, element, "by")
            }
            _ => Err(unexpected(element, &tag)),
        })?;
        Ok(x)
    }

    fn media(&mut self, tag: &Tag<'_>) -> Result<Media> {
        const EL: &str = "media";
        let [id] = self.attrs(tag, ["id"])?;
        let mut m = Media {
            id: id.ok_or(ParseError::MissingAttribute {
                element: EL,
                attribute: "id",
            })?,
            ..Media::default()
        };
        self.children(|p, tag| match tag.local() {
            "display-text" => {
                let v = p.text("display-text")?;
                once(&mut m.display_text, v, EL, "display-text")
            }
            "type" => {
                let v = p.text("type")?;
                once(&mut m.media_type, v, EL, "type")
            }
            "label" => {
                let v = p.text("label")?;
                once(&mut m.label, v, EL, "label")
            }
            "src-id" => {
                let v = p.text("src-id")?;
                once(&mut m.src_id, v, EL, "src-id")
            }
            "status" => {
                let v = p.value("status", MediaStatus::from_token)?;
                once(&mut m.status, v, EL, "status")
            }
            _ => Err(unexpected(EL, &tag)),
        })?;
        Ok(m)
    }

    fn call_info(&mut self) -> Result<Option<SipDialogInfo>> {
        let mut sip = None;
        self.children(|p, tag| match tag.local() {
            "sip" => {
                let v = p.sip_dialog()?;
                once(&mut sip, v, "call-info", "sip")
            }
            _ => Err(unexpected("call-info", &tag)),
        })?;
        Ok(sip)
    }

    fn sip_dialog(&mut self) -> Result<SipDialogInfo> {
        const EL: &str = "sip";
        let (mut display_text, mut call_id, mut from_tag, mut to_tag) = (None, None, None, None);
        self.children(|p, tag| match tag.local() {
            "display-text" => {
                let v = p.text("display-text")?;
                once(&mut display_text, v, EL, "display-text")
            }
            "call-id" => {
                let v = p.text("call-id")?;
                once(&mut call_id, v, EL, "call-id")
            }
            "from-tag" => {
                let v = p.text("from-tag")?;
                once(&mut from_tag, v, EL, "from-tag")
            }
            "to-tag" => {
                let v = p.text("to-tag")?;
                once(&mut to_tag, v, EL, "to-tag")
            }
            _ => Err(unexpected(EL, &tag)),
        })?;
        Ok(SipDialogInfo {
            display_text,
            call_id: required(call_id, EL, "call-id")?,
            from_tag: required(from_tag, EL, "from-tag")?,
            to_tag: required(to_tag, EL, "to-tag")?,
        })
    }
}

/// A `state` attribute; absent means `full` (the schema default).
fn state_attr(element: &'static str, value: Option<String>) -> Result<ElemState> {
    match value {
        None => Ok(ElemState::Full),
        Some(v) => ElemState::from_token(xml_trim(&v)).ok_or_else(|| ParseError::InvalidValue {
            element,
            value: quote(&v),
        }),
    }
}
