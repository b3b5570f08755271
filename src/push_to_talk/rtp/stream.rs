//! One receiver's view of the forwarded stream: whoever holds the floor, the receiver sees a
//! single RTP source (the focus's SSRC for it) whose sequence numbers and timestamps run on
//! without jumps across talker changes (a jitter buffer never resets, RFC 3550 §8.2 never
//! sees a collision).

use super::packet::RtpHeader;
use std::time::Instant;

/// The rewrite state toward one receiver.
#[derive(Debug, Clone)]
pub struct OutStream {
    /// The SSRC this receiver sees for the focus.
    pub ssrc: u32,
    /// Clock rate of the payload (Hz): timestamps advance by wall time across talker changes.
    clock_rate: u32,
    /// The talker's SSRC the offsets below map from.
    source: Option<u32>,
    seq_offset: u16,
    ts_offset: u32,
    last_seq: u16,
    last_ts: u32,
    last_sent: Option<Instant>,
    /// Packets and payload bytes sent (RTCP sender reports).
    pub packets: u32,
    pub octets: u32,
}

impl OutStream {
    pub fn new(ssrc: u32, clock_rate: u32, initial_seq: u16, initial_ts: u32) -> OutStream {
        OutStream {
            ssrc,
            clock_rate,
            source: None,
            seq_offset: 0,
            ts_offset: 0,
            last_seq: initial_seq.wrapping_sub(1),
            last_ts: initial_ts,
            last_sent: None,
            packets: 0,
            octets: 0,
        }
    }

    /// The sequence number, timestamp and marker to write for a packet from the current
    /// talker. A new talker (or a new SSRC of the same talker) is spliced in right after the
    /// last packet sent, with the timestamp moved on by the wall-clock gap.
    pub fn map(&mut self, h: &RtpHeader, payload_len: usize, now: Instant) -> (u16, u32, bool) {
        let mut marker = h.marker;
        if self.source != Some(h.ssrc) {
            let gap = self
                .last_sent
                .map_or(0, |t| now.saturating_duration_since(t).as_millis() as u64);
            let advance = ((gap * u64::from(self.clock_rate)) / 1000).max(1) as u32;
            let next_seq = self.last_seq.wrapping_add(1);
            let next_ts = self.last_ts.wrapping_add(advance);
            self.seq_offset = next_seq.wrapping_sub(h.sequence);
            self.ts_offset = next_ts.wrapping_sub(h.timestamp);
            self.source = Some(h.ssrc);
            // A new talk burst starts: the marker tells the receiver (RFC 3551 §4.1).
            marker = true;
        }
        let seq = h.sequence.wrapping_add(self.seq_offset);
        let ts = h.timestamp.wrapping_add(self.ts_offset);
        // Only move forward (reordered or duplicate packets keep their place, not the tail).
        if seq.wrapping_sub(self.last_seq) < 0x8000 {
            self.last_seq = seq;
            self.last_ts = ts;
        }
        self.last_sent = Some(now);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload_len as u32);
        (seq, ts, marker)
    }

    /// The last timestamp sent (RTCP sender reports).
    pub fn last_timestamp(&self) -> u32 {
        self.last_ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn h(ssrc: u32, seq: u16, ts: u32) -> RtpHeader {
        RtpHeader {
            marker: false,
            payload_type: 0,
            sequence: seq,
            timestamp: ts,
            ssrc,
            payload_offset: 12,
        }
    }

    #[test]
    fn continuous_across_talkers() {
        let t0 = Instant::now();
        let mut s = OutStream::new(7, 8000, 1000, 50_000);
        // Talker A: three packets, 20 ms apart.
        let mut out = Vec::new();
        for i in 0..3u16 {
            out.push(s.map(
                &h(0xa, 500 + i, 9000 + u32::from(i) * 160),
                160,
                t0 + Duration::from_millis(20 * u64::from(i)),
            ));
        }
        assert_eq!(out[0].0, 1000);
        assert!(out[0].2, "first packet of a burst is marked");
        assert_eq!((out[1].0, out[2].0), (1001, 1002));
        assert_eq!(out[1].1 - out[0].1, 160);
        // Talker B after 1 s of silence: sequence continues, timestamp moves by 1 s.
        let b = s.map(&h(0xb, 7, 123), 160, t0 + Duration::from_millis(1040));
        assert_eq!(b.0, 1003);
        assert_eq!(b.1.wrapping_sub(out[2].1), 8000);
        assert!(b.2);
        let b2 = s.map(&h(0xb, 8, 283), 160, t0 + Duration::from_millis(1060));
        assert_eq!((b2.0, b2.1.wrapping_sub(b.1), b2.2), (1004, 160, false));
        // A reordered older packet keeps its own place.
        let old = s.map(&h(0xb, 6, 0), 160, t0 + Duration::from_millis(1061));
        assert_eq!(old.0, 1002);
        let next = s.map(&h(0xb, 9, 443), 160, t0 + Duration::from_millis(1080));
        assert_eq!(next.0, 1005);
        assert_eq!((s.packets, s.octets), (7, 7 * 160));
    }

    #[test]
    fn wraps_around() {
        let t0 = Instant::now();
        let mut s = OutStream::new(1, 8000, u16::MAX, u32::MAX - 10);
        let a = s.map(&h(1, 0, 0), 1, t0);
        let b = s.map(&h(1, 1, 160), 1, t0);
        assert_eq!((a.0, b.0), (u16::MAX, 0));
    }
}
