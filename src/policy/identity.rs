//! Who sent a request, how that is known, and whether it counts for membership, roles and
//! rights. Every place that decides on identity asks [`Trust::identify`] and
//! [`Trust::counts`]: one decision, so no path can believe a claim another path refuses.

use crate::config::{IdentityMode, ProviderPolicy};
use crate::sip::{HeaderName, NameAddr, Request};
use std::net::IpAddr;

/// The domain of anonymous aliases (RFC 3323 §4.1.1.3).
pub const ANONYMOUS_DOMAIN: &str = "anonymous.invalid";

/// How the focus knows an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// P-Asserted-Identity from a trusted host (RFC 3325 §5).
    Asserted,
    /// Digest authentication by the focus itself.
    Authenticated,
    /// The From of a request from a trusted host without P-Asserted-Identity: the host
    /// vouches for it.
    TrustedFrom,
    /// The focus called this address itself (REFER, URI list, restart): whoever answers is
    /// reached through the network's routing for it, not by its own word.
    Called,
    /// The From of an untrusted source: nobody vouches for it.
    Claimed,
}

impl Proof {
    /// The bounded label for logs and the admin roster.
    pub fn as_str(self) -> &'static str {
        match self {
            Proof::Asserted => "asserted",
            Proof::Authenticated => "authenticated",
            Proof::TrustedFrom => "trusted-from",
            Proof::Called => "called",
            Proof::Claimed => "claimed",
        }
    }

    /// The proof a label names ([`Proof::as_str`]); anything else proves nothing.
    pub fn from_label(label: &str) -> Proof {
        match label {
            "asserted" => Proof::Asserted,
            "authenticated" => Proof::Authenticated,
            "trusted-from" => Proof::TrustedFrom,
            "called" => Proof::Called,
            _ => Proof::Claimed,
        }
    }
}

/// A participant's (or requester's) identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Address of record (`sip:user@host`): what it is shown as, and, when it counts, the
    /// key for membership and roles.
    pub aor: String,
    /// Display name chosen by the participant (From or asserted identity).
    pub display: Option<String>,
    /// How the focus knows it.
    pub proof: Proof,
    /// Whether it counts for membership, roles and rights ([`Trust::counts`]).
    pub counts: bool,
    /// `Privacy: id`, `user` or `header`: hidden from the other participants.
    pub anonymous: bool,
}

impl Identity {
    /// A participant the focus calls: its address counts (the authority to call it was
    /// decided on the requester's identity).
    pub fn called(aor: String, display: Option<String>) -> Identity {
        Identity {
            aor,
            display,
            proof: Proof::Called,
            counts: true,
            anonymous: false,
        }
    }

    /// The sender as the recipients of a message the focus relays see it (the From the focus
    /// writes): the anonymous URI when it asked for privacy (RFC 3323); an asserted or
    /// authenticated identity in place of what the From says; otherwise the From as it came.
    /// P-Asserted-Identity and P-Preferred-Identity themselves are never copied (RFC 3325 §5).
    pub fn as_sender(&self, from: &NameAddr) -> String {
        if self.anonymous {
            return format!("\"Anonymous\" <sip:anonymous@{ANONYMOUS_DOMAIN}>");
        }
        match (self.proof, &self.display) {
            (Proof::Asserted | Proof::Authenticated, Some(d)) => {
                format!("\"{}\" <{}>", d.replace(['"', '\\'], "'"), self.aor)
            }
            (Proof::Asserted | Proof::Authenticated, None) => format!("<{}>", self.aor),
            _ => {
                let mut s = String::new();
                from.write_without_tag(&mut s);
                s
            }
        }
    }

    /// The address of record membership, roles and rights are decided on; `None` for an
    /// outsider, whose claim counts for nothing.
    pub fn entitled(&self) -> Option<&str> {
        self.counts.then_some(self.aor.as_str())
    }

    /// Whom charging bills for this sender's request from `source` (see [`Charged`]).
    pub fn charged(&self, source: IpAddr) -> Charged {
        Charged::new(&self.aor, self.proof, self.counts, source)
    }
}

/// Whom charging bills (the online credit check's subject, the offline records' `identity`
/// and `sender`): the identity that counts, never an outsider's claim. An outsider (an identity
/// that does not count) is billed to the account of its source address
/// ([`source_account`]), so claiming alice's address never spends alice's credit nor shows
/// as alice in the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charged {
    pub subject: String,
    /// Whether the identity was proven (anything but [`Proof::Claimed`]); in the lab mode
    /// (`policy.identity = "from"`) a claim counts and is billed, but is still unverified.
    pub verified: bool,
}

