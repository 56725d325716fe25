//! `cargo fuzz run expand`: arbitrary bytes through the `#[gradient]` expansion.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ad_macro_fuzz::fuzz_one(data));
