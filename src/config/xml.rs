//! `[xml]`.

use super::ConfigIssue;
use serde::Deserialize;

/// `[xml]`: bounds on every XML body the focus parses from a peer (the RFC 4826 URI lists of
/// INVITE, REFER and MESSAGE). DTDs and entities beyond the five predefined ones are refused
/// whatever these say.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct XmlConfig {
    /// Largest document, bytes.
    pub max_bytes: usize,
    /// Deepest element nesting (the root is depth 1).
    pub max_depth: usize,
    /// Most elements in one document, foreign ones included.
    pub max_elements: usize,
}

impl Default for XmlConfig {
    fn default() -> Self {
        XmlConfig {
            max_bytes: 65_536,
            max_depth: 16,
            max_elements: 10_000,
        }
    }
}

impl XmlConfig {
    /// Every problem of the `[xml]` section, each with its key.
    pub fn validate(&self) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        let mut bad = |key: &str, message: &str| {
            issues.push(ConfigIssue {
                key: format!("xml.{key}"),
                message: message.into(),
            })
        };
        if self.max_bytes < 1024 {
            bad("max_bytes", "must be at least 1024");
        }
        if !(2..=crate::body::resource_lists::DEPTH_CAP).contains(&self.max_depth) {
            bad("max_depth", "must be between 2 and 256");
        }
        if self.max_elements < 2 {
            bad("max_elements", "must be at least 2");
        }
        issues
    }

    /// The parser limits of a resource list under these bounds.
    pub fn list_limits(&self) -> crate::body::resource_lists::ListLimits {
        crate::body::resource_lists::ListLimits {
            max_bytes: self.max_bytes,
            max_depth: self.max_depth,
            max_elements: self.max_elements,
            // Every entry is an element: the element bound is also the entry bound before
            // duplicates go; policy.max_list_size bounds the targets after.
            max_entries: self.max_elements,
        }
    }
}
