//! The focus's side of RFC 3264 offer/answer.
//!
//! This module owns the rules every answer must follow (same m-lines in the same order,
//! rejected streams on port 0, mirrored directions, the focus's `o=` and `c=`); *which*
//! streams to accept and what to put in an accepted line is decided by a [`MediaPolicy`] the
//! caller supplies. MSRP, RTP audio and BFCP support plug in as policies without touching
//! this file.

use crate::sip::Status;
use std::net::IpAddr;

use thiserror::Error;

use super::attribute::Direction;
use super::error::{SdpError, ValidationError};
use super::model::{Connection, MediaDescription, Origin, SessionDescription, TimeDescription};

/// What to do with one offered stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaDecision {
    /// Accept, answering with this line (built by the policy: port, formats, `a=setup`,
    /// `a=path`...). If it carries no direction attribute, [`answer`] adds the mirror of the
    /// offered direction.
    Accept(MediaDescription),
    /// Reject: [`answer`] writes the port-0 line.
    Decline,
}

/// Decides, stream by stream, what the focus answers.
///
/// Not called for streams offered with port 0: those are always declined. `offer` gives
/// access to session-level `c=` and attributes that apply to the stream.
pub trait MediaPolicy {
    /// The decision for the offered stream at `index` (0-based m-line position).
    fn decide(
        &self,
        index: usize,
        offered: &MediaDescription,
        offer: &SessionDescription,
    ) -> MediaDecision;
}

impl<F> MediaPolicy for F
where
    F: Fn(usize, &MediaDescription, &SessionDescription) -> MediaDecision,
{
    fn decide(
        &self,
        index: usize,
        offered: &MediaDescription,
        offer: &SessionDescription,
    ) -> MediaDecision {
        self(index, offered, offer)
    }
}

/// Declines every stream: today the focus relays no media, and saying so honestly (port 0)
/// beats accepting streams nobody will serve. The participant joins signalling-only.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultDeclineAll;

impl MediaPolicy for DefaultDeclineAll {
    fn decide(&self, _: usize, _: &MediaDescription, _: &SessionDescription) -> MediaDecision {
        MediaDecision::Decline
    }
}

/// Who the focus is in the SDP it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerContext {
    /// `o=` username; `-` is customary.
    pub username: String,
    /// `o=` sess-id. In a dialog, [`LocalSdpState`](super::LocalSdpState) supplies it instead.
    pub session_id: u64,
    /// `o=` sess-version. In a dialog, [`LocalSdpState`](super::LocalSdpState) supplies it.
    pub session_version: u64,
    /// `o=` address (an identifier of the focus host; `IP4`/`IP6` follows from it).
    pub origin_address: IpAddr,
    /// Session-level `c=` address: where the focus takes media unless a line says otherwise.
    pub connection_address: IpAddr,
}

/// An answer and which streams it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub(super) sdp: SessionDescription,
    /// Per offered m-line: accepted (true) or declined (false).
    pub(super) accepted: Vec<bool>,
}

impl Answer {
    /// The answer SDP.
    pub fn sdp(&self) -> &SessionDescription {
        &self.sdp
    }

    /// The answer SDP, by value.
    pub fn into_sdp(self) -> SessionDescription {
        self.sdp
    }

    /// How many streams were accepted.
    pub fn accepted_count(&self) -> usize {
        self.accepted.iter().filter(|&&a| a).count()
    }

    /// Whether the stream at `index` was accepted (false when out of range).
    pub fn is_accepted(&self, index: usize) -> bool {
        self.accepted.get(index).copied().unwrap_or(false)
    }

    /// No stream accepted: the participant is in the conference by signalling only (this also
    /// holds for an offer without m-lines).
    pub fn is_signalling_only(&self) -> bool {
        self.accepted_count() == 0
    }
}

/// Why a policy's accepted line breaks RFC 3264; a bug in the caller, not in the peer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyFault {
    /// RFC 3264 §6.1: the media type of the answer must match the offer's.
    #[error("media type {answered:?} differs from offered {offered:?}")]
    MediaTypeChanged { offered: String, answered: String },
    /// The transport of a stream cannot change in the answer.
    #[error("proto {answered:?} differs from offered {offered:?}")]
    ProtoChanged { offered: String, answered: String },
    /// Port 0 is a rejection; use [`MediaDecision::Decline`].
    #[error("accepted with port 0 (decline instead)")]
    ZeroPort,
    /// RFC 3264 §6.1 direction rules (e.g. an offered sendonly stream answered sendonly).
    #[error("answered {answered:?} to an offered {offered:?} stream")]
    Direction {
        offered: Direction,
        answered: Direction,
    },
}

