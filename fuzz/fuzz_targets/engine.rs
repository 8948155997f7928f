//! Fuzz target: the whole per-packet pipeline over a frame sequence.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phonehome_fuzz::harness::run("engine", data);
});
