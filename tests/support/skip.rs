//! Skipping a test whose outside tool is missing: loudly, and never under CI.

use std::io::Write;

/// Says loudly that `test` did not run and why (`why` names the missing tool and how to
/// install it). Under `CI` (which `.ci/run` sets itself and which installs every tool) a
/// missing tool is a setup failure, so this panics there instead.
pub fn skip(test: &str, why: &str) {
    let banner = "=".repeat(78);
    let msg = format!("{banner}\nSKIPPED {test}: {why}\n{banner}");
    if std::env::var_os("CI").is_some() {
        panic!("{msg}\nCI provides it, so its absence is a setup failure there.");
    }
    // Straight to stderr: libtest captures `eprintln!` of passing tests, and a skip must be
    // seen.
    let _ = writeln!(std::io::stderr(), "{msg}");
}
