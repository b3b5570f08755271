//! Tests for the conference-info model, renderer, parser and partial notifications.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;

use super::datetime::{civil_from_days, days_from_civil, MAX_SECS, MIN_SECS};
use super::*;

/// An instant given as whole seconds since the epoch (negative = before 1970).
fn at(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn render_string(doc: &ConferenceInfo) -> String {
    let mut out = Vec::new();
    render(doc, &mut out);
    String::from_utf8(out).expect("renderer writes UTF-8")
}

fn parse_str(xml: &str) -> Result<ConferenceInfo, ParseError> {
    parse(xml.as_bytes(), &Limits::default())
}

/// A small document wrapped around `users` content, for parser tests.
fn wrap(inner: &str) -> String {
    format!(
        "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" \
         entity=\"sip:c@x\" state=\"full\" version=\"1\">{inner}</conference-info>"
    )
}

/// 2026-11-26T01:02:03Z.
const T_2026: i64 = 1_795_654_923;

fn alice() -> User {
    User {
        entity: "sip:alice@example.com".into(),
        state: ElemState::Full,
        display_text: Some("Alice".into()),
        associated_aors: vec![UriEntry::new("tel:+15551234")],
        roles: vec!["administrator".into(), "participant".into()],
        languages: vec!["en".into(), "fr".into()],
        cascaded_focus: None,
        endpoints: vec![Endpoint {
            entity: "sip:alice@10.0.0.1:5060;transport=tcp".into(),
            state: ElemState::Full,
            display_text: None,
            referred: None,
            status: Some(EndpointStatus::Connected),
            joining_method: Some(JoiningMethod::DialedIn),
            joining_info: Some(Execution {
                when: Some(at(T_2026)),
                reason: None,
                by: None,
            }),
            disconnection_method: None,
            disconnection_info: None,
            media: vec![Media {
                id: "1".into(),
                display_text: None,
                media_type: Some("message".into()),
                label: Some("1".into()),
                src_id: None,
                status: Some(MediaStatus::SendRecv),
            }],
            call_info: Some(SipDialogInfo {
                display_text: None,
                call_id: "abc@10.0.0.1".into(),
                from_tag: "f1".into(),
                to_tag: "t1".into(),
            }),
            unverified: false,
        }],
    }
}

fn bob() -> User {
    User {
        entity: "sip:bob@example.com".into(),
        display_text: Some("Bob <the \"builder\">".into()),
        roles: vec!["participant".into()],
        endpoints: vec![Endpoint {
            entity: "sip:bob@10.0.0.2".into(),
            status: Some(EndpointStatus::Disconnected),
            disconnection_method: Some(DisconnectionMethod::Booted),
            disconnection_info: Some(Execution {
                when: Some(at(T_2026 + 60)),
                reason: Some("kicked".into()),
                by: Some("sip:alice@example.com".into()),
            }),
            ..Endpoint::default()
        }],
        ..User::default()
    }
}

fn sample() -> ConferenceInfo {
    ConferenceInfo {
        entity: "sip:conf-1@focus.example.com".into(),
        state: ElemState::Full,
        version: 7,
        description: Some(ConferenceDescription {
            display_text: Some("Team chat".into()),
            subject: Some("Q4 & planning".into()),
            free_text: None,
            keywords: vec!["rcs".into(), "group".into()],
            conf_uris: vec![UriEntry {
                uri: "sip:conf-1@focus.example.com".into(),
                display_text: None,
                purpose: Some("participation".into()),
            }],
            service_uris: vec![],
            maximum_user_count: Some(100),
            available_media: vec![AvailableMedia {
                label: "1".into(),
                media_type: "message".into(),
                display_text: Some("chat".into()),
                status: Some(MediaStatus::SendRecv),
            }],
        }),
        host_info: Some(HostInfo {
            display_text: Some("CPM focus".into()),
            web_page: None,
            uris: vec![UriEntry::new("sip:focus.example.com")],
        }),
        conference_state: Some(ConferenceState {
            user_count: Some(2),
            active: Some(true),
            locked: Some(false),
        }),
        users: Some(Users {
            state: ElemState::Full,
            users: vec![alice(), bob()],
        }),
    }
}

const SAMPLE_XML: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
    "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\"",
    " entity=\"sip:conf-1@focus.example.com\" state=\"full\" version=\"7\">",
    "<conference-description>",
    "<display-text>Team chat</display-text>",
    "<subject>Q4 &amp; planning</subject>",
    "<keywords>rcs group</keywords>",
    "<conf-uris><entry><uri>sip:conf-1@focus.example.com</uri>",
    "<purpose>participation</purpose></entry></conf-uris>",
    "<maximum-user-count>100</maximum-user-count>",
    "<available-media><entry label=\"1\"><display-text>chat</display-text>",
    "<type>message</type><status>sendrecv</status></entry></available-media>",
    "</conference-description>",
    "<host-info><display-text>CPM focus</display-text>",
    "<uris><entry><uri>sip:focus.example.com</uri></entry></uris></host-info>",
    "<conference-state><user-count>2</user-count><active>true</active>",
    "<locked>false</locked></conference-state>",
    "<users state=\"full\">",
    "<user entity=\"sip:alice@example.com\" state=\"full\">",
    "<display-text>Alice</display-text>",
    "<associated-aors><entry><uri>tel:+15551234</uri></entry></associated-aors>",
    "<roles><entry>administrator</entry><entry>participant</entry></roles>",
    "<languages>en fr</languages>",
    "<endpoint entity=\"sip:alice@10.0.0.1:5060;transport=tcp\" state=\"full\">",
    "<status>connected</status><joining-method>dialed-in</joining-method>",
    "<joining-info><when>2026-11-26T01:02:03Z</when></joining-info>",
    "<media id=\"1\"><type>message</type><label>1</label><status>sendrecv</status></media>",
    "<call-info><sip><call-id>abc@10.0.0.1</call-id><from-tag>f1</from-tag>",
    "<to-tag>t1</to-tag></sip></call-info>",
    "</endpoint></user>",
    "<user entity=\"sip:bob@example.com\" state=\"full\">",
    "<display-text>Bob &lt;the &quot;builder&quot;&gt;</display-text>",
    "<roles><entry>participant</entry></roles>",
    "<endpoint entity=\"sip:bob@10.0.0.2\" state=\"full\">",
    "<status>disconnected</status><disconnection-method>booted</disconnection-method>",
    "<disconnection-info><when>2026-11-26T01:03:03Z</when><reason>kicked</reason>",
    "<by>sip:alice@example.com</by></disconnection-info>",
    "</endpoint></user>",
    "</users></conference-info>",
);

