//! Fuzz target: QUIC Initial parsing, decryption, CRYPTO reassembly and the hello inside.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phonehome_fuzz::harness::run("quic", data);
});
