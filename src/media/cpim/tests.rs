//! Tests of the CPIM codec: the RFC 3862 example, RCS/CPM group-chat bodies, the switch's
//! rewrite, every error path, and round-trip properties.

use super::*;
use bytes::{Bytes, BytesMut};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn parse(s: &str) -> Result<Cpim, CpimError> {
    Cpim::parse(Bytes::copy_from_slice(s.as_bytes()), &CpimLimits::default())
}

/// RFC 3862 §3's example message.
const RFC_3862: &str = "From: MR SANDERS <im:piglet@100akerwood.com>\r\n\
    To: Depressed Donkey <im:eeyore@100akerwood.com>\r\n\
    DateTime: 2000-12-13T13:40:00-08:00\r\n\
    Subject: the weather will be fine today\r\n\
    Subject:;lang=fr beau temps prevu pour aujourd'hui\r\n\
    NS: MyFeatures <mid:MessageFeatures@id.foo.com>\r\n\
    Require: MyFeatures.VitalMessageOption\r\n\
    MyFeatures.VitalMessageOption: Confirmation-requested\r\n\
    MyFeatures.WackyMessageOption: Use-silly-font\r\n\
    \r\n\
    Content-type: text/xml; charset=utf-8\r\n\
    Content-ID: <1234567890@foo.com>\r\n\
    \r\n\
    <body>\r\n\
    Here is the text of my message.\r\n\
    </body>\r\n";

#[test]
fn rfc_3862_example() {
    let c = parse(RFC_3862).unwrap();
    assert_eq!(
        c.from,
        Some(Addr::with_display(
            "im:piglet@100akerwood.com",
            "MR SANDERS"
        ))
    );
    assert_eq!(
        c.to,
        vec![Addr::with_display(
            "im:eeyore@100akerwood.com",
            "Depressed Donkey"
        )]
    );
    assert_eq!(c.date_time.as_deref(), Some("2000-12-13T13:40:00-08:00"));
    assert_eq!(
        c.date_time(),
        Some(UNIX_EPOCH + Duration::from_secs(976_743_600))
    );
    assert_eq!(
        c.subject,
        vec![
            Subject {
                lang: None,
                text: "the weather will be fine today".into()
            },
            Subject {
                lang: Some("fr".into()),
                text: "beau temps prevu pour aujourd'hui".into()
            },
        ]
    );
    assert_eq!(
        c.ns,
        vec![Namespace {
            prefix: Some("MyFeatures".into()),
            uri: "mid:MessageFeatures@id.foo.com".into()
        }]
    );
    assert_eq!(c.require, vec!["MyFeatures.VitalMessageOption".to_owned()]);
    assert_eq!(c.fields.len(), 2);
    assert_eq!(
        c.field("mid:MessageFeatures@id.foo.com", "VitalMessageOption"),
        Some("Confirmation-requested")
    );
    assert_eq!(c.field("urn:other", "VitalMessageOption"), None);
    assert_eq!(c.content_type.as_deref(), Some("text/xml; charset=utf-8"));
    assert_eq!(c.content_headers.len(), 1);
    assert_eq!(c.content_headers[0].value, "<1234567890@foo.com>");
    assert_eq!(
        &c.body[..],
        b"<body>\r\nHere is the text of my message.\r\n</body>\r\n"
    );
    // Written back, it parses to the same model.
    let again = Cpim::parse(c.to_bytes().unwrap(), &CpimLimits::default()).unwrap();
    assert_eq!(again, c);
}

/// An RCS/CPM group-chat message: anonymous envelope, IMDN fields.
const RCS: &str = "From: <sip:anonymous@anonymous.invalid>\r\n\
    To: <sip:anonymous@anonymous.invalid>\r\n\
    NS: imdn <urn:ietf:params:imdn>\r\n\
    imdn.Message-ID: Xu8dbqWSPkKLYaAKfQ2C\r\n\
    DateTime: 2026-11-26T10:04:05.123Z\r\n\
    imdn.Disposition-Notification: positive-delivery, display\r\n\
    \r\n\
    Content-Type: text/plain; charset=utf-8\r\n\
    Content-Length: 11\r\n\
    \r\n\
    Hello group";

const CONF: &str = "sip:chat-42@conf.example.com";

