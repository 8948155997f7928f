//! Fuzz target: feed file validation and the compiled matcher.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phonehome_fuzz::harness::run("feeds", data);
});
