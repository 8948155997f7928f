//! cargo-fuzz package for phonehome: the harness functions behind every
//! target (see `harness.rs`, shared with the stable regression test).

#![forbid(unsafe_code)]

#[path = "harness.rs"]
pub mod harness;