/// An offer the focus cannot answer at all. [`OfferError::status_code`] gives the SIP
/// response: 400 when the offer breaks RFC 8866, 488 when it is valid but unusable by the
/// focus, 500 when the fault is ours (policy or configuration).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OfferError {
    /// The body does not parse (400).
    #[error("offer does not parse: {0}")]
    Malformed(#[from] SdpError),
    /// A model built in code that is not valid SDP (400: same fault as a parse error).
    #[error("offer is not valid SDP: {0}")]
    InvalidOffer(ValidationError),
    /// An enabled stream with no `c=` at media or session level (RFC 8866 §5.7) (400).
    #[error("media {index}: no c= line at media or session level")]
    MissingConnection { index: usize },
    /// An enabled stream whose `c=` network type is not `IN` (488).
    #[error("media {index}: unsupported network type {nettype:?}")]
    UnsupportedNetType { index: usize, nettype: String },
    /// An enabled stream whose `c=` address type is neither `IP4` nor `IP6` (488).
    #[error("media {index}: unsupported address type {addrtype:?}")]
    UnsupportedAddrType { index: usize, addrtype: String },
    /// The policy's accepted line breaks RFC 3264 (500).
    #[error("media {index}: policy answer breaks RFC 3264: {fault}")]
    Policy { index: usize, fault: PolicyFault },
    /// The assembled answer is not valid SDP: a policy line or the context holds a field that
    /// would not serialize (500).
    #[error("built an invalid answer: {0}")]
    InvalidAnswer(ValidationError),
}

impl OfferError {
    /// The SIP status code to reject the offer with.
    pub fn status_code(&self) -> Status {
        match self {
            OfferError::Malformed(_)
            | OfferError::InvalidOffer(_)
            | OfferError::MissingConnection { .. } => Status::BAD_REQUEST,
            OfferError::UnsupportedNetType { .. } | OfferError::UnsupportedAddrType { .. } => {
                Status::NOT_ACCEPTABLE_HERE
            }
            OfferError::Policy { .. } | OfferError::InvalidAnswer(_) => {
                Status::SERVER_INTERNAL_ERROR
            }
        }
    }
}

/// Parses an offer body and answers it: the usual entry point for an INVITE with SDP.
pub fn answer_body<P>(body: &[u8], policy: &P, ctx: &AnswerContext) -> Result<Answer, OfferError>
where
    P: MediaPolicy + ?Sized,
{
    answer(&super::parse(body)?, policy, ctx)
}

/// Answers `offer` as the focus (RFC 3264 §6): one answer line per offered line, in order;
/// streams offered with port 0 or declined by `policy` become `m=<media> 0 <proto> <fmts>`;
/// accepted lines are checked against the offer and get the mirrored direction when they
/// carry none; `o=` and `c=` come from `ctx`, `s=-`, and `t=` is copied from the offer (RFC
/// 3264 §6: "the t= line in the answer MUST equal that of the offer"; in SIP it is `t=0 0`).
pub fn answer<P>(
    offer: &SessionDescription,
    policy: &P,
    ctx: &AnswerContext,
) -> Result<Answer, OfferError>
where
    P: MediaPolicy + ?Sized,
{
    answer_with_origin(offer, policy, ctx, ctx.session_id, ctx.session_version)
}

/// [`answer`] with the `o=` numbers given separately, for [`LocalSdpState`](super::LocalSdpState).
pub(super) fn answer_with_origin<P>(
    offer: &SessionDescription,
    policy: &P,
    ctx: &AnswerContext,
    session_id: u64,
    session_version: u64,
) -> Result<Answer, OfferError>
where
    P: MediaPolicy + ?Sized,
{
    offer.validate().map_err(OfferError::InvalidOffer)?;
    check_connections(offer)?;

    let mut sdp = focus_sdp(ctx, session_id, session_version, offer.times.clone());
    sdp.media.reserve_exact(offer.media.len());
    let mut accepted = Vec::with_capacity(offer.media.len());
    for (index, offered) in offer.media.iter().enumerate() {
        let decision = if offered.is_disabled() {
            MediaDecision::Decline
        } else {
            policy.decide(index, offered, offer)
        };
        match decision {
            MediaDecision::Accept(mut line) => {
                complete_accepted(offer, offered, &mut line)
                    .map_err(|fault| OfferError::Policy { index, fault })?;
                sdp.media.push(line);
                accepted.push(true);
            }
            MediaDecision::Decline => {
                sdp.media.push(declined(offered));
                accepted.push(false);
            }
        }
    }
    sdp.validate().map_err(OfferError::InvalidAnswer)?;
    Ok(Answer { sdp, accepted })
}

