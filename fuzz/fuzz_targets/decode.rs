//! Fuzz target: frame decode (link type picked by the first byte).
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phonehome_fuzz::harness::run("decode", data);
});
