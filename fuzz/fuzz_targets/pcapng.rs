//! Fuzz target: the pcapng reader (stream window), every frame decoded.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phonehome_fuzz::harness::run("pcapng", data);
});
