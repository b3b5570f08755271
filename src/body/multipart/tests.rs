//! Tests of the multipart codec: bodies shaped like the RFC 5366, 5365 and 5368 examples,
//! framing edge cases, every error, and round-trip and no-panic properties.

use super::*;
use crate::body::resource_lists::{self, CopyControl, ListLimits};
use bytes::Bytes;
use proptest::prelude::*;
use rand::SeedableRng;

fn parse_str(content_type: &str, body: &str) -> Result<Multipart, MultipartError> {
    parse(
        content_type,
        Bytes::copy_from_slice(body.as_bytes()),
        &MultipartLimits::default(),
    )
}

const MIXED: &str = "multipart/mixed;boundary=\"boundary1\"";

/// The body of RFC 5366 §5's example INVITE to a conference factory: an SDP offer and the
/// URI list, one entry anonymized, one cc and one bcc.
const RFC_5366_BODY: &str = "--boundary1\r\n\
Content-Type: application/sdp\r\n\
\r\n\
v=0\r\n\
o=carol 2890844526 2890842807 IN IP4 atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.1\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n\
m=video 20002 RTP/AVP 31\r\n\
a=rtpmap:31 H261/90000\r\n\
\r\n\
--boundary1\r\n\
Content-Type: application/resource-lists+xml\r\n\
Content-Disposition: recipient-list\r\n\
\r\n\
<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"\r\n\
       xmlns:cp=\"urn:ietf:params:xml:ns:copycontrol\">\r\n\
  <list>\r\n\
    <entry uri=\"sip:bill@example.com\" cp:copyControl=\"to\" />\r\n\
    <entry uri=\"sip:randy@example.net\" cp:copyControl=\"to\"\r\n\
                                        cp:anonymize=\"true\"/>\r\n\
    <entry uri=\"sip:eddy@example.com\" cp:copyControl=\"to\"\r\n\
                                        cp:anonymize=\"true\"/>\r\n\
    <entry uri=\"sip:joe@example.org\" cp:copyControl=\"cc\" />\r\n\
    <entry uri=\"sip:carol@example.net\" cp:copyControl=\"cc\"\r\n\
                                        cp:anonymize=\"true\"/>\r\n\
    <entry uri=\"sip:ted@example.net\" cp:copyControl=\"bcc\" />\r\n\
    <entry uri=\"sip:andy@example.com\" cp:copyControl=\"bcc\" />\r\n\
  </list>\r\n\
</resource-lists>\r\n\
--boundary1--\r\n";

/// The body of RFC 5365's example MESSAGE to a URI-list service.
const RFC_5365_BODY: &str = "--boundary1\r\n\
Content-Type: text/plain\r\n\
\r\n\
Hello World!\r\n\
\r\n\
--boundary1\r\n\
Content-Type: application/resource-lists+xml\r\n\
Content-Disposition: recipient-list\r\n\
\r\n\
<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"\r\n\
       xmlns:cp=\"urn:ietf:params:xml:ns:copycontrol\">\r\n\
  <list>\r\n\
    <entry uri=\"sip:bill@example.com\" cp:copyControl=\"to\" />\r\n\
    <entry uri=\"sip:joe@example.org\" cp:copyControl=\"cc\" />\r\n\
    <entry uri=\"sip:ted@example.net\" cp:copyControl=\"bcc\" />\r\n\
  </list>\r\n\
</resource-lists>\r\n\
--boundary1--\r\n";

