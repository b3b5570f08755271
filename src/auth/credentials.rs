//! The credentials file: one user a line, `user:realm:ha1_md5[:ha1_sha256]`, as `htdigest`
//! writes it (MD5 only) and as Kamailio's `subscriber` table keeps `ha1` (with the SHA-256
//! HA1 of RFC 7616 added as a fourth field). HA1 is `H(user:realm:password)` in lower-case
//! hex; the focus never sees a password. Blank lines and lines starting with `#` are
//! skipped; an empty MD5 field means "no MD5 for this user" (SHA-256 only).

use super::digest::Algorithm;
use std::collections::HashMap;
use std::path::Path;
use thiserror::Error;

/// Why a credentials file was refused.
#[derive(Debug, Error)]
pub enum CredentialsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("line {line}: {message}")]
    Line { line: usize, message: &'static str },
    #[error("line {line}: user {user:?} is listed twice for realm {realm:?}")]
    Duplicate {
        line: usize,
        user: String,
        realm: String,
    },
}

/// One user's hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ha1 {
    pub md5: Option<String>,
    pub sha256: Option<String>,
}

impl Ha1 {
    /// The HA1 under `algorithm`, if the file has it.
    pub fn get(&self, algorithm: Algorithm) -> Option<&str> {
        match algorithm {
            Algorithm::Md5 => self.md5.as_deref(),
            Algorithm::Sha256 => self.sha256.as_deref(),
        }
    }
}

/// Users by (user, realm).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    users: HashMap<(String, String), Ha1>,
}

fn hex_field(
    s: &str,
    len: usize,
    line: usize,
    what: &'static str,
) -> Result<Option<String>, CredentialsError> {
    if s.is_empty() {
        return Ok(None);
    }
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CredentialsError::Line {
            line,
            message: what,
        });
    }
    Ok(Some(s.to_ascii_lowercase()))
}

impl Credentials {
    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Credentials, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Credentials::parse(&text)
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Credentials, CredentialsError> {
        let mut users = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = l.split(':').collect();
            let (user, realm, md5, sha) = match fields.as_slice() {
                [u, r, m] => (*u, *r, *m, ""),
                [u, r, m, s] => (*u, *r, *m, *s),
                _ => {
                    return Err(CredentialsError::Line {
                        line,
                        message: "expected user:realm:ha1_md5[:ha1_sha256]",
                    })
                }
            };
            if user.is_empty() || realm.is_empty() {
                return Err(CredentialsError::Line {
                    line,
                    message: "user and realm must not be empty",
                });
            }
            let ha1 = Ha1 {
                md5: hex_field(md5, 32, line, "the MD5 HA1 must be 32 hex digits")?,
                sha256: hex_field(sha, 64, line, "the SHA-256 HA1 must be 64 hex digits")?,
            };
            if ha1.md5.is_none() && ha1.sha256.is_none() {
                return Err(CredentialsError::Line {
                    line,
                    message: "no HA1 at all",
                });
            }
            let key = (user.to_string(), realm.to_string());
            if users.insert(key, ha1).is_some() {
                return Err(CredentialsError::Duplicate {
                    line,
                    user: user.into(),
                    realm: realm.into(),
                });
            }
        }
        Ok(Credentials { users })
    }

    /// A user's hashes in a realm.
    pub fn lookup(&self, user: &str, realm: &str) -> Option<&Ha1> {
        self.users.get(&(user.to_string(), realm.to_string()))
    }

    /// Users of `realm`, and those of them lacking a hash for one of `algorithms`.
    pub fn realm_users<'a>(
        &'a self,
        realm: &'a str,
        algorithms: &'a [Algorithm],
    ) -> (usize, Vec<&'a str>) {
        let mut n = 0;
        let mut lacking = Vec::new();
        for ((user, r), ha1) in &self.users {
            if r != realm {
                continue;
            }
            n += 1;
            if algorithms.iter().any(|a| ha1.get(*a).is_none()) {
                lacking.push(user.as_str());
            }
        }
        lacking.sort_unstable();
        (n, lacking)
    }
}

/// The credentials line for a user (what `cpm-focus hash-password` prints): both HA1s.
pub fn line(user: &str, realm: &str, password: &str) -> String {
    format!(
        "{user}:{realm}:{}:{}",
        Algorithm::Md5.ha1(user, realm, password),
        Algorithm::Sha256.ha1(user, realm, password)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htdigest_and_four_field_lines_parse() {
        let text = format!(
            "# users\n\n{}\nbob:focus.example.com:{}\ncarol:other.realm::{}\n",
            line("alice", "focus.example.com", "secret"),
            Algorithm::Md5
                .ha1("bob", "focus.example.com", "pw")
                .to_uppercase(),
            Algorithm::Sha256.ha1("carol", "other.realm", "x"),
        );
        let c = Credentials::parse(&text).unwrap();
        let alice = c.lookup("alice", "focus.example.com").unwrap();
        assert_eq!(
            alice.get(Algorithm::Md5),
            Some(
                Algorithm::Md5
                    .ha1("alice", "focus.example.com", "secret")
                    .as_str()
            )
        );
        assert!(alice.get(Algorithm::Sha256).is_some());
        let bob = c.lookup("bob", "focus.example.com").unwrap();
        assert_eq!(
            bob.md5.as_deref(),
            Some(
                Algorithm::Md5
                    .ha1("bob", "focus.example.com", "pw")
                    .as_str()
            ),
            "stored lower-case"
        );
        assert_eq!(bob.sha256, None);
        assert!(c.lookup("alice", "other.realm").is_none());
        let algs = [Algorithm::Sha256, Algorithm::Md5];
        assert_eq!(c.realm_users("focus.example.com", &algs), (2, vec!["bob"]));
        assert_eq!(c.realm_users("other.realm", &algs), (1, vec!["carol"]));
    }

    #[test]
    fn bad_lines_name_their_number() {
        for (text, want) in [
            ("alice:realm\n", "line 1: expected"),
            ("\nalice:realm:xyz\n", "line 2: the MD5 HA1"),
            (
                ":realm:00000000000000000000000000000000",
                "line 1: user and realm",
            ),
            ("a:r::", "line 1: no HA1"),
            (
                "a:r:00000000000000000000000000000000:abc",
                "line 1: the SHA-256",
            ),
            (
                "a:r:00000000000000000000000000000000\na:r:00000000000000000000000000000000",
                "line 2: user \"a\" is listed twice",
            ),
        ] {
            let e = Credentials::parse(text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}
