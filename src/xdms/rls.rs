//! Bounded, namespace-aware reader of RFC 4826 `rls-services` documents (§4): each
//! `<service uri>` with an inline `<list>` is a group, the list's `<entry uri>`s (nested lists
//! flattened) its members and the list's `<display-name>` its name.
//!
//! The document comes from the network, so the rules of the URI-list parser hold
//! ([`crate::body::resource_lists`]): the `[xml]` bounds are checked before work proportional
//! to the input, DOCTYPE (and so entity definitions) is refused, only the five predefined
//! entities and character references are expanded, UTF-8 only. The reader is a loop over a
//! stack of open elements (no recursion), so depth costs no call stack. What a group cannot
//! use (`<resource-list>` and `<entry-ref>`/`<external>` references, `<packages>`, foreign
//! elements) is skipped and reported in [`RlsServices::ignored`].

use crate::body::resource_lists::ListLimits;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use quick_xml::XmlVersion;
use thiserror::Error;

/// `urn:ietf:params:xml:ns:rls-services`.
pub const RLS_NAMESPACE: &str = "urn:ietf:params:xml:ns:rls-services";
/// `urn:ietf:params:xml:ns:resource-lists`.
pub const LISTS_NAMESPACE: &str = "urn:ietf:params:xml:ns:resource-lists";

/// Longest excerpt of the input an error quotes.
const QUOTE: usize = 64;

/// One `<service>` with an inline list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Service {
    pub uri: String,
    /// The list's `<display-name>` (empty when absent).
    pub display_name: String,
    /// Entry URIs in document order.
    pub members: Vec<String>,
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
    #[error("root element is not <rls-services> in {RLS_NAMESPACE}")]
    WrongRoot,
    #[error("<{0}> lacks its uri attribute")]
    MissingUri(&'static str),
    #[error("document has no root element")]
    NoRoot,
}

fn quote(s: &str) -> String {
    s.chars().take(QUOTE).collect()
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn check_chars(s: &str) -> Result<(), RlsError> {
    match s.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(RlsError::InvalidChar(u32::from(c))),
        None => Ok(()),
    }
}

fn trim(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

/// What an open element is to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Root,
    Service,
    /// The service's `<list>`.
    List,
    /// A `<list>` inside it (flattened).
    Nested,
    /// The service list's `<display-name>`.
    Name,
    /// Anything whose content is not read (an entry's children, foreign elements).
    Skip,
}

/// Which namespace an element is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ns {
    Rls,
    Lists,
    Other,
}

