//! The RTP fixed header (RFC 3550 §5.1), read and rewritten in place. Only what forwarding
//! needs: version, payload type, sequence number, timestamp, SSRC, and where the payload
//! starts (CSRC list and header extension skipped).

use thiserror::Error;

/// Why a datagram is not an RTP packet we forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RtpError {
    #[error("shorter than an RTP header")]
    Short,
    #[error("not RTP version 2")]
    Version,
    #[error("header extends past the packet")]
    Truncated,
    #[error("an RTCP packet on the RTP port")]
    Rtcp,
}

/// A parsed RTP header (values copied out; the packet stays in its buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Offset of the payload in the packet.
    pub payload_offset: usize,
}

impl RtpHeader {
    /// Parses the header of `packet`.
    pub fn parse(packet: &[u8]) -> Result<RtpHeader, RtpError> {
        if packet.len() < 12 {
            return Err(RtpError::Short);
        }
        if packet[0] >> 6 != 2 {
            return Err(RtpError::Version);
        }
        let pt = packet[1] & 0x7f;
        // RFC 5761 §4: payload types 64-95 with the marker bit are RTCP (200-223).
        if (72..=76).contains(&pt) {
            return Err(RtpError::Rtcp);
        }
        let csrc = usize::from(packet[0] & 0x0f);
        let mut offset = 12 + 4 * csrc;
        if packet[0] & 0x10 != 0 {
            // Header extension: 16-bit profile, 16-bit length in 32-bit words.
            let ext = packet
                .get(offset + 2..offset + 4)
                .ok_or(RtpError::Truncated)?;
            let words = usize::from(u16::from_be_bytes([ext[0], ext[1]]));
            offset += 4 + 4 * words;
        }
        if offset > packet.len() {
            return Err(RtpError::Truncated);
        }
        Ok(RtpHeader {
            marker: packet[1] & 0x80 != 0,
            payload_type: pt,
            sequence: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
            payload_offset: offset,
        })
    }
}

/// Writes sequence number, timestamp, SSRC and marker into a packet of at least 12 bytes.
pub fn rewrite(packet: &mut [u8], sequence: u16, timestamp: u32, ssrc: u32, marker: bool) {
    if packet.len() < 12 {
        return;
    }
    packet[1] = (packet[1] & 0x7f) | if marker { 0x80 } else { 0 };
    packet[2..4].copy_from_slice(&sequence.to_be_bytes());
    packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(csrc: u8, ext_words: u16) -> Vec<u8> {
        let mut p = vec![
            0x80 | csrc,
            0x80,
            0x12,
            0x34,
            0,
            0,
            0x10,
            0,
            0xde,
            0xad,
            0xbe,
            0xef,
        ];
        for _ in 0..csrc {
            p.extend_from_slice(&[1, 2, 3, 4]);
        }
        if ext_words > 0 {
            p[0] |= 0x10;
            p.extend_from_slice(&[0xbe, 0xde]);
            p.extend_from_slice(&ext_words.to_be_bytes());
            p.extend(std::iter::repeat_n(0u8, 4 * usize::from(ext_words)));
        }
        p.extend_from_slice(b"payload");
        p
    }

    #[test]
    fn parses_and_rewrites() {
        let mut p = packet(2, 1);
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!(
            (h.payload_type, h.sequence, h.timestamp, h.ssrc),
            (0, 0x1234, 0x1000, 0xdeadbeef)
        );
        assert!(h.marker);
        assert_eq!(&p[h.payload_offset..], b"payload");
        rewrite(&mut p, 7, 99, 42, false);
        let h = RtpHeader::parse(&p).unwrap();
        assert_eq!(
            (h.sequence, h.timestamp, h.ssrc, h.marker),
            (7, 99, 42, false)
        );
        assert_eq!(&p[h.payload_offset..], b"payload");
    }

    #[test]
    fn rejects_what_is_not_rtp() {
        assert_eq!(RtpHeader::parse(&[0x80; 5]), Err(RtpError::Short));
        assert_eq!(RtpHeader::parse(&[0x40; 12]), Err(RtpError::Version));
        let mut p = packet(15, 0);
        p.truncate(20);
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::Truncated));
        let mut rtcp = vec![0x80, 200, 0, 6];
        rtcp.extend_from_slice(&[0; 24]);
        assert_eq!(RtpHeader::parse(&rtcp), Err(RtpError::Rtcp));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            let _ = RtpHeader::parse(&data);
        }
    }
}
