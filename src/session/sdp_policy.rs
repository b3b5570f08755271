//! Which media the focus serves, as SDP: the offer/answer policy of a group session. Today
//! that is one MSRP stream per participant (RFC 4975 with RFC 6135 connection setup); every
//! other stream is declined with port 0.

use crate::media::msrp::MsrpUri;
use crate::sdp::{Attribute, MediaDecision, MediaDescription, MediaPolicy, SessionDescription};
use std::cell::Cell;

/// The MSRP side of the focus, as a session announces it.
#[derive(Debug, Clone)]
pub struct MsrpOffer {
    /// Host and port of the MSRP listener written into `a=path` (IPv6 bracketed there).
    pub host: crate::sip::Host,
    pub port: u16,
    /// `a=max-size`: the largest message the focus relays.
    pub max_size: u64,
    /// The listener also accepts MSRP over TLS (`TCP/TLS/MSRP`, `msrps:`).
    pub tls: bool,
}

/// The MSRP leg an answer (or an offer's answer) established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsrpLeg {
    /// Our session id (last segment of our `a=path`).
    pub session_id: String,
    /// The participant's `a=path`.
    pub peer_path: Vec<MsrpUri>,
    /// True when the focus must open the connection (the participant is passive).
    pub active: bool,
    /// The participant's certificate fingerprint (`a=fingerprint`, media or session level,
    /// RFC 8122), checked against the certificate of its MSRP-over-TLS connection.
    pub fingerprint: Option<crate::transport::tls::Fingerprint>,
}

/// The `a=fingerprint` of a media description, or of the session (RFC 8122 §5).
fn fingerprint_of(
    m: &MediaDescription,
    sdp: &SessionDescription,
) -> Option<crate::transport::tls::Fingerprint> {
    let a = m.attr("fingerprint").or_else(|| sdp.attr("fingerprint"))?;
    crate::transport::tls::Fingerprint::parse(a.value.as_deref()?)
}

/// Body types the focus accepts inside MSRP (`a=accept-types`).
pub const ACCEPT_TYPES: &str = "message/cpim text/plain";

/// An MSRP `m=` line of ours; `secure` for MSRP over TLS (RFC 4975 §14: `msrps:`).
fn msrp_line(offer: &MsrpOffer, session_id: &str, setup: &str, secure: bool) -> MediaDescription {
    let (proto, scheme) = if secure {
        ("TCP/TLS/MSRP", "msrps")
    } else {
        ("TCP/MSRP", "msrp")
    };
    MediaDescription::new("message", offer.port, proto, ["*"])
        .with_attribute(Attribute::new(
            "path",
            format!(
                "{scheme}://{}/{};tcp",
                offer.host.with_port(offer.port),
                session_id
            ),
        ))
        .with_attribute(Attribute::new("accept-types", ACCEPT_TYPES))
        .with_attribute(Attribute::new("accept-wrapped-types", "*"))
        .with_attribute(Attribute::new("max-size", offer.max_size.to_string()))
        .with_attribute(Attribute::new("setup", setup))
}

/// Parses an `a=path` list; `None` unless every URI is an MSRP-over-TCP URI whose scheme
/// matches the m-line (`msrps:` for `TCP/TLS/MSRP`, `msrp:` for `TCP/MSRP`).
pub fn parse_path(m: &MediaDescription) -> Option<Vec<MsrpUri>> {
    let secure = is_secure_msrp(m);
    let path: Vec<MsrpUri> = m
        .path()
        .map(MsrpUri::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let ok = !path.is_empty()
        && path
            .iter()
            .all(|u| u.is_secure() == secure && u.transport.eq_ignore_ascii_case("tcp"));
    ok.then_some(path)
}

fn is_secure_msrp(m: &MediaDescription) -> bool {
    m.proto.eq_ignore_ascii_case("TCP/TLS/MSRP")
}

fn is_msrp(m: &MediaDescription) -> bool {
    m.media.eq_ignore_ascii_case("message")
        && (m.proto.eq_ignore_ascii_case("TCP/MSRP") || is_secure_msrp(m))
}

/// The focus's answer policy: the first usable MSRP stream is accepted, everything else
/// declined.
pub struct FocusPolicy<'a> {
    pub msrp: Option<&'a MsrpOffer>,
    pub session_id: &'a str,
    /// The audio and BFCP lines planned for talk bursts.
    talk: Option<&'a crate::push_to_talk::talk_burst::TalkAnswer>,
    taken: Cell<Option<usize>>,
}