impl Charged {
    /// `aor` known by `proof` (`counts`: [`Trust::counts`] of it), sent from `source`.
    pub fn new(aor: &str, proof: Proof, counts: bool, source: IpAddr) -> Charged {
        Charged {
            subject: if counts {
                aor.to_string()
            } else {
                source_account(source)
            },
            verified: proof != Proof::Claimed,
        }
    }
}

/// The charging account of an unproven sender: `source:<address>` (IPv6 in brackets; an
/// IPv4-mapped address as IPv4). No address of record looks like it, so nobody can claim it.
pub fn source_account(source: IpAddr) -> String {
    match source.to_canonical() {
        IpAddr::V4(v4) => format!("source:{v4}"),
        IpAddr::V6(v6) => format!("source:[{v6}]"),
    }
}

/// Whom the focus believes: the identity mode and the trusted hosts (`[policy]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    pub mode: IdentityMode,
    pub hosts: Vec<IpAddr>,
}

impl Trust {
    /// The provider policy's trust (invalid addresses are refused by validation).
    pub fn from_policy(p: &ProviderPolicy) -> Trust {
        Trust {
            mode: p.identity,
            hosts: p
                .trusted_hosts
                .iter()
                .filter_map(|h| h.parse().ok())
                .collect(),
        }
    }

    /// Says loudly in the log when any From counts (`policy.identity = "from"`): at start and
    /// after a reload, so an operator never runs the lab mode unknowingly.
    pub fn warn_if_lab_mode(&self) {
        if self.mode == IdentityMode::From {
            tracing::warn!(
                "policy.identity = \"from\": any From is believed from anywhere; anyone can \
                 claim to be a group's host. A lab mode: use \"asserted\" on any network \
                 others can reach"
            );
        }
    }

    /// Whether `source` is a trusted host (RFC 3325 spec(T)).
    pub fn trusts(&self, source: IpAddr) -> bool {
        self.hosts.contains(&source)
            || matches!(source, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| self.hosts.contains(&IpAddr::V4(v4))))
    }

    /// [`Charged`] for a participant known as `aor` by `proof`, reached at `source`.
    pub fn charged(&self, aor: &str, proof: Proof, source: IpAddr) -> Charged {
        Charged::new(aor, proof, self.counts(proof), source)
    }

    /// THE decision: whether an identity known this way counts for membership, roles and
    /// rights. In `asserted` mode a bare claim is an outsider's; `from` believes anyone.
    pub fn counts(&self, proof: Proof) -> bool {
        match self.mode {
            IdentityMode::From => true,
            IdentityMode::Asserted => proof != Proof::Claimed,
        }
    }

    /// Reads the identity of a request's sender from `source`. A P-Asserted-Identity is
    /// believed only from a trusted host (RFC 3325 §5; P-Preferred-Identity never: it is for
    /// the trusted host to assert); `authenticated` is an address of record the focus proved
    /// itself. Otherwise the From is the identity, vouched for when the source is trusted.
    pub fn identify(&self, req: &Request, source: IpAddr, authenticated: Option<&str>) -> Identity {
        let anonymous = req
            .headers
            .values(HeaderName::Privacy)
            .flat_map(|v| v.split(';'))
            .map(str::trim)
            .any(|p| {
                p.eq_ignore_ascii_case("id")
                    || p.eq_ignore_ascii_case("user")
                    || p.eq_ignore_ascii_case("header")
            });
        let trusted = self.trusts(source);
        let asserted = trusted
            .then(|| {
                req.headers
                    .values(HeaderName::PAssertedIdentity)
                    .filter_map(|v| NameAddr::parse(v).ok())
                    .find(|a| a.uri.is_sip())
            })
            .flatten();
        let from_display = || req.from.display.as_deref().map(str::to_string);
        let (aor, display, proof) = match (asserted, authenticated) {
            (Some(a), _) => (
                a.uri.aor(),
                a.display.map(|d| d.to_string()),
                Proof::Asserted,
            ),
            (None, Some(proven)) => {
                // The From's display name goes with the proven identity only when the From
                // names it.
                let display = (req.from.uri.aor() == proven).then(from_display).flatten();
                (proven.to_string(), display, Proof::Authenticated)
            }
            (None, None) => (
                req.from.uri.aor(),
                from_display(),
                if trusted {
                    Proof::TrustedFrom
                } else {
                    Proof::Claimed
                },
            ),
        };
        Identity {
            aor,
            display,
            proof,
            counts: self.counts(proof),
            anonymous,
        }
    }
}
