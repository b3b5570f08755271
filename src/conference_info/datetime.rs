//! `xs:dateTime` for `execution-type/when`, without a calendar crate.
//!
//! We render RFC 3339 UTC with whole seconds (`2026-11-26T01:02:03Z`): every xs:dateTime parser
//! accepts it and it is what SIP UAs show. Parsing accepts any offset and fractional seconds, so
//! documents from other notifiers round-trip to the same instant.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECS_PER_DAY: i64 = 86_400;
/// `0001-01-01T00:00:00Z`: year 0 and negative years are not plain four-digit `xs:dateTime`s.
pub(crate) const MIN_SECS: i64 = -62_135_596_800;
/// `9999-12-31T23:59:59Z`: beyond it the year needs five digits, which some parsers reject.
pub(crate) const MAX_SECS: i64 = 253_402_300_799;

/// Days in the 400-year Gregorian cycle (it repeats exactly).
const DAYS_PER_ERA: i64 = 146_097;
/// Days from 0000-03-01 to 1970-01-01. Counting years from March puts Feb 29 at year end.
const EPOCH_SHIFT: i64 = 719_468;

/// Converts days since 1970-01-01 into a (year, month, day) civil date (proleptic Gregorian).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + EPOCH_SHIFT;
    let era = shifted.div_euclid(DAYS_PER_ERA);
    // 0..=146_096
    let day_of_era = shifted.rem_euclid(DAYS_PER_ERA);
    // Remove the leap days seen so far in this era to find the (March-based) year of the era.
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months from March have the repeating 31/30 pattern that 153/5 captures.
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are small by construction (1..=12 and 1..=31).
    (year, month as u32, day as u32)
}

/// Converts a civil date into days since 1970-01-01. Inverse of [`civil_from_days`].
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let march_year = if month <= 2 { year - 1 } else { year };
    let era = march_year.div_euclid(400);
    let year_of_era = march_year - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - EPOCH_SHIFT
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Whole seconds since the epoch, rounded down (so 0.5 s before the epoch is -1).
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            -secs - i64::from(d.subsec_nanos() > 0)
        }
    }
}

fn push_digits(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut v = value;
    for slot in buf[10 - width..].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[10 - width..]);
}

/// Appends `t` as `YYYY-MM-DDThh:mm:ssZ`, clamped to years 0001..=9999.
pub fn format_rfc3339(t: SystemTime, out: &mut Vec<u8>) {
    let secs = unix_seconds(t).clamp(MIN_SECS, MAX_SECS);
    let (year, month, day) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let second_of_day = secs.rem_euclid(SECS_PER_DAY) as u32;
    // The clamp keeps the year in 1..=9999.
    push_digits(out, year as u32, 4);
    out.push(b'-');
    push_digits(out, month, 2);
    out.push(b'-');
    push_digits(out, day, 2);
    out.push(b'T');
    push_digits(out, second_of_day / 3600, 2);
    out.push(b':');
    push_digits(out, second_of_day / 60 % 60, 2);
    out.push(b':');
    push_digits(out, second_of_day % 60, 2);
    out.push(b'Z');
}

/// [`format_rfc3339`] into a `String` (for logs and tests).
pub fn to_rfc3339(t: SystemTime) -> String {
    let mut out = Vec::with_capacity(20);
    format_rfc3339(t, &mut out);
    // Only ASCII digits and separators were written.
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads exactly `n` ASCII digits at `*pos`.
fn digits(s: &[u8], pos: &mut usize, n: usize) -> Option<u32> {
    let field = s.get(*pos..*pos + n)?;
    let mut v = 0u32;
    for &b in field {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    *pos += n;
    Some(v)
}

fn eat(s: &[u8], pos: &mut usize, byte: u8) -> Option<()> {
    (s.get(*pos) == Some(&byte)).then(|| *pos += 1)
}

/// Parses an `xs:dateTime` with a four-digit year: `YYYY-MM-DDThh:mm:ss[.f+][Z|±hh:mm]`.
///
/// A missing zone is taken as UTC (the schema leaves it "local", which a SIP peer cannot know).
/// `24:00:00` means the next midnight, as the schema allows. Returns `None` for anything else.
pub fn parse_datetime(text: &str) -> Option<SystemTime> {
    let s = text
        .trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
        .as_bytes();
    let mut pos = 0;
    let year = i64::from(digits(s, &mut pos, 4)?);
    eat(s, &mut pos, b'-')?;
    let month = digits(s, &mut pos, 2)?;
    eat(s, &mut pos, b'-')?;
    let day = digits(s, &mut pos, 2)?;
    eat(s, &mut pos, b'T')?;
    let hour = digits(s, &mut pos, 2)?;
    eat(s, &mut pos, b':')?;
    let minute = digits(s, &mut pos, 2)?;
    eat(s, &mut pos, b':')?;
    let second = digits(s, &mut pos, 2)?;

    let mut nanos = 0u32;
    if eat(s, &mut pos, b'.').is_some() {
        let start = pos;
        while pos < s.len() && s[pos].is_ascii_digit() {
            if pos - start < 9 {
                nanos = nanos * 10 + u32::from(s[pos] - b'0');
            }
            pos += 1;
        }
        if pos == start {
            return None;
        }
        for _ in (pos - start)..9 {
            nanos *= 10;
        }
    }

    let offset_secs: i64 = match s.get(pos) {
        None => 0,
        Some(b'Z') => {
            pos += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            pos += 1;
            let oh = digits(s, &mut pos, 2)?;
            eat(s, &mut pos, b':')?;
            let om = digits(s, &mut pos, 2)?;
            if om > 59 || oh > 14 || (oh == 14 && om != 0) {
                return None;
            }
            let off = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                -off
            } else {
                off
            }
        }
        Some(_) => return None,
    };
    if pos != s.len() {
        return None;
    }

    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let end_of_day = hour == 24 && minute == 0 && second == 0 && nanos == 0;
    if !end_of_day && (hour > 23 || minute > 59 || second > 59) {
        return None;
    }

    let secs = days_from_civil(year, month, day) * SECS_PER_DAY
        + i64::from(hour * 3600 + minute * 60 + second)
        - offset_secs;
    let sub = Duration::from_nanos(u64::from(nanos));
    if secs >= 0 {
        UNIX_EPOCH
            .checked_add(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(sub)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(sub)
    }
}
