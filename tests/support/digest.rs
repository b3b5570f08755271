//! A digest client for the tests (RFC 7616, qop=auth), with its own hashing (the md-5 and
//! sha2 crates, not the focus's code), and credentials files written at run time.

use cpm_focus::sip::Response;
use md5::Md5;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Lower-case hex of `H(data)` under the challenge's algorithm token.
pub fn h(algorithm: &str, data: &str) -> String {
    let bytes: Vec<u8> = match algorithm {
        "SHA-256" => Sha256::digest(data.as_bytes()).to_vec(),
        "MD5" => Md5::digest(data.as_bytes()).to_vec(),
        other => panic!("the test client knows no {other}"),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One parsed `WWW-Authenticate: Digest ...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub algorithm: String,
    pub qop: String,
    pub stale: bool,
}

impl Challenge {
    pub fn parse(value: &str) -> Challenge {
        let rest = value
            .strip_prefix("Digest ")
            .unwrap_or_else(|| panic!("not a digest challenge: {value}"));
        let mut params = std::collections::HashMap::new();
        for p in cpm_focus::sip::split_commas(rest) {
            let (n, v) = p
                .split_once('=')
                .unwrap_or_else(|| panic!("{p} in {value}"));
            params.insert(
                n.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            );
        }
        let get = |n: &str| {
            params
                .get(n)
                .cloned()
                .unwrap_or_else(|| panic!("no {n} in {value}"))
        };
        Challenge {
            realm: get("realm"),
            nonce: get("nonce"),
            algorithm: params.get("algorithm").cloned().unwrap_or("MD5".into()),
            qop: get("qop"),
            stale: params
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        }
    }

    /// Every challenge of a 401, in order.
    pub fn all(resp: &Response) -> Vec<Challenge> {
        assert_eq!(resp.status, 401, "{} {}", resp.status, resp.reason);
        resp.headers
            .get_all(cpm_focus::sip::HeaderName::WwwAuthenticate)
            .map(Challenge::parse)
            .collect()
    }

    /// The `Authorization` value answering this challenge for `method uri`.
    pub fn answer(&self, user: &str, password: &str, method: &str, uri: &str, nc: u32) -> String {
        let alg = self.algorithm.as_str();
        let nc = format!("{nc:08x}");
        let cnonce = format!("c{:x}", rand_u32());
        let ha1 = h(alg, &format!("{user}:{}:{password}", self.realm));
        let ha2 = h(alg, &format!("{method}:{uri}"));
        let response = h(
            alg,
            &format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce),
        );
        format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm={alg}, qop=auth, nc={nc}, cnonce=\"{cnonce}\"",
            self.realm, self.nonce
        )
    }
}

fn rand_u32() -> u32 {
    static N: AtomicUsize = AtomicUsize::new(1);
    (std::process::id() ^ (N.fetch_add(1, Ordering::Relaxed) as u32).wrapping_mul(2_654_435_761))
        .rotate_left(7)
}

/// A credentials file in the temp directory, removed on drop.
pub struct CredentialsFile {
    pub path: PathBuf,
}

static FILES: AtomicUsize = AtomicUsize::new(0);

impl CredentialsFile {
    /// A file with `users` (`(user, password)`) of `realm`, both hashes per line, as
    /// `cpm-focus hash-password` writes them.
    pub fn new(realm: &str, users: &[(&str, &str)]) -> CredentialsFile {
        let path = std::env::temp_dir().join(format!(
            "cpm-focus-users-{}-{}",
            std::process::id(),
            FILES.fetch_add(1, Ordering::Relaxed)
        ));
        let f = CredentialsFile { path };
        f.write(realm, users);
        f
    }

    /// Rewrites the file with `users`.
    pub fn write(&self, realm: &str, users: &[(&str, &str)]) {
        let text: String = users
            .iter()
            .map(|(u, p)| {
                format!(
                    "{u}:{realm}:{}:{}\n",
                    h("MD5", &format!("{u}:{realm}:{p}")),
                    h("SHA-256", &format!("{u}:{realm}:{p}"))
                )
            })
            .collect();
        std::fs::write(&self.path, format!("# test users\n{text}")).expect("writing credentials");
    }

    /// The path as TOML wants it.
    pub fn toml_path(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for CredentialsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
