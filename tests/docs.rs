//! The reference in `docs/` cannot drift from the code: the configuration reference is
//! generated from the commented `config/focus.toml`, the metric reference from the metric
//! table in `src/metrics.rs`. Each generated part sits between two markers in its file; this
//! test fails when a part differs from what the code says now (a key or metric added, renamed
//! or re-described without the docs), and rewrites them when run with `UPDATE_DOCS=1`:
//!
//! ```sh
//! UPDATE_DOCS=1 cargo test --test docs
//! ```
//!
//! It also keeps the README short and its links pointing at files that exist.

use cpm_focus::metrics::{Kind, LABELS, METRICS};
use std::path::{Path, PathBuf};

const BEGIN: &str = "<!-- BEGIN GENERATED: UPDATE_DOCS=1 cargo test --test docs -->";
const END: &str = "<!-- END GENERATED -->";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Replaces the generated part of `rel` by `generated`; fails (or, with `UPDATE_DOCS=1`,
/// rewrites the file) when it differs.
fn check_generated(rel: &str, generated: &str) {
    let text = read(rel);
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        panic!("{rel} lacks the markers {BEGIN} ... {END}");
    };
    let start = b + BEGIN.len();
    let current = &text[start..e];
    let wanted = format!("\n{generated}");
    if current == wanted {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some_and(|v| v == "1") {
        let updated = format!("{}{wanted}{}", &text[..start], &text[e..]);
        std::fs::write(root().join(rel), updated).unwrap_or_else(|e| panic!("{rel}: {e}"));
        return;
    }
    let first_diff = current
        .lines()
        .zip(wanted.lines())
        .find(|(a, b)| a != b)
        .map(|(a, b)| format!("docs say:  {a}\ncode says: {b}"))
        .unwrap_or_else(|| "(one is a prefix of the other)".into());
    panic!(
        "{rel} is out of date with the code:\n{first_diff}\n\
         Run `UPDATE_DOCS=1 cargo test --test docs` and commit the result."
    );
}

/// A table cell: `|` escaped, and `<` outside code spans (it would open an HTML tag).
fn escape_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut code = false;
    for c in s.chars() {
        match c {
            '`' => {
                code = !code;
                out.push(c);
            }
            '|' => out.push_str("\\|"),
            '<' if !code => out.push_str("&lt;"),
            _ => out.push(c),
        }
    }
    out
}

/// One key of `config/focus.toml`: its table, name, default (as written) and comment.
#[derive(Debug)]
struct Key {
    table: String,
    name: String,
    default: Option<String>,
    doc: String,
}

/// Reads the commented configuration: each key's comment is the comment block right above it
/// (a key with none shares the previous key's); a commented-out `# key = value` line is an
/// optional key with no default; a comment block before a table header describes the table.
fn config_keys(text: &str) -> (Vec<(String, String)>, Vec<Key>) {
    let mut tables: Vec<(String, String)> = Vec::new();
    let mut keys: Vec<Key> = Vec::new();
    let mut table = String::new();
    let mut comment: Vec<String> = Vec::new();
    let mut last_doc = String::new();
    let header = |l: &str| -> Option<String> {
        let l = l.trim();
        let inner = l
            .strip_prefix("[[")
            .and_then(|r| r.strip_suffix("]]"))
            .or_else(|| l.strip_prefix('[').and_then(|r| r.strip_suffix(']')))?;
        inner
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
            .then(|| inner.to_string())
    };
    let assignment = |l: &str| -> Option<(String, String)> {
        let (k, v) = l.split_once(" = ")?;
        let k = k.trim();
        (!k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .then(|| (k.to_string(), v.trim().to_string()))
    };
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(c) = line.strip_prefix('#') {
            let c = c.strip_prefix(' ').unwrap_or(c);
            if let Some(t) = header(c) {
                // A commented-out table (`# [[groups.members]]`): its keys follow, commented.
                table = t.clone();
                tables.push((t, comment.join(" ")));
                comment.clear();
                last_doc.clear();
            } else if let Some((k, v)) = assignment(c).filter(|_| !table.is_empty()) {
                let doc = if !comment.is_empty() {
                    comment.join(" ")
                } else if !last_doc.is_empty() {
                    last_doc.clone()
                } else {
                    // The first key of a commented-out table: the table's comment.
                    tables
                        .iter()
                        .rev()
                        .find(|(t, _)| *t == table)
                        .map(|(_, intro)| intro.clone())
                        .unwrap_or_default()
                };
                keys.push(Key {
                    table: table.clone(),
                    name: k,
                    default: None,
                    doc: format!("Optional, for example `{v}`. {doc}"),
                });
                last_doc = doc;
                comment.clear();
            } else {
                comment.push(c.to_string());
            }
        } else if let Some(t) = header(line) {
            tables.push((t.clone(), comment.join(" ")));
            table = t;
            comment.clear();
            last_doc.clear();
        } else if let Some((k, v)) = assignment(line) {
            let doc = if comment.is_empty() {
                last_doc.clone()
            } else {
                comment.join(" ")
            };
            keys.push(Key {
                table: table.clone(),
                name: k,
                default: Some(v),
                doc: doc.clone(),
            });
            last_doc = doc;
            comment.clear();
        } else if line.is_empty() && table.is_empty() {
            comment.clear();
        }
    }
    (tables, keys)
}

