//! The digest scheme itself (RFC 7616 with RFC 3261 §22.4 and RFC 8760): hashing, the
//! `Authorization` header's parameters, the `WWW-Authenticate` challenge, and the expected
//! `response`, compared in constant time. Pure functions; no state, no clock.

use md5::Md5;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// A digest algorithm the focus offers (RFC 8760 §2: SHA-256 for current clients, MD5 for
/// the many that know nothing else). The `-sess` variants are not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Algorithm {
    #[serde(rename = "sha-256")]
    Sha256,
    #[serde(rename = "md5")]
    Md5,
}

impl Algorithm {
    /// The token written in `algorithm=` (RFC 7616 §3.3).
    pub fn token(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    /// Reads an `algorithm=` token (case-insensitive).
    pub fn from_token(s: &str) -> Option<Algorithm> {
        if s.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else if s.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else {
            None
        }
    }

    /// Lower-case hex length of a hash.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Md5 => 32,
        }
    }

    /// `H(data)` as lower-case hex.
    pub fn hash(self, data: &[u8]) -> String {
        match self {
            Algorithm::Sha256 => hex(&Sha256::digest(data)),
            Algorithm::Md5 => hex(&Md5::digest(data)),
        }
    }

    /// HA1 (RFC 7616 §3.4.2): `H(username:realm:password)`, what the credentials file keeps.
    pub fn ha1(self, username: &str, realm: &str, password: &str) -> String {
        self.hash(format!("{username}:{realm}:{password}").as_bytes())
    }

    /// The `response` for `qop=auth` (RFC 7616 §3.4.1): `H(HA1:nonce:nc:cnonce:qop:HA2)` with
    /// `HA2 = H(method:uri)`.
    pub fn response(self, ha1: &str, method: &str, uri: &str, p: &ResponseInput<'_>) -> String {
        let ha2 = self.hash(format!("{method}:{uri}").as_bytes());
        self.hash(format!("{ha1}:{}:{}:{}:auth:{ha2}", p.nonce, p.nc, p.cnonce).as_bytes())
    }
}

/// The client's share of a response: what it chose and what it was given.
#[derive(Debug, Clone, Copy)]
pub struct ResponseInput<'a> {
    pub nonce: &'a str,
    /// The nonce count as written (eight hex digits).
    pub nc: &'a str,
    pub cnonce: &'a str,
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// True when two hex responses are equal; the time taken does not depend on where they
/// differ (the length, which is public, may).
pub fn responses_match(expected: &str, given: &str) -> bool {
    let given = given.to_ascii_lowercase();
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// Why an `Authorization` header cannot be used; each is answered `400` with the reason
/// phrase below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AuthorizationError {
    #[error("Malformed Authorization header")]
    Syntax,
    #[error("Authorization lacks a digest parameter")]
    Missing,
    #[error("Unsupported digest algorithm")]
    Algorithm,
    #[error("Digest without qop=auth")]
    Qop,
    #[error("Malformed digest nonce count")]
    NonceCount,
    #[error("Digest uri does not match the Request-URI")]
    Uri,
}

/// The parameters of one `Authorization: Digest ...` header (RFC 7616 §3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    /// `MD5` when absent (RFC 7616 §3.4).
    pub algorithm: Algorithm,
    /// The nonce count as written, and its value.
    pub nc_text: String,
    pub nc: u32,
    pub cnonce: String,
}

/// The realm of an `Authorization` value if it is a digest one (to pick ours among several,
/// RFC 3261 §22.3), without judging the rest.
pub fn digest_realm(value: &str) -> Option<String> {
    let rest = strip_scheme(value)?;
    params(rest)
        .ok()?
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("realm"))
        .map(|(_, v)| v)
}

fn strip_scheme(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_at(value.find(|c: char| c.is_ascii_whitespace())?);
    scheme.eq_ignore_ascii_case("Digest").then_some(rest)
}

