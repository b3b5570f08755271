//! Group documents from the XDMS, read with the one bounded reader (`crate::xml`):
//!
//! - RFC 4826 `rls-services` (§4): each `<service uri>` with an inline `<list>` is a group,
//!   the list's `<entry uri>`s (nested lists flattened) its members and the list's
//!   `<display-name>` its name;
//! - the OMA group usage (`org.openmobilealliance.groups`, namespace `urn:oma:xml:xdm:group`):
//!   each `<list-service uri>` is a group with its `<display-name>`, the entries of its
//!   `<list>`, `<max-participant-count>`, `<supported-media>` and the join policy of its
//!   common-policy `<ruleset>` where present.
//!
//! The document comes from the network: the `[xml]` bounds hold before work proportional to
//! the input, DOCTYPE (and so entity definitions) is refused, only the five predefined
//! entities and character references are expanded, UTF-8 only. What a group cannot use
//! (references to other documents, `<packages>`, policy the focus has no setting for, foreign
//! elements) is skipped, and what a group would have meant is reported in
//! [`RlsServices::ignored`] for a log line.

use crate::body::resource_lists::{ListLimits, DEPTH_CAP};
use crate::xml::{quote, xml_trim, Fault, Node, Ns, Reader, Tag};
use thiserror::Error;

/// `urn:ietf:params:xml:ns:rls-services`.
pub const RLS_NAMESPACE: &str = "urn:ietf:params:xml:ns:rls-services";
/// `urn:ietf:params:xml:ns:resource-lists`.
pub const LISTS_NAMESPACE: &str = "urn:ietf:params:xml:ns:resource-lists";
/// The OMA group usage's namespace.
pub const OMA_GROUP_NAMESPACE: &str = "urn:oma:xml:xdm:group";
/// RFC 4745 common policy (the OMA group's `<ruleset>`).
pub const POLICY_NAMESPACE: &str = "urn:ietf:params:xml:ns:common-policy";

/// The namespaces told apart besides rls-services, in this order.
const EXTRA: &[&str] = &[LISTS_NAMESPACE, OMA_GROUP_NAMESPACE, POLICY_NAMESPACE];

/// One group of a document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    pub uri: String,
    /// The group's `<display-name>` (empty when absent).
    pub display_name: String,
    /// Entry URIs in document order.
    pub members: Vec<String>,
    /// OMA `<max-participant-count>`.
    pub max_participants: Option<u32>,
    /// OMA `<supported-media>`: the media tokens as written (lower case).
    pub media: Option<Vec<String>>,
    /// The OMA ruleset's join policy: `Some(true)` anyone may join, `Some(false)` the list's
    /// members; `None` when the document says nothing the focus can use.
    pub join_open: Option<bool>,
}

/// A parsed document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RlsServices {
    pub services: Vec<Service>,
    /// What was understood but not used, one short note each (for a log line).
    pub ignored: Vec<String>,
}

/// Why a document was refused (the last good copy stays).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RlsError {
    #[error("document is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("elements nest deeper than the limit of {0}")]
    TooDeep(usize),
    #[error("document has more than the limit of {0} elements")]
    TooManyElements(usize),
    #[error("document has more than the limit of {0} entries")]
    TooManyEntries(usize),
    #[error("document is not valid UTF-8")]
    NotUtf8,
    #[error("character U+{0:04X} is not allowed in XML 1.0")]
    InvalidChar(u32),
    #[error("unsupported encoding {0:?} (only UTF-8)")]
    UnsupportedEncoding(String),
    #[error("DOCTYPE/DTD is not allowed")]
    Dtd,
    #[error("unknown entity &{0}; (only the five predefined entities are allowed)")]
    UnknownEntity(String),
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("root element is neither <rls-services> in {RLS_NAMESPACE} nor <group> in {OMA_GROUP_NAMESPACE}")]
    WrongRoot,
    #[error("<{0}> lacks its uri attribute")]
    MissingUri(&'static str),
    #[error("document has no root element")]
    NoRoot,
}

impl From<Fault> for RlsError {
    fn from(f: Fault) -> RlsError {
        match f {
            Fault::TooDeep { limit } => RlsError::TooDeep(limit),
            Fault::TooManyElements { limit } => RlsError::TooManyElements(limit),
            Fault::UnsupportedEncoding(e) => RlsError::UnsupportedEncoding(e),
            Fault::Dtd => RlsError::Dtd,
            Fault::UnknownEntity(e) => RlsError::UnknownEntity(e),
            Fault::InvalidChar(c) | Fault::IllegalCharRef { code: c, .. } => {
                RlsError::InvalidChar(c)
            }
            Fault::UnboundPrefix(p) => RlsError::Malformed(format!("undeclared prefix {p}")),
            Fault::Malformed(m) => RlsError::Malformed(m),
            Fault::UnexpectedEof => RlsError::Malformed("document ends inside an element".into()),
            Fault::UnexpectedElement { parent, child } => {
                RlsError::Malformed(format!("<{parent}> has unexpected child <{child}>"))
            }
        }
    }
}

