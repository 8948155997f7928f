//! Fuzz target: the HTTP/1.x head parsers.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phonehome_fuzz::harness::run("http", data);
});
