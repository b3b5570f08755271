//! Bounded, namespace-aware parser for `application/resource-lists+xml`.
//!
//! The list comes from a peer and decides whom the focus calls, so the parser is strict about
//! what it acts on (elements of the resource-lists namespace where the schema puts them, a
//! `uri` on every entry, valid copy-control values) and lenient where RFC 4826 allows
//! extension: elements and attributes of other namespaces are skipped. It never expands
//! entities beyond the five predefined ones and character references, rejects any DTD, reads
//! UTF-8 only, and enforces [`ListLimits`] before doing work proportional to the input.

use std::borrow::Cow;

use quick_xml::errors::Error as XmlError;
use quick_xml::escape::{resolve_predefined_entity, EscapeError, ParseCharRefError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{NamespaceError, ResolveResult};
use quick_xml::reader::NsReader;
use quick_xml::XmlVersion;
use thiserror::Error;

use super::model::{
    CopyControl, Entry, Reference, ResourceList, COPY_CONTROL_NAMESPACE, NAMESPACE,
};
use crate::body::quote;

/// Resource bounds for one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListLimits {
    /// Largest accepted document in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting (the root is depth 1). Nested lists are parsed recursively,
    /// so values above [`DEPTH_CAP`] count as that.
    pub max_depth: usize,
    /// Most elements, counting skipped foreign ones.
    pub max_elements: usize,
    /// Most `<entry>`, `<entry-ref>` and `<external>` elements: how many requests one list
    /// can make the focus send.
    pub max_entries: usize,
}

/// Hard bound on [`ListLimits::max_depth`], which keeps the recursion's stack use small.
pub const DEPTH_CAP: usize = 256;

impl Default for ListLimits {
    /// 256 KiB, depth 16, 10 000 elements, 1 000 entries.
    ///
    /// A URI list in a SIP request fits in the 64 KiB message (about 60 bytes an entry), and
    /// RFC 4826 documents nest a few levels (resource-lists/list/list/entry/display-name);
    /// the group size a service accepts is its own policy, checked after parsing.
    fn default() -> Self {
        ListLimits {
            max_bytes: 256 * 1024,
            max_depth: 16,
            max_elements: 10_000,
            max_entries: 1_000,
        }
    }
}

/// Why a list was rejected (answer `400`). Values quoted from the input are truncated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ListError {
    #[error("document is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("elements nest deeper than the limit of {limit}")]
    TooDeep { limit: usize },
    #[error("document has more than the limit of {limit} elements")]
    TooManyElements { limit: usize },
    #[error("list has more than the limit of {limit} entries")]
    TooManyEntries { limit: usize },
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
    #[error("root element is <{0}>, expected <resource-lists>")]
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
    #[error("<{element}> lacks required attribute {attribute}")]
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    #[error("<entry> has {0} without the copycontrol namespace (RFC 5364)")]
    Unqualified(&'static str),
    #[error("attribute {attribute} has invalid value {value:?}")]
    InvalidValue {
        attribute: &'static str,
        value: String,
    },
}

type Result<T> = std::result::Result<T, ListError>;

