//! BFCP streams in SDP (RFC 8856): which offered `m=application ... TCP/BFCP` lines the
//! focus, a floor control server over TCP, can answer, and the answer line.
//!
//! The focus only listens (it never connects out), so it answers `a=setup:passive` to an
//! offer that is `active`, `actpass` or silent on setup (RFC 4145), and always
//! `a=connection:new`. It plays the server (`a=floorctrl:s-only`), so the offerer must be
//! able to be a client: `c-only` or `c-s`, or no `a=floorctrl` (a client, RFC 8856 §4).

use crate::sdp::{Attribute, MediaDescription};

/// The only BFCP transport the focus serves (no TLS, no UDP).
pub const PROTO: &str = "TCP/BFCP";

/// Whether the focus can answer this offered BFCP line as its floor control server.
pub fn can_serve(offered: &MediaDescription) -> bool {
    if !offered.media.eq_ignore_ascii_case("application")
        || !offered.proto.eq_ignore_ascii_case(PROTO)
    {
        return false;
    }
    let mut roles = offered.floorctrl().peekable();
    let client = roles.peek().is_none()
        || offered
            .floorctrl()
            .any(|r| r.eq_ignore_ascii_case("c-only") || r.eq_ignore_ascii_case("c-s"));
    let connects = match offered.setup() {
        None => true,
        Some(s) => s.eq_ignore_ascii_case("active") || s.eq_ignore_ascii_case("actpass"),
    };
    // RFC 8856 §7: without a=bfcpver, TCP means version 1.
    let version = !offered.has_attr("bfcpver") || offered.attr_words("bfcpver").any(|v| v == "1");
    client && connects && version
}

/// What the focus writes into its BFCP answer line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLine<'a> {
    /// The BFCP listener's port.
    pub port: u16,
    pub conference_id: u32,
    pub user_id: u16,
    pub floor_id: u16,
    /// `a=label` of the audio stream the floor controls (`mstrm:`).
    pub media_label: &'a str,
}

/// The answer to an offered BFCP line [`can_serve`] accepted.
pub fn answer_line(offered: &MediaDescription, line: &ServerLine<'_>) -> MediaDescription {
    let mut m = MediaDescription::new("application", line.port, offered.proto.as_str(), ["*"])
        .with_attribute(Attribute::new("floorctrl", "s-only"))
        .with_attribute(Attribute::new("confid", line.conference_id.to_string()))
        .with_attribute(Attribute::new("userid", line.user_id.to_string()))
        .with_attribute(Attribute::new(
            "floorid",
            format!("{} mstrm:{}", line.floor_id, line.media_label),
        ))
        .with_attribute(Attribute::new("setup", "passive"))
        .with_attribute(Attribute::new("connection", "new"));
    if offered.has_attr("bfcpver") {
        m = m.with_attribute(Attribute::new("bfcpver", "1"));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> MediaDescription {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n{text}"
        );
        crate::sdp::parse(sdp.as_bytes()).unwrap().media.remove(0)
    }

    #[test]
    fn serves_clients_that_connect_over_tcp() {
        let ok = [
            "m=application 9 TCP/BFCP *\r\na=floorctrl:c-only\r\na=setup:active\r\n",
            "m=application 9 TCP/BFCP *\r\na=floorctrl:c-s\r\na=setup:actpass\r\n",
            "m=application 9 TCP/BFCP *\r\n",
            "m=application 9 TCP/BFCP *\r\na=floorctrl:s-only c-only\r\na=bfcpver:1 2\r\n",
        ];
        for t in ok {
            assert!(can_serve(&line(t)), "{t}");
        }
        let refused = [
            "m=application 9 TCP/TLS/BFCP *\r\na=floorctrl:c-only\r\n",
            "m=application 9 UDP/BFCP *\r\na=floorctrl:c-only\r\n",
            "m=application 9 TCP/BFCP *\r\na=floorctrl:s-only\r\n",
            "m=application 9 TCP/BFCP *\r\na=setup:passive\r\n",
            "m=application 9 TCP/BFCP *\r\na=bfcpver:2\r\n",
            "m=message 9 TCP/MSRP *\r\n",
        ];
        for t in refused {
            assert!(!can_serve(&line(t)), "{t}");
        }
    }

    #[test]
    fn the_answer_names_conference_user_and_floor() {
        let offered = line("m=application 9 TCP/BFCP *\r\na=floorctrl:c-only\r\na=bfcpver:1\r\n");
        let m = answer_line(
            &offered,
            &ServerLine {
                port: 4000,
                conference_id: 77,
                user_id: 3,
                floor_id: 1,
                media_label: "talk",
            },
        );
        let mut sdp = crate::sdp::SessionDescription::new(
            crate::sdp::Origin::new("-", 1, 1, "10.0.0.9".parse().unwrap()),
            "-",
        );
        sdp.media.push(m);
        let text = sdp.to_string();
        for expected in [
            "m=application 4000 TCP/BFCP *\r\n",
            "a=floorctrl:s-only\r\n",
            "a=confid:77\r\n",
            "a=userid:3\r\n",
            "a=floorid:1 mstrm:talk\r\n",
            "a=setup:passive\r\n",
            "a=connection:new\r\n",
            "a=bfcpver:1\r\n",
        ] {
            assert!(text.contains(expected), "{expected} missing:\n{text}");
        }
    }
}
