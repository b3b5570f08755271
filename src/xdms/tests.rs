use super::rls::{parse, RlsError};
use super::store::{Applied, Documents};
use crate::body::resource_lists::ListLimits;
use crate::config::{Config, JoinRule};

const BOARD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"
    xmlns:rl="urn:ietf:params:xml:ns:resource-lists">
  <service uri="sip:board@focus.example.com">
    <list name="board">
      <rl:display-name>The &amp; Board</rl:display-name>
      <rl:entry uri="sip:alice@example.com"><rl:display-name>Alice</rl:display-name></rl:entry>
      <rl:list name="more"><rl:entry uri="sip:carol@example.com"/></rl:list>
      <rl:entry-ref ref="users/x/index/~~/resource-lists/list%5b@name=%22a%22%5d"/>
    </list>
    <packages><package>presence</package></packages>
  </service>
  <service uri="sip:elsewhere@focus.example.com">
    <resource-list>http://xcap.example.com/resource-lists/users/x/index/~~/x</resource-list>
  </service>
</rls-services>"#;

fn limits() -> ListLimits {
    Config::default().xml.list_limits()
}

fn config() -> Config {
    Config::from_toml("").unwrap()
}

#[test]
fn services_lists_and_names_are_read() {
    let doc = parse(BOARD.as_bytes(), &limits()).unwrap();
    assert_eq!(doc.services.len(), 2);
    let board = &doc.services[0];
    assert_eq!(board.uri, "sip:board@focus.example.com");
    assert_eq!(board.display_name, "The & Board");
    assert_eq!(
        board.members,
        ["sip:alice@example.com", "sip:carol@example.com"],
        "entries of nested lists are flattened; an entry's own display name is not the group's"
    );
    assert!(doc.services[1].members.is_empty());
    assert_eq!(doc.ignored.len(), 2, "{:?}", doc.ignored);
}

#[test]
fn one_default_namespace_is_understood_too() {
    let doc = r#"<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"><service uri="sip:t@focus.example.com"><list><entry uri="sip:bob@example.com"/></list></service></rls-services>"#;
    let doc = parse(doc.as_bytes(), &limits()).unwrap();
    assert_eq!(doc.services[0].members, ["sip:bob@example.com"]);
}

/// What a refusal must be.
type Expected = fn(&RlsError) -> bool;

#[test]
fn hostile_and_wrong_documents_are_refused() {
    let l = ListLimits {
        max_bytes: 2048,
        max_depth: 6,
        max_elements: 50,
        max_entries: 5,
    };
    let wrap = |inner: &str| {
        format!(
            r#"<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"><service uri="sip:t@focus.example.com"><list>{inner}</list></service></rls-services>"#
        )
    };
    let cases: Vec<(String, Expected)> = vec![
        (
            r#"<!DOCTYPE r [<!ENTITY a "aaaa">]><rls-services xmlns="urn:ietf:params:xml:ns:rls-services"/>"#.into(),
            |e| matches!(e, RlsError::Dtd),
        ),
        (wrap("<entry uri=\"sip:&bad;@x\"/>"), |e| {
            matches!(e, RlsError::UnknownEntity(_) | RlsError::Malformed(_))
        }),
        (wrap(&"<list>".repeat(6)), |e| matches!(e, RlsError::TooDeep(6))),
        (wrap(&"<entry uri=\"sip:a@b\"/>".repeat(6)), |e| {
            matches!(e, RlsError::TooManyEntries(5))
        }),
        (wrap(&"<x xmlns=\"urn:other\"/>".repeat(60)), |e| {
            matches!(e, RlsError::TooManyElements(50))
        }),
        (wrap(&"<entry uri=\"sip:a@b\"/>".repeat(200)), |e| {
            matches!(e, RlsError::TooLarge { .. })
        }),
        (wrap("<entry/>"), |e| matches!(e, RlsError::MissingUri("entry"))),
        (
            r#"<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>"#.into(),
            |e| matches!(e, RlsError::WrongRoot),
        ),
        (wrap("<entry uri=\"sip:a@b\">"), |e| {
            matches!(e, RlsError::Malformed(_))
        }),
        ("".into(), |e| matches!(e, RlsError::NoRoot)),
        (
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>".into(),
            |e| matches!(e, RlsError::UnsupportedEncoding(_)),
        ),
    ];
    for (doc, expected) in cases {
        match parse(doc.as_bytes(), &l) {
            Err(e) => assert!(expected(&e), "{doc}: {e:?}"),
            Ok(r) => panic!("{doc} accepted: {r:?}"),
        }
    }
    assert!(matches!(parse(&[0xff, 0xfe], &l), Err(RlsError::NotUtf8)));
}

