//! IMDN (RFC 5438) delivery notifications the focus itself generates: when it cannot deliver
//! a message to a recipient and the sender asked for `negative-delivery`, the sender gets a
//! `message/imdn+xml` notification with status `failed`.

use crate::conference_info::to_rfc3339;
use std::fmt::Write as _;
use std::time::SystemTime;

/// The IMDN body's media type.
pub const CONTENT_TYPE: &str = "message/imdn+xml";

/// True when a `Disposition-Notification` value asks for negative delivery reports.
pub fn wants_negative_delivery(disposition: &str) -> bool {
    disposition
        .split(',')
        .any(|d| d.trim().eq_ignore_ascii_case("negative-delivery"))
}

/// Renders a delivery notification with status `failed` for `message_id` toward `recipient`.
pub fn failed_delivery(message_id: &str, recipient: &str, now: SystemTime) -> String {
    let mut out = String::with_capacity(400);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\">\n");
    let _ = writeln!(out, "<message-id>{}</message-id>", escape(message_id));
    let _ = writeln!(out, "<datetime>{}</datetime>", to_rfc3339(now));
    let _ = writeln!(out, "<recipient-uri>{}</recipient-uri>", escape(recipient));
    let _ = writeln!(
        out,
        "<original-recipient-uri>{}</original-recipient-uri>",
        escape(recipient)
    );
    out.push_str("<delivery-notification><status><failed/></status></delivery-notification>\n");
    out.push_str("</imdn>\n");
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_delivery_report() {
        assert!(wants_negative_delivery(
            "positive-delivery, negative-delivery"
        ));
        assert!(!wants_negative_delivery("positive-delivery, display"));
        let x = failed_delivery("34jk<324j", "sip:bob@example.com", SystemTime::UNIX_EPOCH);
        assert!(x.contains("<message-id>34jk&lt;324j</message-id>"));
        assert!(x.contains("<failed/>"));
        assert!(x.contains("<datetime>1970-01-01T00:00:00Z</datetime>"));
    }
}
