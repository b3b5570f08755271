//! `[rtp]`: the RTP plane of push-to-talk groups, and the checks of `[rtp]`, `[floor]` and the groups' codec lists.

use serde::Deserialize;

/// How a leg learns where its participant's packets come from (`[rtp] latching`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Latching {
    /// Only from the address and port the SDP announced (RFC 4961 symmetric RTP: clients
    /// send from the port they receive on).
    #[default]
    Signalled,
    /// Once, at the start of the leg, to the first source from the signalled *address*, on
    /// any port (a NAT that keeps the address but maps the port); never to another source
    /// afterwards.
    SymmetricOnce,
}

/// `[rtp]`: the RTP plane of talk-burst groups (served when `policy.allowed_media` has
/// `audio`). The section's checks live in `config/talk.rs`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RtpConfig {
    /// UDP ports for participants' legs: an even RTP port and the next odd one for RTCP.
    pub port_min: u16,
    pub port_max: u16,
    /// A participant with no RTP and no RTCP this long loses the floor, in seconds.
    pub silence_timeout_s: u64,
    /// Packets per second one participant may send; more are dropped.
    pub max_packet_rate: u32,
    /// Codecs forwarded, in preference order (`<encoding>/<rate>[/<channels>]`).
    pub codecs: Vec<String>,
    /// RTP legs (port pairs) held at once by participants that joined from one untrusted
    /// address, over all sessions: one address cannot drain the port pool.
    pub max_legs_per_source: u32,
    /// Which source a participant's leg accepts: `signalled` (the SDP's address and port)
    /// or `symmetric_once` (one latch to the first source from the SDP's address).
    pub latching: Latching,
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            port_min: 20000,
            port_max: 29999,
            silence_timeout_s: 10,
            max_packet_rate: 200,
            codecs: vec!["PCMU/8000".into(), "PCMA/8000".into()],
            max_legs_per_source: 32,
            latching: Latching::Signalled,
        }
    }
}

use super::{Codec, MAX_CODECS};
use super::{Config, ConfigIssue};

pub(super) fn validate(config: &Config) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let mut bad = |key: String, message: String| issues.push(ConfigIssue { key, message });
    let r = &config.rtp;
    if r.port_min < 1024 {
        bad("rtp.port_min".into(), "must be at least 1024".into());
    }
    if r.port_max <= r.port_min {
        bad(
            "rtp.port_max".into(),
            "must be above port_min (a pair needs two ports)".into(),
        );
    }
    if r.silence_timeout_s == 0 {
        bad("rtp.silence_timeout_s".into(), "must be positive".into());
    }
    if r.max_packet_rate == 0 {
        bad("rtp.max_packet_rate".into(), "must be positive".into());
    }
    if r.max_legs_per_source == 0 {
        bad("rtp.max_legs_per_source".into(), "must be positive".into());
    }
    check_codecs("rtp.codecs", &r.codecs, &mut bad);
    for (i, g) in config.groups.iter().enumerate() {
        if let Some(codecs) = &g.codecs {
            check_codecs(&format!("groups[{i}].codecs"), codecs, &mut bad);
        }
    }
    let f = &config.floor;
    if !f.listen.is_empty()
        && f.listen
            .split(',')
            .any(|a| a.trim().parse::<std::net::SocketAddr>().is_err())
    {
        bad(
            "floor.listen".into(),
            "must be IP:PORT (several separated by commas) or empty".into(),
        );
    }
    for (key, value) in [
        ("floor.max_queue", f.max_queue),
        ("floor.max_requests_per_user", f.max_requests_per_user),
        ("floor.max_connections", f.max_connections),
        ("floor.write_queue", f.write_queue),
    ] {
        if value == 0 {
            bad(key.into(), "must be positive".into());
        }
    }
    if f.bind_timeout_s == 0 {
        bad("floor.bind_timeout_s".into(), "must be positive".into());
    }
    if !(256..=16 * 1024 * 1024).contains(&f.max_message_size) {
        bad(
            "floor.max_message_size".into(),
            "must be between 256 and 16777216".into(),
        );
    }
    issues
}

fn check_codecs(key: &str, codecs: &[String], bad: &mut impl FnMut(String, String)) {
    if codecs.is_empty() || codecs.len() > MAX_CODECS {
        bad(
            key.into(),
            format!("must list between 1 and {MAX_CODECS} codecs"),
        );
    }
    for (i, c) in codecs.iter().enumerate() {
        if let Err(e) = Codec::parse(c) {
            bad(format!("{key}[{i}]"), e.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigError};

    #[test]
    fn talk_sections_are_checked_with_their_keys() {
        let text = r#"
            [rtp]
            port_min = 100
            port_max = 50
            silence_timeout_s = 0
            codecs = ["PCMU", "opus/48000/2"]
            [floor]
            listen = "nowhere"
            max_queue = 0
            max_message_size = 10
            [[groups]]
            uri = "sip:talk@focus.example.com"
            codecs = []
        "#;
        let Err(ConfigError::Invalid(issues)) = Config::from_toml(text) else {
            panic!("accepted")
        };
        let keys: Vec<_> = issues.iter().map(|i| i.key.as_str()).collect();
        for k in [
            "rtp.port_min",
            "rtp.port_max",
            "rtp.silence_timeout_s",
            "rtp.codecs[0]",
            "groups[0].codecs",
            "floor.listen",
            "floor.max_queue",
            "floor.max_message_size",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        let good = Config::from_toml(
            "[policy]\nallowed_media = [\"msrp\", \"audio\"]\n[rtp]\nlatching = \"symmetric_once\"\n[floor]\nlisten = \"127.0.0.1:0\"\nmoderated = true\n",
        )
        .unwrap();
        assert!(good.floor.moderated);
        assert_eq!(good.rtp.latching, crate::config::Latching::SymmetricOnce);
        assert!(
            Config::from_toml("[rtp]\nlatching = \"always\"\n").is_err(),
            "an unknown latching mode is refused"
        );
        assert_eq!(good.rtp.codecs, ["PCMU/8000", "PCMA/8000"]);
    }
}