// ---------------------------------------------------------------------------------------------
// Rendering

#[test]
fn renders_representative_document_exactly() {
    assert_eq!(render_string(&sample()), SAMPLE_XML);
}

#[test]
fn representative_document_parses_back() {
    assert_eq!(parse_str(SAMPLE_XML), Ok(sample()));
    assert_eq!(to_bytes(&sample()), SAMPLE_XML.as_bytes());
}

#[test]
fn omits_absent_parts() {
    let doc = ConferenceInfo::full("sip:c@x", 0);
    assert_eq!(
        render_string(&doc),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<conference-info \
         xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"sip:c@x\" state=\"full\" \
         version=\"0\"></conference-info>"
    );
}

#[test]
fn renders_max_version() {
    let doc = ConferenceInfo::full("sip:c@x", u32::MAX);
    assert!(render_string(&doc).contains("version=\"4294967295\""));
}

#[test]
fn unversioned_copies_carry_the_version_they_are_given() {
    let once = Unversioned::render(&sample());
    for version in [0, 7, u32::MAX] {
        let mut doc = sample();
        doc.version = version;
        assert_eq!(once.with_version(version), render_string(&doc).into_bytes());
    }
}

#[test]
fn render_appends_to_existing_buffer() {
    let mut out = b"prefix".to_vec();
    render(&sample(), &mut out);
    assert!(out.starts_with(b"prefix<?xml"));
    assert_eq!(&out[6..], SAMPLE_XML.as_bytes());
}

// ---------------------------------------------------------------------------------------------
// Escaping

fn escaped(s: &str, attr: bool) -> String {
    let mut out = Vec::new();
    escape::push_escaped(&mut out, s, attr);
    String::from_utf8(out).expect("escaping keeps UTF-8")
}

