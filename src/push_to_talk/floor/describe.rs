//! Builds the attributes that describe requests, floors and users (RFC 8855 §5.2.15, §5.3.6,
//! §5.3.8): the "into_frame" half of the floor machine.
//!
//! A FLOOR-REQUEST-INFORMATION must fit its 8-bit length (252 octets with what it nests), so
//! optional parts go first when names are long: PARTICIPANT-PROVIDED-INFO, then the requester's
//! names, then the beneficiary's. Text is dropped whole, never cut inside a UTF-8 sequence.

use super::config::UserInfo;
use super::request::Request;
use crate::push_to_talk::bfcp::{Attribute, AttributeType, Primitive, RequestStatus};
use std::collections::BTreeMap;

/// The largest grouped attribute the 8-bit Length allows (a multiple of 4).
const MAX_GROUPED: usize = 252;

/// How one request is described.
pub(super) struct View<'a> {
    pub request: &'a Request,
    pub status: RequestStatus,
    /// Queue position per floor of the request.
    pub positions: &'a [u8],
    /// STATUS-INFO for the overall status (why it was denied or revoked).
    pub status_info: Option<&'a str>,
}

pub(super) fn floor_request_information(
    view: &View<'_>,
    users: &BTreeMap<u16, UserInfo>,
) -> Attribute {
    let mut detail = Detail::All;
    loop {
        let fri = build(view, users, detail);
        match detail.less() {
            Some(less) if fri.encoded_len() > MAX_GROUPED => detail = less,
            _ => return fri,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Detail {
    All,
    NoParticipantInfo,
    NoRequesterNames,
    NoNames,
}

impl Detail {
    fn less(self) -> Option<Detail> {
        match self {
            Detail::All => Some(Detail::NoParticipantInfo),
            Detail::NoParticipantInfo => Some(Detail::NoRequesterNames),
            Detail::NoRequesterNames => Some(Detail::NoNames),
            Detail::NoNames => None,
        }
    }
}

fn build(view: &View<'_>, users: &BTreeMap<u16, UserInfo>, detail: Detail) -> Attribute {
    let r = view.request;
    let overall_position = view.positions.iter().copied().max().unwrap_or(0);
    let mut overall = vec![Attribute::request_status(view.status, overall_position)];
    if let Some(info) = view.status_info {
        overall.push(Attribute::status_info(info));
    }
    let mut nested = vec![Attribute::overall_request_status(r.id, overall)];
    for (i, &floor) in r.floors.iter().enumerate() {
        let position = view.positions.get(i).copied().unwrap_or(0);
        nested.push(Attribute::floor_request_status(
            floor,
            vec![Attribute::request_status(view.status, position)],
        ));
    }
    let names = |user: u16| users.get(&user).map(user_names).unwrap_or_default();
    nested.push(Attribute::beneficiary_information(
        r.beneficiary,
        if detail < Detail::NoNames {
            names(r.beneficiary)
        } else {
            Vec::new()
        },
    ));
    if r.requester != r.beneficiary {
        nested.push(Attribute::requested_by_information(
            r.requester,
            if detail < Detail::NoRequesterNames {
                names(r.requester)
            } else {
                Vec::new()
            },
        ));
    }
    nested.push(Attribute::priority(r.priority));
    if let (Some(info), Detail::All) = (&r.info, detail) {
        nested.push(Attribute::participant_provided_info(info.clone()));
    }
    Attribute::floor_request_information(r.id, nested)
}

/// USER-DISPLAY-NAME and USER-URI, as BENEFICIARY-INFORMATION and REQUESTED-BY-INFORMATION
/// carry them.
pub(super) fn user_names(info: &UserInfo) -> Vec<Attribute> {
    let mut out = Vec::new();
    if let Some(name) = &info.display_name {
        out.push(Attribute::user_display_name(name.as_str()));
    }
    if let Some(uri) = &info.uri {
        out.push(Attribute::user_uri(uri.as_str()));
    }
    out
}

/// BENEFICIARY-INFORMATION for a UserStatus, names shortened to fit like above.
pub(super) fn beneficiary_information(user: u16, info: Option<&UserInfo>) -> Attribute {
    let full = Attribute::beneficiary_information(user, info.map(user_names).unwrap_or_default());
    if full.encoded_len() <= MAX_GROUPED {
        full
    } else {
        Attribute::beneficiary_information(user, Vec::new())
    }
}

/// What HelloAck says the server supports (RFC 8855 §5.3.12): every primitive and attribute
/// of RFC 8855.
pub(super) fn hello_ack() -> Vec<Attribute> {
    vec![
        Attribute::supported_primitives(Primitive::ALL.to_vec()),
        Attribute::supported_attributes(AttributeType::ALL.iter().map(|a| a.code()).collect()),
    ]
}
