//! Parses `message/cpim` (RFC 3862 §3): message header fields, a blank line, the
//! encapsulated MIME header fields, a blank line, the content.
//!
//! Header lines are `Name ":" *(";" param) SP value` (§3.1; `.` separates a namespace
//! prefix). Lines may end in CRLF or, leniently, LF. Known names match case-insensitively
//! (clients write `Datetime` and `CC`); the content is never copied.

use super::model::{Addr, Cpim, Field, Namespace, Subject};
use crate::media::msrp::Header;
use bytes::Bytes;
use thiserror::Error;

/// Bounds on what a peer can make the parser hold.
#[derive(Debug, Clone, Copy)]
pub struct CpimLimits {
    /// Message plus MIME header fields.
    pub max_headers: usize,
    /// The whole body.
    pub max_size: usize,
}

impl Default for CpimLimits {
    fn default() -> Self {
        CpimLimits {
            max_headers: 64,
            max_size: 4 * 1024 * 1024,
        }
    }
}

/// Why a CPIM body did not parse (the switch answers the SEND `400`, or `415`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CpimError {
    #[error("CPIM message larger than the maximum")]
    TooLarge,
    #[error("too many CPIM header fields")]
    TooManyHeaders,
    #[error("invalid UTF-8 in CPIM header")]
    NotUtf8,
    #[error("malformed CPIM header line")]
    HeaderLine,
    #[error("no blank line after the CPIM message header")]
    NoBlankLine,
    #[error("malformed CPIM {0} header")]
    Malformed(&'static str),
    #[error("multiple CPIM {0} headers")]
    Multiple(&'static str),
}

impl Cpim {
    /// Parses a `message/cpim` body.
    pub fn parse(data: Bytes, limits: &CpimLimits) -> Result<Cpim, CpimError> {
        if data.len() > limits.max_size {
            return Err(CpimError::TooLarge);
        }
        let mut cpim = Cpim {
            from: None,
            to: Vec::new(),
            cc: Vec::new(),
            date_time: None,
            subject: Vec::new(),
            ns: Vec::new(),
            require: Vec::new(),
            fields: Vec::new(),
            content_type: None,
            content_headers: Vec::new(),
            body: Bytes::new(),
        };
        let mut lines = Lines {
            data: &data,
            pos: 0,
        };
        let mut count = 0usize;
        // Message header fields, up to the blank line.
        loop {
            let line = lines.next().ok_or(CpimError::NoBlankLine)?;
            if line.is_empty() {
                break;
            }
            count += 1;
            if count > limits.max_headers {
                return Err(CpimError::TooManyHeaders);
            }
            message_header(line, &mut cpim)?;
        }
        // MIME header fields of the content, up to the next blank line (or the end).
        for line in lines.by_ref() {
            if line.is_empty() {
                break;
            }
            count += 1;
            if count > limits.max_headers {
                return Err(CpimError::TooManyHeaders);
            }
            let text = std::str::from_utf8(line).map_err(|_| CpimError::NotUtf8)?;
            if text.chars().any(|c| c.is_control() && c != '\t') {
                return Err(CpimError::HeaderLine);
            }
            let (name, value) = text.split_once(':').ok_or(CpimError::HeaderLine)?;
            let name = name.trim_end();
            if name.is_empty() || !name.bytes().all(is_mime_name_byte) {
                return Err(CpimError::HeaderLine);
            }
            let value = value.trim_matches([' ', '\t']);
            if name.eq_ignore_ascii_case("Content-Type") {
                if cpim.content_type.is_some() {
                    return Err(CpimError::Multiple("Content-Type"));
                }
                cpim.content_type = Some(value.to_owned());
            } else {
                cpim.content_headers.push(Header::new(name, value));
            }
        }
        cpim.body = data.slice(lines.pos..);
        Ok(cpim)
    }
}

/// Lines of the header sections, without their CRLF or LF.
struct Lines<'a> {
    data: &'a [u8],
    /// Start of the next line.
    pos: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.data.get(self.pos..).filter(|r| !r.is_empty())?;
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            // A last line without a line end.
            self.pos = self.data.len();
            return Some(rest.strip_suffix(b"\r").unwrap_or(rest));
        };
        self.pos += nl + 1;
        let line = &rest[..nl];
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