#[test]
fn escapes_markup_characters() {
    assert_eq!(
        escaped(r#"a&b<c>d"e'f"#, false),
        "a&amp;b&lt;c&gt;d&quot;e&apos;f"
    );
    assert_eq!(
        escaped(r#"a&b<c>d"e'f"#, true),
        "a&amp;b&lt;c&gt;d&quot;e&apos;f"
    );
    assert_eq!(
        escaped("plain ünïcode 中文 😀", false),
        "plain ünïcode 中文 😀"
    );
    assert_eq!(escaped("", false), "");
}

#[test]
fn escapes_whitespace_that_parsers_would_normalize() {
    assert_eq!(escaped("a\tb\nc\rd", false), "a\tb\nc&#13;d");
    assert_eq!(escaped("a\tb\nc\rd", true), "a&#9;b&#10;c&#13;d");
}

#[test]
fn replaces_characters_xml_cannot_carry() {
    assert_eq!(
        escaped("a\u{0}b\u{1}c\u{1f}d", false),
        "a\u{FFFD}b\u{FFFD}c\u{FFFD}d"
    );
    assert_eq!(escaped("x\u{FFFE}y\u{FFFF}z", true), "x\u{FFFD}y\u{FFFD}z");
    // Other characters starting with byte EF are kept.
    assert_eq!(
        escaped("\u{FFFD}\u{F000}\u{FEFF}", false),
        "\u{FFFD}\u{F000}\u{FEFF}"
    );
    // DEL and C1 controls are legal XML 1.0 characters.
    assert_eq!(escaped("\u{7f}\u{85}", false), "\u{7f}\u{85}");
}

#[test]
fn hostile_strings_render_to_well_formed_xml() {
    let nasty = "</display-text><user entity=\"x\">&amp;\u{0}\u{FFFF}]]>\r\n\t'\"";
    let mut doc = ConferenceInfo::full(nasty, 1);
    let mut user = User::new(nasty);
    user.display_text = Some(nasty.into());
    user.roles = vec![nasty.into()];
    doc.users = Some(Users {
        state: ElemState::Full,
        users: vec![user],
    });
    let parsed = parse(&to_bytes(&doc), &Limits::default()).expect("well-formed");
    let cleaned = nasty.replace(['\u{0}', '\u{FFFF}'], "\u{FFFD}");
    assert_eq!(parsed.entity, cleaned);
    let users = parsed.users.expect("users").users;
    assert_eq!(users[0].entity, cleaned);
    assert_eq!(users[0].display_text.as_deref(), Some(cleaned.as_str()));
    assert_eq!(users[0].roles, vec![cleaned.clone()]);
}

// ---------------------------------------------------------------------------------------------
// Enumerations

#[test]
fn enum_tokens_are_exactly_rfc4575() {
    fn tokens<T: Copy>(all: &[T], f: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|v| f(*v)).collect::<Vec<_>>()
    }
    assert_eq!(
        tokens(ElemState::ALL, ElemState::as_str),
        ["full", "partial", "deleted"]
    );
    assert_eq!(
        tokens(EndpointStatus::ALL, EndpointStatus::as_str),
        [
            "pending",
            "dialing-out",
            "dialing-in",
            "alerting",
            "on-hold",
            "connected",
            "muted-via-focus",
            "disconnecting",
            "disconnected"
        ]
    );
    assert_eq!(
        tokens(JoiningMethod::ALL, JoiningMethod::as_str),
        ["dialed-in", "dialed-out", "focus-owner"]
    );
    assert_eq!(
        tokens(DisconnectionMethod::ALL, DisconnectionMethod::as_str),
        ["departed", "booted", "failed", "busy"]
    );
    assert_eq!(
        tokens(MediaStatus::ALL, MediaStatus::as_str),
        ["recvonly", "sendonly", "sendrecv", "inactive"]
    );
}

#[test]
fn enum_tokens_parse_back_and_reject_others() {
    for v in ElemState::ALL {
        assert_eq!(ElemState::from_token(v.as_str()), Some(*v));
        assert_eq!(v.to_string(), v.as_str());
    }
    for v in EndpointStatus::ALL {
        assert_eq!(EndpointStatus::from_token(v.as_str()), Some(*v));
    }
    for v in JoiningMethod::ALL {
        assert_eq!(JoiningMethod::from_token(v.as_str()), Some(*v));
    }
    for v in DisconnectionMethod::ALL {
        assert_eq!(DisconnectionMethod::from_token(v.as_str()), Some(*v));
    }
    for v in MediaStatus::ALL {
        assert_eq!(MediaStatus::from_token(v.as_str()), Some(*v));
    }
    assert_eq!(EndpointStatus::from_token("Connected"), None);
    assert_eq!(EndpointStatus::from_token("muted_via_focus"), None);
    assert_eq!(MediaStatus::from_token(""), None);
    assert_eq!(ElemState::default(), ElemState::Full);
}

#[test]
fn every_token_survives_the_wire() {
    let mut user = User::new("sip:u@x");
    for (i, status) in EndpointStatus::ALL.iter().enumerate() {
        let mut e = Endpoint::new(format!("sip:u{i}@x"));
        e.state = ElemState::ALL[i % 3];
        e.status = Some(*status);
        e.joining_method = Some(JoiningMethod::ALL[i % JoiningMethod::ALL.len()]);
        e.disconnection_method = Some(DisconnectionMethod::ALL[i % DisconnectionMethod::ALL.len()]);
        e.media = vec![Media {
            id: i.to_string(),
            status: Some(MediaStatus::ALL[i % MediaStatus::ALL.len()]),
            ..Media::default()
        }];
        user.endpoints.push(e);
    }
    let mut doc = ConferenceInfo::full("sip:c@x", 3);
    doc.state = ElemState::Partial;
    doc.users = Some(Users {
        state: ElemState::Deleted,
        users: vec![user],
    });
    let xml = render_string(&doc);
    for status in EndpointStatus::ALL {
        assert!(
            xml.contains(&format!("<status>{status}</status>")),
            "{status}"
        );
    }
    assert_eq!(parse_str(&xml), Ok(doc));
}

// ---------------------------------------------------------------------------------------------
// dateTime

#[test]
fn formats_known_instants() {
    let cases = [
        (0, "1970-01-01T00:00:00Z"),
        (-1, "1969-12-31T23:59:59Z"),
        (T_2026, "2026-11-26T01:02:03Z"),
        (1_709_208_000, "2024-02-29T12:00:00Z"),
        (951_782_400, "2000-02-29T00:00:00Z"),
        (4_107_542_399, "2100-02-28T23:59:59Z"),
        (4_107_542_400, "2100-03-01T00:00:00Z"),
        (-2_203_891_200, "1900-03-01T00:00:00Z"),
        (MIN_SECS, "0001-01-01T00:00:00Z"),
        (MAX_SECS, "9999-12-31T23:59:59Z"),
    ];
    for (secs, text) in cases {
        assert_eq!(to_rfc3339(at(secs)), text, "{secs}");
        assert_eq!(parse_datetime(text), Some(at(secs)), "{text}");
    }
}

#[test]
fn formats_whole_seconds_rounding_down() {
    assert_eq!(
        to_rfc3339(at(5) + Duration::from_millis(999)),
        "1970-01-01T00:00:05Z"
    );
    // Half a second before the epoch lies in the last second of 1969.
    assert_eq!(
        to_rfc3339(UNIX_EPOCH - Duration::from_millis(500)),
        "1969-12-31T23:59:59Z"
    );
}

#[test]
fn clamps_years_outside_four_digits() {
    assert_eq!(
        to_rfc3339(at(MAX_SECS + 86_400 * 400)),
        "9999-12-31T23:59:59Z"
    );
    assert_eq!(
        to_rfc3339(at(MIN_SECS - 86_400 * 400)),
        "0001-01-01T00:00:00Z"
    );
}

#[test]
fn civil_conversion_is_consistent_day_by_day() {
    // Walk 1899-12-01 .. 2101-01-31 one day at a time, checking each date follows the previous.
    let start = days_from_civil(1899, 12, 1);
    let end = days_from_civil(2101, 1, 31);
    let mut prev = civil_from_days(start - 1);
    for days in start..=end {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
        let next_day = (prev.0, prev.1, prev.2 + 1) == (y, m, d);
        let next_month = (prev.0, prev.1 + 1, 1) == (y, m, d);
        let next_year = (prev.0 + 1, 1, 1) == (y, m, d) && prev.1 == 12 && prev.2 == 31;
        assert!(
            next_day || next_month || next_year,
            "{prev:?} -> {:?}",
            (y, m, d)
        );
        prev = (y, m, d);
    }
    // Leap rules: 2000 and 2024 have Feb 29; 1900 and 2100 do not.
    assert_eq!(
        civil_from_days(days_from_civil(2000, 2, 28) + 1),
        (2000, 2, 29)
    );
    assert_eq!(
        civil_from_days(days_from_civil(2024, 2, 28) + 1),
        (2024, 2, 29)
    );
    assert_eq!(
        civil_from_days(days_from_civil(1900, 2, 28) + 1),
        (1900, 3, 1)
    );
    assert_eq!(
        civil_from_days(days_from_civil(2100, 2, 28) + 1),
        (2100, 3, 1)
    );
    assert_eq!(civil_from_days(0), (1970, 1, 1));
}

#[test]
fn parses_offsets_fractions_and_edge_forms() {
    let base = at(T_2026);
    assert_eq!(parse_datetime("2026-11-26T02:02:03+01:00"), Some(base));
    assert_eq!(parse_datetime("2026-11-25T20:32:03-04:30"), Some(base));
    assert_eq!(parse_datetime("2026-11-26T01:02:03"), Some(base));
    assert_eq!(parse_datetime(" 2026-11-26T01:02:03Z\n"), Some(base));
    assert_eq!(
        parse_datetime("2026-11-26T01:02:03.25Z"),
        Some(base + Duration::from_millis(250))
    );
    assert_eq!(
        parse_datetime("2026-11-26T01:02:03.1234567891Z"),
        Some(base + Duration::from_nanos(123_456_789))
    );
    assert_eq!(
        parse_datetime("2026-11-25T24:00:00Z"),
        parse_datetime("2026-11-26T00:00:00Z")
    );
    assert_eq!(
        parse_datetime("1969-12-31T23:59:59.5Z"),
        Some(UNIX_EPOCH - Duration::from_millis(500))
    );
}

#[test]
fn rejects_invalid_datetimes() {
    for bad in [
        "",
        "2026-11-26",
        "2026-11-26T01:02Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-11-31T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2026-11-26T25:00:00Z",
        "2026-11-26T24:00:01Z",
        "2026-11-26T23:60:00Z",
        "2026-11-26T23:59:60Z",
        "2026-11-26T01:02:03.Z",
        "2026-11-26T01:02:03+15:00",
        "2026-11-26T01:02:03+01",
        "2026-11-26T01:02:03Zjunk",
        "2026-11-26 01:02:03Z",
        "+2026-11-26T01:02:03Z",
        "２０２６-11-26T01:02:03Z",
    ] {
        assert_eq!(parse_datetime(bad), None, "{bad:?}");
    }
    assert!(parse_datetime("2024-02-29T00:00:00Z").is_some());
    assert!(parse_datetime("2000-02-29T00:00:00Z").is_some());
}

// ---------------------------------------------------------------------------------------------
// Parser

#[test]
fn parses_prefixed_namespace_comments_cdata_and_references() {
    let xml = "\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- c -->\
        <ci:conference-info xmlns:ci=\"urn:ietf:params:xml:ns:conference-info\" \
        entity=\"sip:c@x\" version=\" 9 \">\
        <ci:conference-state><ci:user-count>3</ci:user-count><ci:active>1</ci:active>\
        <ci:locked>0</ci:locked></ci:conference-state>\
        <ci:users><ci:user entity=\"sip:a&amp;b@x\"><ci:display-text>A<!-- x --><![CDATA[<&>]]>\
        &#x41;&#66;&lt;</ci:display-text></ci:user></ci:users>\
        </ci:conference-info>\n<!-- trailing comment -->\n";
    let doc = parse_str(xml).expect("valid");
    assert_eq!(doc.state, ElemState::Full, "state defaults to full");
    assert_eq!(doc.version, 9);
    assert_eq!(
        doc.conference_state,
        Some(ConferenceState {
            user_count: Some(3),
            active: Some(true),
            locked: Some(false)
        })
    );
    let users = doc.users.expect("users");
    assert_eq!(users.state, ElemState::Full);
    assert_eq!(users.users[0].entity, "sip:a&b@x");
    assert_eq!(users.users[0].display_text.as_deref(), Some("A<&>AB<"));
}

#[test]
fn ignores_extensions_in_other_namespaces() {
    let xml = wrap(
        "<x:ext xmlns:x=\"urn:example:ext\"><x:deep><user/></x:deep></x:ext>\
         <users xmlns:x=\"urn:example:ext\" x:flag=\"1\">\
         <user entity=\"sip:a@x\" x:color=\"red\" unknown=\"ignored\">\
         <x:nickname>al</x:nickname><display-text>A</display-text>\
         <endpoint entity=\"e\"><x:whatever/><status>alerting</status></endpoint>\
         </user></users>\
         <sidebars-by-ref><entry><uri>sip:s@x</uri></entry></sidebars-by-ref>\
         <ext xmlns=\"\">no namespace</ext>",
    );
    let doc = parse_str(&xml).expect("extensions are skipped");
    let users = doc.users.expect("users").users;
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].display_text.as_deref(), Some("A"));
    assert_eq!(users[0].endpoints[0].status, Some(EndpointStatus::Alerting));
}

