//! The focus's own addresses, per IP family. A focus may listen on IPv4 and IPv6 at once; a
//! peer must be told addresses of the family it reached us on (an IPv4-only UA cannot use a
//! Contact or an SDP `c=` naming `::1`), so everything the focus writes about itself is chosen
//! per peer through [`PerFamily::for_ip`].

use crate::sip::Host;
use std::net::{IpAddr, SocketAddr};

/// One value per IP family the focus serves (at least one: the primary, listed first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerFamily<T> {
    primary: T,
    primary_v6: bool,
    /// The other family's, when the focus serves both.
    other: Option<T>,
}

impl<T> PerFamily<T> {
    /// The value for the family of `ip` only.
    pub fn single(ip: IpAddr, value: T) -> PerFamily<T> {
        PerFamily {
            primary: value,
            primary_v6: is_v6(ip),
            other: None,
        }
    }

    /// Sets the value of `ip`'s family, unless it has one already (the first listed wins).
    pub fn insert(&mut self, ip: IpAddr, value: T) {
        if is_v6(ip) != self.primary_v6 && self.other.is_none() {
            self.other = Some(value);
        }
    }

    /// The value for a peer at `ip`: its own family's, else the primary one.
    pub fn for_ip(&self, ip: IpAddr) -> &T {
        if is_v6(ip) == self.primary_v6 {
            return &self.primary;
        }
        self.other.as_ref().unwrap_or(&self.primary)
    }

    /// The value of the family listed first.
    pub fn primary(&self) -> &T {
        &self.primary
    }

    /// Every value, the primary family's first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.primary).chain(self.other.iter())
    }

    /// The same families with `f` applied to each value.
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> PerFamily<U> {
        PerFamily {
            primary: f(&self.primary),
            primary_v6: self.primary_v6,
            other: self.other.as_ref().map(f),
        }
    }
}

/// IPv4-mapped IPv6 peers (a dual-stack `[::]` socket) count as IPv4.
fn is_v6(ip: IpAddr) -> bool {
    ip.to_canonical().is_ipv6()
}

/// What the focus writes about itself in one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Face {
    /// The host of Via sent-by, Contact and MSRP paths (`sip.advertise`, else the listen
    /// address); written through [`Host::with_port`], so IPv6 comes bracketed.
    pub host: Host,
    /// The SDP `o=`/`c=` address (`IN IP4`/`IN IP6`, never bracketed).
    pub sdp: IpAddr,
    pub udp: u16,
    pub tcp: u16,
    /// SIP over TLS, when it runs.
    pub tls: Option<u16>,
}

impl Face {
    /// The face of a listen address: `advertise` (a name or an IP of this family) when given,
    /// else the listen address itself.
    pub fn new(listen: SocketAddr, advertise: Option<&Host>, tcp: u16, tls: Option<u16>) -> Face {
        let ip = listen.ip();
        let host = advertise.cloned().unwrap_or(Host::Ip(ip));
        let sdp = host.ip().unwrap_or(ip);
        Face {
            host,
            sdp,
            udp: listen.port(),
            tcp,
            tls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_its_own_family_or_the_primary() {
        let v4: IpAddr = "127.0.0.1".parse().unwrap();
        let v6: IpAddr = "::1".parse().unwrap();
        let mut p = PerFamily::single(v6, "six");
        assert_eq!(*p.for_ip(v4), "six");
        p.insert(v4, "four");
        p.insert(v4, "later");
        assert_eq!(*p.for_ip(v4), "four");
        assert_eq!(*p.for_ip(v6), "six");
        assert_eq!(*p.primary(), "six");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(*p.for_ip(mapped), "four");
        assert_eq!(p.iter().copied().collect::<Vec<_>>(), ["six", "four"]);
    }

    #[test]
    fn an_ipv6_face_writes_brackets_in_uris_and_none_in_sdp() {
        let f = Face::new("[::1]:5060".parse().unwrap(), None, 5060, None);
        assert_eq!(f.host.with_port(f.udp).to_string(), "[::1]:5060");
        assert_eq!(f.sdp.to_string(), "::1");
    }
}