/// `name=value` pairs of a comma-separated auth-param list, values unquoted.
fn params(rest: &str) -> Result<Vec<(String, String)>, AuthorizationError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in crate::sip::split_commas(rest) {
        let (name, value) = item.split_once('=').ok_or(AuthorizationError::Syntax)?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(AuthorizationError::Syntax);
        }
        let value = if value.starts_with('"') {
            crate::sip::unquote(value).ok_or(AuthorizationError::Syntax)?
        } else if !value.is_empty() && !value.contains(|c: char| c.is_ascii_whitespace()) {
            value.to_string()
        } else {
            return Err(AuthorizationError::Syntax);
        };
        if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Err(AuthorizationError::Syntax);
        }
        out.push((name.to_ascii_lowercase(), value));
    }
    Ok(out)
}

impl DigestCredentials {
    /// Parses an `Authorization` value. Only `qop=auth` is accepted: without a qop there is
    /// no nonce count, and so no replay protection (RFC 2069 clients are refused).
    pub fn parse(value: &str) -> Result<DigestCredentials, AuthorizationError> {
        let rest = strip_scheme(value).ok_or(AuthorizationError::Syntax)?;
        let ps = params(rest)?;
        let get = |name: &str| {
            ps.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or(AuthorizationError::Missing)
        };
        let algorithm = match ps.iter().find(|(n, _)| n == "algorithm") {
            Some((_, a)) => Algorithm::from_token(a).ok_or(AuthorizationError::Algorithm)?,
            None => Algorithm::Md5,
        };
        let qop = get("qop").map_err(|_| AuthorizationError::Qop)?;
        if !qop.eq_ignore_ascii_case("auth") {
            return Err(AuthorizationError::Qop);
        }
        let nc_text = get("nc")?;
        if nc_text.len() != 8 || !nc_text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthorizationError::NonceCount);
        }
        let nc = u32::from_str_radix(&nc_text, 16).map_err(|_| AuthorizationError::NonceCount)?;
        if nc == 0 {
            return Err(AuthorizationError::NonceCount);
        }
        let response = get("response")?;
        if response.len() != algorithm.hex_len() || !response.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(AuthorizationError::Syntax);
        }
        let credentials = DigestCredentials {
            username: get("username")?,
            realm: get("realm")?,
            nonce: get("nonce")?,
            uri: get("uri")?,
            response,
            algorithm,
            nc_text,
            nc,
            cnonce: get("cnonce")?,
        };
        if credentials.username.is_empty() || credentials.cnonce.is_empty() {
            return Err(AuthorizationError::Missing);
        }
        Ok(credentials)
    }

    /// True when `response` is right for `ha1` and the request's method (the uri is the one
    /// the client signed; the caller checks it names the Request-URI).
    pub fn verify(&self, ha1: &str, method: &str) -> bool {
        let expected = self.algorithm.response(
            ha1,
            method,
            &self.uri,
            &ResponseInput {
                nonce: &self.nonce,
                nc: &self.nc_text,
                cnonce: &self.cnonce,
            },
        );
        responses_match(&expected, &self.response)
    }
}

/// A `WWW-Authenticate: Digest` challenge as a client reads it (RFC 7616 §3.3; RFC 2617
/// servers may offer no qop), for the focus's own requests (the XDMS client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// `qop` lists `auth`; without it the RFC 2069 response is computed.
    pub qop_auth: bool,
    pub stale: bool,
}