#[test]
fn rejects_wrong_namespace() {
    let e = parse_str("<conference-info entity=\"sip:c@x\" version=\"1\"/>");
    assert_eq!(e, Err(ParseError::WrongNamespace { found: None }));
    let e = parse_str("<conference-info xmlns=\"urn:other\" entity=\"sip:c@x\" version=\"1\"/>");
    assert_eq!(
        e,
        Err(ParseError::WrongNamespace {
            found: Some("urn:other".into())
        })
    );
    let e = parse_str(
        "<dialog-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"x\" version=\"1\"/>",
    );
    assert_eq!(e, Err(ParseError::WrongRoot("dialog-info".into())));
    let e = parse_str("<p:conference-info xmlns:q=\"urn:x\" entity=\"x\" version=\"1\"/>");
    assert!(matches!(e, Err(ParseError::UnboundPrefix(_))), "{e:?}");
}

#[test]
fn rejects_dtd_and_entity_declarations() {
    let billion_laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">\
        <!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>"
        .to_owned()
        + &wrap("<users><user entity=\"&lol2;\"/></users>");
    assert_eq!(parse_str(&billion_laughs), Err(ParseError::Dtd));
    let external = "<!DOCTYPE x SYSTEM \"file:///etc/passwd\">".to_owned() + &wrap("");
    assert_eq!(parse_str(&external), Err(ParseError::Dtd));
}

#[test]
fn rejects_unknown_entities() {
    let e = parse_str(&wrap(
        "<users><user entity=\"a\"><display-text>&lol;</display-text></user></users>",
    ));
    assert_eq!(e, Err(ParseError::UnknownEntity("lol".into())));
    let e = parse_str(&wrap("<users><user entity=\"&lol;\"/></users>"));
    assert!(matches!(e, Err(ParseError::UnknownEntity(_))), "{e:?}");
}

#[test]
fn rejects_characters_xml_forbids() {
    let e = parse_str(&wrap(
        "<users><user entity=\"a\"><display-text>&#1;</display-text></user></users>",
    ));
    assert_eq!(e, Err(ParseError::InvalidChar(1)));
    let e = parse_str(&wrap("<users><user entity=\"a\u{2}\"/></users>"));
    assert_eq!(e, Err(ParseError::InvalidChar(2)));
    let e = parse_str(&wrap(
        "<users><user entity=\"a\"><display-text>\u{FFFE}</display-text></user></users>",
    ));
    assert_eq!(e, Err(ParseError::InvalidChar(0xFFFE)));
}

#[test]
fn enforces_depth_limit() {
    let depth = 40;
    let inner = "<x:a xmlns:x=\"urn:x\">".repeat(depth) + &"</x:a>".repeat(depth);
    let limits = Limits::default();
    assert_eq!(
        parse(wrap(&inner).as_bytes(), &limits),
        Err(ParseError::TooDeep {
            limit: limits.max_depth
        })
    );
    let shallow = Limits {
        max_depth: 2,
        ..Limits::default()
    };
    let xml = wrap("<users><user entity=\"a\"/></users>");
    assert_eq!(
        parse(xml.as_bytes(), &shallow),
        Err(ParseError::TooDeep { limit: 2 })
    );
    let enough = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    assert!(parse(xml.as_bytes(), &enough).is_ok());
}