/// RFC 3862 `NAMECHAR`: a token without `.` (the prefix separator).
pub(crate) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-^_`|~".contains(&b)
}

/// MIME header names (RFC 5322 ftext, printable without the colon).
fn is_mime_name_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b':'
}

fn message_header(line: &[u8], cpim: &mut Cpim) -> Result<(), CpimError> {
    let text = std::str::from_utf8(line).map_err(|_| CpimError::NotUtf8)?;
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(CpimError::HeaderLine);
    }
    let colon = text.find(':').ok_or(CpimError::HeaderLine)?;
    let full_name = &text[..colon];
    let (prefix, name) = match full_name.split_once('.') {
        Some((p, n)) => (Some(p), n),
        None => (None, full_name),
    };
    let valid = |s: &str| !s.is_empty() && s.bytes().all(is_name_byte);
    if !valid(name) || prefix.is_some_and(|p| !valid(p)) {
        return Err(CpimError::HeaderLine);
    }
    let (params, value) = params_and_value(&text[colon + 1..])?;
    if prefix.is_some() {
        cpim.fields.push(Field {
            prefix: prefix.map(str::to_owned),
            name: name.to_owned(),
            params,
            value: value.to_owned(),
        });
        return Ok(());
    }
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    let trimmed = value.trim_matches([' ', '\t']);
    if is("From") {
        if cpim.from.is_some() {
            return Err(CpimError::Multiple("From"));
        }
        cpim.from = Some(addr(trimmed).ok_or(CpimError::Malformed("From"))?);
    } else if is("To") {
        cpim.to
            .push(addr(trimmed).ok_or(CpimError::Malformed("To"))?);
    } else if is("cc") {
        cpim.cc
            .push(addr(trimmed).ok_or(CpimError::Malformed("cc"))?);
    } else if is("DateTime") {
        if cpim.date_time.is_some() {
            return Err(CpimError::Multiple("DateTime"));
        }
        if trimmed.is_empty() {
            return Err(CpimError::Malformed("DateTime"));
        }
        cpim.date_time = Some(trimmed.to_owned());
    } else if is("Subject") {
        let mut lang = None;
        for (n, v) in params {
            if n.eq_ignore_ascii_case("lang") && lang.is_none() {
                lang = Some(v);
            } else {
                return Err(CpimError::Malformed("Subject"));
            }
        }
        cpim.subject.push(Subject {
            lang,
            text: value.to_owned(),
        });
    } else if is("NS") {
        cpim.ns
            .push(namespace(trimmed).ok_or(CpimError::Malformed("NS"))?);
    } else if is("Require") {
        for n in trimmed.split(',') {
            let n = n.trim_matches([' ', '\t']);
            let ok = n.split('.').all(valid) && n.split('.').count() <= 2;
            if !ok {
                return Err(CpimError::Malformed("Require"));
            }
            cpim.require.push(n.to_owned());
        }
    } else {
        cpim.fields.push(Field {
            prefix: None,
            name: name.to_owned(),
            params,
            value: value.to_owned(),
        });
    }
    Ok(())
}

/// Splits `*( ";" name "=" value ) SP value` after the colon.
/// `;name=value` parameters, unquoted.
type Params = Vec<(String, String)>;

fn params_and_value(mut s: &str) -> Result<(Params, &str), CpimError> {
    let mut params = Vec::new();
    while let Some(rest) = s.strip_prefix(';') {
        let eq = rest.find('=').ok_or(CpimError::HeaderLine)?;
        let name = &rest[..eq];
        if name.is_empty() || !name.bytes().all(is_name_byte) {
            return Err(CpimError::HeaderLine);
        }
        let after = &rest[eq + 1..];
        let (value, rest) = if after.starts_with('"') {
            let (v, used) = quoted(after).ok_or(CpimError::HeaderLine)?;
            (v, &after[used..])
        } else {
            let end = after.find([';', ' ']).unwrap_or(after.len());
            let v = &after[..end];
            if v.is_empty() {
                return Err(CpimError::HeaderLine);
            }
            (v.to_owned(), &after[end..])
        };
        params.push((name.to_owned(), value));
        s = rest;
    }
    // Exactly one SP separates parameters and value; keep the value as written.
    Ok((params, s.strip_prefix(' ').unwrap_or(s)))
}

/// A `String` at the start of `s` (`"` ... `"`, `\` escapes the next char); returns the
/// unquoted text and the bytes used.
fn quoted(s: &str) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, i + 1)),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

/// `[Formal-name] "<" URI ">"`; a bare URI is accepted too.
fn addr(v: &str) -> Option<Addr> {
    let Some(open) = v.rfind('<') else {
        let ok = !v.is_empty() && !v.contains([' ', '\t', '>', '"']);
        return ok.then(|| Addr::new(v));
    };
    let uri = v[open + 1..].strip_suffix('>')?;
    if uri.is_empty() || uri.contains([' ', '\t', '<', '>']) {
        return None;
    }
    let name = v[..open].trim_matches([' ', '\t']);
    let display = if name.is_empty() {
        None
    } else if name.starts_with('"') {
        let (text, used) = quoted(name)?;
        if used != name.len() {
            return None;
        }
        Some(text)
    } else {
        // `1*( Token SP )`: the words, as written.
        if name.contains(['"', '<', '>']) {
            return None;
        }
        Some(name.to_owned())
    };
    Some(Addr {
        display,
        uri: uri.to_owned(),
    })
}

/// `[Name-prefix SP] "<" URI ">"`.
fn namespace(v: &str) -> Option<Namespace> {
    let open = v.find('<')?;
    let uri = v[open + 1..].strip_suffix('>')?;
    if uri.is_empty() || uri.contains([' ', '\t', '<', '>']) {
        return None;
    }
    let prefix = v[..open].trim_matches([' ', '\t']);
    if !prefix.bytes().all(is_name_byte) {
        return None;
    }
    Some(Namespace {
        prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
        uri: uri.to_owned(),
    })
}
