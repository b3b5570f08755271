//! Bounded, namespace-aware parser for `application/resource-lists+xml`.
//!
//! The list comes from a peer and decides whom the focus calls, so the parser is strict about
//! what it acts on (elements of the resource-lists namespace where the schema puts them, a
//! `uri` on every entry, valid copy-control values) and lenient where RFC 4826 allows
//! extension: elements and attributes of other namespaces are skipped. It never expands
//! entities beyond the five predefined ones and character references, rejects any DTD, reads
//! UTF-8 only, and enforces [`ListLimits`] before doing work proportional to the input.

use thiserror::Error;

use super::model::{
    CopyControl, Entry, Reference, ResourceList, COPY_CONTROL_NAMESPACE, NAMESPACE,
};
use crate::xml::{check_chars, is_xml_space, quote, xml_trim, Fault, Node, Ns, Reader, Tag};

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

impl From<Fault> for ListError {
    fn from(f: Fault) -> ListError {
        match f {
            Fault::TooDeep { limit } => ListError::TooDeep { limit },
            Fault::TooManyElements { limit } => ListError::TooManyElements { limit },
            Fault::UnsupportedEncoding(e) => ListError::UnsupportedEncoding(e),
            Fault::Dtd => ListError::Dtd,
            Fault::UnknownEntity(e) => ListError::UnknownEntity(e),
            Fault::InvalidChar(c) | Fault::IllegalCharRef { code: c, .. } => {
                ListError::InvalidChar(c)
            }
            Fault::UnboundPrefix(p) => ListError::UnboundPrefix(p),
            Fault::Malformed(m) => ListError::Malformed(m),
            Fault::UnexpectedEof => ListError::UnexpectedEof,
            Fault::UnexpectedElement { parent, child } => {
                ListError::UnexpectedElement { parent, child }
            }
        }
    }
}

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
    let mut p = Parser {
        xml: Reader::new(
            text,
            NAMESPACE,
            limits.max_depth.min(DEPTH_CAP),
            limits.max_elements,
        ),
        limits,
        entries: 0,
        out: ResourceList::default(),
    };
    p.document()?;
    Ok(p.out)
}

struct Parser<'i, 'l> {
    xml: Reader<'i>,
    limits: &'l ListLimits,
    /// Entries and references seen so far.
    entries: usize,
    out: ResourceList,
}

fn unexpected(parent: &'static str, tag: &Tag<'_>) -> ListError {
    crate::xml::unexpected(parent, tag).into()
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
    /// Reads the attributes `names` of `tag`, ignoring the rest: namespace declarations,
    /// attributes of other namespaces, unknown names.
    fn attrs<const N: usize>(
        &self,
        tag: &Tag<'_>,
        names: [AttrName; N],
    ) -> Result<[Option<String>; N]> {
        let mut found: [Option<String>; N] = std::array::from_fn(|_| None);
        self.xml.attributes(tag, |ns, local, value| {
            let Some(i) = names.iter().position(|(n, l)| *n == ns && *l == local) else {
                return Ok(true);
            };
            if found[i].is_some() {
                // The same name under two prefixes: two readers could pick different ones.
                return Err(ListError::Malformed(format!(
                    "attribute {} given twice",
                    names[i].1
                )));
            }
            found[i] = Some(value.read()?);
            Ok(true)
        })?;
        Ok(found)
    }

    /// Visits the child elements of the element just opened: resource-lists ones go to
    /// `visit`, foreign ones are skipped, text between them is ignored.
    fn children(&mut self, mut visit: impl FnMut(&mut Self, Tag<'i>) -> Result<()>) -> Result<()> {
        loop {
            match self.xml.node()? {
                Node::End => return Ok(()),
                Node::Eof => return Err(ListError::UnexpectedEof),
                Node::Text(_) => {}
                Node::Start(tag) => match tag.ns {
                    Ns::Ours => visit(self, tag)?,
                    Ns::Foreign(_) => self.xml.skip()?,
                },
            }
        }
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
            match self.xml.node()? {
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
            match self.xml.node()? {
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
                Ok(p.xml.text("display-name").map(drop)?)
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
                Ok(p.xml.skip()?)
            }
            "external" => {
                p.count_entry()?;
                let [anchor] = p.attrs(&tag, [ANCHOR])?;
                let anchor = anchor.map(|a| xml_trim(&a).to_owned());
                p.out.unresolved.push(Reference::External(anchor));
                Ok(p.xml.skip()?)
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
                display_name = Some(p.xml.text("display-name")?);
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
