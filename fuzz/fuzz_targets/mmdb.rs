//! Fuzz target: MaxMind DB files from hostile bytes, then lookups.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phonehome_fuzz::harness::run("mmdb", data);
});