#[test]
fn enforces_size_limit() {
    let xml = SAMPLE_XML.as_bytes();
    let limits = Limits {
        max_bytes: xml.len() - 1,
        ..Limits::default()
    };
    assert_eq!(
        parse(xml, &limits),
        Err(ParseError::TooLarge {
            size: xml.len(),
            limit: xml.len() - 1
        })
    );
    let limits = Limits {
        max_bytes: xml.len(),
        ..Limits::default()
    };
    assert!(parse(xml, &limits).is_ok());
}

#[test]
fn enforces_element_limit_including_skipped_elements() {
    let inner = "<x:a xmlns:x=\"urn:x\"/>".repeat(50);
    let limits = Limits {
        max_elements: 20,
        ..Limits::default()
    };
    assert_eq!(
        parse(wrap(&inner).as_bytes(), &limits),
        Err(ParseError::TooManyElements { limit: 20 })
    );
}

#[test]
fn limits_default_is_documented_values() {
    let l = Limits::default();
    assert_eq!(
        (l.max_bytes, l.max_depth, l.max_elements),
        (2 * 1024 * 1024, 32, 100_000)
    );
}

#[test]
fn rejects_malformed_documents() {
    let cases: &[&str] = &[
        "",
        "   ",
        "not xml",
        "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"a\" version=\"1\">",
        "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"a\" version=\"1\"></users>",
        "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"a\" entity=\"b\" version=\"1\"/>",
        "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"a & b\" version=\"1\"/>",
        "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"a\" version=\"1\"/><again/>",
        "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"a\" version=\"1\"/>junk",
        "junk<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"a\" version=\"1\"/>",
        "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\" entity=\"a\" version=\"1\"><?xml version=\"1.0\"?></conference-info>",
    ];
    for xml in cases {
        assert!(parse_str(xml).is_err(), "accepted {xml:?}");
    }
    assert_eq!(parse_str(""), Err(ParseError::NoRoot));
    assert_eq!(
        parse(b"<a>\xff</a>", &Limits::default()),
        Err(ParseError::NotUtf8)
    );
    let latin1 = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>".to_owned() + &wrap("");
    assert_eq!(
        parse_str(&latin1),
        Err(ParseError::UnsupportedEncoding("ISO-8859-1".into()))
    );
}

#[test]
fn rejects_schema_violations_with_named_errors() {
    let root = "<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\"";
    assert_eq!(
        parse_str(&format!("{root} version=\"1\"/>")),
        Err(ParseError::MissingAttribute {
            element: "conference-info",
            attribute: "entity"
        })
    );
    assert_eq!(
        parse_str(&format!("{root} entity=\"a\"/>")),
        Err(ParseError::MissingAttribute {
            element: "conference-info",
            attribute: "version"
        })
    );
    assert_eq!(
        parse_str(&format!("{root} entity=\"a\" version=\"-1\"/>")),
        Err(ParseError::InvalidValue {
            element: "conference-info",
            value: "-1".into()
        })
    );
    assert_eq!(
        parse_str(&format!(
            "{root} entity=\"a\" version=\"1\" state=\"gone\"/>"
        )),
        Err(ParseError::InvalidValue {
            element: "conference-info",
            value: "gone".into()
        })
    );
    assert_eq!(
        parse_str(&wrap("<users><user entity=\"a\"><endpoint entity=\"e\"><status>online</status></endpoint></user></users>")),
        Err(ParseError::InvalidValue { element: "status", value: "online".into() })
    );
    assert_eq!(
        parse_str(&wrap(
            "<conference-state><active>yes</active></conference-state>"
        )),
        Err(ParseError::InvalidValue {
            element: "active",
            value: "yes".into()
        })
    );
    assert_eq!(
        parse_str(&wrap(
            "<conference-state><user-count>4294967296</user-count></conference-state>"
        )),
        Err(ParseError::InvalidValue {
            element: "user-count",
            value: "4294967296".into()
        })
    );
    assert_eq!(
        parse_str(&wrap("<users><user entity=\"a\"><endpoint entity=\"e\"><joining-info><when>yesterday</when></joining-info></endpoint></user></users>")),
        Err(ParseError::InvalidValue { element: "when", value: "yesterday".into() })
    );
    assert_eq!(
        parse_str(&wrap("<users><user/></users>")),
        Err(ParseError::MissingAttribute {
            element: "user",
            attribute: "entity"
        })
    );
    assert_eq!(
        parse_str(&wrap(
            "<users><user entity=\"a\"><endpoint entity=\"e\"><media/></endpoint></user></users>"
        )),
        Err(ParseError::MissingAttribute {
            element: "media",
            attribute: "id"
        })
    );
    assert_eq!(
        parse_str(&wrap("<conference-description><available-media><entry><type>audio</type></entry></available-media></conference-description>")),
        Err(ParseError::MissingAttribute { element: "entry", attribute: "label" })
    );
    assert_eq!(
        parse_str(&wrap("<conference-description><available-media><entry label=\"1\"/></available-media></conference-description>")),
        Err(ParseError::MissingElement { element: "entry", child: "type" })
    );
    assert_eq!(
        parse_str(&wrap(
            "<host-info><uris><entry><purpose>x</purpose></entry></uris></host-info>"
        )),
        Err(ParseError::MissingElement {
            element: "entry",
            child: "uri"
        })
    );
    assert_eq!(
        parse_str(&wrap("<users><user entity=\"a\"><endpoint entity=\"e\"><call-info><sip><call-id>c</call-id><from-tag>f</from-tag></sip></call-info></endpoint></user></users>")),
        Err(ParseError::MissingElement { element: "sip", child: "to-tag" })
    );
    assert_eq!(
        parse_str(&wrap("<conference-state/><conference-state/>")),
        Err(ParseError::Duplicate {
            parent: "conference-info",
            element: "conference-state"
        })
    );
    assert_eq!(
        parse_str(&wrap("<users><user entity=\"a\"><display-text>x</display-text><display-text>y</display-text></user></users>")),
        Err(ParseError::Duplicate { parent: "user", element: "display-text" })
    );
    assert_eq!(
        parse_str(&wrap("<users><member/></users>")),
        Err(ParseError::UnexpectedElement {
            parent: "users",
            child: "member".into()
        })
    );
    assert_eq!(
        parse_str(&wrap(
            "<users><user entity=\"a\"><display-text>x<b>y</b></display-text></user></users>"
        )),
        Err(ParseError::UnexpectedElement {
            parent: "display-text",
            child: "b".into()
        })
    );
}

