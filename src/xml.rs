//! The one bounded, namespace-aware XML reader under the body parsers (resource lists,
//! conference-info). Input comes from peers, so it never expands entities other than the five
//! predefined ones and character references, rejects any DTD, reads UTF-8 only, drops comments
//! and PIs, and counts depth and elements against the caller's bounds before doing work
//! proportional to the input. Each parser keeps its own grammar and error type; this is the
//! part that is the same for both. A leaf: it imports nothing of the crate.

use std::borrow::Cow;

use quick_xml::errors::Error as QuickError;
use quick_xml::escape::{resolve_predefined_entity, EscapeError, ParseCharRefError};
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{NamespaceError, ResolveResult};
use quick_xml::reader::NsReader;
use quick_xml::XmlVersion;

/// Longest input excerpt an error may quote: errors are logged and may become reason phrases,
/// so they never carry a whole body.
const QUOTE_MAX: usize = 64;

/// `s`, cut at [`QUOTE_MAX`] bytes on a character boundary.
pub fn quote(s: &str) -> String {
    if s.len() <= QUOTE_MAX {
        return s.to_owned();
    }
    let mut end = QUOTE_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// What the reader refuses; each parser turns it into its own error (`From`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    TooDeep {
        limit: usize,
    },
    TooManyElements {
        limit: usize,
    },
    UnsupportedEncoding(String),
    Dtd,
    UnknownEntity(String),
    InvalidChar(u32),
    /// A character reference to a character XML forbids, with quick-xml's words for it.
    IllegalCharRef {
        code: u32,
        message: String,
    },
    UnboundPrefix(String),
    Malformed(String),
    UnexpectedEof,
    UnexpectedElement {
        parent: &'static str,
        child: String,
    },
}

fn fault(e: QuickError) -> Fault {
    match e {
        QuickError::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            Fault::UnknownEntity(quote(&name))
        }
        QuickError::Escape(EscapeError::InvalidCharRef(ParseCharRefError::IllegalCharacter(
            code,
        ))) => Fault::IllegalCharRef {
            code,
            message: quote(&e.to_string()),
        },
        QuickError::Namespace(NamespaceError::UnknownPrefix(p)) => Fault::UnboundPrefix(quote(&p)),
        other => Fault::Malformed(quote(&other.to_string())),
    }
}

/// XML 1.0 `Char`: what a document may contain at all, even as a character reference.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Refuses the first character XML forbids.
pub fn check_chars(s: &str) -> Result<(), Fault> {
    match s.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(Fault::InvalidChar(u32::from(c))),
        None => Ok(()),
    }
}

pub fn is_xml_space(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

pub fn xml_trim(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

/// Where an element's name resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ns {
    /// The parser's own namespace.
    Ours,
    /// Any other namespace, or none: an extension to skip. The namespace is kept only for the
    /// root element (to report it), so skipped subtrees do not allocate.
    Foreign(Option<String>),
}

/// An element just opened, with its namespace bindings still in scope.
pub struct Tag<'i> {
    pub ns: Ns,
    /// Which of the reader's extra namespaces the element is in (`ns` is then foreign): a
    /// grammar over several vocabularies (rls-services with resource-lists entries).
    pub extra: Option<usize>,
    start: BytesStart<'i>,
}

impl Tag<'_> {
    pub fn local(&self) -> &str {
        let name = self.start.name();
        let raw: &str = name.0;
        raw.rsplit(':').next().unwrap_or(raw)
    }
}

/// One step of the document, comments and PIs dropped.
pub enum Node<'i> {
    Start(Tag<'i>),
    End,
    Text(Cow<'i, str>),
    Eof,
}

/// An attribute's value, read only when the parser wants it.
pub struct Value<'a>(&'a Attribute<'a>);

impl Value<'_> {
    /// The normalized value (XML 1.0 §3.3.3), its characters checked.
    pub fn read(&self) -> Result<String, Fault> {
        let value = self
            .0
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(fault)?;
        check_chars(&value)?;
        Ok(value.into_owned())
    }
}

/// The reader over one document.
pub struct Reader<'i> {
    reader: NsReader<&'i [u8]>,
    namespace: &'static str,
    extra: &'static [&'static str],
    max_depth: usize,
    max_elements: usize,
    depth: usize,
    elements: usize,
    /// Whether any event was seen (an XML declaration is only allowed first).
    started: bool,
}

