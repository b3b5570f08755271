//! Which audio codec a participant's leg uses. The focus forwards packets without transcoding,
//! so every leg of a group must carry a codec of the group's list, and a packet only reaches
//! receivers whose leg carries the same codec. Each leg answers exactly one codec (the group's
//! first choice the offer carries): then a participant sends what every other one expects.
//!
//! Codecs are written as in `a=rtpmap` (RFC 8866 §6.6): `<encoding>/<clock rate>[/<channels>]`.
//! Offered payload types without `a=rtpmap` are read from the static table of RFC 3551 §6.

use crate::sdp::{names, MediaDescription};

pub use crate::config::{Codec, CodecError, MAX_CODECS};

/// Matching an offered codec (the spec itself is a setting's type, in `config`).
impl Codec {
    fn matches(&self, name: &str, clock_rate: u32, channels: u8) -> bool {
        self.name.eq_ignore_ascii_case(name)
            && self.clock_rate == clock_rate
            && self.channels == channels
    }
}

/// The codec a leg uses: its index in the group's list, and the payload type the
/// participant's offer gave it (packets to it are rewritten to this type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecChoice {
    pub index: usize,
    pub payload_type: u8,
    pub clock_rate: u32,
    /// `a=rtpmap` value for the answer (`0 PCMU/8000`).
    pub rtpmap: String,
    /// The offer's `a=fmtp` value for that payload type, echoed in the answer.
    pub fmtp: Option<String>,
}

/// The group's first codec that `offered` (an `m=audio` line) carries, with the offer's
/// payload type for it; `None` when they share none (the stream is declined).
pub fn choose(group: &[Codec], offered: &MediaDescription) -> Option<CodecChoice> {
    let formats: Vec<(u8, String, u32, u8)> = offered
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok().filter(|&pt| pt < 128))
        .filter_map(|pt| {
            let (name, rate, ch) = rtpmap(offered, pt).or_else(|| {
                let (n, r, c) = static_payload(pt)?;
                Some((n.to_string(), r, c))
            })?;
            Some((pt, name, rate, ch))
        })
        .collect();
    group.iter().enumerate().find_map(|(index, codec)| {
        let (pt, ..) = formats
            .iter()
            .find(|(_, n, r, c)| codec.matches(n, *r, *c))?;
        let pt = *pt;
        let fmtp = offered.attrs(names::FMTP).find_map(|a| {
            let v = a.value.as_deref()?;
            let (p, _) = v.split_once(' ')?;
            (p.parse::<u8>().ok()? == pt).then(|| v.to_string())
        });
        Some(CodecChoice {
            index,
            payload_type: pt,
            clock_rate: codec.clock_rate,
            rtpmap: format!("{pt} {codec}"),
            fmtp,
        })
    })
}

/// The `a=rtpmap` of payload type `pt` in `m`: encoding name, clock rate and channels.
fn rtpmap(m: &MediaDescription, pt: u8) -> Option<(String, u32, u8)> {
    m.attrs(names::RTPMAP).find_map(|a| {
        let v = a.value.as_deref()?;
        let (p, enc) = v.trim().split_once(' ')?;
        if p.parse::<u8>().ok()? != pt {
            return None;
        }
        let mut parts = enc.trim().split('/');
        let name = parts.next()?.to_string();
        let rate = parts.next()?.parse().ok()?;
        let ch = match parts.next() {
            None => 1,
            Some(c) => c.parse().ok()?,
        };
        Some((name, rate, ch))
    })
}

/// The audio payload types of RFC 3551 Table 4 (name, clock rate, channels).
fn static_payload(pt: u8) -> Option<(&'static str, u32, u8)> {
    Some(match pt {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        5 => ("DVI4", 8000, 1),
        6 => ("DVI4", 16000, 1),
        7 => ("LPC", 8000, 1),
        8 => ("PCMA", 8000, 1),
        9 => ("G722", 8000, 1),
        10 => ("L16", 44100, 2),
        11 => ("L16", 44100, 1),
        12 => ("QCELP", 8000, 1),
        13 => ("CN", 8000, 1),
        14 => ("MPA", 90000, 1),
        15 => ("G728", 8000, 1),
        16 => ("DVI4", 11025, 1),
        17 => ("DVI4", 22050, 1),
        18 => ("G729", 8000, 1),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(lines: &str) -> MediaDescription {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n{lines}"
        );
        crate::sdp::parse(text.as_bytes()).unwrap().media.remove(0)
    }

    fn codecs(specs: &[&str]) -> Vec<Codec> {
        specs.iter().map(|s| Codec::parse(s).unwrap()).collect()
    }

    #[test]
    fn parses_specs() {
        assert_eq!(
            Codec::parse("opus/48000/2").unwrap(),
            Codec {
                name: "opus".into(),
                clock_rate: 48000,
                channels: 2
            }
        );
        assert_eq!(Codec::parse("PCMU/8000").unwrap().to_string(), "PCMU/8000");
        for bad in [
            "",
            "PCMU",
            "PCMU/",
            "PCMU/x",
            "PCMU/0",
            "a b/8000",
            "PCMU/8000/2/1",
        ] {
            assert!(Codec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn static_types_and_group_order_decide() {
        let m = audio("m=audio 6000 RTP/AVP 8 0\r\n");
        let c = choose(&codecs(&["PCMU/8000", "PCMA/8000"]), &m).unwrap();
        // The group's first choice wins over the offer's order.
        assert_eq!(
            (c.index, c.payload_type, c.rtpmap.as_str()),
            (0, 0, "0 PCMU/8000")
        );
        let c = choose(&codecs(&["G722/8000", "PCMA/8000"]), &m).unwrap();
        assert_eq!((c.index, c.payload_type), (1, 8));
        assert!(choose(&codecs(&["G729/8000"]), &m).is_none());
    }

    #[test]
    fn dynamic_types_use_rtpmap_and_keep_fmtp() {
        let m = audio(
            "m=audio 6000 RTP/AVP 111 101\r\na=rtpmap:111 OPUS/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:101 telephone-event/8000\r\n",
        );
        let c = choose(&codecs(&["PCMU/8000", "opus/48000/2"]), &m).unwrap();
        assert_eq!(c.payload_type, 111);
        assert_eq!(c.clock_rate, 48000);
        assert_eq!(c.rtpmap, "111 opus/48000/2");
        assert_eq!(c.fmtp.as_deref(), Some("111 minptime=10;useinbandfec=1"));
        // A channel count that differs is another codec.
        assert!(choose(&codecs(&["opus/48000"]), &m).is_none());
        // Junk formats are skipped, not fatal.
        let m = audio("m=audio 6000 RTP/AVP x 300 0\r\n");
        assert!(choose(&codecs(&["PCMU/8000"]), &m).is_some());
    }
}
