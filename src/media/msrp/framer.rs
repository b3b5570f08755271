//! Cuts whole MSRP messages out of a byte stream by their end-line (RFC 4975 §7.1.1),
//! mini-redis style: `decode` says "need more" cheaply and cuts a message without copying it.
//!
//! MSRP has no length header: a message ends at the first `CRLF "-------" tid flag CRLF`,
//! where `tid` is the transaction id of its start line (the sender must keep that string out
//! of the body). So the framer reads the start line, then searches for that end-line. The
//! search resumes where it stopped, so a body arriving byte by byte costs O(n), not O(n²).

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

use super::syntax::{find, is_ident};

/// A reasonable maximum frame for a chat focus: a chunk of any sane client (RFC 4975 asks
/// for interruptible chunks above 2048 bytes) plus its headers.
pub const DEFAULT_MAX_FRAME: usize = 256 * 1024;

/// The `-------` that opens an end-line.
const DASHES: &[u8] = b"-------";

/// Why the stream cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The stream does not start with `MSRP <transaction-id> `: nothing can be answered and
    /// the next message cannot be found, so the connection must be closed.
    #[error("malformed MSRP start line")]
    StartLine,
    /// No end-line and no complete header section within the maximum frame size: close.
    #[error("message header larger than the maximum frame size")]
    TooLarge,
    /// A message larger than the maximum frame size, whose start line and header fields
    /// (`head`, without the blank line) did arrive. The caller parses `head` with
    /// [`parse_head`](super::parse_head) and answers `413` (RFC 4975 §7.3.1: stop sending)
    /// or closes. The framer discards the rest of this message up to its end-line, so further
    /// `decode` calls go on with the next message.
    #[error("message larger than the maximum frame size")]
    Oversized { head: Bytes },
}

/// One complete MSRP message as received, start line through end-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub bytes: Bytes,
}

#[derive(Debug, Clone)]
enum State {
    /// Waiting for the start line's CRLF; bytes before `scanned` have none.
    Start { scanned: usize },
    /// Searching for the end-line; no end-line begins before `scanned`.
    Body { needle: Vec<u8>, scanned: usize },
    /// Discarding an oversized message up to its end-line.
    Skip { needle: Vec<u8>, scanned: usize },
    /// Unframeable: every call returns this error.
    Failed(FrameError),
}

/// A stream framer with a maximum frame size.
#[derive(Debug, Clone)]
pub struct Framer {
    max_frame: usize,
    state: State,
}

impl Default for Framer {
    fn default() -> Self {
        Framer::new(DEFAULT_MAX_FRAME)
    }
}

impl Framer {
    pub fn new(max_frame: usize) -> Framer {
        Framer {
            max_frame,
            state: State::Start { scanned: 0 },
        }
    }

    /// Takes the next message out of `buf`; `Ok(None)` when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        loop {
            match &mut self.state {
                State::Failed(e) => return Err(e.clone()),
                State::Start { scanned } => {
                    // Stray line ends between messages are harmless; skip them.
                    let lead = buf
                        .iter()
                        .take_while(|&&b| b == b'\r' || b == b'\n')
                        .count();
                    if lead > 0 {
                        buf.advance(lead);
                        *scanned = 0;
                    }
                    let prefix = buf.len().min(5);
                    if buf[..prefix] != b"MSRP "[..prefix] {
                        return Err(self.fail(FrameError::StartLine));
                    }
                    let Some(eol) = find(buf, b"\r\n", scanned.saturating_sub(1)) else {
                        *scanned = buf.len();
                        if buf.len() > self.max_frame {
                            return Err(self.fail(FrameError::TooLarge));
                        }
                        return Ok(None);
                    };
                    let Some(tid) = transaction_id(&buf[..eol]) else {
                        return Err(self.fail(FrameError::StartLine));
                    };
                    let mut needle = Vec::with_capacity(2 + DASHES.len() + tid.len());
                    needle.extend_from_slice(b"\r\n");
                    needle.extend_from_slice(DASHES);
                    needle.extend_from_slice(tid);
                    // The start line's own CRLF may open the end-line (no header at all).
                    self.state = State::Body {
                        needle,
                        scanned: eol,
                    };
                }
                State::Body { needle, scanned } => match find_end_line(buf, needle, *scanned) {
                    Ok(end) if end <= self.max_frame => {
                        self.state = State::Start { scanned: 0 };
                        let bytes = buf.split_to(end).freeze();
                        return Ok(Some(Frame { bytes }));
                    }
                    Ok(end) => {
                        // The header section must end before this message's end-line.
                        let head_limit = end - 1 - needle.len();
                        return Err(self.oversized(buf, head_limit));
                    }
                    Err(next) => {
                        *scanned = next;
                        if buf.len() > self.max_frame {
                            return Err(self.oversized(buf, buf.len()));
                        }
                        return Ok(None);
                    }
                },
                State::Skip { needle, scanned } => match find_end_line(buf, needle, *scanned) {
                    Ok(end) => {
                        buf.advance(end);
                        self.state = State::Start { scanned: 0 };
                    }
                    Err(next) => {
                        // Nothing before `next` can start the end-line: drop it.
                        buf.advance(next);
                        *scanned = 0;
                        return Ok(None);
                    }
                },
            }
        }
    }

    /// Handles a message over the limit: hands out its header section and skips the rest,
    /// or fails when not even the header section fits.
    fn oversized(&mut self, buf: &mut BytesMut, head_limit: usize) -> FrameError {
        let State::Body { needle, .. } = &mut self.state else {
            return self.fail(FrameError::TooLarge);
        };
        let window = &buf[..buf.len().min(self.max_frame).min(head_limit)];
        match find(window, b"\r\n\r\n", 0) {
            Some(blank) => {
                let needle = std::mem::take(needle);
                let head = buf.split_to(blank + 2).freeze();
                self.state = State::Skip { needle, scanned: 0 };
                FrameError::Oversized { head }
            }
            None => self.fail(FrameError::TooLarge),
        }
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.state = State::Failed(e.clone());
        e
    }
}