impl<'i> Reader<'i> {
    /// A reader of `text` whose elements in `namespace` are [`Ns::Ours`].
    pub fn new(
        text: &'i str,
        namespace: &'static str,
        max_depth: usize,
        max_elements: usize,
    ) -> Reader<'i> {
        let mut reader = NsReader::from_str(text);
        let config = reader.config_mut();
        // Empty elements become Start+End, so every element is handled one way.
        config.expand_empty_elements = true;
        config.trim_text(false);
        config.check_end_names = true;
        Reader {
            reader,
            namespace,
            extra: &[],
            max_depth,
            max_elements,
            depth: 0,
            elements: 0,
            started: false,
        }
    }

    /// The same reader that also tells elements of the `extra` namespaces apart
    /// ([`Tag::extra`]).
    pub fn with_extra(mut self, extra: &'static [&'static str]) -> Reader<'i> {
        self.extra = extra;
        self
    }

    pub fn node(&mut self) -> Result<Node<'i>, Fault> {
        loop {
            let (ns, event) = self.reader.read_resolved_event().map_err(fault)?;
            let extra = match &ns {
                ResolveResult::Bound(n) => self.extra.iter().position(|e| *e == n.0),
                _ => None,
            };
            let ns = match ns {
                ResolveResult::Bound(n) if n.0 == self.namespace => Ns::Ours,
                ResolveResult::Bound(n) if self.depth == 0 => Ns::Foreign(Some(quote(n.0))),
                ResolveResult::Bound(_) | ResolveResult::Unbound => Ns::Foreign(None),
                ResolveResult::Unknown(p) => return Err(Fault::UnboundPrefix(quote(&p))),
            };
            let first = !self.started;
            self.started = true;
            match event {
                Event::Start(start) => {
                    self.depth += 1;
                    self.elements += 1;
                    if self.depth > self.max_depth {
                        return Err(Fault::TooDeep {
                            limit: self.max_depth,
                        });
                    }
                    if self.elements > self.max_elements {
                        return Err(Fault::TooManyElements {
                            limit: self.max_elements,
                        });
                    }
                    return Ok(Node::Start(Tag { ns, extra, start }));
                }
                Event::End(_) => {
                    self.depth = self.depth.saturating_sub(1);
                    return Ok(Node::End);
                }
                // `expand_empty_elements` is on, so this cannot happen; refuse rather than panic.
                Event::Empty(_) => return Err(Fault::Malformed("unexpanded empty element".into())),
                Event::Text(t) => return Ok(Node::Text(t.xml10_content())),
                Event::CData(c) => return Ok(Node::Text(c.xml10_content())),
                Event::GeneralRef(r) => {
                    let text = match r.resolve_char_ref().map_err(fault)? {
                        Some(c) => Cow::Owned(c.to_string()),
                        None => match resolve_predefined_entity(&r) {
                            Some(s) => Cow::Borrowed(s),
                            None => return Err(Fault::UnknownEntity(quote(&r))),
                        },
                    };
                    return Ok(Node::Text(text));
                }
                Event::Comment(_) | Event::PI(_) => continue,
                Event::Decl(d) => {
                    if !first {
                        return Err(Fault::Malformed("XML declaration not at start".into()));
                    }
                    if let Some(enc) = d.encoding() {
                        let enc = enc.map_err(|e| Fault::Malformed(quote(&e.to_string())))?;
                        if !enc.eq_ignore_ascii_case("utf-8") {
                            return Err(Fault::UnsupportedEncoding(quote(&enc)));
                        }
                    }
                    continue;
                }
                Event::DocType(_) => return Err(Fault::Dtd),
                Event::Eof => return Ok(Node::Eof),
            }
        }
    }

    /// Calls `visit` with each attribute of `tag` that is not a namespace declaration: its
    /// namespace (`None` unprefixed), local name and value, until `visit` says stop (`false`).
    pub fn attributes<E: From<Fault>>(
        &self,
        tag: &Tag<'_>,
        mut visit: impl FnMut(Option<&str>, &str, Value<'_>) -> Result<bool, E>,
    ) -> Result<(), E> {
        for attr in tag.start.attributes() {
            let attr = attr.map_err(|e| fault(e.into()))?;
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let (ns, local) = self.reader.resolver().resolve_attribute(attr.key);
            let ns: Option<&str> = match ns {
                ResolveResult::Unbound => None,
                ResolveResult::Bound(n) => Some(n.0),
                ResolveResult::Unknown(p) => return Err(Fault::UnboundPrefix(quote(&p)).into()),
            };
            if !visit(ns, local.as_ref(), Value(&attr))? {
                break;
            }
        }
        Ok(())
    }

    /// Skips the rest of an element (its nodes still count against the limits).
    pub fn skip(&mut self) -> Result<(), Fault> {
        let mut open = 1usize;
        while open > 0 {
            match self.node()? {
                Node::Start(_) => open += 1,
                Node::End => open -= 1,
                Node::Text(_) => {}
                Node::Eof => return Err(Fault::UnexpectedEof),
            }
        }
        Ok(())
    }

    /// The text of a text-only element such as `<display-name>`.
    pub fn text(&mut self, element: &'static str) -> Result<String, Fault> {
        let mut out = String::new();
        loop {
            match self.node()? {
                Node::Text(t) => {
                    if out.is_empty() {
                        out = t.into_owned();
                    } else {
                        out.push_str(&t);
                    }
                }
                Node::End => break,
                Node::Start(tag) => return Err(unexpected(element, &tag)),
                Node::Eof => return Err(Fault::UnexpectedEof),
            }
        }
        check_chars(&out)?;
        Ok(out)
    }
}

/// A child element the schema does not put here.
pub fn unexpected(parent: &'static str, tag: &Tag<'_>) -> Fault {
    Fault::UnexpectedElement {
        parent,
        child: quote(tag.local()),
    }
}
