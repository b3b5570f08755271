//! Cuts whole SIP messages out of a byte stream (TCP, later TLS) by Content-Length
//! (RFC 3261 §18.3), mini-redis style: `decode` says "need more" cheaply and cuts a message
//! without copying it once it is complete.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

/// Why the stream cannot be framed; the connection must be closed after answering, since the
/// next message's start cannot be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    #[error("message larger than the configured maximum")]
    TooLarge,
    #[error("malformed Content-Length")]
    BadContentLength,
    #[error("multiple Content-Length values")]
    MultipleContentLength,
    /// RFC 3261 §18.3, §20.14: on a stream Content-Length is mandatory; without it the end of
    /// the message, and so the start of the next, is unknown.
    #[error("no Content-Length on a stream")]
    MissingContentLength,
}

/// What the framer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// One complete message (start line, headers, body).
    Message(Bytes),
    /// A CRLFCRLF keep-alive ping (RFC 5626 §3.5.1): answer with one CRLF.
    Ping,
}

/// A stream framer with a maximum message size.
#[derive(Debug, Clone)]
pub struct Framer {
    max_message: usize,
    /// Where the search for the end of headers resumes, so a slow sender does not make us
    /// rescan from the start on every read.
    scanned: usize,
}

impl Framer {
    pub fn new(max_message: usize) -> Framer {
        Framer {
            max_message,
            scanned: 0,
        }
    }

    /// Takes the next frame out of `buf`, `Ok(None)` when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        // Keep-alives (CRLFCRLF, RFC 5626 §3.5.1) and stray line ends between messages
        // (ignored, RFC 3261 §7.5), decided byte by byte so that the outcome never depends on
        // how the stream was segmented: a line end is skipped unless it starts a ping, and the
        // framer waits only while the few bytes it has could still become one.
        while let Some(&b) = buf.first() {
            if b != b'\r' && b != b'\n' {
                break;
            }
            if buf.starts_with(b"\r\n\r\n") {
                buf.advance(4);
                self.scanned = 0;
                return Ok(Some(Frame::Ping));
            }
            if buf.len() < 4 && b"\r\n\r\n".starts_with(&buf[..]) {
                return Ok(None);
            }
            buf.advance(1);
            self.scanned = 0;
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let Some((head_end, body_start)) = find_blank_line(buf, self.scanned) else {
            self.scanned = buf.len().saturating_sub(3);
            if buf.len() > self.max_message {
                return Err(FrameError::TooLarge);
            }
            return Ok(None);
        };
        // A header section over the maximum is too large however its Content-Length reads:
        // the verdict must not depend on whether the blank line came in the same read.
        if body_start > self.max_message {
            return Err(FrameError::TooLarge);
        }
        let body_len = content_length(&buf[..head_end])?.ok_or(FrameError::MissingContentLength)?;
        let total = body_start
            .checked_add(body_len)
            .ok_or(FrameError::TooLarge)?;
        if total > self.max_message {
            return Err(FrameError::TooLarge);
        }
        if buf.len() < total {
            self.scanned = body_start.saturating_sub(3);
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        self.scanned = 0;
        Ok(Some(Frame::Message(buf.split_to(total).freeze())))
    }
}

/// Finds the empty line ending the headers, from `from` on; returns (head end, body start).
fn find_blank_line(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while let Some(off) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + off;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some((nl, nl + 2)),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some((nl, nl + 3)),
            _ => i = nl + 1,
        }
    }
    None
}

