//! `[xdms]`: pre-defined groups read over XCAP (RFC 4825) from a Shared Group XDMS, next to
//! the `[[groups]]` of the file.

use super::{ConfigIssue, HttpUrl, JoinRule};
use serde::Deserialize;

/// `[xdms]`. Off while `root` is empty.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct XdmsConfig {
    /// The XCAP root URI (`http[s]://host[:port]/path`); empty: no XDMS.
    pub root: String,
    /// Document selectors under the root, each an `rls-services` document.
    pub documents: Vec<String>,
    /// Seconds between conditional GETs of each document.
    pub poll_s: u64,
    /// Who may join a group from the XDMS (the document has no join policy of its own).
    pub join: JoinRule,
    /// Bearer token sent with every request (wins over `user`).
    pub token: String,
    /// Basic credentials: user name (empty: none).
    pub user: String,
    pub password: String,
    /// Longest exchange (connect, send, read), milliseconds.
    pub timeout_ms: u64,
    /// File keeping the last good copy of every document; read at start when the XDMS is
    /// away. Empty: no cache.
    pub cache: String,
    /// Most groups taken from the XDMS, all documents together.
    pub max_groups: usize,
}

impl Default for XdmsConfig {
    fn default() -> Self {
        XdmsConfig {
            root: String::new(),
            documents: Vec::new(),
            poll_s: 30,
            join: JoinRule::MembersOnly,
            token: String::new(),
            user: String::new(),
            password: String::new(),
            timeout_ms: 5000,
            cache: String::new(),
            max_groups: 1000,
        }
    }
}

impl XdmsConfig {
    /// Whether groups are read from an XDMS at all.
    pub fn enabled(&self) -> bool {
        !self.root.is_empty()
    }

    /// Every problem of the `[xdms]` section, each with its key.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: &str, message: String| {
            issues.push(ConfigIssue {
                key: format!("xdms.{key}"),
                message,
            })
        };
        if !self.enabled() {
            return issues;
        }
        if let Err(e) = HttpUrl::parse(&self.root) {
            bad("root", e.to_string());
        }
        if self.documents.is_empty() {
            bad("documents", "an XDMS needs at least one document".into());
        }
        for (i, d) in self.documents.iter().enumerate() {
            if d.is_empty() || !d.bytes().all(|b| b.is_ascii_graphic()) || d.contains(['?', '#']) {
                bad(
                    &format!("documents[{i}]"),
                    "must be a non-empty path of visible ASCII without ? or #".into(),
                );
            }
        }
        if self.poll_s == 0 {
            bad("poll_s", "must be positive".into());
        }
        if self.timeout_ms == 0 {
            bad("timeout_ms", "must be positive".into());
        }
        if self.max_groups == 0 {
            bad("max_groups", "must be positive".into());
        }
        if !self.user.is_empty() && self.user.contains(':') {
            bad("user", "must not contain ':'".into());
        }
        issues
    }

    /// The URL of document `selector` (the root with one `/` between).
    pub fn document_url(&self, selector: &str) -> String {
        format!(
            "{}/{}",
            self.root.trim_end_matches('/'),
            selector.trim_start_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn off_by_default_and_checked_when_on() {
        let c = Config::from_toml("").unwrap();
        assert!(!c.xdms.enabled());
        assert_eq!(c.xdms.join, crate::config::JoinRule::MembersOnly);
        let e = Config::from_toml("[xdms]\nroot = \"ftp://x\"\npoll_s = 0\n").unwrap_err();
        let text = e.to_string();
        for key in ["xdms.root", "xdms.documents", "xdms.poll_s"] {
            assert!(text.contains(key), "{key} in {text}");
        }
        let c = Config::from_toml(
            "[xdms]\nroot = \"http://127.0.0.1:1/xcap-root/\"\ndocuments = [\"rls-services/users/sip:a@b/index\"]\n",
        )
        .unwrap();
        assert_eq!(
            c.xdms.document_url(&c.xdms.documents[0]),
            "http://127.0.0.1:1/xcap-root/rls-services/users/sip:a@b/index"
        );
    }
}
