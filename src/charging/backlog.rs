//! The writer's backlog: encoded records not yet completely in the file, oldest first.
//!
//! It remembers how far a line cut short by a failed write got, so the retry writes only the
//! rest: no line is ever duplicated or torn by a retry.

use std::collections::VecDeque;

/// One encoded record waiting for the file.
struct Line {
    /// The record type: the metric label once it is written.
    kind: &'static str,
    /// The JSON object and its `\n`.
    bytes: Vec<u8>,
}

#[derive(Default)]
pub(crate) struct Backlog {
    lines: VecDeque<Line>,
    /// Bytes of the front line already in the file.
    partial: usize,
}

impl Backlog {
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Whether the front line is partly written (it must be finished in the same file).
    pub(crate) fn is_mid_line(&self) -> bool {
        self.partial > 0
    }

    /// The whole length of the front line.
    pub(crate) fn front_len(&self) -> Option<usize> {
        self.lines.front().map(|l| l.bytes.len())
    }

    /// Queues one encoded line (ending in `\n`).
    pub(crate) fn push(&mut self, kind: &'static str, bytes: Vec<u8>) {
        self.lines.push_back(Line { kind, bytes });
    }

    /// Copies into `out` what remains of the front line, then whole lines while
    /// `fits(total length)` allows.
    pub(crate) fn gather(&self, out: &mut Vec<u8>, mut fits: impl FnMut(usize) -> bool) {
        for (i, line) in self.lines.iter().enumerate() {
            if i == 0 {
                out.extend_from_slice(&line.bytes[self.partial..]);
            } else if fits(out.len() + line.bytes.len()) {
                out.extend_from_slice(&line.bytes);
            } else {
                return;
            }
        }
    }

    /// Takes note that `written` bytes of a [`gather`](Self::gather) reached the file:
    /// completed lines leave (each reported to `done`), a cut one remembers its progress.
    pub(crate) fn complete(&mut self, mut written: usize, mut done: impl FnMut(&'static str)) {
        while written > 0 {
            let Some(front) = self.lines.front() else {
                return;
            };
            let rest = front.bytes.len() - self.partial;
            if written < rest {
                self.partial += written;
                return;
            }
            written -= rest;
            self.partial = 0;
            if let Some(line) = self.lines.pop_front() {
                done(line.kind);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(lines: &[&str]) -> Backlog {
        let mut b = Backlog::default();
        for l in lines {
            b.push("t", l.as_bytes().to_vec());
        }
        b
    }

    #[test]
    fn a_cut_write_resumes_mid_line_without_duplicating() {
        let mut b = backlog(&["aaaa\n", "bbb\n", "cc\n"]);
        let mut out = Vec::new();
        b.gather(&mut out, |_| true);
        assert_eq!(out, b"aaaa\nbbb\ncc\n");
        let mut done = 0;
        // The write stopped inside the second line.
        b.complete(7, |_| done += 1);
        assert_eq!((done, b.len(), b.is_mid_line()), (1, 2, true));
        out.clear();
        b.gather(&mut out, |_| true);
        assert_eq!(out, b"b\ncc\n");
        b.complete(out.len(), |_| done += 1);
        assert_eq!((done, b.is_empty(), b.is_mid_line()), (3, true, false));
    }

    #[test]
    fn gather_stops_at_the_first_line_that_does_not_fit() {
        let b = backlog(&["aaaa\n", "bbb\n", "c\n"]);
        let mut out = Vec::new();
        // The front line is always taken; then up to 9 bytes in all.
        b.gather(&mut out, |len| len <= 9);
        assert_eq!(out, b"aaaa\nbbb\n");
        out.clear();
        b.gather(&mut out, |_| false);
        assert_eq!(out, b"aaaa\n");
        assert_eq!(b.front_len(), Some(5));
    }
}
