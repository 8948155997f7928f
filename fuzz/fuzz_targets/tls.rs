//! Fuzz target: TLS record reassembly and the ClientHello parser.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phonehome_fuzz::harness::run("tls", data);
});
