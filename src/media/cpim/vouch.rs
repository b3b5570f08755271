//! The one envelope rule of every path that relays a participant's `message/cpim` (the MSRP
//! switch, pager-mode group messages, the exploder): the focus vouches for who sent it. The
//! CPIM `From` becomes the sender as the others may see it (its alias when it asked for
//! privacy, RFC 3323); whatever the sender wrote there is never relayed. A `From` naming
//! someone else is replaced too (not refused: RCS clients write the anonymous URI, some a
//! GRUU or tel URI of their own, and the recipients see the focus's word either way), and
//! counted as forged. An anonymous sender's IMDN names it by its alias as well.

use super::{Addr, Cpim};

/// The relay path, a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Msrp,
    Pager,
    Exploder,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Msrp => "msrp",
            Path::Pager => "pager",
            Path::Exploder => "exploder",
        }
    }
}

/// Who sent a message, as the focus knows it.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    /// How the others see it: its identity, or its alias when anonymous.
    pub shown: &'a Addr,
    /// Its real address of record (never shown when it differs from `shown`).
    pub real: &'a str,
}

impl Sender<'_> {
    /// True when the others must not learn `real`.
    pub fn hidden(&self) -> bool {
        !same_aor(&self.shown.uri, self.real)
    }
}

/// What the sender had written as CPIM `From`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// No `From` at all.
    Absent,
    /// Its own identity or its alias.
    Own,
    /// The anonymous URI (RFC 3323), as RCS clients write it.
    Anonymous,
    /// Someone else: replaced and counted.
    Forged,
}

/// Why an envelope cannot be vouched for: the message is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VouchError {
    /// An anonymous sender's IMDN that is not valid UTF-8 cannot be rewritten, and relaying
    /// it could name the sender.
    #[error("an anonymous sender's notification could not be rewritten")]
    Unreadable,
}

/// Applies the rule to `cpim` (in place): `From` is `sender.shown`; an anonymous sender's
/// IMDN (RFC 5438) names it by its alias. A forged claim is counted in
/// `focus_cpim_forged_from_total{path}`.
pub fn vouch(cpim: &mut Cpim, sender: Sender<'_>, path: Path) -> Result<Claim, VouchError> {
    let claim = match &cpim.from {
        None => Claim::Absent,
        Some(a) if same_aor(&a.uri, sender.real) || same_aor(&a.uri, &sender.shown.uri) => {
            Claim::Own
        }
        Some(a) if is_anonymous(&a.uri) => Claim::Anonymous,
        Some(_) => Claim::Forged,
    };
    if claim == Claim::Forged {
        metrics::counter!("focus_cpim_forged_from_total", "path" => path.as_str()).increment(1);
    }
    cpim.from = Some(sender.shown.clone());
    if sender.hidden() && is_imdn(cpim) {
        let text = std::str::from_utf8(&cpim.body).map_err(|_| VouchError::Unreadable)?;
        let rewritten = hide_recipient(text, &sender.shown.uri);
        cpim.body = bytes::Bytes::from(rewritten);
    }
    Ok(claim)
}

/// Whether the encapsulated content is an IMDN (RFC 5438 `message/imdn+xml`).
pub fn is_imdn(cpim: &Cpim) -> bool {
    cpim.content_type.as_deref().is_some_and(|t| {
        t.split(';').next().is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case(crate::media::imdn::CONTENT_TYPE)
        })
    })
}