/// Reads Content-Length (long or compact `l`, any case, whitespace before the colon, folded
/// value) from a header block.
fn content_length(head: &[u8]) -> Result<Option<usize>, FrameError> {
    let mut found: Option<usize> = None;
    let mut lines = head.split(|&b| b == b'\n').skip(1).peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = trim(&line[..colon]);
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let mut value: Vec<u8> = trim(&line[colon + 1..]).to_vec();
        while let Some(next) = lines.peek() {
            if next.first().is_some_and(|&b| b == b' ' || b == b'\t') {
                let next = next.strip_suffix(b"\r").unwrap_or(next);
                value.extend_from_slice(trim(next));
                lines.next();
            } else {
                break;
            }
        }
        if found.is_some() || value.contains(&b',') {
            return Err(FrameError::MultipleContentLength);
        }
        if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
            return Err(FrameError::BadContentLength);
        }
        let n = value
            .iter()
            .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
        found = Some(n);
    }
    Ok(found)
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(cl: &str, body: &str) -> String {
        format!("MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n{cl}\r\n\r\n{body}")
    }

    #[test]
    fn frames_two_messages_in_one_read() {
        let m1 = msg("Content-Length: 5", "hello");
        let m2 = msg("l : 2", "hi");
        let mut buf = BytesMut::from(format!("{m1}{m2}").as_bytes());
        let mut f = Framer::new(65535);
        assert_eq!(
            f.decode(&mut buf),
            Ok(Some(Frame::Message(Bytes::from(m1))))
        );
        assert_eq!(
            f.decode(&mut buf),
            Ok(Some(Frame::Message(Bytes::from(m2))))
        );
        assert_eq!(f.decode(&mut buf), Ok(None));
    }

    #[test]
    fn waits_byte_by_byte() {
        let m = msg("Content-Length: 5", "hello");
        let mut f = Framer::new(65535);
        let mut buf = BytesMut::new();
        for (i, b) in m.bytes().enumerate() {
            buf.extend_from_slice(&[b]);
            let out = f.decode(&mut buf).unwrap();
            if i + 1 < m.len() {
                assert_eq!(out, None, "at byte {i}");
            } else {
                assert_eq!(out, Some(Frame::Message(Bytes::from(m.clone()))));
            }
        }
    }

    #[test]
    fn ping_and_leading_crlf() {
        let mut f = Framer::new(65535);
        let mut buf = BytesMut::from(&b"\r\n\r\n"[..]);
        assert_eq!(f.decode(&mut buf), Ok(Some(Frame::Ping)));
        let m = msg("Content-Length: 0", "");
        let mut buf = BytesMut::from(format!("\r\n{m}").as_bytes());
        assert_eq!(f.decode(&mut buf), Ok(Some(Frame::Message(Bytes::from(m)))));
    }

    #[test]
    fn missing_content_length_is_unframeable() {
        // RFC 3261 §18.3: a stream message without Content-Length cannot be delimited (it was
        // once taken as bodiless, and a body sent after it read as the next message).
        let m = msg("X: y", "");
        let mut buf = BytesMut::from(m.as_bytes());
        let mut f = Framer::new(65535);
        assert_eq!(f.decode(&mut buf), Err(FrameError::MissingContentLength));
    }

    #[test]
    fn unframeable() {
        let mut f = Framer::new(65535);
        for (cl, err) in [
            ("Content-Length: -999", FrameError::BadContentLength),
            (
                "Content-Length: 1\r\nl: 1",
                FrameError::MultipleContentLength,
            ),
            ("Content-Length: 1, 2", FrameError::MultipleContentLength),
            ("Content-Length: 99999999", FrameError::TooLarge),
        ] {
            let mut buf = BytesMut::from(msg(cl, "").as_bytes());
            assert_eq!(f.decode(&mut buf), Err(err), "{cl}");
        }
        let mut f = Framer::new(100);
        let mut buf = BytesMut::from(&[b'x'; 200][..]);
        assert_eq!(f.decode(&mut buf), Err(FrameError::TooLarge));
    }

    #[test]
    fn an_oversized_head_is_too_large_whatever_its_segmentation() {
        // Fuzz finding: with the whole head in one read a bad Content-Length was reported,
        // read in pieces the same bytes were TooLarge.
        let head = format!(
            "MESSAGE sip:a@b SIP/2.0\r\nX: {}\r\nContent-Length: 1\r\nl: 2\r\n\r\n",
            "y".repeat(600)
        );
        let mut f = Framer::new(512);
        let mut buf = BytesMut::from(head.as_bytes());
        assert_eq!(f.decode(&mut buf), Err(FrameError::TooLarge));
        let mut f = Framer::new(512);
        let mut buf = BytesMut::new();
        let mut got = Ok(None);
        for chunk in head.as_bytes().chunks(100) {
            buf.extend_from_slice(chunk);
            got = f.decode(&mut buf);
            if got != Ok(None) {
                break;
            }
        }
        assert_eq!(got, Err(FrameError::TooLarge));
    }

    #[test]
    fn line_ends_between_messages_do_not_depend_on_segmentation() {
        // Fuzz finding: "\n\n\n\n\r\n\r\n" read at once was skipped whole, read in pieces its
        // tail became a ping.
        let stream = b"\n\n\n\n\r\n\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n\r\n\r";
        let run = |piece: usize| {
            let mut f = Framer::new(65535);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for chunk in stream.chunks(piece) {
                buf.extend_from_slice(chunk);
                while let Ok(Some(frame)) = f.decode(&mut buf) {
                    out.push(frame);
                }
            }
            out
        };
        let whole = run(stream.len());
        assert_eq!(whole.len(), 2, "{whole:?}");
        assert_eq!(whole[0], Frame::Ping);
        for piece in 1..stream.len() {
            assert_eq!(run(piece), whole, "in pieces of {piece}");
        }
    }

    #[test]
    fn clerr_waits_for_more() {
        let mut f = Framer::new(65535);
        let mut buf = BytesMut::from(msg("Content-Length: 9999", "short").as_bytes());
        assert_eq!(f.decode(&mut buf), Ok(None));
    }
}
