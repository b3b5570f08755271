//! The last good copy of each XDMS document and the groups they make. Sans-IO: the driver
//! feeds it answers and takes the groups.

use super::rls::{self, RlsError, RlsServices};
use crate::body::resource_lists::ListLimits;
use crate::config::{Authority, Config, GroupConfig, JoinRule, MediaKind, MemberConfig, Role};
use crate::sip::{Scheme, Uri};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// One document as last accepted.
#[derive(Debug, Clone)]
struct Doc {
    etag: Option<String>,
    /// The body as served, kept for the cache file.
    body: String,
    parsed: RlsServices,
}

/// What an answer did to the documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The groups changed: rebuild the catalog.
    Changed,
    /// A new ETag or the same content: nothing to do.
    Same,
}

/// Every document's last good copy, by selector.
#[derive(Debug, Clone, Default)]
pub struct Documents {
    docs: BTreeMap<String, Doc>,
}

/// The cache file: selector → ETag and body.
#[derive(Debug, Serialize, Deserialize)]
struct CacheEntry {
    etag: Option<String>,
    body: String,
}

impl Documents {
    /// How many documents are held.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The ETag to send in `If-None-Match` for `selector`.
    pub fn etag(&self, selector: &str) -> Option<&str> {
        self.docs.get(selector).and_then(|d| d.etag.as_deref())
    }

    /// A `200` for `selector`: the new copy replaces the old whole, or is refused (the old
    /// one stays, ETag included, so the bad copy is fetched and refused again until fixed).
    pub fn apply(
        &mut self,
        selector: &str,
        etag: Option<String>,
        body: &[u8],
        limits: &ListLimits,
    ) -> Result<Applied, RlsError> {
        let parsed = rls::parse(body, limits)?;
        for note in &parsed.ignored {
            tracing::info!(document = selector, note = %note, "XDMS document: ignored");
        }
        // `parse` checked UTF-8.
        let body = String::from_utf8_lossy(body).into_owned();
        let same = self
            .docs
            .get(selector)
            .is_some_and(|d| d.parsed.services == parsed.services);
        self.docs
            .insert(selector.to_owned(), Doc { etag, body, parsed });
        Ok(if same {
            Applied::Same
        } else {
            Applied::Changed
        })
    }

    /// A `404` for `selector`: the document was deleted, its groups go.
    pub fn remove(&mut self, selector: &str) -> Applied {
        match self.docs.remove(selector) {
            Some(d) if !d.parsed.services.is_empty() => Applied::Changed,
            _ => Applied::Same,
        }
    }

    /// The cache file's text.
    pub fn to_cache(&self) -> String {
        let map: BTreeMap<&str, CacheEntry> = self
            .docs
            .iter()
            .map(|(k, d)| {
                (
                    k.as_str(),
                    CacheEntry {
                        etag: d.etag.clone(),
                        body: d.body.clone(),
                    },
                )
            })
            .collect();
        serde_json::to_string_pretty(&map).unwrap_or_default()
    }

    /// The documents of a cache file, for the `selectors` configured; an entry that does not
    /// parse is left out (and logged). The ETags are dropped: the first fetch gets each
    /// document whole, so a cache from another XDMS cannot mask a change.
    pub fn from_cache(text: &str, selectors: &[String], limits: &ListLimits) -> Documents {
        let mut out = Documents::default();
        let map: BTreeMap<String, CacheEntry> = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "XDMS cache file does not parse; starting without it");
                return out;
            }
        };
        for (selector, entry) in map {
            if !selectors.contains(&selector) {
                continue;
            }
            if let Err(e) = out.apply(&selector, None, entry.body.as_bytes(), limits) {
                tracing::warn!(document = %selector, error = %e, "XDMS cache entry refused");
            }
        }
        out
    }

    /// The groups of every document, in selector then document order: at most
    /// `xdms.max_groups`, URIs in the focus domain, the first of two services with one URI.
    pub fn groups(&self, config: &Config) -> Vec<GroupConfig> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (selector, doc) in &self.docs {
            for s in &doc.parsed.services {
                match group(s, config) {
                    Ok(g) => {
                        if !seen.insert(g.uri.clone()) {
                            tracing::warn!(document = %selector, group = %s.uri, "XDMS group defined twice; the first wins");
                        } else if out.len() >= config.xdms.max_groups {
                            tracing::warn!(document = %selector, group = %s.uri, limit = config.xdms.max_groups, "XDMS group over xdms.max_groups; left out");
                        } else {
                            out.push(g);
                        }
                    }
                    Err(why) => {
                        tracing::warn!(document = %selector, group = %s.uri, why, "XDMS group left out")
                    }
                }
            }
        }
        out
    }
}

/// A service as a pre-defined group: the members of its list; what an OMA group says of its
/// size, media and join policy, else `[xdms] join` and the defaults of a `[[groups]]` entry
/// that names only its URI (policy defaults from `[policy]`).
fn group(s: &rls::Service, config: &Config) -> Result<GroupConfig, &'static str> {
    let uri = Uri::parse(&s.uri).map_err(|_| "the service URI does not parse")?;
    if !(uri.scheme == Scheme::Sip || uri.scheme == Scheme::Sips) {
        return Err("the service URI is not sip: or sips:");
    }
    let domain = crate::sip::Host::parse(&config.focus.domain).map_err(|_| "bad focus domain")?;
    if !uri.host.as_ref().is_some_and(|h| h.matches(&domain)) {
        return Err("the service URI is not in the focus domain");
    }
    if uri.user.is_none() {
        return Err("the service URI has no user part");
    }
    let mut members = Vec::new();
    let mut seen = HashSet::new();
    for m in &s.members {
        match Uri::parse(m) {
            Ok(u) if u.is_sip() || u.scheme == Scheme::Tel => {
                if seen.insert(u.aor()) {
                    members.push(MemberConfig {
                        uri: m.clone(),
                        role: Role::Participant,
                    });
                }
            }
            _ => {
                tracing::warn!(group = %s.uri, member = %m, "XDMS member is not a sip:, sips: or tel: URI; left out")
            }
        }
    }
    let join = match s.join_open {
        Some(true) => JoinRule::Open,
        Some(false) => JoinRule::MembersOnly,
        None => config.xdms.join,
    };
    let allowed_media = s.media.as_ref().map(|tokens| {
        let mut kinds = Vec::new();
        for t in tokens {
            let kind = match t.as_str() {
                "message" | "msrp" | "chat" | "im" => Some(MediaKind::Msrp),
                "audio" | "talk" | "poc" => Some(MediaKind::Audio),
                _ => None,
            };
            match kind {
                Some(k) if !kinds.contains(&k) => kinds.push(k),
                Some(_) => {}
                None => {
                    tracing::info!(group = %s.uri, media = %t, "XDMS group medium the focus does not serve; ignored")
                }
            }
        }
        kinds
    });
    Ok(GroupConfig {
        uri: s.uri.clone(),
        display_name: s.display_name.clone(),
        subject: String::new(),
        join,
        max_participants: s.max_participants.unwrap_or(1000),
        allow_signalling_only: true,
        allow_private_messages: true,
        allowed_media,
        codecs: None,
        allow_anonymous: true,
        add: Authority::Moderators,
        remove: Authority::Moderators,
        locked: false,
        members,
    })
}