#[test]
fn rfc_5366_invite_with_uri_list() {
    let m = parse_str(MIXED, RFC_5366_BODY).unwrap();
    assert_eq!(m.subtype, "mixed");
    assert!(m.params.is_empty());
    assert_eq!(m.parts.len(), 2);

    let sdp = &m.parts[0];
    assert_eq!(sdp.content_type(), Some("application/sdp"));
    assert!(sdp.is_content_type("APPLICATION/SDP"));
    assert_eq!(sdp.disposition(), None);
    assert!(sdp.body.starts_with(b"v=0\r\n"));
    // The blank line before the delimiter: its CRLF is the body's, the next the delimiter's.
    assert!(sdp.body.ends_with(b"a=rtpmap:31 H261/90000\r\n"));

    let list = m.find_by_disposition(RECIPIENT_LIST).unwrap();
    assert!(list.is_content_type(resource_lists::MIME_TYPE));
    assert!(!list.handling_optional());
    assert_eq!(m.count_disposition("Recipient-List"), 1);
    assert!(list.body.starts_with(b"<?xml"));
    assert!(list.body.ends_with(b"</resource-lists>"));

    let doc = resource_lists::parse(&list.body, &ListLimits::default()).unwrap();
    let got: Vec<_> = doc
        .entries
        .iter()
        .map(|e| (e.uri.as_str(), e.copy_control, e.anonymize))
        .collect();
    assert_eq!(
        got,
        [
            ("sip:bill@example.com", CopyControl::To, false),
            ("sip:randy@example.net", CopyControl::To, true),
            ("sip:eddy@example.com", CopyControl::To, true),
            ("sip:joe@example.org", CopyControl::Cc, false),
            ("sip:carol@example.net", CopyControl::Cc, true),
            ("sip:ted@example.net", CopyControl::Bcc, false),
            ("sip:andy@example.com", CopyControl::Bcc, false),
        ]
    );
}

#[test]
fn bodies_are_slices_of_the_input() {
    let input = Bytes::from_static(RFC_5366_BODY.as_bytes());
    let m = parse(MIXED, input.clone(), &MultipartLimits::default()).unwrap();
    let range = input.as_ptr_range();
    for part in &m.parts {
        assert!(range.contains(&part.body.as_ptr()));
    }
}

#[test]
fn rfc_5365_message_exploder_and_history() {
    let m = parse_str(MIXED, RFC_5365_BODY).unwrap();
    let payload = &m.parts[0];
    assert!(payload.is_content_type("text/plain"));
    assert_eq!(&payload.body[..], b"Hello World!\r\n");
    let list_part = m.find_by_disposition(RECIPIENT_LIST).unwrap();
    let list = resource_lists::parse(&list_part.body, &ListLimits::default()).unwrap();
    assert_eq!(list.entries.len(), 3);

    // What the exploder sends each recipient: the payload and the history, without bcc.
    let history = resource_lists::render_history(&list.entries);
    let out = Multipart::mixed(vec![
        payload.clone(),
        Part::new(resource_lists::MIME_TYPE, history)
            .with_disposition("recipient-list-history; handling=optional"),
    ]);
    let (content_type, body) = out.encode_with_new_boundary().unwrap();
    assert!(content_type.starts_with("multipart/mixed;boundary=\"cpm-"));
    let back = parse(&content_type, body, &MultipartLimits::default()).unwrap();
    assert_eq!(back, out);
    let h = back.find_by_disposition(RECIPIENT_LIST_HISTORY).unwrap();
    assert!(h.handling_optional());
    assert_eq!(h.disposition_param("HANDLING").as_deref(), Some("optional"));
    let seen = resource_lists::parse(&h.body, &ListLimits::default()).unwrap();
    let uris: Vec<_> = seen.entries.iter().map(|e| e.uri.as_str()).collect();
    assert_eq!(uris, ["sip:bill@example.com", "sip:joe@example.org"]);
    assert_eq!(back.find_by_disposition(RECIPIENT_LIST), None);
}

