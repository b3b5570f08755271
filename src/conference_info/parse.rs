//! Bounded, namespace-aware parser for `application/conference-info+xml`.
//!
//! Used by the test user agent to check NOTIFY bodies and by property tests, so it is strict
//! where our renderer could be wrong (element names in our namespace, required parts, tokens)
//! and lenient where RFC 4575 allows extension: elements and attributes in other namespaces are
//! skipped. Input comes from the network, so it never expands entities other than the five
//! predefined ones and character references, rejects any DTD, and enforces [`Limits`] before
//! doing work proportional to the input.

use std::borrow::Cow;

use quick_xml::errors::Error as XmlError;
use quick_xml::escape::{resolve_predefined_entity, EscapeError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use quick_xml::XmlVersion;
use thiserror::Error;

use super::datetime::parse_datetime;
use super::escape::is_xml_char;
use super::model::{
    AvailableMedia, ConferenceDescription, ConferenceInfo, ConferenceState, DisconnectionMethod,
    ElemState, Endpoint, EndpointStatus, Execution, HostInfo, JoiningMethod, Media, MediaStatus,
    SipDialogInfo, UriEntry, User, Users, FOCUS_NAMESPACE, NAMESPACE,
};

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
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    // Empty elements become Start+End, so every element is handled one way.
    config.expand_empty_elements = true;
    config.trim_text(false);
    config.check_end_names = true;
    let mut p = Parser {
        reader,
        limits,
        depth: 0,
        elements: 0,
        started: false,
    };
    p.document()
}

type Result<T> = std::result::Result<T, ParseError>;

/// Longest input excerpt an error may quote.
const QUOTE_MAX: usize = 64;

fn quote(s: &str) -> String {
    if s.len() <= QUOTE_MAX {
        return s.to_owned();
    }
    let mut end = QUOTE_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn xml_error(e: XmlError) -> ParseError {
    match e {
        XmlError::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            ParseError::UnknownEntity(quote(&name))
        }
        XmlError::Namespace(quick_xml::name::NamespaceError::UnknownPrefix(p)) => {
            ParseError::UnboundPrefix(quote(&p))
        }
        other => ParseError::Malformed(quote(&other.to_string())),
    }
}

fn check_chars(s: &str) -> Result<()> {
    match s.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(ParseError::InvalidChar(u32::from(c))),
        None => Ok(()),
    }
}

fn is_xml_space(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

fn xml_trim(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

/// Where an element's name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ns {
    /// `urn:ietf:params:xml:ns:conference-info`.
    Ours,
    /// Another namespace, or none: an extension we skip. The namespace is only kept for the
    /// root element (to report it); skipped subtrees should not allocate.
    Foreign(Option<String>),
}

/// An element just opened, with its namespace bindings still in scope.
struct Tag<'i> {
    ns: Ns,
    start: BytesStart<'i>,
}

impl Tag<'_> {
    fn local(&self) -> &str {
        let name = self.start.name();
        let raw: &str = name.0;
        raw.rsplit(':').next().unwrap_or(raw)
    }
}