/// The transaction id of a start line `MSRP SP tid SP ...`, if it is an `ident`.
fn transaction_id(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"MSRP ")?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    let tid = &rest[..sp];
    is_ident(std::str::from_utf8(tid).ok()?).then_some(tid)
}

/// Looks for `needle flag CRLF` from `from` on. `Ok(end)` is the index just past the
/// end-line; `Err(next)` is where the next search must resume (a match may still be
/// completing in the bytes from there on).
fn find_end_line(buf: &[u8], needle: &[u8], from: usize) -> Result<usize, usize> {
    let full = needle.len() + 3;
    let mut i = from;
    while let Some(at) = find(buf, needle, i) {
        let Some(tail) = buf.get(at + needle.len()..at + full) else {
            return Err(at);
        };
        if matches!(tail[0], b'$' | b'+' | b'#') && tail[1..] == *b"\r\n" {
            return Ok(at + full);
        }
        // `-------tid` followed by something else: not this message's end-line.
        i = at + 1;
    }
    Err(buf.len().saturating_sub(needle.len() - 1).max(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEND: &str = "MSRP a786hjs2 SEND\r\n\
        To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n\
        From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
        Message-ID: 87652491\r\n\
        Byte-Range: 1-23/23\r\n\
        Content-Type: text/plain\r\n\
        \r\n\
        Hey Bob, are you there?\r\n\
        -------a786hjs2$\r\n";

    const OK: &str = "MSRP a786hjs2 200 OK\r\n\
        To-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
        From-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n\
        -------a786hjs2$\r\n";

    fn frame(s: &str) -> Frame {
        Frame {
            bytes: Bytes::copy_from_slice(s.as_bytes()),
        }
    }

    #[test]
    fn two_messages_in_one_read() {
        let mut buf = BytesMut::from(format!("{SEND}{OK}").as_bytes());
        let mut f = Framer::default();
        assert_eq!(f.decode(&mut buf), Ok(Some(frame(SEND))));
        assert_eq!(f.decode(&mut buf), Ok(Some(frame(OK))));
        assert_eq!(f.decode(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn byte_by_byte() {
        let all = format!("{SEND}\r\n{OK}");
        let mut f = Framer::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for b in all.bytes() {
            buf.extend_from_slice(&[b]);
            while let Some(fr) = f.decode(&mut buf).unwrap() {
                out.push(fr);
            }
        }
        assert_eq!(out, vec![frame(SEND), frame(OK)]);
    }

    #[test]
    fn end_line_lookalikes_in_the_body_are_data() {
        let msg = "MSRP abcd SEND\r\nTo-Path: msrp://h/a;tcp\r\nFrom-Path: msrp://h/b;tcp\r\n\
            Content-Type: text/plain\r\n\r\n\
            -------abcd\r\n-------abc$\r\n-------abcde$\r\n-------abcd!\r\n-------abcd$x\r\n\
            -------abcd$\r\n";
        let mut f = Framer::default();
        let mut buf = BytesMut::from(msg.as_bytes());
        assert_eq!(f.decode(&mut buf), Ok(Some(frame(msg))));
    }

    #[test]
    fn bodyless_request_and_flags() {
        for flag in ['$', '+', '#'] {
            let msg = format!(
                "MSRP 1234 SEND\r\nTo-Path: msrp://h/a;tcp\r\nFrom-Path: msrp://h/b;tcp\r\n\
                 -------1234{flag}\r\n"
            );
            let mut f = Framer::default();
            let mut buf = BytesMut::from(msg.as_bytes());
            assert_eq!(f.decode(&mut buf), Ok(Some(frame(&msg))));
        }
        // No header at all: framed (the parser rejects it).
        let mut buf = BytesMut::from(&b"MSRP 1234 SEND\r\n-------1234$\r\n"[..]);
        assert!(Framer::default().decode(&mut buf).unwrap().is_some());
    }

    #[test]
    fn garbage_start_closes() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"MSRX",
            b"MSRP abc SEND\r\n",
            b"MSRP _abcd SEND\r\n",
            b"MSRP abcdSEND\r\n",
            b"\r\nmsrp abcd SEND\r\n",
        ] {
            let mut f = Framer::default();
            let mut buf = BytesMut::from(bad);
            assert_eq!(f.decode(&mut buf), Err(FrameError::StartLine), "{bad:?}");
            // It stays failed.
            assert_eq!(f.decode(&mut buf), Err(FrameError::StartLine));
        }
        // A prefix of a valid start waits.
        let mut buf = BytesMut::from(&b"MSR"[..]);
        assert_eq!(Framer::default().decode(&mut buf), Ok(None));
    }

    #[test]
    fn oversized_message_gives_its_head_then_resumes() {
        let body = "x".repeat(500);
        let big = format!(
            "MSRP big1 SEND\r\nTo-Path: msrp://h/a;tcp\r\nFrom-Path: msrp://h/b;tcp\r\n\
             Message-ID: m123\r\nContent-Type: text/plain\r\n\r\n{body}\r\n-------big1+\r\n"
        );
        let head_len = big.find("\r\n\r\n").unwrap() + 2;
        // All at once, and in 7-byte pieces.
        for piece in [big.len() + OK.len(), 7] {
            let all = format!("{big}{OK}");
            let mut f = Framer::new(200);
            let mut buf = BytesMut::new();
            let mut events = Vec::new();
            for part in all.as_bytes().chunks(piece) {
                buf.extend_from_slice(part);
                loop {
                    match f.decode(&mut buf) {
                        Ok(Some(fr)) => events.push(Ok(fr)),
                        Ok(None) => break,
                        Err(e) => events.push(Err(e)),
                    }
                }
                assert!(buf.len() <= 200 + piece, "buffer bounded");
            }
            assert_eq!(
                events,
                vec![
                    Err(FrameError::Oversized {
                        head: Bytes::copy_from_slice(&big.as_bytes()[..head_len])
                    }),
                    Ok(frame(OK)),
                ],
                "piece {piece}"
            );
        }
    }

    #[test]
    fn endless_header_closes() {
        let mut f = Framer::new(100);
        let mut buf = BytesMut::from(&b"MSRP abcd SEND\r\n"[..]);
        buf.extend_from_slice(&[b'x'; 200]);
        assert_eq!(f.decode(&mut buf), Err(FrameError::TooLarge));
        let mut f = Framer::new(100);
        let mut buf = BytesMut::from(&[b'M'; 1][..]);
        buf.extend_from_slice(b"SRP ");
        buf.extend_from_slice(&[b'x'; 200]);
        assert_eq!(f.decode(&mut buf), Err(FrameError::TooLarge));
    }

    #[test]
    fn resumes_the_search_instead_of_rescanning() {
        let mut f = Framer::default();
        let mut buf = BytesMut::from(&b"MSRP abcd SEND\r\nTo-Path: x\r\n"[..]);
        assert_eq!(f.decode(&mut buf), Ok(None));
        for _ in 0..1000 {
            buf.extend_from_slice(b"0123456789");
            assert_eq!(f.decode(&mut buf), Ok(None));
            let State::Body { scanned, needle } = &f.state else {
                panic!("state {:?}", f.state)
            };
            assert!(*scanned + needle.len() + 3 > buf.len());
        }
    }

    #[test]
    fn find_works() {
        assert_eq!(find(b"abcabd", b"abd", 0), Some(3));
        assert_eq!(find(b"abcabd", b"abd", 4), None);
        assert_eq!(find(b"ab", b"abc", 0), None);
        assert_eq!(find(b"abc", b"", 0), None);
        assert_eq!(find(b"aaa", b"aa", 1), Some(1));
    }
}
