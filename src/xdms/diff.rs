//! The body of an xcap-diff NOTIFY (RFC 5875 §4): which documents changed. Read with the one
//! bounded reader (`crate::xml`); only the documents' selectors (and new ETags) are used, the
//! change itself is fetched, so a patch the focus cannot apply costs nothing.

use crate::body::resource_lists::ListLimits;
use crate::xml::{Fault, Node, Ns, Reader};
use thiserror::Error;

/// `urn:ietf:params:xml:ns:xcap-diff`.
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:xcap-diff";

/// A document the notice names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The document selector, relative to the XCAP root (`rls-services/users/.../index`).
    pub selector: String,
    /// `new-etag`; `None` when the document was removed or the notice does not say.
    pub new_etag: Option<String>,
}

/// Why a body is not read (the NOTIFY is then taken as "check everything").
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DiffError {
    #[error("body is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("body is not valid UTF-8")]
    NotUtf8,
    #[error("root element is not <xcap-diff> in {NAMESPACE}")]
    WrongRoot,
    #[error("xml: {0:?}")]
    Xml(Fault),
}

impl From<Fault> for DiffError {
    fn from(f: Fault) -> DiffError {
        DiffError::Xml(f)
    }
}

/// The documents an xcap-diff body names, in order. `root` is the configured XCAP root: a
/// selector written as an absolute URI under it is made relative.
pub fn parse(body: &[u8], root: &str, limits: &ListLimits) -> Result<Vec<Changed>, DiffError> {
    if body.len() > limits.max_bytes {
        return Err(DiffError::TooLarge {
            size: body.len(),
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| DiffError::NotUtf8)?;
    crate::xml::check_chars(text)?;
    let mut xml = Reader::new(text, NAMESPACE, limits.max_depth, limits.max_elements);
    let mut out = Vec::new();
    // The root first.
    loop {
        match xml.node()? {
            Node::Start(tag) if tag.ns == Ns::Ours && tag.local() == "xcap-diff" => break,
            Node::Start(_) => return Err(DiffError::WrongRoot),
            Node::Text(_) => {}
            Node::End | Node::Eof => return Err(DiffError::WrongRoot),
        }
    }
    loop {
        match xml.node()? {
            Node::Start(tag) => {
                let local = tag.local().to_owned();
                if tag.ns == Ns::Ours
                    && matches!(local.as_str(), "document" | "element" | "attribute")
                {
                    let (mut sel, mut etag) = (None, None);
                    xml.attributes::<Fault>(&tag, |ns, name, value| {
                        match (ns, name) {
                            (None, "sel") => sel = Some(value.read()?),
                            (None, "new-etag") if local == "document" => etag = Some(value.read()?),
                            _ => {}
                        }
                        Ok(true)
                    })?;
                    if let Some(sel) = sel {
                        // An element or attribute change names its document before `/~~/`.
                        let doc = sel.split("/~~/").next().unwrap_or("");
                        let selector = relative(doc, root);
                        if out.len() < limits.max_entries
                            && !out.iter().any(|c: &Changed| c.selector == selector)
                        {
                            out.push(Changed {
                                selector,
                                new_etag: etag,
                            });
                        }
                    }
                }
                xml.skip()?;
            }
            Node::Text(_) => {}
            Node::End => return Ok(out),
            Node::Eof => return Err(DiffError::Xml(Fault::UnexpectedEof)),
        }
    }
}

/// `sel` relative to the XCAP root, without a leading `/`.
fn relative(sel: &str, root: &str) -> String {
    let root = root.trim_end_matches('/');
    let rest = sel.strip_prefix(root).unwrap_or(sel);
    // A root given as a path only (`/xcap-root`).
    let path_root = root
        .split_once("://")
        .and_then(|(_, r)| r.find('/').map(|i| &r[i..]))
        .unwrap_or("");
    let rest = if !path_root.is_empty() {
        rest.strip_prefix(path_root).unwrap_or(rest)
    } else {
        rest
    };
    rest.trim_start_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "http://xdms.example.net:8080/xcap-root";

    #[test]
    fn documents_and_their_new_etags() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff" xcap-root="http://xdms.example.net:8080/xcap-root/">
  <document new-etag="7" previous-etag="6" sel="rls-services/users/sip:admin@focus.example.com/index"/>
  <document sel="http://xdms.example.net:8080/xcap-root/org.openmobilealliance.groups/users/sip:a@b/g1"/>
  <element sel="rls-services/users/sip:admin@focus.example.com/index/~~/rls-services/service%5b1%5d"/>
  <x:foreign xmlns:x="urn:x"><document sel="nope"/></x:foreign>
</xcap-diff>"#;
        let got = parse(body, ROOT, &ListLimits::default()).unwrap();
        assert_eq!(
            got,
            vec![
                Changed {
                    selector: "rls-services/users/sip:admin@focus.example.com/index".into(),
                    new_etag: Some("7".into()),
                },
                Changed {
                    selector: "org.openmobilealliance.groups/users/sip:a@b/g1".into(),
                    new_etag: None,
                },
            ]
        );
    }

    #[test]
    fn hostile_or_foreign_bodies_are_refused() {
        let limits = ListLimits::default();
        let dtd = br#"<!DOCTYPE x [<!ENTITY e "x">]><xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff"/>"#;
        assert!(parse(dtd, ROOT, &limits).is_err());
        let other = br#"<pidf xmlns="urn:ietf:params:xml:ns:pidf"/>"#;
        assert_eq!(parse(other, ROOT, &limits), Err(DiffError::WrongRoot));
        let small = ListLimits {
            max_bytes: 10,
            ..limits
        };
        assert!(matches!(
            parse(dtd, ROOT, &small),
            Err(DiffError::TooLarge { .. })
        ));
    }
}