fn configuration_reference() -> String {
    let (tables, keys) = config_keys(&read("config/focus.toml"));
    let mut out = String::new();
    let mut seen = Vec::new();
    for (table, intro) in &tables {
        if seen.contains(table) {
            continue;
        }
        seen.push(table.clone());
        out.push_str(&format!("### `[{table}]`\n\n"));
        if !intro.is_empty() {
            out.push_str(&format!("{intro}\n\n"));
        }
        out.push_str("| key | default | meaning |\n|---|---|---|\n");
        for k in keys.iter().filter(|k| &k.table == table) {
            let default = k
                .default
                .as_deref()
                .map_or_else(|| "(none)".to_string(), |d| format!("`{}`", escape_cell(d)));
            out.push_str(&format!(
                "| `{}.{}` | {default} | {} |\n",
                k.table,
                k.name,
                escape_cell(&k.doc)
            ));
        }
        out.push('\n');
    }
    out
}

fn metrics_reference() -> String {
    let mut out = String::from("| metric | type | labels | meaning |\n|---|---|---|---|\n");
    for (name, kind, help) in METRICS {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let labels = LABELS
            .iter()
            .filter(|(m, _, _)| m == name)
            .map(|(_, label, values)| {
                let values: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
                format!("`{label}`: {}", values.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ");
        out.push_str(&format!(
            "| `{name}` | {kind} | {} | {} |\n",
            escape_cell(&labels),
            escape_cell(help)
        ));
    }
    out.push('\n');
    out
}

#[test]
fn the_configuration_reference_is_generated_from_focus_toml() {
    let (_, keys) = config_keys(&read("config/focus.toml"));
    // The parser itself: keys of every kind of line are found, with their comments.
    for (table, name) in [
        ("focus", "domain"),
        ("policy", "adhoc_domains"),
        ("groups", "uri"),
        ("groups", "codecs"),
        ("groups.members", "role"),
    ] {
        let k = keys
            .iter()
            .find(|k| k.table == table && k.name == name)
            .unwrap_or_else(|| panic!("{table}.{name} not read from config/focus.toml"));
        assert!(!k.doc.trim().is_empty(), "{table}.{name} has no comment");
    }
    assert!(keys.len() > 100, "only {} keys read", keys.len());
    check_generated("docs/configuration.md", &configuration_reference());
    let doc = read("docs/configuration.md");
    for k in &keys {
        assert!(
            doc.contains(&format!("`{}.{}`", k.table, k.name)),
            "{}.{} is not in docs/configuration.md",
            k.table,
            k.name
        );
    }
}

#[test]
fn the_metric_reference_is_generated_from_the_metric_table() {
    check_generated("docs/metrics.md", &metrics_reference());
    let doc = read("docs/metrics.md");
    for (name, _, _) in METRICS {
        assert!(
            doc.contains(&format!("`{name}`")),
            "{name} is not in docs/metrics.md"
        );
    }
    // Nothing outside the table names a metric the focus does not have.
    let known: Vec<&str> = METRICS.iter().map(|(n, _, _)| *n).collect();
    for word in doc.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("focus_") && word.len() > "focus_".len() {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| word.strip_suffix(s).filter(|b| known.contains(b)))
                .unwrap_or(word);
            assert!(
                known.contains(&base),
                "docs/metrics.md names {word}, which is not in src/metrics.rs"
            );
        }
    }
}

#[test]
fn the_metric_labels_table_names_metrics_of_the_table() {
    for (metric, label, values) in LABELS {
        assert!(
            METRICS.iter().any(|(n, _, _)| n == metric),
            "LABELS names {metric}, which is not in METRICS"
        );
        assert!(!label.is_empty() && !values.is_empty(), "{metric}: {label}");
    }
}

/// Markdown link targets of `text` that are relative file paths.
fn local_links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = &rest[..end];
        let path = target.split('#').next().unwrap_or("");
        if !path.is_empty() && !path.contains("://") && !path.starts_with("mailto:") {
            out.push(path.to_string());
        }
    }
    out
}

#[test]
fn the_readme_is_short_and_its_links_resolve() {
    let readme = read("README.md");
    assert!(
        readme.len() <= 12 * 1024,
        "README.md is {} bytes: keep it under 12 KiB and move reference text to docs/",
        readme.len()
    );
    let mut files: Vec<PathBuf> = vec![root().join("README.md"), root().join("BENCHMARKS.md")];
    for entry in std::fs::read_dir(root().join("docs")).expect("docs/") {
        let path = entry.expect("docs entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    for file in files {
        let text = std::fs::read_to_string(&file).expect("markdown file");
        let dir = file.parent().expect("parent");
        for link in local_links(&text) {
            // security.md is written section by section by each feature; it may not exist yet.
            if link.ends_with("security.md") {
                continue;
            }
            assert!(
                dir.join(&link).exists(),
                "{} links to {link}, which does not exist",
                file.display()
            );
        }
    }
}