#[test]
fn services_map_to_members_only_groups_in_the_focus_domain() {
    let mut docs = Documents::default();
    let doc = r#"<rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">
      <service uri="sip:board@focus.example.com"><list>
        <rl:entry uri="sip:alice@example.com"/><rl:entry uri="sip:alice@example.com;x=y"/>
        <rl:entry uri="http://not-sip"/></list></service>
      <service uri="sip:board@focus.example.com"><list/></service>
      <service uri="sip:other@elsewhere.example.net"><list/></service>
      <service uri="sip:team@focus.example.com"><list/></service>
    </rls-services>"#;
    assert_eq!(
        docs.apply("d", Some("\"1\"".into()), doc.as_bytes(), &limits()),
        Ok(Applied::Changed)
    );
    let groups = docs.groups(&config());
    let uris: Vec<&str> = groups.iter().map(|g| g.uri.as_str()).collect();
    assert_eq!(
        uris,
        ["sip:board@focus.example.com", "sip:team@focus.example.com"],
        "the first of a duplicate wins; a foreign domain is left out"
    );
    assert_eq!(groups[0].join, JoinRule::MembersOnly);
    let members: Vec<&str> = groups[0].members.iter().map(|m| m.uri.as_str()).collect();
    assert_eq!(
        members,
        ["sip:alice@example.com"],
        "one per AoR, sip/tel only"
    );

    let open = Config::from_toml("[xdms]\njoin = \"open\"\nmax_groups = 1\n").unwrap();
    let groups = docs.groups(&open);
    assert_eq!(groups.len(), 1, "max_groups bounds the groups");
    assert_eq!(groups[0].join, JoinRule::Open);
}

#[test]
fn a_bad_document_is_refused_and_the_good_copy_stays() {
    let mut docs = Documents::default();
    let good = BOARD.as_bytes();
    assert_eq!(
        docs.apply("d", Some("\"e1\"".into()), good, &limits()),
        Ok(Applied::Changed)
    );
    assert!(docs
        .apply("d", Some("\"e2\"".into()), b"<rls-services", &limits())
        .is_err());
    assert_eq!(docs.etag("d"), Some("\"e1\""), "the good copy's ETag stays");
    assert_eq!(docs.groups(&config()).len(), 2);
    // The same content under a new ETag changes no group.
    assert_eq!(
        docs.apply("d", Some("\"e3\"".into()), good, &limits()),
        Ok(Applied::Same)
    );
    assert_eq!(docs.etag("d"), Some("\"e3\""));
    // A deleted document takes its groups with it.
    assert_eq!(docs.remove("d"), Applied::Changed);
    assert!(docs.groups(&config()).is_empty());
}

#[test]
fn the_cache_keeps_the_good_copies_without_their_etags() {
    let mut docs = Documents::default();
    docs.apply("d", Some("\"e1\"".into()), BOARD.as_bytes(), &limits())
        .unwrap();
    let text = docs.to_cache();
    let back = Documents::from_cache(&text, &["d".to_string()], &limits());
    assert_eq!(back.groups(&config()).len(), 2);
    assert_eq!(
        back.etag("d"),
        None,
        "the first fetch gets the document whole"
    );
    let other = Documents::from_cache(&text, &["other".to_string()], &limits());
    assert!(
        other.is_empty(),
        "documents no longer configured are dropped"
    );
    assert!(Documents::from_cache("not json", &[], &limits()).is_empty());
}