/// Which vocabulary an element is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Voc {
    Rls,
    Lists,
    Oma,
    Policy,
    Other,
}

fn voc(tag: &Tag<'_>) -> Voc {
    match (&tag.ns, tag.extra) {
        (Ns::Ours, _) => Voc::Rls,
        (_, Some(0)) => Voc::Lists,
        (_, Some(1)) => Voc::Oma,
        (_, Some(2)) => Voc::Policy,
        _ => Voc::Other,
    }
}

/// Parses one group document under `limits`.
pub fn parse(xml: &[u8], limits: &ListLimits) -> Result<RlsServices, RlsError> {
    if xml.len() > limits.max_bytes {
        return Err(RlsError::TooLarge {
            size: xml.len(),
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(xml).map_err(|_| RlsError::NotUtf8)?;
    crate::xml::check_chars(text)?;
    let reader = Reader::new(
        text,
        RLS_NAMESPACE,
        limits.max_depth.min(DEPTH_CAP),
        limits.max_elements,
    )
    .with_extra(EXTRA);
    let mut p = Parser {
        xml: reader,
        out: RlsServices::default(),
        entries: 0,
        max_entries: limits.max_entries,
    };
    loop {
        match p.xml.node()? {
            Node::Start(tag) => {
                match (voc(&tag), tag.local()) {
                    (Voc::Rls, "rls-services") => p.rls_services()?,
                    (Voc::Oma, "group") => p.oma_group()?,
                    _ => return Err(RlsError::WrongRoot),
                }
                break;
            }
            Node::Text(t) if crate::xml::is_xml_space(&t) => {}
            Node::Text(_) => return Err(malformed("text outside the root element")),
            Node::End => return Err(malformed("unbalanced end tag")),
            Node::Eof => return Err(RlsError::NoRoot),
        }
    }
    loop {
        match p.xml.node()? {
            Node::Eof => return Ok(p.out),
            Node::Text(t) if crate::xml::is_xml_space(&t) => {}
            _ => return Err(malformed("content after the root element")),
        }
    }
}

fn malformed(what: &str) -> RlsError {
    RlsError::Malformed(quote(what))
}

struct Parser<'i> {
    xml: Reader<'i>,
    out: RlsServices,
    entries: usize,
    max_entries: usize,
}

impl Parser<'_> {
    /// The `uri` attribute of `tag`, trimmed.
    fn uri(&self, tag: &Tag<'_>) -> Result<Option<String>, RlsError> {
        let mut uri = None;
        self.xml.attributes::<RlsError>(tag, |ns, name, value| {
            if ns.is_none() && name == "uri" {
                uri = Some(xml_trim(&value.read()?).to_owned());
                return Ok(false);
            }
            Ok(true)
        })?;
        Ok(uri)
    }

    fn count_entry(&mut self) -> Result<(), RlsError> {
        self.entries += 1;
        if self.entries > self.max_entries {
            return Err(RlsError::TooManyEntries(self.max_entries));
        }
        Ok(())
    }

    fn note(&mut self, service: &str, what: String) {
        // Bounded like the document: one note per element at most.
        self.out.ignored.push(format!("{}: {what}", quote(service)));
    }

    /// The children of an open element, each handed to `child`, until its end.
    fn children(
        &mut self,
        mut child: impl FnMut(&mut Self, Tag<'_>) -> Result<(), RlsError>,
    ) -> Result<(), RlsError> {
        loop {
            match self.xml.node()? {
                Node::Start(tag) => child(self, tag)?,
                Node::Text(_) => {}
                Node::End => return Ok(()),
                Node::Eof => return Err(Fault::UnexpectedEof.into()),
            }
        }
    }

    fn rls_services(&mut self) -> Result<(), RlsError> {
        self.children(|p, tag| match (voc(&tag), tag.local()) {
            (Voc::Rls, "service") => {
                let uri = p.uri(&tag)?.ok_or(RlsError::MissingUri("service"))?;
                p.service(uri)
            }
            _ => Ok(p.xml.skip()?),
        })
    }

    fn service(&mut self, uri: String) -> Result<(), RlsError> {
        let mut s = Service {
            uri,
            ..Service::default()
        };
        self.children(|p, tag| match (voc(&tag), tag.local()) {
            (Voc::Rls, "list") => p.list(&mut s, true),
            (Voc::Rls, "resource-list") => {
                p.note(
                    &s.uri,
                    "<resource-list> (a list elsewhere) is not fetched".into(),
                );
                Ok(p.xml.skip()?)
            }
            _ => Ok(p.xml.skip()?),
        })?;
        self.out.services.push(s);
        Ok(())
    }

    /// A `<list>`: its entries are members (nested lists flattened); the top list's
    /// `<display-name>` names the group when `named`.
    fn list(&mut self, s: &mut Service, named: bool) -> Result<(), RlsError> {
        self.children(|p, tag| {
            let listy = matches!(voc(&tag), Voc::Rls | Voc::Lists | Voc::Oma);
            match (listy, tag.local()) {
                (true, "entry") => {
                    p.count_entry()?;
                    let uri = p.uri(&tag)?.ok_or(RlsError::MissingUri("entry"))?;
                    s.members.push(uri);
                    Ok(p.xml.skip()?)
                }
                (true, "list") => p.list(s, false),
                (true, "display-name") if named => {
                    s.display_name = xml_trim(&p.xml.text("display-name")?).to_owned();
                    Ok(())
                }
                (true, local @ ("entry-ref" | "external")) => {
                    p.count_entry()?;
                    let note =
                        format!("<{local}> (a reference to another document) is not resolved");
                    p.note(&s.uri, note);
                    Ok(p.xml.skip()?)
                }
                _ => Ok(p.xml.skip()?),
            }
        })
    }

    fn oma_group(&mut self) -> Result<(), RlsError> {
        self.children(|p, tag| match (voc(&tag), tag.local()) {
            (Voc::Oma, "list-service") => {
                let uri = p.uri(&tag)?.ok_or(RlsError::MissingUri("list-service"))?;
                p.list_service(uri)
            }
            _ => Ok(p.xml.skip()?),
        })
    }

    /// An OMA `<list-service>`: what the focus has a group setting for is read, the rest
    /// noted.
    fn list_service(&mut self, uri: String) -> Result<(), RlsError> {
        let mut s = Service {
            uri,
            ..Service::default()
        };
        self.children(|p, tag| match (voc(&tag), tag.local()) {
            (Voc::Oma | Voc::Lists, "display-name") => {
                s.display_name = xml_trim(&p.xml.text("display-name")?).to_owned();
                Ok(())
            }
            (Voc::Oma | Voc::Lists, "list") => p.list(&mut s, false),
            (Voc::Oma, "max-participant-count") => {
                let text = p.xml.text("max-participant-count")?;
                match xml_trim(&text).parse::<u32>() {
                    Ok(n) if n > 0 => s.max_participants = Some(n),
                    _ => p.note(
                        &s.uri,
                        format!(
                            "<max-participant-count> {:?} is not a positive number",
                            quote(&text)
                        ),
                    ),
                }
                Ok(())
            }
            (Voc::Oma, "supported-media") => {
                let mut media = Vec::new();
                p.children(|p, tag| {
                    if tag.local() == "media" || tag.local() == "entry" {
                        let t = p.xml.text("media")?;
                        if media.len() < 16 {
                            media.push(xml_trim(&t).to_ascii_lowercase());
                        }
                        Ok(())
                    } else {
                        Ok(p.xml.skip()?)
                    }
                })?;
                s.media = Some(media);
                Ok(())
            }
            (Voc::Policy, "ruleset") => p.ruleset(&mut s),
            (_, local) => {
                let note = format!("<{}> has no group setting here; ignored", quote(local));
                p.note(&s.uri, note);
                Ok(p.xml.skip()?)
            }
        })?;
        self.out.services.push(s);
        Ok(())
    }

    /// The join policy of an OMA ruleset (RFC 4745 rules with OMA `<join-handling>`): a rule
    /// that lets anyone join makes the group open, one that lets the list's members join
    /// makes it members-only; other conditions are noted, not guessed at.
    fn ruleset(&mut self, s: &mut Service) -> Result<(), RlsError> {
        let mut open = false;
        let mut members = false;
        self.children(|p, tag| {
            if !(voc(&tag) == Voc::Policy && tag.local() == "rule") {
                return Ok(p.xml.skip()?);
            }
            // Per rule: who it is for, and whether it allows joining.
            let (mut anyone, mut listed, mut other, mut allow) = (true, false, false, false);
            p.children(|p, part| match part.local() {
                "conditions" => p.children(|p, c| {
                    match c.local() {
                        "is-list-member" => {
                            anyone = false;
                            listed = true;
                            p.xml.skip()?;
                        }
                        "identity" => {
                            // `<many/>` without exceptions is anyone; `<one id>` lists.
                            let mut many = false;
                            p.children(|p, i| {
                                match i.local() {
                                    "many" => many = true,
                                    _ => other = true,
                                }
                                Ok(p.xml.skip()?)
                            })?;
                            if !many {
                                anyone = false;
                            }
                        }
                        _ => {
                            anyone = false;
                            other = true;
                            p.xml.skip()?;
                        }
                    }
                    Ok(())
                }),
                "actions" => p.children(|p, a| {
                    if a.local() == "join-handling" {
                        let t = p.xml.text("join-handling")?;
                        allow = xml_trim(&t).eq_ignore_ascii_case("allow");
                        Ok(())
                    } else {
                        Ok(p.xml.skip()?)
                    }
                }),
                _ => Ok(p.xml.skip()?),
            })?;
            if allow && other {
                p.note(
                    &s.uri,
                    "a join rule for named identities is not applied".into(),
                );
            } else if allow && listed {
                members = true;
            } else if allow && anyone {
                open = true;
            }
            Ok(())
        })?;
        s.join_open = if open {
            Some(true)
        } else if members {
            Some(false)
        } else {
            None
        };
        Ok(())
    }
}
