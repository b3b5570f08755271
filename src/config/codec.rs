//! The codec a setting names (`rtp.codecs`, a group's `codecs`), written as in `a=rtpmap`
//! (RFC 8866 §6.6): `<encoding>/<clock rate>[/<channels>]`. The type lives with the settings,
//! so validating the file needs nothing of the RTP plane that matches offers against it.

use std::fmt;
use thiserror::Error;

/// Most codecs a group may list (a leg's codec is kept in a few bits).
pub const MAX_CODECS: usize = 16;

/// A codec specification that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("codec {spec:?} must be <encoding>/<clock rate>[/<channels>], e.g. PCMU/8000")]
pub struct CodecError {
    pub spec: String,
}

/// An audio codec, as `a=rtpmap` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Encoding name as configured (compared without regard to case).
    pub name: String,
    pub clock_rate: u32,
    pub channels: u8,
}

impl Codec {
    /// Parses `PCMU/8000` or `opus/48000/2`.
    pub fn parse(spec: &str) -> Result<Codec, CodecError> {
        let bad = || CodecError {
            spec: spec.to_string(),
        };
        let mut parts = spec.trim().split('/');
        let name = parts.next().filter(|n| is_token(n)).ok_or_else(bad)?;
        let clock_rate: u32 = parts
            .next()
            .and_then(|r| r.parse().ok())
            .filter(|&r| r > 0)
            .ok_or_else(bad)?;
        let channels: u8 = match parts.next() {
            None => 1,
            Some(c) => c.parse().ok().filter(|&c| c > 0).ok_or_else(bad)?,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Codec {
            name: name.to_string(),
            clock_rate,
            channels,
        })
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.name, self.clock_rate)?;
        if self.channels != 1 {
            write!(f, "/{}", self.channels)?;
        }
        Ok(())
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'))
}
