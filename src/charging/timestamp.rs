//! The `ts` of a charging record: RFC 3339 UTC with milliseconds (`2026-11-26T01:02:03.045Z`).
//!
//! Milliseconds because a rating engine orders and subtracts these (join to leave); whole
//! seconds, as conference-info uses, would make two records of one second indistinguishable.
//! The calendar arithmetic is [`crate::conference_info::format_rfc3339`]'s; this adds the
//! fraction.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A wall-clock instant, rendered with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(SystemTime);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        Timestamp(SystemTime::now())
    }

    /// The instant.
    pub fn time(self) -> SystemTime {
        self.0
    }

    /// Appends `YYYY-MM-DDThh:mm:ss.mmmZ` (years clamped to 0001..=9999, as conference-info).
    pub fn format(self, out: &mut Vec<u8>) {
        crate::conference_info::format_rfc3339(self.0, out);
        // The seconds formatter ends with 'Z'; the fraction goes before it.
        out.pop();
        let millis = fraction_millis(self.0);
        out.push(b'.');
        out.push(b'0' + (millis / 100) as u8);
        out.push(b'0' + (millis / 10 % 10) as u8);
        out.push(b'0' + (millis % 10) as u8);
        out.push(b'Z');
    }

    /// Parses any RFC 3339 / `xs:dateTime` text (readers of the file use it).
    pub fn parse(text: &str) -> Option<Timestamp> {
        crate::conference_info::parse_datetime(text).map(Timestamp)
    }
}

/// Milliseconds past the whole second below `t` (the seconds formatter rounds down, also
/// before the epoch, so the fraction counts up from that second).
fn fraction_millis(t: SystemTime) -> u32 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.subsec_millis(),
        Err(e) => {
            let nanos = e.duration().subsec_nanos();
            if nanos == 0 {
                0
            } else {
                (1_000_000_000 - nanos) / 1_000_000
            }
        }
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        Timestamp(t)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = Vec::with_capacity(24);
        self.format(&mut out);
        // Only ASCII digits and separators were written.
        f.write_str(&String::from_utf8_lossy(&out))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 date-time"))
    }
}

/// Whole seconds of `d`, rounded down: the `duration_s` fields. Exact durations follow from
/// the `ts` of the records that open and close the interval.
pub fn whole_seconds(d: Duration) -> u64 {
    d.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_milliseconds_and_round_trips() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_118_923_045);
        assert_eq!(Timestamp(t).to_string(), "2025-11-26T01:02:03.045Z");
        assert_eq!(
            Timestamp::parse("2025-11-26T01:02:03.045Z"),
            Some(Timestamp(t))
        );
        assert_eq!(
            Timestamp(UNIX_EPOCH + Duration::from_nanos(999_999_999)).to_string(),
            "1970-01-01T00:00:00.999Z"
        );
    }

    #[test]
    fn before_the_epoch_counts_up_from_the_second_below() {
        let t = UNIX_EPOCH - Duration::from_millis(250);
        assert_eq!(Timestamp(t).to_string(), "1969-12-31T23:59:59.750Z");
        assert_eq!(
            Timestamp(UNIX_EPOCH - Duration::from_secs(1)).to_string(),
            "1969-12-31T23:59:59.000Z"
        );
    }
}