#[test]
fn error_messages_name_the_fault_and_stay_short() {
    let long = "x".repeat(10_000);
    let e = parse_str(&wrap(&format!(
        "<conference-state><active>{long}</active></conference-state>"
    )))
    .expect_err("invalid");
    let msg = e.to_string();
    assert!(msg.contains("<active>"), "{msg}");
    assert!(msg.len() < 200, "{msg}");
    assert_eq!(
        ParseError::WrongNamespace { found: None }.to_string(),
        "root element namespace is None, expected urn:ietf:params:xml:ns:conference-info"
    );
}

#[test]
fn parses_call_info_without_sip_as_none() {
    let xml = wrap(
        "<users><user entity=\"a\"><endpoint entity=\"e\">\
         <call-info><x:h323 xmlns:x=\"urn:x\"/></call-info></endpoint></user></users>",
    );
    let doc = parse_str(&xml).expect("valid");
    assert_eq!(
        doc.users.expect("users").users[0].endpoints[0].call_info,
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Partial notifications

fn roster(doc: &mut ConferenceInfo) -> &mut Vec<User> {
    &mut doc.users.get_or_insert_with(Users::default).users
}

#[test]
fn delta_of_identical_documents_is_none() {
    assert_eq!(delta(&sample(), &sample()), None);
}

#[test]
fn delta_sends_joined_changed_and_left_users() {
    let old = sample();
    let mut new = sample();
    new.version = 8;
    let carol = User::new("sip:carol@example.com");
    roster(&mut new).push(carol.clone());
    roster(&mut new).retain(|u| u.entity != "sip:bob@example.com");
    roster(&mut new)[0].endpoints[0].status = Some(EndpointStatus::OnHold);
    let d = delta(&old, &new).expect("changed");
    assert_eq!(d.state, ElemState::Partial);
    assert_eq!(d.version, 8);
    assert_eq!(d.description, None);
    assert_eq!(d.host_info, None);
    assert_eq!(d.conference_state, None);
    let users = d.users.expect("users");
    assert_eq!(users.state, ElemState::Partial);
    let summary: Vec<(&str, ElemState)> = users
        .users
        .iter()
        .map(|u| (u.entity.as_str(), u.state))
        .collect();
    assert_eq!(
        summary,
        [
            ("sip:alice@example.com", ElemState::Full),
            ("sip:carol@example.com", ElemState::Full),
            ("sip:bob@example.com", ElemState::Deleted),
        ]
    );
    assert_eq!(
        users.users[0].endpoints[0].status,
        Some(EndpointStatus::OnHold)
    );
    assert_eq!(
        users.users[2],
        User {
            state: ElemState::Deleted,
            ..User::new("sip:bob@example.com")
        }
    );

    let xml = render_string(&{
        let mut d = delta(&old, &new).expect("changed");
        d.users.as_mut().expect("users").users.truncate(0);
        d.users
            .as_mut()
            .expect("users")
            .users
            .push(users.users[2].clone());
        d
    });
    assert!(
        xml.contains(
            "state=\"partial\" version=\"8\"><users state=\"partial\">\
         <user entity=\"sip:bob@example.com\" state=\"deleted\"></user></users>"
        ),
        "{xml}"
    );
}

#[test]
fn delta_includes_conference_state_and_description_only_when_changed() {
    let old = sample();
    let mut new = sample();
    new.conference_state = Some(ConferenceState {
        locked: Some(true),
        ..old.conference_state.unwrap_or_default()
    });
    let d = delta(&old, &new).expect("changed");
    assert_eq!(d.conference_state, new.conference_state);
    assert_eq!((d.description, d.host_info, d.users), (None, None, None));

    let mut new = sample();
    if let Some(desc) = new.description.as_mut() {
        desc.subject = Some("new subject".into());
    }
    let d = delta(&old, &new).expect("changed");
    assert_eq!(d.description, new.description);
    assert_eq!((d.conference_state, d.users), (None, None));
}

#[test]
fn apply_merges_partials_and_checks_versions() {
    let mut view = sample();
    let mut next = sample();
    roster(&mut next).retain(|u| u.entity != "sip:alice@example.com");
    next.conference_state = Some(ConferenceState {
        user_count: Some(1),
        active: Some(true),
        locked: Some(false),
    });
    let mut d = delta(&view, &next).expect("changed");
    d.version = 8;
    apply(&mut view, &d).expect("in order");
    next.version = 8;
    assert_eq!(view, next);

    // Replaying it is a version error and leaves the view alone.
    assert_eq!(
        apply(&mut view, &d),
        Err(ApplyError::VersionGap { current: 8, got: 8 })
    );
    d.version = 10;
    assert_eq!(
        apply(&mut view, &d),
        Err(ApplyError::VersionGap {
            current: 8,
            got: 10
        })
    );
    assert_eq!(view, next);

    let mut other = d.clone();
    other.entity = "sip:other@x".into();
    assert!(matches!(
        apply(&mut view, &other),
        Err(ApplyError::EntityMismatch { .. })
    ));

    // A full document always resets the view, whatever its version.
    let full = sample();
    apply(&mut view, &full).expect("full");
    assert_eq!(view, full);
}

#[test]
fn apply_handles_partial_users_and_endpoints_from_other_notifiers() {
    let mut view = sample();
    let update = ConferenceInfo {
        state: ElemState::Partial,
        version: 8,
        users: Some(Users {
            state: ElemState::Partial,
            users: vec![User {
                state: ElemState::Partial,
                display_text: Some("Alice B.".into()),
                endpoints: vec![
                    Endpoint {
                        state: ElemState::Partial,
                        status: Some(EndpointStatus::MutedViaFocus),
                        media: vec![Media {
                            id: "2".into(),
                            ..Media::default()
                        }],
                        ..Endpoint::new("sip:alice@10.0.0.1:5060;transport=tcp")
                    },
                    Endpoint::new("sip:alice@phone"),
                ],
                ..User::new("sip:alice@example.com")
            }],
        }),
        ..ConferenceInfo::full("sip:conf-1@focus.example.com", 8)
    };
    apply(&mut view, &update).expect("in order");
    let alice_now = &view.users.as_ref().expect("users").users[0];
    assert_eq!(alice_now.display_text.as_deref(), Some("Alice B."));
    assert_eq!(alice_now.roles, alice().roles, "absent children are kept");
    assert_eq!(alice_now.endpoints.len(), 2);
    let ep = &alice_now.endpoints[0];
    assert_eq!(ep.status, Some(EndpointStatus::MutedViaFocus));
    assert_eq!(ep.joining_method, Some(JoiningMethod::DialedIn));
    assert_eq!(
        ep.media.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["1", "2"]
    );
    assert_eq!(view.version, 8);
    assert_eq!(view.description, sample().description);
}

// ---------------------------------------------------------------------------------------------
// Size and speed

fn big_roster(n: usize) -> ConferenceInfo {
    let mut doc = sample();
    let users = roster(&mut doc);
    users.clear();
    for i in 0..n {
        let mut u = alice();
        u.entity = format!("sip:user{i}@example.com");
        u.display_text = Some(format!("User {i}"));
        u.endpoints[0].entity = format!("sip:user{i}@10.0.{}.{}:5060", i / 256, i % 256);
        users.push(u);
    }
    doc
}

#[test]
fn large_roster_round_trips() {
    let doc = big_roster(1000);
    let bytes = to_bytes(&doc);
    assert_eq!(parse(&bytes, &Limits::default()), Ok(doc));
}

/// `cargo test --release --lib conference_info -- --ignored --nocapture`
#[test]
#[ignore = "timing report, run in release mode"]
fn render_1000_users_timing() {
    let doc = big_roster(1000);
    let mut out = Vec::new();
    render(&doc, &mut out);
    let size = out.len();
    let rounds = 200u32;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        out.clear();
        render(std::hint::black_box(&doc), &mut out);
    }
    let warm = start.elapsed() / rounds;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(to_bytes(std::hint::black_box(&doc)));
    }
    let cold = start.elapsed() / rounds;
    let start = std::time::Instant::now();
    for _ in 0..20 {
        std::hint::black_box(parse(&out, &Limits::default()).is_ok());
    }
    let parsed = start.elapsed() / 20;
    println!(
        "1000 users, {size} bytes: render {warm:?} (reused buffer), {cold:?} (fresh Bytes); \
         parse {parsed:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 &<>\"'\t\n\r:;@./=_~é中😀\u{7f}\u{85}\u{FEFF}-]{0,10}"
}

fn token() -> impl Strategy<Value = String> {
    "[a-z0-9-]{1,8}"
}

fn time() -> impl Strategy<Value = SystemTime> {
    (MIN_SECS..=MAX_SECS).prop_map(at)
}

fn uri_entry() -> impl Strategy<Value = UriEntry> {
    (text(), option::of(text()), option::of(text())).prop_map(|(uri, display_text, purpose)| {
        UriEntry {
            uri,
            display_text,
            purpose,
        }
    })
}

fn execution() -> impl Strategy<Value = Execution> {
    (option::of(time()), option::of(text()), option::of(text()))
        .prop_map(|(when, reason, by)| Execution { when, reason, by })
}

fn state() -> impl Strategy<Value = ElemState> {
    proptest::sample::select(ElemState::ALL)
}

fn media() -> impl Strategy<Value = Media> {
    (
        text(),
        option::of(text()),
        option::of(text()),
        option::of(text()),
        option::of(text()),
        option::of(proptest::sample::select(MediaStatus::ALL)),
    )
        .prop_map(
            |(id, display_text, media_type, label, src_id, status)| Media {
                id,
                display_text,
                media_type,
                label,
                src_id,
                status,
            },
        )
}

fn endpoint() -> impl Strategy<Value = Endpoint> {
    let head = (
        text(),
        state(),
        option::of(text()),
        option::of(execution()),
        option::of(proptest::sample::select(EndpointStatus::ALL)),
        option::of(proptest::sample::select(JoiningMethod::ALL)),
    );
    let tail = (
        option::of(execution()),
        option::of(proptest::sample::select(DisconnectionMethod::ALL)),
        option::of(execution()),
        vec(media(), 0..3),
        option::of((option::of(text()), text(), text(), text()).prop_map(
            |(display_text, call_id, from_tag, to_tag)| SipDialogInfo {
                display_text,
                call_id,
                from_tag,
                to_tag,
            },
        )),
        any::<bool>(),
    );
    (head, tail).prop_map(
        |(
            (entity, state, display_text, referred, status, joining_method),
            (joining_info, disconnection_method, disconnection_info, media, call_info, unverified),
        )| Endpoint {
            entity,
            state,
            display_text,
            referred,
            status,
            joining_method,
            joining_info,
            disconnection_method,
            disconnection_info,
            media,
            call_info,
            unverified,
        },
    )
}

/// A user without its entity (the delta tests pick entities from a fixed pool).
fn user_body() -> impl Strategy<Value = User> {
    (
        option::of(text()),
        vec(uri_entry(), 0..2),
        vec(text(), 0..3),
        vec(token(), 0..3),
        option::of(text()),
        vec(endpoint(), 0..3),
    )
        .prop_map(
            |(display_text, associated_aors, roles, languages, cascaded_focus, endpoints)| User {
                entity: String::new(),
                state: ElemState::Full,
                display_text,
                associated_aors,
                roles,
                languages,
                cascaded_focus,
                endpoints,
            },
        )
}

fn user() -> impl Strategy<Value = User> {
    (text(), state(), user_body()).prop_map(|(entity, state, body)| User {
        entity,
        state,
        ..body
    })
}

fn description() -> impl Strategy<Value = ConferenceDescription> {
    let available = (
        text(),
        text(),
        option::of(text()),
        option::of(proptest::sample::select(MediaStatus::ALL)),
    )
        .prop_map(|(label, media_type, display_text, status)| AvailableMedia {
            label,
            media_type,
            display_text,
            status,
        });
    (
        option::of(text()),
        option::of(text()),
        option::of(text()),
        vec(token(), 0..3),
        vec(uri_entry(), 0..3),
        vec(uri_entry(), 0..2),
        option::of(any::<u32>()),
        vec(available, 0..3),
    )
        .prop_map(
            |(display_text, subject, free_text, keywords, conf_uris, service_uris, max, media)| {
                ConferenceDescription {
                    display_text,
                    subject,
                    free_text,
                    keywords,
                    conf_uris,
                    service_uris,
                    maximum_user_count: max,
                    available_media: media,
                }
            },
        )
}

fn conference_state() -> impl Strategy<Value = ConferenceState> {
    (
        option::of(any::<u32>()),
        option::of(any::<bool>()),
        option::of(any::<bool>()),
    )
        .prop_map(|(user_count, active, locked)| ConferenceState {
            user_count,
            active,
            locked,
        })
}

fn document() -> impl Strategy<Value = ConferenceInfo> {
    let host = (
        option::of(text()),
        option::of(text()),
        vec(uri_entry(), 0..2),
    )
        .prop_map(|(display_text, web_page, uris)| HostInfo {
            display_text,
            web_page,
            uris,
        });
    (
        text(),
        state(),
        any::<u32>(),
        option::of(description()),
        option::of(host),
        option::of(conference_state()),
        option::of((state(), vec(user(), 0..4)).prop_map(|(state, users)| Users { state, users })),
    )
        .prop_map(
            |(entity, state, version, description, host_info, conference_state, users)| {
                ConferenceInfo {
                    entity,
                    state,
                    version,
                    description,
                    host_info,
                    conference_state,
                    users,
                }
            },
        )
}

use proptest::collection::vec;
use proptest::option;

/// A full conference view: users from a pool of 6 entities, present or not.
fn full_view(
    slots: Vec<Option<User>>,
    cs: ConferenceState,
    subject: bool,
    version: u32,
) -> ConferenceInfo {
    let users = slots
        .into_iter()
        .enumerate()
        .filter_map(|(i, u)| {
            u.map(|u| User {
                entity: format!("sip:u{i}@example.com"),
                ..u
            })
        })
        .collect();
    let mut doc = sample();
    doc.version = version;
    doc.conference_state = Some(cs);
    if let Some(d) = doc.description.as_mut() {
        d.subject = Some(if subject { "a" } else { "b" }.into());
    }
    doc.users = Some(Users {
        state: ElemState::Full,
        users,
    });
    doc
}

/// Users are keyed by entity: compare rosters as sets.
fn normalized(mut doc: ConferenceInfo) -> ConferenceInfo {
    if let Some(u) = doc.users.as_mut() {
        u.users.sort_by(|a, b| a.entity.cmp(&b.entity));
    }
    doc
}

/// What happens to one pool slot between two snapshots.
#[derive(Debug, Clone)]
enum Change {
    Keep,
    Leave,
    Set(User),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::Keep),
        1 => Just(Change::Leave),
        2 => user_body().prop_map(Change::Set),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_document_round_trips(doc in document()) {
        let bytes = to_bytes(&doc);
        prop_assert_eq!(parse(&bytes, &Limits::default()), Ok(doc));
    }

    #[test]
    fn merging_partials_reproduces_the_current_view(
        first in vec(option::of(user_body()), 6),
        steps in vec((vec(change(), 6), conference_state(), any::<bool>()), 1..6),
        first_cs in conference_state(),
    ) {
        let mut slots = first;
        let mut prev = full_view(slots.clone(), first_cs, true, 1);
        // The subscriber's view, built only from what went over the wire.
        let mut view = parse(&to_bytes(&prev), &Limits::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (changes, cs, subject) in steps {
            for (slot, change) in slots.iter_mut().zip(changes) {
                match change {
                    Change::Keep => {}
                    Change::Leave => *slot = None,
                    Change::Set(u) => *slot = Some(u),
                }
            }
            let next = full_view(slots.clone(), cs, subject, view.version + 1);
            match delta(&prev, &next) {
                None => prop_assert_eq!(normalized(prev.clone()), normalized(ConferenceInfo { version: prev.version, ..next.clone() })),
                Some(mut partial) => {
                    partial.version = view.version + 1;
                    let wire = parse(&to_bytes(&partial), &Limits::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(&wire, &partial);
                    apply(&mut view, &wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(normalized(view.clone()), normalized(next.clone()));
                }
            }
            prev = ConferenceInfo { version: view.version, ..next };
        }
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes, &Limits::default());
    }

    #[test]
    fn parser_never_panics_on_mutated_documents(
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut bytes = SAMPLE_XML.as_bytes().to_vec();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len()));
        }
        let _ = parse(&bytes, &Limits::default());
    }

    #[test]
    fn datetime_round_trips(secs in MIN_SECS..=MAX_SECS) {
        let text = to_rfc3339(at(secs));
        prop_assert_eq!(parse_datetime(&text), Some(at(secs)));
    }
}