#[test]
fn rcs_group_chat_body() {
    let data = Bytes::from_static(RCS.as_bytes());
    let c = Cpim::parse(data.clone(), &CpimLimits::default()).unwrap();
    assert_eq!(c.from, Some(Addr::new("sip:anonymous@anonymous.invalid")));
    assert_eq!(c.imdn_message_id(), Some("Xu8dbqWSPkKLYaAKfQ2C"));
    assert_eq!(
        c.disposition_notification(),
        Some("positive-delivery, display")
    );
    assert!(c.date_time().is_some());
    assert_eq!(c.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(&c.body[..], b"Hello group");
    // Zero-copy: the content is a slice of the input.
    assert!(data.as_ptr_range().contains(&c.body.as_ptr()));
    // Addressed to everyone.
    assert!(c.private_recipients(CONF).is_empty());
}

#[test]
fn private_messages_per_rfc_7701() {
    let mut c = parse(RCS).unwrap();
    c.to = vec![Addr::with_display("sip:bob@example.com", "Bob")];
    assert_eq!(c.private_recipients(CONF), ["sip:bob@example.com"]);
    c.to = vec![Addr::new("sip:chat-42@CONF.example.com;transport=tcp")];
    assert!(c.private_recipients(CONF).is_empty());
    c.to = vec![Addr::new(CONF), Addr::new("sip:bob@example.com")];
    assert!(
        c.private_recipients(CONF).is_empty(),
        "the chat is everyone"
    );
    c.to = vec![Addr::new("sip:bob@example.com"), Addr::new(CONF)];
    assert!(
        c.private_recipients(CONF).is_empty(),
        "the chat is everyone"
    );
    c.to.clear();
    assert!(c.private_recipients(CONF).is_empty());
    c.to = vec![Addr::new("tel:+15551234567")];
    assert_eq!(c.private_recipients(CONF), ["tel:+15551234567"]);
    // One or more (OMA CPM): every To, each once.
    c.to = vec![
        Addr::new("sip:bob@example.com"),
        Addr::new("sip:carol@example.com"),
        Addr::new("sip:bob@EXAMPLE.com;transport=tcp"),
    ];
    assert_eq!(
        c.private_recipients(CONF),
        ["sip:bob@example.com", "sip:carol@example.com"]
    );
}

/// What the switch sends to the others: original sender in From, the chat in To, the
/// sender's IMDN Message-ID kept, the content passed on without a copy.
#[test]
fn switch_rewrite() {
    let received = parse(RCS).unwrap();
    let now = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let out = Cpim::new(
        Addr::with_display("sip:alice@example.com", "Alice"),
        Addr::new(CONF),
        received.content_type.clone().unwrap(),
        received.body.clone(),
        now,
    )
    .with_imdn(
        received.imdn_message_id().unwrap(),
        received.disposition_notification(),
    );
    assert_eq!(out.body.as_ptr(), received.body.as_ptr());
    let bytes = out.to_bytes().unwrap();
    assert_eq!(
        std::str::from_utf8(&bytes).unwrap(),
        "From: \"Alice\" <sip:alice@example.com>\r\n\
         To: <sip:chat-42@conf.example.com>\r\n\
         DateTime: 2026-11-18T11:06:40Z\r\n\
         NS: imdn <urn:ietf:params:imdn>\r\n\
         imdn.Message-ID: Xu8dbqWSPkKLYaAKfQ2C\r\n\
         imdn.Disposition-Notification: positive-delivery, display\r\n\
         \r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         Hello group"
    );
    let back = Cpim::parse(bytes, &CpimLimits::default()).unwrap();
    assert_eq!(back, out);
    assert_eq!(back.date_time(), Some(now));

    // with_imdn replaces earlier values and reuses the declared prefix.
    let again = back.with_imdn("n3wId", None);
    assert_eq!(again.ns.len(), 1);
    assert_eq!(again.imdn_message_id(), Some("n3wId"));
    assert_eq!(again.disposition_notification(), None);
    // A prefix taken by another namespace is not reused.
    let mut other = Cpim::new(
        Addr::new("sip:a@b"),
        Addr::new(CONF),
        "text/plain",
        Bytes::new(),
        SystemTime::UNIX_EPOCH,
    );
    other.ns.push(Namespace {
        prefix: Some("imdn".into()),
        uri: "urn:x".into(),
    });
    other
        .fields
        .push(Field::new(Some("imdn"), "Message-ID", "keep"));
    let other = other.with_imdn("id42", Some("display"));
    assert_eq!(other.ns[1].prefix.as_deref(), Some("imdn2"));
    assert_eq!(other.imdn_message_id(), Some("id42"));
    assert_eq!(other.field("urn:x", "Message-ID"), Some("keep"));
}

#[test]
fn lenient_forms() {
    // LF line ends, lower-case names, bare URI, default namespace, quoted display name with
    // escapes, no MIME header, a last MIME line without line end.
    let c = parse(
        "from: \"A \\\"B\\\" C\" <sip:a@example.com>\n\
         to: sip:b@example.com\n\
         CC: Carol Q <sip:c@example.com>\n\
         Datetime: 2026-01-01T00:00:00Z\n\
         NS: <urn:default>\n\
         Priority: 1\n\
         \n\
         \n\
         body\n",
    )
    .unwrap();
    assert_eq!(
        c.from.as_ref().unwrap().display.as_deref(),
        Some("A \"B\" C")
    );
    assert_eq!(c.to, vec![Addr::new("sip:b@example.com")]);
    assert_eq!(c.cc[0].display.as_deref(), Some("Carol Q"));
    assert_eq!(c.field("urn:default", "Priority"), Some("1"));
    assert_eq!(c.content_type, None);
    assert_eq!(&c.body[..], b"body\n");
    let c = parse("From: <sip:a@b>\r\n\r\nContent-Type: text/plain").unwrap();
    assert_eq!(c.content_type.as_deref(), Some("text/plain"));
    assert!(c.body.is_empty());
    // Parameters with quoted values; a value kept exactly as written.
    let c = parse("X-P:;a=\"x y\";b=2  two spaces \r\n\r\n\r\n").unwrap();
    assert_eq!(
        c.fields[0].params,
        vec![("a".into(), "x y".into()), ("b".into(), "2".into())]
    );
    assert_eq!(c.fields[0].value, " two spaces ");
    assert_eq!(
        Cpim::parse(c.to_bytes().unwrap(), &CpimLimits::default()),
        Ok(c)
    );
}

#[test]
fn every_error() {
    let cases: &[(&str, CpimError)] = &[
        ("From: <sip:a@b>\r\n", CpimError::NoBlankLine),
        ("From: <sip:a@b>", CpimError::NoBlankLine),
        ("", CpimError::NoBlankLine),
        ("no colon\r\n\r\n", CpimError::HeaderLine),
        ("Bad Name: x\r\n\r\n", CpimError::HeaderLine),
        (".x: y\r\n\r\n", CpimError::HeaderLine),
        ("a.: y\r\n\r\n", CpimError::HeaderLine),
        ("a.b.c: y\r\n\r\n", CpimError::HeaderLine),
        ("X: a\u{7}b\r\n\r\n", CpimError::HeaderLine),
        ("X: a\rb\r\n\r\n", CpimError::HeaderLine),
        ("X:;p x\r\n\r\n", CpimError::HeaderLine),
        ("X:;=v x\r\n\r\n", CpimError::HeaderLine),
        ("X:;p= x\r\n\r\n", CpimError::HeaderLine),
        ("X:;p=\"open x\r\n\r\n", CpimError::HeaderLine),
        (
            "From: <sip:a@b>\r\nFrom: <sip:c@d>\r\n\r\n",
            CpimError::Multiple("From"),
        ),
        ("From: <>\r\n\r\n", CpimError::Malformed("From")),
        ("From: \"x <sip:a@b>\r\n\r\n", CpimError::Malformed("From")),
        (
            "From: \"x\"y <sip:a@b>\r\n\r\n",
            CpimError::Malformed("From"),
        ),
        ("From: <sip:a b>\r\n\r\n", CpimError::Malformed("From")),
        ("From: <sip:a@b\r\n\r\n", CpimError::Malformed("From")),
        ("From: \r\n\r\n", CpimError::Malformed("From")),
        ("To: a b\r\n\r\n", CpimError::Malformed("To")),
        ("cc: x\"y <sip:a@b>\r\n\r\n", CpimError::Malformed("cc")),
        ("DateTime: \r\n\r\n", CpimError::Malformed("DateTime")),
        (
            "DateTime: a\r\nDateTime: b\r\n\r\n",
            CpimError::Multiple("DateTime"),
        ),
        ("Subject:;x=y hi\r\n\r\n", CpimError::Malformed("Subject")),
        (
            "Subject:;lang=en;lang=fr hi\r\n\r\n",
            CpimError::Malformed("Subject"),
        ),
        ("NS: imdn urn:x\r\n\r\n", CpimError::Malformed("NS")),
        ("NS: im.dn <urn:x>\r\n\r\n", CpimError::Malformed("NS")),
        ("NS: imdn <>\r\n\r\n", CpimError::Malformed("NS")),
        ("Require: a,,b\r\n\r\n", CpimError::Malformed("Require")),
        ("Require: a.b.c\r\n\r\n", CpimError::Malformed("Require")),
        (
            "X: y\r\n\r\nContent-Type: a/b\r\ncontent-type: c/d\r\n\r\n",
            CpimError::Multiple("Content-Type"),
        ),
        ("X: y\r\n\r\nno colon\r\n\r\n", CpimError::HeaderLine),
        ("X: y\r\n\r\n: empty\r\n\r\n", CpimError::HeaderLine),
        ("X: y\r\n\r\nA\u{1}: v\r\n\r\n", CpimError::HeaderLine),
    ];
    for (text, err) in cases {
        assert_eq!(parse(text), Err(*err), "{text:?}");
    }
    let bad_utf8 = Bytes::from_static(b"X: \xff\r\n\r\n");
    assert_eq!(
        Cpim::parse(bad_utf8, &CpimLimits::default()),
        Err(CpimError::NotUtf8)
    );
    let bad_utf8 = Bytes::from_static(b"X: y\r\n\r\nA: \xff\r\n\r\n");
    assert_eq!(
        Cpim::parse(bad_utf8, &CpimLimits::default()),
        Err(CpimError::NotUtf8)
    );
    let small = CpimLimits {
        max_headers: 2,
        max_size: 64,
    };
    let data = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    assert_eq!(
        Cpim::parse(data(&"x".repeat(65)), &small),
        Err(CpimError::TooLarge)
    );
    assert_eq!(
        Cpim::parse(data("A: 1\r\nB: 2\r\nC: 3\r\n\r\n"), &small),
        Err(CpimError::TooManyHeaders)
    );
    assert_eq!(
        Cpim::parse(data("A: 1\r\nB: 2\r\n\r\nC: 3\r\n\r\n"), &small),
        Err(CpimError::TooManyHeaders)
    );
}

#[test]
fn writer_refusals() {
    let ok = Cpim::new(
        Addr::new("sip:a@b"),
        Addr::new(CONF),
        "text/plain",
        Bytes::from_static(b"x"),
        SystemTime::UNIX_EPOCH,
    );
    assert!(ok.to_bytes().is_ok());
    let value = |h: &str| CpimWriteError::Value(h.into());
    let name = |h: &str| CpimWriteError::Name(h.into());
    let mut cases: Vec<(Cpim, CpimWriteError)> = Vec::new();
    let mut c = ok.clone();
    c.from = Some(Addr::new("sip:a b"));
    cases.push((c, value("From")));
    let mut c = ok.clone();
    c.to = vec![Addr::with_display("sip:x@y", "a\r\nb")];
    cases.push((c, value("To")));
    let mut c = ok.clone();
    c.cc = vec![Addr::new("")];
    cases.push((c, value("cc")));
    let mut c = ok.clone();
    c.date_time = Some(" 2026".into());
    cases.push((c, value("DateTime")));
    let mut c = ok.clone();
    c.subject = vec![Subject {
        lang: None,
        text: "a\nb".into(),
    }];
    cases.push((c, value("Subject")));
    let mut c = ok.clone();
    c.subject = vec![Subject {
        lang: Some("e\u{1}n".into()),
        text: "x".into(),
    }];
    cases.push((c, value("lang")));
    let mut c = ok.clone();
    c.ns = vec![Namespace {
        prefix: Some("a.b".into()),
        uri: "urn:x".into(),
    }];
    cases.push((c, value("NS")));
    let mut c = ok.clone();
    c.require = vec!["a b".into()];
    cases.push((c, value("Require")));
    let mut c = ok.clone();
    c.fields = vec![Field::new(None, "To", "x")];
    cases.push((c, name("To")));
    let mut c = ok.clone();
    c.fields = vec![Field::new(Some("p"), "a b", "x")];
    cases.push((c, name("p.a b")));
    let mut c = ok.clone();
    c.fields = vec![Field::new(Some("p"), "n", "x\ny")];
    cases.push((c, value("p.n")));
    let mut c = ok.clone();
    c.content_type = Some("text/plain\r\nX: y".into());
    cases.push((c, value("Content-Type")));
    let mut c = ok.clone();
    c.content_headers = vec![crate::media::msrp::Header::new("Content-type", "a/b")];
    cases.push((c, name("Content-type")));
    let mut c = ok.clone();
    c.content_headers = vec![crate::media::msrp::Header::new("X", " padded")];
    cases.push((c, value("X")));
    for (c, err) in cases {
        let mut out = BytesMut::new();
        assert_eq!(c.encode(&mut out), Err(err));
        assert!(out.is_empty());
    }
}

mod prop {
    use super::*;
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!#$%&'*+^_`|~-]{1,12}"
    }

    /// Free text without control characters, including quotes, backslashes, non-ASCII.
    fn text() -> impl Strategy<Value = String> {
        "[ -~\u{e9}\u{4e2d}\u{1f600}]{0,24}"
    }

    fn trimmed() -> impl Strategy<Value = String> {
        "[!-~\u{e9}]([ -~\u{e9}]{0,16}[!-~\u{e9}])?"
    }

    fn uri() -> impl Strategy<Value = String> {
        "(sip|im|tel|urn):[!-;=?-~]{1,20}"
    }

    fn addr() -> impl Strategy<Value = Addr> {
        (option::of(text()), uri()).prop_map(|(display, uri)| Addr { display, uri })
    }

    fn field() -> impl Strategy<Value = Field> {
        (
            option::of(name()),
            name(),
            vec((name(), text()), 0..3),
            text(),
        )
            .prop_filter("typed names are not extension fields", |(p, n, _, _)| {
                p.is_some()
                    || !["From", "To", "cc", "DateTime", "Subject", "NS", "Require"]
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(n))
            })
            .prop_map(|(prefix, name, params, value)| Field {
                prefix,
                name,
                params,
                value,
            })
    }

    fn cpim() -> impl Strategy<Value = Cpim> {
        (
            (
                option::of(addr()),
                vec(addr(), 0..3),
                vec(addr(), 0..2),
                option::of(trimmed()),
                vec(
                    (option::of(name()), text()).prop_map(|(lang, text)| Subject { lang, text }),
                    0..3,
                ),
            ),
            (
                vec(
                    (option::of(name()), uri()).prop_map(|(prefix, uri)| Namespace { prefix, uri }),
                    0..3,
                ),
                vec(
                    (option::of(name()), name()).prop_map(|(p, n)| match p {
                        Some(p) => format!("{p}.{n}"),
                        None => n,
                    }),
                    0..3,
                ),
                vec(field(), 0..4),
                option::of(trimmed()),
                vec(
                    ("[!-9;-~]{1,12}", trimmed())
                        .prop_filter("not Content-Type", |(n, _)| {
                            !n.eq_ignore_ascii_case("Content-Type")
                        })
                        .prop_map(|(n, v)| crate::media::msrp::Header::new(n, v)),
                    0..3,
                ),
                vec(any::<u8>(), 0..64).prop_map(Bytes::from),
            ),
        )
            .prop_map(
                |((from, to, cc, date_time, subject), (ns, require, fields, ct, ch, body))| Cpim {
                    from,
                    to,
                    cc,
                    date_time,
                    subject,
                    ns,
                    require,
                    fields,
                    content_type: ct,
                    content_headers: ch,
                    body,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn generated_messages_round_trip(c in cpim()) {
            let bytes = c.to_bytes().unwrap();
            let back = Cpim::parse(bytes.clone(), &CpimLimits::default());
            prop_assert_eq!(back.as_ref(), Ok(&c));
            prop_assert_eq!(back.unwrap().to_bytes().unwrap(), bytes);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..512)) {
            let _ = Cpim::parse(Bytes::from(data), &CpimLimits::default());
        }

        #[test]
        fn header_like_text_never_panics(
            lines in vec("[ -~\u{e9}]{0,40}", 0..12),
            crlf in any::<bool>(),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let text = lines.join(eol);
            if let Ok(c) = parse(&text) {
                // Whatever parses can be written back unless it holds what the writer refuses.
                if let Ok(bytes) = c.to_bytes() {
                    prop_assert_eq!(Cpim::parse(bytes, &CpimLimits::default()), Ok(c));
                }
            }
        }
    }
}