impl<'a> FocusPolicy<'a> {
    pub fn new(msrp: Option<&'a MsrpOffer>, session_id: &'a str) -> Self {
        FocusPolicy {
            msrp,
            session_id,
            talk: None,
            taken: Cell::new(None),
        }
    }

    /// Also answers the talk-burst streams of `talk` (their lines are already built).
    pub fn with_talk(
        mut self,
        talk: Option<&'a crate::push_to_talk::talk_burst::TalkAnswer>,
    ) -> Self {
        self.talk = talk;
        self
    }

    /// The MSRP leg the answer accepted, from the offer's m-line at that index.
    pub fn leg(&self, offer: &SessionDescription) -> Option<MsrpLeg> {
        let i = self.taken.get()?;
        let m = offer.media.get(i)?;
        Some(MsrpLeg {
            session_id: self.session_id.to_string(),
            peer_path: parse_path(m)?,
            // RFC 6135: an offer saying passive makes us the active side.
            active: m.setup().is_some_and(|s| s.eq_ignore_ascii_case("passive")),
            fingerprint: fingerprint_of(m, offer),
        })
    }
}

impl MediaPolicy for FocusPolicy<'_> {
    fn decide(
        &self,
        index: usize,
        offered: &MediaDescription,
        _offer: &SessionDescription,
    ) -> MediaDecision {
        if let Some(t) = self.talk {
            if index == t.audio_index {
                return MediaDecision::Accept(t.audio_line.clone());
            }
            if let Some((_, line)) = t.bfcp.as_ref().filter(|(i, _)| *i == index) {
                return MediaDecision::Accept(line.clone());
            }
        }
        let Some(msrp) = self.msrp else {
            return MediaDecision::Decline;
        };
        if self.taken.get().is_some() || !is_msrp(offered) || parse_path(offered).is_none() {
            return MediaDecision::Decline;
        }
        let secure = is_secure_msrp(offered);
        if secure && !msrp.tls {
            return MediaDecision::Decline;
        }
        // RFC 4975 §8.6: the participant must accept something we send.
        let accepts = offered.accept_types().any(|t| {
            t == "*"
                || t.eq_ignore_ascii_case("message/cpim")
                || t.eq_ignore_ascii_case("text/plain")
        });
        if !accepts {
            return MediaDecision::Decline;
        }
        let setup = match offered.setup().map(str::to_ascii_lowercase).as_deref() {
            None | Some("active") | Some("actpass") => "passive",
            Some("passive") => "active",
            _ => return MediaDecision::Decline,
        };
        self.taken.set(Some(index));
        MediaDecision::Accept(msrp_line(msrp, self.session_id, setup, secure))
    }
}

/// The media lines of the focus's own offer (a delayed-offer INVITE): MSRP, passive.
pub fn offer_lines(msrp: Option<&MsrpOffer>, session_id: &str) -> Vec<MediaDescription> {
    msrp.map(|m| msrp_line(m, session_id, "passive", false))
        .into_iter()
        .collect()
}

/// The media lines of a new offer in a dialog whose last SDP from us was `last` (a resume
/// after a restart): the same m-lines in the same order (RFC 3264 §8), with every MSRP
/// stream we served replaced by a fresh one under `session_id` (`passive`: the participant
/// connects to the new focus process); declined lines stay declined.
pub fn reoffer(
    last: &SessionDescription,
    msrp: Option<&MsrpOffer>,
    session_id: &str,
) -> Vec<MediaDescription> {
    let mut lines: Vec<MediaDescription> = last
        .media
        .iter()
        .map(|m| match msrp {
            Some(offer) if is_msrp(m) && m.port != 0 => {
                msrp_line(offer, session_id, "passive", is_secure_msrp(m))
            }
            _ => m.clone(),
        })
        .collect();
    if lines.is_empty() {
        lines = offer_lines(msrp, session_id);
    }
    lines
}

/// The MSRP leg an answer to our offer sets up (we offered passive: the answerer connects).
pub fn leg_from_answer(answer: &SessionDescription, session_id: &str) -> Option<MsrpLeg> {
    let m = answer.media.iter().find(|m| is_msrp(m) && m.port != 0)?;
    Some(MsrpLeg {
        session_id: session_id.to_string(),
        peer_path: parse_path(m)?,
        active: false,
        fingerprint: fingerprint_of(m, answer),
    })
}