/// RFC 5368's REFER names its URI list by `Refer-To: <cid:cn35t8jf02@example.com>`; here the
/// list travels as a part of a multipart body with that Content-ID.
#[test]
fn rfc_5368_refer_by_content_id() {
    let body = "--bnd\r\n\
Content-Type: application/resource-lists+xml\r\n\
Content-Disposition: recipient-list\r\n\
Content-ID: <cn35t8jf02@example.com>\r\n\
\r\n\
<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\r\n\
  <list>\r\n\
    <entry uri=\"sip:bill@example.com\"/>\r\n\
    <entry uri=\"sip:joe@example.org;method=BYE\"/>\r\n\
    <entry uri=\"sip:ted@example.net\"/>\r\n\
  </list>\r\n\
</resource-lists>\r\n\
--bnd\r\n\
Content-Type: text/plain\r\n\
Content-ID: other@example.com\r\n\
\r\n\
not the list\r\n\
--bnd--";
    let m = parse_str("multipart/mixed; boundary=bnd", body).unwrap();
    let list = &m.parts[0];
    assert_eq!(list.content_id(), Some("cn35t8jf02@example.com"));
    for cid in [
        "<cid:cn35t8jf02@example.com>",
        "cid:cn35t8jf02@example.com",
        "CID:cn35t8jf02%40example.com",
        " <cid:cn35t8jf02@example.com> ",
        "<cn35t8jf02@example.com>",
        "cn35t8jf02@example.com",
    ] {
        assert_eq!(m.find_by_content_id(cid), Some(list), "{cid}");
    }
    assert_eq!(
        m.find_by_content_id("cid:other@example.com"),
        Some(&m.parts[1])
    );
    for miss in [
        "cid:CN35T8JF02@example.com",
        "cid:",
        "<>",
        "",
        "cid:nobody@example.com",
    ] {
        assert_eq!(m.find_by_content_id(miss), None, "{miss}");
    }
    let doc = resource_lists::parse(&list.body, &ListLimits::default()).unwrap();
    assert_eq!(doc.entries[1].uri, "sip:joe@example.org;method=BYE");
}

#[test]
fn lf_only_line_ends() {
    let body = RFC_5365_BODY.replace("\r\n", "\n");
    let m = parse_str(MIXED, &body).unwrap();
    assert_eq!(&m.parts[0].body[..], b"Hello World!\n");
    assert!(m.parts[1].is_disposition("recipient-list"));
    assert!(m.parts[1].body.ends_with(b"</resource-lists>"));
}

#[test]
fn preamble_epilogue_and_padding_are_ignored() {
    let body = "This is the preamble.\r\n--b\r\n\r\n--notadelimiter\r\n--b \t\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\nsecond\r\n--b-- trailing\r\n\
This is the epilogue.\r\n--b\r\nignored\r\n";
    let m = parse_str("multipart/alternative; boundary=b", body).unwrap();
    assert_eq!(m.subtype, "alternative");
    assert_eq!(m.parts.len(), 2);
    assert!(m.parts[0].headers.is_empty());
    assert_eq!(&m.parts[0].body[..], b"--notadelimiter");
    assert!(m.parts[0].is_content_type("text/plain"), "RFC 2046 default");
    assert_eq!(
        m.parts[1].content_type_param("CHARSET").as_deref(),
        Some("utf-8")
    );
    assert_eq!(&m.parts[1].body[..], b"second");
}

#[test]
fn content_type_variants() {
    let body = "--a'(b)+_,-./:=? z\r\n\r\nx\r\n--a'(b)+_,-./:=? z--";
    let m = parse_str(
        "Multipart/Related; type=\"application/rlmi+xml\"; \
         start=\"<nXYxAE@pres.vancouver.example.com>\"; BOUNDARY=\"a'(b)+_,-./:=? z\"",
        body,
    )
    .unwrap();
    assert_eq!(m.subtype, "related");
    assert_eq!(
        m.params,
        [
            ("type".to_owned(), "application/rlmi+xml".to_owned()),
            (
                "start".to_owned(),
                "<nXYxAE@pres.vancouver.example.com>".to_owned()
            ),
        ]
    );
    // Unquoted, with `=` as Java mailers write it.
    let m = parse_str(
        "multipart/mixed; boundary=----=_Part_0_1",
        "------=_Part_0_1\r\n\r\nx\r\n------=_Part_0_1--\r\n",
    )
    .unwrap();
    assert_eq!(&m.parts[0].body[..], b"x");
}

#[test]
fn empty_parts_and_parts_without_body() {
    // No headers and no body; headers and no blank line; headers, blank line, empty body.
    let body = "--b\r\n\r\n--b\r\nContent-Type: text/plain\r\n--b\r\nContent-ID: <x@y>\r\n\r\n\r\n--b\r\n--b--";
    let m = parse_str("multipart/mixed;boundary=b", body).unwrap();
    assert_eq!(m.parts.len(), 4);
    assert!(m.parts[0].headers.is_empty() && m.parts[0].body.is_empty());
    assert_eq!(m.parts[1].content_type(), Some("text/plain"));
    assert!(m.parts[1].body.is_empty());
    assert_eq!(m.parts[2].content_id(), Some("x@y"));
    assert!(m.parts[2].body.is_empty());
    assert!(m.parts[3].headers.is_empty() && m.parts[3].body.is_empty());
}