/// One step of the document, with comments and PIs already dropped.
enum Node<'i> {
    Start(Tag<'i>),
    End,
    Text(Cow<'i, str>),
    Eof,
}

struct Parser<'i, 'l> {
    reader: NsReader<&'i [u8]>,
    limits: &'l Limits,
    depth: usize,
    elements: usize,
    /// Whether any event was seen (an XML declaration is only allowed first).
    started: bool,
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
    ParseError::UnexpectedElement {
        parent,
        child: quote(tag.local()),
    }
}

impl<'i> Parser<'i, '_> {
    fn next(&mut self) -> Result<Node<'i>> {
        loop {
            let (ns, event) = self.reader.read_resolved_event().map_err(xml_error)?;
            let ns = match ns {
                ResolveResult::Bound(n) if n.0 == NAMESPACE => Ns::Ours,
                ResolveResult::Bound(n) if self.depth == 0 => Ns::Foreign(Some(quote(n.0))),
                ResolveResult::Bound(_) => Ns::Foreign(None),
                ResolveResult::Unbound => Ns::Foreign(None),
                ResolveResult::Unknown(p) => return Err(ParseError::UnboundPrefix(quote(&p))),
            };
            let first = !self.started;
            self.started = true;
            match event {
                Event::Start(start) => {
                    self.depth += 1;
                    self.elements += 1;
                    if self.depth > self.limits.max_depth {
                        return Err(ParseError::TooDeep {
                            limit: self.limits.max_depth,
                        });
                    }
                    if self.elements > self.limits.max_elements {
                        return Err(ParseError::TooManyElements {
                            limit: self.limits.max_elements,
                        });
                    }
                    return Ok(Node::Start(Tag { ns, start }));
                }
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(Node::End);
                }
                // `expand_empty_elements` is on, so this cannot happen; refuse rather than panic.
                Event::Empty(_) => {
                    return Err(ParseError::Malformed("unexpanded empty element".into()))
                }
                Event::Text(t) => return Ok(Node::Text(t.xml10_content())),
                Event::CData(c) => return Ok(Node::Text(c.xml10_content())),
                Event::GeneralRef(r) => {
                    let text = match r.resolve_char_ref().map_err(xml_error)? {
                        Some(c) => Cow::Owned(c.to_string()),
                        None => match resolve_predefined_entity(&r) {
                            Some(s) => Cow::Borrowed(s),
                            None => return Err(ParseError::UnknownEntity(quote(&r))),
                        },
                    };
                    return Ok(Node::Text(text));
                }
                Event::Comment(_) | Event::PI(_) => continue,
                Event::Decl(d) => {
                    if !first {
                        return Err(ParseError::Malformed("XML declaration not at start".into()));
                    }
                    if let Some(enc) = d.encoding() {
                        let enc = enc.map_err(|e| ParseError::Malformed(quote(&e.to_string())))?;
                        if !enc.eq_ignore_ascii_case("utf-8") {
                            return Err(ParseError::UnsupportedEncoding(quote(&enc)));
                        }
                    }
                    continue;
                }
                Event::DocType(_) => return Err(ParseError::Dtd),
                Event::Eof => return Ok(Node::Eof),
            }
        }
    }

    /// Reads the unprefixed attributes `names` of `tag`, ignoring the rest: namespace
    /// declarations, attributes in other namespaces, and unknown unprefixed ones.
    fn attrs<const N: usize>(
        &self,
        tag: &Tag<'_>,
        names: [&'static str; N],
    ) -> Result<[Option<String>; N]> {
        let mut found: [Option<String>; N] = std::array::from_fn(|_| None);
        for attr in tag.start.attributes() {
            let attr = attr.map_err(|e| xml_error(e.into()))?;
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let (ns, local) = self.reader.resolver().resolve_attribute(attr.key);
            match ns {
                ResolveResult::Unbound => {}
                ResolveResult::Bound(_) => continue,
                ResolveResult::Unknown(p) => return Err(ParseError::UnboundPrefix(quote(&p))),
            }
            let Some(i) = names.iter().position(|n| *n == local.as_ref()) else {
                continue;
            };
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(xml_error)?;
            check_chars(&value)?;
            found[i] = Some(value.into_owned());
        }
        Ok(found)
    }

    /// Reads the attribute `name` of `tag` in the focus's own namespace
    /// ([`FOCUS_NAMESPACE`]), ignoring every other one.
    fn focus_attr(&self, tag: &Tag<'_>, name: &str) -> Result<Option<String>> {
        for attr in tag.start.attributes() {
            let attr = attr.map_err(|e| xml_error(e.into()))?;
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let (ns, local) = self.reader.resolver().resolve_attribute(attr.key);
            match ns {
                ResolveResult::Bound(n) if n.0 == FOCUS_NAMESPACE => {}
                ResolveResult::Unknown(p) => return Err(ParseError::UnboundPrefix(quote(&p))),
                _ => continue,
            }
            if local.as_ref() != name {
                continue;
            }
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(xml_error)?;
            check_chars(&value)?;
            return Ok(Some(value.into_owned()));
        }
        Ok(None)
    }

    /// Skips the rest of an element we do not model (its nodes still count against limits).
    fn skip(&mut self) -> Result<()> {
        let mut open = 1usize;
        while open > 0 {
            match self.next()? {
                Node::Start(_) => open += 1,
                Node::End => open -= 1,
                Node::Text(_) => {}
                Node::Eof => return Err(ParseError::UnexpectedEof),
            }
        }
        Ok(())
    }

    /// Visits the child elements of the element just opened: ours go to `visit`, foreign ones
    /// are skipped, text between them is ignored.
    fn children(&mut self, mut visit: impl FnMut(&mut Self, Tag<'i>) -> Result<()>) -> Result<()> {
        loop {
            match self.next()? {
                Node::End => return Ok(()),
                Node::Eof => return Err(ParseError::UnexpectedEof),
                Node::Text(_) => {}
                Node::Start(tag) => match tag.ns {
                    Ns::Ours => visit(self, tag)?,
                    Ns::Foreign(_) => self.skip()?,
                },
            }
        }
    }

    /// The text content of a simple element (no child elements allowed).
    fn text(&mut self, element: &'static str) -> Result<String> {
        let mut out = String::new();
        loop {
            match self.next()? {
                Node::Text(t) => {
                    if out.is_empty() {
                        out = t.into_owned();
                    } else {
                        out.push_str(&t);
                    }
                }
                Node::End => break,
                Node::Start(tag) => return Err(unexpected(element, &tag)),
                Node::Eof => return Err(ParseError::UnexpectedEof),
            }
        }
        check_chars(&out)?;
        Ok(out)
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
            match self.next()? {
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
            match self.next()? {
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
