use crate::charging::*;
use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

/// One record of every type, with every optional field set.
pub(super) fn every_record() -> Vec<Record> {
    let conf = "sip:team@focus.example.com".to_string();
    vec![
        Record::SessionStart {
            conference: conf.clone(),
            kind: SessionKind::Predefined,
            subject: Some("Team chat".into()),
            recovered: true,
        },
        Record::SessionStop {
            conference: conf.clone(),
            duration_s: 3600,
            participants_total: 7,
            reason: Some(StopReason::Crash),
        },
        Record::ParticipantJoin {
            conference: conf.clone(),
            participant: "sip:anonymous-1@anonymous.invalid".into(),
            identity: "source:192.0.2.7".into(),
            joining_method: JoiningMethod::DialedOut,
            anonymous: true,
            verified: false,
        },
        Record::ParticipantLeave {
            conference: conf.clone(),
            participant: "sip:anonymous-1@anonymous.invalid".into(),
            identity: "source:192.0.2.7".into(),
            verified: false,
            disconnection_method: DisconnectionMethod::Booted,
            duration_s: 61,
            reason: Some(StopReason::Crash),
        },
        Record::GroupMessage {
            conference: Some(conf.clone()),
            sender: "source:[2001:db8::7]".into(),
            recipients: 5,
            size: 1234,
            mode: MessageMode::Exploder,
            verified: false,
        },
        Record::MsrpVolume {
            conference: conf,
            participant: "sip:bob@example.com".into(),
            identity: "source:192.0.2.8".into(),
            verified: false,
            messages_sent: 3,
            bytes_sent: 300,
            messages_received: 4,
            bytes_received: 400,
        },
    ]
}

fn entry(seq: u64, record: Record) -> Entry {
    Entry {
        seq,
        ts: Timestamp::from(UNIX_EPOCH + Duration::from_millis(1_764_118_923_045)),
        instance: "focus-1".into(),
        record,
    }
}

#[test]
fn a_line_has_the_documented_shape() {
    let line = serde_json::to_string(&entry(
        42,
        Record::ParticipantLeave {
            conference: "sip:team@focus.example.com".into(),
            participant: "sip:a@example.com".into(),
            identity: "sip:a@example.com".into(),
            verified: true,
            disconnection_method: DisconnectionMethod::Departed,
            duration_s: 12,
            reason: None,
        },
    ))
    .unwrap();
    assert_eq!(
        line,
        r#"{"seq":42,"ts":"2025-11-26T01:02:03.045Z","instance":"focus-1","type":"participant_leave","conference":"sip:team@focus.example.com","participant":"sip:a@example.com","identity":"sip:a@example.com","disconnection_method":"departed","duration_s":12}"#
    );
}

#[test]
fn every_type_round_trips_and_names_its_type() {
    for (i, record) in every_record().into_iter().enumerate() {
        let e = entry(i as u64 + 1, record);
        let text = serde_json::to_string(&e).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], e.record.type_name(), "{text}");
        let back: Entry = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e, "{text}");
    }
}

#[test]
fn absent_options_are_left_out() {
    let text = serde_json::to_string(&entry(
        1,
        Record::GroupMessage {
            conference: None,
            sender: "sip:b@example.com".into(),
            recipients: 2,
            size: 10,
            mode: MessageMode::Pager,
            verified: true,
        },
    ))
    .unwrap();
    assert!(!text.contains("conference"), "{text}");
    assert!(!text.contains("verified"), "{text}");
    let text = serde_json::to_string(&entry(
        1,
        Record::SessionStart {
            conference: "sip:x@focus.example.com".into(),
            kind: SessionKind::Adhoc,
            subject: None,
            recovered: false,
        },
    ))
    .unwrap();
    assert!(!text.contains("subject"), "{text}");
    assert!(text.contains(r#""kind":"adhoc""#), "{text}");
}

#[test]
fn readers_ignore_fields_they_do_not_know() {
    let text = r#"{"seq":1,"ts":"2025-11-26T01:02:03.045Z","instance":"f","type":"session_stop","conference":"sip:c@f","duration_s":1,"participants_total":2,"later":"field"}"#;
    let e: Entry = serde_json::from_str(text).unwrap();
    assert_eq!(e.record.type_name(), "session_stop");
}

#[test]
fn the_schema_document_names_every_field_type_and_token() {
    let mut words = Vec::new();
    for record in every_record() {
        let Value::Object(map) = serde_json::to_value(entry(1, record)).unwrap() else {
            panic!("not an object")
        };
        for (key, value) in map {
            words.push(key);
            // Enum tokens (and the type) are strings the document must list.
            if let Value::String(s) = value {
                if s.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c == '_')
                {
                    words.push(s);
                }
            }
        }
    }
    let tokens = [
        "predefined",
        "adhoc",
        "restarted",
        "dialed-in",
        "dialed-out",
        "departed",
        "booted",
        "failed",
        "busy",
        "pager",
        "exploder",
    ];
    words.extend(tokens.iter().map(|t| t.to_string()));
    for word in words {
        assert!(
            SCHEMA_DOC.contains(&format!("`{word}`")),
            "SCHEMA_DOC does not document `{word}`"
        );
    }
}

#[test]
fn disconnection_methods_follow_conference_info() {
    use crate::conference_info::DisconnectionMethod as Ci;
    for &m in Ci::ALL {
        let ours = DisconnectionMethod::from(m);
        assert_eq!(serde_json::to_value(ours).unwrap(), m.as_str());
    }
}

#[test]
fn a_record_is_one_line_whatever_its_text_holds() {
    let text = serde_json::to_string(&entry(
        1,
        Record::SessionStart {
            conference: "sip:a@f".into(),
            kind: SessionKind::Restarted,
            subject: Some("two\nlines\r\u{2028}and \"quotes\"".into()),
            recovered: false,
        },
    ))
    .unwrap();
    assert!(!text.contains('\n') && !text.contains('\r'), "{text}");
    let back: Entry = serde_json::from_str(&text).unwrap();
    assert!(
        matches!(back.record, Record::SessionStart { subject: Some(s), .. } if s.starts_with("two\nlines"))
    );
}

#[test]
fn an_unverified_identity_is_marked_and_an_absent_mark_reads_as_verified() {
    let text = serde_json::to_string(&entry(1, every_record().remove(2))).unwrap();
    assert!(
        text.contains(r#""identity":"source:192.0.2.7","verified":false"#),
        "{text}"
    );
    // Lines written before the field existed (or with a proven identity) are verified.
    let old = r#"{"seq":1,"ts":"2025-11-26T01:02:03.045Z","instance":"f","type":"participant_join","conference":"sip:c@f","participant":"sip:a@x","identity":"sip:a@x","joining_method":"dialed-in","anonymous":false}"#;
    let e: Entry = serde_json::from_str(old).unwrap();
    assert!(matches!(
        e.record,
        Record::ParticipantJoin { verified: true, .. }
    ));
}
