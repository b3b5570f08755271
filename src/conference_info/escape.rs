//! XML 1.0 escaping for the renderer.
//!
//! Strings come from peers (display names, Subject, reasons), so anything may be in them. We
//! escape the five markup characters everywhere and replace characters XML 1.0 cannot carry at
//! all (C0 controls other than TAB/LF/CR, U+FFFE, U+FFFF) with U+FFFD: one hostile display name
//! must not make every subscriber's NOTIFY body ill-formed.
//!
//! CR is written as `&#13;` (a literal CR would be turned into LF by the receiver's end-of-line
//! normalization), and in attribute values TAB and LF are written as references too (attribute
//! value normalization would turn them into spaces). So text round-trips exactly.

const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Bytes the scanner must stop at; everything else is copied in bulk.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\'' as usize] = true;
    // Lead byte of U+FFFE / U+FFFF (EF BF BE / EF BF BF); rare in real text.
    t[0xEF] = true;
    t
};

/// Appends `s` escaped for element content (`attr == false`) or a double-quoted attribute.
pub(crate) fn push_escaped(out: &mut Vec<u8>, s: &str, attr: bool) {
    let bytes = s.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !SPECIAL[usize::from(b)] {
            i += 1;
            continue;
        }
        let (replacement, width): (&[u8], usize) = match b {
            b'&' => (b"&amp;", 1),
            b'<' => (b"&lt;", 1),
            b'>' => (b"&gt;", 1),
            b'"' => (b"&quot;", 1),
            b'\'' => (b"&apos;", 1),
            b'\r' => (b"&#13;", 1),
            b'\t' if attr => (b"&#9;", 1),
            b'\n' if attr => (b"&#10;", 1),
            b'\t' | b'\n' => {
                i += 1;
                continue;
            }
            0xEF => match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(0xBF), Some(0xBE | 0xBF)) => (REPLACEMENT, 3),
                _ => {
                    i += 1;
                    continue;
                }
            },
            // Remaining C0 controls.
            _ => (REPLACEMENT, 1),
        };
        out.extend_from_slice(&bytes[copied..i]);
        out.extend_from_slice(replacement);
        i += width;
        copied = i;
    }
    out.extend_from_slice(&bytes[copied..]);
}
