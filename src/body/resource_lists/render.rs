//! Writes resource-lists documents: plain ones for requests, and the `recipient-list-history`
//! a MESSAGE exploder sends each recipient (RFC 5365 with RFC 5364).
//!
//! # History
//!
//! Recipients learn who else got the message, within what the sender allowed:
//! - `bcc` entries are left out altogether;
//! - anonymized entries are masked: per copy-control class (`to`, `cc`), one entry with
//!   [`ANONYMOUS_URI`], that class and `cp:count` = how many were anonymized, in the place of the
//!   first of them. No URI or display name of an anonymized recipient is written, and the
//!   anonymous URI appears once per class rather than once per recipient.
//!
//! Pass the list after [`ResourceList::dedup`](super::ResourceList::dedup).
//!
//! Strings come from the sender, so everything is escaped, and characters XML 1.0 cannot carry
//! become U+FFFD: one hostile display name must not make every recipient's body ill-formed.

use super::model::{CopyControl, Entry, ANONYMOUS_URI, COPY_CONTROL_NAMESPACE, NAMESPACE};

/// A document listing `entries` as given (all attributes written).
pub fn render(entries: &[Entry]) -> String {
    let mut out = open();
    for e in entries {
        push_entry(
            &mut out,
            &e.uri,
            e.display_name.as_deref(),
            e.copy_control,
            e.anonymize,
            e.count,
        );
    }
    close(out)
}

/// The `recipient-list-history` document for `entries` (see the module docs).
pub fn render_history(entries: &[Entry]) -> String {
    let anonymized = |class: CopyControl| {
        let n = entries
            .iter()
            .filter(|e| e.anonymize && e.copy_control == class)
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    };
    let mut masked = [
        (CopyControl::To, anonymized(CopyControl::To), false),
        (CopyControl::Cc, anonymized(CopyControl::Cc), false),
    ];
    let mut out = open();
    for e in entries {
        if e.copy_control == CopyControl::Bcc {
            continue;
        }
        if !e.anonymize {
            push_entry(
                &mut out,
                &e.uri,
                e.display_name.as_deref(),
                e.copy_control,
                false,
                None,
            );
            continue;
        }
        for (class, count, written) in &mut masked {
            if *class == e.copy_control && !*written {
                *written = true;
                push_entry(&mut out, ANONYMOUS_URI, None, *class, false, Some(*count));
            }
        }
    }
    close(out)
}

fn open() -> String {
    let mut out = String::with_capacity(512);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"");
    out.push_str(NAMESPACE);
    out.push_str("\" xmlns:cp=\"");
    out.push_str(COPY_CONTROL_NAMESPACE);
    out.push_str("\">\n<list>\n");
    out
}

fn close(mut out: String) -> String {
    out.push_str("</list>\n</resource-lists>\n");
    out
}

fn push_entry(
    out: &mut String,
    uri: &str,
    display_name: Option<&str>,
    copy_control: CopyControl,
    anonymize: bool,
    count: Option<u32>,
) {
    out.push_str("<entry uri=\"");
    push_escaped(out, uri, true);
    out.push_str("\" cp:copyControl=\"");
    out.push_str(copy_control.as_str());
    out.push('"');
    if anonymize {
        out.push_str(" cp:anonymize=\"true\"");
    }
    if let Some(n) = count {
        out.push_str(" cp:count=\"");
        out.push_str(&n.to_string());
        out.push('"');
    }
    match display_name {
        Some(name) => {
            out.push_str("><display-name>");
            push_escaped(out, name, false);
            out.push_str("</display-name></entry>\n");
        }
        None => out.push_str("/>\n"),
    }
}

/// Appends `s` escaped for element content or a double-quoted attribute value.
///
/// CR is written as `&#13;` (a literal one would become LF by end-of-line normalization), and
/// in attributes TAB and LF as references too (attribute normalization would make them
/// spaces), so text round-trips exactly.
fn push_escaped(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attr => out.push_str("&#9;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}
