//! Ad-hoc groups with a list of invitees (RFC 5366 with RFC 4826 and RFC 5364): the creator's
//! INVITE carries its SDP offer beside an `application/resource-lists+xml` part marked
//! `recipient-list`; after answering the creator the focus calls every listed URI. Restarted
//! sessions (RCS rejoin/restart) call their remembered members the same way.

use super::SessionState;
use crate::body::{multipart, resource_lists};
use crate::sip::BadRequest;
use crate::sip::{HeaderName, Request};
use bytes::Bytes;
use std::time::Instant;

/// What the first INVITE of a session said about the conversation, repeated to invitees.
#[derive(Debug, Clone, Default)]
pub(in crate::session) struct ConversationIds {
    pub subject: Option<String>,
    pub contribution_id: Option<String>,
    pub conversation_id: Option<String>,
}

/// The parts of an INVITE body: the SDP offer and, with `Require: recipient-list-invite`,
/// the invitees.
pub(in crate::session) struct InviteBody {
    pub sdp: Bytes,
    pub invitees: Vec<resource_lists::Entry>,
}

/// Splits an INVITE body; `Err` says why a body cannot be used. The list
/// is deduplicated but not bounded here: the caller refuses a long one by policy.
pub(in crate::session) fn split_invite_body(
    req: &Request,
    limits: &resource_lists::ListLimits,
) -> Result<InviteBody, BadRequest> {
    let wants_list = req
        .headers
        .has_token(HeaderName::Require, "recipient-list-invite");
    let ct = req.headers.get(HeaderName::ContentType).unwrap_or("");
    if !crate::sip::media_type(ct).eq_ignore_ascii_case("multipart/mixed") {
        if wants_list {
            // RFC 5366 §4: the request that requires the extension must carry the list.
            return Err(BadRequest("Missing recipient-list body part"));
        }
        return Ok(InviteBody {
            sdp: req.body.clone(),
            invitees: Vec::new(),
        });
    }
    let m = multipart::parse(ct, req.body.clone(), &multipart::MultipartLimits::default())
        .map_err(|_| BadRequest("Malformed multipart body"))?;
    let sdp = m
        .parts
        .iter()
        .find(|p| p.is_content_type("application/sdp"))
        .map(|p| p.body.clone())
        .unwrap_or_default();
    let mut invitees = Vec::new();
    if wants_list {
        let list = m
            .find_by_disposition(multipart::RECIPIENT_LIST)
            .filter(|p| p.is_content_type(resource_lists::MIME_TYPE))
            .ok_or(BadRequest("Missing recipient-list body part"))?;
        let mut parsed = resource_lists::parse(&list.body, limits)
            .map_err(|_| BadRequest("Malformed resource list"))?;
        parsed.dedup();
        invitees = parsed.entries;
    }
    Ok(InviteBody { sdp, invitees })
}

impl SessionState {
    /// Learns the conversation identifiers from the session's first INVITE.
    pub(super) fn learn_ids(&mut self, req: &Request) {
        if self.ids.is_some() {
            return;
        }
        let get = |h| req.headers.get(h).map(str::to_string);
        self.ids = Some(ConversationIds {
            subject: get(HeaderName::Subject).filter(|s| !s.is_empty()),
            contribution_id: get(HeaderName::ContributionId),
            conversation_id: get(HeaderName::ConversationId),
        });
    }

    /// Calls the invitees of a URI list (after the creator was answered).
    pub(super) fn invite_list(
        &mut self,
        now: Instant,
        entries: &[resource_lists::Entry],
        by: &str,
        creator: &str,
    ) {
        for e in entries {
            let Ok(uri) = crate::sip::Uri::parse(&e.uri) else {
                continue;
            };
            if !uri.is_sip() || uri.aor() == creator {
                continue;
            }
            // RFC 5364: bcc and anonymized invitees are never shown to the others.
            let hidden = e.anonymize || e.copy_control == resource_lists::CopyControl::Bcc;
            let target = crate::sip::NameAddr {
                display: if hidden {
                    None
                } else {
                    e.display_name.as_deref().map(Into::into)
                },
                uri,
                params: Vec::new(),
            };
            self.dial_out_as(now, &target, None, by, hidden);
        }
    }

    /// A restarted session calls its remembered members again when its first participant
    /// arrives.
    pub(super) fn call_back_members(&mut self, now: Instant, joiner: &str) {
        if self.called_back {
            return;
        }
        self.called_back = true;
        let members = self.settings.restart_members.clone();
        for (address, display) in members {
            let Ok(uri) = crate::sip::Uri::parse(&address) else {
                continue;
            };
            if uri.aor() == joiner {
                continue;
            }
            let target = crate::sip::NameAddr {
                display: display.map(Into::into),
                uri,
                params: Vec::new(),
            };
            self.dial_out_as(now, &target, None, joiner, false);
        }
    }

    /// What an ended ad-hoc session leaves for a restart: its URI user, subject, identifiers
    /// and every member it had.
    pub fn adhoc_record(&self) -> Option<AdhocRecord> {
        if self.settings.kind == crate::session::SessionKind::Predefined {
            return None;
        }
        let ids = self.ids.clone().unwrap_or_default();
        let key = ids
            .contribution_id
            .clone()
            .or(ids.conversation_id.clone())?;
        Some(AdhocRecord {
            key,
            conference_uri: self.settings.conference_uri.clone(),
            subject: ids.subject,
            contribution_id: ids.contribution_id,
            conversation_id: ids.conversation_id,
            members: self.ever.clone(),
        })
    }
}

/// An ended ad-hoc session, remembered for restart.
#[derive(Debug, Clone)]
pub struct AdhocRecord {
    /// Contribution-ID (or Conversation-ID) that restarts it.
    pub key: String,
    pub conference_uri: String,
    pub subject: Option<String>,
    pub contribution_id: Option<String>,
    pub conversation_id: Option<String>,
    /// Members (where to call them, display name) in the order they came: the URI the
    /// focus called for invitees, the address of record for those who dialed in.
    pub members: Vec<(String, Option<String>)>,
}