#[test]
fn header_fields() {
    let body = "--b\r\n\
content-type:application/resource-lists+xml\r\n\
X-Folded: first\r\n\
\tsecond\r\n\
Content-Disposition :  recipient-list ;handling=\"required\"  \r\n\
X-Empty:\r\n\
\r\n\
<x/>\r\n--b--";
    let m = parse_str("multipart/mixed;boundary=b", body).unwrap();
    let p = &m.parts[0];
    assert_eq!(p.headers.len(), 4);
    assert_eq!(
        p.header("CONTENT-TYPE"),
        Some("application/resource-lists+xml")
    );
    assert_eq!(p.header("x-folded"), Some("first\tsecond"));
    assert_eq!(p.disposition(), Some("recipient-list"));
    assert!(!p.handling_optional());
    assert_eq!(p.header("X-Empty"), Some(""));
    assert_eq!(p.header("Content-ID"), None);
}

#[test]
fn content_length_in_a_part() {
    // Content-Length leaving out line-end padding cuts the body to it.
    let body = "--b\r\nContent-Length: 12\r\n\r\nHello World!\r\n\r\n--b--";
    let m = parse_str("multipart/mixed;boundary=b", body).unwrap();
    assert_eq!(&m.parts[0].body[..], b"Hello World!");
    let body = "--b\r\nContent-Length: 14\r\n\r\nHello World!\r\n\r\n--b--";
    let m = parse_str("multipart/mixed;boundary=b", body).unwrap();
    assert_eq!(&m.parts[0].body[..], b"Hello World!\r\n");
    // More than the part holds, or cutting real content: the framing is in doubt.
    for cl in ["15", "5"] {
        let body = format!("--b\r\nContent-Length: {cl}\r\n\r\nHello World!\r\n\r\n--b--");
        assert_eq!(
            parse_str("multipart/mixed;boundary=b", &body),
            Err(MultipartError::ContentLength { index: 0 })
        );
    }
    for cl in ["", "x", "-1", "12345678901"] {
        let body = format!("--b\r\nContent-Length: {cl}\r\n\r\nHi\r\n--b--");
        assert_eq!(
            parse_str("multipart/mixed;boundary=b", &body),
            Err(MultipartError::MalformedHeader {
                index: 0,
                name: "Content-Length"
            }),
            "{cl}"
        );
    }
}

/// A nested multipart is one part's bytes; it parses again on its own.
#[test]
fn nested_multipart_is_bytes() {
    let inner = "--in\r\nContent-Type: text/plain\r\n\r\ninner\r\n--in--";
    let outer =
        format!("--out\r\nContent-Type: multipart/mixed;boundary=in\r\n\r\n{inner}\r\n--out--");
    let m = parse_str("multipart/mixed;boundary=out", &outer).unwrap();
    assert_eq!(m.parts.len(), 1);
    assert_eq!(&m.parts[0].body[..], inner.as_bytes());
    let ct = m.parts[0].header("Content-Type").unwrap();
    let again = parse(ct, m.parts[0].body.clone(), &MultipartLimits::default()).unwrap();
    assert_eq!(&again.parts[0].body[..], b"inner");
}

#[test]
fn boundary_lookalikes_in_a_body() {
    // Not at a line start, or a different dash count: content.
    let body = "--b\r\n\r\nx--b\r\n-b\r\n---b\r\n --b\r\n--b--";
    let m = parse_str("multipart/mixed;boundary=b", body).unwrap();
    assert_eq!(&m.parts[0].body[..], b"x--b\r\n-b\r\n---b\r\n --b");

    // A line starting with the boundary is a delimiter line (RFC 2046 §5.1.1); text after it
    // means the body held the boundary, which the sender must prevent.
    let body = "--b\r\n\r\nbefore\r\n--bx\r\nafter\r\n--b--";
    assert_eq!(
        parse_str("multipart/mixed;boundary=b", body),
        Err(MultipartError::DelimiterLine { index: 1 })
    );

    // A whole delimiter line in a body splits the part there: the parser cannot tell.
    let body = "--b\r\n\r\nbefore\r\n--b\r\n\r\nafter\r\n--b--";
    let m = parse_str("multipart/mixed;boundary=b", body).unwrap();
    assert_eq!(m.parts.len(), 2);
    assert_eq!(&m.parts[0].body[..], b"before");
}

