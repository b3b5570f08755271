//! Writes `message/cpim` bodies. Like the MSRP writer it refuses what would not parse back
//! to the same model (line ends in values, reserved names as extension fields), since the
//! switch writes text that came from participants.

use super::model::{Addr, Cpim};
use super::parse::is_name_byte;
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt::Write as _;
use thiserror::Error;

/// Why a CPIM body cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CpimWriteError {
    #[error("invalid CPIM header name {0}")]
    Name(String),
    #[error("invalid value in CPIM header {0}")]
    Value(String),
}

/// Names the model holds in typed fields; an extension field may not use them.
const TYPED: [&str; 7] = ["From", "To", "cc", "DateTime", "Subject", "NS", "Require"];

impl Cpim {
    /// Appends the body to `out`; on error nothing is appended.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), CpimWriteError> {
        let mut head = String::with_capacity(256);
        if let Some(from) = &self.from {
            write_addr(&mut head, "From", from)?;
        }
        for to in &self.to {
            write_addr(&mut head, "To", to)?;
        }
        for cc in &self.cc {
            write_addr(&mut head, "cc", cc)?;
        }
        if let Some(dt) = &self.date_time {
            if dt.is_empty() || !trimmed_text(dt) {
                return Err(value("DateTime"));
            }
            let _ = write!(head, "DateTime: {dt}\r\n");
        }
        for s in &self.subject {
            if !text(&s.text) {
                return Err(value("Subject"));
            }
            head.push_str("Subject:");
            if let Some(lang) = &s.lang {
                write_param(&mut head, "lang", lang)?;
            }
            let _ = write!(head, " {}\r\n", s.text);
        }
        for ns in &self.ns {
            if ns.prefix.as_deref().is_some_and(|p| !name(p)) || !uri(&ns.uri) {
                return Err(value("NS"));
            }
            match &ns.prefix {
                Some(p) => {
                    let _ = write!(head, "NS: {p} <{}>\r\n", ns.uri);
                }
                None => {
                    let _ = write!(head, "NS: <{}>\r\n", ns.uri);
                }
            }
        }
        if !self.require.is_empty() {
            let ok = self.require.iter().all(|r| match r.split_once('.') {
                Some((p, n)) => name(p) && name(n),
                None => name(r),
            });
            if !ok {
                return Err(value("Require"));
            }
            let _ = write!(head, "Require: {}\r\n", self.require.join(","));
        }
        for f in &self.fields {
            let full = match &f.prefix {
                Some(p) => format!("{p}.{}", f.name),
                None => f.name.clone(),
            };
            let reserved =
                f.prefix.is_none() && TYPED.iter().any(|t| t.eq_ignore_ascii_case(&f.name));
            if !name(&f.name) || f.prefix.as_deref().is_some_and(|p| !name(p)) || reserved {
                return Err(CpimWriteError::Name(full));
            }
            if !text(&f.value) {
                return Err(CpimWriteError::Value(full));
            }
            head.push_str(&full);
            head.push(':');
            for (n, v) in &f.params {
                write_param(&mut head, n, v)?;
            }
            let _ = write!(head, " {}\r\n", f.value);
        }
        head.push_str("\r\n");
        if let Some(ct) = &self.content_type {
            if !trimmed_text(ct) {
                return Err(value("Content-Type"));
            }
            let _ = write!(head, "Content-Type: {ct}\r\n");
        }
        for h in &self.content_headers {
            let ok_name = !h.name.is_empty()
                && h.name
                    .bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b':')
                && !h.name.eq_ignore_ascii_case("Content-Type");
            if !ok_name {
                return Err(CpimWriteError::Name(h.name.clone()));
            }
            if !trimmed_text(&h.value) {
                return Err(CpimWriteError::Value(h.name.clone()));
            }
            let _ = write!(head, "{}: {}\r\n", h.name, h.value);
        }
        head.push_str("\r\n");
        out.reserve(head.len() + self.body.len());
        out.put_slice(head.as_bytes());
        out.put_slice(&self.body);
        Ok(())
    }

    /// The body as bytes.
    pub fn to_bytes(&self) -> Result<Bytes, CpimWriteError> {
        let mut out = BytesMut::new();
        self.encode(&mut out)?;
        Ok(out.freeze())
    }
}

fn value(header: &str) -> CpimWriteError {
    CpimWriteError::Value(header.to_owned())
}

fn name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_name_byte)
}

/// No line end or other control character (what the parser refuses).
fn text(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() && c != '\t')
}

/// Text the parser reads trimmed: no surrounding whitespace.
fn trimmed_text(s: &str) -> bool {
    text(s) && s.trim_matches([' ', '\t']) == s
}

fn uri(s: &str) -> bool {
    !s.is_empty() && text(s) && !s.contains([' ', '\t', '<', '>'])
}

/// `"` ... `"` with `\` before `"` and `\`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn write_addr(head: &mut String, header: &str, a: &Addr) -> Result<(), CpimWriteError> {
    if !uri(&a.uri) || a.display.as_deref().is_some_and(|d| !text(d)) {
        return Err(value(header));
    }
    match &a.display {
        Some(d) => {
            let _ = write!(head, "{header}: {} <{}>\r\n", quote(d), a.uri);
        }
        None => {
            let _ = write!(head, "{header}: <{}>\r\n", a.uri);
        }
    }
    Ok(())
}

/// `;name=value`, quoting the value unless it is a plain name.
fn write_param(head: &mut String, n: &str, v: &str) -> Result<(), CpimWriteError> {
    if !name(n) || !text(v) {
        return Err(CpimWriteError::Value(n.to_owned()));
    }
    if name(v) {
        let _ = write!(head, ";{n}={v}");
    } else {
        let _ = write!(head, ";{n}={}", quote(v));
    }
    Ok(())
}