const OMA: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<group xmlns="urn:oma:xml:xdm:group" xmlns:rl="urn:ietf:params:xml:ns:resource-lists"
    xmlns:cr="urn:ietf:params:xml:ns:common-policy">
  <list-service uri="sip:friends@focus.example.com">
    <display-name>Friends &amp; co</display-name>
    <list>
      <rl:entry uri="sip:alice@example.com"><rl:display-name>Alice</rl:display-name></rl:entry>
      <rl:entry uri="sip:bob@example.com"/>
    </list>
    <invite-members>true</invite-members>
    <max-participant-count>7</max-participant-count>
    <supported-media><media>message</media><media>video</media></supported-media>
    <cr:ruleset>
      <cr:rule id="anyone"><cr:conditions><cr:identity><cr:many/></cr:identity></cr:conditions>
        <cr:actions><join-handling>allow</join-handling></cr:actions></cr:rule>
    </cr:ruleset>
  </list-service>
  <list-service uri="sip:club@focus.example.com">
    <list><rl:entry uri="sip:carol@example.com"/></list>
    <cr:ruleset>
      <cr:rule id="m"><cr:conditions><is-list-member/></cr:conditions>
        <cr:actions><join-handling>allow</join-handling></cr:actions></cr:rule>
      <cr:rule id="named"><cr:conditions><cr:identity><cr:one id="sip:x@y"/></cr:identity></cr:conditions>
        <cr:actions><join-handling>allow</join-handling></cr:actions></cr:rule>
    </cr:ruleset>
  </list-service>
</group>"#;

#[test]
fn the_oma_group_usage_maps_what_the_focus_supports_and_notes_the_rest() {
    let doc = parse(OMA.as_bytes(), &limits()).unwrap();
    let friends = &doc.services[0];
    assert_eq!(friends.uri, "sip:friends@focus.example.com");
    assert_eq!(friends.display_name, "Friends & co");
    assert_eq!(
        friends.members,
        ["sip:alice@example.com", "sip:bob@example.com"]
    );
    assert_eq!(friends.max_participants, Some(7));
    assert_eq!(friends.join_open, Some(true), "a rule for anyone");
    assert_eq!(doc.services[1].join_open, Some(false), "a rule for members");
    assert!(
        doc.ignored.iter().any(|n| n.contains("invite-members")),
        "{:?}",
        doc.ignored
    );
    assert!(
        doc.ignored.iter().any(|n| n.contains("named identities")),
        "{:?}",
        doc.ignored
    );

    let mut docs = Documents::default();
    docs.apply("g", None, OMA.as_bytes(), &limits()).unwrap();
    let groups = docs.groups(&config());
    assert_eq!(groups[0].join, JoinRule::Open);
    assert_eq!(groups[0].max_participants, 7);
    assert_eq!(
        groups[0].allowed_media,
        Some(vec![crate::config::MediaKind::Msrp]),
        "video is not served"
    );
    assert_eq!(groups[1].join, JoinRule::MembersOnly);
    assert_eq!(groups[1].max_participants, 1000, "the default");
    assert_eq!(groups[1].allowed_media, None);
}

#[test]
fn an_oma_group_is_bounded_like_any_document() {
    let l = ListLimits {
        max_entries: 1,
        ..limits()
    };
    assert!(matches!(
        parse(OMA.as_bytes(), &l),
        Err(RlsError::TooManyEntries(1))
    ));
    let no_uri = OMA.replace(" uri=\"sip:club@focus.example.com\"", "");
    assert!(matches!(
        parse(no_uri.as_bytes(), &limits()),
        Err(RlsError::MissingUri("list-service"))
    ));
    let trailing = format!("{OMA}<x/>");
    assert!(matches!(
        parse(trailing.as_bytes(), &limits()),
        Err(RlsError::Malformed(_))
    ));
}