/// A fresh, unguessable MSRP session id.
pub fn new_session_id() -> String {
    crate::media::msrp::new_message_id()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::{answer, AnswerContext};

    const RCS_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=message 7394 TCP/MSRP *\r\na=accept-types:message/cpim application/im-iscomposing+xml\r\na=accept-wrapped-types:*\r\na=path:msrp://10.0.0.1:7394/abcd;tcp\r\na=setup:active\r\na=sendrecv\r\nm=audio 6000 RTP/AVP 0\r\n";

    fn ctx() -> AnswerContext {
        AnswerContext {
            username: "-".into(),
            session_id: 1,
            session_version: 1,
            origin_address: "127.0.0.1".parse().unwrap(),
            connection_address: "127.0.0.1".parse().unwrap(),
        }
    }

    #[test]
    fn msrp_accepted_audio_declined() {
        let offer = crate::sdp::parse(RCS_OFFER.as_bytes()).unwrap();
        let msrp = MsrpOffer {
            host: crate::sip::Host::Ip([127, 0, 0, 1].into()),
            port: 2855,
            max_size: 4096,
            tls: false,
        };
        let policy = FocusPolicy::new(Some(&msrp), "s1");
        let a = answer(&offer, &policy, &ctx()).unwrap();
        assert_eq!(a.accepted_count(), 1);
        let text = a.sdp().to_string();
        assert!(text.contains("m=message 2855 TCP/MSRP *\r\n"), "{text}");
        assert!(text.contains("a=path:msrp://127.0.0.1:2855/s1;tcp\r\n"));
        assert!(text.contains("a=setup:passive\r\n"));
        assert!(text.contains("a=accept-types:message/cpim text/plain\r\n"));
        assert!(text.contains("m=audio 0 RTP/AVP 0\r\n"));
        let leg = policy.leg(&offer).unwrap();
        assert_eq!(
            leg.peer_path[0].to_string(),
            "msrp://10.0.0.1:7394/abcd;tcp"
        );
        assert!(!leg.active);
    }

    /// Over IPv6 the path names the focus in brackets and SDP says `IN IP6` without them.
    #[test]
    fn an_ipv6_answer_brackets_the_path_and_not_the_sdp_address() {
        let offer = crate::sdp::parse(RCS_OFFER.as_bytes()).unwrap();
        let msrp = MsrpOffer {
            host: crate::sip::Host::Ip(std::net::Ipv6Addr::LOCALHOST.into()),
            port: 2855,
            max_size: 4096,
            tls: false,
        };
        let policy = FocusPolicy::new(Some(&msrp), "s1");
        let ctx = AnswerContext {
            origin_address: std::net::Ipv6Addr::LOCALHOST.into(),
            connection_address: std::net::Ipv6Addr::LOCALHOST.into(),
            ..ctx()
        };
        let text = answer(&offer, &policy, &ctx).unwrap().sdp().to_string();
        assert!(
            text.contains("a=path:msrp://[::1]:2855/s1;tcp\r\n"),
            "{text}"
        );
        assert!(text.contains("c=IN IP6 ::1\r\n"), "{text}");
        assert!(text.contains(" IN IP6 ::1\r\n"), "{text}");
        let path = parse_path(&crate::sdp::parse(text.as_bytes()).unwrap().media[0]).unwrap();
        assert_eq!(path[0].host, msrp.host);
    }

    #[test]
    fn passive_offer_makes_us_active_and_no_msrp_declines() {
        let offer = crate::sdp::parse(
            RCS_OFFER
                .replace("setup:active", "setup:passive")
                .as_bytes(),
        )
        .unwrap();
        let msrp = MsrpOffer {
            host: crate::sip::Host::Ip([127, 0, 0, 1].into()),
            port: 2855,
            max_size: 4096,
            tls: false,
        };
        let policy = FocusPolicy::new(Some(&msrp), "s1");
        let a = answer(&offer, &policy, &ctx()).unwrap();
        assert!(a.sdp().to_string().contains("a=setup:active\r\n"));
        assert!(policy.leg(&offer).unwrap().active);
        let none = FocusPolicy::new(None, "s1");
        assert_eq!(answer(&offer, &none, &ctx()).unwrap().accepted_count(), 0);
        // A path we cannot use (TLS) is declined.
        let tls = crate::sdp::parse(RCS_OFFER.replace("msrp://", "msrps://").as_bytes()).unwrap();
        let p = FocusPolicy::new(Some(&msrp), "s1");
        assert_eq!(answer(&tls, &p, &ctx()).unwrap().accepted_count(), 0);
    }
}