impl Challenge {
    /// Reads one challenge; `None` when it is not digest, is malformed, or asks for what the
    /// focus cannot answer (another algorithm, the `-sess` variants, only `auth-int`).
    pub fn parse(value: &str) -> Option<Challenge> {
        let ps = params(strip_scheme(value)?).ok()?;
        let get = |name: &str| ps.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let algorithm = match get("algorithm") {
            Some(a) => Algorithm::from_token(&a)?,
            None => Algorithm::Md5,
        };
        let qop_auth = match get("qop") {
            Some(q) => {
                if !q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")) {
                    return None;
                }
                true
            }
            None => false,
        };
        Some(Challenge {
            realm: get("realm")?,
            nonce: get("nonce")?,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
            stale: get("stale").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }

    /// The `Authorization` value answering this challenge for `method` on `uri`, the
    /// `nc`-th use of its nonce, with the client nonce `cnonce`. The computation is the one
    /// the focus verifies its own challenges with ([`Algorithm::response`]).
    pub fn authorization(
        &self,
        user: &str,
        password: &str,
        method: &str,
        uri: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let ha1 = self.algorithm.ha1(user, &self.realm, password);
        let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm={}",
            q(user),
            q(&self.realm),
            q(&self.nonce),
            q(uri),
            self.algorithm.token()
        );
        if self.qop_auth {
            let nc = format!("{nc:08x}");
            let response = self.algorithm.response(
                &ha1,
                method,
                uri,
                &ResponseInput {
                    nonce: &self.nonce,
                    nc: &nc,
                    cnonce,
                },
            );
            out.push_str(&format!(
                ", response=\"{response}\", qop=auth, nc={nc}, cnonce=\"{}\"",
                q(cnonce)
            ));
        } else {
            // RFC 2069 (kept by RFC 2617 for servers that offer no qop).
            let ha2 = self.algorithm.hash(format!("{method}:{uri}").as_bytes());
            let response = self
                .algorithm
                .hash(format!("{ha1}:{}:{ha2}", self.nonce).as_bytes());
            out.push_str(&format!(", response=\"{response}\""));
        }
        if let Some(o) = &self.opaque {
            out.push_str(&format!(", opaque=\"{}\"", q(o)));
        }
        out
    }
}