/// Parses one `rls-services` document under `limits`.
pub fn parse(xml: &[u8], limits: &ListLimits) -> Result<RlsServices, RlsError> {
    if xml.len() > limits.max_bytes {
        return Err(RlsError::TooLarge {
            size: xml.len(),
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(xml).map_err(|_| RlsError::NotUtf8)?;
    check_chars(text)?;
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.expand_empty_elements = true;
    config.check_end_names = true;
    let mut out = RlsServices::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut current: Option<Service> = None;
    let (mut elements, mut entries) = (0usize, 0usize);
    let mut seen_root = false;
    let max_depth = limits.max_depth.min(crate::body::resource_lists::DEPTH_CAP);
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| malformed(&e.to_string()))?;
        let ns = match ns {
            ResolveResult::Bound(n) if n.0 == RLS_NAMESPACE => Ns::Rls,
            ResolveResult::Bound(n) if n.0 == LISTS_NAMESPACE => Ns::Lists,
            ResolveResult::Unknown(p) => return Err(malformed(&format!("undeclared prefix {p}"))),
            _ => Ns::Other,
        };
        match event {
            Event::Start(start) => {
                elements += 1;
                if elements > limits.max_elements {
                    return Err(RlsError::TooManyElements(limits.max_elements));
                }
                if stack.len() + 1 > max_depth {
                    return Err(RlsError::TooDeep(max_depth));
                }
                let local = start.local_name().as_ref().to_owned();
                let uri = || -> Result<Option<String>, RlsError> {
                    for attr in start.attributes() {
                        let attr = attr.map_err(|e| malformed(&e.to_string()))?;
                        if attr.key.as_ref() == "uri" {
                            let v = attr
                                .normalized_value(XmlVersion::Implicit1_0)
                                .map_err(|e| entity_or_malformed(&e.to_string()))?;
                            check_chars(&v)?;
                            return Ok(Some(trim(&v).to_owned()));
                        }
                    }
                    Ok(None)
                };
                // Inside a list the entries may be in either namespace: documents written
                // with one default namespace are common.
                let in_list = matches!(ns, Ns::Rls | Ns::Lists);
                let frame = match (stack.last(), ns, local.as_str()) {
                    (None, Ns::Rls, "rls-services") if !seen_root => {
                        seen_root = true;
                        Frame::Root
                    }
                    (None, _, _) => return Err(RlsError::WrongRoot),
                    (Some(Frame::Root), Ns::Rls, "service") => {
                        let uri = uri()?.ok_or(RlsError::MissingUri("service"))?;
                        current = Some(Service {
                            uri,
                            ..Service::default()
                        });
                        Frame::Service
                    }
                    (Some(Frame::Service), Ns::Rls, "list") => Frame::List,
                    (Some(Frame::Service), Ns::Rls, "resource-list") => {
                        out.ignored.push(format!(
                            "{}: <resource-list> (a list elsewhere) is not fetched",
                            quote(current.as_ref().map_or("", |s| &s.uri))
                        ));
                        Frame::Skip
                    }
                    (Some(Frame::List | Frame::Nested), _, "entry") if in_list => {
                        entries += 1;
                        if entries > limits.max_entries {
                            return Err(RlsError::TooManyEntries(limits.max_entries));
                        }
                        let uri = uri()?.ok_or(RlsError::MissingUri("entry"))?;
                        if let Some(s) = current.as_mut() {
                            s.members.push(uri);
                        }
                        Frame::Skip
                    }
                    (Some(Frame::List | Frame::Nested), _, "list") if in_list => Frame::Nested,
                    (Some(Frame::List), _, "display-name") if in_list => Frame::Name,
                    (Some(Frame::List | Frame::Nested), _, "entry-ref" | "external") if in_list => {
                        entries += 1;
                        if entries > limits.max_entries {
                            return Err(RlsError::TooManyEntries(limits.max_entries));
                        }
                        out.ignored.push(format!(
                            "{}: <{local}> (a reference to another document) is not resolved",
                            quote(current.as_ref().map_or("", |s| &s.uri))
                        ));
                        Frame::Skip
                    }
                    _ => Frame::Skip,
                };
                stack.push(frame);
            }
            Event::End(_) => {
                if stack.pop() == Some(Frame::Service) {
                    if let Some(mut s) = current.take() {
                        s.display_name = trim(&s.display_name).to_owned();
                        out.services.push(s);
                    }
                }
            }
            Event::Empty(_) => return Err(malformed("unexpanded empty element")),
            Event::Text(t) => {
                let text = t.xml10_content();
                if stack.last() == Some(&Frame::Name) {
                    if let Some(s) = current.as_mut() {
                        s.display_name.push_str(&text);
                    }
                } else if stack.is_empty() && !trim(&text).is_empty() {
                    return Err(malformed("text outside the root element"));
                }
            }
            Event::CData(c) => {
                if stack.last() == Some(&Frame::Name) {
                    if let Some(s) = current.as_mut() {
                        s.display_name.push_str(&c.xml10_content());
                    }
                }
            }
            Event::GeneralRef(r) => {
                let text = match r
                    .resolve_char_ref()
                    .map_err(|e| malformed(&e.to_string()))?
                {
                    Some(c) if is_xml_char(c) => c.to_string(),
                    Some(c) => return Err(RlsError::InvalidChar(u32::from(c))),
                    None => match quick_xml::escape::resolve_predefined_entity(&r) {
                        Some(s) => s.to_string(),
                        None => return Err(RlsError::UnknownEntity(quote(r.as_ref()))),
                    },
                };
                if stack.last() == Some(&Frame::Name) {
                    if let Some(s) = current.as_mut() {
                        s.display_name.push_str(&text);
                    }
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Decl(d) => {
                if let Some(enc) = d.encoding() {
                    let enc = enc.map_err(|e| malformed(&e.to_string()))?;
                    if !enc.eq_ignore_ascii_case("utf-8") {
                        return Err(RlsError::UnsupportedEncoding(quote(&enc)));
                    }
                }
            }
            Event::DocType(_) => return Err(RlsError::Dtd),
            Event::Eof => {
                if !stack.is_empty() {
                    return Err(malformed("document ends inside an element"));
                }
                if !seen_root {
                    return Err(RlsError::NoRoot);
                }
                return Ok(out);
            }
        }
    }
}

fn malformed(what: &str) -> RlsError {
    RlsError::Malformed(quote(what))
}

/// quick-xml reports an unknown entity in an attribute as an escape error.
fn entity_or_malformed(what: &str) -> RlsError {
    if what.contains("entity") {
        RlsError::UnknownEntity(quote(what))
    } else {
        malformed(what)
    }
}
