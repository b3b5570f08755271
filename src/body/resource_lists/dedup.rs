//! One entry per recipient. A URI-list service must not send the same request twice to one
//! destination, so duplicates are removed before fan-out (RFC 5363 framework, RFC 5365,
//! RFC 5366).
//!
//! # Which URIs are the same recipient
//!
//! SIP and SIPS URIs compare as RFC 3261 §19.1.4 does for the parts that name a destination:
//! scheme, user (after `%HH` unescaping, case-sensitive), host (case-insensitive; IP literals
//! by value) and port (absent differs from `5060`). The `method` parameter counts too: in a
//! REFER (RFC 5368) `sip:bob@x;method=BYE` asks for a different request than `sip:bob@x`.
//! Other parameters, headers and the password do not. `tel:` URIs compare by number and
//! `ext` with visual separators removed, and by `phone-context` (RFC 3966 §4). Anything
//! else, including SIP URIs that do not parse, compares as written with the scheme
//! lower-cased.
//!
//! # What a merged entry keeps
//!
//! The first occurrence keeps its position, URI text and display name (a later display name
//! fills a missing one). When duplicates disagree on privacy the more private wins: the
//! highest copy-control (`bcc` over `cc` over `to`), and `anonymize` if any asks for it. A
//! sender who marks a recipient `bcc` once did not mean it to be exposed by a second mention.

use super::model::ResourceList;
use crate::sip::{Host, Scheme, Uri};
use std::collections::HashMap;

impl ResourceList {
    /// Removes entries that name a recipient already listed (see the module docs), merging
    /// their privacy attributes into the first; returns how many were removed.
    pub fn dedup(&mut self) -> usize {
        let before = self.entries.len();
        let mut first: HashMap<String, usize> = HashMap::with_capacity(before);
        let mut kept: Vec<super::Entry> = Vec::with_capacity(before);
        for entry in self.entries.drain(..) {
            let key = recipient_key(&entry.uri);
            match first.get(&key) {
                Some(&i) => {
                    let k = &mut kept[i];
                    k.copy_control = k.copy_control.max(entry.copy_control);
                    k.anonymize |= entry.anonymize;
                    if k.display_name.is_none() {
                        k.display_name = entry.display_name;
                    }
                }
                None => {
                    first.insert(key, kept.len());
                    kept.push(entry);
                }
            }
        }
        self.entries = kept;
        before - self.entries.len()
    }
}

/// The key two URIs share exactly when they name the same recipient (see the module docs).
/// Useful beyond lists, e.g. to tell whether an invitee is already in the roster.
pub fn recipient_key(uri: &str) -> String {
    let uri = uri.trim();
    match Uri::parse(uri) {
        Ok(u) if u.is_sip() => {
            let mut key = String::with_capacity(uri.len() + 8);
            key.push_str(if u.scheme == Scheme::Sips {
                "sips:"
            } else {
                "sip:"
            });
            if let Some(user) = u.user_unescaped() {
                key.push_str(&user);
                key.push('@');
            }
            match &u.host {
                Some(Host::Domain(d)) => key.push_str(&d.to_ascii_lowercase()),
                Some(ip) => key.push_str(&ip.to_string()),
                None => {}
            }
            if let Some(port) = u.port {
                key.push(':');
                key.push_str(&port.to_string());
            }
            if let Some(Some(method)) = u.param("method") {
                key.push_str(";method=");
                key.push_str(&method.to_ascii_uppercase());
            }
            key
        }
        Ok(u) if u.scheme == Scheme::Tel => {
            let mut key = String::from("tel:");
            push_digits(&mut key, u.user.as_deref().unwrap_or(""));
            if let Some(Some(ext)) = u.param("ext") {
                key.push_str(";ext=");
                push_digits(&mut key, ext);
            }
            if let Some(Some(ctx)) = u.param("phone-context") {
                key.push_str(";phone-context=");
                key.push_str(&ctx.to_ascii_lowercase());
            }
            key
        }
        // Raw keys carry a marker so none can equal a parsed key by accident.
        _ => match uri.split_once(':') {
            Some((scheme, rest)) => format!("~{}:{rest}", scheme.to_ascii_lowercase()),
            None => format!("~{uri}"),
        },
    }
}

/// Appends a telephone number without visual separators, hex digits lower-cased.
fn push_digits(out: &mut String, number: &str) {
    out.extend(
        number
            .chars()
            .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
            .map(|c| c.to_ascii_lowercase()),
    );
}