/// Parses one resource-lists document.
pub fn parse(xml: &[u8], limits: &ListLimits) -> Result<ResourceList> {
    if xml.len() > limits.max_bytes {
        return Err(ListError::TooLarge {
            size: xml.len(),
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(xml).map_err(|_| ListError::NotUtf8)?;
    // Characters XML forbids anywhere (names, skipped text, comments); references to them are
    // checked where they are expanded.
    check_chars(text)?;
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    // Empty elements become Start+End, so every element is handled one way.
    config.expand_empty_elements = true;
    config.trim_text(false);
    config.check_end_names = true;
    let mut p = Parser {
        reader,
        max_depth: limits.max_depth.min(DEPTH_CAP),
        limits,
        depth: 0,
        elements: 0,
        entries: 0,
        started: false,
        out: ResourceList::default(),
    };
    p.document()?;
    Ok(p.out)
}

fn xml_error(e: XmlError) -> ListError {
    match e {
        XmlError::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            ListError::UnknownEntity(quote(&name))
        }
        XmlError::Escape(EscapeError::InvalidCharRef(ParseCharRefError::IllegalCharacter(c))) => {
            ListError::InvalidChar(c)
        }
        XmlError::Namespace(NamespaceError::UnknownPrefix(p)) => {
            ListError::UnboundPrefix(quote(&p))
        }
        other => ListError::Malformed(quote(&other.to_string())),
    }
}

/// XML 1.0 `Char`: what a document may contain at all, even as a character reference.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn check_chars(s: &str) -> Result<()> {
    match s.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(ListError::InvalidChar(u32::from(c))),
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
    /// `urn:ietf:params:xml:ns:resource-lists`.
    Lists,
    /// Any other namespace, or none: an extension to skip. The namespace is kept only for the
    /// root element (to report it), so skipped subtrees do not allocate.
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

/// One step of the document, comments and PIs dropped.
enum Node<'i> {
    Start(Tag<'i>),
    End,
    Text(Cow<'i, str>),
    Eof,
}

struct Parser<'i, 'l> {
    reader: NsReader<&'i [u8]>,
    limits: &'l ListLimits,
    /// `limits.max_depth`, capped.
    max_depth: usize,
    depth: usize,
    elements: usize,
    /// Entries and references seen so far.
    entries: usize,
    /// Whether any event was seen (an XML declaration is only allowed first).
    started: bool,
    out: ResourceList,
}

fn unexpected(parent: &'static str, tag: &Tag<'_>) -> ListError {
    ListError::UnexpectedElement {
        parent,
        child: quote(tag.local()),
    }
}

/// Which attribute to read: its namespace (`None` for unprefixed) and local name.
type AttrName = (Option<&'static str>, &'static str);

const URI: AttrName = (None, "uri");
const REF: AttrName = (None, "ref");
const ANCHOR: AttrName = (None, "anchor");
const COPY_CONTROL: AttrName = (Some(COPY_CONTROL_NAMESPACE), "copyControl");
const ANONYMIZE: AttrName = (Some(COPY_CONTROL_NAMESPACE), "anonymize");
const COUNT: AttrName = (Some(COPY_CONTROL_NAMESPACE), "count");
const BARE_COPY_CONTROL: AttrName = (None, "copyControl");
const BARE_ANONYMIZE: AttrName = (None, "anonymize");

impl<'i> Parser<'i, '_> {
    fn next(&mut self) -> Result<Node<'i>> {
        loop {
            let (ns, event) = self.reader.read_resolved_event().map_err(xml_error)?;
            let ns = match ns {
                ResolveResult::Bound(n) if n.0 == NAMESPACE => Ns::Lists,
                ResolveResult::Bound(n) if self.depth == 0 => Ns::Foreign(Some(quote(n.0))),
                ResolveResult::Bound(_) | ResolveResult::Unbound => Ns::Foreign(None),
                ResolveResult::Unknown(p) => return Err(ListError::UnboundPrefix(quote(&p))),
            };
            let first = !self.started;
            self.started = true;
            match event {
                Event::Start(start) => {
                    self.depth += 1;
                    self.elements += 1;
                    if self.depth > self.max_depth {
                        return Err(ListError::TooDeep {
                            limit: self.max_depth,
                        });
                    }
                    if self.elements > self.limits.max_elements {
                        return Err(ListError::TooManyElements {
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
                    return Err(ListError::Malformed("unexpanded empty element".into()))
                }
                Event::Text(t) => return Ok(Node::Text(t.xml10_content())),
                Event::CData(c) => return Ok(Node::Text(c.xml10_content())),
                Event::GeneralRef(r) => {
                    let text = match r.resolve_char_ref().map_err(xml_error)? {
                        Some(c) => Cow::Owned(c.to_string()),
                        None => match resolve_predefined_entity(&r) {
                            Some(s) => Cow::Borrowed(s),
                            None => return Err(ListError::UnknownEntity(quote(&r))),
                        },
                    };
                    return Ok(Node::Text(text));
                }
                Event::Comment(_) | Event::PI(_) => continue,
                Event::Decl(d) => {
                    if !first {
                        return Err(ListError::Malformed("XML declaration not at start".into()));
                    }
                    if let Some(enc) = d.encoding() {
                        let enc = enc.map_err(|e| ListError::Malformed(quote(&e.to_string())))?;
                        if !enc.eq_ignore_ascii_case("utf-8") {
                            return Err(ListError::UnsupportedEncoding(quote(&enc)));
                        }
                    }
                    continue;
                }
                Event::DocType(_) => return Err(ListError::Dtd),
                Event::Eof => return Ok(Node::Eof),
            }
        }
    }

    /// Reads the attributes `names` of `tag`, ignoring the rest: namespace declarations,
    /// attributes of other namespaces, unknown names.
    fn attrs<const N: usize>(
        &self,
        tag: &Tag<'_>,
        names: [AttrName; N],
    ) -> Result<[Option<String>; N]> {
        let mut found: [Option<String>; N] = std::array::from_fn(|_| None);
        for attr in tag.start.attributes() {
            let attr = attr.map_err(|e| xml_error(e.into()))?;
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let (ns, local) = self.reader.resolver().resolve_attribute(attr.key);
            let ns: Option<&str> = match ns {
                ResolveResult::Unbound => None,
                ResolveResult::Bound(n) => Some(n.0),
                ResolveResult::Unknown(p) => return Err(ListError::UnboundPrefix(quote(&p))),
            };
            let Some(i) = names
                .iter()
                .position(|(n, l)| *n == ns && *l == local.as_ref())
            else {
                continue;
            };
            if found[i].is_some() {
                // The same name under two prefixes: two readers could pick different ones.
                return Err(ListError::Malformed(format!(
                    "attribute {} given twice",
                    names[i].1
                )));
            }
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(xml_error)?;
            check_chars(&value)?;
            found[i] = Some(value.into_owned());
        }
        Ok(found)
    }

    /// Skips the rest of an element (its nodes still count against the limits).
    fn skip(&mut self) -> Result<()> {
        let mut open = 1usize;
        while open > 0 {
            match self.next()? {
                Node::Start(_) => open += 1,
                Node::End => open -= 1,
                Node::Text(_) => {}
                Node::Eof => return Err(ListError::UnexpectedEof),
            }
        }
        Ok(())
    }

    /// Visits the child elements of the element just opened: resource-lists ones go to
    /// `visit`, foreign ones are skipped, text between them is ignored.
    fn children(&mut self, mut visit: impl FnMut(&mut Self, Tag<'i>) -> Result<()>) -> Result<()> {
        loop {
            match self.next()? {
                Node::End => return Ok(()),
                Node::Eof => return Err(ListError::UnexpectedEof),
                Node::Text(_) => {}
                Node::Start(tag) => match tag.ns {
                    Ns::Lists => visit(self, tag)?,
                    Ns::Foreign(_) => self.skip()?,
                },
            }
        }
    }

    /// The text of a text-only element such as `<display-name>`.
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
                Node::Eof => return Err(ListError::UnexpectedEof),
            }
        }
        check_chars(&out)?;
        Ok(out)
    }

    /// Counts one more entry or reference against the limit.
    fn count_entry(&mut self) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ListError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    fn document(&mut self) -> Result<()> {
        let root = loop {
            match self.next()? {
                Node::Start(tag) => break tag,
                Node::Text(t) if is_xml_space(&t) => {}
                Node::Text(_) => {
                    return Err(ListError::Malformed("text before the root element".into()))
                }
                Node::End => {
                    return Err(ListError::Malformed(
                        "end tag before the root element".into(),
                    ))
                }
                Node::Eof => return Err(ListError::NoRoot),
            }
        };
        if let Ns::Foreign(found) = &root.ns {
            return Err(ListError::WrongNamespace {
                found: found.clone(),
            });
        }
        if root.local() != "resource-lists" {
            return Err(ListError::WrongRoot(quote(root.local())));
        }
        self.children(|p, tag| match tag.local() {
            "list" => p.list(),
            _ => Err(unexpected("resource-lists", &tag)),
        })?;
        loop {
            match self.next()? {
                Node::Eof => return Ok(()),
                Node::Text(t) if is_xml_space(&t) => {}
                _ => return Err(ListError::TrailingContent),
            }
        }
    }

    /// A `<list>`: its entries join the flat result where they appear; nested lists recurse.
    fn list(&mut self) -> Result<()> {
        const EL: &str = "list";
        let mut display_name = false;
        self.children(|p, tag| match tag.local() {
            "display-name" => {
                if std::mem::replace(&mut display_name, true) {
                    return Err(ListError::Duplicate {
                        parent: EL,
                        element: "display-name",
                    });
                }
                p.text("display-name").map(drop)
            }
            "list" => p.list(),
            "entry" => {
                let entry = p.entry(&tag)?;
                p.out.entries.push(entry);
                Ok(())
            }
            "entry-ref" => {
                p.count_entry()?;
                let [reference] = p.attrs(&tag, [REF])?;
                let reference = reference.ok_or(ListError::MissingAttribute {
                    element: "entry-ref",
                    attribute: "ref",
                })?;
                p.out
                    .unresolved
                    .push(Reference::EntryRef(xml_trim(&reference).to_owned()));
                p.skip()
            }
            "external" => {
                p.count_entry()?;
                let [anchor] = p.attrs(&tag, [ANCHOR])?;
                let anchor = anchor.map(|a| xml_trim(&a).to_owned());
                p.out.unresolved.push(Reference::External(anchor));
                p.skip()
            }
            _ => Err(unexpected(EL, &tag)),
        })
    }

    fn entry(&mut self, tag: &Tag<'_>) -> Result<Entry> {
        const EL: &str = "entry";
        self.count_entry()?;
        let [uri, copy_control, anonymize, count, bare_copy_control, bare_anonymize] = self.attrs(
            tag,
            [
                URI,
                COPY_CONTROL,
                ANONYMIZE,
                COUNT,
                BARE_COPY_CONTROL,
                BARE_ANONYMIZE,
            ],
        )?;
        // Without its namespace the attribute means nothing to XML, but the sender surely
        // meant RFC 5364: ignoring a `bcc` would expose that recipient, guessing is not ours
        // to do, so the list is refused.
        if bare_copy_control.is_some() {
            return Err(ListError::Unqualified("copyControl"));
        }
        if bare_anonymize.is_some() {
            return Err(ListError::Unqualified("anonymize"));
        }
        let uri = uri.ok_or(ListError::MissingAttribute {
            element: EL,
            attribute: "uri",
        })?;
        let trimmed = xml_trim(&uri);
        if trimmed.is_empty() {
            return Err(invalid("uri", &uri));
        }
        let mut entry = Entry::new(trimmed);
        if let Some(v) = copy_control {
            entry.copy_control =
                CopyControl::from_token(xml_trim(&v)).ok_or_else(|| invalid("copyControl", &v))?;
        }
        if let Some(v) = anonymize {
            entry.anonymize = match xml_trim(&v) {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(invalid("anonymize", &v)),
            };
        }
        if let Some(v) = count {
            let n = xml_trim(&v).strip_prefix('+').unwrap_or(xml_trim(&v));
            let ok = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
            entry.count = Some(
                ok.then(|| n.parse::<u32>().ok())
                    .flatten()
                    .ok_or_else(|| invalid("count", &v))?,
            );
        }
        let mut display_name = None;
        self.children(|p, tag| match tag.local() {
            "display-name" => {
                if display_name.is_some() {
                    return Err(ListError::Duplicate {
                        parent: EL,
                        element: "display-name",
                    });
                }
                display_name = Some(p.text("display-name")?);
                Ok(())
            }
            _ => Err(unexpected(EL, &tag)),
        })?;
        entry.display_name = display_name;
        Ok(entry)
    }
}

fn invalid(attribute: &'static str, value: &str) -> ListError {
    ListError::InvalidValue {
        attribute,
        value: quote(value),
    }
}
