//! Fuzz target: one TCP connection through reassembly and the app parsers.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phonehome_fuzz::harness::run("tcp_stream", data);
});