/// The IMDN with the content of every `recipient-uri` and `original-recipient-uri` element
/// (whatever namespace prefix) replaced by `alias`: the one sending a notification is its
/// recipient, and an anonymous one is known by its alias only.
pub fn hide_recipient(xml: &str, alias: &str) -> String {
    let mut out = String::with_capacity(xml.len() + 64);
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let tag_area = &rest[open..];
        let Some(close) = tag_area.find('>') else {
            out.push_str(tag_area);
            return out;
        };
        let tag = &tag_area[..=close];
        out.push_str(tag);
        rest = &tag_area[close + 1..];
        let name = tag[1..tag.len() - 1]
            .split(|c: char| c.is_ascii_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let local = name.rsplit(':').next().unwrap_or(name);
        let opening = !tag.starts_with("</") && !tag.ends_with("/>");
        if opening && (local == "recipient-uri" || local == "original-recipient-uri") {
            let end = rest.find('<').unwrap_or(rest.len());
            out.push_str(&escape(alias));
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The anonymous URI of RFC 3323 §4.1.1.3, or any alias in its domain.
fn is_anonymous(uri: &str) -> bool {
    crate::sip::Uri::parse(uri.trim()).is_ok_and(|u| {
        matches!(&u.host, Some(crate::sip::Host::Domain(d))
            if d.eq_ignore_ascii_case(crate::policy::ANONYMOUS_DOMAIN))
    })
}

/// Two identities compared as addresses of record (non-SIP URIs as case-blind text).
pub fn same_aor(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim().trim_start_matches('<').trim_end_matches('>');
        crate::sip::Uri::parse(s)
            .map(|u| u.aor())
            .unwrap_or_else(|_| s.to_ascii_lowercase())
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::SystemTime;

    fn msg(from: &str, ct: &str, body: &str) -> Cpim {
        Cpim::new(
            Addr::new(from),
            Addr::new("sip:team@focus.example.com"),
            ct,
            Bytes::from(body.to_string()),
            SystemTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn the_from_is_always_the_focus_word() {
        let alias = Addr::with_display("sip:anonymous-1@anonymous.invalid", "Anonymous 1");
        let anon = Sender {
            shown: &alias,
            real: "sip:dave@example.com",
        };
        let named = Addr::new("sip:alice@example.com");
        let alice = Sender {
            shown: &named,
            real: "sip:alice@example.com",
        };
        for (from, sender, claim) in [
            ("sip:dave@example.com", anon, Claim::Own),
            ("sip:anonymous-1@anonymous.invalid", anon, Claim::Own),
            ("sip:anonymous@anonymous.invalid", anon, Claim::Anonymous),
            ("sip:bob@example.com", anon, Claim::Forged),
            ("sip:alice@EXAMPLE.com;transport=tcp", alice, Claim::Own),
            ("sip:bob@example.com", alice, Claim::Forged),
            ("tel:+15551234567", alice, Claim::Forged),
        ] {
            let mut c = msg(from, "text/plain", "hi");
            assert_eq!(vouch(&mut c, sender, Path::Pager), Ok(claim), "{from}");
            assert_eq!(c.from.as_ref(), Some(sender.shown));
            assert_eq!(&c.body[..], b"hi");
        }
        let mut c = msg("x", "text/plain", "hi");
        c.from = None;
        assert_eq!(vouch(&mut c, alice, Path::Msrp), Ok(Claim::Absent));
        assert_eq!(c.from.as_ref(), Some(&named));
    }

    const IMDN: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>m1</message-id>\
        <datetime>2026-01-01T00:00:00Z</datetime>\
        <recipient-uri>sip:dave@example.com</recipient-uri>\
        <original-recipient-uri>sip:dave@example.com</original-recipient-uri>\
        <delivery-notification><status><delivered/></status></delivery-notification></imdn>";

    #[test]
    fn an_anonymous_notification_names_the_alias() {
        let alias = Addr::new("sip:anonymous-1@anonymous.invalid");
        let anon = Sender {
            shown: &alias,
            real: "sip:dave@example.com",
        };
        let mut c = msg("sip:dave@example.com", "message/imdn+xml", IMDN);
        vouch(&mut c, anon, Path::Msrp).unwrap();
        let body = std::str::from_utf8(&c.body).unwrap();
        assert!(!body.contains("dave"), "{body}");
        assert_eq!(body.matches("sip:anonymous-1@anonymous.invalid").count(), 2);
        assert!(body.contains("<message-id>m1</message-id>"));
        assert!(body.contains("<delivered/>"));
        // Prefixed elements too.
        let p = hide_recipient("<i:recipient-uri>sip:d@x</i:recipient-uri>", "sip:a@b");
        assert_eq!(p, "<i:recipient-uri>sip:a@b</i:recipient-uri>");
        // A named sender's notification is left as written.
        let named = Addr::new("sip:dave@example.com");
        let me = Sender {
            shown: &named,
            real: "sip:dave@example.com",
        };
        let mut c = msg("sip:dave@example.com", "message/imdn+xml", IMDN);
        vouch(&mut c, me, Path::Msrp).unwrap();
        assert_eq!(&c.body[..], IMDN.as_bytes());
        // Unreadable: refused.
        let mut c = msg("sip:dave@example.com", "message/imdn+xml", "");
        c.body = Bytes::from_static(&[0xff, 0xfe]);
        assert_eq!(vouch(&mut c, anon, Path::Msrp), Err(VouchError::Unreadable));
    }
}
