//! Fault injection for the panic-isolation tests: a request carrying
//! `X-Cpm-Fault: panic` makes the session actor handling it panic, as a bug would.
//!
//! It is not reachable from the wire in a release build: the check is compiled only into
//! debug builds (what `cargo test` runs) or with the `fault-injection` feature, and even
//! there it acts only when the process was started with `CPM_FOCUS_FAULT_INJECTION=1`.

/// The header that triggers a fault.
pub const HEADER: &str = "X-Cpm-Fault";

/// The environment variable that arms fault injection at start.
pub const ENV: &str = "CPM_FOCUS_FAULT_INJECTION";

/// Whether this build can inject faults at all.
pub const COMPILED: bool = cfg!(any(debug_assertions, feature = "fault-injection"));

/// Panics when fault injection is armed and `req` asks for a panic.
#[cfg(any(debug_assertions, feature = "fault-injection"))]
pub fn check(req: &crate::sip::Request) {
    use std::sync::OnceLock;
    static ARMED: OnceLock<bool> = OnceLock::new();
    let armed = *ARMED.get_or_init(|| std::env::var(ENV).is_ok_and(|v| v == "1"));
    if armed
        && req
            .headers
            .get_by_name(HEADER)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("panic"))
    {
        panic!("fault injection: {HEADER}: panic");
    }
}

/// Release builds without the feature: nothing to check.
#[cfg(not(any(debug_assertions, feature = "fault-injection")))]
#[inline(always)]
pub fn check(_req: &crate::sip::Request) {}