/// Builds the focus's offer for a delayed-offer INVITE (the focus offers in its 2xx): `o=`
/// and `c=` from `ctx`, `s=-`, `t=0 0`, and the caller's lines in order. No lines is legal
/// (a signalling-only session). Fails only if a line would not serialize.
pub fn offer(
    media: Vec<MediaDescription>,
    ctx: &AnswerContext,
) -> Result<SessionDescription, ValidationError> {
    offer_with_origin(media, ctx, ctx.session_id, ctx.session_version)
}

/// [`offer`] with the `o=` numbers given separately, for [`LocalSdpState`](super::LocalSdpState).
pub(super) fn offer_with_origin(
    media: Vec<MediaDescription>,
    ctx: &AnswerContext,
    session_id: u64,
    session_version: u64,
) -> Result<SessionDescription, ValidationError> {
    let mut sdp = focus_sdp(
        ctx,
        session_id,
        session_version,
        vec![TimeDescription::unbounded()],
    );
    sdp.media = media;
    sdp.validate()?;
    Ok(sdp)
}

/// The session level of everything the focus sends.
fn focus_sdp(
    ctx: &AnswerContext,
    session_id: u64,
    version: u64,
    times: Vec<TimeDescription>,
) -> SessionDescription {
    let origin = Origin::new(
        ctx.username.as_str(),
        session_id,
        version,
        ctx.origin_address,
    );
    let mut sdp = SessionDescription::new(origin, "-");
    sdp.connection = Some(Connection::from_ip(ctx.connection_address));
    sdp.times = times;
    sdp
}

/// Every enabled stream needs a usable `c=`: `IN` with `IP4` or `IP6`.
fn check_connections(offer: &SessionDescription) -> Result<(), OfferError> {
    for (index, m) in offer.media.iter().enumerate() {
        if m.is_disabled() {
            continue;
        }
        let connections = offer.connections_for(m);
        if connections.is_empty() {
            return Err(OfferError::MissingConnection { index });
        }
        for c in connections {
            if !c.nettype.eq_ignore_ascii_case("IN") {
                return Err(OfferError::UnsupportedNetType {
                    index,
                    nettype: c.nettype.clone(),
                });
            }
            if !c.addrtype.eq_ignore_ascii_case("IP4") && !c.addrtype.eq_ignore_ascii_case("IP6") {
                return Err(OfferError::UnsupportedAddrType {
                    index,
                    addrtype: c.addrtype.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The RFC 3264 §6 rejection of `offered`: same media and proto, port 0, the offered formats
/// (SDP needs at least one; they are ignored), nothing else.
fn declined(offered: &MediaDescription) -> MediaDescription {
    MediaDescription::new(
        offered.media.as_str(),
        0,
        offered.proto.as_str(),
        offered.formats.iter().cloned(),
    )
}

/// Checks an accepted line against its offered line and adds the mirrored direction.
fn complete_accepted(
    offer: &SessionDescription,
    offered: &MediaDescription,
    line: &mut MediaDescription,
) -> Result<(), PolicyFault> {
    if !line.media.eq_ignore_ascii_case(&offered.media) {
        return Err(PolicyFault::MediaTypeChanged {
            offered: offered.media.clone(),
            answered: line.media.clone(),
        });
    }
    if !line.proto.eq_ignore_ascii_case(&offered.proto) {
        return Err(PolicyFault::ProtoChanged {
            offered: offered.proto.clone(),
            answered: line.proto.clone(),
        });
    }
    if line.is_disabled() {
        return Err(PolicyFault::ZeroPort);
    }
    let offered_direction = offer.media_direction(offered);
    match line.direction() {
        Some(answered) if !offered_direction.allows_answer(answered) => {
            Err(PolicyFault::Direction {
                offered: offered_direction,
                answered,
            })
        }
        Some(_) => Ok(()),
        None => {
            // An unmarked offer means sendrecv both ways; leave the answer unmarked too.
            if let Some(marked) = offer.marked_direction(offered) {
                line.attributes.push(marked.mirror().to_attribute());
            }
            Ok(())
        }
    }
}