/// One `WWW-Authenticate` value (RFC 7616 §3.3). The realm is checked at configuration load
/// to need no escaping (no `"` nor `\`).
pub fn challenge(realm: &str, nonce: &str, algorithm: Algorithm, stale: bool) -> String {
    let stale = if stale { ", stale=true" } else { "" };
    format!(
        "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
        algorithm.token()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1: the same request under MD5 and SHA-256.
    const USER: &str = "Mufasa";
    const REALM: &str = "http-auth@example.org";
    const PASSWORD: &str = "Circle of Life";
    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const URI: &str = "/dir/index.html";

    fn rfc7616_input() -> ResponseInput<'static> {
        ResponseInput {
            nonce: NONCE,
            nc: "00000001",
            cnonce: CNONCE,
        }
    }

    #[test]
    fn rfc7616_md5_vector() {
        let ha1 = Algorithm::Md5.ha1(USER, REALM, PASSWORD);
        let r = Algorithm::Md5.response(&ha1, "GET", URI, &rfc7616_input());
        assert_eq!(r, "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn rfc7616_sha256_vector() {
        let ha1 = Algorithm::Sha256.ha1(USER, REALM, PASSWORD);
        let r = Algorithm::Sha256.response(&ha1, "GET", URI, &rfc7616_input());
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn the_rfc7616_authorization_header_parses_and_verifies() {
        // RFC 7616 §3.9.1's SHA-256 Authorization, folded onto one line.
        let value = format!(
            "Digest username=\"{USER}\", realm=\"{REALM}\", uri=\"{URI}\", \
             algorithm=SHA-256, nonce=\"{NONCE}\", nc=00000001, cnonce=\"{CNONCE}\", \
             qop=auth, response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        );
        let c = DigestCredentials::parse(&value).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!((c.nc, c.uri.as_str()), (1, URI));
        assert!(c.verify(&Algorithm::Sha256.ha1(USER, REALM, PASSWORD), "GET"));
        assert!(!c.verify(&Algorithm::Sha256.ha1(USER, REALM, "circle of life"), "GET"));
        // The method is signed: the same header for another method fails.
        assert!(!c.verify(&Algorithm::Sha256.ha1(USER, REALM, PASSWORD), "POST"));
        assert_eq!(digest_realm(&value).as_deref(), Some(REALM));
    }

    #[test]
    fn a_missing_algorithm_means_md5_and_upper_case_hex_is_accepted() {
        let ha1 = Algorithm::Md5.ha1(USER, REALM, PASSWORD);
        let value = format!(
            "digest username=\"{USER}\",realm=\"{REALM}\",nonce=\"{NONCE}\",uri=\"{URI}\",\
             response=\"8CA523F5E9506FED4657C9700EEBDBEC\",qop=auth,nc=00000001,cnonce=\"{CNONCE}\""
        );
        let c = DigestCredentials::parse(&value).unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert!(c.verify(&ha1, "GET"));
    }

    #[test]
    fn bad_headers_are_refused_with_a_reason() {
        let base = |extra: &str, qop: &str, nc: &str| {
            format!(
                "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:x@y\", \
                 response=\"00000000000000000000000000000000\", cnonce=\"c\"{qop}{nc}{extra}"
            )
        };
        let ok = base("", ", qop=auth", ", nc=00000001");
        assert!(DigestCredentials::parse(&ok).is_ok(), "{ok}");
        for (value, err) in [
            (base("", "", ", nc=00000001"), AuthorizationError::Qop),
            (
                base("", ", qop=auth-int", ", nc=00000001"),
                AuthorizationError::Qop,
            ),
            (
                base("", ", qop=auth", ", nc=1"),
                AuthorizationError::NonceCount,
            ),
            (
                base("", ", qop=auth", ", nc=00000000"),
                AuthorizationError::NonceCount,
            ),
            (
                base(", algorithm=SHA-512-256", ", qop=auth", ", nc=00000001"),
                AuthorizationError::Algorithm,
            ),
            (
                base(", algorithm=SHA-256", ", qop=auth", ", nc=00000001"),
                AuthorizationError::Syntax,
            ),
            (
                base(", realm=\"again\"", ", qop=auth", ", nc=00000001"),
                AuthorizationError::Syntax,
            ),
            (
                "Digest realm=\"r\", qop=auth, nc=00000001".into(),
                AuthorizationError::Missing,
            ),
            (
                "Basic YWxhZGRpbjpvcGVuc2VzYW1l".into(),
                AuthorizationError::Syntax,
            ),
            ("Digest".into(), AuthorizationError::Syntax),
            (
                "Digest username=\"unterminated".into(),
                AuthorizationError::Syntax,
            ),
        ] {
            assert_eq!(DigestCredentials::parse(&value), Err(err), "{value}");
        }
    }

    #[test]
    fn a_client_answer_to_a_challenge_verifies_as_the_server_checks_it() {
        let value = challenge(REALM, NONCE, Algorithm::Sha256, false);
        let c = Challenge::parse(&value).unwrap();
        assert_eq!(
            (c.algorithm, c.qop_auth, c.stale),
            (Algorithm::Sha256, true, false)
        );
        let auth = c.authorization(USER, PASSWORD, "GET", URI, 1, CNONCE);
        let parsed = DigestCredentials::parse(&auth).unwrap();
        let ha1 = Algorithm::Sha256.ha1(USER, REALM, PASSWORD);
        assert!(parsed.verify(&ha1, "GET"), "{auth}");
        assert!(!parsed.verify(&Algorithm::Sha256.ha1(USER, REALM, "wrong"), "GET"));
        // RFC 2617 without qop: H(HA1:nonce:HA2).
        let old = Challenge::parse("Digest realm=\"r\", nonce=\"n\", opaque=\"o\"").unwrap();
        let auth = old.authorization("u", "p", "GET", "/x", 1, "c");
        let ha1 = Algorithm::Md5.ha1("u", "r", "p");
        let ha2 = Algorithm::Md5.hash(b"GET:/x");
        let want = Algorithm::Md5.hash(format!("{ha1}:n:{ha2}").as_bytes());
        assert!(auth.contains(&format!("response=\"{want}\"")), "{auth}");
        assert!(
            auth.contains("opaque=\"o\"") && !auth.contains("qop"),
            "{auth}"
        );
        // What cannot be answered.
        for bad in [
            "Basic realm=\"r\"",
            "Digest realm=\"r\", nonce=\"n\", algorithm=MD5-sess",
            "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"",
            "Digest nonce=\"n\"",
        ] {
            assert_eq!(Challenge::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn responses_compare_whole() {
        assert!(responses_match("abcd", "ABCD"));
        assert!(!responses_match("abcd", "abce"));
        assert!(!responses_match("abcd", "abc"));
        assert!(!responses_match("abcd", ""));
    }

    #[test]
    fn a_challenge_names_realm_nonce_algorithm_and_qop() {
        assert_eq!(
            challenge("focus.example.com", "abc", Algorithm::Sha256, false),
            "Digest realm=\"focus.example.com\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\""
        );
        assert!(challenge("r", "n", Algorithm::Md5, true).ends_with(", stale=true"));
    }
}