#[test]
fn malformed_content_types() {
    let ok_body = "--b\r\n\r\nx\r\n--b--";
    let cases: &[(&str, MultipartError)] = &[
        ("", MultipartError::ContentType(String::new())),
        ("multipart", MultipartError::ContentType("multipart".into())),
        (
            "multipart/mixed; boundary",
            MultipartError::ContentType("multipart/mixed; boundary".into()),
        ),
        (
            "multipart/mixed; boundary=b; boundary=c",
            MultipartError::ContentType("multipart/mixed; boundary=b; boundary=c".into()),
        ),
        (
            "application/sdp; boundary=b",
            MultipartError::NotMultipart("application/sdp".into()),
        ),
        ("multipart/mixed", MultipartError::MissingBoundary),
        (
            "multipart/mixed; charset=x",
            MultipartError::MissingBoundary,
        ),
        (
            "multipart/mixed; boundary=\"\"",
            MultipartError::InvalidBoundary(String::new()),
        ),
        (
            "multipart/mixed; boundary=\"b \"",
            MultipartError::InvalidBoundary("b ".into()),
        ),
        (
            "multipart/mixed; boundary=b<c",
            MultipartError::InvalidBoundary("b<c".into()),
        ),
    ];
    for (ct, err) in cases {
        assert_eq!(parse_str(ct, ok_body).as_ref(), Err(err), "{ct:?}");
    }
    let long = "x".repeat(71);
    assert_eq!(
        parse_str(&format!("multipart/mixed;boundary={long}"), ok_body),
        Err(MultipartError::InvalidBoundary(format!(
            "{}...",
            "x".repeat(64)
        )))
    );
    let max = "x".repeat(70);
    let body = format!("--{max}\r\n\r\nx\r\n--{max}--");
    assert!(parse_str(&format!("multipart/mixed;boundary={max}"), &body).is_ok());
}

