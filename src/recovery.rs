//! Crash recovery, all of it in one folder: the membership journal a running focus keeps,
//! and what a restarted focus does with the journal a crashed one left (close the charging
//! the crash interrupted, start the live groups again, re-INVITE their participants).
//!
//! - [`journal`]: the append-only, compacted membership journal (schema, replay, writer)
//! - `start.rs`: [`start()`], recovery at start, over the router's [`Resume`] (the supervisor implements
//!   it in `supervisor/recover.rs`)
//!
//! The session's own part stays where Rust privacy puts it: `session/state/recover.rs`
//! journals a session's membership as it changes and re-INVITEs each participant inside its
//! old dialog.

pub mod journal;
mod start;

pub use start::{start, Outcome, Resume};