#[test]
fn an_unverified_endpoint_carries_the_focus_extension_attribute() {
    let mut doc = ConferenceInfo::full("sip:conf@focus.example.com", 1);
    doc.users = Some(Users {
        state: ElemState::Full,
        users: vec![User {
            endpoints: vec![Endpoint {
                unverified: true,
                ..Endpoint::new("sip:mallory@192.0.2.66")
            }],
            ..User::new("sip:alice@example.com")
        }],
    });
    let bytes = to_bytes(&doc);
    let text = std::str::from_utf8(&bytes).unwrap();
    assert!(
        text.contains(&format!(
            "<endpoint entity=\"sip:mallory@192.0.2.66\" state=\"full\" xmlns:cpmf=\"{FOCUS_NAMESPACE}\" cpmf:verified=\"false\">"
        )),
        "{text}"
    );
    let back = parse(&bytes, &Limits::default()).unwrap();
    assert_eq!(back, doc);
    // A verified endpoint carries nothing extra; a receiver ignores an attribute of another
    // namespace with the same name.
    let plain = text.replace(FOCUS_NAMESPACE, "urn:example:other");
    let other = parse(plain.as_bytes(), &Limits::default()).unwrap();
    let ep = &other.users.unwrap().users[0].endpoints[0];
    assert!(!ep.unverified);
}