#[test]
fn malformed_framing() {
    let ct = "multipart/mixed;boundary=b";
    let cases: &[(&str, MultipartError)] = &[
        ("", MultipartError::NoOpeningDelimiter),
        ("just text\r\n", MultipartError::NoOpeningDelimiter),
        ("x--b\r\n -b\r\n", MultipartError::NoOpeningDelimiter),
        ("--b\r\n\r\nx\r\n", MultipartError::NoClosingDelimiter),
        ("--b\r\n\r\nx\r\n--b", MultipartError::NoClosingDelimiter),
        ("--b\r\n\r\nx\r\n--b  ", MultipartError::NoClosingDelimiter),
        ("--b", MultipartError::NoClosingDelimiter),
        (
            "--b\r\n\r\nx\r\n--b\r\n",
            MultipartError::NoClosingDelimiter,
        ),
        ("--b--\r\n", MultipartError::NoParts),
        (
            "--bb\r\n\r\nx\r\n--b--",
            MultipartError::DelimiterLine { index: 0 },
        ),
        (
            "--b\r\n\r\nx\r\n--b-\r\n",
            MultipartError::DelimiterLine { index: 1 },
        ),
        (
            "--b\r\nno colon\r\n\r\nx\r\n--b--",
            MultipartError::HeaderLine { index: 0 },
        ),
        (
            "--b\r\n: v\r\n\r\nx\r\n--b--",
            MultipartError::HeaderLine { index: 0 },
        ),
        (
            "--b\r\nA B: v\r\n\r\nx\r\n--b--",
            MultipartError::HeaderLine { index: 0 },
        ),
        (
            "--b\r\n continued\r\n\r\nx\r\n--b--",
            MultipartError::HeaderLine { index: 0 },
        ),
        (
            "--b\r\nX: a\rb\r\n\r\nx\r\n--b--",
            MultipartError::HeaderLine { index: 0 },
        ),
        (
            "--b\r\nX: a\0\r\n\r\nx\r\n--b--",
            MultipartError::HeaderLine { index: 0 },
        ),
        (
            "--b\r\n\r\nx\r\n--b\r\nbody without blank line\r\n--b--",
            MultipartError::HeaderLine { index: 1 },
        ),
        (
            "--b\r\nContent-Type: a/b\r\ncontent-type: a/b\r\n\r\nx\r\n--b--",
            MultipartError::DuplicateHeader {
                index: 0,
                name: "Content-Type",
            },
        ),
        (
            "--b\r\nContent-Disposition: a\r\nContent-Disposition: b\r\n\r\nx\r\n--b--",
            MultipartError::DuplicateHeader {
                index: 0,
                name: "Content-Disposition",
            },
        ),
        (
            "--b\r\nContent-ID: <a>\r\nContent-ID: <b>\r\n\r\nx\r\n--b--",
            MultipartError::DuplicateHeader {
                index: 0,
                name: "Content-ID",
            },
        ),
        (
            "--b\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx\r\n--b--",
            MultipartError::DuplicateHeader {
                index: 0,
                name: "Content-Length",
            },
        ),
        (
            "--b\r\nContent-Type: text\r\n\r\nx\r\n--b--",
            MultipartError::MalformedHeader {
                index: 0,
                name: "Content-Type",
            },
        ),
        (
            "--b\r\nContent-Disposition: a/b\r\n\r\nx\r\n--b--",
            MultipartError::MalformedHeader {
                index: 0,
                name: "Content-Disposition",
            },
        ),
        (
            "--b\r\nContent-Disposition: recipient-list; handling\r\n\r\nx\r\n--b--",
            MultipartError::MalformedHeader {
                index: 0,
                name: "Content-Disposition",
            },
        ),
        (
            "--b\r\nContent-ID:\r\n\r\nx\r\n--b--",
            MultipartError::MalformedHeader {
                index: 0,
                name: "Content-ID",
            },
        ),
    ];
    for (body, err) in cases {
        assert_eq!(parse_str(ct, body).as_ref(), Err(err), "{body:?}");
    }
    let not_utf8 = b"--b\r\nX: \xff\r\n\r\nx\r\n--b--";
    assert_eq!(
        parse(
            ct,
            Bytes::from_static(not_utf8),
            &MultipartLimits::default()
        ),
        Err(MultipartError::HeaderNotUtf8 { index: 0 })
    );
}

#[test]
fn limits() {
    let limits = MultipartLimits {
        max_bytes: 100,
        max_parts: 2,
        max_header_lines: 2,
    };
    let ct = "multipart/mixed;boundary=b";
    let big = Bytes::from(vec![b'x'; 101]);
    assert_eq!(
        parse(ct, big, &limits),
        Err(MultipartError::TooLarge {
            size: 101,
            limit: 100
        })
    );
    let two = "--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b--";
    assert_eq!(parse(ct, Bytes::from(two), &limits).unwrap().parts.len(), 2);
    let three = "--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b\r\n\r\n3\r\n--b--";
    assert_eq!(
        parse(ct, Bytes::from(three), &limits),
        Err(MultipartError::TooManyParts { limit: 2 })
    );
    // The part count is checked before the scan: no closing delimiter is needed to fail.
    let many = "--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b\r\n\r\n3";
    assert_eq!(
        parse(ct, Bytes::from(many), &limits),
        Err(MultipartError::TooManyParts { limit: 2 })
    );
    let folded = "--b\r\nA: 1\r\n 2\r\n\r\nx\r\n--b--";
    assert!(parse(ct, Bytes::from(folded), &limits).is_ok());
    let folded = "--b\r\nA: 1\r\n 2\r\n 3\r\n\r\nx\r\n--b--";
    assert_eq!(
        parse(ct, Bytes::from(folded), &limits),
        Err(MultipartError::TooManyHeaderLines { index: 0, limit: 2 })
    );
}

