//! Tests of the resource-lists parser, deduplication and writers: RFC-shaped documents,
//! nesting, copy control, every error, and round-trip and no-panic properties.

use super::*;
use proptest::prelude::*;

fn parse_str(xml: &str) -> Result<ResourceList, ListError> {
    parse(xml.as_bytes(), &ListLimits::default())
}

/// A document with the usual namespace declarations around `inner` (the children of the root).
fn doc(inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\" \
         xmlns:cp=\"urn:ietf:params:xml:ns:copycontrol\">{inner}</resource-lists>"
    )
}

fn uris(list: &ResourceList) -> Vec<&str> {
    list.entries.iter().map(|e| e.uri.as_str()).collect()
}

/// RFC 4826 §3.3's example document, shortened: nested lists, display names, an `entry-ref`
/// and an `external`.
const RFC_4826_EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <list name="friends">
   <entry uri="sip:bill@example.com">
    <display-name>Bill Doe</display-name>
   </entry>
   <entry-ref ref="resource-lists/users/sip:bill@example.com/index/~~/resource-lists/list%5b@name=%22list1%22%5d/entry%5b@uri=%22sip:petri@example.com%22%5d"/>
   <list name="close-friends">
    <display-name>Close Friends</display-name>
    <entry uri="sip:joe@example.com">
     <display-name>Joe Smith</display-name>
    </entry>
    <entry uri="sip:nancy@example.com">
     <display-name>Nancy Gross</display-name>
    </entry>
    <external anchor="http://xcap.example.org/resource-lists/users/sip:a@example.org/index/~~/resource-lists/list%5b@name=%22mkting%22%5d">
      <display-name>Marketing</display-name>
    </external>
   </list>
  </list>
</resource-lists>"#;

#[test]
fn rfc_4826_example_flattens_in_document_order() {
    let list = parse_str(RFC_4826_EXAMPLE).unwrap();
    assert_eq!(
        uris(&list),
        [
            "sip:bill@example.com",
            "sip:joe@example.com",
            "sip:nancy@example.com"
        ]
    );
    let names: Vec<_> = list
        .entries
        .iter()
        .map(|e| e.display_name.as_deref())
        .collect();
    assert_eq!(
        names,
        [Some("Bill Doe"), Some("Joe Smith"), Some("Nancy Gross")]
    );
    assert!(list
        .entries
        .iter()
        .all(|e| e.copy_control == CopyControl::To && !e.anonymize && e.count.is_none()));
    assert_eq!(list.unresolved.len(), 2);
    assert!(
        matches!(&list.unresolved[0], Reference::EntryRef(r) if r.starts_with("resource-lists/users/"))
    );
    assert!(
        matches!(&list.unresolved[1], Reference::External(Some(a)) if a.starts_with("http://xcap."))
    );
}

