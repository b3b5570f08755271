//! [`SessionDescription`] → SDP text, CRLF after every line (RFC 8866 §5).
//!
//! Fields are written in RFC 8866 order, structured fields separated by single spaces, text
//! and attribute values verbatim. Together with the parser this gives the losslessness
//! guarantee documented on the [module](super).

use std::fmt::{self, Display, Formatter, Write as _};

use super::attribute::Attribute;
use super::model::{Bandwidth, Connection, MediaDescription, SessionDescription, TimeDescription};

impl SessionDescription {
    /// The SDP text as bytes, ready to be a SIP body.
    pub fn to_bytes(&self) -> Vec<u8> {
        // A typical focus answer is 150-400 bytes; one growth step at most for offers.
        let mut out = String::with_capacity(512);
        // Writing into a String cannot fail.
        let _ = write!(out, "{self}");
        out.into_bytes()
    }
}

impl Display for SessionDescription {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(f, "v={}\r\n", self.version)?;
        write!(
            f,
            "o={} {} {} {} {} {}\r\n",
            o.username, o.session_id, o.session_version, o.nettype, o.addrtype, o.address
        )?;
        write!(f, "s={}\r\n", self.session_name)?;
        text_line(f, 'i', self.information.as_deref())?;
        text_line(f, 'u', self.uri.as_deref())?;
        for e in &self.emails {
            text_line(f, 'e', Some(e))?;
        }
        for p in &self.phones {
            text_line(f, 'p', Some(p))?;
        }
        if let Some(c) = &self.connection {
            connection_line(f, c)?;
        }
        bandwidth_lines(f, &self.bandwidths)?;
        for t in &self.times {
            time_lines(f, t)?;
        }
        text_line(f, 'k', self.key.as_deref())?;
        attribute_lines(f, &self.attributes)?;
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl Display for MediaDescription {
    /// The `m=` line and the lines of its section.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt in &self.formats {
            write!(f, " {fmt}")?;
        }
        f.write_str("\r\n")?;
        text_line(f, 'i', self.information.as_deref())?;
        for c in &self.connections {
            connection_line(f, c)?;
        }
        bandwidth_lines(f, &self.bandwidths)?;
        text_line(f, 'k', self.key.as_deref())?;
        attribute_lines(f, &self.attributes)
    }
}

impl Display for Attribute {
    /// The part after `a=`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}:{value}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

fn text_line(f: &mut Formatter<'_>, kind: char, text: Option<&str>) -> fmt::Result {
    match text {
        Some(text) => write!(f, "{kind}={text}\r\n"),
        None => Ok(()),
    }
}

fn connection_line(f: &mut Formatter<'_>, c: &Connection) -> fmt::Result {
    write!(f, "c={} {} {}\r\n", c.nettype, c.addrtype, c.address)
}

fn bandwidth_lines(f: &mut Formatter<'_>, bandwidths: &[Bandwidth]) -> fmt::Result {
    for b in bandwidths {
        write!(f, "b={}:{}\r\n", b.bwtype, b.bandwidth)?;
    }
    Ok(())
}

fn time_lines(f: &mut Formatter<'_>, t: &TimeDescription) -> fmt::Result {
    write!(f, "t={} {}\r\n", t.start, t.stop)?;
    for r in &t.repeats {
        write!(f, "r={} {}", r.interval, r.active_duration)?;
        for offset in &r.offsets {
            write!(f, " {offset}")?;
        }
        f.write_str("\r\n")?;
    }
    if !t.zone_adjustments.is_empty() {
        f.write_str("z=")?;
        for (i, z) in t.zone_adjustments.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{} {}", z.time, z.offset)?;
        }
        f.write_str("\r\n")?;
    }
    Ok(())
}

fn attribute_lines(f: &mut Formatter<'_>, attributes: &[Attribute]) -> fmt::Result {
    for a in attributes {
        write!(f, "a={a}\r\n")?;
    }
    Ok(())
}