#[test]
fn encode_writes_what_parse_reads() {
    let m = Multipart {
        subtype: "related".into(),
        params: vec![("type".into(), "application/rlmi+xml".into())],
        parts: vec![
            Part::new("application/rlmi+xml", "<list/>").with_content_id("a@b"),
            Part {
                headers: vec![],
                body: Bytes::from_static(b"\r\nstarts and ends with CRLF\r\n"),
            },
            Part::new("text/plain", "").with_header("Content-Length", "0"),
        ],
    };
    let (ct, body) = m.encode("xyz").unwrap();
    assert_eq!(
        ct,
        "multipart/related;type=\"application/rlmi+xml\";boundary=\"xyz\""
    );
    assert_eq!(
        &body[..],
        b"--xyz\r\nContent-Type: application/rlmi+xml\r\nContent-ID: <a@b>\r\n\r\n<list/>\r\n\
--xyz\r\n\r\n\r\nstarts and ends with CRLF\r\n\r\n\
--xyz\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n\r\n--xyz--\r\n"
    );
    assert_eq!(parse(&ct, body, &MultipartLimits::default()).unwrap(), m);
}

#[test]
fn encode_refuses_what_would_not_parse_back() {
    let part = |body: &'static str| Part::new("text/plain", body);
    let one = |p: Part| Multipart::mixed(vec![p]);
    assert_eq!(
        Multipart::mixed(vec![]).encode("b"),
        Err(EncodeError::NoParts)
    );
    for bad in ["", "b ", "b\"", &"x".repeat(71)] {
        assert!(
            matches!(
                one(part("x")).encode(bad),
                Err(EncodeError::InvalidBoundary(_))
            ),
            "{bad:?}"
        );
    }
    for body in ["--b", "x\r\n--b--", "x\n--bb"] {
        assert_eq!(
            one(part(body)).encode("b"),
            Err(EncodeError::BoundaryInBody { index: 0 }),
            "{body:?}"
        );
    }
    // Not at a line start: fine.
    assert!(one(part("x--b")).encode("b").is_ok());

    for name in ["", "A B", "A:B", "Ä"] {
        assert!(
            matches!(
                one(part("x").with_header(name, "v")).encode("b"),
                Err(EncodeError::HeaderName { index: 0, .. })
            ),
            "{name:?}"
        );
    }
    for (name, value) in [
        ("X", "a\r\nb"),
        ("X", " lead"),
        ("X", "trail\t"),
        ("Content-Length", "2"),
        ("Content-Length", "x"),
        ("Content-Type", "text/plain"),
        ("Content-Disposition", "a/b"),
    ] {
        assert!(
            matches!(
                one(part("x").with_header(name, value)).encode("b"),
                Err(EncodeError::HeaderValue { index: 0, .. })
            ),
            "{name}: {value:?}"
        );
    }
    let mut m = one(part("x"));
    m.subtype = "a/b".into();
    assert!(matches!(m.encode("b"), Err(EncodeError::ContentType(_))));
    for params in [
        vec![("boundary".to_owned(), "x".to_owned())],
        vec![("a b".to_owned(), "x".to_owned())],
        vec![("a".to_owned(), "x\ny".to_owned())],
        vec![
            ("a".to_owned(), "1".to_owned()),
            ("A".to_owned(), "2".to_owned()),
        ],
    ] {
        let mut m = one(part("x"));
        m.params = params;
        assert!(matches!(m.encode("b"), Err(EncodeError::ContentType(_))));
    }
}

#[test]
fn new_boundary_avoids_every_body() {
    let m = Multipart::mixed(vec![Part::new("text/plain", "hello")]);
    let b = m.new_boundary();
    assert!(b.starts_with("cpm-") && b.len() == 28, "{b}");
    assert_ne!(b, m.new_boundary());

    // Plant the first candidate a seeded generator draws in a body: it is drawn again.
    let first = m.new_boundary_with(&mut rand::rngs::StdRng::seed_from_u64(7));
    let trap = Multipart::mixed(vec![
        Part::new("text/plain", "hello"),
        Part::new("text/plain", format!("x{first}y")),
    ]);
    let second = trap.new_boundary_with(&mut rand::rngs::StdRng::seed_from_u64(7));
    assert_ne!(second, first);
    let (ct, body) = trap.encode(&second).unwrap();
    assert_eq!(parse(&ct, body, &MultipartLimits::default()).unwrap(), trap);
}