#[test]
fn copy_control_and_anonymize() {
    let list = parse_str(&doc(r#"<list>
        <entry uri="sip:a@x"/>
        <entry uri="sip:b@x" cp:copyControl="to"/>
        <entry uri="sip:c@x" cp:copyControl=" CC "/>
        <entry uri="sip:d@x" cp:copyControl="bcc" cp:anonymize="true"/>
        <entry uri="sip:e@x" cp:anonymize="1"/>
        <entry uri="sip:f@x" cp:anonymize="false"/>
        <entry uri="sip:g@x" cp:anonymize="0"/>
        <entry uri="sip:h@x" cp:copyControl="cc" cp:count="3"/>
        </list>"#))
    .unwrap();
    let got: Vec<_> = list
        .entries
        .iter()
        .map(|e| (e.copy_control, e.anonymize, e.count))
        .collect();
    use CopyControl::*;
    assert_eq!(
        got,
        [
            (To, false, None),
            (To, false, None),
            (Cc, false, None),
            (Bcc, true, None),
            (To, true, None),
            (To, false, None),
            (To, false, None),
            (Cc, false, Some(3)),
        ]
    );
}

#[test]
fn namespaces_decide_not_prefixes() {
    // Prefixed resource-lists elements, another prefix for copy control, a default namespace
    // redeclared inside.
    let xml = r#"<rl:resource-lists xmlns:rl="urn:ietf:params:xml:ns:resource-lists"
        xmlns:c="urn:ietf:params:xml:ns:copycontrol" xmlns:x="urn:example:ext">
      <rl:list x:flag="1">
        <rl:entry uri="sip:a@x" c:copyControl="cc" x:copyControl="bcc" x:anonymize="true">
          <rl:display-name xml:lang="en">A</rl:display-name>
          <x:note><rl:entry uri="sip:hidden@x"/></x:note>
        </rl:entry>
        <x:entry uri="sip:foreign@x"/>
        <entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="sip:b@x"/>
        <entry uri="sip:unbound@x"/>
      </rl:list>
      <x:list><rl:entry uri="sip:also-hidden@x"/></x:list>
    </rl:resource-lists>"#;
    let list = parse_str(xml).unwrap();
    assert_eq!(uris(&list), ["sip:a@x", "sip:b@x"]);
    let a = &list.entries[0];
    assert_eq!(a.copy_control, CopyControl::Cc);
    assert!(
        !a.anonymize,
        "only the copycontrol namespace's anonymize counts"
    );
    assert_eq!(a.display_name.as_deref(), Some("A"));

    // The RFC 5364 attributes without their namespace: refused rather than ignored, since
    // ignoring `bcc` would expose the recipient.
    for (attr, name) in [
        ("copyControl=\"bcc\"", "copyControl"),
        ("anonymize=\"true\"", "anonymize"),
    ] {
        let xml = doc(&format!("<list><entry uri=\"sip:a@x\" {attr}/></list>"));
        assert_eq!(parse_str(&xml), Err(ListError::Unqualified(name)));
    }
}

#[test]
fn display_names_and_uris_keep_their_text() {
    let list = parse_str(&doc(
        "<list><entry uri=\" \tsip:a@x&#10; \"><display-name> Ann &amp; &#x42;ob &lt;3 \
         <![CDATA[<raw>]]></display-name></entry>\
         <entry uri=\"tel:+1-212-555-1212\"><display-name></display-name></entry></list>",
    ))
    .unwrap();
    assert_eq!(list.entries[0].uri, "sip:a@x");
    assert_eq!(
        list.entries[0].display_name.as_deref(),
        Some(" Ann & Bob <3 <raw>")
    );
    assert_eq!(list.entries[1].uri, "tel:+1-212-555-1212");
    assert_eq!(list.entries[1].display_name.as_deref(), Some(""));
}

#[test]
fn documents_without_entries() {
    assert_eq!(parse_str(&doc("")).unwrap(), ResourceList::default());
    assert_eq!(
        parse_str(&doc("<list/><list></list>")).unwrap(),
        ResourceList::default()
    );
    // BOM, comments, processing instructions, trailing whitespace.
    let xml = doc("<list><entry uri=\"sip:a@x\"/></list>").replace("?>\n", "?><!-- c --><?pi x?>");
    let xml = format!("\u{FEFF}{xml}\n<!-- after -->\n");
    assert_eq!(uris(&parse_str(&xml).unwrap()), ["sip:a@x"]);
}

#[test]
fn every_parse_error() {
    let entry = |attrs: &str| doc(&format!("<list><entry {attrs}/></list>"));
    let cases: Vec<(String, ListError)> = vec![
        ("".into(), ListError::NoRoot),
        ("<!-- only a comment -->".into(), ListError::NoRoot),
        (
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><resource-lists/>".into(),
            ListError::UnsupportedEncoding("ISO-8859-1".into()),
        ),
        (
            "<!DOCTYPE resource-lists [<!ENTITY x \"y\">]><resource-lists/>".into(),
            ListError::Dtd,
        ),
        (
            doc("<list><entry uri=\"&x;\"/></list>"),
            ListError::UnknownEntity("x".into()),
        ),
        (
            doc("<list><entry uri=\"sip:a@x\"><display-name>&bomb;</display-name></entry></list>"),
            ListError::UnknownEntity("bomb".into()),
        ),
        (
            doc("<list><entry uri=\"sip:a@x\"><display-name>&#1;</display-name></entry></list>"),
            ListError::InvalidChar(1),
        ),
        (entry("uri=\"sip:a@x&#0;\""), ListError::InvalidChar(0)),
        (
            doc("<list><q:entry uri=\"sip:a@x\"/></list>"),
            ListError::UnboundPrefix("q".into()),
        ),
        (
            entry("uri=\"sip:a@x\" q:copyControl=\"cc\""),
            ListError::UnboundPrefix("q".into()),
        ),
        (
            "text<resource-lists/>".into(),
            ListError::Malformed("text before the root element".into()),
        ),
        (
            "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/><x/>".into(),
            ListError::TrailingContent,
        ),
        (
            "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/>text".into(),
            ListError::TrailingContent,
        ),
        (
            "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list>".into(),
            ListError::UnexpectedEof,
        ),
        (
            "<lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/>".into(),
            ListError::WrongRoot("lists".into()),
        ),
        (
            "<resource-lists/>".into(),
            ListError::WrongNamespace { found: None },
        ),
        (
            "<resource-lists xmlns=\"urn:ietf:params:xml:ns:rls-services\"/>".into(),
            ListError::WrongNamespace {
                found: Some("urn:ietf:params:xml:ns:rls-services".into()),
            },
        ),
        (
            doc("<entry uri=\"sip:a@x\"/>"),
            ListError::UnexpectedElement {
                parent: "resource-lists",
                child: "entry".into(),
            },
        ),
        (
            doc("<list><lst/></list>"),
            ListError::UnexpectedElement {
                parent: "list",
                child: "lst".into(),
            },
        ),
        (
            doc("<list><entry uri=\"sip:a@x\"><entry uri=\"sip:b@x\"/></entry></list>"),
            ListError::UnexpectedElement {
                parent: "entry",
                child: "entry".into(),
            },
        ),
        (
            doc("<list><entry uri=\"sip:a@x\"><display-name>a<b/></display-name></entry></list>"),
            ListError::UnexpectedElement {
                parent: "display-name",
                child: "b".into(),
            },
        ),
        (
            doc("<list><entry uri=\"sip:a@x\"><display-name/><display-name/></entry></list>"),
            ListError::Duplicate {
                parent: "entry",
                element: "display-name",
            },
        ),
        (
            doc("<list><display-name/><display-name/></list>"),
            ListError::Duplicate {
                parent: "list",
                element: "display-name",
            },
        ),
        (
            entry("cp:copyControl=\"to\""),
            ListError::MissingAttribute {
                element: "entry",
                attribute: "uri",
            },
        ),
        (
            doc("<list><entry-ref/></list>"),
            ListError::MissingAttribute {
                element: "entry-ref",
                attribute: "ref",
            },
        ),
        (
            entry("uri=\" \""),
            ListError::InvalidValue {
                attribute: "uri",
                value: " ".into(),
            },
        ),
        (
            entry("uri=\"sip:a@x\" cp:copyControl=\"from\""),
            ListError::InvalidValue {
                attribute: "copyControl",
                value: "from".into(),
            },
        ),
        (
            entry("uri=\"sip:a@x\" cp:anonymize=\"yes\""),
            ListError::InvalidValue {
                attribute: "anonymize",
                value: "yes".into(),
            },
        ),
        (
            entry("uri=\"sip:a@x\" cp:count=\"-1\""),
            ListError::InvalidValue {
                attribute: "count",
                value: "-1".into(),
            },
        ),
        (
            entry("uri=\"sip:a@x\" cp:count=\"4294967296\""),
            ListError::InvalidValue {
                attribute: "count",
                value: "4294967296".into(),
            },
        ),
        (
            entry(
                "uri=\"sip:a@x\" cp:copyControl=\"cc\" c2:copyControl=\"bcc\" \
                   xmlns:c2=\"urn:ietf:params:xml:ns:copycontrol\"",
            ),
            ListError::Malformed("attribute copyControl given twice".into()),
        ),
    ];
    for (xml, err) in &cases {
        assert_eq!(parse_str(xml).as_ref(), Err(err), "{xml}");
    }
    assert_eq!(
        parse(
            b"<resource-lists>\xff</resource-lists>",
            &ListLimits::default()
        ),
        Err(ListError::NotUtf8)
    );
    // UTF-16 is not UTF-8; without its BOM, its NULs are not XML.
    let utf16: Vec<u8> = doc("").encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert_eq!(
        parse(&utf16, &ListLimits::default()),
        Err(ListError::InvalidChar(0))
    );
    let with_bom = [&[0xFF, 0xFE][..], &utf16].concat();
    assert_eq!(
        parse(&with_bom, &ListLimits::default()),
        Err(ListError::NotUtf8)
    );
    assert_eq!(
        parse_str(&doc("<!-- \u{1} --><list/>")),
        Err(ListError::InvalidChar(1))
    );
    assert_eq!(
        parse_str(&doc("<list/>\u{FFFF}")),
        Err(ListError::InvalidChar(0xFFFF))
    );
    // Ill-formed XML is reported, not guessed at.
    for bad in [
        doc("<list></lst>"),
        doc("<list><entry uri=\"a\" uri=\"b\"/></list>"),
        doc("<list><entry uri=a/></list>"),
        "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"></resource-lists><?xml version=\"1.0\"?>".into(),
    ] {
        assert!(
            matches!(parse_str(&bad), Err(ListError::Malformed(_) | ListError::TrailingContent)),
            "{bad}: {:?}",
            parse_str(&bad)
        );
    }
}

#[test]
fn limits() {
    let limits = ListLimits {
        max_bytes: 10_000,
        max_depth: 4,
        max_elements: 20,
        max_entries: 3,
    };
    let big = doc(&"<list/>".repeat(2_000));
    assert_eq!(
        parse(big.as_bytes(), &limits),
        Err(ListError::TooLarge {
            size: big.len(),
            limit: 10_000
        })
    );
    // resource-lists/list/list/entry is depth 4; one more list is too deep.
    let ok = doc("<list><list><entry uri=\"sip:a@x\"/></list></list>");
    assert!(parse(ok.as_bytes(), &limits).is_ok());
    let deep = doc("<list><list><list><entry uri=\"sip:a@x\"/></list></list></list>");
    assert_eq!(
        parse(deep.as_bytes(), &limits),
        Err(ListError::TooDeep { limit: 4 })
    );
    // Foreign elements count too.
    let deep =
        doc("<list><entry uri=\"sip:a@x\"><x:a xmlns:x=\"urn:x\"><x:b/></x:a></entry></list>");
    assert_eq!(
        parse(deep.as_bytes(), &limits),
        Err(ListError::TooDeep { limit: 4 })
    );
    let many = doc(&"<list/>".repeat(20));
    assert_eq!(
        parse(many.as_bytes(), &limits),
        Err(ListError::TooManyElements { limit: 20 })
    );
    let three = doc("<list><entry uri=\"sip:a@x\"/><entry-ref ref=\"r\"/><external/></list>");
    assert!(parse(three.as_bytes(), &limits).is_ok());
    let four = doc("<list><entry uri=\"sip:a@x\"/><entry-ref ref=\"r\"/><external/><entry uri=\"sip:b@x\"/></list>");
    assert_eq!(
        parse(four.as_bytes(), &limits),
        Err(ListError::TooManyEntries { limit: 3 })
    );
    // Whatever the caller asks, nesting stays within the cap.
    let huge = ListLimits {
        max_depth: usize::MAX,
        ..ListLimits::default()
    };
    let deep = doc(&format!(
        "{}{}",
        "<list>".repeat(300),
        "</list>".repeat(300)
    ));
    assert_eq!(
        parse(deep.as_bytes(), &huge),
        Err(ListError::TooDeep {
            limit: parse::DEPTH_CAP
        })
    );
}

#[test]
fn dedup_keeps_first_and_the_most_private_attributes() {
    let mut list = ResourceList {
        entries: vec![
            Entry::new("sip:alice@example.com").with_display_name("Alice"),
            Entry::new("sip:bob@example.com"),
            Entry::new("sip:%61lice@EXAMPLE.com;transport=tcp").with_copy_control(CopyControl::Bcc),
            Entry::new("sip:Bob@example.com"),
            Entry::new("sip:bob@example.com?subject=x")
                .with_copy_control(CopyControl::Cc)
                .with_display_name("Bob")
                .anonymized(),
            Entry::new("sip:carol@example.com").with_copy_control(CopyControl::Cc),
            Entry::new("sip:carol@example.com"),
        ],
        unresolved: vec![],
    };
    assert_eq!(list.dedup(), 4 - 1);
    assert_eq!(
        list.entries,
        [
            Entry::new("sip:alice@example.com")
                .with_display_name("Alice")
                .with_copy_control(CopyControl::Bcc),
            Entry::new("sip:bob@example.com")
                .with_copy_control(CopyControl::Cc)
                .with_display_name("Bob")
                .anonymized(),
            Entry::new("sip:Bob@example.com"),
            Entry::new("sip:carol@example.com").with_copy_control(CopyControl::Cc),
        ]
    );
    assert_eq!(list.dedup(), 0);
}

#[test]
fn recipient_keys() {
    let same = [
        ("sip:alice@atlanta.com", "sip:%61lice@ATLANTA.COM"),
        (
            "sip:alice@atlanta.com",
            " sip:alice@atlanta.com;transport=tcp?subject=x ",
        ),
        ("sip:alice@atlanta.com", "SIP:alice:secret@atlanta.com"),
        ("sip:[2001:db8::1]", "sip:[2001:db8:0::1]"),
        ("sip:bob@x;method=bye", "sip:bob@x;method=BYE"),
        ("tel:+1-212-555-1212", "tel:+1.212.555(1212)"),
        (
            "tel:7042;phone-context=Example.com",
            "tel:70-42;phone-context=example.com",
        ),
        (
            "tel:+1-212-555-1212;ext=1-2",
            "tel:+12125551212;isub=x;ext=12",
        ),
        ("mailto:a@example.com", "MAILTO:a@example.com"),
        ("not a uri", "not a uri"),
    ];
    for (a, b) in same {
        assert_eq!(recipient_key(a), recipient_key(b), "{a} vs {b}");
    }
    let different = [
        ("sip:alice@atlanta.com", "sip:Alice@atlanta.com"),
        ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
        ("sip:alice@atlanta.com", "sip:alice@atlanta.com:5060"),
        ("sip:alice@atlanta.com", "sip:alice@atlanta.com;method=BYE"),
        ("sip:alice@atlanta.com", "sip:atlanta.com"),
        ("tel:+12125551212", "tel:12125551212"),
        (
            "tel:7042;phone-context=a.com",
            "tel:7042;phone-context=b.com",
        ),
        ("tel:+12125551212;ext=1", "tel:+12125551212"),
        ("mailto:a@example.com", "mailto:A@example.com"),
        ("sip:alice@atlanta.com", "sip:alice@atlanta.com bad"),
        ("mailto:x", "~mailto:x"),
    ];
    for (a, b) in different {
        assert_ne!(recipient_key(a), recipient_key(b), "{a} vs {b}");
    }
}

#[test]
fn history_hides_bcc_and_masks_anonymized() {
    let entries = vec![
        Entry::new("sip:bill@example.com").with_display_name("Bill"),
        Entry::new("sip:randy@example.net")
            .with_display_name("Randy")
            .anonymized(),
        Entry::new("sip:eddy@example.com").anonymized(),
        Entry::new("sip:joe@example.org").with_copy_control(CopyControl::Cc),
        Entry::new("sip:carol@example.net")
            .with_copy_control(CopyControl::Cc)
            .anonymized(),
        Entry::new("sip:ted@example.net").with_copy_control(CopyControl::Bcc),
        Entry::new("sip:andy@example.com")
            .with_copy_control(CopyControl::Bcc)
            .anonymized(),
    ];
    let xml = render_history(&entries);
    for secret in ["randy", "Randy", "eddy", "carol", "ted", "andy", "bcc"] {
        assert!(!xml.contains(secret), "{secret} leaked into {xml}");
    }
    let seen = parse_str(&xml).unwrap();
    assert_eq!(
        seen.entries,
        [
            Entry::new("sip:bill@example.com").with_display_name("Bill"),
            Entry {
                count: Some(2),
                ..Entry::new(ANONYMOUS_URI)
            },
            Entry::new("sip:joe@example.org").with_copy_control(CopyControl::Cc),
            Entry {
                count: Some(1),
                copy_control: CopyControl::Cc,
                ..Entry::new(ANONYMOUS_URI)
            },
        ]
    );
    // Nobody visible: an empty list, still a valid document.
    let only_bcc = [Entry::new("sip:ted@example.net").with_copy_control(CopyControl::Bcc)];
    assert_eq!(
        parse_str(&render_history(&only_bcc)).unwrap(),
        ResourceList::default()
    );
}

#[test]
fn render_escapes_hostile_text() {
    let entries = [Entry::new("sip:a@x?h=\"<&>'\"")
        .with_display_name("</display-name><entry uri=\"sip:evil@x\"/>\r\n\t\u{1}\u{FFFE}")];
    let xml = render(&entries);
    let back = parse_str(&xml).unwrap();
    assert_eq!(back.entries.len(), 1);
    assert_eq!(back.entries[0].uri, "sip:a@x?h=\"<&>'\"");
    assert_eq!(
        back.entries[0].display_name.as_deref(),
        Some("</display-name><entry uri=\"sip:evil@x\"/>\r\n\t\u{FFFD}\u{FFFD}")
    );
}

fn entry_strategy() -> impl Strategy<Value = Entry> {
    (
        // No surrounding XML whitespace (the parser trims it), never empty.
        "(sip|tel|mailto):[!-~é]([ -~\t\né<>&\"']{0,20}[!-~é])?",
        proptest::option::of("[ -~\t\n\ré<>&\"']{0,20}"),
        prop_oneof![
            Just(CopyControl::To),
            Just(CopyControl::Cc),
            Just(CopyControl::Bcc)
        ],
        any::<bool>(),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(
            |(uri, display_name, copy_control, anonymize, count)| Entry {
                uri,
                display_name,
                copy_control,
                anonymize,
                count,
            },
        )
}

proptest! {
    #[test]
    fn render_parse_round_trip(entries in proptest::collection::vec(entry_strategy(), 0..8)) {
        let back = parse_str(&render(&entries)).unwrap();
        prop_assert_eq!(back.entries, entries);
        prop_assert!(back.unresolved.is_empty());
    }

    #[test]
    fn history_never_shows_bcc_or_anonymized(entries in proptest::collection::vec(entry_strategy(), 0..8)) {
        let seen = parse_str(&render_history(&entries)).unwrap();
        let visible: Vec<_> = entries
            .iter()
            .filter(|e| e.copy_control != CopyControl::Bcc && !e.anonymize)
            .map(|e| (e.uri.clone(), e.display_name.clone(), e.copy_control))
            .collect();
        let shown: Vec<_> = seen
            .entries
            .iter()
            .filter(|e| e.count.is_none())
            .map(|e| (e.uri.clone(), e.display_name.clone(), e.copy_control))
            .collect();
        prop_assert_eq!(shown, visible);
        for masked in seen.entries.iter().filter(|e| e.count.is_some()) {
            prop_assert_eq!(masked.uri.as_str(), ANONYMOUS_URI);
            prop_assert!(masked.display_name.is_none());
            prop_assert_ne!(masked.copy_control, CopyControl::Bcc);
            let n = entries
                .iter()
                .filter(|e| e.anonymize && e.copy_control == masked.copy_control)
                .count();
            prop_assert_eq!(masked.count, Some(n as u32));
        }
    }

    #[test]
    fn dedup_leaves_distinct_keys(entries in proptest::collection::vec(entry_strategy(), 0..12)) {
        let mut list = ResourceList { entries: entries.clone(), unresolved: vec![] };
        let removed = list.dedup();
        prop_assert_eq!(removed + list.entries.len(), entries.len());
        let mut keys: Vec<_> = list.entries.iter().map(|e| recipient_key(&e.uri)).collect();
        keys.sort();
        keys.dedup();
        prop_assert_eq!(keys.len(), list.entries.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes, &ListLimits::default());
    }

    /// Damaged valid documents: an error or a result, never a panic.
    #[test]
    fn damaged_documents_never_panic(entries in proptest::collection::vec(entry_strategy(), 1..4),
                                     at in any::<prop::sample::Index>(),
                                     insert in "[<>&;:=\"'/!?a-z \\[\\]-]{0,6}") {
        let xml = render(&entries);
        let mut i = at.index(xml.len());
        while !xml.is_char_boundary(i) {
            i -= 1;
        }
        let damaged = format!("{}{}{}", &xml[..i], insert, &xml[i..]);
        let _ = parse_str(&damaged);
        let _ = parse_str(&xml[..i]);
    }
}
