#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cpm_focus_fuzz::harness::digest(data));