/// Bytes that look like delimiters or line ends, so generated bodies stress the framing.
fn tricky_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"--".to_vec()),
        Just(b"--cpm-".to_vec()),
        Just(b"\r\n--b".to_vec()),
        Just(b"\r\n--b--".to_vec()),
        Just(b"b".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn header_strategy() -> impl Strategy<Value = Header> {
    ("X-[A-Za-z0-9-]{1,10}", "([!-~]([ \t!-~é]{0,20}[!-~])?)?")
        .prop_map(|(name, value)| Header { name, value })
}

fn part_strategy() -> impl Strategy<Value = Part> {
    (
        proptest::option::of("(text|application)/[a-z+.-]{1,12}"),
        proptest::option::of("(recipient-list|recipient-list-history|render)(;handling=optional)?"),
        proptest::option::of("<[a-z0-9]{1,8}@[a-z.]{1,8}>"),
        proptest::collection::vec(header_strategy(), 0..3),
        tricky_bytes(),
        any::<bool>(),
    )
        .prop_map(|(ct, disp, cid, extra, body, with_length)| {
            let mut headers = Vec::new();
            if let Some(ct) = ct {
                headers.push(Header::new("Content-Type", ct));
            }
            if let Some(d) = disp {
                headers.push(Header::new("Content-Disposition", d));
            }
            if let Some(c) = cid {
                headers.push(Header::new("Content-ID", c));
            }
            if with_length {
                headers.push(Header::new("Content-Length", body.len().to_string()));
            }
            headers.extend(extra);
            Part {
                headers,
                body: Bytes::from(body),
            }
        })
}

fn multipart_strategy() -> impl Strategy<Value = Multipart> {
    (
        prop_oneof![Just("mixed"), Just("related"), Just("alternative")],
        proptest::collection::vec(part_strategy(), 1..6),
    )
        .prop_map(|(subtype, parts)| Multipart {
            subtype: subtype.into(),
            params: Vec::new(),
            parts,
        })
}

proptest! {
    #[test]
    fn encode_parse_round_trip(m in multipart_strategy()) {
        let (ct, body) = m.encode_with_new_boundary().unwrap();
        prop_assert_eq!(parse(&ct, body, &MultipartLimits::default()).unwrap(), m);
    }

    /// With a short fixed boundary, bodies often contain it: encode refuses those, and what
    /// it accepts parses back.
    #[test]
    fn fixed_boundary_round_trip_or_refusal(m in multipart_strategy()) {
        match m.encode("b") {
            Ok((ct, body)) => {
                prop_assert_eq!(parse(&ct, body, &MultipartLimits::default()).unwrap(), m);
            }
            Err(e) => prop_assert!(matches!(e, EncodeError::BoundaryInBody { .. }), "{}", e),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse("multipart/mixed;boundary=b", Bytes::from(body), &MultipartLimits::default());
    }

    #[test]
    fn tricky_bytes_never_panic(body in tricky_bytes(), ct in ".{0,40}") {
        let limits = MultipartLimits::default();
        let _ = parse("multipart/mixed;boundary=b", Bytes::from(body.clone()), &limits);
        let _ = parse(&ct, Bytes::from(body), &limits);
    }

    /// Cutting or corrupting a valid body yields a result or an error, never a panic, and
    /// any parts returned still lie inside the input.
    #[test]
    fn damaged_bodies_never_panic(m in multipart_strategy(), cut in any::<prop::sample::Index>(),
                                  flip in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let (ct, body) = m.encode("cpm-boundary").unwrap_or_else(|_| {
            m.encode_with_new_boundary().unwrap()
        });
        let mut damaged = body.to_vec();
        if !damaged.is_empty() {
            let i = flip.index(damaged.len());
            damaged[i] = byte;
            damaged.truncate(cut.index(damaged.len() + 1));
        }
        let input = Bytes::from(damaged);
        if let Ok(parsed) = parse(&ct, input.clone(), &MultipartLimits::default()) {
            let range = input.as_ptr_range();
            for p in &parsed.parts {
                prop_assert!(p.body.is_empty() || range.contains(&p.body.as_ptr()));
            }
        }
    }
}
