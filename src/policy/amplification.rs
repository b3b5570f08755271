//! What keeps one request from making the focus do unbounded or self-directed work: the
//! bounds on the XML bodies it parses (RFC 4826 URI lists), and the addresses that name the
//! focus itself, so that no REFER or URI list makes it send requests to itself (RFC 5393's
//! concern about amplification, applied to a URI-list service).
//!
//! The fan-out of one request is bounded elsewhere: `policy.max_list_size` targets per list
//! after duplicates are merged, one request per target.

use super::Refusal;
use crate::body::resource_lists::ListLimits;
use crate::sip::{Host, Scheme, Uri};
use std::net::IpAddr;

/// The addresses a URI may name the focus by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnUris {
    /// The focus domain: every URI at it is the focus's (conferences, factory, list service).
    pub domain: Host,
    /// Other host names and addresses the focus answers at (the advertised host, the listen
    /// address), each only together with one of `ports`.
    pub hosts: Vec<Host>,
    /// The SIP ports the focus listens on (UDP, TCP).
    pub ports: Vec<u16>,
}

impl OwnUris {
    /// True when a request to `uri` would reach this focus: a SIP URI at the focus domain, or
    /// at one of its addresses and SIP ports (5060 when the URI names none, 5061 for `sips`).
    pub fn names_focus(&self, uri: &Uri) -> bool {
        if !matches!(uri.scheme, Scheme::Sip | Scheme::Sips) {
            return false;
        }
        let Some(host) = &uri.host else {
            return false;
        };
        if host.matches(&self.domain) {
            return true;
        }
        let port = uri.port.unwrap_or(match uri.scheme {
            Scheme::Sips => 5061,
            _ => 5060,
        });
        self.ports.contains(&port) && self.hosts.iter().any(|h| names_host(h, host))
    }
}

/// Host equality where an unspecified listen address (`0.0.0.0`, `::`) stands for the
/// loopback addresses, the ones every host has.
fn names_host(own: &Host, other: &Host) -> bool {
    match (own.ip(), other.ip()) {
        (Some(a), Some(b)) if a.is_unspecified() => b.is_loopback() || b == a,
        _ => own.matches(other),
    }
}

/// The amplification bounds one session (or the exploder) applies.
#[derive(Debug, Clone)]
pub struct Amplification {
    /// Parser limits for a URI list in a request body.
    pub lists: ListLimits,
    pub own: OwnUris,
}

impl Amplification {
    /// True when a request to `uri` would come back to this focus.
    pub fn names_focus(&self, uri: &Uri) -> bool {
        self.own.names_focus(uri)
    }

    /// The refusal of a request that would make the focus call or message itself.
    pub fn self_target() -> Refusal {
        Refusal::new(
            crate::sip::Status::LOOP_DETECTED,
            "loop",
            "A request cannot make the focus send to itself",
        )
    }
}

impl Default for Amplification {
    /// The default XML bounds, and `focus.example.com` on 5060 as the focus.
    fn default() -> Self {
        Amplification {
            lists: crate::config::XmlConfig::default().list_limits(),
            own: OwnUris {
                domain: Host::Domain("focus.example.com".into()),
                hosts: vec![Host::Ip(IpAddr::from([127, 0, 0, 1]))],
                ports: vec![5060],
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(listen: &str) -> OwnUris {
        OwnUris {
            domain: Host::Domain("focus.example.com".into()),
            hosts: vec![Host::parse(listen).unwrap()],
            ports: vec![5070],
        }
    }

    fn names(own: &OwnUris, uri: &str) -> bool {
        own.names_focus(&Uri::parse(uri).unwrap())
    }

    #[test]
    fn the_focus_domain_and_its_own_addresses() {
        let o = own("192.0.2.1");
        for uri in [
            "sip:team@focus.example.com",
            "sip:conf-factory@FOCUS.example.com:5999",
            "sips:list-service@focus.example.com",
            "sip:team@192.0.2.1:5070",
            "sip:192.0.2.1:5070;transport=tcp",
        ] {
            assert!(names(&o, uri), "{uri}");
        }
        for uri in [
            "sip:bob@example.com",
            "sip:team@192.0.2.1",
            "sip:team@192.0.2.1:5071",
            "sip:team@192.0.2.2:5070",
            "tel:+15551234",
            "mailto:team@focus.example.com",
        ] {
            assert!(!names(&o, uri), "{uri}");
        }
    }

    #[test]
    fn an_unspecified_listen_address_stands_for_loopback() {
        let o = own("0.0.0.0");
        assert!(names(&o, "sip:team@127.0.0.1:5070"));
        assert!(!names(&o, "sip:bob@192.0.2.9:5070"));
    }
}
