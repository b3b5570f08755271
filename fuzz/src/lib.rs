//! The fuzz harness as a library, so each target in `fuzz_targets/` is one line.
#![forbid(unsafe_code)]

pub mod harness;
